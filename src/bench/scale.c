#include "bench/scale.h"

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
#include "bench/cycle.h"
#include "bench/proc.h"
#include "bench/proto.h"
#include "core/limits.h"
#include "io/clock.h"
#include "io/log.h"

#define PER_CLIENT 250 /* locks held or awaited per client id (<= 256) */
#define CONNECT_MS 30000
#define TOPIC_MAX 256
#define PAYLOAD_MAX 512

enum fill_kind { FILL_HOLD, FILL_WAIT };

struct filler;

struct fconn {
	struct filler *f;
	struct conn *conn;
	int idx;
	pthread_mutex_t mu;
	long cursor; /* next candidate index of the current step */
};

struct filler {
	struct world *w;
	const struct scale_opts *o;
	struct fconn *fc;
	/* The current step: requests [a, b) of one kind to one coordinator. */
	enum fill_kind kind;
	enum world_coord coord;
	long a, b;
	atomic_long done;
	long want; /* b - a */
	atomic_ulong errors;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void
client_id(char *buf, size_t size, const struct filler *f, char kind, long k)
{
	snprintf(buf, size, "b%d-%s-%c%ld", (int)getpid(), f->o->tag, kind, k);
}

/* The next index >= cursor in [a, b) whose client is on connection c. */
static long
next_index(const struct filler *f, int c, long cursor)
{
	long n = f->o->conns, k = cursor / PER_CLIENT;
	long skip = ((long)c - k % n + n) % n;

	if (skip > 0)
		cursor = (k + skip) * PER_CLIENT;
	return cursor < f->b ? cursor : -1;
}

/* One request of the step is answered (or failed); the last one wakes the
 * main thread. */
static void
count_done(struct filler *f)
{
	if (atomic_fetch_add(&f->done, 1) + 1 == f->want) {
		pthread_mutex_lock(&f->mu);
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
	}
}

/* Issue the next request of connection fc, if any is left. */
static void
issue(struct fconn *fc)
{
	struct filler *f = fc->f;
	char topic[TOPIC_MAX], payload[PAYLOAD_MAX], id[64], session[96];
	long i, lock;

	pthread_mutex_lock(&fc->mu);
	i = next_index(f, fc->idx, fc->cursor);
	if (i >= 0)
		fc->cursor = i + 1;
	pthread_mutex_unlock(&fc->mu);
	if (i < 0)
		return;
	client_id(id, sizeof(id), f, f->kind == FILL_HOLD ? 'h' : 'w',
	    i / PER_CLIENT);
	snprintf(session, sizeof(session), "%s-0123456789abcdef", id);
	lock = f->kind == FILL_HOLD
	    ? i
	    : (long)((double)i * (double)f->o->locks / (double)f->o->waiters);
	snprintf(topic, sizeof(topic), "%s/doc-%07ld/request",
	    world_prefix(f->w, f->coord), lock);
	if (proto_request(payload, sizeof(payload), PROTO_ACQUIRE, id,
		session) < 0 ||
	    conn_publish(fc->conn, topic, payload, strlen(payload), 0) != 0) {
		atomic_fetch_add(&f->errors, 1);
		count_done(f);
	}
}

static void
on_fill_event(void *arg, const char *topic, const char *payload, size_t len)
{
	struct fconn *fc = arg;
	struct filler *f = fc->f;
	const char *p = world_prefix(f->w, f->coord);
	char lock[MQL_LOCK_ID_SZ];
	uint64_t token;
	enum proto_kind k;

	if (strncmp(topic, p, strlen(p)) != 0)
		return;
	/* Every acquire gets exactly one event: granted, queued or error. */
	k = proto_event(payload, len, lock, sizeof(lock), &token);
	if (k == PROTO_REFUSED) {
		log_limited(LOG_LEVEL_ERROR, "bench: refused: %s", payload);
		atomic_fetch_add(&f->errors, 1);
	} else if (k != PROTO_MINE && k != PROTO_QUEUED)
		return;
	count_done(f);
	issue(fc);
}

/* Subscribe connection c to the events of every client id it speaks for. */
static int
fill_subscribe(struct filler *f, int c)
{
	long holders = (f->o->locks + PER_CLIENT - 1) / PER_CLIENT;
	long waiters = (f->o->waiters + PER_CLIENT - 1) / PER_CLIENT;
	size_t cap =
	    (size_t)W_NCOORD * (size_t)((holders + waiters) / f->o->conns + 2);
	char(*buf)[TOPIC_MAX] = calloc(cap, TOPIC_MAX);
	const char **fl = calloc(cap, sizeof(*fl));
	char id[64];
	size_t n = 0;
	int rc = -1;

	if (buf == NULL || fl == NULL)
		goto out;
	for (int kind = 0; kind < 2; kind++) {
		long count = kind == 0 ? holders : waiters;

		for (long k = c; k < count; k += f->o->conns) {
			client_id(id, sizeof(id), f, kind == 0 ? 'h' : 'w', k);
			for (int s = 0; s < W_NCOORD && n < cap; s++, n++) {
				snprintf(buf[n], TOPIC_MAX,
				    "%s/_clients/%s/events",
				    world_prefix(f->w, s), id);
				fl[n] = buf[n];
			}
		}
	}
	rc = conn_subscribe(f->fc[c].conn, fl, n, 0, CONNECT_MS);
out:
	free(buf);
	free(fl);
	return rc;
}

static int
fill_connect(struct filler *f)
{
	int rc = 0;

	for (int c = 0; c < f->o->conns; c++) {
		char id[64];

		f->fc[c].f = f;
		f->fc[c].idx = c;
		pthread_mutex_init(&f->fc[c].mu, NULL);
		client_id(id, sizeof(id), f, 'f', c);
		f->fc[c].conn =
		    conn_start(&(struct conn_opts){.uri = world_uri(f->w),
			.client_id = id,
			.fn = on_fill_event,
			.arg = &f->fc[c]});
		if (f->fc[c].conn == NULL)
			return -1;
	}
	for (int c = 0; c < f->o->conns && rc == 0; c++)
		rc = conn_wait(f->fc[c].conn, CONNECT_MS);
	for (int c = 0; c < f->o->conns && rc == 0; c++)
		rc = fill_subscribe(f, c);
	return rc;
}

/* One step: requests [a, b) of one kind to coordinator s.  Adds its wall
 * time and the coordinator's CPU time to *secs and *cpu_us. */
static int
fill_step(struct filler *f, enum world_coord s, enum fill_kind kind, long a,
    long b, double *secs, double *cpu_us)
{
	pid_t pid = world_pid(f->w, s);
	int64_t cpu0 = pid > 0 ? proc_cpu_us(pid) : -1, cpu1;
	uint64_t start = stats_now_ns(), idle_since = start;
	long seen = -1, want = b - a;

	if (want <= 0)
		return 0;
	f->kind = kind;
	f->coord = s;
	f->a = a;
	f->b = b;
	f->want = want;
	atomic_store(&f->done, 0);
	for (int c = 0; c < f->o->conns; c++)
		f->fc[c].cursor = a;
	for (int k = 0; k < f->o->window; k++)
		for (int c = 0; c < f->o->conns; c++)
			issue(&f->fc[c]);
	pthread_mutex_lock(&f->mu);
	while (atomic_load(&f->done) < want) {
		struct timespec slice = clock_mono_in(200);
		long d = atomic_load(&f->done);

		if (d != seen) {
			seen = d;
			idle_since = stats_now_ns();
		} else if (stats_now_ns() - idle_since >
		    (uint64_t)f->o->timeout_ms * 1000000u) {
			pthread_mutex_unlock(&f->mu);
			log_error("bench: %s: filling stalled at %ld of %ld",
			    world_name(s), d, want);
			return -1;
		}
		pthread_cond_timedwait(&f->cv, &f->mu, &slice);
	}
	pthread_mutex_unlock(&f->mu);
	cpu1 = pid > 0 ? proc_cpu_us(pid) : -1;
	*secs += (double)(stats_now_ns() - start) / 1e9;
	if (cpu0 >= 0 && cpu1 >= 0)
		*cpu_us += (double)(cpu1 - cpu0);
	else
		*cpu_us = NAN;
	return 0;
}

/* Fill coordinator s from (locks a0, waiters e0) up to (a1, e1). */
static int
fill_to(struct filler *f, enum world_coord s, long a0, long a1, long e0,
    long e1, double *secs, double *cpu_us)
{
	fprintf(stderr, "bench: %s: filling locks %ld..%ld, waiters %ld..%ld\n",
	    world_name(s), a0, a1, e0, e1);
	if (fill_step(f, s, FILL_HOLD, a0, a1, secs, cpu_us) != 0 ||
	    fill_step(f, s, FILL_WAIT, e0, e1, secs, cpu_us) != 0)
		return -1;
	return 0;
}

static int
probe(struct world *w, const struct scale_opts *o, const char *tag,
    struct stats **lat, double *cpu)
{
	struct cycle_opts co = {
	    .clients = 1,
	    .locks = 1,
	    .window = 1,
	    .ops = o->probe_ops,
	    .warmup = o->probe_ops / 10,
	    .rounds = o->rounds,
	    .timeout_ms = o->timeout_ms,
	    .tag = tag,
	    .only = -1,
	};
	struct cycle_result r;
	int rc = cycle_run(w, &co, &r);

