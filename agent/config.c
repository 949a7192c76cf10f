/*
 * config.c: command line and environment to struct agent_config
 * (SPEC §0.1).  A flag wins over its environment variable.  Usage errors
 * come back as -EINVAL with a message naming the flag; main() exits 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "nds/nds.h"

enum {
	OPT_LISTEN = 256,
	OPT_TABLE,
	OPT_NAMESPACE,
	OPT_DOMAIN,
	OPT_RESOLV_CONF,
	OPT_TTL,
	OPT_LOG_LEVEL,
	OPT_LOG_FORMAT,
	OPT_TCP_MAX,
	OPT_UPSTREAM,
	OPT_FWD_TIMEOUT,
	OPT_FWD_ATTEMPTS,
	OPT_FWD_PARALLEL,
	OPT_MAX_FORWARDS,
	OPT_HELP,
	OPT_VERSION,
	OPT_ADMIN,
	OPT_DUMP_TABLE,
	OPT_JSON,
	OPT_LOG_QUERIES,
	OPT_XDS,
	OPT_XDS_PLAINTEXT,
	OPT_XDS_ROOT_CERT,
	OPT_XDS_TOKEN,
	OPT_XDS_SNI,
	OPT_NODE_ID,
	OPT_CLUSTER_ID,
	OPT_SNAPSHOT,
	OPT_FWD_BEFORE_SYNC,
	OPT_CACHE_SIZE,
	OPT_CACHE_BYTES,
	OPT_CACHE_MAX_TTL,
	OPT_CACHE_MAX_NEG_TTL,
	OPT_CACHE_MAX_STALE,
	OPT_STALE_TIMEOUT,
};

static const struct option config_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"table", required_argument, NULL, OPT_TABLE},
    {"namespace", required_argument, NULL, OPT_NAMESPACE},
    {"domain", required_argument, NULL, OPT_DOMAIN},
    {"resolv-conf", required_argument, NULL, OPT_RESOLV_CONF},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"max-tcp-connections", required_argument, NULL, OPT_TCP_MAX},
    {"upstream", required_argument, NULL, OPT_UPSTREAM},
    {"forward-timeout", required_argument, NULL, OPT_FWD_TIMEOUT},
    {"forward-attempts", required_argument, NULL, OPT_FWD_ATTEMPTS},
    {"forward-parallel", no_argument, NULL, OPT_FWD_PARALLEL},
    {"max-forwards", required_argument, NULL, OPT_MAX_FORWARDS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {"admin", required_argument, NULL, OPT_ADMIN},
    {"dump-table", no_argument, NULL, OPT_DUMP_TABLE},
    {"json", no_argument, NULL, OPT_JSON},
    {"log-queries", no_argument, NULL, OPT_LOG_QUERIES},
    {"xds", required_argument, NULL, OPT_XDS},
    {"xds-plaintext", no_argument, NULL, OPT_XDS_PLAINTEXT},
    {"xds-root-cert", required_argument, NULL, OPT_XDS_ROOT_CERT},
    {"xds-token", required_argument, NULL, OPT_XDS_TOKEN},
    {"xds-sni", required_argument, NULL, OPT_XDS_SNI},
    {"node-id", required_argument, NULL, OPT_NODE_ID},
    {"cluster-id", required_argument, NULL, OPT_CLUSTER_ID},
    {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
    {"forward-before-sync", no_argument, NULL, OPT_FWD_BEFORE_SYNC},
    {"cache-size", required_argument, NULL, OPT_CACHE_SIZE},
    {"cache-max-bytes", required_argument, NULL, OPT_CACHE_BYTES},
    {"cache-max-ttl", required_argument, NULL, OPT_CACHE_MAX_TTL},
    {"cache-max-negative-ttl", required_argument, NULL, OPT_CACHE_MAX_NEG_TTL},
    {"cache-max-stale", required_argument, NULL, OPT_CACHE_MAX_STALE},
    {"stale-answer-client-timeout", required_argument, NULL, OPT_STALE_TIMEOUT},
    {NULL, 0, NULL, 0},
};

void
agent_usage(FILE *out)
{
	static const char *const lines[] = {
	    "Usage: dnsproxy [OPTIONS]",
	    "",
	    "Per-pod DNS proxy: answers A/AAAA for mesh names from a",
	    "NameTable and forwards every other query to the upstreams.",
	    "",
	    "  --listen ADDR          UDP+TCP listen address, repeatable:",
	    "                         IP:PORT, [IPv6]:PORT, or localhost:PORT",
	    "                         for both families (env DNS_PROXY_ADDR,",
	    "                         comma-separated; default 127.0.0.1:15053",
	    "                         and [::1]:15053)",
	    "  --table FILE           NameTable, proto3 JSON or protobuf;",
	    "                         re-read on SIGHUP (a bad file is logged",
	    "                         and the old table kept)",
	    "  --xds HOST:PORT        receive the table from istiod over ADS",
	    "                         (SPEC 5); TLS unless --xds-plaintext",
	    "  --xds-plaintext        h2c with prior knowledge (port 15010",
	    "                         style), no token",
	    "  --xds-root-cert FILE   CA for istiod's certificate, or SYSTEM",
	    "                         (env XDS_ROOT_CA; default",
	    "                         " AGENT_XDS_ROOT_CERT ")",
	    "  --xds-token FILE       Bearer token, re-read per connection",
	    "                         (default " AGENT_XDS_TOKEN ";",
	    "                         no header when absent or empty)",
	    "  --xds-sni NAME         TLS server name (default: the --xds",
	    "                         host; " AGENT_XDS_LOCAL_SNI,
	    "                         for localhost; none for an IP, whose",
	    "                         IP SAN is checked)",
	    "  --node-id ID           xDS node id (default "
	    "sidecar~$INSTANCE_IP",
	    "                         ~$POD_NAME.NS~NS.svc.cluster.local)",
	    "  --cluster-id ID        ClusterID header and metadata (env",
	    "                         CLUSTER_ID; default Kubernetes)",
	    "  --snapshot FILE        keep the last accepted table there and",
	    "                         serve it at start (protobuf)",
	    "  --forward-before-sync  until a table is loaded, forward every",
	    "                         query instead of answering SERVFAIL",
	    "  --namespace NS         the pod's namespace (env POD_NAMESPACE);",
	    "                         unset: FQDNs only, no short names",
	    "  --domain D             proxy domain (default",
	    "                         NS.svc.cluster.local)",
	    "  --resolv-conf FILE     nameservers and search list (default",
	    "                         /etc/resolv.conf)",
	    "  --upstream IP[:PORT]   upstream server, repeatable; replaces",
	    "                         the resolv.conf nameservers",
	    "  --forward-timeout DUR  per attempt, e.g. 500ms, 2s (env",
	    "                         DNS_FORWARD_TIMEOUT; default 2s)",
	    "  --forward-attempts N   attempts per query in total (default 0:",
	    "                         twice the number of servers)",
	    "  --forward-parallel     ask every server at once (env",
	    "                         DNS_FORWARD_PARALLEL=true)",
	    "  --max-forwards N       forwards in flight; beyond, SERVFAIL",
	    "                         (default 4096)",
	    "  --cache-size N         forwarded answers cached (default 10000;",
	    "                         0 turns the cache off, and with it",
	    "                         coalescing, serve-stale and prefetch)",
	    "  --cache-max-bytes N    memory the cache may hold, in bytes",
	    "                         (default 16777216)",
	    "  --cache-max-ttl SECONDS",
	    "                         longest a positive answer is cached",
	    "                         (default 300)",
	    "  --cache-max-negative-ttl SECONDS",
	    "                         longest an NXDOMAIN/NODATA answer is",
	    "                         cached (default 30; 0: not cached)",
	    "  --cache-max-stale DUR  how long past expiry an answer may",
	    "                         still be served when no upstream",
	    "                         answers (default 1h; 0: never)",
	    "  --stale-answer-client-timeout DUR",
	    "                         how long a client waits for the",
	    "                         upstreams before it gets the stale",
	    "                         answer (default 1.8s; 0: at once)",
	    "  --ttl SECONDS          TTL of local answers (default 30)",
	    "  --max-tcp-connections N",
	    "                         concurrent TCP clients; more are closed",
	    "                         at accept (default 1024)",
	    "  --log-level LEVEL      debug, info, warn or error (default "
	    "info)",
	    "  --log-format FORMAT    text or json (default text)",
	    "  --log-queries          one log line per query: client, name,",
	    "                         type, rcode, source, latency",
	    "  --admin ADDR           admin HTTP address, IP:PORT or",
	    "                         [IPv6]:PORT, or off (default",
	    "                         " AGENT_ADMIN_DEFAULT ")",
	    "  --dump-table [NAME]    print the running proxy's table (of",
	    "                         the agent at --admin; with --table FILE",
	    "                         that file, expanded offline), or only",
	    "                         NAME's records",
	    "  --json                 with --dump-table: the raw JSON",
	    "  --help                 this text",
	    "  --version              print the version",
	    "",
	    "Until a table is loaded every query gets SERVFAIL (see",
	    "--forward-before-sync).  xDS node metadata: every ISTIO_META_K",
	    "variable as K, plus DNS_CAPTURE, NAMESPACE, CLUSTER_ID and",
	    "INSTANCE_IPS; XDS_HEADER_N=V adds the request header N.",
	    "SIGHUP reloads --table and empties the cache; SIGTERM/SIGINT",
	    "stop (exit 0).",
	    "Exit codes: 0 ok, 1 runtime or file error, 2 usage error.",
	};
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		fprintf(out, "%s\n", lines[i]);
}

static int config_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
config_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Decimal 0..INT32_MAX (TTLs, counts). */
static int
config_uint(const char *s, uint32_t *ttl)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > INT32_MAX)
		return -EINVAL;
	*ttl = (uint32_t)v;
	return 0;
}

