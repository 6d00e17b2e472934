/*
 * chaos_ha: high availability under faults.  Three etcd members, three
 * mqlockd with --etcd (one leads, two stand by), one mosquitto and 24
 * `mqlock acquire` clients looping on 4 locks, while the test, in two
 * rounds, kills the leader (SIGKILL), pauses it past its lease (SIGSTOP,
 * then SIGCONT), kills one etcd member, kills two (quorum lost, then
 * restored), and restarts mosquitto (SIGTERM with its state saved, then
 * SIGKILL with its state lost); a few lock holders are frozen for 14-20
 * s across these, so that locks move on under them.  Then a checker goes
 * over the record.
 *
 * Processes, all children of this one and all on 127.0.0.1:
 *   etcd        three members (etcdtest.c)
 *   mosquitto   persistence on; log_type all into mosquitto.log
 *   mqlockd     x3: --etcd --lease 3 --grace 2 --keepalive 2; each start
 *               has an etcd id of its own (h<i>s<start>), also its
 *               username at the broker
 *   24 slots    each runs `mqlock acquire L<n> --wait S -- chaos_cmd ...`
 *               again and again, a new client id each time; chaos_cmd
 *               makes fenced writes (tests/chaos/chaos_cmd.c)
 * and in this process: a recorder (an MQTT connection that logs every
 * owner message, event, status and probe reply with its arrival time),
 * a prober (an acquire of lock "probe", wait false, with an MQTT 5 reply,
 * whenever none is outstanding: "a fresh acquire answered"), and a
 * watcher that reads etcd's leader key every 20 ms.
 *
 * Who published what while who led.  Every change the watcher sees in
 * the leader key (a new holder and term, or none) it publishes at once as
 * a marker, chaos/term/<n>/<holder or ->/<term>.  mosquitto's log names
 * every connection made with the coordinator's client id together with
 * its username (the mqlockd's own id), and every message it receives, in
 * the order it handled them, markers included.  So for each message any
 * mqlockd published the checker knows which one sent it and who led in
 * etcd just then, from the broker and etcd alone.  Allowances, both in
 * the lenient direction: a marker trails the change it reports by the
 * watcher's poll and its trip to the broker.  A message from the holder
 * of the next term counts as that term's when its marker follows within
 * LOOKAHEAD_S (the broker log's seconds); and messages sent in the short
 * moment between a term's end and its marker cannot be told from ones
 * sent before it (the failures that matter, a paused leader that wakes
 * or a standby that connects, speak seconds after).
 *
 * The checker proves, and fails (exit 1) otherwise:
 *   - no mqlockd published anything, and none connected as the
 *     coordinator, unless it held the leader key in etcd;
 *   - a token belongs to one lock and one client wherever it is seen
 *     (owner messages, granted events, the commands' MQLOCK_TOKEN and
 *     their fenced writes), so a lock never had two holders at one token;
 *   - new tokens strictly increase across all locks and every failover
 *     (granted events, in the order the broker delivered them), and per
 *     lock owner messages never go back to an older token;
 *   - each lock's resource was written in token order, with granted
 *     tokens only;
 *   - after every fault a leader serves (the status online and a probe
 *     sent after the fault answered) within its bound: lease + 3 s after
 *     the leader was killed or paused or an etcd member killed, and after
 *     quorum came back; backoff + 2 s after mosquitto came back; plus
 *     what the machine measurably delayed (RECOVERY_STEPS times the worst
 *     lateness of this process's own 50 ms sleeps);
 *   - while etcd had no quorum, nothing was decided and the status said
 *     "etcd unavailable";
 *   - at the end every lock is free (all clients are gone);
 *   - no mqlockd, mosquitto or etcd member exited unless the test made it,
 *     mqlock exited only with 0, 69, 70 or 75 (or our SIGKILL), and no
 *     log holds a sanitizer report; an mqlock that exited 0 kept its lock
 *     until its command ended.
 * It prints the figures: faults, failovers (terms), the time to a serving
 * leader after each fault and the worst, grants, writes, exits.
 *
 * Environment: CHAOS_SEED repeats the random choices (timing still
 * differs); CHAOS_KEEP keeps the directory.
 * differs); CHAOS_KEEP keeps the directory.
 *
 * The servers, the clients, the recorder and the checks it shares with
 * tests/chaos/chaos.c are in chaoslib.c; the etcd members, the prober,
 * the watcher, the faults and the leadership and quorum checks are here.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "chaoslib.h"
#include "etcdtest.h"
#include "io/etcd.h"
#include "tutil.h"

#define ETCD_PREFIX "chaos/"
#define COORDS 3
#define WORKERS 24
#define LOCKS 4
#define ROUNDS 2
#define LEASE_S 3
#define BACKOFF_MAX_MS 5000 /* mqlockd's reconnect backoff */
#define WARMUP_MS 4000
#define SETTLE_MS 3000 /* between faults, once served again */
#define SERVE_WAIT_MS 60000
#define DRAIN_MS 60000
#define PROBE_EVERY_MS 250
#define WATCH_EVERY_MS 20
#define LOOKAHEAD_S 2
#define RECOVERY_STEPS 3
#define MAX_FAULTS 32
#define HARD_LIMIT_MS 175000
#define PROBE_REPLIES "replies/chaos-probe"

