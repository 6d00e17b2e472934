/*
 * fuzz_locktab: random event sequences into the lock table.
 *
 * The input is a program over a small world: 6 clients (two sessions each,
 * increasing connection numbers, each with a user id of its own or none), 5
 * locks, small limits and short timers.
 *
 *   header  5 bytes: idle timeout, idle warning, grace, limits and tick
 *           batch, then idle policy and clients per user (see setup())
 *   step    an op byte, then its arguments (see step()); the op's high
 *           nibble advances the clock first
 *
 * Steps are acquire, release, activity and query requests (sometimes
 * malformed, from another session, with old or new connection numbers, as
 * try-locks, verified as the client's own user or as another, asking for a
 * takeover), wills, admin breaks and purges, ticks, sleeps to the next
 * deadline (-1, 0 or +1 ms), resumes with and without a roll call, batches
 * that leave the journal behind for a few steps, checks of the journal, and
 * restarts: the table is rebuilt from the journal and resumed with a roll
 * call, as mqlockd does.
 *
 * After every step: locktab_check(); every bound of the configuration, the
 * clients of each user included; the views agree with each other; tokens of
 * grants strictly increase; exactly one reply per request and per admin
 * command, carrying the event's tag; the outcome of each request, will,
 * break, purge and resume is the one topics.md gives for the state before it
 * (a refused request, a query, a stale will and a break of a free lock change
 * nothing); every change of holder, token or queue place was announced, and
 * every waiter removed without asking was told why (dropped).  Idle timers
 * follow the policy: under `always` exactly as before; under `contended`
 * warnings and revocations only while a live client waits, revocation no
 * sooner than one warning period after the warning, and a timer that ran
 * out while nobody waited sleeps until a live waiter comes (the model knows
 * which timers sleep, or that it cannot tell).  After every flush the
 * journal describes the table, the owner messages (the records of dirty
 * locks) describe every lock, uids and connected flags included, and the
 * next deadline is the one the views, sleeping timers and roll calls imply.
 * Every 32 steps and at the end, a table rebuilt from the journal equals the
 * live one field by field.
 *
 * MQLOCK_FUZZ_TRACE=1 in the environment prints every step to stderr.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "core/locktab.h"
#include "fuzz.h"
#include "io/siphash.h"

static const unsigned char fuzz_hash_key[16] = "mqlock-fuzz-key";

#define NC 6 /* clients */
#define NL 5 /* locks */
#define NU 3 /* uids: none, and two users */
#define CHECKPOINT 32
#define MAX_STEPS 2048
#define T0 ((lt_ms)1764140000000)
#define TAG0 ((uint64_t)0x7a61000000000000)

static void fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* ---- the world ---- */

static char client_ids[NC][MQL_CLIENT_ID_SZ];
static char lock_ids[NL][MQL_LOCK_ID_SZ];
static char sessions[NC][2][MQL_SESSION_SZ];
static char users[4][MQL_USER_SZ];
static char reasons[3][MQL_REASON_SZ];
static char uids[NU][MQL_UID_SZ]; /* uids[0] = "": not verified */

/*
 * Whose tab each client is (index in uids[]): three of user 1, two of user
 * 2, and c3, whose tickets are never verified.  A foreign uid is the other
 * user's.
 */
static const int home_uid[NC] = {1, 1, 2, 0, 1, 2};
static const int foreign_uid[NC] = {2, 2, 1, 1, 2, 1};

/* s repeated until n bytes are filled (s is whole UTF-8 sequences). */
static void
fill(char *dst, const char *head, const char *s, size_t n)
{
	size_t k = strlen(head), m = strlen(s);

	memcpy(dst, head, k);
	while (k + m <= n) {
		memcpy(dst + k, s, m);
		k += m;
	}
	while (k < n)
		dst[k++] = 'z';
	dst[n] = '\0';
}

static void
world_init(void)
{
	static bool done;
	char head[8];

	if (done)
		return;
	done = true;
	for (int i = 0; i < NC; i++) {
		snprintf(client_ids[i], sizeof(client_ids[i]), "c%d", i);
		snprintf(sessions[i][0], sizeof(sessions[i][0]),
		    "sess-c%d-0123456789abcdef", i);
		snprintf(head, sizeof(head), "S%d-", i);
		fill(sessions[i][1], head, "\xc3\xa9", MQL_SESSION_MAX);
	}
	/* Ids at the limits: '_' may start a client id, not a lock id. */
	snprintf(client_ids[4], sizeof(client_ids[4]), "_c4");
	fill(client_ids[5], "c5-", "\xc3\xa9", MQL_CLIENT_ID_MAX);
	for (int i = 0; i < NL; i++)
		snprintf(lock_ids[i], sizeof(lock_ids[i]), "l%d", i);
	snprintf(lock_ids[3], sizeof(lock_ids[3]), "doc-\xc3\xbc");
	fill(lock_ids[4], "l4-", "\xe2\x82\xac", MQL_LOCK_ID_MAX);
	snprintf(users[1], sizeof(users[1]), "Alice");
	fill(users[2], "", "\xce\xa9", MQL_USER_MAX);
	snprintf(users[3], sizeof(users[3]), "Zo\xc3\xab \"q\" \\ \t");
	snprintf(reasons[1], sizeof(reasons[1]), "stuck since Friday");
	fill(reasons[2], "why: ", "\xf0\x9f\x94\x92", MQL_REASON_MAX);
	snprintf(uids[1], sizeof(uids[1]), "42");
	fill(uids[2], "u-", "\xe2\x98\x83", MQL_UID_MAX);
}

static int
client_index(const char *id)
{
	for (int i = 0; i < NC; i++) {
		if (strcmp(client_ids[i], id) == 0)
			return i;
	}
	return -1;
}

static int
lock_index(const char *id)
{
	for (int i = 0; i < NL; i++) {
		if (strcmp(lock_ids[i], id) == 0)
			return i;
	}
	return -1;
}

/* A request's uid: its index in uids[] (0: not verified). */
static int
request_uid(const struct lt_request *rq)
{
	for (int i = 0; i < NU; i++) {
		if (strcmp(uids[i], rq->uid) == 0)
			return i;
	}
	return -1;
}

/* ---- snapshots: the table as its views show it ---- */

struct swaiter {
	int c;
	int user; /* index in users[] */
	int uid;  /* index in uids[] */
	bool connected;
};

struct slock {
	bool present;
	int holder; /* -1: free */
	int holder_user;
	int holder_uid;
	bool holder_connected;
	uint64_t token;
	lt_ms since;
	lt_ms idle_deadline;
	bool warned;
	size_t nw;
	struct swaiter w[NC];
};

struct sclient {
	bool present;
	int session; /* index in sessions[c] */
	int uid;     /* index in uids[] */
	bool connected;
	bool unconfirmed;
	int64_t max_conn;
	lt_ms grace;   /* 0 while connected */
	size_t nlocks; /* held and awaited, counted from the lock views */
};

struct snap {
	struct slock l[NL];
	struct sclient c[NC];
	size_t nlocks, nclients;
	size_t dirty_locks, dirty_clients;
	uint64_t last_token;
	lt_ms next;
};

/* The journal: what was flushed, in the same form. */
struct journal {
	struct slock l[NL];
	struct sclient c[NC];
	uint64_t last_token;
};

/* Strings in views are the world's: their index, or a failure. */
static int
user_index(const char *s)
{
	for (int i = 0; s != NULL && i < 4; i++) {
		if (strcmp(users[i], s) == 0)
			return i;
	}
	fail("a view shows user '%.20s'", s != NULL ? s : "(null)");
}

/* NULL is "not verified"; "" is never a uid. */
static int
uid_index(const char *s)
{
	if (s == NULL)
		return 0;
	for (int i = 1; i < NU; i++) {
		if (strcmp(uids[i], s) == 0)
			return i;
	}
	fail("a view shows uid '%.20s'", s);
}

static int
session_index(int c, const char *s)
{
	for (int i = 0; s != NULL && i < 2; i++) {
		if (strcmp(sessions[c][i], s) == 0)
			return i;
	}
	fail("%s: a view shows session '%.20s'", client_ids[c],
	    s != NULL ? s : "(null)");
}

static void
rec_to_slock(const struct lt_lock_rec *r, struct slock *s)
{
	memset(s, 0, sizeof(*s));
	s->present = true;
	s->holder = -1;
	if (r->holder != NULL) {
		if ((s->holder = client_index(r->holder)) < 0)
			fail("lock %s held by unknown client", r->id);
		s->holder_user = user_index(r->holder_user);
		s->holder_uid = uid_index(r->holder_uid);
		s->holder_connected = r->holder_connected;
		s->token = r->token;
		s->idle_deadline = r->idle_deadline;
		s->warned = r->warned;
	}
	s->since = r->since;
	if (r->nwaiters > NC)
		fail("lock %s has %zu waiters", r->id, r->nwaiters);
	s->nw = r->nwaiters;
	for (size_t i = 0; i < r->nwaiters; i++) {
		if ((s->w[i].c = client_index(r->waiters[i].client)) < 0)
			fail("lock %s awaited by unknown client", r->id);
		s->w[i].user = user_index(r->waiters[i].user);
		s->w[i].uid = uid_index(r->waiters[i].uid);
		s->w[i].connected = r->waiters[i].connected;
	}
}

static void
rec_to_sclient(int c, const struct lt_client_rec *r, struct sclient *s)
{
	memset(s, 0, sizeof(*s));
	s->present = true;
	s->session = session_index(c, r->session);
	s->uid = uid_index(r->uid);
	s->connected = r->state != LT_CS_GONE;
	s->unconfirmed = r->state == LT_CS_OWES;
	s->max_conn = r->max_conn;
	s->grace = r->state != LT_CS_GONE ? 0 : r->grace_deadline;
}