/* A Go duration up to max_ms; "0" (any unit) only when zero_ok. */
static int
config_duration(const char *s, double max_ms, int zero_ok, uint32_t *ms)
{
	static const struct {
		const char *unit;
		double ms;
	} units[] = {{"ns", 1e-6}, {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ms", 1},
	    {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}};
	double total = 0;
	size_t i;

	if (*s == '\0')
		return -EINVAL;
	if (zero_ok && strcmp(s, "0") == 0) { /* Go: "0" needs no unit */
		*ms = 0;
		return 0;
	}
	while (*s != '\0') {
		const char *end = s;
		double v = 0, scale = 1;
		int digits = 0;

		/* Go's syntax: [0-9]*(.[0-9]*)? then a unit; no sign, no
		 * exponent (strtod would take "1e3" and "0x10"). */
		for (; *end >= '0' && *end <= '9'; end++, digits++)
			v = v * 10 + (*end - '0');
		if (*end == '.')
			for (end++; *end >= '0' && *end <= '9'; end++, digits++)
				v += (*end - '0') * (scale /= 10);
		if (digits == 0)
			return -EINVAL;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].unit);

			/* The table lists "ms" before "m" and "s". */
			if (strncmp(end, units[i].unit, n) == 0)
				break;
		}
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL; /* a unit is required */
		total += v * units[i].ms;
		s = end + strlen(units[i].unit);
	}
	if (total < 0 || (total == 0 && !zero_ok) || total > max_ms)
		return -EINVAL;
	*ms = total == 0 ? 0 : total < 1 ? 1 : (uint32_t)(total + 0.999);
	return 0;
}