/* The bounds, from the fault (or from what it took away coming back). */
#define BOUND_LEADER_MS ((LEASE_S + 3) * 1000)
#define BOUND_BROKER_MS (BACKOFF_MAX_MS + 2000)

enum fault {
	F_LEADER_KILL,
	F_LEADER_STOP,
	F_ETCD_ONE,
	F_ETCD_QUORUM,
	F_BROKER_TERM,
	F_BROKER_KILL,
	NFAULTS
};

static const char *const fault_name[NFAULTS] = {
    [F_LEADER_KILL] = "leader SIGKILL",
    [F_LEADER_STOP] = "leader SIGSTOP past its lease, then SIGCONT",
    [F_ETCD_ONE] = "one etcd member SIGKILL",
    [F_ETCD_QUORUM] = "two etcd members SIGKILL (quorum lost, restored)",
    [F_BROKER_TERM] = "mosquitto SIGTERM (state saved)",
    [F_BROKER_KILL] = "mosquitto SIGKILL (state lost)",
};

/* One fault as it happened. */
struct fault_run {
	enum fault kind;
	long long at;     /* wall ms: the fault */
	long long from;   /* wall ms: the bound counts from here */
	long long bound;  /* ms, nominal */
	long long served; /* wall ms: a leader served again; 0: never */
	char what[96];
};

/* A probe: an acquire of "probe" with an MQTT 5 reply. */
struct probe {
	long long sent, answered;
};

/* A change of the leader key as the watcher saw it. */
struct term_seen {
	long long at;
	char holder[64];
	long long term;
};

/* What the checker proves: chaoslib's checks, then this program's. */
enum check {
	C_LEADER = CHAOS_NSHARED, /* only etcd's leader published/connected */
	C_SERVE,  /* a leader serves within the bound after each fault */
	C_QUORUM, /* without quorum nothing decided, status says why */
	C_END,    /* every lock free at the end */
	NCHECKS
};

static const char *const check_name[NCHECKS] = {
    [C_LEADER] = "only the leader in etcd publishes or connects",
    [CHAOS_C_ONE_GRANT] = "one lock and one client per token",
    [CHAOS_C_TOKENS_RISE] = "new tokens strictly increase across failovers",
    [CHAOS_C_OWNER_ORDER] = "owner messages never go back to an older token",
    [CHAOS_C_FENCING] = "fenced writes in token order, with granted tokens",
    [C_SERVE] = "a leader serves within the bound after each fault",
    [C_QUORUM] = "no quorum: nothing decided, status says why",
    [C_END] = "every lock ends free",
    [CHAOS_C_NO_CRASH] = "no crash, no unexpected exit, no sanitizer report",
    [CHAOS_C_CLI_EXIT] = "mqlock exit 0 only if its lock stayed its own",
};

/* The order of the verdict's lines. */
static const int check_order[] = {C_LEADER, CHAOS_C_ONE_GRANT,
    CHAOS_C_TOKENS_RISE, CHAOS_C_OWNER_ORDER, CHAOS_C_FENCING, C_SERVE,
    C_QUORUM, C_END, CHAOS_C_NO_CRASH, CHAOS_C_CLI_EXIT};

static void probe_answered(const char *topic, const MQTTAsync_message *m,
    long long at);
static void etcd_stop(void);

static const struct chaos_opts opts = {
    .name = "chaos_ha",
    .stem = "mqlock-chaos-ha",
    .workers = WORKERS,
    .locks = LOCKS,
    .max_iters = 2048,
    .max_wait_s = 8,
    .cmd_max_ms = 800,
    .long_min_ms = 1500,
    .long_max_ms = 4000,
    .long_writes_min = 3,
    .long_writes_max = 8,
    .respawn_max_ms = 400,
    .broker_log_all = 1,
    .check_names = check_name,
    .nchecks = NCHECKS,
    .rec_filter = PROBE_REPLIES,
    .rec_hook = probe_answered,
    .at_kill = etcd_stop,
};

static struct etcdtest *cluster;
static struct chaos_server coords[COORDS];
static struct fault_run runs[MAX_FAULTS];
static int nruns;
static int spawning = 1;

/* Shared with the recorder's hook and the watcher. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct probe probes[4096];
static int nprobes;
static struct term_seen terms[256];
static int nterms;
static char leader_now[64]; /* holder of the leader key, "" none */
static int watching = 1;

