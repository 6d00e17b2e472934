/*
 * test_it_idle.c: the idle timeout under both policies, admin break and
 * purge (topics.md, "Idle timeout", "Admin commands").  mqlockd runs with a
 * 2 s idle timeout and a 1 s warning so each scenario takes a few seconds.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

/* The classic policy: idle holders lose the lock whether or not anyone
 * waits (--idle-policy always). */
#define FLAGS \
	"--idle-policy always --grace 0.5 --idle-timeout 2 --idle-warning 1"
/* The default: only while someone waits. */
#define CFLAGS "--grace 0.5 --idle-timeout 2 --idle-warning 1"
/* Slack for ms rounding between mqlockd's clock reads and ours. */
#define SLACK_MS 50

static struct h_msg *
grant(struct h_client *ctl, const char *lock, const char *id,
    const char *session, const char *extra)
{
	h_request(ctl, lock, "acquire", id, session, extra, NULL);
	return h_expect(ctl, h_events(id), H_WAIT_MS, "event", "granted",
	    "lock", lock);
}

static void
test_warning_then_revoke(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	struct h_msg *m;
	long long ta, dl;

	m = grant(ctl, "doc", "cl-a", sa, NULL);
	ta = h_int(m, "token");
	dl = h_int(m, "idle_deadline");
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	assert_int_equal(h_int(m, "idle_deadline"), dl);
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");

	/* One warning, idle-warning before the deadline. */
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, H_ANY);
	assert_string_equal(h_str(m, "event"), "idle-warning");
	h_keys(m, "", "event,lock,deadline,now");
	assert_int_equal(h_int(m, "deadline"), dl);
	assert_true(m->at_ms >= dl - 1000 - SLACK_MS);

	/* At the deadline: revoked, and the waiter gets the lock. */
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, H_ANY);
	assert_string_equal(h_str(m, "event"), "revoked");
	h_keys(m, "", "event,lock,token,reason,now");
	assert_string_equal(h_str(m, "reason"), "idle");
	assert_int_equal(h_int(m, "token"), ta);
	assert_true(m->at_ms >= dl - SLACK_MS);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	assert_true(h_int(m, "token") > ta);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-b");
	h_expect_none(ctl, h_events("cl-a"), 0, H_ANY);
	h_pass(w);
}

static void
test_activity_keeps_lock(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session();
	struct h_msg *m;
	long long ta, d1, d2, d3;

	m = grant(ctl, "doc", "cl-a", sa, NULL);
	ta = h_int(m, "token");
	d1 = h_int(m, "idle_deadline");
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "idle-warning",
	    "deadline", h_fmt("#%lld", d1));

	/* Activity after the warning moves the deadline ... */
	h_drain(ctl, h_owner("doc"));
	h_request(ctl, "doc", "activity", "cl-a", sa, NULL, NULL);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	d2 = h_int(m, "idle_deadline");
	assert_true(d2 > d1);
	assert_int_equal(h_int(m, "token"), ta);

	/* ... and re-arms the warning; no revoke at the old deadline. */
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "idle-warning",
	    "deadline", h_fmt("#%lld", d2));
	h_expect_none(ctl, h_events("cl-a"), 0, "event", "revoked");

	/* A repeated acquire is activity too. */
	h_drain(ctl, h_owner("doc"));
	m = grant(ctl, "doc", "cl-a", sa, NULL);
	assert_int_equal(h_int(m, "token"), ta);
	d3 = h_int(m, "idle_deadline");
	assert_true(d3 > d2);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	assert_int_equal(h_int(m, "idle_deadline"), d3);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "idle-warning",
	    "deadline", h_fmt("#%lld", d3));
	h_expect_none(ctl, h_events("cl-a"), 0, "event", "revoked");

	/* Then silence: revoked at the last deadline, the lock is free. */
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked",
	    "reason", "idle");
	assert_true(m->at_ms >= d3 - SLACK_MS);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_pass(w);
}

static void
test_activity_by_others_ignored(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	struct h_msg *m;
	long long dl;

	m = grant(ctl, "doc", "cl-a", sa, NULL);
	dl = h_int(m, "idle_deadline");
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");

	/* A waiter's activity does not keep the holder's lock alive. */
	h_request(ctl, "doc", "activity", "cl-b", sb, NULL, NULL);
	h_request(ctl, "doc", "activity", "cl-x", h_session(), NULL, NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked",
	    "reason", "idle");
	assert_true(m->at_ms >= dl - SLACK_MS);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted");
	h_expect_none(ctl, h_events("cl-x"), 0, H_ANY);
	h_pass(w);
}

