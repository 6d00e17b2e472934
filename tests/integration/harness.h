/*
 * harness.h: integration test harness for mqlock.
 *
 * Every test gets its own world: a temporary directory, a mosquitto started
 * on a free 127.0.0.1 port with a generated config, and an mqlockd pointed at
 * it (started with the flags the test names).  Test clients are real MQTT 5
 * connections (Paho MQTTAsync) that log every message they receive; h_expect()
 * takes messages out of that log.  Killable clients are separate
 * mosquitto_sub processes that hold a connection with the contract's will.
 *
 * Use it from cmocka tests like this:
 *
 *	static void
 *	test_x(void **state)
 *	{
 *		struct h_world *w = h_world_start(state, "--grace 0.5");
 *		struct h_client *ctl = h_ctl(w);
 *		...
 *		h_pass(w);
 *	}
 *	...
 *	cmocka_unit_test_teardown(test_x, h_teardown),
 *
 * h_teardown() stops every process the world started, prints the broker and
 * coordinator logs unless h_pass() was reached, and removes the directory.
 * Every failing check inside the harness fails the running cmocka test with
 * a message that says what was expected and what arrived.
 */
#ifndef MQLOCK_TESTS_HARNESS_H
#define MQLOCK_TESTS_HARNESS_H

#include <stdarg.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define H_PREFIX "locks"
#define H_WAIT_MS 10000 /* a message that must come */
#define H_SLOW_MS 30000 /* ... when it depends on keepalive scans */
#define H_QUIET_MS 500  /* a bounded check that nothing comes */

/* Matches any message in h_expect() and h_expect_none(). */
#define H_ANY "", ""
/*
 * Matches an empty payload: the owner message of a lock nobody holds or
 * waits for (mqlockd deletes the broker's retained copy).
 */
#define H_EMPTY "@empty", ""
#define H_FREE H_EMPTY

struct h_world;
struct h_client;
struct h_proc;

/* One received message; owned by the client's log until h_teardown(). */
struct h_msg {
	char *topic;
	char *payload; /* the bytes received plus a NUL */
	int len;
	int retained;
	cJSON *json; /* NULL when the payload is not valid JSON */
	char *corr;  /* correlation data plus a NUL, NULL when absent */
	int corr_len;
	long long at_ms; /* wall-clock arrival time */
	int consumed;
	struct h_msg *next;
};

/*
 * h_world_new(state, flags): make the temporary directory and start
 * mosquitto, but not mqlockd.  flags are extra mqlockd flags separated by
 * single spaces (NULL for none), remembered for every h_coord_start().  The
 * world is stored in *state for h_teardown().
 */
struct h_world *h_world_new(void **state, const char *flags);

/* h_world_start(state, flags): h_world_new() followed by h_coord_start(). */
struct h_world *h_world_start(void **state, const char *flags);

/*
 * h_coord_start(w): start mqlockd on the world's broker and database and
 * wait until it publishes an online status newer than any seen before.
 */
void h_coord_start(struct h_world *w);

/*
 * h_coord_stop(w, sig): send sig (SIGTERM or SIGKILL) to mqlockd and wait
 * for it to exit.  Returns its wait status.
 */
int h_coord_stop(struct h_world *w, int sig);

/*
 * h_coord_argv(argv, buf, size, uri, db): the start of an mqlockd command
 * line in argv: the words of $MQLOCK_IT_WRAPPER (at most H_WRAPPER_WORDS,
 * split in buf, size bytes), then mqlockd --broker uri --db db --log-level
 * debug.  Returns the number of words; the caller adds more and the NULL.
 */
#define H_WRAPPER_WORDS 32
int h_coord_argv(char **argv, char *buf, size_t size, const char *uri,
    const char *db);

/* The latest online status seen: its epoch and since fields. */
long long h_coord_epoch(const struct h_world *w);

/* The broker URI ("tcp://127.0.0.1:PORT") and the world's directory. */
const char *h_uri(const struct h_world *w);
const char *h_dir(const struct h_world *w);

/* Marks the running test as passed: h_teardown() stays quiet. */
void h_pass(struct h_world *w);

/* cmocka teardown: stops everything the world started and frees it. */
int h_teardown(void **state);

