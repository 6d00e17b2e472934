#include "io/siphash.h"

#include <sodium.h>
#include <string.h>

_Static_assert(crypto_shorthash_KEYBYTES == 16, "SipHash keys are 16 bytes");

static unsigned char key[crypto_shorthash_KEYBYTES];
static int ready; /* 1: key drawn; -1: libsodium failed */

uint64_t
siphash_str(const void *k, const char *s, size_t len)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, (const unsigned char *)s, len, k);
	memcpy(&h, out, sizeof(h));
	return h;
}

struct mql_hasher
siphash_hasher(void)
{
	struct mql_hasher h = {NULL, NULL};

	if (ready == 0) {
		if (sodium_init() < 0) {
			ready = -1;
		} else {
			randombytes_buf(key, sizeof(key));
			ready = 1;
		}
	}
	if (ready == 1) {
		h.fn = siphash_str;
		h.key = key;
	}
	return h;
}