static void
test_warning_at_grant(void **state)
{
	struct h_world *w = h_world_start(state,
	    "--idle-policy always --grace 0.5 --idle-timeout 1.5 "
	    "--idle-warning 2");
	struct h_client *ctl = h_ctl(w);
	struct h_msg *m;
	long long dl;

	m = grant(ctl, "doc", "cl-a", h_session(), NULL);
	dl = h_int(m, "idle_deadline");
	/* The warning period is not shorter than the timeout: warn now. */
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, H_ANY);
	assert_string_equal(h_str(m, "event"), "idle-warning");
	assert_int_equal(h_int(m, "deadline"), dl);
	/* The next event is the revoke: one warning, before it. */
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, H_ANY);
	assert_string_equal(h_str(m, "event"), "revoked");
	assert_string_equal(h_str(m, "reason"), "idle");
	h_expect_none(ctl, h_events("cl-a"), 0, H_ANY);
	h_pass(w);
}

static void
test_idle_clock_runs_while_disconnected(void **state)
{
	struct h_world *w = h_world_start(state,
	    "--idle-policy always --grace 30 --idle-timeout 2 "
	    "--idle-warning 1");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session();
	struct h_proc *a = h_sub_proc(w, "cl-a", sa, 1, 60);
	struct h_msg *m;
	long long dl;

	m = grant(ctl, "doc", "cl-a", sa, "\"conn\":1");
	dl = h_int(m, "idle_deadline");
	h_proc_kill(a, SIGKILL);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "owner.connected", "#false");
	/* Long before the 30 s grace ends, the idle deadline strikes. */
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked",
	    "lock", "doc");
	assert_string_equal(h_str(m, "reason"), "idle");
	assert_true(m->at_ms >= dl - SLACK_MS);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_pass(w);
}

static void
test_admin_break(void **state)
{
	struct h_world *w = h_world_start(state,
	    "--grace 0.5 --idle-timeout 600 --idle-warning 60");
	struct h_client *ctl = h_ctl(w);
	const char *admin = H_PREFIX "/_admin/command";
	const char *sa = h_session(), *sb = h_session();
	struct h_msg *m;
	long long ta, tb;
	char body[256];

	ta = h_int(grant(ctl, "doc", "cl-a", sa, NULL), "token");
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");

	snprintf(body, sizeof(body),
	    "{\"op\":\"break\",\"lock\":\"doc\","
	    "\"reason\":\"stuck since Friday\"}");
	h_publish(ctl, admin, body, strlen(body), 0, "brk-1");
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked",
	    "lock", "doc");
	h_keys(m, "", "event,lock,token,reason,message,now");
	assert_string_equal(h_str(m, "reason"), "admin");
	assert_string_equal(h_str(m, "message"), "stuck since Friday");
	assert_int_equal(h_int(m, "token"), ta);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted");
	tb = h_int(m, "token");
	assert_true(tb > ta);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-b");

	m = h_expect(ctl, h_reply_topic(ctl), H_WAIT_MS, "ok", "#true");
	h_keys(m, "", "ok,lock,result,token");
	assert_string_equal(h_str(m, "lock"), "doc");
	assert_string_equal(h_str(m, "result"), "revoked");
	assert_int_equal(h_int(m, "token"), ta);
	assert_non_null(m->corr);
	assert_string_equal(m->corr, "brk-1");

	/* Without a reason, and then on the now free lock. */
	h_pub(ctl, admin, "{\"op\":\"break\",\"lock\":\"doc\"}");
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "revoked");
	assert_string_equal(h_str(m, "reason"), "admin");
	assert_int_equal(h_int(m, "token"), tb);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);

	snprintf(body, sizeof(body), "{\"op\":\"break\",\"lock\":\"doc\"}");
	h_publish(ctl, admin, body, strlen(body), 0, "brk-2");
	m = h_expect(ctl, h_reply_topic(ctl), H_WAIT_MS, "ok", "#true",
	    "result", "ignored");
	assert_string_equal(h_str(m, "lock"), "doc");
	assert_string_equal(m->corr, "brk-2");
	snprintf(body, sizeof(body),
	    "{\"op\":\"break\",\"lock\":\"never-used\"}");
	h_publish(ctl, admin, body, strlen(body), 0, "brk-3");
	m = h_expect(ctl, h_reply_topic(ctl), H_WAIT_MS, "ok", "#true",
	    "result", "ignored");
	assert_string_equal(m->corr, "brk-3");
	h_expect_none(ctl, h_reply_topic(ctl), H_QUIET_MS, H_ANY);
	h_pass(w);
}

/*
 * --idle-policy contended (the default): an idle holder nobody waits for
 * keeps the lock; a waiter arriving after the deadline brings the warning
 * at once and the revocation one warning period later.
 */
