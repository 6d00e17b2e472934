#include "io/leader.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/clock.h"
#include "io/log.h"

#define RETRY_DEFAULT_MS 500

struct leader {
	/* Fixed once the thread runs. */
	char key[LEADER_PREFIX_MAX + 8];
	char id[LEADER_ID_MAX + 1];
	int margin_ms, retry_ms;
	int64_t ttl_s;
	struct etcd *etcd; /* the thread's */
	pthread_t thread;
	bool started;
	int wake[2];

	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	/* Under mu. */
	bool stop;
	bool poke;     /* act now, not at the planned time */
	bool campaign; /* try to lead */
	bool ended;    /* the current term is over: the owner saw it end */
	int64_t hold_until;
	bool woken; /* the wake byte is in the pipe */
	struct leader_status st;

	/* The thread's alone. */
	int64_t lease;
	int64_t lease_ms;   /* its TTL as etcd last gave it */
	int64_t lease_sent; /* send time of its last grant or renewal */
	int64_t term;       /* 0: not leading */
	bool failing;       /* the last renewal failed */
	/*
	 * A lease we gave up but could not revoke (etcd did not answer).
	 * Left alone it would keep a leader key of ours alive until it
	 * expires: a full TTL after etcd is back, since a new etcd leader
	 * restarts the TTL of every lease.  Revoked as soon as etcd answers.
	 */
	int64_t stale_lease;
};

/* Under mu. */
static void
wake_set(struct leader *l)
{
	ssize_t n;

	if (l->woken)
		return;
	do
		n = write(l->wake[1], "", 1);
	while (n == -1 && errno == EINTR);
	l->woken = n == 1;
}

/* Under mu. */
static void
wake_clear(struct leader *l)
{
	char buf[16];

	while (read(l->wake[0], buf, sizeof(buf)) > 0)
		;
	l->woken = false;
}

/* Note whether etcd answered, with the reason when it did not.  Under mu. */
static void
note_etcd(struct leader *l, bool ok, const char *error)
{
	if (ok != l->st.etcd_ok) {
		l->st.etcd_ok = ok;
		l->st.etcd_since = clock_mono_ms();
		wake_set(l);
		if (ok)
			log_info("leader: etcd answers again");
		else
			log_warn("leader: etcd does not answer: %s", error);
	}
	if (!ok)
		snprintf(l->st.error, sizeof(l->st.error), "%s", error);
}

static void
note_result(struct leader *l, enum etcd_err rc)
{
	pthread_mutex_lock(&l->mu);
	/* Only an answer that says nothing came back counts as etcd lost;
	 * a refusal is an answer. */
	note_etcd(l, rc != ETCD_E_UNAVAILABLE && rc != ETCD_E_INTERNAL,
	    etcd_last_error(l->etcd));
	if (rc == ETCD_E_REFUSED || rc == ETCD_E_AUTH)
		snprintf(l->st.error, sizeof(l->st.error), "%s",
		    etcd_last_error(l->etcd));
	pthread_mutex_unlock(&l->mu);
}

/* Under mu: who leads, as seen. */
static void
note_leader(struct leader *l, const char *who, size_t len)
{
	char v[LEADER_ID_MAX + 1];
	size_t n = len < LEADER_ID_MAX ? len : LEADER_ID_MAX;

	/* Another process wrote it: keep it printable for logs and status. */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)who[i];

		v[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	v[n] = '\0';
	if (strcmp(v, l->st.leader) != 0) {
		memcpy(l->st.leader, v, sizeof(v));
		wake_set(l);
	}
}

/* Drop our lease (and with it the leader key, when it is ours). */
static void
drop_lease(struct leader *l)
{
	enum etcd_err rc;

	if (l->lease == 0)
		return;
	rc = etcd_lease_revoke(l->etcd, l->lease);
	if (rc != ETCD_OK)
		log_warn("leader: could not revoke lease %lld (it expires by "
			 "itself, or is revoked once etcd answers): %s",
		    (long long)l->lease, etcd_last_error(l->etcd));
	note_result(l, rc);
	if (rc == ETCD_E_UNAVAILABLE || rc == ETCD_E_INTERNAL)
		l->stale_lease = l->lease;
	l->lease = 0;
}

/* Revoke a lease given up while etcd did not answer (see stale_lease). */
static void
drop_stale_lease(struct leader *l)
{
	enum etcd_err rc;

	if (l->stale_lease == 0)
		return;
	rc = etcd_lease_revoke(l->etcd, l->stale_lease);
	note_result(l, rc);
	/* Revoked, or etcd says it is gone already (expired). */
	if (rc == ETCD_OK || rc == ETCD_E_REFUSED) {
		log_info("leader: revoked lease %lld, given up earlier",
		    (long long)l->stale_lease);
		l->stale_lease = 0;
	}
}

