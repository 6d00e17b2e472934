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

#include "etcdtest.h"
#include "io/etcd.h"
#include "tutil.h"

#define PREFIX "locks"
#define ETCD_PREFIX "chaos/"
#define COORDS 3
#define WORKERS 24
#define LOCKS 4
#define ROUNDS 2
#define LEASE_S 3
#define GRACE_S 2
#define COORD_KEEPALIVE_S 2
#define CLIENT_KEEPALIVE_S 5
#define IDLE_S 30
#define MAX_WAIT_S 8        /* mqlock --wait is 1..this */
#define CMD_MAX_MS 800      /* a short command holds its lock this long */
#define CMD_LONG_MS 4000    /* a long one, at most */
#define BACKOFF_MAX_MS 5000 /* mqlockd's reconnect backoff */
#define WARMUP_MS 4000
#define SETTLE_MS 3000 /* between faults, once served again */
#define SERVE_WAIT_MS 60000
#define DRAIN_MS 60000
#define PROBE_EVERY_MS 250
#define WATCH_EVERY_MS 20
#define LOOKAHEAD_S 2
#define RECOVERY_STEPS 3
#define PROBE_NAP_MS 50
#define MAX_ITERS 2048
#define MAX_FAULTS 32
#define HARD_LIMIT_MS 175000

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