	for (int s = 0; s < W_NCOORD; s++) {
		if (rc == 0) {
			stats_merge(lat[s], r.lat[s]);
			cpu[s] =
			    r.ops[s] > 0 ? r.cpu_us[s] / (double)r.ops[s] : NAN;
		}
	}
	if (r.errors > 0)
		log_error("bench: probe: %lu errors", r.errors);
	rc = rc == 0 && r.errors == 0 ? 0 : -1;
	cycle_result_free(&r);
	return rc;
}

/* Restart coordinator s; then time a fresh acquire by the probe client. */
struct restart_probe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t granted_ns;
	char lock[MQL_LOCK_ID_SZ];
};

static void
on_probe_event(void *arg, const char *topic, const char *payload, size_t len)
{
	struct restart_probe *rp = arg;
	char lock[MQL_LOCK_ID_SZ];
	uint64_t token;

	if (proto_event(payload, len, lock, sizeof(lock), &token) != PROTO_MINE)
		return;
	pthread_mutex_lock(&rp->mu);
	if (strcmp(lock, rp->lock) == 0 && rp->granted_ns == 0) {
		rp->granted_ns = stats_now_ns();
		pthread_cond_broadcast(&rp->cv);
	}
	pthread_mutex_unlock(&rp->mu);
}

