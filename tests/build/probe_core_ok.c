/* Compiled with src/core's include path: core headers are in reach. */
#include "core/limits.h"

int probe_core_ok(void);

int
probe_core_ok(void)
{
	return MQL_LOCK_ID_MAX;
}
