/*
 * resolver: turns a DNS query into a reply (SPEC §3, §4).
 *
 *	rsv_create(base, &cfg, &rsv);
 *	rsv_query(rsv, table, pkt, len, RSV_UDP, on_reply, conn);
 *	     on_reply(reply, rlen, conn) runs exactly once, possibly before
 *	     rsv_query() returns; rlen == 0 means "send nothing" (dropped).
 *	rsv_destroy(rsv);   pending queries get on_reply(NULL, 0, ...) first
 *
 * The reply bytes are borrowed for the duration of the callback.  The
 * query bytes are borrowed for the duration of rsv_query().  The table is
 * borrowed too; a query that has to wait (forwarding) takes no reference
 * to it.  table == NULL means no table has been loaded yet (D7).
 */
#ifndef DNSPROXY_RESOLVER_H
#define DNSPROXY_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct nds_table;
struct rsv;
struct timespec;

enum rsv_transport { RSV_UDP = 0, RSV_TCP = 1 };

/*
 * Uniform random source on [0, bound) (bound >= 1), used to shuffle
 * address records (D6) and, later, to order upstream servers.
 */
typedef uint32_t (*rsv_rand_fn)(uint32_t bound, void *arg);

/* One upstream server (an IP literal and port). */
struct rsv_upstream {
	int family;       /* AF_INET or AF_INET6 */
	uint8_t addr[16]; /* 4 or 16 bytes, network order */
	uint16_t port;    /* host order */
};

/* What the resolver knows of a reply it hands over (query logs). */
struct rsv_reply_info {
	enum rsv_transport tr; /* the client's transport */
	int source;            /* enum rsv_source */
	int malformed;         /* the query failed the pre-handler rules */
	const struct timespec *start; /* when rsv_query() began (monotonic) */
};

/*
 * Seconds from rsv_query() to now, for a log line.  Reads the clock, so the
 * log callback calls it only when it writes the line.
 */
double rsv_reply_seconds(const struct rsv_reply_info *info);

/*
 * Called just before the reply callback, with the same reply bytes (len 0:
 * nothing is sent) and the same arg.
 */
typedef void (*rsv_log_fn)(const struct rsv_reply_info *info,
    const uint8_t *reply, size_t len, void *arg);

#define RSV_TIMEOUT_MS_DEFAULT 2000   /* per attempt (D4) */
#define RSV_MAX_FORWARDS_DEFAULT 4096 /* forwards in flight (D10) */

/* Forwarded-answer cache defaults (the agent's flag defaults). */
#define RSV_CACHE_SIZE_DEFAULT 10000               /* entries */
#define RSV_CACHE_BYTES_DEFAULT (16 * 1024 * 1024) /* memory charged */
#define RSV_CACHE_MAX_TTL_DEFAULT 300              /* seconds */
#define RSV_CACHE_MAX_NEG_TTL_DEFAULT 30           /* seconds */
#define RSV_CACHE_MAX_STALE_DEFAULT 3600           /* seconds */
#define RSV_STALE_TIMEOUT_MS_DEFAULT 1800          /* RFC 8767 §5 */

struct rsv_config {
	rsv_rand_fn rand;                     /* NULL = resolver/random.h */
	void *rand_arg;                       /* passed to rand */
	const struct rsv_upstream *upstreams; /* copied by rsv_create() */
	size_t nupstreams;       /* 0: everything forwarded gets SERVFAIL */
	unsigned timeout_ms;     /* per attempt; 0 = RSV_TIMEOUT_MS_DEFAULT */
	unsigned attempts;       /* in total; 0 = 2 x nupstreams */
	int parallel;            /* ask every server at once */
	unsigned max_forwards;   /* in flight; 0 = RSV_MAX_FORWARDS_DEFAULT */
	rsv_log_fn log_reply;    /* NULL = no query log */
	int forward_before_sync; /* D7: with no table, forward every query
	                          * instead of answering SERVFAIL */
	/* The forwarded-answer cache; the values are taken literally. */
	size_t cache_entries;       /* 0: no cache, and so no coalescing,
	                             * serve-stale or prefetch */
	size_t cache_bytes;         /* bound on the memory of entries */
	uint32_t cache_max_ttl;     /* seconds, positive answers */
	uint32_t cache_max_neg_ttl; /* seconds, NXDOMAIN/NODATA; 0: none */
	uint32_t cache_max_stale;   /* seconds past expiry an entry may be
	                             * served stale; 0: never */
	uint32_t stale_timeout_ms;  /* how long a client waits for the
	                             * upstreams before it gets a stale
	                             * answer; 0: at once */
};

/* Called exactly once per rsv_query(); see above. */
typedef void (*rsv_reply_fn)(const uint8_t *reply, size_t len, void *arg);

