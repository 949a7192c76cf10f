/*
 * cache.c: the forwarded-answer cache, see cache.h.
 *
 * Pure: no I/O, no clock (now is a parameter, in milliseconds), no
 * logging.  A hash table of chains plus an LRU list; one allocation per
 * entry holding the TTL offsets, the key name and the reply.  The bucket
 * array starts at 16 and doubles whenever the entries reach its size, up
 * to the power of two at or above max_entries: a cache that stays nearly
 * empty does not keep 128 kB of NULLs (10,000 entries by default).  A hit
 * costs one hash, one memcmp and one copy of the reply with a few fields
 * patched; a reply is parsed only once, when it is stored, with bounded
 * reads throughout (the cut or malformed reply of a broken upstream is
 * refused, never trusted).
 *
 * Bounds: max_entries entries and max_bytes of memory charged (struct,
 * offsets, name and reply of each entry); the least recently used entries
 * go first.  Expired entries stay, for serve-stale, until they are older
 * than max_stale past expiry, evicted, or replaced by a fresh answer.
 */
#include "resolver/cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "resolver/wire.h"

#define CACHE_BUCKETS_MIN 16
#define RR_FIXED 10 /* type, class, ttl, rdlength */
/* The most RRs a message can hold: each takes at least 11 bytes. */
#define CACHE_RRS_MAX ((RSV_MSG_MAX - RSV_HDR_LEN) / 11 + 1)

/* EDNS options that may come with a cacheable query, and that are taken
 * out of stored replies: they concern one client or one connection. */
#define OPT_COOKIE 10
#define OPT_KEEPALIVE 11
#define OPT_PADDING 12

struct rsv_cache_entry {
	struct rsv_cache_entry *hnext;    /* hash chain */
	TAILQ_ENTRY(rsv_cache_entry) lru; /* most recent first */
	uint64_t stored;                  /* ms: when the reply came */
	uint64_t expires;                 /* ms: stored + ttl seconds */
	uint32_t hash;                    /* the key's */
	uint32_t ttl;                     /* seconds, after the caps */
	uint16_t qtype, qclass;           /* the key's */
	uint8_t flags, nlen;              /* the key's */
	uint8_t rcode;                    /* of the reply */
	uint8_t cacheable;                /* may be stored */
	uint8_t prefetched;               /* a refresh was asked for */
	uint8_t failed;                   /* a refresh failed */
	uint16_t late_hits;               /* in the last 10% of the TTL */
	uint32_t nttl;                    /* TTL fields in wire */
	size_t wlen;                      /* bytes in wire */
	size_t size;                      /* bytes charged */
	uint8_t *name;                    /* the key's name */
	uint8_t *wire;                    /* the reply */
	uint16_t ttloff[];                /* offsets of TTL fields */
};
TAILQ_HEAD(cache_lru, rsv_cache_entry);

struct rsv_cache {
	struct rsv_cache_config cfg;
	struct rsv_cache_stats *stats; /* borrowed */
	struct rsv_cache_entry **buckets;
	size_t mask;         /* buckets - 1 (a power of two) */
	size_t nbuckets_max; /* where the doubling stops */
	struct cache_lru lru;
};

/* ---- keys ---- */

static uint8_t
lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* FNV-1a, seeded so that clients cannot aim at one chain. */
static uint32_t
key_hash(const struct rsv_cache_key *k, uint32_t seed)
{
	uint32_t h = 2166136261u ^ seed;
	uint8_t tail[5];
	size_t i;

	for (i = 0; i < k->nlen; i++)
		h = (h ^ k->name[i]) * 16777619u;
	rsv_put16(tail, k->qtype);
	rsv_put16(tail + 2, k->qclass);
	tail[4] = k->flags;
	for (i = 0; i < sizeof(tail); i++)
		h = (h ^ tail[i]) * 16777619u;
	return h;
}

/* Only options that do not change the answer keep a query cacheable. */
static int
opt_cacheable(const struct rsv_opt *o)
{
	size_t pos = 0;

	if (o->rdlen > 0 && o->rdata == NULL)
		return 0;
	while (pos + 4 <= o->rdlen) {
		uint16_t code = rsv_get16(o->rdata + pos);

		if (code != OPT_COOKIE && code != OPT_KEEPALIVE &&
		    code != OPT_PADDING)
			return 0;
		pos += 4 + (size_t)rsv_get16(o->rdata + pos + 2);
	}
	return 1;
}

