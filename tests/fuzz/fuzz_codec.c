/*
 * fuzz_codec: arbitrary bytes into every decoder of the codec.
 *
 * The input is a topic and a payload: the bytes before the first NUL are the
 * topic, the bytes after it the payload (without a NUL, the whole input is
 * both).  The topic is classified under two prefixes and checked against
 * a second, independent reading of topics.md's naming rules; the payload
 * goes to codec_decode_request() (with a valid lock and with none, on the
 * unbound topic and on a bound one), codec_decode_will() (with a valid and
 * an invalid client) and codec_decode_admin().  Topic text is checked
 * against the broker's own rule (mosquitto refuses C0 and C1 controls and
 * non-characters in topics).
 *
 * What is decoded must be within limits.h and valid UTF-8 (checked by a
 * validator written here, not the codec's), must say what a plain cJSON
 * reading of the payload says, and must survive a round trip: encode,
 * decode, the same struct.  Refusals carry a code and a message, and name
 * the client exactly when topics.md says they must.  Then every encoder
 * (owner, event, reply, status, request, will) gets values drawn from the
 * input, and what it writes must parse back to the same values.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/codec.h"
#include "core/limits.h"
#include "fuzz.h"

#define LOCK_OK "doc-42"
#define CLIENT_OK "ed-7f3a"
#define PARSE_MAX MQL_PAYLOAD_MAX    /* topics.md: larger ones are not read */
#define EXACT_MAX 9007199254740992.0 /* 2^53: doubles hold integers exactly */

static void fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_codec: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

/* ---- the rules, written again from topics.md ---- */

/* Length of the well-formed UTF-8 sequence at s[0..len), or 0 if none
 * (Unicode 15, table 3-7: no overlongs, surrogates or code points past
 * U+10FFFF). */
static size_t
utf8_seq(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (len == 0)
		return 0;
	if (s[0] <= 0x7f)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++) {
		if (s[k] < 0x80 || s[k] > 0xbf)
			return 0;
	}
	return n;
}

static bool
ref_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq(p + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/*
 * Text the broker takes in a topic (mosquitto_validate_utf8): valid UTF-8
 * without C0 or C1 controls (U+0000-U+001F, U+007F-U+009F) and without
 * non-characters (U+FDD0-U+FDEF, and any whose low 16 bits are FFFE or
 * FFFF).
 */
static bool
ref_topic_text(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq(p + i, len - i);
		unsigned long cp;

		if (n == 0)
			return false;
		cp = n == 1 ? p[i] : (unsigned long)(p[i] & (0xff >> (n + 1)));
		for (size_t k = 1; k < n; k++)
			cp = (cp << 6) | (p[i + k] & 0x3f);
		if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) ||
		    (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xffff) >= 0xfffe)
			return false;
		i += n;
	}
	return true;
}

/* One topic level of 1..max bytes: topic text without wildcards or
 * separators, not starting with '$'. */
static bool
ref_level(const char *s, size_t len, size_t max)
{
	if (len < 1 || len > max || s[0] == '$')
		return false;
	if (memchr(s, '/', len) || memchr(s, '+', len) || memchr(s, '#', len))
		return false;
	return ref_topic_text(s, len);
}

static bool
ref_lock_id(const char *s, size_t len)
{
	return ref_level(s, len, MQL_LOCK_ID_MAX) && s[0] != '_';
}

static bool
ref_client_id(const char *s, size_t len)
{
	return ref_level(s, len, MQL_CLIENT_ID_MAX);
}

/* A --prefix: 1..MQL_PREFIX_MAX bytes of non-empty valid levels. */
static bool
ref_prefix(const char *s)
{
	size_t len = strlen(s);
	const char *p = s;

	if (len < 1 || len > MQL_PREFIX_MAX)
		return false;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);

		if (!ref_level(p, n, MQL_PREFIX_MAX))
			return false;
		if (slash == NULL)
			return true;
		p = slash + 1;
	}
}

/*
 * Does the JSON text spell U+0000 in a string?  Walks the strings from the
 * front, so it is only right for text cJSON accepted.
 */
static bool
spells_nul(const char *s, size_t len)
{
	bool in = false;

	for (size_t i = 0; i < len; i++) {
		if (!in) {
			in = s[i] == '"';
		} else if (s[i] == '"') {
			in = false;
		} else if (s[i] == '\\') {
			if (i + 5 < len && s[i + 1] == 'u' &&
			    memcmp(s + i + 2, "0000", 4) == 0)
				return true;
			i++;
		}
	}
	return false;
}

/* A decoded string: NUL-terminated inside its buffer, min..max bytes,
 * valid UTF-8. */
static void
check_str(const char *what, const char *s, size_t size, size_t min, size_t max)
{
	size_t n = strnlen(s, size);

	if (n == size)
		fail("%s is not terminated in its %zu-byte buffer", what, size);
	if (n < min || n > max)
		fail("%s has %zu bytes, not %zu..%zu", what, n, min, max);
	if (!ref_utf8(s, n))
		fail("%s is not valid UTF-8", what);
}

/* ---- plain cJSON readings, to compare with ---- */

