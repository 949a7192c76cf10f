/*
 * fuzz_cache: a reply through the forwarded-answer cache.  The first two
 * input bytes are the client's size limit, the rest is an upstream reply
 * (the fuzz_truncate format).  The key comes from the reply's own first
 * question; rsv_cache_entry_build() walks the reply (TTL offsets, SOA,
 * OPT), then the entry is rendered fresh and stale for a client of that
 * size, stored, looked up, listed and flushed.  For a reply that passes
 * rsv_msg_check() (what fwd.c hands over), the rendered replies must be
 * valid too, with the client's ID, RD bit and question bytes, within the
 * limit.  abort() on any violation.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/cache.h"
#include "resolver/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

#define T0 5000000 /* ms */

/* The client query asking the reply's first question. */
static int
query_of(const uint8_t *pkt, size_t len, struct rsv_query *q)
{
	size_t off = RSV_HDR_LEN;

	memset(q, 0, sizeof(*q));
	if (len < RSV_HDR_LEN || rsv_get16(pkt + 4) == 0 ||
	    rsv_name_parse(pkt, len, &off, q->qname, &q->qname_len) != 0 ||
	    len - off < 4)
		return -1;
	q->hdr.id = (uint16_t)~rsv_get16(pkt);
	q->hdr.flags = rsv_get16(pkt + 2) & (RSV_F_RD | RSV_F_CD);
	q->hdr.qdcount = 1;
	q->has_question = 1;
	q->qtype = rsv_get16(pkt + off);
	q->qclass = rsv_get16(pkt + off + 2);
	return 0;
}

static void
visit(const struct rsv_cache_info *e, void *arg)
{
	CHECK(e->name != NULL && e->size > 0);
	++*(size_t *)arg;
}

/* A rendered reply of a valid message: valid, the client's, in bounds. */
static void
check_rendered(const uint8_t *out, size_t olen, const struct rsv_query *q,
    size_t limit)
{
	size_t hq = RSV_HDR_LEN + q->qname_len + 4;

	CHECK(rsv_msg_check(out, olen) == 0);
	CHECK(rsv_get16(out) == q->hdr.id);
	CHECK((rsv_get16(out + 2) & RSV_F_RD) == (q->hdr.flags & RSV_F_RD));
	CHECK(olen >= hq &&
	      memcmp(out + RSV_HDR_LEN, q->qname, q->qname_len) == 0);
	CHECK(olen <= (limit > hq ? limit : hq));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rsv_cache_config cfg = {4, 1 << 16, 300, 30, 3600};
	struct rsv_cache_stats stats = {0};
	struct rsv_cache *c;
	struct rsv_cache_key k;
	struct rsv_cache_entry *e, *hit;
	struct rsv_query q;
	uint8_t *out;
	size_t limit, olen, n = 0;
	int rc, valid, stale, pf;

	if (size < 2)
		return 0;
	limit = rsv_get16(data);
	data += 2;
	size -= 2;
	if (query_of(data, size, &q) != 0 || rsv_cache_key_make(&q, 1, &k) != 0)
		return 0;
	CHECK(rsv_cache_create(&cfg, &stats, &c) == 0);
	CHECK((out = malloc(RSV_MSG_MAX)) != NULL);
	valid = rsv_msg_check(data, size) == 0;
	rc = rsv_cache_entry_build(c, &k, data, size, T0, &e);
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc != 0)
		goto out;
	for (stale = 0; stale <= 1; stale++) {
		rc = rsv_cache_render(e, &q, T0 + 1500, stale, limit, out,
		    RSV_MSG_MAX, &olen);
		if (valid && !(rc == -EMSGSIZE && limit < size)) {
			CHECK(rc == 0);
			check_rendered(out, olen, &q, limit);
		}
		rc = rsv_cache_render(e, &q, T0, stale, RSV_MSG_MAX, out,
		    RSV_MSG_MAX, &olen);
		if (valid) {
			CHECK(rc == 0);
			check_rendered(out, olen, &q, RSV_MSG_MAX);
		}
	}
	pf = rsv_cache_entry_cacheable(e);
	rsv_cache_insert(c, e);
	hit = rsv_cache_peek(c, &k, T0);
	CHECK(pf ? hit != NULL || stats.entries == 0 : hit == NULL);
	(void)rsv_cache_lookup(c, &k, T0 + 1000, &hit, &pf);
	rsv_cache_walk(c, T0 + 2000, visit, &n);
	CHECK(n == stats.entries && stats.entries <= 1);
	rsv_cache_flush(c);
	CHECK(stats.entries == 0 && stats.bytes == 0);
out:
	free(out);
	rsv_cache_destroy(c);
	return 0;
}
