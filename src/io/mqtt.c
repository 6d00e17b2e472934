#include "io/mqtt.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/clock.h"
#include "io/log.h"
#include "io/net.h"

#define INBOUND_DEFAULT 65536
#define CONNECT_TIMEOUT_DEFAULT 5
#define PAYLOAD_MAX 268435455 /* the MQTT remaining-length limit */

/*
 * Paho counts every publish it has not yet written against
 * maxBufferedMessages, connected or not, and fails sends past it (-12).  Our
 * callers bound what they send themselves, so make Paho's bound irrelevant.
 */
#define PAHO_BUFFERED_MAX (1 << 24)

/* How long mqtt_disconnect() waits for Paho to report the DISCONNECT sent. */
#define DISCONNECT_SLACK_MS 2000

enum state {
	ST_IDLE,        /* not connected, no attempt running */
	ST_CONNECTING,  /* MQTTAsync_connect() issued */
	ST_SUBSCRIBING, /* CONNACK in, SUBACK outstanding */
	ST_CONNECTED    /* MQTT_IN_CONNECTED queued */
};

/* A queued item.  `in` comes first: mqtt_in_free() frees the node. */
struct node {
	struct mqtt_in in;
	struct node *next;
};

struct mqtt {
	MQTTAsync cli;

	/* Copies of the options; read-only after mqtt_new(). */
	char *uri;
	char *client_id;
	char *username;
	char *password;
	char *cafile;
	char *certfile;
	char *keyfile;
	int tls;
	int keepalive;
	int clean_start;
	int connect_timeout;
	uint32_t session_expiry;
	size_t inbound_max;
	int nsubs;
	char **sub_filters;
	int *sub_qos;
	MQTTSubscribe_options *sub_opts;

	/* The will for the next connect; owner thread only. */
	char *will_topic;
	void *will_payload;
	size_t will_len;
	int will_retain;

	/* wake[0] is readable exactly while the FIFO is not empty. */
	int wake[2];

	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC; signals publish and disconnect */
	/* Everything below is guarded by mu. */
	enum state state;
	int sub_token;
	int session_present;
	int early_report; /* gone() reported the loss before Paho's callback */
	struct node *head;
	struct node *tail;
	size_t nmsgs;   /* MQTT_IN_MESSAGE items in the FIFO */
	size_t dropped; /* messages dropped since the last MQTT_IN_OVERFLOW */
	size_t pub_pending;
	size_t pub_failed;  /* since the last mqtt_wait_published() */
	size_t drain_below; /* MQTT_IN_DRAINED when pub_pending falls below */
	int drain_armed;
	unsigned receive_max;
	int disc_done;
};

/* Every scheme Paho's TLS build accepts (MQTTAsync.h, "serverURI"). */
static const struct mqtt_scheme schemes[] = {
    {"tcp://", 0, 0},
    {"mqtt://", 0, 0},
    {"ssl://", 1, 0},
    {"mqtts://", 1, 0},
    {"ws://", 0, 1},
    {"wss://", 1, 1},
};

#define NSCHEMES (sizeof(schemes) / sizeof(schemes[0]))

const struct mqtt_scheme *
mqtt_scheme(const char *uri)
{
	for (size_t i = 0; i < NSCHEMES; i++) {
		if (strncmp(uri, schemes[i].prefix,
			strlen(schemes[i].prefix)) == 0)
			return &schemes[i];
	}
	return NULL;
}

void
mqtt_scheme_list(char *buf, size_t size, int tls_only)
{
	size_t used = 0, n = 0, k = 0, i;

	if (size == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < NSCHEMES; i++)
		n += !tls_only || schemes[i].tls;
	for (i = 0; i < NSCHEMES && used < size; i++) {
		const char *sep = k == 0 ? "" : k + 1 == n ? " or " : ", ";
		int w;

		if (tls_only && !schemes[i].tls)
			continue;
		w = snprintf(buf + used, size - used, "%s%s", sep,
		    schemes[i].prefix);
		if (w < 0)
			break;
		used += (size_t)w;
		k++;
	}
}

static char *
dup_str(const char *s)
{
	return s == NULL ? NULL : strdup(s);
}

/* Caller holds mu.  The wake byte is written when the FIFO stops being
 * empty and drained when it becomes empty again, both under mu, so the pipe
 * holds a byte exactly while there is something to pop. */
static void
wake_set(struct mqtt *m)
{
	ssize_t n;

	do
		n = write(m->wake[1], "", 1);
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno != EAGAIN)
		log_error("mqtt: wake pipe write: %s", strerror(errno));
}

