#include "io/store_etcd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "io/log.h"

#define SCHEMA "1"
#define PREFIX_MAX 128
#define KEY_MAX (PREFIX_MAX + 32 + MQL_LOCK_ID_MAX)

/* As in the sqlite journal (store.c): a restart goes on above the block. */
#define TOKEN_BLOCK 1000

/* Keys per page when loading. */
#define PAGE 256

/* What a chunk of a staged batch may hold, below etcd's request limit. */
#define CHUNK_SLACK 4096

struct store_etcd {
	struct etcd *etcd;
	char prefix[PREFIX_MAX + 1];
	char k_leader[PREFIX_MAX + 16], k_schema[PREFIX_MAX + 16];
	char k_epoch[PREFIX_MAX + 16], k_last[PREFIX_MAX + 16];
	char k_pending[PREFIX_MAX + 16], k_stage[PREFIX_MAX + 16];
	int64_t term;
	uint64_t token_reserved;
	bool pending_maybe; /* a staged batch may be committed, not applied */
	uint64_t batches;   /* staged batches begun in this term */
	uint64_t staged;
	size_t max_ops, max_bytes;
	char err[1024];
};

/* One record of a batch: value NULL deletes the key. */
struct entry {
	char *key;
	char *value;
	size_t len;
};

struct batch {
	struct entry *v;
	size_t n, cap;
};

/* Failures ---------------------------------------------------------------- */

static int fail(struct store_etcd *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record and log a failure once; returns rc. */
static int
fail(struct store_etcd *s, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	if (rc == STORE_ETCD_BROKEN)
		log_error("journal in etcd: %s", s->err);
	else
		log_warn("journal in etcd: %s", s->err);
	return rc;
}

/* An etcd failure as a store_etcd_rc. */
static int
fail_etcd(struct store_etcd *s, enum etcd_err e, const char *what)
{
	int rc = e == ETCD_E_REFUSED || e == ETCD_E_AUTH
	    ? STORE_ETCD_BROKEN
	    : STORE_ETCD_UNAVAILABLE;

	return fail(s, rc, "%s: %s", what, etcd_last_error(s->etcd));
}

static int
nomem(struct store_etcd *s)
{
	return fail(s, STORE_ETCD_UNAVAILABLE, "out of memory");
}

/* Setup ---------------------------------------------------------------- */

struct store_etcd *
store_etcd_open(const struct etcd_opts *o, const char *prefix, char *err,
    size_t errsz)
{
	struct store_etcd *s;
	size_t n = prefix != NULL ? strlen(prefix) : 0;

	if (n == 0 || n > PREFIX_MAX) {
		snprintf(err, errsz, "etcd key prefix must be 1-%d bytes",
		    PREFIX_MAX);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (prefix[i] <= ' ' || prefix[i] >= 0x7f) {
			snprintf(err, errsz,
			    "etcd key prefix must be printable ASCII without "
			    "spaces");
			return NULL;
		}
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if ((s->etcd = etcd_new(o, err, errsz)) == NULL) {
		free(s);
		return NULL;
	}
	memcpy(s->prefix, prefix, n + 1);
	snprintf(s->k_leader, sizeof(s->k_leader), "%sleader", prefix);
	snprintf(s->k_schema, sizeof(s->k_schema), "%smeta/schema", prefix);
	snprintf(s->k_epoch, sizeof(s->k_epoch), "%smeta/epoch", prefix);
	snprintf(s->k_last, sizeof(s->k_last), "%smeta/last_token", prefix);
	snprintf(s->k_pending, sizeof(s->k_pending), "%smeta/pending", prefix);
	snprintf(s->k_stage, sizeof(s->k_stage), "%sstage/", prefix);
	etcd_limits(s->etcd, &s->max_ops, &s->max_bytes);
	return s;
}

void
store_etcd_close(struct store_etcd *s)
{
	if (s == NULL)
		return;
	etcd_free(s->etcd);
	free(s);
}

void
store_etcd_set_term(struct store_etcd *s, int64_t term)
{
	if (term != s->term) {
		s->term = term;
		s->token_reserved = 0;
		s->pending_maybe = true;
		s->batches = 0;
	}
}

const char *
store_etcd_error(const struct store_etcd *s)
{
	return s->err;
}

uint64_t
store_etcd_staged(const struct store_etcd *s)
{
	return s->staged;
}

size_t
store_etcd_batch_records(const struct store_etcd *s)
{
	/* One operation is the token block's, and some slack. */
	return s->max_ops > 8 ? s->max_ops - 8 : 1;
}

/* Fenced transactions -------------------------------------------------- */

/* A transaction that only commits in our term; NULL when out of memory. */
static struct etcd_txn *
fenced_txn(struct store_etcd *s)
{
	struct etcd_txn *t = etcd_txn_new();

	if (t == NULL ||
	    etcd_txn_compare(t, s->k_leader, ETCD_CREATE, ETCD_EQUAL,
		s->term) != 0 ||
	    etcd_txn_range(t, false, s->k_leader, false) != 0) {
		etcd_txn_free(t);
		return NULL;
	}
	return t;
}

/*
 * Commit t (built by fenced_txn(), maybe with more compares) and free it.
 * *held (unless NULL) tells whether the compares held.  Without held, a
 * failed compare is STORE_ETCD_FENCED.
 */
static int
commit(struct store_etcd *s, struct etcd_txn *t, const char *what, bool *held)
{
	struct etcd_txn_result res;
	enum etcd_err e;
	bool ours;
	int rc = STORE_ETCD_OK;

	if (t == NULL)
		return nomem(s);
	e = etcd_txn_commit(s->etcd, t, &res);
	etcd_txn_free(t);
	if (e != ETCD_OK)
		return fail_etcd(s, e, what);
	if (held != NULL)
		*held = res.succeeded;
	if (!res.succeeded) {
		/* The failure branch read the leader key. */
		ours = res.n == 1 && res.ranges[0].n == 1 &&
		    res.ranges[0].kvs[0].create_revision == s->term;
		if (!ours)
			rc = fail(s, STORE_ETCD_FENCED,
			    "%s refused: term %" PRId64 " is over (%s leads)",
			    what, s->term,
			    res.n == 1 && res.ranges[0].n == 1
				? res.ranges[0].kvs[0].value
				: "nobody");
		else if (held == NULL)
			rc = fail(s, STORE_ETCD_BROKEN, "%s: compare failed",
			    what);
	}
	etcd_txn_result_clear(&res);
	return rc;
}

static int
no_term(struct store_etcd *s, const char *what)
{
	return fail(s, STORE_ETCD_FENCED, "%s: not leading (no term)", what);
}

/* Batches ------------------------------------------------------------- */

static void
batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->v[i].key);
		cJSON_free(b->v[i].value);
	}
	free(b->v);
	memset(b, 0, sizeof(*b));
}

