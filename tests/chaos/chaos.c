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
 * collects all problems before its verdict.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <MQTTAsync.h>

#include "tutil.h"

#define PREFIX "locks"
#define WORKERS 32
#define LOCKS 4
#define WARMUP_MS 5000
#define FAULT_MS_DEFAULT 90000
#define GRACE_S 2
#define COORD_KEEPALIVE_S 2
#define CLIENT_KEEPALIVE_S 5 /* mqlock --keepalive */
#define IDLE_S 30
#define MAX_WAIT_S 10         /* mqlock --wait is 1..this */
#define CMD_MAX_MS 800        /* a short command holds its lock this long */
#define CMD_LONG_MS 5000      /* a long one, at most */
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
#define PROBE_MS 50
#define DRAIN_MS 60000       /* after the faults: every client must end */
#define MAX_ITERS 4096       /* runs per slot */
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

/* A server process: mosquitto or mqlockd. */
enum srv_state { S_UP, S_STOPPING, S_DOWN };

struct server {
	const char *name;
	pid_t pid;
	enum srv_state state;
	int sent;             /* the signal we sent, 0: none */
	long long restart_at; /* S_DOWN: start again then */
	int starts;
	int crashes;
	char crash[256];
};

/* One `mqlock acquire` process. */
struct client {
	char id[32];
	int slot, lock;
	pid_t pid;
	int running;
	int status;
	int killed; /* by our SIGKILL */
	long long start, end;
	long long frozen_at, thawed_at; /* 0: never */
	long long thaw_due;             /* frozen: continue or kill then */
	long long cmd_token, cmd_end;   /* from runs.log; 0: none */
	int long_cmd;                   /* its command runs for seconds */
};

struct slot {
	int cur; /* client index, -1: idle */
	long long next_at;
	int iter;
};

/* A recorded message. */
struct msg {
	long long at;
	char *topic;
	cJSON *json;
	int retained;
};

static char dir[PATH_MAX];
static char uri[64];
static int port;
static struct server broker = {.name = "mosquitto"};
static struct server coord = {.name = "mqlockd"};
static struct client *clients;
static int nclients, capclients;
static struct slot slots[WORKERS];
static int by_iter[WORKERS][MAX_ITERS]; /* slot, iteration -> client */
static int faults[NFAULTS];
static uint64_t rng;
static FILE *faultlog;

static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static struct msg *recs;
static size_t nrecs, caprecs;
static FILE *reclog;
static MQTTAsync rec_mq;
static int rec_subscribed;

/* What the checker proves; each failure is counted against one. */
enum check {
	C_ONE_GRANT,    /* a token is one lock and one client everywhere */
	C_TOKENS_RISE,  /* new tokens increase, across restarts too */
	C_OWNER_ORDER,  /* per lock, owner messages never go back */
	C_NOBODY_WAITS, /* a free lock has no connected waiter */
	C_FENCING,      /* resources written in token order, real tokens */
	C_RECOVERY,     /* sane within the bound after the faults */
	C_NO_CRASH,     /* exits we caused only; no sanitizer reports */
	C_CLI_EXIT,     /* mqlock exits 70 if its lock moved on meanwhile */
	NCHECKS
};

static const char *const check_name[NCHECKS] = {
    [C_ONE_GRANT] = "one lock and one client per token",
    [C_TOKENS_RISE] = "tokens strictly increase",
    [C_OWNER_ORDER] = "owner messages never go back to an older token",
    [C_NOBODY_WAITS] = "no free lock with a connected waiter",
    [C_FENCING] = "fenced writes in token order, with granted tokens",
    [C_RECOVERY] = "recovery within the bound after the faults",
    [C_NO_CRASH] = "no crash, no unexpected exit, no sanitizer report",
    [C_CLI_EXIT] = "mqlock exit 0 only if its lock stayed its own",
};

static int nproblems[NCHECKS];

