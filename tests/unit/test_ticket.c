/*
 * test_ticket: tickets (JWT, HS256) as mqlockd checks them: every refusal
 * of topics.md, and the key's length (reading the key file is config's and
 * tested in test_config).  Tickets are minted here with libjwt, and the
 * malformed ones written by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqlockd/ticket.h"

#define KEY "0123456789abcdef0123456789abcdef-test-key"
#define NOW ((lt_ms)1764140000000)
#define NOW_S (NOW / 1000)

struct fixture {
	struct ticket_key *key;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (f == NULL)
		return -1;
	f->key = ticket_key_new((const unsigned char *)KEY, strlen(KEY), err,
	    sizeof(err));
	if (f->key == NULL)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	ticket_key_free(f->key);
	free(f);
	return 0;
}

/*
 * A ticket with the given claims (JSON members, without braces), signed
 * with alg under key.  The caller frees it.
 */
static char *
mint(jwt_alg_t alg, const char *key, const char *claims)
{
	jwt_t *jwt = NULL;
	char json[4096];
	char *out;

	snprintf(json, sizeof(json), "{%s}", claims);
	assert_int_equal(jwt_new(&jwt), 0);
	assert_int_equal(jwt_add_grants_json(jwt, json), 0);
	assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key,
			     key != NULL ? (int)strlen(key) : 0),
	    0);
	out = jwt_encode_str(jwt);
	assert_non_null(out);
	jwt_free(jwt);
	return out;
}

static const char *
claims(const char *extra)
{
	static char buf[8192];

	snprintf(buf, sizeof(buf),
	    "\"sub\":\"u-42\",\"name\":\"Alice\",\"client\":\"ed-a\","
	    "\"exp\":%lld%s%s",
	    (long long)NOW_S + 60, extra[0] ? "," : "", extra);
	return buf;
}

/* Verify t for ed-a on doc-1 at NOW: the code, and uid/name on success. */
static enum lt_err
check(struct fixture *f, const char *t, char *uid, char *name)
{
	const char *why = NULL;
	char u[MQL_UID_SZ], n[MQL_USER_SZ];
	enum lt_err e = ticket_verify(f->key, t, "ed-a", "doc-1", NOW,
	    uid != NULL ? uid : u, name != NULL ? name : n, &why);

	if (e != LT_OK) {
		assert_non_null(why);
		assert_true(why[0] != '\0');
	}
	return e;
}

static void
test_valid(void **state)
{
	struct fixture *f = *state;
	char uid[MQL_UID_SZ], name[MQL_USER_SZ];
	char *t = mint(JWT_ALG_HS256, KEY, claims(""));

	assert_int_equal(check(f, t, uid, name), LT_OK);
	assert_string_equal(uid, "u-42");
	assert_string_equal(name, "Alice");
	free(t);
	/* With locks naming this one, and a nbf in the past. */
	t = mint(JWT_ALG_HS256, KEY,
	    claims("\"locks\":[\"doc-0\",\"doc-1\"],\"nbf\":1"));
	assert_int_equal(check(f, t, uid, name), LT_OK);
	free(t);
}

static void
test_refusals(void **state)
{
	struct fixture *f = *state;
	char *t;

	/* Issued for another client id. */
	t = mint(JWT_ALG_HS256, KEY,
	    "\"sub\":\"u-42\",\"name\":\"A\",\"client\":\"ed-b\","
	    "\"exp\":9999999999");
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_MISMATCH);
	free(t);
	/* A lock not in its locks; locks empty. */
	t = mint(JWT_ALG_HS256, KEY, claims("\"locks\":[\"doc-2\"]"));
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_LOCK);
	free(t);
	t = mint(JWT_ALG_HS256, KEY, claims("\"locks\":[]"));
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_LOCK);
	free(t);
	/* Expired: exp in the past, and exp exactly now. */
	t = mint(JWT_ALG_HS256, KEY,
	    "\"sub\":\"u-42\",\"name\":\"A\",\"client\":\"ed-a\","
	    "\"exp\":1764139999");
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_EXPIRED);
	free(t);
	t = mint(JWT_ALG_HS256, KEY,
	    "\"sub\":\"u-42\",\"name\":\"A\",\"client\":\"ed-a\","
	    "\"exp\":1764140000");
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_EXPIRED);
	free(t);
	/* Not valid yet. */
	t = mint(JWT_ALG_HS256, KEY, claims("\"nbf\":9999999999"));
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_INVALID);
	free(t);
}

