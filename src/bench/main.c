/*
 * mqlock-bench: how close mqlockd comes to the broker's limit.
 *
 * Parses flags, describes the machine, starts the world (broker, mqlockd,
 * stand-in), runs one mode and prints its table and JSON line.
 * "mqlock-bench standin" is the stand-in coordinator process itself.
 */
#include <MQTTAsync.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench/modes.h"
#include "bench/report.h"
#include "bench/standin.h"
#include "bench/world.h"
#include "etcdtest.h"
#include "io/log.h"

#ifndef MQLOCKD_BIN
#define MQLOCKD_BIN "mqlockd"
#endif
#ifndef MOSQUITTO_BIN
#define MOSQUITTO_BIN "/usr/sbin/mosquitto"
#endif

#define UNSET (-1)

struct args {
	struct bench_opts b;
	struct world_opts w;
	bool json_only;
	bool help;
	bool spawn;
	bool no_spawn;
	long mqlockd_pid;
	const char *client_id; /* standin */
	const char *etcd;      /* ha: an etcd cluster's endpoints */
	int etcd_members;      /* ha: or members to start here */
};

enum type { T_INT, T_LONG, T_DOUBLE, T_STR, T_TRUE };

struct flag {
	const char *name;
	enum type type;
	size_t offset;
	long min, max;
	const char *arg;
	const char *help;
};

#define B(f) offsetof(struct args, b.f)
#define W(f) offsetof(struct args, w.f)
#define A(f) offsetof(struct args, f)