static int
restart(struct world *w, const struct scale_opts *o, struct conn *pc,
    struct restart_probe *rp, enum world_coord s, struct scale_result *out)
{
	char topic[TOPIC_MAX], payload[PAYLOAD_MAX], session[96];
	uint64_t spawned, online, end;
	int rc = 0;

	fprintf(stderr, "bench: %s: kill -9 and restart\n", world_name(s));
	if (world_restart(w, s, o->restart_timeout_ms, &spawned, &online) != 0)
		return -1;
	pthread_mutex_lock(&rp->mu);
	rp->granted_ns = 0;
	snprintf(rp->lock, sizeof(rp->lock), "restart-%s", world_name(s));
	pthread_mutex_unlock(&rp->mu);
	snprintf(topic, sizeof(topic), "%s/%s/request", world_prefix(w, s),
	    rp->lock);
	snprintf(session, sizeof(session), "%s-0123456789abcdef", conn_id(pc));
	if (proto_request(payload, sizeof(payload), PROTO_ACQUIRE, conn_id(pc),
		session) < 0 ||
	    conn_publish(pc, topic, payload, strlen(payload), 0) != 0)
		return -1;
	end = stats_now_ns() + (uint64_t)o->restart_timeout_ms * 1000000u;
	pthread_mutex_lock(&rp->mu);
	while (rp->granted_ns == 0 && stats_now_ns() < end) {
		struct timespec slice = clock_mono_in(1000);

		pthread_cond_timedwait(&rp->cv, &rp->mu, &slice);
	}
	if (rp->granted_ns == 0)
		rc = -1;
	else
		out->serving_ms[s] = (double)(rp->granted_ns - spawned) / 1e6;
	pthread_mutex_unlock(&rp->mu);
	if (rc != 0) {
		log_error("bench: %s: no grant after the restart",
		    world_name(s));
		return -1;
	}
	out->online_ms[s] = (double)(online - spawned) / 1e6;
	out->rss_restart_kb[s] =
	    (double)proc_status_kb(world_pid(w, s), "VmRSS");
	return 0;
}

static int
restart_all(struct world *w, const struct scale_opts *o,
    struct scale_result *out)
{
	static const enum world_coord order[W_NCOORD] = {W_STANDIN, W_MQLOCKD};
	struct restart_probe rp = {.granted_ns = 0};
	char id[64], topic[W_NCOORD][TOPIC_MAX];
	const char *fl[W_NCOORD];
	struct conn *pc;
	int rc = -1;

