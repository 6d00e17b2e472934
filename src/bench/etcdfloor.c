#include "bench/etcdfloor.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "io/etcd.h"
#include "io/log.h"

#define VALUE_BYTES 64
#define KEYS 100

/* One request of the kind: 0, or -1. */
static int
one(struct etcd *e, const char *prefix, bool txn, long i, int64_t term)
{
	char key[96], key2[96], value[VALUE_BYTES], leader[96];
	struct etcd_txn *t;
	struct etcd_txn_result res;
	enum etcd_err rc;

	memset(value, 'v', sizeof(value));
	snprintf(key, sizeof(key), "%sk%ld", prefix, i % KEYS);
	if (!txn)
		return etcd_put(e, key, value, sizeof(value), 0, NULL) ==
			ETCD_OK
		    ? 0
		    : -1;
	snprintf(key2, sizeof(key2), "%sc%ld", prefix, i % KEYS);
	snprintf(leader, sizeof(leader), "%sleader", prefix);
	if ((t = etcd_txn_new()) == NULL ||
	    etcd_txn_compare(t, leader, ETCD_CREATE, ETCD_EQUAL, term) != 0 ||
	    etcd_txn_range(t, false, leader, false) != 0 ||
	    etcd_txn_put(t, true, key, value, sizeof(value), 0) != 0 ||
	    etcd_txn_put(t, true, key2, value, sizeof(value), 0) != 0) {
		etcd_txn_free(t);
		return -1;
	}
	rc = etcd_txn_commit(e, t, &res);
	if (rc == ETCD_OK && !res.succeeded)
		rc = ETCD_E_REFUSED;
	etcd_txn_result_clear(&res);
	etcd_txn_free(t);
	return rc == ETCD_OK ? 0 : -1;
}

int
etcdfloor_run(const char *endpoints, long ops, long warmup, struct stats *put,
    struct stats *txn)
{
	struct etcd_opts o = {.endpoints = endpoints, .timeout_ms = 5000};
	char err[256], prefix[64], leader[96];
	struct etcd_txn *t = NULL;
	struct etcd_txn_result res;
	struct etcd *e;
	int64_t lease = 0, ttl, term = 0;
	int rc = -1;

	snprintf(prefix, sizeof(prefix), "mqlock-bench-floor-%ld/",
	    (long)getpid());
	snprintf(leader, sizeof(leader), "%sleader", prefix);
	if ((e = etcd_new(&o, err, sizeof(err))) == NULL) {
		log_error("bench: etcd: %s", err);
		return -1;
	}
	/* A leader key on a lease, as the journal's fence compares. */
	if (etcd_lease_grant(e, 60, &lease, &ttl) != ETCD_OK ||
	    (t = etcd_txn_new()) == NULL ||
	    etcd_txn_put(t, true, leader, "bench", 5, lease) != 0 ||
	    etcd_txn_commit(e, t, &res) != ETCD_OK)
		goto out;
	term = res.revision;
	etcd_txn_result_clear(&res);
	for (int k = 0; k < 2; k++) {
		struct stats *s = k == 0 ? put : txn;

		for (long i = -warmup; i < ops; i++) {
			uint64_t t0 = stats_now_ns();

			if (one(e, prefix, k == 1, i, term) != 0)
				goto out;
			if (i >= 0 && stats_add(s, stats_now_ns() - t0) != 0)
				goto out;
		}
	}
	rc = 0;
out:
	if (rc != 0)
		log_error("bench: etcd: %s", etcd_last_error(e));
	etcd_txn_free(t);
	if ((lease != 0 && etcd_lease_revoke(e, lease) != ETCD_OK) ||
	    etcd_delete(e, prefix, true, NULL) != ETCD_OK)
		log_warn("bench: etcd: removing %s: %s", prefix,
		    etcd_last_error(e));
	etcd_free(e);
	return rc;
}
