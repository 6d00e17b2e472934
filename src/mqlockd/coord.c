#include "mqlockd/coord.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/locktab.h"
#include "core/ratelimit.h"
#include "io/clock.h"
#include "io/log.h"
#include "io/loop.h"
#include "io/mqtt.h"
#include "io/store.h"

/* Messages handled per batch, i.e. per journal commit. */
#define BATCH_MAX 1024
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* Long enough to survive any restart of mqlockd: a week. */
#define SESSION_EXPIRY_S 604800
#define TOPIC_MAX (MQL_PREFIX_MAX + MQL_CLIENT_ID_MAX + 32)
#define STOP_TIMEOUT_MS 3000
/* Woken this much later than asked: treated as a stall (see run_loop). */
#define STALL_MS 500
/* Owner messages republished between two batches after a (re)connect. */
#define REPUBLISH_SLICE 2000
/*
 * Republished owner messages in flight at once, at most, and never more
 * than half the broker's receive maximum: past that Paho holds publishes
 * back for a second, and its cost per publish grows with what is queued.
 */
#define REPUBLISH_WINDOW 1000
/* Rate-limit buckets: 16384 sets of 4, about 1.5 MB whatever the traffic. */
#define RATE_SETS 16384
/* Error events for input refused before the table sees it, in all. */
#define REFUSAL_EVENTS_PER_S 200
#define REFUSAL_EVENTS_BURST 1000
/* A client may burst up to ten seconds' worth of its rate. */
#define RATE_BURST_S 10

/* Where the reply to one request goes (MQTT 5 response topic). */
struct reply {
	char *topic; /* NULL: the request asked for none */
	void *corr;
	size_t corr_len;
};

struct coord {
	const struct config *cfg;
	struct locktab *tab;
	struct ratelimit *rate;
	struct ratelimit *refusals; /* error events for refused input */
	struct store *store;
	struct mqtt *mqtt;
	struct lt_fxlist fx;
	/* One per LT_FX_REPLY in fx, in the same order. */
	struct reply *replies;
	size_t nreplies, capreplies;
	uint64_t epoch;
	bool connected;
	/*
	 * Owner messages still to republish: the ids of every lock when the
	 * republish began, NUL-separated, and how far it got.
	 */
	char *rp_ids;
	size_t rp_len, rp_cap, rp_off;
	size_t rp_window;     /* in flight at once, from the receive maximum */
	bool rp_ready;        /* below the window: go on without waiting */
	int64_t reconnect_at; /* monotonic ms; 0: none pending */
	int64_t backoff_ms;
	char status_topic[TOPIC_MAX];
};

/* ---- publishing ---- */

static void
publish_json(struct coord *d, const char *topic, char *json, int retain,
    const struct mqtt_pub_props *props)
{
	if (json == NULL) {
		log_error("out of memory encoding a message for %s", topic);
		return;
	}
	/* What the log says comes before what anyone can see. */
	log_flush();
	mqtt_publish(d->mqtt, topic, json, strlen(json), 1, retain, props);
	free(json);
}

static void
publish_owner(struct coord *d, const struct lt_lock_rec *rec)
{
	char topic[TOPIC_MAX];

	if (codec_topic(topic, sizeof(topic), d->cfg->prefix, rec->id,
		"owner") != 0)
		return;
	publish_json(d, topic, codec_encode_owner(rec), 1, NULL);
}

static int
snapshot_id_cb(const struct lt_lock_rec *rec, void *arg)
{
	struct coord *d = arg;
	size_t n = strlen(rec->id) + 1;

	if (d->rp_len + n > d->rp_cap) {
		size_t cap = d->rp_cap ? d->rp_cap * 2 : 4096;
		char *p;

		while (cap < d->rp_len + n)
			cap *= 2;
		if ((p = realloc(d->rp_ids, cap)) == NULL)
			return -1;
		d->rp_ids = p;
		d->rp_cap = cap;
	}
	memcpy(d->rp_ids + d->rp_len, rec->id, n);
	d->rp_len += n;
	return 0;
}

/*
 * Begin republishing every owner message.  They go out a slice at a time
 * between batches (republish_some), so a coordinator with a million locks
 * serves requests again at once instead of after the last of them; each
 * slice shows the table as committed at that moment, and a lock that
 * changes meanwhile is announced by its batch anyway.
 */
