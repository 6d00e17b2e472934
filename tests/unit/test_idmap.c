/*
 * test_idmap: the string-keyed hash map under the lock table.
 *
 * Every phase checks every key the test knows about, present or deleted, so a
 * backward-shift deletion that loses or strands an entry, or a growth that
 * drops one, shows up right after the operation that broke it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/idmap.h"
#include "test_hash.h"

#define KEY_SZ 24

/* A deterministic generator (splitmix64): runs are reproducible. */
static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A pool of keys and the values the test believes the map holds. */
struct pool {
	size_t n;
	char (*keys)[KEY_SZ];
	int *vals;     /* distinct addresses, one per key */
	bool *present; /* the model */
	struct idmap *m;
};

static void
pool_init(struct pool *p, size_t n, const char *prefix)
{
	p->n = n;
	p->keys = calloc(n, sizeof(*p->keys));
	p->vals = calloc(n, sizeof(*p->vals));
	p->present = calloc(n, sizeof(*p->present));
	assert_non_null(p->keys);
	assert_non_null(p->vals);
	assert_non_null(p->present);
	for (size_t i = 0; i < n; i++)
		snprintf(p->keys[i], KEY_SZ, "%s%zu", prefix, i);
	p->m = idmap_new(&test_hasher);
	assert_non_null(p->m);
}

static void
pool_free(struct pool *p)
{
	idmap_free(p->m);
	free(p->keys);
	free(p->vals);
	free(p->present);
}

static void
pool_put(struct pool *p, size_t i)
{
	assert_int_equal(idmap_put(p->m, p->keys[i], &p->vals[i]), 0);
	p->present[i] = true;
}

static void
pool_del(struct pool *p, size_t i)
{
	void *v = idmap_del(p->m, p->keys[i]);

	if (p->present[i])
		assert_ptr_equal(v, &p->vals[i]);
	else
		assert_null(v);
	p->present[i] = false;
}

/* Every key of the pool maps to what the model says, and the count agrees. */
static void
pool_verify(const struct pool *p)
{
	size_t count = 0;

	for (size_t i = 0; i < p->n; i++) {
		void *v = idmap_get(p->m, p->keys[i]);

		if (p->present[i]) {
			count++;
			if (v != &p->vals[i])
				fail_msg("key %s: wrong value", p->keys[i]);
		} else if (v != NULL) {
			fail_msg("deleted key %s still found", p->keys[i]);
		}
	}
	assert_int_equal(idmap_count(p->m), count);
}

/* ---- basics ---- */

static void
test_empty(void **state)
{
	struct idmap *m = idmap_new(&test_hasher);

	(void)state;
	assert_non_null(m);
	assert_int_equal(idmap_count(m), 0);
	assert_null(idmap_get(m, "a"));
	assert_null(idmap_get(m, ""));
	assert_null(idmap_del(m, "a"));
	assert_int_equal(idmap_count(m), 0);
	idmap_free(m);
	idmap_free(NULL);
}

static void
test_put_get_del(void **state)
{
	struct idmap *m = idmap_new(&test_hasher);
	int a, b, c;

	(void)state;
	assert_int_equal(idmap_put(m, "alpha", &a), 0);
	assert_int_equal(idmap_put(m, "beta", &b), 0);
	assert_int_equal(idmap_put(m, "", &c), 0);
	assert_int_equal(idmap_count(m), 3);
	assert_ptr_equal(idmap_get(m, "alpha"), &a);
	assert_ptr_equal(idmap_get(m, "beta"), &b);
	assert_ptr_equal(idmap_get(m, ""), &c);
	/* Prefixes and extensions of a key are other keys. */
	assert_null(idmap_get(m, "alph"));
	assert_null(idmap_get(m, "alphaa"));
	assert_null(idmap_get(m, "Alpha"));

	assert_ptr_equal(idmap_del(m, "alpha"), &a);
	assert_int_equal(idmap_count(m), 2);
	assert_null(idmap_get(m, "alpha"));
	assert_null(idmap_del(m, "alpha"));
	assert_int_equal(idmap_count(m), 2);
	assert_ptr_equal(idmap_get(m, "beta"), &b);
	assert_ptr_equal(idmap_del(m, ""), &c);
	assert_ptr_equal(idmap_del(m, "beta"), &b);
	assert_int_equal(idmap_count(m), 0);

	/* Usable again after being emptied. */
	assert_int_equal(idmap_put(m, "alpha", &b), 0);
	assert_ptr_equal(idmap_get(m, "alpha"), &b);
	assert_int_equal(idmap_count(m), 1);
	idmap_free(m);
}