/* Append key (prefix + kind + id) with value (taken over, NULL: delete). */
static int
batch_add(struct batch *b, const char *prefix, const char *kind, const char *id,
    char *value)
{
	size_t n = strlen(prefix) + strlen(kind) + strlen(id) + 1;
	struct entry *e;

	if (b->n == b->cap) {
		size_t cap = b->cap > 0 ? b->cap * 2 : 64;
		struct entry *v = realloc(b->v, cap * sizeof(*v));

		if (v == NULL) {
			cJSON_free(value);
			return -1;
		}
		b->v = v;
		b->cap = cap;
	}
	e = &b->v[b->n];
	if ((e->key = malloc(n)) == NULL) {
		cJSON_free(value);
		return -1;
	}
	snprintf(e->key, n, "%s%s%s", prefix, kind, id);
	e->value = value;
	e->len = value != NULL ? strlen(value) : 0;
	b->n++;
	return 0;
}

static int
add_i64(cJSON *o, const char *name, int64_t n)
{
	char v[24];

	snprintf(v, sizeof(v), "%" PRId64, n);
	return cJSON_AddStringToObject(o, name, v) != NULL ? 0 : -1;
}

static int
add_u64(cJSON *o, const char *name, uint64_t n)
{
	char v[24];

	snprintf(v, sizeof(v), "%" PRIu64, n);
	return cJSON_AddStringToObject(o, name, v) != NULL ? 0 : -1;
}

/* A printed object, or NULL; frees o. */
static char *
print(cJSON *o, bool ok)
{
	char *text = ok ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	return text;
}

static char *
encode_client(const struct lt_client_rec *r)
{
	cJSON *o = cJSON_CreateObject();

	return print(o,
	    o != NULL &&
		cJSON_AddStringToObject(o, "session", r->session) != NULL &&
		cJSON_AddBoolToObject(o, "connected", r->state != LT_CS_GONE) !=
		    NULL &&
		add_i64(o, "max_conn", r->max_conn) == 0 &&
		add_i64(o, "grace_deadline", r->grace_deadline) == 0 &&
		(r->uid == NULL ||
		    cJSON_AddStringToObject(o, "uid", r->uid) != NULL));
}

