/*
 * ads.c: the NDS side of the Aggregated Discovery Service, state of the
 * world (SPEC §5).  Pure: requests are built and responses judged here;
 * conn.c sends and receives.
 *
 * A response is decoded with protobuf-c, all but its first resource's
 * NameTable bytes: those are cut out of a copy of the envelope first (see
 * envelope_strip()) and decoded in place by nds_pb_parse(), which is
 * faster and stricter than protobuf-c for the one message that can be 10
 * MB, and costs no copy of it.  The table is compiled before anything is
 * answered: the verdict is ACK only for a table that is ready to serve.
 * A large response's NameTable is decoded as its bytes arrive (see
 * nds_ads_early_feed()), so that its last byte leaves only the compile.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "nds/nds.h"
#include "nds/nds_impl.h"
#include "nds/xds_impl.h"

/* google.rpc.Code INTERNAL, as Istio's agent and Envoy NACK with. */
#define RPC_INTERNAL 13

/* protobuf-c wants char *; our strings stay untouched by pack(). */
static char *
unconst(const char *s)
{
	union {
		const char *c;
		char *m;
	} u = {.c = s};
	return u.m;
}

void
nds_utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p != '\0') {
		size_t n, i;
		uint32_t cp;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0)
			n = 2, cp = *p & 0x1f;
		else if ((*p & 0xf0) == 0xe0)
			n = 3, cp = *p & 0x0f;
		else if ((*p & 0xf8) == 0xf0)
			n = 4, cp = *p & 0x07;
		else
			n = 0, cp = 0;
		for (i = 1; n > 0 && i < n; i++) {
			if ((p[i] & 0xc0) != 0x80) {
				n = 0;
				break;
			}
			cp = cp << 6 | (p[i] & 0x3f);
		}
		/* overlong forms, surrogates and beyond U+10FFFF are
		 * invalid too (proto3 strings are checked that strictly) */
		if (n == 0 || (n == 2 && cp < 0x80) ||
		    (n == 3 &&
		        (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

int
nds_ads_request_build(const struct nds_xds_node *node, const char *version,
    const char *nonce, const char *error, uint8_t **out, size_t *outlen)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest req =
	    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
	Envoy__Config__Core__V3__Node n = ENVOY__CONFIG__CORE__V3__NODE__INIT;
	Google__Protobuf__Struct md = GOOGLE__PROTOBUF__STRUCT__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	Google__Protobuf__Struct__FieldsEntry *ents = NULL, **entp = NULL;
	Google__Protobuf__Value *vals = NULL;
	uint8_t *buf;
	size_t i, len;
	int rc = -ENOMEM;

	req.type_url = unconst(NDS_TYPE_URL);
	if (version != NULL)
		req.version_info = unconst(version);
	if (nonce != NULL)
		req.response_nonce = unconst(nonce);
	if (error != NULL) {
		st.code = RPC_INTERNAL;
		st.message = unconst(error);
		req.error_detail = &st;
	}
	if (node != NULL) {
		n.id = unconst(node->id ? node->id : "");
		if (node->cluster != NULL)
			n.cluster = unconst(node->cluster);
		if (node->user_agent_name != NULL)
			n.user_agent_name = unconst(node->user_agent_name);
		if (node->user_agent_version != NULL)
			n.user_agent_version =
			    unconst(node->user_agent_version);
		if (node->nmeta > 0) {
			ents = calloc(node->nmeta, sizeof(*ents));
			entp = calloc(node->nmeta, sizeof(*entp));
			vals = calloc(node->nmeta, sizeof(*vals));
			if (ents == NULL || entp == NULL || vals == NULL)
				goto out;
			for (i = 0; i < node->nmeta; i++) {
				google__protobuf__value__init(&vals[i]);
				vals[i].kind_case =
				    GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
				vals[i].string_value =
				    unconst(node->meta_vals[i]);
				google__protobuf__struct__fields_entry__init(
				    &ents[i]);
				ents[i].key = unconst(node->meta_keys[i]);
				ents[i].value = &vals[i];
				entp[i] = &ents[i];
			}
			md.n_fields = node->nmeta;
			md.fields = entp;
			n.metadata = &md;
		}
		req.node = &n;
	}
	len = envoy__service__discovery__v3__discovery_request__get_packed_size(
	    &req);
	if (len > UINT32_MAX || (buf = malloc(NDS_GRPC_PREFIX + len)) == NULL)
		goto out;
	nds_grpc_prefix(buf, (uint32_t)len);
	envoy__service__discovery__v3__discovery_request__pack(&req,
	    buf + NDS_GRPC_PREFIX);
	*out = buf;
	*outlen = NDS_GRPC_PREFIX + len;
	rc = 0;
out:
	free(ents);
	free(entp);
	free(vals);
	return rc;
}

void
nds_ads_result_fini(struct nds_ads_result *res)
{
	free(res->version);
	free(res->nonce);
	free(res->pb_own);
	nds_table_unref(res->table);
	nds_nametable_destroy(res->nt);
	memset(res, 0, sizeof(*res));
}

static int
result_strings(struct nds_ads_result *res, const char *version,
    const char *nonce)
{
	res->version = strdup(version != NULL ? version : "");
	res->nonce = strdup(nonce != NULL ? nonce : "");
	if (res->version == NULL || res->nonce == NULL)
		return -ENOMEM;
	return 0;
}

/* A varint at buf[*pos..len); -1 if cut or longer than 10 bytes. */
static int
env_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *v)
{
	unsigned shift;

	*v = 0;
	for (shift = 0; shift < 70 && *pos < len; shift += 7) {
		uint8_t b = buf[(*pos)++];

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/*
 * The field at buf[*pos..len): its number and wire type, and for wire
 * type 2 its payload at [*start, *pos).  *pos moves past it.  -1 where
 * the bytes are no field protobuf-c takes (it then judges the whole).
 */
static int
env_field(const uint8_t *buf, size_t len, size_t *pos, uint64_t *field,
    unsigned *wt, size_t *start)
{
	uint64_t tag, n;

	if (env_varint(buf, len, pos, &tag) != 0)
		return -1;
	*field = tag >> 3;
	*wt = (unsigned)(tag & 7);
	*start = *pos;
	switch (*wt) {
	case 0:
		return env_varint(buf, len, pos, &n);
	case 1:
	case 5:
		n = *wt == 1 ? 8 : 4;
		break;
	case 2:
		if (env_varint(buf, len, pos, &n) != 0)
			return -1;
		*start = *pos;
		break;
	default:
		return -1;
	}
	if (n > len - *pos)
		return -1;
	*pos += (size_t)n;
	return 0;
}

static uint8_t *
env_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/*
 * A copy of the DiscoveryResponse msg with every value (field 2, bytes)
 * of its first resource (field 2, an Any) cut out, so that protobuf-c
 * does not copy a 10 MB NameTable: *val gets the last one (which
 * protobuf-c would keep).  What protobuf-c makes of the copy is what it
 * makes of msg, but for that value.  0 with *out (malloc'd) or -1: keep
 * msg whole (nothing to cut, or bytes protobuf-c should judge itself);
 * -ENOMEM.
 */
static int
envelope_strip(const uint8_t *msg, size_t len, uint8_t **out, size_t *outlen,
    const uint8_t **val, size_t *vlen)
{
	size_t pos = 0, at, rstart = 0, rend, start, cut = 0, keep, i;
	uint64_t field;
	unsigned wt;
	uint8_t *p;

	/* The first resource. */
	for (;;) {
		if (pos >= len)
			return -1;
		at = pos;
		if (env_field(msg, len, &pos, &field, &wt, &start) != 0)
			return -1;
		if (field == 2 && wt == 2) {
			rstart = start;
			break;
		}
	}
	rend = pos;
	/* Its values: sized, the last one kept. */
	*val = NULL;
	for (i = rstart; i < rend;) {
		size_t f = i;

		if (env_field(msg, rend, &i, &field, &wt, &start) != 0)
			return -1;
		if (field == 2 && wt == 2) {
			cut += i - f;
			*val = msg + start;
			*vlen = i - start;
		}
	}
	if (*val == NULL)
		return -1;
	keep = rend - rstart - cut;
	/* Up to the resource's tag, its new length, the rest. */
	for (i = at; msg[i] & 0x80; i++)
		;
	i++;
	if ((*out = malloc(len - cut)) == NULL)
		return -ENOMEM;
	memcpy(*out, msg, i);
	p = env_put_varint(*out + i, keep);
	for (pos = rstart; pos < rend;) {
		size_t f = pos;

		(void)env_field(msg, rend, &pos, &field, &wt, &start);
		if (field != 2 || wt != 2) {
			memcpy(p, msg + f, pos - f);
			p += pos - f;
		}
	}
	memcpy(p, msg + rend, len - rend);
	p += len - rend;
	*outlen = (size_t)(p - *out);
	return 0;
}

/* ---- the NameTable decoded as it arrives ---- */

void
nds_ads_early_init(struct nds_ads_early *e)
{
	memset(e, 0, sizeof(*e));
	e->step = NDS_EARLY_STEP;
}

void
nds_ads_early_fini(struct nds_ads_early *e)
{
	nds_pb_stream_destroy(e->pb);
	memset(e, 0, sizeof(*e));
}

static void
early_drop(struct nds_ads_early *e)
{
	nds_pb_stream_destroy(e->pb);
	e->pb = NULL;
	e->dead = 1;
}

/*
 * Walks the fields at msg[e->pos..) up to the value of the first resource,
 * as envelope_strip() does but with only the first got of the lim bytes
 * of the scope (the message, then the resource) in hand.  0: found (or
 * already); 1: more bytes needed; -1: given up.
 */
static int
early_locate(struct nds_ads_early *e, const uint8_t *msg, size_t got,
    size_t total)
{
	size_t p, start, lim, have;
	uint64_t tag, n;
	unsigned wt;

	while (e->vstart == 0) {
		lim = e->rend != 0 ? e->rend : total;
		have = got < lim ? got : lim;
		p = e->pos;
		if (p >= lim)
			return -1; /* no resource, or none with a value */
		if (env_varint(msg, have, &p, &tag) != 0)
			return have < lim ? 1 : -1;
		wt = (unsigned)(tag & 7);
		if (tag >> 3 == 2 && wt == 2) {
			/* the resource, then its value: their length only */
			if (env_varint(msg, have, &p, &n) != 0)
				return have < lim ? 1 : -1;
			if (n > lim - p)
				return -1;
			if (e->rend == 0)
				e->rend = p + (size_t)n;
			else {
				e->vstart = p;
				e->vlen = (size_t)n;
			}
			e->pos = p;
			continue;
		}
		/* anything else is passed whole */
		p = e->pos;
		if (env_field(msg, have, &p, &n, &wt, &start) != 0)
			return have < lim ? 1 : -1;
		e->pos = p;
	}
	return 0;
}

void
nds_ads_early_feed(struct nds_ads_early *e, const uint8_t *msg, size_t got,
    size_t total)
{
	size_t from, upto, used = 0;
	int eof, rc;

	if (e->dead || e->whole || got > total)
		return;
	if ((rc = early_locate(e, msg, got, total)) != 0) {
		if (rc < 0)
			early_drop(e);
		return;
	}
	from = e->vstart + e->done;
	upto = got < e->vstart + e->vlen ? got : e->vstart + e->vlen;
	eof = upto == e->vstart + e->vlen;
	if (!eof && upto - from < e->step)
		return;
	if (e->pb == NULL && nds_pb_stream_create(e->vlen, &e->pb) != 0) {
		early_drop(e);
		return;
	}
	if (nds_pb_stream_feed(e->pb, msg + from, upto - from, eof, &used, NULL,
	        0) != 0) {
		early_drop(e);
		return;
	}
	e->done += used;
	e->whole = eof;
}

/* res becomes the NACK of a NameTable (vlen bytes) that err says is bad. */
static void
result_table_error(struct nds_ads_result *res, size_t vlen, const char *err)
{
	res->verdict = NDS_ADS_NACK;
	nds_errf(res->reason, sizeof(res->reason),
	    "NameTable (version \"%.100s\", %zu bytes): %s", res->version, vlen,
	    err);
	/* The reason quotes cut strings of the response; the NACK carries
	 * it as a proto3 string, which must be valid UTF-8. */
	nds_utf8_sanitize(res->reason);
}

void
nds_ads_result_compile_failed(struct nds_ads_result *res, const char *err)
{
	result_table_error(res, res->pblen, err);
	nds_nametable_destroy(res->nt);
	res->nt = NULL;
	free(res->pb_own);
	res->pb_own = NULL;
	res->pb = NULL;
	res->pblen = 0;
}

int
nds_ads_response_process(const uint8_t *msg, size_t len,
    const struct nds_build_opts *o, struct nds_ads_early *early,
    struct nds_ads_result *res)
{
	struct nds_nametable *nt;
	char err[384];
	int rc;

	if ((rc = nds_ads_response_decode(msg, len, early, res)) != 0 ||
	    res->nt == NULL)
		return rc;
	nt = res->nt;
	res->nt = NULL;
	if ((rc = nds_table_build(nt, o, &res->table, err, sizeof(err))) == 0)
		return 0;
	if (rc == -ENOMEM)
		nds_errf(err, sizeof(err), "out of memory");
	nds_ads_result_compile_failed(res, err);
	return 0;
}

int
nds_ads_response_decode(const uint8_t *msg, size_t len,
    struct nds_ads_early *early, struct nds_ads_result *res)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse *resp;
	Google__Protobuf__Any *any;
	struct nds_nametable *nt;
	const uint8_t *val = NULL;
	uint8_t *env = NULL;
	size_t envlen = 0, vlen = 0;
	char err[384];
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = envelope_strip(msg, len, &env, &envlen, &val, &vlen)) ==
	    -ENOMEM)
		goto nomem;
	if (rc != 0)
		val = NULL;
	resp = envoy__service__discovery__v3__discovery_response__unpack(NULL,
	    val != NULL ? envlen : len, val != NULL ? env : msg);
	free(env);
	if (resp == NULL) {
		/* Not even the envelope decodes: there is no nonce to
		 * echo, but a NACK still tells the control plane. */
		if (result_strings(res, "", "") != 0)
			goto nomem;
		res->verdict = NDS_ADS_NACK;
		nds_errf(res->reason, sizeof(res->reason),
		    "DiscoveryResponse of %zu bytes does not decode", len);
		return 0; /* ASCII only */
	}
	if (result_strings(res, resp->version_info, resp->nonce) != 0)
		goto nomem_resp;
	if (resp->type_url == NULL || strcmp(resp->type_url, NDS_TYPE_URL)) {
		res->verdict = NDS_ADS_IGNORE;
		nds_errf(res->reason, sizeof(res->reason),
		    "response for type \"%.200s\" ignored",
		    resp->type_url ? resp->type_url : "");
		goto done;
	}
	if (resp->n_resources == 0) {
		res->verdict = NDS_ADS_IGNORE;
		nds_errf(res->reason, sizeof(res->reason),
		    "empty NDS response (version \"%.200s\") ignored",
		    res->version);
		goto done;
	}
	res->verdict = NDS_ADS_NACK;
	any = resp->resources[0];
	if (any->type_url != NULL && any->type_url[0] != '\0' &&
	    strcmp(any->type_url, NDS_TYPE_URL) != 0) {
		nds_errf(res->reason, sizeof(res->reason),
		    "resource 0 has type \"%.200s\", want " NDS_TYPE_URL,
		    any->type_url);
		goto done;
	}
	if (val == NULL) { /* protobuf-c holds the value */
		val = any->value.data;
		vlen = any->value.len;
	}
	/* What was decoded as it arrived, if it read these very bytes. */
	if (early != NULL)
		nds_ads_early_feed(early, msg, len, len);
	if (early != NULL && early->whole && val == msg + early->vstart &&
	    vlen == early->vlen) {
		nt = nds_pb_stream_finish(early->pb);
		rc = 0;
	} else {
		rc = nds_pb_parse(val, vlen, &nt, err, sizeof(err));
	}
	if (rc == -ENOMEM)
		nds_errf(err, sizeof(err), "out of memory");
	if (rc != 0) {
		result_table_error(res, vlen, err);
		goto done;
	}
	res->nt = nt;
	/* The bytes for the snapshot: in msg, or taken over from
	 * protobuf-c, which allocates with malloc (free() releases). */
	if (val == any->value.data) {
		res->pb_own = any->value.data;
		any->value.data = NULL;
		any->value.len = 0;
	}
	res->pb = vlen > 0 ? val : NULL;
	res->pblen = vlen;
	res->verdict = NDS_ADS_ACK;
done:
	/* The reason quotes cut strings of the response; the NACK carries
	 * it as a proto3 string, which must be valid UTF-8. */
	nds_utf8_sanitize(res->reason);
	envoy__service__discovery__v3__discovery_response__free_unpacked(resp,
	    NULL);
	return 0;
nomem_resp:
	envoy__service__discovery__v3__discovery_response__free_unpacked(resp,
	    NULL);
nomem:
	nds_ads_result_fini(res);
	return -ENOMEM;
}

