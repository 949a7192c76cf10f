/*
 * test_json.c: nds_json_parse() (proto3 JSON NameTable, SPEC §1) and
 * nds_file_load() (SPEC §10.1).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include "nds/nds_impl.h"
#include "test/unit/nds_expect.h"

static int
parse(const char *doc, struct nds_nametable **nt, char *err, size_t errlen)
{
	err[0] = '\0';
	return nds_json_parse(doc, strlen(doc), nt, err, errlen);
}

/* Parses doc (which must be valid) and builds it for proxy ns1. */
static struct nds_table *
table_of(const char *doc)
{
	struct nds_build_opts o = {.namespace = "ns1",
	    .domain = "ns1.svc.cluster.local",
	    .search0 = "ns1.svc.cluster.local",
	    .ttl = 30};
	struct nds_nametable *nt;
	struct nds_table *t;
	char err[256];

	if (parse(doc, &nt, err, sizeof(err)) != 0)
		fail_msg("parse: %s", err);
	assert_int_equal(nds_table_build(nt, &o, &t, err, sizeof(err)), 0);
	return t;
}

/* ---- good documents ---------------------------------------------------- */

static const struct {
	const char *doc;
	size_t entries;
} good[] = {
    {"{}", 0},
    {"{\"table\": {}}", 0},
    {"{\"table\": null}", 0},
    {" \n{\"other\": [1, {\"x\": null}], \"table\": {}}\n", 0},
    {"{\"table\": {\"a.com\": {}}}", 1},
    {"{\"table\": {\"a.com\": null}}", 1},
    {"{\"table\": {\"a.com\": {\"ips\": null, \"registry\": null, "
     "\"shortname\": null, \"namespace\": null, \"altHosts\": null, "
     "\"alt_hosts\": null}}}",
        1},
    {"{\"table\": {\"a.com\": {\"ips\": [\"1.1.1.1\"], \"weight\": 3, "
     "\"labels\": {\"x\": [1, 2]}}, \"b.com\": {\"ips\": []}}}",
        2},
    {"{\"table\": {\"a.com\": {\"ips\": [\"1.1.1.1\"]}, \"a.com\": "
     "{\"ips\": [\"2.2.2.2\"]}}}",
        1},
    {"{\"table\": {\"\u00e9t\u00e9.example\": {\"ips\": [\"1.1.1.1\"]}, "
     "\"\\u65e5\\u672c.example\": {}}}",
        2},
};

static void
test_good_documents_parse(void **state)
{
	struct nds_nametable *nt;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(*good); i++) {
		if (parse(good[i].doc, &nt, err, sizeof(err)) != 0)
			fail_msg("case %zu: %s", i, err);
		assert_int_equal(nds_nametable_count(nt), good[i].entries);
		nds_nametable_destroy(nt);
	}
}

/* ---- bad documents: one bad field per case ----------------------------- */

#define ENTRY(fields) "{\"table\": {\"foo.com\": {" fields "}}}"

