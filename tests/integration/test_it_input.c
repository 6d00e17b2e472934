/*
 * test_it_input.c: bad input and limits (topics.md, "Requests", "Names",
 * "Error codes", "Limits", "Admin commands").  Every refused request must
 * be answered by an MQTT 5 error reply, by an error event when its payload
 * is a JSON object naming a valid client, must change nothing, and must be
 * followed by a valid request that still works.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define FLAGS "--grace 0.5 --idle-timeout 600 --idle-warning 60"

/* Event expectations for a refused request. */
enum ev {
	EV_ANY = -1, /* the payload names no valid client: not checked */
	EV_NONE = 0, /* not a JSON object: the named client gets nothing */
	EV_ERROR = 1 /* a JSON object with a valid client: error event */
};

/*
 * A bad request.  In the payload, $C stands for the case's client id, $S
 * for a valid session, $X for 129 bytes, $Y for 128 bytes and $Z for 15
 * bytes.
 */
struct bad {
	const char *name;
	const char *payload;
	enum ev ev;
};

static const struct bad bad_requests[] = {
    {"not JSON", "hello", EV_ANY},
    {"empty payload", "", EV_ANY},
    {"truncated object",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\"",
	EV_NONE},
    {"array", "[\"acquire\",\"$C\",\"$S\"]", EV_NONE},
    {"string", "\"$C\"", EV_NONE},
    {"number", "42", EV_ANY},
    {"null", "null", EV_ANY},
    {"trailing garbage",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\"} x",
	EV_ANY},
    {"invalid UTF-8 in user",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"user\":\"\xff\"}",
	EV_ERROR},
    {"invalid UTF-8 in an unknown field",
	"{\"op\":\"acquire\",\"client\":\"$C\",\"session\":\"$S\","
	"\"x\":\"\xc3\x28\"}",
	EV_ERROR},
    {"overlong UTF-8",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"user\":\"\xc0\xaf\"}",
	EV_ERROR},
    {"UTF-8 surrogate",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"user\":\"\xed\xa0\x80\"}",
	EV_ERROR},
    {"invalid UTF-8 in session",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
	"\xff\xff\xff\xff\"}",
	EV_ERROR},
    {"U+0000 in user",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"user\":\"a\\u0000b\"}",
	EV_ERROR},
    {"U+0000 in session",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"0123456789abcdef\\u0000\"}",
	EV_ERROR},
    {"op not a string", "{\"op\":1,\"client\":\"$C\",\"session\":\"$S\"}",
	EV_ERROR},
    {"op missing", "{\"client\":\"$C\",\"session\":\"$S\"}", EV_ERROR},
    {"unknown op",
	"{\"op\":\"steal\",\"client\":\"$C\","
	"\"session\":\"$S\"}",
	EV_ERROR},
    {"op in another case",
	"{\"op\":\"Acquire\",\"client\":\"$C\","
	"\"session\":\"$S\"}",
	EV_ERROR},
    {"client not a string",
	"{\"op\":\"acquire\",\"client\":5,"
	"\"session\":\"$S\"}",
	EV_ANY},
    {"client missing", "{\"op\":\"acquire\",\"session\":\"$S\"}", EV_ANY},
    {"client empty",
	"{\"op\":\"acquire\",\"client\":\"\","
	"\"session\":\"$S\"}",
	EV_ANY},
    {"client with /",
	"{\"op\":\"acquire\",\"client\":\"$C/x\","
	"\"session\":\"$S\"}",
	EV_ANY},
    {"client with +",
	"{\"op\":\"acquire\",\"client\":\"$C+\","
	"\"session\":\"$S\"}",
	EV_ANY},
    {"client with #",
	"{\"op\":\"acquire\",\"client\":\"$C#\","
	"\"session\":\"$S\"}",
	EV_ANY},
    {"client starting with $",
	"{\"op\":\"acquire\",\"client\":\"\\u0024$C\",\"session\":\"$S\"}",
	EV_ANY},
    {"client with a control character",
	"{\"op\":\"acquire\",\"client\":\"$C\\u0001\",\"session\":\"$S\"}",
	EV_ANY},
    {"client with DEL",
	"{\"op\":\"acquire\",\"client\":\"$C\\u007f\",\"session\":\"$S\"}",
	EV_ANY},
    {"client of 129 bytes",
	"{\"op\":\"acquire\",\"client\":\"$X\","
	"\"session\":\"$S\"}",
	EV_ANY},
    {"session not a string",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":1234567890123456789}",
	EV_ERROR},
    {"session missing", "{\"op\":\"acquire\",\"client\":\"$C\"}", EV_ERROR},
    {"session of 15 bytes",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$Z\"}",
	EV_ERROR},
    {"session of 129 bytes",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$X\"}",
	EV_ERROR},
    {"user not a string",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"user\":5}",
	EV_ERROR},
    {"user null",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"user\":null}",
	EV_ERROR},
    {"user of 129 bytes",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"user\":\"$X\"}",
	EV_ERROR},
    {"conn a string",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"conn\":\"1\"}",
	EV_ERROR},
    {"conn negative",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"conn\":-1}",
	EV_ERROR},
    {"conn a fraction",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"conn\":1.5}",
	EV_ERROR},
    {"conn 2^53",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"conn\":9007199254740992}",
	EV_ERROR},
    {"conn a boolean",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"conn\":true}",
	EV_ERROR},
    {"wait a string",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"wait\":\"false\"}",
	EV_ERROR},
    {"wait a number",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"wait\":0}",
	EV_ERROR},
    {"wait null",
	"{\"op\":\"acquire\",\"client\":\"$C\","
	"\"session\":\"$S\",\"wait\":null}",
	EV_ERROR},
    {"release with conn a string",
	"{\"op\":\"release\",\"client\":\"$C\",\"session\":\"$S\","
	"\"conn\":\"x\"}",
	EV_ERROR},
    {"activity without session", "{\"op\":\"activity\",\"client\":\"$C\"}",
	EV_ERROR},
};

