/*
 * chaoslib.c: see chaoslib.h.
 */
#include "chaoslib.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tutil.h"

#define MAX_SERVERS 8
#define REC_RETRY_MS 100
#define LATE_NAP_MS 50

static const struct chaos_opts *opts;
static char dir[PATH_MAX];
static char uri[64];
static int port;
static uint64_t rng, seed;
static FILE *faultlog;

static struct chaos_server broker;
static struct chaos_server *servers[MAX_SERVERS];
static int nservers;

struct slot {
	int cur; /* client index, -1: idle */
	long long next_at;
	int iter;
};

static struct chaos_client *clients;
static int nclients, capclients;
static struct slot *slots;
static int *by_iter; /* slot * max_iters + iteration -> client */

static int *nproblems;

/* Run --------------------------------------------------------------------- */

static void write_broker_conf(void);

void
chaos_init(const struct chaos_opts *o)
{
	const char *tmp = getenv("TMPDIR"), *env;

	opts = o;
	signal(SIGPIPE, SIG_IGN);
	/* Commands orphaned by a killed mqlock become ours to wait for. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	nproblems = calloc((size_t)o->nchecks, sizeof(*nproblems));
	slots = calloc((size_t)o->workers, sizeof(*slots));
	by_iter =
	    calloc((size_t)o->workers * (size_t)o->max_iters, sizeof(*by_iter));
	if (nproblems == NULL || slots == NULL || by_iter == NULL)
		chaos_die("out of memory");
	for (int i = 0; i < o->workers; i++)
		slots[i].cur = -1;
	snprintf(dir, sizeof(dir), "%s/%s-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", o->stem);
	if (mkdtemp(dir) == NULL) {
		dir[0] = '\0';
		chaos_die("mkdtemp: %s", strerror(errno));
	}
	chmod(dir, 0755);
	faultlog = fopen(chaos_path("faults.log"), "a");
	if (faultlog == NULL)
		chaos_die("open faults.log: %s", strerror(errno));
	env = getenv("CHAOS_SEED");
	rng = env != NULL
	    ? strtoull(env, NULL, 0)
	    : (uint64_t)tutil_wall_ms() ^ ((uint64_t)getpid() << 20);
	if (rng == 0)
		rng = 1;
	seed = rng;
	snprintf(broker.name, sizeof(broker.name), "mosquitto");
}

const char *
chaos_dir(void)
{
	return dir;
}

uint64_t
chaos_seed(void)
{
	return seed;
}

const char *
chaos_uri(void)
{
	return uri;
}

const char *
chaos_path(const char *name)
{
	static char bufs[8][PATH_MAX + 64];
	static unsigned next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%s", dir, name);
	return b;
}

void
chaos_note(const char *fmt, ...)
{
	va_list ap;

	if (faultlog == NULL)
		return;
	fprintf(faultlog, "%lld ", tutil_wall_ms());
	va_start(ap, fmt);
	vfprintf(faultlog, fmt, ap);
	va_end(ap);
	fputc('\n', faultlog);
	fflush(faultlog);
}

void
chaos_append_line(const char *name, const char *line)
{
	FILE *f = fopen(chaos_path(name), "a");

	if (f != NULL) {
		fputs(line, f);
		fclose(f);
	}
}

void
chaos_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", opts->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	chaos_kill_everything();
	if (dir[0] != '\0')
		fprintf(stderr, "%s: directory kept: %s\n", opts->name, dir);
	exit(1);
}

uint64_t
chaos_rnd(void)
{
	return tutil_rand(&rng);
}

long long
chaos_rnd_in(long long lo, long long hi)
{
	return lo + (long long)(chaos_rnd() % (uint64_t)(hi - lo + 1));
}

static int
rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p) == 0 ? 0 : -1;
}

/* JSON ------------------------------------------------------------------ */

const char *
chaos_jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

long long
chaos_jint(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

/* Servers ----------------------------------------------------------------- */

/*
 * Both programs read mosquitto's log: chaos for a person looking into a
 * failure, chaos_ha to check who published what (every PUBLISH it
 * receives, which needs log_type all, with epoch seconds).
 */
static void
write_broker_conf(void)
{
	FILE *f = fopen(chaos_path("mosquitto.conf"), "w");

	if (f == NULL)
		chaos_die("write mosquitto.conf: %s", strerror(errno));
	fprintf(f,
	    "listener %d 127.0.0.1\n"
	    "allow_anonymous true\n"
	    "set_tcp_nodelay true\n"
	    "max_queued_messages 0\n"
	    "max_inflight_messages 100\n"
	    "persistence true\n"
	    "persistence_location %s/\n"
	    "persistence_file mosquitto.db\n",
	    port, dir);
	if (opts->broker_log_all)
		fprintf(f,
		    "log_dest file %s/mosquitto.log\n"
		    "log_type all\n",
		    dir);
	else
		fprintf(f,
		    "log_dest stdout\n"
		    "log_type error\n"
		    "log_type warning\n"
		    "log_type notice\n"
		    "log_type information\n"
		    "log_timestamp_format %%H:%%M:%%S\n");
	if (geteuid() == 0)
		fprintf(f, "user root\n");
	fclose(f);
}

void
chaos_server_add(struct chaos_server *s)
{
	if (nservers == MAX_SERVERS)
		chaos_die("more than %d servers", MAX_SERVERS);
	servers[nservers++] = s;
}

struct chaos_server *
chaos_broker(void)
{
	return &broker;
}

/* "mqlockd h0s1", or "mosquitto" for a server without an id. */
static const char *
who(const struct chaos_server *s)
{
	static char b[2][72];
	static unsigned next;
	char *w = b[next++ % 2];

	snprintf(w, sizeof(b[0]), "%s%s%s", s->name, s->id[0] ? " " : "",
	    s->id);
	return w;
}

/* Starts s as argv, output appended to dir/out after banner (NULL: none). */
static void
server_spawn(struct chaos_server *s, char *const argv[], const char *out,
    const char *banner)
{
	if (banner != NULL)
		chaos_append_line(out, banner);
	s->pid = tutil_spawn(argv, chaos_path(out), 1);
	if (s->pid == -1)
		chaos_die("start %s (output to %s): %s", argv[0], out,
		    strerror(errno));
	s->state = CHAOS_UP;
	s->sent = 0;
	s->starts++;
	chaos_note("%s started (pid %d)", who(s), (int)s->pid);
}

void
chaos_broker_start(void)
{
	char *argv[] = {(char *)MOSQUITTO_BIN, (char *)"-c", NULL, NULL};
	char conf[PATH_MAX + 64];

	/*
	 * The port is picked at the first start, after whatever else the
	 * program started (etcd members) holds its own ports.
	 */
	if (port == 0) {
		port = tutil_free_port();
		if (port == -1)
			chaos_die("no free port: %s", strerror(errno));
		snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
		write_broker_conf();
	}
	snprintf(conf, sizeof(conf), "%s", chaos_path("mosquitto.conf"));
	argv[2] = conf;
	server_spawn(&broker, argv,
	    opts->broker_log_all ? "mosquitto.out" : "mosquitto.log", NULL);
	if (tutil_wait_port(port, broker.pid, 10000) != 0)
		chaos_die("mosquitto did not accept on port %d", port);
}

void
chaos_coord_start(struct chaos_server *s, const char *out, char *const extra[])
{
	char *argv[48], grace[16], ka[16], idle[16], banner[128];
	int n = 0;

	snprintf(grace, sizeof(grace), "%d", CHAOS_GRACE_S);
	snprintf(ka, sizeof(ka), "%d", CHAOS_COORD_KEEPALIVE_S);
	snprintf(idle, sizeof(idle), "%d", CHAOS_IDLE_S);
	argv[n++] = (char *)MQLOCKD_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = uri;
	argv[n++] = (char *)"--prefix";
	argv[n++] = (char *)CHAOS_PREFIX;
	argv[n++] = (char *)"--grace";
	argv[n++] = grace;
	argv[n++] = (char *)"--keepalive";
	argv[n++] = ka;
	argv[n++] = (char *)"--idle-timeout";
	argv[n++] = idle;
	argv[n++] = (char *)"--idle-warning";
	argv[n++] = (char *)"10";
	for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (n == (int)(sizeof(argv) / sizeof(argv[0])) - 1)
			chaos_die("mqlockd: too many arguments");
		argv[n++] = extra[i];
	}
	argv[n] = NULL;
	snprintf(banner, sizeof(banner), "==== %s: %s start %d ====\n",
	    opts->name, who(s), s->starts + 1);
	server_spawn(s, argv, out, banner);
}

void
chaos_server_signal(struct chaos_server *s, int sig)
{
	if (s->state != CHAOS_UP || s->pid <= 0)
		return;
	kill(s->pid, sig);
	if (sig == SIGKILL || sig == SIGTERM) {
		s->sent = sig;
		s->state = CHAOS_STOPPING;
	}
	chaos_note("%s: signal %d", who(s), sig);
}

/*
 * A server exited; was it our doing?  (A SIGTERM that lands before
 * mqlockd has set up its signal handling kills it: that is fine too.)
 */
static void
server_exited(struct chaos_server *s, int status, long long now, int restart)
{
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	int expected = (s->sent == SIGKILL && sig == SIGKILL) ||
	    (s->sent == SIGTERM &&
		(sig == SIGTERM ||
		    (WIFEXITED(status) && WEXITSTATUS(status) == 0)));

	if (s == &broker && s->sent == SIGKILL) {
		/* Its state is lost with it. */
		unlink(chaos_path("mosquitto.db"));
	}
	if (!expected) {
		/* The first one says most; count the rest. */
		if (s->crashes++ == 0)
			snprintf(s->crash, sizeof(s->crash),
			    "%s exited by itself: %s %d (see its log)", who(s),
			    sig ? "signal" : "status",
			    sig ? sig : WEXITSTATUS(status));
		chaos_note("%s exited by itself: %s %d", who(s),
		    sig ? "signal" : "status", sig ? sig : WEXITSTATUS(status));
	}
	s->state = CHAOS_DOWN;
	s->pid = 0;
	s->restart_at = restart && s->restart_max_ms > 0
	    ? now + chaos_rnd_in(100, s->restart_max_ms)
	    : now;
}

void
chaos_server_wait(struct chaos_server *s)
{
	int st;

	if (s->pid > 0 && waitpid(s->pid, &st, 0) == s->pid)
		server_exited(s, st, tutil_wall_ms(), 0);
}

/* Clients ----------------------------------------------------------------- */

void
chaos_slots_start(long long t0, long long spread_ms)
{
	for (int i = 0; i < opts->workers; i++) {
		slots[i].cur = -1;
		slots[i].next_at = t0 + i * spread_ms;
	}
}

static void
client_spawn(int slot, long long now)
{
	char *argv[24], wait[24], dur[24], nw[24], lock[16], ka[16];
	char out[64], line[160];
	struct chaos_client *c;
	struct slot *s = &slots[slot];
	int n = 0;

	if (s->iter >= opts->max_iters)
		return;
	if (nclients == capclients) {
		capclients = capclients ? capclients * 2 : 1024;
		clients = realloc(clients, (size_t)capclients * sizeof(*c));
		if (clients == NULL)
			chaos_die("out of memory");
	}
	c = &clients[nclients];
	memset(c, 0, sizeof(*c));
	c->slot = slot;
	by_iter[slot * opts->max_iters + s->iter] = nclients;
	c->lock = (int)chaos_rnd_in(0, opts->locks - 1);
	snprintf(c->id, sizeof(c->id), "w%d-%d", slot, s->iter++);
	snprintf(lock, sizeof(lock), "L%d", c->lock);
	snprintf(wait, sizeof(wait), "%lld", chaos_rnd_in(1, opts->max_wait_s));
	/*
	 * Mostly short commands; one in four holds its lock for seconds and
	 * writes more, so that a holder killed or frozen meanwhile leaves a
	 * command writing after the lock moved on: fencing's work.
	 */
	if (chaos_rnd() % 4 == 0) {
		c->long_cmd = 1;
		snprintf(dur, sizeof(dur), "%lld",
		    chaos_rnd_in(opts->long_min_ms, opts->long_max_ms));
		snprintf(nw, sizeof(nw), "%lld",
		    chaos_rnd_in(opts->long_writes_min, opts->long_writes_max));
	} else {
		snprintf(dur, sizeof(dur), "%lld",
		    chaos_rnd_in(50, opts->cmd_max_ms));
		snprintf(nw, sizeof(nw), "%lld", chaos_rnd_in(1, 3));
	}
	snprintf(ka, sizeof(ka), "%d", CHAOS_CLIENT_KEEPALIVE_S);
	argv[n++] = (char *)MQLOCK_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = uri;
	argv[n++] = (char *)"--prefix";
	argv[n++] = (char *)CHAOS_PREFIX;
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
	chaos_append_line(out, line);
	c->pid = tutil_spawn(argv, chaos_path(out), 1);
	if (c->pid == -1)
		chaos_die("start %s (output to %s): %s", argv[0], out,
		    strerror(errno));
	c->running = 1;
	c->start = now;
	s->cur = nclients++;
}

void
chaos_spawn_due(long long now)
{
	for (int i = 0; i < opts->workers; i++)
		if (slots[i].cur < 0 && now >= slots[i].next_at)
			client_spawn(i, now);
}

struct chaos_client *
chaos_slot_client(int slot)
{
	return slots[slot].cur >= 0 ? &clients[slots[slot].cur] : NULL;
}

int
chaos_busy_slots(void)
{
	int n = 0;

	for (int i = 0; i < opts->workers; i++)
		if (slots[i].cur >= 0)
			n++;
	return n;
}

int
chaos_nclients(void)
{
	return nclients;
}

struct chaos_client *
chaos_client(int i)
{
	return &clients[i];
}

struct chaos_client *
chaos_client_by_id(const char *id)
{
	int slot, iter;
	char *end;

	/* w<slot>-<iter>: found without a search. */
	if (id == NULL || id[0] != 'w')
		return NULL;
	slot = (int)strtol(id + 1, &end, 10);
	if (*end != '-' || slot < 0 || slot >= opts->workers)
		return NULL;
	iter = (int)strtol(end + 1, &end, 10);
	if (*end != '\0' || iter < 0 || iter >= slots[slot].iter)
		return NULL;
	return &clients[by_iter[slot * opts->max_iters + iter]];
}

int
chaos_client_frozen(const struct chaos_client *c)
{
	return c->frozen_at != 0 && c->thawed_at == 0;
}

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

void
chaos_client_freeze(struct chaos_client *c, long long now, long long thaw_due,
    int with_cmd)
{
	/* The command first looked up: mqlock runs it in a group of its own,
	 * so a signal to mqlock does not reach it. */
	c->cmd = with_cmd ? child_of(c->pid) : 0;
	kill(c->pid, SIGSTOP);
	if (c->cmd > 0)
		kill(c->cmd, SIGSTOP);
	c->frozen_at = now;
	c->thawed_at = 0;
	c->thaw_due = thaw_due;
}

/* Continue c's frozen command, if any, which wakes alone or with it. */
static void
cmd_continue(struct chaos_client *c)
{
	if (c->cmd > 0)
		kill(c->cmd, SIGCONT);
	c->cmd = 0;
}

void
chaos_client_kill(struct chaos_client *c, long long now)
{
	kill(c->pid, SIGKILL);
	c->killed = 1;
	if (chaos_client_frozen(c)) {
		kill(c->pid, SIGCONT);
		c->thawed_at = now;
		cmd_continue(c);
	}
}

void
chaos_thaw(long long now, int all, int (*kill_it)(struct chaos_client *, int))
{
	for (int i = 0; i < opts->workers; i++) {
		struct chaos_client *c = chaos_slot_client(i);

		if (c == NULL || !chaos_client_frozen(c) ||
		    (!all && now < c->thaw_due))
			continue;
		if (kill_it(c, all)) {
			int cmd = c->cmd > 0;

			chaos_client_kill(c, now);
			chaos_note("client %s SIGKILL (frozen)%s", c->id,
			    cmd ? ", its command SIGCONT" : "");
		} else {
			kill(c->pid, SIGCONT);
			c->thawed_at = now;
			cmd_continue(c);
			chaos_note("client %s SIGCONT", c->id);
		}
	}
}

void
chaos_reap(long long now, int restart)
{
	pid_t pid;
	int st, i;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid == broker.pid) {
			server_exited(&broker, st, now, restart);
			continue;
		}
		for (i = 0; i < nservers; i++)
			if (pid == servers[i]->pid)
				break;
		if (i < nservers) {
			server_exited(servers[i], st, now, restart);
			continue;
		}
		for (i = 0; i < opts->workers; i++) {
			struct chaos_client *c = chaos_slot_client(i);

			if (c == NULL || c->pid != pid)
				continue;
			c->running = 0;
			c->status = st;
			c->end = now;
			slots[i].cur = -1;
			slots[i].next_at =
			    now + chaos_rnd_in(0, opts->respawn_max_ms);
			break;
		}
		/* Else an orphaned command, or a child the program's own
		 * helpers wait for. */
	}
}

