/*
 * mqlock acquire: hold a lock while a command runs, like flock(1).
 *
 * One poll() loop (cli_wait) over the signal pipe and the MQTT client's
 * wake fd drives a small state machine:
 *
 *   WAITING    acquire sent (again on every connect), not granted yet
 *   RUNNING    granted; COMMAND runs; activity keeps the idle clock back
 *   STOPPING   the lock was lost; COMMAND got SIGTERM; exit 70 once it ends
 *   CONFIRMING COMMAND ended: acquire once more; the same token says the
 *              lock stayed ours throughout (then release and exit with
 *              COMMAND's status), anything else that it was lost (exit 70)
 *   RELEASING  done (--wait ran out, or a signal): publish release once
 *              connected, then exit
 *
 * The connection may drop at any time: reconnect with backoff, a new will
 * with a higher conn each time, and send acquire again; the coordinator
 * keeps locks and places for its grace period.
 *
 * Requests go to P/<lock>/request/<client id>, the topic bound to this
 * connection's id; events are read from P/_clients/<client id>/events with
 * retain handling 2, and a retained message there is ignored (only the
 * coordinator writes events; a retained one was planted).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/codec.h"
#include "io/backoff.h"
#include "io/clock.h"
#include "io/log.h"
#include "mqlock/cli.h"

#define TOPIC_SZ 512
#define ACTIVITY_MIN_MS 200
#define ACTIVITY_MAX_MS 60000
#define PUBLISH_WAIT_MS 5000
#define RELEASE_RECONNECT_MS 10000 /* how long to try to say release */
#define SESSION_DIGITS 32
#define NONCE_DIGITS 16

extern char **environ;

enum phase { WAITING, RUNNING, STOPPING, CONFIRMING, RELEASING };

struct acq {
	const struct cli *c;
	const struct acquire_args *a;
	struct mqtt *m;
	char session[SESSION_DIGITS + 1];
	int64_t conn;
	char t_request[TOPIC_SZ];
	char t_events[TOPIC_SZ];
	char t_will[TOPIC_SZ];
	char t_status[TOPIC_SZ];
	char t_reply[TOPIC_SZ]; /* replies to the confirming acquire */
	char nonce[NONCE_DIGITS + 1];

	enum phase phase;
	int exit_code;      /* -1 until decided */
	int release_status; /* CONFIRMING, RELEASING: what to exit with */
	int ever_connected;
	int asked; /* an acquire went out: there may be something to release */
	int release_failed;
	int lost_said;
	int queued_said;
	int offline_said;
	int have_epoch;
	int64_t epoch;

	struct backoff backoff;
	int64_t reconnect_at;  /* CLOCK_MONOTONIC ms, -1: none */
	int64_t wait_until;    /* --wait deadline, -1: none */
	int64_t activity_at;   /* next activity, -1: none */
	int64_t activity_ms;   /* its period */
	int64_t release_until; /* CONFIRMING, RELEASING: give up then */

	uint64_t token;
	pid_t child; /* also its process group */
	int gave_tty;

	char ticket[MQL_TICKET_SZ]; /* --ticket-file, as last read */
};

/*
 * The ticket for an acquire under --ticket-file into r, read again each
 * time (an application may renew the file), or as last read if the file is
 * unusable now.
 */
static void
add_ticket(struct acq *s, struct lt_request *r)
{
	/* Room for one byte more than a ticket, to tell a longer line. */
	char fresh[MQL_TICKET_SZ + 1];

	if (r->op != LT_OP_ACQUIRE || s->a->ticket_file == NULL)
		return;
	if (cli_read_ticket(s->a->ticket_file, fresh, sizeof(fresh)) == 0)
		memcpy(s->ticket, fresh, sizeof(s->ticket));
	explicit_bzero(fresh, sizeof(fresh));
	memcpy(r->ticket, s->ticket, sizeof(r->ticket));
}

