/*
 * test_sec_broker.c: what the production broker itself enforces
 * (broker-config/production: listeners with their own password files and
 * ACLs, the mqlock_auth plugin, the bounds), each as an attack by a
 * logged-in user and what it must not achieve.  topics.md, "Security
 * model", cites each test.
 *
 * Every test also runs against an older profile (MQLOCK_SEC_SETUP=<its
 * setup.sh>, see sec.h), where each of them fails: that is how they were
 * shown to test something.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "sec.h"
#include "tutil.h"

#define FLAGS "--grace 1 --idle-timeout 600 --idle-warning 60"
#define STATUS H_PREFIX "/_coordinator/status"
#define S_RC_PACKET_TOO_LARGE 0x95

/*
 * The broker's resident memory must stay under this during the floods
 * below: memory_limit (256 MiB of heap) plus what it does not count, the
 * TLS and WebSocket libraries' buffers and the process itself.
 */
#define RSS_BOUND_KB (384L * 1024)

/* The request topic a connection with client id id may use. */
static const char *
request_topic(struct s_world *w, const char *lock, const char *id)
{
	if (s_shipped_shape(w))
		return h_fmt("%s/%s/request/%s", H_PREFIX, lock, id);
	return h_fmt("%s/%s/request", H_PREFIX, lock);
}

/* The coordinator answers a request from a new client of user's. */
static void
served_as(struct s_world *w, const char *user, const char *id)
{
	struct h_client *c = s_connect(w, user, id);
	const char *session = h_session();

	h_sub(c, h_fmt("replies/%s/#", id));
	if (s_shipped_shape(w))
		s_request(c, id, h_fmt("lock-%s", id), "acquire", session, NULL,
		    "c");
	else
		h_request(c, h_fmt("lock-%s", id), "acquire", id, session, NULL,
		    "c");
	h_expect(c, h_reply_topic(c), H_WAIT_MS, "result", "granted");
	h_disconnect(c);
}

static void
served(struct s_world *w, const char *id)
{
	served_as(w, "services", id);
}

/* The coordinator's status stayed online with the epoch it started with. */
static void
still_online(struct s_world *w, long long epoch, int ms)
{
	h_expect_none(s_mon(w), STATUS, ms, "state", "offline");
	h_expect_none(s_mon(w), STATUS, 0, H_ANY);
	assert_int_equal(h_coord_epoch(s_h(w)), epoch);
}

/*
 * The editors' password, which every browser page holds, works on the
 * WebSocket listener behind the proxy and nowhere else; each account works
 * only on its own listener.
 */
static void
test_editors_password_only_on_websocket(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	char ca[4096];
	int rc;

	snprintf(ca, sizeof(ca), "%s", s_file(w, "ca.crt"));
	/* Control: on the WebSocket listener it does work. */
	assert_int_equal(s_try_at(w, S_WS, "editors", s_password(w, "editors"),
			     "page-1", NULL),
	    0);
	rc = s_try_at(w, S_TLS, "editors", s_password(w, "editors"), "page-2",
	    ca);
	print_message("editors over TLS: %d\n", rc);
	assert_true(rc >= 0x80);
	rc = s_try_at(w, S_COORD, "editors", s_password(w, "editors"), "page-3",
	    ca);
	print_message("editors on the coordinator's listener: %d\n", rc);
	assert_true(rc >= 0x80);
	/* The others' passwords are not valid on the WebSocket listener. */
	static const char *const tls_users[] = {"services", "monitors",
	    "admins"};
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(s_try_at(w, S_TLS, tls_users[i],
				     s_password(w, tls_users[i]),
				     h_fmt("ok-%zu", i), ca),
		    0);
		rc = s_try_at(w, S_WS, tls_users[i],
		    s_password(w, tls_users[i]), h_fmt("ws-%zu", i), NULL);
		assert_true(rc >= 0x80);
		rc = s_try_at(w, S_COORD, tls_users[i],
		    s_password(w, tls_users[i]), h_fmt("co-%zu", i), ca);
		assert_true(rc >= 0x80);
	}
	/* Nor the coordinator's, even with its own client id. */
	rc = s_try_at(w, S_TLS, "coordinator", s_password(w, "coordinator"),
	    s_coord_id(w), ca);
	assert_true(rc >= 0x80);
	rc = s_try_at(w, S_WS, "coordinator", s_password(w, "coordinator"),
	    s_coord_id(w), NULL);
	assert_true(rc >= 0x80);
	s_pass(w);
}

