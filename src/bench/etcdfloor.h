/*
 * etcdfloor: what etcd itself costs, the floor under mqlockd's journal in
 * etcd: single requests one at a time through mqlock's own etcd client
 * (io/etcd.h), each timed on the monotonic clock.
 */
#ifndef MQLOCK_BENCH_ETCDFLOOR_H
#define MQLOCK_BENCH_ETCDFLOOR_H

#include "bench/stats.h"

/*
 * etcdfloor_run(endpoints, ops, warmup, put, txn): warmup unmeasured,
 * then ops measured requests of each kind, into put (a put of a 64-byte
 * value) and txn (what a batch of one lock and one client costs: the
 * fence, a compare on a leader key of a lease of its own, and two puts).
 * Works under its own key prefix, removed afterwards.  Returns 0, or -1
 * (logged) when etcd refused or did not answer.
 */
int etcdfloor_run(const char *endpoints, long ops, long warmup,
    struct stats *put, struct stats *txn);

#endif
