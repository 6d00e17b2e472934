/*
 * fuzz_locktab: random event sequences into the lock table.
 *
 * The input is a program over a small world: 6 clients (two sessions each,
 * increasing connection numbers), 5 locks, small limits and short timers.
 *
 *   header  4 bytes: idle timeout, idle warning, grace, then limits and
 *           tick batch (see setup())
 *   step    an op byte, then its arguments (see step()); the op's high
 *           nibble advances the clock first
 *
 * Steps are acquire, release and activity requests (sometimes malformed,
 * from another session, with old or new connection numbers, as try-locks),
 * wills, admin breaks, ticks, sleeps to the next deadline (-1, 0 or +1 ms),
 * resumes with and without a roll call, batches that leave the journal
 * behind for a few steps, checks of the journal, and restarts: the table is
 * rebuilt from the journal and resumed with a roll call, as mqlockd does.
 *
 * After every step: locktab_check(); every bound of the configuration; the
 * views agree with each other; tokens of grants strictly increase; exactly
 * one reply per request and per admin command; the outcome of each request,
 * will, break and resume is the one topics.md gives for the state before it
 * (a refused request, a stale will and a break of a free lock change
 * nothing); every change of holder, token or queue place was announced.
 * After every flush the journal describes the table and the next deadline
 * is the one the views and the roll calls imply.  Every 32 steps and at the
 * end, a table rebuilt from the journal equals the live one field by field.
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
#define CHECKPOINT 32
#define MAX_STEPS 2048
#define T0 ((lt_ms)1764140000000)

static void fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* ---- the world ---- */

static char client_ids[NC][MQL_CLIENT_ID_SZ];
static char lock_ids[NL][MQL_LOCK_ID_SZ];
static char sessions[NC][2][MQL_SESSION_SZ];
static char users[4][MQL_USER_SZ];
static char reasons[3][MQL_REASON_SZ];

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

/* ---- snapshots: the table as its views show it ---- */

struct swaiter {
	int c;
	int user; /* index in users[] */
	bool connected;
};

struct slock {
	bool present;
	int holder; /* -1: free */
	int holder_user;
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
		s->w[i].connected = r->waiters[i].connected;
	}
}

