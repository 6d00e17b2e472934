/*
 * cli: what the mqlock subcommands share: the common flags, the MQTT
 * client they build from them, and one wait (io/loop) over the signals and
 * the client's wake fd.
 */
#ifndef MQLOCK_MQLOCK_CLI_H
#define MQLOCK_MQLOCK_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "io/mqtt.h"
#include "io/secret.h"

/* Exit codes, as in sysexits(3). */
#define EXIT_USAGE 64       /* bad command line */
#define EXIT_UNAVAILABLE 69 /* broker unreachable */
#define EXIT_SOFTWARE 70    /* the lock was lost while COMMAND ran */
#define EXIT_OSERR 71       /* COMMAND could not be started */
#define EXIT_TEMPFAIL 75    /* busy, or --wait ran out */

#define CLI_DEFAULT_BROKER "tcp://127.0.0.1:1883"
#define CLI_DEFAULT_PREFIX "locks"
#define CLI_DEFAULT_REPLY_PREFIX "replies/"
#define CLI_DEFAULT_KEEPALIVE 10

/* The common flags, after parsing. */
struct cli {
	const char *broker;
	const char *prefix;
	const char *reply_prefix; /* mqlockd's --reply-prefix */
	const char *username;
	char password[SECRET_MAX + 1]; /* read from --password-file */
	int have_password;
	int keepalive;
	/* TLS files for TLS brokers, or NULL. */
	const char *cafile;
	const char *certfile;
	const char *keyfile;
	char client_id[MQL_CLIENT_ID_SZ]; /* --client-id or a random one */
};

/* acquire's own flags and operands. */
struct acquire_args {
	const char *lock;
	int64_t wait_ms; /* -1: wait forever; 0: try-lock */
	const char *user;
	const char *ticket_file; /* --ticket-file, or NULL */
	char **argv; /* COMMAND and its arguments, NULL-terminated */
};

/*
 * cli_random_hex(buf, n): n random hex digits and a NUL into buf (which
 * holds n + 1 bytes), from getrandom().  Returns 0, or -1 (printed).
 */
int cli_random_hex(char *buf, size_t n);

/*
 * cli_request_topic(c, lock, buf, size): P/<lock>/request/<client id>,
 * the request topic bound to c's client id.  Returns 0, or -1 (printed) if
 * it does not fit.
 */
int cli_request_topic(const struct cli *c, const char *lock, char *buf,
    size_t size);

/*
 * cli_read_ticket(path, buf, size): the ticket on the first line of the
 * file at path into buf (size > MQL_TICKET_MAX).  Returns 0, or -1
 * (printed) when the file cannot be read or its first line is not a JWT's
 * characters (base64url and dots), 1 to MQL_TICKET_MAX bytes.
 */
int cli_read_ticket(const char *path, char *buf, size_t size);

/*
 * cli_client(c, subs, nsubs): an MQTT 5 client for c's broker and client
 * id with the given subscriptions, clean start and session expiry 0.  NULL
 * (printed) on failure.
 */
struct mqtt *cli_client(const struct cli *c, const struct mqtt_sub *subs,
    size_t nsubs);

/*
 * cli_signals_init(): route SIGINT, SIGTERM and SIGCHLD into io/loop's
 * self-pipe, and ignore SIGPIPE and SIGTTOU.  Returns 0, or -1 (printed).
 */
int cli_signals_init(void);

/* cli_signals_restore(): the dispositions and mask mqlock started with,
 * for a child about to exec COMMAND. */
void cli_signals_restore(void);

/*
 * cli_wait(m, deadline): sleep until the client has an item, a signal
 * arrived or the CLOCK_MONOTONIC ms deadline passed (-1: none).  Returns
 * the signal number that arrived (SIGINT, SIGTERM, SIGCHLD), else 0.
 */
int cli_wait(struct mqtt *m, int64_t deadline);

/*
 * cli_json_parse(payload, len): a JSON object from an MQTT payload, or NULL
 * if it is not one (or longer than 64 KiB).  Free with cJSON_Delete().
 * cli_json_str(o, name): the string member, or NULL.
 * cli_json_int(o, name, &out): the integer member (exact in a double);
 * returns 0, or -1 if absent or not such a number.
 */
struct cJSON *cli_json_parse(const void *payload, size_t len);
const char *cli_json_str(const struct cJSON *o, const char *name);
int cli_json_int(const struct cJSON *o, const char *name, int64_t *out);

/* Subcommands; each returns the process exit status. */
int cmd_acquire(const struct cli *c, const struct acquire_args *a);
int cmd_status(const struct cli *c, const char *lock);
int cmd_watch(const struct cli *c);

#endif
