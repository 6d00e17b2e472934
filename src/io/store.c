#include "io/store.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "core/codec.h"
#include "core/idmap.h"
#include "io/log.h"
#include "io/siphash.h"

/*
 * Version 2: every table WITHOUT ROWID, so a row lives in one b-tree (its
 * primary key's) and a commit that changes one lock and one client writes
 * two pages, not four.  Version 3: clients have the uid a ticket verified
 * (NULL when none).  Older journals are converted on open.
 */
#define SCHEMA_VERSION 3

/*
 * Tokens are reserved in blocks: the journal's last_token is the highest
 * token the coordinator may have granted, written only when a grant passes
 * it.  A restart goes on above it, so tokens stay strictly increasing and
 * unique across restarts (with a gap of at most this many).
 */
#define TOKEN_BLOCK 1000

#define TABLES(suffix)                                                  \
	"CREATE TABLE IF NOT EXISTS meta" suffix "("                    \
	" key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;" \
	"CREATE TABLE IF NOT EXISTS clients" suffix "("                 \
	" id TEXT PRIMARY KEY, session TEXT NOT NULL,"                  \
	" connected INTEGER NOT NULL, max_conn INTEGER NOT NULL,"       \
	" grace_deadline INTEGER NOT NULL, uid TEXT) WITHOUT ROWID;"    \
	"CREATE TABLE IF NOT EXISTS locks" suffix "("                   \
	" id TEXT PRIMARY KEY, holder TEXT, holder_user TEXT,"          \
	" token INTEGER NOT NULL, since INTEGER NOT NULL,"              \
	" idle_deadline INTEGER NOT NULL, warned INTEGER NOT NULL,"     \
	" queue TEXT NOT NULL) WITHOUT ROWID;"

static const char schema[] =
    TABLES("") "INSERT OR IGNORE INTO meta VALUES('schema', " MQL_STR(
	SCHEMA_VERSION) ");"
			"INSERT OR IGNORE INTO meta VALUES('last_token', 0);"
			"INSERT OR IGNORE INTO meta VALUES('epoch', 0);";

/* Version 1 to 3: the same rows, in tables without rowid. */
static const char upgrade_1[] = TABLES(
    "_v2") "INSERT INTO meta_v2 SELECT key, value FROM meta;"
	   "INSERT INTO clients_v2(id, session, connected, max_conn,"
	   " grace_deadline) SELECT id, session, connected, max_conn,"
	   " grace_deadline FROM clients;"
	   "INSERT INTO locks_v2 SELECT id, holder, holder_user, token, since,"
	   " idle_deadline, warned, queue FROM locks;"
	   "DROP TABLE meta; DROP TABLE clients; DROP TABLE locks;"
	   "ALTER TABLE meta_v2 RENAME TO meta;"
	   "ALTER TABLE clients_v2 RENAME TO clients;"
	   "ALTER TABLE locks_v2 RENAME TO locks;"
	   "UPDATE meta SET value = " MQL_STR(
	       SCHEMA_VERSION) " WHERE key = 'schema';";

/* Version 2 to 3: a column for the uid of verified clients. */
static const char upgrade_2[] =
    "ALTER TABLE clients ADD COLUMN uid TEXT;"
    "UPDATE meta SET value = " MQL_STR(SCHEMA_VERSION) " WHERE key = "
						       "'schema';";

enum stmt {
	PUT_LOCK,
	DEL_LOCK,
	PUT_CLIENT,
	DEL_CLIENT,
	PUT_META,
	GET_META,
	NSTMT
};

static const char *const stmt_sql[NSTMT] = {
    [PUT_LOCK] = "INSERT OR REPLACE INTO locks VALUES(?,?,?,?,?,?,?,?)",
    [DEL_LOCK] = "DELETE FROM locks WHERE id = ?",
    [PUT_CLIENT] = "INSERT OR REPLACE INTO clients VALUES(?,?,?,?,?,?)",
    [DEL_CLIENT] = "DELETE FROM clients WHERE id = ?",
    [PUT_META] = "INSERT OR REPLACE INTO meta VALUES(?,?)",
    [GET_META] = "SELECT value FROM meta WHERE key = ?",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *st[NSTMT];
	char *path;
	int64_t schema;          /* the version opened */
	bool readonly;           /* store_open_readonly(): never written */
	char *wal_created;       /* read-only: the -wal file reading made */
	uint64_t token_reserved; /* last_token as journaled */
};

