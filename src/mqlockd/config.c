#include "mqlockd/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/codec.h"
#include "io/clock.h"
#include "io/etcd.h"
#include "io/mqtt.h"
#include "io/siphash.h"

enum type {
	T_STRING,
	T_SECONDS,
	T_COUNT,
	T_DECIMAL,
	T_LEVEL,
	T_FLAG,
	T_CHOICE, /* one of choices[], stored as that word (const char *) */
	T_KEY     /* a key file, read into a struct config_key */
};

struct flag {
	const char *name;
	enum type type;
	size_t offset;
	const char *def; /* default, as it would be typed */
	int64_t min_ms;  /* range: ms for T_SECONDS, x 1000 for T_DECIMAL, */
	int64_t max_ms;  /* the number itself for T_COUNT */
	const char *help;
	const char *const *choices; /* T_CHOICE: the words, NULL-terminated */
};

/* --idle-policy's words. */
static const char *const idle_policies[] = {"contended", "always", NULL};

/* T_LEVEL stores an int into an enum field. */
_Static_assert(sizeof(enum log_level) == sizeof(int),
    "enum log_level is not int-sized");

#define DAY_MS 86400000LL

/* One table entry; CHOICE for a T_CHOICE flag with its list of words. */
/* clang-format off */
#define OPT(name, type, field, def, min, max, help) \
	{name, type, offsetof(struct config, field), def, min, max, help, NULL}
#define CHOICE(name, field, def, min, max, help, words) \
	{name, T_CHOICE, offsetof(struct config, field), def, min, max, help, \
	    words}
/* clang-format on */

