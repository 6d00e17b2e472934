/*
 * test_it_faults.c: storage faults, coordinator restarts and broker
 * restarts (issue 3; topics.md "Coordinator status", "Epochs and the roll
 * call", "After an outage", "Guarantees").
 *
 * Besides the harness, this file has two helpers of its own:
 *
 * - a recorder: one more MQTT 5 connection that reconnects by itself and
 *   keeps every message it receives, in arrival order, across topics, so
 *   that a test can ask "what was announced before this point";
 * - a broker of its own (pbroker_*), with or without persistence, which a
 *   test can stop with SIGTERM or SIGKILL and start again on the same port.
 *   The world's broker cannot be restarted, so the broker tests run
 *   mqlockd, the recorder and the mqlock command against this one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <MQTTAsync.h>

#include "harness.h"
#include "tutil.h"

#define STATUS H_PREFIX "/_coordinator/status"
/* mosquitto_sub refuses a keepalive below 5 s; this one never expires. */
#define SLOW_KEEPALIVE 60
/* The file-size limit mqlockd's journal runs into in the write test. */
#define FSIZE_LIMIT (1024 * 1024)

/* Recorder -------------------------------------------------------------- */

struct rec {
	MQTTAsync mq;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct h_msg **v;
	size_t n, cap;
	int subscribed; /* SUBACKs received, one per (re)connect */
	char filter[256];
	struct rec *next;
};

/* Every recorder of the running test, freed by f_teardown(). */
static struct rec *recs;
/* The file-size limit to restore, when a test lowered it. */
static struct rlimit saved_fsize;
static int fsize_lowered;

/* Sleeps until the wall clock has passed ms (protocol ms). */
static void
sleep_until_wall(long long ms)
{
	long long now;

	while ((now = h_now_ms()) <= ms)
		tutil_nap_ms(ms - now + 1);
}

static int
rec_on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct rec *r = ctx;
	struct h_msg *msg = calloc(1, sizeof(*msg));
	size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);

	if (msg != NULL) {
		msg->topic = malloc(tl + 1);
		msg->payload = malloc((size_t)m->payloadlen + 1);
		if (msg->topic != NULL && msg->payload != NULL) {
			memcpy(msg->topic, topic, tl);
			msg->topic[tl] = '\0';
			if (m->payloadlen > 0)
				memcpy(msg->payload, m->payload,
				    (size_t)m->payloadlen);
			msg->payload[m->payloadlen] = '\0';
			msg->len = m->payloadlen;
			msg->retained = m->retained;
			msg->at_ms = h_now_ms();
			msg->json = cJSON_ParseWithLength(msg->payload,
			    (size_t)msg->len);
		}
		pthread_mutex_lock(&r->mu);
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 1024;
			struct h_msg **v = realloc(r->v, cap * sizeof(*v));

			if (v != NULL) {
				r->v = v;
				r->cap = cap;
			}
		}
		if (r->n < r->cap && msg->topic != NULL && msg->payload != NULL)
			r->v[r->n++] = msg;
		else
			msg = NULL; /* lost to memory; the checks will say */
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void
rec_on_subscribed(void *ctx, MQTTAsync_successData5 *d)
{
	struct rec *r = ctx;

	(void)d;
	pthread_mutex_lock(&r->mu);
	r->subscribed++;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Runs after the first connect and after every automatic reconnect. */
static void
rec_on_connected(void *ctx, char *cause)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	struct rec *r = ctx;

	(void)cause;
	ro.onSuccess5 = rec_on_subscribed;
	ro.context = r;
	(void)MQTTAsync_subscribe(r->mq, r->filter, 1, &ro);
}

static void
rec_on_lost(void *ctx, char *cause)
{
	(void)ctx;
	(void)cause;
}

/*
 * rec_new(w, uri, id, filter): a recorder on the broker at uri,
 * subscribed to filter; returns once the first SUBACK is in.  The world's
 * ctl is kicked meanwhile, so that Paho's shared receive thread notices
 * the new socket without waiting out its poll.
 */
static struct rec *
rec_new(struct h_world *w, const char *uri, const char *id, const char *filter)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer5;
	pthread_condattr_t ca;
	struct rec *r = calloc(1, sizeof(*r));
	struct timespec ts;
	long long end;
	int rc;

	assert_non_null(r);
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(r->filter, sizeof(r->filter), "%s", filter);
	r->next = recs;
	recs = r;

	co.MQTTVersion = MQTTVERSION_5;
	co.maxBufferedMessages = 100000;
	rc = MQTTAsync_createWithOptions(&r->mq, uri, id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	assert_int_equal(rc, MQTTASYNC_SUCCESS);
	rc =
	    MQTTAsync_setCallbacks(r->mq, r, rec_on_lost, rec_on_message, NULL);
	assert_int_equal(rc, MQTTASYNC_SUCCESS);
	rc = MQTTAsync_setConnected(r->mq, r, rec_on_connected);
	assert_int_equal(rc, MQTTASYNC_SUCCESS);
	cn.keepAliveInterval = 30;
	cn.cleanstart = 1;
	cn.connectTimeout = 5;
	cn.automaticReconnect = 1;
	cn.minRetryInterval = 1;
	cn.maxRetryInterval = 1;
	cn.maxInflight = 50; /* below the broker's receive maximum */
	rc = MQTTAsync_connect(r->mq, &cn);
	assert_int_equal(rc, MQTTASYNC_SUCCESS);

	end = tutil_mono_ms() + H_WAIT_MS;
	pthread_mutex_lock(&r->mu);
	while (r->subscribed == 0 && tutil_mono_ms() < end) {
		pthread_mutex_unlock(&r->mu);
		h_pub(h_ctl(w), "h/kick", "k");
		pthread_mutex_lock(&r->mu);
		ts.tv_sec = 0;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	rc = r->subscribed;
	pthread_mutex_unlock(&r->mu);
	if (rc == 0)
		fail_msg("recorder %s: not subscribed to %s on %s within %d ms",
		    id, filter, uri, H_WAIT_MS);
	return r;
}

static void
rec_free(struct rec *r)
{
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;

	d.timeout = 500;
	if (MQTTAsync_isConnected(r->mq))
		MQTTAsync_disconnect(r->mq, &d);
	MQTTAsync_destroy(&r->mq);
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i]->topic);
		free(r->v[i]->payload);
		cJSON_Delete(r->v[i]->json);
		free(r->v[i]);
	}
	free(r->v);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* Queues a QoS 1 publish on the recorder's connection; does not wait. */
static void
rec_send(struct rec *r, const char *topic, const char *text)
{
	MQTTAsync_message m = MQTTAsync_message_initializer;

	m.payload = (void *)(uintptr_t)text;
	m.payloadlen = (int)strlen(text);
	m.qos = 1;
	assert_int_equal(MQTTAsync_sendMessage(r->mq, topic, &m, NULL),
	    MQTTASYNC_SUCCESS);
}

/* Waits until the recorder has subscribed count times (reconnects + 1). */
static void
rec_wait_subscribed(struct rec *r, int count, int ms)
{
	long long end = tutil_mono_ms() + ms;
	struct timespec ts;
	int have;

	pthread_mutex_lock(&r->mu);
	while (r->subscribed < count && tutil_mono_ms() < end) {
		long long e = tutil_mono_ms() + 50;

		ts.tv_sec = (time_t)(e / 1000);
		ts.tv_nsec = (long)(e % 1000) * 1000000L;
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	have = r->subscribed;
	pthread_mutex_unlock(&r->mu);
	if (have < count)
		fail_msg("recorder: %d subscriptions, not %d, within %d ms",
		    have, count, ms);
}

static size_t
rec_count(struct rec *r)
{
	size_t n;

	pthread_mutex_lock(&r->mu);
	n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* The i-th message; stays valid until the recorder is freed. */
static struct h_msg *
rec_at(struct rec *r, size_t i)
{
	struct h_msg *m;

	pthread_mutex_lock(&r->mu);
	m = i < r->n ? r->v[i] : NULL;
	pthread_mutex_unlock(&r->mu);
	return m;
}

/* Waits up to ms until more than n messages are in; returns the count. */
static size_t
rec_wait_more(struct rec *r, size_t n, int ms)
{
	long long end = tutil_mono_ms() + ms;
	struct timespec ts;
	size_t have;

	pthread_mutex_lock(&r->mu);
	while (r->n <= n && tutil_mono_ms() < end) {
		long long e = tutil_mono_ms() + 50;

		ts.tv_sec = (time_t)(e / 1000);
		ts.tv_nsec = (long)(e % 1000) * 1000000L;
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	have = r->n;
	pthread_mutex_unlock(&r->mu);
	return have;
}

/* Is there no message on topic at or after from? */
static int
rec_find_none(struct rec *r, size_t from, const char *topic)
{
	for (size_t i = from, n = rec_count(r); i < n; i++)
		if (strcmp(rec_at(r, i)->topic, topic) == 0)
			return 0;
	return 1;
}

/* Prints what the recorder holds from index from on (the end only). */
static void
rec_dump(struct rec *r, size_t from)
{
	size_t n = rec_count(r), i = n > from + 200 ? n - 200 : from;

	fprintf(stderr, "---- recorder: messages %zu..%zu ----\n", i, n);
	for (; i < n; i++) {
		struct h_msg *m = rec_at(r, i);

		fprintf(stderr, "  %zu %lld %s%s %.*s\n", i, m->at_ms,
		    m->retained ? "(retained) " : "", m->topic,
		    m->len > 400 ? 400 : m->len, m->payload);
	}
}

/*
 * rec_expect(r, from, ms, topic, key, value, ...): the index of the first
 * message at or after from on topic matching every pair (as in
 * h_expect()), waiting up to ms; fails the test, showing what arrived,
 * when none came.
 */
#define rec_expect(r, from, ms, ...) \
	rec_expect_(__LINE__, r, from, ms, __VA_ARGS__, (const char *)NULL)

static size_t
rec_expect_(int line, struct rec *r, size_t from, int ms, const char *topic,
    ...)
{
	long long end = tutil_mono_ms() + ms;
	size_t i = from, n = rec_count(r);
	va_list ap;

	for (;;) {
		for (; i < n; i++) {
			int ok;

			va_start(ap, topic);
			ok = h_vmatches(rec_at(r, i), topic, ap);
			va_end(ap);
			if (ok)
				return i;
		}
		if (tutil_mono_ms() >= end)
			break;
		n = rec_wait_more(r, n, (int)(end - tutil_mono_ms()));
	}
	rec_dump(r, from);
	fail_msg("line %d: no message on %s as expected within %d ms (from "
		 "index %zu)",
	    line, topic, ms, from);
	return 0;
}

/* Processes and files --------------------------------------------------- */

/* Waits up to ms for needle to appear in the file at path. */
static void
wait_file_has(const char *path, const char *needle, int ms)
{
	long long end = tutil_mono_ms() + ms;

	while (!tutil_file_contains(path, needle)) {
		if (tutil_mono_ms() >= end)
			fail_msg("%s: no \"%s\" within %d ms", path, needle,
			    ms);
		tutil_nap_ms(20);
	}
}

static void
write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
random_bytes(unsigned char *buf, size_t n)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	assert_true(fd >= 0);
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);

		assert_true(r > 0);
		got += (size_t)r;
	}
	close(fd);
}

/*
 * coord_spawn(w, uri, db, extra, out): mqlockd on uri with journal db,
 * the test prefix, debug logging and extra flags (space separated, may
 * be NULL), its output appended to out in the world's directory.
 */
