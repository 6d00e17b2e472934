/*
 * test_locktab: the lock table, driven with plain numbers as time.
 *
 * Every step applies one event, compares the effects with the exact list the
 * rules of topics.md call for, runs locktab_check(), and checks what holds for
 * any event (one reply per request, a refused request changes nothing, tokens
 * only grow).  Then it does what mqlockd does after a batch: copies every
 * dirty lock and client record into an in-memory journal, acknowledges them,
 * and checks that the journal now describes the table exactly.  Every test
 * ends by rebuilding a fresh table from that journal and comparing the two.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/locktab.h"
#include "test_hash.h"

#define T0 ((lt_ms)1764140000000)
#define IDLE ((lt_ms)600000)
#define WARN ((lt_ms)60000)
#define GRACE ((lt_ms)10000)

#define A "ed-a"
#define B "ed-b"
#define C "ed-c"
#define D "ed-d"
#define E "ed-e"
#define F "ed-f"
#define L1 "doc-1"
#define L2 "doc-2"
#define L3 "doc-3"
#define L4 "doc-4"
#define L5 "doc-5"

/* A session no client uses by default. */
#define SESS_OTHER "another-session-0123456789"

static const struct lt_config default_cfg = {
    .idle_timeout = IDLE,
    .idle_warning = WARN,
    .grace = GRACE,
    .waiters_per_lock = MQL_WAITERS_PER_LOCK,
    .locks_per_client = MQL_LOCKS_PER_CLIENT,
    .tick_batch = 0,
    .hasher = {siphash_str, test_hash_key},
};

/* ---- small utilities ---- */

static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static char *
xstrdup(const char *s)
{
	size_t n;
	char *p;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	p = malloc(n);
	assert_non_null(p);
	memcpy(p, s, n);
	return p;
}

static void *
xgrow(void *v, size_t *cap, size_t need, size_t sz)
{
	size_t n;

	if (need <= *cap)
		return v;
	n = *cap != 0 ? *cap * 2 : 8;
	while (n < need)
		n *= 2;
	v = realloc(v, n * sz);
	assert_non_null(v);
	*cap = n;
	return v;
}

struct sbuf {
	char *s;
	size_t n, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	assert_true(k >= 0);
	b->s = xgrow(b->s, &b->cap, b->n + (size_t)k + 1, 1);
	va_start(ap, fmt);
	vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
	va_end(ap);
	b->n += (size_t)k;
}

static char *
sb_take(struct sbuf *b)
{
	if (b->s == NULL)
		return xstrdup("");
	return b->s;
}

/* A sorted set of strings (owned copies). */
struct idlist {
	char **v;
	size_t n, cap;
};

static void
idlist_add(struct idlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], s) == 0)
			return;
	}
	l->v = xgrow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = xstrdup(s);
}

static int
cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void
idlist_sort(struct idlist *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_str);
}