static void
server_kill(struct chaos_server *s)
{
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGKILL);
	kill(s->pid, SIGCONT); /* a paused one, too */
	waitpid(s->pid, &st, 0);
	s->pid = 0;
	s->state = CHAOS_DOWN;
}

void
chaos_kill_everything(void)
{
	int st;

	for (int i = 0; i < nclients; i++) {
		struct chaos_client *c = &clients[i];

		if (!c->running)
			continue;
		kill(c->pid, SIGKILL);
		if (chaos_client_frozen(c) && c->cmd > 0) {
			kill(c->cmd, SIGKILL);
			kill(c->cmd, SIGCONT);
		}
		waitpid(c->pid, &st, 0);
		c->running = 0;
	}
	for (int i = 0; i < nservers; i++)
		server_kill(servers[i]);
	server_kill(&broker);
	if (opts != NULL && opts->at_kill != NULL)
		opts->at_kill();
}

/* Recorder --------------------------------------------------------------- */

#define FREE_JSON "{\"owner\":null,\"token\":null,\"waiting\":0,\"queue\":[]}"

static pthread_mutex_t rec_mu = PTHREAD_MUTEX_INITIALIZER;
static struct chaos_msg *recs;
static size_t nrecs, caprecs;
static FILE *reclog;
static MQTTAsync rec_mq;
static MQTTAsync_connectOptions rec_cn = MQTTAsync_connectOptions_initializer5;
static int rec_subscribed, rec_down, rec_connecting, rec_disconnected;