static void
etcd_stop(void)
{
	etcdtest_stop(cluster, false);
	cluster = NULL;
}

static void
coord_start(int i)
{
	struct chaos_server *s = &coords[i];
	char lease[8], out[64];
	char *extra[] = {(char *)"--etcd", (char *)etcdtest_endpoints(cluster),
	    (char *)"--etcd-prefix", (char *)ETCD_PREFIX, (char *)"--etcd-id",
	    s->id, (char *)"--username", s->id, (char *)"--lease", lease, NULL};

	snprintf(s->id, sizeof(s->id), "h%ds%d", i, s->starts + 1);
	snprintf(lease, sizeof(lease), "%d", LEASE_S);
	snprintf(out, sizeof(out), "mqlockd-%d.log", i);
	chaos_coord_start(s, out, extra);
}

/* Probes and the watcher ---------------------------------------------- */

/* The recorder's hook: a reply to a probe, by its correlation data. */
static void
probe_answered(const char *topic, const MQTTAsync_message *m, long long at)
{
	char corr[32];
	int len = -1, i;

	if (strcmp(topic, PROBE_REPLIES) != 0)
		return;
	for (i = 0; i < m->properties.count; i++) {
		const MQTTProperty *p = &m->properties.array[i];

		if (p->identifier == MQTTPROPERTY_CODE_CORRELATION_DATA &&
		    p->value.data.len > 0 &&
		    p->value.data.len < (int)sizeof(corr)) {
			memcpy(corr, p->value.data.data,
			    (size_t)p->value.data.len);
			len = p->value.data.len;
		}
	}
	if (len <= 0)
		return;
	corr[len] = '\0';
	i = (int)strtol(corr, NULL, 10);
	pthread_mutex_lock(&mu);
	if (i >= 0 && i < nprobes && probes[i].answered == 0)
		probes[i].answered = at;
	pthread_mutex_unlock(&mu);
}

static void
probe_tick(long long now)
{
	static long long last;
	char corr[16];
	int i;

	pthread_mutex_lock(&mu);
	i = nprobes;
	if (i > 0 && probes[i - 1].answered == 0 &&
	    now - probes[i - 1].sent < 1000) {
		pthread_mutex_unlock(&mu);
		return;
	}
	if (now - last < PROBE_EVERY_MS ||
	    i >= (int)(sizeof(probes) / sizeof(probes[0]))) {
		pthread_mutex_unlock(&mu);
		return;
	}
	probes[i].sent = now;
	probes[i].answered = 0;
	nprobes++;
	pthread_mutex_unlock(&mu);
	last = now;
	snprintf(corr, sizeof(corr), "%d", i);
	chaos_rec_publish(CHAOS_PREFIX "/probe/request",
	    "{\"op\":\"acquire\",\"client\":\"chaos-probe\",\"session\":"
	    "\"chaos-probe-session-1\",\"wait\":false}",
	    PROBE_REPLIES, corr);
}

/* The first time at or after `from` when a probe sent at or after it has
 * been answered and the status is online; 0: not (yet). */
static long long
served_since(long long from)
{
	long long best = 0;
	int n;

	pthread_mutex_lock(&mu);
	n = nprobes;
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < n; i++) {
		struct probe p;

		pthread_mutex_lock(&mu);
		p = probes[i];
		pthread_mutex_unlock(&mu);
		if (p.sent < from || p.answered == 0)
			continue;
		best = p.answered;
		break;
	}
	if (best == 0)
		return 0;
	/* Online at the answer, or from the next online status on. */
	if (chaos_status_at(best, NULL, 0) == 1)
		return best;
	for (size_t i = 0, nr = chaos_rec_count(); i < nr; i++) {
		struct chaos_msg m = chaos_rec_get(i);

		if (m.at >= best &&
		    strcmp(m.topic, CHAOS_PREFIX "/_coordinator/status") == 0 &&
		    m.json != NULL && chaos_jstr(m.json, "state") != NULL &&
		    strcmp(chaos_jstr(m.json, "state"), "online") == 0)
			return m.at;
	}
	return 0;
}

