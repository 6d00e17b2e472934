/*
 * loop: signals arrive through the pipe; loop_wait reports readiness and
 * honours its timeout.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/loop.h"

static int sigfd = -1;

static int
setup(void **state)
{
	static const int sigs[] = {SIGUSR1, SIGUSR2};

	sigfd = loop_signals(sigs, 2);
	return sigfd < 0 ? -1 : 0;
}

static void
test_signals_become_readable(void **state)
{
	int ready[1];

	assert_int_equal(loop_next_signal(sigfd), 0);
	raise(SIGUSR1);
	raise(SIGUSR2);
	assert_int_equal(loop_wait(&sigfd, 1, 10000, ready), 1);
	assert_int_equal(ready[0], 1);
	assert_int_equal(loop_next_signal(sigfd), SIGUSR1);
	assert_int_equal(loop_next_signal(sigfd), SIGUSR2);
	assert_int_equal(loop_next_signal(sigfd), 0);
}

static void
test_wait_reports_only_ready_fds(void **state)
{
	int p[2], fds[2], ready[2];
	char c = 'x';

	assert_int_equal(pipe(p), 0);
	fds[0] = sigfd;
	fds[1] = p[0];
	/* Nothing ready: a zero timeout returns at once with nothing. */
	assert_int_equal(loop_wait(fds, 2, 0, ready), 0);
	assert_int_equal(ready[0] + ready[1], 0);
	assert_int_equal(write(p[1], &c, 1), 1);
	assert_int_equal(loop_wait(fds, 2, 10000, ready), 1);
	assert_int_equal(ready[0], 0);
	assert_int_equal(ready[1], 1);
	close(p[0]);
	close(p[1]);
}

static void
test_sigpipe_ignored(void **state)
{
	int p[2];
	char c = 'x';

	assert_int_equal(pipe(p), 0);
	close(p[0]);
	/* Without SIG_IGN this write would kill the test. */
	assert_int_equal(write(p[1], &c, 1), -1);
	close(p[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signals_become_readable),
	    cmocka_unit_test(test_wait_reports_only_ready_fds),
	    cmocka_unit_test(test_sigpipe_ignored),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
