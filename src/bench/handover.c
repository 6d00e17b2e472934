#include "bench/handover.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/conn.h"
#include "bench/proc.h"
#include "bench/proto.h"
#include "core/limits.h"
#include "io/clock.h"
#include "io/log.h"

#define CONNECT_MS 30000
#define TOPIC_MAX 256
#define PAYLOAD_MAX 512

enum phase { PH_IDLE, PH_SETUP, PH_RUN };

struct ho;

struct client {
	struct ho *h;
	struct conn *conn;
	char id[64];
	char session[64];
	char req[2][PAYLOAD_MAX];
	int reqlen[2];
};

struct ho {
	struct world *w;
	const struct handover_opts *o;
	struct client *cl;
	pthread_mutex_t mu; /* guards everything below, and signals cv */
	pthread_cond_t cv;
	enum phase phase;
	enum world_coord coord;
	char lock[MQL_LOCK_ID_SZ];
	uint64_t last_token;
	bool setup_granted;
	int setup_queued;
	long count, target;
	uint64_t t_release;
	uint64_t t_last;
	struct stats *seg; /* NULL: warm-up */
	atomic_ulong errors;
};

static int
send_req(struct client *c, enum world_coord s, const char *lock,
    enum proto_op op)
{
	char topic[TOPIC_MAX];

	snprintf(topic, sizeof(topic), "%s/%s/request",
	    world_prefix(c->h->w, s), lock);
	if (conn_publish(c->conn, topic, c->req[op], (size_t)c->reqlen[op],
		0) != 0) {
		atomic_fetch_add(&c->h->errors, 1);
		return -1;
	}
	return 0;
}

