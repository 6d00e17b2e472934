/*
 * tutil.c: see tutil.h.
 */
#include "tutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Clocks ----------------------------------------------------------------- */

static long long
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
tutil_wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

long long
tutil_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

void
tutil_nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

uint64_t
tutil_rand(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Ports ------------------------------------------------------------------ */

static void
loopback(struct sockaddr_in *a, int port)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->sin_port = htons((uint16_t)port);
}

int
tutil_free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
	int saved;

	if (fd == -1)
		return -1;
	loopback(&a, 0);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	saved = errno;
	close(fd);
	errno = saved;
	return port;
}

int
tutil_port_accepts(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd == -1)
		return 0;
	loopback(&a, port);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* Has child pid exited?  Leaves it for the caller to reap. */
static int
child_exited(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == -1)
		return errno == ECHILD;
	return si.si_pid == pid;
}

int
tutil_wait_port(int port, pid_t pid, int ms)
{
	long long end = tutil_mono_ms() + ms;

	while (!tutil_port_accepts(port)) {
		if (pid > 0 && child_exited(pid)) {
			errno = ECHILD;
			return -1;
		}
		if (tutil_mono_ms() >= end) {
			errno = ETIMEDOUT;
			return -1;
		}
		tutil_nap_ms(10);
	}
	return 0;
}

/* Files ------------------------------------------------------------------ */

char *
tutil_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *b;
	size_t n = 0, cap = 0, got;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			b = realloc(buf, cap);
			if (b == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

int
tutil_file_contains(const char *path, const char *needle)
{
	char *s = tutil_slurp(path, NULL);
	int found = s != NULL && strstr(s, needle) != NULL;

	free(s);
	return found;
}

char *
tutil_stderr_of(void (*fn)(void *), void *arg)
{
	char path[] = "/tmp/mqlock-stderr-XXXXXX";
	int fd = mkstemp(path), saved = -1;
	char *text = NULL;

	if (fd == -1)
		return NULL;
	fflush(stderr);
	if ((saved = dup(2)) == -1 || dup2(fd, 2) == -1)
		goto out;
	fn(arg);
	fflush(stderr);
	if (dup2(saved, 2) == -1)
		goto out;
	text = tutil_slurp(path, NULL);
out:
	if (saved != -1)
		close(saved);
	close(fd);
	unlink(path);
	return text;
}

/* Processes ------------------------------------------------------------- */

pid_t
tutil_spawn(char *const argv[], const char *out, int default_sigpipe)
{
	pid_t parent = getpid(), pid;
	int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int saved;

	if (fd == -1)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == -1) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		/* The parent may have died before the line above. */
		if (getppid() != parent)
			_exit(127);
		if (nul != -1)
			dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (default_sigpipe)
			signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd);
	return pid;
}

long
tutil_find_pid(const char *needle)
{
	char path[64], cmd[8192];
	struct dirent *e;
	DIR *d = opendir("/proc");
	long pid, found = -1;
	size_t n, i;
	FILE *f;

	if (d == NULL)
		return -1;
	while (found < 0 && (e = readdir(d)) != NULL) {
		if (strspn(e->d_name, "0123456789") != strlen(e->d_name))
			continue;
		pid = strtol(e->d_name, NULL, 10);
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		n = fread(cmd, 1, sizeof(cmd) - 1, f);
		fclose(f);
		for (i = 0; i < n; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		cmd[n] = '\0';
		if (strstr(cmd, needle) != NULL &&
		    tutil_proc_field(pid, 1) == (long)getpid())
			found = pid;
	}
	closedir(d);
	return found;
}

long
tutil_proc_field(long pid, int field)
{
	char path[64], buf[4096], *p;
	size_t n;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields count from 0 after "pid (comm)"; comm may hold spaces. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	p++;
	for (i = 0; i <= field; i++) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return -1;
		if (i == field)
			break;
		p += strcspn(p, " ");
	}
	if (field == 0)
		return (unsigned char)*p; /* the state letter */
	return strtol(p, NULL, 10);
}

long
tutil_rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

int
tutil_stop_child(long pid, int sig, int ms)
{
	long long end = tutil_mono_ms() + ms;

	if (kill((pid_t)pid, sig) == -1)
		return -1;
	/* Until reaped, an exited child is a zombie whose status /proc shows.
	 */
	while (tutil_proc_field(pid, 0) != 'Z') {
		if (tutil_mono_ms() >= end)
			return -1;
		tutil_nap_ms(20);
	}
	return (int)tutil_proc_field(pid, TUTIL_STAT_EXIT_CODE);
}
