/*
 * test_sec_flood.c: hostile input in bulk (issue "Let no one in where they
 * don't belong", item 3; topics.md "Guarantees": bad input changes nothing).
 *
 * Four clients publish 100,000 malformed and oversized messages in all at
 * mqlockd, over loopback, on every topic it reads, while legitimate
 * clients keep acquiring, queueing for and releasing locks.  The test
 * shows that
 *   - every legitimate request is answered throughout (within a generous
 *     deadline; the worst latency is printed, not judged),
 *   - mqlockd's resident memory stays bounded: under an absolute bound,
 *     and no higher in the second half of the flood than in the first
 *     (plus slack), which steady growth would break,
 *   - its log stays small: rejected input is logged at a limited rate,
 *     and the lines it did write plus the ones it counted as suppressed
 *     add up to at least every bad message that names no client,
 *   - it stays online.
 * The broker is the harness's (no packet size limit), so mqlockd itself
 * receives payloads up to 200 KB.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <MQTTAsync.h>

#include "sec.h"
#include "tutil.h"

#define FLOODERS 4
#define FLOOD_TOTAL 100000
#define WINDOW 64       /* unacknowledged publishes per flooder */
#define HUGE_MAX 200000 /* the largest payload sent */
#define PAIRS 4         /* legitimate pairs of clients */
#define PAIR_GAP_MS 100 /* keeps each client far below --rate 50 */
#define ANSWER_MS 30000 /* a legitimate answer must come by then */
#define FLOOD_DEADLINE_MS 180000
#define RSS_LIMIT_KB (200 * 1024)
#define RSS_SLACK_KB (16 * 1024)
#define LOG_LIMIT (1024 * 1024)

/* What each kind of bad message is; see make_message(). */
enum kind {
	K_GARBAGE,     /* random bytes */
	K_NOT_OBJECT,  /* JSON, but not an object */
	K_TRUNCATED,   /* a request cut short */
	K_NESTED,      /* 20,000 nested arrays */
	K_BAD_CLIENT,  /* a client id no one can have */
	K_WRONG_TYPES, /* valid client, fields of the wrong type */
	K_BAD_SESSION, /* valid client, session too short */
	K_TOO_LARGE,   /* valid client, 4 KiB to 16 KiB */
	K_HUGE,        /* over 64 KiB: not even parsed */
	K_BAD_LOCK,    /* an invalid lock id in the topic */
	K_BAD_REPLY,   /* valid request, response topic with a wildcard */
	K_BAD_CORR,    /* valid request, 129+ bytes of correlation data */
	K_WILL,        /* a will that is not a will */
	K_ADMIN,       /* an admin command that is not one */
	K_RETAINED,    /* a valid request published retained: ignored */
	K_KINDS
};

/*
 * Kinds whose rejection mqlockd always logs (through its rate-limited
 * log): they name no client, so no per-client rate limit hides them.
 */
static const int always_logged[K_KINDS] = {
    [K_GARBAGE] = 1,
    [K_NOT_OBJECT] = 1,
    [K_TRUNCATED] = 1,
    [K_NESTED] = 1,
    [K_BAD_CLIENT] = 1,
    [K_HUGE] = 1,
    [K_WILL] = 1,
    [K_ADMIN] = 1,
};

struct flooder {
	int k;
	const char *uri;
	MQTTAsync mq;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int outstanding;
	int lost;
	long failed;
	long sent;
	long logged_min; /* messages of always_logged kinds */
	long bytes;
	uint64_t rng;
	char *buf;
	char err[256];
};

static atomic_long flood_sent;
static atomic_int flood_done;
static atomic_int flooding; /* 1 while the flooders publish */

static void
pub_done(void *ctx, int failed)
{
	struct flooder *f = ctx;

	pthread_mutex_lock(&f->mu);
	f->outstanding--;
	if (failed)
		f->failed++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static void
on_pub_ok(void *ctx, MQTTAsync_successData5 *r)
{
	pub_done(ctx, r != NULL && r->reasonCode >= 0x80);
}

static void
on_pub_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	(void)r;
	pub_done(ctx, 1);
}

