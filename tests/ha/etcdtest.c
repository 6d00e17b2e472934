/*
 * etcdtest.c: see etcdtest.h.
 */
#include "etcdtest.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "tutil.h"

#define ETCD_BIN "/usr/bin/etcd"
#define ETCDCTL_BIN "/usr/bin/etcdctl"
#define OPENSSL_BIN "/usr/bin/openssl"
#define START_TRIES 3
#define ARGS_MAX 64

struct member {
	pid_t pid; /* 0: not running */
	int client_port, peer_port;
	char url[64];
	char log[600];
};

struct etcdtest {
	struct etcdtest_opts o;
	int n;
	struct member m[ETCDTEST_MAX];
	char dir[64];
	char endpoints[ETCDTEST_MAX * 64];
	char token[64];
	int tries;
};

const char *
etcdtest_endpoints(const struct etcdtest *t)
{
	return t->endpoints;
}

const char *
etcdtest_endpoint(const struct etcdtest *t, int i)
{
	return t->m[i].url;
}

const char *
etcdtest_dir(const struct etcdtest *t)
{
	return t->dir;
}

/* Start member i with the cluster's ports; does not wait. */
static int
spawn_member(struct etcdtest *t, int i)
{
	struct member *m = &t->m[i];
	char name[16], data[600], peer[64], cluster[ETCDTEST_MAX * 64] = "";
	char cert[600], key[600], ca[600];
	const char *argv[ARGS_MAX];
	int a = 0;

	for (int k = 0; k < t->n; k++) {
		size_t used = strlen(cluster);

		snprintf(cluster + used, sizeof(cluster) - used,
		    "%sm%d=http://127.0.0.1:%d", k > 0 ? "," : "", k,
		    t->m[k].peer_port);
	}
	snprintf(name, sizeof(name), "m%d", i);
	snprintf(data, sizeof(data), "%s/m%d", t->dir, i);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", m->peer_port);
	argv[a++] = ETCD_BIN;
	argv[a++] = "--name";
	argv[a++] = name;
	argv[a++] = "--data-dir";
	argv[a++] = data;
	argv[a++] = "--listen-client-urls";
	argv[a++] = m->url;
	argv[a++] = "--advertise-client-urls";
	argv[a++] = m->url;
	argv[a++] = "--listen-peer-urls";
	argv[a++] = peer;
	argv[a++] = "--initial-advertise-peer-urls";
	argv[a++] = peer;
	argv[a++] = "--initial-cluster";
	argv[a++] = cluster;
	argv[a++] = "--initial-cluster-token";
	argv[a++] = t->token;
	argv[a++] = "--initial-cluster-state";
	/* Ignored by a member that has its data directory already. */
	argv[a++] = "new";
	argv[a++] = "--logger";
	argv[a++] = "zap";
	argv[a++] = "--log-outputs";
	argv[a++] = "stderr";
	argv[a++] = "--log-level";
	argv[a++] = "warn";
	if (t->o.certdir != NULL) {
		snprintf(cert, sizeof(cert), "%s/server.pem", t->o.certdir);
		snprintf(key, sizeof(key), "%s/server-key.pem", t->o.certdir);
		snprintf(ca, sizeof(ca), "%s/ca.pem", t->o.certdir);
		argv[a++] = "--cert-file";
		argv[a++] = cert;
		argv[a++] = "--key-file";
		argv[a++] = key;
		if (t->o.client_cert_auth) {
			argv[a++] = "--client-cert-auth";
			argv[a++] = "--trusted-ca-file";
			argv[a++] = ca;
		}
	}
	for (int k = 0; t->o.extra != NULL && t->o.extra[k] != NULL; k++) {
		if (a >= ARGS_MAX - 1) {
			fprintf(stderr, "etcdtest: too many flags\n");
			return -1;
		}
		argv[a++] = t->o.extra[k];
	}
	argv[a] = NULL;
	m->pid = tutil_spawn((char *const *)argv, m->log, 1);
	if (m->pid == -1) {
		fprintf(stderr, "etcdtest: cannot start %s: %s\n", ETCD_BIN,
		    strerror(errno));
		m->pid = 0;
		return -1;
	}
	return 0;
}

static void
kill_member(struct member *m)
{
	if (m->pid <= 0)
		return;
	kill(m->pid, SIGKILL);
	kill(m->pid, SIGCONT);
	waitpid(m->pid, NULL, 0);
	m->pid = 0;
}

/* Fresh ports for every member, and its URL. */
static int
pick_ports(struct etcdtest *t)
{
	size_t used = 0;

	for (int i = 0; i < t->n; i++) {
		struct member *m = &t->m[i];

		m->client_port = tutil_free_port();
		m->peer_port = tutil_free_port();
		if (m->client_port < 0 || m->peer_port < 0 ||
		    m->client_port == m->peer_port) {
			fprintf(stderr, "etcdtest: no free port\n");
			return -1;
		}
		snprintf(m->url, sizeof(m->url), "%s://127.0.0.1:%d",
		    t->o.certdir != NULL ? "https" : "http", m->client_port);
		used += (size_t)snprintf(t->endpoints + used,
		    sizeof(t->endpoints) - used, "%s%s", i > 0 ? "," : "",
		    m->url);
	}
	return 0;
}

