/*
 * test_mqtt: the Paho adapter against a real mosquitto.
 *
 * Every test gets its own broker on a free 127.0.0.1 port, started in the
 * setup and killed in the teardown (which cmocka runs even when the test
 * fails).  Waits are for events, with generous deadlines.
 *
 * The will test needs a process that dies without DISCONNECT: the binary
 * runs itself again (/proc/self/exe) with --will-child, so the child starts
 * with fresh Paho state instead of a fork of the parent's threads.
 *
 * Most tests use one client that publishes to its own subscriptions: in
 * Paho 1.3.12 a second client in the same process waits out the first one's
 * socket poll (PAHO_POLL_MS) on its way to connect, and that adds up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <MQTTReasonCodes.h>

#include "io/clock.h"
#include "io/log.h"
#include "io/mqtt.h"
#include "tutil.h"

#define DEADLINE_MS 10000 /* for anything that should take milliseconds */

struct broker {
	pid_t pid;
	int port;
	char dir[64];
	char uri[64];
	char conf[128];
	char log[128];
	const char *extra; /* more configuration lines, or NULL */
};

/* Start mosquitto on a free port; 0 once it accepts connections. */
static int
broker_start_once(struct broker *b)
{
	char *argv[] = {(char *)MOSQUITTO_BIN, (char *)"-c", b->conf, NULL};
	FILE *f;

	if ((b->port = tutil_free_port()) == -1)
		return -1;
	snprintf(b->uri, sizeof(b->uri), "tcp://127.0.0.1:%d", b->port);
	if ((f = fopen(b->conf, "w")) == NULL)
		return -1;
	fprintf(f,
	    "listener %d 127.0.0.1\n"
	    "allow_anonymous true\n"
	    "set_tcp_nodelay true\n"
	    "persistence false\n"
	    "log_dest stderr\n"
	    "log_type all\n"
	    "%s",
	    b->port, b->extra != NULL ? b->extra : "");
	if (fclose(f) != 0)
		return -1;
	if ((b->pid = tutil_spawn(argv, b->log, 0)) == -1)
		return -1;
	if (tutil_wait_port(b->port, b->pid, DEADLINE_MS) == 0)
		return 0;
	if (errno == ECHILD) {
		/* e.g. the port was taken meanwhile */
		waitpid(b->pid, NULL, 0);
		b->pid = -1;
	}
	return -1;
}

static void
broker_kill(struct broker *b)
{
	if (b->pid > 0) {
		kill(b->pid, SIGKILL);
		waitpid(b->pid, NULL, 0);
		b->pid = -1;
	}
}

static int
setup(void **state)
{
	struct broker *b = calloc(1, sizeof(*b));
	int i;

	if (b == NULL)
		return -1;
	b->pid = -1;
	snprintf(b->dir, sizeof(b->dir), "/tmp/test_mqtt.XXXXXX");
	if (mkdtemp(b->dir) == NULL) {
		free(b);
		return -1;
	}
	/* mosquitto drops root privileges: let it read its config. */
	chmod(b->dir, 0755);
	snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/mosquitto.log", b->dir);
	*state = b;
	for (i = 0; i < 5; i++) {
		if (broker_start_once(b) == 0)
			return 0;
		broker_kill(b);
	}
	fprintf(stderr, "mosquitto did not start; see %s\n", b->log);
	return -1;
}

/* The broker again, with more configuration lines. */
static int
setup_with(void **state, const char *extra)
{
	struct broker *b;

	if (setup(state) != 0)
		return -1;
	b = *state;
	broker_kill(b);
	b->extra = extra;
	for (int i = 0; i < 5; i++) {
		if (broker_start_once(b) == 0)
			return 0;
		broker_kill(b);
	}
	return -1;
}

/* A broker whose receive maximum for clients is 10. */
static int
setup_rmax(void **state)
{
	return setup_with(state, "max_inflight_messages 10\n");
}

/* A broker with no limit on publishes in flight. */
static int
setup_unlimited(void **state)
{
	return setup_with(state, "max_inflight_messages 0\n");
}

static int
teardown(void **state)
{
	struct broker *b = *state;

	if (b == NULL)
		return 0;
	broker_kill(b);
	unlink(b->conf);
	unlink(b->log);
	rmdir(b->dir);
	free(b);
	return 0;
}

