/*
 * store_etcd: the journal in etcd against real members.  Round trips equal
 * the sqlite journal's; writes are fenced on the leader's term (a stale
 * leader changes nothing); token blocks stay strictly increasing across
 * leaders; batches past etcd's limits are staged and never half visible,
 * even when the writer dies at any moment; etcd down or without quorum is
 * a clear error and service resumes when it is back; a broken journal is
 * refused.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/locktab.h"
#include "etcdtest.h"
#include "io/clock.h"
#include "io/etcd.h"
#include "io/leader.h"
#include "io/siphash.h"
#include "io/store.h"
#include "io/store_etcd.h"
#include "ltfix.h"
#include "tutil.h"

#define WAIT_MS 30000

static const struct lt_config cfg = {
    .idle_timeout = 10000,
    .idle_warning = 2000,
    .grace = 3000,
    .waiters_per_lock = MQL_WAITERS_PER_LOCK,
    .locks_per_client = MQL_LOCKS_PER_CLIENT,
    .hasher = {siphash_str, (const unsigned char *)"etcd-store-tests"},
};

static struct etcdtest *cluster;
static struct etcd_opts eopts;
static bool in_child; /* a forked writer: no cmocka, _exit on failure */
static char prefix[64];
static int nprefix;

/* Fixtures ------------------------------------------------------------- */

static int
start(int members)
{
	struct etcdtest_opts o = {.members = members};

	if ((cluster = etcdtest_start(&o)) == NULL)
		return -1;
	memset(&eopts, 0, sizeof(eopts));
	eopts.endpoints = etcdtest_endpoints(cluster);
	eopts.timeout_ms = 2000;
	return 0;
}

static int
setup1(void **state)
{
	return start(1);
}

static int
setup3(void **state)
{
	return start(3);
}

static int
teardown(void **state)
{
	etcdtest_stop(cluster, false);
	return 0;
}

/* A fresh key prefix per test. */
static int
each(void **state)
{
	snprintf(prefix, sizeof(prefix), "j%d/", ++nprefix);
	return 0;
}

static struct etcd *
client(void)
{
	char err[256];
	struct etcd *e = etcd_new(&eopts, err, sizeof(err));

	if (e == NULL)
		fail_msg("etcd_new: %s", err);
	return e;
}

static struct store_etcd *
open_store(void)
{
	char err[256];
	struct store_etcd *s =
	    store_etcd_open(&eopts, prefix, err, sizeof(err));

	if (s == NULL)
		fail_msg("store_etcd_open: %s", err);
	return s;
}

/*
 * A term without a leader thread: the leader key on a long lease, as
 * leader.c would create it.  Returns the term; *lease gets the lease.
 */
static int64_t
take_term(struct etcd *e, const char *who, int64_t *lease)
{
	char key[96];
	int64_t ttl;
	struct etcd_txn *t = etcd_txn_new();
	struct etcd_txn_result res;
	int64_t term;

	snprintf(key, sizeof(key), "%sleader", prefix);
	assert_int_equal(etcd_lease_grant(e, 120, lease, &ttl), ETCD_OK);
	etcd_txn_compare(t, key, ETCD_CREATE, ETCD_EQUAL, 0);
	etcd_txn_put(t, true, key, who, strlen(who), *lease);
	assert_int_equal(etcd_txn_commit(e, t, &res), ETCD_OK);
	assert_true(res.succeeded);
	term = res.revision;
	etcd_txn_result_clear(&res);
	etcd_txn_free(t);
	return term;
}

/* Tables ----------------------------------------------------------------- */

/* One request that the table must accept (in a forked writer: or exit 3). */
static void
apply_req(struct locktab *t, lt_ms now, enum lt_op op, const char *lock,
    const char *client_id, const char *user)
{
	if (ltfix_request(t, now, op, lock, client_id, user) != LT_OK) {
		if (in_child)
			_exit(3);
		fail_msg("%s %s by %s refused",
		    op == LT_OP_ACQUIRE ? "acquire" : "release", lock,
		    client_id);
	}
}

/* The token of lock's holder in t (0: free). */
static uint64_t
token_of(struct locktab *t, const char *lock)
{
	struct lt_lock_rec rec;

	return locktab_view(t, lock, &rec) && rec.holder != NULL ? rec.token
								 : 0;
}