/* Caller holds mu. */
static void
wake_clear(struct mqtt *m)
{
	char buf[64];
	ssize_t n;

	do
		n = read(m->wake[0], buf, sizeof(buf));
	while (n > 0 || (n == -1 && errno == EINTR));
	if (n == -1 && errno != EAGAIN)
		log_error("mqtt: wake pipe read: %s", strerror(errno));
}

/* Caller holds mu. */
static void
push_locked(struct mqtt *m, struct node *n)
{
	n->next = NULL;
	if (m->head == NULL) {
		m->head = n;
		wake_set(m);
	} else
		m->tail->next = n;
	m->tail = n;
	if (n->in.kind == MQTT_IN_MESSAGE)
		m->nmsgs++;
}

static struct node *
node_new(enum mqtt_in_kind kind)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n == NULL) {
		log_error("mqtt: out of memory");
		return NULL;
	}
	n->in.kind = kind;
	return n;
}

/* Caller holds mu.  Report drops once there is room to say so. */
static void
flush_dropped_locked(struct mqtt *m)
{
	struct node *n;

	if (m->dropped == 0 || m->nmsgs >= m->inbound_max)
		return;
	if ((n = node_new(MQTT_IN_OVERFLOW)) == NULL)
		return; /* tried again on the next pop or message */
	n->in.dropped = m->dropped;
	m->dropped = 0;
	push_locked(m, n);
}

/* Queue a control item (never subject to inbound_max). */
static void
push_ctl(struct mqtt *m, enum mqtt_in_kind kind, int code, const char *reason)
{
	struct node *n = node_new(kind);

	if (n == NULL)
		return;
	n->in.code = code;
	snprintf(n->in.reason, sizeof(n->in.reason), "%s",
	    reason != NULL ? reason : "");
	pthread_mutex_lock(&m->mu);
	n->in.session_present = m->session_present;
	n->in.receive_max = m->receive_max;
	push_locked(m, n);
	pthread_mutex_unlock(&m->mu);
}

/*
 * Paho callbacks.  They all run on Paho's threads; each checks the state
 * under mu so that a late report of an attempt that was already given up
 * (or disconnected by the owner) changes nothing.
 */

/* How gone() learnt that the connection is gone. */
enum gone_by {
	BY_LOST,       /* Paho's connection-lost callback */
	BY_DISCONNECT, /* a DISCONNECT from the broker */
	BY_PUBLISH     /* a publish failed for want of a connection */
};

/*
 * The connection is gone: report it once, as MQTT_IN_LOST when it was up
 * or MQTT_IN_CONNECT_FAILED during an attempt, and go idle.
 *
 * Paho 1.3.12 reports a broker's DISCONNECT only through its disconnected
 * callback (it clears its "connected" flag before its own connection-lost
 * logic runs, which then stays silent), and a connection that breaks under
 * a publish fails the publish before it calls connection lost.  Whichever
 * comes first is the report; early_report then makes a connection-lost call
 * for the same connection, until the next CONNACK, change nothing (the
 * owner may be connecting again by then).
 */
static void
gone(struct mqtt *m, enum gone_by by, int code, const char *reason)
{
	enum state was;

	pthread_mutex_lock(&m->mu);
	was = m->state;
	if ((by == BY_LOST && m->early_report) ||
	    (by == BY_PUBLISH && was != ST_CONNECTED))
		was = ST_IDLE; /* reported already, or an old publish */
	if (was != ST_IDLE) {
		m->state = ST_IDLE;
		m->early_report = by != BY_LOST;
	}
	pthread_mutex_unlock(&m->mu);

	switch (was) {
	case ST_CONNECTED:
		log_warn("mqtt: %s: %s", m->uri, reason);
		push_ctl(m, MQTT_IN_LOST, code, reason);
		break;
	case ST_CONNECTING:
	case ST_SUBSCRIBING:
		log_warn("mqtt: connect to %s: %s", m->uri, reason);
		push_ctl(m, MQTT_IN_CONNECT_FAILED, code, reason);
		break;
	default:
		break;
	}
}

static void
on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes rc)
{
	char reason[128];

	snprintf(reason, sizeof(reason), "broker sent DISCONNECT: %s",
	    MQTTReasonCode_toString(rc));
	gone(ctx, BY_DISCONNECT, (int)rc, reason);
}

static void
on_lost(void *ctx, char *cause)
{
	gone(ctx, BY_LOST, 0, cause != NULL ? cause : "connection lost");
}

/* A connect attempt that got its CONNACK failed later: report it and drop
 * the half-made connection. */
