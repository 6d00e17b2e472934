/*
 * test_it_cli.c: the mqlock command against a real mqlockd:
 *
 *	mqlock --broker URI acquire LOCK [--wait S] [--user NAME]
 *	    [--ticket-file F] -- CMD...
 *	mqlock --broker URI status [LOCK]
 *
 * URI is the world's tcp:// broker, or ws:// and wss:// listeners of a
 * broker of the test's own.  mqlock sends its requests on the topic bound
 * to its client id (P/<lock>/request/<id>), asks about one lock with a
 * query (MQTT 5 request/response), and believes only events that are not
 * retained.
 *
 * acquire runs CMD while holding the lock with MQLOCK_TOKEN set to the
 * lock's token, passes CMD's exit status through, and exits 75 when the
 * wait times out or a try-lock (--wait 0) finds the lock busy, 70 when the
 * lock was lost, or cannot be confirmed to have stayed its own when CMD
 * ended.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "tutil.h"

#define FLAGS "--grace 0.5 --idle-timeout 600 --idle-warning 60"
#define EX_TEMPFAIL 75
#define EX_SOFTWARE 70

/*
 * Runs "sh -c script" under mqlock acquire lock with the options opts
 * (space-separated, may be "").  In script, @ stands for the world's
 * directory.
 */
static struct h_proc *
cli_acquire(struct h_world *w, const char *lock, const char *opts,
    const char *script, const char *out)
{
	static char optbuf[256], scriptbuf[1024];
	char *argv[32], *p;
	size_t n = 0, k = 0;
	const char *s;

	argv[n++] = (char *)MQLOCK_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = (char *)(uintptr_t)h_uri(w);
	argv[n++] = (char *)"acquire";
	argv[n++] = (char *)(uintptr_t)lock;
	snprintf(optbuf, sizeof(optbuf), "%s", opts);
	for (p = optbuf; *p != '\0';) {
		if (*p == ' ') {
			*p++ = '\0';
			continue;
		}
		argv[n++] = p;
		while (*p != '\0' && *p != ' ')
			p++;
	}
	for (s = script; *s != '\0'; s++) {
		const char *add = *s == '@' ? h_dir(w) : NULL;
		size_t len = add != NULL ? strlen(add) : 1;

		assert_true(k + len < sizeof(scriptbuf));
		memcpy(scriptbuf + k, add != NULL ? add : s, len);
		k += len;
	}
	scriptbuf[k] = '\0';
	argv[n++] = (char *)"--";
	argv[n++] = (char *)"sh";
	argv[n++] = (char *)"-c";
	argv[n++] = scriptbuf;
	argv[n] = NULL;
	return h_spawn(w, argv, out);
}

static char *
slurp(const char *path)
{
	char *buf = tutil_slurp(path, NULL);

	assert_non_null(buf);
	return buf;
}

static void
touch(const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fclose(f);
}

static void
test_acquire_runs_command(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	struct h_proc *p;
	struct h_msg *m;
	char *tok, *end;
	long long t;

	h_sub(ctl, H_PREFIX "/doc/request/#");
	p = cli_acquire(w, "doc", "--user Carol --client-id cli-1",
	    "printf %s \"$MQLOCK_TOKEN\" > @/token.tmp && "
	    "mv @/token.tmp @/token; "
	    "while [ ! -e @/go ]; do sleep 0.05; done; exit 3",
	    "mqlock-1.out");
	/* On the topic bound to its own client id. */
	h_expect(ctl, H_PREFIX "/doc/request/cli-1", H_WAIT_MS, "op", "acquire",
	    "client", "cli-1");

	/* While the command runs the lock is held under its token. */
	h_wait_file(h_path(w, "token"), H_WAIT_MS);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.user", "Carol");
	assert_true(cJSON_IsTrue(h_get(m, "owner.connected")));
	tok = slurp(h_path(w, "token"));
	t = strtoll(tok, &end, 10);
	if (end == tok || *end != '\0')
		fail_msg("MQLOCK_TOKEN is \"%s\", not a token", tok);
	free(tok);
	assert_int_equal(t, h_int(m, "token"));

	/* Its exit status comes through, and the lock is free again. */
	touch(h_path(w, "go"));
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), 3);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_pass(w);
}

