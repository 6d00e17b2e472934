/*
 * test_it_poison.c: no single request stops the lock service (topics.md,
 * "Names" and "Security model").
 *
 * mosquitto refuses a topic that holds a C0 or C1 control character, DEL,
 * a non-character (U+FDD0-U+FDEF, U+xxFFFE, U+xxFFFF) or is not UTF-8,
 * and drops the connection that publishes one.  mqlockd names topics after
 * client ids, lock ids and MQTT 5 response topics that clients send, so
 * each such character, raw and as a JSON \u escape, goes here into client
 * ids, user names, lock ids of admin commands and response topics, in
 * otherwise valid and in malformed requests, on the unbound request topic
 * and (as far as the broker lets it through) on bound ones.  After every
 * single poison request:
 *   - a fresh acquire by another client is answered,
 *   - mqlockd is still connected: no status message since it started (an
 *     offline status or a new epoch would be one),
 *   - its journal holds no client or lock id that is not a valid topic
 *     level.
 * Also: a journal holding such ids loads with them dropped (and logged);
 * mqlockd thrown off the broker by a connection that takes its client id
 * comes back within its backoff and serves; and with --offline-exit it
 * exits (non-zero) when the broker stays away.
 *
 * The development broker (the harness's, anonymous) is used: there anyone
 * may publish anywhere, which is the widest surface.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <MQTTAsync.h>

#include "harness.h"
#include "tutil.h"

#define FLAGS "--grace 1 --keepalive 2 --idle-timeout 600 --idle-warning 60"
#define ROLL_WINDOW_MS 3000 /* grace + keepalive */
#define STATUS H_PREFIX "/_coordinator/status"
#define BACKOFF_MAX_MS 5000 /* mqlockd's reconnect backoff, at most */
#define OFFLINE_EXIT_S 2

/* One character class mosquitto refuses in topics. */
struct poison {
	const char *name;
	const char *raw; /* its UTF-8 bytes (NULL: U+0000) */
	const char *esc; /* as a JSON escape, NULL when there is none */
};

static const struct poison poisons[] = {
    {"U+0000", NULL, "\\u0000"},
    {"U+0001", "\x01", "\\u0001"},
    {"U+000A", "\n", "\\n"},
    {"U+001F", "\x1f", "\\u001f"},
    {"U+007F (DEL)", "\x7f", "\\u007f"},
    {"U+0080", "\xc2\x80", "\\u0080"},
    {"U+0085", "\xc2\x85", "\\u0085"},
    {"U+009F", "\xc2\x9f", "\\u009f"},
    {"U+FDD0", "\xef\xb7\x90", "\\ufdd0"},
    {"U+FDEF", "\xef\xb7\xaf", "\\ufdef"},
    {"U+FFFE", "\xef\xbf\xbe", "\\ufffe"},
    {"U+FFFF", "\xef\xbf\xbf", "\\uffff"},
    {"U+1FFFE", "\xf0\x9f\xbf\xbe", "\\ud83f\\udffe"},
    {"U+1FFFF", "\xf0\x9f\xbf\xbf", "\\ud83f\\udfff"},
    {"U+10FFFF", "\xf4\x8f\xbf\xbf", "\\udbff\\udfff"},
    {"lone surrogate", "\xed\xa0\x80", "\\ud800"},
    {"overlong /", "\xc0\xaf", NULL},
    {"byte 0xFF", "\xff", NULL},
    {"/", "/", "\\/"},
    {"+", "+", "\\u002b"},
    {"#", "#", "\\u0023"},
};

#define NPOISONS (sizeof(poisons) / sizeof(poisons[0]))

/* The poison's bytes in one of its two forms; *len set; NULL: no form. */
static const char *
form(const struct poison *p, int escaped, size_t *len)
{
	if (escaped) {
		*len = p->esc != NULL ? strlen(p->esc) : 0;
		return p->esc;
	}
	*len = p->raw != NULL ? strlen(p->raw) : 1;
	return p->raw != NULL ? p->raw : "";
}

/*
 * A payload: head, then n bytes of the poison, then tail, with "$N" in
 * either replaced by the case number.  Returns its length.
 */
