#include "core/locktab.h"

#include <stdlib.h>
#include <string.h>

#include "core/idmap.h"

#define NOIDX ((size_t)-1)
#define DEFAULT_TICK_BATCH 1024

struct client;

struct waiter {
	struct client *c;
	char *user;
};

struct lock {
	struct client *holder; /* NULL: free */
	char *holder_user;
	uint64_t token;
	lt_ms since;         /* grant time, or when it became free */
	lt_ms idle_deadline; /* valid while held */
	bool warned;
	bool dirty;
	struct waiter *w; /* FIFO, w[0] is next */
	size_t nw, capw;
	/*
	 * Index in the deadline heap, NOIDX if none.  A held lock always has
	 * an idle timer, except under LT_IDLE_CONTENDED while nobody alive
	 * waits for it ("dormant"): then the timer is armed again when a live
	 * waiter appears.
	 */
	size_t hidx;
	char id[];
};

/* Clients that share a verified uid: how many are in the table. */
struct user {
	size_t nclients;
	char uid[];
};

struct client {
	char *session;
	struct user *user; /* NULL: not verified by a ticket */
	enum lt_client_state state;
	bool dirty;
	int64_t max_conn;
	lt_ms deadline;      /* OWES: end of the roll call; GONE: of grace */
	struct lock **locks; /* held or awaited, in no order */
	size_t nlocks, caplocks;
	size_t hidx;
	char id[];
};

/* A deadline: exactly one of l and c is set. */
struct hent {
	lt_ms when;
	struct lock *l;
	struct client *c;
};

struct locktab {
	struct lt_config cfg;
	struct idmap *locks;
	struct idmap *clients;
	struct idmap *users;
	uint64_t last_token;

	struct hent *heap;
	size_t nheap, capheap;

	struct lock **dirty_locks;
	size_t ndirty_locks, capdirty_locks;
	struct client **dirty_clients;
	size_t ndirty_clients, capdirty_clients;

	struct lt_waiter_rec *scratch; /* views' waiter arrays */
	size_t capscratch;

	/* The event being applied: stamped on its effects. */
	lt_ms now;
	uint64_t tag;
	bool oom; /* an allocation failed during the current apply */
};

/* ---- small helpers ---- */

static size_t
bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n] != '\0')
		n++;
	return n;
}

static char *
dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static void
copy_str(char *dst, size_t size, const char *src)
{
	size_t n = bounded_len(src, size - 1);

	if (n > size - 1)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * Grow *v (elements of size sz, *cap allocated) to hold at least need.
 * Returns 0, or -1 when memory runs out (*v unchanged).
 */
static int
reserve(void **v, size_t *cap, size_t need, size_t sz)
{
	size_t n;
	void *p;

	if (need <= *cap)
		return 0;
	n = *cap < 4 ? 4 : *cap * 2;
	while (n < need)
		n *= 2;
	p = realloc(*v, n * sz);
	if (p == NULL)
		return -1;
	*v = p;
	*cap = n;
	return 0;
}

/* ---- effects ---- */

void
lt_fxlist_clear(struct lt_fxlist *fx)
{
	fx->n = 0;
	fx->failed = false;
}

void
lt_fxlist_free(struct lt_fxlist *fx)
{
	free(fx->v);
	fx->v = NULL;
	fx->n = fx->cap = 0;
	fx->failed = false;
}

int
lt_fxlist_push(struct lt_fxlist *fx, const struct lt_fx *e)
{
	if (reserve((void **)&fx->v, &fx->cap, fx->n + 1, sizeof(*fx->v))) {
		fx->failed = true;
		return -1;
	}
	fx->v[fx->n++] = *e;
	return 0;
}

static struct lt_fx *
fx_push(struct locktab *t, struct lt_fxlist *fx, enum lt_fx_kind kind,
    const char *client, const char *lock)
{
	struct lt_fx *e;

	if (reserve((void **)&fx->v, &fx->cap, fx->n + 1, sizeof(*fx->v))) {
		fx->failed = true;
		return NULL;
	}
	e = &fx->v[fx->n++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->now = t->now;
	copy_str(e->client, sizeof(e->client), client);
	copy_str(e->lock, sizeof(e->lock), lock);
	return e;
}

static struct lt_fx *
fx_event(struct locktab *t, struct lt_fxlist *fx, enum lt_event_type type,
    const struct client *c, const struct lock *l)
{
	struct lt_fx *e = fx_push(t, fx, LT_FX_EVENT, c->id, l->id);

	if (e != NULL)
		e->what.event = type;
	return e;
}

/* The reply to the event being applied: it carries that event's tag. */
static struct lt_fx *
fx_reply(struct locktab *t, struct lt_fxlist *fx, enum lt_result result,
    const char *client, const char *lock)
{
	struct lt_fx *e = fx_push(t, fx, LT_FX_REPLY, client, lock);

	if (e != NULL) {
		e->what.result = result;
		e->tag = t->tag;
	}
	return e;
}

static void
fx_note(struct locktab *t, struct lt_fxlist *fx, enum lt_note note,
    const char *client, const char *lock)
{
	struct lt_fx *e = fx_push(t, fx, LT_FX_NOTE, client, lock);

	if (e != NULL)
		e->what.note = note;
}

/* ---- the deadline heap ---- */

static size_t *
hent_idx(const struct hent *e)
{
	return e->l != NULL ? &e->l->hidx : &e->c->hidx;
}

static void
heap_place(struct locktab *t, size_t i, struct hent e)
{
	t->heap[i] = e;
	*hent_idx(&t->heap[i]) = i;
}

static void
heap_up(struct locktab *t, size_t i)
{
	struct hent e = t->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (t->heap[p].when <= e.when)
			break;
		heap_place(t, i, t->heap[p]);
		i = p;
	}
	heap_place(t, i, e);
}

static void
heap_down(struct locktab *t, size_t i)
{
	struct hent e = t->heap[i];

	for (;;) {
		size_t k = 2 * i + 1;

		if (k >= t->nheap)
			break;
		if (k + 1 < t->nheap && t->heap[k + 1].when < t->heap[k].when)
			k++;
		if (e.when <= t->heap[k].when)
			break;
		heap_place(t, i, t->heap[k]);
		i = k;
	}
	heap_place(t, i, e);
}

static void
heap_remove_at(struct locktab *t, size_t i)
{
	*hent_idx(&t->heap[i]) = NOIDX;
	t->nheap--;
	if (i == t->nheap)
		return;
	heap_place(t, i, t->heap[t->nheap]);
	heap_down(t, i);
	heap_up(t, i);
}

/* Set (insert or move) the deadline of l or c. */
static void
heap_set(struct locktab *t, struct lock *l, struct client *c, lt_ms when)
{
	size_t idx = l != NULL ? l->hidx : c->hidx;

	if (idx != NOIDX) {
		t->heap[idx].when = when;
		heap_down(t, idx);
		heap_up(t, idx);
		return;
	}
	if (reserve((void **)&t->heap, &t->capheap, t->nheap + 1,
		sizeof(*t->heap))) {
		t->oom = true;
		return;
	}
	t->heap[t->nheap] = (struct hent){when, l, c};
	*hent_idx(&t->heap[t->nheap]) = t->nheap;
	t->nheap++;
	heap_up(t, t->nheap - 1);
}

static void
heap_clear(struct locktab *t, size_t idx)
{
	if (idx != NOIDX)
		heap_remove_at(t, idx);
}

/* ---- dirty tracking ---- */

static void
dirty_lock(struct locktab *t, struct lock *l)
{
	if (l->dirty)
		return;
	if (reserve((void **)&t->dirty_locks, &t->capdirty_locks,
		t->ndirty_locks + 1, sizeof(*t->dirty_locks))) {
		t->oom = true;
		return;
	}
	l->dirty = true;
	t->dirty_locks[t->ndirty_locks++] = l;
}

static void
dirty_client(struct locktab *t, struct client *c)
{
	if (c->dirty)
		return;
	if (reserve((void **)&t->dirty_clients, &t->capdirty_clients,
		t->ndirty_clients + 1, sizeof(*t->dirty_clients))) {
		t->oom = true;
		return;
	}
	c->dirty = true;
	t->dirty_clients[t->ndirty_clients++] = c;
}

/* ---- objects ---- */

/* The user record of uid, created when absent; NULL when memory ran out. */
static struct user *
user_get(struct locktab *t, const char *uid)
{
	struct user *u = idmap_get(t->users, uid);
	size_t n;

	if (u != NULL)
		return u;
	n = bounded_len(uid, MQL_UID_MAX);
	u = calloc(1, sizeof(*u) + n + 1);
	if (u == NULL ||
	    (memcpy(u->uid, uid, n), idmap_put(t->users, u->uid, u) != 0)) {
		free(u);
		t->oom = true;
		return NULL;
	}
	return u;
}

/* c is verified as uid (c has no user yet). */
static void
client_set_user(struct locktab *t, struct client *c, const char *uid)
{
	struct user *u = user_get(t, uid);

	if (u == NULL)
		return;
	u->nclients++;
	c->user = u;
	dirty_client(t, c);
	/* Its owner messages show the uid from now on. */
	for (size_t i = 0; i < c->nlocks; i++)
		dirty_lock(t, c->locks[i]);
}

static void
client_drop_user(struct locktab *t, struct client *c)
{
	struct user *u = c->user;

	c->user = NULL;
	if (u != NULL && --u->nclients == 0) {
		idmap_del(t->users, u->uid);
		free(u);
	}
}

static struct client *
client_new(struct locktab *t, const char *id, const char *session)
{
	size_t n = bounded_len(id, MQL_CLIENT_ID_MAX);
	struct client *c = calloc(1, sizeof(*c) + n + 1);

	if (c == NULL)
		goto err;
	memcpy(c->id, id, n);
	c->session = dupstr(session);
	if (c->session == NULL)
		goto err;
	c->state = LT_CS_LIVE;
	c->max_conn = -1;
	c->hidx = NOIDX;
	if (idmap_put(t->clients, c->id, c) != 0)
		goto err;
	/* A new client is journaled, or deleted again, at the next flush. */
	dirty_client(t, c);
	return c;
err:
	if (c != NULL)
		free(c->session);
	free(c);
	t->oom = true;
	return NULL;
}

static void
client_free(struct locktab *t, struct client *c)
{
	if (c == NULL)
		return;
	client_drop_user(t, c);
	free(c->session);
	free(c->locks);
	free(c);
}

static struct lock *
lock_new(struct locktab *t, const char *id)
{
	size_t n = bounded_len(id, MQL_LOCK_ID_MAX);
	struct lock *l = calloc(1, sizeof(*l) + n + 1);

	if (l == NULL) {
		t->oom = true;
		return NULL;
	}
	memcpy(l->id, id, n);
	l->hidx = NOIDX;
	if (idmap_put(t->locks, l->id, l) != 0) {
		free(l);
		t->oom = true;
		return NULL;
	}
	dirty_lock(t, l);
	return l;
}

static void
lock_free(struct lock *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->nw; i++)
		free(l->w[i].user);
	free(l->w);
	free(l->holder_user);
	free(l);
}