int
agent_parse_duration(const char *s, uint32_t *ms)
{
	return config_duration(s, 3600e3, 0, ms);
}

/* --upstream IP[:PORT] / [IPv6][:PORT] / bare IPv6 (port 53). */
static int
config_upstream(struct agent_config *cfg, const char *text)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *portp = NULL, *colon;
	struct rsv_upstream *u;
	size_t hlen;
	uint32_t port = 53;

	if (cfg->nupstreams >= AGENT_UPSTREAM_MAX)
		return -E2BIG;
	u = &cfg->upstreams[cfg->nupstreams];
	memset(u, 0, sizeof(*u));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != ':'))
			return -EINVAL;
		hlen = (size_t)(close - text - 1);
		if (close[1] == ':')
			portp = close + 2;
		text++;
	} else if ((colon = strchr(text, ':')) != NULL &&
	           strchr(colon + 1, ':') == NULL) {
		hlen = (size_t)(colon - text); /* IPv4:PORT */
		portp = colon + 1;
	} else
		hlen = strlen(text); /* IPv4 or bare IPv6 */
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (portp != NULL &&
	    (config_uint(portp, &port) != 0 || port == 0 || port > 65535))
		return -EINVAL;
	if (inet_pton(AF_INET, host, u->addr) == 1)
		u->family = AF_INET;
	else if (inet_pton(AF_INET6, host, u->addr) == 1)
		u->family = AF_INET6;
	else
		return -EINVAL;
	u->port = (uint16_t)port;
	cfg->nupstreams++;
	return 0;
}

