/*
 * cache: the forwarded-answer cache (RFC 1035 §7.4, RFC 2308, RFC 8767).
 * Private to resolver/.  Pure: bytes in, bytes out, the clock is a
 * parameter (milliseconds of any monotonic clock); no I/O, no logging.
 *
 *	rsv_cache_create(&cfg, &stats, &c);
 *	if (rsv_cache_key_make(&q, seed, &k) == 0)	  the query may use it
 *		switch (rsv_cache_lookup(c, &k, now, &e, &prefetch)) {
 *		case RSV_CACHE_FRESH: rsv_cache_render(e, &q, now, 0, ...);
 *		...
 *	rsv_cache_entry_build(c, &k, reply, len, now, &e);   upstream reply
 *	rsv_cache_render(e, &q2, now, 0, ...);  (a waiting client's copy)
 *	rsv_cache_insert(c, e);			  takes e, stores or frees it
 *	rsv_cache_destroy(c);
 *
 * An entry is the upstream reply in wire form with the offsets of its TTL
 * fields.  A reply for a client is a copy with the client's ID, RD bit and
 * question bytes (its case), the TTLs lowered by the entry's age (30 when
 * stale), truncated to the client's size.
 */
#ifndef DNSPROXY_RESOLVER_CACHE_H
#define DNSPROXY_RESOLVER_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "resolver/resolver.h"
#include "resolver/wire.h"

#define RSV_CACHE_STALE_TTL 30 /* TTL of stale answers (RFC 8767 §4) */
#define RSV_CACHE_ENTRIES_MAX 1000000

/* Key flag bits. */
#define RSV_CK_DO 1   /* the query's OPT had DO=1 */
#define RSV_CK_CD 2   /* CD=1 in the header */
#define RSV_CK_EDNS 4 /* the query had an OPT at all */

/* What identifies an answer: name (lower-cased), type, class, DO, CD and
 * whether the query spoke EDNS. */
struct rsv_cache_key {
	uint32_t hash; /* of everything below, seeded */
	uint16_t qtype;
	uint16_t qclass;
	uint8_t flags;              /* RSV_CK_* */
	uint8_t nlen;               /* bytes in name, root label included */
	uint8_t name[RSV_NAME_MAX]; /* wire form, ASCII lower-cased */
};

struct rsv_cache_config {
	size_t max_entries;   /* 1 .. RSV_CACHE_ENTRIES_MAX */
	size_t max_bytes;     /* memory charged to entries (see size) */
	uint32_t max_ttl;     /* seconds, caps positive answers */
	uint32_t max_neg_ttl; /* seconds, caps NXDOMAIN/NODATA; 0: none */
	uint32_t max_stale;   /* seconds an expired entry may still serve */
};

enum rsv_cache_state { RSV_CACHE_MISS = 0, RSV_CACHE_FRESH, RSV_CACHE_STALE };

struct rsv_cache;
struct rsv_cache_entry;

/*
 * stats is borrowed (its cache counters are kept up to date) and must
 * outlive the cache.  0, -EINVAL (max_entries out of range) or -ENOMEM.
 */
int rsv_cache_create(const struct rsv_cache_config *cfg,
    struct rsv_cache_stats *stats, struct rsv_cache **out);

/* NULL-safe. */
void rsv_cache_destroy(struct rsv_cache *c);

/* Drops every entry (not counted as evictions). */
void rsv_cache_flush(struct rsv_cache *c);

/*
 * The key of q, or -ENOENT when q must bypass the cache: not a QUERY, no
 * question, TSIG, a meta qtype (OPT, TKEY, TSIG, IXFR, AXFR), or an EDNS
 * option other than COOKIE (10), TCP-KEEPALIVE (11) and PADDING (12),
 * since options such as CLIENT-SUBNET (8) change the answer.  q's OPT
 * rdata must still be readable.
 */
