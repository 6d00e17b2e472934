/*
 * coord: the coordinator's set-up, loop and broker connection.  Messages
 * come in (handle.c), one batch is decided, committed and published
 * (send.c); epochs begin here, whenever the broker may have lost wills or
 * messages meant for us.
 */
#include "mqlockd/coord.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ratelimit.h"
#include "io/clock.h"
#include "io/log.h"
#include "io/loop.h"
#include "io/secret.h"
#include "io/siphash.h"
#include "io/store.h"
#include "mqlockd/coord_int.h"
#include "mqlockd/ticket.h"

/* Long enough to survive any restart of mqlockd: a week. */
#define SESSION_EXPIRY_S 604800
#define STOP_TIMEOUT_MS 3000
/* Woken this much later than asked: treated as a stall (see run_loop). */
#define STALL_MS 500
/* Rate-limit buckets: 16384 sets of 4, about 1.5 MB whatever the traffic. */
#define RATE_SETS 16384
/* Error events for input refused before the table sees it, in all. */
#define REFUSAL_EVENTS_PER_S 200
#define REFUSAL_EVENTS_BURST 1000
/* A client may burst up to ten seconds' worth of its rate. */
#define RATE_BURST_S 10
/* QoS 1 publishes in flight at most, whatever the receive maximum. */
#define OUT_WINDOW_MAX 1000
/* Publishes waiting for the window beyond which no new input is read. */
#define BACKLOG_HIGH (4 * BATCH_MAX)
/* The broker's count of messages dropped for full queues ($SYS). */
#define SYS_DROPPED "$SYS/broker/publish/messages/dropped"

static lt_ms
rollcall_window(const struct coord *d)
{
	return d->cfg->grace_ms + d->cfg->keepalive_ms;
}

/* ---- epochs ---- */

/*
 * Begin a new epoch while connected: every client that holds or waits must
 * say so again within the roll call's window (topics.md).  Called when a
 * queue or the table was full (ghosts of clients gone without a will take
 * the room) or the broker dropped messages; at most once per window.
 */
static int
begin_rollcall(struct coord *d)
{
	struct lt_event resume = {.kind = LT_EV_RESUME};
	int64_t now = clock_mono_ms();

	d->want_rollcall = false;
	if (!d->connected ||
	    (d->rollcall_at != 0 && now - d->rollcall_at < rollcall_window(d)))
		return 0;
	if (store_next_epoch(d->store, &d->epoch) != 0)
		return -1;
	d->rollcall_at = now;
	resume.u.resume.rollcall = true;
	resume.u.resume.window = rollcall_window(d);
	handle_apply(d, &resume, "roll call");
	log_info("epoch %" PRIu64 " begins: roll call (%s)", d->epoch,
	    d->rollcall_why != NULL ? d->rollcall_why : "asked");
	if (send_flush(d) != 0)
		return -1;
	send_status(d, true, d->online_since, NULL);
	return 0;
}

/* ---- connection ---- */

static void
schedule_reconnect(struct coord *d, const char *why)
{
	if (d->connected || d->offline_since == 0)
		d->offline_since = clock_mono_ms();
	d->connected = false;
	int64_t delay = backoff_next(&d->backoff);

	d->reconnect_at = clock_mono_ms() + delay;
	log_warn("broker %s: %s; retrying in %" PRId64 " ms", d->cfg->broker,
	    why, delay);
}

static void
on_connected(struct coord *d, const struct mqtt_in *in)
{
	struct lt_event resume = {.kind = LT_EV_RESUME};

	d->connected = true;
	d->offline_since = 0;
	backoff_reset(&d->backoff);
	d->sys_dropped_known = false;
	/*
	 * Below the broker's receive maximum (past it Paho holds publishes
	 * back for about a second), and never so many that Paho's cost per
	 * publish grows with its queue.
	 */
	d->window = in->receive_max > 1 ? in->receive_max - 1 : 1;
	if (d->window > OUT_WINDOW_MAX)
		d->window = OUT_WINDOW_MAX;
	d->online_since = clock_wall_ms();
	log_info("connected to %s (session %s), epoch %" PRIu64
		 ", receive maximum %u",
	    d->cfg->broker, in->session_present ? "resumed" : "new", d->epoch,
	    in->receive_max);
	/*
	 * The roll call of this epoch was opened when it began (at start, or
	 * when the broker was lost), so requests the broker kept for us
	 * count as answers.  Now that we hear the broker again, nobody loses
	 * anything sooner than a grace period, or a full window to answer.
	 */
	resume.u.resume.rollcall = false;
	resume.u.resume.window = rollcall_window(d);
	handle_apply(d, &resume, "resume");
	/*
	 * Owner messages are retained state the broker may have lost, and
	 * what we published while cut off was dropped: publish them all
	 * again from the journal.
	 */
	send_republish_begin(d);
	send_status(d, true, d->online_since, NULL);
}