/* "true"/"1" -> 1, "false"/"0"/"" -> 0. */
static int
config_bool(const char *s, int *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = 1;
	else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0 || *s == '\0')
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

/* "PORT" -> 1..65535. */
static int
config_port(const char *s, uint16_t *port)
{
	uint32_t v;

	if (config_uint(s, &v) != 0 || v == 0 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* a = host (an IP literal of family) and port. 0 or -EINVAL. */
static int
config_fill(struct agent_addr *a, int family, const char *host, uint16_t port)
{
	int n;

	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		a->len = sizeof(*sin);
		n = snprintf(a->text, sizeof(a->text), "%s:%u", host, port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		a->len = sizeof(*sin6);
		n = snprintf(a->text, sizeof(a->text), "[%s]:%u", host, port);
	}
	return (n < 0 || (size_t)n >= sizeof(a->text)) ? -EINVAL : 0;
}

static int
config_push(struct agent_config *cfg, int family, const char *host,
    uint16_t port, int optional)
{
	struct agent_addr *a;

	if (cfg->nlisten >= AGENT_LISTEN_MAX)
		return -E2BIG;
	a = &cfg->listen[cfg->nlisten];
	if (config_fill(a, family, host, port) != 0)
		return -EINVAL;
	a->optional = optional;
	cfg->nlisten++;
	return 0;
}

int
agent_parse_addr(const char *text, struct agent_addr *a)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	uint16_t port;
	size_t hlen;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (close == NULL || close[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close - text - 1);
		if (hlen == 0 || hlen >= sizeof(host) ||
		    config_port(close + 2, &port) != 0)
			return -EINVAL;
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		return config_fill(a, AF_INET6, host, port);
	}
	if ((colon = strrchr(text, ':')) == NULL ||
	    memchr(text, ':', (size_t)(colon - text)) != NULL)
		return -EINVAL;
	hlen = (size_t)(colon - text);
	if (hlen == 0 || hlen >= sizeof(host) ||
	    config_port(colon + 1, &port) != 0)
		return -EINVAL;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	return config_fill(a, AF_INET, host, port);
}

int
agent_config_add_listen(struct agent_config *cfg, const char *text, char *err,
    size_t errlen)
{
	struct agent_addr *a;
	int rc;

	if (cfg->nlisten >= AGENT_LISTEN_MAX)
		return config_fail(err, errlen,
		    "--listen %s: too many listen addresses (max %d)", text,
		    AGENT_LISTEN_MAX);
	a = &cfg->listen[cfg->nlisten];
	if (agent_parse_addr(text, a) != 0)
		return config_fail(err, errlen,
		    "--listen %s: expected IP:PORT, [IPv6]:PORT or "
		    "localhost:PORT",
		    text);
	cfg->nlisten++;
	/* localhost:P is both families; the IPv6 half is optional. */
	if (strncmp(text, "localhost:", 10) == 0 &&
	    (rc = config_push(cfg, AF_INET6, "::1",
	         ntohs(((struct sockaddr_in *)&a->ss)->sin_port), 1)) != 0)
		return config_fail(err, errlen,
		    "--listen %s: too many listen addresses (max %d)", text,
		    AGENT_LISTEN_MAX);
	return 0;
}

/* DNS_PROXY_ADDR: a comma-separated list of listen addresses. */
static int
config_listen_env(struct agent_config *cfg, const char *list, char *err,
    size_t errlen)
{
	char buf[1024], *save = NULL, *tok;
	int n = snprintf(buf, sizeof(buf), "%s", list);

	if (n < 0 || (size_t)n >= sizeof(buf))
		return config_fail(err, errlen, "DNS_PROXY_ADDR: %s",
		    "too long");
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		if (agent_config_add_listen(cfg, tok, err, errlen) != 0) {
			char inner[256];

			snprintf(inner, sizeof(inner), "%s", err);
			return config_fail(err, errlen, "DNS_PROXY_ADDR: %s",
			    inner);
		}
	}
	return 0;
}

static int
config_level(const char *s, enum agent_log_level *lvl)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0) {
			*lvl = (enum agent_log_level)i;
			return 0;
		}
	return -EINVAL;
}

