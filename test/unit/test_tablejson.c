/*
 * test_tablejson.c: /debug/table and /debug/ndsz JSON (SPEC §6) of the
 * SPEC §8 fixture, parsed back with jansson; nds_table_foreach_record()
 * (order, filter); escaping; allocation failures.
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

#include <jansson.h>

/* tablejson.c itself, with its allocator counted (the library's copy is
 * not linked), so that each of its allocations can be made to fail. */
#include "test/unit/allocfail.h"

#define calloc counted_calloc
#define realloc counted_realloc
#include "agent/tablejson.c"
#undef calloc
#undef realloc

/* SPEC §8 fixture (test/blackbox/fixtures/spec8.json). */
static const char spec8[] =
    "{\"table\": {"
    "\"www.google.com\": {\"ips\": [\"1.1.1.1\"], \"registry\": "
    "\"External\"},"
    "\"productpage.ns1.svc.cluster.local\": {\"ips\": [\"9.9.9.9\"], "
    "\"registry\": \"Kubernetes\", \"shortname\": \"productpage\", "
    "\"namespace\": \"ns1\"},"
    "\"example.ns2.svc.cluster.local\": {\"ips\": [\"10.10.10.10\"], "
    "\"registry\": \"Kubernetes\", \"shortname\": \"example\", "
    "\"namespace\": \"ns2\"},"
    "\"details.ns2.svc.cluster.remote\": {\"ips\": [\"11.11.11.11\", "
    "\"12.12.12.12\", \"13.13.13.13\", \"14.14.14.14\"], \"registry\": "
    "\"Kubernetes\", \"shortname\": \"details\", \"namespace\": \"ns2\"},"
    "\"svc-with-alt.ns1.svc.cluster.local\": {\"ips\": [\"15.15.15.15\"], "
    "\"registry\": \"Kubernetes\", \"shortname\": \"svc-with-alt\", "
    "\"namespace\": \"ns1\", \"altHosts\": "
    "[\"svc-with-alt.ns1.svc.clusterset.local\"]},"
    "\"ipv6.localhost\": {\"ips\": [\"2001:db8::ff00:42:8329\"], "
    "\"registry\": \"External\"},"
    "\"dual.localhost\": {\"ips\": [\"2.2.2.2\", "
    "\"2001:db8::ff00:42:8329\"], \"registry\": \"External\"},"
    "\"ipv4.localhost\": {\"ips\": [\"2.2.2.2\"], \"registry\": "
    "\"External\"},"
    "\"*.b.wildcard\": {\"ips\": [\"11.11.11.11\"], \"registry\": "
    "\"External\"},"
    "\"*.wildcard\": {\"ips\": [\"10.10.10.10\"], \"registry\": "
    "\"External\"},"
    "\"*.svc.mesh.company.net\": {\"ips\": [\"10.1.2.3\"], \"registry\": "
    "\"External\"},"
    "\"example.localhost.\": {\"ips\": [\"3.3.3.3\"], \"registry\": "
    "\"External\"}}}";

#define SPEC8_RECORDS 42 /* A/AAAA per address, or one CNAME, per name */
#define SPEC8_NAMES 38   /* generated names */
#define SPEC8_ADDR 21    /* of them address names (the rest CNAMEs) */

static struct nds_table *
build(const char *json)
{
	struct nds_build_opts o = {.namespace = "ns1",
	    .domain = "ns1.svc.cluster.local",
	    .search0 = "ns1.svc.cluster.local",
	    .ttl = 30};
	struct nds_nametable *nt;
	struct nds_table *t;
	char err[256];

	assert_int_equal(nds_json_parse(json, strlen(json), &nt, err,
	                     sizeof(err)),
	    0);
	assert_int_equal(nds_table_build(nt, &o, &t, err, sizeof(err)), 0);
	return t;
}

/* Parses and frees s. */
static json_t *
parse(char *s)
{
	json_error_t e;
	json_t *j;

	assert_non_null(s);
	j = json_loads(s, 0, &e);
	if (j == NULL)
		fail_msg("bad JSON: %s at %d: %.80s", e.text, e.position,
		    s + (e.position > 10 ? e.position - 10 : 0));
	free(s);
	return j;
}

