/*
 * chaos: many `mqlock acquire` clients contend for a few locks while the
 * test kills and freezes clients, kills and restarts mqlockd and restarts
 * mosquitto (SIGTERM with its state saved, SIGKILL with its state lost);
 * then a checker goes over everything that was recorded.
 *
 * Processes, all children of this one and all on 127.0.0.1:
 *   mosquitto   persistence on; a SIGKILL restart also deletes its state
 *   mqlockd     --grace 2 --keepalive 2 --idle-timeout 30
 *   32 slots    each runs `mqlock acquire L<n> --wait S -- chaos_cmd ...`
 *               again and again, a new client id each time; chaos_cmd
 *               logs its run and makes fenced writes (see chaos_cmd.c)
 * and, in this process, a recorder: an MQTT connection (reconnecting by
 * itself) that logs every owner message, event and status with its
 * arrival time.
 *
 * Timeline: warm-up, a fault phase (a fault every 1-3.5 s, the server
 * faults from a shuffled plan that has each kind several times), a last
 * blow (about half the holders killed, the broker killed with its state),
 * then the faults stop, frozen clients are continued or killed, no new
 * clients start, and the test waits until every client has ended.
 *
 * The checker proves, and fails (exit 1) otherwise:
 *   - every token belongs to one lock and one client, wherever it is seen
 *     (mqlockd's grant log, owner messages, granted events, the commands'
 *     MQLOCK_TOKEN, the fenced writes);
 *   - new tokens strictly increase, across all locks and restarts, and a
 *     restarted mqlockd's counter is at least every token granted before;
 *   - per lock, owner messages never go back to an older token, and never
 *     show a free lock with a connected waiter;
 *   - each lock's resource was written in token order (fencing) and only
 *     with tokens granted for that lock to that client;
 *   - once the faults stop, within RECOVERY_BOUND_MS every lock is free or
 *     held by a live client and no live client waits on a free lock; at
 *     the end every lock is free;
 *   - mqlockd and mosquitto exited only when the test made them, mqlock
 *     only with 0, 69, 70 or 75 (or our SIGKILL), and no log has a
 *     sanitizer report;
 *   - an mqlock that exited 0 kept its lock until its command ended (no
 *     later token of that lock was granted before).
 * and prints the figures: faults by kind, grants checked, writes accepted
 * and refused, exits, worst time to recovery.
 *
 * Environment: CHAOS_SEED repeats a fault plan (timing still differs);
 * CHAOS_KEEP keeps the directory; CHAOS_FAULT_S sets the fault phase;
 * CHAOS_LOAD=N runs N busy loops beside everything, for the whole run, to
 * show the bound holds on a busy machine.
 *
 * The recovery bound is derived from what the run measures: the nominal
 * bound (timers of the broker, mqlockd and mqlock) plus, for each of the
 * RECOVERY_STEPS timer steps that may follow each other until a lock is
 * handed on, the worst lateness of this process's own 50 ms sleeps after
 * the faults stopped, plus every stall mqlockd reported ("stalled for N
 * ms": it then floors deadlines by a grace period).  On an idle machine
 * the extra is a few ms; both parts are printed.
 *
 * It does not use the integration harness: that one reports through
 * cmocka and runs one broker it cannot restart; here one process owns every
 * child (and, as subreaper, the commands orphaned by a killed mqlock) and
 * collects all problems before its verdict.  The servers, the clients, the
 * recorder and the checks it shares with chaos_ha are in chaoslib.c; the
 * fault plan, liveness, the roll call and the recovery bound are here.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chaoslib.h"
#include "tutil.h"

#define WORKERS 32
#define LOCKS 4
#define WARMUP_MS 5000
#define FAULT_MS_DEFAULT 90000
#define GRACE_S CHAOS_GRACE_S
#define COORD_KEEPALIVE_S CHAOS_COORD_KEEPALIVE_S
#define CLIENT_KEEPALIVE_S CHAOS_CLIENT_KEEPALIVE_S
#define BACKOFF_MAX_MS 5000   /* mqlock's and mqlockd's reconnect backoff */
#define RELEASE_SLACK_MS 2000 /* a release on its way to the coordinator */
/*
 * After the faults stop: a frozen holder is noticed by the broker within
 * 1.5 x keepalive + 6 s and handed on after the grace; a new epoch's roll
 * call takes grace + keepalive; reconnecting takes up to the backoff.
 */
