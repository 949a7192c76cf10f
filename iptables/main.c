/*
 * main.c: dnsproxy-init, which installs the DNS capture rules of SPEC §7
 * in the pod's network namespace.  Flags and environment to a config,
 * then one iptables-restore --noflush per family (or one nft -f).
 * Exit codes: 0 done (also: nothing to capture), 1 runtime error,
 * 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "iptables/dpinit.h"
#include "resolver/resolvconf.h"

#define EXIT_USAGE 2
#define RUN_TIMEOUT_MS 30000
#define RESOLV_MAX (1u << 20)

struct opts {
	const char *resolv_conf;
	const char *backend; /* "iptables", "nft" or "auto" */
	int capture_all;
	int redirect_dns; /* REDIRECT_DNS=false: install nothing */
	int dry_run;
	int cleanup;
	int gid_set;
	uint32_t uid;
	uint32_t gid;
	uint16_t port;
};

static void
usage(FILE *f)
{
	fputs("Usage: dnsproxy-init [OPTIONS]\n"
	      "\n"
	      "Installs the netfilter rules that send the pod's DNS (UDP and "
	      "TCP port 53\nto its resolv.conf nameservers) to dnsproxy on "
	      "127.0.0.1 / [::1], exempting\nthe proxy's own uid/gid.\n"
	      "\n"
	      "  --resolv-conf FILE   nameservers to capture (default "
	      "/etc/resolv.conf)\n"
	      "  --capture-all-dns    capture every port-53 destination "
	      "(env CAPTURE_ALL_DNS)\n"
	      "  --proxy-uid N        the proxy's uid, exempt (env PROXY_UID; "
	      "default 1337)\n"
	      "  --proxy-gid N        the proxy's gid, exempt (env PROXY_GID; "
	      "default: the uid)\n"
	      "  --dns-port N         the proxy's DNS port (default 15053)\n"
	      "  --backend B          iptables, nft or auto (auto: nft when "
	      "no iptables-restore;\n"
	      "                       default iptables)\n"
	      "  --dry-run            print the rules, change nothing (env "
	      "DRY_RUN)\n"
	      "  --cleanup            remove the rules (both families, or "
	      "the nft tables)\n"
	      "  --help, --version\n"
	      "\n"
	      "REDIRECT_DNS=false (or, when unset, ISTIO_META_DNS_CAPTURE="
	      "false) installs\nnothing.  Exit codes: 0 ok, 1 runtime error, "
	      "2 usage error.\n",
	    f);
}

static int
usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "dnsproxy-init: %s%s (see --help)\n", msg, arg);
	return EXIT_USAGE;
}

/* Go's strconv.ParseBool, as Istio reads its flags and environment. */
static int
parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {
	    "1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {
	    "0", "f", "F", "FALSE", "false", "False"};
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
			*out = strcmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return -EINVAL;
}

static int
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || *out > max)
		return -EINVAL;
	return 0;
}

/* One boolean variable: 0 (unset or set), or the exit code. */
static int
env_bool(const char *name, int *out)
{
	const char *s = getenv(name);

	if (s == NULL || *s == '\0')
		return 0;
	if (parse_bool(s, out) != 0)
		return usage_error("bad boolean in environment: ", name);
	return 0;
}

static int
env_id(const char *name, uint32_t *out, int *set)
{
	const char *s = getenv(name);
	unsigned long v;

	if (s == NULL || *s == '\0')
		return 0;
	if (parse_uint(s, 4294967294ul, &v) != 0)
		return usage_error("bad id in environment: ", name);
	*out = (uint32_t)v;
	*set = 1;
	return 0;
}

/*
 * Environment first; flags override it.  The names are those Istio's
 * istio-iptables reads (viper: flag name upper-cased, '-' to '_');
 * REDIRECT_DNS defaults to ISTIO_META_DNS_CAPTURE there, and to true here.
 */
static int
read_env(struct opts *o)
{
	int rc, uid_set = 0;

	if ((rc = env_bool("ISTIO_META_DNS_CAPTURE", &o->redirect_dns)) != 0 ||
	    (rc = env_bool("REDIRECT_DNS", &o->redirect_dns)) != 0 ||
	    (rc = env_bool("CAPTURE_ALL_DNS", &o->capture_all)) != 0 ||
	    (rc = env_bool("DRY_RUN", &o->dry_run)) != 0 ||
	    (rc = env_id("PROXY_UID", &o->uid, &uid_set)) != 0 ||
	    (rc = env_id("PROXY_GID", &o->gid, &o->gid_set)) != 0)
		return rc;
	return 0;
}