/* Publish op for our lock, with MQTT 5 reply properties if props. */
static int
publish_request(struct acq *s, enum lt_op op,
    const struct mqtt_pub_props *props)
{
	struct lt_request r;
	char *payload;
	int rc;

	memset(&r, 0, sizeof(r));
	r.op = op;
	snprintf(r.lock, sizeof(r.lock), "%s", s->a->lock);
	snprintf(r.client, sizeof(r.client), "%s", s->c->client_id);
	snprintf(r.session, sizeof(r.session), "%s", s->session);
	snprintf(r.user, sizeof(r.user), "%s", s->a->user);
	r.conn = s->conn;
	r.wait = s->a->wait_ms != 0;
	if (op == LT_OP_ACQUIRE)
		s->asked = 1;
	add_ticket(s, &r);
	payload = codec_encode_request(&r);
	explicit_bzero(r.ticket, sizeof(r.ticket));
	if (payload == NULL) {
		fprintf(stderr, "mqlock: out of memory\n");
		return -1;
	}
	rc = mqtt_publish(s->m, s->t_request, payload, strlen(payload), 1, 0,
	    props);
	explicit_bzero(payload, strlen(payload));
	free(payload);
	return rc;
}

static int
send_request(struct acq *s, enum lt_op op)
{
	return publish_request(s, op, NULL);
}

/*
 * The confirming acquire: its reply, matched by a fresh nonce as
 * correlation data, is the coordinator's answer to this very request, not
 * to one sent before COMMAND ended.
 */
static void
send_confirm(struct acq *s)
{
	struct mqtt_pub_props p = {s->t_reply, s->nonce, NONCE_DIGITS};

	if (cli_random_hex(s->nonce, NONCE_DIGITS) == 0)
		(void)publish_request(s, LT_OP_ACQUIRE, &p);
}

/*
 * Publish release and wait until the broker has it.  If it cannot be
 * confirmed, we leave with our will instead of a normal DISCONNECT, so that
 * the coordinator still learns we are gone.
 */
static void
release_now(struct acq *s)
{
	/* Only this release counts: forget earlier failed publishes. */
	(void)mqtt_wait_published(s->m, 0);
	if (!mqtt_is_connected(s->m) || send_request(s, LT_OP_RELEASE) == -1 ||
	    mqtt_wait_published(s->m, PUBLISH_WAIT_MS) == -1) {
		fprintf(stderr,
		    "mqlock: could not release %s; the coordinator frees it "
		    "after its grace period\n",
		    s->a->lock);
		s->release_failed = 1;
	}
}

static void
finish(struct acq *s, int code)
{
	s->exit_code = code;
}

/* Give up on the lock and exit with code once release is out. */
static void
start_releasing(struct acq *s, int code)
{
	s->phase = RELEASING;
	s->release_status = code;
	s->wait_until = -1;
	s->activity_at = -1;
	if (!s->asked)
		finish(s, code);
	else if (mqtt_is_connected(s->m)) {
		release_now(s);
		finish(s, code);
	} else
		s->release_until = clock_mono_ms() + RELEASE_RECONNECT_MS;
}

static int
start_connect(struct acq *s)
{
	char *will = codec_encode_will(s->session, s->conn);
	int rc;

	if (will == NULL) {
		fprintf(stderr, "mqlock: out of memory\n");
		return -1;
	}
	rc = mqtt_set_will(s->m, s->t_will, will, strlen(will), 0);
	free(will);
	if (rc == -1 || mqtt_connect(s->m) == -1)
		return -1;
	return 0;
}

static void
schedule_reconnect(struct acq *s)
{
	s->reconnect_at = clock_mono_ms() + backoff_next(&s->backoff);
}

static char *
env_entry(const char *name, const char *value)
{
	size_t n = strlen(name) + 1 + strlen(value) + 1;
	char *e = malloc(n);

	if (e != NULL)
		snprintf(e, n, "%s=%s", name, value);
	return e;
}

/* environ plus MQLOCK_LOCK, MQLOCK_TOKEN, MQLOCK_CLIENT (replacing any
 * inherited ones).  NULL when memory runs out. */
static char **
child_env(const struct acq *s)
{
	static const char *const ours[] = {
	    "MQLOCK_LOCK=", "MQLOCK_TOKEN=", "MQLOCK_CLIENT="};
	char token[32], **env;
	size_t n = 0, i, j, k = 0;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 4, sizeof(*env))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		for (j = 0; j < 3; j++) {
			if (strncmp(environ[i], ours[j], strlen(ours[j])) == 0)
				break;
		}
		if (j == 3)
			env[k++] = environ[i];
	}
	snprintf(token, sizeof(token), "%llu", (unsigned long long)s->token);
	env[k++] = env_entry("MQLOCK_LOCK", s->a->lock);
	env[k++] = env_entry("MQLOCK_TOKEN", token);
	env[k++] = env_entry("MQLOCK_CLIENT", s->c->client_id);
	if (env[k - 1] == NULL || env[k - 2] == NULL || env[k - 3] == NULL) {
		free(env[k - 1]);
		free(env[k - 2]);
		free(env[k - 3]);
		free(env);
		return NULL;
	}
	return env;
}

