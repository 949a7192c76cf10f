/*
 * test_pb.c: nds_pb_parse() and nds_pb_build() (NameTable in protobuf
 * binary form, SPEC §1), nds_nametable_foreach(), and the protobuf branch
 * of nds_file_load() (SPEC §10.1).  The golden vectors come from the
 * reference protobuf library: test/unit/gen_pb_golden.py.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test/unit/tmpfile.h"

#include "nds/nds.h"
#include "test/unit/nds_expect.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif
#define GOLDEN SRCDIR "/test/unit/golden/"
#define SPEC8_JSON SRCDIR "/test/blackbox/fixtures/spec8.json"

/* ---- helpers ----------------------------------------------------------- */

/* Reads a whole file (test data); *len bytes, NUL appended. */
static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (f == NULL)
		fail_msg("%s: cannot open", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	assert_int_equal(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

struct lines {
	char **v;
	size_t n;
};

static void
put_list(FILE *f, const char *name, const char *const *v, size_t n)
{
	size_t i;

	fprintf(f, " %s=", name);
	for (i = 0; i < n; i++)
		fprintf(f, "%s[%s]", i ? "," : "", v[i]);
}

static int
dump_entry(const char *key, const struct nds_nameinfo *in, void *arg)
{
	struct lines *l = arg;
	size_t len;
	char *s;
	FILE *f = open_memstream(&s, &len);

	assert_non_null(f);
	assert_non_null(in->registry);
	assert_non_null(in->shortname);
	assert_non_null(in->ns);
	fprintf(f, "%s", key);
	put_list(f, "ips", in->ips, in->nips);
	fprintf(f, " reg=%s short=%s ns=%s", in->registry, in->shortname,
	    in->ns);
	put_list(f, "alt", in->alt_hosts, in->nalt);
	fclose(f);
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	assert_non_null(l->v);
	l->v[l->n++] = s;
	return 0;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The table as text, one sorted line per entry (malloc'd). */
static char *
dump(const struct nds_nametable *nt)
{
	struct lines l = {0};
	size_t len, i;
	char *s;
	FILE *f = open_memstream(&s, &len);

	assert_non_null(f);
	assert_int_equal(nds_nametable_foreach(nt, dump_entry, &l), 0);
	assert_int_equal(l.n, nds_nametable_count(nt));
	if (l.n > 0)
		qsort(l.v, l.n, sizeof(*l.v), str_cmp);
	for (i = 0; i < l.n; i++) {
		fprintf(f, "%s\n", l.v[i]);
		free(l.v[i]);
	}
	free(l.v);
	fclose(f);
	return s;
}

/* Parses buf (which must be valid) and compares its dump with want. */
static void
expect_table(const void *buf, size_t len, const char *want)
{
	struct nds_nametable *nt;
	char err[256] = "";
	char *got;

	if (nds_pb_parse(buf, len, &nt, err, sizeof(err)) != 0)
		fail_msg("parse: %s", err);
	got = dump(nt);
	if (strcmp(got, want) != 0)
		fail_msg("got:\n%s\nwant:\n%s", got, want);
	free(got);
	nds_nametable_destroy(nt);
}

/* build(nt) -> parse -> build: identical bytes, same table. */
static void
expect_round_trip(const struct nds_nametable *nt)
{
	struct nds_nametable *nt2;
	uint8_t *b1, *b2;
	size_t l1, l2;
	char err[256];
	char *d1, *d2;

	assert_int_equal(nds_pb_build(nt, &b1, &l1), 0);
	assert_non_null(b1);
	if (nds_pb_parse(b1, l1, &nt2, err, sizeof(err)) != 0)
		fail_msg("reparse: %s", err);
	assert_int_equal(nds_pb_build(nt2, &b2, &l2), 0);
	assert_int_equal(l1, l2);
	assert_memory_equal(b1, b2, l1);
	d1 = dump(nt);
	d2 = dump(nt2);
	assert_string_equal(d1, d2);
	free(d1);
	free(d2);
	free(b1);
	free(b2);
	nds_nametable_destroy(nt2);
}

/* A protobuf byte string being put together. */
struct vec {
	uint8_t b[8192];
	size_t n;
};

static void
v_bytes(struct vec *v, const void *p, size_t n)
{
	assert_true(n <= sizeof(v->b) - v->n);
	memcpy(v->b + v->n, p, n);
	v->n += n;
}

static void
v_varint(struct vec *v, uint64_t x)
{
	uint8_t b;

	do {
		b = (uint8_t)(x & 0x7f);
		x >>= 7;
		if (x != 0)
			b |= 0x80;
		v_bytes(v, &b, 1);
	} while (x != 0);
}

/* A length-delimited field. */
static void
v_field(struct vec *v, uint32_t field, const void *p, size_t n)
{
	v_varint(v, (uint64_t)field << 3 | 2);
	v_varint(v, n);
	v_bytes(v, p, n);
}

static void
v_str(struct vec *v, uint32_t field, const char *s)
{
	v_field(v, field, s, strlen(s));
}

/* ---- decoding ---------------------------------------------------------- */

static void
test_empty_input_is_an_empty_table(void **state)
{
	struct nds_nametable *nt;
	char err[64];

	assert_int_equal(nds_pb_parse(NULL, 0, &nt, err, sizeof(err)), 0);
	assert_non_null(nt);
	assert_int_equal(nds_nametable_count(nt), 0);
	nds_nametable_destroy(nt);
	assert_int_equal(nds_pb_parse((const uint8_t *)"", 0, &nt, NULL, 0), 0);
	assert_int_equal(nds_nametable_count(nt), 0);
	nds_nametable_destroy(nt);
}

#define V(...) (const uint8_t[]){__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})

static const struct {
	const char *what;
	const uint8_t *buf;
	size_t len;
	const char *want;
} good[] = {
    {"one entry, all fields",
        V(0x0a, 0x2b,                                      /* table */
            0x0a, 0x03, 'a', '.', 'b',                     /* key */
            0x12, 0x24,                                    /* value */
            0x0a, 0x07, '1', '.', '2', '.', '3', '.', '4', /* ips */
            0x0a, 0x03, ':', ':', '1',                     /* ips */
            0x12, 0x01, 'K',                               /* registry */
            0x1a, 0x02, 's', 'n',                          /* shortname */
            0x22, 0x03, 'n', 's', '1',                     /* namespace */
            0x2a, 0x03, 'x', '.', 'y',                     /* alt_hosts */
            0x2a, 0x03, 'z', '.', 'w'),                    /* alt_hosts */
        "a.b ips=[1.2.3.4],[::1] reg=K short=sn ns=ns1 alt=[x.y],[z.w]\n"},
    {"key only, no value", V(0x0a, 0x03, 0x0a, 0x01, 'k'),
        "k ips= reg= short= ns= alt=\n"},
    {"empty value", V(0x0a, 0x05, 0x0a, 0x01, 'k', 0x12, 0x00),
        "k ips= reg= short= ns= alt=\n"},
    {"value before key",
        V(0x0a, 0x08, 0x12, 0x03, 0x12, 0x01, 'E', 0x0a, 0x01, 'k'),
        "k ips= reg=E short= ns= alt=\n"},
    {"empty ip kept (repeated)",
        V(0x0a, 0x07, 0x0a, 0x01, 'k', 0x12, 0x02, 0x0a, 0x00),
        "k ips=[] reg= short= ns= alt=\n"},
    {"duplicate key: the last one wins",
        V(0x0a, 0x08, 0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x01, '1', 0x0a, 0x08,
            0x0a, 0x01, 'j', 0x12, 0x03, 0x0a, 0x01, '3', 0x0a, 0x08, 0x0a,
            0x01, 'k', 0x12, 0x03, 0x0a, 0x01, '2'),
        "j ips=[3] reg= short= ns= alt=\n"
        "k ips=[2] reg= short= ns= alt=\n"},
    {"key twice in one entry: the last one wins",
        V(0x0a, 0x06, 0x0a, 0x01, 'a', 0x0a, 0x01, 'b'),
        "b ips= reg= short= ns= alt=\n"},
    {"value twice in one entry: merged",
        V(0x0a, 0x15, 0x0a, 0x01, 'k', 0x12, 0x06, 0x0a, 0x01, '1', 0x12, 0x01,
            'A', 0x12, 0x08, 0x0a, 0x01, '2', 0x12, 0x01, 'B', 0x2a, 0x00),
        "k ips=[1],[2] reg=B short= ns= alt=[]\n"},
    {"scalar string twice: the last one wins",
        V(0x0a, 0x0e, 0x0a, 0x01, 'k', 0x12, 0x09, 0x1a, 0x01, 'a', 0x1a, 0x01,
            'b', 0x22, 0x01, 'n'),
        "k ips= reg= short=b ns=n alt=\n"},
    {"unknown fields at the top level",
        V(0x10, 0x96, 0x01,                      /* 2: varint */
            0x19, 1, 2, 3, 4, 5, 6, 7, 8,        /* 3: fixed64 */
            0x22, 0x02, 'h', 'i',                /* 4: bytes */
            0x2d, 1, 2, 3, 4,                    /* 5: fixed32 */
            0x0a, 0x03, 0x0a, 0x01, 'k',         /* the entry */
            0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00), /* 2^29-1: varint */
        "k ips= reg= short= ns= alt=\n"},
    {"unknown fields in the entry",
        V(0x0a, 0x17, 0x18, 0x01, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x01, 'k',
            0x2a, 0x00, 0x35, 1, 2, 3, 4, 0x18, 0x7f),
        "k ips= reg= short= ns= alt=\n"},
    {"unknown fields in NameInfo",
        V(0x0a, 0x1b, 0x0a, 0x01, 'k', 0x12, 0x16, 0x30, 0xff, 0x01, 0x39, 1, 2,
            3, 4, 5, 6, 7, 8, 0x0a, 0x01, '1', 0x42, 0x00, 0x4d, 1, 2, 3, 4),
        "k ips=[1] reg= short= ns= alt=\n"},
    {"10-byte varint with the top bit",
        V(0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            0x0a, 0x03, 0x0a, 0x01, 'k'),
        "k ips= reg= short= ns= alt=\n"},
    {"non-minimal varints are accepted as protobuf does",
        V(0x8a, 0x00, 0x84, 0x80, 0x00, 0x0a, 0x81, 0x00, 'k'),
        "k ips= reg= short= ns= alt=\n"},
    {"UTF-8 is not checked", V(0x0a, 0x04, 0x0a, 0x02, 0xff, 0xc3),
        "\xff\xc3 ips= reg= short= ns= alt=\n"},
};

static void
test_hand_built_vectors_decode(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(*good); i++) {
		print_message("%s\n", good[i].what);
		expect_table(good[i].buf, good[i].len, good[i].want);
	}
}

static void
test_known_field_with_other_wire_type_is_skipped(void **state)
{
	/* table as varint; key as varint; ips as fixed32; registry as
	 * fixed64: all skipped as protobuf skips a mismatched wire type. */
	static const uint8_t pb[] = {0x08, 0x01, 0x0a, 0x1a, 0x08, 0x05, 0x0a,
	    0x01, 'k', 0x12, 0x13, 0x08, 0x01, 0x0d, 1, 2, 3, 4, 0x11, 1, 2, 3,
	    4, 5, 6, 7, 8, 0x1a, 0x01, 's'};

	expect_table(pb, sizeof(pb), "k ips= reg= short=s ns= alt=\n");
}

static const struct {
	const char *what;
	const uint8_t *buf;
	size_t len;
	const char *want; /* substring of the message */
} bad[] = {
    {"truncated tag varint", V(0x80), "truncated varint at byte 0"},
    {"truncated length varint", V(0x0a, 0x80), "truncated varint at byte 1"},
    {"truncated unknown varint", V(0x10, 0xff, 0xff),
        "truncated varint at byte 1"},
    {"varint longer than 10 bytes",
        V(0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
            0x00),
        "varint longer than 10 bytes at byte 1"},
    {"varint overflowing 64 bits",
        V(0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02),
        "varint overflows 64 bits at byte 1"},
    {"length overflowing 64 bits",
        V(0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
        "varint overflows 64 bits at byte 1"},
    {"length 2^64-1",
        V(0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
        "NameTable field 1: length 18446744073709551615 beyond end at "
        "byte 1"},
    {"table: length past end", V(0x0a, 0x05, 0x0a, 0x01, 'k'),
        "NameTable field 1: length 5 beyond end at byte 1"},
    {"table: length 1 past end", V(0x0a, 0x04, 0x0a, 0x01, 'k'),
        "NameTable field 1: length 4 beyond end"},
    {"entry: key length past entry end", V(0x0a, 0x03, 0x0a, 0x02, 'k', 'x'),
        "table entry field 1: length 2 beyond end at byte 3"},
    {"entry: value length past entry end",
        V(0x0a, 0x05, 0x0a, 0x01, 'k', 0x12, 0x02, 0x0a, 0x00),
        "table entry field 2: length 2 beyond end at byte 6"},
    {"NameInfo: ips length past value end",
        V(0x0a, 0x08, 0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x02, '1', '2'),
        "NameInfo field 1: length 2 beyond end at byte 8"},
    {"NameInfo: alt_hosts length past end",
        V(0x0a, 0x08, 0x0a, 0x01, 'k', 0x12, 0x03, 0x2a, 0x05, 'x'),
        "NameInfo field 5: length 5 beyond end"},
    {"NameInfo: unknown bytes past end",
        V(0x0a, 0x07, 0x0a, 0x01, 'k', 0x12, 0x02, 0x32, 0x01),
        "NameInfo field 6: length 1 beyond end"},
    {"NameInfo: truncated varint",
        V(0x0a, 0x07, 0x0a, 0x01, 'k', 0x12, 0x02, 0x30, 0x80),
        "truncated varint at byte 8"},
    {"NameInfo: truncated tag at the value's end",
        V(0x0a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 0x80, 0x01),
        "truncated varint at byte 7"},
    {"truncated fixed64", V(0x09, 1, 2, 3, 4, 5, 6, 7),
        "NameTable field 1: truncated fixed64 at byte 1"},
    {"truncated fixed32 in the entry", V(0x0a, 0x04, 0x0a, 0x00, 0x1d, 1, 2),
        "table entry field 3: truncated fixed32 at byte 5"},
    {"group at the top level", V(0x0b, 0x0c),
        "NameTable field 1: group (wire type 3) not supported at byte 0"},
    {"end group at the top level", V(0x0c),
        "NameTable field 1: group (wire type 4)"},
    {"group in the entry", V(0x0a, 0x02, 0x1b, 0x1c),
        "table entry field 3: group (wire type 3)"},
    {"group in NameInfo",
        V(0x0a, 0x07, 0x0a, 0x01, 'k', 0x12, 0x02, 0x0b, 0x0c),
        "NameInfo field 1: group (wire type 3) not supported at byte 7"},
    {"wire type 6", V(0x0e, 0x00), "NameTable field 1: invalid wire type 6"},
    {"wire type 7 in NameInfo",
        V(0x0a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 0x17),
        "NameInfo field 2: invalid wire type 7"},
    {"field number 0", V(0x02, 0x00), "NameTable: field number 0 at byte 0"},
    {"field number 0, varint", V(0x00, 0x00), "field number 0"},
    {"field number 0 in the entry", V(0x0a, 0x02, 0x00, 0x00),
        "table entry: field number 0 at byte 2"},
    {"field number 0 in NameInfo",
        V(0x0a, 0x07, 0x0a, 0x01, 'k', 0x12, 0x02, 0x02, 0x00),
        "NameInfo: field number 0 at byte 7"},
    {"field number 2^29", V(0x80, 0x80, 0x80, 0x80, 0x10, 0x00),
        "NameTable: field number 536870912 too large at byte 0"},
    {"tag over 32 bits", V(0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00),
        "too large at byte 0"},
    {"NUL in key", V(0x0a, 0x05, 0x0a, 0x03, 'a', 0x00, 'b'),
        "table entry field 1: NUL in string at byte 5"},
    {"NUL in ip",
        V(0x0a, 0x0b, 0x0a, 0x01, 'k', 0x12, 0x06, 0x0a, 0x04, '1', '.', '1',
            0x00),
        "NameInfo field 1: NUL in string at byte 12"},
    {"NUL in registry",
        V(0x0a, 0x08, 0x0a, 0x01, 'k', 0x12, 0x03, 0x12, 0x01, 0x00),
        "NameInfo field 2: NUL in string"},
    {"NUL in alt_hosts",
        V(0x0a, 0x08, 0x0a, 0x01, 'k', 0x12, 0x03, 0x2a, 0x01, 0x00),
        "NameInfo field 5: NUL in string"},
    {"entry without key", V(0x0a, 0x00), "table entry at byte 2: empty key"},
    {"entry with empty key", V(0x0a, 0x02, 0x0a, 0x00),
        "table entry at byte 2: empty key"},
    {"entry with only a value", V(0x0a, 0x04, 0x12, 0x02, 0x12, 0x00),
        "empty key"},
    {"a bad entry after a good one",
        V(0x0a, 0x03, 0x0a, 0x01, 'k', 0x0a, 0x03, 0x0a, 0x01),
        "NameTable field 1: length 3 beyond end at byte 6"},
};

static void
test_malformed_inputs_are_rejected(void **state)
{
	struct nds_nametable *nt;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		print_message("%s\n", bad[i].what);
		snprintf(err, sizeof(err), "(unset)");
		nt = (struct nds_nametable *)&i; /* must be reset to NULL */
		assert_int_equal(nds_pb_parse(bad[i].buf, bad[i].len, &nt, err,
		                     sizeof(err)),
		    -EINVAL);
		assert_null(nt);
		if (strstr(err, bad[i].want) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].what,
			    err, bad[i].want);
		/* NULL err is fine too; so is a short one. */
		assert_int_equal(nds_pb_parse(bad[i].buf, bad[i].len, &nt, NULL,
		                     0),
		    -EINVAL);
		assert_int_equal(nds_pb_parse(bad[i].buf, bad[i].len, &nt, err,
		                     4),
		    -EINVAL);
		assert_true(strlen(err) < 4);
	}
}

/* Every prefix of a valid table either parses or fails cleanly. */
static void
test_every_truncation_of_the_golden_table(void **state)
{
	struct nds_nametable *nt;
	size_t len, i, ok = 0;
	uint8_t *buf = slurp(GOLDEN "spec8_nametable.pb", &len);
	char err[256];

	for (i = 0; i < len; i++) {
		uint8_t *cut = malloc(i > 0 ? i : 1);

		assert_non_null(cut);
		memcpy(cut, buf, i);
		if (nds_pb_parse(cut, i, &nt, err, sizeof(err)) == 0) {
			ok++;
			nds_nametable_destroy(nt);
		} else {
			assert_null(nt);
			assert_true(err[0] != '\0');
		}
		free(cut);
	}
	/* Only the cuts at entry boundaries parse: 0 and 11 others. */
	assert_int_equal(ok, 12);
	free(buf);
}

/* ---- golden vectors from the reference library -------------------------- */

static char *
spec8_json_dump(void)
{
	struct nds_nametable *nt;
	char err[256];
	size_t len;
	uint8_t *doc = slurp(SPEC8_JSON, &len);
	char *s;

	if (nds_json_parse((const char *)doc, len, &nt, err, sizeof(err)) != 0)
		fail_msg("%s: %s", SPEC8_JSON, err);
	s = dump(nt);
	nds_nametable_destroy(nt);
	free(doc);
	return s;
}

static void
test_golden_spec8_matches_json_fixture(void **state)
{
	static const char *const names[] = {
	    "spec8_nametable.pb", "spec8_unknown.pb"};
	struct nds_nametable *nt;
	uint8_t *want, *buf, *out;
	size_t wlen, len, olen, i;
	char err[256];
	char *jd = spec8_json_dump(), *pd;

	want = slurp(GOLDEN "spec8_nametable.pb", &wlen);
	for (i = 0; i < 2; i++) {
		char path[512];

		snprintf(path, sizeof(path), GOLDEN "%s", names[i]);
		buf = slurp(path, &len);
		if (nds_pb_parse(buf, len, &nt, err, sizeof(err)) != 0)
			fail_msg("%s: %s", path, err);
		assert_int_equal(nds_nametable_count(nt), 12);
		pd = dump(nt);
		assert_string_equal(pd, jd);
		/* The encoder reproduces protobuf's deterministic bytes. */
		assert_int_equal(nds_pb_build(nt, &out, &olen), 0);
		assert_int_equal(olen, wlen);
		assert_memory_equal(out, want, wlen);
		free(out);
		free(pd);
		free(buf);
		nds_nametable_destroy(nt);
	}
	free(want);
	free(jd);
}

/* JSON fixture -> pb -> parse -> build the lookup table: SPEC §8 answers. */
static void
test_json_fixture_through_protobuf(void **state)
{
	struct nds_build_opts o = {.namespace = "ns1",
	    .domain = "ns1.svc.cluster.local",
	    .search0 = "ns1.svc.cluster.local",
	    .ttl = 30};
	struct nds_nametable *nt, *nt2;
	struct nds_table *t;
	uint8_t *doc, *pb;
	size_t len, plen;
	char err[256];
	char *d1, *d2;

	doc = slurp(SPEC8_JSON, &len);
	assert_int_equal(nds_json_parse((const char *)doc, len, &nt, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(nds_pb_build(nt, &pb, &plen), 0);
	if (nds_pb_parse(pb, plen, &nt2, err, sizeof(err)) != 0)
		fail_msg("parse: %s", err);
	d1 = dump(nt);
	d2 = dump(nt2);
	assert_string_equal(d1, d2);
	expect_round_trip(nt2);
	assert_int_equal(nds_table_build(nt2, &o, &t, err, sizeof(err)), 0);
	assert_int_equal(nds_table_entries(t), 12);
	expect_ips(t, "www.google.com.", "1.1.1.1 ");
	expect_ips(t, "productpage.", "9.9.9.9 ");
	expect_ips(t, "example.ns2.svc.", "10.10.10.10 ");
	expect_ips(t, "details.ns2.svc.cluster.remote.",
	    "11.11.11.11,12.12.12.12,13.13.13.13,14.14.14.14 ");
	expect_ips(t, "svc-with-alt.ns1.svc.clusterset.local.", "15.15.15.15 ");
	expect_ips(t, "dual.localhost.", "2.2.2.2 2001:db8::ff00:42:8329");
	expect_ips(t, "a.b.wildcard.", "11.11.11.11 ");
	expect_ips(t, "example.localhost.", "3.3.3.3 ");
	expect_ips(t, "example.", "ENOENT");
	nds_table_unref(t);
	nds_nametable_destroy(nt);
	free(d1);
	free(d2);
	free(pb);
	free(doc);
}

/* ---- encoding ---------------------------------------------------------- */

static void
test_build_empty_table(void **state)
{
	struct nds_nametable *nt;
	uint8_t *out;
	size_t len = 99;

	assert_int_equal(nds_nametable_create(&nt), 0);
	assert_int_equal(nds_pb_build(nt, &out, &len), 0);
	assert_non_null(out);
	assert_int_equal(len, 0);
	free(out);
	expect_round_trip(nt);
	nds_nametable_destroy(nt);
}

static void
test_build_exact_bytes_sorted_defaults_omitted(void **state)
{
	static const char *const ips[] = {"1.1.1.1", ""};
	static const char *const alt[] = {"x"};
	static const uint8_t want[] = {
	    0x0a, 0x05, 0x0a, 0x01, 'a', 0x12, 0x00, /* a: empty NameInfo */
	    0x0a, 0x17, 0x0a, 0x01, 'b', 0x12, 0x12, /* b */
	    0x0a, 0x07, '1', '.', '1', '.', '1', '.', '1', 0x0a, 0x00, /* ips */
	    0x1a, 0x02, 's', 'n', /* short */
	    0x2a, 0x01, 'x',      /* alt */
	};
	struct nds_nameinfo b = {.ips = ips,
	    .nips = 2,
	    .registry = "",
	    .shortname = "sn",
	    .ns = NULL,
	    .alt_hosts = alt,
	    .nalt = 1};
	struct nds_nametable *nt;
	uint8_t *out;
	size_t len;

	assert_int_equal(nds_nametable_create(&nt), 0);
	assert_int_equal(nds_nametable_add(nt, "b", &b), 0);
	assert_int_equal(nds_nametable_add(nt, "a", NULL), 0);
	assert_int_equal(nds_pb_build(nt, &out, &len), 0);
	assert_int_equal(len, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	free(out);
	expect_round_trip(nt);
	nds_nametable_destroy(nt);
}

/* Long strings (multi-byte lengths), many entries, bytes >= 0x80. */
static void
test_round_trip_large(void **state)
{
	struct nds_nametable *nt;
	const char *ips[4];
	char key[400], ip[64], big[300];
	size_t i;

	memset(big, 'h', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(nds_nametable_create(&nt), 0);
	for (i = 0; i < 3000; i++) {
		struct nds_nameinfo in = {.ips = ips,
		    .nips = i % 4,
		    .registry = i % 2 ? "Kubernetes" : "External",
		    .shortname = i % 3 ? "s" : "",
		    .ns = i % 5 ? "ns\xc3\xa9" : "",
		    .alt_hosts = ips,
		    .nalt = i % 3};

		snprintf(key, sizeof(key), "%s%zu.%s", i % 7 ? "" : big, i,
		    i % 11 ? "example" : "\xe2\x98\x83");
		snprintf(ip, sizeof(ip), "10.0.%zu.%zu", i / 256, i % 256);
		ips[0] = ip;
		ips[1] = "2001:db8::1";
		ips[2] = big;
		ips[3] = "";
		assert_int_equal(nds_nametable_add(nt, key, &in), 0);
	}
	/* Replacing keeps the count. */
	assert_int_equal(nds_nametable_add(nt, "5.example", NULL), 0);
	assert_int_equal(nds_nametable_count(nt), 3000);
	expect_round_trip(nt);
	nds_nametable_destroy(nt);
}

static int
stop_at_second(const char *key, const struct nds_nameinfo *in, void *arg)
{
	int *n = arg;

	return ++*n == 2 ? -42 : 0;
}

static void
test_foreach_insertion_order_and_stop(void **state)
{
	struct nds_nametable *nt;
	int n = 0;
	char *d;

	assert_int_equal(nds_nametable_foreach(NULL, stop_at_second, &n), 0);
	assert_int_equal(nds_nametable_create(&nt), 0);
	assert_int_equal(nds_nametable_add(nt, "z", NULL), 0);
	assert_int_equal(nds_nametable_add(nt, "a", NULL), 0);
	assert_int_equal(nds_nametable_add(nt, "m", NULL), 0);
	assert_int_equal(nds_nametable_foreach(nt, stop_at_second, &n), -42);
	assert_int_equal(n, 2);
	d = dump(nt);
	assert_string_equal(d, "a ips= reg= short= ns= alt=\n"
	                       "m ips= reg= short= ns= alt=\n"
	                       "z ips= reg= short= ns= alt=\n");
	free(d);
	nds_nametable_destroy(nt);
}

/* ---- nds_file_load() --------------------------------------------------- */

static void
test_file_protobuf_is_loaded(void **state)
{
	/* NameTable{table: {"a.com": {ips: ["1.1.1.1"]}}} in wire form. */
	static const uint8_t pb[] = {0x0a, 0x12, 0x0a, 0x05, 'a', '.', 'c', 'o',
	    'm', 0x12, 0x09, 0x0a, 0x07, '1', '.', '1', '.', '1', '.', '1'};
	struct tmpdir *d = *state;
	struct nds_nametable *nt;
	uint8_t *buf;
	size_t len;
	char err[256];
	char *s;

	write_file(d, pb, sizeof(pb));
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)), 0);
	s = dump(nt);
	assert_string_equal(s, "a.com ips=[1.1.1.1] reg= short= ns= alt=\n");
	free(s);
	nds_nametable_destroy(nt);

	buf = slurp(GOLDEN "spec8_unknown.pb", &len);
	write_file(d, buf, len);
	free(buf);
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)), 0);
	assert_int_equal(nds_nametable_count(nt), 12);
	nds_nametable_destroy(nt);
}

static void
test_file_bad_protobuf_names_path(void **state)
{
	static const uint8_t pb[] = {0x0a, 0x13, 0x0a, 0x05, 'a'};
	struct tmpdir *d = *state;
	struct nds_nametable *nt;
	char err[256], want[256];

	write_file(d, pb, sizeof(pb));
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)),
	    -EINVAL);
	assert_null(nt);
	snprintf(want, sizeof(want),
	    "%s: protobuf: NameTable field 1: length 19 beyond end at byte 1",
	    d->path);
	assert_string_equal(err, want);
	/* A NUL first is not blank: binary, and field number 0. */
	write_file(d, "\0{}", 3);
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)),
	    -EINVAL);
	assert_null(nt);
	assert_non_null(strstr(err, ": protobuf: NameTable: field number 0"));
}

