/*
 * test_it_wills.c: clients that die, freeze, come back or send stale wills
 * (topics.md, "Wills and disconnection").  Killable clients are
 * mosquitto_sub processes holding a connection with the contract's will;
 * ctl publishes the requests that name them.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "harness.h"

/* mosquitto_sub refuses a keepalive below 5 s. */
#define KEEPALIVE 5
#define SLOW_KEEPALIVE 60

static long long
grant(struct h_client *ctl, const char *lock, const char *id,
    const char *session, const char *extra)
{
	h_request(ctl, lock, "acquire", id, session, extra, NULL);
	return h_int(h_expect(ctl, h_events(id), H_WAIT_MS, "event", "granted",
			 "lock", lock),
	    "token");
}

static void
queue(struct h_client *ctl, const char *lock, const char *id,
    const char *session, const char *extra, int position)
{
	h_request(ctl, lock, "acquire", id, session, extra, NULL);
	h_expect(ctl, h_events(id), H_WAIT_MS, "event", "queued", "lock", lock,
	    "position", h_fmt("#%d", position));
}

static void
test_killed_holder_handed_over(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 0.5");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	struct h_proc *a = h_sub_proc(w, "cl-a", sa, 1, SLOW_KEEPALIVE);
	struct h_msg *m;
	long long ta, tb;

	ta = grant(ctl, "doc", "cl-a", sa, "\"conn\":1");
	queue(ctl, "doc", "cl-b", sb, NULL, 1);

	h_proc_kill(a, SIGKILL);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "owner.connected", "#false");
	assert_int_equal(h_int(m, "token"), ta);
	assert_int_equal(h_int(m, "waiting"), 1);

	/* After the grace: revoked, and the waiter gets a larger token. */
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked",
	    "lock", "doc");
	assert_string_equal(h_str(m, "reason"), "disconnect");
	assert_int_equal(h_int(m, "token"), ta);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	tb = h_int(m, "token");
	assert_true(tb > ta);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-b");
	assert_true(cJSON_IsTrue(h_get(m, "owner.connected")));
	assert_int_equal(h_int(m, "token"), tb);
	assert_int_equal(h_int(m, "waiting"), 0);
	h_pass(w);
}

static void
test_will_without_conn(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 0.5");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session();
	struct h_proc *a = h_sub_proc(w, "cl-a", sa, -1, SLOW_KEEPALIVE);

	grant(ctl, "doc", "cl-a", sa, NULL);
	h_proc_kill(a, SIGKILL);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "owner.connected", "#false");
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked", "reason",
	    "disconnect");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_pass(w);
}

static void
test_reconnect_within_grace_keeps_lock(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 2");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	struct h_proc *a = h_sub_proc(w, "cl-a", sa, 1, SLOW_KEEPALIVE);
	struct h_msg *m;
	long long ta, will_seen, quiet;

	ta = grant(ctl, "doc", "cl-a", sa, "\"conn\":1");
	queue(ctl, "doc", "cl-b", sb, NULL, 1);

	h_proc_kill(a, SIGKILL);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "owner.connected", "#false");
	will_seen = h_now_ms();

	/* Back with a new connection (conn 2) and the same session. */
	h_sub_proc(w, "cl-a", sa, 2, SLOW_KEEPALIVE);
	h_request(ctl, "doc", "acquire", "cl-a", sa, "\"conn\":2", NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	assert_int_equal(h_int(m, "token"), ta);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "owner.connected", "#true");
	assert_int_equal(h_int(m, "token"), ta);
	assert_int_equal(h_int(m, "waiting"), 1);

	/* The grace period ends and nothing happens. */
	quiet = will_seen + 2000 + 1000 - h_now_ms();
	h_expect_none(ctl, h_events("cl-b"), quiet > 0 ? (int)quiet : 0,
	    "event", "granted");
	h_expect_none(ctl, h_events("cl-a"), 0, "event", "revoked");
	m = h_last(ctl, h_owner("doc"));
	assert_string_equal(h_str(m, "owner.client"), "cl-a");
	assert_true(cJSON_IsTrue(h_get(m, "owner.connected")));
	assert_int_equal(h_int(m, "token"), ta);
	h_pass(w);
}