static void
idlist_free(struct idlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/*
 * Tokens of two tables that were equal up to `base` and then took the same
 * events: each new token of one must pair with exactly one of the other.
 */
struct tokmap {
	uint64_t base;
	uint64_t (*pairs)[2];
	size_t n, cap;
};

static bool
tokmap_pair(struct tokmap *m, uint64_t a, uint64_t b)
{
	if (a <= m->base || b <= m->base)
		return a == b;
	for (size_t i = 0; i < m->n; i++) {
		if (m->pairs[i][0] == a || m->pairs[i][1] == b)
			return m->pairs[i][0] == a && m->pairs[i][1] == b;
	}
	m->pairs = xgrow(m->pairs, &m->cap, m->n + 1, sizeof(*m->pairs));
	m->pairs[m->n][0] = a;
	m->pairs[m->n][1] = b;
	m->n++;
	return true;
}

/* The token of table a that token b of table b stands for. */
static uint64_t
tokmap_to_a(const struct tokmap *m, uint64_t b)
{
	if (m == NULL || b <= m->base)
		return b;
	for (size_t i = 0; i < m->n; i++) {
		if (m->pairs[i][1] == b)
			return m->pairs[i][0];
	}
	return b + (1ULL << 60); /* unpaired: never equal to a real token */
}

/* ---- formatting records ---- */

static const char *
nz(const char *s)
{
	return s != NULL ? s : "(null)";
}

/* with_conn: include the connected flags (views have them, journals not). */
static void
fmt_lock(struct sbuf *b, const struct lt_lock_rec *r, bool with_conn,
    const struct tokmap *m)
{
	sb_printf(b, "lock %s since %" PRId64, nz(r->id), r->since);
	if (r->holder != NULL) {
		sb_printf(b,
		    " holder %s user '%s' token %" PRIu64 " idle %" PRId64
		    " warned %d",
		    r->holder, nz(r->holder_user), tokmap_to_a(m, r->token),
		    r->idle_deadline, r->warned);
		if (with_conn)
			sb_printf(b, " connected %d", r->holder_connected);
	} else {
		sb_printf(b, " free");
	}
	sb_printf(b, " waiters %zu:", r->nwaiters);
	for (size_t i = 0; i < r->nwaiters; i++) {
		sb_printf(b, " %s '%s'", nz(r->waiters[i].client),
		    nz(r->waiters[i].user));
		if (with_conn)
			sb_printf(b, " %d", r->waiters[i].connected);
	}
	sb_printf(b, "\n");
}

static void
fmt_client(struct sbuf *b, const struct lt_client_rec *r, bool with_unconf)
{
	sb_printf(b, "client %s session %s connected %d max_conn %" PRId64,
	    nz(r->id), nz(r->session), r->state != LT_CS_GONE, r->max_conn);
	if (r->state == LT_CS_GONE)
		sb_printf(b, " grace %" PRId64, r->grace_deadline);
	if (with_unconf)
		sb_printf(b, " unconfirmed %d", r->state == LT_CS_OWES);
	sb_printf(b, "\n");
}

/* ---- the journal ---- */

struct jwaiter {
	char *client;
	char *user;
};

struct jlock {
	char *id;
	char *holder; /* NULL: free */
	char *holder_user;
	uint64_t token;
	lt_ms since;
	lt_ms idle_deadline;
	bool warned;
	size_t nw;
	struct jwaiter *w;
};

struct jclient {
	char *id;
	char *session;
	bool connected;
	int64_t max_conn;
	lt_ms grace_deadline;
};

struct journal {
	struct jlock *locks;
	size_t nlocks, caplocks;
	struct jclient *clients;
	size_t nclients, capclients;
	uint64_t last_token;
};

static void
jlock_clear(struct jlock *l)
{
	free(l->id);
	free(l->holder);
	free(l->holder_user);
	for (size_t i = 0; i < l->nw; i++) {
		free(l->w[i].client);
		free(l->w[i].user);
	}
	free(l->w);
	memset(l, 0, sizeof(*l));
}

static void
jclient_clear(struct jclient *c)
{
	free(c->id);
	free(c->session);
	memset(c, 0, sizeof(*c));
}

static struct jlock *
journal_lock(struct journal *j, const char *id)
{
	for (size_t i = 0; i < j->nlocks; i++) {
		if (strcmp(j->locks[i].id, id) == 0)
			return &j->locks[i];
	}
	return NULL;
}

static struct jclient *
journal_client(struct journal *j, const char *id)
{
	for (size_t i = 0; i < j->nclients; i++) {
		if (strcmp(j->clients[i].id, id) == 0)
			return &j->clients[i];
	}
	return NULL;
}

static void
journal_put_lock(struct journal *j, const struct lt_lock_rec *r)
{
	struct jlock *l = journal_lock(j, r->id);

	if (l == NULL) {
		j->locks = xgrow(j->locks, &j->caplocks, j->nlocks + 1,
		    sizeof(*j->locks));
		l = &j->locks[j->nlocks++];
		memset(l, 0, sizeof(*l));
	} else {
		jlock_clear(l);
	}
	l->id = xstrdup(r->id);
	if (r->holder != NULL) {
		l->holder = xstrdup(r->holder);
		l->holder_user = xstrdup(r->holder_user);
		l->token = r->token;
		l->idle_deadline = r->idle_deadline;
		l->warned = r->warned;
	}
	l->since = r->since;
	l->nw = r->nwaiters;
	l->w = calloc(r->nwaiters + 1, sizeof(*l->w));
	assert_non_null(l->w);
	for (size_t i = 0; i < r->nwaiters; i++) {
		l->w[i].client = xstrdup(r->waiters[i].client);
		l->w[i].user = xstrdup(r->waiters[i].user);
	}
}

static void
journal_del_lock(struct journal *j, const char *id)
{
	struct jlock *l = journal_lock(j, id);

	if (l == NULL)
		return;
	jlock_clear(l);
	*l = j->locks[--j->nlocks];
}

static void
journal_put_client(struct journal *j, const struct lt_client_rec *r)
{
	struct jclient *c = journal_client(j, r->id);

	if (c == NULL) {
		j->clients = xgrow(j->clients, &j->capclients, j->nclients + 1,
		    sizeof(*j->clients));
		c = &j->clients[j->nclients++];
		memset(c, 0, sizeof(*c));
	} else {
		jclient_clear(c);
	}
	c->id = xstrdup(r->id);
	c->session = xstrdup(r->session);
	c->connected = r->state != LT_CS_GONE;
	c->max_conn = r->max_conn;
	c->grace_deadline = r->state != LT_CS_GONE ? 0 : r->grace_deadline;
}

static void
journal_del_client(struct journal *j, const char *id)
{
	struct jclient *c = journal_client(j, id);

	if (c == NULL)
		return;
	jclient_clear(c);
	*c = j->clients[--j->nclients];
}

static void
journal_free(struct journal *j)
{
	for (size_t i = 0; i < j->nlocks; i++)
		jlock_clear(&j->locks[i]);
	for (size_t i = 0; i < j->nclients; i++)
		jclient_clear(&j->clients[i]);
	free(j->locks);
	free(j->clients);
	memset(j, 0, sizeof(*j));
}

/* A record pointing into a journal entry; ws must hold l->nw entries. */
static void
jlock_rec(const struct jlock *l, struct lt_waiter_rec *ws,
    struct lt_lock_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->id = l->id;
	r->holder = l->holder;
	r->holder_user = l->holder_user;
	r->token = l->token;
	r->since = l->since;
	r->idle_deadline = l->idle_deadline;
	r->warned = l->warned;
	r->nwaiters = l->nw;
	r->waiters = ws;
	for (size_t i = 0; i < l->nw; i++) {
		ws[i].client = l->w[i].client;
		ws[i].user = l->w[i].user;
		ws[i].connected = false;
	}
}

static void
jclient_rec(const struct jclient *c, struct lt_client_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->id = c->id;
	r->session = c->session;
	r->state = c->connected ? LT_CS_LIVE : LT_CS_GONE;
	r->max_conn = c->max_conn;
	r->grace_deadline = c->grace_deadline;
}

/* ---- dumping a whole table ---- */

static int
collect_lock_cb(const struct lt_lock_rec *rec, void *arg)
{
	idlist_add(arg, rec->id);
	return 0;
}

/*
 * When set, dump() shows only what the journal keeps: a table rebuilt from
 * it begins a new epoch, in which every connected client owes an answer to
 * the roll call (unconfirmed, with its deadline still to be set).
 */
static bool dump_journaled;

/*
 * Everything the table shows through its views, in a canonical order.
 * Tokens are translated through m (NULL: as they are).
 */
static char *
dump(struct locktab *t, const struct tokmap *m)
{
	struct idlist locks = {0}, clients = {0};
	struct sbuf b = {0};
	lt_ms next = locktab_next_deadline(t);

	assert_int_equal(locktab_foreach_lock(t, collect_lock_cb, &locks), 0);
	idlist_sort(&locks);
	sb_printf(&b,
	    "locks %zu clients %zu last_token %" PRIu64 " next %" PRId64 "\n",
	    locktab_nlocks(t), locktab_nclients(t), locktab_last_token(t),
	    dump_journaled ? 0 : next);
	for (size_t i = 0; i < locks.n; i++) {
		struct lt_lock_rec r;

		assert_true(locktab_view(t, locks.v[i], &r));
		assert_string_equal(r.id, locks.v[i]);
		fmt_lock(&b, &r, true, m);
		if (r.holder != NULL)
			idlist_add(&clients, r.holder);
		for (size_t k = 0; k < r.nwaiters; k++)
			idlist_add(&clients, r.waiters[k].client);
	}
	idlist_sort(&clients);
	for (size_t i = 0; i < clients.n; i++) {
		struct lt_client_rec r;

		assert_true(locktab_view_client(t, clients.v[i], &r));
		fmt_client(&b, &r, !dump_journaled);
	}
	idlist_free(&locks);
	idlist_free(&clients);
	return sb_take(&b);
}

/* ---- a table and its journal ---- */

struct side {
	struct lt_config cfg;
	struct locktab *t;
	struct lt_fxlist fx;
	struct journal j;
	uint64_t max_token; /* the highest token seen in a granted event */
	bool check_alive;   /* a served request marks its client connected */
	char *before;       /* the table before the current request */
};

static void
side_init(struct side *s, const struct lt_config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	s->t = locktab_new(cfg);
	assert_non_null(s->t);
	s->check_alive = true;
}

static void
side_free(struct side *s)
{
	locktab_free(s->t);
	lt_fxlist_free(&s->fx);
	journal_free(&s->j);
	free(s->before); /* left by a failed check */
}

/* The journal describes the table exactly (after a flush). */
static void
journal_matches(struct side *s)
{
	assert_int_equal(s->j.nlocks, locktab_nlocks(s->t));
	assert_int_equal(s->j.nclients, locktab_nclients(s->t));
	assert_int_equal(s->j.last_token, locktab_last_token(s->t));
	for (size_t i = 0; i < s->j.nlocks; i++) {
		const struct jlock *jl = &s->j.locks[i];
		struct lt_waiter_rec *ws = calloc(jl->nw + 1, sizeof(*ws));
		struct lt_lock_rec jr, vr;
		struct sbuf x = {0}, y = {0};

		assert_non_null(ws);
		jlock_rec(jl, ws, &jr);
		if (!locktab_view(s->t, jl->id, &vr))
			fail_msg("journaled lock %s unknown to the table",
			    jl->id);
		fmt_lock(&x, &jr, false, NULL);
		fmt_lock(&y, &vr, false, NULL);
		assert_string_equal(y.s, x.s);
		free(x.s);
		free(y.s);
		free(ws);
	}
	for (size_t i = 0; i < s->j.nclients; i++) {
		const struct jclient *jc = &s->j.clients[i];
		struct lt_client_rec jr, vr;
		struct sbuf x = {0}, y = {0};

		jclient_rec(jc, &jr);
		if (!locktab_view_client(s->t, jc->id, &vr))
			fail_msg("journaled client %s unknown to the table",
			    jc->id);
		fmt_client(&x, &jr, false);
		fmt_client(&y, &vr, false);
		assert_string_equal(y.s, x.s);
		free(x.s);
		free(y.s);
	}
}

/*
 * What mqlockd does after a batch: journal every dirty record (deleting the
 * ones that say so), acknowledge, and check the result.
 */
static void
side_flush(struct side *s)
{
	struct idlist gone_locks = {0}, gone_clients = {0};
	size_t nl = locktab_dirty_locks(s->t);
	size_t nc = locktab_dirty_clients(s->t);
	const char *why;

	for (size_t i = 0; i < nl; i++) {
		struct lt_lock_rec r;

		if (locktab_dirty_lock(s->t, i, &r)) {
			assert_true(r.holder != NULL || r.nwaiters > 0);
			journal_put_lock(&s->j, &r);
		} else {
			assert_non_null(r.id);
			assert_null(r.holder);
			assert_int_equal(r.nwaiters, 0);
			assert_int_equal(r.token, 0);
			idlist_add(&gone_locks, r.id);
			journal_del_lock(&s->j, r.id);
		}
	}
	for (size_t i = 0; i < nc; i++) {
		struct lt_client_rec r;

		if (locktab_dirty_client(s->t, i, &r)) {
			journal_put_client(&s->j, &r);
		} else {
			assert_non_null(r.id);
			idlist_add(&gone_clients, r.id);
			journal_del_client(&s->j, r.id);
		}
	}
	s->j.last_token = locktab_last_token(s->t);
	locktab_dirty_done(s->t);
	assert_int_equal(locktab_dirty_locks(s->t), 0);
	assert_int_equal(locktab_dirty_clients(s->t), 0);
	for (size_t i = 0; i < gone_locks.n; i++) {
		struct lt_lock_rec r;

		assert_false(locktab_view(s->t, gone_locks.v[i], &r));
	}
	for (size_t i = 0; i < gone_clients.n; i++) {
		struct lt_client_rec r;

		assert_false(locktab_view_client(s->t, gone_clients.v[i], &r));
	}
	idlist_free(&gone_locks);
	idlist_free(&gone_clients);
	why = locktab_check(s->t);
	if (why != NULL)
		fail_msg("locktab_check after flush: %s", why);
	journal_matches(s);
}

/* A fresh table rebuilt from j, as mqlockd does when it starts. */
static struct locktab *
journal_restore(const struct journal *j, const struct lt_config *cfg)
{
	struct locktab *t = locktab_new(cfg);
	const char *why;

	assert_non_null(t);
	for (size_t i = 0; i < j->nclients; i++) {
		struct lt_client_rec r;

		jclient_rec(&j->clients[i], &r);
		assert_int_equal(locktab_restore_client(t, &r), LT_OK);
	}
	for (size_t i = 0; i < j->nlocks; i++) {
		struct lt_waiter_rec *ws =
		    calloc(j->locks[i].nw + 1, sizeof(*ws));
		struct lt_lock_rec r;

		assert_non_null(ws);
		jlock_rec(&j->locks[i], ws, &r);
		assert_int_equal(locktab_restore_lock(t, &r), LT_OK);
		free(ws);
	}
	locktab_restore_token(t, j->last_token);
	locktab_restore_done(t);
	/* Nothing restored is dirty: the journal holds no orphan client. */
	assert_int_equal(locktab_dirty_locks(t), 0);
	assert_int_equal(locktab_dirty_clients(t), 0);
	why = locktab_check(t);
	if (why != NULL)
		fail_msg("locktab_check after restore: %s", why);
	return t;
}

/* Flush, rebuild from the journal, and compare the two tables. */
static void
replay_check(struct side *s)
{
	struct locktab *r;
	char *x, *y;

	side_flush(s);
	r = journal_restore(&s->j, &s->cfg);
	dump_journaled = true;
	x = dump(s->t, NULL);
	y = dump(r, NULL);
	dump_journaled = false;
	assert_string_equal(y, x);
	free(x);
	free(y);
	locktab_free(r);
}

/* ---- effects ---- */

static int
fx_what(const struct lt_fx *e)
{
	switch (e->kind) {
	case LT_FX_EVENT:
		return (int)e->what.event;
	case LT_FX_REPLY:
		return (int)e->what.result;
	case LT_FX_NOTE:
		return (int)e->what.note;
	default:
		return -1;
	}
}

static void
fmt_fx(struct sbuf *b, const struct lt_fx *e)
{
	static const char *const kinds[] = {"EVENT", "REPLY", "NOTE"};

	sb_printf(b,
	    "  %s %d client '%s' lock '%s' token %" PRIu64
	    " position %u%s deadline %" PRId64
	    " reason %d code %d detail '%s'\n",
	    (unsigned)e->kind < 3 ? kinds[e->kind] : "?", fx_what(e), e->client,
	    e->lock, e->token, (unsigned)e->position,
	    e->moved ? " (moved)" : "", e->deadline, (int)e->reason,
	    (int)e->code, e->detail);
}

static void
fmt_fxlist(struct sbuf *b, const struct lt_fx *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fmt_fx(b, &v[i]);
}

/* An expected effect; fields left out must be zero (or empty). */
struct xfx {
	enum lt_fx_kind kind;
	int what;
	const char *client;
	const char *lock;
	uint64_t token;
	uint32_t position;
	bool moved;
	lt_ms deadline;
	enum lt_reason reason;
	enum lt_err code;
	const char *detail;
};

static void
xfx_to_fx(const struct xfx *x, struct lt_fx *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = x->kind;
	switch (x->kind) {
	case LT_FX_EVENT:
		e->what.event = (enum lt_event_type)x->what;
		break;
	case LT_FX_REPLY:
		e->what.result = (enum lt_result)x->what;
		break;
	default:
		e->what.note = (enum lt_note)x->what;
		break;
	}
	snprintf(e->client, sizeof(e->client), "%s", nz(x->client));
	snprintf(e->lock, sizeof(e->lock), "%s", nz(x->lock));
	e->token = x->token;
	e->position = x->position;
	e->moved = x->moved;
	e->deadline = x->deadline;
	e->reason = x->reason;
	e->code = x->code;
	snprintf(e->detail, sizeof(e->detail), "%s",
	    x->detail != NULL ? x->detail : "");
}

static bool
fx_equal(const struct lt_fx *x, const struct lt_fx *y)
{
	return x->kind == y->kind && fx_what(x) == fx_what(y) &&
	    strcmp(x->client, y->client) == 0 &&
	    strcmp(x->lock, y->lock) == 0 && x->token == y->token &&
	    x->position == y->position && x->moved == y->moved &&
	    x->deadline == y->deadline && x->reason == y->reason &&
	    x->code == y->code && strcmp(x->detail, y->detail) == 0;
}

#define X_GRANTED(c, l, tok, dl)                                          \
	{                                                                 \
		.kind = LT_FX_EVENT, .what = LT_E_GRANTED, .client = (c), \
		.lock = (l), .token = (tok), .deadline = (dl)             \
	}
#define X_QUEUED(c, l, pos)                                              \
	{                                                                \
		.kind = LT_FX_EVENT, .what = LT_E_QUEUED, .client = (c), \
		.lock = (l), .position = (pos)                           \
	}
/* A waiter's new place after someone ahead left. */
#define X_MOVED(c, l, pos)                                               \
	{                                                                \
		.kind = LT_FX_EVENT, .what = LT_E_QUEUED, .client = (c), \
		.lock = (l), .position = (pos), .moved = true            \
	}
#define X_BUSY(c, l)                                                   \
	{                                                              \
		.kind = LT_FX_EVENT, .what = LT_E_BUSY, .client = (c), \
		.lock = (l)                                            \
	}
#define X_REVOKED(c, l, tok, why)                                         \
	{                                                                 \
		.kind = LT_FX_EVENT, .what = LT_E_REVOKED, .client = (c), \
		.lock = (l), .token = (tok), .reason = (why)              \
	}
#define X_REVOKED_ADMIN(c, l, tok, msg)                                   \
	{                                                                 \
		.kind = LT_FX_EVENT, .what = LT_E_REVOKED, .client = (c), \
		.lock = (l), .token = (tok), .reason = LT_REASON_ADMIN,   \
		.detail = (msg)                                           \
	}
#define X_WARN(c, l, dl)                                                       \
	{                                                                      \
		.kind = LT_FX_EVENT, .what = LT_E_IDLE_WARNING, .client = (c), \
		.lock = (l), .deadline = (dl)                                  \
	}
#define X_DROPPED(c, l, why)                                              \
	{                                                                 \
		.kind = LT_FX_EVENT, .what = LT_E_DROPPED, .client = (c), \
		.lock = (l), .reason = (why)                              \
	}
#define X_ERROR(c, l, err)                                              \
	{                                                               \
		.kind = LT_FX_EVENT, .what = LT_E_ERROR, .client = (c), \
		.lock = (l), .code = (err)                              \
	}
#define R_GRANTED(c, l, tok)                                              \
	{                                                                 \
		.kind = LT_FX_REPLY, .what = LT_R_GRANTED, .client = (c), \
		.lock = (l), .token = (tok)                               \
	}
#define R_QUEUED(c, l, pos)                                              \
	{                                                                \
		.kind = LT_FX_REPLY, .what = LT_R_QUEUED, .client = (c), \
		.lock = (l), .position = (pos)                           \
	}
#define R_(res, c, l)                                                          \
	{                                                                      \
		.kind = LT_FX_REPLY, .what = (res), .client = (c), .lock = (l) \
	}
#define R_REVOKED(l, tok)                                                \
	{                                                                \
		.kind = LT_FX_REPLY, .what = LT_R_REVOKED, .client = "", \
		.lock = (l), .token = (tok)                              \
	}
#define R_ERROR(c, l, err)                                              \
	{                                                               \
		.kind = LT_FX_REPLY, .what = LT_R_ERROR, .client = (c), \
		.lock = (l), .code = (err)                              \
	}
#define N_(note, c, l)                                                         \
	{                                                                      \
		.kind = LT_FX_NOTE, .what = (note), .client = (c), .lock = (l) \
	}

/*
 * The effects in fx are exactly want[0..n): in this order, or in any order
 * (for ticks and the like, where several locks are decided at once and no
 * order between them is promised).
 */
static void
expect_fx(const struct lt_fxlist *fx, const struct xfx *want, size_t n,
    bool ordered)
{
	struct lt_fx *w = calloc(n + 1, sizeof(*w));
	bool *used = calloc(fx->n + 1, sizeof(*used));
	bool ok = fx->n == n;

	assert_non_null(w);
	assert_non_null(used);
	for (size_t i = 0; i < n; i++)
		xfx_to_fx(&want[i], &w[i]);
	for (size_t i = 0; ok && i < n; i++) {
		bool found = false;

		if (ordered) {
			found = fx_equal(&fx->v[i], &w[i]);
		} else {
			for (size_t k = 0; k < fx->n && !found; k++) {
				if (!used[k] && fx_equal(&fx->v[k], &w[i])) {
					used[k] = true;
					found = true;
				}
			}
		}
		ok = found;
	}
	if (!ok) {
		struct sbuf b = {0};

		sb_printf(&b, "effects differ%s; expected:\n",
		    ordered ? "" : " (in any order)");
		fmt_fxlist(&b, w, n);
		sb_printf(&b, "seen:\n");
		fmt_fxlist(&b, fx->v, fx->n);
		print_error("%s", b.s);
		free(b.s);
		free(w);
		free(used);
		fail();
	}
	free(w);
	free(used);
}

/* ---- applying events ---- */

static size_t
count_fx(const struct lt_fxlist *fx, enum lt_fx_kind kind)
{
	size_t n = 0;

	for (size_t i = 0; i < fx->n; i++)
		n += fx->v[i].kind == kind;
	return n;
}

/* Checks that hold for every event, whatever the table held. */
static void
check_generic(struct side *s, const struct lt_event *ev, enum lt_err err,
    const char *before)
{
	const struct lt_fxlist *fx = &s->fx;
	size_t replies = count_fx(fx, LT_FX_REPLY);

	/* Exactly one reply per request and per admin command. */
	if (ev->kind == LT_EV_REQUEST || ev->kind == LT_EV_BREAK ||
	    ev->kind == LT_EV_PURGE)
		assert_int_equal(replies, 1);
	else
		assert_int_equal(replies, 0);
	if (ev->kind != LT_EV_REQUEST)
		assert_int_equal(err, LT_OK);

	for (size_t i = 0; i < fx->n; i++) {
		const struct lt_fx *e = &fx->v[i];

		if ((e->kind == LT_FX_EVENT && e->what.event == LT_E_ERROR) ||
		    (e->kind == LT_FX_REPLY && e->what.result == LT_R_ERROR)) {
			assert_non_null(e->message);
			assert_true(e->message[0] != '\0');
		}
		if (e->kind != LT_FX_EVENT || e->what.event != LT_E_GRANTED)
			continue;
		assert_true(e->token > 0);
		if (e->token > s->max_token) {
			s->max_token = e->token;
		} else {
			/* Only a holder's repeated acquire reuses a token. */
			const struct lt_request *rq = &ev->u.req;
			struct lt_lock_rec r;

			assert_int_equal(ev->kind, LT_EV_REQUEST);
			assert_int_equal(rq->op, LT_OP_ACQUIRE);
			assert_string_equal(e->client, rq->client);
			assert_string_equal(e->lock, rq->lock);
			assert_true(locktab_view(s->t, e->lock, &r));
			assert_int_equal(r.token, e->token);
		}
	}
	assert_int_equal(locktab_last_token(s->t), s->max_token);

	if (ev->kind != LT_EV_REQUEST)
		return;
	if (err == LT_ERR_STALE) {
		/* Its sender is gone: a note and a reply, no event. */
		char *after = dump(s->t, NULL);

		assert_int_equal(fx->n, 2);
		assert_int_equal(fx->v[0].kind, LT_FX_NOTE);
		assert_int_equal(fx->v[0].what.note, LT_N_STALE);
		assert_int_equal(fx->v[1].kind, LT_FX_REPLY);
		assert_int_equal(fx->v[1].what.result, LT_R_ERROR);
		assert_int_equal(fx->v[1].code, err);
		assert_string_equal(after, before);
		free(after);
		return;
	}
	if (err != LT_OK) {
		/*
		 * A refusal: one error event, one error reply, no change; a
		 * full table also notes that a roll call could make room.
		 */
		char *after = dump(s->t, NULL);
		size_t k = 0;

		if (fx->n == 3) {
			assert_int_equal(err, LT_ERR_LIMIT);
			assert_int_equal(fx->v[0].kind, LT_FX_NOTE);
			assert_int_equal(fx->v[0].what.note, LT_N_FULL);
			k = 1;
		}
		assert_int_equal(fx->n, 2 + k);
		assert_int_equal(fx->v[k].kind, LT_FX_EVENT);
		assert_int_equal(fx->v[k].what.event, LT_E_ERROR);
		assert_int_equal(fx->v[k].code, err);
		assert_string_equal(fx->v[k].client, ev->u.req.client);
		assert_string_equal(fx->v[k].lock, ev->u.req.lock);
		assert_int_equal(fx->v[k + 1].kind, LT_FX_REPLY);
		assert_int_equal(fx->v[k + 1].what.result, LT_R_ERROR);
		assert_int_equal(fx->v[k + 1].code, err);
		assert_string_equal(after, before);
		free(after);
		return;
	}
	if (s->check_alive) {
		/* A served request says the client is alive. */
		struct lt_client_rec cr;

		if (locktab_view_client(s->t, ev->u.req.client, &cr)) {
			if (cr.state != LT_CS_LIVE)
				fail_msg("client %s still marked gone after a "
					 "served request",
				    ev->u.req.client);
		}
	}
	if (ev->u.req.op == LT_OP_ACQUIRE) {
		/* Every acquire gets exactly one answering event. */
		size_t n = 0;
		const struct lt_fx *ans = NULL, *rep = NULL;

		for (size_t i = 0; i < fx->n; i++) {
			const struct lt_fx *e = &fx->v[i];

			if (e->kind == LT_FX_REPLY)
				rep = e;
			if (e->kind != LT_FX_EVENT ||
			    strcmp(e->client, ev->u.req.client) != 0 ||
			    strcmp(e->lock, ev->u.req.lock) != 0)
				continue;
			if (e->what.event == LT_E_GRANTED ||
			    e->what.event == LT_E_QUEUED ||
			    e->what.event == LT_E_BUSY) {
				n++;
				ans = e;
			}
		}
		assert_int_equal(n, 1);
		assert_non_null(rep);
		/* The reply says the same as the event. */
		switch (ans->what.event) {
		case LT_E_GRANTED:
			assert_int_equal(rep->what.result, LT_R_GRANTED);
			break;
		case LT_E_QUEUED:
			assert_int_equal(rep->what.result, LT_R_QUEUED);
			break;
		default:
			assert_int_equal(rep->what.result, LT_R_BUSY);
			break;
		}
		assert_int_equal(rep->token, ans->token);
		assert_int_equal(rep->position, ans->position);
	}
}

static enum lt_err
side_apply(struct side *s, lt_ms now, const struct lt_event *ev)
{
	size_t dl = locktab_dirty_locks(s->t);
	size_t dc = locktab_dirty_clients(s->t);
	enum lt_err err;
	const char *why;

	free(s->before);
	s->before = NULL;
	if (ev->kind == LT_EV_REQUEST)
		s->before = dump(s->t, NULL);
	lt_fxlist_clear(&s->fx);
	err = locktab_apply(s->t, now, ev, &s->fx);
	assert_false(s->fx.failed);
	why = locktab_check(s->t);
	if (why != NULL)
		fail_msg("locktab_check: %s", why);
	check_generic(s, ev, err, s->before);
	if (err != LT_OK) {
		/* Nothing to journal either. */
		assert_int_equal(locktab_dirty_locks(s->t), dl);
		assert_int_equal(locktab_dirty_clients(s->t), dc);
	}
	free(s->before);
	s->before = NULL;
	return err;
}

/* ---- events ---- */

static struct lt_event
request(enum lt_op op, const char *lock, const char *client,
    const char *session, int64_t conn, bool wait)
{
	struct lt_event ev;
	struct lt_request *rq = &ev.u.req;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LT_EV_REQUEST;
	rq->op = op;
	snprintf(rq->lock, sizeof(rq->lock), "%s", lock);
	snprintf(rq->client, sizeof(rq->client), "%s", client);
	if (session != NULL)
		snprintf(rq->session, sizeof(rq->session), "%s", session);
	else
		snprintf(rq->session, sizeof(rq->session),
		    "sess:%.40s:0123456789abcdef", client);
	snprintf(rq->user, sizeof(rq->user), "user %.40s", client);
	rq->conn = conn;
	rq->wait = wait;
	return ev;
}

static struct lt_event
acq(const char *lock, const char *client)
{
	return request(LT_OP_ACQUIRE, lock, client, NULL, -1, true);
}

static struct lt_event
acq_conn(const char *lock, const char *client, int64_t conn)
{
	return request(LT_OP_ACQUIRE, lock, client, NULL, conn, true);
}

static struct lt_event
try_acq(const char *lock, const char *client)
{
	return request(LT_OP_ACQUIRE, lock, client, NULL, -1, false);
}

static struct lt_event
rel(const char *lock, const char *client)
{
	return request(LT_OP_RELEASE, lock, client, NULL, -1, true);
}

static struct lt_event
act(const char *lock, const char *client)
{
	return request(LT_OP_ACTIVITY, lock, client, NULL, -1, true);
}

static struct lt_event
will(const char *client, const char *session, int64_t conn)
{
	struct lt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LT_EV_WILL;
	snprintf(ev.u.will.client, sizeof(ev.u.will.client), "%s", client);
	if (session != NULL)
		snprintf(ev.u.will.session, sizeof(ev.u.will.session), "%s",
		    session);
	else
		snprintf(ev.u.will.session, sizeof(ev.u.will.session),
		    "sess:%.40s:0123456789abcdef", client);
	ev.u.will.conn = conn;
	return ev;
}

static struct lt_event
brk(const char *lock, const char *reason)
{
	struct lt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LT_EV_BREAK;
	snprintf(ev.u.admin.lock, sizeof(ev.u.admin.lock), "%s", lock);
	snprintf(ev.u.admin.reason, sizeof(ev.u.admin.reason), "%s", reason);
	return ev;
}

static struct lt_event
tick(void)
{
	struct lt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LT_EV_TICK;
	return ev;
}

static struct lt_event
resume(bool rollcall, lt_ms window)
{
	struct lt_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = LT_EV_RESUME;
	ev.u.resume.rollcall = rollcall;
	ev.u.resume.window = window;
	return ev;
}

/* ---- fixtures ---- */

struct fixture {
	struct side s;
};

static int
setup_cfg(void **state, const struct lt_config *cfg)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	side_init(&f->s, cfg);
	*state = f;
	return 0;
}

static int
setup(void **state)
{
	return setup_cfg(state, &default_cfg);
}

static int
setup_small(void **state)
{
	struct lt_config cfg = default_cfg;

	cfg.waiters_per_lock = 3;
	cfg.locks_per_client = 2;
	return setup_cfg(state, &cfg);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	replay_check(&f->s);
	side_free(&f->s);
	free(f);
	return 0;
}

static int
setup_caps(void **state)
{
	struct lt_config cfg = default_cfg;

	cfg.max_clients = 2;
	cfg.max_locks = 2;
	return setup_cfg(state, &cfg);
}

/* Start over with another configuration (checking the old table first). */
static void
reset(struct fixture *f, const struct lt_config *cfg)
{
	replay_check(&f->s);
	side_free(&f->s);
	side_init(&f->s, cfg);
}

#define NWANT(w) (sizeof(w) / sizeof((w)[0]))

/* Apply ev at now; it must be handled (LT_OK); effects exactly as listed. */
#define APPLY(f, now, ev, ...)                                             \
	do {                                                               \
		const struct lt_event ev_ = (ev);                          \
		const struct xfx want_[] = {__VA_ARGS__};                  \
		assert_int_equal(side_apply(&(f)->s, (now), &ev_), LT_OK); \
		expect_fx(&(f)->s.fx, want_, NWANT(want_), true);          \
	} while (0)

