/*
 * sec.h: a world with the production broker profile, for the security
 * tests.
 *
 * s_world_start() builds on the integration harness (harness.h) for its
 * temporary directory, process handling and failure reports, then:
 *
 *   1. runs broker-config/production/setup.sh into <world>/broker (or the
 *      setup.sh named by $MQLOCK_SEC_SETUP, to try the attacks against
 *      another profile), which writes the users and passwords, the ACLs,
 *      the coordinator's client id, a local CA with a server certificate,
 *      and its copy of the production mosquitto.conf;
 *   2. rewrites that copy only where a test must differ from a real host:
 *      the listeners on free 127.0.0.1 ports, persistence in the world's
 *      directory, and "user root" when run as root (as the harness's own
 *      broker config does); anonymous access, password files, ACLs,
 *      plugin, certificates and limits stay exactly as shipped;
 *   3. starts that mosquitto with the file limit the shipped systemd
 *      drop-in sets (mosquitto-limits.conf beside setup.sh; systemd's
 *      default 1024 without one), and an mqlockd connecting over TLS to
 *      the coordinator's listener as the coordinator user with its client
 *      id (ssl://, --cafile, --username, --password-file, --client-id);
 *   4. waits until a monitor sees the coordinator's online status.
 *
 * Test clients are the harness's clients (struct h_client: h_sub(),
 * h_expect(), h_state(), h_forbidden() ...), connected over TLS (Paho,
 * verifying the server certificate against the world's CA) with a role's
 * username and password.  The harness's own world (its anonymous broker and
 * "ctl" client) runs alongside; its ctl only wakes Paho's receive thread
 * while a TLS client connects (see kick() in harness.c).
 *
 * s_teardown() stops mqlockd with SIGTERM and fails the test unless it
 * exits with status 0 (so a memory checker's verdict counts; see
 * MQLOCK_IT_WRAPPER in harness.c), then tears the world down as
 * h_teardown() does.
 */
#ifndef MQLOCK_TESTS_SEC_H
#define MQLOCK_TESTS_SEC_H

#include <stddef.h>

#include "harness.h"

struct s_world;

/* MQTT 5 reason codes the tests look for. */
#define S_RC_NO_SUBSCRIBERS 0x10
#define S_RC_NOT_AUTHORIZED 0x87

/*
 * s_world_start(state, flags): the world described above; flags are extra
 * mqlockd flags separated by single spaces (NULL for none).  Stored in
 * *state for s_teardown().
 */
struct s_world *s_world_start(void **state, const char *flags);

/*
 * s_coord_restart(w): kill mqlockd (SIGKILL) and start it again, as its
 * supervisor would; returns once a monitor sees it online again.
 */
void s_coord_restart(struct s_world *w);

/*
 * s_coord_stop(w): stop mqlockd with SIGTERM (it must exit with status 0);
 * s_teardown() then has nothing left to stop.
 */
void s_coord_stop(struct s_world *w);

/* cmocka teardown for s_world_start(). */
int s_teardown(void **state);

/* Marks the running test as passed: s_teardown() stays quiet. */
void s_pass(struct s_world *w);

/* The harness world underneath (for h_spawn(), h_path() ...). */
struct h_world *s_h(struct s_world *w);

/* The TLS broker URI, "ssl://127.0.0.1:PORT", and its port. */
const char *s_uri(const struct s_world *w);
int s_port(const struct s_world *w);

/*
 * The profile's listeners: TLS (services, monitors, admins), WebSocket
 * (editors) and the coordinator's own TLS listener on loopback.
 */
enum s_listener { S_TLS, S_WS, S_COORD };

/* A listener's URI: ssl://127.0.0.1:PORT or ws://127.0.0.1:PORT. */
const char *s_uri_of(const struct s_world *w, enum s_listener l);
int s_ws_port(const struct s_world *w);
int s_coord_port(const struct s_world *w);

/*
 * 1 for a profile of the shipped shape (three listeners, a coordinator
 * id); 0 for an older one (one set of users on TLS and WebSocket alike),
 * which s_world_start() also runs, so that each attack can be tried
 * against it (MQLOCK_SEC_SETUP, below).
 */
int s_shipped_shape(const struct s_world *w);

/* The coordinator's client id (DIR/coordinator-id, else "mqlockd"). */
const char *s_coord_id(const struct s_world *w);

/* The broker's pid, and the file limit it was started with. */
long s_broker_pid(const struct s_world *w);
long s_nofile(const struct s_world *w);

/* Path of a file setup.sh wrote ("ca.crt", "passwords/editors" ...). */
const char *s_file(const struct s_world *w, const char *name);

/* The password setup.sh generated for user (a role name). */
const char *s_password(const struct s_world *w, const char *user);

/*
 * The world's monitor: user "monitors", subscribed to every owner message
 * and the coordinator status since before mqlockd started.
 */
struct h_client *s_mon(struct s_world *w);

/*
 * s_epoch(w): the epoch of the latest status message the world's monitor
 * received (the coordinator's current epoch, once it is online).
 */
long long s_epoch(struct s_world *w);

