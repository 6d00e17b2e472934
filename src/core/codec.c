#include "core/codec.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Limits spelled into refusal messages, so the two never disagree. */
#define STR(x) MQL_STR(x)

/* ---- names ---- */

static const char *const err_names[] = {
    [LT_OK] = "ok",
    [LT_ERR_BAD_REQUEST] = "bad-request",
    [LT_ERR_INVALID_LOCK] = "invalid-lock",
    [LT_ERR_SESSION_MISMATCH] = "session-mismatch",
    [LT_ERR_STALE] = "stale",
    [LT_ERR_TICKET_INVALID] = "ticket-invalid",
    [LT_ERR_TICKET_EXPIRED] = "ticket-expired",
    [LT_ERR_TICKET_MISMATCH] = "ticket-mismatch",
    [LT_ERR_TICKET_LOCK] = "ticket-lock",
    [LT_ERR_TICKET_REQUIRED] = "ticket-required",
    [LT_ERR_LIMIT] = "limit",
    [LT_ERR_INTERNAL] = "internal",
};

static const char *const event_names[] = {
    [LT_E_GRANTED] = "granted",
    [LT_E_QUEUED] = "queued",
    [LT_E_BUSY] = "busy",
    [LT_E_REVOKED] = "revoked",
    [LT_E_IDLE_WARNING] = "idle-warning",
    [LT_E_DROPPED] = "dropped",
    [LT_E_ERROR] = "error",
};

static const char *const result_names[] = {
    [LT_R_GRANTED] = "granted",
    [LT_R_QUEUED] = "queued",
    [LT_R_BUSY] = "busy",
    [LT_R_RELEASED] = "released",
    [LT_R_REFRESHED] = "refreshed",
    [LT_R_IGNORED] = "ignored",
    [LT_R_REVOKED] = "revoked",
    [LT_R_PURGED] = "purged",
    [LT_R_STATE] = "state",
    [LT_R_ERROR] = "error",
};

static const char *const reason_names[] = {
    [LT_REASON_IDLE] = "idle",
    [LT_REASON_DISCONNECT] = "disconnect",
    [LT_REASON_ADMIN] = "admin",
    [LT_REASON_TAKEOVER] = "takeover",
};

static const char *const op_names[] = {
    [LT_OP_ACQUIRE] = "acquire",
    [LT_OP_RELEASE] = "release",
    [LT_OP_ACTIVITY] = "activity",
    [LT_OP_QUERY] = "query",
};

#define NAME(table, i) \
	((size_t)(i) < sizeof(table) / sizeof(table[0]) ? table[i] : "?")

const char *
codec_err_name(enum lt_err e)
{
	return NAME(err_names, e);
}

const char *
codec_event_name(enum lt_event_type e)
{
	return NAME(event_names, e);
}

const char *
codec_result_name(enum lt_result r)
{
	return NAME(result_names, r);
}

const char *
codec_reason_name(enum lt_reason r)
{
	return NAME(reason_names, r);
}

const char *
codec_op_name(enum lt_op op)
{
	return NAME(op_names, op);
}

/* ---- validation ---- */

/*
 * Decode the code point at p[i..len).  Returns its length in bytes, or 0
 * when the bytes there are not well-formed UTF-8 (overlong forms,
 * surrogates, beyond U+10FFFF, truncated).
 */
static size_t
utf8_next(const unsigned char *p, size_t len, size_t i, uint32_t *cp)
{
	unsigned char c = p[i];
	size_t n;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 1;
		*cp = c & 0x1fu;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2;
		*cp = c & 0x0fu;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3;
		*cp = c & 0x07u;
	} else {
		return 0;
	}
	if (len - i <= n)
		return 0;
	for (size_t k = 1; k <= n; k++) {
		if ((p[i + k] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (p[i + k] & 0x3fu);
	}
	if ((n == 2 && *cp < 0x800) || (n == 3 && *cp < 0x10000) ||
	    (*cp >= 0xd800 && *cp <= 0xdfff) || *cp > 0x10ffff)
		return 0;
	return n + 1;
}

bool
codec_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	for (size_t i = 0, n; i < len; i += n) {
		if ((n = utf8_next(p, len, i, &cp)) == 0)
			return false;
	}
	return true;
}

