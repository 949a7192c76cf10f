/*
 * test_ads.c: the ADS state machine of nds/ads.c (SPEC §5): what the
 * first request, an ACK and a NACK carry on the wire (decoded back with
 * protobuf-c), the verdict for every kind of response, the skimmer that
 * still finds the nonce of an oversized response, and the back-off curve.
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

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "nds/nds.h"
#include "nds/xds_impl.h"
#include "test/unit/allocfail.h"
#define calloc counted_calloc
#define malloc counted_malloc
#include "nds/ads.c"
#undef calloc
#undef malloc

static const struct nds_build_opts opts = {
    .namespace = "ns1",
    .domain = "ns1.svc.cluster.local",
    .search0 = "ns1.svc.cluster.local",
    .ttl = 30,
};

/* ---- helpers ----------------------------------------------------------- */

/* A NameTable with productpage (Kubernetes) and an External entry. */
static uint8_t *
sample_table(size_t *len)
{
	static const char *const ips1[] = {"10.0.0.1"};
	static const char *const ips2[] = {"240.240.0.7", "2001:2::7"};
	struct nds_nameinfo k8s = {.ips = ips1,
	    .nips = 1,
	    .registry = "Kubernetes",
	    .shortname = "productpage",
	    .ns = "ns1"};
	struct nds_nameinfo ext = {
	    .ips = ips2, .nips = 2, .registry = "External"};
	struct nds_nametable *nt;
	uint8_t *out;

	assert_int_equal(nds_nametable_create(&nt), 0);
	assert_int_equal(nds_nametable_add(nt,
	                     "productpage.ns1.svc.cluster.local", &k8s),
	    0);
	assert_int_equal(nds_nametable_add(nt, "api.example.com", &ext), 0);
	assert_int_equal(nds_pb_build(nt, &out, len), 0);
	nds_nametable_destroy(nt);
	return out;
}

/*
 * A packed DiscoveryResponse; resource NULL = no resources.  extra, if
 * given, is appended verbatim (unknown fields).
 */
static uint8_t *
response(const char *version, const char *nonce, const char *type_url,
    const char *res_type, const uint8_t *resource, size_t reslen,
    const uint8_t *extra, size_t extralen, size_t *len)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse r =
	    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	Google__Protobuf__Any *anys[1] = {&any};
	uint8_t *buf;
	size_t n;

	r.version_info = (char *)(uintptr_t)version;
	r.nonce = (char *)(uintptr_t)nonce;
	r.type_url = (char *)(uintptr_t)type_url;
	if (resource != NULL) {
		any.type_url = (char *)(uintptr_t)res_type;
		any.value.data = (uint8_t *)(uintptr_t)resource;
		any.value.len = reslen;
		r.resources = anys;
		r.n_resources = 1;
	}
	n = envoy__service__discovery__v3__discovery_response__get_packed_size(
	    &r);
	buf = malloc(n + extralen + 1);
	assert_non_null(buf);
	envoy__service__discovery__v3__discovery_response__pack(&r, buf);
	if (extralen)
		memcpy(buf + n, extra, extralen);
	*len = n + extralen;
	return buf;
}

/* Decodes a request built by nds_ads_request_build() (prefix checked). */
static Envoy__Service__Discovery__V3__DiscoveryRequest *
decode_request(const uint8_t *msg, size_t len)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest *r;
	uint32_t n;

	assert_true(len >= NDS_GRPC_PREFIX);
	assert_int_equal(msg[0], 0);
	n = (uint32_t)msg[1] << 24 | (uint32_t)msg[2] << 16 |
	    (uint32_t)msg[3] << 8 | msg[4];
	assert_int_equal(n, len - NDS_GRPC_PREFIX);
	r = envoy__service__discovery__v3__discovery_request__unpack(NULL, n,
	    msg + NDS_GRPC_PREFIX);
	assert_non_null(r);
	return r;
}

/* ---- requests ---------------------------------------------------------- */