/*
 * h_client_new(w, id): an MQTT 5 client with client id id, clean start,
 * no will, connected and subscribed to its reply topic (h_reply_topic()).
 * Owned by the world.
 */
struct h_client *h_client_new(struct h_world *w, const char *id);

/*
 * How h_client_try() connects: to uri (NULL: the world's broker), as user
 * with password (user NULL: anonymous), for an ssl:// uri verifying the
 * server certificate against cafile (NULL: only the system's CAs); the
 * client's reply topic is reply (NULL: replies/<id>).
 */
struct h_login {
	const char *uri;
	const char *user;
	const char *password;
	const char *cafile;
	const char *reply;
};

/*
 * h_client_try(w, id, login, c): one MQTT 5 connection attempt with client
 * id id, clean start, no will, subscribed to nothing.  Returns 0 when the
 * broker accepted it, the CONNACK reason code (>= 0x80) when the broker
 * refused it, or -1 when it failed before any CONNACK (socket, TLS
 * handshake).  *c is the client either way (connected only on 0), owned
 * by the world.
 */
int h_client_try(struct h_world *w, const char *id, const struct h_login *login,
    struct h_client **c);

/* h_disconnect(c): a clean DISCONNECT now; c stays the world's. */
void h_disconnect(struct h_client *c);

/*
 * h_ctl(w): the world's own client "ctl", connected before mqlockd starts
 * and subscribed to its reply topic, the coordinator status, every owner
 * message (P/+/owner) and every client's events (P/_clients/+/events); the
 * usual observer and request sender of a test.
 */
struct h_client *h_ctl(struct h_world *w);

/* The topic the client's MQTT 5 requests ask replies on: replies/<id>. */
const char *h_reply_topic(const struct h_client *c);

/*
 * replies/<client>, in an h_fmt() buffer: where mqlockd sends the reply to
 * a request naming client (the only space it may use); h_ctl() reads all.
 */
const char *h_reply_for(const char *client);

/* h_sub(c, filter): subscribe at QoS 1 and wait for the SUBACK. */
void h_sub(struct h_client *c, const char *filter);

/*
 * h_publish(c, topic, data, len, retained, corr): publish at QoS 1 and wait
 * for the PUBACK.  With corr non-NULL the message carries the MQTT 5
 * Response Topic h_reply_topic(c) and Correlation Data corr (strlen bytes).
 */
void h_publish(struct h_client *c, const char *topic, const void *data,
    size_t len, int retained, const char *corr);

/*
 * h_publish5(c, topic, data, len, retained, resp, corr, corr_len): as
 * h_publish() with any Response Topic resp and Correlation Data corr
 * (each left out when NULL).
 */
void h_publish5(struct h_client *c, const char *topic, const void *data,
    size_t len, int retained, const char *resp, const void *corr,
    size_t corr_len);

/*
 * h_publish_rc(c, topic, data, len, retained, resp, corr, corr_len): as
 * h_publish5(), but a broker that refuses the message does not fail the
 * test: returns the PUBACK's reason code, 0, 0x10 (no subscribers) or a
 * refusal (>= 0x80) such as 0x87 (not authorized).
 */
int h_publish_rc(struct h_client *c, const char *topic, const void *data,
    size_t len, int retained, const char *resp, const void *corr,
    size_t corr_len);

/* h_pub(c, topic, text): h_publish() of a string, not retained, no reply. */
void h_pub(struct h_client *c, const char *topic, const char *text);

/*
 * h_request(c, lock, op, client, session, extra, corr): publish
 * {"op":op,"client":client,"session":session,EXTRA} to P/<lock>/request.
 * extra is a JSON fragment of more members ("\"conn\":2") or NULL; with
 * corr, the request asks for a reply on h_reply_for(client) with that
 * correlation data.
 */
void h_request(struct h_client *c, const char *lock, const char *op,
    const char *client, const char *session, const char *extra,
    const char *corr);

