/*
 * test_it_restart.c: mqlockd killed and restarted on the same journal
 * (topics.md, "Guarantees", "Coordinator status", "Tokens").
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "harness.h"

#define FLAGS "--grace 0.5 --idle-timeout 600 --idle-warning 60"
#define STATUS H_PREFIX "/_coordinator/status"

static long long
acquire(struct h_client *ctl, const char *lock, const char *id,
    const char *session, const char *extra, const char *event)
{
	struct h_msg *m;

	h_request(ctl, lock, "acquire", id, session, extra, NULL);
	m = h_expect(ctl, h_events(id), H_WAIT_MS, "event", event, "lock",
	    lock);
	return h_get(m, "token") != NULL ? h_int(m, "token") : 0;
}

static void
test_kill9_restores_state(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session(), *sc = h_session();
	const char *sd = h_session();
	struct h_msg *m;
	long long ta, td, top, epoch, since, deadline, tb;

	/* Tokens used on another lock count as "before" too. */
	td = acquire(ctl, "spare", "cl-d", sd, NULL, "granted");
	h_request(ctl, "spare", "release", "cl-d", sd, NULL, NULL);
	h_state(ctl, h_owner("spare"), H_WAIT_MS, H_FREE);
	ta = acquire(ctl, "doc", "cl-a", sa, "\"user\":\"Alice\"", "granted");
	acquire(ctl, "doc", "cl-b", sb, "\"user\":\"Bob\"", "queued");
	acquire(ctl, "doc", "cl-c", sc, NULL, "queued");
	td = acquire(ctl, "spare", "cl-d", sd, NULL, "granted");
	top = ta > td ? ta : td;
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "waiting", "#2");
	since = h_int(m, "since");
	deadline = h_int(m, "idle_deadline");
	epoch = h_coord_epoch(w);
	h_drain(ctl, h_owner("doc"));
	h_drain(ctl, h_owner("spare"));

	h_coord_stop(w, SIGKILL);
	/* Its Last Will says it is gone. */
	h_expect(ctl, STATUS, H_WAIT_MS, "state", "offline");
	h_coord_start(w);
	assert_true(h_coord_epoch(w) > epoch);

	/* Every held lock's owner message is published again, unchanged. */
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	assert_false(m->retained);
	assert_string_equal(h_str(m, "owner.user"), "Alice");
	assert_true(cJSON_IsTrue(h_get(m, "owner.connected")));
	assert_int_equal(h_int(m, "token"), ta);
	assert_int_equal(h_int(m, "since"), since);
	assert_int_equal(h_int(m, "idle_deadline"), deadline);
	assert_int_equal(h_int(m, "waiting"), 2);
	assert_string_equal(h_str(m, "queue.0.client"), "cl-b");
	assert_string_equal(h_str(m, "queue.0.user"), "Bob");
	assert_string_equal(h_str(m, "queue.1.client"), "cl-c");
	m = h_state(ctl, h_owner("spare"), H_WAIT_MS, "owner.client", "cl-d");
	assert_int_equal(h_int(m, "token"), td);

	/* A new epoch: every client re-sends acquire and keeps its place. */
	assert_int_equal(acquire(ctl, "doc", "cl-a", sa, NULL, "granted"), ta);
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued",
	    "position", "#1");
	h_request(ctl, "doc", "acquire", "cl-c", sc, NULL, NULL);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "queued",
	    "position", "#2");
	assert_int_equal(acquire(ctl, "spare", "cl-d", sd, NULL, "granted"),
	    td);

	/* Session bindings survived. */
	h_request(ctl, "doc", "release", "cl-a", h_session(), NULL, NULL);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "error", "code",
	    "session-mismatch");
	acquire(ctl, "doc", "cl-c", sc, NULL, "queued");

	/* The next grant's token is larger than every one before. */
	h_request(ctl, "doc", "release", "cl-a", sa, NULL, NULL);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	tb = h_int(m, "token");
	assert_true(tb > top);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "queued",
	    "position", "#1");
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-b");
	assert_int_equal(h_int(m, "token"), tb);
	assert_string_equal(h_str(m, "queue.0.client"), "cl-c");
	h_pass(w);
}

static void
test_requests_while_down_are_handled(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session(), *sc = h_session();
	struct h_msg *m;
	long long ta, tb, tc;

	ta = acquire(ctl, "doc", "cl-a", sa, NULL, "granted");
	h_coord_stop(w, SIGKILL);
	h_expect(ctl, STATUS, H_WAIT_MS, "state", "offline");

	/* Published while nobody serves: they wait in mqlockd's session. */
	h_request(ctl, "other", "acquire", "cl-c", sc, NULL, "down-1");
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, "down-2");
	h_request(ctl, "doc", "release", "cl-a", sa, NULL, "down-3");
	h_expect_none(ctl, h_events("cl-c"), H_QUIET_MS, H_ANY);

	h_coord_start(w);
	m = h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "granted",
	    "lock", "other");
	tc = h_int(m, "token");
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued",
	    "position", "#1");
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	tb = h_int(m, "token");
	assert_true(tc > ta);
	assert_true(tb > tc);
	m = h_expect(ctl, h_reply_for("cl-c"), H_WAIT_MS, H_ANY);
	assert_string_equal(m->corr, "down-1");
	m = h_expect(ctl, h_reply_for("cl-b"), H_WAIT_MS, H_ANY);
	assert_string_equal(m->corr, "down-2");
	assert_string_equal(h_str(m, "result"), "queued");
	m = h_expect(ctl, h_reply_for("cl-a"), H_WAIT_MS, H_ANY);
	assert_string_equal(m->corr, "down-3");
	assert_string_equal(h_str(m, "result"), "released");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-b");
	h_pass(w);
}