static void
test_first_request_carries_node_and_no_version_or_nonce(void **state)
{
	static const char *const keys[] = {"DNS_CAPTURE", "NAMESPACE"};
	static const char *const vals[] = {"true", "ns1"};
	struct nds_xds_node node = {.id = "sidecar~10.0.0.5~a.ns1~ns1.svc.c",
	    .meta_keys = keys,
	    .meta_vals = vals,
	    .nmeta = 2,
	    .user_agent_name = "dnsproxy",
	    .user_agent_version = "1"};
	Envoy__Service__Discovery__V3__DiscoveryRequest *r;
	Google__Protobuf__Struct *md;
	uint8_t *msg;
	size_t len;

	(void)state;
	assert_int_equal(nds_ads_request_build(&node, NULL, NULL, NULL, &msg,
	                     &len),
	    0);
	r = decode_request(msg, len);
	assert_string_equal(r->type_url, NDS_TYPE_URL);
	assert_string_equal(r->version_info, "");
	assert_string_equal(r->response_nonce, "");
	assert_int_equal(r->n_resource_names, 0);
	assert_null(r->error_detail);
	assert_non_null(r->node);
	assert_string_equal(r->node->id, node.id);
	assert_string_equal(r->node->user_agent_name, "dnsproxy");
	md = r->node->metadata;
	assert_non_null(md);
	assert_int_equal(md->n_fields, 2);
	assert_string_equal(md->fields[1]->key, "NAMESPACE");
	assert_int_equal(md->fields[1]->value->kind_case,
	    GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
	assert_string_equal(md->fields[1]->value->string_value, "ns1");
	envoy__service__discovery__v3__discovery_request__free_unpacked(r,
	    NULL);
	free(msg);
}

static void
test_ack_echoes_version_and_nonce_without_node(void **state)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest *r;
	uint8_t *msg;
	size_t len;

	(void)state;
	assert_int_equal(nds_ads_request_build(NULL, "v7", "nonce-7", NULL,
	                     &msg, &len),
	    0);
	r = decode_request(msg, len);
	assert_null(r->node);
	assert_string_equal(r->version_info, "v7");
	assert_string_equal(r->response_nonce, "nonce-7");
	assert_string_equal(r->type_url, NDS_TYPE_URL);
	assert_null(r->error_detail);
	envoy__service__discovery__v3__discovery_request__free_unpacked(r,
	    NULL);
	free(msg);
}

static void
test_nack_carries_internal_code_and_reason(void **state)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest *r;
	uint8_t *msg;
	size_t len;

	(void)state;
	assert_int_equal(nds_ads_request_build(NULL, "v8", "n8", "bad table",
	                     &msg, &len),
	    0);
	r = decode_request(msg, len);
	assert_non_null(r->error_detail);
	assert_int_equal(r->error_detail->code, 13);
	assert_string_equal(r->error_detail->message, "bad table");
	assert_string_equal(r->response_nonce, "n8");
	envoy__service__discovery__v3__discovery_request__free_unpacked(r,
	    NULL);
	free(msg);
}

static void
test_request_build_survives_every_allocation_failure(void **state)
{
	static const char *const keys[] = {"A", "B", "C"};
	static const char *const vals[] = {"1", "2", "3"};
	struct nds_xds_node node = {
	    .id = "x", .meta_keys = keys, .meta_vals = vals, .nmeta = 3};
	uint8_t *msg;
	size_t len;
	long k;
	int rc;

	(void)state;
	for (k = 0;; k++) {
		alloc_fail_at = k;
		rc = nds_ads_request_build(&node, NULL, NULL, NULL, &msg, &len);
		alloc_fail_at = -1;
		if (rc == 0) {
			free(msg);
			break;
		}
		assert_int_equal(rc, -ENOMEM);
	}
	assert_true(k >= 4); /* three arrays and the message */
}

/* ---- responses --------------------------------------------------------- */