static struct mqtt *
client(const struct broker *b, const char *id, const struct mqtt_sub *subs,
    size_t nsubs, size_t inbound_max)
{
	struct mqtt_opts o;
	struct mqtt *m;

	memset(&o, 0, sizeof(o));
	o.uri = b->uri;
	o.client_id = id;
	o.keepalive = 10;
	o.clean_start = 1;
	o.subs = subs;
	o.nsubs = nsubs;
	o.inbound_max = inbound_max;
	m = mqtt_new(&o);
	assert_non_null(m);
	return m;
}

/* The next item, waiting on the wake fd up to ms; NULL on timeout. */
static struct mqtt_in *
next_within(struct mqtt *m, int ms)
{
	int64_t until = clock_mono_ms() + ms;
	struct mqtt_in *in;

	while ((in = mqtt_next(m)) == NULL) {
		struct pollfd p = {mqtt_wake_fd(m), POLLIN, 0};
		int64_t left = until - clock_mono_ms();

		if (left <= 0)
			return NULL;
		if (poll(&p, 1, (int)left) == -1 && errno != EINTR)
			fail_msg("poll: %s", strerror(errno));
	}
	return in;
}

static struct mqtt_in *
expect(struct mqtt *m, enum mqtt_in_kind kind)
{
	struct mqtt_in *in = next_within(m, DEADLINE_MS);

	if (in == NULL)
		fail_msg("no item of kind %d within %d ms", kind, DEADLINE_MS);
	if (in->kind != kind)
		fail_msg("got kind %d (code %d, %s), want %d", in->kind,
		    in->code, in->reason, kind);
	return in;
}

static void
connect_ok(struct mqtt *m, int *session_present)
{
	struct mqtt_in *in;

	assert_int_equal(mqtt_connect(m), 0);
	in = expect(m, MQTT_IN_CONNECTED);
	if (session_present != NULL)
		*session_present = in->session_present;
	mqtt_in_free(in);
	assert_int_equal(mqtt_is_connected(m), 1);
}

/* Connect m; the broker's receive maximum. */
static unsigned
connect_receive_max(struct mqtt *m)
{
	struct mqtt_in *in;
	unsigned rmax;

	assert_int_equal(mqtt_connect(m), 0);
	in = expect(m, MQTT_IN_CONNECTED);
	rmax = in->receive_max;
	mqtt_in_free(in);
	return rmax;
}

static struct mqtt_in *
expect_message(struct mqtt *m, const char *topic, const char *payload)
{
	struct mqtt_in *in = expect(m, MQTT_IN_MESSAGE);

	assert_string_equal(in->topic, topic);
	if (payload != NULL) {
		assert_int_equal(in->len, strlen(payload));
		assert_memory_equal(in->payload, payload, in->len + 1);
	}
	return in;
}

static int
wake_readable(struct mqtt *m)
{
	struct pollfd p = {mqtt_wake_fd(m), POLLIN, 0};

	return poll(&p, 1, 0) == 1;
}

static void
publish_ok(struct mqtt *m, const char *topic, const void *payload, size_t len,
    int retain, const struct mqtt_pub_props *pp)
{
	assert_int_equal(mqtt_publish(m, topic, payload, len, 1, retain, pp),
	    0);
	assert_int_equal(mqtt_wait_published(m, DEADLINE_MS), 0);
}

static void
test_publish_receive(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"t/a", 1, 0, 0, 0},
	    {"t/b", 1, 0, 0, 0}};
	struct mqtt *m = client(b, "pubsub", subs, 2, 0);
	struct mqtt_in *in;
	int sp = -1;

	connect_ok(m, &sp);
	assert_int_equal(sp, 0);

	publish_ok(m, "t/a", "a\0b", 3, 0, NULL);
	in = expect(m, MQTT_IN_MESSAGE);
	assert_string_equal(in->topic, "t/a");
	assert_int_equal(in->len, 3);
	assert_memory_equal(in->payload, "a\0b", 4); /* and a trailing NUL */
	assert_int_equal(in->qos, 1);
	assert_int_equal(in->retained, 0);
	assert_null(in->resp_topic);
	assert_null(in->corr);
	assert_int_equal(in->corr_len, 0);
	mqtt_in_free(in);

	/* An empty payload still has its NUL. */
	publish_ok(m, "t/b", NULL, 0, 0, NULL);
	in = expect_message(m, "t/b", "");
	assert_non_null(in->payload);
	mqtt_in_free(in);

	/* Drained: the wake fd is quiet until the next item. */
	assert_null(mqtt_next(m));
	assert_false(wake_readable(m));
	publish_ok(m, "t/a", "x", 1, 0, NULL);
	in = expect_message(m, "t/a", "x");
	mqtt_in_free(in);
	assert_false(wake_readable(m));

	/* Not subscribed: nothing arrives ahead of the next message. */
	publish_ok(m, "t/c", "no", 2, 0, NULL);
	publish_ok(m, "t/b", "yes", 3, 0, NULL);
	in = expect_message(m, "t/b", "yes");
	mqtt_in_free(in);

	/* QoS 0 goes through too. */
	assert_int_equal(mqtt_publish(m, "t/a", "q0", 2, 0, 0, NULL), 0);
	in = expect_message(m, "t/a", "q0");
	assert_int_equal(in->qos, 0);
	mqtt_in_free(in);

	mqtt_free(m);
}

