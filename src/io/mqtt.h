/*
 * mqtt: the MQTT 5 connection, wrapped around Paho MQTTAsync.
 *
 * Paho runs its callbacks on its own threads.  This module turns everything
 * they report (messages, connection up, connection lost, connect failed)
 * into owned `struct mqtt_in` items on a bounded FIFO and wakes the owner
 * through a file descriptor, so that only the owner's thread acts on them.
 *
 * There is no automatic reconnect: the owner calls mqtt_connect() again when
 * it sees MQTT_IN_LOST or MQTT_IN_CONNECT_FAILED, after whatever backoff it
 * likes, and may change the will in between (mqtt_set_will()).  Every end
 * of an established connection is one MQTT_IN_LOST: the socket failing or
 * the keepalive running out, a DISCONNECT from the broker (Paho 1.3.12
 * reports that only to its "disconnected" callback, e.g. after a publish the
 * broker finds malformed), and a publish that finds the connection closed.  The
 * subscriptions given in the options are made on every successful connect;
 * MQTT_IN_CONNECTED is queued only once all of them are acknowledged, and
 * carries the broker's "session present" flag.
 *
 * Every socket this process opens to the broker gets TCP_NODELAY and
 * FD_CLOEXEC once the connection is up (net.h).
 *
 * Paho MQTT C 1.3.12 quirks this relies on or works around: callbacks run on
 * Paho's threads, so everything is copied under a mutex; maxBufferedMessages
 * applies even while connected, so it is set far above any real backlog;
 * the TLS schemes need the TLS build of Paho, paho-mqtt3as, which mqlock_io
 * links (paho-mqtt3a refuses such a URI at mqtt_new()).  Paho's threads wait
 * up to PAHO_POLL_MS in each socket poll: a publish held back by the
 * broker's receive maximum goes out at the next one, and with more than one
 * client in a process, connecting a second one waits one out.
 */
#ifndef MQLOCK_IO_MQTT_H
#define MQLOCK_IO_MQTT_H

#include <stddef.h>
#include <stdint.h>

struct mqtt;

/* The longest wait of Paho's threads in one socket poll (1.3.12: 1 s). */
#define PAHO_POLL_MS 1000

/* A broker URI scheme: what it starts with and how it connects. */
struct mqtt_scheme {
	const char *prefix; /* "tcp://" */
	int tls;            /* TLS: the server certificate is checked */
	int websocket;      /* MQTT over WebSocket */
};

/*
 * mqtt_scheme(uri): the scheme uri starts with, or NULL when Paho speaks
 * none such.  The one list of schemes mqlockd and mqlock accept, and what
 * decides whether a connection uses TLS.
 */
const struct mqtt_scheme *mqtt_scheme(const char *uri);

/*
 * mqtt_scheme_list(buf, size, tls_only): "tcp://, mqtt://, ... or wss://",
 * every accepted scheme (with tls_only, every TLS one) in words, for help
 * and error texts.  Truncated to fit.
 */
void mqtt_scheme_list(char *buf, size_t size, int tls_only);

struct mqtt_sub {
	const char *filter;
	int qos;
	int no_local;            /* MQTT 5 No Local */
	int retain_handling;     /* 0 send retained, 1 only if new, 2 never */
	int retain_as_published; /* MQTT 5: keep the publisher's retain flag */
};

struct mqtt_opts {
	const char *uri;         /* scheme://host:port, see mqtt_scheme() */
	const char *client_id;   /* required */
	const char *username;    /* NULL: none */
	const char *password;    /* NULL: none */
	int keepalive;           /* seconds, >= 1 */
	int clean_start;         /* 1: new session each connect */
	uint32_t session_expiry; /* seconds; 0 ends the session on disconnect */
	const struct mqtt_sub *subs; /* made on every connect */
	size_t nsubs;
	size_t inbound_max;  /* FIFO bound; 0 = 65536 */
	int connect_timeout; /* seconds; 0 = 5 */
	/* TLS files, for a scheme with tls set; NULL = none. */
	const char *cafile;
	const char *certfile;
	const char *keyfile;
};

enum mqtt_in_kind {
	MQTT_IN_MESSAGE,
	MQTT_IN_CONNECTED,      /* subscriptions in place */
	MQTT_IN_LOST,           /* connection gone after CONNECTED, once */
	MQTT_IN_CONNECT_FAILED, /* this connect attempt failed */
	MQTT_IN_OVERFLOW,       /* messages were dropped: the FIFO was full */
	MQTT_IN_DRAINED /* in flight fell to the mark: mqtt_in_flight() */
};

struct mqtt_in {
	enum mqtt_in_kind kind;
	/* MQTT_IN_MESSAGE: */
	char *topic;   /* NUL-terminated */
	void *payload; /* len bytes, followed by one NUL not counted */
	size_t len;
	int qos;
	int retained;
	char *resp_topic; /* MQTT 5 Response Topic, or NULL */
	void *corr;       /* Correlation Data, or NULL */
	size_t corr_len;
	/* MQTT_IN_CONNECTED: */
	int session_present;
	/*
	 * The broker's Receive Maximum: QoS 1 publishes it takes from us
	 * unacknowledged.  Past it Paho holds further publishes back until its
	 * next socket poll (PAHO_POLL_MS).  65535 when the broker names none.
	 */
	unsigned receive_max;
	/* MQTT_IN_CONNECT_FAILED / MQTT_IN_LOST: */
	int code;         /* Paho or MQTT reason code, 0 if unknown */
	char reason[128]; /* readable cause */
	/* MQTT_IN_OVERFLOW: */
	size_t dropped;
};

