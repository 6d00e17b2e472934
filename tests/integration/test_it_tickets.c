/*
 * test_it_tickets.c: tickets, verified users, same-user takeover and the
 * backend query through a real mosquitto and mqlockd (topics.md
 * "Tickets", "Checking a save").  Tickets are minted here with libjwt
 * under the key mqlockd reads with --ticket-key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jwt.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define KEY "integration-ticket-key-0123456789abcdef"

static char keydir[64], keypath[96];

static int
make_key(void **state)
{
	FILE *f;

	(void)state;
	snprintf(keydir, sizeof(keydir), "/tmp/mqlock-itkey-XXXXXX");
	if (mkdtemp(keydir) == NULL)
		return -1;
	snprintf(keypath, sizeof(keypath), "%s/key", keydir);
	if ((f = fopen(keypath, "w")) == NULL)
		return -1;
	fputs(KEY "\n", f);
	fclose(f);
	return chmod(keypath, 0600);
}

static int
drop_key(void **state)
{
	(void)state;
	unlink(keypath);
	rmdir(keydir);
	return 0;
}

/* A ticket for client, user uid/name, expiring in exp_in s; locks JSON
 * array text or NULL.  In an h_fmt() buffer. */
static const char *
ticket(const char *client, const char *uid, const char *name, long exp_in,
    const char *locks)
{
	jwt_t *jwt = NULL;
	char json[1024];
	char *t;
	const char *out;

	snprintf(json, sizeof(json),
	    "{\"sub\":\"%s\",\"name\":\"%s\",\"client\":\"%s\",\"exp\":%lld%s%s}",
	    uid, name, client, h_now_ms() / 1000 + exp_in,
	    locks != NULL ? ",\"locks\":" : "", locks != NULL ? locks : "");
	assert_int_equal(jwt_new(&jwt), 0);
	assert_int_equal(jwt_add_grants_json(jwt, json), 0);
	assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256,
			     (const unsigned char *)KEY, (int)strlen(KEY)),
	    0);
	t = jwt_encode_str(jwt);
	assert_non_null(t);
	out = h_fmt("%s", t);
	free(t);
	jwt_free(jwt);
	return out;
}

static const char *
flags(const char *extra)
{
	return h_fmt("--ticket-key %s --grace 0.5%s%s", keypath,
	    extra[0] ? " " : "", extra);
}

/* A request on client's bound topic; corr: a reply to replies/<client>. */
static void
req(struct h_client *ctl, const char *lock, const char *op, const char *client,
    const char *session, const char *extra, const char *corr)
{
	char body[4096];
	int n = snprintf(body, sizeof(body),
	    "{\"op\":\"%s\",\"client\":\"%s\"%s%s%s%s%s}", op, client,
	    session != NULL ? ",\"session\":\"" : "",
	    session != NULL ? session : "", session != NULL ? "\"" : "",
	    extra != NULL ? "," : "", extra != NULL ? extra : "");

	assert_true(n > 0 && (size_t)n < sizeof(body));
	h_publish5(ctl, h_fmt("%s/%s/request/%s", H_PREFIX, lock, client), body,
	    (size_t)n, 0, corr != NULL ? h_reply_for(client) : NULL, corr,
	    corr != NULL ? strlen(corr) : 0);
}

static void
test_verified_holder_shows_uid(void **state)
{
	struct h_world *w = h_world_start(state, flags(""));
	struct h_client *ctl = h_ctl(w);
	struct h_msg *m;

	/* The ticket's name wins over the request's user. */
	req(ctl, "doc", "acquire", "ed-a", h_session(),
	    h_fmt("\"user\":\"Mallory\",\"ticket\":\"%s\"",
		ticket("ed-a", "42", "Alice", 60, NULL)),
	    NULL);
	h_expect(ctl, h_events("ed-a"), H_WAIT_MS, "event", "granted");
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "ed-a");
	assert_string_equal(h_str(m, "owner.uid"), "42");
	assert_string_equal(h_str(m, "owner.user"), "Alice");
	/* Without a ticket (allowed: not --require-ticket): no uid. */
	req(ctl, "doc", "acquire", "ed-b", h_session(), "\"user\":\"Bob\"",
	    NULL);
	h_expect(ctl, h_events("ed-b"), H_WAIT_MS, "event", "queued");
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "waiting", "#1");
	assert_string_equal(h_str(m, "queue.0.user"), "Bob");
	assert_null(h_get(m, "queue.0.uid"));
	m = h_last(ctl, H_PREFIX "/_coordinator/status");
	assert_string_equal(h_str(m, "tickets"), "optional");
	h_pass(w);
}

static void
refused(struct h_client *ctl, const char *client, const char *extra,
    const char *code)
{
	struct h_msg *m;

	req(ctl, "doc", "acquire", client, h_session(), extra, "t");
	m = h_expect(ctl, h_reply_for(client), H_WAIT_MS, "ok", "#false");
	assert_string_equal(h_str(m, "code"), code);
	h_expect(ctl, h_events(client), H_WAIT_MS, "event", "error", "code",
	    code);
}