static void
flush_ok(struct store_etcd *s, struct locktab *t)
{
	int rc = store_etcd_flush(s, t);

	if (rc != STORE_ETCD_OK)
		fail_msg("flush: %d: %s", rc, store_etcd_error(s));
}

/* A fresh table loaded from the journal in etcd. */
static struct locktab *
load(struct store_etcd *s)
{
	struct locktab *t = locktab_new(&cfg);
	int rc = store_etcd_load(s, t);

	if (rc != STORE_ETCD_OK)
		fail_msg("load: %d: %s", rc, store_etcd_error(s));
	assert_int_equal(locktab_dirty_locks(t), 0);
	assert_null(locktab_check(t));
	return t;
}

/* The same from a sqlite journal. */
static struct locktab *
load_sqlite(const char *path)
{
	char err[256];
	struct store *s = store_open(path, err, sizeof(err));
	struct locktab *t = locktab_new(&cfg);

	if (s == NULL)
		fail_msg("store_open: %s", err);
	assert_int_equal(store_load(s, t), 0);
	store_close(s);
	return t;
}

/*
 * Every journal key under the prefix but the leader's, with its value and
 * mod_revision, as one string: what a write could have changed.
 */
static char *
journal_snapshot(struct etcd *e)
{
	struct etcd_range r;
	size_t cap = 1 << 20, used = 0;
	char *out = calloc(1, cap), leader[96];

	snprintf(leader, sizeof(leader), "%sleader", prefix);
	assert_int_equal(etcd_range(e, prefix,
			     &(struct etcd_range_opts){.prefix = prefix}, &r),
	    ETCD_OK);
	for (size_t i = 0; i < r.n; i++) {
		if (strcmp(r.kvs[i].key, leader) == 0)
			continue;
		used += (size_t)snprintf(out + used, cap - used, "%s=%s@%lld\n",
		    r.kvs[i].key, r.kvs[i].value,
		    (long long)r.kvs[i].mod_revision);
		assert_true(used < cap);
	}
	etcd_range_clear(&r);
	return out;
}

/* Tests ------------------------------------------------------------------ */

static void
test_bad_options(void **state)
{
	char err[256];

	assert_null(store_etcd_open(&eopts, "", err, sizeof(err)));
	assert_null(store_etcd_open(&eopts, NULL, err, sizeof(err)));
	assert_null(store_etcd_open(&eopts, "a b/", err, sizeof(err)));
	assert_null(store_etcd_open(&eopts, "a\n/", err, sizeof(err)));
	assert_null(store_etcd_open(&(struct etcd_opts){.endpoints = "x"}, "p/",
	    err, sizeof(err)));
	store_etcd_close(NULL);
}

