/*
 * fuzz_ads.c: the receive path of the ADS stream as conn.c drives it:
 * stream bytes -> nds_grpc_rx_feed() -> nds_ads_response_process() for a
 * whole message, nds_ads_skim_feed() for an oversized one -> the ACK or
 * NACK that would be sent, built and decoded back.
 *
 * Input: byte 0 is the framing (bit 7: keep messages up to 64 KiB instead
 * of 4 KiB, both far below NDS_GRPC_MAX_MSG so that small inputs reach
 * the oversize path; bits 0-6: the chunk size, 0 = all at once), the rest
 * is the stream.  Seeds: make_xds_corpus.py.
 *
 * Aborts when
 *  - a verdict and its result disagree: ACK without a table, version or
 *    nonce; NACK without a reason or with a table; IGNORE with a table;
 *  - the verdict disagrees with what protobuf-c makes of the envelope
 *    (an undecodable envelope is a NACK, another type URL or no resource
 *    an IGNORE, an ACK only for a NameTable nds_pb_parse() takes), or
 *    version/nonce differ from it;
 *  - an ACK's NameTable bytes do not parse and compile again into a table
 *    of the same size;
 *  - the ACK/NACK request does not decode with protobuf-c into the type
 *    URL, version, nonce and error_detail it was built from, or quotes a
 *    string of the response that was UTF-8 cut into one that is not;
 *  - nds_pb_parse() and protobuf-c disagree on a NameTable both accept,
 *    or protobuf-c rejects our canonical encoding of one we accept;
 *  - the same message fed as it would arrive to the early decoder (pieces
 *    and step sizes from its length) gives another verdict, reason,
 *    version, nonce, NameTable bytes or table than the whole decode;
 *  - the skimmer's version, nonce or type URL differ from protobuf-c's
 *    decode of the same message (it is also run on every whole message,
 *    cut in two, so its paths do not depend on oversized inputs).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "istio/networking/nds/v1/nds.pb-c.h"
#include "nds/nds.h"
#include "nds/xds_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef Envoy__Service__Discovery__V3__DiscoveryResponse Response;
typedef Envoy__Service__Discovery__V3__DiscoveryRequest Request;
typedef Istio__Networking__Nds__V1__NameTable NameTable;

static const struct nds_build_opts opts = {
    .namespace = "ns1",
    .domain = "ns1.svc.cluster.local",
    .search0 = "ns1.svc.cluster.local",
    .ttl = 30,
};

/* One run over one input. */
struct run {
	struct nds_grpc_rx rx;
	struct nds_ads_skim skim;
	int skimming;               /* inside an oversized message */
	struct nds_ads_early early; /* fed the message kept, as conn.c */
	int early_on;
	uint8_t *big; /* its bytes so far, for the cross-check */
	size_t biglen;
	int oom; /* a copy failed: skip the cross-check */
};

/* protobuf-c leaves absent strings at "" but a NULL costs nothing here. */
static const char *
str(const char *s)
{
	return s != NULL ? s : "";
}

/* Whether s is UTF-8 as Go's utf8.ValidString() sees it: no overlong
 * forms, no surrogates, nothing past U+10FFFF. */
static int
utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char lo, hi;
	int n;

	while (*s != '\0') {
		if (*s < 0x80) {
			s++;
			continue;
		}
		lo = 0x80;
		hi = 0xbf;
		if (*s >= 0xc2 && *s <= 0xdf)
			n = 1;
		else if (*s >= 0xe0 && *s <= 0xef) {
			n = 2;
			lo = *s == 0xe0 ? 0xa0 : 0x80;
			hi = *s == 0xed ? 0x9f : 0xbf;
		} else if (*s >= 0xf0 && *s <= 0xf4) {
			n = 3;
			lo = *s == 0xf0 ? 0x90 : 0x80;
			hi = *s == 0xf4 ? 0x8f : 0xbf;
		} else
			return 0;
		if (s[1] < lo || s[1] > hi)
			return 0;
		for (s += 2; --n > 0; s++)
			if (*s < 0x80 || *s > 0xbf)
				return 0;
	}
	return 1;
}

/*
 * Whether every string of a response that a request can quote is UTF-8.
 * The NACK reason quotes version and type URLs, never NameTable strings
 * (nds_pb_parse() reports offsets), so those are all that count.
 */