int
rsv_cache_key_make(const struct rsv_query *q, uint32_t seed,
    struct rsv_cache_key *k)
{
	size_t i;

	if (!q->has_question || q->has_tsig ||
	    RSV_OPCODE(q->hdr.flags) != RSV_OP_QUERY ||
	    q->qtype == RSV_TYPE_OPT || (q->qtype >= 249 && q->qtype <= 252) ||
	    q->qname_len == 0 || q->qname_len > RSV_NAME_MAX)
		return -ENOENT;
	k->flags = 0;
	if (q->opt.present) {
		if (!opt_cacheable(&q->opt))
			return -ENOENT;
		k->flags |= RSV_CK_EDNS;
		if (q->opt.flags & RSV_EDNS_DO)
			k->flags |= RSV_CK_DO;
	}
	if (q->hdr.flags & RSV_F_CD)
		k->flags |= RSV_CK_CD;
	k->qtype = q->qtype;
	k->qclass = q->qclass;
	k->nlen = (uint8_t)q->qname_len;
	for (i = 0; i < q->qname_len; i++)
		k->name[i] = lower(q->qname[i]);
	k->hash = key_hash(k, seed);
	return 0;
}

static int
key_match(const struct rsv_cache_entry *e, const struct rsv_cache_key *k)
{
	return e->hash == k->hash && e->qtype == k->qtype &&
	       e->qclass == k->qclass && e->flags == k->flags &&
	       e->nlen == k->nlen && memcmp(e->name, k->name, k->nlen) == 0;
}

int
rsv_cache_key_equal(const struct rsv_cache_key *a,
    const struct rsv_cache_key *b)
{
	return a->hash == b->hash && a->qtype == b->qtype &&
	       a->qclass == b->qclass && a->flags == b->flags &&
	       a->nlen == b->nlen && memcmp(a->name, b->name, a->nlen) == 0;
}

/* ---- the table ---- */

int
rsv_cache_create(const struct rsv_cache_config *cfg,
    struct rsv_cache_stats *stats, struct rsv_cache **out)
{
	struct rsv_cache *c;
	size_t n = CACHE_BUCKETS_MIN;

	*out = NULL;
	if (cfg->max_entries == 0 || cfg->max_entries > RSV_CACHE_ENTRIES_MAX)
		return -EINVAL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	if ((c->buckets = calloc(n, sizeof(*c->buckets))) == NULL) {
		free(c);
		return -ENOMEM;
	}
	c->cfg = *cfg;
	c->stats = stats;
	c->mask = n - 1;
	c->nbuckets_max = CACHE_BUCKETS_MIN;
	while (c->nbuckets_max < cfg->max_entries)
		c->nbuckets_max *= 2;
	TAILQ_INIT(&c->lru);
	*out = c;
	return 0;
}

void
rsv_cache_entry_free(struct rsv_cache_entry *e)
{
	free(e);
}

/* Unlinks e from its chain and the LRU list and frees it. */
static void
cache_remove(struct rsv_cache *c, struct rsv_cache_entry *e)
{
	struct rsv_cache_entry **pp = &c->buckets[e->hash & c->mask];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	TAILQ_REMOVE(&c->lru, e, lru);
	c->stats->entries--;
	c->stats->bytes -= e->size;
	free(e);
}

void
rsv_cache_flush(struct rsv_cache *c)
{
	struct rsv_cache_entry *e;

	while ((e = TAILQ_FIRST(&c->lru)) != NULL)
		cache_remove(c, e);
}

void
rsv_cache_destroy(struct rsv_cache *c)
{
	if (c == NULL)
		return;
	rsv_cache_flush(c);
	free(c->buckets);
	free(c);
}

static struct rsv_cache_entry *
cache_find(const struct rsv_cache *c, const struct rsv_cache_key *k)
{
	struct rsv_cache_entry *e;

	for (e = c->buckets[k->hash & c->mask]; e != NULL; e = e->hnext)
		if (key_match(e, k))
			return e;
	return NULL;
}

/* Still servable at now: fresh, or stale within max_stale. */
static int
cache_usable(const struct rsv_cache *c, const struct rsv_cache_entry *e,
    uint64_t now)
{
	return now < e->expires ||
	       now - e->expires < (uint64_t)c->cfg.max_stale * 1000;
}

