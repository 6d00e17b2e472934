/*
 * ticket: the application's word for who a client is.
 *
 * A ticket is a JWT (RFC 7519) signed with HS256 under a secret the
 * application shares with mqlockd (--ticket-key).  Its claims: sub (the
 * application's user id), name (the name to show), client (the MQTT client
 * id it was issued for), exp (seconds since the epoch) and optionally locks
 * (the lock ids the user may lock).  libjwt checks the signature; this
 * module checks everything else and says which refusal of topics.md
 * applies.
 */
#ifndef MQLOCK_MQLOCKD_TICKET_H
#define MQLOCK_MQLOCKD_TICKET_H

#include <stddef.h>

#include "core/locktab.h"

/* The secret must be at least this long (HS256 wants 32 bytes). */
#define TICKET_KEY_MIN 32
#define TICKET_KEY_MAX 4096

struct ticket_key;

/*
 * ticket_key_new(bytes, len, err, errsz): a copy of the secret, which must
 * be TICKET_KEY_MIN..TICKET_KEY_MAX bytes.  Reading it from its file, and
 * the file's rules, are config's (--ticket-key).  NULL with a reason in err
 * on failure.  Free with ticket_key_free().
 */
struct ticket_key *ticket_key_new(const unsigned char *bytes, size_t len,
    char *err, size_t errsz);

/* ticket_key_free(k): wipe and free.  NULL is a no-op. */
void ticket_key_free(struct ticket_key *k);

/*
 * ticket_verify(k, ticket, client, lock, now, uid, name, why): does
 * `ticket` vouch for `client` acquiring `lock` at time now (ms)?  LT_OK
 * and the claims sub and name copied into uid and name; or
 * LT_ERR_TICKET_INVALID (not a JWT, not HS256, bad signature, a claim
 * missing or mistyped), LT_ERR_TICKET_EXPIRED, LT_ERR_TICKET_MISMATCH
 * (issued for another client id) or LT_ERR_TICKET_LOCK (lock not in its
 * locks), with a static reason in *why.
 */
enum lt_err ticket_verify(const struct ticket_key *k, const char *ticket,
    const char *client, const char *lock, lt_ms now, char uid[MQL_UID_SZ],
    char name[MQL_USER_SZ], const char **why);

#endif
