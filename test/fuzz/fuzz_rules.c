/*
 * libFuzzer target: dnsproxy-init's rule rendering against arbitrary
 * iptables-save text (the "jump already there?" and cleanup parsers).
 * Input: one flag byte, resolv.conf text up to the first NUL, then the
 * iptables-save text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "iptables/dpinit.h"
#include "resolver/resolvconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Non-empty output must be whole restore tables. */
static void
check_tables(const struct dpinit_buf *b)
{
	static const char tail[] = "COMMIT\n";

	if (b->len == 0)
		return;
	if (b->len < sizeof(tail) - 1 || b->data[b->len] != '\0' ||
	    strcmp(b->data + b->len - (sizeof(tail) - 1), tail) != 0 ||
	    b->data[0] != '*')
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rsv_resolvconf *rc = NULL;
	struct dpinit_config cfg;
	struct dpinit_buf out = {0};
	const char *text, *nul, *save;
	size_t tlen, slen;

	if (size < 1)
		return 0;
	text = (const char *)data + 1;
	nul = memchr(text, '\0', size - 1);
	tlen = nul != NULL ? (size_t)(nul - text) : size - 1;
	save = nul != NULL ? nul + 1 : text + tlen;
	slen = size - 1 - tlen - (nul != NULL);
	if (rsv_resolvconf_parse(text, tlen, &rc) != 0)
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	cfg.servers = rc->servers;
	cfg.nservers = rc->nservers;
	cfg.capture_all = data[0] & 1;
	cfg.uid = data[0];
	cfg.gid = 1337;
	cfg.dns_port = (uint16_t)(15053 + (data[0] >> 4));
	cfg.ipv6 = 1;

	if (dpinit_rules_render(&cfg, (data[0] & 2) ? AF_INET6 : AF_INET,
	        DPINIT_APPLY, save, slen, &out) != 0)
		abort();
	check_tables(&out);
	dpinit_buf_fini(&out);
	if (dpinit_rules_cleanup(save, slen, &out) != 0)
		abort();
	check_tables(&out);
	dpinit_buf_fini(&out);
	if (dpinit_nft_render(&cfg, &out) != 0 || out.len == 0)
		abort();
	dpinit_buf_fini(&out);
	(void)dpinit_save_has_rule(save, slen, "nat",
	    "-A OUTPUT -j ISTIO_OUTPUT");
	(void)dpinit_save_has_chain(save, slen, "raw", "ISTIO_INBOUND");
	rsv_resolvconf_free(rc);
	return 0;
}