struct rsv_cache_entry *
rsv_cache_peek(struct rsv_cache *c, const struct rsv_cache_key *k, uint64_t now)
{
	struct rsv_cache_entry *e = cache_find(c, k);

	return (e != NULL && cache_usable(c, e, now)) ? e : NULL;
}

enum rsv_cache_state
rsv_cache_lookup(struct rsv_cache *c, const struct rsv_cache_key *k,
    uint64_t now, struct rsv_cache_entry **out, int *prefetch)
{
	struct rsv_cache_entry *e = cache_find(c, k);

	*out = NULL;
	*prefetch = 0;
	if (e != NULL && !cache_usable(c, e, now)) {
		cache_remove(c, e); /* too old even to serve stale */
		e = NULL;
	}
	if (e == NULL || now >= e->expires) {
		c->stats->misses++;
		if (e == NULL)
			return RSV_CACHE_MISS;
		TAILQ_REMOVE(&c->lru, e, lru);
		TAILQ_INSERT_HEAD(&c->lru, e, lru);
		*out = e;
		return RSV_CACHE_STALE;
	}
	c->stats->hits++;
	TAILQ_REMOVE(&c->lru, e, lru);
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	/* Popular and about to expire: refresh it before it does. */
	if ((e->expires - now) * 10 <= (uint64_t)e->ttl * 1000 &&
	    ++e->late_hits >= 2 && !e->prefetched) {
		e->prefetched = 1;
		*prefetch = 1;
	}
	*out = e;
	return RSV_CACHE_FRESH;
}

/*
 * Doubles the bucket array once there are as many entries as buckets, up
 * to nbuckets_max.  Without memory for the bigger array the old one stays:
 * the chains get longer, nothing is lost.
 */
static void
cache_grow(struct rsv_cache *c)
{
	struct rsv_cache_entry **nb, *e;
	size_t n = c->mask + 1;

	if (c->stats->entries < n || n >= c->nbuckets_max)
		return;
	if ((nb = calloc(n * 2, sizeof(*nb))) == NULL)
		return;
	c->mask = n * 2 - 1;
	TAILQ_FOREACH(e, &c->lru, lru) {
		e->hnext = nb[e->hash & c->mask];
		nb[e->hash & c->mask] = e;
	}
	free(c->buckets);
	c->buckets = nb;
}

void
rsv_cache_insert(struct rsv_cache *c, struct rsv_cache_entry *e)
{
	struct rsv_cache_entry *old, *victim;
	size_t b;

	if (!e->cacheable || e->size > c->cfg.max_bytes) {
		free(e);
		return;
	}
	for (old = c->buckets[e->hash & c->mask]; old != NULL; old = old->hnext)
		if (old->hash == e->hash && old->qtype == e->qtype &&
		    old->qclass == e->qclass && old->flags == e->flags &&
		    old->nlen == e->nlen &&
		    memcmp(old->name, e->name, e->nlen) == 0)
			break;
	if (old != NULL)
		cache_remove(c, old);
	while (c->stats->entries >= c->cfg.max_entries ||
	       c->stats->bytes + e->size > c->cfg.max_bytes) {
		victim = TAILQ_LAST(&c->lru, cache_lru);
		cache_remove(c, victim);
		c->stats->evictions++;
	}
	cache_grow(c);
	b = e->hash & c->mask;
	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	c->stats->entries++;
	c->stats->bytes += e->size;
}

int
rsv_cache_entry_cacheable(const struct rsv_cache_entry *e)
{
	return e->cacheable;
}

int
rsv_cache_entry_fresh(const struct rsv_cache_entry *e, uint64_t now)
{
	return now < e->expires;
}

int
rsv_cache_entry_failed(const struct rsv_cache_entry *e)
{
	return e->failed;
}

void
rsv_cache_entry_set_failed(struct rsv_cache_entry *e)
{
	e->failed = 1;
}

/* ---- building entries ---- */

/* What one pass over a reply learnt (scan_reply()). */
struct scan {
	uint32_t nttl;                  /* TTL fields found */
	uint16_t ttloff[CACHE_RRS_MAX]; /* their offsets */
	uint32_t min_ttl;               /* smallest TTL / SOA MINIMUM */
	int has_soa;                    /* an SOA in authority */
	int has_tsig;                   /* a TSIG RR */
	size_t opt_rd;                  /* the OPT's rdata, or 0 */
	size_t opt_end;                 /* the byte after it */
};

