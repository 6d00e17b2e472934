#include "bench/world.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench/conn.h"
#include "bench/proc.h"
#include "bench/stats.h"
#include "io/clock.h"
#include "io/log.h"

#define READY_MS 20000
#define STOP_MS 5000
#define ARGS_MAX 48

/* The world's coordinators; one world per process. */
static const char *names[W_NCOORD] = {"mqlockd", "standin"};

/* The latest status a coordinator published. */
struct status {
	int online;
	long long epoch;
	unsigned long seq; /* status messages seen */
	uint64_t at_ns;    /* arrival of the latest one */
};

struct world {
	struct world_opts o;
	char dir[PATH_MAX];
	char uri[64];
	char prefix[W_NCOORD][72];
	char db[PATH_MAX + 16];
	char etcd_prefix[64]; /* the run's own keys in etcd */
	bool has_rate;        /* this mqlockd has a per-client rate limit */
	struct proc *broker;
	struct proc *coord[W_NCOORD];
	struct conn *watch;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct status st[W_NCOORD]; /* guarded by mu */
};

const char *
world_name(enum world_coord c)
{
	return names[c];
}

static void
nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

	if (fd == -1)
		return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int
port_accepts(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (fd == -1)
		return 0;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* Print the end of a log file, to say why a process died. */
static void
show_log(const char *path)
{
	char line[512];
	long size;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 4096)
		fseek(f, size - 4096, SEEK_SET);
	else
		fseek(f, 0, SEEK_SET);
	fprintf(stderr, "---- %s ----\n", path);
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, stderr);
	fclose(f);
}

static void
on_status(void *arg, const char *topic, const char *payload, size_t len)
{
	struct world *w = arg;
	const cJSON *state, *epoch;
	cJSON *o;

	for (int c = 0; c < W_NCOORD; c++) {
		size_t pl = strlen(w->prefix[c]);

		if (strncmp(topic, w->prefix[c], pl) != 0 ||
		    strcmp(topic + pl, "/_coordinator/status") != 0)
			continue;
		if ((o = cJSON_ParseWithLength(payload, len)) == NULL)
			return;
		state = cJSON_GetObjectItemCaseSensitive(o, "state");
		epoch = cJSON_GetObjectItemCaseSensitive(o, "epoch");
		pthread_mutex_lock(&w->mu);
		w->st[c].online = cJSON_IsString(state) &&
		    strcmp(state->valuestring, "online") == 0;
		w->st[c].epoch =
		    cJSON_IsNumber(epoch) ? (long long)epoch->valuedouble : 0;
		w->st[c].seq++;
		w->st[c].at_ns = stats_now_ns();
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		cJSON_Delete(o);
		return;
	}
}

/* Is st what wait_status() waits for? */
static int
status_is(const struct status *st, int online, long long min_epoch,
    unsigned long seq)
{
	return st->online == online && st->epoch > min_epoch && st->seq > seq;
}

/*
 * Wait until coordinator c's status is `online` (1 or 0) with an epoch
 * above min_epoch and more than seq messages seen, checking every 50 ms
 * that the process still runs.  Returns 0 and the status, or -1.
 */
static int
wait_status(struct world *w, enum world_coord c, int online,
    long long min_epoch, unsigned long seq, int timeout_ms, struct status *out)
{
	uint64_t end = stats_now_ns() + (uint64_t)timeout_ms * 1000000u;
	struct timespec slice;
	int ok = 0;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		slice = clock_mono_in(50);
		if (!status_is(&w->st[c], online, min_epoch, seq))
			pthread_cond_timedwait(&w->cv, &w->mu, &slice);
		ok = status_is(&w->st[c], online, min_epoch, seq);
		if (out != NULL)
			*out = w->st[c];
		pthread_mutex_unlock(&w->mu);
		if (ok || stats_now_ns() >= end)
			break;
		if (w->coord[c] != NULL && !proc_alive(w->coord[c])) {
			log_error("bench: %s exited", names[c]);
			return -1;
		}
	}
	if (!ok)
		log_error("bench: no %s status from %s after %d ms",
		    online ? "online" : "offline", names[c], timeout_ms);
	return ok ? 0 : -1;
}