static int
client_add_lock(struct locktab *t, struct client *c, struct lock *l)
{
	if (reserve((void **)&c->locks, &c->caplocks, c->nlocks + 1,
		sizeof(*c->locks))) {
		t->oom = true;
		return -1;
	}
	c->locks[c->nlocks++] = l;
	return 0;
}

static void
client_remove_lock(struct locktab *t, struct client *c, struct lock *l)
{
	for (size_t i = 0; i < c->nlocks; i++) {
		if (c->locks[i] == l) {
			c->locks[i] = c->locks[--c->nlocks];
			break;
		}
	}
	/*
	 * A client with nothing left is deleted at the next flush, and its
	 * binding to a user ends now.
	 */
	if (c->nlocks == 0) {
		client_drop_user(t, c);
		dirty_client(t, c);
	}
}

static long
waiter_index(const struct lock *l, const struct client *c)
{
	for (size_t i = 0; i < l->nw; i++) {
		if (l->w[i].c == c)
			return (long)i;
	}
	return -1;
}

static enum lt_lock_state
lock_state(const struct lock *l)
{
	return l != NULL && l->holder != NULL ? LT_LS_HELD : LT_LS_FREE;
}

static enum lt_role
role_of(const struct lock *l, const struct client *c)
{
	if (l == NULL || c == NULL)
		return LT_ROLE_NONE;
	if (l->holder == c)
		return LT_ROLE_HOLDER;
	return waiter_index(l, c) >= 0 ? LT_ROLE_WAITER : LT_ROLE_NONE;
}

/* Known to be alive: connected, and no roll call left unanswered. */
static bool
alive(const struct client *c)
{
	return c->state == LT_CS_LIVE;
}

static bool
has_live_waiter(const struct lock *l)
{
	for (size_t i = 0; i < l->nw; i++) {
		if (alive(l->w[i].c))
			return true;
	}
	return false;
}

/* Remove waiter i from l's queue; the caller owns what it returns. */
static struct waiter
queue_take(struct lock *l, size_t i)
{
	struct waiter w = l->w[i];

	memmove(&l->w[i], &l->w[i + 1], (l->nw - i - 1) * sizeof(*l->w));
	l->nw--;
	return w;
}

/*
 * Tell every live waiter from index `from` on its (new) place.  Others are
 * not listening (gone) or will ask again (a roll call), and learn their
 * place then; telling them would cost a publish per waiter behind each of
 * a queue of silent waiters dropped in turn.
 */
static void
send_positions(struct locktab *t, struct lock *l, size_t from,
    struct lt_fxlist *fx)
{
	for (size_t i = from; i < l->nw; i++) {
		struct lt_fx *e = !alive(l->w[i].c)
		    ? NULL
		    : fx_event(t, fx, LT_E_QUEUED, l->w[i].c, l);

		if (e != NULL) {
			e->position = (uint32_t)(i + 1);
			e->moved = true;
		}
	}
}

/* ---- idle timers ---- */

static void
schedule_lock(struct locktab *t, struct lock *l)
{
	lt_ms when = l->idle_deadline;

	if (!l->warned)
		when -= t->cfg.idle_warning;
	heap_set(t, l, NULL, when);
}

static void
refresh(struct locktab *t, lt_ms now, struct lock *l)
{
	l->idle_deadline = now + t->cfg.idle_timeout;
	l->warned = false;
	schedule_lock(t, l);
	dirty_lock(t, l);
}

/*
 * A live client now waits for held lock l: under LT_IDLE_CONTENDED a
 * dormant idle timer runs again.  A holder whose deadline passed while
 * nobody waited is warned afresh, so it always gets one warning period.
 */
static void
arm_idle(struct locktab *t, lt_ms now, struct lock *l)
{
	if (t->cfg.idle_policy != LT_IDLE_CONTENDED || l->holder == NULL ||
	    l->hidx != NOIDX)
		return;
	if (l->warned && l->idle_deadline <= now) {
		l->warned = false;
		dirty_lock(t, l);
	}
	schedule_lock(t, l);
}

/* ---- decisions ---- */

/* Give l to c, with a new token.  user is moved into the lock. */
static void
grant(struct locktab *t, lt_ms now, struct lock *l, struct client *c,
    char *user, struct lt_fxlist *fx)
{
	struct lt_fx *e;

	free(l->holder_user);
	l->holder = c;
	l->holder_user = user;
	l->token = ++t->last_token;
	l->since = now;
	refresh(t, now, l);
	e = fx_event(t, fx, LT_E_GRANTED, c, l);
	if (e != NULL) {
		e->token = l->token;
		e->deadline = l->idle_deadline;
	}
}

/*
 * l has no holder: give it to the first live waiter, if any.  Skipped
 * waiters (disconnected, or silent since a new epoch) keep their places;
 * those behind the new holder move up one.
 */
static void
hand_on(struct locktab *t, lt_ms now, struct lock *l, struct lt_fxlist *fx)
{
	for (size_t i = 0; i < l->nw; i++) {
		if (alive(l->w[i].c)) {
			struct waiter w = queue_take(l, i);

			grant(t, now, l, w.c, w.user, fx);
			send_positions(t, l, i, fx);
			return;
		}
	}
	if (l->nw == 0)
		fx_note(t, fx, LT_N_FREED, "", l->id);
}

/* Take l from its holder (the caller says why, and hands it on). */
static void
unhold(struct locktab *t, lt_ms now, struct lock *l)
{
	struct client *c = l->holder;

	l->holder = NULL;
	free(l->holder_user);
	l->holder_user = NULL;
	l->token = 0;
	l->since = now;
	l->warned = false;
	heap_clear(t, l->hidx);
	client_remove_lock(t, c, l);
	dirty_lock(t, l);
}