/* Expands the placeholders of struct bad into out; returns the length. */
static size_t
expand(char *out, size_t size, const char *tmpl, const char *cid,
    const char *session)
{
	size_t n = 0, k, len;
	const char *add;
	char rep[140];

	for (; *tmpl != '\0'; tmpl++) {
		add = NULL;
		if (tmpl[0] == '$' && tmpl[1] != '\0' &&
		    strchr("CSXYZ", tmpl[1]) != NULL) {
			switch (tmpl[1]) {
			case 'C':
				add = cid;
				break;
			case 'S':
				add = session;
				break;
			default:
				len = tmpl[1] == 'X' ? 129
				    : tmpl[1] == 'Y' ? 128
						     : 15;
				memset(rep, tmpl[1] + ('a' - 'A'), len);
				rep[len] = '\0';
				add = rep;
				break;
			}
			tmpl++;
		}
		if (add == NULL) {
			assert_true(n + 1 < size);
			out[n++] = *tmpl;
			continue;
		}
		k = strlen(add);
		assert_true(n + k < size);
		memcpy(out + n, add, k);
		n += k;
	}
	out[n] = '\0';
	return n;
}

/*
 * Publishes payload to P/<lock>/request (bound: P/<lock>/request/<cid>)
 * asking for a reply on replies/<cid>, and checks the refusal: where the
 * request names cid (always on the bound topic; on the unbound one when
 * its payload is an object with "client" cid, ev EV_ERROR) a reply with
 * code and an error event; where it names nobody, neither (checked by
 * no_reply() at the end).  No owner message appears for the lock.  Then
 * cid acquires another lock with a fresh session, which must work.
 * lock_known: the lock id is valid.
 */
