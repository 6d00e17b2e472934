/*
 * proc: the processes the benchmark starts (mosquitto, mqlockd, the
 * stand-in) and what /proc says about them.
 *
 * Children are started with fork + execv and write stdout and stderr to a
 * log file.  They get SIGKILL when the thread that started them exits
 * (PR_SET_PDEATHSIG), so call proc_spawn() from the main thread only.  The
 * benchmark is multi-threaded (Paho) when it restarts a coordinator, so the
 * child does only async-signal-safe work before execv.
 */
#ifndef MQLOCK_BENCH_PROC_H
#define MQLOCK_BENCH_PROC_H

#include <stdint.h>
#include <sys/types.h>

struct proc;

/*
 * proc_spawn(argv, log): start argv[0] (a path) with arguments argv (NULL
 * terminated), stdin from /dev/null, stdout and stderr appended to the file
 * log.  Returns the running child, owned by the caller, or NULL (logged).
 */
struct proc *proc_spawn(const char *const *argv, const char *log);

/* proc_pid(p): the child's process id. */
pid_t proc_pid(const struct proc *p);

/* proc_alive(p): 1 while the child has not exited (reaps it if it has). */
int proc_alive(struct proc *p);

/*
 * proc_stop(p, sig, timeout_ms): send sig, wait up to timeout_ms for the
 * exit, then SIGKILL and wait.  Returns the wait status, or -1 if the child
 * was already reaped.  Safe to call twice.
 */
int proc_stop(struct proc *p, int sig, int timeout_ms);

/* proc_free(p): stop the child if it still runs (SIGTERM, then SIGKILL)
 * and free p.  NULL is a no-op. */
void proc_free(struct proc *p);

/*
 * proc_cpu_us(pid): user + system CPU time of every thread of pid so far,
 * in microseconds (from /proc/<pid>/stat utime + stime, clock-tick
 * resolution, usually 10 ms).  -1 if it cannot be read.
 */
int64_t proc_cpu_us(pid_t pid);

/*
 * proc_status_kb(pid, field): a kB value of /proc/<pid>/status, such as
 * "VmRSS" or "VmHWM".  -1 if it cannot be read.
 */
int64_t proc_status_kb(pid_t pid, const char *field);

#endif
