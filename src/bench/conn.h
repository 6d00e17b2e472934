/*
 * conn: one MQTT 5 connection of the benchmark, over Paho MQTTAsync.
 *
 * Unlike io/mqtt.c, messages are not queued for another thread: the handler
 * runs on Paho's thread the moment a message arrives, so a workload can
 * send its next request from there without another hop.  That keeps the
 * client's share of every measured latency as small as Paho allows, and it
 * is the same share whichever coordinator answers.
 *
 * Every connection gets TCP_NODELAY once it is up (io/net.h): without it a
 * QoS 1 exchange waits 40-88 ms on Nagle's algorithm.  Paho's
 * maxBufferedMessages is set far above any window the workloads use.
 *
 * Paho MQTT C 1.3.12 runs all connections of a process on the same two
 * threads, and a connect started while every other connection is idle
 * waits about two seconds on Paho's socket poll: start many connections at
 * once with conn_start() and then conn_wait() for each.
 */
#ifndef MQLOCK_BENCH_CONN_H
#define MQLOCK_BENCH_CONN_H

#include <stddef.h>

struct conn;

/*
 * A message handler.  Runs on Paho's thread; topic and payload are
 * NUL-terminated copies valid during the call only.  It may publish.
 */
typedef void conn_handler(void *arg, const char *topic, const char *payload,
    size_t len);

struct conn_opts {
	const char *uri;       /* tcp://127.0.0.1:PORT */
	const char *client_id; /* required */
	conn_handler *fn;      /* NULL: messages are dropped */
	void *arg;
	const char *will_topic;   /* NULL: no will */
	const char *will_payload; /* QoS 1 */
	int will_retain;
};

/*
 * conn_start(o): create a clean-start MQTT 5 client and start connecting.
 * Strings in o are copied.  Returns the connection (owned by the caller,
 * freed with conn_free()) or NULL (logged).
 */
struct conn *conn_start(const struct conn_opts *o);

/*
 * conn_wait(c, timeout_ms): wait until the connect started by conn_start()
 * succeeded (TCP_NODELAY is then set).  Returns 0, or -1 (logged) when it
 * failed or timed out.
 */
int conn_wait(struct conn *c, int timeout_ms);

/*
 * conn_subscribe(c, filters, n, retained, timeout_ms): subscribe to n
 * filters at QoS 1 and wait for every SUBACK.  retained 0 uses retain
 * handling 2 (no retained copies on subscribe), 1 retain handling 0.
 * Returns 0, or -1 (logged) if one is refused or the wait times out.
 */
int conn_subscribe(struct conn *c, const char *const *filters, size_t n,
    int retained, int timeout_ms);

/*
 * conn_publish(c, topic, payload, len, retain): queue one QoS 1 publish.
 * Callable from a handler.  Returns 0, or -1 if Paho refused it at once;
 * later failures are counted in conn_failures().
 */
int conn_publish(struct conn *c, const char *topic, const void *payload,
    size_t len, int retain);

/* conn_failures(c): publishes refused or lost since the start. */
unsigned long conn_failures(const struct conn *c);

/* conn_up(c): 1 while connected. */
int conn_up(const struct conn *c);

/* conn_id(c): the client id. */
const char *conn_id(const struct conn *c);

/*
 * conn_free(c): a normal DISCONNECT (no will), then free.  NULL is a no-op.
 * Never call it from a handler.
 */
void conn_free(struct conn *c);

#endif