static int
start_broker(struct world *w)
{
	char conf[PATH_MAX + 32], log[PATH_MAX + 32];
	const char *argv[] = {w->o.mosquitto, "-c", conf, NULL};
	int port = -1;
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/mosquitto.conf", w->dir);
	snprintf(log, sizeof(log), "%s/mosquitto.log", w->dir);
	for (int tries = 0; tries < 5; tries++) {
		if ((port = free_port()) < 0 ||
		    (f = fopen(conf, "w")) == NULL) {
			log_error("bench: %s: %s", conf, strerror(errno));
			return -1;
		}
		fprintf(f,
		    "listener %d 127.0.0.1\n"
		    "allow_anonymous true\n"
		    "set_tcp_nodelay true\n"
		    "max_queued_messages 0\n"
		    "max_inflight_messages %d\n"
		    "persistence false\n"
		    "log_dest stderr\n"
		    "log_type error\n"
		    "log_type warning\n"
		    "log_type notice\n"
		    "%s",
		    port, w->o.inflight, geteuid() == 0 ? "user root\n" : "");
		if (fclose(f) != 0) {
			log_error("bench: %s: %s", conf, strerror(errno));
			return -1;
		}
		if ((w->broker = proc_spawn(argv, log)) == NULL)
			return -1;
		for (int i = 0; i < 500; i++) {
			if (port_accepts(port)) {
				snprintf(w->uri, sizeof(w->uri),
				    "tcp://127.0.0.1:%d", port);
				return 0;
			}
			if (!proc_alive(w->broker))
				break; /* most likely the port was taken */
			nap_ms(10);
		}
		proc_free(w->broker);
		w->broker = NULL;
	}
	show_log(log);
	log_error("bench: mosquitto did not start");
	return -1;
}

/* Split the extra mqlockd flags at spaces into argv[n...]. */
static int
split_args(char *s, const char **argv, int n, int max)
{
	for (char *tok = s; tok != NULL && *tok != '\0';) {
		char *sp = strchr(tok, ' ');

		if (sp != NULL)
			*sp++ = '\0';
		if (*tok != '\0') {
			if (n >= max - 1)
				return -1;
			argv[n++] = tok;
		}
		tok = sp;
	}
	argv[n] = NULL;
	return n;
}

/* Whether `mqlockd --help` lists flag (e.g. "--rate "). */
static bool
mqlockd_has_flag(const char *path, const char *flag)
{
	char cmd[PATH_MAX + 32], line[512];
	bool found = false;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "'%s' --help 2>&1", path);
	if ((p = popen(cmd, "r")) == NULL)
		return false;
	while (fgets(line, sizeof(line), p) != NULL)
		if (strstr(line, flag) != NULL)
			found = true;
	pclose(p);
	return found;
}

/*
 * mqlockd as coordinator c: on the world's sqlite journal, or (c ==
 * W_MQLOCKD in a world with etcd) on etcd, each then with a client id of
 * its own since both share the broker.
 */
static struct proc *
spawn_mqlockd(struct world *w, enum world_coord c)
{
	char log[PATH_MAX + 32], *extra;
	const char *argv[ARGS_MAX];
	struct proc *p = NULL;
	int n = 0;

	snprintf(log, sizeof(log), "%s/%s.log", w->dir, names[c]);
	if ((extra = strdup(
		 w->o.mqlockd_args != NULL ? w->o.mqlockd_args : "")) == NULL)
		return NULL;
	argv[n++] = w->o.mqlockd;
	argv[n++] = "--broker";
	argv[n++] = w->uri;
	argv[n++] = "--prefix";
	argv[n++] = w->prefix[c];
	if (w->o.etcd != NULL && c == W_MQLOCKD) {
		argv[n++] = "--etcd";
		argv[n++] = w->o.etcd;
		argv[n++] = "--etcd-prefix";
		argv[n++] = w->etcd_prefix;
		argv[n++] = "--client-id";
		argv[n++] = "mqlockd-etcd";
	} else {
		argv[n++] = "--db";
		argv[n++] = w->db;
		if (w->o.etcd != NULL) {
			argv[n++] = "--client-id";
			argv[n++] = "mqlockd-sqlite";
		}
	}
	/* Nothing may expire during a run, or a restart roll call bite. */
	argv[n++] = "--idle-timeout";
	argv[n++] = "86400";
	argv[n++] = "--grace";
	argv[n++] = "3600";
	/*
	 * The per-client rate limit (50/s by default) is policy, not capacity:
	 * one benchmark client id sends thousands a second.  Its bucket is
	 * still checked on every request.
	 */
	if (w->has_rate) {
		argv[n++] = "--rate";
		argv[n++] = "100000";
	}
	if (split_args(extra, argv, n, ARGS_MAX) < 0)
		log_error("bench: too many --mqlockd-args");
	else
		p = proc_spawn(argv, log);
	free(extra);
	return p;
}