/* No effect at all, no flush. */
#define APPLY_NONE(f, now, ev)                                             \
	do {                                                               \
		const struct lt_event ev_ = (ev);                          \
		assert_int_equal(side_apply(&(f)->s, (now), &ev_), LT_OK); \
		expect_fx(&(f)->s.fx, NULL, 0, true);                      \
	} while (0)

/* The same, then flush as after a batch. */
#define STEP(f, now, ev, ...)                   \
	do {                                    \
		APPLY(f, now, ev, __VA_ARGS__); \
		side_flush(&(f)->s);            \
	} while (0)

/* The same, the effects in any order. */
#define STEP_ANY(f, now, ev, ...)                                          \
	do {                                                               \
		const struct lt_event ev_ = (ev);                          \
		const struct xfx want_[] = {__VA_ARGS__};                  \
		assert_int_equal(side_apply(&(f)->s, (now), &ev_), LT_OK); \
		expect_fx(&(f)->s.fx, want_, NWANT(want_), false);         \
		side_flush(&(f)->s);                                       \
	} while (0)

/* No effect at all. */
#define STEP_NONE(f, now, ev)                                              \
	do {                                                               \
		const struct lt_event ev_ = (ev);                          \
		assert_int_equal(side_apply(&(f)->s, (now), &ev_), LT_OK); \
		expect_fx(&(f)->s.fx, NULL, 0, true);                      \
		side_flush(&(f)->s);                                       \
	} while (0)

/* Refused with err: the error event and reply, nothing changed. */
#define STEP_ERR(f, now, ev, err)                                        \
	do {                                                             \
		const struct lt_event ev_ = (ev);                        \
		const struct xfx want_[] = {                             \
		    X_ERROR(ev_.u.req.client, ev_.u.req.lock, err),      \
		    R_ERROR(ev_.u.req.client, ev_.u.req.lock, err)};     \
		char *before_ = dump((f)->s.t, NULL);                    \
		char *after_;                                            \
		assert_int_equal(side_apply(&(f)->s, (now), &ev_), err); \
		expect_fx(&(f)->s.fx, want_, 2, true);                   \
		assert_int_equal(locktab_dirty_locks((f)->s.t), 0);      \
		assert_int_equal(locktab_dirty_clients((f)->s.t), 0);    \
		after_ = dump((f)->s.t, NULL);                           \
		assert_string_equal(after_, before_);                    \
		free(before_);                                           \
		free(after_);                                            \
	} while (0)

/* A stale request: noted and answered, nothing else. */
#define STEP_STALE(f, now, ev)                                                \
	do {                                                                  \
		const struct lt_event ev_ = (ev);                             \
		const struct xfx want_[] = {                                  \
		    N_(LT_N_STALE, ev_.u.req.client, ev_.u.req.lock),         \
		    R_ERROR(ev_.u.req.client, ev_.u.req.lock, LT_ERR_STALE)}; \
		char *before_ = dump((f)->s.t, NULL);                         \
		char *after_;                                                 \
		assert_int_equal(side_apply(&(f)->s, (now), &ev_),            \
		    LT_ERR_STALE);                                            \
		expect_fx(&(f)->s.fx, want_, 2, true);                        \
		assert_int_equal(locktab_dirty_locks((f)->s.t), 0);           \
		assert_int_equal(locktab_dirty_clients((f)->s.t), 0);         \
		after_ = dump((f)->s.t, NULL);                                \
		assert_string_equal(after_, before_);                         \
		free(before_);                                                \
		free(after_);                                                 \
	} while (0)

/* A refusal for a full queue or table: it also asks for a roll call. */
#define STEP_FULL(f, now, ev)                                                 \
	do {                                                                  \
		const struct lt_event ev_ = (ev);                             \
		const struct xfx want_[] = {                                  \
		    N_(LT_N_FULL, ev_.u.req.client, ev_.u.req.lock),          \
		    X_ERROR(ev_.u.req.client, ev_.u.req.lock, LT_ERR_LIMIT),  \
		    R_ERROR(ev_.u.req.client, ev_.u.req.lock, LT_ERR_LIMIT)}; \
		char *before_ = dump((f)->s.t, NULL);                         \
		char *after_;                                                 \
		assert_int_equal(side_apply(&(f)->s, (now), &ev_),            \
		    LT_ERR_LIMIT);                                            \
		expect_fx(&(f)->s.fx, want_, 3, true);                        \
		after_ = dump((f)->s.t, NULL);                                \
		assert_string_equal(after_, before_);                         \
		free(before_);                                                \
		free(after_);                                                 \
	} while (0)

/* Apply and flush, whatever the effects (to set a scene). */
static void
run(struct fixture *f, lt_ms now, struct lt_event ev)
{
	assert_int_equal(side_apply(&f->s, now, &ev), LT_OK);
	side_flush(&f->s);
}

static char *
snap(struct fixture *f)
{
	return dump(f->s.t, NULL);
}

/* The table looks exactly as it did in `before` (which is freed). */
static void
unchanged(struct fixture *f, char *before)
{
	char *now = snap(f);

	assert_string_equal(now, before);
	free(now);
	free(before);
}

static struct lt_lock_rec
view(struct fixture *f, const char *lock)
{
	struct lt_lock_rec r;

	if (!locktab_view(f->s.t, lock, &r))
		fail_msg("lock %s unknown", lock);
	return r;
}

static struct lt_client_rec
view_client(struct fixture *f, const char *client)
{
	struct lt_client_rec r;

	if (!locktab_view_client(f->s.t, client, &r))
		fail_msg("client %s unknown", client);
	return r;
}

static bool
known_client(struct fixture *f, const char *client)
{
	struct lt_client_rec r;

	return locktab_view_client(f->s.t, client, &r);
}

static bool
known_lock(struct fixture *f, const char *lock)
{
	struct lt_lock_rec r;

	return locktab_view(f->s.t, lock, &r);
}

/* The waiters of lock, as "a,b,c" with connected flags as "a-" if not. */
static char *
queue_of(struct fixture *f, const char *lock)
{
	struct lt_lock_rec r = view(f, lock);
	struct sbuf b = {0};

	for (size_t i = 0; i < r.nwaiters; i++)
		sb_printf(&b, "%s%s%s", i > 0 ? "," : "", r.waiters[i].client,
		    r.waiters[i].connected ? "" : "-");
	return sb_take(&b);
}

static void
assert_queue(struct fixture *f, const char *lock, const char *want)
{
	char *q = queue_of(f, lock);

	assert_string_equal(q, want);
	free(q);
}

static void
assert_holder(struct fixture *f, const char *lock, const char *holder,
    uint64_t token)
{
	struct lt_lock_rec r = view(f, lock);

	if (holder == NULL) {
		assert_null(r.holder);
		return;
	}
	assert_non_null(r.holder);
	assert_string_equal(r.holder, holder);
	assert_int_equal(r.token, token);
}

/* The dirty record of lock (before a flush), or fail. */
static bool
dirty_lock_rec(struct fixture *f, const char *lock, struct lt_lock_rec *out)
{
	for (size_t i = 0; i < locktab_dirty_locks(f->s.t); i++) {
		bool keep = locktab_dirty_lock(f->s.t, i, out);

		if (strcmp(out->id, lock) == 0)
			return keep;
	}
	fail_msg("lock %s is not dirty", lock);
	return false;
}

static bool
dirty_client_rec(struct fixture *f, const char *client,
    struct lt_client_rec *out)
{
	for (size_t i = 0; i < locktab_dirty_clients(f->s.t); i++) {
		bool keep = locktab_dirty_client(f->s.t, i, out);

		if (strcmp(out->id, client) == 0)
			return keep;
	}
	fail_msg("client %s is not dirty", client);
	return false;
}

/* ---- configuration ---- */

static void
test_config(void **state)
{
	struct lt_config cfg;
	struct locktab *t;

	(void)state;
	cfg = default_cfg;
	cfg.idle_timeout = 0;
	assert_null(locktab_new(&cfg));
	cfg = default_cfg;
	cfg.idle_warning = -1;
	assert_null(locktab_new(&cfg));
	cfg = default_cfg;
	cfg.grace = -1;
	assert_null(locktab_new(&cfg));
	cfg = default_cfg;
	cfg.waiters_per_lock = 0;
	assert_null(locktab_new(&cfg));
	cfg.waiters_per_lock = MQL_WAITERS_PER_LOCK + 1;
	assert_null(locktab_new(&cfg));
	cfg = default_cfg;
	cfg.locks_per_client = 0;
	assert_null(locktab_new(&cfg));
	cfg.locks_per_client = MQL_LOCKS_PER_CLIENT + 1;
	assert_null(locktab_new(&cfg));

	cfg = default_cfg;
	cfg.grace = 0;
	cfg.idle_warning = 0;
	cfg.waiters_per_lock = 1;
	cfg.locks_per_client = 1;
	t = locktab_new(&cfg);
	assert_non_null(t);
	assert_int_equal(locktab_nlocks(t), 0);
	assert_int_equal(locktab_nclients(t), 0);
	assert_int_equal(locktab_last_token(t), 0);
	assert_int_equal(locktab_next_deadline(t), LT_NEVER);
	assert_null(locktab_check(t));
	locktab_free(t);
	locktab_free(NULL);
}

/* ---- acquire ---- */

static void
test_acquire_free(void **state)
{
	struct fixture *f = *state;
	struct lt_lock_rec r;
	struct lt_client_rec c;

	APPLY(f, T0, acq(L1, A), X_GRANTED(A, L1, 1, T0 + IDLE),
	    R_GRANTED(A, L1, 1));
	/* Before the flush: the new lock and client are to be journaled. */
	assert_int_equal(locktab_dirty_locks(f->s.t), 1);
	assert_int_equal(locktab_dirty_clients(f->s.t), 1);
	assert_true(dirty_lock_rec(f, L1, &r));
	assert_string_equal(r.holder, A);
	assert_string_equal(r.holder_user, "user " A);
	assert_true(r.holder_connected);
	assert_int_equal(r.token, 1);
	assert_int_equal(r.since, T0);
	assert_int_equal(r.idle_deadline, T0 + IDLE);
	assert_false(r.warned);
	assert_int_equal(r.nwaiters, 0);
	assert_true(dirty_client_rec(f, A, &c));
	assert_string_equal(c.session, "sess:" A ":0123456789abcdef");
	assert_int_not_equal(c.state, LT_CS_GONE);
	assert_int_equal(c.max_conn, -1);
	side_flush(&f->s);

	r = view(f, L1);
	assert_string_equal(r.holder, A);
	assert_int_equal(r.idle_deadline, T0 + IDLE);
	assert_int_equal(locktab_last_token(f->s.t), 1);
	assert_int_equal(locktab_nlocks(f->s.t), 1);
	assert_int_equal(locktab_nclients(f->s.t), 1);
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + IDLE - WARN);

	/* conn is remembered from the first request. */
	STEP(f, T0 + 5, acq_conn(L2, B, 7), X_GRANTED(B, L2, 2, T0 + 5 + IDLE),
	    R_GRANTED(B, L2, 2));
	assert_int_equal(view_client(f, B).max_conn, 7);
	/* Try-lock on a free lock is an ordinary grant. */
	STEP(f, T0 + 6, try_acq(L3, C), X_GRANTED(C, L3, 3, T0 + 6 + IDLE),
	    R_GRANTED(C, L3, 3));
}

static void
test_acquire_queued(void **state)
{
	struct fixture *f = *state;
	struct lt_lock_rec r;

	run(f, T0, acq(L1, A));
	STEP(f, T0 + 1, acq(L1, B), X_QUEUED(B, L1, 1), R_QUEUED(B, L1, 1));
	STEP(f, T0 + 2, acq(L1, C), X_QUEUED(C, L1, 2), R_QUEUED(C, L1, 2));
	r = view(f, L1);
	assert_string_equal(r.holder, A);
	assert_int_equal(r.token, 1);
	assert_int_equal(r.since, T0);
	assert_int_equal(r.idle_deadline, T0 + IDLE);
	assert_int_equal(r.nwaiters, 2);
	assert_string_equal(r.waiters[0].client, B);
	assert_string_equal(r.waiters[0].user, "user " B);
	assert_true(r.waiters[0].connected);
	assert_string_equal(r.waiters[1].client, C);
	assert_string_equal(r.waiters[1].user, "user " C);
	/* Waiting does not start a timer. */
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + IDLE - WARN);
	assert_int_equal(locktab_last_token(f->s.t), 1);
}

static void
test_trylock_busy(void **state)
{
	struct fixture *f = *state;
	char *before;

	run(f, T0, try_acq(L1, A));
	run(f, T0, acq(L2, B));

	/* An unknown client: busy, and it is not even remembered. */
	before = snap(f);
	APPLY(f, T0 + 1, try_acq(L1, C), X_BUSY(C, L1), R_(LT_R_BUSY, C, L1));
	assert_int_equal(locktab_dirty_locks(f->s.t), 0);
	assert_int_equal(locktab_dirty_clients(f->s.t), 0);
	side_flush(&f->s);
	unchanged(f, before);
	assert_false(known_client(f, C));

	/* A known client (holding another lock): busy, nothing changes. */
	before = snap(f);
	STEP(f, T0 + 2, try_acq(L1, B), X_BUSY(B, L1), R_(LT_R_BUSY, B, L1));
	unchanged(f, before);

	/* The holder's try-lock is a repeated acquire. */
	STEP(f, T0 + 3, try_acq(L1, A), X_GRANTED(A, L1, 1, T0 + 3 + IDLE),
	    R_GRANTED(A, L1, 1));
	/* A waiter's try-lock is a repeated acquire too. */
	STEP(f, T0 + 4, acq(L1, D), X_QUEUED(D, L1, 1), R_QUEUED(D, L1, 1));
	before = snap(f);
	STEP(f, T0 + 5, try_acq(L1, D), X_QUEUED(D, L1, 1), R_QUEUED(D, L1, 1));
	unchanged(f, before);
}

static void
test_acquire_repeat_holder(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + IDLE - WARN + 5;
	struct lt_lock_rec r;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	STEP(f, T0 + IDLE - WARN, tick(), X_WARN(A, L1, T0 + IDLE));
	assert_true(view(f, L1).warned);

	/* Same token, the idle deadline moves, the warning is re-armed. */
	APPLY(f, t1, acq(L1, A), X_GRANTED(A, L1, 1, t1 + IDLE),
	    R_GRANTED(A, L1, 1));
	assert_true(dirty_lock_rec(f, L1, &r));
	assert_int_equal(r.idle_deadline, t1 + IDLE);
	side_flush(&f->s);
	r = view(f, L1);
	assert_int_equal(r.token, 1);
	assert_int_equal(r.since, T0);
	assert_int_equal(r.idle_deadline, t1 + IDLE);
	assert_false(r.warned);
	assert_int_equal(locktab_last_token(f->s.t), 1);
	assert_int_equal(locktab_next_deadline(f->s.t), t1 + IDLE - WARN);
	assert_queue(f, L1, B);

	/* The old deadline passes without effect. */
	STEP_NONE(f, T0 + IDLE, tick());
	STEP(f, t1 + IDLE - WARN, tick(), X_WARN(A, L1, t1 + IDLE));
}

static void
test_acquire_repeat_waiter(void **state)
{
	struct fixture *f = *state;
	char *before;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L1, C));
	before = snap(f);
	STEP(f, T0 + 3, acq(L1, C), X_QUEUED(C, L1, 2), R_QUEUED(C, L1, 2));
	STEP(f, T0 + 4, acq(L1, B), X_QUEUED(B, L1, 1), R_QUEUED(B, L1, 1));
	unchanged(f, before);
}

/* ---- release ---- */

static void
test_release_by_holder(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000, t2 = T0 + 2000;
	struct lt_client_rec c;
	struct lt_lock_rec r;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L1, C));
	run(f, T0 + 3, acq(L1, D));

	APPLY(f, t1, rel(L1, A), N_(LT_N_RELEASED, A, L1),
	    X_GRANTED(B, L1, 2, t1 + IDLE), X_MOVED(C, L1, 1),
	    X_MOVED(D, L1, 2), R_(LT_R_RELEASED, A, L1));
	/* A holds nothing now: its record is to be deleted. */
	assert_false(dirty_client_rec(f, A, &c));
	side_flush(&f->s);
	assert_false(known_client(f, A));
	r = view(f, L1);
	assert_string_equal(r.holder, B);
	assert_string_equal(r.holder_user, "user " B);
	assert_int_equal(r.token, 2);
	assert_int_equal(r.since, t1);
	assert_int_equal(r.idle_deadline, t1 + IDLE);
	assert_queue(f, L1, C "," D);
	assert_int_equal(locktab_next_deadline(f->s.t), t1 + IDLE - WARN);

	STEP(f, t2, rel(L1, B), N_(LT_N_RELEASED, B, L1),
	    X_GRANTED(C, L1, 3, t2 + IDLE), X_MOVED(D, L1, 1),
	    R_(LT_R_RELEASED, B, L1));
	STEP(f, t2 + 1, rel(L1, C), N_(LT_N_RELEASED, C, L1),
	    X_GRANTED(D, L1, 4, t2 + 1 + IDLE), R_(LT_R_RELEASED, C, L1));

	/* The last holder leaves: the lock is free and forgotten. */
	APPLY(f, t2 + 2, rel(L1, D), N_(LT_N_RELEASED, D, L1),
	    N_(LT_N_FREED, "", L1), R_(LT_R_RELEASED, D, L1));
	assert_false(dirty_lock_rec(f, L1, &r));
	assert_int_equal(r.since, t2 + 2);
	side_flush(&f->s);
	assert_false(known_lock(f, L1));
	assert_int_equal(locktab_nlocks(f->s.t), 0);
	assert_int_equal(locktab_nclients(f->s.t), 0);
	assert_int_equal(locktab_next_deadline(f->s.t), LT_NEVER);
	assert_int_equal(locktab_last_token(f->s.t), 4);

	/* Tokens are never reused after the table empties. */
	STEP(f, t2 + 3, acq(L1, A), X_GRANTED(A, L1, 5, t2 + 3 + IDLE),
	    R_GRANTED(A, L1, 5));
}

