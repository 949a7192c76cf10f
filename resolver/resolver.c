/*
 * resolver.c: the query entry point.  Runs the pre-handler rules, answers
 * from the table, and hands everything else to the forwarding path.
 */
#include "resolver/resolver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nds/nds.h"
#include "resolver/answer.h"
#include "resolver/cache.h"
#include "resolver/fwd.h"
#include "resolver/random.h"
#include "resolver/wire.h"

struct rsv {
	struct event_base *base;  /* borrowed; drives forwarding */
	struct rsv_rng rng;       /* D6 random source */
	struct rsv_random random; /* its default: getrandom() bytes */
	struct rsv_stats stats;   /* counters for the admin surface */
	struct fwd *fwd;          /* the upstreams (SPEC §4) */
	struct rsv_cache *cache;  /* forwarded answers, or NULL */
	uint32_t cache_seed;      /* of its key hash */
	rsv_log_fn log;           /* query log, or NULL */
	int fwd_before_sync;      /* no table yet: forward, not SERVFAIL */
	uint8_t out[RSV_MSG_MAX]; /* reply scratch, used within one call */
};

const double rsv_local_bucket_bounds[RSV_LOCAL_BUCKETS] = {
    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.01};

static uint32_t
rsv_default_rand(uint32_t bound, void *arg)
{
	return rsv_random_uniform(arg, bound);
}

int
rsv_create(struct event_base *base, const struct rsv_config *cfg,
    struct rsv **out, char *err, size_t errlen)
{
	static const struct rsv_config none;
	struct rsv *r;
	int rc;

