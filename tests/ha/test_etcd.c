/*
 * etcd: the v3 JSON gateway client against real etcd members: keys and
 * ranges, transactions and their compares, etcd's limits, leases,
 * failover between members, deadlines with frozen or missing members,
 * quorum loss, TLS and user authentication.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "etcdtest.h"
#include "io/etcd.h"
#include "tutil.h"

/* Generous: a call must end by its deadline plus this, never hang. */
#define SLACK_MS 3000

static struct etcdtest *cluster;

#define ok(e, call)                                        \
	do {                                               \
		enum etcd_err rc_ = (call);                \
		if (rc_ != ETCD_OK)                        \
			fail_msg("%s: %d: %s", #call, rc_, \
			    etcd_last_error(e));           \
	} while (0)

static struct etcd *
client(const char *endpoints, int timeout_ms)
{
	struct etcd_opts o = {.endpoints = endpoints, .timeout_ms = timeout_ms};
	char err[256];
	struct etcd *e = etcd_new(&o, err, sizeof(err));

	if (e == NULL)
		fail_msg("etcd_new: %s", err);
	return e;
}

static int
start_cluster(int members)
{
	struct etcdtest_opts o = {.members = members};

	cluster = etcdtest_start(&o);
	return cluster != NULL ? 0 : -1;
}

static int
setup1(void **state)
{
	return start_cluster(1);
}

static int
setup3(void **state)
{
	return start_cluster(3);
}

static int
teardown(void **state)
{
	etcdtest_stop(cluster, false);
	cluster = NULL;
	return 0;
}

/* A value of key now, as a string ("" when absent); the caller frees. */
static char *
get(struct etcd *e, const char *key)
{
	struct etcd_range r;
	char *v;

	ok(e, etcd_range(e, key, NULL, &r));
	v = strdup(r.n == 1 ? r.kvs[0].value : "");
	etcd_range_clear(&r);
	return v;
}

static void
assert_value(struct etcd *e, const char *key, const char *want)
{
	char *v = get(e, key);

	assert_string_equal(v, want);
	free(v);
}

/* Options ---------------------------------------------------------------- */

static void
test_bad_options(void **state)
{
	static const char *const bad[] = {
	    "",
	    "127.0.0.1:2379",
	    "ftp://127.0.0.1:2379",
	    "http://",
	    "http://127.0.0.1:2379,",
	    "http://127.0.0.1:2379,,http://127.0.0.1:2380",
	    "http://127.0.0.1:23 79",
	    "httpx://127.0.0.1:2379",
	};
	struct etcd_opts o = {0};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.endpoints = bad[i];
		err[0] = '\0';
		assert_null(etcd_new(&o, err, sizeof(err)));
		assert_true(err[0] != '\0');
	}
	o.endpoints = NULL;
	assert_null(etcd_new(&o, err, sizeof(err)));
	o.endpoints = "http://127.0.0.1:1";
	o.cafile = "/nonexistent/ca.pem";
	assert_null(etcd_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	o.cafile = NULL;
	o.keyfile = "/etc/hostname";
	assert_null(etcd_new(&o, err, sizeof(err)));
	o.keyfile = NULL;
	o.password = "secret";
	assert_null(etcd_new(&o, err, sizeof(err)));
	o.password = NULL;
	o.timeout_ms = -1;
	assert_null(etcd_new(&o, err, sizeof(err)));
	o.timeout_ms = 0;
	/* A trailing slash is fine; several endpoints are. */
	o.endpoints = "http://127.0.0.1:1/,https://[::1]:2";
	etcd_free(etcd_new(&o, err, sizeof(err)));
	etcd_free(NULL);
}

/* Nothing listens: a clear error naming the endpoint, within the deadline. */
static void
test_nothing_listens(void **state)
{
	char eps[64];
	int port = tutil_free_port();
	struct etcd *e;
	struct etcd_range r;
	long long t0;

	snprintf(eps, sizeof(eps), "http://127.0.0.1:%d", port);
	e = client(eps, 500);
	t0 = tutil_mono_ms();
	assert_int_equal(etcd_range(e, "k", NULL, &r), ETCD_E_UNAVAILABLE);
	assert_true(tutil_mono_ms() - t0 < 500 + SLACK_MS);
	assert_non_null(strstr(etcd_last_error(e), eps));
	assert_int_equal(r.n, 0);
	etcd_free(e);
}

