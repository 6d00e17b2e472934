/*
 * sec.c: see sec.h.
 *
 * Clients, their message logs and the matching are the harness's
 * (h_client_try() with a login); this file adds the production broker,
 * the coordinator that logs in to it, and the TLS holders.
 */
#include "sec.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include "tutil.h"

#define S_ROLES 5
#define S_STOP_MS 60000 /* mqlockd under a memory checker stops slowly */
#define S_START_MS 60000

struct s_world {
	struct h_world *hw;
	char dir[PATH_MAX];  /* setup.sh's output */
	char conf[PATH_MAX]; /* the rewritten copy mosquitto runs with */
	int port;
	int ws_port;
	int coord_port; /* 0: a profile without the coordinator's listener */
	char uri[64];
	char ws_uri[64];
	char coord_uri[64];
	char coord_id[160];
	long nofile;
	char flags[512];
	char pw[S_ROLES][128];
	struct h_proc *broker;
	long broker_pid;
	struct h_proc *coord;
	long coord_pid;
	struct h_client *mon;
	int nholders;
};

static const char *const roles[S_ROLES] = {"coordinator", "editors", "services",
    "monitors", "admins"};

#define s_fail(...) h_fail_at(__FILE__, __LINE__, __VA_ARGS__)

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
s_uri_of(const struct s_world *w, enum s_listener l)
{
	switch (l) {
	case S_WS:
		return w->ws_uri;
	case S_COORD:
		return w->coord_port != 0 ? w->coord_uri : w->uri;
	case S_TLS:
	default:
		return w->uri;
	}
}

int
s_ws_port(const struct s_world *w)
{
	return w->ws_port;
}

int
s_coord_port(const struct s_world *w)
{
	return w->coord_port != 0 ? w->coord_port : w->port;
}

const char *
s_coord_id(const struct s_world *w)
{
	return w->coord_id;
}

long
s_broker_pid(const struct s_world *w)
{
	return w->broker_pid;
}

long
s_nofile(const struct s_world *w)
{
	return w->nofile;
}

int
s_shipped_shape(const struct s_world *w)
{
	return w->coord_port != 0;
}

