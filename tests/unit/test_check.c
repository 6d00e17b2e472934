/*
 * check: mqlockd --check reads the journal with the real loader, read-only,
 * and says what it found; a file mqlockd could not start with fails it.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
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

#include "io/store.h"
#include "mqlockd/check.h"
#include "tutil.h"

struct fixture {
	char dir[64];
	char db[96];
	struct config cfg;
};

static int
setup(void **state)
{
	static struct fixture f;
	char err[256];
	char *argv[] = {(char *)"mqlockd", (char *)"--db", f.db, NULL};

	snprintf(f.dir, sizeof(f.dir), "/tmp/mqlock-check-XXXXXX");
	if (mkdtemp(f.dir) == NULL)
		return -1;
	snprintf(f.db, sizeof(f.db), "%s/j.db", f.dir);
	if (config_parse(&f.cfg, 3, argv, err, sizeof(err)) != CONFIG_OK)
		return -1;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* check_run() of the fixture, with what it printed and logged. */
struct run {
	struct fixture *f;
	FILE *out;
	int rc;
};

static void
check_into(void *arg)
{
	struct run *r = arg;

	r->rc = check_run(&r->f->cfg, r->out);
}

/*
 * check_run() on the fixture's journal; returns its status, and what it
 * printed and logged in *out and *log (freed by the caller).
 */
static int
run_check(struct fixture *f, char **out, char **log)
{
	struct run r = {f, tmpfile(), -1};
	long n;

	assert_non_null(r.out);
	*log = tutil_stderr_of(check_into, &r);
	assert_non_null(*log);
	n = ftell(r.out);
	assert_true(n >= 0);
	*out = calloc(1, (size_t)n + 1);
	assert_non_null(*out);
	rewind(r.out);
	assert_int_equal(fread(*out, 1, (size_t)n, r.out), (size_t)n);
	fclose(r.out);
	return r.rc;
}

static void
expect_fails(struct fixture *f, const char *want)
{
	char *out, *log;

	assert_int_equal(run_check(f, &out, &log), 1);
	if (strstr(log, want) == NULL)
		fail_msg("the log does not say '%s':\n%s", want, log);
	free(out);
	free(log);
}

static void
sql(const char *path, const char *text)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, text, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* An empty journal made by mqlockd's own code, at epoch 1. */
static void
make_journal(const char *path)
{
	char err[256];
	uint64_t epoch;
	struct store *s = store_open(path, err, sizeof(err));

	assert_non_null(s);
	assert_int_equal(store_next_epoch(s, &epoch), 0);
	store_close(s);
}

static void
test_reports_what_it_found(void **state)
{
	struct fixture *f = *state;
	char *before, *after, *out, *log, path[128];
	size_t n1, n2;

	make_journal(f->db);
	sql(f->db,
	    "INSERT INTO clients VALUES"
	    " ('alice', 'session-of-alice-000000', 1, 4, 0, NULL),"
	    " ('bob', 'session-of-bob-000000', 0, 4, 90000, 'u-b');"
	    "INSERT INTO locks VALUES"
	    " ('doc', 'alice', 'Alice', 41, 1000, 601000, 0,"
	    " '[[\"bob\",\"Bob\"]]');"
	    "UPDATE meta SET value = 1041 WHERE key = 'last_token';");
	before = tutil_slurp(f->db, &n1);
	assert_non_null(before);
	assert_int_equal(run_check(f, &out, &log), 0);
	assert_non_null(strstr(out, "configuration ok"));
	assert_non_null(strstr(out,
	    "schema 3, 1 locks, 2 clients, epoch 1, "
	    "last token 1041"));
	/* Read-only: the file is as it was, and nothing is beside it. */
	after = tutil_slurp(f->db, &n2);
	assert_non_null(after);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);
	snprintf(path, sizeof(path), "%s-wal", f->db);
	assert_int_not_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s-shm", f->db);
	assert_int_not_equal(access(path, F_OK), 0);
	free(before);
	free(after);
	free(out);
	free(log);
}

/*
 * mqlockd killed with its last commit still in the -wal file: --check sees
 * that commit and leaves both files as they were.
 */