/* Keys ------------------------------------------------------------------- */

static void
test_put_range_delete(void **state)
{
	struct etcd *e = client(etcdtest_endpoints(cluster), 0);
	static const char bin[] = {'a', '\0', 'b', '\n', (char)0xff};
	struct etcd_range r;
	int64_t rev1 = 0, rev2 = 0, n = 0;

	ok(e, etcd_put(e, "t/one", "1", 1, 0, &rev1));
	ok(e, etcd_put(e, "t/two", bin, sizeof(bin), 0, NULL));
	ok(e, etcd_put(e, "t/empty", "", 0, 0, NULL));
	ok(e, etcd_put(e, "t/one", "one", 3, 0, &rev2));
	assert_true(rev2 > rev1);

	ok(e, etcd_range(e, "t/two", NULL, &r));
	assert_int_equal(r.n, 1);
	assert_string_equal(r.kvs[0].key, "t/two");
	assert_int_equal(r.kvs[0].value_len, sizeof(bin));
	assert_memory_equal(r.kvs[0].value, bin, sizeof(bin));
	assert_int_equal(r.kvs[0].version, 1);
	assert_true(r.kvs[0].create_revision > rev1);
	etcd_range_clear(&r);

	assert_value(e, "t/empty", "");
	ok(e, etcd_range(e, "t/one", NULL, &r));
	assert_int_equal(r.kvs[0].version, 2);
	assert_int_equal(r.kvs[0].create_revision, rev1);
	assert_int_equal(r.kvs[0].mod_revision, rev2);
	assert_true(r.revision >= rev2);
	etcd_range_clear(&r);

	/* An older revision still has the old value. */
	ok(e,
	    etcd_range(e, "t/one", &(struct etcd_range_opts){.revision = rev1},
		&r));
	assert_int_equal(r.n, 1);
	assert_string_equal(r.kvs[0].value, "1");
	etcd_range_clear(&r);

	/* Absent key: no kvs. */
	ok(e, etcd_range(e, "t/none", NULL, &r));
	assert_int_equal(r.n, 0);
	assert_int_equal(r.count, 0);
	etcd_range_clear(&r);

	/* A prefix: sorted by key; "t/" does not match "tx". */
	ok(e, etcd_put(e, "tx", "x", 1, 0, NULL));
	ok(e,
	    etcd_range(e, "t/", &(struct etcd_range_opts){.prefix = "t/"}, &r));
	assert_int_equal(r.n, 3);
	assert_string_equal(r.kvs[0].key, "t/empty");
	assert_string_equal(r.kvs[1].key, "t/one");
	assert_string_equal(r.kvs[2].key, "t/two");
	etcd_range_clear(&r);

	ok(e,
	    etcd_range(e, "t/",
		&(struct etcd_range_opts){.prefix = "t/", .count_only = true},
		&r));
	assert_int_equal(r.n, 0);
	assert_int_equal(r.count, 3);
	etcd_range_clear(&r);

	ok(e, etcd_delete(e, "t/one", false, &n));
	assert_int_equal(n, 1);
	ok(e, etcd_delete(e, "t/one", false, &n));
	assert_int_equal(n, 0);
	ok(e, etcd_delete(e, "t/", true, &n));
	assert_int_equal(n, 2);
	assert_value(e, "tx", "x");
	ok(e, etcd_delete(e, "tx", false, NULL));
	etcd_free(e);
}

