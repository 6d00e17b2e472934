/*
 * mqlock: the command-line client.  Parses the command line and runs one
 * subcommand (acquire.c, show.c); the helpers they share live here too.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/codec.h"
#include "io/clock.h"
#include "io/log.h"
#include "io/loop.h"
#include "io/secret.h"
#include "mqlock/cli.h"

static const char usage_text[] =
    "usage: mqlock [--broker URI] [--prefix P] [--username U] "
    "[--password-file F]\n"
    "              [--keepalive S] [--client-id ID]\n"
    "              [--cafile F] [--certfile F --keyfile F] COMMAND\n"
    "       mqlock [flags] acquire LOCK [--wait SECONDS] [--user NAME]\n"
    "              [--ticket-file F] -- COMMAND [ARGS...]\n"
    "       mqlock [flags] status [LOCK]\n"
    "       mqlock [flags] watch\n"
    "       mqlock --help | --version\n";

static const char help_text[] =
    "\n"
    "Edit locks over MQTT, granted by the mqlockd coordinator.\n"
    "\n"
    "  acquire LOCK -- COMMAND  wait for LOCK, run COMMAND while holding it,\n"
    "                           release it when COMMAND ends\n"
    "      --wait SECONDS       give up after SECONDS (0: only if free now)\n"
    "      --user NAME          the name others see (default: $USER)\n"
    "      --ticket-file F      send the ticket (JWT) on F's first line with\n"
    "                           every acquire; needs --client-id, the id\n"
    "                           the ticket names (its client claim)\n"
    "  status [LOCK]            holders and queues of locks in use (or LOCK)\n"
    "  watch                    print lock changes as they happen\n"
    "\n"
    "  --broker URI             default " CLI_DEFAULT_BROKER
    " (schemes below)\n"
    "  --prefix P               topic prefix, default " CLI_DEFAULT_PREFIX "\n"
    "  --reply-prefix P         mqlockd's --reply-prefix, default " CLI_DEFAULT_REPLY_PREFIX
    "\n"
    "  --username U             MQTT user name\n"
    "  --password-file F        first line of F is the MQTT password\n"
    "  --keepalive S            MQTT keepalive in seconds, default 10\n"
    "  --client-id ID           MQTT client id (default: mqlock-<random>);\n"
    "                           with --ticket-file, the ticket's client\n"
    "  --cafile F               CA certificates that sign a TLS broker's\n"
    "                           certificate (default: the system's store)\n"
    "  --certfile F, --keyfile F  a client certificate and its key, for\n"
    "                           TLS brokers that ask for one\n"
    "\n"
    "Exit status: COMMAND's own once the lock is confirmed to have stayed\n"
    "ours; 64 usage, 69 broker unreachable, 70 lock lost while COMMAND ran\n"
    "(or not confirmed when it ended), 71 COMMAND could not be started,\n"
    "75 busy or --wait ran out.\n";

/* MQTT's keepalive is a 16-bit number of seconds. */
#define KEEPALIVE_MAX 65535

static int sig_fd = -1;

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
print_help(void)
{
	char schemes[128], tls[64];

	mqtt_scheme_list(schemes, sizeof(schemes), 0);
	mqtt_scheme_list(tls, sizeof(tls), 1);
	fputs(usage_text, stdout);
	fputs(help_text, stdout);
	printf("\nBroker URIs start with %s; with %s the connection uses "
	       "TLS.\n",
	    schemes, tls);
}

/* Say what is wrong with the command line; returns EXIT_USAGE. */
static int
usage(const char *fmt, ...)
{
	va_list ap;

	fputs("mqlock: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage_text, stderr);
	return EXIT_USAGE;
}

int
cli_random_hex(char *buf, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[64];
	size_t got = 0, i;

	if (n > 2 * sizeof(raw)) {
		fprintf(stderr, "mqlock: too many random digits asked for\n");
		return -1;
	}
	while (got < (n + 1) / 2) {
		ssize_t r = getrandom(raw + got, (n + 1) / 2 - got, 0);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			fprintf(stderr, "mqlock: getrandom: %s\n",
			    strerror(errno));
			return -1;
		}
		got += (size_t)r;
	}
	for (i = 0; i < n; i++)
		buf[i] = hex[(raw[i / 2] >> (i % 2 ? 0 : 4)) & 0xf];
	buf[n] = '\0';
	return 0;
}

