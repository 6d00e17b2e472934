/*
 * mqlock status and mqlock watch: read the retained owner messages and the
 * coordinator status, and print them for people.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "core/codec.h"
#include "io/backoff.h"
#include "io/clock.h"
#include "io/log.h"
#include "mqlock/cli.h"

#define TOPIC_SZ 512
#define STATUS_DEADLINE_MS 10000
#define MAX_ROWS 100000
#define STATUS_WAITERS 3 /* waiters named in a status row */
#define TEXT_SZ 1280     /* a table cell: an escaped "user (client)" fits */
#define NONCE_DIGITS 32

/* One owner message, as read. */
struct owner {
	char lock[MQL_LOCK_ID_SZ];
	int valid; /* parsed; else unreadable */
	int held;
	char holder[4 * (MQL_USER_MAX + MQL_CLIENT_ID_MAX) + 8]; /* escaped */
	int connected;
	int64_t token;
	int64_t idle_deadline; /* ms, -1: none */
	int64_t waiting;
	char waiters[TEXT_SZ - 16]; /* "Bob, svc-1" */
	size_t shown;               /* waiters named */
};

/*
 * Names and ids are shown escaped (log_escape()): a user name with a
 * terminal escape in it must not drive the terminal of whoever looks.
 */
static const char *
shown(const char *s, char *buf, size_t size)
{
	log_escape(s, strlen(s), buf, size);
	return buf;
}

static const char *
display_name(const cJSON *who, char *buf, size_t size)
{
	const char *user = cli_json_str(who, "user");
	const char *client = cli_json_str(who, "client");
	char u[4 * MQL_USER_MAX + 1], cl[4 * MQL_CLIENT_ID_MAX + 1];

	shown(client != NULL ? client : "?", cl, sizeof(cl));
	if (user != NULL && user[0] != '\0')
		snprintf(buf, size, "%s (%s)", shown(user, u, sizeof(u)), cl);
	else
		snprintf(buf, size, "%s", cl);
	return buf;
}

/* Waiters by the name people know them by: user, else client id. */
static void
list_waiters(const cJSON *queue, size_t max, struct owner *o)
{
	const cJSON *w;
	size_t used = 0;

	o->waiters[0] = '\0';
	o->shown = 0;
	cJSON_ArrayForEach(w, queue)
	{
		const char *user = cli_json_str(w, "user");
		const char *name = user != NULL && user[0] != '\0'
		    ? user
		    : cli_json_str(w, "client");
		char esc[4 * MQL_USER_MAX + 1];
		int n;

		if (o->shown == max || name == NULL)
			break;
		n = snprintf(o->waiters + used, sizeof(o->waiters) - used,
		    "%s%s", o->shown > 0 ? ", " : "",
		    shown(name, esc, sizeof(esc)));
		if (n < 0 || (size_t)n >= sizeof(o->waiters) - used)
			break;
		used += (size_t)n;
		o->shown++;
	}
}

/* Fill o from an owner message payload of lock. */
static void
parse_owner(const char *lock, const struct mqtt_in *in, size_t max_waiters,
    struct owner *o)
{
	const cJSON *who;
	cJSON *j;

	memset(o, 0, sizeof(*o));
	snprintf(o->lock, sizeof(o->lock), "%s", lock);
	o->idle_deadline = -1;
	if (in->len == 0) {
		/* A cleared retained message: nothing is known, so free. */
		o->valid = 1;
		return;
	}
	if ((j = cli_json_parse(in->payload, in->len)) == NULL)
		return;
	o->valid = 1;
	who = cJSON_GetObjectItemCaseSensitive(j, "owner");
	if (cJSON_IsObject(who)) {
		o->held = 1;
		display_name(who, o->holder, sizeof(o->holder));
		o->connected = cJSON_IsTrue(
		    cJSON_GetObjectItemCaseSensitive(who, "connected"));
		if (cli_json_int(j, "token", &o->token) == -1)
			o->token = -1;
		if (cli_json_int(j, "idle_deadline", &o->idle_deadline) == -1)
			o->idle_deadline = -1;
	}
	if (cli_json_int(j, "waiting", &o->waiting) == -1 || o->waiting < 0)
		o->waiting = 0;
	list_waiters(cJSON_GetObjectItemCaseSensitive(j, "queue"), max_waiters,
	    o);
	cJSON_Delete(j);
}

