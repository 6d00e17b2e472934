/*
 * send: the coordinator's outbound half.  A batch is committed to the
 * journal first; only then are its owner messages, events and replies
 * published, never faster than the broker's receive maximum allows: past
 * it Paho holds further publishes back for about a second, and every client
 * waits behind them.  With etcd, each message is handed to Paho only while
 * this process leads in the term it serves (coord_may_publish()).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/clock.h"
#include "io/journal.h"
#include "io/log.h"
#include "mqlockd/coord_int.h"

/* Owner messages republished per pump after a (re)connect. */
#define REPUBLISH_SLICE 2000

/* ---- the publish queue ---- */

static void
outmsg_free(struct outmsg *m)
{
	if (m == NULL)
		return;
	free(m->topic);
	free(m->payload);
	free(m->props.topic);
	free(m->props.corr);
	free(m);
}

/*
 * Hand one message to Paho; the caller still owns everything.  status:
 * what a status message says (see struct outmsg), -1 for any other.
 */
static void
publish_now(struct coord *d, const char *topic, const char *payload, size_t len,
    int retain, const struct reply *props, int status)
{
	struct mqtt_pub_props p = {NULL, NULL, 0};

	if (props != NULL && props->topic != NULL) {
		p.resp_topic = props->topic;
		p.corr = props->corr_len > 0 ? props->corr : NULL;
		p.corr_len = props->corr_len;
	}
	/*
	 * The leadership is asked last, right before Paho has it: a former
	 * leader announces nothing, not even what it committed in its term.
	 */
	if (!coord_may_publish(d))
		return;
	/* What the log says comes before what anyone can see. */
	log_flush();
	if (mqtt_publish(d->mqtt, topic, payload, len, 1, retain,
		props != NULL && props->topic != NULL ? &p : NULL) == 0 &&
	    status >= 0)
		d->status_says_why = status == 1;
}

/*
 * Room in the window.  None before the first connection exists: what the
 * journal's load repaired is queued until then.
 */
static bool
window_open(struct coord *d)
{
	return d->mqtt != NULL && mqtt_in_flight(d->mqtt, 0) < d->window;
}

static int
copy_props(struct reply *dst, const struct reply *src)
{
	memset(dst, 0, sizeof(*dst));
	if (src == NULL || src->topic == NULL)
		return 0;
	dst->topic = strdup(src->topic);
	dst->corr = malloc(src->corr_len + 1);
	if (dst->topic == NULL || dst->corr == NULL)
		return -1;
	if (src->corr_len > 0)
		memcpy(dst->corr, src->corr, src->corr_len);
	dst->corr_len = src->corr_len;
	return 0;
}

/* send_publish() for any message; status as for publish_now(). */
static void
enqueue(struct coord *d, const char *topic, char *payload, int retain,
    const struct reply *props, int status)
{
	struct outmsg *m;

	if (payload == NULL) {
		log_error("out of memory encoding a message for %s", topic);
		return;
	}
	/*
	 * Not d->connected: after a reconnect the broker hands over what it
	 * kept for us before our subscriptions are confirmed, and the answers
	 * to those go out at once.  With no connection at all Paho refuses
	 * the publish (logged); owner messages are republished from the
	 * journal after the reconnect.
	 */
	if (d->outq == NULL && window_open(d)) {
		publish_now(d, topic, payload, strlen(payload), retain, props,
		    status);
		free(payload);
		return;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->topic = strdup(topic)) == NULL ||
	    copy_props(&m->props, props) != 0) {
		log_error("out of memory queueing a message for %s", topic);
		outmsg_free(m);
		free(payload);
		return;
	}
	m->payload = payload;
	m->len = strlen(payload);
	m->retain = retain;
	m->status = status;
	*d->outq_tail = m;
	d->outq_tail = &m->next;
	d->noutq++;
}

void
send_publish(struct coord *d, const char *topic, char *payload, int retain,
    const struct reply *props)
{
	enqueue(d, topic, payload, retain, props, -1);
}

size_t
send_backlog(const struct coord *d)
{
	return d->noutq;
}

