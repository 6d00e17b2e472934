/*
 * store: the sqlite journal of the lock table.
 *
 * One row per lock that is held or has waiters, one per client that holds or
 * waits for a lock, and a few counters: the epoch, and the token counter,
 * reserved a block at a time (a restart goes on above the block, so tokens
 * never repeat but may skip ahead).  Deadlines are
 * absolute wall-clock milliseconds, so a restart rebuilds the same table.
 * The database runs in WAL mode with synchronous=FULL: a committed batch
 * survives a crash of the process or the machine.  It is opened with an
 * exclusive lock, so a second mqlockd on the same file refuses to start.
 */
#ifndef MQLOCK_IO_STORE_H
#define MQLOCK_IO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/locktab.h"

struct store;

/*
 * store_open(path, err, errsz): open or create the journal at path and take
 * its lock.  Returns NULL with a readable reason in err when the file cannot
 * be opened or written, is not an mqlock journal, or is in use.
 */
struct store *store_open(const char *path, char *err, size_t errsz);

/*
 * store_open_readonly(path, err, errsz): open an existing journal to read
 * it, as mqlockd --check does: nothing is created, converted or written.
 * Returns NULL with a readable reason in err when the file cannot be
 * opened, is not an mqlock journal (of schema 1 or the current one), or is
 * in use by a running mqlockd.  store_load() works on it; store_flush() and
 * store_next_epoch() fail.
 */
struct store *store_open_readonly(const char *path, char *err, size_t errsz);

/* What a journal says about itself. */
struct store_info {
	int64_t schema;      /* schema version of the file as opened */
	uint64_t epoch;      /* the last epoch begun */
	uint64_t last_token; /* tokens up to here may have been granted */
};

/* store_info(s, out): fill out.  Returns 0, or -1 (logged). */
int store_info(struct store *s, struct store_info *out);

/* store_close(s): close the journal.  NULL is a no-op. */
void store_close(struct store *s);

/*
 * store_load(s, t): restore the table t (empty) from the journal.
 * Returns 0, or -1 (logged) when the journal cannot be read or breaks the
 * table's rules.
 */
int store_load(struct store *s, struct locktab *t);

/*
 * store_next_epoch(s, &epoch): increase the stored epoch by one, commit, and
 * return the new value.  Returns 0, or -1 (logged).
 */
int store_next_epoch(struct store *s, uint64_t *epoch);

/*
 * store_flush(s, t): write every dirty lock and client of t in one
 * transaction, with a new token block when t granted past the last one, and
 * commit.  Returns 0 once durable, or -1
 * (logged) after rolling back; t's dirty set is left as it was.
 */
int store_flush(struct store *s, struct locktab *t);

#endif