static void
revoke_event(struct locktab *t, struct lock *l, enum lt_reason why,
    const char *detail, struct lt_fxlist *fx)
{
	struct lt_fx *e = fx_event(t, fx, LT_E_REVOKED, l->holder, l);

	if (e != NULL) {
		e->reason = why;
		e->token = l->token;
		if (detail != NULL)
			copy_str(e->detail, sizeof(e->detail), detail);
	}
}

static void
revoke(struct locktab *t, lt_ms now, struct lock *l, enum lt_reason why,
    const char *detail, struct lt_fxlist *fx)
{
	revoke_event(t, l, why, detail, fx);
	unhold(t, now, l);
	hand_on(t, now, l, fx);
}

/* Waiter idx leaves l's queue: a request, or `why` when dropped. */
static void
leave_queue(struct locktab *t, struct lock *l, size_t idx, bool dropped,
    enum lt_reason why, const char *detail, struct lt_fxlist *fx)
{
	struct waiter w = queue_take(l, idx);

	if (dropped) {
		struct lt_fx *e = fx_event(t, fx, LT_E_DROPPED, w.c, l);

		if (e != NULL) {
			e->reason = why;
			if (detail != NULL)
				copy_str(e->detail, sizeof(e->detail), detail);
		}
	}
	free(w.user);
	client_remove_lock(t, w.c, l);
	dirty_lock(t, l);
	send_positions(t, l, idx, fx);
	if (l->holder == NULL && l->nw == 0)
		fx_note(t, fx, LT_N_FREED, "", l->id);
}

/* c lost everything: its grace or its roll call ran out. */
static void
expire_client(struct locktab *t, lt_ms now, struct client *c,
    struct lt_fxlist *fx)
{
	while (c->nlocks > 0 && !t->oom) {
		struct lock *l = c->locks[c->nlocks - 1];

		if (l->holder == c) {
			revoke(t, now, l, LT_REASON_DISCONNECT, NULL, fx);
		} else {
			fx_note(t, fx, LT_N_DROPPED, c->id, l->id);
			leave_queue(t, l, (size_t)waiter_index(l, c), true,
			    LT_REASON_DISCONNECT, NULL, fx);
		}
	}
}

/*
 * c is alive again (or for the first time since a roll call): every free
 * lock it waits for may now be its, and every held one has a live waiter.
 */
static void
revive(struct locktab *t, lt_ms now, struct client *c, struct lt_fxlist *fx)
{
	/*
	 * Iterate over a stable count: hand_on() may grant c a lock it waits
	 * for, which keeps the entry in c->locks.
	 */
	for (size_t i = 0; i < c->nlocks; i++) {
		struct lock *l = c->locks[i];

		if (l->holder == NULL)
			hand_on(t, now, l, fx);
		else if (l->holder != c)
			arm_idle(t, now, l);
	}
}

static void
set_client_deadline(struct locktab *t, struct client *c, lt_ms when)
{
	c->deadline = when;
	heap_set(t, NULL, c, when);
}

/* ---- the client state machine ---- */

enum client_event {
	CEV_REQUEST,  /* a valid, fresh request from it */
	CEV_WILL,     /* its will, not stale */
	CEV_ROLLCALL, /* a new epoch: everyone connected must answer */
	CEV_DEADLINE, /* its grace or roll call deadline passed */
	CEV_COUNT
};

#define CCELL(state, ev) ((int)(state)*CEV_COUNT + (int)(ev))

/*
 * Every (client state, event) pair in one place.  `window` is the roll
 * call's length (CEV_ROLLCALL only).
 */
static void
client_event(struct locktab *t, lt_ms now, struct client *c,
    enum client_event ev, lt_ms window, struct lt_fxlist *fx)
{
	lt_ms floor = now + t->cfg.grace;

	switch (CCELL(c->state, ev)) {
	case CCELL(LT_CS_LIVE, CEV_REQUEST):
	case CCELL(LT_CS_GONE, CEV_WILL): /* a repeated will: grace runs on */
		break;
	case CCELL(LT_CS_OWES, CEV_REQUEST): /* answered the roll call */
		c->state = LT_CS_LIVE;
		heap_clear(t, c->hidx);
		revive(t, now, c, fx);
		break;
	case CCELL(LT_CS_GONE, CEV_REQUEST): /* back within its grace */
		c->state = LT_CS_LIVE;
		heap_clear(t, c->hidx);
		dirty_client(t, c);
		for (size_t i = 0; i < c->nlocks; i++)
			dirty_lock(t, c->locks[i]);
		fx_note(t, fx, LT_N_RECONNECTED, c->id, "");
		revive(t, now, c, fx);
		break;
	case CCELL(LT_CS_LIVE, CEV_WILL):
	case CCELL(LT_CS_OWES, CEV_WILL): /* gone: its grace begins */
		c->state = LT_CS_GONE;
		set_client_deadline(t, c, now + t->cfg.grace);
		dirty_client(t, c);
		for (size_t i = 0; i < c->nlocks; i++)
			dirty_lock(t, c->locks[i]);
		fx_note(t, fx, LT_N_DISCONNECTED, c->id, "");
		break;
	case CCELL(LT_CS_LIVE, CEV_ROLLCALL):
		c->state = LT_CS_OWES;
		set_client_deadline(t, c,
		    now + window > floor ? now + window : floor);
		break;
	case CCELL(LT_CS_OWES, CEV_ROLLCALL): { /* a full window, floored */
		lt_ms d = now + window > floor ? now + window : floor;

		if (c->hidx != NOIDX && c->deadline != LT_NEVER &&
		    c->deadline > d)
			d = c->deadline;
		set_client_deadline(t, c, d);
		break;
	}
	case CCELL(LT_CS_GONE, CEV_ROLLCALL):
		/* Its will was heard: its own grace applies, floored. */
		if (c->deadline < floor) {
			set_client_deadline(t, c, floor);
			dirty_client(t, c); /* a GONE deadline is journaled */
		}
		break;
	case CCELL(LT_CS_OWES, CEV_DEADLINE): /* never answered */
		fx_note(t, fx, LT_N_SILENT, c->id, "");
		expire_client(t, now, c, fx);
		break;
	case CCELL(LT_CS_GONE, CEV_DEADLINE): /* grace over */
		expire_client(t, now, c, fx);
		break;
	case CCELL(LT_CS_LIVE, CEV_DEADLINE): /* no timer runs while LIVE */
	default:
		break;
	}
}

/* ---- requests: (op, lock state, role) cells ---- */

/*
 * One request in flight: the sender's client (NULL if unknown), the lock
 * (NULL if unknown, i.e. free with no waiters).
 */
struct rq_ctx {
	struct locktab *t;
	lt_ms now;
	const struct lt_request *rq;
	struct client *c;
	struct lock *l;
	struct lt_fxlist *fx;
};

static enum lt_err
refuse(struct locktab *t, const char *client, const char *lock,
    enum lt_err code, const char *message, struct lt_fxlist *fx)
{
	struct lt_fx *e = fx_push(t, fx, LT_FX_EVENT, client, lock);

	if (e != NULL) {
		e->what.event = LT_E_ERROR;
		e->code = code;
		e->message = message;
	}
	e = fx_reply(t, fx, LT_R_ERROR, client, lock);
	if (e != NULL) {
		e->code = code;
		e->message = message;
	}
	return code;
}

static void
reply_token(struct rq_ctx *x, enum lt_result r)
{
	struct lt_fx *e = fx_reply(x->t, x->fx, r, x->rq->client, x->rq->lock);

	if (e != NULL)
		e->token = x->l->token;
}

static void
event_queued(struct rq_ctx *x, uint32_t position)
{
	struct lt_fx *e = fx_event(x->t, x->fx, LT_E_QUEUED, x->c, x->l);

	if (e != NULL)
		e->position = position;
	e = fx_reply(x->t, x->fx, LT_R_QUEUED, x->rq->client, x->rq->lock);
	if (e != NULL)
		e->position = position;
}

/*
 * The user a request binds its client to: the request's uid when the
 * client is new or not bound (a bound client holds or waits, and one with
 * another uid was refused as ticket-mismatch).  NULL: no new binding.
 */
static const char *
binds(const struct rq_ctx *x)
{
	const char *uid = x->rq->uid;

	if (uid[0] == '\0' || (x->c != NULL && x->c->user != NULL))
		return NULL;
	return uid;
}