/* The payload as one JSON object with only whitespace after it, or NULL. */
static cJSON *
plain_parse(const char *s, size_t len)
{
	const char *end = NULL;
	cJSON *j;

	if (len > PARSE_MAX || memchr(s, '\0', len) != NULL)
		return NULL;
	j = cJSON_ParseWithLengthOpts(s, len, &end, 0);
	if (j == NULL)
		return NULL;
	while (end != NULL && end < s + len && strchr(" \t\n\r", *end) != NULL)
		end++;
	if (end != s + len || !cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static const char *
plain_str(const cJSON *o, const char *name)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(f) ? f->valuestring : NULL;
}

/* A string field of min..max bytes of valid UTF-8 (or absent, if that
 * is allowed). */
static bool
ref_string(const cJSON *o, const char *name, size_t min, size_t max,
    bool optional)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
	size_t n;

	if (f == NULL)
		return optional;
	if (!cJSON_IsString(f) || f->valuestring == NULL)
		return false;
	n = strlen(f->valuestring);
	return n >= min && n <= max && ref_utf8(f->valuestring, n);
}

/* An optional integer from 0 to 2^53 - 1. */
static bool
ref_conn(const cJSON *o)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "conn");
	double d;

	if (f == NULL)
		return true;
	if (!cJSON_IsNumber(f))
		return false;
	d = f->valuedouble;
	return d >= 0.0 && d <= (double)MQL_CONN_MAX && (double)(int64_t)d == d;
}

/* Payload-wide rules: size, UTF-8, one JSON object, no U+0000. */
static bool
ref_payload(const char *payload, size_t len, const cJSON *j)
{
	return len <= MQL_PAYLOAD_MAX && ref_utf8(payload, len) && j != NULL &&
	    !spells_nul(payload, len);
}

static bool
ref_bool(const cJSON *o, const char *name)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

	return f == NULL || cJSON_IsBool(f);
}

/*
 * Whether topics.md accepts the request (its lock being valid; bound:
 * published on the topic of that client id, or NULL).
 */
static bool
ref_request(const char *payload, size_t len, const cJSON *j, const char *bound)
{
	const char *op, *client;
	bool query;

	if (!ref_payload(payload, len, j))
		return false;
	op = plain_str(j, "op");
	client = plain_str(j, "client");
	query = op != NULL && strcmp(op, "query") == 0;
	return op != NULL &&
	    (strcmp(op, "acquire") == 0 || strcmp(op, "release") == 0 ||
		strcmp(op, "activity") == 0 || query) &&
	    client != NULL && ref_client_id(client, strlen(client)) &&
	    (bound == NULL || strcmp(client, bound) == 0) &&
	    ref_string(j, "session", MQL_SESSION_MIN, MQL_SESSION_MAX, query) &&
	    ref_string(j, "user", 0, MQL_USER_MAX, true) && ref_conn(j) &&
	    ref_bool(j, "wait") && ref_bool(j, "takeover") &&
	    ref_string(j, "ticket", 1, MQL_TICKET_MAX, true);
}

/* The field must be a string equal to want (absent: want is dflt). */
static void
expect_str(const cJSON *o, const char *name, const char *want, const char *dflt)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

	if (f == NULL && dflt != NULL) {
		if (strcmp(want, dflt) != 0)
			fail("absent \"%s\" decoded as '%s'", name, want);
		return;
	}
	if (!cJSON_IsString(f) || f->valuestring == NULL)
		fail("\"%s\" is not a string", name);
	if (strcmp(f->valuestring, want) != 0)
		fail("\"%s\" is '%s', decoded '%s'", name, f->valuestring,
		    want);
}

/* The field must be the integer v exactly (v within +-2^53). */
static void
expect_int(const cJSON *o, const char *name, double v)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(f))
		fail("\"%s\" is not a number", name);
	if (f->valuedouble != v)
		fail("\"%s\" is %.17g, not %.17g", name, f->valuedouble, v);
}

static void
expect_conn(const cJSON *o, int64_t conn)
{
	if (conn < 0) {
		if (cJSON_GetObjectItemCaseSensitive(o, "conn") != NULL)
			fail("\"conn\" present but decoded as absent");
		return;
	}
	expect_int(o, "conn", (double)conn);
}

/* ---- topics ---- */

