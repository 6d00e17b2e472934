/*
 * handle: the coordinator's inbound half.  Every message from the broker
 * is checked here (topic, size, rate, reply topic, ticket) before the lock
 * table sees it, and every refusal that can be addressed is answered.
 * Nothing a client sends reaches a topic the coordinator publishes on
 * unless the codec's topic rules accepted it first.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ratelimit.h"
#include "io/clock.h"
#include "io/log.h"
#include "mqlockd/coord_int.h"
#include "mqlockd/ticket.h"

void
handle_apply(struct coord *d, struct lt_event *ev, const char *what)
{
	enum lt_err err = locktab_apply(d->tab, clock_wall_ms(), ev, &d->fx);

	if (err != LT_OK && err != LT_ERR_INTERNAL && err != LT_ERR_STALE)
		log_limited(LOG_LEVEL_WARN, "refused %s: %s", what,
		    codec_err_name(err));
}

/*
 * A reply goes out with the coordinator's own rights, so its topic must lie
 * below --reply-prefix, and below the requester's own client id there:
 * never on lock, status or event topics, never in another client's reply
 * space, and never where the broker would refuse the coordinator and drop
 * it (topic text it rejects, wildcards).  client NULL: any client's space
 * (admin commands on the unbound topic).
 */
static bool
reply_topic_ok(const struct coord *d, const char *topic, const char *client)
{
	size_t plen = strlen(d->cfg->reply_prefix), n = strlen(topic), clen;

	if (n > MQL_RESP_TOPIC_MAX ||
	    strncmp(topic, d->cfg->reply_prefix, plen) != 0 ||
	    topic[plen] == '\0' || strpbrk(topic, "+#") != NULL ||
	    !codec_topic_text_valid(topic, n))
		return false;
	if (client == NULL)
		return true;
	clen = strlen(client);
	return strncmp(topic + plen, client, clen) == 0 &&
	    (topic[plen + clen] == '\0' || topic[plen + clen] == '/');
}

/*
 * Give the message being handled a reply slot; its events carry the slot's
 * tag.  client: whose reply space the response topic must lie in (NULL:
 * any; "" : nobody can be named, so no reply).  Returns the tag (0 when
 * memory ran out; the batch is then void).  *bad is set when a response
 * topic or correlation data was given but may not be used.
 */
static uint64_t
reply_slot(struct coord *d, struct mqtt_in *in, const char *client, bool *bad)
{
	struct reply r = {NULL, NULL, 0};

	*bad = false;
	if (d->nreplies == d->capreplies) {
		size_t n = d->capreplies ? d->capreplies * 2 : 64;
		struct reply *p = realloc(d->replies, n * sizeof(*p));

		if (p == NULL) {
			d->fx.failed = true;
			return 0;
		}
		d->replies = p;
		d->capreplies = n;
	}
	if (in->resp_topic != NULL || in->corr_len > 0) {
		*bad = in->resp_topic == NULL || in->corr_len > MQL_CORR_MAX ||
		    (client != NULL && client[0] == '\0') ||
		    !reply_topic_ok(d, in->resp_topic, client);
	}
	if (in->resp_topic != NULL && !*bad) {
		r.topic = strdup(in->resp_topic);
		r.corr = malloc(in->corr_len + 1);
		if (r.topic == NULL || r.corr == NULL) {
			free(r.topic);
			free(r.corr);
			d->fx.failed = true;
			return 0;
		}
		if (in->corr_len > 0)
			memcpy(r.corr, in->corr, in->corr_len);
		r.corr_len = in->corr_len;
	}
	d->replies[d->nreplies++] = r;
	return d->nreplies;
}

/*
 * A refusal found before the table saw the request: an error event to the
 * client when it can be named (and `tell`), and the reply.
 */
static void
refuse(struct coord *d, uint64_t tag, const char *client, const char *lock,
    enum lt_err code, const char *message, bool tell)
{
	struct lt_fx e;

