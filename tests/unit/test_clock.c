/*
 * clock: decimal seconds parse exactly and refuse everything else.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "io/clock.h"

static void
test_parse_seconds(void **state)
{
	static const struct {
		const char *in;
		int rc;
		int64_t ms;
	} cases[] = {
	    {"0", 0, 0},
	    {"10", 0, 10000},
	    {"0.5", 0, 500},
	    {"1.25", 0, 1250},
	    {"2.001", 0, 2001},
	    {"31536000", 0, 31536000000LL},
	    {"31536000.001", -1, 0},
	    {"31536001", -1, 0},
	    {"1.0001", -1, 0},
	    {"", -1, 0},
	    {".5", -1, 0},
	    {"5.", -1, 0},
	    {"-1", -1, 0},
	    {"+1", -1, 0},
	    {" 1", -1, 0},
	    {"1 ", -1, 0},
	    {"1e3", -1, 0},
	    {"0x10", -1, 0},
	    {"99999999999999999999999", -1, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -7;
		int rc = clock_parse_seconds(cases[i].in, &ms);

		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d, want %d", cases[i].in, rc,
			    cases[i].rc);
		if (rc == 0 && ms != cases[i].ms)
			fail_msg("'%s': %lld ms, want %lld", cases[i].in,
			    (long long)ms, (long long)cases[i].ms);
		if (rc != 0 && ms != -7)
			fail_msg("'%s': output written on error", cases[i].in);
	}
}

static void
test_clocks_move_forward(void **state)
{
	int64_t w = clock_wall_ms(), m = clock_mono_ms();

	/* 2020-01-01 as a floor: a wall clock in ms, not seconds. */
	assert_true(w > 1577836800000LL);
	assert_true(clock_mono_ms() >= m);
	assert_true(clock_wall_ms() >= w - 1000);
}

/* Nanoseconds on CLOCK_MONOTONIC of a timespec. */
static int64_t
ns_of(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* clock_mono_in(ms) lies ms ahead of the monotonic clock, normalized. */
static void
test_mono_in(void **state)
{
	static const int ms[] = {0, 1, 999, 1000, 1001, 1999, 86400000};

	(void)state;
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		struct timespec before, until, after;

		clock_gettime(CLOCK_MONOTONIC, &before);
		until = clock_mono_in(ms[i]);
		clock_gettime(CLOCK_MONOTONIC, &after);
		assert_true(until.tv_nsec >= 0 && until.tv_nsec < 1000000000);
		/* ms after a moment between the two readings. */
		assert_true(
		    ns_of(until) >= ns_of(before) + (int64_t)ms[i] * 1000000);
		assert_true(
		    ns_of(until) <= ns_of(after) + (int64_t)ms[i] * 1000000);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_seconds),
	    cmocka_unit_test(test_clocks_move_forward),
	    cmocka_unit_test(test_mono_in),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