/* The lock of an owner topic "prefix/<lock>/owner", or -1. */
static int
owner_topic_lock(const char *prefix, const char *topic, char *lock)
{
	size_t plen = strlen(prefix), tlen = strlen(topic), llen;

	if (tlen <= plen + 1 + 6 || strncmp(topic, prefix, plen) != 0 ||
	    topic[plen] != '/' || strcmp(topic + tlen - 6, "/owner") != 0)
		return -1;
	llen = tlen - plen - 1 - 6;
	if (llen > MQL_LOCK_ID_MAX ||
	    !codec_lock_id_valid(topic + plen + 1, llen))
		return -1;
	memcpy(lock, topic + plen + 1, llen);
	lock[llen] = '\0';
	return 0;
}

/* ms as local time: "2026-11-26 08:05:12" with the date, else "08:05:12". */
static void
local_time(int64_t ms, int with_date, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	if (localtime_r(&t, &tm) == NULL)
		n = 0;
	else if (with_date)
		n = strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
	else
		n = strftime(buf, size, "%H:%M:%S", &tm);
	if (n == 0)
		snprintf(buf, size, "?");
}

/* Coordinator status, in words: "online (epoch 3)". */
static void
describe_status(const struct mqtt_in *in, int with_since, char *buf,
    size_t size)
{
	cJSON *j = cli_json_parse(in->payload, in->len);
	const char *state = j != NULL ? cli_json_str(j, "state") : NULL;
	int64_t epoch = -1, since = -1;
	char when[64] = "";

	if (state == NULL) {
		snprintf(buf, size, "status unreadable");
		cJSON_Delete(j);
		return;
	}
	(void)cli_json_int(j, "epoch", &epoch);
	if (with_since && cli_json_int(j, "since", &since) == 0) {
		char t[48];

		local_time(since, 1, t, sizeof(t));
		snprintf(when, sizeof(when), ", since %s", t);
	}
	if (epoch >= 0)
		snprintf(buf, size, "%s (epoch %lld%s)", state,
		    (long long)epoch, when);
	else
		snprintf(buf, size, "%s%s", state, when);
	cJSON_Delete(j);
}

static int
prefix_topics(const struct cli *c, char *t_owner, char *t_status)
{
	if (codec_topic(t_owner, TOPIC_SZ, c->prefix, "+", "owner") == -1 ||
	    codec_topic(t_status, TOPIC_SZ, c->prefix, "_coordinator",
		"status") == -1) {
		fprintf(stderr, "mqlock: topic too long\n");
		return -1;
	}
	return 0;
}

/* status: everything collected before the marker came back. */
struct table {
	struct owner *rows;
	size_t n;
	size_t cap;
	int have_status;
	char status[256];
};

static int
table_put(struct table *t, const struct owner *o)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		if (strcmp(t->rows[i].lock, o->lock) == 0) {
			t->rows[i] = *o;
			return 0;
		}
	}
	if (t->n == t->cap) {
		size_t cap = t->cap == 0 ? 64 : t->cap * 2;
		struct owner *r;

		if (cap > MAX_ROWS ||
		    (r = realloc(t->rows, cap * sizeof(*r))) == NULL) {
			fprintf(stderr, "mqlock: too many locks to list\n");
			return -1;
		}
		t->rows = r;
		t->cap = cap;
	}
	t->rows[t->n++] = *o;
	return 0;
}

static int
cmp_rows(const void *a, const void *b)
{
	return strcmp(((const struct owner *)a)->lock,
	    ((const struct owner *)b)->lock);
}