/* One try at bringing the whole cluster up. */
static int
start_all(struct etcdtest *t)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'/m*", t->dir);
	if (system(cmd) != 0)
		return -1;
	snprintf(t->token, sizeof(t->token), "mqlock-test-%ld-%d",
	    (long)getpid(), ++t->tries);
	if (pick_ports(t) != 0)
		return -1;
	for (int i = 0; i < t->n; i++) {
		if (spawn_member(t, i) != 0)
			return -1;
	}
	for (int i = 0; i < t->n; i++) {
		if (tutil_wait_port(t->m[i].client_port, t->m[i].pid, 20000) !=
		    0)
			return -1;
	}
	return etcdtest_wait_healthy(t, 30000);
}

struct etcdtest *
etcdtest_start(const struct etcdtest_opts *o)
{
	struct etcdtest *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	if (o->members < 1 || o->members > ETCDTEST_MAX) {
		fprintf(stderr, "etcdtest: %d members?\n", o->members);
		free(t);
		return NULL;
	}
	t->o = *o;
	t->n = o->members;
	snprintf(t->dir, sizeof(t->dir), "/tmp/mqlock-etcd-XXXXXX");
	if (mkdtemp(t->dir) == NULL) {
		fprintf(stderr, "etcdtest: mkdtemp: %s\n", strerror(errno));
		free(t);
		return NULL;
	}
	for (int i = 0; i < t->n; i++)
		snprintf(t->m[i].log, sizeof(t->m[i].log), "%s/m%d.log", t->dir,
		    i);
	for (int k = 0; k < START_TRIES; k++) {
		if (start_all(t) == 0)
			return t;
		fprintf(stderr,
		    "etcdtest: %d-member cluster did not start "
		    "(try %d)\n",
		    t->n, k + 1);
		for (int i = 0; i < t->n; i++)
			kill_member(&t->m[i]);
	}
	etcdtest_stop(t, true);
	return NULL;
}

void
etcdtest_stop(struct etcdtest *t, bool show_logs)
{
	char cmd[128];

	if (t == NULL)
		return;
	for (int i = 0; i < t->n; i++) {
		kill_member(&t->m[i]);
		if (show_logs) {
			char *log = tutil_slurp(t->m[i].log, NULL);

			fprintf(stderr, "---- etcd member %d log ----\n%s", i,
			    log != NULL ? log : "(none)\n");
			free(log);
		}
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "etcdtest: could not remove %s\n", t->dir);
	free(t);
}

int
etcdtest_signal(struct etcdtest *t, int i, int sig)
{
	struct member *m = &t->m[i];

	if (i < 0 || i >= t->n || m->pid <= 0)
		return -1;
	if (sig == SIGKILL) {
		kill_member(m);
		return 0;
	}
	return kill(m->pid, sig);
}

int
etcdtest_restart(struct etcdtest *t, int i)
{
	struct member *m = &t->m[i];

	if (i < 0 || i >= t->n || m->pid > 0)
		return -1;
	/* With its data directory in place, etcd rejoins. */
	if (spawn_member(t, i) != 0)
		return -1;
	if (tutil_wait_port(m->client_port, m->pid, 20000) != 0) {
		fprintf(stderr, "etcdtest: member %d did not come back\n", i);
		kill_member(m);
		return -1;
	}
	return 0;
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	char *out = arg;
	size_t len = strlen(out), want = size * n;

	if (len + want < 256) {
		memcpy(out + len, p, want);
		out[len + want] = '\0';
	}
	return want;
}