/* Keep one received (or implied) message; takes json. */
static void
rec_append(long long at, int retained, const char *topic, size_t tl,
    cJSON *json, const char *payload, int payloadlen)
{
	struct chaos_msg r = {.at = at, .retained = retained, .json = json};

	r.topic = malloc(tl + 1);
	if (r.topic != NULL) {
		memcpy(r.topic, topic, tl);
		r.topic[tl] = '\0';
	}
	pthread_mutex_lock(&rec_mu);
	if (nrecs == caprecs) {
		size_t cap = caprecs ? caprecs * 2 : 8192;
		struct chaos_msg *v = realloc(recs, cap * sizeof(*v));

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
	long long at = tutil_wall_ms();
	char t[256];
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
	if (opts->rec_hook != NULL) {
		snprintf(t, sizeof(t), "%.*s", (int)tl, topic);
		opts->rec_hook(t, m, at);
	}
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
	pthread_mutex_lock(&rec_mu);
	rec_subscribed++;
	pthread_mutex_unlock(&rec_mu);
}

static void
rec_connected(void *ctx, char *cause)
{
	char *filters[4] = {(char *)CHAOS_PREFIX "/+/owner",
	    (char *)CHAOS_PREFIX "/_coordinator/status",
	    (char *)CHAOS_PREFIX "/_clients/+/events", NULL};
	int qos[4] = {1, 1, 1, 1}, nf = 3;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;

	(void)ctx;
	(void)cause;
	if (opts->rec_filter != NULL)
		filters[nf++] = (char *)opts->rec_filter;
	pthread_mutex_lock(&rec_mu);
	rec_down = 0;
	rec_connecting = 0;
	pthread_mutex_unlock(&rec_mu);
	/*
	 * A free lock has no retained owner message, so a lock freed while
	 * the recorder was cut off sends nothing when it subscribes again.
	 * Every lock is taken as free from here (a retained copy, like the
	 * ones the subscription brings); the retained messages that follow
	 * correct the held ones.  The broker sends nothing before the
	 * subscription, so none can be overtaken.
	 */
	for (int l = 0; l < opts->locks; l++) {
		char t[64];
		int n = snprintf(t, sizeof(t), CHAOS_PREFIX "/L%d/owner", l);

		rec_append(tutil_wall_ms(), 1, t, (size_t)n,
		    cJSON_Parse(FREE_JSON), "(subscribing)", 13);
	}
	ro.onSuccess5 = rec_subscribed_cb;
	(void)MQTTAsync_subscribeMany(rec_mq, nf, filters, qos, &ro);
}

static void
rec_lost(void *ctx, char *cause)
{
	(void)ctx;
	(void)cause;
	pthread_mutex_lock(&rec_mu);
	rec_down = 1;
	pthread_mutex_unlock(&rec_mu);
}

static void
rec_connect_failed(void *ctx, MQTTAsync_failureData5 *d)
{
	(void)ctx;
	(void)d;
	pthread_mutex_lock(&rec_mu);
	rec_down = 1;
	rec_connecting = 0;
	pthread_mutex_unlock(&rec_mu);
}

void
chaos_rec_start(void)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	long long end = tutil_mono_ms() + 10000;
	int ok = 0;

	reclog = fopen(chaos_path("recorder.log"), "a");
	if (reclog == NULL)
		chaos_die("open recorder.log: %s", strerror(errno));
	co.MQTTVersion = MQTTVERSION_5;
	co.maxBufferedMessages = 100000;
	/* What it publishes waits for the broker while it restarts, in
	 * order. */
	co.sendWhileDisconnected = 1;
	if (MQTTAsync_createWithOptions(&rec_mq, uri, CHAOS_REC_ID,
		MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) != MQTTASYNC_SUCCESS ||
	    MQTTAsync_setCallbacks(rec_mq, NULL, rec_lost, rec_message, NULL) !=
		MQTTASYNC_SUCCESS ||
	    MQTTAsync_setConnected(rec_mq, NULL, rec_connected) !=
		MQTTASYNC_SUCCESS)
		chaos_die("recorder: cannot create the client");
	rec_cn.keepAliveInterval = 10;
	rec_cn.cleanstart = 1;
	rec_cn.connectTimeout = 2;
	/* Paho's own reconnect waits up to seconds: chaos_rec_tick() does. */
	rec_cn.automaticReconnect = 0;
	rec_cn.onFailure5 = rec_connect_failed;
	rec_connecting = 1;
	if (MQTTAsync_connect(rec_mq, &rec_cn) != MQTTASYNC_SUCCESS)
		chaos_die("recorder: cannot connect");
	while (!ok && tutil_mono_ms() < end) {
		pthread_mutex_lock(&rec_mu);
		ok = rec_subscribed > 0;
		pthread_mutex_unlock(&rec_mu);
		tutil_nap_ms(10);
	}
	if (!ok)
		chaos_die("recorder: not subscribed within 10 s");
}