#define RECOVERY_BOUND_MS                                    \
	(1500 * CLIENT_KEEPALIVE_S + 6000 + GRACE_S * 1000 + \
	    (GRACE_S + COORD_KEEPALIVE_S) * 1000 + BACKOFF_MAX_MS)
/*
 * Timer steps between a client going silent and its lock being handed on,
 * each of which a busy machine may run late: the broker's keepalive scan,
 * the will's delivery, mqlockd's grace timer, its roll-call timer.
 */
#define RECOVERY_STEPS 4
#define DRAIN_MS 60000       /* after the faults: every client must end */
#define HARD_LIMIT_MS 178000 /* the whole run, start to verdict */

enum fault {
	F_CLIENT_KILL,
	F_CLIENT_STOP,
	F_CLIENT_CONT,
	F_COORD_KILL,
	F_COORD_TERM,
	F_BROKER_TERM,
	F_BROKER_KILL,
	NFAULTS
};

static const char *const fault_name[NFAULTS] = {
    [F_CLIENT_KILL] = "client SIGKILL",
    [F_CLIENT_STOP] = "client SIGSTOP",
    [F_CLIENT_CONT] = "client SIGCONT",
    [F_COORD_KILL] = "mqlockd SIGKILL",
    [F_COORD_TERM] = "mqlockd SIGTERM",
    [F_BROKER_TERM] = "mosquitto SIGTERM (state saved)",
    [F_BROKER_KILL] = "mosquitto SIGKILL (state lost)",
};

/* What the checker proves: chaoslib's checks, then this program's. */
enum check {
	C_NOBODY_WAITS = CHAOS_NSHARED, /* a free lock, no connected waiter */
	C_RECOVERY, /* sane within the bound after the faults */
	NCHECKS
};

static const char *const check_name[NCHECKS] = {
    [CHAOS_C_ONE_GRANT] = "one lock and one client per token",
    [CHAOS_C_TOKENS_RISE] = "tokens strictly increase",
    [CHAOS_C_OWNER_ORDER] = "owner messages never go back to an older token",
    [C_NOBODY_WAITS] = "no free lock with a connected waiter",
    [CHAOS_C_FENCING] = "fenced writes in token order, with granted tokens",
    [C_RECOVERY] = "recovery within the bound after the faults",
    [CHAOS_C_NO_CRASH] = "no crash, no unexpected exit, no sanitizer report",
    [CHAOS_C_CLI_EXIT] = "mqlock exit 0 only if its lock stayed its own",
};

/* The order of the verdict's lines. */
static const int check_order[] = {CHAOS_C_ONE_GRANT, CHAOS_C_TOKENS_RISE,
    CHAOS_C_OWNER_ORDER, C_NOBODY_WAITS, CHAOS_C_FENCING, C_RECOVERY,
    CHAOS_C_NO_CRASH, CHAOS_C_CLI_EXIT};

static void hogs_stop(void);

static const struct chaos_opts opts = {
    .name = "chaos",
    .stem = "mqlock-chaos",
    .workers = WORKERS,
    .locks = LOCKS,
    .max_iters = 4096,
    .max_wait_s = 10,
    .cmd_max_ms = 800,
    .long_min_ms = 2000,
    .long_max_ms = 5000,
    .long_writes_min = 4,
    .long_writes_max = 10,
    .respawn_max_ms = 500,
    .broker_log_all = 0,
    .check_names = check_name,
    .nchecks = NCHECKS,
    .at_kill = hogs_stop,
};

static struct chaos_server coord = {.name = "mqlockd"};
static int faults[NFAULTS];

/* ---- load ---- */

static pid_t hogs[16];
static int nhogs;

/* n busy loops, each ending on its own within the run's hard limit. */
static void
hogs_start(int n)
{
	for (nhogs = 0; nhogs < n && nhogs < 16; nhogs++) {
		pid_t pid = fork();

		if (pid == 0) {
			volatile unsigned long x = 0;
			long long end = tutil_mono_ms() + HARD_LIMIT_MS;

			while (tutil_mono_ms() < end)
				for (int k = 0; k < 1000000; k++)
					x++;
			_exit(0);
		}
		if (pid < 0)
			chaos_die("fork: %s", strerror(errno));
		hogs[nhogs] = pid;
	}
}