static struct h_proc *
coord_spawn(struct h_world *w, const char *uri, const char *db,
    const char *extra, const char *out)
{
	static char flags[512];
	char *argv[40];
	int n = 0;

	argv[n++] = (char *)MQLOCKD_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = (char *)(uintptr_t)uri;
	argv[n++] = (char *)"--db";
	argv[n++] = (char *)(uintptr_t)db;
	argv[n++] = (char *)"--prefix";
	argv[n++] = (char *)H_PREFIX;
	argv[n++] = (char *)"--log-level";
	argv[n++] = (char *)"debug";
	snprintf(flags, sizeof(flags), "%s", extra != NULL ? extra : "");
	n = h_words(flags, argv, n, 38);
	argv[n] = NULL;
	return h_spawn(w, argv, out);
}

/*
 * cli_start(w, uri, id, lock, wait, keepalive): `mqlock acquire` as
 * client id with a COMMAND that writes $MQLOCK_TOKEN to <dir>/<id>.tok
 * once it runs, and runs until <dir>/<id>.stop exists.  COMMAND runs in a
 * process group of its own, out of the harness's reach: it also ends once
 * its mqlock is gone.
 */
static struct h_proc *
cli_start(struct h_world *w, const char *uri, const char *id, const char *lock,
    const char *wait, int keepalive)
{
	static const char script[] =
	    "echo \"$MQLOCK_TOKEN\" > \"$0.tmp\" && mv \"$0.tmp\" \"$0.tok\"; "
	    "while [ ! -e \"$0.stop\" ] && kill -0 $PPID 2>/dev/null; do "
	    "sleep 0.05; done";
	char base[1024], ka[16], idbuf[128], lockbuf[256], waitbuf[32];
	char *argv[24];
	int n = 0;

	snprintf(base, sizeof(base), "%s/%s", h_dir(w), id);
	snprintf(ka, sizeof(ka), "%d", keepalive);
	snprintf(idbuf, sizeof(idbuf), "%s", id);
	snprintf(lockbuf, sizeof(lockbuf), "%s", lock);
	snprintf(waitbuf, sizeof(waitbuf), "%s", wait != NULL ? wait : "600");
	argv[n++] = (char *)MQLOCK_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = (char *)(uintptr_t)uri;
	argv[n++] = (char *)"--prefix";
	argv[n++] = (char *)H_PREFIX;
	argv[n++] = (char *)"--keepalive";
	argv[n++] = ka;
	argv[n++] = (char *)"--client-id";
	argv[n++] = idbuf;
	argv[n++] = (char *)"acquire";
	argv[n++] = lockbuf;
	argv[n++] = (char *)"--wait";
	argv[n++] = waitbuf;
	argv[n++] = (char *)"--user";
	argv[n++] = idbuf;
	argv[n++] = (char *)"--";
	argv[n++] = (char *)"/bin/sh";
	argv[n++] = (char *)"-c";
	argv[n++] = (char *)(uintptr_t)script;
	argv[n++] = base;
	argv[n] = NULL;
	return h_spawn(w, argv, h_fmt("cli-%s.out", id));
}

/* Waits for the COMMAND of cli_start(id) to run; returns its token. */
static long long
cli_token(struct h_world *w, const char *id, int ms)
{
	const char *path = h_path(w, h_fmt("%s.tok", id));
	char *s;
	long long t;

	h_wait_file(path, ms);
	s = tutil_slurp(path, NULL);
	assert_non_null(s);
	t = strtoll(s, NULL, 10);
	free(s);
	assert_true(t > 0);
	return t;
}

/* Lets the COMMAND of cli_start(id) end. */
static void
cli_stop(struct h_world *w, const char *id)
{
	write_bytes(h_path(w, h_fmt("%s.stop", id)), "", 0);
}

/* A broker of the test's own ---------------------------------------------- */

struct pbroker {
	int port;
	int persist;
	char uri[64];
	char conf[1024];
	struct h_proc *p;
	int starts;
	const char *acl;   /* acl_file contents, NULL: none */
	const char *extra; /* more config lines, NULL: none */
};

/*
 * pbroker_start(w, b): start (or start again, on the same port and with
 * the same persistence file) the broker b; returns once it accepts.  On
 * the first start b->persist says whether it keeps state across restarts.
 * Its log goes to pbroker.out in the world's directory.
 */
static void
pbroker_start(struct h_world *w, struct pbroker *b)
{
	char *argv[4];
	FILE *f;

	if (b->starts == 0) {
		b->port = tutil_free_port();
		assert_true(b->port > 0);
		snprintf(b->uri, sizeof(b->uri), "tcp://127.0.0.1:%d", b->port);
		snprintf(b->conf, sizeof(b->conf), "%s/pbroker.conf", h_dir(w));
		f = fopen(b->conf, "w");
		assert_non_null(f);
		fprintf(f,
		    "listener %d 127.0.0.1\n"
		    "allow_anonymous true\n"
		    "set_tcp_nodelay true\n"
		    "%s"
		    "max_inflight_messages 100\n"
		    "persistence %s\n"
		    "persistence_location %s/\n"
		    "persistence_file pbroker.db\n"
		    "log_dest stdout\n"
		    "log_type all\n"
		    "log_timestamp_format %%H:%%M:%%S\n"
		    "%s",
		    b->port, b->extra != NULL ? "" : "max_queued_messages 0\n",
		    b->persist ? "true" : "false", h_dir(w),
		    geteuid() == 0 ? "user root\n" : "");
		if (b->extra != NULL)
			fputs(b->extra, f);
		if (b->acl != NULL) {
			fprintf(f, "acl_file %s/pbroker.acl\n", h_dir(w));
			write_bytes(h_path(w, "pbroker.acl"), b->acl,
			    strlen(b->acl));
		}
		assert_int_equal(fclose(f), 0);
	}
	argv[0] = (char *)MOSQUITTO_BIN;
	argv[1] = (char *)"-c";
	argv[2] = b->conf;
	argv[3] = NULL;
	b->p = h_spawn(w, argv, "pbroker.out");
	if (tutil_wait_port(b->port, 0, H_WAIT_MS) != 0)
		fail_msg("mosquitto did not accept on port %d; see %s", b->port,
		    h_path(w, "pbroker.out"));
	b->starts++;
}

/* Common steps ------------------------------------------------------------- */

static int
f_teardown(void **state)
{
	struct rec *r, *next;

	if (fsize_lowered) {
		setrlimit(RLIMIT_FSIZE, &saved_fsize);
		fsize_lowered = 0;
	}
	for (r = recs; r != NULL; r = next) {
		next = r->next;
		rec_free(r);
	}
	recs = NULL;
	return h_teardown(state);
}

static long long
grant(struct h_client *ctl, const char *lock, const char *id,
    const char *session, const char *extra)
{
	h_request(ctl, lock, "acquire", id, session, extra, NULL);
	return h_int(h_expect(ctl, h_events(id), H_WAIT_MS, "event", "granted",
			 "lock", lock),
	    "token");
}

static void
queue(struct h_client *ctl, const char *lock, const char *id,
    const char *session, int position)
{
	h_request(ctl, lock, "acquire", id, session, NULL, NULL);
	h_expect(ctl, h_events(id), H_WAIT_MS, "event", "queued", "lock", lock,
	    "position", h_fmt("#%d", position));
}

/* The status message the coordinator's last words left, via ctl. */
static void
expect_offline(struct h_client *ctl)
{
	h_expect(ctl, STATUS, H_WAIT_MS, "state", "offline");
}

/* (a), (b), (c): storage that cannot be used ------------------------------ */

/* Runs mqlockd on db and checks it refuses: non-zero exit, says why. */
static void
expect_refused(struct h_world *w, const char *db, const char *out,
    const char *why1, const char *why2)
{
	struct h_proc *p = coord_spawn(w, h_uri(w), db, NULL, out);
	char log[1024];
	int rc;

	rc = h_proc_wait(p, 2 * H_WAIT_MS);
	snprintf(log, sizeof(log), "%s", h_path(w, out));
	if (rc == 0 || !tutil_file_contains(log, db) ||
	    !tutil_file_contains(log, "error") ||
	    (!tutil_file_contains(log, why1) &&
		(why2 == NULL || !tutil_file_contains(log, why2)))) {
		char *text = tutil_slurp(log, NULL);

		fail_msg("mqlockd --db %s: exit %d, expected non-zero and an "
			 "error naming the file and \"%s\"; it said:\n%s",
		    db, rc, why1, text != NULL ? text : "(nothing)");
	}
}

static void
test_db_path_unusable(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct stat st;
	char dir[1024];

	/* A path under a regular file, in a missing directory, a directory. */
	assert_int_equal(stat("/etc/passwd", &st), 0);
	assert_true(S_ISREG(st.st_mode));
	expect_refused(w, "/etc/passwd/mqlock.db", "bad-1.log", "journal",
	    NULL);
	expect_refused(w, "/nonexistent-mqlock-dir/sub/mqlock.db", "bad-2.log",
	    "journal", NULL);
	assert_int_equal(access("/nonexistent-mqlock-dir", F_OK), -1);
	snprintf(dir, sizeof(dir), "%s", h_dir(w));
	expect_refused(w, dir, "bad-3.log", "journal", NULL);
	/* It never came online, so it never said anything. */
	h_expect_none(h_ctl(w), STATUS, H_QUIET_MS, H_ANY);
	h_pass(w);
}

static void
test_db_corrupt(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	static unsigned char junk[65536];
	char path[2][1024];
	size_t len;
	char *after;
	int i;

	random_bytes(junk, sizeof(junk));
	snprintf(path[0], sizeof(path[0]), "%s", h_path(w, "random.db"));
	write_bytes(path[0], junk, sizeof(junk));
	/* A real SQLite header followed by garbage. */
	memcpy(junk, "SQLite format 3", 16);
	snprintf(path[1], sizeof(path[1]), "%s", h_path(w, "header.db"));
	write_bytes(path[1], junk, 8192);
	for (i = 0; i < 2; i++) {
		expect_refused(w, path[i], h_fmt("corrupt-%d.log", i),
		    "not a database", "not an mqlock journal");
		/* The file is left as it was, for whoever looks at it. */
		after = tutil_slurp(path[i], &len);
		assert_non_null(after);
		assert_int_equal(len, i == 0 ? sizeof(junk) : 8192);
		if (i == 1)
			assert_memory_equal(after, junk, len);
		free(after);
	}
	h_expect_none(h_ctl(w), STATUS, H_QUIET_MS, H_ANY);
	h_pass(w);
}

static void
test_db_in_use(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 1 --keepalive 2");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session();
	char db[1024];
	long long ta, tb;
	int status;

	ta = grant(ctl, "c1", "ca", sa, NULL);
	snprintf(db, sizeof(db), "%s", h_path(w, "mqlock.db"));
	/* Same journal, same flags, same MQTT client id: an operator's slip. */
	expect_refused(w, db, "second.log", "in use", NULL);
	/* The second one said nothing on the status topic... */
	h_expect_none(ctl, STATUS, H_QUIET_MS, H_ANY);
	/* ...and the first keeps serving, from the same journal. */
	tb = grant(ctl, "c2", "cb", sb, NULL);
	assert_true(tb > ta);
	h_request(ctl, "c1", "release", "ca", sa, NULL, NULL);
	h_state(ctl, h_owner("c1"), H_WAIT_MS, H_FREE);
	status = h_coord_stop(w, SIGTERM);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	h_pass(w);
}