static void
test_require_ticket(void **state)
{
	struct h_world *w = h_world_start(state, flags("--require-ticket"));
	struct h_client *ctl = h_ctl(w);
	const char *s = h_session();

	refused(ctl, "ed-a", NULL, "ticket-required");
	refused(ctl, "ed-b",
	    h_fmt("\"ticket\":\"%s\"", ticket("ed-a", "42", "A", 60, NULL)),
	    "ticket-mismatch");
	refused(ctl, "ed-c",
	    h_fmt("\"ticket\":\"%s\"", ticket("ed-c", "43", "C", -5, NULL)),
	    "ticket-expired");
	refused(ctl, "ed-d",
	    h_fmt("\"ticket\":\"%s\"",
		ticket("ed-d", "44", "D", 60, "[\"other\"]")),
	    "ticket-lock");
	refused(ctl, "ed-e", "\"ticket\":\"not.a.ticket\"", "ticket-invalid");
	/* Nobody got it; a good ticket does. */
	h_expect_none(ctl, h_owner("doc"), 0, H_ANY);
	req(ctl, "doc", "acquire", "ed-f", s,
	    h_fmt("\"ticket\":\"%s\"",
		ticket("ed-f", "45", "F", 60, "[\"doc\"]")),
	    NULL);
	h_expect(ctl, h_events("ed-f"), H_WAIT_MS, "event", "granted");
	/* Bound: its session alone releases (no ticket needed for that). */
	req(ctl, "doc", "release", "ed-f", s, NULL, "r");
	h_expect(ctl, h_reply_for("ed-f"), H_WAIT_MS, "result", "released");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_pass(w);
}

static void
test_same_user_takeover(void **state)
{
	struct h_world *w = h_world_start(state, flags(""));
	struct h_client *ctl = h_ctl(w);
	struct h_msg *m;
	long long t1, t2;

	req(ctl, "doc", "acquire", "tab-1", h_session(),
	    h_fmt("\"ticket\":\"%s\"",
		ticket("tab-1", "42", "Alice", 60, NULL)),
	    NULL);
	t1 = h_int(
	    h_expect(ctl, h_events("tab-1"), H_WAIT_MS, "event", "granted"),
	    "token");
	/* Another user asking to take over only queues. */
	req(ctl, "doc", "acquire", "bob-1", h_session(),
	    h_fmt("\"takeover\":true,\"ticket\":\"%s\"",
		ticket("bob-1", "7", "Bob", 60, NULL)),
	    NULL);
	h_expect(ctl, h_events("bob-1"), H_WAIT_MS, "event", "queued",
	    "position", "#1");
	/* Alice's other tab takes over at once, with a new token. */
	req(ctl, "doc", "acquire", "tab-2", h_session(),
	    h_fmt("\"takeover\":true,\"ticket\":\"%s\"",
		ticket("tab-2", "42", "Alice", 60, NULL)),
	    NULL);
	m = h_expect(ctl, h_events("tab-1"), H_WAIT_MS, "event", "revoked");
	assert_string_equal(h_str(m, "reason"), "takeover");
	assert_int_equal(h_int(m, "token"), t1);
	t2 = h_int(
	    h_expect(ctl, h_events("tab-2"), H_WAIT_MS, "event", "granted"),
	    "token");
	assert_true(t2 > t1);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "tab-2");
	assert_string_equal(h_str(m, "owner.uid"), "42");
	assert_string_equal(h_str(m, "queue.0.client"), "bob-1");
	h_pass(w);
}

static void
test_backend_query(void **state)
{
	struct h_world *w = h_world_start(state, flags(""));
	struct h_client *ctl = h_ctl(w);
	struct h_msg *m;
	long long ta;

	/* A lock nobody uses. */
	req(ctl, "doc", "query", "svc-1", NULL, NULL, "q1");
	m = h_expect(ctl, h_reply_for("svc-1"), H_WAIT_MS, "ok", "#true");
	assert_string_equal(h_str(m, "result"), "state");
	assert_true(cJSON_IsNull(h_get(m, "owner")));
	assert_int_equal(h_int(m, "waiting"), 0);
	h_int(m, "now");

	req(ctl, "doc", "acquire", "ed-a", h_session(),
	    h_fmt("\"ticket\":\"%s\"", ticket("ed-a", "42", "Alice", 60, NULL)),
	    NULL);
	ta = h_int(
	    h_expect(ctl, h_events("ed-a"), H_WAIT_MS, "event", "granted"),
	    "token");
	req(ctl, "doc", "acquire", "ed-b", h_session(), "\"user\":\"Bob\"",
	    NULL);
	h_expect(ctl, h_events("ed-b"), H_WAIT_MS, "event", "queued");
	/* Exact as committed: holder, uid, token, queue. */
	req(ctl, "doc", "query", "svc-1", NULL, NULL, "q2");
	m = h_expect(ctl, h_reply_for("svc-1"), H_WAIT_MS, "ok", "#true");
	assert_string_equal(h_str(m, "owner.client"), "ed-a");
	assert_string_equal(h_str(m, "owner.uid"), "42");
	assert_int_equal(h_int(m, "token"), ta);
	assert_int_equal(h_int(m, "waiting"), 1);
	assert_string_equal(h_str(m, "queue.0.client"), "ed-b");
	/* A query changes nothing and binds nobody. */
	h_expect_none(ctl, h_events("svc-1"), H_QUIET_MS, H_ANY);
	req(ctl, "other", "acquire", "svc-1", h_session(), NULL, NULL);
	h_expect(ctl, h_events("svc-1"), H_WAIT_MS, "event", "granted");
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_verified_holder_shows_uid,
		h_teardown),
	    cmocka_unit_test_teardown(test_require_ticket, h_teardown),
	    cmocka_unit_test_teardown(test_same_user_takeover, h_teardown),
	    cmocka_unit_test_teardown(test_backend_query, h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, make_key, drop_key);
}