static size_t
build(char *buf, size_t size, const char *head, const char *poison, size_t n,
    const char *tail, int num)
{
	size_t len = 0;
	const char *parts[2] = {head, tail};

	for (int i = 0; i < 2; i++) {
		for (const char *s = parts[i]; *s != '\0'; s++) {
			if (s[0] == '$' && s[1] == 'N') {
				len += (size_t)snprintf(buf + len, size - len,
				    "%d", num);
				s++;
			} else
				buf[len++] = *s;
			if (len + 16 >= size)
				fail_msg("payload too long");
		}
		if (i == 0) {
			/* The poison, NUL bytes included. */
			memcpy(buf + len, poison, n);
			len += n;
		}
	}
	buf[len] = '\0';
	return len;
}

/* Validity, judged here on its own ------------------------------------ */

/*
 * Is s[0..n) a valid topic level by mosquitto's rules (UTF-8, no control
 * characters, no non-characters), without '/', '+', '#', 1-128 bytes?
 * Written from the rules, not shared with mqlockd, so that it can judge.
 */
static int
level_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;

	if (n < 1 || n > 128)
		return 0;
	while (i < n) {
		unsigned long cp;
		size_t k;

		if (s[i] < 0x80) {
			cp = s[i];
			k = 1;
		} else if ((s[i] & 0xe0) == 0xc0) {
			cp = s[i] & 0x1f;
			k = 2;
		} else if ((s[i] & 0xf0) == 0xe0) {
			cp = s[i] & 0x0f;
			k = 3;
		} else if ((s[i] & 0xf8) == 0xf0) {
			cp = s[i] & 0x07;
			k = 4;
		} else
			return 0;
		if (i + k > n)
			return 0;
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
		    (k == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		if (cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f) ||
		    (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe ||
		    cp == '/' || cp == '+' || cp == '#')
			return 0;
		i += k;
	}
	return 1;
}

static void
need_level(const char *what, const unsigned char *s, int n)
{
	char hex[3 * 140] = "";

	if (s == NULL || level_ok(s, (size_t)n))
		return;
	for (int i = 0; i < n && i < 130; i++)
		snprintf(hex + 3 * i, sizeof(hex) - 3 * (size_t)i, "%02x ",
		    s[i]);
	fail_msg("the journal holds a %s that is not a valid topic level: %s",
	    what, hex);
}

/*
 * Every client id and lock id in mqlockd's journal (clients, lock holders,
 * queues) is a valid topic level.  Returns the number of rows checked.
 * mqlockd holds its journal exclusively: stop it first.
 */