/* (d): the journal fails while running ------------------------------------ */

static void
test_journal_write_failure(void **state)
{
	struct h_world *w = h_world_new(state, "--grace 1 --keepalive 2");
	struct h_client *ctl = h_ctl(w);
	struct rec *r = rec_new(w, h_uri(w), "rec", H_PREFIX "/#");
	struct rlimit lim;
	static long long tok[4096];
	static char sess[4096][40];
	long fail_idx = -1;
	size_t scan, before, i, k = 0;
	long long top = 0;
	int status;

	/*
	 * mqlockd inherits the limit (and SIGXFSZ ignored) from us: lower
	 * it just for the start, then put it back.  f_teardown() puts it
	 * back too if the start fails.
	 */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
	lim = saved_fsize;
	lim.rlim_cur = FSIZE_LIMIT;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	fsize_lowered = 1;
	h_coord_start(w);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved_fsize), 0);
	fsize_lowered = 0;

	/* One grant per commit, until the journal cannot grow. */
	scan = rec_count(r);
	for (k = 0; k < 4096 && fail_idx < 0; k++) {
		long long end = tutil_mono_ms() + H_WAIT_MS;
		int answered = 0;

		snprintf(sess[k], sizeof(sess[k]), "%s", h_session());
		h_request(ctl, h_fmt("lk%zu", k), "acquire", h_fmt("cl%zu", k),
		    sess[k], NULL, NULL);
		while (!answered && fail_idx < 0) {
			size_t n = rec_count(r);

			for (; scan < n && fail_idx < 0; scan++) {
				struct h_msg *m = rec_at(r, scan);

				if (h_matches(m, STATUS, "state", "offline"))
					fail_idx = (long)scan;
				else if (h_matches(m,
					     h_events(h_fmt("cl%zu", k)),
					     "event", "granted")) {
					tok[k] = h_int(m, "token");
					answered = 1;
				}
			}
			if (tutil_mono_ms() >= end) {
				rec_dump(r, 0);
				fail_msg("request %zu: neither granted nor "
					 "offline within %d ms",
				    k, H_WAIT_MS);
			}
			if (!answered && fail_idx < 0)
				rec_wait_more(r, n, 100);
		}
	}
	if (fail_idx < 0)
		fail_msg("the journal never failed under a %d byte file "
			 "size limit",
		    FSIZE_LIMIT);
	k--; /* the request whose batch failed */
	assert_true(k > 0);
	fprintf(stderr, "journal failed at grant %zu\n", k);

	/* Offline, with a reason; then it exits non-zero. */
	{
		struct h_msg *m = rec_at(r, (size_t)fail_idx);

		assert_true(m->retained == 0);
		assert_non_null(strstr(h_str(m, "error"), "journal"));
	}
	status = h_coord_stop(w, SIGCONT); /* only waits for the exit */
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 0);
	assert_true(tutil_file_contains(h_path(w, "mqlockd.log"),
	    "journal write failed"));

	/* Nothing of the failed batch was announced, before or after. */
	for (i = 0; i < rec_count(r); i++) {
		struct h_msg *m = rec_at(r, i);

		if (strcmp(m->topic, h_owner(h_fmt("lk%zu", k))) == 0 ||
		    strcmp(m->topic, h_events(h_fmt("cl%zu", k))) == 0) {
			rec_dump(r, 0);
			fail_msg("message %zu announces the failed batch", i);
		}
	}

	/*
	 * What a restart finds in the journal is exactly what was
	 * announced: every lock granted before, with its holder and token.
	 */
	before = rec_count(r);
	h_coord_start(w);
	for (i = 0; i < k; i++) {
		size_t at = rec_expect(r, before, H_WAIT_MS,
		    h_owner(h_fmt("lk%zu", i)));
		struct h_msg *m = rec_at(r, at);

		assert_string_equal(h_str(m, "owner.client"),
		    h_fmt("cl%zu", i));
		assert_int_equal(h_int(m, "token"), tok[i]);
		if (tok[i] > top)
			top = tok[i];
	}
	/* And the token counter goes on from the last announced grant. */
	{
		long long t =
		    grant(ctl, "after", "cl-after", h_session(), NULL);

		assert_true(t > top);
	}
	h_pass(w);
}

/* (e): kill -9 during a stream of requests -------------------------------- */

#define E_CLIENTS 6
#define E_LOCKS 3
#define E_REQUESTS 300
#define E_SEEN 4096

/* One request of the stream. */
struct req {
	int release;
	int c, l;
};

/* What the coordinator must decide, replayed from the requests. */
struct model {
	int holder[E_LOCKS]; /* client index, -1: free */
	int q[E_LOCKS][E_CLIENTS];
	int nq[E_LOCKS];
	int grants[E_LOCKS][E_REQUESTS + E_CLIENTS + 1]; /* in grant order */
	int ngrants[E_LOCKS];
	int silent[E_CLIENTS]; /* owes an answer to the restart's roll call */
};

/* What was seen of one lock: holders in token order, the last state. */
struct obs {
	long long tok[E_SEEN];
	int who[E_SEEN];
	int n;
	int holder; /* of the last owner message; -1: free or none */
	int q[E_CLIENTS + 1];
	int nq;
};

/* One token as observed: its lock and holder, and where first seen. */
struct seen {
	long long token;
	int lock;
	int client;
	size_t first;
};

static uint64_t rnd_state;

static uint64_t
rnd(void)
{
	return tutil_rand(&rnd_state);
}

static void
rnd_seed(const char *what)
{
	const char *env = getenv("MQLOCK_IT_SEED");

	rnd_state = env != NULL ? strtoull(env, NULL, 0)
				: (uint64_t)h_now_ms() ^ (uint64_t)getpid();
	if (rnd_state == 0)
		rnd_state = 1;
	fprintf(stderr, "%s: seed %llu (MQLOCK_IT_SEED to repeat)\n", what,
	    (unsigned long long)rnd_state);
}

static int
model_pos(const struct model *m, int l, int c)
{
	for (int i = 0; i < m->nq[l]; i++)
		if (m->q[l][i] == c)
			return i;
	return -1;
}

static void
model_remove(struct model *m, int l, int i)
{
	memmove(&m->q[l][i], &m->q[l][i + 1],
	    (size_t)(m->nq[l] - i - 1) * sizeof(int));
	m->nq[l]--;
}

/*
 * l is free: the first waiter that is not silent gets it; silent waiters
 * keep their places (topics.md, roll call).
 */
static void
model_hand_on(struct model *m, int l)
{
	for (int i = 0; i < m->nq[l]; i++) {
		if (m->silent[m->q[l][i]])
			continue;
		m->holder[l] = m->q[l][i];
		model_remove(m, l, i);
		m->grants[l][m->ngrants[l]++] = m->holder[l];
		return;
	}
}

/* Any request from c answers the roll call, and may hand c a free lock. */
static void
model_answer(struct model *m, int c)
{
	if (!m->silent[c])
		return;
	m->silent[c] = 0;
	for (int l = 0; l < E_LOCKS; l++)
		if (m->holder[l] < 0 && model_pos(m, l, c) >= 0)
			model_hand_on(m, l);
}

/* Every client stays connected; each answers the roll call in time. */
static void
model_apply(struct model *m, const struct req *r)
{
	int c = r->c, l = r->l, i;

	model_answer(m, c);
	i = model_pos(m, l, c);
	if (!r->release) {
		if (m->holder[l] < 0) {
			m->holder[l] = c;
			m->grants[l][m->ngrants[l]++] = c;
		} else if (m->holder[l] != c && i < 0)
			m->q[l][m->nq[l]++] = c;
		return;
	}
	if (m->holder[l] == c) {
		m->holder[l] = -1;
		model_hand_on(m, l);
	} else if (i >= 0)
		model_remove(m, l, i);
}

/*
 * The restart opens a roll call: every client that holds or waits for a
 * lock is silent until its next request.
 */
static void
model_restart(struct model *m)
{
	for (int l = 0; l < E_LOCKS; l++) {
		if (m->holder[l] >= 0)
			m->silent[m->holder[l]] = 1;
		for (int i = 0; i < m->nq[l]; i++)
			m->silent[m->q[l][i]] = 1;
	}
}

/*
 * Replays the n requests except those in [lost_from, lost_to), with the
 * restart just before request lost_to, then every client's answer to the
 * roll call.
 */
static void
model_run(struct model *m, const struct req *rq, int n, int lost_from,
    int lost_to)
{
	memset(m, 0, sizeof(*m));
	for (int l = 0; l < E_LOCKS; l++)
		m->holder[l] = -1;
	for (int i = 0; i < n; i++) {
		if (i == lost_to)
			model_restart(m);
		if (i < lost_from || i >= lost_to)
			model_apply(m, &rq[i]);
	}
	for (int c = 0; c < E_CLIENTS; c++)
		model_answer(m, c);
}

/*
 * Does the replay m explain what was seen?  Per lock, the holders seen in
 * token order are grants it made, in its order (none invented, none out of
 * order), the last one seen is its last grant, and the last owner message
 * shows its final holder and queue.
 */
static int
model_explains(const struct model *m, const struct obs *o)
{
	for (int l = 0; l < E_LOCKS; l++) {
		int g = 0;

		for (int j = 0; j < o[l].n; j++) {
			while (
			    g < m->ngrants[l] && m->grants[l][g] != o[l].who[j])
				g++;
			if (g == m->ngrants[l])
				return 0;
			g++;
		}
		if (g != m->ngrants[l] || o[l].holder != m->holder[l] ||
		    o[l].nq != m->nq[l])
			return 0;
		for (int i = 0; i < m->nq[l]; i++)
			if (o[l].q[i] != m->q[l][i])
				return 0;
	}
	return 1;
}

static int
name_index(const char *name, char prefix, int n)
{
	char *end;
	long v;

	if (name == NULL || name[0] != prefix)
		return -1;
	v = strtol(name + 1, &end, 10);
	return *end == '\0' && end != name + 1 && v >= 0 && v < n ? (int)v : -1;
}

/* Records token t of lock l held by client c, failing on any reuse. */
static void
see(struct seen *s, int *ns, long long t, int l, int c, size_t at,
    struct rec *r)
{
	for (int i = 0; i < *ns; i++) {
		if (s[i].token != t)
			continue;
		if (s[i].lock != l || s[i].client != c) {
			rec_dump(r, 0);
			fail_msg(
			    "token %lld: r%d/e%d at %zu, but r%d/e%d at %zu", t,
			    s[i].lock, s[i].client, s[i].first, l, c, at);
		}
		return;
	}
	assert_true(*ns < E_SEEN);
	s[*ns].token = t;
	s[*ns].lock = l;
	s[*ns].client = c;
	s[*ns].first = at;
	(*ns)++;
}

/* The token counter the coordinator read at its n-th start, from its log. */
static long long
logged_last_token(struct h_world *w, int start)
{
	char *log = tutil_slurp(h_path(w, "mqlockd.log"), NULL), *p, *q;
	long long t = -1;

	assert_non_null(log);
	p = strstr(log, h_fmt("==== harness: mqlockd start %d ====", start));
	if (p != NULL && (q = strstr(p, "last token ")) != NULL)
		t = strtoll(q + strlen("last token "), NULL, 10);
	free(log);
	if (t < 0)
		fail_msg("no \"last token\" in the log of start %d", start);
	return t;
}