enum {
	OPT_RESOLV = 256,
	OPT_CAPTURE_ALL,
	OPT_UID,
	OPT_GID,
	OPT_PORT,
	OPT_BACKEND,
	OPT_DRY_RUN,
	OPT_CLEANUP,
	OPT_HELP,
	OPT_VERSION,
};

static int
apply_flag(struct opts *o, int c, const char *arg)
{
	unsigned long v;
	int b = 1;

	switch (c) {
	case OPT_RESOLV:
		o->resolv_conf = arg;
		return 0;
	case OPT_CAPTURE_ALL:
	case OPT_DRY_RUN:
		if (arg != NULL && parse_bool(arg, &b) != 0)
			return usage_error("bad boolean: ", arg);
		*(c == OPT_CAPTURE_ALL ? &o->capture_all : &o->dry_run) = b;
		return 0;
	case OPT_CLEANUP:
		o->cleanup = 1;
		return 0;
	case OPT_UID:
	case OPT_GID:
		if (parse_uint(arg, 4294967294ul, &v) != 0)
			return usage_error("bad id: ", arg);
		*(c == OPT_UID ? &o->uid : &o->gid) = (uint32_t)v;
		o->gid_set |= c == OPT_GID;
		return 0;
	case OPT_PORT:
		if (parse_uint(arg, 65535, &v) != 0 || v == 0)
			return usage_error("bad --dns-port: ", arg);
		o->port = (uint16_t)v;
		return 0;
	case OPT_BACKEND:
		if (strcmp(arg, "iptables") != 0 && strcmp(arg, "nft") != 0 &&
		    strcmp(arg, "auto") != 0)
			return usage_error("--backend is iptables, nft or "
			                   "auto, not ",
			    arg);
		o->backend = arg;
		return 0;
	}
	return usage_error("unknown option", "");
}

/* -1: go on; otherwise the exit code. */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"resolv-conf", required_argument, NULL, OPT_RESOLV},
	    {"capture-all-dns", optional_argument, NULL, OPT_CAPTURE_ALL},
	    {"proxy-uid", required_argument, NULL, OPT_UID},
	    {"proxy-gid", required_argument, NULL, OPT_GID},
	    {"dns-port", required_argument, NULL, OPT_PORT},
	    {"backend", required_argument, NULL, OPT_BACKEND},
	    {"dry-run", optional_argument, NULL, OPT_DRY_RUN},
	    {"cleanup", no_argument, NULL, OPT_CLEANUP},
	    {"help", no_argument, NULL, OPT_HELP},
	    {"version", no_argument, NULL, OPT_VERSION}, {NULL, 0, NULL, 0}};
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			usage(stdout);
			return 0;
		}
		if (c == OPT_VERSION) {
			printf("dnsproxy-init %s\n", DNSPROXY_VERSION);
			return 0;
		}
		if (c == '?' || c == ':')
			return usage_error(c == ':' ? "missing value for "
			                            : "unknown option ",
			    argv[optind - 1]);
		if ((rc = apply_flag(o, c, optarg)) != 0)
			return rc;
	}
	if (optind < argc)
		return usage_error("unexpected argument ", argv[optind]);
	if (!o->gid_set)
		o->gid = o->uid; /* Istio: same default as --proxy-uid */
	return -1;
}

/* Runs argv with the script on stdin; on failure says why.  0 or 1. */
static int
run(const char *const *argv, const struct dpinit_buf *in,
    struct dpinit_buf *out)
{
	char err[2048], cmd[128] = "";
	int rc, status;
	size_t n, i;