static void
check_topic(const char *prefix, const char *topic, struct codec_topic *out)
{
	size_t plen = strlen(prefix);
	enum codec_topic_kind kind = CODEC_T_OTHER;
	const char *lv[4] = {NULL};
	size_t ll[4] = {0}, n = 0;
	bool id_valid = false, bound = false, client_valid = false;
	const char *id = "";
	size_t idlen = 0;
	char buf[MQL_PREFIX_MAX + MQL_CLIENT_ID_MAX + 32];

	codec_parse_topic(prefix, topic, out);

	/* The levels after "prefix/", counted up to five. */
	if (strncmp(topic, prefix, plen) == 0 && topic[plen] == '/') {
		const char *p = topic + plen + 1;

		for (;;) {
			const char *slash = strchr(p, '/');

			if (n < 4) {
				lv[n] = p;
				ll[n] = slash != NULL ? (size_t)(slash - p)
						      : strlen(p);
			}
			n++;
			if (slash == NULL || n > 4)
				break;
			p = slash + 1;
		}
	}
#define IS(i, w) (ll[i] == strlen(w) && memcmp(lv[i], w, ll[i]) == 0)
	if ((n == 2 || n == 3) && IS(1, "request")) {
		kind = CODEC_T_REQUEST;
		id_valid = ref_lock_id(lv[0], ll[0]);
		id = lv[0];
		idlen = ll[0];
	} else if ((n == 2 || n == 3) && IS(0, "_admin") && IS(1, "command")) {
		kind = CODEC_T_ADMIN;
	} else if (n == 3 && IS(0, "_clients") && IS(2, "will")) {
		kind = CODEC_T_WILL;
		id_valid = ref_client_id(lv[1], ll[1]);
		id = lv[1];
		idlen = ll[1];
	}
#undef IS
	if (out->kind != kind)
		fail("topic '%s' under '%s': kind %d, expected %d", topic,
		    prefix, (int)out->kind, (int)kind);
	/* A third level after request or command: the sender's client id. */
	if (kind != CODEC_T_OTHER && kind != CODEC_T_WILL && n == 3) {
		bound = true;
		client_valid = ref_client_id(lv[2], ll[2]);
	}
	if (out->bound != bound || out->client_valid != client_valid)
		fail("topic '%s': bound %d client_valid %d, expected %d %d",
		    topic, out->bound, out->client_valid, bound, client_valid);
	if (client_valid &&
	    (strlen(out->client) != ll[2] ||
		memcmp(out->client, lv[2], ll[2]) != 0))
		fail("topic '%s': client '%s'", topic, out->client);
	if (!client_valid && out->client[0] != '\0')
		fail("topic '%s': a client from an invalid level", topic);
	if (out->id_valid != id_valid)
		fail("topic '%s': id_valid %d, expected %d", topic,
		    out->id_valid, id_valid);
	if (!id_valid) {
		if (out->id[0] != '\0')
			fail("topic '%s': an id from an invalid level", topic);
		return;
	}
	check_str("topic id", out->id, sizeof(out->id), 1, MQL_LOCK_ID_MAX);
	if (strlen(out->id) != idlen || memcmp(out->id, id, idlen) != 0)
		fail("topic '%s': id '%s'", topic, out->id);
	/* Writing the topic again gives the same text. */
	if (bound)
		return;
	if (kind == CODEC_T_REQUEST &&
	    codec_topic(buf, sizeof(buf), prefix, out->id, "request") != 0)
		fail("codec_topic: no room for '%s'", topic);
	if (kind == CODEC_T_WILL &&
	    codec_client_topic(buf, sizeof(buf), prefix, out->id, "will") != 0)
		fail("codec_client_topic: no room for '%s'", topic);
	if (strcmp(buf, topic) != 0)
		fail("topic '%s' written back as '%s'", topic, buf);
}

/* codec_topic into a buffer of every small size: fits exactly or fails. */
static void
check_topic_sizes(const char *prefix, const char *a, const char *b)
{
	size_t want =
	    strlen(prefix) + 1 + strlen(a) + (b != NULL ? 1 + strlen(b) : 0);

	for (size_t size = want > 2 ? want - 2 : 0; size <= want + 1; size++) {
		char *buf = malloc(size > 0 ? size : 1);
		int rc;

		if (buf == NULL)
			fail("out of memory");
		rc = codec_topic(size > 0 ? buf : NULL, size, prefix, a, b);
		if ((rc == 0) != (size > want))
			fail("codec_topic: %d for %zu bytes in %zu", rc, want,
			    size);
		if (rc == 0 && strlen(buf) != want)
			fail("codec_topic: wrote %zu bytes, not %zu",
			    strlen(buf), want);
		free(buf);
	}
}

/* ---- requests ---- */

static bool
request_equal(const struct lt_request *a, const struct lt_request *b)
{
	/* "wait" only means something for acquire; encoders leave it out. */
	bool wait_same = a->op != LT_OP_ACQUIRE || a->wait == b->wait;

	return a->op == b->op && strcmp(a->lock, b->lock) == 0 &&
	    strcmp(a->client, b->client) == 0 &&
	    strcmp(a->session, b->session) == 0 &&
	    strcmp(a->user, b->user) == 0 && a->conn == b->conn &&
	    a->takeover == b->takeover && strcmp(a->ticket, b->ticket) == 0 &&
	    wait_same;
}

static void
check_refusal(const char *what, enum lt_err rc, const struct codec_error *err)
{
	if (rc == LT_OK)
		return;
	if (err->code != rc)
		fail("%s: returned %d, error says %d", what, (int)rc,
		    (int)err->code);
	if (err->message == NULL || err->message[0] == '\0')
		fail("%s: refusal without a message", what);
	check_str("err->client", err->client, sizeof(err->client), 0,
	    MQL_CLIENT_ID_MAX);
	if (err->client[0] != '\0' &&
	    !ref_client_id(err->client, strlen(err->client)))
		fail("%s: refusal names invalid client '%s'", what,
		    err->client);
}

static void
check_decoded_request(const struct lt_request *rq, const char *lock)
{
	if (rq->op != LT_OP_ACQUIRE && rq->op != LT_OP_RELEASE &&
	    rq->op != LT_OP_ACTIVITY && rq->op != LT_OP_QUERY)
		fail("request: op %d", (int)rq->op);
	if (strcmp(rq->lock, lock) != 0)
		fail("request: lock '%s', not '%s'", rq->lock, lock);
	check_str("request client", rq->client, sizeof(rq->client), 1,
	    MQL_CLIENT_ID_MAX);
	if (!ref_client_id(rq->client, strlen(rq->client)))
		fail("request: invalid client '%s'", rq->client);
	if (rq->op != LT_OP_QUERY || rq->session[0] != '\0')
		check_str("request session", rq->session, sizeof(rq->session),
		    MQL_SESSION_MIN, MQL_SESSION_MAX);
	check_str("request ticket", rq->ticket, sizeof(rq->ticket), 0,
	    MQL_TICKET_MAX);
	if (rq->uid[0] != '\0')
		fail("request: the codec set a uid");
	check_str("request user", rq->user, sizeof(rq->user), 0, MQL_USER_MAX);
	if (rq->conn < -1 || rq->conn > MQL_CONN_MAX)
		fail("request: conn %lld", (long long)rq->conn);
}

