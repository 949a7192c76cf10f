/*
 * Unit tests for resolver/cache.c: keys, what is stored and for how long
 * (RFC 2308 negative answers, caps, what is never cached), replies for
 * clients (ID, RD, case, TTL countdown, stale TTL, truncation), expiry and
 * the stale window, prefetch, LRU and the entry/byte bounds (also under a
 * million unique names), allocation failures.  The clock is a parameter:
 * times below are milliseconds.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test/unit/allocfail.h"

#define malloc counted_malloc
#define calloc counted_calloc
#include "resolver/cache.c"
#undef malloc
#undef calloc

#define SEED 0x5eed
#define T0 1000000 /* ms; any start will do */

/* ---- building messages ---- */

static size_t
wname(const char *text, uint8_t *out)
{
	size_t len;

	assert_int_equal(rsv_name_from_text(text, strlen(text), out,
	                     RSV_NAME_MAX, &len),
	    0);
	return len;
}

/* A client query: id, flags, name (case as given), type; EDNS when
 * edns is set (DO from do_bit, options opts/optlen). */
static void
make_query(struct rsv_query *q, uint16_t id, uint16_t flags, const char *name,
    uint16_t qtype, int edns, int do_bit, const uint8_t *opts, uint16_t optlen)
{
	memset(q, 0, sizeof(*q));
	q->hdr.id = id;
	q->hdr.flags = flags;
	q->hdr.qdcount = 1;
	q->has_question = 1;
	q->qname_len = wname(name, q->qname);
	q->qtype = qtype;
	q->qclass = RSV_CLASS_IN;
	if (edns) {
		q->opt.present = 1;
		q->opt.udp_size = 1232;
		q->opt.flags = do_bit ? RSV_EDNS_DO : 0;
		q->opt.rdata = opts;
		q->opt.rdlen = optlen;
	}
}

static void
key_of(const struct rsv_query *q, struct rsv_cache_key *k)
{
	assert_int_equal(rsv_cache_key_make(q, SEED, k), 0);
}

/* One RR of a reply: section 1..3, owner, type, TTL, rdata. */
struct rr_spec {
	int section;
	const char *owner;
	uint16_t type;
	uint32_t ttl;
	const uint8_t *rdata;
	uint16_t rdlen;
};

static const uint8_t ip1[4] = {192, 0, 2, 1};
static const uint8_t ip2[4] = {192, 0, 2, 2};

/* SOA rdata with the given MINIMUM. */
static uint16_t
soa_rdata(uint8_t *out, uint32_t minimum)
{
	size_t n = wname("ns.example.", out), m;

	m = wname("host.example.", out + n);
	n += m;
	rsv_put32(out + n, 1);
	rsv_put32(out + n + 4, 3600);
	rsv_put32(out + n + 8, 600);
	rsv_put32(out + n + 12, 86400);
	rsv_put32(out + n + 16, minimum);
	return (uint16_t)(n + 20);
}

/* The reply an upstream gives: question name as given, flags (rcode
 * included), the RRs, then an OPT (with options) when opt is set. */
static size_t
make_reply(uint8_t *buf, size_t cap, uint16_t id, uint16_t flags,
    const char *qname, uint16_t qtype, const struct rr_spec *rrs, size_t n,
    int opt, const uint8_t *opts, uint16_t optlen)
{
	struct rsv_writer w;
	struct rsv_hdr h = {0};
	uint8_t name[RSV_NAME_MAX], owner[RSV_NAME_MAX];
	size_t nlen = wname(qname, name), olen, i;
	int sec;

	rsv_writer_init(&w, buf, cap, cap);
	assert_int_equal(rsv_writer_question(&w, name, nlen, qtype,
	                     RSV_CLASS_IN),
	    0);
	for (sec = 1; sec <= 3; sec++) {
		rsv_writer_section(&w, sec);
		for (i = 0; i < n; i++) {
			if (rrs[i].section != sec)
				continue;
			olen = wname(rrs[i].owner, owner);
			assert_int_equal(rsv_writer_rr(&w, owner, olen,
			                     rrs[i].type, RSV_CLASS_IN,
			                     rrs[i].ttl, rrs[i].rdata,
			                     rrs[i].rdlen),
			    0);
		}
	}
	if (opt)
		assert_int_equal(rsv_writer_opt(&w, 4096, 0, 0, 0, opts,
		                     optlen),
		    0);
	h.id = id;
	h.flags = (uint16_t)(RSV_F_QR | RSV_F_RA | flags);
	return rsv_writer_finish(&w, &h);
}

/* A positive answer: name A ip1 (ttl1), name A ip2 (ttl2). */
static size_t
reply_a(uint8_t *buf, const char *name, uint32_t ttl1, uint32_t ttl2)
{
	struct rr_spec rrs[] = {{1, name, RSV_TYPE_A, ttl1, ip1, 4},
	    {1, name, RSV_TYPE_A, ttl2, ip2, 4}};

	return make_reply(buf, RSV_MSG_MAX, 0x1111, RSV_F_RD, name, RSV_TYPE_A,
	    rrs, 2, 0, NULL, 0);
}

/* ---- the cache under test ---- */