/* Paging through a prefix: limit, more, and starting after a key. */
static void
test_paging(void **state)
{
	struct etcd *e = client(etcdtest_endpoints(cluster), 0);
	struct etcd_range r;
	char key[32], last[32] = "p/";
	int seen = 0;
	int64_t rev = 0;

	for (int i = 0; i < 25; i++) {
		snprintf(key, sizeof(key), "p/%02d", i);
		ok(e, etcd_put(e, key, key, strlen(key), 0, NULL));
	}
	ok(e, etcd_put(e, "p0", "outside", 7, 0, NULL));
	for (;;) {
		struct etcd_range_opts o = {.prefix = "p/",
		    .after = seen > 0,
		    .limit = 10,
		    .revision = rev};

		ok(e, etcd_range(e, last, &o, &r));
		if (rev == 0)
			rev = r.revision;
		for (size_t i = 0; i < r.n; i++) {
			snprintf(key, sizeof(key), "p/%02d", seen++);
			assert_string_equal(r.kvs[i].key, key);
		}
		if (r.n > 0)
			snprintf(last, sizeof(last), "%s", r.kvs[r.n - 1].key);
		assert_int_equal(r.more, seen < 25);
		etcd_range_clear(&r);
		if (seen == 25)
			break;
	}
	ok(e, etcd_delete(e, "p", true, NULL));
	etcd_free(e);
}

/* Transactions --------------------------------------------------------- */

static void
commit(struct etcd *e, struct etcd_txn *t, struct etcd_txn_result *res)
{
	ok(e, etcd_txn_commit(e, t, res));
	etcd_txn_free(t);
}