/*
 * Binding a value fails only on a programming error (index, statement in
 * use) or when memory or sqlite's length limit runs out; either way the row
 * must not be written with the value missing, so every bind is checked.
 * Each returns 0, or -1 (logged) with the statement reset.
 */
static int
bind_failed(struct store *s, sqlite3_stmt *st, int i, int rc)
{
	log_error("journal %s: binding parameter %d: %s", s->path, i,
	    sqlite3_errstr(rc));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return -1;
}

static int
bind_text(struct store *s, sqlite3_stmt *st, int i, const char *v)
{
	int rc = sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);

	return rc == SQLITE_OK ? 0 : bind_failed(s, st, i, rc);
}

static int
bind_int64(struct store *s, sqlite3_stmt *st, int i, int64_t v)
{
	int rc = sqlite3_bind_int64(st, i, (sqlite3_int64)v);

	return rc == SQLITE_OK ? 0 : bind_failed(s, st, i, rc);
}

static int
exec(struct store *s, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("journal %s: %s: %s", s->path, sql,
		    msg != NULL ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/*
 * Step st, a statement about the meta row key, once; SQLITE_ROW (with the
 * value into *out) or SQLITE_DONE is what it must give.  Returns 0, or -1
 * (logged).
 */
static int
meta_step(struct store *s, sqlite3_stmt *st, const char *key, int want,
    int64_t *out)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW && out != NULL)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == want)
		return 0;
	log_error("journal %s: cannot %s %s: %s", s->path,
	    want == SQLITE_ROW ? "read" : "write", key, sqlite3_errmsg(s->db));
	return -1;
}

static int
get_meta(struct store *s, const char *key, int64_t *out)
{
	sqlite3_stmt *st = s->st[GET_META];

	sqlite3_reset(st);
	if (bind_text(s, st, 1, key) != 0)
		return -1;
	return meta_step(s, st, key, SQLITE_ROW, out);
}

static int
put_meta(struct store *s, const char *key, int64_t value)
{
	sqlite3_stmt *st = s->st[PUT_META];

	sqlite3_reset(st);
	if (bind_text(s, st, 1, key) != 0 || bind_int64(s, st, 2, value) != 0)
		return -1;
	return meta_step(s, st, key, SQLITE_DONE, NULL);
}

/* The journal's schema version; SQLITE_OK, or an error code. */
static int
schema_version(struct store *s, int64_t *version)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db,
	    "SELECT value FROM meta WHERE key = 'schema'", -1, &st, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*version = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_CORRUPT;
	}
	sqlite3_finalize(st);
	return rc;
}

/* A store for path with its database opened with flags; NULL with err. */
static struct store *
open_db(const char *path, int flags, char *err, size_t errsz)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL || (s->path = strdup(path)) == NULL) {
		snprintf(err, errsz, "out of memory");
		free(s);
		return NULL;
	}
	rc = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errsz, "cannot open %s: %s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		store_close(s);
		return NULL;
	}
	sqlite3_extended_result_codes(s->db, 1);
	return s;
}

/* Why the last statement failed, in words, into err. */
static void
open_error(struct store *s, const char *doing, char *err, size_t errsz)
{
	int rc = sqlite3_extended_errcode(s->db) & 0xff;

	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		snprintf(err, errsz,
		    "%s is in use by another process (another mqlockd?)",
		    s->path);
	else if (rc == SQLITE_NOTADB)
		snprintf(err, errsz, "%s is not an mqlock journal: %s", s->path,
		    sqlite3_errmsg(s->db));
	else
		snprintf(err, errsz, "cannot %s %s: %s", doing, s->path,
		    sqlite3_errmsg(s->db));
}

/*
 * The statements and the token counter of a journal at version, which must
 * be from oldest to SCHEMA_VERSION.
 */
