/*
 * chaoslib.h: what the chaos programs (tests/chaos/chaos.c, and
 * tests/ha/chaos_ha.c with etcd) share: the run's directory and fault
 * log, the servers (mosquitto and mqlockd) and the `mqlock acquire`
 * clients they start and signal, the recorder of owner messages, events
 * and statuses, the grant bookkeeping and the checks that read the
 * commands' logs.
 *
 * One run per process: the state lives here, behind these functions, from
 * chaos_init() to chaos_verdict().  Call them from the main thread, except
 * chaos_rec_publish(), chaos_rec_count() and chaos_rec_get(), which any
 * thread may call.  Fatal trouble (a server that will not start, no
 * memory) ends the process through chaos_die(), which kills every child
 * first.
 *
 * Failed checks are counted against check numbers: CHAOS_C_* below, then
 * each program's own from CHAOS_NSHARED on.  A program names all of them
 * in chaos_opts.check_names.
 */
#ifndef MQLOCK_TESTS_CHAOSLIB_H
#define MQLOCK_TESTS_CHAOSLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include <MQTTAsync.h>

/* mqlockd's and mqlock's settings in every chaos run. */
#define CHAOS_PREFIX "locks"
#define CHAOS_GRACE_S 2
#define CHAOS_COORD_KEEPALIVE_S 2
#define CHAOS_CLIENT_KEEPALIVE_S 5 /* mqlock --keepalive */
#define CHAOS_IDLE_S 30
/* The recorder's MQTT client id, as mosquitto's log shows it. */
#define CHAOS_REC_ID "chaos-recorder"

/* The checks the library itself counts failures against. */
enum chaos_check {
	CHAOS_C_ONE_GRANT,   /* a token is one lock and one client */
	CHAOS_C_TOKENS_RISE, /* new tokens increase (the programs check) */
	CHAOS_C_OWNER_ORDER, /* per lock, owner messages never go back */
	CHAOS_C_FENCING,     /* resources written in token order */
	CHAOS_C_NO_CRASH,    /* exits we caused only; no sanitizer report */
	CHAOS_C_CLI_EXIT,    /* mqlock exits 0 only if its lock stayed */
	CHAOS_NSHARED
};

struct chaos_opts {
	const char *name; /* "chaos": messages start with it */
	const char *stem; /* the directory: $TMPDIR/<stem>-XXXXXX */
	int workers;      /* client slots */
	int locks;        /* L0 .. L<locks-1> */
	int max_iters;    /* clients per slot, at most */
	/* Each client: mqlock --wait 1..max_wait_s; three in four run a
	 * command of 50..cmd_max_ms with 1-3 writes, the rest one of
	 * long_min_ms..long_max_ms with long_writes_min..max writes. */
	int max_wait_s, cmd_max_ms;
	int long_min_ms, long_max_ms, long_writes_min, long_writes_max;
	int respawn_max_ms; /* a slot starts its next client 0..this later */
	/* mosquitto logs everything (log_type all) into mosquitto.log, with
	 * epoch seconds, its stdout going to mosquitto.out; else notices and
	 * up, timestamped %H:%M:%S, on stdout into mosquitto.log. */
	int broker_log_all;
	const char *const *check_names; /* nchecks names, by check number */
	int nchecks;
	/* Recorder: one more topic filter (NULL: none), and a hook that sees
	 * each message first, on Paho's thread (NULL: none). */
	const char *rec_filter;
	void (*rec_hook)(const char *topic, const MQTTAsync_message *m,
	    long long at);
	/* chaos_kill_everything(): stops what else the program started
	 * (NULL: nothing); called last. */
	void (*at_kill)(void);
};

/* Run --------------------------------------------------------------------- */

/*
 * chaos_init(o): start a run: SIGPIPE ignored, this process made the
 * subreaper of orphaned commands, a fresh directory made and faults.log
 * opened in it, the random sequence seeded from CHAOS_SEED (or the clock).
 * o (and what it points to) must outlive the run.  Dies on failure.
 */
void chaos_init(const struct chaos_opts *o);

/* The run's directory; the seed it began with. */
const char *chaos_dir(void);
uint64_t chaos_seed(void);

/* The broker's URI, tcp://127.0.0.1:<port>, once it first started. */
const char *chaos_uri(void);

/*
 * chaos_path(name): dir/name in one of 8 rotating static buffers: valid
 * until the eighth call after.
 */
