/*
 * dpinit.h: dnsproxy-init's private header (SPEC §7).  No other part of
 * the tree includes it.
 *
 *	struct dpinit_config cfg = { servers, n, 0, 1337, 1337, 15053, 1 };
 *	struct dpinit_buf b = { 0 };
 *	dpinit_render_dryrun(&cfg, DPINIT_IPTABLES, 0, &b);	--dry-run text
 *	dpinit_exec_run(save_argv, NULL, 0, &save, err, len, &st);
 *	dpinit_rules_render(&cfg, AF_INET, DPINIT_APPLY, save.data,
 *	    save.len, &b);		iptables-restore --noflush input
 *	dpinit_exec_run(restore_argv, b.data, b.len, NULL, err, len, &st);
 *	dpinit_buf_fini(&b);
 *
 * rules.c is pure (config and iptables-save text in, script text out),
 * exec.c is the only file doing I/O, main.c holds flags and exit codes.
 */
#ifndef DNSPROXY_IPTABLES_DPINIT_H
#define DNSPROXY_IPTABLES_DPINIT_H

#include <stddef.h>
#include <stdint.h>

struct rsv_nameserver;

/* Growable text buffer; zero-initialise, release with dpinit_buf_fini. */
struct dpinit_buf {
	char *data; /* NUL-terminated when len > 0 */
	size_t len; /* bytes used, without the NUL */
	size_t cap; /* bytes allocated */
};

/* What to capture and where to send it. */
struct dpinit_config {
	const struct rsv_nameserver *servers; /* borrowed; resolv.conf order */
	size_t nservers;
	int capture_all;   /* every port-53 destination, not the servers */
	uint32_t uid;      /* proxy uid whose traffic is exempt (1337) */
	uint32_t gid;      /* proxy gid whose traffic is exempt (1337) */
	uint16_t dns_port; /* the proxy's port on 127.0.0.1 / ::1 (15053) */
	int ipv6;          /* 0: leave ip6tables alone (no IPv6 here) */
};

enum dpinit_backend {
	DPINIT_IPTABLES, /* iptables-restore + ip6tables-restore */
	DPINIT_NFT,      /* nft -f, tables inet istio-proxy-{nat,raw} */
};

enum dpinit_form {
	/*
	 * Istio's text: "-N CHAIN" declarations and every jump; what
	 * --dry-run prints and istio-iptables would emit (SPEC §7).
	 */
	DPINIT_LISTING,
	/*
	 * What is applied: ":CHAIN - [0:0]" (creates or flushes the chain
	 * under --noflush) and a jump from a built-in chain only when the
	 * given iptables-save text lacks it, so applying twice is a no-op.
	 */
	DPINIT_APPLY,
};

/* Appends printf-style text.  0 or -ENOMEM (the buffer is kept). */
int dpinit_buf_printf(struct dpinit_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends len bytes.  0 or -ENOMEM. */
int dpinit_buf_append(struct dpinit_buf *b, const char *p, size_t len);

/* Frees the text and zeroes the struct.  NULL-safe. */
void dpinit_buf_fini(struct dpinit_buf *b);

/* Nameservers of family (AF_INET or AF_INET6) in cfg. */
size_t dpinit_count(const struct dpinit_config *cfg, int family);

/* Nonzero when there is anything to capture (servers or capture-all). */
int dpinit_wanted(const struct dpinit_config *cfg);

/*
 * Appends the iptables-restore input (nat, then raw) for family
 * (AF_INET or AF_INET6) in the given form.  save/savelen is the current
 * iptables-save (ip6tables-save) output, read only in DPINIT_APPLY form;
 * NULL means empty.  0, -EINVAL (bad family or port) or -ENOMEM.
 */
int dpinit_rules_render(const struct dpinit_config *cfg, int family,
    enum dpinit_form form, const char *save, size_t savelen,
    struct dpinit_buf *out);

/*
 * Appends the iptables-restore --noflush input that removes what
 * dpinit_rules_render added: every rule of a built-in chain that jumps
 * to one of our chains (as iptables-save lists it), then flush and delete
 * of our chains that exist.  save == NULL assumes the whole rule set is
 * present (--dry-run).  Appends nothing when nothing is there.  0 or
 * -ENOMEM.
 */
int dpinit_rules_cleanup(const char *save, size_t savelen,
    struct dpinit_buf *out);

/*
 * Nonzero when the iptables-save text has, in table ("nat", "raw"), the
 * line rule ("-A OUTPUT -j ISTIO_OUTPUT"), compared without trailing
 * blanks.  Pure; fuzzed.
 */
int dpinit_save_has_rule(const char *save, size_t savelen, const char *table,
    const char *rule);

/* Nonzero when the iptables-save text declares chain in table. */
int dpinit_save_has_chain(const char *save, size_t savelen, const char *table,
    const char *chain);

/*
 * Appends the nft -f script: tables inet istio-proxy-nat and
 * inet istio-proxy-raw, replaced atomically (add, delete, add).
 * 0, -EINVAL or -ENOMEM.
 */
int dpinit_nft_render(const struct dpinit_config *cfg, struct dpinit_buf *out);

/* Appends the nft -f script deleting both tables ("not found" is fine). */
int dpinit_nft_cleanup(struct dpinit_buf *out);

/*
 * Appends exactly what --dry-run prints: for iptables the IPv4 then the
 * IPv6 iptables-restore input (DPINIT_LISTING form), each under a comment
 * naming the command; for nft the script under "# nft -f -".  With
 * cleanup, the removal scripts instead (assuming everything is present).
 * Nothing when !dpinit_wanted(cfg) and !cleanup.  0, -EINVAL or -ENOMEM.
 */
int dpinit_render_dryrun(const struct dpinit_config *cfg,
    enum dpinit_backend backend, int cleanup, struct dpinit_buf *out);

/* exec.c: the only file that touches processes and files. */

/*
 * Runs argv (argv[0] looked up in PATH, no shell) with in/inlen on its
 * stdin, collecting stdout into out (NULL: discarded) and the start of
 * stderr into err (always NUL-terminated).  Kills it after timeout_ms.
 * 0 when it ran: *status is its exit code, or -1 when killed by a signal
 * or the timeout.  -ENOENT when argv[0] is not installed; other negative
 * errno when it could not be started.
 */
int dpinit_exec_run(const char *const *argv, const char *in, size_t inlen,
    struct dpinit_buf *out, char *err, size_t errlen, int timeout_ms,
    int *status);

/* 1 when an executable name is found in PATH, else 0. */
int dpinit_exec_which(const char *name);

/* Reads a whole file (at most max bytes).  0 or negative errno. */
int dpinit_exec_read_file(const char *path, size_t max, struct dpinit_buf *out);

/* 1 when this network namespace has IPv6 (/proc/net/if_inet6), else 0. */
int dpinit_exec_have_ipv6(void);

#endif
