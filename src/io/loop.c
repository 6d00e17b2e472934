#include "io/loop.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "io/log.h"

#define MAX_FDS 8

static int sig_pipe[2] = {-1, -1};

static void
on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	/* A full pipe already holds enough wakeups; dropping one is fine. */
	if (write(sig_pipe[1], &b, 1) < 0) {
	}
	errno = saved;
}

int
loop_signals(const int *sigs, size_t n)
{
	struct sigaction sa;

	if (pipe(sig_pipe) != 0) {
		log_error("pipe: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(sig_pipe[i], F_SETFL, O_NONBLOCK);
		fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < n; i++) {
		if (sigaction(sigs[i], &sa, NULL) != 0) {
			log_error("sigaction(%d): %s", sigs[i],
			    strerror(errno));
			return -1;
		}
	}
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	return sig_pipe[0];
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
	struct pollfd p[MAX_FDS];
	int timeout, n;

	if (nfds > MAX_FDS)
		nfds = MAX_FDS;
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