void
send_drop_queue(struct coord *d)
{
	while (d->outq != NULL) {
		struct outmsg *m = d->outq;

		d->outq = m->next;
		outmsg_free(m);
	}
	d->outq_tail = &d->outq;
	d->noutq = 0;
}

/* ---- owner messages ---- */

/*
 * A lock nobody holds or waits for has no owner message: an empty retained
 * message deletes the broker's copy, so unused lock ids cost nothing.
 */
static void
publish_owner(struct coord *d, const struct lt_lock_rec *rec)
{
	char topic[TOPIC_MAX];

	if (codec_topic(topic, sizeof(topic), d->cfg->prefix, rec->id,
		"owner") != 0)
		return;
	if (rec->holder == NULL && rec->nwaiters == 0)
		send_publish(d, topic, strdup(""), 1, NULL);
	else
		send_publish(d, topic, codec_encode_owner(rec), 1, NULL);
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
 * Owner messages go out a slice at a time between batches (send_pump), so
 * a coordinator with a million locks serves requests again at once instead
 * of after the last of them; each slice shows the table as committed at
 * that moment, and a lock that changes meanwhile is announced by its batch
 * anyway.
 */
void
send_republish_begin(struct coord *d)
{
	d->rp_len = 0;
	d->rp_off = 0;
	if (locktab_foreach_lock(d->tab, snapshot_id_cb, d) != 0) {
		log_error("out of memory listing locks to republish");
		d->fx.failed = true;
	}
	log_info("republishing the owner of %zu locks", locktab_nlocks(d->tab));
}

/*
 * Between batches only, when the table equals the journal.  Republishing
 * keeps half the window free for the batches' own messages.
 */
static void
republish_some(struct coord *d)
{
	struct lt_lock_rec rec;
	size_t budget = REPUBLISH_SLICE;

	/* A batch not yet durable is in the table: wait until it is. */
	if (d->held)
		return;
	while (d->rp_off < d->rp_len && budget > 0 && d->outq == NULL &&
	    mqtt_in_flight(d->mqtt, 0) < (d->window + 1) / 2) {
		const char *id = d->rp_ids + d->rp_off;

		d->rp_off += strlen(id) + 1;
		/* Freed since: its batch published it as free. */
		if (locktab_view(d->tab, id, &rec)) {
			publish_owner(d, &rec);
			budget--;
		}
	}
	if (d->rp_len > 0 && d->rp_off >= d->rp_len) {
		log_info("republished every owner message");
		d->rp_len = d->rp_off = 0;
	}
}

bool
send_pump(struct coord *d)
{
	size_t mark;

	if (d->mqtt == NULL || !mqtt_is_connected(d->mqtt))
		return false;
	while (d->outq != NULL && window_open(d)) {
		struct outmsg *m = d->outq;

		d->outq = m->next;
		if (d->outq == NULL)
			d->outq_tail = &d->outq;
		d->noutq--;
		publish_now(d, m->topic, m->payload, m->len, m->retain,
		    &m->props, m->status);
		outmsg_free(m);
	}
	republish_some(d);
	if (d->outq == NULL && (d->rp_off >= d->rp_len || d->held))
		return false;
	/*
	 * Room now (a republish slice ended on its budget): go on at once.
	 * Else sleep until acknowledgements make room: the adapter queues
	 * one MQTT_IN_DRAINED once in flight falls below the mark.
	 */
	/*
	 * Half the window: one wake-up then publishes a burst, rather than
	 * one publish per acknowledgement.
	 */
	mark = (d->window + 1) / 2;
	return mqtt_in_flight(d->mqtt, mark) < mark;
}

/* ---- status ---- */

char *
send_status_text(const struct coord *d, bool online, lt_ms since,
    const char *error)
{
	const struct config *c = d->cfg;
	struct codec_status st = {
	    .online = online,
	    .version = MQLOCK_VERSION,
	    .since = since,
	    .epoch = d->epoch,
	    .error = error,
	    .grace = c->grace_ms,
	    .idle_timeout = c->idle_timeout_ms,
	    .idle_warning = c->idle_warning_ms,
	    .idle_policy = d->idle_policy,
	    .keepalive = (c->keepalive_ms + 999) / 1000,
	    .tickets = d->ticket_key == NULL ? CODEC_TICKETS_OFF
		: c->require_ticket          ? CODEC_TICKETS_REQUIRED
					     : CODEC_TICKETS_OPTIONAL,
	};

	return codec_encode_status(&st);
}

void
send_status(struct coord *d, bool online, lt_ms since, const char *error)
{
	enqueue(d, d->status_topic, send_status_text(d, online, since, error),
	    1, NULL, !online && error != NULL);
}

/* ---- one batch ---- */

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
	    [LT_N_STALE] = "stale-request",
	    [LT_N_FULL] = "full",
	};

	if (e->kind == LT_FX_NOTE) {
		enum log_level l = e->what.note == LT_N_WILL_IGNORED ||
			e->what.note == LT_N_FREED
		    ? LOG_LEVEL_DEBUG
		    : LOG_LEVEL_INFO;

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
		log_msg(e->moved ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
		    "queue lock=%s client=%s position=%" PRIu32, e->lock,
		    e->client, e->position);
		break;
	case LT_E_REVOKED:
		log_info("revoke lock=%s client=%s token=%" PRIu64 " reason=%s",
		    e->lock, e->client, e->token, codec_reason_name(e->reason));
		break;
	case LT_E_DROPPED:
		log_info("dropped lock=%s client=%s reason=%s", e->lock,
		    e->client, codec_reason_name(e->reason));
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

/* The reply slot an effect's tag names, or NULL (no reply wanted). */
static const struct reply *
reply_for(const struct coord *d, uint64_t tag)
{
	if (tag == 0 || tag > d->nreplies)
		return NULL;
	return d->replies[tag - 1].topic != NULL ? &d->replies[tag - 1] : NULL;
}

/* Carry out one effect of a committed batch. */
static void
perform(struct coord *d, const struct lt_fx *e)
{
	char topic[TOPIC_MAX];
	const struct reply *r;
	struct lt_lock_rec rec;

	switch (e->kind) {
	case LT_FX_EVENT:
		if (e->client[0] != '\0' &&
		    codec_client_topic(topic, sizeof(topic), d->cfg->prefix,
			e->client, "events") == 0)
			send_publish(d, topic, codec_encode_event(e), 0, NULL);
		break;
	case LT_FX_REPLY:
		if ((r = reply_for(d, e->tag)) == NULL)
			break;
		/* A query answers with the lock as committed now. */
		if (e->what.result == LT_R_STATE)
			send_publish(d, r->topic,
			    codec_encode_state(e->lock,
				locktab_view(d->tab, e->lock, &rec) ? &rec
								    : NULL,
				clock_wall_ms()),
			    0, r);
		else
			send_publish(d, r->topic, codec_encode_reply(e), 0, r);
		break;
	case LT_FX_NOTE:
		if (e->what.note == LT_N_FULL && !d->want_rollcall) {
			d->want_rollcall = true;
			d->rollcall_why = "a queue or the table is full";
		}
		break;
	default:
		break;
	}
}

void
send_clear_replies(struct coord *d)
{
	for (size_t i = 0; i < d->nreplies; i++) {
		free(d->replies[i].topic);
		free(d->replies[i].corr);
	}
	d->nreplies = 0;
}

int
send_flush(struct coord *d)
{
	size_t nl = locktab_dirty_locks(d->tab);
	int rc;

	if (d->fx.failed) {
		log_error("out of memory while deciding; stopping");
		return JOURNAL_BROKEN;
	}
	if ((nl > 0 || locktab_dirty_clients(d->tab) > 0) &&
	    (rc = journal_flush(d->journal, d->tab)) != JOURNAL_OK) {
		/* The caller says what becomes of the batch. */
		if (rc == JOURNAL_BROKEN)
			log_error("journal write failed; stopping without "
				  "announcing the undecided batch");
		return rc;
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
		perform(d, &d->fx.v[i]);
	locktab_dirty_done(d->tab);
	lt_fxlist_clear(&d->fx);
	send_clear_replies(d);
	return JOURNAL_OK;
}
