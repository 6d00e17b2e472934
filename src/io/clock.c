#include "io/clock.h"

#include <ctype.h>
#include <time.h>

#define YEAR_MS (CLOCK_SECONDS_MAX * 1000LL)

static int64_t
read_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_wall_ms(void)
{
	return read_clock(CLOCK_REALTIME);
}

int64_t
clock_mono_ms(void)
{
	return read_clock(CLOCK_MONOTONIC);
}

struct timespec
clock_mono_in(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int
clock_parse_seconds(const char *s, int64_t *ms)
{
	int64_t whole = 0, frac = 0, scale = 100;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	/* Digits are bounded by the range check before they can overflow. */
	while (isdigit((unsigned char)*p)) {
		whole = whole * 10 + (*p++ - '0');
		if (whole * 1000 > YEAR_MS)
			return -1;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p)) {
			if (scale == 0)
				return -1;
			frac += (*p++ - '0') * scale;
			scale /= 10;
		}
	}
	if (*p != '\0' || whole * 1000 + frac > YEAR_MS)
		return -1;
	*ms = whole * 1000 + frac;
	return 0;
}