static void
test_busy_and_wait_timeout_exit_75(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session();
	struct h_proc *p;

	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, NULL);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");

	/* Try-lock. */
	p = cli_acquire(w, "doc", "--wait 0", "touch @/ran0", "mqlock-1.out");
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), EX_TEMPFAIL);
	assert_int_not_equal(access(h_path(w, "ran0"), F_OK), 0);

	/* A short wait: queued behind A, then gone again. */
	p = cli_acquire(w, "doc", "--wait 2", "touch @/ran1", "mqlock-2.out");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "waiting", "#1");
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), EX_TEMPFAIL);
	assert_int_not_equal(access(h_path(w, "ran1"), F_OK), 0);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a",
	    "waiting", "#0");

	/* A still holds it, with nobody queued: its release frees it. */
	h_request(ctl, "doc", "release", "cl-a", sa, NULL, NULL);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_pass(w);
}

static void
test_waits_then_runs(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session();
	struct h_proc *p;
	struct h_msg *m;
	long long ta, t;
	char *tok;

	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, NULL);
	ta = h_int(
	    h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted"),
	    "token");
	p = cli_acquire(w, "doc", "--wait 30 --user Wendy",
	    "printf %s \"$MQLOCK_TOKEN\" > @/token", "mqlock-1.out");
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "waiting", "#1");
	assert_string_equal(h_str(m, "queue.0.user"), "Wendy");

	h_request(ctl, "doc", "release", "cl-a", sa, NULL, NULL);
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), 0);
	tok = slurp(h_path(w, "token"));
	t = strtoll(tok, NULL, 10);
	free(tok);
	assert_true(t > ta);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_pass(w);
}

static void
test_lock_lost_exits_70(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	struct h_proc *p;

	p = cli_acquire(w, "doc", "",
	    "touch @/started; while [ ! -e @/go ]; do sleep 0.05; done",
	    "mqlock-1.out");
	h_wait_file(h_path(w, "started"), H_WAIT_MS);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.connected", "#true");
	h_pub(ctl, H_PREFIX "/_admin/command",
	    "{\"op\":\"break\",\"lock\":\"doc\",\"reason\":\"test\"}");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	/* Whether mqlock stops the command or waits for it, it reports 70. */
	touch(h_path(w, "go"));
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), EX_SOFTWARE);
	h_pass(w);
}

/* mqlock --client-id ID status [LOCK] > out; returns its exit status. */
static int
cli_status(struct h_world *w, const char *id, const char *lock, const char *out)
{
	char *argv[8];
	size_t n = 0;

	argv[n++] = (char *)MQLOCK_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = (char *)(uintptr_t)h_uri(w);
	argv[n++] = (char *)"--client-id";
	argv[n++] = (char *)(uintptr_t)id;
	argv[n++] = (char *)"status";
	if (lock != NULL)
		argv[n++] = (char *)(uintptr_t)lock;
	argv[n] = NULL;
	return h_proc_wait(h_spawn(w, argv, out), H_WAIT_MS);
}

/* Holder Dora and waiter Eve on doc, requested by ctl. */
static void
dora_and_eve(struct h_client *ctl)
{
	h_request(ctl, "doc", "acquire", "holder-x", h_session(),
	    "\"user\":\"Dora\"", NULL);
	h_expect(ctl, h_events("holder-x"), H_WAIT_MS, "event", "granted");
	h_request(ctl, "doc", "acquire", "waiter-y", h_session(),
	    "\"user\":\"Eve\"", NULL);
	h_expect(ctl, h_events("waiter-y"), H_WAIT_MS, "event", "queued");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "waiting", "#1");
}

static void
expect_in_file(struct h_world *w, const char *name, const char *want)
{
	char *out = slurp(h_path(w, name));

	if (strstr(out, want) == NULL)
		fail_msg("%s does not say \"%s\":\n%s", name, want, out);
	free(out);
}

