/*
 * test_sec_requests.c: requests bound to the connection that sends them,
 * against the production broker profile (topics.md, "Security model").
 *
 * A logged-in user sends requests only on P/<lock>/request/<its own client
 * id> (the ACL's %c), and mqlockd refuses a request whose "client" differs
 * from that level, so every refusal, error event, rate bucket and limit is
 * charged to the real sender.  Each test below is an attack by such a user
 * and what it must not achieve, with a control that shows what it checks
 * for would have been seen: requests in another client's name, error
 * events pinned on a waiting client, a drained rate bucket, ghost waiters
 * that fill a queue, invented client ids that fill the table, retained
 * junk on the coordinator's topics, and replies aimed at another client.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sec.h"
#include "tutil.h"

#define FLAGS "--grace 1 --idle-timeout 600 --idle-warning 60"
/* A short roll-call window (grace + keepalive): 3 s. */
#define ROLL_FLAGS \
	"--grace 1 --keepalive 2 --idle-timeout 600 --idle-warning 60"
#define ROLL_WINDOW_MS 3000
#define STATUS H_PREFIX "/_coordinator/status"
#define GHOSTS 1024 /* mqlockd's default --max-waiters */

/* P/<lock>/request/<id>, in an h_fmt() buffer. */
static const char *
req_topic(const char *lock, const char *id)
{
	return h_fmt("%s/%s/request/%s", H_PREFIX, lock, id);
}

/*
 * The broker's answer to one publish of payload on topic by a new
 * connection of user with client id id (a denied publish costs
 * mosquitto 2.0.11 the connection).
 */
static int
attempt_as(struct s_world *w, const char *user, const char *id,
    const char *topic, const char *payload, int retained)
{
	char t[512], p[2048];

	snprintf(t, sizeof(t), "%s", topic);
	snprintf(p, sizeof(p), "%s", payload);
	return s_pub(s_connect(w, user, id), t, p, retained, NULL);
}

/* An online status with an epoch above *arg. */
static int
epoch_above(const struct h_msg *m, void *arg)
{
	const long long *e = arg;
	cJSON *st = h_get(m, "state"), *ep = h_get(m, "epoch");

	return cJSON_IsString(st) && strcmp(st->valuestring, "online") == 0 &&
	    cJSON_IsNumber(ep) && (long long)ep->valuedouble > *e;
}

/* Waits for the roll call a full table starts: a new epoch. */
static long long
await_roll_call(struct s_world *w, long long epoch)
{
	struct h_msg *m = h_state_fn(s_mon(w), STATUS, H_WAIT_MS, epoch_above,
	    &epoch, "an online status of a new epoch (a roll call)");

	return h_int(m, "epoch");
}

/*
 * A request naming another client is refused wherever it is sent: on the
 * victim's request topic by the broker (the ACL lets a connection write
 * only on its own), on the sender's own topic by mqlockd ("client differs
 * from the request topic", told to the sender, not to the victim).  The
 * victim's lock, token and binding stay as they were.
 */
static void
test_request_in_anothers_name_refused(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *victim = s_editor(w, "editors", "victim");
	struct h_client *hostile = s_editor(w, "editors", "hostile");
	static const char *const ops[] = {"release", "activity", "acquire"};
	static const char *const users[] = {"editors", "services"};
	const char *sv = h_session(), *sh = h_session();
	struct h_msg *m;
	long long token;
	int k = 0;

	s_request(victim, "victim", "doc-1", "acquire", sv, "\"conn\":1", "c");
	token = h_int(s_reply(victim, "result", "granted"), "token");
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "granted");

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		const char *body = h_fmt("{\"op\":\"%s\",\"client\":\"victim\","
					 "\"session\":\"%s\",\"conn\":2}",
		    ops[i], sh);

		for (size_t u = 0; u < 2; u++)
			assert_int_equal(
			    attempt_as(w, users[u], h_fmt("att-%d", ++k),
				req_topic("doc-1", "victim"), body, 0),
			    S_RC_NOT_AUTHORIZED);
		s_send(hostile, req_topic("doc-1", "hostile"), body, "c");
		m = s_reply(hostile, "code", "bad-request");
		assert_non_null(strstr(h_str(m, "message"), "client differs"));
		h_expect(hostile, h_events("hostile"), H_WAIT_MS, "event",
		    "error", "code", "bad-request");
	}
	/* The victim heard nothing, and its lock is as it was. */
	h_expect_none(victim, h_events("victim"), H_QUIET_MS, H_ANY);
	s_request(victim, "victim", "doc-1", "activity", sv, "\"conn\":1", "c");
	s_reply(victim, "result", "refreshed");
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "owner.client", "victim");
	assert_int_equal(h_int(m, "token"), token);
	assert_int_equal(h_int(m, "waiting"), 0);
	s_pass(w);
}

