/*
 * report: the figures of one benchmark run, as a table and one JSON line.
 *
 * Every metric has a value for mqlockd and one for the stand-in measured in
 * the same run; the ratio is mqlockd / stand-in.  Targets (issue 6) are
 * checked either on that ratio or on mqlockd's own value.  A value that
 * does not apply is NAN: "-" in the table, null in the JSON.
 */
#ifndef MQLOCK_BENCH_REPORT_H
#define MQLOCK_BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

enum report_target {
	REPORT_RATIO_MAX, /* mqlockd / stand-in <= limit */
	REPORT_RATIO_MIN, /* mqlockd / stand-in >= limit */
	REPORT_ABS_MAX    /* mqlockd's value <= limit */
};

struct report;

/* report_new(mode): an empty report, or NULL when memory runs out. */
struct report *report_new(const char *mode);

/* report_free(r): NULL is a no-op. */
void report_free(struct report *r);

/*
 * report_sides(r, first, second): what the two columns are, in the table
 * and as the JSON keys ("mqlockd" and "standin" unless set; at most 15
 * bytes each).  The ratio stays first / second.
 */
void report_sides(struct report *r, const char *first, const char *second);

/* report_param(r, key, value): a run parameter ("clients", "ops"...). */
void report_param(struct report *r, const char *key, double value);

/* report_cond(r, key, text): a measurement condition (machine, versions). */
void report_cond(struct report *r, const char *key, const char *text);

/*
 * report_metric(r, key, unit, mqlockd, standin): one figure.  key is used
 * in the JSON as is ("p50_us", "k10.handover_p50_us"); keys are copied.
 */
void report_metric(struct report *r, const char *key, const char *unit,
    double mqlockd, double standin);

/*
 * report_target(r, name, key, kind, limit): a target on metric key (added
 * before).  Returns whether it is met; an unmeasured value is not met.
 */
bool report_target(struct report *r, const char *name, const char *key,
    enum report_target kind, double limit);

/* report_note(r, text): a line printed under the table (and in JSON). */
void report_note(struct report *r, const char *text);

/* report_print_table(r, f): the readable table. */
void report_print_table(const struct report *r, FILE *f);

/* report_print_json(r, f): the JSON line, newline-terminated. */
void report_print_json(const struct report *r, FILE *f);

/* report_failed_targets(r): how many targets were missed. */
int report_failed_targets(const struct report *r);

#endif
