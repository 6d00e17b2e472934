/*
 * loop: signals arrive through the pipe; loop_wait reports readiness and
 * honours its timeout; the dispositions changed come back for a child.
 *
 * fcntl() is wrapped here (this program's definition wins over libc's for
 * loop.c's calls) so that a test can make it fail.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/loop.h"

static int sigfd = -1;

/* fcntl() fails with EBADF while this is set. */
static int fail_fcntl;

int
fcntl(int fd, int cmd, ...)
{
	static int (*real)(int, int, ...);
	void *sym;
	va_list ap;
	int arg = 0;

	if (fail_fcntl) {
		errno = EBADF;
		return -1;
	}
	if (real == NULL) {
		sym = dlsym(RTLD_NEXT, "fcntl");
		assert_non_null(sym);
		memcpy(&real, &sym, sizeof(real));
	}
	if (cmd == F_GETFL || cmd == F_GETFD)
		return real(fd, cmd);
	va_start(ap, cmd);
	arg = va_arg(ap, int);
	va_end(ap);
	return real(fd, cmd, arg);
}

static int
disposition_is(int sig, void (*handler)(int))
{
	struct sigaction sa;

	assert_int_equal(sigaction(sig, NULL, &sa), 0);
	return sa.sa_handler == handler;
}

/* Teardown: fcntl() works again, whatever the test got to. */
static int
fcntl_works(void **state)
{
	fail_fcntl = 0;
	return 0;
}

/*
 * A pipe that cannot be made nonblocking is a failure, with nothing left
 * changed; then a second call works.  Runs before the other tests' setup.
 */
static void
test_fcntl_failure(void **state)
{
	static const int sigs[] = {SIGUSR1};
	int fd;

	fail_fcntl = 1;
	assert_int_equal(loop_signals(sigs, 1), -1);
	fail_fcntl = 0;
	assert_true(disposition_is(SIGUSR1, SIG_DFL));
	assert_true(disposition_is(SIGPIPE, SIG_DFL));
	fd = loop_signals(sigs, 1);
	assert_true(fd >= 0);
	assert_true((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
	assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	loop_restore();
	close(fd);
}

static int
setup(void **state)
{
	static const int sigs[] = {SIGUSR1, SIGUSR2, SIGCHLD};

	sigfd = loop_signals(sigs, 3);
	return sigfd < 0 || loop_ignore(SIGTTOU) != 0 ? -1 : 0;
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

/* The next signal within ms (poll() also returns early for a signal). */
static int
next_signal_within(int ms)
{
	int64_t left = ms;
	int ready[1], sig;

	while ((sig = loop_next_signal(sigfd)) == 0 && left > 0) {
		(void)loop_wait(&sigfd, 1, 50, ready);
		left -= 50;
	}
	return sig;
}

/* SIGCHLD says a child exited, not that one stopped. */
static void
test_sigchld_only_on_exit(void **state)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(7);
	}
	assert_int_equal(kill(pid, SIGSTOP), 0);
	assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
	assert_true(WIFSTOPPED(status));
	assert_int_equal(next_signal_within(200), 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(next_signal_within(10000), SIGCHLD);
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

/* Everything changed comes back as it was (run last). */
static void
test_restore(void **state)
{
	sigset_t blocked, now;

	assert_false(disposition_is(SIGUSR1, SIG_DFL));
	assert_true(disposition_is(SIGTTOU, SIG_IGN));
	assert_true(disposition_is(SIGPIPE, SIG_IGN));
	/* The mask the process had comes back too. */
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR2);
	assert_int_equal(sigprocmask(SIG_BLOCK, &blocked, NULL), 0);
	loop_restore();
	assert_true(disposition_is(SIGUSR1, SIG_DFL));
	assert_true(disposition_is(SIGUSR2, SIG_DFL));
	assert_true(disposition_is(SIGCHLD, SIG_DFL));
	assert_true(disposition_is(SIGTTOU, SIG_DFL));
	assert_true(disposition_is(SIGPIPE, SIG_DFL));
	assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &now), 0);
	assert_false(sigismember(&now, SIGUSR2));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signals_become_readable),
	    cmocka_unit_test(test_wait_reports_only_ready_fds),
	    cmocka_unit_test(test_sigpipe_ignored),
	    cmocka_unit_test(test_sigchld_only_on_exit),
	    cmocka_unit_test(test_restore),
	};

	const struct CMUnitTest first[] = {
	    cmocka_unit_test_teardown(test_fcntl_failure, fcntl_works),
	};
	int failed = cmocka_run_group_tests(first, NULL, NULL);

	return failed + cmocka_run_group_tests(tests, setup, NULL);
}