/* A server process: mosquitto or an mqlockd. */
struct server {
	char name[32];
	char id[32]; /* mqlockd: etcd id and username of this start */
	pid_t pid;
	int up;
	int sent; /* the signal we sent, 0: none */
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
	long long start, end;
	long long cmd_token, cmd_end; /* from runs.log; 0: none */
	int frozen;
	long long thaw_at;
	int killed;   /* by our SIGKILL */
	int long_cmd; /* its command writes for seconds */
	pid_t cmd;    /* its command, while frozen */
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

static char dir[PATH_MAX];
static char uri[64];
static int port;
static struct etcdtest *cluster;
static struct server broker;
static struct server coords[COORDS];
static struct client *clients;
static int nclients, capclients;
static struct slot slots[WORKERS];
static int by_iter[WORKERS][MAX_ITERS];
static struct fault_run runs[MAX_FAULTS];
static int nruns;
static int etcd_down[3];
static uint64_t rng;
static FILE *faultlog;
static int spawning = 1;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct msg *recs;
static size_t nrecs, caprecs;
static FILE *reclog;
static MQTTAsync rec_mq;
static MQTTAsync_connectOptions rec_cn = MQTTAsync_connectOptions_initializer5;
static int rec_subscribed;
static int rec_down, rec_connecting;
static struct probe probes[4096];
static int nprobes;
static struct term_seen terms[256];
static int nterms;
static char leader_now[64]; /* holder of the leader key, "" none */
static int watching = 1;
static int probing_late = 1;
static long long late_worst;

/* What the checker proves; each failure is counted against one. */
enum check {
	C_LEADER,      /* only the leader in etcd published or connected */
	C_ONE_GRANT,   /* a token is one lock and one client everywhere */
	C_TOKENS_RISE, /* new tokens increase, across failovers too */
	C_OWNER_ORDER, /* per lock, owner messages never go back */
	C_FENCING,     /* resources written in token order, real tokens */
	C_SERVE,       /* a leader serves within the bound after each fault */
	C_QUORUM,      /* without quorum nothing decided, status says why */
	C_END,         /* every lock free at the end */
	C_NO_CRASH,    /* exits we caused only; no sanitizer reports */
	C_CLI_EXIT,    /* mqlock exits 0 only if its lock stayed its own */
	NCHECKS
};

static const char *const check_name[NCHECKS] = {
    [C_LEADER] = "only the leader in etcd publishes or connects",
    [C_ONE_GRANT] = "one lock and one client per token",
    [C_TOKENS_RISE] = "new tokens strictly increase across failovers",
    [C_OWNER_ORDER] = "owner messages never go back to an older token",
    [C_FENCING] = "fenced writes in token order, with granted tokens",
    [C_SERVE] = "a leader serves within the bound after each fault",
    [C_QUORUM] = "no quorum: nothing decided, status says why",
    [C_END] = "every lock ends free",
    [C_NO_CRASH] = "no crash, no unexpected exit, no sanitizer report",
    [C_CLI_EXIT] = "mqlock exit 0 only if its lock stayed its own",
};

static int nproblems[NCHECKS];

static void problem(enum check, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

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

static void kill_everything(void);

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("chaos_ha: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kill_everything();
	fprintf(stderr, "chaos_ha: directory kept: %s\n", dir);
	exit(1);
}

static long long
rnd_in(long long lo, long long hi)
{
	return lo + (long long)(tutil_rand(&rng) % (uint64_t)(hi - lo + 1));
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

static void
append_line(const char *file, const char *line)
{
	FILE *f = fopen(file, "a");

	if (f != NULL) {
		fputs(line, f);
		fclose(f);
	}
}

/* Servers ---------------------------------------------------------------- */

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
	    "log_dest file %s/mosquitto.log\n"
	    "log_type all\n"
	    "%s",
	    port, dir, dir, geteuid() == 0 ? "user root\n" : "");
	fclose(f);
}

static void
broker_start(void)
{
	char *argv[] = {(char *)MOSQUITTO_BIN, (char *)"-c", NULL, NULL};
	char conf[PATH_MAX + 64];

	snprintf(conf, sizeof(conf), "%s", path("mosquitto.conf"));
	argv[2] = conf;
	broker.pid = spawn(argv, path("mosquitto.out"));
	broker.up = 1;
	broker.sent = 0;
	broker.starts++;
	if (tutil_wait_port(port, broker.pid, 10000) != 0)
		die("mosquitto did not accept on port %d", port);
	note("mosquitto started (pid %d)", (int)broker.pid);
}

static void
coord_start(int i)
{
	struct server *s = &coords[i];
	char *argv[40], lease[8], grace[8], ka[8], idle[8], line[160];
	char out[64];
	int n = 0;

	snprintf(s->id, sizeof(s->id), "h%ds%d", i, s->starts + 1);
	snprintf(lease, sizeof(lease), "%d", LEASE_S);
	snprintf(grace, sizeof(grace), "%d", GRACE_S);
	snprintf(ka, sizeof(ka), "%d", COORD_KEEPALIVE_S);
	snprintf(idle, sizeof(idle), "%d", IDLE_S);
	argv[n++] = (char *)MQLOCKD_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = uri;
	argv[n++] = (char *)"--etcd";
	argv[n++] = (char *)etcdtest_endpoints(cluster);
	argv[n++] = (char *)"--etcd-prefix";
	argv[n++] = (char *)ETCD_PREFIX;
	argv[n++] = (char *)"--etcd-id";
	argv[n++] = s->id;
	argv[n++] = (char *)"--username";
	argv[n++] = s->id;
	argv[n++] = (char *)"--prefix";
	argv[n++] = (char *)PREFIX;
	argv[n++] = (char *)"--lease";
	argv[n++] = lease;
	argv[n++] = (char *)"--grace";
	argv[n++] = grace;
	argv[n++] = (char *)"--keepalive";
	argv[n++] = ka;
	argv[n++] = (char *)"--idle-timeout";
	argv[n++] = idle;
	argv[n++] = (char *)"--idle-warning";
	argv[n++] = (char *)"10";
	argv[n] = NULL;
	snprintf(out, sizeof(out), "mqlockd-%d.log", i);
	snprintf(line, sizeof(line), "==== chaos_ha: start %s ====\n", s->id);
	append_line(path(out), line);
	s->pid = spawn(argv, path(out));
	s->up = 1;
	s->sent = 0;
	s->starts++;
	note("mqlockd %s started (pid %d)", s->id, (int)s->pid);
}

static void
server_signal(struct server *s, int sig)
{
	if (!s->up || s->pid <= 0)
		return;
	kill(s->pid, sig);
	if (sig == SIGKILL || sig == SIGTERM)
		s->sent = sig;
	note("%s (%s): signal %d", s->name, s->id, sig);
}

static void
server_exited(struct server *s, int status)
{
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	int expected = (s->sent == SIGKILL && sig == SIGKILL) ||
	    (s->sent == SIGTERM &&
		(sig == SIGTERM ||
		    (WIFEXITED(status) && WEXITSTATUS(status) == 0)));

	if (!expected) {
		if (s->crashes++ == 0)
			snprintf(s->crash, sizeof(s->crash),
			    "%s %s exited by itself: %s %d", s->name, s->id,
			    sig ? "signal" : "status",
			    sig ? sig : WEXITSTATUS(status));
		note("%s %s exited by itself: %s %d", s->name, s->id,
		    sig ? "signal" : "status", sig ? sig : WEXITSTATUS(status));
	}
	s->up = 0;
	s->pid = 0;
}

/* Clients ---------------------------------------------------------------- */

static void
client_spawn(int slot, long long now)
{
	char *argv[24], wait[16], dur[16], nw[16], lock[16], ka[16];
	char out[64], line[160];
	struct client *c;
	int n = 0;

	if (slots[slot].iter >= MAX_ITERS)
		return;
	if (nclients == capclients) {
		capclients = capclients ? capclients * 2 : 1024;
		clients = realloc(clients, (size_t)capclients * sizeof(*c));
		if (clients == NULL)
			die("out of memory");
	}
	c = &clients[nclients];
	memset(c, 0, sizeof(*c));
	c->slot = slot;
	by_iter[slot][slots[slot].iter] = nclients;
	c->lock = (int)rnd_in(0, LOCKS - 1);
	snprintf(c->id, sizeof(c->id), "w%d-%d", slot, slots[slot].iter++);
	snprintf(lock, sizeof(lock), "L%d", c->lock);
	snprintf(wait, sizeof(wait), "%lld", rnd_in(1, MAX_WAIT_S));
	if (rnd_in(0, 3) == 0) {
		c->long_cmd = 1;
		snprintf(dur, sizeof(dur), "%lld", rnd_in(1500, CMD_LONG_MS));
		snprintf(nw, sizeof(nw), "%lld", rnd_in(3, 8));
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
	snprintf(out, sizeof(out), "slot-%02d.out", slot);
	snprintf(line, sizeof(line), "---- %lld %s %s wait %s\n", now, c->id,
	    lock, wait);
	append_line(path(out), line);
	c->pid = spawn(argv, path(out));
	c->running = 1;
	c->start = now;
	slots[slot].cur = nclients++;
}

static struct client *
client_by_id(const char *id)
{
	int slot, iter;
	char *end;

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

static void
reap(long long now)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		int i;

		if (pid == broker.pid) {
			if (broker.sent == SIGKILL)
				unlink(path("mosquitto.db")); /* lost with it */
			server_exited(&broker, st);
			continue;
		}
		for (i = 0; i < COORDS; i++)
			if (pid == coords[i].pid)
				break;
		if (i < COORDS) {
			server_exited(&coords[i], st);
			continue;
		}
		for (i = 0; i < WORKERS; i++) {
			struct client *c;

			if (slots[i].cur < 0 ||
			    clients[slots[i].cur].pid != pid)
				continue;
			c = &clients[slots[i].cur];
			c->running = 0;
			c->status = st;
			c->end = now;
			slots[i].cur = -1;
			slots[i].next_at = now + rnd_in(0, 400);
			break;
		}
		/* Else an orphaned command, or an etcd member etcdtest
		 * waits for itself. */
	}
}

/* Lateness --------------------------------------------------------------- */

/* Sleeps of PROBE_NAP_MS again and again: how late does the machine wake
 * us? */
static void *
late_main(void *arg)
{
	(void)arg;
	while (probing_late) {
		long long before = tutil_mono_ms(), late;

		tutil_nap_ms(PROBE_NAP_MS);
		late = tutil_mono_ms() - before - PROBE_NAP_MS;
		pthread_mutex_lock(&mu);
		if (late > late_worst)
			late_worst = late;
		pthread_mutex_unlock(&mu);
	}
	return NULL;
}

/* Recorder --------------------------------------------------------------- */

#define FREE_JSON "{\"owner\":null,\"token\":null,\"waiting\":0,\"queue\":[]}"

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
	pthread_mutex_lock(&mu);
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
	pthread_mutex_unlock(&mu);
}

