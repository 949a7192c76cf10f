/*
 * fuzz_truncate: the rsv_msg_truncate() round trip.  The first two input
 * bytes are the size limit, the rest is the message.  When truncation
 * succeeds, the output must be a valid message no longer than
 * max(limit, header + questions), truncating it again must give the same
 * bytes, and every RR it holds must equal (names decompressed) the RR at
 * the same place of the input, each section a prefix of the input's, the
 * OPT last.  abort() on any violation.
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

#define OUT_CAP (RSV_MSG_MAX + 1)

/* One RR in canonical form: every name uncompressed. */
struct crr {
	uint8_t owner[RSV_NAME_MAX];
	size_t olen;
	uint8_t fixed[8]; /* type, class, ttl */
	uint8_t rdata[RSV_MSG_MAX + 2 * RSV_NAME_MAX];
	size_t rdlen;
};

/* A restatement of the rdata layouts that hold names (RFC 1035, SRV). */
static void
rdata_names(uint16_t type, size_t *before, int *nnames, size_t *after)
{
	*before = *after = 0;
	*nnames = 0;
	switch (type) {
	case 2:
	case 3:
	case 4:
	case 5:
	case 7:
	case 8:
	case 9:
	case 12:
		*nnames = 1;
		break;
	case 6:
		*nnames = 2;
		*after = 20;
		break;
	case 14:
		*nnames = 2;
		break;
	case 15:
		*before = 2;
		*nnames = 1;
		break;
	case 33:
		*before = 6;
		*nnames = 1;
		break;
	}
}

static void
read_name(const uint8_t *pkt, size_t len, size_t *off, uint8_t *out,
    size_t *olen)
{
	CHECK(rsv_name_parse(pkt, len, off, out, olen) == 0);
}

/* Reads the RR at *off into c (the message is known to be valid). */
static void
read_rr(const uint8_t *pkt, size_t len, size_t *off, struct crr *c)
{
	size_t before, after, end, nlen;
	uint16_t rdlen;
	int nn, i;

	read_name(pkt, len, off, c->owner, &c->olen);
	CHECK(len - *off >= 10);
	memcpy(c->fixed, pkt + *off, 8);
	rdlen = rsv_get16(pkt + *off + 8);
	*off += 10;
	CHECK(len - *off >= rdlen);
	end = *off + rdlen;
	rdata_names(rsv_get16(c->fixed), &before, &nn, &after);
	if (nn == 0) {
		memcpy(c->rdata, pkt + *off, rdlen);
		c->rdlen = rdlen;
		*off = end;
		return;
	}
	CHECK(end - *off >= before);
	memcpy(c->rdata, pkt + *off, before);
	c->rdlen = before;
	*off += before;
	for (i = 0; i < nn; i++) {
		read_name(pkt, end, off, c->rdata + c->rdlen, &nlen);
		c->rdlen += nlen;
	}
	CHECK(end - *off == after);
	memcpy(c->rdata + c->rdlen, pkt + *off, after);
	c->rdlen += after;
	*off = end;
}

static int
crr_equal(const struct crr *a, const struct crr *b)
{
	return a->olen == b->olen && memcmp(a->owner, b->owner, a->olen) == 0 &&
	       memcmp(a->fixed, b->fixed, 8) == 0 && a->rdlen == b->rdlen &&
	       memcmp(a->rdata, b->rdata, a->rdlen) == 0;
}

/* Skips the questions; returns the offset after them. */
static size_t
skip_questions(const uint8_t *pkt, size_t len)
{
	uint8_t name[RSV_NAME_MAX];
	size_t off = RSV_HDR_LEN, nlen;
	unsigned i, qd = rsv_get16(pkt + 4);

	for (i = 0; i < qd; i++) {
		read_name(pkt, len, &off, name, &nlen);
		CHECK(len - off >= 4);
		off += 4;
	}
	return off;
}