/*
 * Many messages while the owner pops concurrently: each arrives once, in
 * order, and the wake fd never leaves the owner asleep with items queued
 * (next_within() waits only on it).
 */
static void
test_many_in_order(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"many/t", 1, 0, 0, 0}};
	struct mqtt *m = client(b, "many", subs, 1, 0);
	struct mqtt_in *in;
	char buf[16];
	int i, got = 0;

	connect_ok(m, NULL);
	for (i = 0; i < 500; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		assert_int_equal(
		    mqtt_publish(m, "many/t", buf, strlen(buf), 1, 0, NULL), 0);
		/*
		 * Keep at most 10 unacknowledged (mosquitto's receive
		 * maximum is 20; past it Paho stalls until its next poll), and
		 * pop as we go, racing Paho's thread.
		 */
		if (i % 10 == 9)
			assert_int_equal(mqtt_wait_published(m, DEADLINE_MS),
			    0);
		while ((in = mqtt_next(m)) != NULL) {
			snprintf(buf, sizeof(buf), "%d", got++);
			assert_int_equal(in->kind, MQTT_IN_MESSAGE);
			assert_string_equal(in->payload, buf);
			mqtt_in_free(in);
		}
	}
	while (got < 500) {
		snprintf(buf, sizeof(buf), "%d", got++);
		in = expect_message(m, "many/t", buf);
		mqtt_in_free(in);
	}
	assert_int_equal(mqtt_wait_published(m, DEADLINE_MS), 0);
	assert_null(mqtt_next(m));
	assert_false(wake_readable(m));
	mqtt_free(m);
}

static void
test_response_topic(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"req/#", 1, 0, 0, 0}};
	const unsigned char corr[] = {0x01, 0x00, 0xff, 'z'};
	struct mqtt_pub_props pp = {"replies/me", corr, sizeof(corr)};
	struct mqtt_pub_props only_topic = {"replies/two", NULL, 0};
	struct mqtt *m = client(b, "rt", subs, 1, 0);
	struct mqtt_in *in;

	connect_ok(m, NULL);

	publish_ok(m, "req/1", "{}", 2, 0, &pp);
	in = expect_message(m, "req/1", "{}");
	assert_non_null(in->resp_topic);
	assert_string_equal(in->resp_topic, "replies/me");
	assert_int_equal(in->corr_len, sizeof(corr));
	assert_memory_equal(in->corr, corr, sizeof(corr));
	mqtt_in_free(in);

	publish_ok(m, "req/2", "{}", 2, 0, &only_topic);
	in = expect_message(m, "req/2", "{}");
	assert_string_equal(in->resp_topic, "replies/two");
	assert_null(in->corr);
	mqtt_in_free(in);

	mqtt_free(m);
}