/* The same table, journaled in sqlite and in etcd, loads the same. */
static void
test_round_trip_equals_sqlite(void **state)
{
	static const char *const ids[] = {"alice", "bob", "carol", "dave",
	    "eve", NULL};
	struct etcd *e = client();
	struct store_etcd *s = open_store();
	struct locktab *t = locktab_new(&cfg), *a, *b;
	char dir[64], path[96], err[256], cmd[128];
	struct store *sq;
	int64_t lease;
	uint64_t epoch = 0;

	snprintf(dir, sizeof(dir), "/tmp/mqlock-sq-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/j.db", dir);
	assert_non_null(sq = store_open(path, err, sizeof(err)));

	store_etcd_set_term(s, take_term(e, "me", &lease));
	assert_int_equal(store_etcd_next_epoch(s, &epoch), 0);
	assert_int_equal(epoch, 1);
	a = load(s); /* empty so far */
	assert_int_equal(locktab_nlocks(a), 0);
	locktab_free(a);

	apply_req(t, 1000, LT_OP_ACQUIRE, "doc-1", "alice", "Alice");
	apply_req(t, 1001, LT_OP_ACQUIRE, "doc-1", "bob", "Bob \"B\" \\ ✓");
	apply_req(t, 1002, LT_OP_ACQUIRE, "doc-1", "carol", "");
	apply_req(t, 1003, LT_OP_ACQUIRE, "doc-2", "bob", "Bob");
	apply_req(t, 1004, LT_OP_ACQUIRE, "doc-3", "dave", "Dave");
	apply_req(t, 1005, LT_OP_ACQUIRE, "ドキュメント", "eve", "Eve");
	assert_int_equal(store_flush(sq, t), 0);
	flush_ok(s, t);
	locktab_dirty_done(t);
	ltfix_will(t, 1006, "carol");
	apply_req(t, 1007, LT_OP_RELEASE, "doc-3", "dave", "");
	apply_req(t, 1008, LT_OP_RELEASE, "ドキュメント", "eve", "");
	assert_int_equal(store_flush(sq, t), 0);
	flush_ok(s, t);
	locktab_dirty_done(t);
	store_close(sq);

	a = load_sqlite(path);
	b = load(s);
	ltfix_assert_same_tables(a, b, ids);
	ltfix_assert_same_tables(t, b, ids);
	assert_int_equal(locktab_last_token(a), locktab_last_token(b));
	assert_int_equal(locktab_last_token(b), 1004);
	assert_int_equal(locktab_nlocks(b), 2);
	locktab_free(a);
	locktab_free(b);

	assert_int_equal(store_etcd_next_epoch(s, &epoch), 0);
	assert_int_equal(epoch, 2);
	assert_int_equal(store_etcd_staged(s), 0);
	store_etcd_close(s);
	assert_int_equal(etcd_lease_revoke(e, lease), ETCD_OK);
	etcd_free(e);
	locktab_free(t);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Wait until exactly c leads; its term. */
static int64_t
wait_leading(struct leader *c)
{
	int64_t term = 0;

	for (long long end = tutil_mono_ms() + WAIT_MS;;) {
		if (leader_check(c, clock_mono_ms(), &term))
			return term;
		assert_true(tutil_mono_ms() < end);
		tutil_nap_ms(20);
	}
}

static struct leader *
candidate(const char *id)
{
	struct leader_opts o = {.etcd = &eopts,
	    .prefix = prefix,
	    .id = id,
	    .ttl_s = 3,
	    .margin_ms = 500,
	    .retry_ms = 100,
	    .campaign = true};
	char err[256];
	struct leader *l = leader_new(&o, err, sizeof(err));

	if (l == NULL)
		fail_msg("leader_new: %s", err);
	return l;
}

/*
 * Fencing with real leaders: the leader's store writes; once its lease is
 * gone and another leads, every write of the old one is refused and
 * changes nothing; the new leader loads what the old one committed; tokens
 * go on strictly above everything granted before.
 */
static void
test_fencing_and_tokens(void **state)
{
	struct etcd *e = client();
	struct leader *l1 = candidate("one"), *l2;
	struct store_etcd *s1 = open_store(), *s2 = open_store();
	struct locktab *t1 = locktab_new(&cfg), *t2;
	struct leader_status st;
	int64_t term1, term2;
	uint64_t epoch, last_seen = 0, tok;
	char *before, *after;

	term1 = wait_leading(l1);
	l2 = candidate("two");
	store_etcd_set_term(s1, term1);
	assert_int_equal(store_etcd_next_epoch(s1, &epoch), 0);
	/* Leader one grants tokens 1..3 and commits (block to 1003), then
	 * grants more it never commits. */
	for (int i = 0; i < 3; i++) {
		char lock[16];

		snprintf(lock, sizeof(lock), "l%d", i);
		apply_req(t1, 100 + i, LT_OP_ACQUIRE, lock, "alice", "A");
		assert_true((tok = token_of(t1, lock)) > last_seen);
		last_seen = tok;
	}
	flush_ok(s1, t1);
	locktab_dirty_done(t1);
	apply_req(t1, 200, LT_OP_ACQUIRE, "l9", "bob", "B");
	assert_true((tok = token_of(t1, "l9")) > last_seen);
	last_seen = tok;

	/* Its lease goes: two takes over (one stops campaigning, so that
	 * it is two). */
	leader_resume(l1, false);
	leader_status(l1, &st);
	assert_int_equal(etcd_lease_revoke(e, st.lease), ETCD_OK);
	term2 = wait_leading(l2);
	assert_true(term2 > term1);
	/* One learns it at its next renewal. */
	for (long long end = tutil_mono_ms() + WAIT_MS;;) {
		if (!leader_check(l1, clock_mono_ms(), NULL))
			break;
		assert_true(tutil_mono_ms() < end);
		tutil_nap_ms(20);
	}

	/* One's writes are refused and change nothing. */
	before = journal_snapshot(e);
	assert_int_equal(store_etcd_flush(s1, t1), STORE_ETCD_FENCED);
	assert_non_null(strstr(store_etcd_error(s1), "two"));
	assert_int_equal(store_etcd_next_epoch(s1, &epoch), STORE_ETCD_FENCED);
	after = journal_snapshot(e);
	assert_string_equal(before, after);
	free(before);
	free(after);
	/* Without a term nothing is even sent. */
	store_etcd_set_term(s1, 0);
	assert_int_equal(store_etcd_flush(s1, t1), STORE_ETCD_FENCED);

	/* Two loads one's committed state (not l9) and grants above every
	 * token one ever handed out. */
	store_etcd_set_term(s2, term2);
	t2 = load(s2);
	assert_int_equal(locktab_nlocks(t2), 3);
	assert_int_equal(token_of(t2, "l9"), 0);
	assert_int_equal(locktab_last_token(t2), 1003);
	for (int i = 0; i < 3; i++) {
		char lock[16];

		snprintf(lock, sizeof(lock), "m%d", i);
		apply_req(t2, 300 + i, LT_OP_ACQUIRE, lock, "carol", "C");
		assert_true((tok = token_of(t2, lock)) > last_seen);
		last_seen = tok;
		flush_ok(s2, t2);
		locktab_dirty_done(t2);
	}
	assert_int_equal(last_seen, 1006);

	/* Two goes; one leads again (a new term), loads, goes on above. */
	leader_free(l2);
	leader_resume(l1, true);
	term1 = wait_leading(l1);
	assert_true(term1 > term2);
	store_etcd_set_term(s1, term1);
	locktab_free(t1);
	t1 = load(s1);
	assert_int_equal(locktab_nlocks(t1), 6);
	assert_int_equal(locktab_last_token(t1), 1004 + 1000);
	apply_req(t1, 400, LT_OP_ACQUIRE, "n0", "dave", "D");
	assert_true(token_of(t1, "n0") > last_seen);
	flush_ok(s1, t1);
	locktab_dirty_done(t1);

	leader_free(l1);
	store_etcd_close(s1);
	store_etcd_close(s2);
	locktab_free(t1);
	locktab_free(t2);
	etcd_free(e);
}

/* n clients, each holding its own lock and waiting for the others' (a few
 * waiters each): a batch of many records. */
static void
big_batch(struct locktab *t, int n, lt_ms now)
{
	char lock[32], id[32], user[96];

	for (int i = 0; i < n; i++) {
		snprintf(lock, sizeof(lock), "big-%04d", i);
		snprintf(id, sizeof(id), "client-%04d", i);
		snprintf(user, sizeof(user),
		    "User %04d, with a name long enough to fill a record", i);
		apply_req(t, now + i, LT_OP_ACQUIRE, lock, id, user);
		for (int k = 1; k <= 3; k++) {
			char other[32];

			snprintf(other, sizeof(other), "big-%04d",
			    (i + k * 7) % n);
			if ((i + k * 7) % n < i)
				apply_req(t, now + i, LT_OP_ACQUIRE, other, id,
				    user);
		}
	}
}

/* Batches past the operation and byte limits go the staged way, and load
 * exactly like a small one. */
static void
test_staged_batches(void **state)
{
	struct etcd *e = client();
	struct store_etcd *s;
	struct locktab *t = locktab_new(&cfg), *b;
	struct etcd_range r;
	int64_t lease;
	char stage[96], err[256];
	struct etcd_opts small = eopts;

	/* Past 128 operations: 600 records. */
	s = open_store();
	store_etcd_set_term(s, take_term(e, "me", &lease));
	big_batch(t, 300, 1000);
	assert_true(locktab_dirty_locks(t) + locktab_dirty_clients(t) > 128);
	flush_ok(s, t);
	locktab_dirty_done(t);
	assert_int_equal(store_etcd_staged(s), 1);
	b = load(s);
	ltfix_assert_same_tables(t, b, NULL);
	locktab_free(b);
	/* Nothing is left of the staging. */
	snprintf(stage, sizeof(stage), "%sstage/", prefix);
	assert_int_equal(
	    etcd_range(e, stage,
		&(struct etcd_range_opts){.prefix = stage, .count_only = true},
		&r),
	    ETCD_OK);
	assert_int_equal(r.count, 0);
	etcd_range_clear(&r);
	/* A small batch after it takes one transaction again. */
	apply_req(t, 5000, LT_OP_RELEASE, "big-0000", "client-0000", "");
	flush_ok(s, t);
	locktab_dirty_done(t);
	assert_int_equal(store_etcd_staged(s), 1);
	store_etcd_close(s);

	/* Past the byte limit (a cluster configured small) with fewer than
	 * 128 records: several chunks, several transactions to copy them
	 * into place. */
	assert_int_equal(etcd_lease_revoke(e, lease), ETCD_OK);
	each(state);
	small.max_request_bytes = 16 * 1024;
	assert_non_null(s = store_etcd_open(&small, prefix, err, sizeof(err)));
	store_etcd_set_term(s, take_term(e, "me", &lease));
	locktab_free(t);
	t = locktab_new(&cfg);
	big_batch(t, 50, 9000);
	assert_true(locktab_dirty_locks(t) + locktab_dirty_clients(t) < 128);
	flush_ok(s, t);
	locktab_dirty_done(t);
	assert_int_equal(store_etcd_staged(s), 1);
	b = load(s);
	ltfix_assert_same_tables(t, b, NULL);
	locktab_free(b);
	store_etcd_close(s);
	assert_int_equal(etcd_lease_revoke(e, lease), ETCD_OK);
	locktab_free(t);
	etcd_free(e);
}

/* Remove every record of the journal (the test owns it). */
static void
wipe(struct etcd *e)
{
	static const char *const kinds[] = {"client/", "lock/", "stage/",
	    "meta/pending"};
	char key[96];

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		snprintf(key, sizeof(key), "%s%s", prefix, kinds[i]);
		assert_int_equal(etcd_delete(e, key, true, NULL), ETCD_OK);
	}
}