/* The questions of both messages are equal; returns the offsets after. */
static void
compare_questions(const uint8_t *in, size_t ilen, size_t *ioff,
    const uint8_t *out, size_t olen, size_t *ooff)
{
	uint8_t a[RSV_NAME_MAX], b[RSV_NAME_MAX];
	size_t alen, blen;
	unsigned i, qd = rsv_get16(in + 4);

	*ioff = *ooff = RSV_HDR_LEN;
	for (i = 0; i < qd; i++) {
		read_name(in, ilen, ioff, a, &alen);
		read_name(out, olen, ooff, b, &blen);
		CHECK(alen == blen && memcmp(a, b, alen) == 0);
		CHECK(ilen - *ioff >= 4 && olen - *ooff >= 4);
		CHECK(memcmp(in + *ioff, out + *ooff, 4) == 0);
		*ioff += 4;
		*ooff += 4;
	}
}

/*
 * Output sections must be prefixes of the input's (the OPT excepted,
 * which must come last).
 */
static void
compare_rrs(const uint8_t *in, size_t ilen, const uint8_t *out, size_t olen,
    struct crr *a, struct crr *b)
{
	size_t ioff, ooff;
	unsigned sec, i, j, icount, ocount;

	compare_questions(in, ilen, &ioff, out, olen, &ooff);
	for (sec = 0; sec < 3; sec++) {
		icount = rsv_get16(in + 6 + 2 * sec);
		ocount = rsv_get16(out + 6 + 2 * sec);
		for (i = 0, j = 0; j < ocount; j++) {
			read_rr(out, olen, &ooff, b);
			if (rsv_get16(b->fixed) == RSV_TYPE_OPT) {
				CHECK(sec == 2 && j + 1 == ocount);
				continue;
			}
			do {
				CHECK(i < icount);
				read_rr(in, ilen, &ioff, a);
				i++;
			} while (rsv_get16(a->fixed) == RSV_TYPE_OPT);
			CHECK(crr_equal(a, b));
		}
		for (; i < icount; i++)
			read_rr(in, ilen, &ioff, a);
	}
	CHECK(ioff == ilen && ooff == olen);
}

static void
check_reencoded(const uint8_t *in, size_t ilen, size_t limit,
    const uint8_t *out, size_t olen, uint8_t *again)
{
	struct crr *x;
	size_t alen, hq;

	/* never longer than the limit, unless the questions alone are */
	hq = skip_questions(out, olen);
	CHECK(olen <= (limit > hq ? limit : hq));
	/* id and flags kept; TC may only be added */
	CHECK(rsv_get16(out) == rsv_get16(in));
	CHECK((rsv_get16(out + 2) | RSV_F_TC) ==
	      (rsv_get16(in + 2) | RSV_F_TC));
	CHECK(rsv_get16(out + 4) == rsv_get16(in + 4));
	if (!(rsv_get16(out + 2) & RSV_F_TC))
		CHECK(memcmp(out + 6, in + 6, 6) == 0);
	/* the output is valid and stable */
	CHECK(rsv_msg_truncate(out, olen, RSV_MSG_MAX, again, OUT_CAP, &alen) ==
	      0);
	CHECK(alen == olen && memcmp(again, out, olen) == 0);
	CHECK(rsv_msg_truncate(out, olen, limit, again, OUT_CAP, &alen) == 0);
	CHECK(alen == olen && memcmp(again, out, olen) == 0);
	if ((x = malloc(2 * sizeof(*x))) == NULL)
		abort();
	compare_rrs(in, ilen, out, olen, &x[0], &x[1]);
	free(x);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out, *again;
	size_t limit, olen;
	int rc;

	if (size < 2)
		return 0;
	limit = rsv_get16(data);
	data += 2;
	size -= 2;
	out = malloc(OUT_CAP);
	again = malloc(OUT_CAP);
	CHECK(out != NULL && again != NULL);
	rc = rsv_msg_truncate(data, size, limit, out, OUT_CAP, &olen);
	CHECK(rc == 0 || rc == -EINVAL || rc == -EMSGSIZE || rc == -ENOSPC);
	if (rc == -EINVAL)
		CHECK(rsv_msg_truncate(data, size, RSV_MSG_MAX, again, OUT_CAP,
		          &olen) == -EINVAL);
	if (rc == -EMSGSIZE)
		CHECK(size > limit);
	if (rc == 0 && size <= limit)
		CHECK(olen == size && memcmp(out, data, size) == 0);
	else if (rc == 0)
		check_reencoded(data, size, limit, out, olen, again);
	free(out);
	free(again);
	return 0;
}