static void
test_release_by_waiter(void **state)
{
	struct fixture *f = *state;
	struct lt_lock_rec r;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L1, C));
	run(f, T0 + 3, acq(L1, D));
	run(f, T0 + 4, acq(L1, E));

	STEP(f, T0 + 10, rel(L1, C), N_(LT_N_LEFT_QUEUE, C, L1),
	    X_MOVED(D, L1, 2), X_MOVED(E, L1, 3), R_(LT_R_RELEASED, C, L1));
	assert_queue(f, L1, B "," D "," E);
	assert_false(known_client(f, C));
	STEP(f, T0 + 11, rel(L1, B), N_(LT_N_LEFT_QUEUE, B, L1),
	    X_MOVED(D, L1, 1), X_MOVED(E, L1, 2), R_(LT_R_RELEASED, B, L1));
	STEP(f, T0 + 12, rel(L1, E), N_(LT_N_LEFT_QUEUE, E, L1),
	    R_(LT_R_RELEASED, E, L1));
	assert_queue(f, L1, D);
	/* The holder is untouched. */
	r = view(f, L1);
	assert_string_equal(r.holder, A);
	assert_int_equal(r.token, 1);
	assert_int_equal(r.idle_deadline, T0 + IDLE);
	/* Releasing again is a stranger's release. */
	STEP(f, T0 + 13, rel(L1, E), R_(LT_R_IGNORED, E, L1));
}

static void
test_release_ignored(void **state)
{
	struct fixture *f = *state;
	char *before;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L2, B));
	run(f, T0 + 2, acq(L2, C));
	before = snap(f);
	/* A client the table does not know. */
	STEP(f, T0 + 3, rel(L1, E), R_(LT_R_IGNORED, E, L1));
	assert_false(known_client(f, E));
	/* A known client that neither holds nor waits for the lock. */
	STEP(f, T0 + 4, rel(L1, B), R_(LT_R_IGNORED, B, L1));
	STEP(f, T0 + 5, rel(L1, C), R_(LT_R_IGNORED, C, L1));
	/* A lock the table does not know. */
	STEP(f, T0 + 6, rel(L5, A), R_(LT_R_IGNORED, A, L5));
	STEP(f, T0 + 7, rel(L5, E), R_(LT_R_IGNORED, E, L5));
	assert_false(known_lock(f, L5));
	unchanged(f, before);
}

/* ---- activity ---- */

static void
test_activity(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000, t2;
	char *before;
	struct lt_lock_rec r;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L2, C));

	STEP(f, t1, act(L1, A), R_(LT_R_REFRESHED, A, L1));
	r = view(f, L1);
	assert_int_equal(r.idle_deadline, t1 + IDLE);
	assert_int_equal(r.token, 1);
	assert_int_equal(r.since, T0);
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + 2 + IDLE - WARN);

	before = snap(f);
	STEP(f, t1 + 1, act(L1, B), R_(LT_R_IGNORED, B, L1)); /* waiter */
	STEP(f, t1 + 2, act(L1, C), R_(LT_R_IGNORED, C, L1)); /* stranger */
	STEP(f, t1 + 3, act(L1, E), R_(LT_R_IGNORED, E, L1)); /* unknown */
	STEP(f, t1 + 4, act(L5, A), R_(LT_R_IGNORED, A, L5)); /* no lock */
	unchanged(f, before);
	assert_false(known_client(f, E));
	assert_false(known_lock(f, L5));

	/* Warned, then active again: the warning is re-armed. */
	run(f, t1 + 5, rel(L2, C));
	STEP_NONE(f, t1 + IDLE - WARN - 1, tick());
	STEP(f, t1 + IDLE - WARN, tick(), X_WARN(A, L1, t1 + IDLE));
	assert_true(view(f, L1).warned);
	assert_int_equal(locktab_next_deadline(f->s.t), t1 + IDLE);
	STEP_NONE(f, t1 + IDLE - WARN + 100, tick()); /* only one warning */
	t2 = t1 + IDLE - 10;
	STEP(f, t2, act(L1, A), R_(LT_R_REFRESHED, A, L1));
	assert_false(view(f, L1).warned);
	assert_int_equal(view(f, L1).idle_deadline, t2 + IDLE);
	assert_int_equal(locktab_next_deadline(f->s.t), t2 + IDLE - WARN);
	STEP_NONE(f, t1 + IDLE, tick()); /* the old deadline */
	STEP_NONE(f, t2 + IDLE - WARN - 1, tick());
	STEP(f, t2 + IDLE - WARN, tick(), X_WARN(A, L1, t2 + IDLE));
}

/* ---- session binding ---- */

static void
test_session_mismatch(void **state)
{
	struct fixture *f = *state;
	const struct lt_event bad[] = {
	    request(LT_OP_ACQUIRE, L1, A, SESS_OTHER, 9, true),
	    request(LT_OP_ACQUIRE, L1, A, SESS_OTHER, -1, false),
	    request(LT_OP_RELEASE, L1, A, SESS_OTHER, -1, true),
	    request(LT_OP_ACTIVITY, L1, A, SESS_OTHER, -1, true),
	    request(LT_OP_ACQUIRE, L3, A, SESS_OTHER, -1, true),
	    request(LT_OP_ACQUIRE, L2, A, SESS_OTHER, -1, true),
	    request(LT_OP_RELEASE, L2, A, SESS_OTHER, -1, true),
	    request(LT_OP_RELEASE, L5, A, SESS_OTHER, -1, true),
	    request(LT_OP_ACTIVITY, L5, A, SESS_OTHER, 100, true),
	    /* Waiting binds as much as holding. */
	    request(LT_OP_ACQUIRE, L3, C, SESS_OTHER, -1, true),
	    request(LT_OP_RELEASE, L2, C, SESS_OTHER, -1, true),
	};

	run(f, T0, acq_conn(L1, A, 1));
	run(f, T0 + 1, acq(L2, B));
	run(f, T0 + 2, acq(L2, A));
	run(f, T0 + 3, acq(L2, C));
	for (size_t i = 0; i < NWANT(bad); i++)
		STEP_ERR(f, T0 + 10 + (lt_ms)i, bad[i],
		    LT_ERR_SESSION_MISMATCH);

	/* Refused requests do not bring a disconnected client back. */
	run(f, T0 + 100, will(A, NULL, 1));
	assert_int_equal(view_client(f, A).state, LT_CS_GONE);
	for (size_t i = 0; i < 4; i++)
		STEP_ERR(f, T0 + 101, bad[i], LT_ERR_SESSION_MISMATCH);
	assert_int_equal(view_client(f, A).state, LT_CS_GONE);
	/* ... so the grace still ends. */
	STEP_ANY(f, T0 + 100 + GRACE, tick(),
	    X_REVOKED(A, L1, 1, LT_REASON_DISCONNECT), N_(LT_N_FREED, "", L1),
	    N_(LT_N_DROPPED, A, L2), X_DROPPED(A, L2, LT_REASON_DISCONNECT),
	    X_MOVED(C, L2, 1));
}

static void
test_session_rebind(void **state)
{
	struct fixture *f = *state;
	const struct lt_event a2 =
	    request(LT_OP_ACQUIRE, L1, A, SESS_OTHER, -1, true);
	const struct lt_event a2rel =
	    request(LT_OP_RELEASE, L1, A, SESS_OTHER, -1, true);

	/* Bound, released, journaled: the next session binds afresh. */
	run(f, T0, acq(L1, A));
	run(f, T0 + 1, rel(L1, A));
	assert_false(known_client(f, A));
	STEP(f, T0 + 2, a2, X_GRANTED(A, L1, 2, T0 + 2 + IDLE),
	    R_GRANTED(A, L1, 2));
	assert_string_equal(view_client(f, A).session, SESS_OTHER);
	STEP_ERR(f, T0 + 3, act(L1, A), LT_ERR_SESSION_MISMATCH);
	run(f, T0 + 4, a2rel);

	/* Released and re-bound within one batch (no flush between). */
	APPLY(f, T0 + 5, acq(L2, B), X_GRANTED(B, L2, 3, T0 + 5 + IDLE),
	    R_GRANTED(B, L2, 3));
	APPLY(f, T0 + 6, rel(L2, B), N_(LT_N_RELEASED, B, L2),
	    N_(LT_N_FREED, "", L2), R_(LT_R_RELEASED, B, L2));
	APPLY(f, T0 + 7, request(LT_OP_ACQUIRE, L2, B, SESS_OTHER, -1, true),
	    X_GRANTED(B, L2, 4, T0 + 7 + IDLE), R_GRANTED(B, L2, 4));
	side_flush(&f->s);
	assert_string_equal(view_client(f, B).session, SESS_OTHER);
	STEP_ERR(f, T0 + 8, act(L2, B), LT_ERR_SESSION_MISMATCH);

	/* A waiter that leaves is unbound too. */
	run(f, T0 + 9, acq(L2, C));
	STEP_ERR(f, T0 + 10,
	    request(LT_OP_ACQUIRE, L3, C, SESS_OTHER, -1, true),
	    LT_ERR_SESSION_MISMATCH);
	run(f, T0 + 11, rel(L2, C));
	STEP(f, T0 + 12, request(LT_OP_ACQUIRE, L3, C, SESS_OTHER, -1, true),
	    X_GRANTED(C, L3, 5, T0 + 12 + IDLE), R_GRANTED(C, L3, 5));
	assert_string_equal(view_client(f, C).session, SESS_OTHER);
}

/* ---- wills ---- */

static void
test_will_accepted(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000, t2 = T0 + 2000;
	struct lt_lock_rec r;
	struct lt_client_rec c;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L2, C));

	APPLY(f, t1, will(A, NULL, -1), N_(LT_N_DISCONNECTED, A, ""));
	/* The owner message must show the holder disconnected. */
	assert_true(dirty_lock_rec(f, L1, &r));
	assert_string_equal(r.holder, A);
	assert_false(r.holder_connected);
	assert_int_equal(r.token, 1);
	assert_int_equal(r.nwaiters, 1);
	assert_true(r.waiters[0].connected);
	assert_true(dirty_client_rec(f, A, &c));
	assert_int_equal(c.state, LT_CS_GONE);
	assert_int_equal(c.grace_deadline, t1 + GRACE);
	side_flush(&f->s);
	assert_int_equal(locktab_next_deadline(f->s.t), t1 + GRACE);
	assert_false(view(f, L1).holder_connected);
	/* The lock stays with A during the grace. */
	assert_holder(f, L1, A, 1);

	/* A waiter's will: its place in the queue shows it. */
	APPLY(f, t2, will(B, NULL, -1), N_(LT_N_DISCONNECTED, B, ""));
	assert_true(dirty_lock_rec(f, L1, &r));
	assert_int_equal(r.nwaiters, 1);
	assert_string_equal(r.waiters[0].client, B);
	assert_false(r.waiters[0].connected);
	side_flush(&f->s);
	assert_queue(f, L1, B "-");
	/* C is untouched. */
	assert_true(view(f, L2).holder_connected);
}

static void
test_will_ignored(void **state)
{
	struct fixture *f = *state;
	char *before;

	run(f, T0, acq_conn(L1, A, 5));
	run(f, T0 + 1, acq(L1, B));
	before = snap(f);
	/* Another session. */
	APPLY(f, T0 + 2, will(A, SESS_OTHER, 5), N_(LT_N_WILL_IGNORED, A, ""));
	assert_int_equal(locktab_dirty_locks(f->s.t), 0);
	assert_int_equal(locktab_dirty_clients(f->s.t), 0);
	/* A client the table does not know. */
	STEP(f, T0 + 3, will(E, NULL, 1), N_(LT_N_WILL_IGNORED, E, ""));
	assert_false(known_client(f, E));
	/* A stale connection: lower than the conn of A's request. */
	STEP(f, T0 + 4, will(A, NULL, 4), N_(LT_N_WILL_IGNORED, A, ""));
	STEP(f, T0 + 5, will(A, NULL, 0), N_(LT_N_WILL_IGNORED, A, ""));
	unchanged(f, before);
	/* The current connection's will is accepted. */
	STEP(f, T0 + 6, will(A, NULL, 5), N_(LT_N_DISCONNECTED, A, ""));
	assert_int_equal(view_client(f, A).state, LT_CS_GONE);

	/* A client that just released everything (not yet journaled). */
	run(f, T0 + 7, acq(L2, C));
	APPLY(f, T0 + 8, rel(L2, C), N_(LT_N_RELEASED, C, L2),
	    N_(LT_N_FREED, "", L2), R_(LT_R_RELEASED, C, L2));
	APPLY(f, T0 + 9, will(C, NULL, -1), N_(LT_N_WILL_IGNORED, C, ""));
	side_flush(&f->s);
	assert_false(known_client(f, C));
}

/* conn is ranked against the highest seen in requests and in wills. */
static void
test_will_conn_ranking(void **state)
{
	struct fixture *f = *state;

	run(f, T0, acq_conn(L1, A, 1));
	run(f, T0 + 1, acq(L1, B));
	STEP(f, T0 + 2, will(A, NULL, 7), N_(LT_N_DISCONNECTED, A, ""));
	assert_int_equal(view_client(f, A).max_conn, 7);
	/*
	 * Connection 7 is gone, and so is every older one: a request from
	 * any of them (a copy the broker delivers late) is stale.
	 */
	STEP_STALE(f, T0 + 3, request(LT_OP_ACTIVITY, L1, A, NULL, 6, true));
	STEP_STALE(f, T0 + 3, request(LT_OP_ACQUIRE, L1, A, NULL, 7, true));
	STEP_STALE(f, T0 + 3, request(LT_OP_RELEASE, L1, A, NULL, 1, true));
	assert_int_equal(view_client(f, A).state, LT_CS_GONE);
	/* A newer connection is A back. */
	STEP(f, T0 + 4, request(LT_OP_ACTIVITY, L1, A, NULL, 8, true),
	    N_(LT_N_RECONNECTED, A, ""), R_(LT_R_REFRESHED, A, L1));
	assert_int_equal(view_client(f, A).state, LT_CS_LIVE);
	assert_int_equal(view_client(f, A).max_conn, 8);
	/* A live client's older connections are stale too. */
	STEP_STALE(f, T0 + 5, request(LT_OP_RELEASE, L1, A, NULL, 7, true));
	assert_holder(f, L1, A, 1);
	/* ... and so is a will of an older connection. */
	STEP(f, T0 + 6, will(A, NULL, 7), N_(LT_N_WILL_IGNORED, A, ""));
	assert_int_equal(view_client(f, A).state, LT_CS_LIVE);
	/* Equal to the highest is not stale. */
	STEP(f, T0 + 7, will(A, NULL, 8), N_(LT_N_DISCONNECTED, A, ""));
	run(f, T0 + 8, request(LT_OP_ACQUIRE, L1, A, NULL, 9, true));
	assert_int_equal(view_client(f, A).max_conn, 9);
	/* A will without conn is never stale, nor a request without one. */
	STEP(f, T0 + 9, will(A, NULL, -1), N_(LT_N_DISCONNECTED, A, ""));
	assert_int_equal(view_client(f, A).max_conn, 9);
	STEP(f, T0 + 10, request(LT_OP_ACTIVITY, L1, A, NULL, -1, true),
	    N_(LT_N_RECONNECTED, A, ""), R_(LT_R_REFRESHED, A, L1));
}

static void
test_will_while_disconnected(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000;

	run(f, T0, acq_conn(L1, A, 1));
	run(f, T0 + 1, acq(L1, B));
	run(f, t1, will(A, NULL, 1));
	assert_int_equal(view_client(f, A).grace_deadline, t1 + GRACE);

	/* A second will (even of a newer connection) does not extend. */
	{
		const struct lt_event ev = will(A, NULL, 2);

		assert_int_equal(side_apply(&f->s, t1 + 5000, &ev), LT_OK);
	}
	for (size_t i = 0; i < f->s.fx.n; i++) {
		const struct lt_fx *e = &f->s.fx.v[i];

		assert_int_equal(e->kind, LT_FX_NOTE);
		assert_int_not_equal(e->what.note, LT_N_DISCONNECTED);
	}
	side_flush(&f->s);
	assert_int_equal(view_client(f, A).state, LT_CS_GONE);
	assert_int_equal(view_client(f, A).grace_deadline, t1 + GRACE);
	assert_int_equal(locktab_next_deadline(f->s.t), t1 + GRACE);
	STEP_NONE(f, t1 + GRACE - 1, tick());
	STEP(f, t1 + GRACE, tick(), X_REVOKED(A, L1, 1, LT_REASON_DISCONNECT),
	    X_GRANTED(B, L1, 2, t1 + GRACE + IDLE));
}

/* ---- grace ---- */

/*
 * A holds L1 (B waits) and waits for L2 (held by C, D behind A) and L3 (held
 * by B, E behind A).  A's will comes at t1; the grace ends at t1 + GRACE.
 */
static void
grace_scene(struct fixture *f, lt_ms t1)
{
	run(f, T0, acq(L1, A));     /* token 1 */
	run(f, T0 + 1, acq(L1, B)); /* B 1st */
	run(f, T0 + 2, acq(L2, C)); /* token 2 */
	run(f, T0 + 3, acq(L2, A)); /* A 1st */
	run(f, T0 + 4, acq(L2, D)); /* D 2nd */
	run(f, T0 + 5, acq(L3, B)); /* token 3 */
	run(f, T0 + 6, acq(L3, A)); /* A 1st */
	run(f, T0 + 7, acq(L3, E)); /* E 2nd */
	run(f, t1, will(A, NULL, -1));
}

static void
test_grace_expiry(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000;

	for (lt_ms off = 0; off <= 1; off++) {
		lt_ms now = t1 + GRACE + off;

		reset(f, &default_cfg);
		grace_scene(f, t1);
		STEP_NONE(f, t1 + GRACE - 1, tick());
		assert_holder(f, L1, A, 1);
		assert_int_equal(view_client(f, A).state, LT_CS_GONE);
		assert_queue(f, L2, A "-," D);

		/* A loses everything: L1 goes on, A leaves both queues. */
		STEP_ANY(f, now, tick(),
		    X_REVOKED(A, L1, 1, LT_REASON_DISCONNECT),
		    X_GRANTED(B, L1, 4, now + IDLE), N_(LT_N_DROPPED, A, L2),
		    X_DROPPED(A, L2, LT_REASON_DISCONNECT), X_MOVED(D, L2, 1),
		    N_(LT_N_DROPPED, A, L3),
		    X_DROPPED(A, L3, LT_REASON_DISCONNECT), X_MOVED(E, L3, 1));
		assert_false(known_client(f, A));
		assert_holder(f, L1, B, 4);
		assert_queue(f, L1, "");
		assert_holder(f, L2, C, 2);
		assert_queue(f, L2, D);
		assert_holder(f, L3, B, 3);
		assert_queue(f, L3, E);
		assert_int_equal(view(f, L1).since, now);
		STEP_NONE(f, now + 1, tick());
	}
}

