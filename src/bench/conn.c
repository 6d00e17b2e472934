#include "bench/conn.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/clock.h"
#include "io/log.h"
#include "io/net.h"

/* Far above any window a workload keeps: Paho fails sends past it. */
#define BUFFERED_MAX (1 << 24)
#define KEEPALIVE_S 60
#define CONNECT_TIMEOUT_S 10
/* Filters per SUBSCRIBE packet. */
#define SUB_CHUNK 100
/* Messages up to this size are copied on the stack. */
#define STACK_COPY 8192

enum state { ST_CONNECTING, ST_UP, ST_FAILED, ST_LOST, ST_CLOSED };

struct conn {
	MQTTAsync cli;
	char *id;
	char *uri;
	conn_handler *fn;
	void *arg;
	atomic_ulong failures;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* Guarded by mu. */
	enum state state;
	int subs_pending;
	int subs_refused;
	int disc_done;
};

static void
set_state(struct conn *c, enum state s)
{
	pthread_mutex_lock(&c->mu);
	c->state = s;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void
on_connect_ok(void *ctx, MQTTAsync_successData5 *r)
{
	/* The socket exists now: the moment to turn Nagle off. */
	(void)net_nodelay_all();
	set_state(ctx, ST_UP);
}

static void
on_connect_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct conn *c = ctx;

	log_error("bench: connect %s to %s failed: %s", c->id, c->uri,
	    r != NULL && r->message != NULL ? r->message : "no reason given");
	set_state(c, ST_FAILED);
}