static void
print_table(struct table *t, const char *lock)
{
	static const char *const head[] = {"LOCK", "HOLDER", "TOKEN",
	    "CONNECTED", "IDLE DEADLINE", "WAITING", "WAITERS"};
	char cell[7][TEXT_SZ];
	size_t width[7], i, k, rows = 0;
	int pass;

	printf("coordinator: %s\n",
	    t->have_status ? t->status
			   : "no status message (never started "
			     "on this prefix?)");
	if (lock != NULL && t->n == 0) {
		struct owner o;

		memset(&o, 0, sizeof(o));
		snprintf(o.lock, sizeof(o.lock), "%s", lock);
		o.valid = 1;
		(void)table_put(t, &o);
	}
	qsort(t->rows, t->n, sizeof(*t->rows), cmp_rows);
	for (k = 0; k < 7; k++)
		width[k] = strlen(head[k]);
	/* Pass 0 measures, pass 1 prints. */
	for (pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			if (rows == 0) {
				printf("no lock is held or awaited\n");
				return;
			}
			for (k = 0; k < 7; k++)
				printf("%-*s%s", k < 6 ? (int)width[k] : 0,
				    head[k], k < 6 ? "  " : "\n");
		}
		for (i = 0; i < t->n; i++) {
			const struct owner *o = &t->rows[i];

			if (lock == NULL && o->valid && !o->held &&
			    o->waiting == 0)
				continue;
			if (pass == 0)
				rows++;
			shown(o->lock, cell[0], TEXT_SZ);
			snprintf(cell[1], TEXT_SZ, "%s",
			    !o->valid     ? "(unreadable)"
				: o->held ? o->holder
					  : "-");
			if (o->held && o->token >= 0)
				snprintf(cell[2], TEXT_SZ, "%lld",
				    (long long)o->token);
			else
				snprintf(cell[2], TEXT_SZ, "-");
			snprintf(cell[3], TEXT_SZ, "%s",
			    !o->held           ? "-"
				: o->connected ? "yes"
					       : "no");
			if (o->held && o->idle_deadline >= 0)
				local_time(o->idle_deadline, 1, cell[4],
				    TEXT_SZ);
			else
				snprintf(cell[4], TEXT_SZ, "-");
			snprintf(cell[5], TEXT_SZ, "%lld",
			    (long long)o->waiting);
			snprintf(cell[6], TEXT_SZ, "%s%s",
			    o->shown > 0 ? o->waiters : "-",
			    (int64_t)o->shown < o->waiting ? ", ..." : "");
			for (k = 0; k < 7; k++) {
				if (pass == 0 && strlen(cell[k]) > width[k])
					width[k] = strlen(cell[k]);
				if (pass == 1)
					printf("%-*s%s",
					    k < 6 ? (int)width[k] : 0, cell[k],
					    k < 6 ? "  " : "\n");
			}
		}
	}
}

/*
 * One run of mqlock status.  Without a lock: every retained owner message,
 * complete once our own marker comes back on P/_clients/<id>/sync (the
 * broker sends retained messages while it handles the SUBSCRIBE, so they
 * all come before it).  With a lock: the coordinator's answer to a query
 * (MQTT 5 request/response), exact even right after it started.
 */
struct status_run {
	const struct cli *c;
	const char *lock; /* NULL: every lock in use */
	char t_owner[TOPIC_SZ];
	char t_status[TOPIC_SZ];
	char t_sync[TOPIC_SZ];    /* no lock */
	char t_request[TOPIC_SZ]; /* a lock */
	char t_reply[TOPIC_SZ];   /* a lock */
	char nonce[NONCE_DIGITS + 1];
	char marker[NONCE_DIGITS + 16];
	struct table t;
	int rc; /* -1 until done */
};

static int
status_topics(struct status_run *r)
{
	const struct cli *c = r->c;
	int n;

	if (prefix_topics(c, r->t_owner, r->t_status) == -1)
		return -1;
	if (r->lock == NULL) {
		if (codec_client_topic(r->t_sync, TOPIC_SZ, c->prefix,
			c->client_id, "sync") == -1) {
			fprintf(stderr, "mqlock: topic too long\n");
			return -1;
		}
		return 0;
	}
	n = snprintf(r->t_reply, TOPIC_SZ, "%s%s/status", c->reply_prefix,
	    c->client_id);
	if (n < 0 || n >= TOPIC_SZ) {
		fprintf(stderr, "mqlock: topic too long\n");
		return -1;
	}
	return cli_request_topic(c, r->lock, r->t_request, TOPIC_SZ);
}

/* Connected: ask the question whose answer completes the run. */
static int
status_ask(struct mqtt *m, struct status_run *r)
{
	struct mqtt_pub_props p = {r->t_reply, r->nonce, NONCE_DIGITS};
	cJSON *q;
	char *text = NULL;
	int rc;

	if (r->lock == NULL)
		return mqtt_publish(m, r->t_sync, r->marker, strlen(r->marker),
		    1, 0, NULL);
	q = cJSON_CreateObject();
	if (q != NULL && cJSON_AddStringToObject(q, "op", "query") != NULL &&
	    cJSON_AddStringToObject(q, "client", r->c->client_id) != NULL &&
	    cJSON_AddStringToObject(q, "lock", r->lock) != NULL)
		text = cJSON_PrintUnformatted(q);
	cJSON_Delete(q);
	if (text == NULL) {
		fprintf(stderr, "mqlock: out of memory\n");
		return -1;
	}
	rc = mqtt_publish(m, r->t_request, text, strlen(text), 1, 0, &p);
	free(text);
	return rc;
}

