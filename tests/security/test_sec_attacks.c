/*
 * test_sec_attacks.c: the production broker profile (broker-config/
 * production: password file, ACL, TLS) and mqlockd against authenticated
 * clients that lie (topics.md, "Security model").  Every attack must fail
 * while the legitimate clients around it keep being served, and every test
 * shows, with a control, that what it checks for would have been seen.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sec.h"

#define FLAGS "--grace 1 --idle-timeout 600 --idle-warning 60"
#define STATUS H_PREFIX "/_coordinator/status"
#define MAX_SECRETS 8

/* Does the topic filter (with + and #) match topic? */
static int
topic_matches(const char *filter, const char *topic)
{
	size_t f, t;

	for (;;) {
		if (strcmp(filter, "#") == 0)
			return 1;
		f = strcspn(filter, "/");
		t = strcspn(topic, "/");
		if (!(f == 1 && filter[0] == '+') &&
		    (f != t || strncmp(filter, topic, f) != 0))
			return 0;
		filter += f;
		topic += t;
		if (*filter == '\0' || *topic == '\0')
			return *filter == '\0' && *topic == '\0';
		filter++;
		topic++;
	}
}

/* What one client may receive, and the secrets nobody else may see. */
struct allowed {
	const char *filters[8];
	const char *secrets[MAX_SECRETS];
};

/* A message outside the allowed topics, or carrying a secret. */
static int
not_allowed(const struct h_msg *m, void *arg)
{
	const struct allowed *a = arg;
	int ok = 0;

	for (int i = 0; i < 8 && a->filters[i] != NULL; i++)
		if (topic_matches(a->filters[i], m->topic))
			ok = 1;
	for (int i = 0; i < MAX_SECRETS && a->secrets[i] != NULL; i++)
		if (m->payload != NULL && strstr(m->payload, a->secrets[i]))
			return 1;
	return !ok;
}

/* An owner message of `arg`'s lock whose holder is not its client. */
struct holder {
	const char *lock;
	const char *client;
	long long token;
};

static int
other_holder(const struct h_msg *m, void *arg)
{
	const struct holder *h = arg;
	cJSON *c = h_get(m, "owner.client"), *t = h_get(m, "token");

	if (strcmp(m->topic, h_owner(h->lock)) != 0)
		return 0;
	return !cJSON_IsString(c) || strcmp(c->valuestring, h->client) != 0 ||
	    !cJSON_IsNumber(t) || (long long)t->valuedouble != h->token;
}

/* The holder of `arg`'s lock shown disconnected. */
static int
shown_disconnected(const struct h_msg *m, void *arg)
{
	const struct holder *h = arg;

	return strcmp(m->topic, h_owner(h->lock)) == 0 &&
	    cJSON_IsFalse(h_get(m, "owner.connected"));
}

/* A message on `arg`'s topic that is not what the coordinator puts there. */
struct shape {
	char topic[256];
	const char *member; /* every message there has this member */
};

static int
wrong_shape(const struct h_msg *m, void *arg)
{
	const struct shape *s = arg;

	return strcmp(m->topic, s->topic) == 0 && h_get(m, s->member) == NULL;
}

/* A message on `arg`'s topic whose member has the value. */
struct member {
	char topic[256];
	const char *key;
	const char *value;
};

static int
member_is(const struct h_msg *m, void *arg)
{
	const struct member *e = arg;
	cJSON *j = h_get(m, e->key);

	return strcmp(m->topic, e->topic) == 0 && cJSON_IsString(j) &&
	    strcmp(j->valuestring, e->value) == 0;
}

/* s with every "%c" replaced by id, into out. */
static void
with_id(char *out, size_t size, const char *s, const char *id)
{
	size_t n = 0;

	for (; *s != '\0' && n + 1 < size; s++) {
		if (s[0] == '%' && s[1] == 'c') {
			n += (size_t)snprintf(out + n, size - n, "%s", id);
			if (n >= size)
				fail_msg("with_id: %s does not fit", s);
			s++;
		} else
			out[n++] = *s;
	}
	out[n] = '\0';
}