static int
finish_open(struct store *s, int64_t version, int64_t oldest, char *err,
    size_t errsz)
{
	int64_t last = 0;

	if (version < oldest || version > SCHEMA_VERSION) {
		snprintf(err, errsz, "%s has journal schema %lld, expected %d",
		    s->path, (long long)version, SCHEMA_VERSION);
		return -1;
	}
	s->schema = version;
	for (int i = 0; i < NSTMT; i++) {
		/* A reader writes nothing (older schemas would refuse). */
		if (s->readonly && i != GET_META)
			continue;
		if (sqlite3_prepare_v2(s->db, stmt_sql[i], -1, &s->st[i],
			NULL) != SQLITE_OK) {
			snprintf(err, errsz, "%s is not an mqlock journal: %s",
			    s->path, sqlite3_errmsg(s->db));
			return -1;
		}
	}
	if (get_meta(s, "last_token", &last) != 0 || last < 0) {
		snprintf(err, errsz, "%s has no valid token counter", s->path);
		return -1;
	}
	s->token_reserved = (uint64_t)last;
	return 0;
}

struct store *
store_open(const char *path, char *err, size_t errsz)
{
	struct store *s = open_db(path,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err, errsz);
	int64_t version = 0;
	int rc;

	if (s == NULL)
		return NULL;
	/*
	 * EXCLUSIVE locking keeps the write lock from the first write until
	 * close: a second mqlockd on the same file fails at once instead of
	 * interleaving its decisions with ours.  With it, WAL needs no shared
	 * memory file either.
	 */
	if (sqlite3_exec(s->db,
		"PRAGMA locking_mode=EXCLUSIVE;"
		"PRAGMA journal_mode=WAL;"
		"PRAGMA synchronous=FULL;"
		"BEGIN IMMEDIATE;",
		NULL, NULL, NULL) != SQLITE_OK) {
		open_error(s, "use", err, errsz);
		goto err;
	}
	rc = sqlite3_exec(s->db, schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = schema_version(s, &version);
	if (rc == SQLITE_OK && (version == 1 || version == 2)) {
		log_info("journal %s: converting from schema %lld to %d", path,
		    (long long)version, SCHEMA_VERSION);
		rc = sqlite3_exec(s->db, version == 1 ? upgrade_1 : upgrade_2,
		    NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			version = SCHEMA_VERSION;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		open_error(s, "write", err, errsz);
		goto err;
	}
	if (finish_open(s, version, SCHEMA_VERSION, err, errsz) != 0)
		goto err;
	return s;
err:
	store_close(s);
	return NULL;
}

struct store *
store_open_readonly(const char *path, char *err, size_t errsz)
{
	struct store *s;
	char wal[PATH_MAX];
	int64_t version = 0;
	int rc, had_wal;

	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", path) >= sizeof(wal)) {
		snprintf(err, errsz, "%s: path too long", path);
		return NULL;
	}
	had_wal = access(wal, F_OK) == 0;
	/*
	 * Opened for writing but never written: a connection that is
	 * read-only at the file level cannot read a WAL journal without the
	 * shared-memory file, and this one, like mqlockd's, uses EXCLUSIVE
	 * locking, which needs none.  query_only refuses every write; no
	 * checkpoint on close leaves the file as it was.
	 */
	if ((s = open_db(path, SQLITE_OPEN_READWRITE, err, errsz)) == NULL)
		return NULL;
	s->readonly = true;
	rc =
	    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(s->db,
		    "PRAGMA query_only=1; PRAGMA locking_mode=EXCLUSIVE", NULL,
		    NULL, NULL);
	if (rc == SQLITE_OK)
		rc = schema_version(s, &version);
	/* Reading a WAL journal creates its -wal file: ours to remove. */
	if (!had_wal && access(wal, F_OK) == 0 &&
	    (s->wal_created = strdup(wal)) == NULL) {
		snprintf(err, errsz, "out of memory");
		goto err;
	}
	if (rc != SQLITE_OK) {
		open_error(s, "read", err, errsz);
		goto err;
	}
	/* Older schemas are converted when mqlockd opens them; the loader
	 * reads them as they are. */
	if (finish_open(s, version, 1, err, errsz) != 0)
		goto err;
	return s;
err:
	store_close(s);
	return NULL;
}

int
store_info(struct store *s, struct store_info *out)
{
	int64_t epoch = 0;

	if (get_meta(s, "epoch", &epoch) != 0)
		return -1;
	if (epoch < 0) {
		log_error("journal %s: negative epoch", s->path);
		return -1;
	}
	out->schema = s->schema;
	out->epoch = (uint64_t)epoch;
	out->last_token = s->token_reserved;
	return 0;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < NSTMT; i++)
		sqlite3_finalize(s->st[i]);
	/*
	 * An empty -wal that store_open_readonly() made goes while the
	 * exclusive lock still keeps every other opener out.
	 */
	if (s->wal_created != NULL) {
		struct stat st;

		if (stat(s->wal_created, &st) == 0 && st.st_size == 0 &&
		    unlink(s->wal_created) != 0)
			log_warn("journal %s: %s", s->wal_created,
			    strerror(errno));
		free(s->wal_created);
	}
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		log_error("journal %s: close: %s", s->path,
		    sqlite3_errmsg(s->db));
	free(s->path);
	free(s);
}