static const struct flag flags[] = {
    {"clients", T_INT, B(clients), 1, 1000, "N",
	"latency, throughput: clients, each its own connection"},
    {"locks", T_INT, B(locks), 1, 256, "N",
	"throughput: locks per client (latency: 1)"},
    {"window", T_INT, B(window), 1, 256, "N",
	"throughput: operations in flight per client (default: "
	"inflight / 4 / clients, at most --locks)"},
    {"ops", T_LONG, B(ops), 1, 100000000, "N",
	"measured operations per coordinator (contention: hand-overs "
	"per K; scale: per latency probe)"},
    {"warmup", T_LONG, B(warmup), 0, 100000000, "N",
	"unmeasured operations per coordinator first"},
    {"rounds", T_INT, B(rounds), 1, 1000, "N",
	"alternating segments per coordinator"},
    {"queues", T_STR, B(queues), 0, 0, "K,K,...",
	"contention: clients lined up on the lock (holder included)"},
    {"held", T_LONG, B(held), 1, 100000000, "M", "scale: locks held"},
    {"waiters", T_LONG, B(waiters), 0, 100000000, "W",
	"scale: waiters, spread over the held locks"},
    {"base", T_LONG, B(base), 1, 100000000, "B",
	"scale: locks held at the first latency probe"},
    {"conns", T_INT, B(conns), 1, 64, "N", "scale: connections that fill"},
    {"fill-window", T_INT, B(fill_window), 1, 10000, "N",
	"scale: requests in flight per filling connection"},
    {"timeout", T_INT, B(timeout_s), 1, 3600, "S",
	"fail when nothing is answered for S seconds"},
    {"restart-timeout", T_INT, B(restart_timeout_s), 1, 3600, "S",
	"scale: longest wait for a restarted coordinator"},
    {"max-p50-us", T_DOUBLE, B(max_p50_us), 0, 0, "US",
	"latency, throughput: exit 3 if a p50 is above US"},
    {"max-p99-us", T_DOUBLE, B(max_p99_us), 0, 0, "US",
	"latency, throughput: exit 3 if a p99 is above US"},
    {"max-us", T_DOUBLE, B(max_us), 0, 0, "US",
	"latency, throughput: exit 3 if any mqlockd operation took over US"},
    {"inflight", T_INT, B(inflight), 1, 65535, "N",
	"the broker's max_inflight_messages (receive maximum)"},
    {"spawn", T_TRUE, A(spawn), 0, 0, NULL,
	"start mosquitto, mqlockd and the stand-in (the default)"},
    {"no-spawn", T_TRUE, A(no_spawn), 0, 0, NULL,
	"use --broker and the mqlockd serving --prefix there; start "
	"only the stand-in"},
    {"broker", T_STR, W(broker), 0, 0, "URI",
	"with --no-spawn (and standin): the broker"},
    {"prefix", T_STR, W(prefix), 0, 0, "P",
	"with --no-spawn: mqlockd's topic prefix (standin: its own)"},
    {"mqlockd-pid", T_LONG, A(mqlockd_pid), 1, INT_MAX, "PID",
	"with --no-spawn: mqlockd's pid, for its CPU time"},
    {"mqlockd", T_STR, W(mqlockd), 0, 0, "PATH", "the mqlockd to run"},
    {"mqlockd-args", T_STR, W(mqlockd_args), 0, 0, "'FLAGS'",
	"extra mqlockd flags, separated by spaces"},
    {"mosquitto", T_STR, W(mosquitto), 0, 0, "PATH", "the mosquitto to run"},
    {"dir", T_STR, W(dir), 0, 0, "PATH",
	"where the temporary directory goes (default $TMPDIR or /tmp)"},
    {"keep", T_TRUE, W(keep), 0, 0, NULL,
	"keep the temporary directory (logs, journal)"},
    {"client-id", T_STR, A(client_id), 0, 0, "ID", "standin: client id"},
    {"etcd", T_STR, A(etcd), 0, 0, "URLS",
	"ha: the etcd cluster to use (default: start one here)"},
    {"etcd-members", T_INT, A(etcd_members), 1, ETCDTEST_MAX, "N",
	"ha: members of the cluster started here (default 3)"},
    {"json", T_TRUE, A(json_only), 0, 0, NULL, "print only the JSON line"},
    {"help", T_TRUE, A(help), 0, 0, NULL, "this text"},
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

/* Mode defaults: UNSET fields of struct bench_opts take these. */
struct mode {
	const char *name;
	int (*run)(const struct bench_opts *, struct world *, struct report *);
	struct bench_opts def;
	const char *help;
};

static const struct mode modes[] = {
    {"latency", mode_latency,
	{.clients = 1,
	    .locks = 1,
	    .window = 1,
	    .ops = 4000,
	    .warmup = 400,
	    .rounds = 4},
	"N clients, acquire/release cycles on their own lock"},
    {"throughput", mode_throughput,
	{.clients = 32,
	    .locks = 4,
	    .window = UNSET,
	    .ops = 40000,
	    .warmup = 4000,
	    .rounds = 4},
	"C clients x L locks, a window of operations in flight"},
    {"contention", mode_contention,
	{.queues = "2,10,100", .ops = 1000, .warmup = 100, .rounds = 4},
	"K clients lined up on one lock: hand-over latency and rate"},
    {"scale", mode_scale,
	{.held = 1000000,
	    .waiters = 100000,
	    .base = 1000,
	    .conns = 4,
	    .fill_window = 64,
	    .ops = 2000,
	    .rounds = 4},
	"M held locks and W waiters: memory, latency at size, restart"},
    {"ha", mode_ha, {.ops = 4000, .warmup = 400, .rounds = 4},
	"mqlockd on etcd against mqlockd on sqlite: latency, throughput, "
	"and etcd's own put and transaction latency"},
    {"standin", NULL, {.clients = 0},
	"run the stand-in coordinator (--broker, --prefix)"},
};

#define NMODES (sizeof(modes) / sizeof(modes[0]))

static void
usage(FILE *f)
{
	fprintf(f, "usage: mqlock-bench MODE [flags]\n\nmodes:\n");
	for (size_t i = 0; i < NMODES; i++)
		fprintf(f, "  %-12s %s\n", modes[i].name, modes[i].help);
	fprintf(f, "\nflags:\n");
	for (size_t i = 0; i < NFLAGS; i++) {
		char left[64];

		snprintf(left, sizeof(left), "--%s%s%s", flags[i].name,
		    flags[i].arg != NULL ? " " : "",
		    flags[i].arg != NULL ? flags[i].arg : "");
		fprintf(f, "  %-24s %s\n", left, flags[i].help);
	}
	fprintf(f,
	    "\nBy default it starts its own mosquitto, mqlockd and stand-in "
	    "on 127.0.0.1\nand removes them afterwards.  Exit: 0 ran (targets "
	    "met or not), 1 failed,\n3 a p50 or p99 above its --max-p*-us, "
	    "64 bad flags.\n");
}

static int
set_flag(struct args *a, const struct flag *f, const char *v)
{
	char *field = (char *)a + f->offset, *end;
	long n;
	double d;

	switch (f->type) {
	case T_INT:
	case T_LONG:
		errno = 0;
		n = strtol(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' || n < f->min ||
		    n > f->max) {
			fprintf(stderr,
			    "mqlock-bench: --%s: '%s' is not a whole number "
			    "from %ld to %ld\n",
			    f->name, v, f->min, f->max);
			return -1;
		}
		if (f->type == T_INT) {
			int i = (int)n;

			memcpy(field, &i, sizeof(i));
		} else
			memcpy(field, &n, sizeof(n));
		return 0;
	case T_DOUBLE:
		errno = 0;
		d = strtod(v, &end);
		if (errno != 0 || end == v || *end != '\0' || !(d >= 0)) {
			fprintf(stderr,
			    "mqlock-bench: --%s: '%s' is not a "
			    "number >= 0\n",
			    f->name, v);
			return -1;
		}
		memcpy(field, &d, sizeof(d));
		return 0;
	case T_STR:
		memcpy(field, &v, sizeof(v));
		return 0;
	case T_TRUE:
	default:
		*(bool *)field = true;
		return 0;
	}
}

static int
parse(struct args *a, int argc, char **argv)
{
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i], *eq, *v;
		const struct flag *f = NULL;
		size_t n;

		if (strncmp(arg, "--", 2) != 0) {
			fprintf(stderr, "mqlock-bench: unexpected '%s'\n", arg);
			return -1;
		}
		eq = strchr(arg + 2, '=');
		n = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		for (size_t k = 0; k < NFLAGS && f == NULL; k++)
			if (strlen(flags[k].name) == n &&
			    strncmp(flags[k].name, arg + 2, n) == 0)
				f = &flags[k];
		if (f == NULL) {
			fprintf(stderr, "mqlock-bench: unknown flag '%s'\n",
			    arg);
			return -1;
		}
		if (f->type == T_TRUE) {
			if (eq != NULL) {
				fprintf(stderr,
				    "mqlock-bench: --%s takes no "
				    "value\n",
				    f->name);
				return -1;
			}
			v = "";
		} else if (eq != NULL)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			fprintf(stderr, "mqlock-bench: --%s needs a value\n",
			    f->name);
			return -1;
		}
		if (set_flag(a, f, v) != 0)
			return -1;
	}
	return 0;
}

