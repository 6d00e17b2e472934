/*
 * config: defaults, every flag form, ranges and clear refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mqlockd/config.h"

#define PARSE(c, err, ...)                                     \
	config_parse((c),                                      \
	    (int)(sizeof((char *[]){"mqlockd", __VA_ARGS__}) / \
		sizeof(char *)),                               \
	    (char *[]){"mqlockd", __VA_ARGS__}, (err), sizeof(err))

static void
test_defaults(void **state)
{
	struct config c;
	char err[256];
	char *argv[] = {"mqlockd"};

	assert_int_equal(config_parse(&c, 1, argv, err, sizeof(err)),
	    CONFIG_OK);
	assert_string_equal(c.broker, "tcp://127.0.0.1:1883");
	assert_string_equal(c.prefix, "locks");
	assert_string_equal(c.db, "./mqlock.db");
	assert_string_equal(c.client_id, "mqlockd");
	assert_int_equal(c.idle_timeout_ms, 600000);
	assert_int_equal(c.idle_warning_ms, 60000);
	assert_int_equal(c.grace_ms, 10000);
	assert_int_equal(c.keepalive_ms, 10000);
	assert_int_equal(c.log_level, LOG_LEVEL_INFO);
	assert_null(c.username);
	assert_false(c.check);
	assert_int_equal(c.max_waiters, 1024);
	assert_int_equal(c.max_locks_per_client, 256);
	assert_int_equal(c.max_clients, 100000);
	assert_int_equal(c.max_locks, 2000000);
	assert_int_equal(c.rate_milli, 50000);
	assert_string_equal(c.idle_policy, "contended");
	assert_null(c.ticket_key);
	assert_int_equal(c.ticket_secret.len, 0);
	assert_false(c.require_ticket);
	assert_int_equal(c.max_clients_per_user, 16);
	assert_int_equal(c.offline_exit_ms, 60000);
	/* sqlite, not etcd, unless asked. */
	assert_null(c.etcd);
	assert_null(c.etcd_prefix);
	assert_null(c.etcd_id);
	assert_int_equal(c.lease_s, 5);
	assert_int_equal(c.etcd_timeout_ms, 2000);
	assert_int_equal(config_lease_margin_ms(&c), 1000);
	assert_int_equal(c.etcd_max_txn_ops, 128);
	assert_int_equal(c.etcd_max_request_bytes, 1572864);
}

static void
test_values(void **state)
{
	struct config c;
	char err[256];

	assert_int_equal(PARSE(&c, err, "--grace", "0.5", "--idle-timeout=2",
			     "--idle-warning", "1.25", "--prefix", "site/locks",
			     "--db", "/tmp/x.db", "--log-level", "debug",
			     "--check", "--broker", "ssl://h:8883",
			     "--username", "u", "--password-file", "/p"),
	    CONFIG_OK);
	assert_int_equal(c.grace_ms, 500);
	assert_int_equal(PARSE(&c, err, "--max-waiters", "3", "--rate", "0.5",
			     "--max-locks", "10", "--max-clients", "7",
			     "--max-locks-per-client", "2"),
	    CONFIG_OK);
	assert_int_equal(c.max_waiters, 3);
	assert_int_equal(c.rate_milli, 500);
	assert_int_equal(c.max_locks, 10);
	assert_int_equal(c.max_clients, 7);
	assert_int_equal(c.max_locks_per_client, 2);
	assert_int_equal(PARSE(&c, err, "--grace", "0.5", "--idle-timeout=2",
			     "--idle-warning", "1.25", "--prefix", "site/locks",
			     "--db", "/tmp/x.db", "--log-level", "debug",
			     "--check", "--broker", "ssl://h:8883",
			     "--username", "u", "--password-file", "/p"),
	    CONFIG_OK);
	assert_int_equal(c.idle_timeout_ms, 2000);
	assert_int_equal(c.idle_warning_ms, 1250);
	assert_string_equal(c.prefix, "site/locks");
	assert_string_equal(c.db, "/tmp/x.db");
	assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
	assert_true(c.check);
	assert_string_equal(c.broker, "ssl://h:8883");
	assert_int_equal(PARSE(&c, err, "--broker", "wss://h:443/mqtt"),
	    CONFIG_OK);
	assert_int_equal(PARSE(&c, err, "--broker", "ws://h:8080"), CONFIG_OK);
}