void
chaos_rec_tick(long long now)
{
	static long long next;
	int go;

	pthread_mutex_lock(&rec_mu);
	go = rec_down && !rec_connecting && now >= next;
	if (go)
		rec_connecting = 1;
	pthread_mutex_unlock(&rec_mu);
	if (!go)
		return;
	next = now + REC_RETRY_MS;
	if (MQTTAsync_connect(rec_mq, &rec_cn) != MQTTASYNC_SUCCESS) {
		pthread_mutex_lock(&rec_mu);
		rec_connecting = 0;
		pthread_mutex_unlock(&rec_mu);
	}
}

void
chaos_rec_publish(const char *topic, const char *payload, const char *reply_to,
    const char *corr)
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
		p.value.data.data = (char *)reply_to;
		p.value.data.len = (int)strlen(reply_to);
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

void
chaos_rec_stop(void)
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
	reclog = NULL;
}

size_t
chaos_rec_count(void)
{
	size_t n;

	pthread_mutex_lock(&rec_mu);
	n = nrecs;
	pthread_mutex_unlock(&rec_mu);
	return n;
}

/* A copy under the lock: the array may move while the recorder appends. */
struct chaos_msg
chaos_rec_get(size_t i)
{
	struct chaos_msg m;

	pthread_mutex_lock(&rec_mu);
	m = recs[i];
	pthread_mutex_unlock(&rec_mu);
	return m;
}

