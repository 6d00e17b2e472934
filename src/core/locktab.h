/*
 * locktab: the lock table.  Pure: no clock, no I/O, no logging, no threads.
 *
 * The table holds every lock that is held or has waiters, every client that
 * holds or waits for a lock, their FIFO queues, idle and grace deadlines and
 * the token counter.  The shell feeds it one event at a time with the current
 * time (locktab_apply) and carries out the effects it appends: events and
 * replies to publish, notes to log.  What changed is tracked as "dirty" locks
 * and clients, which the shell journals and announces (owner messages) after
 * each batch, then acknowledges with locktab_dirty_done().
 *
 * Two small state machines decide everything; locktab.c has one switch for
 * each, with a named case for every (state, event) pair:
 *
 *   client  LIVE   known to be connected and alive
 *           OWES   connected as far as we know, but owes an answer to a
 *                  roll call (a new epoch): grants skip it until it answers
 *           GONE   its will was heard: in its grace period, grants skip it
 *
 *   lock    FREE   nobody holds it (any waiters are OWES or GONE)
 *           HELD   one client holds it, with a token and an idle deadline
 *
 * A request is a cell of (op, lock state, the sender's role in that lock:
 * none, holder or waiter).  Time is milliseconds since the Unix epoch, as
 * given by the caller; the table never reads a clock.  topics.md describes
 * the rules implemented here.
 */
#ifndef MQLOCK_CORE_LOCKTAB_H
#define MQLOCK_CORE_LOCKTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hash.h"
#include "core/limits.h"

typedef int64_t lt_ms;
#define LT_NEVER INT64_MAX

struct locktab;

/*
 * When an idle holder is warned and revoked: ALWAYS at its idle deadline;
 * CONTENDED only while a live client waits for the lock, and then no
 * sooner than one warning period after the warning.
 */
enum lt_idle_policy { LT_IDLE_ALWAYS = 0, LT_IDLE_CONTENDED };

struct lt_config {
	lt_ms idle_timeout; /* > 0 */
	lt_ms idle_warning; /* >= 0 */
	lt_ms grace;        /* >= 0 */
	enum lt_idle_policy idle_policy;
	size_t waiters_per_lock;  /* 1 .. MQL_WAITERS_PER_LOCK */
	size_t locks_per_client;  /* 1 .. MQL_LOCKS_PER_CLIENT */
	size_t max_clients;       /* clients holding or waiting; 0 = no cap */
	size_t max_locks;         /* locks held or awaited; 0 = no cap */
	size_t clients_per_user;  /* client ids per verified user; 0 = no cap */
	size_t tick_batch;        /* deadlines handled per tick; 0 = 1024 */
	struct mql_hasher hasher; /* keyed hash for ids (required) */
};

/* Error codes, in the order of topics.md's table. */
enum lt_err {
	LT_OK = 0,
	LT_ERR_BAD_REQUEST,
	LT_ERR_INVALID_LOCK,
	LT_ERR_SESSION_MISMATCH,
	LT_ERR_STALE,
	LT_ERR_TICKET_INVALID,
	LT_ERR_TICKET_EXPIRED,
	LT_ERR_TICKET_MISMATCH,
	LT_ERR_TICKET_LOCK,
	LT_ERR_TICKET_REQUIRED,
	LT_ERR_LIMIT,
	LT_ERR_INTERNAL
};

enum lt_op { LT_OP_ACQUIRE, LT_OP_RELEASE, LT_OP_ACTIVITY, LT_OP_QUERY };

enum lt_client_state { LT_CS_LIVE, LT_CS_OWES, LT_CS_GONE };
enum lt_lock_state { LT_LS_FREE, LT_LS_HELD };
enum lt_role { LT_ROLE_NONE, LT_ROLE_HOLDER, LT_ROLE_WAITER };