/*
 * Nobody takes over the coordinator's connection: its client id is
 * refused on every other account and every listener, and the coordinator's
 * account is refused with any other id.  The coordinator stays online
 * through it all, in the same epoch, and keeps serving.
 */
static void
test_coordinator_id_cannot_be_taken(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	long long epoch = h_coord_epoch(s_h(w));
	char ca[4096], id[256];
	static const char *const users[] = {"editors", "services", "monitors",
	    "admins"};
	int rc;

	snprintf(ca, sizeof(ca), "%s", s_file(w, "ca.crt"));
	snprintf(id, sizeof(id), "%s", s_coord_id(w));
	for (size_t i = 0; i < 4; i++) {
		for (int l = S_TLS; l <= S_COORD; l++) {
			rc = s_try_at(w, (enum s_listener)l, users[i],
			    s_password(w, users[i]), id, ca);
			print_message(
			    "%s on listener %d with the coordinator's "
			    "id: %d\n",
			    users[i], l, rc);
			assert_true(rc != 0);
		}
	}
	/* The coordinator's own account with another id. */
	rc = s_try_at(w, S_COORD, "coordinator", s_password(w, "coordinator"),
	    "not-the-coordinator", ca);
	print_message("the coordinator's account with another id: %d\n", rc);
	assert_true(rc >= 0x80);
	still_online(w, epoch, H_QUIET_MS);
	served(w, "after-takeover-attempts");
	still_online(w, epoch, 0);
	s_pass(w);
}

/*
 * A client id that is not a valid mqlock client id is refused at CONNECT,
 * on every listener: above all "<victim>/mqlock", which would read the
 * victim's replies through the replies/%c/# pattern, and ids that are not
 * valid topic levels.
 */
static void
test_invalid_client_ids_refused(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	static const char *const ids[] = {
	    "victim/mqlock", "victim/", "/victim", "a+b", "+", "#", "$victim",
	    "a\x01"
	    "b",
	    "a\x7f"
	    "b",
	    "a\xc2\x85"
	    "b", /* U+0085 */
	    "a\xc2\x9f"
	    "b", /* U+009F */
	    "a\xef\xbf\xbf"
	    "b", /* U+FFFF */
	    "a\xef\xb7\x90"
	    "b", /* U+FDD0 */
	    "a\xf0\x9f\xbf\xbe"
	    "b", /* U+1FFFE */
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "x", /* 129 bytes */
	};
	char ca[4096];
	int rc;

	snprintf(ca, sizeof(ca), "%s", s_file(w, "ca.crt"));
	/* Controls: the victim and a 128-byte id get in. */
	assert_int_equal(s_try_at(w, S_WS, "editors", s_password(w, "editors"),
			     "victim", NULL),
	    0);
	assert_int_equal(
	    s_try_at(w, S_TLS, "services", s_password(w, "services"),
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		ca),
	    0);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		rc = s_try_at(w, S_WS, "editors", s_password(w, "editors"),
		    ids[i], NULL);
		print_message("id #%zu over WebSocket: %d\n", i, rc);
		assert_true(rc != 0);
		rc = s_try_at(w, S_TLS, "services", s_password(w, "services"),
		    ids[i], ca);
		assert_true(rc != 0);
	}
	s_pass(w);
}

/*
 * A forged event: another client's events topic is written by the
 * coordinator only.  A logged-in user who publishes a retained "granted"
 * there, from its own connection or after taking over the victim's client
 * id, is refused, and the victim, subscribing afresh, finds nothing to act
 * on.  Control: the victim's subscriptions do deliver (a marker on its own
 * sync topic).
 */
