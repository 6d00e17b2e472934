#include "core/hash.h"

#include <string.h>

uint64_t
mql_hash(const struct mql_hasher *h, const char *s)
{
	return h->fn(h->key, s, strlen(s));
}
