/*
 * test_codec: names, topics, payload decoding and encoding.
 *
 * Decoders get hostile bytes: every payload is copied into a buffer of
 * exactly its length (no terminating NUL to lean on), and every refusal is
 * checked for its code and for whether it names the client to tell.
 * Encoders are checked by parsing what they produce and comparing the exact
 * set of fields with topics.md; large integers are checked as text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/codec.h"

#define S16 "0123456789abcdef"
#define BIG 9007199254740991LL /* 2^53 - 1 */
#define LOCK "doc-1"

/* ---- helpers ---- */

/* A copy of len bytes in a buffer of exactly that size. */
static void *
exact(const void *p, size_t len)
{
	void *q = malloc(len > 0 ? len : 1);

	assert_non_null(q);
	if (len > 0)
		memcpy(q, p, len);
	return q;
}

/* s repeated n times (n * strlen(s) bytes), NUL-terminated. */
static char *
repeat(const char *s, size_t n)
{
	size_t k = strlen(s);
	char *p = malloc(n * k + 1);

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		memcpy(p + i * k, s, k);
	p[n * k] = '\0';
	return p;
}

static char *
cat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *p = malloc(la + lb + lc + 1);

	assert_non_null(p);
	memcpy(p, a, la);
	memcpy(p + la, b, lb);
	memcpy(p + la + lb, c, lc + 1);
	return p;
}

/* head, then 'p' up to total - 2 bytes, then "} : exactly total bytes. */
static char *
padded(const char *head, size_t total)
{
	size_t k = strlen(head);
	char *p;

	assert_true(total >= k + 2);
	p = malloc(total + 1);
	assert_non_null(p);
	memcpy(p, head, k);
	memset(p + k, 'p', total - k - 2);
	p[total - 2] = '"';
	p[total - 1] = '}';
	p[total] = '\0';
	return p;
}

static enum lt_err
dec_len(const void *payload, size_t len, const char *lock,
    struct lt_request *out, struct codec_error *err)
{
	void *buf = exact(payload, len);
	enum lt_err rc = codec_decode_request(buf, len, lock, NULL, out, err);

	free(buf);
	return rc;
}

static enum lt_err
dec(const char *json, struct lt_request *out, struct codec_error *err)
{
	return dec_len(json, strlen(json), LOCK, out, err);
}

static enum lt_err
dec_will(const char *json, const char *client, struct lt_will *out)
{
	size_t len = strlen(json);
	void *buf = exact(json, len);
	enum lt_err rc = codec_decode_will(buf, len, client, out);

	free(buf);
	return rc;
}

static enum lt_err
dec_bound(const char *json, const char *bound, struct lt_request *out,
    struct codec_error *err)
{
	size_t len = strlen(json);
	void *buf = exact(json, len);
	enum lt_err rc = codec_decode_request(buf, len, LOCK, bound, out, err);

	free(buf);
	return rc;
}

static enum lt_err
dec_admin(const char *json, enum lt_event_kind *kind, struct lt_admin *out,
    struct codec_error *err)
{
	size_t len = strlen(json);
	void *buf = exact(json, len);
	enum lt_err rc = codec_decode_admin(buf, len, kind, out, err);

	free(buf);
	return rc;
}

static enum lt_err
dec_break(const char *json, struct lt_admin *out, struct codec_error *err)
{
	enum lt_event_kind kind = LT_EV_TICK;
	enum lt_err rc = dec_admin(json, &kind, out, err);

	if (rc == LT_OK)
		assert_int_equal(kind, LT_EV_BREAK);
	return rc;
}

/*
 * A refused request: the code, a message, and err->client names `named`
 * (NULL: nobody).
 */
static void
refused_len(const void *payload, size_t len, const char *lock, enum lt_err code,
    const char *named)
{
	struct lt_request out;
	struct codec_error err;
	enum lt_err rc = dec_len(payload, len, lock, &out, &err);

	if (rc != code || err.code != code) {
		fail_msg("payload %.*s: code %d (err.code %d), want %d",
		    (int)(len < 200 ? len : 200), (const char *)payload, rc,
		    err.code, code);
	}
	assert_non_null(err.message);
	assert_true(err.message[0] != '\0');
	if (named == NULL && err.client[0] != '\0')
		fail_msg("payload %.*s: names client '%s', should name nobody",
		    (int)(len < 200 ? len : 200), (const char *)payload,
		    err.client);
	if (named != NULL && strcmp(err.client, named) != 0)
		fail_msg("payload %.*s: names client '%s', should name '%s'",
		    (int)(len < 200 ? len : 200), (const char *)payload,
		    err.client, named);
}

static void
refused(const char *json, enum lt_err code, const char *named)
{
	refused_len(json, strlen(json), LOCK, code, named);
}

static cJSON *
parse(const char *s)
{
	cJSON *j;

	assert_non_null(s);
	j = cJSON_Parse(s);
	if (j == NULL || !cJSON_IsObject(j))
		fail_msg("not a JSON object: %s", s);
	return j;
}

/* o has exactly the keys listed (NULL-terminated), each once. */
static void
assert_keys(const char *text, const cJSON *o, const char *const *keys)
{
	size_t want = 0, seen = 0;

	while (keys[want] != NULL)
		want++;
	for (const cJSON *k = o->child; k != NULL; k = k->next) {
		bool found = false;

		for (size_t i = 0; i < want && !found; i++)
			found = strcmp(k->string, keys[i]) == 0;
		if (!found)
			fail_msg("unexpected field '%s' in %s", k->string,
			    text);
		seen++;
	}
	if (seen != want)
		fail_msg("%zu fields in %s, want %zu", seen, text, want);
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const cJSON *
field(const cJSON *o, const char *name)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);

	if (f == NULL)
		fail_msg("no field '%s'", name);
	return f;
}

static void
assert_str_field(const cJSON *o, const char *name, const char *want)
{
	const cJSON *f = field(o, name);

	assert_true(cJSON_IsString(f));
	assert_string_equal(f->valuestring, want);
}

/* A number field with an exact integer value (below 2^53). */
static void
assert_int_field(const cJSON *o, const char *name, int64_t want)
{
	const cJSON *f = field(o, name);

	assert_true(cJSON_IsNumber(f));
	if (f->valuedouble != (double)want)
		fail_msg("field %s: %.17g, want %lld", name, f->valuedouble,
		    (long long)want);
}

static void
assert_bool_field(const cJSON *o, const char *name, bool want)
{
	const cJSON *f = field(o, name);

	assert_true(cJSON_IsBool(f));
	assert_int_equal(cJSON_IsTrue(f), want);
}

static void
assert_null_field(const cJSON *o, const char *name)
{
	assert_true(cJSON_IsNull(field(o, name)));
}

static void
assert_contains(const char *text, const char *part)
{
	if (strstr(text, part) == NULL)
		fail_msg("'%s' not in %s", part, text);
}

/* ---- names ---- */

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(codec_err_name(LT_ERR_BAD_REQUEST), "bad-request");
	assert_string_equal(codec_err_name(LT_ERR_INVALID_LOCK),
	    "invalid-lock");
	assert_string_equal(codec_err_name(LT_ERR_SESSION_MISMATCH),
	    "session-mismatch");
	assert_string_equal(codec_err_name(LT_ERR_LIMIT), "limit");
	assert_string_equal(codec_err_name(LT_ERR_INTERNAL), "internal");
	assert_string_equal(codec_event_name(LT_E_GRANTED), "granted");
	assert_string_equal(codec_event_name(LT_E_QUEUED), "queued");
	assert_string_equal(codec_event_name(LT_E_BUSY), "busy");
	assert_string_equal(codec_event_name(LT_E_REVOKED), "revoked");
	assert_string_equal(codec_event_name(LT_E_IDLE_WARNING),
	    "idle-warning");
	assert_string_equal(codec_event_name(LT_E_ERROR), "error");
	assert_string_equal(codec_result_name(LT_R_GRANTED), "granted");
	assert_string_equal(codec_result_name(LT_R_QUEUED), "queued");
	assert_string_equal(codec_result_name(LT_R_BUSY), "busy");
	assert_string_equal(codec_result_name(LT_R_RELEASED), "released");
	assert_string_equal(codec_result_name(LT_R_REFRESHED), "refreshed");
	assert_string_equal(codec_result_name(LT_R_IGNORED), "ignored");
	assert_string_equal(codec_result_name(LT_R_REVOKED), "revoked");
	assert_string_equal(codec_reason_name(LT_REASON_IDLE), "idle");
	assert_string_equal(codec_reason_name(LT_REASON_DISCONNECT),
	    "disconnect");
	assert_string_equal(codec_reason_name(LT_REASON_ADMIN), "admin");
	assert_string_equal(codec_op_name(LT_OP_ACQUIRE), "acquire");
	assert_string_equal(codec_op_name(LT_OP_RELEASE), "release");
	assert_string_equal(codec_op_name(LT_OP_ACTIVITY), "activity");
	/* Out of range: a placeholder, never a crash. */
	assert_non_null(codec_err_name((enum lt_err)99));
	assert_non_null(codec_event_name((enum lt_event_type)99));
	assert_non_null(codec_result_name((enum lt_result)99));
	assert_non_null(codec_reason_name((enum lt_reason)99));
	assert_non_null(codec_op_name((enum lt_op)99));
}

/* ---- UTF-8 ---- */

struct utf8_case {
	const char *s;
	size_t len;
	bool valid;
};

#define U(lit, ok)                       \
	{                                \
		lit, sizeof(lit) - 1, ok \
	}