static struct proc *
spawn_standin(struct world *w)
{
	char log[PATH_MAX + 32];
	const char *argv[] = {w->o.self, "standin", "--broker", w->uri,
	    "--prefix", w->prefix[W_STANDIN], NULL};

	snprintf(log, sizeof(log), "%s/standin.log", w->dir);
	return proc_spawn(argv, log);
}

static struct proc *
spawn_coord(struct world *w, enum world_coord c)
{
	return c == W_MQLOCKD || w->o.etcd != NULL ? spawn_mqlockd(w, c)
						   : spawn_standin(w);
}

static int
start_coord(struct world *w, enum world_coord c)
{
	char log[PATH_MAX + 32];

	w->coord[c] = spawn_coord(w, c);
	if (w->coord[c] == NULL)
		return -1;
	if (wait_status(w, c, 1, 0, 0, READY_MS, NULL) != 0) {
		snprintf(log, sizeof(log), "%s/%s.log", w->dir, names[c]);
		show_log(log);
		return -1;
	}
	return 0;
}

struct world *
world_start(const struct world_opts *o)
{
	const char *tmp = o->dir != NULL ? o->dir : getenv("TMPDIR");
	char filters[W_NCOORD][128];
	const char *fp[W_NCOORD];
	struct world *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->o = *o;
	pthread_mutex_init(&w->mu, NULL);
	if (stats_cond_init(&w->cv) != 0) {
		pthread_mutex_destroy(&w->mu);
		free(w);
		return NULL;
	}
	if (o->etcd != NULL && !o->spawn) {
		log_error("bench: etcd needs --spawn");
		goto err;
	}
	if (o->etcd != NULL) {
		names[W_MQLOCKD] = "etcd";
		names[W_STANDIN] = "sqlite";
	}
	snprintf(w->prefix[W_MQLOCKD], sizeof(w->prefix[0]), "%s",
	    o->etcd != NULL ? "etcd"
		: o->spawn  ? "mqlockd"
			    : o->prefix);
	snprintf(w->prefix[W_STANDIN], sizeof(w->prefix[0]), "%s",
	    o->etcd != NULL ? "sqlite" : "standin");
	if (o->spawn) {
		snprintf(w->dir, sizeof(w->dir), "%s/mqlock-bench-XXXXXX",
		    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
		if (mkdtemp(w->dir) == NULL) {
			log_error("bench: mkdtemp %s: %s", w->dir,
			    strerror(errno));
			w->dir[0] = '\0';
			goto err;
		}
		snprintf(w->db, sizeof(w->db), "%s/mqlock.db", w->dir);
		snprintf(w->etcd_prefix, sizeof(w->etcd_prefix), "%s/",
		    strrchr(w->dir, '/') + 1);
		w->has_rate = mqlockd_has_flag(o->mqlockd, "--rate ");
		if (start_broker(w) != 0)
			goto err;
	} else {
		snprintf(w->dir, sizeof(w->dir), "%s/mqlock-bench-XXXXXX",
		    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
		if (mkdtemp(w->dir) == NULL) {
			w->dir[0] = '\0';
			goto err;
		}
		snprintf(w->uri, sizeof(w->uri), "%s", o->broker);
	}
	for (int c = 0; c < W_NCOORD; c++) {
		snprintf(filters[c], sizeof(filters[c]),
		    "%s/_coordinator/status", w->prefix[c]);
		fp[c] = filters[c];
	}
	w->watch = conn_start(&(struct conn_opts){.uri = w->uri,
	    .client_id = "bench-watch",
	    .fn = on_status,
	    .arg = w});
	if (w->watch == NULL || conn_wait(w->watch, READY_MS) != 0 ||
	    conn_subscribe(w->watch, fp, W_NCOORD, 1, READY_MS) != 0)
		goto err;
	if (o->spawn && start_coord(w, W_MQLOCKD) != 0)
		goto err;
	if (!o->spawn &&
	    wait_status(w, W_MQLOCKD, 1, -1, 0, READY_MS, NULL) != 0) {
		log_error("bench: no mqlockd online at prefix %s", o->prefix);
		goto err;
	}
	if (start_coord(w, W_STANDIN) != 0)
		goto err;
	return w;
err:
	world_stop(w);
	return NULL;
}

/* Remove the files of our flat temporary directory, then the directory. */
static void
remove_dir(const char *dir)
{
	char path[PATH_MAX + 300];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) != 0)
			log_warn("bench: unlink %s: %s", path, strerror(errno));
	}
	closedir(d);
	if (rmdir(dir) != 0)
		log_warn("bench: rmdir %s: %s", dir, strerror(errno));
}

