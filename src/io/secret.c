#include "io/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Read up to size bytes of the file at path into buf, and one more to
 * tell a longer file; private: refuse a file its group or others may read
 * or write.  Returns the number read (size + 1: longer), or -1 with err.
 */
static long
read_file(const char *path, int private, unsigned char *buf, size_t size,
    char *err, size_t errsz)
{
	unsigned char extra;
	struct stat st;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		snprintf(err, errsz, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	/* Checked on the open file: what is read is what was checked. */
	if (fstat(fd, &st) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto err;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "%s is not a regular file", path);
		goto err;
	}
	/* Its group may read it (a service sharing the key), no more. */
	if (private && (st.st_mode & (S_IWGRP | S_IRWXO)) != 0) {
		snprintf(err, errsz,
		    "%s may be changed by its group or used by others "
		    "(mode %03o): chmod 640 it",
		    path, (unsigned)(st.st_mode & 0777));
		goto err;
	}
	while (got <= size) {
		unsigned char *to = got < size ? buf + got : &extra;
		ssize_t n = read(fd, to, got < size ? size - got : 1);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errsz, "cannot read %s: %s", path,
			    strerror(errno));
			goto err;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return (long)got;
err:
	close(fd);
	return -1;
}

int
secret_read_line(const char *path, char *buf, size_t size, char *err,
    size_t errsz)
{
	/* A line, "\r\n", and one byte to tell a longer file. */
	char tmp[SECRET_MAX + 4];
	size_t len, n;
	long got;
	int rc = -1;

	if (size < 2 || size > SECRET_MAX + 1) {
		snprintf(err, errsz, "%s: passwords have 1 to %d bytes", path,
		    SECRET_MAX);
		return -1;
	}
	got = read_file(path, 0, (unsigned char *)tmp, size + 1, err, errsz);
	if (got < 0)
		return -1;
	/* got == size + 2: more than that, which tmp does not hold. */
	n = (size_t)got <= size + 1 ? (size_t)got : size + 1;
	for (len = 0; len < n && tmp[len] != '\n'; len++) {
		if (tmp[len] == '\0') {
			snprintf(err, errsz, "%s: NUL byte on the first line",
			    path);
			goto out;
		}
	}
	if (len > 0 && tmp[len - 1] == '\r' && len < n)
		len--;
	if (len > size - 1) {
		snprintf(err, errsz, "%s: first line longer than %zu bytes",
		    path, size - 1);
		goto out;
	}
	if (len == 0) {
		snprintf(err, errsz, "%s: the first line is empty", path);
		goto out;
	}
	memcpy(buf, tmp, len);
	buf[len] = '\0';
	rc = (int)len;
out:
	explicit_bzero(tmp, sizeof(tmp));
	return rc;
}

int
secret_read_key(const char *path, size_t min, unsigned char *buf, size_t size,
    char *err, size_t errsz)
{
	/* A key, its newline, and one byte to tell a longer file. */
	unsigned char tmp[SECRET_MAX + 2];
	size_t len;
	long n;

	if (size > SECRET_MAX) {
		snprintf(err, errsz, "%s: keys have at most %d bytes", path,
		    SECRET_MAX);
		return -1;
	}
	n = read_file(path, 1, tmp, size + 1, err, errsz);
	if (n < 0)
		return -1;
	len = (size_t)n;
	if (len > 0 && tmp[len - 1] == '\n')
		len--;
	if (len > size) {
		snprintf(err, errsz, "%s: key longer than %zu bytes", path,
		    size);
		len = 0;
	} else if (len < min) {
		snprintf(err, errsz, "%s: key shorter than %zu bytes", path,
		    min);
		len = 0;
	} else
		memcpy(buf, tmp, len);
	explicit_bzero(tmp, sizeof(tmp));
	return len > 0 ? (int)len : -1;
}