static void
fail_subscribing(struct mqtt *m, int code, const char *reason)
{
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;
	int rc;

	pthread_mutex_lock(&m->mu);
	if (m->state != ST_SUBSCRIBING) {
		pthread_mutex_unlock(&m->mu);
		return;
	}
	m->state = ST_IDLE;
	pthread_mutex_unlock(&m->mu);
	log_error("mqtt: connect to %s: %s", m->uri, reason);
	if ((rc = MQTTAsync_disconnect(m->cli, &d)) != MQTTASYNC_SUCCESS &&
	    rc != MQTTASYNC_DISCONNECTED)
		log_warn("mqtt: disconnect after failed subscribe: %s (%d)",
		    MQTTAsync_strerror(rc), rc);
	push_ctl(m, MQTT_IN_CONNECT_FAILED, code, reason);
}

static void
on_sub_ok(void *ctx, MQTTAsync_successData5 *r)
{
	struct mqtt *m = ctx;
	char reason[128];
	int i, code = 0, bad = -1;

	if (r == NULL) {
		fail_subscribing(m, 0, "SUBACK without data");
		return;
	}
	pthread_mutex_lock(&m->mu);
	if (m->state != ST_SUBSCRIBING ||
	    (m->sub_token != 0 && r->token != m->sub_token)) {
		pthread_mutex_unlock(&m->mu);
		return;
	}
	pthread_mutex_unlock(&m->mu);

	/* One filter: the code is in reasonCode; several: in the list. */
	if (m->nsubs == 1) {
		if ((int)r->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
			bad = 0;
			code = (int)r->reasonCode;
		}
	} else if (r->alt.sub.reasonCodeCount != m->nsubs ||
	    r->alt.sub.reasonCodes == NULL) {
		fail_subscribing(m, 0, "SUBACK does not match the request");
		return;
	} else {
		for (i = 0; i < m->nsubs && bad < 0; i++) {
			code = (int)r->alt.sub.reasonCodes[i];
			if (code >= MQTTREASONCODE_UNSPECIFIED_ERROR)
				bad = i;
		}
	}
	if (bad >= 0) {
		snprintf(reason, sizeof(reason),
		    "subscription to %s refused: %s", m->sub_filters[bad],
		    MQTTReasonCode_toString((enum MQTTReasonCodes)code));
		fail_subscribing(m, code, reason);
		return;
	}

	pthread_mutex_lock(&m->mu);
	if (m->state == ST_SUBSCRIBING) {
		struct node *n = node_new(MQTT_IN_CONNECTED);

		m->state = ST_CONNECTED;
		if (n != NULL) {
			n->in.session_present = m->session_present;
			n->in.receive_max = m->receive_max;
			push_locked(m, n);
		}
	}
	pthread_mutex_unlock(&m->mu);
}

static void
on_sub_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct mqtt *m = ctx;
	char reason[128];
	int code = 0;

	if (r != NULL) {
		code = r->reasonCode != 0 ? (int)r->reasonCode : r->code;
		snprintf(reason, sizeof(reason), "subscribe failed: %s",
		    r->reasonCode != 0 ? MQTTReasonCode_toString(r->reasonCode)
			: r->message != NULL ? r->message
					     : MQTTAsync_strerror(r->code));
	} else
		snprintf(reason, sizeof(reason), "subscribe failed");
	fail_subscribing(m, code, reason);
}

/* The broker's Receive Maximum from its CONNACK (MQTT 5: 65535 if none). */
static unsigned
receive_max_of(MQTTAsync_successData5 *r)
{
	int v = r != NULL ? MQTTProperties_getNumericValue(&r->properties,
				MQTTPROPERTY_CODE_RECEIVE_MAXIMUM)
			  : -1;

	return v >= 1 && v <= 65535 ? (unsigned)v : 65535u;
}

static void
on_connect_ok(void *ctx, MQTTAsync_successData5 *r)
{
	struct mqtt *m = ctx;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	char reason[128];
	int rc;

	pthread_mutex_lock(&m->mu);
	if (m->state != ST_CONNECTING) {
		pthread_mutex_unlock(&m->mu);
		return;
	}
	m->session_present = r != NULL ? r->alt.connect.sessionPresent : 0;
	m->receive_max = receive_max_of(r);
	/* Paho says nothing more of the previous connection after this. */
	m->early_report = 0;
	m->sub_token = 0;
	m->state = m->nsubs > 0 ? ST_SUBSCRIBING : ST_CONNECTED;
	pthread_mutex_unlock(&m->mu);

	/* Paho's socket is open now: the moment to turn Nagle off. */
	(void)net_nodelay_all();

	if (m->nsubs == 0) {
		push_ctl(m, MQTT_IN_CONNECTED, 0, NULL);
		return;
	}
	ro.onSuccess5 = on_sub_ok;
	ro.onFailure5 = on_sub_fail;
	ro.context = m;
	ro.subscribeOptions = m->sub_opts[0];
	if (m->nsubs > 1) {
		ro.subscribeOptionsCount = m->nsubs;
		ro.subscribeOptionsList = m->sub_opts;
	}
	rc = MQTTAsync_subscribeMany(m->cli, m->nsubs, m->sub_filters,
	    m->sub_qos, &ro);
	if (rc != MQTTASYNC_SUCCESS) {
		snprintf(reason, sizeof(reason), "subscribe: %s",
		    MQTTAsync_strerror(rc));
		fail_subscribing(m, rc, reason);
		return;
	}
	pthread_mutex_lock(&m->mu);
	if (m->state == ST_SUBSCRIBING)
		m->sub_token = ro.token;
	pthread_mutex_unlock(&m->mu);
}

