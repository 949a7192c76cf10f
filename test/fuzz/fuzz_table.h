/*
 * fuzz_table.h: the small NameTable the reply-building fuzz targets answer
 * from (fuzz_answer, fuzz_admin): an External host, a Kubernetes service
 * in the proxy's namespace ns1, a dual-stack host and a wildcard.
 */
#ifndef DNSPROXY_FUZZ_TABLE_H
#define DNSPROXY_FUZZ_TABLE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nds/nds.h"

static inline void
fuzz_table_add(struct nds_nametable *nt, const char *key, const char *reg,
    const char *shortname, const char *ns, const char *ip1, const char *ip2)
{
	const char *ips[2] = {ip1, ip2};
	struct nds_nameinfo ni = {
	    ips, ip2 != NULL ? 2 : 1, reg, shortname, ns, NULL, 0};

	if (nds_nametable_add(nt, key, &ni) != 0)
		abort();
}

/* The common entries; the caller adds its own, then builds. */
static inline struct nds_nametable *
fuzz_table_sample(void)
{
	struct nds_nametable *nt;

	if (nds_nametable_create(&nt) != 0)
		abort();
	fuzz_table_add(nt, "www.google.com", "External", NULL, NULL, "1.1.1.1",
	    NULL);
	fuzz_table_add(nt, "productpage.ns1.svc.cluster.local", "Kubernetes",
	    "productpage", "ns1", "9.9.9.9", NULL);
	fuzz_table_add(nt, "dual.localhost", "External", NULL, NULL, "2.2.2.2",
	    "2001:db8::ff00:42:8329");
	fuzz_table_add(nt, "*.wildcard", "External", NULL, NULL, "10.10.10.10",
	    NULL);
	return nt;
}

/* FNV-1a over bytes and a separator. */
static inline uint64_t
fuzz_fnv(uint64_t h, const char *s)
{
	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211u;
	return (h ^ 0xff) * 1099511628211u;
}

static inline int
fuzz_digest_record(const struct nds_record *r, void *arg)
{
	uint64_t *h = arg;
	char ttl[16];

	snprintf(ttl, sizeof(ttl), "%u", r->ttl);
	*h =
	    fuzz_fnv(fuzz_fnv(fuzz_fnv(fuzz_fnv(fuzz_fnv(*h, r->name), r->type),
	                          ttl),
	                 r->data),
	        r->origin);
	return 0;
}

/* A digest of every record of t, in listing order (0: out of memory). */
static inline uint64_t
fuzz_table_digest(const struct nds_table *t)
{
	uint64_t h = 14695981039346656037u;

	if (nds_table_foreach_record(t, NULL, fuzz_digest_record, &h) != 0)
		return 0;
	return h;
}

#endif
