/*
 * backoff: delays double from the minimum to the maximum, and a reset
 * starts again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "io/backoff.h"

static void
test_doubles_to_the_cap(void **state)
{
	struct backoff b = BACKOFF_RECONNECT;
	static const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000,
	    5000};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(backoff_next(&b), want[i]);
	backoff_reset(&b);
	assert_int_equal(backoff_next(&b), 100);
	assert_int_equal(backoff_next(&b), 200);
}

static void
test_other_bounds(void **state)
{
	struct backoff b = {7, 20, 7};

	assert_int_equal(backoff_next(&b), 7);
	assert_int_equal(backoff_next(&b), 14);
	assert_int_equal(backoff_next(&b), 20);
	assert_int_equal(backoff_next(&b), 20);
	/* No overflow near the top of the range. */
	b = (struct backoff){1, INT64_MAX, INT64_MAX / 2 + 1};
	assert_int_equal(backoff_next(&b), INT64_MAX / 2 + 1);
	assert_int_equal(backoff_next(&b), INT64_MAX);
	assert_int_equal(backoff_next(&b), INT64_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_doubles_to_the_cap),
	    cmocka_unit_test(test_other_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
