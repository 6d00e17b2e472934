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

/*
 * attempt(w, user, topic, payload, retained, resp): the broker's answer to
 * one publish by a new connection of user.  mosquitto 2.0.11 acknowledges a
 * denied publish with 0x87 and then closes the connection, so every
 * attempt gets a connection of its own.
 */
static int
attempt(struct s_world *w, const char *user, const char *topic,
    const char *payload, int retained, const char *resp)
{
	static int n;
	char t[512], p[2048], id[64];
	struct h_client *c;

	/* Copies first: the arguments may live in h_fmt() buffers. */
	snprintf(t, sizeof(t), "%s", topic);
	snprintf(p, sizeof(p), "%s", payload);
	snprintf(id, sizeof(id), "try-%s-%d", user, ++n);
	c = s_connect(w, user, id);
	return s_pub(c, t, p, retained, resp);
}

/* An editor that subscribed to its events and replies. */
static struct h_client *
editor(struct s_world *w, const char *user, const char *id)
{
	struct h_client *c = s_connect(w, user, id);

	h_sub(c, h_events(id));
	h_sub(c, h_fmt("replies/%s/#", id));
	return c;
}

/* c's requests as client `id` get this reply (result or error code). */
static struct h_msg *
reply(struct h_client *c, const char *key, const char *value)
{
	return h_expect(c, h_reply_topic(c), H_WAIT_MS, key, value);
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
	struct h_client *alice = editor(w, "editors", "ed-alice");
	struct h_client *bob = editor(w, "services", "svc-bob");
	struct h_client *carol = editor(w, "editors", "ed-carol-req");
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
	reply(alice, "result", "granted");
	h_expect(alice, h_events("ed-alice"), H_WAIT_MS, "event", "granted");
	s_request(bob, "svc-bob", "doc-a", "acquire", sb, "\"user\":\"Bob\"",
	    "c");
	reply(bob, "result", "queued");
	s_request(alice, "ed-alice", "doc-a", "activity", sa, NULL, "c");
	reply(alice, "result", "refreshed");

	/* Carol holds doc-b through a connection whose will fires. */
	walker = s_holder(w, "services", "ed-carol", sc, 1, s_will("ed-carol"));
	h_request(carol, "doc-b", "acquire", "ed-carol", sc,
	    "\"user\":\"Carol\",\"conn\":1", "c");
	reply(carol, "result", "granted");
	h_state(mon, h_owner("doc-b"), H_WAIT_MS, "owner.client", "ed-carol",
	    "owner.connected", "#true");
	h_proc_kill(walker, SIGKILL);
	h_state(mon, h_owner("doc-b"), H_WAIT_MS, "owner.client", "ed-carol",
	    "owner.connected", "#false");

	rc = s_pub(ops, H_PREFIX "/_admin/command/ops",
	    "{\"op\":\"break\",\"lock\":\"doc-a\",\"reason\":\"drill\"}", 0,
	    h_reply_topic(ops));
	assert_true(rc < 0x80);
	reply(ops, "result", "revoked");
	h_expect(bob, h_events("svc-bob"), H_WAIT_MS, "event", "granted");
	s_request(bob, "svc-bob", "doc-a", "release", sb, NULL, "c");
	reply(bob, "result", "released");
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
 * neither release, refresh nor take over its lock; it can queue like
 * anyone, and gets the lock only when the holder lets go.
 */
static void
test_hostile_cannot_release_refresh_or_take_over(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *victim = editor(w, "editors", "victim");
	struct h_client *hostile = editor(w, "editors", "hostile");
	const char *sv = h_session(), *sh = h_session();
	struct holder h = {"doc-1", "victim", 0};
	static const char *const ops[] = {"release", "activity", "acquire"};
	struct h_msg *m;
	long long deadline;

	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	h.token = h_int(reply(victim, "result", "granted"), "token");
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim");
	deadline = h_int(m, "idle_deadline");

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		h_request(hostile, "doc-1", ops[i], "victim", sh, NULL, "c");
		reply(hostile, "code", "session-mismatch");
		/* With the same session but other connection numbers. */
		h_request(hostile, "doc-1", ops[i], "victim", sh,
		    "\"conn\":9007199254740991", "c");
		reply(hostile, "code", "session-mismatch");
	}
	h_request(hostile, "doc-1", "acquire", "victim", sh, "\"wait\":false",
	    "c");
	reply(hostile, "code", "session-mismatch");
	/* Not a session at all: refused before it is compared. */
	h_request(hostile, "doc-1", "release", "victim", "", NULL, "c");
	reply(hostile, "code", "bad-request");
	assert_int_equal(attempt(w, "editors", H_PREFIX "/_admin/command",
			     "{\"op\":\"break\",\"lock\":\"doc-1\"}", 0, NULL),
	    S_RC_NOT_AUTHORIZED);

	/* The victim still holds it, bound to its session, token unchanged. */
	s_request(victim, "victim", "doc-1", "activity", sv, NULL, "c");
	reply(victim, "result", "refreshed");
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim");
	assert_int_equal(h_int(m, "token"), h.token);
	assert_true(h_int(m, "idle_deadline") >= deadline);
	h_forbidden(mon, 0, other_holder, &h,
	    "an owner message naming another holder");

	/* Legitimate use by the same client still works. */
	s_request(hostile, "hostile", "doc-1", "acquire", sh, NULL, "c");
	reply(hostile, "result", "queued");
	s_request(victim, "victim", "doc-1", "release", sv, NULL, "c");
	reply(victim, "result", "released");
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
	    H_PREFIX "/+/request", H_PREFIX "/_clients/+/will",
	    H_PREFIX "/_clients/+/events", H_PREFIX "/_clients/ed-alice/#",
	    H_PREFIX "/_admin/command", "replies/#", "replies/ed-alice/#",
	    "+/+/+", "+/+/+/+"};
	struct allowed a = {{H_PREFIX "/+/owner", STATUS,
				H_PREFIX "/_clients/hostile/events",
				"replies/hostile/#"},
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
	assert_int_equal(attempt(w, "monitors",
			     h_fmt("%s/doc-a/request", H_PREFIX),
			     h_fmt("{\"op\":\"acquire\",\"client\":"
				   "\"dashboard\",\"session\":\"%s\"}",
				 h_session()),
			     0, NULL),
	    S_RC_NOT_AUTHORIZED);
	assert_int_equal(attempt(w, "monitors", H_PREFIX "/_admin/command",
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
	struct h_client *victim = editor(w, "editors", "victim");
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
	h.token = h_int(reply(victim, "result", "granted"), "token");
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
	struct h_client *victim = editor(w, "editors", "victim");
	struct h_client *hostile = editor(w, "editors", "hostile");
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
	reply(victim, "result", "granted");
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
	reply(victim, "result", "refreshed");
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
	struct h_client *victim = editor(w, "editors", "victim");
	struct h_client *hostile = editor(w, "editors", "hostile");
	const char *sv = h_session(), *sh = h_session();
	struct member offline = {STATUS, "state", "offline"};
	static const char *const topics[] = {"elsewhere/x",
	    H_PREFIX "/doc-1/request", H_PREFIX "/_admin/command", "$SYS/x"};
	char body[512];

	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	reply(victim, "result", "granted");
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
	reply(victim, "result", "refreshed");
	h_forbidden(mon, H_QUIET_MS, member_is, &offline,
	    "the coordinator's offline status");
	s_pass(w);
}

/*
 * Wills: an editor can neither publish on another client's will topic nor
 * leave a Last Will there; the broker drops such a will when it fires.
 * Control: a will on the client's own topic, fired the same way just
 * after, does mark its holder disconnected.
 */
static void
test_hostile_cannot_forge_wills(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *req = editor(w, "editors", "requests");
	const char *sv = h_session(), *sw = h_session();
	struct holder h = {"doc-1", "victim", 0};
	struct h_proc *forger, *walker;
	char will[256];

	/* The victim's connection carries its will, as a page's does. */
	s_holder(w, "services", "victim", sv, 1, s_will("victim"));
	h_request(req, "doc-1", "acquire", "victim", sv, "\"conn\":1", "c");
	h.token = h_int(reply(req, "result", "granted"), "token");
	h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim",
	    "owner.connected", "#true");

	/* Even with the victim's session (say it leaked), and a newer conn. */
	snprintf(will, sizeof(will), "{\"session\":\"%s\",\"conn\":2}", sv);
	assert_int_equal(attempt(w, "editors", s_will("victim"), will, 0, NULL),
	    S_RC_NOT_AUTHORIZED);
	forger = s_holder(w, "services", "forger", sv, 2, s_will("victim"));

	/* Control: Walker holds doc-2 with a will on its own topic. */
	walker = s_holder(w, "services", "walker", sw, 1, s_will("walker"));
	h_request(req, "doc-2", "acquire", "walker", sw, "\"conn\":1", "c");
	reply(req, "result", "granted");
	h_state(mon, h_owner("doc-2"), H_WAIT_MS, "owner.client", "walker",
	    "owner.connected", "#true");

	h_proc_kill(forger, SIGKILL);
	h_proc_kill(walker, SIGKILL);
	h_state(mon, h_owner("doc-2"), H_WAIT_MS, "owner.client", "walker",
	    "owner.connected", "#false");
	h_forbidden(mon, H_QUIET_MS, shown_disconnected, &h,
	    "the victim shown disconnected");
	/* The victim still holds its lock, connected, same token. */
	h_request(req, "doc-1", "activity", "victim", sv, "\"conn\":1", "c");
	reply(req, "result", "refreshed");
	h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim",
	    "owner.connected", "#true", "token", h_fmt("#%lld", h.token));
	s_pass(w);
}