/* Would binding the request's client take its user past the cap? */
static bool
user_full(const struct rq_ctx *x)
{
	const char *uid = binds(x);
	const struct user *u = uid != NULL ? idmap_get(x->t->users, uid) : NULL;

	return u != NULL && x->t->cfg.clients_per_user > 0 &&
	    u->nclients >= x->t->cfg.clients_per_user;
}

/*
 * Room for the sender to take one more place (holder or waiter) in x->l?
 * LT_OK, or the refusal (LT_N_FULL noted where a roll call can make room).
 */
static enum lt_err
check_room(struct rq_ctx *x, bool new_waiter)
{
	struct locktab *t = x->t;
	const struct lt_request *rq = x->rq;
	const char *why = NULL;
	bool full = false;

	if (x->c != NULL && x->c->nlocks >= t->cfg.locks_per_client)
		why = "client holds or waits for too many locks";
	else if (user_full(x))
		why = "too many clients for this user";
	if (why == NULL) {
		/* Full for everyone: a roll call may find room (LT_N_FULL). */
		full = true;
		if (new_waiter && x->l->nw >= t->cfg.waiters_per_lock)
			why = "too many waiters for this lock";
		else if (x->c == NULL && t->cfg.max_clients > 0 &&
		    idmap_count(t->clients) >= t->cfg.max_clients)
			why = "too many clients";
		else if (x->l == NULL && t->cfg.max_locks > 0 &&
		    idmap_count(t->locks) >= t->cfg.max_locks)
			why = "too many locks";
	}
	if (why == NULL)
		return LT_OK;
	if (full)
		fx_note(t, x->fx, LT_N_FULL, rq->client, rq->lock);
	return refuse(t, rq->client, rq->lock, LT_ERR_LIMIT, why, x->fx);
}

/*
 * Make sure the sender has a client and the lock exists.  A sender that
 * joins a lock with a ticket is bound to its user.
 */
static enum lt_err
materialise(struct rq_ctx *x)
{
	struct locktab *t = x->t;

	if (x->c == NULL) {
		x->c = client_new(t, x->rq->client, x->rq->session);
		if (x->c == NULL)
			return LT_ERR_INTERNAL;
		x->c->max_conn = x->rq->conn;
	}
	if (x->rq->uid[0] != '\0' && x->c->user == NULL)
		client_set_user(t, x->c, x->rq->uid);
	if (x->l == NULL && (x->l = lock_new(t, x->rq->lock)) == NULL)
		return LT_ERR_INTERNAL;
	return t->oom ? LT_ERR_INTERNAL : LT_OK;
}

/* acquire, FREE, none: the lock is the sender's. */
static enum lt_err
acquire_grant(struct rq_ctx *x)
{
	enum lt_err err = materialise(x);
	char *user;

	if (err != LT_OK)
		return err;
	if ((user = dupstr(x->rq->user)) == NULL ||
	    client_add_lock(x->t, x->c, x->l) != 0) {
		free(user);
		x->t->oom = true;
		return LT_ERR_INTERNAL;
	}
	grant(x->t, x->now, x->l, x->c, user, x->fx);
	reply_token(x, LT_R_GRANTED);
	return LT_OK;
}

/* acquire, HELD, none: join the queue, or busy for a try-lock. */
static enum lt_err
acquire_queue(struct rq_ctx *x)
{
	struct locktab *t = x->t;
	struct lt_fx *e;
	enum lt_err err;
	char *user;

	if (!x->rq->wait) {
		e = fx_push(t, x->fx, LT_FX_EVENT, x->rq->client, x->rq->lock);
		if (e != NULL)
			e->what.event = LT_E_BUSY;
		fx_reply(t, x->fx, LT_R_BUSY, x->rq->client, x->rq->lock);
		return LT_OK;
	}
	if ((err = materialise(x)) != LT_OK)
		return err;
	if (reserve((void **)&x->l->w, &x->l->capw, x->l->nw + 1,
		sizeof(*x->l->w)) ||
	    reserve((void **)&t->scratch, &t->capscratch, x->l->nw + 1,
		sizeof(*t->scratch)) ||
	    (user = dupstr(x->rq->user)) == NULL) {
		t->oom = true;
		return LT_ERR_INTERNAL;
	}
	if (client_add_lock(t, x->c, x->l) != 0) {
		free(user);
		return LT_ERR_INTERNAL;
	}
	x->l->w[x->l->nw++] = (struct waiter){x->c, user};
	dirty_lock(t, x->l);
	arm_idle(t, x->now, x->l);
	event_queued(x, (uint32_t)x->l->nw);
	return LT_OK;
}

/* acquire, HELD, holder: counts as activity; granted again. */
static enum lt_err
acquire_again(struct rq_ctx *x)
{
	struct lt_fx *e;

	refresh(x->t, x->now, x->l);
	e = fx_event(x->t, x->fx, LT_E_GRANTED, x->c, x->l);
	if (e != NULL) {
		e->token = x->l->token;
		e->deadline = x->l->idle_deadline;
	}
	reply_token(x, LT_R_GRANTED);
	return LT_OK;
}

/* acquire, HELD, waiter: its place again. */
static enum lt_err
acquire_wait_again(struct rq_ctx *x)
{
	event_queued(x, (uint32_t)waiter_index(x->l, x->c) + 1);
	return LT_OK;
}

/*
 * acquire, FREE, waiter: a waiter that was gone or silent is back, and its
 * return already won it the free lock (client_event announced the grant).
 */
static enum lt_err
acquire_returned(struct rq_ctx *x)
{
	if (x->l->holder != x->c)
		return acquire_wait_again(x);
	reply_token(x, LT_R_GRANTED);
	return LT_OK;
}

/*
 * takeover, HELD, none or waiter: the holder is the same verified user in
 * another tab; it loses the lock and the sender gets it at once.
 */
static enum lt_err
takeover(struct rq_ctx *x)
{
	struct locktab *t = x->t;
	long pos = x->c != NULL ? waiter_index(x->l, x->c) : -1;
	enum lt_err err;
	char *user;

	if (pos < 0 && (err = materialise(x)) != LT_OK)
		return err;
	if ((user = dupstr(x->rq->user)) == NULL) {
		t->oom = true;
		return LT_ERR_INTERNAL;
	}
	if (pos >= 0) {
		struct waiter w = queue_take(x->l, (size_t)pos);

		free(w.user);
		send_positions(t, x->l, (size_t)pos, x->fx);
	} else if (client_add_lock(t, x->c, x->l) != 0) {
		free(user);
		return LT_ERR_INTERNAL;
	}
	revoke_event(t, x->l, LT_REASON_TAKEOVER, NULL, x->fx);
	unhold(t, x->now, x->l);
	grant(t, x->now, x->l, x->c, user, x->fx);
	reply_token(x, LT_R_GRANTED);
	return LT_OK;
}

/* release, HELD, holder: the next live waiter gets it. */
static enum lt_err
release_held(struct rq_ctx *x)
{
	fx_note(x->t, x->fx, LT_N_RELEASED, x->c->id, x->l->id);
	unhold(x->t, x->now, x->l);
	hand_on(x->t, x->now, x->l, x->fx);
	fx_reply(x->t, x->fx, LT_R_RELEASED, x->rq->client, x->rq->lock);
	return LT_OK;
}

/* release, any, waiter: leave the queue. */
static enum lt_err
release_waiting(struct rq_ctx *x)
{
	fx_note(x->t, x->fx, LT_N_LEFT_QUEUE, x->c->id, x->l->id);
	leave_queue(x->t, x->l, (size_t)waiter_index(x->l, x->c), false,
	    LT_REASON_DISCONNECT, NULL, x->fx);
	fx_reply(x->t, x->fx, LT_R_RELEASED, x->rq->client, x->rq->lock);
	return LT_OK;
}

/* activity, HELD, holder: the idle deadline moves. */
static enum lt_err
activity_held(struct rq_ctx *x)
{
	refresh(x->t, x->now, x->l);
	fx_reply(x->t, x->fx, LT_R_REFRESHED, x->rq->client, x->rq->lock);
	return LT_OK;
}

/* Anything that concerns nobody: no effect. */
static enum lt_err
ignored(struct rq_ctx *x)
{
	fx_reply(x->t, x->fx, LT_R_IGNORED, x->rq->client, x->rq->lock);
	return LT_OK;
}

/* A free lock never has a live waiter, and a holder only a held lock. */
static enum lt_err
impossible(struct rq_ctx *x)
{
	return refuse(x->t, x->rq->client, x->rq->lock, LT_ERR_INTERNAL,
	    "inconsistent lock table", x->fx);
}