static int
response_utf8(const Response *resp)
{
	if (resp == NULL)
		return 1; /* the NACK then quotes nothing */
	if (!utf8_valid(str(resp->version_info)) ||
	    !utf8_valid(str(resp->nonce)) || !utf8_valid(str(resp->type_url)))
		return 0;
	if (resp->n_resources > 0 &&
	    !utf8_valid(str(resp->resources[0]->type_url)))
		return 0;
	return 1;
}

/*
 * The request conn.c sends for a verdict: the prefix must frame exactly
 * the message, and protobuf-c must read back what went in.  The node goes
 * only on a stream's first request, which no response answers.
 */
static void
check_request(const char *version, const char *nonce, const char *error,
    int utf8)
{
	uint8_t *buf;
	size_t len, mlen;
	Request *req;

	/*
	 * The control plane decodes with Go's protobuf, which rejects a
	 * proto3 string that is not UTF-8 and so fails the whole stream: a
	 * cut must not split a character of a string that was whole.
	 */
	if (utf8 && (!utf8_valid(version) || !utf8_valid(nonce) ||
	                (error != NULL && !utf8_valid(error))))
		abort();
	if (nds_ads_request_build(NULL, version, nonce, error, &buf, &len) != 0)
		return; /* -ENOMEM */
	if (len < NDS_GRPC_PREFIX || buf[0] != 0)
		abort();
	mlen = (size_t)buf[1] << 24 | (size_t)buf[2] << 16 |
	       (size_t)buf[3] << 8 | buf[4];
	if (mlen != len - NDS_GRPC_PREFIX)
		abort();
	req = envoy__service__discovery__v3__discovery_request__unpack(NULL,
	    mlen, buf + NDS_GRPC_PREFIX);
	if (req == NULL)
		abort();
	if (strcmp(str(req->type_url), NDS_TYPE_URL) != 0 ||
	    strcmp(str(req->version_info), version) != 0 ||
	    strcmp(str(req->response_nonce), nonce) != 0 || req->node != NULL ||
	    req->n_resource_names != 0)
		abort();
	if (error == NULL && req->error_detail != NULL)
		abort();
	if (error != NULL &&
	    (req->error_detail == NULL || req->error_detail->code != 13 ||
	        strcmp(str(req->error_detail->message), error) != 0))
		abort();
	envoy__service__discovery__v3__discovery_request__free_unpacked(req,
	    NULL);
	free(buf);
}

/* protobuf-c's view of a NameTable as a nametable (in wire order). */
static struct nds_nametable *
nametable_from_pbc(const NameTable *m)
{
	struct nds_nametable *nt;
	size_t i;

	if (nds_nametable_create(&nt) != 0)
		return NULL;
	for (i = 0; i < m->n_table; i++) {
		const Istio__Networking__Nds__V1__NameTable__NameInfo *v =
		    m->table[i]->value;
		struct nds_nameinfo in = {0};

		if (v != NULL) {
			in.ips = (const char *const *)v->ips;
			in.nips = v->n_ips;
			in.registry = v->registry;
			in.shortname = v->shortname;
			in.ns = v->namespace_;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
			in.alt_hosts = (const char *const *)v->alt_hosts;
			in.nalt = v->n_alt_hosts;
#pragma GCC diagnostic pop
		}
		/* nds_pb_parse() took this table, so no key is empty */
		if (nds_nametable_add(nt, str(m->table[i]->key), &in) != 0)
			abort();
	}
	return nt;
}

/* Both decoders took the bytes: same entries, same strings.  Compared
 * through nds_pb_build(), which sorts, so map order does not matter. */
static void
check_same(const struct nds_nametable *ours, const NameTable *m)
{
	struct nds_nametable *theirs = nametable_from_pbc(m);
	uint8_t *a = NULL, *b = NULL;
	size_t alen, blen;

	if (theirs == NULL)
		return;
	if (nds_pb_build(ours, &a, &alen) == 0 &&
	    nds_pb_build(theirs, &b, &blen) == 0 &&
	    (alen != blen || memcmp(a, b, alen) != 0))
		abort();
	free(a);
	free(b);
	nds_nametable_destroy(theirs);
}