/* Only admins break locks; editors, services and monitors are refused. */
static void
test_only_admins_break_locks(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *victim = editor(w, "editors", "victim");
	struct h_client *ops = s_connect(w, "admins", "ops");
	static const char *const users[] = {"editors", "services", "monitors"};
	const char *cmd = "{\"op\":\"break\",\"lock\":\"doc-1\"}";
	const char *sv = h_session();
	long long token;
	struct h_msg *m;

	h_sub(ops, "replies/ops/#");
	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	token = h_int(reply(victim, "result", "granted"), "token");
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		assert_int_equal(attempt(w, users[i],
				     H_PREFIX "/_admin/command", cmd, 0, NULL),
		    S_RC_NOT_AUTHORIZED);
	/* Admins cannot send lock requests. */
	assert_int_equal(attempt(w, "admins",
			     h_fmt("%s/doc-1/request", H_PREFIX),
			     h_fmt("{\"op\":\"release\",\"client\":\"victim\","
				   "\"session\":\"%s\"}",
				 sv),
			     0, NULL),
	    S_RC_NOT_AUTHORIZED);
	/*
	 * The admin's break finds the victim still holding the lock with
	 * its token: none of the refused commands was acted on.
	 */
	assert_true(s_pub(ops, H_PREFIX "/_admin/command/ops", cmd, 0,
			h_reply_topic(ops)) < 0x80);
	m = reply(ops, "result", "revoked");
	assert_int_equal(h_int(m, "token"), token);
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "revoked",
	    "reason", "admin");
	s_pass(w);
}