static void
test_utf8(void **state)
{
	static const struct utf8_case cases[] = {
	    U("", true),
	    U("plain ascii", true),
	    U("\x7f", true),
	    U("\xc2\x80", true),         /* U+0080, smallest 2-byte */
	    U("\xc3\xa9", true),         /* é */
	    U("\xdf\xbf", true),         /* U+07FF */
	    U("\xe0\xa0\x80", true),     /* U+0800, smallest 3-byte */
	    U("\xe2\x82\xac", true),     /* € */
	    U("\xed\x9f\xbf", true),     /* U+D7FF, below the surrogates */
	    U("\xee\x80\x80", true),     /* U+E000, above them */
	    U("\xef\xbf\xbf", true),     /* U+FFFF */
	    U("\xf0\x90\x80\x80", true), /* U+10000, smallest 4-byte */
	    U("\xf0\x9f\x98\x80", true), /* 😀 */
	    U("\xf4\x8f\xbf\xbf", true), /* U+10FFFF, the last */
	    U("a\xc3\xa9z\xe2\x82\xac", true),
	    U("\xc0\x80", false),                 /* overlong NUL */
	    U("\xc0\xaf", false),                 /* overlong '/' */
	    U("\xc1\xbf", false),                 /* overlong */
	    U("\xe0\x80\x80", false),             /* overlong NUL, 3 bytes */
	    U("\xe0\x9f\xbf", false),             /* overlong U+07FF */
	    U("\xf0\x80\x80\x80", false),         /* overlong NUL, 4 bytes */
	    U("\xf0\x8f\xbf\xbf", false),         /* overlong U+FFFF */
	    U("\xed\xa0\x80", false),             /* U+D800 */
	    U("\xed\xbf\xbf", false),             /* U+DFFF */
	    U("\xed\xa0\xbd\xed\xb8\x80", false), /* a surrogate pair */
	    U("\xf4\x90\x80\x80", false),         /* U+110000 */
	    U("\xf5\x80\x80\x80", false),
	    U("\xf8\x88\x80\x80\x80", false), /* 5-byte form */
	    U("\xfe", false),
	    U("\xff", false),
	    U("\x80", false), /* stray continuation bytes */
	    U("a\xbf", false),
	    U("\xc3\xa9\xa9", false),
	    U("\xc3", false), /* truncated at the end */
	    U("ab\xc3", false),
	    U("\xe2\x82", false),
	    U("ab\xe2", false),
	    U("\xf0\x9f\x98", false),
	    U("\xf0\x9f", false),
	    U("\xf0", false),
	    U("\xe2\x28\xa1", false), /* a continuation that is not one */
	    U("\xc3\x28", false),
	    U("\xf0\x9f\x28\x80", false),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *buf = exact(cases[i].s, cases[i].len);

		if (codec_utf8_valid(buf, cases[i].len) != cases[i].valid)
			fail_msg("case %zu: want %s", i,
			    cases[i].valid ? "valid" : "invalid");
		free(buf);
	}
	/* The length is what counts, not a NUL. */
	assert_false(codec_utf8_valid("\xc3\xa9", 1));
	assert_true(codec_utf8_valid("a\0b", 3));
	assert_true(codec_utf8_valid("\xff", 0));
}

/* ---- ids ---- */

static bool
lock_ok(const char *s)
{
	return codec_lock_id_valid(s, strlen(s));
}

static bool
client_ok(const char *s)
{
	return codec_client_id_valid(s, strlen(s));
}

static void
test_ids(void **state)
{
	char *s;

	(void)state;
	/* Lengths in bytes: 1 and 128 are fine, 0 and 129 are not. */
	assert_true(lock_ok("a"));
	assert_true(client_ok("a"));
	assert_false(lock_ok(""));
	assert_false(client_ok(""));
	s = repeat("x", 128);
	assert_true(lock_ok(s));
	assert_true(client_ok(s));
	free(s);
	s = repeat("x", 129);
	assert_false(lock_ok(s));
	assert_false(client_ok(s));
	free(s);
	s = repeat("\xc3\xa9", 64); /* 64 characters, 128 bytes */
	assert_true(lock_ok(s));
	assert_true(client_ok(s));
	free(s);
	s = repeat("\xe2\x82\xac", 43); /* 43 characters, 129 bytes */
	assert_false(lock_ok(s));
	assert_false(client_ok(s));
	free(s);
	s = repeat("\xf0\x9f\x98\x80", 32); /* 128 bytes */
	assert_true(lock_ok(s));
	free(s);
	{
		char *e = repeat("\xf0\x9f\x98\x80", 32);

		s = cat3(e, "a", ""); /* 129 bytes */
		assert_false(lock_ok(s));
		assert_false(client_ok(s));
		free(s);
		free(e);
	}

	/* Topic wildcards and separators. */
	assert_false(lock_ok("a/b"));
	assert_false(lock_ok("a+b"));
	assert_false(lock_ok("a#b"));
	assert_false(lock_ok("+"));
	assert_false(lock_ok("#"));
	assert_false(lock_ok("/"));
	assert_false(client_ok("a/b"));
	assert_false(client_ok("a+b"));
	assert_false(client_ok("a#b"));

	/* Control characters, counted by length (NUL inside too). */
	assert_false(codec_lock_id_valid("a\0b", 3));
	assert_false(codec_client_id_valid("a\0b", 3));
	assert_false(lock_ok("a\x01"));
	assert_false(lock_ok("a\x1f"));
	assert_false(lock_ok("a\x7f"));
	assert_false(lock_ok("\n"));
	assert_false(client_ok("a\x01"));
	assert_false(client_ok("a\x1f"));
	assert_false(client_ok("a\x7f"));
	assert_false(client_ok("a\tb"));
	assert_true(lock_ok("a b"));
	assert_true(lock_ok("a~!@%^&*()=[]{};:'\",.<>?\\|`b"));

	/* Invalid UTF-8. */
	assert_false(lock_ok("a\xff"));
	assert_false(client_ok("a\xff"));
	assert_false(lock_ok("\xc0\xaf"));
	assert_false(client_ok("\xed\xa0\x80"));

	/* Reserved first characters: _ only for locks, $ for both. */
	assert_false(lock_ok("_clients"));
	assert_false(lock_ok("_"));
	assert_true(client_ok("_svc"));
	assert_true(client_ok("_"));
	assert_false(lock_ok("$SYS"));
	assert_false(client_ok("$SYS"));
	assert_false(client_ok("$"));
	assert_true(lock_ok("a_"));
	assert_true(lock_ok("a$"));
	assert_true(client_ok("a$"));
}

static void
test_prefix(void **state)
{
	char *s;

	(void)state;
	assert_true(codec_prefix_valid("locks"));
	assert_true(codec_prefix_valid("a"));
	assert_true(codec_prefix_valid("app/locks"));
	assert_true(codec_prefix_valid("a/b/c"));
	assert_true(codec_prefix_valid("\xc3\xa9t\xc3\xa9"));
	assert_false(codec_prefix_valid(""));
	assert_false(codec_prefix_valid("/"));
	assert_false(codec_prefix_valid("/locks"));
	assert_false(codec_prefix_valid("locks/"));
	assert_false(codec_prefix_valid("a//b"));
	assert_false(codec_prefix_valid("lo+cks"));
	assert_false(codec_prefix_valid("locks/#"));
	assert_false(codec_prefix_valid("+/locks"));
	assert_false(codec_prefix_valid("$SYS"));
	assert_false(codec_prefix_valid("lo\x01"
					"cks"));
	assert_false(codec_prefix_valid("lo\x7f"));
	assert_false(codec_prefix_valid("lo\xff"));
	s = repeat("p", MQL_PREFIX_MAX);
	assert_true(codec_prefix_valid(s));
	free(s);
	s = repeat("p", MQL_PREFIX_MAX + 1);
	assert_false(codec_prefix_valid(s));
	free(s);
	s = repeat("a/", MQL_PREFIX_MAX / 2); /* ends with '/' */
	assert_false(codec_prefix_valid(s));
	free(s);
}

/* ---- topics ---- */

static void
topic_is(const char *prefix, const char *topic, enum codec_topic_kind kind,
    bool id_valid, const char *id)
{
	struct codec_topic t;

	memset(&t, 0x5a, sizeof(t)); /* whatever was there before */
	codec_parse_topic(prefix, topic, &t);
	if (t.kind != kind || (kind != CODEC_T_OTHER && t.id_valid != id_valid))
		fail_msg("%s (prefix %s): kind %d id_valid %d, want %d %d",
		    topic, prefix, t.kind, t.id_valid, kind, id_valid);
	if (kind == CODEC_T_REQUEST || kind == CODEC_T_WILL) {
		if (memchr(t.id, '\0', sizeof(t.id)) == NULL)
			fail_msg("%s: id not terminated", topic);
		assert_string_equal(t.id, id_valid ? id : "");
	}
}

static void
test_parse_topic(void **state)
{
	char *l128 = repeat("x", 128), *l129 = repeat("x", 129);
	char *t;

	(void)state;
	topic_is("locks", "locks/doc-1/request", CODEC_T_REQUEST, true,
	    "doc-1");
	topic_is("locks", "locks/_clients/ed-a/will", CODEC_T_WILL, true,
	    "ed-a");
	topic_is("locks", "locks/_clients/_svc/will", CODEC_T_WILL, true,
	    "_svc");
	topic_is("locks", "locks/_admin/command", CODEC_T_ADMIN, false, NULL);
	topic_is("app/locks", "app/locks/doc-1/request", CODEC_T_REQUEST, true,
	    "doc-1");
	topic_is("app/locks", "app/locks/_admin/command", CODEC_T_ADMIN, false,
	    NULL);
	topic_is("locks", "locks/\xc3\xa9t\xc3\xa9/request", CODEC_T_REQUEST,
	    true, "\xc3\xa9t\xc3\xa9");

	/* Topics mqlockd publishes, or nobody should. */
	topic_is("locks", "locks/doc-1/owner", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "locks/_clients/ed-a/events", CODEC_T_OTHER, false,
	    NULL);
	topic_is("locks", "locks/_coordinator/status", CODEC_T_OTHER, false,
	    NULL);
	topic_is("locks", "locks/doc-1/REQUEST", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "locks/_admin/Command", CODEC_T_OTHER, false, NULL);

	/* Wrong prefix, or the prefix only as the start of a level. */
	topic_is("locks", "other/doc-1/request", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "locksmith/x/request", CODEC_T_OTHER, false, NULL);
	/* ... where what follows would otherwise have the right shape. */
	topic_is("locks", "locksXdoc-1/request", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "locks-_admin/command", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "locks._clients/ed-a/will", CODEC_T_OTHER, false,
	    NULL);
	topic_is("app/locks", "app/locksXdoc-1/request", CODEC_T_OTHER, false,
	    NULL);
	topic_is("locks", "lock/x/request", CODEC_T_OTHER, false, NULL);
	topic_is("app/locks", "app/locksx/doc/request", CODEC_T_OTHER, false,
	    NULL);
	topic_is("app/locks", "app/doc/request", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "x/locks/doc/request", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "locks", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "locks/", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "locks/request", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "", CODEC_T_OTHER, false, NULL);

	/* Too many levels. */
	topic_is("locks", "locks/a/b/request", CODEC_T_OTHER, false, NULL);
	topic_is("locks", "locks/doc-1/request/x/y", CODEC_T_OTHER, false,
	    NULL);
	topic_is("locks", "locks/_clients/a/b/will", CODEC_T_OTHER, false,
	    NULL);
	topic_is("locks", "locks/_clients/a/will/x", CODEC_T_OTHER, false,
	    NULL);
	topic_is("locks", "locks/_admin/command/x/y", CODEC_T_OTHER, false,
	    NULL);
	topic_is("locks", "locks/a/b/c/d/e/f/g/request", CODEC_T_OTHER, false,
	    NULL);
	topic_is("locks", "locks/_clients/will", CODEC_T_OTHER, false, NULL);

	/* The right shape with an invalid id level. */
	topic_is("locks", "locks//request", CODEC_T_REQUEST, false, NULL);
	topic_is("locks", "locks/_x/request", CODEC_T_REQUEST, false, NULL);
	topic_is("locks", "locks/_admin/request", CODEC_T_REQUEST, false, NULL);
	topic_is("locks", "locks/_clients/request", CODEC_T_REQUEST, false,
	    NULL);
	topic_is("locks", "locks/$x/request", CODEC_T_REQUEST, false, NULL);
	topic_is("locks", "locks/a\x01/request", CODEC_T_REQUEST, false, NULL);
	topic_is("locks", "locks/a\xff/request", CODEC_T_REQUEST, false, NULL);
	topic_is("locks", "locks/a\xc0\xaf/request", CODEC_T_REQUEST, false,
	    NULL);
	topic_is("locks", "locks/+/request", CODEC_T_REQUEST, false, NULL);
	topic_is("locks", "locks/#/request", CODEC_T_REQUEST, false, NULL);
	t = cat3("locks/", l128, "/request");
	topic_is("locks", t, CODEC_T_REQUEST, true, l128);
	free(t);
	t = cat3("locks/", l129, "/request");
	topic_is("locks", t, CODEC_T_REQUEST, false, NULL);
	free(t);
	topic_is("locks", "locks/_clients//will", CODEC_T_WILL, false, NULL);
	topic_is("locks", "locks/_clients/$x/will", CODEC_T_WILL, false, NULL);
	topic_is("locks", "locks/_clients/a\x7f/will", CODEC_T_WILL, false,
	    NULL);
	t = cat3("locks/_clients/", l128, "/will");
	topic_is("locks", t, CODEC_T_WILL, true, l128);
	free(t);
	t = cat3("locks/_clients/", l129, "/will");
	topic_is("locks", t, CODEC_T_WILL, false, NULL);
	free(t);
	free(l128);
	free(l129);
}

