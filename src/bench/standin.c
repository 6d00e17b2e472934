#include "bench/standin.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/conn.h"
#include "core/idmap.h"
#include "core/limits.h"
#include "io/log.h"
#include "io/siphash.h"

#define TOPIC_MAX (MQL_PREFIX_MAX + MQL_CLIENT_ID_MAX + 32)
/* An owner message lists at most 20 waiters of at most 2 x 128 bytes,
 * escaped: this always fits. */
#define OWNER_MAX 32768
/* The idle deadline it announces; nothing ever expires here. */
#define IDLE_MS 86400000LL

struct waiter {
	char *client;
	char *user;
};

struct slock {
	char *id;
	char *holder; /* NULL: free */
	char *user;
	uint64_t token;
	int64_t since;
	struct waiter *w;
	size_t nw, capw;
};

struct standin {
	const char *prefix;
	struct conn *conn;
	struct idmap *locks;
	uint64_t last_token;
	pthread_mutex_t mu;
	char owner[OWNER_MAX];
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	stop = sig;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A bounded string builder over a fixed buffer. */
struct sb {
	char *p;
	size_t n, cap;
	int full;
};

static void
sb_raw(struct sb *b, const char *s)
{
	size_t l = strlen(s);

	if (b->full || b->n + l >= b->cap) {
		b->full = 1;
		return;
	}
	memcpy(b->p + b->n, s, l + 1);
	b->n += l;
}

/* s as a JSON string. */
static void
sb_str(struct sb *b, const char *s)
{
	char esc[8];

	sb_raw(b, "\"");
	for (; *s != '\0' && !b->full; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			esc[2] = '\0';
		} else if (ch < 0x20)
			snprintf(esc, sizeof(esc), "\\u%04x", ch);
		else {
			esc[0] = (char)ch;
			esc[1] = '\0';
		}
		sb_raw(b, esc);
	}
	sb_raw(b, "\"");
}

static void
sb_int(struct sb *b, int64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRId64, v);
	sb_raw(b, num);
}

static void
sb_party(struct sb *b, const char *client, const char *user)
{
	sb_raw(b, "{\"client\":");
	sb_str(b, client);
	sb_raw(b, ",\"user\":");
	sb_str(b, user);
	sb_raw(b, ",\"connected\":true}");
}

/* The owner message of l, the same fields in the same order as mqlockd's. */
static void
publish_owner(struct standin *s, const struct slock *l)
{
	struct sb b = {s->owner, 0, sizeof(s->owner), 0};
	char topic[TOPIC_MAX];

	sb_raw(&b, "{\"v\":1,\"lock\":");
	sb_str(&b, l->id);
	if (l->holder != NULL) {
		sb_raw(&b, ",\"owner\":");
		sb_party(&b, l->holder, l->user);
		sb_raw(&b, ",\"token\":");
		sb_int(&b, (int64_t)l->token);
		sb_raw(&b, ",\"since\":");
		sb_int(&b, l->since);
		sb_raw(&b, ",\"idle_deadline\":");
		sb_int(&b, l->since + IDLE_MS);
	} else {
		sb_raw(&b, ",\"owner\":null,\"token\":null,\"since\":");
		sb_int(&b, l->since);
		sb_raw(&b, ",\"idle_deadline\":null");
	}
	sb_raw(&b, ",\"waiting\":");
	sb_int(&b, (int64_t)l->nw);
	sb_raw(&b, ",\"queue\":[");
	for (size_t i = 0; i < l->nw && i < MQL_OWNER_QUEUE_SHOWN; i++) {
		if (i > 0)
			sb_raw(&b, ",");
		sb_party(&b, l->w[i].client, l->w[i].user);
	}
	sb_raw(&b, "]}");
	if (b.full ||
	    snprintf(topic, sizeof(topic), "%s/%s/owner", s->prefix, l->id) >=
		(int)sizeof(topic))
		return;
	conn_publish(s->conn, topic, b.p, b.n, 1);
}

static void
publish_event(struct standin *s, const char *client, const char *json)
{
	char topic[TOPIC_MAX];

	if (snprintf(topic, sizeof(topic), "%s/_clients/%s/events", s->prefix,
		client) >= (int)sizeof(topic))
		return;
	conn_publish(s->conn, topic, json, strlen(json), 0);
}