static void
test_retain_handling(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub never[] = {{"ret/a", 1, 0, 2, 0}};
	const struct mqtt_sub always[] = {{"ret/a", 1, 0, 0, 0}};
	struct mqtt *m = client(b, "ret-pub", NULL, 0, 0);
	struct mqtt_in *in;

	connect_ok(m, NULL);
	publish_ok(m, "ret/a", "R", 1, 1, NULL);
	mqtt_free(m);

	/*
	 * Retain handling 2: the first thing seen is the new message.  The
	 * broker sends retained messages while it handles the SUBSCRIBE,
	 * before it reads our PUBLISH, so "R" would come first.
	 */
	m = client(b, "ret-2", never, 1, 0);
	connect_ok(m, NULL);
	publish_ok(m, "ret/a", "M", 1, 0, NULL);
	in = expect_message(m, "ret/a", "M");
	assert_int_equal(in->retained, 0);
	mqtt_in_free(in);
	mqtt_free(m);

	/* Retain handling 0: the retained message comes, flagged. */
	m = client(b, "ret-0", always, 1, 0);
	connect_ok(m, NULL);
	in = expect_message(m, "ret/a", "R");
	assert_int_equal(in->retained, 1);
	mqtt_in_free(in);
	mqtt_free(m);
}

/*
 * Retain as published: a retained message forwarded live keeps its retain
 * flag only on the subscription that asked for it.
 */
static void
test_retain_as_published(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"rap/keep", 1, 0, 0, 1},
	    {"rap/plain", 1, 0, 0, 0}};
	struct mqtt *m = client(b, "rap", subs, 2, 0);
	struct mqtt_in *in;

	connect_ok(m, NULL);
	publish_ok(m, "rap/keep", "k", 1, 1, NULL);
	in = expect_message(m, "rap/keep", "k");
	assert_int_equal(in->retained, 1);
	mqtt_in_free(in);
	publish_ok(m, "rap/plain", "p", 1, 1, NULL);
	in = expect_message(m, "rap/plain", "p");
	assert_int_equal(in->retained, 0);
	mqtt_in_free(in);
	mqtt_free(m);
}

static void
test_session_present(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"sp/t", 1, 0, 0, 0}};
	struct mqtt_opts o;
	struct mqtt *m;
	int sp = -1;

	memset(&o, 0, sizeof(o));
	o.uri = b->uri;
	o.client_id = "sp-client";
	o.keepalive = 10;
	o.clean_start = 0;
	o.session_expiry = 60;
	o.subs = subs;
	o.nsubs = 1;
	assert_non_null(m = mqtt_new(&o));

	connect_ok(m, &sp);
	assert_int_equal(sp, 0); /* a fresh broker knows no session */
	mqtt_disconnect(m, 1000);
	assert_int_equal(mqtt_is_connected(m), 0);
	connect_ok(m, &sp);
	assert_int_equal(sp, 1);
	mqtt_free(m);

	/* Clean start throws the stored session away. */
	o.clean_start = 1;
	o.session_expiry = 0;
	assert_non_null(m = mqtt_new(&o));
	connect_ok(m, &sp);
	assert_int_equal(sp, 0);
	mqtt_free(m);
}

/* mqtt_disconnect() lets queued publishes complete first. */
static void
test_disconnect_flushes(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"flush/t", 1, 0, 0, 0}};
	struct mqtt *m = client(b, "flush", subs, 1, 0);
	struct mqtt_in *in;
	int i;

	connect_ok(m, NULL);
	for (i = 0; i < 5; i++)
		assert_int_equal(mqtt_publish(m, "flush/t", "x", 1, 1, 0, NULL),
		    0);
	mqtt_disconnect(m, DEADLINE_MS);
	assert_int_equal(mqtt_is_connected(m), 0);
	/* Every one was acknowledged, none given up. */
	assert_int_equal(mqtt_wait_published(m, 0), 0);
	/* A normal disconnect is not a loss; connecting again works. */
	while ((in = mqtt_next(m)) != NULL) {
		assert_int_equal(in->kind, MQTT_IN_MESSAGE);
		mqtt_in_free(in);
	}
	connect_ok(m, NULL);
	mqtt_free(m);
}

/*
 * The broker's receive maximum is reported on connect; publishes in flight
 * are counted, and MQTT_IN_DRAINED comes once when they fall below the
 * mark.  The broker is stopped (SIGSTOP) so that none is acknowledged
 * before the mark is set.
 */
