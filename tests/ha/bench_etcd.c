/*
 * bench_etcd: etcd's own latency through mqlock's etcd client, the floor
 * under the journal in etcd.  One request at a time, each timed on the
 * monotonic clock; percentiles by nearest rank.
 *
 *   bench_etcd [--ops N] [--members 1|3] [--endpoints URL[,URL...]]
 *
 * Without --endpoints it starts its own etcd members (etcdtest.h) on
 * loopback ports with data under /tmp, and removes them afterwards.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcdtest.h"
#include "io/etcd.h"

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of them at or below. */
static double
pct(const long long *v, long n, double p)
{
	long k = (long)(p * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	return (double)v[k - 1] / 1000.0;
}

static void
report(const char *what, long long *v, long n)
{
	double sum = 0;

	qsort(v, (size_t)n, sizeof(*v), cmp_ll);
	for (long i = 0; i < n; i++)
		sum += (double)v[i];
	printf("%-34s n=%-6ld p50 %8.1f us  p90 %8.1f us  p99 %8.1f us  "
	       "max %8.1f us  mean %8.1f us\n",
	    what, n, pct(v, n, 0.50), pct(v, n, 0.90), pct(v, n, 0.99),
	    (double)v[n - 1] / 1000.0, sum / (double)n / 1000.0);
}

enum kind { PUT, TXN, GET, KEEPALIVE };

static int
one(struct etcd *e, enum kind k, long i, int64_t lease, int64_t term)
{
	char key[64], value[64];
	struct etcd_range r;
	struct etcd_txn *t;
	struct etcd_txn_result res;
	int64_t ttl;
	enum etcd_err rc;

	snprintf(key, sizeof(key), "bench/k%ld", i % 100);
	memset(value, 'v', sizeof(value));
	switch (k) {
	case PUT:
		return etcd_put(e, key, value, sizeof(value), 0, NULL);
	case GET:
		rc = etcd_range(e, key, NULL, &r);
		etcd_range_clear(&r);
		return rc;
	case KEEPALIVE:
		return etcd_lease_keepalive(e, lease, &ttl);
	case TXN:
		/* What a journal batch of one lock and one client costs:
		 * the fence, two records. */
		if ((t = etcd_txn_new()) == NULL)
			return -1;
		etcd_txn_compare(t, "bench/leader", ETCD_CREATE, ETCD_EQUAL,
		    term);
		etcd_txn_range(t, false, "bench/leader", false);
		etcd_txn_put(t, true, key, value, sizeof(value), 0);
		snprintf(key, sizeof(key), "bench/c%ld", i % 100);
		etcd_txn_put(t, true, key, value, sizeof(value), 0);
		rc = etcd_txn_commit(e, t, &res);
		if (rc == ETCD_OK && !res.succeeded)
			rc = ETCD_E_REFUSED;
		etcd_txn_result_clear(&res);
		etcd_txn_free(t);
		return rc;
	}
	return -1;
}

int
main(int argc, char **argv)
{
	static const char *const names[] = {
	    [PUT] = "put (64-byte value)",
	    [TXN] = "txn: fence + 2 puts (a batch)",
	    [GET] = "range (linearizable get)",
	    [KEEPALIVE] = "lease keepalive",
	};
	long ops = 2000, warm = 200;
	int members = 1;
	const char *endpoints = NULL;
	struct etcdtest *cluster = NULL;
	struct etcd *e;
	struct etcd_opts o = {.timeout_ms = 5000};
	char err[256];
	long long *v;
	int64_t lease, ttl, term;
	struct etcd_txn *t;
	struct etcd_txn_result res;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc)
			ops = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--members") == 0 && i + 1 < argc)
			members = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--endpoints") == 0 && i + 1 < argc)
			endpoints = argv[++i];
		else {
			fprintf(stderr,
			    "usage: %s [--ops N] [--members 1|3] "
			    "[--endpoints URL[,URL...]]\n",
			    argv[0]);
			return 64;
		}
	}
	if (ops < 1 || ops > 10000000 || members < 1 ||
	    members > ETCDTEST_MAX) {
		fprintf(stderr, "bench_etcd: bad --ops or --members\n");
		return 64;
	}
	if (endpoints == NULL) {
		struct etcdtest_opts to = {.members = members};

		if ((cluster = etcdtest_start(&to)) == NULL)
			return 1;
		endpoints = etcdtest_endpoints(cluster);
	}
	o.endpoints = endpoints;
	if ((e = etcd_new(&o, err, sizeof(err))) == NULL ||
	    (v = calloc((size_t)ops, sizeof(*v))) == NULL) {
		fprintf(stderr, "bench_etcd: %s\n", e == NULL ? err : "memory");
		etcdtest_stop(cluster, false);
		return 1;
	}
	/* A lease and a leader key for the keepalive and the fence. */
	if (etcd_lease_grant(e, 60, &lease, &ttl) != ETCD_OK ||
	    (t = etcd_txn_new()) == NULL) {
		fprintf(stderr, "bench_etcd: %s\n", etcd_last_error(e));
		return 1;
	}
	etcd_txn_put(t, true, "bench/leader", "bench", 5, lease);
	if (etcd_txn_commit(e, t, &res) != ETCD_OK) {
		fprintf(stderr, "bench_etcd: %s\n", etcd_last_error(e));
		return 1;
	}
	term = res.revision;
	etcd_txn_result_clear(&res);
	etcd_txn_free(t);
	printf("etcd %s, %d member(s) at %s, %ld ops each after %ld warm-up\n",
	    cluster != NULL ? "started here" : "given", members, endpoints, ops,
	    warm);
	for (enum kind k = PUT; k <= KEEPALIVE; k++) {
		for (long i = -warm; i < ops; i++) {
			long long t0 = now_ns();

			if (one(e, k, i, lease, term) != 0) {
				fprintf(stderr, "bench_etcd: %s: %s\n",
				    names[k], etcd_last_error(e));
				return 1;
			}
			if (i >= 0)
				v[i] = now_ns() - t0;
		}
		report(names[k], v, ops);
	}
	if (etcd_lease_revoke(e, lease) != ETCD_OK ||
	    etcd_delete(e, "bench/", true, NULL) != ETCD_OK)
		fprintf(stderr, "bench_etcd: cleanup: %s\n",
		    etcd_last_error(e));
	free(v);
	etcd_free(e);
	etcdtest_stop(cluster, false);
	return 0;
}
