/*
 * test_it_basic.c: grant, queue, hand-over, idempotent acquire, release by
 * strangers and waiters, try-lock, session binding and the owner message,
 * against a real mosquitto and mqlockd (topics.md, "What each request does",
 * "Session binding", "Owner messages", "Events").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define FLAGS "--grace 0.5 --idle-timeout 600 --idle-warning 60"

/*
 * Checks that an owner message has exactly the members topics.md lists, of
 * the documented types, and that queue lists min(waiting, 20) waiters.
 */
static void
check_owner_shape(const struct h_msg *m, const char *lock)
{
	cJSON *owner = h_get(m, "owner"), *queue = h_get(m, "queue");
	long long waiting;
	int i, n;

	h_keys(m, "", "v,lock,owner,token,since,idle_deadline,waiting,queue");
	assert_int_equal(h_int(m, "v"), 1);
	assert_string_equal(h_str(m, "lock"), lock);
	h_int(m, "since");
	waiting = h_int(m, "waiting");
	assert_true(waiting >= 0);
	if (cJSON_IsNull(owner)) {
		assert_true(cJSON_IsNull(h_get(m, "token")));
		assert_true(cJSON_IsNull(h_get(m, "idle_deadline")));
	} else {
		h_keys(m, "owner", "client,user,connected");
		h_str(m, "owner.client");
		h_str(m, "owner.user");
		assert_true(cJSON_IsBool(h_get(m, "owner.connected")));
		assert_true(h_int(m, "token") > 0);
		h_int(m, "idle_deadline");
	}
	assert_true(cJSON_IsArray(queue));
	n = cJSON_GetArraySize(queue);
	assert_int_equal(n, waiting < 20 ? waiting : 20);
	for (i = 0; i < n; i++) {
		char path[32];

		snprintf(path, sizeof(path), "queue.%d", i);
		h_keys(m, path, "client,user,connected");
		h_str(m, h_fmt("%s.client", path));
		h_str(m, h_fmt("%s.user", path));
		assert_true(
		    cJSON_IsBool(h_get(m, h_fmt("%s.connected", path))));
	}
}

/* Nothing more arrives for any of ids: each acquire had exactly one event. */
static void
no_more_events(struct h_client *ctl, const char *const *ids)
{
	int i;

	for (i = 0; ids[i] != NULL; i++)
		h_expect_none(ctl, h_events(ids[i]), i == 0 ? H_QUIET_MS : 0,
		    H_ANY);
}

