/*
 * sec.c: see sec.h.
 *
 * Messages arrive on Paho's thread and are appended to a per-client log
 * under a mutex; waiters sleep on a condition variable (monotonic clock)
 * until a matching message is there or their deadline passes.
 */
#include "sec.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <MQTTAsync.h>

#define S_MAX_PAIRS 16
#define S_ROLES 5
#define S_STOP_MS 60000 /* mqlockd under a memory checker stops slowly */
#define S_START_MS 60000

struct s_client {
	struct s_world *w;
	MQTTAsync mq;
	char id[256];
	char reply[300];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct h_msg *head;
	struct h_msg *tail;
	int count;
	struct s_client *next;
};

struct s_world {
	struct h_world *hw;
	char dir[PATH_MAX];  /* setup.sh's output */
	char conf[PATH_MAX]; /* the rewritten copy mosquitto runs with */
	int port;
	int ws_port;
	char uri[64];
	char flags[512];
	char pw[S_ROLES][128];
	struct h_proc *broker;
	struct h_proc *coord;
	long coord_pid;
	struct s_client *clients;
	struct s_client *mon;
	int nholders;
};

/* One pending Paho operation; heap-allocated so a late callback is safe. */
struct s_op {
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int done;
	int rc;
	int reason;
};

static const char *const roles[S_ROLES] = {"coordinator", "editors", "services",
    "monitors", "admins"};

static void s_fail_at(const char *, int, const char *, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void
s_fail_at(const char *file, int line, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	print_error("%s\n", buf);
	_fail(file, line);
	abort(); /* _fail() does not return */
}

#define s_fail(...) s_fail_at(__FILE__, __LINE__, __VA_ARGS__)

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
abs_deadline(struct timespec *ts, long long end_mono)
{
	ts->tv_sec = (time_t)(end_mono / 1000);
	ts->tv_nsec = (long)(end_mono % 1000) * 1000000L;
}

static char *
dup_bytes(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		return NULL;
	if (n > 0)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Files ---------------------------------------------------------------- */

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long size;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)size + 1)) != NULL) {
		*len = fread(buf, 1, (size_t)size, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

static int
file_contains(const char *path, const char *needle)
{
	size_t len;
	char *s = slurp(path, &len);
	int found = s != NULL && strstr(s, needle) != NULL;

	free(s);
	return found;
}

/* Ports ------------------------------------------------------------------ */

static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	if (fd == -1)
		s_fail("socket: %s", strerror(errno));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) == -1)
		s_fail("bind/getsockname: %s", strerror(errno));
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* /proc ------------------------------------------------------------------ */

long
s_find_pid(const char *needle)
{
	char path[64], cmd[8192];
	struct dirent *e;
	DIR *d = opendir("/proc");
	long pid, found = -1;
	size_t n, i;
	FILE *f;

	if (d == NULL)
		s_fail("opendir /proc: %s", strerror(errno));
	while (found < 0 && (e = readdir(d)) != NULL) {
		if (strspn(e->d_name, "0123456789") != strlen(e->d_name))
			continue;
		pid = strtol(e->d_name, NULL, 10);
		snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		n = fread(cmd, 1, sizeof(cmd) - 1, f);
		fclose(f);
		for (i = 0; i < n; i++)
			if (cmd[i] == '\0')
				cmd[i] = ' ';
		cmd[n] = '\0';
		if (strstr(cmd, needle) != NULL &&
		    s_proc_field(pid, 1) == (long)getpid())
			found = pid;
	}
	closedir(d);
	return found;
}

long
s_proc_field(long pid, int field)
{
	char path[64], buf[4096], *p;
	size_t n;
	FILE *f;
	int i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields count from 0 after "pid (comm)"; comm may hold spaces. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	p++;
	for (i = 0; i <= field; i++) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return -1;
		if (i == field)
			break;
		p += strcspn(p, " ");
	}
	if (field == 0)
		return (unsigned char)*p; /* the state letter */
	return strtol(p, NULL, 10);
}

