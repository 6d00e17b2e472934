/*
 * test_sec_tickets.c: tickets (JWT, HS256, signed by the application with
 * the secret mqlockd reads from --ticket-key) against hostile logged-in
 * users, on the production broker profile with --require-ticket
 * (topics.md, "Security model").
 *
 * The tests mint tickets with libjwt, as an application would, for the
 * users and client ids of each scenario; the hostile user holds a valid
 * ticket of its own and tries to bind, release, refresh or take over a
 * lock of a client id it holds no ticket for, to replay another client's
 * ticket, to lock outside its ticket's locks, and to get in with expired,
 * unsigned, wrongly signed, truncated or oversized tickets.  A verified
 * holder shows its uid in the owner message, and only a client of the same
 * uid takes the lock over at once.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jwt.h>

#include "sec.h"

#define FLAGS_FMT                                         \
	"--grace 1 --idle-timeout 600 --idle-warning 60 " \
	"--ticket-key %s --require-ticket"
#define KEY "0123456789abcdef0123456789abcdef-the-ticket-key"
#define OTHER_KEY "fedcba9876543210fedcba9876543210-another-key"

/* The key file, made once per run (mode 0600: mqlockd insists). */
static char key_dir[64];
static char key_path[128];

static void
make_key_file(void)
{
	FILE *f;

	snprintf(key_dir, sizeof(key_dir), "/tmp/mqlock-sec-ticket-XXXXXX");
	if (mkdtemp(key_dir) == NULL) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		exit(1);
	}
	snprintf(key_path, sizeof(key_path), "%s/key", key_dir);
	if ((f = fopen(key_path, "w")) == NULL || fputs(KEY "\n", f) == EOF ||
	    fclose(f) != 0 || chmod(key_path, 0600) != 0) {
		fprintf(stderr, "write %s: %s\n", key_path, strerror(errno));
		exit(1);
	}
}

static void
remove_key_file(void)
{
	if (key_path[0] != '\0')
		unlink(key_path);
	if (key_dir[0] != '\0')
		rmdir(key_dir);
}

static struct s_world *
start(void **state)
{
	return s_world_start(state, h_fmt(FLAGS_FMT, key_path));
}

/* What a ticket says, and how it is signed. */
struct claims {
	const char *sub;
	const char *name;
	const char *client;
	long exp_in;      /* seconds from now */
	const char *more; /* more claims as a JSON object, or NULL */
	jwt_alg_t alg;
	const char *key; /* NULL: KEY */
};

/*
 * mint(c): the ticket, in a buffer of its own (one of 32, reused in turn);
 * claims left NULL are left out.
 */
static const char *
mint(const struct claims *c)
{
	static char bufs[32][8192];
	static int next;
	const char *key = c->key != NULL ? c->key : KEY;
	char *buf = bufs[next++ % 32], *s;
	jwt_t *j = NULL;
	int rc = jwt_new(&j);

	if (rc == 0 && c->sub != NULL)
		rc = jwt_add_grant(j, "sub", c->sub);
	if (rc == 0 && c->name != NULL)
		rc = jwt_add_grant(j, "name", c->name);
	if (rc == 0 && c->client != NULL)
		rc = jwt_add_grant(j, "client", c->client);
	if (rc == 0)
		rc = jwt_add_grant_int(j, "exp", (long)time(NULL) + c->exp_in);
	if (rc == 0 && c->more != NULL)
		rc = jwt_add_grants_json(j, c->more);
	if (rc == 0)
		rc = c->alg == JWT_ALG_NONE
		    ? jwt_set_alg(j, JWT_ALG_NONE, NULL, 0)
		    : jwt_set_alg(j, c->alg, (const unsigned char *)key,
			  (int)strlen(key));
	if (rc != 0 || (s = jwt_encode_str(j)) == NULL)
		fail_msg("minting a ticket failed: %d", rc);
	jwt_free(j);
	if (strlen(s) >= sizeof(bufs[0]))
		fail_msg("ticket too long for the test's buffer");
	snprintf(buf, sizeof(bufs[0]), "%s", s);
	free(s);
	return buf;
}