static json_t *
table_json(const struct nds_table *t, const char *filter)
{
	struct agent_table_meta m = {
	    .version = "v7", .updated = 1795694400, .entries = 12};

	return parse(agent_table_json(t, &m, filter));
}

static int
type_rank(const char *type)
{
	if (strcmp(type, "A") == 0)
		return 0;
	if (strcmp(type, "AAAA") == 0)
		return 1;
	assert_string_equal(type, "CNAME");
	return 2;
}

/* The record of records with this name and data, or NULL. */
static json_t *
find(json_t *records, const char *name, const char *data)
{
	size_t i;
	json_t *r;

	json_array_foreach(records, i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "name")),
		        name) == 0 &&
		    (data == NULL ||
		        strcmp(json_string_value(json_object_get(r, "data")),
		            data) == 0))
			return r;
	}
	return NULL;
}

static void
assert_record(json_t *records, const char *name, const char *type,
    const char *data, const char *origin)
{
	json_t *r = find(records, name, data);

	if (r == NULL)
		fail_msg("no record %s %s %s", name, type, data);
	assert_string_equal(json_string_value(json_object_get(r, "type")),
	    type);
	assert_string_equal(json_string_value(json_object_get(r, "origin")),
	    origin);
	assert_int_equal(json_integer_value(json_object_get(r, "ttl")), 30);
}

static void
test_table_json_has_metadata_and_every_record(void **state)
{
	struct nds_table *t = build(spec8);
	json_t *j = table_json(t, NULL), *recs = json_object_get(j, "records");

	assert_string_equal(json_string_value(json_object_get(j, "version")),
	    "v7");
	assert_string_equal(json_string_value(json_object_get(j, "updated")),
	    "2026-11-26T12:00:00Z");
	assert_int_equal(json_integer_value(json_object_get(j, "entries")), 12);
	assert_int_equal(json_array_size(recs), SPEC8_RECORDS);
	assert_int_equal(json_object_size(json_array_get(recs, 0)), 5);
	assert_int_equal(nds_table_names(t), SPEC8_NAMES);
	json_decref(j);
	nds_table_unref(t);
}

static void
test_table_json_sorted_by_name_then_type(void **state)
{
	struct nds_table *t = build(spec8);
	json_t *j = table_json(t, NULL), *recs = json_object_get(j, "records");
	const char *pname = "", *name;
	int prank = -1, rank, c;
	size_t i;
	json_t *r;

	json_array_foreach(recs, i, r)
	{
		name = json_string_value(json_object_get(r, "name"));
		rank = type_rank(json_string_value(json_object_get(r, "type")));
		c = strcmp(pname, name);
		assert_true(c < 0 || (c == 0 && prank <= rank));
		pname = name;
		prank = rank;
	}
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(recs, 0), "name")),
	    "*.b.wildcard.");
	json_decref(j);
	nds_table_unref(t);
}

static void
test_table_json_addresses_in_nameinfo_order_a_before_aaaa(void **state)
{
	struct nds_table *t = build(spec8);
	json_t *j = table_json(t, "details.ns2.svc.cluster.remote.");
	json_t *recs = json_object_get(j, "records");
	static const char *const order[] = {
	    "11.11.11.11", "12.12.12.12", "13.13.13.13", "14.14.14.14"};
	size_t i;

	assert_int_equal(json_array_size(recs), 4);
	for (i = 0; i < 4; i++)
		assert_string_equal(json_string_value(json_object_get(
		                        json_array_get(recs, i), "data")),
		    order[i]);
	json_decref(j);
	j = table_json(t, "dual.localhost");
	recs = json_object_get(j, "records");
	assert_int_equal(json_array_size(recs), 2);
	assert_record(recs, "dual.localhost.", "A", "2.2.2.2",
	    "dual.localhost");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(recs, 1), "type")),
	    "AAAA");
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(recs, 1), "data")),
	    "2001:db8::ff00:42:8329");
	json_decref(j);
	nds_table_unref(t);
}