/* Encode rq, check the JSON, decode it again: the same request. */
static void
round_trip_request(const struct lt_request *rq)
{
	struct lt_request again;
	struct codec_error err;
	char *s = codec_encode_request(rq);
	cJSON *j;
	enum lt_err rc;

	if (s == NULL)
		fail("codec_encode_request: NULL");
	if ((j = plain_parse(s, strlen(s))) == NULL)
		fail("codec_encode_request wrote no JSON object: %s", s);
	cJSON_Delete(j);
	rc = codec_decode_request(s, strlen(s), rq->lock, NULL, &again, &err);
	if (rc != LT_OK)
		fail("re-encoded request refused (%d, %s): %s", (int)rc,
		    err.message, s);
	if (!request_equal(rq, &again))
		fail("request changed in a round trip: %s", s);
	free(s);
}

static void
check_request(const char *payload, size_t len, const char *lock)
{
	struct lt_request rq, rq2, rq3;
	struct codec_error err, err2, err3;
	enum lt_err rc, rc2, rc3;
	cJSON *j;
	bool nul_escape;

	j = plain_parse(payload, len);
	nul_escape = j != NULL && spells_nul(payload, len);
	rc = codec_decode_request(payload, len, lock, NULL, &rq, &err);
	check_refusal("codec_decode_request", rc, &err);
	rc2 = codec_decode_request(payload, len, NULL, NULL, &rq2, &err2);
	check_refusal("codec_decode_request (no lock)", rc2, &err2);
	rc3 = codec_decode_request(payload, len, lock, CLIENT_OK, &rq3, &err3);
	check_refusal("codec_decode_request (bound)", rc3, &err3);

	/* On a bound topic: only that client's, and it is always named. */
	if (rc3 != LT_ERR_INTERNAL &&
	    (rc3 == LT_OK) != ref_request(payload, len, j, CLIENT_OK))
		fail("bound request %s, topics.md says %s",
		    rc3 == LT_OK ? "accepted" : err3.message,
		    rc3 == LT_OK ? "refuse" : "accept");
	if (rc3 != LT_OK && strcmp(err3.client, CLIENT_OK) != 0)
		fail("a bound refusal names '%s'", err3.client);
	if (rc3 == LT_OK && (rc != LT_OK || !request_equal(&rq, &rq3)))
		fail("bound and unbound decodings differ");

	/* The codec decides as topics.md does. */
	if (rc != LT_ERR_INTERNAL &&
	    (rc == LT_OK) != ref_request(payload, len, j, NULL))
		fail("request %s, topics.md says %s",
		    rc == LT_OK ? "accepted" : err.message,
		    rc == LT_OK ? "refuse" : "accept");
	if (rc2 != LT_ERR_INTERNAL &&
	    rc2 !=
		(ref_payload(payload, len, j) ? LT_ERR_INVALID_LOCK
					      : LT_ERR_BAD_REQUEST))
		fail("request without a lock: %d (%s)", (int)rc2, err2.message);
	if (strcmp(err.client, err2.client) != 0)
		fail("the lock changed whom a refusal names");

	/* Whom a refusal names: the valid "client" of any JSON object. */
	if (!nul_escape) {
		const char *c = j != NULL ? plain_str(j, "client") : NULL;
		const char *want =
		    c != NULL && ref_client_id(c, strlen(c)) ? c : "";

		if (strcmp(err2.client, want) != 0)
			fail("refusal names '%s', expected '%s'", err2.client,
			    want);
	}
	if (rc != LT_OK) {
		if (rc != LT_ERR_BAD_REQUEST && rc != LT_ERR_INTERNAL)
			fail("request refused with %d", (int)rc);
		cJSON_Delete(j);
		return;
	}

	/* Accepted: within every bound, and what cJSON reads too. */
	if (len > MQL_PAYLOAD_MAX || !ref_utf8(payload, len) || nul_escape ||
	    j == NULL)
		fail("accepted a request of %zu bytes that breaks the rules",
		    len);
	check_decoded_request(&rq, lock);
	if (strcmp(err.client, rq.client) != 0)
		fail("err->client differs from the request's client");
	expect_str(j, "op", codec_op_name(rq.op), NULL);
	expect_str(j, "client", rq.client, NULL);
	expect_str(j, "session", rq.session, "");
	expect_str(j, "user", rq.user, "");
	expect_str(j, "ticket", rq.ticket, "");
	expect_conn(j, rq.conn);
	{
		const cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "wait");
		const cJSON *t =
		    cJSON_GetObjectItemCaseSensitive(j, "takeover");

		if (rq.wait != (w == NULL || cJSON_IsTrue(w)))
			fail("wait decoded as %d", rq.wait);
		if (rq.takeover != (t != NULL && cJSON_IsTrue(t)))
			fail("takeover decoded as %d", rq.takeover);
	}
	cJSON_Delete(j);
	round_trip_request(&rq);
}

/* ---- wills ---- */