/* A good ticket for client id client of user sub. */
static const char *
ticket(const char *sub, const char *name, const char *client)
{
	struct claims c = {sub, name, client, 3600, NULL, JWT_ALG_HS256, NULL};

	return mint(&c);
}

/* An editor (the editors account) subscribed to its events and replies. */
static struct h_client *
editor(struct s_world *w, const char *id)
{
	return s_editor(w, "editors", id);
}

/*
 * request(c, id, lock, op, session, tkt, extra): a request of c as client
 * id on its own topic, with ticket tkt (NULL: none) and more members
 * extra (NULL: none), asking for a reply.
 */
static void
request(struct h_client *c, const char *id, const char *lock, const char *op,
    const char *session, const char *tkt, const char *extra)
{
	char body[8192];
	int n;

	n = snprintf(body, sizeof(body),
	    "{\"op\":\"%s\",\"client\":\"%s\",\"session\":\"%s\"%s%s%s%s%s}",
	    op, id, session, tkt != NULL ? ",\"ticket\":\"" : "",
	    tkt != NULL ? tkt : "", tkt != NULL ? "\"" : "",
	    extra != NULL ? "," : "", extra != NULL ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(body))
		fail_msg("request too long for the test's buffer");
	s_send(c, h_fmt("%s/%s/request/%s", H_PREFIX, lock, id), body, "t");
}

/*
 * A hostile user with a valid ticket of its own cannot bind a victim's
 * client id, nor release, refresh or take over the victim's lock: in its
 * own name the ticket names another client (replay: ticket-mismatch) or
 * the request names another client than its topic; with the victim's
 * client id (ids are public; the broker lets a connection take an id
 * over) it has no ticket for that id (ticket-required, ticket-mismatch),
 * and once the victim holds the lock, no session; even a ticket for that
 * id issued to another user does not help (ticket-mismatch).
 */