/* The latest owner message of lock l, or NULL. */
static struct h_msg *
last_owner(struct rec *r, const char *lock)
{
	const char *topic = h_owner(lock);
	struct h_msg *last = NULL;

	for (size_t i = 0, n = rec_count(r); i < n; i++)
		if (strcmp(rec_at(r, i)->topic, topic) == 0)
			last = rec_at(r, i);
	return last;
}

/*
 * Whether owner message m (NULL: none yet) shows a free lock that nobody
 * waits for: none, or the empty retained payload that deletes it.
 */
static bool
owner_free(const struct h_msg *m)
{
	return m == NULL || m->len == 0;
}

/* Fails unless owner message m shows the model's state of lock l. */
static void
owner_is_model(const struct h_msg *m, const struct model *md, int l)
{
	char want[256];
	int i;

	if (md->holder[l] < 0 && md->nq[l] == 0 && owner_free(m))
		return;
	assert_false(owner_free(m));
	if (md->holder[l] < 0)
		assert_true(cJSON_IsNull(h_get(m, "owner")));
	else {
		snprintf(want, sizeof(want), "e%d", md->holder[l]);
		assert_string_equal(h_str(m, "owner.client"), want);
	}
	assert_int_equal(h_int(m, "waiting"), md->nq[l]);
	for (i = 0; i < md->nq[l]; i++) {
		snprintf(want, sizeof(want), "e%d", md->q[l][i]);
		assert_string_equal(h_str(m, h_fmt("queue.%d.client", i)),
		    want);
	}
}

/*
 * Several clients (one connection publishes for all of them, so that the
 * broker delivers the requests in exactly the order sent and a model can
 * replay them) acquire and release three locks; mqlockd is killed with
 * SIGKILL after a random number of requests and the rest are published
 * while it is down.  Requests its MQTT client had already acknowledged but
 * not yet committed are lost with it (see test_kill9_loses_no_request), so
 * the replay may skip one run of requests sent before the kill; everything
 * else must be explained exactly.
 */
static void
test_kill9_during_stream(void **state)
{
	struct h_world *w =
	    h_world_new(state, "--grace 0.5 --keepalive 2 --idle-timeout 600");
	struct h_client *ctl = h_ctl(w);
	struct rec *r = rec_new(w, h_uri(w), "rec", H_PREFIX "/#");
	static struct req rq[E_REQUESTS];
	static struct model md;
	static struct obs ob[E_LOCKS];
	static struct seen seen[E_SEEN];
	static long long gt[E_SEEN];
	static char sess[E_CLIENTS][40];
	int ns = 0, ngt = 0, kill_at, c, l, i, j, late = 0, pre = 0;
	int lost = -1, lost_from = 0;
	size_t cut, post, n, k, before;
	long long maxpre = 0, journal, last_new = 0, online_at;

	for (c = 0; c < E_CLIENTS; c++)
		snprintf(sess[c], sizeof(sess[c]), "%s", h_session());
	rnd_seed("kill9_during_stream");
	kill_at = E_REQUESTS / 5 + (int)(rnd() % (3 * E_REQUESTS / 5));
	h_coord_start(w);

	for (i = 0; i < E_REQUESTS; i++) {
		rq[i].release = rnd() % 10 < 4;
		rq[i].c = (int)(rnd() % E_CLIENTS);
		rq[i].l = (int)(rnd() % E_LOCKS);
		if (i == kill_at)
			h_coord_stop(w, SIGKILL);
		h_request(ctl, h_fmt("r%d", rq[i].l),
		    rq[i].release ? "release" : "acquire",
		    h_fmt("e%d", rq[i].c), sess[rq[i].c], NULL, NULL);
	}
	h_coord_start(w);

	/* The old coordinator's last message comes before its will. */
	cut = rec_expect(r, 0, H_WAIT_MS, STATUS, "state", "offline");
	post = rec_expect(r, cut, H_WAIT_MS, STATUS, "state", "online");
	online_at = rec_at(r, post)->at_ms;

	/*
	 * Answer the roll call.  Clients re-send acquire; here any valid
	 * request will do, and activity changes no holder or queue.
	 */
	for (c = 0; c < E_CLIENTS; c++)
		h_request(ctl, "r0", "activity", h_fmt("e%d", c), sess[c], NULL,
		    NULL);
	/* Past the roll call window (2.5 s), everything is decided. */
	sleep_until_wall(online_at + 2500 + 1000);
	h_request(ctl, "probe", "acquire", "probe", h_session(), NULL, NULL);
	rec_expect(r, post, H_WAIT_MS, h_events("probe"), "event", "granted");

	/* Every token, with its lock and holder; nobody lost a lock. */
	journal = logged_last_token(w, 2);
	n = rec_count(r);
	for (k = 0; k < n; k++) {
		struct h_msg *m = rec_at(r, k);
		int ml = -1, mc = -1;

		for (l = 0; l < E_LOCKS && ml < 0; l++)
			if (strcmp(m->topic, h_owner(h_fmt("r%d", l))) == 0)
				ml = l;
		for (c = 0; c < E_CLIENTS && mc < 0; c++)
			if (strcmp(m->topic, h_events(h_fmt("e%d", c))) == 0)
				mc = c;
		if (ml >= 0 && cJSON_IsObject(h_get(m, "owner")))
			see(seen, &ns, h_int(m, "token"), ml,
			    name_index(h_str(m, "owner.client"), 'e',
				E_CLIENTS),
			    k, r);
		if (mc < 0)
			continue;
		if (h_matches(m, m->topic, "event", "revoked")) {
			rec_dump(r, 0);
			fail_msg("message %zu: e%d lost a lock: %s", k, mc,
			    m->payload);
		}
		if (h_matches(m, m->topic, "event", "granted")) {
			long long t = h_int(m, "token");

			see(seen, &ns, t,
			    name_index(h_str(m, "lock"), 'r', E_LOCKS), mc, k,
			    r);
			for (i = 0; i < ngt && gt[i] != t; i++)
				;
			if (i < ngt)
				continue; /* the same grant again */
			assert_true(ngt < E_SEEN);
			gt[ngt++] = t;
			/*
			 * New grants after the restart, in decision order:
			 * increasing.  (Owner messages of one batch come in
			 * lock order, so only events are compared.)
			 */
			if (k > cut && t > journal) {
				if (t < last_new) {
					rec_dump(r, cut);
					fail_msg("message %zu: new token %lld "
						 "after %lld",
					    k, t, last_new);
				}
				last_new = t;
			}
		}
	}

	/* Durable before visible: the journal had every announced token. */
	for (i = 0; i < ns; i++) {
		assert_true(seen[i].lock >= 0 && seen[i].client >= 0);
		if (seen[i].first < cut) {
			pre++;
			if (seen[i].token > maxpre)
				maxpre = seen[i].token;
		} else if (seen[i].token <= journal)
			late++; /* committed; shown first by the restart */
	}
	assert_true(journal >= maxpre);
	assert_true(late <= E_LOCKS);

	for (l = 0; l < E_LOCKS; l++) {
		struct h_msg *lastpre = NULL, *m;

		/* The restart republished every lock in use before it. */
		for (k = 0; k < cut; k++)
			if (strcmp(rec_at(r, k)->topic,
				h_owner(h_fmt("r%d", l))) == 0)
				lastpre = rec_at(r, k);
		if (!owner_free(lastpre) &&
		    (cJSON_IsObject(h_get(lastpre, "owner")) ||
			h_int(lastpre, "waiting") > 0))
			rec_expect(r, cut, 0, h_owner(h_fmt("r%d", l)));

		/* Holders in token order; the last owner message. */
		for (i = 0; i < ns; i++) {
			if (seen[i].lock != l)
				continue;
			for (j = ob[l].n;
			     j > 0 && ob[l].tok[j - 1] > seen[i].token; j--) {
				ob[l].tok[j] = ob[l].tok[j - 1];
				ob[l].who[j] = ob[l].who[j - 1];
			}
			ob[l].tok[j] = seen[i].token;
			ob[l].who[j] = seen[i].client;
			ob[l].n++;
		}
		m = last_owner(r, h_fmt("r%d", l));
		ob[l].holder = -1;
		if (!owner_free(m) && cJSON_IsObject(h_get(m, "owner"))) {
			ob[l].holder = name_index(h_str(m, "owner.client"), 'e',
			    E_CLIENTS);
			/* The lock's last grant is the one it shows. */
			assert_int_equal(h_int(m, "token"),
			    ob[l].tok[ob[l].n - 1]);
		}
		ob[l].nq = !owner_free(m) ? (int)h_int(m, "waiting") : 0;
		assert_true(ob[l].nq <= E_CLIENTS);
		for (i = 0; i < ob[l].nq; i++)
			ob[l].q[i] =
			    name_index(h_str(m, h_fmt("queue.%d.client", i)),
				'e', E_CLIENTS);
	}

	/*
	 * The shortest run of requests sent before the kill whose loss
	 * explains what was announced; with none lost, the plain replay.
	 */
	for (i = 0; i <= kill_at && lost < 0; i++)
		for (j = 0; j + i <= kill_at && lost < 0; j++) {
			model_run(&md, rq, E_REQUESTS, j, j + i);
			if (model_explains(&md, ob)) {
				lost = i;
				lost_from = j;
			}
		}
	fprintf(stderr,
	    "killed after %d of %d requests; %d tokens announced before "
	    "the kill (up to %lld), journal had %lld, %d shown first by the "
	    "restart, %d in all; requests lost: %d (from #%d)\n",
	    kill_at, E_REQUESTS, pre, maxpre, journal, late, ns, lost,
	    lost_from);
	if (lost < 0) {
		rec_dump(r, 0);
		fail_msg("no replay of the requests explains what was "
			 "announced (grants, order or final state)");
	}

	/* A clean restart republishes exactly that state. */
	assert_int_equal(h_coord_stop(w, SIGTERM), 0);
	before = rec_count(r);
	h_coord_start(w);
	for (l = 0; l < E_LOCKS; l++) {
		struct h_msg *m;

		if (md.holder[l] < 0 && md.nq[l] == 0)
			continue;
		m = rec_at(r,
		    rec_expect(r, before, H_WAIT_MS, h_owner(h_fmt("r%d", l))));
		owner_is_model(m, &md, l);
		if (md.holder[l] >= 0)
			assert_int_equal(h_int(m, "token"),
			    ob[l].tok[ob[l].n - 1]);
	}
	h_pass(w);
}

/*
 * Requests mqlockd's MQTT client had acknowledged before kill -9 must still
 * be handled: 400 acquires of distinct locks, sent in one burst, and mqlockd
 * killed while they stream in.  Each must get its event, or (when its batch
 * was committed but not yet announced) show up as the lock's holder when
 * the restart republishes the owners.
 */
#define L_REQUESTS 400
#define EVQ H_PREFIX "/_clients/q"
#define OWX H_PREFIX "/x"

