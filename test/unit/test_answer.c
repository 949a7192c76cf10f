/*
 * Unit tests for resolver/answer.c: local replies and error replies, byte
 * by byte (SPEC §3 handler, D2, D6, D9, D11, D17).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nds/nds.h"
#include "resolver/answer.h"
#include "resolver/random.h"
#include "resolver/wire.h"

/* ---- random sources (D6) ---- */

static uint32_t
rand_zero(uint32_t bound, void *arg)
{
	(void)bound, (void)arg;
	return 0;
}

static uint32_t
rand_last(uint32_t bound, void *arg)
{
	(void)arg;
	return bound - 1;
}

/* Replays a script of values. */
struct script {
	const uint32_t *v;
	size_t n, i;
};

static uint32_t
rand_script(uint32_t bound, void *arg)
{
	struct script *s = arg;
	uint32_t v = s->i < s->n ? s->v[s->i] : 0;

	s->i++;
	assert_true(v < bound);
	return v;
}

static void
shuffle_vector(const struct rsv_rng *rng, const uint32_t *want)
{
	uint32_t v[4] = {11, 12, 13, 14}, idx[4] = {0, 1, 2, 3};
	size_t i;

	rsv_shuffle(idx, 4, rng);
	for (i = 0; i < 4; i++)
		assert_int_equal(v[idx[i]], want[i]);
}

static void
test_shuffle_matches_spec_vectors(void **state)
{
	static const uint32_t zero[] = {12, 13, 14, 11};
	static const uint32_t last[] = {11, 12, 13, 14};
	static const uint32_t s100v[] = {1, 0, 0};
	static const uint32_t s100[] = {14, 13, 11, 12};
	struct script sc = {s100v, 3, 0};
	struct rsv_rng r0 = {rand_zero, NULL}, rl = {rand_last, NULL};
	struct rsv_rng rs = {rand_script, &sc};

	(void)state;
	shuffle_vector(&r0, zero);
	shuffle_vector(&rl, last);
	shuffle_vector(&rs, s100);
	assert_int_equal(sc.i, 3); /* n-1 draws */
}

/* ---- the default random source (resolver/random.h) ---- */

/* Fills the pool with a scripted sequence of words, then counts up. */
struct words {
	const uint32_t *v;
	size_t n, i;
	unsigned fills;
};

static void
fill_script(void *buf, size_t len, void *arg)
{
	struct words *w = arg;
	uint32_t *out = buf;
	size_t k, n = len / sizeof(uint32_t);

	w->fills++;
	/* the pool hands out its last word first: fill from the end */
	for (k = n; k > 0; k--, w->i++)
		out[k - 1] = w->i < w->n ? w->v[w->i] : (uint32_t)w->i;
}

static void
test_random_rejects_the_words_that_would_bias(void **state)
{
	/* bound 3: 2^32 mod 3 = 1, so the word 0 is drawn again */
	static const uint32_t v[] = {
	    0, 0, 5, 1, 0xffffffffu, 0x12345678u, 0x7ffffffeu, 0x7fffffffu, 7};
	struct words w = {v, 9, 0, 0};
	struct rsv_random r;

	(void)state;
	rsv_random_init(&r);
	r.fill = fill_script;
	r.fill_arg = &w;
	assert_int_equal(rsv_random_uniform(&r, 3), 2); /* 0, 0, 5 */
	assert_int_equal(rsv_random_uniform(&r, 3), 1); /* 1 */
	assert_int_equal(rsv_random_uniform(&r, 3), 0); /* 2^32-1 */
	/* bound 2^31 + 1: 2^32 mod it is 2^31 - 1, and words below go */
	assert_int_equal(rsv_random_uniform(&r, 0x80000001u), 0x7fffffffu);
	assert_int_equal(rsv_random_uniform(&r, 1), 0); /* draws nothing */
	assert_int_equal(rsv_random_uniform(&r, 0), 0);
	assert_int_equal(rsv_random_uniform(&r, 65536), 7); /* no rejection */
	assert_int_equal(w.fills, 1);
	/* used words are wiped; the pool refills only once it is empty */
	assert_int_equal(r.words[RSV_RANDOM_WORDS - 3], 0); /* was 5 */
	assert_int_equal(r.words[RSV_RANDOM_WORDS - 8], 0); /* was 2^31-1 */
	while (r.left > 0)
		(void)rsv_random_uniform(&r, 65536);
	assert_int_equal(w.fills, 1);
	(void)rsv_random_uniform(&r, 65536);
	assert_int_equal(w.fills, 2);
	assert_int_equal(r.refills, 2);
}