static int
journal_clean(struct h_world *w)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = 0, rc;

	rc = sqlite3_open_v2(h_path(w, "mqlock.db"), &db, SQLITE_OPEN_READONLY,
	    NULL);
	if (rc != SQLITE_OK)
		fail_msg("open the journal: %s", sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 5000);
	if (sqlite3_prepare_v2(db, "SELECT id FROM clients", -1, &st, NULL) !=
	    SQLITE_OK)
		fail_msg("journal: %s", sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		need_level("client id", sqlite3_column_text(st, 0),
		    sqlite3_column_bytes(st, 0));
		n++;
	}
	if (rc != SQLITE_DONE)
		fail_msg("journal: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "SELECT id, holder, queue FROM locks", -1,
		&st, NULL) != SQLITE_OK)
		fail_msg("journal: %s", sqlite3_errmsg(db));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *q = (const char *)sqlite3_column_text(st, 2);
		cJSON *qj = q != NULL ? cJSON_Parse(q) : NULL, *e;

		need_level("lock id", sqlite3_column_text(st, 0),
		    sqlite3_column_bytes(st, 0));
		need_level("holder", sqlite3_column_text(st, 1),
		    sqlite3_column_bytes(st, 1));
		cJSON_ArrayForEach(e, qj)
		{
			cJSON *c = cJSON_GetArrayItem(e, 0);

			if (cJSON_IsString(c))
				need_level("waiter",
				    (const unsigned char *)c->valuestring,
				    (int)strlen(c->valuestring));
		}
		cJSON_Delete(qj);
		n++;
	}
	if (rc != SQLITE_DONE)
		fail_msg("journal: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* The service, after one poison request --------------------------------- */

struct run {
	struct h_world *w;
	struct h_client *ctl;
	struct h_client *poisoner; /* sends what the broker lets through */
	int statuses;              /* status messages ctl had at the start */
	int probes;
	int cases;
};

/*
 * The service still answers and mqlockd is still connected after `what`:
 * a fresh acquire by a new client is answered, and no status message came
 * since the start (an offline status, or an online one of a new epoch
 * after a reconnect).
 */
static void
still_serving(struct run *r, const char *what)
{
	char client[64], reply[96];
	long long end = tutil_mono_ms() + H_WAIT_MS;

	snprintf(client, sizeof(client), "probe-%d", ++r->probes);
	snprintf(reply, sizeof(reply), "%s", h_reply_for(client));
	h_request(r->ctl, client, "acquire", client, h_session(), NULL, "p");
	while (h_count(r->ctl, reply) == 0) {
		if (tutil_mono_ms() >= end)
			fail_msg("no answer to a fresh acquire within %d ms "
				 "after %s",
			    H_WAIT_MS, what);
		tutil_nap_ms(2);
	}
	h_expect(r->ctl, reply, 0, "result", "granted");
	if (h_count(r->ctl, STATUS) != r->statuses)
		fail_msg("mqlockd published a status after %s: %s", what,
		    h_last(r->ctl, STATUS)->payload);
	r->cases++;
}

/* A one-shot sender the broker may throw off ---------------------------- */

struct shot {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done; /* 1 success, -1 failure or lost */
	int reason;
};

static void
shot_end(struct shot *s, int done, int reason)
{
	pthread_mutex_lock(&s->mu);
	if (s->done == 0) {
		s->done = done;
		s->reason = reason;
	}
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void
shot_ok(void *ctx, MQTTAsync_successData5 *d)
{
	shot_end(ctx, 1, d != NULL ? (int)d->reasonCode : 0);
}

static void
shot_failed(void *ctx, MQTTAsync_failureData5 *d)
{
	shot_end(ctx, -1, d != NULL ? (int)d->reasonCode : -1);
}

static void
shot_lost(void *ctx, char *cause)
{
	(void)cause;
	shot_end(ctx, -1, -1);
}

/* Waits for s, kicking Paho's receive thread through ctl meanwhile. */
static int
shot_wait(struct shot *s, struct h_client *ctl)
{
	long long end = tutil_mono_ms() + H_WAIT_MS;
	int done;

	for (;;) {
		pthread_mutex_lock(&s->mu);
		done = s->done;
		s->done = 0;
		pthread_mutex_unlock(&s->mu);
		if (done != 0 || tutil_mono_ms() >= end)
			return done;
		h_pub(ctl, "h/kick", "k");
		tutil_nap_ms(10);
	}
}

/*
 * shoot(r, id, topic, payload, len, resp): a new connection with client id
 * id publishes payload on topic with Response Topic resp (NULL: none) and
 * ends.  The broker may refuse the connection or throw it off for what it
 * sends; that is the broker's business.  Returns 1 when the publish was
 * acknowledged, 0 otherwise.
 */
static int
shoot(struct run *r, const char *id, const char *topic, const char *payload,
    size_t len, const char *resp)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;
	MQTTProperty p;
	struct shot s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0,
	    0};
	MQTTAsync c;
	int acked = 0;

	co.MQTTVersion = MQTTVERSION_5;
	if (MQTTAsync_createWithOptions(&c, h_uri(r->w), id,
		MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) != MQTTASYNC_SUCCESS)
		return 0; /* Paho itself refuses the id */
	MQTTAsync_setCallbacks(c, &s, shot_lost, NULL, NULL);
	cn.cleanstart = 1;
	cn.keepAliveInterval = 30;
	cn.connectTimeout = 10;
	cn.onSuccess5 = shot_ok;
	cn.onFailure5 = shot_failed;
	cn.context = &s;
	if (MQTTAsync_connect(c, &cn) != MQTTASYNC_SUCCESS ||
	    shot_wait(&s, r->ctl) != 1)
		goto out;
	if (resp != NULL) {
		p.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
		p.value.data.data = (char *)(uintptr_t)resp;
		p.value.data.len = (int)strlen(resp);
		MQTTProperties_add(&m.properties, &p);
	}
	m.payload = (void *)(uintptr_t)payload;
	m.payloadlen = (int)len;
	m.qos = 1;
	ro.onSuccess5 = shot_ok;
	ro.onFailure5 = shot_failed;
	ro.context = &s;
	if (MQTTAsync_sendMessage(c, topic, &m, &ro) == MQTTASYNC_SUCCESS)
		acked = shot_wait(&s, r->ctl) == 1 && s.reason < 0x80;
	MQTTProperties_free(&m.properties);
	if (MQTTAsync_isConnected(c)) {
		d.timeout = 1000;
		MQTTAsync_disconnect(c, &d);
	}
out:
	/* Late callbacks still point at s: wait until Paho is done. */
	MQTTAsync_destroy(&c);
	return acked;
}

