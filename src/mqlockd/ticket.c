#include "mqlockd/ticket.h"

#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/codec.h"

struct ticket_key {
	size_t len;
	unsigned char bytes[TICKET_KEY_MAX + 1];
};

struct ticket_key *
ticket_key_new(const unsigned char *bytes, size_t len, char *err, size_t errsz)
{
	struct ticket_key *k;

	if (len < TICKET_KEY_MIN || len > TICKET_KEY_MAX) {
		snprintf(err, errsz, "a ticket key must be %d to %d bytes",
		    TICKET_KEY_MIN, TICKET_KEY_MAX);
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	memcpy(k->bytes, bytes, len);
	k->len = len;
	return k;
}

void
ticket_key_free(struct ticket_key *k)
{
	if (k == NULL)
		return;
	explicit_bzero(k, sizeof(*k));
	free(k);
}

/* A string claim of lo..hi bytes of UTF-8, copied into dst. */
static bool
claim_string(const cJSON *c, const char *name, size_t lo, size_t hi, char *dst)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, name);
	size_t n;

	if (!cJSON_IsString(f) || f->valuestring == NULL)
		return false;
	n = strlen(f->valuestring);
	if (n < lo || n > hi || !codec_utf8_valid(f->valuestring, n))
		return false;
	if (dst != NULL)
		memcpy(dst, f->valuestring, n + 1);
	return true;
}

/* A NumericDate claim (whole seconds) into *out. */
static bool
claim_time(const cJSON *c, const char *name, double *out)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, name);

	if (!cJSON_IsNumber(f) || f->valuedouble < 0 ||
	    f->valuedouble > 9007199254740991.0)
		return false;
	*out = f->valuedouble;
	return true;
}

/* Is lock among the ticket's locks (absent: any)?  -1: mistyped. */
static int
lock_allowed(const cJSON *c, const char *lock)
{
	const cJSON *locks = cJSON_GetObjectItemCaseSensitive(c, "locks");
	const cJSON *e;
	int found = 0;

	if (locks == NULL)
		return 1;
	if (!cJSON_IsArray(locks))
		return -1;
	cJSON_ArrayForEach(e, locks)
	{
		if (!cJSON_IsString(e) || e->valuestring == NULL)
			return -1;
		if (strcmp(e->valuestring, lock) == 0)
			found = 1;
	}
	return found;
}

static enum lt_err
refuse(enum lt_err code, const char *text, const char **why)
{
	*why = text;
	return code;
}

/* The claims of a ticket whose signature is good. */
static enum lt_err
check_claims(const cJSON *c, const char *client, const char *lock, lt_ms now,
    char *uid, char *name, const char **why)
{
	char for_client[MQL_CLIENT_ID_SZ];
	double exp, nbf;
	int allowed;

	if (!cJSON_IsObject(c))
		return refuse(LT_ERR_TICKET_INVALID, "ticket has no claims",
		    why);
	if (!claim_string(c, "sub", 1, MQL_UID_MAX, uid))
		return refuse(LT_ERR_TICKET_INVALID,
		    "ticket sub must be a string of 1-128 bytes", why);
	if (!claim_string(c, "name", 0, MQL_USER_MAX, name))
		return refuse(LT_ERR_TICKET_INVALID,
		    "ticket name must be a string of at most 128 bytes", why);
	if (!claim_string(c, "client", 1, MQL_CLIENT_ID_MAX, for_client))
		return refuse(LT_ERR_TICKET_INVALID,
		    "ticket client must be a client id", why);
	if (!claim_time(c, "exp", &exp))
		return refuse(LT_ERR_TICKET_INVALID,
		    "ticket exp must be a number of seconds", why);
	if (cJSON_GetObjectItemCaseSensitive(c, "nbf") != NULL &&
	    (!claim_time(c, "nbf", &nbf) || (double)now / 1000.0 < nbf))
		return refuse(LT_ERR_TICKET_INVALID,
		    "ticket is not valid yet (nbf)", why);
	if ((allowed = lock_allowed(c, lock)) < 0)
		return refuse(LT_ERR_TICKET_INVALID,
		    "ticket locks must be an array of lock ids", why);
	if ((double)now / 1000.0 >= exp)
		return refuse(LT_ERR_TICKET_EXPIRED, "ticket expired", why);
	if (strcmp(for_client, client) != 0)
		return refuse(LT_ERR_TICKET_MISMATCH,
		    "ticket was issued for another client id", why);
	if (!allowed)
		return refuse(LT_ERR_TICKET_LOCK,
		    "ticket does not allow this lock", why);
	return LT_OK;
}

enum lt_err
ticket_verify(const struct ticket_key *k, const char *ticket,
    const char *client, const char *lock, lt_ms now, char uid[MQL_UID_SZ],
    char name[MQL_USER_SZ], const char **why)
{
	jwt_t *jwt = NULL;
	char *json = NULL;
	cJSON *claims = NULL;
	enum lt_err rc;

	uid[0] = name[0] = '\0';
	/*
	 * Only HS256 under our key.  libjwt takes the algorithm from the
	 * token's own header, so a token that names another one (none,
	 * HS384, RS256...) is refused here whatever libjwt would make of it.
	 */
	if (jwt_decode(&jwt, ticket, k->bytes, (int)k->len) != 0 ||
	    jwt == NULL) {
		rc = refuse(LT_ERR_TICKET_INVALID,
		    "ticket is not a JWT signed with this key", why);
		goto out;
	}
	if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
		rc =
		    refuse(LT_ERR_TICKET_INVALID, "ticket must use HS256", why);
		goto out;
	}
	json = jwt_get_grants_json(jwt, NULL);
	claims = json != NULL ? cJSON_Parse(json) : NULL;
	rc = check_claims(claims, client, lock, now, uid, name, why);
	if (rc != LT_OK)
		uid[0] = name[0] = '\0';
out:
	cJSON_Delete(claims);
	free(json);
	jwt_free(jwt);
	return rc;
}
