#include "io/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "io/clock.h"

#define LIMIT_BURST 20.0
#define LIMIT_PER_SEC 5.0
/* Longer messages are cut there, and say so. */
#define MSG_MAX 2048

static enum log_level level = LOG_LEVEL_INFO;
static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
/* log_hold(): info and debug lines wait for log_flush(); guarded. */
static int held;
static size_t pending;

/* Token bucket for log_limited(); guarded by log_mutex. */
static double bucket = LIMIT_BURST;
static int64_t bucket_at;
static unsigned long suppressed;

static const char *const names[] = {"error", "warn", "info", "debug"};

void
log_set_level(enum log_level l)
{
	level = l;
}

int
log_parse_level(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_enabled(enum log_level l)
{
	return l <= level;
}

/*
 * The length of the UTF-8 sequence at s (n bytes left) and its code point
 * in *cp, or 0 when it is not well-formed (overlong, surrogate, above
 * U+10FFFF, cut short).
 */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	size_t len = s[0] < 0x80    ? 1
	    : (s[0] & 0xe0) == 0xc0 ? 2
	    : (s[0] & 0xf0) == 0xe0 ? 3
	    : (s[0] & 0xf8) == 0xf0 ? 4
				    : 0;
	uint32_t c;

	if (len == 0 || len > n)
		return 0;
	c = len == 1 ? s[0] : s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

size_t
log_escape(const char *msg, size_t len, char *out, size_t size)
{
	const unsigned char *s = (const unsigned char *)msg;
	size_t i = 0, o = 0, k;
	uint32_t cp = 0;
	char piece[8];

	if (size == 0)
		return 0;
	while (i < len) {
		const char *p = piece;
		size_t n;

		k = utf8_next(s + i, len - i, &cp);
		if (k == 0) {
			n = (size_t)snprintf(piece, sizeof(piece), "\\x%02x",
			    s[i]);
			k = 1;
		} else if (cp < 0x20 || cp == 0x7f)
			n = (size_t)snprintf(piece, sizeof(piece), "\\x%02x",
			    (unsigned)cp);
		else if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 ||
		    cp == 0x2029)
			n = (size_t)snprintf(piece, sizeof(piece), "\\u%04x",
			    (unsigned)cp);
		else if (cp == '\\')
			n = (size_t)snprintf(piece, sizeof(piece), "\\\\");
		else {
			p = msg + i;
			n = k;
		}
		/* Whole pieces only: never half an escape or a character. */
		if (o + n >= size)
			break;
		memcpy(out + o, p, n);
		o += n;
		i += k;
	}
	out[o] = '\0';
	return o;
}

/* Caller holds log_mutex. */
static void
write_line(enum log_level l, const char *fmt, va_list ap)
{
	int64_t now = clock_wall_ms();
	time_t secs = (time_t)(now / 1000);
	char msg[MSG_MAX + 1], out[4 * MSG_MAX + 1];
	struct tm tm;
	char stamp[32];
	int n;

	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		n = snprintf(msg, sizeof(msg), "(unprintable log line)");
	fprintf(stderr, "%s.%03dZ %s ", stamp, (int)(now % 1000), names[l]);
	fwrite(out, 1,
	    log_escape(msg, (size_t)n < sizeof(msg) ? (size_t)n : MSG_MAX, out,
		sizeof(out)),
	    stderr);
	if ((size_t)n > MSG_MAX)
		fputs(" (truncated)", stderr);
	fputc('\n', stderr);
	if (held && l > LOG_LEVEL_WARN) {
		pending++;
		return;
	}
	fflush(stderr);
	pending = 0;
}

/* write_line() with its own arguments.  Caller holds log_mutex. */
static void write_linef(enum log_level l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
write_linef(enum log_level l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	write_line(l, fmt, ap);
	va_end(ap);
}

void
log_hold(void)
{
	static char buf[1 << 16];

	pthread_mutex_lock(&log_mutex);
	fflush(stderr);
	if (setvbuf(stderr, buf, _IOFBF, sizeof(buf)) == 0)
		held = 1;
	pthread_mutex_unlock(&log_mutex);
}

void
log_flush(void)
{
	pthread_mutex_lock(&log_mutex);
	if (pending > 0) {
		fflush(stderr);
		pending = 0;
	}
	pthread_mutex_unlock(&log_mutex);
}

void
log_msg(enum log_level l, const char *fmt, ...)
{
	va_list ap;

	if (!log_enabled(l))
		return;
	pthread_mutex_lock(&log_mutex);
	va_start(ap, fmt);
	write_line(l, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&log_mutex);
}

void
log_limited(enum log_level l, const char *fmt, ...)
{
	va_list ap;
	int64_t now;

	if (!log_enabled(l))
		return;
	pthread_mutex_lock(&log_mutex);
	now = clock_mono_ms();
	bucket += (double)(now - bucket_at) / 1000.0 * LIMIT_PER_SEC;
	if (bucket > LIMIT_BURST)
		bucket = LIMIT_BURST;
	bucket_at = now;
	if (bucket < 1.0) {
		suppressed++;
		pthread_mutex_unlock(&log_mutex);
		return;
	}
	bucket -= 1.0;
	if (suppressed > 0) {
		write_linef(l, "%lu similar lines suppressed", suppressed);
		suppressed = 0;
	}
	va_start(ap, fmt);
	write_line(l, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&log_mutex);
}