static void
republish_begin(struct coord *d)
{
	d->rp_len = 0;
	d->rp_off = 0;
	d->rp_ready = true;
	if (locktab_foreach_lock(d->tab, snapshot_id_cb, d) != 0) {
		log_error("out of memory listing locks to republish");
		d->fx.failed = true;
	}
	log_info("republishing the owner of %zu locks", locktab_nlocks(d->tab));
}

/*
 * Call only between batches, when the table equals the journal.  Publishes
 * up to max owner messages while fewer than rp_window of ours are in
 * flight; when the window is full, MQTT_IN_DRAINED says when to go on.
 */
static void
republish_some(struct coord *d, size_t max)
{
	struct lt_lock_rec rec;
	size_t room, inflight;

	if (d->rp_off >= d->rp_len)
		return;
	inflight = mqtt_in_flight(d->mqtt, 0);
	room = inflight < d->rp_window ? d->rp_window - inflight : 0;
	if (room > max)
		room = max;
	while (room > 0 && d->rp_off < d->rp_len) {
		const char *id = d->rp_ids + d->rp_off;

		d->rp_off += strlen(id) + 1;
		/* Freed since: its batch published it as free. */
		if (locktab_view(d->tab, id, &rec)) {
			publish_owner(d, &rec);
			room--;
		}
	}
	if (d->rp_off >= d->rp_len) {
		log_info("republished every owner message");
		d->rp_len = d->rp_off = 0;
		return;
	}
	/* Go on at once if acknowledgements have made room meanwhile. */
	d->rp_ready =
	    mqtt_in_flight(d->mqtt, d->rp_window / 2 + 1) <= d->rp_window / 2;
}

static void
publish_status(struct coord *d, bool online, lt_ms since, const char *error)
{
	publish_json(d, d->status_topic,
	    codec_encode_status(online, MQLOCK_VERSION, since, d->epoch, error),
	    1, NULL);
}

static void
log_fx(const struct lt_fx *e)
{
	static const char *const notes[] = {
	    [LT_N_RELEASED] = "release",
	    [LT_N_LEFT_QUEUE] = "leave-queue",
	    [LT_N_DISCONNECTED] = "disconnected",
	    [LT_N_RECONNECTED] = "reconnected",
	    [LT_N_DROPPED] = "drop-waiter",
	    [LT_N_WILL_IGNORED] = "will-ignored",
	    [LT_N_FREED] = "free",
	    [LT_N_SILENT] = "silent",
	};

	if (e->kind == LT_FX_NOTE) {
		enum log_level l = e->what.note == LT_N_WILL_IGNORED ||
			e->what.note == LT_N_FREED
		    ? LOG_DEBUG
		    : LOG_INFO;

		log_msg(l, "%s%s%s%s%s", notes[e->what.note],
		    e->lock[0] ? " lock=" : "", e->lock,
		    e->client[0] ? " client=" : "", e->client);
		return;
	}
	if (e->kind != LT_FX_EVENT)
		return;
	switch (e->what.event) {
	case LT_E_GRANTED:
		log_info("grant lock=%s client=%s token=%" PRIu64, e->lock,
		    e->client, e->token);
		break;
	case LT_E_QUEUED:
		/* A hand-over moves every waiter up: one line each is noise. */
		log_msg(e->moved ? LOG_DEBUG : LOG_INFO,
		    "queue lock=%s client=%s position=%" PRIu32, e->lock,
		    e->client, e->position);
		break;
	case LT_E_REVOKED:
		log_info("revoke lock=%s client=%s token=%" PRIu64 " reason=%s",
		    e->lock, e->client, e->token, codec_reason_name(e->reason));
		break;
	case LT_E_IDLE_WARNING:
		log_info("idle-warning lock=%s client=%s", e->lock, e->client);
		break;
	case LT_E_BUSY:
		log_info("busy lock=%s client=%s", e->lock, e->client);
		break;
	case LT_E_ERROR:
	default:
		break;
	}
}