static void
refused_on(struct h_client *ctl, int bound, const char *lock, int lock_known,
    const void *payload, size_t len, const char *cid, enum ev ev,
    const char *code, const char *what)
{
	char topic[512], corr[64], okl[64];
	struct h_msg *m;

	print_message("  %s%s\n", what, bound ? " (bound)" : "");
	snprintf(topic, sizeof(topic), "%s/%s/request%s%s", H_PREFIX, lock,
	    bound ? "/" : "", bound ? cid : "");
	snprintf(corr, sizeof(corr), "corr-%s", cid);
	snprintf(okl, sizeof(okl), "ok-%s", cid);
	h_publish5(ctl, topic, payload, len, 0, h_reply_for(cid), corr,
	    strlen(corr));

	if (bound || ev == EV_ERROR) {
		m = h_expect(ctl, h_reply_for(cid), H_WAIT_MS, "ok", "#false");
		if (m->corr == NULL || strcmp(m->corr, corr) != 0)
			fail_msg("%s: reply %s has correlation %s, expected "
				 "%s",
			    what, m->payload,
			    m->corr != NULL ? m->corr : "(none)", corr);
		if (strcmp(h_str(m, "code"), code) != 0)
			fail_msg("%s: reply %s, expected code %s", what,
			    m->payload, code);
		h_str(m, "message");
		if (lock_known)
			assert_string_equal(h_str(m, "lock"), lock);

		m = h_expect(ctl, h_events(cid), H_WAIT_MS, "event", "error");
		h_keys(m, "", "event,lock,code,message,now");
		if (strcmp(h_str(m, "code"), code) != 0)
			fail_msg("%s: event %s, expected code %s", what,
			    m->payload, code);
		if (lock_known)
			assert_string_equal(h_str(m, "lock"), lock);
		else
			assert_true(cJSON_IsNull(h_get(m, "lock")));
	}

	/* The coordinator still serves, and cid was not bound. */
	h_request(ctl, okl, "acquire", cid, h_session(), NULL, NULL);
	h_expect(ctl, h_events(cid), H_WAIT_MS, "event", "granted", "lock",
	    okl);
	if (!bound && ev != EV_ANY && ev != EV_ERROR)
		h_expect_none(ctl, h_events(cid), 0, "event", "error");
	if (lock_known)
		h_expect_none(ctl, h_owner(lock), 0, H_ANY);
}

static void
refused(struct h_client *ctl, const char *lock, int lock_known,
    const void *payload, size_t len, const char *cid, enum ev ev,
    const char *code, const char *what)
{
	refused_on(ctl, 0, lock, lock_known, payload, len, cid, ev, code, what);
}

/* No reply reached cid: its request named nobody (checked after a wait). */
static void
no_reply(struct h_client *ctl, const char *cid, int wait)
{
	h_expect_none(ctl, h_reply_for(cid), wait ? H_QUIET_MS : 0, H_ANY);
}

static void
test_bad_requests(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	char payload[2048], cid[16], lock[16];
	size_t i, len;

	for (i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
		const struct bad *b = &bad_requests[i];

		snprintf(cid, sizeof(cid), "c%02zu", i);
		snprintf(lock, sizeof(lock), "L%02zu", i);
		len = expand(payload, sizeof(payload), b->payload, cid,
		    h_session());
		refused(ctl, lock, 1, payload, len, cid, b->ev, "bad-request",
		    b->name);
	}
	/* Unbound requests that named nobody got no reply either. */
	for (i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
		if (bad_requests[i].ev == EV_ERROR)
			continue;
		snprintf(cid, sizeof(cid), "c%02zu", i);
		no_reply(ctl, cid, i == 0);
	}
	/* On its bound topic, every bad request names its sender. */
	for (i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
		const struct bad *b = &bad_requests[i];

		snprintf(cid, sizeof(cid), "b%02zu", i);
		snprintf(lock, sizeof(lock), "K%02zu", i);
		len = expand(payload, sizeof(payload), b->payload, cid,
		    h_session());
		refused_on(ctl, 1, lock, 1, payload, len, cid, b->ev,
		    "bad-request", b->name);
	}
	h_pass(w);
}

