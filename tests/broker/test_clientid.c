/*
 * test_clientid.c: the client ids the broker plugin accepts (clientid.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clientid.h"

static int
ok(const char *s)
{
	return clientid_valid(s, strlen(s));
}

/* The UTF-8 encoding of code point c, between "a" and "b". */
static int
ok_cp(uint32_t c)
{
	char b[8];
	size_t n = 0;

	b[n++] = 'a';
	if (c < 0x80)
		b[n++] = (char)c;
	else if (c < 0x800) {
		b[n++] = (char)(0xc0 | (c >> 6));
		b[n++] = (char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		b[n++] = (char)(0xe0 | (c >> 12));
		b[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[n++] = (char)(0x80 | (c & 0x3f));
	} else {
		b[n++] = (char)(0xf0 | (c >> 18));
		b[n++] = (char)(0x80 | ((c >> 12) & 0x3f));
		b[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[n++] = (char)(0x80 | (c & 0x3f));
	}
	b[n++] = 'b';
	return clientid_valid(b, n);
}

static void
test_plain_ids(void **state)
{
	(void)state;
	assert_true(ok("a"));
	assert_true(ok("mqlockd-0123456789abcdef0123456789abcdef"));
	assert_true(ok("ed-alice.tab_3 x"));
	assert_true(ok("a$"));
	assert_true(ok("caf\xc3\xa9"));              /* U+00E9 */
	assert_true(ok("\xe2\x82\xac"));             /* U+20AC */
	assert_true(ok("\xf0\x9f\x94\x92"));         /* U+1F512 */
	assert_true(ok("\xf4\x8f\xbf\xbd"));         /* U+10FFFD */
	assert_true(ok("\xef\xbf\xbd"));             /* U+FFFD */
	assert_true(ok("\xef\xb7\x8f\xef\xb7\xb0")); /* U+FDCF, U+FDF0 */
}

static void
test_length(void **state)
{
	char s[CLIENTID_MAX + 2];

	(void)state;
	assert_false(clientid_valid("", 0));
	assert_false(clientid_valid(NULL, 0));
	assert_false(clientid_valid(NULL, 3));
	memset(s, 'x', sizeof(s));
	assert_true(clientid_valid(s, CLIENTID_MAX));
	assert_false(clientid_valid(s, CLIENTID_MAX + 1));
	/* 126 bytes and a 2-byte character: 128; one more byte: 129. */
	s[126] = '\xc3';
	s[127] = '\xa9';
	assert_true(clientid_valid(s, 128));
	s[126] = 'x';
	s[127] = '\xc3';
	s[128] = '\xa9';
	assert_false(clientid_valid(s, 129));
}

static void
test_topic_characters(void **state)
{
	(void)state;
	assert_false(ok("victim/mqlock"));
	assert_false(ok("/"));
	assert_false(ok("a/"));
	assert_false(ok("+"));
	assert_false(ok("a+b"));
	assert_false(ok("#"));
	assert_false(ok("a#"));
	assert_false(ok("$SYS"));
	assert_false(ok("$"));
}

static void
test_controls(void **state)
{
	(void)state;
	/* Every C0 control, DEL and every C1 control. */
	for (uint32_t c = 0; c <= 0x1f; c++)
		assert_false(ok_cp(c));
	for (uint32_t c = 0x7f; c <= 0x9f; c++)
		assert_false(ok_cp(c));
	assert_true(ok_cp(0x20));
	assert_true(ok_cp(0x7e));
	assert_true(ok_cp(0xa0));
	/* A NUL inside the given length. */
	assert_false(clientid_valid("a\0b", 3));
	assert_true(clientid_valid("a\0b", 1));
}

static void
test_noncharacters(void **state)
{
	(void)state;
	for (uint32_t c = 0xfdd0; c <= 0xfdef; c++)
		assert_false(ok_cp(c));
	assert_true(ok_cp(0xfdcf));
	assert_true(ok_cp(0xfdf0));
	/* xFFFE and xFFFF in every plane. */
	for (uint32_t plane = 0; plane <= 0x10; plane++) {
		assert_false(ok_cp((plane << 16) | 0xfffe));
		assert_false(ok_cp((plane << 16) | 0xffff));
		assert_true(ok_cp((plane << 16) | 0xfffd));
	}
}

static void
test_bad_utf8(void **state)
{
	static const char *const bad[] = {
	    "\x80",             /* continuation byte first */
	    "a\xbf",            /* lone continuation */
	    "\xc0\xaf",         /* overlong '/' */
	    "\xc1\xbf",         /* overlong */
	    "\xe0\x80\xaf",     /* overlong '/' */
	    "\xe0\x9f\xbf",     /* overlong */
	    "\xf0\x80\x80\xaf", /* overlong '/' */
	    "\xf0\x8f\xbf\xbf", /* overlong */
	    "\xed\xa0\x80",     /* U+D800 */
	    "\xed\xbf\xbf",     /* U+DFFF */
	    "\xf4\x90\x80\x80", /* U+110000 */
	    "\xf5\x80\x80\x80",
	    "\xf8\x88\x80\x80\x80",
	    "\xfe",
	    "\xff",
	    "\xc3",         /* truncated */
	    "a\xe2\x82",    /* truncated */
	    "\xf0\x9f\x94", /* truncated */
	    "\xc3\x28",     /* bad continuation */
	    "\xe2\x28\xac",
	    "\xe2\x82\x28",
	    "\xf0\x28\x8c\xbc",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (ok(bad[i]))
			fail_msg("accepted bad UTF-8 #%zu", i);
	}
	assert_true(ok("\xed\x9f\xbf")); /* U+D7FF */
	assert_true(ok("\xee\x80\x80")); /* U+E000 */
	assert_true(ok("\xc2\xa0"));     /* U+00A0 */
}

/* The length given is obeyed: bytes past it are never read. */
static void
test_bounded_read(void **state)
{
	char s[4] = {'a', 'b', '\xc3', '\xa9'};

	(void)state;
	assert_true(clientid_valid(s, 2));
	/* Cut inside a character. */
	assert_false(clientid_valid(s, 3));
	assert_true(clientid_valid(s, 4));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_ids),
	    cmocka_unit_test(test_length),
	    cmocka_unit_test(test_topic_characters),
	    cmocka_unit_test(test_controls),
	    cmocka_unit_test(test_noncharacters),
	    cmocka_unit_test(test_bad_utf8),
	    cmocka_unit_test(test_bounded_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
