/*
 * harness.c: see harness.h.
 *
 * Waiting: messages arrive on Paho's thread and are appended to a per-client
 * log under a mutex; waiters sleep on a condition variable (monotonic clock)
 * until a matching message is there or their deadline passes.  Processes the
 * harness started are polled with short naps only while waiting for them to
 * become ready or to exit.
 */
#include "harness.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <MQTTAsync.h>

#include "tutil.h"

#define H_MAX_PAIRS 16
#define H_FMT_SLOTS 16
#define H_FMT_SIZE 1024
#define H_SESSIONS 4096
#define H_LOG_TAIL 48000 /* bytes of each log printed on failure */
#define STATUS_TOPIC H_PREFIX "/_coordinator/status"

struct h_proc {
	pid_t pid;
	int running;
	int status;
	char name[64];
	char out[PATH_MAX];
	struct h_proc *next;
};

struct h_client {
	struct h_world *w;
	MQTTAsync mq;
	char id[256];
	char reply[300];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct h_msg *head;
	struct h_msg *tail;
	int lost;
	struct h_client *next;
};

struct h_world {
	char dir[PATH_MAX];
	int port;
	char uri[64];
	char flags[512];
	struct h_proc *broker;
	struct h_proc *coord;
	struct h_proc *procs;
	struct h_client *clients;
	struct h_client *ctl;
	int coord_starts;
	int seen_online;
	long long since;
	long long epoch;
	int nsubs;
	int passed;
	int coord_bad; /* wait status of a wrapped mqlockd that failed */
};

/* One pending Paho operation; heap-allocated so a late callback is safe. */
struct h_op {
	struct h_client *c;
	int done;
	int rc;
	int reason;
};

struct h_match {
	int n;
	const char *key[H_MAX_PAIRS];
	const char *val[H_MAX_PAIRS];
	h_pred *fn; /* and this, when not NULL */
	void *arg;
	const char *what;
};

/* The world of the running test, for the atexit() safety net. */
static struct h_world *h_live;

void
h_fail_at(const char *file, int line, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	print_error("%s\n", buf);
	_fail(file, line);
	abort(); /* _fail() does not return */
}

#define h_fail(...) h_fail_at(__FILE__, __LINE__, __VA_ARGS__)

void
h_filter(void)
{
	const char *f = getenv("MQLOCK_IT_FILTER");

	if (f != NULL && f[0] != '\0')
		cmocka_set_test_filter(f);
}

long long
h_now_ms(void)
{
	return tutil_wall_ms();
}

const char *
h_fmt(const char *fmt, ...)
{
	static char bufs[H_FMT_SLOTS][H_FMT_SIZE];
	static unsigned next;
	char *b = bufs[next++ % H_FMT_SLOTS];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, H_FMT_SIZE, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= H_FMT_SIZE)
		h_fail("h_fmt: result longer than %d bytes", H_FMT_SIZE - 1);
	return b;
}

const char *
h_events(const char *id)
{
	return h_fmt("%s/_clients/%s/events", H_PREFIX, id);
}

const char *
h_owner(const char *lock)
{
	return h_fmt("%s/%s/owner", H_PREFIX, lock);
}

const char *
h_path(const struct h_world *w, const char *name)
{
	return h_fmt("%s/%s", w->dir, name);
}

const char *
h_session(void)
{
	static char ring[H_SESSIONS][33];
	static unsigned next;
	static uint64_t s;
	uint64_t a, b;
	char *r;

	if (s == 0)
		s = (uint64_t)h_now_ms() * 6364136223846793005ULL ^
		    (uint64_t)getpid() << 32 ^ (uint64_t)tutil_mono_ms();
	a = tutil_rand(&s);
	b = tutil_rand(&s);
	r = ring[next++ % H_SESSIONS];
	snprintf(r, sizeof(ring[0]), "%016llx%016llx", (unsigned long long)a,
	    (unsigned long long)b);
	return r;
}

/* Processes ------------------------------------------------------------ */

static void
proc_reap(struct h_proc *p, int ms)
{
	long long end = tutil_mono_ms() + ms;
	pid_t r;

	while (p->running) {
		r = waitpid(p->pid, &p->status, WNOHANG);
		if (r == p->pid || (r == -1 && errno == ECHILD)) {
			p->running = 0;
			break;
		}
		if (tutil_mono_ms() >= end)
			break;
		tutil_nap_ms(5);
	}
}

static void
proc_kill_group(struct h_proc *p)
{
	if (!p->running)
		return;
	/* Each process leads its own group: take its children along. */
	kill(-p->pid, SIGCONT);
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
	proc_reap(p, 10000);
}

static void
kill_all(struct h_world *w)
{
	struct h_proc *p;

	for (p = w->procs; p != NULL; p = p->next)
		proc_kill_group(p);
}

static void
atexit_kill(void)
{
	if (h_live != NULL)
		kill_all(h_live);
}

struct h_proc *
h_spawn(struct h_world *w, char *const argv[], const char *out)
{
	struct h_proc *p = calloc(1, sizeof(*p));

	if (p == NULL)
		h_fail("out of memory");
	snprintf(p->name, sizeof(p->name), "%s", out);
	if (snprintf(p->out, sizeof(p->out), "%s/%s", w->dir, out) >=
	    (int)sizeof(p->out))
		h_fail("path too long: %s/%s", w->dir, out);
	p->pid = tutil_spawn(argv, p->out, 0);
	if (p->pid == -1)
		h_fail("start %s (output to %s): %s", argv[0], p->out,
		    strerror(errno));
	p->running = 1;
	p->next = w->procs;
	w->procs = p;
	return p;
}

void
h_proc_kill(struct h_proc *p, int sig)
{
	if (!p->running)
		h_fail("%s: not running, cannot send signal %d", p->name, sig);
	if (kill(p->pid, sig) == -1)
		h_fail("kill %s: %s", p->name, strerror(errno));
	if (sig == SIGKILL) {
		proc_reap(p, 10000);
		if (p->running)
			h_fail("%s: still running after SIGKILL", p->name);
	}
}