/* Where a reply came from (SPEC §6 `source` label). */
enum rsv_source {
	RSV_SRC_LOCAL = 0,
	RSV_SRC_FORWARDED,
	RSV_SRC_ERROR,
	RSV_SRC_COUNT
};

/* Upper bounds (seconds) of the upstream latency histogram (SPEC §6). */
#define RSV_FWD_BUCKETS 6
extern const double rsv_fwd_bucket_bounds[RSV_FWD_BUCKETS];

/* Upper bounds (seconds) of the local answer latency histogram. */
#define RSV_LOCAL_BUCKETS 6
extern const double rsv_local_bucket_bounds[RSV_LOCAL_BUCKETS];

/* Counters and gauges of the forwarded-answer cache (SPEC §6). */
struct rsv_cache_stats {
	uint64_t hits;         /* answered from a fresh entry */
	uint64_t misses;       /* cacheable queries without a fresh entry */
	uint64_t stale_served; /* answers from expired entries (RFC 8767) */
	uint64_t prefetches;   /* refreshes started before expiry */
	uint64_t evictions;    /* entries dropped to make room */
	uint64_t entries;      /* entries now */
	uint64_t bytes;        /* memory charged to them now */
};

/* Counters kept by the resolver; read with rsv_stats(). */
struct rsv_stats {
	uint64_t requests;      /* queries reaching the handler */
	uint64_t malformed;     /* dropped or answered FORMERR/NOTIMP/.. */
	uint64_t dropped;       /* sent nothing */
	uint64_t queries[2][3]; /* [transport][A, AAAA, other] */
	uint64_t responses[RSV_SRC_COUNT][24]; /* [source][rcode], rcode
	                                        * capped at 23 */
	uint64_t forwarded;    /* queries forwarded, once each */
	uint64_t fwd_failures; /* forwards without a good answer */
	uint64_t fwd_rejected; /* beyond the in-flight cap */
	uint64_t fwd_inflight; /* forwards in flight now */
	uint64_t fwd_duration[RSV_FWD_BUCKETS + 1];     /* histogram of whole
	                                                 * forwards; last = +Inf */
	double fwd_duration_sum;                        /* seconds */
	uint64_t local_duration[RSV_LOCAL_BUCKETS + 1]; /* local answers */
	double local_duration_sum;                      /* seconds */
	struct rsv_cache_stats cache;                   /* zero without one */
};

/* One cache entry, as /debug/cache lists it. */
struct rsv_cache_info {
	const char *name; /* presentation form, trailing dot, \DDD escapes */
	uint16_t qtype;
	uint16_t qclass;
	int rcode;             /* of the stored reply */
	int dnssec_ok;         /* the key's DO bit */
	int checking_disabled; /* the key's CD bit */
	int64_t ttl; /* seconds left; <= 0: expired, only served stale */
	size_t size; /* bytes charged */
};

typedef void (*rsv_cache_visit_fn)(const struct rsv_cache_info *e, void *arg);

/*
 * base is borrowed and must outlive the resolver.  0, -ENOMEM or -EINVAL
 * (an upstream the library cannot use; err says which).
 */
int rsv_create(struct event_base *base, const struct rsv_config *cfg,
    struct rsv **out, char *err, size_t errlen);

/* NULL-safe; see above. */
void rsv_destroy(struct rsv *r);

/*
 * Answers one query of len bytes that arrived over transport tr.  The
 * reply is already truncated to the client's limit (SPEC §3).  Returns 0;
 * the outcome is reported through cb only.
 */
int rsv_query(struct rsv *r, const struct nds_table *t, const uint8_t *pkt,
    size_t len, enum rsv_transport tr, rsv_reply_fn cb, void *arg);

const struct rsv_stats *rsv_stats(const struct rsv *r);

/* Empties the forwarded-answer cache (SIGHUP, POST /cache/flush). */
void rsv_cache_clear(struct rsv *r);

/* Calls fn for every cache entry, most recently used first; nothing
 * without a cache.  The info is borrowed for the call. */
void rsv_cache_list(const struct rsv *r, rsv_cache_visit_fn fn, void *arg);

/*
 * The question and rcode of a reply, for logs: name as dotted text (the
 * client's case; "" when there is no question), type, rcode (-1 when len
 * is 0).  0 or -EINVAL.
 */
int rsv_reply_describe(const uint8_t *reply, size_t len, char *name,
    size_t namecap, uint16_t *qtype, int *rcode);

/* "A", "AAAA", "MX", ... or NULL for a type without a short name here. */
const char *rsv_type_name(uint16_t qtype);

/* The upstreams as text ("10.96.0.10:53") and their failure counts. */
size_t rsv_upstreams(const struct rsv *r, const char *const **names,
    const uint64_t **failures);

#endif
