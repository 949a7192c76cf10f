/*
 * test_file.c: nds_file_load() reads a table file through a bounded window
 * (nds/file.c); every load here is checked against the in-memory parse of
 * the same bytes (nds_json_parse(), nds_pb_parse()): same table, same
 * insertion order, same error text, byte offsets counted from the start of
 * the file.  Inputs are several times the 256 KiB window.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test/unit/tmpfile.h"

#include "nds/nds.h"
#include "nds/nds_impl.h"

#define WINDOW (256u * 1024) /* nds/file.c */
#define NENTRIES 20000

/* ---- helpers ----------------------------------------------------------- */

static int
entry_text(const char *key, const struct nds_nameinfo *in, void *arg)
{
	FILE *f = arg;
	size_t i;

	fprintf(f, "%s ips", key);
	for (i = 0; i < in->nips; i++)
		fprintf(f, " %s", in->ips[i]);
	fprintf(f, " reg %s short %s ns %s alt", in->registry, in->shortname,
	    in->ns);
	for (i = 0; i < in->nalt; i++)
		fprintf(f, " %s", in->alt_hosts[i]);
	fputc('\n', f);
	return 0;
}

/* nt as text, one line per entry in insertion order (malloc'd). */
static char *
table_text(const struct nds_nametable *nt)
{
	size_t len;
	char *s;
	FILE *f = open_memstream(&s, &len);

	assert_non_null(f);
	assert_int_equal(nds_nametable_foreach(nt, entry_text, f), 0);
	fclose(f);
	return s;
}

/* A load's outcome: rc, and the table's text or the message. */
struct outcome {
	int rc;
	size_t n;   /* entries */
	char *text; /* malloc'd */
};

static void
outcome_set(struct outcome *o, int rc, struct nds_nametable *nt,
    const char *err)
{
	o->rc = rc;
	o->n = rc == 0 ? nds_nametable_count(nt) : 0;
	o->text = rc == 0 ? table_text(nt) : strdup(err);
	assert_non_null(o->text);
	nds_nametable_destroy(nt);
}

/* What nds_file_load() must give for a file of these bytes. */
static void
in_memory(const void *buf, size_t len, int json, const char *path,
    struct outcome *o)
{
	struct nds_nametable *nt = NULL;
	char err[256] = "", msg[512] = "";
	int rc;

	if (json) {
		rc = nds_json_parse(buf, len, &nt, err, sizeof(err));
		snprintf(msg, sizeof(msg), "%s: %s", path, err);
	} else {
		rc = nds_pb_parse(buf, len, &nt, err, sizeof(err));
		snprintf(msg, sizeof(msg), "%s: protobuf: %s", path, err);
	}
	outcome_set(o, rc, nt, msg);
}

static void
expect_same(struct outcome *got, struct outcome *want)
{
	assert_int_equal(got->rc, want->rc);
	assert_int_equal(got->n, want->n);
	if (strcmp(got->text, want->text) != 0)
		fail_msg("file and memory differ: \"%.300s\" vs \"%.300s\"",
		    got->text, want->text);
	free(got->text);
	free(want->text);
}

/* Writes buf to the test file, loads it, checks it against memory. */
static void
expect_file_like_memory(const struct tmpdir *d, const void *buf, size_t len,
    int json, int want_rc)
{
	struct nds_nametable *nt = NULL;
	struct outcome got, want;
	char err[512] = "";
	int rc;

	write_file(d, buf, len);
	rc = nds_file_load(d->path, &nt, err, sizeof(err));
	outcome_set(&got, rc, nt, err);
	in_memory(buf, len, json, d->path, &want);
	assert_int_equal(want.rc, want_rc);
	expect_same(&got, &want);
}

/*
 * A JSON table of n entries (from first), with other members around
 * "table" and every kind of value in them; extra (if not NULL) goes
 * in as the first entry.  *len bytes, malloc'd.
 */