static void
test_replace(void **state)
{
	struct idmap *m = idmap_new(&test_hasher);
	char k1[8] = "doc-1";
	char k2[8] = "doc-1";
	int a, b;

	(void)state;
	assert_int_equal(idmap_put(m, k1, &a), 0);
	assert_int_equal(idmap_put(m, k2, &b), 0);
	assert_int_equal(idmap_count(m), 1);
	assert_ptr_equal(idmap_get(m, "doc-1"), &b);
	/*
	 * The map stores the key pointer it was last given: the first buffer
	 * may now change without disturbing the entry.
	 */
	memcpy(k1, "zzzzz", 6);
	assert_ptr_equal(idmap_get(m, "doc-1"), &b);
	assert_null(idmap_get(m, "zzzzz"));
	assert_ptr_equal(idmap_del(m, "doc-1"), &b);
	assert_int_equal(idmap_count(m), 0);
	idmap_free(m);
}

/* ---- many keys ---- */

static void
test_many_keys(void **state)
{
	struct pool p;
	const size_t n = 100000;

	(void)state;
	pool_init(&p, n, "key-");

	for (size_t i = 0; i < n; i++)
		pool_put(&p, i);
	pool_verify(&p);

	/* Every third key goes. */
	for (size_t i = 0; i < n; i += 3)
		pool_del(&p, i);
	pool_verify(&p);

	/* Interleave: bring back deleted keys, drop others, replace some. */
	for (size_t i = 0; i < n; i++) {
		if (i % 3 == 0)
			pool_put(&p, i);
		else if (i % 7 == 1)
			pool_del(&p, i);
		else if (i % 11 == 2)
			pool_put(&p, i); /* replace in place */
	}
	pool_verify(&p);

	/* Delete from the back, half the keys. */
	for (size_t i = n; i-- > n / 2;)
		pool_del(&p, i);
	pool_verify(&p);

	/* Delete everything, including keys already gone. */
	for (size_t i = 0; i < n; i++)
		pool_del(&p, i);
	pool_verify(&p);
	assert_int_equal(idmap_count(p.m), 0);

	/* Refill after emptying. */
	for (size_t i = 0; i < n; i += 2)
		pool_put(&p, i);
	pool_verify(&p);
	pool_free(&p);
}

/*
 * Random puts and deletes on small maps (16 and 32 slots): probe runs often
 * wrap around the end of the slot array, the case backward-shift deletion
 * gets wrong most easily.  The whole model is checked after every operation.
 */
static void
test_random_small(void **state)
{
	uint64_t seed = 42;

	(void)state;
	for (int round = 0; round < 400; round++) {
		struct pool p;
		size_t n = 4 + (size_t)(rnd(&seed) % 14);

		pool_init(&p, n, "r");
		for (int op = 0; op < 300; op++) {
			size_t i = (size_t)(rnd(&seed) % n);

			if (rnd(&seed) % 3 == 0)
				pool_del(&p, i);
			else
				pool_put(&p, i);
			pool_verify(&p);
		}
		pool_free(&p);
	}
}

/* The same on a large pool, with growth in between, checked now and then. */
static void
test_random_large(void **state)
{
	struct pool p;
	uint64_t seed = 7;
	const size_t n = 20000;

	(void)state;
	pool_init(&p, n, "client-x-");
	for (int op = 1; op <= 400000; op++) {
		size_t i = (size_t)(rnd(&seed) % n);

		if (rnd(&seed) % 2 == 0)
			pool_del(&p, i);
		else
			pool_put(&p, i);
		if (op % 20000 == 0)
			pool_verify(&p);
	}
	pool_verify(&p);
	pool_free(&p);
}

/* ---- foreach ---- */

struct walk {
	const struct pool *p;
	unsigned *seen;
	size_t calls;
	size_t stop_at; /* 0: never stop */
};

static int
walk_cb(const char *key, void *value, void *arg)
{
	struct walk *w = arg;
	size_t i = (size_t)((int *)value - w->p->vals);

	assert_true(i < w->p->n);
	assert_string_equal(key, w->p->keys[i]);
	w->seen[i]++;
	w->calls++;
	if (w->stop_at != 0 && w->calls == w->stop_at)
		return -7;
	return 0;
}