long
s_rss_kb(long pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

int
s_stop_child(long pid, int sig, int ms)
{
	long long end = mono_ms() + ms;

	if (kill((pid_t)pid, sig) == -1)
		return -1;
	/*
	 * The harness reaps its children only when asked; until then an
	 * exited one stays a zombie whose wait status /proc still shows.
	 */
	while (s_proc_field(pid, 0) != 'Z') {
		if (mono_ms() >= end)
			return -1;
		nap_ms(20);
	}
	return (int)s_proc_field(pid, S_STAT_EXIT_CODE);
}

/* Paho operations ------------------------------------------------------ */

static struct s_op *
op_new(struct s_client *c)
{
	struct s_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		s_fail("out of memory");
	op->mu = &c->mu;
	op->cv = &c->cv;
	return op;
}

static void
on_success(void *ctx, MQTTAsync_successData5 *r)
{
	struct s_op *op = ctx;

	pthread_mutex_lock(op->mu);
	op->reason = r != NULL ? (int)r->reasonCode : 0;
	op->done = 1;
	pthread_cond_broadcast(op->cv);
	pthread_mutex_unlock(op->mu);
}

static void
on_failure(void *ctx, MQTTAsync_failureData5 *r)
{
	struct s_op *op = ctx;

	pthread_mutex_lock(op->mu);
	op->rc = r != NULL && r->code != 0 ? r->code : -1;
	op->reason = r != NULL ? (int)r->reasonCode : 0;
	op->done = 1;
	pthread_cond_broadcast(op->cv);
	pthread_mutex_unlock(op->mu);
}

/*
 * Paho's receive thread adds a new socket to its poll set only when the
 * current poll returns, up to a second later when the other connections
 * are quiet; a PUBACK to an established client wakes it.  The harness's
 * own client on its anonymous broker serves: a denied publish here would
 * cost the kicking client its connection.
 */
static void
kick(struct s_world *w)
{
	h_pub(h_ctl(w->hw), "h/kick", "k");
}

/*
 * Waits for op up to ms.  Returns 0 when done (op freed; *rc and *reason
 * set), -1 on timeout (op stays allocated for its late callback).
 */
static int
op_wait(struct s_world *w, struct s_op *op, int ms, int *rc, int *reason)
{
	long long end = mono_ms() + ms, step;
	struct timespec ts;

	pthread_mutex_lock(op->mu);
	while (!op->done) {
		step = mono_ms() + 20;
		if (step > end)
			step = end;
		abs_deadline(&ts, step);
		if (pthread_cond_timedwait(op->cv, op->mu, &ts) == ETIMEDOUT) {
			if (mono_ms() >= end)
				break;
			/* Without the lock: kick() may fail the test. */
			pthread_mutex_unlock(op->mu);
			kick(w);
			pthread_mutex_lock(op->mu);
		}
	}
	if (!op->done) {
		pthread_mutex_unlock(op->mu);
		return -1;
	}
	*rc = op->rc;
	*reason = op->reason;
	pthread_mutex_unlock(op->mu);
	free(op);
	return 0;
}

static int
on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct s_client *c = ctx;
	struct h_msg *msg = calloc(1, sizeof(*msg));
	size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);

	if (msg != NULL) {
		msg->topic = dup_bytes(topic, tl);
		msg->len = m->payloadlen;
		msg->payload = dup_bytes(m->payload, (size_t)m->payloadlen);
		msg->retained = m->retained;
		msg->at_ms = h_now_ms();
		if (msg->payload != NULL)
			msg->json = cJSON_ParseWithLength(msg->payload,
			    (size_t)msg->len);
		pthread_mutex_lock(&c->mu);
		if (c->tail != NULL)
			c->tail->next = msg;
		else
			c->head = msg;
		c->tail = msg;
		c->count++;
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

static void
on_lost(void *ctx, char *cause)
{
	(void)ctx;
	(void)cause;
}

/* A client object with its Paho handle; not connected yet. */
static struct s_client *
client_new(struct s_world *w, const char *id)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	pthread_condattr_t ca;
	struct s_client *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL)
		s_fail("out of memory");
	c->w = w;
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->reply, sizeof(c->reply), "replies/%s/r", id);
	pthread_mutex_init(&c->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->next = w->clients;
	w->clients = c;
	co.MQTTVersion = MQTTVERSION_5;
	co.maxBufferedMessages = 100000;
	rc = MQTTAsync_createWithOptions(&c->mq, w->uri, id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	if (rc != MQTTASYNC_SUCCESS)
		s_fail("%s: MQTTAsync_createWithOptions: %d", id, rc);
	rc = MQTTAsync_setCallbacks(c->mq, c, on_lost, on_message, NULL);
	if (rc != MQTTASYNC_SUCCESS)
		s_fail("%s: MQTTAsync_setCallbacks: %d", id, rc);
	return c;
}

/* Connects c; returns as s_try_connect() does. */
static int
client_connect(struct s_client *c, const char *user, const char *password,
    const char *cafile)
{
	MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions so = MQTTAsync_SSLOptions_initializer;
	struct s_op *op = op_new(c);
	int rc, reason;

	so.trustStore = cafile;
	so.enableServerCertAuth = 1;
	so.verify = 1;
	cn.ssl = &so;
	cn.username = user;
	cn.password = password;
	cn.keepAliveInterval = 30;
	cn.cleanstart = 1;
	cn.connectTimeout = 10;
	cn.maxInflight = 50;
	cn.onSuccess5 = on_success;
	cn.onFailure5 = on_failure;
	cn.context = op;
	rc = MQTTAsync_connect(c->mq, &cn);
	if (rc != MQTTASYNC_SUCCESS)
		s_fail("%s: MQTTAsync_connect: %d", c->id, rc);
	if (op_wait(c->w, op, H_WAIT_MS, &rc, &reason) != 0)
		s_fail("%s: no answer to CONNECT within %d ms", c->id,
		    H_WAIT_MS);
	if (rc == 0 && reason < 0x80)
		return 0;
	/* A refusing CONNACK: Paho puts its reason code in the code. */
	if (reason >= 0x80)
		return reason;
	return rc >= 0x80 ? rc : -1;
}

/* World ---------------------------------------------------------------- */

struct h_world *
s_h(struct s_world *w)
{
	return w->hw;
}

const char *
s_uri(const struct s_world *w)
{
	return w->uri;
}

int
s_port(const struct s_world *w)
{
	return w->port;
}

const char *
s_file(const struct s_world *w, const char *name)
{
	return h_fmt("%s/%s", w->dir, name);
}

const char *
s_password(const struct s_world *w, const char *user)
{
	for (int i = 0; i < S_ROLES; i++)
		if (strcmp(roles[i], user) == 0)
			return w->pw[i];
	s_fail("no such user: %s", user);
}

struct s_client *
s_mon(struct s_world *w)
{
	return w->mon;
}

void
s_pass(struct s_world *w)
{
	h_pass(w->hw);
}

/* setup.sh into w->dir, and the passwords it generated. */
static void
run_setup(struct s_world *w)
{
	char *argv[4];
	struct h_proc *p;
	size_t len;
	char *s;
	int i;

	snprintf(w->dir, sizeof(w->dir), "%s", h_path(w->hw, "broker"));
	argv[0] = (char *)"/bin/bash";
	argv[1] = (char *)MQLOCK_SETUP_SH;
	argv[2] = w->dir;
	argv[3] = NULL;
	p = h_spawn(w->hw, argv, "setup.out");
	if (h_proc_wait(p, 60000) != 0)
		s_fail("setup.sh failed; see %s", h_path(w->hw, "setup.out"));
	for (i = 0; i < S_ROLES; i++) {
		s = slurp(s_file(w, h_fmt("passwords/%s", roles[i])), &len);
		if (s == NULL || len < 2 || len >= sizeof(w->pw[i]))
			s_fail("setup.sh wrote no usable password for %s",
			    roles[i]);
		s[strcspn(s, "\n")] = '\0';
		snprintf(w->pw[i], sizeof(w->pw[i]), "%s", s);
		free(s);
	}
}

/*
 * The shipped config with the listeners on w->port and w->ws_port,
 * persistence in the world's directory, and "user root" for root.  Every
 * other line is copied as it is.
 */
static void
rewrite_conf(struct s_world *w)
{
	char path[PATH_MAX + 32];
	char *text, *line, *next;
	size_t len;
	FILE *out;
	int tls = 0, ws = 0, pers = 0;

	snprintf(path, sizeof(path), "%s/mosquitto.conf", w->dir);
	if ((text = slurp(path, &len)) == NULL)
		s_fail("setup.sh wrote no %s", path);
	snprintf(w->conf, sizeof(w->conf), "%s",
	    h_path(w->hw, "mosquitto-production.conf"));
	if ((out = fopen(w->conf, "w")) == NULL)
		s_fail("write %s: %s", w->conf, strerror(errno));
	for (line = text; *line != '\0'; line = next) {
		next = line + strcspn(line, "\n");
		if (*next == '\n')
			*next++ = '\0';
		if (strcmp(line, "listener 8883") == 0) {
			fprintf(out, "listener %d 127.0.0.1\n", w->port);
			tls++;
		} else if (strcmp(line, "listener 8080 127.0.0.1") == 0) {
			fprintf(out, "listener %d 127.0.0.1\n", w->ws_port);
			ws++;
		} else if (strncmp(line, "persistence_location ", 21) == 0) {
			fprintf(out, "persistence_location %s/\n",
			    h_dir(w->hw));
			pers++;
		} else
			fprintf(out, "%s\n", line);
	}
	if (geteuid() == 0)
		fprintf(out, "user root\n");
	free(text);
	if (fclose(out) != 0)
		s_fail("write %s: %s", w->conf, strerror(errno));
	if (tls != 1 || ws != 1 || pers != 1)
		s_fail("the production mosquitto.conf changed shape: expected "
		       "one 'listener 8883', one 'listener 8080 127.0.0.1' and "
		       "one persistence_location line (found %d, %d, %d)",
		    tls, ws, pers);
}

/* Starts mosquitto; 0, or -1 if it died at once (a port was taken). */
static int
broker_try(struct s_world *w)
{
	char *argv[4], log[PATH_MAX];
	long long end;
	FILE *f;

	snprintf(log, sizeof(log), "%s",
	    h_path(w->hw, "production-mosquitto.log"));
	w->port = free_port();
	do
		w->ws_port = free_port();
	while (w->ws_port == w->port);
	snprintf(w->uri, sizeof(w->uri), "ssl://127.0.0.1:%d", w->port);
	rewrite_conf(w);
	argv[0] = (char *)MOSQUITTO_BIN;
	argv[1] = (char *)"-c";
	argv[2] = w->conf;
	argv[3] = NULL;
	/* A new log per attempt: an earlier one may hold an "Error". */
	if ((f = fopen(log, "w")) != NULL)
		fclose(f);
	w->broker = h_spawn(w->hw, argv, "production-mosquitto.log");
	/* It says "running" once every listener is open. */
	end = mono_ms() + H_WAIT_MS;
	while (!file_contains(log, " running")) {
		if (file_contains(log, "Error"))
			return -1; /* most likely a port was taken */
		if (mono_ms() >= end)
			s_fail("mosquitto did not start on ports %d and %d; "
			       "see %s",
			    w->port, w->ws_port, log);
		nap_ms(10);
	}
	return 0;
}

/* Appends the words of MQLOCK_IT_WRAPPER (if set) to argv at *n. */
static void
add_wrapper(char **argv, int *n, char *buf, size_t size)
{
	const char *wrapper = getenv("MQLOCK_IT_WRAPPER");
	char *tok;

	if (wrapper == NULL || wrapper[0] == '\0')
		return;
	snprintf(buf, size, "%s", wrapper);
	for (tok = strtok(buf, " "); tok != NULL && *n < 40;
	     tok = strtok(NULL, " "))
		argv[(*n)++] = tok;
}

static void
coord_start(struct s_world *w)
{
	char *argv[96];
	char wrap[1024], flags[sizeof(w->flags)];
	char db[PATH_MAX + 16], ca[PATH_MAX + 16], pwf[PATH_MAX + 32];
	long long end;
	char *tok;
	int n = 0;

	snprintf(db, sizeof(db), "%s/mqlock.db", h_dir(w->hw));
	snprintf(ca, sizeof(ca), "%s/ca.crt", w->dir);
	snprintf(pwf, sizeof(pwf), "%s/passwords/coordinator", w->dir);
	add_wrapper(argv, &n, wrap, sizeof(wrap));
	argv[n++] = (char *)MQLOCKD_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = w->uri;
	argv[n++] = (char *)"--cafile";
	argv[n++] = ca;
	argv[n++] = (char *)"--username";
	argv[n++] = (char *)"coordinator";
	argv[n++] = (char *)"--password-file";
	argv[n++] = pwf;
	argv[n++] = (char *)"--db";
	argv[n++] = db;
	argv[n++] = (char *)"--log-level";
	argv[n++] = (char *)"debug";
	snprintf(flags, sizeof(flags), "%s", w->flags);
	for (tok = strtok(flags, " "); tok != NULL && n < 94;
	     tok = strtok(NULL, " "))
		argv[n++] = tok;
	argv[n] = NULL;
	w->coord = h_spawn(w->hw, argv, "production-mqlockd.log");
	/* Found once the child has called exec. */
	end = mono_ms() + H_WAIT_MS;
	while ((w->coord_pid = s_find_pid(db)) < 0) {
		if (mono_ms() >= end)
			s_fail("mqlockd (%s) not found in /proc", db);
		nap_ms(10);
	}
	s_expect(w->mon, H_PREFIX "/_coordinator/status", S_START_MS, "state",
	    "online");
}

struct s_world *
s_world_start(void **state, const char *flags)
{
	struct s_world *w = calloc(1, sizeof(*w));
	void *hstate = NULL;
	int tries;

	if (w == NULL)
		s_fail("out of memory");
	*state = w;
	w->hw = h_world_new(&hstate, NULL);
	snprintf(w->flags, sizeof(w->flags), "%s", flags != NULL ? flags : "");
	run_setup(w);
	for (tries = 0; broker_try(w) != 0; tries++) {
		if (tries == 5)
			s_fail("mosquitto did not start; see %s",
			    h_path(w->hw, "production-mosquitto.log"));
		h_proc_kill(w->broker, SIGKILL);
	}
	w->mon = s_connect(w, "monitors", "s-monitor");
	s_sub(w->mon, H_PREFIX "/_coordinator/status");
	s_sub(w->mon, H_PREFIX "/+/owner");
	coord_start(w);
	return w;
}

static void
client_free(struct s_client *c)
{
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;
	struct h_msg *m, *next;

	if (c->mq != NULL) {
		d.timeout = 1000;
		if (MQTTAsync_isConnected(c->mq))
			MQTTAsync_disconnect(c->mq, &d);
		MQTTAsync_destroy(&c->mq);
	}
	for (m = c->head; m != NULL; m = next) {
		next = m->next;
		free(m->topic);
		free(m->payload);
		free(m->corr);
		cJSON_Delete(m->json);
		free(m);
	}
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

int
s_teardown(void **state)
{
	struct s_world *w = *state;
	struct s_client *c, *next;
	int rc = 0, status;

	if (w == NULL)
		return 0;
	if (w->hw == NULL) {
		free(w);
		*state = NULL;
		return 0;
	}
	for (c = w->clients; c != NULL; c = next) {
		next = c->next;
		client_free(c);
	}
	w->clients = NULL;
	w->mon = NULL;
	/*
	 * A clean stop on SIGTERM, exit status 0: with MQLOCK_IT_WRAPPER set
	 * to a memory checker, that status is also the checker's verdict.
	 */
	if (w->coord_pid > 0 && s_proc_field(w->coord_pid, 0) != 'Z') {
		status = s_stop_child(w->coord_pid, SIGTERM, S_STOP_MS);
		if (status != 0) {
			fprintf(stderr,
			    "mqlockd did not stop cleanly on SIGTERM: wait "
			    "status 0x%x (see production-mqlockd.log)\n",
			    status);
			rc = -1;
		}
	}
	*state = w->hw;
	h_teardown(state);
	free(w);
	*state = NULL;
	return rc;
}

/* Clients -------------------------------------------------------------- */

struct s_client *
s_connect(struct s_world *w, const char *user, const char *id)
{
	struct s_client *c = client_new(w, id);
	int rc =
	    client_connect(c, user, s_password(w, user), s_file(w, "ca.crt"));

	if (rc != 0)
		s_fail("%s: %s could not connect to %s: %d", id, user, w->uri,
		    rc);
	return c;
}

int
s_try_connect(struct s_world *w, const char *user, const char *password,
    const char *id, const char *cafile)
{
	struct s_client *c = client_new(w, id);
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;
	int rc = client_connect(c, user, password, cafile);

	if (rc == 0) {
		d.timeout = 1000;
		MQTTAsync_disconnect(c->mq, &d);
	}
	return rc;
}

const char *
s_id(const struct s_client *c)
{
	return c->id;
}

const char *
s_reply_topic(const struct s_client *c)
{
	return c->reply;
}

void
s_sub(struct s_client *c, const char *filter)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	struct s_op *op = op_new(c);
	int rc, reason;

	ro.onSuccess5 = on_success;
	ro.onFailure5 = on_failure;
	ro.context = op;
	rc = MQTTAsync_subscribe(c->mq, filter, 1, &ro);
	if (rc != MQTTASYNC_SUCCESS)
		s_fail("%s: subscribe %s: %d", c->id, filter, rc);
	if (op_wait(c->w, op, H_WAIT_MS, &rc, &reason) != 0)
		s_fail("%s: no SUBACK for %s within %d ms", c->id, filter,
		    H_WAIT_MS);
	if (rc != 0 || reason >= 0x80)
		s_fail("%s: subscribe %s refused: %d/0x%x", c->id, filter, rc,
		    reason);
}

int
s_pub(struct s_client *c, const char *topic, const char *payload, int retained,
    const char *resp)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTProperty p;
	struct s_op *op;
	int rc, reason;

	if (resp != NULL) {
		p.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
		p.value.data.data = (char *)(uintptr_t)resp;
		p.value.data.len = (int)strlen(resp);
		if (MQTTProperties_add(&m.properties, &p) != 0)
			s_fail("MQTTProperties_add response topic");
		p.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
		p.value.data.data = (char *)(uintptr_t) "c";
		p.value.data.len = 1;
		if (MQTTProperties_add(&m.properties, &p) != 0)
			s_fail("MQTTProperties_add correlation data");
	}
	m.payload = (void *)(uintptr_t)payload;
	m.payloadlen = (int)strlen(payload);
	m.qos = 1;
	m.retained = retained;
	op = op_new(c);
	ro.onSuccess5 = on_success;
	ro.onFailure5 = on_failure;
	ro.context = op;
	rc = MQTTAsync_sendMessage(c->mq, topic, &m, &ro);
	MQTTProperties_free(&m.properties);
	if (rc != MQTTASYNC_SUCCESS)
		s_fail("%s: publish to %s: %d", c->id, topic, rc);
	if (op_wait(c->w, op, H_WAIT_MS, &rc, &reason) != 0)
		s_fail("%s: no PUBACK for %s within %d ms", c->id, topic,
		    H_WAIT_MS);
	/* Paho reports a refusing PUBACK as a failure with its reason. */
	if (rc != 0 && reason < 0x80)
		s_fail("%s: publish to %s failed: %d", c->id, topic, rc);
	return reason;
}