static void
on_lost(void *ctx, char *cause)
{
	struct flooder *f = ctx;

	(void)cause;
	pthread_mutex_lock(&f->mu);
	f->lost = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static int
on_message(void *ctx, char *topic, int len, MQTTAsync_message *m)
{
	(void)ctx;
	(void)len;
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void
on_connect(void *ctx, MQTTAsync_successData5 *r)
{
	(void)r;
	pub_done(ctx, 0);
}

static void
on_connect_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	(void)r;
	pub_done(ctx, 1);
}

/* Fills f->buf with n random bytes. */
static void
random_bytes(struct flooder *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		f->buf[i] = (char)(tutil_rand(&f->rng) & 0xff);
}

/* Fills f->buf with n bytes of printable filler. */
static void
filler(struct flooder *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		f->buf[i] = (char)('a' + tutil_rand(&f->rng) % 26);
}

/*
 * Message i of flooder f: its kind, topic, payload (in f->buf, *len bytes)
 * and MQTT 5 extras.  Client ids that are valid come from a set of 64 per
 * flooder, so the per-client rate limit comes into play.
 */
static enum kind
make_message(struct flooder *f, long i, char *topic, size_t tsize, size_t *len,
    int *retained, char *resp, size_t rsize, size_t *corr_len)
{
	uint64_t r = tutil_rand(&f->rng);
	unsigned pick = (unsigned)(r % 1000);
	enum kind k;
	char client[64];
	int n = 0;

	snprintf(client, sizeof(client), "fl-%d-%ld", f->k, i % 64);
	snprintf(topic, tsize, "%s/fl-%d-%ld/request", H_PREFIX, f->k, i % 50);
	*retained = 0;
	resp[0] = '\0';
	*corr_len = 0;
	/* Per mille: mostly small junk, some large, a few huge. */
	if (pick < 150)
		k = K_GARBAGE;
	else if (pick < 230)
		k = K_NOT_OBJECT;
	else if (pick < 310)
		k = K_TRUNCATED;
	else if (pick < 315)
		k = K_NESTED;
	else if (pick < 400)
		k = K_BAD_CLIENT;
	else if (pick < 480)
		k = K_WRONG_TYPES;
	else if (pick < 580)
		k = K_BAD_SESSION;
	else if (pick < 630)
		k = K_TOO_LARGE;
	else if (pick < 635)
		k = K_HUGE;
	else if (pick < 720)
		k = K_BAD_LOCK;
	else if (pick < 760)
		k = K_BAD_REPLY;
	else if (pick < 800)
		k = K_BAD_CORR;
	else if (pick < 900)
		k = K_WILL;
	else if (pick < 990)
		k = K_ADMIN;
	else
		k = K_RETAINED;

	switch (k) {
	case K_GARBAGE:
		*len = 1 + tutil_rand(&f->rng) % 300;
		random_bytes(f, *len);
		return k;
	case K_NOT_OBJECT: {
		static const char *const v[] = {"[1,2,3]", "42", "null",
		    "\"acquire\"", "true", "[{\"op\":\"acquire\"}]", "", "{}x",
		    "{\"op\":\"acquire\"} {}"};

		n = snprintf(f->buf, HUGE_MAX, "%s",
		    v[tutil_rand(&f->rng) % (sizeof(v) / sizeof(v[0]))]);
		break;
	}
	case K_TRUNCATED:
		n = snprintf(f->buf, HUGE_MAX,
		    "{\"op\":\"acquire\",\"client\":\"%s\",\"session\":"
		    "\"0123456789abcdef0123",
		    client);
		n -= (int)(tutil_rand(&f->rng) % (uint64_t)n);
		break;
	case K_NESTED:
		*len = 20000;
		memset(f->buf, '[', *len);
		return k;
	case K_BAD_CLIENT: {
		static const char *const v[] = {"a/b", "a+b", "#", "", "$x",
		    "\\u0001x",
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};

		n = snprintf(f->buf, HUGE_MAX,
		    "{\"op\":\"acquire\",\"client\":\"%s\","
		    "\"session\":\"0123456789abcdef\"}",
		    v[tutil_rand(&f->rng) % (sizeof(v) / sizeof(v[0]))]);
		break;
	}
	case K_WRONG_TYPES: {
		static const char *const v[] = {"\"op\":5",
		    "\"op\":\"acquire\",\"session\":16",
		    "\"op\":\"acquire\",\"session\":\"0123456789abcdef\","
		    "\"conn\":-1",
		    "\"op\":\"acquire\",\"session\":\"0123456789abcdef\","
		    "\"conn\":1e300",
		    "\"op\":\"acquire\",\"session\":\"0123456789abcdef\","
		    "\"wait\":\"no\"",
		    "\"op\":\"steal\",\"session\":\"0123456789abcdef\""};

		n = snprintf(f->buf, HUGE_MAX, "{\"client\":\"%s\",%s}", client,
		    v[tutil_rand(&f->rng) % (sizeof(v) / sizeof(v[0]))]);
		break;
	}
	case K_BAD_SESSION:
		n = snprintf(f->buf, HUGE_MAX,
		    "{\"op\":\"release\",\"client\":\"%s\",\"session\":"
		    "\"short\"}",
		    client);
		break;
	case K_TOO_LARGE: {
		size_t user = 4096 + tutil_rand(&f->rng) % 12288;

		n = snprintf(f->buf, HUGE_MAX,
		    "{\"op\":\"acquire\",\"client\":\"%s\",\"session\":"
		    "\"0123456789abcdef\",\"user\":\"",
		    client);
		for (size_t j = 0; j < user; j++)
			f->buf[n++] = 'u';
		n += snprintf(f->buf + n, HUGE_MAX - (size_t)n, "\"}");
		break;
	}
	case K_HUGE:
		*len = 65537 + tutil_rand(&f->rng) % (HUGE_MAX - 65537);
		filler(f, *len);
		f->buf[0] = '{';
		return k;
	case K_BAD_LOCK: {
		static const char *const v[] = {"_x", "$lock", "_admin",
		    "_clients", "_coordinator"};

		if (tutil_rand(&f->rng) % 3 == 0) {
			char name[200];

			memset(name, 'L', 129);
			name[129] = '\0';
			snprintf(topic, tsize, "%s/%s/request", H_PREFIX, name);
		} else
			snprintf(topic, tsize, "%s/%s/request", H_PREFIX,
			    v[tutil_rand(&f->rng) %
				(sizeof(v) / sizeof(v[0]))]);
		n = snprintf(f->buf, HUGE_MAX,
		    "{\"op\":\"acquire\",\"client\":\"%s\",\"session\":"
		    "\"0123456789abcdef\"}",
		    client);
		break;
	}
	case K_BAD_REPLY:
	case K_BAD_CORR:
		n = snprintf(f->buf, HUGE_MAX,
		    "{\"op\":\"acquire\",\"client\":\"%s\",\"session\":"
		    "\"0123456789abcdef\",\"wait\":false}",
		    client);
		if (k == K_BAD_REPLY)
			snprintf(resp, rsize, "replies/+/%d", f->k);
		else {
			snprintf(resp, rsize, "replies/fl-%d", f->k);
			*corr_len = 129 + tutil_rand(&f->rng) % 200;
		}
		break;
	case K_WILL: {
		snprintf(topic, tsize, "%s/_clients/%s/will", H_PREFIX, client);
		if (tutil_rand(&f->rng) % 2 == 0) {
			*len = 1 + tutil_rand(&f->rng) % 5000;
			random_bytes(f, *len);
			return k;
		}
		n = snprintf(f->buf, HUGE_MAX,
		    "{\"session\":%d,\"conn\":\"x\"}",
		    (int)(tutil_rand(&f->rng) % 1000));
		break;
	}
	case K_ADMIN: {
		static const char *const v[] = {"{\"op\":\"break\"}",
		    "{\"op\":\"explode\",\"lock\":\"doc-1\"}",
		    "{\"op\":\"break\",\"lock\":\"_x\"}",
		    "{\"op\":\"break\",\"lock\":5}", "[\"break\"]", "\xff\xfe"};

		snprintf(topic, tsize, "%s/_admin/command", H_PREFIX);
		n = snprintf(f->buf, HUGE_MAX, "%s",
		    v[tutil_rand(&f->rng) % (sizeof(v) / sizeof(v[0]))]);
		break;
	}
	case K_RETAINED:
	default:
		/* A few topics only: the broker keeps one copy of each. */
		snprintf(topic, tsize, "%s/fr-%d-%ld/request", H_PREFIX, f->k,
		    i % 4);
		n = snprintf(f->buf, HUGE_MAX,
		    "{\"op\":\"acquire\",\"client\":\"%s\",\"session\":"
		    "\"0123456789abcdef\"}",
		    client);
		*retained = 1;
		break;
	}
	*len = (size_t)n;
	return k;
}

static void *
flood_main(void *arg)
{
	struct flooder *f = arg;
	char topic[512], resp[128], corr[400];
	long per = FLOOD_TOTAL / FLOODERS;

	memset(corr, 'c', sizeof(corr));
	for (long i = 0; i < per; i++) {
		MQTTAsync_responseOptions ro =
		    MQTTAsync_responseOptions_initializer;
		MQTTAsync_message m = MQTTAsync_message_initializer;
		MQTTProperty p;
		size_t len, corr_len;
		int retained, rc;
		enum kind k;

		pthread_mutex_lock(&f->mu);
		while (f->outstanding >= WINDOW && !f->lost)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->lost) {
			pthread_mutex_unlock(&f->mu);
			snprintf(f->err, sizeof(f->err),
			    "flooder %d lost its connection after %ld", f->k,
			    i);
			break;
		}
		f->outstanding++;
		pthread_mutex_unlock(&f->mu);

		k = make_message(f, i, topic, sizeof(topic), &len, &retained,
		    resp, sizeof(resp), &corr_len);
		if (always_logged[k])
			f->logged_min++;
		if (resp[0] != '\0') {
			p.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
			p.value.data.data = resp;
			p.value.data.len = (int)strlen(resp);
			MQTTProperties_add(&m.properties, &p);
			if (corr_len > 0) {
				p.identifier =
				    MQTTPROPERTY_CODE_CORRELATION_DATA;
				p.value.data.data = corr;
				p.value.data.len = (int)corr_len;
				MQTTProperties_add(&m.properties, &p);
			}
		}
		m.payload = f->buf;
		m.payloadlen = (int)len;
		m.qos = 1;
		m.retained = retained;
		ro.onSuccess5 = on_pub_ok;
		ro.onFailure5 = on_pub_fail;
		ro.context = f;
		rc = MQTTAsync_sendMessage(f->mq, topic, &m, &ro);
		MQTTProperties_free(&m.properties);
		if (rc != MQTTASYNC_SUCCESS) {
			snprintf(f->err, sizeof(f->err),
			    "flooder %d: publish %ld: %d", f->k, i, rc);
			pub_done(f, 1);
			break;
		}
		f->sent++;
		f->bytes += (long)len;
		atomic_fetch_add(&flood_sent, 1);
	}
	/* Every publish acknowledged before we call it done. */
	pthread_mutex_lock(&f->mu);
	while (f->outstanding > 0 && !f->lost)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	if (atomic_fetch_add(&flood_done, 1) + 1 == FLOODERS)
		atomic_store(&flooding, 0);
	return NULL;
}

