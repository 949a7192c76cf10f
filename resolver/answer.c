/*
 * answer.c: local answers from the name table and error replies
 * (SPEC §3).  Pure code: the table is read-only, the reply is built into
 * the caller's buffer, and the only allocation is the permutation of an
 * unusually large address list (more than ANSWER_PERM_STACK records).
 */
#include "resolver/answer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nds/nds.h"

#define ANSWER_PERM_STACK 256 /* address records shuffled on the stack */

void
rsv_shuffle(uint32_t *idx, size_t n, const struct rsv_rng *rng)
{
	size_t i;

	for (i = n; i > 1; i--) {
		uint32_t j = rng->fn((uint32_t)i, rng->arg);
		uint32_t tmp = idx[i - 1];

		/* A broken source must not make us read out of bounds. */
		if (j >= i)
			j = (uint32_t)(i - 1);
		idx[i - 1] = idx[j];
		idx[j] = tmp;
	}
}

int
rsv_parse_rcode(enum rsv_parse pr)
{
	switch (pr) {
	case RSV_PARSE_NOTIMP:
		return RSV_NOTIMP;
	case RSV_PARSE_FORMERR:
		return RSV_FORMERR;
	case RSV_PARSE_REFUSED:
		return RSV_REFUSED;
	case RSV_PARSE_BADVERS:
		return RSV_BADVERS;
	case RSV_PARSE_OK:
	case RSV_PARSE_DROP:
		break;
	}
	return -1;
}

/* Reply flags: QR=1, opcode, RD and CD copied from the query, rcode. */
static uint16_t
answer_flags(const struct rsv_query *q, unsigned opcode, int rcode)
{
	return (uint16_t)(RSV_F_QR | (opcode & 0xf) << 11 |
	                  (q->hdr.flags & (RSV_F_RD | RSV_F_CD)) |
	                  (rcode & 0xf));
}

int
rsv_answer_error(const struct rsv_query *q, int rcode, int with_opt,
    uint8_t *out, size_t cap, size_t *outlen)
{
	struct rsv_writer w;
	struct rsv_hdr h;
	unsigned opcode = RSV_OPCODE(q->hdr.flags);
	int rc = 0;

	if (rcode == RSV_FORMERR)
		opcode = RSV_OP_QUERY; /* miekg SetRcodeFormatError */
	rsv_writer_init(&w, out, cap, cap);
	if (q->has_question && (rc = rsv_writer_question(&w, q->qname,
	                            q->qname_len, q->qtype, q->qclass)) != 0)
		return rc;
	rsv_writer_section(&w, 3);
	if (rcode == RSV_BADVERS)
		rc = rsv_writer_opt(&w, RSV_EDNS_LOCAL, RSV_BADVERS >> 4, 0,
		    q->opt.flags & RSV_EDNS_DO, NULL, 0);
	else if (with_opt && q->opt.present)
		rc = rsv_writer_opt(&w, RSV_EDNS_LOCAL, 0, 0,
		    q->opt.flags & RSV_EDNS_DO, NULL, 0);
	if (rc != 0)
		return rc;
	memset(&h, 0, sizeof(h));
	h.id = q->hdr.id;
	h.flags = answer_flags(q, opcode, rcode);
	*outlen = rsv_writer_finish(&w, &h);
	return 0;
}