static void
check_will(const char *payload, size_t len, const char *client)
{
	struct lt_will w, again;
	enum lt_err rc = codec_decode_will(payload, len, client, &w);
	cJSON *j;
	char *s;

	bool ok;

	if (codec_decode_will(payload, len, "bad/client", &again) == LT_OK ||
	    codec_decode_will(payload, len, "", &again) == LT_OK)
		fail("a will of an invalid client was accepted");
	j = plain_parse(payload, len);
	ok = ref_payload(payload, len, j) &&
	    ref_string(j, "session", MQL_SESSION_MIN, MQL_SESSION_MAX, false) &&
	    ref_conn(j);
	if (rc != LT_ERR_INTERNAL && (rc == LT_OK) != ok)
		fail("will %s, topics.md says %s",
		    rc == LT_OK ? "accepted" : "refused",
		    ok ? "accept" : "refuse");
	if (rc != LT_OK) {
		if (rc != LT_ERR_BAD_REQUEST && rc != LT_ERR_INTERNAL)
			fail("will refused with %d", (int)rc);
		cJSON_Delete(j);
		return;
	}
	if (strcmp(w.client, client) != 0)
		fail("will: client '%s', not '%s'", w.client, client);
	check_str("will session", w.session, sizeof(w.session), MQL_SESSION_MIN,
	    MQL_SESSION_MAX);
	if (w.conn < -1 || w.conn > MQL_CONN_MAX)
		fail("will: conn %lld", (long long)w.conn);
	expect_str(j, "session", w.session, NULL);
	expect_conn(j, w.conn);
	cJSON_Delete(j);

	if ((s = codec_encode_will(w.session, w.conn)) == NULL)
		fail("codec_encode_will: NULL");
	if (codec_decode_will(s, strlen(s), client, &again) != LT_OK)
		fail("re-encoded will refused: %s", s);
	if (strcmp(again.client, w.client) != 0 ||
	    strcmp(again.session, w.session) != 0 || again.conn != w.conn)
		fail("will changed in a round trip: %s", s);
	free(s);
}

/* ---- admin commands ---- */

static void
check_admin(const char *payload, size_t len)
{
	struct lt_admin b, again;
	struct codec_error err;
	enum lt_event_kind kind = LT_EV_TICK, kind2 = LT_EV_TICK;
	enum lt_err rc = codec_decode_admin(payload, len, &kind, &b, &err);
	cJSON *j, *o;
	char *s;

	const char *op, *lock;
	enum lt_err want = LT_ERR_BAD_REQUEST;

	check_refusal("codec_decode_admin", rc, &err);
	j = plain_parse(payload, len);
	op = j != NULL ? plain_str(j, "op") : NULL;
	lock = j != NULL ? plain_str(j, "lock") : NULL;
	if (ref_payload(payload, len, j) && op != NULL &&
	    (strcmp(op, "break") == 0 || strcmp(op, "purge") == 0) &&
	    lock != NULL) {
		if (!ref_lock_id(lock, strlen(lock)))
			want = LT_ERR_INVALID_LOCK;
		else if (ref_string(j, "reason", 0, MQL_REASON_MAX, true))
			want = LT_OK;
	}
	if (rc != want)
		fail("admin: %d (%s), topics.md says %d", (int)rc,
		    rc != LT_OK ? err.message : "accepted", (int)want);
	if (rc != LT_OK) {
		if (err.client[0] != '\0')
			fail("a refused admin command names client '%s'",
			    err.client);
		cJSON_Delete(j);
		return;
	}
	if (kind != (strcmp(op, "break") == 0 ? LT_EV_BREAK : LT_EV_PURGE))
		fail("admin op '%s' decoded as %d", op, (int)kind);
	check_str("admin lock", b.lock, sizeof(b.lock), 1, MQL_LOCK_ID_MAX);
	if (!ref_lock_id(b.lock, strlen(b.lock)))
		fail("admin: invalid lock '%s'", b.lock);
	check_str("admin reason", b.reason, sizeof(b.reason), 0,
	    MQL_REASON_MAX);
	expect_str(j, "lock", b.lock, NULL);
	expect_str(j, "reason", b.reason, "");
	cJSON_Delete(j);

	/* There is no encoder for admin commands: write one with cJSON. */
	o = cJSON_CreateObject();
	if (o == NULL ||
	    cJSON_AddStringToObject(o, "op",
		kind == LT_EV_BREAK ? "break" : "purge") == NULL ||
	    cJSON_AddStringToObject(o, "lock", b.lock) == NULL ||
	    cJSON_AddStringToObject(o, "reason", b.reason) == NULL ||
	    (s = cJSON_PrintUnformatted(o)) == NULL)
		fail("out of memory");
	cJSON_Delete(o);
	if (codec_decode_admin(s, strlen(s), &kind2, &again, &err) != LT_OK)
		fail("re-encoded admin command refused (%s): %s", err.message,
		    s);
	if (kind2 != kind || strcmp(again.lock, b.lock) != 0 ||
	    strcmp(again.reason, b.reason) != 0)
		fail("admin command changed in a round trip: %s", s);
	free(s);
}

/* ---- encoders, on values drawn from the input ---- */

struct src {
	const uint8_t *p;
	size_t n, i;
};

static unsigned
next8(struct src *s)
{
	return s->i < s->n ? s->p[s->i++] : 0;
}

static uint64_t
next64(struct src *s)
{
	uint64_t v = 0;

	for (int k = 0; k < 8; k++)
		v = (v << 8) | next8(s);
	return v;
}

/* An integer within +-2^53, so that a double holds it exactly. */
static int64_t
next53(struct src *s)
{
	uint64_t v = next64(s);
	int64_t m = (int64_t)(v % (uint64_t)MQL_CONN_MAX);

	return (v >> 63) ? -m : m;
}