static void
test_in_flight_drained(void **state)
{
	struct broker *b = *state;
	struct mqtt *m = client(b, "drain", NULL, 0, 0);
	struct mqtt_in *in;
	int i;

	assert_int_equal(connect_receive_max(m), 10);
	assert_int_equal(mqtt_in_flight(m, 0), 0);

	assert_int_equal(kill(b->pid, SIGSTOP), 0);
	for (i = 0; i < 8; i++)
		assert_int_equal(mqtt_publish(m, "drain/t", "x", 1, 1, 0, NULL),
		    0);
	/* A QoS 0 publish is not counted. */
	assert_int_equal(mqtt_publish(m, "drain/t", "x", 1, 0, 0, NULL), 0);
	/* A mark above the count is not armed; the next call moves it. */
	assert_int_equal(mqtt_in_flight(m, 9), 8);
	assert_int_equal(mqtt_in_flight(m, 3), 8);
	assert_int_equal(wake_readable(m), 0);
	assert_int_equal(kill(b->pid, SIGCONT), 0);

	in = expect(m, MQTT_IN_DRAINED);
	mqtt_in_free(in);
	assert_true(mqtt_in_flight(m, 0) < 3);
	assert_int_equal(mqtt_wait_published(m, DEADLINE_MS), 0);
	assert_int_equal(mqtt_in_flight(m, 0), 0);
	/* Once only. */
	assert_int_equal(wake_readable(m), 0);
	mqtt_free(m);
}

/* A broker that sets no limit names none: 65535. */
static void
test_receive_max_default(void **state)
{
	struct broker *b = *state;
	struct mqtt *m = client(b, "rmax", NULL, 0, 0);

	assert_int_equal(connect_receive_max(m), 65535);
	mqtt_free(m);
}

/* Run this binary again as a will client; returns its pid once it is
 * connected.  mode: "kill" waits to be killed, "clean" disconnects,
 * "drop" disconnects with the will. */
static pid_t
will_child(const struct broker *b, const char *mode)
{
	char buf[8];
	int fds[2];
	pid_t pid;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/proc/self/exe", "test_mqtt", "--will-child", b->uri,
		    mode, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	do
		n = read(fds[0], buf, sizeof(buf));
	while (n == -1 && errno == EINTR);
	close(fds[0]);
	if (n != 1 || buf[0] != 'r') {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("will child did not connect");
	}
	return pid;
}

static int
will_child_main(const char *uri, const char *mode)
{
	static const char payload[] = "{\"session\":\"0123456789abcdef\","
				      "\"conn\":1}";
	struct mqtt_opts o;
	struct mqtt_in *in;
	struct mqtt *m;
	int64_t until = clock_mono_ms() + DEADLINE_MS;

	memset(&o, 0, sizeof(o));
	o.uri = uri;
	o.client_id = "will-child";
	o.keepalive = 10;
	o.clean_start = 1;
	if ((m = mqtt_new(&o)) == NULL ||
	    mqtt_set_will(m, "will/child", payload, sizeof(payload) - 1, 0) ||
	    mqtt_connect(m) == -1)
		return 1;
	for (;;) {
		struct pollfd p = {mqtt_wake_fd(m), POLLIN, 0};

		if ((in = mqtt_next(m)) != NULL)
			break;
		if (clock_mono_ms() > until)
			return 1;
		poll(&p, 1, 100);
	}
	if (in->kind != MQTT_IN_CONNECTED)
		return 1;
	mqtt_in_free(in);
	if (strcmp(mode, "clean") == 0 || strcmp(mode, "drop") == 0) {
		if (strcmp(mode, "drop") == 0)
			mqtt_drop(m);
		else
			mqtt_disconnect(m, 1000);
		mqtt_free(m);
		if (write(1, "r", 1) != 1)
			return 1;
		return 0;
	}
	if (write(1, "r", 1) != 1)
		return 1;
	for (;;)
		pause();
}

static void
test_will(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"will/child", 1, 0, 0, 0}};
	struct mqtt *obs = client(b, "will-observer", subs, 1, 0);
	struct mqtt_in *in;
	pid_t pid;
	int status;

	connect_ok(obs, NULL);

	/* A normal DISCONNECT publishes no will: the marker comes first. */
	pid = will_child(b, "clean");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	publish_ok(obs, "will/child", "marker", 6, 0, NULL);
	in = expect_message(obs, "will/child", "marker");
	mqtt_in_free(in);

	/* Dropped with reason 0x04: the broker publishes the will. */
	pid = will_child(b, "drop");
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	in = expect_message(obs, "will/child",
	    "{\"session\":\"0123456789abcdef\",\"conn\":1}");
	mqtt_in_free(in);

	/* Killed: the broker publishes the will. */
	pid = will_child(b, "kill");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	in = expect_message(obs, "will/child",
	    "{\"session\":\"0123456789abcdef\",\"conn\":1}");
	assert_int_equal(in->qos, 1);
	assert_int_equal(in->retained, 0);
	mqtt_in_free(in);

	mqtt_free(obs);
}