static void
test_bad_claims(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    /* sub missing, empty, too long, not a string */
	    "\"name\":\"A\",\"client\":\"ed-a\",\"exp\":9999999999",
	    "\"sub\":\"\",\"name\":\"A\",\"client\":\"ed-a\",\"exp\":9999999999",
	    "\"sub\":7,\"name\":\"A\",\"client\":\"ed-a\",\"exp\":9999999999",
	    /* name missing or not a string */
	    "\"sub\":\"u\",\"client\":\"ed-a\",\"exp\":9999999999",
	    "\"sub\":\"u\",\"name\":null,\"client\":\"ed-a\",\"exp\":9999999999",
	    /* client missing */
	    "\"sub\":\"u\",\"name\":\"A\",\"exp\":9999999999",
	    /* exp missing or a string */
	    "\"sub\":\"u\",\"name\":\"A\",\"client\":\"ed-a\"",
	    "\"sub\":\"u\",\"name\":\"A\",\"client\":\"ed-a\",\"exp\":\"9\"",
	    /* locks not an array of strings */
	    "\"sub\":\"u\",\"name\":\"A\",\"client\":\"ed-a\","
	    "\"exp\":9999999999,\"locks\":\"doc-1\"",
	    "\"sub\":\"u\",\"name\":\"A\",\"client\":\"ed-a\","
	    "\"exp\":9999999999,\"locks\":[1]",
	};
	char longsub[256], buf[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *t = mint(JWT_ALG_HS256, KEY, bad[i]);

		if (check(f, t, NULL, NULL) != LT_ERR_TICKET_INVALID)
			fail_msg("claims %s accepted", bad[i]);
		free(t);
	}
	memset(longsub, 's', 129);
	longsub[129] = '\0';
	snprintf(buf, sizeof(buf),
	    "\"sub\":\"%s\",\"name\":\"A\",\"client\":\"ed-a\","
	    "\"exp\":9999999999",
	    longsub);
	{
		char *t = mint(JWT_ALG_HS256, KEY, buf);

		assert_int_equal(check(f, t, NULL, NULL),
		    LT_ERR_TICKET_INVALID);
		free(t);
	}
}

static void
test_bad_signatures(void **state)
{
	struct fixture *f = *state;
	char *t, *dot;

	/* alg none: no signature at all. */
	t = mint(JWT_ALG_NONE, NULL, claims(""));
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_INVALID);
	free(t);
	/* HS384 and HS512 under the right key: only HS256 is taken. */
	t = mint(JWT_ALG_HS384, KEY, claims(""));
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_INVALID);
	free(t);
	t = mint(JWT_ALG_HS512, KEY, claims(""));
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_INVALID);
	free(t);
	/* HS256 under another key. */
	t = mint(JWT_ALG_HS256, "another key, just as long as the real one",
	    claims(""));
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_INVALID);
	free(t);
	/* A signature cut short, and one removed. */
	t = mint(JWT_ALG_HS256, KEY, claims(""));
	t[strlen(t) - 5] = '\0';
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_INVALID);
	dot = strrchr(t, '.');
	dot[1] = '\0';
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_INVALID);
	free(t);
	/* Claims changed after signing (sub u-42 -> u-43). */
	{
		char *good = mint(JWT_ALG_HS256, KEY, claims(""));
		char *other = mint(JWT_ALG_HS256, KEY,
		    "\"sub\":\"u-43\",\"name\":\"Alice\",\"client\":\"ed-a\","
		    "\"exp\":9999999999");
		char forged[2048];
		const char *sig = strrchr(good, '.');
		size_t head = (size_t)(strrchr(other, '.') - other);

		snprintf(forged, sizeof(forged), "%.*s%s", (int)head, other,
		    sig);
		assert_int_equal(check(f, forged, NULL, NULL),
		    LT_ERR_TICKET_INVALID);
		free(good);
		free(other);
	}
	/* Not a JWT at all. */
	assert_int_equal(check(f, "", NULL, NULL), LT_ERR_TICKET_INVALID);
	assert_int_equal(check(f, "a.b.c", NULL, NULL), LT_ERR_TICKET_INVALID);
	assert_int_equal(check(f, "hello", NULL, NULL), LT_ERR_TICKET_INVALID);
}

/* A 4 KB ticket: refused (the codec caps the field at 2048 bytes first;
 * verify alone must still refuse it cleanly). */
static void
test_huge_ticket(void **state)
{
	struct fixture *f = *state;
	char pad[4096], buf[4300];
	char *t;

	memset(pad, 'p', 3900);
	pad[3900] = '\0';
	snprintf(buf, sizeof(buf), "\"pad\":\"%s\"", pad);
	t = mint(JWT_ALG_HS256, "another key, just as long as the real one",
	    claims(buf));
	assert_true(strlen(t) > 4096);
	assert_int_equal(check(f, t, NULL, NULL), LT_ERR_TICKET_INVALID);
	free(t);
}

static void
test_key_length(void **state)
{
	static const unsigned char big[TICKET_KEY_MAX + 1];
	char err[256];
	struct ticket_key *k;

	(void)state;
	assert_null(ticket_key_new((const unsigned char *)KEY,
	    TICKET_KEY_MIN - 1, err, sizeof(err)));
	assert_non_null(strstr(err, "32"));
	assert_null(ticket_key_new(big, sizeof(big), err, sizeof(err)));
	k = ticket_key_new(big, TICKET_KEY_MAX, err, sizeof(err));
	assert_non_null(k);
	ticket_key_free(k);
	k = ticket_key_new((const unsigned char *)KEY, TICKET_KEY_MIN, err,
	    sizeof(err));
	assert_non_null(k);
	ticket_key_free(k);
	ticket_key_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_claims, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_signatures, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_huge_ticket, setup, teardown),
	    cmocka_unit_test(test_key_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