static void
test_push_with_a_table_is_acked_and_answers(void **state)
{
	struct nds_ads_result res;
	struct nds_answer ans;
	uint8_t *tbl, *msg;
	size_t tlen, len;

	(void)state;
	tbl = sample_table(&tlen);
	msg = response("2026-11-26/1", "abc", NDS_TYPE_URL, NDS_TYPE_URL, tbl,
	    tlen, NULL, 0, &len);
	assert_int_equal(nds_ads_response_process(msg, len, &opts, NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_ACK);
	assert_string_equal(res.version, "2026-11-26/1");
	assert_string_equal(res.nonce, "abc");
	assert_non_null(res.table);
	assert_int_equal(nds_table_entries(res.table), 2);
	assert_int_equal(nds_table_lookup(res.table, "productpage.", 12, &ans),
	    0);
	assert_int_equal(ans.n4, 1);
	/* the snapshot bytes are the NameTable exactly as pushed, read in
	 * place: protobuf-c copied none of it */
	assert_int_equal(res.pblen, tlen);
	assert_memory_equal(res.pb, tbl, tlen);
	assert_true(res.pb > msg && res.pb + res.pblen <= msg + len);
	assert_null(res.pb_own);
	nds_ads_result_fini(&res);
	free(msg);
	free(tbl);
}

/*
 * The decode without the compile (what the client runs before compiling
 * in slices): the ACK-to-be holds the NameTable and the bytes, no table;
 * a compile that then fails makes it the NACK process() would give.
 */
static void
test_decode_leaves_the_compile_and_its_failure_nacks(void **state)
{
	struct nds_ads_result res;
	struct nds_table *t;
	uint8_t *tbl, *msg;
	size_t tlen, len;
	char want[256], err[128];

	(void)state;
	tbl = sample_table(&tlen);
	msg = response("v7", "n7", NDS_TYPE_URL, NDS_TYPE_URL, tbl, tlen, NULL,
	    0, &len);
	assert_int_equal(nds_ads_response_decode(msg, len, NULL, &res), 0);
	assert_int_equal(res.verdict, NDS_ADS_ACK);
	assert_null(res.table);
	assert_non_null(res.nt);
	assert_int_equal(nds_nametable_count(res.nt), 2);
	assert_int_equal(res.pblen, tlen);
	assert_memory_equal(res.pb, tbl, tlen);
	/* compiled by the caller: the table process() builds */
	assert_int_equal(nds_table_build(res.nt, &opts, &t, err, sizeof(err)),
	    0);
	res.nt = NULL;
	assert_int_equal(nds_table_entries(t), 2);
	nds_table_unref(t);
	nds_ads_result_fini(&res);

	assert_int_equal(nds_ads_response_decode(msg, len, NULL, &res), 0);
	nds_ads_result_compile_failed(&res, "table build: out of memory");
	assert_int_equal(res.verdict, NDS_ADS_NACK);
	assert_null(res.nt);
	assert_null(res.pb);
	assert_string_equal(res.nonce, "n7");
	snprintf(want, sizeof(want),
	    "NameTable (version \"v7\", %zu bytes): table build: out of memory",
	    tlen);
	assert_string_equal(res.reason, want);
	nds_ads_result_fini(&res);
	free(msg);
	free(tbl);
}

/* Appends a length-delimited field to buf at *n. */
static void
put_ld(uint8_t *buf, size_t *n, unsigned field, const void *p, size_t len)
{
	buf[(*n)++] = (uint8_t)(field << 3 | 2);
	assert_true(len < 128 * 128);
	if (len >= 128) {
		buf[(*n)++] = (uint8_t)(len | 0x80);
		buf[(*n)++] = (uint8_t)(len >> 7);
	} else {
		buf[(*n)++] = (uint8_t)len;
	}
	memcpy(buf + *n, p, len);
	*n += len;
}

/*
 * The NameTable is cut out of the envelope before protobuf-c sees it:
 * with a value given twice (the last one counts, as in protobuf), unknown
 * fields around it and a second resource, the verdict and bytes are what
 * a whole decode gives.
 */
static void
test_first_resource_value_is_read_in_place(void **state)
{
	static const char type[] = NDS_TYPE_URL;
	uint8_t any[4096], msg[8192], bad[] = {0x0a, 0x01}; /* cut entry */
	struct nds_ads_result res;
	size_t tlen, na = 0, n = 0;
	uint8_t *tbl = sample_table(&tlen), unk[] = {0x18, 0x07};

	(void)state;
	put_ld(any, &na, 1, type, sizeof(type) - 1);
	put_ld(any, &na, 2, bad, sizeof(bad));
	memcpy(any + na, unk, sizeof(unk)); /* field 3, varint */
	na += sizeof(unk);
	put_ld(any, &na, 2, tbl, tlen);
	put_ld(msg, &n, 1, "v9", 2);
	put_ld(msg, &n, 2, any, na);
	put_ld(msg, &n, 2, any, na); /* a second resource: ignored */
	put_ld(msg, &n, 4, type, sizeof(type) - 1);
	put_ld(msg, &n, 5, "n9", 2);
	assert_int_equal(nds_ads_response_process(msg, n, &opts, NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_ACK);
	assert_string_equal(res.version, "v9");
	assert_string_equal(res.nonce, "n9");
	assert_int_equal(res.pblen, tlen);
	assert_memory_equal(res.pb, tbl, tlen);
	assert_true(res.pb > msg && res.pb < msg + n);
	nds_ads_result_fini(&res);
	/* A broken field after the resource: protobuf-c judges the whole
	 * message, as before the cut. */
	msg[n++] = 0x2a; /* field 5, length 100: beyond the end */
	msg[n++] = 100;
	assert_int_equal(nds_ads_response_process(msg, n, &opts, NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_NACK);
	assert_null(res.pb);
	assert_non_null(strstr(res.reason, "does not decode"));
	nds_ads_result_fini(&res);
	free(tbl);
}

/* A NameTable of n Kubernetes services in ns1 (~50 bytes each). */
static uint8_t *
big_table(size_t n, size_t *len)
{
	struct nds_nametable *nt;
	char key[64], ip[32];
	const char *ips[1] = {ip};
	struct nds_nameinfo in = {
	    .ips = ips, .nips = 1, .registry = "Kubernetes", .ns = "ns1"};
	uint8_t *out;
	size_t i;

	assert_int_equal(nds_nametable_create(&nt), 0);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "svc-%zu.ns1.svc.cluster.local", i);
		snprintf(ip, sizeof(ip), "10.%zu.%zu.%zu", i >> 16,
		    (i >> 8) & 255, i & 255);
		assert_int_equal(nds_nametable_add(nt, key, &in), 0);
	}
	assert_int_equal(nds_pb_build(nt, &out, len), 0);
	nds_nametable_destroy(nt);
	return out;
}

/* Whether two results hold the same table (as its canonical bytes). */
static void
assert_same_table(const struct nds_ads_result *a,
    const struct nds_ads_result *b)
{
	uint8_t *pa, *pb;
	size_t la, lb;

	assert_int_equal(nds_pb_build(nds_table_source(a->table), &pa, &la), 0);
	assert_int_equal(nds_pb_build(nds_table_source(b->table), &pb, &lb), 0);
	assert_int_equal(la, lb);
	assert_memory_equal(pa, pb, la);
	assert_int_equal(nds_table_names(a->table), nds_table_names(b->table));
	free(pa);
	free(pb);
}

/*
 * A large push is decoded while it arrives: fed in 4 KiB reads, most of
 * its NameTable is decoded before the last byte, in steps of at least
 * NDS_EARLY_STEP; the result is the whole decode's.
 */
static void
test_large_push_is_decoded_as_it_arrives(void **state)
{
	struct nds_ads_result whole, res;
	struct nds_ads_early e;
	size_t tlen, len, got;
	uint8_t *tbl = big_table(5000, &tlen), *msg;

	(void)state;
	assert_true(tlen > 4 * NDS_EARLY_STEP);
	msg = response("v1", "n1", NDS_TYPE_URL, NDS_TYPE_URL, tbl, tlen, NULL,
	    0, &len);
	assert_int_equal(nds_ads_response_process(msg, len, &opts, NULL,
	                     &whole),
	    0);
	assert_int_equal(whole.verdict, NDS_ADS_ACK);

	nds_ads_early_init(&e);
	for (got = 4096; got < len; got += 4096) {
		size_t before = e.done;

		nds_ads_early_feed(&e, msg, got, len);
		/* nothing, or a step of at least NDS_EARLY_STEP */
		assert_true(e.done == before || e.done - before >= 60000);
	}
	assert_false(e.dead);
	assert_false(e.whole);
	assert_true(e.done > tlen - NDS_EARLY_STEP - 4096 - 100);
	assert_ptr_equal(msg + e.vstart, whole.pb);
	assert_int_equal(nds_ads_response_process(msg, len, &opts, &e, &res),
	    0);
	assert_true(e.whole);
	assert_int_equal(res.verdict, NDS_ADS_ACK);
	assert_string_equal(res.version, "v1");
	assert_int_equal(res.pblen, tlen);
	assert_ptr_equal(res.pb, whole.pb);
	assert_int_equal(nds_table_entries(res.table), 5000);
	assert_same_table(&res, &whole);
	nds_ads_early_fini(&e);
	nds_ads_result_fini(&res);
	nds_ads_result_fini(&whole);
	free(msg);
	free(tbl);
}

/*
 * What the early decoder reads but the whole decode would not take, it
 * gives up or is not used for: a value given twice (it decodes the first,
 * the last counts), a bad table (the NACK is the whole decode's, with the
 * same reason), a message that is not protobuf.
 */
static void
test_early_decode_defers_to_the_whole_decode(void **state)
{
	static const char type[] = NDS_TYPE_URL;
	static const uint8_t junk[] = {0x12, 0x05, 0x12, 0x7f, 0x0a, 0x01, 0x02,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	uint8_t any[4096], msg[8192], bad[] = {0x0a, 0x01}, *m;
	size_t tlen, na = 0, n = 0, len, i, k;
	uint8_t *t1 = sample_table(&tlen), *t2, *ip;
	struct nds_ads_result a, b;
	struct nds_ads_early e;
	struct {
		const uint8_t *msg;
		size_t len;
	} cases[3];

	(void)state;
	/* the first value is a table too, of the same length, but not the
	 * one that counts */
	assert_non_null(t2 = malloc(tlen));
	memcpy(t2, t1, tlen);
	assert_non_null(ip = memmem(t2, tlen, "10.0.0.1", 8));
	ip[7] = '2';
	put_ld(any, &na, 1, type, sizeof(type) - 1);
	put_ld(any, &na, 2, t2, tlen);
	put_ld(any, &na, 2, t1, tlen);
	put_ld(msg, &n, 1, "v2", 2);
	put_ld(msg, &n, 2, any, na);
	put_ld(msg, &n, 4, type, sizeof(type) - 1);
	put_ld(msg, &n, 5, "n2", 2);
	cases[0].msg = msg;
	cases[0].len = n;
	m = response("v3", "n3", NDS_TYPE_URL, NDS_TYPE_URL, bad, sizeof(bad),
	    NULL, 0, &len);
	cases[1].msg = m;
	cases[1].len = len;
	cases[2].msg = junk;
	cases[2].len = sizeof(junk);
	for (i = 0; i < 3; i++) {
		assert_int_equal(nds_ads_response_process(cases[i].msg,
		                     cases[i].len, &opts, NULL, &a),
		    0);
		nds_ads_early_init(&e);
		e.step = 1;
		for (k = 1; k < cases[i].len; k++)
			nds_ads_early_feed(&e, cases[i].msg, k, cases[i].len);
		assert_int_equal(nds_ads_response_process(cases[i].msg,
		                     cases[i].len, &opts, &e, &b),
		    0);
		assert_int_equal(a.verdict, b.verdict);
		assert_string_equal(a.reason, b.reason);
		assert_string_equal(a.version, b.version);
		assert_string_equal(a.nonce, b.nonce);
		/* the first is an ACK, the others NACKs */
		assert_int_equal(a.verdict,
		    i == 0 ? NDS_ADS_ACK : NDS_ADS_NACK);
		if (a.verdict == NDS_ADS_ACK) {
			assert_int_equal(nds_table_entries(b.table), 2);
			assert_same_table(&a, &b);
		}
		nds_ads_early_fini(&e);
		nds_ads_result_fini(&a);
		nds_ads_result_fini(&b);
	}
	free(m);
	free(t1);
	free(t2);
}

static void
test_empty_push_is_ignored(void **state)
{
	struct nds_ads_result res;
	uint8_t *msg;
	size_t len;

	(void)state;
	msg = response("v1", "n1", NDS_TYPE_URL, NULL, NULL, 0, NULL, 0, &len);
	assert_int_equal(nds_ads_response_process(msg, len, &opts, NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_IGNORE);
	assert_null(res.table);
	assert_non_null(strstr(res.reason, "empty"));
	nds_ads_result_fini(&res);
	free(msg);
}

static void
test_other_type_url_is_ignored(void **state)
{
	struct nds_ads_result res;
	uint8_t *tbl, *msg;
	size_t tlen, len;
	const char *lds = "type.googleapis.com/envoy.config.listener.v3."
	                  "Listener";

	(void)state;
	tbl = sample_table(&tlen);
	msg = response("v1", "n1", lds, lds, tbl, tlen, NULL, 0, &len);
	assert_int_equal(nds_ads_response_process(msg, len, &opts, NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_IGNORE);
	assert_null(res.table);
	assert_non_null(strstr(res.reason, "Listener"));
	nds_ads_result_fini(&res);
	free(msg);
	free(tbl);
}

static void
test_garbage_table_is_nacked_with_its_nonce(void **state)
{
	static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
	struct nds_ads_result res;
	uint8_t *msg;
	size_t len;

	(void)state;
	msg = response("v2", "n2", NDS_TYPE_URL, NDS_TYPE_URL, junk,
	    sizeof(junk), NULL, 0, &len);
	assert_int_equal(nds_ads_response_process(msg, len, &opts, NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_NACK);
	assert_string_equal(res.version, "v2");
	assert_string_equal(res.nonce, "n2");
	assert_null(res.table);
	assert_non_null(strstr(res.reason, "NameTable"));
	nds_ads_result_fini(&res);
	free(msg);
}

static void
test_resource_of_another_type_is_nacked(void **state)
{
	struct nds_ads_result res;
	uint8_t *tbl, *msg;
	size_t tlen, len;

	(void)state;
	tbl = sample_table(&tlen);
	msg = response("v3", "n3", NDS_TYPE_URL, "type.googleapis.com/x.Y", tbl,
	    tlen, NULL, 0, &len);
	assert_int_equal(nds_ads_response_process(msg, len, &opts, NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_NACK);
	assert_non_null(strstr(res.reason, "x.Y"));
	nds_ads_result_fini(&res);
	free(msg);
	free(tbl);
}

static void
test_undecodable_envelope_is_nacked_without_nonce(void **state)
{
	static const uint8_t junk[] = {0x12, 0x80}; /* truncated length */
	struct nds_ads_result res;

	(void)state;
	assert_int_equal(nds_ads_response_process(junk, sizeof(junk), &opts,
	                     NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_NACK);
	assert_string_equal(res.nonce, "");
	assert_non_null(strstr(res.reason, "does not decode"));
	nds_ads_result_fini(&res);
}

static void
test_unknown_fields_from_a_newer_istiod_are_skipped(void **state)
{
	/* control_plane (6, a message), a varint 99 and a fixed64 20 */
	static const uint8_t extra[] = {0x32, 0x03, 0x0a, 0x01, 'x', 0x98, 0x06,
	    0x01, 0xa1, 0x01, 1, 2, 3, 4, 5, 6, 7, 8};
	struct nds_ads_result res;
	uint8_t *tbl, *msg;
	size_t tlen, len;

	(void)state;
	tbl = sample_table(&tlen);
	msg = response("v4", "n4", NDS_TYPE_URL, NDS_TYPE_URL, tbl, tlen, extra,
	    sizeof(extra), &len);
	assert_int_equal(nds_ads_response_process(msg, len, &opts, NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_ACK);
	assert_string_equal(res.nonce, "n4");
	nds_ads_result_fini(&res);
	free(msg);
	free(tbl);
}

static void
test_empty_type_url_in_any_is_accepted(void **state)
{
	struct nds_ads_result res;
	uint8_t *tbl, *msg;
	size_t tlen, len;

	(void)state;
	tbl = sample_table(&tlen);
	msg = response("v5", "n5", NDS_TYPE_URL, "", tbl, tlen, NULL, 0, &len);
	assert_int_equal(nds_ads_response_process(msg, len, &opts, NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_ACK);
	nds_ads_result_fini(&res);
	free(msg);
	free(tbl);
}

static void
test_nack_reason_is_valid_utf8_even_when_cut(void **state)
{
	struct nds_ads_result res;
	char version[300];
	uint8_t *msg;
	size_t len, i;
	static const uint8_t junk[] = {0x0a, 0xff};

	(void)state;
	/* 'é' is two bytes; after one 'a', "%.100s" cuts the 50th in half */
	version[0] = 'a';
	for (i = 1; i + 1 < 200; i += 2) {
		version[i] = (char)0xc3;
		version[i + 1] = (char)0xa9;
	}
	version[199] = '\0';
	msg = response(version, "n", NDS_TYPE_URL, NDS_TYPE_URL, junk,
	    sizeof(junk), NULL, 0, &len);
	assert_int_equal(nds_ads_response_process(msg, len, &opts, NULL, &res),
	    0);
	assert_int_equal(res.verdict, NDS_ADS_NACK);
	for (i = 0; res.reason[i]; i++)
		if ((uint8_t)res.reason[i] == 0xc3)
			assert_int_equal((uint8_t)res.reason[i + 1], 0xa9);
	nds_ads_result_fini(&res);
	free(msg);
}

static void
test_utf8_sanitize_keeps_valid_text_and_marks_the_rest(void **state)
{
	char ok[] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	char bad[] = "a\xc3\xe2\x82\xc0\xafz\xed\xa0\x80\xf4\x90\x80\x80";

	(void)state;
	nds_utf8_sanitize(ok);
	assert_string_equal(ok, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	nds_utf8_sanitize(bad);
	assert_string_equal(bad, "a?????z???????");
}

/* ---- the skimmer ------------------------------------------------------- */

static void
test_skim_finds_nonce_after_a_huge_resource(void **state)
{
	struct nds_ads_skim sk;
	uint8_t *big, *msg;
	size_t len, i, step;

	(void)state;
	big = malloc(300000);
	assert_non_null(big);
	memset(big, 0x55, 300000);
	msg = response("v9", "nonce-9", NDS_TYPE_URL, NDS_TYPE_URL, big, 300000,
	    NULL, 0, &len);
	for (step = 1; step <= 4099; step += 1366) {
		nds_ads_skim_init(&sk);
		for (i = 0; i < len; i += step)
			nds_ads_skim_feed(&sk, msg + i,
			    len - i < step ? len - i : step);
		assert_false(sk.dead);
		assert_string_equal(sk.version, "v9");
		assert_string_equal(sk.nonce, "nonce-9");
		assert_string_equal(sk.type_url, NDS_TYPE_URL);
	}
	free(msg);
	free(big);
}

static void
test_skim_gives_up_on_groups_and_cuts_long_strings(void **state)
{
	static const uint8_t group[] = {0x0b, 0x0c};
	struct nds_ads_skim sk;
	uint8_t msg[600];
	size_t i;

	(void)state;
	nds_ads_skim_init(&sk);
	nds_ads_skim_feed(&sk, group, sizeof(group));
	assert_true(sk.dead);
	/* nonce (5) of 500 bytes: kept up to 255 */
	msg[0] = 0x2a;
	msg[1] = 0xf4;
	msg[2] = 0x03;
	for (i = 0; i < 500; i++)
		msg[3 + i] = 'n';
	nds_ads_skim_init(&sk);
	nds_ads_skim_feed(&sk, msg, 503);
	assert_false(sk.dead);
	assert_int_equal(strlen(sk.nonce), 255);
}

/* ---- back-off ---------------------------------------------------------- */

static void
test_backoff_starts_under_a_second_doubles_and_caps(void **state)
{
	(void)state;
	/* first retry: within [0.5 s, 1 s] */
	assert_int_equal(nds_backoff_ms(0, 1000, 30000, 0), 500);
	assert_int_equal(nds_backoff_ms(0, 1000, 30000, 500), 1000);
	assert_int_equal(nds_backoff_ms(0, 1000, 30000, 501), 500);
	/* then 2 s, 4 s ... */
	assert_int_equal(nds_backoff_ms(1, 1000, 30000, 1000), 2000);
	assert_int_equal(nds_backoff_ms(3, 1000, 30000, 0), 4000);
	/* capped at 30 s forever */
	assert_int_equal(nds_backoff_ms(5, 1000, 30000, 15000), 30000);
	assert_int_equal(nds_backoff_ms(31, 1000, 30000, 0), 15000);
	assert_true(nds_backoff_ms(1000, 1000, 30000, 0xffffffffu) <= 30000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(
	        test_first_request_carries_node_and_no_version_or_nonce),
	    cmocka_unit_test(test_ack_echoes_version_and_nonce_without_node),
	    cmocka_unit_test(test_nack_carries_internal_code_and_reason),
	    cmocka_unit_test(
	        test_request_build_survives_every_allocation_failure),
	    cmocka_unit_test(test_push_with_a_table_is_acked_and_answers),
	    cmocka_unit_test(
	        test_decode_leaves_the_compile_and_its_failure_nacks),
	    cmocka_unit_test(test_first_resource_value_is_read_in_place),
	    cmocka_unit_test(test_large_push_is_decoded_as_it_arrives),
	    cmocka_unit_test(test_early_decode_defers_to_the_whole_decode),
	    cmocka_unit_test(test_empty_push_is_ignored),
	    cmocka_unit_test(test_other_type_url_is_ignored),
	    cmocka_unit_test(test_garbage_table_is_nacked_with_its_nonce),
	    cmocka_unit_test(test_resource_of_another_type_is_nacked),
	    cmocka_unit_test(test_undecodable_envelope_is_nacked_without_nonce),
	    cmocka_unit_test(
	        test_unknown_fields_from_a_newer_istiod_are_skipped),
	    cmocka_unit_test(test_empty_type_url_in_any_is_accepted),
	    cmocka_unit_test(test_nack_reason_is_valid_utf8_even_when_cut),
	    cmocka_unit_test(
	        test_utf8_sanitize_keeps_valid_text_and_marks_the_rest),
	    cmocka_unit_test(test_skim_finds_nonce_after_a_huge_resource),
	    cmocka_unit_test(
	        test_skim_gives_up_on_groups_and_cuts_long_strings),
	    cmocka_unit_test(
	        test_backoff_starts_under_a_second_doubles_and_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