static void
config_defaults(struct agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = AGENT_RUN;
	cfg->resolv_conf = "/etc/resolv.conf";
	cfg->ttl = 30;
	cfg->tcp_max_conns = AGENT_TCP_MAX_CONNS;
	cfg->fwd_timeout_ms = RSV_TIMEOUT_MS_DEFAULT;
	cfg->max_forwards = RSV_MAX_FORWARDS_DEFAULT;
	cfg->cache_size = RSV_CACHE_SIZE_DEFAULT;
	cfg->cache_bytes = RSV_CACHE_BYTES_DEFAULT;
	cfg->cache_max_ttl = RSV_CACHE_MAX_TTL_DEFAULT;
	cfg->cache_max_neg_ttl = RSV_CACHE_MAX_NEG_TTL_DEFAULT;
	cfg->cache_max_stale = RSV_CACHE_MAX_STALE_DEFAULT;
	cfg->stale_timeout_ms = RSV_STALE_TIMEOUT_MS_DEFAULT;
	cfg->log_level = LOG_LVL_INFO;
	cfg->log_format = LOG_FMT_TEXT;
	cfg->admin = AGENT_ADMIN_DEFAULT;
	cfg->xds_root_cert = NULL; /* flag, XDS_ROOT_CA, default */
	cfg->xds_token = AGENT_XDS_TOKEN;
}

/* The cache's flags. */
static int
config_cache_flag(struct agent_config *cfg, int opt, const char *arg, char *err,
    size_t errlen)
{
	uint32_t v;

	switch (opt) {
	case OPT_CACHE_SIZE:
		if (config_uint(arg, &cfg->cache_size) != 0 ||
		    cfg->cache_size > AGENT_CACHE_SIZE_MAX)
			return config_fail(err, errlen,
			    "--cache-size %s: expected 0..%d", arg,
			    AGENT_CACHE_SIZE_MAX);
		return 0;
	case OPT_CACHE_BYTES:
		if (config_uint(arg, &cfg->cache_bytes) != 0 ||
		    cfg->cache_bytes < AGENT_CACHE_BYTES_MIN)
			return config_fail(err, errlen,
			    "--cache-max-bytes %s: expected %d..2147483647",
			    arg, AGENT_CACHE_BYTES_MIN);
		return 0;
	case OPT_CACHE_MAX_TTL:
	case OPT_CACHE_MAX_NEG_TTL:
		if (config_uint(arg, &v) != 0)
			return config_fail(err, errlen,
			    "--%s %s: expected seconds (0..2147483647)",
			    opt == OPT_CACHE_MAX_TTL ? "cache-max-ttl"
			                             : "cache-max-negative-ttl",
			    arg);
		*(opt == OPT_CACHE_MAX_TTL ? &cfg->cache_max_ttl
		                           : &cfg->cache_max_neg_ttl) = v;
		return 0;
	case OPT_CACHE_MAX_STALE:
		if (config_duration(arg, AGENT_MAX_STALE_MAX_MS, 1, &v) != 0)
			return config_fail(err, errlen,
			    "--cache-max-stale %s: expected a duration such as "
			    "1h or 30m (0..168h)",
			    arg);
		cfg->cache_max_stale = v / 1000 + (v % 1000 != 0);
		return 0;
	case OPT_STALE_TIMEOUT:
		if (config_duration(arg, 3600e3, 1, &cfg->stale_timeout_ms) !=
		    0)
			return config_fail(err, errlen,
			    "--stale-answer-client-timeout %s: expected a "
			    "duration such as 1.8s or 500ms (0..1h)",
			    arg);
		return 0;
	}
	return config_fail(err, errlen, "internal: unhandled option %d", opt);
}

