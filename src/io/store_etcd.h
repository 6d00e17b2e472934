/*
 * store_etcd: the journal of the lock table in etcd, for several mqlockd
 * of which one leads (leader.h).
 *
 * The same records as the sqlite journal (store.h), one key each, under a
 * prefix P (e.g. "mqlock/locks/"):
 *
 *   P leader              the leader's id, on its lease (leader.h); its
 *                         create_revision is the term
 *   P meta/schema         "1"
 *   P meta/epoch          the epoch, decimal
 *   P meta/last_token     the top of the reserved token block, decimal
 *   P meta/pending        {"batch": ID, "chunks": N} while a batch too
 *                         large for one transaction is applied
 *   P stage/ID/NNNNNN     that batch's records, in chunks
 *   P client/<client id>  {"session": s, "connected": b, "max_conn": "n",
 *                          "grace_deadline": "ms"}
 *   P lock/<lock id>      {"holder": c|null, "holder_user": u,
 *                          "token": "n", "since": "ms",
 *                          "idle_deadline": "ms", "warned": b,
 *                          "queue": [[client, user], ...]}
 *
 * 64-bit numbers are JSON strings, so no value loses precision; deadlines
 * are absolute wall-clock ms, as in sqlite.
 *
 * Fencing: every write is a transaction that compares P leader's
 * create_revision with the term set by store_etcd_set_term(): it commits
 * only while that term lasts in etcd.  A write after the term ended
 * changes nothing and returns STORE_ETCD_FENCED.
 *
 * Batches: store_etcd_flush() writes a batch in one transaction when it
 * fits etcd's limits (operations per transaction, request bytes; etcd.h).
 * A larger batch is written as chunks under P stage/, then made durable in
 * one transaction that writes P meta/pending (the commit point, with the
 * token block), then copied onto the records and cleaned up.  Loading and
 * every later write first finish a pending batch, so a batch is either
 * entirely in the journal or not at all, and batches apply in order.
 *
 * Tokens: reserved a block at a time in P meta/last_token, in the same
 * transaction as the grants that pass it (as in sqlite): a new leader
 * loads it and goes on above it, so tokens stay strictly increasing and
 * unique across every failover.
 *
 * Every call is bounded by the etcd options' timeout (per request to
 * etcd; a load or a large batch makes several).
 */
#ifndef MQLOCK_IO_STORE_ETCD_H
#define MQLOCK_IO_STORE_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/locktab.h"
#include "io/etcd.h"

struct store_etcd;

enum store_etcd_rc {
	STORE_ETCD_OK = 0,
	/* etcd did not answer in time, or had no quorum: a write may or may
	 * not be in; t's dirty set is kept, and writing it again is safe. */
	STORE_ETCD_UNAVAILABLE = -1,
	/* The term is over (or none is set): nothing was written.  This
	 * process must stop acting as leader. */
	STORE_ETCD_FENCED = -2,
	/* etcd refused the request (permissions, limits), or what it holds
	 * under the prefix is not a journal this version reads. */
	STORE_ETCD_BROKEN = -3
};

/*
 * store_etcd_open(o, prefix, err, errsz): a journal under prefix (1-128
 * printable ASCII bytes, e.g. "mqlock/locks/") on the cluster in o.
 * Does not contact etcd.  Returns NULL with a reason in err.
 */
struct store_etcd *store_etcd_open(const struct etcd_opts *o,
    const char *prefix, char *err, size_t errsz);

/* store_etcd_close(s): free.  NULL is a no-op. */
void store_etcd_close(struct store_etcd *s);

/*
 * store_etcd_set_term(s, term): fence every later write on this term
 * (leader_check()'s); 0 refuses every write.  A new term also forgets what
 * the previous one knew of the journal: load again before writing.
 */
void store_etcd_set_term(struct store_etcd *s, int64_t term);

/*
 * store_etcd_load(s, t): restore the empty table t from the journal as of
 * one revision, after finishing a pending batch (which needs the term).
 * Returns a store_etcd_rc (failures logged); on failure t may be partly
 * filled and must be discarded.
 */
int store_etcd_load(struct store_etcd *s, struct locktab *t)
    __attribute__((warn_unused_result));

/*
 * store_etcd_next_epoch(s, &epoch): increase the stored epoch by one,
 * fenced, and return the new value.  Returns a store_etcd_rc.
 */
int store_etcd_next_epoch(struct store_etcd *s, uint64_t *epoch)
    __attribute__((warn_unused_result));

/*
 * store_etcd_flush(s, t): write every dirty lock and client of t, with a
 * new token block when t granted past the last one, fenced, and return
 * once etcd committed it (STORE_ETCD_OK: durable; announce it).  Nothing
 * dirty and no new block: STORE_ETCD_OK without a request (it proves
 * nothing about the term; leader_check() does).  t's dirty set is left as
 * it was either way.
 */
int store_etcd_flush(struct store_etcd *s, struct locktab *t)
    __attribute__((warn_unused_result));

/* What the journal says about itself, and who leads. */
struct store_etcd_info {
	bool exists;         /* anything under the prefix's meta/ */
	uint64_t epoch;      /* the last epoch begun */
	uint64_t last_token; /* tokens up to here may have been granted */
	bool pending;        /* a staged batch is being copied into place */
	int64_t term;        /* the leader key's create_revision; 0: none */
	char leader[129];    /* its value (the leader's id), printable */
};

/*
 * store_etcd_info(s, out): read the counters and the leader key (two
 * requests; needs no term).  Returns a store_etcd_rc.
 */
int store_etcd_info(struct store_etcd *s, struct store_etcd_info *out)
    __attribute__((warn_unused_result));

/*
 * store_etcd_batch_records(s): how many dirty records a batch may hold to
 * go in one transaction within etcd's operation limit (the staged path
 * takes several).  A caller that ends its batches there commits each in
 * one request.
 */
size_t store_etcd_batch_records(const struct store_etcd *s);

/* store_etcd_error(s): the last failure, readable ("" before any). */
const char *store_etcd_error(const struct store_etcd *s);

/*
 * store_etcd_staged(s): batches that needed the staged path so far (for
 * tests and statistics).
 */
uint64_t store_etcd_staged(const struct store_etcd *s);

#endif
