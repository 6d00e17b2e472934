/*
 * coord: the coordinator's set-up, loop and broker connection.  Messages
 * come in (handle.c), one batch is decided, committed and published
 * (send.c); epochs begin here, whenever the broker may have lost wills or
 * messages meant for us.
 *
 * With etcd (--etcd) several mqlockd share one journal and one broker
 * session, and one of them leads (io/leader.h).  The others stand by:
 * connected to etcd and campaigning, with no table and no connection to
 * the broker, since the coordinator's client id and its persistent
 * session belong to the leader.  One visible cycle:
 *
 *   standby      --term won-->         taking over (load the journal,
 *                                      begin an epoch; retried while etcd
 *                                      does not answer)
 *   taking over  --loaded-->           serving (connect, resuming the
 *                                      session; republish; online)
 *   serving      --etcd unavailable--> held: nothing decided is announced
 *                                      and no input is taken until etcd
 *                                      takes the batch; status offline,
 *                                      "etcd unavailable"
 *   any          --term over-->        standby (nothing more published,
 *                                      broker connection ended, table
 *                                      freed)
 *
 * A term is over when leader_check() says so (by this process's clock, a
 * margin before the lease can have expired), or when etcd refused a write
 * as fenced.  Every publish asks leader_check() right before Paho gets it
 * (coord_may_publish()), so a leader paused past its lease that wakes up
 * announces nothing, and it does not connect again until it leads again,
 * in a new term, with a table loaded in that term.
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
/* Publishes waiting for room beyond which no new input is read. */
#define BACKLOG_HIGH (4 * BATCH_MAX)
/* The broker's count of messages dropped for full queues ($SYS). */
#define SYS_DROPPED "$SYS/broker/publish/messages/dropped"
/* etcd did not answer: ask again this much later. */
#define JOURNAL_RETRY_MS 250
/* The status's error while etcd does not answer (topics.md). */
#define ETCD_UNAVAILABLE "etcd unavailable"
/* Stepping down: how long the status saying why may take to be acked. */
#define STATUS_ACK_MS 500
/* With etcd, the loop wakes (and writes the log) at least this often. */
#define LOG_FLUSH_MS 1000
/* Passwords read from files, at most. */
#define PASSWORD_MAX 1024

static lt_ms
rollcall_window(const struct coord *d)
{
	return d->cfg->grace_ms + d->cfg->keepalive_ms;
}

/* ---- leadership ---- */

bool
coord_may_publish(struct coord *d)
{
	int64_t term = 0;

	if (d->leader == NULL)
		return true;
	if (d->term != 0 && !d->term_over &&
	    leader_check(d->leader, clock_mono_ms(), &term) && term == d->term)
		return true;
	if (d->term != 0 && !d->term_over)
		log_warn("term %" PRId64 " is over: nothing more is published",
		    d->term);
	d->term_over = true;
	return false;
}

/*
 * etcd does not answer: nothing decided is announced until it does, and
 * the status says why (while we may still publish at all).
 */
static void
say_etcd_down(struct coord *d, const char *why)
{
	if (d->etcd_down)
		return;
	d->etcd_down = true;
	log_warn("etcd does not answer (%s): announcing nothing until it does",
	    why);
	if (d->connected)
		send_status(d, false, clock_wall_ms(), ETCD_UNAVAILABLE);
}

static void
say_etcd_back(struct coord *d)
{
	if (!d->etcd_down)
		return;
	d->etcd_down = false;
	log_info("etcd answers again: serving");
	if (d->connected) {
		d->online_since = clock_wall_ms();
		send_status(d, true, d->online_since, NULL);
	}
}

/*
 * Stop leading: publish nothing more, end the broker connection, forget
 * the table.  The connection ends with MQTT 5 reason 0x04, so the broker
 * publishes our will (status offline), unless the last status we handed
 * the broker already says why we are offline (etcd unavailable): then a
 * normal DISCONNECT, after its acknowledgement, leaves that in place.  A
 * will fires only while our connection holds the session: once the next
 * leader has resumed it, the broker has closed ours and discarded its
 * will, so the next leader's online status is always retained last.
 */