/* The cases -------------------------------------------------------------- */

/* What a request with a poisoned part looks like. */
struct shape {
	const char *name;
	const char *head; /* before the poison */
	const char *tail; /* after it */
};

/* The poison in the payload's client id ($N: the case number). */
static const struct shape client_shapes[] = {
    {"valid acquire", "{\"op\":\"acquire\",\"client\":\"pz",
	"-$N\",\"session\":\"0123456789abcdef\",\"user\":\"P\"}"},
    {"valid release", "{\"op\":\"release\",\"client\":\"pz",
	"-$N\",\"session\":\"0123456789abcdef\"}"},
    {"valid query", "{\"op\":\"query\",\"client\":\"pz", "-$N\"}"},
    {"unknown op", "{\"op\":\"nope\",\"client\":\"pz",
	"-$N\",\"session\":\"0123456789abcdef\"}"},
    {"short session", "{\"op\":\"acquire\",\"client\":\"pz",
	"-$N\",\"session\":\"x\"}"},
    {"no session", "{\"client\":\"pz", "-$N\",\"op\":\"acquire\"}"},
    {"mistyped field", "{\"op\":\"acquire\",\"client\":\"pz",
	"-$N\",\"session\":\"0123456789abcdef\",\"wait\":\"no\"}"},
    {"truncated", "{\"op\":\"acquire\",\"client\":\"pz", "-$N\",\"sess"},
    {"client only", "{\"client\":\"", "\"}"},
};

/* The poison in the user name of an otherwise valid acquire. */
static const struct shape user_shape = {"user name",
    "{\"op\":\"acquire\",\"client\":\"pu-$N\",\"session\":"
    "\"0123456789abcdef\",\"user\":\"a",
    "b\"}"};

/* The poison in an admin command's lock id. */
static const struct shape admin_shapes[] = {
    {"break", "{\"op\":\"break\",\"lock\":\"pl", "-$N\"}"},
    {"purge", "{\"op\":\"purge\",\"lock\":\"pl", "-$N\"}"},
};

/* A request from the poisoner, with the poison in it. */
static void
send_case(struct run *r, const char *topic, const struct shape *sh,
    const struct poison *p, int escaped)
{
	char buf[1024], what[160];
	size_t n, len;
	const char *bytes = form(p, escaped, &n);

	if (bytes == NULL)
		return;
	len = build(buf, sizeof(buf), sh->head, bytes, n, sh->tail, r->cases);
	snprintf(what, sizeof(what), "%s %s (%s) on %s", p->name,
	    escaped ? "escaped" : "raw", sh->name, topic);
	h_publish(r->poisoner, topic, buf, len, 0, NULL);
	still_serving(r, what);
}

/*
 * Every character class, raw and escaped, in client ids, user names and
 * admin lock ids, in valid and malformed requests, on unbound and bound
 * topics; and in MQTT 5 response topics and the bound topic's own level,
 * as far as the broker lets them through.  After each: still serving.
 */