static void
test_reads_what_a_crash_left(void **state)
{
	struct fixture *f = *state;
	char wal[128], *out, *log, *db1, *wal1, *db2, *wal2;
	size_t n1, w1, n2, w2;
	int status;
	pid_t pid;

	make_journal(f->db);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sqlite3 *db;

		/* As mqlockd writes, and dead before it closes. */
		if (sqlite3_open(f->db, &db) != SQLITE_OK ||
		    sqlite3_exec(db,
			"PRAGMA locking_mode=EXCLUSIVE;"
			"PRAGMA journal_mode=WAL;"
			"INSERT INTO clients VALUES"
			" ('carol', 'session-of-carol-00000', 1, 2, 0, NULL);",
			NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(wal, sizeof(wal), "%s-wal", f->db);
	db1 = tutil_slurp(f->db, &n1);
	wal1 = tutil_slurp(wal, &w1);
	assert_true(db1 != NULL && wal1 != NULL && w1 > 0);
	assert_int_equal(run_check(f, &out, &log), 0);
	assert_non_null(strstr(out, "0 locks, 1 clients"));
	db2 = tutil_slurp(f->db, &n2);
	wal2 = tutil_slurp(wal, &w2);
	assert_true(db2 != NULL && wal2 != NULL);
	assert_int_equal(n1, n2);
	assert_memory_equal(db1, db2, n1);
	assert_int_equal(w1, w2);
	assert_memory_equal(wal1, wal2, w1);
	free(db1);
	free(wal1);
	free(db2);
	free(wal2);
	free(out);
	free(log);
}

/* A schema 2 journal (no uid column) reads as it is; nothing converts. */
static void
test_older_schema_read_as_is(void **state)
{
	struct fixture *f = *state;
	char *out, *log;

	make_journal(f->db);
	sql(f->db,
	    "ALTER TABLE clients DROP COLUMN uid;"
	    "UPDATE meta SET value = 2 WHERE key = 'schema';"
	    "INSERT INTO clients VALUES"
	    " ('dave', 'session-of-dave-000000', 1, 3, 0);");
	if (run_check(f, &out, &log) != 0)
		fail_msg("--check failed:\n%s", log);
	assert_non_null(strstr(out, "schema 2, 0 locks, 1 clients"));
	free(out);
	free(log);
	/* Still schema 2: converting is mqlockd's job when it starts. */
	out = NULL;
	assert_int_equal(run_check(f, &out, &log), 0);
	assert_non_null(strstr(out, "schema 2,"));
	free(out);
	free(log);
}

/* Not a journal at all: mqlockd would not start, so --check fails. */
static void
test_not_sqlite_fails(void **state)
{
	struct fixture *f = *state;
	FILE *fp = fopen(f->db, "w");

	assert_non_null(fp);
	for (int i = 0; i < 512; i++)
		fputs("this is not sqlite ", fp);
	assert_int_equal(fclose(fp), 0);
	expect_fails(f, "is not an mqlock journal");
}

/* A sqlite file of something else, and rows the loader refuses. */
static void
test_foreign_and_broken_journals_fail(void **state)
{
	struct fixture *f = *state;

	sql(f->db, "CREATE TABLE t(x)");
	expect_fails(f, "journal");
	unlink(f->db);
	make_journal(f->db);
	sql(f->db,
	    "INSERT INTO locks VALUES ('doc', 'nobody', 'N', 3, 1,"
	    " 2, 0, '[]')");
	expect_fails(f, "bad lock row doc");
	unlink(f->db);
	make_journal(f->db);
	sql(f->db, "UPDATE meta SET value = 99 WHERE key = 'schema'");
	expect_fails(f, "schema 99");
}

static void
test_absent_journal(void **state)
{
	struct fixture *f = *state;
	char *out, *log;

	assert_int_equal(run_check(f, &out, &log), 0);
	assert_non_null(strstr(out, "does not exist yet"));
	free(out);
	free(log);
	/* ...where mqlockd could not create it. */
	snprintf(f->db, sizeof(f->db), "%s/missing/j.db", f->dir);
	expect_fails(f, "cannot create it");
	snprintf(f->db, sizeof(f->db), "%s/j.db", f->dir);
}

/* A running mqlockd holds the journal: --check says so and fails. */
static void
test_in_use_fails(void **state)
{
	struct fixture *f = *state;
	char err[256];
	int go[2], status;
	pid_t pid;
	char b;

	make_journal(f->db);
	assert_int_equal(pipe(go), 0);
	/* sqlite's locks are per process: the holder is a child. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *s = store_open(f->db, err, sizeof(err));

		b = s != NULL ? 'y' : 'n';
		if (write(go[1], &b, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(go[0], &b, 1), 1);
	assert_int_equal(b, 'y');
	expect_fails(f, "in use");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(go[0]);
	close(go[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reports_what_it_found, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_reads_what_a_crash_left, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_older_schema_read_as_is, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_not_sqlite_fails, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(
		test_foreign_and_broken_journals_fail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_absent_journal, setup,
		teardown),
	    cmocka_unit_test_setup_teardown(test_in_use_fails, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