/*
 * attempt(w, user, topic, payload, retained, resp): the broker's answer to
 * one publish by a new connection of user; "%c" in topic and payload
 * stands for that connection's client id.  mosquitto 2.0.11 acknowledges
 * a denied publish with 0x87 and then closes the connection, so every
 * attempt gets a connection of its own.
 */
static int
attempt(struct s_world *w, const char *user, const char *topic,
    const char *payload, int retained, const char *resp)
{
	static int n;
	char t[512], p[2048], id[64];
	struct h_client *c;

	snprintf(id, sizeof(id), "try-%s-%d", user, ++n);
	with_id(t, sizeof(t), topic, id);
	with_id(p, sizeof(p), payload, id);
	c = s_connect(w, user, id);
	return s_pub(c, t, p, retained, resp);
}

/*
 * Traffic of every kind the coordinator handles, by legitimate clients:
 * requests with replies, events, a queue, a will that fires, an admin
 * command.  Fills secrets with the sessions it used.
 */
static void
scenario(struct s_world *w, const char **secrets)
{
	const char *sa = h_session(), *sb = h_session(), *sc = h_session();
	struct h_client *alice = s_editor(w, "editors", "ed-alice");
	struct h_client *bob = s_editor(w, "services", "svc-bob");
	struct h_client *ops = s_connect(w, "admins", "ops");
	struct h_client *mon = s_mon(w);
	struct h_proc *walker;
	int rc;

	secrets[0] = sa;
	secrets[1] = sb;
	secrets[2] = sc;
	h_sub(ops, "replies/ops/#");

	s_request(alice, "ed-alice", "doc-a", "acquire", sa,
	    "\"user\":\"Alice\",\"conn\":1", "c");
	s_reply(alice, "result", "granted");
	h_expect(alice, h_events("ed-alice"), H_WAIT_MS, "event", "granted");
	s_request(bob, "svc-bob", "doc-a", "acquire", sb, "\"user\":\"Bob\"",
	    "c");
	s_reply(bob, "result", "queued");
	s_request(alice, "ed-alice", "doc-a", "activity", sa, NULL, "c");
	s_reply(alice, "result", "refreshed");

	/* Carol holds doc-b through a connection whose will fires. */
	walker = s_hold(w, "services", "svc-carol", "doc-b", sc, 1, NULL);
	h_state(mon, h_owner("doc-b"), H_WAIT_MS, "owner.client", "svc-carol",
	    "owner.connected", "#true");
	h_proc_kill(walker, SIGKILL);
	h_state(mon, h_owner("doc-b"), H_WAIT_MS, "owner.client", "svc-carol",
	    "owner.connected", "#false");

	rc = s_pub(ops, H_PREFIX "/_admin/command/ops",
	    "{\"op\":\"break\",\"lock\":\"doc-a\",\"reason\":\"drill\"}", 0,
	    h_reply_topic(ops));
	assert_true(rc < 0x80);
	s_reply(ops, "result", "revoked");
	h_expect(bob, h_events("svc-bob"), H_WAIT_MS, "event", "granted");
	s_request(bob, "svc-bob", "doc-a", "release", sb, NULL, "c");
	s_reply(bob, "result", "released");
	h_state(mon, h_owner("doc-a"), H_WAIT_MS, H_FREE);
	/* Carol's grace ends: her lock is free too. */
	h_state(mon, h_owner("doc-b"), H_WAIT_MS, H_FREE);
}

