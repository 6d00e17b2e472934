#include "bench/modes.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/cycle.h"
#include "bench/etcdfloor.h"
#include "bench/handover.h"
#include "bench/scale.h"
#include "bench/stats.h"
#include "io/log.h"

/* High availability (issue 15): etcd against sqlite. */
#define T_HA_TPUT_RATIO 0.5
#define T_HA_P50_BUDGET 1.0
#define HA_TPUT_CLIENTS 32
#define HA_TPUT_LOCKS 4

/* Issue 6's targets. */
#define T_P50_RATIO 1.3
#define T_P99_RATIO 1.5
#define T_TPUT_RATIO 0.8
#define T_CPU_US 75.0
#define T_RSS_MB 600.0
#define T_SIZE_RATIO 1.2
#define T_RESTART_MS 10000.0

static double
per(double total, double n)
{
	return n > 0 && !isnan(total) ? total / n : NAN;
}

/* p50/p90/p99/max/mean of both sides as metrics named prefix + "p50_us". */
static void
add_latency(struct report *r, const char *prefix, struct stats *const *lat)
{
	struct stats_sum s[W_NCOORD];
	char key[64];

	for (int c = 0; c < W_NCOORD; c++)
		s[c] = stats_summary(lat[c]);
#define ADD(field, name)                                  \
	snprintf(key, sizeof(key), "%s%s", prefix, name); \
	report_metric(r, key, "us", s[W_MQLOCKD].field, s[W_STANDIN].field)
	ADD(p50, "p50_us");
	ADD(p90, "p90_us");
	ADD(p99, "p99_us");
	ADD(max, "max_us");
	ADD(mean, "mean_us");
#undef ADD
}

/* Whether a p50 or p99 of either side is over its --max-p*-us limit. */
static int
limits_exceeded(const struct bench_opts *o, struct stats *const *lat)
{
	int over = 0;

	for (int c = 0; c < W_NCOORD; c++) {
		struct stats_sum s = stats_summary(lat[c]);
		const char *name = world_name((enum world_coord)c);

		if (o->max_p50_us > 0 && s.p50 > o->max_p50_us) {
			fprintf(stderr,
			    "bench: %s p50 %.0f us is over the limit of %.0f "
			    "us\n",
			    name, s.p50, o->max_p50_us);
			over = 1;
		}
		if (o->max_p99_us > 0 && s.p99 > o->max_p99_us) {
			fprintf(stderr,
			    "bench: %s p99 %.0f us is over the limit of %.0f "
			    "us\n",
			    name, s.p99, o->max_p99_us);
			over = 1;
		}
		/* The slowest operation: mqlockd's only (a stall check). */
		if (o->max_us > 0 && c == W_MQLOCKD && s.max > o->max_us) {
			fprintf(stderr,
			    "bench: %s slowest operation %.0f us is over the "
			    "limit of %.0f us\n",
			    name, s.max, o->max_us);
			over = 1;
		}
	}
	return over;
}

/*
 * The exit status of a run of cycles: 1 if requests were refused or
 * publishes lost (noted in the report), 3 if a --max-* limit was
 * exceeded, else 0.
 */
static int
cycles_rc(const struct bench_opts *o, struct report *r,
    const struct cycle_result *cr)
{
	if (cr->errors > 0) {
		char note[96];

		snprintf(note, sizeof(note),
		    "%lu requests refused or publishes lost", cr->errors);
		report_note(r, note);
		log_error("bench: %s", note);
		return 1;
	}
	return limits_exceeded(o, cr->lat) ? 3 : 0;
}

