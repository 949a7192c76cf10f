/*
 * test_wire.c: the DNS codec (resolver/wire.c): pre-handler rules, name
 * reading and text forms, the compressing writer and truncation (SPEC §3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/wire.h"

/*
 * A packet builder for hand-made (possibly malformed) messages.
 */
struct pb {
	uint8_t b[8192];
	size_t n;
};

static void
pb_u8(struct pb *p, unsigned v)
{
	assert_true(p->n < sizeof(p->b));
	p->b[p->n++] = (uint8_t)v;
}

static void
pb_u16(struct pb *p, unsigned v)
{
	pb_u8(p, v >> 8);
	pb_u8(p, v & 0xff);
}

static void
pb_u32(struct pb *p, uint32_t v)
{
	pb_u16(p, v >> 16);
	pb_u16(p, v & 0xffff);
}

static void
pb_raw(struct pb *p, const void *d, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

/* The labels of text (no trailing dot), without the root: a pointer or
 * pb_u8(p, 0) follows. */
static void
pb_labels(struct pb *p, const char *text)
{
	const char *s = text, *dot;

	while (*s != '\0') {
		dot = strchr(s, '.');
		if (dot == NULL)
			dot = s + strlen(s);
		pb_u8(p, (unsigned)(dot - s));
		pb_raw(p, s, (size_t)(dot - s));
		s = *dot == '.' ? dot + 1 : dot;
	}
}

static void
pb_name(struct pb *p, const char *text)
{
	pb_labels(p, text);
	pb_u8(p, 0);
}

static void
pb_ptr(struct pb *p, unsigned off)
{
	pb_u16(p, 0xc000 | off);
}

static void
pb_hdr(struct pb *p, unsigned flags, unsigned qd, unsigned an, unsigned ns,
    unsigned ar)
{
	p->n = 0;
	pb_u16(p, 0x1234);
	pb_u16(p, flags);
	pb_u16(p, qd);
	pb_u16(p, an);
	pb_u16(p, ns);
	pb_u16(p, ar);
}

static void
pb_question(struct pb *p, const char *name, unsigned qtype)
{
	pb_name(p, name);
	pb_u16(p, qtype);
	pb_u16(p, RSV_CLASS_IN);
}

/* type, class, ttl, rdlength (the owner is already written). */
static void
pb_fixed(struct pb *p, unsigned type, unsigned rclass, uint32_t ttl,
    unsigned rdlen)
{
	pb_u16(p, type);
	pb_u16(p, rclass);
	pb_u32(p, ttl);
	pb_u16(p, rdlen);
}

/* An OPT RR: root owner, udp size, version, flags, no options. */
static void
pb_opt(struct pb *p, unsigned udp, unsigned version, unsigned flags)
{
	pb_u8(p, 0);
	pb_fixed(p, RSV_TYPE_OPT, udp, (uint32_t)version << 16 | flags, 0);
}

static void
pb_a(struct pb *p, const char *owner, uint32_t ip)
{
	pb_name(p, owner);
	pb_fixed(p, RSV_TYPE_A, RSV_CLASS_IN, 30, 4);
	pb_u32(p, ip);
}

/*
 * Pre-handler rules, header fields: one bad field per case.
 */
struct hdr_case {
	const char *what;
	unsigned flags, qd, an, ns, ar;
	int body; /* 0 nothing, 1 what the counts say (all valid), 2 a question
	           */
	enum rsv_parse want;
};

static const struct hdr_case hdr_cases[] = {
    {"valid query", RSV_F_RD, 1, 0, 0, 0, 1, RSV_PARSE_OK},
    {"notify is a query", 4 << 11, 1, 0, 0, 0, 1, RSV_PARSE_OK},
    {"qr set", RSV_F_QR, 1, 0, 0, 0, 1, RSV_PARSE_DROP},
    {"qr beats opcode", RSV_F_QR | 5 << 11, 1, 0, 0, 0, 1, RSV_PARSE_DROP},
    {"iquery", 1 << 11, 1, 0, 0, 0, 1, RSV_PARSE_NOTIMP},
    {"status", 2 << 11, 1, 0, 0, 0, 1, RSV_PARSE_NOTIMP},
    {"update", 5 << 11, 1, 0, 0, 0, 1, RSV_PARSE_NOTIMP},
    {"opcode 15", 15u << 11, 1, 0, 0, 0, 1, RSV_PARSE_NOTIMP},
    {"opcode beats counts", 5 << 11, 2, 2, 2, 3, 1, RSV_PARSE_NOTIMP},
    {"qdcount 0", 0, 0, 0, 0, 0, 1, RSV_PARSE_FORMERR},
    {"qdcount 2", 0, 2, 0, 0, 0, 1, RSV_PARSE_FORMERR},
    {"ancount 2", 0, 1, 2, 0, 0, 1, RSV_PARSE_FORMERR},
    {"nscount 2", 0, 1, 0, 2, 0, 1, RSV_PARSE_FORMERR},
    {"arcount 3", 0, 1, 0, 0, 3, 1, RSV_PARSE_FORMERR},
    {"header only", 0, 1, 0, 0, 0, 0, RSV_PARSE_REFUSED},
    {"counts beat refused", 0, 2, 0, 0, 0, 0, RSV_PARSE_FORMERR},
    {"qdcount 0 header only", 0, 0, 0, 0, 0, 0, RSV_PARSE_FORMERR},
    {"ancount 1 without the rr", 0, 1, 1, 0, 0, 2, RSV_PARSE_FORMERR},
    {"all counts at their maximum", 0, 1, 1, 1, 2, 1, RSV_PARSE_OK},
};

static void
test_prehandler_header_rules(void **state)
{
	struct rsv_query q;
	struct pb p;
	size_t i;
	unsigned k;

	(void)state;
	for (i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
		const struct hdr_case *c = &hdr_cases[i];
		enum rsv_parse got;

		pb_hdr(&p, c->flags, c->qd, c->an, c->ns, c->ar);
		if (c->body == 2)
			pb_question(&p, "example.com", RSV_TYPE_A);
		for (k = 0; c->body == 1 && k < c->qd; k++)
			pb_question(&p, "example.com", RSV_TYPE_A);
		for (k = 0; c->body == 1 && k < c->an + c->ns + c->ar; k++)
			pb_a(&p, "example.com", k);
		got = rsv_query_parse(p.b, p.n, &q);
		if (got != c->want)
			fail_msg("%s: got %d, want %d", c->what, got, c->want);
		if (got != RSV_PARSE_DROP) {
			assert_int_equal(q.hdr.id, 0x1234);
			assert_int_equal(q.hdr.flags, c->flags);
			assert_int_equal(q.hdr.qdcount, c->qd);
		}
	}
}

static void
test_short_packet_is_dropped(void **state)
{
	struct rsv_query q;
	struct pb p;
	size_t n;

	(void)state;
	pb_hdr(&p, 0, 1, 0, 0, 0);
	for (n = 0; n < RSV_HDR_LEN; n++)
		assert_int_equal(rsv_query_parse(p.b, n, &q), RSV_PARSE_DROP);
	assert_int_equal(rsv_query_parse(p.b, RSV_HDR_LEN, &q),
	    RSV_PARSE_REFUSED);
}

static void
test_valid_query_fields(void **state)
{
	static const uint8_t want[] = {
	    7, 'E', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'C', 'o', 'M', 0};
	struct rsv_query q;
	struct pb p;

	(void)state;
	pb_hdr(&p, RSV_F_RD | RSV_F_CD, 1, 0, 0, 1);
	pb_question(&p, "Example.CoM", RSV_TYPE_AAAA);
	pb_opt(&p, 4096, 0, RSV_EDNS_DO);
	assert_int_equal(rsv_query_parse(p.b, p.n, &q), RSV_PARSE_OK);
	assert_true(q.has_question);
	assert_int_equal(q.qname_len, sizeof(want));
	assert_memory_equal(q.qname, want, sizeof(want));
	assert_int_equal(q.qtype, RSV_TYPE_AAAA);
	assert_int_equal(q.qclass, RSV_CLASS_IN);
	assert_true(q.opt.present);
	assert_int_equal(q.opt.udp_size, 4096);
	assert_int_equal(q.opt.version, 0);
	assert_int_equal(q.opt.flags, RSV_EDNS_DO);
	assert_int_equal(q.opt.rdlen, 0);
	assert_false(q.has_tsig);
	assert_int_equal(rsv_udp_limit(&q), 4096);
}

/*
 * Pre-handler rules, body: each case is a valid query "a.example. A IN"
 * (question at offset 12) with one thing broken, after ancount/nscount/
 * arcount as given.
 */
enum body_kind {
	B_POINTER_LOOP,
	B_FORWARD_POINTER,
	B_POINTER_OUT_OF_RANGE,
	B_POINTER_INTO_OWN_NAME,
	B_LABEL_64,
	B_NAME_256,
	B_LABEL_TYPE_40,
	B_LABEL_TYPE_80,
	B_QUESTION_CUT,
	B_NAME_CUT,
	B_TWO_OPTS,
	B_OPT_VERSION_1,
	B_OPT_IN_ANSWER,
	B_OPT_IN_AUTHORITY,
	B_OPT_NON_ROOT,
	B_OPT_BAD_OPTION,
	B_RR_CUT,
	B_RDATA_CUT,
	B_TRAILING,
	B_CNAME_RDATA_BAD,
	B_CNAME_RDATA_SHORT,
	B_OK_COMPRESSED_ANSWER,
	B_OK_POINTER_CHAIN,
	B_OK_OPT_TSIG,
	B_OK_TSIG_NOT_LAST,
	B_OK_NAME_255,
	B_OK_LABEL_63,
};

struct body_case {
	const char *what;
	enum body_kind kind;
	enum rsv_parse want;
	int has_question;
};

static const struct body_case body_cases[] = {
    {"pointer loop", B_POINTER_LOOP, RSV_PARSE_FORMERR, 0},
    {"forward pointer", B_FORWARD_POINTER, RSV_PARSE_FORMERR, 0},
    {"pointer out of range", B_POINTER_OUT_OF_RANGE, RSV_PARSE_FORMERR, 0},
    {"pointer into own name", B_POINTER_INTO_OWN_NAME, RSV_PARSE_FORMERR, 1},
    {"label 64", B_LABEL_64, RSV_PARSE_FORMERR, 0},
    {"name 256", B_NAME_256, RSV_PARSE_FORMERR, 0},
    {"label type 0x40", B_LABEL_TYPE_40, RSV_PARSE_FORMERR, 0},
    {"label type 0x80", B_LABEL_TYPE_80, RSV_PARSE_FORMERR, 0},
    {"question cut", B_QUESTION_CUT, RSV_PARSE_FORMERR, 0},
    {"name cut", B_NAME_CUT, RSV_PARSE_FORMERR, 0},
    {"two opts", B_TWO_OPTS, RSV_PARSE_FORMERR, 1},
    {"opt version 1", B_OPT_VERSION_1, RSV_PARSE_BADVERS, 1},
    {"opt in answer", B_OPT_IN_ANSWER, RSV_PARSE_FORMERR, 1},
    {"opt in authority", B_OPT_IN_AUTHORITY, RSV_PARSE_FORMERR, 1},
    {"opt non-root owner", B_OPT_NON_ROOT, RSV_PARSE_FORMERR, 1},
    {"opt option overruns", B_OPT_BAD_OPTION, RSV_PARSE_FORMERR, 1},
    {"rr cut in fixed part", B_RR_CUT, RSV_PARSE_FORMERR, 1},
    {"rdata cut", B_RDATA_CUT, RSV_PARSE_FORMERR, 1},
    {"trailing bytes", B_TRAILING, RSV_PARSE_FORMERR, 1},
    {"cname rdata loops", B_CNAME_RDATA_BAD, RSV_PARSE_FORMERR, 1},
    {"cname rdata longer than name", B_CNAME_RDATA_SHORT, RSV_PARSE_FORMERR, 1},
    {"compressed answer", B_OK_COMPRESSED_ANSWER, RSV_PARSE_OK, 1},
    {"pointer chain", B_OK_POINTER_CHAIN, RSV_PARSE_OK, 1},
    {"opt and tsig", B_OK_OPT_TSIG, RSV_PARSE_OK, 1},
    {"tsig not last", B_OK_TSIG_NOT_LAST, RSV_PARSE_OK, 1},
    {"name 255", B_OK_NAME_255, RSV_PARSE_OK, 1},
    {"label 63", B_OK_LABEL_63, RSV_PARSE_OK, 1},
};

/* Four labels of 63 and one of n: 4 * 64 + n + 2 wire bytes. */
static void
pb_long_name(struct pb *p, unsigned last)
{
	uint8_t lab[64];
	int i;

	memset(lab, 'x', sizeof(lab));
	for (i = 0; i < 3; i++) {
		pb_u8(p, 63);
		pb_raw(p, lab, 63);
	}
	pb_u8(p, last);
	pb_raw(p, lab, last);
	pb_u8(p, 0);
}

static void
build_body(struct pb *p, enum body_kind k)
{
	switch (k) {
	case B_POINTER_LOOP:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_ptr(p, 12); /* points at itself */
		pb_u32(p, 0x00010001);
		break;
	case B_FORWARD_POINTER:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_ptr(p, 18);
		pb_u32(p, 0x00010001);
		pb_name(p, "a");
		break;
	case B_POINTER_OUT_OF_RANGE:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_ptr(p, 0x3fff);
		pb_u32(p, 0x00010001);
		break;
	case B_POINTER_INTO_OWN_NAME:
		/* answer owner "b" + pointer to its own first label */
		pb_hdr(p, 0, 1, 1, 0, 0);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_labels(p, "b");
		pb_ptr(p, (unsigned)p->n - 2);
		pb_fixed(p, RSV_TYPE_A, 1, 30, 4);
		pb_u32(p, 1);
		break;
	case B_LABEL_64:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_u8(p, 64);
		for (int i = 0; i < 64; i++)
			pb_u8(p, 'a');
		pb_u8(p, 0);
		pb_u32(p, 0x00010001);
		break;
	case B_NAME_256:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_long_name(p, 62); /* 3 * 64 + 63 + 1 = 256 */
		pb_u32(p, 0x00010001);
		break;
	case B_LABEL_TYPE_40:
	case B_LABEL_TYPE_80:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_u8(p, k == B_LABEL_TYPE_40 ? 0x41 : 0x81);
		pb_u8(p, 'a');
		pb_u8(p, 0);
		pb_u32(p, 0x00010001);
		break;
	case B_QUESTION_CUT:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_name(p, "a.example");
		pb_u16(p, RSV_TYPE_A);
		pb_u8(p, 0);
		break;
	case B_NAME_CUT:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_labels(p, "a.example");
		break;
	case B_TWO_OPTS:
		pb_hdr(p, 0, 1, 0, 0, 2);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_opt(p, 1232, 0, 0);
		pb_opt(p, 1232, 0, 0);
		break;
	case B_OPT_VERSION_1:
		pb_hdr(p, 0, 1, 0, 0, 1);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_opt(p, 1400, 1, RSV_EDNS_DO);
		break;
	case B_OPT_IN_ANSWER:
		pb_hdr(p, 0, 1, 1, 0, 0);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_opt(p, 1232, 0, 0);
		break;
	case B_OPT_IN_AUTHORITY:
		pb_hdr(p, 0, 1, 0, 1, 0);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_opt(p, 1232, 0, 0);
		break;
	case B_OPT_NON_ROOT:
		pb_hdr(p, 0, 1, 0, 0, 1);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_ptr(p, 12);
		pb_fixed(p, RSV_TYPE_OPT, 1232, 0, 0);
		break;
	case B_OPT_BAD_OPTION:
		pb_hdr(p, 0, 1, 0, 0, 1);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_u8(p, 0);
		pb_fixed(p, RSV_TYPE_OPT, 1232, 0, 6);
		pb_u16(p, 10); /* cookie, claims 8 bytes, has 2 */
		pb_u16(p, 8);
		pb_u16(p, 0);
		break;
	case B_RR_CUT:
		pb_hdr(p, 0, 1, 1, 0, 0);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_ptr(p, 12);
		pb_u16(p, RSV_TYPE_A);
		pb_u16(p, RSV_CLASS_IN);
		pb_u16(p, 0);
		break;
	case B_RDATA_CUT:
		pb_hdr(p, 0, 1, 1, 0, 0);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_ptr(p, 12);
		pb_fixed(p, RSV_TYPE_A, RSV_CLASS_IN, 30, 4);
		pb_u16(p, 0x0102);
		break;
	case B_TRAILING:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_u8(p, 0);
		break;
	case B_CNAME_RDATA_BAD:
		pb_hdr(p, 0, 1, 1, 0, 0);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_ptr(p, 12);
		pb_fixed(p, RSV_TYPE_CNAME, RSV_CLASS_IN, 30, 2);
		pb_ptr(p, (unsigned)p->n); /* points at itself */
		break;
	case B_CNAME_RDATA_SHORT:
		/* rdlength 3 but the name "b." takes 3 + 2 (pointer) */
		pb_hdr(p, 0, 1, 1, 0, 0);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_ptr(p, 12);
		pb_fixed(p, RSV_TYPE_CNAME, RSV_CLASS_IN, 30, 3);
		pb_labels(p, "b");
		pb_ptr(p, 14);
		break;
	case B_OK_COMPRESSED_ANSWER:
		pb_hdr(p, 0, 1, 1, 0, 0);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_labels(p, "b");
		pb_ptr(p, 14); /* b.example */
		pb_fixed(p, RSV_TYPE_CNAME, RSV_CLASS_IN, 30, 2);
		pb_ptr(p, 12);
		break;
	case B_OK_POINTER_CHAIN:
		/* authority owner -> answer owner (a pointer) -> question */
		pb_hdr(p, 0, 1, 1, 1, 0);
		pb_question(p, "a.example", RSV_TYPE_A);
		pb_ptr(p, 12); /* at offset 27 */
		pb_fixed(p, RSV_TYPE_A, RSV_CLASS_IN, 30, 4);
		pb_u32(p, 1);
		pb_ptr(p, 27);
		pb_fixed(p, RSV_TYPE_A, RSV_CLASS_IN, 30, 4);
		pb_u32(p, 2);
		break;
	case B_OK_OPT_TSIG:
	case B_OK_TSIG_NOT_LAST:
		pb_hdr(p, 0, 1, 0, 0, 2);
		pb_question(p, "a.example", RSV_TYPE_A);
		if (k == B_OK_OPT_TSIG)
			pb_opt(p, 1232, 0, 0);
		pb_name(p, "key");
		pb_fixed(p, RSV_TYPE_TSIG, 255, 0, 3);
		pb_u8(p, 1);
		pb_u16(p, 2);
		if (k == B_OK_TSIG_NOT_LAST)
			pb_opt(p, 1232, 0, 0);
		break;
	case B_OK_NAME_255:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_long_name(p, 61);
		pb_u32(p, 0x00010001);
		break;
	case B_OK_LABEL_63:
		pb_hdr(p, 0, 1, 0, 0, 0);
		pb_u8(p, 63);
		for (int i = 0; i < 63; i++)
			pb_u8(p, 'z');
		pb_u8(p, 0);
		pb_u32(p, 0x00010001);
		break;
	}
}

static void
test_prehandler_body_rules(void **state)
{
	struct rsv_query q;
	struct pb p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(body_cases) / sizeof(body_cases[0]); i++) {
		const struct body_case *c = &body_cases[i];
		enum rsv_parse got;

		build_body(&p, c->kind);
		got = rsv_query_parse(p.b, p.n, &q);
		if (got != c->want || q.has_question != c->has_question)
			fail_msg("%s: got %d/%d, want %d/%d", c->what, got,
			    q.has_question, c->want, c->has_question);
	}
}

