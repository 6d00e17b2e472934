#include "io/etcd.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "io/clock.h"

/*
 * A reply larger than this is refused rather than buffered: the largest
 * answers mqlock asks for are range pages of a few hundred keys.
 */
#define REPLY_MAX ((size_t)256 * 1024 * 1024)

/* The shortest attempt worth making when a deadline is split. */
#define ATTEMPT_MIN_MS 50

/* gRPC status codes, as the gateway reports them in "code". */
enum grpc_code {
	GRPC_CANCELED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_ABORTED = 10,
	GRPC_UNAVAILABLE = 14,
	GRPC_UNAUTHENTICATED = 16
};

struct buf {
	char *p;
	size_t len, cap;
};

struct etcd {
	char *ep[ETCD_MAX_ENDPOINTS];
	size_t nep;
	size_t cur; /* the endpoint that answered last */
	char *cafile, *certfile, *keyfile, *user, *password;
	int timeout_ms;
	size_t max_ops, max_bytes;
	CURL *curl;
	char *token; /* auth token, NULL until authenticated */
	int code;    /* gRPC code of the last refusal, 0 if none */
	struct buf reply;
	char curl_err[CURL_ERROR_SIZE];
	char err[1024];
};

struct etcd_txn {
	cJSON *root, *cmp, *succ, *fail;
	size_t ncmp, nsucc, nfail;
	size_t size;
	bool failed;
};

/* How one attempt on one endpoint ended. */
enum attempt {
	ATTEMPT_OK,
	ATTEMPT_NEXT, /* this endpoint could not serve: try the next one */
	ATTEMPT_FINAL /* etcd answered no: stop */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void
curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void
errf(struct etcd *e, const char *fmt, ...)
{
	size_t used = strlen(e->err);
	va_list ap;

	if (used + 3 >= sizeof(e->err))
		return;
	if (used > 0) {
		memcpy(e->err + used, "; ", 3);
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(e->err + used, sizeof(e->err) - used, fmt, ap);
	va_end(ap);
}

static char *
dup_str(const char *s)
{
	size_t n;
	char *d;

	if (s == NULL)
		return NULL;
	n = strlen(s) + 1;
	if ((d = malloc(n)) != NULL)
		memcpy(d, s, n);
	return d;
}

/* Base64 ---------------------------------------------------------------- */

/* len bytes of p as a NUL-terminated base64 string, or NULL. */
static char *
b64_encode(const void *p, size_t len)
{
	char *out;

	if (len > (size_t)INT_MAX / 2)
		return NULL;
	if ((out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

/*
 * The bytes of a base64 string, NUL-terminated, or NULL when s is not
 * base64 or memory ran out.  EVP_DecodeBlock counts padding as zero bytes:
 * they are taken off again.
 */
static char *
b64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s), pad = 0;
	unsigned char *out;
	int got;

	if (n % 4 != 0 || n > (size_t)INT_MAX)
		return NULL;
	if ((out = malloc(n / 4 * 3 + 1)) == NULL)
		return NULL;
	got =
	    n > 0 ? EVP_DecodeBlock(out, (const unsigned char *)s, (int)n) : 0;
	if (got < 0) {
		free(out);
		return NULL;
	}
	if (n > 0 && s[n - 1] == '=')
		pad++;
	if (n > 1 && s[n - 2] == '=')
		pad++;
	*len = (size_t)got - pad;
	out[*len] = '\0';
	return (char *)out;
}

/* JSON ------------------------------------------------------------------ */

/* Add name: bytes as base64.  Returns 0, or -1 when memory ran out. */
static int
add_b64(cJSON *o, const char *name, const void *p, size_t len)
{
	char *s = b64_encode(p, len);
	int rc = -1;

	if (s != NULL && cJSON_AddStringToObject(o, name, s) != NULL)
		rc = 0;
	free(s);
	return rc;
}

/* Add name: n as the decimal string the gateway wants for 64-bit ints. */
static int
add_i64(cJSON *o, const char *name, int64_t n)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRId64, n);
	return cJSON_AddStringToObject(o, name, s) != NULL ? 0 : -1;
}

/*
 * The range end that covers every key starting with prefix (plen bytes):
 * the prefix with its last byte below 0xff raised by one.  "\0" (from the
 * key on, to the end) when there is none.  Writes to end (plen + 1 bytes).
 */
static size_t
prefix_end(const char *prefix, size_t plen, char *end)
{
	memcpy(end, prefix, plen);
	while (plen > 0) {
		unsigned char c = (unsigned char)end[plen - 1];

		if (c < 0xff) {
			end[plen - 1] = (char)(c + 1);
			return plen;
		}
		plen--;
	}
	end[0] = '\0';
	return 1;
}

/* Add "key" (plus one NUL byte with after) and, for a prefix, "range_end". */
static int
add_key_range(cJSON *o, const char *key, bool after, const char *prefix)
{
	size_t klen = strlen(key) + (after ? 1 : 0);
	char *end;
	size_t elen;
	int rc;

	if (add_b64(o, "key", key, klen) != 0)
		return -1;
	if (prefix == NULL)
		return 0;
	if ((end = malloc(strlen(prefix) + 1)) == NULL)
		return -1;
	elen = prefix_end(prefix, strlen(prefix), end);
	rc = add_b64(o, "range_end", end, elen);
	free(end);
	return rc;
}

/*
 * A 64-bit integer field: absent is 0 (the gateway leaves out zeros), a
 * string of digits or an integral number is its value.  Returns 0, or -1
 * for anything else.
 */
static int
get_i64(const cJSON *o, const char *name, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	char *end;
	long long n;

	*out = 0;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (cJSON_IsNumber(v)) {
		/* Whole numbers well inside int64_t only (no overflowing
		 * cast). */
		if (!(v->valuedouble > -9e18 && v->valuedouble < 9e18) ||
		    v->valuedouble != (double)(int64_t)v->valuedouble)
			return -1;
		*out = (int64_t)v->valuedouble;
		return 0;
	}
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return -1;
	errno = 0;
	n = strtoll(v->valuestring, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = n;
	return 0;
}

/* A base64 field as bytes (absent: empty).  Returns 0, or -1. */
static int
get_b64(const cJSON *o, const char *name, char **out, size_t *len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	*out = b64_decode(cJSON_IsString(v) ? v->valuestring : "", len);
	return *out != NULL && (v == NULL || cJSON_IsString(v)) ? 0 : -1;
}

static int
get_bool(const cJSON *o, const char *name, bool *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	*out = cJSON_IsTrue(v);
	return v == NULL || cJSON_IsBool(v) ? 0 : -1;
}

/* The header's revision. */
static int
get_revision(const cJSON *o, int64_t *rev)
{
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, "header");

	*rev = 0;
	return h == NULL || cJSON_IsObject(h) ? get_i64(h, "revision", rev)
					      : -1;
}

void
etcd_range_clear(struct etcd_range *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->kvs[i].key);
		free(r->kvs[i].value);
	}
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