static char *
encode_lock(const struct lt_lock_rec *r)
{
	cJSON *o = cJSON_CreateObject(), *q;
	bool ok = o != NULL;

	if (ok && r->holder != NULL)
		ok = cJSON_AddStringToObject(o, "holder", r->holder) != NULL &&
		    cJSON_AddStringToObject(o, "holder_user",
			r->holder_user != NULL ? r->holder_user : "") != NULL;
	else if (ok)
		ok = cJSON_AddNullToObject(o, "holder") != NULL;
	ok = ok && add_u64(o, "token", r->token) == 0 &&
	    add_i64(o, "since", r->since) == 0 &&
	    add_i64(o, "idle_deadline", r->idle_deadline) == 0 &&
	    cJSON_AddBoolToObject(o, "warned", r->warned) != NULL &&
	    (q = cJSON_AddArrayToObject(o, "queue")) != NULL;
	for (size_t i = 0; ok && i < r->nwaiters; i++) {
		const char *pair[2] = {r->waiters[i].client,
		    r->waiters[i].user != NULL ? r->waiters[i].user : ""};
		cJSON *e = cJSON_CreateStringArray(pair, 2);

		ok = e != NULL && cJSON_AddItemToArray(q, e);
		if (!ok)
			cJSON_Delete(e);
	}
	return print(o, ok);
}

/* t's dirty clients, then its dirty locks, as a batch. */
static int
collect(struct store_etcd *s, struct locktab *t, struct batch *b)
{
	size_t nc = locktab_dirty_clients(t), nl = locktab_dirty_locks(t);

	for (size_t i = 0; i < nc; i++) {
		struct lt_client_rec rec;
		char *v = NULL;

		if (locktab_dirty_client(t, i, &rec) &&
		    (v = encode_client(&rec)) == NULL)
			return -1;
		if (batch_add(b, s->prefix, "client/", rec.id, v) != 0)
			return -1;
	}
	for (size_t i = 0; i < nl; i++) {
		struct lt_lock_rec rec;
		char *v = NULL;

		if (locktab_dirty_lock(t, i, &rec) &&
		    (v = encode_lock(&rec)) == NULL)
			return -1;
		if (batch_add(b, s->prefix, "lock/", rec.id, v) != 0)
			return -1;
	}
	return 0;
}

/* Add one entry to t's success branch. */
static int
txn_entry(struct etcd_txn *t, const struct entry *e)
{
	return e->value != NULL
	    ? etcd_txn_put(t, true, e->key, e->value, e->len, 0)
	    : etcd_txn_delete(t, true, e->key, false);
}

/*
 * Write entries [0, n) onto the records, fenced, in as few transactions
 * as etcd's limits allow.  A staged batch is already durable: this only
 * copies it into place, and may be repeated.
 */
static int
apply_entries(struct store_etcd *s, const struct entry *v, size_t n)
{
	size_t i = 0;

	while (i < n) {
		struct etcd_txn *t = fenced_txn(s);
		int rc;

		if (t == NULL)
			return nomem(s);
		/* At least one entry per transaction; each fits (see
		 * stage()). */
		do {
			if (txn_entry(t, &v[i]) != 0) {
				etcd_txn_free(t);
				return nomem(s);
			}
			i++;
		} while (i < n && etcd_txn_ops(t) < s->max_ops &&
		    etcd_txn_size(t) +
			    etcd_txn_op_size(strlen(v[i].key), v[i].len) <=
			s->max_bytes);
		if ((rc = commit(s, t, "applying a staged batch", NULL)) != 0)
			return rc;
	}
	return 0;
}

/* The key of chunk i of a batch. */
static void
chunk_key(const struct store_etcd *s, const char *batch, size_t i, char *key,
    size_t sz)
{
	snprintf(key, sz, "%s%s/%06zu", s->k_stage, batch, i);
}

/*
 * A chunk's text, [["client/c", {...}], ["lock/l", null], ...] with keys
 * relative to the prefix, parsed back into entries (appended to b).
 * Entries may only name client/ and lock/ keys.
 */