/* A decoded, validated request (codec.h fills it). */
struct lt_request {
	enum lt_op op;
	char lock[MQL_LOCK_ID_SZ];
	char client[MQL_CLIENT_ID_SZ];
	char session[MQL_SESSION_SZ]; /* "" for a query */
	char user[MQL_USER_SZ];
	int64_t conn; /* -1: absent */
	bool wait;
	bool takeover;              /* acquire: same user, other tab */
	char ticket[MQL_TICKET_SZ]; /* as sent; "" when absent */
	/*
	 * Filled by the shell once the ticket is verified: the application's
	 * user id ("" for an unverified request).  user then holds the
	 * ticket's name.
	 */
	char uid[MQL_UID_SZ];
};

struct lt_will {
	char client[MQL_CLIENT_ID_SZ];
	char session[MQL_SESSION_SZ];
	int64_t conn; /* -1: absent */
};

/* An operator's command on one lock (break: revoke; purge: empty queue). */
struct lt_admin {
	char lock[MQL_LOCK_ID_SZ];
	char reason[MQL_REASON_SZ];
};

/*
 * The coordinator is back in touch with the broker (after its own start or
 * a reconnect).  Every deadline is moved to at least now + grace, so nobody
 * loses a lock for what happened while nobody could hear them.  With
 * rollcall (a new epoch: the broker may have lost wills), every connected
 * client must also send a valid request within `window` ms or be treated as
 * gone; a client that already owed an answer gets at least `window` ms from
 * now either way.
 */
struct lt_resume {
	bool rollcall;
	lt_ms window;
};

enum lt_event_kind {
	LT_EV_REQUEST,
	LT_EV_WILL,
	LT_EV_BREAK,
	LT_EV_PURGE,
	LT_EV_TICK,
	LT_EV_RESUME
};

struct lt_event {
	enum lt_event_kind kind;
	/*
	 * Opaque to the table: copied into every LT_FX_REPLY this event
	 * produces, so the shell finds where the reply goes by its tag, not
	 * by counting.
	 */
	uint64_t tag;
	union {
		struct lt_request req;
		struct lt_will will;
		struct lt_admin admin;
		struct lt_resume resume;
	} u;
};

/* What the shell must do, in order. */
enum lt_fx_kind {
	LT_FX_EVENT, /* publish an event to fx.client */
	LT_FX_REPLY, /* answer the event tagged fx.tag (MQTT 5 response) */
	LT_FX_NOTE   /* a decision that only needs a log line */
};

enum lt_event_type {
	LT_E_GRANTED,
	LT_E_QUEUED,
	LT_E_BUSY,
	LT_E_REVOKED,
	LT_E_IDLE_WARNING,
	LT_E_DROPPED,
	LT_E_ERROR
};

enum lt_result {
	LT_R_GRANTED,
	LT_R_QUEUED,
	LT_R_BUSY,
	LT_R_RELEASED,
	LT_R_REFRESHED,
	LT_R_IGNORED,
	LT_R_REVOKED,
	LT_R_PURGED,
	LT_R_STATE, /* a query: the shell describes fx.lock as committed */
	LT_R_ERROR
};

enum lt_note {
	LT_N_RELEASED,     /* holder released */
	LT_N_LEFT_QUEUE,   /* waiter released */
	LT_N_DISCONNECTED, /* will accepted, grace started */
	LT_N_RECONNECTED,  /* request from a disconnected client */
	LT_N_DROPPED,      /* waiter removed when its grace ended */
	LT_N_WILL_IGNORED, /* stale, foreign or unknown will */
	LT_N_FREED,        /* a lock became free */
	LT_N_SILENT,       /* no answer to a roll call: treated as gone */
	LT_N_STALE,        /* a request from a connection already gone */
	LT_N_FULL          /* a queue or the table is full: call a roll */
};

enum lt_reason {
	LT_REASON_IDLE,
	LT_REASON_DISCONNECT,
	LT_REASON_ADMIN,
	LT_REASON_TAKEOVER
};