/*
 * The broker's rule for topic text (mosquitto_validate_utf8): besides being
 * well-formed, no C0 or C1 control character (U+0000-U+001F,
 * U+007F-U+009F) and no non-character (U+FDD0-U+FDEF, U+xxFFFE, U+xxFFFF).
 * A topic that breaks it makes the broker drop the publisher.
 */
bool
codec_topic_text_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp;

	for (size_t i = 0, n; i < len; i += n) {
		if ((n = utf8_next(p, len, i, &cp)) == 0 || cp <= 0x1f ||
		    (cp >= 0x7f && cp <= 0x9f) ||
		    (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe)
			return false;
	}
	return true;
}

/* One topic level: topic text without wildcards or separators. */
static bool
level_valid(const char *s, size_t len, size_t max)
{
	if (len < 1 || len > max || s[0] == '$' ||
	    memchr(s, '/', len) != NULL || memchr(s, '+', len) != NULL ||
	    memchr(s, '#', len) != NULL)
		return false;
	return codec_topic_text_valid(s, len);
}

bool
codec_lock_id_valid(const char *s, size_t len)
{
	return level_valid(s, len, MQL_LOCK_ID_MAX) && s[0] != '_';
}

bool
codec_client_id_valid(const char *s, size_t len)
{
	return level_valid(s, len, MQL_CLIENT_ID_MAX);
}

bool
codec_prefix_valid(const char *s)
{
	size_t len = 0, start = 0;

	while (len <= MQL_PREFIX_MAX && s[len] != '\0')
		len++;
	if (len < 1 || len > MQL_PREFIX_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '/') {
			if (i == start ||
			    !level_valid(s + start, i - start, MQL_PREFIX_MAX))
				return false;
			start = i + 1;
		}
	}
	return true;
}

/* ---- topics ---- */

static bool
level_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* Copy level (already validated) into dst. */
static void
set_level(char *dst, const char *lv, size_t ll)
{
	memcpy(dst, lv, ll);
	dst[ll] = '\0';
}

void
codec_parse_topic(const char *prefix, const char *topic,
    struct codec_topic *out)
{
	size_t plen = strlen(prefix);
	const char *lv[4];
	size_t ll[4], n = 0;
	const char *p;

	memset(out, 0, sizeof(*out));
	out->kind = CODEC_T_OTHER;
	if (strncmp(topic, prefix, plen) != 0 || topic[plen] != '/')
		return;
	/* Split what follows the prefix into at most four levels. */
	p = topic + plen + 1;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t l = slash != NULL ? (size_t)(slash - p) : strlen(p);

		if (n == 4)
			return;
		lv[n] = p;
		ll[n++] = l;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	if ((n == 2 || n == 3) && level_is(lv[1], ll[1], "request")) {
		out->kind = CODEC_T_REQUEST;
		out->id_valid = codec_lock_id_valid(lv[0], ll[0]);
		if (out->id_valid)
			set_level(out->id, lv[0], ll[0]);
	} else if ((n == 2 || n == 3) && level_is(lv[0], ll[0], "_admin") &&
	    level_is(lv[1], ll[1], "command")) {
		out->kind = CODEC_T_ADMIN;
	} else if (n == 3 && level_is(lv[0], ll[0], "_clients") &&
	    level_is(lv[2], ll[2], "will")) {
		out->kind = CODEC_T_WILL;
		out->id_valid = codec_client_id_valid(lv[1], ll[1]);
		if (out->id_valid)
			set_level(out->id, lv[1], ll[1]);
		return;
	} else {
		return;
	}
	/* P/<lock>/request/<client>, P/_admin/command/<client>: bound. */
	if (n == 3) {
		out->bound = true;
		out->client_valid = codec_client_id_valid(lv[2], ll[2]);
		if (out->client_valid)
			set_level(out->client, lv[2], ll[2]);
	}
}