/*
 * The broker is gone: a new epoch begins.  Wills may be lost with it (a
 * broker killed without its persistence, or one restored from an old
 * save), so every client must answer a roll call once we are back.
 */
static void
on_lost(struct coord *d, const char *why)
{
	struct lt_event resume = {.kind = LT_EV_RESUME};

	if (d->connected) {
		if (store_next_epoch(d->store, &d->epoch) != 0) {
			d->fx.failed = true;
		} else {
			d->rollcall_at = clock_mono_ms();
			resume.u.resume.rollcall = true;
			resume.u.resume.window = rollcall_window(d);
			handle_apply(d, &resume, "roll call");
			log_info("epoch %" PRIu64 " begins: roll call",
			    d->epoch);
		}
	}
	send_drop_queue(d);
	schedule_reconnect(d, why);
}

static void
handle_in(struct coord *d, struct mqtt_in *in)
{
	switch (in->kind) {
	case MQTT_IN_MESSAGE:
		handle_message(d, in);
		break;
	case MQTT_IN_CONNECTED:
		on_connected(d, in);
		break;
	case MQTT_IN_LOST:
		on_lost(d, in->reason[0] ? in->reason : "lost");
		break;
	case MQTT_IN_CONNECT_FAILED:
		schedule_reconnect(d, in->reason[0] ? in->reason : "failed");
		break;
	case MQTT_IN_OVERFLOW:
		log_error("inbound queue full: %zu messages dropped",
		    in->dropped);
		/* Requests may be among them: ask everyone again. */
		d->want_rollcall = true;
		d->rollcall_why = "inbound queue overflowed";
		break;
	case MQTT_IN_DRAINED: /* send_pump() goes on */
	default:
		break;
	}
}

/* ---- set-up and loop ---- */

/*
 * A new Paho client for every connection attempt.  With our persistent
 * session Paho would otherwise send again, on the next connection, the
 * publishes that were in flight when the last one died; Paho 1.3.12 can
 * send those with a broken topic, which the broker answers by dropping us
 * ("protocol error") on every reconnect.  What they said is republished
 * from the journal anyway, and the broker keeps our session either way.
 */
static int
open_mqtt(struct coord *d)
{
	char *offline;
	struct mqtt_opts o = {
	    .uri = d->cfg->broker,
	    .client_id = d->cfg->client_id,
	    .username = d->cfg->username,
	    .password = d->password,
	    .keepalive = (int)((d->cfg->keepalive_ms + 999) / 1000),
	    .clean_start = 0,
	    .session_expiry = SESSION_EXPIRY_S,
	    .subs = d->subs,
	    .nsubs = d->nsubs,
	    .cafile = d->cfg->cafile,
	    .certfile = d->cfg->certfile,
	    .keyfile = d->cfg->keyfile,
	};

	mqtt_free(d->mqtt);
	d->mqtt = mqtt_new(&o);
	if (d->mqtt == NULL)
		return -1;
	offline = send_status_text(d, false, clock_wall_ms(), NULL);
	if (offline == NULL ||
	    mqtt_set_will(d->mqtt, d->status_topic, offline, strlen(offline),
		1) != 0) {
		free(offline);
		return -1;
	}
	free(offline);
	if (d->offline_since == 0)
		d->offline_since = clock_mono_ms();
	if (mqtt_connect(d->mqtt) != 0)
		schedule_reconnect(d, "connect not started");
	return 0;
}

static int64_t
wait_ms(const struct coord *d, bool more_out)
{
	int64_t t = INT64_MAX, now = clock_mono_ms();

	if (d->connected) {
		lt_ms next = locktab_next_deadline(d->tab);

		if (next != LT_NEVER)
			t = next - clock_wall_ms();
		if (d->want_rollcall)
			t = 0;
	} else if (d->cfg->offline_exit_ms > 0 && d->offline_since != 0 &&
	    d->offline_since + d->cfg->offline_exit_ms - now < t) {
		t = d->offline_since + d->cfg->offline_exit_ms - now;
	}
	/* Room to publish what waits: go on at once. */
	if (more_out)
		t = 0;
	if (d->reconnect_at != 0 && d->reconnect_at - now < t)
		t = d->reconnect_at - now;
	if (t == INT64_MAX)
		return -1; /* nothing to wait for but input */
	return t < 0 ? 0 : t;
}

/* Nothing undecided was announced; say why we stop, then go. */
static int
stop_on_journal_failure(struct coord *d)
{
	send_status(d, false, clock_wall_ms(), "journal write failed");
	send_pump(d);
	mqtt_wait_published(d->mqtt, STOP_TIMEOUT_MS);
	return 1;
}

