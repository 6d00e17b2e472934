/*
 * loop: signals as readable file descriptors, and one poll() helper.
 *
 * The handlers only write the signal number to a pipe; the program's own
 * loop reads it when poll() says so, outside signal context.
 */
#ifndef MQLOCK_IO_LOOP_H
#define MQLOCK_IO_LOOP_H

#include <stddef.h>
#include <stdint.h>

/*
 * loop_signals(sigs, n): route the signals in sigs (e.g. SIGINT, SIGTERM,
 * SIGCHLD) into a self-pipe and ignore SIGPIPE.  Returns the pipe's read
 * end, or -1 (logged).  Call once per process.
 */
int loop_signals(const int *sigs, size_t n);

/*
 * loop_next_signal(fd): the next signal number waiting in the pipe, or 0
 * when none is.  Never blocks.
 */
int loop_next_signal(int fd);

/*
 * loop_wait(fds, nfds, timeout_ms, ready): wait until one of fds is
 * readable or timeout_ms passes (< 0: no timeout).  ready[i] is set to 1
 * for each readable fd.  Returns the number readable (0 on timeout), or -1
 * on an error other than EINTR (logged).
 */
int loop_wait(const int *fds, size_t nfds, int64_t timeout_ms, int *ready);

#endif
