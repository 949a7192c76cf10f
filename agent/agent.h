/*
 * agent.h: private to agent/.  The dnsproxy process: configuration from
 * flags and environment, logging, listeners, and the process context.
 *
 *	agent_config_parse(argc, argv, getenv, &cfg, err, sizeof(err));
 *	agent_log_setup(cfg.log_level, cfg.log_format);
 *	agent_listeners_open(ctx, &cfg) ... event_base_dispatch(base);
 */
#ifndef DNSPROXY_AGENT_H
#define DNSPROXY_AGENT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "resolver/resolver.h"

struct event_base;
struct nds_table;
struct rsv;

#define AGENT_LISTEN_MAX 16
#define AGENT_UPSTREAM_MAX 32
#define AGENT_ATTEMPTS_MAX 100
#define AGENT_DNS_PORT 15053
#define AGENT_ADMIN_DEFAULT "127.0.0.1:15020"
#define AGENT_XDS_ROOT_CERT "./var/run/secrets/istio/root-cert.pem"
#define AGENT_XDS_TOKEN "./var/run/secrets/tokens/istio-token"
#define AGENT_XDS_LOCAL_SNI "istiod.istio-system.svc"

/* Bounds of the cache flags. */
#define AGENT_CACHE_SIZE_MAX 1000000          /* --cache-size */
#define AGENT_CACHE_BYTES_MIN 4096            /* --cache-max-bytes */
#define AGENT_MAX_STALE_MAX_MS (168 * 3600e3) /* --cache-max-stale: 7 d */

/* TCP limits (D10). */
#define AGENT_TCP_MAX_CONNS 1024
#define AGENT_TCP_MAX_QUERIES 128
#define AGENT_TCP_IDLE_SEC 8

enum agent_log_level {
	LOG_LVL_DEBUG,
	LOG_LVL_INFO,
	LOG_LVL_WARN,
	LOG_LVL_ERROR
};
enum agent_log_format { LOG_FMT_TEXT, LOG_FMT_JSON };
enum agent_mode { AGENT_RUN, AGENT_HELP, AGENT_VERSION, AGENT_DUMP };

/* One listen address; UDP and TCP are both opened on it. */
struct agent_addr {
	struct sockaddr_storage ss; /* IPv4 or IPv6 address and port */
	socklen_t len;              /* bytes used in ss */
	int optional;               /* skip with a warning if the family is
	                             * unavailable (::1 of a default or
	                             * localhost:P) */
	char text[64];              /* "127.0.0.1:15053", "[::1]:15053" */
};

struct agent_config {
	enum agent_mode mode;
	struct agent_addr listen[AGENT_LISTEN_MAX];
	size_t nlisten;
	const char *table_path;  /* --table, or NULL */
	const char *ns;          /* --namespace / POD_NAMESPACE, or NULL */
	const char *domain;      /* --domain, or points at domain_buf */
	char domain_buf[256];    /* default "<ns>.svc.cluster.local" */
	const char *resolv_conf; /* --resolv-conf, default /etc/resolv.conf */
	uint32_t ttl;            /* --ttl, default 30 (D8) */
	uint32_t tcp_max_conns;  /* --max-tcp-connections, default 1024 */
	struct rsv_upstream upstreams[AGENT_UPSTREAM_MAX]; /* --upstream */
	size_t nupstreams;       /* 0: resolv.conf's nameservers */
	uint32_t fwd_timeout_ms; /* --forward-timeout, default 2000 */
	uint32_t fwd_attempts;   /* --forward-attempts, 0 = 2 x servers */
	int fwd_parallel;        /* --forward-parallel */
	int fwd_timeout_set;     /* the flag was given (beats the env) */
	int fwd_parallel_set;    /* the flag was given (beats the env) */
	uint32_t max_forwards;   /* --max-forwards, default 4096 */

	/* The forwarded-answer cache. */
	uint32_t cache_size;        /* --cache-size, entries; 0 = off */
	uint32_t cache_bytes;       /* --cache-max-bytes */
	uint32_t cache_max_ttl;     /* --cache-max-ttl, seconds */
	uint32_t cache_max_neg_ttl; /* --cache-max-negative-ttl, seconds */
	uint32_t cache_max_stale;   /* --cache-max-stale, seconds */
	uint32_t stale_timeout_ms;  /* --stale-answer-client-timeout */