static void
free_env(char **env)
{
	size_t n = 0;

	if (env == NULL)
		return;
	while (env[n] != NULL)
		n++;
	/* Only the last three are ours. */
	free(env[n - 1]);
	free(env[n - 2]);
	free(env[n - 3]);
	free(env);
}

/*
 * Run COMMAND in its own process group.  When we own the terminal's
 * foreground, hand it over, so that an editor can read the keyboard and
 * ^C reaches COMMAND.  The child waits on a pipe until that is done.
 */
static int
start_command(struct acq *s)
{
	char **env = child_env(s);
	int sync[2];
	pid_t pid;
	char b = 0;

	if (env == NULL) {
		fprintf(stderr, "mqlock: out of memory\n");
		return -1;
	}
	if (pipe(sync) == -1) {
		fprintf(stderr, "mqlock: pipe: %s\n", strerror(errno));
		free_env(env);
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) == -1) {
		fprintf(stderr, "mqlock: fork: %s\n", strerror(errno));
		close(sync[0]);
		close(sync[1]);
		free_env(env);
		return -1;
	}
	if (pid == 0) {
		close(sync[1]);
		setpgid(0, 0);
		cli_signals_restore();
		while (read(sync[0], &b, 1) == -1 && errno == EINTR)
			;
		close(sync[0]);
		environ = env;
		execvp(s->a->argv[0], s->a->argv);
		fprintf(stderr, "mqlock: %s: %s\n", s->a->argv[0],
		    strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	close(sync[0]);
	/* Both sides set the group, so neither order of running races. */
	if (setpgid(pid, pid) == -1 && errno != EACCES)
		fprintf(stderr, "mqlock: setpgid: %s\n", strerror(errno));
	s->gave_tty = 0;
	if (isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp()) {
		if (tcsetpgrp(STDIN_FILENO, pid) == 0)
			s->gave_tty = 1;
	}
	if (write(sync[1], &b, 1) == -1)
		fprintf(stderr, "mqlock: pipe write: %s\n", strerror(errno));
	close(sync[1]);
	free_env(env);
	s->child = pid;
	return 0;
}

static void
take_tty_back(struct acq *s)
{
	if (s->gave_tty) {
		/* SIGTTOU is ignored: we ask from the background. */
		tcsetpgrp(STDIN_FILENO, getpgrp());
		s->gave_tty = 0;
	}
}

static void
stop_command(struct acq *s, const char *why)
{
	fprintf(stderr, "mqlock: lock %s lost (%s)\n", s->a->lock, why);
	s->phase = STOPPING;
	s->activity_at = -1;
	if (s->child > 0 && kill(-s->child, SIGTERM) == -1 && errno != ESRCH)
		fprintf(stderr, "mqlock: kill: %s\n", strerror(errno));
}

/*
 * COMMAND ended with code.  Exit 0 only for a lock that stayed ours all
 * along: this process may have been stopped or cut off while COMMAND ran
 * and not have heard that the lock went to someone else.  An acquire from
 * the holder is answered with its own token; any other answer means it
 * was lost (tokens change with every grant).  The answer that counts is
 * the MQTT 5 reply to send_confirm(), whose correlation data is ours.
 */
static void
start_confirming(struct acq *s, int code)
{
	s->phase = CONFIRMING;
	s->release_status = code;
	s->activity_at = -1;
	s->release_until = clock_mono_ms() + RELEASE_RECONNECT_MS;
	if (mqtt_is_connected(s->m))
		send_confirm(s);
}

/* The answer to the confirming acquire: release, and say how it went. */
static void
confirmed(struct acq *s, int ours)
{
	if (!ours)
		fprintf(stderr,
		    "mqlock: lock %s was lost while the command ran\n",
		    s->a->lock);
	release_now(s);
	finish(s, ours ? s->release_status : EXIT_SOFTWARE);
}

/* Reap COMMAND if it ended. */
static void
reap(struct acq *s)
{
	int st, code;
	pid_t r;

	if (s->child <= 0)
		return;
	do
		r = waitpid(s->child, &st, WNOHANG);
	while (r == -1 && errno == EINTR);
	if (r != s->child)
		return;
	s->child = 0;
	take_tty_back(s);
	code = WIFEXITED(st)  ? WEXITSTATUS(st)
	    : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
			      : EXIT_SOFTWARE;
	if (s->phase == STOPPING)
		finish(s, EXIT_SOFTWARE);
	else
		start_confirming(s, code);
}

static void
send_activity(struct acq *s)
{
	if (mqtt_is_connected(s->m))
		(void)send_request(s, LT_OP_ACTIVITY);
	s->activity_at = clock_mono_ms() + s->activity_ms;
}

static void
on_granted(struct acq *s, const cJSON *ev)
{
	int64_t token = 0, deadline, left;

	if (cli_json_int(ev, "token", &token) == -1 || token < 0) {
		fprintf(stderr, "mqlock: granted event without a token\n");
		token = 0;
	}
	/* Activity every third of the idle time left, within bounds. */
	s->activity_ms = ACTIVITY_MAX_MS;
	if (cli_json_int(ev, "idle_deadline", &deadline) == 0) {
		left = (deadline - clock_wall_ms()) / 3;
		s->activity_ms = left < ACTIVITY_MIN_MS ? ACTIVITY_MIN_MS
		    : left > ACTIVITY_MAX_MS            ? ACTIVITY_MAX_MS
							: left;
	}
	s->activity_at = clock_mono_ms() + s->activity_ms;
	if (s->phase == RUNNING) {
		/*
		 * Granted again after a reconnect: with our token we kept the
		 * lock; with a new one it was lost meanwhile (its revoked event
		 * went by while we were away) and COMMAND's token is stale.
		 */
		if ((uint64_t)token != s->token) {
			if (mqtt_is_connected(s->m))
				(void)send_request(s, LT_OP_RELEASE);
			stop_command(s, "disconnect");
		}
		return;
	}
	s->token = (uint64_t)token;
	s->wait_until = -1;
	s->phase = RUNNING;
	if (start_command(s) == -1) {
		start_releasing(s, EXIT_OSERR);
		return;
	}
}

/* Event handlers, one per event name; each decides by phase. */

/*
 * While COMMAND is being stopped because the lock was lost, an acquire we
 * re-sent earlier (reconnect, new epoch) may still be answered: leave
 * whatever it got us, or the lock would go to a process that is exiting.
 */
static void
let_go(struct acq *s)
{
	if (mqtt_is_connected(s->m))
		(void)send_request(s, LT_OP_RELEASE);
}

static void
ev_granted(struct acq *s, const cJSON *ev)
{
	int64_t token = -1;

	if (s->phase == WAITING || s->phase == RUNNING)
		on_granted(s, ev);
	else if (s->phase == STOPPING)
		let_go(s);
	else if (s->phase == CONFIRMING)
		confirmed(s,
		    cli_json_int(ev, "token", &token) == 0 &&
			(uint64_t)token == s->token);
}

static void
ev_queued(struct acq *s, const cJSON *ev)
{
	int64_t n;

	if (s->phase == WAITING && !s->queued_said &&
	    cli_json_int(ev, "position", &n) == 0) {
		fprintf(stderr, "mqlock: waiting for %s (position %lld)\n",
		    s->a->lock, (long long)n);
		s->queued_said = 1;
	} else if (s->phase == RUNNING) {
		/* Put back in the queue: the lock went to someone else
		 * while we were away.  Leave the queue. */
		let_go(s);
		stop_command(s, "disconnect");
	} else if (s->phase == STOPPING) {
		let_go(s);
	}
}

static void
ev_busy(struct acq *s, const cJSON *ev)
{
	if (s->phase == WAITING) {
		fprintf(stderr, "mqlock: %s is busy\n", s->a->lock);
		finish(s, EXIT_TEMPFAIL);
	}
}

/* A revocation or drop reason in words, with the operator's message. */
static const char *
reason_words(const cJSON *ev, char *buf, size_t size)
{
	static const struct {
		const char *reason, *words;
	} words[] = {
	    {"idle", "idle too long"},
	    {"disconnect", "disconnected longer than the grace period"},
	    {"admin", "removed by an operator"},
	    {"takeover", "taken over by the same user elsewhere"},
	};
	const char *reason = cli_json_str(ev, "reason");
	const char *message = cli_json_str(ev, "message");
	const char *w = reason != NULL ? reason : "no reason given";

	for (size_t i = 0;
	     reason != NULL && i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcmp(reason, words[i].reason) == 0)
			w = words[i].words;
	}
	char esc[4 * MQL_REASON_MAX + 1];

	log_escape(message != NULL ? message : "",
	    message != NULL ? strlen(message) : 0, esc, sizeof(esc));
	snprintf(buf, size, "%s%s%s", w, esc[0] != '\0' ? ": " : "", esc);
	return buf;
}

