/* ltfix: lock-table fixtures for the journal tests (ltfix.h). */
#include "ltfix.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/limits.h"

int
ltfix_request(struct locktab *t, lt_ms now, enum lt_op op, const char *lock,
    const char *client, const char *user)
{
	struct lt_event ev = {.kind = LT_EV_REQUEST};
	struct lt_fxlist fx = {0};
	int rc;

	ev.u.req.op = op;
	snprintf(ev.u.req.lock, sizeof(ev.u.req.lock), "%s", lock);
	snprintf(ev.u.req.client, sizeof(ev.u.req.client), "%s", client);
	snprintf(ev.u.req.session, sizeof(ev.u.req.session),
	    "session-of-%s-000000", client);
	snprintf(ev.u.req.user, sizeof(ev.u.req.user), "%s", user);
	ev.u.req.conn = 4;
	ev.u.req.wait = true;
	rc = locktab_apply(t, now, &ev, &fx);
	lt_fxlist_free(&fx);
	return rc;
}

void
ltfix_will(struct locktab *t, lt_ms now, const char *client)
{
	struct lt_event ev = {.kind = LT_EV_WILL};
	struct lt_fxlist fx = {0};

	snprintf(ev.u.will.client, sizeof(ev.u.will.client), "%s", client);
	snprintf(ev.u.will.session, sizeof(ev.u.will.session),
	    "session-of-%s-000000", client);
	ev.u.will.conn = 5;
	assert_int_equal(locktab_apply(t, now, &ev, &fx), LT_OK);
	lt_fxlist_free(&fx);
}

void
ltfix_assert_same_client(struct locktab *a, struct locktab *b, const char *id)
{
	struct lt_client_rec ca, cb;
	bool ina = locktab_view_client(a, id, &ca);

	assert_int_equal(ina, locktab_view_client(b, id, &cb));
	if (!ina)
		return;
	assert_string_equal(ca.session, cb.session);
	assert_int_equal(ca.state == LT_CS_GONE, cb.state == LT_CS_GONE);
	assert_true((ca.uid == NULL) == (cb.uid == NULL));
	assert_int_equal(ca.max_conn, cb.max_conn);
	assert_int_equal(ca.grace_deadline, cb.grace_deadline);
}

/* locktab_foreach_lock() callback: a's lock ra is the same in b (arg). */
static int
same_lock(const struct lt_lock_rec *ra, void *arg)
{
	struct locktab *b = arg;
	struct lt_lock_rec rb;
	static struct lt_waiter_rec wa[MQL_WAITERS_PER_LOCK];
	char holder[MQL_CLIENT_ID_SZ] = "", user[MQL_USER_SZ] = "";

	/* Copy a's record: viewing b reuses b's scratch, not a's. */
	if (ra->nwaiters > 0)
		memcpy(wa, ra->waiters, ra->nwaiters * sizeof(*wa));
	if (ra->holder != NULL) {
		snprintf(holder, sizeof(holder), "%s", ra->holder);
		snprintf(user, sizeof(user), "%s", ra->holder_user);
	}
	assert_true(locktab_view(b, ra->id, &rb));
	assert_int_equal(ra->holder == NULL, rb.holder == NULL);
	if (ra->holder != NULL) {
		assert_string_equal(holder, rb.holder);
		assert_string_equal(user, rb.holder_user);
		assert_int_equal(ra->holder_connected, rb.holder_connected);
		assert_int_equal(ra->idle_deadline, rb.idle_deadline);
		assert_int_equal(ra->warned, rb.warned);
	}
	assert_int_equal(ra->token, rb.token);
	assert_int_equal(ra->since, rb.since);
	assert_int_equal(ra->nwaiters, rb.nwaiters);
	for (size_t i = 0; i < ra->nwaiters; i++) {
		assert_string_equal(wa[i].client, rb.waiters[i].client);
		assert_string_equal(wa[i].user, rb.waiters[i].user);
		assert_int_equal(wa[i].connected, rb.waiters[i].connected);
	}
	return 0;
}

void
ltfix_assert_same_tables(struct locktab *a, struct locktab *b,
    const char *const *clients)
{
	assert_int_equal(locktab_nlocks(a), locktab_nlocks(b));
	assert_int_equal(locktab_nclients(a), locktab_nclients(b));
	assert_true(locktab_last_token(b) >= locktab_last_token(a));
	assert_int_equal(locktab_next_deadline(a), locktab_next_deadline(b));
	locktab_foreach_lock(a, same_lock, b);
	for (size_t i = 0; clients != NULL && clients[i] != NULL; i++)
		ltfix_assert_same_client(a, b, clients[i]);
}