/* A holds L1 with B waiting; A's will at t1. */
static void
reconnect_scene(struct fixture *f, lt_ms t1)
{
	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L3, C));
	run(f, t1, will(A, NULL, -1));
	assert_int_equal(view_client(f, A).state, LT_CS_GONE);
}

/* After A is back: it still holds L1 with token 1, and no grace runs. */
static void
reconnect_check(struct fixture *f, lt_ms t1)
{
	struct lt_client_rec c = view_client(f, A);

	assert_int_not_equal(c.state, LT_CS_GONE);
	assert_holder(f, L1, A, 1);
	assert_true(view(f, L1).holder_connected);
	assert_queue(f, L1, B);
	STEP_NONE(f, t1 + GRACE, tick());
	STEP_NONE(f, t1 + GRACE + 1, tick());
	assert_holder(f, L1, A, 1);
}

static void
test_reconnect_via_acquire(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000, now = t1 + GRACE - 1;

	reconnect_scene(f, t1);
	STEP(f, now, acq(L1, A), N_(LT_N_RECONNECTED, A, ""),
	    X_GRANTED(A, L1, 1, now + IDLE), R_GRANTED(A, L1, 1));
	reconnect_check(f, t1);
}

static void
test_reconnect_via_activity(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000, now = t1 + GRACE - 1;

	reconnect_scene(f, t1);
	STEP(f, now, act(L1, A), N_(LT_N_RECONNECTED, A, ""),
	    R_(LT_R_REFRESHED, A, L1));
	assert_int_equal(view(f, L1).idle_deadline, now + IDLE);
	reconnect_check(f, t1);
}

static void
test_reconnect_via_other_requests(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000;

	/* An acquire of another, free lock. */
	reconnect_scene(f, t1);
	STEP(f, t1 + 1, acq(L2, A), N_(LT_N_RECONNECTED, A, ""),
	    X_GRANTED(A, L2, 3, t1 + 1 + IDLE), R_GRANTED(A, L2, 3));
	reconnect_check(f, t1);

	/* A try-lock that finds the lock busy. */
	reset(f, &default_cfg);
	reconnect_scene(f, t1);
	STEP(f, t1 + 1, try_acq(L3, A), N_(LT_N_RECONNECTED, A, ""),
	    X_BUSY(A, L3), R_(LT_R_BUSY, A, L3));
	reconnect_check(f, t1);

	/* Activity and release on a lock A has nothing to do with. */
	reset(f, &default_cfg);
	reconnect_scene(f, t1);
	STEP(f, t1 + 1, act(L3, A), N_(LT_N_RECONNECTED, A, ""),
	    R_(LT_R_IGNORED, A, L3));
	reconnect_check(f, t1);

	reset(f, &default_cfg);
	reconnect_scene(f, t1);
	STEP(f, t1 + 1, rel(L3, A), N_(LT_N_RECONNECTED, A, ""),
	    R_(LT_R_IGNORED, A, L3));
	reconnect_check(f, t1);

	/* Activity on a lock nobody holds. */
	reset(f, &default_cfg);
	reconnect_scene(f, t1);
	STEP(f, t1 + 1, act(L5, A), N_(LT_N_RECONNECTED, A, ""),
	    R_(LT_R_IGNORED, A, L5));
	reconnect_check(f, t1);
}

/*
 * A release naming a lock the table does not know is still a valid request
 * with the bound session: topics.md says every such request tells the
 * coordinator the client is alive.
 */
static void
test_reconnect_via_release_of_unknown_lock(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000;

	reconnect_scene(f, t1);
	STEP(f, t1 + 1, rel(L5, A), N_(LT_N_RECONNECTED, A, ""),
	    R_(LT_R_IGNORED, A, L5));
	reconnect_check(f, t1);
}

/* ---- disconnected waiters ---- */

static void
test_disconnected_waiter_skipped(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000, t2 = T0 + 2000, t3 = T0 + 3000;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L1, C));
	run(f, T0 + 3, acq(L1, D));
	run(f, t1, will(B, NULL, -1));

	/* B is skipped and keeps its place; D moves up behind it. */
	STEP(f, t2, rel(L1, A), N_(LT_N_RELEASED, A, L1),
	    X_GRANTED(C, L1, 2, t2 + IDLE), X_MOVED(D, L1, 2),
	    R_(LT_R_RELEASED, A, L1));
	assert_holder(f, L1, C, 2);
	assert_queue(f, L1, B "-," D);

	/* B comes back within its grace, still first in line. */
	STEP(f, t3, act(L1, B), N_(LT_N_RECONNECTED, B, ""),
	    R_(LT_R_IGNORED, B, L1));
	assert_queue(f, L1, B "," D);
	STEP_NONE(f, t1 + GRACE, tick());
	STEP(f, t1 + GRACE + 1, rel(L1, C), N_(LT_N_RELEASED, C, L1),
	    X_GRANTED(B, L1, 3, t1 + GRACE + 1 + IDLE), X_MOVED(D, L1, 1),
	    R_(LT_R_RELEASED, C, L1));
}

/* A holds L1, B waits; B's will at t1, then A releases at t2. */
static void
free_with_waiter_scene(struct fixture *f, lt_ms t1, lt_ms t2)
{
	struct lt_lock_rec r;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, t1, will(B, NULL, -1));
	/* No connected waiter: the lock stays free, B keeps its place. */
	APPLY(f, t2, rel(L1, A), N_(LT_N_RELEASED, A, L1),
	    R_(LT_R_RELEASED, A, L1));
	assert_true(dirty_lock_rec(f, L1, &r));
	assert_null(r.holder);
	assert_int_equal(r.since, t2);
	assert_int_equal(r.nwaiters, 1);
	assert_false(r.waiters[0].connected);
	side_flush(&f->s);
	assert_holder(f, L1, NULL, 0);
	assert_queue(f, L1, B "-");
	assert_int_equal(locktab_next_deadline(f->s.t), t1 + GRACE);
}

static void
test_returning_waiter_granted_at_once(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000, t2 = T0 + 2000, t3 = t1 + GRACE - 1;

	free_with_waiter_scene(f, t1, t2);
	STEP(f, t3, acq(L1, B), N_(LT_N_RECONNECTED, B, ""),
	    X_GRANTED(B, L1, 2, t3 + IDLE), R_GRANTED(B, L1, 2));
	assert_holder(f, L1, B, 2);
	assert_queue(f, L1, "");
	assert_int_equal(view(f, L1).since, t3);
	STEP_NONE(f, t1 + GRACE, tick());

	/* Back through activity instead: granted too. */
	reset(f, &default_cfg);
	free_with_waiter_scene(f, t1, t2);
	APPLY(f, t3, act(L1, B), N_(LT_N_RECONNECTED, B, ""),
	    X_GRANTED(B, L1, 2, t3 + IDLE), R_(LT_R_REFRESHED, B, L1));
	side_flush(&f->s);
	assert_holder(f, L1, B, 2);
}

static void
test_free_lock_with_disconnected_waiter(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000, t2 = T0 + 2000;
	char *before;

	/* Someone new takes the free lock at once, skipping B. */
	free_with_waiter_scene(f, t1, t2);
	STEP(f, t2 + 1, acq(L1, E), X_GRANTED(E, L1, 2, t2 + 1 + IDLE),
	    R_GRANTED(E, L1, 2));
	assert_queue(f, L1, B "-");
	/* B returns and finds itself first in line. */
	STEP(f, t2 + 2, acq(L1, B), N_(LT_N_RECONNECTED, B, ""),
	    X_QUEUED(B, L1, 1), R_QUEUED(B, L1, 1));
	assert_queue(f, L1, B);

	/* B never returns: dropped, and the lock is forgotten. */
	reset(f, &default_cfg);
	free_with_waiter_scene(f, t1, t2);
	before = snap(f);
	STEP(f, t1 + 1, brk(L1, "nobody holds it"), R_(LT_R_IGNORED, "", L1));
	unchanged(f, before);
	STEP_NONE(f, t1 + GRACE - 1, tick());
	STEP(f, t1 + GRACE, tick(), N_(LT_N_DROPPED, B, L1),
	    X_DROPPED(B, L1, LT_REASON_DISCONNECT), N_(LT_N_FREED, "", L1));
	assert_false(known_lock(f, L1));
	assert_int_equal(locktab_nclients(f->s.t), 0);
	assert_int_equal(locktab_next_deadline(f->s.t), LT_NEVER);
}

/* ---- idle timeout ---- */

static void
test_idle_warning_and_revoke(void **state)
{
	struct fixture *f = *state;
	lt_ms dl = T0 + IDLE;

	for (lt_ms wo = 0; wo <= 1; wo++) {
		for (lt_ms ro = 0; ro <= 1; ro++) {
			reset(f, &default_cfg);
			run(f, T0, acq(L1, A));
			run(f, T0 + 1, acq(L1, B));
			run(f, T0 + 2, acq(L1, C));
			STEP_NONE(f, dl - WARN - 1, tick());
			assert_false(view(f, L1).warned);
			STEP(f, dl - WARN + wo, tick(), X_WARN(A, L1, dl));
			assert_true(view(f, L1).warned);
			assert_int_equal(locktab_next_deadline(f->s.t), dl);
			STEP_NONE(f, dl - 1, tick());
			assert_holder(f, L1, A, 1);
			STEP(f, dl + ro, tick(),
			    X_REVOKED(A, L1, 1, LT_REASON_IDLE),
			    X_GRANTED(B, L1, 2, dl + ro + IDLE),
			    X_MOVED(C, L1, 1));
			assert_false(known_client(f, A));
			assert_holder(f, L1, B, 2);
			assert_false(view(f, L1).warned);
			assert_int_equal(locktab_next_deadline(f->s.t),
			    dl + ro + IDLE - WARN);
		}
	}
}

static void
test_idle_late_tick(void **state)
{
	struct fixture *f = *state;

	/* The first tick comes after the deadline: revoked, no warning. */
	run(f, T0, acq(L1, A));
	STEP(f, T0 + IDLE + 5, tick(), X_REVOKED(A, L1, 1, LT_REASON_IDLE),
	    N_(LT_N_FREED, "", L1));
	assert_false(known_lock(f, L1));
	assert_int_equal(locktab_next_deadline(f->s.t), LT_NEVER);
}

static void
test_idle_warning_not_shorter(void **state)
{
	struct fixture *f = *state;
	struct lt_config cfg = default_cfg;

	/* Warning period equal to the timeout: warned at the grant. */
	cfg.idle_timeout = 1000;
	cfg.idle_warning = 1000;
	reset(f, &cfg);
	run(f, T0, acq(L1, A));
	assert_true(locktab_next_deadline(f->s.t) <= T0);
	STEP(f, T0, tick(), X_WARN(A, L1, T0 + 1000));
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + 1000);
	/* Activity re-arms it: warned again at the next tick. */
	run(f, T0 + 500, act(L1, A));
	STEP(f, T0 + 500, tick(), X_WARN(A, L1, T0 + 1500));
	STEP_NONE(f, T0 + 1499, tick());
	STEP(f, T0 + 1500, tick(), X_REVOKED(A, L1, 1, LT_REASON_IDLE),
	    N_(LT_N_FREED, "", L1));

	/* Longer than the timeout: the same. */
	cfg.idle_warning = 5000;
	reset(f, &cfg);
	run(f, T0, acq(L1, A));
	run(f, T0, acq(L1, B));
	STEP(f, T0 + 1, tick(), X_WARN(A, L1, T0 + 1000));
	/* A grant by hand-on warns at once as well. */
	run(f, T0 + 2, rel(L1, A));
	STEP(f, T0 + 2, tick(), X_WARN(B, L1, T0 + 1002));

	/* No warning period: no warning, revoked at the deadline. */
	cfg.idle_warning = 0;
	reset(f, &cfg);
	run(f, T0, acq(L1, A));
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + 1000);
	STEP_NONE(f, T0 + 999, tick());
	STEP(f, T0 + 1000, tick(), X_REVOKED(A, L1, 1, LT_REASON_IDLE),
	    N_(LT_N_FREED, "", L1));
}

static void
test_idle_runs_while_disconnected(void **state)
{
	struct fixture *f = *state;
	struct lt_config cfg = default_cfg;
	lt_ms dl = T0 + IDLE;

	cfg.grace = 2 * IDLE;
	reset(f, &cfg);
	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, will(A, NULL, -1));
	STEP(f, dl - WARN, tick(), X_WARN(A, L1, dl));
	STEP_NONE(f, dl - 1, tick());
	STEP(f, dl, tick(), X_REVOKED(A, L1, 1, LT_REASON_IDLE),
	    X_GRANTED(B, L1, 2, dl + IDLE));
	/* A held nothing else: gone, and its grace timer with it. */
	assert_false(known_client(f, A));
	assert_int_equal(locktab_next_deadline(f->s.t), dl + IDLE - WARN);
	STEP(f, dl + IDLE - WARN, tick(), X_WARN(B, L1, dl + IDLE));
}

/* ---- admin break ---- */

static void
test_admin_break(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000;
	char reason[MQL_REASON_MAX + 1];
	char *before;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L1, C));
	STEP(f, t1, brk(L1, "stuck since Friday"),
	    X_REVOKED_ADMIN(A, L1, 1, "stuck since Friday"),
	    X_GRANTED(B, L1, 2, t1 + IDLE), X_MOVED(C, L1, 1),
	    R_REVOKED(L1, 1));
	assert_false(known_client(f, A));
	assert_holder(f, L1, B, 2);

	/* No reason; a disconnected holder loses the lock just the same. */
	run(f, t1 + 1, will(B, NULL, -1));
	STEP(f, t1 + 2, brk(L1, ""), X_REVOKED_ADMIN(B, L1, 2, ""),
	    X_GRANTED(C, L1, 3, t1 + 2 + IDLE), R_REVOKED(L1, 2));
	assert_false(known_client(f, B));

	/* The longest reason arrives whole. */
	memset(reason, 'r', MQL_REASON_MAX);
	reason[MQL_REASON_MAX] = '\0';
	STEP(f, t1 + 3, brk(L1, reason), X_REVOKED_ADMIN(C, L1, 3, reason),
	    N_(LT_N_FREED, "", L1), R_REVOKED(L1, 3));
	assert_false(known_lock(f, L1));

	/* Nobody holds it, or it does not exist: ignored. */
	before = snap(f);
	STEP(f, t1 + 4, brk(L1, "again"), R_(LT_R_IGNORED, "", L1));
	STEP(f, t1 + 5, brk(L5, "unknown"), R_(LT_R_IGNORED, "", L5));
	unchanged(f, before);
}

/* ---- tokens and order ---- */

static void
test_tokens_increasing(void **state)
{
	struct fixture *f = *state;
	const char *locks[] = {L1, L2, L3};
	const char *clients[] = {A, B, C, D};
	uint64_t last = 0;
	lt_ms now = T0;

	for (int round = 0; round < 40; round++) {
		uint64_t tok[3];

		for (int i = 0; i < 3; i++) {
			const char *c = clients[(round + i) % 4];
			struct lt_lock_rec r;

			run(f, now++, acq(locks[i], c));
			r = view(f, locks[i]);
			assert_string_equal(r.holder, c);
			/* Larger than every token before, whatever lock. */
			assert_true(r.token > last);
			last = r.token;
			tok[i] = r.token;
			/* A repeated acquire keeps the token. */
			STEP(f, now, acq(locks[i], c),
			    X_GRANTED(c, locks[i], tok[i], now + IDLE),
			    R_GRANTED(c, locks[i], tok[i]));
			now++;
		}
		/* Hand-on by release, break and idle timeout. */
		run(f, now++, acq(L1, E));
		if (round % 3 == 0)
			run(f, now++, rel(L1, clients[round % 4]));
		else if (round % 3 == 1)
			run(f, now++, brk(L1, ""));
		else
			run(f, now += IDLE, tick());
		/* Whichever way, E gets the next token. */
		assert_holder(f, L1, E, last + 1);
		last++;
		for (int i = 0; i < 3; i++) {
			struct lt_lock_rec r;

			if (!locktab_view(f->s.t, locks[i], &r) ||
			    r.holder == NULL)
				continue;
			run(f, now++, rel(locks[i], r.holder));
		}
		assert_int_equal(locktab_nlocks(f->s.t), 0);
		assert_int_equal(locktab_last_token(f->s.t), last);
	}
}

static void
test_fifo_many(void **state)
{
	struct fixture *f = *state;
	enum { N = 100 };
	char names[N][16];
	struct xfx *want = calloc(N + 3, sizeof(*want));
	lt_ms now = T0 + 1000;
	uint64_t tok = 1;
	size_t head = 0;

	assert_non_null(want);
	run(f, T0, acq(L1, A));
	for (size_t i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "w%03zu", i);
		STEP(f, T0 + 1 + (lt_ms)i, acq(L1, names[i]),
		    X_QUEUED(names[i], L1, (uint32_t)(i + 1)),
		    R_QUEUED(names[i], L1, (uint32_t)(i + 1)));
	}
	/* Each release hands the lock to the first in line, in order. */
	for (int round = 0; round < 5; round++) {
		const char *holder = round == 0 ? A : names[head - 1];
		size_t n = 0;

		want[n++] = (struct xfx)N_(LT_N_RELEASED, holder, L1);
		want[n++] =
		    (struct xfx)X_GRANTED(names[head], L1, tok + 1, now + IDLE);
		for (size_t i = head + 1; i < N; i++)
			want[n++] = (struct xfx)X_MOVED(names[i], L1,
			    (uint32_t)(i - head));
		want[n++] = (struct xfx)R_(LT_R_RELEASED, holder, L1);
		{
			const struct lt_event ev = rel(L1, holder);

			assert_int_equal(side_apply(&f->s, now, &ev), LT_OK);
		}
		expect_fx(&f->s.fx, want, n, true);
		side_flush(&f->s);
		tok++;
		head++;
		now++;
	}
	/* One from the middle leaves: only those behind it move. */
	{
		const struct lt_event ev = rel(L1, names[50]);
		size_t n = 0;

		want[n++] = (struct xfx)N_(LT_N_LEFT_QUEUE, names[50], L1);
		for (size_t i = 51; i < N; i++)
			want[n++] = (struct xfx)X_MOVED(names[i], L1,
			    (uint32_t)(i - head));
		want[n++] = (struct xfx)R_(LT_R_RELEASED, names[50], L1);
		assert_int_equal(side_apply(&f->s, now, &ev), LT_OK);
		expect_fx(&f->s.fx, want, n, true);
		side_flush(&f->s);
	}
	{
		struct lt_lock_rec r = view(f, L1);
		size_t k = 0;

		assert_int_equal(r.nwaiters, N - head - 1);
		for (size_t i = head; i < N; i++) {
			if (i == 50)
				continue;
			assert_string_equal(r.waiters[k].client, names[i]);
			k++;
		}
	}
	free(want);
}