/* The ops as cells see them: a takeover only where it can apply. */
enum cell_op { COP_ACQUIRE, COP_TAKEOVER, COP_RELEASE, COP_ACTIVITY, COP_N };

#define CELL(op, ls, role) (((int)(op)*2 + (int)(ls)) * 3 + (int)(role))

/*
 * Every (op, lock state, role) cell, by the state the request found.  The
 * sender's own state was settled in between (client_event: a request
 * proves it alive, so a waiter of a free lock, which is never alive, has
 * just been granted it: the FREE, waiter cells).
 */
static enum lt_err
request_cell(struct rq_ctx *x, enum cell_op op, enum lt_lock_state ls,
    enum lt_role role)
{
	switch (CELL(op, ls, role)) {
	case CELL(COP_ACQUIRE, LT_LS_FREE, LT_ROLE_NONE):
		return acquire_grant(x);
	case CELL(COP_ACQUIRE, LT_LS_FREE, LT_ROLE_WAITER):
		return acquire_returned(x);
	case CELL(COP_ACQUIRE, LT_LS_HELD, LT_ROLE_NONE):
		return acquire_queue(x);
	case CELL(COP_ACQUIRE, LT_LS_HELD, LT_ROLE_HOLDER):
	case CELL(COP_TAKEOVER, LT_LS_HELD, LT_ROLE_HOLDER):
		return acquire_again(x);
	case CELL(COP_ACQUIRE, LT_LS_HELD, LT_ROLE_WAITER):
		return acquire_wait_again(x);
	case CELL(COP_TAKEOVER, LT_LS_HELD, LT_ROLE_NONE):
	case CELL(COP_TAKEOVER, LT_LS_HELD, LT_ROLE_WAITER):
		return takeover(x);
	case CELL(COP_RELEASE, LT_LS_HELD, LT_ROLE_HOLDER):
	case CELL(COP_RELEASE, LT_LS_FREE, LT_ROLE_WAITER): /* won, gives */
		return x->l->holder == x->c ? release_held(x)
					    : release_waiting(x);
	case CELL(COP_RELEASE, LT_LS_HELD, LT_ROLE_WAITER):
		return release_waiting(x);
	case CELL(COP_ACTIVITY, LT_LS_HELD, LT_ROLE_HOLDER):
	case CELL(COP_ACTIVITY, LT_LS_FREE, LT_ROLE_WAITER): /* won it */
		return x->l->holder == x->c ? activity_held(x) : ignored(x);
	case CELL(COP_RELEASE, LT_LS_FREE, LT_ROLE_NONE):
	case CELL(COP_RELEASE, LT_LS_HELD, LT_ROLE_NONE):
	case CELL(COP_ACTIVITY, LT_LS_FREE, LT_ROLE_NONE):
	case CELL(COP_ACTIVITY, LT_LS_HELD, LT_ROLE_NONE):
	case CELL(COP_ACTIVITY, LT_LS_HELD, LT_ROLE_WAITER):
		return ignored(x);
	case CELL(COP_ACQUIRE, LT_LS_FREE, LT_ROLE_HOLDER):
	case CELL(COP_RELEASE, LT_LS_FREE, LT_ROLE_HOLDER):
	case CELL(COP_ACTIVITY, LT_LS_FREE, LT_ROLE_HOLDER):
	default:
		return impossible(x);
	}
}

/* A takeover applies when the holder is this verified user's other tab. */
static enum cell_op
cell_op(const struct rq_ctx *x)
{
	switch (x->rq->op) {
	case LT_OP_ACQUIRE:
		if (x->rq->takeover && x->rq->uid[0] != '\0' &&
		    lock_state(x->l) == LT_LS_HELD && x->l->holder != x->c &&
		    x->l->holder->user != NULL &&
		    strcmp(x->l->holder->user->uid, x->rq->uid) == 0)
			return COP_TAKEOVER;
		return COP_ACQUIRE;
	case LT_OP_RELEASE:
		return COP_RELEASE;
	case LT_OP_ACTIVITY:
	default:
		return COP_ACTIVITY;
	}
}

static bool
request_sane(const struct lt_request *rq)
{
	size_t s = bounded_len(rq->session, MQL_SESSION_MAX);

	return rq->lock[0] != '\0' && rq->client[0] != '\0' &&
	    bounded_len(rq->lock, MQL_LOCK_ID_MAX) <= MQL_LOCK_ID_MAX &&
	    bounded_len(rq->client, MQL_CLIENT_ID_MAX) <= MQL_CLIENT_ID_MAX &&
	    bounded_len(rq->user, MQL_USER_MAX) <= MQL_USER_MAX &&
	    bounded_len(rq->uid, MQL_UID_MAX) <= MQL_UID_MAX &&
	    (rq->op == LT_OP_QUERY ||
		(s >= MQL_SESSION_MIN && s <= MQL_SESSION_MAX)) &&
	    rq->conn >= -1 && rq->conn <= MQL_CONN_MAX;
}

/*
 * A request from a connection that is already gone: an older `conn` than
 * one seen, or the very connection whose will was heard.  Requests that
 * carry no conn cannot be ranked and are never stale.
 */
static bool
stale(const struct client *c, const struct lt_request *rq)
{
	return c != NULL && rq->conn >= 0 &&
	    (rq->conn < c->max_conn ||
		(rq->conn == c->max_conn && c->state == LT_CS_GONE));
}

/* Everything a valid, fresh request from an existing client tells us. */
static void
touch_client(struct locktab *t, lt_ms now, struct client *c,
    const struct lt_request *rq, struct lt_fxlist *fx)
{
	if (c->nlocks == 0 && strcmp(c->session, rq->session) != 0) {
		char *s = dupstr(rq->session);

		if (s == NULL) {
			t->oom = true;
			return;
		}
		free(c->session);
		c->session = s;
		dirty_client(t, c);
	}
	if (rq->conn > c->max_conn) {
		c->max_conn = rq->conn;
		dirty_client(t, c);
	}
	/* A holder or waiter verified now (joining binds in materialise). */
	if (rq->uid[0] != '\0' && c->user == NULL && c->nlocks > 0)
		client_set_user(t, c, rq->uid);
	client_event(t, now, c, CEV_REQUEST, 0, fx);
}

/*
 * The room a request needs, checked before it changes anything: a sender
 * that joins the lock (acquires it free, queues for it, takes it over)
 * needs room in the client, the lock, the user and the tables; any other
 * request that binds a holder or waiter to a user needs room in the user.
 */
static enum lt_err
admit(struct rq_ctx *x, enum cell_op op, enum lt_lock_state ls,
    enum lt_role role)
{
	bool joins = role == LT_ROLE_NONE &&
	    ((op == COP_ACQUIRE && (ls == LT_LS_FREE || x->rq->wait)) ||
		op == COP_TAKEOVER);

	if (joins)
		return check_room(x, op == COP_ACQUIRE && ls == LT_LS_HELD);
	/* Any request binds a holder or waiter; others bind by joining. */
	if (x->c != NULL && x->c->nlocks > 0 && user_full(x))
		return refuse(x->t, x->rq->client, x->rq->lock, LT_ERR_LIMIT,
		    "too many clients for this user", x->fx);
	return LT_OK;
}

static enum lt_err
do_request(struct locktab *t, lt_ms now, const struct lt_request *rq,
    struct lt_fxlist *fx)
{
	struct rq_ctx x = {t, now, rq, NULL, NULL, fx};
	enum lt_lock_state ls;
	enum lt_role role;
	enum cell_op op;
	enum lt_err err;
	struct lt_fx *e;