	/* For messages only ("nft -f -"); a cut is harmless. */
	for (i = 0; argv[i] != NULL; i++)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s%s",
		    i > 0 ? " " : "", argv[i]);

	rc = dpinit_exec_run(argv, in != NULL ? in->data : NULL,
	    in != NULL ? in->len : 0, out, err, sizeof(err), RUN_TIMEOUT_MS,
	    &status);
	if (rc == -ENOENT) {
		fprintf(stderr,
		    "dnsproxy-init: %s: not found in PATH (install %s)\n",
		    argv[0], argv[0][0] == 'n' ? "nftables" : "iptables");
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "dnsproxy-init: cannot run %s: %s\n", argv[0],
		    strerror(-rc));
		return 1;
	}
	if (status == 0)
		return 0;
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
	if (status < 0)
		fprintf(stderr, "dnsproxy-init: %s killed or timed out%s%s\n",
		    cmd, n > 0 ? ": " : "", err);
	else
		fprintf(stderr, "dnsproxy-init: %s failed (exit %d)%s%s\n", cmd,
		    status, n > 0 ? ": " : "", err);
	if (strstr(err, "ermission denied") != NULL ||
	    strstr(err, "Operation not permitted") != NULL)
		fprintf(stderr, "dnsproxy-init: needs root or CAP_NET_ADMIN "
		                "(and CAP_NET_RAW) in the pod's network "
		                "namespace\n");
	return 1;
}

static const char *const save_cmd[2][2] = {
    {"iptables-save", NULL}, {"ip6tables-save", NULL}};
static const char *const restore_cmd[2][3] = {
    {"iptables-restore", "--noflush", NULL},
    {"ip6tables-restore", "--noflush", NULL}};

/* Removes our rules of one family (f: 0 IPv4, 1 IPv6).  0 or 1. */
static int
iptables_cleanup(int f)
{
	struct dpinit_buf save = {0}, script = {0};
	int rc = 1;

	if (run(save_cmd[f], NULL, &save) != 0)
		goto out;
	if (dpinit_rules_cleanup(save.data, save.len, &script) != 0) {
		fprintf(stderr, "dnsproxy-init: out of memory\n");
		goto out;
	}
	rc = script.len > 0 ? run(restore_cmd[f], &script, NULL) : 0;
out:
	dpinit_buf_fini(&save);
	dpinit_buf_fini(&script);
	return rc;
}

/* Installs one family: save, render against it, restore.  0 or 1. */
static int
iptables_apply(const struct dpinit_config *cfg, int f)
{
	struct dpinit_buf save = {0}, script = {0};
	int rc = 1;

	if (run(save_cmd[f], NULL, &save) != 0)
		goto out;
	if (dpinit_rules_render(cfg, f == 0 ? AF_INET : AF_INET6, DPINIT_APPLY,
	        save.data, save.len, &script) != 0) {
		fprintf(stderr, "dnsproxy-init: out of memory\n");
		goto out;
	}
	rc = run(restore_cmd[f], &script, NULL);
out:
	dpinit_buf_fini(&save);
	dpinit_buf_fini(&script);
	return rc;
}

static int
apply(const struct dpinit_config *cfg, enum dpinit_backend be)
{
	static const char *const nft[] = {"nft", "-f", "-", NULL};
	struct dpinit_buf script = {0};
	int rc;

	if (be == DPINIT_NFT) {
		if (dpinit_nft_render(cfg, &script) != 0) {
			fprintf(stderr, "dnsproxy-init: out of memory\n");
			return 1;
		}
		rc = run(nft, &script, NULL);
		dpinit_buf_fini(&script);
		return rc;
	}
	if ((rc = iptables_apply(cfg, 0)) != 0 || !cfg->ipv6)
		return rc;
	if ((rc = iptables_apply(cfg, 1)) != 0) {
		/* Nothing half-applied: take the IPv4 rules out again. */
		fprintf(stderr, "dnsproxy-init: IPv6 rules rejected; removing "
		                "the IPv4 rules\n");
		iptables_cleanup(0);
	}
	return rc;
}

static int
cleanup(const struct dpinit_config *cfg, enum dpinit_backend be)
{
	static const char *const nft[] = {"nft", "-f", "-", NULL};
	struct dpinit_buf script = {0};
	int rc;

	if (be == DPINIT_NFT) {
		if (dpinit_nft_cleanup(&script) != 0)
			return 1;
		rc = run(nft, &script, NULL);
		dpinit_buf_fini(&script);
		return rc;
	}
	rc = iptables_cleanup(0);
	if (cfg->ipv6 && iptables_cleanup(1) != 0)
		rc = 1;
	return rc;
}

