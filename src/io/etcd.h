/*
 * etcd: a small client for etcd's v3 API, spoken through etcd's JSON gateway
 * (HTTP POST /v3/...) with libcurl.
 *
 * Keys are C strings; values are bytes.  On the wire keys and values are
 * base64 and 64-bit integers are JSON strings, as the gateway wants them.
 *
 * Endpoints: a comma-separated list of http:// or https:// URLs of members
 * of one cluster.  A call goes to the endpoint that answered last; when it
 * cannot be reached, times out, or answers that it has no leader, the same
 * request goes to the next endpoint, each endpoint at most once per call.
 * Each attempt gets an equal share of what is left of the call's deadline,
 * so a frozen member cannot use up the time the others need.
 *
 * Deadlines: every call returns within the timeout given in the options
 * (etcd_set_timeout() changes it) plus a few milliseconds; nothing here
 * waits for longer, nothing retries after the deadline.
 *
 * Outcomes: ETCD_OK; ETCD_E_REFUSED and ETCD_E_AUTH mean etcd answered and
 * did not apply the request.  After ETCD_E_UNAVAILABLE or ETCD_E_INTERNAL a
 * write may or may not have been applied (a member may have committed it
 * and then failed to answer in time), and a request that failed over was
 * sent to more than one member: write only what may be applied twice (the
 * same absolute state), or guard it with a transaction's compares.
 *
 * Authentication: with a user, the client asks /v3/auth/authenticate for a
 * token before its first request and sends it with every request; when etcd
 * says the token is no longer valid, it asks once more and repeats the
 * request.  TLS: https:// endpoints are verified against cafile (or the
 * system's CA store), and certfile/keyfile are sent when etcd checks client
 * certificates.  Proxy settings in the environment are ignored.
 *
 * etcd's limits: a transaction may hold at most --max-txn-ops (default 128)
 * compares, and as many operations in each branch; a request may be at most
 * --max-request-bytes (default 1.5 MiB) as etcd encodes it.  The options
 * carry the cluster's values; etcd_txn_ops() and etcd_txn_size() let a
 * caller split its work before etcd refuses it.
 *
 * A struct etcd is used by one thread at a time; threads that talk to etcd
 * at the same time each make their own.
 */
#ifndef MQLOCK_IO_ETCD_H
#define MQLOCK_IO_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_DEFAULT_TIMEOUT_MS 2000
#define ETCD_DEFAULT_MAX_TXN_OPS 128
#define ETCD_DEFAULT_MAX_REQUEST_BYTES (1536 * 1024)
/* The same as a literal, for help texts and flag defaults. */
#define ETCD_DEFAULT_MAX_REQUEST_BYTES_N 1572864
#define ETCD_MAX_ENDPOINTS 16

struct etcd;
struct etcd_txn;

struct etcd_opts {
	const char *endpoints;    /* "http://h:p[,https://h:p...]", required */
	const char *cafile;       /* PEM CAs for https://; NULL: the system's */
	const char *certfile;     /* PEM client certificate; NULL: none */
	const char *keyfile;      /* its PEM private key; NULL: in certfile */
	const char *user;         /* etcd user; NULL: no authentication */
	const char *password;     /* with user */
	int timeout_ms;           /* deadline of each call; 0: 2000 */
	size_t max_txn_ops;       /* the cluster's --max-txn-ops; 0: 128 */
	size_t max_request_bytes; /* its --max-request-bytes; 0: 1.5 MiB */
};

enum etcd_err {
	ETCD_OK = 0,
	ETCD_E_UNAVAILABLE, /* no member answered in time, or none had quorum */
	ETCD_E_REFUSED,     /* etcd refused the request; nothing applied */
	ETCD_E_AUTH,        /* user or password refused; nothing applied */
	ETCD_E_INTERNAL     /* out of memory, or a reply etcd would not send */
};

/* One key as etcd returns it.  key and value are NUL-terminated. */
struct etcd_kv {
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease; /* 0: none */
};

/* The answer to a range; etcd_range_clear() frees it. */
struct etcd_range {
	struct etcd_kv *kvs;
	size_t n;
	int64_t count;    /* keys in the range, also those past a limit */
	bool more;        /* a limit left keys out */
	int64_t revision; /* the store's revision the answer is from */
};