static int
parse_chunk(struct store_etcd *s, const char *text, size_t len, struct batch *b)
{
	cJSON *a = cJSON_ParseWithLength(text, len);
	const cJSON *e;
	int rc = -1;

	if (!cJSON_IsArray(a))
		goto out;
	cJSON_ArrayForEach(e, a)
	{
		const cJSON *k = cJSON_GetArrayItem(e, 0);
		const cJSON *v = cJSON_GetArrayItem(e, 1);
		char *value = NULL;

		if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 ||
		    !cJSON_IsString(k) ||
		    (strncmp(k->valuestring, "client/", 7) != 0 &&
			strncmp(k->valuestring, "lock/", 5) != 0) ||
		    strlen(k->valuestring) > KEY_MAX ||
		    (!cJSON_IsNull(v) && !cJSON_IsObject(v)))
			goto out;
		if (cJSON_IsObject(v) &&
		    (value = cJSON_PrintUnformatted(v)) == NULL)
			goto out;
		if (batch_add(b, s->prefix, "", k->valuestring, value) != 0)
			goto out;
	}
	rc = 0;
out:
	cJSON_Delete(a);
	return rc;
}

/*
 * Finish a staged batch that P meta/pending names, if any: copy its chunks
 * onto the records, then remove it.  Without one, leftovers of a batch
 * that never reached its commit point are removed.
 */
static int
finish_pending(struct store_etcd *s)
{
	struct etcd_range r, c;
	struct batch b = {0};
	cJSON *p = NULL;
	const cJSON *id, *nchunks;
	enum etcd_err e;
	struct etcd_txn *t;
	char key[KEY_MAX + 64], batch[64];
	int64_t n;
	int rc;

	e = etcd_range(s->etcd, s->k_pending, NULL, &r);
	if (e != ETCD_OK)
		return fail_etcd(s, e, "reading the pending batch");
	if (r.n == 0) {
		etcd_range_clear(&r);
		s->pending_maybe = false;
		return 0;
	}
	if (s->term == 0) {
		etcd_range_clear(&r);
		return no_term(s, "finishing a staged batch");
	}
	p = cJSON_ParseWithLength(r.kvs[0].value, r.kvs[0].value_len);
	etcd_range_clear(&r);
	id = cJSON_GetObjectItemCaseSensitive(p, "batch");
	nchunks = cJSON_GetObjectItemCaseSensitive(p, "chunks");
	if (!cJSON_IsString(id) || strlen(id->valuestring) >= sizeof(batch) ||
	    strchr(id->valuestring, '/') != NULL || !cJSON_IsNumber(nchunks) ||
	    nchunks->valuedouble < 1 || nchunks->valuedouble > 1e6) {
		cJSON_Delete(p);
		return fail(s, STORE_ETCD_BROKEN, "%s is not a pending batch",
		    s->k_pending);
	}
	snprintf(batch, sizeof(batch), "%s", id->valuestring);
	n = (int64_t)nchunks->valuedouble;
	cJSON_Delete(p);
	log_info("journal in etcd: finishing staged batch %s (%" PRId64
		 " chunks)",
	    batch, n);
	for (int64_t i = 0; i < n; i++) {
		chunk_key(s, batch, (size_t)i, key, sizeof(key));
		e = etcd_range(s->etcd, key, NULL, &c);
		if (e != ETCD_OK) {
			batch_clear(&b);
			return fail_etcd(s, e, "reading a staged chunk");
		}
		rc = c.n == 1
		    ? parse_chunk(s, c.kvs[0].value, c.kvs[0].value_len, &b)
		    : -1;
		etcd_range_clear(&c);
		if (rc != 0) {
			batch_clear(&b);
			return fail(s, STORE_ETCD_BROKEN,
			    "staged chunk %s is missing or malformed", key);
		}
		/* A chunk at a time: memory stays at one chunk's worth. */
		rc = apply_entries(s, b.v, b.n);
		batch_clear(&b);
		if (rc != 0)
			return rc;
	}
	t = fenced_txn(s);
	if (t != NULL &&
	    (etcd_txn_delete(t, true, s->k_pending, false) != 0 ||
		etcd_txn_delete(t, true, s->k_stage, true) != 0)) {
		etcd_txn_free(t);
		t = NULL;
	}
	if ((rc = commit(s, t, "removing a finished batch", NULL)) != 0)
		return rc;
	s->pending_maybe = false;
	return 0;
}