static void
test_sigterm_goes_offline_and_back(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session();
	struct h_msg *m;
	long long ta, epoch = h_coord_epoch(w);
	int status;

	ta = acquire(ctl, "doc", "cl-a", sa, NULL, "granted");
	h_drain(ctl, h_owner("doc"));
	status = h_coord_stop(w, SIGTERM);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	m = h_expect(ctl, STATUS, H_WAIT_MS, "state", "offline");
	h_int(m, "since");

	h_coord_start(w);
	assert_true(h_coord_epoch(w) > epoch);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	assert_int_equal(h_int(m, "token"), ta);
	assert_true(acquire(ctl, "doc", "cl-a", sa, NULL, "granted") == ta);
	h_pass(w);
}

static void
test_disconnected_holder_survives_restart(void **state)
{
	/* A roll call of 3 + 30 s: only the grace can end A's hold. */
	struct h_world *w = h_world_start(state,
	    "--grace 3 --keepalive 30 --idle-timeout 600 --idle-warning 60");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	struct h_proc *a = h_sub_proc(w, "cl-a", sa, 1, 60);
	struct h_msg *m;
	long long ta, back;

	ta = acquire(ctl, "doc", "cl-a", sa, "\"conn\":1", "granted");
	acquire(ctl, "doc", "cl-b", sb, NULL, "queued");
	h_proc_kill(a, SIGKILL);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.connected", "#false");

	/* The connected flag is journaled: it is still false afterwards. */
	h_coord_stop(w, SIGKILL);
	h_coord_start(w);
	back = h_now_ms();
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	assert_true(cJSON_IsFalse(h_get(m, "owner.connected")));
	assert_int_equal(h_int(m, "token"), ta);
	acquire(ctl, "doc", "cl-b", sb, NULL, "queued");

	/*
	 * A's grace ends at the latest 3 s after mqlockd is back ("After an
	 * outage"): B gets the lock then, long before the roll call ends.
	 */
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted");
	assert_true(h_int(m, "token") > ta);
	print_message("  granted %lld ms after the restart\n", m->at_ms - back);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked", "reason",
	    "disconnect");
	h_pass(w);
}

static void
test_roll_call_drops_silent_clients(void **state)
{
	struct h_world *w = h_world_start(state,
	    "--grace 0.5 --keepalive 2 --idle-timeout 600 --idle-warning 60");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session(), *sc = h_session();
	struct h_msg *m;
	long long ta, back;

	ta = acquire(ctl, "doc", "cl-a", sa, NULL, "granted");
	acquire(ctl, "doc", "cl-b", sb, NULL, "queued");
	acquire(ctl, "doc", "cl-c", sc, NULL, "queued");
	h_coord_stop(w, SIGKILL);
	h_coord_start(w);
	back = h_now_ms();
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "waiting", "#2");

	/* Only C answers the roll call. */
	h_request(ctl, "doc", "acquire", "cl-c", sc, NULL, NULL);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "queued",
	    "position", "#2");

	/* After grace + keepalive, A and B are gone and C holds the lock. */
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked");
	assert_string_equal(h_str(m, "reason"), "disconnect");
	assert_int_equal(h_int(m, "token"), ta);
	assert_true(m->at_ms >= back + 2500 - 500);
	m = h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "granted");
	assert_true(h_int(m, "token") > ta);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-c");
	assert_int_equal(h_int(m, "waiting"), 0);
	h_expect_none(ctl, h_events("cl-b"), H_QUIET_MS, "event", "granted");
	h_pass(w);
}

/* Accepts an owner message whose idle deadline is later than *arg. */
static int
deadline_after(const struct h_msg *m, void *arg)
{
	cJSON *d = h_get(m, "idle_deadline");

	return cJSON_IsNumber(d) && d->valuedouble > *(long long *)arg;
}