/* Carry out one effect of a committed batch. */
static void
perform(struct coord *d, const struct lt_fx *e, size_t *next_reply)
{
	char topic[TOPIC_MAX];

	if (e->kind == LT_FX_EVENT && e->client[0] != '\0') {
		if (codec_client_topic(topic, sizeof(topic), d->cfg->prefix,
			e->client, "events") == 0)
			publish_json(d, topic, codec_encode_event(e), 0, NULL);
	} else if (e->kind == LT_FX_REPLY) {
		const struct reply *r = &d->replies[(*next_reply)++];
		struct mqtt_pub_props props = {r->topic,
		    r->corr_len > 0 ? r->corr : NULL, r->corr_len};

		if (r->topic != NULL)
			publish_json(d, r->topic, codec_encode_reply(e), 0,
			    &props);
	}
}

static void
clear_replies(struct coord *d)
{
	for (size_t i = 0; i < d->nreplies; i++) {
		free(d->replies[i].topic);
		free(d->replies[i].corr);
	}
	d->nreplies = 0;
}

/*
 * End of a batch: commit what changed, then (and only then) announce it.
 * Returns 0, or -1 when the journal failed: nothing of the batch is
 * announced and the caller must stop.
 */
static int
flush(struct coord *d)
{
	size_t nl = locktab_dirty_locks(d->tab);
	size_t next_reply = 0;

	if (d->fx.failed) {
		log_error("out of memory while deciding; stopping");
		return -1;
	}
	if ((nl > 0 || locktab_dirty_clients(d->tab) > 0) &&
	    store_flush(d->store, d->tab) != 0) {
		log_error("journal write failed; stopping without announcing "
			  "the undecided batch");
		return -1;
	}
	/* The batch's log lines go out in one write, before its messages. */
	for (size_t i = 0; i < d->fx.n; i++)
		log_fx(&d->fx.v[i]);
	for (size_t i = 0; i < nl; i++) {
		struct lt_lock_rec rec;

		locktab_dirty_lock(d->tab, i, &rec);
		publish_owner(d, &rec);
	}
	for (size_t i = 0; i < d->fx.n; i++)
		perform(d, &d->fx.v[i], &next_reply);
	locktab_dirty_done(d->tab);
	lt_fxlist_clear(&d->fx);
	clear_replies(d);
	return 0;
}

/* ---- input ---- */

/* Remember where the reply of the request just applied goes. */
static void
note_reply(struct coord *d, size_t fx_before, struct mqtt_in *in)
{
	struct reply r = {NULL, NULL, 0};

	for (size_t i = fx_before; i < d->fx.n; i++) {
		if (d->fx.v[i].kind != LT_FX_REPLY)
			continue;
		if (d->nreplies == d->capreplies) {
			size_t n = d->capreplies ? d->capreplies * 2 : 64;
			struct reply *p = realloc(d->replies, n * sizeof(*p));

			if (p == NULL) {
				d->fx.failed = true;
				return;
			}
			d->replies = p;
			d->capreplies = n;
		}
		/* Exactly one reply per request: the first gets the topic. */
		r.topic = NULL;
		r.corr = NULL;
		r.corr_len = 0;
		if (in->resp_topic != NULL) {
			size_t n = strlen(in->resp_topic) + 1;

			r.topic = malloc(n);
			r.corr = malloc(in->corr_len + 1);
			if (r.topic == NULL || r.corr == NULL) {
				free(r.topic);
				free(r.corr);
				d->fx.failed = true;
				return;
			}
			memcpy(r.topic, in->resp_topic, n);
			if (in->corr_len > 0)
				memcpy(r.corr, in->corr, in->corr_len);
			r.corr_len = in->corr_len;
			in->resp_topic = NULL;
		}
		d->replies[d->nreplies++] = r;
	}
}

/*
 * A refusal found before the table saw the request: an error event to the
 * client when it can be named (and `tell`), and the reply.
 */
static void
refuse(struct coord *d, const char *client, const char *lock, enum lt_err code,
    const char *message, bool tell)
{
	struct lt_fx e;

	memset(&e, 0, sizeof(e));
	e.code = code;
	e.message = message;
	snprintf(e.client, sizeof(e.client), "%s", client);
	snprintf(e.lock, sizeof(e.lock), "%s", lock);
	/*
	 * Anyone can name any client id, so refusals found here share one
	 * budget of error events: a flood of invented ids cannot turn into
	 * a flood of publishes that starves everyone else.
	 */
	if (client[0] != '\0' && tell &&
	    ratelimit_take(d->refusals, "", clock_mono_ms()) == RL_ALLOW) {
		e.kind = LT_FX_EVENT;
		e.what.event = LT_E_ERROR;
		if (lt_fxlist_push(&d->fx, &e) != 0)
			return;
	}
	e.kind = LT_FX_REPLY;
	e.what.result = LT_R_ERROR;
	lt_fxlist_push(&d->fx, &e);
}

