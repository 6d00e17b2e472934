/*
 * check: mqlockd --check.  The flags are parsed already; this reads the
 * journal the way mqlockd starts with it (the same loader into the same
 * lock table), but read-only, and says what it found.
 */
#ifndef MQLOCK_MQLOCKD_CHECK_H
#define MQLOCK_MQLOCKD_CHECK_H

#include <stdio.h>

#include "mqlockd/config.h"

/*
 * check_run(c, out): print to out that the configuration is fine and what
 * the journal c->db holds (schema, locks, clients, epoch, last token), or
 * that it does not exist yet in a directory where mqlockd may create it.
 * Returns the exit status: 0, or 1 when mqlockd could not start with that
 * journal (the reason is logged): not an mqlock journal, broken rows, in
 * use by a running mqlockd, or absent from a directory it cannot write.
 * With --etcd it reads the journal in etcd instead (no term needed; it
 * writes nothing) and also says who leads; 1 when etcd cannot be reached
 * or what it holds under the prefix is not a journal this mqlockd reads.
 */
int check_run(const struct config *c, FILE *out);

#endif