static void
test_kill9_loses_no_request(void **state)
{
	/*
	 * Known gap, not yet closed: Paho MQTT C acknowledges a message to
	 * the broker as soon as the callback has queued it, before mqlockd
	 * journals the batch, so kill -9 can lose requests the broker
	 * counts as delivered.  Clients recover them by re-sending acquire
	 * on the new epoch (test_roll_call); closing the gap needs the
	 * acknowledgement held back until the commit.
	 */
	if (getenv("MQLOCK_IT_KNOWN_GAPS") == NULL)
		skip();
	struct h_world *w =
	    h_world_new(state, "--grace 1 --keepalive 2 --idle-timeout 600");
	struct rec *r = rec_new(w, h_uri(w), "rec", H_PREFIX "/#");
	static char answered[L_REQUESTS];
	char body[256];
	int i, missing = 0, unannounced = 0, first = -1, last = -1;
	size_t k, n;

	memset(answered, 0, sizeof(answered));
	h_coord_start(w);
	for (i = 0; i < L_REQUESTS; i++) {
		snprintf(body, sizeof(body),
		    "{\"op\":\"acquire\",\"client\":\"q%d\","
		    "\"session\":\"%s\"}",
		    i, h_session());
		rec_send(r, h_fmt("%s/x%d/request", H_PREFIX, i), body);
	}
	/* The recorder hears its own requests: kill half-way through. */
	rec_expect(r, 0, H_WAIT_MS,
	    h_fmt("%s/x%d/request", H_PREFIX, L_REQUESTS / 2));
	h_coord_stop(w, SIGKILL);
	rec_expect(r, 0, H_WAIT_MS,
	    h_fmt("%s/x%d/request", H_PREFIX, L_REQUESTS - 1));
	h_coord_start(w);
	h_request(h_ctl(w), "probe", "acquire", "probe", h_session(), NULL,
	    NULL);
	rec_expect(r, 0, 2 * H_WAIT_MS, h_events("probe"), "event", "granted");

	n = rec_count(r);
	for (k = 0; k < n; k++) {
		struct h_msg *m = rec_at(r, k);
		char *end;
		long v;

		if (strncmp(m->topic, EVQ, strlen(EVQ)) == 0 &&
		    h_matches(m, m->topic, "event", "granted")) {
			v = strtol(m->topic + strlen(EVQ), &end, 10);
			if (v >= 0 && v < L_REQUESTS)
				answered[v] |= 1;
		}
		if (strncmp(m->topic, OWX, strlen(OWX)) == 0 &&
		    cJSON_IsObject(h_get(m, "owner"))) {
			v = strtol(m->topic + strlen(OWX), &end, 10);
			if (v >= 0 && v < L_REQUESTS)
				answered[v] |= 2;
		}
	}
	for (i = 0; i < L_REQUESTS; i++) {
		if (answered[i] == 2)
			unannounced++;
		if (answered[i] != 0)
			continue;
		missing++;
		if (first < 0)
			first = i;
		last = i;
	}
	fprintf(stderr,
	    "%d acquires, killed half-way: %d never handled (q%d..q%d), "
	    "%d committed without their event\n",
	    L_REQUESTS, missing, first, last, unannounced);
	/*
	 * Known to fail (issue 3): the MQTT adapter acknowledges a message
	 * as soon as it is queued in memory (on_message returns 1), so what
	 * was queued but not yet journaled dies with the process and the
	 * broker never sends it again.
	 */
	if (missing > 0)
		fail_msg(
		    "known bug: %d of %d acquires were acknowledged by mqlockd "
		    "but never handled (q%d..q%d): no event, no owner "
		    "after the restart; see the PUBACKs in mosquitto.log",
		    missing, L_REQUESTS, first, last);
	h_pass(w);
}

/* (f): requests and wills while mqlockd is down ---------------------------- */

static void
test_down_requests_and_wills(void **state)
{
	struct h_world *w = h_world_start(state, "--grace 1 --keepalive 2");
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session(), *sb = h_session(), *sc = h_session();
	const char *sd = h_session(), *se = h_session();
	struct h_proc *d = h_sub_proc(w, "fd", sd, 1, SLOW_KEEPALIVE);
	struct h_msg *m;
	long long ta, tb, tc, td, te;

	tb = grant(ctl, "f2", "fb", sb, NULL);
	queue(ctl, "f2", "fc", sc, 1);
	td = grant(ctl, "f3", "fd", sd, "\"conn\":1");
	queue(ctl, "f3", "fe", se, 1);
	h_sub(ctl, H_PREFIX "/_clients/fd/will");
	h_coord_stop(w, SIGKILL);
	expect_offline(ctl);
	h_drain(ctl, h_owner("f2"));
	h_drain(ctl, h_owner("f3"));

	/* While nobody serves: a request, a release and a will. */
	h_request(ctl, "f1", "acquire", "fa", sa, NULL, NULL);
	h_request(ctl, "f2", "release", "fb", sb, NULL, NULL);
	h_proc_kill(d, SIGKILL);
	h_expect(ctl, H_PREFIX "/_clients/fd/will", H_WAIT_MS, "session", sd);
	h_expect_none(ctl, h_events("fa"), H_QUIET_MS, H_ANY);

	h_coord_start(w);
	/* Answer the roll call, as clients do when the epoch changes. */
	h_request(ctl, "f1", "acquire", "fa", sa, NULL, NULL);
	h_request(ctl, "f2", "acquire", "fc", sc, NULL, NULL);
	h_request(ctl, "f3", "acquire", "fe", se, NULL, NULL);

	ta = h_int(h_expect(ctl, h_events("fa"), H_WAIT_MS, "event", "granted",
		       "lock", "f1"),
	    "token");
	assert_true(ta > td);
	tc = h_int(h_expect(ctl, h_events("fc"), H_WAIT_MS, "event", "granted",
		       "lock", "f2"),
	    "token");
	assert_true(tc > tb);
	h_state(ctl, h_owner("f2"), H_WAIT_MS, "owner.client", "fc", "token",
	    h_fmt("#%lld", tc));
	/* The will was handled: disconnected, then revoked after grace. */
	m = h_state(ctl, h_owner("f3"), H_WAIT_MS, "owner.client", "fd",
	    "owner.connected", "#false");
	assert_int_equal(h_int(m, "token"), td);
	h_expect(ctl, h_events("fd"), H_SLOW_MS, "event", "revoked", "lock",
	    "f3", "reason", "disconnect", "token", h_fmt("#%lld", td));
	te = h_int(h_expect(ctl, h_events("fe"), H_WAIT_MS, "event", "granted",
		       "lock", "f3"),
	    "token");
	assert_true(te > td);
	h_state(ctl, h_owner("f3"), H_WAIT_MS, "owner.client", "fe");
	h_pass(w);
}

/* (g): the roll call after a restart -------------------------------------- */

static void
test_roll_call(void **state)
{
	struct h_world *w = h_world_start(state,
	    "--grace 0.5 --keepalive 2 --idle-timeout 600");
	struct h_client *ctl = h_ctl(w);
	struct h_proc *h1, *h2, *wt;
	struct h_msg *m;
	long long t1, t2, tw, t0;

	h1 = cli_start(w, h_uri(w), "g-h1", "g1", NULL, SLOW_KEEPALIVE);
	t1 = cli_token(w, "g-h1", H_WAIT_MS);
	h2 = cli_start(w, h_uri(w), "g-h2", "g2", NULL, SLOW_KEEPALIVE);
	t2 = cli_token(w, "g-h2", H_WAIT_MS);
	wt = cli_start(w, h_uri(w), "g-w", "g2", "60", SLOW_KEEPALIVE);
	h_state(ctl, h_owner("g2"), H_WAIT_MS, "waiting", "#1",
	    "queue.0.client", "g-w");
	h_drain(ctl, h_events("g-h1"));

	/* g-h2 stays connected but cannot answer anything. */
	h_proc_kill(h2, SIGSTOP);
	h_coord_stop(w, SIGKILL);
	t0 = h_now_ms();
	h_coord_start(w);

	/* g-h1 answers the new epoch and keeps lock and token. */
	h_expect(ctl, h_events("g-h1"), H_WAIT_MS, "event", "granted", "lock",
	    "g1", "token", h_fmt("#%lld", t1));
	/* g-h2 is gone once grace + keepalive (2.5 s) passed, not before. */
	m = h_expect(ctl, h_events("g-h2"), H_SLOW_MS, "event", "revoked",
	    "lock", "g2", "reason", "disconnect", "token", h_fmt("#%lld", t2));
	assert_true(m->at_ms >= t0 + 2500);
	tw = cli_token(w, "g-w", H_WAIT_MS);
	assert_true(tw > t2);
	h_expect_none(ctl, h_events("g-h1"), 0, "event", "revoked");
	m = h_last(ctl, h_owner("g1"));
	assert_string_equal(h_str(m, "owner.client"), "g-h1");
	assert_int_equal(h_int(m, "token"), t1);

	/* (Woken up instead: test_woken_holder_leaves_nothing_behind.) */
	h_proc_kill(h2, SIGKILL);
	cli_stop(w, "g-h1");
	assert_int_equal(h_proc_wait(h1, H_WAIT_MS), 0);
	cli_stop(w, "g-w");
	assert_int_equal(h_proc_wait(wt, H_WAIT_MS), 0);
	h_state(ctl, h_owner("g1"), H_WAIT_MS, H_FREE);
	h_state(ctl, h_owner("g2"), H_WAIT_MS, H_FREE);
	h_pass(w);
}

/*
 * The silent holder of test_roll_call wakes up: it learns that it lost the
 * lock and exits 70, and must leave nothing behind.  It sees the new epoch
 * before the revocation (that is the order they were published in) and
 * re-sends acquire, as it should while it thinks it holds the lock; that
 * acquire then puts it in the queue again.
 */
static void
test_woken_holder_leaves_nothing_behind(void **state)
{
	struct h_world *w = h_world_start(state,
	    "--grace 0.5 --keepalive 2 --idle-timeout 600");
	struct h_client *ctl = h_ctl(w);
	struct h_proc *h2, *wt;
	struct h_msg *m;
	long long t2, tw;

	(void)tw;
	h2 = cli_start(w, h_uri(w), "g-h2", "g2", NULL, SLOW_KEEPALIVE);
	t2 = cli_token(w, "g-h2", H_WAIT_MS);
	wt = cli_start(w, h_uri(w), "g-w", "g2", "60", SLOW_KEEPALIVE);
	h_state(ctl, h_owner("g2"), H_WAIT_MS, "waiting", "#1",
	    "queue.0.client", "g-w");
	h_proc_kill(h2, SIGSTOP);
	h_coord_stop(w, SIGKILL);
	h_coord_start(w);
	h_expect(ctl, h_events("g-h2"), H_SLOW_MS, "event", "revoked", "lock",
	    "g2", "reason", "disconnect", "token", h_fmt("#%lld", t2));
	tw = cli_token(w, "g-w", H_WAIT_MS);
	assert_true(tw > t2);

	h_proc_kill(h2, SIGCONT);
	assert_int_equal(h_proc_wait(h2, H_WAIT_MS), 70);
	cli_stop(w, "g-w");
	assert_int_equal(h_proc_wait(wt, H_WAIT_MS), 0);
	/*
	 * Known to fail: mqlock exits 70 on the revocation without leaving
	 * the queue its re-sent acquire joined, and with a normal DISCONNECT
	 * (no will), so g2 goes to a process that is gone and stays held
	 * until the idle timeout.
	 */
	h_state(ctl, h_owner("g2"), H_WAIT_MS, "owner.client", "g-w");
	do
		m = h_expect(ctl, h_owner("g2"), H_WAIT_MS, H_ANY);
	while (h_matches(m, m->topic, "owner.client", "g-w"));
	if (m->len != 0 && !cJSON_IsNull(h_get(m, "owner")))
		fail_msg("known bug: g2 went to an mqlock that exited: %s",
		    m->payload);
	h_pass(w);
}