int
codec_topic(char *buf, size_t size, const char *prefix, const char *a,
    const char *b)
{
	int n;

	if (b != NULL)
		n = snprintf(buf, size, "%s/%s/%s", prefix, a, b);
	else
		n = snprintf(buf, size, "%s/%s", prefix, a);
	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

int
codec_client_topic(char *buf, size_t size, const char *prefix,
    const char *client, const char *leaf)
{
	int n = snprintf(buf, size, "%s/_clients/%s/%s", prefix, client, leaf);

	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

/* ---- decoding ---- */

/*
 * cJSON turns the escape \u0000 into a NUL that silently cuts the string
 * short.  Refuse any payload that spells it (an escaped backslash before it
 * makes it ordinary text).
 */
static char *
find_nul_escape(char *s, const char *end)
{
	for (char *p = s; p + 6 <= end; p++) {
		size_t bs = 0;

		if (p[0] != '\\' || p[1] != 'u' || memcmp(p + 2, "0000", 4))
			continue;
		while (p - bs > s && p[-1 - (long)bs] == '\\')
			bs++;
		if (bs % 2 == 0)
			return p;
	}
	return NULL;
}

static bool
has_nul_escape(const char *s, size_t len)
{
	return find_nul_escape((char *)s, s + len) != NULL;
}

/*
 * Parse payload as one JSON object with nothing after it.  NULL and *why
 * set when it is not.  The caller frees the result with cJSON_Delete().
 */
static cJSON *
parse_object(const char *s, size_t len, const char **why)
{
	const char *end = NULL;
	cJSON *j;

	if (memchr(s, '\0', len) != NULL) {
		*why = "payload contains a NUL byte";
		return NULL;
	}
	j = cJSON_ParseWithLengthOpts(s, len, &end, 0);
	if (j == NULL) {
		*why = "payload is not JSON";
		return NULL;
	}
	while (end != NULL && end < s + len &&
	    (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (end != s + len) {
		cJSON_Delete(j);
		*why = "payload is not JSON";
		return NULL;
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		*why = "payload is not a JSON object";
		return NULL;
	}
	return j;
}

/* Outcome of reading one optional or required string field. */
enum field { F_ABSENT, F_OK, F_BAD };

static enum field
get_string(const cJSON *o, const char *name, size_t min, size_t max, char *dst,
    size_t dstsz)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
	size_t n;

	if (f == NULL)
		return F_ABSENT;
	if (!cJSON_IsString(f) || f->valuestring == NULL)
		return F_BAD;
	n = strlen(f->valuestring);
	if (n < min || n > max || n >= dstsz ||
	    !codec_utf8_valid(f->valuestring, n))
		return F_BAD;
	memcpy(dst, f->valuestring, n + 1);
	return F_OK;
}

static enum field
get_uint53(const cJSON *o, const char *name, int64_t *out)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
	double d;

	if (f == NULL)
		return F_ABSENT;
	if (!cJSON_IsNumber(f))
		return F_BAD;
	d = f->valuedouble;
	if (!(d >= 0.0 && d <= (double)MQL_CONN_MAX) || floor(d) != d)
		return F_BAD;
	*out = (int64_t)d;
	return F_OK;
}

static enum lt_err
bad(struct codec_error *err, enum lt_err code, const char *message)
{
	err->code = code;
	err->message = message;
	return code;
}

static enum field
get_bool(const cJSON *o, const char *name, bool *out)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

	if (f == NULL)
		return F_ABSENT;
	if (!cJSON_IsBool(f))
		return F_BAD;
	*out = cJSON_IsTrue(f);
	return F_OK;
}

/*
 * What every payload must pass before it is parsed at all: the size limit,
 * UTF-8 and no spelled-out U+0000.  LT_OK or the refusal.
 */
static enum lt_err
check_raw(const void *payload, size_t len, struct codec_error *err)
{
	if (len > MQL_PAYLOAD_MAX)
		return bad(err, LT_ERR_BAD_REQUEST,
		    "payload larger than " STR(MQL_PAYLOAD_MAX) " bytes");
	if (!codec_utf8_valid(payload, len))
		return bad(err, LT_ERR_BAD_REQUEST,
		    "payload is not valid UTF-8");
	return LT_OK;
}

static const struct {
	const char *name;
	enum lt_op op;
} ops[] = {
    {"acquire", LT_OP_ACQUIRE},
    {"release", LT_OP_RELEASE},
    {"activity", LT_OP_ACTIVITY},
    {"query", LT_OP_QUERY},
};

/* The fields of a parsed request object, checked in topics.md's order. */
static enum lt_err
read_request(const cJSON *j, struct lt_request *out, struct codec_error *err)
{
	char op[16];
	size_t i;

	if (get_string(j, "op", 1, sizeof(op) - 1, op, sizeof(op)) != F_OK)
		return bad(err, LT_ERR_BAD_REQUEST, "op must be a string");
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(op, ops[i].name) == 0)
			break;
	}
	if (i == sizeof(ops) / sizeof(ops[0]))
		return bad(err, LT_ERR_BAD_REQUEST,
		    "op must be acquire, release, activity or query");
	out->op = ops[i].op;
	if (err->client[0] == '\0')
		return bad(err, LT_ERR_BAD_REQUEST,
		    "client must be a valid client id string");
	switch (get_string(j, "session", MQL_SESSION_MIN, MQL_SESSION_MAX,
	    out->session, sizeof(out->session))) {
	case F_OK:
		break;
	case F_ABSENT:
		if (out->op == LT_OP_QUERY)
			break;
		/* FALLTHROUGH */
	case F_BAD:
	default:
		return bad(err, LT_ERR_BAD_REQUEST,
		    "session must be a string of " STR(MQL_SESSION_MIN) "-" STR(
			MQL_SESSION_MAX) " bytes");
	}
	if (get_string(j, "user", 0, MQL_USER_MAX, out->user,
		sizeof(out->user)) == F_BAD)
		return bad(err, LT_ERR_BAD_REQUEST,
		    "user must be a string of at most " STR(
			MQL_USER_MAX) " bytes");
	out->conn = -1;
	if (get_uint53(j, "conn", &out->conn) == F_BAD)
		return bad(err, LT_ERR_BAD_REQUEST,
		    "conn must be an integer from 0 to 2^53-1");
	out->wait = true;
	if (get_bool(j, "wait", &out->wait) == F_BAD)
		return bad(err, LT_ERR_BAD_REQUEST, "wait must be a boolean");
	if (get_bool(j, "takeover", &out->takeover) == F_BAD)
		return bad(err, LT_ERR_BAD_REQUEST,
		    "takeover must be a boolean");
	if (get_string(j, "ticket", 1, MQL_TICKET_MAX, out->ticket,
		sizeof(out->ticket)) == F_BAD)
		return bad(err, LT_ERR_BAD_REQUEST,
		    "ticket must be a string of at most " STR(
			MQL_TICKET_MAX) " bytes");
	return LT_OK;
}