/* Wait until process pid is stopped (state T in /proc/pid/stat). */
static void
wait_stopped(pid_t pid)
{
	int64_t until = clock_mono_ms() + DEADLINE_MS;

	while (clock_mono_ms() < until) {
		if (tutil_proc_field(pid, 0) == 'T')
			return;
		tutil_nap_ms(5);
	}
	fail_msg("process %d did not stop", (int)pid);
}

static void
test_lost(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"lost/t", 1, 0, 0, 0}};
	struct mqtt *m = client(b, "lost-client", subs, 1, 0);
	struct mqtt_in *in;

	connect_ok(m, NULL);
	/* A publish the stopped broker never acknowledges... */
	kill(b->pid, SIGSTOP);
	wait_stopped(b->pid);
	assert_int_equal(mqtt_publish(m, "lost/t", "x", 1, 1, 0, NULL), 0);
	assert_int_equal(mqtt_wait_published(m, 100), -1);
	broker_kill(b);
	in = expect(m, MQTT_IN_LOST);
	assert_true(strlen(in->reason) > 0);
	mqtt_in_free(in);
	assert_int_equal(mqtt_is_connected(m), 0);
	/* ...is reported as not published, once. */
	assert_int_equal(mqtt_wait_published(m, DEADLINE_MS), -1);
	assert_int_equal(mqtt_wait_published(m, 0), 0);
	assert_int_equal(mqtt_publish(m, "lost/t", "x", 1, 1, 0, NULL), -1);
	assert_int_equal(mqtt_wait_published(m, 0), 0);

	/* Reconnecting to nothing fails; the owner may try again. */
	assert_int_equal(mqtt_connect(m), 0);
	in = expect(m, MQTT_IN_CONNECT_FAILED);
	mqtt_in_free(in);
	mqtt_free(m);
}

/* After a loss: connect again and see a message go round. */
static void
reconnect_works(struct mqtt *m, const char *topic)
{
	struct mqtt_in *in;

	connect_ok(m, NULL);
	publish_ok(m, topic, "again", 5, 0, NULL);
	in = expect_message(m, topic, "again");
	mqtt_in_free(in);
}

/*
 * Another connection takes the client id: mosquitto 2.0.11 closes the old
 * connection (no DISCONNECT reaches Paho), a loss like any other.
 */
static void
test_kicked_by_takeover(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"kick/t", 1, 0, 0, 0}};
	struct mqtt *m = client(b, "kick-me", subs, 1, 0);
	struct mqtt *thief = client(b, "kick-me", NULL, 0, 0);
	struct mqtt_in *in;

	connect_ok(m, NULL);
	connect_ok(thief, NULL);
	in = expect(m, MQTT_IN_LOST);
	assert_true(strlen(in->reason) > 0);
	mqtt_in_free(in);
	assert_int_equal(mqtt_is_connected(m), 0);
	/* Once only, and nothing else. */
	assert_null(next_within(m, 200));
	mqtt_free(thief);
	reconnect_works(m, "kick/t");
	mqtt_free(m);
}

/*
 * A publish on a topic mosquitto refuses as malformed (a C1 control, a
 * non-character) makes the broker drop the connection with a DISCONNECT
 * (reason 0x81), which Paho 1.3.12 reports only through its disconnected
 * callback: MQTT_IN_LOST all the same, each time, and connecting again
 * works.  (Unnoticed, this left mqlockd offline for good.)
 */
static void
test_malformed_publish_is_a_loss(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"poison/#", 1, 0, 0, 0}};
	static const char *const topics[] = {
	    "poison/\xef\xbf\xbf", /* U+FFFF */
	    "poison/\xc2\x85",     /* U+0085 */
	    "poison/\xef\xb7\x90", /* U+FDD0 */
	};
	struct mqtt *m = client(b, "poisoned", subs, 1, 0);
	struct mqtt_in *in;

	connect_ok(m, NULL);
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		assert_int_equal(mqtt_publish(m, topics[i], "x", 1, 1, 0, NULL),
		    0);
		in = expect(m, MQTT_IN_LOST);
		assert_int_equal(in->code, MQTTREASONCODE_MALFORMED_PACKET);
		mqtt_in_free(in);
		/* The poisoned publish counts as not published. */
		assert_int_equal(mqtt_wait_published(m, DEADLINE_MS), -1);
		assert_null(next_within(m, 200));
		reconnect_works(m, "poison/ok");
	}
	mqtt_free(m);
}