/*
 * The staged path for a batch too large for one transaction: chunks, then
 * the commit point (P meta/pending, with the token block), then the
 * records, then the cleanup.  Returns STORE_ETCD_OK once the commit point
 * is written, even if copying fails (the next write or load finishes it).
 */
static int
stage(struct store_etcd *s, const struct batch *b, uint64_t reserve)
{
	size_t room = s->max_bytes - ETCD_TXN_BASE_SIZE -
	    etcd_txn_op_size(KEY_MAX + 64, 0) - CHUNK_SLACK;
	size_t i = 0, nchunks = 0;
	char batch[64], key[KEY_MAX + 64], pending[128], last[24];
	struct etcd_txn *t;
	int rc;

	/* Leftovers of a batch that never reached its commit point. */
	t = fenced_txn(s);
	if (t != NULL && etcd_txn_delete(t, true, s->k_stage, true) != 0) {
		etcd_txn_free(t);
		t = NULL;
	}
	if ((rc = commit(s, t, "clearing staged chunks", NULL)) != 0)
		return rc;
	snprintf(batch, sizeof(batch), "%" PRId64 "-%" PRIu64, s->term,
	    ++s->batches);
	while (i < b->n) {
		cJSON *a = cJSON_CreateArray();
		size_t used = 2;
		char *text;

		if (a == NULL)
			return nomem(s);
		do {
			const struct entry *e = &b->v[i];
			const char *rel = e->key + strlen(s->prefix);
			/* Keys are escaped at most to twice their size. */
			size_t cost = 2 * strlen(rel) + e->len + 16;
			cJSON *pair;

			if (used > 2 && used + cost > room)
				break;
			if (cost > room) {
				cJSON_Delete(a);
				return fail(s, STORE_ETCD_BROKEN,
				    "record %s is larger than etcd's request "
				    "limit",
				    e->key);
			}
			/* Once added, pair is freed with a. */
			pair = cJSON_CreateArray();
			if (pair == NULL || !cJSON_AddItemToArray(a, pair) ||
			    !cJSON_AddItemToArray(pair,
				cJSON_CreateString(rel)) ||
			    !cJSON_AddItemToArray(pair,
				e->value != NULL ? cJSON_CreateRaw(e->value)
						 : cJSON_CreateNull())) {
				cJSON_Delete(a);
				return nomem(s);
			}
			used += cost;
			i++;
		} while (i < b->n);
		text = cJSON_PrintUnformatted(a);
		cJSON_Delete(a);
		if (text == NULL)
			return nomem(s);
		chunk_key(s, batch, nchunks++, key, sizeof(key));
		t = fenced_txn(s);
		if (t != NULL &&
		    etcd_txn_put(t, true, key, text, strlen(text), 0) != 0) {
			etcd_txn_free(t);
			t = NULL;
		}
		cJSON_free(text);
		if ((rc = commit(s, t, "writing a staged chunk", NULL)) != 0)
			return rc;
	}
	/* The commit point. */
	snprintf(pending, sizeof(pending), "{\"batch\":\"%s\",\"chunks\":%zu}",
	    batch, nchunks);
	snprintf(last, sizeof(last), "%" PRIu64, reserve);
	t = fenced_txn(s);
	if (t != NULL &&
	    (etcd_txn_put(t, true, s->k_pending, pending, strlen(pending), 0) !=
		    0 ||
		(reserve != 0 &&
		    etcd_txn_put(t, true, s->k_last, last, strlen(last), 0) !=
			0))) {
		etcd_txn_free(t);
		t = NULL;
	}
	/* From here on the batch may be in: finish it before anything else. */
	s->pending_maybe = true;
	if ((rc = commit(s, t, "committing a staged batch", NULL)) != 0)
		return rc;
	s->staged++;
	if (reserve != 0)
		s->token_reserved = reserve;
	/* Durable now.  Copy it into place from memory, then clean up. */
	if (apply_entries(s, b->v, b->n) == 0) {
		t = fenced_txn(s);
		if (t != NULL &&
		    (etcd_txn_delete(t, true, s->k_pending, false) != 0 ||
			etcd_txn_delete(t, true, s->k_stage, true) != 0)) {
			etcd_txn_free(t);
			t = NULL;
		}
		if (commit(s, t, "removing a finished batch", NULL) == 0) {
			s->pending_maybe = false;
			return 0;
		}
	}
	log_warn("journal in etcd: staged batch %s is committed; copying it "
		 "into place is left for the next write or load",
	    batch);
	return 0;
}