static void
test_foreach(void **state)
{
	struct pool p;
	struct walk w;
	const size_t n = 1000;

	(void)state;
	pool_init(&p, n, "f");
	w.seen = calloc(n, sizeof(*w.seen));
	assert_non_null(w.seen);
	w.p = &p;

	/* Empty map: no calls. */
	w.calls = 0;
	w.stop_at = 0;
	assert_int_equal(idmap_foreach(p.m, walk_cb, &w), 0);
	assert_int_equal(w.calls, 0);

	for (size_t i = 0; i < n; i++)
		pool_put(&p, i);
	for (size_t i = 0; i < n; i += 4)
		pool_del(&p, i);

	/* Every entry exactly once, deleted ones never. */
	assert_int_equal(idmap_foreach(p.m, walk_cb, &w), 0);
	assert_int_equal(w.calls, idmap_count(p.m));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(w.seen[i], p.present[i] ? 1 : 0);

	/* A nonzero return stops the walk and is passed back. */
	memset(w.seen, 0, n * sizeof(*w.seen));
	w.calls = 0;
	w.stop_at = 3;
	assert_int_equal(idmap_foreach(p.m, walk_cb, &w), -7);
	assert_int_equal(w.calls, 3);

	free(w.seen);
	pool_free(&p);
}

/* ---- hash flooding ---- */

/*
 * FNV-1a with its high half folded down: the unkeyed hash the maps used
 * before they took a keyed one.  Anyone can compute it, so anyone can pick
 * ids that land together.
 */
static uint64_t
fnv_hash(const void *key, const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;

	(void)key;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 32);
}

#define NCRAFTED 50000
#define CRAFT_BITS 12

/*
 * Ids whose FNV-1a slot agrees in the low CRAFT_BITS bits: a prefix, then
 * two bytes searched; each prefix's hash state is computed once.
 */
static char (*craft_ids(void))[24]
{
	char(*ids)[24] = calloc(NCRAFTED, sizeof(*ids));
	const uint64_t mask = (1u << CRAFT_BITS) - 1;
	size_t n = 0;

	assert_non_null(ids);
	for (unsigned p = 0; n < NCRAFTED; p++) {
		char prefix[16];
		int plen = snprintf(prefix, sizeof(prefix), "ed-%08x-", p);
		uint64_t h0 = 1469598103934665603ULL;

		for (int i = 0; i < plen; i++) {
			h0 ^= (unsigned char)prefix[i];
			h0 *= 1099511628211ULL;
		}
		for (unsigned a = 'a'; a <= 'z' && n < NCRAFTED; a++) {
			uint64_t h1 = (h0 ^ a) * 1099511628211ULL;

			for (unsigned b = 'a'; b <= 'z' && n < NCRAFTED; b++) {
				uint64_t h = (h1 ^ b) * 1099511628211ULL;

				if (((h ^ (h >> 32)) & mask) != 0)
					continue;
				snprintf(ids[n++], sizeof(ids[0]), "%s%c%c",
				    prefix, (char)a, (char)b);
			}
		}
	}
	return ids;
}

/* Put every id, look every one up; the longest probe run. */
static size_t
flood(const struct mql_hasher *h, char (*ids)[24])
{
	struct idmap *m = idmap_new(h);
	size_t run;

	assert_non_null(m);
	for (size_t i = 0; i < NCRAFTED; i++)
		assert_int_equal(idmap_put(m, ids[i], ids[i]), 0);
	for (size_t i = 0; i < NCRAFTED; i++)
		assert_ptr_equal(idmap_get(m, ids[i]), ids[i]);
	run = idmap_longest_run(m);
	idmap_free(m);
	return run;
}

/*
 * 50,000 ids crafted to collide under the unkeyed hash: against it they
 * pile up in a few probe runs (every lookup walks hundreds of slots); with
 * the keyed hash they spread like any ids.  Counted in probes, not time.
 */
static void
test_crafted_collisions(void **state)
{
	const struct mql_hasher fnv = {fnv_hash, NULL};
	char(*ids)[24] = craft_ids();
	size_t unkeyed, keyed;

	(void)state;
	unkeyed = flood(&fnv, ids);
	keyed = flood(&test_hasher, ids);
	print_message("longest probe run of %d crafted ids: %zu unkeyed, %zu "
		      "keyed\n",
	    NCRAFTED, unkeyed, keyed);
	assert_true(unkeyed > 1000);
	assert_true(keyed < 100);
	free(ids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_put_get_del),
	    cmocka_unit_test(test_replace),
	    cmocka_unit_test(test_many_keys),
	    cmocka_unit_test(test_random_small),
	    cmocka_unit_test(test_random_large),
	    cmocka_unit_test(test_foreach),
	    cmocka_unit_test(test_crafted_collisions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
