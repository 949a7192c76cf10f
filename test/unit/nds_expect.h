/*
 * nds_expect.h: a cmocka check of one table lookup's addresses, shared by
 * the table-loading unit tests.  Include after <cmocka.h> and nds.h.
 */
#ifndef DNSPROXY_TEST_NDS_EXPECT_H
#define DNSPROXY_TEST_NDS_EXPECT_H

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* Fails unless the lookup of q gives want: "v4,v4 v6" or "ENOENT". */
static inline void
expect_ips(const struct nds_table *t, const char *q, const char *want)
{
	struct nds_answer a;
	char got[512] = "", ip[INET6_ADDRSTRLEN];
	size_t o = 0;
	uint32_t i;

	if (nds_table_lookup(t, q, strlen(q), &a) != 0) {
		snprintf(got, sizeof(got), "ENOENT");
	} else {
		for (i = 0; i < a.n4; i++)
			o += snprintf(got + o, sizeof(got) - o, "%s%s",
			    i ? "," : "",
			    inet_ntop(AF_INET, a.v4 + 4 * i, ip, sizeof(ip)));
		o += snprintf(got + o, sizeof(got) - o, " ");
		for (i = 0; i < a.n6; i++)
			o += snprintf(got + o, sizeof(got) - o, "%s%s",
			    i ? "," : "",
			    inet_ntop(AF_INET6, a.v6 + 16 * i, ip, sizeof(ip)));
	}
	if (strcmp(got, want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", q, got, want);
}

#endif