static void
on_connect_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct mqtt *m = ctx;
	char reason[128];
	int code = 0;

	pthread_mutex_lock(&m->mu);
	if (m->state != ST_CONNECTING) {
		pthread_mutex_unlock(&m->mu);
		return;
	}
	m->state = ST_IDLE;
	pthread_mutex_unlock(&m->mu);

	if (r == NULL)
		snprintf(reason, sizeof(reason), "connect failed");
	else if ((int)r->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
		/* The broker refused the CONNECT. */
		code = (int)r->reasonCode;
		snprintf(reason, sizeof(reason), "refused: %s",
		    MQTTReasonCode_toString(r->reasonCode));
	} else {
		code = r->code;
		snprintf(reason, sizeof(reason), "%s",
		    r->message != NULL ? r->message
				       : MQTTAsync_strerror(r->code));
	}
	log_warn("mqtt: connect to %s failed: %s (%d)", m->uri, reason, code);
	push_ctl(m, MQTT_IN_CONNECT_FAILED, code, reason);
}

static void
pub_done(struct mqtt *m, int failed)
{
	pthread_mutex_lock(&m->mu);
	if (m->pub_pending > 0)
		m->pub_pending--;
	if (failed)
		m->pub_failed++;
	if (m->drain_armed && m->pub_pending < m->drain_below) {
		struct node *n = node_new(MQTT_IN_DRAINED);

		m->drain_armed = 0;
		if (n != NULL)
			push_locked(m, n);
	}
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

static void
on_pub_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct mqtt *m = ctx;

	/* Paho reports -11 here for every publish still unacknowledged when
	 * the connection drops. */
	if (r != NULL)
		log_warn("mqtt: publish failed: %s (%d/%d)",
		    r->reasonCode != 0 ? MQTTReasonCode_toString(r->reasonCode)
			: r->message != NULL ? r->message
					     : MQTTAsync_strerror(r->code),
		    r->code, (int)r->reasonCode);
	else
		log_warn("mqtt: publish failed");
	pub_done(m, 1);
	if (r != NULL &&
	    (r->code == MQTTASYNC_OPERATION_INCOMPLETE ||
		r->code == MQTTASYNC_DISCONNECTED))
		gone(m, BY_PUBLISH, r->code,
		    "a publish found the connection closed");
}

static void
on_pub_ok(void *ctx, MQTTAsync_successData5 *r)
{
	struct mqtt *m = ctx;

	/* A PUBACK may carry a refusal (e.g. 0x87 not authorized). */
	if (r != NULL &&
	    (int)r->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
		log_warn("mqtt: publish refused: %s",
		    MQTTReasonCode_toString(r->reasonCode));
		pub_done(m, 1);
		return;
	}
	pub_done(m, 0);
}

static void
on_disc_done(struct mqtt *m)
{
	pthread_mutex_lock(&m->mu);
	m->disc_done = 1;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

static void
on_disc_ok(void *ctx, MQTTAsync_successData5 *r)
{
	on_disc_done(ctx);
}

static void
on_disc_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct mqtt *m = ctx;

	log_warn("mqtt: disconnect from %s: %s", m->uri,
	    r != NULL && r->message != NULL ? r->message : "failed");
	on_disc_done(m);
}