static void
take_snap(struct locktab *t, struct snap *s)
{
	size_t nl = 0, nc = 0;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < NL; i++) {
		struct lt_lock_rec r;

		if (!locktab_view(t, lock_ids[i], &r))
			continue;
		if (r.id == NULL || strcmp(r.id, lock_ids[i]) != 0)
			fail("view of %s names another lock", lock_ids[i]);
		rec_to_slock(&r, &s->l[i]);
		nl++;
	}
	for (int i = 0; i < NC; i++) {
		struct lt_client_rec r;

		if (!locktab_view_client(t, client_ids[i], &r))
			continue;
		if (r.id == NULL || strcmp(r.id, client_ids[i]) != 0)
			fail("view of %s names another client", client_ids[i]);
		rec_to_sclient(i, &r, &s->c[i]);
		nc++;
	}
	s->nlocks = locktab_nlocks(t);
	s->nclients = locktab_nclients(t);
	if (s->nlocks != nl || s->nclients != nc)
		fail("the table counts %zu locks and %zu clients, the views "
		     "show %zu and %zu",
		    s->nlocks, s->nclients, nl, nc);
	s->dirty_locks = locktab_dirty_locks(t);
	s->dirty_clients = locktab_dirty_clients(t);
	s->last_token = locktab_last_token(t);
	s->next = locktab_next_deadline(t);

	/* Lock and client views agree. */
	for (int i = 0; i < NL; i++) {
		const struct slock *l = &s->l[i];

		if (!l->present)
			continue;
		if (l->holder >= 0) {
			const struct sclient *c = &s->c[l->holder];

			if (!c->present)
				fail("holder of %s has no client view",
				    lock_ids[i]);
			if (l->holder_connected != c->connected ||
			    l->holder_uid != c->uid)
				fail("holder of %s: connected flags or uids "
				     "differ",
				    lock_ids[i]);
			s->c[l->holder].nlocks++;
		}
		for (size_t k = 0; k < l->nw; k++) {
			const struct sclient *c = &s->c[l->w[k].c];

			if (!c->present)
				fail("waiter of %s has no client view",
				    lock_ids[i]);
			if (l->w[k].connected != c->connected ||
			    l->w[k].uid != c->uid)
				fail("waiter of %s: connected flags or uids "
				     "differ",
				    lock_ids[i]);
			s->c[l->w[k].c].nlocks++;
		}
	}
}

static long
position(const struct slock *l, int c)
{
	if (!l->present)
		return -1;
	for (size_t k = 0; k < l->nw; k++) {
		if (l->w[k].c == c)
			return (long)k;
	}
	return -1;
}

static bool
holds(const struct snap *s, int c, int l)
{
	return s->l[l].present && s->l[l].holder == c;
}

static bool
held(const struct snap *s, int l)
{
	return s->l[l].present && s->l[l].holder >= 0;
}

static bool
holds_or_waits(const struct snap *s, int c, int l)
{
	return holds(s, c, l) || position(&s->l[l], c) >= 0;
}

/* Known to be alive: connected, and no roll call left unanswered. */
static bool
live(const struct snap *s, int c)
{
	return s->c[c].present && s->c[c].connected && !s->c[c].unconfirmed;
}

static bool
live_waiter(const struct snap *s, int l)
{
	for (size_t k = 0; s->l[l].present && k < s->l[l].nw; k++) {
		if (live(s, s->l[l].w[k].c))
			return true;
	}
	return false;
}

/* ---- state of a run ---- */

/*
 * A held lock's idle timer: running, or (idle policy contended) asleep
 * because it ran out while no live client waited; UNKNOWN when a tick that
 * handled only part of what was due may or may not have reached it.
 */
enum timer { TM_ARMED, TM_DORMANT, TM_UNKNOWN };

/* What topics.md makes of a request, on the state before it. */
struct want {
	enum lt_err err;
	bool full;      /* LIMIT: the table is full, an LT_N_FULL note */
	bool may_quota; /* refusing it for the user's cap is also right */
	bool bind_over; /* binding a bound client to its uid passes the cap */
	bool query;
	bool takeover;
	int uid; /* the request's, index in uids[] */
};

struct fz {
	struct lt_config cfg;
	struct locktab *t;
	struct lt_fxlist fx;
	struct journal j;
	struct slock own[NL]; /* the owner messages last published */
	struct snap before, after, tmp;
	struct want want; /* of the request being applied */
	enum lt_err err;  /* what locktab_apply() returned for it */
	lt_ms now;
	int64_t conn[NC];   /* the current connection of each client */
	uint64_t max_token; /* highest token seen in a granted event */
	uint64_t tag;       /* of the event being applied */
	/* Roll-call deadlines, which no view shows, worked out here. */
	lt_ms rollcall[NC];
	bool rollcall_set[NC];
	enum timer timer[NL];
	unsigned noflush; /* steps left in the current batch */
	size_t steps;
	bool trace;
};

static size_t cur_step;
static char cur_what[200];

static void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_locktab: step %zu (%s): ", cur_step, cur_what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

static bool
contended(const struct fz *f)
{
	return f->cfg.idle_policy == LT_IDLE_CONTENDED;
}

/* When the idle timer of held lock l runs out: warning, or revocation. */
static lt_ms
due(const struct fz *f, const struct slock *l)
{
	return l->idle_deadline - (l->warned ? 0 : f->cfg.idle_warning);
}

/* ---- invariants of one snapshot ---- */

static void
check_snap(const struct fz *f, const struct snap *s)
{
	bool seen_token;

	for (int i = 0; i < NL; i++) {
		const struct slock *l = &s->l[i];

		if (!l->present)
			continue;
		if (l->nw > f->cfg.waiters_per_lock)
			fail("%s: %zu waiters, limit %zu", lock_ids[i], l->nw,
			    f->cfg.waiters_per_lock);
		if (l->holder >= 0 &&
		    (l->token == 0 || l->token > s->last_token))
			fail("%s: token %" PRIu64 " (last %" PRIu64 ")",
			    lock_ids[i], l->token, s->last_token);
		if (l->holder < 0 && (l->token != 0 || l->idle_deadline != 0))
			fail("%s: free, with a token or deadline", lock_ids[i]);
		for (size_t k = 0; k < l->nw; k++) {
			int c = l->w[k].c;

			if (c == l->holder)
				fail("%s: the holder also waits", lock_ids[i]);
			for (size_t m = 0; m < k; m++) {
				if (l->w[m].c == c)
					fail("%s: %s waits twice", lock_ids[i],
					    client_ids[c]);
			}
		}
		if (l->holder < 0 && live_waiter(s, i))
			fail("%s: free with a live waiter", lock_ids[i]);
		/* At most one holder per token: tokens are never reused. */
		seen_token = false;
		for (int m = 0; m < i && l->holder >= 0; m++)
			seen_token |= s->l[m].present && s->l[m].holder >= 0 &&
			    s->l[m].token == l->token;
		if (seen_token)
			fail("%s: token %" PRIu64 " held twice", lock_ids[i],
			    l->token);
	}
	if ((f->cfg.max_clients > 0 && s->nclients > f->cfg.max_clients) ||
	    (f->cfg.max_locks > 0 && s->nlocks > f->cfg.max_locks))
		fail("%zu clients and %zu locks, caps %zu and %zu", s->nclients,
		    s->nlocks, f->cfg.max_clients, f->cfg.max_locks);
	for (int i = 0; i < NC; i++) {
		const struct sclient *c = &s->c[i];

		if (!c->present)
			continue;
		if (c->nlocks > f->cfg.locks_per_client)
			fail("%s: %zu locks, limit %zu", client_ids[i],
			    c->nlocks, f->cfg.locks_per_client);
		if (c->unconfirmed && !c->connected)
			fail("%s: unconfirmed while disconnected",
			    client_ids[i]);
		if (c->max_conn < -1 || c->max_conn > MQL_CONN_MAX)
			fail("%s: max_conn %" PRId64, client_ids[i],
			    c->max_conn);
	}
	/* Client ids holding or waiting, per verified user. */
	for (int u = 1; u < NU && f->cfg.clients_per_user > 0; u++) {
		size_t n = 0;

		for (int i = 0; i < NC; i++)
			n += s->c[i].present && s->c[i].nlocks > 0 &&
			    s->c[i].uid == u;
		if (n > f->cfg.clients_per_user)
			fail("uid %d has %zu clients, cap %zu", u, n,
			    f->cfg.clients_per_user);
	}
}

/*
 * The earliest deadline the views imply: idle timers (all of them, or
 * those the model knows to run), grace periods and, if asked, roll calls.
 */
static lt_ms
implied_next(const struct fz *f, const struct snap *s, bool rollcalls,
    bool all_armed)
{
	lt_ms next = LT_NEVER;

	for (int i = 0; i < NL; i++) {
		const struct slock *l = &s->l[i];

		if (!l->present || l->holder < 0 ||
		    (!all_armed && f->timer[i] != TM_ARMED))
			continue;
		if (due(f, l) < next)
			next = due(f, l);
	}
	for (int i = 0; i < NC; i++) {
		const struct sclient *c = &s->c[i];

		if (!c->present || c->nlocks == 0)
			continue;
		if (!c->connected && c->grace < next)
			next = c->grace;
		if (c->connected && c->unconfirmed && rollcalls) {
			if (!f->rollcall_set[i])
				fail("%s: unconfirmed without a roll call",
				    client_ids[i]);
			if (f->rollcall[i] < next)
				next = f->rollcall[i];
		}
	}
	return next;
}

/*
 * The live table's next deadline is the one the views imply, or the due
 * time of a timer the model could not tell about.  Such timers due sooner
 * than the table's next deadline are asleep.
 */
static void
check_next(struct fz *f, const struct snap *s, const char *what)
{
	lt_ms want = implied_next(f, s, true, false);
	bool ok = s->next == want;

	for (int i = 0; i < NL; i++) {
		const struct slock *l = &s->l[i];

		if (!l->present || l->holder < 0 || f->timer[i] != TM_UNKNOWN)
			continue;
		if (due(f, l) == s->next && s->next < want)
			ok = true;
		if (due(f, l) < s->next)
			f->timer[i] = TM_DORMANT;
	}
	if (!ok)
		fail("%s: next deadline %" PRId64 ", the views imply %" PRId64,
		    what, s->next, want);
}

/*
 * views: also compare what only views show (connected flags and uids); the
 * journal's lock records hold neither.
 */
static void
same_lock(const char *what, int i, const struct slock *a, const struct slock *b,
    bool views)
{
	if (a->present != b->present)
		fail("%s: %s present %d vs %d", what, lock_ids[i], a->present,
		    b->present);
	if (!a->present)
		return;
	if (a->holder != b->holder || a->holder_user != b->holder_user ||
	    a->token != b->token || a->since != b->since ||
	    a->idle_deadline != b->idle_deadline || a->warned != b->warned ||
	    (views &&
		(a->holder_connected != b->holder_connected ||
		    a->holder_uid != b->holder_uid)) ||
	    a->nw != b->nw)
		fail("%s: %s differs: holder %d/%d uid %d/%d token %" PRIu64
		     "/%" PRIu64 " since %" PRId64 "/%" PRId64 " idle %" PRId64
		     "/%" PRId64 " warned %d/%d waiters %zu/%zu",
		    what, lock_ids[i], a->holder, b->holder, a->holder_uid,
		    b->holder_uid, a->token, b->token, a->since, b->since,
		    a->idle_deadline, b->idle_deadline, a->warned, b->warned,
		    a->nw, b->nw);
	for (size_t k = 0; k < a->nw; k++) {
		if (a->w[k].c != b->w[k].c || a->w[k].user != b->w[k].user ||
		    (views &&
			(a->w[k].connected != b->w[k].connected ||
			    a->w[k].uid != b->w[k].uid)))
			fail("%s: %s waiter %zu differs", what, lock_ids[i], k);
	}
}