static void
test_no_single_request_stops_the_service(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct run r = {w, h_ctl(w), NULL, 0, 0, 0};
	char buf[1024], topic[512], resp[512], id[160];
	long long epoch = h_coord_epoch(w);
	size_t i, k, n, len;
	int esc, acked = 0, shots = 0;

	r.poisoner = h_client_new(w, "poisoner");
	r.statuses = h_count(r.ctl, STATUS);
	for (i = 0; i < NPOISONS; i++) {
		const struct poison *p = &poisons[i];

		for (esc = 0; esc <= 1; esc++) {
			for (k = 0; k <
			     sizeof(client_shapes) / sizeof(client_shapes[0]);
			     k++) {
				send_case(&r, H_PREFIX "/pz-lock/request",
				    &client_shapes[k], p, esc);
				/* Bound: the topic's client is valid. */
				send_case(&r,
				    H_PREFIX "/pz-lock/request/poisoner",
				    &client_shapes[k], p, esc);
			}
			send_case(&r, H_PREFIX "/pu-lock/request", &user_shape,
			    p, esc);
			send_case(&r, H_PREFIX "/pu-lock/request/poisoner",
			    &user_shape, p, esc);
			for (k = 0; k < 2; k++) {
				send_case(&r, H_PREFIX "/_admin/command",
				    &admin_shapes[k], p, esc);
				send_case(&r,
				    H_PREFIX "/_admin/command/poisoner",
				    &admin_shapes[k], p, esc);
			}
		}
		/*
		 * Response topics (raw: an MQTT property is no JSON), in the
		 * requester's space and after it; the bound topic's own
		 * level, with a client id the broker may accept.
		 */
		for (k = 0; k < 3; k++) {
			const char *b = form(p, 0, &n);

			snprintf(id, sizeof(id), "rt-%d", r.cases);
			len = build(resp, sizeof(resp),
			    k == 0       ? "replies/rt-$N/"
				: k == 1 ? "replies/rt-$N"
					 : "replies/",
			    b, n, "", r.cases);
			(void)len;
			len = build(buf, sizeof(buf),
			    "{\"op\":\"acquire\",\"client\":\"rt-$N\","
			    "\"session\":\"0123456789abcdef\"",
			    "", 0, "}", r.cases);
			acked += shoot(&r, id, H_PREFIX "/rt-lock/request", buf,
			    len, resp);
			shots++;
			still_serving(&r,
			    h_fmt("%s in a response topic", p->name));
		}
		{
			const char *b = form(p, 0, &n);

			len =
			    build(id, sizeof(id), "pc-$N-", b, n, "", r.cases);
			snprintf(topic, sizeof(topic), "%s/pc-lock/request/%s",
			    H_PREFIX, id);
			len = build(buf, sizeof(buf),
			    "{\"op\":\"acquire\",\"client\":\"pc-$N-", b, n,
			    "\",\"session\":\"0123456789abcdef\"}", r.cases);
			acked += shoot(&r, id, topic, buf, len, NULL);
			shots++;
			still_serving(&r,
			    h_fmt("%s in a bound topic's client", p->name));
		}
	}
	print_message("%d poison requests, each followed by an answered "
		      "acquire; the broker let %d of %d one-shot publishes "
		      "through\n",
	    r.cases, acked, shots);
	assert_int_equal(h_coord_epoch(w), epoch);
	h_expect_none(r.ctl, STATUS, 0, H_ANY);
	/*
	 * What was accepted is still held: the journal, read once mqlockd
	 * stopped, holds every probe and no poisoned id.
	 */
	h_coord_stop(w, SIGTERM);
	n = (size_t)journal_clean(w);
	print_message("the journal holds %zu rows, every id valid\n", n);
	assert_true(n >= (size_t)r.probes);
	h_coord_start(w);
	r.statuses = h_count(r.ctl, STATUS);
	still_serving(&r, "a restart");
	h_pass(w);
}

/* The client ids an older version could have journaled. */
#define BAD_ID_1     \
	"jx\xc2\x85" \
	"1" /* U+0085 */
#define BAD_ID_3         \
	"jx\xef\xbf\xbf" \
	"3" /* U+FFFF */