/* Start the killed broker again on the same port. */
static void
broker_restart(struct broker *b)
{
	char *argv[] = {(char *)MOSQUITTO_BIN, (char *)"-c", b->conf, NULL};

	if ((b->pid = tutil_spawn(argv, b->log, 0)) == -1 ||
	    tutil_wait_port(b->port, b->pid, DEADLINE_MS) != 0)
		fail_msg("mosquitto did not start again on port %d", b->port);
}

/*
 * The broker dies under an unacknowledged publish: the publish fails first
 * and reports the loss; Paho's own connection-lost call that follows must
 * not fail the connect the owner starts at once.
 */
static void
test_loss_reported_once_before_reconnect(void **state)
{
	struct broker *b = *state;
	struct mqtt *m = client(b, "once", NULL, 0, 0);
	struct mqtt_in *in;

	connect_ok(m, NULL);
	assert_int_equal(kill(b->pid, SIGSTOP), 0);
	wait_stopped(b->pid);
	assert_int_equal(mqtt_publish(m, "once/t", "x", 1, 1, 0, NULL), 0);
	broker_kill(b);
	broker_restart(b);
	in = expect(m, MQTT_IN_LOST);
	mqtt_in_free(in);
	assert_int_equal(mqtt_connect(m), 0);
	in = expect(m, MQTT_IN_CONNECTED);
	mqtt_in_free(in);
	assert_null(next_within(m, 200));
	assert_int_equal(mqtt_is_connected(m), 1);
	mqtt_free(m);
}

static void
test_connect_failed(void **state)
{
	struct broker *b = *state;
	struct broker none = *b;
	struct mqtt *m;
	struct mqtt_in *in;
	int i;

	(void)state;
	snprintf(none.uri, sizeof(none.uri), "tcp://127.0.0.1:%d",
	    tutil_free_port());
	m = client(&none, "nobody-listens", NULL, 0, 0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(mqtt_connect(m), 0);
		in = expect(m, MQTT_IN_CONNECT_FAILED);
		assert_int_not_equal(in->code, 0);
		assert_true(strlen(in->reason) > 0);
		mqtt_in_free(in);
		assert_int_equal(mqtt_is_connected(m), 0);
	}
	assert_null(mqtt_next(m));
	assert_false(wake_readable(m));
	mqtt_free(m);
}

static void
test_connect_twice_refused(void **state)
{
	struct broker *b = *state;
	struct mqtt *m = client(b, "twice", NULL, 0, 0);

	connect_ok(m, NULL);
	assert_int_equal(mqtt_connect(m), -1);
	assert_int_equal(mqtt_is_connected(m), 1);
	mqtt_free(m);
}

/* A subscription the broker will not take fails the connect attempt. */
static void
test_subscribe_refused(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"ok/t", 1, 0, 0, 0},
	    {"a/#/b", 1, 0, 0, 0}};
	struct mqtt *m = client(b, "badsub", subs, 2, 0);
	struct mqtt_in *in;

	assert_int_equal(mqtt_connect(m), 0);
	in = expect(m, MQTT_IN_CONNECT_FAILED);
	assert_true(strlen(in->reason) > 0);
	mqtt_in_free(in);
	assert_int_equal(mqtt_is_connected(m), 0);
	assert_null(mqtt_next(m));
	mqtt_free(m);
}

static void
test_overflow(void **state)
{
	struct broker *b = *state;
	const struct mqtt_sub subs[] = {{"ovf/t", 1, 0, 0, 0}};
	struct mqtt *m = client(b, "ovf", subs, 1, 3);
	struct mqtt_in *in;
	char buf[8];
	int i;

	connect_ok(m, NULL);
	/*
	 * The client sends to itself: mosquitto writes each copy to us
	 * before the PUBACK, and Paho reports both in order, so once every
	 * publish is acknowledged all ten copies have been queued or
	 * dropped.
	 */
	for (i = 0; i < 10; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		assert_int_equal(
		    mqtt_publish(m, "ovf/t", buf, strlen(buf), 1, 0, NULL), 0);
	}
	assert_int_equal(mqtt_wait_published(m, DEADLINE_MS), 0);
	for (i = 0; i < 3; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		in = expect_message(m, "ovf/t", buf);
		mqtt_in_free(in);
	}
	in = expect(m, MQTT_IN_OVERFLOW);
	assert_int_equal(in->dropped, 7);
	mqtt_in_free(in);
	assert_null(mqtt_next(m));
	assert_false(wake_readable(m));

	/* Room again: messages flow. */
	publish_ok(m, "ovf/t", "after", 5, 0, NULL);
	in = expect_message(m, "ovf/t", "after");
	mqtt_in_free(in);
	mqtt_free(m);
}