static void
send_granted(struct standin *s, const struct slock *l)
{
	char json[MQL_LOCK_ID_MAX * 2 + 128];
	struct sb b = {json, 0, sizeof(json), 0};

	sb_raw(&b, "{\"event\":\"granted\",\"lock\":");
	sb_str(&b, l->id);
	sb_raw(&b, ",\"token\":");
	sb_int(&b, (int64_t)l->token);
	sb_raw(&b, ",\"idle_deadline\":");
	sb_int(&b, l->since + IDLE_MS);
	sb_raw(&b, "}");
	if (!b.full)
		publish_event(s, l->holder, json);
}

static void
send_queued(struct standin *s, const struct slock *l, size_t i)
{
	char json[MQL_LOCK_ID_MAX * 2 + 128];
	struct sb b = {json, 0, sizeof(json), 0};

	sb_raw(&b, "{\"event\":\"queued\",\"lock\":");
	sb_str(&b, l->id);
	sb_raw(&b, ",\"position\":");
	sb_int(&b, (int64_t)i + 1);
	sb_raw(&b, "}");
	if (!b.full)
		publish_event(s, l->w[i].client, json);
}

static void
lock_free(struct slock *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->nw; i++) {
		free(l->w[i].client);
		free(l->w[i].user);
	}
	free(l->w);
	free(l->holder);
	free(l->user);
	free(l->id);
	free(l);
}

/* Give l to client (whose strings l now owns), with a new token. */
static void
grant(struct standin *s, struct slock *l, char *client, char *user)
{
	free(l->holder);
	free(l->user);
	l->holder = client;
	l->user = user;
	l->token = ++s->last_token;
	l->since = wall_ms();
}

/* l lost its holder: the first waiter gets it, the others move up. */
static void
hand_on(struct standin *s, struct slock *l)
{
	struct waiter w;

	free(l->holder);
	free(l->user);
	l->holder = l->user = NULL;
	l->since = wall_ms();
	if (l->nw == 0) {
		publish_owner(s, l);
		return;
	}
	w = l->w[0];
	memmove(&l->w[0], &l->w[1], (l->nw - 1) * sizeof(*l->w));
	l->nw--;
	grant(s, l, w.client, w.user);
	publish_owner(s, l);
	send_granted(s, l);
	for (size_t i = 0; i < l->nw; i++)
		send_queued(s, l, i);
}

static void
acquire(struct standin *s, struct slock *l, const char *client,
    const char *user)
{
	char *c, *u;

	if (l->holder != NULL && strcmp(l->holder, client) == 0) {
		publish_owner(s, l);
		send_granted(s, l);
		return;
	}
	for (size_t i = 0; i < l->nw; i++) {
		if (strcmp(l->w[i].client, client) == 0) {
			send_queued(s, l, i);
			return;
		}
	}
	if ((c = strdup(client)) == NULL || (u = strdup(user)) == NULL) {
		free(c);
		return;
	}
	if (l->holder == NULL) {
		grant(s, l, c, u);
		publish_owner(s, l);
		send_granted(s, l);
		return;
	}
	if (l->nw == l->capw) {
		size_t n = l->capw > 0 ? l->capw * 2 : 4;
		struct waiter *w = realloc(l->w, n * sizeof(*w));

		if (w == NULL) {
			free(c);
			free(u);
			return;
		}
		l->w = w;
		l->capw = n;
	}
	l->w[l->nw++] = (struct waiter){c, u};
	publish_owner(s, l);
	send_queued(s, l, l->nw - 1);
}

static void
release(struct standin *s, struct slock *l, const char *client)
{
	if (l->holder != NULL && strcmp(l->holder, client) == 0) {
		hand_on(s, l);
		return;
	}
	for (size_t i = 0; i < l->nw; i++) {
		if (strcmp(l->w[i].client, client) != 0)
			continue;
		free(l->w[i].client);
		free(l->w[i].user);
		memmove(&l->w[i], &l->w[i + 1],
		    (l->nw - i - 1) * sizeof(*l->w));
		l->nw--;
		publish_owner(s, l);
		for (; i < l->nw; i++)
			send_queued(s, l, i);
		return;
	}
}

/* The lock id of P/<lock>/request into id; 0, or -1 for other topics. */
static int
request_lock(const char *prefix, const char *topic, char *id, size_t size)
{
	size_t pl = strlen(prefix), tl = strlen(topic), rl = strlen("/request");
	size_t n;

	if (tl <= pl + 1 + rl || strncmp(topic, prefix, pl) != 0 ||
	    topic[pl] != '/' || strcmp(topic + tl - rl, "/request") != 0)
		return -1;
	n = tl - pl - 1 - rl;
	if (n >= size)
		return -1;
	memcpy(id, topic + pl + 1, n);
	id[n] = '\0';
	return 0;
}