/* The MINIMUM field of the SOA rdata at off (rdlen bytes), or -EINVAL. */
static int
soa_minimum(const uint8_t *pkt, size_t off, size_t rdlen, uint32_t *min)
{
	uint8_t name[RSV_NAME_MAX];
	size_t end = off + rdlen, nlen;

	if (rsv_name_parse(pkt, end, &off, name, &nlen) != 0 ||
	    rsv_name_parse(pkt, end, &off, name, &nlen) != 0 || end - off != 20)
		return -EINVAL;
	*min = rsv_get32(pkt + off + 16);
	return 0;
}

/* TTLs with the top bit set count as 0 (RFC 2181 §8). */
static uint32_t
ttl_value(uint32_t ttl)
{
	return (ttl & 0x80000000u) ? 0 : ttl;
}

/* Walks every RR after the question at off: TTL offsets, the smallest
 * TTL, SOA, TSIG and OPT positions.  Bounded reads only. */
static int
scan_reply(const uint8_t *pkt, size_t len, size_t off, struct scan *s)
{
	uint16_t counts[3] = {
	    rsv_get16(pkt + 6), rsv_get16(pkt + 8), rsv_get16(pkt + 10)};
	uint8_t name[RSV_NAME_MAX];
	size_t nlen;
	uint32_t i;
	int sec;

	s->min_ttl = UINT32_MAX;
	for (sec = 0; sec < 3; sec++) {
		for (i = 0; i < counts[sec]; i++) {
			uint16_t type, rdlen;
			uint32_t ttl;

			if (rsv_name_parse(pkt, len, &off, name, &nlen) != 0 ||
			    len - off < RR_FIXED)
				return -EINVAL;
			type = rsv_get16(pkt + off);
			ttl = ttl_value(rsv_get32(pkt + off + 4));
			rdlen = rsv_get16(pkt + off + 8);
			if (len - off - RR_FIXED < rdlen)
				return -EINVAL;
			if (type == RSV_TYPE_OPT) {
				if (sec != 2 || s->opt_rd != 0)
					return -EINVAL;
				s->opt_rd = off + RR_FIXED;
				s->opt_end = off + RR_FIXED + rdlen;
			} else {
				if (s->nttl == CACHE_RRS_MAX)
					return -EINVAL;
				s->ttloff[s->nttl++] = (uint16_t)(off + 4);
				if (ttl < s->min_ttl)
					s->min_ttl = ttl;
			}
			if (type == RSV_TYPE_SOA && sec == 1) {
				uint32_t min;

				if (soa_minimum(pkt, off + RR_FIXED, rdlen,
				        &min) != 0)
					return -EINVAL;
				s->has_soa = 1;
				min = ttl_value(min);
				if (min < s->min_ttl)
					s->min_ttl = min;
			}
			if (type == RSV_TYPE_TSIG)
				s->has_tsig = 1;
			off += RR_FIXED + rdlen;
		}
	}
	return off == len ? 0 : -EINVAL;
}

/*
 * Copies the reply into e->wire without the OPT options that belong to
 * one client (COOKIE) or one transport (PADDING, TCP-KEEPALIVE).  The OPT
 * must be the last RR for that (nothing after it may point into moved
 * bytes); when it is not and would change, the copy is verbatim and the
 * entry not cacheable.
 */
static void
copy_reply(struct rsv_cache_entry *e, const uint8_t *pkt, size_t len,
    const struct scan *s)
{
	size_t rd = s->opt_rd, rdlen, pos, out;

	memcpy(e->wire, pkt, len);
	e->wlen = len;
	if (rd == 0)
		return;
	rdlen = s->opt_end - rd;
	for (pos = 0, out = rd; pos < rdlen;) {
		uint16_t code = 0;
		size_t olen = rdlen - pos; /* a cut option is kept as is */

		if (olen >= 4) {
			code = rsv_get16(pkt + rd + pos);
			if (4 + (size_t)rsv_get16(pkt + rd + pos + 2) < olen)
				olen =
				    4 + (size_t)rsv_get16(pkt + rd + pos + 2);
		}
		if (code != OPT_COOKIE && code != OPT_PADDING &&
		    code != OPT_KEEPALIVE) {
			memcpy(e->wire + out, pkt + rd + pos, olen);
			out += olen;
		}
		pos += olen;
	}
	if (out - rd == rdlen)
		return; /* nothing taken out */
	if (s->opt_end != len) {
		memcpy(e->wire, pkt, len);
		e->cacheable = 0;
		return;
	}
	rsv_put16(e->wire + rd - 2, (uint16_t)(out - rd));
	e->wlen = out;
}