/* Without valid credentials nobody gets in; every role does with them. */
static void
test_logins(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	char ca[4096];
	const char *const users[] = {"coordinator", "editors", "services",
	    "monitors", "admins"};
	int rc;

	snprintf(ca, sizeof(ca), "%s", s_file(w, "ca.crt"));
	rc = s_try_connect(w, NULL, NULL, "anon", ca);
	print_message("anonymous: %d\n", rc);
	assert_true(rc >= 0x80);
	rc = s_try_connect(w, "editors", "not-the-password", "guess", ca);
	print_message("wrong password: %d\n", rc);
	assert_true(rc >= 0x80);
	rc = s_try_connect(w, "mallory", s_password(w, "editors"), "m", ca);
	print_message("unknown user: %d\n", rc);
	assert_true(rc >= 0x80);
	rc = s_try_connect(w, "editors", s_password(w, "admins"), "mix", ca);
	print_message("another user's password: %d\n", rc);
	assert_true(rc >= 0x80);
	rc = s_try_connect(w, "editors", "", "empty", ca);
	assert_true(rc >= 0x80);
	/* The broker's certificate is not trusted without the world's CA. */
	rc =
	    s_try_connect(w, "editors", s_password(w, "editors"), "noca", NULL);
	print_message("without the CA: %d\n", rc);
	assert_int_equal(rc, -1);

	/* Each role on its own listener; the coordinator with its id. */
	static const enum s_listener at[] = {S_COORD, S_WS, S_TLS, S_TLS,
	    S_TLS};
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		assert_int_equal(
		    s_try_at(w, at[i], users[i], s_password(w, users[i]),
			i == 0 ? s_coord_id(w) : h_fmt("ok-%zu", i), ca),
		    0);
	s_pass(w);
}

/*
 * An editor that knows the holder's client id but not its session can
 * neither release, refresh nor take over its lock: not in its own name
 * (the request names another client than its topic), not on the victim's
 * request topic (the broker refuses it), and not even after taking over
 * the victim's client id (ids are public), for want of the session; a
 * huge conn sent that way is not remembered either.  It can queue like
 * anyone, and gets the lock only when the holder lets go.
 */
static void
test_hostile_cannot_release_refresh_or_take_over(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *victim = s_editor(w, "editors", "victim");
	struct h_client *hostile = s_editor(w, "editors", "hostile");
	struct h_client *intruder;
	const char *sv = h_session(), *sh = h_session();
	struct holder h = {"doc-1", "victim", 0};
	static const char *const ops[] = {"release", "activity", "acquire"};
	struct h_msg *m;
	long long deadline;
	size_t i;

	s_request(victim, "victim", "doc-1", "acquire", sv, "\"conn\":1", "c");
	h.token = h_int(s_reply(victim, "result", "granted"), "token");
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim");
	deadline = h_int(m, "idle_deadline");

	/* In its own name, on its own topic: the request names another. */
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		s_send(hostile, H_PREFIX "/doc-1/request/hostile",
		    h_fmt("{\"op\":\"%s\",\"client\":\"victim\","
			  "\"session\":\"%s\"}",
			ops[i], sh),
		    "c");
		s_reply(hostile, "code", "bad-request");
		h_expect(hostile, h_events("hostile"), H_WAIT_MS, "event",
		    "error", "code", "bad-request");
	}
	/* On the victim's topic: the broker refuses it. */
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		assert_int_equal(attempt(w, "editors",
				     H_PREFIX "/doc-1/request/victim",
				     h_fmt("{\"op\":\"%s\",\"client\":"
					   "\"victim\",\"session\":\"%s\"}",
					 ops[i], sh),
				     0, NULL),
		    S_RC_NOT_AUTHORIZED);
	/* On the unbound topic of the development profile: refused too. */
	assert_int_equal(attempt(w, "editors", H_PREFIX "/doc-1/request",
			     h_fmt("{\"op\":\"release\",\"client\":"
				   "\"victim\",\"session\":\"%s\"}",
				 sh),
			     0, NULL),
	    S_RC_NOT_AUTHORIZED);

	/*
	 * With the victim's own client id: the broker closes the victim's
	 * connection (it has no will, as after a clean takeover), and the
	 * intruder still lacks the session.
	 */
	intruder = s_editor(w, "editors", "victim");
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		s_request(intruder, "victim", "doc-1", ops[i], sh, NULL, "c");
		s_reply(intruder, "code", "session-mismatch");
		/* With the same session but other connection numbers. */
		s_request(intruder, "victim", "doc-1", ops[i], sh,
		    "\"conn\":9007199254740991", "c");
		s_reply(intruder, "code", "session-mismatch");
	}
	s_request(intruder, "victim", "doc-1", "acquire", sh, "\"wait\":false",
	    "c");
	s_reply(intruder, "code", "session-mismatch");
	/* Not a session at all: refused before it is compared. */
	s_request(intruder, "victim", "doc-1", "release", "", NULL, "c");
	s_reply(intruder, "code", "bad-request");
	assert_int_equal(attempt(w, "editors", H_PREFIX "/_admin/command/%c",
			     "{\"op\":\"break\",\"lock\":\"doc-1\"}", 0, NULL),
	    S_RC_NOT_AUTHORIZED);
	h_disconnect(intruder);

	/*
	 * The victim, back, still holds it, bound to its session, token
	 * unchanged; its next connection number is not stale, so none of
	 * the intruder's was remembered.
	 */
	victim = s_editor(w, "editors", "victim");
	s_request(victim, "victim", "doc-1", "activity", sv, "\"conn\":2", "c");
	s_reply(victim, "result", "refreshed");
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim");
	assert_int_equal(h_int(m, "token"), h.token);
	assert_true(h_int(m, "idle_deadline") >= deadline);
	h_forbidden(mon, 0, other_holder, &h,
	    "an owner message naming another holder");

	/* Legitimate use by the same client still works. */
	s_request(hostile, "hostile", "doc-1", "acquire", sh, NULL, "c");
	s_reply(hostile, "result", "queued");
	s_request(victim, "victim", "doc-1", "release", sv, "\"conn\":2", "c");
	s_reply(victim, "result", "released");
	m = h_expect(hostile, h_events("hostile"), H_WAIT_MS, "event",
	    "granted");
	assert_true(h_int(m, "token") > h.token);
	s_pass(w);
}