/* ---- limits ---- */

static void
test_limits(void **state)
{
	struct fixture *f = *state; /* 3 waiters per lock, 2 locks a client */
	lt_ms now = T0 + 100;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L1, C));
	run(f, T0 + 3, acq(L1, D));

	/* The queue is full. */
	STEP_FULL(f, now++, acq(L1, E));
	assert_false(known_client(f, E));
	/* A try-lock is still only busy. */
	STEP(f, now, try_acq(L1, E), X_BUSY(E, L1), R_(LT_R_BUSY, E, L1));
	now++;

	/* A client at its limit of locks. */
	STEP(f, now, acq(L2, B), X_GRANTED(B, L2, 2, now + IDLE),
	    R_GRANTED(B, L2, 2));
	now++;
	STEP_ERR(f, now++, acq(L3, B), LT_ERR_LIMIT);
	STEP_ERR(f, now++, try_acq(L3, B), LT_ERR_LIMIT);
	/* ... may still repeat what it has and show activity. */
	STEP(f, now, acq(L1, B), X_QUEUED(B, L1, 1), R_QUEUED(B, L1, 1));
	now++;
	STEP(f, now, acq(L2, B), X_GRANTED(B, L2, 2, now + IDLE),
	    R_GRANTED(B, L2, 2));
	now++;
	STEP(f, now, act(L2, B), R_(LT_R_REFRESHED, B, L2));
	now++;

	/* The holder of a full lock at its own limit. */
	STEP(f, now, acq(L3, A), X_GRANTED(A, L3, 3, now + IDLE),
	    R_GRANTED(A, L3, 3));
	now++;
	STEP_ERR(f, now++, acq(L4, A), LT_ERR_LIMIT);
	STEP(f, now, acq(L1, A), X_GRANTED(A, L1, 1, now + IDLE),
	    R_GRANTED(A, L1, 1));
	now++;

	/* A place frees up. */
	run(f, now++, rel(L1, D));
	STEP(f, now, acq(L1, E), X_QUEUED(E, L1, 3), R_QUEUED(E, L1, 3));
	now++;
	STEP_FULL(f, now++, acq(L1, F));

	/* Releasing one lock makes room for another. */
	run(f, now++, rel(L3, A));
	STEP(f, now, acq(L4, A), X_GRANTED(A, L4, 4, now + IDLE),
	    R_GRANTED(A, L4, 4));
}

/*
 * A request refused for want of room changes nothing: the gone client
 * stays gone and keeps its grace, its conn is not raised, and it is
 * granted nothing.
 */
static void
test_limit_refusal_changes_nothing(void **state)
{
	struct fixture *f = *state; /* 3 waiters per lock, 2 locks a client */
	struct lt_client_rec c;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq_conn(L1, B, 3));
	run(f, T0 + 2, acq_conn(L2, B, 3));
	run(f, T0 + 3, will(B, NULL, 3));
	run(f, T0 + 4, rel(L1, A));
	/* L1 free with B, gone, first in line; B at its limit of locks. */
	assert_holder(f, L1, NULL, 0);
	STEP_ERR(f, T0 + 5, acq_conn(L3, B, 4), LT_ERR_LIMIT);
	c = view_client(f, B);
	assert_int_equal(c.state, LT_CS_GONE);
	assert_int_equal(c.max_conn, 3);
	assert_int_equal(c.grace_deadline, T0 + 3 + GRACE);
	assert_holder(f, L1, NULL, 0);
	assert_queue(f, L1, B "-");
}

static void
test_limits_free_lock_full_queue(void **state)
{
	struct fixture *f = *state; /* 3 waiters per lock, 2 locks a client */

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L1, C));
	run(f, T0 + 3, acq(L1, D));
	run(f, T0 + 4, will(B, NULL, -1));
	run(f, T0 + 5, will(C, NULL, -1));
	run(f, T0 + 6, will(D, NULL, -1));
	run(f, T0 + 7, rel(L1, A));
	assert_holder(f, L1, NULL, 0);
	assert_queue(f, L1, B "-," C "-," D "-");
	/* A newcomer takes the free lock: it does not join the queue. */
	STEP(f, T0 + 8, acq(L1, E), X_GRANTED(E, L1, 2, T0 + 8 + IDLE),
	    R_GRANTED(E, L1, 2));
	STEP_FULL(f, T0 + 9, acq(L1, F));
}

/* Caps on all clients and all locks: newcomers refused, members served. */
static void
test_limits_total_clients_and_locks(void **state)
{
	struct fixture *f = *state; /* at most 2 clients and 2 locks */

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L2, B));
	/* A third client, on a known lock or a new one. */
	STEP_FULL(f, T0 + 2, acq(L1, C));
	assert_false(known_client(f, C));
	/* A third lock, by a known client. */
	STEP_FULL(f, T0 + 3, acq(L3, A));
	/* Known clients on known locks are fine. */
	STEP(f, T0 + 4, acq(L2, A), X_QUEUED(A, L2, 1), R_QUEUED(A, L2, 1));
	/* Room again once B and its lock are gone (after the flush). */
	run(f, T0 + 5, rel(L2, A));
	run(f, T0 + 6, rel(L2, B));
	STEP(f, T0 + 7, acq(L3, C), X_GRANTED(C, L3, 3, T0 + 7 + IDLE),
	    R_GRANTED(C, L3, 3));
}

/* ---- deadlines and ticks ---- */

static void
test_next_deadline(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(locktab_next_deadline(f->s.t), LT_NEVER);
	STEP_NONE(f, T0, tick());
	run(f, T0, acq(L1, A));
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + IDLE - WARN);
	run(f, T0 + 100, acq(L2, B));
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + IDLE - WARN);
	run(f, T0 + 200, will(B, NULL, -1));
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + 200 + GRACE);
	STEP(f, T0 + 200 + GRACE, tick(),
	    X_REVOKED(B, L2, 2, LT_REASON_DISCONNECT), N_(LT_N_FREED, "", L2));
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + IDLE - WARN);
	STEP(f, T0 + IDLE - WARN, tick(), X_WARN(A, L1, T0 + IDLE));
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + IDLE);
	run(f, T0 + IDLE - 1, rel(L1, A));
	assert_int_equal(locktab_next_deadline(f->s.t), LT_NEVER);
}

static void
test_tick_batch(void **state)
{
	struct fixture *f = *state;
	struct lt_config cfg = default_cfg;
	const char *clients[] = {A, B, C, D, E};
	const char *locks[] = {L1, L2, L3, L4, L5};
	int warned[5] = {0};
	size_t per_tick[] = {2, 2, 1, 0};
	lt_ms due = T0 + IDLE - WARN;

	cfg.tick_batch = 2;
	reset(f, &cfg);
	for (int i = 0; i < 5; i++)
		run(f, T0, acq(locks[i], clients[i]));
	for (size_t k = 0; k < NWANT(per_tick); k++) {
		const struct lt_event ev = tick();

		assert_int_equal(side_apply(&f->s, due + 1, &ev), LT_OK);
		assert_int_equal(f->s.fx.n, per_tick[k]);
		for (size_t i = 0; i < f->s.fx.n; i++) {
			const struct lt_fx *e = &f->s.fx.v[i];

			assert_int_equal(e->kind, LT_FX_EVENT);
			assert_int_equal(e->what.event, LT_E_IDLE_WARNING);
			assert_int_equal(e->deadline, T0 + IDLE);
			assert_true(e->lock[0] != '\0');
			warned[e->lock[4] - '1']++;
		}
		side_flush(&f->s);
		/* What is left stays due. */
		if (k < 2)
			assert_true(locktab_next_deadline(f->s.t) <= due);
	}
	for (int i = 0; i < 5; i++)
		assert_int_equal(warned[i], 1);
	assert_int_equal(locktab_next_deadline(f->s.t), T0 + IDLE);
	/* Revocations are bounded the same way. */
	for (size_t k = 0; k < NWANT(per_tick); k++) {
		const struct lt_event ev = tick();

		assert_int_equal(side_apply(&f->s, T0 + IDLE, &ev), LT_OK);
		assert_int_equal(count_fx(&f->s.fx, LT_FX_EVENT), per_tick[k]);
		side_flush(&f->s);
	}
	assert_int_equal(locktab_nlocks(f->s.t), 0);
}

/* ---- after an outage ---- */

static void
test_resume_floors_deadlines(void **state)
{
	struct fixture *f = *state;
	lt_ms r = T0 + IDLE + 9200; /* the coordinator is back */
	lt_ms l2dl = T0 + IDLE - 1000 + IDLE;
	struct lt_lock_rec lr;
	struct lt_client_rec cr;
	const struct lt_event ev = tick();

	run(f, T0, acq(L1, A));
	STEP(f, T0 + IDLE - WARN, tick(), X_WARN(A, L1, T0 + IDLE));
	run(f, T0 + IDLE - 1000, acq(L2, B));
	run(f, T0 + IDLE - 950, acq(L2, C));
	run(f, T0 + IDLE - 900, will(C, NULL, -1));
	/* Nothing is decided during the outage; A's deadline and C's grace
	 * pass unseen. */
	APPLY_NONE(f, r, resume(false, 0));
	assert_true(dirty_lock_rec(f, L1, &lr));
	assert_int_equal(lr.idle_deadline, r + GRACE);
	assert_true(dirty_client_rec(f, C, &cr));
	assert_int_equal(cr.state, LT_CS_GONE);
	assert_int_equal(cr.grace_deadline, r + GRACE);
	side_flush(&f->s);
	assert_int_equal(view(f, L1).idle_deadline, r + GRACE);
	assert_int_equal(view(f, L2).idle_deadline, l2dl); /* later: kept */
	assert_int_equal(view_client(f, C).grace_deadline, r + GRACE);

	/* Until then nobody loses anything (a new warning is allowed). */
	assert_int_equal(side_apply(&f->s, r + GRACE - 1, &ev), LT_OK);
	for (size_t i = 0; i < f->s.fx.n; i++) {
		assert_int_equal(f->s.fx.v[i].kind, LT_FX_EVENT);
		assert_int_equal(f->s.fx.v[i].what.event, LT_E_IDLE_WARNING);
		assert_int_equal(f->s.fx.v[i].deadline, r + GRACE);
	}
	side_flush(&f->s);
	assert_holder(f, L1, A, 1);
	assert_queue(f, L2, C "-");
	STEP_ANY(f, r + GRACE, tick(), X_REVOKED(A, L1, 1, LT_REASON_IDLE),
	    N_(LT_N_FREED, "", L1), N_(LT_N_DROPPED, C, L2),
	    X_DROPPED(C, L2, LT_REASON_DISCONNECT));
	assert_holder(f, L2, B, 2);
	assert_int_equal(view(f, L2).idle_deadline, l2dl);
}

static void
test_resume_rollcall(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000, w = 2 * GRACE, t2;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L2, C));
	run(f, T0 + 3, acq(L3, D));
	STEP_NONE(f, t1, resume(true, w));
	/* Answers: any valid request. */
	STEP(f, t1 + 100, act(L1, B), R_(LT_R_IGNORED, B, L1));
	STEP(f, t1 + 200, acq(L1, A), X_GRANTED(A, L1, 1, t1 + 200 + IDLE),
	    R_GRANTED(A, L1, 1));
	STEP(f, t1 + 300, act(L3, D), R_(LT_R_REFRESHED, D, L3));
	STEP_NONE(f, t1 + w - 1, tick());
	/* C stayed silent: treated as gone. */
	STEP_ANY(f, t1 + w, tick(), N_(LT_N_SILENT, C, ""),
	    X_REVOKED(C, L2, 2, LT_REASON_DISCONNECT), N_(LT_N_FREED, "", L2));
	assert_holder(f, L1, A, 1);
	assert_queue(f, L1, B);
	assert_holder(f, L3, D, 3);
	assert_int_not_equal(view_client(f, A).state, LT_CS_OWES);

	/* A window shorter than the grace is extended to the grace. */
	t2 = t1 + w + 1000;
	STEP_NONE(f, t2, resume(true, 1000));
	STEP_NONE(f, t2 + GRACE - 1, tick());
	STEP(f, t2 + GRACE - 1, act(L1, A), R_(LT_R_REFRESHED, A, L1));
	STEP_ANY(f, t2 + GRACE, tick(), N_(LT_N_SILENT, B, ""),
	    N_(LT_N_DROPPED, B, L1), X_DROPPED(B, L1, LT_REASON_DISCONNECT),
	    N_(LT_N_SILENT, D, ""), X_REVOKED(D, L3, 3, LT_REASON_DISCONNECT),
	    N_(LT_N_FREED, "", L3));
	assert_queue(f, L1, "");
}

/*
 * After a new epoch, grants skip waiters that have not answered yet: B,
 * silent, keeps its place while C, who answered, gets the lock.
 */
static void
test_rollcall_grants_skip_silent_waiters(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 1000, w = 2 * GRACE;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, acq(L1, C));
	STEP_NONE(f, t1, resume(true, w));
	STEP(f, t1 + 10, acq(L1, C), X_QUEUED(C, L1, 2), R_QUEUED(C, L1, 2));
	STEP(f, t1 + 20, rel(L1, A), N_(LT_N_RELEASED, A, L1),
	    X_GRANTED(C, L1, 2, t1 + 20 + IDLE), R_(LT_R_RELEASED, A, L1));
	assert_int_equal(view_client(f, B).state, LT_CS_OWES);
	assert_queue(f, L1, B);
	/* B answers: still first in line, behind the holder. */
	STEP(f, t1 + 30, acq(L1, B), X_QUEUED(B, L1, 1), R_QUEUED(B, L1, 1));
	STEP(f, t1 + 40, rel(L1, C), N_(LT_N_RELEASED, C, L1),
	    X_GRANTED(B, L1, 3, t1 + 40 + IDLE), R_(LT_R_RELEASED, C, L1));
}

/*
 * A client whose will was heard before the epoch began keeps its own grace
 * (floored to now + grace), not the longer roll-call window.
 */
static void
test_rollcall_keeps_grace_of_disconnected(void **state)
{
	struct fixture *f = *state;
	lt_ms t1 = T0 + 10 * GRACE, w = 5 * GRACE;

	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	run(f, T0 + 2, will(A, NULL, -1));
	STEP_NONE(f, t1, resume(true, w));
	STEP(f, t1, acq(L1, B), X_QUEUED(B, L1, 1), R_QUEUED(B, L1, 1));
	STEP_NONE(f, t1 + GRACE - 1, tick());
	STEP_ANY(f, t1 + GRACE, tick(),
	    X_REVOKED(A, L1, 1, LT_REASON_DISCONNECT),
	    X_GRANTED(B, L1, 2, t1 + GRACE + IDLE));
}

/* ---- replay: random events, journal, rebuild, compare ---- */

#define RP_CLIENTS 8
#define RP_LOCKS 6

struct rp {
	uint64_t seed;
	lt_ms now;
	int64_t conn[RP_CLIENTS];
};

static struct lt_event
rp_event(struct rp *g)
{
	char client[8], lock[8];
	unsigned ci = (unsigned)(rnd(&g->seed) % RP_CLIENTS);
	unsigned li = (unsigned)(rnd(&g->seed) % RP_LOCKS);
	unsigned r = (unsigned)(rnd(&g->seed) % 100);
	const char *sess = rnd(&g->seed) % 40 == 0 ? SESS_OTHER : NULL;
	int64_t conn = g->conn[ci];

	snprintf(client, sizeof(client), "c%u", ci);
	snprintf(lock, sizeof(lock), "l%u", li);
	g->now += (lt_ms)(rnd(&g->seed) % 400);
	if (rnd(&g->seed) % 8 == 0)
		conn--; /* an older connection, or -1: none */
	if (r < 35)
		return request(LT_OP_ACQUIRE, lock, client, sess, conn,
		    rnd(&g->seed) % 6 != 0);
	if (r < 52)
		return request(LT_OP_RELEASE, lock, client, sess, conn, true);
	if (r < 65)
		return request(LT_OP_ACTIVITY, lock, client, sess, conn, true);
	if (r < 75)
		return will(client, sess, rnd(&g->seed) % 5 == 0 ? -1 : conn);
	if (r < 80) {
		/* A new connection of the client. */
		g->conn[ci]++;
		return request(LT_OP_ACTIVITY, lock, client, NULL, g->conn[ci],
		    true);
	}
	if (r < 83)
		return brk(lock, "replay");
	if (r < 98)
		return tick();
	return resume(false, 0);
}

/* Events of one kind seen, so the run is known to cover them. */
struct rp_stats {
	size_t grants, queued, busy, revoked[4], warnings,
	    errors[LT_ERR_INTERNAL + 1];
	size_t disconnected, reconnected, dropped, will_ignored;
};

static void
rp_count(struct rp_stats *st, const struct lt_fxlist *fx)
{
	for (size_t i = 0; i < fx->n; i++) {
		const struct lt_fx *e = &fx->v[i];

		if (e->kind == LT_FX_EVENT) {
			switch (e->what.event) {
			case LT_E_GRANTED:
				st->grants++;
				break;
			case LT_E_QUEUED:
				st->queued++;
				break;
			case LT_E_BUSY:
				st->busy++;
				break;
			case LT_E_REVOKED:
				st->revoked[e->reason]++;
				break;
			case LT_E_IDLE_WARNING:
				st->warnings++;
				break;
			case LT_E_ERROR:
				st->errors[e->code]++;
				break;
			default:
				break;
			}
		} else if (e->kind == LT_FX_NOTE) {
			st->disconnected += e->what.note == LT_N_DISCONNECTED;
			st->reconnected += e->what.note == LT_N_RECONNECTED;
			st->dropped += e->what.note == LT_N_DROPPED;
			st->will_ignored += e->what.note == LT_N_WILL_IGNORED;
		}
	}
}

static int
fx_cmp_notoken(const void *x, const void *y)
{
	const struct lt_fx *a = x, *b = y;
	int c;

	if (a->kind != b->kind)
		return (int)a->kind - (int)b->kind;
	if (fx_what(a) != fx_what(b))
		return fx_what(a) - fx_what(b);
	if ((c = strcmp(a->client, b->client)) != 0)
		return c;
	if ((c = strcmp(a->lock, b->lock)) != 0)
		return c;
	if (a->position != b->position)
		return a->position < b->position ? -1 : 1;
	if (a->deadline != b->deadline)
		return a->deadline < b->deadline ? -1 : 1;
	if (a->reason != b->reason)
		return (int)a->reason - (int)b->reason;
	if (a->code != b->code)
		return (int)a->code - (int)b->code;
	return strcmp(a->detail, b->detail);
}