int
cli_request_topic(const struct cli *c, const char *lock, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s/%s/request/%s", c->prefix, lock,
	    c->client_id);

	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "mqlock: topic too long\n");
		return -1;
	}
	return 0;
}

int
cli_read_ticket(const char *path, char *buf, size_t size)
{
	char err[PATH_MAX + 128];
	int n = secret_read_line(path, buf, size, err, sizeof(err));

	if (n < 0) {
		fprintf(stderr, "mqlock: ticket: %s\n", err);
		return -1;
	}
	if (n > MQL_TICKET_MAX ||
	    strspn(buf,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789-_.") != (size_t)n) {
		fprintf(stderr,
		    "mqlock: ticket: the first line of %s is not a ticket "
		    "(at most %d bytes of base64url and dots)\n",
		    path, MQL_TICKET_MAX);
		explicit_bzero(buf, size);
		return -1;
	}
	return 0;
}

struct mqtt *
cli_client(const struct cli *c, const struct mqtt_sub *subs, size_t nsubs)
{
	struct mqtt_opts o;
	struct mqtt *m;

	memset(&o, 0, sizeof(o));
	o.uri = c->broker;
	o.client_id = c->client_id;
	o.username = c->username;
	o.password = c->have_password ? c->password : NULL;
	o.keepalive = c->keepalive;
	o.clean_start = 1;
	o.session_expiry = 0;
	o.subs = subs;
	o.nsubs = nsubs;
	o.cafile = c->cafile;
	o.certfile = c->certfile;
	o.keyfile = c->keyfile;
	if ((m = mqtt_new(&o)) == NULL)
		fprintf(stderr, "mqlock: cannot set up a client for %s\n",
		    c->broker);
	return m;
}

int
cli_signals_init(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGCHLD};

	/*
	 * A dead broker socket must not kill us (SIGPIPE); we hand the
	 * terminal to COMMAND and take it back from the background (SIGTTOU).
	 */
	sig_fd = loop_signals(sigs, sizeof(sigs) / sizeof(sigs[0]));
	if (sig_fd < 0 || loop_ignore(SIGTTOU) != 0) {
		fprintf(stderr, "mqlock: cannot set up signal handling\n");
		return -1;
	}
	return 0;
}

void
cli_signals_restore(void)
{
	loop_restore();
}

int
cli_wait(struct mqtt *m, int64_t deadline)
{
	int fds[2] = {sig_fd, m != NULL ? mqtt_wake_fd(m) : -1}, ready[2];
	int64_t timeout = -1;

	if (deadline >= 0) {
		timeout = deadline - clock_mono_ms();
		if (timeout < 0)
			timeout = 0;
	}
	(void)loop_wait(fds, 2, timeout, ready);
	return loop_next_signal(sig_fd);
}