/* A RangeResponse into out.  Returns 0, or -1 (out cleared). */
static int
parse_range(const cJSON *o, struct etcd_range *out)
{
	const cJSON *kvs = cJSON_GetObjectItemCaseSensitive(o, "kvs");
	const cJSON *kv;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	if (get_revision(o, &out->revision) != 0 ||
	    get_i64(o, "count", &out->count) != 0 ||
	    get_bool(o, "more", &out->more) != 0 ||
	    (kvs != NULL && !cJSON_IsArray(kvs)))
		return -1;
	if (kvs == NULL || cJSON_GetArraySize(kvs) == 0)
		return 0;
	out->kvs = calloc((size_t)cJSON_GetArraySize(kvs), sizeof(*out->kvs));
	if (out->kvs == NULL)
		return -1;
	cJSON_ArrayForEach(kv, kvs)
	{
		struct etcd_kv *k = &out->kvs[n++];

		out->n = n;
		if (!cJSON_IsObject(kv) ||
		    get_b64(kv, "key", &k->key, &k->key_len) != 0 ||
		    get_b64(kv, "value", &k->value, &k->value_len) != 0 ||
		    get_i64(kv, "create_revision", &k->create_revision) != 0 ||
		    get_i64(kv, "mod_revision", &k->mod_revision) != 0 ||
		    get_i64(kv, "version", &k->version) != 0 ||
		    get_i64(kv, "lease", &k->lease) != 0) {
			etcd_range_clear(out);
			return -1;
		}
	}
	return 0;
}

/* HTTP ------------------------------------------------------------------- */

static size_t
on_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;

	if (n > REPLY_MAX - b->len)
		return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap > 0 ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

/*
 * One POST of body to endpoint i, ending by deadline (monotonic ms).  The
 * reply lands in e->reply.  Returns the curl code; *status gets the HTTP
 * status (0 without an answer).
 */
static CURLcode
post(struct etcd *e, size_t i, const char *path, const char *body, size_t len,
    bool with_token, int64_t deadline, long *status)
{
	char url[512], auth[1024];
	struct curl_slist *h = NULL, *t;
	int64_t left = deadline - clock_mono_ms();
	CURLcode rc = CURLE_OUT_OF_MEMORY;

	*status = 0;
	e->reply.len = 0;
	e->curl_err[0] = '\0';
	if (left < 1)
		left = 1;
	snprintf(url, sizeof(url), "%s%s", e->ep[i], path);
	if ((t = curl_slist_append(h, "Content-Type: application/json")) ==
	    NULL)
		goto out;
	h = t;
	/* curl asks for 100-continue before bodies over 1 MiB: a round trip
	 * for nothing. */
	if ((t = curl_slist_append(h, "Expect:")) == NULL)
		goto out;
	h = t;
	if (with_token && e->token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: %s", e->token);
		if ((t = curl_slist_append(h, auth)) == NULL)
			goto out;
		h = t;
	}
	curl_easy_setopt(e->curl, CURLOPT_URL, url);
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
	rc = curl_easy_perform(e->curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, status);
out:
	/* The handle must not keep pointers into freed memory. */
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(h);
	return rc;
}