static const struct flag flags[] = {
    OPT("broker", T_STRING, broker, "tcp://127.0.0.1:1883", 0, 0,
	"broker URI: scheme://host:port"),
    OPT("prefix", T_STRING, prefix, "locks", 0, 0, "topic prefix"),
    OPT("db", T_STRING, db, "./mqlock.db", 0, 0, "sqlite journal"),
    OPT("idle-timeout", T_SECONDS, idle_timeout_ms, "600", 1, 7 * DAY_MS,
	"seconds without activity before a lock is revoked"),
    OPT("idle-warning", T_SECONDS, idle_warning_ms, "60", 0, 7 * DAY_MS,
	"seconds before the idle deadline to warn the holder"),
    CHOICE("idle-policy", idle_policy, "contended", 0, 0,
	"revoke an idle holder only while a live client waits, or always",
	idle_policies),
    OPT("grace", T_SECONDS, grace_ms, "10", 0, DAY_MS,
	"seconds a disconnected client keeps its locks"),
    OPT("keepalive", T_SECONDS, keepalive_ms, "10", 1, 65535000,
	"MQTT keepalive of the coordinator's connection"),
    OPT("offline-exit", T_SECONDS, offline_exit_ms, "60", 0, 7 * DAY_MS,
	"exit 1 after this long without the broker, for a supervisor to "
	"restart mqlockd (0: never)"),
    OPT("max-waiters", T_COUNT, max_waiters, MQL_STR(MQL_WAITERS_PER_LOCK), 1,
	MQL_WAITERS_PER_LOCK, "waiters per lock"),
    OPT("max-locks-per-client", T_COUNT, max_locks_per_client,
	MQL_STR(MQL_LOCKS_PER_CLIENT), 1, MQL_LOCKS_PER_CLIENT,
	"locks one client may hold or wait for"),
    OPT("max-clients", T_COUNT, max_clients, "100000", 1, 100000000,
	"clients holding or waiting for locks"),
    OPT("max-clients-per-user", T_COUNT, max_clients_per_user, "16", 1,
	MQL_CLIENTS_PER_USER,
	"client ids one ticket user may hold or wait with at once"),
    OPT("max-locks", T_COUNT, max_locks, "2000000", 1, 100000000,
	"locks held or awaited"),
    OPT("rate", T_DECIMAL, rate_milli, "50", 1, 100000000,
	"requests per second per client id (bursts of up to 10 s worth)"),
    OPT("reply-prefix", T_STRING, reply_prefix, "replies/", 0, 0,
	"MQTT 5 response topics must start with this"),
    OPT("client-id", T_STRING, client_id, "mqlockd", 0, 0,
	"MQTT client id (one persistent session)"),
    OPT("username", T_STRING, username, NULL, 0, 0, "MQTT username"),
    OPT("password-file", T_STRING, password_file, NULL, 0, 0,
	"file whose first line is the MQTT password"),
    OPT("cafile", T_STRING, cafile, NULL, 0, 0,
	"CA certificates for TLS brokers (default: the system's)"),
    OPT("certfile", T_STRING, certfile, NULL, 0, 0,
	"client certificate for TLS brokers"),
    OPT("keyfile", T_STRING, keyfile, NULL, 0, 0, "client key for TLS brokers"),
    OPT("ticket-key", T_KEY, ticket_secret, NULL, 0, 0,
	"file with the HS256 secret of tickets: its bytes less one final "
	"newline, at least " MQL_STR(
	    CONFIG_TICKET_KEY_MIN) " bytes, not writable by the group nor "
				   "open to others (chmod 640)"),
    OPT("require-ticket", T_FLAG, require_ticket, NULL, 0, 0,
	"every acquire needs a valid ticket (needs --ticket-key)"),
    OPT("log-level", T_LEVEL, log_level, "info", 0, 0,
	"error, warn, info or debug"),
    OPT("check", T_FLAG, check, NULL, 0, 0,
	"validate the flags and the journal, then exit"),
    OPT("etcd", T_STRING, etcd, NULL, 0, 0,
	"high availability: etcd endpoints, http(s)://host:port[,...]; the "
	"journal and the leadership are kept there instead of --db, and "
	"several mqlockd may run, one of them leading"),
    OPT("etcd-prefix", T_STRING, etcd_prefix, NULL, 0, 0,
	"key prefix in etcd (default mqlock/<--prefix>/)"),
    OPT("lease", T_COUNT, lease_s, "5", 2, 3600,
	"whole seconds of the leader's etcd lease: a standby takes over "
	"within this plus 3 s of the leader's end; the leader stops a fifth "
	"of it before its lease can have expired"),
    OPT("etcd-timeout", T_SECONDS, etcd_timeout_ms, "2", 100, 60000,
	"deadline of each request to etcd (at most a quarter of --lease)"),
    OPT("etcd-id", T_STRING, etcd_id, NULL, 0, 0,
	"this mqlockd's name among the candidates, unique (default "
	"<hostname>-<pid>)"),
    OPT("etcd-cafile", T_STRING, etcd_cafile, NULL, 0, 0,
	"CA certificates for https:// endpoints (default: the system's)"),
    OPT("etcd-certfile", T_STRING, etcd_certfile, NULL, 0, 0,
	"client certificate for etcd"),
    OPT("etcd-keyfile", T_STRING, etcd_keyfile, NULL, 0, 0,
	"its private key (default: in --etcd-certfile)"),
    OPT("etcd-user", T_STRING, etcd_user, NULL, 0, 0, "etcd user"),
    OPT("etcd-password-file", T_STRING, etcd_password_file, NULL, 0, 0,
	"file whose first line is the etcd user's password"),
    OPT("etcd-max-txn-ops", T_COUNT, etcd_max_txn_ops,
	MQL_STR(ETCD_DEFAULT_MAX_TXN_OPS), 16, 100000,
	"the cluster's --max-txn-ops: operations in one transaction"),
    OPT("etcd-max-request-bytes", T_COUNT, etcd_max_request_bytes,
	MQL_STR(ETCD_DEFAULT_MAX_REQUEST_BYTES_N), 65536, 1073741824,
	"the cluster's --max-request-bytes"),
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

static int
set_choice(const struct flag *o, char *field, const char *v, char *err,
    size_t errsz)
{
	size_t used = 0;
	char words[128];
	int i;

	for (i = 0; o->choices[i] != NULL; i++) {
		if (strcmp(v, o->choices[i]) == 0) {
			memcpy(field, &o->choices[i], sizeof(o->choices[i]));
			return 0;
		}
	}
	words[0] = '\0';
	for (i = 0; o->choices[i] != NULL && used < sizeof(words); i++) {
		int n = snprintf(words + used, sizeof(words) - used, "%s%s",
		    i > 0 ? " or " : "", o->choices[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	snprintf(err, errsz, "--%s: '%s' is not %s", o->name, v, words);
	return -1;
}

static int
set_key(const struct flag *o, struct config_key *k, const char *path, char *err,
    size_t errsz)
{
	char why[256 + 64];
	int n = secret_read_key(path, CONFIG_TICKET_KEY_MIN, k->key,
	    sizeof(k->key), why, sizeof(why));

	if (n < 0) {
		snprintf(err, errsz, "--%s: %s", o->name, why);
		return -1;
	}
	k->path = path;
	k->len = (size_t)n;
	return 0;
}

static int
set_value(struct config *c, const struct flag *o, const char *v, char *err,
    size_t errsz)
{
	char *field = (char *)c + o->offset;
	int64_t ms;
	enum log_level level;

	switch (o->type) {
	case T_STRING:
		memcpy(field, &v, sizeof(v));
		return 0;
	case T_SECONDS:
		if (clock_parse_seconds(v, &ms) != 0 || ms < o->min_ms ||
		    ms > o->max_ms) {
			snprintf(err, errsz,
			    "--%s: '%s' is not a number of seconds from %g to %g",
			    o->name, v, (double)o->min_ms / 1000.0,
			    (double)o->max_ms / 1000.0);
			return -1;
		}
		memcpy(field, &ms, sizeof(ms));
		return 0;
	case T_COUNT:
	case T_DECIMAL:
		if (clock_parse_seconds(v, &ms) != 0 ||
		    (o->type == T_COUNT && ms % 1000 != 0))
			ms = -1;
		else if (o->type == T_COUNT)
			ms /= 1000;
		if (ms < o->min_ms || ms > o->max_ms) {
			snprintf(err, errsz,
			    "--%s: '%s' is not a %s from %g to %g", o->name, v,
			    o->type == T_COUNT ? "whole number" : "number",
			    o->type == T_COUNT ? (double)o->min_ms
					       : (double)o->min_ms / 1000.0,
			    o->type == T_COUNT ? (double)o->max_ms
					       : (double)o->max_ms / 1000.0);
			return -1;
		}
		memcpy(field, &ms, sizeof(ms));
		return 0;
	case T_LEVEL:
		if (log_parse_level(v, &level) != 0) {
			snprintf(err, errsz,
			    "--%s: '%s' is not error, warn, info or debug",
			    o->name, v);
			return -1;
		}
		memcpy(field, &level, sizeof(level));
		return 0;
	case T_CHOICE:
		return set_choice(o, field, v, err, errsz);
	case T_KEY:
		return set_key(o, (struct config_key *)field, v, err, errsz);
	case T_FLAG:
	default:
		*(bool *)field = true;
		return 0;
	}
}

static const struct flag *
find_flag(const char *arg, const char **inline_value)
{
	const char *name = arg + 2;
	const char *eq = strchr(name, '=');
	size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);

	*inline_value = eq != NULL ? eq + 1 : NULL;
	for (size_t i = 0; i < NFLAGS; i++) {
		if (strlen(flags[i].name) == n &&
		    strncmp(flags[i].name, name, n) == 0)
			return &flags[i];
	}
	return NULL;
}

/* Which flags the command line named, by index into flags[]. */
static bool
given(const bool *named, const char *name)
{
	for (size_t i = 0; i < NFLAGS; i++)
		if (strcmp(flags[i].name, name) == 0)
			return named[i];
	return false;
}

/* 1..max printable ASCII bytes without spaces (store_etcd's key rule). */
static bool
key_text(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f)
			return false;
	return true;
}

/*
 * The high-availability flags: only with --etcd, never with --db, and
 * defaults for the key prefix and the candidate's id.
 */
static int
validate_etcd(struct config *c, const bool *named, char *err, size_t errsz)
{
	static const char *const only[] = {"etcd-prefix", "lease",
	    "etcd-timeout", "etcd-id", "etcd-cafile", "etcd-certfile",
	    "etcd-keyfile", "etcd-user", "etcd-password-file",
	    "etcd-max-txn-ops", "etcd-max-request-bytes"};
	struct etcd_opts eo = {0};
	struct etcd *e;
	char host[64], why[256];

	if (c->etcd == NULL) {
		for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++) {
			if (given(named, only[i])) {
				snprintf(err, errsz, "--%s needs --etcd",
				    only[i]);
				return -1;
			}
		}
		return 0;
	}
	if (given(named, "db")) {
		snprintf(err, errsz,
		    "--db and --etcd exclude each other: the journal is a "
		    "sqlite file (--db) or in etcd (--etcd), not both");
		return -1;
	}
	if (c->etcd_password_file != NULL && c->etcd_user == NULL) {
		snprintf(err, errsz, "--etcd-password-file needs --etcd-user");
		return -1;
	}
	if (c->etcd_user != NULL && c->etcd_password_file == NULL) {
		snprintf(err, errsz, "--etcd-user needs --etcd-password-file");
		return -1;
	}
	if (c->etcd_keyfile != NULL && c->etcd_certfile == NULL) {
		snprintf(err, errsz, "--etcd-keyfile needs --etcd-certfile");
		return -1;
	}
	/* The endpoints' syntax and the TLS files, without contacting etcd. */
	eo.endpoints = c->etcd;
	eo.cafile = c->etcd_cafile;
	eo.certfile = c->etcd_certfile;
	eo.keyfile = c->etcd_keyfile;
	if ((e = etcd_new(&eo, why, sizeof(why))) == NULL) {
		snprintf(err, errsz, "--etcd: %s", why);
		return -1;
	}
	etcd_free(e);
	if (c->etcd_prefix == NULL) {
		snprintf(c->etcd_prefix_buf, sizeof(c->etcd_prefix_buf),
		    "mqlock/%s/", c->prefix);
		if (!key_text(c->etcd_prefix_buf, LEADER_PREFIX_MAX)) {
			snprintf(err, errsz,
			    "--prefix '%s' makes no etcd key prefix (printable "
			    "ASCII without spaces): give --etcd-prefix",
			    c->prefix);
			return -1;
		}
		c->etcd_prefix = c->etcd_prefix_buf;
	}
	if (!key_text(c->etcd_prefix, LEADER_PREFIX_MAX)) {
		snprintf(err, errsz,
		    "--etcd-prefix: '%s' must be 1-%d bytes of printable ASCII "
		    "without spaces",
		    c->etcd_prefix, LEADER_PREFIX_MAX);
		return -1;
	}
	if (c->etcd_id == NULL) {
		/* Unique among live candidates: one pid per host at a time. */
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "mqlockd");
		host[sizeof(host) - 1] = '\0';
		snprintf(c->etcd_id_buf, sizeof(c->etcd_id_buf), "%s-%ld", host,
		    (long)getpid());
		for (char *p = c->etcd_id_buf; *p != '\0'; p++)
			if (*p <= ' ' || *p >= 0x7f)
				*p = '_';
		c->etcd_id = c->etcd_id_buf;
	}
	if (!key_text(c->etcd_id, LEADER_ID_MAX)) {
		snprintf(err, errsz,
		    "--etcd-id: '%s' must be 1-%d bytes of printable ASCII "
		    "without spaces",
		    c->etcd_id, LEADER_ID_MAX);
		return -1;
	}
	return 0;
}