static void
step_down(struct coord *d, const char *why)
{
	int64_t term = 0;

	if (d->term == 0)
		return;
	log_warn("term %" PRId64 " over (%s): standing by", d->term, why);
	/*
	 * Revoke the lease only while the leader thread is still in our
	 * term (a write was fenced): it may already lead in a newer one,
	 * which the next round takes over.
	 */
	if (leader_check(d->leader, clock_mono_ms(), &term) && term == d->term)
		leader_resign(d->leader, 0);
	/* Whoever leads next is logged once it is known. */
	snprintf(d->seen_leader, sizeof(d->seen_leader), "%s", d->cfg->etcd_id);
	d->term = 0;
	d->term_over = false;
	journal_set_term(d->journal, 0);
	send_drop_queue(d);
	if (d->mqtt != NULL) {
		if (d->status_says_why)
			mqtt_disconnect(d->mqtt, STATUS_ACK_MS);
		else
			mqtt_drop(d->mqtt);
		mqtt_free(d->mqtt);
		d->mqtt = NULL;
	}
	mqtt_in_free(d->stash);
	d->stash = NULL;
	locktab_free(d->tab);
	d->tab = NULL;
	lt_fxlist_clear(&d->fx);
	d->fx.failed = false;
	send_clear_replies(d);
	d->rp_len = d->rp_off = 0;
	d->connected = false;
	d->reconnect_at = 0;
	d->offline_since = 0;
	d->held = false;
	d->epoch_due = NULL;
	d->retry_at = 0;
	d->etcd_down = false;
	d->status_says_why = false;
	d->want_rollcall = false;
	d->rollcall_at = 0;
	d->sys_dropped_known = false;
	backoff_reset(&d->backoff);
}

/*
 * What a journal call's result asks of us.  Returns 0 to go on (also
 * after stepping down, or while holding for etcd), or 1 to stop.
 */
static int
journal_result(struct coord *d, int rc, const char *what)
{
	switch (rc) {
	case JOURNAL_OK:
		return 0;
	case JOURNAL_UNAVAILABLE:
		d->retry_at = clock_mono_ms() + JOURNAL_RETRY_MS;
		say_etcd_down(d, journal_error(d->journal));
		return 0;
	case JOURNAL_FENCED:
		step_down(d, "etcd refused a write: another term began");
		return 0;
	case JOURNAL_BROKEN:
	default:
		log_error("%s: the journal (%s) cannot be used", what,
		    journal_name(d->journal));
		return 1;
	}
}

/*
 * Commit and publish the batch.  etcd not answering holds it (nothing
 * announced, no new input) until a retry commits it.  0, or 1: stop.
 */
static int
flush(struct coord *d)
{
	int rc = send_flush(d);

	if (rc == JOURNAL_UNAVAILABLE)
		d->held = true;
	return journal_result(d, rc, "writing a batch");
}

/* ---- epochs ---- */

/*
 * Begin a new epoch: every client that holds or waits must say so again
 * within the roll call's window (topics.md).  The roll call joins the
 * batch.  Returns a journal_rc; while etcd does not answer the epoch
 * stays due (d->epoch_due), and nothing is taken or connected before it.
 */
static int
begin_epoch(struct coord *d, const char *why)
{
	struct lt_event resume = {.kind = LT_EV_RESUME};
	int rc = journal_next_epoch(d->journal, &d->epoch);

	if (rc != JOURNAL_OK) {
		if (rc == JOURNAL_UNAVAILABLE)
			d->epoch_due = why;
		return rc;
	}
	d->epoch_due = NULL;
	d->rollcall_at = clock_mono_ms();
	resume.u.resume.rollcall = true;
	resume.u.resume.window = rollcall_window(d);
	handle_apply(d, &resume, "roll call");
	log_info("epoch %" PRIu64 " begins: roll call (%s)", d->epoch, why);
	return JOURNAL_OK;
}

/*
 * A roll call while connected: a queue or the table was full (ghosts of
 * clients gone without a will take the room) or the broker dropped
 * messages; at most once per window.  0, or 1: stop.
 */
static int
begin_rollcall(struct coord *d)
{
	int64_t now = clock_mono_ms();
	int rc;

	d->want_rollcall = false;
	if (!d->connected ||
	    (d->rollcall_at != 0 && now - d->rollcall_at < rollcall_window(d)))
		return 0;
	rc =
	    begin_epoch(d, d->rollcall_why != NULL ? d->rollcall_why : "asked");
	if (rc != JOURNAL_OK)
		return journal_result(d, rc, "beginning an epoch");
	if ((rc = flush(d)) != 0 || d->tab == NULL || d->held)
		return rc;
	send_status(d, true, d->online_since, NULL);
	return 0;
}