static char *
json_doc(size_t first, size_t n, const char *extra, size_t *len)
{
	char *s;
	size_t i;
	FILE *f = open_memstream(&s, len);

	assert_non_null(f);
	fprintf(f, "{\"version\": 12345, \"meta\": {\"a\": [1, 2.5e3, true, "
	           "false, null, \"s\\u00e9\\\"x\"]},\n \"table\": {");
	if (extra != NULL)
		fprintf(f, "%s,\n", extra);
	for (i = first; i < first + n; i++)
		fprintf(f,
		    "%s\"svc-%zu.ns-%zu.svc.cluster.local\": {\"ips\": "
		    "[\"10.%zu.%zu.%zu\"], \"registry\": \"Kubernetes\", "
		    "\"shortname\": \"svc-%zu\", \"namespace\": \"ns-%zu\"%s}",
		    i > first ? ",\n  " : "", i, i % 7, (i >> 16) & 255,
		    (i >> 8) & 255, i & 255, i, i % 7,
		    i % 5 == 0 ? ", \"altHosts\": [\"alt.example\"]" : "");
	fprintf(f, "},\n \"trailer\": 7}\n");
	fclose(f);
	return s;
}

/* The same entries in protobuf form, between unknown fields of every
 * wire type (varint, fixed64, length-delimited, fixed32). */
static uint8_t *
pb_doc(size_t first, size_t n, size_t *len)
{
	static const uint8_t head[] = {0x10, 0x96, 0x01, 0x21, 1, 2, 3, 4, 5, 6,
	    7, 8, 0x1a, 0x03, 'a', 'b', 'c'};
	static const uint8_t tail[] = {0x2d, 1, 2, 3, 4};
	struct nds_nametable *nt = NULL;
	size_t jlen, plen;
	uint8_t *p, *out;
	char *doc = json_doc(first, n, NULL, &jlen);

	assert_int_equal(nds_json_parse(doc, jlen, &nt, NULL, 0), 0);
	assert_int_equal(nds_pb_build(nt, &p, &plen), 0);
	out = malloc(sizeof(head) + plen + sizeof(tail));
	assert_non_null(out);
	memcpy(out, head, sizeof(head));
	memcpy(out + sizeof(head), p, plen);
	memcpy(out + sizeof(head) + plen, tail, sizeof(tail));
	*len = sizeof(head) + plen + sizeof(tail);
	free(p);
	free(doc);
	nds_nametable_destroy(nt);
	return out;
}

/* One entry with nips addresses: far larger than the window. */
static char *
json_big_entry(size_t nips)
{
	char *s;
	size_t len, i;
	FILE *f = open_memstream(&s, &len);

	assert_non_null(f);
	fprintf(f, "\"big.example\": {\"ips\": [");
	for (i = 0; i < nips; i++)
		fprintf(f, "%s\"10.%zu.%zu.%zu\"", i ? ", " : "",
		    (i >> 16) & 255, (i >> 8) & 255, i & 255);
	fprintf(f, "], \"namespace\": \"big\"}");
	fclose(f);
	return s;
}

/* ---- large files ------------------------------------------------------- */

static void
test_large_json_file_loads_as_in_memory(void **state)
{
	size_t len;
	char *doc = json_doc(0, NENTRIES, NULL, &len);

	assert_true(len > 8 * WINDOW);
	expect_file_like_memory(*state, doc, len, 1, 0);
	free(doc);
}

static void
test_large_protobuf_file_loads_as_in_memory(void **state)
{
	size_t len;
	uint8_t *pb = pb_doc(0, NENTRIES, &len);

	assert_true(len > 4 * WINDOW);
	expect_file_like_memory(*state, pb, len, 0, 0);
	free(pb);
}

/* An entry bigger than the window, between small ones. */
static void
test_entry_larger_than_window(void **state)
{
	struct nds_nametable *nt = NULL;
	char *big = json_big_entry(40000), *doc;
	size_t len, plen, blen = strlen(big);
	uint8_t *pb;

	assert_true(blen > 2 * WINDOW);
	doc = json_doc(0, 3000, big, &len);
	expect_file_like_memory(*state, doc, len, 1, 0);
	assert_int_equal(nds_json_parse(doc, len, &nt, NULL, 0), 0);
	assert_int_equal(nds_pb_build(nt, &pb, &plen), 0);
	expect_file_like_memory(*state, pb, plen, 0, 0);
	nds_nametable_destroy(nt);
	free(pb);
	free(doc);
	free(big);
}