const char *chaos_path(const char *name);

/* chaos_note(fmt, ...): a line in faults.log, stamped with wall ms. */
void chaos_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* chaos_append_line(name, line): line appended to dir/name; best effort. */
void chaos_append_line(const char *name, const char *line);

/*
 * chaos_die(fmt, ...): print "<name>: " and the message, kill every child
 * (chaos_kill_everything), say the directory is kept, exit 1.
 */
void chaos_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* chaos_rnd(): the next number of the run's seeded sequence. */
uint64_t chaos_rnd(void);

/* chaos_rnd_in(lo, hi): a uniform integer in [lo, hi], lo <= hi. */
long long chaos_rnd_in(long long lo, long long hi);

/* JSON ------------------------------------------------------------------ */

/* chaos_jstr(o, name): the string member name of o, or NULL. */
const char *chaos_jstr(const cJSON *o, const char *name);

/* chaos_jint(o, name): the number member name of o, or -1. */
long long chaos_jint(const cJSON *o, const char *name);

/* Servers ----------------------------------------------------------------- */

enum chaos_srv_state {
	CHAOS_DOWN,     /* not running (never started, or reaped) */
	CHAOS_UP,       /* running, not told to stop */
	CHAOS_STOPPING, /* sent SIGTERM or SIGKILL, not yet reaped */
};

/* mosquitto or one mqlockd.  Set name (and id) before its first start. */
struct chaos_server {
	char name[32];
	char id[32]; /* mqlockd in HA: its etcd id this start; "" none */
	pid_t pid;
	enum chaos_srv_state state;
	int sent;             /* SIGTERM or SIGKILL we sent, 0: none */
	long long restart_at; /* DOWN: due to start again (chaos_reap) */
	int restart_max_ms;   /* due 100..this ms after it ended; 0: now */
	int starts;
	int crashes;
	char crash[256]; /* the first exit we did not cause */
};

/*
 * chaos_server_add(s): s is reaped, checked for crashes and killed at the
 * end along with the broker from now on.  s stays the caller's; at most
 * 8.
 */
void chaos_server_add(struct chaos_server *s);

/* The broker; its restart_max_ms is the caller's to set. */
struct chaos_server *chaos_broker(void);

/*
 * chaos_broker_start(): start mosquitto and wait (10 s) until it accepts;
 * dies otherwise.  The first start picks a free port and writes
 * mosquitto.conf; later ones reuse them.
 */
void chaos_broker_start(void);

/*
 * chaos_coord_start(s, out, extra): start mqlockd for the run's broker,
 * with the prefix, grace, keepalives and idle timeout above and then
 * extra (NULL-ended; NULL: none), its output appended to dir/out after a
 * banner line naming the start.  Dies when it cannot start.
 */
void chaos_coord_start(struct chaos_server *s, const char *out,
    char *const extra[]);

/*
 * chaos_server_signal(s, sig): send sig to s if it is up.  SIGTERM and
 * SIGKILL are remembered (an exit by them is ours) and make it STOPPING;
 * others (SIGSTOP, SIGCONT) leave it UP.  Noted in faults.log.
 */
void chaos_server_signal(struct chaos_server *s, int sig);

/*
 * chaos_server_wait(s): wait for the signalled s to exit and take its
 * exit as chaos_reap() would (the broker's state is deleted after a
 * SIGKILL).  For a caller that must know s is gone before it goes on.
 */
void chaos_server_wait(struct chaos_server *s);

/* Clients ----------------------------------------------------------------- */

/* One `mqlock acquire` process and its command. */
struct chaos_client {
	char id[32]; /* w<slot>-<iteration> */
	int slot, lock;
	pid_t pid;
	int running;
	int status; /* wait status once it ended */
	int killed; /* by our SIGKILL */
	long long start, end;
	long long frozen_at, thawed_at; /* last SIGSTOP and after; 0: none */
	long long thaw_due;             /* frozen: chaos_thaw() then */
	pid_t cmd;                      /* its command, frozen with it; 0 */
	long long cmd_token, cmd_end;   /* from runs.log; 0: none */
	int long_cmd;                   /* its command runs for seconds */
};

/*
 * chaos_slots_start(t0, spread_ms): every slot idle, slot i due to start
 * its first client at t0 + i * spread_ms.
 */
void chaos_slots_start(long long t0, long long spread_ms);