	/* The codec validated everything; refuse what slipped past it. */
	if (!request_sane(rq))
		return refuse(t, rq->client, rq->lock, LT_ERR_BAD_REQUEST,
		    "malformed request", fx);
	x.l = idmap_get(t->locks, rq->lock);
	/* A query reads; the shell describes the lock once committed. */
	if (rq->op == LT_OP_QUERY) {
		fx_reply(t, fx, LT_R_STATE, rq->client, rq->lock);
		return LT_OK;
	}
	x.c = idmap_get(t->clients, rq->client);
	if (x.c != NULL && x.c->nlocks > 0 &&
	    strcmp(x.c->session, rq->session) != 0)
		return refuse(t, rq->client, rq->lock, LT_ERR_SESSION_MISMATCH,
		    "this client id is bound to another session", fx);
	if (rq->op != LT_OP_ACQUIRE && rq->op != LT_OP_RELEASE &&
	    rq->op != LT_OP_ACTIVITY)
		return refuse(t, rq->client, rq->lock, LT_ERR_BAD_REQUEST,
		    "unknown op", fx);
	if (x.c != NULL && x.c->nlocks > 0 && rq->uid[0] != '\0' &&
	    x.c->user != NULL && strcmp(x.c->user->uid, rq->uid) != 0)
		return refuse(t, rq->client, rq->lock, LT_ERR_TICKET_MISMATCH,
		    "this client id is bound to another user", fx);
	if (stale(x.c, rq)) {
		/* Its connection is gone: nobody to tell but a reply. */
		fx_note(t, fx, LT_N_STALE, rq->client, rq->lock);
		e = fx_reply(t, fx, LT_R_ERROR, rq->client, rq->lock);
		if (e != NULL) {
			e->code = LT_ERR_STALE;
			e->message = "request from a connection that is gone";
		}
		return LT_ERR_STALE;
	}
	ls = lock_state(x.l);
	role = role_of(x.l, x.c);
	op = cell_op(&x);
	/* A refused request changes nothing: refusals come first. */
	if ((err = admit(&x, op, ls, role)) != LT_OK)
		return err;
	if (x.c != NULL)
		touch_client(t, now, x.c, rq, fx);
	if (t->oom)
		return LT_ERR_INTERNAL;
	return request_cell(&x, op, ls, role);
}

static enum lt_err
do_will(struct locktab *t, lt_ms now, const struct lt_will *w,
    struct lt_fxlist *fx)
{
	struct client *c = idmap_get(t->clients, w->client);

	if (c == NULL || c->nlocks == 0 ||
	    strcmp(c->session, w->session) != 0 ||
	    (w->conn >= 0 && w->conn < c->max_conn)) {
		fx_note(t, fx, LT_N_WILL_IGNORED, w->client, "");
		return LT_OK;
	}
	if (w->conn > c->max_conn) {
		c->max_conn = w->conn;
		dirty_client(t, c);
	}
	client_event(t, now, c, CEV_WILL, 0, fx);
	return LT_OK;
}

static enum lt_err
do_break(struct locktab *t, lt_ms now, const struct lt_admin *b,
    struct lt_fxlist *fx)
{
	struct lock *l = idmap_get(t->locks, b->lock);
	struct lt_fx *e;
	uint64_t token;

	if (lock_state(l) == LT_LS_FREE) {
		fx_reply(t, fx, LT_R_IGNORED, "", b->lock);
		return LT_OK;
	}
	token = l->token;
	revoke(t, now, l, LT_REASON_ADMIN, b->reason, fx);
	e = fx_reply(t, fx, LT_R_REVOKED, "", b->lock);
	if (e != NULL)
		e->token = token;
	return LT_OK;
}

/* Every waiter leaves, told why; the holder keeps the lock. */
static enum lt_err
do_purge(struct locktab *t, const struct lt_admin *p, struct lt_fxlist *fx)
{
	struct lock *l = idmap_get(t->locks, p->lock);
	uint32_t n = 0;
	struct lt_fx *e;

	while (l != NULL && l->nw > 0 && !t->oom) {
		fx_note(t, fx, LT_N_DROPPED, l->w[l->nw - 1].c->id, l->id);
		leave_queue(t, l, l->nw - 1, true, LT_REASON_ADMIN, p->reason,
		    fx);
		n++;
	}
	e = fx_reply(t, fx, LT_R_PURGED, "", p->lock);
	if (e != NULL)
		e->count = n;
	return LT_OK;
}

/* ---- deadlines ---- */

enum idle_cell { IDLE_WARN, IDLE_REVOKE, IDLE_DORMANT };

/*
 * The idle timer of held lock l ran out: what to do, by policy and by
 * whether the holder was warned.
 */
static enum idle_cell
idle_decide(const struct locktab *t, lt_ms now, const struct lock *l)
{
	switch (t->cfg.idle_policy) {
	case LT_IDLE_ALWAYS:
		/* Deadline reached unwarned (warning >= timeout): revoke. */
		return l->warned || now >= l->idle_deadline ? IDLE_REVOKE
							    : IDLE_WARN;
	case LT_IDLE_CONTENDED:
		if (!has_live_waiter(l))
			return IDLE_DORMANT;
		return l->warned ? IDLE_REVOKE : IDLE_WARN;
	default:
		return IDLE_DORMANT;
	}
}

static void
expire_lock(struct locktab *t, lt_ms now, struct lock *l, struct lt_fxlist *fx)
{
	struct lt_fx *e;

	switch (idle_decide(t, now, l)) {
	case IDLE_REVOKE:
		revoke(t, now, l, LT_REASON_IDLE, NULL, fx);
		break;
	case IDLE_WARN:
		/*
		 * Contended: the holder gets a full warning period, even when
		 * its deadline passed while nobody waited.
		 */
		if (t->cfg.idle_policy == LT_IDLE_CONTENDED &&
		    l->idle_deadline < now + t->cfg.idle_warning)
			l->idle_deadline = now + t->cfg.idle_warning;
		l->warned = true;
		e = fx_event(t, fx, LT_E_IDLE_WARNING, l->holder, l);
		if (e != NULL)
			e->deadline = l->idle_deadline;
		schedule_lock(t, l);
		dirty_lock(t, l);
		break;
	case IDLE_DORMANT: /* nobody waits: the timer sleeps (arm_idle) */
	default:
		break;
	}
}

static enum lt_err
do_tick(struct locktab *t, lt_ms now, struct lt_fxlist *fx)
{
	size_t batch =
	    t->cfg.tick_batch ? t->cfg.tick_batch : DEFAULT_TICK_BATCH;

	for (size_t n = 0; n < batch && t->nheap > 0 && !t->oom; n++) {
		struct hent e = t->heap[0];

		if (e.when > now)
			break;
		heap_remove_at(t, 0);
		if (e.l != NULL)
			expire_lock(t, now, e.l, fx);
		else
			client_event(t, now, e.c, CEV_DEADLINE, 0, fx);
	}
	return LT_OK;
}

struct resume_arg {
	struct locktab *t;
	lt_ms now;
	const struct lt_resume *r;
};

static int
resume_lock_cb(const char *key, void *value, void *arg)
{
	struct resume_arg *a = arg;
	struct lock *l = value;
	lt_ms floor = a->now + a->t->cfg.grace;

	if (l->holder != NULL && l->idle_deadline < floor) {
		l->idle_deadline = floor;
		schedule_lock(a->t, l);
		dirty_lock(a->t, l);
	}
	return 0;
}

static int
resume_client_cb(const char *key, void *value, void *arg)
{
	struct resume_arg *a = arg;
	struct client *c = value;

	/*
	 * A roll call calls every client; without one, those that owe an
	 * answer still get a full window and grace periods are floored.
	 */
	if (c->nlocks > 0 && (a->r->rollcall || c->state != LT_CS_LIVE))
		client_event(a->t, a->now, c, CEV_ROLLCALL, a->r->window, NULL);
	return 0;
}

static enum lt_err
do_resume(struct locktab *t, lt_ms now, const struct lt_resume *r)
{
	struct resume_arg a = {t, now, r};

	if (r->window < 0)
		return LT_ERR_BAD_REQUEST;
	idmap_foreach(t->locks, resume_lock_cb, &a);
	idmap_foreach(t->clients, resume_client_cb, &a);
	return LT_OK;
}

enum lt_err
locktab_apply(struct locktab *t, lt_ms now, const struct lt_event *ev,
    struct lt_fxlist *fx)
{
	enum lt_err err;

	t->oom = false;
	t->now = now;
	t->tag = ev->tag;
	switch (ev->kind) {
	case LT_EV_REQUEST:
		err = do_request(t, now, &ev->u.req, fx);
		break;
	case LT_EV_WILL:
		err = do_will(t, now, &ev->u.will, fx);
		break;
	case LT_EV_BREAK:
		err = do_break(t, now, &ev->u.admin, fx);
		break;
	case LT_EV_PURGE:
		err = do_purge(t, &ev->u.admin, fx);
		break;
	case LT_EV_TICK:
		err = do_tick(t, now, fx);
		break;
	case LT_EV_RESUME:
		err = do_resume(t, now, &ev->u.resume);
		break;
	default:
		err = LT_ERR_BAD_REQUEST;
		break;
	}
	if (t->oom) {
		fx->failed = true;
		return LT_ERR_INTERNAL;
	}
	return fx->failed ? LT_ERR_INTERNAL : err;
}