static void
ev_revoked(struct acq *s, const cJSON *ev)
{
	char why[4 * MQL_REASON_MAX + 64];

	if (s->phase == RUNNING) {
		/* A re-sent acquire may have queued us again behind it. */
		let_go(s);
		stop_command(s, reason_words(ev, why, sizeof(why)));
	} else if (s->phase == CONFIRMING) {
		confirmed(s, 0);
	}
}

/* Removed from the queue without asking (operator, roll call, grace). */
static void
ev_dropped(struct acq *s, const cJSON *ev)
{
	char why[4 * MQL_REASON_MAX + 64];

	if (s->phase != WAITING)
		return;
	fprintf(stderr, "mqlock: no longer waiting for %s (%s)\n", s->a->lock,
	    reason_words(ev, why, sizeof(why)));
	finish(s, EXIT_TEMPFAIL);
}

static void
ev_idle_warning(struct acq *s, const cJSON *ev)
{
	if (s->phase == RUNNING)
		send_activity(s);
}

static void
ev_error(struct acq *s, const cJSON *ev)
{
	const char *code = cli_json_str(ev, "code");
	const char *text = cli_json_str(ev, "message");

	fprintf(stderr, "mqlock: %s: %s: %s\n", s->a->lock,
	    code != NULL ? code : "error", text != NULL ? text : "refused");
	/* Refused while waiting: nothing changed, nothing to release. */
	if (s->phase == WAITING)
		finish(s, 1);
	/* Most likely the confirming acquire: the lock cannot be vouched for.
	 */
	else if (s->phase == CONFIRMING)
		confirmed(s, 0);
}