/* etcd's message from an error reply: {"error"|"message": "...", "code": N}
 * or, from streaming calls, {"error": {"message": ..., "grpc_code": N}}. */
static void
error_of(const cJSON *j, int *code, const char **msg)
{
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *m, *c;

	*code = 0;
	*msg = "";
	if (cJSON_IsObject(err)) {
		m = cJSON_GetObjectItemCaseSensitive(err, "message");
		c = cJSON_GetObjectItemCaseSensitive(err, "grpc_code");
	} else {
		m = cJSON_GetObjectItemCaseSensitive(j, "message");
		if (!cJSON_IsString(m))
			m = err;
		c = cJSON_GetObjectItemCaseSensitive(j, "code");
	}
	if (cJSON_IsString(m))
		*msg = m->valuestring;
	if (cJSON_IsNumber(c))
		*code = c->valueint;
}

/* Codes after which another member may well answer. */
static bool
retryable(int code)
{
	switch (code) {
	case GRPC_CANCELED:
	case GRPC_UNKNOWN:
	case GRPC_DEADLINE_EXCEEDED:
	case GRPC_RESOURCE_EXHAUSTED:
	case GRPC_ABORTED:
	case GRPC_UNAVAILABLE:
		return true;
	default:
		return false;
	}
}

/*
 * POST to endpoint i and judge the answer.  On ATTEMPT_OK *out is the
 * parsed reply (the caller's).  *cls is the error class otherwise.
 */
static enum attempt
exchange(struct etcd *e, size_t i, const char *path, const char *body,
    size_t len, bool with_token, int64_t deadline, cJSON **out,
    enum etcd_err *cls)
{
	long status;
	CURLcode rc;
	cJSON *j;
	const char *msg;
	int code;

	*out = NULL;
	rc = post(e, i, path, body, len, with_token, deadline, &status);
	if (rc != CURLE_OK) {
		errf(e, "%s: %s", e->ep[i],
		    e->curl_err[0] != '\0' ? e->curl_err
					   : curl_easy_strerror(rc));
		*cls = rc == CURLE_OUT_OF_MEMORY ? ETCD_E_INTERNAL
						 : ETCD_E_UNAVAILABLE;
		return rc == CURLE_OUT_OF_MEMORY ? ATTEMPT_FINAL : ATTEMPT_NEXT;
	}
	j = cJSON_ParseWithLength(e->reply.p != NULL ? e->reply.p : "",
	    e->reply.len);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		errf(e, "%s: HTTP %ld, not etcd's JSON gateway", e->ep[i],
		    status);
		*cls = status == 200 ? ETCD_E_INTERNAL : ETCD_E_UNAVAILABLE;
		return ATTEMPT_NEXT;
	}
	error_of(j, &code, &msg);
	if (status == 200 &&
	    !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "error"))) {
		*out = j;
		return ATTEMPT_OK;
	}
	errf(e, "%s: %s (code %d)", e->ep[i], msg[0] != '\0' ? msg : "error",
	    code);
	cJSON_Delete(j);
	e->code = code;
	if (retryable(code) || (code == 0 && status >= 500)) {
		*cls = ETCD_E_UNAVAILABLE;
		return ATTEMPT_NEXT;
	}
	*cls = code == GRPC_UNAUTHENTICATED ? ETCD_E_AUTH : ETCD_E_REFUSED;
	return ATTEMPT_FINAL;
}

/* Ask endpoint i for a token with the user and password. */
static enum attempt
authenticate(struct etcd *e, size_t i, int64_t deadline, enum etcd_err *cls)
{
	cJSON *req = cJSON_CreateObject(), *rep = NULL;
	const cJSON *tok;
	char *body = NULL;
	enum attempt a = ATTEMPT_FINAL;

	free(e->token);
	e->token = NULL;
	*cls = ETCD_E_INTERNAL;
	if (req == NULL ||
	    cJSON_AddStringToObject(req, "name", e->user) == NULL ||
	    cJSON_AddStringToObject(req, "password",
		e->password != NULL ? e->password : "") == NULL ||
	    (body = cJSON_PrintUnformatted(req)) == NULL) {
		errf(e, "out of memory");
		goto out;
	}
	a = exchange(e, i, "/v3/auth/authenticate", body, strlen(body), false,
	    deadline, &rep, cls);
	if (a == ATTEMPT_FINAL && (*cls == ETCD_E_REFUSED)) {
		/* Wrong user or password (InvalidArgument), or authentication
		 * not enabled (FailedPrecondition): both are the user's. */
		*cls = ETCD_E_AUTH;
	}
	if (a != ATTEMPT_OK)
		goto out;
	tok = cJSON_GetObjectItemCaseSensitive(rep, "token");
	if (!cJSON_IsString(tok) || tok->valuestring[0] == '\0' ||
	    strlen(tok->valuestring) > 900 ||
	    strpbrk(tok->valuestring, "\r\n") != NULL) {
		errf(e, "%s: no usable token in the answer", e->ep[i]);
		*cls = ETCD_E_INTERNAL;
		a = ATTEMPT_NEXT;
		goto out;
	}
	if ((e->token = dup_str(tok->valuestring)) == NULL) {
		errf(e, "out of memory");
		a = ATTEMPT_FINAL;
	}
out:
	cJSON_Delete(rep);
	cJSON_free(body);
	cJSON_Delete(req);
	return a;
}

