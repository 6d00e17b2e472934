/*
 * config: mqlockd's command-line flags, described by one table.
 */
#ifndef MQLOCK_MQLOCKD_CONFIG_H
#define MQLOCK_MQLOCKD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/locktab.h"
#include "io/leader.h"
#include "io/log.h"
#include "io/secret.h"

/* --ticket-key: 256 bits at least, HS256's own strength. */
#define CONFIG_TICKET_KEY_MIN 32
#define CONFIG_TICKET_KEY_MAX SECRET_MAX

/* A signing key read from a file by config_parse(). */
struct config_key {
	const char *path; /* NULL: none given */
	size_t len;       /* bytes in key, >= CONFIG_TICKET_KEY_MIN */
	unsigned char key[CONFIG_TICKET_KEY_MAX];
};

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
	int64_t rate_milli; /* requests per second per client, x 1000 */
	enum log_level log_level;
	bool check;
	const char *idle_policy;         /* "contended" or "always" */
	const char *ticket_key;          /* --ticket-key's path, or NULL */
	struct config_key ticket_secret; /* what that file holds */
	bool require_ticket;             /* every acquire needs a ticket */
	int64_t max_clients_per_user;    /* client ids one ticket uid may use */
	int64_t offline_exit_ms;         /* exit 1 this long offline; 0 never */
	/*
	 * High availability: with etcd set, the journal and the leadership
	 * are in etcd (db is unused) and several mqlockd may run; one leads.
	 */
	const char *etcd;          /* endpoints, "http://h:p,..."; NULL */
	const char *etcd_prefix;   /* key prefix; default mqlock/<prefix>/ */
	int64_t lease_s;           /* the leader's lease TTL, seconds */
	int64_t etcd_timeout_ms;   /* deadline of each request to etcd */
	const char *etcd_id;       /* this candidate; default host-pid */
	const char *etcd_cafile;   /* https:// endpoints: CAs */
	const char *etcd_certfile; /* a client certificate, and */
	const char *etcd_keyfile;  /* its key */
	const char *etcd_user;     /* etcd authentication, with */
	const char *etcd_password_file; /* the password's file */
	int64_t etcd_max_txn_ops;       /* the cluster's --max-txn-ops */
	int64_t etcd_max_request_bytes; /* its --max-request-bytes */
	char etcd_prefix_buf[LEADER_PREFIX_MAX + 1];
	char etcd_id_buf[LEADER_ID_MAX + 1];
};

enum config_result { CONFIG_OK, CONFIG_EXIT, CONFIG_ERROR };

/*
 * config_parse(c, argc, argv, err, errsz): fill c with the defaults, then
 * the flags in argv (strings point into argv, or into c itself for the
 * defaults of etcd_prefix and etcd_id: do not copy c).  The --ticket-key
 * file is read here (c->ticket_secret; wipe it with explicit_bzero() when
 * done); etcd's endpoints and TLS files are checked, without contacting
 * etcd.  Returns CONFIG_OK; CONFIG_EXIT after printing --help or --version
 * to stdout; or CONFIG_ERROR with a one-line reason in err for an unknown
 * flag, a missing or out-of-range value, an unusable key file, or an
 * inconsistent combination (--db with --etcd, an etcd flag without it).
 */
enum config_result config_parse(struct config *c, int argc, char **argv,
    char *err, size_t errsz);

/*
 * config_lease_margin_ms(c): how long before its lease can have expired a
 * leader stops acting as one, by its own clock (leader.h): a fifth of the
 * lease.
 */
int64_t config_lease_margin_ms(const struct config *c);

/*
 * config_lt(c, out): the lock table's settings that c asks for, with ids
 * hashed by siphash_hasher() (check out->hasher.fn: NULL when libsodium
 * did not start).
 */
void config_lt(const struct config *c, struct lt_config *out);

/* config_usage(out): print the flag table as help text. */
void config_usage(void *out);

#endif