static void
on_lost(void *ctx, char *cause)
{
	struct conn *c = ctx;

	pthread_mutex_lock(&c->mu);
	if (c->state == ST_UP) {
		log_warn("bench: %s lost its connection: %s", c->id,
		    cause != NULL ? cause : "no reason given");
		c->state = ST_LOST;
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static int
on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct conn *c = ctx;
	char tbuf[1024], pbuf[STACK_COPY], *p = pbuf;
	size_t tl = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	size_t pl = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;

	if (c->fn != NULL && tl < sizeof(tbuf)) {
		memcpy(tbuf, topic, tl);
		tbuf[tl] = '\0';
		if (pl >= sizeof(pbuf) && (p = malloc(pl + 1)) == NULL)
			log_error("bench: out of memory for a message");
		else {
			if (pl > 0)
				memcpy(p, m->payload, pl);
			p[pl] = '\0';
			c->fn(c->arg, tbuf, p, pl);
			if (p != pbuf)
				free(p);
		}
	}
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	/* 1: handled; 0 would make Paho deliver it again. */
	return 1;
}

static void
on_sub_ok(void *ctx, MQTTAsync_successData5 *r)
{
	struct conn *c = ctx;
	int refused = 0;

	if (r != NULL && r->alt.sub.reasonCodeCount > 1) {
		for (int i = 0; i < r->alt.sub.reasonCodeCount; i++)
			if (r->alt.sub.reasonCodes[i] >= 0x80)
				refused = 1;
	} else if (r != NULL && r->reasonCode >= 0x80)
		refused = 1;
	pthread_mutex_lock(&c->mu);
	c->subs_pending--;
	c->subs_refused += refused;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void
on_sub_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct conn *c = ctx;

	pthread_mutex_lock(&c->mu);
	c->subs_pending--;
	c->subs_refused++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void
on_pub_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct conn *c = ctx;

	atomic_fetch_add(&c->failures, 1);
}

static void
on_pub_ok(void *ctx, MQTTAsync_successData5 *r)
{
	struct conn *c = ctx;

	if (r != NULL && r->reasonCode >= 0x80)
		atomic_fetch_add(&c->failures, 1);
}

static void
on_disc_done(struct conn *c)
{
	pthread_mutex_lock(&c->mu);
	c->disc_done = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void
on_disc_ok(void *ctx, MQTTAsync_successData5 *r)
{
	on_disc_done(ctx);
}

static void
on_disc_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	on_disc_done(ctx);
}

struct conn *
conn_start(const struct conn_opts *o)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_willOptions wo = MQTTAsync_willOptions_initializer;
	pthread_condattr_t ca;
	struct conn *c;
	int rc;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_error("bench: out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		log_error("bench: mutex init failed");
		return NULL;
	}
	if (pthread_condattr_init(&ca) != 0 ||
	    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&c->cv, &ca) != 0) {
		pthread_mutex_destroy(&c->mu);
		free(c);
		log_error("bench: condition variable init failed");
		return NULL;
	}
	pthread_condattr_destroy(&ca);
	c->fn = o->fn;
	c->arg = o->arg;
	c->state = ST_CONNECTING;
	if ((c->id = strdup(o->client_id)) == NULL ||
	    (c->uri = strdup(o->uri)) == NULL) {
		log_error("bench: out of memory");
		goto err;
	}
	co.sendWhileDisconnected = 0;
	co.maxBufferedMessages = BUFFERED_MAX;
	co.MQTTVersion = MQTTVERSION_5;
	rc = MQTTAsync_createWithOptions(&c->cli, c->uri, c->id,
	    MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("bench: client %s: %s (%d)", c->id,
		    MQTTAsync_strerror(rc), rc);
		c->cli = NULL;
		goto err;
	}
	rc = MQTTAsync_setCallbacks(c->cli, c, on_lost, on_message, NULL);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("bench: setCallbacks: %s (%d)",
		    MQTTAsync_strerror(rc), rc);
		goto err;
	}
	cn.keepAliveInterval = KEEPALIVE_S;
	cn.cleanstart = 1;
	cn.connectTimeout = CONNECT_TIMEOUT_S;
	cn.automaticReconnect = 0;
	cn.onSuccess5 = on_connect_ok;
	cn.onFailure5 = on_connect_fail;
	cn.context = c;
	if (o->will_topic != NULL) {
		wo.topicName = o->will_topic;
		wo.message = NULL;
		wo.payload.data = o->will_payload;
		wo.payload.len = (int)strlen(o->will_payload);
		wo.qos = 1;
		wo.retained = o->will_retain != 0;
		cn.will = &wo;
	}
	if ((rc = MQTTAsync_connect(c->cli, &cn)) != MQTTASYNC_SUCCESS) {
		log_error("bench: connect %s: %s (%d)", c->id,
		    MQTTAsync_strerror(rc), rc);
		goto err;
	}
	return c;
err:
	if (c->cli != NULL)
		MQTTAsync_destroy(&c->cli);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c->id);
	free(c->uri);
	free(c);
	return NULL;
}

int
conn_wait(struct conn *c, int timeout_ms)
{
	struct timespec until = clock_mono_in(timeout_ms);
	int err = 0, rc;

	pthread_mutex_lock(&c->mu);
	while (c->state == ST_CONNECTING && err != ETIMEDOUT)
		err = pthread_cond_timedwait(&c->cv, &c->mu, &until);
	rc = c->state == ST_UP ? 0 : -1;
	pthread_mutex_unlock(&c->mu);
	if (rc != 0 && err == ETIMEDOUT)
		log_error("bench: %s not connected after %d ms", c->id,
		    timeout_ms);
	return rc;
}