static void
test_topic_builders(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(
	    codec_topic(buf, sizeof(buf), "locks", "doc-1", "owner"), 0);
	assert_string_equal(buf, "locks/doc-1/owner");
	assert_int_equal(codec_topic(buf, sizeof(buf), "locks", "_admin", NULL),
	    0);
	assert_string_equal(buf, "locks/_admin");
	/* Exactly fitting, and one byte short. */
	assert_int_equal(codec_topic(buf, 18, "locks", "doc-1", "owner"), 0);
	assert_string_equal(buf, "locks/doc-1/owner");
	assert_int_equal(codec_topic(buf, 17, "locks", "doc-1", "owner"), -1);
	assert_int_equal(
	    codec_client_topic(buf, sizeof(buf), "locks", "ed-a", "events"), 0);
	assert_string_equal(buf, "locks/_clients/ed-a/events");
	assert_int_equal(codec_client_topic(buf, 25, "locks", "ed-a", "will"),
	    0);
	assert_string_equal(buf, "locks/_clients/ed-a/will");
	assert_int_equal(codec_client_topic(buf, 24, "locks", "ed-a", "will"),
	    -1);
}

/* ---- decoding requests ---- */

static void
test_decode_request_valid(void **state)
{
	struct lt_request r;
	struct codec_error err;
	char *s128 = repeat("s", 128), *u128 = repeat("\xc3\xa9", 64);
	char *c128 = repeat("c", 128), *json;
	size_t n;

	(void)state;
	/* Minimal. */
	assert_int_equal(dec("{\"op\":\"acquire\",\"client\":\"ed-a\","
			     "\"session\":\"" S16 "\"}",
			     &r, &err),
	    LT_OK);
	assert_int_equal(r.op, LT_OP_ACQUIRE);
	assert_string_equal(r.lock, LOCK);
	assert_string_equal(r.client, "ed-a");
	assert_string_equal(r.session, S16);
	assert_string_equal(r.user, "");
	assert_int_equal(r.conn, -1);
	assert_true(r.wait);

	/* Full, every field at its largest. */
	n = strlen(s128) + strlen(u128) + strlen(c128) + 200;
	json = malloc(n);
	assert_non_null(json);
	snprintf(json, n,
	    "{\"op\":\"acquire\",\"client\":\"%s\",\"session\":\"%s\","
	    "\"conn\":9007199254740991,\"user\":\"%s\",\"wait\":false}",
	    c128, s128, u128);
	assert_int_equal(dec(json, &r, &err), LT_OK);
	assert_int_equal(r.op, LT_OP_ACQUIRE);
	assert_string_equal(r.client, c128);
	assert_string_equal(r.session, s128);
	assert_string_equal(r.user, u128);
	assert_true(r.conn == BIG);
	assert_false(r.wait);
	free(json);

	/* The other ops; whitespace around; fields in any order. */
	assert_int_equal(dec(" \n\t{\"session\":\"" S16 "\",\"client\":\"ed-b"
			     "\",\"op\":\"release\",\"conn\":0}\r\n ",
			     &r, &err),
	    LT_OK);
	assert_int_equal(r.op, LT_OP_RELEASE);
	assert_string_equal(r.client, "ed-b");
	assert_int_equal(r.conn, 0);
	assert_int_equal(dec("{\"op\":\"activity\",\"client\":\"_svc\","
			     "\"session\":\"" S16 "\",\"wait\":true}",
			     &r, &err),
	    LT_OK);
	assert_int_equal(r.op, LT_OP_ACTIVITY);
	assert_string_equal(r.client, "_svc");
	assert_true(r.wait);

	/* Unknown fields of any type are ignored. */
	assert_int_equal(dec("{\"v\":2,\"op\":\"acquire\",\"x\":{\"a\":[1,{"
			     "\"b\":null}]},\"client\":\"ed-a\",\"n\":1.5e300,"
			     "\"session\":\"" S16 "\",\"user\":\"\",\"t\":"
			     "true,\"Op\":5,\"CLIENT\":\"a/b\"}",
			     &r, &err),
	    LT_OK);
	assert_string_equal(r.user, "");

	/* Escapes decode; an escaped backslash before u0000 is text. */
	assert_int_equal(dec("{\"op\":\"acquire\",\"client\":\"ed-\\u0061\","
			     "\"session\":\"" S16 "\",\"user\":\"A\\\"B\\\\C"
			     "\\nD\\u00e9\\ud83d\\ude00\"}",
			     &r, &err),
	    LT_OK);
	assert_string_equal(r.client, "ed-a");
	assert_string_equal(r.user, "A\"B\\C\nD\xc3\xa9\xf0\x9f\x98\x80");
	assert_int_equal(dec("{\"op\":\"acquire\",\"client\":\"ed-a\","
			     "\"session\":\"" S16
			     "\",\"user\":\"a\\\\u0000b\"}",
			     &r, &err),
	    LT_OK);
	assert_string_equal(r.user, "a\\u0000b");
	assert_int_equal(dec("{\"op\":\"acquire\",\"client\":\"ed-a\","
			     "\"session\":\"" S16 "\\\\\\\\u0000\"}",
			     &r, &err),
	    LT_OK);
	assert_string_equal(r.session, S16 "\\\\u0000");

	free(s128);
	free(u128);
	free(c128);
}

struct bad_case {
	const char *json;
	enum lt_err code;
	bool named; /* err->client is "ed-a" */
};

#define REQ(rest) "{\"op\":\"acquire\",\"client\":\"ed-a\"," rest "}"
#define OK_S "\"session\":\"" S16 "\""