static void
test_random_from_the_kernel_is_uniform_and_batched(void **state)
{
	enum { N = 60000 };
	unsigned count[3] = {0, 0, 0}, big = 0, i;
	struct rsv_random r;

	(void)state;
	rsv_random_init(&r);
	for (i = 0; i < N; i++) {
		uint32_t v = rsv_random_uniform(&r, 3);

		assert_true(v < 3);
		count[v]++;
		if (rsv_random_uniform(&r, 0x80000001u) >= 0x40000000u)
			big++;
	}
	/* 20000 each; 5 standard deviations is ~580 */
	for (i = 0; i < 3; i++)
		assert_in_range(count[i], 19400, 20600);
	/* half of [0, 2^31] lies at or above 2^30; 5 sd is ~610 */
	assert_in_range(big, 30000 - 700, 30000 + 700);
	/* one getrandom() per 64 words; bound 2^31 + 1 rejects about half */
	assert_in_range(r.refills, 2 * N / 64, 4 * N / 64);
}

/* ---- fixture ---- */

static struct nds_table *table;

static void
add(struct nds_nametable *nt, const char *key, const char *reg,
    const char *shortname, const char *ns, const char *const *ips, size_t nips)
{
	struct nds_nameinfo ni = {ips, nips, reg, shortname, ns, NULL, 0};

	assert_int_equal(nds_nametable_add(nt, key, &ni), 0);
}

static int
setup(void **state)
{
	static const char *const google[] = {"1.1.1.1"};
	static const char *const pp[] = {"9.9.9.9"};
	static const char *const dual[] = {"2.2.2.2", "2001:db8::ff00:42:8329"};
	static const char *const wild[] = {"10.10.10.10"};
	static const char *big[100];
	static char bigbuf[100][16];
	struct nds_build_opts o = {
	    "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local", 30};
	struct nds_nametable *nt;
	char err[256];
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		snprintf(bigbuf[i], sizeof(bigbuf[i]), "10.0.%d.%d", i / 250,
		    i % 250 + 1);
		big[i] = bigbuf[i];
	}
	assert_int_equal(nds_nametable_create(&nt), 0);
	add(nt, "www.google.com", "External", NULL, NULL, google, 1);
	add(nt, "productpage.ns1.svc.cluster.local", "Kubernetes",
	    "productpage", "ns1", pp, 1);
	add(nt, "dual.localhost", "External", NULL, NULL, dual, 2);
	add(nt, "*.wildcard", "External", NULL, NULL, wild, 1);
	add(nt, "big.example", "External", NULL, NULL, big, 100);
	assert_int_equal(nds_table_build(nt, &o, &table, err, sizeof(err)), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	nds_table_unref(table);
	return 0;
}

/* ---- query building and reply reading ---- */

struct qopts {
	uint16_t id, flags, qtype;
	int edns;           /* add an OPT */
	uint16_t size;      /* its payload size */
	uint16_t ednsflags; /* DO */
};

static size_t
make_query(uint8_t *buf, size_t cap, const char *name, const struct qopts *qo)
{
	uint8_t wname[RSV_NAME_MAX];
	struct rsv_writer w;
	struct rsv_hdr h = {qo->id, qo->flags, 0, 0, 0, 0};
	size_t wlen;

	assert_int_equal(rsv_name_from_text(name, strlen(name), wname,
	                     sizeof(wname), &wlen),
	    0);
	rsv_writer_init(&w, buf, cap, cap);
	assert_int_equal(rsv_writer_question(&w, wname, wlen, qo->qtype,
	                     RSV_CLASS_IN),
	    0);
	rsv_writer_section(&w, 3);
	if (qo->edns)
		assert_int_equal(rsv_writer_opt(&w, qo->size, 0, 0,
		                     qo->ednsflags, NULL, 0),
		    0);
	return rsv_writer_finish(&w, &h);
}