static void
test_activity_within_grace_reconnects(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 2");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	struct h_proc *a = h_sub_proc(w, "cl-a", sa, 1, SLOW_KEEPALIVE);
	struct h_msg *m;
	long long ta, will_seen, quiet;

	ta = grant(ctl, "doc", "cl-a", sa, "\"conn\":1");
	queue(ctl, "doc", "cl-b", sb, NULL, 1);
	h_proc_kill(a, SIGKILL);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.connected", "#false");
	will_seen = h_now_ms();

	/* Any valid request marks it connected again, not only acquire. */
	h_request(ctl, "doc", "activity", "cl-a", sa, NULL, NULL);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "owner.connected", "#true");
	assert_int_equal(h_int(m, "token"), ta);
	quiet = will_seen + 2000 + 1000 - h_now_ms();
	h_expect_none(ctl, h_events("cl-b"), quiet > 0 ? (int)quiet : 0,
	    "event", "granted");
	h_expect_none(ctl, h_events("cl-a"), 0, "event", "revoked");
	h_pass(w);
}

static void
test_stale_will_ignored(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 0.5");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session();
	const char *will = H_PREFIX "/_clients/cl-a/will";
	struct h_msg *m;
	long long ta;

	h_sub_proc(w, "cl-a", sa, 2, SLOW_KEEPALIVE);
	ta = grant(ctl, "doc", "cl-a", sa, "\"conn\":2");

	/* An older connection's will, and one with another session. */
	h_pub(ctl, will, h_fmt("{\"session\":\"%s\",\"conn\":1}", sa));
	h_pub(ctl, will, h_fmt("{\"session\":\"%s\",\"conn\":3}", h_session()));
	/* A will of a client that holds and waits for nothing. */
	h_pub(ctl, h_fmt("%s/_clients/nobody/will", H_PREFIX),
	    h_fmt("{\"session\":\"%s\",\"conn\":1}", h_session()));

	/* Decided after the wills: B's try-lock finds A still holding. */
	h_request(ctl, "doc", "acquire", "cl-b", h_session(), "\"wait\":false",
	    NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "busy");
	h_expect_none(ctl, h_owner("doc"), H_QUIET_MS, "owner.connected",
	    "#false");
	h_expect_none(ctl, h_events("cl-a"), 0, H_ANY);
	h_expect_none(ctl, h_events("nobody"), 0, H_ANY);

	/*
	 * A request from an older connection is stale: that connection is
	 * gone.  Only a reply says so; nothing changes.
	 */
	h_request(ctl, "doc", "release", "cl-a", sa, "\"conn\":1", "old");
	m = h_expect(ctl, h_reply_for("cl-a"), H_WAIT_MS, "ok", "#false");
	assert_string_equal(h_str(m, "code"), "stale");
	h_expect_none(ctl, h_events("cl-a"), H_QUIET_MS, H_ANY);
	h_request(ctl, "doc", "acquire", "cl-a", sa, "\"conn\":2", NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");
	assert_int_equal(h_int(m, "token"), ta);

	/* A will as high as the highest conn seen counts. */
	h_pub(ctl, will, h_fmt("{\"session\":\"%s\",\"conn\":2}", sa));
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "owner.connected", "#false");
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked");
	assert_string_equal(h_str(m, "reason"), "disconnect");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_pass(w);
}

static void
test_frozen_holder_released(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 0.5");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	struct h_proc *a = h_sub_proc(w, "cl-a", sa, 1, KEEPALIVE);
	long long ta;

	ta = grant(ctl, "doc", "cl-a", sa, "\"conn\":1");
	queue(ctl, "doc", "cl-b", sb, NULL, 1);

	/* Frozen, not dead: only the broker's keepalive notices. */
	h_proc_kill(a, SIGSTOP);
	h_state(ctl, h_owner("doc"), H_SLOW_MS, "owner.client", "cl-a",
	    "owner.connected", "#false");
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked", "reason",
	    "disconnect");
	assert_true(h_int(h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event",
			      "granted"),
			"token") > ta);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-b");
	h_pass(w);
}