static void
defaults(struct bench_opts *o, const struct bench_opts *d)
{
#define DEF(f)             \
	if (o->f == UNSET) \
	o->f = d->f
	DEF(clients);
	DEF(locks);
	DEF(window);
	DEF(ops);
	DEF(warmup);
	DEF(rounds);
	DEF(held);
	DEF(waiters);
	DEF(base);
	DEF(conns);
	DEF(fill_window);
#undef DEF
	if (o->queues == NULL)
		o->queues = d->queues;
	if (o->window == UNSET) {
		/* Each operation makes the coordinator publish about two
		 * messages: stay well below the receive maximum. */
		o->window = o->inflight / 4 / o->clients;
		if (o->window > o->locks)
			o->window = o->locks;
		if (o->window < 1)
			o->window = 1;
	}
}

/* The first line of a command's output, or "?". */
static void
first_line(const char *cmd, char *out, size_t size)
{
	FILE *p = popen(cmd, "r");

	snprintf(out, size, "?");
	if (p == NULL)
		return;
	if (fgets(out, (int)size, p) != NULL)
		out[strcspn(out, "\n")] = '\0';
	else
		snprintf(out, size, "?");
	pclose(p);
}

/* "model name" from /proc/cpuinfo and MemTotal, into out. */
static void
machine(char *out, size_t size)
{
	char line[256], model[128] = "?";
	long mem_kb = 0;
	struct utsname u;
	FILE *f;

	if ((f = fopen("/proc/cpuinfo", "r")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			char *c = strchr(line, ':');

			if (strncmp(line, "model name", 10) == 0 && c != NULL) {
				snprintf(model, sizeof(model), "%s", c + 2);
				model[strcspn(model, "\n")] = '\0';
				break;
			}
		}
		fclose(f);
	}
	if ((f = fopen("/proc/meminfo", "r")) != NULL) {
		if (fscanf(f, "MemTotal: %ld kB", &mem_kb) != 1)
			mem_kb = 0;
		fclose(f);
	}
	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	snprintf(out, size, "%s %s %s, %s, %ld CPUs, %.1f GB RAM", u.sysname,
	    u.release, u.machine, model, sysconf(_SC_NPROCESSORS_ONLN),
	    (double)mem_kb / 1048576.0);
}