/* One flag; listen addresses are collected by the caller. */
static int
config_flag(struct agent_config *cfg, int opt, const char *arg, char *err,
    size_t errlen)
{
	switch (opt) {
	case OPT_TABLE:
		cfg->table_path = arg;
		return 0;
	case OPT_NAMESPACE:
		cfg->ns = arg;
		return 0;
	case OPT_DOMAIN:
		cfg->domain = arg;
		return 0;
	case OPT_RESOLV_CONF:
		cfg->resolv_conf = arg;
		return 0;
	case OPT_TTL:
		if (config_uint(arg, &cfg->ttl) != 0)
			return config_fail(err, errlen,
			    "--ttl %s: expected seconds (0..2147483647)", arg);
		return 0;
	case OPT_TCP_MAX:
		if (config_uint(arg, &cfg->tcp_max_conns) != 0 ||
		    cfg->tcp_max_conns == 0 || cfg->tcp_max_conns > 1000000)
			return config_fail(err, errlen,
			    "--max-tcp-connections %s: expected 1..1000000",
			    arg);
		return 0;
	case OPT_UPSTREAM:
		if (config_upstream(cfg, arg) != 0)
			return config_fail(err, errlen,
			    "--upstream %s: expected IP, IP:PORT or "
			    "[IPv6]:PORT (at most %d)",
			    arg, AGENT_UPSTREAM_MAX);
		return 0;
	case OPT_FWD_TIMEOUT:
		if (agent_parse_duration(arg, &cfg->fwd_timeout_ms) != 0)
			return config_fail(err, errlen,
			    "--forward-timeout %s: expected a duration such "
			    "as 500ms or 2s (up to 1h)",
			    arg);
		cfg->fwd_timeout_set = 1;
		return 0;
	case OPT_FWD_ATTEMPTS:
		if (config_uint(arg, &cfg->fwd_attempts) != 0 ||
		    cfg->fwd_attempts > AGENT_ATTEMPTS_MAX)
			return config_fail(err, errlen,
			    "--forward-attempts %s: expected 0..%d", arg,
			    AGENT_ATTEMPTS_MAX);
		return 0;
	case OPT_FWD_PARALLEL:
		cfg->fwd_parallel = 1;
		cfg->fwd_parallel_set = 1;
		return 0;
	case OPT_MAX_FORWARDS:
		if (config_uint(arg, &cfg->max_forwards) != 0 ||
		    cfg->max_forwards == 0 || cfg->max_forwards > 1000000)
			return config_fail(err, errlen,
			    "--max-forwards %s: expected 1..1000000", arg);
		return 0;
	case OPT_CACHE_SIZE:
	case OPT_CACHE_BYTES:
	case OPT_CACHE_MAX_TTL:
	case OPT_CACHE_MAX_NEG_TTL:
	case OPT_CACHE_MAX_STALE:
	case OPT_STALE_TIMEOUT:
		return config_cache_flag(cfg, opt, arg, err, errlen);
	case OPT_LOG_LEVEL:
		if (config_level(arg, &cfg->log_level) != 0)
			return config_fail(err, errlen,
			    "--log-level %s: expected debug, info, warn or "
			    "error",
			    arg);
		return 0;
	case OPT_LOG_FORMAT:
		if (strcmp(arg, "text") == 0)
			cfg->log_format = LOG_FMT_TEXT;
		else if (strcmp(arg, "json") == 0)
			cfg->log_format = LOG_FMT_JSON;
		else
			return config_fail(err, errlen,
			    "--log-format %s: expected text or json", arg);
		return 0;
	case OPT_HELP:
		cfg->mode = AGENT_HELP;
		return 0;
	case OPT_VERSION:
		cfg->mode = AGENT_VERSION;
		return 0;
	case OPT_ADMIN:
		if (agent_admin_check_addr(arg) != 0)
			return config_fail(err, errlen,
			    "--admin %s: expected IP:PORT, [IPv6]:PORT or off",
			    arg);
		cfg->admin = arg;
		return 0;
	case OPT_DUMP_TABLE:
		cfg->mode = AGENT_DUMP;
		return 0;
	case OPT_LOG_QUERIES:
		cfg->log_queries = 1;
		return 0;
	case OPT_JSON:
		cfg->json = 1;
		return 0;
	case OPT_XDS:
		if (nds_xds_addr_parse(arg, NULL, 0, NULL) != 0)
			return config_fail(err, errlen,
			    "--xds %s: expected HOST:PORT, IPv4:PORT or "
			    "[IPv6]:PORT",
			    arg);
		cfg->xds = arg;
		return 0;
	case OPT_XDS_PLAINTEXT:
		cfg->xds_plaintext = 1;
		return 0;
	case OPT_XDS_ROOT_CERT:
		cfg->xds_root_cert = arg;
		return 0;
	case OPT_XDS_TOKEN:
		cfg->xds_token = arg;
		return 0;
	case OPT_XDS_SNI:
		cfg->xds_sni = arg;
		return 0;
	case OPT_NODE_ID:
		cfg->node_id = arg;
		return 0;
	case OPT_CLUSTER_ID:
		if (*arg == '\0')
			return config_fail(err, errlen,
			    "--cluster-id: must not be empty");
		cfg->cluster_id = arg;
		return 0;
	case OPT_SNAPSHOT:
		cfg->snapshot_path = arg;
		return 0;
	case OPT_FWD_BEFORE_SYNC:
		cfg->forward_before_sync = 1;
		return 0;
	}
	return config_fail(err, errlen, "internal: unhandled option %d", opt);
}

