/*
 * plugin.c: mqlock_auth, a mosquitto 2.0 plugin (plugin API version 5) for
 * the production broker profile (broker-config/production/).
 *
 * At CONNECT, before the password file is consulted (mosquitto 2.0 asks
 * plugins first, in mosquitto_unpwd_check()), it refuses
 *
 *   - a client id that is not a valid mqlock client id (clientid.h): one
 *     with '/', '+' or '#', a control character or non-character, invalid
 *     UTF-8, a leading '$', or more than 128 bytes;
 *   - the coordinator's client id on any account but the coordinator's,
 *     and any other client id on the coordinator's account, so nobody can
 *     take over (kick) the coordinator's connection and session;
 *   - a session that asks to resume (clean start 0; in MQTT 3.1.1 that is
 *     also what makes a session persistent) on any account but the
 *     coordinator's.
 *
 * Everything else it defers: the password file still decides who logs in.
 * It cannot see an MQTT 5 Session Expiry Interval (mosquitto 2.0.11 gives
 * plugins no accessor for it); persistent_client_expiration bounds those.
 *
 * Options (plugin_opt_NAME VALUE in mosquitto.conf, after each listener's
 * "plugin" line when per_listener_settings is true):
 *
 *   coordinator_user     the coordinator's username (required)
 *   coordinator_id_file  a file whose first line is the coordinator's
 *                        client id, a secret (required)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "clientid.h"

struct conf {
	mosquitto_plugin_id_t *pid;
	char user[256];
	char id[CLIENTID_MAX + 1];
	size_t idlen;
};

/* Byte strings compared in time that depends on the length only. */
static int
same(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char d = 0;
	size_t i;

	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

/*
 * A printable copy of s for the log, in buf: bytes outside printable ASCII
 * become \xNN, and it is cut short with "..." when it does not fit.
 */
static const char *
printable(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	if (s == NULL)
		return "(none)";
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (o + 8 >= size) {
			snprintf(buf + o, size - o, "...");
			return buf;
		}
		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
	}
	buf[o] = '\0';
	return buf;
}

static int
refuse(const struct mosquitto_evt_basic_auth *ev, const char *why, int show_id)
{
	char id[200], user[200];

	mosquitto_log_printf(MOSQ_LOG_NOTICE,
	    "mqlock_auth: refused client id %s (user %s) from %s: %s",
	    show_id ? printable(mosquitto_client_id(ev->client), id, sizeof(id))
		    : "(withheld)",
	    printable(ev->username, user, sizeof(user)),
	    mosquitto_client_address(ev->client), why);
	return MOSQ_ERR_AUTH;
}

static int
on_basic_auth(int event, void *event_data, void *userdata)
{
	const struct mosquitto_evt_basic_auth *ev = event_data;
	const struct conf *c = userdata;
	const char *id = mosquitto_client_id(ev->client);
	size_t len = id != NULL ? strlen(id) : 0;
	int coord_id, coord_user;

	(void)event;
	if (!clientid_valid(id, len))
		return refuse(ev, "not a valid client id", 1);
	coord_id = same(id, len, c->id, c->idlen);
	coord_user = ev->username != NULL && strcmp(ev->username, c->user) == 0;
	/* The id is a secret: never written to the log. */
	if (coord_id && !coord_user)
		return refuse(ev, "the coordinator's client id", 0);
	if (coord_user && !coord_id)
		return refuse(ev, "the coordinator's account with another id",
		    1);
	if (!coord_user && !mosquitto_client_clean_session(ev->client))
		return refuse(ev, "clean start required", 1);
	return MOSQ_ERR_PLUGIN_DEFER;
}

/* The first line of path, the coordinator's id, into c; 0 or -1. */
static int
read_id(struct conf *c, const char *path)
{
	char line[CLIENTID_MAX + 3];
	FILE *f;
	int ok;

	if ((f = fopen(path, "r")) == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		    "mqlock_auth: cannot open coordinator_id_file %s", path);
		return -1;
	}
	ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	if (ok) {
		line[strcspn(line, "\r\n")] = '\0';
		c->idlen = strlen(line);
		ok = c->idlen <= CLIENTID_MAX && clientid_valid(line, c->idlen);
	}
	if (!ok) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		    "mqlock_auth: %s does not start with a valid client id",
		    path);
		return -1;
	}
	memcpy(c->id, line, c->idlen + 1);
	return 0;
}

int
mosquitto_plugin_version(int supported_version_count,
    const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++)
		if (supported_versions[i] == MOSQ_PLUGIN_VERSION)
			return MOSQ_PLUGIN_VERSION;
	return -1;
}

int
mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
    struct mosquitto_opt *options, int option_count)
{
	struct conf *c = calloc(1, sizeof(*c));
	const char *idfile = NULL;
	int i;

	if (c == NULL)
		return MOSQ_ERR_NOMEM;
	c->pid = identifier;
	for (i = 0; i < option_count; i++) {
		if (strcmp(options[i].key, "coordinator_user") == 0) {
			if (strlen(options[i].value) >= sizeof(c->user))
				goto bad;
			snprintf(c->user, sizeof(c->user), "%s",
			    options[i].value);
		} else if (strcmp(options[i].key, "coordinator_id_file") == 0)
			idfile = options[i].value;
		else {
			mosquitto_log_printf(MOSQ_LOG_ERR,
			    "mqlock_auth: unknown option plugin_opt_%s",
			    options[i].key);
			goto bad;
		}
	}
	if (c->user[0] == '\0' || idfile == NULL) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		    "mqlock_auth: needs plugin_opt_coordinator_user and "
		    "plugin_opt_coordinator_id_file");
		goto bad;
	}
	if (read_id(c, idfile) != 0)
		goto bad;
	if (mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH,
		on_basic_auth, NULL, c) != MOSQ_ERR_SUCCESS) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		    "mqlock_auth: cannot register its callback");
		goto bad;
	}
	*userdata = c;
	return MOSQ_ERR_SUCCESS;
bad:
	free(c);
	return MOSQ_ERR_INVAL;
}

int
mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options,
    int option_count)
{
	struct conf *c = userdata;

	(void)options;
	(void)option_count;
	if (c == NULL)
		return MOSQ_ERR_SUCCESS;
	mosquitto_callback_unregister(c->pid, MOSQ_EVT_BASIC_AUTH,
	    on_basic_auth, NULL);
	free(c);
	return MOSQ_ERR_SUCCESS;
}