/* One effect.  A value: it stays valid whatever the table does next. */
struct lt_fx {
	enum lt_fx_kind kind;
	union {
		enum lt_event_type event;
		enum lt_result result;
		enum lt_note note;
	} what;
	uint64_t tag; /* REPLY: the tag of the event it answers */
	lt_ms now;    /* when it was decided */
	char client[MQL_CLIENT_ID_SZ];
	char lock[MQL_LOCK_ID_SZ]; /* "" when none */
	uint64_t token;            /* granted, revoked, REPLY granted/revoked */
	uint32_t position;         /* queued */
	uint32_t count;            /* REPLY purged: waiters removed */
	bool moved; /* queued: a waiter moved up, not an answer to a request */
	lt_ms deadline;             /* granted: idle deadline; idle-warning */
	enum lt_reason reason;      /* revoked, dropped */
	enum lt_err code;           /* error event, REPLY error */
	const char *message;        /* error text (static) or NULL */
	char detail[MQL_REASON_SZ]; /* revoked/dropped by admin: the reason */
};

/* A growable effect list, owned by the caller. */
struct lt_fxlist {
	struct lt_fx *v;
	size_t n;
	size_t cap;
	bool failed; /* an append ran out of memory: the batch is void */
};

void lt_fxlist_clear(struct lt_fxlist *fx);

/*
 * lt_fxlist_push(fx, e): append a copy of e (for refusals the shell finds
 * before the table sees a request).  Returns 0, or -1 and sets fx->failed
 * when memory runs out.
 */
int lt_fxlist_push(struct lt_fxlist *fx, const struct lt_fx *e);
void lt_fxlist_free(struct lt_fxlist *fx);

/*
 * Journal records.  locktab_dirty_lock() fills them to describe the table;
 * locktab_restore_*() read them to rebuild it.  Strings are borrowed: from
 * the table (valid until the next call that changes it) or from the caller.
 */
struct lt_waiter_rec {
	const char *client;
	const char *user;
	const char *uid; /* views only: NULL when unverified */
	bool connected;  /* views only; ignored by restore */
};

struct lt_lock_rec {
	const char *id;
	const char *holder; /* NULL: free */
	const char *holder_user;
	const char *holder_uid; /* views only: NULL when unverified */
	bool holder_connected;  /* views only */
	uint64_t token;
	lt_ms since;
	lt_ms idle_deadline;
	bool warned;
	size_t nwaiters;
	const struct lt_waiter_rec *waiters;
	/*
	 * Restore only: the caller changed this record from what the journal
	 * holds (dropped a holder or waiters it could not restore); the lock
	 * is marked dirty so that the next flush journals it as it is now.
	 */
	bool repaired;
};

struct lt_client_rec {
	const char *id;
	const char *session;
	const char *uid; /* NULL: not verified by a ticket */
	/*
	 * The journal keeps GONE apart from the rest (connected or not); a
	 * restored connected client owes an answer to the restart's roll call
	 * whatever it was before.
	 */
	enum lt_client_state state;
	int64_t max_conn;     /* -1: none seen */
	lt_ms grace_deadline; /* GONE: when its grace ends */
};

/*
 * locktab_new(cfg): an empty table; cfg is copied (the hasher's key must
 * outlive the table).  NULL on allocation failure or a config out of range.
 */
struct locktab *locktab_new(const struct lt_config *cfg);

/* locktab_free(t): free the table and everything in it.  NULL is a no-op. */
void locktab_free(struct locktab *t);

/*
 * locktab_apply(t, now, ev, fx): apply one event at time now.  Appends the
 * effects to fx (a request or admin command always gets exactly one
 * LT_FX_REPLY, tagged ev->tag).  Returns LT_OK when the event was handled,
 * or the error the request was refused with (the table is then unchanged
 * and fx holds the error event, where one is due, and the reply).  If
 * fx->failed is set afterwards, memory ran out: the table must not be
 * trusted and the batch must not be committed.
 */
enum lt_err locktab_apply(struct locktab *t, lt_ms now,
    const struct lt_event *ev, struct lt_fxlist *fx)
    __attribute__((warn_unused_result));

