#include "core/idmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS 16

struct slot {
	const char *key; /* NULL: empty */
	void *value;
	uint64_t hash;
};

struct idmap {
	struct slot *slots;
	size_t nslots; /* a power of two */
	size_t count;
	struct mql_hasher hasher;
};

static uint64_t
hash_str(const struct idmap *m, const char *s)
{
	return mql_hash(&m->hasher, s);
}

struct idmap *
idmap_new(const struct mql_hasher *hasher)
{
	struct idmap *m;

	if (hasher == NULL || hasher->fn == NULL)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->hasher = *hasher;
	m->slots = calloc(MIN_SLOTS, sizeof(*m->slots));
	if (m->slots == NULL) {
		free(m);
		return NULL;
	}
	m->nslots = MIN_SLOTS;
	return m;
}

void
idmap_free(struct idmap *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m);
}

static size_t
find_slot(const struct idmap *m, const char *key, uint64_t h)
{
	size_t mask = m->nslots - 1;
	size_t i = (size_t)h & mask;

	while (m->slots[i].key != NULL) {
		if (m->slots[i].hash == h && strcmp(m->slots[i].key, key) == 0)
			return i;
		i = (i + 1) & mask;
	}
	return i;
}

void *
idmap_get(const struct idmap *m, const char *key)
{
	size_t i = find_slot(m, key, hash_str(m, key));

	return m->slots[i].key != NULL ? m->slots[i].value : NULL;
}

static int
grow(struct idmap *m)
{
	size_t n = m->nslots * 2;
	struct slot *old = m->slots;
	struct slot *s = calloc(n, sizeof(*s));

	if (s == NULL)
		return -1;
	m->slots = s;
	m->nslots = n;
	for (size_t i = 0; i < n / 2; i++) {
		if (old[i].key != NULL)
			m->slots[find_slot(m, old[i].key, old[i].hash)] =
			    old[i];
	}
	free(old);
	return 0;
}

int
idmap_put(struct idmap *m, const char *key, void *value)
{
	uint64_t h = hash_str(m, key);
	size_t i = find_slot(m, key, h);

	if (m->slots[i].key != NULL) {
		m->slots[i].key = key;
		m->slots[i].value = value;
		return 0;
	}
	/* Keep the load at or below 1/2 so probe runs stay short. */
	if ((m->count + 1) * 2 > m->nslots) {
		if (grow(m) != 0)
			return -1;
		i = find_slot(m, key, h);
	}
	m->slots[i].key = key;
	m->slots[i].value = value;
	m->slots[i].hash = h;
	m->count++;
	return 0;
}

void *
idmap_del(struct idmap *m, const char *key)
{
	size_t mask = m->nslots - 1;
	size_t i = find_slot(m, key, hash_str(m, key));
	size_t j;
	void *value;

	if (m->slots[i].key == NULL)
		return NULL;
	value = m->slots[i].value;
	/*
	 * Backward-shift deletion: move later members of the probe run into
	 * the hole when their home slot does not lie between the hole and
	 * them, so no tombstones are needed.
	 */
	j = i;
	for (;;) {
		size_t home;

		m->slots[i].key = NULL;
		for (;;) {
			j = (j + 1) & mask;
			if (m->slots[j].key == NULL) {
				m->count--;
				return value;
			}
			home = (size_t)m->slots[j].hash & mask;
			if (i <= j ? (home <= i || home > j)
				   : (home <= i && home > j))
				break;
		}
		m->slots[i] = m->slots[j];
		i = j;
	}
}

size_t
idmap_longest_run(const struct idmap *m)
{
	size_t mask = m->nslots - 1, longest = 0;

	for (size_t i = 0; i < m->nslots; i++) {
		if (m->slots[i].key != NULL) {
			size_t d =
			    (i - ((size_t)m->slots[i].hash & mask)) & mask;

			if (d > longest)
				longest = d;
		}
	}
	return longest;
}

size_t
idmap_count(const struct idmap *m)
{
	return m->count;
}

int
idmap_foreach(const struct idmap *m,
    int (*fn)(const char *key, void *value, void *arg), void *arg)
{
	for (size_t i = 0; i < m->nslots; i++) {
		if (m->slots[i].key != NULL) {
			int r = fn(m->slots[i].key, m->slots[i].value, arg);

			if (r != 0)
				return r;
		}
	}
	return 0;
}
