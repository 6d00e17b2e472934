/*
 * config: mqlockd's command-line flags, described by one table.
 */
#ifndef MQLOCK_IO_CONFIG_H
#define MQLOCK_IO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/log.h"

struct config {
	const char *broker;
	const char *prefix;
	const char *db;
	const char *client_id;
	const char *reply_prefix;
	const char *username;
	const char *password_file;
	const char *cafile;
	const char *certfile;
	const char *keyfile;
	int64_t idle_timeout_ms;
	int64_t idle_warning_ms;
	int64_t grace_ms;
	int64_t keepalive_ms;
	int64_t max_waiters;
	int64_t max_locks_per_client;
	int64_t max_clients;
	int64_t max_locks;
	int64_t rate_milli;      /* requests per second per client, x 1000 */
	const char *idle_policy; /* "always" or "contended" */
	const char *ticket_key;  /* file with the tickets' HS256 secret */
	bool require_ticket;
	int64_t max_clients_per_user;
	int64_t offline_exit_ms; /* 0: never */
	enum log_level log_level;
	bool check;
};

enum config_result { CONFIG_OK, CONFIG_EXIT, CONFIG_ERROR };

/*
 * config_parse(c, argc, argv, err, errsz): fill c with the defaults, then
 * the flags in argv (strings point into argv).  Returns CONFIG_OK;
 * CONFIG_EXIT after printing --help or --version to stdout; or CONFIG_ERROR
 * with a one-line reason in err for an unknown flag, a missing or
 * out-of-range value, or an inconsistent combination.
 */
enum config_result config_parse(struct config *c, int argc, char **argv,
    char *err, size_t errsz);

/* config_usage(out): print the flag table as help text. */
void config_usage(void *out);

/*
 * config_read_secret(path, buf, size, err, errsz): the first line of the
 * file at path, without its newline.  Returns 0, or -1 with a reason.
 */
int config_read_secret(const char *path, char *buf, size_t size, char *err,
    size_t errsz);

#endif