int
store_etcd_flush(struct store_etcd *s, struct locktab *t)
{
	struct batch b = {0};
	uint64_t reserve = 0;
	size_t bytes = ETCD_TXN_BASE_SIZE, ops;
	struct etcd_txn *txn;
	char last[24];
	int rc;

	if (s->term == 0)
		return no_term(s, "writing a batch");
	if (s->pending_maybe && (rc = finish_pending(s)) != 0)
		return rc;
	if (collect(s, t, &b) != 0) {
		batch_clear(&b);
		return nomem(s);
	}
	if (locktab_last_token(t) > s->token_reserved)
		reserve = locktab_last_token(t) + TOKEN_BLOCK;
	if (b.n == 0 && reserve == 0)
		return 0; /* nothing to make durable */
	snprintf(last, sizeof(last), "%" PRIu64, reserve);
	ops = b.n + (reserve != 0 ? 1 : 0);
	for (size_t i = 0; i < b.n; i++)
		bytes += etcd_txn_op_size(strlen(b.v[i].key), b.v[i].len);
	if (reserve != 0)
		bytes += etcd_txn_op_size(strlen(s->k_last), strlen(last));
	/* The fence: a compare and, on failure, a read of the leader key. */
	bytes += 2 * etcd_txn_op_size(strlen(s->k_leader), 0);
	if (ops > s->max_ops || bytes > s->max_bytes) {
		rc = stage(s, &b, reserve);
		batch_clear(&b);
		return rc;
	}
	txn = fenced_txn(s);
	for (size_t i = 0; txn != NULL && i < b.n; i++) {
		if (txn_entry(txn, &b.v[i]) != 0) {
			etcd_txn_free(txn);
			txn = NULL;
		}
	}
	if (txn != NULL && reserve != 0 &&
	    etcd_txn_put(txn, true, s->k_last, last, strlen(last), 0) != 0) {
		etcd_txn_free(txn);
		txn = NULL;
	}
	batch_clear(&b);
	if ((rc = commit(s, txn, "writing a batch", NULL)) != 0)
		return rc;
	if (reserve != 0)
		s->token_reserved = reserve;
	return 0;
}

/* Epoch ------------------------------------------------------------------ */

/* A decimal counter's value, or -1 if text is not one. */
static int
parse_u64(const char *text, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	n = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = n;
	return 0;
}

int
store_etcd_next_epoch(struct store_etcd *s, uint64_t *epoch)
{
	struct etcd_range r;
	struct etcd_txn *t;
	uint64_t e = 0;
	int64_t mod = 0;
	char v[24];
	enum etcd_err ee;
	bool held = false;
	int rc;

	if (s->term == 0)
		return no_term(s, "starting an epoch");
	if ((ee = etcd_range(s->etcd, s->k_epoch, NULL, &r)) != ETCD_OK)
		return fail_etcd(s, ee, "reading the epoch");
	if (r.n == 1) {
		mod = r.kvs[0].mod_revision;
		if (parse_u64(r.kvs[0].value, &e) != 0) {
			etcd_range_clear(&r);
			return fail(s, STORE_ETCD_BROKEN, "%s is not a number",
			    s->k_epoch);
		}
	}
	etcd_range_clear(&r);
	snprintf(v, sizeof(v), "%" PRIu64, e + 1);
	/* Unchanged since read (only a leader writes it, but a request that
	 * failed over may have been applied twice). */
	t = fenced_txn(s);
	if (t != NULL &&
	    (etcd_txn_compare(t, s->k_epoch, ETCD_MOD, ETCD_EQUAL, mod) != 0 ||
		etcd_txn_put(t, true, s->k_epoch, v, strlen(v), 0) != 0 ||
		etcd_txn_put(t, true, s->k_schema, SCHEMA, strlen(SCHEMA), 0) !=
		    0)) {
		etcd_txn_free(t);
		t = NULL;
	}
	if ((rc = commit(s, t, "starting an epoch", &held)) != 0)
		return rc;
	if (!held)
		return fail(s, STORE_ETCD_UNAVAILABLE,
		    "the epoch changed while it was increased; try again");
	*epoch = e + 1;
	return 0;
}

/* Loading ----------------------------------------------------------------- */

