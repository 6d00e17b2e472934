/*
 * coord_int.h: what the coordinator's three parts share.
 *
 *   coord.c   set-up, the loop, the broker connection, epochs, and with
 *             etcd the leadership: standby, taking over, stepping down
 *   handle.c  inbound: one received message -> checks -> locktab_apply()
 *   send.c    outbound: commit a batch, then publish what it decided,
 *             paced by the broker's receive maximum; every publish passes
 *             the leadership gate (coord_may_publish()) first
 *
 * Everything here runs on the loop's thread only.
 */
#ifndef MQLOCK_MQLOCKD_COORD_INT_H
#define MQLOCK_MQLOCKD_COORD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/codec.h"
#include "core/locktab.h"
#include "io/backoff.h"
#include "io/journal.h"
#include "io/leader.h"
#include "io/mqtt.h"
#include "mqlockd/config.h"

#define TOPIC_MAX (MQL_PREFIX_MAX + MQL_CLIENT_ID_MAX + 32)
/* Messages handled per batch, i.e. per journal commit. */
#define BATCH_MAX 1024

/* Where the reply to one tagged event goes (MQTT 5 response topic). */
struct reply {
	char *topic; /* NULL: no reply wanted, or none allowed */
	void *corr;
	size_t corr_len;
};

/* One publish waiting for room in the broker's receive window. */
struct outmsg {
	struct outmsg *next;
	char *topic;
	char *payload; /* NUL-terminated; len bytes count */
	size_t len;
	int retain;
	struct reply props; /* response topic and correlation, or none */
	/* A status: 1 offline saying why (an error), 0 any other; -1 none. */
	int status;
};

struct coord {
	const struct config *cfg;
	struct lt_config lc;
	/* NULL while this mqlockd does not serve (a standby, with etcd). */
	struct locktab *tab;
	struct ratelimit *rate;
	struct ratelimit *refusals; /* error events for refused input */
	struct journal *journal;
	/*
	 * With etcd: who leads.  term is the term this process serves in
	 * (its table was loaded in it, its broker connection made in it), 0
	 * for a standby.  Nothing is published unless leader_check() says
	 * this process leads in that same term (coord_may_publish()).
	 */
	struct leader *leader;
	int64_t term;
	bool term_over;        /* the gate found it over: step down now */
	bool held;             /* a batch is decided, not yet durable */
	const char *epoch_due; /* an epoch must begin first (why) */
	int64_t retry_at;      /* monotonic ms: try etcd again; 0: none */
	bool etcd_down;        /* etcd does not answer: nothing is announced */
	/*
	 * The last status handed to the broker on this connection is offline
	 * with its reason: stepping down then leaves it in place (a normal
	 * DISCONNECT) rather than letting the will replace it.
	 */
	bool status_says_why;
	struct mqtt_in *stash; /* a connection change waiting for the journal */
	char *etcd_password;
	char seen_leader[LEADER_ID_MAX + 1]; /* standby: who leads, as logged */
	struct mqtt *mqtt;
	const struct mqtt_sub *subs; /* made on every connect */
	size_t nsubs;
	char *password;                  /* the broker password, NULL: none */
	struct ticket_key *ticket_key;   /* NULL: tickets are not checked */
	enum lt_idle_policy idle_policy; /* the lock table's, for the status */
	struct lt_fxlist fx;
	/* The batch's replies: the event tagged t answers to replies[t-1]. */
	struct reply *replies;
	size_t nreplies, capreplies;
	uint64_t epoch;
	bool connected;
	lt_ms online_since;     /* wall ms the current online status began */
	int64_t offline_since;  /* monotonic ms the broker was lost; 0: no */
	int64_t reconnect_at;   /* monotonic ms; 0: none pending */
	struct backoff backoff; /* broker reconnects */
	int64_t rollcall_at;    /* monotonic ms of the last roll call begun */
	bool want_rollcall;     /* a full table or a broker drop asks one */
	const char *rollcall_why;
	uint64_t sys_dropped;   /* the broker's drop counter, last seen */
	bool sys_dropped_known; /* since this connection began */
	/* Publishes waiting for room, oldest first. */
	struct outmsg *outq, **outq_tail;
	size_t noutq;
	size_t window; /* QoS 1 publishes in flight at most: receive max */
	/*
	 * Owner messages still to republish: the ids of every lock when the
	 * republish began, NUL-separated, and how far it got.
	 */
	char *rp_ids;
	size_t rp_len, rp_cap, rp_off;
	char status_topic[TOPIC_MAX];
	char sys_topic[64];
};

/* ---- coord.c ---- */

/*
 * coord_may_publish(d): whether a message may be handed to the broker
 * now: always without etcd; with etcd only while leader_check() says this
 * process leads in d->term, asked at this moment.  When not, d->term_over
 * is set and the loop steps down before doing anything else.
 */
bool coord_may_publish(struct coord *d);

/* ---- send.c ---- */

/*
 * send_flush(d): end of a batch: commit what changed, then (and only then)
 * queue what it decided for publishing.  Returns a journal_rc: JOURNAL_OK
 * once published; JOURNAL_UNAVAILABLE with the batch kept as it is (the
 * table, its effects and replies), to be flushed again; JOURNAL_FENCED or
 * JOURNAL_BROKEN (also when memory ran out while deciding) with nothing
 * announced: the caller must stop leading, or stop.
 */
int send_flush(struct coord *d);

/*
 * send_status_text(d, online, since, error): the status message (topics.md
 * "Status"), malloc'd; NULL when out of memory.
 */
char *send_status_text(const struct coord *d, bool online, lt_ms since,
    const char *error);

/* send_status(d, online, since, error): publish the retained status. */
void send_status(struct coord *d, bool online, lt_ms since, const char *error);

/*
 * send_publish(d, topic, payload, retain, props): publish (QoS 1) or queue
 * until the receive window has room.  Takes payload (malloc'd; NULL is
 * logged as out of memory); copies topic and props.
 */
void send_publish(struct coord *d, const char *topic, char *payload, int retain,
    const struct reply *props);

/*
 * send_pump(d): publish queued messages while the window has room; then
 * republish owner messages (after a (re)connect) while it still has.
 * Returns true when work is left and there is room for it now (call again
 * without sleeping); false when nothing is left, or when the loop may
 * sleep because MQTT_IN_DRAINED will wake it once room opens.
 */
bool send_pump(struct coord *d);

/* send_backlog(d): publishes waiting: input should wait while it is high. */
size_t send_backlog(const struct coord *d);

/* send_republish_begin(d): publish every owner message again, in slices. */
void send_republish_begin(struct coord *d);

/* send_drop_queue(d): the connection is gone: forget what was queued. */
void send_drop_queue(struct coord *d);

/* send_clear_replies(d): forget the batch's reply slots. */
void send_clear_replies(struct coord *d);

/* ---- handle.c ---- */

/* handle_message(d, in): one message from the broker, into the batch. */
void handle_message(struct coord *d, struct mqtt_in *in);

/*
 * handle_apply(d, ev, what): apply ev now, logging a refusal as `what`.
 * The effects go into d->fx.
 */
void handle_apply(struct coord *d, struct lt_event *ev, const char *what);

#endif
