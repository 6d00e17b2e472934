/*
 * codec: MQTT topics and JSON payloads <-> the lock table's typed values.
 *
 * Everything that arrives from the network passes through here first:
 * bounded, validated, and turned into lt_* structs or a refusal with the
 * error code and message topics.md promises.  Encoders build the payloads
 * mqlockd and clients publish.  Pure: libc and cJSON only.
 */
#ifndef MQLOCK_CORE_CODEC_H
#define MQLOCK_CORE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"
#include "core/locktab.h"

/* The kinds of topic mqlockd listens to, below its prefix. */
enum codec_topic_kind {
	CODEC_T_REQUEST, /* P/<lock>/request, P/<lock>/request/<client> */
	CODEC_T_WILL,    /* P/_clients/<client>/will */
	CODEC_T_ADMIN,   /* P/_admin/command, P/_admin/command/<client> */
	CODEC_T_OTHER    /* anything else: ignore */
};

struct codec_topic {
	enum codec_topic_kind kind;
	bool id_valid; /* the <lock> or will's <client> level is valid */
	char id[MQL_LOCK_ID_SZ]; /* that level when id_valid, else "" */
	/*
	 * Bound topics end in the sender's client id (the production broker
	 * lets a connection write only there): the payload's client must be
	 * that one.
	 */
	bool bound;
	bool client_valid;             /* bound, and the level is valid */
	char client[MQL_CLIENT_ID_SZ]; /* that level when client_valid */
};

/* A refusal: what to tell the client, if it can be named. */
struct codec_error {
	enum lt_err code;
	const char *message;           /* static text */
	char client[MQL_CLIENT_ID_SZ]; /* "" when no valid client was named */
};

/* codec_utf8_valid(s, len): s[0..len) is well-formed UTF-8 (no overlongs,
 * no surrogates, nothing above U+10FFFF). */
bool codec_utf8_valid(const char *s, size_t len);

/*
 * codec_topic_text_valid(s, len): s[0..len) is text the broker accepts in
 * a topic (mosquitto's rule): well-formed UTF-8 without C0 or C1 control
 * characters (U+0000-U+001F, U+007F-U+009F) and without non-characters
 * (U+FDD0-U+FDEF, U+xxFFFE, U+xxFFFF).  Anything the coordinator publishes
 * on must pass, or the broker drops the coordinator.
 */
bool codec_topic_text_valid(const char *s, size_t len);

/* codec_lock_id_valid(s, len): a valid lock id (topics.md "Names"). */
bool codec_lock_id_valid(const char *s, size_t len);

/* codec_client_id_valid(s, len): a valid client id (topics.md "Names"). */
bool codec_client_id_valid(const char *s, size_t len);

/* codec_prefix_valid(s): a valid --prefix: 1..MQL_PREFIX_MAX bytes of
 * topic levels without wildcards, not starting or ending with '/'. */
bool codec_prefix_valid(const char *s);

/*
 * codec_parse_topic(prefix, topic, out): classify a topic mqlockd received.
 * Never fails: unknown shapes are CODEC_T_OTHER.
 */
void codec_parse_topic(const char *prefix, const char *topic,
    struct codec_topic *out);

/*
 * codec_topic(buf, size, prefix, a, b): write "prefix/a/b" (b may be NULL:
 * "prefix/a").  Returns 0, or -1 if it does not fit.
 */
int codec_topic(char *buf, size_t size, const char *prefix, const char *a,
    const char *b);

/*
 * codec_client_topic(buf, size, prefix, client, leaf): write
 * "prefix/_clients/client/leaf" (leaf: "will", "events" or "sync").
 * Returns 0, or -1 if it does not fit.
 */
int codec_client_topic(char *buf, size_t size, const char *prefix,
    const char *client, const char *leaf);

/*
 * codec_decode_request(payload, len, lock, bound, out, err): parse a
 * request published on the request topic of `lock` (already validated;
 * NULL when the topic's lock id is invalid), bound to client `bound`
 * (the topic's last level, already validated) or NULL for the unbound
 * topic.  Payloads over MQL_PAYLOAD_MAX bytes are refused unread.  Returns
 * LT_OK and fills out (uid empty: the shell verifies tickets), or an error
 * and fills err (err->client names whom to tell: the bound client, or a
 * valid "client" of the payload, or "").
 */
enum lt_err codec_decode_request(const void *payload, size_t len,
    const char *lock, const char *bound, struct lt_request *out,
    struct codec_error *err) __attribute__((warn_unused_result));

/* codec_decode_will(payload, len, client, out): a will of `client`. */
enum lt_err codec_decode_will(const void *payload, size_t len,
    const char *client, struct lt_will *out)
    __attribute__((warn_unused_result));

/*
 * codec_decode_admin(payload, len, kind, out, err): an admin command;
 * *kind is LT_EV_BREAK or LT_EV_PURGE.
 */
enum lt_err codec_decode_admin(const void *payload, size_t len,
    enum lt_event_kind *kind, struct lt_admin *out, struct codec_error *err)
    __attribute__((warn_unused_result));

/* What a status message says (topics.md "Coordinator status"). */
enum codec_tickets {
	CODEC_TICKETS_OFF,
	CODEC_TICKETS_OPTIONAL,
	CODEC_TICKETS_REQUIRED
};

struct codec_status {
	bool online;
	const char *version;
	lt_ms since;
	uint64_t epoch;
	const char *error; /* offline: why it stopped; NULL: none */
	lt_ms grace, idle_timeout, idle_warning;
	enum lt_idle_policy idle_policy;
	int64_t keepalive; /* s */
	enum codec_tickets tickets;
};

/*
 * Encoders.  Each returns a NUL-terminated JSON text the caller frees with
 * free(), or NULL when memory runs out.
 */

/* codec_encode_owner(rec): the owner message of rec (held or awaited). */
char *codec_encode_owner(const struct lt_lock_rec *rec);

/* codec_encode_event(fx): the event payload of an LT_FX_EVENT. */
char *codec_encode_event(const struct lt_fx *fx);

/*
 * codec_encode_reply(fx): the MQTT 5 reply payload of an LT_FX_REPLY (not
 * LT_R_STATE: see codec_encode_state).
 */
char *codec_encode_reply(const struct lt_fx *fx);

/*
 * codec_encode_state(lock, rec, now): the reply to a query about lock;
 * rec describes it, NULL when it is free with nobody waiting.
 */
char *codec_encode_state(const char *lock, const struct lt_lock_rec *rec,
    lt_ms now);

/* codec_encode_status(st): the status message. */
char *codec_encode_status(const struct codec_status *st);

/* codec_encode_request(req): a request payload (for clients and tests);
 * conn < 0 leaves "conn" out; user, session or ticket "" leaves it out. */
char *codec_encode_request(const struct lt_request *req);

/* codec_encode_will(session, conn): a will payload; conn < 0: no "conn". */
char *codec_encode_will(const char *session, int64_t conn);

/* Names for enum values, as on the wire. */
const char *codec_err_name(enum lt_err e);
const char *codec_event_name(enum lt_event_type e);
const char *codec_result_name(enum lt_result r);
const char *codec_reason_name(enum lt_reason r);
const char *codec_op_name(enum lt_op op);
const char *codec_idle_policy_name(enum lt_idle_policy p);

#endif