static void
test_forged_granted_event_refused(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	const char *forged = "{\"event\":\"granted\",\"lock\":\"doc-1\","
			     "\"token\":9007199254740991,\"now\":1}";
	struct h_client *hostile, *victim;
	char events[256], sync[256];
	int rc;

	snprintf(events, sizeof(events), "%s", h_events("victim"));
	snprintf(sync, sizeof(sync), "%s/_clients/victim/sync", H_PREFIX);
	for (int retained = 0; retained <= 1; retained++) {
		hostile =
		    s_connect(w, "editors", h_fmt("hostile-%d", retained));
		rc = s_pub(hostile, events, forged, retained, NULL);
		print_message("publish on another's events topic: 0x%02x\n",
		    rc);
		assert_true(rc >= 0x80);
		hostile = s_connect(w, "services", h_fmt("svc-%d", retained));
		assert_true(
		    s_pub(hostile, events, forged, retained, NULL) >= 0x80);
	}
	/* With the victim's own client id (ids are public). */
	hostile = s_connect(w, "editors", "victim");
	rc = s_pub(hostile, events, forged, 1, NULL);
	print_message("publish on its events topic as the victim: 0x%02x\n",
	    rc);
	assert_true(rc >= 0x80);

	victim = s_connect(w, "editors", "victim");
	h_sub(victim, events);
	h_sub(victim, sync);
	if (s_shipped_shape(w)) {
		assert_true(
		    s_pub(victim, sync, "{\"marker\":1}", 0, NULL) < 0x80);
		h_expect(victim, sync, H_WAIT_MS, "marker", "#1");
	}
	h_expect_none(victim, events, H_QUIET_MS, H_ANY);
	s_pass(w);
}

/*
 * Parked sessions: no account but the coordinator's may resume a session
 * (MQTT 3.1.1 clean session 0, which also makes it persistent; MQTT 5
 * clean start 0), so a session left behind is of no use to anyone and is
 * discarded after persistent_client_expiration.
 */
static void
test_persistent_sessions_refused(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	static const char *const versions[] = {"mqttv311", "mqttv5"};
	char ca[4096], port[16];
	struct h_proc *p;
	int status;

	snprintf(ca, sizeof(ca), "%s", s_file(w, "ca.crt"));
	snprintf(port, sizeof(port), "%d", s_port(w));
	for (int v = 0; v < 2; v++) {
		for (int clean = 1; clean >= 0; clean--) {
			char *argv[24];
			int n = 0;

			argv[n++] = (char *)MOSQUITTO_SUB_BIN;
			argv[n++] = (char *)"-h";
			argv[n++] = (char *)"127.0.0.1";
			argv[n++] = (char *)"-p";
			argv[n++] = port;
			argv[n++] = (char *)"--cafile";
			argv[n++] = ca;
			argv[n++] = (char *)"-u";
			argv[n++] = (char *)"services";
			argv[n++] = (char *)"-P";
			argv[n++] = (char *)s_password(w, "services");
			argv[n++] = (char *)"-V";
			argv[n++] = (char *)versions[v];
			argv[n++] = (char *)"-i";
			argv[n++] = (char *)(clean ? "parker-clean" : "parker");
			argv[n++] = (char *)"-q";
			argv[n++] = (char *)"1";
			argv[n++] = (char *)"-t";
			argv[n++] = (char *)H_PREFIX "/+/owner";
			argv[n++] = (char *)"-E"; /* exit once subscribed */
			if (!clean)
				argv[n++] = (char *)"-c";
			argv[n] = NULL;
			p = h_spawn(s_h(w), argv,
			    h_fmt("parker-%d-%d.out", v, clean));
			status = h_proc_wait(p, H_WAIT_MS);
			print_message("%s, clean %d: exit %d\n", versions[v],
			    clean, status);
			if (clean)
				assert_int_equal(status, 0); /* control */
			else
				assert_int_not_equal(status, 0);
		}
	}
	s_pass(w);
}

/* Broker memory --------------------------------------------------------- */

struct rss_watch {
	long pid;
	pthread_t thread;
	atomic_int stop;
	atomic_long peak; /* KiB */
};

static void *
rss_main(void *arg)
{
	struct rss_watch *r = arg;

	while (!atomic_load(&r->stop)) {
		long kb = tutil_rss_kb(r->pid);

		if (kb > atomic_load(&r->peak))
			atomic_store(&r->peak, kb);
		tutil_nap_ms(20);
	}
	return NULL;
}

static void
rss_start(struct rss_watch *r, long pid)
{
	r->pid = pid;
	atomic_store(&r->stop, 0);
	atomic_store(&r->peak, tutil_rss_kb(pid));
	assert_int_equal(pthread_create(&r->thread, NULL, rss_main, r), 0);
}

static long
rss_stop(struct rss_watch *r)
{
	atomic_store(&r->stop, 1);
	pthread_join(r->thread, NULL);
	return atomic_load(&r->peak);
}