static void
probe_answered(const MQTTAsync_message *m, long long at)
{
	char corr[32];
	int len = m->properties.count > 0 ? 0 : -1, i;

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
	i = atoi(corr);
	pthread_mutex_lock(&mu);
	if (i >= 0 && i < nprobes && probes[i].answered == 0)
		probes[i].answered = at;
	pthread_mutex_unlock(&mu);
}

static int
rec_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	long long at = tutil_wall_ms();
	cJSON *json;

	(void)ctx;
	if (m->payloadlen == 0)
		json = cJSON_Parse(FREE_JSON);
	else
		json = cJSON_ParseWithLength(m->payload, (size_t)m->payloadlen);
	if (tl >= 8 && strncmp(topic, "replies/", 8) == 0)
		probe_answered(m, at);
	rec_append(at, m->retained, topic, tl, json, m->payload, m->payloadlen);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void
rec_subscribed_cb(void *ctx, MQTTAsync_successData5 *d)
{
	(void)ctx;
	(void)d;
	pthread_mutex_lock(&mu);
	rec_subscribed++;
	pthread_mutex_unlock(&mu);
}

static void
rec_connected(void *ctx, char *cause)
{
	static char *const filters[] = {(char *)PREFIX "/+/owner",
	    (char *)PREFIX "/_coordinator/status",
	    (char *)PREFIX "/_clients/+/events", (char *)"replies/chaos-probe"};
	static int qos[] = {1, 1, 1, 1};
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

	(void)ctx;
	(void)cause;
	pthread_mutex_lock(&mu);
	rec_down = 0;
	rec_connecting = 0;
	pthread_mutex_unlock(&mu);
	/* A free lock has no retained owner message: every lock counts as
	 * free from here until a retained one says otherwise. */
	for (int l = 0; l < LOCKS; l++) {
		char t[64];
		int n = snprintf(t, sizeof(t), PREFIX "/L%d/owner", l);

		rec_append(tutil_wall_ms(), 1, t, (size_t)n,
		    cJSON_Parse(FREE_JSON), "(subscribing)", 13);
	}
	ro.onSuccess5 = rec_subscribed_cb;
	(void)MQTTAsync_subscribeMany(rec_mq, 4, filters, qos, &ro);
}

static void
rec_lost(void *ctx, char *cause)
{
	(void)ctx;
	(void)cause;
	pthread_mutex_lock(&mu);
	rec_down = 1;
	pthread_mutex_unlock(&mu);
}

static void
rec_connect_failed(void *ctx, MQTTAsync_failureData5 *d)
{
	(void)ctx;
	(void)d;
	pthread_mutex_lock(&mu);
	rec_down = 1;
	rec_connecting = 0;
	pthread_mutex_unlock(&mu);
}

/*
 * The recorder reconnects by itself every 100 ms (Paho's own automatic
 * reconnect waits up to seconds), so that it is back as soon as the
 * broker is and the time to a serving leader is not its own delay.
 */
static void
rec_tick(long long now)
{
	static long long next;
	int go;

	pthread_mutex_lock(&mu);
	go = rec_down && !rec_connecting && now >= next;
	if (go)
		rec_connecting = 1;
	pthread_mutex_unlock(&mu);
	if (!go)
		return;
	next = now + 100;
	if (MQTTAsync_connect(rec_mq, &rec_cn) != MQTTASYNC_SUCCESS) {
		pthread_mutex_lock(&mu);
		rec_connecting = 0;
		pthread_mutex_unlock(&mu);
	}
}

static void
rec_start(void)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	long long end = tutil_mono_ms() + 10000;
	int ok = 0;

	reclog = fopen(path("recorder.log"), "a");
	if (reclog == NULL)
		die("open recorder.log: %s", strerror(errno));
	co.MQTTVersion = MQTTVERSION_5;
	co.maxBufferedMessages = 100000;
	/* Markers wait for the broker while it restarts, in order. */
	co.sendWhileDisconnected = 1;
	if (MQTTAsync_createWithOptions(&rec_mq, uri, "chaos-rec",
		MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) != MQTTASYNC_SUCCESS ||
	    MQTTAsync_setCallbacks(rec_mq, NULL, rec_lost, rec_message, NULL) !=
		MQTTASYNC_SUCCESS ||
	    MQTTAsync_setConnected(rec_mq, NULL, rec_connected) !=
		MQTTASYNC_SUCCESS)
		die("recorder: cannot create the client");
	rec_cn.keepAliveInterval = 10;
	rec_cn.cleanstart = 1;
	rec_cn.connectTimeout = 2;
	rec_cn.automaticReconnect = 0;
	rec_cn.onFailure5 = rec_connect_failed;
	rec_connecting = 1;
	if (MQTTAsync_connect(rec_mq, &rec_cn) != MQTTASYNC_SUCCESS)
		die("recorder: cannot connect");
	while (!ok && tutil_mono_ms() < end) {
		pthread_mutex_lock(&mu);
		ok = rec_subscribed > 0;
		pthread_mutex_unlock(&mu);
		tutil_nap_ms(10);
	}
	if (!ok)
		die("recorder: not subscribed within 10 s");
}