/* ---- errors ------------------------------------------------------------ */

/* A bad tag after 2 MB: the offset counts from the start of the file. */
static void
test_protobuf_error_offset_counts_from_file_start(void **state)
{
	/* Four bytes after the good part and where the error is in them. */
	static const struct {
		uint8_t b[4];
		size_t at;
	} bad[] = {
	    {{0x0b, 0, 0, 0}, 0},          /* group */
	    {{0x0a, 0xff, 0x7f, 0}, 1},    /* entry length beyond end */
	    {{0x00, 0, 0, 0}, 0},          /* field number 0 */
	    {{0x0a, 0x02, 0x12, 0x05}, 3}, /* NameInfo length beyond end */
	    {{0x0a, 0x02, 0x0a, 0x00}, 2}, /* empty key */
	};
	const struct tmpdir *d = *state;
	struct nds_nametable *nt = NULL;
	size_t len, i;
	uint8_t *pb = pb_doc(0, NENTRIES, &len), *p;
	char err[512], at[32];

	assert_true(len > 4 * WINDOW);
	assert_non_null(p = malloc(len + 4));
	memcpy(p, pb, len);
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		memcpy(p + len, bad[i].b, 4);
		expect_file_like_memory(d, p, len + 4, 0, -EINVAL);
		assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)),
		    -EINVAL);
		snprintf(at, sizeof(at), "byte %zu", len + bad[i].at);
		if (strstr(err, at) == NULL)
			fail_msg("\"%s\" lacks \"%s\"", err, at);
	}
	free(p);
	free(pb);
}

/* The last entry cut in half: the error the whole input gives. */
static void
test_truncated_file_fails_as_in_memory(void **state)
{
	size_t len, plen;
	char *doc = json_doc(0, NENTRIES, NULL, &len);
	uint8_t *pb = pb_doc(0, NENTRIES, &plen);

	expect_file_like_memory(*state, doc, len - 60, 1, -EINVAL);
	expect_file_like_memory(*state, pb, plen - 5 - 40, 0, -EINVAL);
	free(doc);
	free(pb);
}

/*
 * What only the whole-tree parse takes or reports: a bad entry replaced
 * by a later one (jansson keeps the last), a bad value at the end, a
 * "table" given twice, trailing garbage.
 */
static void
test_json_whole_tree_cases_after_the_window(void **state)
{
	static const char *const tail[] = {
	    ", \"bad.example\": {\"ips\": [\"1.1.1.1\"]}}}",
	    ", \"bad2.example\": {\"ips\": 3}}}",
	    "}, \"table\": {}}", /* the last \"table\" wins: empty */
	    "}} x",
	    "}}",
	};
	size_t len, n, i;
	char *doc =
	    json_doc(0, NENTRIES, "\"bad.example\": {\"ips\": 1}", &len);
	char *s;

	/* doc ends "},\n \"trailer\": 7}\n": cut the table's close. */
	n = len - strlen("},\n \"trailer\": 7}\n");
	for (i = 0; i < sizeof(tail) / sizeof(*tail); i++) {
		assert_non_null(s = malloc(n + strlen(tail[i]) + 1));
		memcpy(s, doc, n);
		strcpy(s + n, tail[i]);
		expect_file_like_memory(*state, s, strlen(s), 1,
		    i == 0 || i == 2 ? 0 : -EINVAL);
		free(s);
	}
	free(doc);
}

/* ---- streams fed a byte at a time ------------------------------------- */

/*
 * Feeds buf to a stream one more byte at a time, as a window that fills
 * slowly would (every possible cut), and sets o to the outcome.
 */
