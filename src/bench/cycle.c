#include "bench/cycle.h"

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

#define CONNECT_MS 20000
#define TOPIC_MAX 256
#define PAYLOAD_MAX 512

struct lk {
	bool busy;
	enum proto_op op;
	uint64_t t0;
	bool held[W_NCOORD];
	uint64_t last_token[W_NCOORD];
};

struct cycle;

struct client {
	struct cycle *cy;
	struct conn *conn;
	char id[64];
	char session[64];
	char req[2][PAYLOAD_MAX]; /* acquire, release */
	int reqlen[2];
	pthread_mutex_t mu;
	struct lk *locks;
	int next; /* round robin over the locks */
};

struct cycle {
	struct world *w;
	const struct cycle_opts *o;
	struct client *cl;
	atomic_int coord;   /* whose segment runs */
	atomic_long budget; /* operations that may still be started */
	atomic_long done;   /* operations completed in this segment */
	long target;        /* operations in this segment */
	atomic_ulong errors;
	_Atomic uint64_t last_ns; /* when the latest one completed */
	struct stats *seg;        /* NULL during warm-up */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void
start_next(struct client *c)
{
	struct cycle *cy = c->cy;
	int coord = atomic_load(&cy->coord), L = cy->o->locks, j = -1;
	char topic[TOPIC_MAX];
	enum proto_op op;
	struct lk *l;

	if (atomic_fetch_sub(&cy->budget, 1) <= 0)
		return;
	pthread_mutex_lock(&c->mu);
	for (int k = 0; k < L && j < 0; k++) {
		int i = (c->next + k) % L;

		if (!c->locks[i].busy)
			j = i;
	}
	if (j < 0) {
		/* Cannot happen with W <= L; give the budget back. */
		pthread_mutex_unlock(&c->mu);
		atomic_fetch_add(&cy->budget, 1);
		return;
	}
	c->next = (j + 1) % L;
	l = &c->locks[j];
	l->busy = true;
	op = l->held[coord] ? PROTO_RELEASE : PROTO_ACQUIRE;
	l->op = op;
	snprintf(topic, sizeof(topic), "%s/%s-%d/request",
	    world_prefix(cy->w, coord), c->id, j);
	l->t0 = stats_now_ns();
	pthread_mutex_unlock(&c->mu);
	if (conn_publish(c->conn, topic, c->req[op], (size_t)c->reqlen[op],
		0) != 0)
		atomic_fetch_add(&cy->errors, 1);
}

/* An operation on lock j finished (ok: as asked). */
static void
complete(struct client *c, int j, int coord, enum proto_kind k, uint64_t token)
{
	struct cycle *cy = c->cy;
	uint64_t now = stats_now_ns(), took = 0;
	struct lk *l = &c->locks[j];
	bool done = false;

	pthread_mutex_lock(&c->mu);
	if (l->busy && k == PROTO_REFUSED) {
		atomic_fetch_add(&cy->errors, 1);
		done = true;
	} else if (l->busy && l->op == PROTO_ACQUIRE && k == PROTO_MINE &&
	    token > l->last_token[coord]) {
		l->last_token[coord] = token;
		l->held[coord] = true;
		done = true;
	} else if (l->busy && l->op == PROTO_RELEASE && k == PROTO_FREE) {
		l->held[coord] = false;
		done = true;
	}
	if (done) {
		l->busy = false;
		took = now - l->t0;
	}
	pthread_mutex_unlock(&c->mu);
	if (!done)
		return;
	if (cy->seg != NULL && k != PROTO_REFUSED)
		stats_add(cy->seg, took);
	atomic_store(&cy->last_ns, now);
	/* Only the last one wakes the main thread: one wake-up per operation
	 * would cost the client a context switch each. */
	if (atomic_fetch_add(&cy->done, 1) + 1 == cy->target) {
		pthread_mutex_lock(&cy->mu);
		pthread_cond_broadcast(&cy->cv);
		pthread_mutex_unlock(&cy->mu);
	}
	start_next(c);
}

/* The index of lock `name` of client c, or -1. */
static int
lock_index(const struct client *c, const char *name, size_t len)
{
	size_t il = strlen(c->id);
	char *end;
	long j;

	if (len <= il + 1 || strncmp(name, c->id, il) != 0 || name[il] != '-')
		return -1;
	j = strtol(name + il + 1, &end, 10);
	if (end != name + len || j < 0 || j >= c->cy->o->locks)
		return -1;
	return (int)j;
}

static void
on_message(void *arg, const char *topic, const char *payload, size_t len)
{
	struct client *c = arg;
	struct cycle *cy = c->cy;
	int coord = atomic_load(&cy->coord), j;
	const char *p = world_prefix(cy->w, coord), *rest, *slash;
	size_t pl = strlen(p);
	char lock[MQL_LOCK_ID_SZ];
	uint64_t token = 0;
	enum proto_kind k;

	/* Late messages of the other coordinator's segment are ignored. */
	if (strncmp(topic, p, pl) != 0 || topic[pl] != '/')
		return;
	rest = topic + pl + 1;
	if (strncmp(rest, "_clients/", 9) == 0) {
		k = proto_event(payload, len, lock, sizeof(lock), &token);
		if (k == PROTO_MINE || k == PROTO_REFUSED) {
			j = lock_index(c, lock, strlen(lock));
			if (j >= 0)
				complete(c, j, coord, k, token);
			else if (k == PROTO_REFUSED) {
				log_limited(LOG_LEVEL_ERROR,
				    "bench: refused: %s", payload);
				atomic_fetch_add(&cy->errors, 1);
			}
		}
		return;
	}
	if ((slash = strchr(rest, '/')) == NULL || strcmp(slash, "/owner") != 0)
		return;
	if ((j = lock_index(c, rest, (size_t)(slash - rest))) < 0)
		return;
	k = proto_owner(payload, len, c->id, &token);
	if (k == PROTO_MINE || k == PROTO_FREE)
		complete(c, j, coord, k, token);
}

/* Subscribe c to its events and its locks' owner messages, both sides. */
static int
subscribe(struct cycle *cy, struct client *c)
{
	int L = cy->o->locks, n = 0, rc;
	size_t nf = (size_t)W_NCOORD * ((size_t)L + 1);
	char(*buf)[TOPIC_MAX] = calloc(nf, TOPIC_MAX);
	const char **f = calloc(nf, sizeof(*f));

	if (buf == NULL || f == NULL) {
		free(buf);
		free(f);
		return -1;
	}
	for (int s = 0; s < W_NCOORD; s++) {
		const char *p = world_prefix(cy->w, s);

		snprintf(buf[n], TOPIC_MAX, "%s/_clients/%s/events", p, c->id);
		f[n] = buf[n];
		n++;
		for (int j = 0; j < L; j++, n++) {
			snprintf(buf[n], TOPIC_MAX, "%s/%s-%d/owner", p, c->id,
			    j);
			f[n] = buf[n];
		}
	}
	rc = conn_subscribe(c->conn, f, (size_t)n, 0, CONNECT_MS);
	free(buf);
	free(f);
	return rc;
}

static int
connect_all(struct cycle *cy)
{
	const struct cycle_opts *o = cy->o;
	int rc = 0;

	for (int i = 0; i < o->clients; i++) {
		struct client *c = &cy->cl[i];

		c->cy = cy;
		pthread_mutex_init(&c->mu, NULL);
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
		if ((c->locks = calloc((size_t)o->locks, sizeof(*c->locks))) ==
		    NULL)
			return -1;
		/* Started together: one Paho poll wait for all of them. */
		c->conn =
		    conn_start(&(struct conn_opts){.uri = world_uri(cy->w),
			.client_id = c->id,
			.fn = on_message,
			.arg = c});
		if (c->conn == NULL)
			return -1;
	}
	for (int i = 0; i < o->clients && rc == 0; i++)
		rc = conn_wait(cy->cl[i].conn, CONNECT_MS);
	for (int i = 0; i < o->clients && rc == 0; i++)
		rc = subscribe(cy, &cy->cl[i]);
	return rc;
}

/*
 * One segment of n operations against coordinator s.  seg NULL: warm-up.
 * Adds its wall time and CPU to out (measured only).
 */
static int
segment(struct cycle *cy, enum world_coord s, long n, struct stats *seg,
    struct cycle_result *out)
{
	pid_t pid = world_pid(cy->w, s), bpid = world_broker_pid(cy->w);
	int64_t cpu0 = pid > 0 ? proc_cpu_us(pid) : -1;
	int64_t bcpu0 = bpid > 0 ? proc_cpu_us(bpid) : -1, cpu1, bcpu1;
	int64_t ccpu0 = proc_cpu_us(getpid()), ccpu1;
	long seen = -1;
	uint64_t start, idle_since = stats_now_ns();

