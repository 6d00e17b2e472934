/*
 * etcdtest.h: real etcd clusters for the tests: 1 to 5 members on free
 * 127.0.0.1 ports, each with a data directory under one temporary
 * directory, started with Debian's /usr/bin/etcd.
 *
 * A member can be killed, frozen (SIGSTOP), thawed and restarted on its
 * old ports and data.  Nothing here fails a test: functions return -1 (or
 * NULL) and print why on stderr, and the caller fails its test.
 */
#ifndef MQLOCK_TESTS_ETCDTEST_H
#define MQLOCK_TESTS_ETCDTEST_H

#include <stdbool.h>

#define ETCDTEST_MAX 5

struct etcdtest;

struct etcdtest_opts {
	int members; /* 1 .. ETCDTEST_MAX */
	/*
	 * Non-NULL: clients speak TLS (https:// endpoints) with the server
	 * certificate etcdtest_make_certs() left in this directory, and with
	 * client_cert_auth they must show a certificate its CA signed.  Peers
	 * always speak plain http.
	 */
	const char *certdir;
	bool client_cert_auth;
	const char *const *extra; /* more flags for every member; NULL-ended */
};

/*
 * etcdtest_start(o): start the members and wait (up to 30 s) until every
 * one reports itself healthy.  Ports that turn out to be taken are picked
 * again.  Returns NULL (reason on stderr) when the cluster does not come
 * up.
 */
struct etcdtest *etcdtest_start(const struct etcdtest_opts *o);

/*
 * etcdtest_stop(t): kill every member, remove the data, free.  With
 * show_logs, print the members' logs first (for a failed test).  NULL is
 * a no-op.
 */
void etcdtest_stop(struct etcdtest *t, bool show_logs);

/* etcdtest_endpoints(t): every member's client URL, comma-separated. */
const char *etcdtest_endpoints(const struct etcdtest *t);

/* etcdtest_endpoint(t, i): member i's client URL. */
const char *etcdtest_endpoint(const struct etcdtest *t, int i);

/* etcdtest_dir(t): the temporary directory, for the test's own files. */
const char *etcdtest_dir(const struct etcdtest *t);

/*
 * etcdtest_signal(t, i, sig): send sig to member i.  SIGKILL also waits
 * for it to exit; SIGSTOP and SIGCONT freeze and thaw it.  Returns 0, or
 * -1 when i is not running.
 */
int etcdtest_signal(struct etcdtest *t, int i, int sig);

/*
 * etcdtest_restart(t, i): start member i again (after SIGKILL) with its
 * ports and data, and wait until its client port accepts.  Returns 0 or
 * -1.
 */
int etcdtest_restart(struct etcdtest *t, int i);

/*
 * etcdtest_wait_healthy(t, ms): wait up to ms until every running member's
 * /health says true (the cluster has a leader and serves reads).  Returns
 * 0, or -1 on timeout.
 */
int etcdtest_wait_healthy(struct etcdtest *t, int ms);

/*
 * etcdtest_etcdctl(t, args, out, outsz): run /usr/bin/etcdctl against the
 * cluster (its endpoints, and TLS files when the cluster has them) with
 * the given arguments (NULL-ended).  Its output goes to out.  Returns its
 * exit status, or -1.
 */
int etcdtest_etcdctl(struct etcdtest *t, const char *const *args, char *out,
    int outsz);

/*
 * etcdtest_make_certs(dir): with the openssl command, a CA (dir/ca.pem),
 * a server certificate for 127.0.0.1 (dir/server.pem, server-key.pem) and
 * a client certificate (dir/client.pem, client-key.pem) signed by it, and
 * a second CA (dir/other-ca.pem) that signed none of them.  Returns 0 or
 * -1.
 */
int etcdtest_make_certs(const char *dir);

#endif