/*
 * A 5 MB request over WebSocket, where mosquitto 2.0.11 does not apply
 * max_packet_size: message_size_limit drops it (PUBACK 0x95, "packet too
 * large") before any subscriber, mqlockd included, gets it, and the
 * broker's memory stays bounded.  The coordinator keeps serving.
 */
static void
test_websocket_5mb_request_dropped(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	long long epoch = h_coord_epoch(s_h(w));
	size_t len = 5 * 1000 * 1000;
	char *big = malloc(len);
	struct h_client *c;
	struct rss_watch r = {0};
	long before, peak;
	int rc;

	assert_non_null(big);
	memset(big, ' ', len);
	big[0] = '{';
	big[len - 1] = '}';
	before = tutil_rss_kb(s_broker_pid(w));
	rss_start(&r, s_broker_pid(w));
	for (int i = 0; i < 3; i++) {
		c = s_connect_at(w, S_WS, "editors", h_fmt("big-%d", i));
		rc = h_publish_rc(c,
		    request_topic(w, "doc-1", h_fmt("big-%d", i)), big, len, 0,
		    NULL, NULL, 0);
		print_message("5 MB request over WebSocket: PUBACK 0x%02x\n",
		    rc);
		/* 0x00 would mean a subscriber (mqlockd) matched and got it. */
		assert_int_equal(rc, S_RC_PACKET_TOO_LARGE);
		h_disconnect(c);
	}
	peak = rss_stop(&r);
	print_message("broker VmRSS: %ld KiB before, peak %ld KiB\n", before,
	    peak);
	assert_true(peak < RSS_BOUND_KB);
	free(big);
	still_online(w, epoch, 0);
	served(w, "after-5mb");
	s_pass(w);
}

/* A raw MQTT 3.1.1 client over WebSocket that never reads --------------- */