static int
run_cycles(const struct bench_opts *o, struct world *w, struct report *r,
    bool throughput)
{
	struct cycle_opts co = {
	    .clients = o->clients,
	    .locks = o->locks,
	    .window = o->window,
	    .ops = o->ops,
	    .warmup = o->warmup,
	    .rounds = o->rounds,
	    .timeout_ms = o->timeout_s * 1000,
	    .tag = throughput ? "tput" : "lat",
	    .only = -1,
	};
	struct cycle_result cr;
	int rc = 1;

	report_param(r, "clients", o->clients);
	report_param(r, "locks_per_client", o->locks);
	report_param(r, "window", o->window);
	report_param(r, "ops", (double)o->ops);
	report_param(r, "warmup", (double)o->warmup);
	report_param(r, "rounds", o->rounds);
	report_param(r, "inflight", o->inflight);
	if (cycle_run(w, &co, &cr) != 0)
		goto out;
	add_latency(r, "", cr.lat);
	report_metric(r, "ops_per_s", "1/s",
	    per((double)cr.ops[W_MQLOCKD], cr.secs[W_MQLOCKD]),
	    per((double)cr.ops[W_STANDIN], cr.secs[W_STANDIN]));
	report_metric(r, "cpu_us_per_op", "us",
	    per(cr.cpu_us[W_MQLOCKD], (double)cr.ops[W_MQLOCKD]),
	    per(cr.cpu_us[W_STANDIN], (double)cr.ops[W_STANDIN]));
	report_metric(r, "broker_cpu_us_per_op", "us",
	    per(cr.broker_cpu_us[W_MQLOCKD], (double)cr.ops[W_MQLOCKD]),
	    per(cr.broker_cpu_us[W_STANDIN], (double)cr.ops[W_STANDIN]));
	report_metric(r, "client_cpu_us_per_op", "us",
	    per(cr.client_cpu_us[W_MQLOCKD], (double)cr.ops[W_MQLOCKD]),
	    per(cr.client_cpu_us[W_STANDIN], (double)cr.ops[W_STANDIN]));
	if (throughput) {
		report_target(r,
		    o->clients == 32 ? "throughput, 32 clients" : "throughput",
		    "ops_per_s", REPORT_RATIO_MIN, T_TPUT_RATIO);
	} else {
		report_target(r, "latency p50", "p50_us", REPORT_RATIO_MAX,
		    T_P50_RATIO);
		report_target(r, "latency p99", "p99_us", REPORT_RATIO_MAX,
		    T_P99_RATIO);
	}
	report_target(r, "mqlockd CPU per op", "cpu_us_per_op", REPORT_ABS_MAX,
	    T_CPU_US);
	rc = cycles_rc(o, r, &cr);
out:
	cycle_result_free(&cr);
	return rc;
}

int
mode_latency(const struct bench_opts *o, struct world *w, struct report *r)
{
	return run_cycles(o, w, r, false);
}

int
mode_throughput(const struct bench_opts *o, struct world *w, struct report *r)
{
	return run_cycles(o, w, r, true);
}

/* Parse "2,10,100" into ks; returns the count, or -1. */
static int
parse_queues(const char *s, int *ks, int max)
{
	int n = 0;

	while (*s != '\0') {
		char *end;
		long v;

		errno = 0;
		v = strtol(s, &end, 10);
		if (errno != 0 || end == s || v < 2 || v > 1024 || n == max ||
		    (*end != ',' && *end != '\0'))
			return -1;
		ks[n++] = (int)v;
		s = *end == ',' ? end + 1 : end;
	}
	return n;
}