static int
get_i64(const cJSON *o, const char *name, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	char *end;
	long long n;

	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return -1;
	errno = 0;
	n = strtoll(v->valuestring, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = n;
	return 0;
}

static const char *
get_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
get_bool(const cJSON *o, const char *name, bool *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	*out = cJSON_IsTrue(v);
	return cJSON_IsBool(v) ? 0 : -1;
}

static int
restore_client(struct locktab *t, const char *id, const cJSON *o)
{
	struct lt_client_rec rec = {.id = id};
	const cJSON *uid = cJSON_GetObjectItemCaseSensitive(o, "uid");
	bool connected;

	rec.session = get_str(o, "session");
	if (rec.session == NULL || get_bool(o, "connected", &connected) != 0 ||
	    get_i64(o, "max_conn", &rec.max_conn) != 0 ||
	    get_i64(o, "grace_deadline", &rec.grace_deadline) != 0 ||
	    (uid != NULL && !cJSON_IsString(uid)))
		return -1;
	rec.state = connected ? LT_CS_LIVE : LT_CS_GONE;
	rec.uid = uid != NULL ? uid->valuestring : NULL;
	return locktab_restore_client(t, &rec) == LT_OK ? 0 : -1;
}

static int
restore_lock(struct locktab *t, const char *id, const cJSON *o)
{
	struct lt_lock_rec rec = {.id = id};
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "holder");
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "queue");
	const cJSON *e;
	struct lt_waiter_rec *w;
	int64_t token;
	size_t n = 0;
	int rc = -1;

	if (cJSON_IsString(h)) {
		rec.holder = h->valuestring;
		if ((rec.holder_user = get_str(o, "holder_user")) == NULL)
			return -1;
	} else if (!cJSON_IsNull(h)) {
		return -1;
	}
	if (get_i64(o, "token", &token) != 0 || token < 0 ||
	    get_i64(o, "since", &rec.since) != 0 ||
	    get_i64(o, "idle_deadline", &rec.idle_deadline) != 0 ||
	    get_bool(o, "warned", &rec.warned) != 0 || !cJSON_IsArray(q) ||
	    cJSON_GetArraySize(q) > MQL_WAITERS_PER_LOCK)
		return -1;
	rec.token = (uint64_t)token;
	if ((w = calloc((size_t)cJSON_GetArraySize(q) + 1, sizeof(*w))) == NULL)
		return -1;
	cJSON_ArrayForEach(e, q)
	{
		const cJSON *c = cJSON_GetArrayItem(e, 0);
		const cJSON *u = cJSON_GetArrayItem(e, 1);

		if (!cJSON_IsString(c) || !cJSON_IsString(u))
			goto out;
		w[n].client = c->valuestring;
		w[n++].user = u->valuestring;
	}
	rec.waiters = w;
	rec.nwaiters = n;
	rc = locktab_restore_lock(t, &rec) == LT_OK ? 0 : -1;
out:
	free(w);
	return rc;
}

/*
 * Every record under kind ("client/" or "lock/") as of revision rev, a
 * page at a time, into t.
 */
static int
load_kind(struct store_etcd *s, struct locktab *t, const char *kind,
    int64_t rev, int (*restore)(struct locktab *, const char *, const cJSON *))
{
	char first[PREFIX_MAX + 16], last[KEY_MAX + 16];
	size_t plen;
	bool more = true, after = false;

	snprintf(first, sizeof(first), "%s%s", s->prefix, kind);
	snprintf(last, sizeof(last), "%s", first);
	plen = strlen(first);
	while (more) {
		struct etcd_range_opts o = {.prefix = first,
		    .after = after,
		    .limit = PAGE,
		    .revision = rev};
		struct etcd_range r;
		enum etcd_err e = etcd_range(s->etcd, last, &o, &r);

		if (e != ETCD_OK)
			return fail_etcd(s, e, "loading the journal");
		for (size_t i = 0; i < r.n; i++) {
			const struct etcd_kv *kv = &r.kvs[i];
			cJSON *j =
			    cJSON_ParseWithLength(kv->value, kv->value_len);
			int rc = -1;

			if (kv->key_len > plen && kv->key_len < sizeof(last) &&
			    strlen(kv->key) == kv->key_len && cJSON_IsObject(j))
				rc = restore(t, kv->key + plen, j);
			cJSON_Delete(j);
			if (rc != 0) {
				rc = fail(s, STORE_ETCD_BROKEN,
				    "bad record %.*s",
				    (int)(kv->key_len < 300 ? kv->key_len
							    : 300),
				    kv->key);
				etcd_range_clear(&r);
				return rc;
			}
		}
		more = r.more && r.n > 0;
		if (r.n > 0)
			snprintf(last, sizeof(last), "%s", r.kvs[r.n - 1].key);
		after = true;
		etcd_range_clear(&r);
	}
	return 0;
}