/* One WebSocket binary frame, masked (RFC 6455) with a zero key. */
static int
ws_frame(int fd, const void *data, size_t len)
{
	unsigned char h[14];
	size_t n = 0;

	h[n++] = 0x82;
	if (len < 126)
		h[n++] = (unsigned char)(0x80 | len);
	else if (len < 65536) {
		h[n++] = 0x80 | 126;
		h[n++] = (unsigned char)(len >> 8);
		h[n++] = (unsigned char)len;
	} else {
		h[n++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			h[n++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	memset(h + n, 0, 4); /* the mask key: XOR with zero */
	n += 4;
	if (send(fd, h, n, MSG_NOSIGNAL) != (ssize_t)n)
		return -1;
	for (size_t off = 0; off < len;) {
		ssize_t k =
		    send(fd, (const char *)data + off, len - off, MSG_NOSIGNAL);

		if (k <= 0)
			return -1;
		off += (size_t)k;
	}
	return 0;
}

/* An MQTT string (length and bytes) at p; returns the bytes written. */
static size_t
mqtt_str(unsigned char *p, const char *s)
{
	size_t n = strlen(s);

	p[0] = (unsigned char)(n >> 8);
	p[1] = (unsigned char)n;
	memcpy(p + 2, s, n);
	return n + 2;
}

/* The fixed header of a packet with body length len, at p. */
static size_t
mqtt_fixed(unsigned char *p, unsigned char type, size_t len)
{
	size_t n = 0;

	p[n++] = type;
	do {
		unsigned char b = len % 128;

		len /= 128;
		p[n++] = (unsigned char)(b | (len > 0 ? 0x80 : 0));
	} while (len > 0);
	return n;
}

/* A whole packet: fixed header, then body (blen bytes), in one frame. */
static int
mqtt_send(int fd, unsigned char type, const unsigned char *body, size_t blen)
{
	unsigned char *p = malloc(blen + 8);
	size_t n;
	int rc;

	if (p == NULL)
		return -1;
	n = mqtt_fixed(p, type, blen);
	memcpy(p + n, body, blen);
	rc = ws_frame(fd, p, n + blen);
	free(p);
	return rc;
}

/*
 * Opens a WebSocket connection to 127.0.0.1:port, logs in with MQTT 3.1.1
 * (clean session) as user with client id id, and reads the CONNACK.
 * Returns the socket, or -1 if anything failed or the broker refused.
 */
static int
ws_mqtt_open(int port, const char *user, const char *password, const char *id)
{
	struct sockaddr_in a = {0};
	unsigned char body[1024], buf[1024];
	struct timeval tv = {10, 0};
	char req[512];
	size_t n = 0, got = 0;
	ssize_t k;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1)
		goto err;
	snprintf(req, sizeof(req),
	    "GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
	    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
	    port);
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		goto err;
	while (got < 4 || memcmp(buf + got - 4, "\r\n\r\n", 4) != 0) {
		if (got == sizeof(buf) || (k = recv(fd, buf + got, 1, 0)) <= 0)
			goto err;
		got++;
	}
	if (strncmp((char *)buf, "HTTP/1.1 101", 12) != 0)
		goto err;
	n += mqtt_str(body + n, "MQTT");
	body[n++] = 4;    /* 3.1.1 */
	body[n++] = 0xc2; /* username, password, clean session */
	body[n++] = 0;
	body[n++] = 60;
	n += mqtt_str(body + n, id);
	n += mqtt_str(body + n, user);
	n += mqtt_str(body + n, password);
	if (mqtt_send(fd, 0x10, body, n) != 0)
		goto err;
	/* Frame header (2) + CONNACK (4): 0x82 0x04 0x20 0x02 0x00 rc. */
	for (got = 0; got < 6; got += (size_t)k)
		if ((k = recv(fd, buf + got, 6 - got, 0)) <= 0)
			goto err;
	if (buf[2] != 0x20 || buf[5] != 0)
		goto err;
	return fd;
err:
	close(fd);
	return -1;
}

#define FLOOD_CONNS 16
#define FLOOD_PAYLOAD 60000
#define FLOOD_BUDGET (1536L * 1024 * 1024) /* bytes in all */

/*
 * A flood of 64 KB payloads over WebSocket by clients that never read:
 * each subscribes to its own sync topic (which the ACL lets it read and
 * write) and publishes 60 KB messages there at QoS 1, so the broker must
 * hold, for it, everything it sends.  1.5 GB in all, from 16 connections,
 * reconnecting when the broker drops them.  The broker's resident memory
 * stays under RSS_BOUND_KB throughout (the queue limits and memory_limit),
 * and afterwards the coordinator still serves.
 */
static void
test_websocket_flood_memory_bounded(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	long long epoch = h_coord_epoch(s_h(w));
	int fds[FLOOD_CONNS];
	unsigned char *body = malloc(FLOOD_PAYLOAD + 512);
	struct rss_watch r = {0};
	long sent = 0, dropped = 0, refused = 0, before, peak, after;
	long long t0 = tutil_mono_ms();
	int next_id = 0;

	assert_non_null(body);
	before = tutil_rss_kb(s_broker_pid(w));
	for (int i = 0; i < FLOOD_CONNS; i++)
		fds[i] = -1;
	rss_start(&r, s_broker_pid(w));
	while (sent < FLOOD_BUDGET && refused < 20 &&
	    tutil_mono_ms() - t0 < 120000) {
		for (int i = 0; i < FLOOD_CONNS && sent < FLOOD_BUDGET; i++) {
			char id[32], topic[128];
			size_t n = 0;

			snprintf(id, sizeof(id), "flood-%d", i);
			/* An older profile let clients write their events. */
			snprintf(topic, sizeof(topic), "%s/_clients/%s/%s",
			    H_PREFIX, id,
			    s_shipped_shape(w) ? "sync" : "events");
			if (fds[i] == -1) {
				fds[i] = ws_mqtt_open(s_ws_port(w), "editors",
				    s_password(w, "editors"), id);
				if (fds[i] == -1) {
					refused++;
					continue;
				}
				/* SUBSCRIBE, packet id 1, QoS 1. */
				body[n++] = 0;
				body[n++] = 1;
				n += mqtt_str(body + n, topic);
				body[n++] = 1;
				if (mqtt_send(fds[i], 0x82, body, n) != 0)
					goto lost;
				next_id++;
				n = 0;
			}
			/* PUBLISH QoS 1 to its own sync topic. */
			n += mqtt_str(body + n, topic);
			body[n++] = (unsigned char)(next_id >> 8);
			body[n++] = (unsigned char)(next_id | 1);
			memset(body + n, 'f', FLOOD_PAYLOAD);
			n += FLOOD_PAYLOAD;
			if (mqtt_send(fds[i], 0x32, body, n) != 0)
				goto lost;
			sent += (long)n;
			if (atomic_load(&r.peak) >= RSS_BOUND_KB)
				goto over; /* no need to go on */
			continue;
lost:
			/* The broker closed it, or stopped reading from it. */
			close(fds[i]);
			fds[i] = -1;
			dropped++;
		}
	}
over:
	for (int i = 0; i < FLOOD_CONNS; i++)
		if (fds[i] != -1)
			close(fds[i]);
	peak = rss_stop(&r);
	after = tutil_rss_kb(s_broker_pid(w));
	print_message("flood: %.1f MB sent in %.1f s over WebSocket, %ld "
		      "connections lost and reopened, %ld refused\n",
	    (double)sent / 1e6, (double)(tutil_mono_ms() - t0) / 1000.0,
	    dropped, refused);
	print_message("broker VmRSS: %ld KiB before, peak %ld KiB, %ld KiB "
		      "after (bound %ld KiB)\n",
	    before, peak, after, RSS_BOUND_KB);
	assert_true(peak < RSS_BOUND_KB);
	/* The attack did happen: most of the budget went out. */
	assert_true(sent >= FLOOD_BUDGET / 2 || peak >= RSS_BOUND_KB);
	free(body);
	/* The coordinator was not cut off meanwhile. */
	still_online(w, epoch, 0);
	served(w, "after-flood");
	s_pass(w);
}

/* Connections ----------------------------------------------------------- */

#define IDLE_PER_LISTENER 1100

/* Raises this process's file limit to its hard limit. */
static void
more_files(long need)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if ((long)rl.rlim_cur < need)
		skip(); /* cannot open that many here */
}

/* A TCP connection to 127.0.0.1:port that sends nothing; -1 on failure. */
static int
idle_conn(int port)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd == -1)
		return -1;
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * 1,100 idle connections on each listener others can reach (TLS and
 * WebSocket), opened and left silent, do not lock the coordinator out:
 * restarted (as after a crash), it gets in on its own listener and
 * serves.  The broker runs with the file limit of the shipped systemd
 * drop-in; its listeners' max_connections add up to less.
 */