/*
 * Up to max bytes of the input as a string cJSON can carry unchanged: valid
 * UTF-8 sequences are kept, other bytes (and NUL) become '?'.
 */
static void
next_str(struct src *s, char *dst, size_t max)
{
	size_t want = next8(s), n = 0;

	if (want > max)
		want = max;
	if (want > s->n - s->i)
		want = s->n - s->i;
	while (n < want) {
		const unsigned char *p = s->p + s->i;
		size_t k = utf8_seq(p, want - n);

		if (k == 0 || p[0] == '\0') {
			dst[n++] = '?';
			s->i++;
		} else {
			memcpy(dst + n, p, k);
			n += k;
			s->i += k;
		}
	}
	dst[n] = '\0';
}

static cJSON *
parse_encoded(const char *what, char *s)
{
	cJSON *j;

	if (s == NULL)
		fail("%s: NULL", what);
	j = cJSON_Parse(s);
	if (j == NULL || !cJSON_IsObject(j))
		fail("%s wrote no JSON object: %s", what, s);
	free(s);
	return j;
}

static void
expect_null(const cJSON *o, const char *name)
{
	if (!cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, name)))
		fail("\"%s\" is not null", name);
}

static void
expect_absent(const cJSON *o, const char *name)
{
	if (cJSON_GetObjectItemCaseSensitive(o, name) != NULL)
		fail("\"%s\" is present", name);
}

static void
expect_bool(const cJSON *o, const char *name, bool v)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsBool(f) || cJSON_IsTrue(f) != v)
		fail("\"%s\" is not %s", name, v ? "true" : "false");
}

static void
expect_party(const cJSON *p, const char *client, const char *user,
    const char *uid, bool connected)
{
	if (!cJSON_IsObject(p))
		fail("a party is not an object");
	expect_str(p, "client", client, NULL);
	expect_str(p, "user", user != NULL ? user : "", NULL);
	if (uid != NULL)
		expect_str(p, "uid", uid, NULL);
	else
		expect_absent(p, "uid");
	expect_bool(p, "connected", connected);
}

static const char *const messages[] = {NULL, "", "a \"quoted\" message",
    "lock id must be 1-128 bytes"};

static void
check_event(struct src *s, const char *lock, const char *client,
    const char *detail)
{
	struct lt_fx fx;
	cJSON *j;

	memset(&fx, 0, sizeof(fx));
	fx.kind = LT_FX_EVENT;
	fx.what.event = (enum lt_event_type)(next8(s) % 7);
	snprintf(fx.client, sizeof(fx.client), "%s", client);
	snprintf(fx.lock, sizeof(fx.lock), "%s", lock);
	fx.token = (uint64_t)next53(s) & (uint64_t)MQL_CONN_MAX;
	fx.position = (uint32_t)next64(s);
	fx.deadline = next53(s);
	fx.reason = (enum lt_reason)(next8(s) % 4);
	fx.code = (enum lt_err)(next8(s) % (LT_ERR_INTERNAL + 1));
	fx.message = messages[next8(s) % 4];
	fx.now = next53(s);
	snprintf(fx.detail, sizeof(fx.detail), "%s", detail);

	j = parse_encoded("codec_encode_event", codec_encode_event(&fx));
	expect_int(j, "now", (double)fx.now);
	expect_str(j, "event", codec_event_name(fx.what.event), NULL);
	if (lock[0] == '\0')
		expect_null(j, "lock");
	else
		expect_str(j, "lock", lock, NULL);
	switch (fx.what.event) {
	case LT_E_GRANTED:
		expect_int(j, "token", (double)fx.token);
		expect_int(j, "idle_deadline", (double)fx.deadline);
		break;
	case LT_E_QUEUED:
		expect_int(j, "position", (double)fx.position);
		break;
	case LT_E_REVOKED:
		expect_str(j, "reason", codec_reason_name(fx.reason), NULL);
		expect_int(j, "token", (double)fx.token);
		if (fx.reason == LT_REASON_ADMIN)
			expect_str(j, "message", detail, NULL);
		else
			expect_absent(j, "message");
		break;
	case LT_E_DROPPED:
		expect_str(j, "reason", codec_reason_name(fx.reason), NULL);
		if (fx.reason == LT_REASON_ADMIN)
			expect_str(j, "message", detail, NULL);
		else
			expect_absent(j, "message");
		break;
	case LT_E_IDLE_WARNING:
		expect_int(j, "deadline", (double)fx.deadline);
		break;
	case LT_E_ERROR:
		expect_str(j, "code", codec_err_name(fx.code), NULL);
		expect_str(j, "message", fx.message ? fx.message : "", NULL);
		break;
	case LT_E_BUSY:
	default:
		if (cJSON_GetArraySize(j) != 3)
			fail("busy event with extra fields");
		break;
	}
	cJSON_Delete(j);
}