	memset(&e, 0, sizeof(e));
	e.code = code;
	e.message = message;
	e.now = clock_wall_ms();
	e.tag = tag;
	snprintf(e.client, sizeof(e.client), "%s", client);
	snprintf(e.lock, sizeof(e.lock), "%s", lock);
	/*
	 * Refusals found here share one budget of error events: a flood of
	 * bad requests cannot turn into a flood of publishes that starves
	 * everyone else.
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

/*
 * The application's word on who sends an acquire.  LT_OK (uid and user
 * filled when a ticket was verified) or the refusal, with *why.
 */
static enum lt_err
check_ticket(struct coord *d, struct lt_request *rq, const char **why)
{
	char name[MQL_USER_SZ];
	enum lt_err err;

	if (d->ticket_key == NULL || rq->op != LT_OP_ACQUIRE)
		return LT_OK;
	if (rq->ticket[0] == '\0') {
		*why = "a ticket is required to acquire";
		return d->cfg->require_ticket ? LT_ERR_TICKET_REQUIRED : LT_OK;
	}
	err = ticket_verify(d->ticket_key, rq->ticket, rq->client, rq->lock,
	    clock_wall_ms(), rq->uid, name, why);
	if (err == LT_OK)
		memcpy(rq->user, name, sizeof(rq->user));
	return err;
}

static void
handle_request(struct coord *d, const struct codec_topic *ct,
    struct mqtt_in *in)
{
	struct lt_event ev = {.kind = LT_EV_REQUEST};
	struct lt_request *rq = &ev.u.req;
	struct codec_error err;
	const char *why = NULL, *who;
	enum lt_err code;
	enum rl_verdict v;
	bool bad_props;