/* ---- lifecycle and views ---- */

struct locktab *
locktab_new(const struct lt_config *cfg)
{
	struct locktab *t;

	if (cfg->idle_timeout <= 0 || cfg->idle_warning < 0 || cfg->grace < 0 ||
	    (cfg->idle_policy != LT_IDLE_ALWAYS &&
		cfg->idle_policy != LT_IDLE_CONTENDED) ||
	    cfg->waiters_per_lock < 1 ||
	    cfg->waiters_per_lock > MQL_WAITERS_PER_LOCK ||
	    cfg->locks_per_client < 1 ||
	    cfg->locks_per_client > MQL_LOCKS_PER_CLIENT ||
	    cfg->hasher.fn == NULL)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->cfg = *cfg;
	t->locks = idmap_new(&cfg->hasher);
	t->clients = idmap_new(&cfg->hasher);
	t->users = idmap_new(&cfg->hasher);
	if (t->locks == NULL || t->clients == NULL || t->users == NULL) {
		locktab_free(t);
		return NULL;
	}
	return t;
}

static int
free_lock_cb(const char *key, void *value, void *arg)
{
	lock_free(value);
	return 0;
}

static int
free_client_cb(const char *key, void *value, void *arg)
{
	client_free(arg, value);
	return 0;
}

void
locktab_free(struct locktab *t)
{
	if (t == NULL)
		return;
	if (t->locks != NULL)
		idmap_foreach(t->locks, free_lock_cb, NULL);
	/* Users go with their last client. */
	if (t->clients != NULL && t->users != NULL)
		idmap_foreach(t->clients, free_client_cb, t);
	idmap_free(t->locks);
	idmap_free(t->clients);
	idmap_free(t->users);
	free(t->heap);
	free(t->dirty_locks);
	free(t->dirty_clients);
	free(t->scratch);
	free(t);
}

lt_ms
locktab_next_deadline(const struct locktab *t)
{
	return t->nheap > 0 ? t->heap[0].when : LT_NEVER;
}

size_t
locktab_dirty_locks(const struct locktab *t)
{
	return t->ndirty_locks;
}

size_t
locktab_dirty_clients(const struct locktab *t)
{
	return t->ndirty_clients;
}

static const char *
uid_of(const struct client *c)
{
	return c->user != NULL ? c->user->uid : NULL;
}

static void
describe_lock(struct locktab *t, const struct lock *l, struct lt_lock_rec *out)
{
	memset(out, 0, sizeof(*out));
	out->id = l->id;
	out->since = l->since;
	if (l->holder != NULL) {
		out->holder = l->holder->id;
		out->holder_user = l->holder_user;
		out->holder_uid = uid_of(l->holder);
		out->holder_connected = l->holder->state != LT_CS_GONE;
		out->token = l->token;
		out->idle_deadline = l->idle_deadline;
		out->warned = l->warned;
	}
	/* Capacity for the longest queue was reserved when it grew. */
	for (size_t i = 0; i < l->nw; i++) {
		t->scratch[i].client = l->w[i].c->id;
		t->scratch[i].user = l->w[i].user;
		t->scratch[i].uid = uid_of(l->w[i].c);
		t->scratch[i].connected = l->w[i].c->state != LT_CS_GONE;
	}
	out->nwaiters = l->nw;
	out->waiters = t->scratch;
}

bool
locktab_dirty_lock(struct locktab *t, size_t i, struct lt_lock_rec *out)
{
	const struct lock *l = t->dirty_locks[i];

	describe_lock(t, l, out);
	return l->holder != NULL || l->nw > 0;
}

static void
describe_client(const struct client *c, struct lt_client_rec *out)
{
	memset(out, 0, sizeof(*out));
	out->id = c->id;
	out->session = c->session;
	out->uid = uid_of(c);
	out->state = c->state;
	out->max_conn = c->max_conn;
	out->grace_deadline = c->state == LT_CS_GONE ? c->deadline : 0;
}

bool
locktab_dirty_client(const struct locktab *t, size_t i,
    struct lt_client_rec *out)
{
	const struct client *c = t->dirty_clients[i];

	describe_client(c, out);
	return c->nlocks > 0;
}

void
locktab_dirty_done(struct locktab *t)
{
	for (size_t i = 0; i < t->ndirty_locks; i++) {
		struct lock *l = t->dirty_locks[i];

		l->dirty = false;
		if (l->holder == NULL && l->nw == 0) {
			idmap_del(t->locks, l->id);
			lock_free(l);
		}
	}
	t->ndirty_locks = 0;
	for (size_t i = 0; i < t->ndirty_clients; i++) {
		struct client *c = t->dirty_clients[i];

		c->dirty = false;
		if (c->nlocks == 0) {
			heap_clear(t, c->hidx);
			idmap_del(t->clients, c->id);
			client_free(t, c);
		}
	}
	t->ndirty_clients = 0;
}

uint64_t
locktab_last_token(const struct locktab *t)
{
	return t->last_token;
}

size_t
locktab_nlocks(const struct locktab *t)
{
	return idmap_count(t->locks);
}

size_t
locktab_nclients(const struct locktab *t)
{
	return idmap_count(t->clients);
}

bool
locktab_view(struct locktab *t, const char *lock, struct lt_lock_rec *out)
{
	const struct lock *l = idmap_get(t->locks, lock);

	if (l == NULL)
		return false;
	describe_lock(t, l, out);
	return true;
}

bool
locktab_view_client(const struct locktab *t, const char *id,
    struct lt_client_rec *out)
{
	const struct client *c = idmap_get(t->clients, id);

	if (c == NULL)
		return false;
	describe_client(c, out);
	return true;
}

struct foreach_arg {
	struct locktab *t;
	int (*fn)(const struct lt_lock_rec *rec, void *arg);
	void *arg;
};

static int
foreach_lock_cb(const char *key, void *value, void *arg)
{
	struct foreach_arg *a = arg;
	struct lt_lock_rec rec;

	describe_lock(a->t, value, &rec);
	return a->fn(&rec, a->arg);
}

int
locktab_foreach_lock(struct locktab *t,
    int (*fn)(const struct lt_lock_rec *rec, void *arg), void *arg)
{
	struct foreach_arg a = {t, fn, arg};

	return idmap_foreach(t->locks, foreach_lock_cb, &a);
}

/* ---- restore ---- */

static bool
id_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return false;
	n = bounded_len(s, max);
	return n >= 1 && n <= max;
}

enum lt_err
locktab_restore_client(struct locktab *t, const struct lt_client_rec *rec)
{
	struct client *c;
	size_t s;

	if (!id_ok(rec->id, MQL_CLIENT_ID_MAX) || rec->session == NULL ||
	    idmap_get(t->clients, rec->id) != NULL ||
	    (rec->uid != NULL && !id_ok(rec->uid, MQL_UID_MAX)) ||
	    (rec->state != LT_CS_LIVE && rec->state != LT_CS_OWES &&
		rec->state != LT_CS_GONE))
		return LT_ERR_BAD_REQUEST;
	s = bounded_len(rec->session, MQL_SESSION_MAX);
	if (s < MQL_SESSION_MIN || s > MQL_SESSION_MAX)
		return LT_ERR_BAD_REQUEST;
	t->oom = false;
	c = client_new(t, rec->id, rec->session);
	if (c == NULL)
		return LT_ERR_INTERNAL;
	if (c->dirty) {
		/* Restored state is already journaled. */
		c->dirty = false;
		t->ndirty_clients--;
	}
	if (rec->uid != NULL) {
		client_set_user(t, c, rec->uid);
		if (c->dirty) {
			c->dirty = false;
			t->ndirty_clients--;
		}
	}
	c->max_conn = rec->max_conn;
	if (rec->state == LT_CS_GONE) {
		c->state = LT_CS_GONE;
		set_client_deadline(t, c, rec->grace_deadline);
	}
	return t->oom ? LT_ERR_INTERNAL : LT_OK;
}

