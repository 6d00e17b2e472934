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
 * The secret reader under the name coord.c knew it by: 0 or -1.  To go
 * once coord.c calls secret_read_line() itself.
 */
#define config_read_secret(path, buf, size, err, errsz) \
	(secret_read_line((path), (buf), (size), (err), (errsz)) < 0 ? -1 : 0)

/*
 * coord_run(cfg): run until SIGINT or SIGTERM.  Returns the process exit
 * status: 0 after a clean stop, 1 when the journal cannot be opened, read
 * or written (logged; nothing undecided was announced).
 */
int coord_run(const struct config *cfg);

#endif