/*
 * During a roll call, grants skip a waiter that has not answered yet and
 * it keeps its place (topics.md, "Epochs and the roll call"): when the
 * holder releases, a newcomer that is known to be alive gets the lock; the
 * waiter, once it answers, is first in line and gets it next.
 */
static void
test_roll_call_release_goes_to_waiter(void **state)
{
	struct h_world *w =
	    h_world_start(state, "--grace 1 --keepalive 2 --idle-timeout 600");
	struct h_client *ctl = h_ctl(w);
	const char *sh = h_session(), *sw = h_session(), *sn = h_session();

	grant(ctl, "rc", "rh", sh, NULL);
	queue(ctl, "rc", "rw", sw, 1);
	h_coord_stop(w, SIGKILL);
	h_coord_start(w);
	h_drain(ctl, h_owner("rc"));

	/* Well within the window (3 s): rh answers and releases; rw has
	 * not answered yet; a newcomer asks right after. */
	h_request(ctl, "rc", "acquire", "rh", sh, NULL, NULL);
	h_request(ctl, "rc", "release", "rh", sh, NULL, NULL);
	h_request(ctl, "rc", "acquire", "rn", sn, NULL, NULL);
	h_expect(ctl, h_events("rn"), H_WAIT_MS, "event", "granted", "lock",
	    "rc", NULL);
	/* rw answers: still first in line, behind the newcomer. */
	h_request(ctl, "rc", "acquire", "rw", sw, NULL, NULL);
	assert_int_equal(h_int(h_expect(ctl, h_events("rw"), H_WAIT_MS, "event",
				   "queued", "lock", "rc", NULL),
			     "position"),
	    1);
	h_request(ctl, "rc", "release", "rn", sn, NULL, NULL);
	h_expect(ctl, h_events("rw"), H_WAIT_MS, "event", "granted", "lock",
	    "rc");
	h_pass(w);
}

/*
 * Whatever the roll call leaves behind must survive a restart: here the
 * holder releases while its waiter has not answered yet, and mqlockd is
 * killed right after.  The lock is journaled free with the waiter queued
 * and marked connected; the restarted mqlockd must load that journal.
 */
static void
test_restart_after_release_during_roll_call(void **state)
{
	struct h_world *w =
	    h_world_start(state, "--grace 1 --keepalive 2 --idle-timeout 600");
	struct h_client *ctl = h_ctl(w);
	const char *sh = h_session(), *sw = h_session();
	struct h_msg *m;

	grant(ctl, "rc", "rh", sh, NULL);
	queue(ctl, "rc", "rw", sw, 1);
	h_coord_stop(w, SIGKILL);
	h_coord_start(w);
	h_drain(ctl, h_owner("rc"));
	h_request(ctl, "rc", "acquire", "rh", sh, NULL, NULL);
	h_request(ctl, "rc", "release", "rh", sh, NULL, NULL);
	/* The release is decided (and journaled) once rc's owner changes. */
	do
		m = h_expect(ctl, h_owner("rc"), H_WAIT_MS, H_ANY);
	while (h_matches(m, m->topic, "owner.client", "rh"));
	h_coord_stop(w, SIGKILL);
	h_coord_start(w);
	/* rw answers the new roll call and gets the lock. */
	h_request(ctl, "rc", "acquire", "rw", sw, NULL, NULL);
	h_expect(ctl, h_events("rw"), H_WAIT_MS, "event", "granted", "lock",
	    "rc");
	h_pass(w);
}

/* (h): deadlines that passed while mqlockd was down ------------------------ */

static void
test_idle_deadline_floored(void **state)
{
	struct h_world *w = h_world_start(state,
	    "--idle-policy always --grace 1 --keepalive 2 "
	    "--idle-timeout 2");
	struct h_client *ctl = h_ctl(w);
	const char *sh = h_session(), *sw = h_session();
	struct h_msg *m;
	long long th, tw, deadline, t0;

	h_request(ctl, "late", "acquire", "hd", sh, NULL, NULL);
	m = h_expect(ctl, h_events("hd"), H_WAIT_MS, "event", "granted");
	th = h_int(m, "token");
	deadline = h_int(m, "idle_deadline");
	queue(ctl, "late", "hw", sw, 1);
	h_coord_stop(w, SIGKILL);
	h_expect_none(ctl, h_events("hd"), 0, "event", "revoked");
	h_drain(ctl, h_owner("late"));

	/* The idle deadline passes while nobody can decide. */
	sleep_until_wall(deadline + 200);
	t0 = h_now_ms();
	h_coord_start(w);
	m = h_expect(ctl, h_owner("late"), H_WAIT_MS, "owner.client", "hd");
	assert_int_equal(h_int(m, "token"), th);
	assert_true(h_int(m, "idle_deadline") >= t0 + 1000);
	/* The waiter answers the roll call; the holder stays silent. */
	queue(ctl, "late", "hw", sw, 1);
	m = h_expect(ctl, h_events("hd"), H_WAIT_MS, "event", "revoked",
	    "reason", "idle", "token", h_fmt("#%lld", th));
	assert_true(m->at_ms >= t0 + 1000);
	tw = h_int(h_expect(ctl, h_events("hw"), H_WAIT_MS, "event", "granted",
		       "lock", "late"),
	    "token");
	assert_true(tw > th);
	h_pass(w);
}

static void
test_grace_deadline_floored(void **state)
{
	struct h_world *w =
	    h_world_start(state, "--grace 1 --keepalive 2 --idle-timeout 600");
	struct h_client *ctl = h_ctl(w);
	const char *sd = h_session(), *sw = h_session();
	struct h_proc *d = h_sub_proc(w, "gd", sd, 1, SLOW_KEEPALIVE);
	struct h_msg *m;
	long long td, tw, will_at, t0;

	td = grant(ctl, "late", "gd", sd, "\"conn\":1");
	queue(ctl, "late", "gw", sw, 1);
	h_proc_kill(d, SIGKILL);
	m = h_state(ctl, h_owner("late"), H_WAIT_MS, "owner.connected",
	    "#false");
	will_at = m->at_ms;
	h_coord_stop(w, SIGKILL);
	h_expect_none(ctl, h_events("gd"), 0, "event", "revoked");

	/* The grace ends while nobody can decide. */
	sleep_until_wall(will_at + 1000 + 200);
	t0 = h_now_ms();
	h_coord_start(w);
	queue(ctl, "late", "gw", sw, 1);
	m = h_expect(ctl, h_events("gd"), H_WAIT_MS, "event", "revoked",
	    "reason", "disconnect", "token", h_fmt("#%lld", td));
	assert_true(m->at_ms >= t0 + 1000);
	tw = h_int(h_expect(ctl, h_events("gw"), H_WAIT_MS, "event", "granted",
		       "lock", "late"),
	    "token");
	assert_true(tw > td);
	h_pass(w);
}

/*
 * mqlockd frozen (SIGSTOP: a paused VM, a stalled host; to the broker the
 * same as a partition): the broker drops it and publishes its offline will.
 * An idle deadline passes meanwhile.  Once it runs again it must notice it
 * was cut off, reconnect (same session, same epoch) and give the holder a
 * grace period before the deadline fires ("After an outage").
 */
static void
test_coordinator_frozen(void **state)
{
	struct h_world *w = h_world_new(state,
	    "--idle-policy always --grace 2 --keepalive 2 "
	    "--idle-timeout 4");
	struct h_client *ctl = h_ctl(w);
	const char *sh = h_session(), *sw = h_session();
	struct h_proc *cd;
	struct h_msg *m;
	long long th, deadline, epoch, t0;

	cd = coord_spawn(w, h_uri(w), h_path(w, "mqlock.db"),
	    "--idle-policy always --grace 2 --keepalive 2 "
	    "--idle-timeout 4",
	    "mqlockd.log");
	m = h_expect(ctl, STATUS, 2 * H_WAIT_MS, "state", "online");
	epoch = h_int(m, "epoch");
	h_request(ctl, "fz", "acquire", "fh", sh, NULL, NULL);
	m = h_expect(ctl, h_events("fh"), H_WAIT_MS, "event", "granted");
	th = h_int(m, "token");
	deadline = h_int(m, "idle_deadline");
	queue(ctl, "fz", "fw", sw, 1);

	h_proc_kill(cd, SIGSTOP);
	/* The broker gives up on it: its will says offline. */
	h_expect(ctl, STATUS, H_SLOW_MS, "state", "offline");
	sleep_until_wall(deadline + 200);
	h_drain(ctl, h_owner("fz"));
	t0 = h_now_ms();
	h_proc_kill(cd, SIGCONT);

	m = h_expect(ctl, STATUS, H_SLOW_MS, "state", "online");
	/* Losing the broker began a new epoch. */
	assert_int_equal(h_int(m, "epoch"), epoch + 1);
	/*
	 * The waiter shows life; the holder stays silent.  Known to fail at
	 * times: mqlockd may run its deadlines as it wakes, before it sees
	 * that its connection is gone; it then revokes fh at once and, its
	 * publishes failing, never announces that.
	 */
	h_request(ctl, "fz", "acquire", "fw", sw, NULL, NULL);
	m = h_expect(ctl, h_events("fw"), H_WAIT_MS, H_ANY);
	if (h_matches(m, m->topic, "event", "granted") && m->at_ms < t0 + 2000)
		fail_msg("known bug: fz went to fw %lld ms after mqlockd ran "
			 "again, before a grace period (2000 ms): %s",
		    m->at_ms - t0, m->payload);
	assert_string_equal(h_str(m, "event"), "queued");
	m = h_expect(ctl, h_events("fh"), H_SLOW_MS, "event", "revoked",
	    "token", h_fmt("#%lld", th));
	assert_string_equal(h_str(m, "reason"), "idle");
	assert_true(m->at_ms >= t0 + 2000);
	h_expect(ctl, h_events("fw"), H_WAIT_MS, "event", "granted");
	h_pass(w);
}

/*
 * raw_connect(port, id, keepalive, will_topic, will): an MQTT 3.1.1
 * connection made by hand, clean session, with a QoS 1 will; returns the
 * socket once the broker accepted it.  Nothing is sent on it afterwards:
 * with keepalive 0 the broker never times it out.
 */
static int
raw_connect(int port, const char *id, int keepalive, const char *will_topic,
    const char *will)
{
	unsigned char pkt[1024], ack[4];
	struct sockaddr_in a;
	size_t n = 0, rem, il = strlen(id), tl = strlen(will_topic),
	       wl = strlen(will);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t got = 0;

	assert_true(fd >= 0);
	rem = 10 + 2 + il + 2 + tl + 2 + wl;
	assert_true(rem < 128 && rem + 2 <= sizeof(pkt));
	pkt[n++] = 0x10;
	pkt[n++] = (unsigned char)rem;
	memcpy(pkt + n, "\0\4MQTT\4", 7);
	n += 7;
	pkt[n++] = 0x02 | 0x04 | 0x08; /* clean, will, will QoS 1 */
	pkt[n++] = (unsigned char)(keepalive >> 8);
	pkt[n++] = (unsigned char)keepalive;
	pkt[n++] = 0;
	pkt[n++] = (unsigned char)il;
	memcpy(pkt + n, id, il);
	n += il;
	pkt[n++] = 0;
	pkt[n++] = (unsigned char)tl;
	memcpy(pkt + n, will_topic, tl);
	n += tl;
	pkt[n++] = 0;
	pkt[n++] = (unsigned char)wl;
	memcpy(pkt + n, will, wl);
	n += wl;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, pkt, n), (ssize_t)n);
	while (got < sizeof(ack)) {
		ssize_t r = read(fd, ack + got, sizeof(ack) - got);

		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(ack[0], 0x20);
	assert_int_equal(ack[3], 0); /* accepted */
	return fd;
}

