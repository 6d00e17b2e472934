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
	size_t hidx; /* index in the deadline heap, NOIDX if none */
	char id[];
};

struct client {
	char *session;
	bool connected;
	bool unconfirmed; /* roll call unanswered; never journaled */
	bool dirty;
	int64_t max_conn;
	lt_ms grace_deadline; /* valid while disconnected or unconfirmed */
	struct lock **locks;  /* held or awaited, in no order */
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
	uint64_t last_token;

	struct hent *heap;
	size_t nheap, capheap;

	struct lock **dirty_locks;
	size_t ndirty_locks, capdirty_locks;
	struct client **dirty_clients;
	size_t ndirty_clients, capdirty_clients;

	struct lt_waiter_rec *scratch; /* views' waiter arrays */
	size_t capscratch;

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
fx_push(struct lt_fxlist *fx, enum lt_fx_kind kind, const char *client,
    const char *lock)
{
	struct lt_fx *e;

	if (reserve((void **)&fx->v, &fx->cap, fx->n + 1, sizeof(*fx->v))) {
		fx->failed = true;
		return NULL;
	}
	e = &fx->v[fx->n++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	copy_str(e->client, sizeof(e->client), client);
	copy_str(e->lock, sizeof(e->lock), lock);
	return e;
}

static struct lt_fx *
fx_event(struct lt_fxlist *fx, enum lt_event_type type, const struct client *c,
    const struct lock *l)
{
	struct lt_fx *e = fx_push(fx, LT_FX_EVENT, c->id, l->id);

	if (e != NULL)
		e->what.event = type;
	return e;
}

static struct lt_fx *
fx_reply(struct lt_fxlist *fx, enum lt_result result, const char *client,
    const char *lock)
{
	struct lt_fx *e = fx_push(fx, LT_FX_REPLY, client, lock);

	if (e != NULL)
		e->what.result = result;
	return e;
}

static void
fx_note(struct lt_fxlist *fx, enum lt_note note, const struct client *c,
    const struct lock *l)
{
	struct lt_fx *e = fx_push(fx, LT_FX_NOTE, c != NULL ? c->id : "",
	    l != NULL ? l->id : "");

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
	c->connected = true;
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
client_free(struct client *c)
{
	if (c == NULL)
		return;
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
	/* A client with nothing left is deleted at the next flush. */
	if (c->nlocks == 0)
		dirty_client(t, c);
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

/* Remove waiter i from l's queue; the caller owns what it returns. */
static struct waiter
queue_take(struct lock *l, size_t i)
{
	struct waiter w = l->w[i];

	memmove(&l->w[i], &l->w[i + 1], (l->nw - i - 1) * sizeof(*l->w));
	l->nw--;
	return w;
}

/* Tell every waiter from index `from` on its (new) place. */
static void
send_positions(struct lock *l, size_t from, struct lt_fxlist *fx)
{
	for (size_t i = from; i < l->nw; i++) {
		struct lt_fx *e = fx_event(fx, LT_E_QUEUED, l->w[i].c, l);

		if (e != NULL) {
			e->position = (uint32_t)(i + 1);
			e->moved = true;
		}
	}
}

/* ---- timers ---- */

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
	e = fx_event(fx, LT_E_GRANTED, c, l);
	if (e != NULL) {
		e->token = l->token;
		e->deadline = l->idle_deadline;
	}
}

/* Known to be alive: connected, and no roll call left unanswered. */
static bool
alive(const struct client *c)
{
	return c->connected && !c->unconfirmed;
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
			send_positions(l, i, fx);
			return;
		}
	}
	if (l->nw == 0)
		fx_note(fx, LT_N_FREED, NULL, l);
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
revoke(struct locktab *t, lt_ms now, struct lock *l, enum lt_reason why,
    const char *detail, struct lt_fxlist *fx)
{
	struct lt_fx *e = fx_event(fx, LT_E_REVOKED, l->holder, l);

	if (e != NULL) {
		e->reason = why;
		e->token = l->token;
		if (detail != NULL)
			copy_str(e->detail, sizeof(e->detail), detail);
	}
	unhold(t, now, l);
	hand_on(t, now, l, fx);
}

static void
leave_queue(struct locktab *t, struct lock *l, size_t idx, struct lt_fxlist *fx)
{
	struct waiter w = queue_take(l, idx);

	free(w.user);
	client_remove_lock(t, w.c, l);
	dirty_lock(t, l);
	send_positions(l, idx, fx);
	if (l->holder == NULL && l->nw == 0)
		fx_note(fx, LT_N_FREED, NULL, l);
}

/*
 * A valid request came from a client that was disconnected or owed an
 * answer to a roll call: it is alive.
 */
static void
reconnect(struct locktab *t, lt_ms now, struct client *c, struct lt_fxlist *fx)
{
	bool was_connected = c->connected;

	c->unconfirmed = false;
	c->connected = true;
	heap_clear(t, c->hidx);
	if (!was_connected) {
		dirty_client(t, c);
		fx_note(fx, LT_N_RECONNECTED, c, NULL);
	}
	/*
	 * Iterate over a stable count: hand_on() may grant c a lock it waits
	 * for, which keeps the entry in c->locks.
	 */
	for (size_t i = 0; i < c->nlocks; i++) {
		struct lock *l = c->locks[i];

		if (!was_connected)
			dirty_lock(t, l);
		if (l->holder == NULL)
			hand_on(t, now, l, fx);
	}
}

/* Everything a valid request from an existing client tells us. */
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
	if (!c->connected || c->unconfirmed)
		reconnect(t, now, c, fx);
}

static enum lt_err
refuse(const char *client, const char *lock, enum lt_err code,
    const char *message, struct lt_fxlist *fx)
{
	struct lt_fx *e = fx_push(fx, LT_FX_EVENT, client, lock);

	if (e != NULL) {
		e->what.event = LT_E_ERROR;
		e->code = code;
		e->message = message;
	}
	e = fx_reply(fx, LT_R_ERROR, client, lock);
	if (e != NULL) {
		e->code = code;
		e->message = message;
	}
	return code;
}

static enum lt_err
do_acquire(struct locktab *t, lt_ms now, struct client *c, struct lock *l,
    const struct lt_request *rq, struct lt_fxlist *fx)
{
	long pos = (l != NULL && c != NULL) ? waiter_index(l, c) : -1;
	struct lt_fx *e;
	char *user;

	if (l != NULL && c != NULL && l->holder == c) {
		touch_client(t, now, c, rq, fx);
		refresh(t, now, l);
		e = fx_event(fx, LT_E_GRANTED, c, l);
		if (e != NULL) {
			e->token = l->token;
			e->deadline = l->idle_deadline;
		}
		e = fx_reply(fx, LT_R_GRANTED, c->id, l->id);
		if (e != NULL)
			e->token = l->token;
		return LT_OK;
	}
	if (pos >= 0) {
		touch_client(t, now, c, rq, fx);
		/* Coming back may have made it the holder. */
		if (l->holder == c) {
			e = fx_reply(fx, LT_R_GRANTED, c->id, l->id);
			if (e != NULL)
				e->token = l->token;
			return LT_OK;
		}
		pos = waiter_index(l, c);
		e = fx_event(fx, LT_E_QUEUED, c, l);
		if (e != NULL)
			e->position = (uint32_t)pos + 1;
		e = fx_reply(fx, LT_R_QUEUED, c->id, l->id);
		if (e != NULL)
			e->position = (uint32_t)pos + 1;
		return LT_OK;
	}
	if (l != NULL && l->holder != NULL && !rq->wait) {
		if (c != NULL)
			touch_client(t, now, c, rq, fx);
		e = fx_push(fx, LT_FX_EVENT, rq->client, rq->lock);
		if (e != NULL)
			e->what.event = LT_E_BUSY;
		fx_reply(fx, LT_R_BUSY, rq->client, rq->lock);
		return LT_OK;
	}
	if (c != NULL && c->nlocks >= t->cfg.locks_per_client)
		return refuse(rq->client, rq->lock, LT_ERR_LIMIT,
		    "client holds or waits for too many locks", fx);
	if (l != NULL && l->holder != NULL && l->nw >= t->cfg.waiters_per_lock)
		return refuse(rq->client, rq->lock, LT_ERR_LIMIT,
		    "too many waiters for this lock", fx);
	if (c == NULL && t->cfg.max_clients > 0 &&
	    idmap_count(t->clients) >= t->cfg.max_clients)
		return refuse(rq->client, rq->lock, LT_ERR_LIMIT,
		    "too many clients", fx);
	if (l == NULL && t->cfg.max_locks > 0 &&
	    idmap_count(t->locks) >= t->cfg.max_locks)
		return refuse(rq->client, rq->lock, LT_ERR_LIMIT,
		    "too many locks", fx);

	if (c != NULL)
		touch_client(t, now, c, rq, fx);
	else if ((c = client_new(t, rq->client, rq->session)) != NULL)
		c->max_conn = rq->conn;
	if (c == NULL)
		return LT_ERR_INTERNAL;
	if (l == NULL && (l = lock_new(t, rq->lock)) == NULL)
		return LT_ERR_INTERNAL;
	/* touch_client() may have handed this very lock to someone. */
	if (l->holder == NULL) {
		if ((user = dupstr(rq->user)) == NULL ||
		    client_add_lock(t, c, l) != 0) {
			free(user);
			t->oom = true;
			return LT_ERR_INTERNAL;
		}
		grant(t, now, l, c, user, fx);
		e = fx_reply(fx, LT_R_GRANTED, c->id, l->id);
		if (e != NULL)
			e->token = l->token;
		return LT_OK;
	}
	if (reserve((void **)&l->w, &l->capw, l->nw + 1, sizeof(*l->w)) ||
	    reserve((void **)&t->scratch, &t->capscratch, l->nw + 1,
		sizeof(*t->scratch)) ||
	    (user = dupstr(rq->user)) == NULL) {
		t->oom = true;
		return LT_ERR_INTERNAL;
	}
	if (client_add_lock(t, c, l) != 0) {
		free(user);
		return LT_ERR_INTERNAL;
	}
	l->w[l->nw++] = (struct waiter){c, user};
	dirty_lock(t, l);
	e = fx_event(fx, LT_E_QUEUED, c, l);
	if (e != NULL)
		e->position = (uint32_t)l->nw;
	e = fx_reply(fx, LT_R_QUEUED, c->id, l->id);
	if (e != NULL)
		e->position = (uint32_t)l->nw;
	return LT_OK;
}

static enum lt_err
do_release(struct locktab *t, lt_ms now, struct client *c, struct lock *l,
    const struct lt_request *rq, struct lt_fxlist *fx)
{
	long pos;

	if (c != NULL)
		touch_client(t, now, c, rq, fx);
	if (c == NULL || l == NULL) {
		fx_reply(fx, LT_R_IGNORED, rq->client, rq->lock);
		return LT_OK;
	}
	if (l->holder == c) {
		fx_note(fx, LT_N_RELEASED, c, l);
		unhold(t, now, l);
		hand_on(t, now, l, fx);
		fx_reply(fx, LT_R_RELEASED, rq->client, rq->lock);
		return LT_OK;
	}
	pos = waiter_index(l, c);
	if (pos < 0) {
		fx_reply(fx, LT_R_IGNORED, rq->client, rq->lock);
		return LT_OK;
	}
	fx_note(fx, LT_N_LEFT_QUEUE, c, l);
	leave_queue(t, l, (size_t)pos, fx);
	fx_reply(fx, LT_R_RELEASED, rq->client, rq->lock);
	return LT_OK;
}

static enum lt_err
do_activity(struct locktab *t, lt_ms now, struct client *c, struct lock *l,
    const struct lt_request *rq, struct lt_fxlist *fx)
{
	if (c != NULL)
		touch_client(t, now, c, rq, fx);
	if (c != NULL && l != NULL && l->holder == c) {
		refresh(t, now, l);
		fx_reply(fx, LT_R_REFRESHED, rq->client, rq->lock);
	} else {
		fx_reply(fx, LT_R_IGNORED, rq->client, rq->lock);
	}
	return LT_OK;
}

static bool
request_sane(const struct lt_request *rq)
{
	size_t s = bounded_len(rq->session, MQL_SESSION_MAX);

	return rq->lock[0] != '\0' && rq->client[0] != '\0' &&
	    bounded_len(rq->lock, MQL_LOCK_ID_MAX) <= MQL_LOCK_ID_MAX &&
	    bounded_len(rq->client, MQL_CLIENT_ID_MAX) <= MQL_CLIENT_ID_MAX &&
	    bounded_len(rq->user, MQL_USER_MAX) <= MQL_USER_MAX &&
	    s >= MQL_SESSION_MIN && s <= MQL_SESSION_MAX && rq->conn >= -1 &&
	    rq->conn <= MQL_CONN_MAX;
}

static enum lt_err
do_request(struct locktab *t, lt_ms now, const struct lt_request *rq,
    struct lt_fxlist *fx)
{
	struct client *c;
	struct lock *l;

