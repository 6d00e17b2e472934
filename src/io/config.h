/*
 * Transitional: mqlockd's flags live in mqlockd/config.h now.  This header
 * keeps the coordinator's files that still include it compiling: it brings
 * in the new header and maps the names they still use (the secret reader,
 * 0 or -1, and the log levels from before they were renamed apart from
 * <syslog.h>'s).  Remove it once they include mqlockd/config.h and use
 * secret_read_line() and LOG_LEVEL_* themselves.
 */
#ifndef MQLOCK_IO_CONFIG_H
#define MQLOCK_IO_CONFIG_H

#include "io/log.h"
#include "io/secret.h"
#include "mqlockd/config.h"

#define LOG_ERROR LOG_LEVEL_ERROR
#define LOG_WARN LOG_LEVEL_WARN
#define LOG_INFO LOG_LEVEL_INFO
#define LOG_DEBUG LOG_LEVEL_DEBUG
#define config_read_secret(path, buf, size, err, errsz) \
	(secret_read_line((path), (buf), (size), (err), (errsz)) < 0 ? -1 : 0)

#endif