static void
test_dead_waiter_dropped(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 2");
	struct h_client *ctl = h_ctl(w);
	const char *sh = h_session(), *sw = h_session(), *sc = h_session();
	struct h_proc *wp = h_sub_proc(w, "cl-w", sw, 1, SLOW_KEEPALIVE);
	struct h_msg *m;

	grant(ctl, "doc", "cl-h", sh, NULL);
	queue(ctl, "doc", "cl-w", sw, "\"conn\":1", 1);
	queue(ctl, "doc", "cl-c", sc, NULL, 2);

	h_proc_kill(wp, SIGKILL);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "queue.0.client", "cl-w",
	    "queue.0.connected", "#false");
	assert_string_equal(h_str(m, "owner.client"), "cl-h");
	assert_true(cJSON_IsTrue(h_get(m, "queue.1.connected")));

	/* Within W's grace the hand-over skips it. */
	h_request(ctl, "doc", "release", "cl-h", sh, NULL, NULL);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "granted");
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-c");
	assert_int_equal(h_int(m, "waiting"), 1);
	assert_string_equal(h_str(m, "queue.0.client"), "cl-w");
	assert_true(cJSON_IsFalse(h_get(m, "queue.0.connected")));

	/* After it, W leaves the queue ... */
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-c",
	    "waiting", "#0");
	/* ... and is never granted, even when the lock becomes free. */
	h_request(ctl, "doc", "release", "cl-c", sc, NULL, NULL);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_expect_none(ctl, h_events("cl-w"), H_QUIET_MS, "event", "granted");
	h_pass(w);
}

static void
test_returning_waiter_granted_when_free(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 3");
	struct h_client *ctl = h_ctl(w);
	const char *sh = h_session(), *sw = h_session();
	struct h_proc *wp = h_sub_proc(w, "cl-w", sw, 1, SLOW_KEEPALIVE);
	struct h_msg *m;
	long long th;

	th = grant(ctl, "doc", "cl-h", sh, NULL);
	queue(ctl, "doc", "cl-w", sw, "\"conn\":1", 1);
	h_proc_kill(wp, SIGKILL);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "queue.0.client", "cl-w",
	    "queue.0.connected", "#false");

	/* Nobody connected waits: the lock is free, W still in the queue. */
	h_request(ctl, "doc", "release", "cl-h", sh, NULL, NULL);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner", "#null");
	assert_int_equal(h_int(m, "waiting"), 1);
	assert_string_equal(h_str(m, "queue.0.client"), "cl-w");
	assert_true(cJSON_IsNull(h_get(m, "token")));

	/* W comes back within its grace: granted at once. */
	h_sub_proc(w, "cl-w", sw, 2, SLOW_KEEPALIVE);
	h_request(ctl, "doc", "acquire", "cl-w", sw, "\"conn\":2", NULL);
	m = h_expect(ctl, h_events("cl-w"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	assert_true(h_int(m, "token") > th);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-w");
	assert_true(cJSON_IsTrue(h_get(m, "owner.connected")));
	assert_int_equal(h_int(m, "waiting"), 0);
	h_expect_none(ctl, h_events("cl-w"), H_QUIET_MS, H_ANY);
	h_pass(w);
}

static void
test_will_covers_every_lock(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 1");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sh = h_session();
	struct h_proc *a = h_sub_proc(w, "cl-a", sa, 1, SLOW_KEEPALIVE);
	struct h_msg *m;
	long long t1, t2;

	/* A holds two locks and waits for a third. */
	t1 = grant(ctl, "one", "cl-a", sa, "\"conn\":1");
	t2 = grant(ctl, "two", "cl-a", sa, "\"conn\":1");
	grant(ctl, "three", "cl-h", sh, NULL);
	queue(ctl, "three", "cl-a", sa, "\"conn\":1", 1);

	h_proc_kill(a, SIGKILL);
	h_state(ctl, h_owner("one"), H_WAIT_MS, "owner.client", "cl-a",
	    "owner.connected", "#false");
	h_state(ctl, h_owner("two"), H_WAIT_MS, "owner.client", "cl-a",
	    "owner.connected", "#false");
	m = h_state(ctl, h_owner("three"), H_WAIT_MS, "queue.0.client", "cl-a",
	    "queue.0.connected", "#false");
	assert_string_equal(h_str(m, "owner.client"), "cl-h");

	/* After the grace: both revoked, and out of the queue. */
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked",
	    "lock", "one");
	assert_int_equal(h_int(m, "token"), t1);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked",
	    "lock", "two");
	assert_int_equal(h_int(m, "token"), t2);
	h_state(ctl, h_owner("one"), H_WAIT_MS, H_FREE);
	h_state(ctl, h_owner("two"), H_WAIT_MS, H_FREE);
	h_state(ctl, h_owner("three"), H_WAIT_MS, "owner.client", "cl-h",
	    "waiting", "#0");

	/* Holding and waiting for nothing, the id may bind a new session. */
	grant(ctl, "one", "cl-a", h_session(), NULL);
	h_pass(w);
}