static void
same_client(const char *what, int i, const struct sclient *a,
    const struct sclient *b)
{
	if (a->present != b->present)
		fail("%s: %s present %d vs %d", what, client_ids[i], a->present,
		    b->present);
	if (a->present &&
	    (a->session != b->session || a->connected != b->connected ||
		a->max_conn != b->max_conn || a->grace != b->grace ||
		a->uid != b->uid))
		fail("%s: %s differs: connected %d/%d max_conn %" PRId64
		     "/%" PRId64 " grace %" PRId64 "/%" PRId64 " uid %d/%d",
		    what, client_ids[i], a->connected, b->connected,
		    a->max_conn, b->max_conn, a->grace, b->grace, a->uid,
		    b->uid);
}

/* Everything but the dirty counts (and, if asked, those too). */
static void
same_snap(const char *what, const struct snap *a, const struct snap *b,
    bool dirty)
{
	for (int i = 0; i < NL; i++)
		same_lock(what, i, &a->l[i], &b->l[i], true);
	for (int i = 0; i < NC; i++) {
		same_client(what, i, &a->c[i], &b->c[i]);
		if (a->c[i].unconfirmed != b->c[i].unconfirmed)
			fail("%s: %s unconfirmed differs", what, client_ids[i]);
	}
	if (a->nlocks != b->nlocks || a->nclients != b->nclients ||
	    a->last_token != b->last_token || a->next != b->next)
		fail("%s: counts, token or next deadline differ", what);
	if (dirty &&
	    (a->dirty_locks != b->dirty_locks ||
		a->dirty_clients != b->dirty_clients))
		fail("%s: dirty records differ", what);
}

/* ---- the journal and the owner messages ---- */

/*
 * What mqlockd does after a batch: journal the dirty records, publish the
 * owner messages of the dirty locks, acknowledge them.
 */
static void
flush(struct fz *f)
{
	size_t nl = locktab_dirty_locks(f->t);
	size_t nc = locktab_dirty_clients(f->t);
	const char *why;

	for (size_t i = 0; i < nl; i++) {
		struct lt_lock_rec r;
		bool keep = locktab_dirty_lock(f->t, i, &r);
		int li = r.id != NULL ? lock_index(r.id) : -1;

		if (li < 0)
			fail("dirty lock record of an unknown lock");
		if (keep) {
			if (r.holder == NULL && r.nwaiters == 0)
				fail("journal record of empty lock %s", r.id);
			rec_to_slock(&r, &f->own[li]);
			f->j.l[li] = f->own[li];
			f->j.l[li].holder_connected = false;
			f->j.l[li].holder_uid = 0;
			for (size_t k = 0; k < f->j.l[li].nw; k++) {
				f->j.l[li].w[k].connected = false;
				f->j.l[li].w[k].uid = 0;
			}
		} else {
			if (r.holder != NULL || r.nwaiters != 0 || r.token != 0)
				fail("deleting lock %s that is not free", r.id);
			memset(&f->j.l[li], 0, sizeof(f->j.l[li]));
			memset(&f->own[li], 0, sizeof(f->own[li]));
		}
	}
	for (size_t i = 0; i < nc; i++) {
		struct lt_client_rec r;
		bool keep = locktab_dirty_client(f->t, i, &r);
		int ci = r.id != NULL ? client_index(r.id) : -1;

		if (ci < 0)
			fail("dirty client record of an unknown client");
		if (keep) {
			rec_to_sclient(ci, &r, &f->j.c[ci]);
			f->j.c[ci].unconfirmed = false;
		} else {
			memset(&f->j.c[ci], 0, sizeof(f->j.c[ci]));
		}
	}
	f->j.last_token = locktab_last_token(f->t);
	locktab_dirty_done(f->t);
	if (locktab_dirty_locks(f->t) != 0 || locktab_dirty_clients(f->t) != 0)
		fail("dirty records left after locktab_dirty_done");
	if ((why = locktab_check(f->t)) != NULL)
		fail("locktab_check after flush: %s", why);

	/*
	 * The journal now describes the table exactly, and every owner
	 * message the lock as its view shows it.
	 */
	take_snap(f->t, &f->tmp);
	for (int i = 0; i < NL; i++) {
		struct slock j = f->tmp.l[i];

		same_lock("owner message", i, &f->own[i], &f->tmp.l[i], true);
		j.holder_connected = false;
		j.holder_uid = 0;
		for (size_t k = 0; k < j.nw; k++) {
			j.w[k].connected = false;
			j.w[k].uid = 0;
		}
		same_lock("journal", i, &f->j.l[i], &j, false);
	}
	for (int i = 0; i < NC; i++) {
		same_client("journal", i, &f->j.c[i], &f->tmp.c[i]);
		if (f->tmp.c[i].present && f->tmp.c[i].nlocks == 0)
			fail("%s kept after a flush with nothing",
			    client_ids[i]);
	}
	if (f->j.last_token != f->tmp.last_token)
		fail("journal: last token differs");
	check_next(f, &f->tmp, "flush");
}

/* A fresh table from the journal, as mqlockd builds it when it starts. */
static struct locktab *
rebuild(struct fz *f)
{
	struct locktab *t = locktab_new(&f->cfg);
	const char *why;

	if (t == NULL)
		fail("locktab_new failed");
	for (int i = 0; i < NC; i++) {
		const struct sclient *c = &f->j.c[i];
		struct lt_client_rec r = {
		    .id = client_ids[i],
		    .session = sessions[i][c->session],
		    .uid = c->uid != 0 ? uids[c->uid] : NULL,
		    .state = c->connected ? LT_CS_LIVE : LT_CS_GONE,
		    .max_conn = c->max_conn,
		    .grace_deadline = c->grace,
		};

		if (c->present && locktab_restore_client(t, &r) != LT_OK)
			fail("restoring client %s refused", client_ids[i]);
	}
	for (int i = 0; i < NL; i++) {
		const struct slock *l = &f->j.l[i];
		struct lt_waiter_rec w[NC];
		struct lt_lock_rec r = {
		    .id = lock_ids[i],
		    .holder = l->holder >= 0 ? client_ids[l->holder] : NULL,
		    .holder_user = users[l->holder_user],
		    .token = l->token,
		    .since = l->since,
		    .idle_deadline = l->idle_deadline,
		    .warned = l->warned,
		    .nwaiters = l->nw,
		    .waiters = w,
		};

		if (!l->present)
			continue;
		memset(w, 0, sizeof(w));
		for (size_t k = 0; k < l->nw; k++) {
			w[k].client = client_ids[l->w[k].c];
			w[k].user = users[l->w[k].user];
		}
		if (locktab_restore_lock(t, &r) != LT_OK)
			fail("restoring lock %s refused", lock_ids[i]);
	}
	locktab_restore_token(t, f->j.last_token);
	locktab_restore_done(t);
	if (locktab_dirty_locks(t) != 0 || locktab_dirty_clients(t) != 0)
		fail("a restored table has dirty records");
	if ((why = locktab_check(t)) != NULL)
		fail("locktab_check after restore: %s", why);
	return t;
}

/* Flush, rebuild, compare field by field; returns the rebuilt table. */
static struct locktab *
checkpoint(struct fz *f)
{
	struct locktab *r;

	snprintf(cur_what, sizeof(cur_what), "checkpoint after step %zu",
	    f->steps);
	flush(f);
	r = rebuild(f);
	take_snap(f->t, &f->before);
	take_snap(r, &f->tmp);
	/* Uids come back with the clients: the lock views show them. */
	for (int i = 0; i < NL; i++)
		same_lock("rebuilt", i, &f->before.l[i], &f->tmp.l[i], true);
	for (int i = 0; i < NC; i++) {
		same_client("rebuilt", i, &f->before.c[i], &f->tmp.c[i]);
		/*
		 * Roll calls are not journaled: a restart starts its own, so
		 * every connected client of the rebuilt table owes an answer.
		 */
		if (f->tmp.c[i].unconfirmed !=
		    (f->tmp.c[i].present && f->tmp.c[i].connected))
			fail("rebuilt: %s unconfirmed %d", client_ids[i],
			    f->tmp.c[i].unconfirmed);
	}
	if (f->before.nlocks != f->tmp.nlocks ||
	    f->before.nclients != f->tmp.nclients)
		fail("rebuilt: %zu locks %zu clients, live %zu and %zu",
		    f->tmp.nlocks, f->tmp.nclients, f->before.nlocks,
		    f->before.nclients);
	if (f->before.last_token != f->tmp.last_token)
		fail("rebuilt: last token %" PRIu64 ", live %" PRIu64,
		    f->tmp.last_token, f->before.last_token);
	/* A rebuilt table runs every idle timer, sleeping ones too. */
	if (f->tmp.next != implied_next(f, &f->before, false, true))
		fail("rebuilt: next deadline %" PRId64 ", expected %" PRId64,
		    f->tmp.next, implied_next(f, &f->before, false, true));
	check_next(f, &f->before, "live");
	return r;
}

/* ---- effects ---- */

static bool
is_event(const struct lt_fx *e, enum lt_event_type type)
{
	return e->kind == LT_FX_EVENT && e->what.event == type;
}

static bool
is_note(const struct lt_fx *e, enum lt_note note)
{
	return e->kind == LT_FX_NOTE && e->what.note == note;
}

static size_t
count_replies(const struct lt_fxlist *fx)
{
	size_t n = 0;

	for (size_t i = 0; i < fx->n; i++)
		n += fx->v[i].kind == LT_FX_REPLY;
	return n;
}

/* The last effect matching, or NULL. */
static const struct lt_fx *
find_fx(const struct lt_fxlist *fx, enum lt_fx_kind kind, int what, int c,
    int l)
{
	const struct lt_fx *found = NULL;

	for (size_t i = 0; i < fx->n; i++) {
		const struct lt_fx *e = &fx->v[i];
		int ew = kind == LT_FX_EVENT ? (int)e->what.event
		    : kind == LT_FX_REPLY    ? (int)e->what.result
					     : (int)e->what.note;

		if (e->kind == kind && ew == what &&
		    (c < 0 || client_index(e->client) == c) &&
		    (l < 0 || lock_index(e->lock) == l))
			found = e;
	}
	return found;
}