/*
 * Two holders whose wills never reach mqlockd: one connected with
 * keepalive 0 that has gone silent (the broker never times it out), one
 * whose will the broker's ACL denies (dropped silently when it fires).
 * Only the idle timeout frees their locks, and it does.
 */
static void
test_silent_clients_bounded_by_idle(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct pbroker b = {.persist = 0,
	    .acl = "topic readwrite #\n"
		   "topic deny " H_PREFIX "/_clients/ad/will\n"};
	const char *sk = h_session(), *sa = h_session();
	struct rec *r;
	struct h_msg *m;
	long long tk, ta, dk, da;
	size_t from;
	int k0, ad;

	pbroker_start(w, &b);
	r = rec_new(w, b.uri, "rec", H_PREFIX "/#");
	coord_spawn(w, b.uri, h_path(w, "p.db"),
	    "--idle-policy always --grace 1 --keepalive 2 "
	    "--idle-timeout 3",
	    "mqlockd.log");
	rec_expect(r, 0, 2 * H_WAIT_MS, STATUS, "state", "online");
	k0 = raw_connect(b.port, "k0", 0, H_PREFIX "/_clients/k0/will",
	    h_fmt("{\"session\":\"%s\",\"conn\":1}", sk));
	ad = raw_connect(b.port, "ad", 60, H_PREFIX "/_clients/ad/will",
	    h_fmt("{\"session\":\"%s\",\"conn\":1}", sa));
	rec_send(r, H_PREFIX "/q0/request",
	    h_fmt("{\"op\":\"acquire\",\"client\":\"k0\",\"session\":"
		  "\"%s\",\"conn\":1}",
		sk));
	rec_send(r, H_PREFIX "/q1/request",
	    h_fmt("{\"op\":\"acquire\",\"client\":\"ad\",\"session\":"
		  "\"%s\",\"conn\":1}",
		sa));
	m = rec_at(r,
	    rec_expect(r, 0, H_WAIT_MS, h_events("k0"), "event", "granted"));
	tk = h_int(m, "token");
	dk = h_int(m, "idle_deadline");
	m = rec_at(r,
	    rec_expect(r, 0, H_WAIT_MS, h_events("ad"), "event", "granted"));
	ta = h_int(m, "token");
	da = h_int(m, "idle_deadline");
	rec_send(r, H_PREFIX "/q0/request",
	    h_fmt("{\"op\":\"acquire\",\"client\":\"w0\",\"session\":"
		  "\"%s\"}",
		h_session()));
	rec_send(r, H_PREFIX "/q1/request",
	    h_fmt("{\"op\":\"acquire\",\"client\":\"w1\",\"session\":"
		  "\"%s\"}",
		h_session()));
	rec_expect(r, 0, H_WAIT_MS, h_events("w0"), "event", "queued");
	rec_expect(r, 0, H_WAIT_MS, h_events("w1"), "event", "queued");

	/*
	 * ad's process dies: its will fires and the ACL drops it.  (Had it
	 * come through, ad would lose q1 for "disconnect" after the 1 s grace,
	 * well before its idle deadline.)
	 */
	from = rec_count(r);
	close(ad);

	m = rec_at(r,
	    rec_expect(r, from, H_WAIT_MS, h_events("k0"), "event", "revoked"));
	assert_string_equal(h_str(m, "reason"), "idle");
	assert_int_equal(h_int(m, "token"), tk);
	assert_true(m->at_ms >= dk);
	m = rec_at(r,
	    rec_expect(r, from, H_WAIT_MS, h_events("ad"), "event", "revoked"));
	/* Not "disconnect": mqlockd never heard of ad's end. */
	assert_string_equal(h_str(m, "reason"), "idle");
	assert_int_equal(h_int(m, "token"), ta);
	assert_true(m->at_ms >= da);
	assert_true(rec_find_none(r, 0, H_PREFIX "/_clients/ad/will"));
	rec_expect(r, from, H_WAIT_MS, h_events("w0"), "event", "granted");
	rec_expect(r, from, H_WAIT_MS, h_events("w1"), "event", "granted");
	close(k0);
	h_pass(w);
}

/* (i): broker restarts ------------------------------------------------------
 */

