/*
 * modes: the benchmark's modes, each a workload against a running world
 * turned into a report with issue 6's targets.
 */
#ifndef MQLOCK_BENCH_MODES_H
#define MQLOCK_BENCH_MODES_H

#include "bench/report.h"
#include "bench/world.h"

/* Everything the flags set; main.c fills in the defaults of the mode. */
struct bench_opts {
	int clients; /* latency, throughput */
	int locks;   /* throughput: locks per client */
	int window;  /* throughput: ops in flight per client */
	long ops;    /* measured ops (hand-overs) per coordinator */
	long warmup;
	int rounds;
	const char *queues; /* contention: K list, "2,10,100" */
	long held;          /* scale: M */
	long waiters;       /* scale: W */
	long base;          /* scale: B */
	int conns;          /* scale: filling connections */
	int fill_window;    /* scale: requests in flight per connection */
	int timeout_s;
	int restart_timeout_s;
	double max_p50_us; /* 0: none; else exit 3 when exceeded */
	double max_p99_us; /* 0: none; else exit 3 when exceeded */
	double max_us;     /* 0: none; else exit 3 when mqlockd's max exceeds */
	int inflight;      /* broker max_inflight_messages */
};

/*
 * Each mode runs its workload in w and fills r.  Returns 0, 3 when
 * --max-p50-us or --max-p99-us was exceeded, or 1 (logged) when the run
 * failed.
 */
int mode_latency(const struct bench_opts *o, struct world *w, struct report *r);
int mode_throughput(const struct bench_opts *o, struct world *w,
    struct report *r);
int mode_contention(const struct bench_opts *o, struct world *w,
    struct report *r);
int mode_scale(const struct bench_opts *o, struct world *w, struct report *r);

/*
 * mode_ha(o, w, r): in a world started with etcd, mqlockd on etcd against
 * mqlockd on sqlite: latency with one client (o->ops operations), then
 * throughput with 32 clients x 4 locks (ten times as many), alternating
 * between the two; and etcd's own put and fenced transaction latency
 * (o->ops each, between the two workloads and after them) as the floor.
 */
int mode_ha(const struct bench_opts *o, struct world *w, struct report *r);

#endif