static void
test_pointer_loop_is_formerr(void **state)
{
	struct rsv_query q;
	struct pb p;

	(void)state;
	build_body(&p, B_POINTER_LOOP);
	assert_int_equal(rsv_query_parse(p.b, p.n, &q), RSV_PARSE_FORMERR);
	assert_false(q.has_question);
	assert_int_equal(q.hdr.id, 0x1234);
}

static void
test_opt_version_1_is_badvers_with_fields(void **state)
{
	struct rsv_query q;
	struct pb p;

	(void)state;
	build_body(&p, B_OPT_VERSION_1);
	assert_int_equal(rsv_query_parse(p.b, p.n, &q), RSV_PARSE_BADVERS);
	assert_true(q.has_question);
	assert_int_equal(q.qtype, RSV_TYPE_A);
	assert_true(q.opt.present);
	assert_int_equal(q.opt.version, 1);
	assert_int_equal(q.opt.udp_size, 1400);
	assert_int_equal(q.opt.flags, RSV_EDNS_DO);
}

static void
test_badvers_yields_to_formerr(void **state)
{
	struct rsv_query q;
	struct pb p;

	(void)state;
	build_body(&p, B_OPT_VERSION_1);
	pb_u8(&p, 0); /* trailing byte */
	assert_int_equal(rsv_query_parse(p.b, p.n, &q), RSV_PARSE_FORMERR);
}