/* 1 if member i says {"health":"true"}. */
static int
healthy(struct etcdtest *t, int i)
{
	CURL *c = curl_easy_init();
	char url[128], body[256] = "", path[600];
	int ok = 0;

	if (c == NULL)
		return 0;
	snprintf(url, sizeof(url), "%s/health", t->m[i].url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	if (t->o.certdir != NULL) {
		snprintf(path, sizeof(path), "%s/ca.pem", t->o.certdir);
		curl_easy_setopt(c, CURLOPT_CAINFO, path);
		if (t->o.client_cert_auth) {
			char cert[600], key[600];

			snprintf(cert, sizeof(cert), "%s/client.pem",
			    t->o.certdir);
			snprintf(key, sizeof(key), "%s/client-key.pem",
			    t->o.certdir);
			curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
			curl_easy_setopt(c, CURLOPT_SSLKEY, key);
		}
	}
	if (curl_easy_perform(c) == CURLE_OK &&
	    strstr(body, "\"health\":\"true\"") != NULL)
		ok = 1;
	curl_easy_cleanup(c);
	return ok;
}

int
etcdtest_wait_healthy(struct etcdtest *t, int ms)
{
	long long end = tutil_mono_ms() + ms;

	for (;;) {
		int all = 1;

		for (int i = 0; i < t->n && all; i++) {
			if (t->m[i].pid > 0 && !healthy(t, i))
				all = 0;
		}
		if (all)
			return 0;
		if (tutil_mono_ms() > end) {
			fprintf(stderr, "etcdtest: not healthy after %d ms\n",
			    ms);
			return -1;
		}
		tutil_nap_ms(100);
	}
}

/* Run argv with output to file out; its exit status or -1. */
static int
run(const char *const *argv, const char *out)
{
	pid_t pid = tutil_spawn((char *const *)argv, out, 1);
	int st;

	if (pid == -1 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
etcdtest_etcdctl(struct etcdtest *t, const char *const *args, char *out,
    int outsz)
{
	const char *argv[ARGS_MAX];
	char eps[sizeof(t->endpoints) + 16], ca[640], cert[640], key[640];
	char path[128];
	char *text;
	int a = 0, rc;

	snprintf(eps, sizeof(eps), "--endpoints=%s", t->endpoints);
	snprintf(path, sizeof(path), "%s/etcdctl.out", t->dir);
	argv[a++] = ETCDCTL_BIN;
	argv[a++] = eps;
	if (t->o.certdir != NULL) {
		snprintf(ca, sizeof(ca), "--cacert=%s/ca.pem", t->o.certdir);
		snprintf(cert, sizeof(cert), "--cert=%s/client.pem",
		    t->o.certdir);
		snprintf(key, sizeof(key), "--key=%s/client-key.pem",
		    t->o.certdir);
		argv[a++] = ca;
		argv[a++] = cert;
		argv[a++] = key;
	}
	for (int k = 0; args[k] != NULL && a < ARGS_MAX - 1; k++)
		argv[a++] = args[k];
	argv[a] = NULL;
	unlink(path);
	setenv("ETCDCTL_API", "3", 1);
	rc = run(argv, path);
	text = tutil_slurp(path, NULL);
	if (out != NULL && outsz > 0)
		snprintf(out, (size_t)outsz, "%s", text != NULL ? text : "");
	free(text);
	return rc;
}

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* Sign dir/<name>.csr with dir/ca into dir/<name>.pem with extensions. */
static int
make_cert(const char *dir, const char *name, const char *cn, const char *ext)
{
	char key[600], csr[600], pem[600], extf[600], ca[600], cakey[600];
	char subj[128], log[600];
	const char *req[] = {OPENSSL_BIN, "req", "-new", "-newkey", "ec",
	    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
	    key, "-out", csr, "-subj", subj, NULL};
	const char *sign[] = {OPENSSL_BIN, "x509", "-req", "-in", csr, "-CA",
	    ca, "-CAkey", cakey, "-CAcreateserial", "-days", "2", "-out", pem,
	    "-extfile", extf, NULL};

	snprintf(key, sizeof(key), "%s/%s-key.pem", dir, name);
	snprintf(csr, sizeof(csr), "%s/%s.csr", dir, name);
	snprintf(pem, sizeof(pem), "%s/%s.pem", dir, name);
	snprintf(extf, sizeof(extf), "%s/%s.ext", dir, name);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cakey, sizeof(cakey), "%s/ca-key.pem", dir);
	snprintf(subj, sizeof(subj), "/CN=%s", cn);
	snprintf(log, sizeof(log), "%s/openssl.log", dir);
	if (write_file(extf, ext) != 0 || run(req, log) != 0 ||
	    run(sign, log) != 0)
		return -1;
	return 0;
}

/* A self-signed CA: dir/<name>.pem and dir/<name>-key.pem. */
static int
make_ca(const char *dir, const char *name)
{
	char key[600], pem[600], log[600];
	const char *argv[] = {OPENSSL_BIN, "req", "-x509", "-newkey", "ec",
	    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
	    key, "-out", pem, "-days", "2", "-subj", "/CN=mqlock test CA",
	    NULL};

	snprintf(key, sizeof(key), "%s/%s-key.pem", dir, name);
	snprintf(pem, sizeof(pem), "%s/%s.pem", dir, name);
	snprintf(log, sizeof(log), "%s/openssl.log", dir);
	return run(argv, log) == 0 ? 0 : -1;
}

int
etcdtest_make_certs(const char *dir)
{
	if (make_ca(dir, "ca") != 0 || make_ca(dir, "other-ca") != 0 ||
	    make_cert(dir, "server", "127.0.0.1",
		"subjectAltName=IP:127.0.0.1\n"
		"extendedKeyUsage=serverAuth,clientAuth\n") != 0 ||
	    make_cert(dir, "client", "root", "extendedKeyUsage=clientAuth\n") !=
		0) {
		char path[600], *log;

		snprintf(path, sizeof(path), "%s/openssl.log", dir);
		log = tutil_slurp(path, NULL);
		fprintf(stderr, "etcdtest: openssl failed:\n%s\n",
		    log != NULL ? log : "");
		free(log);
		return -1;
	}
	return 0;
}