static void
apply(struct coord *d, const struct lt_event *ev, const char *what)
{
	enum lt_err err = locktab_apply(d->tab, clock_wall_ms(), ev, &d->fx);

	if (err != LT_OK && err != LT_ERR_INTERNAL)
		log_limited(LOG_WARN, "refused %s: %s", what,
		    codec_err_name(err));
}

/*
 * A reply goes out with the coordinator's own rights, so its topic must
 * lie below --reply-prefix: never on lock, status or event topics, and
 * never where the broker would refuse the coordinator and drop it.
 */
static bool
props_ok(const struct coord *d, const struct mqtt_in *in)
{
	size_t plen = strlen(d->cfg->reply_prefix);

	if (in->corr_len > MQL_CORR_MAX)
		return false;
	if (in->resp_topic != NULL &&
	    (strlen(in->resp_topic) > MQL_RESP_TOPIC_MAX ||
		strncmp(in->resp_topic, d->cfg->reply_prefix, plen) != 0 ||
		in->resp_topic[plen] == '\0' ||
		strpbrk(in->resp_topic, "+#") != NULL ||
		!codec_utf8_valid(in->resp_topic, strlen(in->resp_topic))))
		return false;
	return true;
}

static void
handle_request(struct coord *d, const struct codec_topic *ct,
    struct mqtt_in *in)
{
	struct lt_event ev = {.kind = LT_EV_REQUEST};
	struct codec_error err;
	bool ok = codec_decode_request(in->payload, in->len,
		      ct->id_valid ? ct->id : NULL, &ev.u.req, &err) == LT_OK;
	const char *who = ok ? ev.u.req.client : err.client;
	enum rl_verdict v;

	/*
	 * Every request that names a client counts against its rate, valid
	 * or not; a client over its rate hears so once per run of refusals.
	 */
	v = who[0] != '\0' ? ratelimit_take(d->rate, who, clock_mono_ms())
			   : RL_ALLOW;
	if (v != RL_ALLOW) {
		if (v == RL_DENY_FIRST)
			log_limited(LOG_WARN, "client %s over its rate", who);
		refuse(d, who, ct->id, LT_ERR_LIMIT, "too many requests",
		    v == RL_DENY_FIRST);
		return;
	}
	if (!ok) {
		log_limited(LOG_WARN, "refused request on %s: %s (%s)",
		    ct->id_valid ? ct->id : "an invalid lock id",
		    codec_err_name(err.code), err.message);
		refuse(d, err.client, ct->id, err.code, err.message, true);
		return;
	}
	if (!props_ok(d, in)) {
		log_limited(LOG_WARN,
		    "refused request from %s: bad response "
		    "topic or correlation data",
		    ev.u.req.client);
		/* A reply could not be addressed safely: tell the client. */
		in->resp_topic = NULL;
		refuse(d, ev.u.req.client, ct->id, LT_ERR_BAD_REQUEST,
		    "response topic or correlation data too long or invalid",
		    true);
		return;
	}
	log_debug("request lock=%s client=%s op=%s", ev.u.req.lock,
	    ev.u.req.client, codec_op_name(ev.u.req.op));
	apply(d, &ev, "request");
}

static void
handle_will(struct coord *d, const struct codec_topic *ct, struct mqtt_in *in)
{
	struct lt_event ev = {.kind = LT_EV_WILL};

	if (!ct->id_valid ||
	    codec_decode_will(in->payload, in->len, ct->id, &ev.u.will) !=
		LT_OK) {
		log_limited(LOG_WARN, "ignored malformed will on %s",
		    in->topic);
		return;
	}
	log_info("will client=%s", ev.u.will.client);
	apply(d, &ev, "will");
}

