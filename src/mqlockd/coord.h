/*
 * coord: the coordinator's event loop.  It wires the lock table (core) to
 * the journal (store) and the broker (mqtt): messages in, one batch of
 * decisions, one commit, then everything the batch decided published.
 */
#ifndef MQLOCK_MQLOCKD_COORD_H
#define MQLOCK_MQLOCKD_COORD_H

#include "mqlockd/config.h"

/*
 * coord_run(cfg): run until SIGINT or SIGTERM.  Returns the process exit
 * status: 0 after a clean stop, 1 when the journal cannot be opened, read
 * or written (logged; nothing undecided was announced).
 */
int coord_run(const struct config *cfg);

#endif
