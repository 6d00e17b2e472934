#include "bench/proto.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "core/limits.h"

bool
proto_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char ch = s[n];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			(ch >= '0' && ch <= '9') || ch == '-'))
			return false;
	}
	return n >= 1 && n <= MQL_CLIENT_ID_MAX;
}

int
proto_request(char *buf, size_t size, enum proto_op op, const char *client,
    const char *session)
{
	int n = snprintf(buf, size,
	    "{\"op\":\"%s\",\"client\":\"%s\",\"session\":\"%s\","
	    "\"user\":\"bench\"}",
	    op == PROTO_ACQUIRE ? "acquire" : "release", client, session);

	return n < 0 || (size_t)n >= size ? -1 : n;
}

/* A JSON integer that fits a token, or -1. */
static int
get_token(const cJSON *o, uint64_t *token)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "token");

	if (!cJSON_IsNumber(t) || t->valuedouble < 0 ||
	    t->valuedouble > (double)MQL_CONN_MAX)
		return -1;
	*token = (uint64_t)t->valuedouble;
	return 0;
}

enum proto_kind
proto_owner(const char *payload, size_t len, const char *me, uint64_t *token)
{
	cJSON *o;
	const cJSON *owner, *client;
	enum proto_kind k = PROTO_BAD;

	/* mqlockd deletes the owner message of a lock nobody holds. */
	if (len == 0)
		return PROTO_FREE;
	if ((o = cJSON_ParseWithLength(payload, len)) == NULL)
		return PROTO_BAD;
	owner = cJSON_GetObjectItemCaseSensitive(o, "owner");
	if (cJSON_IsNull(owner))
		k = PROTO_FREE;
	else if (cJSON_IsObject(owner)) {
		client = cJSON_GetObjectItemCaseSensitive(owner, "client");
		if (cJSON_IsString(client) &&
		    strcmp(client->valuestring, me) == 0)
			k = get_token(o, token) == 0 ? PROTO_MINE : PROTO_BAD;
		else if (cJSON_IsString(client))
			k = PROTO_OTHER;
	}
	cJSON_Delete(o);
	return k;
}

enum proto_kind
proto_event(const char *payload, size_t len, char *lock, size_t lsize,
    uint64_t *token)
{
	cJSON *o;
	const cJSON *ev, *lk;
	enum proto_kind k = PROTO_BAD;

	/*
	 * Every waiter gets a queued event on every hand-over; with 100
	 * waiters parsing them all would put the client's own work into the
	 * figures.  Only a granted event ever contains "granted".
	 */
	if (strstr(payload, "\"granted\"") == NULL &&
	    strstr(payload, "\"queued\"") != NULL)
		return PROTO_QUEUED;
	if ((o = cJSON_ParseWithLength(payload, len)) == NULL)
		return PROTO_BAD;
	ev = cJSON_GetObjectItemCaseSensitive(o, "event");
	lk = cJSON_GetObjectItemCaseSensitive(o, "lock");
	snprintf(lock, lsize, "%s", cJSON_IsString(lk) ? lk->valuestring : "");
	if (!cJSON_IsString(ev))
		k = PROTO_BAD;
	else if (strcmp(ev->valuestring, "granted") == 0)
		k = get_token(o, token) == 0 ? PROTO_MINE : PROTO_BAD;
	else if (strcmp(ev->valuestring, "queued") == 0)
		k = PROTO_QUEUED;
	else if (strcmp(ev->valuestring, "error") == 0 ||
	    strcmp(ev->valuestring, "busy") == 0)
		k = PROTO_REFUSED;
	else
		k = PROTO_OTHER;
	cJSON_Delete(o);
	return k;
}
