#include "bench/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/log.h"

struct proc {
	pid_t pid;
	int reaped;
	int status;
};

struct proc *
proc_spawn(const char *const *argv, const char *log)
{
	struct proc *p;
	int in = -1, out = -1;
	pid_t pid;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		log_error("proc: out of memory");
		return NULL;
	}
	/* Opened before fork: the child must not allocate or lock. */
	if ((in = open("/dev/null", O_RDONLY | O_CLOEXEC)) == -1 ||
	    (out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		 0644)) == -1) {
		log_error("proc: %s: %s", in == -1 ? "/dev/null" : log,
		    strerror(errno));
		goto err;
	}
	if ((pid = fork()) == -1) {
		log_error("proc: fork: %s", strerror(errno));
		goto err;
	}
	if (pid == 0) {
		/*
		 * Die with the benchmark, so that a killed run leaves no
		 * broker or coordinator behind.  (The signal follows the
		 * forking thread: always spawn from the main thread.)
		 */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* dup2 clears FD_CLOEXEC on the copies. */
		if (dup2(in, 0) == -1 || dup2(out, 1) == -1 ||
		    dup2(out, 2) == -1)
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in);
	close(out);
	p->pid = pid;
	return p;
err:
	if (in != -1)
		close(in);
	if (out != -1)
		close(out);
	free(p);
	return NULL;
}

pid_t
proc_pid(const struct proc *p)
{
	return p->pid;
}

int
proc_alive(struct proc *p)
{
	pid_t r;

	if (p->reaped)
		return 0;
	r = waitpid(p->pid, &p->status, WNOHANG);
	if (r == p->pid || (r == -1 && errno == ECHILD)) {
		p->reaped = 1;
		return 0;
	}
	return 1;
}

/* Poll for the exit every millisecond for up to timeout_ms. */
static int
wait_exit(struct proc *p, int timeout_ms)
{
	const struct timespec ms = {0, 1000000};

	for (int i = 0; i <= timeout_ms; i++) {
		if (!proc_alive(p))
			return 0;
		nanosleep(&ms, NULL);
	}
	return -1;
}

int
proc_stop(struct proc *p, int sig, int timeout_ms)
{
	if (p->reaped)
		return -1;
	if (kill(p->pid, sig) == -1 && errno != ESRCH)
		log_warn("proc: kill %d: %s", (int)p->pid, strerror(errno));
	if (wait_exit(p, timeout_ms) != 0) {
		log_warn("proc: %d did not exit within %d ms: killing it",
		    (int)p->pid, timeout_ms);
		kill(p->pid, SIGKILL);
		if (waitpid(p->pid, &p->status, 0) == p->pid)
			p->reaped = 1;
	}
	return p->status;
}

void
proc_free(struct proc *p)
{
	if (p == NULL)
		return;
	if (!p->reaped)
		proc_stop(p, SIGTERM, 5000);
	free(p);
}

int64_t
proc_cpu_us(pid_t pid)
{
	char path[64], buf[1024], *s;
	unsigned long long ut, st;
	long tck = sysconf(_SC_CLK_TCK);
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (tck <= 0 || (f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip to the
	 * last ')'.  utime and stime are fields 14 and 15. */
	if ((s = strrchr(buf, ')')) == NULL ||
	    sscanf(s + 1,
		" %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
		&st) != 2)
		return -1;
	return (int64_t)((ut + st) * 1000000ULL / (unsigned long long)tck);
}

int64_t
proc_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	int64_t kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *end;
		long long v;

		if (strncmp(line, field, flen) != 0 || line[flen] != ':')
			continue;
		errno = 0;
		v = strtoll(line + flen + 1, &end, 10);
		if (errno == 0 && end != line + flen + 1 && v >= 0)
			kb = v;
		break;
	}
	fclose(f);
	return kb;
}