static const struct {
	const char *doc;
	const char *msg; /* substring of the error */
} bad[] = {
    {"", "JSON error at line 1"},
    {"   ", "JSON error at line 1"},
    {"[]", "top level must be an object"},
    {"[{\"table\": {}}]", "top level must be an object"},
    {"{\"table\": {}", "JSON error at line 1, column"},
    {"{\n\"table\": {\n\"a\": {,}}}", "JSON error at line 3"},
    {"{\"table\": []}", "\"table\" must be an object"},
    {"{\"table\": \"x\"}", "\"table\" must be an object"},
    {"{\"table\": {\"foo.com\": 1}}", "entry \"foo.com\": must be an object"},
    {"{\"table\": {\"foo.com\": [\"1.1.1.1\"]}}",
        "entry \"foo.com\": must be an object"},
    {ENTRY("\"ips\": \"1.1.1.1\""),
        "entry \"foo.com\": \"ips\" must be an array of strings"},
    {ENTRY("\"ips\": [\"1.1.1.1\", 2]"),
        "entry \"foo.com\": \"ips\" must be an array of strings"},
    {ENTRY("\"ips\": [null]"),
        "entry \"foo.com\": \"ips\" must be an array of strings"},
    {ENTRY("\"ips\": {}"),
        "entry \"foo.com\": \"ips\" must be an array of strings"},
    {ENTRY("\"registry\": 1"),
        "entry \"foo.com\": \"registry\" must be a string"},
    {ENTRY("\"registry\": [\"Kubernetes\"]"),
        "entry \"foo.com\": \"registry\" must be a string"},
    {ENTRY("\"shortname\": true"),
        "entry \"foo.com\": \"shortname\" must be a string"},
    {ENTRY("\"namespace\": {}"),
        "entry \"foo.com\": \"namespace\" must be a string"},
    {ENTRY("\"altHosts\": \"a.b\""),
        "entry \"foo.com\": \"altHosts\" must be an array of strings"},
    {ENTRY("\"alt_hosts\": [1]"),
        "entry \"foo.com\": \"alt_hosts\" must be an array of strings"},
    {ENTRY("\"altHosts\": [], \"alt_hosts\": []"),
        "entry \"foo.com\": both \"altHosts\" and \"alt_hosts\""},
    {"{\"table\": {\"\": {}}}", "entry \"\": empty key"},
    {"{\"table\": {\"a\\u0000b\": {}}}", "JSON error"},
    {"{\"table\": {\"a.com\": {\"ips\": [\"\\u0000\"]}}}", "JSON error"},
    {"{\"table\": {\"\xff\": {}}}", "JSON error"},
    {"{\"table\": {}} trailing", "JSON error"},
    {"{\"table\": {\"ok.com\": {}, \"bad\\\"key\\n\": {\"ips\": 1}}}",
        "entry \"bad?key?\": \"ips\" must be"},
};

static void
test_bad_documents_name_entry_and_field(void **state)
{
	struct nds_nametable *nt = (struct nds_nametable *)&nt;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		if (parse(bad[i].doc, &nt, err, sizeof(err)) != -EINVAL)
			fail_msg("case %zu accepted: %s", i, bad[i].doc);
		assert_null(nt);
		if (strstr(err, bad[i].msg) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err,
			    bad[i].msg);
	}
}

static void
test_deep_nesting_is_rejected_not_crashed(void **state)
{
	struct nds_nametable *nt;
	char err[256], *doc;
	size_t n = 100000, i;
	int rc;

	(void)state;
	assert_non_null(doc = malloc(2 * n + 32));
	strcpy(doc, "{\"x\": ");
	for (i = 0; i < n; i++)
		doc[6 + i] = '[';
	for (i = 0; i < n; i++)
		doc[6 + n + i] = ']';
	strcpy(doc + 6 + 2 * n, ", \"table\": {}}");
	rc = nds_json_parse(doc, strlen(doc), &nt, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "JSON error"));
	free(doc);
}

static void
test_long_key_is_cut_in_message(void **state)
{
	struct nds_nametable *nt;
	char err[512], doc[1024], key[400];

	(void)state;
	memset(key, 'k', 300);
	/* A two-byte character straddles the cut at 80 bytes. */
	memcpy(key + 79, "\xc3\xa9", 2);
	key[300] = '\0';
	snprintf(doc, sizeof(doc), "{\"table\": {\"%s\": {\"ips\": 7}}}", key);
	assert_int_equal(parse(doc, &nt, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "...\": \"ips\""));
	assert_true(strlen(err) < 150);
	assert_null(strstr(err, "\xc3\""));
	/* A tiny buffer still gets a terminated message. */
	assert_int_equal(parse(doc, &nt, err, 8), -EINVAL);
	assert_int_equal(strlen(err), 7);
	assert_int_equal(nds_json_parse(doc, strlen(doc), &nt, NULL, 0),
	    -EINVAL);
}

/* ---- meaning of the fields --------------------------------------------- */

