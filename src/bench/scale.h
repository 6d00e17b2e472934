/*
 * scale: a coordinator holding many locks, the scale mode's workload.
 *
 * Many client ids share a few connections (a request names its client id
 * and session; it need not be the connection's own), each holding or
 * waiting for at most 250 locks, within topics.md's limits of 256 per
 * client and 1024 waiters per lock.  Lock i ("doc-<i>") is held by client
 * h<i / 250>; waiter e waits for lock e * M / W, so the W waiters are spread
 * evenly over the M locks.
 *
 * Both coordinators are filled in two steps: first B locks (1,000) and the
 * waiters that fall on them, then the rest.  After each step one client
 * times acquire/release cycles on a lock of its own (cycle.h), so the
 * latency at M locks can be compared with the latency at B.  Then the
 * coordinators' memory is read from /proc, and each is killed with SIGKILL
 * and started again: mqlockd on its journal, the stand-in empty (its time
 * is the floor: process start, connect, subscribe).  Serving again means
 * an online status and then a fresh acquire granted.
 */
#ifndef MQLOCK_BENCH_SCALE_H
#define MQLOCK_BENCH_SCALE_H

#include <stdbool.h>

#include "bench/stats.h"
#include "bench/world.h"

struct scale_opts {
	long locks;      /* M */
	long waiters;    /* W <= M */
	long base_locks; /* B <= M */
	int conns;       /* connections that fill */
	int window;      /* requests in flight per connection */
	long probe_ops;  /* timed operations per probe and coordinator */
	int rounds;      /* alternating segments per probe */
	int timeout_ms;  /* no progress for this long fails the run */
	int restart_timeout_ms;
	const char *tag;
};

struct scale_result {
	double fill_ops_per_s[W_NCOORD];
	double fill_cpu_us[W_NCOORD]; /* coordinator CPU per fill request */
	struct stats *base[W_NCOORD]; /* latency at B locks */
	struct stats *full[W_NCOORD]; /* latency at M locks */
	double cpu_base[W_NCOORD], cpu_full[W_NCOORD]; /* us per probe op */
	double rss_kb[W_NCOORD], hwm_kb[W_NCOORD];
	double broker_rss_kb;
	double online_ms[W_NCOORD];      /* restart: start to online status */
	double serving_ms[W_NCOORD];     /* restart: start to a fresh grant */
	double rss_restart_kb[W_NCOORD]; /* after the restart */
	bool restart_failed[W_NCOORD];   /* not serving within the timeout */
	unsigned long errors;
};

/*
 * scale_run(w, o, out): fill, probe, measure and restart as above.
 * out's stats are made here; free them with scale_result_free().  Returns
 * 0, or -1 (logged).
 */
int scale_run(struct world *w, const struct scale_opts *o,
    struct scale_result *out);

/* scale_result_free(r): free r's stats (not r). */
void scale_result_free(struct scale_result *r);

#endif