	pthread_mutex_init(&rp.mu, NULL);
	stats_cond_init(&rp.cv);
	snprintf(id, sizeof(id), "b%d-%s-probe", (int)getpid(), o->tag);
	for (int s = 0; s < W_NCOORD; s++) {
		snprintf(topic[s], TOPIC_MAX, "%s/_clients/%s/events",
		    world_prefix(w, s), id);
		fl[s] = topic[s];
	}
	pc = conn_start(&(struct conn_opts){.uri = world_uri(w),
	    .client_id = id,
	    .fn = on_probe_event,
	    .arg = &rp});
	if (pc != NULL && conn_wait(pc, CONNECT_MS) == 0 &&
	    conn_subscribe(pc, fl, W_NCOORD, 0, CONNECT_MS) == 0) {
		/* A coordinator that does not serve again in time is a
		 * result (restart_failed), not a failure of the run. */
		for (size_t i = 0; i < W_NCOORD; i++) {
			enum world_coord s = order[i];

			out->restart_failed[s] =
			    restart(w, o, pc, &rp, s, out) != 0;
		}
		rc = 0;
	}
	conn_free(pc);
	pthread_cond_destroy(&rp.cv);
	pthread_mutex_destroy(&rp.mu);
	return rc;
}

int
scale_run(struct world *w, const struct scale_opts *o, struct scale_result *out)
{
	struct filler f = {.w = w, .o = o};
	long eb;
	double secs[W_NCOORD] = {0, 0}, cpu[W_NCOORD] = {0, 0};
	char tag[32];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	for (int s = 0; s < W_NCOORD; s++) {
		if ((out->base[s] = stats_new()) == NULL ||
		    (out->full[s] = stats_new()) == NULL)
			return -1;
		out->online_ms[s] = out->serving_ms[s] = NAN;
		out->rss_restart_kb[s] = NAN;
	}
	if (o->waiters > o->locks || o->base_locks > o->locks || o->conns < 1 ||
	    o->window < 1 || o->locks < 1) {
		log_error("bench: scale needs waiters <= locks, base <= locks");
		return -1;
	}
	/* Waiters that fall on the first B locks. */
	eb = (long)ceil(
	    (double)o->base_locks * (double)o->waiters / (double)o->locks);
	pthread_mutex_init(&f.mu, NULL);
	stats_cond_init(&f.cv);
	if ((f.fc = calloc((size_t)o->conns, sizeof(*f.fc))) == NULL ||
	    fill_connect(&f) != 0)
		goto out;
	for (int s = 0; s < W_NCOORD; s++)
		if (fill_to(&f, (enum world_coord)s, 0, o->base_locks, 0, eb,
			&secs[s], &cpu[s]) != 0)
			goto out;
	snprintf(tag, sizeof(tag), "%s-base", o->tag);
	if (probe(w, o, tag, out->base, out->cpu_base) != 0)
		goto out;
	for (int s = 0; s < W_NCOORD; s++)
		if (fill_to(&f, (enum world_coord)s, o->base_locks, o->locks,
			eb, o->waiters, &secs[s], &cpu[s]) != 0)
			goto out;
	for (int s = 0; s < W_NCOORD; s++) {
		long n = o->locks + o->waiters;

		out->fill_ops_per_s[s] =
		    secs[s] > 0 ? (double)n / secs[s] : NAN;
		out->fill_cpu_us[s] = cpu[s] / (double)n;
		out->rss_kb[s] =
		    (double)proc_status_kb(world_pid(w, s), "VmRSS");
		out->hwm_kb[s] =
		    (double)proc_status_kb(world_pid(w, s), "VmHWM");
	}
	out->broker_rss_kb = world_broker_pid(w) > 0
	    ? (double)proc_status_kb(world_broker_pid(w), "VmRSS")
	    : NAN;
	snprintf(tag, sizeof(tag), "%s-full", o->tag);
	if (probe(w, o, tag, out->full, out->cpu_full) != 0)
		goto out;
	if (restart_all(w, o, out) != 0)
		goto out;
	rc = 0;
out:
	out->errors += atomic_load(&f.errors);
	if (f.fc != NULL) {
		for (int c = 0; c < o->conns; c++) {
			if (f.fc[c].conn != NULL)
				out->errors += conn_failures(f.fc[c].conn);
			conn_free(f.fc[c].conn);
			if (f.fc[c].f != NULL)
				pthread_mutex_destroy(&f.fc[c].mu);
		}
		free(f.fc);
	}
	pthread_cond_destroy(&f.cv);
	pthread_mutex_destroy(&f.mu);
	return rc;
}

void
scale_result_free(struct scale_result *r)
{
	for (int s = 0; s < W_NCOORD; s++) {
		stats_free(r->base[s]);
		stats_free(r->full[s]);
		r->base[s] = r->full[s] = NULL;
	}
}