/*
 * etcd did not answer: try again what waits for it, the epoch first.
 * Once everything is in, the status says we serve again.  0, or 1: stop.
 */
static int
retry_journal(struct coord *d)
{
	int rc;

	d->retry_at = 0;
	if (d->epoch_due != NULL) {
		rc = begin_epoch(d, d->epoch_due);
		if (rc != JOURNAL_OK)
			return journal_result(d, rc, "beginning an epoch");
		d->held = true; /* the roll call is in the batch */
	}
	if (d->held) {
		d->held = false;
		if ((rc = flush(d)) != 0 || d->tab == NULL || d->held)
			return rc;
	}
	/* Committed in a term that ended meanwhile: the loop steps down. */
	if (d->term_over)
		return 0;
	if (d->etcd_down)
		say_etcd_back(d);
	else if (d->connected)
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
	if (d->etcd_down)
		send_status(d, false, d->online_since, ETCD_UNAVAILABLE);
	else
		send_status(d, true, d->online_since, NULL);
}

/*
 * The broker is gone: a new epoch begins.  Wills may be lost with it (a
 * broker killed without its persistence, or one restored from an old
 * save), so every client must answer a roll call once we are back.
 * Returns a journal_rc.
 */
static int
on_lost(struct coord *d, const char *why)
{
	bool was = d->connected;

	send_drop_queue(d);
	schedule_reconnect(d, why);
	return was ? begin_epoch(d, "the broker connection was lost")
		   : JOURNAL_OK;
}

/* One item from the broker; returns a journal_rc. */
static int
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
		return on_lost(d, in->reason[0] ? in->reason : "lost");
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
	return JOURNAL_OK;
}

/* ---- set-up and loop ---- */

/*
 * A new Paho client for every connection attempt.  With our persistent
 * session Paho would otherwise send again, on the next connection, the
 * publishes that were in flight when the last one died; Paho 1.3.12 can
 * send those with a broken topic, which the broker answers by dropping us
 * ("protocol error") on every reconnect.  What they said is republished
 * from the journal anyway, and the broker keeps our session either way.
 * With etcd, only a leader connects (resuming the session that queued
 * requests and wills while nobody led).
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
	d->mqtt = NULL;
	d->status_says_why = false;
	/* Taking the session over announces us: the same gate. */
	if (!coord_may_publish(d))
		return 0;
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

/* Whether new input and timers may change the table now. */
static bool
deciding(const struct coord *d)
{
	return d->tab != NULL && !d->held && d->epoch_due == NULL;
}

/*
 * With etcd, the batch ends once it changed as many records as one
 * transaction takes, so that every batch commits in one request (a
 * single message that changes more still commits, in several).
 */
static bool
batch_full(const struct coord *d)
{
	size_t cap = journal_batch_records(d->journal);

	return cap > 0 &&
	    locktab_dirty_locks(d->tab) + locktab_dirty_clients(d->tab) >= cap;
}

static int64_t
wait_ms(const struct coord *d, bool more_out)
{
	int64_t t = INT64_MAX, now = clock_mono_ms();

	if (deciding(d) && d->connected) {
		lt_ms next = locktab_next_deadline(d->tab);

		if (next != LT_NEVER)
			t = next - clock_wall_ms();
		if (d->want_rollcall)
			t = 0;
	} else if (d->tab != NULL && !d->connected &&
	    d->cfg->offline_exit_ms > 0 && d->offline_since != 0 &&
	    d->offline_since + d->cfg->offline_exit_ms - now < t) {
		t = d->offline_since + d->cfg->offline_exit_ms - now;
	}
	/* Room to publish what waits: go on at once. */
	if (more_out)
		t = 0;
	if (deciding(d) && d->reconnect_at != 0 && d->reconnect_at - now < t)
		t = d->reconnect_at - now;
	if (d->retry_at != 0 && d->retry_at - now < t)
		t = d->retry_at - now;
	/* Leading: wake when the term would end, to step down on time. */
	if (d->leader != NULL && d->term != 0) {
		int64_t end = leader_deadline(d->leader);

		if (end != INT64_MAX && end - now < t)
			t = end - now;
	}
	if (d->term_over)
		t = 0;
	/*
	 * The leader thread's log lines wait in the log's buffer for this
	 * loop to flush it: at least once a second, also while standing by.
	 */
	if (d->leader != NULL && t > LOG_FLUSH_MS)
		t = LOG_FLUSH_MS;
	if (t == INT64_MAX)
		return -1; /* nothing to wait for but input */
	return t < 0 ? 0 : t;
}