	*out = NULL;
	if (cfg == NULL)
		cfg = &none;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->base = base;
	r->log = cfg->log_reply;
	r->fwd_before_sync = cfg->forward_before_sync;
	rsv_random_init(&r->random);
	r->rng.fn = rsv_default_rand;
	r->rng.arg = &r->random;
	if (cfg->rand != NULL) {
		r->rng.fn = cfg->rand;
		r->rng.arg = cfg->rand_arg;
	}
	if (cfg->cache_entries > 0) {
		struct rsv_cache_config cc = {
		    .max_entries = cfg->cache_entries,
		    .max_bytes = cfg->cache_bytes,
		    .max_ttl = cfg->cache_max_ttl,
		    .max_neg_ttl = cfg->cache_max_neg_ttl,
		    .max_stale = cfg->cache_max_stale,
		};

		if ((rc = rsv_cache_create(&cc, &r->stats.cache, &r->cache)) !=
		    0) {
			snprintf(err, errlen, "cache: %s",
			    rc == -EINVAL ? "bad size" : "out of memory");
			free(r);
			return rc;
		}
		r->cache_seed = r->rng.fn(UINT32_MAX, r->rng.arg);
	}
	if ((rc = fwd_create(base, cfg, &r->rng, &r->stats, r->cache, &r->fwd,
	         err, errlen)) != 0) {
		rsv_cache_destroy(r->cache);
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void
rsv_destroy(struct rsv *r)
{
	if (r == NULL)
		return;
	fwd_destroy(r->fwd); /* pending clients hear first */
	rsv_cache_destroy(r->cache);
	free(r);
}

void
rsv_cache_clear(struct rsv *r)
{
	if (r->cache != NULL)
		rsv_cache_flush(r->cache);
}

void
rsv_cache_list(const struct rsv *r, rsv_cache_visit_fn fn, void *arg)
{
	struct timespec now;

	if (r->cache == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	rsv_cache_walk(r->cache, rsv_ms(&now), fn, arg);
}

int
rsv_reply_describe(const uint8_t *reply, size_t len, char *name, size_t namecap,
    uint16_t *qtype, int *rcode)
{
	uint8_t wname[RSV_NAME_MAX];
	size_t off = RSV_HDR_LEN, wlen, tlen;

	name[0] = '\0';
	*qtype = 0;
	*rcode = -1;
	if (len < RSV_HDR_LEN)
		return len == 0 ? 0 : -EINVAL;
	*rcode = RSV_RCODE(rsv_get16(reply + 2));
	if (rsv_get16(reply + 4) == 0)
		return 0;
	if (rsv_name_parse(reply, len, &off, wname, &wlen) != 0 ||
	    off + 4 > len)
		return -EINVAL;
	*qtype = rsv_get16(reply + off);
	if (rsv_name_to_text(wname, wlen, 0, name, namecap, &tlen) != 0)
		snprintf(name, namecap, "(unprintable)");
	return 0;
}

const char *
rsv_type_name(uint16_t qtype)
{
	switch (qtype) {
	case RSV_TYPE_A:
		return "A";
	case RSV_TYPE_NS:
		return "NS";
	case RSV_TYPE_CNAME:
		return "CNAME";
	case RSV_TYPE_SOA:
		return "SOA";
	case RSV_TYPE_PTR:
		return "PTR";
	case RSV_TYPE_MX:
		return "MX";
	case RSV_TYPE_TXT:
		return "TXT";
	case RSV_TYPE_AAAA:
		return "AAAA";
	case RSV_TYPE_SRV:
		return "SRV";
	case 64:
		return "SVCB";
	case 65:
		return "HTTPS";
	case RSV_TYPE_ANY:
		return "ANY";
	}
	return NULL;
}

size_t
rsv_upstreams(const struct rsv *r, const char *const **names,
    const uint64_t **failures)
{
	return fwd_upstreams(r->fwd, names, failures);
}

const struct rsv_stats *
rsv_stats(const struct rsv *r)
{
	return &r->stats;
}

static void
rsv_count_reply(struct rsv *r, enum rsv_source src, const uint8_t *reply,
    size_t len)
{
	unsigned rcode;

	if (len < RSV_HDR_LEN)
		return;
	rcode = RSV_RCODE(rsv_get16(reply + 2));
	r->stats.responses[src][rcode]++;
}

void
rsv_deliver(rsv_log_fn log, enum rsv_transport tr, enum rsv_source src,
    int malformed, const struct timespec *t0, rsv_reply_fn cb, void *arg,
    const uint8_t *reply, size_t len)
{
	if (log != NULL) {
		struct rsv_reply_info info = {tr, src, malformed, t0};

		log(&info, reply, len, arg);
	}
	cb(reply, len, arg);
}

double
rsv_reply_seconds(const struct rsv_reply_info *info)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - info->start->tv_sec) +
	       (double)(t1.tv_nsec - info->start->tv_nsec) / 1e9;
}

/* Replies with an rcode of our own (SERVFAIL, FORMERR, ...). */
static void
rsv_reply_error(struct rsv *r, const struct rsv_query *q, int rcode,
    int malformed, enum rsv_transport tr, const struct timespec *t0,
    rsv_reply_fn cb, void *arg)
{
	size_t len = 0;

	/* Our OPT goes on handler errors, never on pre-handler ones. */
	if (rsv_answer_error(q, rcode, !malformed, r->out, sizeof(r->out),
	        &len) != 0)
		len = 0; /* cannot happen: a question always fits */
	if (len > 0)
		r->stats.responses[RSV_SRC_ERROR][rcode < 24 ? rcode : 23]++;
	else
		r->stats.dropped++;
	rsv_deliver(r->log, tr, RSV_SRC_ERROR, malformed, t0, cb, arg,
	    len > 0 ? r->out : NULL, len);
}

/* The local answer latency histogram: lookup and reply building. */
static void
rsv_count_local_time(struct rsv *r, const struct timespec *t0)
{
	struct timespec t1;
	double secs;
	size_t b;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
	for (b = 0; b < RSV_LOCAL_BUCKETS && secs > rsv_local_bucket_bounds[b];
	     b++)
		;
	r->stats.local_duration[b]++;
	r->stats.local_duration_sum += secs;
}

/*
 * A query the table does not answer, with cache key k: from the cache
 * when it holds a fresh answer (and then, if the entry is popular and
 * about to expire, a prefetch behind it), else forwarded (SPEC §4).
 */
static void
rsv_forward_cached(struct rsv *r, const struct rsv_query *q,
    const struct rsv_cache_key *k, const uint8_t *pkt, size_t len,
    enum rsv_transport tr, const struct timespec *t0, rsv_reply_fn cb,
    void *arg)
{
	uint64_t now = rsv_ms(t0);
	struct rsv_cache_entry *e;
	size_t outlen = 0;
	int prefetch;

	switch (rsv_cache_lookup(r->cache, k, now, &e, &prefetch)) {
	case RSV_CACHE_FRESH:
		if (rsv_cache_render(e, q, now, 0,
		        tr == RSV_TCP ? RSV_MSG_MAX : rsv_udp_limit(q), r->out,
		        sizeof(r->out), &outlen) != 0) {
			rsv_reply_error(r, q, RSV_SERVFAIL, 0, tr, t0, cb, arg);
			return;
		}
		rsv_count_reply(r, RSV_SRC_FORWARDED, r->out, outlen);
		rsv_deliver(r->log, tr, RSV_SRC_FORWARDED, 0, t0, cb, arg,
		    r->out, outlen);
		if (prefetch)
			fwd_refresh(r->fwd, k, q, pkt, len, tr, 1);
		return;
	case RSV_CACHE_STALE:
		fwd_query_cached(r->fwd, k, q, pkt, len, tr, t0, cb, arg, 1);
		return;
	case RSV_CACHE_MISS:
		break;
	}
	fwd_query_cached(r->fwd, k, q, pkt, len, tr, t0, cb, arg, 0);
}

static unsigned
rsv_qtype_class(uint16_t qtype)
{
	return qtype == RSV_TYPE_A ? 0 : qtype == RSV_TYPE_AAAA ? 1 : 2;
}

int
rsv_query(struct rsv *r, const struct nds_table *t, const uint8_t *pkt,
    size_t len, enum rsv_transport tr, rsv_reply_fn cb, void *arg)
{
	struct rsv_query q;
	struct timespec t0;
	enum rsv_parse pr;
	size_t outlen;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pr = rsv_query_parse(pkt, len, &q);
	if (pr == RSV_PARSE_DROP) {
		r->stats.malformed++;
		r->stats.dropped++;
		rsv_deliver(r->log, tr, RSV_SRC_ERROR, 1, &t0, cb, arg, NULL,
		    0);
		return 0;
	}
	if (pr != RSV_PARSE_OK) {
		r->stats.malformed++;
		rsv_reply_error(r, &q, rsv_parse_rcode(pr), 1, tr, &t0, cb,
		    arg);
		return 0;
	}
	r->stats.requests++;
	r->stats.queries[tr][rsv_qtype_class(q.qtype)]++;
	if (t == NULL && r->fwd_before_sync) { /* D7 */
		fwd_query(r->fwd, &q, pkt, len, tr, &t0, cb, arg);
		return 0;
	}
	if (t == NULL) { /* D7: no table yet */
		rsv_reply_error(r, &q, RSV_SERVFAIL, 0, tr, &t0, cb, arg);
		return 0;
	}
	rc = rsv_answer_local(t, &q, tr, &r->rng, r->out, sizeof(r->out),
	    &outlen);
	if (rc == -ENOENT) { /* not ours: the cluster resolver's */
		struct rsv_cache_key k;

		if (r->cache != NULL &&
		    rsv_cache_key_make(&q, r->cache_seed, &k) == 0)
			rsv_forward_cached(r, &q, &k, pkt, len, tr, &t0, cb,
			    arg);
		else
			fwd_query(r->fwd, &q, pkt, len, tr, &t0, cb, arg);
		return 0;
	}
	if (rc != 0) { /* out of memory for a huge shuffle */
		rsv_reply_error(r, &q, RSV_SERVFAIL, 0, tr, &t0, cb, arg);
		return 0;
	}
	rsv_count_reply(r, RSV_SRC_LOCAL, r->out, outlen);
	rsv_count_local_time(r, &t0);
	rsv_deliver(r->log, tr, RSV_SRC_LOCAL, 0, &t0, cb, arg, r->out, outlen);
	return 0;
}