static void
test_no_ticket_no_binding(void **state)
{
	struct s_world *w = start(state);
	struct h_client *mon = s_mon(w);
	struct h_client *hostile = editor(w, "hostile");
	struct h_client *intruder, *victim;
	const char *sv = h_session(), *sh = h_session();
	char tv[4096], th[4096], tm[4096];
	long long token;
	struct h_msg *m;

	snprintf(tv, sizeof(tv), "%s", ticket("u-alice", "Alice", "victim"));
	snprintf(th, sizeof(th), "%s",
	    ticket("u-mallory", "Mallory", "hostile"));
	snprintf(tm, sizeof(tm), "%s",
	    ticket("u-mallory", "Mallory", "victim"));

	/* In its own name. */
	request(hostile, "hostile", "doc-1", "acquire", sh, NULL, NULL);
	s_reply(hostile, "code", "ticket-required");
	request(hostile, "hostile", "doc-1", "acquire", sh, tv, NULL);
	s_reply(hostile, "code", "ticket-mismatch");
	s_send(hostile, H_PREFIX "/doc-1/request/hostile",
	    h_fmt("{\"op\":\"acquire\",\"client\":\"victim\","
		  "\"session\":\"%s\",\"ticket\":\"%s\"}",
		sh, tv),
	    "t");
	s_reply(hostile, "code", "bad-request");

	/* With the victim's client id, before the victim comes. */
	intruder = editor(w, "victim");
	request(intruder, "victim", "doc-1", "acquire", sh, NULL, NULL);
	s_reply(intruder, "code", "ticket-required");
	request(intruder, "victim", "doc-1", "acquire", sh, th, NULL);
	s_reply(intruder, "code", "ticket-mismatch");
	request(intruder, "victim", "doc-1", "release", sh, NULL, NULL);
	s_reply(intruder, "result", "ignored");
	request(intruder, "victim", "doc-1", "activity", sh, NULL, NULL);
	s_reply(intruder, "result", "ignored");
	h_disconnect(intruder);
	h_expect_none(mon, h_owner("doc-1"), 0, H_ANY);

	/*
	 * The victim binds its id with its own ticket and another session:
	 * nothing was bound before.  Its name is the ticket's, not the one
	 * the request claims.
	 */
	victim = editor(w, "victim");
	request(victim, "victim", "doc-1", "acquire", sv, tv,
	    "\"user\":\"Mallory\",\"conn\":1");
	token = h_int(s_reply(victim, "result", "granted"), "token");
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim");
	assert_string_equal(h_str(m, "owner.uid"), "u-alice");
	assert_string_equal(h_str(m, "owner.user"), "Alice");

	/* With the victim's client id, while the victim holds the lock. */
	intruder = editor(w, "victim");
	request(intruder, "victim", "doc-1", "release", sh, NULL, NULL);
	s_reply(intruder, "code", "session-mismatch");
	request(intruder, "victim", "doc-1", "activity", sh, NULL, NULL);
	s_reply(intruder, "code", "session-mismatch");
	/* Its own ticket names another client id. */
	request(intruder, "victim", "doc-1", "acquire", sh, th,
	    "\"takeover\":true");
	s_reply(intruder, "code", "ticket-mismatch");
	/* Replaying the victim's own ticket does not give the session. */
	request(intruder, "victim", "doc-1", "acquire", sh, tv,
	    "\"takeover\":true");
	s_reply(intruder, "code", "session-mismatch");
	/* Even with the session: its ticket's user is not the victim's. */
	request(intruder, "victim", "doc-2", "acquire", sv, tm, NULL);
	s_reply(intruder, "code", "ticket-mismatch");
	request(intruder, "victim", "doc-1", "acquire", sv, tm,
	    "\"takeover\":true");
	s_reply(intruder, "code", "ticket-mismatch");
	h_disconnect(intruder);

	/* The victim, back: same lock, same token, same user. */
	victim = editor(w, "victim");
	request(victim, "victim", "doc-1", "activity", sv, NULL, "\"conn\":2");
	s_reply(victim, "result", "refreshed");
	m = h_last(mon, h_owner("doc-1"));
	assert_true(h_matches(m, h_owner("doc-1"), "owner.client", "victim",
	    "owner.uid", "u-alice", "token", h_fmt("#%lld", token)));
	h_expect_none(mon, h_owner("doc-2"), 0, H_ANY);

	/* In its own name, with its own ticket: it only queues. */
	request(hostile, "hostile", "doc-1", "acquire", sh, th,
	    "\"takeover\":true");
	s_reply(hostile, "result", "queued");
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "waiting", "#1");
	assert_string_equal(h_str(m, "owner.client"), "victim");
	assert_int_equal(h_int(m, "token"), token);
	assert_string_equal(h_str(m, "queue.0.uid"), "u-mallory");
	s_pass(w);
}

/* A ticket's locks bound what its holder may lock (ticket-lock). */
static void
test_ticket_locks_bound_the_locks(void **state)
{
	struct s_world *w = start(state);
	struct h_client *mon = s_mon(w);
	struct h_client *c = editor(w, "ed-1");
	const char *s1 = h_session();
	struct claims two = {"u-alice", "Alice", "ed-1", 3600,
	    "{\"locks\":[\"doc-1\",\"doc-2\"]}", JWT_ALG_HS256, NULL};
	struct claims none = {"u-alice", "Alice", "ed-1", 3600,
	    "{\"locks\":[]}", JWT_ALG_HS256, NULL};
	char t2[4096], t0[4096];

	snprintf(t2, sizeof(t2), "%s", mint(&two));
	snprintf(t0, sizeof(t0), "%s", mint(&none));
	request(c, "ed-1", "doc-3", "acquire", s1, t2, NULL);
	s_reply(c, "code", "ticket-lock");
	request(c, "ed-1", "doc-1", "acquire", s1, t0, NULL);
	s_reply(c, "code", "ticket-lock");
	request(c, "ed-1", "doc-1", "acquire", s1, t2, NULL);
	s_reply(c, "result", "granted");
	request(c, "ed-1", "doc-2", "acquire", s1, t2, NULL);
	s_reply(c, "result", "granted");
	/* Holding some locks does not widen the ticket. */
	request(c, "ed-1", "doc-3", "acquire", s1, t2, NULL);
	s_reply(c, "code", "ticket-lock");
	h_expect_none(mon, h_owner("doc-3"), 0, H_ANY);
	s_pass(w);
}