int
h_proc_wait(struct h_proc *p, int ms)
{
	proc_reap(p, ms);
	if (p->running)
		h_fail("%s: still running after %d ms", p->name, ms);
	if (!WIFEXITED(p->status))
		h_fail("%s: killed by signal %d", p->name,
		    WIFSIGNALED(p->status) ? WTERMSIG(p->status) : -1);
	return WEXITSTATUS(p->status);
}

/* Reads up to cap bytes of the end of path into a new string. */
static char *
read_tail(const char *path, long cap, long *skipped)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long size, from;
	size_t n;

	*skipped = 0;
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	from = size > cap ? size - cap : 0;
	*skipped = from;
	fseek(f, from, SEEK_SET);
	buf = malloc((size_t)(size - from) + 1);
	if (buf == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, (size_t)(size - from), f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

void
h_wait_file(const char *path, int ms)
{
	long long end = tutil_mono_ms() + ms;

	while (access(path, F_OK) != 0) {
		if (tutil_mono_ms() >= end)
			h_fail("%s did not appear within %d ms", path, ms);
		tutil_nap_ms(10);
	}
}

static void
print_file(const char *title, const char *path)
{
	long skipped;
	char *s = read_tail(path, H_LOG_TAIL, &skipped);

	fprintf(stderr, "---- %s (%s)%s ----\n", title, path,
	    skipped ? ", end only" : "");
	fprintf(stderr, "%s", s != NULL ? s : "(missing)\n");
	fprintf(stderr, "---- end of %s ----\n", title);
	free(s);
}

/* MQTT clients --------------------------------------------------------- */

static struct h_op *
op_new(struct h_client *c)
{
	struct h_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		h_fail("out of memory");
	op->c = c;
	return op;
}

static void
on_success(void *ctx, MQTTAsync_successData5 *r)
{
	struct h_op *op = ctx;
	struct h_client *c = op->c;

	/* One topic per SUBSCRIBE: its reason code is reasonCode. */
	pthread_mutex_lock(&c->mu);
	op->reason = r != NULL ? (int)r->reasonCode : 0;
	op->done = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void
on_failure(void *ctx, MQTTAsync_failureData5 *r)
{
	struct h_op *op = ctx;
	struct h_client *c = op->c;

	pthread_mutex_lock(&c->mu);
	op->rc = r != NULL && r->code != 0 ? r->code : -1;
	op->reason = r != NULL ? (int)r->reasonCode : 0;
	op->done = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void
abs_deadline(struct timespec *ts, long long end_mono)
{
	ts->tv_sec = (time_t)(end_mono / 1000);
	ts->tv_nsec = (long)(end_mono % 1000) * 1000000L;
}

/*
 * Paho's receive thread adds a new socket to its poll set only when the
 * current poll returns, which is up to a second later when the other
 * connections are quiet.  A QoS 1 publish on an established client makes
 * its PUBACK wake that poll.  Each kick waits for its PUBACK: kicks sent
 * every 20 ms without waiting made a TLS connect that followed a failed
 * one fail as well.
 */
static void
kick(struct h_client *k)
{
	h_pub(k, "h/kick", "k");
}

/*
 * Waits up to ms for op, kicking kicker (when not NULL) every 20 ms
 * meanwhile; fails the test when no answer comes.  Returns Paho's code (0
 * for success, -1 for a failure without one) and sets *reason to the
 * MQTT 5 reason code of the answer.  op is freed unless late.
 */
static int
op_wait(struct h_op *op, int ms, const char *what, struct h_client *kicker,
    int *reason)
{
	struct h_client *c = op->c;
	long long end = tutil_mono_ms() + ms, step;
	struct timespec ts;
	int rc;

	pthread_mutex_lock(&c->mu);
	while (!op->done) {
		step = tutil_mono_ms() + 20;
		if (kicker == NULL || step > end)
			step = end;
		abs_deadline(&ts, step);
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
			if (tutil_mono_ms() >= end)
				break;
			if (kicker != NULL) {
				/*
				 * Without c's lock: Paho may be calling c
				 * back under its own lock, which kicking
				 * needs too; and kick() may fail the test.
				 */
				pthread_mutex_unlock(&c->mu);
				kick(kicker);
				pthread_mutex_lock(&c->mu);
			}
		}
	}
	if (!op->done) {
		pthread_mutex_unlock(&c->mu);
		/* op stays allocated: its callback may still come. */
		h_fail("%s: %s: no answer within %d ms", c->id, what, ms);
	}
	rc = op->rc;
	*reason = op->reason;
	pthread_mutex_unlock(&c->mu);
	free(op);
	return rc;
}

static void
on_lost(void *ctx, char *cause)
{
	(void)cause;
	struct h_client *c = ctx;

	pthread_mutex_lock(&c->mu);
	c->lost = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static char *
dup_bytes(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		return NULL;
	if (n > 0)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static int
on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct h_client *c = ctx;
	struct h_msg *msg = calloc(1, sizeof(*msg));
	MQTTProperty *corr;
	size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);

	if (msg != NULL) {
		msg->topic = dup_bytes(topic, tl);
		msg->len = m->payloadlen;
		msg->payload = dup_bytes(m->payload, (size_t)m->payloadlen);
		msg->retained = m->retained;
		msg->at_ms = h_now_ms();
		if (msg->payload != NULL)
			msg->json = cJSON_ParseWithLength(msg->payload,
			    (size_t)msg->len);
		corr = MQTTProperties_getProperty(&m->properties,
		    MQTTPROPERTY_CODE_CORRELATION_DATA);
		if (corr != NULL) {
			msg->corr_len = corr->value.data.len;
			msg->corr = dup_bytes(corr->value.data.data,
			    (size_t)corr->value.data.len);
		}
		pthread_mutex_lock(&c->mu);
		if (c->tail != NULL)
			c->tail->next = msg;
		else
			c->head = msg;
		c->tail = msg;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

/* A client object with its Paho handle on uri; not connected yet. */
static struct h_client *
client_new(struct h_world *w, const char *uri, const char *id,
    const char *reply)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	pthread_condattr_t ca;
	struct h_client *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL)
		h_fail("out of memory");
	c->w = w;
	snprintf(c->id, sizeof(c->id), "%s", id);
	if (reply != NULL)
		snprintf(c->reply, sizeof(c->reply), "%s", reply);
	else
		snprintf(c->reply, sizeof(c->reply), "replies/%s", id);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->next = w->clients;
	w->clients = c;

	co.MQTTVersion = MQTTVERSION_5;
	co.maxBufferedMessages = 100000;
	rc = MQTTAsync_createWithOptions(&c->mq, uri, id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	if (rc != MQTTASYNC_SUCCESS)
		h_fail("%s: MQTTAsync_createWithOptions: %d", id, rc);
	rc = MQTTAsync_setCallbacks(c->mq, c, on_lost, on_message, NULL);
	if (rc != MQTTASYNC_SUCCESS)
		h_fail("%s: MQTTAsync_setCallbacks: %d", id, rc);
	return c;
}

/* Connects c to uri as login says; returns as h_client_try() does. */
static int
client_connect(struct h_client *c, const char *uri, const struct h_login *login)
{
	MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions so = MQTTAsync_SSLOptions_initializer;
	struct h_op *op = op_new(c);
	int rc, reason;

	if (strncmp(uri, "ssl://", 6) == 0) {
		so.trustStore = login->cafile;
		so.enableServerCertAuth = 1;
		so.verify = 1;
		cn.ssl = &so;
	}
	cn.username = login->user;
	cn.password = login->password;
	cn.keepAliveInterval = 30;
	cn.cleanstart = 1;
	cn.connectTimeout = 10;
	cn.maxInflight = 50;
	cn.onSuccess5 = on_success;
	cn.onFailure5 = on_failure;
	cn.context = op;
	rc = MQTTAsync_connect(c->mq, &cn);
	if (rc != MQTTASYNC_SUCCESS)
		h_fail("%s: MQTTAsync_connect: %d", c->id, rc);
	rc = op_wait(op, H_WAIT_MS, "connect", c->w->ctl, &reason);
	if (rc == 0 && reason < 0x80)
		return 0;
	/* A refusing CONNACK: Paho puts its reason code in the code. */
	if (reason >= 0x80)
		return reason;
	return rc >= 0x80 ? rc : -1;
}

int
h_client_try(struct h_world *w, const char *id, const struct h_login *login,
    struct h_client **c)
{
	const char *uri = login->uri != NULL ? login->uri : w->uri;

	*c = client_new(w, uri, id, login->reply);
	return client_connect(*c, uri, login);
}

struct h_client *
h_client_new(struct h_world *w, const char *id)
{
	static const struct h_login anonymous;
	struct h_client *c;
	int rc = h_client_try(w, id, &anonymous, &c);

	if (rc != 0)
		h_fail("%s: connect to %s failed: %d", id, w->uri, rc);
	h_sub(c, c->reply);
	return c;
}

struct h_client *
h_ctl(struct h_world *w)
{
	return w->ctl;
}

void
h_disconnect(struct h_client *c)
{
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;

	d.timeout = 1000;
	if (MQTTAsync_isConnected(c->mq))
		MQTTAsync_disconnect(c->mq, &d);
}

const char *
h_reply_topic(const struct h_client *c)
{
	return c->reply;
}

const char *
h_reply_for(const char *client)
{
	return h_fmt("replies/%s", client);
}

void
h_sub(struct h_client *c, const char *filter)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	struct h_op *op = op_new(c);
	int rc, reason;

	ro.onSuccess5 = on_success;
	ro.onFailure5 = on_failure;
	ro.context = op;
	rc = MQTTAsync_subscribe(c->mq, filter, 1, &ro);
	if (rc != MQTTASYNC_SUCCESS)
		h_fail("%s: subscribe %s: %d", c->id, filter, rc);
	rc = op_wait(op, H_WAIT_MS, "subscribe", NULL, &reason);
	if (rc != 0 || reason >= 0x80)
		h_fail("%s: subscribe %s refused: %d/0x%x", c->id, filter, rc,
		    reason);
}

int
h_publish_rc(struct h_client *c, const char *topic, const void *data,
    size_t len, int retained, const char *resp, const void *corr,
    size_t corr_len)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTProperty p;
	struct h_op *op;
	int rc, reason;

	if (resp != NULL) {
		p.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
		p.value.data.data = (char *)(uintptr_t)resp;
		p.value.data.len = (int)strlen(resp);
		if (MQTTProperties_add(&m.properties, &p) != 0)
			h_fail("MQTTProperties_add response topic");
	}
	if (corr != NULL) {
		p.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
		p.value.data.data = (char *)(uintptr_t)corr;
		p.value.data.len = (int)corr_len;
		if (MQTTProperties_add(&m.properties, &p) != 0)
			h_fail("MQTTProperties_add correlation data");
	}
	m.payload = (void *)(uintptr_t)(data != NULL ? data : "");
	m.payloadlen = (int)len;
	m.qos = 1;
	m.retained = retained;
	op = op_new(c);
	ro.onSuccess5 = on_success;
	ro.onFailure5 = on_failure;
	ro.context = op;
	rc = MQTTAsync_sendMessage(c->mq, topic, &m, &ro);
	MQTTProperties_free(&m.properties);
	if (rc != MQTTASYNC_SUCCESS)
		h_fail("%s: publish to %s: %d", c->id, topic, rc);
	rc = op_wait(op, H_WAIT_MS, "publish", NULL, &reason);
	/* Paho reports a refusing PUBACK as a failure with its reason. */
	if (rc != 0 && reason < 0x80)
		h_fail("%s: publish to %s failed: %d", c->id, topic, rc);
	return reason;
}

void
h_publish5(struct h_client *c, const char *topic, const void *data, size_t len,
    int retained, const char *resp, const void *corr, size_t corr_len)
{
	int reason =
	    h_publish_rc(c, topic, data, len, retained, resp, corr, corr_len);

	if (reason >= 0x80)
		h_fail("%s: publish to %s refused: 0x%x", c->id, topic, reason);
}

void
h_publish(struct h_client *c, const char *topic, const void *data, size_t len,
    int retained, const char *corr)
{
	h_publish5(c, topic, data, len, retained,
	    corr != NULL ? c->reply : NULL, corr,
	    corr != NULL ? strlen(corr) : 0);
}

void
h_pub(struct h_client *c, const char *topic, const char *text)
{
	h_publish(c, topic, text, strlen(text), 0, NULL);
}

void
h_request(struct h_client *c, const char *lock, const char *op,
    const char *client, const char *session, const char *extra,
    const char *corr)
{
	char topic[512];
	char body[2048];
	int n;

	snprintf(topic, sizeof(topic), "%s/%s/request", H_PREFIX, lock);
	n = snprintf(body, sizeof(body),
	    "{\"op\":\"%s\",\"client\":\"%s\",\"session\":\"%s\"%s%s}", op,
	    client, session, extra != NULL ? "," : "",
	    extra != NULL ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(body))
		h_fail("h_request: request too long");
	if (corr != NULL)
		h_publish5(c, topic, body, (size_t)n, 0, h_reply_for(client),
		    corr, strlen(corr));
	else
		h_publish(c, topic, body, (size_t)n, 0, NULL);
}

static void
client_free(struct h_client *c)
{
	struct h_msg *m, *next;

	if (c->mq != NULL) {
		h_disconnect(c);
		MQTTAsync_destroy(&c->mq);
	}
	for (m = c->head; m != NULL; m = next) {
		next = m->next;
		free(m->topic);
		free(m->payload);
		free(m->corr);
		cJSON_Delete(m->json);
		free(m);
	}
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Matching ------------------------------------------------------------- */

cJSON *
h_get(const struct h_msg *m, const char *path)
{
	char part[256];
	const char *p = path, *dot;
	cJSON *j = m->json;
	size_t n;

	if (path[0] == '\0')
		return j;
	while (j != NULL) {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof(part))
			return NULL;
		memcpy(part, p, n);
		part[n] = '\0';
		if (cJSON_IsArray(j) && n > 0 &&
		    strspn(part, "0123456789") == n)
			j = cJSON_GetArrayItem(j, (int)strtol(part, NULL, 10));
		else if (cJSON_IsObject(j))
			j = cJSON_GetObjectItemCaseSensitive(j, part);
		else
			return NULL;
		if (dot == NULL)
			return j;
		p = dot + 1;
	}
	return NULL;
}

static int
value_matches(const cJSON *j, const char *want)
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

/* One key/value pair of a match; H_EMPTY's key: an empty payload. */
static int
pair_matches(const struct h_msg *m, const char *k, const char *v)
{
	if (k[0] == '\0')
		return 1;
	if (strcmp(k, "@empty") == 0)
		return m->len == 0;
	return v != NULL && value_matches(h_get(m, k), v);
}

static int
msg_matches(const struct h_msg *m, const char *topic, const struct h_match *mt)
{
	int i;

	if (strcmp(m->topic, topic) != 0)
		return 0;
	for (i = 0; i < mt->n; i++) {
		if (!pair_matches(m, mt->key[i], mt->val[i]))
			return 0;
	}
	return mt->fn == NULL || mt->fn(m, mt->arg);
}

int
h_vmatches(const struct h_msg *m, const char *topic, va_list ap)
{
	const char *k, *v;
	int ok = strcmp(m->topic, topic) == 0;

	while (ok && (k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		ok = pair_matches(m, k, v);
	}
	return ok;
}

int
h_matches_(const struct h_msg *m, const char *topic, ...)
{
	va_list ap;
	int ok;

	va_start(ap, topic);
	ok = h_vmatches(m, topic, ap);
	va_end(ap);
	return ok;
}

static void
match_collect(struct h_match *mt, va_list ap, const char *file, int line)
{
	const char *k;

	mt->n = 0;
	mt->fn = NULL;
	mt->arg = NULL;
	mt->what = NULL;
	while ((k = va_arg(ap, const char *)) != NULL) {
		if (mt->n == H_MAX_PAIRS)
			h_fail_at(file, line, "too many match pairs");
		mt->key[mt->n] = k;
		mt->val[mt->n] = va_arg(ap, const char *);
		if (mt->val[mt->n] == NULL)
			h_fail_at(file, line, "match key %s has no value", k);
		mt->n++;
	}
}

static void
match_describe(char *buf, size_t size, const struct h_match *mt)
{
	size_t used = 0;
	int i, n;

	buf[0] = '\0';
	for (i = 0; i < mt->n && used < size; i++) {
		if (mt->key[i][0] == '\0')
			continue;
		n = snprintf(buf + used, size - used, "%s%s=%s",
		    used ? " " : "", mt->key[i], mt->val[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (mt->what != NULL)
		snprintf(buf, size, "%s", mt->what);
	else if (buf[0] == '\0')
		snprintf(buf, size, "(anything)");
}

/* Lists what c received on topic; call with c->mu held. */
static void
log_describe(char *buf, size_t size, struct h_client *c, const char *topic)
{
	struct h_msg *m;
	size_t used = 0;
	int n, count = 0;

	buf[0] = '\0';
	for (m = c->head; m != NULL; m = m->next) {
		if (topic != NULL && strcmp(m->topic, topic) != 0)
			continue;
		count++;
		if (used + 200 >= size)
			continue;
		n = snprintf(buf + used, size - used, "  %s%s%s %.*s\n",
		    m->consumed ? "(seen) " : "",
		    m->retained ? "(retained) " : "",
		    topic == NULL ? m->topic : "", m->len > 600 ? 600 : m->len,
		    m->payload);
		if (n > 0)
			used += (size_t)n;
	}
	if (count == 0)
		snprintf(buf, size, "  (nothing)\n");
}

/*
 * The first unconsumed message on topic matching mt, or NULL; with upto,
 * every earlier message on topic is consumed along with it.  c->mu held.
 */
static struct h_msg *
take(struct h_client *c, const char *topic, const struct h_match *mt, int upto)
{
	struct h_msg *m, *e;

	for (m = c->head; m != NULL; m = m->next) {
		if (m->consumed || !msg_matches(m, topic, mt))
			continue;
		m->consumed = 1;
		for (e = c->head; upto && e != m; e = e->next)
			if (strcmp(e->topic, topic) == 0)
				e->consumed = 1;
		return m;
	}
	return NULL;
}

static struct h_msg *
expect_mt(const char *file, int line, struct h_client *c, const char *topic,
    int ms, int upto, struct h_match mt)
{
	char want[1024];
	char got[6000];
	struct timespec ts;
	struct h_msg *m;

	abs_deadline(&ts, tutil_mono_ms() + ms);
	pthread_mutex_lock(&c->mu);
	while ((m = take(c, topic, &mt, upto)) == NULL) {
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
			/* One last look: the wait may end with it in. */
			m = take(c, topic, &mt, upto);
			break;
		}
	}
	if (m != NULL) {
		pthread_mutex_unlock(&c->mu);
		return m;
	}
	log_describe(got, sizeof(got), c, topic);
	pthread_mutex_unlock(&c->mu);
	match_describe(want, sizeof(want), &mt);
	h_fail_at(file, line,
	    "%s: no message on %s matching {%s} within %d ms; "
	    "received there:\n%s",
	    c->id, topic, want, ms, got);
}

static struct h_msg *
expect(const char *file, int line, struct h_client *c, const char *topic,
    int ms, int upto, va_list ap)
{
	struct h_match mt;

	match_collect(&mt, ap, file, line);
	return expect_mt(file, line, c, topic, ms, upto, mt);
}

struct h_msg *
h_state_fn_(const char *file, int line, struct h_client *c, const char *topic,
    int ms, h_pred *fn, void *arg, const char *what)
{
	struct h_match mt;

	mt.n = 0;
	mt.fn = fn;
	mt.arg = arg;
	mt.what = what;
	return expect_mt(file, line, c, topic, ms, 1, mt);
}

struct h_msg *
h_expect_(const char *file, int line, struct h_client *c, const char *topic,
    int ms, ...)
{
	struct h_msg *m;
	va_list ap;

	va_start(ap, ms);
	m = expect(file, line, c, topic, ms, 0, ap);
	va_end(ap);
	return m;
}

struct h_msg *
h_state_(const char *file, int line, struct h_client *c, const char *topic,
    int ms, ...)
{
	struct h_msg *m;
	va_list ap;

	va_start(ap, ms);
	m = expect(file, line, c, topic, ms, 1, ap);
	va_end(ap);
	return m;
}

void
h_expect_none_(const char *file, int line, struct h_client *c,
    const char *topic, int ms, ...)
{
	char want[1024];
	char got[6000];
	struct h_match mt;
	struct timespec ts;
	struct h_msg *m, *bad = NULL;
	va_list ap;

	va_start(ap, ms);
	match_collect(&mt, ap, file, line);
	va_end(ap);
	abs_deadline(&ts, tutil_mono_ms() + ms);
	pthread_mutex_lock(&c->mu);
	for (;;) {
		for (m = c->head; m != NULL && bad == NULL; m = m->next)
			if (!m->consumed && msg_matches(m, topic, &mt))
				bad = m;
		if (bad != NULL || ms <= 0)
			break;
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
			for (m = c->head; m != NULL && bad == NULL; m = m->next)
				if (!m->consumed && msg_matches(m, topic, &mt))
					bad = m;
			break;
		}
	}
	if (bad == NULL) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	log_describe(got, sizeof(got), c, topic);
	pthread_mutex_unlock(&c->mu);
	match_describe(want, sizeof(want), &mt);
	h_fail_at(file, line,
	    "%s: unexpected message on %s matching {%s}: %.*s\n"
	    "received there:\n%s",
	    c->id, topic, want, bad->len > 600 ? 600 : bad->len, bad->payload,
	    got);
}

struct h_msg *
h_last_(const char *file, int line, struct h_client *c, const char *topic)
{
	struct h_msg *m, *last = NULL;

	pthread_mutex_lock(&c->mu);
	for (m = c->head; m != NULL; m = m->next)
		if (strcmp(m->topic, topic) == 0)
			last = m;
	pthread_mutex_unlock(&c->mu);
	if (last == NULL)
		h_fail_at(file, line, "%s: nothing received on %s", c->id,
		    topic);
	return last;
}

void
h_drain(struct h_client *c, const char *topic)
{
	struct h_msg *m;

	pthread_mutex_lock(&c->mu);
	for (m = c->head; m != NULL; m = m->next)
		if (topic == NULL || strcmp(m->topic, topic) == 0)
			m->consumed = 1;
	pthread_mutex_unlock(&c->mu);
}

int
h_count(struct h_client *c, const char *topic)
{
	struct h_msg *m;
	int n = 0;

	pthread_mutex_lock(&c->mu);
	for (m = c->head; m != NULL; m = m->next)
		if (topic == NULL || strcmp(m->topic, topic) == 0)
			n++;
	pthread_mutex_unlock(&c->mu);
	return n;
}

int
h_forbidden_(const char *file, int line, struct h_client *c, int ms,
    h_pred *bad, void *arg, const char *what)
{
	char got[6000];
	struct h_msg *m;
	int n = 0;

	if (ms > 0)
		tutil_nap_ms(ms); /* a bounded check that nothing comes */
	pthread_mutex_lock(&c->mu);
	for (m = c->head; m != NULL; m = m->next)
		n++;
	for (m = c->head; m != NULL; m = m->next)
		if (bad(m, arg))
			break;
	if (m == NULL) {
		pthread_mutex_unlock(&c->mu);
		return n;
	}
	log_describe(got, sizeof(got), c, NULL);
	pthread_mutex_unlock(&c->mu);
	h_fail_at(file, line, "%s received %s: %s %.*s\nreceived in all:\n%s",
	    c->id, what, m->topic, m->len > 600 ? 600 : m->len, m->payload,
	    got);
}

long long
h_int_(const char *file, int line, const struct h_msg *m, const char *path)
{
	cJSON *j = h_get(m, path);
	double d;

	if (!cJSON_IsNumber(j))
		h_fail_at(file, line, "%s: member %s is not a number in %s",
		    m->topic, path, m->payload);
	d = j->valuedouble;
	if (d != (double)(long long)d)
		h_fail_at(file, line, "%s: member %s is not an integer in %s",
		    m->topic, path, m->payload);
	return (long long)d;
}

const char *
h_str_(const char *file, int line, const struct h_msg *m, const char *path)
{
	cJSON *j = h_get(m, path);

	if (!cJSON_IsString(j))
		h_fail_at(file, line, "%s: member %s is not a string in %s",
		    m->topic, path, m->payload);
	return j->valuestring;
}

void
h_keys_(const char *file, int line, const struct h_msg *m, const char *path,
    const char *names)
{
	char name[128];
	const char *p = names, *comma;
	cJSON *obj = h_get(m, path), *it;
	int want = 0, have = 0;
	size_t n;

	if (!cJSON_IsObject(obj))
		h_fail_at(file, line, "%s: %s is not an object in %s", m->topic,
		    path[0] ? path : "payload", m->payload);
	while (*p != '\0') {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n >= sizeof(name))
			h_fail_at(file, line, "h_keys: name too long");
		memcpy(name, p, n);
		name[n] = '\0';
		if (cJSON_GetObjectItemCaseSensitive(obj, name) == NULL)
			h_fail_at(file, line, "%s: %s lacks member \"%s\": %s",
			    m->topic, path[0] ? path : "payload", name,
			    m->payload);
		want++;
		p = comma != NULL ? comma + 1 : p + n;
	}
	cJSON_ArrayForEach(it, obj)
	{
		have++;
	}
	if (have != want)
		h_fail_at(file, line,
		    "%s: %s has %d members, expected exactly {%s}: %s",
		    m->topic, path[0] ? path : "payload", have, names,
		    m->payload);
}

/* World ---------------------------------------------------------------- */

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) == EOF || fclose(f) != 0)
		h_fail("write %s: %s", path, strerror(errno));
}

