/*
 * fuzz_table.h: the small NameTable the reply-building fuzz targets answer
 * from (fuzz_answer, fuzz_admin): an External host, a Kubernetes service
 * in the proxy's namespace ns1, a dual-stack host and a wildcard.
 */
#ifndef DNSPROXY_FUZZ_TABLE_H
#define DNSPROXY_FUZZ_TABLE_H

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

#endif
