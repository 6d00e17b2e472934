/*
 * loop: signals as readable file descriptors, and one poll() helper, for
 * mqlockd's loop and mqlock's alike.
 *
 * The handlers only write the signal number to a pipe; the program's own
 * loop reads it when poll() says so, outside signal context.  Every
 * disposition changed here is remembered, so that a child about to exec
 * another program can get the ones the process started with back.
 */
#ifndef MQLOCK_IO_LOOP_H
#define MQLOCK_IO_LOOP_H

#include <stddef.h>
#include <stdint.h>

/*
 * loop_signals(sigs, n): route the signals in sigs (e.g. SIGINT, SIGTERM,
 * SIGCHLD; SIGCHLD only for children that exit, not for ones that stop)
 * into a self-pipe and ignore SIGPIPE.  Returns the pipe's read end, or -1
 * (logged) with the pipe closed and the dispositions already changed put
 * back.  Call once per process (again only after a failure).
 */
int loop_signals(const int *sigs, size_t n);

/*
 * loop_ignore(sig): ignore sig from now on (e.g. SIGTTOU for a program that
 * hands the terminal to a child and takes it back from the background).
 * Returns 0, or -1 (logged).
 */
int loop_ignore(int sig);

/*
 * loop_restore(): the dispositions loop_signals() and loop_ignore() changed,
 * and the signal mask, as they were before; for a child between fork() and
 * exec().  Uses only async-signal-safe calls.
 */
void loop_restore(void);

/*
 * loop_next_signal(fd): the next signal number waiting in the pipe, or 0
 * when none is.  Never blocks.
 */
int loop_next_signal(int fd);

/*
 * loop_wait(fds, nfds, timeout_ms, ready): wait until one of fds (at most
 * LOOP_MAX_FDS; a negative fd is skipped) is readable or timeout_ms passes
 * (< 0: no timeout).  ready[i] is set to 1 for each readable fd.  Returns
 * the number readable (0 on timeout or a signal), or -1 on an error other
 * than EINTR or on more than LOOP_MAX_FDS fds (logged).
 */
#define LOOP_MAX_FDS 8
int loop_wait(const int *fds, size_t nfds, int64_t timeout_ms, int *ready);

#endif
