#include "mqlockd/check.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/locktab.h"
#include "io/log.h"
#include "io/secret.h"
#include "io/store.h"
#include "io/store_etcd.h"

/* A journal that is not there yet: fine if mqlockd may create it. */
static int
check_absent(const char *db, FILE *out)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(db, '/');
	size_t n = slash == NULL ? 1 : slash == db ? 1 : (size_t)(slash - db);

	if (n >= sizeof(dir)) {
		log_error("journal %s: path too long", db);
		return 1;
	}
	memcpy(dir, slash == NULL ? "." : db, n);
	dir[n] = '\0';
	if (access(dir, W_OK | X_OK) != 0) {
		log_error(
		    "journal %s does not exist, and mqlockd cannot create "
		    "it in %s: %s",
		    db, dir, strerror(errno));
		return 1;
	}
	fprintf(out,
	    "mqlockd: journal %s does not exist yet; mqlockd will "
	    "create it\n",
	    db);
	return 0;
}

/*
 * The journal in etcd, read without a term: who leads, the counters, and
 * the table loaded and checked (unless a staged batch is being copied
 * into place, which only the leader finishes).
 */
static int
check_etcd(const struct config *c, FILE *out)
{
	struct etcd_opts eo = {.endpoints = c->etcd,
	    .cafile = c->etcd_cafile,
	    .certfile = c->etcd_certfile,
	    .keyfile = c->etcd_keyfile,
	    .user = c->etcd_user,
	    .timeout_ms = (int)c->etcd_timeout_ms,
	    .max_txn_ops = (size_t)c->etcd_max_txn_ops,
	    .max_request_bytes = (size_t)c->etcd_max_request_bytes};
	struct store_etcd_info info;
	struct store_etcd *s = NULL;
	struct locktab *t = NULL;
	struct lt_config lc;
	char password[1024], err[512];
	const char *broken;
	int rc = 1;

	if (c->etcd_password_file != NULL) {
		if (secret_read_line(c->etcd_password_file, password,
			sizeof(password), err, sizeof(err)) < 0) {
			log_error("%s", err);
			return 1;
		}
		eo.password = password;
	}
	if ((s = store_etcd_open(&eo, c->etcd_prefix, err, sizeof(err))) ==
	    NULL) {
		log_error("journal in etcd: %s", err);
		goto out;
	}
	if (store_etcd_info(s, &info) != STORE_ETCD_OK) {
		log_error("journal in etcd %s: could not be read (above); "
			  "check failed",
		    c->etcd_prefix);
		goto out;
	}
	if (info.term != 0)
		fprintf(out, "mqlockd: etcd %s: %s leads (term %" PRId64 ")\n",
		    c->etcd_prefix, info.leader, info.term);
	else
		fprintf(out, "mqlockd: etcd %s: nobody leads\n",
		    c->etcd_prefix);
	if (!info.exists) {
		fprintf(out,
		    "mqlockd: no journal under %s yet; the first leader "
		    "writes it\n",
		    c->etcd_prefix);
		rc = 0;
		goto out;
	}
	if (info.pending) {
		fprintf(out,
		    "mqlockd: the leader is copying a large batch into place; "
		    "check again later\n");
		rc = 0;
		goto out;
	}
	config_lt(c, &lc);
	if ((t = locktab_new(&lc)) == NULL) {
		log_error("out of memory");
		goto out;
	}
	if (store_etcd_load(s, t) != STORE_ETCD_OK) {
		log_error("journal in etcd %s: could not be loaded (above); "
			  "check failed",
		    c->etcd_prefix);
		goto out;
	}
	if ((broken = locktab_check(t)) != NULL) {
		log_error("journal in etcd %s: the table it holds is "
			  "inconsistent: %s",
		    c->etcd_prefix, broken);
		goto out;
	}
	fprintf(out,
	    "mqlockd: journal in etcd %s: %zu locks, %zu clients, epoch "
	    "%" PRIu64 ", last token %" PRIu64 "\n",
	    c->etcd_prefix, locktab_nlocks(t), locktab_nclients(t), info.epoch,
	    info.last_token);
	rc = 0;
out:
	locktab_free(t);
	store_etcd_close(s);
	explicit_bzero(password, sizeof(password));
	return rc;
}

int
check_run(const struct config *c, FILE *out)
{
	struct lt_config lc;
	struct store_info info;
	struct store *s = NULL;
	struct locktab *t = NULL;
	const char *broken;
	struct stat st;
	char err[512];
	int rc = 1;

	fprintf(out, "mqlockd: configuration ok\n");
	if (c->etcd != NULL)
		return check_etcd(c, out);
	if (stat(c->db, &st) != 0 && errno == ENOENT)
		return check_absent(c->db, out);
	if ((s = store_open_readonly(c->db, err, sizeof(err))) == NULL) {
		log_error("journal: %s", err);
		return 1;
	}
	config_lt(c, &lc);
	if ((t = locktab_new(&lc)) == NULL) {
		log_error("journal %s: out of memory", c->db);
		goto out;
	}
	if (store_load(s, t) != 0 || store_info(s, &info) != 0)
		goto out;
	if ((broken = locktab_check(t)) != NULL) {
		log_error("journal %s: the table it holds is inconsistent: %s",
		    c->db, broken);
		goto out;
	}
	fprintf(out,
	    "mqlockd: journal %s: schema %" PRId64 ", %zu locks, %zu "
	    "clients, epoch %" PRIu64 ", last token %" PRIu64 "\n",
	    c->db, info.schema, locktab_nlocks(t), locktab_nclients(t),
	    info.epoch, info.last_token);
	rc = 0;
out:
	locktab_free(t);
	store_close(s);
	return rc;
}