/*
 * chaos_spawn_due(now): start a client in every idle slot whose time has
 * come (and which has iterations left).  Dies when one cannot start.
 */
void chaos_spawn_due(long long now);

/* The running client of slot (NULL: idle); how many slots are busy. */
struct chaos_client *chaos_slot_client(int slot);
int chaos_busy_slots(void);

/* Every client started so far, by index; valid until the next spawn. */
int chaos_nclients(void);
struct chaos_client *chaos_client(int i);

/* chaos_client_by_id(id): the client with that id, or NULL. */
struct chaos_client *chaos_client_by_id(const char *id);

/* Whether c is stopped now (frozen and not thawed since). */
int chaos_client_frozen(const struct chaos_client *c);

/*
 * chaos_client_freeze(c, now, thaw_due, with_cmd): SIGSTOP c (and with
 * with_cmd its command, in a process group of its own), to be thawed at
 * thaw_due by chaos_thaw().
 */
void chaos_client_freeze(struct chaos_client *c, long long now,
    long long thaw_due, int with_cmd);

/*
 * chaos_client_kill(c, now): SIGKILL c (ours: an exit by it is fine); a
 * frozen c is continued so that it dies, and its frozen command too, which
 * wakes alone.
 */
void chaos_client_kill(struct chaos_client *c, long long now);

/*
 * chaos_thaw(now, all, kill_it): every frozen client whose thaw_due came
 * (with all: every frozen one) is continued, or killed when
 * kill_it(c, all) says 1; its command (if frozen) is continued either
 * way.
 */
void chaos_thaw(long long now, int all,
    int (*kill_it)(struct chaos_client *, int));

/*
 * chaos_reap(now): take every child that ended: a client's slot becomes
 * idle (next client 0..respawn_max_ms later); a registered server becomes
 * DOWN, due to restart per its restart_max_ms when restart is set, else at
 * now (an exit we did not cause is counted); the broker's state file goes
 * with a SIGKILL.  Other children (orphaned commands) are just reaped.
 */
void chaos_reap(long long now, int restart);

/*
 * chaos_kill_everything(): SIGKILL (and SIGCONT) every running client,
 * frozen command and server, wait for each, then o->at_kill().  Safe to
 * call more than once.
 */
void chaos_kill_everything(void);

/* Recorder --------------------------------------------------------------- */

/* A recorded message.  json NULL: not JSON; an empty owner message is
 * recorded as the free state it means. */
struct chaos_msg {
	long long at; /* arrival, wall ms */
	char *topic;
	cJSON *json;
	int retained; /* or implied free on (re)subscribing */
};

/*
 * chaos_rec_start(): connect the recorder to the broker (which must be
 * up), subscribed to owner messages, events, the status and
 * o->rec_filter; dies unless subscribed within 10 s.  It logs every
 * message into recorder.log.  When its connection is lost,
 * chaos_rec_tick() reconnects it.
 */
void chaos_rec_start(void);

/*
 * chaos_rec_tick(now): call often (every 10 ms or so) from the main loop:
 * a lost recorder connects again, at most every 100 ms, so that it is
 * back as soon as the broker is and what it misses is not its own delay.
 */
void chaos_rec_tick(long long now);

/*
 * chaos_rec_publish(topic, payload, reply_to, corr): publish payload at
 * QoS 1 through the recorder; with corr, as an MQTT 5 request answered at
 * reply_to with correlation data corr.  Waits in Paho's buffer while the
 * recorder is disconnected.
 */
void chaos_rec_publish(const char *topic, const char *payload,
    const char *reply_to, const char *corr);

/*
 * chaos_rec_stop(): disconnect the recorder (waiting up to 5 s for the
 * disconnect to finish, so no callback runs after) and close its log.
 * What it recorded stays readable.
 */
void chaos_rec_stop(void);

/* How many messages are recorded; the i-th (i < count), a copy whose
 * topic and json stay valid for the run. */
size_t chaos_rec_count(void);
struct chaos_msg chaos_rec_get(size_t i);

/* chaos_owner_lock(topic): n for CHAOS_PREFIX/L<n>/owner, else -1. */
int chaos_owner_lock(const char *topic);

/*
 * chaos_status_at(t, error, errsz): the coordinator's status as last
 * recorded at or before t: 1 online, 0 not, -1 none yet; with error
 * (errsz bytes), its error field there ("" none).
 */