struct fixture {
	struct rsv_cache_stats stats;
	struct rsv_cache *c;
	uint8_t reply[RSV_MSG_MAX];
	uint8_t out[RSV_MSG_MAX];
};

static struct fixture *
setup_with(size_t entries, size_t bytes, uint32_t max_ttl, uint32_t neg,
    uint32_t stale)
{
	struct rsv_cache_config cfg = {entries, bytes, max_ttl, neg, stale};
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	assert_int_equal(rsv_cache_create(&cfg, &fx->stats, &fx->c), 0);
	return fx;
}

static struct fixture *
setup(void)
{
	return setup_with(100, 1 << 20, 300, 30, 3600);
}

static void
teardown(struct fixture *fx)
{
	rsv_cache_destroy(fx->c);
	assert_int_equal(fx->stats.entries, 0);
	assert_int_equal(fx->stats.bytes, 0);
	free(fx);
}

/* Builds an entry for q from len bytes of fx->reply and inserts it. */
static struct rsv_cache_entry *
store(struct fixture *fx, const struct rsv_query *q, size_t len, uint64_t now)
{
	struct rsv_cache_key k;
	struct rsv_cache_entry *e;

	key_of(q, &k);
	assert_int_equal(rsv_cache_entry_build(fx->c, &k, fx->reply, len, now,
	                     &e),
	    0);
	rsv_cache_insert(fx->c, e);
	return rsv_cache_peek(fx->c, &k, now);
}

/* Looks q up at now; on a hit, renders it for q into fx->out. */
static enum rsv_cache_state
ask(struct fixture *fx, const struct rsv_query *q, uint64_t now, size_t limit,
    size_t *outlen, int *prefetch)
{
	struct rsv_cache_key k;
	struct rsv_cache_entry *e;
	enum rsv_cache_state st;
	int pf;

	key_of(q, &k);
	st = rsv_cache_lookup(fx->c, &k, now, &e, prefetch ? prefetch : &pf);
	if (st != RSV_CACHE_MISS)
		assert_int_equal(rsv_cache_render(e, q, now,
		                     st == RSV_CACHE_STALE, limit, fx->out,
		                     sizeof(fx->out), outlen),
		    0);
	return st;
}

/* The TTL of the i-th RR after the question of a rendered reply. */
static uint32_t
rr_ttl(const uint8_t *msg, size_t len, int i)
{
	uint8_t name[RSV_NAME_MAX];
	size_t off = RSV_HDR_LEN, nlen;

	assert_int_equal(rsv_name_parse(msg, len, &off, name, &nlen), 0);
	off += 4;
	for (;;) {
		assert_int_equal(rsv_name_parse(msg, len, &off, name, &nlen),
		    0);
		if (i-- == 0)
			return rsv_get32(msg + off + 4);
		off += 10 + rsv_get16(msg + off + 8);
	}
}

/* ---- keys ---- */

static void
test_key_is_case_blind_and_tells_do_cd_edns_apart(void **state)
{
	struct rsv_query q;
	struct rsv_cache_key a, b;

	(void)state;
	make_query(&q, 1, RSV_F_RD, "WWW.Example.COM.", RSV_TYPE_A, 0, 0, NULL,
	    0);
	key_of(&q, &a);
	make_query(&q, 2, 0, "www.example.com.", RSV_TYPE_A, 0, 0, NULL, 0);
	key_of(&q, &b);
	assert_true(rsv_cache_key_equal(&a, &b));
	assert_memory_equal(a.name, "\3www\7example\3com", 17);
	make_query(&q, 1, RSV_F_RD | RSV_F_CD, "www.example.com.", RSV_TYPE_A,
	    0, 0, NULL, 0);
	key_of(&q, &b);
	assert_false(rsv_cache_key_equal(&a, &b));
	make_query(&q, 1, RSV_F_RD, "www.example.com.", RSV_TYPE_A, 1, 0, NULL,
	    0);
	key_of(&q, &b);
	assert_false(rsv_cache_key_equal(&a, &b));
	assert_int_equal(b.flags, RSV_CK_EDNS);
	make_query(&q, 1, RSV_F_RD, "www.example.com.", RSV_TYPE_A, 1, 1, NULL,
	    0);
	key_of(&q, &b);
	assert_int_equal(b.flags, RSV_CK_EDNS | RSV_CK_DO);
	make_query(&q, 1, RSV_F_RD, "www.example.com.", RSV_TYPE_AAAA, 0, 0,
	    NULL, 0);
	key_of(&q, &b);
	assert_false(rsv_cache_key_equal(&a, &b));
}

