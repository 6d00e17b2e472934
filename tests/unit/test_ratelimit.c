/*
 * ratelimit: buckets refill at the rate, cap at the burst, say "first"
 * once per run of refusals, and stay within their fixed memory however
 * many keys come by.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/ratelimit.h"
#include "test_hash.h"

static void
test_burst_then_rate(void **state)
{
	struct ratelimit *r = ratelimit_new(64, 10.0, 5.0, &test_hasher);
	int64_t t = 1000;

	assert_non_null(r);
	for (int i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(r, "a", t), RL_ALLOW);
	assert_int_equal(ratelimit_take(r, "a", t), RL_DENY_FIRST);
	assert_int_equal(ratelimit_take(r, "a", t), RL_DENY);
	/* 10 per second: one token after 100 ms, not after 99. */
	assert_int_equal(ratelimit_take(r, "a", t + 99), RL_DENY);
	assert_int_equal(ratelimit_take(r, "a", t + 100), RL_ALLOW);
	assert_int_equal(ratelimit_take(r, "a", t + 100), RL_DENY_FIRST);
	/* A long pause refills only up to the burst. */
	t += 60000;
	for (int i = 0; i < 5; i++)
		assert_int_equal(ratelimit_take(r, "a", t), RL_ALLOW);
	assert_int_equal(ratelimit_take(r, "a", t), RL_DENY_FIRST);
	/* Another key has its own bucket. */
	assert_int_equal(ratelimit_take(r, "b", t), RL_ALLOW);
	ratelimit_free(r);
}

static void
test_clock_going_back_does_not_refill(void **state)
{
	struct ratelimit *r = ratelimit_new(8, 1.0, 1.0, &test_hasher);

	assert_int_equal(ratelimit_take(r, "a", 5000), RL_ALLOW);
	assert_int_equal(ratelimit_take(r, "a", 1000), RL_DENY_FIRST);
	assert_int_equal(ratelimit_take(r, "a", 5999), RL_DENY);
	assert_int_equal(ratelimit_take(r, "a", 6000), RL_ALLOW);
	ratelimit_free(r);
}

/*
 * One set of four: a fifth key evicts the least recently used one, which
 * then starts again with a full bucket; the busy key keeps its state.
 */
static void
test_eviction_forgives_never_blames(void **state)
{
	struct ratelimit *r = ratelimit_new(1, 1.0, 2.0, &test_hasher);
	char key[16];

	assert_int_equal(ratelimit_take(r, "busy", 0), RL_ALLOW);
	assert_int_equal(ratelimit_take(r, "busy", 0), RL_ALLOW);
	assert_int_equal(ratelimit_take(r, "busy", 0), RL_DENY_FIRST);
	for (int i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(ratelimit_take(r, key, 10 + i), RL_ALLOW);
	}
	/* busy is the oldest now: the next new key takes its bucket. */
	assert_int_equal(ratelimit_take(r, "new", 20), RL_ALLOW);
	assert_int_equal(ratelimit_take(r, "busy", 20), RL_ALLOW);
	/* Many keys through one set: each still starts allowed. */
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "x%d", i);
		assert_int_equal(ratelimit_take(r, key, 30), RL_ALLOW);
	}
	ratelimit_free(r);
}

static void
test_bad_arguments(void **state)
{
	assert_null(ratelimit_new(0, 1.0, 1.0, &test_hasher));
	assert_null(ratelimit_new(4, 0.0, 1.0, &test_hasher));
	assert_null(ratelimit_new(4, -1.0, 1.0, &test_hasher));
	assert_null(ratelimit_new(4, 1.0, 0.5, &test_hasher));
	assert_null(ratelimit_new(SIZE_MAX, 1.0, 1.0, &test_hasher));
	ratelimit_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_rate),
	    cmocka_unit_test(test_clock_going_back_does_not_refill),
	    cmocka_unit_test(test_eviction_forgives_never_blames),
	    cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