/* Every lock in use, from the retained owner messages. */
static void
test_status_lists_locks(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);

	static const char evil[] =
	    "{\"owner\":{\"client\":\"c-1\",\"user\":\"Mallory\\u001b[2J\","
	    "\"connected\":true},\"token\":5,\"waiting\":0,\"queue\":[]}";
	char *out;

	dora_and_eve(ctl);
	/* Whatever a name holds, it reaches the terminal escaped. */
	h_publish(ctl, h_owner("evil"), evil, sizeof(evil) - 1, 1, NULL);
	h_sub(ctl, H_PREFIX "/_clients/st-all/sync");
	assert_int_equal(cli_status(w, "st-all", NULL, "status.out"), 0);
	/* Its marker went to its own sync topic, not its events. */
	h_expect(ctl, H_PREFIX "/_clients/st-all/sync", H_WAIT_MS, H_ANY);
	h_expect_none(ctl, h_events("st-all"), H_QUIET_MS, H_ANY);
	expect_in_file(w, "status.out", "Dora (holder-x)");
	expect_in_file(w, "status.out", "Eve");
	expect_in_file(w, "status.out", "Mallory\\x1b[2J (c-1)");
	out = slurp(h_path(w, "status.out"));
	assert_null(strchr(out, '\x1b'));
	free(out);
	h_publish(ctl, h_owner("evil"), "", 0, 1, NULL);
	h_pass(w);
}

static void
test_status_shows_holder(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	char *out;

	dora_and_eve(ctl);
	h_sub(ctl, H_PREFIX "/doc/request/#");
	assert_int_equal(cli_status(w, "st-q", "doc", "status.out"), 0);
	/* Asked the coordinator, on its own bound request topic. */
	h_expect(ctl, H_PREFIX "/doc/request/st-q", H_WAIT_MS, "op", "query",
	    "lock", "doc", "client", "st-q");
	out = slurp(h_path(w, "status.out"));
	print_message("%s", out);
	if (strstr(out, "holder-x") == NULL && strstr(out, "Dora") == NULL)
		fail_msg("mqlock status does not show the holder: %s", out);
	if (strstr(out, "waiter-y") == NULL && strstr(out, "Eve") == NULL)
		fail_msg("mqlock status does not show the waiter: %s", out);
	free(out);
	/* A lock nobody holds. */
	assert_int_equal(cli_status(w, "st-free", "other", "free.out"), 0);
	expect_in_file(w, "free.out", "other ");
	h_pass(w);
}

/*
 * A waiting mqlock taken out of the queue by an operator (purge) says why
 * and exits 75, without running its command.
 */
static void
test_dropped_exits_75(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	const char *sa = h_session();
	struct h_proc *p;

	h_request(ctl, "doc", "acquire", "cl-a", sa, NULL, NULL);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");
	p = cli_acquire(w, "doc", "--wait 60 --client-id cl-w", "touch @/ran",
	    "mqlock-1.out");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "waiting", "#1");
	h_pub(ctl, H_PREFIX "/_admin/command",
	    "{\"op\":\"purge\",\"lock\":\"doc\"}");
	h_expect(ctl, h_events("cl-w"), H_WAIT_MS, "event", "dropped", "reason",
	    "admin");
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), EX_TEMPFAIL);
	assert_int_not_equal(access(h_path(w, "ran"), F_OK), 0);
	expect_in_file(w, "mqlock-1.out", "no longer waiting for doc");
	expect_in_file(w, "mqlock-1.out", "removed by an operator");
	h_pass(w);
}

/*
 * A granted event planted as a retained message on mqlock's events topic
 * before it starts is not believed: the lock is busy, so --wait 0 exits 75
 * and the command never runs.
 */