/*
 * h_expect(c, topic, ms, key, value, ..., NULL): the first message on topic
 * (exact name) not returned before whose JSON matches every pair, waiting up
 * to ms.  A key is a member name, with dots for nested members and
 * array indexes ("owner.client", "queue.0.user"); a value is a string the
 * member must equal, or '#' followed by JSON text the member must equal ("#17",
 * "#null", "#false"). A key "" matches anything.  Fails the test, listing what
 * arrived on topic, when nothing matches in time.  The message is marked
 * consumed.
 */
#define h_expect(c, topic, ms, ...)                              \
	h_expect_(__FILE__, __LINE__, c, topic, ms, __VA_ARGS__, \
	    (const char *)NULL)
struct h_msg *h_expect_(const char *file, int line, struct h_client *c,
    const char *topic, int ms, ...);

/*
 * h_state(c, topic, ms, key, value, ..., NULL): h_expect() for topics that
 * carry a state, such as owner messages: the matching message and every
 * message before it on topic are consumed, so later calls see only newer
 * states.
 */
#define h_state(c, topic, ms, ...)                              \
	h_state_(__FILE__, __LINE__, c, topic, ms, __VA_ARGS__, \
	    (const char *)NULL)
struct h_msg *h_state_(const char *file, int line, struct h_client *c,
    const char *topic, int ms, ...);

/*
 * h_state_fn(c, topic, ms, fn, arg, what): h_state() for a message that
 * fn(message, arg) accepts; what describes it in the failure message.
 */
typedef int h_pred(const struct h_msg *m, void *arg);
#define h_state_fn(c, topic, ms, fn, arg, what) \
	h_state_fn_(__FILE__, __LINE__, c, topic, ms, fn, arg, what)
struct h_msg *h_state_fn_(const char *file, int line, struct h_client *c,
    const char *topic, int ms, h_pred *fn, void *arg, const char *what);

/*
 * h_expect_none(c, topic, ms, key, value, ..., NULL): fails the test if a
 * message not consumed before on topic matches, already or within ms.
 */
#define h_expect_none(c, topic, ms, ...)                              \
	h_expect_none_(__FILE__, __LINE__, c, topic, ms, __VA_ARGS__, \
	    (const char *)NULL)
void h_expect_none_(const char *file, int line, struct h_client *c,
    const char *topic, int ms, ...);

/*
 * h_forbidden(c, ms, bad, arg, what): waits ms (a bounded check that
 * nothing comes), then fails the test if any message c ever received,
 * consumed or not, on any topic, satisfies bad(m, arg); what says what was
 * forbidden.  Returns how many messages c received in all.
 */
#define h_forbidden(c, ms, bad, arg, what) \
	h_forbidden_(__FILE__, __LINE__, c, ms, bad, arg, what)
int h_forbidden_(const char *file, int line, struct h_client *c, int ms,
    h_pred *bad, void *arg, const char *what);

/* How many messages c received on topic so far (NULL: on any topic). */
int h_count(struct h_client *c, const char *topic);

/*
 * h_matches(m, topic, key, value, ..., NULL): 1 if m is on topic (exact
 * name) and its JSON matches every pair as in h_expect(), else 0.
 * h_vmatches() takes the pairs as a va_list.
 */
#define h_matches(m, topic, ...) \
	h_matches_(m, topic, __VA_ARGS__, (const char *)NULL)
int h_matches_(const struct h_msg *m, const char *topic, ...);
int h_vmatches(const struct h_msg *m, const char *topic, va_list ap);

/*
 * h_last(c, topic): the latest message received on topic so far, consumed
 * or not; fails the test when there is none.
 */
#define h_last(c, topic) h_last_(__FILE__, __LINE__, c, topic)
struct h_msg *h_last_(const char *file, int line, struct h_client *c,
    const char *topic);

/* h_drain(c, topic): mark every message received so far on topic consumed. */
void h_drain(struct h_client *c, const char *topic);

/* Values out of a message's JSON; each fails the test when missing/mistyped. */
#define h_int(m, path) h_int_(__FILE__, __LINE__, m, path)
long long h_int_(const char *file, int line, const struct h_msg *m,
    const char *path);
#define h_str(m, path) h_str_(__FILE__, __LINE__, m, path)
const char *h_str_(const char *file, int line, const struct h_msg *m,
    const char *path);
