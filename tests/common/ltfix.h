/*
 * ltfix: lock-table fixtures for the journal tests (tests/unit/test_store.c
 * with sqlite, tests/ha/test_store_etcd.c with etcd): build a table with
 * requests and wills, and compare a table with the one a journal gave back.
 * The assertions are cmocka's: call them from a cmocka test.
 */
#ifndef MQLOCK_TESTS_LTFIX_H
#define MQLOCK_TESTS_LTFIX_H

#include "core/locktab.h"

/*
 * Applies one request of client (session "session-of-<client>-000000",
 * conn 4, waiting allowed) to t at now, and returns locktab_apply()'s
 * result; the effects are dropped.
 */
int ltfix_request(struct locktab *t, lt_ms now, enum lt_op op, const char *lock,
    const char *client, const char *user);

/* Applies client's will (the session above, conn 5); asserts LT_OK. */
void ltfix_will(struct locktab *t, lt_ms now, const char *client);

/*
 * Asserts that id is in both tables or in neither, and, where it is, that
 * both records agree: session, gone or not, verified or not, conn and
 * grace deadline.
 */
void ltfix_assert_same_client(struct locktab *a, struct locktab *b,
    const char *id);

/*
 * Asserts that b holds what a holds: the same counts, next deadline and
 * locks (holder, user, connected, idle deadline, warning, token, since,
 * waiters in order), a last token at least a's (a journal reserves
 * tokens in blocks), and the same records for each id in clients (a NULL-
 * terminated list, or NULL).
 */
void ltfix_assert_same_tables(struct locktab *a, struct locktab *b,
    const char *const *clients);

#endif