static void
test_grant_queue_handover(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session(), *sc = h_session();
	const char *const ids[] = {"cl-a", "cl-b", "cl-c", NULL};
	struct h_msg *m;
	long long ta, tb, tc, before;

	before = h_now_ms();
	h_request(ctl, "doc", "acquire", "cl-a", sa, "\"user\":\"Alice\"",
	    NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	h_keys(m, "", "event,lock,token,idle_deadline,now");
	ta = h_int(m, "token");
	assert_true(ta > 0);
	assert_true(h_int(m, "idle_deadline") >= before + 600 * 1000 - 1000);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "waiting", "#0");
	check_owner_shape(m, "doc");
	assert_string_equal(h_str(m, "owner.user"), "Alice");
	assert_true(cJSON_IsTrue(h_get(m, "owner.connected")));
	assert_int_equal(h_int(m, "token"), ta);

	h_request(ctl, "doc", "acquire", "cl-b", sb, "\"user\":\"Bob\"", NULL);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued",
	    "lock", "doc");
	h_keys(m, "", "event,lock,position,now");
	assert_int_equal(h_int(m, "position"), 1);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "waiting", "#1");
	check_owner_shape(m, "doc");
	assert_int_equal(h_int(m, "token"), ta);
	assert_string_equal(h_str(m, "queue.0.client"), "cl-b");
	assert_string_equal(h_str(m, "queue.0.user"), "Bob");
	assert_true(cJSON_IsTrue(h_get(m, "queue.0.connected")));

	h_request(ctl, "doc", "acquire", "cl-c", sc, NULL, NULL);
	m = h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "queued",
	    "lock", "doc");
	assert_int_equal(h_int(m, "position"), 2);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "waiting", "#2");
	check_owner_shape(m, "doc");
	assert_string_equal(h_str(m, "queue.0.client"), "cl-b");
	assert_string_equal(h_str(m, "queue.1.client"), "cl-c");
	assert_string_equal(h_str(m, "queue.1.user"), "");

	/* The holder leaves: the first waiter gets a larger token. */
	h_request(ctl, "doc", "release", "cl-a", sa, NULL, NULL);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	tb = h_int(m, "token");
	assert_true(tb > ta);
	m = h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "queued",
	    "lock", "doc");
	assert_int_equal(h_int(m, "position"), 1);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-b",
	    "waiting", "#1");
	check_owner_shape(m, "doc");
	assert_int_equal(h_int(m, "token"), tb);
	assert_string_equal(h_str(m, "owner.user"), "Bob");
	assert_string_equal(h_str(m, "queue.0.client"), "cl-c");

	h_request(ctl, "doc", "release", "cl-b", sb, NULL, NULL);
	m = h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	tc = h_int(m, "token");
	assert_true(tc > tb);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-c",
	    "waiting", "#0");
	check_owner_shape(m, "doc");
	assert_int_equal(h_int(m, "token"), tc);

	before = h_now_ms();
	h_request(ctl, "doc", "release", "cl-c", sc, NULL, NULL);
	/* Free with nobody waiting: the retained owner message is deleted. */
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	assert_int_equal(m->len, 0);
	assert_true(m->at_ms >= before);

	/* Releases by the holder are not answered with events. */
	no_more_events(ctl, ids);
	h_pass(w);
}

static void
test_owner_queue_lists_twenty(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	struct h_msg *m;
	int i;

	h_request(ctl, "big", "acquire", "holder", h_session(), NULL, NULL);
	h_expect(ctl, h_events("holder"), H_WAIT_MS, "event", "granted");
	for (i = 0; i < 25; i++) {
		const char *id = h_fmt("w%02d", i);

		h_request(ctl, "big", "acquire", id, h_session(),
		    h_fmt("\"user\":\"user %d\"", i), NULL);
		m = h_expect(ctl, h_events(id), H_WAIT_MS, "event", "queued");
		assert_int_equal(h_int(m, "position"), i + 1);
	}
	m = h_state(ctl, h_owner("big"), H_WAIT_MS, "waiting", "#25");
	check_owner_shape(m, "big");
	assert_int_equal(cJSON_GetArraySize(h_get(m, "queue")), 20);
	for (i = 0; i < 20; i++) {
		assert_string_equal(h_str(m, h_fmt("queue.%d.client", i)),
		    h_fmt("w%02d", i));
		assert_string_equal(h_str(m, h_fmt("queue.%d.user", i)),
		    h_fmt("user %d", i));
	}
	h_pass(w);
}

static void
test_idempotent_acquire(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session(), *sc = h_session();
	const char *const ids[] = {"cl-a", "cl-b", "cl-c", NULL};
	struct h_msg *m;
	long long ta, dl;

	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");
	ta = h_int(m, "token");
	dl = h_int(m, "idle_deadline");
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued",
	    "position", "#1");
	h_request(ctl, "doc", "acquire", "cl-c", sc, NULL, NULL);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "queued",
	    "position", "#2");

	/* Holder again: granted, same token; it counts as activity. */
	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	assert_int_equal(h_int(m, "token"), ta);
	assert_true(h_int(m, "idle_deadline") >= dl);

	/* Waiters again: queued with their current positions. */
	h_request(ctl, "doc", "acquire", "cl-c", sc, NULL, NULL);
	m = h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "queued",
	    "lock", "doc");
	assert_int_equal(h_int(m, "position"), 2);
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued",
	    "lock", "doc");
	assert_int_equal(h_int(m, "position"), 1);

	/* Nothing changed: still A, then B, then C. */
	m = h_last(ctl, h_owner("doc"));
	check_owner_shape(m, "doc");
	assert_string_equal(h_str(m, "owner.client"), "cl-a");
	assert_int_equal(h_int(m, "token"), ta);
	assert_int_equal(h_int(m, "waiting"), 2);
	assert_string_equal(h_str(m, "queue.0.client"), "cl-b");
	assert_string_equal(h_str(m, "queue.1.client"), "cl-c");

	/* ... and the order is kept at hand-over. */
	h_request(ctl, "doc", "release", "cl-a", sa, NULL, NULL);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted");
	assert_true(h_int(m, "token") > ta);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "queued",
	    "position", "#1");
	no_more_events(ctl, ids);
	h_pass(w);
}