/*
 * A waiting client cannot be made to leave the queue, nor to take an error
 * event as its own, by requests that name it: forged releases and
 * malformed requests naming it are refused to their sender, the waiter's
 * events topic stays silent, and the waiter is granted the lock when the
 * holder lets go.
 */
static void
test_forged_requests_leave_waiter_alone(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *holder = s_editor(w, "editors", "holder");
	struct h_client *victim = s_editor(w, "editors", "victim");
	struct h_client *hostile = s_editor(w, "editors", "hostile");
	const char *sh = h_session(), *sv = h_session();
	const char *forged[] = {
	    h_fmt("{\"op\":\"release\",\"client\":\"victim\","
		  "\"session\":\"%s\"}",
		sh),
	    "{\"op\":\"release\",\"client\":\"victim\",\"session\":\"x\"}",
	    "{\"op\":\"leave\",\"client\":\"victim\"}",
	    "{\"client\":\"victim\",\"op\":1}",
	    h_fmt("{\"op\":\"acquire\",\"client\":\"victim\","
		  "\"session\":\"%s\",\"wait\":false}",
		sh),
	};
	const char *hs = h_session();
	char bodies[5][512];
	struct h_msg *m;
	size_t i;

	/* Copies: the forged bodies live in h_fmt() buffers. */
	for (i = 0; i < 5; i++)
		snprintf(bodies[i], sizeof(bodies[i]), "%s", forged[i]);

	s_request(holder, "holder", "doc-1", "acquire", hs, NULL, "c");
	s_reply(holder, "result", "granted");
	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	s_reply(victim, "result", "queued");
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "queued",
	    "position", "#1");

	for (i = 0; i < 5; i++) {
		s_send(hostile, req_topic("doc-1", "hostile"), bodies[i], "c");
		s_reply(hostile, "code", "bad-request");
		h_expect(hostile, h_events("hostile"), H_WAIT_MS, "event",
		    "error");
		assert_int_equal(attempt_as(w, "editors", h_fmt("att-%zu", i),
				     req_topic("doc-1", "victim"), bodies[i],
				     0),
		    S_RC_NOT_AUTHORIZED);
	}
	/* Control, after them in order: the hostile's own request. */
	s_request(hostile, "hostile", "doc-1", "acquire", sh, NULL, "c");
	s_reply(hostile, "result", "queued");
	h_expect_none(victim, h_events("victim"), 0, H_ANY);
	m = h_state(mon, h_owner("doc-1"), H_WAIT_MS, "waiting", "#2");
	assert_string_equal(h_str(m, "queue.0.client"), "victim");

	s_request(holder, "holder", "doc-1", "release", hs, NULL, "c");
	s_reply(holder, "result", "released");
	h_expect(victim, h_events("victim"), H_WAIT_MS, "event", "granted");
	h_expect_none(victim, h_events("victim"), 0, "event", "error");
	s_pass(w);
}

/*
 * A client's rate bucket is its own: a hostile client that floods requests
 * naming the victim drains only its own bucket (it is then refused
 * "too many requests" even for its own requests), and the victim is served
 * all the while.
 */
static void
test_rate_bucket_is_the_senders(void **state)
{
	/* --rate 2: a bucket of 20 requests, 2 more a second. */
	struct s_world *w = s_world_start(state, FLAGS " --rate 2");
	struct h_client *victim = s_editor(w, "editors", "victim");
	struct h_client *hostile = s_editor(w, "editors", "hostile");
	const char *sv = h_session(), *sh = h_session();
	int limited = 0, i;
	struct h_msg *m;

	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c");
	s_reply(victim, "result", "granted");
	for (i = 0; i < 60; i++) {
		s_send(hostile, req_topic("doc-1", "hostile"),
		    h_fmt("{\"op\":\"release\",\"client\":\"victim\","
			  "\"session\":\"%s\"}",
			sh),
		    "c");
		m = s_reply(hostile, "ok", "#false");
		limited += strcmp(h_str(m, "code"), "limit") == 0;
	}
	print_message("%d of 60 forged requests were over the sender's rate\n",
	    limited);
	assert_true(limited >= 30);
	/* Its own bucket is empty: even its own request is refused. */
	s_request(hostile, "hostile", "doc-1", "acquire", sh, NULL, "c");
	m = s_reply(hostile, "code", "limit");
	assert_string_equal(h_str(m, "message"), "too many requests");
	/* The victim's is full: 15 requests in a row, all served. */
	for (i = 0; i < 15; i++) {
		s_request(victim, "victim", "doc-1", "activity", sv, NULL, "c");
		s_reply(victim, "result", "refreshed");
	}
	h_expect_none(victim, h_events("victim"), 0, "event", "error");
	s_pass(w);
}