int
chaos_owner_lock(const char *topic)
{
	int l;
	char tail[16];

	if (sscanf(topic, CHAOS_PREFIX "/L%d/%15s", &l, tail) != 2 ||
	    strcmp(tail, "owner") != 0 || l < 0 || l >= opts->locks)
		return -1;
	return l;
}

int
chaos_status_at(long long t, char *error, size_t errsz)
{
	size_t n = chaos_rec_count();
	int st = -1;

	if (error != NULL)
		error[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		struct chaos_msg m = chaos_rec_get(i);
		const char *s;

		if (m.at > t)
			break;
		if (m.json == NULL ||
		    strcmp(m.topic, CHAOS_PREFIX "/_coordinator/status") != 0 ||
		    (s = chaos_jstr(m.json, "state")) == NULL)
			continue;
		st = strcmp(s, "online") == 0;
		if (error != NULL)
			snprintf(error, errsz, "%s",
			    chaos_jstr(m.json, "error") != NULL
				? chaos_jstr(m.json, "error")
				: "");
	}
	return st;
}

void
chaos_latest_owners(const cJSON **latest)
{
	static const cJSON **cur;
	static size_t seen;
	size_t n = chaos_rec_count();

	if (cur == NULL) {
		cur = calloc((size_t)opts->locks, sizeof(*cur));
		if (cur == NULL)
			chaos_die("out of memory");
	}
	/* Only what arrived since the last call. */
	for (; seen < n; seen++) {
		struct chaos_msg m = chaos_rec_get(seen);
		int l = chaos_owner_lock(m.topic);

		if (l >= 0 && m.json != NULL)
			cur[l] = m.json;
	}
	for (int l = 0; l < opts->locks; l++)
		latest[l] = cur[l];
}