static void
test_tsig_last_in_additional_is_flagged(void **state)
{
	struct rsv_query q;
	struct pb p;

	(void)state;
	build_body(&p, B_OK_OPT_TSIG);
	assert_int_equal(rsv_query_parse(p.b, p.n, &q), RSV_PARSE_OK);
	assert_true(q.has_tsig);
	assert_true(q.opt.present);
	build_body(&p, B_OK_TSIG_NOT_LAST);
	assert_int_equal(rsv_query_parse(p.b, p.n, &q), RSV_PARSE_OK);
	assert_false(q.has_tsig);
}

static void
test_opt_options_are_borrowed(void **state)
{
	struct rsv_query q;
	struct pb p;
	size_t at;

	(void)state;
	pb_hdr(&p, 0, 1, 0, 0, 1);
	pb_question(&p, "a.example", RSV_TYPE_A);
	pb_u8(&p, 0);
	pb_fixed(&p, RSV_TYPE_OPT, 100, 0x01000000, 12);
	at = p.n;
	pb_u16(&p, 10); /* cookie, 8 bytes */
	pb_u16(&p, 8);
	pb_raw(&p, "abcdefgh", 8);
	assert_int_equal(rsv_query_parse(p.b, p.n, &q), RSV_PARSE_OK);
	assert_ptr_equal(q.opt.rdata, p.b + at);
	assert_int_equal(q.opt.rdlen, 12);
	assert_int_equal(q.opt.ext_rcode, 1);
	assert_int_equal(rsv_udp_limit(&q), 512);
}

static void
test_udp_limit_clamps(void **state)
{
	struct rsv_query q;

	(void)state;
	memset(&q, 0, sizeof(q));
	assert_int_equal(rsv_udp_limit(&q), 512);
	q.opt.present = 1;
	q.opt.udp_size = 0;
	assert_int_equal(rsv_udp_limit(&q), 512);
	q.opt.udp_size = 511;
	assert_int_equal(rsv_udp_limit(&q), 512);
	q.opt.udp_size = 1232;
	assert_int_equal(rsv_udp_limit(&q), 1232);
	q.opt.udp_size = 65535;
	assert_int_equal(rsv_udp_limit(&q), 65535);
}

/*
 * rsv_name_parse.
 */
static void
test_name_parse_moves_past_pointer(void **state)
{
	uint8_t out[RSV_NAME_MAX];
	struct pb p;
	size_t off, olen;

	(void)state;
	p.n = 0;
	pb_name(&p, "example.com"); /* 0..12 */
	pb_labels(&p, "www");       /* 13 */
	pb_ptr(&p, 0);
	off = 13;
	assert_int_equal(rsv_name_parse(p.b, p.n, &off, out, &olen), 0);
	assert_int_equal(off, p.n);
	assert_int_equal(olen, 17);
	assert_memory_equal(out, "\3www\7example\3com\0", 17);
	off = p.n; /* nothing left */
	assert_int_equal(rsv_name_parse(p.b, p.n, &off, out, &olen), -EINVAL);
}

static void
test_name_parse_rejects_pointer_past_end(void **state)
{
	static const uint8_t pkt[] = {1, 'a', 0xc0};
	uint8_t out[RSV_NAME_MAX];
	size_t off = 0, olen;

	(void)state;
	assert_int_equal(rsv_name_parse(pkt, sizeof(pkt), &off, out, &olen),
	    -EINVAL);
}

