/*
 * fuzz_json.c: nds_json_parse() on arbitrary bytes; on success the table
 * is built (options picked by the input size) and names derived from the
 * keys, the alt hosts and the input bytes are looked up.  Every answer is
 * checked for its invariants and its address bytes are read, so that a
 * bad pointer shows under ASan.  The same bytes fed to the stream decoder
 * in pieces (as a table file is read) must give the same table when the
 * stream takes them (it may leave an unusual shape to the whole parse),
 * and so must jansson's whole tree (nds_json_parse_tree()), which does
 * not use the stream's own scanner for the usual entries.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nds/nds.h"
#include "nds/nds_impl.h"
#include "test/fuzz/fuzz_stream.h"
#include "test/fuzz/fuzz_table.h"

#define KEYS_PROBED 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct nds_build_opts fuzz_opts[] = {
    {.namespace = "ns1",
        .domain = "ns1.svc.cluster.local",
        .search0 = "ns1.svc.cluster.local",
        .ttl = 30},
    {.namespace = "",
        .domain = "svc.cluster.local",
        .search0 = "svc.cluster.local.",
        .ttl = 5},
    {.namespace = "a", .domain = "b", .search0 = "a", .ttl = 0},
};

/* "." + search0 + "." of each of fuzz_opts. */
static const char *const fuzz_sfx[] = {
    ".ns1.svc.cluster.local.", ".svc.cluster.local.", ".a."};

static void
check(const struct nds_table *t, const char *q, size_t qlen)
{
	struct nds_answer a;
	volatile uint8_t sink = 0;
	uint32_t i;

	if (nds_table_lookup(t, q, qlen, &a) != 0)
		return;
	if (a.target != NULL &&
	    (a.target_len == 0 || a.target[a.target_len - 1] != '.'))
		abort();
	if (a.origin == NULL || a.origin_len == 0 ||
	    (a.n4 > 0 && a.v4 == NULL) || (a.n6 > 0 && a.v6 == NULL))
		abort();
	for (i = 0; i < a.n4 * 4; i++)
		sink ^= a.v4[i];
	for (i = 0; i < a.n6 * 16; i++)
		sink ^= a.v6[i];
	sink ^= (uint8_t)a.origin[a.origin_len - 1];
	(void)sink;
}

/* Looks up a + b + c in lower case (cut at 599 bytes). */
static void
probe(const struct nds_table *t, const char *a, const char *b, const char *c)
{
	const char *part[3] = {a, b, c};
	char q[600];
	size_t n = 0, i, j;

	for (i = 0; i < 3; i++)
		for (j = 0; part[i][j] != '\0' && n < sizeof(q) - 1; j++)
			q[n++] = part[i][j] >= 'A' && part[i][j] <= 'Z'
			             ? (char)(part[i][j] - 'A' + 'a')
			             : part[i][j];
	check(t, q, n);
}

static void
probe_entry(const struct nds_table *t, const char *key, json_t *info,
    const char *sfx)
{
	const char *wild = strncmp(key, "*.", 2) == 0 ? key + 2 : key;
	json_t *v;
	size_t i;

	probe(t, key, ".", "");
	probe(t, key, "", "");
	probe(t, key, sfx, "");
	probe(t, key, ".ns1.svc.cluster.local.", "");
	probe(t, "x.", wild, ".");
	probe(t, "x.y.", wild, sfx);
	if (!json_is_object(info))
		return;
	v = json_object_get(info, "shortname");
	if (json_is_string(v)) {
		probe(t, json_string_value(v), ".", "");
		probe(t, json_string_value(v), sfx, "");
	}
	v = json_object_get(info, "altHosts");
	if (!json_is_array(v))
		v = json_object_get(info, "alt_hosts");
	for (i = 0; json_is_array(v) && i < json_array_size(v) && i < 8; i++)
		if (json_is_string(json_array_get(v, i))) {
			probe(t, json_string_value(json_array_get(v, i)), ".",
			    "");
			probe(t, json_string_value(json_array_get(v, i)), sfx,
			    "");
		}
}