/* The term is over (lost, resigned, or seen ended by the owner). */
static void
end_term(struct leader *l, const char *why)
{
	int64_t term = l->term;

	pthread_mutex_lock(&l->mu);
	l->st.role = LEADER_STANDBY;
	l->st.term = 0;
	l->st.valid_until = 0;
	l->ended = false;
	wake_set(l);
	pthread_mutex_unlock(&l->mu);
	l->term = 0;
	l->failing = false;
	log_warn("leader: term %lld over: %s", (long long)term, why);
	/* A new term needs a new lease: whatever the owner did under the old
	 * one is over, and revoking it lets the next leader in at once. */
	drop_lease(l);
	pthread_mutex_lock(&l->mu);
	l->st.lease = 0;
	pthread_mutex_unlock(&l->mu);
}

/* Have a live lease (granting or renewing as needed).  0, or -1. */
static int
ensure_lease(struct leader *l, int64_t now)
{
	int64_t id, ttl, sent = clock_mono_ms();
	enum etcd_err rc;

	if (l->lease != 0 && now < l->lease_sent + l->lease_ms / 3)
		return 0;
	if (l->lease != 0) {
		rc = etcd_lease_keepalive(l->etcd, l->lease, &ttl);
		note_result(l, rc);
		if (rc != ETCD_OK)
			return -1;
		if (ttl > 0) {
			l->lease_sent = sent;
			l->lease_ms = ttl * 1000;
			return 0;
		}
		l->lease = 0; /* expired: a new one */
	}
	rc = etcd_lease_grant(l->etcd, l->ttl_s, &id, &ttl);
	note_result(l, rc);
	if (rc != ETCD_OK)
		return -1;
	l->lease = id;
	l->lease_sent = sent;
	l->lease_ms = ttl * 1000;
	pthread_mutex_lock(&l->mu);
	l->st.lease = id;
	pthread_mutex_unlock(&l->mu);
	return 0;
}

/* A term begins: term is the leader key's create_revision. */
static void
begin_term(struct leader *l, int64_t term)
{
	int64_t valid = l->lease_sent + l->lease_ms - l->margin_ms;

	l->term = term;
	l->failing = false;
	pthread_mutex_lock(&l->mu);
	l->st.role = LEADER_LEADING;
	l->st.term = term;
	l->st.valid_until = valid;
	l->st.last_sent = l->lease_sent;
	l->st.terms++;
	l->ended = false;
	note_leader(l, l->id, strlen(l->id));
	wake_set(l);
	pthread_mutex_unlock(&l->mu);
	log_info("leader: leading, term %lld, lease %lld", (long long)term,
	    (long long)l->lease);
}

/*
 * One attempt to lead (campaign) or to see who leads.  The transaction
 * creates the key only if absent; otherwise it reads it.
 */
static void
attempt(struct leader *l, bool campaign)
{
	struct etcd_txn *t = etcd_txn_new();
	struct etcd_txn_result res;
	enum etcd_err rc;
	const struct etcd_kv *kv;

	if (t == NULL ||
	    etcd_txn_compare(t, l->key, ETCD_CREATE, ETCD_EQUAL, 0) != 0 ||
	    (campaign &&
		etcd_txn_put(t, true, l->key, l->id, strlen(l->id), l->lease) !=
		    0) ||
	    etcd_txn_range(t, false, l->key, false) != 0) {
		log_error("leader: out of memory");
		etcd_txn_free(t);
		return;
	}
	rc = etcd_txn_commit(l->etcd, t, &res);
	etcd_txn_free(t);
	note_result(l, rc);
	if (rc != ETCD_OK)
		return;
	if (res.succeeded) {
		if (campaign)
			begin_term(l, res.revision);
		else {
			pthread_mutex_lock(&l->mu);
			note_leader(l, "", 0);
			pthread_mutex_unlock(&l->mu);
		}
	} else if (res.n == 1 && res.ranges[0].n == 1) {
		kv = &res.ranges[0].kvs[0];
		/*
		 * Our own key: an earlier attempt was applied but its answer
		 * was lost, and the request went to another member too.
		 */
		if (campaign && l->lease != 0 && kv->lease == l->lease)
			begin_term(l, kv->create_revision);
		else {
			pthread_mutex_lock(&l->mu);
			note_leader(l, kv->value, kv->value_len);
			pthread_mutex_unlock(&l->mu);
		}
	}
	etcd_txn_result_clear(&res);
}