/*
 * A writer killed at any moment of a staged batch: the journal holds the
 * batch entirely or not at all.  The writer is a child process (the test
 * holds the term and lends it); the test then loads and compares with the
 * tables before and after the batch.  The last round is not killed.
 */
static void
test_staged_atomic_under_kill(void **state)
{
	enum { ROUNDS = 16, CLIENTS = 200 };
	struct etcd *e = client();
	struct store_etcd *s = open_store();
	struct locktab *after = locktab_new(&cfg), *got;
	struct etcd_range r;
	char pending[96];
	int64_t lease, term;
	int none = 0, all = 0, midway = 0;

	snprintf(pending, sizeof(pending), "%smeta/pending", prefix);
	term = take_term(e, "me", &lease);
	store_etcd_set_term(s, term);
	big_batch(after, CLIENTS, 1000);
	for (int round = 0; round < ROUNDS; round++) {
		pid_t pid;
		int st;

		wipe(e);
		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char err[256];
			struct store_etcd *c;
			struct locktab *ct = locktab_new(&cfg);

			in_child = true;
			c = store_etcd_open(&eopts, prefix, err, sizeof(err));
			if (c == NULL || ct == NULL)
				_exit(2);
			store_etcd_set_term(c, term);
			big_batch(ct, CLIENTS, 1000);
			_exit(store_etcd_flush(c, ct) == 0 ? 0 : 1);
		}
		/* From at once to past its end. */
		if (round < ROUNDS - 1) {
			tutil_nap_ms(round * 6);
			kill(pid, SIGKILL);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (round == ROUNDS - 1)
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(etcd_range(e, pending, NULL, &r), ETCD_OK);
		midway += r.n == 1;
		etcd_range_clear(&r);
		got = load(s);
		if (locktab_nlocks(got) == 0 && locktab_nclients(got) == 0) {
			none++;
		} else {
			ltfix_assert_same_tables(after, got, NULL);
			all++;
		}
		locktab_free(got);
	}
	print_message("staged batch, writer killed %d times: absent %d, "
		      "complete %d (%d of them finished by the loader)\n",
	    ROUNDS - 1, none, all, midway);
	assert_true(all >= 1);
	store_etcd_close(s);
	assert_int_equal(etcd_lease_revoke(e, lease), ETCD_OK);
	locktab_free(after);
	etcd_free(e);
}

