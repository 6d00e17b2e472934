#include "core/ratelimit.h"

#include <stdbool.h>
#include <stdlib.h>

#define WAYS 4

struct bucket {
	uint64_t hash; /* 0: empty */
	double tokens;
	int64_t at;  /* last refill, ms */
	bool denied; /* the last request was refused */
};

struct ratelimit {
	struct bucket *b;
	size_t sets;
	double per_ms;
	double burst;
	struct mql_hasher hasher;
};

/*
 * Buckets remember only the key's hash: with a keyed hash nobody can pick
 * an id that shares a victim's bucket on purpose.
 */
static uint64_t
hash_key(const struct ratelimit *r, const char *s)
{
	uint64_t h = mql_hash(&r->hasher, s);

	/* 0 marks an empty bucket. */
	return h != 0 ? h : 1;
}

struct ratelimit *
ratelimit_new(size_t sets, double per_sec, double burst,
    const struct mql_hasher *hasher)
{
	struct ratelimit *r;

	if (sets == 0 || sets > SIZE_MAX / WAYS / sizeof(struct bucket) ||
	    !(per_sec > 0) || !(burst >= 1) || hasher == NULL ||
	    hasher->fn == NULL)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->b = calloc(sets * WAYS, sizeof(*r->b));
	if (r->b == NULL) {
		free(r);
		return NULL;
	}
	r->sets = sets;
	r->hasher = *hasher;
	r->per_ms = per_sec / 1000.0;
	r->burst = burst;
	return r;
}

void
ratelimit_free(struct ratelimit *r)
{
	if (r == NULL)
		return;
	free(r->b);
	free(r);
}

enum rl_verdict
ratelimit_take(struct ratelimit *r, const char *key, int64_t now_ms)
{
	uint64_t h = hash_key(r, key);
	struct bucket *set = &r->b[(h % r->sets) * WAYS];
	struct bucket *b = NULL, *victim = NULL;

	for (int i = 0; i < WAYS && b == NULL; i++) {
		if (set[i].hash == h)
			b = &set[i];
		else if (set[i].hash == 0)
			victim = victim != NULL && victim->hash == 0 ? victim
								     : &set[i];
		else if (victim == NULL ||
		    (victim->hash != 0 && set[i].at < victim->at))
			victim = &set[i];
	}
	if (b == NULL) {
		/* An empty bucket, else the one used least recently. */
		b = victim;
		b->hash = h;
		b->tokens = r->burst;
		b->at = now_ms;
		b->denied = false;
	}
	if (now_ms > b->at) {
		b->tokens += (double)(now_ms - b->at) * r->per_ms;
		if (b->tokens > r->burst)
			b->tokens = r->burst;
		b->at = now_ms;
	}
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		b->denied = false;
		return RL_ALLOW;
	}
	if (b->denied)
		return RL_DENY;
	b->denied = true;
	return RL_DENY_FIRST;
}