struct chaos_client *
chaos_holder(const cJSON *owner_msg)
{
	const cJSON *o = owner_msg == NULL
	    ? NULL
	    : cJSON_GetObjectItemCaseSensitive(owner_msg, "owner");

	return cJSON_IsObject(o) ? chaos_client_by_id(chaos_jstr(o, "client"))
				 : NULL;
}

int
chaos_all_free(const cJSON *const *latest)
{
	for (int l = 0; l < opts->locks; l++)
		if (latest[l] != NULL &&
		    (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(latest[l],
			 "owner")) ||
			chaos_jint(latest[l], "waiting") > 0))
			return 0;
	return 1;
}

/* Lateness ---------------------------------------------------------------- */

static pthread_t late_thread;
static pthread_mutex_t late_mu = PTHREAD_MUTEX_INITIALIZER;
static int late_on;
static long long late_since, late_worst;

/* Sleeps of LATE_NAP_MS again and again: how late does the machine wake
 * us? */
static void *
late_main(void *arg)
{
	int on = 1;

	(void)arg;
	while (on) {
		long long before = tutil_mono_ms(), late;

		tutil_nap_ms(LATE_NAP_MS);
		late = tutil_mono_ms() - before - LATE_NAP_MS;
		pthread_mutex_lock(&late_mu);
		if (tutil_wall_ms() >= late_since && late > late_worst)
			late_worst = late;
		on = late_on;
		pthread_mutex_unlock(&late_mu);
	}
	return NULL;
}