	/* The codec validated everything; refuse what slipped past it. */
	if (!request_sane(rq))
		return refuse(rq->client, rq->lock, LT_ERR_BAD_REQUEST,
		    "malformed request", fx);
	c = idmap_get(t->clients, rq->client);
	l = idmap_get(t->locks, rq->lock);
	if (c != NULL && c->nlocks > 0 && strcmp(c->session, rq->session) != 0)
		return refuse(rq->client, rq->lock, LT_ERR_SESSION_MISMATCH,
		    "this client id is bound to another session", fx);
	switch (rq->op) {
	case LT_OP_ACQUIRE:
		return do_acquire(t, now, c, l, rq, fx);
	case LT_OP_RELEASE:
		return do_release(t, now, c, l, rq, fx);
	case LT_OP_ACTIVITY:
		return do_activity(t, now, c, l, rq, fx);
	default:
		return refuse(rq->client, rq->lock, LT_ERR_BAD_REQUEST,
		    "unknown op", fx);
	}
}

static enum lt_err
do_will(struct locktab *t, lt_ms now, const struct lt_will *w,
    struct lt_fxlist *fx)
{
	struct client *c = idmap_get(t->clients, w->client);

	if (c == NULL || c->nlocks == 0 ||
	    strcmp(c->session, w->session) != 0 ||
	    (w->conn >= 0 && w->conn < c->max_conn)) {
		struct lt_fx *e = fx_push(fx, LT_FX_NOTE, w->client, "");

		if (e != NULL)
			e->what.note = LT_N_WILL_IGNORED;
		return LT_OK;
	}
	if (w->conn > c->max_conn) {
		c->max_conn = w->conn;
		dirty_client(t, c);
	}
	if (!c->connected)
		return LT_OK;
	c->connected = false;
	c->unconfirmed = false;
	c->grace_deadline = now + t->cfg.grace;
	heap_set(t, NULL, c, c->grace_deadline);
	dirty_client(t, c);
	for (size_t i = 0; i < c->nlocks; i++)
		dirty_lock(t, c->locks[i]);
	fx_note(fx, LT_N_DISCONNECTED, c, NULL);
	return LT_OK;
}

static enum lt_err
do_break(struct locktab *t, lt_ms now, const struct lt_break *b,
    struct lt_fxlist *fx)
{
	struct lock *l = idmap_get(t->locks, b->lock);
	struct lt_fx *e;
	uint64_t token;