static void
handle_admin(struct coord *d, struct mqtt_in *in)
{
	struct lt_event ev = {.kind = LT_EV_BREAK};
	struct codec_error err;

	if (codec_decode_break(in->payload, in->len, &ev.u.brk, &err) !=
	    LT_OK) {
		log_limited(LOG_WARN, "refused admin command: %s (%s)",
		    codec_err_name(err.code), err.message);
		refuse(d, "", "", err.code, err.message, true);
		return;
	}
	if (!props_ok(d, in))
		in->resp_topic = NULL;
	log_info("admin break lock=%s reason=%s", ev.u.brk.lock,
	    ev.u.brk.reason);
	apply(d, &ev, "admin command");
}

static void
handle_message(struct coord *d, struct mqtt_in *in)
{
	struct codec_topic ct;
	size_t before = d->fx.n;

	/* Retained copies are history, never requests. */
	if (in->retained) {
		log_debug("ignored retained message on %s", in->topic);
		return;
	}
	codec_parse_topic(d->cfg->prefix, in->topic, &ct);
	switch (ct.kind) {
	case CODEC_T_REQUEST:
		handle_request(d, &ct, in);
		break;
	case CODEC_T_WILL:
		handle_will(d, &ct, in);
		break;
	case CODEC_T_ADMIN:
		handle_admin(d, in);
		break;
	case CODEC_T_OTHER:
	default:
		return;
	}
	note_reply(d, before, in);
}

/* ---- connection ---- */

static void
schedule_reconnect(struct coord *d, const char *why)
{
	d->connected = false;
	d->reconnect_at = clock_mono_ms() + d->backoff_ms;
	log_warn("broker %s: %s; retrying in %" PRId64 " ms", d->cfg->broker,
	    why, d->backoff_ms);
	d->backoff_ms *= 2;
	if (d->backoff_ms > BACKOFF_MAX_MS)
		d->backoff_ms = BACKOFF_MAX_MS;
}

static void
on_connected(struct coord *d, const struct mqtt_in *in)
{
	lt_ms now = clock_wall_ms();
	struct lt_event resume = {.kind = LT_EV_RESUME};

	d->connected = true;
	d->backoff_ms = BACKOFF_MIN_MS;
	d->rp_window = in->receive_max / 2;
	if (d->rp_window > REPUBLISH_WINDOW)
		d->rp_window = REPUBLISH_WINDOW;
	if (d->rp_window == 0)
		d->rp_window = 1;
	log_info("connected to %s (session %s), epoch %" PRIu64, d->cfg->broker,
	    in->session_present ? "resumed" : "new", d->epoch);
	/*
	 * The roll call of this epoch was opened when it began (at start, or
	 * when the broker was lost), so requests the broker kept for us
	 * count as answers.  Now that we hear the broker again, nobody loses
	 * anything sooner than a grace period, or a full window to answer.
	 */
	resume.u.resume.rollcall = false;
	resume.u.resume.window = d->cfg->grace_ms + d->cfg->keepalive_ms;
	apply(d, &resume, "resume");
	/*
	 * Owner messages are retained state the broker may have lost, and
	 * what we published while cut off was dropped: publish them all
	 * again from the journal.
	 */
	republish_begin(d);
	publish_status(d, true, now, NULL);
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
			resume.u.resume.rollcall = true;
			resume.u.resume.window =
			    d->cfg->grace_ms + d->cfg->keepalive_ms;
			apply(d, &resume, "roll call");
			log_info("epoch %" PRIu64 " begins: roll call",
			    d->epoch);
		}
	}
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
		break;
	case MQTT_IN_DRAINED:
		d->rp_ready = true; /* republish_some() goes on */
		break;
	default:
		break;
	}
}

/* ---- set-up and loop ---- */

