/*
 * backoff: how long to wait before the next reconnect attempt.
 *
 * Each delay doubles the one before, from min_ms up to max_ms; a successful
 * connect starts again from min_ms.  The delays are fixed numbers, not
 * random: the caller adds them to its own clock.
 *
 *	struct backoff b = BACKOFF_RECONNECT;
 *	...connection lost or connect failed:
 *	retry_at = clock_mono_ms() + backoff_next(&b);
 *	...connected:
 *	backoff_reset(&b);
 */
#ifndef MQLOCK_IO_BACKOFF_H
#define MQLOCK_IO_BACKOFF_H

#include <stdint.h>

struct backoff {
	int64_t min_ms;  /* first delay, > 0 */
	int64_t max_ms;  /* longest delay, >= min_ms */
	int64_t next_ms; /* the delay backoff_next() returns next */
};

/* Broker reconnects, in mqlockd and mqlock alike: 0.1 s doubling to 5 s. */
#define BACKOFF_RECONNECT_MIN_MS 100
#define BACKOFF_RECONNECT_MAX_MS 5000
#define BACKOFF_RECONNECT                                                     \
	((struct backoff){BACKOFF_RECONNECT_MIN_MS, BACKOFF_RECONNECT_MAX_MS, \
	    BACKOFF_RECONNECT_MIN_MS})

/* backoff_next(b): the delay to wait now, in ms; doubles the next one. */
int64_t backoff_next(struct backoff *b);

/* backoff_reset(b): the next delay is min_ms again. */
void backoff_reset(struct backoff *b);

#endif
