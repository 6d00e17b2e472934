/*
 * secret: passwords and keys read from files, for mqlockd and mqlock alike,
 * so that they never appear on a command line.
 */
#ifndef MQLOCK_IO_SECRET_H
#define MQLOCK_IO_SECRET_H

#include <stddef.h>

/* The longest password, key or ticket a file may hold, in bytes. */
#define SECRET_MAX 4096

/*
 * secret_read_line(path, buf, size, err, errsz): the first line of the
 * file at path, without its line end ("\n" or "\r\n"), NUL-terminated in
 * buf.  Returns its length, or -1 with a one-line reason naming path in
 * err when the file cannot be read, the line is empty, holds a NUL byte, or
 * is longer than size - 1 bytes.  For MQTT passwords.
 */
int secret_read_line(const char *path, char *buf, size_t size, char *err,
    size_t errsz);

/*
 * secret_read_key(path, min, buf, size, err, errsz): the whole file at
 * path minus one trailing "\n", as raw bytes in buf (not NUL-terminated).
 * Returns their number, or -1 with a reason in err when the file is not a
 * regular file, can be written by its group or read, written or run by
 * others (its group may read it: a service that shares the key; chmod 640),
 * cannot be read, or holds fewer
 * than min (at least 1) or more than size (at most SECRET_MAX) bytes.  For
 * signing keys.
 */
int secret_read_key(const char *path, size_t min, unsigned char *buf,
    size_t size, char *err, size_t errsz);

#endif
