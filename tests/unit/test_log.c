/*
 * log: levels filter; log_limited caps a flood and reports what it dropped;
 * every line keeps the promised form, whatever the message holds.
 *
 * <syslog.h> comes first on purpose: its LOG_INFO and LOG_DEBUG must not
 * clash with log.h's names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/log.h"
#include "tutil.h"

/* Run fn with stderr sent to a file; return the file's text (free it). */
static char *
capture(void (*fn)(void *))
{
	char *text = tutil_stderr_of(fn, NULL);

	assert_non_null(text);
	return text;
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
levels(void *arg)
{
	log_set_level(LOG_LEVEL_WARN);
	log_error("e-line");
	log_warn("w-line");
	log_info("i-line");
	log_debug("d-line");
	log_set_level(LOG_LEVEL_INFO);
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
flood(void *arg)
{
	for (int i = 0; i < 10000; i++)
		log_limited(LOG_LEVEL_WARN, "flood-line %d", i);
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

/*
 * Every line of text is "YYYY-MM-DDTHH:MM:SS.mmmZ level message" with a
 * message of printable characters; returns how many lines there are.
 */
static size_t
assert_line_format(const char *text)
{
	static const char *const levels[] = {"error ", "warn ", "info ",
	    "debug "};
	const char *line = text, *end;
	size_t n = 0;

	for (; *line != '\0'; line = end + 1, n++) {
		const char *msg;
		size_t i;

		end = strchr(line, '\n');
		assert_non_null(end);
		for (i = 0; i < 24; i++) {
			char c = line[i];

			if (i == 4 || i == 7)
				assert_int_equal(c, '-');
			else if (i == 10)
				assert_int_equal(c, 'T');
			else if (i == 13 || i == 16)
				assert_int_equal(c, ':');
			else if (i == 19)
				assert_int_equal(c, '.');
			else if (i == 23)
				assert_int_equal(c, 'Z');
			else if (c < '0' || c > '9')
				fail_msg("not a timestamp: %.40s", line);
		}
		assert_int_equal(line[24], ' ');
		msg = NULL;
		for (i = 0; i < 4; i++) {
			if (strncmp(line + 25, levels[i], strlen(levels[i])) ==
			    0)
				msg = line + 25 + strlen(levels[i]);
		}
		if (msg == NULL)
			fail_msg("no level: %.40s", line);
		for (; msg < end; msg++) {
			unsigned char c = (unsigned char)*msg;

			if (c < 0x20 || c == 0x7f)
				fail_msg("control character 0x%02x in a line",
				    c);
		}
	}
	return n;
}

static void
suppressed_then_one(void *arg)
{
	flood(NULL);
	usleep(400 * 1000);
	log_limited(LOG_LEVEL_WARN, "after the pause");
}

/* The suppressed count is a line of its own, in the usual form. */
static void
test_suppressed_line_format(void **state)
{
	char *out = capture(suppressed_then_one);
	const char *said = strstr(out, "similar lines suppressed\n");

	assert_line_format(out);
	assert_non_null(said);
	/* It comes right before the line that got through. */
	assert_non_null(strstr(said, "Z warn after the pause\n"));
	free(out);
}

static void
hostile(void *arg)
{
	/* A client id that tries to forge a line and clear the screen. */
	log_warn("refused %s: bad",
	    "evil\n2026-01-01T00:00:00.000Z error forged\r\x1b[2J\x07"
	    "\xc2\x85\xc2\x9b"
	    "31m\xe2\x80\xa8\xe2\x80\xa9\x7f\xff\xc0\xaf"
	    "\\x41 caf\xc3\xa9 \xe2\x9c\x93");
}

static void
test_no_injection(void **state)
{
	char *out = capture(hostile);

	assert_int_equal(assert_line_format(out), 1);
	assert_non_null(strstr(out,
	    " warn refused evil\\x0a2026-01-01T00:00:00.000Z error "
	    "forged\\x0d\\x1b[2J\\x07\\u0085\\u009b31m\\u2028\\u2029"
	    "\\x7f\\xff\\xc0\\xaf\\\\x41 caf\xc3\xa9 \xe2\x9c\x93: bad\n"));
	free(out);
}

static void
very_long(void *arg)
{
	static char big[5000];

	memset(big, 'x', sizeof(big) - 1);
	log_warn("%s", big);
}

static void
test_long_message_cut(void **state)
{
	char *out = capture(very_long);

	assert_int_equal(assert_line_format(out), 1);
	assert_non_null(strstr(out, " (truncated)\n"));
	assert_true(strlen(out) < 2048 + 100);
	free(out);
}

/* The same escaping for other text, cut only between whole pieces. */
static void
test_escape_for_others(void **state)
{
	char out[64];

	assert_int_equal(log_escape("Bob\x1b[2J\n", 8, out, sizeof(out)), 14);
	assert_string_equal(out, "Bob\\x1b[2J\\x0a");
	assert_int_equal(log_escape("ab\ncd", 5, out, 6), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(log_escape("caf\xc3\xa9", 5, out, 5), 3);
	assert_string_equal(out, "caf");
	assert_int_equal(log_escape("caf\xc3\xa9", 5, out, 6), 5);
	assert_int_equal(log_escape("x", 1, out, 0), 0);
}

/* Both sets of names in one program, each with its own values. */
static void
test_syslog_names_apart(void **state)
{
	assert_int_equal(LOG_INFO, 6);
	assert_int_equal(LOG_DEBUG, 7);
	assert_int_equal(LOG_LEVEL_ERROR, 0);
	assert_int_equal(LOG_LEVEL_DEBUG, 3);
}

static void
test_parse_level(void **state)
{
	enum log_level l;

	assert_int_equal(log_parse_level("debug", &l), 0);
	assert_int_equal(l, LOG_LEVEL_DEBUG);
	assert_int_equal(log_parse_level("error", &l), 0);
	assert_int_equal(l, LOG_LEVEL_ERROR);
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
	    cmocka_unit_test(test_suppressed_line_format),
	    cmocka_unit_test(test_no_injection),
	    cmocka_unit_test(test_long_message_cut),
	    cmocka_unit_test(test_escape_for_others),
	    cmocka_unit_test(test_syslog_names_apart),
	    cmocka_unit_test(test_parse_level),
	    cmocka_unit_test(test_hold_and_flush),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