/*
 * The skimmer: a byte-at-a-time walk over the top-level fields of a
 * DiscoveryResponse.  Only version_info (1), type_url (4) and nonce (5)
 * are kept; resources (2) and anything else are counted past.
 */
enum skim_state { SK_TAG, SK_LEN, SK_VARINT, SK_SKIP, SK_KEEP };

void
nds_ads_skim_init(struct nds_ads_skim *s)
{
	memset(s, 0, sizeof(*s));
	s->state = SK_TAG;
}

/* Reads one varint byte; 1 when the varint is complete, -1 if too long. */
static int
skim_varint(struct nds_ads_skim *s, uint8_t b)
{
	if (s->shift > 63)
		return -1;
	s->varint |= (uint64_t)(b & 0x7f) << s->shift;
	s->shift += 7;
	return (b & 0x80) ? 0 : 1;
}

static char *
skim_target(struct nds_ads_skim *s, uint64_t field)
{
	switch (field) {
	case 1:
		return s->version;
	case 4:
		return s->type_url;
	case 5:
		return s->nonce;
	}
	return NULL;
}

void
nds_ads_skim_feed(struct nds_ads_skim *s, const uint8_t *data, size_t len)
{
	size_t i = 0;
	int r;

	while (i < len && !s->dead) {
		switch (s->state) {
		case SK_TAG:
		case SK_LEN:
		case SK_VARINT:
			if ((r = skim_varint(s, data[i++])) < 0) {
				s->dead = 1;
				break;
			}
			if (r == 0)
				break;
			if (s->state == SK_TAG) {
				uint64_t wt = s->varint & 7;

				s->field = s->varint >> 3;
				s->varint = 0;
				s->shift = 0;
				/* field 0 is skipped like any unknown
				 * field: a NACK is better than none */
				if (wt == 3 || wt == 4 || wt > 5) {
					s->dead = 1;
					break;
				}
				if (wt == 0)
					s->state = SK_VARINT;
				else if (wt == 2)
					s->state = SK_LEN;
				else {
					s->left = wt == 1 ? 8 : 4;
					s->state = SK_SKIP;
				}
			} else if (s->state == SK_LEN) {
				s->left = s->varint;
				s->varint = 0;
				s->shift = 0;
				s->want = skim_target(s, s->field);
				s->want_len = 0;
				if (s->want != NULL)
					s->want[0] = '\0';
				s->state = s->left == 0      ? SK_TAG
				           : s->want != NULL ? SK_KEEP
				                             : SK_SKIP;
			} else {
				s->varint = 0;
				s->shift = 0;
				s->state = SK_TAG;
			}
			break;
		case SK_SKIP:
		case SK_KEEP: {
			size_t n = len - i;

			if (n > s->left)
				n = (size_t)s->left;
			if (s->state == SK_KEEP) {
				/* the fields are 256 bytes; longer values
				 * are cut, which only affects the NACK */
				size_t room = 255 - s->want_len;
				size_t k = n < room ? n : room;

				memcpy(s->want + s->want_len, data + i, k);
				s->want_len += k;
				s->want[s->want_len] = '\0';
			}
			i += n;
			s->left -= n;
			/* a value cut at 255 bytes may end inside a
			 * character; the NACK echoes it as a proto3 string */
			if (s->left == 0 && s->state == SK_KEEP)
				nds_utf8_sanitize(s->want);
			if (s->left == 0)
				s->state = SK_TAG;
			break;
		}
		}
	}
}

uint32_t
nds_backoff_ms(unsigned n, uint32_t min_ms, uint32_t max_ms, uint32_t r)
{
	uint64_t d = min_ms;
	uint32_t half;

	while (n-- > 0 && d < max_ms)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	half = (uint32_t)(d / 2);
	return half + (uint32_t)(r % ((uint32_t)d - half + 1));
}