static void
hogs_stop(void)
{
	for (int i = 0; i < nhogs; i++) {
		kill(hogs[i], SIGKILL);
		waitpid(hogs[i], NULL, 0);
	}
	nhogs = 0;
}

/* The time of a log line "2026-01-02T03:04:05.678Z ...", in ms; 0: none. */
static long long
log_time(const char *line)
{
	struct tm tm;
	int ms;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(line, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon,
		&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

/* The stalls mqlockd reported (ms in all) in its log at or after from. */
static long long
coord_stalls_since(long long from)
{
	char *log = tutil_slurp(chaos_path("mqlockd.log"), NULL), *p;
	long long sum = 0;

	for (p = log; p != NULL && (p = strstr(p, "stalled for ")) != NULL;
	     p++) {
		const char *line = p;

		while (line > log && line[-1] != '\n')
			line--;
		if (log_time(line) >= from)
			sum += strtoll(p + strlen("stalled for "), NULL, 10);
	}
	free(log);
	return sum;
}

static void
coord_start(void)
{
	char *extra[] = {(char *)"--db", NULL, NULL};
	char db[PATH_MAX + 64];

	snprintf(db, sizeof(db), "%s", chaos_path("mqlock.db"));
	extra[1] = db;
	chaos_coord_start(&coord, "mqlockd.log", extra);
}

/* Liveness ---------------------------------------------------------------- */

/*
 * Was client id live at time t: running and not frozen, or ended normally
 * (0: done, 75: gave up waiting) so recently that its release may still be
 * on its way?
 */
static int
live_at(const char *id, long long t)
{
	struct chaos_client *c = chaos_client_by_id(id);

	if (c == NULL || t < c->start)
		return 0;
	if (c->frozen_at != 0 && t >= c->frozen_at &&
	    (c->thawed_at == 0 || t < c->thawed_at))
		return 0;
	if (c->running || t < c->end)
		return 1;
	if (!c->killed && WIFEXITED(c->status) &&
	    (WEXITSTATUS(c->status) == 0 || WEXITSTATUS(c->status) == 75))
		return t < c->end + RELEASE_SLACK_MS;
	return 0;
}

/*
 * Is the owner message m (latest of its lock at t) sane at t: held by a
 * live client, or free with no live client waiting?
 */
static int
sane(const cJSON *m, long long t)
{
	const cJSON *owner = cJSON_GetObjectItemCaseSensitive(m, "owner");
	const cJSON *queue = cJSON_GetObjectItemCaseSensitive(m, "queue");
	const cJSON *w;

	if (cJSON_IsObject(owner))
		return live_at(chaos_jstr(owner, "client"), t);
	cJSON_ArrayForEach(w, queue)
	{
		if (live_at(chaos_jstr(w, "client"), t))
			return 0;
	}
	return 1;
}

/* Checks ------------------------------------------------------------------ */

/*
 * mqlockd's log: every grant line in order.  New tokens must increase;
 * each restart's counter covers every token granted before it.  A grant
 * is dated by its line (chaos_check_cli_exits()).
 */
static int
check_coord_log(void)
{
	char *log = tutil_slurp(chaos_path("mqlockd.log"), NULL), *line;
	char *save = NULL;
	long long top = 0, restored;
	int lines = 0;

	if (log == NULL) {
		chaos_problem(CHAOS_C_NO_CRASH, "no mqlockd.log");
		return 0;
	}
	for (line = strtok_r(log, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char client[64];
		long long token;
		const char *p;
		int l, kind;

		if ((p = strstr(line, "last token ")) != NULL) {
			restored = strtoll(p + 11, NULL, 10);
			if (restored < top)
				chaos_problem(CHAOS_C_TOKENS_RISE,
				    "mqlockd restarted with token counter "
				    "%lld after granting %lld",
				    restored, top);
			continue;
		}
		if ((kind = chaos_grant_line(line, &l, client, &token)) == 0)
			continue;
		lines++;
		if (kind < 0) {
			chaos_problem(CHAOS_C_ONE_GRANT,
			    "grant of an unknown lock: %s", line);
			continue;
		}
		if (token > top)
			top = token;
		else if (!chaos_grant_known(token, l, client))
			chaos_problem(CHAOS_C_TOKENS_RISE,
			    "token %lld granted after %lld, and not as a "
			    "repeat: %s",
			    token, top, line);
		chaos_grant_see(token, l, client, "mqlockd.log",
		    log_time(line));
	}
	free(log);
	return lines;
}

/*
 * Whether time t lies within a roll call: from 1 s before the coordinator
 * went online (it republishes its owner messages around then) to the end
 * of the window after it.  The moment is the status's "since", so a
 * retained copy counts too: the recorder, itself cut off by a broker
 * restart, may only get the status that way, after the roll call began.
 */
static int
in_roll_call(long long t)
{
	size_t n = chaos_rec_count();

	for (size_t i = 0; i < n; i++) {
		struct chaos_msg m = chaos_rec_get(i);
		long long since;

		if (m.json == NULL ||
		    strcmp(m.topic, CHAOS_PREFIX "/_coordinator/status") != 0 ||
		    chaos_jstr(m.json, "state") == NULL ||
		    strcmp(chaos_jstr(m.json, "state"), "online") != 0)
			continue;
		since = chaos_jint(m.json, "since");
		if (since <= 0)
			since = m.at;
		if (t >= since - 1000 &&
		    t < since + (GRACE_S + COORD_KEEPALIVE_S) * 1000)
			return 1;
	}
	return 0;
}

/* A free lock's owner message: nobody connected may wait. */
static void
free_lock_seen(const struct chaos_msg *m, int l)
{
	const cJSON *w;

	cJSON_ArrayForEach(w,
	    cJSON_GetObjectItemCaseSensitive(m->json, "queue"))
	{
		/*
		 * Within a roll call, grants skip waiters that have not
		 * answered yet while their owner entries still show them
		 * connected (topics.md, "Epochs and the roll call").  A
		 * retained copy, delivered when the recorder (re)subscribes,
		 * shows a state from an earlier moment than its arrival.
		 */
		if (m->retained || in_roll_call(m->at))
			continue;
		if (cJSON_IsTrue(
			cJSON_GetObjectItemCaseSensitive(w, "connected")))
			chaos_problem(C_NOBODY_WAITS,
			    "L%d is free at %lld with %s waiting, connected", l,
			    m->at, chaos_jstr(w, "client"));
	}
}

/*
 * Over the whole run, every stretch of time in which a lock was held by a
 * client that was not live (killed, frozen, gone), or free with a live
 * client waiting: the longest is the worst time to recovery.
 */
static long long
worst_episode(long long from, long long to, int *episodes)
{
	const cJSON *cur[LOCKS] = {NULL};
	long long bad_since[LOCKS] = {0}, worst = 0;
	size_t i = 0, n = chaos_rec_count();

	for (long long t = from; t <= to; t += 100) {
		for (; i < n; i++) {
			struct chaos_msg m = chaos_rec_get(i);
			int l;

			if (m.at > t)
				break;
			if ((l = chaos_owner_lock(m.topic)) >= 0 &&
			    m.json != NULL)
				cur[l] = m.json;
		}
		for (int l = 0; l < LOCKS; l++) {
			int ok = cur[l] == NULL || sane(cur[l], t);

			if (!ok && bad_since[l] == 0)
				bad_since[l] = t;
			if ((ok || t + 100 > to) && bad_since[l] != 0) {
				if (t - bad_since[l] > worst)
					worst = t - bad_since[l];
				(*episodes)++;
				bad_since[l] = 0;
			}
		}
	}
	return worst;
}

/* Faults ------------------------------------------------------------------ */

/* A server fault on s; 0 if it is not up now. */
static int
server_fault(struct chaos_server *s, int sig, enum fault f)
{
	if (s->state != CHAOS_UP)
		return 0;
	chaos_server_signal(s, sig);
	faults[f]++;
	chaos_note("%s", fault_name[f]);
	return 1;
}

/* One fault, chosen by the plan; returns 0 if it could not happen now. */
static int
inject(enum fault f, long long now)
{
	int cand[WORKERS], n = 0, i, l;
	struct chaos_client *c;

	switch (f) {
	case F_CLIENT_KILL:
	case F_CLIENT_STOP:
		for (i = 0; i < WORKERS; i++)
			if ((c = chaos_slot_client(i)) != NULL &&
			    c->frozen_at == 0)
				cand[n++] = i;
		if (n == 0)
			return 0;
		c = chaos_slot_client(cand[chaos_rnd() % (uint64_t)n]);
		/*
		 * Most running clients wait; aim at a holder two times in
		 * three, one with a long command if there is one, or the
		 * interesting case (a command still writing after its lock
		 * moved on) hardly happens.
		 */
		if (chaos_rnd() % 3 != 0) {
			const cJSON *latest[LOCKS];
			struct chaos_client *h, *pick = NULL;
			int first = (int)(chaos_rnd() % LOCKS);

			chaos_latest_owners(latest);
			for (i = 0; i < LOCKS; i++) {
				l = (first + i) % LOCKS;
				h = chaos_holder(latest[l]);
				if (h == NULL || !h->running ||
				    h->frozen_at != 0)
					continue;
				if (pick == NULL ||
				    (h->long_cmd && !pick->long_cmd))
					pick = h;
			}
			if (pick != NULL)
				c = pick;
		}
		if (f == F_CLIENT_KILL)
			chaos_client_kill(c, now);
		else {
			/* Continued or killed 2-15 s later: thaw_one(). */
			chaos_client_freeze(c, now,
			    now + chaos_rnd_in(2000, 15000), 0);
		}
		faults[f]++;
		chaos_note("%s %s", fault_name[f], c->id);
		return 1;
	case F_COORD_KILL:
		return server_fault(&coord, SIGKILL, f);
	case F_COORD_TERM:
		return server_fault(&coord, SIGTERM, f);
	case F_BROKER_TERM:
		return server_fault(chaos_broker(), SIGTERM, f);
	case F_BROKER_KILL:
		return server_fault(chaos_broker(), SIGKILL, f);
	default:
		return 0;
	}
}

/* A frozen client whose time came: continued (70%) or killed. */
static int
thaw_one(struct chaos_client *c, int all)
{
	int kill_it = chaos_rnd() % 10 >= 7;

	(void)c;
	(void)all;
	faults[kill_it ? F_CLIENT_KILL : F_CLIENT_CONT]++;
	return kill_it;
}

/*
 * The last blow, so that the recovery measured after is a real one: about
 * half the holders die, and the broker loses its state (a new epoch, a
 * roll call).
 */
static void
last_blow(long long now)
{
	const cJSON *latest[LOCKS];

	chaos_latest_owners(latest);
	for (int l = 0; l < LOCKS; l++) {
		struct chaos_client *c = chaos_holder(latest[l]);

		if (c == NULL || !c->running || chaos_rnd() % 2 == 0)
			continue;
		chaos_client_kill(c, now);
		faults[F_CLIENT_KILL]++;
		chaos_note("%s %s (holder, at the end)",
		    fault_name[F_CLIENT_KILL], c->id);
	}
	server_fault(chaos_broker(), SIGKILL, F_BROKER_KILL);
}

/* Main ---------------------------------------------------------------------
 */

/* The whole number in environment variable name, or -1. */
static long long
env_number(const char *name)
{
	const char *s = getenv(name);
	char *end;
	long long v;

	if (s == NULL || s[0] == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	return errno != 0 || *end != '\0' ? -1 : v;
}

int
main(void)
{
	static enum fault plan[256];
	long long v, t0, now, fault_end, next_fault, t_end = 0, recovered = -1;
	long long fault_ms = FAULT_MS_DEFAULT, last_bad = -1, worst;
	long long bound, stalls, late_worst;
	int load = 0;
	int nplan = 0, next = 0, drained = 0, i, l, episodes = 0;
	int final_done = 0;
	int grants_log, owner_msgs = 0, events = 0, runs = 0, accepted = 0;
	int rejected = 0, checked, exits[5] = {0};
	int status;

	chaos_init(&opts);
	chaos_server_add(&coord);
	chaos_broker()->restart_max_ms = 1500;
	coord.restart_max_ms = 3000;
	if ((v = env_number("CHAOS_FAULT_S")) > 0 && v <= 120)
		fault_ms = v * 1000;
	if ((v = env_number("CHAOS_LOAD")) > 0)
		load = v > 16 ? 16 : (int)v;
	printf("chaos: seed %llu, directory %s, %d clients, %d locks, "
	       "%lld s of faults, %d busy loops beside\n",
	    (unsigned long long)chaos_seed(), chaos_dir(), WORKERS, LOCKS,
	    fault_ms / 1000, load);
	hogs_start(load);
	/* Lateness counts once the faults have stopped. */
	chaos_late_start(LLONG_MAX);
	fflush(stdout);

	/*
	 * The plan: every kind of server fault several times, client faults
	 * in between, shuffled.
	 */
	for (i = 0; i < 4; i++)
		plan[nplan++] = F_COORD_KILL;
	plan[nplan++] = F_COORD_TERM;
	for (i = 0; i < 3; i++) {
		plan[nplan++] = F_BROKER_TERM;
		plan[nplan++] = F_BROKER_KILL;
	}
	/* One fault every 2.25 s on average: the plan fills the phase. */
	while (nplan < fault_ms / 2250 && nplan < 256)
		plan[nplan++] = chaos_rnd() % 2 ? F_CLIENT_KILL : F_CLIENT_STOP;
	for (i = nplan - 1; i > 0; i--) {
		int j = (int)(chaos_rnd() % (uint64_t)(i + 1));
		enum fault x = plan[i];

		plan[i] = plan[j];
		plan[j] = x;
	}

	chaos_broker_start();
	chaos_rec_start();
	coord_start();
	t0 = tutil_wall_ms();
	while ((now = tutil_wall_ms()), chaos_status_at(now, NULL, 0) != 1) {
		if (now - t0 > 20000)
			chaos_die("mqlockd not online within 20 s");
		chaos_reap(now, 0);
		chaos_rec_tick(now);
		tutil_nap_ms(20);
	}

	t0 = tutil_wall_ms();
	chaos_slots_start(t0, WARMUP_MS / 2 / WORKERS);
	next_fault = t0 + WARMUP_MS;
	fault_end = t0 + WARMUP_MS + fault_ms;

	for (;;) {
		now = tutil_wall_ms();
		chaos_reap(now, t_end == 0);
		chaos_rec_tick(now);
		if (now - t0 > HARD_LIMIT_MS - 15000)
			chaos_die("the run did not end within its time limit");

		/* Servers that are down come back. */
		if (chaos_broker()->state == CHAOS_DOWN &&
		    now >= chaos_broker()->restart_at)
			chaos_broker_start();
		if (coord.state == CHAOS_DOWN && now >= coord.restart_at)
			coord_start();

		if (now < fault_end) {
			/* The workload: until the faults stop. */
			chaos_spawn_due(now);
			chaos_thaw(now, 0, thaw_one);
			if (now >= next_fault) {
				/*
				 * A server fault that cannot happen now (its
				 * server is down) waits for the next turn.
				 */
				if (next < nplan && inject(plan[next], now))
					next++;
				else
					inject(chaos_rnd() % 2 ? F_CLIENT_KILL
							       : F_CLIENT_STOP,
					    now);
				next_fault = now + chaos_rnd_in(1000, 3500);
			}
		} else if (t_end == 0) {
			/* The last blow, then thaw everyone and wait for the
			 * servers. */
			if (!final_done) {
				last_blow(now);
				final_done = 1;
			}
			chaos_thaw(now, 1, thaw_one);
			if (chaos_broker()->state == CHAOS_UP &&
			    coord.state == CHAOS_UP) {
				t_end = now;
				chaos_note("faults stopped");
				chaos_late_from(now);
			}
		} else {
			const cJSON *latest[LOCKS];
			int ok = 1;

			chaos_latest_owners(latest);
			for (l = 0; l < LOCKS; l++)
				if (latest[l] != NULL && !sane(latest[l], now))
					ok = 0;
			if (!ok)
				last_bad = now;
			if (chaos_busy_slots() == 0 && chaos_all_free(latest)) {
				recovered = now;
				drained = 1;
				break;
			}
			if (now - t_end > DRAIN_MS)
				break;
		}
		tutil_nap_ms(10);
	}

	/* Stop the servers the normal way: both must exit 0. */
	chaos_server_signal(&coord, SIGTERM);
	for (i = 0; i < 500 && coord.state != CHAOS_DOWN; i++) {
		chaos_reap(tutil_wall_ms(), 0);
		tutil_nap_ms(10);
	}
	chaos_rec_stop();
	chaos_server_signal(chaos_broker(), SIGTERM);
	for (i = 0; i < 500 && chaos_broker()->state != CHAOS_DOWN; i++) {
		chaos_reap(tutil_wall_ms(), 0);
		tutil_nap_ms(10);
	}
	chaos_kill_everything();
	/* Orphaned commands finish their last writes (5 s at most). */
	for (i = 0; i < 700 && waitpid(-1, NULL, WNOHANG) != -1; i++)
		tutil_nap_ms(10);

	/* The verdict. */
	if (!drained)
		chaos_problem(C_RECOVERY,
		    "not every client ended and every lock came free "
		    "within %d s after the faults stopped",
		    DRAIN_MS / 1000);
	chaos_check_exits(exits);
	chaos_check_recorded(free_lock_seen, NULL, &owner_msgs, &events);
	grants_log = check_coord_log();
	chaos_check_commands(&runs, &accepted, &rejected);
	chaos_check_cli_exits();
	checked = chaos_grants_count();
	chaos_check_sanitizer("mqlockd.log");
	chaos_check_sanitizer(NULL);
	worst = worst_episode(t0,
	    t_end > 0 ? (recovered > 0 ? recovered : tutil_wall_ms())
		      : tutil_wall_ms(),
	    &episodes);
	late_worst = chaos_late_stop();
	stalls = t_end > 0 ? coord_stalls_since(t_end) : 0;
	bound = RECOVERY_BOUND_MS + RECOVERY_STEPS * late_worst + stalls +
	    (stalls > 0 ? GRACE_S * 1000 : 0);
	if (t_end > 0 && last_bad >= 0 && last_bad - t_end > bound)
		chaos_problem(C_RECOVERY,
		    "a lock was held by a client that was not live, or "
		    "free with a live client waiting, %lld ms after the "
		    "faults stopped (bound %lld ms)",
		    last_bad - t_end, bound);

	printf("faults injected:");
	for (i = 0; i < NFAULTS; i++)
		printf("%s %s %d", i ? "," : "", fault_name[i], faults[i]);
	printf("\nmqlockd starts %d, mosquitto starts %d\n", coord.starts,
	    chaos_broker()->starts);
	printf("grants checked: %d distinct tokens (%d grant log lines, %d "
	       "owner messages, %d events recorded)\n",
	    checked, grants_log, owner_msgs, events);
	printf("commands run %d; fenced writes accepted %d, refused %d "
	       "(stale token)\n",
	    runs, accepted, rejected);
	printf("mqlock exits: %d done, %d lock lost (70), %d gave up waiting "
	       "(75), %d broker unreachable (69), %d killed by the test; "
	       "%d runs in all\n",
	    exits[0], exits[1], exits[2], exits[3], exits[4], chaos_nclients());
	printf("recovery after the faults stopped: %lld ms (bound %lld ms = "
	       "nominal %d ms [1.5 x %d s + 6 s + grace %d s + roll call %d "
	       "s + backoff %d s] + %d steps x worst lateness %lld ms + "
	       "mqlockd stalls %lld ms%s); all free and all clients ended "
	       "after %lld ms\n",
	    last_bad >= 0 && t_end > 0 ? last_bad - t_end : 0, bound,
	    RECOVERY_BOUND_MS, CLIENT_KEEPALIVE_S, GRACE_S,
	    GRACE_S + COORD_KEEPALIVE_S, BACKOFF_MAX_MS / 1000, RECOVERY_STEPS,
	    late_worst, stalls, stalls > 0 ? " + a grace period" : "",
	    recovered > 0 ? recovered - t_end : -1);
	printf("worst time to recovery during the run: %lld ms (%d "
	       "episodes of a lock held by a dead/frozen client or free "
	       "with a live waiter)\n",
	    worst, episodes);
	status = chaos_verdict(check_order,
	    (int)(sizeof(check_order) / sizeof(check_order[0])), 50);
	return status;
}