	enum agent_log_level log_level;
	enum agent_log_format log_format;
	const char *admin;         /* --admin ADDR or "off"; default
	                            * AGENT_ADMIN_DEFAULT */
	int json;                  /* --json (--dump-table) */
	int log_queries;           /* --log-queries */
	const char *dump_filter;   /* --dump-table NAME, or NULL */
	const char *xds;           /* --xds HOST:PORT, or NULL */
	int xds_plaintext;         /* --xds-plaintext */
	const char *xds_root_cert; /* --xds-root-cert */
	const char *xds_token;     /* --xds-token */
	const char *xds_sni;       /* --xds-sni, or NULL */
	const char *node_id;       /* --node-id, or NULL for the default */
	const char *cluster_id;    /* --cluster-id / CLUSTER_ID / Kubernetes */
	const char *snapshot_path; /* --snapshot, or NULL */
	int forward_before_sync;   /* --forward-before-sync */
};

#define AGENT_META_MAX 128 /* node metadata keys */
#define AGENT_HDR_MAX 16   /* XDS_HEADER_* headers */

/* What the xDS client gets from the environment (SPEC §5). */
struct agent_xds_env {
	const char *meta_keys[AGENT_META_MAX]; /* node metadata */
	const char *meta_vals[AGENT_META_MAX];
	size_t nmeta;
	const char *hdr_names[AGENT_HDR_MAX]; /* lower-case */
	const char *hdr_vals[AGENT_HDR_MAX];
	size_t nhdrs;
	char node_id[1024]; /* --node-id or the sidecar~ default */
	char buf[16384];    /* the keys and names, copied out of envp */
	size_t used;        /* bytes of buf used */
};

/*
 * Node id, metadata and extra headers for xDS from cfg and envp (NAME=VALUE
 * strings, as environ): every ISTIO_META_<K> becomes metadata K; then
 * DNS_CAPTURE ("true"), NAMESPACE, CLUSTER_ID and INSTANCE_IPS are added
 * unless an ISTIO_META_ variable set them (CLUSTER_ID always follows
 * cfg->cluster_id); XDS_HEADER_<N>=V becomes header n: V.  Values point
 * into envp.  0, or -E2BIG with err naming what did not fit.
 */
int agent_xds_env_build(const struct agent_config *cfg, char *const *envp,
    struct agent_xds_env *out, char *err, size_t errlen);

typedef const char *(*agent_getenv_fn)(const char *name);

/*
 * Fills cfg from argv and the environment (a flag wins over its variable).
 * 0, or -EINVAL with a message naming the flag in err (usage error: the
 * caller exits 2).  Strings point into argv or the environment.
 */
int agent_config_parse(int argc, char **argv, agent_getenv_fn env,
    struct agent_config *cfg, char *err, size_t errlen);

/*
 * "IP:PORT", "[IPv6]:PORT" or "localhost:PORT" (127.0.0.1) into a socket
 * address.  0 or -EINVAL.
 */
int agent_parse_addr(const char *text, struct agent_addr *a);

/* Parses one listen address ("IP:PORT", "[IPv6]:PORT", "localhost:PORT")
 * and appends it (two entries for localhost) to cfg.  0 or -EINVAL. */
int agent_config_add_listen(struct agent_config *cfg, const char *text,
    char *err, size_t errlen);

/*
 * A Go duration ("500ms", "2s", "1m30s", "1.5s", "250us") in milliseconds,
 * rounded up, at least 1.  0 or -EINVAL (also for zero or negative).
 */
int agent_parse_duration(const char *s, uint32_t *ms);

/* Usage text (the --help output). */
void agent_usage(FILE *out);