static void
flooder_start(struct flooder *f, int k, const char *uri)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer5;
	char id[32];
	int rc;

	memset(f, 0, sizeof(*f));
	f->k = k;
	f->uri = uri;
	f->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(k + 1);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->buf = malloc(HUGE_MAX + 1024);
	assert_non_null(f->buf);
	snprintf(id, sizeof(id), "flooder-%d", k);
	co.MQTTVersion = MQTTVERSION_5;
	co.maxBufferedMessages = WINDOW * 4;
	rc = MQTTAsync_createWithOptions(&f->mq, uri, id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	assert_int_equal(rc, MQTTASYNC_SUCCESS);
	rc = MQTTAsync_setCallbacks(f->mq, f, on_lost, on_message, NULL);
	assert_int_equal(rc, MQTTASYNC_SUCCESS);
	cn.keepAliveInterval = 60;
	cn.cleanstart = 1;
	cn.maxInflight = WINDOW;
	cn.onSuccess5 = on_connect;
	cn.onFailure5 = on_connect_fail;
	cn.context = f;
	f->outstanding = 1;
	rc = MQTTAsync_connect(f->mq, &cn);
	assert_int_equal(rc, MQTTASYNC_SUCCESS);
	pthread_mutex_lock(&f->mu);
	while (f->outstanding > 0)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	assert_int_equal(f->failed, 0);
}

