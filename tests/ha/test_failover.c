/*
 * failover: mqlockd with --etcd against three real etcd members and a
 * real mosquitto (the integration harness's), two mqlockd per test on one
 * journal and one broker session.
 *
 *   - the leader is killed: the standby, which had no broker connection,
 *     serves (status online and a fresh acquire answered) within lease +
 *     3 s, with the state, a new epoch, larger tokens, and the wills and
 *     requests queued in the session meanwhile;
 *   - the leader is paused past its lease: the standby serves; the old
 *     leader, woken, stands by and never connects to the broker again
 *     until it leads in a new term;
 *   - the leader key is deleted behind the leader's back: its next batch
 *     is refused (fenced) and announced nowhere; it stands by, and leads
 *     again in a new term with a fresh load;
 *   - two of three etcd members are killed: the status says etcd is
 *     unavailable, nothing is decided, and service comes back by itself
 *     once they are restarted;
 *   - mqlockd --check reads the journal in etcd and names the leader.
 *
 * Each test has its own broker and its own etcd key prefix; the etcd
 * cluster is shared by the group.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "etcdtest.h"
#include "harness.h"
#include "tutil.h"

#define STATUS H_PREFIX "/_coordinator/status"
#define FLAGS "--grace 1 --keepalive 2 --log-level debug"
/* mqlockd's default --lease and the bound README states for it. */
#define LEASE_DEFAULT_S 5
#define BOUND_MS ((LEASE_DEFAULT_S + 3) * 1000)

static struct etcdtest *cluster;

static int
group_setup(void **state)
{
	struct etcdtest_opts o = {.members = 3};

	(void)state;
	cluster = etcdtest_start(&o);
	return cluster != NULL ? 0 : -1;
}

/* $MQLOCK_HA_ETCD_LOGS prints the members' logs at the end. */
static int
group_teardown(void **state)
{
	(void)state;
	etcdtest_stop(cluster, getenv("MQLOCK_HA_ETCD_LOGS") != NULL);
	return 0;
}

/*
 * An mqlockd on the world's broker with its journal under prefix in the
 * shared cluster, named id (also its broker username, so the broker's log
 * tells the instances apart), with extra flags; output in mqlockd-<id>.log.
 */
static struct h_proc *
coord(struct h_world *w, const char *id, const char *prefix, const char *extra)
{
	char words[1024], name[64];
	char *argv[64];
	int n = 0;

	snprintf(words, sizeof(words),
	    "%s --broker %s --etcd %s --etcd-prefix %s --etcd-id %s "
	    "--username %s " FLAGS "%s%s",
	    MQLOCKD_BIN, h_uri(w), etcdtest_endpoints(cluster), prefix, id, id,
	    extra != NULL ? " " : "", extra != NULL ? extra : "");
	n = h_words(words, argv, 0, 63);
	argv[n] = NULL;
	snprintf(name, sizeof(name), "mqlockd-%s.log", id);
	return h_spawn(w, argv, name);
}

static const char *
log_of(struct h_world *w, const char *id)
{
	return h_path(w, h_fmt("mqlockd-%s.log", id));
}

/* Wait until file holds needle. */
static void
wait_text(const char *file, const char *needle, int ms)
{
	long long end = tutil_mono_ms() + ms;

	while (!tutil_file_contains(file, needle)) {
		if (tutil_mono_ms() > end)
			fail_msg("%s: no '%s' within %d ms", file, needle, ms);
		tutil_nap_ms(20);
	}
}

/* How many times needle occurs in file from byte `from` on. */
static int
count_text(const char *file, const char *needle, size_t from)
{
	size_t len;
	char *s = tutil_slurp(file, &len);
	int n = 0;

	for (char *p = s != NULL && from < len ? s + from : NULL;
	     p != NULL && (p = strstr(p, needle)) != NULL; p++)
		n++;
	free(s);
	return n;
}

static size_t
file_size(const char *file)
{
	struct stat st;

	return stat(file, &st) == 0 ? (size_t)st.st_size : 0;
}

/* The broker's log says when the coordinator's client id connects, and
 * with which username. */
static const char *
connect_line(const char *id)
{
	return h_fmt("as mqlockd (p5, c0, k2, u'%s')", id);
}