static void
test_oversized_requests(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *s = h_session();
	char head[256];
	char *big;
	size_t n, size = 70000;

	big = malloc(size + 1);
	assert_non_null(big);

	/* Exactly 4096 bytes is allowed. */
	n = (size_t)snprintf(head, sizeof(head),
	    "{\"op\":\"acquire\",\"client\":\"fit\",\"session\":\"%s\","
	    "\"pad\":\"",
	    s);
	memcpy(big, head, n);
	memset(big + n, 'p', 4096 - n - 2);
	memcpy(big + 4096 - 2, "\"}", 2);
	h_publish(ctl, H_PREFIX "/fit/request", big, 4096, 0, NULL);
	h_expect(ctl, h_events("fit"), H_WAIT_MS, "event", "granted", "lock",
	    "fit");

	/*
	 * One byte more is refused unread: on the unbound topic nobody can
	 * be told; on the bound topic the sender is.
	 */
	n = (size_t)snprintf(head, sizeof(head),
	    "{\"op\":\"acquire\",\"client\":\"c4097\",\"session\":\"%s\","
	    "\"pad\":\"",
	    h_session());
	memcpy(big, head, n);
	memset(big + n, 'p', 4097 - n - 2);
	memcpy(big + 4097 - 2, "\"}", 2);
	refused(ctl, "L4097", 1, big, 4097, "c4097", EV_NONE, "bad-request",
	    "4097 bytes");
	no_reply(ctl, "c4097", 1);
	n = (size_t)snprintf(head, sizeof(head),
	    "{\"op\":\"acquire\",\"client\":\"d4097\",\"session\":\"%s\","
	    "\"pad\":\"",
	    h_session());
	memcpy(big, head, n);
	refused_on(ctl, 1, "B4097", 1, big, 4097, "d4097", EV_ERROR,
	    "bad-request", "4097 bytes");

	/* Far larger: the same, and the service goes on. */
	n = (size_t)snprintf(head, sizeof(head),
	    "{\"op\":\"acquire\",\"client\":\"chuge\",\"session\":\"%s\","
	    "\"pad\":\"",
	    h_session());
	memcpy(big, head, n);
	memset(big + n, 'p', size - n - 2);
	memcpy(big + size - 2, "\"}", 2);
	h_publish(ctl, H_PREFIX "/Lhuge/request", big, size, 0, NULL);
	h_request(ctl, "ok-huge", "acquire", "chuge", h_session(), NULL, NULL);
	h_expect(ctl, h_events("chuge"), H_WAIT_MS, "event", "granted", "lock",
	    "ok-huge");
	h_expect_none(ctl, h_events("chuge"), 0, "event", "error");
	h_expect_none(ctl, h_owner("Lhuge"), 0, H_ANY);
	free(big);
	h_pass(w);
}

static void
test_boundaries_accepted(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	char y128[129], sess16[17], lock128[129];
	struct h_msg *m;

	memset(y128, 'y', 128);
	y128[128] = '\0';
	memcpy(sess16, "0123456789abcdef", 17);
	memset(lock128, 'l', 128);
	lock128[128] = '\0';

	h_request(ctl, "b1", "acquire", "s16", sess16, NULL, NULL);
	h_expect(ctl, h_events("s16"), H_WAIT_MS, "event", "granted");
	h_request(ctl, "b2", "acquire", "s128", y128, NULL, NULL);
	h_expect(ctl, h_events("s128"), H_WAIT_MS, "event", "granted");
	h_request(ctl, "b3", "acquire", "u128", h_session(),
	    h_fmt("\"user\":\"%s\"", y128), NULL);
	h_expect(ctl, h_events("u128"), H_WAIT_MS, "event", "granted");
	m = h_state(ctl, h_owner("b3"), H_WAIT_MS, "owner.client", "u128");
	assert_string_equal(h_str(m, "owner.user"), y128);
	h_request(ctl, "b4", "acquire", y128, h_session(), NULL, NULL);
	h_expect(ctl, h_events(y128), H_WAIT_MS, "event", "granted");
	h_request(ctl, "b5", "acquire", "_svc", h_session(), NULL, NULL);
	h_expect(ctl, h_events("_svc"), H_WAIT_MS, "event", "granted");
	h_request(ctl, lock128, "acquire", "l128", h_session(), NULL, NULL);
	h_expect(ctl, h_events("l128"), H_WAIT_MS, "event", "granted", "lock",
	    lock128);
	h_request(ctl, "b6", "acquire", "conn0", h_session(), "\"conn\":0",
	    NULL);
	h_expect(ctl, h_events("conn0"), H_WAIT_MS, "event", "granted");
	h_request(ctl, "b7", "acquire", "connmax", h_session(),
	    "\"conn\":9007199254740991", NULL);
	h_expect(ctl, h_events("connmax"), H_WAIT_MS, "event", "granted");
	h_request(ctl, "b8", "acquire", "unknown", h_session(),
	    "\"colour\":\"blue\",\"n\":[1,{\"x\":null}]", NULL);
	h_expect(ctl, h_events("unknown"), H_WAIT_MS, "event", "granted");
	h_request(ctl, "b9", "acquire", "utf8", h_session(),
	    "\"user\":\"Zo\xc3\xab \xf0\x9f\x98\x80\"", NULL);
	h_expect(ctl, h_events("utf8"), H_WAIT_MS, "event", "granted");
	m = h_state(ctl, h_owner("b9"), H_WAIT_MS, "owner.client", "utf8");
	assert_string_equal(h_str(m, "owner.user"),
	    "Zo\xc3\xab \xf0\x9f\x98\x80");
	/* Lock ids may hold any other UTF-8, spaces and '$' after the start. */
	h_request(ctl, "d\xc3\xa9j\xc3\xa0 vu$", "acquire", "utf8lock",
	    h_session(), NULL, NULL);
	h_expect(ctl, h_events("utf8lock"), H_WAIT_MS, "event", "granted",
	    "lock", "d\xc3\xa9j\xc3\xa0 vu$");
	h_pass(w);
}