void
s_request(struct s_client *c, const char *lock, const char *op,
    const char *client, const char *session, const char *extra)
{
	char body[2048];
	int n, reason;

	n = snprintf(body, sizeof(body),
	    "{\"op\":\"%s\",\"client\":\"%s\",\"session\":\"%s\"%s%s}", op,
	    client, session, extra != NULL ? "," : "",
	    extra != NULL ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(body))
		s_fail("s_request: request too long");
	reason =
	    s_pub(c, h_fmt("%s/%s/request", H_PREFIX, lock), body, 0, c->reply);
	if (reason >= 0x80)
		s_fail("%s: request to %s refused by the broker: 0x%x", c->id,
		    lock, reason);
}

/* Matching ------------------------------------------------------------- */

struct s_match {
	int n;
	const char *key[S_MAX_PAIRS];
	const char *val[S_MAX_PAIRS];
};

static int
value_matches(const cJSON *j, const char *want)
{
	cJSON *w;
	int eq;

	if (j == NULL)
		return 0;
	if (want[0] != '#')
		return cJSON_IsString(j) && strcmp(j->valuestring, want) == 0;
	w = cJSON_Parse(want + 1);
	if (w == NULL)
		return 0;
	eq = cJSON_Compare(j, w, 1);
	cJSON_Delete(w);
	return eq;
}