/* A reply as the tests read it. */
struct reply {
	struct rsv_hdr h;
	char qname[RSV_TEXT_MAX];
	struct rr {
		char owner[RSV_TEXT_MAX];
		uint16_t type, rclass;
		uint32_t ttl;
		uint8_t rdata[64];
		uint16_t rdlen;
		char target[RSV_TEXT_MAX]; /* CNAME */
	} rr[128];
	size_t nrr; /* answer + authority + additional */
	int opt;    /* index of the OPT in rr, or -1 */
};

static void
read_name(const uint8_t *p, size_t len, size_t *off, char *text, int lower)
{
	uint8_t name[RSV_NAME_MAX];
	size_t nlen, tlen;

	assert_int_equal(rsv_name_parse(p, len, off, name, &nlen), 0);
	assert_int_equal(rsv_name_to_text(name, nlen, lower, text, RSV_TEXT_MAX,
	                     &tlen),
	    0);
}

static void
read_reply(const uint8_t *p, size_t len, struct reply *r)
{
	size_t off = RSV_HDR_LEN, i, n;

	memset(r, 0, sizeof(*r));
	r->opt = -1;
	assert_true(len >= RSV_HDR_LEN);
	r->h.id = rsv_get16(p);
	r->h.flags = rsv_get16(p + 2);
	r->h.qdcount = rsv_get16(p + 4);
	r->h.ancount = rsv_get16(p + 6);
	r->h.nscount = rsv_get16(p + 8);
	r->h.arcount = rsv_get16(p + 10);
	if (r->h.qdcount == 1) {
		read_name(p, len, &off, r->qname, 0);
		off += 4;
	}
	n = (size_t)r->h.ancount + r->h.nscount + r->h.arcount;
	assert_true(n <= 128);
	for (i = 0; i < n; i++) {
		struct rr *rr = &r->rr[i];
		size_t roff;

		read_name(p, len, &off, rr->owner, 0);
		assert_true(off + 10 <= len);
		rr->type = rsv_get16(p + off);
		rr->rclass = rsv_get16(p + off + 2);
		rr->ttl = rsv_get32(p + off + 4);
		rr->rdlen = rsv_get16(p + off + 8);
		off += 10;
		assert_true(off + rr->rdlen <= len);
		if (rr->type == RSV_TYPE_CNAME) {
			roff = off;
			read_name(p, len, &roff, rr->target, 0);
		} else if (rr->rdlen <= sizeof(rr->rdata))
			memcpy(rr->rdata, p + off, rr->rdlen);
		if (rr->type == RSV_TYPE_OPT)
			r->opt = (int)i;
		off += rr->rdlen;
	}
	assert_int_equal(off, len);
	r->nrr = n;
}

static uint8_t qbuf[RSV_MSG_MAX], out[RSV_MSG_MAX];

/* Answers name locally; returns the rsv_answer_local() code. */
static int
ask(const char *name, const struct qopts *qo, enum rsv_transport tr,
    struct reply *r, size_t *outlen)
{
	struct rsv_rng rng = {rand_last, NULL};
	struct rsv_query q;
	size_t qlen = make_query(qbuf, sizeof(qbuf), name, qo);
	int rc;

	assert_int_equal(rsv_query_parse(qbuf, qlen, &q), RSV_PARSE_OK);
	rc = rsv_answer_local(table, &q, tr, &rng, out, sizeof(out), outlen);
	if (rc == 0)
		read_reply(out, *outlen, r);
	return rc;
}

static struct reply rep;