static void
test_alt_hosts_accepts_both_spellings(void **state)
{
	struct nds_table *t = table_of(
	    "{\"table\": {"
	    "\"a.ns1.svc.cluster.local\": {\"ips\": [\"10.0.0.1\"], "
	    "\"registry\": \"Kubernetes\", \"shortname\": \"a\", "
	    "\"namespace\": \"ns1\", \"altHosts\": [\"a.camel.example\"]},"
	    "\"b.ns1.svc.cluster.local\": {\"ips\": [\"10.0.0.2\"], "
	    "\"registry\": \"Kubernetes\", \"shortname\": \"b\", "
	    "\"namespace\": \"ns1\", \"alt_hosts\": [\"b.snake.example\"]},"
	    "\"c.ns1.svc.cluster.local\": {\"ips\": [\"10.0.0.3\"], "
	    "\"registry\": \"Kubernetes\", \"shortname\": \"c\", "
	    "\"namespace\": \"ns1\", \"altHosts\": null, "
	    "\"alt_hosts\": [\"c.snake.example\"]}}}");

	(void)state;
	expect_ips(t, "a.camel.example.", "10.0.0.1 ");
	expect_ips(t, "b.snake.example.", "10.0.0.2 ");
	expect_ips(t, "c.snake.example.", "10.0.0.3 ");
	expect_ips(t, "a.", "10.0.0.1 ");
	nds_table_unref(t);
}

static void
test_duplicate_keys_last_wins(void **state)
{
	struct nds_table *t =
	    table_of("{\"table\": {\"a.com\": {\"ips\": [\"1.1.1.1\"]}},"
	             " \"table\": {\"b.com\": {\"ips\": [\"2.2.2.2\"]},"
	             " \"b.com\": {\"ips\": [\"3.3.3.3\", \"2001:db8::3\"]}}}");

	(void)state;
	expect_ips(t, "a.com.", "ENOENT");
	expect_ips(t, "b.com.", "3.3.3.3 2001:db8::3");
	assert_int_equal(nds_table_entries(t), 1);
	nds_table_unref(t);
}

static void
test_spec1_example_document(void **state)
{
	struct nds_table *t = table_of(
	    "{\"table\": {\"productpage.ns1.svc.cluster.local\": {\"ips\": "
	    "[\"9.9.9.9\"], \"registry\": \"Kubernetes\",\n"
	    "\"shortname\": \"productpage\", \"namespace\": \"ns1\", "
	    "\"altHosts\": [\"productpage.ns1.svc.clusterset.local\"]},\n"
	    "\"*.wildcard\": {\"ips\": [\"10.10.10.10\"], \"registry\": "
	    "\"External\"}}}");

	(void)state;
	expect_ips(t, "productpage.", "9.9.9.9 ");
	expect_ips(t, "productpage.ns1.svc.clusterset.local.", "9.9.9.9 ");
	expect_ips(t, "x.wildcard.", "10.10.10.10 ");
	assert_int_equal(nds_table_entries(t), 2);
	nds_table_unref(t);
}

static void
test_null_fields_take_defaults(void **state)
{
	struct nds_table *t = table_of(
	    "{\"table\": {\"x.ns1.svc.cluster.local\": {\"ips\": "
	    "[\"10.0.0.1\"], \"registry\": null, \"shortname\": \"x\", "
	    "\"namespace\": \"ns1\"}}}");

	(void)state;
	/* registry null = "": not Kubernetes, so the FQDN only. */
	expect_ips(t, "x.ns1.svc.cluster.local.", "10.0.0.1 ");
	expect_ips(t, "x.", "ENOENT");
	nds_table_unref(t);
}

/* ---- nds_file_load ----------------------------------------------------- */

static void
test_file_missing_names_the_path(void **state)
{
	struct tmpdir *d = *state;
	struct nds_nametable *nt;
	char err[256], want[256];

	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)),
	    -ENOENT);
	assert_null(nt);
	snprintf(want, sizeof(want), "%s: No such file or directory", d->path);
	assert_string_equal(err, want);
	assert_int_equal(nds_file_load(d->dir, &nt, err, sizeof(err)), -EISDIR);
}

static void
test_file_empty_or_blank_is_an_empty_table(void **state)
{
	static const char *const blank[] = {"", " ", "\n\t\r\n  "};
	struct tmpdir *d = *state;
	struct nds_nametable *nt;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(blank) / sizeof(*blank); i++) {
		write_file(d, blank[i], strlen(blank[i]));
		assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)),
		    0);
		assert_int_equal(nds_nametable_count(nt), 0);
		nds_nametable_destroy(nt);
	}
}