/*
 * s_connect(w, user, id): a connection with client id id to the listener
 * of user's role (editors: WebSocket; coordinator: its own listener;
 * others: TLS), logging in as user (a role name) with its password; clean
 * start, no will, subscribed to nothing; its reply topic (h_reply_topic())
 * is replies/<id>/r.  Fails the test if the broker refuses.  Owned by the
 * world.  s_connect_at() connects to the listener l instead.
 */
struct h_client *s_connect(struct s_world *w, const char *user, const char *id);
struct h_client *s_connect_at(struct s_world *w, enum s_listener l,
    const char *user, const char *id);

/*
 * s_editor(w, user, id): s_connect(), subscribed to its events and to
 * replies/<id>/#.
 */
struct h_client *s_editor(struct s_world *w, const char *user, const char *id);

/* s_reply(c, key, value): the next reply to c whose member key has value. */
struct h_msg *s_reply(struct h_client *c, const char *key, const char *value);

/*
 * s_try_connect(w, user, password, id, cafile): one connection attempt
 * over TLS; user NULL connects without a username (anonymous), cafile NULL
 * trusts only the system's CAs.  Returns as h_client_try() does: 0 when
 * the broker accepted it (the connection is closed again at once), the
 * CONNACK reason code (>= 0x80) when the broker refused it, or -1 when it
 * failed before any CONNACK (TLS handshake, socket).
 */
int s_try_connect(struct s_world *w, const char *user, const char *password,
    const char *id, const char *cafile);

/* s_try_connect() on the listener l (cafile is ignored for WebSocket). */
int s_try_at(struct s_world *w, enum s_listener l, const char *user,
    const char *password, const char *id, const char *cafile);

/*
 * s_request(c, id, lock, op, session, extra, corr): as h_request(), on the
 * topic bound to the sender, P/<lock>/request/<id>, with "client":id; id
 * must be c's client id for the broker to let it through.
 */
void s_request(struct h_client *c, const char *id, const char *lock,
    const char *op, const char *session, const char *extra, const char *corr);

/*
 * s_pub(c, topic, payload, retained, resp): publish a string at QoS 1 and
 * wait for the PUBACK; resp non-NULL adds it as MQTT 5 Response Topic (with
 * some correlation data).  Returns the PUBACK's reason code: 0, 0x10 (no
 * subscribers) or a refusal such as 0x87.
 */
int s_pub(struct h_client *c, const char *topic, const char *payload,
    int retained, const char *resp);

/*
 * s_holder(w, id, user, session, conn, topic): a mosquitto_sub process over
 * TLS, logging in as user with client id id, MQTT 5, clean start, a QoS 1
 * will on topic with payload {"session":session,"conn":conn}, subscribed to
 * its own events topic and the coordinator status.  Returns once the
 * retained status reached it (so its subscriptions are in place).  Kill it
 * with h_proc_kill(p, SIGKILL) to fire its will.  Owned by the world.
 */
struct h_proc *s_holder(struct s_world *w, const char *user, const char *id,
    const char *session, long long conn, const char *topic);

/*
 * s_hold(w, user, id, lock, session, conn, token): client id holds lock
 * through a connection that carries the will a page's connection does
 * ({"session":session,"conn":conn} on its own will topic).  The
 * harness's clients carry no will, so the bound acquire goes out on one
 * of them (user's listener, reply asked, granted or the test fails),
 * which then ends with a normal DISCONNECT; s_holder() then connects
 * with the same client id and the will.  *token (when not NULL) is the
 * granted token.  Kill the returned process with SIGKILL to fire the will.
 * user must be a role of the TLS listener (services, monitors, admins).
 */
struct h_proc *s_hold(struct s_world *w, const char *user, const char *id,
    const char *lock, const char *session, long long conn, long long *token);

/* P/_clients/<id>/will, in an h_fmt() buffer. */
const char *s_will(const char *id);

/*
 * s_send(c, topic, body, corr): publish body (a string) on topic at QoS 1
 * with the MQTT 5 Response Topic h_reply_topic(c) and correlation data
 * corr (no reply asked when corr is NULL); fails the test unless the
 * broker accepts it.  For requests whose payload says something other than
 * s_request() writes.
 */
void s_send(struct h_client *c, const char *topic, const char *body,
    const char *corr);

/*
 * What connection i of s_burst() does: connect with client id id and
 * publish body on topic (not retained, no reply asked).  Fills the three
 * buffers (sizes S_BURST_ID, S_BURST_TOPIC, S_BURST_BODY).
 */
#define S_BURST_ID 160
#define S_BURST_TOPIC 512
#define S_BURST_BODY 4096
typedef void s_burst_fn(int i, char *id, char *topic, char *body, void *arg);

/*
 * s_burst(w, user, n, fn, arg): n short-lived connections of user's role
 * (on its listener, as s_connect()), a few at a time: each connects with
 * clean start and no will, publishes one message at QoS 1, waits for the
 * PUBACK and sends a normal DISCONNECT, so the broker publishes no will.
 * Fails the test if a connection or a publish is refused or gets no
 * answer.  Returns the time it took in ms.
 */
long long s_burst(struct s_world *w, const char *user, int n, s_burst_fn *fn,
    void *arg);

#endif