static int step(struct store *s, sqlite3_stmt *st);

static int step(struct store *s, sqlite3_stmt *st);

static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/*
 * Ids the naming rules refuse, found in a journal an older, looser version
 * wrote: never restored (publishing on them would cost the coordinator its
 * connection), deleted from the journal by store_load().
 */
struct dropped {
	struct idmap *clients; /* keys owned: free them */
	char **locks;
	size_t nlocks, caplocks;
};

static int
drop_client(struct store *s, struct dropped *dr, const char *id)
{
	char *key = strdup(id);

	log_warn("journal %s: dropping client %zu bytes long whose id the "
		 "naming rules refuse",
	    s->path, strlen(id));
	if (key == NULL || idmap_put(dr->clients, key, key) != 0) {
		free(key);
		return -1;
	}
	return 0;
}

static int
drop_lock(struct store *s, struct dropped *dr, const char *id)
{
	char **p;

	log_warn("journal %s: dropping lock %zu bytes long whose id the naming "
		 "rules refuse",
	    s->path, strlen(id));
	if (dr->nlocks == dr->caplocks) {
		size_t n = dr->caplocks ? dr->caplocks * 2 : 8;

		if ((p = realloc(dr->locks, n * sizeof(*p))) == NULL)
			return -1;
		dr->locks = p;
		dr->caplocks = n;
	}
	if ((dr->locks[dr->nlocks] = strdup(id)) == NULL)
		return -1;
	dr->nlocks++;
	return 0;
}

static int
free_key_cb(const char *key, void *value, void *arg)
{
	free(value);
	return 0;
}

static void
dropped_free(struct dropped *dr)
{
	if (dr->clients != NULL)
		idmap_foreach(dr->clients, free_key_cb, NULL);
	idmap_free(dr->clients);
	for (size_t i = 0; i < dr->nlocks; i++)
		free(dr->locks[i]);
	free(dr->locks);
}

/* What loading the journal needs besides the table. */
struct load {
	struct dropped dr;
	struct lt_waiter_rec *w; /* room for MQL_WAITERS_PER_LOCK */
};

/*
 * One journal row into the table t, or into ld's dropped ids when the
 * naming rules refuse its id; *id names it for the log.  LT_OK either way,
 * LT_ERR_INTERNAL when memory runs out, else the row is bad.
 */
typedef enum lt_err load_row_fn(struct store *s, sqlite3_stmt *st,
    struct locktab *t, struct load *ld, const char **id);

static enum lt_err
client_row(struct store *s, sqlite3_stmt *st, struct locktab *t,
    struct load *ld, const char **id)
{
	struct lt_client_rec rec = {
	    .id = col_text(st, 0),
	    .session = col_text(st, 1),
	    .state = sqlite3_column_int(st, 2) != 0 ? LT_CS_LIVE : LT_CS_GONE,
	    .max_conn = sqlite3_column_int64(st, 3),
	    .grace_deadline = sqlite3_column_int64(st, 4),
	    .uid = col_text(st, 5),
	};