static void
test_invalid_lock_ids(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	char long_id[130], payload[256];
	const char *ids[3];
	size_t i, n;

	memset(long_id, 'l', 129);
	long_id[129] = '\0';
	ids[0] = "_x";
	ids[1] = "$x";
	ids[2] = long_id;
	/*
	 * Control characters in a topic never reach mqlockd: mosquitto
	 * closes the connection of a client that publishes one.
	 */
	for (i = 0; i < 3; i++) {
		char cid[16];

		snprintf(cid, sizeof(cid), "k%zu", i);
		n = (size_t)snprintf(payload, sizeof(payload),
		    "{\"op\":\"acquire\",\"client\":\"%s\","
		    "\"session\":\"%s\"}",
		    cid, h_session());
		refused(ctl, ids[i], 0, payload, n, cid, EV_ERROR,
		    "invalid-lock", ids[i]);
	}
	h_pass(w);
}

static void
test_bad_admin_commands(void **state)
{
	static const struct {
		const char *payload;
		const char *code;
	} cases[] = {
	    {"hello", "bad-request"},
	    {"[]", "bad-request"},
	    {"{\"lock\":\"doc\"}", "bad-request"},
	    {"{\"op\":\"smash\",\"lock\":\"doc\"}", "bad-request"},
	    {"{\"op\":\"break\"}", "bad-request"},
	    {"{\"op\":\"break\",\"lock\":5}", "bad-request"},
	    {"{\"op\":\"break\",\"lock\":\"doc\",\"reason\":5}", "bad-request"},
	    {"{\"op\":\"break\",\"lock\":\"doc\",\"reason\":\"\xff\"}",
		"bad-request"},
	    {"{\"op\":\"break\",\"lock\":\"_x\"}", "invalid-lock"},
	    {"{\"op\":\"break\",\"lock\":\"a/b\"}", "invalid-lock"},
	};
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *admin = H_PREFIX "/_admin/command";
	const char *sa = h_session();
	char reason[300], body[400], corr[32];
	struct h_msg *m;
	long long ta;
	size_t i;
	int wrong = 0;

	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, NULL);
	ta = h_int(
	    h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted"),
	    "token");

	/* Check every case, then list all that went wrong. */
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(corr, sizeof(corr), "adm-%zu", i);
		h_publish(ctl, admin, cases[i].payload,
		    strlen(cases[i].payload), 0, corr);
		m = h_expect(ctl, h_reply_topic(ctl), H_WAIT_MS, "ok",
		    "#false");
		assert_string_equal(m->corr, corr);
		h_str(m, "message");
		if (strcmp(h_str(m, "code"), cases[i].code) != 0) {
			print_error("admin command %s: expected code %s, "
				    "got %s\n",
			    cases[i].payload, cases[i].code, m->payload);
			wrong++;
		}
	}
	/* A reason of 257 bytes is too long. */
	memset(reason, 'r', 257);
	reason[257] = '\0';
	snprintf(body, sizeof(body),
	    "{\"op\":\"break\",\"lock\":\"doc\",\"reason\":\"%s\"}", reason);
	h_publish(ctl, admin, body, strlen(body), 0, "adm-long");
	m = h_expect(ctl, h_reply_topic(ctl), H_WAIT_MS, "ok", "#false");
	assert_string_equal(m->corr, "adm-long");
	assert_string_equal(h_str(m, "code"), "bad-request");

	/* Nothing was broken; 256 bytes are fine. */
	assert_int_equal(wrong, 0);
	h_expect_none(ctl, h_events("cl-a"), 0, H_ANY);
	reason[256] = '\0';
	snprintf(body, sizeof(body),
	    "{\"op\":\"break\",\"lock\":\"doc\",\"reason\":\"%s\"}", reason);
	h_publish(ctl, admin, body, strlen(body), 0, "adm-ok");
	m = h_expect(ctl, h_reply_topic(ctl), H_WAIT_MS, "ok", "#true");
	assert_string_equal(m->corr, "adm-ok");
	assert_string_equal(h_str(m, "result"), "revoked");
	assert_int_equal(h_int(m, "token"), ta);
	m = h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "revoked");
	assert_string_equal(h_str(m, "message"), reason);
	h_pass(w);
}