static int
msg_matches(const struct h_msg *m, const char *topic, const struct s_match *mt)
{
	if (strcmp(m->topic, topic) != 0)
		return 0;
	for (int i = 0; i < mt->n; i++)
		if (mt->key[i][0] != '\0' &&
		    !value_matches(h_get(m, mt->key[i]), mt->val[i]))
			return 0;
	return 1;
}

static void
describe(char *buf, size_t size, struct s_client *c, const char *topic)
{
	struct h_msg *m;
	size_t used = 0;
	int n, count = 0;

	buf[0] = '\0';
	for (m = c->head; m != NULL; m = m->next) {
		if (topic != NULL && strcmp(m->topic, topic) != 0)
			continue;
		count++;
		if (used + 200 >= size)
			continue;
		n = snprintf(buf + used, size - used, "  %s%s%s %.*s\n",
		    m->consumed ? "(seen) " : "", topic == NULL ? m->topic : "",
		    m->retained ? " (retained)" : "",
		    m->len > 600 ? 600 : m->len, m->payload);
		if (n > 0)
			used += (size_t)n;
	}
	if (count == 0)
		snprintf(buf, size, "  (nothing)\n");
}

static struct h_msg *
expect(const char *file, int line, struct s_client *c, const char *topic,
    int ms, int upto, va_list ap)
{
	char want[1024], got[6000];
	struct s_match mt = {0};
	struct timespec ts;
	struct h_msg *m = NULL, *e;
	const char *k;
	size_t used = 0;

	while ((k = va_arg(ap, const char *)) != NULL) {
		if (mt.n == S_MAX_PAIRS)
			s_fail_at(file, line, "too many match pairs");
		mt.key[mt.n] = k;
		mt.val[mt.n] = va_arg(ap, const char *);
		used += (size_t)snprintf(want + used,
		    used < sizeof(want) ? sizeof(want) - used : 0, "%s%s=%s",
		    used ? " " : "", k, mt.val[mt.n]);
		mt.n++;
	}
	if (mt.n == 0)
		snprintf(want, sizeof(want), "(anything)");
	abs_deadline(&ts, mono_ms() + ms);
	pthread_mutex_lock(&c->mu);
	for (;;) {
		for (m = c->head; m != NULL; m = m->next)
			if (!m->consumed && msg_matches(m, topic, &mt))
				break;
		if (m != NULL ||
		    pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
			break;
	}
	if (m == NULL) {
		/* One last look: the wait may end with it in. */
		for (m = c->head; m != NULL; m = m->next)
			if (!m->consumed && msg_matches(m, topic, &mt))
				break;
	}
	if (m != NULL) {
		m->consumed = 1;
		for (e = c->head; upto && e != m; e = e->next)
			if (strcmp(e->topic, topic) == 0)
				e->consumed = 1;
		pthread_mutex_unlock(&c->mu);
		return m;
	}
	describe(got, sizeof(got), c, topic);
	pthread_mutex_unlock(&c->mu);
	s_fail_at(file, line,
	    "%s: no message on %s matching {%s} within %d ms; received "
	    "there:\n%s",
	    c->id, topic, want, ms, got);
}

struct h_msg *
s_expect_(const char *file, int line, struct s_client *c, const char *topic,
    int ms, ...)
{
	struct h_msg *m;
	va_list ap;

	va_start(ap, ms);
	m = expect(file, line, c, topic, ms, 0, ap);
	va_end(ap);
	return m;
}

struct h_msg *
s_state_(const char *file, int line, struct s_client *c, const char *topic,
    int ms, ...)
{
	struct h_msg *m;
	va_list ap;

	va_start(ap, ms);
	m = expect(file, line, c, topic, ms, 1, ap);
	va_end(ap);
	return m;
}

int
s_forbidden_(const char *file, int line, struct s_client *c, int ms,
    h_pred *bad, void *arg, const char *what)
{
	char got[6000];
	struct h_msg *m;
	int n;

	if (ms > 0)
		nap_ms(ms); /* a bounded check that nothing comes */
	pthread_mutex_lock(&c->mu);
	for (m = c->head; m != NULL; m = m->next)
		if (bad(m, arg))
			break;
	n = c->count;
	if (m == NULL) {
		pthread_mutex_unlock(&c->mu);
		return n;
	}
	describe(got, sizeof(got), c, NULL);
	pthread_mutex_unlock(&c->mu);
	s_fail_at(file, line, "%s received %s: %s %.*s\nreceived in all:\n%s",
	    c->id, what, m->topic, m->len > 600 ? 600 : m->len, m->payload,
	    got);
}

int
s_count(struct s_client *c, const char *topic)
{
	struct h_msg *m;
	int n = 0;

	pthread_mutex_lock(&c->mu);
	for (m = c->head; m != NULL; m = m->next)
		if (topic == NULL || strcmp(m->topic, topic) == 0)
			n++;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* Processes ------------------------------------------------------------ */

const char *
s_will(const char *id)
{
	return h_fmt("%s/_clients/%s/will", H_PREFIX, id);
}

struct h_proc *
s_holder(struct s_world *w, const char *user, const char *id,
    const char *session, long long conn, const char *topic)
{
	char port[16], will[512], willtopic[512], events[512], out[300];
	char ca[PATH_MAX + 16];
	char *argv[40];
	struct h_proc *p;
	long long end;
	int n = 0;

	snprintf(port, sizeof(port), "%d", w->port);
	snprintf(ca, sizeof(ca), "%s/ca.crt", w->dir);
	snprintf(will, sizeof(will), "{\"session\":\"%s\",\"conn\":%lld}",
	    session, conn);
	snprintf(willtopic, sizeof(willtopic), "%s", topic);
	snprintf(events, sizeof(events), "%s/_clients/%s/events", H_PREFIX, id);
	snprintf(out, sizeof(out), "holder-%s-%d.out", id, ++w->nholders);
	argv[n++] = (char *)MOSQUITTO_SUB_BIN;
	argv[n++] = (char *)"-h";
	argv[n++] = (char *)"127.0.0.1";
	argv[n++] = (char *)"-p";
	argv[n++] = port;
	argv[n++] = (char *)"--cafile";
	argv[n++] = ca;
	argv[n++] = (char *)"-u";
	argv[n++] = (char *)(uintptr_t)user;
	argv[n++] = (char *)"-P";
	argv[n++] = (char *)(uintptr_t)s_password(w, user);
	argv[n++] = (char *)"-V";
	argv[n++] = (char *)"5";
	argv[n++] = (char *)"-q";
	argv[n++] = (char *)"1";
	argv[n++] = (char *)"-i";
	argv[n++] = (char *)(uintptr_t)id;
	argv[n++] = (char *)"-k";
	argv[n++] = (char *)"60";
	argv[n++] = (char *)"--will-topic";
	argv[n++] = willtopic;
	argv[n++] = (char *)"--will-qos";
	argv[n++] = (char *)"1";
	argv[n++] = (char *)"--will-payload";
	argv[n++] = will;
	argv[n++] = (char *)"-t";
	argv[n++] = events;
	argv[n++] = (char *)"-t";
	argv[n++] = (char *)H_PREFIX "/_coordinator/status";
	argv[n++] = (char *)"-v";
	argv[n] = NULL;
	p = h_spawn(w->hw, argv, out);
	/*
	 * Both topics are in one SUBSCRIBE: once the retained status is
	 * there, the events subscription is in place too.
	 */
	end = mono_ms() + H_WAIT_MS;
	while (!file_contains(h_path(w->hw, out),
	    H_PREFIX "/_coordinator/status")) {
		if (mono_ms() >= end)
			s_fail("mosquitto_sub %s got no status within %d ms; "
			       "see %s",
			    id, H_WAIT_MS, h_path(w->hw, out));
		nap_ms(20);
	}
	return p;
}