/* The question must be k's: one, uncompressed, same name but for case. */
static int
question_matches(const struct rsv_cache_key *k, const uint8_t *pkt, size_t len)
{
	size_t i;

	if (rsv_get16(pkt + 4) != 1 || len < RSV_HDR_LEN + k->nlen + 4U)
		return 0;
	for (i = 0; i < k->nlen; i++)
		if (lower(pkt[RSV_HDR_LEN + i]) != k->name[i])
			return 0;
	/* Equal bytes with the lengths in the same places: the name is
	 * uncompressed (k->name ends in its root label). */
	return rsv_get16(pkt + RSV_HDR_LEN + k->nlen) == k->qtype &&
	       rsv_get16(pkt + RSV_HDR_LEN + k->nlen + 2) == k->qclass;
}

/* Whether a reply may be stored, and for how long (seconds). */
static int
reply_ttl(const struct rsv_cache *c, const uint8_t *pkt, const struct scan *s,
    uint32_t *ttl)
{
	uint16_t flags = rsv_get16(pkt + 2);
	unsigned rcode = RSV_RCODE(flags);
	int negative = rcode == RSV_NXDOMAIN ||
	               (rcode == RSV_NOERROR && rsv_get16(pkt + 6) == 0);
	uint32_t cap = negative ? c->cfg.max_neg_ttl : c->cfg.max_ttl;

	*ttl = s->min_ttl == UINT32_MAX ? 0 : s->min_ttl;
	if (*ttl > cap)
		*ttl = cap;
	if ((flags & RSV_F_TC) || s->has_tsig ||
	    (rcode != RSV_NOERROR && rcode != RSV_NXDOMAIN) ||
	    (negative && !s->has_soa) || *ttl == 0)
		return 0;
	return 1;
}

/*
 * Whether the reply reads the same whatever a render patches into it: the
 * ID and flags, and every TTL.  A name must not take one of those bytes
 * for a label length or pointer (a compression pointer into the header, or
 * a label run over an RR's own fixed fields, is garbage that happens to
 * parse for the bytes the upstream sent).  With 0x80, a reserved label
 * type, in all of them, any such name fails.  (Question bytes only change
 * case; letters are never valid length bytes either way.)  0 or -EINVAL.
 */
static int
patch_safe(struct rsv_cache_entry *e, const uint8_t *reply)
{
	uint32_t i;
	int rc;

	/* The reply holds the original bytes at the same offsets: only a
	 * trailing OPT's options were taken out of the copy. */
	memset(e->wire, 0x80, 4);
	for (i = 0; i < e->nttl; i++)
		memset(e->wire + e->ttloff[i], 0x80, 4);
	rc = rsv_msg_check(e->wire, e->wlen);
	memcpy(e->wire, reply, 4);
	for (i = 0; i < e->nttl; i++)
		memcpy(e->wire + e->ttloff[i], reply + e->ttloff[i], 4);
	return rc;
}

int
rsv_cache_entry_build(const struct rsv_cache *c, const struct rsv_cache_key *k,
    const uint8_t *reply, size_t len, uint64_t now,
    struct rsv_cache_entry **out)
{
	struct rsv_cache_entry *e;
	struct scan scan, *s = &scan; /* ttloff: uninitialised until used */
	uint32_t ttl, i;
	size_t off = RSV_HDR_LEN + k->nlen + 4, size;

	*out = NULL;
	if (reply == NULL || len < RSV_HDR_LEN || len > RSV_MSG_MAX ||
	    !question_matches(k, reply, len))
		return -EINVAL;
	s->nttl = 0;
	s->has_soa = s->has_tsig = 0;
	s->opt_rd = s->opt_end = 0;
	if (scan_reply(reply, len, off, s) != 0)
		return -EINVAL;
	size = sizeof(*e) + s->nttl * sizeof(uint16_t) + k->nlen + len;
	if ((e = malloc(size)) == NULL)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->size = size;
	e->hash = k->hash;
	e->qtype = k->qtype;
	e->qclass = k->qclass;
	e->flags = k->flags;
	e->nlen = k->nlen;
	e->nttl = s->nttl;
	e->rcode = (uint8_t)RSV_RCODE(rsv_get16(reply + 2));
	memcpy(e->ttloff, s->ttloff, s->nttl * sizeof(uint16_t));
	e->name = (uint8_t *)(e->ttloff + s->nttl);
	memcpy(e->name, k->name, k->nlen);
	e->wire = e->name + k->nlen;
	e->cacheable = (uint8_t)reply_ttl(c, reply, s, &ttl);
	e->ttl = ttl;
	copy_reply(e, reply, len, s);
	if (patch_safe(e, reply) != 0) {
		free(e);
		return -EINVAL;
	}
	e->stored = now;
	e->expires = now + (uint64_t)e->ttl * 1000;
	/* Every TTL counts down to the entry's expiry, not past it. */
	for (i = 0; e->cacheable && i < e->nttl; i++)
		if (rsv_get32(e->wire + e->ttloff[i]) > e->ttl)
			rsv_put32(e->wire + e->ttloff[i], e->ttl);
	*out = e;
	return 0;
}