/* Publish options beyond topic, payload, QoS and retain.  NULL = none. */
struct mqtt_pub_props {
	const char *resp_topic;
	const void *corr;
	size_t corr_len;
};

/*
 * mqtt_new(opts): create a client (MQTT 5) without connecting.  Strings in
 * opts are copied.  Returns NULL and logs on failure.
 */
struct mqtt *mqtt_new(const struct mqtt_opts *opts);

/* mqtt_free(m): disconnect if connected, drop queued items, free.  NULL ok. */
void mqtt_free(struct mqtt *m);

/*
 * mqtt_set_will(m, topic, payload, len, retain): the Last Will (QoS 1) used
 * by the next mqtt_connect().  topic NULL removes it.  Copies its arguments.
 * Returns 0, or -1 on allocation failure.
 */
int mqtt_set_will(struct mqtt *m, const char *topic, const void *payload,
    size_t len, int retain);

/*
 * mqtt_connect(m): start one asynchronous connect attempt.  Its outcome
 * arrives as MQTT_IN_CONNECTED or MQTT_IN_CONNECT_FAILED.  Returns 0, or -1
 * if the attempt could not even be started (logged), including while an
 * attempt is running or the connection is up: call it again only after
 * MQTT_IN_LOST, MQTT_IN_CONNECT_FAILED or mqtt_disconnect().  A refused
 * subscription fails the attempt (the connection is then closed with a
 * normal DISCONNECT).
 */
int mqtt_connect(struct mqtt *m);

/*
 * mqtt_disconnect(m, timeout_ms): a normal DISCONNECT (the will is not
 * published), waiting up to timeout_ms for queued publishes to complete,
 * and returning once Paho reports the DISCONNECT sent (or about two seconds
 * after timeout_ms).  Also abandons a connect attempt in progress.  No
 * MQTT_IN_LOST follows; mqtt_connect() may be called again.
 */
void mqtt_disconnect(struct mqtt *m, int timeout_ms);

/*
 * mqtt_drop(m): like mqtt_disconnect() with no wait, but with MQTT 5 reason
 * 0x04 (disconnect with will message): the broker publishes the will as if
 * this process had died.  For a client that could not say goodbye properly
 * and wants others to learn it is gone.
 */
void mqtt_drop(struct mqtt *m);

/*
 * mqtt_publish(m, topic, payload, len, qos, retain, props): queue one
 * publish.  Returns 0, or -1 (logged) if Paho refused it, e.g. while
 * disconnected (no offline buffering; if the connection turns out to be
 * gone, MQTT_IN_LOST follows unless it was reported already).  The caller
 * keeps ownership of every argument: Paho copies them.
 */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload,
    size_t len, int qos, int retain, const struct mqtt_pub_props *props);

/*
 * mqtt_wait_published(m, timeout_ms): wait until every QoS 1 publish queued
 * so far has completed, or timeout_ms passed.  Returns 0 when all are
 * acknowledged; -1 on timeout, or when a publish completed since the
 * previous call without being acknowledged (the connection dropped first:
 * Paho gives up on unacknowledged publishes when it loses the connection,
 * and the clean-start sessions mqlock uses do not resend them; or the
 * broker refused it with a reason code >= 0x80).  QoS 0 is not tracked.
 */
int mqtt_wait_published(struct mqtt *m, int timeout_ms);

/*
 * mqtt_in_flight(m, wake_below): the number of QoS 1 publishes queued and
 * not yet completed.  When wake_below is above 0 and not above that number,
 * one MQTT_IN_DRAINED item is queued as soon as the number falls below
 * wake_below (a later call moves the mark; 0 removes it), so that a caller
 * pacing its publishes can sleep in poll() instead of spinning.
 */
size_t mqtt_in_flight(struct mqtt *m, size_t wake_below);

/* mqtt_wake_fd(m): readable while items are queued; never read it yourself. */
int mqtt_wake_fd(const struct mqtt *m);

/*
 * mqtt_next(m): pop the oldest item, or NULL if none.  The caller owns the
 * item and frees it with mqtt_in_free().  Only messages count against
 * inbound_max; a message arriving at a full FIFO is dropped, and once there
 * is room again one MQTT_IN_OVERFLOW item (in FIFO order, after the messages
 * that were queued before the drops) reports how many were lost.
 */
struct mqtt_in *mqtt_next(struct mqtt *m);

/* mqtt_in_free(in): free an item from mqtt_next().  NULL ok. */
void mqtt_in_free(struct mqtt_in *in);

/* mqtt_is_connected(m): 1 between MQTT_IN_CONNECTED and the loss, else 0. */
int mqtt_is_connected(const struct mqtt *m);

#endif