static int
open_mqtt(struct coord *d, const struct mqtt_sub *subs, size_t nsubs,
    char *password)
{
	char *offline;
	struct mqtt_opts o = {
	    .uri = d->cfg->broker,
	    .client_id = d->cfg->client_id,
	    .username = d->cfg->username,
	    .password = password,
	    .keepalive = (int)((d->cfg->keepalive_ms + 999) / 1000),
	    .clean_start = 0,
	    .session_expiry = SESSION_EXPIRY_S,
	    .subs = subs,
	    .nsubs = nsubs,
	    .cafile = d->cfg->cafile,
	    .certfile = d->cfg->certfile,
	    .keyfile = d->cfg->keyfile,
	};

	d->mqtt = mqtt_new(&o);
	if (d->mqtt == NULL)
		return -1;
	offline = codec_encode_status(false, MQLOCK_VERSION, clock_wall_ms(),
	    d->epoch, NULL);
	if (offline == NULL ||
	    mqtt_set_will(d->mqtt, d->status_topic, offline, strlen(offline),
		1) != 0) {
		free(offline);
		return -1;
	}
	free(offline);
	if (mqtt_connect(d->mqtt) != 0)
		schedule_reconnect(d, "connect not started");
	return 0;
}

static int64_t
wait_ms(const struct coord *d)
{
	int64_t t = INT64_MAX;

	if (d->connected) {
		lt_ms next = locktab_next_deadline(d->tab);

		if (next != LT_NEVER)
			t = next - clock_wall_ms();
		/* Owner messages left to republish, and room to: go on. */
		if (d->rp_off < d->rp_len && d->rp_ready)
			t = 0;
	}
	if (d->reconnect_at != 0 && d->reconnect_at - clock_mono_ms() < t)
		t = d->reconnect_at - clock_mono_ms();
	if (t == INT64_MAX)
		return -1; /* nothing to wait for but input */
	return t < 0 ? 0 : t;
}

/* Nothing undecided was announced; say why we stop, then go. */
static int
stop_on_journal_failure(struct coord *d)
{
	publish_status(d, false, clock_wall_ms(), "journal write failed");
	mqtt_wait_published(d->mqtt, STOP_TIMEOUT_MS);
	return 1;
}

static int
run_loop(struct coord *d, int sigfd)
{
	int fds[2] = {sigfd, mqtt_wake_fd(d->mqtt)};

	for (;;) {
		int64_t timeout = wait_ms(d), before = clock_mono_ms();
		int ready[2];
		int sig;

		log_flush();
		if (loop_wait(fds, 2, timeout, ready) < 0)
			return 1;
		/*
		 * Woken far later than asked (the process was stopped, or
		 * starved): the broker may have dropped us without our
		 * knowing yet.  Nobody loses a lock for that time: floor the
		 * deadlines before any of them runs.
		 */
		if (d->connected && timeout >= 0 &&
		    clock_mono_ms() - before > timeout + STALL_MS) {
			struct lt_event resume = {.kind = LT_EV_RESUME};

			resume.u.resume.window =
			    d->cfg->grace_ms + d->cfg->keepalive_ms;
			log_warn("stalled for %" PRId64
				 " ms; deadlines floored",
			    clock_mono_ms() - before);
			apply(d, &resume, "resume after a stall");
		}
		while ((sig = loop_next_signal(sigfd)) != 0) {
			if (sig == SIGINT || sig == SIGTERM) {
				log_info("signal %d: stopping", sig);
				return 0;
			}
		}
		for (int n = 0; n < BATCH_MAX; n++) {
			struct mqtt_in *in = mqtt_next(d->mqtt);

			if (in == NULL)
				break;
			/*
			 * A connection change republishes state from the
			 * table: commit what the batch decided so far first.
			 */
			if (in->kind != MQTT_IN_MESSAGE && flush(d) != 0) {
				mqtt_in_free(in);
				return stop_on_journal_failure(d);
			}
			handle_in(d, in);
			mqtt_in_free(in);
		}
		/*
		 * Deadlines only run while we hear the broker: a coordinator
		 * cut off from it cannot tell who is alive.
		 */
		while (d->connected &&
		    locktab_next_deadline(d->tab) <= clock_wall_ms() &&
		    d->fx.n < BATCH_MAX) {
			struct lt_event tick = {.kind = LT_EV_TICK};

			apply(d, &tick, "tick");
		}
		if (flush(d) != 0)
			return stop_on_journal_failure(d);
		if (d->connected)
			republish_some(d, REPUBLISH_SLICE);
		if (d->reconnect_at != 0 &&
		    clock_mono_ms() >= d->reconnect_at) {
			d->reconnect_at = 0;
			if (mqtt_connect(d->mqtt) != 0)
				schedule_reconnect(d, "connect not started");
		}
	}
}