#define BAD_LOCK_5   \
	"jr\xc2\x9f" \
	"5" /* U+009F */

static void
sql(sqlite3 *db, const char *stmt, const char *a, const char *b)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db, stmt, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE)
		fail_msg("%s: %s", stmt, sqlite3_errmsg(db));
	if (sqlite3_changes(db) < 1)
		fail_msg("%s (%s, %s) changed nothing", stmt, a, b);
	sqlite3_finalize(st);
}

/* ctl's request as client, with a reply; returns the reply. */
static struct h_msg *
ask(struct h_client *ctl, const char *lock, const char *op, const char *client,
    const char *session, const char *result)
{
	char c[64];

	snprintf(c, sizeof(c), "%s", client);
	h_request(ctl, lock, op, c, session, NULL, "j");
	return h_expect(ctl, h_reply_for(c), H_WAIT_MS, "result", result);
}

/*
 * A journal that holds client and lock ids that are not valid topic levels
 * (written by an older version, or by hand) loads with them dropped, each
 * with a log line: locks only they held are free, queues lose them, and
 * mqlockd stays online through the roll call's end, when it would have
 * told them they lost their locks, and serves.
 */
static void
test_journal_with_bad_ids_loads(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *s1 = h_session(), *s2 = h_session(), *s3 = h_session();
	sqlite3 *db = NULL;
	long long epoch;

	ask(ctl, "jr-1", "acquire", "jv-1", s1, "granted");
	ask(ctl, "jr-2", "acquire", "jv-2", s2, "granted");
	ask(ctl, "jr-5", "acquire", "jv-2", s2, "granted");
	ask(ctl, "jr-2", "acquire", "jv-1", s1, "queued");
	ask(ctl, "jr-3", "acquire", "jv-3", s3, "granted");
	h_coord_stop(w, SIGTERM);

	if (sqlite3_open(h_path(w, "mqlock.db"), &db) != SQLITE_OK)
		fail_msg("open the journal: %s", sqlite3_errmsg(db));
	sql(db, "UPDATE clients SET id = ?1 WHERE id = ?2", BAD_ID_1, "jv-1");
	sql(db, "UPDATE locks SET holder = ?1 WHERE holder = ?2", BAD_ID_1,
	    "jv-1");
	sql(db, "UPDATE locks SET queue = replace(queue, ?2, ?1)",
	    "\"" BAD_ID_1 "\"", "\"jv-1\"");
	sql(db, "UPDATE clients SET id = ?1 WHERE id = ?2", BAD_ID_3, "jv-3");
	sql(db, "UPDATE locks SET holder = ?1 WHERE holder = ?2", BAD_ID_3,
	    "jv-3");
	sql(db, "UPDATE locks SET id = ?1 WHERE id = ?2", BAD_LOCK_5, "jr-5");
	sqlite3_close(db);

	h_coord_start(w);
	epoch = h_coord_epoch(w);
	assert_true(
	    tutil_file_contains(h_path(w, "mqlockd.log"), "dropping client"));
	assert_true(
	    tutil_file_contains(h_path(w, "mqlockd.log"), "dropping lock"));
	/* jv-2 answers the roll call of the restart and keeps jr-2. */
	ask(ctl, "jr-2", "acquire", "jv-2", s2, "granted");
	/* The roll call ends: still online, in the same epoch. */
	h_expect_none(ctl, STATUS, ROLL_WINDOW_MS + H_QUIET_MS, H_ANY);
	assert_int_equal(h_coord_epoch(w), epoch);
	/* Locks only they held are free; the queue lost its bad waiter. */
	ask(ctl, "jr-1", "acquire", "jn-1", h_session(), "granted");
	ask(ctl, "jr-3", "acquire", "jn-3", h_session(), "granted");
	ask(ctl, "jr-5", "acquire", "jn-5", h_session(), "granted");
	ask(ctl, "jr-2", "acquire", "jn-2", h_session(), "queued");
	h_state(ctl, h_owner("jr-2"), H_WAIT_MS, "owner.client", "jv-2",
	    "waiting", "#1", "queue.0.client", "jn-2");
	h_expect_none(ctl, STATUS, 0, H_ANY);
	h_coord_stop(w, SIGTERM);
	journal_clean(w);
	h_pass(w);
}

