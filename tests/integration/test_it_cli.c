/*
 * test_it_cli.c: the mqlock command against a real mqlockd:
 *
 *	mqlock --broker URI acquire LOCK [--wait S] [--user NAME] -- CMD...
 *	mqlock --broker URI status LOCK
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

	p = cli_acquire(w, "doc", "--user Carol",
	    "printf %s \"$MQLOCK_TOKEN\" > @/token.tmp && "
	    "mv @/token.tmp @/token; "
	    "while [ ! -e @/go ]; do sleep 0.05; done; exit 3",
	    "mqlock-1.out");

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

static void
test_status_shows_holder(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	char *argv[6], *out;
	struct h_proc *p;

	h_request(ctl, "doc", "acquire", "holder-x", h_session(),
	    "\"user\":\"Dora\"", NULL);
	h_expect(ctl, h_events("holder-x"), H_WAIT_MS, "event", "granted");
	h_request(ctl, "doc", "acquire", "waiter-y", h_session(),
	    "\"user\":\"Eve\"", NULL);
	h_expect(ctl, h_events("waiter-y"), H_WAIT_MS, "event", "queued");
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "waiting", "#1");

	argv[0] = (char *)MQLOCK_BIN;
	argv[1] = (char *)"--broker";
	argv[2] = (char *)(uintptr_t)h_uri(w);
	argv[3] = (char *)"status";
	argv[4] = (char *)"doc";
	argv[5] = NULL;
	p = h_spawn(w, argv, "status.out");
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), 0);
	out = slurp(h_path(w, "status.out"));
	print_message("%s", out);
	if (strstr(out, "holder-x") == NULL && strstr(out, "Dora") == NULL)
		fail_msg("mqlock status does not show the holder: %s", out);
	if (strstr(out, "waiter-y") == NULL && strstr(out, "Eve") == NULL)
		fail_msg("mqlock status does not show the waiter: %s", out);
	free(out);
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
	};

	h_filter();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
