#include "io/backoff.h"

int64_t
backoff_next(struct backoff *b)
{
	int64_t d = b->next_ms;

	b->next_ms = d > b->max_ms / 2 ? b->max_ms : d * 2;
	return d;
}

void
backoff_reset(struct backoff *b)
{
	b->next_ms = b->min_ms;
}
