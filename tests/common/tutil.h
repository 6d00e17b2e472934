/*
 * tutil.h: plain helpers the test programs share: clocks and naps, ports
 * on 127.0.0.1, whole files, child processes and what /proc says about
 * them.
 *
 * Nothing here knows about cmocka or MQTT, and nothing fails a test: each
 * function returns -1 (or NULL) with errno set, and the caller reports the
 * failure in its own way (a cmocka failure, the chaos test's die()).
 */
#ifndef MQLOCK_TESTS_TUTIL_H
#define MQLOCK_TESTS_TUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Clocks ----------------------------------------------------------------- */

/* Wall-clock milliseconds since the epoch, as the protocol's ms. */
long long tutil_wall_ms(void);

/* Monotonic milliseconds, for deadlines. */
long long tutil_mono_ms(void);

/* tutil_nap_ms(ms): sleep ms milliseconds, resuming after signals. */
void tutil_nap_ms(long ms);

/*
 * tutil_rand(state): the next number of Marsaglia's xorshift64 sequence
 * from *state, which must not be 0, and is updated.  Repeatable from a
 * seed; not for secrets.
 */
uint64_t tutil_rand(uint64_t *state);

/* Ports ------------------------------------------------------------------ */

/*
 * tutil_free_port(): a TCP port on 127.0.0.1 that was free a moment ago
 * (bound to port 0 and released again), or -1.
 */
int tutil_free_port(void);

/* tutil_port_accepts(port): 1 if 127.0.0.1:port accepts a connection. */
int tutil_port_accepts(int port);

/*
 * tutil_wait_port(port, pid, ms): wait up to ms for 127.0.0.1:port to
 * accept, as a server started with tutil_spawn() does once it is ready.
 * With pid > 0, stop waiting when that child exits; it is not reaped (its
 * wait status stays for the caller's waitpid()).  Returns 0 once the port
 * accepts; -1 with errno ECHILD when the child exited first (a server
 * that found its port taken), or ETIMEDOUT when the time ran out.
 */
int tutil_wait_port(int port, pid_t pid, int ms);

/* Files ------------------------------------------------------------------ */

/*
 * tutil_slurp(path, len): the whole file at path plus a NUL, read to its
 * end (so files still growing and /proc files work too), or NULL if it
 * cannot be opened or memory runs out.  Sets *len to its length unless
 * len is NULL.  The caller frees it.
 */
char *tutil_slurp(const char *path, size_t *len);

/* tutil_file_contains(path, needle): 1 if the file at path holds needle. */
int tutil_file_contains(const char *path, const char *needle);

/*
 * tutil_stderr_of(fn, arg): run fn(arg) with this process's stderr (fd 2)
 * sent to a scratch file, and return what was written there, NUL-ended
 * (the caller frees it), or NULL when the redirection failed (fn then did
 * not run).
 */
char *tutil_stderr_of(void (*fn)(void *), void *arg);

/* Processes ------------------------------------------------------------- */

/*
 * tutil_spawn(argv, out, default_sigpipe): start argv[0] (a path, no PATH
 * search) with argv, stdin from /dev/null and stdout and stderr appended
 * to the file out.  The child leads a process group of its own (so
 * kill(-pid, sig) reaches its children too) and dies with this process.
 * Signal dispositions are inherited, except that default_sigpipe resets
 * SIGPIPE to its default in the child.  Returns the child's pid, or -1
 * when out cannot be opened or fork fails.
 */
pid_t tutil_spawn(char *const argv[], const char *out, int default_sigpipe);

/*
 * tutil_find_pid(needle): the pid of a child of this process whose command
 * line contains needle, or -1 (also when /proc cannot be read).
 */
long tutil_find_pid(const char *needle);

/*
 * tutil_proc_field(pid, i): field i of /proc/<pid>/stat counted from the
 * state (0, returned as its letter: 'Z' for a zombie, 'T' when stopped)
 * onwards; 1 is the parent pid; TUTIL_STAT_EXIT_CODE the wait status of an
 * exited child.  -1 when unreadable.
 */
#define TUTIL_STAT_EXIT_CODE 49
long tutil_proc_field(long pid, int field);

/* VmRSS of pid in KiB, or -1. */
long tutil_rss_kb(long pid);

/*
 * tutil_stop_child(pid, sig, ms): send sig to a child of this process and
 * wait up to ms for it to exit, without reaping it (it stays a zombie for
 * whoever waits for it).  Returns its wait status, or -1 when the signal
 * could not be sent or it did not exit in time.
 */
int tutil_stop_child(long pid, int sig, int ms);

#endif