/*
 * Woken far later than asked (the process was stopped, or starved): the
 * broker may have dropped us without our knowing yet.  Nobody loses a lock
 * for that time: floor the deadlines before any of them runs.
 */
static void
floor_after_stall(struct coord *d, int64_t late)
{
	struct lt_event resume = {.kind = LT_EV_RESUME};

	resume.u.resume.window = rollcall_window(d);
	log_warn("stalled for %" PRId64 " ms; deadlines floored", late);
	handle_apply(d, &resume, "resume after a stall");
}

/* One batch of input; 0, or -1 when the journal failed. */
static int
take_input(struct coord *d)
{
	/* Publishes still wait for room: let the broker hold our input. */
	if (send_backlog(d) > BACKLOG_HIGH)
		return 0;
	for (int n = 0; n < BATCH_MAX; n++) {
		struct mqtt_in *in = mqtt_next(d->mqtt);

		if (in == NULL)
			break;
		/*
		 * A connection change republishes state from the table:
		 * commit what the batch decided so far first.
		 */
		if (in->kind != MQTT_IN_MESSAGE && send_flush(d) != 0) {
			mqtt_in_free(in);
			return -1;
		}
		handle_in(d, in);
		mqtt_in_free(in);
	}
	return 0;
}

static int
run_loop(struct coord *d, int sigfd)
{
	bool more_out = false;

	for (;;) {
		int fds[2] = {sigfd, mqtt_wake_fd(d->mqtt)};
		int64_t timeout = wait_ms(d, more_out),
			before = clock_mono_ms();
		int ready[2];
		int sig;

		log_flush();
		if (loop_wait(fds, 2, timeout, ready) < 0)
			return 1;
		if (d->connected && timeout >= 0 &&
		    clock_mono_ms() - before > timeout + STALL_MS)
			floor_after_stall(d, clock_mono_ms() - before);
		while ((sig = loop_next_signal(sigfd)) != 0) {
			if (sig == SIGINT || sig == SIGTERM) {
				log_info("signal %d: stopping", sig);
				return 0;
			}
		}
		if (take_input(d) != 0)
			return stop_on_journal_failure(d);
		/*
		 * Deadlines only run while we hear the broker: a coordinator
		 * cut off from it cannot tell who is alive.
		 */
		while (d->connected &&
		    locktab_next_deadline(d->tab) <= clock_wall_ms() &&
		    d->fx.n < BATCH_MAX) {
			struct lt_event tick = {.kind = LT_EV_TICK};

			handle_apply(d, &tick, "tick");
		}
		if (send_flush(d) != 0)
			return stop_on_journal_failure(d);
		if (d->want_rollcall && begin_rollcall(d) != 0)
			return stop_on_journal_failure(d);
		more_out = send_pump(d);
		if (!d->connected && d->cfg->offline_exit_ms > 0 &&
		    d->offline_since != 0 &&
		    clock_mono_ms() - d->offline_since >=
			d->cfg->offline_exit_ms) {
			log_error("no broker for %" PRId64
				  " ms (--offline-exit): exiting so that a "
				  "supervisor can restart us",
			    clock_mono_ms() - d->offline_since);
			return 1;
		}
		if (d->reconnect_at != 0 &&
		    clock_mono_ms() >= d->reconnect_at) {
			d->reconnect_at = 0;
			if (open_mqtt(d) != 0)
				return 1;
		}
	}
}

static int
make_topics(struct coord *d, char *req, char *req_bound, char *will,
    char *admin, char *admin_bound)
{
	const char *p = d->cfg->prefix;

	snprintf(d->sys_topic, sizeof(d->sys_topic), "%s", SYS_DROPPED);
	return codec_topic(d->status_topic, TOPIC_MAX, p, "_coordinator",
		   "status") != 0 ||
		codec_topic(req, TOPIC_MAX, p, "+", "request") != 0 ||
		codec_topic(req_bound, TOPIC_MAX, p, "+", "request/+") != 0 ||
		codec_client_topic(will, TOPIC_MAX, p, "+", "will") != 0 ||
		codec_topic(admin, TOPIC_MAX, p, "_admin", "command") != 0 ||
		codec_topic(admin_bound, TOPIC_MAX, p, "_admin", "command/+") !=
		    0
	    ? -1
	    : 0;
}