/* Starts mosquitto on a free port; returns 0, or -1 if it died at once. */
static int
broker_try(struct h_world *w)
{
	char conf[PATH_MAX + 16], text[PATH_MAX + 512];
	char *argv[4];

	w->port = tutil_free_port();
	if (w->port == -1)
		h_fail("no free port: %s", strerror(errno));
	snprintf(w->uri, sizeof(w->uri), "tcp://127.0.0.1:%d", w->port);
	snprintf(conf, sizeof(conf), "%s/mosquitto.conf", w->dir);
	snprintf(text, sizeof(text),
	    "listener %d 127.0.0.1\n"
	    "allow_anonymous true\n"
	    "set_tcp_nodelay true\n"
	    "max_queued_messages 0\n"
	    "max_inflight_messages 100\n"
	    "persistence false\n"
	    "log_dest file %s/mosquitto.log\n"
	    "log_type all\n"
	    "log_timestamp_format %%H:%%M:%%S\n"
	    "%s",
	    w->port, w->dir, geteuid() == 0 ? "user root\n" : "");
	write_file(conf, text);
	argv[0] = (char *)MOSQUITTO_BIN;
	argv[1] = (char *)"-c";
	argv[2] = conf;
	argv[3] = NULL;
	w->broker = h_spawn(w, argv, "mosquitto.out");
	if (tutil_wait_port(w->port, w->broker->pid, H_WAIT_MS) == 0)
		return 0;
	if (errno != ECHILD)
		h_fail("mosquitto did not accept on port %d", w->port);
	proc_reap(w->broker, 0);
	return -1; /* most likely the port was taken */
}