static const struct {
	const char *name;
	void (*fn)(struct acq *, const cJSON *);
} event_handlers[] = {
    {"granted", ev_granted},
    {"queued", ev_queued},
    {"busy", ev_busy},
    {"revoked", ev_revoked},
    {"dropped", ev_dropped},
    {"idle-warning", ev_idle_warning},
    {"error", ev_error},
};

static void
on_event(struct acq *s, const struct mqtt_in *in)
{
	cJSON *ev = cli_json_parse(in->payload, in->len);
	const char *name, *lock;
	size_t i;

	if (ev == NULL)
		return;
	name = cli_json_str(ev, "event");
	lock = cli_json_str(ev, "lock");
	/* Ours: about our lock, or an error about a lock it could not name. */
	if (name == NULL ||
	    (lock != NULL ? strcmp(lock, s->a->lock) != 0
			  : strcmp(name, "error") != 0)) {
		cJSON_Delete(ev);
		return;
	}
	for (i = 0; i < sizeof(event_handlers) / sizeof(event_handlers[0]);
	     i++) {
		if (strcmp(name, event_handlers[i].name) == 0) {
			event_handlers[i].fn(s, ev);
			break;
		}
	}
	cJSON_Delete(ev);
}

static void
on_status(struct acq *s, const struct mqtt_in *in)
{
	cJSON *st = cli_json_parse(in->payload, in->len);
	const char *state;
	int64_t epoch;

	if (st == NULL)
		return;
	state = cli_json_str(st, "state");
	if (state != NULL && strcmp(state, "offline") == 0 &&
	    s->phase == WAITING && !s->offline_said) {
		fprintf(stderr,
		    "mqlock: the lock service is offline; "
		    "waiting for it\n");
		s->offline_said = 1;
	}
	if (state != NULL && strcmp(state, "online") == 0 && s->offline_said) {
		if (s->phase == WAITING)
			fprintf(stderr, "mqlock: the lock service is back\n");
		s->offline_said = 0;
	}
	if (state != NULL && strcmp(state, "online") == 0 &&
	    cli_json_int(st, "epoch", &epoch) == 0) {
		/* A coordinator that started again may not know us. */
		if (s->have_epoch && epoch > s->epoch &&
		    (s->phase == WAITING || s->phase == RUNNING))
			(void)send_request(s, LT_OP_ACQUIRE);
		else if (s->have_epoch && epoch > s->epoch &&
		    s->phase == CONFIRMING)
			send_confirm(s);
		if (!s->have_epoch || epoch > s->epoch)
			s->epoch = epoch;
		s->have_epoch = 1;
	}
	cJSON_Delete(st);
}