static void
test_decode_request_malformed(void **state)
{
	static const struct bad_case cases[] = {
	    /* Not a JSON object. */
	    {"", LT_ERR_BAD_REQUEST, false},
	    {" ", LT_ERR_BAD_REQUEST, false},
	    {"not json", LT_ERR_BAD_REQUEST, false},
	    {"{", LT_ERR_BAD_REQUEST, false},
	    {"}", LT_ERR_BAD_REQUEST, false},
	    {"[" REQ(OK_S) "]", LT_ERR_BAD_REQUEST, false},
	    {"42", LT_ERR_BAD_REQUEST, false},
	    {"\"ed-a\"", LT_ERR_BAD_REQUEST, false},
	    {"null", LT_ERR_BAD_REQUEST, false},
	    {"true", LT_ERR_BAD_REQUEST, false},
	    {REQ(OK_S) " x", LT_ERR_BAD_REQUEST, false},
	    {REQ(OK_S) "}", LT_ERR_BAD_REQUEST, false},
	    {REQ(OK_S) REQ(OK_S), LT_ERR_BAD_REQUEST, false},
	    {REQ(OK_S) ",", LT_ERR_BAD_REQUEST, false},
	    {"{'op':'acquire'}", LT_ERR_BAD_REQUEST, false},
	    {REQ(OK_S ","), LT_ERR_BAD_REQUEST, false},
	    /* Missing fields. */
	    {"{\"client\":\"ed-a\"," OK_S "}", LT_ERR_BAD_REQUEST, true},
	    {"{\"op\":\"acquire\"," OK_S "}", LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"ed-a\"}", LT_ERR_BAD_REQUEST,
		true},
	    {"{}", LT_ERR_BAD_REQUEST, false},
	    /* Wrong types. */
	    {"{\"op\":1,\"client\":\"ed-a\"," OK_S "}", LT_ERR_BAD_REQUEST,
		true},
	    {"{\"op\":null,\"client\":\"ed-a\"," OK_S "}", LT_ERR_BAD_REQUEST,
		true},
	    {"{\"op\":[\"acquire\"],\"client\":\"ed-a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, true},
	    {"{\"op\":\"acquire\",\"client\":1," OK_S "}", LT_ERR_BAD_REQUEST,
		false},
	    {"{\"op\":\"acquire\",\"client\":null," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":{\"id\":\"ed-a\"}," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":[\"ed-a\"]," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {REQ("\"session\":1234567890123456789"), LT_ERR_BAD_REQUEST, true},
	    {REQ("\"session\":null"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"user\":1"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"user\":null"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"user\":[]"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"conn\":\"1\""), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"conn\":1.5"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"conn\":-1"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"conn\":-0.5"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"conn\":9007199254740992"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"conn\":18446744073709551616"), LT_ERR_BAD_REQUEST,
		true},
	    {REQ(OK_S ",\"conn\":1e300"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"conn\":true"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"conn\":null"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"conn\":{}"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"wait\":1"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"wait\":0"), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"wait\":\"false\""), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"wait\":null"), LT_ERR_BAD_REQUEST, true},
	    /* Unknown ops (they are case-sensitive). */
	    {"{\"op\":\"grab\",\"client\":\"ed-a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, true},
	    {"{\"op\":\"ACQUIRE\",\"client\":\"ed-a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, true},
	    {"{\"op\":\"acquire \",\"client\":\"ed-a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, true},
	    {"{\"op\":\"\",\"client\":\"ed-a\"," OK_S "}", LT_ERR_BAD_REQUEST,
		true},
	    {"{\"op\":\"break\",\"client\":\"ed-a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, true},
	    {"{\"op\":\"acquireacquireacquire\",\"client\":\"ed-a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, true},
	    /* Session and client of the wrong length or form. */
	    {REQ("\"session\":\"0123456789abcde\""), LT_ERR_BAD_REQUEST, true},
	    {REQ("\"session\":\"\""), LT_ERR_BAD_REQUEST, true},
	    {"{\"op\":\"acquire\",\"client\":\"ed/a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"ed+a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"ed#a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"$ed\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"ed\\u0001a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"ed\\u001fa\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"ed\\u007fa\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"ed\\/a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"ed\xff"
	     "a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {"{\"op\":\"acquire\",\"client\":\"ed\xc0\xaf"
	     "a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    /* U+0000 inside a string, wherever it is. */
	    {REQ(OK_S ",\"user\":\"\\u0000\""), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"user\":\"abc\\u0000def\""), LT_ERR_BAD_REQUEST, true},
	    {REQ("\"session\":\"" S16 "\\u0000\""), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"x\":\"\\u0000\""), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"user\":\"\\\\\\u0000\""), LT_ERR_BAD_REQUEST, true},
	    /* Invalid UTF-8 in strings (other than client) and outside. */
	    {REQ(OK_S ",\"user\":\"\xc3\x28\""), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"user\":\"\xff\""), LT_ERR_BAD_REQUEST, true},
	    {REQ("\"session\":\"" S16 "\xc0\xaf\""), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"x\":\"\xed\xa0\x80\""), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"x\":\"\xf4\x90\x80\x80\""), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"x\":\"\xe2\x82\""), LT_ERR_BAD_REQUEST, true},
	    {REQ(OK_S ",\"\xff\":1"), LT_ERR_BAD_REQUEST, true},
	    {"{\"op\":\"acquire\",\xff\"client\":\"ed-a\"," OK_S "}",
		LT_ERR_BAD_REQUEST, false},
	    {REQ(OK_S) "\xff", LT_ERR_BAD_REQUEST, false},
	    /* Escapes that are no UTF-16. */
	    {REQ(OK_S ",\"user\":\"\\ud800\""), LT_ERR_BAD_REQUEST, false},
	    {REQ(OK_S ",\"user\":\"\\udc00x\""), LT_ERR_BAD_REQUEST, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		refused(cases[i].json, cases[i].code,
		    cases[i].named ? "ed-a" : NULL);
}

/*
 * "ed-a\u0000zz" is not a valid client id (it holds U+0000), so the refusal
 * must not be sent to "ed-a", the part before the NUL.
 */
static void
test_decode_request_nul_in_client(void **state)
{
	(void)state;
	refused("{\"op\":\"acquire\",\"client\":\"ed-a\\u0000zz\"," OK_S "}",
	    LT_ERR_BAD_REQUEST, NULL);
	refused("{\"op\":\"acquire\",\"client\":\"ed-a\\u0000\"," OK_S "}",
	    LT_ERR_BAD_REQUEST, NULL);
	/* ... even when "ed-a" appears elsewhere, as a value or a key. */
	refused("{\"user\":\"ed-a\",\"op\":\"acquire\",\"client\":"
		"\"ed-a\\u0000zz\"," OK_S "}",
	    LT_ERR_BAD_REQUEST, NULL);
	refused("{\"op\":\"acquire\",\"client\":\"ed-a\\u0000zz\"," OK_S
		",\"ed-a\":1}",
	    LT_ERR_BAD_REQUEST, NULL);
	/* A U+0000 elsewhere does not stop an intact client being told. */
	refused("{\"op\":\"acquire\",\"client\":\"ed-a\"," OK_S
		",\"user\":\"\\u0000\"}",
	    LT_ERR_BAD_REQUEST, "ed-a");
}

/* Lengths at and past the limits, in bytes. */
static void
test_decode_request_lengths(void **state)
{
	static const size_t sessions[] = {15, 16, 128, 129};
	const char *head = "{\"op\":\"acquire\",\"client\":\"ed-a\","
			   "\"session\":\"" S16 "\",\"pad\":\"";
	struct lt_request r;
	struct codec_error err;
	char *s, *json;
	char buf[1024];

	(void)state;
	/* session 16 and 128 fine, 15 and 129 not. */
	for (size_t i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++) {
		s = repeat("s", sessions[i]);
		snprintf(buf, sizeof(buf), REQ("\"session\":\"%s\""), s);
		if (sessions[i] == 16 || sessions[i] == 128) {
			assert_int_equal(dec(buf, &r, &err), LT_OK);
			assert_string_equal(r.session, s);
		} else {
			refused(buf, LT_ERR_BAD_REQUEST, "ed-a");
		}
		free(s);
	}
	/* user 128 bytes (64 two-byte characters) fine, 129 not. */
	s = repeat("\xc3\xa9", 64);
	snprintf(buf, sizeof(buf), REQ(OK_S ",\"user\":\"%s\""), s);
	assert_int_equal(dec(buf, &r, &err), LT_OK);
	assert_string_equal(r.user, s);
	snprintf(buf, sizeof(buf), REQ(OK_S ",\"user\":\"%sx\""), s);
	refused(buf, LT_ERR_BAD_REQUEST, "ed-a");
	free(s);
	/* A 129-byte user spelled with escapes (43 x 3 bytes). */
	s = repeat("\\u20ac", 43);
	snprintf(buf, sizeof(buf), REQ(OK_S ",\"user\":\"%s\""), s);
	refused(buf, LT_ERR_BAD_REQUEST, "ed-a");
	free(s);
	/* client 128 bytes fine (and named when refused), 129 not named. */
	s = repeat("c", 128);
	snprintf(buf, sizeof(buf),
	    "{\"op\":\"acquire\",\"client\":\"%s\"," OK_S "}", s);
	assert_int_equal(dec(buf, &r, &err), LT_OK);
	assert_string_equal(r.client, s);
	snprintf(buf, sizeof(buf),
	    "{\"op\":\"nope\",\"client\":\"%s\"," OK_S "}", s);
	refused(buf, LT_ERR_BAD_REQUEST, s);
	snprintf(buf, sizeof(buf),
	    "{\"op\":\"acquire\",\"client\":\"%sc\"," OK_S "}", s);
	refused(buf, LT_ERR_BAD_REQUEST, NULL);
	free(s);

	/*
	 * The payload: 4096 bytes fine; anything larger is refused unread,
	 * so on the unbound topic nobody can be named (test_decode_bound:
	 * the bound topic names its client).
	 */
	for (size_t total = 4095; total <= 4097; total++) {
		json = padded(head, total);
		if (total <= MQL_PAYLOAD_MAX)
			assert_int_equal(dec_len(json, total, LOCK, &r, &err),
			    LT_OK);
		else
			refused_len(json, total, LOCK, LT_ERR_BAD_REQUEST,
			    NULL);
		free(json);
	}
	json = padded(head, 1 << 20);
	refused_len(json, 1 << 20, LOCK, LT_ERR_BAD_REQUEST, NULL);
	free(json);

	/* Very deep nesting inside a small payload. */
	{
		char *open = repeat("[", 2000), *close = repeat("]", 2000);
		char *inner = cat3("{\"op\":\"acquire\",\"client\":\"ed-a\","
				   "\"session\":\"" S16 "\",\"x\":",
		    open, close);

		json = cat3(inner, "}", "");
		assert_true(strlen(json) < MQL_PAYLOAD_MAX);
		assert_int_equal(dec(json, &r, &err), LT_ERR_BAD_REQUEST);
		free(open);
		free(close);
		free(inner);
		free(json);
	}
}

/* Every proper prefix of a valid payload is refused, and names nobody. */
static void
test_decode_request_truncated(void **state)
{
	const char *full = "{\"op\":\"acquire\",\"client\":\"ed-a\",\"session\""
			   ":\"" S16 "\",\"conn\":12,\"user\":\"\\u00e9\\\"x\","
			   "\"wait\":false,\"extra\":[1,{\"a\":null}]}";
	size_t len = strlen(full);
	struct lt_request r;
	struct codec_error err;

	(void)state;
	assert_int_equal(dec(full, &r, &err), LT_OK);
	for (size_t n = 0; n < len; n++)
		refused_len(full, n, LOCK, LT_ERR_BAD_REQUEST, NULL);
}

static void
test_decode_request_nul_and_lock(void **state)
{
	static const char raw[] = "{\"op\":\"acquire\",\"client\":\"ed-a\","
				  "\"session\":\"" S16 "\",\"user\":\"a\0b\"}";
	static const char after[] = "{\"op\":\"acquire\",\"client\":\"ed-a\","
				    "\"session\":\"" S16 "\"}\0";
	const char *ok = REQ(OK_S);
	struct lt_request r;
	struct codec_error err;

	(void)state;
	/* A raw NUL byte: not JSON at all. */
	refused_len(raw, sizeof(raw) - 1, LOCK, LT_ERR_BAD_REQUEST, NULL);
	refused_len(after, sizeof(after) - 1, LOCK, LT_ERR_BAD_REQUEST, NULL);
	/* An invalid lock id in the topic: invalid-lock, client told. */
	refused_len(ok, strlen(ok), NULL, LT_ERR_INVALID_LOCK, "ed-a");
	refused_len("{\"op\":\"acquire\",\"client\":\"a/b\"," OK_S "}",
	    strlen("{\"op\":\"acquire\",\"client\":\"a/b\"," OK_S "}"), NULL,
	    LT_ERR_INVALID_LOCK, NULL);
	assert_int_equal(dec_len(ok, strlen(ok), "doc-1", &r, &err), LT_OK);
}

static void
test_decode_request_duplicate_keys(void **state)
{
	struct lt_request r;
	struct codec_error err;
	enum lt_err rc;

	(void)state;
	/* The same value twice is harmless. */
	assert_int_equal(dec("{\"op\":\"acquire\",\"op\":\"acquire\","
			     "\"client\":\"ed-a\",\"client\":\"ed-a\"," OK_S
			     "," OK_S "}",
			     &r, &err),
	    LT_OK);
	assert_string_equal(r.client, "ed-a");
	/* Different values: refused, or one of them taken consistently. */
	rc = dec("{\"op\":\"release\",\"client\":\"ed-a\",\"op\":\"acquire\","
		 "\"client\":\"ed-b\"," OK_S "}",
	    &r, &err);
	if (rc == LT_OK) {
		assert_true(strcmp(r.client, "ed-a") == 0 ||
		    strcmp(r.client, "ed-b") == 0);
		assert_true(r.op == LT_OP_RELEASE || r.op == LT_OP_ACQUIRE);
	} else {
		assert_int_equal(rc, LT_ERR_BAD_REQUEST);
	}
	/* An invalid first client never borrows the name of a second. */
	rc = dec("{\"op\":\"nope\",\"client\":\"a/b\",\"client\":\"ed-a\"," OK_S
		 "}",
	    &r, &err);
	assert_int_equal(rc, LT_ERR_BAD_REQUEST);
}

/* ---- wills ---- */

static void
test_decode_will(void **state)
{
	struct lt_will w;
	char *s, buf[512];
	const char *full = "{\"session\":\"" S16 "\",\"conn\":42}";

	(void)state;
	assert_int_equal(dec_will(full, "ed-a", &w), LT_OK);
	assert_string_equal(w.client, "ed-a");
	assert_string_equal(w.session, S16);
	assert_int_equal(w.conn, 42);
	assert_int_equal(dec_will("{\"session\":\"" S16 "\"}", "_svc", &w),
	    LT_OK);
	assert_string_equal(w.client, "_svc");
	assert_int_equal(w.conn, -1);
	assert_int_equal(dec_will("{\"conn\":0,\"x\":[],\"session\":\"" S16
				  "\",\"user\":5}",
			     "ed-a", &w),
	    LT_OK);
	assert_int_equal(w.conn, 0);
	assert_int_equal(dec_will("{\"session\":\"" S16
				  "\",\"conn\":9007199254740991}",
			     "ed-a", &w),
	    LT_OK);
	assert_true(w.conn == BIG);

	/* Malformed payloads. */
	{
		static const char *const bad[] = {
		    "",
		    "null",
		    "[]",
		    "{\"session\":\"" S16 "\"} x",
		    "{\"session\":\"" S16 "\"",
		    "{}",
		    "{\"conn\":1}",
		    "{\"session\":5}",
		    "{\"session\":null}",
		    "{\"session\":\"0123456789abcde\"}",
		    "{\"session\":\"" S16 "\",\"conn\":-1}",
		    "{\"session\":\"" S16 "\",\"conn\":1.5}",
		    "{\"session\":\"" S16 "\",\"conn\":\"3\"}",
		    "{\"session\":\"" S16 "\",\"conn\":null}",
		    "{\"session\":\"" S16 "\",\"conn\":true}",
		    "{\"session\":\"" S16 "\",\"conn\":9007199254740992}",
		    "{\"session\":\"" S16 "\\u0000\"}",
		    "{\"session\":\"" S16 "\",\"x\":\"\\u0000\"}",
		    "{\"session\":\"" S16 "\xff\"}",
		    "{\"session\":\"" S16 "\",\"x\":\"\xed\xa0\x80\"}",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (dec_will(bad[i], "ed-a", &w) != LT_ERR_BAD_REQUEST)
				fail_msg("will %s accepted", bad[i]);
		}
	}
	assert_int_equal(
	    dec_will("{\"session\":\"" S16 "\\\\u0000\"}", "ed-a", &w), LT_OK);
	assert_string_equal(w.session, S16 "\\u0000");
	{
		static const char raw[] = "{\"session\":\"" S16 "\0\"}";
		void *p = exact(raw, sizeof(raw) - 1);

		assert_int_equal(
		    codec_decode_will(p, sizeof(raw) - 1, "ed-a", &w),
		    LT_ERR_BAD_REQUEST);
		free(p);
	}
	/* Session lengths. */
	s = repeat("s", 128);
	snprintf(buf, sizeof(buf), "{\"session\":\"%s\"}", s);
	assert_int_equal(dec_will(buf, "ed-a", &w), LT_OK);
	snprintf(buf, sizeof(buf), "{\"session\":\"%ss\"}", s);
	assert_int_equal(dec_will(buf, "ed-a", &w), LT_ERR_BAD_REQUEST);
	free(s);
	/* The client level of the topic must be a valid client id. */
	assert_int_equal(dec_will(full, "a/b", &w), LT_ERR_BAD_REQUEST);
	assert_int_equal(dec_will(full, "a+b", &w), LT_ERR_BAD_REQUEST);
	assert_int_equal(dec_will(full, "$x", &w), LT_ERR_BAD_REQUEST);
	assert_int_equal(dec_will(full, "", &w), LT_ERR_BAD_REQUEST);
	s = repeat("c", 129);
	assert_int_equal(dec_will(full, s, &w), LT_ERR_BAD_REQUEST);
	free(s);
	/* Too large: 4096 bytes fine, 4097 not. */
	for (size_t total = 4096; total <= 4097; total++) {
		char *json =
		    padded("{\"session\":\"" S16 "\",\"pad\":\"", total);
		enum lt_err rc = codec_decode_will(json, total, "ed-a", &w);

		assert_int_equal(rc,
		    total <= MQL_PAYLOAD_MAX ? LT_OK : LT_ERR_BAD_REQUEST);
		free(json);
	}
	/* Every truncation. */
	for (size_t n = 0; n < strlen(full); n++) {
		void *p = exact(full, n);

		assert_int_equal(codec_decode_will(p, n, "ed-a", &w),
		    LT_ERR_BAD_REQUEST);
		free(p);
	}
}

/* ---- admin commands ---- */

static void
break_refused(const char *json, enum lt_err code)
{
	struct lt_admin b;
	struct codec_error err;
	enum lt_err rc = dec_break(json, &b, &err);

	if (rc != code || err.code != code)
		fail_msg("break %s: code %d, want %d", json, rc, code);
	assert_non_null(err.message);
	/* An admin command has no client to tell. */
	assert_string_equal(err.client, "");
}

static void
test_decode_break(void **state)
{
	struct lt_admin b;
	struct codec_error err;
	char *s, buf[1024];
	const char *full = "{\"op\":\"break\",\"lock\":\"doc-42\",\"reason\":"
			   "\"stuck since Friday\"}";

	(void)state;
	assert_int_equal(dec_break(full, &b, &err), LT_OK);
	assert_string_equal(b.lock, "doc-42");
	assert_string_equal(b.reason, "stuck since Friday");
	assert_int_equal(dec_break("{\"lock\":\"doc-42\",\"op\":\"break\","
				   "\"x\":1}",
			     &b, &err),
	    LT_OK);
	assert_string_equal(b.reason, "");

	/* Reason: 256 bytes fine, 257 not. */
	s = repeat("r", 256);
	snprintf(buf, sizeof(buf),
	    "{\"op\":\"break\",\"lock\":\"doc-42\",\"reason\":\"%s\"}", s);
	assert_int_equal(dec_break(buf, &b, &err), LT_OK);
	assert_string_equal(b.reason, s);
	snprintf(buf, sizeof(buf),
	    "{\"op\":\"break\",\"lock\":\"doc-42\",\"reason\":\"%sr\"}", s);
	break_refused(buf, LT_ERR_BAD_REQUEST);
	free(s);

	/* Lock ids that break the naming rules. */
	break_refused("{\"op\":\"break\",\"lock\":\"_x\"}",
	    LT_ERR_INVALID_LOCK);
	break_refused("{\"op\":\"break\",\"lock\":\"$x\"}",
	    LT_ERR_INVALID_LOCK);
	break_refused("{\"op\":\"break\",\"lock\":\"a/b\"}",
	    LT_ERR_INVALID_LOCK);
	break_refused("{\"op\":\"break\",\"lock\":\"a#\"}",
	    LT_ERR_INVALID_LOCK);
	break_refused("{\"op\":\"break\",\"lock\":\"\"}", LT_ERR_INVALID_LOCK);
	break_refused("{\"op\":\"break\",\"lock\":\"a\\u0001\"}",
	    LT_ERR_INVALID_LOCK);
	s = repeat("l", 128);
	snprintf(buf, sizeof(buf), "{\"op\":\"break\",\"lock\":\"%s\"}", s);
	assert_int_equal(dec_break(buf, &b, &err), LT_OK);
	assert_string_equal(b.lock, s);
	snprintf(buf, sizeof(buf), "{\"op\":\"break\",\"lock\":\"%sl\"}", s);
	break_refused(buf, LT_ERR_INVALID_LOCK);
	free(s);

	/* Malformed, missing or mistyped fields: bad-request. */
	break_refused("", LT_ERR_BAD_REQUEST);
	break_refused("[]", LT_ERR_BAD_REQUEST);
	break_refused("{\"op\":\"break\",\"lock\":\"doc-42\"} x",
	    LT_ERR_BAD_REQUEST);
	break_refused("{\"lock\":\"doc-42\"}", LT_ERR_BAD_REQUEST);
	break_refused("{\"op\":\"acquire\",\"lock\":\"doc-42\"}",
	    LT_ERR_BAD_REQUEST);
	break_refused("{\"op\":1,\"lock\":\"doc-42\"}", LT_ERR_BAD_REQUEST);
	break_refused("{\"op\":\"break\",\"lock\":\"doc-42\",\"reason\":1}",
	    LT_ERR_BAD_REQUEST);
	break_refused("{\"op\":\"break\",\"lock\":\"doc-42\",\"reason\":null}",
	    LT_ERR_BAD_REQUEST);
	break_refused("{\"op\":\"break\",\"lock\":\"doc-42\",\"reason\":"
		      "\"\\u0000\"}",
	    LT_ERR_BAD_REQUEST);
	break_refused("{\"op\":\"break\",\"lock\":\"doc-42\",\"reason\":"
		      "\"\xff\"}",
	    LT_ERR_BAD_REQUEST);

	/* Size and truncation. */
	{
		const char *head = "{\"op\":\"break\",\"lock\":\"doc-42\","
				   "\"pad\":\"";
		char *json = padded(head, 4097);

		break_refused(json, LT_ERR_BAD_REQUEST);
		free(json);
		json = padded(head, 4096);
		assert_int_equal(dec_break(json, &b, &err), LT_OK);
		free(json);
	}
	for (size_t n = 0; n < strlen(full); n++) {
		void *p = exact(full, n);

		enum lt_event_kind kind;

		assert_int_equal(codec_decode_admin(p, n, &kind, &b, &err),
		    LT_ERR_BAD_REQUEST);
		free(p);
	}
}

/*
 * topics.md's error codes: invalid-lock is for a lock id that breaks the
 * naming rules; a missing or mistyped field is bad-request.
 */
static void
test_decode_break_missing_lock(void **state)
{
	(void)state;
	break_refused("{\"op\":\"break\"}", LT_ERR_BAD_REQUEST);
	break_refused("{\"op\":\"break\",\"lock\":42}", LT_ERR_BAD_REQUEST);
	break_refused("{\"op\":\"break\",\"lock\":null}", LT_ERR_BAD_REQUEST);
	break_refused("{\"op\":\"break\",\"lock\":[\"doc-42\"]}",
	    LT_ERR_BAD_REQUEST);
}

/* ---- encoders ---- */

static void
check_party(const cJSON *p, const char *client, const char *user,
    bool connected)
{
	assert_true(cJSON_IsObject(p));
	assert_keys("party", p, KEYS("client", "user", "connected"));
	assert_str_field(p, "client", client);
	assert_str_field(p, "user", user);
	assert_bool_field(p, "connected", connected);
}

static void
test_encode_owner(void **state)
{
	static const size_t counts[] = {0, 1, 20, 25};
	struct lt_waiter_rec w[25];
	char names[25][16];

	(void)state;
	for (size_t i = 0; i < 25; i++) {
		snprintf(names[i], sizeof(names[i]), "w%02zu", i);
		w[i].client = names[i];
		w[i].user = i % 3 == 0 ? NULL : names[i];
		w[i].uid = NULL;
		w[i].connected = i % 2 == 0;
	}
	for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		size_t n = counts[k];
		struct lt_lock_rec r;
		char *text;
		cJSON *o;
		const cJSON *q;

		memset(&r, 0, sizeof(r));
		r.id = "doc-42";
		r.holder = "ed-7f3a";
		r.holder_user = "Alice";
		r.holder_connected = k % 2 == 0;
		r.token = 17;
		r.since = 1764140000000;
		r.idle_deadline = 1764140600000;
		r.nwaiters = n;
		r.waiters = w;
		text = codec_encode_owner(&r);
		o = parse(text);
		assert_keys(text, o,
		    KEYS("v", "lock", "owner", "token", "since",
			"idle_deadline", "waiting", "queue"));
		assert_int_field(o, "v", 1);
		assert_str_field(o, "lock", "doc-42");
		check_party(field(o, "owner"), "ed-7f3a", "Alice", k % 2 == 0);
		assert_int_field(o, "token", 17);
		assert_int_field(o, "since", 1764140000000);
		assert_int_field(o, "idle_deadline", 1764140600000);
		assert_int_field(o, "waiting", (int64_t)n);
		q = field(o, "queue");
		assert_true(cJSON_IsArray(q));
		assert_int_equal(cJSON_GetArraySize(q), n < 20 ? n : 20);
		for (size_t i = 0; i < (n < 20 ? n : 20); i++)
			check_party(cJSON_GetArrayItem(q, (int)i), names[i],
			    i % 3 == 0 ? "" : names[i], i % 2 == 0);
		cJSON_Delete(o);
		free(text);
	}

	/* Free, with and without (disconnected) waiters. */
	for (size_t n = 0; n <= 2; n += 2) {
		struct lt_lock_rec r;
		struct lt_waiter_rec ws[2] = {{"ed-b", "Bob", NULL, false},
		    {"ed-c", "", NULL, false}};
		char *text;
		cJSON *o;

		memset(&r, 0, sizeof(r));
		r.id = "doc-42";
		r.since = 1764140000123;
		r.nwaiters = n;
		r.waiters = ws;
		text = codec_encode_owner(&r);
		o = parse(text);
		assert_keys(text, o,
		    KEYS("v", "lock", "owner", "token", "since",
			"idle_deadline", "waiting", "queue"));
		assert_null_field(o, "owner");
		assert_null_field(o, "token");
		assert_null_field(o, "idle_deadline");
		assert_int_field(o, "since", 1764140000123);
		assert_int_field(o, "waiting", (int64_t)n);
		assert_int_equal(cJSON_GetArraySize(field(o, "queue")), n);
		if (n > 0)
			check_party(cJSON_GetArrayItem(field(o, "queue"), 0),
			    "ed-b", "Bob", false);
		cJSON_Delete(o);
		free(text);
	}

	/* Names that need escaping; the largest token, as exact text. */
	{
		struct lt_lock_rec r;
		char *text;
		cJSON *o;

		memset(&r, 0, sizeof(r));
		r.id = "doc\"\\\xc3\xa9";
		r.holder = "_svc";
		r.holder_user = "\"quoted\"\n";
		r.holder_connected = false;
		r.token = (uint64_t)BIG;
		r.since = BIG - 1;
		r.idle_deadline = BIG;
		text = codec_encode_owner(&r);
		o = parse(text);
		assert_str_field(o, "lock", "doc\"\\\xc3\xa9");
		check_party(field(o, "owner"), "_svc", "\"quoted\"\n", false);
		assert_contains(text, "\"token\":9007199254740991");
		assert_contains(text, "\"since\":9007199254740990");
		assert_contains(text, "\"idle_deadline\":9007199254740991");
		cJSON_Delete(o);
		free(text);
	}
}