void
chaos_late_start(long long from)
{
	late_since = from;
	late_on = 1;
	if (pthread_create(&late_thread, NULL, late_main, NULL) != 0)
		chaos_die("pthread_create failed");
}

void
chaos_late_from(long long from)
{
	pthread_mutex_lock(&late_mu);
	late_since = from;
	pthread_mutex_unlock(&late_mu);
}

long long
chaos_late_stop(void)
{
	pthread_mutex_lock(&late_mu);
	late_on = 0;
	pthread_mutex_unlock(&late_mu);
	pthread_join(late_thread, NULL);
	return late_worst;
}

/* Checks ------------------------------------------------------------------ */

void
chaos_problem(int check, const char *fmt, ...)
{
	va_list ap;

	if (nproblems[check]++ < 10) {
		fprintf(stderr,
		    "CHECK FAILED (%s): ", opts->check_names[check]);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
}

/* token -> lock and client, from every source. */
struct grant {
	int lock; /* -1: unknown token */
	char client[32];
	long long at; /* when first dated by a source, 0: not */
};

static struct grant *grants;
static long long ngrants_cap;

void
chaos_grant_see(long long token, int lock, const char *client,
    const char *where, long long at)
{
	struct grant *g;

	if (token <= 0 || token > 100000000) {
		chaos_problem(CHAOS_C_ONE_GRANT, "%s: token %lld out of range",
		    where, token);
		return;
	}
	if (token >= ngrants_cap) {
		long long cap = ngrants_cap ? ngrants_cap : 4096;

		while (cap <= token)
			cap *= 2;
		grants = realloc(grants, (size_t)cap * sizeof(*grants));
		if (grants == NULL)
			chaos_die("out of memory");
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
		chaos_problem(CHAOS_C_ONE_GRANT,
		    "token %lld is L%d/%s, but %s says L%d/%s", token, g->lock,
		    g->client, where, lock, client != NULL ? client : "?");
	}
	if (at > 0 && g->at == 0)
		g->at = at;
}

int
chaos_grant_known(long long token, int lock, const char *client)
{
	return token > 0 && token < ngrants_cap && grants[token].lock == lock &&
	    strcmp(grants[token].client, client) == 0;
}

int
chaos_grant_seen(long long token)
{
	return token > 0 && token < ngrants_cap && grants[token].lock >= 0;
}

int
chaos_grants_count(void)
{
	int n = 0;

	for (long long t = 1; t < ngrants_cap; t++)
		if (grants[t].lock >= 0)
			n++;
	return n;
}

int
chaos_grant_line(const char *line, int *lock, char *client, long long *token)
{
	const char *p = strstr(line, " grant lock=");
	char name[64];

	if (p == NULL ||
	    sscanf(p, " grant lock=%63s client=%63s token=%lld", name, client,
		token) != 3)
		return 0;
	if (sscanf(name, "L%d", lock) != 1 || *lock < 0 ||
	    *lock >= opts->locks) {
		*lock = -1;
		return -1;
	}
	return 1;
}

void
chaos_check_recorded(void (*on_free)(const struct chaos_msg *, int),
    void (*on_granted)(const struct chaos_msg *, int, const char *, long long),
    int *owner_msgs, int *events)
{
	long long *last = calloc((size_t)opts->locks, sizeof(*last));
	size_t n = chaos_rec_count();

	if (last == NULL)
		chaos_die("out of memory");
	for (size_t i = 0; i < n; i++) {
		struct chaos_msg m = chaos_rec_get(i);
		int l = chaos_owner_lock(m.topic);

		if (m.json == NULL)
			continue;
		if (l >= 0) {
			const cJSON *owner =
			    cJSON_GetObjectItemCaseSensitive(m.json, "owner");
			long long t = chaos_jint(m.json, "token");

			(*owner_msgs)++;
			if (!cJSON_IsObject(owner)) {
				if (on_free != NULL)
					on_free(&m, l);
				continue;
			}
			chaos_grant_see(t, l, chaos_jstr(owner, "client"),
			    "an owner message", 0);
			if (t < last[l])
				chaos_problem(CHAOS_C_OWNER_ORDER,
				    "L%d: owner message at %lld shows token "
				    "%lld after %lld",
				    l, m.at, t, last[l]);
			else
				last[l] = t;
			continue;
		}
		if (strncmp(m.topic, CHAOS_PREFIX "/_clients/", 15) == 0) {
			const char *ev = chaos_jstr(m.json, "event");
			const char *lock = chaos_jstr(m.json, "lock");
			char client[64];
			long long t = chaos_jint(m.json, "token");
			int ll;

			(*events)++;
			if (ev == NULL || strcmp(ev, "granted") != 0 ||
			    lock == NULL || sscanf(lock, "L%d", &ll) != 1 ||
			    sscanf(m.topic, CHAOS_PREFIX "/_clients/%63[^/]",
				client) != 1)
				continue;
			if (on_granted != NULL)
				on_granted(&m, ll, client, t);
			chaos_grant_see(t, ll, client, "a granted event", m.at);
		}
	}
	free(last);
}

void
chaos_check_commands(int *runs, int *accepted, int *rejected)
{
	char *log = tutil_slurp(chaos_path("runs.log"), NULL), *line;
	char *save = NULL;

	for (line = log != NULL ? strtok_r(log, "\n", &save) : NULL;
	     line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char lock[64], client[64];
		long long at, token;
		int l;

		if (sscanf(line, "end %lld %63s %lld %63s", &at, lock, &token,
			client) == 4) {
			struct chaos_client *c = chaos_client_by_id(client);

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
		    !chaos_grant_known(token, l, client))
			chaos_problem(CHAOS_C_FENCING,
			    "a command ran with token %lld for %s/%s, which "
			    "nobody granted",
			    token, lock, client);
	}
	free(log);
	for (int l = 0; l < opts->locks; l++) {
		char name[32];
		long long top = 0;

		snprintf(name, sizeof(name), "res-L%d.log", l);
		log = tutil_slurp(chaos_path(name), NULL);
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
				chaos_problem(CHAOS_C_FENCING,
				    "L%d: written with token %lld after %lld",
				    l, token, top);
			top = token;
			if (!chaos_grant_known(token, l, client))
				chaos_problem(CHAOS_C_FENCING,
				    "L%d: written with token %lld by %s, which "
				    "nobody granted",
				    l, token, client);
		}
		free(log);
	}
	log = tutil_slurp(chaos_path("rejects.log"), NULL);
	save = NULL;
	for (line = log != NULL ? strtok_r(log, "\n", &save) : NULL;
	     line != NULL; line = strtok_r(NULL, "\n", &save))
		(*rejected)++;
	free(log);
}