int
coord_run(const struct config *cfg)
{
	static const int sigs[] = {SIGINT, SIGTERM};
	struct coord d = {.cfg = cfg, .backoff_ms = BACKOFF_MIN_MS};
	struct lt_config lc = {
	    .idle_timeout = cfg->idle_timeout_ms,
	    .idle_warning = cfg->idle_warning_ms,
	    .grace = cfg->grace_ms,
	    .waiters_per_lock = (size_t)cfg->max_waiters,
	    .locks_per_client = (size_t)cfg->max_locks_per_client,
	    .max_clients = (size_t)cfg->max_clients,
	    .max_locks = (size_t)cfg->max_locks,
	};
	char req[TOPIC_MAX], will[TOPIC_MAX], admin[TOPIC_MAX];
	/*
	 * Retain handling 2: no stored message on (re)subscribing.  Retain as
	 * published: a request someone publishes with retain by mistake keeps
	 * its flag on the way to us, so it is not acted on now either.
	 */
	struct mqtt_sub subs[] = {
	    {req, 1, 0, 2, 1},
	    {will, 1, 0, 2, 1},
	    {admin, 1, 0, 2, 1},
	};
	char password[1024], err[512];
	int rc = 1, sigfd;

	if (codec_topic(d.status_topic, sizeof(d.status_topic), cfg->prefix,
		"_coordinator", "status") != 0 ||
	    codec_topic(req, sizeof(req), cfg->prefix, "+", "request") != 0 ||
	    codec_client_topic(will, sizeof(will), cfg->prefix, "+", "will") !=
		0 ||
	    codec_topic(admin, sizeof(admin), cfg->prefix, "_admin",
		"command") != 0)
		return 1;
	if (cfg->password_file != NULL &&
	    config_read_secret(cfg->password_file, password, sizeof(password),
		err, sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	d.store = store_open(cfg->db, err, sizeof(err));
	if (d.store == NULL) {
		log_error("journal: %s", err);
		return 1;
	}
	d.rate = ratelimit_new(RATE_SETS, (double)cfg->rate_milli / 1000.0,
	    (double)cfg->rate_milli / 1000.0 * RATE_BURST_S);
	d.refusals =
	    ratelimit_new(1, REFUSAL_EVENTS_PER_S, REFUSAL_EVENTS_BURST);
	d.tab = locktab_new(&lc);
	if (d.rate == NULL || d.refusals == NULL || d.tab == NULL ||
	    store_load(d.store, d.tab) != 0 ||
	    store_next_epoch(d.store, &d.epoch) != 0)
		goto out;
	log_info("mqlockd %s: journal %s: %zu locks, %zu clients, last token "
		 "%" PRIu64 ", epoch %" PRIu64,
	    MQLOCK_VERSION, cfg->db, locktab_nlocks(d.tab),
	    locktab_nclients(d.tab), locktab_last_token(d.tab), d.epoch);
	log_info("epoch %" PRIu64 " begins: roll call for %zu clients", d.epoch,
	    locktab_nclients(d.tab));
	/* Orphaned clients found by the restore are deleted now. */
	if (flush(&d) != 0)
		goto out;
	sigfd = loop_signals(sigs, sizeof(sigs) / sizeof(sigs[0]));
	if (sigfd < 0 ||
	    open_mqtt(&d, subs, sizeof(subs) / sizeof(subs[0]),
		cfg->password_file != NULL ? password : NULL) != 0)
		goto out;
	rc = run_loop(&d, sigfd);
	if (rc == 0 && d.connected) {
		/* A normal DISCONNECT suppresses our will: say it ourselves. */
		publish_status(&d, false, clock_wall_ms(), NULL);
		mqtt_wait_published(d.mqtt, STOP_TIMEOUT_MS);
	}
	mqtt_disconnect(d.mqtt, STOP_TIMEOUT_MS);
out:
	mqtt_free(d.mqtt);
	locktab_free(d.tab);
	ratelimit_free(d.rate);
	ratelimit_free(d.refusals);
	store_close(d.store);
	lt_fxlist_free(&d.fx);
	clear_replies(&d);
	free(d.replies);
	free(d.rp_ids);
	explicit_bzero(password, sizeof(password));
	return rc;
}