/* A chain of pointers, each strictly backwards, longer than any name. */
static void
test_name_parse_bounds_pointer_hops(void **state)
{
	uint8_t pkt[2 + 2 * 200], out[RSV_NAME_MAX];
	size_t off, olen, i;

	(void)state;
	pkt[0] = 0;
	pkt[1] = 0;
	for (i = 0; i < 200; i++)
		rsv_put16(pkt + 2 + 2 * i, (uint16_t)(0xc000 | (2 * i)));
	off = 2 + 2 * 10; /* 10 hops then the root at 0: fine */
	assert_int_equal(rsv_name_parse(pkt, sizeof(pkt), &off, out, &olen), 0);
	assert_int_equal(olen, 1);
	off = 2 + 2 * 199; /* 200 hops: too many */
	assert_int_equal(rsv_name_parse(pkt, sizeof(pkt), &off, out, &olen),
	    -EINVAL);
}

/*
 * Text forms.
 */
struct text_case {
	const char *wire;
	size_t wlen;
	int lower;
	int want;
	const char *text;
};

static const struct text_case text_cases[] = {
    {"\0", 1, 0, 0, "."},
    {"\3www\7Example\3COM\0", 17, 0, 0, "www.Example.COM."},
    {"\3www\7Example\3COM\0", 17, 1, 0, "www.example.com."},
    {"\1*\3svc\0", 7, 0, 0, "*.svc."}, {"\3a.b\0", 5, 0, -EINVAL, NULL},
    {"\3a\\b\0", 5, 0, -EINVAL, NULL}, {"\3a b\0", 5, 0, -EINVAL, NULL},
    {"\3a\x7f"
     "b\0",
        5, 0, -EINVAL, NULL},
    {"\3a\x01"
     "b\0",
        5, 0, -EINVAL, NULL},
    {"\3a\xc3"
     "b\0",
        5, 0, -EINVAL, NULL},
    {"\3abc", 4, 0, -EINVAL, NULL},     /* no root */
    {"\3abc\0\0", 6, 0, -EINVAL, NULL}, /* bytes after root */
    {"\5abc\0", 5, 0, -EINVAL, NULL},   /* label past the end */
    {"", 0, 0, -EINVAL, NULL},
    {"\x41"
     "a\0",
        3, 0, -EINVAL, NULL}, /* label type 0x40 */
};

static void
test_name_to_text_cases(void **state)
{
	char out[RSV_TEXT_MAX];
	size_t i, olen;

	(void)state;
	for (i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
		const struct text_case *c = &text_cases[i];
		int rc = rsv_name_to_text((const uint8_t *)c->wire, c->wlen,
		    c->lower, out, sizeof(out), &olen);

		if (rc != c->want)
			fail_msg("case %zu: got %d, want %d", i, rc, c->want);
		if (rc == 0) {
			assert_string_equal(out, c->text);
			assert_int_equal(olen, strlen(c->text));
		}
	}
}

static void
test_name_to_text_needs_room_for_nul(void **state)
{
	const uint8_t *w = (const uint8_t *)"\3www\3com\0";
	char out[16];
	size_t olen;

	(void)state;
	assert_int_equal(rsv_name_to_text(w, 9, 0, out, 8, &olen), -ENOSPC);
	assert_int_equal(rsv_name_to_text(w, 9, 0, out, 9, &olen), 0);
	assert_string_equal(out, "www.com.");
	assert_int_equal(rsv_name_to_text((const uint8_t *)"", 1, 0, out, 1,
	                     &olen),
	    -ENOSPC);
}

static void
test_name_to_text_longest_name(void **state)
{
	char out[RSV_TEXT_MAX];
	struct pb p;
	size_t olen;

	(void)state;
	p.n = 0;
	pb_long_name(&p, 61);
	assert_int_equal(p.n, RSV_NAME_MAX);
	assert_int_equal(rsv_name_to_text(p.b, p.n, 1, out, sizeof(out), &olen),
	    0);
	assert_int_equal(olen, 254);
}

struct from_case {
	const char *text;
	int want;
	const char *wire;
	size_t wlen;
};

static void
test_name_from_text_cases(void **state)
{
	char l63[64], l64[65], n255[300], n256[300];
	const struct from_case cases[] = {
	    {"example.com", 0, "\7example\3com\0", 13},
	    {"example.com.", 0, "\7example\3com\0", 13},
	    {"Ex.", 0, "\2Ex\0", 4},
	    {".", 0, "\0", 1},
	    {"", 0, "\0", 1},
	    {"a..b", -EINVAL, NULL, 0},
	    {".a", -EINVAL, NULL, 0},
	    {"a..", -EINVAL, NULL, 0},
	    {"..", -EINVAL, NULL, 0},
	    {l63, 0, NULL, 65},
	    {l64, -EINVAL, NULL, 0},
	    {n255, 0, NULL, 255},
	    {n256, -EINVAL, NULL, 0},
	};
	uint8_t out[RSV_NAME_MAX];
	size_t i, olen;

	(void)state;
	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'a', 64);
	l64[64] = '\0';
	/* 3 x (63 + dot) + 61 = 253 chars: 255 wire bytes; 62 is one more */
	memset(n255, 'a', sizeof(n255));
	n255[63] = n255[127] = n255[191] = '.';
	memcpy(n256, n255, sizeof(n256));
	n255[253] = '\0';
	n256[254] = '\0';
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct from_case *c = &cases[i];
		int rc = rsv_name_from_text(c->text, strlen(c->text), out,
		    sizeof(out), &olen);

		if (rc != c->want)
			fail_msg("case %zu: got %d, want %d", i, rc, c->want);
		if (rc == 0)
			assert_int_equal(olen, c->wlen);
		if (rc == 0 && c->wire != NULL)
			assert_memory_equal(out, c->wire, c->wlen);
	}
	assert_int_equal(rsv_name_from_text("abc", 3, out, 4, &olen), -ENOSPC);
	assert_int_equal(rsv_name_from_text("abc", 3, out, 5, &olen), 0);
	/* tlen bounds the text: "abc.def" cut to "abc" */
	assert_int_equal(rsv_name_from_text("abc.def", 3, out, 5, &olen), 0);
	assert_int_equal(olen, 5);
}

static void
test_name_equal_ignores_ascii_case_only(void **state)
{
	const uint8_t *a = (const uint8_t *)"\3WwW\3cOm\0";
	const uint8_t *b = (const uint8_t *)"\3www\3com\0";
	const uint8_t *c = (const uint8_t *)"\3wwx\3com\0";
	const uint8_t *d = (const uint8_t *)"\3\xc3ww\3com\0";
	const uint8_t *e = (const uint8_t *)"\3\xe3ww\3com\0";

	(void)state;
	assert_true(rsv_name_equal(a, 9, b, 9));
	assert_false(rsv_name_equal(a, 9, c, 9));
	assert_false(rsv_name_equal(a, 9, b, 8));
	assert_false(rsv_name_equal(d, 9, e, 9));
}

/*
 * Writer.
 */
static size_t
wire_of(const char *text, uint8_t *out)
{
	size_t n;

	assert_int_equal(rsv_name_from_text(text, strlen(text), out,
	                     RSV_NAME_MAX, &n),
	    0);
	return n;
}

static void
test_writer_compresses_owner_to_question(void **state)
{
	static const uint8_t ip[4] = {10, 0, 0, 1};
	uint8_t buf[512], name[RSV_NAME_MAX];
	struct rsv_writer w;
	struct rsv_hdr h = {0xbeef, RSV_F_QR | RSV_F_AA, 0, 0, 0, 0};
	size_t n = wire_of("www.example.com", name), len;

	(void)state;
	rsv_writer_init(&w, buf, sizeof(buf), 512);
	assert_int_equal(rsv_writer_question(&w, name, n, 1, 1), 0);
	rsv_writer_section(&w, 1);
	assert_int_equal(rsv_writer_rr(&w, name, n, 1, 1, 30, ip, 4), 0);
	len = rsv_writer_finish(&w, &h);
	assert_int_equal(len, 12 + 17 + 4 + 2 + 10 + 4);
	assert_int_equal(rsv_get16(buf), 0xbeef);
	assert_int_equal(rsv_get16(buf + 2), RSV_F_QR | RSV_F_AA);
	assert_int_equal(rsv_get16(buf + 4), 1);
	assert_int_equal(rsv_get16(buf + 6), 1);
	assert_int_equal(rsv_get16(buf + 8), 0);
	assert_int_equal(rsv_get16(buf + 10), 0);
	assert_int_equal(rsv_get16(buf + 33), 0xc00c);
}