/* The request being applied, if it is one by c on l that was served. */
static bool
served_request(const struct fz *f, const struct lt_event *ev, enum lt_op op,
    int c, int l)
{
	return ev->kind == LT_EV_REQUEST && f->err == LT_OK && !f->want.query &&
	    ev->u.req.op == op && client_index(ev->u.req.client) == c &&
	    lock_index(ev->u.req.lock) == l;
}

/* The holder of l took over by c, the same user in another tab. */
static bool
took_over(const struct fz *f, const struct lt_event *ev, int c, int l)
{
	return f->want.takeover && served_request(f, ev, LT_OP_ACQUIRE, c, l);
}

/*
 * An idle warning goes to the holder, about the deadline it has then: the
 * one before the event, or the one of a grant earlier in the same event
 * (a warning period as long as the idle timeout warns at the grant); under
 * contended at least one warning period away, and only while a live client
 * waits.  The lock may be lost later in the same event.
 */
static void
check_warning(const struct fz *f, size_t i)
{
	const struct lt_fx *e = &f->fx.v[i];
	int c = client_index(e->client), l = lock_index(e->lock);
	bool granted = false;
	lt_ms deadline;

	if (c < 0 || l < 0)
		fail("idle warning for '%s' to '%s'", e->lock, e->client);
	if (holds(&f->before, c, l) && !f->before.l[l].warned)
		deadline = f->before.l[l].idle_deadline;
	else
		deadline = LT_NEVER;
	for (size_t k = 0; k < i; k++) {
		const struct lt_fx *g = &f->fx.v[k];

		if (is_event(g, LT_E_GRANTED) && client_index(g->client) == c &&
		    lock_index(g->lock) == l) {
			deadline = g->deadline;
			granted = true;
		}
	}
	if (contended(f) && deadline != LT_NEVER &&
	    deadline < f->now + f->cfg.idle_warning)
		deadline = f->now + f->cfg.idle_warning;
	if (e->deadline != deadline ||
	    (contended(f) ? e->deadline < f->now : e->deadline <= f->now))
		fail("idle warning for %s with deadline %" PRId64, e->lock,
		    e->deadline);
	if (contended(f) && !live_waiter(granted ? &f->after : &f->before, l))
		fail("idle warning for %s while no live client waits", e->lock);
	if (holds(&f->after, c, l) && f->after.l[l].idle_deadline == deadline &&
	    !f->after.l[l].warned)
		fail("%s warned but not marked so", e->lock);
}

/*
 * A waiter removed without asking is told (dropped): an admin purged the
 * queue, or its grace or roll call ended.
 */
static void
check_dropped_event(const struct fz *f, const struct lt_event *ev,
    const struct lt_fx *e)
{
	const struct snap *b = &f->before, *a = &f->after;
	int c = client_index(e->client), l = lock_index(e->lock);

	if (c < 0 || l < 0 || position(&b->l[l], c) < 0 ||
	    holds_or_waits(a, c, l))
		fail("dropped %s from %s, who did not wait or still does",
		    e->client, e->lock);
	if (find_fx(&f->fx, LT_FX_NOTE, LT_N_DROPPED, c, l) == NULL)
		fail("dropped %s from %s without a note", e->client, e->lock);
	switch (e->reason) {
	case LT_REASON_ADMIN:
		if (ev->kind != LT_EV_PURGE ||
		    lock_index(ev->u.admin.lock) != l ||
		    strcmp(e->detail, ev->u.admin.reason) != 0)
			fail("dropped from %s as admin", e->lock);
		break;
	case LT_REASON_DISCONNECT:
		if (ev->kind != LT_EV_TICK || live(b, c) ||
		    (!b->c[c].connected && b->c[c].grace > f->now) ||
		    (b->c[c].unconfirmed && f->rollcall[c] > f->now))
			fail("dropped %s from %s for a disconnect", e->client,
			    e->lock);
		break;
	default:
		fail("dropped with reason %d", (int)e->reason);
	}
}

static void
check_revoked(const struct fz *f, const struct lt_event *ev, size_t i)
{
	const struct snap *b = &f->before;
	const struct lt_fx *e = &f->fx.v[i];
	int c = client_index(e->client), l = lock_index(e->lock);
	lt_ms deadline;

	if (c < 0 || l < 0 || !holds(b, c, l) || b->l[l].token != e->token)
		fail("revoked %s from %s, who did not hold it with token "
		     "%" PRIu64,
		    e->lock, e->client, e->token);
	switch (e->reason) {
	case LT_REASON_IDLE:
		if (!contended(f)) {
			if (b->l[l].idle_deadline > f->now)
				fail("revoked %s before its deadline", e->lock);
			break;
		}
		/* Warned, before or in this tick, and the deadline passed. */
		deadline = b->l[l].warned ? b->l[l].idle_deadline : LT_NEVER;
		for (size_t k = 0; k < i; k++) {
			const struct lt_fx *g = &f->fx.v[k];

			if (is_event(g, LT_E_IDLE_WARNING) &&
			    lock_index(g->lock) == l)
				deadline = g->deadline;
		}
		if (deadline > f->now || ev->kind != LT_EV_TICK)
			fail("revoked %s unwarned or before its deadline",
			    e->lock);
		if (!live_waiter(b, l))
			fail("revoked %s idle while no live client waits",
			    e->lock);
		break;
	case LT_REASON_DISCONNECT:
		if (live(b, c))
			fail("revoked %s for a disconnect of a live client",
			    e->lock);
		if (!b->c[c].connected && b->c[c].grace > f->now)
			fail("revoked %s within grace", e->lock);
		if (b->c[c].unconfirmed && f->rollcall[c] > f->now)
			fail("revoked %s within the roll call", e->lock);
		break;
	case LT_REASON_ADMIN:
		if (ev->kind != LT_EV_BREAK ||
		    lock_index(ev->u.admin.lock) != l ||
		    strcmp(e->detail, ev->u.admin.reason) != 0)
			fail("revoked %s as admin", e->lock);
		break;
	case LT_REASON_TAKEOVER:
		if (ev->kind != LT_EV_REQUEST || f->err != LT_OK ||
		    !f->want.takeover || lock_index(ev->u.req.lock) != l ||
		    client_index(ev->u.req.client) == c)
			fail("revoked %s for a takeover", e->lock);
		break;
	default:
		fail("revoked with reason %d", (int)e->reason);
	}
}

/*
 * What holds for the effects of any event: known names, messages on
 * errors, the event's tag on replies, new tokens strictly increasing,
 * repeated ones only for a holder's repeated acquire, revocations only of
 * what was held and drops only of waiters, for a reason that applied.
 */
static void
check_effects(struct fz *f, const struct lt_event *ev, bool malformed)
{
	const struct snap *b = &f->before;

	for (size_t i = 0; i < f->fx.n; i++) {
		const struct lt_fx *e = &f->fx.v[i];
		int c = client_index(e->client), l = lock_index(e->lock);

		if (strnlen(e->client, sizeof(e->client)) ==
			sizeof(e->client) ||
		    strnlen(e->lock, sizeof(e->lock)) == sizeof(e->lock) ||
		    strnlen(e->detail, sizeof(e->detail)) == sizeof(e->detail))
			fail("effect %zu: unterminated string", i);
		if (!malformed &&
		    ((c < 0 && e->client[0] != '\0') ||
			(l < 0 && e->lock[0] != '\0')))
			fail("effect %zu names '%s' '%s'", i, e->client,
			    e->lock);
		if (e->kind == LT_FX_EVENT && e->client[0] == '\0' &&
		    !malformed)
			fail("event %zu to nobody", i);
		if (e->kind == LT_FX_REPLY && e->tag != f->tag)
			fail("reply %zu tagged %" PRIx64 ", the event %" PRIx64,
			    i, e->tag, f->tag);
		if ((is_event(e, LT_E_ERROR) ||
			(e->kind == LT_FX_REPLY &&
			    e->what.result == LT_R_ERROR)) &&
		    (e->message == NULL || e->message[0] == '\0'))
			fail("error %zu without a message", i);
		if (is_event(e, LT_E_GRANTED)) {
			if (e->token == 0)
				fail("granted with token 0");
			if (e->token > f->max_token) {
				f->max_token = e->token;
			} else if (c < 0 || l < 0 ||
			    !served_request(f, ev, LT_OP_ACQUIRE, c, l) ||
			    !holds(b, c, l) || b->l[l].token != e->token) {
				fail("granted %s token %" PRIu64
				     " after %" PRIu64 " without a repeat",
				    e->lock, e->token, f->max_token);
			}
			if (e->deadline != f->now + f->cfg.idle_timeout)
				fail("granted with deadline %" PRId64,
				    e->deadline);
		}
		if (is_event(e, LT_E_REVOKED))
			check_revoked(f, ev, i);
		if (is_event(e, LT_E_DROPPED))
			check_dropped_event(f, ev, e);
		if (is_event(e, LT_E_IDLE_WARNING))
			check_warning(f, i);
		if (is_event(e, LT_E_QUEUED) &&
		    (e->position < 1 || e->position > f->cfg.waiters_per_lock))
			fail("queued at position %u", (unsigned)e->position);
	}
	if (locktab_last_token(f->t) != f->max_token)
		fail("last token %" PRIu64 ", granted up to %" PRIu64,
		    locktab_last_token(f->t), f->max_token);
}

/*
 * A lock that changed hands went to a live client, and to the first live
 * one in its queue: those still waiting ahead of it had not answered.
 */
static void
check_first_alive(const struct fz *f, int l, int nh)
{
	const struct snap *b = &f->before, *a = &f->after;
	long was = position(&b->l[l], nh);

	if (!live(a, nh))
		fail("%s granted to %s, who is gone", lock_ids[l],
		    client_ids[nh]);
	for (long k = 0; k < was; k++) {
		int w = b->l[l].w[k].c;

		if (position(&a->l[l], w) >= 0 && live(a, w))
			fail("%s granted to %s past live waiter %s",
			    lock_ids[l], client_ids[nh], client_ids[w]);
	}
}

/*
 * Every change is announced: a new holder or token with granted, a lost
 * lock with revoked (unless its holder released it), a new queue place of
 * a live waiter with queued, a place lost without asking with dropped.
 */