static void problem(enum check, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records a failed check; the verdict comes at the end. */
static void
problem(enum check c, const char *fmt, ...)
{
	va_list ap;

	if (nproblems[c]++ < 10) {
		fprintf(stderr, "CHECK FAILED (%s): ", check_name[c]);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
}

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void kill_everything(void);

static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("chaos: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kill_everything();
	fprintf(stderr, "chaos: directory kept: %s\n", dir);
	exit(1);
}

static uint64_t
rnd(void)
{
	return tutil_rand(&rng);
}

/* A uniform integer in [lo, hi]. */
static long long
rnd_in(long long lo, long long hi)
{
	return lo + (long long)(rnd() % (uint64_t)(hi - lo + 1));
}

static const char *
path(const char *name)
{
	static char bufs[8][PATH_MAX + 64];
	static unsigned next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A line in faults.log, for whoever reads the directory afterwards. */
static void
note(const char *fmt, ...)
{
	va_list ap;

	fprintf(faultlog, "%lld ", tutil_wall_ms());
	va_start(ap, fmt);
	vfprintf(faultlog, fmt, ap);
	va_end(ap);
	fputc('\n', faultlog);
	fflush(faultlog);
}

/* Processes ------------------------------------------------------------- */

/* Starts argv with stdout and stderr appended to out; returns its pid. */
static pid_t
spawn(char *const argv[], const char *out)
{
	pid_t pid = tutil_spawn(argv, out, 1);

	if (pid == -1)
		die("start %s (output to %s): %s", argv[0], out,
		    strerror(errno));
	return pid;
}

static void
append_line(const char *file, const char *line)
{
	FILE *f = fopen(file, "a");

	if (f != NULL) {
		fputs(line, f);
		fclose(f);
	}
}

static void
broker_start(void)
{
	char *argv[] = {(char *)MOSQUITTO_BIN, (char *)"-c", NULL, NULL};
	char conf[PATH_MAX + 64];

	snprintf(conf, sizeof(conf), "%s", path("mosquitto.conf"));
	argv[2] = conf;
	broker.pid = spawn(argv, path("mosquitto.log"));
	broker.state = S_UP;
	broker.sent = 0;
	broker.starts++;
	if (tutil_wait_port(port, broker.pid, 10000) != 0)
		die("mosquitto did not accept on port %d", port);
	note("mosquitto started (pid %d)", (int)broker.pid);
}

static void
coord_start(void)
{
	char *argv[] = {(char *)MQLOCKD_BIN, (char *)"--broker", uri,
	    (char *)"--db", NULL, (char *)"--prefix", (char *)PREFIX,
	    (char *)"--grace", NULL, (char *)"--keepalive", NULL,
	    (char *)"--idle-timeout", NULL, (char *)"--idle-warning",
	    (char *)"10", NULL};
	char db[PATH_MAX + 64], grace[16], ka[16], idle[16], line[128];

	snprintf(db, sizeof(db), "%s", path("mqlock.db"));
	snprintf(grace, sizeof(grace), "%d", GRACE_S);
	snprintf(ka, sizeof(ka), "%d", COORD_KEEPALIVE_S);
	snprintf(idle, sizeof(idle), "%d", IDLE_S);
	argv[4] = db;
	argv[8] = grace;
	argv[10] = ka;
	argv[12] = idle;
	snprintf(line, sizeof(line), "==== chaos: mqlockd start %d ====\n",
	    coord.starts + 1);
	append_line(path("mqlockd.log"), line);
	coord.pid = spawn(argv, path("mqlockd.log"));
	coord.state = S_UP;
	coord.sent = 0;
	coord.starts++;
	note("mqlockd started (pid %d)", (int)coord.pid);
}

/* Sends sig; f is the fault it counts as, NFAULTS for none. */
static void
server_signal(struct server *s, int sig, enum fault f)
{
	if (s->state != S_UP)
		return;
	kill(s->pid, sig);
	s->sent = sig;
	s->state = S_STOPPING;
	if (f < NFAULTS) {
		faults[f]++;
		note("%s", fault_name[f]);
	} else
		note("%s: signal %d (end of the run)", s->name, sig);
}

/*
 * A server exited; was it our doing?  (A SIGTERM that lands before
 * mqlockd has set up its signal handling kills it: that is fine too.)
 */
static void
server_exited(struct server *s, int status, long long restart_at)
{
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	int expected = (s->sent == SIGKILL && sig == SIGKILL) ||
	    (s->sent == SIGTERM &&
		(sig == SIGTERM ||
		    (WIFEXITED(status) && WEXITSTATUS(status) == 0)));

	if (!expected) {
		/* The first one says most; count the rest. */
		if (s->crashes++ == 0)
			snprintf(s->crash, sizeof(s->crash),
			    "%s exited by itself: %s %d (see its log)", s->name,
			    sig ? "signal" : "status",
			    sig ? sig : WEXITSTATUS(status));
		note("%s exited by itself: %s %d", s->name,
		    sig ? "signal" : "status", sig ? sig : WEXITSTATUS(status));
	}
	s->state = S_DOWN;
	s->pid = 0;
	s->restart_at = restart_at;
}

static void
client_spawn(int slot, long long now)
{
	char *argv[24], wait[16], dur[16], nw[16], lock[16], ka[16];
	struct client *c;
	int n = 0;

	if (nclients == capclients) {
		capclients = capclients ? capclients * 2 : 1024;
		clients = realloc(clients, (size_t)capclients * sizeof(*c));
		if (clients == NULL)
			die("out of memory");
	}
	if (slots[slot].iter >= MAX_ITERS)
		return;
	c = &clients[nclients];
	memset(c, 0, sizeof(*c));
	c->slot = slot;
	by_iter[slot][slots[slot].iter] = nclients;
	c->lock = (int)rnd_in(0, LOCKS - 1);
	snprintf(c->id, sizeof(c->id), "w%d-%d", slot, slots[slot].iter++);
	snprintf(lock, sizeof(lock), "L%d", c->lock);
	snprintf(wait, sizeof(wait), "%lld", rnd_in(1, MAX_WAIT_S));
	/*
	 * Mostly short commands; one in four holds its lock for seconds and
	 * writes more, so that a holder killed or frozen meanwhile leaves a
	 * command writing after the lock moved on: fencing's work.
	 */
	if (rnd() % 4 == 0) {
		c->long_cmd = 1;
		snprintf(dur, sizeof(dur), "%lld", rnd_in(2000, CMD_LONG_MS));
		snprintf(nw, sizeof(nw), "%lld", rnd_in(4, 10));
	} else {
		snprintf(dur, sizeof(dur), "%lld", rnd_in(50, CMD_MAX_MS));
		snprintf(nw, sizeof(nw), "%lld", rnd_in(1, 3));
	}
	snprintf(ka, sizeof(ka), "%d", CLIENT_KEEPALIVE_S);
	argv[n++] = (char *)MQLOCK_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = uri;
	argv[n++] = (char *)"--prefix";
	argv[n++] = (char *)PREFIX;
	argv[n++] = (char *)"--keepalive";
	argv[n++] = ka;
	argv[n++] = (char *)"--client-id";
	argv[n++] = c->id;
	argv[n++] = (char *)"acquire";
	argv[n++] = lock;
	argv[n++] = (char *)"--wait";
	argv[n++] = wait;
	argv[n++] = (char *)"--user";
	argv[n++] = c->id;
	argv[n++] = (char *)"--";
	argv[n++] = (char *)CHAOS_CMD_BIN;
	argv[n++] = dir;
	argv[n++] = dur;
	argv[n++] = nw;
	argv[n] = NULL;
	{
		char out[64], line[128];

		snprintf(out, sizeof(out), "slot-%02d.out", slot);
		snprintf(line, sizeof(line), "---- %lld %s %s wait %s\n", now,
		    c->id, lock, wait);
		append_line(path(out), line);
		c->pid = spawn(argv, path(out));
	}
	c->running = 1;
	c->start = now;
	slots[slot].cur = nclients++;
}

static struct client *
client_by_pid(pid_t pid)
{
	for (int i = 0; i < WORKERS; i++)
		if (slots[i].cur >= 0 && clients[slots[i].cur].pid == pid)
			return &clients[slots[i].cur];
	return NULL;
}

static struct client *
client_by_id(const char *id)
{
	int slot, iter;
	char *end;

	/* w<slot>-<iter>: find it without a search. */
	if (id == NULL || id[0] != 'w')
		return NULL;
	slot = (int)strtol(id + 1, &end, 10);
	if (*end != '-' || slot < 0 || slot >= WORKERS)
		return NULL;
	iter = (int)strtol(end + 1, &end, 10);
	if (*end != '\0' || iter < 0 || iter >= slots[slot].iter)
		return NULL;
	return &clients[by_iter[slot][iter]];
}

/* Reaps every child that ended. */
static void
reap(long long now, int restart)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		struct client *c;

		if (pid == broker.pid) {
			if (broker.sent == SIGKILL) {
				/* Its state is lost with it. */
				unlink(path("mosquitto.db"));
			}
			server_exited(&broker, st,
			    restart ? now + rnd_in(100, 1500) : now);
		} else if (pid == coord.pid) {
			server_exited(&coord, st,
			    restart ? now + rnd_in(100, 3000) : now);
		} else if ((c = client_by_pid(pid)) != NULL) {
			c->running = 0;
			c->status = st;
			c->end = now;
			slots[c->slot].cur = -1;
			slots[c->slot].next_at = now + rnd_in(0, 500);
		}
	}
}

static long long log_time(const char *line);

/* ---- load and lateness ---- */

static pid_t hogs[16];
static int nhogs;
static volatile int probing = 1;
static pthread_mutex_t late_mu = PTHREAD_MUTEX_INITIALIZER;
static long long late_from;  /* count lateness from then on (wall ms) */
static long long late_worst; /* worst lateness of a sleep since late_from */

/* Sleeps of PROBE_MS again and again: how late does the machine wake us? */
static void *
probe_main(void *arg)
{
	(void)arg;
	while (probing) {
		long long before = tutil_mono_ms(), late;

		tutil_nap_ms(PROBE_MS);
		late = tutil_mono_ms() - before - PROBE_MS;
		pthread_mutex_lock(&late_mu);
		if (late_from > 0 && tutil_wall_ms() >= late_from &&
		    late > late_worst)
			late_worst = late;
		pthread_mutex_unlock(&late_mu);
	}
	return NULL;
}

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
			die("fork: %s", strerror(errno));
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

/* The stalls mqlockd reported (ms in all) in its log at or after from. */
static long long
coord_stalls_since(long long from)
{
	char *log = tutil_slurp(path("mqlockd.log"), NULL), *p;
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
kill_everything(void)
{
	int st;

	for (int i = 0; i < nclients; i++)
		if (clients[i].running) {
			kill(clients[i].pid, SIGKILL);
			waitpid(clients[i].pid, &st, 0);
			clients[i].running = 0;
		}
	if (coord.pid > 0) {
		kill(coord.pid, SIGKILL);
		waitpid(coord.pid, &st, 0);
		coord.pid = 0;
	}
	hogs_stop();
	if (broker.pid > 0) {
		kill(broker.pid, SIGKILL);
		waitpid(broker.pid, &st, 0);
		broker.pid = 0;
	}
}

/* Recorder -------------------------------------------------------------- */

#define FREE_JSON "{\"owner\":null,\"token\":null,\"waiting\":0,\"queue\":[]}"

/* Keep one received (or implied) message; takes json. */
static void
rec_append(long long at, int retained, const char *topic, size_t tl,
    cJSON *json, const char *payload, int payloadlen)
{
	struct msg r = {.at = at, .retained = retained, .json = json};

	r.topic = malloc(tl + 1);
	if (r.topic != NULL) {
		memcpy(r.topic, topic, tl);
		r.topic[tl] = '\0';
	}
	pthread_mutex_lock(&rec_mu);
	if (nrecs == caprecs) {
		size_t cap = caprecs ? caprecs * 2 : 8192;
		struct msg *v = realloc(recs, cap * sizeof(*v));

		if (v != NULL) {
			recs = v;
			caprecs = cap;
		}
	}
	if (r.topic != NULL && nrecs < caprecs)
		recs[nrecs++] = r;
	else {
		free(r.topic);
		cJSON_Delete(r.json);
	}
	fprintf(reclog, "%lld %s%.*s %.*s\n", at, retained ? "(r) " : "",
	    (int)tl, topic, payloadlen, payload);
	pthread_mutex_unlock(&rec_mu);
}

static int
rec_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	cJSON *json;

	(void)ctx;
	/*
	 * An empty owner message: the lock is free and nobody waits (mqlockd
	 * deletes the retained copy).  Recorded as the free state it means.
	 */
	if (m->payloadlen == 0)
		json = cJSON_Parse(FREE_JSON);
	else
		json = cJSON_ParseWithLength(m->payload, (size_t)m->payloadlen);
	rec_append(tutil_wall_ms(), m->retained, topic, tl, json, m->payload,
	    m->payloadlen);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void
rec_subscribed_cb(void *ctx, MQTTAsync_successData5 *d)
{
	(void)ctx;
	(void)d;
	pthread_mutex_lock(&rec_mu);
	rec_subscribed++;
	pthread_mutex_unlock(&rec_mu);
}

static void
rec_connected(void *ctx, char *cause)
{
	static char *const filters[] = {(char *)PREFIX "/+/owner",
	    (char *)PREFIX "/_coordinator/status",
	    (char *)PREFIX "/_clients/+/events"};
	static int qos[] = {1, 1, 1};
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

	(void)ctx;
	(void)cause;
	/*
	 * A free lock has no retained owner message, so a lock freed while
	 * the recorder was cut off sends nothing when it subscribes again.
	 * Every lock is taken as free from here (a retained copy, like the
	 * ones the subscription brings); the retained messages that follow
	 * correct the held ones.  The broker sends nothing before the
	 * subscription, so none can be overtaken.
	 */
	for (int l = 0; l < LOCKS; l++) {
		char t[64];
		int n = snprintf(t, sizeof(t), PREFIX "/L%d/owner", l);

		rec_append(tutil_wall_ms(), 1, t, (size_t)n,
		    cJSON_Parse(FREE_JSON), "(subscribing)", 13);
	}
	ro.onSuccess5 = rec_subscribed_cb;
	(void)MQTTAsync_subscribeMany(rec_mq, 3, filters, qos, &ro);
}

static void
rec_lost(void *ctx, char *cause)
{
	(void)ctx;
	(void)cause;
}

static void
rec_start(void)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer5;
	long long end = tutil_mono_ms() + 10000;
	int ok = 0;

	reclog = fopen(path("recorder.log"), "a");
	if (reclog == NULL)
		die("open recorder.log: %s", strerror(errno));
	co.MQTTVersion = MQTTVERSION_5;
	co.maxBufferedMessages = 100000;
	if (MQTTAsync_createWithOptions(&rec_mq, uri, "chaos-recorder",
		MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) != MQTTASYNC_SUCCESS ||
	    MQTTAsync_setCallbacks(rec_mq, NULL, rec_lost, rec_message, NULL) !=
		MQTTASYNC_SUCCESS ||
	    MQTTAsync_setConnected(rec_mq, NULL, rec_connected) !=
		MQTTASYNC_SUCCESS)
		die("recorder: cannot create the client");
	cn.keepAliveInterval = 10;
	cn.cleanstart = 1;
	cn.connectTimeout = 3;
	cn.automaticReconnect = 1;
	cn.minRetryInterval = 1;
	cn.maxRetryInterval = 1;
	if (MQTTAsync_connect(rec_mq, &cn) != MQTTASYNC_SUCCESS)
		die("recorder: cannot connect");
	while (!ok && tutil_mono_ms() < end) {
		pthread_mutex_lock(&rec_mu);
		ok = rec_subscribed > 0;
		pthread_mutex_unlock(&rec_mu);
		tutil_nap_ms(10);
	}
	if (!ok)
		die("recorder: not subscribed within 10 s");
}

static int rec_disconnected;

static void
rec_disconnect_done(void *ctx, MQTTAsync_successData5 *d)
{
	(void)ctx;
	(void)d;
	pthread_mutex_lock(&rec_mu);
	rec_disconnected = 1;
	pthread_mutex_unlock(&rec_mu);
}

static void
rec_disconnect_failed(void *ctx, MQTTAsync_failureData5 *d)
{
	rec_disconnect_done(ctx, NULL);
	(void)d;
}

static void
rec_stop(void)
{
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;
	long long end = tutil_mono_ms() + 5000;
	int done = 0;

	d.timeout = 1000;
	d.onSuccess5 = rec_disconnect_done;
	d.onFailure5 = rec_disconnect_failed;
	if (MQTTAsync_disconnect(rec_mq, &d) != MQTTASYNC_SUCCESS)
		done = 1; /* not connected: nothing to wait for */
	while (!done && tutil_mono_ms() < end) {
		pthread_mutex_lock(&rec_mu);
		done = rec_disconnected;
		pthread_mutex_unlock(&rec_mu);
		tutil_nap_ms(10);
	}
	MQTTAsync_destroy(&rec_mq);
	fclose(reclog);
}

static size_t
rec_count(void)
{
	size_t n;

	pthread_mutex_lock(&rec_mu);
	n = nrecs;
	pthread_mutex_unlock(&rec_mu);
	return n;
}

/* recs[i] once i < rec_count(); the array may move: copy under the lock. */
static struct msg
rec_get(size_t i)
{
	struct msg m;

	pthread_mutex_lock(&rec_mu);
	m = recs[i];
	pthread_mutex_unlock(&rec_mu);
	return m;
}

static const char *
jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long long
jint(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

/* Lock index of an owner topic P/L<n>/owner, or -1. */
static int
owner_lock(const char *topic)
{
	int l;
	char tail[16];

	if (sscanf(topic, PREFIX "/L%d/%15s", &l, tail) != 2 ||
	    strcmp(tail, "owner") != 0 || l < 0 || l >= LOCKS)
		return -1;
	return l;
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
	struct client *c = client_by_id(id);

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
		return live_at(jstr(owner, "client"), t);
	cJSON_ArrayForEach(w, queue)
	{
		if (live_at(jstr(w, "client"), t))
			return 0;
	}
	return 1;
}

/* The latest owner message of each lock recorded so far (NULL: none). */
static void
latest_owners(const cJSON *latest[LOCKS])
{
	static const cJSON *cur[LOCKS];
	static size_t seen;
	size_t n = rec_count();

	for (; seen < n; seen++) {
		struct msg m = rec_get(seen);
		int l = owner_lock(m.topic);

		if (l >= 0 && m.json != NULL)
			cur[l] = m.json;
	}
	for (int l = 0; l < LOCKS; l++)
		latest[l] = cur[l];
}

/* Checks ------------------------------------------------------------------ */

/* token -> lock and client, from every source. */
struct grant {
	int lock; /* -1: unknown token */
	char client[32];
	int sources;
	long long logged; /* first "grant" log line (ms), 0: none */
};

static struct grant *grants;
static long long ngrants_cap;

static void
grant_see(long long token, int lock, const char *client, int source,
    const char *where)
{
	struct grant *g;

	if (token <= 0 || token > 100000000) {
		problem(C_ONE_GRANT, "%s: token %lld out of range", where,
		    token);
		return;
	}
	if (token >= ngrants_cap) {
		long long cap = ngrants_cap ? ngrants_cap : 4096;

		while (cap <= token)
			cap *= 2;
		grants = realloc(grants, (size_t)cap * sizeof(*grants));
		if (grants == NULL)
			die("out of memory");
		for (long long i = ngrants_cap; i < cap; i++)
			grants[i].lock = -1;
		ngrants_cap = cap;
	}
	g = &grants[token];
	if (g->lock < 0) {
		g->lock = lock;
		snprintf(g->client, sizeof(g->client), "%s",
		    client != NULL ? client : "?");
		g->sources = source;
		return;
	}
	if (g->lock != lock || client == NULL || strcmp(g->client, client) != 0)
		problem(C_ONE_GRANT, "token %lld is L%d/%s, but %s says L%d/%s",
		    token, g->lock, g->client, where, lock,
		    client != NULL ? client : "?");
	g->sources |= source;
}

static int
grant_known(long long token, int lock, const char *client)
{
	return token > 0 && token < ngrants_cap && grants[token].lock == lock &&
	    strcmp(grants[token].client, client) == 0;
}

enum { SRC_LOG = 1, SRC_OWNER = 2, SRC_EVENT = 4 };

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

/*
 * mqlockd's log: every grant line in order.  New tokens must increase;
 * each restart's counter covers every token granted before it.
 */
static int
check_coord_log(void)
{
	char *log = tutil_slurp(path("mqlockd.log"), NULL), *line, *save = NULL;
	long long top = 0, restored;
	int lines = 0;

	if (log == NULL) {
		problem(C_NO_CRASH, "no mqlockd.log");
		return 0;
	}
	for (line = strtok_r(log, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char lock[64], client[64];
		long long token;
		const char *p;
		int l;

		if (strstr(line, "Sanitizer") != NULL ||
		    strstr(line, "runtime error:") != NULL)
			problem(C_NO_CRASH, "mqlockd.log: %s", line);
		if ((p = strstr(line, "last token ")) != NULL) {
			restored = strtoll(p + 11, NULL, 10);
			if (restored < top)
				problem(C_TOKENS_RISE,
				    "mqlockd restarted with token counter "
				    "%lld after granting %lld",
				    restored, top);
			continue;
		}
		if ((p = strstr(line, " grant lock=")) == NULL ||
		    sscanf(p, " grant lock=%63s client=%63s token=%lld", lock,
			client, &token) != 3)
			continue;
		lines++;
		if (sscanf(lock, "L%d", &l) != 1 || l < 0 || l >= LOCKS) {
			problem(C_ONE_GRANT, "grant of an unknown lock: %s",
			    line);
			continue;
		}
		if (token > top)
			top = token;
		else if (!grant_known(token, l, client))
			problem(C_TOKENS_RISE,
			    "token %lld granted after %lld, and not as a "
			    "repeat: %s",
			    token, top, line);
		grant_see(token, l, client, SRC_LOG, "mqlockd.log");
		if (token < ngrants_cap && grants[token].logged == 0)
			grants[token].logged = log_time(line);
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
	size_t n = rec_count();

	for (size_t i = 0; i < n; i++) {
		struct msg m = rec_get(i);
		long long since;

		if (m.json == NULL ||
		    strcmp(m.topic, PREFIX "/_coordinator/status") != 0 ||
		    jstr(m.json, "state") == NULL ||
		    strcmp(jstr(m.json, "state"), "online") != 0)
			continue;
		since = jint(m.json, "since");
		if (since <= 0)
			since = m.at;
		if (t >= since - 1000 &&
		    t < since + (GRACE_S + COORD_KEEPALIVE_S) * 1000)
			return 1;
	}
	return 0;
}

/* Owner messages and events, in arrival order. */
static void
check_recorded(int *owner_msgs, int *events)
{
	long long last[LOCKS] = {0};
	size_t n = rec_count();

	for (size_t i = 0; i < n; i++) {
		struct msg m = rec_get(i);
		int l = owner_lock(m.topic);

		if (m.json == NULL)
			continue;
		if (l >= 0) {
			const cJSON *owner =
			    cJSON_GetObjectItemCaseSensitive(m.json, "owner");
			const cJSON *w;
			long long t = jint(m.json, "token");

			(*owner_msgs)++;
			if (cJSON_IsObject(owner)) {
				grant_see(t, l, jstr(owner, "client"),
				    SRC_OWNER, "an owner message");
				if (t < last[l])
					problem(C_OWNER_ORDER,
					    "L%d: owner message at %lld "
					    "shows token %lld after %lld",
					    l, m.at, t, last[l]);
				else
					last[l] = t;
				continue;
			}
			cJSON_ArrayForEach(w,
			    cJSON_GetObjectItemCaseSensitive(m.json, "queue"))
			{
				/*
				 * Within a roll call, grants skip waiters
				 * that have not answered yet while their
				 * owner entries still show them connected
				 * (topics.md, "Epochs and the roll call").
				 * A retained copy, delivered when the
				 * recorder (re)subscribes, shows a state from
				 * an earlier moment than its arrival.
				 */
				if (m.retained || in_roll_call(m.at))
					continue;
				if (cJSON_IsTrue(
					cJSON_GetObjectItemCaseSensitive(w,
					    "connected")))
					problem(C_NOBODY_WAITS,
					    "L%d is free at %lld with %s "
					    "waiting, connected",
					    l, m.at, jstr(w, "client"));
			}
			continue;
		}
		if (strncmp(m.topic, PREFIX "/_clients/", 15) == 0) {
			const char *ev = jstr(m.json, "event");
			const char *lock = jstr(m.json, "lock");
			char client[64];
			int ll;

			(*events)++;
			if (ev == NULL || strcmp(ev, "granted") != 0 ||
			    lock == NULL || sscanf(lock, "L%d", &ll) != 1 ||
			    sscanf(m.topic, PREFIX "/_clients/%63[^/]",
				client) != 1)
				continue;
			grant_see(jint(m.json, "token"), ll, client, SRC_EVENT,
			    "a granted event");
		}
	}
}

/* The commands' own logs: their tokens, and the fenced resources. */
static void
check_commands(int *runs, int *accepted, int *rejected, int *unverified)
{
	char *log = tutil_slurp(path("runs.log"), NULL), *line, *save = NULL;

	for (line = log != NULL ? strtok_r(log, "\n", &save) : NULL;
	     line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char lock[64], client[64];
		long long at, token;
		int l;

		if (sscanf(line, "end %lld %63s %lld %63s", &at, lock, &token,
			client) == 4) {
			struct client *c = client_by_id(client);

			if (c != NULL) {
				c->cmd_token = token;
				c->cmd_end = at;
			}
			continue;
		}
		if (sscanf(line, "start %lld %63s %lld %63s", &at, lock, &token,
			client) != 4)
			continue;
		(*runs)++;
		if (sscanf(lock, "L%d", &l) != 1 ||
		    !grant_known(token, l, client))
			problem(C_FENCING,
			    "a command ran with token %lld for %s/%s, "
			    "which nobody granted",
			    token, lock, client);
	}
	free(log);

	for (int l = 0; l < LOCKS; l++) {
		char name[32];
		long long top = 0;

		snprintf(name, sizeof(name), "res-L%d.log", l);
		log = tutil_slurp(path(name), NULL);
		save = NULL;
		for (line = log != NULL ? strtok_r(log, "\n", &save) : NULL;
		     line != NULL; line = strtok_r(NULL, "\n", &save)) {
			char client[64];
			long long at, token;

			if (sscanf(line, "%lld %lld %63s", &at, &token,
				client) != 3)
				continue;
			(*accepted)++;
			if (token < top)
				problem(C_FENCING,
				    "L%d: written with token %lld after "
				    "%lld",
				    l, token, top);
			top = token;
			if (!grant_known(token, l, client)) {
				problem(C_FENCING,
				    "L%d: written with token %lld by %s, "
				    "which nobody granted",
				    l, token, client);
				(*unverified)++;
			}
		}
		free(log);
	}
	log = tutil_slurp(path("rejects.log"), NULL);
	save = NULL;
	for (line = log != NULL ? strtok_r(log, "\n", &save) : NULL;
	     line != NULL; line = strtok_r(NULL, "\n", &save))
		(*rejected)++;
	free(log);
}

/*
 * An mqlock that exits 0 says its command ran under the lock.  If the next
 * token of that lock was granted (as mqlockd logged) before the command
 * ended, the lock had moved on meanwhile and it should have exited 70.
 */
static void
check_cli_exits(void)
{
	for (int i = 0; i < nclients; i++) {
		struct client *c = &clients[i];
		long long t;

		if (c->killed || !WIFEXITED(c->status) ||
		    WEXITSTATUS(c->status) != 0 || c->cmd_token <= 0 ||
		    c->cmd_end == 0)
			continue;
		for (t = c->cmd_token + 1; t < ngrants_cap; t++)
			if (grants[t].lock == c->lock)
				break;
		if (t < ngrants_cap && grants[t].logged != 0 &&
		    grants[t].logged < c->cmd_end)
			problem(C_CLI_EXIT,
			    "mqlock %s exited 0, but L%d went to %s (token %lld) "
			    "at %lld, before its command (token %lld) ended at "
			    "%lld",
			    c->id, c->lock, grants[t].client, t,
			    grants[t].logged, c->cmd_token, c->cmd_end);
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
	size_t i = 0, n = rec_count();

	for (long long t = from; t <= to; t += 100) {
		for (; i < n; i++) {
			struct msg m = rec_get(i);
			int l;

			if (m.at > t)
				break;
			if ((l = owner_lock(m.topic)) >= 0 && m.json != NULL)
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

/* Main ----------------------------------------------------------------------
 */

static void
write_broker_conf(void)
{
	FILE *f = fopen(path("mosquitto.conf"), "w");

	if (f == NULL)
		die("write mosquitto.conf: %s", strerror(errno));
	fprintf(f,
	    "listener %d 127.0.0.1\n"
	    "allow_anonymous true\n"
	    "set_tcp_nodelay true\n"
	    "max_queued_messages 0\n"
	    "max_inflight_messages 100\n"
	    "persistence true\n"
	    "persistence_location %s/\n"
	    "persistence_file mosquitto.db\n"
	    "log_dest stdout\n"
	    "log_type error\n"
	    "log_type warning\n"
	    "log_type notice\n"
	    "log_type information\n"
	    "log_timestamp_format %%H:%%M:%%S\n"
	    "%s",
	    port, dir, geteuid() == 0 ? "user root\n" : "");
	fclose(f);
}

static int
rm_tree(const char *d)
{
	char cmd[PATH_MAX + 32];

	/* Only ever our own mkdtemp() directory. */
	if (strncmp(d, "/tmp/mqlock-chaos-", 18) != 0 &&
	    strstr(d, "/mqlock-chaos-") == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	return system(cmd);
}

/* One fault, chosen by the plan; returns 0 if it could not happen now. */
static int
inject(enum fault f, long long now)
{
	int cand[WORKERS], n = 0, i, l;
	struct client *c;

	switch (f) {
	case F_CLIENT_KILL:
	case F_CLIENT_STOP:
		for (i = 0; i < WORKERS; i++)
			if (slots[i].cur >= 0 &&
			    clients[slots[i].cur].frozen_at == 0)
				cand[n++] = i;
		if (n == 0)
			return 0;
		c = &clients[slots[cand[rnd() % (uint64_t)n]].cur];
		/*
		 * Most running clients wait; aim at a holder two times in
		 * three, one with a long command if there is one, or the
		 * interesting case (a command still writing after its lock
		 * moved on) hardly happens.
		 */
		if (rnd() % 3 != 0) {
			const cJSON *latest[LOCKS], *o;
			struct client *h, *pick = NULL;
			int first = (int)(rnd() % LOCKS);

			latest_owners(latest);
			for (i = 0; i < LOCKS; i++) {
				l = (first + i) % LOCKS;
				o = latest[l] == NULL
				    ? NULL
				    : cJSON_GetObjectItemCaseSensitive(
					  latest[l], "owner");
				h = cJSON_IsObject(o)
				    ? client_by_id(jstr(o, "client"))
				    : NULL;
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
		if (f == F_CLIENT_KILL) {
			kill(c->pid, SIGKILL);
			c->killed = 1;
		} else {
			kill(c->pid, SIGSTOP);
			c->frozen_at = now;
			/* Continued or killed 2-15 s later: thaw(). */
			c->thaw_due = now + rnd_in(2000, 15000);
		}
		faults[f]++;
		note("%s %s", fault_name[f], c->id);
		return 1;
	case F_COORD_KILL:
		if (coord.state != S_UP)
			return 0;
		server_signal(&coord, SIGKILL, f);
		return 1;
	case F_COORD_TERM:
		if (coord.state != S_UP)
			return 0;
		server_signal(&coord, SIGTERM, f);
		return 1;
	case F_BROKER_TERM:
		if (broker.state != S_UP)
			return 0;
		server_signal(&broker, SIGTERM, f);
		return 1;
	case F_BROKER_KILL:
		if (broker.state != S_UP)
			return 0;
		server_signal(&broker, SIGKILL, f);
		return 1;
	default:
		return 0;
	}
}

/* Frozen clients whose time came: continue (70%) or kill them. */
static void
thaw(long long now, int all)
{
	for (int i = 0; i < WORKERS; i++) {
		struct client *c;

		if (slots[i].cur < 0)
			continue;
		c = &clients[slots[i].cur];
		if (c->frozen_at == 0 || c->thawed_at != 0 ||
		    (!all && now < c->thaw_due))
			continue;
		c->thawed_at = now;
		if (rnd() % 10 < 7) {
			kill(c->pid, SIGCONT);
			faults[F_CLIENT_CONT]++;
			note("%s %s", fault_name[F_CLIENT_CONT], c->id);
		} else {
			kill(c->pid, SIGKILL);
			kill(c->pid, SIGCONT);
			c->killed = 1;
			faults[F_CLIENT_KILL]++;
			note("%s %s (frozen)", fault_name[F_CLIENT_KILL],
			    c->id);
		}
	}
}

int
main(void)
{
	static enum fault plan[256];
	const char *tmp = getenv("TMPDIR"), *env;
	long long t0, now, fault_end, next_fault, t_end = 0, recovered = -1;
	long long fault_ms = FAULT_MS_DEFAULT, last_bad = -1, worst;
	long long bound, stalls;
	pthread_t probe;
	int load = 0;
	int nplan = 0, next = 0, drained = 0, i, l, episodes = 0;
	int final_done = 0;
	int grants_log, owner_msgs = 0, events = 0, runs = 0, accepted = 0;
	int rejected = 0, unverified = 0, checked = 0, exits[5] = {0};
	int failed = 0;

	signal(SIGPIPE, SIG_IGN);
	/* Commands orphaned by a killed mqlock become ours to wait for. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	snprintf(dir, sizeof(dir), "%s/mqlock-chaos-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp: %s", strerror(errno));
	chmod(dir, 0755);
	faultlog = fopen(path("faults.log"), "a");
	if (faultlog == NULL)
		die("open faults.log: %s", strerror(errno));
	env = getenv("CHAOS_SEED");
	rng = env != NULL
	    ? strtoull(env, NULL, 0)
	    : (uint64_t)tutil_wall_ms() ^ ((uint64_t)getpid() << 20);
	if (rng == 0)
		rng = 1;
	env = getenv("CHAOS_FAULT_S");
	if (env != NULL && atoi(env) > 0 && atoi(env) <= 120)
		fault_ms = (long long)atoi(env) * 1000;
	env = getenv("CHAOS_LOAD");
	if (env != NULL && atoi(env) > 0)
		load = atoi(env) > 16 ? 16 : atoi(env);
	printf("chaos: seed %llu, directory %s, %d clients, %d locks, "
	       "%lld s of faults, %d busy loops beside\n",
	    (unsigned long long)rng, dir, WORKERS, LOCKS, fault_ms / 1000,
	    load);
	hogs_start(load);
	if (pthread_create(&probe, NULL, probe_main, NULL) != 0)
		die("pthread_create failed");
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
		plan[nplan++] = rnd() % 2 ? F_CLIENT_KILL : F_CLIENT_STOP;
	for (i = nplan - 1; i > 0; i--) {
		int j = (int)(rnd() % (uint64_t)(i + 1));
		enum fault x = plan[i];

		plan[i] = plan[j];
		plan[j] = x;
	}

	port = tutil_free_port();
	if (port == -1)
		die("no free port: %s", strerror(errno));
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
	write_broker_conf();
	broker_start();
	rec_start();
	coord_start();
	t0 = tutil_wall_ms();
	for (;;) {
		size_t n = rec_count();
		int online = 0;

		for (size_t k = 0; k < n; k++) {
			struct msg m = rec_get(k);

			if (strcmp(m.topic, PREFIX "/_coordinator/status") ==
				0 &&
			    m.json != NULL && jstr(m.json, "state") != NULL &&
			    strcmp(jstr(m.json, "state"), "online") == 0)
				online = 1;
		}
		if (online)
			break;
		if (tutil_wall_ms() - t0 > 20000)
			die("mqlockd not online within 20 s");
		reap(tutil_wall_ms(), 0);
		tutil_nap_ms(20);
	}

	t0 = tutil_wall_ms();
	for (i = 0; i < WORKERS; i++) {
		slots[i].cur = -1;
		slots[i].next_at = t0 + i * (WARMUP_MS / 2 / WORKERS);
	}
	next_fault = t0 + WARMUP_MS;
	fault_end = t0 + WARMUP_MS + fault_ms;

	for (;;) {
		now = tutil_wall_ms();
		reap(now, t_end == 0);
		if (now - t0 > HARD_LIMIT_MS - 15000)
			die("the run did not end within its time limit");

		/* Servers that are down come back. */
		if (broker.state == S_DOWN && now >= broker.restart_at)
			broker_start();
		if (coord.state == S_DOWN && now >= coord.restart_at)
			coord_start();

		/* The workload: until the faults stop. */
		for (i = 0; i < WORKERS && now < fault_end; i++)
			if (slots[i].cur < 0 && now >= slots[i].next_at)
				client_spawn(i, now);

		if (now < fault_end) {
			thaw(now, 0);
			if (now >= next_fault) {
				/*
				 * A server fault that cannot happen now (its
				 * server is down) waits for the next turn.
				 */
				if (next < nplan && inject(plan[next], now))
					next++;
				else
					inject(rnd() % 2 ? F_CLIENT_KILL
							 : F_CLIENT_STOP,
					    now);
				next_fault = now + rnd_in(1000, 3500);
			}
		} else if (t_end == 0) {
			/*
			 * The last blow, so that the recovery measured below
			 * is a real one: about half the holders die, and the
			 * broker loses its state (a new epoch, a roll call).
			 * Then thaw everyone and wait for the servers.
			 */
			if (!final_done) {
				const cJSON *latest[LOCKS];

				latest_owners(latest);
				for (l = 0; l < LOCKS; l++) {
					const cJSON *o = latest[l] == NULL
					    ? NULL
					    : cJSON_GetObjectItemCaseSensitive(
						  latest[l], "owner");
					struct client *c = cJSON_IsObject(o)
					    ? client_by_id(jstr(o, "client"))
					    : NULL;

					if (c == NULL || !c->running ||
					    rnd() % 2 == 0)
						continue;
					kill(c->pid, SIGKILL);
					kill(c->pid, SIGCONT);
					c->killed = 1;
					if (c->frozen_at != 0 &&
					    c->thawed_at == 0)
						c->thawed_at = now;
					faults[F_CLIENT_KILL]++;
					note("%s %s (holder, at the end)",
					    fault_name[F_CLIENT_KILL], c->id);
				}
				if (broker.state == S_UP)
					server_signal(&broker, SIGKILL,
					    F_BROKER_KILL);
				final_done = 1;
			}
			thaw(now, 1);
			if (broker.state == S_UP && coord.state == S_UP) {
				t_end = now;
				note("faults stopped");
				pthread_mutex_lock(&late_mu);
				late_from = now;
				pthread_mutex_unlock(&late_mu);
			}
		} else {
			const cJSON *latest[LOCKS];
			int ok = 1, alive = 0;

			latest_owners(latest);
			for (l = 0; l < LOCKS; l++)
				if (latest[l] != NULL && !sane(latest[l], now))
					ok = 0;
			if (!ok)
				last_bad = now;
			for (i = 0; i < WORKERS; i++)
				if (slots[i].cur >= 0)
					alive++;
			if (alive == 0) {
				int all_free = 1;

				for (l = 0; l < LOCKS; l++)
					if (latest[l] != NULL &&
					    (cJSON_IsObject(
						 cJSON_GetObjectItemCaseSensitive(
						     latest[l], "owner")) ||
						jint(latest[l], "waiting") > 0))
						all_free = 0;
				if (all_free) {
					recovered = now;
					drained = 1;
					break;
				}
			}
			if (now - t_end > DRAIN_MS)
				break;
		}
		tutil_nap_ms(10);
	}

	/* Stop the servers the normal way: both must exit 0. */
	now = tutil_wall_ms();
	server_signal(&coord, SIGTERM, NFAULTS);
	for (i = 0; i < 500 && coord.state != S_DOWN; i++) {
		reap(tutil_wall_ms(), 0);
		tutil_nap_ms(10);
	}
	rec_stop();
	server_signal(&broker, SIGTERM, NFAULTS);
	for (i = 0; i < 500 && broker.state != S_DOWN; i++) {
		reap(tutil_wall_ms(), 0);
		tutil_nap_ms(10);
	}
	kill_everything();
	/* Orphaned commands finish their last writes (CMD_LONG_MS at most). */
	for (i = 0; i < 700 && waitpid(-1, NULL, WNOHANG) != -1; i++)
		tutil_nap_ms(10);

	/* The verdict. */
	if (coord.crashes > 0)
		problem(C_NO_CRASH, "%s; %d such exits", coord.crash,
		    coord.crashes);
	if (broker.crashes > 0)
		problem(C_NO_CRASH, "%s; %d such exits", broker.crash,
		    broker.crashes);
	if (!drained)
		problem(C_RECOVERY,
		    "not every client ended and every lock came free "
		    "within %d s after the faults stopped",
		    DRAIN_MS / 1000);
	for (i = 0; i < nclients; i++) {
		struct client *c = &clients[i];
		int st = c->status;

		if (c->killed)
			exits[4]++;
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			exits[0]++;
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 70)
			exits[1]++;
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 75)
			exits[2]++;
		else if (WIFEXITED(st) && WEXITSTATUS(st) == 69)
			exits[3]++;
		else
			problem(C_NO_CRASH,
			    "mqlock %s ended with %s %d (see slot-%02d.out)",
			    c->id, WIFSIGNALED(st) ? "signal" : "status",
			    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
			    c->slot);
	}
	check_recorded(&owner_msgs, &events);
	grants_log = check_coord_log();
	check_commands(&runs, &accepted, &rejected, &unverified);
	check_cli_exits();
	for (long long t = 1; t < ngrants_cap; t++)
		if (grants[t].lock >= 0)
			checked++;
	{
		char *out = NULL;

		for (i = 0; i < WORKERS; i++) {
			char name[32];

			snprintf(name, sizeof(name), "slot-%02d.out", i);
			out = tutil_slurp(path(name), NULL);
			if (out != NULL &&
			    (strstr(out, "Sanitizer") != NULL ||
				strstr(out, "runtime error:") != NULL))
				problem(C_NO_CRASH, "%s has a sanitizer report",
				    name);
			free(out);
		}
	}
	worst = worst_episode(t0,
	    t_end > 0 ? (recovered > 0 ? recovered : tutil_wall_ms())
		      : tutil_wall_ms(),
	    &episodes);
	probing = 0;
	pthread_join(probe, NULL);
	stalls = t_end > 0 ? coord_stalls_since(t_end) : 0;
	bound = RECOVERY_BOUND_MS + RECOVERY_STEPS * late_worst + stalls +
	    (stalls > 0 ? GRACE_S * 1000 : 0);
	if (t_end > 0 && last_bad >= 0 && last_bad - t_end > bound)
		problem(C_RECOVERY,
		    "a lock was held by a client that was not live, or "
		    "free with a live client waiting, %lld ms after the "
		    "faults stopped (bound %lld ms)",
		    last_bad - t_end, bound);

	printf("faults injected:");
	for (i = 0; i < NFAULTS; i++)
		printf("%s %s %d", i ? "," : "", fault_name[i], faults[i]);
	printf("\nmqlockd starts %d, mosquitto starts %d\n", coord.starts,
	    broker.starts);
	printf("grants checked: %d distinct tokens (%d grant log lines, %d "
	       "owner messages, %d events recorded)\n",
	    checked, grants_log, owner_msgs, events);
	printf("commands run %d; fenced writes accepted %d, refused %d "
	       "(stale token)\n",
	    runs, accepted, rejected);
	printf("mqlock exits: %d done, %d lock lost (70), %d gave up waiting "
	       "(75), %d broker unreachable (69), %d killed by the test; "
	       "%d runs in all\n",
	    exits[0], exits[1], exits[2], exits[3], exits[4], nclients);
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
	(void)unverified;
	for (i = 0; i < NCHECKS; i++) {
		printf("check: %-50s %s", check_name[i],
		    nproblems[i] ? "FAILED" : "ok");
		if (nproblems[i])
			printf(" (%d)", nproblems[i]);
		printf("\n");
		failed += nproblems[i];
	}
	if (failed > 0) {
		printf("chaos: FAILED; directory kept: %s\n", dir);
		return 1;
	}
	printf("chaos: passed\n");
	if (getenv("CHAOS_KEEP") == NULL)
		rm_tree(dir);
	else
		printf("chaos: directory kept: %s\n", dir);
	return 0;
}
