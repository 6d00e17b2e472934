#include "bench/report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 64
#define TEXT_MAX 256
#define ITEMS_MAX 128

struct metric {
	char key[KEY_MAX];
	char unit[16];
	double v[2]; /* mqlockd, stand-in */
};

struct target {
	char name[KEY_MAX];
	char key[KEY_MAX];
	enum report_target kind;
	double limit;
	double value;
	bool met;
};

struct kv {
	char key[KEY_MAX];
	char text[TEXT_MAX];
	double num;
};

struct report {
	char mode[32];
	char side[2][16]; /* the columns: table heading and JSON key */
	struct kv params[ITEMS_MAX];
	size_t nparams;
	struct kv conds[ITEMS_MAX];
	size_t nconds;
	struct metric m[ITEMS_MAX];
	size_t nm;
	struct target t[ITEMS_MAX];
	size_t nt;
	struct kv notes[ITEMS_MAX];
	size_t nnotes;
};

struct report *
report_new(const char *mode)
{
	struct report *r = calloc(1, sizeof(*r));

	if (r != NULL) {
		snprintf(r->mode, sizeof(r->mode), "%s", mode);
		report_sides(r, "mqlockd", "standin");
	}
	return r;
}

void
report_sides(struct report *r, const char *first, const char *second)
{
	snprintf(r->side[0], sizeof(r->side[0]), "%s", first);
	snprintf(r->side[1], sizeof(r->side[1]), "%s", second);
}

void
report_free(struct report *r)
{
	free(r);
}

void
report_param(struct report *r, const char *key, double value)
{
	if (r->nparams == ITEMS_MAX)
		return;
	snprintf(r->params[r->nparams].key, KEY_MAX, "%s", key);
	r->params[r->nparams++].num = value;
}

void
report_cond(struct report *r, const char *key, const char *text)
{
	if (r->nconds == ITEMS_MAX)
		return;
	snprintf(r->conds[r->nconds].key, KEY_MAX, "%s", key);
	snprintf(r->conds[r->nconds++].text, TEXT_MAX, "%s", text);
}

void
report_note(struct report *r, const char *text)
{
	if (r->nnotes == ITEMS_MAX)
		return;
	snprintf(r->notes[r->nnotes++].text, TEXT_MAX, "%s", text);
}

void
report_metric(struct report *r, const char *key, const char *unit,
    double mqlockd, double standin)
{
	struct metric *m;

	if (r->nm == ITEMS_MAX)
		return;
	m = &r->m[r->nm++];
	snprintf(m->key, sizeof(m->key), "%s", key);
	snprintf(m->unit, sizeof(m->unit), "%s", unit);
	m->v[0] = mqlockd;
	m->v[1] = standin;
}

static const struct metric *
find(const struct report *r, const char *key)
{
	for (size_t i = 0; i < r->nm; i++)
		if (strcmp(r->m[i].key, key) == 0)
			return &r->m[i];
	return NULL;
}

static double
ratio(const struct metric *m)
{
	if (isnan(m->v[0]) || isnan(m->v[1]) || m->v[1] == 0)
		return NAN;
	return m->v[0] / m->v[1];
}

bool
report_target(struct report *r, const char *name, const char *key,
    enum report_target kind, double limit)
{
	const struct metric *m = find(r, key);
	struct target *t;
	double v;

	if (r->nt == ITEMS_MAX)
		return false;
	t = &r->t[r->nt++];
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->key, sizeof(t->key), "%s", key);
	t->kind = kind;
	t->limit = limit;
	v = m == NULL ? NAN : kind == REPORT_ABS_MAX ? m->v[0] : ratio(m);
	t->value = v;
	t->met =
	    !isnan(v) && (kind == REPORT_RATIO_MIN ? v >= limit : v <= limit);
	return t->met;
}

int
report_failed_targets(const struct report *r)
{
	int n = 0;

	for (size_t i = 0; i < r->nt; i++)
		n += !r->t[i].met;
	return n;
}

/* A value as the table shows it: few digits, no exponent. */
static void
fmt(char *buf, size_t size, double v)
{
	if (isnan(v))
		snprintf(buf, size, "-");
	else if (fabs(v) >= 100 || v == floor(v))
		snprintf(buf, size, "%.0f", v);
	else if (fabs(v) >= 10)
		snprintf(buf, size, "%.1f", v);
	else
		snprintf(buf, size, "%.2f", v);
}

static const char *
kind_text(const struct report *r, enum report_target k, char *buf, size_t size)
{
	switch (k) {
	case REPORT_RATIO_MAX:
		return "ratio <=";
	case REPORT_RATIO_MIN:
		return "ratio >=";
	case REPORT_ABS_MAX:
	default:
		snprintf(buf, size, "%s <=", r->side[0]);
		return buf;
	}
}