/* Lower-cased copy of a wire name (labels' length bytes are < 64). */
static void
answer_lower(const uint8_t *in, size_t len, uint8_t *out)
{
	size_t i;

	for (i = 0; i < len; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? in[i] + 32 : in[i];
}

/*
 * Appends the address records of one family, shuffled, while they fit.
 * Returns 1 when some were dropped (truncation), 0 when all fit, or a
 * negative errno.
 */
static int
answer_addrs(struct rsv_writer *w, const uint8_t *owner, size_t olen,
    uint16_t type, uint32_t ttl, const uint8_t *addrs, uint32_t n,
    const struct rsv_rng *rng)
{
	uint32_t stack[ANSWER_PERM_STACK], *perm = stack, i;
	uint16_t alen = type == RSV_TYPE_A ? 4 : 16;
	int rc = 0;

	if (n > ANSWER_PERM_STACK &&
	    (perm = malloc((size_t)n * sizeof(*perm))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		perm[i] = i;
	rsv_shuffle(perm, n, rng);
	for (i = 0; i < n; i++) {
		rc = rsv_writer_rr(w, owner, olen, type, RSV_CLASS_IN, ttl,
		    addrs + (size_t)perm[i] * alen, alen);
		if (rc == -ENOSPC) {
			rc = 1; /* each section stops at its first misfit */
			break;
		}
		if (rc != 0)
			break;
	}
	if (perm != stack)
		free(perm);
	return rc;
}

/* The table's view of the question: lower-case dotted text. */
static int
answer_lookup(const struct nds_table *t, const struct rsv_query *q, char *text,
    size_t cap, struct nds_answer *ans)
{
	size_t tlen;

	if (t == NULL || (q->qtype != RSV_TYPE_A && q->qtype != RSV_TYPE_AAAA))
		return -ENOENT;
	if (rsv_name_to_text(q->qname, q->qname_len, 1, text, cap, &tlen) != 0)
		return -ENOENT; /* no table key can spell this name */
	return nds_table_lookup(t, text, tlen, ans);
}

int
rsv_answer_local(const struct nds_table *t, const struct rsv_query *q,
    enum rsv_transport tr, const struct rsv_rng *rng, uint8_t *out, size_t cap,
    size_t *outlen)
{
	char text[RSV_TEXT_MAX];
	uint8_t lname[RSV_NAME_MAX], target[RSV_NAME_MAX];
	const uint8_t *owner = lname, *addrs;
	size_t limit, olen = q->qname_len;
	struct nds_answer ans;
	struct rsv_writer w;
	struct rsv_hdr h;
	uint32_t n, ttl;
	int rc, truncated = 0;

	if ((rc = answer_lookup(t, q, text, sizeof(text), &ans)) != 0)
		return rc;
	ttl = nds_table_ttl(t);
	addrs = q->qtype == RSV_TYPE_A ? ans.v4 : ans.v6;
	n = q->qtype == RSV_TYPE_A ? ans.n4 : ans.n6;
	limit = tr == RSV_TCP ? RSV_MSG_MAX : rsv_udp_limit(q);
	if (limit > cap)
		limit = cap;
	/* The OPT is set aside: the records get the rest of the budget. */
	rsv_writer_init(&w, out, cap,
	    limit - (q->opt.present ? RSV_OPT_LEN : 0));
	if ((rc = rsv_writer_question(&w, q->qname, q->qname_len, q->qtype,
	         q->qclass)) != 0)
		return rc;
	rsv_writer_section(&w, 1);
	answer_lower(q->qname, q->qname_len, lname);
	/* An empty list answers NODATA, and the CNAME goes too (§3 4.6). */
	if (n > 0 && ans.target != NULL) {
		if ((rc = rsv_name_from_text(ans.target, ans.target_len, target,
		         sizeof(target), &olen)) != 0)
			return rc;
		owner = target;
		rc = rsv_writer_rr_name(&w, lname, q->qname_len, RSV_TYPE_CNAME,
		    RSV_CLASS_IN, ttl, target, olen);
		truncated = rc == -ENOSPC;
		if (rc != 0 && !truncated)
			return rc;
	}
	if (n > 0 && !truncated) {
		if ((rc = answer_addrs(&w, owner, olen, q->qtype, ttl, addrs, n,
		         rng)) < 0)
			return rc;
		truncated = rc;
	}
	rsv_writer_set_limit(&w, limit);
	rsv_writer_section(&w, 3);
	if (q->opt.present && (rc = rsv_writer_opt(&w, RSV_EDNS_LOCAL, 0, 0,
	                           q->opt.flags & RSV_EDNS_DO, NULL, 0)) != 0)
		return rc;
	memset(&h, 0, sizeof(h));
	h.id = q->hdr.id;
	h.flags = answer_flags(q, RSV_OPCODE(q->hdr.flags), RSV_NOERROR) |
	          RSV_F_AA | (truncated ? RSV_F_TC : 0);
	*outlen = rsv_writer_finish(&w, &h);
	return 0;
}