/*
 * An editor subscribes to everything it can think of while legitimate
 * traffic of every kind flows: it receives owner messages and the status
 * (as every editor must), and nothing else: no requests, wills, admin
 * commands, other clients' events or replies, and no session anywhere.
 */
static void
test_hostile_reads_nothing_secret(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *hostile = s_connect(w, "editors", "hostile");
	static const char *const filters[] = {"#", H_PREFIX "/#",
	    H_PREFIX "/+/request", H_PREFIX "/+/request/+",
	    H_PREFIX "/+/request/ed-alice", H_PREFIX "/_clients/+/will",
	    H_PREFIX "/_clients/+/events", H_PREFIX "/_clients/+/sync",
	    H_PREFIX "/_clients/ed-alice/#", H_PREFIX "/_admin/command",
	    H_PREFIX "/_admin/command/+", "replies/#", "replies/ed-alice/#",
	    "+/+/+", "+/+/+/+", "$SYS/#"};
	struct allowed a = {
	    {H_PREFIX "/+/owner", STATUS, H_PREFIX "/_clients/hostile/events",
		H_PREFIX "/_clients/hostile/sync", "replies/hostile/#"},
	    {NULL}};
	int n;

	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		h_sub(hostile, filters[i]);
	scenario(w, a.secrets);
	/* Control: its subscriptions do deliver what editors may read. */
	h_expect(hostile, h_owner("doc-a"), H_WAIT_MS, "owner.client",
	    "ed-alice");
	h_expect(hostile, h_owner("doc-b"), H_WAIT_MS, "owner.connected",
	    "#false");
	n = h_forbidden(hostile, H_QUIET_MS, not_allowed, &a,
	    "a message an editor may not read");
	print_message("the hostile editor received %d messages, all owner "
		      "messages or status\n",
	    n);
	s_pass(w);
}