static int
online_after(const struct h_msg *m, void *arg)
{
	const long long *epoch = arg;
	const cJSON *e = h_get(m, "epoch");

	return h_matches(m, STATUS, "state", "online") && cJSON_IsNumber(e) &&
	    (long long)e->valuedouble > *epoch;
}

/* The next online status with an epoch above *epoch; sets *epoch. */
static struct h_msg *
online(struct h_client *ctl, long long *epoch, int ms)
{
	struct h_msg *m = h_state_fn(ctl, STATUS, ms, online_after, epoch,
	    "an online status with a higher epoch");

	*epoch = h_int(m, "epoch");
	return m;
}

static void
etcdctl(const char *const *args)
{
	char out[1024];

	if (etcdtest_etcdctl(cluster, args, out, sizeof(out)) != 0)
		fail_msg("etcdctl %s: %s", args[0], out);
}

/* ---- the leader killed: the bound ---- */

static void
test_leader_killed_standby_serves(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct h_client *ctl = h_ctl(w);
	const char *sh = h_session(), *sw = h_session(), *sp = h_session();
	struct h_proc *a, *holder;
	struct h_msg *m, *st;
	long long epoch = -1, e0, t0, tok, ptok, served;

	(void)state;
	a = coord(w, "ha-a", "t1/", NULL);
	online(ctl, &epoch, H_WAIT_MS);
	e0 = epoch;
	coord(w, "ha-b", "t1/", NULL);
	wait_text(log_of(w, "ha-b"), "standing by: ha-a leads", H_WAIT_MS);
	/* A standby does not touch the coordinator's session. */
	assert_int_equal(
	    count_text(h_path(w, "mosquitto.log"), connect_line("ha-b"), 0), 0);

	holder = h_sub_proc(w, "holder", sh, 1, 60);
	h_request(ctl, "doc", "acquire", "holder", sh, "\"conn\":1", NULL);
	m = h_expect(ctl, h_events("holder"), H_WAIT_MS, "event", "granted");
	tok = h_int(m, "token");
	h_request(ctl, "doc", "acquire", "waiter", sw, NULL, NULL);
	h_expect(ctl, h_events("waiter"), H_WAIT_MS, "event", "queued");

	h_proc_kill(a, SIGKILL);
	t0 = h_now_ms();
	/* While nobody leads: a will and a request wait in the session. */
	h_proc_kill(holder, SIGKILL);
	h_request(ctl, "probe", "acquire", "probe", sp, "\"wait\":false", "p1");
	m = h_expect(ctl, h_reply_for("probe"), 30000, "result", "granted");
	st = online(ctl, &epoch, 30000);
	served = (m->at_ms > st->at_ms ? m->at_ms : st->at_ms) - t0;
	ptok = h_int(m, "token");
	printf("failover: online after %lld ms, the acquire sent right after "
	       "the kill answered after %lld ms: served after %lld ms (bound "
	       "lease %d s + 3 s = %d ms)\n",
	    st->at_ms - t0, m->at_ms - t0, served, LEASE_DEFAULT_S, BOUND_MS);
	assert_true(epoch > e0);
	assert_true(served <= BOUND_MS);
	/* Tokens go on above everything granted before. */
	assert_true(ptok > tok);
	/* ha-b took the session over; ha-a's state came with the journal. */
	assert_int_equal(
	    count_text(h_path(w, "mosquitto.log"), connect_line("ha-b"), 0), 1);
	/* The holder's will, published while nobody led, is handled. */
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "holder",
	    "owner.connected", "#false", "token", h_fmt("#%lld", tok));
	/* The waiter answers the new epoch's roll call and gets the lock. */
	h_request(ctl, "doc", "acquire", "waiter", sw, NULL, NULL);
	m = h_expect(ctl, h_events("waiter"), H_SLOW_MS, "event", "granted");
	assert_true(h_int(m, "token") > ptok);
	h_pass(w);
}

/* ---- the leader paused past its lease ---- */