/*
 * 0x0a is '\n' and a first entry of 123 bytes has length byte 0x7b, '{':
 * the file looks like JSON after a blank.  It must still load.
 */
static void
test_file_protobuf_that_looks_like_json(void **state)
{
	struct tmpdir *d = *state;
	struct nds_nametable *nt;
	struct vec info = {0}, entry = {0}, table = {0};
	char key[111], err[256];
	char *s, want[256];

	memset(key, 'k', 98);
	memcpy(key + 98, ".example.com", 13);
	v_str(&info, 1, "1.2.3.4");
	v_str(&entry, 1, key);
	v_field(&entry, 2, info.b, info.n);
	assert_int_equal(entry.n, 123);
	v_field(&table, 1, entry.b, entry.n);
	assert_int_equal(table.b[0], '\n');
	assert_int_equal(table.b[1], '{');
	write_file(d, table.b, table.n);
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)), 0);
	s = dump(nt);
	snprintf(want, sizeof(want), "%s ips=[1.2.3.4] reg= short= ns= alt=\n",
	    key);
	assert_string_equal(s, want);
	free(s);
	nds_nametable_destroy(nt);
	/* Bad JSON after a newline still reports the JSON error. */
	write_file(d, "\n{\"table\": ", 11);
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "JSON error"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_input_is_an_empty_table),
	    cmocka_unit_test(test_hand_built_vectors_decode),
	    cmocka_unit_test(test_known_field_with_other_wire_type_is_skipped),
	    cmocka_unit_test(test_malformed_inputs_are_rejected),
	    cmocka_unit_test(test_every_truncation_of_the_golden_table),
	    cmocka_unit_test(test_golden_spec8_matches_json_fixture),
	    cmocka_unit_test(test_json_fixture_through_protobuf),
	    cmocka_unit_test(test_build_empty_table),
	    cmocka_unit_test(test_build_exact_bytes_sorted_defaults_omitted),
	    cmocka_unit_test(test_round_trip_large),
	    cmocka_unit_test(test_foreach_insertion_order_and_stop),
	    cmocka_unit_test_setup_teardown(test_file_protobuf_is_loaded,
	        tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_file_bad_protobuf_names_path,
	        tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_file_protobuf_that_looks_like_json, tmp_setup,
	        tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