struct etcd_range_opts {
	/* Non-NULL: every key from key on that starts with prefix (key equal
	 * to prefix: all of them); NULL: key alone. */
	const char *prefix;
	bool after;       /* start just past key (paging: the last key seen) */
	int64_t limit;    /* at most this many keys; 0: all */
	int64_t revision; /* read as of this revision; 0: the latest */
	bool count_only;  /* only count */
};

/*
 * etcd_new(opts, err, errsz): a client for the cluster in opts.  Checks the
 * options (endpoint URLs, files named for TLS) without contacting etcd.
 * Strings are copied.  Returns NULL with a readable reason in err.
 */
struct etcd *etcd_new(const struct etcd_opts *opts, char *err, size_t errsz);

/* etcd_free(e): close connections and free.  NULL is a no-op. */
void etcd_free(struct etcd *e);

/* etcd_set_timeout(e, ms): the deadline of the calls that follow (ms > 0). */
void etcd_set_timeout(struct etcd *e, int ms);

/* etcd_limits(e, &ops, &bytes): the limits from the options (or defaults). */
void etcd_limits(const struct etcd *e, size_t *ops, size_t *bytes);

/*
 * etcd_last_error(e): a readable account of the last call that failed
 * ("" before any), naming the endpoints tried.  Valid until the next call.
 */
const char *etcd_last_error(const struct etcd *e);

/* etcd_endpoint(e): the endpoint the next call tries first. */
const char *etcd_endpoint(const struct etcd *e);

/*
 * etcd_range(e, key, o, out): read key (o NULL), or the range o describes.
 * out is filled on ETCD_OK and owned by the caller (etcd_range_clear());
 * on an error it is left empty.
 */
enum etcd_err etcd_range(struct etcd *e, const char *key,
    const struct etcd_range_opts *o, struct etcd_range *out)
    __attribute__((warn_unused_result));

/* etcd_range_clear(r): free what r holds and empty it.  NULL is a no-op. */
void etcd_range_clear(struct etcd_range *r);

/*
 * etcd_put(e, key, value, len, lease, revision): set key to len bytes of
 * value, attached to lease (0: none).  *revision (unless NULL) gets the
 * store's revision after the put.
 */
enum etcd_err etcd_put(struct etcd *e, const char *key, const void *value,
    size_t len, int64_t lease, int64_t *revision)
    __attribute__((warn_unused_result));

/*
 * etcd_delete(e, key, prefix, deleted): delete key, or with prefix every key
 * that starts with it.  *deleted (unless NULL) gets how many went.
 */
enum etcd_err etcd_delete(struct etcd *e, const char *key, bool prefix,
    int64_t *deleted) __attribute__((warn_unused_result));

/*
 * etcd_lease_grant(e, ttl, id, granted): a new lease of ttl seconds (>= 1).
 * *id gets its id, *granted the TTL etcd gave it (etcd raises TTLs below
 * its minimum).
 */
enum etcd_err etcd_lease_grant(struct etcd *e, int64_t ttl, int64_t *id,
    int64_t *granted) __attribute__((warn_unused_result));

/*
 * etcd_lease_keepalive(e, id, ttl): renew the lease once.  *ttl gets its
 * TTL from now in seconds, or 0 when the lease no longer exists (expired or
 * revoked): then nothing was renewed.  The lease runs again from when etcd
 * received the request, which is after the caller sent it.
 */
enum etcd_err etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl)
    __attribute__((warn_unused_result));

/*
 * etcd_lease_revoke(e, id): end the lease now and delete the keys attached
 * to it.  A lease that no longer exists is ETCD_OK.
 */
enum etcd_err etcd_lease_revoke(struct etcd *e, int64_t id)
    __attribute__((warn_unused_result));

/*
 * etcd_lease_ttl(e, id, ttl, granted): the lease's remaining TTL in
 * seconds (-1: it does not exist) and the TTL it was granted with.
 */
enum etcd_err etcd_lease_ttl(struct etcd *e, int64_t id, int64_t *ttl,
    int64_t *granted) __attribute__((warn_unused_result));