static void
test_a_answer_is_authoritative_with_flags_copied(void **state)
{
	struct qopts qo = {0xbeef, RSV_F_RD | RSV_F_CD, RSV_TYPE_A, 0, 0, 0};
	size_t len;

	(void)state;
	assert_int_equal(ask("www.google.com.", &qo, RSV_UDP, &rep, &len), 0);
	assert_int_equal(rep.h.id, 0xbeef);
	assert_int_equal(rep.h.flags,
	    RSV_F_QR | RSV_F_AA | RSV_F_RD | RSV_F_CD);
	assert_int_equal(rep.h.qdcount, 1);
	assert_int_equal(rep.h.ancount, 1);
	assert_int_equal(rep.h.arcount, 0);
	assert_string_equal(rep.rr[0].owner, "www.google.com.");
	assert_int_equal(rep.rr[0].type, RSV_TYPE_A);
	assert_int_equal(rep.rr[0].rclass, RSV_CLASS_IN);
	assert_int_equal(rep.rr[0].ttl, 30);
	assert_memory_equal(rep.rr[0].rdata, "\x01\x01\x01\x01", 4);
}

static void
test_question_echoed_in_client_case_owner_lowercase(void **state)
{
	struct qopts qo = {1, 0, RSV_TYPE_A, 0, 0, 0};
	size_t len;

	(void)state;
	assert_int_equal(ask("WWW.Google.COM.", &qo, RSV_UDP, &rep, &len), 0);
	assert_string_equal(rep.qname, "WWW.Google.COM.");
	assert_string_equal(rep.rr[0].owner, "www.google.com.");
}

static void
test_notify_opcode_is_echoed(void **state)
{
	struct qopts qo = {2, RSV_OP_NOTIFY << 11, RSV_TYPE_A, 0, 0, 0};
	size_t len;

	(void)state;
	assert_int_equal(ask("www.google.com.", &qo, RSV_UDP, &rep, &len), 0);
	assert_int_equal(RSV_OPCODE(rep.h.flags), RSV_OP_NOTIFY);
	assert_true(rep.h.flags & RSV_F_AA);
}

static void
test_search_name_gets_cname_then_address(void **state)
{
	struct qopts qo = {3, 0, RSV_TYPE_A, 0, 0, 0};
	size_t len;

	(void)state;
	assert_int_equal(ask("www.google.com.ns1.svc.cluster.local.", &qo,
	                     RSV_UDP, &rep, &len),
	    0);
	assert_int_equal(rep.h.ancount, 2);
	assert_int_equal(rep.rr[0].type, RSV_TYPE_CNAME);
	assert_string_equal(rep.rr[0].owner,
	    "www.google.com.ns1.svc.cluster.local.");
	assert_string_equal(rep.rr[0].target, "www.google.com.");
	assert_int_equal(rep.rr[1].type, RSV_TYPE_A);
	assert_string_equal(rep.rr[1].owner, "www.google.com.");
}

static void
test_missing_family_is_nodata_without_cname(void **state)
{
	struct qopts qo = {4, 0, RSV_TYPE_AAAA, 0, 0, 0};
	size_t len;

	(void)state;
	assert_int_equal(ask("www.google.com.ns1.svc.cluster.local.", &qo,
	                     RSV_UDP, &rep, &len),
	    0);
	assert_int_equal(RSV_RCODE(rep.h.flags), RSV_NOERROR);
	assert_true(rep.h.flags & RSV_F_AA);
	assert_int_equal(rep.h.ancount, 0);
	assert_int_equal(rep.h.nscount, 0); /* no SOA */
}