/* An online status of an epoch above *arg. */
static int
online_above(const struct h_msg *m, void *arg)
{
	const long long *e = arg;
	cJSON *st = h_get(m, "state"), *ep = h_get(m, "epoch");

	return cJSON_IsString(st) && strcmp(st->valuestring, "online") == 0 &&
	    cJSON_IsNumber(ep) && (long long)ep->valuedouble > *e;
}

/*
 * The broker throws mqlockd off when another connection takes its client
 * id: mqlockd notices, reconnects within its backoff (taking its id back),
 * begins a new epoch and serves; a holder that answers the roll call keeps
 * its lock and token.
 */
static void
test_kicked_coordinator_comes_back(void **state)
{
	static const struct h_login anonymous;
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w), *intruder;
	long long epoch = h_coord_epoch(w), t0, token;
	const char *s1 = h_session();
	struct h_msg *m;

	token = h_int(ask(ctl, "kc-lock", "acquire", "kc-1", s1, "granted"),
	    "token");
	t0 = tutil_mono_ms();
	if (h_client_try(w, "mqlockd", &anonymous, &intruder) != 0)
		fail_msg("the intruder could not connect");
	m = h_state_fn(ctl, STATUS, BACKOFF_MAX_MS + H_WAIT_MS, online_above,
	    &epoch, "an online status of a new epoch");
	print_message("mqlockd online again after %lld ms, epoch %lld -> "
		      "%lld\n",
	    tutil_mono_ms() - t0, epoch, h_int(m, "epoch"));
	m = ask(ctl, "kc-lock", "acquire", "kc-1", s1, "granted");
	assert_int_equal(h_int(m, "token"), token);
	ask(ctl, "kc-fresh", "acquire", "kc-2", h_session(), "granted");
	h_pass(w);
}

/*
 * With --offline-exit 2, mqlockd whose broker is gone for good exits with
 * a non-zero status within 2 s plus its backoff, so that a supervisor
 * restarts it; not sooner than 2 s.
 */
static void
test_offline_exit(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct h_client *ctl = h_ctl(w);
	char *argv[96], wrap[1024], db[4096];
	struct h_proc *coord;
	long long t0, ms;
	long broker;
	int n, status;

	snprintf(db, sizeof(db), "%s/mqlock.db", h_dir(w));
	n = h_coord_argv(argv, wrap, sizeof(wrap), h_uri(w), db);
	argv[n++] = (char *)"--prefix";
	argv[n++] = (char *)H_PREFIX;
	argv[n++] = (char *)"--offline-exit";
	argv[n++] = (char *)"2";
	argv[n] = NULL;
	coord = h_spawn(w, argv, "mqlockd.log");
	h_expect(ctl, STATUS, 2 * H_WAIT_MS, "state", "online");
	if ((broker = tutil_find_pid(h_path(w, "mosquitto.conf"))) < 0)
		fail_msg("the broker's pid was not found");
	t0 = tutil_mono_ms();
	if (kill((pid_t)broker, SIGKILL) != 0)
		fail_msg("kill the broker: %s", strerror(errno));
	status = h_proc_wait(coord,
	    OFFLINE_EXIT_S * 1000 + BACKOFF_MAX_MS + H_WAIT_MS);
	ms = tutil_mono_ms() - t0;
	print_message("mqlockd exited with status %d, %lld ms after the "
		      "broker died\n",
	    status, ms);
	assert_int_not_equal(status, 0);
	assert_true(ms >= OFFLINE_EXIT_S * 1000 - 100);
	assert_true(ms <= OFFLINE_EXIT_S * 1000 + BACKOFF_MAX_MS + 1000);
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_no_single_request_stops_the_service,
		h_teardown),
	    cmocka_unit_test_teardown(test_journal_with_bad_ids_loads,
		h_teardown),
	    cmocka_unit_test_teardown(test_kicked_coordinator_comes_back,
		h_teardown),
	    cmocka_unit_test_teardown(test_offline_exit, h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