static void
check_announced(struct fz *f, const struct lt_event *ev)
{
	const struct snap *b = &f->before, *a = &f->after;

	for (int l = 0; l < NL; l++) {
		int h = b->l[l].present ? b->l[l].holder : -1;
		int nh = a->l[l].present ? a->l[l].holder : -1;

		if (nh >= 0 && (nh != h || a->l[l].token != b->l[l].token)) {
			const struct lt_fx *e =
			    find_fx(&f->fx, LT_FX_EVENT, LT_E_GRANTED, nh, l);

			if (e == NULL || e->token != a->l[l].token)
				fail("%s went to %s unannounced", lock_ids[l],
				    client_ids[nh]);
			/* A takeover skips the queue. */
			if (!took_over(f, ev, nh, l))
				check_first_alive(f, l, nh);
		}
		if (h >= 0 && (nh != h || a->l[l].token != b->l[l].token)) {
			const struct lt_fx *e =
			    find_fx(&f->fx, LT_FX_EVENT, LT_E_REVOKED, h, l);

			if (!served_request(f, ev, LT_OP_RELEASE, h, l) &&
			    (e == NULL || e->token != b->l[l].token))
				fail("%s lost %s unannounced", client_ids[h],
				    lock_ids[l]);
		}
		for (size_t k = 0; a->l[l].present && k < a->l[l].nw; k++) {
			int c = a->l[l].w[k].c;
			const struct lt_fx *e =
			    find_fx(&f->fx, LT_FX_EVENT, LT_E_QUEUED, c, l);

			if (e != NULL && e->position != k + 1)
				fail("%s told place %u in %s, is at %zu",
				    client_ids[c], (unsigned)e->position,
				    lock_ids[l], k + 1);
			/*
			 * Only live waiters are told: a gone one is not
			 * listening, one that owes a roll call asks again.
			 */
			if (e == NULL && position(&b->l[l], c) != (long)k &&
			    live(b, c) && live(a, c))
				fail("%s moved to place %zu in %s unannounced",
				    client_ids[c], k + 1, lock_ids[l]);
		}
		for (size_t k = 0; b->l[l].present && k < b->l[l].nw; k++) {
			int c = b->l[l].w[k].c;
			const struct lt_fx *e =
			    find_fx(&f->fx, LT_FX_EVENT, LT_E_DROPPED, c, l);

			if (holds_or_waits(a, c, l))
				continue;
			if (served_request(f, ev, LT_OP_RELEASE, c, l)) {
				if (e != NULL)
					fail("%s left %s and was dropped",
					    client_ids[c], lock_ids[l]);
			} else if (e == NULL) {
				fail("%s lost its place in %s unannounced",
				    client_ids[c], lock_ids[l]);
			}
		}
	}
}

/*
 * Idle timers between events.  A request, will, break or purge moves no
 * idle deadline and sets no warning, except that a holder refreshes its
 * own, and that a sleeping timer whose warned deadline passed is warned
 * afresh when a live waiter comes.  A tick warns (check_warning); a resume
 * floors deadlines (check_resume).
 */
/*
 * A live client now waits for l that did not before: a newcomer, or a
 * waiter back to life (even if its request then leaves the queue).
 */
static bool
new_live_waiter(const struct fz *f, int l)
{
	const struct snap *b = &f->before, *a = &f->after;

	for (size_t k = 0; a->l[l].present && k < a->l[l].nw; k++) {
		int c = a->l[l].w[k].c;

		if (live(a, c) && !(position(&b->l[l], c) >= 0 && live(b, c)))
			return true;
	}
	for (size_t k = 0; b->l[l].present && k < b->l[l].nw; k++) {
		int c = b->l[l].w[k].c;

		if (!live(b, c) && live(a, c))
			return true;
	}
	return false;
}

static void
check_idle(struct fz *f, const struct lt_event *ev)
{
	const struct snap *b = &f->before, *a = &f->after;

	for (int l = 0; l < NL; l++) {
		const struct slock *bl = &b->l[l], *al = &a->l[l];
		bool refreshed, rearm;

		if (!held(b, l) || !held(a, l) || bl->holder != al->holder ||
		    bl->token != al->token)
			continue;
		if (bl->warned && al->warned &&
		    al->idle_deadline < bl->idle_deadline)
			fail("%s: a warned deadline moved sooner", lock_ids[l]);
		switch (ev->kind) {
		case LT_EV_TICK:
			if (al->warned != bl->warned &&
			    (bl->warned ||
				find_fx(&f->fx, LT_FX_EVENT, LT_E_IDLE_WARNING,
				    al->holder, l) == NULL))
				fail("%s: warned flag changed in a tick",
				    lock_ids[l]);
			if (al->idle_deadline != bl->idle_deadline &&
			    (!contended(f) || !al->warned || bl->warned))
				fail("%s: deadline moved in a tick",
				    lock_ids[l]);
			continue;
		case LT_EV_RESUME:
			if (al->warned != bl->warned)
				fail("%s: warned flag changed by a resume",
				    lock_ids[l]);
			continue;
		default:
			break;
		}
		refreshed =
		    served_request(f, ev, LT_OP_ACQUIRE, al->holder, l) ||
		    served_request(f, ev, LT_OP_ACTIVITY, al->holder, l);
		if (refreshed)
			continue;
		rearm = contended(f) && f->timer[l] != TM_ARMED && bl->warned &&
		    bl->idle_deadline <= f->now && new_live_waiter(f, l);
		if (al->idle_deadline != bl->idle_deadline)
			fail("%s: idle deadline moved", lock_ids[l]);
		if (al->warned != bl->warned && !(rearm && !al->warned))
			fail("%s: warned flag changed", lock_ids[l]);
		if (rearm && f->timer[l] == TM_DORMANT && al->warned)
			fail("%s: a live waiter came, the holder was not "
			     "warned afresh",
			    lock_ids[l]);
	}
}

/*
 * Which idle timers run after the event: any change of holder, token,
 * deadline or warning, the holder's activity and a new live waiter set one
 * running; under
 * contended a tick puts to sleep a due timer of a lock nobody live waits
 * for, if it got that far (it did, when nothing due is left).
 */
static void
update_timers(struct fz *f, const struct lt_event *ev)
{
	const struct snap *b = &f->before, *a = &f->after;

	for (int l = 0; l < NL; l++) {
		const struct slock *bl = &b->l[l], *al = &a->l[l];
		enum timer t = f->timer[l];

		if (!held(a, l)) {
			f->timer[l] = TM_ARMED;
			continue;
		}
		if (!held(b, l) || bl->holder != al->holder ||
		    bl->token != al->token ||
		    bl->idle_deadline != al->idle_deadline ||
		    bl->warned != al->warned || new_live_waiter(f, l) ||
		    served_request(f, ev, LT_OP_ACQUIRE, al->holder, l) ||
		    served_request(f, ev, LT_OP_ACTIVITY, al->holder, l))
			t = TM_ARMED;
		if (ev->kind == LT_EV_TICK && t != TM_DORMANT && contended(f) &&
		    due(f, al) <= f->now && !live_waiter(a, l))
			t = a->next > f->now ? TM_DORMANT : TM_UNKNOWN;
		f->timer[l] = t;
	}
}

/* ---- requests ---- */

enum {
	M_NONE = -1,
	M_SHORT_SESSION,
	M_CONN_LOW,
	M_CONN_HIGH,
	M_OP,
	M_NO_CLIENT,
	M_NO_LOCK,
	M_LONG_LOCK,
	M_LONG_USER,
	M_LONG_SESSION,
	M_LONG_CLIENT,
	M_LONG_UID,
	M_COUNT
};

/*
 * Client ids other than c verified as uid u: those holding or waiting (lo),
 * and all the table still has (hi: a flush has not yet forgotten those
 * left with nothing, and a cap may count them, as the caps on the table
 * do).
 */
static void
clients_of(const struct snap *b, int u, int c, size_t *lo, size_t *hi)
{
	*lo = *hi = 0;
	for (int i = 0; i < NC; i++) {
		if (i == c || !b->c[i].present || b->c[i].uid != u)
			continue;
		++*hi;
		*lo += b->c[i].nlocks > 0;
	}
}

/* What the rules of topics.md make of rq on the state before. */
static struct want
expected(const struct fz *f, const struct lt_request *rq, int c, int l,
    int malformed)
{
	const struct snap *b = &f->before;
	bool query = rq->op == LT_OP_QUERY;
	bool bound = c >= 0 && b->c[c].present && b->c[c].nlocks > 0;
	size_t cap = f->cfg.clients_per_user, lo = 0, hi = 0;
	size_t sl = strnlen(rq->session, sizeof(rq->session));
	struct want w = {.err = LT_OK};
	bool binds;

	/* A query needs no session; anything else one of the right size. */
	if ((malformed != M_NONE && malformed != M_OP &&
		malformed != M_SHORT_SESSION && malformed != M_LONG_SESSION) ||
	    (!query && (sl < MQL_SESSION_MIN || sl > MQL_SESSION_MAX))) {
		w.err = LT_ERR_BAD_REQUEST;
		return w;
	}
	if (query) {
		w.query = true;
		return w;
	}
	w.uid = request_uid(rq);
	if (bound && strcmp(sessions[c][b->c[c].session], rq->session) != 0)
		w.err = LT_ERR_SESSION_MISMATCH;
	else if (malformed == M_OP)
		w.err = LT_ERR_BAD_REQUEST;
	else if (bound && b->c[c].uid != 0 && w.uid != 0 &&
	    b->c[c].uid != w.uid)
		w.err = LT_ERR_TICKET_MISMATCH;
	/* From a connection already gone: an older one, or the will's. */
	else if (b->c[c].present && rq->conn >= 0 &&
	    (rq->conn < b->c[c].max_conn ||
		(rq->conn == b->c[c].max_conn && !b->c[c].connected)))
		w.err = LT_ERR_STALE;
	if (w.err != LT_OK || rq->op != LT_OP_ACQUIRE)
		return w;

	/*
	 * A verified acquire binds a client not yet bound to a user: within
	 * the cap on the user's clients.
	 */
	binds = w.uid != 0 && !(bound && b->c[c].uid != 0);
	if (binds && cap > 0)
		clients_of(b, w.uid, c, &lo, &hi);
	w.takeover = rq->takeover && w.uid != 0 && held(b, l) &&
	    b->l[l].holder != c && b->l[l].holder_uid == w.uid;
	if (holds_or_waits(b, c, l) ||
	    (held(b, l) && !rq->wait && !w.takeover)) {
		/*
		 * No new place (again, busy, a waiter's takeover): a bound
		 * client that becomes verified must still fit the cap,
		 * refused or left unverified if it does not.
		 */
		if (bound && binds && cap > 0) {
			w.bind_over = lo >= cap;
			w.may_quota = hi >= cap;
		}
		return w;
	}
	/* A new place: holder (grant, takeover) or waiter. */
	if (bound && b->c[c].nlocks >= f->cfg.locks_per_client) {
		w.err = LT_ERR_LIMIT;
		return w;
	}
	if (binds && cap > 0) {
		if (lo >= cap) {
			w.err = LT_ERR_LIMIT;
			return w;
		}
		w.may_quota = hi >= cap;
	}
	/* Caps on the table, counting what a flush has not yet freed. */
	w.full = true;
	if (!w.takeover && held(b, l) && b->l[l].nw >= f->cfg.waiters_per_lock)
		w.err = LT_ERR_LIMIT;
	else if (!b->c[c].present && f->cfg.max_clients > 0 &&
	    b->nclients >= f->cfg.max_clients)
		w.err = LT_ERR_LIMIT;
	else if (!b->l[l].present && f->cfg.max_locks > 0 &&
	    b->nlocks >= f->cfg.max_locks)
		w.err = LT_ERR_LIMIT;
	else
		w.full = false;
	return w;
}