/* The member at path, or NULL. */
cJSON *h_get(const struct h_msg *m, const char *path);

/*
 * h_keys(m, path, "a,b,c"): fails unless the object at path ("" for the
 * top level) has exactly these members.
 */
#define h_keys(m, path, names) h_keys_(__FILE__, __LINE__, m, path, names)
void h_keys_(const char *file, int line, const struct h_msg *m,
    const char *path, const char *names);

/*
 * h_sub_proc(w, id, session, conn, keepalive): a mosquitto_sub process with
 * client id id, MQTT 5, clean start, keepalive seconds, a QoS 1 will on
 * P/_clients/<id>/will with {"session":session,"conn":conn} (no conn member
 * when conn < 0), subscribed to P/_clients/<id>/events.  Returns once its
 * subscription is in place.  Owned by the world.
 */
struct h_proc *h_sub_proc(struct h_world *w, const char *id,
    const char *session, long long conn, int keepalive);

/*
 * What h_sub_spawn() starts: a mosquitto_sub on 127.0.0.1:port (over TLS,
 * verifying the broker against cafile, when cafile is not NULL; logging in
 * as user with password when user is not NULL) with client id id, MQTT 5,
 * clean start, keepalive seconds, a QoS 1 will on will_topic with payload
 * {"session":session,"conn":conn} (no conn member when conn < 0),
 * subscribed at QoS 1 in one SUBSCRIBE to P/_clients/<id>/events and to
 * topic, printing each message as a line "topic payload".
 */
struct h_sub_opts {
	int port;
	const char *cafile;
	const char *user;
	const char *password;
	const char *id;
	int keepalive;
	const char *will_topic;
	const char *session;
	long long conn;
	const char *topic;
};

/*
 * h_sub_spawn(w, o, out): start that mosquitto_sub with its output in the
 * file out in the world's directory; returns at once, before it has
 * subscribed.  Owned by the world.
 */
struct h_proc *h_sub_spawn(struct h_world *w, const struct h_sub_opts *o,
    const char *out);

/*
 * h_spawn(w, argv, out): start argv[0] with stdout and stderr appended to
 * the file out in the world's directory; killed at teardown.
 */
struct h_proc *h_spawn(struct h_world *w, char *const argv[], const char *out);

/* h_proc_kill(p, sig): send sig; for SIGKILL also wait until it is gone. */
void h_proc_kill(struct h_proc *p, int sig);

/*
 * h_proc_wait(p, ms): wait up to ms for p to exit and return its exit
 * status (0-255); fails the test if it is still running or was killed.
 */
int h_proc_wait(struct h_proc *p, int ms);

/*
 * h_fail_at(file, line, fmt, ...): fail the running cmocka test at file
 * and line with the formatted message.  Does not return.
 */
void h_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/* Paths and strings ---------------------------------------------------- */

/*
 * h_fmt(fmt, ...): a formatted string in one of 16 rotating buffers, valid
 * until sixteen more calls; for building topics and values inline.
 */
const char *h_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* P/_clients/<id>/events and P/<lock>/owner, in h_fmt() buffers. */
const char *h_events(const char *id);
const char *h_owner(const char *lock);

/* h_path(w, name): name inside the world's directory (h_fmt() buffer). */
const char *h_path(const struct h_world *w, const char *name);

/* h_wait_file(path, ms): wait for a file a started process writes. */
void h_wait_file(const char *path, int ms);

/*
 * h_filter(): run only the tests whose names match $MQLOCK_IT_FILTER
 * (cmocka's pattern, '*' and '?'), when it is set.  Call before
 * cmocka_run_group_tests().  $MQLOCK_IT_KEEP keeps each world's directory.
 */
void h_filter(void);

/*
 * h_words(s, argv, n, max): split s in place at spaces and put its words
 * in argv from index n on, up to index max (exclusive).  Returns the new
 * count; argv points into s.
 */
int h_words(char *s, char **argv, int n, int max);

/* Wall-clock milliseconds, as the protocol's ms. */
long long h_now_ms(void);

/*
 * A random session string of 32 hex digits, in a buffer of its own that
 * stays valid for the next 4095 calls.
 */
const char *h_session(void);

#endif