	*id = rec.id;
	if (rec.id != NULL && !codec_client_id_valid(rec.id, strlen(rec.id)))
		return drop_client(s, &ld->dr, rec.id) == 0 ? LT_OK
							    : LT_ERR_INTERNAL;
	return locktab_restore_client(t, &rec);
}

/*
 * Parse a queue column, [["client","user"], ...], oldest waiter first,
 * into w (room for MQL_WAITERS_PER_LOCK), leaving out dropped clients.
 * LT_OK, or LT_ERR_BAD_REQUEST for a malformed column.
 */
static enum lt_err
parse_queue(const cJSON *q, const struct dropped *dr, struct lt_waiter_rec *w,
    size_t *n, bool *repaired)
{
	const cJSON *e;

	*n = 0;
	if (!cJSON_IsArray(q) || cJSON_GetArraySize(q) > MQL_WAITERS_PER_LOCK)
		return LT_ERR_BAD_REQUEST;
	cJSON_ArrayForEach(e, q)
	{
		const cJSON *c = cJSON_GetArrayItem(e, 0);
		const cJSON *u = cJSON_GetArrayItem(e, 1);

		if (!cJSON_IsString(c) || !cJSON_IsString(u))
			return LT_ERR_BAD_REQUEST;
		if (idmap_get(dr->clients, c->valuestring) != NULL) {
			*repaired = true;
			continue;
		}
		w[*n].client = c->valuestring;
		w[(*n)++].user = u->valuestring;
	}
	return LT_OK;
}

static enum lt_err
lock_row(struct store *s, sqlite3_stmt *st, struct locktab *t, struct load *ld,
    const char **id)
{
	struct lt_lock_rec rec = {
	    .id = col_text(st, 0),
	    .holder = col_text(st, 1),
	    .holder_user = col_text(st, 2),
	    .token = (uint64_t)sqlite3_column_int64(st, 3),
	    .since = sqlite3_column_int64(st, 4),
	    .idle_deadline = sqlite3_column_int64(st, 5),
	    .warned = sqlite3_column_int(st, 6) != 0,
	    .waiters = ld->w,
	};
	const char *qtext = col_text(st, 7);
	/* Most locks have nobody waiting: no parser for those. */
	bool empty = qtext != NULL && strcmp(qtext, "[]") == 0;
	cJSON *q = empty ? NULL : cJSON_Parse(qtext);
	enum lt_err err = LT_OK;

	*id = rec.id;
	if (rec.id != NULL && !codec_lock_id_valid(rec.id, strlen(rec.id))) {
		cJSON_Delete(q);
		return drop_lock(s, &ld->dr, rec.id) == 0 ? LT_OK
							  : LT_ERR_INTERNAL;
	}
	if (rec.holder != NULL &&
	    idmap_get(ld->dr.clients, rec.holder) != NULL) {
		rec.holder = rec.holder_user = NULL;
		rec.repaired = true;
	}
	if (!empty)
		err = parse_queue(q, &ld->dr, ld->w, &rec.nwaiters,
		    &rec.repaired);
	/* Only dropped clients held or awaited it: nothing left. */
	if (err == LT_OK && rec.holder == NULL && rec.nwaiters == 0 &&
	    rec.repaired) {
		cJSON_Delete(q);
		return drop_lock(s, &ld->dr, rec.id) == 0 ? LT_OK
							  : LT_ERR_INTERNAL;
	}
	if (err == LT_OK)
		err = locktab_restore_lock(t, &rec);
	/* The waiters' strings live in q until the table copied them. */
	cJSON_Delete(q);
	return err;
}

/*
 * Every row of sql through row(), for the rows of what.  Returns 0, or -1
 * after one log line: the first bad row, memory, or sqlite's error.
 */