static void
test_dual_stack_answers_each_family(void **state)
{
	struct qopts qa = {5, 0, RSV_TYPE_A, 0, 0, 0};
	struct qopts q6 = {6, 0, RSV_TYPE_AAAA, 0, 0, 0};
	size_t len;

	(void)state;
	assert_int_equal(ask("dual.localhost.", &qa, RSV_UDP, &rep, &len), 0);
	assert_int_equal(rep.h.ancount, 1);
	assert_memory_equal(rep.rr[0].rdata, "\x02\x02\x02\x02", 4);
	assert_int_equal(ask("dual.localhost.", &q6, RSV_UDP, &rep, &len), 0);
	assert_int_equal(rep.h.ancount, 1);
	assert_int_equal(rep.rr[0].type, RSV_TYPE_AAAA);
	assert_int_equal(rep.rr[0].rdlen, 16);
	assert_memory_equal(rep.rr[0].rdata,
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\xff\x00\x00\x42\x83\x29", 16);
}

static void
test_wildcard_answer_is_owned_by_the_query(void **state)
{
	struct qopts qo = {7, 0, RSV_TYPE_A, 0, 0, 0};
	size_t len;

	(void)state;
	assert_int_equal(ask("Foo.wildcard.", &qo, RSV_UDP, &rep, &len), 0);
	assert_int_equal(rep.h.ancount, 1);
	assert_string_equal(rep.rr[0].owner, "foo.wildcard.");
	/* D17: through the search CNAME, the concrete name. */
	assert_int_equal(ask("foo.wildcard.ns1.svc.cluster.local.", &qo,
	                     RSV_UDP, &rep, &len),
	    0);
	assert_int_equal(rep.h.ancount, 2);
	assert_string_equal(rep.rr[0].target, "foo.wildcard.");
	assert_string_equal(rep.rr[1].owner, "foo.wildcard.");
}

static void
test_other_qtypes_and_unknown_names_are_forwarded(void **state)
{
	static const uint16_t types[] = {RSV_TYPE_MX, RSV_TYPE_TXT,
	    RSV_TYPE_SRV, RSV_TYPE_ANY, RSV_TYPE_CNAME, RSV_TYPE_PTR,
	    RSV_TYPE_NS, 65 /* HTTPS */};
	struct qopts qo = {8, 0, RSV_TYPE_A, 0, 0, 0};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		qo.qtype = types[i];
		assert_int_equal(ask("www.google.com.", &qo, RSV_UDP, &rep,
		                     &len),
		    -ENOENT);
	}
	qo.qtype = RSV_TYPE_A;
	assert_int_equal(ask("www.bing.com.", &qo, RSV_UDP, &rep, &len),
	    -ENOENT);
	assert_int_equal(ask("wildcard.", &qo, RSV_UDP, &rep, &len), -ENOENT);
}

static void
test_label_with_a_dot_is_forwarded(void **state)
{
	static const uint8_t name[] = "\x0ewww.google.com\0";
	struct rsv_rng rng = {rand_zero, NULL};
	struct rsv_query q;
	size_t len;

	(void)state;
	memset(&q, 0, sizeof(q));
	q.has_question = 1;
	memcpy(q.qname, name, sizeof(name) - 1);
	q.qname_len = sizeof(name) - 1;
	q.qtype = RSV_TYPE_A;
	q.qclass = RSV_CLASS_IN;
	assert_int_equal(rsv_answer_local(table, &q, RSV_UDP, &rng, out,
	                     sizeof(out), &len),
	    -ENOENT);
}

static void
test_edns_query_gets_our_opt_with_do_echoed(void **state)
{
	struct qopts qo = {9, 0, RSV_TYPE_A, 1, 4096, RSV_EDNS_DO};
	size_t len;

	(void)state;
	assert_int_equal(ask("www.google.com.", &qo, RSV_UDP, &rep, &len), 0);
	assert_int_equal(rep.h.arcount, 1);
	assert_true(rep.opt >= 0);
	assert_string_equal(rep.rr[rep.opt].owner, ".");
	assert_int_equal(rep.rr[rep.opt].rclass, RSV_EDNS_LOCAL);
	assert_int_equal(rep.rr[rep.opt].ttl, RSV_EDNS_DO); /* v0, DO */
	assert_int_equal(rep.rr[rep.opt].rdlen, 0);
	qo.ednsflags = 0;
	assert_int_equal(ask("www.google.com.", &qo, RSV_UDP, &rep, &len), 0);
	assert_int_equal(rep.rr[rep.opt].ttl, 0);
}

static void
test_no_opt_without_edns(void **state)
{
	struct qopts qo = {10, 0, RSV_TYPE_A, 0, 0, 0};
	size_t len;

	(void)state;
	assert_int_equal(ask("www.google.com.", &qo, RSV_UDP, &rep, &len), 0);
	assert_int_equal(rep.h.arcount, 0);
	assert_int_equal(rep.opt, -1);
}