static int
validate(struct config *c, const bool *named, char *err, size_t errsz)
{
	if (!codec_prefix_valid(c->prefix)) {
		snprintf(err, errsz,
		    "--prefix: '%s' must be 1-%d bytes of topic levels without"
		    " wildcards or empty levels",
		    c->prefix, MQL_PREFIX_MAX);
		return -1;
	}
	if (!codec_client_id_valid(c->client_id, strlen(c->client_id))) {
		snprintf(err, errsz,
		    "--client-id: '%s' is not a valid client id", c->client_id);
		return -1;
	}
	if (mqtt_scheme(c->broker) == NULL) {
		char schemes[128];

		mqtt_scheme_list(schemes, sizeof(schemes), 0);
		snprintf(err, errsz, "--broker: '%s' must start with %s",
		    c->broker, schemes);
		return -1;
	}
	if (c->reply_prefix[0] == '\0' ||
	    strpbrk(c->reply_prefix, "+#") != NULL ||
	    strlen(c->reply_prefix) > MQL_PREFIX_MAX ||
	    !codec_utf8_valid(c->reply_prefix, strlen(c->reply_prefix))) {
		snprintf(err, errsz,
		    "--reply-prefix: '%s' must be 1-%d bytes without wildcards",
		    c->reply_prefix, MQL_PREFIX_MAX);
		return -1;
	}
	if (c->db[0] == '\0') {
		snprintf(err, errsz, "--db: empty path");
		return -1;
	}
	if (c->password_file != NULL && c->username == NULL) {
		snprintf(err, errsz, "--password-file needs --username");
		return -1;
	}
	if (c->require_ticket && c->ticket_key == NULL) {
		snprintf(err, errsz, "--require-ticket needs --ticket-key");
		return -1;
	}
	return validate_etcd(c, named, err, errsz);
}

