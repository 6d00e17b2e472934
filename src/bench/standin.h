/*
 * standin: an ideal stand-in coordinator, the yardstick for mqlockd.
 *
 * It subscribes to P/+/request and answers every acquire and release at
 * once, from Paho's callback, with the messages topics.md asks of a
 * coordinator: the retained owner message of the lock and the events
 * (granted, queued with the new positions).  It keeps only what deciding
 * needs (holder, FIFO queue, token counter) and does no more: no journal,
 * no sessions, limits, deadlines, wills or validation.  Whatever mqlockd
 * costs beyond it is the price of its journal and its checks.
 *
 * It runs as its own process ("mqlock-bench standin"), like mqlockd, with
 * its own Paho threads and TCP_NODELAY.
 */
#ifndef MQLOCK_BENCH_STANDIN_H
#define MQLOCK_BENCH_STANDIN_H

/*
 * standin_run(uri, prefix, client_id): connect to the broker at uri,
 * publish a retained online status on P/_coordinator/status (its will says
 * offline), serve until SIGTERM or SIGINT or until the parent process goes
 * away, and return the process exit code (0, or 1 after a failure, logged).
 */
int standin_run(const char *uri, const char *prefix, const char *client_id);

#endif