static void
test_paused_leader_stays_quiet(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct h_client *ctl = h_ctl(w);
	const char *mlog = h_path(w, "mosquitto.log");
	const char *s1 = h_session(), *s2 = h_session();
	struct h_proc *a, *b;
	long long epoch = -1, e1;
	size_t mark;

	a = coord(w, "ha-a", "t2/", "--lease 2");
	online(ctl, &epoch, H_WAIT_MS);
	b = coord(w, "ha-b", "t2/", "--lease 2");
	wait_text(log_of(w, "ha-b"), "standing by: ha-a leads", H_WAIT_MS);

	h_proc_kill(a, SIGSTOP);
	online(ctl, &epoch, 30000);
	e1 = epoch;
	assert_int_equal(count_text(mlog, connect_line("ha-b"), 0), 1);
	mark = file_size(mlog);
	h_proc_kill(a, SIGCONT);
	wait_text(log_of(w, "ha-a"), "standing by", H_WAIT_MS);
	/* Longer than a lease: it stays off the broker and says nothing. */
	h_expect_none(ctl, STATUS, 3000, H_ANY);
	assert_int_equal(count_text(mlog, connect_line("ha-a"), mark), 0);
	assert_int_equal(count_text(mlog, "already connected", mark), 0);
	/* ha-b serves on. */
	h_request(ctl, "x", "acquire", "c1", s1, "\"wait\":false", "q1");
	h_expect(ctl, h_reply_for("c1"), H_WAIT_MS, "result", "granted");

	/* Once ha-b is gone, ha-a leads again: a new term, a new epoch. */
	h_proc_kill(b, SIGKILL);
	online(ctl, &epoch, 30000);
	assert_true(epoch > e1);
	assert_int_equal(count_text(mlog, connect_line("ha-a"), mark), 1);
	h_request(ctl, "x", "acquire", "c2", s2, "\"wait\":false", "q2");
	h_expect(ctl, h_reply_for("c2"), H_WAIT_MS, "result", "busy");
	h_pass(w);
}

/* ---- fenced ---- */

struct fenced {
	long long before; /* wall ms */
};

/* A message about the fenced batch that arrived before the new epoch. */
static int
from_fenced_batch(const struct h_msg *m, void *arg)
{
	const struct fenced *f = arg;

	return m->at_ms < f->before &&
	    (strcmp(m->topic, h_owner("fence")) == 0 ||
		strcmp(m->topic, h_events("f1")) == 0 ||
		strcmp(m->topic, h_reply_for("f1")) == 0);
}

static void
test_fenced_leader_announces_nothing(void **state)
{
	static const char *const del[] = {"del", "t3/leader", NULL};
	struct h_world *w = h_world_new(state, NULL);
	struct h_client *ctl = h_ctl(w);
	const char *s0 = h_session(), *sf = h_session();
	struct fenced f;
	struct h_msg *m;
	long long epoch = -1, e0, tok;

	/* A long lease: the write, not a renewal, finds the term over. */
	coord(w, "ha-a", "t3/", "--lease 30");
	online(ctl, &epoch, H_WAIT_MS);
	e0 = epoch;
	h_request(ctl, "x", "acquire", "c0", s0, NULL, NULL);
	m = h_expect(ctl, h_events("c0"), H_WAIT_MS, "event", "granted");
	tok = h_int(m, "token");

	etcdctl(del);
	h_request(ctl, "fence", "acquire", "f1", sf, NULL, "f1");
	wait_text(log_of(w, "ha-a"), "etcd refused a write", H_WAIT_MS);
	m = online(ctl, &epoch, 30000);
	assert_true(epoch > e0);
	f.before = m->at_ms;
	h_forbidden(ctl, 0, from_fenced_batch, &f,
	    "a message from the fenced batch");
	/* The request was lost with the batch: sent again, it is granted. */
	h_request(ctl, "fence", "acquire", "f1", sf, NULL, NULL);
	m = h_expect(ctl, h_events("f1"), H_WAIT_MS, "event", "granted");
	assert_true(h_int(m, "token") > tok);
	h_pass(w);
}

/* ---- quorum lost ---- */