void
report_print_table(const struct report *r, FILE *f)
{
	char a[32], b[32], c[32];

	fprintf(f, "mqlock-bench %s\n", r->mode);
	for (size_t i = 0; i < r->nconds; i++)
		fprintf(f, "  %-12s %s\n", r->conds[i].key, r->conds[i].text);
	fprintf(f, "  %-12s", "params");
	for (size_t i = 0; i < r->nparams; i++) {
		fmt(a, sizeof(a), r->params[i].num);
		fprintf(f, " %s=%s", r->params[i].key, a);
	}
	fprintf(f, "\n\n  %-30s %12s %12s %8s\n", "metric", r->side[0],
	    strcmp(r->side[1], "standin") == 0 ? "stand-in" : r->side[1],
	    "ratio");
	for (size_t i = 0; i < r->nm; i++) {
		char label[KEY_MAX + 20];

		fmt(a, sizeof(a), r->m[i].v[0]);
		fmt(b, sizeof(b), r->m[i].v[1]);
		fmt(c, sizeof(c), ratio(&r->m[i]));
		snprintf(label, sizeof(label), "%s", r->m[i].key);
		fprintf(f, "  %-30s %12s %12s %8s\n", label, a, b, c);
	}
	if (r->nt > 0)
		fprintf(f, "\n  %-34s %-22s %8s  %s\n", "target", "limit",
		    "value", "");
	for (size_t i = 0; i < r->nt; i++) {
		char lim[64], kb[32];

		fmt(a, sizeof(a), r->t[i].limit);
		snprintf(lim, sizeof(lim), "%s %s",
		    kind_text(r, r->t[i].kind, kb, sizeof(kb)), a);
		fmt(b, sizeof(b), r->t[i].value);
		fprintf(f, "  %-34s %-22s %8s  %s\n", r->t[i].name, lim, b,
		    r->t[i].met ? "met" : "MISSED");
	}
	for (size_t i = 0; i < r->nnotes; i++)
		fprintf(f, "  note: %s\n", r->notes[i].text);
	fprintf(f, "\n");
}

static void
add_num(cJSON *o, const char *key, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddNumberToObject(o, key, round(v * 1000) / 1000);
}

void
report_print_json(const struct report *r, FILE *f)
{
	cJSON *o = cJSON_CreateObject(), *p, *side[2], *ra, *ts, *cs, *ns;
	char *text;

	if (o == NULL)
		return;
	cJSON_AddStringToObject(o, "mode", r->mode);
	p = cJSON_AddObjectToObject(o, "params");
	for (size_t i = 0; p != NULL && i < r->nparams; i++)
		add_num(p, r->params[i].key, r->params[i].num);
	side[0] = cJSON_AddObjectToObject(o, r->side[0]);
	side[1] = cJSON_AddObjectToObject(o, r->side[1]);
	ra = cJSON_AddObjectToObject(o, "ratio");
	for (size_t i = 0;
	     side[0] != NULL && side[1] != NULL && ra != NULL && i < r->nm;
	     i++) {
		add_num(side[0], r->m[i].key, r->m[i].v[0]);
		add_num(side[1], r->m[i].key, r->m[i].v[1]);
		add_num(ra, r->m[i].key, ratio(&r->m[i]));
	}
	ts = cJSON_AddArrayToObject(o, "targets");
	for (size_t i = 0; ts != NULL && i < r->nt; i++) {
		cJSON *t = cJSON_CreateObject();

		if (t == NULL)
			break;
		cJSON_AddStringToObject(t, "name", r->t[i].name);
		cJSON_AddStringToObject(t, "metric", r->t[i].key);
		cJSON_AddStringToObject(t, "kind",
		    r->t[i].kind == REPORT_ABS_MAX         ? "max"
			: r->t[i].kind == REPORT_RATIO_MAX ? "ratio_max"
							   : "ratio_min");
		add_num(t, "limit", r->t[i].limit);
		add_num(t, "value", r->t[i].value);
		cJSON_AddBoolToObject(t, "met", r->t[i].met);
		cJSON_AddItemToArray(ts, t);
	}
	cs = cJSON_AddObjectToObject(o, "conditions");
	for (size_t i = 0; cs != NULL && i < r->nconds; i++)
		cJSON_AddStringToObject(cs, r->conds[i].key, r->conds[i].text);
	ns = cJSON_AddArrayToObject(o, "notes");
	for (size_t i = 0; ns != NULL && i < r->nnotes; i++)
		cJSON_AddItemToArray(ns, cJSON_CreateString(r->notes[i].text));
	if ((text = cJSON_PrintUnformatted(o)) != NULL) {
		fprintf(f, "%s\n", text);
		free(text);
	}
	cJSON_Delete(o);
}