static struct lt_fx
fx_of(enum lt_fx_kind kind, int what, const char *client, const char *lock)
{
	struct lt_fx e;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	if (kind == LT_FX_EVENT)
		e.what.event = (enum lt_event_type)what;
	else
		e.what.result = (enum lt_result)what;
	snprintf(e.client, sizeof(e.client), "%s", client);
	snprintf(e.lock, sizeof(e.lock), "%s", lock);
	return e;
}

static cJSON *
event_json(const struct lt_fx *e, char **text)
{
	*text = codec_encode_event(e);
	return parse(*text);
}

static void
test_encode_event(void **state)
{
	struct lt_fx e;
	char *text;
	cJSON *o;

	(void)state;
	e = fx_of(LT_FX_EVENT, LT_E_GRANTED, "ed-a", "doc-42");
	e.token = 17;
	e.deadline = 1764140600000;
	o = event_json(&e, &text);
	assert_keys(text, o,
	    KEYS("event", "lock", "token", "idle_deadline", "now"));
	assert_str_field(o, "event", "granted");
	assert_str_field(o, "lock", "doc-42");
	assert_int_field(o, "token", 17);
	assert_int_field(o, "idle_deadline", 1764140600000);
	cJSON_Delete(o);
	free(text);
	e.token = (uint64_t)BIG;
	text = codec_encode_event(&e);
	assert_contains(text, "\"token\":9007199254740991");
	free(text);

	e = fx_of(LT_FX_EVENT, LT_E_QUEUED, "ed-a", "doc-42");
	e.position = 3;
	o = event_json(&e, &text);
	assert_keys(text, o, KEYS("event", "lock", "position", "now"));
	assert_str_field(o, "event", "queued");
	assert_int_field(o, "position", 3);
	cJSON_Delete(o);
	free(text);

	e = fx_of(LT_FX_EVENT, LT_E_BUSY, "ed-a", "doc-42");
	o = event_json(&e, &text);
	assert_keys(text, o, KEYS("event", "lock", "now"));
	assert_str_field(o, "event", "busy");
	cJSON_Delete(o);
	free(text);

	for (int why = LT_REASON_IDLE; why <= LT_REASON_DISCONNECT; why++) {
		e = fx_of(LT_FX_EVENT, LT_E_REVOKED, "ed-a", "doc-42");
		e.reason = (enum lt_reason)why;
		e.token = 17;
		o = event_json(&e, &text);
		assert_keys(text, o,
		    KEYS("event", "lock", "token", "reason", "now"));
		assert_str_field(o, "event", "revoked");
		assert_str_field(o, "reason",
		    why == LT_REASON_IDLE ? "idle" : "disconnect");
		assert_int_field(o, "token", 17);
		cJSON_Delete(o);
		free(text);
	}
	e = fx_of(LT_FX_EVENT, LT_E_REVOKED, "ed-a", "doc-42");
	e.reason = LT_REASON_ADMIN;
	e.token = (uint64_t)BIG;
	snprintf(e.detail, sizeof(e.detail), "stuck \"since\" Friday");
	o = event_json(&e, &text);
	assert_keys(text, o,
	    KEYS("event", "lock", "token", "reason", "message", "now"));
	assert_str_field(o, "reason", "admin");
	assert_str_field(o, "message", "stuck \"since\" Friday");
	assert_contains(text, "\"token\":9007199254740991");
	cJSON_Delete(o);
	free(text);

	e = fx_of(LT_FX_EVENT, LT_E_IDLE_WARNING, "ed-a", "doc-42");
	e.deadline = 1764140600000;
	o = event_json(&e, &text);
	assert_keys(text, o, KEYS("event", "lock", "deadline", "now"));
	assert_str_field(o, "event", "idle-warning");
	assert_int_field(o, "deadline", 1764140600000);
	cJSON_Delete(o);
	free(text);

	for (int code = LT_ERR_BAD_REQUEST; code <= LT_ERR_INTERNAL; code++) {
		e = fx_of(LT_FX_EVENT, LT_E_ERROR, "ed-a", "doc-42");
		e.code = (enum lt_err)code;
		e.message = "why it was refused";
		o = event_json(&e, &text);
		assert_keys(text, o,
		    KEYS("event", "lock", "code", "message", "now"));
		assert_str_field(o, "event", "error");
		assert_str_field(o, "code", codec_err_name(e.code));
		assert_str_field(o, "message", "why it was refused");
		cJSON_Delete(o);
		free(text);
	}
	/* The request's lock id itself was invalid: lock is null. */
	e = fx_of(LT_FX_EVENT, LT_E_ERROR, "ed-a", "");
	e.code = LT_ERR_INVALID_LOCK;
	e.message = "bad lock";
	o = event_json(&e, &text);
	assert_keys(text, o, KEYS("event", "lock", "code", "message", "now"));
	assert_null_field(o, "lock");
	assert_str_field(o, "code", "invalid-lock");
	cJSON_Delete(o);
	free(text);
}