enum lt_err
codec_decode_request(const void *payload, size_t len, const char *lock,
    const char *bound, struct lt_request *out, struct codec_error *err)
{
	const char *why = NULL;
	char *copy = NULL;
	enum lt_err rc;
	cJSON *j;
	bool nul;

	memset(err, 0, sizeof(*err));
	memset(out, 0, sizeof(*out));
	/* On the bound topic the sender is known before a byte is read. */
	if (bound != NULL)
		memcpy(err->client, bound, strlen(bound) + 1);
	/* Larger than any valid request: refused unread. */
	if (len > MQL_PAYLOAD_MAX)
		return bad(err, LT_ERR_BAD_REQUEST,
		    "payload larger than " STR(MQL_PAYLOAD_MAX) " bytes");
	nul = has_nul_escape(payload, len);
	if (nul) {
		/*
		 * Parse a copy in which every \u0000 reads \u0001: a string
		 * cut short by the NUL then fails its own checks instead of
		 * naming somebody else.  The request is refused either way.
		 */
		if ((copy = malloc(len)) == NULL)
			return bad(err, LT_ERR_INTERNAL, "out of memory");
		memcpy(copy, payload, len);
		for (char *p = copy;
		     (p = find_nul_escape(p, copy + len)) != NULL; p += 6)
			p[5] = '1';
	}
	j = parse_object(nul ? copy : payload, len, &why);
	free(copy);
	if (j == NULL)
		return bad(err, LT_ERR_BAD_REQUEST, why);
	/* Name the client first: every refusal should reach it. */
	if (get_string(j, "client", 1, MQL_CLIENT_ID_MAX, out->client,
		sizeof(out->client)) != F_OK ||
	    !codec_client_id_valid(out->client, strlen(out->client)))
		out->client[0] = '\0';
	if (bound == NULL)
		memcpy(err->client, out->client, sizeof(err->client));
	if (!codec_utf8_valid(payload, len))
		rc = bad(err, LT_ERR_BAD_REQUEST, "payload is not valid UTF-8");
	else if (nul)
		rc = bad(err, LT_ERR_BAD_REQUEST, "a string contains U+0000");
	else if (bound != NULL && strcmp(out->client, bound) != 0)
		rc = bad(err, LT_ERR_BAD_REQUEST,
		    "client differs from the request topic");
	else if (lock == NULL)
		rc = bad(err, LT_ERR_INVALID_LOCK,
		    "lock id must be 1-" STR(
			MQL_LOCK_ID_MAX) " bytes of "
					 "UTF-8 without / + #, control characters or "
					 "non-characters, not starting with _ or $");
	else
		rc = read_request(j, out, err);
	if (rc == LT_OK)
		memcpy(out->lock, lock, strlen(lock) + 1);
	cJSON_Delete(j);
	return rc;
}

