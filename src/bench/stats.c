#include "bench/stats.h"

#include <stdlib.h>
#include <string.h>

struct stats {
	pthread_mutex_t mu;
	uint64_t *v;
	size_t n, cap;
	size_t lost;
};

uint64_t
stats_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
stats_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rc = -1;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
	    pthread_cond_init(cv, &ca) == 0)
		rc = 0;
	pthread_condattr_destroy(&ca);
	return rc;
}

struct stats *
stats_new(void)
{
	struct stats *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

void
stats_free(struct stats *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s->v);
	free(s);
}

/* Caller holds mu. */
static int
reserve(struct stats *s, size_t want)
{
	size_t cap;
	uint64_t *v;

	if (want <= s->cap)
		return 0;
	cap = s->cap > 0 ? s->cap : 4096;
	while (cap < want)
		cap *= 2;
	if ((v = realloc(s->v, cap * sizeof(*v))) == NULL)
		return -1;
	s->v = v;
	s->cap = cap;
	return 0;
}

int
stats_add(struct stats *s, uint64_t ns)
{
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	if (reserve(s, s->n + 1) != 0) {
		s->lost++;
		rc = -1;
	} else
		s->v[s->n++] = ns;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
stats_merge(struct stats *dst, const struct stats *src)
{
	int rc = 0;

	pthread_mutex_lock(&dst->mu);
	if (reserve(dst, dst->n + src->n) != 0)
		rc = -1;
	else {
		if (src->n > 0)
			memcpy(dst->v + dst->n, src->v,
			    src->n * sizeof(*src->v));
		dst->n += src->n;
		dst->lost += src->lost;
	}
	pthread_mutex_unlock(&dst->mu);
	return rc;
}

size_t
stats_count(const struct stats *s)
{
	return s->n;
}

size_t
stats_lost(const struct stats *s)
{
	return s->lost;
}

void
stats_clear(struct stats *s)
{
	pthread_mutex_lock(&s->mu);
	s->n = 0;
	s->lost = 0;
	pthread_mutex_unlock(&s->mu);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least p of them at or below. */
static double
rank_us(const struct stats *s, double p)
{
	size_t k = (size_t)(p * (double)s->n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return (double)s->v[k - 1] / 1000.0;
}

struct stats_sum
stats_summary(struct stats *s)
{
	struct stats_sum r;
	double total = 0;

	memset(&r, 0, sizeof(r));
	pthread_mutex_lock(&s->mu);
	if (s->n > 0) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
		for (size_t i = 0; i < s->n; i++)
			total += (double)s->v[i];
		r.n = s->n;
		r.p50 = rank_us(s, 0.50);
		r.p90 = rank_us(s, 0.90);
		r.p99 = rank_us(s, 0.99);
		r.max = (double)s->v[s->n - 1] / 1000.0;
		r.mean = total / (double)s->n / 1000.0;
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}