static void
test_table_json_names_and_origins(void **state)
{
	struct nds_table *t = build(spec8);
	json_t *j = table_json(t, NULL), *recs = json_object_get(j, "records");

	assert_record(recs, "productpage.", "A", "9.9.9.9",
	    "productpage.ns1.svc.cluster.local");
	assert_record(recs, "productpage.ns1.svc.", "A", "9.9.9.9",
	    "productpage.ns1.svc.cluster.local");
	assert_record(recs, "svc-with-alt.ns1.svc.clusterset.local.", "A",
	    "15.15.15.15", "svc-with-alt.ns1.svc.cluster.local");
	assert_record(recs, "ipv6.localhost.", "AAAA", "2001:db8::ff00:42:8329",
	    "ipv6.localhost");
	/* The key keeps its trailing dot as origin; no "..". */
	assert_record(recs, "example.localhost.", "A", "3.3.3.3",
	    "example.localhost.");
	assert_record(recs, "*.wildcard.", "A", "10.10.10.10", "*.wildcard");
	/* Short names only in the own namespace; none for a remote one. */
	assert_null(find(recs, "example.", NULL));
	assert_null(find(recs, "details.ns2.", NULL));
	json_decref(j);
	nds_table_unref(t);
}

static void
test_table_json_cname_data_is_target(void **state)
{
	struct nds_table *t = build(spec8);
	json_t *j = table_json(t, NULL), *recs = json_object_get(j, "records");

	assert_record(recs, "www.google.com.ns1.svc.cluster.local.", "CNAME",
	    "www.google.com.", "www.google.com");
	/* D18: a short form's search CNAME names the FQDN. */
	assert_record(recs, "productpage.ns1.ns1.svc.cluster.local.", "CNAME",
	    "productpage.ns1.svc.cluster.local.",
	    "productpage.ns1.svc.cluster.local");
	/* A wildcard's CNAME is listed as stored: owner and target "*." */
	assert_record(recs, "*.wildcard.ns1.svc.cluster.local.", "CNAME",
	    "*.wildcard.", "*.wildcard");
	/* A name ending in search[0] gets no CNAME. */
	assert_null(find(recs,
	    "productpage.ns1.svc.cluster.local.ns1.svc.cluster.local.", NULL));
	json_decref(j);
	nds_table_unref(t);
}

static void
test_table_json_filter_exact_case_insensitive_dot_optional(void **state)
{
	static const char *const same[] = {"productpage.ns1.",
	    "productpage.ns1", "PRODUCTPAGE.Ns1.", "ProductPage.NS1"};
	struct nds_table *t = build(spec8);
	json_t *j, *recs;
	size_t i;

	for (i = 0; i < 4; i++) {
		j = table_json(t, same[i]);
		recs = json_object_get(j, "records");
		assert_int_equal(json_array_size(recs), 1);
		assert_record(recs, "productpage.ns1.", "A", "9.9.9.9",
		    "productpage.ns1.svc.cluster.local");
		assert_int_equal(json_integer_value(json_object_get(j,
		                     "entries")),
		    12);
		json_decref(j);
	}
	j = table_json(t, "productpage.ns1.ns1.svc.cluster.local");
	assert_record(json_object_get(j, "records"),
	    "productpage.ns1.ns1.svc.cluster.local.", "CNAME",
	    "productpage.ns1.svc.cluster.local.",
	    "productpage.ns1.svc.cluster.local");
	json_decref(j);
	nds_table_unref(t);
}

static void
test_table_json_filter_does_not_match_wildcards_or_suffixes(void **state)
{
	static const char *const none[] = {"foo.wildcard.", "productpage.ns",
	    "roductpage.", "", ".", "productpage..", "nope.example."};
	struct nds_table *t = build(spec8);
	json_t *j;
	size_t i;

	for (i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		j = table_json(t, none[i]);
		assert_int_equal(json_array_size(json_object_get(j, "records")),
		    0);
		json_decref(j);
	}
	j = table_json(t, "*.WILDCARD");
	assert_int_equal(json_array_size(json_object_get(j, "records")), 1);
	json_decref(j);
	nds_table_unref(t);
}

static void
test_table_json_never_updated_is_null(void **state)
{
	struct agent_table_meta m = {.version = NULL};
	json_t *j = parse(agent_table_json(NULL, &m, NULL));

	assert_string_equal(json_string_value(json_object_get(j, "version")),
	    "");
	assert_true(json_is_null(json_object_get(j, "updated")));
	assert_int_equal(json_integer_value(json_object_get(j, "entries")), 0);
	assert_int_equal(json_array_size(json_object_get(j, "records")), 0);
	json_decref(j);
}

