/*
 * secret: passwords (first line) and keys (whole file, owner only) read
 * from files, with clear refusals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/secret.h"

struct fixture {
	char dir[64];
	char path[96];
};

/* A scratch directory per test, holding the file "s". */
static struct fixture scratch;

static int
setup(void **state)
{
	snprintf(scratch.dir, sizeof(scratch.dir), "/tmp/mqlock-key-XXXXXX");
	if (mkdtemp(scratch.dir) == NULL)
		return -1;
	snprintf(scratch.path, sizeof(scratch.path), "%s/s", scratch.dir);
	*state = &scratch;
	return 0;
}

static int
teardown(void **state)
{
	unlink(scratch.path);
	return rmdir(scratch.dir);
}

/* Write len bytes of text to the fixture's file with mode. */
static const char *
put(struct fixture *f, const char *text, size_t len, mode_t mode)
{
	FILE *out;

	unlink(f->path);
	out = fopen(f->path, "w");
	assert_non_null(out);
	assert_int_equal(fwrite(text, 1, len, out), len);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(chmod(f->path, mode), 0);
	return f->path;
}

#define PUT(f, s, mode) put((f), (s), sizeof(s) - 1, (mode))

static void
expect_line_error(const char *path, size_t size, const char *want)
{
	char buf[64], err[256] = "";

	assert_true(size <= sizeof(buf));
	assert_int_equal(secret_read_line(path, buf, size, err, sizeof(err)),
	    -1);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' does not mention '%s'", err, want);
	assert_non_null(strstr(err, path));
}

static void
test_line(void **state)
{
	struct fixture *f = *state;
	char buf[16], err[256];

	PUT(f, "s3cret\nsecond line\n", 0600);
	assert_int_equal(
	    secret_read_line(f->path, buf, sizeof(buf), err, sizeof(err)), 6);
	assert_string_equal(buf, "s3cret");
	/* CRLF and no final newline; group-readable is fine for a password. */
	PUT(f, "dos\r\n", 0644);
	assert_int_equal(
	    secret_read_line(f->path, buf, sizeof(buf), err, sizeof(err)), 3);
	assert_string_equal(buf, "dos");
	PUT(f, "123456789012345\r\n", 0600);
	assert_int_equal(
	    secret_read_line(f->path, buf, sizeof(buf), err, sizeof(err)), 15);
	PUT(f, "no-newline", 0600);
	assert_int_equal(
	    secret_read_line(f->path, buf, sizeof(buf), err, sizeof(err)), 10);
	assert_string_equal(buf, "no-newline");
	/* Exactly as long as fits: 15 bytes in a 16-byte buffer. */
	PUT(f, "123456789012345\n", 0600);
	assert_int_equal(
	    secret_read_line(f->path, buf, sizeof(buf), err, sizeof(err)), 15);
	assert_string_equal(buf, "123456789012345");
}

static void
test_line_refusals(void **state)
{
	struct fixture *f = *state;

	expect_line_error(PUT(f, "1234567890123456\n", 0600), 16,
	    "longer than 15 bytes");
	expect_line_error(PUT(f, "1234567890123456", 0600), 16,
	    "longer than 15 bytes");
	expect_line_error(PUT(f, "123456789012345\r\r\n", 0600), 16,
	    "longer than 15 bytes");
	expect_line_error(PUT(f, "\nsecond\n", 0600), 16, "empty");
	expect_line_error(PUT(f, "", 0600), 16, "empty");
	expect_line_error(put(f, "ab\0cd\n", 6, 0600), 16, "NUL");
	unlink(f->path);
	expect_line_error(f->path, 16, "cannot open");
	expect_line_error(f->dir, 16, "not a regular file");
}

static void
test_key(void **state)
{
	struct fixture *f = *state;
	unsigned char key[64];
	char err[256] = "";

	/* Any bytes; only one trailing newline is dropped. */
	put(f, "0123456789abcdef0123456789abcdef\0\n\n\n", 36, 0600);
	assert_int_equal(
	    secret_read_key(f->path, 32, key, sizeof(key), err, sizeof(err)),
	    35);
	assert_memory_equal(key, "0123456789abcdef0123456789abcdef\0\n\n", 35);
	/* Its group may read it. */
	PUT(f, "0123456789abcdef0123456789abcdef", 0440);
	assert_int_equal(
	    secret_read_key(f->path, 32, key, sizeof(key), err, sizeof(err)),
	    32);
	/* As long as the buffer, with its newline. */
	put(f,
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "\n",
	    65, 0600);
	assert_int_equal(
	    secret_read_key(f->path, 32, key, sizeof(key), err, sizeof(err)),
	    64);
}

static void
expect_key_error(const char *path, const char *want)
{
	unsigned char key[64];
	char err[256] = "";

	assert_int_equal(
	    secret_read_key(path, 32, key, sizeof(key), err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' does not mention '%s'", err, want);
}

static void
test_key_refusals(void **state)
{
	struct fixture *f = *state;
	const char key32[] = "0123456789abcdef0123456789abcdef\n";

	expect_key_error(put(f, key32, sizeof(key32) - 1, 0620), "chmod 640");
	expect_key_error(put(f, key32, sizeof(key32) - 1, 0604), "chmod 640");
	expect_key_error(put(f, key32, sizeof(key32) - 1, 0602), "chmod 640");
	expect_key_error(put(f, key32, sizeof(key32) - 1, 0601), "chmod 640");
	expect_key_error(PUT(f, "0123456789abcdef0123456789abcde\n", 0600),
	    "shorter than 32 bytes");
	expect_key_error(PUT(f, "\n", 0600), "shorter than 32 bytes");
	expect_key_error(
	    PUT(f,
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		"x",
		0600),
	    "longer than 64 bytes");
	expect_key_error(f->dir, "not a regular file");
	unlink(f->path);
	expect_key_error(f->path, "cannot open");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_line_refusals, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_key_refusals, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