static void
probe_keys(const struct nds_table *t, const uint8_t *data, size_t size,
    const char *sfx)
{
	json_t *root = json_loadb((const char *)data, size, 0, NULL);
	json_t *table = json_object_get(root, "table"), *v;
	const char *key;
	size_t n = 0;

	if (json_is_object(table))
		json_object_foreach(table, key, v)
		{
			if (n++ == KEYS_PROBED)
				break;
			probe_entry(t, key, v, sfx);
		}
	json_decref(root);
}

static int
feed_json(void *s, const uint8_t *buf, size_t len, int eof, size_t *used)
{
	return nds_json_stream_feed(s, (const char *)buf, len, eof, used);
}

/* The stream's table, in pieces, encoded; *pb NULL if it did not take
 * the input (or out of memory). */
static void
pieces(const uint8_t *data, size_t size, uint8_t **pb, size_t *pblen)
{
	struct nds_json_stream *s;
	struct nds_nametable *nt = NULL;

	*pb = NULL;
	if (nds_json_stream_create(&s) != 0)
		return;
	if (fuzz_pieces(data, size, s, feed_json) == 0)
		nt = nds_json_stream_finish(s);
	nds_json_stream_destroy(s);
	if (nt != NULL && nds_pb_build(nt, pb, pblen) != 0)
		*pb = NULL;
	nds_nametable_destroy(nt);
}

/*
 * The builder in steps of an input-chosen size (1-64 units) gives t, the
 * table of the whole build, record for record.
 */
static void
stepped(const uint8_t *data, size_t size, const struct nds_build_opts *o,
    const struct nds_table *t)
{
	struct nds_table_builder *bd;
	struct nds_nametable *nt;
	struct nds_table *s = NULL;
	size_t budget = size > 0 ? 1 + data[size - 1] % 64 : 1;
	char err[128];
	int rc;

	if (nds_json_parse((const char *)data, size, &nt, err, sizeof(err)) !=
	        0 ||
	    nds_table_builder_create(nt, o, &bd, err, sizeof(err)) != 0)
		return;
	while ((rc = nds_table_builder_step(bd, budget, &s, err,
	            sizeof(err))) == 1)
		;
	nds_table_builder_free(bd);
	if (rc != 0) /* out of memory; the whole build managed */
		return;
	if (nds_table_names(s) != nds_table_names(t) ||
	    nds_table_entries(s) != nds_table_entries(t) ||
	    fuzz_table_digest(s) != fuzz_table_digest(t))
		abort();
	nds_table_unref(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct nds_build_opts *o =
	    &fuzz_opts[size % (sizeof(fuzz_opts) / sizeof(*fuzz_opts))];
	struct nds_nametable *nt, *nt2;
	struct nds_table *t;
	char err[128];
	uint8_t *pp, *pw;
	size_t n, lp, lw;
	int rc;

	pieces(data, size, &pp, &lp);
	rc = nds_json_parse((const char *)data, size, &nt, err, sizeof(err));
	if (pp != NULL) {
		/* What the stream takes, the whole parse takes alike. */
		if (rc != 0)
			abort();
		if (nds_pb_build(nt, &pw, &lw) == 0) {
			if (lw != lp || memcmp(pw, pp, lp) != 0)
				abort();
			free(pw);
		}
		/* And jansson's tree, entry by entry, alike too. */
		if (nds_json_parse_tree((const char *)data, size, &nt2, err,
		        sizeof(err)) == 0) {
			if (nds_pb_build(nt2, &pw, &lw) == 0) {
				if (lw != lp || memcmp(pw, pp, lp) != 0)
					abort();
				free(pw);
			}
			nds_nametable_destroy(nt2);
		} else if (strcmp(err, "out of memory") != 0) {
			abort();
		}
		free(pp);
	}
	if (rc != 0)
		return 0;
	if (nds_table_build(nt, o, &t, err, sizeof(err)) != 0)
		return 0;
	if (nds_table_names(t) > 0 && nds_table_entries(t) == 0)
		abort();
	stepped(data, size, o, t);
	probe_keys(t, data, size, fuzz_sfx[size % 3]);
	/* The raw input as a name, and every suffix starting at a byte. */
	n = size < 300 ? size : 300;
	check(t, (const char *)data, n);
	check(t, (const char *)data + size - n, n);
	nds_table_unref(t);
	return 0;
}