static void
test_retained_event_ignored(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	static const char forged[] =
	    "{\"event\":\"granted\",\"lock\":\"doc\",\"token\":424242,"
	    "\"idle_deadline\":9999999999999}";
	struct h_proc *p;

	h_request(ctl, "doc", "acquire", "cl-a", h_session(), NULL, NULL);
	h_expect(ctl, h_events("cl-a"), H_WAIT_MS, "event", "granted");
	h_publish(ctl, h_events("cl-x"), forged, sizeof(forged) - 1, 1, NULL);
	p = cli_acquire(w, "doc", "--wait 0 --client-id cl-x", "touch @/ran",
	    "mqlock-1.out");
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), EX_TEMPFAIL);
	assert_int_not_equal(access(h_path(w, "ran"), F_OK), 0);
	h_publish(ctl, h_events("cl-x"), "", 0, 1, NULL);
	h_pass(w);
}

/*
 * mqlock is stopped (SIGSTOP) while CMD runs, so it hears nothing: the
 * broker drops it after one and a half keepalives, its will fires, and
 * after the grace period the lock goes to the waiter cl-b.  CMD ends while
 * mqlock is still stopped.  Woken, mqlock must not report success: its
 * confirming acquire finds the lock gone.
 */
static void
test_lost_while_stopped_is_not_success(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	struct h_proc *p;
	struct h_msg *m;
	long long ta;

	p = cli_acquire(w, "doc", "--keepalive 1 --client-id cl-a",
	    "touch @/started; while [ ! -e @/go ]; do sleep 0.05; done; "
	    "touch @/ended",
	    "mqlock-1.out");
	h_wait_file(h_path(w, "started"), H_WAIT_MS);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	ta = h_int(m, "token");
	h_request(ctl, "doc", "acquire", "cl-b", h_session(), NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");

	h_proc_kill(p, SIGSTOP);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted");
	assert_true(h_int(m, "token") > ta);
	/* CMD is in its own process group: it ends meanwhile. */
	touch(h_path(w, "go"));
	h_wait_file(h_path(w, "ended"), H_WAIT_MS);
	h_proc_kill(p, SIGCONT);

	assert_int_equal(h_proc_wait(p, H_WAIT_MS), EX_SOFTWARE);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-b");
	h_pass(w);
}

/*
 * Stopped only while CMD ends (well under the keepalive): the lock stayed
 * its own, so CMD's status passes through and the lock is freed.
 */
static void
test_short_stop_keeps_status(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	struct h_proc *p;

	p = cli_acquire(w, "doc", "--keepalive 1 --client-id cl-a",
	    "touch @/started; while [ ! -e @/go ]; do sleep 0.05; done; exit 5",
	    "mqlock-1.out");
	h_wait_file(h_path(w, "started"), H_WAIT_MS);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	h_proc_kill(p, SIGSTOP);
	touch(h_path(w, "go"));
	h_proc_kill(p, SIGCONT);
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), 5);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	h_pass(w);
}

/* Runs "sh -c script" in the world's directory; fails unless it exits 0. */
static void
run_sh(struct h_world *w, const char *script, const char *out)
{
	char *argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)script, NULL};

	if (h_proc_wait(h_spawn(w, argv, out), H_WAIT_MS) != 0)
		fail_msg("'%s' failed; see %s", script, h_path(w, out));
}

/*
 * A CA and a certificate for 127.0.0.1 that it signs, made with openssl in
 * the world's directory: ca.crt, server.crt, server.key.
 */
static void
make_certificates(struct h_world *w)
{
	const char *d = h_dir(w);

	run_sh(w,
	    h_fmt(
		"cd '%s' && "
		"openssl req -x509 -new -newkey ec "
		"-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
		"-out ca.crt -days 2 -subj /CN=mqlock-test-ca && "
		"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		"-nodes -keyout server.key -out server.csr "
		"-subj /CN=127.0.0.1 && "
		"printf 'subjectAltName=IP:127.0.0.1\\n' > server.ext && "
		"openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
		"-CAcreateserial -days 2 -extfile server.ext -out server.crt "
		"&& chmod 644 server.key",
		d),
	    "openssl.out");
}

/* A broker of the test's own: a tcp:// listener and two WebSocket ones. */
struct ws_broker {
	int tcp, ws, wss;
	char tcp_uri[64];
};