static void
test_stranger_release_ignored(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session();
	const char *const ids[] = {"cl-a", "stranger", "cl-b", NULL};
	struct h_msg *m;
	long long ta;

	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");
	ta = h_int(m, "token");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");

	/* A client that neither holds nor waits releases: nothing happens. */
	h_request(ctl, "doc", "release", "stranger", h_session(), NULL, NULL);
	h_request(ctl, "doc", "activity", "stranger", h_session(), NULL, NULL);
	/* Knowing the holder's session is not enough under another id. */
	h_request(ctl, "doc", "release", "stranger", sa, NULL, NULL);

	/* A try-lock by someone else, decided after the above, is busy. */
	h_request(ctl, "doc", "acquire", "cl-b", h_session(), "\"wait\":false",
	    NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "busy", "lock",
	    "doc");
	m = h_last(ctl, h_owner("doc"));
	assert_string_equal(h_str(m, "owner.client"), "cl-a");
	assert_int_equal(h_int(m, "token"), ta);
	assert_int_equal(h_int(m, "waiting"), 0);
	h_expect_none(ctl, h_owner("doc"), 0, H_FREE);
	/* "ignored" is not a refusal: no event for the stranger. */
	no_more_events(ctl, ids);
	h_pass(w);
}

static void
test_trylock(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	const char *const ids[] = {"cl-a", "cl-b", NULL};
	struct h_msg *m;
	long long ta, tb;

	/* Try-lock on a free lock is a grant. */
	h_request(ctl, "doc", "acquire", "cl-a", sa, "\"wait\":false", NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted",
	    "lock", "doc");
	ta = h_int(m, "token");

	/* On a held lock: busy, and the queue stays empty. */
	h_request(ctl, "doc", "acquire", "cl-b", sb, "\"wait\":false", NULL);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "busy");
	h_keys(m, "", "event,lock,now");
	assert_string_equal(h_str(m, "lock"), "doc");

	/* By the holder: granted again with the same token. */
	h_request(ctl, "doc", "acquire", "cl-a", sa, "\"wait\":false", NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");
	assert_int_equal(h_int(m, "token"), ta);

	/* B did not join the queue: the release frees the lock. */
	h_request(ctl, "doc", "release", "cl-a", sa, NULL, NULL);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_expect_none(ctl, h_owner("doc"), 0, "owner.client", "cl-b");

	h_request(ctl, "doc", "acquire", "cl-b", sb, "\"wait\":false", NULL);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted");
	tb = h_int(m, "token");
	assert_true(tb > ta);
	no_more_events(ctl, ids);
	h_pass(w);
}