static void
test_encode_reply(void **state)
{
	static const struct {
		enum lt_result r;
		const char *name;
	} plain[] = {
	    {LT_R_BUSY, "busy"},
	    {LT_R_RELEASED, "released"},
	    {LT_R_REFRESHED, "refreshed"},
	    {LT_R_IGNORED, "ignored"},
	};
	struct lt_fx e;
	char *text;
	cJSON *o;

	(void)state;
	e = fx_of(LT_FX_REPLY, LT_R_GRANTED, "ed-a", "doc-42");
	e.token = 17;
	text = codec_encode_reply(&e);
	o = parse(text);
	assert_keys(text, o, KEYS("ok", "lock", "result", "token"));
	assert_bool_field(o, "ok", true);
	assert_str_field(o, "lock", "doc-42");
	assert_str_field(o, "result", "granted");
	assert_int_field(o, "token", 17);
	cJSON_Delete(o);
	free(text);

	e = fx_of(LT_FX_REPLY, LT_R_QUEUED, "ed-a", "doc-42");
	e.position = 1;
	text = codec_encode_reply(&e);
	o = parse(text);
	assert_keys(text, o, KEYS("ok", "lock", "result", "position"));
	assert_str_field(o, "result", "queued");
	assert_int_field(o, "position", 1);
	cJSON_Delete(o);
	free(text);

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		e = fx_of(LT_FX_REPLY, plain[i].r, "ed-a", "doc-42");
		text = codec_encode_reply(&e);
		o = parse(text);
		assert_keys(text, o, KEYS("ok", "lock", "result"));
		assert_bool_field(o, "ok", true);
		assert_str_field(o, "result", plain[i].name);
		cJSON_Delete(o);
		free(text);
	}

	/* An admin break: the revoked token, exact. */
	e = fx_of(LT_FX_REPLY, LT_R_REVOKED, "", "doc-42");
	e.token = (uint64_t)BIG;
	text = codec_encode_reply(&e);
	o = parse(text);
	assert_keys(text, o, KEYS("ok", "lock", "result", "token"));
	assert_str_field(o, "result", "revoked");
	assert_contains(text, "\"token\":9007199254740991");
	cJSON_Delete(o);
	free(text);

	/* Errors, with the lock when known. */
	for (int code = LT_ERR_BAD_REQUEST; code <= LT_ERR_INTERNAL; code++) {
		e = fx_of(LT_FX_REPLY, LT_R_ERROR, "ed-a", "doc-42");
		e.code = (enum lt_err)code;
		e.message = "no";
		text = codec_encode_reply(&e);
		o = parse(text);
		assert_keys(text, o, KEYS("ok", "lock", "code", "message"));
		assert_bool_field(o, "ok", false);
		assert_str_field(o, "lock", "doc-42");
		assert_str_field(o, "code", codec_err_name(e.code));
		assert_str_field(o, "message", "no");
		cJSON_Delete(o);
		free(text);
	}
	e = fx_of(LT_FX_REPLY, LT_R_ERROR, "", "");
	e.code = LT_ERR_BAD_REQUEST;
	e.message = "not JSON";
	text = codec_encode_reply(&e);
	o = parse(text);
	assert_keys(text, o, KEYS("ok", "code", "message"));
	assert_str_field(o, "code", "bad-request");
	cJSON_Delete(o);
	free(text);
}