	if (ct->bound && !ct->client_valid) {
		/* Nobody to tell: the topic itself names no valid client. */
		log_limited(LOG_LEVEL_WARN,
		    "ignored request on %s: invalid client id",
		    ct->id_valid ? ct->id : "an invalid lock id");
		return;
	}
	code = codec_decode_request(in->payload, in->len,
	    ct->id_valid ? ct->id : NULL, ct->bound ? ct->client : NULL, rq,
	    &err);
	who = code == LT_OK ? rq->client : err.client;
	ev.tag = reply_slot(d, in, who, &bad_props);
	if (ev.tag == 0)
		return;
	/*
	 * Every request that names a client counts against its rate, valid
	 * or not; a client over its rate hears so once per run of refusals.
	 */
	v = who[0] != '\0' ? ratelimit_take(d->rate, who, clock_mono_ms())
			   : RL_ALLOW;
	if (v != RL_ALLOW) {
		if (v == RL_DENY_FIRST)
			log_limited(LOG_LEVEL_WARN, "client %s over its rate",
			    who);
		refuse(d, ev.tag, who, ct->id, LT_ERR_LIMIT,
		    "too many requests", v == RL_DENY_FIRST);
		return;
	}
	if (code != LT_OK) {
		log_limited(LOG_LEVEL_WARN, "refused request on %s: %s (%s)",
		    ct->id_valid ? ct->id : "an invalid lock id",
		    codec_err_name(err.code), err.message);
		refuse(d, ev.tag, who, ct->id, err.code, err.message, true);
		return;
	}
	if (bad_props) {
		log_limited(LOG_LEVEL_WARN,
		    "refused request from %s: bad response topic or "
		    "correlation data",
		    who);
		refuse(d, ev.tag, who, ct->id, LT_ERR_BAD_REQUEST,
		    "response topic must lie below the reply prefix and your "
		    "client id; correlation data at most " MQL_STR(
			MQL_CORR_MAX) " bytes",
		    true);
		return;
	}
	if ((code = check_ticket(d, rq, &why)) != LT_OK) {
		log_limited(LOG_LEVEL_WARN, "refused request from %s on %s: %s",
		    who, ct->id, why);
		refuse(d, ev.tag, who, ct->id, code, why, true);
		return;
	}
	log_debug("request lock=%s client=%s op=%s", rq->lock, rq->client,
	    codec_op_name(rq->op));
	handle_apply(d, &ev, "request");
}

static void
handle_will(struct coord *d, const struct codec_topic *ct, struct mqtt_in *in)
{
	struct lt_event ev = {.kind = LT_EV_WILL};

	if (!ct->id_valid ||
	    codec_decode_will(in->payload, in->len, ct->id, &ev.u.will) !=
		LT_OK) {
		log_limited(LOG_LEVEL_WARN, "ignored malformed will on %s",
		    in->topic);
		return;
	}
	log_info("will client=%s", ev.u.will.client);
	handle_apply(d, &ev, "will");
}

static void
handle_admin(struct coord *d, const struct codec_topic *ct, struct mqtt_in *in)
{
	struct lt_event ev = {.kind = LT_EV_BREAK};
	struct codec_error err;
	const char *client = ct->bound ? ct->client : NULL;
	bool bad_props;

	if (ct->bound && !ct->client_valid) {
		log_limited(LOG_LEVEL_WARN,
		    "ignored admin command: invalid client "
		    "id in its topic");
		return;
	}
	ev.tag = reply_slot(d, in, client, &bad_props);
	if (ev.tag == 0)
		return;
	if (bad_props) {
		/* Not a reply we may send: the command is still carried out. */
		free(d->replies[ev.tag - 1].topic);
		d->replies[ev.tag - 1].topic = NULL;
	}
	if (codec_decode_admin(in->payload, in->len, &ev.kind, &ev.u.admin,
		&err) != LT_OK) {
		log_limited(LOG_LEVEL_WARN, "refused admin command: %s (%s)",
		    codec_err_name(err.code), err.message);
		refuse(d, ev.tag, "", "", err.code, err.message, false);
		return;
	}
	log_info("admin %s lock=%s reason=%s",
	    ev.kind == LT_EV_BREAK ? "break" : "purge", ev.u.admin.lock,
	    ev.u.admin.reason);
	handle_apply(d, &ev, "admin command");
}

/*
 * A retained message on a topic clients write (a request or will published
 * with retain, by mistake or to fill the broker): it is never acted on, and
 * an empty retained message on the same topic deletes the broker's copy.
 */
static void
clear_retained(struct coord *d, const struct mqtt_in *in)
{
	if (in->len == 0 ||
	    !codec_topic_text_valid(in->topic, strlen(in->topic)))
		return;
	log_limited(LOG_LEVEL_WARN, "cleared a retained message on %s",
	    in->topic);
	send_publish(d, in->topic, strdup(""), 1, NULL);
}

/*
 * The broker's count of messages it dropped for full queues.  Any rise may
 * have been a request for us: call a roll call, so that every client that
 * holds or waits says so again.
 */
static void
handle_sys_dropped(struct coord *d, const struct mqtt_in *in)
{
	char buf[32];
	char *end;
	unsigned long long n;

	if (in->len == 0 || in->len >= sizeof(buf))
		return;
	memcpy(buf, in->payload, in->len);
	buf[in->len] = '\0';
	n = strtoull(buf, &end, 10);
	if (*end != '\0')
		return;
	if (d->sys_dropped_known && n > d->sys_dropped && !d->want_rollcall) {
		log_warn("the broker dropped %llu messages",
		    n - d->sys_dropped);
		d->want_rollcall = true;
		d->rollcall_why = "the broker dropped messages";
	}
	d->sys_dropped = n;
	d->sys_dropped_known = true;
}

void
handle_message(struct coord *d, struct mqtt_in *in)
{
	struct codec_topic ct;

	if (strcmp(in->topic, d->sys_topic) == 0) {
		handle_sys_dropped(d, in);
		return;
	}
	codec_parse_topic(d->cfg->prefix, in->topic, &ct);
	/* Retained copies are history, never requests. */
	if (in->retained) {
		if (ct.kind == CODEC_T_REQUEST || ct.kind == CODEC_T_WILL ||
		    ct.kind == CODEC_T_ADMIN)
			clear_retained(d, in);
		return;
	}
	switch (ct.kind) {
	case CODEC_T_REQUEST:
		handle_request(d, &ct, in);
		break;
	case CODEC_T_WILL:
		handle_will(d, &ct, in);
		break;
	case CODEC_T_ADMIN:
		handle_admin(d, &ct, in);
		break;
	case CODEC_T_OTHER:
	default:
		break;
	}
}
