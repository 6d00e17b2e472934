/* Compiled with src/core's include path: a shell header is out of reach. */
#include "core/limits.h"
#include "io/log.h"

int probe_core_io(void);

int
probe_core_io(void)
{
	return MQL_LOCK_ID_MAX;
}