/* Transactions -------------------------------------------------------- */

enum etcd_target {
	ETCD_VERSION, /* the key's version; 0 when absent */
	ETCD_CREATE,  /* its create_revision; 0 when absent */
	ETCD_MOD,     /* its mod_revision */
	ETCD_VALUE,   /* its value */
	ETCD_LEASE    /* the lease it is attached to; 0: none */
};

enum etcd_cmp { ETCD_EQUAL, ETCD_GREATER, ETCD_LESS, ETCD_NOT_EQUAL };

/*
 * A transaction: if every compare holds, the success operations run,
 * otherwise the failure operations; atomically, at one new revision.
 * Builders return 0, or -1 when memory ran out; a transaction that failed
 * to build is refused by etcd_txn_commit() with ETCD_E_INTERNAL.
 */

/* etcd_txn_new(): an empty transaction, or NULL (out of memory). */
struct etcd_txn *etcd_txn_new(void);

/* etcd_txn_free(t): free.  NULL is a no-op. */
void etcd_txn_free(struct etcd_txn *t);

/* etcd_txn_compare(t, key, target, cmp, n): key's target (not ETCD_VALUE)
 * compared with n, e.g. ETCD_CREATE ETCD_EQUAL 0: "key is absent". */
int etcd_txn_compare(struct etcd_txn *t, const char *key,
    enum etcd_target target, enum etcd_cmp cmp, int64_t n);

/* etcd_txn_compare_value(t, key, cmp, value, len): key's value vs bytes. */
int etcd_txn_compare_value(struct etcd_txn *t, const char *key,
    enum etcd_cmp cmp, const void *value, size_t len);

/* etcd_txn_put(t, on_success, key, value, len, lease): a put in the
 * success (on_success) or the failure branch. */
int etcd_txn_put(struct etcd_txn *t, bool on_success, const char *key,
    const void *value, size_t len, int64_t lease);

/* etcd_txn_delete(t, on_success, key, prefix): delete key, or every key
 * starting with it. */
int etcd_txn_delete(struct etcd_txn *t, bool on_success, const char *key,
    bool prefix);

/* etcd_txn_range(t, on_success, key, prefix): read key (or the prefix);
 * its answer is in the result. */
int etcd_txn_range(struct etcd_txn *t, bool on_success, const char *key,
    bool prefix);

/*
 * etcd_txn_ops(t): the largest of its compare, success and failure counts:
 * what etcd checks against --max-txn-ops.
 */
size_t etcd_txn_ops(const struct etcd_txn *t);

/*
 * etcd_txn_size(t): an upper bound of the request's size as etcd checks it
 * against --max-request-bytes (keys and values as bytes, not base64, plus
 * each field's framing).
 */
size_t etcd_txn_size(const struct etcd_txn *t);

/*
 * etcd_txn_op_size(key_len, value_len): what one put or compare of these
 * sizes adds to etcd_txn_size(), for callers that plan a split before
 * building anything.  ETCD_TXN_BASE_SIZE: an empty transaction's size.
 */
size_t etcd_txn_op_size(size_t key_len, size_t value_len);
#define ETCD_TXN_BASE_SIZE 512

struct etcd_txn_result {
	bool succeeded;   /* the compares held: the success branch ran */
	int64_t revision; /* the store's revision after the transaction */
	size_t n;         /* operations in the branch that ran */
	/* One per operation, in order; only range operations fill theirs. */
	struct etcd_range *ranges;
};

/*
 * etcd_txn_commit(e, t, res): send the transaction.  On ETCD_OK res is
 * filled and owned by the caller (etcd_txn_result_clear()).  t stays the
 * caller's and may be sent again.  A transaction past the limits is
 * ETCD_E_REFUSED by etcd.
 */
enum etcd_err etcd_txn_commit(struct etcd *e, const struct etcd_txn *t,
    struct etcd_txn_result *res) __attribute__((warn_unused_result));

/* etcd_txn_result_clear(res): free and empty.  NULL is a no-op. */
void etcd_txn_result_clear(struct etcd_txn_result *res);

#endif