/* Nothing undecided was announced; say why we stop, then go. */
static int
stop_on_journal_failure(struct coord *d)
{
	if (d->mqtt == NULL)
		return 1;
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

/* One batch of input; 0, or 1: stop. */
static int
take_input(struct coord *d)
{
	/* Publishes still wait for room: let the broker hold our input. */
	if (send_backlog(d) > BACKLOG_HIGH)
		return 0;
	for (int n = 0; n < BATCH_MAX && deciding(d) && !batch_full(d); n++) {
		struct mqtt_in *in = d->stash;
		int rc;

		if (in == NULL && (in = mqtt_next(d->mqtt)) == NULL)
			break;
		d->stash = NULL;
		/*
		 * A connection change republishes state from the table:
		 * commit what the batch decided so far first.  While etcd
		 * does not take it, the change waits with the batch.
		 */
		if (in->kind != MQTT_IN_MESSAGE &&
		    (rc = send_flush(d)) != JOURNAL_OK) {
			if (rc == JOURNAL_UNAVAILABLE) {
				d->held = true;
				d->stash = in;
			} else {
				mqtt_in_free(in);
			}
			return journal_result(d, rc, "writing a batch");
		}
		rc = handle_in(d, in);
		mqtt_in_free(in);
		if (rc != JOURNAL_OK)
			return journal_result(d, rc, "beginning an epoch");
	}
	return 0;
}

/*
 * With etcd: the leadership first, before any input or timer.  A term
 * that is over (by our clock, as the gate or the leader thread found) is
 * stepped down from; a term won is taken over: a fresh table loaded in
 * that term, a new epoch, then the broker.  0, or 1: stop.
 */
static int
take_over(struct coord *d)
{
	int rc;

	d->retry_at = 0;
	journal_set_term(d->journal, d->term);
	if ((d->tab = locktab_new(&d->lc)) == NULL) {
		log_error("out of memory for the lock table");
		return 1;
	}
	rc = journal_load(d->journal, d->tab);
	if (rc == JOURNAL_OK)
		rc = journal_next_epoch(d->journal, &d->epoch);
	if (rc == JOURNAL_OK) {
		log_info("term %" PRId64 ": %s: %zu locks, %zu clients, last "
			 "token %" PRIu64 ", epoch %" PRIu64,
		    d->term, journal_name(d->journal), locktab_nlocks(d->tab),
		    locktab_nclients(d->tab), locktab_last_token(d->tab),
		    d->epoch);
		log_info("epoch %" PRIu64 " begins: roll call for %zu clients",
		    d->epoch, locktab_nclients(d->tab));
		/* Orphaned clients found by the load are deleted now. */
		rc = send_flush(d);
	}
	if (rc != JOURNAL_OK) {
		/* Whatever came of it, this table is not the journal's. */
		locktab_free(d->tab);
		d->tab = NULL;
		lt_fxlist_clear(&d->fx);
		d->fx.failed = false;
		send_clear_replies(d);
		if (rc == JOURNAL_UNAVAILABLE) {
			log_warn("term %" PRId64 ": cannot load the journal "
				 "yet: %s",
			    d->term, journal_error(d->journal));
			d->retry_at = clock_mono_ms() + JOURNAL_RETRY_MS;
			return 0;
		}
		return journal_result(d, rc, "loading the journal");
	}
	return open_mqtt(d) == 0 ? 0 : 1;
}

static int
ha_step(struct coord *d)
{
	struct leader_status st;
	int64_t term = 0;
	bool leading;

	leader_status(d->leader, &st);
	leading = leader_check(d->leader, clock_mono_ms(), &term);
	if (d->term != 0 && (d->term_over || !leading || term != d->term))
		step_down(d,
		    d->term_over ? "it ended before a publish"
				 : "not renewed in time");
	if (d->term == 0 && leading) {
		log_info("leading in term %" PRId64 ": taking over", term);
		d->term = term;
		d->term_over = false;
		d->retry_at = 0;
	}
	if (d->term != 0 && d->tab == NULL) {
		if (d->retry_at == 0 || clock_mono_ms() >= d->retry_at)
			return take_over(d);
		return 0;
	}
	if (d->term == 0) {
		if (strcmp(st.leader, d->seen_leader) != 0) {
			log_info("standing by: %s leads",
			    st.leader[0] != '\0' ? st.leader : "nobody");
			memcpy(d->seen_leader, st.leader, sizeof(st.leader));
		}
		return 0;
	}
	/* Serving: the leader thread's view of etcd, for the status. */
	if (!st.etcd_ok)
		say_etcd_down(d, st.error);
	else if (!d->held && d->epoch_due == NULL)
		say_etcd_back(d);
	return 0;
}

static int
run_loop(struct coord *d, int sigfd)
{
	bool more_out = false;

	for (;;) {
		int fds[3] = {sigfd,
		    d->mqtt != NULL ? mqtt_wake_fd(d->mqtt) : -1,
		    d->leader != NULL ? leader_wake_fd(d->leader) : -1};
		int64_t timeout = wait_ms(d, more_out),
			before = clock_mono_ms();
		int ready[3];
		int sig;

		log_flush();
		if (loop_wait(fds, 3, timeout, ready) < 0)
			return 1;
		while ((sig = loop_next_signal(sigfd)) != 0) {
			if (sig == SIGINT || sig == SIGTERM) {
				log_info("signal %d: stopping", sig);
				return 0;
			}
		}
		more_out = false;
		if (d->leader != NULL && ha_step(d) != 0)
			return 1;
		if (d->tab == NULL)
			continue; /* standing by, or taking over */
		if (deciding(d) && d->connected && timeout >= 0 &&
		    clock_mono_ms() - before > timeout + STALL_MS)
			floor_after_stall(d, clock_mono_ms() - before);
		if (d->retry_at != 0 && clock_mono_ms() >= d->retry_at &&
		    retry_journal(d) != 0)
			return stop_on_journal_failure(d);
		if (take_input(d) != 0)
			return stop_on_journal_failure(d);
		/*
		 * Deadlines only run while we hear the broker: a coordinator
		 * cut off from it cannot tell who is alive.
		 */
		while (deciding(d) && d->connected &&
		    locktab_next_deadline(d->tab) <= clock_wall_ms() &&
		    d->fx.n < BATCH_MAX && !batch_full(d)) {
			struct lt_event tick = {.kind = LT_EV_TICK};

			handle_apply(d, &tick, "tick");
		}
		if (deciding(d) && flush(d) != 0)
			return stop_on_journal_failure(d);
		if (deciding(d) && d->want_rollcall && begin_rollcall(d) != 0)
			return stop_on_journal_failure(d);
		if (d->tab == NULL)
			continue; /* fenced: stepped down */
		more_out = send_pump(d);
		if (d->term_over) {
			step_down(d, "it ended before a publish");
			continue;
		}
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
		if (deciding(d) && d->reconnect_at != 0 &&
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

/* etcd's options from the flags; the password is the caller's. */
static void
etcd_options(const struct config *cfg, const char *password,
    struct etcd_opts *eo)
{
	memset(eo, 0, sizeof(*eo));
	eo->endpoints = cfg->etcd;
	eo->cafile = cfg->etcd_cafile;
	eo->certfile = cfg->etcd_certfile;
	eo->keyfile = cfg->etcd_keyfile;
	eo->user = cfg->etcd_user;
	eo->password = password;
	eo->timeout_ms = (int)cfg->etcd_timeout_ms;
	eo->max_txn_ops = (size_t)cfg->etcd_max_txn_ops;
	eo->max_request_bytes = (size_t)cfg->etcd_max_request_bytes;
}

/* With etcd: the journal there, and the candidate's thread.  0 or -1. */
static int
open_etcd(struct coord *d, const struct config *cfg)
{
	struct etcd_opts eo;
	struct leader_opts lo = {
	    .prefix = cfg->etcd_prefix,
	    .id = cfg->etcd_id,
	    .ttl_s = (int)cfg->lease_s,
	    .margin_ms = (int)config_lease_margin_ms(cfg),
	    .campaign = true,
	};
	char err[512];

	etcd_options(cfg, d->etcd_password, &eo);
	lo.etcd = &eo;
	/*
	 * A journal call never takes more than a quarter of the lease (as
	 * the leader thread's own requests): one blocked by etcd leaves the
	 * term time to say, in the status, why nothing is announced.
	 */
	if (eo.timeout_ms > (int)cfg->lease_s * 1000 / 4)
		eo.timeout_ms = (int)cfg->lease_s * 1000 / 4;
	d->journal = journal_open_etcd(&eo, cfg->etcd_prefix, err, sizeof(err));
	if (d->journal == NULL) {
		log_error("journal in etcd: %s", err);
		return -1;
	}
	if ((d->leader = leader_new(&lo, err, sizeof(err))) == NULL) {
		log_error("leadership in etcd: %s", err);
		return -1;
	}
	log_info(
	    "mqlockd %s: candidate %s in etcd %s, prefix %s, lease %" PRId64
	    " s (stops %" PRId64 " ms before it can expire)",
	    MQLOCK_VERSION, cfg->etcd_id, cfg->etcd, cfg->etcd_prefix,
	    cfg->lease_s, config_lease_margin_ms(cfg));
	return 0;
}

static int
open_state(struct coord *d, const struct config *cfg)
{
	char err[512];

	config_lt(cfg, &d->lc);
	d->idle_policy = d->lc.idle_policy;
	if (d->lc.hasher.fn == NULL) {
		log_error("libsodium failed to start");
		return -1;
	}
	if (cfg->ticket_key != NULL &&
	    (d->ticket_key = ticket_key_new(cfg->ticket_secret.key,
		 cfg->ticket_secret.len, err, sizeof(err))) == NULL) {
		log_error("--ticket-key: %s", err);
		return -1;
	}
	d->rate = ratelimit_new(RATE_SETS, (double)cfg->rate_milli / 1000.0,
	    (double)cfg->rate_milli / 1000.0 * RATE_BURST_S, &d->lc.hasher);
	d->refusals = ratelimit_new(1, REFUSAL_EVENTS_PER_S,
	    REFUSAL_EVENTS_BURST, &d->lc.hasher);
	if (d->rate == NULL || d->refusals == NULL)
		return -1;
	/* A standby has no table: it loads one once it leads. */
	if (cfg->etcd != NULL)
		return open_etcd(d, cfg);
	d->journal = journal_open_sqlite(cfg->db, err, sizeof(err));
	if (d->journal == NULL) {
		log_error("journal: %s", err);
		return -1;
	}
	d->tab = locktab_new(&d->lc);
	if (d->tab == NULL || journal_load(d->journal, d->tab) != JOURNAL_OK ||
	    journal_next_epoch(d->journal, &d->epoch) != JOURNAL_OK)
		return -1;
	log_info("mqlockd %s: journal %s: %zu locks, %zu clients, last token "
		 "%" PRIu64 ", epoch %" PRIu64,
	    MQLOCK_VERSION, cfg->db, locktab_nlocks(d->tab),
	    locktab_nclients(d->tab), locktab_last_token(d->tab), d->epoch);
	log_info("epoch %" PRIu64 " begins: roll call for %zu clients",
	    d->epoch, locktab_nclients(d->tab));
	/* Orphaned clients found by the restore are deleted now. */
	return send_flush(d) == JOURNAL_OK ? 0 : -1;
}

static void
close_state(struct coord *d)
{
	send_drop_queue(d);
	mqtt_free(d->mqtt);
	mqtt_in_free(d->stash);
	/* After the broker connection: a standby may take over at once. */
	leader_free(d->leader);
	locktab_free(d->tab);
	ratelimit_free(d->rate);
	ratelimit_free(d->refusals);
	journal_close(d->journal);
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
	char password[PASSWORD_MAX], etcd_password[PASSWORD_MAX], err[512];
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
	if (cfg->etcd_password_file != NULL &&
	    secret_read_line(cfg->etcd_password_file, etcd_password,
		sizeof(etcd_password), err, sizeof(err)) < 0) {
		log_error("%s", err);
		explicit_bzero(password, sizeof(password));
		return 1;
	}
	d.etcd_password =
	    cfg->etcd_password_file != NULL ? etcd_password : NULL;
	d.subs = subs;
	d.nsubs = sizeof(subs) / sizeof(subs[0]);
	d.password = cfg->password_file != NULL ? password : NULL;
	if (open_state(&d, cfg) != 0)
		goto out;
	sigfd = loop_signals(sigs, sizeof(sigs) / sizeof(sigs[0]));
	if (sigfd < 0 || (d.leader == NULL && open_mqtt(&d) != 0))
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
	if (d.mqtt != NULL)
		mqtt_disconnect(d.mqtt, STOP_TIMEOUT_MS);
out:
	close_state(&d);
	explicit_bzero(password, sizeof(password));
	explicit_bzero(etcd_password, sizeof(etcd_password));
	return rc;
}
