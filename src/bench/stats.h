/*
 * stats: latency samples and their percentiles.
 *
 * A sample set is a growable array of nanosecond durations.  Workloads add
 * samples from Paho's callback thread while the main thread waits, so
 * stats_add() takes a mutex; everything else is for the main thread once the
 * workload is over.
 */
#ifndef MQLOCK_BENCH_STATS_H
#define MQLOCK_BENCH_STATS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct stats;

/* A summary of a sample set, in microseconds. */
struct stats_sum {
	size_t n;
	double p50, p90, p99, max, mean;
};

/* stats_now_ns(): CLOCK_MONOTONIC in nanoseconds, the clock of samples. */
uint64_t stats_now_ns(void);

/*
 * stats_cond_init(cv): a condition variable whose timed waits use the same
 * clock (CLOCK_MONOTONIC); a default one measures deadlines on the wall
 * clock, and a monotonic deadline then lies in its past.  Returns 0 or -1.
 */
int stats_cond_init(pthread_cond_t *cv);

/* stats_new(): an empty set, or NULL when memory runs out. */
struct stats *stats_new(void);

/* stats_free(s): free s.  NULL is a no-op. */
void stats_free(struct stats *s);

/*
 * stats_add(s, ns): record one duration.  Thread-safe.  Returns 0, or -1
 * when memory runs out (the sample is lost and counted in stats_lost()).
 */
int stats_add(struct stats *s, uint64_t ns);

/* stats_merge(dst, src): append every sample of src to dst.  0 or -1. */
int stats_merge(struct stats *dst, const struct stats *src);

/* stats_count(s): the number of samples recorded. */
size_t stats_count(const struct stats *s);

/* stats_lost(s): samples dropped because memory ran out. */
size_t stats_lost(const struct stats *s);

/* stats_clear(s): forget every sample (keeps the memory). */
void stats_clear(struct stats *s);

/*
 * stats_summary(s): percentiles by nearest rank over the samples so far
 * (sorts s in place).  All zero when s is empty.
 */
struct stats_sum stats_summary(struct stats *s);

#endif
