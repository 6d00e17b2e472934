#include "io/journal.h"

#include <stdio.h>
#include <stdlib.h>

#include "io/store.h"
#include "io/store_etcd.h"

/* store_etcd's results are the journal's, number for number. */
_Static_assert((int)STORE_ETCD_OK == (int)JOURNAL_OK &&
	(int)STORE_ETCD_UNAVAILABLE == (int)JOURNAL_UNAVAILABLE &&
	(int)STORE_ETCD_FENCED == (int)JOURNAL_FENCED &&
	(int)STORE_ETCD_BROKEN == (int)JOURNAL_BROKEN,
    "store_etcd_rc and journal_rc differ");

/*
 * Two kinds, so a switch in each function rather than a table of
 * function pointers: every difference between them is in this file.
 */
enum kind { SQLITE, ETCD };

struct journal {
	enum kind kind;
	struct store *sqlite;
	struct store_etcd *etcd;
	char name[320];
};

static struct journal *
journal_new(enum kind kind, char *err, size_t errsz)
{
	struct journal *j = calloc(1, sizeof(*j));

	if (j == NULL)
		snprintf(err, errsz, "out of memory");
	else
		j->kind = kind;
	return j;
}

struct journal *
journal_open_sqlite(const char *path, char *err, size_t errsz)
{
	struct journal *j = journal_new(SQLITE, err, errsz);

	if (j == NULL)
		return NULL;
	if ((j->sqlite = store_open(path, err, errsz)) == NULL) {
		free(j);
		return NULL;
	}
	snprintf(j->name, sizeof(j->name), "%s", path);
	return j;
}

struct journal *
journal_open_etcd(const struct etcd_opts *o, const char *prefix, char *err,
    size_t errsz)
{
	struct journal *j = journal_new(ETCD, err, errsz);

	if (j == NULL)
		return NULL;
	if ((j->etcd = store_etcd_open(o, prefix, err, errsz)) == NULL) {
		free(j);
		return NULL;
	}
	snprintf(j->name, sizeof(j->name), "etcd %s", prefix);
	return j;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	store_close(j->sqlite);
	store_etcd_close(j->etcd);
	free(j);
}

void
journal_set_term(struct journal *j, int64_t term)
{
	if (j->kind == ETCD)
		store_etcd_set_term(j->etcd, term);
}

/* sqlite's 0 / -1 (logged by store.c) as a journal_rc. */
static int
sqlite_rc(int rc)
{
	return rc == 0 ? JOURNAL_OK : JOURNAL_BROKEN;
}

int
journal_load(struct journal *j, struct locktab *t)
{
	return j->kind == ETCD ? store_etcd_load(j->etcd, t)
			       : sqlite_rc(store_load(j->sqlite, t));
}

int
journal_next_epoch(struct journal *j, uint64_t *epoch)
{
	return j->kind == ETCD ? store_etcd_next_epoch(j->etcd, epoch)
			       : sqlite_rc(store_next_epoch(j->sqlite, epoch));
}

int
journal_flush(struct journal *j, struct locktab *t)
{
	return j->kind == ETCD ? store_etcd_flush(j->etcd, t)
			       : sqlite_rc(store_flush(j->sqlite, t));
}

size_t
journal_batch_records(const struct journal *j)
{
	return j->kind == ETCD ? store_etcd_batch_records(j->etcd) : 0;
}

const char *
journal_name(const struct journal *j)
{
	return j->name;
}

const char *
journal_error(const struct journal *j)
{
	return j->kind == ETCD ? store_etcd_error(j->etcd) : "";
}