/* A monitor sees every owner message and no session, anywhere. */
static void
test_monitor_sees_owners_but_no_secret(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *dash = s_connect(w, "monitors", "dashboard");
	struct allowed a = {{H_PREFIX "/+/owner", STATUS}, {NULL}};
	int n;

	h_sub(dash, "#");
	h_expect(dash, STATUS, H_WAIT_MS, "state", "online");
	scenario(w, a.secrets);
	h_expect(dash, h_owner("doc-a"), H_WAIT_MS, "owner.client", "ed-alice");
	h_expect(dash, h_owner("doc-a"), H_WAIT_MS, "owner.client", "svc-bob");
	h_expect(dash, h_owner("doc-b"), H_WAIT_MS, "owner.connected",
	    "#false");
	n = h_forbidden(dash, H_QUIET_MS, not_allowed, &a,
	    "a message a monitor may not read");
	print_message("the monitor received %d messages, all owner messages "
		      "or status\n",
	    n);
	/* Monitors cannot act either. */
	assert_int_equal(attempt(w, "monitors", H_PREFIX "/doc-a/request/%c",
			     h_fmt("{\"op\":\"acquire\",\"client\":"
				   "\"%%c\",\"session\":\"%s\"}",
				 h_session()),
			     0, NULL),
	    S_RC_NOT_AUTHORIZED);
	assert_int_equal(attempt(w, "monitors",
			     h_fmt("%s/doc-a/request", H_PREFIX),
			     h_fmt("{\"op\":\"acquire\",\"client\":"
				   "\"%%c\",\"session\":\"%s\"}",
				 h_session()),
			     0, NULL),
	    S_RC_NOT_AUTHORIZED);
	assert_int_equal(attempt(w, "monitors", H_PREFIX "/_admin/command/%c",
			     "{\"op\":\"break\",\"lock\":\"doc-a\"}", 0, NULL),
	    S_RC_NOT_AUTHORIZED);
	s_pass(w);
}

/*
 * Owner messages, the status, events and replies come from the coordinator
 * only: an editor's publishes there are refused, retained or not, and the
 * retained state a newcomer reads is still the coordinator's.
 */
static void
test_hostile_cannot_forge_owner_status_or_events(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *victim = s_editor(w, "editors", "victim");
	struct h_client *late;
	const char *sv = h_session();
	struct holder h = {"doc-1", "victim", 0};
	const char *forged_owner =
	    "{\"v\":1,\"lock\":\"doc-1\",\"owner\":null,\"token\":null,"
	    "\"since\":1,\"idle_deadline\":null,\"waiting\":0,\"queue\":[]}";
	const char *forged_status =
	    "{\"state\":\"offline\",\"version\":\"1.0.0\",\"protocol\":1,"
	    "\"since\":1,\"epoch\":999}";
	const char *forged_event = "{\"event\":\"revoked\",\"lock\":\"doc-1\","
				   "\"reason\":\"admin\",\"token\":1}";
	struct member offline = {STATUS, "state", "offline"};
	struct member revoked = {"", "event", "revoked"};

	snprintf(revoked.topic, sizeof(revoked.topic), "%s",
	    h_events("victim"));
	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	h.token = h_int(s_reply(victim, "result", "granted"), "token");
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "granted");
	h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim");

	for (int retained = 0; retained <= 1; retained++) {
		assert_int_equal(attempt(w, "editors", h_owner("doc-1"),
				     forged_owner, retained, NULL),
		    S_RC_NOT_AUTHORIZED);
		assert_int_equal(attempt(w, "editors", h_owner("doc-9"),
				     forged_owner, retained, NULL),
		    S_RC_NOT_AUTHORIZED);
		assert_int_equal(attempt(w, "editors", STATUS, forged_status,
				     retained, NULL),
		    S_RC_NOT_AUTHORIZED);
		assert_int_equal(attempt(w, "editors", h_events("victim"),
				     forged_event, retained, NULL),
		    S_RC_NOT_AUTHORIZED);
		assert_int_equal(attempt(w, "editors", "replies/victim/r",
				     "{\"ok\":true,\"result\":\"revoked\"}",
				     retained, NULL),
		    S_RC_NOT_AUTHORIZED);
	}

	/* A newcomer reads the coordinator's retained state. */
	late = s_connect(w, "monitors", "late");
	h_sub(late, STATUS);
	h_sub(late, H_PREFIX "/+/owner");
	h_expect(late, STATUS, H_WAIT_MS, "state", "online");
	h_expect(late, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim",
	    "token", h_fmt("#%lld", h.token));
	/* Control: the victim's own next event does arrive. */
	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "granted");
	h_forbidden(mon, 0, other_holder, &h, "a forged owner message");
	h_forbidden(late, 0, other_holder, &h, "a forged owner message");
	h_forbidden(mon, 0, member_is, &offline, "a forged offline status");
	h_forbidden(late, 0, member_is, &offline, "a forged offline status");
	h_forbidden(victim, 0, member_is, &revoked, "a forged revoke");
	assert_int_equal(h_count(mon, h_owner("doc-9")), 0);
	assert_int_equal(h_count(late, h_owner("doc-9")), 0);
	s_pass(w);
}