static void
check_refusal(struct fz *f, const struct lt_request *rq, enum lt_err err)
{
	const struct want *w = &f->want;
	const struct lt_fx *v = f->fx.v;
	size_t n = f->fx.n;
	bool full = n == 3 && is_note(&v[0], LT_N_FULL);

	if (err == LT_ERR_STALE) {
		if (n != 2 || !is_note(&v[0], LT_N_STALE) ||
		    v[1].kind != LT_FX_REPLY ||
		    v[1].what.result != LT_R_ERROR || v[1].code != err)
			fail("stale: not one note and one reply");
		same_snap("stale request", &f->before, &f->after, true);
		return;
	}
	/* A full queue or table also asks for a roll call. */
	if (full) {
		v++;
		n--;
	}
	if (err == LT_ERR_LIMIT
		? (full ? !(w->err == LT_ERR_LIMIT && w->full)
			: !((w->err == LT_ERR_LIMIT && !w->full) ||
			      w->may_quota || w->bind_over))
		: (full || err != w->err))
		fail("request refused %d (full %d), expected %d (full %d, "
		     "cap %d)",
		    (int)err, full, (int)w->err, w->full,
		    w->may_quota || w->bind_over);
	if (n != 2 || !is_event(&v[0], LT_E_ERROR) || v[0].code != err ||
	    v[1].kind != LT_FX_REPLY || v[1].what.result != LT_R_ERROR ||
	    v[1].code != err)
		fail("refusal: not one error event and one reply");
	if (strncmp(v[0].client, rq->client, MQL_CLIENT_ID_MAX) != 0 ||
	    strncmp(v[0].lock, rq->lock, MQL_LOCK_ID_MAX) != 0 ||
	    strncmp(v[1].client, rq->client, MQL_CLIENT_ID_MAX) != 0 ||
	    strncmp(v[1].lock, rq->lock, MQL_LOCK_ID_MAX) != 0)
		fail("refusal sent to the wrong client or lock");
	same_snap("refused request", &f->before, &f->after, true);
}

static void
check_request(struct fz *f, const struct lt_request *rq, enum lt_err err,
    int malformed)
{
	const struct snap *b = &f->before, *a = &f->after;
	const struct want *w = &f->want;
	int c = malformed == M_NONE || malformed == M_OP
	    ? client_index(rq->client)
	    : -1;
	int l = lock_index(rq->lock);
	const struct lt_fx *rep = NULL, *ans = NULL;
	bool bound = c >= 0 && b->c[c].present && b->c[c].nlocks > 0;
	size_t nans = 0;
	int uid;

	if (err != LT_OK && (err == w->err || err == LT_ERR_LIMIT)) {
		check_refusal(f, rq, err);
		return;
	}
	if (err != w->err)
		fail("request returned %d, expected %d", (int)err, (int)w->err);
	if (w->query) {
		/* Read only: no change, no sign of life, one reply. */
		rep = &f->fx.v[0];
		if (f->fx.n != 1 || rep->kind != LT_FX_REPLY ||
		    rep->what.result != LT_R_STATE ||
		    strcmp(rep->client, rq->client) != 0 ||
		    strcmp(rep->lock, rq->lock) != 0)
			fail("query: not one state reply");
		same_snap("query", b, a, true);
		return;
	}

	for (size_t i = 0; i < f->fx.n; i++) {
		const struct lt_fx *e = &f->fx.v[i];

		if (e->kind == LT_FX_REPLY)
			rep = e;
		if (e->kind == LT_FX_EVENT && client_index(e->client) == c &&
		    lock_index(e->lock) == l &&
		    (is_event(e, LT_E_GRANTED) || is_event(e, LT_E_QUEUED) ||
			is_event(e, LT_E_BUSY))) {
			nans++;
			ans = e;
		}
	}
	if (strcmp(rep->client, rq->client) != 0 ||
	    strcmp(rep->lock, rq->lock) != 0)
		fail("reply for the wrong client or lock");
	if (a->c[c].present) {
		if (!live(a, c))
			fail("%s still gone after a served request",
			    client_ids[c]);
		if (a->c[c].max_conn < rq->conn)
			fail("%s: max_conn below the request's", client_ids[c]);
		if (!bound &&
		    strcmp(sessions[c][a->c[c].session], rq->session) != 0)
			fail("%s not bound to its new session", client_ids[c]);
	}
	/*
	 * The user a client is bound to: the one it had, else the
	 * request's (if the cap lets it), for as long as it holds or waits.
	 */
	if (a->c[c].present && a->c[c].nlocks > 0) {
		if (bound && b->c[c].uid != 0)
			uid = b->c[c].uid;
		else if (bound && w->bind_over)
			uid = 0;
		else
			uid = w->uid;
		if (a->c[c].uid != uid)
			fail("%s bound to uid %d, not %d", client_ids[c],
			    a->c[c].uid, uid);
	}

	switch (rq->op) {
	case LT_OP_ACQUIRE:
		if (nans != 1)
			fail("acquire answered by %zu events", nans);
		if (is_event(ans, LT_E_GRANTED)) {
			if (rep->what.result != LT_R_GRANTED ||
			    rep->token != ans->token || !holds(a, c, l) ||
			    a->l[l].token != ans->token ||
			    a->l[l].idle_deadline !=
				f->now + f->cfg.idle_timeout)
				fail("granted, but not so");
		} else if (is_event(ans, LT_E_QUEUED)) {
			if (rep->what.result != LT_R_QUEUED ||
			    rep->position != ans->position ||
			    position(&a->l[l], c) + 1 != (long)ans->position)
				fail("queued, but not so");
		} else {
			if (rep->what.result != LT_R_BUSY ||
			    holds_or_waits(b, c, l) || rq->wait ||
			    !held(b, l) || holds_or_waits(a, c, l))
				fail("busy, but not so");
		}
		if (holds(b, c, l) && !is_event(ans, LT_E_GRANTED))
			fail("the holder's acquire not granted");
		if (w->takeover) {
			/* The other tab loses it; this one has it at once. */
			const struct lt_fx *e = find_fx(&f->fx, LT_FX_EVENT,
			    LT_E_REVOKED, b->l[l].holder, l);

			if (!is_event(ans, LT_E_GRANTED) ||
			    ans->token <= b->last_token || e == NULL ||
			    e->reason != LT_REASON_TAKEOVER)
				fail("takeover: not revoked and granted");
		} else if (held(b, l) && !holds(b, c, l) &&
		    is_event(ans, LT_E_GRANTED)) {
			fail("granted a held lock without a takeover");
		}
		break;
	case LT_OP_RELEASE:
		if (rep->what.result !=
		    (holds_or_waits(b, c, l) ? LT_R_RELEASED : LT_R_IGNORED))
			fail("release answered %d", (int)rep->what.result);
		if (holds_or_waits(a, c, l))
			fail("still holds or waits after release");
		break;
	case LT_OP_ACTIVITY:
		if (rep->what.result !=
		    (holds(a, c, l) ? LT_R_REFRESHED : LT_R_IGNORED))
			fail("activity answered %d", (int)rep->what.result);
		if (holds(a, c, l) &&
		    (!holds_or_waits(b, c, l) || a->l[l].warned ||
			a->l[l].idle_deadline != f->now + f->cfg.idle_timeout))
			fail("activity refreshed wrongly");
		break;
	default:
		fail("served a request with op %d", (int)rq->op);
	}
}

/* ---- wills, admin commands, ticks, resumes ---- */

static void
check_will(struct fz *f, const struct lt_will *w)
{
	const struct snap *b = &f->before, *a = &f->after;
	int c = client_index(w->client);
	const struct sclient *bc = &b->c[c], *ac = &a->c[c];
	bool heard = bc->present && bc->nlocks > 0 &&
	    strcmp(sessions[c][bc->session], w->session) == 0 &&
	    (w->conn < 0 || w->conn >= bc->max_conn);

	if (!heard) {
		if (f->fx.n != 1 || !is_note(&f->fx.v[0], LT_N_WILL_IGNORED))
			fail("ignored will: effects");
		same_snap("ignored will", b, a, true);
		return;
	}
	if (ac->connected || ac->unconfirmed)
		fail("%s connected after its will", client_ids[c]);
	if (ac->max_conn != (w->conn > bc->max_conn ? w->conn : bc->max_conn))
		fail("%s: max_conn after a will", client_ids[c]);
	if (ac->uid != bc->uid)
		fail("%s: uid changed by a will", client_ids[c]);
	if (bc->connected) {
		if (ac->grace != f->now + f->cfg.grace)
			fail("%s: grace %" PRId64, client_ids[c], ac->grace);
		if (f->fx.n != 1 || !is_note(&f->fx.v[0], LT_N_DISCONNECTED))
			fail("will: effects");
	} else if (ac->grace != bc->grace || f->fx.n != 0) {
		fail("a second will changed the grace or said something");
	}
}

static void
check_break(struct fz *f, const struct lt_admin *brk)
{
	const struct snap *b = &f->before;
	int l = lock_index(brk->lock);
	const struct lt_fx *rep =
	    find_fx(&f->fx, LT_FX_REPLY, LT_R_REVOKED, -1, l);

	if (!held(b, l)) {
		if (f->fx.n != 1 || f->fx.v[0].kind != LT_FX_REPLY ||
		    f->fx.v[0].what.result != LT_R_IGNORED)
			fail("break of a free lock: effects");
		same_snap("break of a free lock", b, &f->after, true);
		return;
	}
	if (rep == NULL || rep->token != b->l[l].token ||
	    find_fx(&f->fx, LT_FX_EVENT, LT_E_REVOKED, b->l[l].holder, l) ==
		NULL)
		fail("break: no revoked event or reply");
}

