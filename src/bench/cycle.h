/*
 * cycle: acquire/release cycles, the workload of the latency and throughput
 * modes (and of the scale mode's latency probes).
 *
 * C clients, each its own MQTT connection and client id, each with L locks
 * of its own.  Every client keeps W operations in flight on distinct locks;
 * each operation alternates between acquire and release on its lock and is
 * timed from just before the request is published until the client sees the
 * result: for an acquire the owner message naming it (or the granted event,
 * whichever comes first), for a release the owner message with owner null.
 *
 * The measured operations are split into segments that alternate between
 * mqlockd and the stand-in (stand-in first in even rounds, mqlockd first in
 * odd ones), so both see the same machine at nearly the same moment.  Each
 * segment reads the coordinator's and the broker's CPU time before and
 * after.
 */
#ifndef MQLOCK_BENCH_CYCLE_H
#define MQLOCK_BENCH_CYCLE_H

#include "bench/stats.h"
#include "bench/world.h"

struct cycle_opts {
	int clients;     /* C >= 1 */
	int locks;       /* L per client >= 1 */
	int window;      /* W in flight per client, 1..L */
	long ops;        /* measured operations per coordinator */
	long warmup;     /* unmeasured operations per coordinator first */
	int rounds;      /* segments per coordinator >= 1 */
	int timeout_ms;  /* no progress for this long fails the run */
	const char *tag; /* names clients and locks: unique per world */
	int only;        /* -1 both coordinators, else just that one */
};

struct cycle_result {
	struct stats *lat[W_NCOORD]; /* owned by the caller, made by cycle */
	long ops[W_NCOORD];
	double secs[W_NCOORD];   /* wall time of the measured segments */
	double cpu_us[W_NCOORD]; /* coordinator CPU in them; NAN: unknown */
	double broker_cpu_us[W_NCOORD];
	double client_cpu_us[W_NCOORD]; /* this process: the clients */
	unsigned long errors;           /* refusals, publish failures */
};

/*
 * cycle_run(w, o, out): connect the clients, run warm-up and measured
 * segments, disconnect.  out's stats are created here; free them with
 * cycle_result_free().  Returns 0, or -1 (logged) when a client could not
 * connect or an operation got no answer within o->timeout_ms.
 */
int cycle_run(struct world *w, const struct cycle_opts *o,
    struct cycle_result *out);

/* cycle_result_free(r): free r's stats (not r). */
void cycle_result_free(struct cycle_result *r);

#endif
