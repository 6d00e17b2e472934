/*
 * mqlockd: the mqlock coordinator.  Parses flags and runs the loop.
 */
#include <stdio.h>
#include <string.h>

#include "io/log.h"
#include "mqlockd/check.h"
#include "mqlockd/config.h"
#include "mqlockd/coord.h"

int
main(int argc, char **argv)
{
	struct config cfg;
	char err[512];
	int rc;

	/* The loop flushes the log before it announces anything, or sleeps. */
	log_hold();
	switch (config_parse(&cfg, argc, argv, err, sizeof(err))) {
	case CONFIG_EXIT:
		return 0;
	case CONFIG_ERROR:
		fprintf(stderr, "mqlockd: %s\n", err);
		return 64;
	case CONFIG_OK:
	default:
		break;
	}
	log_set_level(cfg.log_level);
	if (cfg.check)
		return check_run(&cfg, stdout);
	rc = coord_run(&cfg);
	explicit_bzero(&cfg.ticket_key, sizeof(cfg.ticket_key));
	return rc;
}