static int
count_in_file(const char *path, const char *needle)
{
	char *s = tutil_slurp(path, NULL), *p;
	int n = 0;

	for (p = s; p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(s);
	return n;
}

static void
wait_count_in_file(const char *path, const char *needle, int count, int ms)
{
	long long end = tutil_mono_ms() + ms;

	while (count_in_file(path, needle) < count) {
		if (tutil_mono_ms() >= end)
			fail_msg("%s: \"%s\" not %d times within %d ms", path,
			    needle, count, ms);
		tutil_nap_ms(20);
	}
}

/* No revoked event since index from. */
static void
expect_no_revoke(struct rec *r, size_t from)
{
	for (size_t i = from, n = rec_count(r); i < n; i++) {
		struct h_msg *m = rec_at(r, i);

		if (strstr(m->topic, "/events") != NULL &&
		    h_matches(m, m->topic, "event", "revoked")) {
			rec_dump(r, from);
			fail_msg("message %zu: %s %s", i, m->topic, m->payload);
		}
	}
}

static void
test_broker_sigterm_persistent(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct pbroker b = {.persist = 1};
	struct h_proc *cd, *a, *bb, *wq;
	const char *log;
	struct rec *r;
	struct h_msg *m;
	long long ta, tb, tw, epoch;
	size_t on, before;

	pbroker_start(w, &b);
	r = rec_new(w, b.uri, "rec", H_PREFIX "/#");
	/* Grace 3 s: time for mqlock's reconnect backoff (0.1, 0.2, 0.4 s). */
	cd = coord_spawn(w, b.uri, h_path(w, "p.db"),
	    "--grace 3 --keepalive 2 --idle-timeout 600", "mqlockd.log");
	log = h_path(w, "mqlockd.log");
	on = rec_expect(r, 0, 2 * H_WAIT_MS, STATUS, "state", "online");
	epoch = h_int(rec_at(r, on), "epoch");
	a = cli_start(w, b.uri, "i-a", "d1", NULL, 10);
	ta = cli_token(w, "i-a", H_WAIT_MS);
	bb = cli_start(w, b.uri, "i-b", "d2", NULL, 10);
	tb = cli_token(w, "i-b", H_WAIT_MS);
	wq = cli_start(w, b.uri, "i-w", "d1", "120", 10);
	rec_expect(r, on, H_WAIT_MS, h_owner("d1"), "waiting", "#1");

	/* A graceful stop fires every client's will; the state is saved. */
	h_proc_kill(b.p, SIGTERM);
	assert_int_equal(h_proc_wait(b.p, H_WAIT_MS), 0);
	before = rec_count(r);
	pbroker_start(w, &b);
	wait_count_in_file(log, "(session resumed)", 1, 2 * H_WAIT_MS);
	/*
	 * The wills reached mqlockd, and each client came back within the
	 * grace: marked connected again (a revocation would come first).
	 */
	wait_file_has(log, "will client=i-a", H_WAIT_MS);
	wait_file_has(log, "reconnected client=i-a", H_WAIT_MS);
	wait_file_has(log, "reconnected client=i-b", H_WAIT_MS);
	wait_file_has(log, "reconnected client=i-w", H_WAIT_MS);
	assert_false(tutil_file_contains(log, "revoke lock="));
	/* What the recorder has is current once it is subscribed again. */
	rec_wait_subscribed(r, 2, 2 * H_WAIT_MS);
	rec_expect(r, before, H_WAIT_MS, h_owner("d1"));
	rec_expect(r, before, H_WAIT_MS, h_owner("d2"));

	expect_no_revoke(r, before);
	m = last_owner(r, "d1");
	assert_string_equal(h_str(m, "owner.client"), "i-a");
	assert_int_equal(h_int(m, "token"), ta);
	assert_true(cJSON_IsTrue(h_get(m, "owner.connected")));
	m = last_owner(r, "d2");
	assert_string_equal(h_str(m, "owner.client"), "i-b");
	assert_int_equal(h_int(m, "token"), tb);
	assert_true(cJSON_IsTrue(h_get(m, "owner.connected")));
	/*
	 * Losing the broker begins a new epoch even when it kept our session
	 * (it may have been restored from an old save): the holders answered
	 * its roll call and kept their locks.
	 */
	m = rec_at(r,
	    rec_expect(r, before, H_WAIT_MS, STATUS, "state", "online"));
	assert_int_equal(h_int(m, "epoch"), epoch + 1);

	/* Each holder still runs its command and then releases normally. */
	cli_stop(w, "i-a");
	assert_int_equal(h_proc_wait(a, H_WAIT_MS), 0);
	tw = cli_token(w, "i-w", H_WAIT_MS);
	assert_true(tw > ta && tw > tb);
	cli_stop(w, "i-w");
	assert_int_equal(h_proc_wait(wq, H_WAIT_MS), 0);
	cli_stop(w, "i-b");
	assert_int_equal(h_proc_wait(bb, H_WAIT_MS), 0);
	h_proc_kill(cd, SIGTERM);
	assert_int_equal(h_proc_wait(cd, 2 * H_WAIT_MS), 0);
	h_pass(w);
}

static void
test_broker_sigkill_session_lost(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct pbroker b = {.persist = 0};
	struct h_proc *cd, *a, *bb, *wq;
	const char *log;
	struct rec *r;
	struct h_msg *m;
	long long ta, tb, tw, epoch;
	size_t on, before, on2;

	pbroker_start(w, &b);
	r = rec_new(w, b.uri, "rec", H_PREFIX "/#");
	cd = coord_spawn(w, b.uri, h_path(w, "p.db"),
	    "--grace 1 --keepalive 2 --idle-timeout 600", "mqlockd.log");
	log = h_path(w, "mqlockd.log");
	on = rec_expect(r, 0, 2 * H_WAIT_MS, STATUS, "state", "online");
	epoch = h_int(rec_at(r, on), "epoch");
	a = cli_start(w, b.uri, "i-a", "d1", NULL, 10);
	ta = cli_token(w, "i-a", H_WAIT_MS);
	bb = cli_start(w, b.uri, "i-b", "d2", NULL, 10);
	tb = cli_token(w, "i-b", H_WAIT_MS);
	wq = cli_start(w, b.uri, "i-w", "d1", "120", 10);
	rec_expect(r, on, H_WAIT_MS, h_owner("d1"), "waiting", "#1");
	assert_int_equal(count_in_file(log, "(session new)"), 1);

	/* No wills, no retained messages, no sessions survive this. */
	h_proc_kill(b.p, SIGKILL);
	before = rec_count(r);
	pbroker_start(w, &b);
	wait_count_in_file(log, "(session new)", 2, 2 * H_WAIT_MS);
	on2 = rec_expect(r, before, 2 * H_WAIT_MS, STATUS, "state", "online",
	    "epoch", h_fmt("#%lld", epoch + 1));
	assert_true(count_in_file(log, "roll call") >= 2);
	/* Every owner message again, from the journal. */
	m = rec_at(r,
	    rec_expect(r, before, H_WAIT_MS, h_owner("d1"), "owner.client",
		"i-a"));
	assert_int_equal(h_int(m, "token"), ta);
	assert_int_equal(h_int(m, "waiting"), 1);
	m = rec_at(r,
	    rec_expect(r, before, H_WAIT_MS, h_owner("d2"), "owner.client",
		"i-b"));
	assert_int_equal(h_int(m, "token"), tb);

	/* The clients answered the roll call (grace + keepalive = 3 s). */
	sleep_until_wall(rec_at(r, on2)->at_ms + 3000 + 1500);
	expect_no_revoke(r, before);
	m = last_owner(r, "d1");
	assert_string_equal(h_str(m, "owner.client"), "i-a");
	assert_int_equal(h_int(m, "token"), ta);
	assert_int_equal(h_int(m, "waiting"), 1);
	m = last_owner(r, "d2");
	assert_string_equal(h_str(m, "owner.client"), "i-b");
	assert_int_equal(h_int(m, "token"), tb);

	cli_stop(w, "i-a");
	assert_int_equal(h_proc_wait(a, H_WAIT_MS), 0);
	tw = cli_token(w, "i-w", H_WAIT_MS);
	assert_true(tw > ta && tw > tb);
	cli_stop(w, "i-w");
	assert_int_equal(h_proc_wait(wq, H_WAIT_MS), 0);
	cli_stop(w, "i-b");
	assert_int_equal(h_proc_wait(bb, H_WAIT_MS), 0);
	h_proc_kill(cd, SIGTERM);
	assert_int_equal(h_proc_wait(cd, 2 * H_WAIT_MS), 0);
	h_pass(w);
}

/* A publisher on broker b (not the world's), connected now. */
static struct h_client *
pub_on(struct h_world *w, const struct pbroker *b, const char *id)
{
	struct h_login login = {0};
	struct h_client *c;

	login.uri = b->uri;
	assert_int_equal(h_client_try(w, id, &login, &c), 0);
	return c;
}

static void
copy_file(const char *from, const char *to)
{
	size_t len;
	char *data = tutil_slurp(from, &len);

	assert_non_null(data);
	write_bytes(to, data, len);
	free(data);
}

/*
 * A broker restored from an older save hands mqlockd a request it had
 * already handled, after that client's will (issue 10): the copy is
 * stale (same conn as the will) and must not bring the client back,
 * answer the roll call or win it the lock.  Fails on 1a4102a, where the
 * replayed request marked cl-b connected and the release granted it.
 */
static void
test_old_save_replays_request(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct pbroker b = {.persist = 1};
	const char *sa = h_session(), *sb = h_session(), *log;
	const char *t_req = H_PREFIX "/doc/request";
	const char *a_acq, *b_acq, *b_will;
	struct h_client *pub;
	struct h_proc *cd;
	struct rec *r;
	size_t at;

	a_acq = h_fmt("{\"op\":\"acquire\",\"client\":\"cl-a\","
		      "\"session\":\"%s\"}",
	    sa);
	b_acq = h_fmt("{\"op\":\"acquire\",\"client\":\"cl-b\","
		      "\"session\":\"%s\",\"conn\":3}",
	    sb);
	b_will = h_fmt("{\"session\":\"%s\",\"conn\":3}", sb);
	pbroker_start(w, &b);
	r = rec_new(w, b.uri, "rec", H_PREFIX "/#");
	cd = coord_spawn(w, b.uri, h_path(w, "p.db"),
	    "--grace 8 --keepalive 2 --idle-timeout 600", "mqlockd.log");
	log = h_path(w, "mqlockd.log");
	at = rec_expect(r, 0, 2 * H_WAIT_MS, STATUS, "state", "online");
	pub = pub_on(w, &b, "pub1");
	h_pub(pub, t_req, a_acq);
	rec_expect(r, at, H_WAIT_MS, h_events("cl-a"), "event", "granted");
	h_pub(pub, t_req, b_acq);
	rec_expect(r, at, H_WAIT_MS, h_events("cl-b"), "event", "queued");

	/* mqlockd away: cl-b's acquire, re-sent, waits in its session. */
	h_proc_kill(cd, SIGTERM);
	assert_int_equal(h_proc_wait(cd, H_WAIT_MS), 0);
	h_pub(pub, t_req, b_acq);
	/* The broker saves its state with that request in it. */
	h_proc_kill(b.p, SIGTERM);
	assert_int_equal(h_proc_wait(b.p, H_WAIT_MS), 0);
	copy_file(h_path(w, "pbroker.db"), h_path(w, "old.db"));

	/* Back: mqlockd takes the request, then cl-b's connection 3 dies. */
	pbroker_start(w, &b);
	cd = coord_spawn(w, b.uri, h_path(w, "p.db"),
	    "--grace 8 --keepalive 2 --idle-timeout 600", "mqlockd.log");
	wait_file_has(log, "request lock=doc client=cl-b", 2 * H_WAIT_MS);
	pub = pub_on(w, &b, "pub2");
	h_pub(pub, t_req, a_acq); /* cl-a answers the restart's roll call */
	h_pub(pub, H_PREFIX "/_clients/cl-b/will", b_will);
	wait_file_has(log, "disconnected client=cl-b", H_WAIT_MS);

	/*
	 * The broker dies and comes back from the old save, which still
	 * holds that request for mqlockd: it is delivered again.
	 */
	h_proc_kill(b.p, SIGKILL);
	copy_file(h_path(w, "old.db"), h_path(w, "pbroker.db"));
	pbroker_start(w, &b);
	wait_file_has(log, "(session resumed)", 2 * H_WAIT_MS);
	wait_file_has(log, "stale-request lock=doc client=cl-b", H_WAIT_MS);
	assert_false(tutil_file_contains(log, "reconnected client=cl-b"));
	/*
	 * cl-a answers the new epoch's roll call, then lets go (once the
	 * recorder is back: it sees the new epoch's status).
	 */
	rec_expect(r, 0, 2 * H_WAIT_MS, STATUS, "state", "online", "epoch",
	    "#3");
	pub = pub_on(w, &b, "pub3");
	h_pub(pub, t_req, a_acq);
	at = rec_count(r);
	h_pub(pub, t_req,
	    h_fmt("{\"op\":\"release\",\"client\":\"cl-a\","
		  "\"session\":\"%s\"}",
		sa));
	/* Free, cl-b still waiting as disconnected, then gone: never held. */
	rec_expect(r, at, H_WAIT_MS, h_owner("doc"), "owner", "#null",
	    "queue.0.client", "cl-b", "queue.0.connected", "#false");
	rec_expect(r, at, H_SLOW_MS, h_owner("doc"), H_FREE);
	assert_false(tutil_file_contains(log, "grant lock=doc client=cl-b"));
	h_pass(w);
}

/*
 * The broker drops messages for a client whose queue is full; a dropped
 * message may be a request for mqlockd, which never hears of it.  mqlockd
 * watches the broker's drop counter ($SYS) and starts a roll call when it
 * rises, so everyone who holds or waits says so again.  Here the drops are
 * a frozen subscriber's: the counter is the broker's, not the client's.
 */
static void
test_broker_drops_start_roll_call(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct pbroker b = {.extra = "max_queued_messages 5\nsys_interval 1\n"};
	const char *sa = h_session();
	struct h_client *pub;
	struct h_proc *cd, *slow;
	struct rec *r;
	char *argv[12];
	size_t at;
	long long epoch;
	int n = 0, i;

	pbroker_start(w, &b);
	r = rec_new(w, b.uri, "rec", H_PREFIX "/#");
	cd = coord_spawn(w, b.uri, h_path(w, "p.db"), "--grace 1 --keepalive 2",
	    "mqlockd.log");
	(void)cd;
	at = rec_expect(r, 0, 2 * H_WAIT_MS, STATUS, "state", "online");
	epoch = h_int(rec_at(r, at), "epoch");
	pub = pub_on(w, &b, "pub");
	h_pub(pub, H_PREFIX "/doc/request",
	    h_fmt("{\"op\":\"acquire\",\"client\":\"cl-a\","
		  "\"session\":\"%s\"}",
		sa));
	rec_expect(r, at, H_WAIT_MS, h_events("cl-a"), "event", "granted");

	/* A subscriber that stops reading: its queue overflows. */
	argv[n++] = (char *)MOSQUITTO_SUB_BIN;
	argv[n++] = (char *)"-h";
	argv[n++] = (char *)"127.0.0.1";
	argv[n++] = (char *)"-p";
	argv[n++] = (char *)h_fmt("%d", b.port);
	argv[n++] = (char *)"-q";
	argv[n++] = (char *)"1";
	argv[n++] = (char *)"-t";
	argv[n++] = (char *)"noise/#";
	argv[n] = NULL;
	/*
	 * Its subscription is in place before it stops reading: it has
	 * printed the retained message that subscribing brings.
	 */
	h_publish(pub, "noise/ready", "ready", 5, 1, NULL);
	slow = h_spawn(w, argv, "slow.out");
	wait_file_has(h_path(w, "slow.out"), "ready", H_WAIT_MS);
	h_proc_kill(slow, SIGSTOP);
	for (i = 0; i < 200; i++)
		h_pub(pub, "noise/x", "0123456789");
	/* A new epoch: cl-a is asked to answer, and loses the lock if not. */
	at = rec_expect(r, at, 2 * H_WAIT_MS, STATUS, "state", "online",
	    "epoch", h_fmt("#%lld", epoch + 1));
	wait_file_has(h_path(w, "mqlockd.log"), "the broker dropped",
	    H_WAIT_MS);
	rec_expect(r, at, H_SLOW_MS, h_events("cl-a"), "event", "revoked",
	    "reason", "disconnect");
	h_proc_kill(slow, SIGKILL);
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_db_path_unusable, f_teardown),
	    cmocka_unit_test_teardown(test_db_corrupt, f_teardown),
	    cmocka_unit_test_teardown(test_db_in_use, f_teardown),
	    cmocka_unit_test_teardown(test_journal_write_failure, f_teardown),
	    cmocka_unit_test_teardown(test_kill9_during_stream, f_teardown),
	    cmocka_unit_test_teardown(test_kill9_loses_no_request, f_teardown),
	    cmocka_unit_test_teardown(test_down_requests_and_wills, f_teardown),
	    cmocka_unit_test_teardown(test_roll_call, f_teardown),
	    cmocka_unit_test_teardown(test_woken_holder_leaves_nothing_behind,
		f_teardown),
	    cmocka_unit_test_teardown(test_roll_call_release_goes_to_waiter,
		f_teardown),
	    cmocka_unit_test_teardown(
		test_restart_after_release_during_roll_call, f_teardown),
	    cmocka_unit_test_teardown(test_idle_deadline_floored, f_teardown),
	    cmocka_unit_test_teardown(test_grace_deadline_floored, f_teardown),
	    cmocka_unit_test_teardown(test_coordinator_frozen, f_teardown),
	    cmocka_unit_test_teardown(test_silent_clients_bounded_by_idle,
		f_teardown),
	    cmocka_unit_test_teardown(test_broker_sigterm_persistent,
		f_teardown),
	    cmocka_unit_test_teardown(test_old_save_replays_request,
		f_teardown),
	    cmocka_unit_test_teardown(test_broker_drops_start_roll_call,
		f_teardown),
	    cmocka_unit_test_teardown(test_broker_sigkill_session_lost,
		f_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