/* Reads etcd's leader key; each change is published as a marker. */
static void *
watch_main(void *arg)
{
	struct etcd_opts eo = {.endpoints = etcdtest_endpoints(cluster),
	    .timeout_ms = 500};
	char err[256], holder[64] = "?", topic[160];
	long long term = -1;
	struct etcd *e = etcd_new(&eo, err, sizeof(err));
	int seq = 0, on = 1;

	(void)arg;
	if (e == NULL) {
		fprintf(stderr, "chaos_ha: watcher: %s\n", err);
		return NULL;
	}
	while (on) {
		struct etcd_range r;
		char h[64] = "";
		long long t = 0;

		if (etcd_range(e, ETCD_PREFIX "leader", NULL, &r) == ETCD_OK) {
			if (r.n == 1) {
				snprintf(h, sizeof(h), "%.*s",
				    (int)r.kvs[0].value_len, r.kvs[0].value);
				t = r.kvs[0].create_revision;
			}
			etcd_range_clear(&r);
			if (t != term || strcmp(h, holder) != 0) {
				term = t;
				snprintf(holder, sizeof(holder), "%s", h);
				pthread_mutex_lock(&mu);
				if (nterms <
				    (int)(sizeof(terms) / sizeof(terms[0]))) {
					terms[nterms].at = tutil_wall_ms();
					snprintf(terms[nterms].holder,
					    sizeof(terms[0].holder), "%s", h);
					terms[nterms].term = t;
					nterms++;
				}
				snprintf(leader_now, sizeof(leader_now), "%s",
				    h);
				pthread_mutex_unlock(&mu);
				snprintf(topic, sizeof(topic),
				    "chaos/term/%d/%s/%lld", seq++,
				    h[0] != '\0' ? h : "-", t);
				chaos_rec_publish(topic, "", NULL, NULL);
			}
		}
		tutil_nap_ms(WATCH_EVERY_MS);
		pthread_mutex_lock(&mu);
		on = watching;
		pthread_mutex_unlock(&mu);
	}
	etcd_free(e);
	return NULL;
}

/* The running mqlockd that holds the leader key, or -1. */
static int
leader_index(void)
{
	char h[64];

	pthread_mutex_lock(&mu);
	snprintf(h, sizeof(h), "%s", leader_now);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < COORDS; i++)
		if (coords[i].state != CHAOS_DOWN &&
		    strcmp(coords[i].id, h) == 0)
			return i;
	return -1;
}

/* The run ----------------------------------------------------------------- */

static long long t_start;

/*
 * A frozen holder's time came: half of them (not at the end) have mqlock
 * killed, so that its command wakes alone and writes with its old token,
 * unwarned.
 */
static int
thaw_one(struct chaos_client *c, int all)
{
	(void)c;
	return !all && chaos_rnd_in(0, 1) == 0;
}

/* One pass of the workload: reap, start clients, probe. */
static void
tick(void)
{
	long long now = tutil_wall_ms();

	chaos_reap(now, 0);
	chaos_rec_tick(now);
	chaos_thaw(now, 0, thaw_one);
	if (now - t_start > HARD_LIMIT_MS - 20000)
		chaos_die("the run did not end within its time limit");
	if (spawning)
		chaos_spawn_due(now);
	probe_tick(now);
	tutil_nap_ms(10);
}

static void
run_for(long long ms)
{
	long long end = tutil_wall_ms() + ms;

	while (tutil_wall_ms() < end)
		tick();
}

/*
 * A holder frozen (SIGSTOP, with its command) for longer than it takes
 * the broker to drop it (1.5 x its keepalive plus the broker's scan) and
 * the grace to run out, then continued: its lock moves on meanwhile,
 * across whatever fault comes next.  Woken, mqlock learns of it and
 * exits 70; or (half of them) mqlock is killed instead and its command
 * wakes alone and writes with the old token, which fencing refuses.
 */
static int nfrozen;

static void
freeze_a_holder(void)
{
	const cJSON *cur[LOCKS];
	struct chaos_client *pick = NULL;
	int first = (int)chaos_rnd_in(0, LOCKS - 1);
	long long now;

	chaos_latest_owners(cur);
	/* A holder still writing for seconds, if there is one. */
	for (int i = 0; i < LOCKS; i++) {
		struct chaos_client *c = chaos_holder(cur[(first + i) % LOCKS]);

		if (c == NULL || !c->running || chaos_client_frozen(c))
			continue;
		if (pick == NULL || (c->long_cmd && !pick->long_cmd))
			pick = c;
	}
	if (pick == NULL)
		return;
	now = tutil_wall_ms();
	chaos_client_freeze(pick, now, now + chaos_rnd_in(14000, 20000), 1);
	nfrozen++;
	chaos_note("client %s (holder of L%d) SIGSTOP", pick->id, pick->lock);
}

/* Wait (working) until a leader serves after `from`; record it. */
static void
await_serving(enum fault kind, long long at, long long from, long long bound,
    const char *what)
{
	struct fault_run *r;
	long long end = tutil_wall_ms() + SERVE_WAIT_MS, s = 0;

	while ((s = served_since(from)) == 0 && tutil_wall_ms() < end)
		tick();
	if (nruns >= MAX_FAULTS)
		return;
	r = &runs[nruns++];
	r->kind = kind;
	r->at = at;
	r->from = from;
	r->bound = bound;
	r->served = s;
	snprintf(r->what, sizeof(r->what), "%s", what);
	if (s > 0)
		chaos_note("served again %lld ms after %s", s - from, what);
	else
		chaos_note("not served within %d s after %s",
		    SERVE_WAIT_MS / 1000, what);
}