/*
 * A request that arrives after its own connection's will (a copy the
 * broker kept, delivered late, or replayed by a broker restored from an
 * old save) is stale: it must not bring the client back, answer a roll
 * call or win it a lock (issue 10).  Deterministic: the stale copy is
 * published by hand after the will.
 */
static void
test_request_after_its_will_is_stale(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 1");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	const char *will = h_fmt("%s/_clients/cl-b/will", H_PREFIX);
	struct h_msg *m;

	grant(ctl, "doc", "cl-a", sa, NULL);
	h_request(ctl, "doc", "acquire", "cl-b", sb, "\"conn\":3", NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");
	/* B's connection 3 dies. */
	h_pub(ctl, will, h_fmt("{\"session\":\"%s\",\"conn\":3}", sb));
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "queue.0.client", "cl-b",
	    "queue.0.connected", "#false");
	/* A copy of a request from that very connection arrives late. */
	h_request(ctl, "doc", "acquire", "cl-b", sb, "\"conn\":3", "late");
	m = h_expect(ctl, h_reply_for("cl-b"), H_WAIT_MS, "ok", "#false");
	assert_string_equal(h_str(m, "code"), "stale");
	/* B stays gone: the holder's release frees the lock. */
	h_request(ctl, "doc", "release", "cl-a", sa, NULL, NULL);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner", "#null");
	assert_true(cJSON_IsFalse(h_get(m, "queue.0.connected")));
	/* And after its grace B is gone from the queue, never granted. */
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_expect_none(ctl, h_events("cl-b"), 0, "event", "granted");
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "dropped", "reason",
	    "disconnect");
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_killed_holder_handed_over,
		h_teardown),
	    cmocka_unit_test_teardown(test_will_without_conn, h_teardown),
	    cmocka_unit_test_teardown(test_will_covers_every_lock, h_teardown),
	    cmocka_unit_test_teardown(test_reconnect_within_grace_keeps_lock,
		h_teardown),
	    cmocka_unit_test_teardown(test_activity_within_grace_reconnects,
		h_teardown),
	    cmocka_unit_test_teardown(test_stale_will_ignored, h_teardown),
	    cmocka_unit_test_teardown(test_request_after_its_will_is_stale,
		h_teardown),
	    cmocka_unit_test_teardown(test_frozen_holder_released, h_teardown),
	    cmocka_unit_test_teardown(test_dead_waiter_dropped, h_teardown),
	    cmocka_unit_test_teardown(test_returning_waiter_granted_when_free,
		h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