int
mode_contention(const struct bench_opts *o, struct world *w, struct report *r)
{
	int ks[16], nk = parse_queues(o->queues, ks, 16), rc = 0;
	char key[64], name[64];

	if (nk <= 0) {
		log_error("bench: --queues wants numbers from 2 to 1024, "
			  "separated by commas");
		return 1;
	}
	report_param(r, "handovers", (double)o->ops);
	report_param(r, "warmup", (double)o->warmup);
	report_param(r, "rounds", o->rounds);
	report_param(r, "inflight", o->inflight);
	for (int i = 0; i < nk && rc == 0; i++) {
		char tag[16], prefix[16];
		struct handover_opts ho = {
		    .clients = ks[i],
		    .handovers = o->ops,
		    .warmup = o->warmup,
		    .rounds = o->rounds,
		    .timeout_ms = o->timeout_s * 1000,
		    .tag = tag,
		};
		struct handover_result hr;

		snprintf(tag, sizeof(tag), "k%d", ks[i]);
		snprintf(prefix, sizeof(prefix), "k%d.", ks[i]);
		fprintf(stderr, "bench: contention with %d clients\n", ks[i]);
		if (handover_run(w, &ho, &hr) != 0) {
			rc = 1;
			handover_result_free(&hr);
			break;
		}
		snprintf(key, sizeof(key), "%shandover_", prefix);
		add_latency(r, key, hr.lat);
		snprintf(key, sizeof(key), "%shandovers_per_s", prefix);
		report_metric(r, key, "1/s",
		    per((double)hr.n[W_MQLOCKD], hr.secs[W_MQLOCKD]),
		    per((double)hr.n[W_STANDIN], hr.secs[W_STANDIN]));
		snprintf(key, sizeof(key), "%scpu_us_per_handover", prefix);
		report_metric(r, key, "us",
		    per(hr.cpu_us[W_MQLOCKD], (double)hr.n[W_MQLOCKD]),
		    per(hr.cpu_us[W_STANDIN], (double)hr.n[W_STANDIN]));
		snprintf(key, sizeof(key), "%shandover_p50_us", prefix);
		snprintf(name, sizeof(name), "hand-over p50, K=%d", ks[i]);
		report_target(r, name, key, REPORT_RATIO_MAX, T_P50_RATIO);
		snprintf(key, sizeof(key), "%shandovers_per_s", prefix);
		snprintf(name, sizeof(name), "hand-overs/s, K=%d", ks[i]);
		report_target(r, name, key, REPORT_RATIO_MIN, T_TPUT_RATIO);
		if (hr.errors > 0) {
			log_error("bench: K=%d: %lu errors", ks[i], hr.errors);
			rc = 1;
		}
		handover_result_free(&hr);
	}
	return rc;
}