/*
 * nds_pb_parse() against protobuf-c on one NameTable.  Neither accepts a
 * superset of the other (nds.h):
 *  - we reject a NUL in a string and an empty or missing key, which
 *    protobuf-c takes;
 *  - protobuf-c rejects a known field with an unexpected wire type (say
 *    NameInfo.namespace as fixed32), which we skip as unknown, as the
 *    C++ and Go runtimes do.
 * So a table both accept is compared directly; for one only we accept,
 * protobuf-c must take our canonical encoding of it and agree with us.
 * UTF-8 is no difference: neither checks it (the C++ and Go runtimes do).
 */
static void
check_nametable(const uint8_t *pb, size_t len)
{
	struct nds_nametable *ours = NULL;
	NameTable *m;
	uint8_t *canon = NULL;
	size_t clen;
	char err[256];

	if (nds_pb_parse(pb, len, &ours, err, sizeof(err)) != 0)
		return;
	m = istio__networking__nds__v1__name_table__unpack(NULL, len, pb);
	if (m == NULL) {
		if (nds_pb_build(ours, &canon, &clen) != 0)
			goto out;
		m = istio__networking__nds__v1__name_table__unpack(NULL, clen,
		    canon);
		if (m == NULL)
			abort();
	}
	check_same(ours, m);
	istio__networking__nds__v1__name_table__free_unpacked(m, NULL);
out:
	free(canon);
	nds_nametable_destroy(ours);
}

/* A skimmed field is the full string cut at 255 bytes, with what is not
 * UTF-8 (a character split by the cut) replaced (nds_utf8_sanitize()). */
static int
skimmed_as(const char *skim, const char *full)
{
	char cut[256];

	snprintf(cut, sizeof(cut), "%s", full);
	nds_utf8_sanitize(cut);
	return strcmp(skim, cut) == 0;
}

/*
 * The skimmer must see what protobuf-c sees in the top-level strings of a
 * response protobuf-c decodes (cut at 255 bytes and made UTF-8; both stop
 * comparing at an embedded NUL).  It may be more lenient, never less.
 * Returns whether protobuf-c found a version and nonce that are UTF-8.
 */
static int
check_skim(const struct nds_ads_skim *s, const uint8_t *msg, size_t len)
{
	Response *resp;
	int utf8;

	if (memchr(s->version, '\0', sizeof(s->version)) == NULL ||
	    memchr(s->nonce, '\0', sizeof(s->nonce)) == NULL ||
	    memchr(s->type_url, '\0', sizeof(s->type_url)) == NULL)
		abort();
	resp = envoy__service__discovery__v3__discovery_response__unpack(NULL,
	    len, msg);
	if (resp == NULL)
		return 0;
	if (s->dead || !skimmed_as(s->version, str(resp->version_info)) ||
	    !skimmed_as(s->nonce, str(resp->nonce)) ||
	    !skimmed_as(s->type_url, str(resp->type_url)))
		abort();
	utf8 =
	    utf8_valid(str(resp->version_info)) && utf8_valid(str(resp->nonce));
	envoy__service__discovery__v3__discovery_response__free_unpacked(resp,
	    NULL);
	return utf8;
}

/* The ACK's NameTable bytes, as the snapshot keeps them, load again. */
static void
check_ack(const struct nds_ads_result *res)
{
	struct nds_nametable *nt;
	struct nds_table *t;
	char err[256];
	int rc;

	if (res->table == NULL || (res->pb == NULL && res->pblen > 0) ||
	    nds_table_ttl(res->table) != opts.ttl)
		abort();
	rc = nds_pb_parse(res->pb, res->pblen, &nt, err, sizeof(err));
	if (rc == -ENOMEM)
		return;
	if (rc != 0)
		abort();
	rc = nds_table_build(nt, &opts, &t, err, sizeof(err));
	if (rc == -ENOMEM)
		return;
	if (rc != 0 || nds_table_entries(t) != nds_table_entries(res->table) ||
	    nds_table_names(t) != nds_table_names(res->table))
		abort();
	nds_table_unref(t);
}

/* Whether bytes make a table: 1 yes, 0 no, -1 out of memory. */
static int
table_ok(const uint8_t *pb, size_t len)
{
	struct nds_nametable *nt;
	struct nds_table *t;
	char err[256];
	int rc;

	rc = nds_pb_parse(pb, len, &nt, err, sizeof(err));
	if (rc == 0)
		rc = nds_table_build(nt, &opts, &t, err, sizeof(err));
	if (rc == 0)
		nds_table_unref(t);
	return rc == 0 ? 1 : rc == -ENOMEM ? -1 : 0;
}