int chaos_status_at(long long t, char *error, size_t errsz);

/*
 * chaos_latest_owners(latest): latest[l] = the latest owner message of
 * lock l recorded so far (NULL: none); latest has o->locks entries.
 */
void chaos_latest_owners(const cJSON **latest);

/* chaos_holder(owner_msg): the client an owner message names as holder,
 * or NULL (free, unknown, NULL message). */
struct chaos_client *chaos_holder(const cJSON *owner_msg);

/* chaos_all_free(latest): 1 if no lock is held or awaited per latest. */
int chaos_all_free(const cJSON *const *latest);

/* Lateness ---------------------------------------------------------------- */

/*
 * chaos_late_start(from): a thread sleeps 50 ms again and again and keeps
 * the worst lateness of its wake-ups from wall ms from on (0: now).
 */
void chaos_late_start(long long from);

/* chaos_late_from(from): count lateness from wall ms from on. */
void chaos_late_from(long long from);

/* chaos_late_stop(): stop the thread; the worst lateness in ms. */
long long chaos_late_stop(void);

/* Checks ------------------------------------------------------------------ */

/*
 * chaos_problem(check, fmt, ...): count a failed check (the first 10 of
 * each are printed on stderr); the verdict comes at the end.
 */
void chaos_problem(int check, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * chaos_grant_see(token, lock, client, where, at): a source (where, for
 * messages) says token was granted for lock to client.  Each token must
 * belong to one lock and one client everywhere (CHAOS_C_ONE_GRANT).  at:
 * the time this source dates the grant (kept if the first), 0: none.
 */
void chaos_grant_see(long long token, int lock, const char *client,
    const char *where, long long at);

/* chaos_grant_known(token, lock, client): 1 if seen granted so. */
int chaos_grant_known(long long token, int lock, const char *client);

/* chaos_grant_seen(token): 1 if any source named token so far. */
int chaos_grant_seen(long long token);

/* chaos_grants_count(): distinct tokens seen. */
int chaos_grants_count(void);

/*
 * chaos_grant_line(line, &lock, client, &token): an mqlockd log line's
 * "grant lock=<lock> client=<client> token=<n>" (client: 64 bytes): 1 for
 * a lock L<n> of the run, -1 for any other lock (lock -1), 0 for no grant
 * line.
 */
int chaos_grant_line(const char *line, int *lock, char *client,
    long long *token);

/*
 * chaos_check_recorded(on_free, on_granted, &owner_msgs, &events): the
 * recorded messages in arrival order: owner messages name their tokens'
 * holders and never go back per lock; granted events name theirs.  Each
 * free owner message goes to on_free(m, lock) and each granted event, before
 * it counts, to on_granted(m, lock, client, token) (NULL: none).
 */
void chaos_check_recorded(void (*on_free)(const struct chaos_msg *, int),
    void (*on_granted)(const struct chaos_msg *, int, const char *, long long),
    int *owner_msgs, int *events);

/*
 * chaos_check_commands(&runs, &accepted, &rejected): runs.log (each run's
 * token must have been granted to it; its end time kept in its client),
 * res-L<n>.log (written in token order, with granted tokens only) and
 * rejects.log.  Call after every grant is seen.
 */
void chaos_check_commands(int *runs, int *accepted, int *rejected);

/*
 * chaos_check_cli_exits(): an mqlock that exited 0 kept its lock until
 * its command ended: the next token of its lock was not granted (per the
 * grants' dates) before then.  After chaos_check_commands().
 */
void chaos_check_cli_exits(void);

/*
 * chaos_check_exits(exits): every client's exit: exits[] counts 0, 70,
 * 75, 69 and killed by us; any other is a CHAOS_C_NO_CRASH problem, as is
 * every server's exit we did not cause.
 */
void chaos_check_exits(int exits[5]);

/* chaos_check_sanitizer(name): a sanitizer report in dir/name is a
 * CHAOS_C_NO_CRASH problem; every slot's output is checked by passing
 * NULL. */
void chaos_check_sanitizer(const char *name);

/*
 * chaos_verdict(order, n, width): print "check: <name> ok|FAILED" for the
 * checks in order (names padded to width), then "<name>: passed" (the
 * directory removed unless CHAOS_KEEP is set) or "<name>: FAILED".
 * Returns the exit status: 0 passed, 1 failed.
 */
int chaos_verdict(const int *order, int n, int width);

#endif