enum lt_err
codec_decode_will(const void *payload, size_t len, const char *client,
    struct lt_will *out)
{
	const char *why;
	enum lt_err rc = LT_ERR_BAD_REQUEST;
	cJSON *j;

	memset(out, 0, sizeof(*out));
	if (len > MQL_PAYLOAD_MAX || !codec_utf8_valid(payload, len) ||
	    has_nul_escape(payload, len) ||
	    !codec_client_id_valid(client, strlen(client)))
		return LT_ERR_BAD_REQUEST;
	j = parse_object(payload, len, &why);
	if (j == NULL)
		return LT_ERR_BAD_REQUEST;
	out->conn = -1;
	if (get_string(j, "session", MQL_SESSION_MIN, MQL_SESSION_MAX,
		out->session, sizeof(out->session)) == F_OK &&
	    get_uint53(j, "conn", &out->conn) != F_BAD) {
		memcpy(out->client, client, strlen(client) + 1);
		rc = LT_OK;
	}
	cJSON_Delete(j);
	return rc;
}

enum lt_err
codec_decode_admin(const void *payload, size_t len, enum lt_event_kind *kind,
    struct lt_admin *out, struct codec_error *err)
{
	const char *why = NULL;
	char op[16];
	enum lt_err rc = LT_OK;
	cJSON *j;