void
world_stop(struct world *w)
{
	if (w == NULL)
		return;
	for (int c = 0; c < W_NCOORD; c++) {
		if (w->coord[c] != NULL)
			proc_stop(w->coord[c], SIGTERM, STOP_MS);
		proc_free(w->coord[c]);
	}
	conn_free(w->watch);
	if (w->broker != NULL)
		proc_stop(w->broker, SIGTERM, STOP_MS);
	proc_free(w->broker);
	if (w->dir[0] != '\0') {
		if (w->o.keep)
			fprintf(stderr, "bench: kept %s\n", w->dir);
		else
			remove_dir(w->dir);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

const char *
world_uri(const struct world *w)
{
	return w->uri;
}

const char *
world_prefix(const struct world *w, enum world_coord c)
{
	return w->prefix[c];
}

pid_t
world_pid(const struct world *w, enum world_coord c)
{
	if (w->coord[c] != NULL)
		return proc_pid(w->coord[c]);
	return c == W_MQLOCKD ? w->o.mqlockd_pid : 0;
}

pid_t
world_broker_pid(const struct world *w)
{
	return w->broker != NULL ? proc_pid(w->broker) : 0;
}

const char *
world_etcd(const struct world *w)
{
	return w->o.etcd;
}

const char *
world_dir(const struct world *w)
{
	return w->dir[0] != '\0' ? w->dir : NULL;
}

int
world_alive(struct world *w)
{
	if (w->broker != NULL && !proc_alive(w->broker))
		return 0;
	for (int c = 0; c < W_NCOORD; c++)
		if (w->coord[c] != NULL && !proc_alive(w->coord[c]))
			return 0;
	return 1;
}

int
world_restart(struct world *w, enum world_coord c, int timeout_ms,
    uint64_t *spawned_ns, uint64_t *online_ns)
{
	struct status before, now;

	if (w->coord[c] == NULL) {
		log_error("bench: restarting %s needs --spawn", names[c]);
		return -1;
	}
	pthread_mutex_lock(&w->mu);
	before = w->st[c];
	pthread_mutex_unlock(&w->mu);
	proc_stop(w->coord[c], SIGKILL, STOP_MS);
	proc_free(w->coord[c]);
	w->coord[c] = NULL;
	/* The broker publishes the will once it sees the socket close. */
	if (wait_status(w, c, 0, -1, before.seq, READY_MS, &now) != 0)
		return -1;
	*spawned_ns = stats_now_ns();
	w->coord[c] = spawn_coord(w, c);
	if (w->coord[c] == NULL ||
	    wait_status(w, c, 1, before.epoch, now.seq, timeout_ms, &now) != 0)
		return -1;
	*online_ns = now.at_ns;
	return 0;
}