/* Copy one message into one allocation; NULL when memory runs out. */
static struct node *
message_node(const char *topic, int topic_len, MQTTAsync_message *msg)
{
	MQTTProperty *rt, *cd;
	size_t tlen, plen, rlen = 0, clen = 0, size;
	struct node *n;
	char *p;

	tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	rt = MQTTProperties_getProperty(&msg->properties,
	    MQTTPROPERTY_CODE_RESPONSE_TOPIC);
	cd = MQTTProperties_getProperty(&msg->properties,
	    MQTTPROPERTY_CODE_CORRELATION_DATA);
	if (rt != NULL && rt->value.data.len > 0)
		rlen = (size_t)rt->value.data.len;
	if (cd != NULL && cd->value.data.len > 0)
		clen = (size_t)cd->value.data.len;
	/* Each length is below 2^28, so the sum cannot wrap. */
	size =
	    sizeof(*n) + tlen + 1 + plen + 1 + (rlen > 0 ? rlen + 1 : 0) + clen;
	if ((n = malloc(size)) == NULL)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->in.kind = MQTT_IN_MESSAGE;
	p = (char *)(n + 1);
	n->in.topic = p;
	memcpy(p, topic, tlen);
	p[tlen] = '\0';
	p += tlen + 1;
	n->in.payload = p;
	n->in.len = plen;
	if (plen > 0)
		memcpy(p, msg->payload, plen);
	p[plen] = '\0';
	p += plen + 1;
	if (rlen > 0) {
		n->in.resp_topic = p;
		memcpy(p, rt->value.data.data, rlen);
		p[rlen] = '\0';
		p += rlen + 1;
	}
	if (clen > 0) {
		n->in.corr = p;
		n->in.corr_len = clen;
		memcpy(p, cd->value.data.data, clen);
	}
	n->in.qos = msg->qos;
	n->in.retained = msg->retained != 0;
	return n;
}

static int
on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
	struct mqtt *m = ctx;
	struct node *n = message_node(topic, topic_len, msg);
	int first_drop = 0;

	MQTTAsync_freeMessage(&msg);
	MQTTAsync_free(topic);

	pthread_mutex_lock(&m->mu);
	flush_dropped_locked(m);
	if (n == NULL || m->nmsgs >= m->inbound_max) {
		first_drop = m->dropped == 0;
		m->dropped++;
		free(n);
		n = NULL;
	} else
		push_locked(m, n);
	pthread_mutex_unlock(&m->mu);
	if (first_drop)
		log_limited(LOG_LEVEL_WARN,
		    "mqtt: inbound queue full (%zu): dropping messages",
		    m->inbound_max);
	/* 1: handled; 0 would make Paho deliver the same message again. */
	return 1;
}

static int
copy_subs(struct mqtt *m, const struct mqtt_opts *o)
{
	size_t i;

	if (o->nsubs == 0)
		return 0;
	if (o->subs == NULL || o->nsubs > 1024) {
		log_error("mqtt: bad subscription list");
		return -1;
	}
	m->sub_filters = calloc(o->nsubs, sizeof(*m->sub_filters));
	m->sub_qos = calloc(o->nsubs, sizeof(*m->sub_qos));
	m->sub_opts = calloc(o->nsubs, sizeof(*m->sub_opts));
	if (m->sub_filters == NULL || m->sub_qos == NULL || m->sub_opts == NULL)
		goto nomem;
	m->nsubs = (int)o->nsubs;
	for (i = 0; i < o->nsubs; i++) {
		const struct mqtt_sub *s = &o->subs[i];
		MQTTSubscribe_options so = MQTTSubscribe_options_initializer;

		if (s->filter == NULL || s->qos < 0 || s->qos > 2 ||
		    s->retain_handling < 0 || s->retain_handling > 2) {
			log_error("mqtt: bad subscription %zu", i);
			return -1;
		}
		if ((m->sub_filters[i] = strdup(s->filter)) == NULL)
			goto nomem;
		m->sub_qos[i] = s->qos;
		so.noLocal = s->no_local != 0;
		so.retainHandling = (unsigned char)s->retain_handling;
		so.retainAsPublished = s->retain_as_published != 0;
		m->sub_opts[i] = so;
	}
	return 0;
nomem:
	log_error("mqtt: out of memory");
	return -1;
}

