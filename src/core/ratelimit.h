/*
 * ratelimit: token buckets per key in a fixed amount of memory.
 *
 * Keys are client ids named in requests.  Anyone can name any id, so the
 * table must not grow with the number of ids it sees: it is a fixed,
 * 4-way set-associative array of buckets, and a key that finds no room
 * takes over the bucket in its set that was used least recently.  A key
 * that was evicted starts again with a full bucket; that only forgives, it
 * never throttles a client for another's traffic.  Pure: time is passed in.
 */
#ifndef MQLOCK_CORE_RATELIMIT_H
#define MQLOCK_CORE_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/hash.h"

struct ratelimit;

enum rl_verdict {
	RL_ALLOW,
	RL_DENY_FIRST, /* refused, and the previous request was allowed */
	RL_DENY        /* refused again */
};

/*
 * ratelimit_new(sets, per_sec, burst, hasher): a table of sets × 4 buckets
 * that refill at per_sec tokens a second up to burst (>= 1), indexed by
 * hasher's hash of the key (copied; its key must outlive the table).  NULL
 * when memory runs out or the arguments are out of range (sets 0,
 * per_sec <= 0, no hasher).
 */
struct ratelimit *ratelimit_new(size_t sets, double per_sec, double burst,
    const struct mql_hasher *hasher);

/* ratelimit_free(r): NULL is a no-op. */
void ratelimit_free(struct ratelimit *r);

/*
 * ratelimit_take(r, key, now_ms): take one token from key's bucket at time
 * now_ms (milliseconds, any epoch, not decreasing by more than clock
 * noise).  Returns whether the request may go ahead.
 */
enum rl_verdict ratelimit_take(struct ratelimit *r, const char *key,
    int64_t now_ms);

#endif
