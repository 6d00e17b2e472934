/*
 * leader: candidates against a real etcd: exactly one leads; a revoked
 * lease ends the term and another candidate takes over with a higher
 * term; the term's validity follows the monotonic clock from the last
 * renewal sent, and once seen over it never comes back; etcd frozen: the
 * leader stops leading by its own clock; resigning hands over.
 */
#include <poll.h>
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
#include "io/clock.h"
#include "io/etcd.h"
#include "io/leader.h"
#include "tutil.h"

#define TTL 3
#define MARGIN 500
#define WAIT_MS 30000

static struct etcdtest *cluster;
static struct etcd_opts eopts;
static char prefix[64];
static int nprefix;

static int
setup(void **state)
{
	struct etcdtest_opts o = {.members = 1};

	if ((cluster = etcdtest_start(&o)) == NULL)
		return -1;
	eopts.endpoints = etcdtest_endpoints(cluster);
	eopts.timeout_ms = 2000;
	return 0;
}

static int
teardown(void **state)
{
	etcdtest_stop(cluster, false);
	return 0;
}

/* A new key prefix per test, so no test sees another's leader key. */
static int
each(void **state)
{
	snprintf(prefix, sizeof(prefix), "test%d/", ++nprefix);
	return 0;
}

static struct leader *
candidate(const char *id, bool campaign)
{
	struct leader_opts o = {.etcd = &eopts,
	    .prefix = prefix,
	    .id = id,
	    .ttl_s = TTL,
	    .margin_ms = MARGIN,
	    .retry_ms = 200,
	    .campaign = campaign};
	char err[256];
	struct leader *l = leader_new(&o, err, sizeof(err));

	if (l == NULL)
		fail_msg("leader_new: %s", err);
	return l;
}

/*
 * Wait (on the wake descriptors, as an owner's poll() would) until one of
 * c[0..n) leads in a term >= min_term, checking that no two ever do.
 * Returns its index.
 */
