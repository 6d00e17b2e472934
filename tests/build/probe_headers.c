/*
 * Compiled with <getopt.h> and <syslog.h> included first: every shell
 * header, used with the system's names of the same words.
 */
#include "io/backoff.h"
#include "io/clock.h"
#include "io/log.h"
#include "io/loop.h"
#include "io/mqtt.h"
#include "io/net.h"
#include "io/secret.h"
#include "io/store.h"
#include "mqlockd/check.h"
#include "mqlockd/config.h"

int probe_headers(void);

int
probe_headers(void)
{
	struct option o = {"x", no_argument, 0, 'x'};

	return LOG_INFO + LOG_LEVEL_INFO + o.val;
}