/* The coordinator's answer to the query: the row of the lock. */
static void
status_answer(struct status_run *r, const struct mqtt_in *in)
{
	cJSON *a;
	const char *code, *text;
	struct owner o;

	if (in->corr == NULL || in->corr_len != NONCE_DIGITS ||
	    memcmp(in->corr, r->nonce, NONCE_DIGITS) != 0)
		return;
	if ((a = cli_json_parse(in->payload, in->len)) == NULL) {
		fprintf(stderr, "mqlock: unreadable answer from mqlockd\n");
		r->rc = EXIT_SOFTWARE;
		return;
	}
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "ok"))) {
		code = cli_json_str(a, "code");
		text = cli_json_str(a, "message");
		fprintf(stderr, "mqlock: %s: %s: %s\n", r->lock,
		    code != NULL ? code : "error",
		    text != NULL ? text : "refused");
		r->rc = 1;
	} else {
		parse_owner(r->lock, in, STATUS_WAITERS, &o);
		if (table_put(&r->t, &o) == 0) {
			print_table(&r->t, r->lock);
			r->rc = 0;
		} else
			r->rc = EXIT_SOFTWARE;
	}
	cJSON_Delete(a);
}

static void
status_message(struct status_run *r, const struct mqtt_in *in)
{
	char name[MQL_LOCK_ID_SZ];
	struct owner o;

	if (strcmp(in->topic, r->t_status) == 0) {
		describe_status(in, 1, r->t.status, sizeof(r->t.status));
		r->t.have_status = 1;
	} else if (r->lock != NULL) {
		if (strcmp(in->topic, r->t_reply) == 0)
			status_answer(r, in);
	} else if (strcmp(in->topic, r->t_sync) == 0) {
		if (in->len == strlen(r->marker) &&
		    memcmp(in->payload, r->marker, in->len) == 0) {
			print_table(&r->t, NULL);
			r->rc = 0;
		}
	} else if (owner_topic_lock(r->c->prefix, in->topic, name) == 0) {
		parse_owner(name, in, STATUS_WAITERS, &o);
		if (table_put(&r->t, &o) == -1)
			r->rc = EXIT_SOFTWARE;
	}
}

int
cmd_status(const struct cli *c, const char *lock)
{
	int64_t until = clock_mono_ms() + STATUS_DEADLINE_MS;
	struct status_run r;
	struct mqtt_sub subs[3];
	struct mqtt_in *in;
	struct mqtt *m;
	size_t nsubs;
	int sig;

	memset(&r, 0, sizeof(r));
	r.c = c;
	r.lock = lock;
	r.rc = -1;
	if (status_topics(&r) == -1)
		return EXIT_USAGE;
	if (cli_random_hex(r.nonce, NONCE_DIGITS) == -1)
		return EXIT_SOFTWARE;
	snprintf(r.marker, sizeof(r.marker), "{\"marker\":\"%s\"}", r.nonce);
	subs[0] = (struct mqtt_sub){r.t_status, 1, 0, 0, 0};
	if (lock != NULL) {
		subs[1] = (struct mqtt_sub){r.t_reply, 1, 0, 0, 0};
		nsubs = 2;
	} else {
		subs[1] = (struct mqtt_sub){r.t_owner, 1, 0, 0, 0};
		subs[2] = (struct mqtt_sub){r.t_sync, 1, 0, 0, 0};
		nsubs = 3;
	}
	if ((m = cli_client(c, subs, nsubs)) == NULL)
		return EXIT_UNAVAILABLE;
	if (mqtt_connect(m) == -1) {
		fprintf(stderr, "mqlock: cannot connect to %s\n", c->broker);
		mqtt_free(m);
		return EXIT_UNAVAILABLE;
	}
	while (r.rc < 0) {
		if (clock_mono_ms() >= until) {
			fprintf(stderr,
			    "mqlock: no complete answer from %s within %d s\n",
			    c->broker, STATUS_DEADLINE_MS / 1000);
			r.rc = EXIT_UNAVAILABLE;
			break;
		}
		if ((sig = cli_wait(m, until)) == SIGINT || sig == SIGTERM) {
			r.rc = 128 + sig;
			break;
		}
		while (r.rc < 0 && (in = mqtt_next(m)) != NULL) {
			if (in->kind == MQTT_IN_CONNECTED &&
			    status_ask(m, &r) == -1)
				r.rc = EXIT_UNAVAILABLE;
			else if (in->kind == MQTT_IN_CONNECT_FAILED ||
			    in->kind == MQTT_IN_LOST) {
				fprintf(stderr,
				    "mqlock: cannot talk to %s: %s\n",
				    c->broker, in->reason);
				r.rc = EXIT_UNAVAILABLE;
			} else if (in->kind == MQTT_IN_MESSAGE)
				status_message(&r, in);
			mqtt_in_free(in);
		}
	}
	free(r.t.rows);
	mqtt_free(m);
	return r.rc;
}