static void
rec_publish(const char *topic, const char *payload, const char *corr)
{
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTProperty p;

	m.payload = (void *)payload;
	m.payloadlen = (int)strlen(payload);
	m.qos = 1;
	if (corr != NULL) {
		memset(&p, 0, sizeof(p));
		p.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
		p.value.data.data = (char *)"replies/chaos-probe";
		p.value.data.len = (int)strlen(p.value.data.data);
		MQTTProperties_add(&m.properties, &p);
		p.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
		p.value.data.data = (char *)corr;
		p.value.data.len = (int)strlen(corr);
		MQTTProperties_add(&m.properties, &p);
	}
	(void)MQTTAsync_sendMessage(rec_mq, topic, &m, &ro);
	MQTTProperties_free(&m.properties);
}

static void
rec_stop(void)
{
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;

	d.timeout = 1000;
	MQTTAsync_disconnect(rec_mq, &d);
	tutil_nap_ms(200);
	MQTTAsync_destroy(&rec_mq);
	fclose(reclog);
}

static size_t
rec_count(void)
{
	size_t n;

	pthread_mutex_lock(&mu);
	n = nrecs;
	pthread_mutex_unlock(&mu);
	return n;
}

static struct msg
rec_get(size_t i)
{
	struct msg m;

	pthread_mutex_lock(&mu);
	m = recs[i];
	pthread_mutex_unlock(&mu);
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

/* The status as last received at or before t: 1 online, 0 not, -1 none;
 * *error gets its error field (or ""). */
static int
status_at(long long t, char *error, size_t errsz)
{
	size_t n = rec_count();
	int st = -1;

	if (error != NULL)
		error[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		struct msg m = rec_get(i);
		const char *s;

		if (m.at > t)
			break;
		if (m.json == NULL ||
		    strcmp(m.topic, PREFIX "/_coordinator/status") != 0 ||
		    (s = jstr(m.json, "state")) == NULL)
			continue;
		st = strcmp(s, "online") == 0;
		if (error != NULL)
			snprintf(error, errsz, "%s",
			    jstr(m.json, "error") != NULL
				? jstr(m.json, "error")
				: "");
	}
	return st;
}

/* Probes and the watcher ---------------------------------------------- */

static void
probe_tick(long long now)
{
	static long long last;
	char corr[16], body[160];
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
	snprintf(body, sizeof(body),
	    "{\"op\":\"acquire\",\"client\":\"chaos-probe\",\"session\":"
	    "\"chaos-probe-session-1\",\"wait\":false}");
	rec_publish(PREFIX "/probe/request", body, corr);
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
	if (status_at(best, NULL, 0) == 1)
		return best;
	for (size_t i = 0, nr = rec_count(); i < nr; i++) {
		struct msg m = rec_get(i);

		if (m.at >= best &&
		    strcmp(m.topic, PREFIX "/_coordinator/status") == 0 &&
		    m.json != NULL && jstr(m.json, "state") != NULL &&
		    strcmp(jstr(m.json, "state"), "online") == 0)
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
	int seq = 0;

	(void)arg;
	if (e == NULL) {
		fprintf(stderr, "chaos_ha: watcher: %s\n", err);
		return NULL;
	}
	while (watching) {
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
				rec_publish(topic, "", NULL);
			}
		}
		tutil_nap_ms(WATCH_EVERY_MS);
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
		if (coords[i].up && strcmp(coords[i].id, h) == 0)
			return i;
	return -1;
}

/* The run ----------------------------------------------------------------- */

static long long t_start;

static void thaw(long long now, int all);

/* One pass of the workload: reap, start clients, probe. */
static void
tick(void)
{
	long long now = tutil_wall_ms();

	reap(now);
	rec_tick(now);
	thaw(now, 0);
	if (now - t_start > HARD_LIMIT_MS - 20000)
		die("the run did not end within its time limit");
	for (int i = 0; i < WORKERS && spawning; i++)
		if (slots[i].cur < 0 && now >= slots[i].next_at)
			client_spawn(i, now);
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

/* The first child of pid (its command), or 0. */
static pid_t
child_of(pid_t pid)
{
	char p[64], *s;
	long c = 0;

	snprintf(p, sizeof(p), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	if ((s = tutil_slurp(p, NULL)) != NULL)
		c = strtol(s, NULL, 10);
	free(s);
	return (pid_t)c;
}

static void
freeze_a_holder(void)
{
	size_t n = rec_count();
	const cJSON *cur[LOCKS] = {NULL};
	int first = (int)rnd_in(0, LOCKS - 1);

	for (size_t k = 0; k < n; k++) {
		struct msg m = rec_get(k);
		int l = owner_lock(m.topic);

		if (l >= 0 && m.json != NULL)
			cur[l] = m.json;
	}
	struct client *pick = NULL;

	/* A holder still writing for seconds, if there is one. */
	for (int i = 0; i < LOCKS; i++) {
		int l = (first + i) % LOCKS;
		const cJSON *o = cur[l] == NULL
		    ? NULL
		    : cJSON_GetObjectItemCaseSensitive(cur[l], "owner");
		struct client *c =
		    cJSON_IsObject(o) ? client_by_id(jstr(o, "client")) : NULL;

		if (c == NULL || !c->running || c->frozen)
			continue;
		if (pick == NULL || (c->long_cmd && !pick->long_cmd))
			pick = c;
	}
	if (pick == NULL)
		return;
	/* With its command (mqlock runs it in a process group of its own). */
	pick->cmd = child_of(pick->pid);
	kill(pick->pid, SIGSTOP);
	if (pick->cmd > 0)
		kill(pick->cmd, SIGSTOP);
	pick->frozen = 1;
	pick->thaw_at = tutil_wall_ms() + rnd_in(14000, 20000);
	nfrozen++;
	note("client %s (holder of L%d) SIGSTOP", pick->id, pick->lock);
}

static void
thaw(long long now, int all)
{
	for (int i = 0; i < WORKERS; i++) {
		struct client *c;

		if (slots[i].cur < 0)
			continue;
		c = &clients[slots[i].cur];
		if (!c->frozen || (!all && now < c->thaw_at))
			continue;
		/*
		 * Half of them: mqlock killed, so its command wakes alone and
		 * writes with its old token, unwarned.
		 */
		if (!all && rnd_in(0, 1) == 0) {
			kill(c->pid, SIGKILL);
			c->killed = 1;
			note("client %s SIGKILL, its command SIGCONT", c->id);
		} else {
			note("client %s SIGCONT", c->id);
		}
		kill(c->pid, SIGCONT);
		if (c->cmd > 0)
			kill(c->cmd, SIGCONT);
		c->frozen = 0;
	}
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
		note("served again %lld ms after %s", s - from, what);
	else
		note("not served within %d s after %s", SERVE_WAIT_MS / 1000,
		    what);
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
			problem(C_SERVE,
			    "no leader serving within %d s; faults stopped",
			    SERVE_WAIT_MS / 1000);
			note("no leader serving: faults stopped");
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
	int i;

	long long at;

	freeze_a_holder();
	if ((i = steady_leader()) < 0)
		return;
	at = tutil_wall_ms();

	server_signal(&coords[i], SIGKILL);
	await_serving(F_LEADER_KILL, at, at, BOUND_LEADER_MS,
	    "the leader was killed");
	/* It comes back as a standby. */
	run_for(500);
	if (!coords[i].up)
		coord_start(i);
}

static void
fault_leader_stop(void)
{
	int i = steady_leader();
	long long at = tutil_wall_ms();

	if (i < 0)
		return;
	server_signal(&coords[i], SIGSTOP);
	run_for((LEASE_S + 2) * 1000);
	server_signal(&coords[i], SIGCONT);
	await_serving(F_LEADER_STOP, at, at, BOUND_LEADER_MS,
	    "the leader was paused past its lease");
}

static void
fault_etcd_one(void)
{
	int m = (int)rnd_in(0, 2);
	long long at;

	if (steady_leader() < 0)
		return;
	at = tutil_wall_ms();
	if (etcdtest_signal(cluster, m, SIGKILL) != 0)
		die("could not kill etcd member %d", m);
	etcd_down[m] = 1;
	note("etcd member %d SIGKILL", m);
	await_serving(F_ETCD_ONE, at, at, BOUND_LEADER_MS,
	    "an etcd member was killed");
	run_for(1500);
	if (etcdtest_restart(cluster, m) != 0)
		die("could not restart etcd member %d", m);
	etcd_down[m] = 0;
	note("etcd member %d restarted", m);
	if (etcdtest_wait_healthy(cluster, 30000) != 0)
		die("etcd not healthy again within 30 s");
}

/* Quorum lost: a leader serving before must say why, and decide nothing
 * until it is back. */
static long long quorum_from[ROUNDS], quorum_to[ROUNDS];
static int nquorum;

static void
fault_etcd_quorum(void)
{
	int keep = (int)rnd_in(0, 2), a = (keep + 1) % 3, b = (keep + 2) % 3;
	long long at, back;

	freeze_a_holder();
	if (steady_leader() < 0)
		return;
	at = tutil_wall_ms();
	if (etcdtest_signal(cluster, a, SIGKILL) != 0 ||
	    etcdtest_signal(cluster, b, SIGKILL) != 0)
		die("could not kill two etcd members");
	etcd_down[a] = etcd_down[b] = 1;
	note("etcd members %d and %d SIGKILL: no quorum", a, b);
	run_for((LEASE_S + 2) * 1000);
	if (nquorum < ROUNDS) {
		quorum_from[nquorum] = at;
		quorum_to[nquorum] = tutil_wall_ms();
		nquorum++;
	}
	if (etcdtest_restart(cluster, a) != 0 ||
	    etcdtest_restart(cluster, b) != 0)
		die("could not restart etcd members");
	etcd_down[a] = etcd_down[b] = 0;
	if (etcdtest_wait_healthy(cluster, 30000) != 0)
		die("etcd not healthy again within 30 s");
	back = tutil_wall_ms();
	note("etcd members %d and %d back: quorum", a, b);
	await_serving(F_ETCD_QUORUM, at, back, BOUND_LEADER_MS,
	    "etcd's quorum came back");
}

static void
fault_broker(int sig)
{
	long long at, back;
	int st;

	if (steady_leader() < 0)
		return;
	at = tutil_wall_ms();
	server_signal(&broker, sig);
	/* Ours to wait for here, so reap() must not take it first. */
	if (waitpid(broker.pid, &st, 0) == broker.pid) {
		if (sig == SIGKILL)
			unlink(path("mosquitto.db"));
		server_exited(&broker, st);
	}
	run_for(rnd_in(300, 1200));
	broker_start();
	back = tutil_wall_ms();
	await_serving(sig == SIGKILL ? F_BROKER_KILL : F_BROKER_TERM, at, back,
	    BOUND_BROKER_MS,
	    sig == SIGKILL ? "mosquitto came back without its state"
			   : "mosquitto came back with its state");
}

static void
kill_everything(void)
{
	int st;

	for (int i = 0; i < nclients; i++)
		if (clients[i].running) {
			kill(clients[i].pid, SIGKILL);
			if (clients[i].frozen && clients[i].cmd > 0) {
				kill(clients[i].cmd, SIGKILL);
				kill(clients[i].cmd, SIGCONT);
			}
			waitpid(clients[i].pid, &st, 0);
			clients[i].running = 0;
		}
	for (int i = 0; i < COORDS; i++)
		if (coords[i].pid > 0) {
			kill(coords[i].pid, SIGKILL);
			kill(coords[i].pid, SIGCONT);
			waitpid(coords[i].pid, &st, 0);
			coords[i].pid = 0;
		}
	if (broker.pid > 0) {
		kill(broker.pid, SIGKILL);
		waitpid(broker.pid, &st, 0);
		broker.pid = 0;
	}
	etcdtest_stop(cluster, false);
	cluster = NULL;
}

/* Checks ------------------------------------------------------------------ */

struct grant {
	int lock; /* -1: unknown token */
	char client[32];
	long long at; /* first granted event's arrival, 0: none */
};

static struct grant *grants;
static long long ngrants_cap;

static void
grant_see(long long token, int lock, const char *client, const char *where,
    long long at)
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
		for (long long i = ngrants_cap; i < cap; i++) {
			grants[i].lock = -1;
			grants[i].at = 0;
		}
		ngrants_cap = cap;
	}
	g = &grants[token];
	if (g->lock < 0) {
		g->lock = lock;
		snprintf(g->client, sizeof(g->client), "%s",
		    client != NULL ? client : "?");
	} else if (g->lock != lock || client == NULL ||
	    strcmp(g->client, client) != 0) {
		problem(C_ONE_GRANT, "token %lld is L%d/%s, but %s says L%d/%s",
		    token, g->lock, g->client, where, lock,
		    client != NULL ? client : "?");
	}
	if (at > 0 && g->at == 0)
		g->at = at;
}

static int
grant_known(long long token, int lock, const char *client)
{
	return token > 0 && token < ngrants_cap && grants[token].lock == lock &&
	    strcmp(grants[token].client, client) == 0;
}

/* Owner messages and events, in arrival order. */
static void
check_recorded(int *owner_msgs, int *events, long long *top_token)
{
	long long last[LOCKS] = {0}, top = 0;
	size_t n = rec_count();

	for (size_t i = 0; i < n; i++) {
		struct msg m = rec_get(i);
		int l = owner_lock(m.topic);

		if (m.json == NULL)
			continue;
		if (l >= 0) {
			const cJSON *owner =
			    cJSON_GetObjectItemCaseSensitive(m.json, "owner");
			long long t = jint(m.json, "token");

			(*owner_msgs)++;
			if (!cJSON_IsObject(owner))
				continue;
			grant_see(t, l, jstr(owner, "client"),
			    "an owner message", 0);
			if (t < last[l])
				problem(C_OWNER_ORDER,
				    "L%d: owner message at %lld shows token "
				    "%lld after %lld",
				    l, m.at, t, last[l]);
			else
				last[l] = t;
			continue;
		}
		if (strncmp(m.topic, PREFIX "/_clients/", 15) == 0) {
			const char *ev = jstr(m.json, "event");
			const char *lock = jstr(m.json, "lock");
			char client[64];
			long long t = jint(m.json, "token");
			int ll;

			(*events)++;
			if (ev == NULL || strcmp(ev, "granted") != 0 ||
			    lock == NULL || sscanf(lock, "L%d", &ll) != 1 ||
			    sscanf(m.topic, PREFIX "/_clients/%63[^/]",
				client) != 1)
				continue;
			/*
			 * A token first seen (in no owner message or event
			 * before) must be above every one granted before.
			 * Events only: a batch's owner messages go out in
			 * no particular order of tokens, its events in the
			 * order of its decisions.
			 */
			if (!(t > 0 && t < ngrants_cap &&
				grants[t].lock >= 0) &&
			    t <= top)
				problem(C_TOKENS_RISE,
				    "new token %lld (L%d, %s) at %lld after "
				    "%lld",
				    t, ll, client, m.at, top);
			if (t > top)
				top = t;
			grant_see(t, ll, client, "a granted event", m.at);
		}
	}
	*top_token = top;
}

/* Every grant each mqlockd logged, in the order it logged them. */
static void
check_coord_logs(int *lines)
{
	for (int i = 0; i < COORDS; i++) {
		char name[32], *log, *line, *save = NULL;

		snprintf(name, sizeof(name), "mqlockd-%d.log", i);
		log = tutil_slurp(path(name), NULL);
		for (line = log != NULL ? strtok_r(log, "\n", &save) : NULL;
		     line != NULL; line = strtok_r(NULL, "\n", &save)) {
			char client[64];
			long long token;
			const char *p = strstr(line, " grant lock=L");
			int l;

			if (p == NULL ||
			    sscanf(p, " grant lock=L%d client=%63s token=%lld",
				&l, client, &token) != 3 ||
			    l < 0 || l >= LOCKS)
				continue;
			(*lines)++;
			grant_see(token, l, client, name, 0);
		}
		free(log);
	}
}

/* The commands' own logs: their tokens, and the fenced resources. */
static void
check_commands(int *nruns_cmd, int *accepted, int *rejected)
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
		(*nruns_cmd)++;
		if (sscanf(lock, "L%d", &l) != 1 ||
		    !grant_known(token, l, client))
			problem(C_FENCING,
			    "a command ran with token %lld for %s/%s, which "
			    "nobody granted",
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
				    "L%d: written with token %lld after %lld",
				    l, token, top);
			top = token;
			if (!grant_known(token, l, client))
				problem(C_FENCING,
				    "L%d: written with token %lld by %s, which "
				    "nobody granted",
				    l, token, client);
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

/* An mqlock that exited 0 kept its lock until its command ended. */
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
		if (t < ngrants_cap && grants[t].at != 0 &&
		    grants[t].at < c->cmd_end)
			problem(C_CLI_EXIT,
			    "mqlock %s exited 0, but L%d went to %s (token "
			    "%lld) at %lld, before its command (token %lld) "
			    "ended at %lld",
			    c->id, c->lock, grants[t].client, t, grants[t].at,
			    c->cmd_token, c->cmd_end);
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
	char *log = tutil_slurp(path("mosquitto.log"), NULL), *line, *save;
	char **lines = NULL;
	size_t nl = 0, cap = 0;
	struct marker *mk = NULL;
	size_t nm = 0, capm = 0, next_mk = 0;
	char cur[64] = "";
	const char *holder = "";

	if (log == NULL) {
		problem(C_LEADER, "no mosquitto.log");
		return;
	}
	save = NULL;
	for (line = strtok_r(log, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (nl == cap) {
			cap = cap ? cap * 2 : 65536;
			lines = realloc(lines, cap * sizeof(*lines));
			if (lines == NULL)
				die("out of memory");
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
			"Received PUBLISH from "
			"chaos-rec") == NULL)
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
				die("out of memory");
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
		problem(C_LEADER,
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
		size_t n = rec_count();

		if (status_at(from, err, sizeof(err)) == 1 ||
		    strcmp(err, "etcd unavailable") != 0)
			problem(C_QUORUM,
			    "quorum lost at %lld: the status %lld ms later "
			    "is not offline with \"etcd unavailable\" (error "
			    "\"%s\")",
			    quorum_from[q], from - quorum_from[q], err);
		for (size_t i = 0; i < n; i++) {
			struct msg m = rec_get(i);

			if (m.at < from || m.at > to)
				continue;
			if (owner_lock(m.topic) >= 0 ||
			    strncmp(m.topic, PREFIX "/_clients/", 15) == 0 ||
			    strncmp(m.topic, "replies/", 8) == 0)
				problem(C_QUORUM,
				    "a decision without quorum: %s at %lld",
				    m.topic, m.at);
		}
	}
}

static void
check_logs(void)
{
	for (int i = 0; i < COORDS + WORKERS; i++) {
		char name[32];
		char *s;

		if (i < COORDS)
			snprintf(name, sizeof(name), "mqlockd-%d.log", i);
		else
			snprintf(name, sizeof(name), "slot-%02d.out",
			    i - COORDS);
		s = tutil_slurp(path(name), NULL);
		if (s != NULL &&
		    (strstr(s, "Sanitizer") != NULL ||
			strstr(s, "runtime error:") != NULL))
			problem(C_NO_CRASH, "%s has a sanitizer report", name);
		free(s);
	}
}

static int
rm_tree(const char *d)
{
	char cmd[PATH_MAX + 32];

	if (strstr(d, "/mqlock-chaos-ha-") == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	return system(cmd);
}

/* Main ---------------------------------------------------------------------
 */

int
main(void)
{
	const char *tmp = getenv("TMPDIR"), *env;
	struct etcdtest_opts eo = {.members = 3};
	pthread_t watcher, late;
	int owner_msgs = 0, events = 0, nruns_cmd = 0, accepted = 0;
	int rejected = 0, checked = 0, connects = 0, exits[5] = {0};
	int grant_lines = 0;
	int faults[NFAULTS] = {0}, failed = 0, i, drained = 0;
	long long top = 0, worst = 0, slack, now, t_begin = tutil_wall_ms();

	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	snprintf(dir, sizeof(dir), "%s/mqlock-chaos-ha-XXXXXX",
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
	printf("chaos_ha: seed %llu, directory %s, %d mqlockd, %d clients, "
	       "%d locks, lease %d s, %d rounds of faults\n",
	    (unsigned long long)rng, dir, COORDS, WORKERS, LOCKS, LEASE_S,
	    ROUNDS);
	fflush(stdout);
	snprintf(broker.name, sizeof(broker.name), "mosquitto");
	snprintf(broker.id, sizeof(broker.id), "-");
	for (i = 0; i < COORDS; i++)
		snprintf(coords[i].name, sizeof(coords[i].name), "mqlockd");

	if ((cluster = etcdtest_start(&eo)) == NULL)
		die("etcd did not start");
	port = tutil_free_port();
	if (port == -1)
		die("no free port: %s", strerror(errno));
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
	write_broker_conf();
	broker_start();
	rec_start();
	if (pthread_create(&watcher, NULL, watch_main, NULL) != 0 ||
	    pthread_create(&late, NULL, late_main, NULL) != 0)
		die("pthread_create failed");
	for (i = 0; i < COORDS; i++)
		coord_start(i);
	t_start = tutil_wall_ms();
	for (i = 0; i < WORKERS; i++) {
		slots[i].cur = -1;
		slots[i].next_at = t_start + i * (WARMUP_MS / 2 / WORKERS);
	}
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
	thaw(tutil_wall_ms(), 1);

	/* No new clients; every one must end, and every lock come free. */
	spawning = 0;
	note("faults stopped");
	for (now = tutil_wall_ms(); tutil_wall_ms() - now < DRAIN_MS;) {
		int alive = 0;

		tick();
		for (i = 0; i < WORKERS; i++)
			if (slots[i].cur >= 0)
				alive++;
		if (alive == 0) {
			drained = 1;
			break;
		}
	}
	/* The probe lets go of its lock too. */
	rec_publish(PREFIX "/probe/request",
	    "{\"op\":\"release\",\"client\":\"chaos-probe\",\"session\":"
	    "\"chaos-probe-session-1\"}",
	    NULL);
	run_for(2000);
	{
		int all_free = 0;

		for (now = tutil_wall_ms(); tutil_wall_ms() - now < 20000;) {
			const cJSON *cur[LOCKS] = {NULL};
			size_t n = rec_count();

			for (size_t k = 0; k < n; k++) {
				struct msg m = rec_get(k);
				int l = owner_lock(m.topic);

				if (l >= 0 && m.json != NULL)
					cur[l] = m.json;
			}
			all_free = 1;
			for (int l = 0; l < LOCKS; l++)
				if (cur[l] != NULL &&
				    (cJSON_IsObject(
					 cJSON_GetObjectItemCaseSensitive(
					     cur[l], "owner")) ||
					jint(cur[l], "waiting") > 0))
					all_free = 0;
			if (all_free)
				break;
			tick();
		}
		if (!drained)
			problem(C_END,
			    "clients still running %d s after the faults",
			    DRAIN_MS / 1000);
		else if (!all_free)
			problem(C_END,
			    "a lock is still held or awaited with "
			    "every client gone");
	}

	/* Stop the normal way: every mqlockd and mosquitto must exit 0. */
	for (i = 0; i < COORDS; i++)
		server_signal(&coords[i], SIGTERM);
	for (int k = 0; k < 1000; k++) {
		int up = 0;

		reap(tutil_wall_ms());
		for (i = 0; i < COORDS; i++)
			up += coords[i].up;
		if (up == 0)
			break;
		tutil_nap_ms(10);
	}
	watching = 0;
	pthread_join(watcher, NULL);
	rec_stop();
	server_signal(&broker, SIGTERM);
	for (int k = 0; k < 500 && broker.up; k++) {
		reap(tutil_wall_ms());
		tutil_nap_ms(10);
	}
	probing_late = 0;
	pthread_join(late, NULL);
	kill_everything();
	for (i = 0; i < 500 && waitpid(-1, NULL, WNOHANG) != -1; i++)
		tutil_nap_ms(10);

	/* The verdict. */
	for (i = 0; i < COORDS; i++)
		if (coords[i].crashes > 0)
			problem(C_NO_CRASH, "%s; %d such exits",
			    coords[i].crash, coords[i].crashes);
	if (broker.crashes > 0)
		problem(C_NO_CRASH, "%s; %d such exits", broker.crash,
		    broker.crashes);
	for (i = 0; i < nclients; i++) {
		int st = clients[i].status;

		if (clients[i].killed)
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
			    clients[i].id,
			    WIFSIGNALED(st) ? "signal" : "status",
			    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
			    clients[i].slot);
	}
	check_recorded(&owner_msgs, &events, &top);
	check_coord_logs(&grant_lines);
	check_commands(&nruns_cmd, &accepted, &rejected);
	check_cli_exits();
	check_broker_log(&checked, &connects);
	check_quorum();
	check_logs();
	slack = RECOVERY_STEPS * late_worst;
	for (i = 0; i < nruns; i++) {
		struct fault_run *r = &runs[i];
		long long took = r->served > 0 ? r->served - r->from : -1;

		if (took > worst)
			worst = took;
		if (took < 0 || took > r->bound + slack)
			problem(C_SERVE,
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
	    top, grant_lines, owner_msgs, events, nprobes);
	printf("commands run %d; fenced writes accepted %d, refused %d; "
	       "%d holders frozen for 14-20 s\n",
	    nruns_cmd, accepted, rejected, nfrozen);
	printf("mqlock exits: %d done, %d lock lost (70), %d gave up waiting "
	       "(75), %d broker unreachable (69), %d killed by the test; %d "
	       "runs in all; %lld s from start to verdict\n",
	    exits[0], exits[1], exits[2], exits[3], exits[4], nclients,
	    (tutil_wall_ms() - t_begin) / 1000);
	for (i = 0; i < NCHECKS; i++) {
		printf("check: %-52s %s", check_name[i],
		    nproblems[i] ? "FAILED" : "ok");
		if (nproblems[i])
			printf(" (%d)", nproblems[i]);
		printf("\n");
		failed += nproblems[i];
	}
	if (failed > 0) {
		printf("chaos_ha: FAILED; directory kept: %s\n", dir);
		return 1;
	}
	printf("chaos_ha: passed\n");
	if (getenv("CHAOS_KEEP") == NULL)
		rm_tree(dir);
	else
		printf("chaos_ha: directory kept: %s\n", dir);
	return 0;
}
