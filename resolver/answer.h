/*
 * answer: local replies (SPEC §3 handler) and error replies.  Private to
 * resolver/.  Pure: bytes and table in, bytes out; no I/O, no clock.
 *
 *	struct rsv_query q;
 *	enum rsv_parse pr = rsv_query_parse(pkt, len, &q);
 *	if (pr == RSV_PARSE_OK)
 *		rc = rsv_answer_local(t, &q, tr, &rng, out, cap, &outlen);
 *	else if (pr != RSV_PARSE_DROP)
 *		rsv_answer_error(&q, rsv_parse_rcode(pr), 0, out, cap, &outlen);
 */
#ifndef DNSPROXY_RESOLVER_ANSWER_H
#define DNSPROXY_RESOLVER_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "resolver/resolver.h"
#include "resolver/wire.h"

struct nds_table;

/* The random source of D6: uniform on [0, bound). */
struct rsv_rng {
	rsv_rand_fn fn;
	void *arg;
};

/*
 * Fisher-Yates over idx[0..n): for i = n-1 .. 1, j = R(i+1), swap.  With
 * R == 0 always, [11,12,13,14] becomes [12,13,14,11] (SPEC §3 vectors).
 */
void rsv_shuffle(uint32_t *idx, size_t n, const struct rsv_rng *rng);

/* The rcode a pre-handler result maps to (RSV_PARSE_OK/DROP: -1). */
int rsv_parse_rcode(enum rsv_parse pr);

/*
 * Builds an error reply to q (ID and question kept, QR=1, AA=0, RD and CD
 * copied; FORMERR resets the opcode to QUERY as miekg does, others echo
 * it).  with_opt adds our OPT (1232, DO echoed) when q had one; BADVERS
 * always carries an OPT of version 0 with the extended rcode.  0 or
 * -ENOSPC.
 */
int rsv_answer_error(const struct rsv_query *q, int rcode, int with_opt,
    uint8_t *out, size_t cap, size_t *outlen);

/*
 * Answers q from the table when it is an A or AAAA question for a known
 * name: NOERROR, AA=1, RA=0, the question echoed in the client's case, an
 * optional CNAME (owner: the lower-cased query), the address records
 * shuffled, truncated to the transport's limit (TC=1), our OPT when q had
 * one.  Returns 0 with the reply in out, or -ENOENT when the query must be
 * forwarded (other qtype, unknown name, a name no table key can match).
 */
int rsv_answer_local(const struct nds_table *t, const struct rsv_query *q,
    enum rsv_transport tr, const struct rsv_rng *rng, uint8_t *out, size_t cap,
    size_t *outlen);

#endif