/*
 * A request's MQTT 5 Response Topic must not make the coordinator publish
 * on its own topics: an editor cannot write owner messages, the status or
 * another client's events, so it must not get the coordinator to write
 * there for it.
 */
static void
test_replies_cannot_reach_coordinator_topics(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *victim = s_editor(w, "editors", "victim");
	struct h_client *hostile = s_editor(w, "editors", "hostile");
	const char *sv = h_session(), *sh = h_session();
	char body[512];
	struct shape owner = {"", "v"}, status = {STATUS, "state"};
	struct shape events = {"", "event"};
	const char *targets[3] = {owner.topic, status.topic, events.topic};
	struct h_msg *m;
	long long deadline;

	snprintf(owner.topic, sizeof(owner.topic), "%s", h_owner("doc-1"));
	snprintf(events.topic, sizeof(events.topic), "%s", h_events("victim"));
	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	s_reply(victim, "result", "granted");
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "granted");
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim");
	deadline = h_int(m, "idle_deadline");

	snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"hostile\",\"session\":\"%s\","
	    "\"wait\":false}",
	    sh);
	for (int i = 0; i < 3; i++)
		assert_true(
		    s_pub(hostile, h_fmt("%s/doc-1/request/hostile", H_PREFIX),
			body, 0, targets[i]) < 0x80);

	/*
	 * Markers: the coordinator handles requests in order, and the broker
	 * keeps the order of one publisher's messages on one topic.  Once
	 * the victim's next owner message and event are in, a reply sent to
	 * those topics would have come before them.
	 */
	s_request(victim, "victim", "doc-1", "activity", sv, NULL, "c");
	s_reply(victim, "result", "refreshed");
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim");
	assert_true(h_int(m, "idle_deadline") >= deadline);
	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "granted");
	h_forbidden(mon, H_QUIET_MS, wrong_shape, &owner,
	    "a reply on an owner topic");
	h_forbidden(mon, 0, wrong_shape, &status, "a reply on the status");
	h_forbidden(victim, 0, wrong_shape, &events,
	    "a reply on the events topic");
	s_pass(w);
}

/*
 * A request whose Response Topic the coordinator may not write must not
 * cost the coordinator its connection (mosquitto closes a connection whose
 * publish it denies): the status stays online and requests keep being
 * served.
 */
static void
test_reply_topic_cannot_cut_off_coordinator(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *victim = s_editor(w, "editors", "victim");
	struct h_client *hostile = s_editor(w, "editors", "hostile");
	const char *sv = h_session(), *sh = h_session();
	struct member offline = {STATUS, "state", "offline"};
	static const char *const topics[] = {"elsewhere/x",
	    H_PREFIX "/doc-1/request", H_PREFIX "/doc-1/request/victim",
	    H_PREFIX "/_admin/command", H_PREFIX "/_clients/victim/will",
	    "$SYS/x", "replies", "replies/", "replies/hostilex"};
	long long epoch = s_epoch(w);
	char body[512];

	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	s_reply(victim, "result", "granted");
	snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"hostile\",\"session\":\"%s\","
	    "\"wait\":false}",
	    sh);
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
		assert_true(
		    s_pub(hostile, h_fmt("%s/doc-1/request/hostile", H_PREFIX),
			body, 0, topics[i]) < 0x80);
	/* Served after them, in order, and the status never went offline. */
	s_request(victim, "victim", "doc-1", "activity", sv, NULL, "c");
	s_reply(victim, "result", "refreshed");
	h_forbidden(mon, H_QUIET_MS, member_is, &offline,
	    "the coordinator's offline status");
	h_expect_none(mon, STATUS, 0, H_ANY);
	assert_int_equal(s_epoch(w), epoch);
	s_pass(w);
}

