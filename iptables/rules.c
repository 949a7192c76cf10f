/*
 * rules.c: the capture rules of SPEC §7 as text.  Pure: a config (and
 * the current iptables-save output) in, iptables-restore or nft input
 * out; no I/O, no clock, no logging.
 *
 * The iptables text copies Istio's istio-iptables byte for byte where
 * Istio has the rule (SPEC §7, §10.1): "* nat", udp "--to-port", tcp
 * "--to-ports", chains declared in order of first use.  As in Istio's
 * SetupDNSRedir, the nat REDIRECTs list tcp for every nameserver, then
 * udp for every nameserver, and the raw CT zone rules come in pairs per
 * nameserver (zone 2 by destination, zone 1 by source).
 */
#include "iptables/dpinit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "resolver/resolvconf.h"

#define NAT_OUTPUT "ISTIO_OUTPUT"
#define OUTPUT_DNS "ISTIO_OUTPUT_DNS"
#define RAW_INBOUND "ISTIO_INBOUND"

#define JUMP_NAT_OUTPUT "-A OUTPUT -j " NAT_OUTPUT
#define JUMP_RAW_OUTPUT "-A OUTPUT -j " OUTPUT_DNS
#define JUMP_RAW_PREROUTING "-A PREROUTING -j " RAW_INBOUND

#define NFT_NAT "inet istio-proxy-nat"
#define NFT_RAW "inet istio-proxy-raw"

/* The chains dnsproxy-init owns, per table. */
static const char *const nat_chains[] = {NAT_OUTPUT, OUTPUT_DNS, NULL};
static const char *const raw_chains[] = {OUTPUT_DNS, RAW_INBOUND, NULL};

static const char *const builtin_chains[] = {
    "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING", NULL};