/* Send one SUBSCRIBE with up to SUB_CHUNK filters. */
static int
subscribe_chunk(struct conn *c, const char *const *filters, int n, int retained)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTSubscribe_options so[SUB_CHUNK];
	int qos[SUB_CHUNK], rc;

	for (int i = 0; i < n; i++) {
		MQTTSubscribe_options o = MQTTSubscribe_options_initializer;

		o.retainHandling = retained ? 0 : 2;
		so[i] = o;
		qos[i] = 1;
	}
	ro.onSuccess5 = on_sub_ok;
	ro.onFailure5 = on_sub_fail;
	ro.context = c;
	ro.subscribeOptions = so[0];
	if (n > 1) {
		ro.subscribeOptionsCount = n;
		ro.subscribeOptionsList = so;
	}
	pthread_mutex_lock(&c->mu);
	c->subs_pending++;
	pthread_mutex_unlock(&c->mu);
	rc = MQTTAsync_subscribeMany(c->cli, n, (char *const *)filters, qos,
	    &ro);
	if (rc != MQTTASYNC_SUCCESS) {
		pthread_mutex_lock(&c->mu);
		c->subs_pending--;
		pthread_mutex_unlock(&c->mu);
		log_error("bench: subscribe %s: %s (%d)", c->id,
		    MQTTAsync_strerror(rc), rc);
		return -1;
	}
	return 0;
}

int
conn_subscribe(struct conn *c, const char *const *filters, size_t n,
    int retained, int timeout_ms)
{
	struct timespec until = clock_mono_in(timeout_ms);
	int err = 0, rc = 0;

	for (size_t i = 0; i < n && rc == 0; i += SUB_CHUNK) {
		size_t k = n - i < SUB_CHUNK ? n - i : SUB_CHUNK;

		rc = subscribe_chunk(c, filters + i, (int)k, retained);
	}
	pthread_mutex_lock(&c->mu);
	while (c->subs_pending > 0 && err != ETIMEDOUT)
		err = pthread_cond_timedwait(&c->cv, &c->mu, &until);
	if (c->subs_pending > 0 || c->subs_refused > 0)
		rc = -1;
	pthread_mutex_unlock(&c->mu);
	if (rc != 0)
		log_error("bench: %s: subscriptions refused or unanswered",
		    c->id);
	return rc;
}

int
conn_publish(struct conn *c, const char *topic, const void *payload, size_t len,
    int retain)
{
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	int rc;

	m.payload = (void *)payload;
	m.payloadlen = (int)len;
	m.qos = 1;
	m.retained = retain != 0;
	ro.onSuccess5 = on_pub_ok;
	ro.onFailure5 = on_pub_fail;
	ro.context = c;
	/* Paho copies topic and payload into its queue. */
	rc = MQTTAsync_sendMessage(c->cli, topic, &m, &ro);
	if (rc != MQTTASYNC_SUCCESS) {
		atomic_fetch_add(&c->failures, 1);
		log_limited(LOG_LEVEL_ERROR, "bench: publish %s to %s: %s (%d)",
		    c->id, topic, MQTTAsync_strerror(rc), rc);
		return -1;
	}
	return 0;
}

unsigned long
conn_failures(const struct conn *c)
{
	return atomic_load(&c->failures);
}

int
conn_up(const struct conn *c)
{
	struct conn *m = (struct conn *)c;
	int up;

	pthread_mutex_lock(&m->mu);
	up = m->state == ST_UP;
	pthread_mutex_unlock(&m->mu);
	return up;
}

const char *
conn_id(const struct conn *c)
{
	return c->id;
}

void
conn_free(struct conn *c)
{
	MQTTAsync_disconnectOptions d =
	    MQTTAsync_disconnectOptions_initializer5;
	struct timespec until;
	int err = 0;

	if (c == NULL)
		return;
	d.timeout = 1000;
	d.onSuccess5 = on_disc_ok;
	d.onFailure5 = on_disc_fail;
	d.context = c;
	if (MQTTAsync_isConnected(c->cli) &&
	    MQTTAsync_disconnect(c->cli, &d) == MQTTASYNC_SUCCESS) {
		until = clock_mono_in(3000);
		pthread_mutex_lock(&c->mu);
		while (!c->disc_done && err != ETIMEDOUT)
			err = pthread_cond_timedwait(&c->cv, &c->mu, &until);
		pthread_mutex_unlock(&c->mu);
	}
	set_state(c, ST_CLOSED);
	MQTTAsync_destroy(&c->cli);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c->id);
	free(c->uri);
	free(c);
}