static void
pb_pieces(const uint8_t *buf, size_t len, struct outcome *o)
{
	struct nds_pb_stream *s = NULL;
	size_t start = 0, k, used;
	char err[256] = "";
	int rc = 0;

	assert_int_equal(nds_pb_stream_create(len, &s), 0);
	for (k = 0; k <= len && rc == 0; k++) {
		used = 0;
		rc = nds_pb_stream_feed(s, buf + start, k - start, k == len,
		    &used, err, sizeof(err));
		assert_true(used <= k - start);
		start += used;
	}
	if (rc == 0)
		assert_int_equal(start, len);
	outcome_set(o, rc, rc == 0 ? nds_pb_stream_finish(s) : NULL, err);
	nds_pb_stream_destroy(s);
}

static void
expect_pb_pieces_like_whole(const uint8_t *buf, size_t len)
{
	struct nds_nametable *nt = NULL;
	struct outcome got, want;
	char err[256] = "";
	int rc;

	pb_pieces(buf, len, &got);
	rc = nds_pb_parse(buf, len, &nt, err, sizeof(err));
	outcome_set(&want, rc, nt, err);
	expect_same(&got, &want);
}

static void
test_pb_stream_cut_anywhere_is_the_whole_parse(void **state)
{
	static const uint8_t bad[][4] = {{0x0b}, {0x0a, 0xff, 0x7f},
	    {0x0a, 0x02, 0x12, 0x05}, {0x0a, 0x02, 0x0a, 0x00},
	    {0x08, 0xff, 0xff, 0xff}, {0x0d, 1, 2}, {0x0f}};
	size_t len, i, cut;
	uint8_t *pb = pb_doc(0, 40, &len), *p;

	(void)state;
	expect_pb_pieces_like_whole(pb, len);
	for (cut = 0; cut < 200; cut++)
		expect_pb_pieces_like_whole(pb, cut);
	assert_non_null(p = malloc(len + 4));
	memcpy(p, pb, len);
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		memcpy(p + len, bad[i], 4);
		expect_pb_pieces_like_whole(p, len + 4);
	}
	free(p);
	free(pb);
}

/* The same for JSON: a valid document never fails the stream. */
static void
test_json_stream_cut_anywhere_still_streams(void **state)
{
	static const char *const docs[] = {
	    "{\"n\": -12.5e+3, \"t\": true, \"f\": false, \"z\": null, "
	    "\"s\": \"a\\u00e9\\ud83d\\ude00\xc3\xa9\xf0\x9f\x98\x80\\n\\\"\", "
	    "\"arr\": [[1, 2], {\"x\": []}, 0], \"table\": {\"a.com\": "
	    "{\"ips\": [\"1.1.1.1\", \"::1\"], \"registry\": \"K\", "
	    "\"altHosts\": [\"x\"], \"n\": 12}, \"b.com\": null, "
	    "\"c\\u00e9.com\": {\"ips\": null, \"extra\": 12345}, "
	    "\"a.com\": {\"shortname\": \"s\"}}, \"after\": 123456789}",
	    "{\"table\": null, \"v\": 1}",
	    "{}",
	    " {\"table\":{}} \r\n",
	    "{\"table\": {\"k\": {}}, \"v\": 10}",
	    "{\"v\": 10, \"table\": {\"k\": {\"namespace\": \"x\"}}}",
	};
	struct nds_json_stream *s = NULL;
	struct nds_nametable *nt = NULL;
	struct outcome got, want;
	size_t i, k, len, start, used;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(*docs); i++) {
		len = strlen(docs[i]);
		assert_int_equal(nds_json_stream_create(&s), 0);
		for (k = 0, start = 0; k <= len; k++) {
			used = 0;
			if (nds_json_stream_feed(s, docs[i] + start, k - start,
			        k == len, &used) != 0)
				fail_msg("doc %zu: stream fails at %zu", i, k);
			start += used;
		}
		outcome_set(&got, 0, nds_json_stream_finish(s), "");
		nds_json_stream_destroy(s);
		assert_int_equal(nds_json_parse(docs[i], len, &nt, NULL, 0), 0);
		outcome_set(&want, 0, nt, "");
		expect_same(&got, &want);
	}
}

/* ---- pipes ------------------------------------------------------------- */