struct h_world *
h_world_new(void **state, const char *flags)
{
	struct h_world *w = calloc(1, sizeof(*w));
	const char *tmp = getenv("TMPDIR");
	int tries;

	if (w == NULL)
		h_fail("out of memory");
	*state = w;
	if (h_live == NULL)
		atexit(atexit_kill);
	h_live = w;
	signal(SIGPIPE, SIG_IGN);
	snprintf(w->dir, sizeof(w->dir), "%s/mqlock-it-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(w->dir) == NULL)
		h_fail("mkdtemp %s: %s", w->dir, strerror(errno));
	/* mosquitto may run as another user when started by root. */
	chmod(w->dir, 0755);
	snprintf(w->flags, sizeof(w->flags), "%s", flags != NULL ? flags : "");
	w->since = -1;
	w->epoch = -1;
	for (tries = 0; broker_try(w) != 0; tries++) {
		if (tries == 5)
			h_fail("mosquitto did not start: %s/mosquitto.out",
			    w->dir);
	}
	/*
	 * Replies go to the requester's space, and ctl asks for many
	 * clients: it reads all of replies/ (its own reply topic included;
	 * a second, overlapping subscription would deliver MQTT 5
	 * duplicates).
	 */
	{
		static const struct h_login anonymous;
		struct h_client *ctl;

		/* (ctl kicks others' connects: set it once it is up.) */
		if (h_client_try(w, "ctl", &anonymous, &ctl) != 0)
			h_fail("ctl: connect to %s failed", w->uri);
		w->ctl = ctl;
	}
	h_sub(w->ctl, "replies/#");
	h_sub(w->ctl, STATUS_TOPIC);
	h_sub(w->ctl, H_PREFIX "/+/owner");
	h_sub(w->ctl, H_PREFIX "/_clients/+/events");
	return w;
}

struct h_world *
h_world_start(void **state, const char *flags)
{
	struct h_world *w = h_world_new(state, flags);

	h_coord_start(w);
	return w;
}

int
h_words(char *s, char **argv, int n, int max)
{
	while (*s != '\0' && n < max) {
		if (*s == ' ') {
			s++;
			continue;
		}
		argv[n++] = s;
		while (*s != '\0' && *s != ' ')
			s++;
		if (*s == ' ')
			*s++ = '\0';
	}
	return n;
}

int
h_coord_argv(char **argv, char *buf, size_t size, const char *uri,
    const char *db)
{
	const char *wrapper = getenv("MQLOCK_IT_WRAPPER");
	int n;

	/*
	 * $MQLOCK_IT_WRAPPER: words run in front of mqlockd, the first one a
	 * path ("/usr/bin/valgrind --error-exitcode=99 ..."): no PATH search.
	 */
	snprintf(buf, size, "%s", wrapper != NULL ? wrapper : "");
	n = h_words(buf, argv, 0, H_WRAPPER_WORDS);
	argv[n++] = (char *)MQLOCKD_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = (char *)(uintptr_t)uri;
	argv[n++] = (char *)"--db";
	argv[n++] = (char *)(uintptr_t)db;
	argv[n++] = (char *)"--log-level";
	argv[n++] = (char *)"debug";
	return n;
}

/* Is m an online status newer than the last one seen? */
static int
status_is_new_online(const struct h_world *w, const struct h_msg *m)
{
	cJSON *st = h_get(m, "state"), *since = h_get(m, "since"),
	      *epoch = h_get(m, "epoch");

	if (strcmp(m->topic, STATUS_TOPIC) != 0 || !cJSON_IsString(st) ||
	    strcmp(st->valuestring, "online") != 0)
		return 0;
	if (!w->seen_online)
		return 1;
	return (cJSON_IsNumber(epoch) && epoch->valuedouble > w->epoch) ||
	    (cJSON_IsNumber(since) && since->valuedouble > w->since);
}

void
h_coord_start(struct h_world *w)
{
	char *argv[96];
	char wrapper[1024];
	char flags[sizeof(w->flags)];
	char db[PATH_MAX + 16], marker[128], logpath[PATH_MAX + 16];
	struct h_msg *m, *found = NULL;
	struct timespec ts;
	long long end;
	int n;
	FILE *f;

	if (w->coord != NULL && w->coord->running)
		h_fail("mqlockd is already running");
	snprintf(db, sizeof(db), "%s/mqlock.db", w->dir);
	n = h_coord_argv(argv, wrapper, sizeof(wrapper), w->uri, db);
	argv[n++] = (char *)"--prefix";
	argv[n++] = (char *)H_PREFIX;
	snprintf(flags, sizeof(flags), "%s", w->flags);
	n = h_words(flags, argv, n, 95);
	argv[n] = NULL;

	/* Restarts share one log; mark where each run begins. */
	snprintf(logpath, sizeof(logpath), "%s/mqlockd.log", w->dir);
	snprintf(marker, sizeof(marker),
	    "==== harness: mqlockd start %d ====\n", ++w->coord_starts);
	f = fopen(logpath, "a");
	if (f != NULL) {
		fputs(marker, f);
		fclose(f);
	}
	w->coord = h_spawn(w, argv, "mqlockd.log");

	end = tutil_mono_ms() + 2 * H_WAIT_MS;
	pthread_mutex_lock(&w->ctl->mu);
	while (found == NULL) {
		for (m = w->ctl->head; m != NULL && found == NULL; m = m->next)
			if (!m->consumed && status_is_new_online(w, m))
				found = m;
		if (found != NULL)
			break;
		pthread_mutex_unlock(&w->ctl->mu);
		proc_reap(w->coord, 0);
		if (!w->coord->running)
			h_fail("mqlockd exited (0x%x) before it was online",
			    w->coord->status);
		if (tutil_mono_ms() >= end)
			h_fail("mqlockd published no new online status within "
			       "%d ms",
			    2 * H_WAIT_MS);
		abs_deadline(&ts, tutil_mono_ms() + 50);
		pthread_mutex_lock(&w->ctl->mu);
		pthread_cond_timedwait(&w->ctl->cv, &w->ctl->mu, &ts);
	}
	for (m = w->ctl->head; m != NULL; m = m->next)
		if (strcmp(m->topic, STATUS_TOPIC) == 0)
			m->consumed = 1;
	pthread_mutex_unlock(&w->ctl->mu);
	w->seen_online = 1;
	if (cJSON_IsNumber(h_get(found, "epoch")))
		w->epoch = (long long)h_get(found, "epoch")->valuedouble;
	if (cJSON_IsNumber(h_get(found, "since")))
		w->since = (long long)h_get(found, "since")->valuedouble;
}

/*
 * Under $MQLOCK_IT_WRAPPER (a memory checker), mqlockd's exit status after
 * SIGTERM is the checker's verdict: anything but 0 fails the test, at the
 * latest in h_teardown().
 */
static int
wrapped(void)
{
	const char *v = getenv("MQLOCK_IT_WRAPPER");

	return v != NULL && v[0] != '\0';
}

static void
coord_verdict(struct h_world *w)
{
	if (!w->coord->running && wrapped() &&
	    (!WIFEXITED(w->coord->status) ||
		WEXITSTATUS(w->coord->status) != 0))
		w->coord_bad = w->coord->status != 0 ? w->coord->status : -1;
}

int
h_coord_stop(struct h_world *w, int sig)
{
	if (w->coord == NULL || !w->coord->running)
		h_fail("mqlockd is not running");
	if (kill(w->coord->pid, sig) == -1)
		h_fail("kill mqlockd: %s", strerror(errno));
	proc_reap(w->coord, 2 * H_WAIT_MS);
	if (w->coord->running)
		h_fail("mqlockd still running %d ms after signal %d",
		    2 * H_WAIT_MS, sig);
	if (sig == SIGTERM)
		coord_verdict(w);
	return w->coord->status;
}

long long
h_coord_epoch(const struct h_world *w)
{
	return w->epoch;
}

const char *
h_uri(const struct h_world *w)
{
	return w->uri;
}

const char *
h_dir(const struct h_world *w)
{
	return w->dir;
}

void
h_pass(struct h_world *w)
{
	w->passed = 1;
}

struct h_proc *
h_sub_spawn(struct h_world *w, const struct h_sub_opts *o, const char *out)
{
	char port[16], ka[16], will[512], events[512];
	char *argv[40];
	int n = 0;

	snprintf(port, sizeof(port), "%d", o->port);
	snprintf(ka, sizeof(ka), "%d", o->keepalive);
	if (o->conn >= 0)
		snprintf(will, sizeof(will),
		    "{\"session\":\"%s\",\"conn\":%lld}", o->session, o->conn);
	else
		snprintf(will, sizeof(will), "{\"session\":\"%s\"}",
		    o->session);
	snprintf(events, sizeof(events), "%s/_clients/%s/events", H_PREFIX,
	    o->id);
	argv[n++] = (char *)MOSQUITTO_SUB_BIN;
	argv[n++] = (char *)"-h";
	argv[n++] = (char *)"127.0.0.1";
	argv[n++] = (char *)"-p";
	argv[n++] = port;
	if (o->cafile != NULL) {
		argv[n++] = (char *)"--cafile";
		argv[n++] = (char *)(uintptr_t)o->cafile;
	}
	if (o->user != NULL) {
		argv[n++] = (char *)"-u";
		argv[n++] = (char *)(uintptr_t)o->user;
		argv[n++] = (char *)"-P";
		argv[n++] = (char *)(uintptr_t)o->password;
	}
	argv[n++] = (char *)"-V";
	argv[n++] = (char *)"5";
	argv[n++] = (char *)"-q";
	argv[n++] = (char *)"1";
	argv[n++] = (char *)"-i";
	argv[n++] = (char *)(uintptr_t)o->id;
	argv[n++] = (char *)"-k";
	argv[n++] = ka;
	argv[n++] = (char *)"--will-topic";
	argv[n++] = (char *)(uintptr_t)o->will_topic;
	argv[n++] = (char *)"--will-qos";
	argv[n++] = (char *)"1";
	argv[n++] = (char *)"--will-payload";
	argv[n++] = will;
	argv[n++] = (char *)"-t";
	argv[n++] = events;
	argv[n++] = (char *)"-t";
	argv[n++] = (char *)(uintptr_t)o->topic;
	argv[n++] = (char *)"-v";
	argv[n] = NULL;
	return h_spawn(w, argv, out);
}

struct h_proc *
h_sub_proc(struct h_world *w, const char *id, const char *session,
    long long conn, int keepalive)
{
	char willtopic[512], probe[512], out[300], mark[300];
	struct h_sub_opts o = {0};
	struct h_proc *p;
	long long end;

	snprintf(willtopic, sizeof(willtopic), "%s/_clients/%s/will", H_PREFIX,
	    id);
	snprintf(probe, sizeof(probe), "h/probe/%s", id);
	snprintf(out, sizeof(out), "sub-%s-%d.out", id, ++w->nsubs);
	snprintf(mark, sizeof(mark), "probe-%s-%d", id, w->nsubs);
	o.port = w->port;
	o.id = id;
	o.keepalive = keepalive;
	o.will_topic = willtopic;
	o.session = session;
	o.conn = conn;
	o.topic = probe;
	p = h_sub_spawn(w, &o, out);

	/*
	 * Both topics are in one SUBSCRIBE: once a probe comes through, the
	 * events subscription is in place too.
	 */
	end = tutil_mono_ms() + H_WAIT_MS;
	while (!tutil_file_contains(p->out, mark)) {
		proc_reap(p, 0);
		if (!p->running)
			h_fail("mosquitto_sub %s exited; see %s", id, p->out);
		if (tutil_mono_ms() >= end)
			h_fail("mosquitto_sub %s not subscribed within %d ms",
			    id, H_WAIT_MS);
		h_publish(w->ctl, probe, mark, strlen(mark), 0, NULL);
		tutil_nap_ms(50);
	}
	return p;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

int
h_teardown(void **state)
{
	struct h_world *w = *state;
	struct h_client *c, *next;
	struct h_proc *p, *pnext;
	int rc = 0;

	if (w == NULL)
		return 0;
	/*
	 * A wrapped mqlockd still running is stopped cleanly, so that its
	 * checker reports (one that already exited by itself is not judged).
	 */
	if (wrapped() && w->coord != NULL)
		proc_reap(w->coord, 0);
	if (wrapped() && w->coord != NULL && w->coord->running) {
		kill(w->coord->pid, SIGTERM);
		proc_reap(w->coord, 120000);
		coord_verdict(w);
	}
	if (w->coord_bad != 0) {
		fprintf(stderr,
		    "==== mqlockd under \"%s\" did not exit 0 after SIGTERM "
		    "(wait status 0x%x) ====\n",
		    getenv("MQLOCK_IT_WRAPPER"), (unsigned)w->coord_bad);
		w->passed = 0;
		rc = -1;
	}
	if (!w->passed) {
		fprintf(stderr, "==== test failed; world %s, broker %s ====\n",
		    w->dir, w->uri);
		print_file("mosquitto log", h_path(w, "mosquitto.log"));
		print_file("mqlockd log", h_path(w, "mqlockd.log"));
		for (p = w->procs; p != NULL; p = p->next)
			if (strncmp(p->name, "mosquitto.", 10) != 0 &&
			    strcmp(p->name, "mqlockd.log") != 0)
				print_file(p->name, p->out);
	}
	for (c = w->clients; c != NULL; c = next) {
		next = c->next;
		client_free(c);
	}
	kill_all(w);
	for (p = w->procs; p != NULL; p = pnext) {
		pnext = p->next;
		free(p);
	}
	if (getenv("MQLOCK_IT_KEEP") == NULL)
		nftw(w->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		fprintf(stderr, "kept %s\n", w->dir);
	if (h_live == w)
		h_live = NULL;
	free(w);
	*state = NULL;
	return rc;
}