/* No leader served: the faults stop, the checker still runs. */
static int aborted;

/*
 * Wait (working) until a leader is known and serves now; its index, or
 * -1 (a problem counted) when none does within SERVE_WAIT_MS.
 */
static int
steady_leader(void)
{
	long long end = tutil_wall_ms() + SERVE_WAIT_MS;
	int i;

	while (!aborted) {
		long long now = tutil_wall_ms();

		if ((i = leader_index()) >= 0 && served_since(now - 300) > 0)
			return i;
		if (now > end) {
			chaos_problem(C_SERVE,
			    "no leader serving within %d s; faults stopped",
			    SERVE_WAIT_MS / 1000);
			chaos_note("no leader serving: faults stopped");
			aborted = 1;
			return -1;
		}
		tick();
	}
	return -1;
}

static void
fault_leader_kill(void)
{
	long long at;
	int i;

	freeze_a_holder();
	if ((i = steady_leader()) < 0)
		return;
	at = tutil_wall_ms();
	chaos_server_signal(&coords[i], SIGKILL);
	await_serving(F_LEADER_KILL, at, at, BOUND_LEADER_MS,
	    "the leader was killed");
	/* It comes back as a standby. */
	run_for(500);
	if (coords[i].state == CHAOS_DOWN)
		coord_start(i);
}

static void
fault_leader_stop(void)
{
	int i = steady_leader();
	long long at = tutil_wall_ms();

	if (i < 0)
		return;
	chaos_server_signal(&coords[i], SIGSTOP);
	run_for((LEASE_S + 2) * 1000);
	chaos_server_signal(&coords[i], SIGCONT);
	await_serving(F_LEADER_STOP, at, at, BOUND_LEADER_MS,
	    "the leader was paused past its lease");
}

static void
fault_etcd_one(void)
{
	int m = (int)chaos_rnd_in(0, 2);
	long long at;

	if (steady_leader() < 0)
		return;
	at = tutil_wall_ms();
	if (etcdtest_signal(cluster, m, SIGKILL) != 0)
		chaos_die("could not kill etcd member %d", m);
	chaos_note("etcd member %d SIGKILL", m);
	await_serving(F_ETCD_ONE, at, at, BOUND_LEADER_MS,
	    "an etcd member was killed");
	run_for(1500);
	if (etcdtest_restart(cluster, m) != 0)
		chaos_die("could not restart etcd member %d", m);
	chaos_note("etcd member %d restarted", m);
	if (etcdtest_wait_healthy(cluster, 30000) != 0)
		chaos_die("etcd not healthy again within 30 s");
}

/* Quorum lost: a leader serving before must say why, and decide nothing
 * until it is back. */
static long long quorum_from[ROUNDS], quorum_to[ROUNDS];
static int nquorum;

static void
fault_etcd_quorum(void)
{
	int keep = (int)chaos_rnd_in(0, 2), a = (keep + 1) % 3,
	    b = (keep + 2) % 3;
	long long at, back;

	freeze_a_holder();
	if (steady_leader() < 0)
		return;
	at = tutil_wall_ms();
	if (etcdtest_signal(cluster, a, SIGKILL) != 0 ||
	    etcdtest_signal(cluster, b, SIGKILL) != 0)
		chaos_die("could not kill two etcd members");
	chaos_note("etcd members %d and %d SIGKILL: no quorum", a, b);
	run_for((LEASE_S + 2) * 1000);
	if (nquorum < ROUNDS) {
		quorum_from[nquorum] = at;
		quorum_to[nquorum] = tutil_wall_ms();
		nquorum++;
	}
	if (etcdtest_restart(cluster, a) != 0 ||
	    etcdtest_restart(cluster, b) != 0)
		chaos_die("could not restart etcd members");
	if (etcdtest_wait_healthy(cluster, 30000) != 0)
		chaos_die("etcd not healthy again within 30 s");
	back = tutil_wall_ms();
	chaos_note("etcd members %d and %d back: quorum", a, b);
	await_serving(F_ETCD_QUORUM, at, back, BOUND_LEADER_MS,
	    "etcd's quorum came back");
}

static void
fault_broker(int sig)
{
	long long at, back;

	if (steady_leader() < 0)
		return;
	at = tutil_wall_ms();
	chaos_server_signal(chaos_broker(), sig);
	/* Ours to wait for here, so chaos_reap() must not take it first. */
	chaos_server_wait(chaos_broker());
	run_for(chaos_rnd_in(300, 1200));
	chaos_broker_start();
	back = tutil_wall_ms();
	await_serving(sig == SIGKILL ? F_BROKER_KILL : F_BROKER_TERM, at, back,
	    BOUND_BROKER_MS,
	    sig == SIGKILL ? "mosquitto came back without its state"
			   : "mosquitto came back with its state");
}

/* Checks ------------------------------------------------------------------ */

static long long top_token;

