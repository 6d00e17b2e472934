/*
 * store: the journal round-trips the lock table through sqlite, refuses a
 * second opener, and reports unusable files clearly.
 *
 * sqlite3_bind_text() is wrapped here (this program's definition wins over
 * the library's for store.c's calls) so that a test can make one fail.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/locktab.h"
#include "io/store.h"
#include "ltfix.h"
#include "test_hash.h"
#include "tutil.h"

static const struct lt_config cfg = {
    .idle_timeout = 10000,
    .idle_warning = 2000,
    .grace = 3000,
    .waiters_per_lock = MQL_WAITERS_PER_LOCK,
    .locks_per_client = MQL_LOCKS_PER_CLIENT,
    .hasher = {siphash_str, test_hash_key},
};

struct fixture {
	char dir[64];
	char path[96];
};

/* sqlite3_bind_text() refuses this value (SQLITE_NOMEM), when not NULL. */
static const char *refuse_bind;

int
sqlite3_bind_text(sqlite3_stmt *st, int i, const char *v, int n,
    void (*destroy)(void *))
{
	static int (
	    *real)(sqlite3_stmt *, int, const char *, int, void (*)(void *));
	void *sym;

	if (refuse_bind != NULL && v != NULL && strcmp(v, refuse_bind) == 0)
		return SQLITE_NOMEM;
	if (real == NULL) {
		sym = dlsym(RTLD_NEXT, "sqlite3_bind_text");
		assert_non_null(sym);
		memcpy(&real, &sym, sizeof(real));
	}
	return real(st, i, v, n, destroy);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/mqlock-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/j.db", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* One request that the table must accept. */
static void
apply_req(struct locktab *t, lt_ms now, enum lt_op op, const char *lock,
    const char *client, const char *user)
{
	assert_int_equal(ltfix_request(t, now, op, lock, client, user), LT_OK);
}

static struct locktab *
reload(const char *path)
{
	char err[256];
	struct store *s = store_open(path, err, sizeof(err));
	struct locktab *t = locktab_new(&cfg);

	assert_non_null(s);
	assert_non_null(t);
	assert_int_equal(store_load(s, t), 0);
	/* A restored table is clean: nothing to journal again. */
	assert_int_equal(locktab_dirty_locks(t), 0);
	assert_null(locktab_check(t));
	store_close(s);
	return t;
}

static void
flush(struct store *s, struct locktab *t)
{
	assert_int_equal(store_flush(s, t), 0);
	locktab_dirty_done(t);
}

static void
test_round_trip(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct store *s = store_open(f->path, err, sizeof(err));
	struct locktab *t = locktab_new(&cfg), *r;

	assert_non_null(s);
	apply_req(t, 1000, LT_OP_ACQUIRE, "doc-1", "alice", "Alice");
	apply_req(t, 1001, LT_OP_ACQUIRE, "doc-1", "bob", "Bob \"B\" ✓");
	apply_req(t, 1002, LT_OP_ACQUIRE, "doc-1", "carol", "");
	apply_req(t, 1003, LT_OP_ACQUIRE, "doc-2", "bob", "Bob");
	apply_req(t, 1004, LT_OP_ACQUIRE, "doc-3", "dave", "Dave");
	flush(s, t);
	ltfix_will(t, 1005, "carol");
	apply_req(t, 1006, LT_OP_RELEASE, "doc-3", "dave", "");
	flush(s, t);
	store_close(s);

	r = reload(f->path);
	ltfix_assert_same_tables(t, r, NULL);
	assert_int_equal(locktab_nlocks(r), 2); /* doc-3 was freed */
	/* Tokens 1..3 in the first batch reserved up to 3 + 1000. */
	assert_int_equal(locktab_last_token(r), 1003);
	assert_true(
	    locktab_view_client(r, "carol", &(struct lt_client_rec){0}));
	ltfix_assert_same_client(t, r, "carol");
	assert_true(locktab_view_client(r, "bob", &(struct lt_client_rec){0}));
	ltfix_assert_same_client(t, r, "bob");
	/* dave holds nothing: his row is gone. */
	assert_false(
	    locktab_view_client(r, "dave", &(struct lt_client_rec){0}));
	locktab_free(r);
	locktab_free(t);
}

/* Only committed batches survive: a flush that never ran leaves no trace. */
static void
test_unflushed_changes_are_not_journaled(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct store *s = store_open(f->path, err, sizeof(err));
	struct locktab *t = locktab_new(&cfg), *r;

	apply_req(t, 10, LT_OP_ACQUIRE, "a", "alice", "");
	flush(s, t);
	apply_req(t, 11, LT_OP_ACQUIRE, "b", "alice", "");
	store_close(s);
	r = reload(f->path);
	assert_int_equal(locktab_nlocks(r), 1);
	assert_int_equal(locktab_last_token(r), 1001);
	locktab_free(r);
	locktab_free(t);
}

/* The token counter survives even when every lock is free again. */
static void
test_token_survives_free_table(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct store *s = store_open(f->path, err, sizeof(err));
	struct locktab *t = locktab_new(&cfg), *r;

	for (int i = 0; i < 5; i++) {
		apply_req(t, 10 + i, LT_OP_ACQUIRE, "a", "alice", "");
		apply_req(t, 10 + i, LT_OP_RELEASE, "a", "alice", "");
		flush(s, t);
	}
	store_close(s);
	r = reload(f->path);
	assert_int_equal(locktab_nlocks(r), 0);
	assert_int_equal(locktab_last_token(r), 1001);
	locktab_free(r);
	locktab_free(t);
}

/* The one integer that sql selects from the journal at path. */
static int64_t
db_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/*
 * The journal writes the token counter only when a grant passes the
 * reserved block; a restart goes on above the block, and a new block is
 * reserved past it, so no token repeats across any number of restarts.
 */
static void
test_token_blocks(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct store *s = store_open(f->path, err, sizeof(err));
	struct locktab *t = locktab_new(&cfg), *r;
	uint64_t before;

	/* 1,002 grants: the block of token 1 ends at 1001; 1002 passes it. */
	for (int i = 0; i < 1002; i++) {
		apply_req(t, 10 + i, LT_OP_ACQUIRE, "a", "alice", "");
		apply_req(t, 10 + i, LT_OP_RELEASE, "a", "alice", "");
		flush(s, t);
	}
	assert_int_equal(locktab_last_token(t), 1002);
	store_close(s);

	assert_int_equal(
	    db_int(f->path, "SELECT value FROM meta WHERE key = 'last_token'"),
	    2002);

	/* Restart: the next grant is above the block, and reserves anew. */
	r = reload(f->path);
	before = locktab_last_token(r);
	assert_int_equal(before, 2002);
	s = store_open(f->path, err, sizeof(err));
	assert_non_null(s);
	apply_req(r, 5000, LT_OP_ACQUIRE, "b", "bob", "");
	flush(s, r);
	assert_int_equal(locktab_last_token(r), 2003);
	store_close(s);
	locktab_free(r);
	r = reload(f->path);
	assert_int_equal(locktab_last_token(r), 3003);
	locktab_free(r);
	locktab_free(t);
}

/* The layout of version 1, as it was written. */
static const char schema_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE clients(id TEXT PRIMARY KEY, session TEXT NOT NULL,"
    " connected INTEGER NOT NULL, max_conn INTEGER NOT NULL,"
    " grace_deadline INTEGER NOT NULL);"
    "CREATE TABLE locks(id TEXT PRIMARY KEY, holder TEXT, holder_user TEXT,"
    " token INTEGER NOT NULL, since INTEGER NOT NULL,"
    " idle_deadline INTEGER NOT NULL, warned INTEGER NOT NULL,"
    " queue TEXT NOT NULL);"
    "INSERT INTO meta VALUES('schema', 1), ('last_token', 41),"
    " ('epoch', 7);"
    "INSERT INTO clients VALUES"
    " ('alice', 'session-of-alice-000000', 1, 4, 0),"
    " ('bob', 'session-of-bob-000000', 0, 4, 90000);"
    "INSERT INTO locks VALUES"
    " ('doc', 'alice', 'Alice', 41, 1000, 601000, 0,"
    " '[[\"bob\",\"Bob\"]]');";

/* A version 1 journal is converted in place, losing nothing. */
static void
test_schema_1_converted(void **state)
{
	struct fixture *f = *state;
	struct lt_lock_rec rec;
	struct lt_client_rec cr;
	struct locktab *r;
	sqlite3 *db;
	uint64_t epoch = 0;
	char err[256];
	struct store *s;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, schema_v1, NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	r = reload(f->path);
	assert_int_equal(locktab_nlocks(r), 1);
	assert_int_equal(locktab_nclients(r), 2);
	assert_int_equal(locktab_last_token(r), 41);
	assert_true(locktab_view(r, "doc", &rec));
	assert_string_equal(rec.holder, "alice");
	assert_string_equal(rec.holder_user, "Alice");
	assert_int_equal(rec.token, 41);
	assert_int_equal(rec.idle_deadline, 601000);
	assert_int_equal(rec.nwaiters, 1);
	assert_string_equal(rec.waiters[0].client, "bob");
	assert_true(locktab_view_client(r, "bob", &cr));
	assert_int_equal(cr.state, LT_CS_GONE);
	assert_int_equal(cr.grace_deadline, 90000);
	locktab_free(r);

	s = store_open(f->path, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(store_next_epoch(s, &epoch), 0);
	assert_int_equal(epoch, 8);
	store_close(s);

	/* Now schema 3, every table without rowid. */
	assert_int_equal(
	    db_int(f->path, "SELECT value FROM meta WHERE key = 'schema'"), 3);
	assert_int_equal(db_int(f->path,
			     "SELECT count(*) FROM sqlite_schema WHERE type ="
			     " 'table' AND sql NOT LIKE '%WITHOUT ROWID'"),
	    0);
	assert_int_equal(db_int(f->path,
			     "SELECT count(*) FROM sqlite_schema WHERE type ="
			     " 'table'"),
	    3);
}

/* A journal from a newer mqlockd is refused and left alone. */
static void
test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	struct store *s = store_open(f->path, err, sizeof(err));
	sqlite3 *db;

	assert_non_null(s);
	store_close(s);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
			     "UPDATE meta SET value = 4 WHERE key = 'schema'",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_null(store_open(f->path, err, sizeof(err)));
	assert_non_null(strstr(err, "schema 4"));
}

static void
test_epoch_increases(void **state)
{
	struct fixture *f = *state;
	char err[256];
	uint64_t e1 = 0, e2 = 0;
	struct store *s = store_open(f->path, err, sizeof(err));

	assert_int_equal(store_next_epoch(s, &e1), 0);
	store_close(s);
	s = store_open(f->path, err, sizeof(err));
	assert_int_equal(store_next_epoch(s, &e2), 0);
	assert_true(e2 > e1);
	store_close(s);
}

static void
test_second_opener_refused(void **state)
{
	struct fixture *f = *state;
	char err[256] = "";
	struct store *s = store_open(f->path, err, sizeof(err));
	pid_t pid;
	int status;

	assert_non_null(s);
	/* sqlite locks per process: try from a child. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char e[256] = "";
		struct store *s2 = store_open(f->path, e, sizeof(e));

		_exit(s2 == NULL && strstr(e, "in use") != NULL ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	store_close(s);
}

static void
test_unusable_files(void **state)
{
	struct fixture *f = *state;
	char err[256] = "", path[160];
	FILE *fp;

	/* A directory that does not exist. */
	snprintf(path, sizeof(path), "%s/missing/j.db", f->dir);
	assert_null(store_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, path));

	/* A file that is not a database. */
	snprintf(path, sizeof(path), "%s/garbage.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 512; i++)
		fputs("this is not sqlite ", fp);
	fclose(fp);
	err[0] = '\0';
	assert_null(store_open(path, err, sizeof(err)));
	assert_true(strlen(err) > 0);

	/* A read-only directory (root bypasses modes, so only if it bites). */
	snprintf(path, sizeof(path), "%s/ro", f->dir);
	assert_int_equal(mkdir(path, 0500), 0);
	if (geteuid() != 0) {
		snprintf(path, sizeof(path), "%s/ro/j.db", f->dir);
		assert_null(store_open(path, err, sizeof(err)));
	}
}

/* A journal whose rows break the table's rules is refused, not half-used. */
static void
test_corrupt_rows_refused(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct store *s = store_open(f->path, err, sizeof(err));
	struct locktab *t = locktab_new(&cfg);
	sqlite3 *db;

	apply_req(t, 10, LT_OP_ACQUIRE, "a", "alice", "");
	flush(s, t);
	store_close(s);
	locktab_free(t);

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE locks SET holder = 'nobody'",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);

	s = store_open(f->path, err, sizeof(err));
	assert_non_null(s);
	t = locktab_new(&cfg);
	assert_int_equal(store_load(s, t), -1);
	locktab_free(t);

	/* Waiter list that is not JSON. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	store_close(s);
	assert_int_equal(sqlite3_exec(db,
			     "UPDATE locks SET holder = 'alice', queue = '[[1'",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	s = store_open(f->path, err, sizeof(err));
	t = locktab_new(&cfg);
	assert_int_equal(store_load(s, t), -1);
	locktab_free(t);
	store_close(s);
}

static void
load_expecting_failure(void *path)
{
	char err[256];
	struct store *s = store_open(path, err, sizeof(err));
	struct locktab *t = locktab_new(&cfg);

	assert_non_null(s);
	assert_int_equal(store_load(s, t), -1);
	locktab_free(t);
	store_close(s);
}

static size_t
lines(const char *text)
{
	size_t n = 0;

	for (; *text != '\0'; text++)
		n += *text == '\n';
	return n;
}

/* A bad row is reported once, whichever table it is in. */
static void
test_bad_row_reported_once(void **state)
{
	struct fixture *f = *state;
	char err[256], *log;
	struct store *s = store_open(f->path, err, sizeof(err));
	sqlite3 *db;

	assert_non_null(s);
	store_close(s);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	/* A session shorter than the protocol allows. */
	assert_int_equal(sqlite3_exec(db,
			     "INSERT INTO clients VALUES ('eve', 'short', 1, "
			     "1, 0, NULL)",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	log = tutil_stderr_of(load_expecting_failure, f->path);
	assert_non_null(log);
	assert_non_null(strstr(log, "bad client row eve"));
	assert_int_equal(lines(log), 1);
	free(log);

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
			     "DELETE FROM clients; INSERT INTO locks VALUES "
			     "('doc', 'nobody', 'N', 3, 1, 2, 0, '[]')",
			     NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	log = tutil_stderr_of(load_expecting_failure, f->path);
	assert_non_null(log);
	assert_non_null(strstr(log, "bad lock row doc"));
	assert_int_equal(lines(log), 1);
	free(log);
}

/*
 * A value sqlite does not take fails the flush: the row is not written
 * without it (a holder_user left NULL would come back as another lock).
 */
static void
test_failed_bind_fails_the_flush(void **state)
{
	struct fixture *f = *state;
	char err[256];
	struct store *s = store_open(f->path, err, sizeof(err));
	struct locktab *t = locktab_new(&cfg), *r;

	assert_non_null(s);
	apply_req(t, 1000, LT_OP_ACQUIRE, "doc-1", "alice", "Alice");
	flush(s, t);
	apply_req(t, 1001, LT_OP_ACQUIRE, "doc-2", "bob", "Bind-Refused");
	refuse_bind = "Bind-Refused";
	assert_int_equal(store_flush(s, t), -1);
	refuse_bind = NULL;
	store_close(s);
	/* The journal holds the first batch only. */
	r = reload(f->path);
	assert_int_equal(locktab_nlocks(r), 1);
	assert_false(locktab_view(r, "doc-2", &(struct lt_lock_rec){0}));
	locktab_free(r);
	locktab_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_unflushed_changes_are_not_journaled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_survives_free_table,
		setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_blocks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_schema_1_converted, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_epoch_increases, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_second_opener_refused, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_unusable_files, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_rows_refused, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_bad_row_reported_once, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_failed_bind_fails_the_flush,
		setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