struct mqtt *
mqtt_new(const struct mqtt_opts *o)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	const struct mqtt_scheme *scheme;
	char schemes_text[128];
	pthread_condattr_t ca;
	struct mqtt *m;
	int rc, i;

	if (o == NULL || o->uri == NULL || o->client_id == NULL ||
	    o->keepalive < 1 || o->connect_timeout < 0) {
		log_error("mqtt: bad options");
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		log_error("mqtt: out of memory");
		return NULL;
	}
	m->wake[0] = m->wake[1] = -1;
	if (pthread_mutex_init(&m->mu, NULL) != 0) {
		log_error("mqtt: mutex init failed");
		free(m);
		return NULL;
	}
	if (pthread_condattr_init(&ca) != 0 ||
	    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&m->cv, &ca) != 0) {
		log_error("mqtt: condition variable init failed");
		pthread_mutex_destroy(&m->mu);
		free(m);
		return NULL;
	}
	pthread_condattr_destroy(&ca);

	m->uri = dup_str(o->uri);
	m->client_id = dup_str(o->client_id);
	m->username = dup_str(o->username);
	m->password = dup_str(o->password);
	m->cafile = dup_str(o->cafile);
	m->certfile = dup_str(o->certfile);
	m->keyfile = dup_str(o->keyfile);
	if (m->uri == NULL || m->client_id == NULL ||
	    (o->username != NULL && m->username == NULL) ||
	    (o->password != NULL && m->password == NULL) ||
	    (o->cafile != NULL && m->cafile == NULL) ||
	    (o->certfile != NULL && m->certfile == NULL) ||
	    (o->keyfile != NULL && m->keyfile == NULL)) {
		log_error("mqtt: out of memory");
		goto err;
	}
	if ((scheme = mqtt_scheme(o->uri)) == NULL) {
		mqtt_scheme_list(schemes_text, sizeof(schemes_text), 0);
		log_error("mqtt: %s: the URI must start with %s", o->uri,
		    schemes_text);
		goto err;
	}
	m->tls = scheme->tls;
	m->keepalive = o->keepalive;
	m->clean_start = o->clean_start != 0;
	m->session_expiry = o->session_expiry;
	m->connect_timeout = o->connect_timeout > 0 ? o->connect_timeout
						    : CONNECT_TIMEOUT_DEFAULT;
	m->inbound_max = o->inbound_max > 0 ? o->inbound_max : INBOUND_DEFAULT;
	if (copy_subs(m, o) == -1)
		goto err;

	if (pipe(m->wake) == -1) {
		log_error("mqtt: pipe: %s", strerror(errno));
		m->wake[0] = m->wake[1] = -1;
		goto err;
	}
	for (i = 0; i < 2; i++) {
		int fl = fcntl(m->wake[i], F_GETFL);

		if (fl == -1 ||
		    fcntl(m->wake[i], F_SETFL, fl | O_NONBLOCK) == -1 ||
		    fcntl(m->wake[i], F_SETFD, FD_CLOEXEC) == -1) {
			log_error("mqtt: fcntl: %s", strerror(errno));
			goto err;
		}
	}

	co.sendWhileDisconnected = 0;
	co.maxBufferedMessages = PAHO_BUFFERED_MAX;
	co.MQTTVersion = MQTTVERSION_5;
	rc = MQTTAsync_createWithOptions(&m->cli, m->uri, m->client_id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("mqtt: client for %s: %s (%d)", m->uri,
		    MQTTAsync_strerror(rc), rc);
		m->cli = NULL;
		goto err;
	}
	rc = MQTTAsync_setCallbacks(m->cli, m, on_lost, on_message, NULL);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("mqtt: setCallbacks: %s (%d)", MQTTAsync_strerror(rc),
		    rc);
		goto err;
	}
	rc = MQTTAsync_setDisconnected(m->cli, m, on_disconnected);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("mqtt: setDisconnected: %s (%d)",
		    MQTTAsync_strerror(rc), rc);
		goto err;
	}
	return m;
err:
	mqtt_free(m);
	return NULL;
}