/* Environment fallbacks and derived defaults, after the flags. */
static int
config_finish(struct agent_config *cfg, int listen_flag, agent_getenv_fn env,
    char *err, size_t errlen)
{
	const char *v;
	int n, rc;

	if (!listen_flag) {
		if ((v = env("DNS_PROXY_ADDR")) != NULL && *v != '\0') {
			if ((rc = config_listen_env(cfg, v, err, errlen)) != 0)
				return rc;
		}
		if (cfg->nlisten == 0) {
			config_push(cfg, AF_INET, "127.0.0.1", AGENT_DNS_PORT,
			    0);
			config_push(cfg, AF_INET6, "::1", AGENT_DNS_PORT, 1);
		}
	}
	if (!cfg->fwd_timeout_set && (v = env("DNS_FORWARD_TIMEOUT")) != NULL &&
	    *v != '\0' && agent_parse_duration(v, &cfg->fwd_timeout_ms) != 0)
		return config_fail(err, errlen,
		    "DNS_FORWARD_TIMEOUT=%s: expected a duration such as 2s",
		    v);
	if (!cfg->fwd_parallel_set &&
	    (v = env("DNS_FORWARD_PARALLEL")) != NULL &&
	    config_bool(v, &cfg->fwd_parallel) != 0)
		return config_fail(err, errlen,
		    "DNS_FORWARD_PARALLEL=%s: expected true or false", v);
	if (cfg->ns == NULL && (v = env("POD_NAMESPACE")) != NULL)
		cfg->ns = v;
	if (cfg->cluster_id == NULL && (v = env("CLUSTER_ID")) != NULL &&
	    *v != '\0')
		cfg->cluster_id = v;
	if (cfg->cluster_id == NULL)
		cfg->cluster_id = "Kubernetes";
	/* Istio's XDS_ROOT_CA: a PEM file, or SYSTEM for the system store. */
	if (cfg->xds_root_cert == NULL && (v = env("XDS_ROOT_CA")) != NULL &&
	    *v != '\0')
		cfg->xds_root_cert = v;
	if (cfg->xds_root_cert == NULL)
		cfg->xds_root_cert = AGENT_XDS_ROOT_CERT;
	if (cfg->ns != NULL && *cfg->ns == '\0')
		cfg->ns = NULL;
	if (cfg->domain == NULL && cfg->ns != NULL) {
		n = snprintf(cfg->domain_buf, sizeof(cfg->domain_buf),
		    "%s.svc.cluster.local", cfg->ns);
		if (n < 0 || (size_t)n >= sizeof(cfg->domain_buf))
			return config_fail(err, errlen,
			    "--namespace %s: too long", cfg->ns);
		cfg->domain = cfg->domain_buf;
	}
	return 0;
}

int
agent_config_parse(int argc, char **argv, agent_getenv_fn env,
    struct agent_config *cfg, char *err, size_t errlen)
{
	int opt, rc, listen_flag = 0;

	config_defaults(cfg);
	optind = 0; /* GNU: full re-initialisation, so tests can call twice */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", config_options, NULL)) !=
	       -1) {
		if (opt == '?')
			return config_fail(err, errlen,
			    "unknown option %s (see --help)", argv[optind - 1]);
		if (opt == ':')
			return config_fail(err, errlen,
			    "option %s needs a value", argv[optind - 1]);
		if (opt == OPT_LISTEN) {
			listen_flag = 1;
			rc = agent_config_add_listen(cfg, optarg, err, errlen);
		} else
			rc = config_flag(cfg, opt, optarg, err, errlen);
		if (rc != 0)
			return rc;
	}
	/* One positional argument: --dump-table's NAME. */
	if (optind < argc && cfg->mode == AGENT_DUMP)
		cfg->dump_filter = argv[optind++];
	if (optind < argc)
		return config_fail(err, errlen,
		    "unexpected argument \"%s\" (see --help)", argv[optind]);
	if (cfg->json && cfg->mode != AGENT_DUMP)
		return config_fail(err, errlen,
		    "--json goes with --dump-table (see --help)");
	return config_finish(cfg, listen_flag, env, err, errlen);
}