static void
rec_to_sclient(int c, const struct lt_client_rec *r, struct sclient *s)
{
	memset(s, 0, sizeof(*s));
	s->present = true;
	s->session = session_index(c, r->session);
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
			if (l->holder_connected != c->connected)
				fail("holder of %s: connected flags differ",
				    lock_ids[i]);
			s->c[l->holder].nlocks++;
		}
		for (size_t k = 0; k < l->nw; k++) {
			const struct sclient *c = &s->c[l->w[k].c];

			if (!c->present)
				fail("waiter of %s has no client view",
				    lock_ids[i]);
			if (l->w[k].connected != c->connected)
				fail("waiter of %s: connected flags differ",
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
holds_or_waits(const struct snap *s, int c, int l)
{
	return holds(s, c, l) || position(&s->l[l], c) >= 0;
}

/* ---- state of a run ---- */

struct fz {
	struct lt_config cfg;
	struct locktab *t;
	struct lt_fxlist fx;
	struct journal j;
	struct snap before, after, tmp;
	lt_ms now;
	int64_t conn[NC];   /* the current connection of each client */
	uint64_t max_token; /* highest token seen in a granted event */
	/* Roll-call deadlines, which no view shows, worked out here. */
	lt_ms rollcall[NC];
	bool rollcall_set[NC];
	unsigned noflush; /* steps left in the current batch */
	size_t steps;
	bool trace;
};

static size_t cur_step;
static char cur_what[160];

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

/* ---- invariants of one snapshot ---- */

static void
check_snap(const struct fz *f, const struct snap *s)
{
	bool seen_token;

	for (int i = 0; i < NL; i++) {
		const struct slock *l = &s->l[i];
		bool live_waiter = false;

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
			live_waiter |=
			    s->c[c].connected && !s->c[c].unconfirmed;
		}
		if (l->holder < 0 && live_waiter)
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
}

/* The earliest deadline the views (and, if asked, roll calls) imply. */
static lt_ms
implied_next(const struct fz *f, const struct snap *s, bool rollcalls)
{
	lt_ms next = LT_NEVER;

	for (int i = 0; i < NL; i++) {
		const struct slock *l = &s->l[i];
		lt_ms when;

		if (!l->present || l->holder < 0)
			continue;
		when = l->idle_deadline - (l->warned ? 0 : f->cfg.idle_warning);
		if (when < next)
			next = when;
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

/* with_conn: compare connected flags (journals have none). */
static void
same_lock(const char *what, int i, const struct slock *a, const struct slock *b,
    bool with_conn)
{
	if (a->present != b->present)
		fail("%s: %s present %d vs %d", what, lock_ids[i], a->present,
		    b->present);
	if (!a->present)
		return;
	if (a->holder != b->holder || a->holder_user != b->holder_user ||
	    a->token != b->token || a->since != b->since ||
	    a->idle_deadline != b->idle_deadline || a->warned != b->warned ||
	    (with_conn && a->holder_connected != b->holder_connected) ||
	    a->nw != b->nw)
		fail("%s: %s differs: holder %d/%d token %" PRIu64 "/%" PRIu64
		     " since %" PRId64 "/%" PRId64 " idle %" PRId64 "/%" PRId64
		     " warned %d/%d waiters %zu/%zu",
		    what, lock_ids[i], a->holder, b->holder, a->token, b->token,
		    a->since, b->since, a->idle_deadline, b->idle_deadline,
		    a->warned, b->warned, a->nw, b->nw);
	for (size_t k = 0; k < a->nw; k++) {
		if (a->w[k].c != b->w[k].c || a->w[k].user != b->w[k].user ||
		    (with_conn && a->w[k].connected != b->w[k].connected))
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
		a->max_conn != b->max_conn || a->grace != b->grace))
		fail("%s: %s differs: connected %d/%d max_conn %" PRId64
		     "/%" PRId64 " grace %" PRId64 "/%" PRId64,
		    what, client_ids[i], a->connected, b->connected,
		    a->max_conn, b->max_conn, a->grace, b->grace);
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

/* ---- the journal ---- */

/* What mqlockd does after a batch: journal the dirty records, ack them. */
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
			rec_to_slock(&r, &f->j.l[li]);
			f->j.l[li].holder_connected = false;
			for (size_t k = 0; k < f->j.l[li].nw; k++)
				f->j.l[li].w[k].connected = false;
		} else {
			if (r.holder != NULL || r.nwaiters != 0 || r.token != 0)
				fail("deleting lock %s that is not free", r.id);
			memset(&f->j.l[li], 0, sizeof(f->j.l[li]));
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

	/* The journal now describes the table exactly. */
	take_snap(f->t, &f->tmp);
	for (int i = 0; i < NL; i++)
		same_lock("journal", i, &f->j.l[i], &f->tmp.l[i], false);
	for (int i = 0; i < NC; i++) {
		same_client("journal", i, &f->j.c[i], &f->tmp.c[i]);
		if (f->tmp.c[i].present && f->tmp.c[i].nlocks == 0)
			fail("%s kept after a flush with nothing",
			    client_ids[i]);
	}
	if (f->j.last_token != f->tmp.last_token)
		fail("journal: last token differs");
	if (f->tmp.next != implied_next(f, &f->tmp, true))
		fail("next deadline %" PRId64 ", the views imply %" PRId64,
		    f->tmp.next, implied_next(f, &f->tmp, true));
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
		for (size_t k = 0; k < l->nw; k++) {
			w[k].client = client_ids[l->w[k].c];
			w[k].user = users[l->w[k].user];
			w[k].connected = false;
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
	if (f->tmp.next != implied_next(f, &f->before, false))
		fail("rebuilt: next deadline %" PRId64 ", expected %" PRId64,
		    f->tmp.next, implied_next(f, &f->before, false));
	if (f->before.next != implied_next(f, &f->before, true))
		fail("live: next deadline %" PRId64 ", expected %" PRId64,
		    f->before.next, implied_next(f, &f->before, true));
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

/*
 * An idle warning goes to the holder, about the deadline it has then: the
 * one before the event, or the one of a grant earlier in the same event
 * (a warning period as long as the idle timeout warns at the grant).  The
 * lock may be lost later in the same event.
 */
static void
check_warning(const struct fz *f, size_t i)
{
	const struct lt_fx *e = &f->fx.v[i];
	int c = client_index(e->client), l = lock_index(e->lock);
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
		    lock_index(g->lock) == l)
			deadline = g->deadline;
	}
	if (e->deadline != deadline || e->deadline <= f->now)
		fail("idle warning for %s with deadline %" PRId64, e->lock,
		    e->deadline);
	if (holds(&f->after, c, l) && f->after.l[l].idle_deadline == deadline &&
	    !f->after.l[l].warned)
		fail("%s warned but not marked so", e->lock);
}

/*
 * What holds for the effects of any event: known names, messages on
 * errors, new tokens strictly increasing, repeated ones only for a holder's
 * repeated acquire, revocations only of what was held, for a reason that
 * applied.
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
			} else if (ev->kind != LT_EV_REQUEST ||
			    ev->u.req.op != LT_OP_ACQUIRE || c < 0 || l < 0 ||
			    client_index(ev->u.req.client) != c ||
			    lock_index(ev->u.req.lock) != l ||
			    !holds(b, c, l) || b->l[l].token != e->token) {
				fail("granted %s token %" PRIu64
				     " after %" PRIu64 " without a repeat",
				    e->lock, e->token, f->max_token);
			}
			if (e->deadline != f->now + f->cfg.idle_timeout)
				fail("granted with deadline %" PRId64,
				    e->deadline);
		}
		if (is_event(e, LT_E_REVOKED)) {
			if (c < 0 || l < 0 || !holds(b, c, l) ||
			    b->l[l].token != e->token)
				fail("revoked %s from %s, who did not hold it "
				     "with token %" PRIu64,
				    e->lock, e->client, e->token);
			switch (e->reason) {
			case LT_REASON_IDLE:
				if (b->l[l].idle_deadline > f->now)
					fail("revoked %s before its deadline",
					    e->lock);
				break;
			case LT_REASON_DISCONNECT:
				if (b->c[c].connected && !b->c[c].unconfirmed)
					fail("revoked %s for a disconnect of a "
					     "live client",
					    e->lock);
				if (!b->c[c].connected &&
				    b->c[c].grace > f->now)
					fail("revoked %s within grace",
					    e->lock);
				if (b->c[c].unconfirmed &&
				    f->rollcall[c] > f->now)
					fail("revoked %s within the roll call",
					    e->lock);
				break;
			case LT_REASON_ADMIN:
				if (ev->kind != LT_EV_BREAK ||
				    lock_index(ev->u.admin.lock) != l ||
				    strcmp(e->detail, ev->u.admin.reason) != 0)
					fail("revoked %s as admin", e->lock);
				break;
			default:
				fail("revoked with reason %d", (int)e->reason);
			}
		}
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

	if (!a->c[nh].connected || a->c[nh].unconfirmed)
		fail("%s granted to %s, who is gone", lock_ids[l],
		    client_ids[nh]);
	for (long k = 0; k < was; k++) {
		int w = b->l[l].w[k].c;

		if (position(&a->l[l], w) >= 0 && a->c[w].connected &&
		    !a->c[w].unconfirmed)
			fail("%s granted to %s past live waiter %s",
			    lock_ids[l], client_ids[nh], client_ids[w]);
	}
}

/*
 * Every change is announced: a new holder or token with granted, a lost
 * lock with revoked (unless its holder released it), a new queue place
 * with queued.
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
			check_first_alive(f, l, nh);
		}
		if (h >= 0 && (nh != h || a->l[l].token != b->l[l].token)) {
			bool released = ev->kind == LT_EV_REQUEST &&
			    ev->u.req.op == LT_OP_RELEASE &&
			    client_index(ev->u.req.client) == h &&
			    lock_index(ev->u.req.lock) == l;
			const struct lt_fx *e =
			    find_fx(&f->fx, LT_FX_EVENT, LT_E_REVOKED, h, l);

			if (!released &&
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
			if (e == NULL && position(&b->l[l], c) != (long)k)
				fail("%s moved to place %zu in %s unannounced",
				    client_ids[c], k + 1, lock_ids[l]);
		}
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
	M_COUNT
};

/* The error the rules of topics.md give for rq on the state before. */
static enum lt_err
expected_error(const struct fz *f, const struct lt_request *rq, int c, int l,
    int malformed)
{
	const struct snap *b = &f->before;
	bool bound = c >= 0 && b->c[c].present && b->c[c].nlocks > 0;

	if (malformed != M_NONE && malformed != M_OP)
		return LT_ERR_BAD_REQUEST;
	if (bound && strcmp(sessions[c][b->c[c].session], rq->session) != 0)
		return LT_ERR_SESSION_MISMATCH;
	if (malformed == M_OP)
		return LT_ERR_BAD_REQUEST;
	/* From a connection already gone: an older one, or the will's. */
	if (c >= 0 && b->c[c].present && rq->conn >= 0 &&
	    (rq->conn < b->c[c].max_conn ||
		(rq->conn == b->c[c].max_conn && !b->c[c].connected)))
		return LT_ERR_STALE;
	if (rq->op != LT_OP_ACQUIRE || holds_or_waits(b, c, l))
		return LT_OK;
	if (b->l[l].present && b->l[l].holder >= 0 && !rq->wait)
		return LT_OK; /* busy */
	if (c >= 0 && b->c[c].present &&
	    b->c[c].nlocks >= f->cfg.locks_per_client)
		return LT_ERR_LIMIT;
	if (b->l[l].present && b->l[l].holder >= 0 &&
	    b->l[l].nw >= f->cfg.waiters_per_lock)
		return LT_ERR_LIMIT;
	/* Caps on the table, counting what a flush has not yet freed. */
	if (!b->c[c].present && f->cfg.max_clients > 0 &&
	    b->nclients >= f->cfg.max_clients)
		return LT_ERR_LIMIT;
	if (!b->l[l].present && f->cfg.max_locks > 0 &&
	    b->nlocks >= f->cfg.max_locks)
		return LT_ERR_LIMIT;
	return LT_OK;
}

static void
check_request(struct fz *f, const struct lt_request *rq, enum lt_err err,
    int malformed)
{
	const struct snap *b = &f->before, *a = &f->after;
	int c = malformed == M_NONE || malformed == M_OP
	    ? client_index(rq->client)
	    : -1;
	int l = lock_index(rq->lock);
	enum lt_err want = expected_error(f, rq, c, l, malformed);
	const struct lt_fx *rep = NULL, *ans = NULL;
	size_t nans = 0;

	if (err != want)
		fail("request returned %d, expected %d", (int)err, (int)want);
	if (err == LT_ERR_STALE) {
		const struct lt_fx *v = f->fx.v;

		if (f->fx.n != 2 || !is_note(&v[0], LT_N_STALE) ||
		    v[1].kind != LT_FX_REPLY ||
		    v[1].what.result != LT_R_ERROR || v[1].code != err)
			fail("stale: not one note and one reply");
		same_snap("stale request", b, a, true);
		return;
	}
	if (err != LT_OK) {
		const struct lt_fx *v = f->fx.v;
		size_t n = f->fx.n;

		/* A full queue or table also asks for a roll call. */
		if (err == LT_ERR_LIMIT && n == 3 &&
		    is_note(&v[0], LT_N_FULL)) {
			v++;
			n--;
		}
		if (n != 2 || !is_event(&v[0], LT_E_ERROR) ||
		    v[0].code != err || v[1].kind != LT_FX_REPLY ||
		    v[1].what.result != LT_R_ERROR || v[1].code != err)
			fail("refusal: not one error event and one reply");
		if (strncmp(v[0].client, rq->client, MQL_CLIENT_ID_MAX) != 0 ||
		    strncmp(v[0].lock, rq->lock, MQL_LOCK_ID_MAX) != 0)
			fail("refusal sent to the wrong client or lock");
		same_snap("refused request", b, a, true);
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
		if (!a->c[c].connected || a->c[c].unconfirmed)
			fail("%s still gone after a served request",
			    client_ids[c]);
		if (a->c[c].max_conn < rq->conn)
			fail("%s: max_conn below the request's", client_ids[c]);
		if ((!b->c[c].present || b->c[c].nlocks == 0) &&
		    strcmp(sessions[c][a->c[c].session], rq->session) != 0)
			fail("%s not bound to its new session", client_ids[c]);
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
			    !b->l[l].present || b->l[l].holder < 0 ||
			    holds_or_waits(a, c, l))
				fail("busy, but not so");
		}
		if (holds(b, c, l) && !is_event(ans, LT_E_GRANTED))
			fail("the holder's acquire not granted");
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

/* ---- wills, breaks, ticks, resumes ---- */

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

	if (!b->l[l].present || b->l[l].holder < 0) {
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
	const char *ops[] = {"acquire", "release", "activity", "op?"};

	switch (ev->kind) {
	case LT_EV_REQUEST:
		snprintf(cur_what, sizeof(cur_what),
		    "t+%" PRId64 " %s %.8s %.8s sess %.6s conn %" PRId64
		    " wait %d user %.6s%s",
		    f->now - T0, ops[ev->u.req.op < 3 ? ev->u.req.op : 3],
		    ev->u.req.client, ev->u.req.lock, ev->u.req.session,
		    ev->u.req.conn, ev->u.req.wait, ev->u.req.user,
		    malformed != M_NONE ? " (malformed)" : "");
		break;
	case LT_EV_WILL:
		snprintf(cur_what, sizeof(cur_what),
		    "t+%" PRId64 " will %.8s sess %.6s conn %" PRId64,
		    f->now - T0, ev->u.will.client, ev->u.will.session,
		    ev->u.will.conn);
		break;
	case LT_EV_BREAK:
		snprintf(cur_what, sizeof(cur_what),
		    "t+%" PRId64 " break %.8s reason %.10s", f->now - T0,
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
	    "revoked", "idle-warning", "error"};
	static const char *const results[] = {"granted", "queued", "busy",
	    "released", "refreshed", "ignored", "revoked", "error"};
	static const char *const notes[] = {"released", "left-queue",
	    "disconnected", "reconnected", "dropped", "will-ignored", "freed",
	    "silent"};

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
		    "    %s %.12s %.12s token %" PRIu64 " pos %u deadline "
		    "t+%" PRId64 " reason %d code %d\n",
		    name, e->client, e->lock, e->token, (unsigned)e->position,
		    e->deadline != 0 ? e->deadline - T0 : 0, (int)e->reason,
		    (int)e->code);
	}
}

static void
apply(struct fz *f, const struct lt_event *ev, int malformed)
{
	enum lt_err err;
	const char *why;
	size_t replies;

	cur_step = ++f->steps;
	describe(f, ev, malformed);
	take_snap(f->t, &f->before);
	lt_fxlist_clear(&f->fx);
	err = locktab_apply(f->t, f->now, ev, &f->fx);
	if (f->trace)
		trace_fx(&f->fx);
	if (f->fx.failed)
		fail("out of memory");
	if ((why = locktab_check(f->t)) != NULL)
		fail("locktab_check: %s", why);
	take_snap(f->t, &f->after);
	check_snap(f, &f->after);
	check_effects(f, ev, malformed != M_NONE);
	check_announced(f, ev);

	replies = count_replies(&f->fx);
	if (replies != (ev->kind == LT_EV_REQUEST || ev->kind == LT_EV_BREAK))
		fail("%zu replies", replies);
	if (ev->kind != LT_EV_REQUEST && ev->kind != LT_EV_RESUME &&
	    err != LT_OK)
		fail("event returned %d", (int)err);
	switch (ev->kind) {
	case LT_EV_REQUEST:
		check_request(f, &ev->u.req, err, malformed);
		break;
	case LT_EV_WILL:
		check_will(f, &ev->u.will);
		break;
	case LT_EV_BREAK:
		check_break(f, &ev->u.admin);
		break;
	case LT_EV_TICK:
		check_tick(f);
		break;
	case LT_EV_RESUME:
		check_resume(f, &ev->u.resume, err);
		break;
	default:
		fail("unknown event kind");
	}
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
 * A request: a = who (client a % 6, lock a / 6 % 5), m = how: bit 0 the
 * other session, bits 1-2 conn (absent, current, older, new), bits 3-4
 * user, bit 5 try-lock; bits 6-7 both set: malformed, as the next byte
 * says.
 */
static void
request(struct fz *f, struct reader *r, enum lt_op op)
{
	unsigned a = rd(r), m = rd(r);
	int c = (int)(a % NC), l = (int)(a / NC % NL);
	int malformed = (m >> 6) == 3 ? (int)(rd(r) % M_COUNT) : M_NONE;
	struct lt_event ev;
	struct lt_request *rq = &ev.u.req;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LT_EV_REQUEST;
	rq->op = op;
	memcpy(rq->lock, lock_ids[l], sizeof(rq->lock));
	memcpy(rq->client, client_ids[c], sizeof(rq->client));
	memcpy(rq->session, sessions[c][m & 1], sizeof(rq->session));
	memcpy(rq->user, users[(m >> 3) & 3], sizeof(rq->user));
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

/* mqlockd restarts: a table from the journal, then a roll call. */
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
	case 7: {
		struct lt_event ev;

		a = rd(r);
		memset(&ev, 0, sizeof(ev));
		ev.kind = LT_EV_BREAK;
		memcpy(ev.u.admin.lock, lock_ids[a % NL],
		    sizeof(ev.u.admin.lock));
		memcpy(ev.u.admin.reason, reasons[a / NL % 3],
		    sizeof(ev.u.admin.reason));
		apply(f, &ev, M_NONE);
		break;
	}
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
 * 2 or 3, and caps of 4 clients, 3 locks, both or neither (h3 / 24).
 */
static void
setup(struct fz *f, struct reader *r)
{
	unsigned h0 = rd(r), h1 = rd(r), h2 = rd(r), h3 = rd(r);

	f->cfg = (struct lt_config){
	    .idle_timeout = 50 + (lt_ms)h0 * 20,
	    .idle_warning = (lt_ms)h1 * 20,
	    .grace = (lt_ms)h2 * 10,
	    .waiters_per_lock = 1 + h3 % 3,
	    .locks_per_client = 1 + h3 / 3 % 2,
	    .tick_batch = h3 / 6 % 4,
	    .max_clients = (h3 / 24 % 4) & 1 ? 4 : 0,
	    .max_locks = (h3 / 24 % 4) & 2 ? 3 : 0,
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

	if (size < 4)
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