/* Every waiter leaves, told why; the holder keeps the lock. */
static void
check_purge(struct fz *f, const struct lt_admin *p)
{
	const struct snap *b = &f->before, *a = &f->after;
	int l = lock_index(p->lock);
	size_t n = b->l[l].present ? b->l[l].nw : 0;
	size_t dropped = 0, notes = 0, freed = 0;
	const struct lt_fx *rep = NULL;

	for (size_t i = 0; i < f->fx.n; i++) {
		const struct lt_fx *e = &f->fx.v[i];

		if (is_event(e, LT_E_DROPPED))
			dropped++;
		else if (is_note(e, LT_N_DROPPED))
			notes++;
		else if (is_note(e, LT_N_FREED) && lock_index(e->lock) == l)
			freed++;
		else if (e->kind == LT_FX_REPLY)
			rep = e;
		else
			fail("purge: effect %zu", i);
	}
	if (rep == NULL || rep->what.result != LT_R_PURGED || rep->count != n ||
	    rep->client[0] != '\0' || strcmp(rep->lock, p->lock) != 0)
		fail("purge: reply %d count %u, %zu waited",
		    rep != NULL ? (int)rep->what.result : -1,
		    rep != NULL ? (unsigned)rep->count : 0, n);
	if (dropped != n || notes != n || freed != (n > 0 && !held(b, l)))
		fail("purge: %zu dropped, %zu notes, %zu freed of %zu", dropped,
		    notes, freed, n);
	if (a->l[l].present != (b->l[l].present) ||
	    (a->l[l].present && a->l[l].nw != 0))
		fail("purge: waiters left");
	for (int i = 0; i < NL; i++) {
		struct slock x = b->l[i];

		if (i == l)
			x.nw = 0;
		same_lock("purge", i, &x, &a->l[i], true);
	}
	for (int i = 0; i < NC; i++) {
		struct sclient x = b->c[i];

		/* One that waits for nothing now is bound to no user. */
		if (a->c[i].present && a->c[i].nlocks == 0)
			x.uid = 0;
		same_client("purge", i, &x, &a->c[i]);
	}
}

static void
check_tick(struct fz *f)
{
	if (f->cfg.tick_batch == 0 && f->after.next <= f->now)
		fail("deadline %" PRId64 " still due after a tick at %" PRId64,
		    f->after.next, f->now);
}

static void
check_resume(struct fz *f, const struct lt_resume *r, enum lt_err err)
{
	const struct snap *b = &f->before, *a = &f->after;
	lt_ms floor = f->now + f->cfg.grace;

	if (r->rollcall && r->window < 0) {
		if (err != LT_ERR_BAD_REQUEST)
			fail("resume with a negative window: %d", (int)err);
		same_snap("refused resume", b, a, true);
		return;
	}
	if (err != LT_OK || f->fx.n != 0)
		fail("resume: %d, %zu effects", (int)err, f->fx.n);
	for (int l = 0; l < NL; l++) {
		const struct slock *bl = &b->l[l], *al = &a->l[l];

		if (bl->present && bl->holder >= 0 &&
		    al->idle_deadline !=
			(bl->idle_deadline < floor ? floor : bl->idle_deadline))
			fail("resume: idle deadline of %s", lock_ids[l]);
	}
	for (int i = 0; i < NC; i++) {
		const struct sclient *bc = &b->c[i], *ac = &a->c[i];
		lt_ms d;

		if (!bc->present || bc->nlocks == 0)
			continue;
		if (!bc->connected) {
			if (ac->grace !=
			    (bc->grace < floor ? floor : bc->grace))
				fail("resume: grace of %s", client_ids[i]);
			continue;
		}
		if (ac->unconfirmed != (bc->unconfirmed || r->rollcall))
			fail("resume: roll call of %s", client_ids[i]);
		/* The roll-call deadline no view shows. */
		d = bc->unconfirmed ? f->rollcall[i] : LT_NEVER;
		if (ac->unconfirmed &&
		    (d == LT_NEVER || d < f->now + r->window))
			d = f->now + r->window;
		if (d == LT_NEVER)
			continue;
		f->rollcall[i] = d < floor ? floor : d;
		f->rollcall_set[i] = true;
	}
}

/* ---- one step ---- */

static void
describe(const struct fz *f, const struct lt_event *ev, int malformed)
{
	static const char *const ops[] = {"acquire", "release", "activity",
	    "query", "op?"};
	const struct lt_request *rq = &ev->u.req;

	switch (ev->kind) {
	case LT_EV_REQUEST:
		snprintf(cur_what, sizeof(cur_what),
		    "t+%" PRId64 " %s %.8s %.8s sess %.6s conn %" PRId64
		    " wait %d user %.6s uid %.6s%s%s",
		    f->now - T0, ops[rq->op < 4 ? rq->op : 4], rq->client,
		    rq->lock, rq->session, rq->conn, rq->wait, rq->user,
		    rq->uid, rq->takeover ? " takeover" : "",
		    malformed != M_NONE ? " (malformed)" : "");
		break;
	case LT_EV_WILL:
		snprintf(cur_what, sizeof(cur_what),
		    "t+%" PRId64 " will %.8s sess %.6s conn %" PRId64,
		    f->now - T0, ev->u.will.client, ev->u.will.session,
		    ev->u.will.conn);
		break;
	case LT_EV_BREAK:
	case LT_EV_PURGE:
		snprintf(cur_what, sizeof(cur_what),
		    "t+%" PRId64 " %s %.8s reason %.10s", f->now - T0,
		    ev->kind == LT_EV_BREAK ? "break" : "purge",
		    ev->u.admin.lock, ev->u.admin.reason);
		break;
	case LT_EV_TICK:
		snprintf(cur_what, sizeof(cur_what), "t+%" PRId64 " tick",
		    f->now - T0);
		break;
	case LT_EV_RESUME:
		snprintf(cur_what, sizeof(cur_what),
		    "t+%" PRId64 " resume rollcall %d window %" PRId64,
		    f->now - T0, ev->u.resume.rollcall, ev->u.resume.window);
		break;
	default:
		snprintf(cur_what, sizeof(cur_what), "event %d", (int)ev->kind);
		break;
	}
	if (f->trace)
		fprintf(stderr, "step %zu: %s\n", cur_step, cur_what);
}

#define NAME(table, i) \
	((size_t)(i) < sizeof(table) / sizeof(table[0]) ? table[i] : "?")

/* "event granted", "reply ignored", "note freed"... */
static void
fx_name(const struct lt_fx *e, char *buf, size_t size)
{
	static const char *const events[] = {"granted", "queued", "busy",
	    "revoked", "idle-warning", "dropped", "error"};
	static const char *const results[] = {"granted", "queued", "busy",
	    "released", "refreshed", "ignored", "revoked", "purged", "state",
	    "error"};
	static const char *const notes[] = {"released", "left-queue",
	    "disconnected", "reconnected", "dropped", "will-ignored", "freed",
	    "silent", "stale", "full"};

	switch (e->kind) {
	case LT_FX_EVENT:
		snprintf(buf, size, "event %s", NAME(events, e->what.event));
		break;
	case LT_FX_REPLY:
		snprintf(buf, size, "reply %s", NAME(results, e->what.result));
		break;
	case LT_FX_NOTE:
		snprintf(buf, size, "note %s", NAME(notes, e->what.note));
		break;
	default:
		snprintf(buf, size, "kind %d", (int)e->kind);
		break;
	}
}

static void
trace_fx(const struct lt_fxlist *fx)
{
	for (size_t i = 0; i < fx->n; i++) {
		const struct lt_fx *e = &fx->v[i];
		char name[32];

		fx_name(e, name, sizeof(name));
		fprintf(stderr,
		    "    %s %.12s %.12s token %" PRIu64 " pos %u count %u "
		    "deadline t+%" PRId64 " reason %d code %d\n",
		    name, e->client, e->lock, e->token, (unsigned)e->position,
		    (unsigned)e->count, e->deadline != 0 ? e->deadline - T0 : 0,
		    (int)e->reason, (int)e->code);
	}
}

static void
apply(struct fz *f, const struct lt_event *event, int malformed)
{
	struct lt_event ev = *event;
	enum lt_err err;
	const char *why;
	size_t replies;

	cur_step = ++f->steps;
	/* A distinct tag for every event: replies must carry it back. */
	f->tag = ev.tag = TAG0 + f->steps;
	describe(f, &ev, malformed);
	take_snap(f->t, &f->before);
	memset(&f->want, 0, sizeof(f->want));
	if (ev.kind == LT_EV_REQUEST)
		f->want = expected(f, &ev.u.req,
		    malformed == M_NONE || malformed == M_OP
			? client_index(ev.u.req.client)
			: -1,
		    lock_index(ev.u.req.lock), malformed);
	lt_fxlist_clear(&f->fx);
	f->err = err = locktab_apply(f->t, f->now, &ev, &f->fx);
	if (f->trace)
		trace_fx(&f->fx);
	if (f->fx.failed)
		fail("out of memory");
	if ((why = locktab_check(f->t)) != NULL)
		fail("locktab_check: %s", why);
	take_snap(f->t, &f->after);
	check_snap(f, &f->after);
	if (ev.kind == LT_EV_REQUEST)
		check_request(f, &ev.u.req, err, malformed);
	check_effects(f, &ev, malformed != M_NONE);
	check_announced(f, &ev);
	check_idle(f, &ev);

	replies = count_replies(&f->fx);
	if (replies !=
	    (ev.kind == LT_EV_REQUEST || ev.kind == LT_EV_BREAK ||
		ev.kind == LT_EV_PURGE))
		fail("%zu replies", replies);
	if (ev.kind != LT_EV_REQUEST && ev.kind != LT_EV_RESUME && err != LT_OK)
		fail("event returned %d", (int)err);
	switch (ev.kind) {
	case LT_EV_REQUEST:
		break;
	case LT_EV_WILL:
		check_will(f, &ev.u.will);
		break;
	case LT_EV_BREAK:
		check_break(f, &ev.u.admin);
		break;
	case LT_EV_PURGE:
		check_purge(f, &ev.u.admin);
		break;
	case LT_EV_TICK:
		check_tick(f);
		break;
	case LT_EV_RESUME:
		check_resume(f, &ev.u.resume, err);
		break;
	default:
		fail("unknown event kind");
	}
	update_timers(f, &ev);
	/* A roll call ends with an answer, a will, or the client's end. */
	for (int i = 0; i < NC; i++) {
		if (!f->after.c[i].present || !f->after.c[i].unconfirmed)
			f->rollcall_set[i] = false;
		else if (!f->rollcall_set[i])
			fail("%s unconfirmed without a roll call",
			    client_ids[i]);
	}
	if (f->noflush > 0)
		f->noflush--;
	else
		flush(f);
}