/* RSS of mqlockd, sampled while the flood runs. */
struct sampler {
	long pid;
	pthread_t thread;
	atomic_int stop;
	long before, peak1, peak2, samples;
};

static void *
sample_main(void *arg)
{
	struct sampler *s = arg;
	struct timespec ts = {0, 50 * 1000000L};

	while (!atomic_load(&s->stop)) {
		long kb = tutil_rss_kb(s->pid);
		long sent = atomic_load(&flood_sent);

		if (kb > 0) {
			if (sent < FLOOD_TOTAL / 2) {
				if (kb > s->peak1)
					s->peak1 = kb;
			} else if (kb > s->peak2)
				s->peak2 = kb;
			s->samples++;
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Latency bookkeeping for the legitimate answers. */
struct lat {
	long n;
	long long worst;
	long long sum;
	long during; /* answers to requests sent while the flood ran */
};

static void
answered(struct lat *l, long long t0, int in, const struct h_msg *m)
{
	long long d = m->at_ms - t0;

	if (in)
		l->during++;
	l->n++;
	l->sum += d;
	if (d > l->worst)
		l->worst = d;
}

/*
 * One legitimate cycle on pair p: A takes lock legit-<p>, B queues, A
 * releases, B gets it and releases.  Every answer within ANSWER_MS.
 */
static void
cycle(struct h_client *a, struct h_client *b, int p, struct lat *l)
{
	static char sa[PAIRS][40], sb[PAIRS][40];
	const char *lock = h_fmt("legit-%d", p);
	char ida[32], idb[32];
	long long t0;
	int in;

	if (sa[p][0] == '\0') {
		snprintf(sa[p], sizeof(sa[p]), "%s", h_session());
		snprintf(sb[p], sizeof(sb[p]), "%s", h_session());
	}
	snprintf(ida, sizeof(ida), "legit-a-%d", p);
	snprintf(idb, sizeof(idb), "legit-b-%d", p);
	t0 = h_now_ms();
	in = atomic_load(&flooding);
	h_request(a, lock, "acquire", ida, sa[p], NULL, "1");
	answered(l, t0, in,
	    h_expect(a, h_reply_topic(a), ANSWER_MS, "result", "granted"));
	h_expect(a, h_events(ida), ANSWER_MS, "event", "granted");
	t0 = h_now_ms();
	in = atomic_load(&flooding);
	h_request(b, lock, "acquire", idb, sb[p], NULL, "2");
	answered(l, t0, in,
	    h_expect(b, h_reply_topic(b), ANSWER_MS, "result", "queued"));
	t0 = h_now_ms();
	in = atomic_load(&flooding);
	h_request(a, lock, "release", ida, sa[p], NULL, "3");
	answered(l, t0, in,
	    h_expect(a, h_reply_topic(a), ANSWER_MS, "result", "released"));
	answered(l, t0, in,
	    h_expect(b, h_events(idb), ANSWER_MS, "event", "granted"));
	t0 = h_now_ms();
	in = atomic_load(&flooding);
	h_request(b, lock, "release", idb, sb[p], NULL, "4");
	answered(l, t0, in,
	    h_expect(b, h_reply_topic(b), ANSWER_MS, "result", "released"));
}

static void
nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * Lines mqlockd wrote through its rate-limited log ("warn") plus the
 * lines it counted as suppressed; and the file's size.
 */
static long
limited_lines(const char *path, long *size)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	long n = 0;
	const char *p;

	*size = 0;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		*size += (long)strlen(line);
		/* "... warn N similar lines suppressed": a count, not one. */
		if ((p = strstr(line, " warn ")) != NULL &&
		    strstr(p, " similar lines suppressed\n") != NULL)
			n += strtol(p + 6, NULL, 10);
		else if (p != NULL)
			n++;
	}
	fclose(f);
	return n;
}

static int
file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int found = 0;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static void
test_flood(void **state)
{
	struct h_world *w = h_world_start(state, "--log-level info --grace 5");
	struct h_client *a[PAIRS], *b[PAIRS];
	struct flooder fl[FLOODERS];
	struct sampler smp = {0};
	struct lat lat = {0};
	long long start, next_use[PAIRS] = {0}, now;
	long logged_min = 0, logged, log_size, bytes = 0, cycles = 0;
	char log[4096];
	long after;
	int p = 0;

	snprintf(log, sizeof(log), "%s", h_path(w, "mqlockd.log"));
	for (int i = 0; i < PAIRS; i++) {
		a[i] = h_client_new(w, h_fmt("legit-a-%d", i));
		b[i] = h_client_new(w, h_fmt("legit-b-%d", i));
		h_sub(a[i], h_events(h_fmt("legit-a-%d", i)));
		h_sub(b[i], h_events(h_fmt("legit-b-%d", i)));
	}
	/* A warm-up cycle per pair: what "before" means for memory. */
	for (int i = 0; i < PAIRS; i++)
		cycle(a[i], b[i], i, &lat);
	smp.pid = tutil_find_pid(h_path(w, "mqlock.db"));
	assert_true(smp.pid > 0);
	smp.before = tutil_rss_kb(smp.pid);
	lat = (struct lat){0};

	atomic_store(&flood_sent, 0);
	atomic_store(&flood_done, 0);
	atomic_store(&flooding, 1);
	for (int i = 0; i < FLOODERS; i++)
		flooder_start(&fl[i], i, h_uri(w));
	assert_int_equal(pthread_create(&smp.thread, NULL, sample_main, &smp),
	    0);
	start = h_now_ms();
	for (int i = 0; i < FLOODERS; i++)
		assert_int_equal(
		    pthread_create(&fl[i].thread, NULL, flood_main, &fl[i]), 0);

	/* Legitimate cycles for as long as the flood lasts. */
	while (atomic_load(&flood_done) < FLOODERS) {
		now = h_now_ms();
		if (now - start > FLOOD_DEADLINE_MS)
			fail_msg("the flood did not end within %d ms",
			    FLOOD_DEADLINE_MS);
		if (now < next_use[p])
			nap(next_use[p] - now); /* pacing, not waiting */
		next_use[p] = h_now_ms() + PAIR_GAP_MS;
		cycle(a[p], b[p], p, &lat);
		cycles++;
		p = (p + 1) % PAIRS;
	}
	for (int i = 0; i < FLOODERS; i++) {
		pthread_join(fl[i].thread, NULL);
		if (fl[i].err[0] != '\0')
			fail_msg("%s", fl[i].err);
		assert_int_equal(fl[i].sent, FLOOD_TOTAL / FLOODERS);
		logged_min += fl[i].logged_min;
		bytes += fl[i].bytes;
	}
	print_message("flood: %d messages, %.1f MB, in %.1f s; %ld "
		      "legitimate cycles meanwhile\n",
	    FLOOD_TOTAL, (double)bytes / 1e6,
	    (double)(h_now_ms() - start) / 1000.0, cycles);

	/*
	 * After the flood: every pair once more.  mqlockd handles messages
	 * in the order the broker delivers them, so these answers also mean
	 * the whole flood has been read.
	 */
	for (int i = 0; i < PAIRS; i++) {
		now = h_now_ms();
		if (now < next_use[i])
			nap(next_use[i] - now);
		cycle(a[i], b[i], i, &lat);
	}
	atomic_store(&smp.stop, 1);
	pthread_join(smp.thread, NULL);
	after = tutil_rss_kb(smp.pid);
	/*
	 * One more refused request, a second later: the rate-limited log
	 * then writes the count of lines it suppressed since its last one.
	 */
	nap(1500);
	h_request(h_ctl(w), "doc-x", "acquire", "last-word", "short", NULL,
	    NULL);
	h_expect(h_ctl(w), h_events("last-word"), ANSWER_MS, "code",
	    "bad-request");
	logged = limited_lines(log, &log_size);

	print_message("legitimate answers: %ld, worst %lld ms, mean %.1f ms; "
		      "%ld to requests sent during the flood\n",
	    lat.n, lat.worst, lat.n ? (double)lat.sum / (double)lat.n : 0.0,
	    lat.during);
	print_message("mqlockd VmRSS: before %ld KiB, peak in the first half "
		      "%ld KiB, in the second half %ld KiB, after %ld KiB "
		      "(%ld samples)\n",
	    smp.before, smp.peak1, smp.peak2, after, smp.samples);
	print_message("mqlockd log: %ld bytes; rejections logged or counted "
		      "as suppressed: %ld (at least %ld expected)\n",
	    log_size, logged, logged_min);

	/*
	 * Legitimate requests were sent while the flood ran, and (as every
	 * other) answered within ANSWER_MS.
	 */
	assert_true(lat.during >= 1);
	assert_true(smp.samples > 0 && smp.peak1 > 0 && smp.peak2 > 0);
	assert_true(smp.peak1 < RSS_LIMIT_KB);
	assert_true(smp.peak2 < RSS_LIMIT_KB);
	assert_true(after < RSS_LIMIT_KB);
	assert_true(smp.peak2 <= smp.peak1 + RSS_SLACK_KB);
	assert_true(log_size < LOG_LIMIT);
	assert_true(logged >= logged_min);
	/* Nothing read and then dropped (its inbound queue overflowing). */
	assert_false(file_has(log, "inbound queue full"));
	/* Online throughout: no status message since it came online. */
	h_expect_none(h_ctl(w), H_PREFIX "/_coordinator/status", 0, H_ANY);
	for (int i = 0; i < FLOODERS; i++) {
		MQTTAsync_disconnectOptions d =
		    MQTTAsync_disconnectOptions_initializer5;

		d.timeout = 1000;
		MQTTAsync_disconnect(fl[i].mq, &d);
		MQTTAsync_destroy(&fl[i].mq);
		free(fl[i].buf);
	}
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_flood, h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