static void
test_contended_idle_only_when_someone_waits(void **state)
{
	struct h_world *w = h_world_start(state, CFLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	struct h_msg *m;
	long long ta, dl, before;

	m = grant(ctl, "doc", "cl-a", sa, NULL);
	ta = h_int(m, "token");
	dl = h_int(m, "idle_deadline");
	m = h_last(ctl, H_PREFIX "/_coordinator/status");
	assert_string_equal(h_str(m, "idle_policy"), "contended");
	/* Well past the deadline, with nobody waiting: nothing happens. */
	h_expect_none(ctl, h_events("cl-a"), (int)(dl - h_now_ms()) + 1500,
	    H_ANY);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a", "token",
	    h_fmt("#%lld", ta));

	/* B comes: A is warned now, revoked a warning period later. */
	before = h_now_ms();
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "idle-warning");
	assert_true(h_int(m, "deadline") >= before + 1000 - SLACK_MS);
	dl = h_int(m, "deadline");
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked");
	assert_string_equal(h_str(m, "reason"), "idle");
	assert_true(m->at_ms >= dl - SLACK_MS);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted");
	assert_true(h_int(m, "token") > ta);
	h_pass(w);
}

static int
deadline_after(const struct h_msg *m, void *arg)
{
	const long long *dl = arg;
	cJSON *d = h_get(m, "idle_deadline");

	return cJSON_IsNumber(d) && d->valuedouble > (double)*dl;
}

/*
 * Contended: the waiter leaves after the warning: the holder keeps the
 * lock past its deadline; activity still moves the deadline and re-arms.
 */
static void
test_contended_waiter_leaves(void **state)
{
	struct h_world *w = h_world_start(state, CFLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	struct h_msg *m;
	long long dl;

	m = grant(ctl, "doc", "cl-a", sa, NULL);
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "idle-warning");
	dl = h_int(m, "deadline");
	h_request(ctl, "doc", "release", "cl-b", sb, NULL, NULL);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "waiting", "#0");
	/* Nobody waits at the deadline: no revocation. */
	h_expect_none(ctl, h_events("cl-a"), (int)(dl - h_now_ms()) + 1000,
	    "event", "revoked");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	/* Activity moves the deadline as always. */
	h_request(ctl, "doc", "activity", "cl-a", sa, NULL, NULL);
	h_state_fn(ctl, h_owner("doc"), H_WAIT_MS, deadline_after, &dl,
	    "an idle deadline after the old one");
	h_pass(w);
}

/* An operator empties a queue of clients that will never come. */
static void
test_admin_purge(void **state)
{
	struct h_world *w = h_world_start(state, CFLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *admin = H_PREFIX "/_admin/command";
	const char *sa = h_session();
	const char *body = "{\"op\":\"purge\",\"lock\":\"doc\","
			   "\"reason\":\"ghosts\"}";
	struct h_msg *m;
	long long ta;
	int i;

	ta = h_int(grant(ctl, "doc", "cl-a", sa, NULL), "token");
	for (i = 0; i < 5; i++) {
		h_request(ctl, "doc", "acquire", h_fmt("g%d", i), h_session(),
		    NULL, NULL);
		h_expect(ctl, h_events(h_fmt("g%d", i)), H_WAIT_MS, "event",
		    "queued");
	}
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "waiting", "#5");
	h_publish(ctl, admin, body, strlen(body), 0, "purge-1");
	m = h_expect(ctl, h_reply_topic(ctl), H_WAIT_MS, "ok", "#true");
	h_keys(m, "", "ok,lock,result,count");
	assert_string_equal(h_str(m, "result"), "purged");
	assert_int_equal(h_int(m, "count"), 5);
	for (i = 0; i < 5; i++) {
		m = h_expect(ctl, h_events(h_fmt("g%d", i)), H_WAIT_MS, "event",
		    "dropped");
		h_keys(m, "", "event,lock,reason,message,now");
		assert_string_equal(h_str(m, "reason"), "admin");
		assert_string_equal(h_str(m, "message"), "ghosts");
	}
	/* The holder keeps the lock and its token. */
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "waiting", "#0", "owner.client",
	    "cl-a", "token", h_fmt("#%lld", ta));
	h_expect_none(ctl, h_events("cl-a"), 0, H_ANY);
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_warning_then_revoke, h_teardown),
	    cmocka_unit_test_teardown(test_activity_keeps_lock, h_teardown),
	    cmocka_unit_test_teardown(test_activity_by_others_ignored,
		h_teardown),
	    cmocka_unit_test_teardown(test_warning_at_grant, h_teardown),
	    cmocka_unit_test_teardown(test_idle_clock_runs_while_disconnected,
		h_teardown),
	    cmocka_unit_test_teardown(test_admin_break, h_teardown),
	    cmocka_unit_test_teardown(
		test_contended_idle_only_when_someone_waits, h_teardown),
	    cmocka_unit_test_teardown(test_contended_waiter_leaves, h_teardown),
	    cmocka_unit_test_teardown(test_admin_purge, h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
