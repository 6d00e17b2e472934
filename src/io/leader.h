/*
 * leader: leadership among several processes through an etcd lease.
 *
 * Every candidate holds a lease of ttl seconds and keeps it alive.  To
 * lead, it creates the leader key (<prefix>leader) attached to its lease in
 * a transaction that only succeeds while the key is absent (create_revision
 * 0).  The key's create_revision names the term: it is unique and grows
 * with every new leader.  The key, and so the term, ends when its lease is
 * revoked (resignation) or expires (the leader stopped renewing it); then
 * another candidate's next attempt creates it anew.  Candidates that do not
 * lead try again every retry_ms and learn who leads from the key's value.
 *
 * When a leader must consider its term over: by this process's monotonic
 * clock.  A keepalive sent at time s that etcd answered with TTL T means
 * the lease lives at least until s + T (etcd restarts the TTL when it
 * receives the request, which is after s).  The term is valid until
 *
 *     valid_until = s + T - margin
 *
 * for the last keepalive (or the grant) that succeeded, where margin covers
 * the time between a leader_check() and the effect of what the caller
 * decided reaching others, and the two clocks' rates.  Past valid_until,
 * leader_check() is false and stays false for that term, even if a late
 * keepalive succeeds: a leader that was paused or cut off from etcd learns
 * it no longer leads from its own clock, without asking etcd.  Since a
 * lease expires no earlier than s + T, the next leader's term cannot
 * begin before this one's valid_until, up to the margin.
 *
 * A lease revoked, or the key deleted, by someone else (an operator with
 * etcdctl) ends the term in etcd at once; this process learns it at its
 * next renewal (within T/3).  Until then only the fencing of every journal
 * write on the term (store_etcd.h) stops it: it cannot commit, so it
 * cannot announce anything new.
 *
 * Threads: one helper thread does all the talking to etcd, with its own
 * connection, so that keepalives go out on time however long the owner's
 * loop is busy (a large journal write, a load at takeover), and so that a
 * member that does not answer never blocks the owner.  The thread touches
 * only its own state and a snapshot under a mutex; it signals each change
 * of the snapshot through a file descriptor for the owner's poll().  The
 * owner never waits for etcd in these calls.
 *
 * Keepalives go every T/3; after one fails, every T/10 (at least 100 ms)
 * until one succeeds or the term is over.  Each request to etcd may take
 * at most T/4 (and at most the etcd options' timeout).
 */
#ifndef MQLOCK_IO_LEADER_H
#define MQLOCK_IO_LEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/etcd.h"

#define LEADER_ID_MAX 128
#define LEADER_PREFIX_MAX 128

struct leader;

struct leader_opts {
	const struct etcd_opts *etcd; /* the thread makes its own client */
	const char *prefix;           /* key prefix, e.g. "mqlock/locks/" */
	const char *id; /* this candidate, 1..LEADER_ID_MAX printable */
	int ttl_s;      /* lease TTL, >= 2 */
	int margin_ms;  /* >= 0, < ttl_s * 1000 / 3 */
	int retry_ms;   /* attempts while another leads; 0: 500 */
	bool campaign;  /* false: only watch who leads (leader_resume()) */
};

enum leader_role {
	LEADER_STANDBY, /* another leads, or nobody yet */
	LEADER_LEADING  /* this process leads; see leader_check() */
};

struct leader_status {
	enum leader_role role;
	int64_t term;        /* LEADER_LEADING: the leader key's revision */
	int64_t lease;       /* this candidate's lease id; 0: none */
	int64_t valid_until; /* LEADER_LEADING: monotonic ms; see above */
	int64_t last_sent;   /* send time of the last renewal that worked */
	bool etcd_ok;        /* the last request to etcd was answered */
	int64_t etcd_since;  /* monotonic ms since when etcd_ok is as it is */
	char leader[LEADER_ID_MAX + 1]; /* who leads, as last seen; "" */
	char error[512];                /* the last failure; "" */
	uint64_t terms;                 /* terms led so far */
};

/*
 * leader_new(o, err, errsz): check the options and start the thread, which
 * campaigns at once (unless o->campaign is false).  Strings are copied.
 * Returns NULL with a reason in err.
 */
struct leader *leader_new(const struct leader_opts *o, char *err, size_t errsz);

/*
 * leader_free(l): stop the thread; if leading, revoke the lease first
 * (bounded by the etcd timeout) so that a standby takes over at once.  The
 * caller has stopped acting as leader.  NULL is a no-op.
 */
void leader_free(struct leader *l);

/*
 * leader_check(l, now, term): true while this process leads at monotonic
 * time now (read it just before acting on the answer): the thread won a
 * term and now < valid_until.  *term (unless NULL) gets the term, to fence
 * writes with (store_etcd_set_term()).  Once it has returned false for a
 * term, it never returns true for that term again; a new term has a higher
 * number.  Never blocks on etcd.
 */
bool leader_check(struct leader *l, int64_t now, int64_t *term);

/*
 * leader_deadline(l): the monotonic ms at which leader_check() turns false
 * unless a keepalive succeeds first (INT64_MAX while not leading): the
 * owner's poll() must wake by then.
 */
int64_t leader_deadline(struct leader *l);

/*
 * leader_status(l, out): a copy of the thread's latest view, for the
 * owner's status message and logs.  Also empties the wake descriptor.
 */
void leader_status(struct leader *l, struct leader_status *out);

/*
 * leader_wake_fd(l): readable when the status changed since the last
 * leader_status() (a term won or lost, another leader seen, etcd lost or
 * back).  Never read it yourself.
 */
int leader_wake_fd(const struct leader *l);

/*
 * leader_resign(l, hold_ms): end the term now (leader_check() is false from
 * this call on), revoke the lease in the thread, and make no attempt to
 * lead for hold_ms.  A no-op while not leading, except for the hold.
 */
void leader_resign(struct leader *l, int hold_ms);

/*
 * leader_resume(l, campaign): start (true) or stop (false) campaigning.
 * Stopping does not end a term; see leader_resign().
 */
void leader_resume(struct leader *l, bool campaign);

#endif