/*
 * One call: POST req to path, failing over between endpoints within the
 * deadline.  On ETCD_OK *out is the reply (the caller's).
 */
static enum etcd_err
call(struct etcd *e, const char *path, const cJSON *req, cJSON **out)
{
	int64_t deadline = clock_mono_ms() + e->timeout_ms;
	enum etcd_err cls = ETCD_E_UNAVAILABLE;
	bool unavailable = true; /* until an endpoint answers garbage */
	size_t tried = 0;
	char *body = req != NULL ? cJSON_PrintUnformatted(req) : NULL;
	size_t len;

	*out = NULL;
	e->err[0] = '\0';
	e->code = 0;
	if (body == NULL) {
		errf(e, "out of memory");
		return ETCD_E_INTERNAL;
	}
	len = strlen(body);
	for (size_t k = 0; k < e->nep; k++) {
		size_t i = (e->cur + k) % e->nep;
		int64_t left = deadline - clock_mono_ms(), share;
		int64_t until;
		enum attempt a = ATTEMPT_OK;

		if (left <= 0) {
			errf(e, "deadline of %d ms passed", e->timeout_ms);
			break;
		}
		share = left / (int64_t)(e->nep - k);
		if (share < ATTEMPT_MIN_MS)
			share = left < ATTEMPT_MIN_MS ? left : ATTEMPT_MIN_MS;
		until = clock_mono_ms() + share;
		if (e->user != NULL && e->token == NULL)
			a = authenticate(e, i, until, &cls);
		if (a == ATTEMPT_OK) {
			a = exchange(e, i, path, body, len, true, until, out,
			    &cls);
			/* An expired or revoked token: once more with a new
			 * one. */
			if (a == ATTEMPT_FINAL && e->user != NULL &&
			    e->code == GRPC_UNAUTHENTICATED) {
				a = authenticate(e, i, until, &cls);
				if (a == ATTEMPT_OK)
					a = exchange(e, i, path, body, len,
					    true, until, out, &cls);
			}
		}
		if (a != ATTEMPT_NEXT) {
			e->cur = i;
			cJSON_free(body);
			return a == ATTEMPT_OK ? ETCD_OK : cls;
		}
		/* Garbage from every endpoint is ETCD_E_INTERNAL; silence
		 * from any is ETCD_E_UNAVAILABLE. */
		if (tried++ == 0)
			unavailable = false;
		if (cls == ETCD_E_UNAVAILABLE)
			unavailable = true;
	}
	cJSON_free(body);
	return unavailable ? ETCD_E_UNAVAILABLE : ETCD_E_INTERNAL;
}

/* Setup ------------------------------------------------------------------ */