/* A journal this version cannot read is refused with the reason. */
static void
test_broken_journal(void **state)
{
	struct etcd *e = client();
	struct store_etcd *s = open_store();
	struct locktab *t = locktab_new(&cfg);
	char key[96];
	int64_t lease;

	store_etcd_set_term(s, take_term(e, "me", &lease));
	snprintf(key, sizeof(key), "%slock/doc", prefix);
	assert_int_equal(etcd_put(e, key, "{not json", 9, 0, NULL), ETCD_OK);
	assert_int_equal(store_etcd_load(s, t), STORE_ETCD_BROKEN);
	assert_non_null(strstr(store_etcd_error(s), "lock/doc"));
	locktab_free(t);
	assert_int_equal(etcd_put(e, key,
			     "{\"holder\":\"nobody\",\"holder_user\":\"\","
			     "\"token\":\"1\",\"since\":\"1\","
			     "\"idle_deadline\":\"1\",\"warned\":false,"
			     "\"queue\":[]}",
			     114, 0, NULL),
	    ETCD_OK);
	t = locktab_new(&cfg);
	/* A holder that is no known client breaks the table's rules. */
	assert_int_equal(store_etcd_load(s, t), STORE_ETCD_BROKEN);
	locktab_free(t);
	assert_int_equal(etcd_delete(e, key, false, NULL), ETCD_OK);
	snprintf(key, sizeof(key), "%smeta/schema", prefix);
	assert_int_equal(etcd_put(e, key, "2", 1, 0, NULL), ETCD_OK);
	t = locktab_new(&cfg);
	assert_int_equal(store_etcd_load(s, t), STORE_ETCD_BROKEN);
	assert_non_null(strstr(store_etcd_error(s), "schema"));
	locktab_free(t);
	store_etcd_close(s);
	assert_int_equal(etcd_lease_revoke(e, lease), ETCD_OK);
	etcd_free(e);
}