	memset(err, 0, sizeof(*err));
	memset(out, 0, sizeof(*out));
	if ((rc = check_raw(payload, len, err)) != LT_OK)
		return rc;
	if (has_nul_escape(payload, len))
		return bad(err, LT_ERR_BAD_REQUEST, "a string contains U+0000");
	j = parse_object(payload, len, &why);
	if (j == NULL)
		return bad(err, LT_ERR_BAD_REQUEST, why);
	if (get_string(j, "op", 1, sizeof(op) - 1, op, sizeof(op)) != F_OK ||
	    (strcmp(op, "break") != 0 && strcmp(op, "purge") != 0))
		rc = bad(err, LT_ERR_BAD_REQUEST, "op must be break or purge");
	else if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "lock")))
		rc = bad(err, LT_ERR_BAD_REQUEST, "lock must be a string");
	else if (get_string(j, "lock", 1, MQL_LOCK_ID_MAX, out->lock,
		     sizeof(out->lock)) != F_OK ||
	    !codec_lock_id_valid(out->lock, strlen(out->lock)))
		rc = bad(err, LT_ERR_INVALID_LOCK,
		    "lock must be a valid lock id");
	else if (get_string(j, "reason", 0, MQL_REASON_MAX, out->reason,
		     sizeof(out->reason)) == F_BAD)
		rc = bad(err, LT_ERR_BAD_REQUEST,
		    "reason must be a string of at most " STR(
			MQL_REASON_MAX) " bytes");
	if (rc == LT_OK)
		*kind = strcmp(op, "break") == 0 ? LT_EV_BREAK : LT_EV_PURGE;
	cJSON_Delete(j);
	return rc;
}

/* ---- encoding ---- */

/*
 * cJSON prints numbers as doubles with 15 significant digits, which would
 * turn large tokens into exponents; integers are written as raw text.
 */
static bool
add_int(cJSON *o, const char *name, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return cJSON_AddRawToObject(o, name, buf) != NULL;
}

static bool
add_uint(cJSON *o, const char *name, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return cJSON_AddRawToObject(o, name, buf) != NULL;
}

static char *
finish(cJSON *o, bool ok)
{
	char *s = ok ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	return s;
}

static bool
add_party(cJSON *parent, const char *name, const char *client, const char *user,
    const char *uid, bool connected)
{
	cJSON *p = cJSON_CreateObject();

	if (p == NULL)
		return false;
	if (name != NULL)
		cJSON_AddItemToObject(parent, name, p);
	else
		cJSON_AddItemToArray(parent, p);
	return cJSON_AddStringToObject(p, "client", client) != NULL &&
	    cJSON_AddStringToObject(p, "user", user != NULL ? user : "") !=
	    NULL &&
	    (uid == NULL || cJSON_AddStringToObject(p, "uid", uid) != NULL) &&
	    cJSON_AddBoolToObject(p, "connected", connected) != NULL;
}

/* The fields an owner message and a query reply share. */
static bool
add_lock_state(cJSON *o, const struct lt_lock_rec *rec)
{
	cJSON *q;
	bool ok = true;

	if (rec != NULL && rec->holder != NULL) {
		ok = add_party(o, "owner", rec->holder, rec->holder_user,
			 rec->holder_uid, rec->holder_connected) &&
		    add_uint(o, "token", rec->token) &&
		    add_int(o, "since", rec->since) &&
		    add_int(o, "idle_deadline", rec->idle_deadline);
	} else {
		ok = cJSON_AddNullToObject(o, "owner") != NULL &&
		    cJSON_AddNullToObject(o, "token") != NULL &&
		    (rec == NULL || add_int(o, "since", rec->since)) &&
		    cJSON_AddNullToObject(o, "idle_deadline") != NULL;
	}
	ok = ok && add_uint(o, "waiting", rec != NULL ? rec->nwaiters : 0);
	q = ok ? cJSON_AddArrayToObject(o, "queue") : NULL;
	ok = ok && q != NULL;
	for (size_t i = 0; ok && rec != NULL && i < rec->nwaiters &&
	     i < MQL_OWNER_QUEUE_SHOWN;
	     i++) {
		const struct lt_waiter_rec *w = &rec->waiters[i];

		ok = add_party(q, NULL, w->client, w->user, w->uid,
		    w->connected);
	}
	return ok;
}

