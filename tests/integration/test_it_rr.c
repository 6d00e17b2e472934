/*
 * test_it_rr.c: MQTT 5 request/response (topics.md, "MQTT 5 replies"):
 * exactly one reply per request that carries a Response Topic, with the
 * Correlation Data echoed, for every result and for refusals.
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
 * The next reply to a request of client: it must carry corr and have
 * exactly the members keys.
 */
static struct h_msg *
reply(struct h_client *ctl, const char *client, const char *corr,
    const char *result, const char *keys)
{
	struct h_msg *m;

	m = h_expect(ctl, h_reply_for(client), H_WAIT_MS, H_ANY);
	if (m->corr == NULL || strcmp(m->corr, corr) != 0)
		fail_msg("reply %s: correlation %s, expected %s", m->payload,
		    m->corr != NULL ? m->corr : "(none)", corr);
	assert_false(m->retained);
	h_keys(m, "", keys);
	if (result != NULL) {
		assert_true(cJSON_IsTrue(h_get(m, "ok")));
		assert_string_equal(h_str(m, "result"), result);
	} else {
		assert_true(cJSON_IsFalse(h_get(m, "ok")));
	}
	return m;
}

static void
test_reply_for_each_result(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session(), *sc = h_session();
	struct h_msg *m;
	long long ta;

	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, "r1");
	m = reply(ctl, "cl-a", "r1", "granted", "ok,lock,result,token");
	assert_string_equal(h_str(m, "lock"), "doc");
	ta = h_int(m, "token");
	assert_int_equal(h_int(h_expect(ctl, h_events("cl-a"), H_WAIT_MS,
				   "event", "granted"),
			     "token"),
	    ta);

	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, "r2");
	m = reply(ctl, "cl-a", "r2", "granted", "ok,lock,result,token");
	assert_int_equal(h_int(m, "token"), ta);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");

	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, "r3");
	m = reply(ctl, "cl-b", "r3", "queued", "ok,lock,result,position");
	assert_string_equal(h_str(m, "lock"), "doc");
	assert_int_equal(h_int(m, "position"), 1);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");

	h_request(ctl, "doc", "acquire", "cl-b", sb, NULL, "r4");
	m = reply(ctl, "cl-b", "r4", "queued", "ok,lock,result,position");
	assert_int_equal(h_int(m, "position"), 1);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");

	h_request(ctl, "doc", "acquire", "cl-c", sc, "\"wait\":false", "r5");
	m = reply(ctl, "cl-c", "r5", "busy", "ok,lock,result");
	assert_string_equal(h_str(m, "lock"), "doc");
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "busy");

	h_request(ctl, "doc", "activity", "cl-a", sa, NULL, "r6");
	m = reply(ctl, "cl-a", "r6", "refreshed", "ok,lock,result");
	assert_string_equal(h_str(m, "lock"), "doc");

	h_request(ctl, "doc", "activity", "cl-c", sc, NULL, "r7");
	m = reply(ctl, "cl-c", "r7", "ignored", "ok,lock,result");
	assert_string_equal(h_str(m, "lock"), "doc");
	h_request(ctl, "doc", "release", "cl-c", sc, NULL, "r8");
	reply(ctl, "cl-c", "r8", "ignored", "ok,lock,result");

	h_request(ctl, "doc", "release", "cl-a", h_session(), NULL, "r9");
	m = reply(ctl, "cl-a", "r9", NULL, "ok,lock,code,message");
	assert_string_equal(h_str(m, "code"), "session-mismatch");
	assert_string_equal(h_str(m, "lock"), "doc");
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "error", "code",
	    "session-mismatch");

	/* A waiter's release and the holder's. */
	h_request(ctl, "doc", "release", "cl-b", sb, NULL, "r10");
	m = reply(ctl, "cl-b", "r10", "released", "ok,lock,result");
	assert_string_equal(h_str(m, "lock"), "doc");
	h_request(ctl, "doc", "release", "cl-a", sa, NULL, "r11");
	reply(ctl, "cl-a", "r11", "released", "ok,lock,result");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);

	/* A grant by hand-over is announced by event; the waiter's own
	 * request was answered when it was queued. */
	h_expect_none(ctl, h_reply_for("cl-a"), H_QUIET_MS, H_ANY);
	h_expect_none(ctl, h_reply_for("cl-b"), 0, H_ANY);
	h_expect_none(ctl, h_reply_for("cl-c"), 0, H_ANY);
	h_expect_none(ctl, h_events("cl-a"), 0, H_ANY);
	h_expect_none(ctl, h_events("cl-b"), 0, H_ANY);
	h_expect_none(ctl, h_events("cl-c"), 0, H_ANY);
	h_pass(w);
}

