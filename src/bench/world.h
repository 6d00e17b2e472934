/*
 * world: the broker and the two coordinators a benchmark runs against.
 *
 * With spawn on, world_start() makes a temporary directory, starts its own
 * mosquitto on a free 127.0.0.1 port (generated config: set_tcp_nodelay,
 * max_queued_messages 0, max_inflight_messages as asked, no persistence),
 * mqlockd with its journal in that directory (topic prefix "mqlockd") and
 * the stand-in (prefix "standin"), and waits until both publish an online
 * status.  Without spawn it uses a broker and an mqlockd already running and
 * starts only the stand-in.  Both coordinators serve the same broker at the
 * same time, so a workload can alternate between them.
 *
 * With etcd set (spawn only), the two coordinators are both mqlockd: the
 * first ("etcd", prefix "etcd") keeps its journal and leadership in the
 * etcd cluster at those endpoints, the second ("sqlite", prefix "sqlite")
 * in the temporary directory, each with a client id of its own.
 */
#ifndef MQLOCK_BENCH_WORLD_H
#define MQLOCK_BENCH_WORLD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum world_coord { W_MQLOCKD, W_STANDIN, W_NCOORD };

struct world_opts {
	bool spawn;
	bool keep;                /* leave the temporary directory */
	const char *dir;          /* parent of the temporary directory */
	const char *mosquitto;    /* path */
	const char *mqlockd;      /* path */
	const char *mqlockd_args; /* extra flags, separated by spaces */
	const char *self;         /* this program, to run the stand-in */
	int inflight;             /* max_inflight_messages */
	const char *broker;       /* !spawn: the broker's URI */
	const char *prefix;       /* !spawn: mqlockd's topic prefix */
	pid_t mqlockd_pid;        /* !spawn: its pid for CPU figures, or 0 */
	const char *etcd;         /* endpoints: compare etcd with sqlite */
};

struct world;

/* world_start(o): start everything and wait until it serves.  NULL (logged,
 * everything started is stopped again) on failure. */
struct world *world_start(const struct world_opts *o);

/* world_stop(w): stop what w started, remove its directory, free w.
 * NULL is a no-op. */
void world_stop(struct world *w);

/* The broker URI, a coordinator's topic prefix and its process id (0 if
 * unknown), mosquitto's process id (0 without spawn). */
const char *world_uri(const struct world *w);
const char *world_prefix(const struct world *w, enum world_coord c);
pid_t world_pid(const struct world *w, enum world_coord c);
pid_t world_broker_pid(const struct world *w);

/* The name of a coordinator: "mqlockd" or "standin" ("etcd" or
 * "sqlite" in a world started with etcd). */
const char *world_name(enum world_coord c);

/* world_etcd(w): the etcd endpoints it was started with, or NULL. */
const char *world_etcd(const struct world *w);

/* world_dir(w): the temporary directory (logs, journal), or NULL. */
const char *world_dir(const struct world *w);

/* world_alive(w): 1 while every process w started still runs. */
int world_alive(struct world *w);

/*
 * world_restart(w, c, timeout_ms, &spawned_ns, &online_ns): kill -9
 * coordinator c, wait for its offline will, start it again (mqlockd on the
 * same journal; the stand-in empty), and wait up to timeout_ms for an
 * online status with a higher epoch.  Reports when the new process was
 * started and when its status arrived (stats_now_ns()).  Returns 0, or -1
 * (logged).  mqlockd needs spawn.
 */
int world_restart(struct world *w, enum world_coord c, int timeout_ms,
    uint64_t *spawned_ns, uint64_t *online_ns);

#endif