static void
check_reply(struct src *s, const char *lock, const char *client)
{
	struct lt_fx fx;
	cJSON *j;

	memset(&fx, 0, sizeof(fx));
	fx.kind = LT_FX_REPLY;
	fx.what.result = (enum lt_result)(next8(s) % (LT_R_ERROR + 1));
	if (fx.what.result == LT_R_STATE) /* codec_encode_state's */
		fx.what.result = LT_R_PURGED;
	snprintf(fx.client, sizeof(fx.client), "%s", client);
	snprintf(fx.lock, sizeof(fx.lock), "%s", lock);
	fx.token = (uint64_t)next53(s) & (uint64_t)MQL_CONN_MAX;
	fx.position = (uint32_t)next64(s);
	fx.code = (enum lt_err)(next8(s) % (LT_ERR_INTERNAL + 1));
	fx.message = messages[next8(s) % 4];
	fx.count = (uint32_t)next64(s);

	j = parse_encoded("codec_encode_reply", codec_encode_reply(&fx));
	if (fx.what.result == LT_R_ERROR) {
		expect_bool(j, "ok", false);
		if (lock[0] == '\0')
			expect_absent(j, "lock");
		else
			expect_str(j, "lock", lock, NULL);
		expect_str(j, "code", codec_err_name(fx.code), NULL);
		expect_str(j, "message", fx.message ? fx.message : "", NULL);
		cJSON_Delete(j);
		return;
	}
	expect_bool(j, "ok", true);
	expect_str(j, "lock", lock, NULL);
	expect_str(j, "result", codec_result_name(fx.what.result), NULL);
	if (fx.what.result == LT_R_GRANTED || fx.what.result == LT_R_REVOKED)
		expect_int(j, "token", (double)fx.token);
	else
		expect_absent(j, "token");
	if (fx.what.result == LT_R_QUEUED)
		expect_int(j, "position", (double)fx.position);
	else
		expect_absent(j, "position");
	if (fx.what.result == LT_R_PURGED)
		expect_int(j, "count", (double)fx.count);
	else
		expect_absent(j, "count");
	cJSON_Delete(j);
}

#define NWAITERS_MAX (MQL_OWNER_QUEUE_SHOWN + 5)

static void
check_owner(struct src *s, const char *lock, const char *a, const char *b)
{
	struct lt_waiter_rec w[NWAITERS_MAX];
	struct lt_lock_rec rec;
	unsigned flags = next8(s);
	const cJSON *q;
	cJSON *j;

	memset(&rec, 0, sizeof(rec));
	rec.id = lock;
	if (flags & 1) {
		rec.holder = a;
		rec.holder_user = (flags & 2) ? b : NULL;
		rec.holder_uid = (flags & 16) ? b : NULL;
		rec.holder_connected = (flags & 4) != 0;
		rec.token = (uint64_t)next53(s) & (uint64_t)MQL_CONN_MAX;
		rec.idle_deadline = next53(s);
	}
	rec.since = next53(s);
	rec.nwaiters = next8(s) % (NWAITERS_MAX + 1);
	for (size_t i = 0; i < rec.nwaiters; i++) {
		unsigned f = next8(s);

		w[i].client = (f & 1) ? a : b;
		w[i].user = (f & 2) ? a : (f & 4) ? NULL : b;
		w[i].uid = (f & 16) ? a : NULL;
		w[i].connected = (f & 8) != 0;
	}
	rec.waiters = w;

	j = parse_encoded("codec_encode_owner", codec_encode_owner(&rec));
	expect_int(j, "v", MQL_PROTOCOL_VERSION);
	expect_str(j, "lock", lock, NULL);
	expect_int(j, "since", (double)rec.since);
	if (rec.holder != NULL) {
		expect_party(cJSON_GetObjectItemCaseSensitive(j, "owner"),
		    rec.holder, rec.holder_user, rec.holder_uid,
		    rec.holder_connected);
		expect_int(j, "token", (double)rec.token);
		expect_int(j, "idle_deadline", (double)rec.idle_deadline);
	} else {
		expect_null(j, "owner");
		expect_null(j, "token");
		expect_null(j, "idle_deadline");
	}
	expect_int(j, "waiting", (double)rec.nwaiters);
	q = cJSON_GetObjectItemCaseSensitive(j, "queue");
	if (!cJSON_IsArray(q))
		fail("owner: queue is not an array");
	if ((size_t)cJSON_GetArraySize(q) !=
	    (rec.nwaiters < MQL_OWNER_QUEUE_SHOWN ? rec.nwaiters
						  : MQL_OWNER_QUEUE_SHOWN))
		fail("owner: %d waiters listed of %zu", cJSON_GetArraySize(q),
		    rec.nwaiters);
	for (int i = 0; i < cJSON_GetArraySize(q); i++)
		expect_party(cJSON_GetArrayItem(q, i), w[i].client, w[i].user,
		    w[i].uid, w[i].connected);
	cJSON_Delete(j);
}

static void
check_status(struct src *s, const char *version, const char *error)
{
	static const char *const tickets[] = {"off", "optional", "required"};
	struct codec_status st;
	bool with_error;
	cJSON *j;

	memset(&st, 0, sizeof(st));
	st.online = next8(s) & 1;
	with_error = next8(s) & 1;
	st.since = next53(s);
	st.epoch = next64(s);
	st.version = version;
	st.error = with_error ? error : NULL;
	st.grace = next53(s);
	st.idle_timeout = next53(s);
	st.idle_warning = next53(s);
	st.idle_policy = (enum lt_idle_policy)(next8(s) % 2);
	st.keepalive = next53(s);
	st.tickets = (enum codec_tickets)(next8(s) % 3);
	j = parse_encoded("codec_encode_status", codec_encode_status(&st));
	expect_str(j, "state", st.online ? "online" : "offline", NULL);
	expect_str(j, "version", version, NULL);
	expect_int(j, "protocol", MQL_PROTOCOL_VERSION);
	expect_int(j, "since", (double)st.since);
	if ((double)st.epoch < EXACT_MAX)
		expect_int(j, "epoch", (double)st.epoch);
	expect_int(j, "grace", (double)st.grace);
	expect_int(j, "idle_timeout", (double)st.idle_timeout);
	expect_int(j, "idle_warning", (double)st.idle_warning);
	expect_str(j, "idle_policy",
	    st.idle_policy == LT_IDLE_ALWAYS ? "always" : "contended", NULL);
	expect_int(j, "keepalive", (double)st.keepalive);
	expect_str(j, "tickets", tickets[st.tickets], NULL);
	if (with_error)
		expect_str(j, "error", error, NULL);
	else
		expect_absent(j, "error");
	cJSON_Delete(j);
}