static void
test_reply_correlation_forms(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *rt;
	char body[256], corr[130];
	unsigned char bin[4] = {0x00, 0xff, 0x80, 0x0a};
	struct h_msg *m;
	size_t n;

	/* A response topic without correlation data. */
	n = (size_t)snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"cl-a\",\"session\":\"%s\"}",
	    h_session());
	rt = "replies/cl-a";
	h_publish5(ctl, H_PREFIX "/one/request", body, n, 0, rt, NULL, 0);
	m = h_expect(ctl, rt, H_WAIT_MS, "ok", "#true", "result", "granted");
	assert_null(m->corr);

	/* Binary correlation data comes back byte for byte. */
	n = (size_t)snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"cl-b\",\"session\":\"%s\"}",
	    h_session());
	rt = "replies/cl-b/mine";
	h_publish5(ctl, H_PREFIX "/two/request", body, n, 0, rt, bin,
	    sizeof(bin));
	m = h_expect(ctl, rt, H_WAIT_MS, "ok", "#true", "result", "granted");
	assert_int_equal(m->corr_len, sizeof(bin));
	assert_memory_equal(m->corr, bin, sizeof(bin));

	/* 128 bytes are echoed; 129 are refused on the events topic only. */
	memset(corr, 'c', 128);
	n = (size_t)snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"cl-c\",\"session\":\"%s\"}",
	    h_session());
	rt = "replies/cl-c";
	h_publish5(ctl, H_PREFIX "/three/request", body, n, 0, rt, corr, 128);
	m = h_expect(ctl, rt, H_WAIT_MS, "ok", "#true", "result", "granted");
	assert_int_equal(m->corr_len, 128);
	assert_memory_equal(m->corr, corr, 128);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "granted");

	memset(corr, 'd', 129);
	n = (size_t)snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"cl-d\",\"session\":\"%s\"}",
	    h_session());
	h_publish5(ctl, H_PREFIX "/four/request", body, n, 0, "replies/cl-d",
	    corr, 129);
	m = h_expect(ctl, h_events("cl-d"), H_WAIT_MS, "event", "error");
	assert_string_equal(h_str(m, "code"), "bad-request");
	assert_string_equal(h_str(m, "lock"), "four");
	h_expect_none(ctl, h_owner("four"), 0, H_ANY);

	/* Requests with no response topic get no reply at all. */
	h_request(ctl, "five", "acquire", "cl-e", h_session(), NULL, NULL);
	h_expect(ctl, h_events("cl-e"), H_WAIT_MS, "event", "granted");
	h_expect_none(ctl, "replies/cl-e", H_QUIET_MS, H_ANY);
	h_expect_none(ctl, "replies/cl-d", 0, H_ANY);
	h_pass(w);
}

static void
test_bad_response_topics(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	char body[256], longtopic[520];
	size_t n;

	/* Wildcards and more than 512 bytes: bad-request, no reply. */
	h_sub(ctl, "replies/+/#");
	n = (size_t)snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"cl-a\",\"session\":\"%s\"}",
	    h_session());
	h_publish5(ctl, H_PREFIX "/one/request", body, n, 0, "replies/+", "w1",
	    2);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "error", "code",
	    "bad-request", "lock", "one");

	memcpy(longtopic, "replies/cl-b/", 13);
	memset(longtopic + 13, 't', 500);
	longtopic[513] = '\0';
	n = (size_t)snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"cl-b\",\"session\":\"%s\"}",
	    h_session());
	h_publish5(ctl, H_PREFIX "/two/request", body, n, 0, longtopic, "w2",
	    2);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "error", "code",
	    "bad-request", "lock", "two");

	/* 512 bytes are fine. */
	h_expect_none(ctl, longtopic, 0, H_ANY);
	longtopic[512] = '\0';
	memcpy(longtopic, "replies/cl-c/", 13);
	n = (size_t)snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"cl-c\",\"session\":\"%s\"}",
	    h_session());
	h_publish5(ctl, H_PREFIX "/three/request", body, n, 0, longtopic, "w3",
	    2);
	h_expect(ctl, h_events("cl-c"), H_WAIT_MS, "event", "granted");
	h_expect(ctl, longtopic, H_WAIT_MS, "ok", "#true", "result", "granted");

	longtopic[512] = 't';
	memcpy(longtopic, "replies/cl-b/", 13);
	h_expect_none(ctl, longtopic, H_QUIET_MS, H_ANY);
	h_expect_none(ctl, h_owner("one"), 0, H_ANY);
	h_expect_none(ctl, h_owner("two"), 0, H_ANY);
	h_pass(w);
}