int
store_etcd_load(struct store_etcd *s, struct locktab *t)
{
	char meta[PREFIX_MAX + 16];
	struct etcd_range r;
	uint64_t last = 0;
	int64_t rev;
	enum etcd_err e;
	int rc;

	if ((rc = finish_pending(s)) != 0)
		return rc;
	snprintf(meta, sizeof(meta), "%smeta/", s->prefix);
	e = etcd_range(s->etcd, meta, &(struct etcd_range_opts){.prefix = meta},
	    &r);
	if (e != ETCD_OK)
		return fail_etcd(s, e, "loading the journal");
	rev = r.revision;
	for (size_t i = 0; i < r.n; i++) {
		const struct etcd_kv *kv = &r.kvs[i];

		if (strcmp(kv->key, s->k_schema) == 0 &&
		    strcmp(kv->value, SCHEMA) != 0) {
			rc = fail(s, STORE_ETCD_BROKEN,
			    "%s is '%.20s'; this mqlockd reads schema %s",
			    kv->key, kv->value, SCHEMA);
			break;
		}
		if (strcmp(kv->key, s->k_last) == 0 &&
		    parse_u64(kv->value, &last) != 0) {
			rc = fail(s, STORE_ETCD_BROKEN, "%s is not a number",
			    kv->key);
			break;
		}
		if (strcmp(kv->key, s->k_pending) == 0) {
			/* Written after finish_pending() looked: another
			 * leader is at work. */
			rc = fail(s, STORE_ETCD_FENCED,
			    "another leader is writing the journal");
			break;
		}
	}
	etcd_range_clear(&r);
	if (rc != 0)
		return rc;
	/* Clients first: lock records name them. */
	if ((rc = load_kind(s, t, "client/", rev, restore_client)) != 0 ||
	    (rc = load_kind(s, t, "lock/", rev, restore_lock)) != 0)
		return rc;
	locktab_restore_token(t, last);
	locktab_restore_done(t);
	s->token_reserved = last;
	return 0;
}

/* Info ----------------------------------------------------------------- */

int
store_etcd_info(struct store_etcd *s, struct store_etcd_info *out)
{
	char meta[PREFIX_MAX + 16];
	struct etcd_range r;
	enum etcd_err e;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	snprintf(meta, sizeof(meta), "%smeta/", s->prefix);
	e = etcd_range(s->etcd, meta, &(struct etcd_range_opts){.prefix = meta},
	    &r);
	if (e != ETCD_OK)
		return fail_etcd(s, e, "reading the journal's counters");
	out->exists = r.n > 0;
	for (size_t i = 0; i < r.n && rc == 0; i++) {
		const struct etcd_kv *kv = &r.kvs[i];

		if (strcmp(kv->key, s->k_epoch) == 0 &&
		    parse_u64(kv->value, &out->epoch) != 0)
			rc = fail(s, STORE_ETCD_BROKEN, "%s is not a number",
			    kv->key);
		else if (strcmp(kv->key, s->k_last) == 0 &&
		    parse_u64(kv->value, &out->last_token) != 0)
			rc = fail(s, STORE_ETCD_BROKEN, "%s is not a number",
			    kv->key);
		else if (strcmp(kv->key, s->k_pending) == 0)
			out->pending = true;
		else if (strcmp(kv->key, s->k_schema) == 0 &&
		    strcmp(kv->value, SCHEMA) != 0)
			rc = fail(s, STORE_ETCD_BROKEN,
			    "%s is '%.20s'; this mqlockd reads schema %s",
			    kv->key, kv->value, SCHEMA);
	}
	etcd_range_clear(&r);
	if (rc != 0)
		return rc;
	if ((e = etcd_range(s->etcd, s->k_leader, NULL, &r)) != ETCD_OK)
		return fail_etcd(s, e, "reading the leader key");
	if (r.n == 1) {
		size_t n = r.kvs[0].value_len < sizeof(out->leader) - 1
		    ? r.kvs[0].value_len
		    : sizeof(out->leader) - 1;

		out->term = r.kvs[0].create_revision;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)r.kvs[0].value[i];

			out->leader[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
		}
		out->leader[n] = '\0';
	}
	etcd_range_clear(&r);
	return 0;
}
