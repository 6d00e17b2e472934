#include "io/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "io/clock.h"

#define LIMIT_BURST 20.0
#define LIMIT_PER_SEC 5.0

static enum log_level level = LOG_INFO;
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

/* Caller holds log_mutex. */
static void
write_line(enum log_level l, const char *fmt, va_list ap)
{
	int64_t now = clock_wall_ms();
	time_t secs = (time_t)(now / 1000);
	struct tm tm;
	char stamp[32];

	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03dZ %s ", stamp, (int)(now % 1000), names[l]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (held && l > LOG_WARN) {
		pending++;
		return;
	}
	fflush(stderr);
	pending = 0;
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
		fprintf(stderr, "(%lu similar lines suppressed) ", suppressed);
		suppressed = 0;
	}
	va_start(ap, fmt);
	write_line(l, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&log_mutex);
}