static void
test_deadline_passed_during_outage(void **state)
{
	struct h_world *w = h_world_start(state,
	    "--idle-policy always --grace 1.5 --keepalive 30 --idle-timeout 3 "
	    "--idle-warning 0.5");
	struct h_client *ctl = h_ctl(w);
	struct h_msg *m;
	long long dl, before, floored, quiet, stale = 0;

	h_request(ctl, "doc", "acquire", "cl-a", h_session(), NULL, NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");
	dl = h_int(m, "idle_deadline");
	h_drain(ctl, h_owner("doc"));
	h_coord_stop(w, SIGKILL);

	/* Down until the idle deadline is well past: nothing is decided. */
	quiet = dl + 500 - h_now_ms();
	h_expect_none(ctl, h_events("cl-a"), quiet > 0 ? (int)quiet : 0,
	    "event", "revoked");

	before = h_now_ms();
	h_coord_start(w);
	/* A keeps the lock, with its deadline moved to now + grace. */
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	if (h_int(m, "idle_deadline") <= dl) {
		/* Checked last: first see what happens next. */
		stale = h_int(m, "idle_deadline");
		m = h_state_fn(ctl, h_owner("doc"), H_WAIT_MS, deadline_after,
		    &dl, "idle_deadline later than before the outage");
	}
	assert_string_equal(h_str(m, "owner.client"), "cl-a");
	floored = h_int(m, "idle_deadline");
	assert_true(floored >= before + 1500 - 50);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked");
	assert_string_equal(h_str(m, "reason"), "idle");
	assert_true(m->at_ms >= floored - 50);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	if (stale != 0)
		fail_msg("the first owner message after the restart showed "
			 "idle_deadline %lld, which had passed during the "
			 "outage; the moved one (%lld) came after it",
		    stale, floored);
	h_pass(w);
}

static void
test_status_message(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *late;
	struct h_msg *m;

	/* Retained: a client that comes later still sees it. */
	late = h_client_new(w, "late");
	h_sub(late, STATUS);
	m = h_expect(late, STATUS, H_WAIT_MS, "state", "online");
	assert_true(m->retained);
	h_keys(m, "",
	    "state,version,protocol,since,epoch,grace,idle_timeout,"
	    "idle_warning,idle_policy,keepalive,tickets");
	h_str(m, "version");
	assert_int_equal(h_int(m, "protocol"), 1);
	assert_int_equal(h_int(m, "epoch"), h_coord_epoch(w));
	assert_true(h_int(m, "since") <= h_now_ms());

	/* kill -9: its Last Will sets offline, retained too. */
	h_coord_stop(w, SIGKILL);
	m = h_expect(late, STATUS, H_WAIT_MS, "state", "offline");
	late = h_client_new(w, "later");
	h_sub(late, STATUS);
	m = h_expect(late, STATUS, H_WAIT_MS, "state", "offline");
	assert_true(m->retained);
	h_pass(w);
}

/*
 * More owner messages than the broker lets mqlockd have in flight (its
 * receive maximum is 100 in the harness, so mqlockd keeps at most 50 of
 * them out at once): the restart republishes every one of them, a window
 * at a time, and serves a request meanwhile.
 */
#define MANY_CLIENTS 4
#define MANY_EACH 150

static void
test_restart_republishes_many_owners(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sess[MANY_CLIENTS];
	int c, i;

	for (c = 0; c < MANY_CLIENTS; c++) {
		sess[c] = h_session();
		for (i = 0; i < MANY_EACH; i++)
			h_request(ctl, h_fmt("m%d-%d", c, i), "acquire",
			    h_fmt("cl-%d", c), sess[c], NULL, NULL);
	}
	for (c = 0; c < MANY_CLIENTS; c++)
		for (i = 0; i < MANY_EACH; i++)
			h_state(ctl, h_owner(h_fmt("m%d-%d", c, i)), H_WAIT_MS,
			    "owner.client", h_fmt("cl-%d", c));
	assert_int_equal(h_coord_stop(w, SIGTERM), 0);
	h_expect(ctl, STATUS, H_WAIT_MS, "state", "offline");

	h_coord_start(w); /* returns once it is online */
	h_request(ctl, "fresh", "acquire", "cl-new", h_session(), NULL, NULL);
	h_expect(ctl, h_events("cl-new"), H_WAIT_MS, "event", "granted");
	for (c = 0; c < MANY_CLIENTS; c++)
		for (i = 0; i < MANY_EACH; i++)
			h_state(ctl, h_owner(h_fmt("m%d-%d", c, i)), H_WAIT_MS,
			    "owner.client", h_fmt("cl-%d", c));
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_status_message, h_teardown),
	    cmocka_unit_test_teardown(test_kill9_restores_state, h_teardown),
	    cmocka_unit_test_teardown(test_requests_while_down_are_handled,
		h_teardown),
	    cmocka_unit_test_teardown(test_sigterm_goes_offline_and_back,
		h_teardown),
	    cmocka_unit_test_teardown(test_disconnected_holder_survives_restart,
		h_teardown),
	    cmocka_unit_test_teardown(test_roll_call_drops_silent_clients,
		h_teardown),
	    cmocka_unit_test_teardown(test_restart_republishes_many_owners,
		h_teardown),
	    cmocka_unit_test_teardown(test_deadline_passed_during_outage,
		h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