static void
watch_line(const struct cli *c, const char *t_status, const struct mqtt_in *in)
{
	char stamp[32], hms[16], text[2 * TEXT_SZ], name[MQL_LOCK_ID_SZ];
	char lock[4 * MQL_LOCK_ID_MAX + 1];
	int64_t now = clock_wall_ms();
	struct owner o;

	local_time(now, 0, hms, sizeof(hms));
	snprintf(stamp, sizeof(stamp), "%s.%03d", hms, (int)(now % 1000));
	if (strcmp(in->topic, t_status) == 0) {
		describe_status(in, 0, text, sizeof(text));
		printf("%s coordinator %s\n", stamp, text);
	} else if (owner_topic_lock(c->prefix, in->topic, name) == 0) {
		parse_owner(name, in, MQL_OWNER_QUEUE_SHOWN, &o);
		if (!o.valid)
			snprintf(text, sizeof(text),
			    "unreadable owner message");
		else if (o.held)
			snprintf(text, sizeof(text), "held by %s%s token %lld",
			    o.holder, o.connected ? "" : " (disconnected)",
			    (long long)o.token);
		else
			snprintf(text, sizeof(text), "free");
		printf("%s %s %s", stamp, shown(name, lock, sizeof(lock)),
		    text);
		if (o.valid && o.waiting > 0)
			printf(", %lld waiting: %s%s", (long long)o.waiting,
			    o.waiters,
			    (int64_t)o.shown < o.waiting ? ", ..." : "");
		putchar('\n');
	} else
		return;
	fflush(stdout);
}

int
cmd_watch(const struct cli *c)
{
	char t_owner[TOPIC_SZ], t_status[TOPIC_SZ];
	struct backoff backoff = BACKOFF_RECONNECT;
	int64_t reconnect_at = -1;
	struct mqtt_sub subs[2];
	struct mqtt_in *in;
	struct mqtt *m;
	int rc = -1, sig, ever = 0;

	if (prefix_topics(c, t_owner, t_status) == -1)
		return EXIT_USAGE;
	subs[0] = (struct mqtt_sub){t_owner, 1, 0, 0, 0};
	subs[1] = (struct mqtt_sub){t_status, 1, 0, 0, 0};
	if ((m = cli_client(c, subs, 2)) == NULL)
		return EXIT_UNAVAILABLE;
	if (mqtt_connect(m) == -1) {
		fprintf(stderr, "mqlock: cannot connect to %s\n", c->broker);
		mqtt_free(m);
		return EXIT_UNAVAILABLE;
	}
	while (rc < 0) {
		if ((sig = cli_wait(m, reconnect_at)) == SIGINT ||
		    sig == SIGTERM) {
			rc = 0;
			break;
		}
		if (reconnect_at >= 0 && clock_mono_ms() >= reconnect_at) {
			reconnect_at = -1;
			if (mqtt_connect(m) == -1)
				reconnect_at =
				    clock_mono_ms() + backoff_next(&backoff);
		}
		while (rc < 0 && (in = mqtt_next(m)) != NULL) {
			switch (in->kind) {
			case MQTT_IN_CONNECTED:
				ever = 1;
				backoff_reset(&backoff);
				break;
			case MQTT_IN_CONNECT_FAILED:
			case MQTT_IN_LOST:
				if (!ever) {
					fprintf(stderr,
					    "mqlock: cannot connect to %s: "
					    "%s\n",
					    c->broker, in->reason);
					rc = EXIT_UNAVAILABLE;
					break;
				}
				if (in->kind == MQTT_IN_LOST)
					fprintf(stderr,
					    "mqlock: connection lost (%s); "
					    "reconnecting\n",
					    in->reason);
				reconnect_at =
				    clock_mono_ms() + backoff_next(&backoff);
				break;
			case MQTT_IN_MESSAGE:
				watch_line(c, t_status, in);
				break;
			case MQTT_IN_OVERFLOW:
				fprintf(stderr, "mqlock: %zu updates missed\n",
				    in->dropped);
				break;
			default:
				break;
			}
			mqtt_in_free(in);
		}
	}
	mqtt_free(m);
	return rc;
}
