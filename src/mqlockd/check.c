#include "mqlockd/check.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/locktab.h"
#include "io/log.h"
#include "io/store.h"

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