/* Leading: renew the lease when due; check the key is still ours. */
static int64_t
renew(struct leader *l, int64_t now)
{
	int64_t sent, ttl, retry = l->lease_ms / 10;
	struct etcd_range r;
	enum etcd_err rc;
	bool alive;

	if (retry < 100)
		retry = 100;
	if (!l->failing && now < l->lease_sent + l->lease_ms / 3)
		return l->lease_sent + l->lease_ms / 3;
	sent = clock_mono_ms();
	rc = etcd_lease_keepalive(l->etcd, l->lease, &ttl);
	note_result(l, rc);
	if (rc != ETCD_OK) {
		l->failing = true;
		return clock_mono_ms() + retry;
	}
	if (ttl == 0) {
		end_term(l, "the lease expired or was revoked");
		return clock_mono_ms();
	}
	/*
	 * Extend only a term that is still valid now: one the owner may
	 * already have seen end stays ended (leader_check() marks it).
	 */
	pthread_mutex_lock(&l->mu);
	alive = !l->ended && clock_mono_ms() < l->st.valid_until;
	if (alive && sent + ttl * 1000 - l->margin_ms > l->st.valid_until) {
		l->st.valid_until = sent + ttl * 1000 - l->margin_ms;
		l->st.last_sent = sent;
	}
	pthread_mutex_unlock(&l->mu);
	if (!alive) {
		end_term(l, "renewed too late");
		return clock_mono_ms();
	}
	l->lease_sent = sent;
	l->lease_ms = ttl * 1000;
	l->failing = false;
	/* Someone may have deleted the key by hand: then the term is over
	 * although the lease lives. */
	rc = etcd_range(l->etcd, l->key, NULL, &r);
	note_result(l, rc);
	if (rc == ETCD_OK && (r.n != 1 || r.kvs[0].create_revision != l->term))
		alive = false;
	etcd_range_clear(&r);
	if (!alive) {
		end_term(l, "the leader key is gone or not ours");
		return clock_mono_ms();
	}
	return l->lease_sent + l->lease_ms / 3;
}

/* One round of work; returns when the next is due (monotonic ms). */
static int64_t
step(struct leader *l)
{
	int64_t now = clock_mono_ms(), hold;
	bool ended, campaign;

	pthread_mutex_lock(&l->mu);
	ended = l->term != 0 && (l->ended || now >= l->st.valid_until);
	campaign = l->campaign;
	hold = l->hold_until;
	pthread_mutex_unlock(&l->mu);
	if (ended) {
		end_term(l,
		    now >= l->st.valid_until ? "not renewed in time"
					     : "ended by its owner");
		now = clock_mono_ms();
	}
	if (l->term != 0)
		return renew(l, now);
	drop_stale_lease(l);
	if (!campaign || now < hold) {
		/* Not a candidate now: no lease, just watch. */
		drop_lease(l);
		attempt(l, false);
		return now < hold && hold < now + l->retry_ms
		    ? hold
		    : now + l->retry_ms;
	}
	if (ensure_lease(l, now) == 0)
		attempt(l, true);
	if (l->term != 0)
		return l->lease_sent + l->lease_ms / 3;
	return clock_mono_ms() + l->retry_ms;
}

static void *
run(void *arg)
{
	struct leader *l = arg;
	int64_t next = 0;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		int64_t now = clock_mono_ms();

		if (now < next && !l->poke) {
			struct timespec ts = clock_mono_in((int)(next - now));

			pthread_cond_timedwait(&l->cv, &l->mu, &ts);
			continue;
		}
		l->poke = false;
		pthread_mutex_unlock(&l->mu);
		next = step(l);
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
	if (l->term != 0)
		end_term(l, "stopping");
	drop_lease(l);
	return NULL;
}

static int
check_opts(const struct leader_opts *o, char *err, size_t errsz)
{
	size_t n;

	if (o->etcd == NULL) {
		snprintf(err, errsz, "leader: no etcd options");
		return -1;
	}
	if (o->prefix == NULL || strlen(o->prefix) > LEADER_PREFIX_MAX) {
		snprintf(err, errsz, "leader: key prefix must be 0-%d bytes",
		    LEADER_PREFIX_MAX);
		return -1;
	}
	n = o->id != NULL ? strlen(o->id) : 0;
	if (n == 0 || n > LEADER_ID_MAX) {
		snprintf(err, errsz, "leader: id must be 1-%d bytes",
		    LEADER_ID_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)o->id[i];

		if (c < 0x20 || c == 0x7f) {
			snprintf(err, errsz,
			    "leader: id has a control character");
			return -1;
		}
	}
	if (o->ttl_s < 2 || o->ttl_s > 3600) {
		snprintf(err, errsz, "leader: lease TTL must be 2-3600 s");
		return -1;
	}
	if (o->margin_ms < 0 || o->margin_ms >= o->ttl_s * 1000 / 3) {
		snprintf(err, errsz,
		    "leader: the safety margin must be at least 0 and below a "
		    "third of the lease (%d ms)",
		    o->ttl_s * 1000 / 3);
		return -1;
	}
	if (o->retry_ms < 0 || o->retry_ms > 60000) {
		snprintf(err, errsz, "leader: retry must be 0-60000 ms");
		return -1;
	}
	return 0;
}