int
mode_scale(const struct bench_opts *o, struct world *w, struct report *r)
{
	struct scale_opts so = {
	    .locks = o->held,
	    .waiters = o->waiters,
	    .base_locks = o->base,
	    .conns = o->conns,
	    .window = o->fill_window,
	    .probe_ops = o->ops,
	    .rounds = o->rounds,
	    .timeout_ms = o->timeout_s * 1000,
	    .restart_timeout_ms = o->restart_timeout_s * 1000,
	    .tag = "scale",
	};
	struct scale_result sr;
	struct stats_sum b[W_NCOORD], f[W_NCOORD];
	int rc = 1;

	report_param(r, "held", (double)o->held);
	report_param(r, "waiters", (double)o->waiters);
	report_param(r, "base", (double)o->base);
	report_param(r, "conns", o->conns);
	report_param(r, "fill_window", o->fill_window);
	report_param(r, "probe_ops", (double)o->ops);
	report_param(r, "inflight", o->inflight);
	if (scale_run(w, &so, &sr) != 0)
		goto out;
	report_metric(r, "fill_ops_per_s", "1/s", sr.fill_ops_per_s[W_MQLOCKD],
	    sr.fill_ops_per_s[W_STANDIN]);
	report_metric(r, "fill_cpu_us_per_op", "us", sr.fill_cpu_us[W_MQLOCKD],
	    sr.fill_cpu_us[W_STANDIN]);
	add_latency(r, "base.", sr.base);
	add_latency(r, "full.", sr.full);
	for (int c = 0; c < W_NCOORD; c++) {
		b[c] = stats_summary(sr.base[c]);
		f[c] = stats_summary(sr.full[c]);
	}
	report_metric(r, "full_vs_base_p50", "x",
	    per(f[W_MQLOCKD].p50, b[W_MQLOCKD].p50),
	    per(f[W_STANDIN].p50, b[W_STANDIN].p50));
	report_metric(r, "full_vs_base_p99", "x",
	    per(f[W_MQLOCKD].p99, b[W_MQLOCKD].p99),
	    per(f[W_STANDIN].p99, b[W_STANDIN].p99));
	report_metric(r, "base.cpu_us_per_op", "us", sr.cpu_base[W_MQLOCKD],
	    sr.cpu_base[W_STANDIN]);
	report_metric(r, "full.cpu_us_per_op", "us", sr.cpu_full[W_MQLOCKD],
	    sr.cpu_full[W_STANDIN]);
	report_metric(r, "rss_mb", "MB", sr.rss_kb[W_MQLOCKD] / 1024,
	    sr.rss_kb[W_STANDIN] / 1024);
	report_metric(r, "hwm_mb", "MB", sr.hwm_kb[W_MQLOCKD] / 1024,
	    sr.hwm_kb[W_STANDIN] / 1024);
	report_metric(r, "broker_rss_mb", "MB", sr.broker_rss_kb / 1024,
	    sr.broker_rss_kb / 1024);
	report_metric(r, "restart_online_ms", "ms", sr.online_ms[W_MQLOCKD],
	    sr.online_ms[W_STANDIN]);
	report_metric(r, "restart_serving_ms", "ms", sr.serving_ms[W_MQLOCKD],
	    sr.serving_ms[W_STANDIN]);
	report_metric(r, "restart_rss_mb", "MB",
	    sr.rss_restart_kb[W_MQLOCKD] / 1024,
	    sr.rss_restart_kb[W_STANDIN] / 1024);
	report_target(r, "RSS with held + waiters", "rss_mb", REPORT_ABS_MAX,
	    T_RSS_MB);
	report_target(r, "p50 at size / at base", "full_vs_base_p50",
	    REPORT_ABS_MAX, T_SIZE_RATIO);
	report_target(r, "restart to serving", "restart_serving_ms",
	    REPORT_ABS_MAX, T_RESTART_MS);
	report_note(r,
	    "the stand-in restarts empty: its restart time is the "
	    "floor (process start, connect, subscribe)");
	rc = sr.errors > 0 ? 1 : 0;
	if (sr.errors > 0)
		log_error("bench: scale: %lu errors", sr.errors);
out:
	scale_result_free(&sr);
	return rc;
}

/* One workload of the ha mode, its figures under prefix. */
static int
ha_cycles(const struct bench_opts *o, struct world *w, struct report *r,
    const struct cycle_opts *co, const char *prefix, struct stats_sum *p50_from)
{
	struct cycle_result cr;
	char key[64];
	int rc = 1;

	if (cycle_run(w, co, &cr) != 0)
		goto out;
	add_latency(r, prefix, cr.lat);
	for (int c = 0; c < W_NCOORD; c++)
		p50_from[c] = stats_summary(cr.lat[c]);
	snprintf(key, sizeof(key), "%sops_per_s", prefix);
	report_metric(r, key, "1/s",
	    per((double)cr.ops[W_MQLOCKD], cr.secs[W_MQLOCKD]),
	    per((double)cr.ops[W_STANDIN], cr.secs[W_STANDIN]));
	snprintf(key, sizeof(key), "%scpu_us_per_op", prefix);
	report_metric(r, key, "us",
	    per(cr.cpu_us[W_MQLOCKD], (double)cr.ops[W_MQLOCKD]),
	    per(cr.cpu_us[W_STANDIN], (double)cr.ops[W_STANDIN]));
	rc = cycles_rc(o, r, &cr);
out:
	cycle_result_free(&cr);
	return rc;
}