/*
 * The reply to the confirming acquire (others are old: ignored).  Refused
 * as stale, it was sent on a connection whose end the coordinator has seen
 * already: the next connection sends a fresh one.
 */
static void
on_reply(struct acq *s, const struct mqtt_in *in)
{
	cJSON *r;
	const char *result, *code;
	int64_t token = -1;

	if (s->phase != CONFIRMING || in->corr == NULL ||
	    in->corr_len != NONCE_DIGITS ||
	    memcmp(in->corr, s->nonce, NONCE_DIGITS) != 0 ||
	    (r = cli_json_parse(in->payload, in->len)) == NULL)
		return;
	code = cli_json_str(r, "code");
	if (code != NULL && strcmp(code, "stale") == 0) {
		cJSON_Delete(r);
		return;
	}
	result = cli_json_str(r, "result");
	confirmed(s,
	    result != NULL && strcmp(result, "granted") == 0 &&
		cli_json_int(r, "token", &token) == 0 &&
		(uint64_t)token == s->token);
	cJSON_Delete(r);
}

static void
on_item(struct acq *s, const struct mqtt_in *in)
{
	switch (in->kind) {
	case MQTT_IN_CONNECTED:
		s->ever_connected = 1;
		s->lost_said = 0;
		backoff_reset(&s->backoff);
		if (s->phase == WAITING || s->phase == RUNNING)
			(void)send_request(s, LT_OP_ACQUIRE);
		else if (s->phase == CONFIRMING)
			send_confirm(s);
		else if (s->phase == RELEASING) {
			release_now(s);
			finish(s, s->release_status);
		}
		break;
	case MQTT_IN_CONNECT_FAILED:
		if (s->phase == RELEASING && !s->ever_connected) {
			finish(s, s->release_status);
			break;
		}
		if (!s->ever_connected) {
			fprintf(stderr, "mqlock: cannot connect to %s: %s\n",
			    s->c->broker, in->reason);
			finish(s, EXIT_UNAVAILABLE);
			break;
		}
		schedule_reconnect(s);
		break;
	case MQTT_IN_LOST:
		if (!s->lost_said)
			fprintf(stderr,
			    "mqlock: connection to %s lost (%s); "
			    "reconnecting\n",
			    s->c->broker, in->reason);
		s->lost_said = 1;
		schedule_reconnect(s);
		break;
	case MQTT_IN_MESSAGE:
		if (strcmp(in->topic, s->t_events) == 0 && !in->retained)
			on_event(s, in);
		else if (strcmp(in->topic, s->t_status) == 0)
			on_status(s, in);
		else if (strcmp(in->topic, s->t_reply) == 0)
			on_reply(s, in);
		break;
	case MQTT_IN_OVERFLOW:
	default:
		break;
	}
}

static void
on_signal(struct acq *s, int sig)
{
	/*
	 * COMMAND's end is handled after everything the broker sent until
	 * now (the main loop reaps after the queue): a revocation that came
	 * in while this process was stopped counts before it.
	 */
	if (sig == SIGCHLD)
		return;
	switch (s->phase) {
	case WAITING:
		start_releasing(s, 128 + sig);
		break;
	case RUNNING:
	case STOPPING:
		/* COMMAND decides; its end releases the lock. */
		if (s->child > 0 && kill(-s->child, sig) == -1 &&
		    errno != ESRCH)
			fprintf(stderr, "mqlock: kill: %s\n", strerror(errno));
		break;
	case CONFIRMING:
		/* Leaving before the answer: the lock cannot be vouched for. */
		finish(s, EXIT_SOFTWARE);
		break;
	case RELEASING:
	default:
		finish(s, s->release_status);
		break;
	}
}

