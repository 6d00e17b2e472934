/*
 * test_hash.h: the keyed hash tests give the core's maps: the shell's
 * SipHash under a fixed key, so runs are reproducible.
 */
#ifndef MQLOCK_TESTS_TEST_HASH_H
#define MQLOCK_TESTS_TEST_HASH_H

#include "core/hash.h"
#include "io/siphash.h"

static const unsigned char test_hash_key[16] = {0x6d, 0x71, 0x6c, 0x6f, 0x63,
    0x6b, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x6b, 0x65, 0x79, 0x21};

static const struct mql_hasher test_hasher = {siphash_str, test_hash_key};

#endif
