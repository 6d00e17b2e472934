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

#define STATUS H_PREFIX "/_coordinator/status"
/* mosquitto_sub refuses a keepalive below 5 s; this one never expires. */
#define SLOW_KEEPALIVE 60
/* The file-size limit mqlockd's journal runs into in the write test. */
#define FSIZE_LIMIT (160 * 1024)

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

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Sleeps until the wall clock has passed ms (protocol ms). */
static void
sleep_until_wall(long long ms)
{
	long long now;

	while ((now = h_now_ms()) <= ms)
		nap_ms(ms - now + 1);
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
	rc = MQTTAsync_connect(r->mq, &cn);
	assert_int_equal(rc, MQTTASYNC_SUCCESS);

	end = mono_ms() + H_WAIT_MS;
	pthread_mutex_lock(&r->mu);
	while (r->subscribed == 0 && mono_ms() < end) {
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
	long long end = mono_ms() + ms;
	struct timespec ts;
	size_t have;

	pthread_mutex_lock(&r->mu);
	while (r->n <= n && mono_ms() < end) {
		long long e = mono_ms() + 50;

		ts.tv_sec = (time_t)(e / 1000);
		ts.tv_nsec = (long)(e % 1000) * 1000000L;
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
	}
	have = r->n;
	pthread_mutex_unlock(&r->mu);
	return have;
}

static int
json_value_is(const cJSON *j, const char *want)
{
	cJSON *w;
	int eq;

	if (j == NULL)
		return 0;
	if (want[0] != '#')
		return cJSON_IsString(j) && strcmp(j->valuestring, want) == 0;
	w = cJSON_Parse(want + 1);
	if (w == NULL)
		return 0;
	eq = cJSON_Compare(j, w, 1);
	cJSON_Delete(w);
	return eq;
}

/* Does m on topic match the key/value pairs (as in h_expect())? */
static int
msg_is(const struct h_msg *m, const char *topic, va_list ap)
{
	const char *k, *v;
	int ok = strcmp(m->topic, topic) == 0;

	while (ok && (k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (k[0] != '\0' && !json_value_is(h_get(m, k), v))
			ok = 0;
	}
	return ok;
}

static int
msg_matches(const struct h_msg *m, const char *topic, ...)
{
	va_list ap;
	int ok;

	va_start(ap, topic);
	ok = msg_is(m, topic, ap);
	va_end(ap);
	return ok;
}

/*
 * rec_find(r, from, ms, topic, key, value, ..., NULL): the index of the
 * first message at or after from on topic matching every pair, waiting up
 * to ms; -1 when none came.
 */
static long
rec_find_(struct rec *r, size_t from, int ms, const char *topic, ...)
{
	long long end = mono_ms() + ms;
	size_t i = from, n = rec_count(r);
	va_list ap;

	for (;;) {
		for (; i < n; i++) {
			int ok;

			va_start(ap, topic);
			ok = msg_is(rec_at(r, i), topic, ap);
			va_end(ap);
			if (ok)
				return (long)i;
		}
		if (mono_ms() >= end)
			return -1;
		n = rec_wait_more(r, n, (int)(end - mono_ms()));
	}
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

/* rec_find() that fails the test, showing what arrived. */
#define rec_expect(r, from, ms, ...) \
	rec_expect_(__LINE__, r, from, ms, __VA_ARGS__, (const char *)NULL)
#define rec_find(r, from, ms, ...) \
	rec_find_(r, from, ms, __VA_ARGS__, (const char *)NULL)

static size_t
rec_expect_(int line, struct rec *r, size_t from, int ms, const char *topic,
    ...)
{
	long long end = mono_ms() + ms;
	size_t i = from, n = rec_count(r);
	va_list ap;

	for (;;) {
		for (; i < n; i++) {
			int ok;

			va_start(ap, topic);
			ok = msg_is(rec_at(r, i), topic, ap);
			va_end(ap);
			if (ok)
				return i;
		}
		if (mono_ms() >= end)
			break;
		n = rec_wait_more(r, n, (int)(end - mono_ms()));
	}
	rec_dump(r, from);
	fail_msg("line %d: no message on %s as expected within %d ms (from "
		 "index %zu)",
	    line, topic, ms, from);
	return 0;
}

/* Processes and files --------------------------------------------------- */

/* The whole file (plus a NUL) and its length; NULL if unreadable. */
static char *
slurp_len(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *b;
	size_t n = 0, cap = 0, got;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			b = realloc(buf, cap);
			if (b == NULL)
				break;
			buf = b;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	if (buf != NULL)
		buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

static char *
slurp(const char *path)
{
	return slurp_len(path, NULL);
}

static int
file_has(const char *path, const char *needle)
{
	char *s = slurp(path);
	int found = s != NULL && strstr(s, needle) != NULL;

	free(s);
	return found;
}

/* Waits up to ms for needle to appear in the file at path. */
static void
wait_file_has(const char *path, const char *needle, int ms)
{
	long long end = mono_ms() + ms;

	while (!file_has(path, needle)) {
		if (mono_ms() >= end)
			fail_msg("%s: no \"%s\" within %d ms", path, needle,
			    ms);
		nap_ms(20);
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
	char *argv[40], *tok;
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
	for (tok = flags; *tok != '\0' && n < 38;) {
		if (*tok == ' ') {
			*tok++ = '\0';
			continue;
		}
		argv[n++] = tok;
		while (*tok != '\0' && *tok != ' ')
			tok++;
	}
	argv[n] = NULL;
	return h_spawn(w, argv, out);
}

/*
 * cli_start(w, uri, id, lock, wait, keepalive): `mqlock acquire` as
 * client id with a COMMAND that writes $MQLOCK_TOKEN to <dir>/<id>.tok
 * once it runs, and runs until <dir>/<id>.stop exists.
 */
static struct h_proc *
cli_start(struct h_world *w, const char *uri, const char *id, const char *lock,
    const char *wait, int keepalive)
{
	static const char script[] =
	    "echo \"$MQLOCK_TOKEN\" > \"$0.tmp\" && mv \"$0.tmp\" \"$0.tok\"; "
	    "while [ ! -e \"$0.stop\" ]; do sleep 0.05; done";
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
	s = slurp(path);
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
};

static int
tcp_accepts(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd == -1)
		return 0;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static int
pick_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

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
	long long end;
	FILE *f;

	if (b->starts == 0) {
		b->port = pick_port();
		snprintf(b->uri, sizeof(b->uri), "tcp://127.0.0.1:%d", b->port);
		snprintf(b->conf, sizeof(b->conf), "%s/pbroker.conf", h_dir(w));
		f = fopen(b->conf, "w");
		assert_non_null(f);
		fprintf(f,
		    "listener %d 127.0.0.1\n"
		    "allow_anonymous true\n"
		    "set_tcp_nodelay true\n"
		    "max_queued_messages 0\n"
		    "max_inflight_messages 100\n"
		    "persistence %s\n"
		    "persistence_location %s/\n"
		    "persistence_file pbroker.db\n"
		    "log_dest stdout\n"
		    "log_type all\n"
		    "log_timestamp_format %%H:%%M:%%S\n"
		    "%s",
		    b->port, b->persist ? "true" : "false", h_dir(w),
		    geteuid() == 0 ? "user root\n" : "");
		assert_int_equal(fclose(f), 0);
	}
	argv[0] = (char *)MOSQUITTO_BIN;
	argv[1] = (char *)"-c";
	argv[2] = b->conf;
	argv[3] = NULL;
	b->p = h_spawn(w, argv, "pbroker.out");
	end = mono_ms() + H_WAIT_MS;
	while (!tcp_accepts(b->port)) {
		if (mono_ms() >= end)
			fail_msg("mosquitto did not accept on port %d; see %s",
			    b->port, h_path(w, "pbroker.out"));
		nap_ms(10);
	}
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
	if (rc == 0 || !file_has(log, db) || !file_has(log, "error") ||
	    (!file_has(log, why1) && (why2 == NULL || !file_has(log, why2)))) {
		char *text = slurp(log);

		fail_msg("mqlockd --db %s: exit %d, expected non-zero and an "
			 "error naming the file and \\"%s\\"; it said:\n%s",
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
		after = slurp_len(path[i], &len);
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
	h_state(ctl, h_owner("c1"), H_WAIT_MS, "owner", "#null");
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
		long long end = mono_ms() + H_WAIT_MS;
		int answered = 0;

		snprintf(sess[k], sizeof(sess[k]), "%s", h_session());
		h_request(ctl, h_fmt("lk%zu", k), "acquire",
		    h_fmt("cl%zu", k), sess[k], NULL, NULL);
		while (!answered && fail_idx < 0) {
			size_t n = rec_count(r);

			for (; scan < n && fail_idx < 0; scan++) {
				struct h_msg *m = rec_at(r, scan);

				if (msg_matches(m, STATUS, "state", "offline",
					NULL))
					fail_idx = (long)scan;
				else if (msg_matches(m, h_events(h_fmt("cl%zu", k)),
					     "event", "granted", NULL)) {
					tok[k] = h_int(m, "token");
					answered = 1;
				}
			}
			if (mono_ms() >= end) {
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
	assert_true(file_has(h_path(w, "mqlockd.log"), "journal write failed"));

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
		long long t = grant(ctl, "after", "cl-after", h_session(), NULL);

		assert_true(t > top);
	}
	h_pass(w);
}