enum config_result
config_parse(struct config *c, int argc, char **argv, char *err, size_t errsz)
{
	bool named[NFLAGS] = {false};

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NFLAGS; i++) {
		if (flags[i].def != NULL &&
		    set_value(c, &flags[i], flags[i].def, err, errsz) != 0)
			return CONFIG_ERROR;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value;
		const struct flag *o;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			config_usage(stdout);
			return CONFIG_EXIT;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("mqlockd %s (protocol %d)\n", MQLOCK_VERSION,
			    MQL_PROTOCOL_VERSION);
			return CONFIG_EXIT;
		}
		if (strncmp(arg, "--", 2) != 0 ||
		    (o = find_flag(arg, &value)) == NULL) {
			snprintf(err, errsz,
			    "unknown argument '%s' (see --help)", arg);
			return CONFIG_ERROR;
		}
		if (o->type == T_FLAG) {
			if (value != NULL) {
				snprintf(err, errsz, "--%s takes no value",
				    o->name);
				return CONFIG_ERROR;
			}
		} else if (value == NULL) {
			if (i + 1 >= argc) {
				snprintf(err, errsz, "--%s needs a value",
				    o->name);
				return CONFIG_ERROR;
			}
			value = argv[++i];
		}
		if (set_value(c, o, value, err, errsz) != 0)
			return CONFIG_ERROR;
		named[o - flags] = true;
	}
	/* The path too, for readers of the key file of their own. */
	c->ticket_key = c->ticket_secret.path;
	return validate(c, named, err, errsz) == 0 ? CONFIG_OK : CONFIG_ERROR;
}

