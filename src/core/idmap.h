/*
 * idmap: a hash map from string ids to pointers.
 *
 * Keys are borrowed: the map stores the key pointer it was given, which must
 * stay valid and unchanged while the entry exists (the lock table points it
 * at the id inside the object the entry maps to).  Keys are hashed with a
 * keyed hash the caller supplies, so ids chosen by clients cannot be
 * crafted to collide.  Open addressing with
 * linear probing and backward-shift deletion, so lookups stay O(1) however
 * many entries come and go.
 */
#ifndef MQLOCK_CORE_IDMAP_H
#define MQLOCK_CORE_IDMAP_H

#include <stddef.h>

#include "core/hash.h"

struct idmap;

/*
 * idmap_new(hasher): an empty map that hashes keys with hasher (copied; its
 * key must outlive the map).  NULL when memory runs out or hasher is NULL.
 */
struct idmap *idmap_new(const struct mql_hasher *hasher);

/* idmap_free(m): free the map (not the keys or values).  NULL is a no-op. */
void idmap_free(struct idmap *m);

/* idmap_get(m, key): the value stored for key, or NULL. */
void *idmap_get(const struct idmap *m, const char *key);

/*
 * idmap_put(m, key, value): map key to value (value != NULL), replacing any
 * earlier value.  Returns 0, or -1 when memory runs out (m is unchanged).
 */
int idmap_put(struct idmap *m, const char *key, void *value);

/* idmap_del(m, key): remove key; returns its value, or NULL if absent. */
void *idmap_del(struct idmap *m, const char *key);

/*
 * idmap_longest_run(m): the longest distance of any entry from the slot
 * its hash names, i.e. the most probes a lookup takes.  For tests.
 */
size_t idmap_longest_run(const struct idmap *m);

/* idmap_count(m): the number of entries. */
size_t idmap_count(const struct idmap *m);

/*
 * idmap_foreach(m, fn, arg): call fn(key, value, arg) for every entry until
 * fn returns nonzero, which is then returned.  m must not change meanwhile.
 */
int idmap_foreach(const struct idmap *m,
    int (*fn)(const char *key, void *value, void *arg), void *arg);

#endif