struct reader {
	const uint8_t *p;
	size_t n, i;
};

static unsigned
rd(struct reader *r)
{
	return r->i < r->n ? r->p[r->i++] : 0;
}

static int64_t
conn_for(struct fz *f, int c, unsigned mode)
{
	switch (mode & 3) {
	case 0:
		return -1;
	case 1:
		return f->conn[c];
	case 2:
		return f->conn[c] - 1; /* an older connection */
	default:
		return ++f->conn[c]; /* a new one */
	}
}

/*
 * A request: a = who and how verified: client a % 6, lock a / 6 % 5, and
 * v = a / 30: uid v % 3 (none, the client's own, another user's; an acquire
 * only, as only an acquire carries a ticket), v / 3 the kind (1: with
 * takeover, 2: a query instead of op).  m = how: bit 0 the other session (a
 * query: bit 0 clear sends none), bits 1-2 conn (absent, current, older,
 * new), bits 3-4 user, bit 5 try-lock; bits 6-7 both set: malformed, as the
 * next byte says.
 */
static void
request(struct fz *f, struct reader *r, enum lt_op op)
{
	unsigned a = rd(r), m = rd(r), v = a / (NC * NL);
	int c = (int)(a % NC), l = (int)(a / NC % NL);
	int malformed = (m >> 6) == 3 ? (int)(rd(r) % M_COUNT) : M_NONE;
	const int uid_of[3] = {0, home_uid[c], foreign_uid[c]};
	struct lt_event ev;
	struct lt_request *rq = &ev.u.req;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LT_EV_REQUEST;
	rq->op = v / 3 == 2 ? LT_OP_QUERY : op;
	rq->takeover = v / 3 == 1;
	memcpy(rq->lock, lock_ids[l], sizeof(rq->lock));
	memcpy(rq->client, client_ids[c], sizeof(rq->client));
	if (rq->op != LT_OP_QUERY || (m & 1))
		memcpy(rq->session, sessions[c][m & 1], sizeof(rq->session));
	memcpy(rq->user, users[(m >> 3) & 3], sizeof(rq->user));
	if (rq->op == LT_OP_ACQUIRE)
		memcpy(rq->uid, uids[uid_of[v % 3]], sizeof(rq->uid));
	rq->conn = conn_for(f, c, m >> 1);
	rq->wait = !((m >> 5) & 1);
	switch (malformed) {
	case M_SHORT_SESSION:
		rq->session[MQL_SESSION_MIN - 1] = '\0';
		break;
	case M_CONN_LOW:
		rq->conn = -2;
		break;
	case M_CONN_HIGH:
		rq->conn = MQL_CONN_MAX + 1;
		break;
	case M_OP:
		rq->op = (enum lt_op)7;
		break;
	case M_NO_CLIENT:
		rq->client[0] = '\0';
		break;
	case M_NO_LOCK:
		rq->lock[0] = '\0';
		break;
	case M_LONG_LOCK:
		memset(rq->lock, 'x', sizeof(rq->lock));
		break;
	case M_LONG_USER:
		memset(rq->user, 'x', sizeof(rq->user));
		break;
	case M_LONG_SESSION:
		memset(rq->session, 'x', sizeof(rq->session));
		break;
	case M_LONG_CLIENT:
		memset(rq->client, 'x', sizeof(rq->client));
		break;
	case M_LONG_UID:
		memset(rq->uid, 'x', sizeof(rq->uid));
		break;
	default:
		break;
	}
	apply(f, &ev, malformed);
}

/* a: client a % 6; m: bit 0 the other session, bits 1-2 conn. */
static void
will(struct fz *f, struct reader *r)
{
	unsigned a = rd(r), m = rd(r);
	int c = (int)(a % NC);
	struct lt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LT_EV_WILL;
	memcpy(ev.u.will.client, client_ids[c], sizeof(ev.u.will.client));
	memcpy(ev.u.will.session, sessions[c][m & 1],
	    sizeof(ev.u.will.session));
	ev.u.will.conn = conn_for(f, c, m >> 1);
	apply(f, &ev, M_NONE);
}

/* a: lock a % 5, reason a / 5 % 3; a / 15 odd: purge, else break. */
static void
admin(struct fz *f, struct reader *r)
{
	unsigned a = rd(r);
	struct lt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = (a / 15) & 1 ? LT_EV_PURGE : LT_EV_BREAK;
	memcpy(ev.u.admin.lock, lock_ids[a % NL], sizeof(ev.u.admin.lock));
	memcpy(ev.u.admin.reason, reasons[a / NL % 3],
	    sizeof(ev.u.admin.reason));
	apply(f, &ev, M_NONE);
}

static void
simple(struct fz *f, enum lt_event_kind kind)
{
	struct lt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	apply(f, &ev, M_NONE);
}

static void
resume(struct fz *f, bool rollcall, lt_ms window)
{
	struct lt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LT_EV_RESUME;
	ev.u.resume.rollcall = rollcall;
	ev.u.resume.window = window;
	apply(f, &ev, M_NONE);
}

/*
 * mqlockd restarts: a table from the journal, every owner message
 * published again, then a roll call.
 */
static void
restart(struct fz *f, lt_ms window)
{
	struct locktab *r = checkpoint(f);

	locktab_free(f->t);
	f->t = r;
	memset(f->rollcall_set, 0, sizeof(f->rollcall_set));
	/* Restored clients owe the coming roll call, not yet dated. */
	for (int i = 0; i < NC; i++)
		f->rollcall[i] = LT_NEVER;
	/* A restored table runs every idle timer. */
	for (int i = 0; i < NL; i++)
		f->timer[i] = TM_ARMED;
	take_snap(f->t, &f->tmp);
	memcpy(f->own, f->tmp.l, sizeof(f->own));
	f->noflush = 0;
	resume(f, true, window);
}

static const lt_ms dts[16] = {0, 0, 0, 1, 1, 2, 5, 10, 20, 50, 100, 200, 500,
    1000, 2000, 5000};

static void
step(struct fz *f, struct reader *r)
{
	unsigned op = rd(r), a;
	lt_ms next;

	f->now += dts[op >> 4];
	switch (op & 15) {
	case 0:
	case 1:
	case 2:
		request(f, r, LT_OP_ACQUIRE);
		break;
	case 3:
	case 4:
		request(f, r, LT_OP_RELEASE);
		break;
	case 5:
		request(f, r, LT_OP_ACTIVITY);
		break;
	case 6:
		will(f, r);
		break;
	case 7:
		admin(f, r);
		break;
	case 8:
	case 9:
		simple(f, LT_EV_TICK);
		break;
	case 10:
		/* Sleep to the next deadline (-1, 0 or +1 ms), tick if due. */
		a = rd(r);
		next = locktab_next_deadline(f->t);
		if (next != LT_NEVER && next + (lt_ms)(a % 3) - 1 > f->now)
			f->now = next + (lt_ms)(a % 3) - 1;
		if (locktab_next_deadline(f->t) <= f->now)
			simple(f, LT_EV_TICK);
		break;
	case 11:
		a = rd(r);
		resume(f, a & 1, a == 255 ? -1 : (lt_ms)(a >> 1) * 40);
		break;
	case 12:
		/* A batch: the next few steps are journaled together. */
		f->noflush = rd(r) % 8;
		break;
	case 13: {
		struct locktab *t = checkpoint(f);

		locktab_free(t);
		break;
	}
	case 14:
		restart(f, (lt_ms)rd(r) * 40);
		break;
	default:
		/* Time passes, mqlockd ticks when due. */
		f->now += (lt_ms)rd(r) * 10;
		if (locktab_next_deadline(f->t) <= f->now)
			simple(f, LT_EV_TICK);
		break;
	}
}

/*
 * The header: idle timeout 50..5150 ms, idle warning 0..5100 ms (often
 * longer than the timeout: warned at the grant), grace 0..2550 ms; then
 * 1..3 waiters per lock, 1..2 locks per client, a tick batch of 1024, 1,
 * 2 or 3, and caps of 4 clients, 3 locks, both or neither (h3 / 24); then
 * the idle policy (h4 bit 0: always, contended) and a cap of 1, 2 or 3
 * clients per user, or none (h4 / 2 % 4).
 */
static void
setup(struct fz *f, struct reader *r)
{
	unsigned h0 = rd(r), h1 = rd(r), h2 = rd(r), h3 = rd(r), h4 = rd(r);

	f->cfg = (struct lt_config){
	    .idle_timeout = 50 + (lt_ms)h0 * 20,
	    .idle_warning = (lt_ms)h1 * 20,
	    .grace = (lt_ms)h2 * 10,
	    .idle_policy = h4 & 1 ? LT_IDLE_CONTENDED : LT_IDLE_ALWAYS,
	    .waiters_per_lock = 1 + h3 % 3,
	    .locks_per_client = 1 + h3 / 3 % 2,
	    .tick_batch = h3 / 6 % 4,
	    .max_clients = (h3 / 24 % 4) & 1 ? 4 : 0,
	    .max_locks = (h3 / 24 % 4) & 2 ? 3 : 0,
	    .clients_per_user = h4 / 2 % 4,
	    .hasher = {siphash_str, fuzz_hash_key},
	};
	f->t = locktab_new(&f->cfg);
	if (f->t == NULL)
		fail("locktab_new refused a valid configuration");
	f->now = T0;
	for (int i = 0; i < NC; i++)
		f->conn[i] = 1;
	f->trace = getenv("MQLOCK_FUZZ_TRACE") != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One run at a time; reused, not reallocated, for speed. */
	static struct fz run;
	struct reader r = {data, size, 0};
	struct fz *f = &run;
	struct locktab *t;

	if (size < 5)
		return 0;
	world_init();
	memset(f, 0, sizeof(*f));
	cur_step = 0;
	snprintf(cur_what, sizeof(cur_what), "setup");
	setup(f, &r);
	while (r.i < r.n && f->steps < MAX_STEPS) {
		size_t before = f->steps;

		step(f, &r);
		if (f->steps / CHECKPOINT != before / CHECKPOINT) {
			t = checkpoint(f);
			locktab_free(t);
		}
	}
	snprintf(cur_what, sizeof(cur_what), "end");
	t = checkpoint(f);
	locktab_free(t);
	locktab_free(f->t);
	lt_fxlist_free(&f->fx);
	return 0;
}