/*
 * The two tables decided the same: the same effects, in any order (which of
 * several locks decided in one event comes first is not promised, and so
 * neither is which of them gets the lower new token), with tokens that pair
 * up one to one.
 */
static void
same_effects(const struct lt_fxlist *x, const struct lt_fxlist *y,
    struct tokmap *m)
{
	struct lt_fx *a = calloc(x->n + 1, sizeof(*a));
	struct lt_fx *b = calloc(y->n + 1, sizeof(*b));
	bool ok = x->n == y->n;

	assert_non_null(a);
	assert_non_null(b);
	if (x->n > 0)
		memcpy(a, x->v, x->n * sizeof(*a));
	if (y->n > 0)
		memcpy(b, y->v, y->n * sizeof(*b));
	if (ok) {
		qsort(a, x->n, sizeof(*a), fx_cmp_notoken);
		qsort(b, y->n, sizeof(*b), fx_cmp_notoken);
	}
	for (size_t i = 0; ok && i < x->n; i++)
		ok = fx_cmp_notoken(&a[i], &b[i]) == 0 &&
		    tokmap_pair(m, a[i].token, b[i].token);
	if (!ok) {
		struct sbuf s = {0};

		sb_printf(&s, "live table:\n");
		fmt_fxlist(&s, x->v, x->n);
		sb_printf(&s, "rebuilt table:\n");
		fmt_fxlist(&s, y->v, y->n);
		print_error("%s", s.s);
		free(s.s);
		fail_msg("the rebuilt table decided differently");
	}
	free(a);
	free(b);
}

static void
same_tables(struct side *x, struct side *y, const struct tokmap *m)
{
	char *dx = dump(x->t, NULL);
	char *dy = dump(y->t, m);

	assert_string_equal(dy, dx);
	free(dx);
	free(dy);
}

static void
test_replay(void **state)
{
	struct fixture *f = *state;
	struct lt_config cfg = default_cfg;
	struct side *x = &f->s, y;
	struct rp g = {.seed = 20240601, .now = T0};
	struct rp_stats st = {0};
	struct tokmap m = {0};

	cfg.idle_timeout = 5000;
	cfg.idle_warning = 1000;
	cfg.grace = 2000;
	cfg.waiters_per_lock = 4;
	cfg.locks_per_client = 3;
	reset(f, &cfg);
	/* Other tests check that served requests mark clients alive. */
	x->check_alive = false;

	for (int i = 0; i < 4000; i++) {
		struct lt_event ev = rp_event(&g);

		/* Mostly tick when due, as mqlockd does; sometimes late. */
		if (locktab_next_deadline(x->t) <= g.now &&
		    rnd(&g.seed) % 4 != 0) {
			const struct lt_event t = tick();

			(void)side_apply(x, g.now, &t);
			rp_count(&st, &x->fx);
		}
		(void)side_apply(x, g.now, &ev);
		rp_count(&st, &x->fx);
		if (rnd(&g.seed) % 3 == 0)
			side_flush(x);
	}
	side_flush(x);
	/* The run covered what it is meant to. */
	assert_true(st.grants > 100);
	assert_true(st.queued > 50);
	assert_true(st.busy > 5);
	assert_true(st.revoked[LT_REASON_IDLE] > 5);
	assert_true(st.revoked[LT_REASON_DISCONNECT] > 5);
	assert_true(st.revoked[LT_REASON_ADMIN] > 5);
	assert_true(st.warnings > 5);
	assert_true(st.errors[LT_ERR_SESSION_MISMATCH] > 5);
	assert_true(st.errors[LT_ERR_LIMIT] > 5);
	assert_true(st.disconnected > 20);
	assert_true(st.reconnected > 10);
	assert_true(st.dropped > 5);
	assert_true(st.will_ignored > 10);
	assert_true(locktab_nlocks(x->t) > 0);

	/* Rebuild from the journal: the same table. */
	memset(&y, 0, sizeof(y));
	y.cfg = cfg;
	y.t = journal_restore(&x->j, &cfg);
	y.max_token = locktab_last_token(y.t);
	y.check_alive = false;
	m.base = locktab_last_token(x->t);
	dump_journaled = true;
	same_tables(x, &y, NULL);
	dump_journaled = false;
	/* Its journal starts as a copy of the live one. */
	for (size_t i = 0; i < x->j.nclients; i++) {
		struct lt_client_rec r;

		jclient_rec(&x->j.clients[i], &r);
		journal_put_client(&y.j, &r);
	}
	for (size_t i = 0; i < x->j.nlocks; i++) {
		struct lt_waiter_rec *ws =
		    calloc(x->j.locks[i].nw + 1, sizeof(*ws));
		struct lt_lock_rec r;

		assert_non_null(ws);
		jlock_rec(&x->j.locks[i], ws, &r);
		journal_put_lock(&y.j, &r);
		free(ws);
	}
	y.j.last_token = x->j.last_token;
	journal_matches(&y);

	/*
	 * The rebuilt table is a restarted coordinator: a new epoch.  Open the
	 * same roll call on both, and from then on they are the same in full.
	 */
	{
		const struct lt_event rc = resume(true, 2 * GRACE);

		assert_int_equal(side_apply(x, g.now, &rc), LT_OK);
		assert_int_equal(side_apply(&y, g.now, &rc), LT_OK);
		same_effects(&x->fx, &y.fx, &m);
		side_flush(x);
		side_flush(&y);
		same_tables(x, &y, &m);
	}

	/* The same events again, to both: the same decisions. */
	for (int i = 0; i < 2000; i++) {
		struct lt_event ev = rp_event(&g);
		enum lt_err ex, ey;

		if (locktab_next_deadline(x->t) <= g.now) {
			const struct lt_event t = tick();

			assert_int_equal(locktab_next_deadline(y.t),
			    locktab_next_deadline(x->t));
			(void)side_apply(x, g.now, &t);
			(void)side_apply(&y, g.now, &t);
			same_effects(&x->fx, &y.fx, &m);
		}
		ex = side_apply(x, g.now, &ev);
		ey = side_apply(&y, g.now, &ev);
		assert_int_equal(ey, ex);
		same_effects(&x->fx, &y.fx, &m);
		if (rnd(&g.seed) % 2 == 0) {
			side_flush(x);
			side_flush(&y);
			same_tables(x, &y, &m);
		}
	}
	side_flush(x);
	side_flush(&y);
	same_tables(x, &y, &m);
	free(m.pairs);
	replay_check(&y);
	side_free(&y);
}

/* ---- restore validation ---- */

static struct lt_client_rec
crec(const char *id, const char *session)
{
	struct lt_client_rec r;

	memset(&r, 0, sizeof(r));
	r.id = id;
	r.session = session;
	r.state = LT_CS_LIVE;
	r.max_conn = -1;
	return r;
}

static struct lt_lock_rec
lrec(const char *id, const char *holder, uint64_t token,
    const struct lt_waiter_rec *ws, size_t nw)
{
	struct lt_lock_rec r;

	memset(&r, 0, sizeof(r));
	r.id = id;
	r.holder = holder;
	r.holder_user = holder != NULL ? "u" : NULL;
	r.token = token;
	r.since = T0;
	r.idle_deadline = T0 + IDLE;
	r.waiters = ws;
	r.nwaiters = nw;
	return r;
}

/* Restore through the fixture's table, keeping its journal in step. */
static enum lt_err
restore_client(struct fixture *f, const struct lt_client_rec *r)
{
	enum lt_err err = locktab_restore_client(f->s.t, r);

	if (err == LT_OK)
		journal_put_client(&f->s.j, r);
	return err;
}

static enum lt_err
restore_lock(struct fixture *f, const struct lt_lock_rec *r)
{
	enum lt_err err = locktab_restore_lock(f->s.t, r);

	if (err == LT_OK)
		journal_put_lock(&f->s.j, r);
	return err;
}

static void
test_restore_validation(void **state)
{
	struct fixture *f = *state; /* 3 waiters per lock, 2 locks a client */
	struct locktab *t = f->s.t;
	const char *s16 = "0123456789abcdef";
	char id128[MQL_CLIENT_ID_MAX + 1], id129[MQL_CLIENT_ID_MAX + 2];
	char sess128[MQL_SESSION_MAX + 1], sess129[MQL_SESSION_MAX + 2];
	struct lt_client_rec c;
	const struct lt_waiter_rec w[4] = {{B, "b", NULL, false},
	    {C, "c", NULL, false}, {D, "d", NULL, false},
	    {E, "e", NULL, false}};
	const struct lt_waiter_rec twice[2] = {{B, "b", NULL, false},
	    {B, "b", NULL, false}};
	const struct lt_waiter_rec self[1] = {{A, "a", NULL, false}};
	const struct lt_waiter_rec stranger[1] = {{F, "f", NULL, false}};
	struct lt_lock_rec l;
	char *before, *after;

	memset(id128, 'x', sizeof(id128) - 1);
	id128[sizeof(id128) - 1] = '\0';
	memset(id129, 'x', sizeof(id129) - 1);
	id129[sizeof(id129) - 1] = '\0';
	memset(sess128, 's', sizeof(sess128) - 1);
	sess128[sizeof(sess128) - 1] = '\0';
	memset(sess129, 's', sizeof(sess129) - 1);
	sess129[sizeof(sess129) - 1] = '\0';

	/* Clients. */
	c = crec(NULL, s16);
	assert_int_equal(restore_client(f, &c), LT_ERR_BAD_REQUEST);
	c = crec("", s16);
	assert_int_equal(restore_client(f, &c), LT_ERR_BAD_REQUEST);
	c = crec(id129, s16);
	assert_int_equal(restore_client(f, &c), LT_ERR_BAD_REQUEST);
	c = crec(A, NULL);
	assert_int_equal(restore_client(f, &c), LT_ERR_BAD_REQUEST);
	c = crec(A, "0123456789abcde"); /* 15 bytes: too short */
	assert_int_equal(restore_client(f, &c), LT_ERR_BAD_REQUEST);
	c = crec(A, sess129);
	assert_int_equal(restore_client(f, &c), LT_ERR_BAD_REQUEST);
	assert_int_equal(locktab_nclients(t), 0);
	/* Two that hold nothing: deleted at the first flush. */
	c = crec(id128, s16);
	assert_int_equal(restore_client(f, &c), LT_OK);
	c = crec("ed-s128", sess128);
	assert_int_equal(restore_client(f, &c), LT_OK);
	c = crec(A, "sess:" A ":0123456789abcdef");
	assert_int_equal(restore_client(f, &c), LT_OK);
	c = crec(A, s16); /* twice */
	assert_int_equal(restore_client(f, &c), LT_ERR_BAD_REQUEST);
	for (size_t i = 0; i < 4; i++) {
		char sess[64];

		snprintf(sess, sizeof(sess), "sess:%s:0123456789abcdef",
		    w[i].client);
		c = crec(w[i].client, sess);
		assert_int_equal(restore_client(f, &c), LT_OK);
	}
	assert_int_equal(locktab_nclients(t), 7);

	/* Locks that break the rules are refused and change nothing. */
	before = dump(t, NULL);
	l = lrec(L1, F, 1, NULL, 0); /* unknown holder */
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(L1, A, 0, NULL, 0); /* held without a token */
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(L1, NULL, 0, NULL, 0); /* neither holder nor waiters */
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(L1, A, 1, twice, 2); /* duplicate waiter */
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(L1, A, 1, self, 1); /* the holder also waits */
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(L1, A, 1, w, 4); /* 4 waiters, 3 allowed */
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(L1, A, 1, stranger, 1); /* unknown waiter */
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec("", A, 1, NULL, 0);
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(NULL, A, 1, NULL, 0);
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(id129, A, 1, NULL, 0);
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	after = dump(t, NULL);
	assert_string_equal(after, before);
	free(after);
	free(before);

	/* Good records, then the ones that collide with them. */
	l = lrec(L1, A, 7, w, 3);
	assert_int_equal(restore_lock(f, &l), LT_OK);
	l = lrec(L1, B, 8, NULL, 0); /* the same lock again */
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(L2, A, 9, NULL, 0);
	assert_int_equal(restore_lock(f, &l), LT_OK);
	l = lrec(L3, A, 10, NULL, 0); /* A's third lock: over the limit */
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(L3, E, 10, w, 1);
	assert_int_equal(restore_lock(f, &l), LT_OK);
	l = lrec(L4, D, 11, w, 1); /* B's third */
	assert_int_equal(restore_lock(f, &l), LT_ERR_BAD_REQUEST);
	l = lrec(id128, D, 11, NULL, 0); /* 128 bytes: a valid lock id */
	assert_int_equal(restore_lock(f, &l), LT_OK);

	/* The token counter never goes down. */
	assert_int_equal(locktab_last_token(t), 11);
	locktab_restore_token(t, 5);
	assert_int_equal(locktab_last_token(t), 11);
	locktab_restore_token(t, 20);
	assert_int_equal(locktab_last_token(t), 20);
	f->s.j.last_token = 20;
	f->s.max_token = 20;
	locktab_restore_done(t);
	assert_null(locktab_check(t));
	/* Nothing restored is dirty, except the clients that hold nothing. */
	assert_int_equal(locktab_dirty_locks(t), 0);
	assert_int_equal(locktab_dirty_clients(t), 2);
	side_flush(&f->s);
	assert_false(known_client(f, id128));
	assert_false(known_client(f, "ed-s128"));
	assert_int_equal(locktab_nclients(t), 5);
	assert_holder(f, L1, A, 7);
	assert_queue(f, L1, B "," C "," D);
	assert_int_equal(view(f, L1).idle_deadline, T0 + IDLE);
	assert_int_equal(locktab_next_deadline(t), T0 + IDLE - WARN);

	/* The table works on: tokens go on from the restored counter. */
	STEP(f, T0 + 1, rel(L2, A), N_(LT_N_RELEASED, A, L2),
	    N_(LT_N_FREED, "", L2), R_(LT_R_RELEASED, A, L2));
	STEP(f, T0 + 2, acq(L2, C), X_GRANTED(C, L2, 21, T0 + 2 + IDLE),
	    R_GRANTED(C, L2, 21));
	/* A restart is a new epoch: grants wait for answers to the call. */
	assert_int_equal(view_client(f, B).state, LT_CS_OWES);
	STEP(f, T0 + 2, act(L1, B), R_(LT_R_IGNORED, B, L1));
	STEP(f, T0 + 2, act(L1, D), R_(LT_R_IGNORED, D, L1));
	STEP(f, T0 + 3, rel(L1, A), N_(LT_N_RELEASED, A, L1),
	    X_GRANTED(B, L1, 22, T0 + 3 + IDLE), X_MOVED(C, L1, 1),
	    X_MOVED(D, L1, 2), R_(LT_R_RELEASED, A, L1));
}

/* Restored deadlines, flags and connection state take effect. */
static void
test_restore_state(void **state)
{
	struct fixture *f = *state;
	const char *s16 = "0123456789abcdef";
	struct lt_client_rec c;
	const struct lt_waiter_rec w[2] = {{B, "b", NULL, false},
	    {C, "c", NULL, false}};
	struct lt_lock_rec l;

	c = crec(A, s16);
	c.max_conn = 4;
	assert_int_equal(restore_client(f, &c), LT_OK);
	c = crec(B, s16);
	c.state = LT_CS_GONE;
	c.grace_deadline = T0 + 500;
	assert_int_equal(restore_client(f, &c), LT_OK);
	c = crec(C, s16);
	assert_int_equal(restore_client(f, &c), LT_OK);
	l = lrec(L1, A, 3, w, 2);
	l.warned = true;
	l.idle_deadline = T0 + 1000;
	assert_int_equal(restore_lock(f, &l), LT_OK);
	locktab_restore_token(f->s.t, 3);
	f->s.j.last_token = 3;
	f->s.max_token = 3;
	locktab_restore_done(f->s.t);
	side_flush(&f->s);

	assert_int_equal(locktab_next_deadline(f->s.t), T0 + 500);
	assert_queue(f, L1, B "-," C);
	/* A stale will is still stale after a restart. */
	STEP(f, T0 + 1, will(A, s16, 3), N_(LT_N_WILL_IGNORED, A, ""));
	/* C answers the roll call of the new epoch: it can be granted. */
	STEP(f, T0 + 2, request(LT_OP_ACQUIRE, L1, C, s16, -1, true),
	    X_QUEUED(C, L1, 2), R_QUEUED(C, L1, 2));
	/* B's grace ends as journaled. */
	STEP(f, T0 + 500, tick(), N_(LT_N_DROPPED, B, L1),
	    X_DROPPED(B, L1, LT_REASON_DISCONNECT), X_MOVED(C, L1, 1));
	/* Already warned: no second warning, revoked at the deadline. */
	STEP_NONE(f, T0 + 999, tick());
	STEP(f, T0 + 1000, tick(), X_REVOKED(A, L1, 3, LT_REASON_IDLE),
	    X_GRANTED(C, L1, 4, T0 + 1000 + IDLE));
}

/*
 * A lock with no holder but a connected waiter breaks "nobody waits on
 * nothing"; restore must refuse it or leave a table that passes its check.
 */
static void
test_restore_free_lock_connected_waiter(void **state)
{
	struct lt_config cfg = default_cfg;
	struct locktab *t = locktab_new(&cfg);
	struct lt_client_rec c = crec(B, "0123456789abcdef");
	const struct lt_waiter_rec w[] = {{B, "b", NULL, true}};
	struct lt_lock_rec l = lrec(L1, NULL, 0, w, 1);
	enum lt_err err;
	const char *why;

	(void)state;
	assert_non_null(t);
	assert_int_equal(locktab_restore_client(t, &c), LT_OK);
	err = locktab_restore_lock(t, &l);
	locktab_restore_done(t);
	why = locktab_check(t);
	locktab_free(t);
	if (err == LT_OK && why != NULL)
		fail_msg("restore accepted a free lock with a connected "
			 "waiter: %s",
		    why);
	if (err != LT_OK)
		assert_int_equal(err, LT_ERR_BAD_REQUEST);
}

/* ---- every cell of the state machines, one row each ---- */

