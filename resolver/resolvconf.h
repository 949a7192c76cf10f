/*
 * resolvconf: a pure resolv.conf parser (SPEC §4), shared by dnsproxy and
 * dnsproxy-init.
 *
 *	struct rsv_resolvconf *rc;
 *	rsv_resolvconf_parse(text, len, &rc);
 *	for (i = 0; i < rc->nservers; i++) use(&rc->servers[i]);
 *	rsv_resolvconf_free(rc);
 *
 * No I/O: the caller reads the file.  Bad lines never fail the parse; they
 * are counted in nskipped with the first reason in warning (D16).
 */
#ifndef DNSPROXY_RESOLVER_RESOLVCONF_H
#define DNSPROXY_RESOLVER_RESOLVCONF_H

#include <stddef.h>
#include <stdint.h>

/* One nameserver line. */
struct rsv_nameserver {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* 4 or 16 bytes, network order */
	uint16_t port;     /* always 53 from resolv.conf */
	char text[64];     /* the address as written, scope removed */
	unsigned scope_id; /* IPv6 zone index when "%zone" was given, or 0 */
	int scoped;        /* 1 when the line carried a %zone */
};

struct rsv_resolvconf {
	struct rsv_nameserver *servers; /* every nameserver, file order */
	size_t nservers;
	char **search; /* search list (last search/domain line), each
	                * without a trailing dot */
	size_t nsearch;
	size_t nskipped;   /* nameserver lines that did not parse */
	char warning[160]; /* first skipped line's reason, or "" */
};

/*
 * Parses resolv.conf text of len bytes (need not be NUL-terminated).
 * Comments start with '#' or ';' (at line start or after whitespace);
 * "nameserver X", "search a b c", "domain D" (the last search/domain line
 * wins), "options ..." read and ignored.  0 or -ENOMEM.
 */
int rsv_resolvconf_parse(const char *text, size_t len,
    struct rsv_resolvconf **out);

/* NULL-safe. */
void rsv_resolvconf_free(struct rsv_resolvconf *rc);

#endif