char *
codec_encode_owner(const struct lt_lock_rec *rec)
{
	cJSON *o = cJSON_CreateObject();
	bool ok;

	if (o == NULL)
		return NULL;
	ok = add_int(o, "v", MQL_PROTOCOL_VERSION) &&
	    cJSON_AddStringToObject(o, "lock", rec->id) != NULL &&
	    add_lock_state(o, rec);
	return finish(o, ok);
}

static bool
add_lock_or_null(cJSON *o, const char *lock)
{
	if (lock[0] == '\0')
		return cJSON_AddNullToObject(o, "lock") != NULL;
	return cJSON_AddStringToObject(o, "lock", lock) != NULL;
}

static bool
add_reason(cJSON *o, const struct lt_fx *fx)
{
	bool admin = fx->reason == LT_REASON_ADMIN;

	return cJSON_AddStringToObject(o, "reason",
		   codec_reason_name(fx->reason)) != NULL &&
	    (!admin ||
		cJSON_AddStringToObject(o, "message", fx->detail) != NULL);
}

char *
codec_encode_event(const struct lt_fx *fx)
{
	cJSON *o = cJSON_CreateObject();
	bool ok;

	if (o == NULL)
		return NULL;
	ok = cJSON_AddStringToObject(o, "event",
		 codec_event_name(fx->what.event)) != NULL &&
	    add_lock_or_null(o, fx->lock);
	switch (fx->what.event) {
	case LT_E_GRANTED:
		ok = ok && add_uint(o, "token", fx->token) &&
		    add_int(o, "idle_deadline", fx->deadline);
		break;
	case LT_E_QUEUED:
		ok = ok && add_uint(o, "position", fx->position);
		break;
	case LT_E_REVOKED:
		ok = ok && add_reason(o, fx) && add_uint(o, "token", fx->token);
		break;
	case LT_E_DROPPED:
		ok = ok && add_reason(o, fx);
		break;
	case LT_E_IDLE_WARNING:
		ok = ok && add_int(o, "deadline", fx->deadline);
		break;
	case LT_E_ERROR:
		ok = ok &&
		    cJSON_AddStringToObject(o, "code",
			codec_err_name(fx->code)) != NULL &&
		    cJSON_AddStringToObject(o, "message",
			fx->message != NULL ? fx->message : "") != NULL;
		break;
	case LT_E_BUSY:
	default:
		break;
	}
	ok = ok && add_int(o, "now", fx->now);
	return finish(o, ok);
}

char *
codec_encode_reply(const struct lt_fx *fx)
{
	cJSON *o = cJSON_CreateObject();
	bool ok;

	if (o == NULL)
		return NULL;
	if (fx->what.result == LT_R_ERROR) {
		ok = cJSON_AddFalseToObject(o, "ok") != NULL &&
		    (fx->lock[0] == '\0' ||
			cJSON_AddStringToObject(o, "lock", fx->lock) != NULL) &&
		    cJSON_AddStringToObject(o, "code",
			codec_err_name(fx->code)) != NULL &&
		    cJSON_AddStringToObject(o, "message",
			fx->message != NULL ? fx->message : "") != NULL;
		return finish(o, ok);
	}
	ok = cJSON_AddTrueToObject(o, "ok") != NULL &&
	    cJSON_AddStringToObject(o, "lock", fx->lock) != NULL &&
	    cJSON_AddStringToObject(o, "result",
		codec_result_name(fx->what.result)) != NULL;
	if (fx->what.result == LT_R_GRANTED || fx->what.result == LT_R_REVOKED)
		ok = ok && add_uint(o, "token", fx->token);
	else if (fx->what.result == LT_R_QUEUED)
		ok = ok && add_uint(o, "position", fx->position);
	else if (fx->what.result == LT_R_PURGED)
		ok = ok && add_uint(o, "count", fx->count);
	return finish(o, ok);
}