/* Starts it; 0 once it runs, -1 if it died at once (a port was taken). */
static int
ws_broker_try(struct h_world *w, struct ws_broker *b)
{
	char *argv[4], conf[4096], *path;
	struct h_proc *p;
	long long end;
	FILE *f;

	b->tcp = tutil_free_port();
	do
		b->ws = tutil_free_port();
	while (b->ws == b->tcp);
	do
		b->wss = tutil_free_port();
	while (b->wss == b->tcp || b->wss == b->ws);
	if (b->tcp < 0 || b->ws < 0 || b->wss < 0)
		fail_msg("no free port");
	snprintf(b->tcp_uri, sizeof(b->tcp_uri), "tcp://127.0.0.1:%d", b->tcp);
	/* Debian's WebSocket listeners need socket_domain to stay local. */
	snprintf(conf, sizeof(conf),
	    "listener %d 127.0.0.1\n"
	    "listener %d 127.0.0.1\n"
	    "protocol websockets\n"
	    "socket_domain ipv4\n"
	    "listener %d 127.0.0.1\n"
	    "protocol websockets\n"
	    "socket_domain ipv4\n"
	    "certfile %s/server.crt\n"
	    "keyfile %s/server.key\n"
	    "allow_anonymous true\n"
	    "set_tcp_nodelay true\n"
	    "max_queued_messages 0\n"
	    "persistence false\n"
	    "log_dest stderr\n"
	    "log_type all\n"
	    "%s",
	    b->tcp, b->ws, b->wss, h_dir(w), h_dir(w),
	    geteuid() == 0 ? "user root\n" : "");
	path = strdup(h_path(w, "ws-mosquitto.conf"));
	assert_non_null(path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(conf, f) >= 0);
	assert_int_equal(fclose(f), 0);
	argv[0] = (char *)MOSQUITTO_BIN;
	argv[1] = (char *)"-c";
	argv[2] = path;
	argv[3] = NULL;
	unlink(h_path(w, "ws-mosquitto.log"));
	p = h_spawn(w, argv, "ws-mosquitto.log");
	free(path);
	/* It says "running" once every listener is open. */
	end = tutil_mono_ms() + H_WAIT_MS;
	path = strdup(h_path(w, "ws-mosquitto.log"));
	assert_non_null(path);
	while (!tutil_file_contains(path, " running")) {
		if (tutil_file_contains(path, "Error")) {
			h_proc_kill(p, SIGKILL);
			free(path);
			return -1;
		}
		if (tutil_mono_ms() >= end)
			fail_msg("mosquitto with WebSocket listeners did not "
				 "start; see %s",
			    path);
		tutil_nap_ms(10);
	}
	free(path);
	return 0;
}

/* Starts mqlockd on b's tcp:// listener; returns a client there. */
static struct h_client *
ws_coord_start(struct h_world *w, struct ws_broker *b)
{
	struct h_login login = {b->tcp_uri, NULL, NULL, NULL, NULL};
	char *argv[64], buf[1024], *db;
	struct h_client *c;
	int n;

	if (h_client_try(w, "ctl-ws", &login, &c) != 0)
		fail_msg("cannot connect to %s", b->tcp_uri);
	h_sub(c, H_PREFIX "/_coordinator/status");
	h_sub(c, H_PREFIX "/+/owner");
	db = strdup(h_path(w, "ws.db"));
	assert_non_null(db);
	n = h_coord_argv(argv, buf, sizeof(buf), b->tcp_uri, db);
	argv[n++] = (char *)"--grace";
	argv[n++] = (char *)"0.5";
	argv[n] = NULL;
	h_spawn(w, argv, "mqlockd.log");
	free(db);
	h_expect(c, H_PREFIX "/_coordinator/status", H_WAIT_MS, "state",
	    "online");
	return c;
}

/*
 * mqlock acquire over MQTT-over-WebSocket, plain (ws://) and with TLS
 * (wss://, the broker's certificate checked against --cafile): the
 * command runs under the lock's token and the lock is free afterwards.
 */
