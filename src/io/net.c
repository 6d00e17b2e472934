#include "io/net.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "io/log.h"

/*
 * Returns 1 if fd is a connected TCP socket that just got TCP_NODELAY (and
 * FD_CLOEXEC), else
 * 0.  Every check that fails only means "not ours to change": fd may be a
 * file, a pipe, a UNIX or UDP socket, a listener, or already closed by
 * another thread.
 */
static int
nodelay_one(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int type, proto, on, fl;

	len = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM)
		return 0;
	len = sizeof(proto);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == -1 ||
	    proto != IPPROTO_TCP)
		return 0;
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
		return 0;
	len = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
		return 0;
	len = sizeof(on);
	if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == -1 || on)
		return 0;
	on = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1) {
		log_warn("net: TCP_NODELAY on fd %d: %s", fd, strerror(errno));
		return 0;
	}
	if ((fl = fcntl(fd, F_GETFD)) == -1 ||
	    fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == -1)
		log_warn("net: FD_CLOEXEC on fd %d: %s", fd, strerror(errno));
	return 1;
}

int
net_nodelay_all(void)
{
	DIR *dir;
	struct dirent *de;
	int changed = 0, self;

	if ((dir = opendir("/proc/self/fd")) == NULL) {
		log_warn("net: /proc/self/fd: %s", strerror(errno));
		return -1;
	}
	self = dirfd(dir);
	while ((de = readdir(dir)) != NULL) {
		char *end;
		long fd;

		errno = 0;
		fd = strtol(de->d_name, &end, 10);
		if (errno != 0 || end == de->d_name || *end != '\0' || fd < 0 ||
		    fd > INT_MAX || fd == self)
			continue;
		changed += nodelay_one((int)fd);
	}
	closedir(dir);
	return changed;
}