static void
test_one_reply_each_in_order(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *s[20];
	int i;

	/* Twenty requests in a row: twenty replies, in order. */
	for (i = 0; i < 20; i++) {
		s[i] = h_session();
		h_request(ctl, "many", "acquire", h_fmt("m%02d", i), s[i], NULL,
		    h_fmt("c%02d", i));
	}
	reply(ctl, "m00", "c00", "granted", "ok,lock,result,token");
	for (i = 1; i < 20; i++) {
		struct h_msg *m = reply(ctl, h_fmt("m%02d", i),
		    h_fmt("c%02d", i), "queued", "ok,lock,result,position");

		assert_int_equal(h_int(m, "position"), i);
	}
	h_expect_none(ctl, "replies/m00", H_QUIET_MS, H_ANY);
	for (i = 1; i < 20; i++)
		h_expect_none(ctl, h_reply_for(h_fmt("m%02d", i)), 0, H_ANY);
	h_pass(w);
}

/*
 * A reply goes only to the requester's own space, replies/<client> or
 * below it: never another client's.  (A response topic with text the
 * broker refuses in topics never reaches mqlockd: mosquitto drops the
 * client that sends it.)
 */
static void
test_reply_only_to_own_space(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	static const struct {
		const char *topic;
		int ok;
	} cases[] = {
	    {"replies/cl-a", 1}, {"replies/cl-a/x", 1}, {"replies/cl-a/x/y", 1},
	    {"replies/cl-b", 0},      /* another client's */
	    {"replies/cl-b/cl-a", 0}, /* ... however deep */
	    {"replies/cl-ab", 0},     /* a longer id with the same start */
	    {"replies/cl", 0}, {"replies/", 0}, {"replies", 0},
	    {"locks/doc/owner", 0}, /* outside the reply prefix */
	};
	const char *sa = h_session();
	char body[256];
	size_t n, i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *lock = h_fmt("l%zu", i);

		n = (size_t)snprintf(body, sizeof(body),
		    "{\"op\":\"acquire\",\"client\":\"cl-a\","
		    "\"session\":\"%s\"}",
		    sa);
		h_publish5(ctl, h_fmt(H_PREFIX "/%s/request", lock), body, n, 0,
		    cases[i].topic, "c", 1);
		if (cases[i].ok) {
			h_expect(ctl, cases[i].topic, H_WAIT_MS, "ok", "#true",
			    "lock", lock);
			h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event",
			    "granted", "lock", lock);
		} else {
			h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event",
			    "error", "code", "bad-request", "lock", lock);
		}
	}
	/* Nothing went where it was not allowed, and mqlockd serves on. */
	h_expect_none(ctl, "replies/cl-b", H_QUIET_MS, H_ANY);
	h_expect_none(ctl, "replies/cl-ab", 0, H_ANY);
	h_expect_none(ctl, "replies/cl", 0, H_ANY);
	h_request(ctl, "after", "acquire", "cl-z", h_session(), NULL, "z");
	h_expect(ctl, h_reply_for("cl-z"), H_WAIT_MS, "result", "granted");
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_reply_for_each_result, h_teardown),
	    cmocka_unit_test_teardown(test_reply_correlation_forms, h_teardown),
	    cmocka_unit_test_teardown(test_bad_response_topics, h_teardown),
	    cmocka_unit_test_teardown(test_one_reply_each_in_order, h_teardown),
	    cmocka_unit_test_teardown(test_reply_only_to_own_space, h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