/* A non-blocking, close-on-exec pipe. */
static int
make_pipe(int fd[2])
{
	if (pipe(fd) != 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		int fl = fcntl(fd[i], F_GETFL);

		if (fl == -1 || fcntl(fd[i], F_SETFL, fl | O_NONBLOCK) == -1 ||
		    fcntl(fd[i], F_SETFD, FD_CLOEXEC) == -1) {
			close(fd[0]);
			close(fd[1]);
			fd[0] = fd[1] = -1;
			return -1;
		}
	}
	return 0;
}

struct leader *
leader_new(const struct leader_opts *o, char *err, size_t errsz)
{
	struct leader *l;
	struct etcd_opts eo;
	pthread_condattr_t ca;
	int timeout;

	if (check_opts(o, err, errsz) != 0)
		return NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	l->wake[0] = l->wake[1] = -1;
	snprintf(l->key, sizeof(l->key), "%sleader", o->prefix);
	snprintf(l->id, sizeof(l->id), "%s", o->id);
	l->ttl_s = o->ttl_s;
	l->margin_ms = o->margin_ms;
	l->retry_ms = o->retry_ms > 0 ? o->retry_ms : RETRY_DEFAULT_MS;
	l->campaign = o->campaign;
	l->st.etcd_ok = true;
	l->st.etcd_since = clock_mono_ms();
	/* No request may take longer than a quarter of the lease. */
	eo = *o->etcd;
	timeout = eo.timeout_ms > 0 ? eo.timeout_ms : ETCD_DEFAULT_TIMEOUT_MS;
	if (timeout > o->ttl_s * 1000 / 4)
		timeout = o->ttl_s * 1000 / 4;
	eo.timeout_ms = timeout;
	if ((l->etcd = etcd_new(&eo, err, errsz)) == NULL) {
		free(l);
		return NULL;
	}
	if (make_pipe(l->wake) != 0) {
		snprintf(err, errsz, "leader: pipe: %s", strerror(errno));
		goto err;
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&l->thread, NULL, run, l) != 0) {
		snprintf(err, errsz, "leader: cannot start its thread");
		pthread_cond_destroy(&l->cv);
		pthread_mutex_destroy(&l->mu);
		goto err;
	}
	l->started = true;
	return l;
err:
	if (l->wake[0] != -1) {
		close(l->wake[0]);
		close(l->wake[1]);
	}
	etcd_free(l->etcd);
	free(l);
	return NULL;
}

void
leader_free(struct leader *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->thread, NULL);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	close(l->wake[0]);
	close(l->wake[1]);
	etcd_free(l->etcd);
	free(l);
}

bool
leader_check(struct leader *l, int64_t now, int64_t *term)
{
	bool leading;

	pthread_mutex_lock(&l->mu);
	leading = l->st.role == LEADER_LEADING && !l->ended &&
	    now < l->st.valid_until;
	if (leading && term != NULL)
		*term = l->st.term;
	if (!leading && l->st.role == LEADER_LEADING && !l->ended) {
		/* Seen over: it stays over, whatever a late renewal says. */
		l->ended = true;
		l->poke = true;
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	return leading;
}

int64_t
leader_deadline(struct leader *l)
{
	int64_t d = INT64_MAX;

	pthread_mutex_lock(&l->mu);
	if (l->st.role == LEADER_LEADING && !l->ended)
		d = l->st.valid_until;
	pthread_mutex_unlock(&l->mu);
	return d;
}

void
leader_status(struct leader *l, struct leader_status *out)
{
	pthread_mutex_lock(&l->mu);
	wake_clear(l);
	*out = l->st;
	if (l->ended) {
		out->role = LEADER_STANDBY;
		out->term = 0;
	}
	pthread_mutex_unlock(&l->mu);
}

int
leader_wake_fd(const struct leader *l)
{
	return l->wake[0];
}

void
leader_resign(struct leader *l, int hold_ms)
{
	pthread_mutex_lock(&l->mu);
	if (l->st.role == LEADER_LEADING)
		l->ended = true;
	l->hold_until = clock_mono_ms() + (hold_ms > 0 ? hold_ms : 0);
	l->poke = true;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

void
leader_resume(struct leader *l, bool campaign)
{
	pthread_mutex_lock(&l->mu);
	l->campaign = campaign;
	l->poke = true;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
}