/*
 * Client ids that are wildcards do not widen the per-client ACL patterns:
 * "+" and "#" read no one's events or replies and write no one's will.
 */
static void
test_wildcard_client_ids(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *victim = editor(w, "editors", "victim");
	const char *sv = h_session();
	static const char *const ids[] = {"+", "#"};
	struct h_client *hostile[2] = {NULL, NULL};
	struct allowed a = {{H_PREFIX "/+/owner", STATUS}, {NULL}};
	char will[256];

	a.secrets[0] = sv;
	for (int i = 0; i < 2; i++) {
		hostile[i] = s_connect(w, "editors", ids[i]);
		h_sub(hostile[i], H_PREFIX "/_clients/+/events");
		h_sub(hostile[i], H_PREFIX "/_clients/#");
		h_sub(hostile[i], "replies/#");
		h_sub(hostile[i], H_PREFIX "/+/owner");
	}
	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	reply(victim, "result", "granted");
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "granted");
	snprintf(will, sizeof(will), "{\"session\":\"%s\"}", sv);
	/* Control: they do receive what every editor may. */
	for (int i = 0; i < 2; i++)
		h_expect(hostile[i], h_owner("doc-1"), H_WAIT_MS,
		    "owner.client", "victim");
	for (int i = 0; i < 2; i++)
		h_forbidden(hostile[i], i == 0 ? H_QUIET_MS : 0, not_allowed,
		    &a, "another client's events, replies or secrets");
	/* The last thing they do: a denied publish ends the connection. */
	for (int i = 0; i < 2; i++)
		assert_int_equal(
		    s_pub(hostile[i], s_will("victim"), will, 0, NULL),
		    S_RC_NOT_AUTHORIZED);
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
