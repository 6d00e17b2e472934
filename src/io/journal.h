/*
 * journal: the lock table's journal behind one interface, whichever it
 * is: a sqlite file that one mqlockd owns (store.h), or etcd, shared by
 * several mqlockd of which one leads (store_etcd.h).  The coordinator
 * loads, counts epochs and commits batches through it and acts on the
 * result alone, without knowing which journal it has.
 *
 * The results say what the caller must do.  A sqlite journal only ever
 * answers JOURNAL_OK or JOURNAL_BROKEN (it is the only writer, and its
 * file is there or not); etcd may also be out of reach for a while, or
 * tell a former leader that its term is over.
 */
#ifndef MQLOCK_IO_JOURNAL_H
#define MQLOCK_IO_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/locktab.h"
#include "io/etcd.h"

struct journal;

enum journal_rc {
	JOURNAL_OK = 0,
	/*
	 * etcd did not answer in time or had no quorum: what was asked may
	 * or may not be in, asking again is safe (the table's dirty set is
	 * kept), and nothing may be announced until it is.
	 */
	JOURNAL_UNAVAILABLE = -1,
	/* The term is over: nothing was written; stop acting as leader. */
	JOURNAL_FENCED = -2,
	/* The journal cannot be used (a write error, refused permissions,
	 * a corrupt or newer journal): stop. */
	JOURNAL_BROKEN = -3
};

/*
 * journal_open_sqlite(path, err, errsz): the sqlite journal at path,
 * created if absent and locked against a second mqlockd (store_open()).
 * Returns NULL with a readable reason in err.
 */
struct journal *journal_open_sqlite(const char *path, char *err, size_t errsz);

/*
 * journal_open_etcd(o, prefix, err, errsz): the journal under prefix in
 * the etcd cluster o names (store_etcd_open()); no request is made yet.
 * Every write is fenced on the term given to journal_set_term().  Returns
 * NULL with a readable reason in err.
 */
struct journal *journal_open_etcd(const struct etcd_opts *o, const char *prefix,
    char *err, size_t errsz);

/* journal_close(j): close and free.  NULL is a no-op. */
void journal_close(struct journal *j);

/*
 * journal_set_term(j, term): etcd: fence every later write on term (0:
 * refuse every write); a new term must load again before writing.  A
 * sqlite journal has no terms: a no-op.
 */
void journal_set_term(struct journal *j, int64_t term);

/*
 * journal_load(j, t): restore the empty table t.  Returns a journal_rc
 * (failures are logged); on failure t must be discarded.
 */
int journal_load(struct journal *j, struct locktab *t)
    __attribute__((warn_unused_result));

/*
 * journal_next_epoch(j, &epoch): increase the stored epoch by one and
 * return the new value once it is durable.  Returns a journal_rc.
 */
int journal_next_epoch(struct journal *j, uint64_t *epoch)
    __attribute__((warn_unused_result));

/*
 * journal_flush(j, t): make every dirty lock and client of t durable,
 * with a new token block when t granted past the last one, in one
 * transaction where the journal's limits allow it.  JOURNAL_OK means
 * durable: announce it.  t's dirty set is left as it was either way.
 */
int journal_flush(struct journal *j, struct locktab *t)
    __attribute__((warn_unused_result));

/*
 * journal_batch_records(j): dirty records (locks and clients) a batch
 * should stop at so that it commits in one request: etcd's limit on a
 * transaction's operations, less a margin; 0 (no limit) for sqlite.  A
 * larger batch still commits, in more requests.
 */
size_t journal_batch_records(const struct journal *j);

/* journal_name(j): what the logs call it: the file, or etcd's prefix. */
const char *journal_name(const struct journal *j);

/* journal_error(j): etcd's last failure, readable ("" for sqlite). */
const char *journal_error(const struct journal *j);

#endif