static void
test_websocket_brokers(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct ws_broker b;
	struct h_client *ctl;
	struct h_msg *m;
	char *tok;
	int i;

	make_certificates(w);
	for (i = 0; ws_broker_try(w, &b) != 0; i++) {
		if (i == 5)
			fail_msg("mosquitto did not start in 5 tries");
	}
	ctl = ws_coord_start(w, &b);
	for (i = 0; i < 2; i++) {
		const char *uri = i == 0 ? h_fmt("ws://127.0.0.1:%d", b.ws)
					 : h_fmt("wss://127.0.0.1:%d", b.wss);
		const char *out = i == 0 ? "mqlock-ws.out" : "mqlock-wss.out";
		char *argv[16];
		size_t n = 0;

		argv[n++] = (char *)MQLOCK_BIN;
		argv[n++] = (char *)"--broker";
		argv[n++] = strdup(uri);
		argv[n++] = (char *)"--cafile";
		argv[n++] = strdup(h_path(w, "ca.crt"));
		argv[n++] = (char *)"--client-id";
		argv[n++] = (char *)(i == 0 ? "cli-ws" : "cli-wss");
		argv[n++] = (char *)"acquire";
		argv[n++] = (char *)"doc";
		argv[n++] = (char *)"--";
		argv[n++] = (char *)"sh";
		argv[n++] = (char *)"-c";
		argv[n++] = strdup(h_fmt("printf %%s \"$MQLOCK_TOKEN\" > "
					 "'%s/token-%d'",
		    h_dir(w), i));
		argv[n] = NULL;
		assert_int_equal(h_proc_wait(h_spawn(w, argv, out), H_WAIT_MS),
		    0);
		free(argv[2]);
		free(argv[4]);
		free(argv[12]);
		/* The token the command saw was granted to mqlock's id. */
		m = h_expect(ctl, h_owner("doc"), H_WAIT_MS, "owner.client",
		    i == 0 ? "cli-ws" : "cli-wss");
		tok = tutil_slurp(h_path(w, h_fmt("token-%d", i)), NULL);
		assert_non_null(tok);
		assert_int_equal(strtoll(tok, NULL, 10), h_int(m, "token"));
		free(tok);
		h_expect(ctl, h_owner("doc"), H_WAIT_MS, H_FREE);
	}
	h_pass(w);
}

/* The HS256 secret of the ticket tests (33 bytes). */
#define TICKET_KEY "an-hs256-secret-for-mqlock-tests"

/*
 * A ticket (JWT, HS256 with TICKET_KEY, valid for an hour) for user sub
 * and client id client, made with openssl, in the world's file name.
 */
static void
make_ticket(struct h_world *w, const char *sub, const char *client,
    const char *name)
{
	run_sh(w,
	    h_fmt("cd '%s' && b64() { openssl base64 -A | tr '+/' '-_' | "
		  "tr -d '='; } && "
		  "h=$(printf %%s '{\"alg\":\"HS256\",\"typ\":\"JWT\"}' | b64) "
		  "&& p=$(printf %%s '{\"sub\":\"%s\",\"name\":\"Una\","
		  "\"client\":\"%s\",\"exp\":%lld}' | b64) && "
		  "s=$(printf %%s \"$h.$p\" | openssl dgst -sha256 -hmac "
		  "'%s' -binary | b64) && "
		  "printf '%%s.%%s.%%s\\n' \"$h\" \"$p\" \"$s\" > '%s'",
		h_dir(w), sub, client, h_now_ms() / 1000 + 3600, TICKET_KEY,
		name),
	    "jwt.out");
}

/*
 * mqlock sends the ticket of --ticket-file with its acquire (the owner
 * message names the ticket's user); when the same user takes the lock
 * over from another page, the revocation says so and mqlock exits 70.
 */