static void
expect_error(const char *want, int argc, char **argv)
{
	struct config c;
	char err[256] = "";

	assert_int_equal(config_parse(&c, argc, argv, err, sizeof(err)),
	    CONFIG_ERROR);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' does not mention '%s'", err, want);
}

#define EXPECT_ERROR(want, ...)                                \
	expect_error(want,                                     \
	    (int)(sizeof((char *[]){"mqlockd", __VA_ARGS__}) / \
		sizeof(char *)),                               \
	    (char *[]){"mqlockd", __VA_ARGS__})

static void
test_refusals(void **state)
{
	EXPECT_ERROR("unknown argument", "--nope");
	EXPECT_ERROR("unknown argument", "stray");
	EXPECT_ERROR("needs a value", "--grace");
	EXPECT_ERROR("--grace", "--grace", "-1");
	EXPECT_ERROR("--grace", "--grace", "abc");
	EXPECT_ERROR("--grace", "--grace", "1.2345");
	EXPECT_ERROR("--grace", "--grace", "1e3");
	EXPECT_ERROR("--idle-timeout", "--idle-timeout", "0");
	EXPECT_ERROR("--keepalive", "--keepalive", "0");
	EXPECT_ERROR("--grace", "--grace", "99999999999999999999");
	EXPECT_ERROR("--log-level", "--log-level", "loud");
	EXPECT_ERROR("--prefix", "--prefix", "a/+/b");
	EXPECT_ERROR("--prefix", "--prefix", "/locks");
	EXPECT_ERROR("--prefix", "--prefix", "locks/");
	EXPECT_ERROR("--prefix", "--prefix", "a//b");
	EXPECT_ERROR("--prefix", "--prefix", "");
	EXPECT_ERROR("--client-id", "--client-id", "a/b");
	EXPECT_ERROR("--broker", "--broker", "http://x");
	EXPECT_ERROR("must start with tcp://, mqtt://, ssl://, mqtts://, ws:// "
		     "or wss://",
	    "--broker", "unix:///run/x");
	EXPECT_ERROR("--db", "--db", "");
	EXPECT_ERROR("--password-file needs --username", "--password-file",
	    "/p");
	EXPECT_ERROR("takes no value", "--check=1");
	EXPECT_ERROR("--max-waiters", "--max-waiters", "1025");
	EXPECT_ERROR("--max-waiters", "--max-waiters", "0");
	EXPECT_ERROR("--max-waiters", "--max-waiters", "2.5");
	EXPECT_ERROR("--max-locks-per-client", "--max-locks-per-client", "257");
	EXPECT_ERROR("--max-clients", "--max-clients", "-1");
	EXPECT_ERROR("--rate", "--rate", "0");
	EXPECT_ERROR("--rate", "--rate", "fast");
}