/* What protobuf-c makes of the envelope decides the verdict. */
static void
check_verdict(const struct nds_ads_result *res, const Response *resp)
{
	const Google__Protobuf__Any *any;

	if (resp == NULL) {
		if (res->verdict != NDS_ADS_NACK || res->version[0] != '\0' ||
		    res->nonce[0] != '\0')
			abort();
		return;
	}
	if (strcmp(res->version, str(resp->version_info)) != 0 ||
	    strcmp(res->nonce, str(resp->nonce)) != 0)
		abort();
	if (strcmp(str(resp->type_url), NDS_TYPE_URL) != 0 ||
	    resp->n_resources == 0) {
		if (res->verdict != NDS_ADS_IGNORE)
			abort();
		return;
	}
	any = resp->resources[0];
	check_nametable(any->value.data, any->value.len);
	switch (res->verdict) {
	case NDS_ADS_ACK:
		if (res->pblen != any->value.len ||
		    (res->pblen > 0 &&
		        memcmp(res->pb, any->value.data, res->pblen) != 0))
			abort();
		break;
	case NDS_ADS_NACK:
		/* a NACK of a well-typed resource means a bad table */
		if ((any->type_url == NULL || any->type_url[0] == '\0' ||
		        strcmp(any->type_url, NDS_TYPE_URL) == 0) &&
		    table_ok(any->value.data, any->value.len) == 1)
			abort();
		break;
	default:
		abort();
	}
}

/* The canonical bytes of a result's table (NULL: none or no memory). */
static uint8_t *
table_bytes(const struct nds_ads_result *res, size_t *len)
{
	uint8_t *p;

	if (res->table == NULL ||
	    nds_pb_build(nds_table_source(res->table), &p, len) != 0)
		return NULL;
	return p;
}

/*
 * The same message again, fed to the early decoder as it would arrive in
 * pieces of step bytes, decoding at least step bytes at a time: the result
 * must be the one of the whole decode, res.
 */
static void
check_early(const uint8_t *msg, size_t len, const struct nds_ads_result *res,
    struct nds_ads_early *fed)
{
	struct nds_ads_early own, *e = fed;
	struct nds_ads_result r2;
	size_t step = 1 + len % 61, got, la = 0, lb = 0;
	uint8_t *a, *b;
	int rc;

	if (e == NULL) {
		e = &own;
		nds_ads_early_init(e);
		e->step = 1 + len % 37;
		for (got = step; got < len; got += step)
			nds_ads_early_feed(e, msg, got, len);
	}
	rc = nds_ads_response_process(msg, len, &opts, e, &r2);
	nds_ads_early_fini(e);
	if (rc != 0)
		return; /* -ENOMEM */
	if (r2.verdict != res->verdict || strcmp(r2.reason, res->reason) != 0 ||
	    strcmp(r2.version, res->version) != 0 ||
	    strcmp(r2.nonce, res->nonce) != 0 || r2.pblen != res->pblen ||
	    (r2.pblen > 0 && memcmp(r2.pb, res->pb, r2.pblen) != 0))
		abort();
	a = table_bytes(res, &la);
	b = table_bytes(&r2, &lb);
	if (a != NULL && b != NULL && (la != lb || memcmp(a, b, la) != 0))
		abort();
	if (res->table != NULL &&
	    (nds_table_entries(r2.table) != nds_table_entries(res->table) ||
	        nds_table_names(r2.table) != nds_table_names(res->table)))
		abort();
	free(a);
	free(b);
	nds_ads_result_fini(&r2);
}