/* An expired ticket is refused (ticket-expired), and binds nothing. */
static void
test_expired_ticket_refused(void **state)
{
	struct s_world *w = start(state);
	struct h_client *mon = s_mon(w);
	struct h_client *c = editor(w, "ed-1");
	struct claims old = {"u-alice", "Alice", "ed-1", -5, NULL,
	    JWT_ALG_HS256, NULL};

	request(c, "ed-1", "doc-1", "acquire", h_session(), mint(&old), NULL);
	s_reply(c, "code", "ticket-expired");
	h_expect(c, h_events("ed-1"), H_WAIT_MS, "event", "error", "code",
	    "ticket-expired");
	h_expect_none(mon, h_owner("doc-1"), 0, H_ANY);
	/* Control: a fresh one, with another session. */
	request(c, "ed-1", "doc-1", "acquire", h_session(),
	    ticket("u-alice", "Alice", "ed-1"), NULL);
	s_reply(c, "result", "granted");
	s_pass(w);
}

/*
 * Tickets that are not HS256 under the key, or not a ticket at all, are
 * refused (ticket-invalid, or bad-request when the request itself breaks
 * the size limits) and change nothing: no lock is taken, no client id
 * bound.
 */
static void
test_bad_tickets_refused(void **state)
{
	struct s_world *w = start(state);
	struct h_client *mon = s_mon(w);
	struct h_client *c = editor(w, "ed-1");
	const char *s1 = h_session();
	char pad[3200], more[3300], good[4096];
	struct claims cl[] = {
	    {"u-alice", "Alice", "ed-1", 3600, NULL, JWT_ALG_NONE, NULL},
	    {"u-alice", "Alice", "ed-1", 3600, NULL, JWT_ALG_HS384, NULL},
	    {"u-alice", "Alice", "ed-1", 3600, NULL, JWT_ALG_HS512, NULL},
	    {"u-alice", "Alice", "ed-1", 3600, NULL, JWT_ALG_HS256, OTHER_KEY},
	    {NULL, "Alice", "ed-1", 3600, NULL, JWT_ALG_HS256, NULL},
	    {"u-alice", "Alice", NULL, 3600, NULL, JWT_ALG_HS256, NULL},
	    {"u-alice", "Alice", "ed-1", 3600, "{\"locks\":\"doc-1\"}",
		JWT_ALG_HS256, NULL},
	    {"u-alice", "Alice", "ed-1", 3600, "{\"sub\":17}", JWT_ALG_HS256,
		NULL},
	    {"u-alice", "Alice", "ed-1", 3600, more, JWT_ALG_HS256, NULL},
	};
	const char *tk;
	char buf[8192];
	struct h_msg *m;
	size_t i, n;

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(more, sizeof(more), "{\"pad\":\"%s\"}", pad);
	snprintf(good, sizeof(good), "%s", ticket("u-alice", "Alice", "ed-1"));
	for (i = 0; i < sizeof(cl) / sizeof(cl[0]) + 4; i++) {
		if (i < sizeof(cl) / sizeof(cl[0])) {
			tk = mint(&cl[i]);
		} else if (i == sizeof(cl) / sizeof(cl[0])) {
			/* The good ticket, its signature cut short. */
			n = strlen(good) - 6;
			snprintf(buf, sizeof(buf), "%.*s", (int)n, good);
			tk = buf;
		} else if (i == sizeof(cl) / sizeof(cl[0]) + 1) {
			/* The good ticket with another payload. */
			snprintf(buf, sizeof(buf), "%s", good);
			buf[strchr(buf, '.') + 3 - buf] ^= 1;
			tk = buf;
		} else if (i == sizeof(cl) / sizeof(cl[0]) + 2) {
			tk = "not.a.ticket";
		} else {
			tk = "";
		}
		request(c, "ed-1", "doc-1", "acquire", s1, tk, NULL);
		m = s_reply(c, "ok", "#false");
		print_message("bad ticket #%zu (%zu bytes): %s\n", i,
		    strlen(tk), h_str(m, "code"));
		if (strcmp(h_str(m, "code"), "ticket-invalid") != 0 &&
		    strcmp(h_str(m, "code"), "bad-request") != 0 &&
		    !(tk[0] == '\0' &&
			strcmp(h_str(m, "code"), "ticket-required") == 0))
			fail_msg("bad ticket #%zu refused with %s", i,
			    h_str(m, "code"));
	}
	h_expect_none(mon, h_owner("doc-1"), 0, H_ANY);
	/* Nothing was bound: a good ticket with another session works. */
	request(c, "ed-1", "doc-1", "acquire", h_session(), good, NULL);
	s_reply(c, "result", "granted");
	s_pass(w);
}

