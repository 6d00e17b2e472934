/*
 * clientid.h: which MQTT client ids an mqlock broker accepts.
 *
 * mqlockd puts a client's id into topics (P/_clients/<id>/events,
 * replies/<id>/...) and the broker's ACL puts it into patterns (%c).  An
 * id that is not a valid topic level would either widen those patterns
 * ("<victim>/x" reads replies/<victim>/x/...) or make the coordinator
 * publish on a topic the broker refuses.  So an id must be, by mosquitto's
 * own rules for topics and topics.md ("Names"):
 *
 *   - 1 to 128 bytes of valid UTF-8 (shortest form, no surrogates, at most
 *     U+10FFFF);
 *   - free of U+0000-U+001F and U+007F-U+009F (control characters) and of
 *     non-characters (U+FDD0-U+FDEF, and every code point whose low 16
 *     bits are FFFE or FFFF);
 *   - free of '/', '+' and '#';
 *   - not starting with '$'.
 *
 * Pure: no allocation, no I/O, so it is tested without a broker.
 */
#ifndef MQLOCK_BROKER_CLIENTID_H
#define MQLOCK_BROKER_CLIENTID_H

#include <stddef.h>

/* Longest client id, in bytes (one topic level; src/core/limits.h). */
#define CLIENTID_MAX 128

/*
 * clientid_valid(id, len): 1 if the len bytes at id are a client id that
 * the rules above accept, else 0.  id may hold any bytes (a NUL among them
 * makes it invalid); id NULL is invalid.
 */
int clientid_valid(const char *id, size_t len);

#endif
