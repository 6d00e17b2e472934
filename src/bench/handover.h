/*
 * handover: K clients queued on one lock, the contention mode's workload.
 *
 * K clients (each its own connection and client id) line up on one lock:
 * the first holds it, K - 1 wait.  The holder releases; the moment the next
 * holder sees its granted event it records the hand-over latency (from the
 * release being sent to the grant being seen), releases at once and asks
 * again, joining the end of the queue.  So the queue stays K - 1 long, and
 * every hand-over also costs the coordinator the queued events that tell
 * the other waiters their new places.
 *
 * Segments alternate between mqlockd and the stand-in as in cycle.h; each
 * segment uses a fresh lock, so nothing left over from an earlier one
 * (every segment's lock stays held, with its queue) can interfere.
 */
#ifndef MQLOCK_BENCH_HANDOVER_H
#define MQLOCK_BENCH_HANDOVER_H

#include "bench/stats.h"
#include "bench/world.h"

struct handover_opts {
	int clients;     /* K >= 2 */
	long handovers;  /* measured per coordinator */
	long warmup;     /* unmeasured per coordinator first */
	int rounds;      /* segments per coordinator >= 1 */
	int timeout_ms;  /* no progress for this long fails the run */
	const char *tag; /* names clients and locks: unique per world */
};

struct handover_result {
	struct stats *lat[W_NCOORD]; /* made here; see handover_result_free */
	long n[W_NCOORD];
	double secs[W_NCOORD];
	double cpu_us[W_NCOORD]; /* NAN: unknown */
	double broker_cpu_us[W_NCOORD];
	unsigned long errors;
};

/*
 * handover_run(w, o, out): connect K clients, run warm-up and measured
 * segments, disconnect.  Returns 0, or -1 (logged) on a failure or when a
 * hand-over did not happen within o->timeout_ms.
 */
int handover_run(struct world *w, const struct handover_opts *o,
    struct handover_result *out);

/* handover_result_free(r): free r's stats (not r). */
void handover_result_free(struct handover_result *r);

#endif
