/*
 * clock: the only place that reads the time.
 */
#ifndef MQLOCK_IO_CLOCK_H
#define MQLOCK_IO_CLOCK_H

#include <stdint.h>
#include <time.h>

/* clock_wall_ms(): milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);

/* clock_mono_ms(): milliseconds on CLOCK_MONOTONIC, for measuring intervals. */
int64_t clock_mono_ms(void);

/*
 * clock_mono_in(ms): the CLOCK_MONOTONIC time ms (>= 0) from now, as an
 * absolute timespec: a deadline for pthread_cond_timedwait() on a
 * condition variable set to CLOCK_MONOTONIC.
 */
struct timespec clock_mono_in(int ms);

/*
 * clock_parse_seconds(s, &ms): "10", "0.5", "1.25" -> milliseconds.  Accepts
 * 0 .. CLOCK_SECONDS_MAX s (a year) with at most three decimals.  Returns 0,
 * or -1 if s is not such a number.
 */
#define CLOCK_SECONDS_MAX 31536000
int clock_parse_seconds(const char *s, int64_t *ms);

#endif