int rsv_cache_key_make(const struct rsv_query *q, uint32_t seed,
    struct rsv_cache_key *k);

/* 1 when a and b are the same key. */
int rsv_cache_key_equal(const struct rsv_cache_key *a,
    const struct rsv_cache_key *b);

/*
 * Looks k up at time now and counts a hit (FRESH) or a miss.  FRESH and
 * STALE (expired less than max_stale ago) set *e and make the entry the
 * most recently used; an entry older than that is dropped (MISS).  A fresh
 * hit in the last tenth of the entry's TTL counts toward prefetch:
 * *prefetch becomes 1, once per entry, on the second such hit.
 */
enum rsv_cache_state rsv_cache_lookup(struct rsv_cache *c,
    const struct rsv_cache_key *k, uint64_t now, struct rsv_cache_entry **e,
    int *prefetch);

/* As lookup, without counting, prefetch or LRU change; NULL on a miss. */
struct rsv_cache_entry *rsv_cache_peek(struct rsv_cache *c,
    const struct rsv_cache_key *k, uint64_t now);

/*
 * Makes an entry from an upstream reply to k received at now: checks the
 * question (one, uncompressed, k's name in any case, k's type and class),
 * strips COOKIE and PADDING options from its OPT (they belong to one
 * client and one transport), finds its TTL and whether it may be stored
 * (rsv_cache_entry_cacheable()).  Not cacheable: TC=1, an rcode other than
 * NOERROR and NXDOMAIN, a TSIG, a negative answer (NXDOMAIN, or NOERROR
 * without answers) without an SOA, a TTL of 0.  TTL: the smallest TTL of
 * all RRs (OPT aside) and of SOA MINIMUM fields (RFC 2308 §5), capped by
 * max_ttl, or max_neg_ttl for negative answers; a cacheable entry's TTL
 * fields are lowered to it.  0, -EINVAL (no matching question, malformed,
 * or a name that reads the ID, flags or a TTL, which renders patch) or
 * -ENOMEM.
 */
int rsv_cache_entry_build(const struct rsv_cache *c,
    const struct rsv_cache_key *k, const uint8_t *reply, size_t len,
    uint64_t now, struct rsv_cache_entry **out);

/* 1 when rsv_cache_insert() would keep e. */
int rsv_cache_entry_cacheable(const struct rsv_cache_entry *e);

/* For an entry that was never inserted.  NULL-safe. */
void rsv_cache_entry_free(struct rsv_cache_entry *e);

/* 1 while e has not expired at now. */
int rsv_cache_entry_fresh(const struct rsv_cache_entry *e, uint64_t now);

/* 1 once a refresh of this (expired) entry failed: serve it stale at
 * once instead of waiting for the upstreams again. */
int rsv_cache_entry_failed(const struct rsv_cache_entry *e);
void rsv_cache_entry_set_failed(struct rsv_cache_entry *e);

/*
 * Takes e: stores it (replacing an entry of the same key, evicting least
 * recently used entries while the entry or byte bound would be passed) if
 * it is cacheable and fits max_bytes at all, else frees it.
 */
void rsv_cache_insert(struct rsv_cache *c, struct rsv_cache_entry *e);

/*
 * Writes e's reply for the client query q: q's ID, RD bit and question
 * (same name but for case, by the key), TTLs lowered by the seconds since
 * the entry was made (all RSV_CACHE_STALE_TTL when stale), truncated to
 * limit (rsv_msg_truncate()).  0 with *outlen, or -ENOSPC/-EINVAL.
 */
int rsv_cache_render(const struct rsv_cache_entry *e, const struct rsv_query *q,
    uint64_t now, int stale, size_t limit, uint8_t *out, size_t cap,
    size_t *outlen);

/* Visits the entries, most recently used first (see resolver.h). */
void rsv_cache_walk(const struct rsv_cache *c, uint64_t now,
    rsv_cache_visit_fn fn, void *arg);

#endif
