/*
 * test_it_confirm.c: mqlock acquire exits with COMMAND's status only when
 * the lock stayed its own until COMMAND ended (README, "The mqlock
 * command"; topics.md, "MQTT 5 replies").
 *
 * mqlock is stopped with SIGSTOP while COMMAND runs, so it hears nothing:
 * the broker drops it after one and a half keepalives, its will fires, and
 * after the grace period the lock goes to the next waiter.  COMMAND ends
 * while mqlock is still stopped.  Woken, mqlock must not report success.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define FLAGS "--grace 0.5 --idle-timeout 600 --idle-warning 60"
#define EX_SOFTWARE 70

/* mqlock --keepalive 1 acquire doc -- sh -c SCRIPT; @ is the world's dir. */
static struct h_proc *
acquire_doc(struct h_world *w, const char *script)
{
	static char buf[512];
	char *argv[] = {(char *)MQLOCK_BIN, (char *)"--broker",
	    (char *)(uintptr_t)h_uri(w), (char *)"--keepalive", (char *)"1",
	    (char *)"--client-id", (char *)"cl-a", (char *)"acquire",
	    (char *)"doc", (char *)"--", (char *)"sh", (char *)"-c", buf, NULL};
	size_t k = 0;

	for (const char *s = script; *s != '\0'; s++) {
		const char *add = *s == '@' ? h_dir(w) : NULL;
		size_t len = add != NULL ? strlen(add) : 1;

		assert_true(k + len < sizeof(buf));
		memcpy(buf + k, add != NULL ? add : s, len);
		k += len;
	}
	buf[k] = '\0';
	return h_spawn(w, argv, "mqlock.out");
}

static void
touch(const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fclose(f);
}

/* The lock went to cl-b while mqlock slept: it exits 70, cl-b keeps it. */
static void
test_lost_while_stopped_is_not_success(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	struct h_proc *p;
	struct h_msg *m;
	long long ta;

	p = acquire_doc(w,
	    "touch @/started; "
	    "while [ ! -e @/go ]; do sleep 0.05; done; "
	    "touch @/ended");
	h_wait_file(h_path(w, "started"), H_WAIT_MS);
	m = h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	ta = h_int(m, "token");
	h_request(ctl, "doc", "acquire", "cl-b", h_session(), NULL, NULL);
	h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "queued");

	h_proc_kill(p, SIGSTOP);
	m = h_expect(ctl, h_events("cl-b"), H_WAIT_MS, "event", "granted");
	assert_true(h_int(m, "token") > ta);
	/* COMMAND is in its own process group: it ends meanwhile. */
	touch(h_path(w, "go"));
	h_wait_file(h_path(w, "ended"), H_WAIT_MS);
	h_proc_kill(p, SIGCONT);

	assert_int_equal(h_proc_wait(p, H_WAIT_MS), EX_SOFTWARE);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-b");
	h_pass(w);
}

/*
 * Stopped only while COMMAND ends (well under the keepalive): the lock
 * stayed ours, so COMMAND's status passes through and the lock is freed.
 */
static void
test_short_stop_keeps_status(void **state)
{
	struct h_world *w = h_world_start(state, FLAGS);
	struct h_client *ctl = h_ctl(w);
	struct h_proc *p;

	p = acquire_doc(w,
	    "touch @/started; "
	    "while [ ! -e @/go ]; do sleep 0.05; done; exit 5");
	h_wait_file(h_path(w, "started"), H_WAIT_MS);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner.client", "cl-a");
	h_proc_kill(p, SIGSTOP);
	touch(h_path(w, "go"));
	h_proc_kill(p, SIGCONT);
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), 5);
	h_state(ctl, h_owner("doc"), H_WAIT_MS, "owner", "#null");
	h_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_lost_while_stopped_is_not_success,
		h_teardown),
	    cmocka_unit_test_teardown(test_short_stop_keeps_status, h_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