static int
load_rows(struct store *s, struct locktab *t, struct load *ld, const char *what,
    const char *sql, load_row_fn *row)
{
	sqlite3_stmt *st = NULL;
	const char *id = NULL;
	enum lt_err err;
	int rc;

	if ((rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL)) != SQLITE_OK)
		goto sql_error;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = row(s, st, t, ld, &id)) == LT_OK)
			continue;
		if (err == LT_ERR_INTERNAL)
			log_error("journal %s: out of memory", s->path);
		else
			log_error("journal %s: bad %s row %s", s->path, what,
			    id != NULL ? id : "(null)");
		sqlite3_finalize(st);
		return -1;
	}
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return 0;
	}
sql_error:
	log_error("journal %s: reading %ss: %s", s->path, what,
	    sqlite3_errmsg(s->db));
	sqlite3_finalize(st);
	return -1;
}

static int
delete_dropped_client_cb(const char *key, void *value, void *arg)
{
	struct store *s = arg;
	sqlite3_stmt *st = s->st[DEL_CLIENT];

	if (bind_text(s, st, 1, key) != 0)
		return -1;
	return step(s, st);
}

/* Delete what load_*() dropped, in one transaction. */
static int
delete_dropped(struct store *s, const struct dropped *dr)
{
	if (idmap_count(dr->clients) == 0 && dr->nlocks == 0)
		return 0;
	if (exec(s, "BEGIN IMMEDIATE") != 0)
		return -1;
	if (idmap_foreach(dr->clients, delete_dropped_client_cb, s) != 0)
		goto err;
	for (size_t i = 0; i < dr->nlocks; i++) {
		sqlite3_stmt *st = s->st[DEL_LOCK];

		if (bind_text(s, st, 1, dr->locks[i]) != 0 || step(s, st) != 0)
			goto err;
	}
	return exec(s, "COMMIT");
err:
	exec(s, "ROLLBACK");
	return -1;
}

int
store_load(struct store *s, struct locktab *t)
{
	struct mql_hasher h = siphash_hasher();
	struct load ld = {{idmap_new(&h), NULL, 0, 0},
	    calloc(MQL_WAITERS_PER_LOCK, sizeof(*ld.w))};
	/* Schemas before 3 have no uid column; mqlockd adds it on open. */
	const char *clients = s->schema >= 3
	    ? "SELECT id, session, connected, max_conn, grace_deadline, uid"
	      " FROM clients"
	    : "SELECT id, session, connected, max_conn, grace_deadline, NULL"
	      " FROM clients";
	int64_t last = 0;
	int rc = -1;

	if (ld.dr.clients == NULL || ld.w == NULL)
		log_error("journal %s: out of memory", s->path);
	else if (load_rows(s, t, &ld, "client", clients, client_row) == 0 &&
	    load_rows(s, t, &ld, "lock",
		"SELECT id, holder, holder_user, token, since,"
		" idle_deadline, warned, queue FROM locks",
		lock_row) == 0 &&
	    (s->readonly || delete_dropped(s, &ld.dr) == 0))
		rc = 0;
	dropped_free(&ld.dr);
	free(ld.w);
	if (rc != 0 || get_meta(s, "last_token", &last) != 0)
		return -1;
	if (last < 0) {
		log_error("journal %s: negative token counter", s->path);
		return -1;
	}
	locktab_restore_token(t, (uint64_t)last);
	locktab_restore_done(t);
	return 0;
}

/* Refuse to write a journal opened to be read.  Returns 0 when writable. */
static int
refuse_readonly(const struct store *s)
{
	if (!s->readonly)
		return 0;
	log_error("journal %s: opened read-only", s->path);
	return -1;
}

int
store_next_epoch(struct store *s, uint64_t *epoch)
{
	int64_t e = 0;

	if (refuse_readonly(s) != 0)
		return -1;

	if (exec(s, "BEGIN IMMEDIATE") != 0)
		return -1;
	if (get_meta(s, "epoch", &e) != 0 || put_meta(s, "epoch", e + 1) != 0 ||
	    exec(s, "COMMIT") != 0) {
		exec(s, "ROLLBACK");
		return -1;
	}
	*epoch = (uint64_t)(e + 1);
	return 0;
}

