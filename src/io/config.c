#include "io/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/codec.h"
#include "io/clock.h"

enum type { T_STRING, T_SECONDS, T_COUNT, T_DECIMAL, T_LEVEL, T_FLAG };

struct option {
	const char *name;
	enum type type;
	size_t offset;
	const char *def; /* default, as it would be typed */
	int64_t min_ms;  /* range: ms for T_SECONDS, x 1000 for T_DECIMAL, */
	int64_t max_ms;  /* the number itself for T_COUNT */
	const char *help;
};

#define OFF(field) offsetof(struct config, field)
#define DAY_MS 86400000LL

static const struct option options[] = {
    {"broker", T_STRING, OFF(broker), "tcp://127.0.0.1:1883", 0, 0,
	"broker URI (tcp://, ssl://)"},
    {"prefix", T_STRING, OFF(prefix), "locks", 0, 0, "topic prefix"},
    {"db", T_STRING, OFF(db), "./mqlock.db", 0, 0, "sqlite journal"},
    {"idle-timeout", T_SECONDS, OFF(idle_timeout_ms), "600", 1, 7 * DAY_MS,
	"seconds without activity before a lock is revoked"},
    {"idle-warning", T_SECONDS, OFF(idle_warning_ms), "60", 0, 7 * DAY_MS,
	"seconds before the idle deadline to warn the holder"},
    {"grace", T_SECONDS, OFF(grace_ms), "10", 0, DAY_MS,
	"seconds a disconnected client keeps its locks"},
    {"keepalive", T_SECONDS, OFF(keepalive_ms), "10", 1, 65535000,
	"MQTT keepalive of the coordinator's connection"},
    {"max-waiters", T_COUNT, OFF(max_waiters), "1024", 1, MQL_WAITERS_PER_LOCK,
	"waiters per lock"},
    {"max-locks-per-client", T_COUNT, OFF(max_locks_per_client), "256", 1,
	MQL_LOCKS_PER_CLIENT, "locks one client may hold or wait for"},
    {"max-clients", T_COUNT, OFF(max_clients), "100000", 1, 100000000,
	"clients holding or waiting for locks"},
    {"max-locks", T_COUNT, OFF(max_locks), "2000000", 1, 100000000,
	"locks held or awaited"},
    {"rate", T_DECIMAL, OFF(rate_milli), "50", 1, 100000000,
	"requests per second per client id (bursts of up to 10 s worth)"},
    {"idle-policy", T_STRING, OFF(idle_policy), "contended", 0, 0,
	"always or contended: warn and revoke idle holders only while "
	"someone waits"},
    {"ticket-key", T_STRING, OFF(ticket_key), NULL, 0, 0,
	"file holding the HS256 secret that signs tickets"},
    {"require-ticket", T_FLAG, OFF(require_ticket), NULL, 0, 0,
	"every acquire must carry a valid ticket"},
    {"max-clients-per-user", T_COUNT, OFF(max_clients_per_user), "16", 1,
	MQL_CLIENTS_PER_USER,
	"client ids one verified user may hold or wait with"},
    {"offline-exit", T_SECONDS, OFF(offline_exit_ms), "60", 0, DAY_MS,
	"exit (status 1) after this long without the broker; 0: never"},
    {"reply-prefix", T_STRING, OFF(reply_prefix), "replies/", 0, 0,
	"MQTT 5 response topics must start with this"},
    {"client-id", T_STRING, OFF(client_id), "mqlockd", 0, 0,
	"MQTT client id (one persistent session)"},
    {"username", T_STRING, OFF(username), NULL, 0, 0, "MQTT username"},
    {"password-file", T_STRING, OFF(password_file), NULL, 0, 0,
	"file whose first line is the MQTT password"},
    {"cafile", T_STRING, OFF(cafile), NULL, 0, 0,
	"CA certificates for ssl:// brokers"},
    {"certfile", T_STRING, OFF(certfile), NULL, 0, 0,
	"client certificate for ssl:// brokers"},
    {"keyfile", T_STRING, OFF(keyfile), NULL, 0, 0,
	"client key for ssl:// brokers"},
    {"log-level", T_LEVEL, OFF(log_level), "info", 0, 0,
	"error, warn, info or debug"},
    {"check", T_FLAG, OFF(check), NULL, 0, 0,
	"validate the flags and the journal, then exit"},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static int
set_value(struct config *c, const struct option *o, const char *v, char *err,
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
	case T_FLAG:
	default:
		*(bool *)field = true;
		return 0;
	}
}

static const struct option *
find_option(const char *arg, const char **inline_value)
{
	const char *name = arg + 2;
	const char *eq = strchr(name, '=');
	size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);

	*inline_value = eq != NULL ? eq + 1 : NULL;
	for (size_t i = 0; i < NOPTIONS; i++) {
		if (strlen(options[i].name) == n &&
		    strncmp(options[i].name, name, n) == 0)
			return &options[i];
	}
	return NULL;
}

static int
validate(const struct config *c, char *err, size_t errsz)
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
	if (strncmp(c->broker, "tcp://", 6) != 0 &&
	    strncmp(c->broker, "mqtt://", 7) != 0 &&
	    strncmp(c->broker, "ssl://", 6) != 0 &&
	    strncmp(c->broker, "mqtts://", 8) != 0) {
		snprintf(err, errsz,
		    "--broker: '%s' must start with tcp://, mqtt://, ssl:// or"
		    " mqtts://",
		    c->broker);
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
	if (strcmp(c->idle_policy, "always") != 0 &&
	    strcmp(c->idle_policy, "contended") != 0) {
		snprintf(err, errsz,
		    "--idle-policy: '%s' must be always or contended",
		    c->idle_policy);
		return -1;
	}
	if (c->require_ticket && c->ticket_key == NULL) {
		snprintf(err, errsz, "--require-ticket needs --ticket-key");
		return -1;
	}
	if (c->password_file != NULL && c->username == NULL) {
		snprintf(err, errsz, "--password-file needs --username");
		return -1;
	}
	return 0;
}

enum config_result
config_parse(struct config *c, int argc, char **argv, char *err, size_t errsz)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NOPTIONS; i++) {
		if (options[i].def != NULL &&
		    set_value(c, &options[i], options[i].def, err, errsz) != 0)
			return CONFIG_ERROR;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value;
		const struct option *o;

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
		    (o = find_option(arg, &value)) == NULL) {
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
	}
	return validate(c, err, errsz) == 0 ? CONFIG_OK : CONFIG_ERROR;
}

void
config_usage(void *out)
{
	FILE *f = out;

	fprintf(f, "usage: mqlockd [--flag value]...\n\n");
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];
		static const char *const args[] = {[T_STRING] = " VALUE",
		    [T_SECONDS] = " S",
		    [T_COUNT] = " N",
		    [T_DECIMAL] = " N",
		    [T_LEVEL] = " LEVEL",
		    [T_FLAG] = ""};
		const char *arg = args[o->type];

		fprintf(f, "  --%s%s\n      %s", o->name, arg, o->help);
		if (o->def != NULL)
			fprintf(f, " (default %s)", o->def);
		fputc('\n', f);
	}
}

int
config_read_secret(const char *path, char *buf, size_t size, char *err,
    size_t errsz)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		snprintf(err, errsz, "cannot open %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fgets(buf, (int)size, f) == NULL) {
		snprintf(err, errsz, "%s is empty", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	n = strcspn(buf, "\r\n");
	if (buf[n] == '\0' && n == size - 1) {
		snprintf(err, errsz, "%s: first line longer than %zu bytes",
		    path, size - 2);
		return -1;
	}
	buf[n] = '\0';
	return 0;
}