static void
test_session_mismatch(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sa2 = h_session(), *sb = h_session();
	const char *const ids[] = {"cl-a", "cl-b", NULL};
	struct h_msg *m;
	long long ta;

	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");
	ta = h_int(m, "token");
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");

	/* Another session for a bound client id: refused, nothing changes. */
	h_request(ctl, "doc", "release", "cl-a", sa2, NULL, NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "error", "code",
	    "session-mismatch");
	h_keys(m, "", "event,lock,code,message,now");
	assert_string_equal(h_str(m, "lock"), "doc");
	h_str(m, "message");
	assert_null(strstr(m->payload, sa));
	assert_null(strstr(m->payload, sa2));

	h_request(ctl, "other", "acquire", "cl-a", sa2, NULL, NULL);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "error", "code",
	    "session-mismatch");
	assert_string_equal(h_str(m, "lock"), "other");

	h_request(ctl, "doc", "activity", "cl-a", sa2, NULL, NULL);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "error", "code",
	    "session-mismatch", "lock", "doc");

	/* A waiter is bound too. */
	h_request(ctl, "doc", "release", "cl-b", sa2, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "error", "code",
	    "session-mismatch", "lock", "doc");
	h_request(ctl, "doc", "acquire", "cl-b", sa2, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "error", "code",
	    "session-mismatch", "lock", "doc");

	/* Still A holding, B waiting; "other" never got an owner. */
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued",
	    "position", "#1");
	m = h_last(ctl, h_owner("doc"));
	assert_string_equal(h_str(m, "owner.client"), "cl-a");
	assert_int_equal(h_int(m, "token"), ta);
	assert_int_equal(h_int(m, "waiting"), 1);
	h_expect_none(ctl, h_owner("other"), 0, H_ANY);

	/* Once A holds and waits for nothing, a new session binds. */
	h_request(ctl, "doc", "release", "cl-a", sa, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted");
	h_request(ctl, "other", "acquire", "cl-a", sa2, NULL, NULL);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted", "lock",
	    "other");
	no_more_events(ctl, ids);
	h_pass(w);
}

static void
test_waiter_release_leaves_queue(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session(), *sc = h_session();
	const char *const ids[] = {"cl-a", "cl-b", "cl-c", NULL};
	struct h_msg *m;

	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, NULL);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");
	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued",
	    "position", "#1");
	h_request(ctl, "doc", "acquire", "cl-c", sc, NULL, NULL);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "queued",
	    "position", "#2");

	/* B leaves the queue: C moves up and is told so. */
	h_request(ctl, "doc", "release", "cl-b", sb, NULL, NULL);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "queued",
	    "position", "#1", "lock", "doc");
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "queue.0.client", "cl-c");
	check_owner_shape(m, "doc");
	assert_int_equal(h_int(m, "waiting"), 1);

	/* The hand-over skips B. */
	h_request(ctl, "doc", "release", "cl-a", sa, NULL, NULL);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "granted");
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-c");
	assert_int_equal(h_int(m, "waiting"), 0);
	no_more_events(ctl, ids);
	h_pass(w);
}

static void
test_tokens_shared_by_all_locks(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *s = h_session();
	long long last = 0, t;
	int i;

	for (i = 0; i < 6; i++) {
		const char *lock = h_fmt("lock-%d", i % 3);

		h_request(ctl, lock, "acquire", "cl-a", s, NULL, NULL);
		t = h_int(h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event",
			      "granted", "lock", lock),
		    "token");
		assert_true(t > last);
		assert_true(t < 9007199254740992LL);
		last = t;
		h_request(ctl, lock, "release", "cl-a", s, NULL, NULL);
		h_state(ctl, h_owner(lock), H_WAIT_MS, H_FREE);
	}
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_grant_queue_handover, h_teardown),
	    cmocka_unit_test_teardown(test_owner_queue_lists_twenty,
		h_teardown),
	    cmocka_unit_test_teardown(test_idempotent_acquire, h_teardown),
	    cmocka_unit_test_teardown(test_stranger_release_ignored,
		h_teardown),
	    cmocka_unit_test_teardown(test_trylock, h_teardown),
	    cmocka_unit_test_teardown(test_session_mismatch, h_teardown),
	    cmocka_unit_test_teardown(test_waiter_release_leaves_queue,
		h_teardown),
	    cmocka_unit_test_teardown(test_tokens_shared_by_all_locks,
		h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