/* Reads the nameservers; 0, or 1 with a message. */
static int
load_resolv(const char *path, struct rsv_resolvconf **rc)
{
	struct dpinit_buf text = {0};
	int e;

	if ((e = dpinit_exec_read_file(path, RESOLV_MAX, &text)) != 0) {
		fprintf(stderr, "dnsproxy-init: %s: %s\n", path, strerror(-e));
		dpinit_buf_fini(&text);
		return 1;
	}
	e = rsv_resolvconf_parse(text.data != NULL ? text.data : "", text.len,
	    rc);
	dpinit_buf_fini(&text);
	if (e != 0) {
		fprintf(stderr, "dnsproxy-init: %s: %s\n", path, strerror(-e));
		return 1;
	}
	if ((*rc)->nskipped > 0)
		fprintf(stderr, "dnsproxy-init: warning: %s: %s\n", path,
		    (*rc)->warning);
	return 0;
}

static int
dry_run(const struct dpinit_config *cfg, enum dpinit_backend be, int clean)
{
	struct dpinit_buf out = {0};
	int rc = 0;

	if (dpinit_render_dryrun(cfg, be, clean, &out) != 0) {
		fprintf(stderr, "dnsproxy-init: out of memory\n");
		rc = 1;
	} else if (out.len > 0 &&
	           fwrite(out.data, 1, out.len, stdout) != out.len) {
		rc = 1;
	}
	dpinit_buf_fini(&out);
	return rc;
}

static enum dpinit_backend
pick_backend(const char *name)
{
	if (strcmp(name, "nft") == 0)
		return DPINIT_NFT;
	if (strcmp(name, "auto") == 0 &&
	    !dpinit_exec_which("iptables-restore") &&
	    !dpinit_exec_which("iptables"))
		return DPINIT_NFT;
	return DPINIT_IPTABLES;
}

static void
report(const struct dpinit_config *cfg, enum dpinit_backend be)
{
	if (cfg->capture_all)
		fprintf(stderr, "dnsproxy-init: capturing all DNS (port 53)");
	else
		fprintf(stderr,
		    "dnsproxy-init: capturing DNS to %zu IPv4 and %zu IPv6 "
		    "nameserver(s)",
		    dpinit_count(cfg, AF_INET), dpinit_count(cfg, AF_INET6));
	fprintf(stderr, " -> port %u via %s; uid %lu / gid %lu exempt\n",
	    cfg->dns_port, be == DPINIT_NFT ? "nft" : "iptables",
	    (unsigned long)cfg->uid, (unsigned long)cfg->gid);
}

int
main(int argc, char **argv)
{
	struct opts o = {
	    "/etc/resolv.conf", "iptables", 0, 1, 0, 0, 0, 1337, 1337, 15053};
	struct dpinit_config cfg;
	struct rsv_resolvconf *rc = NULL;
	enum dpinit_backend be;
	int code;

	if ((code = read_env(&o)) != 0 ||
	    (code = parse_args(argc, argv, &o)) != -1)
		return code;
	memset(&cfg, 0, sizeof(cfg));
	cfg.capture_all = o.capture_all;
	cfg.uid = o.uid;
	cfg.gid = o.gid;
	cfg.dns_port = o.port;
	cfg.ipv6 = o.dry_run || dpinit_exec_have_ipv6();
	be = pick_backend(o.backend);
	if (!cfg.ipv6 && be == DPINIT_IPTABLES)
		fprintf(stderr, "dnsproxy-init: warning: no IPv6 in this "
		                "network namespace; ip6tables left alone\n");
	if (o.cleanup)
		return o.dry_run ? dry_run(&cfg, be, 1) : cleanup(&cfg, be);
	if (!o.redirect_dns) {
		fprintf(stderr, "dnsproxy-init: REDIRECT_DNS is false: DNS "
		                "capture disabled, nothing installed\n");
		return 0;
	}
	/* As Istio: with capture-all, resolv.conf is not read at all. */
	if (!cfg.capture_all && load_resolv(o.resolv_conf, &rc) != 0)
		return 1;
	if (rc != NULL) {
		cfg.servers = rc->servers;
		cfg.nservers = rc->nservers;
	}
	if (!dpinit_wanted(&cfg)) {
		fprintf(stderr,
		    "dnsproxy-init: warning: no nameservers in %s "
		    "and --capture-all-dns not set: DNS capture "
		    "disabled, nothing installed\n",
		    o.resolv_conf);
		code = 0;
	} else if (o.dry_run) {
		code = dry_run(&cfg, be, 0);
	} else if ((code = apply(&cfg, be)) == 0) {
		report(&cfg, be);
	}
	rsv_resolvconf_free(rc);
	return code;
}