static void
test_writer_compression_is_case_sensitive(void **state)
{
	static const uint8_t ip[4] = {10, 0, 0, 1};
	uint8_t buf[512], q[RSV_NAME_MAX], o[RSV_NAME_MAX], out[RSV_NAME_MAX];
	struct rsv_writer w;
	struct rsv_hdr h = {1, RSV_F_QR, 0, 0, 0, 0};
	size_t qn = wire_of("WWW.Example.com", q);
	size_t on = wire_of("www.example.com", o), off, olen, first;

	(void)state;
	rsv_writer_init(&w, buf, sizeof(buf), 512);
	assert_int_equal(rsv_writer_question(&w, q, qn, 1, 1), 0);
	rsv_writer_section(&w, 1);
	first = w.len;
	assert_int_equal(rsv_writer_rr(&w, o, on, 1, 1, 30, ip, 4), 0);
	/* "www.example" differs in case: only "com" may be shared */
	assert_int_equal(w.len - first, 12 + 2 + 10 + 4);
	off = first;
	assert_int_equal(rsv_name_parse(buf, w.len, &off, out, &olen), 0);
	assert_int_equal(olen, on);
	assert_memory_equal(out, o, on);
	/* a second identical owner points at the first one */
	first = w.len;
	assert_int_equal(rsv_writer_rr(&w, o, on, 1, 1, 30, ip, 4), 0);
	assert_int_equal(w.len - first, 2 + 10 + 4);
	rsv_writer_finish(&w, &h);
	off = first;
	assert_int_equal(rsv_name_parse(buf, w.len, &off, out, &olen), 0);
	assert_memory_equal(out, o, on);
}

static void
test_writer_compresses_suffix_and_rdata(void **state)
{
	uint8_t buf[512], a[RSV_NAME_MAX], b[RSV_NAME_MAX], out[RSV_NAME_MAX];
	struct rsv_writer w;
	size_t an = wire_of("example.com", a),
	       bn = wire_of("www.example.com", b);
	size_t start, off, olen;

	(void)state;
	rsv_writer_init(&w, buf, sizeof(buf), 512);
	assert_int_equal(rsv_writer_question(&w, a, an, 5, 1), 0);
	rsv_writer_section(&w, 1);
	start = w.len;
	assert_int_equal(rsv_writer_rr_name(&w, b, bn, RSV_TYPE_CNAME, 1, 30, a,
	                     an),
	    0);
	/* owner: "www" + pointer; rdata: pointer; rdlength 2 */
	assert_int_equal(w.len - start, 4 + 2 + 10 + 2);
	assert_int_equal(rsv_get16(buf + start + 6 + 8), 2);
	assert_int_equal(rsv_get16(buf + start + 6 + 10), 0xc00c);
	off = start;
	assert_int_equal(rsv_name_parse(buf, w.len, &off, out, &olen), 0);
	assert_memory_equal(out, b, bn);
	/* target "www.example.com" in the same RR as its owner */
	start = w.len;
	assert_int_equal(rsv_writer_rr_name(&w, a, an, RSV_TYPE_CNAME, 1, 30, b,
	                     bn),
	    0);
	assert_int_equal(w.len - start, 2 + 10 + 2);
}

/*
 * A failed append leaves the writer as it was, byte for byte (as
 * fuzz_wire checks), and the message bytes too (those past len are not
 * the message).  The fields first, for a readable failure.
 */
static void
writer_assert_same(const struct rsv_writer *w, const struct rsv_writer *saved,
    const uint8_t *msg)
{
	assert_int_equal(w->len, saved->len);
	assert_int_equal(w->limit, saved->limit);
	assert_int_equal(w->section, saved->section);
	assert_memory_equal(&w->hdr_counts, &saved->hdr_counts,
	    sizeof(w->hdr_counts));
	assert_int_equal(w->ncomp, saved->ncomp);
	assert_memory_equal(w->comp, saved->comp,
	    saved->ncomp * sizeof(w->comp[0]));
	assert_memory_equal(w->buf + RSV_HDR_LEN, msg + RSV_HDR_LEN,
	    w->len - RSV_HDR_LEN);
	assert_memory_equal(w, saved, sizeof(*w));
}

static void
test_writer_append_is_atomic(void **state)
{
	static const uint8_t rd[40] = {0};
	uint8_t buf[512], msg[512], name[RSV_NAME_MAX], other[RSV_NAME_MAX];
	struct rsv_writer w, saved;
	size_t n = wire_of("a.example", name), on = wire_of("b.other", other);
	size_t start;

	(void)state;
	memset(buf, 0, sizeof(buf));
	rsv_writer_init(&w, buf, sizeof(buf), 58);
	assert_int_equal(rsv_writer_question(&w, name, n, 1, 1), 0);
	rsv_writer_section(&w, 1);
	/* 12 + 15 = 27; an RR with a new owner (9) + 10 + 40 ends at 86 */
	saved = w;
	memcpy(msg, buf, sizeof(buf));
	assert_int_equal(rsv_writer_rr(&w, other, on, 16, 1, 30, rd, 40),
	    -ENOSPC);
	writer_assert_same(&w, &saved, msg);
	/* The failed RR's owner was not remembered for compression: the next
	 * RR writes it in full, where the failed one had started. */
	start = w.len;
	assert_int_equal(rsv_writer_rr_name(&w, other, on, 5, 1, 30, other, on),
	    0);
	assert_memory_equal(buf + start, other, on);
	assert_int_equal(rsv_get16(buf + start + on + 8), 2); /* rdata: ptr */
	assert_int_equal(rsv_get16(buf + start + on + 10), 0xc000 | start);
	saved = w;
	memcpy(msg, buf, sizeof(buf));
	assert_int_equal(rsv_writer_rr_name(&w, other, on, 5, 1, 30, other, on),
	    -ENOSPC);
	writer_assert_same(&w, &saved, msg);
	assert_int_equal(rsv_writer_opt(&w, 1232, 0, 0, 0, NULL, 0), -ENOSPC);
	writer_assert_same(&w, &saved, msg);
	/* exactly at the limit fits */
	rsv_writer_set_limit(&w, w.len + RSV_OPT_LEN);
	assert_int_equal(rsv_writer_opt(&w, 1232, 0, 0, RSV_EDNS_DO, NULL, 0),
	    0);
	assert_int_equal(w.len, w.limit);
	assert_int_equal(w.hdr_counts.arcount, 1);
	assert_int_equal(w.hdr_counts.ancount, 1);
}

static void
test_writer_question_is_atomic(void **state)
{
	uint8_t buf[64], name[RSV_NAME_MAX];
	struct rsv_writer w;
	size_t n = wire_of("a.example", name);

	(void)state;
	rsv_writer_init(&w, buf, sizeof(buf), 20); /* 12 + 11 + 4 > 20 */
	assert_int_equal(rsv_writer_question(&w, name, n, 1, 1), -ENOSPC);
	assert_int_equal(w.len, RSV_HDR_LEN);
	assert_int_equal(w.hdr_counts.qdcount, 0);
	assert_int_equal(w.ncomp, 0);
	rsv_writer_set_limit(&w, sizeof(buf));
	assert_int_equal(rsv_writer_question(&w, name, n, 1, 1), 0);
	assert_int_equal(w.len, RSV_HDR_LEN + n + 4);
	assert_memory_equal(buf + RSV_HDR_LEN, name, n);
	assert_int_equal(w.hdr_counts.qdcount, 1);
}