static void
test_quorum_lost_then_back(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct h_client *ctl = h_ctl(w);
	const char *sq = h_session();
	struct h_proc *a, *b;
	long long epoch = -1, e0;

	a = coord(w, "ha-a", "t4/", "--lease 3");
	online(ctl, &epoch, H_WAIT_MS);
	e0 = epoch;
	b = coord(w, "ha-b", "t4/", "--lease 3");
	wait_text(log_of(w, "ha-b"), "standing by: ha-a leads", H_WAIT_MS);

	assert_int_equal(etcdtest_signal(cluster, 1, SIGKILL), 0);
	assert_int_equal(etcdtest_signal(cluster, 2, SIGKILL), 0);
	h_state(ctl, STATUS, 30000, "state", "offline", "error",
	    "etcd unavailable");
	/* Nothing is decided while etcd cannot take it. */
	h_request(ctl, "q", "acquire", "q1", sq, NULL, NULL);
	h_expect_none(ctl, h_events("q1"), 2000, H_ANY);
	/* Past its lease ha-a stops (and cannot revoke the lease). */
	wait_text(log_of(w, "ha-a"), "could not revoke lease", H_WAIT_MS);

	assert_int_equal(etcdtest_restart(cluster, 1), 0);
	assert_int_equal(etcdtest_restart(cluster, 2), 0);
	assert_int_equal(etcdtest_wait_healthy(cluster, 30000), 0);
	online(ctl, &epoch, 30000);
	assert_true(epoch > e0);
	/* A client re-sends on the new epoch, and is served. */
	h_request(ctl, "q", "acquire", "q1", sq, NULL, NULL);
	h_expect(ctl, h_events("q1"), H_WAIT_MS, "event", "granted");
	/* Neither mqlockd fell over: both stop cleanly. */
	h_proc_kill(a, SIGTERM);
	h_proc_kill(b, SIGTERM);
	assert_int_equal(h_proc_wait(a, 15000), 0);
	assert_int_equal(h_proc_wait(b, 15000), 0);
	h_pass(w);
}

/* ---- --check ---- */

static int
check(struct h_world *w, const char *prefix, const char *out)
{
	char words[1024];
	char *argv[32];
	int n;

	snprintf(words, sizeof(words), "%s --check --etcd %s --etcd-prefix %s",
	    MQLOCKD_BIN, etcdtest_endpoints(cluster), prefix);
	n = h_words(words, argv, 0, 31);
	argv[n] = NULL;
	return h_proc_wait(h_spawn(w, argv, out), H_WAIT_MS);
}

static void
test_check_reads_etcd(void **state)
{
	static const char *const junk[] = {"put", "t5/lock/bad", "junk", NULL};
	struct h_world *w = h_world_new(state, NULL);
	struct h_client *ctl = h_ctl(w);
	const char *s = h_session();
	long long epoch = -1;
	char words[1024];
	char *argv[32];
	int n;

	assert_int_equal(check(w, "t5/", "check0.out"), 0);
	wait_text(h_path(w, "check0.out"), "nobody leads", 1000);
	wait_text(h_path(w, "check0.out"), "no journal under t5/ yet", 1000);
	coord(w, "ha-a", "t5/", NULL);
	online(ctl, &epoch, H_WAIT_MS);
	h_request(ctl, "x", "acquire", "c1", s, NULL, NULL);
	h_expect(ctl, h_events("c1"), H_WAIT_MS, "event", "granted");
	assert_int_equal(check(w, "t5/", "check1.out"), 0);
	wait_text(h_path(w, "check1.out"), "ha-a leads (term", 1000);
	wait_text(h_path(w, "check1.out"),
	    h_fmt("journal in etcd t5/: 1 locks, 1 clients, epoch %lld", epoch),
	    1000);
	etcdctl(junk);
	assert_int_equal(check(w, "t5/", "check2.out"), 1);
	wait_text(h_path(w, "check2.out"), "bad record t5/lock/bad", 1000);

	/* Nobody answers at that address: the check fails and says so. */
	snprintf(words, sizeof(words), "%s --check --etcd http://127.0.0.1:%d",
	    MQLOCKD_BIN, tutil_free_port());
	n = h_words(words, argv, 0, 31);
	argv[n] = NULL;
	assert_int_equal(h_proc_wait(h_spawn(w, argv, "check3.out"), H_WAIT_MS),
	    1);
	wait_text(h_path(w, "check3.out"), "could not be read", 1000);
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_leader_killed_standby_serves,
		h_teardown),
	    cmocka_unit_test_teardown(test_paused_leader_stays_quiet,
		h_teardown),
	    cmocka_unit_test_teardown(test_fenced_leader_announces_nothing,
		h_teardown),
	    cmocka_unit_test_teardown(test_quorum_lost_then_back, h_teardown),
	    cmocka_unit_test_teardown(test_check_reads_etcd, h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