void
mqtt_free(struct mqtt *m)
{
	struct node *n, *next;
	int i;

	if (m == NULL)
		return;
	if (m->cli != NULL) {
		mqtt_disconnect(m, 1000);
		MQTTAsync_destroy(&m->cli);
	}
	for (n = m->head; n != NULL; n = next) {
		next = n->next;
		free(n);
	}
	for (i = 0; i < m->nsubs; i++)
		free(m->sub_filters[i]);
	free(m->sub_filters);
	free(m->sub_qos);
	free(m->sub_opts);
	free(m->will_topic);
	free(m->will_payload);
	if (m->wake[0] != -1)
		close(m->wake[0]);
	if (m->wake[1] != -1)
		close(m->wake[1]);
	free(m->uri);
	free(m->client_id);
	free(m->username);
	free(m->password);
	free(m->cafile);
	free(m->certfile);
	free(m->keyfile);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

int
mqtt_set_will(struct mqtt *m, const char *topic, const void *payload,
    size_t len, int retain)
{
	char *t = NULL;
	void *p = NULL;

	if (topic != NULL) {
		if (len > PAYLOAD_MAX || (len > 0 && payload == NULL)) {
			log_error("mqtt: bad will payload");
			return -1;
		}
		/* One extra byte so that an empty payload is not NULL. */
		if ((t = strdup(topic)) == NULL ||
		    (p = malloc(len + 1)) == NULL) {
			log_error("mqtt: out of memory");
			free(t);
			return -1;
		}
		if (len > 0)
			memcpy(p, payload, len);
	}
	free(m->will_topic);
	free(m->will_payload);
	m->will_topic = t;
	m->will_payload = p;
	m->will_len = len;
	m->will_retain = retain != 0;
	return 0;
}

int
mqtt_connect(struct mqtt *m)
{
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_willOptions wo = MQTTAsync_willOptions_initializer;
	MQTTAsync_SSLOptions so = MQTTAsync_SSLOptions_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty se;
	int rc;

	pthread_mutex_lock(&m->mu);
	if (m->state != ST_IDLE) {
		pthread_mutex_unlock(&m->mu);
		log_error("mqtt: connect while a connection is up or starting");
		return -1;
	}
	m->state = ST_CONNECTING;
	m->session_present = 0;
	pthread_mutex_unlock(&m->mu);

	memset(&se, 0, sizeof(se));
	se.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
	se.value.integer4 = m->session_expiry;
	if ((rc = MQTTProperties_add(&props, &se)) != 0 || props.count != 1) {
		log_error("mqtt: connect properties: %d", rc);
		MQTTProperties_free(&props);
		goto err;
	}

	co.keepAliveInterval = m->keepalive;
	co.cleanstart = m->clean_start;
	co.connectTimeout = m->connect_timeout;
	co.automaticReconnect = 0;
	co.username = m->username;
	co.password = m->password;
	co.connectProperties = &props;
	co.onSuccess5 = on_connect_ok;
	co.onFailure5 = on_connect_fail;
	co.context = m;
	if (m->will_topic != NULL) {
		wo.topicName = m->will_topic;
		wo.message = NULL;
		wo.payload.data = m->will_payload;
		wo.payload.len = (int)m->will_len;
		wo.qos = 1;
		wo.retained = m->will_retain;
		co.will = &wo;
	}
	if (m->tls) {
		so.trustStore = m->cafile;
		so.keyStore = m->certfile;
		so.privateKey = m->keyfile;
		so.enableServerCertAuth = 1;
		so.verify = 1;
		co.ssl = &so;
	}
	rc = MQTTAsync_connect(m->cli, &co);
	MQTTProperties_free(&props);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("mqtt: connect to %s: %s (%d)", m->uri,
		    MQTTAsync_strerror(rc), rc);
		goto err;
	}
	return 0;
err:
	pthread_mutex_lock(&m->mu);
	if (m->state == ST_CONNECTING)
		m->state = ST_IDLE;
	pthread_mutex_unlock(&m->mu);
	return -1;
}
/* Caller holds mu.  Wait for our QoS 1 publishes until `until`; returns
 * the number still outstanding. */
static size_t
wait_pending_locked(struct mqtt *m, const struct timespec *until)
{
	int err = 0;

	while (m->pub_pending > 0 && err != ETIMEDOUT)
		err = pthread_cond_timedwait(&m->cv, &m->mu, until);
	return m->pub_pending;
}

/* DISCONNECT with `reason` after waiting up to timeout_ms for our
 * publishes. */
static void
disconnect(struct mqtt *m, int timeout_ms, enum MQTTReasonCodes reason)
{
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;
	struct timespec until;
	enum state was;
	int rc, err = 0;

	if (timeout_ms < 0)
		timeout_ms = 0;
	pthread_mutex_lock(&m->mu);
	was = m->state;
	m->state = ST_IDLE;
	m->disc_done = 0;
	/*
	 * Wait for our publishes here rather than through Paho's own
	 * disconnect timeout: Paho 1.3.12 does not notice the last
	 * acknowledgement arriving and only sends the DISCONNECT (and calls
	 * back) long after it.
	 */
	until = clock_mono_in(timeout_ms);
	if (was == ST_CONNECTED || was == ST_SUBSCRIBING)
		(void)wait_pending_locked(m, &until);
	pthread_mutex_unlock(&m->mu);
	if (was == ST_IDLE && !MQTTAsync_isConnected(m->cli))
		return;

	d.timeout = 0;
	d.reasonCode = reason;
	d.onSuccess5 = on_disc_ok;
	d.onFailure5 = on_disc_fail;
	d.context = m;
	rc = MQTTAsync_disconnect(m->cli, &d);
	if (rc == MQTTASYNC_DISCONNECTED)
		return;
	if (rc != MQTTASYNC_SUCCESS) {
		log_warn("mqtt: disconnect from %s: %s (%d)", m->uri,
		    MQTTAsync_strerror(rc), rc);
		return;
	}
	until = clock_mono_in(DISCONNECT_SLACK_MS);
	pthread_mutex_lock(&m->mu);
	while (!m->disc_done && err != ETIMEDOUT)
		err = pthread_cond_timedwait(&m->cv, &m->mu, &until);
	pthread_mutex_unlock(&m->mu);
	if (err == ETIMEDOUT)
		log_warn("mqtt: disconnect from %s did not complete", m->uri);
}

void
mqtt_disconnect(struct mqtt *m, int timeout_ms)
{
	disconnect(m, timeout_ms, MQTTREASONCODE_NORMAL_DISCONNECTION);
}

void
mqtt_drop(struct mqtt *m)
{
	disconnect(m, 0, MQTTREASONCODE_DISCONNECT_WITH_WILL_MESSAGE);
}