	if (n <= 0)
		return 0;
	cy->seg = seg;
	atomic_store(&cy->coord, (int)s);
	atomic_store(&cy->done, 0);
	cy->target = n;
	atomic_store(&cy->budget, n);
	start = stats_now_ns();
	atomic_store(&cy->last_ns, start);
	for (int w = 0; w < cy->o->window; w++)
		for (int i = 0; i < cy->o->clients; i++)
			start_next(&cy->cl[i]);
	pthread_mutex_lock(&cy->mu);
	while (atomic_load(&cy->done) < n) {
		struct timespec slice = clock_mono_in(100);
		long d = atomic_load(&cy->done);

		if (d != seen) {
			seen = d;
			idle_since = stats_now_ns();
		} else if (stats_now_ns() - idle_since >
		    (uint64_t)cy->o->timeout_ms * 1000000u) {
			pthread_mutex_unlock(&cy->mu);
			log_error("bench: %s: no answer for %d ms (%ld of %ld "
				  "operations done)",
			    world_name(s), cy->o->timeout_ms, d, n);
			return -1;
		}
		pthread_cond_timedwait(&cy->cv, &cy->mu, &slice);
	}
	pthread_mutex_unlock(&cy->mu);
	cy->seg = NULL;
	if (seg == NULL)
		return 0;
	cpu1 = pid > 0 ? proc_cpu_us(pid) : -1;
	bcpu1 = bpid > 0 ? proc_cpu_us(bpid) : -1;
	ccpu1 = proc_cpu_us(getpid());
	out->ops[s] += n;
	out->secs[s] += (double)(atomic_load(&cy->last_ns) - start) / 1e9;
	if (cpu0 >= 0 && cpu1 >= 0 && !isnan(out->cpu_us[s]))
		out->cpu_us[s] += (double)(cpu1 - cpu0);
	else
		out->cpu_us[s] = NAN;
	if (bcpu0 >= 0 && bcpu1 >= 0 && !isnan(out->broker_cpu_us[s]))
		out->broker_cpu_us[s] += (double)(bcpu1 - bcpu0);
	else
		out->broker_cpu_us[s] = NAN;
	if (ccpu0 >= 0 && ccpu1 >= 0 && !isnan(out->client_cpu_us[s]))
		out->client_cpu_us[s] += (double)(ccpu1 - ccpu0);
	else
		out->client_cpu_us[s] = NAN;
	return 0;
}

static void
disconnect_all(struct cycle *cy)
{
	for (int i = 0; i < cy->o->clients; i++) {
		struct client *c = &cy->cl[i];

		conn_free(c->conn);
		free(c->locks);
		if (c->cy != NULL)
			pthread_mutex_destroy(&c->mu);
	}
	free(cy->cl);
}

int
cycle_run(struct world *w, const struct cycle_opts *o, struct cycle_result *out)
{
	struct cycle cy = {.w = w, .o = o};
	enum world_coord order[W_NCOORD];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	for (int s = 0; s < W_NCOORD; s++)
		if ((out->lat[s] = stats_new()) == NULL)
			return -1;
	if (o->clients < 1 || o->locks < 1 || o->window < 1 ||
	    o->window > o->locks || o->rounds < 1) {
		log_error("bench: bad cycle options");
		return -1;
	}
	pthread_mutex_init(&cy.mu, NULL);
	stats_cond_init(&cy.cv);
	if ((cy.cl = calloc((size_t)o->clients, sizeof(*cy.cl))) == NULL ||
	    connect_all(&cy) != 0)
		goto out;
	for (int s = 0; s < W_NCOORD; s++)
		if ((o->only < 0 || o->only == s) &&
		    segment(&cy, (enum world_coord)s, o->warmup, NULL, out) !=
			0)
			goto out;
	for (int r = 0; r < o->rounds; r++) {
		long n = o->ops / o->rounds +
		    (r == o->rounds - 1 ? o->ops % o->rounds : 0);

		order[0] = r % 2 == 0 ? W_STANDIN : W_MQLOCKD;
		order[1] = r % 2 == 0 ? W_MQLOCKD : W_STANDIN;
		for (int i = 0; i < W_NCOORD; i++)
			if ((o->only < 0 || o->only == (int)order[i]) &&
			    segment(&cy, order[i], n, out->lat[order[i]],
				out) != 0)
				goto out;
	}
	rc = 0;
out:
	out->errors = atomic_load(&cy.errors);
	if (cy.cl != NULL) {
		for (int i = 0; i < o->clients; i++)
			if (cy.cl[i].conn != NULL)
				out->errors += conn_failures(cy.cl[i].conn);
		disconnect_all(&cy);
	}
	pthread_cond_destroy(&cy.cv);
	pthread_mutex_destroy(&cy.mu);
	return rc;
}

void
cycle_result_free(struct cycle_result *r)
{
	for (int s = 0; s < W_NCOORD; s++) {
		stats_free(r->lat[s]);
		r->lat[s] = NULL;
	}
}