static void
test_ticket_and_takeover(void **state)
{
	static char key[64], flags[256];
	struct h_world *w;
	struct h_client *ctl;
	struct h_proc *p;
	char *jwt;
	FILE *f;

	snprintf(key, sizeof(key), "/tmp/mqlock-it-key-%d", (int)getpid());
	f = fopen(key, "w");
	assert_non_null(f);
	assert_true(fputs(TICKET_KEY "\n", f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(key, 0600), 0);
	snprintf(flags, sizeof(flags), "%s --ticket-key %s", FLAGS, key);
	w = h_world_start(state, flags);
	ctl = h_ctl(w);
	unlink(key);

	make_ticket(w, "u-1", "cl-t", "t.jwt");
	make_ticket(w, "u-1", "cl-u", "u.jwt");
	p = cli_acquire(w, "doc",
	    h_fmt("--client-id cl-t --ticket-file %s", h_path(w, "t.jwt")),
	    "touch @/started; while [ ! -e @/go ]; do sleep 0.05; done",
	    "mqlock-1.out");
	h_wait_file(h_path(w, "started"), H_WAIT_MS);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-t",
	    "owner.uid", "u-1");

	jwt = slurp(h_path(w, "u.jwt"));
	jwt[strcspn(jwt, "\n")] = '\0';
	h_request(ctl, "doc", "acquire", "cl-u", h_session(),
	    h_fmt("\"conn\":1,\"ticket\":\"%s\",\"takeover\":true", jwt), NULL);
	free(jwt);
	h_expect(ctl, h_events("cl-t"), H_WAIT_MS, "event", "revoked", "reason",
	    "takeover");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-u");
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), EX_SOFTWARE);
	expect_in_file(w, "mqlock-1.out", "taken over by the same user");
	h_pass(w);
}

/* --ticket-file needs --client-id, and a file that holds a ticket. */
static void
test_ticket_file_refusals(void **state)
{
	struct h_world *w = h_world_new(state, NULL);
	struct h_proc *p;
	FILE *f;

	f = fopen(h_path(w, "bad.jwt"), "w");
	assert_non_null(f);
	assert_true(fputs("not a ticket!\n", f) >= 0);
	assert_int_equal(fclose(f), 0);
	make_ticket(w, "u-1", "cl-t", "t.jwt");
	p = cli_acquire(w, "doc", h_fmt("--ticket-file %s", h_path(w, "t.jwt")),
	    "touch @/ran", "mqlock-1.out");
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), 64);
	expect_in_file(w, "mqlock-1.out", "needs --client-id");
	p = cli_acquire(w, "doc",
	    h_fmt("--client-id cl-t --ticket-file %s", h_path(w, "bad.jwt")),
	    "touch @/ran", "mqlock-2.out");
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), 64);
	expect_in_file(w, "mqlock-2.out", "is not a ticket");
	p = cli_acquire(w, "doc",
	    h_fmt("--client-id cl-t --ticket-file %s", h_path(w, "none.jwt")),
	    "touch @/ran", "mqlock-3.out");
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), 64);
	assert_int_not_equal(access(h_path(w, "ran"), F_OK), 0);
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_acquire_runs_command, h_teardown),
	    cmocka_unit_test_teardown(test_busy_and_wait_timeout_exit_75,
		h_teardown),
	    cmocka_unit_test_teardown(test_waits_then_runs, h_teardown),
	    cmocka_unit_test_teardown(test_lock_lost_exits_70, h_teardown),
	    cmocka_unit_test_teardown(test_lost_while_stopped_is_not_success,
		h_teardown),
	    cmocka_unit_test_teardown(test_short_stop_keeps_status, h_teardown),
	    cmocka_unit_test_teardown(test_status_shows_holder, h_teardown),
	    cmocka_unit_test_teardown(test_status_lists_locks, h_teardown),
	    cmocka_unit_test_teardown(test_dropped_exits_75, h_teardown),
	    cmocka_unit_test_teardown(test_retained_event_ignored, h_teardown),
	    cmocka_unit_test_teardown(test_ticket_and_takeover, h_teardown),
	    cmocka_unit_test_teardown(test_ticket_file_refusals, h_teardown),
	    cmocka_unit_test_teardown(test_websocket_brokers, h_teardown),
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