char *
codec_encode_state(const char *lock, const struct lt_lock_rec *rec, lt_ms now)
{
	cJSON *o = cJSON_CreateObject();
	bool ok;

	if (o == NULL)
		return NULL;
	ok = cJSON_AddTrueToObject(o, "ok") != NULL &&
	    cJSON_AddStringToObject(o, "lock", lock) != NULL &&
	    cJSON_AddStringToObject(o, "result", "state") != NULL &&
	    add_lock_state(o, rec) && add_int(o, "now", now);
	return finish(o, ok);
}

static const char *const policy_names[] = {
    [LT_IDLE_ALWAYS] = "always",
    [LT_IDLE_CONTENDED] = "contended",
};

const char *
codec_idle_policy_name(enum lt_idle_policy p)
{
	return NAME(policy_names, p);
}

char *
codec_encode_status(const struct codec_status *st)
{
	static const char *const tickets[] = {"off", "optional", "required"};
	cJSON *o = cJSON_CreateObject();
	bool ok;

	if (o == NULL)
		return NULL;
	ok = cJSON_AddStringToObject(o, "state",
		 st->online ? "online" : "offline") != NULL &&
	    cJSON_AddStringToObject(o, "version", st->version) != NULL &&
	    add_int(o, "protocol", MQL_PROTOCOL_VERSION) &&
	    add_int(o, "since", st->since) && add_uint(o, "epoch", st->epoch) &&
	    add_int(o, "grace", st->grace) &&
	    add_int(o, "idle_timeout", st->idle_timeout) &&
	    add_int(o, "idle_warning", st->idle_warning) &&
	    cJSON_AddStringToObject(o, "idle_policy",
		codec_idle_policy_name(st->idle_policy)) != NULL &&
	    add_int(o, "keepalive", st->keepalive) &&
	    cJSON_AddStringToObject(o, "tickets", NAME(tickets, st->tickets)) !=
		NULL;
	if (ok && st->error != NULL)
		ok = cJSON_AddStringToObject(o, "error", st->error) != NULL;
	return finish(o, ok);
}

char *
codec_encode_request(const struct lt_request *req)
{
	cJSON *o = cJSON_CreateObject();
	bool ok;

	if (o == NULL)
		return NULL;
	ok = cJSON_AddStringToObject(o, "op", codec_op_name(req->op)) != NULL &&
	    cJSON_AddStringToObject(o, "client", req->client) != NULL &&
	    (req->session[0] == '\0' ||
		cJSON_AddStringToObject(o, "session", req->session) != NULL);
	if (ok && req->conn >= 0)
		ok = add_int(o, "conn", req->conn);
	if (ok && req->user[0] != '\0')
		ok = cJSON_AddStringToObject(o, "user", req->user) != NULL;
	if (ok && req->op == LT_OP_ACQUIRE && !req->wait)
		ok = cJSON_AddFalseToObject(o, "wait") != NULL;
	if (ok && req->takeover)
		ok = cJSON_AddTrueToObject(o, "takeover") != NULL;
	if (ok && req->ticket[0] != '\0')
		ok = cJSON_AddStringToObject(o, "ticket", req->ticket) != NULL;
	return finish(o, ok);
}

char *
codec_encode_will(const char *session, int64_t conn)
{
	cJSON *o = cJSON_CreateObject();
	bool ok;

	if (o == NULL)
		return NULL;
	ok = cJSON_AddStringToObject(o, "session", session) != NULL;
	if (ok && conn >= 0)
		ok = add_int(o, "conn", conn);
	return finish(o, ok);
}
