/*
 * chaos_cmd: the COMMAND the chaos test runs under `mqlock acquire`.
 *
 *	chaos_cmd DIR DURATION_MS WRITES
 *
 * It plays a client that edits a resource while it holds the lock: it
 * appends "start" to DIR/runs.log, then WRITES times waits its share of
 * DURATION_MS and saves to the lock's resource the way a fencing backend
 * accepts a save: only when MQLOCK_TOKEN is at least the highest token that
 * ever wrote it (DIR/res-LOCK.max), under an flock of DIR/res-LOCK.lock.  A
 * refused save goes to DIR/rejects.log.  At the end (or on SIGTERM, which
 * mqlock sends when the lock is lost) it appends "end".  Each line is one
 * write(2) to an O_APPEND file, so lines from many processes never mix.
 *
 * Exit status: 0, 143 after SIGTERM, 2 on bad arguments or I/O errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "tutil.h"

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* Appends one line to path with a single write. */
static int
append(const char *path, const char *line)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	size_t n = strlen(line);
	ssize_t w;

	if (fd == -1)
		return -1;
	w = write(fd, line, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -1;
}

/* One fenced save; returns 1 if accepted, 0 if refused, -1 on error. */
static int
save(const char *dir, const char *lock, long long token, const char *client)
{
	char path[PATH_MAX], maxpath[PATH_MAX], line[512], buf[64];
	long long max = 0;
	int fd, mfd, ok = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/res-%s.lock", dir, lock);
	snprintf(maxpath, sizeof(maxpath), "%s/res-%s.max", dir, lock);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd == -1)
		return -1;
	while (flock(fd, LOCK_EX) == -1)
		if (errno != EINTR)
			goto out;
	mfd = open(maxpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (mfd == -1)
		goto out;
	n = read(mfd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		max = strtoll(buf, NULL, 10);
	}
	if (token >= max) {
		snprintf(line, sizeof(line), "%lld %lld %s\n", tutil_wall_ms(),
		    token, client);
		snprintf(path, sizeof(path), "%s/res-%s.log", dir, lock);
		snprintf(buf, sizeof(buf), "%lld\n", token);
		if (append(path, line) == 0 && ftruncate(mfd, 0) == 0 &&
		    pwrite(mfd, buf, strlen(buf), 0) == (ssize_t)strlen(buf))
			ok = 1;
	} else {
		snprintf(line, sizeof(line), "%lld %s %lld %lld %s\n",
		    tutil_wall_ms(), lock, token, max, client);
		snprintf(path, sizeof(path), "%s/rejects.log", dir);
		if (append(path, line) == 0)
			ok = 0;
	}
	close(mfd);
out:
	close(fd); /* drops the flock */
	return ok;
}

int
main(int argc, char **argv)
{
	const char *lock = getenv("MQLOCK_LOCK");
	const char *tok = getenv("MQLOCK_TOKEN");
	const char *client = getenv("MQLOCK_CLIENT");
	char runs[PATH_MAX], line[512];
	struct sigaction sa;
	long long token, duration, writes, step;
	char *end;
	int i;

	if (argc != 4 || lock == NULL || tok == NULL || client == NULL)
		return 2;
	token = strtoll(tok, &end, 10);
	if (*end != '\0' || token <= 0)
		return 2;
	duration = strtoll(argv[2], NULL, 10);
	writes = strtoll(argv[3], NULL, 10);
	if (duration < 0 || writes < 1)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);

	snprintf(runs, sizeof(runs), "%s/runs.log", argv[1]);
	snprintf(line, sizeof(line), "start %lld %s %lld %s %ld\n",
	    tutil_wall_ms(), lock, token, client, (long)getpid());
	if (append(runs, line) != 0)
		return 2;
	step = duration / writes;
	for (i = 0; i < writes && !stop; i++) {
		struct timespec ts = {(time_t)(step / 1000),
		    (long)(step % 1000) * 1000000L};

		/* A signal ends the nap early; then stop is set. */
		nanosleep(&ts, NULL);
		if (stop)
			break;
		if (save(argv[1], lock, token, client) < 0)
			return 2;
	}
	snprintf(line, sizeof(line), "end %lld %s %lld %s %s\n",
	    tutil_wall_ms(), lock, token, client, stop ? "term" : "ok");
	append(runs, line);
	return stop ? 143 : 0;
}