/*
 * Wills: an editor can neither publish on another client's will topic nor
 * leave a Last Will there; the broker drops such a will when it fires,
 * even one with the victim's session (say it leaked) and a newer conn.
 * Controls: a will on the client's own topic, fired the same way just
 * after, does mark its holder disconnected, and so does the victim's own
 * in the end.
 */
static void
test_hostile_cannot_forge_wills(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	const char *sv = h_session(), *sw = h_session();
	struct holder h = {"doc-1", "victim", 0};
	struct h_proc *victim, *forger, *walker;
	struct h_msg *m;
	char will[256];

	/* The victim's connection carries its will, as a page's does. */
	victim = s_hold(w, "services", "victim", "doc-1", sv, 1, &h.token);
	h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim",
	    "owner.connected", "#true");

	snprintf(will, sizeof(will), "{\"session\":\"%s\",\"conn\":2}", sv);
	assert_int_equal(attempt(w, "editors", s_will("victim"), will, 0, NULL),
	    S_RC_NOT_AUTHORIZED);
	assert_int_equal(
	    attempt(w, "services", s_will("victim"), will, 0, NULL),
	    S_RC_NOT_AUTHORIZED);
	forger = s_holder(w, "services", "forger", sv, 2, s_will("victim"));

	/* Control: Walker holds doc-2 with a will on its own topic. */
	walker = s_hold(w, "services", "walker", "doc-2", sw, 1, NULL);
	h_state(mon, h_owner("doc-2"), H_WAIT_MS, "owner.client", "walker",
	    "owner.connected", "#true");

	h_proc_kill(forger, SIGKILL);
	h_proc_kill(walker, SIGKILL);
	h_state(mon, h_owner("doc-2"), H_WAIT_MS, "owner.client", "walker",
	    "owner.connected", "#false");
	h_forbidden(mon, H_QUIET_MS, shown_disconnected, &h,
	    "the victim shown disconnected");
	/* The victim still holds its lock, connected, same token. */
	m = h_last(mon, h_owner("doc-1"));
	assert_true(h_matches(m, h_owner("doc-1"), "owner.client", "victim",
	    "owner.connected", "#true", "token", h_fmt("#%lld", h.token)));
	/* Control: the victim's own will is heard. */
	h_proc_kill(victim, SIGKILL);
	h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim",
	    "owner.connected", "#false", "token", h_fmt("#%lld", h.token));
	s_pass(w);
}

/*
 * Only admins break locks and purge queues, and only on their own command
 * topic; editors, services and monitors are refused, and admins send no
 * lock requests.
 */