/* ---- answering ---- */

int
rsv_cache_render(const struct rsv_cache_entry *e, const struct rsv_query *q,
    uint64_t now, int stale, size_t limit, uint8_t *out, size_t cap,
    size_t *outlen)
{
	uint8_t full[RSV_MSG_MAX];
	uint8_t *dst = e->wlen > limit ? full : out;
	uint32_t age, i;
	uint16_t flags;

	if (e->wlen > (e->wlen > limit ? sizeof(full) : cap) ||
	    q->qname_len != e->nlen)
		return -ENOSPC;
	memcpy(dst, e->wire, e->wlen);
	rsv_put16(dst, q->hdr.id);
	flags = rsv_get16(dst + 2);
	rsv_put16(dst + 2,
	    (uint16_t)((flags & ~RSV_F_RD) | (q->hdr.flags & RSV_F_RD)));
	memcpy(dst + RSV_HDR_LEN, q->qname, q->qname_len);
	age = now > e->stored ? (uint32_t)((now - e->stored) / 1000) : 0;
	for (i = 0; i < e->nttl; i++) {
		uint32_t ttl = rsv_get32(dst + e->ttloff[i]);

		if (stale)
			ttl = RSV_CACHE_STALE_TTL;
		else
			ttl = ttl > age ? ttl - age : 0;
		rsv_put32(dst + e->ttloff[i], ttl);
	}
	if (dst == out) {
		*outlen = e->wlen;
		return 0;
	}
	return rsv_msg_truncate(full, e->wlen, limit, out, cap, outlen);
}

/* ---- listing ---- */

/* Presentation form of a wire name: dots between labels, a trailing
 * dot, and \DDD for bytes outside 0x21..0x7e and for '.' and '\'. */
static void
name_text(const uint8_t *name, size_t nlen, char *out, size_t cap)
{
	static const char digits[] = "0123456789";
	size_t pos = 0, o = 0, i;

	if (nlen <= 1) {
		out[0] = '.';
		out[1] = '\0';
		return;
	}
	while (pos < nlen && name[pos] != 0 && o + 5 < cap) {
		uint8_t n = name[pos++];

		for (i = 0; i < n && pos < nlen && o + 5 < cap; i++) {
			uint8_t ch = name[pos++];

			if (ch > 0x20 && ch < 0x7f && ch != '.' && ch != '\\') {
				out[o++] = (char)ch;
				continue;
			}
			out[o++] = '\\';
			out[o++] = digits[ch / 100];
			out[o++] = digits[ch / 10 % 10];
			out[o++] = digits[ch % 10];
		}
		out[o++] = '.';
	}
	out[o] = '\0';
}

void
rsv_cache_walk(const struct rsv_cache *c, uint64_t now, rsv_cache_visit_fn fn,
    void *arg)
{
	const struct rsv_cache_entry *e;
	char name[RSV_TEXT_MAX];
	struct rsv_cache_info info;

	TAILQ_FOREACH(e, &c->lru, lru) {
		name_text(e->name, e->nlen, name, sizeof(name));
		info.name = name;
		info.qtype = e->qtype;
		info.qclass = e->qclass;
		info.rcode = e->rcode;
		info.dnssec_ok = (e->flags & RSV_CK_DO) != 0;
		info.checking_disabled = (e->flags & RSV_CK_CD) != 0;
		info.ttl = e->expires > now
		               ? (int64_t)((e->expires - now + 999) / 1000)
		               : -(int64_t)((now - e->expires) / 1000);
		info.size = e->size;
		fn(&info, arg);
	}
}