	if (l == NULL || l->holder == NULL) {
		fx_reply(fx, LT_R_IGNORED, "", b->lock);
		return LT_OK;
	}
	token = l->token;
	revoke(t, now, l, LT_REASON_ADMIN, b->reason, fx);
	e = fx_reply(fx, LT_R_REVOKED, "", b->lock);
	if (e != NULL)
		e->token = token;
	return LT_OK;
}

/* A disconnected client's grace ended: it loses everything. */
static void
expire_client(struct locktab *t, lt_ms now, struct client *c,
    struct lt_fxlist *fx)
{
	if (c->connected)
		fx_note(fx, LT_N_SILENT, c, NULL);
	c->unconfirmed = false;
	while (c->nlocks > 0 && !t->oom) {
		struct lock *l = c->locks[c->nlocks - 1];

		if (l->holder == c) {
			revoke(t, now, l, LT_REASON_DISCONNECT, NULL, fx);
		} else {
			fx_note(fx, LT_N_DROPPED, c, l);
			leave_queue(t, l, (size_t)waiter_index(l, c), fx);
		}
	}
}

static void
expire_lock(struct locktab *t, lt_ms now, struct lock *l, struct lt_fxlist *fx)
{
	struct lt_fx *e;

	if (now >= l->idle_deadline) {
		revoke(t, now, l, LT_REASON_IDLE, NULL, fx);
		return;
	}
	e = fx_event(fx, LT_E_IDLE_WARNING, l->holder, l);
	if (e != NULL)
		e->deadline = l->idle_deadline;
	l->warned = true;
	schedule_lock(t, l);
	dirty_lock(t, l);
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
			expire_client(t, now, e.c, fx);
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
	lt_ms floor = a->now + a->t->cfg.grace;
	lt_ms deadline =
	    c->connected && !c->unconfirmed ? LT_NEVER : c->grace_deadline;

	if (c->nlocks == 0)
		return 0;
	/*
	 * A disconnected client already had its will heard: it keeps its own
	 * grace (floored below) and is not called to answer again.
	 */
	if (a->r->rollcall && c->connected)
		c->unconfirmed = true;
	/* A client that owes an answer gets at least a full window. */
	if (c->connected && c->unconfirmed &&
	    (deadline == LT_NEVER || deadline < a->now + a->r->window))
		deadline = a->now + a->r->window;
	if (deadline == LT_NEVER)
		return 0;
	if (deadline < floor)
		deadline = floor;
	if (deadline != c->grace_deadline || c->hidx == NOIDX) {
		c->grace_deadline = deadline;
		heap_set(a->t, NULL, c, deadline);
		/* Only a disconnected client's deadline is journaled. */
		if (!c->connected)
			dirty_client(a->t, c);
	}
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
	switch (ev->kind) {
	case LT_EV_REQUEST:
		err = do_request(t, now, &ev->u.req, fx);
		break;
	case LT_EV_WILL:
		err = do_will(t, now, &ev->u.will, fx);
		break;
	case LT_EV_BREAK:
		err = do_break(t, now, &ev->u.brk, fx);
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
	    cfg->waiters_per_lock < 1 ||
	    cfg->waiters_per_lock > MQL_WAITERS_PER_LOCK ||
	    cfg->locks_per_client < 1 ||
	    cfg->locks_per_client > MQL_LOCKS_PER_CLIENT)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->cfg = *cfg;
	t->locks = idmap_new();
	t->clients = idmap_new();
	if (t->locks == NULL || t->clients == NULL) {
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
	client_free(value);
	return 0;
}

void
locktab_free(struct locktab *t)
{
	if (t == NULL)
		return;
	if (t->locks != NULL)
		idmap_foreach(t->locks, free_lock_cb, NULL);
	if (t->clients != NULL)
		idmap_foreach(t->clients, free_client_cb, NULL);
	idmap_free(t->locks);
	idmap_free(t->clients);
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

static void
describe_lock(struct locktab *t, const struct lock *l, struct lt_lock_rec *out)
{
	memset(out, 0, sizeof(*out));
	out->id = l->id;
	out->since = l->since;
	if (l->holder != NULL) {
		out->holder = l->holder->id;
		out->holder_user = l->holder_user;
		out->holder_connected = l->holder->connected;
		out->token = l->token;
		out->idle_deadline = l->idle_deadline;
		out->warned = l->warned;
	}
	/* Capacity for the longest queue was reserved when it grew. */
	for (size_t i = 0; i < l->nw; i++) {
		t->scratch[i].client = l->w[i].c->id;
		t->scratch[i].user = l->w[i].user;
		t->scratch[i].connected = l->w[i].c->connected;
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
	out->connected = c->connected;
	out->unconfirmed = c->unconfirmed;
	out->max_conn = c->max_conn;
	out->grace_deadline = c->connected ? 0 : c->grace_deadline;
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
			client_free(c);
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
	    idmap_get(t->clients, rec->id) != NULL)
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
	c->connected = rec->connected;
	c->max_conn = rec->max_conn;
	if (!c->connected) {
		c->grace_deadline = rec->grace_deadline;
		heap_set(t, NULL, c, c->grace_deadline);
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
	if (l->dirty) {
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
	} else if (c->connected) {
		c->unconfirmed = true;
		c->grace_deadline = LT_NEVER;
		heap_set(t, NULL, c, LT_NEVER);
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
	else if ((l->holder != NULL) != (l->hidx != NOIDX))
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
	else if (c->nlocks > 0 &&
	    (!c->connected || c->unconfirmed) != (c->hidx != NOIDX))
		a->why = "client timer out of step with its state";
	else if (c->hidx != NOIDX && a->t->heap[c->hidx].c != c)
		a->why = "heap index of client is wrong";
	else if (!c->dirty && c->nlocks == 0)
		a->why = "client without locks kept after flush";
	if (a->why != NULL)
		return 1;
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

const char *
locktab_check(const struct locktab *t)
{
	struct check_arg a = {t, NULL};

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
	return a.why;
}