int
mode_ha(const struct bench_opts *o, struct world *w, struct report *r)
{
	struct cycle_opts lat = {
	    .clients = 1,
	    .locks = 1,
	    .window = 1,
	    .ops = o->ops,
	    .warmup = o->warmup,
	    .rounds = o->rounds,
	    .timeout_ms = o->timeout_s * 1000,
	    .tag = "halat",
	    .only = -1,
	};
	struct cycle_opts tput = {
	    .clients = HA_TPUT_CLIENTS,
	    .locks = HA_TPUT_LOCKS,
	    .window = o->inflight / 4 / HA_TPUT_CLIENTS,
	    .ops = o->ops * 10,
	    .warmup = o->warmup * 10,
	    .rounds = o->rounds,
	    .timeout_ms = o->timeout_s * 1000,
	    .tag = "hatput",
	    .only = -1,
	};
	struct stats *put = stats_new(), *txn = stats_new();
	struct stats_sum l[W_NCOORD], t[W_NCOORD], sp, st;
	int rc = 1, rc2;

	if (world_etcd(w) == NULL) {
		log_error("bench: the ha mode needs etcd");
		goto out;
	}
	if (put == NULL || txn == NULL)
		goto out;
	if (tput.window > tput.locks)
		tput.window = tput.locks;
	if (tput.window < 1)
		tput.window = 1;
	report_sides(r, "etcd", "sqlite");
	report_param(r, "ops", (double)o->ops);
	report_param(r, "warmup", (double)o->warmup);
	report_param(r, "rounds", o->rounds);
	report_param(r, "tput_clients", HA_TPUT_CLIENTS);
	report_param(r, "tput_locks_per_client", HA_TPUT_LOCKS);
	report_param(r, "tput_window", tput.window);
	report_param(r, "inflight", o->inflight);
	/* The floor is measured around the workloads, at the same times. */
	fprintf(stderr, "bench: ha: etcd's own latency\n");
	if (etcdfloor_run(world_etcd(w), o->ops / 2, o->warmup, put, txn) != 0)
		goto out;
	fprintf(stderr, "bench: ha: latency, 1 client\n");
	if ((rc = ha_cycles(o, w, r, &lat, "lat.", l)) == 1)
		goto out;
	fprintf(stderr, "bench: ha: etcd's own latency\n");
	if (etcdfloor_run(world_etcd(w), o->ops / 2, o->warmup, put, txn) != 0)
		goto fail;
	fprintf(stderr, "bench: ha: throughput, %d clients\n", HA_TPUT_CLIENTS);
	if ((rc2 = ha_cycles(o, w, r, &tput, "tput.", t)) == 1)
		goto fail;
	rc = rc > rc2 ? rc : rc2;
	sp = stats_summary(put);
	st = stats_summary(txn);
	report_metric(r, "etcd_put_p50_us", "us", sp.p50, NAN);
	report_metric(r, "etcd_put_p99_us", "us", sp.p99, NAN);
	report_metric(r, "etcd_txn_p50_us", "us", st.p50, NAN);
	report_metric(r, "etcd_txn_p99_us", "us", st.p99, NAN);
	/* etcd's p50 over its budget: etcd's put p50 + sqlite's p50. */
	report_metric(r, "lat.p50_over_budget", "x",
	    per(l[W_MQLOCKD].p50, sp.p50 + l[W_STANDIN].p50), NAN);
	report_target(r, "throughput, 32 clients", "tput.ops_per_s",
	    REPORT_RATIO_MIN, T_HA_TPUT_RATIO);
	report_target(r, "p50 <= etcd put p50 + sqlite p50",
	    "lat.p50_over_budget", REPORT_ABS_MAX, T_HA_P50_BUDGET);
	report_note(r,
	    "etcd: mqlockd --etcd (prefix etcd); sqlite: mqlockd --db "
	    "(prefix sqlite); ratio = etcd / sqlite");
	report_note(r,
	    "etcd_put: one put of a 64-byte value; etcd_txn: a batch of one "
	    "lock and one client (the fence, two puts); one at a time");
	goto out;
fail:
	rc = 1;
out:
	stats_free(put);
	stats_free(txn);
	return rc;
}