void
chaos_check_cli_exits(void)
{
	for (int i = 0; i < nclients; i++) {
		struct chaos_client *c = &clients[i];
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
			chaos_problem(CHAOS_C_CLI_EXIT,
			    "mqlock %s exited 0, but L%d went to %s (token "
			    "%lld) at %lld, before its command (token %lld) "
			    "ended at %lld",
			    c->id, c->lock, grants[t].client, t, grants[t].at,
			    c->cmd_token, c->cmd_end);
	}
}

static void
server_check(const struct chaos_server *s)
{
	if (s->crashes > 0)
		chaos_problem(CHAOS_C_NO_CRASH, "%s; %d such exits", s->crash,
		    s->crashes);
}

void
chaos_check_exits(int exits[5])
{
	for (int i = 0; i < nservers; i++)
		server_check(servers[i]);
	server_check(&broker);
	for (int i = 0; i < nclients; i++) {
		struct chaos_client *c = &clients[i];
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
			chaos_problem(CHAOS_C_NO_CRASH,
			    "mqlock %s ended with %s %d (see slot-%02d.out)",
			    c->id, WIFSIGNALED(st) ? "signal" : "status",
			    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
			    c->slot);
	}
}

static void
sanitizer_in(const char *name)
{
	char *s = tutil_slurp(chaos_path(name), NULL);

	if (s != NULL &&
	    (strstr(s, "Sanitizer") != NULL ||
		strstr(s, "runtime error:") != NULL))
		chaos_problem(CHAOS_C_NO_CRASH, "%s has a sanitizer report",
		    name);
	free(s);
}

void
chaos_check_sanitizer(const char *name)
{
	char slot[32];

	if (name != NULL) {
		sanitizer_in(name);
		return;
	}
	for (int i = 0; i < opts->workers; i++) {
		snprintf(slot, sizeof(slot), "slot-%02d.out", i);
		sanitizer_in(slot);
	}
}

int
chaos_verdict(const int *order, int n, int width)
{
	int failed = 0;

	for (int i = 0; i < n; i++) {
		int c = order[i];

		printf("check: %-*s %s", width, opts->check_names[c],
		    nproblems[c] ? "FAILED" : "ok");
		if (nproblems[c])
			printf(" (%d)", nproblems[c]);
		printf("\n");
		failed += nproblems[c];
	}
	if (failed > 0) {
		printf("%s: FAILED; directory kept: %s\n", opts->name, dir);
		return 1;
	}
	printf("%s: passed\n", opts->name);
	if (getenv("CHAOS_KEEP") != NULL) {
		printf("%s: directory kept: %s\n", opts->name, dir);
		return 0;
	}
	if (faultlog != NULL)
		fclose(faultlog);
	faultlog = NULL;
	/* Only ever the directory chaos_init() made. */
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