static void
test_file_json_is_parsed(void **state)
{
	static const char doc[] =
	    "\n  {\"table\": {\"a.com\": {\"ips\": [\"1.1.1.1\"]},"
	    " \"b.com\": {}}}\n";
	struct tmpdir *d = *state;
	struct nds_nametable *nt;
	char err[256];

	write_file(d, doc, strlen(doc));
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)), 0);
	assert_int_equal(nds_nametable_count(nt), 2);
	nds_nametable_destroy(nt);
}

static void
test_file_bad_json_names_path_and_entry(void **state)
{
	static const char doc[] = "{\"table\": {\"a.com\": {\"ips\": 1}}}";
	struct tmpdir *d = *state;
	struct nds_nametable *nt;
	char err[256], want[256];

	write_file(d, doc, strlen(doc));
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)),
	    -EINVAL);
	snprintf(want, sizeof(want),
	    "%s: entry \"a.com\": \"ips\" must be an array of strings",
	    d->path);
	assert_string_equal(err, want);
	write_file(d, "{\"table\":", 9);
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, ": JSON error at line 1"));
}

static void
test_file_protobuf_binary_is_told_apart_from_json(void **state)
{
	/* NameTable{table: {"a.com": {ips: ["1.1.1.1"]}}} in wire form. */
	static const uint8_t pb[] = {0x0a, 0x12, 0x0a, 0x05, 'a', '.', 'c', 'o',
	    'm', 0x12, 0x09, 0x0a, 0x07, '1', '.', '1', '.', '1', '.', '1'};
	struct tmpdir *d = *state;
	struct nds_nametable *nt = NULL;
	char err[256];

	write_file(d, pb, sizeof(pb));
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)), 0);
	assert_int_equal(nds_nametable_count(nt), 1);
	nds_nametable_destroy(nt);
	/* A NUL first is not blank: binary, and field number 0 is bad. */
	write_file(d, "\0{}", 3);
	assert_int_equal(nds_file_load(d->path, &nt, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, d->path));
	assert_non_null(strstr(err, "protobuf"));
}

/*
 * The stream reads the usual entries with a scanner of its own and hands
 * anything else to jansson: every one of these gives what jansson's whole
 * tree gives, the same table (as its protobuf encoding) or an error.
 */
static void
test_fast_entries_match_the_tree(void **state)
{
	static const char *const docs[] = {
	    "{\"table\":{\"a.ns.svc.cluster.local\":{\"ips\":[\"10.0.0.1\","
	    "\"::1\"],\"registry\":\"Kubernetes\",\"shortname\":\"a\","
	    "\"namespace\":\"ns\",\"altHosts\":[\"x\",\"y\"]}}}",
	    "{\"table\" : { \"k\" : { } , \"k2\":{\"alt_hosts\":[]} } }",
	    "{\"table\":{\"k\":{\"ips\":[]},\"k\":{\"ips\":[\"1.2.3.4\"]}}}",
	    /* everything below is left to jansson, in part or whole */
	    "{\"table\":{\"k\":{\"registry\":\"a\\u0041\"}}}",
	    "{\"table\":{\"k\\n\":{\"registry\":\"x\"}}}",
	    "{\"table\":{\"caf\xc3\xa9\":{\"ips\":[\"1.2.3.4\"]}}}",
	    "{\"table\":{\"k\":{\"other\":7,\"ips\":[\"1.2.3.4\"]}}}",
	    "{\"table\":{\"k\":{\"ips\":null,\"registry\":null}}}",
	    "{\"table\":{\"k\":null}}",
	    "{\"table\":{\"k\":{\"registry\":\"a\",\"registry\":\"b\"}}}",
	    "{\"table\":{\"k\":{\"altHosts\":[\"a\"],\"alt_hosts\":[\"b\"]}}}",
	    "{\"table\":{\"k\":{\"ips\":[\"1.2.3.4\",]}}}",
	    "{\"table\":{\"k\":{\"ips\":[\"1.2.3.4\"],}}}",
	    "{\"table\":{\"k\":{\"ips\":[\"1.2.3.4\"] \"registry\":\"x\"}}}",
	    "{\"table\":{\"k\":{\"ips\":[1]}}}",
	    "{\"table\":{\"\":{\"ips\":[\"1.2.3.4\"]}}}",
	    "{\"table\":{\"k\":{\"ips\":\"1.2.3.4\"}}}",
	    "{\"table\":{\"k\":{\"ips\":[\"1.2.3.4\"]}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(docs) / sizeof(*docs); i++) {
		struct nds_nametable *a = NULL, *b = NULL;
		uint8_t *pa = NULL, *pb = NULL;
		size_t la = 0, lb = 0;
		char ea[256] = "", eb[256] = "";
		int ra, rb;

		ra = nds_json_parse(docs[i], strlen(docs[i]), &a, ea,
		    sizeof(ea));
		rb = nds_json_parse_tree(docs[i], strlen(docs[i]), &b, eb,
		    sizeof(eb));
		if (ra != rb || strcmp(ea, eb) != 0)
			fail_msg("doc %zu: %d \"%s\" vs tree %d \"%s\"", i, ra,
			    ea, rb, eb);
		if (ra == 0) {
			assert_int_equal(nds_pb_build(a, &pa, &la), 0);
			assert_int_equal(nds_pb_build(b, &pb, &lb), 0);
			assert_int_equal(la, lb);
			assert_memory_equal(pa, pb, la);
		}
		free(pa);
		free(pb);
		nds_nametable_destroy(a);
		nds_nametable_destroy(b);
	}
}