static void
test_key_refuses_queries_that_must_bypass_the_cache(void **state)
{
	static const uint8_t ecs[] = {0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2};
	static const uint8_t cookie_pad[] = {
	    0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 12, 0, 2, 0, 0};
	static const uint8_t nsid[] = {0, 3, 0, 0};
	struct rsv_query q;
	struct rsv_cache_key k;

	(void)state;
	make_query(&q, 1, 0, "a.example.", RSV_TYPE_A, 1, 0, ecs, sizeof(ecs));
	assert_int_equal(rsv_cache_key_make(&q, SEED, &k), -ENOENT);
	make_query(&q, 1, 0, "a.example.", RSV_TYPE_A, 1, 0, nsid,
	    sizeof(nsid));
	assert_int_equal(rsv_cache_key_make(&q, SEED, &k), -ENOENT);
	make_query(&q, 1, 0, "a.example.", RSV_TYPE_A, 1, 0, cookie_pad,
	    sizeof(cookie_pad));
	assert_int_equal(rsv_cache_key_make(&q, SEED, &k), 0);
	make_query(&q, 1, 4 << 11, "a.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	assert_int_equal(rsv_cache_key_make(&q, SEED, &k),
	    -ENOENT); /* NOTIFY */
	make_query(&q, 1, 0, "a.example.", 252, 0, 0, NULL, 0);
	assert_int_equal(rsv_cache_key_make(&q, SEED, &k), -ENOENT); /* AXFR */
	make_query(&q, 1, 0, "a.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	q.has_tsig = 1;
	assert_int_equal(rsv_cache_key_make(&q, SEED, &k), -ENOENT);
	make_query(&q, 1, 0, "a.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	q.has_question = 0;
	assert_int_equal(rsv_cache_key_make(&q, SEED, &k), -ENOENT);
}

/* ---- positive answers ---- */

static void
test_hit_gets_client_id_rd_and_case_and_ttls_count_down(void **state)
{
	struct fixture *fx = setup();
	struct rsv_query q1, q2;
	size_t len, olen;

	(void)state;
	make_query(&q1, 0x1111, RSV_F_RD, "www.example.com.", RSV_TYPE_A, 0, 0,
	    NULL, 0);
	len = reply_a(fx->reply, "www.example.com.", 100, 60);
	store(fx, &q1, len, T0);
	make_query(&q2, 0xbeef, 0, "WwW.ExAmPlE.cOm.", RSV_TYPE_A, 0, 0, NULL,
	    0);
	assert_int_equal(ask(fx, &q2, T0 + 10500, 512, &olen, NULL),
	    RSV_CACHE_FRESH);
	assert_int_equal(olen, len);
	assert_int_equal(rsv_get16(fx->out), 0xbeef);
	assert_int_equal(rsv_get16(fx->out + 2) & RSV_F_RD, 0);
	assert_memory_equal(fx->out + RSV_HDR_LEN, q2.qname, q2.qname_len);
	/* TTL = the smallest (60); every RR counts down to it: 60 - 10. */
	assert_int_equal(rr_ttl(fx->out, olen, 0), 50);
	assert_int_equal(rr_ttl(fx->out, olen, 1), 50);
	assert_int_equal(ask(fx, &q1, T0 + 59999, 512, &olen, NULL),
	    RSV_CACHE_FRESH);
	assert_int_equal(rsv_get16(fx->out), 0x1111);
	assert_int_not_equal(rsv_get16(fx->out + 2) & RSV_F_RD, 0);
	assert_int_equal(rr_ttl(fx->out, olen, 0), 1);
	/* never served past expiry except as stale */
	assert_int_equal(ask(fx, &q1, T0 + 60000, 512, &olen, NULL),
	    RSV_CACHE_STALE);
	assert_int_equal(rr_ttl(fx->out, olen, 0), RSV_CACHE_STALE_TTL);
	assert_int_equal(rr_ttl(fx->out, olen, 1), RSV_CACHE_STALE_TTL);
	assert_int_equal(fx->stats.hits, 2);
	assert_int_equal(fx->stats.misses, 1);
	teardown(fx);
}

static void
test_ttl_capped_by_max_ttl(void **state)
{
	struct fixture *fx = setup_with(10, 1 << 20, 300, 30, 3600);
	struct rsv_query q;
	size_t len, olen;

	(void)state;
	make_query(&q, 1, 0, "long.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	len = reply_a(fx->reply, "long.example.", 86400, 86400);
	store(fx, &q, len, T0);
	assert_int_equal(ask(fx, &q, T0, 512, &olen, NULL), RSV_CACHE_FRESH);
	assert_int_equal(rr_ttl(fx->out, olen, 0), 300);
	assert_int_equal(ask(fx, &q, T0 + 300000, 512, &olen, NULL),
	    RSV_CACHE_STALE);
	teardown(fx);
}

static void
test_stale_window_then_gone(void **state)
{
	struct fixture *fx = setup_with(10, 1 << 20, 300, 30, 100);
	struct rsv_query q;
	struct rsv_cache_key k;
	size_t len, olen;

	(void)state;
	make_query(&q, 1, 0, "s.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	len = reply_a(fx->reply, "s.example.", 10, 10);
	store(fx, &q, len, T0);
	assert_int_equal(ask(fx, &q, T0 + 10000 + 99999, 512, &olen, NULL),
	    RSV_CACHE_STALE);
	key_of(&q, &k);
	assert_non_null(rsv_cache_peek(fx->c, &k, T0 + 10000 + 99999));
	assert_null(rsv_cache_peek(fx->c, &k, T0 + 10000 + 100000));
	assert_int_equal(ask(fx, &q, T0 + 10000 + 100000, 512, &olen, NULL),
	    RSV_CACHE_MISS);
	assert_int_equal(fx->stats.entries, 0); /* dropped */
	teardown(fx);
}

static void
test_never_cached(void **state)
{
	struct fixture *fx = setup();
	struct rsv_query q;
	struct rsv_cache_key k;
	struct rsv_cache_entry *e;
	struct rr_spec a = {1, "n.example.", RSV_TYPE_A, 30, ip1, 4};
	struct rr_spec a0 = {1, "n.example.", RSV_TYPE_A, 0, ip1, 4};
	struct rr_spec tsig[] = {{1, "n.example.", RSV_TYPE_A, 30, ip1, 4},
	    {3, "key.", RSV_TYPE_TSIG, 30, ip1, 4}};
	struct {
		uint16_t flags;
		const struct rr_spec *rr;
		size_t n;
	} cases[] = {
	    {RSV_F_TC, &a, 1},     /* truncated */
	    {RSV_SERVFAIL, &a, 1}, /* failures */
	    {RSV_REFUSED, &a, 1}, {RSV_FORMERR, &a, 1}, {RSV_NOTIMP, &a, 1},
	    {0, &a0, 1},             /* TTL 0 */
	    {0, tsig, 2},            /* signed */
	    {RSV_NXDOMAIN, NULL, 0}, /* negative without SOA */
	    {0, NULL, 0},            /* NODATA without SOA */
	};
	size_t i, len;

	(void)state;
	make_query(&q, 1, 0, "n.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	key_of(&q, &k);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = make_reply(fx->reply, sizeof(fx->reply), 1,
		    cases[i].flags, "n.example.", RSV_TYPE_A, cases[i].rr,
		    cases[i].n, 0, NULL, 0);
		assert_int_equal(rsv_cache_entry_build(fx->c, &k, fx->reply,
		                     len, T0, &e),
		    0);
		assert_false(rsv_cache_entry_cacheable(e));
		rsv_cache_insert(fx->c, e); /* frees it */
		assert_int_equal(fx->stats.entries, 0);
	}
	teardown(fx);
}

static void
test_reply_must_answer_the_key(void **state)
{
	struct fixture *fx = setup();
	struct rsv_query q;
	struct rsv_cache_key k;
	struct rsv_cache_entry *e;
	size_t len;

	(void)state;
	len = reply_a(fx->reply, "other.example.", 30, 30);
	make_query(&q, 1, 0, "n.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	key_of(&q, &k);
	assert_int_equal(rsv_cache_entry_build(fx->c, &k, fx->reply, len, T0,
	                     &e),
	    -EINVAL);
	make_query(&q, 1, 0, "other.example.", RSV_TYPE_AAAA, 0, 0, NULL, 0);
	key_of(&q, &k);
	assert_int_equal(rsv_cache_entry_build(fx->c, &k, fx->reply, len, T0,
	                     &e),
	    -EINVAL);
	make_query(&q, 1, 0, "other.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	key_of(&q, &k);
	/* a name that reads the ID bytes (owner: a pointer to offset 0,
	 * the ID's high byte 0: the root) would change with the client's
	 * ID: refused, though valid as received */
	memcpy(fx->out, fx->reply, len);
	rsv_put16(fx->out, 0x0011);
	fx->out[RSV_HDR_LEN + k.nlen + 4] = 0xc0;
	fx->out[RSV_HDR_LEN + k.nlen + 5] = 0x00;
	assert_int_equal(rsv_msg_check(fx->out, len), 0);
	assert_int_equal(rsv_cache_entry_build(fx->c, &k, fx->out, len, T0, &e),
	    -EINVAL);
	/* every cut of the reply is refused, never read past */
	while (--len > 0)
		assert_int_equal(rsv_cache_entry_build(fx->c, &k, fx->reply,
		                     len, T0, &e),
		    -EINVAL);
	teardown(fx);
}

/* ---- negative answers (RFC 2308) ---- */

static size_t
reply_negative(uint8_t *buf, const char *name, uint16_t rcode, uint32_t soa_ttl,
    uint32_t minimum)
{
	static uint8_t soa[RSV_NAME_MAX * 2 + 20];
	struct rr_spec rr = {2, "example.", RSV_TYPE_SOA, soa_ttl, soa, 0};

	rr.rdlen = soa_rdata(soa, minimum);
	return make_reply(buf, RSV_MSG_MAX, 1, rcode, name, RSV_TYPE_A, &rr, 1,
	    0, NULL, 0);
}

static void
test_negative_ttl_is_soa_min_capped(void **state)
{
	struct fixture *fx = setup_with(10, 1 << 20, 300, 30, 3600);
	struct rsv_query q;
	size_t len, olen;

	(void)state;
	/* NXDOMAIN: min(SOA TTL 3600, MINIMUM 10) = 10 */
	make_query(&q, 1, 0, "nx.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	len = reply_negative(fx->reply, "nx.example.", RSV_NXDOMAIN, 3600, 10);
	store(fx, &q, len, T0);
	assert_int_equal(ask(fx, &q, T0 + 2000, 512, &olen, NULL),
	    RSV_CACHE_FRESH);
	assert_int_equal(RSV_RCODE(rsv_get16(fx->out + 2)), RSV_NXDOMAIN);
	assert_int_equal(rr_ttl(fx->out, olen, 0), 8);
	assert_int_equal(ask(fx, &q, T0 + 10000, 512, &olen, NULL),
	    RSV_CACHE_STALE);
	/* NODATA: min(SOA TTL 20, MINIMUM 900) = 20 */
	make_query(&q, 1, 0, "nodata.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	len =
	    reply_negative(fx->reply, "nodata.example.", RSV_NOERROR, 20, 900);
	store(fx, &q, len, T0);
	assert_int_equal(ask(fx, &q, T0 + 19999, 512, &olen, NULL),
	    RSV_CACHE_FRESH);
	assert_int_equal(ask(fx, &q, T0 + 20000, 512, &olen, NULL),
	    RSV_CACHE_STALE);
	/* capped by --cache-max-negative-ttl (30) */
	make_query(&q, 1, 0, "nx2.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	len =
	    reply_negative(fx->reply, "nx2.example.", RSV_NXDOMAIN, 3600, 3600);
	store(fx, &q, len, T0);
	assert_int_equal(ask(fx, &q, T0, 512, &olen, NULL), RSV_CACHE_FRESH);
	assert_int_equal(rr_ttl(fx->out, olen, 0), 30);
	assert_int_equal(ask(fx, &q, T0 + 30000, 512, &olen, NULL),
	    RSV_CACHE_STALE);
	teardown(fx);
}

static void
test_negative_ttl_zero_disables_negative_caching(void **state)
{
	struct fixture *fx = setup_with(10, 1 << 20, 300, 0, 3600);
	struct rsv_query q;
	struct rsv_cache_key k;
	struct rsv_cache_entry *e;
	size_t len;

	(void)state;
	make_query(&q, 1, 0, "nx.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	key_of(&q, &k);
	len = reply_negative(fx->reply, "nx.example.", RSV_NXDOMAIN, 60, 60);
	assert_int_equal(rsv_cache_entry_build(fx->c, &k, fx->reply, len, T0,
	                     &e),
	    0);
	assert_false(rsv_cache_entry_cacheable(e));
	rsv_cache_entry_free(e);
	teardown(fx);
}

/* ---- EDNS ---- */

static void
test_cookie_and_padding_taken_out_other_options_kept(void **state)
{
	static const uint8_t opts[] = {0, 10, 0, 16, 1, 2, 3, 4, 5, 6, 7, 8, 9,
	    9, 9, 9, 9, 9, 9, 9,   /* COOKIE */
	    0, 3, 0, 2, 'n', 's',  /* NSID */
	    0, 12, 0, 3, 0, 0, 0}; /* PADDING */
	struct fixture *fx = setup();
	struct rsv_query q;
	struct rsv_cache_key k;
	struct rsv_cache_entry *e;
	struct rr_spec rr = {1, "e.example.", RSV_TYPE_A, 30, ip1, 4};
	size_t len, olen;

	(void)state;
	make_query(&q, 7, 0, "e.example.", RSV_TYPE_A, 1, 1, NULL, 0);
	key_of(&q, &k);
	len = make_reply(fx->reply, sizeof(fx->reply), 7, 0, "e.example.",
	    RSV_TYPE_A, &rr, 1, 1, opts, sizeof(opts));
	assert_int_equal(rsv_cache_entry_build(fx->c, &k, fx->reply, len, T0,
	                     &e),
	    0);
	assert_true(rsv_cache_entry_cacheable(e));
	assert_int_equal(rsv_cache_render(e, &q, T0, 0, 4096, fx->out,
	                     sizeof(fx->out), &olen),
	    0);
	assert_int_equal(olen, len - 20 - 7);
	assert_int_equal(rsv_msg_check(fx->out, olen), 0);
	/* what is left of the OPT (last) is exactly the NSID option */
	assert_memory_equal(fx->out + olen - 6, "\0\3\0\2ns", 6);
	assert_int_equal(rsv_get16(fx->out + olen - 8), 6); /* rdlen */
	rsv_cache_entry_free(e);
	teardown(fx);
}

/* ---- truncation for a smaller client ---- */

static void
test_big_cached_reply_truncated_for_small_client(void **state)
{
	struct fixture *fx = setup();
	struct rr_spec rrs[100];
	uint8_t ips[100][4];
	struct rsv_query q_udp, q_edns;
	size_t len, olen, i;
	int pf;

	(void)state;
	for (i = 0; i < 100; i++) {
		ips[i][0] = 10, ips[i][1] = 0, ips[i][2] = 0;
		ips[i][3] = (uint8_t)i;
		rrs[i] = (struct rr_spec){
		    1, "big.example.", RSV_TYPE_A, 60, ips[i], 4};
	}
	make_query(&q_udp, 9, RSV_F_RD, "BIG.example.", RSV_TYPE_A, 0, 0, NULL,
	    0);
	len = make_reply(fx->reply, sizeof(fx->reply), 9, RSV_F_RD,
	    "big.example.", RSV_TYPE_A, rrs, 100, 0, NULL, 0);
	assert_true(len > 1500);
	store(fx, &q_udp, len, T0);
	/* a non-EDNS UDP client: 512 bytes, TC=1, its ID and case */
	assert_int_equal(ask(fx, &q_udp, T0 + 1000, 512, &olen, &pf),
	    RSV_CACHE_FRESH);
	assert_true(olen <= 512);
	assert_int_not_equal(rsv_get16(fx->out + 2) & RSV_F_TC, 0);
	assert_int_equal(rsv_get16(fx->out), 9);
	assert_memory_equal(fx->out + RSV_HDR_LEN, "\3BIG", 4);
	assert_int_equal(rsv_msg_check(fx->out, olen), 0);
	assert_true(rsv_get16(fx->out + 6) > 20 &&
	            rsv_get16(fx->out + 6) < 100);
	assert_int_equal(rr_ttl(fx->out, olen, 0), 59);
	/* the same entry whole over TCP */
	assert_int_equal(ask(fx, &q_udp, T0 + 1000, RSV_MSG_MAX, &olen, &pf),
	    RSV_CACHE_FRESH);
	assert_int_equal(olen, len);
	assert_int_equal(rsv_get16(fx->out + 2) & RSV_F_TC, 0);
	assert_int_equal(rsv_get16(fx->out + 6), 100);
	/* an EDNS query is another key: a miss */
	make_query(&q_edns, 9, RSV_F_RD, "big.example.", RSV_TYPE_A, 1, 0, NULL,
	    0);
	assert_int_equal(ask(fx, &q_edns, T0 + 1000, 1232, &olen, &pf),
	    RSV_CACHE_MISS);
	teardown(fx);
}

/* ---- prefetch ---- */

static void
test_prefetch_on_second_hit_in_last_tenth(void **state)
{
	struct fixture *fx = setup();
	struct rsv_query q;
	size_t len, olen;
	int pf;

	(void)state;
	make_query(&q, 1, 0, "p.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	len = reply_a(fx->reply, "p.example.", 100, 100);
	store(fx, &q, len, T0);
	/* hits before the last 10 s do not count */
	assert_int_equal(ask(fx, &q, T0 + 50000, 512, &olen, &pf),
	    RSV_CACHE_FRESH);
	assert_false(pf);
	assert_int_equal(ask(fx, &q, T0 + 89999, 512, &olen, &pf),
	    RSV_CACHE_FRESH);
	assert_false(pf);
	assert_int_equal(ask(fx, &q, T0 + 90000, 512, &olen, &pf),
	    RSV_CACHE_FRESH);
	assert_false(pf); /* first late hit */
	assert_int_equal(ask(fx, &q, T0 + 95000, 512, &olen, &pf),
	    RSV_CACHE_FRESH);
	assert_true(pf); /* second: refresh now */
	assert_int_equal(ask(fx, &q, T0 + 96000, 512, &olen, &pf),
	    RSV_CACHE_FRESH);
	assert_false(pf); /* once per entry */
	/* the refreshed entry starts over */
	store(fx, &q, len, T0 + 97000);
	assert_int_equal(ask(fx, &q, T0 + 190000, 512, &olen, &pf),
	    RSV_CACHE_FRESH);
	assert_int_equal(ask(fx, &q, T0 + 191000, 512, &olen, &pf),
	    RSV_CACHE_FRESH);
	assert_true(pf);
	teardown(fx);
}

/* ---- replacing, failing, flushing, listing ---- */

static void
visit_count(const struct rsv_cache_info *e, void *arg)
{
	size_t *n = arg;

	if (*n == 0) { /* the most recent first */
		assert_string_equal(e->name, "b.example.");
		assert_int_equal(e->qtype, RSV_TYPE_A);
		assert_int_equal(e->ttl, 25);
		assert_true(e->size > 0);
	}
	(*n)++;
}

static void
test_replace_fail_flag_walk_flush(void **state)
{
	struct fixture *fx = setup();
	struct rsv_query qa, qb;
	struct rsv_cache_entry *e;
	size_t len, n = 0;

	(void)state;
	make_query(&qa, 1, 0, "a.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	make_query(&qb, 1, 0, "b.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	len = reply_a(fx->reply, "a.example.", 30, 30);
	e = store(fx, &qa, len, T0);
	rsv_cache_entry_set_failed(e);
	assert_true(rsv_cache_entry_failed(e));
	e = store(fx, &qa, len, T0 + 1000); /* replaced, flag gone */
	assert_false(rsv_cache_entry_failed(e));
	assert_int_equal(fx->stats.entries, 1);
	assert_int_equal(fx->stats.evictions, 0);
	len = reply_a(fx->reply, "b.example.", 30, 30);
	store(fx, &qb, len, T0 + 5000);
	rsv_cache_walk(fx->c, T0 + 10000, visit_count, &n);
	assert_int_equal(n, 2);
	rsv_cache_flush(fx->c);
	assert_int_equal(fx->stats.entries, 0);
	assert_int_equal(fx->stats.bytes, 0);
	assert_int_equal(fx->stats.evictions, 0);
	teardown(fx);
}

/* ---- bounds ---- */

static void
test_lru_evicts_least_recently_used(void **state)
{
	struct fixture *fx = setup_with(3, 1 << 20, 300, 30, 3600);
	const char *names[] = {"a.x.", "b.x.", "c.x.", "d.x."};
	struct rsv_query q[4];
	size_t len, olen, i;

	(void)state;
	for (i = 0; i < 3; i++) {
		make_query(&q[i], 1, 0, names[i], RSV_TYPE_A, 0, 0, NULL, 0);
		len = reply_a(fx->reply, names[i], 30, 30);
		store(fx, &q[i], len, T0);
	}
	/* a used again: b is now the least recently used */
	assert_int_equal(ask(fx, &q[0], T0, 512, &olen, NULL), RSV_CACHE_FRESH);
	make_query(&q[3], 1, 0, names[3], RSV_TYPE_A, 0, 0, NULL, 0);
	len = reply_a(fx->reply, names[3], 30, 30);
	store(fx, &q[3], len, T0);
	assert_int_equal(fx->stats.entries, 3);
	assert_int_equal(fx->stats.evictions, 1);
	assert_int_equal(ask(fx, &q[1], T0, 512, &olen, NULL), RSV_CACHE_MISS);
	assert_int_equal(ask(fx, &q[0], T0, 512, &olen, NULL), RSV_CACHE_FRESH);
	assert_int_equal(ask(fx, &q[2], T0, 512, &olen, NULL), RSV_CACHE_FRESH);
	assert_int_equal(ask(fx, &q[3], T0, 512, &olen, NULL), RSV_CACHE_FRESH);
	teardown(fx);
}

static void
test_byte_bound(void **state)
{
	struct fixture *fx = setup_with(1000, 4096, 300, 30, 3600);
	struct rsv_query q;
	struct rsv_cache_key k;
	struct rsv_cache_entry *e;
	struct rr_spec rrs[300];
	char name[64];
	size_t len, i;

	(void)state;
	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "n%zu.example.", i);
		make_query(&q, 1, 0, name, RSV_TYPE_A, 0, 0, NULL, 0);
		len = reply_a(fx->reply, name, 30, 30);
		store(fx, &q, len, T0);
		assert_true(fx->stats.bytes <= 4096);
	}
	assert_true(fx->stats.entries < 50);
	assert_true(fx->stats.evictions > 0);
	/* a reply larger than the whole bound is not stored at all */
	for (i = 0; i < 300; i++)
		rrs[i] = (struct rr_spec){
		    1, "huge.example.", RSV_TYPE_A, 60, ip1, 4};
	make_query(&q, 1, 0, "huge.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	key_of(&q, &k);
	len = make_reply(fx->reply, sizeof(fx->reply), 1, 0, "huge.example.",
	    RSV_TYPE_A, rrs, 300, 0, NULL, 0);
	assert_int_equal(rsv_cache_entry_build(fx->c, &k, fx->reply, len, T0,
	                     &e),
	    0);
	i = fx->stats.entries;
	rsv_cache_insert(fx->c, e);
	assert_int_equal(fx->stats.entries, i); /* nothing evicted for it */
	assert_null(rsv_cache_peek(fx->c, &k, T0));
	teardown(fx);
}

/*
 * A million unique names through a 10,000-entry cache: the bounds hold
 * all along, everything past them is evicted, the newest names are in.
 * The reply bytes are patched in place to keep the test fast.
 */
static void
test_size_bound_under_a_million_unique_names(void **state)
{
	const size_t total = 1000000, cap = 10000;
	struct fixture *fx = setup_with(cap, 4 << 20, 300, 30, 3600);
	struct rsv_query q;
	struct rsv_cache_key k;
	struct rsv_cache_entry *e;
	size_t len, i, olen, max_bytes = 0;

	(void)state;
	make_query(&q, 1, 0, "q0000000.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	len = reply_a(fx->reply, "q0000000.example.", 30, 30);
	for (i = 0; i < total; i++) {
		char digits[8];

		snprintf(digits, sizeof(digits), "%07zu", i);
		memcpy(q.qname + 2, digits, 7);
		memcpy(fx->reply + RSV_HDR_LEN + 2, digits, 7);
		key_of(&q, &k);
		assert_int_equal(rsv_cache_entry_build(fx->c, &k, fx->reply,
		                     len, T0 + i / 1000, &e),
		    0);
		rsv_cache_insert(fx->c, e);
		if (fx->stats.entries > cap)
			fail_msg("%llu entries",
			    (unsigned long long)fx->stats.entries);
		if (fx->stats.bytes > max_bytes)
			max_bytes = fx->stats.bytes;
	}
	assert_true(max_bytes <= (4 << 20));
	assert_int_equal(fx->stats.entries, cap);
	assert_int_equal(fx->stats.evictions, total - cap);
	/* the newest is in, the oldest long gone */
	assert_int_equal(ask(fx, &q, T0 + 1000, 512, &olen, NULL),
	    RSV_CACHE_FRESH);
	memcpy(q.qname + 2, "0000000", 7);
	assert_int_equal(ask(fx, &q, T0 + 1000, 512, &olen, NULL),
	    RSV_CACHE_MISS);
	teardown(fx);
}

/* ---- allocation failures ---- */

/*
 * The bucket array starts at CACHE_BUCKETS_MIN, doubles as entries come
 * (every entry still found after each rehash), stops at the power of two
 * at or above max_entries; a failed doubling keeps the old array and
 * loses nothing.
 */
static void
test_buckets_grow_with_entries(void **state)
{
	const size_t cap = 1000, total = 3000;
	struct fixture *fx = setup_with(cap, 4 << 20, 300, 30, 3600);
	struct rsv_query q;
	size_t len, i, olen;
	char digits[8];

	(void)state;
	assert_int_equal(fx->c->mask + 1, CACHE_BUCKETS_MIN);
	assert_int_equal(fx->c->nbuckets_max, 1024);
	make_query(&q, 1, 0, "g0000000.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	len = reply_a(fx->reply, "g0000000.example.", 30, 30);
	for (i = 0; i < total; i++) {
		snprintf(digits, sizeof(digits), "%07zu", i);
		memcpy(q.qname + 2, digits, 7);
		memcpy(fx->reply + RSV_HDR_LEN + 2, digits, 7);
		if (i == 32) {
			/* 32 entries in 32 buckets: this insert doubles
			 * them; the entry is built, the new array fails */
			struct rsv_cache_key k;
			struct rsv_cache_entry *e;

			assert_int_equal(fx->c->mask + 1, 32);
			key_of(&q, &k);
			assert_int_equal(rsv_cache_entry_build(fx->c, &k,
			                     fx->reply, len, T0, &e),
			    0);
			alloc_fail_at = 0;
			rsv_cache_insert(fx->c, e);
			alloc_fail_at = -1;
			assert_int_equal(fx->c->mask + 1, 32);
			assert_int_equal(ask(fx, &q, T0, 512, &olen, NULL),
			    RSV_CACHE_FRESH);
			continue;
		}
		assert_non_null(store(fx, &q, len, T0));
		assert_true(fx->c->mask + 1 >= fx->stats.entries ||
		            fx->c->mask + 1 == fx->c->nbuckets_max);
	}
	assert_int_equal(fx->c->mask + 1, 1024);
	assert_int_equal(fx->stats.entries, cap);
	/* the last cap names are all there, the ones before are gone */
	for (i = 0; i < total; i++) {
		snprintf(digits, sizeof(digits), "%07zu", i);
		memcpy(q.qname + 2, digits, 7);
		assert_int_equal(ask(fx, &q, T0 + 1, 512, &olen, NULL),
		    i >= total - cap ? RSV_CACHE_FRESH : RSV_CACHE_MISS);
	}
	teardown(fx);
}

static void
test_allocation_failures(void **state)
{
	struct rsv_cache_config cfg = {10, 1 << 20, 300, 30, 3600};
	struct rsv_cache_stats stats = {0};
	struct rsv_cache *c;
	struct fixture *fx = setup();
	struct rsv_query q;
	struct rsv_cache_key k;
	struct rsv_cache_entry *e;
	size_t len;
	long at;
	int rc;

	(void)state;
	for (at = 0; at < 2; at++) {
		alloc_fail_at = at;
		assert_int_equal(rsv_cache_create(&cfg, &stats, &c), -ENOMEM);
		assert_null(c);
	}
	alloc_fail_at = 2;
	assert_int_equal(rsv_cache_create(&cfg, &stats, &c), 0);
	alloc_fail_at = -1;
	rsv_cache_destroy(c);
	cfg.max_entries = 0;
	assert_int_equal(rsv_cache_create(&cfg, &stats, &c), -EINVAL);
	cfg.max_entries = RSV_CACHE_ENTRIES_MAX + 1;
	assert_int_equal(rsv_cache_create(&cfg, &stats, &c), -EINVAL);

	make_query(&q, 1, 0, "m.example.", RSV_TYPE_A, 0, 0, NULL, 0);
	key_of(&q, &k);
	len = reply_a(fx->reply, "m.example.", 30, 30);
	alloc_fail_at = 0;
	rc = rsv_cache_entry_build(fx->c, &k, fx->reply, len, T0, &e);
	alloc_fail_at = -1;
	assert_int_equal(rc, -ENOMEM);
	assert_null(e);
	assert_int_equal(fx->stats.entries, 0);
	teardown(fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_is_case_blind_and_tells_do_cd_edns_apart),
	    cmocka_unit_test(
	        test_key_refuses_queries_that_must_bypass_the_cache),
	    cmocka_unit_test(
	        test_hit_gets_client_id_rd_and_case_and_ttls_count_down),
	    cmocka_unit_test(test_ttl_capped_by_max_ttl),
	    cmocka_unit_test(test_stale_window_then_gone),
	    cmocka_unit_test(test_never_cached),
	    cmocka_unit_test(test_reply_must_answer_the_key),
	    cmocka_unit_test(test_negative_ttl_is_soa_min_capped),
	    cmocka_unit_test(test_negative_ttl_zero_disables_negative_caching),
	    cmocka_unit_test(
	        test_cookie_and_padding_taken_out_other_options_kept),
	    cmocka_unit_test(test_big_cached_reply_truncated_for_small_client),
	    cmocka_unit_test(test_prefetch_on_second_hit_in_last_tenth),
	    cmocka_unit_test(test_replace_fail_flag_walk_flush),
	    cmocka_unit_test(test_lru_evicts_least_recently_used),
	    cmocka_unit_test(test_byte_bound),
	    cmocka_unit_test(test_size_bound_under_a_million_unique_names),
	    cmocka_unit_test(test_buckets_grow_with_entries),
	    cmocka_unit_test(test_allocation_failures),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