static struct nds_table *
build_nt(struct nds_nametable *nt)
{
	struct nds_build_opts o = {.ttl = 5};
	struct nds_table *t;

	assert_int_equal(nds_table_build(nt, &o, &t, NULL, 0), 0);
	return t;
}

static void
test_json_escapes_quotes_controls_and_bad_utf8(void **state)
{
	static const char key[] = "we\"ird\\\x01\xff\xc3\xa9.example";
	const char *ips[] = {"192.0.2.1"};
	struct nds_nameinfo in = {.ips = ips, .nips = 1, .registry = "Ex\"t\n"};
	struct nds_nametable *nt;
	struct nds_table *t;
	json_t *j, *r;

	assert_int_equal(nds_nametable_create(&nt), 0);
	assert_int_equal(nds_nametable_add(nt, key, &in), 0);
	t = build_nt(nt);
	j = table_json(t, NULL);
	r = json_array_get(json_object_get(j, "records"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "name")),
	    "we\"ird\\\x01\xef\xbf\xbd\xc3\xa9.example.");
	assert_string_equal(json_string_value(json_object_get(r, "origin")),
	    "we\"ird\\\x01\xef\xbf\xbd\xc3\xa9.example");
	assert_int_equal(json_integer_value(json_object_get(r, "ttl")), 5);
	json_decref(j);
	j = parse(agent_ndsz_json(t));
	r = json_object_get(json_object_get(j, "table"),
	    "we\"ird\\\x01\xef\xbf\xbd\xc3\xa9.example");
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "registry")),
	    "Ex\"t\n");
	json_decref(j);
	nds_table_unref(t);
}

static void
test_ndsz_is_the_nametable_in_proto3_json(void **state)
{
	struct nds_table *t = build(spec8);
	json_t *j = parse(agent_ndsz_json(t));
	json_t *tab = json_object_get(j, "table"), *e;

	assert_int_equal(json_object_size(j), 1);
	e = json_object_get(tab, "svc-with-alt.ns1.svc.cluster.local");
	assert_non_null(e);
	assert_int_equal(json_object_size(e), 5);
	assert_string_equal(json_string_value(json_array_get(json_object_get(e,
	                                                         "ips"),
	                        0)),
	    "15.15.15.15");
	assert_string_equal(json_string_value(json_object_get(e, "registry")),
	    "Kubernetes");
	assert_string_equal(json_string_value(json_object_get(e, "shortname")),
	    "svc-with-alt");
	assert_string_equal(json_string_value(json_object_get(e, "namespace")),
	    "ns1");
	assert_string_equal(json_string_value(json_array_get(json_object_get(e,
	                                                         "altHosts"),
	                        0)),
	    "svc-with-alt.ns1.svc.clusterset.local");
	/* Empty fields are left out. */
	e = json_object_get(tab, "www.google.com");
	assert_int_equal(json_object_size(e), 2);
	assert_string_equal(json_string_value(json_object_get(e, "registry")),
	    "External");
	/* A key with a trailing dot is itself: not replaced by its name. */
	e = json_object_get(tab, "example.localhost.");
	assert_string_equal(json_string_value(json_object_get(e, "registry")),
	    "External");
	json_decref(j);
	nds_table_unref(t);
}

static void
test_ndsz_adds_generated_address_names_not_cnames(void **state)
{
	struct nds_table *t = build(spec8);
	json_t *j = parse(agent_ndsz_json(t));
	json_t *tab = json_object_get(j, "table"), *e, *ips;
	const char *key, *prev = "";

	/* 12 keys + the address names, one of them also a key. */
	assert_int_equal(json_object_size(tab), 12 + SPEC8_ADDR - 1);
	e = json_object_get(tab, "productpage.");
	assert_non_null(e);
	assert_int_equal(json_object_size(e), 2);
	assert_string_equal(json_string_value(json_object_get(e, "registry")),
	    "Kubernetes");
	assert_string_equal(json_string_value(json_array_get(json_object_get(e,
	                                                         "ips"),
	                        0)),
	    "9.9.9.9");
	ips = json_object_get(json_object_get(tab, "dual.localhost."), "ips");
	assert_int_equal(json_array_size(ips), 2);
	assert_string_equal(json_string_value(json_array_get(ips, 0)),
	    "2.2.2.2");
	assert_string_equal(json_string_value(json_array_get(ips, 1)),
	    "2001:db8::ff00:42:8329");
	/* External entries' names count too (Istio's altHosts do). */
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(tab, "www.google.com."),
	                        "registry")),
	    "Kubernetes");
	assert_null(json_object_get(tab,
	    "www.google.com.ns1.svc.cluster.local."));
	assert_null(json_object_get(tab,
	    "productpage.ns1.ns1.svc.cluster.local."));
	/* Keys come sorted (jansson keeps the order of the text). */
	json_object_foreach(tab, key, e)
	{
		assert_true(strcmp(prev, key) < 0);
		prev = key;
	}
	json_decref(j);
	nds_table_unref(t);
}

