/*
 * proto: the few payloads of topics.md a benchmark client writes and reads.
 *
 * Requests carry only what topics.md requires (op, client, session) plus a
 * user name.  Ids made by the benchmark are letters, digits and '-', so
 * they need no JSON escaping; proto_id_ok() says whether an id is such.
 */
#ifndef MQLOCK_BENCH_PROTO_H
#define MQLOCK_BENCH_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proto_op { PROTO_ACQUIRE, PROTO_RELEASE };

/* What an owner message or event says to the client reading it. */
enum proto_kind {
	PROTO_OTHER,   /* not for us, or nothing a workload waits for */
	PROTO_MINE,    /* owner message naming us, or a granted event */
	PROTO_FREE,    /* owner message with owner null */
	PROTO_QUEUED,  /* queued event */
	PROTO_REFUSED, /* error or busy event */
	PROTO_BAD      /* not the JSON topics.md describes */
};

/* proto_id_ok(s): 1..128 bytes of [A-Za-z0-9-]. */
bool proto_id_ok(const char *s);

/*
 * proto_request(buf, size, op, client, session): write the request JSON.
 * client and session must pass proto_id_ok().  Returns its length, or -1
 * if it does not fit.
 */
int proto_request(char *buf, size_t size, enum proto_op op, const char *client,
    const char *session);

/*
 * proto_owner(payload, len, me, &token): read an owner message.  PROTO_MINE
 * (token set) when its owner is client me, PROTO_FREE when the lock is
 * free (owner null, or an empty payload), PROTO_OTHER when someone else
 * holds it, PROTO_BAD otherwise.
 */
enum proto_kind proto_owner(const char *payload, size_t len, const char *me,
    uint64_t *token);

/*
 * proto_event(payload, len, lock, lsize, &token): read an event.
 * PROTO_MINE for granted (token and lock set), PROTO_QUEUED, PROTO_REFUSED
 * for error and busy (lock set, "" if null), PROTO_OTHER for the rest,
 * PROTO_BAD when malformed.  Queued events, which waiters get on every
 * hand-over, are recognised without parsing (lock is then not set).
 */
enum proto_kind proto_event(const char *payload, size_t len, char *lock,
    size_t lsize, uint64_t *token);

#endif