struct cJSON *
cli_json_parse(const void *payload, size_t len)
{
	cJSON *o;

	if (len > 65536)
		return NULL;
	o = cJSON_ParseWithLength(payload, len);
	if (o != NULL && !cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

const char *
cli_json_str(const struct cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int
cli_json_int(const struct cJSON *o, const char *name, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	double d;

	if (!cJSON_IsNumber(v))
		return -1;
	d = v->valuedouble;
	/* Beyond 2^53 a double is no longer an exact integer. */
	if (d != d || d < -9007199254740991.0 || d > 9007199254740991.0 ||
	    d != (double)(int64_t)d)
		return -1;
	*out = (int64_t)d;
	return 0;
}

/* Why s is not a valid lock id, in words; NULL if it is one. */
static const char *
lock_id_problem(const char *s)
{
	size_t len = strlen(s), i;

	if (codec_lock_id_valid(s, len))
		return NULL;
	if (len == 0)
		return "it is empty";
	if (len > MQL_LOCK_ID_MAX)
		return "it is longer than " MQL_STR(MQL_LOCK_ID_MAX) " bytes";
	if (s[0] == '_' || s[0] == '$')
		return "it starts with '_' or '$' (reserved)";
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '/' || ch == '+' || ch == '#')
			return "it contains '/', '+' or '#'";
		if (ch < 0x20 || ch == 0x7f)
			return "it contains a control character";
	}
	if (!codec_utf8_valid(s, len))
		return "it is not valid UTF-8";
	return "it breaks the naming rules";
}

enum flag_scope { F_COMMON, F_ACQUIRE };

struct flag {
	const char *name;
	enum flag_scope scope;
	size_t slot; /* index into the values array */
};

enum {
	V_BROKER,
	V_PREFIX,
	V_REPLY_PREFIX,
	V_USERNAME,
	V_PASSWORD_FILE,
	V_KEEPALIVE,
	V_CLIENT_ID,
	V_CAFILE,
	V_CERTFILE,
	V_KEYFILE,
	V_WAIT,
	V_USER,
	V_TICKET_FILE,
	V_COUNT
};

static const struct flag flags[] = {
    {"--broker", F_COMMON, V_BROKER},
    {"--prefix", F_COMMON, V_PREFIX},
    {"--reply-prefix", F_COMMON, V_REPLY_PREFIX},
    {"--username", F_COMMON, V_USERNAME},
    {"--password-file", F_COMMON, V_PASSWORD_FILE},
    {"--keepalive", F_COMMON, V_KEEPALIVE},
    {"--client-id", F_COMMON, V_CLIENT_ID},
    {"--cafile", F_COMMON, V_CAFILE},
    {"--certfile", F_COMMON, V_CERTFILE},
    {"--keyfile", F_COMMON, V_KEYFILE},
    {"--wait", F_ACQUIRE, V_WAIT},
    {"--user", F_ACQUIRE, V_USER},
    {"--ticket-file", F_ACQUIRE, V_TICKET_FILE},
};

#define MAX_OPERANDS 3 /* verb + its operands, + one to detect extras */

static int
apply_common(struct cli *c, const char **v)
{
	char schemes[128];
	size_t i;

	if (v[V_BROKER] != NULL)
		c->broker = v[V_BROKER];
	if (mqtt_scheme(c->broker) == NULL) {
		mqtt_scheme_list(schemes, sizeof(schemes), 0);
		return usage("bad --broker '%s': it must start with %s",
		    c->broker, schemes);
	}
	if (v[V_PREFIX] != NULL)
		c->prefix = v[V_PREFIX];
	if (!codec_prefix_valid(c->prefix))
		return usage("bad --prefix '%s': 1-%d bytes of topic levels "
			     "without wildcards or a leading/trailing '/'",
		    c->prefix, MQL_PREFIX_MAX);
	if (v[V_REPLY_PREFIX] != NULL)
		c->reply_prefix = v[V_REPLY_PREFIX];
	if (c->reply_prefix[0] == '\0' ||
	    strpbrk(c->reply_prefix, "+#") != NULL ||
	    strlen(c->reply_prefix) > MQL_PREFIX_MAX ||
	    !codec_utf8_valid(c->reply_prefix, strlen(c->reply_prefix)))
		return usage("bad --reply-prefix '%s': 1-%d bytes of UTF-8 "
			     "without wildcards",
		    c->reply_prefix, MQL_PREFIX_MAX);
	c->username = v[V_USERNAME];
	if (v[V_KEEPALIVE] != NULL) {
		char *end;
		long k;

		errno = 0;
		k = strtol(v[V_KEEPALIVE], &end, 10);
		if (errno != 0 || end == v[V_KEEPALIVE] || *end != '\0' ||
		    k < 1 || k > KEEPALIVE_MAX)
			return usage("bad --keepalive '%s': whole seconds, "
				     "1 to %d",
			    v[V_KEEPALIVE], KEEPALIVE_MAX);
		c->keepalive = (int)k;
	}
	if (v[V_CLIENT_ID] != NULL) {
		size_t len = strlen(v[V_CLIENT_ID]);

		if (!codec_client_id_valid(v[V_CLIENT_ID], len))
			return usage("bad --client-id '%s': 1-%d bytes of "
				     "UTF-8, no '/', '+', '#', control "
				     "characters or leading '$'",
			    v[V_CLIENT_ID], MQL_CLIENT_ID_MAX);
		memcpy(c->client_id, v[V_CLIENT_ID], len + 1);
	} else {
		memcpy(c->client_id, "mqlock-", 7);
		if (cli_random_hex(c->client_id + 7, 16) == -1)
			return EXIT_SOFTWARE;
	}
	if (v[V_PASSWORD_FILE] != NULL) {
		char err[PATH_MAX + 128];

		if (secret_read_line(v[V_PASSWORD_FILE], c->password,
			sizeof(c->password), err, sizeof(err)) < 0) {
			fprintf(stderr, "mqlock: %s\n", err);
			return EXIT_USAGE;
		}
		c->have_password = 1;
	}
	if ((v[V_CERTFILE] == NULL) != (v[V_KEYFILE] == NULL))
		return usage("--certfile and --keyfile go together");
	c->cafile = v[V_CAFILE];
	c->certfile = v[V_CERTFILE];
	c->keyfile = v[V_KEYFILE];
	for (i = V_CAFILE; i <= V_KEYFILE; i++) {
		if (v[i] != NULL && access(v[i], R_OK) != 0)
			return usage("cannot read '%s': %s", v[i],
			    strerror(errno));
	}
	return 0;
}

static int
apply_acquire(struct acquire_args *a, const char **v)
{
	const char *problem = lock_id_problem(a->lock);

	if (problem != NULL) {
		fprintf(stderr, "mqlock: bad lock id '%s': %s\n", a->lock,
		    problem);
		return EXIT_USAGE;
	}
	if (a->argv == NULL || a->argv[0] == NULL)
		return usage("%s needs -- COMMAND to run", "acquire");
	if (v[V_WAIT] != NULL &&
	    clock_parse_seconds(v[V_WAIT], &a->wait_ms) == -1)
		return usage("bad --wait '%s': seconds from 0 to %d, at most "
			     "three decimals",
		    v[V_WAIT], CLOCK_SECONDS_MAX);
	a->user = v[V_USER];
	if (a->user == NULL && (a->user = getenv("USER")) == NULL)
		a->user = "";
	if (strlen(a->user) > MQL_USER_MAX ||
	    !codec_utf8_valid(a->user, strlen(a->user)))
		return usage("bad --user '%s': at most %d bytes of UTF-8",
		    a->user, MQL_USER_MAX);
	a->ticket_file = v[V_TICKET_FILE];
	if (a->ticket_file != NULL) {
		char ticket[MQL_TICKET_SZ + 1];
		int rc =
		    cli_read_ticket(a->ticket_file, ticket, sizeof(ticket));

		explicit_bzero(ticket, sizeof(ticket));
		if (rc != 0)
			return EXIT_USAGE;
		/* A ticket is good only for the client id it names. */
		if (v[V_CLIENT_ID] == NULL)
			return usage(
			    "--ticket-file needs --client-id: the client "
			    "id the ticket names");
	}
	return 0;
}

/* What a subcommand gets: the common flags, its operands (after the verb)
 * and every flag value. */
struct invocation {
	struct cli *c;
	const char *const *ops;
	size_t nops;
	const char **values;
	char **command; /* after "--", or NULL */
};

static int
run_acquire(const struct invocation *v)
{
	struct acquire_args a = {v->ops[0], -1, NULL, NULL, v->command};
	int rc;

	if ((rc = apply_acquire(&a, v->values)) != 0)
		return rc;
	return cmd_acquire(v->c, &a);
}

static int
run_status(const struct invocation *v)
{
	const char *lock = v->nops > 0 ? v->ops[0] : NULL;
	const char *problem = lock != NULL ? lock_id_problem(lock) : NULL;

	if (problem != NULL) {
		fprintf(stderr, "mqlock: bad lock id '%s': %s\n", lock,
		    problem);
		return EXIT_USAGE;
	}
	return cmd_status(v->c, lock);
}

static int
run_watch(const struct invocation *v)
{
	return cmd_watch(v->c);
}

/* Subcommands: name, how many operands they take, and the handler. */
struct verb {
	const char *name;
	size_t min_ops;
	size_t max_ops;
	int takes_command; /* "-- COMMAND..." */
	int (*run)(const struct invocation *v);
};

static const struct verb verbs[] = {
    {"acquire", 1, 1, 1, run_acquire},
    {"status", 0, 1, 0, run_status},
    {"watch", 0, 0, 0, run_watch},
};

int
main(int argc, char **argv)
{
	const char *values[V_COUNT] = {NULL};
	const char *ops[MAX_OPERANDS];
	struct cli c = {
	    .broker = CLI_DEFAULT_BROKER,
	    .prefix = CLI_DEFAULT_PREFIX,
	    .reply_prefix = CLI_DEFAULT_REPLY_PREFIX,
	    .keepalive = CLI_DEFAULT_KEEPALIVE,
	};
	struct invocation inv;
	char **command = NULL;
	const struct verb *verb = NULL;
	size_t nops = 0, i;
	int k, rc, acquire_flags = 0;

	for (k = 1; k < argc; k++) {
		const char *arg = argv[k], *eq;
		size_t namelen;

		if (strcmp(arg, "--") == 0) {
			command = &argv[k + 1];
			break;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			print_help();
			return 0;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("mqlock %s\n", MQLOCK_VERSION);
			return 0;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			if (nops == MAX_OPERANDS)
				return usage("unexpected argument '%s'", arg);
			ops[nops++] = arg;
			continue;
		}
		/* --flag VALUE or --flag=VALUE */
		eq = strchr(arg, '=');
		namelen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
			if (strlen(flags[i].name) == namelen &&
			    strncmp(flags[i].name, arg, namelen) == 0)
				break;
		}
		if (i == sizeof(flags) / sizeof(flags[0]))
			return usage("unknown option '%s'", arg);
		if (eq != NULL)
			values[flags[i].slot] = eq + 1;
		else if (k + 1 < argc)
			values[flags[i].slot] = argv[++k];
		else
			return usage("%s needs a value", flags[i].name);
		if (flags[i].scope == F_ACQUIRE)
			acquire_flags = 1;
	}

	if (nops == 0)
		return usage("%s", "no command given");
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(ops[0], verbs[i].name) == 0)
			verb = &verbs[i];
	}
	if (verb == NULL)
		return usage("unknown command '%s'", ops[0]);
	if (nops - 1 < verb->min_ops)
		return usage("%s needs more arguments", verb->name);
	if (nops - 1 > verb->max_ops)
		return usage("unexpected argument '%s'",
		    ops[verb->max_ops + 1]);
	if (!verb->takes_command && command != NULL)
		return usage("%s takes no -- COMMAND", verb->name);
	if (!verb->takes_command && acquire_flags)
		return usage(
		    "--wait, --user and --ticket-file are for acquire, "
		    "not %s",
		    verb->name);

	/* The CLI speaks for itself; the adapter's warnings stay quiet. */
	log_set_level(LOG_LEVEL_ERROR);
	if ((rc = apply_common(&c, values)) != 0)
		return rc;
	if (cli_signals_init() == -1) {
		rc = EXIT_SOFTWARE;
		goto out;
	}
	inv.c = &c;
	inv.ops = ops + 1;
	inv.nops = nops - 1;
	inv.values = values;
	inv.command = command;
	rc = verb->run(&inv);
out:
	explicit_bzero(c.password, sizeof(c.password));
	return rc;
}