/*
 * A granted event: a token first seen (in no owner message or event
 * before) must be above every one granted before.  Events only: a batch's
 * owner messages go out in no particular order of tokens, its events in
 * the order of its decisions.
 */
static void
granted_seen(const struct chaos_msg *m, int l, const char *client, long long t)
{
	if (!chaos_grant_seen(t) && t <= top_token)
		chaos_problem(CHAOS_C_TOKENS_RISE,
		    "new token %lld (L%d, %s) at %lld after %lld", t, l, client,
		    m->at, top_token);
	if (t > top_token)
		top_token = t;
}

/* Every grant each mqlockd logged, in the order it logged them. */
static void
check_coord_logs(int *lines)
{
	for (int i = 0; i < COORDS; i++) {
		char name[32], *log, *line, *save = NULL;

		snprintf(name, sizeof(name), "mqlockd-%d.log", i);
		log = tutil_slurp(chaos_path(name), NULL);
		for (line = log != NULL ? strtok_r(log, "\n", &save) : NULL;
		     line != NULL; line = strtok_r(NULL, "\n", &save)) {
			char client[64];
			long long token;
			int l;

			/* Lock "probe" is the prober's: not among L<n>. */
			if (chaos_grant_line(line, &l, client, &token) != 1)
				continue;
			(*lines)++;
			chaos_grant_see(token, l, client, name, 0);
		}
		free(log);
	}
}

/* A term as the markers in the broker's log say. */
struct marker {
	size_t line;  /* index in the log */
	long long ts; /* the broker's seconds */
	char holder[64];
	long long term;
};

/*
 * The broker's log, in order: markers, the connections made with the
 * coordinator's client id (and whose they were), and what they published.
 */