/* Retry op until it works, with a generous deadline (etcd is settling). */
#define retry(op)                                                      \
	do {                                                           \
		long long end_ = tutil_mono_ms() + WAIT_MS;            \
		int rc_;                                               \
		while ((rc_ = (op)) != 0) {                            \
			assert_int_equal(rc_, STORE_ETCD_UNAVAILABLE); \
			assert_true(tutil_mono_ms() < end_);           \
			tutil_nap_ms(100);                             \
		}                                                      \
	} while (0)

/*
 * etcd gone (one member killed, or two of three): a clear error by the
 * deadline, the batch kept, nothing crashes; back, the same batch goes in
 * and loads.
 */
static void
outage(int kill_members)
{
	struct etcd *e = client();
	struct store_etcd *s = open_store();
	struct locktab *t = locktab_new(&cfg), *b;
	int64_t lease;
	uint64_t epoch;
	long long t0;

	store_etcd_set_term(s, take_term(e, "me", &lease));
	apply_req(t, 10, LT_OP_ACQUIRE, "doc", "alice", "A");
	flush_ok(s, t);
	locktab_dirty_done(t);
	apply_req(t, 11, LT_OP_ACQUIRE, "doc", "bob", "B");
	for (int i = 0; i < kill_members; i++)
		assert_int_equal(etcdtest_signal(cluster, 2 - i, SIGKILL), 0);
	t0 = tutil_mono_ms();
	assert_int_equal(store_etcd_flush(s, t), STORE_ETCD_UNAVAILABLE);
	assert_true(strlen(store_etcd_error(s)) > 0);
	assert_int_equal(store_etcd_next_epoch(s, &epoch),
	    STORE_ETCD_UNAVAILABLE);
	b = locktab_new(&cfg);
	assert_int_equal(store_etcd_load(s, b), STORE_ETCD_UNAVAILABLE);
	locktab_free(b);
	/* Each call is bounded by the 2 s timeout, never hangs. */
	assert_true(tutil_mono_ms() - t0 < 3 * 2000 + 5000);
	assert_int_equal(locktab_dirty_locks(t), 1); /* kept */
	for (int i = 0; i < kill_members; i++)
		assert_int_equal(etcdtest_restart(cluster, 2 - i), 0);
	assert_int_equal(etcdtest_wait_healthy(cluster, WAIT_MS), 0);
	retry(store_etcd_flush(s, t));
	locktab_dirty_done(t);
	retry(store_etcd_next_epoch(s, &epoch));
	b = load(s);
	ltfix_assert_same_tables(t, b,
	    (const char *const[]){"alice", "bob", NULL});
	locktab_free(b);
	store_etcd_close(s);
	assert_int_equal(etcd_lease_revoke(e, lease), ETCD_OK);
	locktab_free(t);
	etcd_free(e);
}

