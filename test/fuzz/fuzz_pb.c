/*
 * fuzz_pb.c: nds_pb_parse() on arbitrary bytes.  On success the table is
 * encoded, decoded again and encoded again: both encodings must be byte
 * for byte identical and the second decode must succeed with the same
 * number of entries; anything else aborts.  On failure the message must
 * be non-empty and *out NULL.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nds/nds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nds_nametable *nt = NULL, *nt2 = NULL;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1, l2;
	char err[128];

	err[0] = '\0';
	if (nds_pb_parse(data, size, &nt, err, sizeof(err)) != 0) {
		if (nt != NULL || err[0] == '\0')
			abort();
		return 0;
	}
	if (nds_pb_build(nt, &b1, &l1) != 0)
		goto out; /* out of memory */
	if (nds_pb_parse(b1, l1, &nt2, err, sizeof(err)) != 0)
		abort();
	if (nds_nametable_count(nt2) != nds_nametable_count(nt))
		abort();
	if (nds_pb_build(nt2, &b2, &l2) != 0)
		goto out;
	if (l1 != l2 || memcmp(b1, b2, l1) != 0)
		abort();
out:
	free(b1);
	free(b2);
	nds_nametable_destroy(nt);
	nds_nametable_destroy(nt2);
	return 0;
}