static int
open_state(struct coord *d, const struct config *cfg)
{
	struct lt_config lc;
	char err[512];

	config_lt(cfg, &lc);
	d->idle_policy = lc.idle_policy;
	if (lc.hasher.fn == NULL) {
		log_error("libsodium failed to start");
		return -1;
	}
	if (cfg->ticket_key != NULL &&
	    (d->ticket_key = ticket_key_new(cfg->ticket_secret.key,
		 cfg->ticket_secret.len, err, sizeof(err))) == NULL) {
		log_error("--ticket-key: %s", err);
		return -1;
	}
	d->store = store_open(cfg->db, err, sizeof(err));
	if (d->store == NULL) {
		log_error("journal: %s", err);
		return -1;
	}
	d->rate = ratelimit_new(RATE_SETS, (double)cfg->rate_milli / 1000.0,
	    (double)cfg->rate_milli / 1000.0 * RATE_BURST_S, &lc.hasher);
	d->refusals = ratelimit_new(1, REFUSAL_EVENTS_PER_S,
	    REFUSAL_EVENTS_BURST, &lc.hasher);
	d->tab = locktab_new(&lc);
	if (d->rate == NULL || d->refusals == NULL || d->tab == NULL ||
	    store_load(d->store, d->tab) != 0 ||
	    store_next_epoch(d->store, &d->epoch) != 0)
		return -1;
	log_info("mqlockd %s: journal %s: %zu locks, %zu clients, last token "
		 "%" PRIu64 ", epoch %" PRIu64,
	    MQLOCK_VERSION, cfg->db, locktab_nlocks(d->tab),
	    locktab_nclients(d->tab), locktab_last_token(d->tab), d->epoch);
	log_info("epoch %" PRIu64 " begins: roll call for %zu clients",
	    d->epoch, locktab_nclients(d->tab));
	/* Orphaned clients found by the restore are deleted now. */
	return send_flush(d);
}

static void
close_state(struct coord *d)
{
	send_drop_queue(d);
	mqtt_free(d->mqtt);
	locktab_free(d->tab);
	ratelimit_free(d->rate);
	ratelimit_free(d->refusals);
	store_close(d->store);
	ticket_key_free(d->ticket_key);
	lt_fxlist_free(&d->fx);
	send_clear_replies(d);
	free(d->replies);
	free(d->rp_ids);
}

int
coord_run(const struct config *cfg)
{
	static const int sigs[] = {SIGINT, SIGTERM};
	struct coord d = {.cfg = cfg,
	    .backoff = BACKOFF_RECONNECT,
	    .window = 1};
	char req[TOPIC_MAX], req_bound[TOPIC_MAX], will[TOPIC_MAX],
	    admin[TOPIC_MAX], admin_bound[TOPIC_MAX];
	/*
	 * Retain handling 2: no stored message on (re)subscribing.  Retain as
	 * published: a request someone publishes with retain keeps its flag
	 * on the way to us, so it is not acted on (and is cleared).  No local:
	 * what we clear is not sent back to us.  The broker's drop counter is
	 * retained: we want its current value at once.
	 */
	struct mqtt_sub subs[] = {
	    {req, 1, 1, 2, 1},
	    {req_bound, 1, 1, 2, 1},
	    {will, 1, 1, 2, 1},
	    {admin, 1, 1, 2, 1},
	    {admin_bound, 1, 1, 2, 1},
	    {d.sys_topic, 0, 0, 0, 0},
	};
	char password[1024], err[512];
	int rc = 1, sigfd;

	d.outq_tail = &d.outq;
	if (make_topics(&d, req, req_bound, will, admin, admin_bound) != 0)
		return 1;
	if (cfg->password_file != NULL &&
	    secret_read_line(cfg->password_file, password, sizeof(password),
		err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (open_state(&d, cfg) != 0)
		goto out;
	d.subs = subs;
	d.nsubs = sizeof(subs) / sizeof(subs[0]);
	d.password = cfg->password_file != NULL ? password : NULL;
	sigfd = loop_signals(sigs, sizeof(sigs) / sizeof(sigs[0]));
	if (sigfd < 0 || open_mqtt(&d) != 0)
		goto out;
	rc = run_loop(&d, sigfd);
	if (rc == 0 && d.connected) {
		/* A normal DISCONNECT suppresses our will: say it ourselves. */
		int64_t until = clock_mono_ms() + STOP_TIMEOUT_MS;

		d.rp_len = d.rp_off = 0;
		send_status(&d, false, clock_wall_ms(), NULL);
		while (send_pump(&d) ||
		    (send_backlog(&d) > 0 && clock_mono_ms() < until))
			mqtt_wait_published(d.mqtt, 100);
		mqtt_wait_published(d.mqtt, STOP_TIMEOUT_MS);
	}
	mqtt_disconnect(d.mqtt, STOP_TIMEOUT_MS);
out:
	close_state(&d);
	explicit_bzero(password, sizeof(password));
	return rc;
}