/* Ghost i: acquire `arg`'s lock as ghost-i, then leave without a will. */
static void
ghost(int i, char *id, char *topic, char *body, void *arg)
{
	const char *lock = arg;

	snprintf(id, S_BURST_ID, "ghost-%04d", i);
	snprintf(topic, S_BURST_TOPIC, "%s", req_topic(lock, id));
	snprintf(body, S_BURST_BODY,
	    "{\"op\":\"acquire\",\"client\":\"%s\",\"session\":\"%s\"}", id,
	    h_session());
}

/*
 * Ghost waiters: 1,024 connections that each queue for one lock and then
 * disconnect cleanly, without a will, fill its queue.  The next acquire is
 * refused (limit), which starts a roll call: the holder answers it, the
 * ghosts cannot, and are dropped when the roll-call window ends; then a
 * real user queues, first in line.
 */
static void
test_ghost_waiters_dropped_by_roll_call(void **state)
{
	struct s_world *w = s_world_start(state, ROLL_FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *holder = s_editor(w, "editors", "holder");
	struct h_client *late = s_editor(w, "editors", "late");
	const char *sh = h_session(), *sl = h_session();
	long long token, epoch = s_epoch(w), ms, t0;
	struct h_msg *m;

	s_request(holder, "holder", "doc-g", "acquire", sh, NULL, "c");
	token = h_int(s_reply(holder, "result", "granted"), "token");
	ms = s_burst(w, "editors", GHOSTS, ghost, "doc-g");
	print_message("%d ghost waiters queued in %lld ms\n", GHOSTS, ms);
	h_state(mon, h_owner("doc-g"), H_WAIT_MS, "waiting",
	    h_fmt("#%d", GHOSTS));

	s_request(late, "late", "doc-g", "acquire", sl, NULL, "c");
	m = s_reply(late, "code", "limit");
	print_message("refused: %s\n", h_str(m, "message"));
	epoch = await_roll_call(w, epoch);
	t0 = tutil_mono_ms();
	/* The holder answers the roll call, as every client does. */
	s_request(holder, "holder", "doc-g", "acquire", sh, NULL, "c");
	m = s_reply(holder, "result", "granted");
	assert_int_equal(h_int(m, "token"), token);
	h_state(mon, h_owner("doc-g"), ROLL_WINDOW_MS + H_WAIT_MS, "waiting",
	    "#0", "owner.client", "holder", "token", h_fmt("#%lld", token));
	print_message("ghosts dropped %lld ms after the roll call of epoch "
		      "%lld (window %d ms)\n",
	    tutil_mono_ms() - t0, epoch, ROLL_WINDOW_MS);

	t0 = tutil_mono_ms();
	s_request(late, "late", "doc-g", "acquire", sl, NULL, "c");
	s_reply(late, "result", "queued");
	print_message("late answered after %lld ms\n", tutil_mono_ms() - t0);
	h_state(mon, h_owner("doc-g"), H_WAIT_MS, "waiting", "#1",
	    "queue.0.client", "late", "owner.client", "holder");
	s_pass(w);
}

/*
 * An admin purge empties a queue at once: every waiter hears `dropped`
 * (reason admin, with the admin's message), the holder keeps the lock and
 * its token, and the lock can be queued for again.
 */
static void
test_admin_purge_empties_queue(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *holder = s_editor(w, "editors", "holder");
	struct h_client *ops = s_connect(w, "admins", "ops");
	struct h_client *wt[3];
	const char *sh = h_session(), *sw[3];
	long long token;
	struct h_msg *m;
	int i;

	h_sub(ops, "replies/ops/#");
	s_request(holder, "holder", "doc-1", "acquire", sh, NULL, "c");
	token = h_int(s_reply(holder, "result", "granted"), "token");
	for (i = 0; i < 3; i++) {
		const char *id = h_fmt("waiter-%d", i);

		wt[i] = s_editor(w, "editors", id);
		sw[i] = h_session();
		s_request(wt[i], h_fmt("waiter-%d", i), "doc-1", "acquire",
		    sw[i], NULL, "c");
		s_reply(wt[i], "result", "queued");
	}
	h_state(mon, h_owner("doc-1"), H_WAIT_MS, "waiting", "#3");

	assert_true(s_pub(ops, H_PREFIX "/_admin/command/ops",
			"{\"op\":\"purge\",\"lock\":\"doc-1\","
			"\"reason\":\"queue reset\"}",
			0, h_reply_topic(ops)) < 0x80);
	m = s_reply(ops, "result", "purged");
	assert_int_equal(h_int(m, "count"), 3);
	for (i = 0; i < 3; i++)
		h_expect(wt[i], h_events(h_fmt("waiter-%d", i)), H_WAIT_MS,
		    "event", "dropped", "reason", "admin", "lock", "doc-1");
	h_state(mon, h_owner("doc-1"), H_WAIT_MS, "waiting", "#0",
	    "owner.client", "holder", "token", h_fmt("#%lld", token));
	s_request(holder, "holder", "doc-1", "activity", sh, NULL, "c");
	s_reply(holder, "result", "refreshed");
	h_expect_none(holder, h_events("holder"), 0, "event", "revoked");
	/* The queue takes waiters again. */
	s_request(wt[2], "waiter-2", "doc-1", "acquire", sw[2], NULL, "c");
	s_reply(wt[2], "result", "queued");
	h_state(mon, h_owner("doc-1"), H_WAIT_MS, "waiting", "#1",
	    "queue.0.client", "waiter-2");
	s_pass(w);
}

/* Filler i: take lock fill-i as filler-i, then leave without a will. */
static void
filler(int i, char *id, char *topic, char *body, void *arg)
{
	(void)arg;
	snprintf(id, S_BURST_ID, "filler-%03d", i);
	snprintf(topic, S_BURST_TOPIC, "%s",
	    req_topic(h_fmt("fill-%03d", i), id));
	snprintf(body, S_BURST_BODY,
	    "{\"op\":\"acquire\",\"client\":\"%s\",\"session\":\"%s\"}", id,
	    h_session());
}

/*
 * Invented client ids cannot fill --max-clients for others.  One
 * connection naming 300 made-up ids is refused every time (each request
 * names another client than its topic) and adds no client; filling the
 * table takes a connection per id, and once it is full the next acquire
 * starts a roll call that drops the clients gone without a will, after
 * which a real user gets a lock.
 */
static void
test_invented_ids_cannot_fill_client_table(void **state)
{
	struct s_world *w =
	    s_world_start(state, ROLL_FLAGS " --max-clients 32");
	struct h_client *mon = s_mon(w);
	struct h_client *hostile = s_editor(w, "services", "hostile");
	struct h_client *user = s_editor(w, "editors", "user");
	struct h_client *late = s_editor(w, "editors", "late");
	const char *su = h_session(), *sl = h_session();
	long long epoch = s_epoch(w), ms;
	int i;

	for (i = 0; i < 300; i++) {
		s_send(hostile, req_topic(h_fmt("inv-%d", i), "hostile"),
		    h_fmt("{\"op\":\"acquire\",\"client\":\"inv-%d\","
			  "\"session\":\"%s\"}",
			i, h_session()),
		    "c");
		s_reply(hostile, "ok", "#false");
	}
	assert_int_equal(attempt_as(w, "services", "hostile-2",
			     H_PREFIX "/inv-x/request",
			     "{\"op\":\"acquire\",\"client\":\"inv-x\","
			     "\"session\":\"0123456789abcdef\"}",
			     0),
	    S_RC_NOT_AUTHORIZED);
	/* None of them is in the table: a real user is served. */
	s_request(user, "user", "doc-u", "acquire", su, NULL, "c");
	s_reply(user, "result", "granted");
	s_request(user, "user", "doc-u", "release", su, NULL, "c");
	s_reply(user, "result", "released");
	assert_int_equal(h_count(mon, h_owner("inv-0")), 0);

	/* A connection per id fills it. */
	ms = s_burst(w, "editors", 32, filler, NULL);
	print_message("32 clients filled the table in %lld ms\n", ms);
	h_state(mon, h_owner("fill-031"), H_WAIT_MS, "owner.client",
	    "filler-031");
	s_request(late, "late", "doc-l", "acquire", sl, NULL, "c");
	s_reply(late, "code", "limit");
	await_roll_call(w, epoch);
	for (i = 0; i < 32; i++)
		h_state(mon, h_owner(h_fmt("fill-%03d", i)),
		    ROLL_WINDOW_MS + H_WAIT_MS, H_FREE);
	s_request(late, "late", "doc-l", "acquire", sl, NULL, "c");
	s_reply(late, "result", "granted");
	s_pass(w);
}

/* Does the coordinator's log contain needle? */
static int
coord_logged(struct s_world *w, const char *needle)
{
	return tutil_file_contains(h_path(s_h(w), "production-mqlockd.log"),
	    needle);
}

/*
 * Retained junk on the topics clients write to the coordinator (its own
 * request topic, its will topic, an admin's command topic) is never acted
 * on, clearing it does not cost the coordinator its connection (it stays
 * online in the same epoch and keeps serving), and the broker holds it no
 * more.
 */
static void
test_retained_junk_not_acted_on(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *mon = s_mon(w);
	struct h_client *hostile = s_editor(w, "services", "hostile");
	struct h_client *ops = s_connect(w, "admins", "ops");
	struct h_client *spy;
	long long epoch = s_epoch(w);
	const char *sh = h_session();
	const char *acquire = h_fmt("{\"op\":\"acquire\",\"client\":"
				    "\"hostile\",\"session\":\"%s\"}",
	    sh);
	char body[256];

	snprintf(body, sizeof(body), "%s", acquire);
	h_sub(ops, "replies/ops/#");
	assert_true(s_pub(hostile, req_topic("doc-r", "hostile"), body, 1,
			NULL) < 0x80);
	assert_true(s_pub(hostile, s_will("hostile"),
			h_fmt("{\"session\":\"%s\"}", sh), 1, NULL) < 0x80);
	assert_true(s_pub(hostile, s_will("hostile"), "junk", 1, NULL) < 0x80);
	assert_true(
	    s_pub(ops, H_PREFIX "/_admin/command/ops",
		"{\"op\":\"break\",\"lock\":\"doc-r\"}", 1, NULL) < 0x80);
	/* Markers: served after all of them. */
	s_request(hostile, "hostile", "doc-m", "acquire", sh, NULL, "c");
	s_reply(hostile, "result", "granted");
	assert_true(s_pub(ops, H_PREFIX "/_admin/command/ops",
			"{\"op\":\"break\",\"lock\":\"doc-m\"}", 0,
			h_reply_topic(ops)) < 0x80);
	s_reply(ops, "result", "revoked");
	s_request(hostile, "hostile", "doc-m2", "acquire", sh, NULL, "c");
	s_reply(hostile, "result", "granted");

	/* Not acted on: doc-r was never granted. */
	h_expect_none(mon, h_owner("doc-r"), 0, H_ANY);
	h_expect_none(hostile, h_events("hostile"), 0, "lock", "doc-r");
	assert_true(coord_logged(w,
	    "cleared a retained message on " H_PREFIX
	    "/doc-r/request/hostile"));
	assert_true(coord_logged(w,
	    "cleared a retained message on " H_PREFIX
	    "/_clients/hostile/will"));
	/* Online all along, in the same epoch. */
	h_expect_none(mon, STATUS, 0, H_ANY);
	assert_int_equal(s_epoch(w), epoch);

	/*
	 * The broker no longer holds it: only the coordinator's account
	 * reads these topics, so look with it once mqlockd stopped.
	 * Control: junk published after that is still there.
	 */
	s_coord_stop(w);
	assert_true(s_pub(hostile, req_topic("doc-late", "hostile"), body, 1,
			NULL) < 0x80);
	spy = s_connect(w, "coordinator", s_coord_id(w));
	h_sub(spy, H_PREFIX "/+/request/+");
	h_sub(spy, H_PREFIX "/_clients/+/will");
	h_sub(spy, H_PREFIX "/_admin/command/+");
	h_expect(spy, req_topic("doc-late", "hostile"), H_WAIT_MS, H_ANY);
	h_expect_none(spy, req_topic("doc-r", "hostile"), H_QUIET_MS, H_ANY);
	h_expect_none(spy, s_will("hostile"), 0, H_ANY);
	h_expect_none(spy, H_PREFIX "/_admin/command/ops", 0, H_ANY);
	s_pass(w);
}

/*
 * Retained junk is gone from the broker once mqlockd has seen it: a fresh
 * subscriber (on the development broker, where anyone may read these
 * topics) finds nothing retained on request, will or admin topics, while
 * a retained message on a topic mqlockd does not read stays (control).
 */
static void
test_retained_junk_cleared_from_broker(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	struct h_client *fresh;
	const char *sess = h_session();
	char acquire[256];
	static const char *const junk[] = {H_PREFIX "/doc-r/request",
	    H_PREFIX "/doc-r/request/ctl", H_PREFIX "/_clients/ctl/will",
	    H_PREFIX "/_admin/command", H_PREFIX "/_admin/command/ctl"};
	const char *keep = H_PREFIX "/_clients/ctl/sync";
	size_t i;

	snprintf(acquire, sizeof(acquire),
	    "{\"op\":\"acquire\",\"client\":\"ctl\",\"session\":\"%s\"}", sess);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		h_publish(ctl, junk[i], acquire, strlen(acquire), 1, NULL);
	h_publish(ctl, keep, "{\"marker\":1}", 12, 1, NULL);
	/* A marker: mqlockd cleared them before it answered this. */
	h_request(ctl, "doc-m", "acquire", "ctl", sess, NULL, "m");
	h_expect(ctl, h_reply_for("ctl"), H_WAIT_MS, "result", "granted");

	fresh = h_client_new(w, "fresh");
	h_sub(fresh, keep);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		h_sub(fresh, junk[i]);
	h_expect(fresh, keep, H_WAIT_MS, "marker", "#1");
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		h_expect_none(fresh, junk[i], i == 0 ? H_QUIET_MS : 0, H_ANY);
	/* Never acted on: nobody holds doc-r. */
	h_expect_none(ctl, h_owner("doc-r"), 0, "owner.client", "ctl");
	h_pass(w);
}

/*
 * Replies with forged correlation data cannot be aimed at another client:
 * 300 requests whose response topic lies in the victim's reply space
 * (replies/victim/...) are refused (bad-request, to their sender) and no
 * reply reaches the victim; the victim's own requests are answered there,
 * once each.
 */
static void
test_replies_not_aimed_at_another(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	struct h_client *victim = s_connect(w, "editors", "victim");
	struct h_client *hostile = s_editor(w, "editors", "hostile");
	static const char *const targets[] = {"replies/victim/r",
	    "replies/victim", "replies/victim/r/deeper"};
	const char *sv = h_session(), *sh = h_session();
	char body[512];
	int i;

	h_sub(victim, "replies/victim/#");
	s_request(victim, "victim", "doc-1", "acquire", sv, NULL, "c-1");
	h_expect(victim, h_reply_topic(victim), H_WAIT_MS, "result", "granted");

	snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"hostile\",\"session\":\"%s\"}",
	    sh);
	for (i = 0; i < 300; i++) {
		const char *corr = i % 2 == 0 ? "c-1" : "c-2";

		assert_true(h_publish_rc(hostile, req_topic("doc-1", "hostile"),
				body, strlen(body), 0, targets[i % 3], corr,
				strlen(corr)) < 0x80);
	}
	for (i = 0; i < 300; i++)
		h_expect(hostile, h_events("hostile"), H_WAIT_MS, "event",
		    "error", "code", "bad-request");
	/* Control: the victim's own next request is answered there. */
	s_request(victim, "victim", "doc-1", "activity", sv, NULL, "c-2");
	h_expect(victim, h_reply_topic(victim), H_WAIT_MS, "result",
	    "refreshed");
	h_expect_none(victim, "replies/victim/r", H_QUIET_MS, H_ANY);
	assert_int_equal(h_count(victim, NULL), 2);
	/* Nor did the hostile get a reply of its own for them. */
	assert_int_equal(h_count(hostile, h_reply_topic(hostile)), 0);
	s_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_request_in_anothers_name_refused,
		s_teardown),
	    cmocka_unit_test_teardown(test_forged_requests_leave_waiter_alone,
		s_teardown),
	    cmocka_unit_test_teardown(test_rate_bucket_is_the_senders,
		s_teardown),
	    cmocka_unit_test_teardown(test_ghost_waiters_dropped_by_roll_call,
		s_teardown),
	    cmocka_unit_test_teardown(test_admin_purge_empties_queue,
		s_teardown),
	    cmocka_unit_test_teardown(
		test_invented_ids_cannot_fill_client_table, s_teardown),
	    cmocka_unit_test_teardown(test_retained_junk_not_acted_on,
		s_teardown),
	    cmocka_unit_test_teardown(test_retained_junk_cleared_from_broker,
		h_teardown),
	    cmocka_unit_test_teardown(test_replies_not_aimed_at_another,
		s_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