static void
on_response(const uint8_t *msg, size_t len, struct nds_ads_early *fed)
{
	struct nds_ads_result res;
	struct nds_ads_skim s;
	Response *resp;
	int utf8;

	/* The skimmer on a message protobuf-c can also judge, in two
	 * pieces.  An empty message comes as NULL (no buffer yet). */
	nds_ads_skim_init(&s);
	if (len > 0) {
		nds_ads_skim_feed(&s, msg, len / 2);
		nds_ads_skim_feed(&s, msg + len / 2, len - len / 2);
	}
	check_skim(&s, msg, len);

	if (nds_ads_response_process(msg, len, &opts, NULL, &res) != 0) {
		if (fed != NULL)
			nds_ads_early_fini(fed);
		return; /* -ENOMEM */
	}
	check_early(msg, len, &res, fed);
	resp = envoy__service__discovery__v3__discovery_response__unpack(NULL,
	    len, msg);
	utf8 = response_utf8(resp);
	if (res.version == NULL || res.nonce == NULL ||
	    memchr(res.reason, '\0', sizeof(res.reason)) == NULL)
		abort();
	switch (res.verdict) {
	case NDS_ADS_ACK:
		check_ack(&res);
		check_request(res.version, res.nonce, NULL, utf8);
		break;
	case NDS_ADS_NACK:
		if (res.reason[0] == '\0' || res.table != NULL ||
		    res.pb != NULL)
			abort();
		check_request(res.version, res.nonce, res.reason, utf8);
		break;
	case NDS_ADS_IGNORE:
		if (res.table != NULL || res.pb != NULL)
			abort();
		break;
	default:
		abort();
	}
	check_verdict(&res, resp);
	nds_ads_result_fini(&res);
	if (resp == NULL)
		return;
	envoy__service__discovery__v3__discovery_response__free_unpacked(resp,
	    NULL);
}

/* An oversized message in pieces: skimmed as conn.c does, and kept here
 * (it is part of the input, so small) to cross-check at its end. */
static void
on_oversize(struct run *r, const uint8_t *data, size_t len)
{
	uint8_t *p;

	if (!r->skimming) {
		nds_ads_skim_init(&r->skim);
		r->skimming = 1;
		r->biglen = 0;
		r->oom = 0;
	}
	nds_ads_skim_feed(&r->skim, data, len);
	if (r->oom || len == 0)
		return;
	if ((p = realloc(r->big, r->biglen + len)) == NULL) {
		r->oom = 1;
		return;
	}
	memcpy(p + r->biglen, data, len);
	r->big = p;
	r->biglen += len;
}

static void
on_oversize_end(struct run *r, uint64_t total)
{
	const char *reason = "DiscoveryResponse exceeds the limit";
	int utf8 = 0;

	/* the limit is at least 4 KiB, so some bytes came first */
	if (!r->skimming || total <= r->rx.max)
		abort();
	r->skimming = 0;
	if (!r->oom) {
		if (total != r->biglen)
			abort();
		utf8 = check_skim(&r->skim, r->big, r->biglen);
	}
	if (r->skim.type_url[0] == '\0' ||
	    strcmp(r->skim.type_url, NDS_TYPE_URL) == 0)
		check_request(r->skim.version, r->skim.nonce, reason, utf8);
}

static int
on_message(enum nds_grpc_part part, const uint8_t *data, size_t len,
    uint64_t total, void *arg)
{
	struct run *r = arg;

	switch (part) {
	case NDS_GRPC_PARTIAL:
		if (len >= total || total > r->rx.max)
			abort();
		if (!r->early_on) {
			nds_ads_early_init(&r->early);
			r->early.step = 1 + total % 53;
			r->early_on = 1;
		}
		nds_ads_early_feed(&r->early, data, len, (size_t)total);
		break;
	case NDS_GRPC_MESSAGE:
		if (len != total || len > r->rx.max)
			abort();
		on_response(data, len, r->early_on ? &r->early : NULL);
		r->early_on = 0;
		break;
	case NDS_GRPC_OVERSIZE:
		if (total <= r->rx.max || len > total)
			abort();
		on_oversize(r, data, len);
		break;
	case NDS_GRPC_OVERSIZE_END:
		on_oversize_end(r, total);
		break;
	default:
		abort();
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r;
	size_t chunk, n;
	char err[256];
	int rc = 0;

	if (size < 1)
		return 0;
	memset(&r, 0, sizeof(r));
	nds_grpc_rx_init(&r.rx, data[0] & 0x80 ? 65536 : 4096);
	chunk = data[0] & 0x7f;
	data++;
	size--;
	while (size > 0 && rc == 0) {
		n = chunk == 0 || chunk > size ? size : chunk;
		err[0] = '\0';
		rc = nds_grpc_rx_feed(&r.rx, data, n, on_message, &r, err,
		    sizeof(err));
		data += n;
		size -= n;
	}
	/* Only a compressed message stops the stream (and says why). */
	if (rc != 0 && (rc != -EPROTO || err[0] == '\0') && rc != -ENOMEM)
		abort();
	nds_grpc_rx_fini(&r.rx);
	if (r.early_on) /* the stream ended inside a message */
		nds_ads_early_fini(&r.early);
	free(r.big);
	return 0;
}
