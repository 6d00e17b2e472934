/*
 * mqlockd: the mqlock coordinator.  Parses flags and runs the loop.
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

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
		return EX_USAGE;
	case CONFIG_OK:
	default:
		break;
	}
	log_set_level(cfg.log_level);
	rc = cfg.check ? check_run(&cfg, stdout) : coord_run(&cfg);
	explicit_bzero(&cfg.ticket_secret, sizeof(cfg.ticket_secret));
	return rc;
}
