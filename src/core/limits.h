/*
 * limits.h: every protocol maximum, in one place.
 *
 * topics.md ("Limits") mirrors this file; change both together.  Lengths are
 * UTF-8 bytes and exclude the terminating NUL; the *_SZ companions size the
 * fixed buffers that hold them.
 */
#ifndef MQLOCK_CORE_LIMITS_H
#define MQLOCK_CORE_LIMITS_H

#define MQL_PROTOCOL_VERSION 1

#define MQL_LOCK_ID_MAX 128   /* one topic level */
#define MQL_CLIENT_ID_MAX 128 /* one topic level */
#define MQL_SESSION_MIN 16
#define MQL_SESSION_MAX 128
#define MQL_USER_MAX 128
#define MQL_REASON_MAX 256     /* admin break reason */
#define MQL_PAYLOAD_MAX 4096   /* request, will and admin payloads */
#define MQL_PREFIX_MAX 64      /* --prefix, one or more topic levels */
#define MQL_CORR_MAX 128       /* MQTT 5 correlation data echoed in replies */
#define MQL_RESP_TOPIC_MAX 512 /* MQTT 5 response topic */
#define MQL_UID_MAX 128        /* a ticket's "sub": the application's user id */
#define MQL_TICKET_MAX 2048    /* the "ticket" field of a request (a JWT) */

#define MQL_WAITERS_PER_LOCK 1024
#define MQL_LOCKS_PER_CLIENT 256
#define MQL_CLIENTS_PER_USER 256 /* --max-clients-per-user, at most */
#define MQL_OWNER_QUEUE_SHOWN 20 /* waiters listed in an owner message */

/* conn is a JSON number; beyond 2^53 doubles stop being exact integers. */
#define MQL_CONN_MAX 9007199254740991LL

/* MQL_STR(MQL_USER_MAX) is "128": limits spelled into messages. */
#define MQL_STR_(x) #x
#define MQL_STR(x) MQL_STR_(x)

#define MQL_LOCK_ID_SZ (MQL_LOCK_ID_MAX + 1)
#define MQL_CLIENT_ID_SZ (MQL_CLIENT_ID_MAX + 1)
#define MQL_SESSION_SZ (MQL_SESSION_MAX + 1)
#define MQL_USER_SZ (MQL_USER_MAX + 1)
#define MQL_REASON_SZ (MQL_REASON_MAX + 1)
#define MQL_UID_SZ (MQL_UID_MAX + 1)
#define MQL_TICKET_SZ (MQL_TICKET_MAX + 1)

#endif