static void
check_broker_log(int *checked, int *connects)
{
	char *log = tutil_slurp(chaos_path("mosquitto.log"), NULL), *line;
	char *save = NULL, **lines = NULL;
	size_t nl = 0, cap = 0;
	struct marker *mk = NULL;
	size_t nm = 0, capm = 0, next_mk = 0;
	char cur[64] = "";
	const char *holder = "";

	if (log == NULL) {
		chaos_problem(C_LEADER, "no mosquitto.log");
		return;
	}
	for (line = strtok_r(log, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (nl == cap) {
			cap = cap ? cap * 2 : 65536;
			lines = realloc(lines, cap * sizeof(*lines));
			if (lines == NULL)
				chaos_die("out of memory");
		}
		lines[nl++] = line;
	}
	/* The markers first, for the look-ahead. */
	for (size_t i = 0; i < nl; i++) {
		const char *p = strstr(lines[i], "'chaos/term/");
		struct marker m = {.line = i};
		int seq;

		if (p == NULL ||
		    strstr(lines[i],
			"Received PUBLISH from " CHAOS_REC_ID " (") == NULL)
			continue;
		m.ts = strtoll(lines[i], NULL, 10);
		if (sscanf(p, "'chaos/term/%d/%63[^/]/%lld'", &seq, m.holder,
			&m.term) != 3)
			continue;
		if (strcmp(m.holder, "-") == 0)
			m.holder[0] = '\0';
		if (nm == capm) {
			capm = capm ? capm * 2 : 256;
			mk = realloc(mk, capm * sizeof(*mk));
			if (mk == NULL)
				chaos_die("out of memory");
		}
		mk[nm++] = m;
	}
	for (size_t i = 0; i < nl; i++) {
		const char *l = lines[i], *p;
		long long ts = strtoll(l, NULL, 10);
		int is_pub, is_conn;

		while (next_mk < nm && mk[next_mk].line <= i)
			holder = mk[next_mk++].holder;
		if (strstr(l, "mosquitto version") != NULL &&
		    strstr(l, "starting") != NULL) {
			cur[0] = '\0';
			continue;
		}
		/*
		 * Only a connect changes whose messages follow: a message
		 * after a disconnect without a new connect cannot be, and a
		 * line about the old connection may trail the new one's.
		 */
		is_conn =
		    (p = strstr(l, "New client connected from ")) != NULL &&
		    strstr(p, " as mqlockd (") != NULL;
		if (is_conn) {
			const char *u = strstr(p, "u'");

			snprintf(cur, sizeof(cur), "%s",
			    u != NULL ? u + 2 : "?");
			if (strchr(cur, '\'') != NULL)
				*strchr(cur, '\'') = '\0';
			(*connects)++;
		}
		is_pub = strstr(l, "Received PUBLISH from mqlockd (") != NULL;
		if (!is_conn && !is_pub)
			continue;
		if (is_pub)
			(*checked)++;
		if (cur[0] != '\0' && strcmp(cur, holder) == 0)
			continue;
		/* The next term's holder, its marker just behind? */
		if (next_mk < nm && strcmp(mk[next_mk].holder, cur) == 0 &&
		    mk[next_mk].ts - ts <= LOOKAHEAD_S)
			continue;
		chaos_problem(C_LEADER,
		    "%s while etcd said %s leads (mosquitto.log line %zu: %s)",
		    is_conn ? "a connection as the coordinator"
			    : "a message from the coordinator",
		    holder[0] != '\0' ? holder : "nobody", i + 1, l);
	}
	free(mk);
	free(lines);
	free(log);
}

/* While quorum was lost (after a lease, so a leader must have noticed),
 * no decision, and the status said "etcd unavailable". */
static void
check_quorum(void)
{
	for (int q = 0; q < nquorum; q++) {
		long long from = quorum_from[q] + (LEASE_S + 1) * 1000;
		long long to = quorum_to[q];
		char err[128];
		size_t n = chaos_rec_count();

		if (chaos_status_at(from, err, sizeof(err)) == 1 ||
		    strcmp(err, "etcd unavailable") != 0)
			chaos_problem(C_QUORUM,
			    "quorum lost at %lld: the status %lld ms later "
			    "is not offline with \"etcd unavailable\" (error "
			    "\"%s\")",
			    quorum_from[q], from - quorum_from[q], err);
		for (size_t i = 0; i < n; i++) {
			struct chaos_msg m = chaos_rec_get(i);

			if (m.at < from || m.at > to)
				continue;
			if (chaos_owner_lock(m.topic) >= 0 ||
			    strncmp(m.topic, CHAOS_PREFIX "/_clients/", 15) ==
				0 ||
			    strncmp(m.topic, "replies/", 8) == 0)
				chaos_problem(C_QUORUM,
				    "a decision without quorum: %s at %lld",
				    m.topic, m.at);
		}
	}
}

/* Main ---------------------------------------------------------------------
 */

int
main(void)
{
	struct etcdtest_opts eo = {.members = 3};
	pthread_t watcher;
	int owner_msgs = 0, events = 0, nruns_cmd = 0, accepted = 0;
	int rejected = 0, checked = 0, connects = 0, exits[5] = {0};
	int grant_lines = 0;
	int faults[NFAULTS] = {0}, i, drained = 0, all_free = 0;
	long long worst = 0, slack, late_worst, now, t_begin = tutil_wall_ms();

	chaos_init(&opts);
	printf("chaos_ha: seed %llu, directory %s, %d mqlockd, %d clients, "
	       "%d locks, lease %d s, %d rounds of faults\n",
	    (unsigned long long)chaos_seed(), chaos_dir(), COORDS, WORKERS,
	    LOCKS, LEASE_S, ROUNDS);
	fflush(stdout);
	for (i = 0; i < COORDS; i++) {
		snprintf(coords[i].name, sizeof(coords[i].name), "mqlockd");
		chaos_server_add(&coords[i]);
	}

	if ((cluster = etcdtest_start(&eo)) == NULL)
		chaos_die("etcd did not start");
	chaos_broker_start();
	chaos_rec_start();
	if (pthread_create(&watcher, NULL, watch_main, NULL) != 0)
		chaos_die("pthread_create failed");
	chaos_late_start(0);
	for (i = 0; i < COORDS; i++)
		coord_start(i);
	t_start = tutil_wall_ms();
	chaos_slots_start(t_start, WARMUP_MS / 2 / WORKERS);
	steady_leader();
	run_for(WARMUP_MS);

	for (int round = 0; round < ROUNDS && !aborted; round++) {
		fault_leader_kill();
		faults[F_LEADER_KILL]++;
		run_for(SETTLE_MS);
		fault_leader_stop();
		faults[F_LEADER_STOP]++;
		run_for(SETTLE_MS);
		fault_etcd_one();
		faults[F_ETCD_ONE]++;
		run_for(SETTLE_MS);
		fault_etcd_quorum();
		faults[F_ETCD_QUORUM]++;
		run_for(SETTLE_MS);
		fault_broker(round == 0 ? SIGTERM : SIGKILL);
		faults[round == 0 ? F_BROKER_TERM : F_BROKER_KILL]++;
		run_for(SETTLE_MS);
		if (round == 0) {
			freeze_a_holder();
			run_for(SETTLE_MS);
		}
	}
	chaos_thaw(tutil_wall_ms(), 1, thaw_one);

	/* No new clients; every one must end, and every lock come free. */
	spawning = 0;
	chaos_note("faults stopped");
	for (now = tutil_wall_ms(); tutil_wall_ms() - now < DRAIN_MS;) {
		tick();
		if (chaos_busy_slots() == 0) {
			drained = 1;
			break;
		}
	}
	/* The probe lets go of its lock too. */
	chaos_rec_publish(CHAOS_PREFIX "/probe/request",
	    "{\"op\":\"release\",\"client\":\"chaos-probe\",\"session\":"
	    "\"chaos-probe-session-1\"}",
	    NULL, NULL);
	run_for(2000);
	for (now = tutil_wall_ms(); tutil_wall_ms() - now < 20000;) {
		const cJSON *cur[LOCKS];

		chaos_latest_owners(cur);
		if ((all_free = chaos_all_free(cur)) != 0)
			break;
		tick();
	}
	if (!drained)
		chaos_problem(C_END,
		    "clients still running %d s after the faults",
		    DRAIN_MS / 1000);
	else if (!all_free)
		chaos_problem(C_END,
		    "a lock is still held or awaited with "
		    "every client gone");

	/* Stop the normal way: every mqlockd and mosquitto must exit 0. */
	for (i = 0; i < COORDS; i++)
		chaos_server_signal(&coords[i], SIGTERM);
	for (int k = 0; k < 1000; k++) {
		int up = 0;

		chaos_reap(tutil_wall_ms(), 0);
		for (i = 0; i < COORDS; i++)
			up += coords[i].state != CHAOS_DOWN;
		if (up == 0)
			break;
		tutil_nap_ms(10);
	}
	pthread_mutex_lock(&mu);
	watching = 0;
	pthread_mutex_unlock(&mu);
	pthread_join(watcher, NULL);
	chaos_rec_stop();
	chaos_server_signal(chaos_broker(), SIGTERM);
	for (int k = 0; k < 500 && chaos_broker()->state != CHAOS_DOWN; k++) {
		chaos_reap(tutil_wall_ms(), 0);
		tutil_nap_ms(10);
	}
	late_worst = chaos_late_stop();
	chaos_kill_everything();
	for (i = 0; i < 500 && waitpid(-1, NULL, WNOHANG) != -1; i++)
		tutil_nap_ms(10);

	/* The verdict. */
	chaos_check_exits(exits);
	chaos_check_recorded(NULL, granted_seen, &owner_msgs, &events);
	check_coord_logs(&grant_lines);
	chaos_check_commands(&nruns_cmd, &accepted, &rejected);
	chaos_check_cli_exits();
	check_broker_log(&checked, &connects);
	check_quorum();
	for (i = 0; i < COORDS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "mqlockd-%d.log", i);
		chaos_check_sanitizer(name);
	}
	chaos_check_sanitizer(NULL);
	slack = RECOVERY_STEPS * late_worst;
	for (i = 0; i < nruns; i++) {
		struct fault_run *r = &runs[i];
		long long took = r->served > 0 ? r->served - r->from : -1;

		if (took > worst)
			worst = took;
		if (took < 0 || took > r->bound + slack)
			chaos_problem(C_SERVE,
			    "%s: %s%lld ms (bound %lld ms + %lld ms lateness)",
			    r->what,
			    took < 0 ? "not served within " : "served after ",
			    took < 0 ? (long long)SERVE_WAIT_MS : took,
			    r->bound, slack);
	}

	printf("faults:");
	for (i = 0; i < NFAULTS; i++)
		printf("%s %s %d", i ? "," : "", fault_name[i], faults[i]);
	printf("\nterms seen in etcd: %d (failovers: %d leader changes)\n",
	    nterms, nterms > 0 ? nterms - 1 : 0);
	for (i = 0; i < nterms; i++)
		printf("  %lld ms: %s leads (term %lld)\n",
		    terms[i].at - t_begin,
		    terms[i].holder[0] ? terms[i].holder : "nobody",
		    terms[i].term);
	for (i = 0; i < nruns; i++)
		printf("serving again %lld ms after %s (bound %lld ms)\n",
		    runs[i].served > 0 ? runs[i].served - runs[i].from : -1,
		    runs[i].what, runs[i].bound);
	printf("worst time to a serving leader: %lld ms; worst lateness of a "
	       "50 ms sleep %lld ms (allowance %d x)\n",
	    worst, late_worst, RECOVERY_STEPS);
	printf("broker log: %d messages and %d connections of the "
	       "coordinator checked against etcd's leader\n",
	    checked, connects);
	printf("grants: tokens up to %lld; %d grant log lines, %d owner "
	       "messages, %d events recorded; %d probes\n",
	    top_token, grant_lines, owner_msgs, events, nprobes);
	printf("commands run %d; fenced writes accepted %d, refused %d; "
	       "%d holders frozen for 14-20 s\n",
	    nruns_cmd, accepted, rejected, nfrozen);
	printf("mqlock exits: %d done, %d lock lost (70), %d gave up waiting "
	       "(75), %d broker unreachable (69), %d killed by the test; %d "
	       "runs in all; %lld s from start to verdict\n",
	    exits[0], exits[1], exits[2], exits[3], exits[4], chaos_nclients(),
	    (tutil_wall_ms() - t_begin) / 1000);
	return chaos_verdict(check_order,
	    (int)(sizeof(check_order) / sizeof(check_order[0])), 52);
}