static void
test_only_admins_break_locks(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *victim = s_editor(w, "editors", "victim");
	struct h_client *waiter = s_editor(w, "editors", "waiter");
	struct h_client *ops = s_connect(w, "admins", "ops");
	static const char *const users[] = {"editors", "services", "monitors"};
	static const char *const topics[] = {H_PREFIX "/_admin/command",
	    H_PREFIX "/_admin/command/%c", H_PREFIX "/_admin/command/ops"};
	const char *cmd = "{\"op\":\"break\",\"lock\":\"doc-1\"}";
	const char *purge = "{\"op\":\"purge\",\"lock\":\"doc-1\"}";
	const char *sv = h_session();
	long long token;
	struct h_msg *m;
	size_t i, j;

	h_sub(ops, "replies/ops/#");
	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	token = h_int(s_reply(victim, "result", "granted"), "token");
	s_request(waiter, "waiter", "doc-1", "acquire", h_session(), NULL, "c");
	s_reply(waiter, "result", "queued");
	for (i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		for (j = 0; j < sizeof(topics) / sizeof(topics[0]); j++) {
			assert_int_equal(
			    attempt(w, users[i], topics[j], cmd, 0, NULL),
			    S_RC_NOT_AUTHORIZED);
			assert_int_equal(
			    attempt(w, users[i], topics[j], purge, 0, NULL),
			    S_RC_NOT_AUTHORIZED);
		}
	/* Admins: only on their own command topic. */
	assert_int_equal(attempt(w, "admins", topics[0], cmd, 0, NULL),
	    S_RC_NOT_AUTHORIZED);
	assert_int_equal(attempt(w, "admins", topics[2], purge, 0, NULL),
	    S_RC_NOT_AUTHORIZED);
	/* Admins cannot send lock requests. */
	assert_int_equal(attempt(w, "admins", H_PREFIX "/doc-1/request/%c",
			     h_fmt("{\"op\":\"acquire\",\"client\":\"%%c\","
				   "\"session\":\"%s\"}",
				 h_session()),
			     0, NULL),
	    S_RC_NOT_AUTHORIZED);
	assert_int_equal(attempt(w, "admins", H_PREFIX "/doc-1/request",
			     h_fmt("{\"op\":\"release\",\"client\":\"victim\","
				   "\"session\":\"%s\"}",
				 sv),
			     0, NULL),
	    S_RC_NOT_AUTHORIZED);
	/*
	 * The admin's break finds the victim still holding the lock with
	 * its token, and the waiter still waiting: none of the refused
	 * commands was acted on.
	 */
	assert_true(s_pub(ops, H_PREFIX "/_admin/command/ops", cmd, 0,
			h_reply_topic(ops)) < 0x80);
	m = s_reply(ops, "result", "revoked");
	assert_int_equal(h_int(m, "token"), token);
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "revoked",
	    "reason", "admin");
	m = h_expect(waiter, h_events("waiter"), H_WAIT_MS, "event", "granted");
	assert_true(h_int(m, "token") > token);
	h_expect_none(waiter, h_events("waiter"), 0, "event", "dropped");
	s_pass(w);
}

/*
 * Client ids that are wildcards or hold a '/' would widen the per-client
 * ACL patterns (replies/%c/#, P/_clients/%c/...) into other clients'
 * topics: they are refused at CONNECT on every listener, while the
 * victim is served.
 */
static void
test_wildcard_client_ids(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *victim = s_editor(w, "editors", "victim");
	const char *sv = h_session();
	static const char *const ids[] = {"+", "#", "victim/r", "+/#",
	    "victim/+"};
	char ca[4096];
	int rc;

	snprintf(ca, sizeof(ca), "%s", s_file(w, "ca.crt"));
	/* Control: a plain id gets in on both. */
	assert_int_equal(s_try_at(w, S_WS, "editors", s_password(w, "editors"),
			     "plain", NULL),
	    0);
	assert_int_equal(s_try_at(w, S_TLS, "services",
			     s_password(w, "services"), "plain-2", ca),
	    0);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		rc = s_try_at(w, S_WS, "editors", s_password(w, "editors"),
		    ids[i], NULL);
		print_message("client id '%s' over WebSocket: %d\n", ids[i],
		    rc);
		assert_true(rc != 0);
		rc = s_try_at(w, S_TLS, "services", s_password(w, "services"),
		    ids[i], ca);
		assert_true(rc != 0);
	}
	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	s_reply(victim, "result", "granted");
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "granted");
	s_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_logins, s_teardown),
	    cmocka_unit_test_teardown(
		test_hostile_cannot_release_refresh_or_take_over, s_teardown),
	    cmocka_unit_test_teardown(test_hostile_reads_nothing_secret,
		s_teardown),
	    cmocka_unit_test_teardown(test_monitor_sees_owners_but_no_secret,
		s_teardown),
	    cmocka_unit_test_teardown(
		test_hostile_cannot_forge_owner_status_or_events, s_teardown),
	    cmocka_unit_test_teardown(
		test_replies_cannot_reach_coordinator_topics, s_teardown),
	    cmocka_unit_test_teardown(
		test_reply_topic_cannot_cut_off_coordinator, s_teardown),
	    cmocka_unit_test_teardown(test_hostile_cannot_forge_wills,
		s_teardown),
	    cmocka_unit_test_teardown(test_only_admins_break_locks, s_teardown),
	    cmocka_unit_test_teardown(test_wildcard_client_ids, s_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