static void
test_etcd_down(void **state)
{
	struct etcd *e = client();
	struct store_etcd *s = open_store();
	struct locktab *t = locktab_new(&cfg), *b;
	int64_t lease;

	store_etcd_set_term(s, take_term(e, "me", &lease));
	apply_req(t, 10, LT_OP_ACQUIRE, "doc", "alice", "A");
	assert_int_equal(etcdtest_signal(cluster, 0, SIGKILL), 0);
	assert_int_equal(store_etcd_flush(s, t), STORE_ETCD_UNAVAILABLE);
	assert_non_null(strstr(store_etcd_error(s), "127.0.0.1"));
	assert_int_equal(etcdtest_restart(cluster, 0), 0);
	assert_int_equal(etcdtest_wait_healthy(cluster, WAIT_MS), 0);
	retry(store_etcd_flush(s, t));
	locktab_dirty_done(t);
	b = load(s);
	ltfix_assert_same_tables(t, b, (const char *const[]){"alice", NULL});
	locktab_free(b);
	store_etcd_close(s);
	assert_int_equal(etcd_lease_revoke(e, lease), ETCD_OK);
	locktab_free(t);
	etcd_free(e);
}

static void
test_quorum_loss(void **state)
{
	outage(2);
}

static void
test_one_of_three_down(void **state)
{
	struct etcd *e = client();
	struct store_etcd *s = open_store();
	struct locktab *t = locktab_new(&cfg), *b;
	int64_t lease;

	/* One member of three gone: service goes on (after failover). */
	store_etcd_set_term(s, take_term(e, "me", &lease));
	assert_int_equal(etcdtest_signal(cluster, 0, SIGKILL), 0);
	apply_req(t, 10, LT_OP_ACQUIRE, "doc", "alice", "A");
	retry(store_etcd_flush(s, t));
	locktab_dirty_done(t);
	b = load(s);
	ltfix_assert_same_tables(t, b, (const char *const[]){"alice", NULL});
	locktab_free(b);
	assert_int_equal(etcdtest_restart(cluster, 0), 0);
	assert_int_equal(etcdtest_wait_healthy(cluster, WAIT_MS), 0);
	store_etcd_close(s);
	for (long long end = tutil_mono_ms() + WAIT_MS;;) {
		if (etcd_lease_revoke(e, lease) == ETCD_OK)
			break;
		assert_true(tutil_mono_ms() < end);
		tutil_nap_ms(100);
	}
	locktab_free(t);
	etcd_free(e);
}

int
main(void)
{
	const struct CMUnitTest one[] = {
	    cmocka_unit_test_setup(test_bad_options, each),
	    cmocka_unit_test_setup(test_round_trip_equals_sqlite, each),
	    cmocka_unit_test_setup(test_fencing_and_tokens, each),
	    cmocka_unit_test_setup(test_staged_batches, each),
	    cmocka_unit_test_setup(test_staged_atomic_under_kill, each),
	    cmocka_unit_test_setup(test_broken_journal, each),
	    cmocka_unit_test_setup(test_etcd_down, each),
	};
	const struct CMUnitTest three[] = {
	    cmocka_unit_test_setup(test_one_of_three_down, each),
	    cmocka_unit_test_setup(test_quorum_loss, each),
	};
	int failed = 0;

	failed +=
	    cmocka_run_group_tests_name("one member", one, setup1, teardown);
	failed += cmocka_run_group_tests_name("three members", three, setup3,
	    teardown);
	return failed;
}