static void
test_ndsz_of_an_empty_table_is_empty_object(void **state)
{
	struct nds_nametable *nt;
	struct nds_table *t;
	char *s;

	assert_int_equal(nds_nametable_create(&nt), 0);
	t = build_nt(nt);
	s = agent_ndsz_json(t);
	assert_string_equal(s, "{}\n");
	free(s);
	nds_table_unref(t);
}

static void
test_source_is_kept_and_walkable(void **state)
{
	struct nds_table *t = build(spec8);
	const struct nds_nametable *nt = nds_table_source(t);

	assert_non_null(nt);
	assert_int_equal(nds_nametable_count(nt), 12);
	assert_null(nds_table_source(NULL));
	nds_table_unref(t);
}

static int
stop_after_three(const struct nds_record *r, void *arg)
{
	int *n = arg;

	return ++*n == 3 ? 42 : 0;
}

static void
test_foreach_record_stops_on_nonzero(void **state)
{
	struct nds_table *t = build(spec8);
	int n = 0;

	assert_int_equal(nds_table_foreach_record(t, NULL, stop_after_three,
	                     &n),
	    42);
	assert_int_equal(n, 3);
	assert_int_equal(nds_table_foreach_record(NULL, NULL, stop_after_three,
	                     &n),
	    -EINVAL);
	nds_table_unref(t);
}

/* Every allocation of tablejson.c fails once: NULL back, nothing leaked
 * (ASan), and the first run without a failure is the full answer. */
static void
test_allocation_failures_return_null(void **state)
{
	struct nds_table *t = build(spec8);
	struct agent_table_meta m = {.version = "v", .entries = 12};
	char *ref[2], *s;
	long at;
	int k;

	ref[0] = agent_table_json(t, &m, NULL);
	ref[1] = agent_ndsz_json(t);
	for (k = 0; k < 2; k++) {
		for (at = 0;; at++) {
			alloc_fail_at = at;
			s = k == 0 ? agent_table_json(t, &m, NULL)
			           : agent_ndsz_json(t);
			if (alloc_fail_at >= 0)
				break; /* the count never ran out: no failure */
			assert_null(s);
		}
		alloc_fail_at = -1;
		assert_non_null(s);
		assert_string_equal(s, ref[k]);
		free(s);
		assert_true(at > 0);
	}
	free(ref[0]);
	free(ref[1]);
	nds_table_unref(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_json_has_metadata_and_every_record),
	    cmocka_unit_test(test_table_json_sorted_by_name_then_type),
	    cmocka_unit_test(
	        test_table_json_addresses_in_nameinfo_order_a_before_aaaa),
	    cmocka_unit_test(test_table_json_names_and_origins),
	    cmocka_unit_test(test_table_json_cname_data_is_target),
	    cmocka_unit_test(
	        test_table_json_filter_exact_case_insensitive_dot_optional),
	    cmocka_unit_test(
	        test_table_json_filter_does_not_match_wildcards_or_suffixes),
	    cmocka_unit_test(test_table_json_never_updated_is_null),
	    cmocka_unit_test(test_json_escapes_quotes_controls_and_bad_utf8),
	    cmocka_unit_test(test_ndsz_is_the_nametable_in_proto3_json),
	    cmocka_unit_test(test_ndsz_adds_generated_address_names_not_cnames),
	    cmocka_unit_test(test_ndsz_of_an_empty_table_is_empty_object),
	    cmocka_unit_test(test_source_is_kept_and_walkable),
	    cmocka_unit_test(test_foreach_record_stops_on_nonzero),
	    cmocka_unit_test(test_allocation_failures_return_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