/*
 * The request cells of request_cell() in locktab.c, and the client cells
 * of client_event(): for each, a scene built through the public API, one
 * event, and what it must leave.  X is A (verified as "u1"), the other
 * party B; A also holds L5 so that it exists with the state the row asks
 * for.  Cells no scene can reach (a free lock with a holder; a live
 * waiter of a free lock) are excluded by the table's invariants, which
 * locktab_check() verifies after every row.
 */
enum xop { XO_ACQ, XO_TRY, XO_TAKE, XO_REL, XO_ACT };

struct cell_row {
	const char *cell;
	enum xop op;
	enum lt_lock_state ls;
	enum lt_role role;
	enum lt_client_state cs;
	bool other_user; /* B is another user (takeover does not apply) */
	/* After: */
	enum lt_result reply;
	enum lt_role role_after;
	enum lt_lock_state ls_after;
};

static const struct cell_row cell_rows[] = {
    {"acquire, FREE, none", XO_ACQ, LT_LS_FREE, LT_ROLE_NONE, LT_CS_LIVE, false,
	LT_R_GRANTED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"acquire, FREE, none, owing", XO_ACQ, LT_LS_FREE, LT_ROLE_NONE, LT_CS_OWES,
	false, LT_R_GRANTED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"acquire, FREE, none, gone", XO_ACQ, LT_LS_FREE, LT_ROLE_NONE, LT_CS_GONE,
	false, LT_R_GRANTED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"acquire, FREE, waiter (owing)", XO_ACQ, LT_LS_FREE, LT_ROLE_WAITER,
	LT_CS_OWES, false, LT_R_GRANTED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"acquire, FREE, waiter (gone)", XO_ACQ, LT_LS_FREE, LT_ROLE_WAITER,
	LT_CS_GONE, false, LT_R_GRANTED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"acquire, HELD, none", XO_ACQ, LT_LS_HELD, LT_ROLE_NONE, LT_CS_LIVE, false,
	LT_R_QUEUED, LT_ROLE_WAITER, LT_LS_HELD},
    {"acquire, HELD, holder", XO_ACQ, LT_LS_HELD, LT_ROLE_HOLDER, LT_CS_LIVE,
	false, LT_R_GRANTED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"acquire, HELD, holder (gone)", XO_ACQ, LT_LS_HELD, LT_ROLE_HOLDER,
	LT_CS_GONE, false, LT_R_GRANTED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"acquire, HELD, waiter", XO_ACQ, LT_LS_HELD, LT_ROLE_WAITER, LT_CS_LIVE,
	false, LT_R_QUEUED, LT_ROLE_WAITER, LT_LS_HELD},
    {"try-lock, HELD, none", XO_TRY, LT_LS_HELD, LT_ROLE_NONE, LT_CS_LIVE,
	false, LT_R_BUSY, LT_ROLE_NONE, LT_LS_HELD},
    {"takeover, HELD, none", XO_TAKE, LT_LS_HELD, LT_ROLE_NONE, LT_CS_LIVE,
	false, LT_R_GRANTED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"takeover, HELD, waiter", XO_TAKE, LT_LS_HELD, LT_ROLE_WAITER, LT_CS_LIVE,
	false, LT_R_GRANTED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"takeover, HELD, holder", XO_TAKE, LT_LS_HELD, LT_ROLE_HOLDER, LT_CS_LIVE,
	false, LT_R_GRANTED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"takeover of another user: acquire", XO_TAKE, LT_LS_HELD, LT_ROLE_NONE,
	LT_CS_LIVE, true, LT_R_QUEUED, LT_ROLE_WAITER, LT_LS_HELD},
    {"release, FREE, none", XO_REL, LT_LS_FREE, LT_ROLE_NONE, LT_CS_LIVE, false,
	LT_R_IGNORED, LT_ROLE_NONE, LT_LS_FREE},
    {"release, FREE, waiter (won, gives back)", XO_REL, LT_LS_FREE,
	LT_ROLE_WAITER, LT_CS_OWES, false, LT_R_RELEASED, LT_ROLE_NONE,
	LT_LS_FREE},
    {"release, HELD, none", XO_REL, LT_LS_HELD, LT_ROLE_NONE, LT_CS_LIVE, false,
	LT_R_IGNORED, LT_ROLE_NONE, LT_LS_HELD},
    {"release, HELD, holder", XO_REL, LT_LS_HELD, LT_ROLE_HOLDER, LT_CS_LIVE,
	false, LT_R_RELEASED, LT_ROLE_NONE, LT_LS_FREE},
    {"release, HELD, waiter", XO_REL, LT_LS_HELD, LT_ROLE_WAITER, LT_CS_LIVE,
	false, LT_R_RELEASED, LT_ROLE_NONE, LT_LS_HELD},
    {"activity, FREE, none", XO_ACT, LT_LS_FREE, LT_ROLE_NONE, LT_CS_LIVE,
	false, LT_R_IGNORED, LT_ROLE_NONE, LT_LS_FREE},
    {"activity, FREE, waiter (won it)", XO_ACT, LT_LS_FREE, LT_ROLE_WAITER,
	LT_CS_GONE, false, LT_R_REFRESHED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"activity, HELD, none", XO_ACT, LT_LS_HELD, LT_ROLE_NONE, LT_CS_LIVE,
	false, LT_R_IGNORED, LT_ROLE_NONE, LT_LS_HELD},
    {"activity, HELD, holder", XO_ACT, LT_LS_HELD, LT_ROLE_HOLDER, LT_CS_LIVE,
	false, LT_R_REFRESHED, LT_ROLE_HOLDER, LT_LS_HELD},
    {"activity, HELD, waiter", XO_ACT, LT_LS_HELD, LT_ROLE_WAITER, LT_CS_LIVE,
	false, LT_R_IGNORED, LT_ROLE_WAITER, LT_LS_HELD},
};

static struct lt_event
as_user(struct lt_event ev, const char *uid)
{
	snprintf(ev.u.req.uid, sizeof(ev.u.req.uid), "%s", uid);
	return ev;
}

/* A's client state becomes cs (it is LIVE and holds something). */
static void
make_state(struct fixture *f, lt_ms now, enum lt_client_state cs)
{
	if (cs == LT_CS_GONE)
		run(f, now, will(A, NULL, -1));
	else if (cs == LT_CS_OWES)
		run(f, now, resume(true, 5000));
	assert_int_equal(view_client(f, A).state, cs);
}

/* The scene of row r at now: returns the time after it. */
static lt_ms
cell_scene(struct fixture *f, const struct cell_row *r, lt_ms now)
{
	const char *ub = r->other_user ? "u2" : "u1";

	run(f, now++, as_user(acq(L5, A), "u1"));
	switch (r->ls) {
	case LT_LS_HELD:
		if (r->role == LT_ROLE_HOLDER) {
			run(f, now++, as_user(acq(L1, A), "u1"));
		} else {
			run(f, now++, as_user(acq(L1, B), ub));
			if (r->role == LT_ROLE_WAITER)
				run(f, now++, as_user(acq(L1, A), "u1"));
		}
		make_state(f, now++, r->cs);
		/* B stays alive through a roll call. */
		if (r->cs == LT_CS_OWES && r->role != LT_ROLE_HOLDER)
			run(f, now++, as_user(acq(L1, B), ub));
		break;
	case LT_LS_FREE:
	default:
		if (r->role == LT_ROLE_WAITER) {
			/* Free with A waiting: A must not be alive. */
			run(f, now++, as_user(acq(L1, B), ub));
			run(f, now++, as_user(acq(L1, A), "u1"));
			make_state(f, now++, r->cs);
			run(f, now++, rel(L1, B));
		} else {
			make_state(f, now++, r->cs);
		}
		break;
	}
	return now;
}

static enum lt_role
role_in(struct fixture *f, const char *lock, const char *client)
{
	struct lt_lock_rec rec;

	if (!locktab_view(f->s.t, lock, &rec))
		return LT_ROLE_NONE;
	if (rec.holder != NULL && strcmp(rec.holder, client) == 0)
		return LT_ROLE_HOLDER;
	for (size_t i = 0; i < rec.nwaiters; i++) {
		if (strcmp(rec.waiters[i].client, client) == 0)
			return LT_ROLE_WAITER;
	}
	return LT_ROLE_NONE;
}

static void
test_request_cells(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cell_rows) / sizeof(cell_rows[0]); i++) {
		const struct cell_row *r = &cell_rows[i];
		lt_ms now;
		struct lt_event ev;
		struct lt_lock_rec rec;
		const struct lt_fx *rep = NULL;

		reset(f, &default_cfg);
		now = cell_scene(f, r, T0);
		/* The scene is the cell the row names. */
		if (role_in(f, L1, A) != r->role ||
		    (locktab_view(f->s.t, L1, &rec) && rec.holder != NULL) !=
			(r->ls == LT_LS_HELD) ||
		    view_client(f, A).state != r->cs)
			fail_msg("%s: scene is not that cell", r->cell);
		switch (r->op) {
		case XO_TRY:
			ev = try_acq(L1, A);
			break;
		case XO_TAKE:
			ev = acq(L1, A);
			ev.u.req.takeover = true;
			break;
		case XO_REL:
			ev = rel(L1, A);
			break;
		case XO_ACT:
			ev = act(L1, A);
			break;
		case XO_ACQ:
		default:
			ev = acq(L1, A);
			break;
		}
		ev = as_user(ev, "u1");
		if (side_apply(&f->s, now, &ev) != LT_OK)
			fail_msg("%s: refused", r->cell);
		for (size_t k = 0; k < f->s.fx.n; k++) {
			if (f->s.fx.v[k].kind == LT_FX_REPLY)
				rep = &f->s.fx.v[k];
		}
		if (rep == NULL || rep->what.result != r->reply)
			fail_msg("%s: reply %d, expected %d", r->cell,
			    rep != NULL ? (int)rep->what.result : -1,
			    (int)r->reply);
		side_flush(&f->s);
		if (role_in(f, L1, A) != r->role_after)
			fail_msg("%s: A's role %d, expected %d", r->cell,
			    (int)role_in(f, L1, A), (int)r->role_after);
		if ((locktab_view(f->s.t, L1, &rec) && rec.holder != NULL) !=
		    (r->ls_after == LT_LS_HELD))
			fail_msg("%s: lock state", r->cell);
		/* Every served request proves the sender alive. */
		if (view_client(f, A).state != LT_CS_LIVE)
			fail_msg("%s: A not live after its request", r->cell);
		assert_null(locktab_check(f->s.t));
	}
}

/* client_event(): (state, event) -> state, one row each. */
struct ccell_row {
	const char *cell;
	enum lt_client_state from;
	int event; /* 0 request, 1 will, 2 roll call, 3 deadline */
	enum lt_client_state to;
	bool keeps;        /* A still holds L1 afterwards */
	enum lt_note note; /* expected note, or -1 */
};

static const struct ccell_row ccell_rows[] = {
    {"LIVE, request", LT_CS_LIVE, 0, LT_CS_LIVE, true, (enum lt_note) - 1},
    {"LIVE, will", LT_CS_LIVE, 1, LT_CS_GONE, true, LT_N_DISCONNECTED},
    {"LIVE, roll call", LT_CS_LIVE, 2, LT_CS_OWES, true, (enum lt_note) - 1},
    {"OWES, request", LT_CS_OWES, 0, LT_CS_LIVE, true, (enum lt_note) - 1},
    {"OWES, will", LT_CS_OWES, 1, LT_CS_GONE, true, LT_N_DISCONNECTED},
    {"OWES, roll call", LT_CS_OWES, 2, LT_CS_OWES, true, (enum lt_note) - 1},
    {"OWES, deadline", LT_CS_OWES, 3, LT_CS_LIVE, false, LT_N_SILENT},
    {"GONE, request", LT_CS_GONE, 0, LT_CS_LIVE, true, LT_N_RECONNECTED},
    {"GONE, will", LT_CS_GONE, 1, LT_CS_GONE, true, (enum lt_note) - 1},
    {"GONE, roll call", LT_CS_GONE, 2, LT_CS_GONE, true, (enum lt_note) - 1},
    {"GONE, deadline", LT_CS_GONE, 3, LT_CS_LIVE, false, (enum lt_note) - 1},
};

static void
test_client_cells(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(ccell_rows) / sizeof(ccell_rows[0]);
	     i++) {
		const struct ccell_row *r = &ccell_rows[i];
		lt_ms now = T0 + 1;
		struct lt_event ev;
		bool noted = false;

		reset(f, &default_cfg);
		run(f, T0, acq(L1, A));
		make_state(f, now++, r->from);
		switch (r->event) {
		case 0:
			ev = act(L1, A);
			break;
		case 1:
			ev = will(A, NULL, -1);
			break;
		case 2:
			ev = resume(true, 5000);
			break;
		default:
			ev = tick();
			now = locktab_next_deadline(f->s.t);
			break;
		}
		assert_int_equal(side_apply(&f->s, now, &ev), LT_OK);
		for (size_t k = 0; k < f->s.fx.n; k++) {
			const struct lt_fx *e = &f->s.fx.v[k];

			noted |=
			    e->kind == LT_FX_NOTE && e->what.note == r->note;
		}
		if ((int)r->note >= 0 && !noted)
			fail_msg("%s: note %d missing", r->cell, (int)r->note);
		side_flush(&f->s);
		if (r->keeps) {
			if (view_client(f, A).state != r->to)
				fail_msg("%s: state %d, expected %d", r->cell,
				    (int)view_client(f, A).state, (int)r->to);
			assert_int_equal(role_in(f, L1, A), LT_ROLE_HOLDER);
		} else {
			/* Gone for good: the lock was revoked. */
			assert_false(known_client(f, A));
			assert_int_equal(role_in(f, L1, A), LT_ROLE_NONE);
		}
		assert_null(locktab_check(f->s.t));
	}
}

/* The idle timer's cells (idle_decide in locktab.c): policy x warned x
 * whether a live client waits. */
static void
test_idle_cells(void **state)
{
	struct fixture *f = *state;
	struct lt_config cfg = default_cfg;
	lt_ms w0 = T0 + IDLE - WARN;

	/* always, unwarned, nobody waits: warned at deadline - warning. */
	cfg.idle_policy = LT_IDLE_ALWAYS;
	reset(f, &cfg);
	run(f, T0, acq(L1, A));
	STEP(f, w0, tick(), X_WARN(A, L1, T0 + IDLE));
	/* always, warned, nobody waits: revoked at the deadline. */
	STEP(f, T0 + IDLE, tick(), X_REVOKED(A, L1, 1, LT_REASON_IDLE),
	    N_(LT_N_FREED, "", L1));

	/* contended, unwarned, nobody waits: the timer goes dormant. */
	cfg.idle_policy = LT_IDLE_CONTENDED;
	reset(f, &cfg);
	run(f, T0, acq(L1, A));
	STEP_NONE(f, w0, tick());
	assert_int_equal(locktab_next_deadline(f->s.t), LT_NEVER);
	/* ... a waiter past the deadline: warned now, a full period. */
	STEP(f, T0 + IDLE + 5, acq(L1, B), X_QUEUED(B, L1, 1),
	    R_QUEUED(B, L1, 1));
	assert_true(locktab_next_deadline(f->s.t) <= T0 + IDLE + 5); /* due */
	STEP(f, T0 + IDLE + 5, tick(), X_WARN(A, L1, T0 + IDLE + 5 + WARN));
	/* contended, warned, someone waits: revoked, the waiter gets it. */
	STEP(f, T0 + IDLE + 5 + WARN, tick(),
	    X_REVOKED(A, L1, 1, LT_REASON_IDLE),
	    X_GRANTED(B, L1, 2, T0 + IDLE + 5 + WARN + IDLE));

	/* contended, unwarned, someone waits: warned at deadline - warning
	 * exactly as under always. */
	reset(f, &cfg);
	run(f, T0, acq(L1, A));
	run(f, T0 + 1, acq(L1, B));
	STEP(f, w0, tick(), X_WARN(A, L1, T0 + IDLE));
	/* contended, warned, the waiter left: dormant at the deadline. */
	run(f, w0 + 1, rel(L1, B));
	STEP_NONE(f, T0 + IDLE, tick());
	assert_holder(f, L1, A, 1);
	assert_int_equal(locktab_next_deadline(f->s.t), LT_NEVER);
	/* A waiter returns after the deadline: a fresh warning. */
	STEP(f, T0 + IDLE + 100, acq(L1, C), X_QUEUED(C, L1, 1),
	    R_QUEUED(C, L1, 1));
	STEP(f, T0 + IDLE + 100, tick(), X_WARN(A, L1, T0 + IDLE + 100 + WARN));
	/*
	 * Only live waiters count: C's will, then the end of its grace, and
	 * at the deadline nobody waits: the timer sleeps again.
	 */
	run(f, T0 + IDLE + 200, will(C, NULL, -1));
	STEP(f, T0 + IDLE + 200 + GRACE, tick(), N_(LT_N_DROPPED, C, L1),
	    X_DROPPED(C, L1, LT_REASON_DISCONNECT));
	STEP_NONE(f, T0 + IDLE + 100 + WARN, tick());
	assert_holder(f, L1, A, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config),
	    cmocka_unit_test_setup_teardown(test_acquire_free, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_acquire_queued, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_trylock_busy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_acquire_repeat_holder, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_acquire_repeat_waiter, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_release_by_holder, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_release_by_waiter, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_release_ignored, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_activity, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_session_mismatch, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_session_rebind, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_will_accepted, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_will_ignored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_will_conn_ranking, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_will_while_disconnected, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_grace_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reconnect_via_acquire, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_reconnect_via_activity, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_reconnect_via_other_requests,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_reconnect_via_release_of_unknown_lock, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_disconnected_waiter_skipped,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_returning_waiter_granted_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_free_lock_with_disconnected_waiter, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_warning_and_revoke, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_idle_late_tick, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_idle_warning_not_shorter,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_runs_while_disconnected,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(test_admin_break, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tokens_increasing, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_fifo_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limits, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_limits_total_clients_and_locks,
		setup_caps, teardown),
	    cmocka_unit_test_setup_teardown(test_limit_refusal_changes_nothing,
		setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_limits_free_lock_full_queue,
		setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_next_deadline, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_tick_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_floors_deadlines, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_rollcall_grants_skip_silent_waiters, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_rollcall_keeps_grace_of_disconnected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_rollcall, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_replay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_validation,
		setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_restore_state, setup,
		teardown),
	    cmocka_unit_test(test_restore_free_lock_connected_waiter),
	    cmocka_unit_test_setup_teardown(test_request_cells, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_client_cells, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_cells, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