static void
test_udp_without_edns_truncates_at_512(void **state)
{
	struct qopts qo = {11, 0, RSV_TYPE_A, 0, 0, 0};
	size_t len, want;

	(void)state;
	assert_int_equal(ask("big.example.", &qo, RSV_UDP, &rep, &len), 0);
	assert_true(len <= 512);
	assert_true(rep.h.flags & RSV_F_TC);
	/* 12 + question 17, then 16 per RR: the owner is the question's
	 * name, so even the first one is a compression pointer. */
	want = (512 - 12 - 17) / 16;
	assert_int_equal(rep.h.ancount, want);
}

static void
test_edns_size_floored_at_512_and_respected(void **state)
{
	struct qopts qo = {12, 0, RSV_TYPE_A, 1, 100, 0};
	size_t len;

	(void)state;
	assert_int_equal(ask("big.example.", &qo, RSV_UDP, &rep, &len), 0);
	assert_true(len <= 512);
	assert_true(rep.h.flags & RSV_F_TC);
	assert_true(rep.opt >= 0); /* the OPT is re-appended */
	qo.size = 4096;
	assert_int_equal(ask("big.example.", &qo, RSV_UDP, &rep, &len), 0);
	assert_false(rep.h.flags & RSV_F_TC);
	assert_int_equal(rep.h.ancount, 100);
}

static void
test_tcp_gets_every_record(void **state)
{
	struct qopts qo = {13, 0, RSV_TYPE_A, 0, 0, 0};
	size_t len;

	(void)state;
	assert_int_equal(ask("big.example.", &qo, RSV_TCP, &rep, &len), 0);
	assert_false(rep.h.flags & RSV_F_TC);
	assert_int_equal(rep.h.ancount, 100);
}

static void
test_error_reply_keeps_id_question_and_flags(void **state)
{
	struct qopts qo = {0x1234, RSV_F_RD | RSV_F_CD | (2 << 11), RSV_TYPE_A,
	    1, 4096, RSV_EDNS_DO};
	struct rsv_query q;
	size_t qlen = make_query(qbuf, sizeof(qbuf), "Some.Name.", &qo), len;

	(void)state;
	assert_int_equal(rsv_query_parse(qbuf, qlen, &q), RSV_PARSE_NOTIMP);
	assert_int_equal(rsv_answer_error(&q, RSV_NOTIMP, 0, out, sizeof(out),
	                     &len),
	    0);
	read_reply(out, len, &rep);
	assert_int_equal(rep.h.id, 0x1234);
	assert_int_equal(rep.h.flags,
	    RSV_F_QR | RSV_F_RD | RSV_F_CD | (2 << 11) | RSV_NOTIMP);
	assert_string_equal(rep.qname, "Some.Name.");
	assert_int_equal(rep.nrr, 0); /* no OPT on pre-handler errors */
	/* FORMERR resets the opcode to QUERY (miekg). */
	assert_int_equal(rsv_answer_error(&q, RSV_FORMERR, 0, out, sizeof(out),
	                     &len),
	    0);
	read_reply(out, len, &rep);
	assert_int_equal(RSV_OPCODE(rep.h.flags), 0);
	assert_int_equal(RSV_RCODE(rep.h.flags), RSV_FORMERR);
}

static void
test_servfail_carries_opt_when_asked(void **state)
{
	struct qopts qo = {14, RSV_F_RD, RSV_TYPE_A, 1, 4096, RSV_EDNS_DO};
	struct rsv_query q;
	size_t qlen = make_query(qbuf, sizeof(qbuf), "x.", &qo), len;

	(void)state;
	assert_int_equal(rsv_query_parse(qbuf, qlen, &q), RSV_PARSE_OK);
	assert_int_equal(rsv_answer_error(&q, RSV_SERVFAIL, 1, out, sizeof(out),
	                     &len),
	    0);
	read_reply(out, len, &rep);
	assert_int_equal(RSV_RCODE(rep.h.flags), RSV_SERVFAIL);
	assert_false(rep.h.flags & RSV_F_AA);
	assert_int_equal(rep.h.arcount, 1);
	assert_int_equal(rep.rr[0].rclass, RSV_EDNS_LOCAL);
	assert_int_equal(rep.rr[0].ttl, RSV_EDNS_DO);
}

