/*
 * hash: the keyed hash the core uses for keys that clients choose.
 *
 * Lock ids and client ids come from the network, so a fixed hash would let
 * anyone craft ids that all land in one bucket and turn every map lookup
 * into a walk.  The core links only libc, so it does not implement a keyed
 * hash itself: the shell hands it one (SipHash with a random key, see
 * io/siphash.h) and the core calls it through this pair.
 */
#ifndef MQLOCK_CORE_HASH_H
#define MQLOCK_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

struct mql_hasher {
	/* fn(key, s, len): a 64-bit hash of s[0..len), keyed by key. */
	uint64_t (*fn)(const void *key, const char *s, size_t len);
	const void *key;
};

/* mql_hash(h, s): h's hash of the NUL-terminated string s. */
uint64_t mql_hash(const struct mql_hasher *h, const char *s);

#endif