/* Logging: to stderr, one line per event. */
void agent_log_setup(enum agent_log_level level, enum agent_log_format fmt);
void agent_log(enum agent_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A line with fields: JSON fields in --log-format json, key=value in text.
 * keys and vals have n entries each. */
void agent_log_fields(enum agent_log_level level, const char *msg,
    const char *const *keys, const char *const *vals, size_t n);

/* --log-queries: whether agent_on_reply() logs every reply. */
void agent_log_set_queries(int on);
int agent_log_queries(void);

/* Tests only: the clock of the warning/error rate limiter (NULL = real). */
void agent_log_set_clock(time_t (*now)(void));
#define log_debug(...) agent_log(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) agent_log(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) agent_log(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) agent_log(LOG_LVL_ERROR, __VA_ARGS__)

/*
 * The process's live state, owned by main.c; the listeners answer from
 * it and the admin surface (admin.c) reads it.
 */
struct agent_state {
	struct nds_table *table;           /* live table, or NULL (D7) */
	uint64_t table_loads;              /* tables accepted so far */
	char table_version[64];            /* "file-N", or the xDS version */
	time_t table_updated;              /* when the live one came, or 0 */
	uint64_t table_build_us;           /* its decode + compile time */
	uint64_t table_stall_us;           /* the longest of that in one go */
	struct rsv *rsv;                   /* answers and forwards queries */
	struct agent_listeners *listeners; /* DNS sockets */
	uint64_t xds_pushes, xds_acks, xds_nacks, xds_reconnects;
	int xds_connected;
};

/*
 * The admin HTTP server (SPEC §6) on addr ("IP:PORT", "[IPv6]:PORT"; NULL
 * or "off": none, *out = NULL).  st is borrowed.  0, or -errno with err
 * naming the address.
 */
struct agent_admin;
int agent_admin_open(struct event_base *base, const char *addr,
    const struct agent_state *st, struct agent_admin **out, char *err,
    size_t errlen);
/* The same server on fd, a listening socket of any family (the admin
 * fuzz target uses a Unix socket); fd is taken over, even on failure.
 * 0 or -ENOMEM. */
int agent_admin_open_fd(struct event_base *base, int fd,
    const struct agent_state *st, struct agent_admin **out);
void agent_admin_close(struct agent_admin *ad); /* NULL-safe */
/* 0 when addr is "off" or IP:PORT / [IPv6]:PORT, else -EINVAL. */
int agent_admin_check_addr(const char *addr);

/* What the listeners need from the process. */
struct agent_server {
	struct event_base *base;        /* the one loop */
	struct rsv *rsv;                /* answers queries */
	struct nds_table *const *table; /* the live table slot (may be NULL) */
};

struct agent_listeners;

/*
 * Opens UDP and TCP on every configured address.  A bind failure is an
 * error (-errno, err names the address); an optional ::1 that the host
 * cannot bind is skipped with a warning.
 */
int agent_listeners_open(const struct agent_server *srv,
    const struct agent_config *cfg, struct agent_listeners **out, char *err,
    size_t errlen);

/* Stops accepting and reading new queries; replies still owed go out (UDP
 * sockets stay open, TCP connections flush).  Returns what is still busy,
 * as agent_listeners_busy(). */
size_t agent_listeners_stop(struct agent_listeners *l);

/* TCP connections still open plus UDP queries awaiting their reply. */
size_t agent_listeners_busy(const struct agent_listeners *l);

/* NULL-safe; closes everything at once. */
void agent_listeners_close(struct agent_listeners *l);

/*
 * The resolver's reply hook: with --log-queries one info line per reply,
 * naming the client of the UDP request or TCP connection behind arg; and
 * always a (rate-limited) warning for malformed queries and SERVFAILs.
 */
void agent_on_reply(const struct rsv_reply_info *info, const uint8_t *reply,
    size_t len, void *arg);

/* Counters of the listeners (TCP connections open / rejected). */
struct agent_listen_stats {
	uint64_t tcp_open;
	uint64_t tcp_rejected;
	uint64_t udp_recv_errors;
	uint64_t udp_dropped; /* no reply context free */
};
const struct agent_listen_stats *
agent_listeners_stats(const struct agent_listeners *l);

/* Metadata shown with the table (/debug/table, --dump-table). */
struct agent_table_meta {
	const char *version; /* table version, "" when none */
	time_t updated;      /* when it was loaded, 0 = never */
	size_t entries;      /* NameTable entries */
};

/*
 * /debug/table (SPEC §6): {"version":"..","updated":"2026-11-26T12:00:00Z"
 * (null when never),"entries":N,"records":[{"name","type","ttl","data",
 * "origin"},..]}, one record per line, sorted by name then type; filter as
 * nds_table_foreach_record() (NULL = all).  t may be NULL (no records).
 * Returns a malloc'd NUL-terminated string (the caller frees it), or NULL
 * when out of memory.
 */
char *agent_table_json(const struct nds_table *t,
    const struct agent_table_meta *m, const char *filter);

/*
 * /debug/ndsz in Istio's shape: {"table":{key:{"ips","registry",
 * "shortname","namespace","altHosts"}}} in the proto3 JSON mapping (empty
 * fields and an empty table left out), keys sorted, plus an entry
 * {"ips": v4 then v6, "registry": "Kubernetes"} for every generated
 * address name that is not itself a key (CNAMEs are not listed).
 * malloc'd, or NULL when out of memory.
 */
char *agent_ndsz_json(const struct nds_table *t);

/*
 * --dump-table [NAME]: prints the expanded table of the agent at
 * cfg->admin, or with cfg->table_path of that file, built here with the
 * server's options.  Blocks (at most 3 s without an answer).  Returns the
 * exit code: 0, 1 (no agent, bad answer, bad file) or 2 (usage).
 */
int agent_dump(const struct agent_config *cfg);

#endif