static void
test_waiter_limit(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sh = h_session(), *s0 = NULL, *sx = h_session();
	struct h_msg *m;
	int i;

	h_request(ctl, "busy", "acquire", "holder", sh, NULL, NULL);
	h_expect(ctl, h_events("holder"), H_WAIT_MS, "event", "granted");
	for (i = 0; i < 1024; i++) {
		const char *s = h_session();

		if (i == 0)
			s0 = s;
		h_request(ctl, "busy", "acquire", h_fmt("w%04d", i), s, NULL,
		    NULL);
	}
	for (i = 0; i < 1024; i++)
		h_expect(ctl, h_events(h_fmt("w%04d", i)), H_WAIT_MS, "event",
		    "queued", "position", h_fmt("#%d", i + 1));
	m = h_state(ctl, h_owner("busy"), H_WAIT_MS, "waiting", "#1024");
	assert_int_equal(cJSON_GetArraySize(h_get(m, "queue")), 20);

	/* The 1025th waiter is refused. */
	h_request(ctl, "busy", "acquire", "extra", sx, NULL, "lim-1");
	m = h_expect(ctl, h_events("extra"), H_WAIT_MS, "event", "error");
	assert_string_equal(h_str(m, "code"), "limit");
	assert_string_equal(h_str(m, "lock"), "busy");
	m = h_expect(ctl, h_reply_for("extra"), H_WAIT_MS, "ok", "#false");
	assert_string_equal(h_str(m, "code"), "limit");
	assert_string_equal(m->corr, "lim-1");
	/* Try-lock is simply busy. */
	h_request(ctl, "busy", "acquire", "extra", sx, "\"wait\":false", NULL);
	h_expect(ctl, h_events("extra"), H_WAIT_MS, "event", "busy");

	/* One leaves; now there is room. */
	h_request(ctl, "busy", "release", "w0000", s0, NULL, NULL);
	h_request(ctl, "busy", "acquire", "extra", sx, NULL, NULL);
	h_expect(ctl, h_events("extra"), H_WAIT_MS, "event", "queued",
	    "position", "#1024");
	h_state(ctl, h_owner("busy"), H_WAIT_MS, "waiting", "#1024",
	    "queue.0.client", "w0001");
	h_pass(w);
}

static void
test_locks_per_client_limit(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *s = h_session();
	struct h_msg *m;
	int i;

	/* 255 held and one awaited make 256. */
	h_request(ctl, "held-by-other", "acquire", "other", h_session(), NULL,
	    NULL);
	h_expect(ctl, h_events("other"), H_WAIT_MS, "event", "granted");
	for (i = 0; i < 255; i++)
		h_request(ctl, h_fmt("m%03d", i), "acquire", "many", s, NULL,
		    NULL);
	h_request(ctl, "held-by-other", "acquire", "many", s, NULL, NULL);
	for (i = 0; i < 255; i++)
		h_expect(ctl, h_events("many"), H_WAIT_MS, "event", "granted",
		    "lock", h_fmt("m%03d", i));
	h_expect(ctl, h_events("many"), H_WAIT_MS, "event", "queued", "lock",
	    "held-by-other");

	h_request(ctl, "m255", "acquire", "many", s, NULL, "lim-2");
	m = h_expect(ctl, h_events("many"), H_WAIT_MS, "event", "error");
	assert_string_equal(h_str(m, "code"), "limit");
	assert_string_equal(h_str(m, "lock"), "m255");
	m = h_expect(ctl, h_reply_for("many"), H_WAIT_MS, "ok", "#false");
	assert_string_equal(h_str(m, "code"), "limit");
	assert_string_equal(m->corr, "lim-2");
	h_expect_none(ctl, h_owner("m255"), 0, H_ANY);

	/* Re-acquiring a held lock is not a new one. */
	h_request(ctl, "m000", "acquire", "many", s, NULL, NULL);
	h_expect(ctl, h_events("many"), H_WAIT_MS, "event", "granted", "lock",
	    "m000");

	/* Giving one up makes room. */
	h_request(ctl, "m000", "release", "many", s, NULL, NULL);
	h_request(ctl, "m255", "acquire", "many", s, NULL, NULL);
	h_expect(ctl, h_events("many"), H_WAIT_MS, "event", "granted", "lock",
	    "m255");
	h_pass(w);
}