/* A key file with text and mode; returns its path (a static buffer). */
static const char *
key_file(const char *text, mode_t mode)
{
	static char path[64];
	FILE *f;
	int fd;

	if (path[0] != '\0')
		unlink(path);
	snprintf(path, sizeof(path), "/tmp/mqlock-tkey-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

#define KEY32 "an-hs256-secret-of-32-bytes-long"

static void
test_new_flags(void **state)
{
	struct config c;
	char err[256];
	const char *key = key_file(KEY32 "\n", 0640);

	assert_int_equal(PARSE(&c, err, "--idle-policy", "always",
			     "--ticket-key", (char *)key, "--require-ticket",
			     "--max-clients-per-user", "256", "--offline-exit",
			     "0"),
	    CONFIG_OK);
	assert_string_equal(c.idle_policy, "always");
	assert_string_equal(c.ticket_key, key);
	assert_int_equal(c.ticket_secret.len, 32);
	assert_memory_equal(c.ticket_secret.key, KEY32, 32);
	assert_true(c.require_ticket);
	assert_int_equal(c.max_clients_per_user, 256);
	assert_int_equal(c.offline_exit_ms, 0);
	assert_int_equal(PARSE(&c, err, "--idle-policy=contended",
			     "--offline-exit", "2.5", "--max-clients-per-user",
			     "1"),
	    CONFIG_OK);
	assert_string_equal(c.idle_policy, "contended");
	assert_int_equal(c.offline_exit_ms, 2500);
	assert_int_equal(c.max_clients_per_user, 1);
	/* A key is a key with the tickets optional too. */
	assert_int_equal(PARSE(&c, err, "--ticket-key", (char *)key),
	    CONFIG_OK);
	assert_false(c.require_ticket);
	unlink(key);
}

static void
test_new_flag_refusals(void **state)
{
	char *key;

	EXPECT_ERROR("--idle-policy: 'sometimes' is not contended or always",
	    "--idle-policy", "sometimes");
	EXPECT_ERROR("--idle-policy", "--idle-policy", "");
	EXPECT_ERROR("--require-ticket needs --ticket-key", "--require-ticket");
	EXPECT_ERROR("--max-clients-per-user", "--max-clients-per-user", "0");
	EXPECT_ERROR("--max-clients-per-user", "--max-clients-per-user", "257");
	EXPECT_ERROR("--offline-exit", "--offline-exit", "-1");
	EXPECT_ERROR("--offline-exit", "--offline-exit", "never");
	EXPECT_ERROR("takes no value", "--require-ticket=yes");
	EXPECT_ERROR("needs a value", "--ticket-key");
	EXPECT_ERROR("cannot open", "--ticket-key", "/nonexistent/key");
	key = (char *)key_file(KEY32 "\n", 0660);
	EXPECT_ERROR("chmod 640", "--ticket-key", key);
	key = (char *)key_file(KEY32 "\n", 0604);
	EXPECT_ERROR("chmod 640", "--ticket-key", key);
	/* 31 bytes once the newline is dropped. */
	key = (char *)key_file("an-hs256-secret-of-31-bytes-lon\n", 0600);
	EXPECT_ERROR("--ticket-key", "--ticket-key", key);
	EXPECT_ERROR("shorter than 32 bytes", "--ticket-key", key);
	unlink(key);
}

static void
test_etcd_flags(void **state)
{
	struct config c;
	char err[256], id[64];

	/* Defaults: the key prefix follows --prefix, the id host and pid. */
	assert_int_equal(PARSE(&c, err, "--etcd",
			     "http://127.0.0.1:2379,https://10.0.0.2:2379",
			     "--prefix", "site/locks"),
	    CONFIG_OK);
	assert_string_equal(c.etcd,
	    "http://127.0.0.1:2379,https://10.0.0.2:2379");
	assert_string_equal(c.etcd_prefix, "mqlock/site/locks/");
	snprintf(id, sizeof(id), "-%ld", (long)getpid());
	assert_non_null(c.etcd_id);
	assert_true(strlen(c.etcd_id) > strlen(id));
	assert_string_equal(c.etcd_id + strlen(c.etcd_id) - strlen(id), id);
	assert_int_equal(c.lease_s, 5);
	/* Every flag. */
	assert_int_equal(
	    PARSE(&c, err, "--etcd", "http://e1:2379", "--etcd-prefix", "x/y/",
		"--lease", "15", "--etcd-timeout", "0.5", "--etcd-id", "node-7",
		"--etcd-user", "mq", "--etcd-password-file", "/run/pw",
		"--etcd-cafile", "/dev/null", "--etcd-certfile", "/dev/null",
		"--etcd-keyfile", "/dev/null"),
	    CONFIG_OK);
	assert_string_equal(c.etcd_prefix, "x/y/");
	assert_int_equal(c.lease_s, 15);
	assert_int_equal(config_lease_margin_ms(&c), 3000);
	assert_int_equal(c.etcd_timeout_ms, 500);
	assert_string_equal(c.etcd_id, "node-7");
	assert_string_equal(c.etcd_user, "mq");
	assert_string_equal(c.etcd_password_file, "/run/pw");
	assert_string_equal(c.etcd_cafile, "/dev/null");
	assert_string_equal(c.etcd_certfile, "/dev/null");
	assert_string_equal(c.etcd_keyfile, "/dev/null");
	assert_int_equal(PARSE(&c, err, "--etcd", "http://e1:2379",
			     "--etcd-max-txn-ops", "64",
			     "--etcd-max-request-bytes", "1048576"),
	    CONFIG_OK);
	assert_int_equal(c.etcd_max_txn_ops, 64);
	assert_int_equal(c.etcd_max_request_bytes, 1048576);
	assert_int_equal(
	    PARSE(&c, err, "--etcd", "http://e1:2379", "--lease", "2"),
	    CONFIG_OK);
	assert_int_equal(config_lease_margin_ms(&c), 400);
}

static void
test_etcd_refusals(void **state)
{
	EXPECT_ERROR("--db and --etcd exclude each other", "--etcd",
	    "http://e:2379", "--db", "/tmp/x.db");
	EXPECT_ERROR("--db and --etcd exclude each other", "--db", "x.db",
	    "--etcd", "http://e:2379");
	/* The etcd flags need --etcd. */
	EXPECT_ERROR("--lease needs --etcd", "--lease", "10");
	EXPECT_ERROR("--etcd-prefix needs --etcd", "--etcd-prefix", "a/");
	EXPECT_ERROR("--etcd-id needs --etcd", "--etcd-id", "a");
	EXPECT_ERROR("--etcd-timeout needs --etcd", "--etcd-timeout", "1");
	EXPECT_ERROR("--etcd-user needs --etcd", "--etcd-user", "u");
	EXPECT_ERROR("--etcd-cafile needs --etcd", "--etcd-cafile", "/f");
	EXPECT_ERROR("--etcd-max-txn-ops needs --etcd", "--etcd-max-txn-ops",
	    "64");
	EXPECT_ERROR("--etcd-max-txn-ops", "--etcd", "http://h:2379",
	    "--etcd-max-txn-ops", "8");
	EXPECT_ERROR("--etcd-max-request-bytes", "--etcd", "http://h:2379",
	    "--etcd-max-request-bytes", "1000");
	/* Endpoints and files are checked without contacting etcd. */
	EXPECT_ERROR("--etcd:", "--etcd", "");
	EXPECT_ERROR("--etcd:", "--etcd", "tcp://h:2379");
	EXPECT_ERROR("--etcd:", "--etcd", "http://h:2379,,http://g:2379");
	EXPECT_ERROR("--etcd:", "--etcd", "http://h:2379", "--etcd-cafile",
	    "/nonexistent/ca.pem");
	/* Ranges. */
	EXPECT_ERROR("--lease", "--etcd", "http://h:2379", "--lease", "1");
	EXPECT_ERROR("--lease", "--etcd", "http://h:2379", "--lease", "3601");
	EXPECT_ERROR("--lease", "--etcd", "http://h:2379", "--lease", "2.5");
	EXPECT_ERROR("--etcd-timeout", "--etcd", "http://h:2379",
	    "--etcd-timeout", "0.05");
	EXPECT_ERROR("--etcd-timeout", "--etcd", "http://h:2379",
	    "--etcd-timeout", "61");
	/* Names etcd keys are made of. */
	EXPECT_ERROR("--etcd-prefix", "--etcd", "http://h:2379",
	    "--etcd-prefix", "has space/");
	EXPECT_ERROR("--etcd-prefix", "--etcd", "http://h:2379",
	    "--etcd-prefix", "");
	EXPECT_ERROR("--etcd-prefix", "--etcd", "http://h:2379",
	    "--etcd-prefix",
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "4567890123456789012345678901234567890123456789012345678901234567"
	    "89");
	EXPECT_ERROR("give --etcd-prefix", "--etcd", "http://h:2379",
	    "--prefix", "s\xc3\xa4tze");
	EXPECT_ERROR("--etcd-id", "--etcd", "http://h:2379", "--etcd-id",
	    "a\tb");
	EXPECT_ERROR("--etcd-id", "--etcd", "http://h:2379", "--etcd-id", "");
	/* Credentials come in pairs. */
	EXPECT_ERROR("--etcd-password-file needs --etcd-user", "--etcd",
	    "http://h:2379", "--etcd-password-file", "/p");
	EXPECT_ERROR("--etcd-user needs --etcd-password-file", "--etcd",
	    "http://h:2379", "--etcd-user", "u");
	EXPECT_ERROR("--etcd-keyfile needs --etcd-certfile", "--etcd",
	    "http://h:2379", "--etcd-keyfile", "/dev/null");
}

static void
test_help_and_version_exit(void **state)
{
	struct config c;
	char err[64];
	FILE *saved = stdout;

	/* Keep the test output readable: send the text to /dev/null. */
	stdout = fopen("/dev/null", "w");
	assert_int_equal(PARSE(&c, err, "--help"), CONFIG_EXIT);
	assert_int_equal(PARSE(&c, err, "--version"), CONFIG_EXIT);
	fclose(stdout);
	stdout = saved;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_new_flags),
	    cmocka_unit_test(test_new_flag_refusals),
	    cmocka_unit_test(test_etcd_flags),
	    cmocka_unit_test(test_etcd_refusals),
	    cmocka_unit_test(test_help_and_version_exit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
