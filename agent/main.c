/*
 * main.c: the dnsproxy process.  Flags and environment to config, the one
 * event loop, the live table slot and its swap, signals.
 *
 * The table slot is the only shared state: a new table is built aside
 * (nds_table_build) and swapped in with one assignment on the loop thread,
 * so a query sees either the old table or the new one, never a mix.  The
 * old table is unreferenced; anything still holding it keeps it alive.
 */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"

extern char **environ;
#include "nds/nds.h"
#include "resolver/resolvconf.h"
#include "resolver/resolver.h"

#define RESOLV_CONF_MAX (1024 * 1024)
#define DRAIN_POLL_MS 50 /* how often a stopping proxy checks TCP */
#define DRAIN_MAX_SEC 5  /* and how long it waits at most */

/* The process context: the only mutable global of dnsproxy. */
struct agent_ctx {
	struct agent_config cfg;
	struct event_base *base;
	struct agent_state st; /* what the listeners and admin read */
	struct agent_admin *admin;
	char search0[256]; /* first search domain, or "" */
	struct rsv_upstream upstreams[AGENT_UPSTREAM_MAX]; /* forwarding */
	size_t nupstreams;
	struct event *sig_hup, *sig_term, *sig_int, *sig_chld;
	pid_t snap_pid;      /* the snapshot writer running, or 0 */
	struct event *drain; /* shutdown: waits for TCP flush */
	int drain_ticks;
	struct nds_client *xds; /* --xds, or NULL */
	struct agent_xds_env xenv;
};

static struct agent_ctx agent;

static const char *
agent_getenv(const char *name)
{
	return getenv(name);
}