static struct slock *
get_lock(struct standin *s, const char *id)
{
	struct slock *l = idmap_get(s->locks, id);

	if (l != NULL)
		return l;
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->id = strdup(id)) == NULL) {
		free(l);
		return NULL;
	}
	if (idmap_put(s->locks, l->id, l) != 0) {
		lock_free(l);
		return NULL;
	}
	return l;
}

static void
on_request(void *arg, const char *topic, const char *payload, size_t len)
{
	struct standin *s = arg;
	char id[MQL_LOCK_ID_SZ];
	const cJSON *op, *client, *user;
	struct slock *l;
	cJSON *o;

	if (request_lock(s->prefix, topic, id, sizeof(id)) != 0 ||
	    (o = cJSON_ParseWithLength(payload, len)) == NULL)
		return;
	op = cJSON_GetObjectItemCaseSensitive(o, "op");
	client = cJSON_GetObjectItemCaseSensitive(o, "client");
	user = cJSON_GetObjectItemCaseSensitive(o, "user");
	if (!cJSON_IsString(op) || !cJSON_IsString(client))
		goto out;
	pthread_mutex_lock(&s->mu);
	if ((l = get_lock(s, id)) != NULL) {
		if (strcmp(op->valuestring, "acquire") == 0)
			acquire(s, l, client->valuestring,
			    cJSON_IsString(user) ? user->valuestring : "");
		else if (strcmp(op->valuestring, "release") == 0)
			release(s, l, client->valuestring);
		/* Like mqlockd, forget locks that are free and unwanted. */
		if (l->holder == NULL && l->nw == 0) {
			idmap_del(s->locks, l->id);
			lock_free(l);
		}
	}
	pthread_mutex_unlock(&s->mu);
out:
	cJSON_Delete(o);
}

/* The epoch is the start time: it grows with every start, as it must. */
static char *
status_json(const char *state, int64_t epoch)
{
	char *j = malloc(160);

	if (j != NULL)
		snprintf(j, 160,
		    "{\"state\":\"%s\",\"version\":\"standin\",\"protocol\":1,"
		    "\"since\":%" PRId64 ",\"epoch\":%" PRId64 "}",
		    state, wall_ms(), epoch);
	return j;
}

static int
free_cb(const char *key, void *value, void *arg)
{
	lock_free(value);
	return 0;
}

int
standin_run(const char *uri, const char *prefix, const char *client_id)
{
	static const struct timespec tick = {0, 20000000};
	struct standin s = {.prefix = prefix};
	struct mql_hasher hasher = siphash_hasher();
	char req[TOPIC_MAX], status[TOPIC_MAX];
	const char *filters[1] = {req};
	char *offline = NULL, *online = NULL;
	struct sigaction sa;
	pid_t parent = getppid();
	int64_t epoch = wall_ms();
	int rc = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 ||
	    sigaction(SIGINT, &sa, NULL) != 0 ||
	    pthread_mutex_init(&s.mu, NULL) != 0)
		return 1;
	snprintf(req, sizeof(req), "%s/+/request", prefix);
	snprintf(status, sizeof(status), "%s/_coordinator/status", prefix);
	if ((s.locks = idmap_new(&hasher)) == NULL ||
	    (offline = status_json("offline", epoch)) == NULL ||
	    (online = status_json("online", epoch)) == NULL) {
		log_error("standin: out of memory");
		goto out;
	}
	s.conn = conn_start(&(struct conn_opts){.uri = uri,
	    .client_id = client_id,
	    .fn = on_request,
	    .arg = &s,
	    .will_topic = status,
	    .will_payload = offline,
	    .will_retain = 1});
	if (s.conn == NULL || conn_wait(s.conn, 10000) != 0 ||
	    conn_subscribe(s.conn, filters, 1, 0, 10000) != 0 ||
	    conn_publish(s.conn, status, online, strlen(online), 1) != 0)
		goto out;
	log_info("standin: serving %s on %s", req, uri);
	/* Bounded by the parent: it stops us, or we notice it is gone. */
	while (!stop && getppid() == parent && conn_up(s.conn))
		nanosleep(&tick, NULL);
	rc = stop ? 0 : 1;
	if (!conn_up(s.conn))
		log_error("standin: lost the broker");
	free(offline);
	offline = status_json("offline", epoch);
	if (offline != NULL && conn_up(s.conn))
		conn_publish(s.conn, status, offline, strlen(offline), 1);
out:
	conn_free(s.conn);
	if (s.locks != NULL) {
		idmap_foreach(s.locks, free_cb, NULL);
		idmap_free(s.locks);
	}
	pthread_mutex_destroy(&s.mu);
	free(offline);
	free(online);
	return rc;
}