enum lt_err
locktab_restore_lock(struct locktab *t, const struct lt_lock_rec *rec)
{
	struct client *holder = NULL;
	struct lock *l;

	if (!id_ok(rec->id, MQL_LOCK_ID_MAX) ||
	    idmap_get(t->locks, rec->id) != NULL ||
	    rec->nwaiters > t->cfg.waiters_per_lock ||
	    (rec->holder == NULL && rec->nwaiters == 0))
		return LT_ERR_BAD_REQUEST;
	if (rec->holder != NULL) {
		holder = idmap_get(t->clients, rec->holder);
		if (holder == NULL || rec->token == 0 ||
		    holder->nlocks >= t->cfg.locks_per_client)
			return LT_ERR_BAD_REQUEST;
	}
	for (size_t i = 0; i < rec->nwaiters; i++) {
		struct client *c =
		    idmap_get(t->clients, rec->waiters[i].client);

		if (c == NULL || c == holder ||
		    c->nlocks >= t->cfg.locks_per_client)
			return LT_ERR_BAD_REQUEST;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(rec->waiters[j].client,
				rec->waiters[i].client) == 0)
				return LT_ERR_BAD_REQUEST;
		}
	}
	t->oom = false;
	l = lock_new(t, rec->id);
	if (l == NULL)
		return LT_ERR_INTERNAL;
	if (l->dirty && !rec->repaired) {
		/* Restored state is already journaled. */
		l->dirty = false;
		t->ndirty_locks--;
	}
	l->since = rec->since;
	if (reserve((void **)&l->w, &l->capw, rec->nwaiters + 1,
		sizeof(*l->w)) ||
	    reserve((void **)&t->scratch, &t->capscratch, rec->nwaiters + 1,
		sizeof(*t->scratch)))
		goto oom;
	if (holder != NULL) {
		l->holder_user =
		    dupstr(rec->holder_user ? rec->holder_user : "");
		if (l->holder_user == NULL || client_add_lock(t, holder, l))
			goto oom;
		l->holder = holder;
		l->token = rec->token;
		l->idle_deadline = rec->idle_deadline;
		l->warned = rec->warned;
		schedule_lock(t, l);
		if (rec->token > t->last_token)
			t->last_token = rec->token;
	}
	for (size_t i = 0; i < rec->nwaiters; i++) {
		struct client *c =
		    idmap_get(t->clients, rec->waiters[i].client);
		const char *u = rec->waiters[i].user;
		char *user = dupstr(u != NULL ? u : "");

		if (user == NULL || client_add_lock(t, c, l) != 0) {
			free(user);
			goto oom;
		}
		l->w[l->nw++] = (struct waiter){c, user};
	}
	return t->oom ? LT_ERR_INTERNAL : LT_OK;
oom:
	/* Out of memory during restore: the caller gives up on the table. */
	return LT_ERR_INTERNAL;
}

void
locktab_restore_token(struct locktab *t, uint64_t last_token)
{
	if (last_token > t->last_token)
		t->last_token = last_token;
}

/*
 * Every start is a new epoch: a restored client owes an answer to the roll
 * call that the first LT_EV_RESUME opens (and dates).  Until it answers,
 * grants skip it, which is also why the journal may hold a free lock whose
 * waiters were connected: they had not answered an earlier roll call.
 */
static int
restored_cb(const char *key, void *value, void *arg)
{
	struct locktab *t = arg;
	struct client *c = value;

	if (c->nlocks == 0) {
		dirty_client(t, c);
	} else if (c->state != LT_CS_GONE) {
		c->state = LT_CS_OWES;
		set_client_deadline(t, c, LT_NEVER);
	}
	return 0;
}

void
locktab_restore_done(struct locktab *t)
{
	idmap_foreach(t->clients, restored_cb, t);
}

/* ---- invariants ---- */

struct check_arg {
	const struct locktab *t;
	const char *why;
	size_t verified; /* clients with a user */
};

static bool
client_has(const struct client *c, const struct lock *l)
{
	for (size_t i = 0; i < c->nlocks; i++) {
		if (c->locks[i] == l)
			return true;
	}
	return false;
}

/* The idle timer of a held lock: always armed, or dormant if allowed. */
static bool
idle_timer_ok(const struct locktab *t, const struct lock *l)
{
	if (l->holder == NULL)
		return l->hidx == NOIDX;
	if (l->hidx != NOIDX)
		return true;
	return t->cfg.idle_policy == LT_IDLE_CONTENDED && !has_live_waiter(l);
}

static int
check_lock_cb(const char *key, void *value, void *arg)
{
	struct check_arg *a = arg;
	const struct lock *l = value;
	bool connected_waiter = false;

	if (strcmp(key, l->id) != 0)
		a->why = "lock map key differs from lock id";
	else if (l->nw > a->t->cfg.waiters_per_lock)
		a->why = "too many waiters";
	else if (l->holder != NULL && !client_has(l->holder, l))
		a->why = "holder does not list the lock";
	else if (l->holder != NULL && l->token > a->t->last_token)
		a->why = "token above the counter";
	else if (l->holder != NULL && l->token == 0)
		a->why = "held without a token";
	else if (!idle_timer_ok(a->t, l))
		a->why = "idle timer out of step with holder";
	else if (l->hidx != NOIDX && a->t->heap[l->hidx].l != l)
		a->why = "heap index of lock is wrong";
	else if (!l->dirty && l->holder == NULL && l->nw == 0)
		a->why = "empty lock kept after flush";
	if (a->why != NULL)
		return 1;
	for (size_t i = 0; i < l->nw; i++) {
		const struct client *c = l->w[i].c;

		if (c == l->holder)
			a->why = "holder also waits";
		else if (!client_has(c, l))
			a->why = "waiter does not list the lock";
		for (size_t j = 0; j < i && a->why == NULL; j++) {
			if (l->w[j].c == c)
				a->why = "duplicate waiter";
		}
		if (a->why != NULL)
			return 1;
		connected_waiter |= alive(c);
	}
	if (l->holder == NULL && connected_waiter) {
		a->why = "free lock with a live waiter";
		return 1;
	}
	return 0;
}

static int
check_client_cb(const char *key, void *value, void *arg)
{
	struct check_arg *a = arg;
	const struct client *c = value;

	if (strcmp(key, c->id) != 0)
		a->why = "client map key differs from client id";
	else if (c->nlocks > a->t->cfg.locks_per_client)
		a->why = "client has too many locks";
	else if (c->state != LT_CS_LIVE && c->state != LT_CS_OWES &&
	    c->state != LT_CS_GONE)
		a->why = "client in no known state";
	else if (c->nlocks > 0 &&
	    (c->state != LT_CS_LIVE) != (c->hidx != NOIDX))
		a->why = "client timer out of step with its state";
	else if (c->hidx != NOIDX && a->t->heap[c->hidx].c != c)
		a->why = "heap index of client is wrong";
	else if (!c->dirty && c->nlocks == 0)
		a->why = "client without locks kept after flush";
	else if (c->user != NULL &&
	    idmap_get(a->t->users, c->user->uid) != c->user)
		a->why = "client's user is not in the user map";
	else if (c->user != NULL && c->nlocks == 0)
		a->why = "client bound to a user holds and waits for nothing";
	if (a->why != NULL)
		return 1;
	a->verified += c->user != NULL;
	for (size_t i = 0; i < c->nlocks; i++) {
		const struct lock *l = c->locks[i];

		if (idmap_get(a->t->locks, l->id) != l)
			a->why = "client lists an unknown lock";
		else if (l->holder != c && waiter_index(l, c) < 0)
			a->why =
			    "client lists a lock it neither holds nor awaits";
		for (size_t j = 0; j < i && a->why == NULL; j++) {
			if (c->locks[j] == l)
				a->why = "client lists a lock twice";
		}
		if (a->why != NULL)
			return 1;
	}
	return 0;
}

static int
sum_users_cb(const char *key, void *value, void *arg)
{
	const struct user *u = value;
	size_t *n = arg;

	if (u->nclients == 0)
		*n = SIZE_MAX;
	else if (*n != SIZE_MAX)
		*n += u->nclients;
	return 0;
}

const char *
locktab_check(const struct locktab *t)
{
	struct check_arg a = {t, NULL, 0};
	size_t users = 0;

	for (size_t i = 1; i < t->nheap; i++) {
		if (t->heap[(i - 1) / 2].when > t->heap[i].when)
			return "heap order broken";
	}
	for (size_t i = 0; i < t->nheap; i++) {
		if (*hent_idx(&t->heap[i]) != i)
			return "heap back-index broken";
	}
	idmap_foreach(t->locks, check_lock_cb, &a);
	if (a.why == NULL)
		idmap_foreach(t->clients, check_client_cb, &a);
	if (a.why != NULL)
		return a.why;
	idmap_foreach(t->users, sum_users_cb, &users);
	if (users != a.verified)
		return "user counts differ from verified clients";
	return NULL;
}
