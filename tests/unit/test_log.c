/*
 * log: levels filter; log_limited caps a flood and reports what it dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/log.h"

/* Run fn with stderr sent to a file; return the file's text (free it). */
static char *
capture(void (*fn)(void))
{
	char path[] = "/tmp/mqlock-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	FILE *f;
	char *buf = calloc(1, 1 << 20);
	size_t n;

	assert_true(fd >= 0 && saved >= 0 && buf != NULL);
	fflush(stderr);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	f = fdopen(fd, "r");
	rewind(f);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
	return buf;
}

static size_t
count(const char *s, const char *needle)
{
	size_t n = 0;

	while ((s = strstr(s, needle)) != NULL) {
		n++;
		s += strlen(needle);
	}
	return n;
}

static void
levels(void)
{
	log_set_level(LOG_WARN);
	log_error("e-line");
	log_warn("w-line");
	log_info("i-line");
	log_debug("d-line");
	log_set_level(LOG_INFO);
}

static void
test_levels(void **state)
{
	char *out = capture(levels);

	assert_non_null(strstr(out, " error e-line\n"));
	assert_non_null(strstr(out, " warn w-line\n"));
	assert_null(strstr(out, "i-line"));
	assert_null(strstr(out, "d-line"));
	/* ISO 8601 UTC with milliseconds. */
	assert_int_equal(out[4], '-');
	assert_int_equal(out[10], 'T');
	assert_int_equal(out[23], 'Z');
	free(out);
}

static void
flood(void)
{
	for (int i = 0; i < 10000; i++)
		log_limited(LOG_WARN, "flood-line %d", i);
}

static void
test_limited_caps_a_flood(void **state)
{
	char *out = capture(flood);
	size_t n = count(out, "flood-line");

	/* A burst of 20, plus whatever the bucket refilled meanwhile. */
	assert_true(n >= 20);
	assert_true(n < 200);
	free(out);
	/* After a pause the next line reports what was suppressed. */
	usleep(400 * 1000);
	out = capture(flood);
	assert_non_null(strstr(out, "similar lines suppressed"));
	free(out);
}

static void
test_parse_level(void **state)
{
	enum log_level l;

	assert_int_equal(log_parse_level("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_parse_level("error", &l), 0);
	assert_int_equal(l, LOG_ERROR);
	assert_int_equal(log_parse_level("DEBUG", &l), -1);
	assert_int_equal(log_parse_level("", &l), -1);
}

/* The file's text so far, read through its own descriptor. */
static char *
file_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 16);
	size_t n;

	assert_true(f != NULL && buf != NULL);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/*
 * Held info lines reach the file only with log_flush() or a warning, which
 * writes them first, in order.  Run last: the hold stays for the process.
 */
static void
test_hold_and_flush(void **state)
{
	char path[] = "/tmp/mqlock-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	char *t;

	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	log_hold();
	log_info("held-1");
	log_debug("not-shown");
	t = file_text(path);
	assert_null(strstr(t, "held-1"));
	free(t);

	log_warn("warn-1");
	t = file_text(path);
	assert_non_null(strstr(t, "held-1"));
	assert_true(strstr(t, "held-1") < strstr(t, "warn-1"));
	free(t);

	log_info("held-2");
	t = file_text(path);
	assert_null(strstr(t, "held-2"));
	free(t);
	log_flush();
	t = file_text(path);
	assert_non_null(strstr(t, " info held-2\n"));
	assert_null(strstr(t, "not-shown"));
	free(t);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_levels),
	    cmocka_unit_test(test_limited_caps_a_flood),
	    cmocka_unit_test(test_parse_level),
	    cmocka_unit_test(test_hold_and_flush),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