static void
test_txn_compares(void **state)
{
	struct etcd *e = client(etcdtest_endpoints(cluster), 0);
	struct etcd_txn *t;
	struct etcd_txn_result res;
	struct etcd_range r;
	int64_t lease, ttl, create, mod;

	/* Create if absent: succeeds once, then the failure branch reads. */
	for (int round = 0; round < 2; round++) {
		assert_non_null(t = etcd_txn_new());
		assert_int_equal(
		    etcd_txn_compare(t, "x/k", ETCD_CREATE, ETCD_EQUAL, 0), 0);
		assert_int_equal(etcd_txn_put(t, true, "x/k", "v1", 2, 0), 0);
		assert_int_equal(etcd_txn_range(t, false, "x/k", false), 0);
		commit(e, t, &res);
		assert_int_equal(res.succeeded, round == 0);
		assert_int_equal(res.n, 1);
		if (round == 1) {
			assert_int_equal(res.ranges[0].n, 1);
			assert_string_equal(res.ranges[0].kvs[0].value, "v1");
		}
		etcd_txn_result_clear(&res);
	}
	ok(e, etcd_range(e, "x/k", NULL, &r));
	create = r.kvs[0].create_revision;
	mod = r.kvs[0].mod_revision;
	etcd_range_clear(&r);

	/* Every target, both outcomes. */
	struct {
		enum etcd_target target;
		enum etcd_cmp cmp;
		int64_t n;
		bool holds;
	} cases[] = {
	    {ETCD_VERSION, ETCD_EQUAL, 1, true},
	    {ETCD_VERSION, ETCD_GREATER, 1, false},
	    {ETCD_VERSION, ETCD_LESS, 2, true},
	    {ETCD_CREATE, ETCD_EQUAL, create, true},
	    {ETCD_CREATE, ETCD_NOT_EQUAL, create, false},
	    {ETCD_MOD, ETCD_EQUAL, mod, true},
	    {ETCD_MOD, ETCD_LESS, mod, false},
	    {ETCD_LEASE, ETCD_EQUAL, 0, true},
	    {ETCD_LEASE, ETCD_NOT_EQUAL, 0, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_non_null(t = etcd_txn_new());
		assert_int_equal(etcd_txn_compare(t, "x/k", cases[i].target,
				     cases[i].cmp, cases[i].n),
		    0);
		commit(e, t, &res);
		assert_int_equal(res.succeeded, cases[i].holds);
		etcd_txn_result_clear(&res);
	}
	assert_non_null(t = etcd_txn_new());
	assert_int_equal(etcd_txn_compare(t, "x/k", ETCD_VALUE, ETCD_EQUAL, 0),
	    -1); /* a value is compared with bytes */
	etcd_txn_free(t);
	for (int holds = 0; holds < 2; holds++) {
		assert_non_null(t = etcd_txn_new());
		etcd_txn_compare_value(t, "x/k", ETCD_EQUAL,
		    holds ? "v1" : "v2", 2);
		commit(e, t, &res);
		assert_int_equal(res.succeeded, holds);
		etcd_txn_result_clear(&res);
	}

	/* Lease compares; a success branch with puts, deletes and ranges. */
	ok(e, etcd_lease_grant(e, 30, &lease, &ttl));
	assert_non_null(t = etcd_txn_new());
	etcd_txn_compare(t, "x/k", ETCD_VERSION, ETCD_EQUAL, 1);
	etcd_txn_compare_value(t, "x/k", ETCD_EQUAL, "v1", 2);
	etcd_txn_put(t, true, "x/leased", "l", 1, lease);
	etcd_txn_put(t, true, "x/a", "a", 1, 0);
	etcd_txn_delete(t, true, "x/k", false);
	etcd_txn_range(t, true, "x/", true);
	assert_int_equal(etcd_txn_ops(t), 4);
	commit(e, t, &res);
	assert_true(res.succeeded);
	assert_int_equal(res.n, 4);
	assert_int_equal(res.ranges[2].count, 1); /* deleted */
	assert_int_equal(res.ranges[3].n, 2);     /* x/a, x/leased */
	assert_string_equal(res.ranges[3].kvs[1].key, "x/leased");
	assert_int_equal(res.ranges[3].kvs[1].lease, lease);
	etcd_txn_result_clear(&res);
	for (int holds = 0; holds < 2; holds++) {
		assert_non_null(t = etcd_txn_new());
		etcd_txn_compare(t, "x/leased", ETCD_LEASE, ETCD_EQUAL,
		    holds ? lease : lease + 1);
		commit(e, t, &res);
		assert_int_equal(res.succeeded, holds);
		etcd_txn_result_clear(&res);
	}
	ok(e, etcd_lease_revoke(e, lease));
	ok(e, etcd_delete(e, "x/", true, NULL));
	etcd_free(e);
}

/* etcd's limits: refused as a whole, nothing applied; the estimates are
 * at or above what etcd counts. */
static void
test_txn_limits(void **state)
{
	struct etcd *e = client(etcdtest_endpoints(cluster), 5000);
	struct etcd_txn *t;
	struct etcd_txn_result res;
	struct etcd_range r;
	size_t max_ops, max_bytes, vlen;
	char key[32], *big;

	etcd_limits(e, &max_ops, &max_bytes);
	assert_int_equal(max_ops, ETCD_DEFAULT_MAX_TXN_OPS);
	assert_int_equal(max_bytes, ETCD_DEFAULT_MAX_REQUEST_BYTES);

	for (size_t n = max_ops; n <= max_ops + 1; n++) {
		assert_non_null(t = etcd_txn_new());
		for (size_t i = 0; i < n; i++) {
			snprintf(key, sizeof(key), "l/%zu", i);
			etcd_txn_put(t, true, key, "v", 1, 0);
		}
		assert_int_equal(etcd_txn_ops(t), n);
		if (n == max_ops) {
			commit(e, t, &res);
			etcd_txn_result_clear(&res);
			ok(e, etcd_delete(e, "l/", true, NULL));
		} else {
			assert_int_equal(etcd_txn_commit(e, t, &res),
			    ETCD_E_REFUSED);
			assert_non_null(strstr(etcd_last_error(e), "too many"));
			etcd_txn_free(t);
		}
	}
	ok(e,
	    etcd_range(e, "l/",
		&(struct etcd_range_opts){.prefix = "l/", .count_only = true},
		&r));
	assert_int_equal(r.count, 0);
	etcd_range_clear(&r);

	/* One value as large as the estimate allows is accepted... */
	vlen = max_bytes - ETCD_TXN_BASE_SIZE - etcd_txn_op_size(3, 0);
	assert_non_null(big = malloc(max_bytes + 1));
	memset(big, 'b', max_bytes + 1);
	assert_non_null(t = etcd_txn_new());
	etcd_txn_put(t, true, "b/1", big, vlen, 0);
	assert_true(etcd_txn_size(t) <= max_bytes);
	commit(e, t, &res);
	etcd_txn_result_clear(&res);
	/* ...and one past the limit is refused and changes nothing. */
	assert_non_null(t = etcd_txn_new());
	etcd_txn_put(t, true, "b/2", big, max_bytes + 1, 0);
	assert_true(etcd_txn_size(t) > max_bytes);
	assert_int_equal(etcd_txn_commit(e, t, &res), ETCD_E_REFUSED);
	assert_non_null(strstr(etcd_last_error(e), "too large"));
	etcd_txn_free(t);
	ok(e, etcd_range(e, "b/2", NULL, &r));
	assert_int_equal(r.n, 0);
	etcd_range_clear(&r);
	ok(e, etcd_delete(e, "b/", true, NULL));
	free(big);
	etcd_free(e);
}

/* Leases ----------------------------------------------------------------- */

static void
test_leases(void **state)
{
	struct etcd *e = client(etcdtest_endpoints(cluster), 0);
	struct etcd_range r;
	int64_t id, granted, ttl, g;

	assert_int_equal(etcd_lease_grant(e, 0, &id, &granted), ETCD_E_REFUSED);
	ok(e, etcd_lease_grant(e, 10, &id, &granted));
	assert_true(id != 0);
	assert_int_equal(granted, 10);
	ok(e, etcd_lease_keepalive(e, id, &ttl));
	assert_int_equal(ttl, 10);
	ok(e, etcd_lease_ttl(e, id, &ttl, &g));
	assert_true(ttl > 0 && ttl <= 10);
	assert_int_equal(g, 10);
	ok(e, etcd_put(e, "lease/k", "v", 1, id, NULL));
	ok(e, etcd_range(e, "lease/k", NULL, &r));
	assert_int_equal(r.kvs[0].lease, id);
	etcd_range_clear(&r);

	ok(e, etcd_lease_revoke(e, id));
	ok(e, etcd_range(e, "lease/k", NULL, &r));
	assert_int_equal(r.n, 0); /* went with its lease */
	etcd_range_clear(&r);
	ok(e, etcd_lease_keepalive(e, id, &ttl));
	assert_int_equal(ttl, 0);
	ok(e, etcd_lease_ttl(e, id, &ttl, &g));
	assert_int_equal(ttl, -1);
	ok(e, etcd_lease_revoke(e, id)); /* gone already: fine */
	/* A put on a lease that does not exist is refused. */
	assert_int_equal(etcd_put(e, "lease/k", "v", 1, id, NULL),
	    ETCD_E_REFUSED);

	/* A short lease expires by itself (etcd checks every 500 ms). */
	ok(e, etcd_lease_grant(e, 1, &id, &granted));
	ok(e, etcd_put(e, "lease/short", "v", 1, id, NULL));
	for (long long end = tutil_mono_ms() + 15000;;) {
		ok(e, etcd_range(e, "lease/short", NULL, &r));
		if (r.n == 0)
			break;
		etcd_range_clear(&r);
		assert_true(tutil_mono_ms() < end);
		tutil_nap_ms(100);
	}
	ok(e, etcd_lease_keepalive(e, id, &ttl));
	assert_int_equal(ttl, 0);
	etcd_free(e);
}

/* A frozen single member: calls end by their deadline; thawed, it serves. */
static void
test_deadline_frozen(void **state)
{
	struct etcd *e = client(etcdtest_endpoints(cluster), 700);
	struct etcd_range r;
	long long t0;
	bool ok_either;
	char *v;

	ok(e, etcd_put(e, "f/k", "1", 1, 0, NULL));
	assert_int_equal(etcdtest_signal(cluster, 0, SIGSTOP), 0);
	t0 = tutil_mono_ms();
	assert_int_equal(etcd_put(e, "f/k", "2", 1, 0, NULL),
	    ETCD_E_UNAVAILABLE);
	assert_int_equal(etcd_range(e, "f/k", NULL, &r), ETCD_E_UNAVAILABLE);
	assert_true(tutil_mono_ms() - t0 < 2 * 700 + SLACK_MS);
	assert_true(strlen(etcd_last_error(e)) > 0);
	assert_int_equal(etcdtest_signal(cluster, 0, SIGCONT), 0);
	/*
	 * A call that ran out of time may still be applied once the member
	 * thaws, even after later calls on a new connection: a fresh key
	 * shows that it serves, and f/k holds one of the two values.
	 */
	etcd_set_timeout(e, 5000);
	ok(e, etcd_put(e, "f/j", "3", 1, 0, NULL));
	assert_value(e, "f/j", "3");
	v = get(e, "f/k");
	ok_either = strcmp(v, "1") == 0 || strcmp(v, "2") == 0;
	free(v);
	assert_true(ok_either);
	ok(e, etcd_delete(e, "f/", true, NULL));
	etcd_free(e);
}

/* Three members ------------------------------------------------------- */

/* Dead endpoints in the list are passed over. */
static void
test_failover(void **state)
{
	char eps[512];
	struct etcd *e;
	int dead = tutil_free_port();

	snprintf(eps, sizeof(eps), "http://127.0.0.1:%d,%s", dead,
	    etcdtest_endpoints(cluster));
	e = client(eps, 3000);
	ok(e, etcd_put(e, "fo/k", "1", 1, 0, NULL));
	/* The member that answered last is asked first. */
	assert_string_equal(etcd_endpoint(e), etcdtest_endpoint(cluster, 0));

	/* Kill it: another member answers (the next one, or the third while
	 * the two left elect a leader), and the value is replicated. */
	assert_int_equal(etcdtest_signal(cluster, 0, SIGKILL), 0);
	etcd_set_timeout(e, 8000);
	ok(e, etcd_put(e, "fo/k", "2", 1, 0, NULL));
	assert_string_not_equal(etcd_endpoint(e),
	    etcdtest_endpoint(cluster, 0));
	assert_value(e, "fo/k", "2");

	/* Back with it; then freeze the next one: its share of the deadline
	 * passes and the third answers (once the two left have a leader,
	 * should the frozen one have been it). */
	assert_int_equal(etcdtest_restart(cluster, 0), 0);
	assert_int_equal(etcdtest_wait_healthy(cluster, 30000), 0);
	assert_int_equal(etcdtest_signal(cluster, 1, SIGSTOP), 0);
	etcd_set_timeout(e, 8000);
	ok(e, etcd_put(e, "fo/k", "3", 1, 0, NULL));
	assert_string_not_equal(etcd_endpoint(e),
	    etcdtest_endpoint(cluster, 1));
	assert_value(e, "fo/k", "3");
	assert_int_equal(etcdtest_signal(cluster, 1, SIGCONT), 0);
	assert_int_equal(etcdtest_wait_healthy(cluster, 30000), 0);
	ok(e, etcd_delete(e, "fo/", true, NULL));
	etcd_free(e);
}

/* Two of three members gone: no quorum, a clear error by the deadline,
 * and service again once they are back. */
static void
test_quorum_loss(void **state)
{
	struct etcd *e = client(etcdtest_endpoints(cluster), 1500);
	struct etcd_range r;
	long long t0;
	enum etcd_err rc;

	ok(e, etcd_put(e, "q/k", "1", 1, 0, NULL));
	assert_int_equal(etcdtest_signal(cluster, 1, SIGKILL), 0);
	assert_int_equal(etcdtest_signal(cluster, 2, SIGKILL), 0);
	t0 = tutil_mono_ms();
	assert_int_equal(etcd_put(e, "q/k", "2", 1, 0, NULL),
	    ETCD_E_UNAVAILABLE);
	/* A linearizable read needs the quorum too. */
	assert_int_equal(etcd_range(e, "q/k", NULL, &r), ETCD_E_UNAVAILABLE);
	assert_true(tutil_mono_ms() - t0 < 2 * 1500 + SLACK_MS);
	assert_int_equal(etcdtest_restart(cluster, 1), 0);
	assert_int_equal(etcdtest_restart(cluster, 2), 0);
	assert_int_equal(etcdtest_wait_healthy(cluster, 30000), 0);
	/* The leader may still be settling: a few tries. */
	for (long long end = tutil_mono_ms() + 20000;;) {
		rc = etcd_put(e, "q/k", "3", 1, 0, NULL);
		if (rc == ETCD_OK || tutil_mono_ms() > end)
			break;
		tutil_nap_ms(100);
	}
	ok(e, rc);
	assert_value(e, "q/k", "3");
	ok(e, etcd_delete(e, "q/", true, NULL));
	etcd_free(e);
}

/* TLS ------------------------------------------------------------------- */

static char certdir[64];

static int
setup_tls(void **state)
{
	struct etcdtest_opts o = {.members = 1, .client_cert_auth = true};

	snprintf(certdir, sizeof(certdir), "/tmp/mqlock-certs-XXXXXX");
	if (mkdtemp(certdir) == NULL || etcdtest_make_certs(certdir) != 0)
		return -1;
	o.certdir = certdir;
	cluster = etcdtest_start(&o);
	return cluster != NULL ? 0 : -1;
}

static int
teardown_tls(void **state)
{
	char cmd[128];

	teardown(state);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A client with these TLS files (names in certdir; NULL: none). */
static struct etcd *
tls_client(const char *endpoints, const char *ca, const char *cert,
    const char *key)
{
	char cap[128], certp[128], keyp[128], err[256];
	struct etcd_opts o = {.endpoints = endpoints, .timeout_ms = 3000};
	struct etcd *e;

	snprintf(cap, sizeof(cap), "%s/%s", certdir, ca != NULL ? ca : "");
	snprintf(certp, sizeof(certp), "%s/%s", certdir,
	    cert != NULL ? cert : "");
	snprintf(keyp, sizeof(keyp), "%s/%s", certdir, key != NULL ? key : "");
	o.cafile = ca != NULL ? cap : NULL;
	o.certfile = cert != NULL ? certp : NULL;
	o.keyfile = key != NULL ? keyp : NULL;
	if ((e = etcd_new(&o, err, sizeof(err))) == NULL)
		fail_msg("etcd_new: %s", err);
	return e;
}

static void
test_tls(void **state)
{
	const char *eps = etcdtest_endpoints(cluster);
	struct etcd *e;
	char plain[128];

	assert_non_null(strstr(eps, "https://"));
	e = tls_client(eps, "ca.pem", "client.pem", "client-key.pem");
	ok(e, etcd_put(e, "tls/k", "v", 1, 0, NULL));
	assert_value(e, "tls/k", "v");
	etcd_free(e);

	/* A server certificate from a CA we do not trust: refused, and the
	 * error says why. */
	e = tls_client(eps, "other-ca.pem", "client.pem", "client-key.pem");
	assert_int_equal(etcd_put(e, "tls/k", "w", 1, 0, NULL),
	    ETCD_E_UNAVAILABLE);
	assert_non_null(strstr(etcd_last_error(e), "certificate"));
	etcd_free(e);

	/* No client certificate where etcd requires one. */
	e = tls_client(eps, "ca.pem", NULL, NULL);
	assert_int_equal(etcd_put(e, "tls/k", "w", 1, 0, NULL),
	    ETCD_E_UNAVAILABLE);
	etcd_free(e);

	/* Plain http to the TLS port. */
	snprintf(plain, sizeof(plain), "http://%s", strstr(eps, "://") + 3);
	e = client(plain, 3000);
	assert_int_not_equal(etcd_put(e, "tls/k", "w", 1, 0, NULL), ETCD_OK);
	etcd_free(e);

	e = tls_client(eps, "ca.pem", "client.pem", "client-key.pem");
	assert_value(e, "tls/k", "v");
	etcd_free(e);
}

/* Authentication --------------------------------------------------------- */

static int
setup_auth(void **state)
{
	/* Tokens that expire after a second unused. */
	static const char *const extra[] = {"--auth-token-ttl", "1", NULL};
	static const char *const root[] = {"user", "add", "root:rootpw",
	    "--interactive=false", NULL};
	static const char *const alice[] = {"user", "add", "alice:alicepw",
	    "--interactive=false", NULL};
	static const char *const enable[] = {"auth", "enable", NULL};
	struct etcdtest_opts o = {.members = 1, .extra = extra};
	char out[1024];

	if ((cluster = etcdtest_start(&o)) == NULL)
		return -1;
	if (etcdtest_etcdctl(cluster, root, out, sizeof(out)) != 0 ||
	    etcdtest_etcdctl(cluster, alice, out, sizeof(out)) != 0 ||
	    etcdtest_etcdctl(cluster, enable, out, sizeof(out)) != 0) {
		fprintf(stderr, "etcdctl: %s\n", out);
		return -1;
	}
	return 0;
}

static struct etcd *
auth_client(const char *user, const char *password)
{
	struct etcd_opts o = {.endpoints = etcdtest_endpoints(cluster),
	    .timeout_ms = 3000,
	    .user = user,
	    .password = password};
	char err[256];
	struct etcd *e = etcd_new(&o, err, sizeof(err));

	if (e == NULL)
		fail_msg("etcd_new: %s", err);
	return e;
}

static void
test_auth(void **state)
{
	struct etcd *e = auth_client("root", "rootpw");
	struct etcd_range r;
	int64_t lease, ttl;

	ok(e, etcd_put(e, "auth/k", "1", 1, 0, NULL));
	ok(e, etcd_lease_grant(e, 10, &lease, &ttl));
	/* Unused for longer than the token's TTL: the client gets a new
	 * token and the request goes through. */
	tutil_nap_ms(2500);
	ok(e, etcd_put(e, "auth/k", "2", 1, 0, NULL));
	tutil_nap_ms(2500);
	ok(e, etcd_range(e, "auth/k", NULL, &r));
	assert_string_equal(r.kvs[0].value, "2");
	etcd_range_clear(&r);
	ok(e, etcd_lease_revoke(e, lease));
	etcd_free(e);

	e = auth_client("root", "wrong");
	assert_int_equal(etcd_put(e, "auth/k", "3", 1, 0, NULL), ETCD_E_AUTH);
	assert_non_null(strstr(etcd_last_error(e), "password"));
	etcd_free(e);

	e = auth_client("nobody", "x");
	assert_int_equal(etcd_range(e, "auth/k", NULL, &r), ETCD_E_AUTH);
	etcd_free(e);

	/* A user without permissions on the key is refused. */
	e = auth_client("alice", "alicepw");
	assert_int_equal(etcd_put(e, "auth/k", "4", 1, 0, NULL),
	    ETCD_E_REFUSED);
	assert_non_null(strstr(etcd_last_error(e), "permission denied"));
	etcd_free(e);

	/* No user at all. */
	e = client(etcdtest_endpoints(cluster), 3000);
	assert_int_equal(etcd_put(e, "auth/k", "5", 1, 0, NULL),
	    ETCD_E_REFUSED);
	etcd_free(e);

	e = auth_client("root", "rootpw");
	assert_value(e, "auth/k", "2");
	etcd_free(e);
}

int
main(void)
{
	const struct CMUnitTest none[] = {
	    cmocka_unit_test(test_bad_options),
	    cmocka_unit_test(test_nothing_listens),
	};
	const struct CMUnitTest one[] = {
	    cmocka_unit_test(test_put_range_delete),
	    cmocka_unit_test(test_paging),
	    cmocka_unit_test(test_txn_compares),
	    cmocka_unit_test(test_txn_limits),
	    cmocka_unit_test(test_leases),
	    cmocka_unit_test(test_deadline_frozen),
	};
	const struct CMUnitTest three[] = {
	    cmocka_unit_test(test_failover),
	    cmocka_unit_test(test_quorum_loss),
	};
	const struct CMUnitTest tls[] = {
	    cmocka_unit_test(test_tls),
	};
	const struct CMUnitTest auth[] = {
	    cmocka_unit_test(test_auth),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("no server", none, NULL, NULL);
	failed +=
	    cmocka_run_group_tests_name("one member", one, setup1, teardown);
	failed += cmocka_run_group_tests_name("three members", three, setup3,
	    teardown);
	failed +=
	    cmocka_run_group_tests_name("tls", tls, setup_tls, teardown_tls);
	failed +=
	    cmocka_run_group_tests_name("auth", auth, setup_auth, teardown);
	return failed;
}