static void
on_message(void *arg, const char *topic, const char *payload, size_t len)
{
	struct client *c = arg;
	struct ho *h = c->h;
	char lock[MQL_LOCK_ID_SZ], cur[MQL_LOCK_ID_SZ];
	uint64_t token = 0, now;
	enum proto_kind k =
	    proto_event(payload, len, lock, sizeof(lock), &token);
	enum world_coord s;
	bool again = false;

	now = stats_now_ns();
	if (k == PROTO_REFUSED) {
		log_limited(LOG_LEVEL_ERROR, "bench: refused on %s: %s", topic,
		    payload);
		atomic_fetch_add(&h->errors, 1);
		return;
	}
	if (k != PROTO_MINE && k != PROTO_QUEUED)
		return;
	pthread_mutex_lock(&h->mu);
	s = h->coord;
	if (strncmp(topic, world_prefix(h->w, s),
		strlen(world_prefix(h->w, s))) != 0) {
		pthread_mutex_unlock(&h->mu);
		return;
	}
	if (h->phase == PH_SETUP) {
		/* Old segments' locks are silent: every event is ours. */
		if (k == PROTO_QUEUED)
			h->setup_queued++;
		else if (strcmp(lock, h->lock) == 0) {
			h->setup_granted = true;
			h->last_token = token;
		}
		pthread_cond_broadcast(&h->cv);
	} else if (h->phase == PH_RUN && k == PROTO_MINE &&
	    strcmp(lock, h->lock) == 0 && token > h->last_token) {
		h->last_token = token;
		if (h->seg != NULL)
			stats_add(h->seg, now - h->t_release);
		h->t_last = now;
		h->count++;
		if (h->count < h->target) {
			again = true;
			snprintf(cur, sizeof(cur), "%s", h->lock);
			h->t_release = stats_now_ns();
		} else
			pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	/* Hand it on at once, and line up again at the end. */
	if (again && send_req(c, s, cur, PROTO_RELEASE) == 0)
		send_req(c, s, cur, PROTO_ACQUIRE);
}

/* Wait for cond (evaluated under mu) for up to timeout_ms of no change. */
static int
wait_until(struct ho *h, bool (*cond)(const struct ho *), const char *what)
{
	uint64_t end = stats_now_ns() + (uint64_t)h->o->timeout_ms * 1000000u;
	long seen = -1;
	bool ok;

	pthread_mutex_lock(&h->mu);
	while (!(ok = cond(h)) && stats_now_ns() < end) {
		struct timespec slice = clock_mono_in(100);

		if (h->count != seen) {
			seen = h->count;
			end = stats_now_ns() +
			    (uint64_t)h->o->timeout_ms * 1000000u;
		}
		pthread_cond_timedwait(&h->cv, &h->mu, &slice);
	}
	pthread_mutex_unlock(&h->mu);
	if (!ok)
		log_error("bench: %s: %s: nothing for %d ms",
		    world_name(h->coord), what, h->o->timeout_ms);
	return ok ? 0 : -1;
}

static bool
holder_granted(const struct ho *h)
{
	return h->setup_granted;
}

static bool
all_queued(const struct ho *h)
{
	return h->setup_queued >= h->o->clients - 1;
}

static bool
all_handed(const struct ho *h)
{
	return h->count >= h->target;
}

static int
segment(struct ho *h, enum world_coord s, int seq, long n, struct stats *seg,
    struct handover_result *out)
{
	pid_t pid = world_pid(h->w, s), bpid = world_broker_pid(h->w);
	int64_t cpu0, cpu1, bcpu0, bcpu1;
	uint64_t start;
	char lock[MQL_LOCK_ID_SZ];

	if (n <= 0)
		return 0;
	snprintf(lock, sizeof(lock), "b%d-%s-s%d", (int)getpid(), h->o->tag,
	    seq);
	pthread_mutex_lock(&h->mu);
	h->phase = PH_SETUP;
	h->coord = s;
	snprintf(h->lock, sizeof(h->lock), "%s", lock);
	h->setup_granted = false;
	h->setup_queued = 0;
	h->count = 0;
	h->target = n;
	h->last_token = 0;
	h->seg = seg;
	pthread_mutex_unlock(&h->mu);

	if (send_req(&h->cl[0], s, lock, PROTO_ACQUIRE) != 0 ||
	    wait_until(h, holder_granted, "first grant") != 0)
		return -1;
	for (int i = 1; i < h->o->clients; i++)
		if (send_req(&h->cl[i], s, lock, PROTO_ACQUIRE) != 0)
			return -1;
	if (wait_until(h, all_queued, "queueing") != 0)
		return -1;

	cpu0 = pid > 0 ? proc_cpu_us(pid) : -1;
	bcpu0 = bpid > 0 ? proc_cpu_us(bpid) : -1;
	pthread_mutex_lock(&h->mu);
	h->phase = PH_RUN;
	start = h->t_release = stats_now_ns();
	pthread_mutex_unlock(&h->mu);
	/* Client 0 holds: its release starts the chain. */
	if (send_req(&h->cl[0], s, lock, PROTO_RELEASE) != 0 ||
	    send_req(&h->cl[0], s, lock, PROTO_ACQUIRE) != 0 ||
	    wait_until(h, all_handed, "hand-over") != 0)
		return -1;
	cpu1 = pid > 0 ? proc_cpu_us(pid) : -1;
	bcpu1 = bpid > 0 ? proc_cpu_us(bpid) : -1;
	pthread_mutex_lock(&h->mu);
	h->phase = PH_IDLE;
	h->seg = NULL;
	pthread_mutex_unlock(&h->mu);
	if (seg == NULL)
		return 0;
	out->n[s] += n;
	out->secs[s] += (double)(h->t_last - start) / 1e9;
	if (cpu0 >= 0 && cpu1 >= 0 && !isnan(out->cpu_us[s]))
		out->cpu_us[s] += (double)(cpu1 - cpu0);
	else
		out->cpu_us[s] = NAN;
	if (bcpu0 >= 0 && bcpu1 >= 0 && !isnan(out->broker_cpu_us[s]))
		out->broker_cpu_us[s] += (double)(bcpu1 - bcpu0);
	else
		out->broker_cpu_us[s] = NAN;
	return 0;
}

static int
connect_all(struct ho *h)
{
	const struct handover_opts *o = h->o;
	char topic[W_NCOORD][TOPIC_MAX];
	const char *f[W_NCOORD];
	int rc = 0;

	for (int i = 0; i < o->clients; i++) {
		struct client *c = &h->cl[i];

		c->h = h;
		snprintf(c->id, sizeof(c->id), "b%d-%s-c%d", (int)getpid(),
		    o->tag, i);
		snprintf(c->session, sizeof(c->session),
		    "s%d-%s-c%d-0123456789", (int)getpid(), o->tag, i);
		if (!proto_id_ok(c->id) || !proto_id_ok(c->session)) {
			log_error("bench: bad tag '%s'", o->tag);
			return -1;
		}
		c->reqlen[PROTO_ACQUIRE] = proto_request(c->req[PROTO_ACQUIRE],
		    PAYLOAD_MAX, PROTO_ACQUIRE, c->id, c->session);
		c->reqlen[PROTO_RELEASE] = proto_request(c->req[PROTO_RELEASE],
		    PAYLOAD_MAX, PROTO_RELEASE, c->id, c->session);
		c->conn = conn_start(&(struct conn_opts){.uri = world_uri(h->w),
		    .client_id = c->id,
		    .fn = on_message,
		    .arg = c});
		if (c->conn == NULL)
			return -1;
	}
	for (int i = 0; i < o->clients && rc == 0; i++) {
		struct client *c = &h->cl[i];

		for (int s = 0; s < W_NCOORD; s++) {
			snprintf(topic[s], TOPIC_MAX, "%s/_clients/%s/events",
			    world_prefix(h->w, s), c->id);
			f[s] = topic[s];
		}
		rc = conn_wait(c->conn, CONNECT_MS);
		if (rc == 0)
			rc =
			    conn_subscribe(c->conn, f, W_NCOORD, 0, CONNECT_MS);
	}
	return rc;
}

int
handover_run(struct world *w, const struct handover_opts *o,
    struct handover_result *out)
{
	struct ho h = {.w = w, .o = o};
	int rc = -1, seq = 0;

	memset(out, 0, sizeof(*out));
	for (int s = 0; s < W_NCOORD; s++)
		if ((out->lat[s] = stats_new()) == NULL)
			return -1;
	if (o->clients < 2 || o->rounds < 1) {
		log_error("bench: contention needs at least 2 clients");
		return -1;
	}
	pthread_mutex_init(&h.mu, NULL);
	stats_cond_init(&h.cv);
	if ((h.cl = calloc((size_t)o->clients, sizeof(*h.cl))) == NULL ||
	    connect_all(&h) != 0)
		goto out;
	for (int s = 0; s < W_NCOORD; s++)
		if (segment(&h, (enum world_coord)s, seq++, o->warmup, NULL,
			out) != 0)
			goto out;
	for (int r = 0; r < o->rounds; r++) {
		long n = o->handovers / o->rounds +
		    (r == o->rounds - 1 ? o->handovers % o->rounds : 0);
		enum world_coord first = r % 2 == 0 ? W_STANDIN : W_MQLOCKD;
		enum world_coord second = r % 2 == 0 ? W_MQLOCKD : W_STANDIN;

		if (segment(&h, first, seq++, n, out->lat[first], out) != 0 ||
		    segment(&h, second, seq++, n, out->lat[second], out) != 0)
			goto out;
	}
	rc = 0;
out:
	out->errors = atomic_load(&h.errors);
	if (h.cl != NULL) {
		for (int i = 0; i < o->clients; i++) {
			if (h.cl[i].conn != NULL)
				out->errors += conn_failures(h.cl[i].conn);
			conn_free(h.cl[i].conn);
		}
		free(h.cl);
	}
	pthread_cond_destroy(&h.cv);
	pthread_mutex_destroy(&h.mu);
	return rc;
}

void
handover_result_free(struct handover_result *r)
{
	for (int s = 0; s < W_NCOORD; s++) {
		stats_free(r->lat[s]);
		r->lat[s] = NULL;
	}
}
