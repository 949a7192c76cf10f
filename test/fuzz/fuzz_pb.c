/*
 * fuzz_pb.c: nds_pb_parse() on arbitrary bytes.  On success the table is
 * encoded, decoded again and encoded again: both encodings must be byte
 * for byte identical and the second decode must succeed with the same
 * number of entries; anything else aborts.  On failure the message must
 * be non-empty and *out NULL.  The same bytes fed to the stream decoder
 * in pieces (as a table file is read) must give the same table, or the
 * same message.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nds/nds.h"
#include "nds/nds_impl.h"
#include "test/fuzz/fuzz_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct feed {
	struct nds_pb_stream *s;
	char err[128];
};

static int
feed_pb(void *arg, const uint8_t *buf, size_t len, int eof, size_t *used)
{
	struct feed *f = arg;

	return nds_pb_stream_feed(f->s, buf, len, eof, used, f->err,
	    sizeof(f->err));
}

/* The table in pieces: *out, or the message in err; -1 out of memory. */
static int
pieces(const uint8_t *data, size_t size, struct nds_nametable **out, char *err,
    size_t errlen)
{
	struct feed f;
	int rc;

	*out = NULL;
	f.err[0] = '\0';
	if (nds_pb_stream_create(size, &f.s) != 0)
		return -1;
	rc = fuzz_pieces(data, size, &f, feed_pb);
	if (rc == 0)
		*out = nds_pb_stream_finish(f.s);
	nds_pb_stream_destroy(f.s);
	snprintf(err, errlen, "%s", f.err);
	return rc == -ENOMEM ? -1 : rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nds_nametable *nt = NULL, *nt2 = NULL;
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1, l2;
	char err[128];

	struct nds_nametable *np = NULL;
	uint8_t *bp = NULL;
	size_t lp;
	char perr[128];
	int rc, prc;

	err[0] = '\0';
	rc = nds_pb_parse(data, size, &nt, err, sizeof(err));
	prc = pieces(data, size, &np, perr, sizeof(perr));
	if (rc != 0) {
		if (nt != NULL || err[0] == '\0')
			abort();
		/* The same message from the stream (unless out of memory). */
		if (rc == -EINVAL && prc != -1 &&
		    (np != NULL || strcmp(err, perr) != 0))
			abort();
		nds_nametable_destroy(np);
		return 0;
	}
	if (prc != 0 && prc != -1)
		abort(); /* the whole input decodes, its pieces do not */
	if (nds_pb_build(nt, &b1, &l1) != 0)
		goto out; /* out of memory */
	if (np != NULL && nds_pb_build(np, &bp, &lp) == 0 &&
	    (lp != l1 || memcmp(bp, b1, l1) != 0))
		abort();
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
	free(bp);
	nds_nametable_destroy(nt);
	nds_nametable_destroy(nt2);
	nds_nametable_destroy(np);
	return 0;
}
