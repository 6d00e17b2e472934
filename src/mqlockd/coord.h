/*
 * coord: the coordinator's event loop.  It wires the lock table (core) to
 * the journal (store) and the broker (mqtt): messages in, one batch of
 * decisions, one commit, then everything the batch decided published.
 */
#ifndef MQLOCK_MQLOCKD_COORD_H
#define MQLOCK_MQLOCKD_COORD_H

#include "io/secret.h"
#include "mqlockd/config.h"

/*
 * Old names coord.c still uses: the secret reader (0 or -1) and the log
 * levels from before they were renamed apart from <syslog.h>'s.  To go once
 * coord.c uses secret_read_line() and LOG_LEVEL_* itself.
 */
#define LOG_WARN LOG_LEVEL_WARN
#define LOG_INFO LOG_LEVEL_INFO
#define LOG_DEBUG LOG_LEVEL_DEBUG
#define config_read_secret(path, buf, size, err, errsz) \
	(secret_read_line((path), (buf), (size), (err), (errsz)) < 0 ? -1 : 0)

/*
 * coord_run(cfg): run until SIGINT or SIGTERM.  Returns the process exit
 * status: 0 after a clean stop, 1 when the journal cannot be opened, read
 * or written (logged; nothing undecided was announced).
 */
int coord_run(const struct config *cfg);

#endif