/* One table of schemes, and it decides TLS. */
static void
test_schemes(void **state)
{
	static const struct {
		const char *uri;
		int known, tls, websocket;
	} cases[] = {
	    {"tcp://h:1883", 1, 0, 0},
	    {"mqtt://h:1883", 1, 0, 0},
	    {"ssl://h:8883", 1, 1, 0},
	    {"mqtts://h:8883", 1, 1, 0},
	    {"ws://h:8080", 1, 0, 1},
	    {"wss://h:443/mqtt", 1, 1, 1},
	    {"http://h", 0, 0, 0},
	    {"unix:///run/m", 0, 0, 0},
	    {"TCP://h:1883", 0, 0, 0},
	    {"tcp:/h", 0, 0, 0},
	    {"", 0, 0, 0},
	};
	char list[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct mqtt_scheme *s = mqtt_scheme(cases[i].uri);

		if ((s != NULL) != cases[i].known)
			fail_msg("%s: known %d", cases[i].uri, s != NULL);
		if (s == NULL)
			continue;
		assert_int_equal(s->tls, cases[i].tls);
		assert_int_equal(s->websocket, cases[i].websocket);
	}
	mqtt_scheme_list(list, sizeof(list), 0);
	assert_string_equal(list,
	    "tcp://, mqtt://, ssl://, mqtts://, ws:// or wss://");
	mqtt_scheme_list(list, sizeof(list), 1);
	assert_string_equal(list, "ssl://, mqtts:// or wss://");
	mqtt_scheme_list(list, 8, 0);
	assert_string_equal(list, "tcp://,");
}

/* A /proc/self/fd entry as a descriptor, or -1. */
static int
fd_of(const char *name)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(name, &end, 10);
	if (errno != 0 || end == name || *end != '\0' || v < 0 || v > INT_MAX)
		return -1;
	return (int)v;
}

/* TCP_NODELAY and FD_CLOEXEC on our socket to the broker. */
static void
test_nodelay(void **state)
{
	struct broker *b = *state;
	struct mqtt *m = client(b, "nodelay", NULL, 0, 0);
	struct dirent *de;
	DIR *dir;
	int found = 0;

	connect_ok(m, NULL);
	assert_non_null(dir = opendir("/proc/self/fd"));
	while ((de = readdir(dir)) != NULL) {
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		int fd = fd_of(de->d_name), on = 0;
		socklen_t olen = sizeof(on);

		if (fd < 0 ||
		    getpeername(fd, (struct sockaddr *)&peer, &len) == -1 ||
		    peer.sin_family != AF_INET ||
		    ntohs(peer.sin_port) != b->port)
			continue;
		assert_int_equal(
		    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &olen), 0);
		assert_int_not_equal(on, 0);
		/* Not inherited by children (mqlock's COMMAND). */
		assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
		found++;
	}
	closedir(dir);
	assert_int_equal(found, 1);
	mqtt_free(m);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schemes),
	    cmocka_unit_test_setup_teardown(test_publish_receive, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_many_in_order, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_response_topic, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_retain_handling, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_retain_as_published, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_session_present, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_disconnect_flushes, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_will, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lost, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kicked_by_takeover, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_malformed_publish_is_a_loss,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_loss_reported_once_before_reconnect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_connect_failed, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_connect_twice_refused, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_subscribe_refused, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_nodelay, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_in_flight_drained, setup_rmax,
		teardown),
	    cmocka_unit_test_setup_teardown(test_receive_max_default,
		setup_unlimited, teardown),
	};

	if (argc == 4 && strcmp(argv[1], "--will-child") == 0)
		return will_child_main(argv[2], argv[3]);
	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