static void
test_encode_status(void **state)
{
	struct codec_status st = {
	    .online = true,
	    .version = "1.0.0",
	    .since = 1764140000000,
	    .epoch = 3,
	    .grace = 10000,
	    .idle_timeout = 600000,
	    .idle_warning = 60000,
	    .idle_policy = LT_IDLE_CONTENDED,
	    .keepalive = 10,
	    .tickets = CODEC_TICKETS_REQUIRED,
	};
	char *text;
	cJSON *o;

	(void)state;
	text = codec_encode_status(&st);
	o = parse(text);
	assert_keys(text, o,
	    KEYS("state", "version", "protocol", "since", "epoch", "grace",
		"idle_timeout", "idle_warning", "idle_policy", "keepalive",
		"tickets"));
	assert_str_field(o, "state", "online");
	assert_str_field(o, "version", "1.0.0");
	assert_int_field(o, "protocol", 1);
	assert_int_field(o, "since", 1764140000000);
	assert_int_field(o, "epoch", 3);
	assert_int_field(o, "grace", 10000);
	assert_int_field(o, "idle_timeout", 600000);
	assert_int_field(o, "idle_warning", 60000);
	assert_str_field(o, "idle_policy", "contended");
	assert_int_field(o, "keepalive", 10);
	assert_str_field(o, "tickets", "required");
	cJSON_Delete(o);
	free(text);

	st.online = false;
	st.since = 1764140000001;
	st.epoch = (uint64_t)BIG;
	st.error = "journal write failed";
	st.idle_policy = LT_IDLE_ALWAYS;
	st.tickets = CODEC_TICKETS_OFF;
	text = codec_encode_status(&st);
	o = parse(text);
	assert_keys(text, o,
	    KEYS("state", "version", "protocol", "since", "epoch", "grace",
		"idle_timeout", "idle_warning", "idle_policy", "keepalive",
		"tickets", "error"));
	assert_str_field(o, "state", "offline");
	assert_str_field(o, "error", "journal write failed");
	assert_str_field(o, "idle_policy", "always");
	assert_str_field(o, "tickets", "off");
	assert_contains(text, "\"epoch\":9007199254740991");
	cJSON_Delete(o);
	free(text);
}

/* ---- round trips ---- */

static void
request_round_trip(const struct lt_request *in)
{
	struct lt_request out;
	struct codec_error err;
	char *text = codec_encode_request(in);
	enum lt_err rc;

	assert_non_null(text);
	rc = dec_len(text, strlen(text), in->lock, &out, &err);
	if (rc != LT_OK)
		fail_msg("%s: refused (%s)", text, err.message);
	assert_int_equal(out.op, in->op);
	assert_string_equal(out.lock, in->lock);
	assert_string_equal(out.client, in->client);
	assert_string_equal(out.session, in->session);
	assert_string_equal(out.user, in->user);
	assert_true(out.conn == (in->conn < 0 ? -1 : in->conn));
	if (in->op == LT_OP_ACQUIRE)
		assert_int_equal(out.wait, in->wait);
	else
		assert_true(out.wait);
	free(text);
}

static void
test_round_trips(void **state)
{
	struct lt_request rq;
	struct lt_will w;
	char *text;
	static const int64_t conns[] = {-1, 0, 1, BIG};
	static const char *const users[] = {"", "Alice",
	    "\"q\" \\ / \n\t\x01 \xc3\xa9 \xf0\x9f\x98\x80", "\\u0000"};

	(void)state;
	for (int op = LT_OP_ACQUIRE; op <= LT_OP_ACTIVITY; op++) {
		for (size_t c = 0; c < sizeof(conns) / sizeof(conns[0]); c++) {
			for (size_t u = 0; u < sizeof(users) / sizeof(users[0]);
			     u++) {
				for (int wait = 0; wait <= 1; wait++) {
					memset(&rq, 0, sizeof(rq));
					rq.op = (enum lt_op)op;
					snprintf(rq.lock, sizeof(rq.lock),
					    "doc-\xc3\xa9");
					snprintf(rq.client, sizeof(rq.client),
					    "_ed-\"a\"");
					snprintf(rq.session, sizeof(rq.session),
					    "%s\"\\%s", S16, "\xe2\x82\xac");
					snprintf(rq.user, sizeof(rq.user), "%s",
					    users[u]);
					rq.conn = conns[c];
					rq.wait = wait != 0;
					request_round_trip(&rq);
				}
			}
		}
	}

	for (size_t c = 0; c < sizeof(conns) / sizeof(conns[0]); c++) {
		text = codec_encode_will(S16 "\"\\", conns[c]);
		assert_non_null(text);
		assert_int_equal(dec_will(text, "ed-a", &w), LT_OK);
		assert_string_equal(w.session, S16 "\"\\");
		assert_string_equal(w.client, "ed-a");
		assert_true(w.conn == conns[c]);
		if (conns[c] == BIG)
			assert_contains(text, "\"conn\":9007199254740991");
		if (conns[c] < 0)
			assert_null(strstr(text, "conn"));
		free(text);
	}
}

/* ---- the broker's topic rules, bound topics, new fields ---- */

/* Code points mosquitto refuses in a topic, as UTF-8. */
static const char *const poison[] = {
    "\x01", "\x1f", "\x7f",                 /* C0, DEL */
    "\xc2\x80", "\xc2\x85", "\xc2\x9f",     /* C1: U+0080, U+0085, U+009F */
    "\xef\xb7\x90", "\xef\xb7\xaf",         /* U+FDD0, U+FDEF */
    "\xef\xbf\xbe", "\xef\xbf\xbf",         /* U+FFFE, U+FFFF */
    "\xf0\x9f\xbf\xbe", "\xf0\x9f\xbf\xbf", /* U+1FFFE, U+1FFFF */
    "\xf4\x8f\xbf\xbf",                     /* U+10FFFF */
};

/* Their neighbours, which it accepts. */
static const char *const fine[] = {
    "\xc2\xa0",         /* U+00A0 */
    "\xef\xb7\x8f",     /* U+FDCF */
    "\xef\xb7\xb0",     /* U+FDF0 */
    "\xef\xbf\xbd",     /* U+FFFD */
    "\xf0\x9f\xbf\xbd", /* U+1FFFD */
};

static void
test_topic_text(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(poison) / sizeof(poison[0]); i++) {
		char *s = cat3("a", poison[i], "b");

		if (codec_topic_text_valid(s, strlen(s)) || lock_ok(s) ||
		    client_ok(s))
			fail_msg("poison %zu accepted", i);
		/* Valid UTF-8 all the same: payloads may carry it. */
		assert_true(codec_utf8_valid(s, strlen(s)));
		free(s);
	}
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		char *s = cat3("a", fine[i], "b");

		if (!codec_topic_text_valid(s, strlen(s)) || !lock_ok(s) ||
		    !client_ok(s))
			fail_msg("fine %zu refused", i);
		free(s);
	}
	assert_false(codec_topic_text_valid("a\0b", 3));
	assert_false(codec_topic_text_valid("\xc0\x80", 2));
	assert_true(codec_topic_text_valid("replies/ed-a/x", 14));
}

static void
bound_is(const char *topic, enum codec_topic_kind kind, const char *id,
    bool client_valid, const char *client)
{
	struct codec_topic t;

	memset(&t, 0x5a, sizeof(t));
	codec_parse_topic("locks", topic, &t);
	if (t.kind != kind || !t.bound || t.client_valid != client_valid)
		fail_msg("%s: kind %d bound %d client_valid %d", topic, t.kind,
		    t.bound, t.client_valid);
	if (kind == CODEC_T_REQUEST)
		assert_string_equal(t.id, id);
	assert_string_equal(t.client, client_valid ? client : "");
}

static void
test_parse_bound_topic(void **state)
{
	struct codec_topic t;

	(void)state;
	bound_is("locks/doc-1/request/ed-a", CODEC_T_REQUEST, "doc-1", true,
	    "ed-a");
	bound_is("locks/doc-1/request/_svc", CODEC_T_REQUEST, "doc-1", true,
	    "_svc");
	bound_is("locks/doc-1/request/", CODEC_T_REQUEST, "doc-1", false, "");
	bound_is("locks/doc-1/request/$x", CODEC_T_REQUEST, "doc-1", false, "");
	bound_is("locks/doc-1/request/a\xc2\x85", CODEC_T_REQUEST, "doc-1",
	    false, "");
	bound_is("locks/doc-1/request/a\xef\xbf\xbf", CODEC_T_REQUEST, "doc-1",
	    false, "");
	bound_is("locks/_admin/command/ops", CODEC_T_ADMIN, NULL, true, "ops");
	bound_is("locks/_admin/command/", CODEC_T_ADMIN, NULL, false, "");
	/* The unbound forms are not bound. */
	codec_parse_topic("locks", "locks/doc-1/request", &t);
	assert_int_equal(t.kind, CODEC_T_REQUEST);
	assert_false(t.bound);
	codec_parse_topic("locks", "locks/_admin/command", &t);
	assert_int_equal(t.kind, CODEC_T_ADMIN);
	assert_false(t.bound);
	/* A lock id the broker would refuse. */
	codec_parse_topic("locks", "locks/a\xc2\x9f/request/ed-a", &t);
	assert_int_equal(t.kind, CODEC_T_REQUEST);
	assert_false(t.id_valid);
	assert_true(t.client_valid);
}