static void
test_idle_connections_leave_coordinator_in(void **state)
{
	struct s_world *w = s_world_start(state, FLAGS);
	static int tls[IDLE_PER_LISTENER], ws[IDLE_PER_LISTENER];
	int ntls = 0, nws = 0, failed = 0, closed = 0;
	char c;

	more_files(2 * IDLE_PER_LISTENER + 256);
	print_message("broker file limit: %ld\n", s_nofile(w));
	for (int i = 0; i < IDLE_PER_LISTENER; i++) {
		int a = idle_conn(s_port(w)), b = idle_conn(s_ws_port(w));

		if (a != -1)
			tls[ntls++] = a;
		else
			failed++;
		if (b != -1)
			ws[nws++] = b;
		else
			failed++;
	}
	s_coord_restart(w);
	/* Those the TLS listener closed at once, past its max_connections. */
	for (int i = 0; i < ntls; i++)
		closed += recv(tls[i], &c, 1, MSG_DONTWAIT) == 0;
	print_message("%d idle connections opened, %d failed, %d closed by the "
		      "broker; the coordinator got in\n",
	    ntls + nws, failed, closed);
	/*
	 * A request through the WebSocket listener, which has room left.
	 * (The TLS one stays full for a while even after the idle connections
	 * close: mosquitto 2.0.11 was seen to take more than 30 s to notice
	 * that a client which never began its TLS handshake has gone.)
	 */
	served_as(w, "editors", "after-idle");
	for (int i = 0; i < ntls; i++)
		close(tls[i]);
	for (int i = 0; i < nws; i++)
		close(ws[i]);
	s_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_editors_password_only_on_websocket,
		s_teardown),
	    cmocka_unit_test_teardown(test_coordinator_id_cannot_be_taken,
		s_teardown),
	    cmocka_unit_test_teardown(test_invalid_client_ids_refused,
		s_teardown),
	    cmocka_unit_test_teardown(test_forged_granted_event_refused,
		s_teardown),
	    cmocka_unit_test_teardown(test_persistent_sessions_refused,
		s_teardown),
	    cmocka_unit_test_teardown(test_websocket_5mb_request_dropped,
		s_teardown),
	    cmocka_unit_test_teardown(test_websocket_flood_memory_bounded,
		s_teardown),
	    cmocka_unit_test_teardown(
		test_idle_connections_leave_coordinator_in, s_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
