/*
 * clientid.c: see clientid.h.
 */
#include "clientid.h"

#include <stdint.h>

/*
 * Decodes the UTF-8 sequence at s (n bytes left, n >= 1) into *cp and
 * returns its length, or 0 if it is not the shortest encoding of a scalar
 * value (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF).
 */
static size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t len, i;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0fu;
		if (s[0] == 0xe0)
			lo = 0xa0; /* overlong below U+0800 */
		else if (s[0] == 0xed)
			hi = 0x9f; /* U+D800-U+DFFF */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07u;
		if (s[0] == 0xf0)
			lo = 0x90; /* overlong below U+10000 */
		else if (s[0] == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else
		return 0;
	if (n < len)
		return 0;
	/* Only the second byte has the narrowed range. */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3fu);
	}
	*cp = c;
	return len;
}

/* A code point mosquitto refuses in a topic, or one of / + #. */
static int
refused(uint32_t c)
{
	if (c <= 0x1f || (c >= 0x7f && c <= 0x9f))
		return 1;
	if ((c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffeu) == 0xfffeu)
		return 1;
	return c == '/' || c == '+' || c == '#';
}

int
clientid_valid(const char *id, size_t len)
{
	const unsigned char *s = (const unsigned char *)id;
	size_t i, n;
	uint32_t c;

	if (id == NULL || len == 0 || len > CLIENTID_MAX || s[0] == '$')
		return 0;
	for (i = 0; i < len; i += n) {
		if ((n = utf8_decode(s + i, len - i, &c)) == 0 || refused(c))
			return 0;
	}
	return 1;
}