int
mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len,
    int qos, int retain, const struct mqtt_pub_props *pp)
{
	MQTTAsync_message msg = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTProperty p;
	int rc, want = 0;

	if (topic == NULL || len > PAYLOAD_MAX ||
	    (len > 0 && payload == NULL) || qos < 0 || qos > 2) {
		log_error("mqtt: bad publish");
		return -1;
	}
	if (pp != NULL && pp->resp_topic != NULL) {
		size_t rl = strlen(pp->resp_topic);

		if (rl == 0 || rl > 65535) {
			log_error("mqtt: bad response topic");
			return -1;
		}
		memset(&p, 0, sizeof(p));
		p.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
		p.value.data.data = (char *)pp->resp_topic;
		p.value.data.len = (int)rl;
		if (MQTTProperties_add(&msg.properties, &p) != 0 ||
		    msg.properties.count != ++want)
			goto nomem;
	}
	if (pp != NULL && pp->corr != NULL) {
		if (pp->corr_len > 65535) {
			log_error("mqtt: correlation data too long");
			goto err;
		}
		memset(&p, 0, sizeof(p));
		p.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
		p.value.data.data = (char *)pp->corr;
		p.value.data.len = (int)pp->corr_len;
		if (MQTTProperties_add(&msg.properties, &p) != 0 ||
		    msg.properties.count != ++want)
			goto nomem;
	}
	msg.payload = (void *)payload;
	msg.payloadlen = (int)len;
	msg.qos = qos;
	msg.retained = retain != 0;
	ro.context = m;
	if (qos > 0) {
		ro.onSuccess5 = on_pub_ok;
		ro.onFailure5 = on_pub_fail;
		/* Counted first: the acknowledgement may beat our return. */
		pthread_mutex_lock(&m->mu);
		m->pub_pending++;
		pthread_mutex_unlock(&m->mu);
	}
	/* Paho copies topic, payload and properties into its queue. */
	rc = MQTTAsync_sendMessage(m->cli, topic, &msg, &ro);
	MQTTProperties_free(&msg.properties);
	if (rc != MQTTASYNC_SUCCESS) {
		if (qos > 0)
			pub_done(m, 0); /* refused at once: reported here */
		log_warn("mqtt: publish to %s: %s (%d)", topic,
		    MQTTAsync_strerror(rc), rc);
		/* Paho knows the connection is gone, whether or not it said. */
		if (rc == MQTTASYNC_DISCONNECTED)
			gone(m, BY_PUBLISH, rc,
			    "a publish found the connection closed");
		return -1;
	}
	return 0;
nomem:
	log_error("mqtt: out of memory");
err:
	MQTTProperties_free(&msg.properties);
	return -1;
}

int
mqtt_wait_published(struct mqtt *m, int timeout_ms)
{
	struct timespec until = clock_mono_in(timeout_ms < 0 ? 0 : timeout_ms);
	int rc;

	pthread_mutex_lock(&m->mu);
	rc = wait_pending_locked(m, &until) == 0 && m->pub_failed == 0 ? 0 : -1;
	m->pub_failed = 0;
	pthread_mutex_unlock(&m->mu);
	return rc;
}

size_t
mqtt_in_flight(struct mqtt *m, size_t wake_below)
{
	size_t n;

	pthread_mutex_lock(&m->mu);
	n = m->pub_pending;
	m->drain_armed = wake_below > 0 && n >= wake_below;
	m->drain_below = wake_below;
	pthread_mutex_unlock(&m->mu);
	return n;
}

int
mqtt_wake_fd(const struct mqtt *m)
{
	return m->wake[0];
}

struct mqtt_in *
mqtt_next(struct mqtt *m)
{
	struct node *n;

	pthread_mutex_lock(&m->mu);
	if ((n = m->head) != NULL) {
		m->head = n->next;
		if (m->head == NULL)
			m->tail = NULL;
		if (n->in.kind == MQTT_IN_MESSAGE)
			m->nmsgs--;
		flush_dropped_locked(m);
		if (m->head == NULL)
			wake_clear(m);
	}
	pthread_mutex_unlock(&m->mu);
	return n != NULL ? &n->in : NULL;
}

void
mqtt_in_free(struct mqtt_in *in)
{
	/* Topic, payload and properties share the node's allocation. */
	free(in);
}

int
mqtt_is_connected(const struct mqtt *m)
{
	/* The mutex is not part of the value: locking it does not change m. */
	struct mqtt *mm = (struct mqtt *)m;
	int up;

	pthread_mutex_lock(&mm->mu);
	up = mm->state == ST_CONNECTED;
	pthread_mutex_unlock(&mm->mu);
	return up;
}