static const char *
fs_name(const char *path)
{
	struct statfs s;

	if (statfs(path, &s) != 0)
		return "?";
	switch ((unsigned long)s.f_type) {
	case 0xEF53:
		return "ext4";
	case 0x01021994:
		return "tmpfs (no real fsync!)";
	case 0x58465342:
		return "xfs";
	case 0x9123683EUL:
		return "btrfs";
	case 0x794c7630:
		return "overlayfs";
	default:
		return "other";
	}
}

static void
conditions(struct report *r, const struct args *a, int argc, char **argv)
{
	char buf[512], cmd[PATH_MAX + 32];
	MQTTAsync_nameValue *v = MQTTAsync_getVersionInfo();
	const char *paho = "?", *dir;
	time_t now = time(NULL);
	struct tm tm;
	size_t n = 0;

	gmtime_r(&now, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	report_cond(r, "date", buf);
	machine(buf, sizeof(buf));
	report_cond(r, "machine", buf);
	first_line("cat /proc/loadavg", buf, sizeof(buf));
	report_cond(r, "loadavg", buf);
	if (!a->no_spawn) {
		snprintf(cmd, sizeof(cmd), "'%s' -h 2>&1", a->w.mosquitto);
		first_line(cmd, buf, sizeof(buf));
		report_cond(r, "mosquitto", buf);
	}
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>&1", a->w.mqlockd);
	first_line(cmd, buf, sizeof(buf));
	report_cond(r, "mqlockd", buf);
	for (; v != NULL && v->name != NULL; v++)
		if (strcmp(v->name, "Version") == 0)
			paho = v->value;
	report_cond(r, "paho", paho);
	report_cond(r, "sqlite", sqlite3_libversion());
	report_cond(r, "cjson", cJSON_Version());
	dir = a->w.dir != NULL ? a->w.dir : getenv("TMPDIR");
	snprintf(buf, sizeof(buf), "%s on %s, WAL, synchronous=FULL (default)",
	    dir != NULL ? dir : "/tmp", fs_name(dir != NULL ? dir : "/tmp"));
	report_cond(r, "journal", buf);
	if (a->w.etcd != NULL) {
		char version[128];

		first_line("etcd --version 2>&1", version, sizeof(version));
		if (a->etcd != NULL)
			snprintf(buf, sizeof(buf), "%s: %s", version, a->etcd);
		else
			snprintf(buf, sizeof(buf),
			    "%s: %d member(s) started here on loopback, data "
			    "in /tmp on %s",
			    version, a->etcd_members, fs_name("/tmp"));
		report_cond(r, "etcd", buf);
	}
	for (int i = 0; i < argc && n < sizeof(buf) - 1; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s",
		    i > 0 ? " " : "", i == 0 ? "mqlock-bench" : argv[i]);
	report_cond(r, "command", buf);
}

int
main(int argc, char **argv)
{
	static char self[PATH_MAX];
	struct args a = {
	    .b = {.clients = UNSET,
		.locks = UNSET,
		.window = UNSET,
		.ops = UNSET,
		.warmup = UNSET,
		.rounds = UNSET,
		.held = UNSET,
		.waiters = UNSET,
		.base = UNSET,
		.conns = UNSET,
		.fill_window = UNSET,
		.timeout_s = 30,
		.restart_timeout_s = 300,
		.inflight = 1000},
	    .w = {.mqlockd = MQLOCKD_BIN,
		.mosquitto = MOSQUITTO_BIN,
		.prefix = "locks"},
	    .client_id = "standin",
	    .etcd_members = 3,
	};
	struct etcdtest *cluster = NULL;
	const struct mode *m = NULL;
	struct report *r = NULL;
	struct world *w;
	ssize_t n;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LEVEL_WARN);
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 64 : 0;
	}
	for (size_t i = 0; i < NMODES && m == NULL; i++)
		if (strcmp(argv[1], modes[i].name) == 0)
			m = &modes[i];
	if (m == NULL) {
		fprintf(stderr, "mqlock-bench: unknown mode '%s'\n", argv[1]);
		usage(stderr);
		return 64;
	}
	if (parse(&a, argc, argv) != 0)
		return 64;
	if (a.help) {
		usage(stdout);
		return 0;
	}
	if (m->run == NULL) {
		if (a.w.broker == NULL) {
			fprintf(stderr,
			    "mqlock-bench: standin needs --broker\n");
			return 64;
		}
		log_set_level(LOG_LEVEL_INFO);
		return standin_run(a.w.broker, a.w.prefix, a.client_id);
	}
	defaults(&a.b, &m->def);
	a.w.spawn = !a.no_spawn;
	a.w.inflight = a.b.inflight;
	a.w.mqlockd_pid = (pid_t)a.mqlockd_pid;
	if (a.spawn && a.no_spawn) {
		fprintf(stderr,
		    "mqlock-bench: --spawn or --no-spawn, not both\n");
		return 64;
	}
	if (a.no_spawn && a.w.broker == NULL) {
		fprintf(stderr, "mqlock-bench: --no-spawn needs --broker\n");
		return 64;
	}
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0) {
		fprintf(stderr, "mqlock-bench: cannot find myself: %s\n",
		    strerror(errno));
		return 1;
	}
	self[n] = '\0';
	a.w.self = self;
	if (m->run == mode_ha) {
		if (a.no_spawn) {
			fprintf(stderr, "mqlock-bench: ha needs --spawn\n");
			return 64;
		}
		if (a.etcd == NULL) {
			struct etcdtest_opts eo = {.members = a.etcd_members};

			fprintf(stderr, "bench: starting %d etcd member(s)\n",
			    a.etcd_members);
			if ((cluster = etcdtest_start(&eo)) == NULL)
				return 1;
		}
		a.w.etcd =
		    a.etcd != NULL ? a.etcd : etcdtest_endpoints(cluster);
	}
	if ((r = report_new(m->name)) == NULL) {
		etcdtest_stop(cluster, false);
		return 1;
	}
	conditions(r, &a, argc, argv);
	if ((w = world_start(&a.w)) == NULL) {
		report_free(r);
		etcdtest_stop(cluster, false);
		return 1;
	}
	rc = m->run(&a.b, w, r);
	if (rc == 1 && world_dir(w) != NULL)
		fprintf(stderr, "bench: logs were in %s (--keep keeps them)\n",
		    world_dir(w));
	world_stop(w);
	etcdtest_stop(cluster, false);
	if (!a.json_only)
		report_print_table(r, stdout);
	report_print_json(r, stdout);
	report_free(r);
	return rc;
}
