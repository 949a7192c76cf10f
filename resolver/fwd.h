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

#include "resolver/answer.h"
#include "resolver/resolver.h"
#include "resolver/wire.h"

struct event_base;
struct fwd;
struct timespec;

/*
 * cfg->upstreams are copied.  rng and stats are borrowed and must outlive
 * the forwarder.  0, -ENOMEM, or -EINVAL (c-ares refused a server; err
 * names it).
 */
int fwd_create(struct event_base *base, const struct rsv_config *cfg,
    const struct rsv_rng *rng, struct rsv_stats *stats, struct fwd **out,
    char *err, size_t errlen);

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