/* The value of NAME in envp, or NULL. */
static const char *
env_lookup(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp != NULL && *envp != NULL; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* Copies len bytes of s into out->buf, lower-cased if asked. */
static const char *
env_keep(struct agent_xds_env *out, const char *s, size_t len, int lower)
{
	char *d;

	if (len + 1 > sizeof(out->buf) - out->used)
		return NULL;
	d = out->buf + out->used;
	for (size_t i = 0; i < len; i++)
		d[i] = lower && s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] + 32)
		                                           : s[i];
	d[len] = '\0';
	out->used += len + 1;
	return d;
}

/* Index of metadata key k, or -1. */
static int
env_meta_find(const struct agent_xds_env *out, const char *k)
{
	for (size_t i = 0; i < out->nmeta; i++)
		if (strcmp(out->meta_keys[i], k) == 0)
			return (int)i;
	return -1;
}

static int
env_meta_set(struct agent_xds_env *out, const char *k, const char *v,
    int replace)
{
	int i = env_meta_find(out, k);

	if (i >= 0) {
		if (replace)
			out->meta_vals[i] = v;
		return 0;
	}
	if (out->nmeta == AGENT_META_MAX)
		return -E2BIG;
	out->meta_keys[out->nmeta] = k;
	out->meta_vals[out->nmeta++] = v;
	return 0;
}

int
agent_xds_env_build(const struct agent_config *cfg, char *const *envp,
    struct agent_xds_env *out, char *err, size_t errlen)
{
	static const char meta[] = "ISTIO_META_", hdr[] = "XDS_HEADER_";
	const char *ns = cfg->ns ? cfg->ns : "", *v, *eq, *k;
	char *const *e;
	int n;

	memset(out, 0, sizeof(*out));
	for (e = envp; e != NULL && *e != NULL; e++) {
		int is_meta = strncmp(*e, meta, sizeof(meta) - 1) == 0;
		int is_hdr = strncmp(*e, hdr, sizeof(hdr) - 1) == 0;
		size_t skip = is_meta ? sizeof(meta) - 1 : sizeof(hdr) - 1;

		if ((!is_meta && !is_hdr) || (eq = strchr(*e, '=')) == NULL ||
		    eq == *e + skip)
			continue;
		k = env_keep(out, *e + skip, (size_t)(eq - *e) - skip, is_hdr);
		if (k == NULL)
			return config_fail(err, errlen,
			    "environment: ISTIO_META_/XDS_HEADER_ names "
			    "exceed %zu bytes",
			    sizeof(out->buf));
		if (is_meta) {
			if (env_meta_set(out, k, eq + 1, 1) != 0)
				return config_fail(err, errlen,
				    "environment: more than %d ISTIO_META_ "
				    "variables",
				    AGENT_META_MAX);
		} else {
			if (out->nhdrs == AGENT_HDR_MAX)
				return config_fail(err, errlen,
				    "environment: more than %d XDS_HEADER_ "
				    "variables",
				    AGENT_HDR_MAX);
			out->hdr_names[out->nhdrs] = k;
			out->hdr_vals[out->nhdrs++] = eq + 1;
		}
	}
	if ((v = env_lookup(envp, "INSTANCE_IPS")) == NULL || *v == '\0')
		v = env_lookup(envp, "INSTANCE_IP");
	if (env_meta_set(out, "DNS_CAPTURE", "true", 0) != 0 ||
	    env_meta_set(out, "NAMESPACE", ns, 0) != 0 ||
	    env_meta_set(out, "CLUSTER_ID", cfg->cluster_id, 1) != 0 ||
	    env_meta_set(out, "INSTANCE_IPS", v ? v : "", 0) != 0)
		return config_fail(err, errlen,
		    "environment: more than %d ISTIO_META_ variables",
		    AGENT_META_MAX - 4);
	if (cfg->node_id != NULL)
		n = snprintf(out->node_id, sizeof(out->node_id), "%s",
		    cfg->node_id);
	else {
		const char *ip = env_lookup(envp, "INSTANCE_IP");
		const char *pod = env_lookup(envp, "POD_NAME");

		n = snprintf(out->node_id, sizeof(out->node_id),
		    "sidecar~%s~%s.%s~%s.svc.cluster.local", ip ? ip : "",
		    pod ? pod : "", ns, ns);
	}
	if (n < 0 || (size_t)n >= sizeof(out->node_id))
		return config_fail(err, errlen, "--node-id: longer than %zu",
		    sizeof(out->node_id) - 1);
	return 0;
}