static void
test_writer_cap_bounds_like_limit(void **state)
{
	static const uint8_t ip[4] = {1, 2, 3, 4};
	uint8_t buf[40], name[RSV_NAME_MAX];
	struct rsv_writer w;
	size_t n = wire_of("a.example", name);

	(void)state;
	rsv_writer_init(&w, buf, sizeof(buf), 65535);
	assert_int_equal(rsv_writer_question(&w, name, n, 1, 1), 0);
	rsv_writer_section(&w, 1);
	/* 27 + 2 + 10 + 4 = 43 > 40 */
	assert_int_equal(rsv_writer_rr(&w, name, n, 1, 1, 30, ip, 4), -ENOSPC);
	assert_int_equal(w.len, 27);
}

static void
test_writer_rejects_misuse(void **state)
{
	static const uint8_t ip[4] = {1, 2, 3, 4};
	uint8_t buf[512], name[RSV_NAME_MAX];
	struct rsv_writer w;
	size_t n = wire_of("a.example", name);

	(void)state;
	rsv_writer_init(&w, buf, sizeof(buf), 512);
	/* an RR needs a section; a bad owner is refused */
	assert_int_equal(rsv_writer_rr(&w, name, n, 1, 1, 30, ip, 4), -EINVAL);
	assert_int_equal(rsv_writer_question(&w, name, n - 1, 1, 1), -EINVAL);
	assert_int_equal(rsv_writer_question(&w, name, n, 1, 1), 0);
	rsv_writer_section(&w, 2);
	rsv_writer_section(&w, 1); /* does not move back */
	assert_int_equal(w.section, 2);
	assert_int_equal(rsv_writer_question(&w, name, n, 1, 1), -EINVAL);
	assert_int_equal(rsv_writer_rr(&w, name, n, 1, 1, 30, ip, 4), 0);
	assert_int_equal(w.hdr_counts.nscount, 1);
	assert_int_equal(rsv_writer_rr_name(&w, name, n, 5, 1, 30, name, 3),
	    -EINVAL);
}

static void
test_writer_never_points_past_0x3fff(void **state)
{
	static const uint8_t rd[4000] = {0};
	uint8_t name[RSV_NAME_MAX], *buf;
	struct rsv_writer w;
	size_t n = wire_of("far.example", name), before;
	int i;

	(void)state;
	buf = malloc(RSV_MSG_MAX);
	assert_non_null(buf);
	rsv_writer_init(&w, buf, RSV_MSG_MAX, RSV_MSG_MAX);
	rsv_writer_section(&w, 1);
	/* root owners: nothing to remember below 0x4000 */
	for (i = 0; i < 5; i++)
		assert_int_equal(rsv_writer_rr(&w, (const uint8_t *)"", 1, 16,
		                     1, 0, rd, sizeof(rd)),
		    0);
	assert_true(w.len > 0x4000);
	assert_int_equal(rsv_writer_rr(&w, name, n, 16, 1, 0, rd, 1), 0);
	before = w.len;
	assert_int_equal(rsv_writer_rr(&w, name, n, 16, 1, 0, rd, 1), 0);
	assert_int_equal(w.len - before, n + 10 + 1);
	free(buf);
}

/* n labels "a": 2n + 1 wire bytes */
static size_t
a_labels(int n, uint8_t *out)
{
	int i;

	for (i = 0; i < n; i++) {
		out[2 * i] = 1;
		out[2 * i + 1] = 'a';
	}
	out[2 * n] = 0;
	return (size_t)(2 * n + 1);
}

/*
 * A table full of long runs of equal labels makes every compare walk deep;
 * the search gives up after a fixed amount of work and writes the name
 * out, which must still read back right.
 */
static void
test_writer_compression_work_is_bounded(void **state)
{
	uint8_t buf[2048], name[RSV_NAME_MAX], out[RSV_NAME_MAX];
	struct rsv_writer w;
	size_t n, off, olen, before;

	(void)state;
	rsv_writer_init(&w, buf, sizeof(buf), sizeof(buf));
	rsv_writer_section(&w, 1);
	n = a_labels(1, name);
	assert_int_equal(rsv_writer_rr(&w, name, n, 16, 1, 0, NULL, 0), 0);
	n = a_labels(100, name);
	assert_int_equal(rsv_writer_rr(&w, name, n, 16, 1, 0, NULL, 0), 0);
	assert_int_equal(w.ncomp, RSV_COMP_MAX);
	n = a_labels(37, name);
	before = w.len;
	assert_int_equal(rsv_writer_rr(&w, name, n, 16, 1, 0, NULL, 0), 0);
	assert_true(w.len - before <= n + 10);
	off = before;
	assert_int_equal(rsv_name_parse(buf, w.len, &off, out, &olen), 0);
	assert_int_equal(olen, n);
	assert_memory_equal(out, name, n);
}

/*
 * Truncation.
 */

/* rdata name layout of a type, for the test's own flattener. */
static int
names_in(uint16_t type, size_t *fixed_before, size_t *nnames)
{
	*fixed_before = 0;
	*nnames = 1;
	switch (type) {
	case RSV_TYPE_NS:
	case RSV_TYPE_CNAME:
	case RSV_TYPE_PTR:
		return 1;
	case RSV_TYPE_MX:
		*fixed_before = 2;
		return 1;
	case RSV_TYPE_SRV:
		*fixed_before = 6;
		return 1;
	case RSV_TYPE_SOA:
		*nnames = 2;
		return 1;
	default:
		return 0;
	}
}

/*
 * Flattens a message into a canonical form: header (without counts), then
 * each question and RR with every name uncompressed; RR boundaries are
 * recorded in rrs[] (offsets into out).  Returns the RR count.
 */
static size_t
flatten(const uint8_t *pkt, size_t len, uint8_t *out, size_t *outlen,
    size_t *rrs)
{
	size_t off = RSV_HDR_LEN, n = 0, nlen, count = 0, fb, nn, i, k;
	unsigned total, qd;

	qd = rsv_get16(pkt + 4);
	total = rsv_get16(pkt + 6) + rsv_get16(pkt + 8) + rsv_get16(pkt + 10);
	memcpy(out, pkt, 4);
	n = 4;
	for (i = 0; i < qd; i++) {
		assert_int_equal(rsv_name_parse(pkt, len, &off, out + n, &nlen),
		    0);
		n += nlen;
		memcpy(out + n, pkt + off, 4);
		n += 4;
		off += 4;
	}
	for (i = 0; i < total; i++) {
		uint16_t type, rdlen;
		size_t rdend, rdstart;

		rrs[count++] = n;
		assert_int_equal(rsv_name_parse(pkt, len, &off, out + n, &nlen),
		    0);
		n += nlen;
		type = rsv_get16(pkt + off);
		rdlen = rsv_get16(pkt + off + 8);
		memcpy(out + n, pkt + off, 8);
		n += 8;
		off += 10;
		rdend = off + rdlen;
		rdstart = n;
		if (names_in(type, &fb, &nn)) {
			memcpy(out + n, pkt + off, fb);
			n += fb;
			off += fb;
			for (k = 0; k < nn; k++) {
				assert_int_equal(rsv_name_parse(pkt, rdend,
				                     &off, out + n, &nlen),
				    0);
				n += nlen;
			}
			if (type == RSV_TYPE_SOA) {
				memcpy(out + n, pkt + off, 20);
				n += 20;
				off += 20;
			}
			assert_int_equal(off, rdend);
		} else {
			memcpy(out + n, pkt + off, rdlen);
			n += rdlen;
			off = rdend;
		}
		(void)rdstart;
	}
	assert_int_equal(off, len);
	rrs[count] = n;
	*outlen = n;
	return count;
}

/* 64 A RRs owned by aaaaaaaaaaaa.aaaaaa., uncompressed, for giant-tc. */
static void
build_giant(struct pb *p, const char *qname, int opt)
{
	int i;

	pb_hdr(p, RSV_F_QR | RSV_F_AA | RSV_F_RD, 1, 64, 0, opt ? 1 : 0);
	pb_question(p, qname, RSV_TYPE_A);
	for (i = 0; i < 64; i++)
		pb_a(p, "aaaaaaaaaaaa.aaaaaa", 0x0a000000u + (uint32_t)i);
	if (opt)
		pb_opt(p, 4096, 0, RSV_EDNS_DO);
}