/*
 * A verified holder shows its uid in the owner message; another tab of the
 * same user takes the lock over at once (the first tab hears `revoked`,
 * reason takeover; a new token), while a client of another user asking for
 * a takeover only queues.
 */
static void
test_same_user_takeover(void **state)
{
	struct s_world *w = start(state);
	struct h_client *mon = s_mon(w);
	struct h_client *tab1 = editor(w, "tab-1");
	struct h_client *tab2 = editor(w, "tab-2");
	struct h_client *bob = editor(w, "bob-1");
	const char *s1 = h_session(), *s2 = h_session(), *sb = h_session();
	long long token;
	struct h_msg *m;

	request(tab1, "tab-1", "doc-1", "acquire", s1,
	    ticket("u-alice", "Alice", "tab-1"), NULL);
	token = h_int(s_reply(tab1, "result", "granted"), "token");
	h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "tab-1",
	    "owner.uid", "u-alice", "owner.user", "Alice");

	request(bob, "bob-1", "doc-1", "acquire", sb,
	    ticket("u-bob", "Bob", "bob-1"), "\"takeover\":true");
	s_reply(bob, "result", "queued");
	h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "tab-1",
	    "waiting", "#1", "queue.0.uid", "u-bob");
	h_expect_none(tab1, h_events("tab-1"), 0, "event", "revoked");

	request(tab2, "tab-2", "doc-1", "acquire", s2,
	    ticket("u-alice", "Alice", "tab-2"), "\"takeover\":true");
	m = s_reply(tab2, "result", "granted");
	assert_true(h_int(m, "token") > token);
	h_expect(tab1, h_events("tab-1"), H_WAIT_MS, "event", "revoked",
	    "reason", "takeover", "token", h_fmt("#%lld", token));
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "tab-2",
	    "owner.uid", "u-alice", "waiting", "#1", "queue.0.client", "bob-1");
	assert_true(h_int(m, "token") > token);
	/* The first tab no longer holds it. */
	request(tab1, "tab-1", "doc-1", "activity", s1, NULL, NULL);
	s_reply(tab1, "result", "ignored");
	s_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_no_ticket_no_binding, s_teardown),
	    cmocka_unit_test_teardown(test_ticket_locks_bound_the_locks,
		s_teardown),
	    cmocka_unit_test_teardown(test_expired_ticket_refused, s_teardown),
	    cmocka_unit_test_teardown(test_bad_tickets_refused, s_teardown),
	    cmocka_unit_test_teardown(test_same_user_takeover, s_teardown),
	};
	int rc;

	make_key_file();
	h_filter();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	remove_key_file();
	return rc;
}