/* The listener a role uses in the profile. */
static enum s_listener
listener_of(const struct s_world *w, const char *user)
{
	if (w->coord_port == 0)
		return S_TLS; /* an older profile: one set of users */
	if (strcmp(user, "editors") == 0)
		return S_WS;
	if (strcmp(user, "coordinator") == 0)
		return S_COORD;
	return S_TLS;
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

struct h_client *
s_mon(struct s_world *w)
{
	return w->mon;
}

long long
s_epoch(struct s_world *w)
{
	return h_int(h_last(w->mon, H_PREFIX "/_coordinator/status"), "epoch");
}

void
s_pass(struct s_world *w)
{
	h_pass(w->hw);
}

/* The setup.sh to run: $MQLOCK_SEC_SETUP, else the shipped one. */
static const char *
setup_sh(void)
{
	const char *e = getenv("MQLOCK_SEC_SETUP");

	return e != NULL && *e != '\0' ? e : MQLOCK_SETUP_SH;
}

/* setup.sh into w->dir, and the passwords it generated. */
static void
run_setup(struct s_world *w)
{
	char *argv[6];
	struct h_proc *p;
	size_t len;
	char *s;
	int i;

	snprintf(w->dir, sizeof(w->dir), "%s", h_path(w->hw, "broker"));
	argv[0] = (char *)"/bin/bash";
	argv[1] = (char *)setup_sh();
	if (strcmp(argv[1], MQLOCK_SETUP_SH) == 0) {
		/* The plugin of this build. */
		argv[2] = (char *)"--plugin";
		argv[3] = (char *)MQLOCK_AUTH_SO;
		argv[4] = w->dir;
		argv[5] = NULL;
	} else {
		argv[2] = w->dir;
		argv[3] = NULL;
	}
	p = h_spawn(w->hw, argv, "setup.out");
	if (h_proc_wait(p, 60000) != 0)
		s_fail("setup.sh failed; see %s", h_path(w->hw, "setup.out"));
	for (i = 0; i < S_ROLES; i++) {
		s = tutil_slurp(s_file(w, h_fmt("passwords/%s", roles[i])),
		    &len);
		if (s == NULL || len < 2 || len >= sizeof(w->pw[i]))
			s_fail("setup.sh wrote no usable password for %s",
			    roles[i]);
		s[strcspn(s, "\n")] = '\0';
		snprintf(w->pw[i], sizeof(w->pw[i]), "%s", s);
		free(s);
	}
	/* A profile without one keeps mqlockd's default id. */
	s = tutil_slurp(s_file(w, "coordinator-id"), &len);
	snprintf(w->coord_id, sizeof(w->coord_id), "%s",
	    s != NULL ? s : "mqlockd");
	w->coord_id[strcspn(w->coord_id, "\n")] = '\0';
	free(s);
}

/*
 * The file limit the shipped systemd drop-in gives the broker
 * (mosquitto-limits.conf beside setup.sh), or, without one, systemd's
 * default soft limit for services, 1024.
 */
static long
shipped_nofile(void)
{
	char path[PATH_MAX];
	char *text, *p, *end;
	long n = 1024;
	size_t len;

	snprintf(path, sizeof(path), "%s", setup_sh());
	if ((p = strrchr(path, '/')) != NULL)
		*p = '\0';
	snprintf(path + strlen(path), sizeof(path) - strlen(path),
	    "/mosquitto-limits.conf");
	if ((text = tutil_slurp(path, &len)) == NULL)
		return n;
	for (p = text; (p = strstr(p, "LimitNOFILE=")) != NULL; p++)
		if (p == text || p[-1] == '\n') {
			n = strtol(p + 12, &end, 10);
			if (end == p + 12 || n < 64)
				s_fail("%s: no usable LimitNOFILE", path);
			break;
		}
	free(text);
	return n;
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
	int tls = 0, ws = 0, coord = 0, pers = 0;

	snprintf(path, sizeof(path), "%s/mosquitto.conf", w->dir);
	if ((text = tutil_slurp(path, &len)) == NULL)
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
		} else if (strcmp(line, "listener 8884 127.0.0.1") == 0) {
			fprintf(out, "listener %d 127.0.0.1\n", w->coord_port);
			coord++;
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
	if (tls != 1 || ws != 1 || coord > 1 || pers != 1)
		s_fail("the production mosquitto.conf changed shape: expected "
		       "one 'listener 8883', one 'listener 8080 127.0.0.1', at "
		       "most one 'listener 8884 127.0.0.1' and one "
		       "persistence_location line (found %d, %d, %d, %d)",
		    tls, ws, coord, pers);
	if (coord == 0)
		w->coord_port = 0;
}

/* A free port other than the ones in taken[0..n-1]. */
static int
other_port(const int *taken, int n)
{
	int p, again;

	do {
		if ((p = tutil_free_port()) == -1)
			s_fail("no free port: %s", strerror(errno));
		again = 0;
		for (int i = 0; i < n; i++)
			again |= p == taken[i];
	} while (again);
	return p;
}

/*
 * Starts mosquitto with the file limit the shipped unit gives it; 0, or -1
 * if it died at once (a port was taken).
 */
static int
broker_try(struct s_world *w)
{
	char *argv[9], log[PATH_MAX], nofile[32];
	int taken[3];
	long long end;
	FILE *f;

	snprintf(log, sizeof(log), "%s",
	    h_path(w->hw, "production-mosquitto.log"));
	taken[0] = w->port = other_port(taken, 0);
	taken[1] = w->ws_port = other_port(taken, 1);
	taken[2] = w->coord_port = other_port(taken, 2);
	snprintf(w->uri, sizeof(w->uri), "ssl://127.0.0.1:%d", w->port);
	snprintf(w->ws_uri, sizeof(w->ws_uri), "ws://127.0.0.1:%d", w->ws_port);
	snprintf(w->coord_uri, sizeof(w->coord_uri), "ssl://127.0.0.1:%d",
	    w->coord_port);
	rewrite_conf(w);
	w->nofile = shipped_nofile();
	snprintf(nofile, sizeof(nofile), "%ld", w->nofile);
	argv[0] = (char *)"/bin/sh";
	argv[1] = (char *)"-c";
	argv[2] = (char *)"ulimit -n \"$1\" && exec \"$2\" -c \"$3\"";
	argv[3] = (char *)"sh";
	argv[4] = nofile;
	argv[5] = (char *)MOSQUITTO_BIN;
	argv[6] = w->conf;
	argv[7] = NULL;
	/* A new log per attempt: an earlier one may hold an "Error". */
	if ((f = fopen(log, "w")) != NULL)
		fclose(f);
	w->broker = h_spawn(w->hw, argv, "production-mosquitto.log");
	/* It says "running" once every listener is open. */
	end = tutil_mono_ms() + H_WAIT_MS;
	while (!tutil_file_contains(log, " running")) {
		if (tutil_file_contains(log, "Error"))
			return -1; /* most likely a port was taken */
		if (tutil_mono_ms() >= end)
			s_fail(
			    "mosquitto did not start on ports %d, %d and %d; "
			    "see %s",
			    w->port, w->ws_port, w->coord_port, log);
		tutil_nap_ms(10);
	}
	if ((w->broker_pid = tutil_find_pid(w->conf)) < 0)
		s_fail("mosquitto (%s) not found in /proc", w->conf);
	return 0;
}

static void
coord_start(struct s_world *w)
{
	char *argv[96];
	char wrap[1024], flags[sizeof(w->flags)];
	char db[PATH_MAX + 16], ca[PATH_MAX + 16], pwf[PATH_MAX + 32];
	long long end;
	int n;

	snprintf(db, sizeof(db), "%s/mqlock.db", h_dir(w->hw));
	snprintf(ca, sizeof(ca), "%s/ca.crt", w->dir);
	snprintf(pwf, sizeof(pwf), "%s/passwords/coordinator", w->dir);
	n = h_coord_argv(argv, wrap, sizeof(wrap), s_uri_of(w, S_COORD), db);
	argv[n++] = (char *)"--cafile";
	argv[n++] = ca;
	argv[n++] = (char *)"--username";
	argv[n++] = (char *)"coordinator";
	argv[n++] = (char *)"--password-file";
	argv[n++] = pwf;
	argv[n++] = (char *)"--client-id";
	argv[n++] = w->coord_id;
	snprintf(flags, sizeof(flags), "%s", w->flags);
	n = h_words(flags, argv, n, 94);
	argv[n] = NULL;
	w->coord = h_spawn(w->hw, argv, "production-mqlockd.log");
	/* Found once the child has called exec. */
	end = tutil_mono_ms() + H_WAIT_MS;
	while ((w->coord_pid = tutil_find_pid(db)) < 0) {
		if (tutil_mono_ms() >= end)
			s_fail("mqlockd (%s) not found in /proc", db);
		tutil_nap_ms(10);
	}
	h_expect(w->mon, H_PREFIX "/_coordinator/status", S_START_MS, "state",
	    "online");
}

void
s_coord_restart(struct s_world *w)
{
	if (w->coord_pid > 0 && tutil_proc_field(w->coord_pid, 0) != 'Z')
		(void)tutil_stop_child(w->coord_pid, SIGKILL, S_STOP_MS);
	w->coord_pid = -1;
	coord_start(w);
}

void
s_coord_stop(struct s_world *w)
{
	int status;

	if (w->coord_pid <= 0 || tutil_proc_field(w->coord_pid, 0) == 'Z')
		s_fail("mqlockd is not running");
	status = tutil_stop_child(w->coord_pid, SIGTERM, S_STOP_MS);
	w->coord_pid = -1;
	if (status != 0)
		s_fail("mqlockd did not stop cleanly on SIGTERM: wait status "
		       "0x%x",
		    status);
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
	h_sub(w->mon, H_PREFIX "/_coordinator/status");
	h_sub(w->mon, H_PREFIX "/+/owner");
	coord_start(w);
	return w;
}

int
s_teardown(void **state)
{
	struct s_world *w = *state;
	int rc = 0, status;

	if (w == NULL)
		return 0;
	if (w->hw == NULL) {
		free(w);
		*state = NULL;
		return 0;
	}
	/*
	 * A clean stop on SIGTERM, exit status 0: with MQLOCK_IT_WRAPPER set
	 * to a memory checker, that status is also the checker's verdict.
	 */
	if (w->coord_pid > 0 && tutil_proc_field(w->coord_pid, 0) != 'Z') {
		status = tutil_stop_child(w->coord_pid, SIGTERM, S_STOP_MS);
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

struct h_client *
s_editor(struct s_world *w, const char *user, const char *id)
{
	struct h_client *c = s_connect(w, user, id);

	h_sub(c, h_events(id));
	h_sub(c, h_fmt("replies/%s/#", id));
	return c;
}

struct h_msg *
s_reply(struct h_client *c, const char *key, const char *value)
{
	return h_expect(c, h_reply_topic(c), H_WAIT_MS, key, value);
}

struct h_client *
s_connect(struct s_world *w, const char *user, const char *id)
{
	struct h_login login = {s_uri_of(w, listener_of(w, user)), user,
	    s_password(w, user), s_file(w, "ca.crt"),
	    h_fmt("replies/%s/r", id)};
	struct h_client *c;
	int rc = h_client_try(w->hw, id, &login, &c);

	if (rc != 0)
		s_fail("%s: %s could not connect to %s: %d", id, user, w->uri,
		    rc);
	return c;
}

int
s_try_connect(struct s_world *w, const char *user, const char *password,
    const char *id, const char *cafile)
{
	return s_try_at(w, S_TLS, user, password, id, cafile);
}

int
s_try_at(struct s_world *w, enum s_listener l, const char *user,
    const char *password, const char *id, const char *cafile)
{
	struct h_login login = {s_uri_of(w, l), user, password, cafile, NULL};
	struct h_client *c;
	int rc = h_client_try(w->hw, id, &login, &c);

	if (rc == 0)
		h_disconnect(c);
	return rc;
}

struct h_client *
s_connect_at(struct s_world *w, enum s_listener l, const char *user,
    const char *id)
{
	struct h_login login = {s_uri_of(w, l), user, s_password(w, user),
	    s_file(w, "ca.crt"), h_fmt("replies/%s/r", id)};
	struct h_client *c;
	int rc = h_client_try(w->hw, id, &login, &c);

	if (rc != 0)
		s_fail("%s: %s could not connect to %s: %d", id, user,
		    login.uri, rc);
	return c;
}

void
s_request(struct h_client *c, const char *id, const char *lock, const char *op,
    const char *session, const char *extra, const char *corr)
{
	char topic[512], body[4096];

	snprintf(topic, sizeof(topic), "%s/%s/request/%s", H_PREFIX, lock, id);
	snprintf(body, sizeof(body),
	    "{\"op\":\"%s\",\"client\":\"%s\",\"session\":\"%s\"%s%s}", op, id,
	    session, extra != NULL ? "," : "", extra != NULL ? extra : "");
	h_publish(c, topic, body, strlen(body), 0, corr);
}

int
s_pub(struct h_client *c, const char *topic, const char *payload, int retained,
    const char *resp)
{
	return h_publish_rc(c, topic, payload, strlen(payload), retained, resp,
	    resp != NULL ? "c" : NULL, resp != NULL ? 1 : 0);
}

/* Processes ------------------------------------------------------------ */

struct h_proc *
s_hold(struct s_world *w, const char *user, const char *id, const char *lock,
    const char *session, long long conn, long long *token)
{
	struct h_client *c = s_connect(w, user, id);
	struct h_msg *m;
	char ids[S_BURST_ID], sess[160];

	/* Copies: the arguments may live in h_fmt() buffers. */
	snprintf(ids, sizeof(ids), "%s", id);
	snprintf(sess, sizeof(sess), "%s", session);
	h_sub(c, h_fmt("replies/%s/#", ids));
	s_request(c, ids, lock, "acquire", sess, h_fmt("\"conn\":%lld", conn),
	    "hold");
	m = h_expect(c, h_reply_topic(c), H_WAIT_MS, "result", "granted");
	if (token != NULL)
		*token = h_int(m, "token");
	h_disconnect(c);
	return s_holder(w, user, ids, sess, conn, s_will(ids));
}

const char *
s_will(const char *id)
{
	return h_fmt("%s/_clients/%s/will", H_PREFIX, id);
}

struct h_proc *
s_holder(struct s_world *w, const char *user, const char *id,
    const char *session, long long conn, const char *topic)
{
	char ca[PATH_MAX + 16], willtopic[512], out[300];
	struct h_sub_opts o = {0};
	struct h_proc *p;
	long long end;

	snprintf(ca, sizeof(ca), "%s/ca.crt", w->dir);
	snprintf(willtopic, sizeof(willtopic), "%s", topic);
	snprintf(out, sizeof(out), "holder-%s-%d.out", id, ++w->nholders);
	o.port = w->port;
	o.cafile = ca;
	o.user = user;
	o.password = s_password(w, user);
	o.id = id;
	o.keepalive = 60;
	o.will_topic = willtopic;
	o.session = session;
	o.conn = conn;
	o.topic = H_PREFIX "/_coordinator/status";
	p = h_sub_spawn(w->hw, &o, out);
	/*
	 * Both topics are in one SUBSCRIBE: once the retained status is
	 * there, the events subscription is in place too.
	 */
	end = tutil_mono_ms() + H_WAIT_MS;
	while (!tutil_file_contains(h_path(w->hw, out),
	    H_PREFIX "/_coordinator/status")) {
		if (tutil_mono_ms() >= end)
			s_fail("mosquitto_sub %s got no status within %d ms; "
			       "see %s",
			    id, H_WAIT_MS, h_path(w->hw, out));
		tutil_nap_ms(20);
	}
	return p;
}

void
s_send(struct h_client *c, const char *topic, const char *body,
    const char *corr)
{
	h_publish(c, topic, body, strlen(body), 0, corr);
}

/* Bursts of short connections ------------------------------------------ */

#define BURST_PARALLEL 16
#define BURST_MS 120000

enum burst_state { B_FREE, B_BUSY, B_DONE, B_FAILED };

struct burst;

/* One connection of a burst; its Paho callbacks run on Paho's thread. */
struct burst_slot {
	struct burst *b;
	MQTTAsync mq;
	enum burst_state state;
	const char *failed; /* what failed */
	int reason;
	char id[S_BURST_ID];
	char topic[S_BURST_TOPIC];
	char body[S_BURST_BODY];
};

struct burst {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct burst_slot slot[BURST_PARALLEL];
};

static void
burst_end(struct burst_slot *s, enum burst_state st, const char *what,
    int reason)
{
	pthread_mutex_lock(&s->b->mu);
	s->state = st;
	s->failed = what;
	s->reason = reason;
	pthread_cond_broadcast(&s->b->cv);
	pthread_mutex_unlock(&s->b->mu);
}

static void
burst_failed(void *ctx, MQTTAsync_failureData5 *r)
{
	struct burst_slot *s = ctx;

	burst_end(s, B_FAILED, "an operation failed",
	    r != NULL ? (int)r->reasonCode : -1);
}

static void
burst_gone(void *ctx, MQTTAsync_successData5 *r)
{
	(void)r;
	burst_end(ctx, B_DONE, NULL, 0);
}

static void
burst_acked(void *ctx, MQTTAsync_successData5 *r)
{
	struct burst_slot *s = ctx;
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;

	if (r != NULL && r->reasonCode >= 0x80) {
		burst_end(s, B_FAILED, "the publish was refused",
		    (int)r->reasonCode);
		return;
	}
	d.timeout = 1000;
	d.onSuccess5 = burst_gone;
	d.onFailure5 = burst_failed;
	d.context = s;
	if (MQTTAsync_disconnect(s->mq, &d) != MQTTASYNC_SUCCESS)
		burst_end(s, B_FAILED, "disconnect", -1);
}

static void
burst_connected(void *ctx, MQTTAsync_successData5 *r)
{
	struct burst_slot *s = ctx;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message m = MQTTAsync_message_initializer;

	(void)r;
	m.payload = s->body;
	m.payloadlen = (int)strlen(s->body);
	m.qos = 1;
	ro.onSuccess5 = burst_acked;
	ro.onFailure5 = burst_failed;
	ro.context = s;
	if (MQTTAsync_sendMessage(s->mq, s->topic, &m, &ro) !=
	    MQTTASYNC_SUCCESS)
		burst_end(s, B_FAILED, "publish", -1);
}

static void
burst_start(struct s_world *w, struct burst_slot *s, const char *uri,
    const char *user)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions so = MQTTAsync_SSLOptions_initializer;
	int rc;

	co.MQTTVersion = MQTTVERSION_5;
	rc = MQTTAsync_createWithOptions(&s->mq, uri, s->id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	if (rc != MQTTASYNC_SUCCESS)
		s_fail("%s: MQTTAsync_createWithOptions: %d", s->id, rc);
	if (strncmp(uri, "ssl://", 6) == 0) {
		so.trustStore = s_file(w, "ca.crt");
		so.enableServerCertAuth = 1;
		so.verify = 1;
		cn.ssl = &so;
	}
	cn.username = user;
	cn.password = s_password(w, user);
	cn.keepAliveInterval = 30;
	cn.cleanstart = 1;
	cn.connectTimeout = 10;
	cn.onSuccess5 = burst_connected;
	cn.onFailure5 = burst_failed;
	cn.context = s;
	s->state = B_BUSY;
	rc = MQTTAsync_connect(s->mq, &cn);
	if (rc != MQTTASYNC_SUCCESS)
		s_fail("%s: MQTTAsync_connect: %d", s->id, rc);
}

long long
s_burst(struct s_world *w, const char *user, int n, s_burst_fn *fn, void *arg)
{
	static struct burst b; /* large; one burst at a time */
	const char *uri = s_uri_of(w, listener_of(w, user));
	long long start = tutil_mono_ms(), end = start + BURST_MS, kicked = 0;
	struct burst_slot *s;
	struct timespec ts;
	int next = 0, done = 0, busy, i;
	pthread_condattr_t ca;

	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b.cv, &ca);
	pthread_condattr_destroy(&ca);
	for (i = 0; i < BURST_PARALLEL; i++)
		b.slot[i].b = &b;
	while (done < n) {
		/*
		 * Paho is called only without b.mu held: its callbacks take
		 * b.mu while Paho holds its own lock.
		 */
		busy = 0;
		for (i = 0; i < BURST_PARALLEL; i++) {
			enum burst_state st;

			s = &b.slot[i];
			pthread_mutex_lock(&b.mu);
			st = s->state;
			pthread_mutex_unlock(&b.mu);
			if (st == B_FAILED)
				s_fail("burst connection %s (%s): %s, reason "
				       "0x%x",
				    s->id, user, s->failed, s->reason);
			if (st == B_DONE) {
				/* Not from a callback: Paho forbids that. */
				MQTTAsync_destroy(&s->mq);
				st = s->state = B_FREE;
				done++;
			}
			if (st == B_FREE && next < n) {
				fn(next++, s->id, s->topic, s->body, arg);
				burst_start(w, s, uri, user);
				st = B_BUSY;
			}
			busy += st == B_BUSY;
		}
		if (busy == 0)
			continue;
		if (tutil_mono_ms() >= end)
			s_fail("a burst of %d connections (%s) did not end "
			       "within %d ms: %d done",
			    n, user, BURST_MS, done);
		/*
		 * Paho's receive thread sees a new socket only when its poll
		 * returns, which a kick on another connection hurries.
		 */
		if (tutil_mono_ms() - kicked >= 20) {
			h_pub(h_ctl(w->hw), "h/kick", "k");
			kicked = tutil_mono_ms();
		}
		pthread_mutex_lock(&b.mu);
		for (i = 0; i < BURST_PARALLEL; i++)
			if (b.slot[i].state != B_BUSY)
				break;
		if (i == BURST_PARALLEL) {
			long long t = tutil_mono_ms() + 20;

			ts.tv_sec = (time_t)(t / 1000);
			ts.tv_nsec = (long)(t % 1000) * 1000000L;
			pthread_cond_timedwait(&b.cv, &b.mu, &ts);
		}
		pthread_mutex_unlock(&b.mu);
	}
	pthread_mutex_destroy(&b.mu);
	pthread_cond_destroy(&b.cv);
	return tutil_mono_ms() - start;
}
