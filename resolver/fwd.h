/*
 * fwd: forwarding to the upstream resolvers through c-ares (SPEC §4, D3,
 * D4, D10).  Private to resolver/; the only file of resolver/ doing I/O.
 *
 *	fwd_create(base, &cfg, &rng, &stats, &f);
 *	fwd_query(f, &q, pkt, len, RSV_UDP, cb, arg);	cb runs exactly once
 *	fwd_destroy(f);		pending queries get cb(NULL, 0, arg) first
 */
#ifndef DNSPROXY_RESOLVER_FWD_H
#define DNSPROXY_RESOLVER_FWD_H

#include <stddef.h>
#include <stdint.h>

#include <time.h>

#include "resolver/answer.h"
#include "resolver/cache.h"
#include "resolver/resolver.h"
#include "resolver/wire.h"

struct event_base;
struct fwd;

/* Milliseconds of a CLOCK_MONOTONIC time (the cache's clock). */
static inline uint64_t
rsv_ms(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000 + (uint64_t)ts->tv_nsec / 1000000;
}

/*
 * cfg->upstreams are copied.  rng, stats and cache (NULL: none) are
 * borrowed and must outlive the forwarder.  0, -ENOMEM, or -EINVAL
 * (c-ares refused a server; err names it).
 */
int fwd_create(struct event_base *base, const struct rsv_config *cfg,
    const struct rsv_rng *rng, struct rsv_stats *stats, struct rsv_cache *cache,
    struct fwd **out, char *err, size_t errlen);

/* NULL-safe; see above. */
void fwd_destroy(struct fwd *f);

/*
 * Forwards the client's query pkt (len bytes, already parsed into q) and
 * reports the reply, truncated to the client's limit, through cb.  cb may
 * run before fwd_query() returns (no server, cap reached).
 */
void fwd_query(struct fwd *f, const struct rsv_query *q, const uint8_t *pkt,
    size_t len, enum rsv_transport tr, const struct timespec *t0,
    rsv_reply_fn cb, void *arg);

/*
 * As fwd_query() for a query with cache key k that found no fresh entry
 * (stale: an expired one it may still serve).  Joins an exchange in
 * flight for the same key and transport if there is one (coalescing).
 * A stale entry is served after cfg->stale_timeout_ms without a reply, or
 * when every upstream fails, or at once after an earlier refresh failed
 * (with a refresh in the background).  The reply is cached.
 */
void fwd_query_cached(struct fwd *f, const struct rsv_cache_key *k,
    const struct rsv_query *q, const uint8_t *pkt, size_t len,
    enum rsv_transport tr, const struct timespec *t0, rsv_reply_fn cb,
    void *arg, int stale);

/*
 * Refreshes k's cache entry with the query pkt in the background (nobody
 * waits), unless an exchange for k is in flight or the in-flight cap is
 * reached.  prefetch counts it as one.
 */
void fwd_refresh(struct fwd *f, const struct rsv_cache_key *k,
    const struct rsv_query *q, const uint8_t *pkt, size_t len,
    enum rsv_transport tr, int prefetch);

/*
 * Hands a reply to the client: the query log first (when log is set, with
 * the time since t0), then cb.  In resolver.c, shared with fwd.c.
 */
void rsv_deliver(rsv_log_fn log, enum rsv_transport tr, enum rsv_source src,
    int malformed, const struct timespec *t0, rsv_reply_fn cb, void *arg,
    const uint8_t *reply, size_t len);

/* Per-upstream names and failure counters (n entries). */
size_t fwd_upstreams(const struct fwd *f, const char *const **names,
    const uint64_t **failures);

#endif