static void
test_decode_bound(void **state)
{
	struct lt_request rq;
	struct codec_error err;
	char *json;

	(void)state;
	/* The payload's client must be the topic's. */
	assert_int_equal(dec_bound("{\"op\":\"acquire\",\"client\":\"ed-a\","
				   "\"session\":\"0123456789abcdef\"}",
			     "ed-a", &rq, &err),
	    LT_OK);
	assert_string_equal(rq.client, "ed-a");
	assert_int_equal(dec_bound("{\"op\":\"acquire\",\"client\":\"ed-b\","
				   "\"session\":\"0123456789abcdef\"}",
			     "ed-a", &rq, &err),
	    LT_ERR_BAD_REQUEST);
	assert_string_equal(err.client, "ed-a");
	assert_string_equal(err.message,
	    "client differs from the request topic");
	assert_int_equal(dec_bound("{\"op\":\"acquire\","
				   "\"session\":\"0123456789abcdef\"}",
			     "ed-a", &rq, &err),
	    LT_ERR_BAD_REQUEST);
	assert_string_equal(err.client, "ed-a");
	/* Not JSON at all: the topic still names whom to tell. */
	assert_int_equal(dec_bound("nonsense", "ed-a", &rq, &err),
	    LT_ERR_BAD_REQUEST);
	assert_string_equal(err.client, "ed-a");
	/* Too large: refused unread, on either topic. */
	json = padded("{\"op\":\"acquire\",\"client\":\"ed-a\",\"pad\":\"",
	    MQL_PAYLOAD_MAX + 1);
	assert_int_equal(dec_bound(json, "ed-a", &rq, &err),
	    LT_ERR_BAD_REQUEST);
	assert_string_equal(err.client, "ed-a");
	assert_string_equal(err.message, "payload larger than 4096 bytes");
	assert_int_equal(dec(json, &rq, &err), LT_ERR_BAD_REQUEST);
	/* Unbound, an unread payload names nobody. */
	assert_string_equal(err.client, "");
	free(json);
}

static void
test_decode_new_fields(void **state)
{
	struct lt_request rq;
	struct codec_error err;
	char *ticket = repeat("t", MQL_TICKET_MAX);
	char *json;

	(void)state;
	/* query: no session needed. */
	assert_int_equal(
	    dec("{\"op\":\"query\",\"client\":\"ed-a\"}", &rq, &err), LT_OK);
	assert_int_equal(rq.op, LT_OP_QUERY);
	assert_string_equal(rq.session, "");
	assert_int_equal(dec("{\"op\":\"query\",\"client\":\"ed-a\","
			     "\"session\":\"short\"}",
			     &rq, &err),
	    LT_ERR_BAD_REQUEST);
	assert_int_equal(
	    dec("{\"op\":\"release\",\"client\":\"ed-a\"}", &rq, &err),
	    LT_ERR_BAD_REQUEST);
	/* takeover: a boolean. */
	assert_int_equal(dec("{\"op\":\"acquire\",\"client\":\"ed-a\","
			     "\"session\":\"0123456789abcdef\","
			     "\"takeover\":true}",
			     &rq, &err),
	    LT_OK);
	assert_true(rq.takeover);
	assert_int_equal(dec("{\"op\":\"acquire\",\"client\":\"ed-a\","
			     "\"session\":\"0123456789abcdef\","
			     "\"takeover\":1}",
			     &rq, &err),
	    LT_ERR_BAD_REQUEST);
	assert_string_equal(err.message, "takeover must be a boolean");
	/* ticket: a string of at most MQL_TICKET_MAX bytes. */
	json = malloc(strlen(ticket) + 128);
	assert_non_null(json);
	sprintf(json,
	    "{\"op\":\"acquire\",\"client\":\"ed-a\","
	    "\"session\":\"0123456789abcdef\",\"ticket\":\"%s\"}",
	    ticket);
	assert_int_equal(dec(json, &rq, &err), LT_OK);
	assert_string_equal(rq.ticket, ticket);
	assert_string_equal(rq.uid, "");
	sprintf(json,
	    "{\"op\":\"acquire\",\"client\":\"ed-a\","
	    "\"session\":\"0123456789abcdef\",\"ticket\":\"%sx\"}",
	    ticket);
	assert_int_equal(dec(json, &rq, &err), LT_ERR_BAD_REQUEST);
	assert_string_equal(err.message,
	    "ticket must be a string of at most 2048 bytes");
	assert_int_equal(dec("{\"op\":\"acquire\",\"client\":\"ed-a\","
			     "\"session\":\"0123456789abcdef\","
			     "\"ticket\":7}",
			     &rq, &err),
	    LT_ERR_BAD_REQUEST);
	assert_int_equal(dec("{\"op\":\"steal\",\"client\":\"ed-a\","
			     "\"session\":\"0123456789abcdef\"}",
			     &rq, &err),
	    LT_ERR_BAD_REQUEST);
	assert_string_equal(err.message,
	    "op must be acquire, release, activity or query");
	free(json);
	free(ticket);
}

static void
test_decode_purge(void **state)
{
	struct lt_admin a;
	struct codec_error err;
	enum lt_event_kind kind = LT_EV_TICK;

	(void)state;
	assert_int_equal(
	    dec_admin("{\"op\":\"purge\",\"lock\":\"doc-1\"}", &kind, &a, &err),
	    LT_OK);
	assert_int_equal(kind, LT_EV_PURGE);
	assert_string_equal(a.lock, "doc-1");
	assert_int_equal(dec_admin("{\"op\":\"purge\",\"lock\":\"a\xc2\x85\"}",
			     &kind, &a, &err),
	    LT_ERR_INVALID_LOCK);
	assert_int_equal(
	    dec_admin("{\"op\":\"wipe\",\"lock\":\"doc-1\"}", &kind, &a, &err),
	    LT_ERR_BAD_REQUEST);
	assert_string_equal(err.message, "op must be break or purge");
}

static void
test_encode_new_events(void **state)
{
	struct lt_fx fx;
	char *text;
	cJSON *o;

	(void)state;
	memset(&fx, 0, sizeof(fx));
	fx.kind = LT_FX_EVENT;
	fx.what.event = LT_E_DROPPED;
	fx.reason = LT_REASON_ADMIN;
	fx.now = 1764140000123;
	snprintf(fx.client, sizeof(fx.client), "ed-a");
	snprintf(fx.lock, sizeof(fx.lock), "doc-1");
	snprintf(fx.detail, sizeof(fx.detail), "queue of ghosts");
	text = codec_encode_event(&fx);
	o = parse(text);
	assert_keys(text, o, KEYS("event", "lock", "reason", "message", "now"));
	assert_str_field(o, "event", "dropped");
	assert_str_field(o, "reason", "admin");
	assert_str_field(o, "message", "queue of ghosts");
	assert_int_field(o, "now", 1764140000123);
	cJSON_Delete(o);
	free(text);

	fx.reason = LT_REASON_DISCONNECT;
	text = codec_encode_event(&fx);
	o = parse(text);
	assert_keys(text, o, KEYS("event", "lock", "reason", "now"));
	cJSON_Delete(o);
	free(text);

	fx.what.event = LT_E_REVOKED;
	fx.reason = LT_REASON_TAKEOVER;
	fx.token = 9;
	text = codec_encode_event(&fx);
	o = parse(text);
	assert_keys(text, o, KEYS("event", "lock", "reason", "token", "now"));
	assert_str_field(o, "reason", "takeover");
	cJSON_Delete(o);
	free(text);

	memset(&fx, 0, sizeof(fx));
	fx.kind = LT_FX_REPLY;
	fx.what.result = LT_R_PURGED;
	fx.count = 3;
	snprintf(fx.lock, sizeof(fx.lock), "doc-1");
	text = codec_encode_reply(&fx);
	o = parse(text);
	assert_keys(text, o, KEYS("ok", "lock", "result", "count"));
	assert_str_field(o, "result", "purged");
	assert_int_field(o, "count", 3);
	cJSON_Delete(o);
	free(text);
}

static void
test_encode_uid_and_state(void **state)
{
	struct lt_waiter_rec ws[2] = {{"ed-b", "Bob", "u-2", true},
	    {"ed-c", "Carol", NULL, false}};
	struct lt_lock_rec r;
	const cJSON *owner, *q;
	char *text;
	cJSON *o;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.id = "doc-1";
	r.holder = "ed-a";
	r.holder_user = "Alice";
	r.holder_uid = "u-1";
	r.holder_connected = true;
	r.token = 7;
	r.since = 1000;
	r.idle_deadline = 2000;
	r.nwaiters = 2;
	r.waiters = ws;
	text = codec_encode_owner(&r);
	o = parse(text);
	owner = field(o, "owner");
	assert_keys("owner", owner, KEYS("client", "user", "uid", "connected"));
	assert_str_field(owner, "uid", "u-1");
	q = field(o, "queue");
	assert_keys("waiter", cJSON_GetArrayItem(q, 0),
	    KEYS("client", "user", "uid", "connected"));
	assert_keys("waiter", cJSON_GetArrayItem(q, 1),
	    KEYS("client", "user", "connected"));
	cJSON_Delete(o);
	free(text);

	text = codec_encode_state("doc-1", &r, 1500);
	o = parse(text);
	assert_keys(text, o,
	    KEYS("ok", "lock", "result", "owner", "token", "since",
		"idle_deadline", "waiting", "queue", "now"));
	assert_str_field(o, "result", "state");
	assert_int_field(o, "token", 7);
	assert_int_field(o, "now", 1500);
	cJSON_Delete(o);
	free(text);

	text = codec_encode_state("doc-9", NULL, 1500);
	o = parse(text);
	assert_keys(text, o,
	    KEYS("ok", "lock", "result", "owner", "token", "idle_deadline",
		"waiting", "queue", "now"));
	assert_true(cJSON_IsNull(field(o, "owner")));
	assert_int_field(o, "waiting", 0);
	cJSON_Delete(o);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_ids),
	    cmocka_unit_test(test_prefix),
	    cmocka_unit_test(test_parse_topic),
	    cmocka_unit_test(test_topic_builders),
	    cmocka_unit_test(test_decode_request_valid),
	    cmocka_unit_test(test_decode_request_malformed),
	    cmocka_unit_test(test_decode_request_nul_in_client),
	    cmocka_unit_test(test_decode_request_lengths),
	    cmocka_unit_test(test_decode_request_truncated),
	    cmocka_unit_test(test_decode_request_nul_and_lock),
	    cmocka_unit_test(test_decode_request_duplicate_keys),
	    cmocka_unit_test(test_decode_will),
	    cmocka_unit_test(test_decode_break),
	    cmocka_unit_test(test_decode_break_missing_lock),
	    cmocka_unit_test(test_encode_owner),
	    cmocka_unit_test(test_encode_event),
	    cmocka_unit_test(test_encode_reply),
	    cmocka_unit_test(test_encode_status),
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_topic_text),
	    cmocka_unit_test(test_parse_bound_topic),
	    cmocka_unit_test(test_decode_bound),
	    cmocka_unit_test(test_decode_new_fields),
	    cmocka_unit_test(test_decode_purge),
	    cmocka_unit_test(test_encode_new_events),
	    cmocka_unit_test(test_encode_uid_and_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
