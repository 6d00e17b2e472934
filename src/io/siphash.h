/*
 * siphash: the keyed hash the core's maps use (core/hash.h), from
 * libsodium: SipHash-2-4 (crypto_shorthash) under a key drawn at random
 * once per process, so nobody outside can predict where an id lands.
 */
#ifndef MQLOCK_IO_SIPHASH_H
#define MQLOCK_IO_SIPHASH_H

#include "core/hash.h"

/*
 * siphash_hasher(): the process's hasher.  The first call initialises
 * libsodium and draws the key; make it from one thread before others use
 * the result.  Returns a hasher with fn NULL if libsodium cannot start.
 */
struct mql_hasher siphash_hasher(void);

/*
 * siphash_str(key, s, len): SipHash-2-4 of s[0..len) under the 16-byte key
 * at key: the hasher's function, for tests that pick their own key.
 */
uint64_t siphash_str(const void *key, const char *s, size_t len);

#endif