static int
wait_one_leader(struct leader **c, int n, int64_t min_term)
{
	long long end = tutil_mono_ms() + WAIT_MS;

	for (;;) {
		struct pollfd p[4];
		int leaders = 0, who = -1;
		int64_t term = 0;

		for (int i = 0; i < n; i++) {
			struct leader_status st;

			leader_status(c[i], &st);
			if (leader_check(c[i], clock_mono_ms(), &term) &&
			    term >= min_term) {
				leaders++;
				who = i;
			}
			p[i].fd = leader_wake_fd(c[i]);
			p[i].events = POLLIN;
		}
		assert_true(leaders <= 1);
		if (leaders == 1)
			return who;
		if (tutil_mono_ms() > end)
			fail_msg("no leader after %d ms", WAIT_MS);
		poll(p, (nfds_t)n, 100);
	}
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

/* The leader key's value and create_revision, as etcd has it. */
static void
leader_key(struct etcd *e, char *value, size_t sz, int64_t *rev)
{
	char key[96];
	struct etcd_range r;

	snprintf(key, sizeof(key), "%sleader", prefix);
	assert_int_equal(etcd_range(e, key, NULL, &r), ETCD_OK);
	snprintf(value, sz, "%s", r.n == 1 ? r.kvs[0].value : "");
	*rev = r.n == 1 ? r.kvs[0].create_revision : 0;
	etcd_range_clear(&r);
}

static void
test_bad_options(void **state)
{
	struct leader_opts good = {.etcd = &eopts,
	    .prefix = "p/",
	    .id = "a",
	    .ttl_s = 5,
	    .margin_ms = 1000};
	struct leader_opts o;
	char err[256], longp[200];

	memset(longp, 'p', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	o = good;
	o.ttl_s = 1;
	assert_null(leader_new(&o, err, sizeof(err)));
	o = good;
	o.margin_ms = 5000 / 3;
	assert_null(leader_new(&o, err, sizeof(err)));
	o = good;
	o.margin_ms = -1;
	assert_null(leader_new(&o, err, sizeof(err)));
	o = good;
	o.id = "";
	assert_null(leader_new(&o, err, sizeof(err)));
	o = good;
	o.id = "a\nb";
	assert_null(leader_new(&o, err, sizeof(err)));
	o = good;
	o.prefix = longp;
	assert_null(leader_new(&o, err, sizeof(err)));
	o = good;
	o.etcd = NULL;
	assert_null(leader_new(&o, err, sizeof(err)));
	leader_free(NULL);
}

/* Two candidates: exactly one leads, the other knows who; a revoked lease
 * ends the term and the other takes over with a higher term. */
static void
test_two_candidates(void **state)
{
	struct leader *c[2] = {candidate("alpha", true),
	    candidate("beta", true)};
	const char *names[2] = {"alpha", "beta"};
	struct leader_status st;
	struct etcd *e = client();
	char value[64];
	int64_t term1 = 0, term2 = 0, rev;
	int a, b;

	a = wait_one_leader(c, 2, 0);
	b = 1 - a;
	assert_true(leader_check(c[a], clock_mono_ms(), &term1));
	assert_false(leader_check(c[b], clock_mono_ms(), NULL));
	leader_key(e, value, sizeof(value), &rev);
	assert_string_equal(value, names[a]);
	assert_int_equal(rev, term1);
	/* The standby learns who leads (within a few of its attempts). */
	for (long long end = tutil_mono_ms() + WAIT_MS;;) {
		leader_status(c[b], &st);
		if (strcmp(st.leader, names[a]) == 0)
			break;
		assert_true(tutil_mono_ms() < end);
		tutil_nap_ms(50);
	}
	assert_int_equal(st.role, LEADER_STANDBY);
	assert_int_equal(st.term, 0);
	assert_true(st.etcd_ok);

	/*
	 * Take the leader's lease away behind its back: the term ends in
	 * etcd at once, and the leader learns it at its next renewal.  Until
	 * then it may still think it leads (only the journal's fencing stops
	 * it); a new term begins only after etcd ended the old one.
	 */
	leader_status(c[a], &st);
	assert_int_equal(st.role, LEADER_LEADING);
	assert_true(st.lease != 0);
	assert_int_equal(etcd_lease_revoke(e, st.lease), ETCD_OK);
	for (long long end = tutil_mono_ms() + WAIT_MS;;) {
		if (!leader_check(c[a], clock_mono_ms(), NULL))
			break;
		assert_true(tutil_mono_ms() < end);
		tutil_nap_ms(20);
	}
	b = wait_one_leader(c, 2, term1 + 1);
	assert_true(leader_check(c[b], clock_mono_ms(), &term2));
	assert_true(term2 > term1);
	leader_key(e, value, sizeof(value), &rev);
	assert_string_equal(value, names[b]);
	assert_int_equal(rev, term2);
	/* Whoever leads now, the old term is over for good. */
	for (int i = 0; i < 2; i++) {
		int64_t t = 0;

		if (leader_check(c[i], clock_mono_ms(), &t))
			assert_int_equal(t, term2);
	}
	leader_status(c[a], &st);
	assert_true(st.terms >= 1);

	leader_free(c[0]);
	leader_free(c[1]);
	/* Stopping revoked the lease: no leader key is left behind. */
	leader_key(e, value, sizeof(value), &rev);
	assert_int_equal(rev, 0);
	etcd_free(e);
}

/* The bound: valid_until = last renewal sent + TTL - margin, true just
 * before, false at it, and false for good once seen false. */
static void
test_monotonic_bound(void **state)
{
	struct leader *c[1] = {candidate("solo", true)};
	struct leader_status st;
	int64_t term = 0, t2 = 0;

	wait_one_leader(c, 1, 0);
	leader_status(c[0], &st);
	assert_int_equal(st.role, LEADER_LEADING);
	assert_true(st.last_sent > 0);
	assert_int_equal(st.valid_until, st.last_sent + TTL * 1000 - MARGIN);
	assert_int_equal(leader_deadline(c[0]), st.valid_until);
	assert_true(st.valid_until > clock_mono_ms());
	assert_true(leader_check(c[0], st.valid_until - 1, &term));
	assert_int_equal(term, st.term);
	assert_false(leader_check(c[0], st.valid_until, NULL));
	/* Over for good, even at an earlier time or after a renewal. */
	assert_false(leader_check(c[0], st.valid_until - 1, NULL));
	assert_false(leader_check(c[0], clock_mono_ms(), NULL));
	assert_int_equal(leader_deadline(c[0]), INT64_MAX);
	leader_status(c[0], &st);
	assert_int_equal(st.role, LEADER_STANDBY);
	/* The candidate wins a new, higher term. */
	wait_one_leader(c, 1, term + 1);
	assert_true(leader_check(c[0], clock_mono_ms(), &t2));
	assert_true(t2 > term);
	leader_free(c[0]);
}

/* etcd frozen: no renewal can succeed; the leader stops leading by its own
 * clock, no later than the last renewal sent + TTL - margin, and says etcd
 * does not answer.  Thawed: a new term. */
static void
test_etcd_frozen(void **state)
{
	struct leader *c[1] = {candidate("frozen", true)};
	struct leader_status st;
	int64_t term = 0, now;

	wait_one_leader(c, 1, 0);
	assert_true(leader_check(c[0], clock_mono_ms(), &term));
	assert_int_equal(etcdtest_signal(cluster, 0, SIGSTOP), 0);
	/*
	 * While it says it leads, now is before the bound of the latest
	 * renewal sent (read after the check: renewals only move it on).
	 * A renewal etcd answered just before it froze may still arrive.
	 */
	for (;;) {
		now = clock_mono_ms();
		if (!leader_check(c[0], now, NULL))
			break;
		leader_status(c[0], &st);
		assert_true(now < st.last_sent + TTL * 1000 - MARGIN);
		if (st.role == LEADER_LEADING)
			assert_int_equal(st.valid_until,
			    st.last_sent + TTL * 1000 - MARGIN);
		tutil_nap_ms(20);
	}
	leader_status(c[0], &st);
	assert_true(now >= st.last_sent + TTL * 1000 - MARGIN);
	assert_int_equal(leader_deadline(c[0]), INT64_MAX);
	/* The thread notices etcd is gone (its requests time out). */
	for (long long end = tutil_mono_ms() + WAIT_MS;;) {
		leader_status(c[0], &st);
		if (!st.etcd_ok)
			break;
		assert_true(tutil_mono_ms() < end);
		tutil_nap_ms(50);
	}
	assert_true(st.error[0] != '\0');
	assert_int_equal(st.role, LEADER_STANDBY);
	assert_false(leader_check(c[0], clock_mono_ms(), NULL));
	assert_int_equal(etcdtest_signal(cluster, 0, SIGCONT), 0);
	wait_one_leader(c, 1, term + 1);
	leader_status(c[0], &st);
	assert_true(st.etcd_ok);
	assert_true(st.term > term);
	leader_free(c[0]);
}

/* Resigning hands over at once and holds off for the time given; an
 * observer never leads but knows who does. */
static void
test_resign_and_observer(void **state)
{
	struct leader *c[2] = {candidate("one", true), candidate("two", true)};
	struct leader *watcher = candidate("watcher", false);
	const char *names[2] = {"one", "two"};
	struct leader_status st;
	int64_t term = 0;
	int a, b;

	a = wait_one_leader(c, 2, 0);
	b = 1 - a;
	assert_true(leader_check(c[a], clock_mono_ms(), &term));
	leader_resign(c[a], 60000);
	assert_false(leader_check(c[a], clock_mono_ms(), NULL));
	assert_int_equal(wait_one_leader(c, 2, term + 1), b);
	for (long long end = tutil_mono_ms() + WAIT_MS;;) {
		leader_status(watcher, &st);
		if (strcmp(st.leader, names[b]) == 0)
			break;
		assert_true(tutil_mono_ms() < end);
		tutil_nap_ms(50);
	}
	assert_int_equal(st.role, LEADER_STANDBY);
	assert_int_equal(st.lease, 0);
	assert_false(leader_check(watcher, clock_mono_ms(), NULL));

	/* The one that resigned holds off; with the other gone, only a
	 * resumed campaign makes it lead (the watcher never does). */
	leader_check(c[b], clock_mono_ms(), &term);
	leader_free(c[b]);
	leader_resign(c[a], 0);
	c[b] = watcher;
	assert_int_equal(wait_one_leader(c, 2, term + 1), a);
	leader_free(c[a]);
	leader_free(watcher);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_bad_options, each),
	    cmocka_unit_test_setup(test_two_candidates, each),
	    cmocka_unit_test_setup(test_monotonic_bound, each),
	    cmocka_unit_test_setup(test_etcd_frozen, each),
	    cmocka_unit_test_setup(test_resign_and_observer, each),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