int
dpinit_buf_append(struct dpinit_buf *b, const char *p, size_t len)
{
	size_t need = b->len + len + 1;
	char *grown;

	if (need > b->cap) {
		size_t cap = b->cap != 0 ? b->cap : 256;

		while (cap < need)
			cap *= 2;
		if ((grown = realloc(b->data, cap)) == NULL)
			return -ENOMEM;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int
dpinit_buf_printf(struct dpinit_buf *b, const char *fmt, ...)
{
	char small[512];
	char *big = NULL;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return dpinit_buf_append(b, small, (size_t)n);
	if ((big = malloc((size_t)n + 1)) == NULL)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = dpinit_buf_append(b, big, (size_t)n);
	free(big);
	return rc;
}

void
dpinit_buf_fini(struct dpinit_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

size_t
dpinit_count(const struct dpinit_config *cfg, int family)
{
	size_t i, n = 0;

	for (i = 0; i < cfg->nservers; i++)
		if (cfg->servers[i].family == family)
			n++;
	return n;
}

int
dpinit_wanted(const struct dpinit_config *cfg)
{
	return cfg->capture_all || cfg->nservers > 0;
}

/* "10.96.0.10/32" or "2001:db8::a/128", canonical whatever was written. */
static int
server_cidr(const struct rsv_nameserver *ns, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	int n;

	if (inet_ntop(ns->family, ns->addr, addr, sizeof(addr)) == NULL)
		return -EINVAL;
	n = snprintf(buf, len, "%s/%d", addr, ns->family == AF_INET ? 32 : 128);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* iptables-save text, one line at a time (trailing blanks cut). */
struct save_iter {
	const char *p;
	const char *end;
	char table[32]; /* the table of the current line, or "" */
};

static int
save_next(struct save_iter *it, const char **line, size_t *len)
{
	const char *s, *e;

	if (it->p == NULL || it->p >= it->end)
		return 0;
	s = it->p;
	e = memchr(s, '\n', (size_t)(it->end - s));
	it->p = e != NULL ? e + 1 : it->end;
	if (e == NULL)
		e = it->end;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	if (e > s && *s == '*') {
		const char *t = s + 1;
		size_t n = 0;

		while (t < e && (*t == ' ' || *t == '\t'))
			t++;
		while (t + n < e && t[n] != ' ' && t[n] != '\t' &&
		       n + 1 < sizeof(it->table))
			n++;
		memcpy(it->table, t, n);
		it->table[n] = '\0';
	}
	*line = s;
	*len = (size_t)(e - s);
	return 1;
}

static void
save_start(struct save_iter *it, const char *save, size_t savelen)
{
	it->p = save;
	it->end = save != NULL ? save + savelen : NULL;
	it->table[0] = '\0';
}

int
dpinit_save_has_rule(const char *save, size_t savelen, const char *table,
    const char *rule)
{
	struct save_iter it;
	const char *line;
	size_t len, rlen = strlen(rule);

	save_start(&it, save, savelen);
	while (save_next(&it, &line, &len))
		if (strcmp(it.table, table) == 0 && len == rlen &&
		    memcmp(line, rule, len) == 0)
			return 1;
	return 0;
}

int
dpinit_save_has_chain(const char *save, size_t savelen, const char *table,
    const char *chain)
{
	struct save_iter it;
	const char *line;
	size_t len, clen = strlen(chain);

	save_start(&it, save, savelen);
	while (save_next(&it, &line, &len))
		if (strcmp(it.table, table) == 0 && len > clen &&
		    line[0] == ':' && memcmp(line + 1, chain, clen) == 0 &&
		    (len == clen + 1 || line[clen + 1] == ' '))
			return 1;
	return 0;
}

/* Declares chain: "-N X" in a listing, ":X - [0:0]" when applying. */
static int
declare(struct dpinit_buf *out, enum dpinit_form form, const char *chain)
{
	if (form == DPINIT_LISTING)
		return dpinit_buf_printf(out, "-N %s\n", chain);
	return dpinit_buf_printf(out, ":%s - [0:0]\n", chain);
}

/*
 * Declares the chains the rules use, and when applying also our other
 * chains that already exist, so that stale rules of an earlier run with
 * other nameservers are flushed too.
 */
static int
declare_all(struct dpinit_buf *out, enum dpinit_form form, const char *table,
    const char *const *ours, const char *const *used, const char *save,
    size_t savelen)
{
	size_t i, j;
	int rc, in_use;

	for (i = 0; used[i] != NULL; i++)
		if ((rc = declare(out, form, used[i])) != 0)
			return rc;
	if (form != DPINIT_APPLY)
		return 0;
	for (i = 0; ours[i] != NULL; i++) {
		for (in_use = 0, j = 0; used[j] != NULL; j++)
			in_use |= strcmp(ours[i], used[j]) == 0;
		if (!in_use &&
		    dpinit_save_has_chain(save, savelen, table, ours[i]) &&
		    (rc = declare(out, form, ours[i])) != 0)
			return rc;
	}
	return 0;
}

/* A jump from a built-in chain: only when missing, if applying. */
static int
jump(struct dpinit_buf *out, enum dpinit_form form, const char *save,
    size_t savelen, const char *table, const char *rule)
{
	if (form == DPINIT_APPLY &&
	    dpinit_save_has_rule(save, savelen, table, rule))
		return 0;
	return dpinit_buf_printf(out, "%s\n", rule);
}

static int
render_nat(const struct dpinit_config *cfg, int family, enum dpinit_form form,
    const char *save, size_t savelen, struct dpinit_buf *out)
{
	const char *used[3] = {NAT_OUTPUT, NULL, NULL};
	const char *protos[2] = {"tcp", "udp"};
	const char *to[2] = {"--to-ports", "--to-port"}; /* Istio's text */
	int dns = cfg->capture_all || dpinit_count(cfg, family) > 0;
	char cidr[INET6_ADDRSTRLEN + 8];
	size_t i, p;
	int rc;

	if (dns)
		used[1] = OUTPUT_DNS;
	if ((rc = dpinit_buf_printf(out, "* nat\n")) != 0 ||
	    (rc = declare_all(out, form, "nat", nat_chains, used, save,
	         savelen)) != 0 ||
	    (rc = jump(out, form, save, savelen, "nat", JUMP_NAT_OUTPUT)) != 0)
		return rc;
	rc = dpinit_buf_printf(out,
	    "-A " NAT_OUTPUT " -m owner --uid-owner %lu -j RETURN\n"
	    "-A " NAT_OUTPUT " -m owner --gid-owner %lu -j RETURN\n",
	    (unsigned long)cfg->uid, (unsigned long)cfg->gid);
	if (rc == 0 && dns)
		rc = dpinit_buf_printf(out,
		    "-A " NAT_OUTPUT " -j " OUTPUT_DNS "\n");
	for (p = 0; rc == 0 && dns && p < 2; p++) {
		if (cfg->capture_all) {
			rc = dpinit_buf_printf(out,
			    "-A " OUTPUT_DNS " -p %s --dport 53 -j REDIRECT "
			    "%s %u\n",
			    protos[p], to[p], cfg->dns_port);
			continue;
		}
		for (i = 0; rc == 0 && i < cfg->nservers; i++) {
			if (cfg->servers[i].family != family)
				continue;
			if ((rc = server_cidr(&cfg->servers[i], cidr,
			         sizeof(cidr))) != 0)
				break;
			rc = dpinit_buf_printf(out,
			    "-A " OUTPUT_DNS " -p %s --dport 53 -d %s -j "
			    "REDIRECT %s %u\n",
			    protos[p], cidr, to[p], cfg->dns_port);
		}
	}
	if (rc == 0)
		rc = dpinit_buf_printf(out, "COMMIT\n");
	return rc;
}

/* The zone rules for the proxy's own packets, by uid then by gid. */
static int
render_owner_zones(const struct dpinit_config *cfg, struct dpinit_buf *out)
{
	const char *what[2] = {"uid", "gid"};
	unsigned long id[2] = {cfg->uid, cfg->gid};
	size_t k;
	int rc = 0;

	for (k = 0; rc == 0 && k < 2; k++)
		rc = dpinit_buf_printf(out,
		    "-A " OUTPUT_DNS " -p udp --dport 53 -m owner --%s-owner "
		    "%lu -j CT --zone 1\n"
		    "-A " OUTPUT_DNS " -p udp --sport %u -m owner --%s-owner "
		    "%lu -j CT --zone 2\n",
		    what[k], id[k], cfg->dns_port, what[k], id[k]);
	return rc;
}

static int
render_raw(const struct dpinit_config *cfg, int family, enum dpinit_form form,
    const char *save, size_t savelen, struct dpinit_buf *out)
{
	const char *used[3] = {OUTPUT_DNS, NULL, NULL};
	int dns = cfg->capture_all || dpinit_count(cfg, family) > 0;
	char cidr[INET6_ADDRSTRLEN + 8];
	size_t i;
	int rc;

	if (dns)
		used[1] = RAW_INBOUND;
	if ((rc = dpinit_buf_printf(out, "* raw\n")) != 0 ||
	    (rc = declare_all(out, form, "raw", raw_chains, used, save,
	         savelen)) != 0 ||
	    (rc = jump(out, form, save, savelen, "raw", JUMP_RAW_OUTPUT)) !=
	        0 ||
	    (rc = render_owner_zones(cfg, out)) != 0)
		return rc;
	if (dns && (rc = jump(out, form, save, savelen, "raw",
	                JUMP_RAW_PREROUTING)) != 0)
		return rc;
	if (cfg->capture_all)
		rc = dpinit_buf_printf(out,
		    "-A " OUTPUT_DNS " -p udp --dport 53 -j CT --zone 2\n"
		    "-A " RAW_INBOUND " -p udp --sport 53 -j CT --zone 1\n");
	for (i = 0; rc == 0 && !cfg->capture_all && i < cfg->nservers; i++) {
		if (cfg->servers[i].family != family)
			continue;
		if ((rc = server_cidr(&cfg->servers[i], cidr, sizeof(cidr))) !=
		    0)
			break;
		rc = dpinit_buf_printf(out,
		    "-A " OUTPUT_DNS " -p udp --dport 53 -d %s -j CT --zone 2\n"
		    "-A " RAW_INBOUND
		    " -p udp --sport 53 -s %s -j CT --zone 1\n",
		    cidr, cidr);
	}
	if (rc == 0)
		rc = dpinit_buf_printf(out, "COMMIT\n");
	return rc;
}

int
dpinit_rules_render(const struct dpinit_config *cfg, int family,
    enum dpinit_form form, const char *save, size_t savelen,
    struct dpinit_buf *out)
{
	int rc;

	if ((family != AF_INET && family != AF_INET6) || cfg->dns_port == 0)
		return -EINVAL;
	if ((rc = render_nat(cfg, family, form, save, savelen, out)) != 0)
		return rc;
	return render_raw(cfg, family, form, save, savelen, out);
}

static int
is_one_of(const char *word, size_t len, const char *const *set)
{
	size_t i;

	for (i = 0; set[i] != NULL; i++)
		if (strlen(set[i]) == len && memcmp(word, set[i], len) == 0)
			return 1;
	return 0;
}

/*
 * An iptables-save rule of a built-in chain ("-A OUTPUT ...") whose
 * last "-j" target is one of ours.
 */
static int
is_jump_to_ours(const char *line, size_t len, const char *const *ours)
{
	const char *p, *chain, *target = NULL;
	size_t n;

	if (len < 4 || memcmp(line, "-A ", 3) != 0)
		return 0;
	chain = line + 3;
	for (n = 0; chain + n < line + len && chain[n] != ' '; n++)
		;
	if (!is_one_of(chain, n, builtin_chains))
		return 0;
	for (p = chain + n; p + 4 <= line + len; p++)
		if (memcmp(p, " -j ", 4) == 0)
			target = p + 4;
	if (target == NULL)
		return 0;
	for (n = 0; target + n < line + len && target[n] != ' '; n++)
		;
	return is_one_of(target, n, ours);
}

/* The removal of one table's jumps and chains, or nothing. */
static int
cleanup_table(const char *table, const char *const *ours, const char *save,
    size_t savelen, const char *const *default_jumps, struct dpinit_buf *out)
{
	struct save_iter it;
	const char *line, *present[4];
	size_t len, i, np = 0;
	int rc = 0;

	for (i = 0; ours[i] != NULL; i++)
		if (save == NULL ||
		    dpinit_save_has_chain(save, savelen, table, ours[i]))
			present[np++] = ours[i];
	if (np == 0)
		return 0;
	if ((rc = dpinit_buf_printf(out, "* %s\n", table)) != 0)
		return rc;
	for (i = 0; save == NULL && rc == 0 && default_jumps[i] != NULL; i++)
		rc = dpinit_buf_printf(out, "-D%s\n", default_jumps[i] + 2);
	save_start(&it, save, savelen);
	while (rc == 0 && save_next(&it, &line, &len))
		if (strcmp(it.table, table) == 0 &&
		    is_jump_to_ours(line, len, ours))
			rc = dpinit_buf_printf(out, "-D%.*s\n", (int)(len - 2),
			    line + 2);
	for (i = 0; rc == 0 && i < np; i++)
		rc = dpinit_buf_printf(out, "-F %s\n", present[i]);
	for (i = 0; rc == 0 && i < np; i++)
		rc = dpinit_buf_printf(out, "-X %s\n", present[i]);
	if (rc == 0)
		rc = dpinit_buf_printf(out, "COMMIT\n");
	return rc;
}

int
dpinit_rules_cleanup(const char *save, size_t savelen, struct dpinit_buf *out)
{
	static const char *const nat_jumps[] = {JUMP_NAT_OUTPUT, NULL};
	static const char *const raw_jumps[] = {
	    JUMP_RAW_OUTPUT, JUMP_RAW_PREROUTING, NULL};
	int rc;

	if ((rc = cleanup_table("nat", nat_chains, save, savelen, nat_jumps,
	         out)) != 0)
		return rc;
	return cleanup_table("raw", raw_chains, save, savelen, raw_jumps, out);
}

/* "ip daddr 10.96.0.10/32" or "ip6 saddr 2001:db8::a/128". */
static int
nft_addr(const struct rsv_nameserver *ns, const char *dir, char *buf,
    size_t len)
{
	char cidr[INET6_ADDRSTRLEN + 8];
	int n, rc;

	if ((rc = server_cidr(ns, cidr, sizeof(cidr))) != 0)
		return rc;
	n = snprintf(buf, len, "%s %s %s", ns->family == AF_INET ? "ip" : "ip6",
	    dir, cidr);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* The nameservers in nft order: every IPv4 one, then every IPv6 one. */
static const struct rsv_nameserver *
nft_server(const struct dpinit_config *cfg, size_t k)
{
	int fam[2] = {AF_INET, AF_INET6};
	size_t f, i;

	for (f = 0; f < 2; f++)
		for (i = 0; i < cfg->nservers; i++)
			if (cfg->servers[i].family == fam[f] && k-- == 0)
				return &cfg->servers[i];
	return NULL;
}

static int
nft_nat(const struct dpinit_config *cfg, struct dpinit_buf *out)
{
	const char *protos[2] = {"tcp", "udp"};
	const struct rsv_nameserver *ns;
	char match[INET6_ADDRSTRLEN + 24];
	size_t k, p;
	int rc;

	rc = dpinit_buf_printf(out,
	    "add table " NFT_NAT "\n"
	    "delete table " NFT_NAT "\n"
	    "add table " NFT_NAT "\n"
	    "add chain " NFT_NAT " output { type nat hook output priority -100 "
	    "; }\n"
	    "add chain " NFT_NAT " istio-output\n"
	    "add chain " NFT_NAT " istio-output-dns\n"
	    "add rule " NFT_NAT " output jump istio-output\n"
	    "add rule " NFT_NAT " istio-output meta skuid %lu return\n"
	    "add rule " NFT_NAT " istio-output meta skgid %lu return\n"
	    "add rule " NFT_NAT " istio-output jump istio-output-dns\n",
	    (unsigned long)cfg->uid, (unsigned long)cfg->gid);
	for (p = 0; rc == 0 && p < 2; p++) {
		if (cfg->capture_all) {
			rc = dpinit_buf_printf(out,
			    "add rule " NFT_NAT " istio-output-dns %s dport 53 "
			    "redirect to :%u\n",
			    protos[p], cfg->dns_port);
			continue;
		}
		for (k = 0; rc == 0 && (ns = nft_server(cfg, k)) != NULL; k++)
			if ((rc = nft_addr(ns, "daddr", match,
			         sizeof(match))) == 0)
				rc = dpinit_buf_printf(out,
				    "add rule " NFT_NAT " istio-output-dns %s "
				    "%s dport 53 redirect to :%u\n",
				    match, protos[p], cfg->dns_port);
	}
	return rc;
}

static int
nft_raw(const struct dpinit_config *cfg, struct dpinit_buf *out)
{
	const struct rsv_nameserver *ns;
	char dst[INET6_ADDRSTRLEN + 24], src[INET6_ADDRSTRLEN + 24];
	unsigned long uid = cfg->uid, gid = cfg->gid;
	unsigned port = cfg->dns_port;
	size_t k;
	int rc;

	/* A "return" after each zone set keeps first-match order explicit. */
	rc = dpinit_buf_printf(out,
	    "add table " NFT_RAW "\n"
	    "delete table " NFT_RAW "\n"
	    "add table " NFT_RAW "\n"
	    "add chain " NFT_RAW " prerouting { type filter hook prerouting "
	    "priority raw ; }\n"
	    "add chain " NFT_RAW " output { type filter hook output priority "
	    "raw ; }\n"
	    "add chain " NFT_RAW " istio-inbound\n"
	    "add chain " NFT_RAW " istio-output-dns\n"
	    "add rule " NFT_RAW " output jump istio-output-dns\n"
	    "add rule " NFT_RAW " istio-output-dns udp dport 53 meta skuid %lu "
	    "ct zone set 1 return\n"
	    "add rule " NFT_RAW " istio-output-dns udp sport %u meta skuid %lu "
	    "ct zone set 2 return\n"
	    "add rule " NFT_RAW " istio-output-dns udp dport 53 meta skgid %lu "
	    "ct zone set 1 return\n"
	    "add rule " NFT_RAW " istio-output-dns udp sport %u meta skgid %lu "
	    "ct zone set 2 return\n"
	    "add rule " NFT_RAW " prerouting jump istio-inbound\n",
	    uid, port, uid, gid, port, gid);
	if (rc == 0 && cfg->capture_all)
		rc = dpinit_buf_printf(out,
		    "add rule " NFT_RAW
		    " istio-output-dns udp dport 53 ct zone "
		    "set 2 return\n"
		    "add rule " NFT_RAW
		    " istio-inbound udp sport 53 ct zone set "
		    "1 return\n");
	for (k = 0;
	     rc == 0 && !cfg->capture_all && (ns = nft_server(cfg, k)) != NULL;
	     k++) {
		if ((rc = nft_addr(ns, "daddr", dst, sizeof(dst))) != 0 ||
		    (rc = nft_addr(ns, "saddr", src, sizeof(src))) != 0)
			break;
		rc = dpinit_buf_printf(out,
		    "add rule " NFT_RAW " istio-output-dns udp dport 53 %s ct "
		    "zone set 2 return\n"
		    "add rule " NFT_RAW
		    " istio-inbound udp sport 53 %s ct zone "
		    "set 1 return\n",
		    dst, src);
	}
	return rc;
}

int
dpinit_nft_render(const struct dpinit_config *cfg, struct dpinit_buf *out)
{
	int rc;

	if (cfg->dns_port == 0)
		return -EINVAL;
	if ((rc = nft_nat(cfg, out)) != 0)
		return rc;
	return nft_raw(cfg, out);
}

int
dpinit_nft_cleanup(struct dpinit_buf *out)
{
	/* "add" first makes "delete" succeed when the table is absent. */
	return dpinit_buf_printf(out, "add table " NFT_NAT "\n"
	                              "delete table " NFT_NAT "\n"
	                              "add table " NFT_RAW "\n"
	                              "delete table " NFT_RAW "\n");
}

int
dpinit_render_dryrun(const struct dpinit_config *cfg,
    enum dpinit_backend backend, int cleanup, struct dpinit_buf *out)
{
	int fam[2] = {AF_INET, AF_INET6};
	const char *cmd[2] = {"iptables-restore", "ip6tables-restore"};
	size_t f;
	int rc = 0;

	if (!cleanup && !dpinit_wanted(cfg))
		return 0;
	if (backend == DPINIT_NFT) {
		if ((rc = dpinit_buf_printf(out, "# nft -f -\n")) != 0)
			return rc;
		return cleanup ? dpinit_nft_cleanup(out)
		               : dpinit_nft_render(cfg, out);
	}
	for (f = 0; rc == 0 && f < (cfg->ipv6 ? 2u : 1u); f++) {
		if ((rc = dpinit_buf_printf(out, "# %s --noflush\n", cmd[f])) !=
		    0)
			break;
		if (cleanup)
			rc = dpinit_rules_cleanup(NULL, 0, out);
		else
			rc = dpinit_rules_render(cfg, fam[f], DPINIT_LISTING,
			    NULL, 0, out);
	}
	return rc;
}