static void
on_timers(struct acq *s)
{
	int64_t now = clock_mono_ms();

	if (s->reconnect_at >= 0 && now >= s->reconnect_at) {
		s->reconnect_at = -1;
		s->conn++;
		if (start_connect(s) == -1)
			schedule_reconnect(s);
	}
	if (s->phase == WAITING && s->wait_until >= 0 && now >= s->wait_until) {
		fprintf(stderr, "mqlock: timed out waiting for %s\n",
		    s->a->lock);
		start_releasing(s, EXIT_TEMPFAIL);
	}
	if (s->phase == RUNNING && s->activity_at >= 0 && now >= s->activity_at)
		send_activity(s);
	if (s->phase == CONFIRMING && now >= s->release_until) {
		fprintf(stderr,
		    "mqlock: could not confirm that %s stayed ours (no "
		    "answer); the coordinator frees it after its grace "
		    "period\n",
		    s->a->lock);
		finish(s, EXIT_SOFTWARE);
	}
	if (s->phase == RELEASING && s->exit_code < 0 &&
	    now >= s->release_until) {
		fprintf(stderr,
		    "mqlock: could not release %s (not connected); the "
		    "coordinator frees it after its grace period\n",
		    s->a->lock);
		finish(s, s->release_status);
	}
}

static int64_t
next_deadline(const struct acq *s)
{
	int64_t t[4] = {s->reconnect_at, -1, -1, -1}, best = -1;
	size_t i;

	if (s->phase == WAITING)
		t[1] = s->wait_until;
	if (s->phase == RUNNING)
		t[2] = s->activity_at;
	if (s->phase == RELEASING || s->phase == CONFIRMING)
		t[3] = s->release_until;
	for (i = 0; i < 4; i++) {
		if (t[i] >= 0 && (best < 0 || t[i] < best))
			best = t[i];
	}
	return best;
}

int
cmd_acquire(const struct cli *c, const struct acquire_args *a)
{
	struct mqtt_sub subs[3];
	struct mqtt_in *in;
	struct acq s;
	int sig;

	memset(&s, 0, sizeof(s));
	s.c = c;
	s.a = a;
	s.conn = 1;
	s.phase = WAITING;
	s.exit_code = -1;
	s.backoff = BACKOFF_RECONNECT;
	s.reconnect_at = -1;
	s.activity_at = -1;
	s.release_until = -1;
	s.wait_until = a->wait_ms > 0 ? clock_mono_ms() + a->wait_ms : -1;
	if (cli_random_hex(s.session, SESSION_DIGITS) == -1)
		return EXIT_SOFTWARE;
	if (cli_request_topic(c, a->lock, s.t_request, TOPIC_SZ) == -1)
		return EXIT_USAGE;
	if (codec_client_topic(s.t_events, TOPIC_SZ, c->prefix, c->client_id,
		"events") == -1 ||
	    codec_client_topic(s.t_will, TOPIC_SZ, c->prefix, c->client_id,
		"will") == -1 ||
	    codec_topic(s.t_status, TOPIC_SZ, c->prefix, "_coordinator",
		"status") == -1 ||
	    snprintf(s.t_reply, TOPIC_SZ, "%s%s/mqlock", c->reply_prefix,
		c->client_id) >= TOPIC_SZ) {
		fprintf(stderr, "mqlock: topic too long\n");
		return EXIT_USAGE;
	}
	/* Retain handling 2: no retained message, which only a forger sets. */
	subs[0] = (struct mqtt_sub){s.t_events, 1, 0, 2, 0};
	subs[1] = (struct mqtt_sub){s.t_status, 1, 0, 0, 0};
	subs[2] = (struct mqtt_sub){s.t_reply, 1, 0, 0, 0};
	if ((s.m = cli_client(c, subs, 3)) == NULL)
		return EXIT_UNAVAILABLE;
	if (start_connect(&s) == -1) {
		fprintf(stderr, "mqlock: cannot connect to %s\n", c->broker);
		mqtt_free(s.m);
		return EXIT_UNAVAILABLE;
	}

	while (s.exit_code < 0) {
		sig = cli_wait(s.m, next_deadline(&s));
		if (sig != 0)
			on_signal(&s, sig);
		while (s.exit_code < 0 && (in = mqtt_next(s.m)) != NULL) {
			on_item(&s, in);
			mqtt_in_free(in);
		}
		/* SIGCHLD may have been coalesced with another wakeup. */
		if (s.exit_code < 0)
			reap(&s);
		if (s.exit_code < 0)
			on_timers(&s);
	}
	take_tty_back(&s);
	if (s.release_failed)
		mqtt_drop(s.m);
	mqtt_free(s.m);
	return s.exit_code;
}
