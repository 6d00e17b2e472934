/*
 * test_sec_cli.c: the mqlock command against the production broker
 * profile: over TLS with the local CA (--cafile), logged in as a service,
 * it takes a lock, runs its command and confirms the lock through an MQTT 5
 * reply that the ACL lets it read (replies/<client id>/); without the CA it
 * cannot verify the broker and says so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sec.h"

#define EX_UNAVAILABLE 69

/* mqlock over TLS as the services user; extra words end with NULL. */
static struct h_proc *
run_mqlock(struct s_world *w, int with_ca, const char *out, ...)
{
	char *argv[32];
	size_t n = 0;
	va_list ap;
	const char *a;

	argv[n++] = (char *)MQLOCK_BIN;
	argv[n++] = (char *)"--broker";
	argv[n++] = (char *)(uintptr_t)s_uri(w);
	if (with_ca) {
		argv[n++] = (char *)"--cafile";
		argv[n++] = (char *)(uintptr_t)s_file(w, "ca.crt");
	}
	argv[n++] = (char *)"--username";
	argv[n++] = (char *)"services";
	argv[n++] = (char *)"--password-file";
	argv[n++] = (char *)(uintptr_t)s_file(w, "passwords/services");
	argv[n++] = (char *)"--client-id";
	argv[n++] = (char *)"svc-1";
	va_start(ap, out);
	while ((a = va_arg(ap, const char *)) != NULL) {
		assert_true(n < sizeof(argv) / sizeof(argv[0]) - 1);
		argv[n++] = (char *)(uintptr_t)a;
	}
	va_end(ap);
	argv[n] = NULL;
	return h_spawn(s_h(w), argv, out);
}

/* With the CA: granted, COMMAND's status confirmed and passed through. */
static void
test_acquire_over_tls(void **state)
{
	struct s_world *w = s_world_start(state, NULL);
	struct h_proc *p;

	p = run_mqlock(w, 1, "mqlock-acquire.out", "acquire", "doc", "--", "sh",
	    "-c", "[ -n \"$MQLOCK_TOKEN\" ] && exit 4", NULL);
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), 4);
	h_state(s_mon(w), h_owner("doc"), H_WAIT_MS, "owner.client", "svc-1");
	h_state(s_mon(w), h_owner("doc"), H_WAIT_MS, H_FREE);
	s_pass(w);
}

/* Without it the broker's certificate cannot be verified: exit 69. */
static void
test_unknown_ca_refused(void **state)
{
	struct s_world *w = s_world_start(state, NULL);
	struct h_proc *p;

	p = run_mqlock(w, 0, "mqlock-status.out", "status", NULL);
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), EX_UNAVAILABLE);
	p = run_mqlock(w, 1, "mqlock-status-ca.out", "status", NULL);
	assert_int_equal(h_proc_wait(p, H_WAIT_MS), 0);
	s_pass(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_acquire_over_tls, s_teardown),
	    cmocka_unit_test_teardown(test_unknown_ca_refused, s_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