/* Loads buf (repeat times over) through a FIFO a child writes into. */
static int
load_fifo(const struct tmpdir *d, const void *buf, size_t len, size_t repeat,
    struct nds_nametable **nt, char *err, size_t errlen)
{
	int rc, status;
	pid_t pid;

	unlink(d->path);
	assert_int_equal(mkfifo(d->path, 0600), 0);
	if ((pid = fork()) == 0) {
		int fd = open(d->path, O_WRONLY);
		size_t r, o;
		ssize_t w;

		for (r = 0; fd >= 0 && r < repeat; r++)
			for (o = 0; o < len; o += (size_t)w)
				if ((w = write(fd, (const char *)buf + o,
				         len - o)) <= 0)
					_exit(0);
		_exit(0);
	}
	assert_true(pid > 0);
	rc = nds_file_load(d->path, nt, err, errlen);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(d->path);
	return rc;
}

static void
expect_fifo_like_memory(const struct tmpdir *d, const void *buf, size_t len,
    int json, int want_rc)
{
	struct nds_nametable *nt = NULL;
	struct outcome got, want;
	char err[512] = "";
	int rc;

	rc = load_fifo(d, buf, len, 1, &nt, err, sizeof(err));
	outcome_set(&got, rc, nt, err);
	in_memory(buf, len, json, d->path, &want);
	assert_int_equal(want.rc, want_rc);
	expect_same(&got, &want);
}

static void
test_fifo_loads_as_in_memory(void **state)
{
	const struct tmpdir *d = *state;
	size_t len, plen;
	char *doc = json_doc(0, NENTRIES, NULL, &len);
	uint8_t *pb = pb_doc(0, NENTRIES, &plen), *nl;

	expect_fifo_like_memory(d, doc, len, 1, 0);
	expect_fifo_like_memory(d, doc, len - 60, 1, -EINVAL);
	expect_fifo_like_memory(d, pb, plen, 0, 0);
	expect_fifo_like_memory(d, pb, plen - 45, 0, -EINVAL);
	/* "\n{": a 123-byte first entry (key of 121 bytes), which is not
	 * JSON, so the whole pipe is kept for protobuf. */
	assert_non_null(nl = malloc(plen + 125));
	memcpy(nl, "\n{\n\x79", 4);
	memset(nl + 4, 'k', 121);
	memcpy(nl + 125, pb, plen);
	expect_fifo_like_memory(d, nl, plen + 125, 0, 0);
	write_file(d, nl, plen + 125);
	expect_file_like_memory(d, nl, plen + 125, 0, 0);
	free(nl);
	free(doc);
	free(pb);
}

/* A pipe has no size: more than NDS_FILE_MAX bytes is -EFBIG, even when
 * the first bytes are already bad. */
static void
test_fifo_over_max_is_too_large(void **state)
{
	static uint8_t zero[64 * 1024];
	struct nds_nametable *nt = NULL;
	char err[512], want[512];

	assert_int_equal(load_fifo(*state, zero, sizeof(zero),
	                     NDS_FILE_MAX / sizeof(zero) + 1, &nt, err,
	                     sizeof(err)),
	    -EFBIG);
	assert_null(nt);
	snprintf(want, sizeof(want), "%s: larger than %u bytes",
	    ((const struct tmpdir *)*state)->path, NDS_FILE_MAX);
	assert_string_equal(err, want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_large_json_file_loads_as_in_memory, tmp_setup,
	        tmp_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_large_protobuf_file_loads_as_in_memory, tmp_setup,
	        tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_entry_larger_than_window,
	        tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_protobuf_error_offset_counts_from_file_start, tmp_setup,
	        tmp_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_truncated_file_fails_as_in_memory, tmp_setup,
	        tmp_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_json_whole_tree_cases_after_the_window, tmp_setup,
	        tmp_teardown),
	    cmocka_unit_test(test_pb_stream_cut_anywhere_is_the_whole_parse),
	    cmocka_unit_test(test_json_stream_cut_anywhere_still_streams),
	    cmocka_unit_test_setup_teardown(test_fifo_loads_as_in_memory,
	        tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_fifo_over_max_is_too_large,
	        tmp_setup, tmp_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