static void
test_retained_before_start_not_acted_on(void **state)
{
	struct h_world *w = h_world_new(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *topic = H_PREFIX "/ret/request";
	struct h_msg *m;
	char body[256];
	int n;

	/* Retained before mqlockd ever ran. */
	n = snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"cl-r\",\"session\":\"%s\"}",
	    h_session());
	h_publish(ctl, topic, body, (size_t)n, 1, NULL);
	h_coord_start(w);

	/* Decided after it: the lock is still free for someone else. */
	h_request(ctl, "ret", "acquire", "cl-t", h_session(), "\"wait\":false",
	    NULL);
	m = h_expect(ctl, h_events("cl-t"), H_WAIT_MS, H_ANY);
	if (strcmp(h_str(m, "event"), "granted") != 0)
		fail_msg("a retained request was acted on: cl-t got %s",
		    m->payload);
	h_expect_none(ctl, h_events("cl-r"), H_QUIET_MS, H_ANY);
	h_state(ctl, h_owner("ret"), H_WAIT_MS, "owner.client", "cl-t");

	/* Nor after a restart. */
	h_coord_stop(w, SIGKILL);
	h_coord_start(w);
	h_request(ctl, "probe", "acquire", "cl-p", h_session(), NULL, NULL);
	h_expect(ctl, h_events("cl-p"), H_WAIT_MS, "event", "granted");
	h_expect_none(ctl, h_events("cl-r"), H_QUIET_MS, H_ANY);

	/* Clear it; cl-r's session was never bound. */
	h_publish(ctl, topic, "", 0, 1, NULL);
	h_request(ctl, "other", "acquire", "cl-r", h_session(), NULL, NULL);
	h_expect(ctl, h_events("cl-r"), H_WAIT_MS, "event", "granted", "lock",
	    "other");
	h_pass(w);
}

static void
test_retained_while_running_not_acted_on(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *topic = H_PREFIX "/ret/request";
	struct h_msg *m;
	char body[256];
	int n;

	/* "does nothing now": published with retain while mqlockd runs. */
	n = snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"cl-s\",\"session\":\"%s\"}",
	    h_session());
	h_publish(ctl, topic, body, (size_t)n, 1, NULL);
	h_request(ctl, "ret", "acquire", "cl-t", h_session(), "\"wait\":false",
	    NULL);
	m = h_expect(ctl, h_events("cl-t"), H_WAIT_MS, H_ANY);
	if (strcmp(h_str(m, "event"), "granted") != 0)
		fail_msg("a retained request was acted on: cl-t got %s",
		    m->payload);
	h_expect_none(ctl, h_events("cl-s"), H_QUIET_MS, H_ANY);
	h_state(ctl, h_owner("ret"), H_WAIT_MS, "owner.client", "cl-t");
	h_publish(ctl, topic, "", 0, 1, NULL);
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_bad_requests, h_teardown),
	    cmocka_unit_test_teardown(test_oversized_requests, h_teardown),
	    cmocka_unit_test_teardown(test_boundaries_accepted, h_teardown),
	    cmocka_unit_test_teardown(test_invalid_lock_ids, h_teardown),
	    cmocka_unit_test_teardown(test_bad_admin_commands, h_teardown),
	    cmocka_unit_test_teardown(test_waiter_limit, h_teardown),
	    cmocka_unit_test_teardown(test_locks_per_client_limit, h_teardown),
	    cmocka_unit_test_teardown(test_retained_before_start_not_acted_on,
		h_teardown),
	    cmocka_unit_test_teardown(test_retained_while_running_not_acted_on,
		h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