static void
test_badvers_has_opt_version_0_and_extended_rcode(void **state)
{
	struct rsv_query q;
	size_t qlen, len;
	struct qopts qo = {15, 0, RSV_TYPE_A, 1, 4096, 0};

	(void)state;
	qlen = make_query(qbuf, sizeof(qbuf), "www.google.com.", &qo);
	/* OPT TTL: ext-rcode(8) version(8) flags(16); set version 1. */
	qbuf[qlen - 5] = 1;
	assert_int_equal(rsv_query_parse(qbuf, qlen, &q), RSV_PARSE_BADVERS);
	assert_int_equal(rsv_answer_error(&q, RSV_BADVERS, 0, out, sizeof(out),
	                     &len),
	    0);
	read_reply(out, len, &rep);
	assert_int_equal(RSV_RCODE(rep.h.flags), RSV_BADVERS & 0xf);
	assert_int_equal(rep.h.arcount, 1);
	/* TTL = ext-rcode 1 (16 >> 4), version 0, flags 0 */
	assert_int_equal(rep.rr[rep.opt].ttl, 1u << 24);
}

static void
test_error_without_question_is_header_only(void **state)
{
	struct rsv_query q;
	size_t len;

	(void)state;
	memset(&q, 0, sizeof(q));
	q.hdr.id = 77;
	q.hdr.qdcount = 1;
	assert_int_equal(rsv_answer_error(&q, RSV_REFUSED, 0, out, sizeof(out),
	                     &len),
	    0);
	assert_int_equal(len, RSV_HDR_LEN);
	read_reply(out, len, &rep);
	assert_int_equal(rep.h.qdcount, 0);
	assert_int_equal(RSV_RCODE(rep.h.flags), RSV_REFUSED);
}

static void
test_parse_rcode_mapping(void **state)
{
	(void)state;
	assert_int_equal(rsv_parse_rcode(RSV_PARSE_NOTIMP), RSV_NOTIMP);
	assert_int_equal(rsv_parse_rcode(RSV_PARSE_FORMERR), RSV_FORMERR);
	assert_int_equal(rsv_parse_rcode(RSV_PARSE_REFUSED), RSV_REFUSED);
	assert_int_equal(rsv_parse_rcode(RSV_PARSE_BADVERS), RSV_BADVERS);
	assert_int_equal(rsv_parse_rcode(RSV_PARSE_OK), -1);
	assert_int_equal(rsv_parse_rcode(RSV_PARSE_DROP), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shuffle_matches_spec_vectors),
	    cmocka_unit_test(test_random_rejects_the_words_that_would_bias),
	    cmocka_unit_test(
	        test_random_from_the_kernel_is_uniform_and_batched),
	    cmocka_unit_test(test_a_answer_is_authoritative_with_flags_copied),
	    cmocka_unit_test(
	        test_question_echoed_in_client_case_owner_lowercase),
	    cmocka_unit_test(test_notify_opcode_is_echoed),
	    cmocka_unit_test(test_search_name_gets_cname_then_address),
	    cmocka_unit_test(test_missing_family_is_nodata_without_cname),
	    cmocka_unit_test(test_dual_stack_answers_each_family),
	    cmocka_unit_test(test_wildcard_answer_is_owned_by_the_query),
	    cmocka_unit_test(test_other_qtypes_and_unknown_names_are_forwarded),
	    cmocka_unit_test(test_label_with_a_dot_is_forwarded),
	    cmocka_unit_test(test_edns_query_gets_our_opt_with_do_echoed),
	    cmocka_unit_test(test_no_opt_without_edns),
	    cmocka_unit_test(test_udp_without_edns_truncates_at_512),
	    cmocka_unit_test(test_edns_size_floored_at_512_and_respected),
	    cmocka_unit_test(test_tcp_gets_every_record),
	    cmocka_unit_test(test_error_reply_keeps_id_question_and_flags),
	    cmocka_unit_test(test_servfail_carries_opt_when_asked),
	    cmocka_unit_test(test_badvers_has_opt_version_0_and_extended_rcode),
	    cmocka_unit_test(test_error_without_question_is_header_only),
	    cmocka_unit_test(test_parse_rcode_mapping),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