/* Reads a whole small file; -errno, or -EFBIG past max. */
static int
agent_read_file(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (st.st_size < 0 || (size_t)st.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size &&
	       (n = read(fd, buf + got, (size_t)st.st_size - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/*
 * The upstreams: --upstream, else every resolv.conf nameserver (not just
 * glibc's three).  c-ares 1.18.1 cannot address a scoped IPv6 server.
 */
static void
agent_take_nameservers(struct agent_ctx *a, const struct rsv_resolvconf *rc)
{
	size_t i;

	if (a->cfg.nupstreams > 0) {
		memcpy(a->upstreams, a->cfg.upstreams,
		    a->cfg.nupstreams * sizeof(a->upstreams[0]));
		a->nupstreams = a->cfg.nupstreams;
		return;
	}
	for (i = 0; i < rc->nservers; i++) {
		const struct rsv_nameserver *ns = &rc->servers[i];
		struct rsv_upstream *u;

		if (ns->scoped) {
			log_warn("%s: nameserver %s%%%u skipped: scoped IPv6 "
			         "servers are not supported by this c-ares",
			    a->cfg.resolv_conf, ns->text, ns->scope_id);
			continue;
		}
		if (a->nupstreams == AGENT_UPSTREAM_MAX) {
			log_warn("%s: more than %d nameservers; the rest are "
			         "ignored",
			    a->cfg.resolv_conf, AGENT_UPSTREAM_MAX);
			break;
		}
		u = &a->upstreams[a->nupstreams++];
		u->family = ns->family;
		memcpy(u->addr, ns->addr, sizeof(u->addr));
		u->port = ns->port;
	}
}

/* resolv.conf gives the search list; its first domain drives the search
 * CNAMEs (SPEC §2).  A missing file is a start-up error (SPEC §4). */
static int
agent_load_resolv_conf(struct agent_ctx *a)
{
	struct rsv_resolvconf *rc = NULL;
	char *text = NULL;
	size_t len = 0;
	int err;

	err = agent_read_file(a->cfg.resolv_conf, RESOLV_CONF_MAX, &text, &len);
	if (err != 0) {
		log_error("cannot read resolv.conf %s: %s", a->cfg.resolv_conf,
		    strerror(-err));
		return err;
	}
	err = rsv_resolvconf_parse(text, len, &rc);
	free(text);
	if (err != 0) {
		log_error("%s: %s", a->cfg.resolv_conf, strerror(-err));
		return err;
	}
	if (rc->nskipped > 0)
		log_warn("%s: %s (%zu line(s) skipped)", a->cfg.resolv_conf,
		    rc->warning, rc->nskipped);
	if (rc->nsearch > 0)
		snprintf(a->search0, sizeof(a->search0), "%s", rc->search[0]);
	agent_take_nameservers(a, rc);
	log_info("resolv.conf %s: %zu nameserver(s), search[0] \"%s\"",
	    a->cfg.resolv_conf, rc->nservers, a->search0);
	rsv_resolvconf_free(rc);
	return 0;
}

/* The expansion options of SPEC §2 for every table this process builds. */
static struct nds_build_opts
agent_build_opts(const struct agent_ctx *a)
{
	struct nds_build_opts o = {
	    .namespace = a->cfg.ns,
	    .domain = a->cfg.domain,
	    .search0 = a->search0,
	    .ttl = a->cfg.ttl,
	};
	return o;
}

static uint64_t
agent_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * Loads a table file (--table or --snapshot) and builds it aside; *us gets
 * the read + decode + compile time.
 */
static int
agent_build_table(struct agent_ctx *a, const char *path, struct nds_table **out,
    uint64_t *us)
{
	struct nds_build_opts o = agent_build_opts(a);
	struct nds_nametable *nt;
	uint64_t t0 = agent_usec();
	char err[512];
	int rc;

	rc = nds_file_load(path, &nt, err, sizeof(err));
	if (rc == 0)
		rc = nds_table_build(nt, &o, out, err, sizeof(err));
	*us = agent_usec() - t0;
	/* Loading a large JSON table leaves a parse tree's worth of freed
	 * heap behind; hand it back to the system instead of keeping it. */
	malloc_trim(0);
	if (rc != 0) {
		log_error("table %s", err);
		return rc;
	}
	return 0;
}

/*
 * The swap: one assignment on the loop thread.  from names the source for
 * the log; version is the xDS version_info, or NULL for "file-N"; bs says
 * what decoding and compiling t took (only work_us for a file).
 */
static void
agent_table_swap(struct agent_ctx *a, struct nds_table *t, const char *from,
    const char *version, const struct nds_build_stats *bs)
{
	struct nds_table *old = a->st.table;
	struct timespec t0, t1;
	double swap_ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	a->st.table = t;
	a->st.table_build_us = bs->work_us;
	a->st.table_stall_us = bs->slices > 0 ? bs->stall_us : bs->work_us;
	a->st.table_loads++;
	a->st.table_updated = time(NULL);
	if (version != NULL)
		snprintf(a->st.table_version, sizeof(a->st.table_version), "%s",
		    version);
	else
		snprintf(a->st.table_version, sizeof(a->st.table_version),
		    "file-%llu", (unsigned long long)a->st.table_loads);
	nds_table_unref(old);
	malloc_trim(0); /* the old table's pages, unless a holder remains */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	swap_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	          (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	if (bs->slices > 0)
		log_info("table from %s (version %s): %zu entries, %zu names, "
		         "built in %.1f ms after the last byte: %.1f ms of "
		         "work, the compile in %u slices, queries waited at "
		         "most %.1f ms (%.1f ms of decoding as it arrived); "
		         "the old table freed in %.1f ms",
		    from, a->st.table_version, nds_table_entries(t),
		    nds_table_names(t), (double)bs->wall_us / 1000.0,
		    (double)bs->work_us / 1000.0, bs->slices,
		    (double)bs->stall_us / 1000.0,
		    (double)bs->early_us / 1000.0, swap_ms);
	else
		log_info("table from %s (version %s): %zu entries, %zu names, "
		         "built in %.1f ms",
		    from, a->st.table_version, nds_table_entries(t),
		    nds_table_names(t), (double)bs->work_us / 1000.0);
}

/* A table read at once (a file, the snapshot): its build took us. */
static void
agent_table_swap_file(struct agent_ctx *a, struct nds_table *t,
    const char *from, const char *version, uint64_t us)
{
	struct nds_build_stats bs = {.work_us = us};

	agent_table_swap(a, t, from, version, &bs);
}

static void
agent_on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct agent_ctx *a = arg;
	struct nds_table *t;
	uint64_t us;

	(void)sig, (void)what;
	if (a->st.rsv != NULL) {
		rsv_cache_clear(a->st.rsv);
		log_info("SIGHUP: cache emptied");
	}
	if (a->cfg.table_path == NULL) {
		log_info("SIGHUP: no --table to reload");
		return;
	}
	if (agent_build_table(a, a->cfg.table_path, &t, &us) != 0) {
		log_warn("SIGHUP: keeping the previous table");
		return;
	}
	agent_table_swap_file(a, t, a->cfg.table_path, NULL, us);
}

static void
agent_on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct agent_ctx *a = arg;
	struct timeval tv = {0, DRAIN_POLL_MS * 1000};

	(void)fd, (void)what;
	if (agent_listeners_busy(a->st.listeners) == 0 ||
	    ++a->drain_ticks * DRAIN_POLL_MS >= DRAIN_MAX_SEC * 1000) {
		event_base_loopexit(a->base, NULL);
		return;
	}
	evtimer_add(a->drain, &tv);
}

static void
agent_on_term(evutil_socket_t sig, short what, void *arg)
{
	struct agent_ctx *a = arg;

	(void)what;
	if (a->drain != NULL)
		return; /* already stopping */
	log_info("signal %d: stopping", (int)sig);
	agent_listeners_stop(a->st.listeners);
	a->drain = evtimer_new(a->base, agent_on_drain, a);
	if (a->drain == NULL) {
		event_base_loopexit(a->base, NULL);
		return;
	}
	agent_on_drain(-1, 0, a);
}

/*
 * In the snapshot writer: closes every descriptor but stdin, stdout and
 * stderr.  Otherwise the child would hold the proxy's sockets open for as
 * long as the disk takes, and a proxy restarted meanwhile could not bind
 * its port.
 */
static void
agent_close_fds(void)
{
	struct rlimit rl;
	int fd, max = 65536;

	if (close_range(3, ~0U, 0) == 0)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max)
		max = (int)rl.rlim_cur;
	for (fd = 3; fd < max; fd++)
		(void)close(fd);
}

/* Writes the snapshot here and now; false if it failed (logged). */
static bool
agent_snapshot_write(const char *path, const uint8_t *pb, size_t pblen)
{
	char err[512];

	if (nds_snapshot_write(path, pb, pblen, err, sizeof(err)) == 0)
		return true;
	log_warn("xds: %s (the table is served anyway)", err);
	return false;
}

/*
 * Persists an accepted table (SPEC §5, D7) without blocking the loop:
 * write, fsync and rename take as long as the disk does, so a child
 * process does them, at the lowest priority, with the bytes it shares
 * copy-on-write, and the message can be freed at once.  The push is
 * ACKed meanwhile; a crash before the rename leaves the previous
 * snapshot, whole.
 *
 * The child keeps none of the proxy's descriptors (agent_close_fds()).
 * A newer table supersedes a write still running: that child is killed,
 * so it never renames over the newer one, and its temporary file goes
 * when it is reaped (agent_on_chld()).  Signals stay blocked across
 * fork() until the child has dropped the loop's handlers, which would
 * wake the parent's loop.
 */
static void
agent_snapshot_start(struct agent_ctx *a, const uint8_t *pb, size_t pblen)
{
	const char *path = a->cfg.snapshot_path;
	sigset_t all, old;
	pid_t pid;

	if (a->snap_pid > 0) {
		log_debug("snapshot %s: a newer table supersedes the write of "
		          "process %ld",
		    path, (long)a->snap_pid);
		(void)kill(a->snap_pid, SIGKILL);
		a->snap_pid = 0;
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	if ((pid = fork()) == 0) {
		signal(SIGHUP, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		agent_close_fds();
		/* It shares the proxy's CPU: queries first. */
		(void)setpriority(PRIO_PROCESS, 0, 19);
		_exit(agent_snapshot_write(path, pb, pblen) ? 0 : 1);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		log_warn("snapshot %s: fork: %s; writing it on the loop", path,
		    strerror(errno));
		(void)agent_snapshot_write(path, pb, pblen);
		return;
	}
	a->snap_pid = pid;
}

/* Reaps snapshot writers; a killed one's temporary file is removed. */
static void
agent_on_chld(evutil_socket_t sig, short what, void *arg)
{
	struct agent_ctx *a = arg;
	char tmp[4096];
	pid_t pid;
	int st;

	(void)sig, (void)what;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		bool current = pid == a->snap_pid;

		if (current)
			a->snap_pid = 0;
		if (!WIFSIGNALED(st) || a->cfg.snapshot_path == NULL)
			continue; /* a failed write was logged by the child */
		if (nds_snapshot_tmp(a->cfg.snapshot_path, (long)pid, tmp,
		        sizeof(tmp)) == 0)
			(void)unlink(tmp);
		if (current)
			log_warn("snapshot %s: the writer died of signal %d; "
			         "the previous snapshot stays",
			    a->cfg.snapshot_path, WTERMSIG(st));
	}
}

static int
agent_signals(struct agent_ctx *a)
{
	signal(SIGPIPE, SIG_IGN);
	a->sig_hup = evsignal_new(a->base, SIGHUP, agent_on_hup, a);
	a->sig_term = evsignal_new(a->base, SIGTERM, agent_on_term, a);
	a->sig_int = evsignal_new(a->base, SIGINT, agent_on_term, a);
	a->sig_chld = evsignal_new(a->base, SIGCHLD, agent_on_chld, a);
	if (a->sig_hup == NULL || a->sig_term == NULL || a->sig_int == NULL ||
	    a->sig_chld == NULL || evsignal_add(a->sig_hup, NULL) != 0 ||
	    evsignal_add(a->sig_term, NULL) != 0 ||
	    evsignal_add(a->sig_int, NULL) != 0 ||
	    evsignal_add(a->sig_chld, NULL) != 0)
		return -ENOMEM;
	return 0;
}

static void
agent_cleanup(struct agent_ctx *a)
{
	/* The resolver first: it answers anything pending into the
	 * listeners' contexts, which are freed next. */
	nds_client_destroy(a->xds);
	agent_admin_close(a->admin);
	rsv_destroy(a->st.rsv);
	agent_listeners_close(a->st.listeners);
	if (a->sig_hup != NULL)
		event_free(a->sig_hup);
	if (a->sig_term != NULL)
		event_free(a->sig_term);
	if (a->sig_int != NULL)
		event_free(a->sig_int);
	if (a->sig_chld != NULL)
		event_free(a->sig_chld);
	if (a->drain != NULL)
		event_free(a->drain);
	nds_table_unref(a->st.table);
	if (a->base != NULL)
		event_base_free(a->base);
	libevent_global_shutdown();
}

/* The resolver with its upstreams (SPEC §4). */
static int
agent_resolver(struct agent_ctx *a)
{
	struct rsv_config rc = {
	    .upstreams = a->upstreams,
	    .nupstreams = a->nupstreams,
	    .timeout_ms = a->cfg.fwd_timeout_ms,
	    .attempts = a->cfg.fwd_attempts,
	    .parallel = a->cfg.fwd_parallel,
	    .max_forwards = a->cfg.max_forwards,
	    .log_reply = agent_on_reply,
	    .forward_before_sync = a->cfg.forward_before_sync,
	    .cache_entries = a->cfg.cache_size,
	    .cache_bytes = a->cfg.cache_bytes,
	    .cache_max_ttl = a->cfg.cache_max_ttl,
	    .cache_max_neg_ttl = a->cfg.cache_max_neg_ttl,
	    .cache_max_stale = a->cfg.cache_max_stale,
	    .stale_timeout_ms = a->cfg.stale_timeout_ms,
	};
	const char *const *names;
	const uint64_t *fails;
	char err[256];
	size_t i, n;

	if (rsv_create(a->base, &rc, &a->st.rsv, err, sizeof(err)) != 0) {
		log_error("resolver: %s", err);
		return -1;
	}
	n = rsv_upstreams(a->st.rsv, &names, &fails);
	if (n == 0)
		log_warn("no upstream nameserver: queries the table cannot "
		         "answer get SERVFAIL");
	for (i = 0; i < n; i++)
		log_info("upstream %s", names[i]);
	log_info("forwarding: %u ms per attempt, %u attempts, %s",
	    a->cfg.fwd_timeout_ms,
	    a->cfg.fwd_attempts ? a->cfg.fwd_attempts : (unsigned)(2 * n),
	    a->cfg.fwd_parallel ? "parallel" : "one server at a time");
	if (a->cfg.cache_size == 0)
		log_info("cache: off");
	else
		log_info("cache: %u entries, %u bytes, TTL <= %u s, negative "
		         "<= %u s, stale <= %u s after %u ms",
		    a->cfg.cache_size, a->cfg.cache_bytes, a->cfg.cache_max_ttl,
		    a->cfg.cache_max_neg_ttl, a->cfg.cache_max_stale,
		    a->cfg.stale_timeout_ms);
	return 0;
}

/* --snapshot at start (D7): a missing or bad file is logged and ignored. */
static void
agent_load_snapshot(struct agent_ctx *a)
{
	struct nds_table *t;
	uint64_t us;

	if (access(a->cfg.snapshot_path, F_OK) != 0) {
		log_info("snapshot %s: none yet", a->cfg.snapshot_path);
		return;
	}
	if (agent_build_table(a, a->cfg.snapshot_path, &t, &us) != 0) {
		log_warn("snapshot %s ignored", a->cfg.snapshot_path);
		return;
	}
	agent_table_swap_file(a, t, a->cfg.snapshot_path, "snapshot", us);
}

/* A push was accepted: swap it in, then persist it (SPEC §5). */
static void
agent_xds_table(struct nds_table *t, const char *version, const uint8_t *pb,
    size_t pblen, void *arg)
{
	struct agent_ctx *a = arg;
	struct nds_build_stats bs;

	a->st.xds_pushes++;
	nds_client_build_stats(a->xds, &bs);
	agent_table_swap(a, t, "xds", version, &bs);
	if (a->cfg.snapshot_path != NULL)
		agent_snapshot_start(a, pb, pblen);
}

static void
agent_xds_event(enum nds_event ev, const char *detail, void *arg)
{
	struct agent_ctx *a = arg;

	switch (ev) {
	case NDS_EV_CONNECTING:
		log_debug("xds: connecting to %s", detail);
		break;
	case NDS_EV_CONNECTED:
		a->st.xds_connected = 1;
		log_info("xds: connected to %s", detail);
		break;
	case NDS_EV_DISCONNECTED:
		a->st.xds_connected = 0;
		log_warn("xds: %s", detail);
		break;
	case NDS_EV_RETRY:
		a->st.xds_reconnects++;
		log_info("xds: reconnecting %s", detail);
		break;
	case NDS_EV_ACK:
		a->st.xds_acks++;
		log_debug("xds: ACK version %s", detail);
		break;
	case NDS_EV_NACK:
		a->st.xds_pushes++;
		a->st.xds_nacks++;
		log_warn("xds: NACK: %s; keeping the %s", detail,
		    a->st.table ? "previous table" : "no-table state");
		break;
	case NDS_EV_IGNORED:
		log_info("xds: %s", detail);
		break;
	}
}

/* The NDS client (SPEC §5), once the listeners are up. */
static int
agent_xds_start(struct agent_ctx *a)
{
	struct nds_client_config xc = {
	    .addr = a->cfg.xds,
	    .plaintext = a->cfg.xds_plaintext,
	    .root_cert = a->cfg.xds_root_cert,
	    .token_path = a->cfg.xds_token,
	    .sni = a->cfg.xds_sni,
	    .cluster_id = a->cfg.cluster_id,
	    .build = agent_build_opts(a),
	    .keep_bytes = a->cfg.snapshot_path != NULL,
	};
	struct nds_client_cbs cbs = {
	    .on_table = agent_xds_table,
	    .on_event = agent_xds_event,
	};
	char err[512];

	if (agent_xds_env_build(&a->cfg, environ, &a->xenv, err, sizeof(err)) !=
	    0) {
		log_error("xds: %s", err);
		return -1;
	}
	xc.hdr_names = a->xenv.hdr_names;
	xc.hdr_vals = a->xenv.hdr_vals;
	xc.nhdrs = a->xenv.nhdrs;
	xc.node.id = a->xenv.node_id;
	xc.node.meta_keys = a->xenv.meta_keys;
	xc.node.meta_vals = a->xenv.meta_vals;
	xc.node.nmeta = a->xenv.nmeta;
	xc.node.user_agent_name = "dnsproxy";
	xc.node.user_agent_version = DNSPROXY_VERSION;
	log_info("xds: %s over %s, node %s, cluster %s", a->cfg.xds,
	    a->cfg.xds_plaintext ? "plaintext h2c" : "TLS", a->xenv.node_id,
	    a->cfg.cluster_id);
	if (nds_client_create(a->base, &xc, &cbs, a, &a->xds, err,
	        sizeof(err)) != 0) {
		log_error("xds: %s", err);
		return -1;
	}
	return 0;
}

/* Everything after the command line; returns the exit code. */
static int
agent_run(struct agent_ctx *a)
{
	struct agent_server srv;
	struct nds_table *t;
	uint64_t us;
	char err[512];

	if (agent_load_resolv_conf(a) != 0)
		return 1;
	if (a->cfg.table_path != NULL) {
		if (agent_build_table(a, a->cfg.table_path, &t, &us) != 0)
			return 1;
		agent_table_swap_file(a, t, a->cfg.table_path, NULL, us);
	} else if (a->cfg.snapshot_path != NULL)
		agent_load_snapshot(a);
	if (a->st.table == NULL)
		log_warn("no table loaded: every query gets %s until one is",
		    a->cfg.forward_before_sync ? "forwarded" : "SERVFAIL");
	if ((a->base = event_base_new()) == NULL || agent_signals(a) != 0) {
		log_error("out of memory");
		return 1;
	}
	if (agent_resolver(a) != 0)
		return 1;
	srv.base = a->base;
	srv.rsv = a->st.rsv;
	srv.table = &a->st.table;
	if (agent_listeners_open(&srv, &a->cfg, &a->st.listeners, err,
	        sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	if (agent_admin_open(a->base, a->cfg.admin, &a->st, &a->admin, err,
	        sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	if (a->admin != NULL)
		log_info("admin on http://%s", a->cfg.admin);
	if (a->cfg.xds != NULL && agent_xds_start(a) != 0)
		return 1;
	log_info("dnsproxy %s ready (namespace \"%s\", domain \"%s\")",
	    DNSPROXY_VERSION, a->cfg.ns != NULL ? a->cfg.ns : "",
	    a->cfg.domain != NULL ? a->cfg.domain : "");
	if (event_base_dispatch(a->base) != 0) {
		log_error("event loop failed");
		return 1;
	}
	log_info("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	char err[512];
	int code;

	if (agent_config_parse(argc, argv, agent_getenv, &agent.cfg, err,
	        sizeof(err)) != 0) {
		fprintf(stderr, "dnsproxy: %s\n", err);
		return 2;
	}
	if (agent.cfg.mode == AGENT_HELP) {
		agent_usage(stdout);
		return 0;
	}
	if (agent.cfg.mode == AGENT_VERSION) {
		printf("dnsproxy %s\n", DNSPROXY_VERSION);
		return 0;
	}
	if (agent.cfg.mode == AGENT_DUMP)
		return agent_dump(&agent.cfg);
	/*
	 * Blocks of 128 KiB and up (a pushed NameTable, its decoded copy,
	 * the table's arrays) come from mmap and go back to the system when
	 * freed.  glibc would otherwise raise that threshold to the largest
	 * block freed so far, so that the next push's buffers come from the
	 * heap and stay resident, ~16 MB more after a 100k-service swap,
	 * until the next malloc_trim().
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	agent_log_setup(agent.cfg.log_level, agent.cfg.log_format);
	agent_log_set_queries(agent.cfg.log_queries);
	code = agent_run(&agent);
	agent_cleanup(&agent);
	return code;
}