/*
 * A NUL byte after a literal: jansson drops it and counts the value's
 * length one byte short, which put the stream out of step (found by
 * fuzz_json).  Stream and tree both refuse it, naming where it is.
 */
static void
test_nul_byte_is_an_error_as_in_the_tree(void **state)
{
	static const char doc[] = "{\"table\":{\"k\":{\"ips\":null,"
	                          "\"x\":null\0 ,\"registry\":null}}}";
	struct nds_json_stream *s;
	struct nds_nametable *nt = NULL;
	char err[256] = "";
	size_t used;

	(void)state;
	assert_int_equal(nds_json_stream_create(&s), 0);
	assert_int_equal(nds_json_stream_feed(s, doc, sizeof(doc) - 1, 1,
	                     &used),
	    -1);
	nds_json_stream_destroy(s);
	assert_int_equal(nds_json_parse(doc, sizeof(doc) - 1, &nt, err,
	                     sizeof(err)),
	    -EINVAL);
	assert_null(nt);
	assert_non_null(strstr(err, "line 1, column 35: NUL byte"));
	assert_int_equal(nds_json_parse_tree(doc, sizeof(doc) - 1, &nt, err,
	                     sizeof(err)),
	    -EINVAL);
	assert_null(nt);
}
int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fast_entries_match_the_tree),
	    cmocka_unit_test(test_nul_byte_is_an_error_as_in_the_tree),
	    cmocka_unit_test(test_good_documents_parse),
	    cmocka_unit_test(test_bad_documents_name_entry_and_field),
	    cmocka_unit_test(test_deep_nesting_is_rejected_not_crashed),
	    cmocka_unit_test(test_long_key_is_cut_in_message),
	    cmocka_unit_test(test_alt_hosts_accepts_both_spellings),
	    cmocka_unit_test(test_duplicate_keys_last_wins),
	    cmocka_unit_test(test_spec1_example_document),
	    cmocka_unit_test(test_null_fields_take_defaults),
	    cmocka_unit_test_setup_teardown(test_file_missing_names_the_path,
	        tmp_setup, tmp_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_file_empty_or_blank_is_an_empty_table, tmp_setup,
	        tmp_teardown),
	    cmocka_unit_test_setup_teardown(test_file_json_is_parsed, tmp_setup,
	        tmp_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_file_bad_json_names_path_and_entry, tmp_setup,
	        tmp_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_file_protobuf_binary_is_told_apart_from_json, tmp_setup,
	        tmp_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
