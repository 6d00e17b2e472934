#include "io/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "io/log.h"

/* Dispositions changed by loop_signals() and loop_ignore(), at most. */
#define MAX_SAVED 16

static int sig_pipe[2] = {-1, -1};

static struct {
	int sig;
	struct sigaction act;
} saved[MAX_SAVED];
static size_t nsaved;
static sigset_t saved_mask;
static int mask_saved;

static void
on_signal(int sig)
{
	int saved_errno = errno;
	unsigned char b = (unsigned char)sig;

	/* A full pipe already holds enough wakeups; dropping one is fine. */
	if (write(sig_pipe[1], &b, 1) < 0) {
	}
	errno = saved_errno;
}

/* sigaction(sig, sa), remembering the first disposition sig had. */
static int
change(int sig, const struct sigaction *sa)
{
	struct sigaction old;
	size_t i;

	for (i = 0; i < nsaved && saved[i].sig != sig; i++)
		;
	if (i == MAX_SAVED) {
		log_error("signals: more than %d changed", MAX_SAVED);
		return -1;
	}
	if (sigaction(sig, sa, &old) != 0) {
		log_error("sigaction(%d): %s", sig, strerror(errno));
		return -1;
	}
	if (i == nsaved) {
		saved[nsaved].sig = sig;
		saved[nsaved++].act = old;
	}
	return 0;
}

static void
close_pipe(void)
{
	for (int i = 0; i < 2; i++) {
		if (sig_pipe[i] != -1)
			close(sig_pipe[i]);
		sig_pipe[i] = -1;
	}
}

int
loop_signals(const int *sigs, size_t n)
{
	struct sigaction sa;

	if (!mask_saved && sigprocmask(SIG_BLOCK, NULL, &saved_mask) == 0)
		mask_saved = 1;
	if (pipe(sig_pipe) != 0) {
		log_error("pipe: %s", strerror(errno));
		sig_pipe[0] = sig_pipe[1] = -1;
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		int fl = fcntl(sig_pipe[i], F_GETFL);

		if (fl == -1 ||
		    fcntl(sig_pipe[i], F_SETFL, fl | O_NONBLOCK) == -1 ||
		    fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC) == -1) {
			log_error("signal pipe: fcntl: %s", strerror(errno));
			goto err;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	for (size_t i = 0; i < n; i++) {
		if (change(sigs[i], &sa) != 0)
			goto err;
	}
	if (loop_ignore(SIGPIPE) != 0)
		goto err;
	return sig_pipe[0];
err:
	loop_restore();
	close_pipe();
	return -1;
}

int
loop_ignore(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	return change(sig, &sa);
}

void
loop_restore(void)
{
	/* Newest first, so a signal changed twice ends as it began. */
	while (nsaved > 0) {
		nsaved--;
		(void)sigaction(saved[nsaved].sig, &saved[nsaved].act, NULL);
	}
	if (mask_saved)
		(void)sigprocmask(SIG_SETMASK, &saved_mask, NULL);
}

int
loop_next_signal(int fd)
{
	unsigned char b;

	return read(fd, &b, 1) == 1 ? b : 0;
}

int
loop_wait(const int *fds, size_t nfds, int64_t timeout_ms, int *ready)
{
	struct pollfd p[LOOP_MAX_FDS];
	int timeout, n;

	if (nfds > LOOP_MAX_FDS) {
		log_error("poll: %zu descriptors, at most %d", nfds,
		    LOOP_MAX_FDS);
		return -1;
	}
	for (size_t i = 0; i < nfds; i++) {
		p[i].fd = fds[i];
		p[i].events = POLLIN;
		p[i].revents = 0;
		ready[i] = 0;
	}
	timeout = timeout_ms < 0   ? -1
	    : timeout_ms > INT_MAX ? INT_MAX
				   : (int)timeout_ms;
	n = poll(p, (nfds_t)nfds, timeout);
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		log_error("poll: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < nfds; i++)
		ready[i] = (p[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
	return n;
}
