/*
 * fuzz_wire: the query path of the codec.  Parses the input as a query
 * (pre-handler rules), renders the question as text and back, and writes a
 * reply echoing it through a writer whose limit comes from the input.
 * Checks the writer's invariants (len <= limit, atomic appends) and that
 * the reply is itself a valid message.  abort() on any violation.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolver/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

/* The text form, lower-cased, must read back as the same name. */
static void
check_text(const struct rsv_query *q, uint8_t *lower, size_t *llen)
{
	char text[RSV_TEXT_MAX];
	size_t tlen;
	int rc;

	*llen = 0;
	rc = rsv_name_to_text(q->qname, q->qname_len, 1, text, sizeof(text),
	    &tlen);
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc != 0)
		return;
	CHECK(tlen == strlen(text) && tlen > 0 && text[tlen - 1] == '.');
	CHECK(rsv_name_from_text(text, tlen, lower, RSV_NAME_MAX, llen) == 0);
	CHECK(*llen == q->qname_len);
	CHECK(rsv_name_equal(lower, *llen, q->qname, q->qname_len));
}

/* An append either succeeds within the limit or leaves w untouched. */
static void
check_append(struct rsv_writer *w, const struct rsv_writer *before, int rc)
{
	size_t end = w->limit < w->cap ? w->limit : w->cap;

	CHECK(rc == 0 || rc == -ENOSPC);
	if (rc != 0)
		CHECK(memcmp(w, before, sizeof(*w)) == 0);
	else
		CHECK(w->len > before->len && w->len <= end);
}

static size_t
write_reply(const struct rsv_query *q, const uint8_t *lower, size_t llen,
    size_t limit, uint8_t *out, size_t cap)
{
	static const uint8_t ip[4] = {192, 0, 2, 1};
	struct rsv_writer w, before;
	struct rsv_hdr h = q->hdr;

	rsv_writer_init(&w, out, cap, limit);
	before = w;
	check_append(&w, &before,
	    rsv_writer_question(&w, q->qname, q->qname_len, q->qtype,
	        q->qclass));
	rsv_writer_section(&w, 1);
	if (llen > 0) {
		before = w;
		check_append(&w, &before,
		    rsv_writer_rr_name(&w, q->qname, q->qname_len,
		        RSV_TYPE_CNAME, RSV_CLASS_IN, 30, lower, llen));
		before = w;
		check_append(&w, &before,
		    rsv_writer_rr(&w, lower, llen, RSV_TYPE_A, RSV_CLASS_IN, 30,
		        ip, sizeof(ip)));
	}
	if (q->opt.present) {
		before = w;
		check_append(&w, &before,
		    rsv_writer_opt(&w, RSV_EDNS_LOCAL, 0, 0,
		        q->opt.flags & RSV_EDNS_DO, NULL, 0));
	}
	h.flags |= RSV_F_QR;
	return rsv_writer_finish(&w, &h);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[2048], copy[2048], lower[RSV_NAME_MAX];
	struct rsv_query q;
	enum rsv_parse r;
	size_t llen, limit, len, clen;

	r = rsv_query_parse(data, size, &q);
	CHECK(r >= RSV_PARSE_OK && r <= RSV_PARSE_BADVERS);
	if (r == RSV_PARSE_DROP)
		return 0;
	CHECK(size >= RSV_HDR_LEN && !(q.hdr.flags & RSV_F_QR));
	CHECK(rsv_udp_limit(&q) >= 512 && rsv_udp_limit(&q) <= RSV_MSG_MAX);
	if (r == RSV_PARSE_OK || r == RSV_PARSE_BADVERS)
		CHECK(q.has_question);
	if (r == RSV_PARSE_BADVERS)
		CHECK(q.opt.present && q.opt.version > 0);
	if (!q.has_question)
		return 0;
	CHECK(q.qname_len >= 1 && q.qname_len <= RSV_NAME_MAX);
	check_text(&q, lower, &llen);

	limit = RSV_HDR_LEN + (size * 7 + data[size - 1]) % 700;
	len = write_reply(&q, lower, llen, limit, out, sizeof(out));
	CHECK(len >= RSV_HDR_LEN && len <= limit && len <= sizeof(out));
	if (rsv_get16(out + 4) == 0)
		return 0;
	/* The reply is a valid message: it is copied back unchanged. */
	CHECK(rsv_msg_truncate(out, len, RSV_MSG_MAX, copy, sizeof(copy),
	          &clen) == 0);
	CHECK(clen == len && memcmp(copy, out, len) == 0);
	return 0;
}