/*
 * locktab_next_deadline(t): the earliest idle, warning, grace or roll call
 * deadline, or LT_NEVER.  When it is <= now, apply an LT_EV_TICK.
 */
lt_ms locktab_next_deadline(const struct locktab *t);

/* Dirty tracking: what changed since the last locktab_dirty_done(). */
size_t locktab_dirty_locks(const struct locktab *t);
size_t locktab_dirty_clients(const struct locktab *t);

/*
 * locktab_dirty_lock(t, i, out): describe the i-th changed lock
 * (i < locktab_dirty_locks(t)).  Returns true if the lock is held or has
 * waiters (journal it); false if it became free and empty (delete it;
 * out->id and out->since are set, the rest is zero).  out's strings and
 * arrays stay valid until the next call into t.
 */
bool locktab_dirty_lock(struct locktab *t, size_t i, struct lt_lock_rec *out);

/* locktab_dirty_client(t, i, out): the same for clients; false = delete. */
bool locktab_dirty_client(const struct locktab *t, size_t i,
    struct lt_client_rec *out);

/*
 * locktab_dirty_done(t): the changes were journaled and announced: forget
 * them, and free locks and clients that hold and wait for nothing.
 */
void locktab_dirty_done(struct locktab *t);

/* locktab_last_token(t): the highest token granted so far (0: none). */
uint64_t locktab_last_token(const struct locktab *t);

/* Counts, for status and tests. */
size_t locktab_nlocks(const struct locktab *t);
size_t locktab_nclients(const struct locktab *t);

/*
 * locktab_view(t, lock, out): describe one lock, like locktab_dirty_lock.
 * Returns false if the table does not know it (it is free).
 */
bool locktab_view(struct locktab *t, const char *lock, struct lt_lock_rec *out);

/* locktab_view_client(t, id, out): describe one client; false if unknown. */
bool locktab_view_client(const struct locktab *t, const char *id,
    struct lt_client_rec *out);

/*
 * locktab_foreach_lock(t, fn, arg): call fn for every lock in the table (in
 * no particular order) until fn returns nonzero, which is then returned.
 * The table must not change during the walk.
 */
int locktab_foreach_lock(struct locktab *t,
    int (*fn)(const struct lt_lock_rec *rec, void *arg), void *arg);

/*
 * Restore from a journal: clients first, then locks, then the token, on an
 * empty table.  Records are validated (lengths, existing clients, no
 * duplicates, limits); nothing restored is marked dirty.  A lock may be
 * restored free with waiters (they had not answered a roll call).  Return
 * LT_OK, LT_ERR_BAD_REQUEST for a record that breaks the rules (a corrupt
 * journal) or LT_ERR_INTERNAL when memory runs out.  The naming rules of
 * topics.md are the caller's to apply (codec.h), so that it can drop what
 * an older version journaled under looser rules.
 */
enum lt_err locktab_restore_client(struct locktab *t,
    const struct lt_client_rec *rec) __attribute__((warn_unused_result));
enum lt_err locktab_restore_lock(struct locktab *t,
    const struct lt_lock_rec *rec) __attribute__((warn_unused_result));
void locktab_restore_token(struct locktab *t, uint64_t last_token);

/*
 * locktab_restore_done(t): end of restore.  Clients that hold and wait for
 * nothing are marked dirty so the next flush deletes them.  Every other
 * connected client owes an answer to a roll call (a restart is a new
 * epoch): grants skip it until it sends a valid request, and the first
 * LT_EV_RESUME with rollcall gives it its deadline.
 */
void locktab_restore_done(struct locktab *t);

/*
 * locktab_check(t): verify every invariant (one holder, no duplicate waiters,
 * counts, limits, timers, states).  Returns NULL, or a static description of
 * the first violation.  For tests and fuzzing; O(size of the table).
 */
const char *locktab_check(const struct locktab *t);

#endif