static char *
encode_queue(const struct lt_lock_rec *rec)
{
	cJSON *a = cJSON_CreateArray();
	char *text = NULL;

	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < rec->nwaiters; i++) {
		const char *pair[2] = {rec->waiters[i].client,
		    rec->waiters[i].user != NULL ? rec->waiters[i].user : ""};
		cJSON *e = cJSON_CreateStringArray(pair, 2);

		if (e == NULL || !cJSON_AddItemToArray(a, e)) {
			cJSON_Delete(e);
			goto out;
		}
	}
	text = cJSON_PrintUnformatted(a);
out:
	cJSON_Delete(a);
	return text;
}

static int
step(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		log_error("journal %s: write failed: %s", s->path,
		    sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

static int
write_lock(struct store *s, struct locktab *t, size_t i)
{
	struct lt_lock_rec rec;
	sqlite3_stmt *st;
	char *queue;
	int rc;

	if (!locktab_dirty_lock(t, i, &rec)) {
		st = s->st[DEL_LOCK];
		if (bind_text(s, st, 1, rec.id) != 0)
			return -1;
		return step(s, st);
	}
	queue = encode_queue(&rec);
	if (queue == NULL) {
		log_error("journal %s: out of memory", s->path);
		return -1;
	}
	st = s->st[PUT_LOCK];
	/* A free lock leaves holder and holder_user NULL. */
	if (bind_text(s, st, 1, rec.id) != 0 ||
	    (rec.holder != NULL &&
		(bind_text(s, st, 2, rec.holder) != 0 ||
		    bind_text(s, st, 3, rec.holder_user) != 0)) ||
	    bind_int64(s, st, 4, (int64_t)rec.token) != 0 ||
	    bind_int64(s, st, 5, rec.since) != 0 ||
	    bind_int64(s, st, 6, rec.idle_deadline) != 0 ||
	    bind_int64(s, st, 7, rec.warned) != 0 ||
	    bind_text(s, st, 8, queue) != 0)
		rc = -1;
	else
		rc = step(s, st);
	cJSON_free(queue);
	return rc;
}

static int
write_client(struct store *s, const struct locktab *t, size_t i)
{
	struct lt_client_rec rec;
	sqlite3_stmt *st;

	if (!locktab_dirty_client(t, i, &rec)) {
		st = s->st[DEL_CLIENT];
		if (bind_text(s, st, 1, rec.id) != 0)
			return -1;
		return step(s, st);
	}
	st = s->st[PUT_CLIENT];
	/* A client no ticket verified leaves uid NULL. */
	if (bind_text(s, st, 1, rec.id) != 0 ||
	    bind_text(s, st, 2, rec.session) != 0 ||
	    bind_int64(s, st, 3, rec.state != LT_CS_GONE) != 0 ||
	    bind_int64(s, st, 4, rec.max_conn) != 0 ||
	    bind_int64(s, st, 5, rec.grace_deadline) != 0 ||
	    (rec.uid != NULL && bind_text(s, st, 6, rec.uid) != 0))
		return -1;
	return step(s, st);
}

int
store_flush(struct store *s, struct locktab *t)
{
	size_t nl = locktab_dirty_locks(t), nc = locktab_dirty_clients(t);
	uint64_t reserve = 0;

	if (refuse_readonly(s) != 0)
		return -1;
	if (exec(s, "BEGIN IMMEDIATE") != 0)
		return -1;
	/* Clients first: lock rows name them. */
	for (size_t i = 0; i < nc; i++) {
		if (write_client(s, t, i) != 0)
			goto err;
	}
	for (size_t i = 0; i < nl; i++) {
		if (write_lock(s, t, i) != 0)
			goto err;
	}
	if (locktab_last_token(t) > s->token_reserved) {
		reserve = locktab_last_token(t) + TOKEN_BLOCK;
		if (put_meta(s, "last_token", (int64_t)reserve) != 0)
			goto err;
	}
	if (exec(s, "COMMIT") != 0)
		goto err;
	if (reserve != 0)
		s->token_reserved = reserve;
	return 0;
err:
	if (sqlite3_get_autocommit(s->db) == 0)
		exec(s, "ROLLBACK");
	return -1;
}