static int
parse_endpoints(struct etcd *e, const char *list, char *err, size_t errsz)
{
	const char *p = list;

	if (list == NULL || *list == '\0') {
		snprintf(err, errsz, "no etcd endpoints given");
		return -1;
	}
	while (*p != '\0') {
		size_t n = strcspn(p, ","), host;
		const char *scheme_end = strstr(p, "://");

		if (e->nep == ETCD_MAX_ENDPOINTS) {
			snprintf(err, errsz, "more than %d etcd endpoints",
			    ETCD_MAX_ENDPOINTS);
			return -1;
		}
		if (scheme_end == NULL || scheme_end >= p + n ||
		    !((scheme_end - p == 4 && strncmp(p, "http", 4) == 0) ||
			(scheme_end - p == 5 && strncmp(p, "https", 5) == 0))) {
			snprintf(err, errsz,
			    "etcd endpoint '%.*s': not an http:// or https:// "
			    "URL",
			    (int)(n < 200 ? n : 200), p);
			return -1;
		}
		host = n - (size_t)(scheme_end + 3 - p);
		while (n > 0 && p[n - 1] == '/')
			n--; /* paths are added after it */
		for (size_t k = 0; k < n; k++) {
			unsigned char c = (unsigned char)p[k];

			if (c <= ' ' || c >= 0x7f)
				host = 0;
		}
		if (host == 0 || n > 400) {
			snprintf(err, errsz, "etcd endpoint '%.*s': bad URL",
			    (int)(n < 200 ? n : 200), p);
			return -1;
		}
		if ((e->ep[e->nep] = malloc(n + 1)) == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		memcpy(e->ep[e->nep], p, n);
		e->ep[e->nep++][n] = '\0';
		p += strcspn(p, ",");
		if (*p == ',' && *++p == '\0') {
			snprintf(err, errsz, "etcd endpoints end with ','");
			return -1;
		}
	}
	return 0;
}

static int
readable(const char *what, const char *path, char *err, size_t errsz)
{
	if (path != NULL && access(path, R_OK) != 0) {
		snprintf(err, errsz, "etcd %s %s: %s", what, path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

struct etcd *
etcd_new(const struct etcd_opts *o, char *err, size_t errsz)
{
	struct etcd *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if (parse_endpoints(e, o->endpoints, err, errsz) != 0)
		goto err;
	if (o->keyfile != NULL && o->certfile == NULL) {
		snprintf(err, errsz, "etcd key file without a certificate");
		goto err;
	}
	if (o->password != NULL && o->user == NULL) {
		snprintf(err, errsz, "etcd password without a user");
		goto err;
	}
	if (o->user != NULL && (o->user[0] == '\0' || strlen(o->user) > 256)) {
		snprintf(err, errsz, "etcd user must be 1-256 bytes");
		goto err;
	}
	if (o->timeout_ms < 0) {
		snprintf(err, errsz, "etcd timeout below 0");
		goto err;
	}
	if (readable("CA file", o->cafile, err, errsz) != 0 ||
	    readable("certificate", o->certfile, err, errsz) != 0 ||
	    readable("key file", o->keyfile, err, errsz) != 0)
		goto err;
	e->timeout_ms =
	    o->timeout_ms > 0 ? o->timeout_ms : ETCD_DEFAULT_TIMEOUT_MS;
	e->max_ops =
	    o->max_txn_ops > 0 ? o->max_txn_ops : ETCD_DEFAULT_MAX_TXN_OPS;
	e->max_bytes = o->max_request_bytes > 0
	    ? o->max_request_bytes
	    : ETCD_DEFAULT_MAX_REQUEST_BYTES;
	if ((o->cafile != NULL && (e->cafile = dup_str(o->cafile)) == NULL) ||
	    (o->certfile != NULL &&
		(e->certfile = dup_str(o->certfile)) == NULL) ||
	    (o->keyfile != NULL &&
		(e->keyfile = dup_str(o->keyfile)) == NULL) ||
	    (o->user != NULL && (e->user = dup_str(o->user)) == NULL) ||
	    (o->password != NULL &&
		(e->password = dup_str(o->password)) == NULL)) {
		snprintf(err, errsz, "out of memory");
		goto err;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK || (e->curl = curl_easy_init()) == NULL) {
		snprintf(err, errsz, "cannot initialise libcurl");
		goto err;
	}
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_ERRORBUFFER, e->curl_err);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &e->reply);
	curl_easy_setopt(e->curl, CURLOPT_POST, 1L);
	/* etcd's address, never a proxy from the environment. */
	curl_easy_setopt(e->curl, CURLOPT_PROXY, "");
	curl_easy_setopt(e->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e->curl, CURLOPT_FOLLOWLOCATION, 0L);
	/* One request per connection at a time: HTTP/1.1 keeps it simple and
	 * is what the gateway serves on every listener. */
	curl_easy_setopt(e->curl, CURLOPT_HTTP_VERSION,
	    (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	if (e->cafile != NULL)
		curl_easy_setopt(e->curl, CURLOPT_CAINFO, e->cafile);
	if (e->certfile != NULL) {
		curl_easy_setopt(e->curl, CURLOPT_SSLCERT, e->certfile);
		curl_easy_setopt(e->curl, CURLOPT_SSLKEY,
		    e->keyfile != NULL ? e->keyfile : e->certfile);
	}
	return e;
err:
	etcd_free(e);
	return NULL;
}

void
etcd_free(struct etcd *e)
{
	if (e == NULL)
		return;
	if (e->curl != NULL)
		curl_easy_cleanup(e->curl);
	for (size_t i = 0; i < e->nep; i++)
		free(e->ep[i]);
	free(e->cafile);
	free(e->certfile);
	free(e->keyfile);
	free(e->user);
	if (e->password != NULL)
		memset(e->password, 0, strlen(e->password));
	free(e->password);
	free(e->token);
	free(e->reply.p);
	free(e);
}

void
etcd_set_timeout(struct etcd *e, int ms)
{
	e->timeout_ms = ms > 0 ? ms : 1;
}

void
etcd_limits(const struct etcd *e, size_t *ops, size_t *bytes)
{
	*ops = e->max_ops;
	*bytes = e->max_bytes;
}

const char *
etcd_last_error(const struct etcd *e)
{
	return e->err;
}

const char *
etcd_endpoint(const struct etcd *e)
{
	return e->ep[e->cur];
}

/* Key-value calls ---------------------------------------------------------- */

static enum etcd_err
bad_reply(struct etcd *e, const char *what)
{
	errf(e, "%s: unexpected answer to %s", e->ep[e->cur], what);
	return ETCD_E_INTERNAL;
}

static enum etcd_err
oom(struct etcd *e)
{
	e->err[0] = '\0';
	errf(e, "out of memory");
	return ETCD_E_INTERNAL;
}

enum etcd_err
etcd_range(struct etcd *e, const char *key, const struct etcd_range_opts *o,
    struct etcd_range *out)
{
	static const struct etcd_range_opts none;
	cJSON *req = cJSON_CreateObject(), *rep = NULL;
	enum etcd_err rc;

	memset(out, 0, sizeof(*out));
	if (o == NULL)
		o = &none;
	if (req == NULL || add_key_range(req, key, o->after, o->prefix) != 0 ||
	    (o->limit > 0 && add_i64(req, "limit", o->limit) != 0) ||
	    (o->revision > 0 && add_i64(req, "revision", o->revision) != 0) ||
	    (o->count_only &&
		cJSON_AddTrueToObject(req, "count_only") == NULL)) {
		cJSON_Delete(req);
		return oom(e);
	}
	rc = call(e, "/v3/kv/range", req, &rep);
	cJSON_Delete(req);
	if (rc == ETCD_OK && parse_range(rep, out) != 0)
		rc = bad_reply(e, "range");
	cJSON_Delete(rep);
	return rc;
}

enum etcd_err
etcd_put(struct etcd *e, const char *key, const void *value, size_t len,
    int64_t lease, int64_t *revision)
{
	cJSON *req = cJSON_CreateObject(), *rep = NULL;
	enum etcd_err rc;
	int64_t rev = 0;

	if (req == NULL || add_b64(req, "key", key, strlen(key)) != 0 ||
	    add_b64(req, "value", value, len) != 0 ||
	    (lease != 0 && add_i64(req, "lease", lease) != 0)) {
		cJSON_Delete(req);
		return oom(e);
	}
	rc = call(e, "/v3/kv/put", req, &rep);
	cJSON_Delete(req);
	if (rc == ETCD_OK && get_revision(rep, &rev) != 0)
		rc = bad_reply(e, "put");
	if (rc == ETCD_OK && revision != NULL)
		*revision = rev;
	cJSON_Delete(rep);
	return rc;
}

enum etcd_err
etcd_delete(struct etcd *e, const char *key, bool prefix, int64_t *deleted)
{
	cJSON *req = cJSON_CreateObject(), *rep = NULL;
	enum etcd_err rc;
	int64_t n = 0;

	if (req == NULL ||
	    add_key_range(req, key, false, prefix ? key : NULL) != 0) {
		cJSON_Delete(req);
		return oom(e);
	}
	rc = call(e, "/v3/kv/deleterange", req, &rep);
	cJSON_Delete(req);
	if (rc == ETCD_OK && get_i64(rep, "deleted", &n) != 0)
		rc = bad_reply(e, "delete");
	if (rc == ETCD_OK && deleted != NULL)
		*deleted = n;
	cJSON_Delete(rep);
	return rc;
}

/* Leases ------------------------------------------------------------------ */

/* A lease call with {"ID": id} (and TTL when ttl > 0). */
static enum etcd_err
lease_call(struct etcd *e, const char *path, int64_t id, int64_t ttl,
    cJSON **rep)
{
	cJSON *req = cJSON_CreateObject();
	enum etcd_err rc;

	if (req == NULL || add_i64(req, "ID", id) != 0 ||
	    (ttl > 0 && add_i64(req, "TTL", ttl) != 0)) {
		cJSON_Delete(req);
		return oom(e);
	}
	rc = call(e, path, req, rep);
	cJSON_Delete(req);
	return rc;
}

enum etcd_err
etcd_lease_grant(struct etcd *e, int64_t ttl, int64_t *id, int64_t *granted)
{
	cJSON *rep = NULL;
	const cJSON *msg;
	enum etcd_err rc;

	if (ttl < 1) {
		e->err[0] = '\0';
		errf(e, "lease TTL below 1 s");
		return ETCD_E_REFUSED;
	}
	rc = lease_call(e, "/v3/lease/grant", 0, ttl, &rep);
	if (rc == ETCD_OK) {
		msg = cJSON_GetObjectItemCaseSensitive(rep, "error");
		if (cJSON_IsString(msg) && msg->valuestring[0] != '\0') {
			errf(e, "%s: %s", e->ep[e->cur], msg->valuestring);
			rc = ETCD_E_REFUSED;
		} else if (get_i64(rep, "ID", id) != 0 ||
		    get_i64(rep, "TTL", granted) != 0 || *id == 0 ||
		    *granted < 1) {
			rc = bad_reply(e, "lease grant");
		}
	}
	cJSON_Delete(rep);
	return rc;
}

enum etcd_err
etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl)
{
	cJSON *rep = NULL;
	const cJSON *res;
	enum etcd_err rc;

	*ttl = 0;
	rc = lease_call(e, "/v3/lease/keepalive", id, 0, &rep);
	if (rc == ETCD_OK) {
		/* A stream of one: {"result": LeaseKeepAliveResponse}.  No
		 * TTL (zero) means the lease is gone. */
		res = cJSON_GetObjectItemCaseSensitive(rep, "result");
		if (!cJSON_IsObject(res) || get_i64(res, "TTL", ttl) != 0 ||
		    *ttl < 0)
			rc = bad_reply(e, "lease keepalive");
	}
	cJSON_Delete(rep);
	return rc;
}

enum etcd_err
etcd_lease_revoke(struct etcd *e, int64_t id)
{
	cJSON *rep = NULL;
	enum etcd_err rc = lease_call(e, "/v3/lease/revoke", id, 0, &rep);

	cJSON_Delete(rep);
	if (rc == ETCD_E_REFUSED && e->code == GRPC_NOT_FOUND)
		rc = ETCD_OK; /* already gone */
	return rc;
}

enum etcd_err
etcd_lease_ttl(struct etcd *e, int64_t id, int64_t *ttl, int64_t *granted)
{
	cJSON *rep = NULL;
	enum etcd_err rc = lease_call(e, "/v3/lease/timetolive", id, 0, &rep);

	if (rc == ETCD_OK &&
	    (get_i64(rep, "TTL", ttl) != 0 ||
		get_i64(rep, "grantedTTL", granted) != 0))
		rc = bad_reply(e, "lease time-to-live");
	cJSON_Delete(rep);
	return rc;
}

/* Transactions ------------------------------------------------------------ */

/*
 * etcd's size check is on its own protobuf encoding of the request: each
 * field costs a tag and a length of a few bytes, each operation a few
 * nested messages.  64 bytes per operation beyond its key and value is
 * above what etcd 3.4 adds, and ETCD_TXN_BASE_SIZE covers the request
 * header (id, user name) etcd wraps around it.
 */
#define OP_OVERHEAD 64

size_t
etcd_txn_op_size(size_t key_len, size_t value_len)
{
	return key_len + value_len + OP_OVERHEAD;
}

struct etcd_txn *
etcd_txn_new(void)
{
	struct etcd_txn *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->size = ETCD_TXN_BASE_SIZE;
	if ((t->root = cJSON_CreateObject()) == NULL ||
	    (t->cmp = cJSON_AddArrayToObject(t->root, "compare")) == NULL ||
	    (t->succ = cJSON_AddArrayToObject(t->root, "success")) == NULL ||
	    (t->fail = cJSON_AddArrayToObject(t->root, "failure")) == NULL) {
		etcd_txn_free(t);
		return NULL;
	}
	return t;
}

void
etcd_txn_free(struct etcd_txn *t)
{
	if (t == NULL)
		return;
	cJSON_Delete(t->root);
	free(t);
}

static const char *const target_name[] = {
    [ETCD_VERSION] = "VERSION",
    [ETCD_CREATE] = "CREATE",
    [ETCD_MOD] = "MOD",
    [ETCD_VALUE] = "VALUE",
    [ETCD_LEASE] = "LEASE",
};

static const char *const target_field[] = {
    [ETCD_VERSION] = "version",
    [ETCD_CREATE] = "create_revision",
    [ETCD_MOD] = "mod_revision",
    [ETCD_VALUE] = "value",
    [ETCD_LEASE] = "lease",
};

static const char *const cmp_name[] = {
    [ETCD_EQUAL] = "EQUAL",
    [ETCD_GREATER] = "GREATER",
    [ETCD_LESS] = "LESS",
    [ETCD_NOT_EQUAL] = "NOT_EQUAL",
};

/* A new compare object in t, or NULL (t marked failed). */
static cJSON *
new_compare(struct etcd_txn *t, const char *key, enum etcd_target target,
    enum etcd_cmp cmp)
{
	cJSON *c = cJSON_CreateObject();

	if (c == NULL || !cJSON_AddItemToArray(t->cmp, c)) {
		cJSON_Delete(c);
		t->failed = true;
		return NULL;
	}
	if (add_b64(c, "key", key, strlen(key)) != 0 ||
	    cJSON_AddStringToObject(c, "target", target_name[target]) == NULL ||
	    cJSON_AddStringToObject(c, "result", cmp_name[cmp]) == NULL) {
		t->failed = true;
		return NULL;
	}
	t->ncmp++;
	return c;
}

int
etcd_txn_compare(struct etcd_txn *t, const char *key, enum etcd_target target,
    enum etcd_cmp cmp, int64_t n)
{
	cJSON *c;

	if (target == ETCD_VALUE) {
		t->failed = true;
		return -1;
	}
	if ((c = new_compare(t, key, target, cmp)) == NULL ||
	    add_i64(c, target_field[target], n) != 0) {
		t->failed = true;
		return -1;
	}
	t->size += etcd_txn_op_size(strlen(key), 0);
	return 0;
}

int
etcd_txn_compare_value(struct etcd_txn *t, const char *key, enum etcd_cmp cmp,
    const void *value, size_t len)
{
	cJSON *c;

	if ((c = new_compare(t, key, ETCD_VALUE, cmp)) == NULL ||
	    add_b64(c, "value", value, len) != 0) {
		t->failed = true;
		return -1;
	}
	t->size += etcd_txn_op_size(strlen(key), len);
	return 0;
}

/* Append {kind: {}} to a branch; returns the inner object or NULL. */
static cJSON *
new_op(struct etcd_txn *t, bool on_success, const char *kind)
{
	cJSON *op = cJSON_CreateObject(), *in;

	if (op == NULL ||
	    !cJSON_AddItemToArray(on_success ? t->succ : t->fail, op)) {
		cJSON_Delete(op);
		t->failed = true;
		return NULL;
	}
	if ((in = cJSON_AddObjectToObject(op, kind)) == NULL) {
		t->failed = true;
		return NULL;
	}
	if (on_success)
		t->nsucc++;
	else
		t->nfail++;
	return in;
}

int
etcd_txn_put(struct etcd_txn *t, bool on_success, const char *key,
    const void *value, size_t len, int64_t lease)
{
	cJSON *o = new_op(t, on_success, "request_put");

	if (o == NULL || add_b64(o, "key", key, strlen(key)) != 0 ||
	    add_b64(o, "value", value, len) != 0 ||
	    (lease != 0 && add_i64(o, "lease", lease) != 0)) {
		t->failed = true;
		return -1;
	}
	t->size += etcd_txn_op_size(strlen(key), len);
	return 0;
}

/* A delete or range operation on key (and below it, with prefix). */
static int
txn_key_op(struct etcd_txn *t, bool on_success, const char *kind,
    const char *key, bool prefix)
{
	cJSON *o = new_op(t, on_success, kind);

	if (o == NULL ||
	    add_key_range(o, key, false, prefix ? key : NULL) != 0) {
		t->failed = true;
		return -1;
	}
	t->size += etcd_txn_op_size(strlen(key), prefix ? strlen(key) : 0);
	return 0;
}

int
etcd_txn_delete(struct etcd_txn *t, bool on_success, const char *key,
    bool prefix)
{
	return txn_key_op(t, on_success, "request_delete_range", key, prefix);
}

int
etcd_txn_range(struct etcd_txn *t, bool on_success, const char *key,
    bool prefix)
{
	return txn_key_op(t, on_success, "request_range", key, prefix);
}

size_t
etcd_txn_ops(const struct etcd_txn *t)
{
	size_t n = t->ncmp;

	if (t->nsucc > n)
		n = t->nsucc;
	return t->nfail > n ? t->nfail : n;
}

size_t
etcd_txn_size(const struct etcd_txn *t)
{
	return t->size;
}

void
etcd_txn_result_clear(struct etcd_txn_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n; i++)
		etcd_range_clear(&res->ranges[i]);
	free(res->ranges);
	memset(res, 0, sizeof(*res));
}

/* One ResponseOp into r: a range's keys, a delete's count in r->count. */
static int
parse_response_op(const cJSON *op, struct etcd_range *r)
{
	const cJSON *in;

	memset(r, 0, sizeof(*r));
	if ((in = cJSON_GetObjectItemCaseSensitive(op, "response_range")) !=
	    NULL)
		return cJSON_IsObject(in) ? parse_range(in, r) : -1;
	if ((in = cJSON_GetObjectItemCaseSensitive(op,
		 "response_delete_range")) != NULL)
		return cJSON_IsObject(in) ? get_i64(in, "deleted", &r->count)
					  : -1;
	if ((in = cJSON_GetObjectItemCaseSensitive(op, "response_put")) != NULL)
		return cJSON_IsObject(in) ? 0 : -1;
	return -1;
}

enum etcd_err
etcd_txn_commit(struct etcd *e, const struct etcd_txn *t,
    struct etcd_txn_result *res)
{
	cJSON *rep = NULL;
	const cJSON *resps, *op;
	enum etcd_err rc;
	size_t n = 0;

	memset(res, 0, sizeof(*res));
	if (t->failed)
		return oom(e);
	rc = call(e, "/v3/kv/txn", t->root, &rep);
	if (rc != ETCD_OK)
		goto out;
	resps = cJSON_GetObjectItemCaseSensitive(rep, "responses");
	if (get_bool(rep, "succeeded", &res->succeeded) != 0 ||
	    get_revision(rep, &res->revision) != 0 ||
	    (resps != NULL && !cJSON_IsArray(resps)) ||
	    (size_t)cJSON_GetArraySize(resps) !=
		(res->succeeded ? t->nsucc : t->nfail)) {
		rc = bad_reply(e, "txn");
		goto out;
	}
	if (cJSON_GetArraySize(resps) > 0) {
		res->ranges = calloc((size_t)cJSON_GetArraySize(resps),
		    sizeof(*res->ranges));
		if (res->ranges == NULL) {
			rc = oom(e);
			goto out;
		}
	}
	cJSON_ArrayForEach(op, resps)
	{
		res->n = n + 1;
		if (parse_response_op(op, &res->ranges[n++]) != 0) {
			rc = bad_reply(e, "txn");
			goto out;
		}
	}
out:
	if (rc != ETCD_OK)
		etcd_txn_result_clear(res);
	cJSON_Delete(rep);
	return rc;
}