static void
test_truncate_copies_fitting_message(void **state)
{
	uint8_t out[4096];
	struct pb p;
	size_t olen;

	(void)state;
	build_giant(&p, "giant-tc", 1);
	assert_true(p.n > 512);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, p.n, out, sizeof(out),
	                     &olen),
	    0);
	assert_int_equal(olen, p.n);
	assert_memory_equal(out, p.b, p.n);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 65535, out, p.n, &olen), 0);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 65535, out, p.n - 1, &olen),
	    -ENOSPC);
}

static void
test_truncate_giant_tc_keeps_29_rrs(void **state)
{
	uint8_t out[4096], fa[8192], fb[8192];
	size_t ra[80], rb[80], fal, fbl, olen, n;
	struct pb p;

	(void)state;
	build_giant(&p, "giant-tc", 0);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 512, out, sizeof(out),
	                     &olen),
	    0);
	assert_int_equal(olen, 12 + 14 + 35 + 28 * 16);
	assert_true(rsv_get16(out + 2) & RSV_F_TC);
	assert_int_equal(rsv_get16(out + 2) & ~RSV_F_TC,
	    RSV_F_QR | RSV_F_AA | RSV_F_RD);
	assert_int_equal(rsv_get16(out + 4), 1);
	assert_int_equal(rsv_get16(out + 6), 29);
	assert_int_equal(rsv_get16(out + 10), 0);
	/* the kept RRs are the first 29, unchanged */
	flatten(p.b, p.n, fa, &fal, ra);
	n = flatten(out, olen, fb, &fbl, rb);
	assert_int_equal(n, 29);
	assert_int_equal(rb[29], ra[29]);
	assert_memory_equal(fa + 4, fb + 4, ra[29] - 4);
	/* "giant." is as long as "giant-tc." minus 3: still 29 */
	build_giant(&p, "giant", 0);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 512, out, sizeof(out),
	                     &olen),
	    0);
	assert_int_equal(rsv_get16(out + 6), 29);
}

static void
test_truncate_sets_opt_aside_and_keeps_it(void **state)
{
	uint8_t out[4096];
	struct pb p;
	size_t olen;

	(void)state;
	build_giant(&p, "giant-tc", 1);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 512, out, sizeof(out),
	                     &olen),
	    0);
	/* budget 512 - 11 = 501: 28 RRs (12 + 14 + 35 + 27 * 16 = 493) */
	assert_int_equal(rsv_get16(out + 6), 28);
	assert_int_equal(rsv_get16(out + 10), 1);
	assert_int_equal(olen, 493 + RSV_OPT_LEN);
	assert_true(rsv_get16(out + 2) & RSV_F_TC);
	/* the OPT is last, intact: a query parser reads it back */
	assert_int_equal(out[olen - 11], 0);
	assert_int_equal(rsv_get16(out + olen - 10), RSV_TYPE_OPT);
	assert_int_equal(rsv_get16(out + olen - 8), 4096);
	assert_int_equal(rsv_get32(out + olen - 6), RSV_EDNS_DO);
	assert_int_equal(rsv_get16(out + olen - 2), 0);
	/* compressed, everything fits in 2048 (but not uncompressed) */
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 2048, out, sizeof(out),
	                     &olen),
	    0);
	assert_int_equal(olen, 12 + 14 + 35 + 63 * 16 + RSV_OPT_LEN);
	assert_int_equal(rsv_get16(out + 6), 64);
	assert_int_equal(rsv_get16(out + 10), 1);
	assert_false(rsv_get16(out + 2) & RSV_F_TC);
	/* the output is a valid message: truncating it again is stable */
	memcpy(p.b, out, olen);
	p.n = olen;
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 2048, out, sizeof(out),
	                     &olen),
	    0);
	assert_int_equal(olen, p.n);
	assert_memory_equal(out, p.b, olen);
}

static void
test_truncate_keeps_existing_tc(void **state)
{
	uint8_t out[4096];
	struct pb p;
	size_t olen;

	(void)state;
	build_giant(&p, "giant-tc", 0);
	p.b[2] |= RSV_F_TC >> 8;
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 4096, out, sizeof(out),
	                     &olen),
	    0);
	assert_true(rsv_get16(out + 2) & RSV_F_TC);
	/* compression alone makes it fit: TC stays as it was (set) */
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 1200, out, sizeof(out),
	                     &olen),
	    0);
	assert_int_equal(rsv_get16(out + 6), 64);
	assert_true(rsv_get16(out + 2) & RSV_F_TC);
	p.b[2] &= (uint8_t) ~(RSV_F_TC >> 8);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 1200, out, sizeof(out),
	                     &olen),
	    0);
	assert_int_equal(rsv_get16(out + 6), 64);
	assert_false(rsv_get16(out + 2) & RSV_F_TC);
	assert_true(olen < p.n);
}

/* answer: 2 small, 1 big, 1 small; authority 1 small; additional 1. */
static void
test_truncate_stops_sections_at_first_misfit(void **state)
{
	uint8_t out[4096], big[300];
	struct pb p;
	size_t olen;

	(void)state;
	memset(big, 'x', sizeof(big));
	pb_hdr(&p, RSV_F_QR, 1, 4, 1, 1);
	pb_question(&p, "q.example", RSV_TYPE_TXT);
	pb_a(&p, "q.example", 1);
	pb_a(&p, "q.example", 2);
	pb_name(&p, "q.example");
	pb_fixed(&p, RSV_TYPE_TXT, 1, 30, sizeof(big));
	pb_raw(&p, big, sizeof(big));
	pb_a(&p, "q.example", 3);
	pb_a(&p, "ns.example", 4);
	pb_a(&p, "ns.example", 5);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 300, out, sizeof(out),
	                     &olen),
	    0);
	assert_true(olen <= 300);
	assert_int_equal(rsv_get16(out + 6), 2);
	assert_int_equal(rsv_get16(out + 8), 0);
	assert_int_equal(rsv_get16(out + 10), 0);
	assert_true(rsv_get16(out + 2) & RSV_F_TC);
	assert_int_equal(olen, 12 + 15 + 2 * 16);
}

static void
test_truncate_never_touches_tsig(void **state)
{
	uint8_t out[4096], mac[64];
	struct pb p;
	size_t olen, n;

	(void)state;
	memset(mac, 0x5a, sizeof(mac));
	build_giant(&p, "giant-tc", 0);
	p.b[11] = 1; /* arcount */
	pb_name(&p, "key.example");
	pb_fixed(&p, RSV_TYPE_TSIG, 255, 0, sizeof(mac));
	pb_raw(&p, mac, sizeof(mac));
	n = p.n;
	assert_int_equal(rsv_msg_truncate(p.b, n, 512, out, sizeof(out), &olen),
	    -EMSGSIZE);
	assert_int_equal(rsv_msg_truncate(p.b, n, n, out, sizeof(out), &olen),
	    0);
	assert_int_equal(olen, n);
	assert_memory_equal(out, p.b, n);
}

/*
 * A reply whose rdata names are compressed against the question and each
 * other, and which must be re-encoded (too big because of a TXT at the
 * end): every kept RR must read back equal.
 */