/* Requests and wills from strings that were never validated. */
static void
check_request_encoders(struct src *s, const char *a, const char *b)
{
	struct lt_request rq;
	unsigned f = next8(s);
	cJSON *j;

	memset(&rq, 0, sizeof(rq));
	rq.op = (enum lt_op)(f % 4);
	snprintf(rq.client, sizeof(rq.client), "%s", a);
	snprintf(rq.session, sizeof(rq.session), "%s", b);
	snprintf(rq.user, sizeof(rq.user), "%s", (f & 4) ? a : "");
	rq.conn = (f & 8) ? -1 : next53(s);
	if (rq.conn < -1)
		rq.conn = -rq.conn;
	rq.wait = (f & 16) != 0;
	rq.takeover = (f & 32) != 0;
	snprintf(rq.ticket, sizeof(rq.ticket), "%s", (f & 64) ? b : "");
	j = parse_encoded("codec_encode_request", codec_encode_request(&rq));
	expect_str(j, "op", codec_op_name(rq.op), NULL);
	expect_str(j, "client", rq.client, NULL);
	expect_str(j, "session", rq.session, "");
	expect_str(j, "ticket", rq.ticket, "");
	if (rq.takeover)
		expect_bool(j, "takeover", true);
	else
		expect_absent(j, "takeover");
	expect_str(j, "user", rq.user, "");
	expect_conn(j, rq.conn);
	if (rq.op == LT_OP_ACQUIRE && !rq.wait)
		expect_bool(j, "wait", false);
	else
		expect_absent(j, "wait");
	cJSON_Delete(j);

	j = parse_encoded("codec_encode_will",
	    codec_encode_will(rq.session, rq.conn));
	expect_str(j, "session", rq.session, NULL);
	expect_conn(j, rq.conn);
	cJSON_Delete(j);
}

static void
check_encoders(const uint8_t *data, size_t size)
{
	struct src s = {data, size, 0};
	char lock[MQL_LOCK_ID_SZ], a[MQL_CLIENT_ID_SZ], b[MQL_USER_SZ];
	char detail[MQL_REASON_SZ];

	next_str(&s, lock, MQL_LOCK_ID_MAX);
	next_str(&s, a, MQL_CLIENT_ID_MAX);
	next_str(&s, b, MQL_USER_MAX);
	next_str(&s, detail, MQL_REASON_MAX);
	check_event(&s, lock, a, detail);
	check_reply(&s, lock, a);
	check_owner(&s, lock, a, b);
	check_status(&s, b, detail);
	check_request_encoders(&s, a, b);
}

/* ---- the entry point ---- */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t tlen = nul != NULL ? (size_t)(nul - data) : size;
	const uint8_t *pstart = nul != NULL ? nul + 1 : data;
	size_t plen = size - (size_t)(pstart - data);
	char *topic = malloc(tlen + 1);
	/* Exactly the payload's size: reading past it is caught. */
	char *payload = calloc(plen > 0 ? plen : 1, 1);
	struct codec_topic t1, t2;
	const char *lock = LOCK_OK, *client = CLIENT_OK;

	if (topic == NULL || payload == NULL)
		fail("out of memory");
	memcpy(topic, data, tlen);
	topic[tlen] = '\0';
	if (plen > 0)
		memcpy(payload, pstart, plen);

	if (codec_utf8_valid(payload, plen) != ref_utf8(payload, plen))
		fail("codec_utf8_valid differs on the payload");
	if (codec_utf8_valid(topic, tlen) != ref_utf8(topic, tlen))
		fail("codec_utf8_valid differs on the topic");
	if (codec_lock_id_valid(topic, tlen) != ref_lock_id(topic, tlen))
		fail("codec_lock_id_valid differs on '%s'", topic);
	if (codec_client_id_valid(topic, tlen) != ref_client_id(topic, tlen))
		fail("codec_client_id_valid differs on '%s'", topic);
	if (codec_prefix_valid(topic) != ref_prefix(topic))
		fail("codec_prefix_valid differs on '%s'", topic);

	check_topic("locks", topic, &t1);
	check_topic("site/locks", topic, &t2);
	if (t1.kind == CODEC_T_REQUEST && t1.id_valid)
		lock = t1.id;
	if (t1.kind == CODEC_T_WILL && t1.id_valid)
		client = t1.id;
	if (tlen <= MQL_CLIENT_ID_MAX)
		check_topic_sizes("locks", topic, tlen % 2 ? "request" : NULL);

	if (codec_topic_text_valid(topic, tlen) != ref_topic_text(topic, tlen))
		fail("codec_topic_text_valid differs on the topic");
	if (codec_topic_text_valid(payload, plen) !=
	    ref_topic_text(payload, plen))
		fail("codec_topic_text_valid differs on the payload");
	check_request(payload, plen, lock);
	check_will(payload, plen, client);
	check_admin(payload, plen);
	check_encoders(pstart, plen);

	free(topic);
	free(payload);
	return 0;
}