int64_t
config_lease_margin_ms(const struct config *c)
{
	return c->lease_s * 1000 / 5;
}

void
config_lt(const struct config *c, struct lt_config *out)
{
	memset(out, 0, sizeof(*out));
	out->idle_timeout = c->idle_timeout_ms;
	out->idle_warning = c->idle_warning_ms;
	out->grace = c->grace_ms;
	out->waiters_per_lock = (size_t)c->max_waiters;
	out->locks_per_client = (size_t)c->max_locks_per_client;
	out->max_clients = (size_t)c->max_clients;
	out->max_locks = (size_t)c->max_locks;
	out->clients_per_user = (size_t)c->max_clients_per_user;
	out->idle_policy = strcmp(c->idle_policy, "always") == 0
	    ? LT_IDLE_ALWAYS
	    : LT_IDLE_CONTENDED;
	out->hasher = siphash_hasher();
}

void
config_usage(void *out)
{
	FILE *f = out;
	char schemes[128], tls[64];

	mqtt_scheme_list(schemes, sizeof(schemes), 0);
	mqtt_scheme_list(tls, sizeof(tls), 1);
	fprintf(f, "usage: mqlockd [--flag value]...\n\n");
	for (size_t i = 0; i < NFLAGS; i++) {
		const struct flag *o = &flags[i];
		static const char *const args[] = {[T_STRING] = " VALUE",
		    [T_SECONDS] = " S",
		    [T_COUNT] = " N",
		    [T_DECIMAL] = " N",
		    [T_LEVEL] = " LEVEL",
		    [T_FLAG] = "",
		    [T_CHOICE] = " ",
		    [T_KEY] = " FILE"};
		const char *arg = args[o->type];

		fprintf(f, "  --%s%s", o->name, arg);
		for (size_t k = 0; o->type == T_CHOICE && o->choices[k]; k++)
			fprintf(f, "%s%s", k > 0 ? "|" : "", o->choices[k]);
		fprintf(f, "\n      %s", o->help);
		if (o->def != NULL)
			fprintf(f, " (default %s)", o->def);
		fputc('\n', f);
	}
	fprintf(f,
	    "\nBroker URIs start with %s; with %s the connection uses TLS.\n",
	    schemes, tls);
}