static void
build_named_reply(struct pb *p)
{
	uint8_t txt[600];
	size_t soa_owner, mx_at;

	memset(txt, 't', sizeof(txt));
	pb_hdr(p, RSV_F_QR | RSV_F_RD | RSV_F_RA, 1, 3, 2, 3);
	pb_question(p, "WWW.Example.ORG", RSV_TYPE_MX); /* offset 12 */
	/* CNAME www.example.org -> mail.example.org (lower case) */
	pb_labels(p, "www.example.org");
	pb_u8(p, 0);
	pb_fixed(p, RSV_TYPE_CNAME, 1, 300, 7);
	pb_labels(p, "mail");
	pb_ptr(p, 33 + 4); /* "example.org" of the CNAME owner (at 33) */
	/* MX 10 mx1.example.org, owner: pointer to the CNAME target */
	mx_at = p->n;
	pb_ptr(p, 33 + 17 + 10);
	pb_fixed(p, RSV_TYPE_MX, 1, 300, 2 + 4 + 2);
	pb_u16(p, 10);
	pb_labels(p, "mx1");
	pb_ptr(p, 37);
	/* SRV 0 5 53 srv.example.org (compressed here, illegal but seen) */
	pb_ptr(p, (unsigned)mx_at);
	pb_fixed(p, RSV_TYPE_SRV, 1, 300, 6 + 4 + 2);
	pb_u16(p, 0);
	pb_u16(p, 5);
	pb_u16(p, 53);
	pb_labels(p, "srv");
	pb_ptr(p, 37);
	/* authority: SOA and NS */
	soa_owner = p->n;
	pb_ptr(p, 37);
	pb_fixed(p, RSV_TYPE_SOA, 1, 60, 4 + 2 + 11 + 2 + 20);
	pb_labels(p, "ns1");
	pb_ptr(p, 37);
	pb_labels(p, "hostmaster");
	pb_ptr(p, 37);
	pb_u32(p, 2024010101);
	pb_u32(p, 3600);
	pb_u32(p, 600);
	pb_u32(p, 86400);
	pb_u32(p, 60);
	pb_ptr(p, (unsigned)soa_owner);
	pb_fixed(p, RSV_TYPE_NS, 1, 60, 2);
	pb_ptr(p, (unsigned)soa_owner + 2 + 10); /* ns1.example.org */
	/* additional: PTR, A, then the big TXT that cannot fit */
	pb_name(p, "1.0.0.10.in-addr.arpa");
	pb_fixed(p, RSV_TYPE_PTR, 1, 60, 2);
	pb_ptr(p, (unsigned)mx_at + 2 + 10 + 2); /* mx1.example.org */
	pb_ptr(p, (unsigned)mx_at + 2 + 10 + 2);
	pb_fixed(p, RSV_TYPE_A, 1, 60, 4);
	pb_u32(p, 0x0a000001);
	pb_ptr(p, 12);
	pb_fixed(p, RSV_TYPE_TXT, 1, 60, sizeof(txt));
	pb_raw(p, txt, sizeof(txt));
}

static void
test_truncate_reencodes_rdata_names(void **state)
{
	uint8_t out[4096], fa[8192], fb[8192];
	size_t ra[16], rb[16], fal, fbl, olen, n, off, i;
	struct pb p;

	(void)state;
	build_named_reply(&p);
	assert_int_equal(flatten(p.b, p.n, fa, &fal, ra), 8);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 512, out, sizeof(out),
	                     &olen),
	    0);
	assert_true(olen <= 512);
	n = flatten(out, olen, fb, &fbl, rb);
	assert_int_equal(n, 7);
	assert_int_equal(rsv_get16(out + 6), 3);
	assert_int_equal(rsv_get16(out + 8), 2);
	assert_int_equal(rsv_get16(out + 10), 2);
	assert_true(rsv_get16(out + 2) & RSV_F_TC);
	/* header flags but TC, question and the 7 RRs read back equal */
	assert_int_equal(rsv_get16(fb + 2) & ~RSV_F_TC, rsv_get16(fa + 2));
	assert_int_equal(rb[7], ra[7]);
	assert_memory_equal(fa + 4, fb + 4, ra[7] - 4);
	/* the SRV target went out uncompressed: rdlength 6 + 17 */
	off = RSV_HDR_LEN;
	for (i = 0; i < 1 + 3; i++) {
		size_t nl;
		uint8_t nm[RSV_NAME_MAX];

		assert_int_equal(rsv_name_parse(out, olen, &off, nm, &nl), 0);
		if (i == 0) {
			off += 4;
			continue;
		}
		if (i == 3) {
			assert_int_equal(rsv_get16(out + off), RSV_TYPE_SRV);
			assert_int_equal(rsv_get16(out + off + 8), 6 + 17);
		}
		off += 10 + rsv_get16(out + off + 8);
	}
}

static void
test_truncate_rejects_malformed(void **state)
{
	uint8_t out[4096];
	struct pb p;
	size_t olen;

	(void)state;
	build_giant(&p, "giant-tc", 0);
	/* trailing byte */
	p.b[p.n] = 0;
	assert_int_equal(rsv_msg_truncate(p.b, p.n + 1, 512, out, sizeof(out),
	                     &olen),
	    -EINVAL);
	/* one RR missing */
	assert_int_equal(rsv_msg_truncate(p.b, p.n - 1, 512, out, sizeof(out),
	                     &olen),
	    -EINVAL);
	assert_int_equal(rsv_msg_truncate(p.b, 11, 512, out, sizeof(out),
	                     &olen),
	    -EINVAL);
	/* two OPTs */
	pb_hdr(&p, RSV_F_QR, 1, 0, 0, 2);
	pb_question(&p, "a.example", 1);
	pb_opt(&p, 512, 0, 0);
	pb_opt(&p, 512, 0, 0);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 512, out, sizeof(out),
	                     &olen),
	    -EINVAL);
	/* OPT in the answer */
	pb_hdr(&p, RSV_F_QR, 1, 1, 0, 0);
	pb_question(&p, "a.example", 1);
	pb_opt(&p, 512, 0, 0);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 512, out, sizeof(out),
	                     &olen),
	    -EINVAL);
}

static void
test_truncate_needs_room_for_question(void **state)
{
	uint8_t out[4096];
	struct pb p;
	size_t olen;

	(void)state;
	build_giant(&p, "giant-tc", 1);
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 512, out, 25, &olen),
	    -ENOSPC);
	/* a limit below header + question still echoes the question */
	assert_int_equal(rsv_msg_truncate(p.b, p.n, 20, out, sizeof(out),
	                     &olen),
	    0);
	assert_int_equal(olen, 12 + 14);
	assert_int_equal(rsv_get16(out + 4), 1);
	assert_int_equal(rsv_get16(out + 6), 0);
	assert_int_equal(rsv_get16(out + 10), 0);
	assert_true(rsv_get16(out + 2) & RSV_F_TC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prehandler_header_rules),
	    cmocka_unit_test(test_short_packet_is_dropped),
	    cmocka_unit_test(test_valid_query_fields),
	    cmocka_unit_test(test_prehandler_body_rules),
	    cmocka_unit_test(test_pointer_loop_is_formerr),
	    cmocka_unit_test(test_opt_version_1_is_badvers_with_fields),
	    cmocka_unit_test(test_badvers_yields_to_formerr),
	    cmocka_unit_test(test_tsig_last_in_additional_is_flagged),
	    cmocka_unit_test(test_opt_options_are_borrowed),
	    cmocka_unit_test(test_udp_limit_clamps),
	    cmocka_unit_test(test_name_parse_moves_past_pointer),
	    cmocka_unit_test(test_name_parse_rejects_pointer_past_end),
	    cmocka_unit_test(test_name_parse_bounds_pointer_hops),
	    cmocka_unit_test(test_name_to_text_cases),
	    cmocka_unit_test(test_name_to_text_needs_room_for_nul),
	    cmocka_unit_test(test_name_to_text_longest_name),
	    cmocka_unit_test(test_name_from_text_cases),
	    cmocka_unit_test(test_name_equal_ignores_ascii_case_only),
	    cmocka_unit_test(test_writer_compresses_owner_to_question),
	    cmocka_unit_test(test_writer_compression_is_case_sensitive),
	    cmocka_unit_test(test_writer_compresses_suffix_and_rdata),
	    cmocka_unit_test(test_writer_append_is_atomic),
	    cmocka_unit_test(test_writer_question_is_atomic),
	    cmocka_unit_test(test_writer_cap_bounds_like_limit),
	    cmocka_unit_test(test_writer_rejects_misuse),
	    cmocka_unit_test(test_writer_never_points_past_0x3fff),
	    cmocka_unit_test(test_writer_compression_work_is_bounded),
	    cmocka_unit_test(test_truncate_copies_fitting_message),
	    cmocka_unit_test(test_truncate_giant_tc_keeps_29_rrs),
	    cmocka_unit_test(test_truncate_sets_opt_aside_and_keeps_it),
	    cmocka_unit_test(test_truncate_keeps_existing_tc),
	    cmocka_unit_test(test_truncate_stops_sections_at_first_misfit),
	    cmocka_unit_test(test_truncate_never_touches_tsig),
	    cmocka_unit_test(test_truncate_reencodes_rdata_names),
	    cmocka_unit_test(test_truncate_rejects_malformed),
	    cmocka_unit_test(test_truncate_needs_room_for_question),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
