/*
 * libFuzzer target: reply building from parsed input.  Every input is a
 * query run through the pre-handler and, when valid, answered from a fixed
 * table (the SPEC §8 fixture) over UDP and TCP; error replies are built
 * for the rest.  Each reply must respect its size limit and parse back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nds/nds.h"
#include "resolver/answer.h"
#include "resolver/wire.h"
#include "test/fuzz/fuzz_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct nds_table *table;
static uint8_t out[RSV_MSG_MAX];

static void
fixture(void)
{
	struct nds_build_opts o = {
	    "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local", 30};
	struct nds_nametable *nt;
	char err[256];

	nt = fuzz_table_sample();
	fuzz_table_add(nt, "*.b.wildcard", "External", NULL, NULL,
	    "11.11.11.11", NULL);
	if (nds_table_build(nt, &o, &table, err, sizeof(err)) != 0)
		abort();
}

static uint32_t
fuzz_rand(uint32_t bound, void *arg)
{
	uint32_t *state = arg;

	*state = *state * 1103515245u + 12345u;
	return (*state >> 8) % bound;
}

/* A reply must fit its limit, be a response, and echo the ID. */
static void
check_reply(const struct rsv_query *q, size_t len, size_t limit)
{
	if (len < RSV_HDR_LEN || len > limit)
		abort();
	if (rsv_get16(out) != q->hdr.id || !(rsv_get16(out + 2) & RSV_F_QR))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seed = (uint32_t)size;
	struct rsv_rng rng = {fuzz_rand, &seed};
	struct rsv_query q;
	enum rsv_parse pr;
	size_t len;

	if (table == NULL)
		fixture();
	pr = rsv_query_parse(data, size, &q);
	if (pr == RSV_PARSE_DROP)
		return 0;
	if (pr != RSV_PARSE_OK) {
		if (rsv_answer_error(&q, rsv_parse_rcode(pr), 0, out,
		        sizeof(out), &len) != 0)
			abort();
		check_reply(&q, len, RSV_MSG_MAX);
		return 0;
	}
	if (rsv_answer_local(table, &q, RSV_UDP, &rng, out, sizeof(out),
	        &len) == 0)
		check_reply(&q, len, rsv_udp_limit(&q));
	if (rsv_answer_local(table, &q, RSV_TCP, &rng, out, sizeof(out),
	        &len) == 0)
		check_reply(&q, len, RSV_MSG_MAX);
	if (rsv_answer_error(&q, RSV_SERVFAIL, 1, out, sizeof(out), &len) != 0)
		abort();
	check_reply(&q, len, RSV_MSG_MAX);
	return 0;
}
