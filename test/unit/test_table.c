/*
 * test_table.c: NameTable collection, expansion (SPEC §2) and lookup
 * (SPEC §3 step 4), through the public API of nds/nds.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/*
 * table.c itself, with its allocator counted, so that every allocation
 * of a build can be made to fail (the library's copy is not linked).
 */
#include "test/unit/allocfail.h"

#define malloc counted_malloc
#define calloc counted_calloc
#define realloc counted_realloc
#define SCR_MIN 1 /* scratch for the small tables here too */
#include "nds/table.c"
#undef malloc
#undef calloc
#undef realloc

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NOALT ((const char *const *)NULL)

static size_t
count(const char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

static void
add(struct nds_nametable *nt, const char *key, const char *registry,
    const char *shortname, const char *ns, const char *const *ips,
    const char *const *alt)
{
	struct nds_nameinfo in = {.ips = ips,
	    .nips = count(ips),
	    .registry = registry,
	    .shortname = shortname,
	    .ns = ns,
	    .alt_hosts = alt,
	    .nalt = count(alt)};

	assert_int_equal(nds_nametable_add(nt, key, &in), 0);
}

static struct nds_nametable *
nametable(void)
{
	struct nds_nametable *nt;

	assert_int_equal(nds_nametable_create(&nt), 0);
	return nt;
}

static struct nds_table *
build(struct nds_nametable *nt, const char *ns, const char *domain,
    const char *search0)
{
	struct nds_build_opts o = {
	    .namespace = ns, .domain = domain, .search0 = search0, .ttl = 30};
	struct nds_table *t;
	char err[256] = "";
	int rc;

	rc = nds_table_build(nt, &o, &t, err, sizeof(err));
	if (rc != 0)
		fail_msg("build: %d %s", rc, err);
	return t;
}

/* The proxy of the SPEC §8 fixture: namespace ns1, search[0] its domain. */
static const struct nds_build_opts ns1_opts = {.namespace = "ns1",
    .domain = "ns1.svc.cluster.local",
    .search0 = "ns1.svc.cluster.local",
    .ttl = 30};

/* The SPEC §8 fixture. */
static void
fixture_add(struct nds_nametable *nt)
{
	const char *v6 = "2001:db8::ff00:42:8329";

	add(nt, "www.google.com", "External", NULL, NULL, LIST("1.1.1.1"),
	    NOALT);
	add(nt, "productpage.ns1.svc.cluster.local", "Kubernetes",
	    "productpage", "ns1", LIST("9.9.9.9"), NOALT);
	add(nt, "example.ns2.svc.cluster.local", "Kubernetes", "example", "ns2",
	    LIST("10.10.10.10"), NOALT);
	add(nt, "details.ns2.svc.cluster.remote", "Kubernetes", "details",
	    "ns2",
	    LIST("11.11.11.11", "12.12.12.12", "13.13.13.13", "14.14.14.14"),
	    NOALT);
	add(nt, "svc-with-alt.ns1.svc.cluster.local", "Kubernetes",
	    "svc-with-alt", "ns1", LIST("15.15.15.15"),
	    LIST("svc-with-alt.ns1.svc.clusterset.local"));
	add(nt, "ipv6.localhost", "External", NULL, NULL, LIST(v6), NOALT);
	add(nt, "dual.localhost", "External", NULL, NULL, LIST("2.2.2.2", v6),
	    NOALT);
	add(nt, "ipv4.localhost", "External", NULL, NULL, LIST("2.2.2.2"),
	    NOALT);
	add(nt, "*.b.wildcard", "External", NULL, NULL, LIST("11.11.11.11"),
	    NOALT);
	add(nt, "*.wildcard", "External", NULL, NULL, LIST("10.10.10.10"),
	    NOALT);
	add(nt, "*.svc.mesh.company.net", "External", NULL, NULL,
	    LIST("10.1.2.3"), NOALT);
	add(nt, "example.localhost.", "External", NULL, NULL, LIST("3.3.3.3"),
	    NOALT);
}

static struct nds_table *
fixture(void)
{
	struct nds_nametable *nt = nametable();

	fixture_add(nt);
	return build(nt, "ns1", "ns1.svc.cluster.local",
	    "ns1.svc.cluster.local");
}

/*
 * The answer to q as one line: "cname=T a=V4,.. aaaa=V6,.. origin=KEY", or
 * "ENOENT".  Checks the answer's own invariants on the way.
 */
static void
answer_str(const struct nds_table *t, const char *q, char *out, size_t len)
{
	struct nds_answer a;
	char ip[INET6_ADDRSTRLEN];
	size_t o = 0;
	uint32_t i;
	int rc = nds_table_lookup(t, q, strlen(q), &a);

	if (rc == -ENOENT) {
		snprintf(out, len, "ENOENT");
		return;
	}
	assert_int_equal(rc, 0);
	if (a.target != NULL) {
		assert_true(a.target_len > 0);
		assert_int_equal(a.target[a.target_len - 1], '.');
		o += snprintf(out + o, len - o, "cname=%.*s ",
		    (int)a.target_len, a.target);
	}
	o += snprintf(out + o, len - o, "a=");
	for (i = 0; i < a.n4; i++)
		o += snprintf(out + o, len - o, "%s%s", i ? "," : "",
		    inet_ntop(AF_INET, a.v4 + 4 * i, ip, sizeof(ip)));
	o += snprintf(out + o, len - o, " aaaa=");
	for (i = 0; i < a.n6; i++)
		o += snprintf(out + o, len - o, "%s%s", i ? "," : "",
		    inet_ntop(AF_INET6, a.v6 + 16 * i, ip, sizeof(ip)));
	assert_non_null(a.origin);
	snprintf(out + o, len - o, " origin=%.*s", (int)a.origin_len, a.origin);
}

static void
expect(const struct nds_table *t, const char *q, const char *want)
{
	char got[1024];

	answer_str(t, q, got, sizeof(got));
	if (strcmp(got, want) != 0)
		fail_msg("%s\n  got:  %s\n  want: %s", q, got, want);
}

struct lookup_case {
	const char *q;
	const char *want;
};

static void
expect_all(const struct nds_table *t, const struct lookup_case *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		expect(t, c[i].q, c[i].want);
}

#define PP "productpage.ns1.svc.cluster.local"
#define EX "example.ns2.svc.cluster.local"
#define ALT "svc-with-alt.ns1.svc.cluster.local"
#define V6 "2001:db8::ff00:42:8329"

/* SPEC §8 cases answered locally, with this project's D17/D18 answers. */
static const struct lookup_case spec8_local[] = {
    /* 1, 2 */
    {"www.google.com.", "a=1.1.1.1 aaaa= origin=www.google.com"},
    {"www.google.com.ns1.svc.cluster.local.",
        "cname=www.google.com. a=1.1.1.1 aaaa= origin=www.google.com"},
    /* 4, 6, 7 */
    {PP ".", "a=9.9.9.9 aaaa= origin=" PP},
    {"productpage.ns1.", "a=9.9.9.9 aaaa= origin=" PP},
    {"productpage.", "a=9.9.9.9 aaaa= origin=" PP},
    /* 8 and 9 (D18: the CNAME names the service FQDN; no AAAA) */
    {"productpage.ns1.ns1.svc.cluster.local.",
        "cname=" PP ". a=9.9.9.9 aaaa= origin=" PP},
    /* 10-12 */
    {"example.ns2.", "a=10.10.10.10 aaaa= origin=" EX},
    {EX ".", "a=10.10.10.10 aaaa= origin=" EX},
    {"example.ns2.svc.", "a=10.10.10.10 aaaa= origin=" EX},
    /* 14-18 */
    {"svc-with-alt.", "a=15.15.15.15 aaaa= origin=" ALT},
    {"svc-with-alt.ns1.", "a=15.15.15.15 aaaa= origin=" ALT},
    {"svc-with-alt.ns1.svc.", "a=15.15.15.15 aaaa= origin=" ALT},
    {ALT ".", "a=15.15.15.15 aaaa= origin=" ALT},
    {"svc-with-alt.ns1.svc.clusterset.local.",
        "a=15.15.15.15 aaaa= origin=" ALT},
    /* 19, 20: NameInfo order; the shuffle is the resolver's */
    {"details.ns2.svc.cluster.remote.",
        "a=11.11.11.11,12.12.12.12,13.13.13.13,14.14.14.14 aaaa= "
        "origin=details.ns2.svc.cluster.remote"},
    /* 22, 29 (one lookup serves A and AAAA) */
    {"dual.localhost.", "a=2.2.2.2 aaaa=" V6 " origin=dual.localhost"},
    /* 23, 24 (most specific wildcard) */
    {"foo.wildcard.", "a=10.10.10.10 aaaa= origin=*.wildcard"},
    {"a.b.wildcard.", "a=11.11.11.11 aaaa= origin=*.b.wildcard"},
    /* 25 (D17: concrete target) */
    {"foo.wildcard.ns1.svc.cluster.local.",
        "cname=foo.wildcard. a=10.10.10.10 aaaa= origin=*.wildcard"},
    /* 26, 27 */
    {"foo.svc.mesh.company.net.",
        "a=10.1.2.3 aaaa= origin=*.svc.mesh.company.net"},
    {"foo.foons.svc.mesh.company.net.",
        "a=10.1.2.3 aaaa= origin=*.svc.mesh.company.net"},
    /* 28 (D17) */
    {"foo.svc.mesh.company.net.ns1.svc.cluster.local.",
        "cname=foo.svc.mesh.company.net. a=10.1.2.3 aaaa= "
        "origin=*.svc.mesh.company.net"},
    /* 30, 31: known names, the other family empty (NODATA) */
    {"ipv6.localhost.", "a= aaaa=" V6 " origin=ipv6.localhost"},
    {"ipv4.localhost.", "a=2.2.2.2 aaaa= origin=ipv4.localhost"},
    /* 36 */
    {"example.localhost.", "a=3.3.3.3 aaaa= origin=example.localhost."},
};

static void
test_spec8_local_answers(void **state)
{
	struct nds_table *t = fixture();

	(void)state;
	expect_all(t, spec8_local, sizeof(spec8_local) / sizeof(*spec8_local));
	nds_table_unref(t);
}

/* Cases 3, 5, 13, 21, 32-35 and other names that must be forwarded. */
static void
test_spec8_forwarded_names_are_unknown(void **state)
{
	static const char *const unknown[] = {
	    "www.bing.com.",
	    PP ".ns1.svc.cluster.local.", /* 5: FQDN ends in search0 */
	    "example.",                   /* 13: not our namespace */
	    "details.ns2.",               /* 21: remote domain */
	    "details.ns2.svc.", "giant.", "giant-tc.",
	    "example.localhost..",      /* no double dot */
	    "example.ns2.svc.cluster.", /* never name.ns.svc.cluster. */
	    "productpage.ns1.svc.cluster.local", /* no trailing dot */
	    "PRODUCTPAGE.", /* lower-casing is the caller's job */
	};
	struct nds_table *t = fixture();
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(unknown) / sizeof(*unknown); i++)
		expect(t, unknown[i], "ENOENT");
	nds_table_unref(t);
}

static void
test_fixture_counts_entries_and_names(void **state)
{
	struct nds_table *t = fixture();

	(void)state;
	assert_int_equal(nds_table_entries(t), 12);
	/*
	 * www.google.com 1+1; productpage 4+2; example 3+3; details 1+1;
	 * svc-with-alt 5+3; three localhost 3+3; three wildcards 3+3;
	 * example.localhost. 1+1 (addresses + search CNAMEs).
	 */
	assert_int_equal(nds_table_names(t), 38);
	assert_int_equal(nds_table_ttl(t), 30);
	nds_table_unref(t);
}

static void
test_search_cname_of_short_form_targets_fqdn(void **state)
{
	static const struct lookup_case c[] = {
	    {"productpage.ns1.svc.ns1.svc.cluster.local.",
	        "cname=" PP ". a=9.9.9.9 aaaa= origin=" PP},
	    {"example.ns2.ns1.svc.cluster.local.",
	        "cname=" EX ". a=10.10.10.10 aaaa= origin=" EX},
	    {"example.ns2.svc.ns1.svc.cluster.local.",
	        "cname=" EX ". a=10.10.10.10 aaaa= origin=" EX},
	    {EX ".ns1.svc.cluster.local.",
	        "cname=" EX ". a=10.10.10.10 aaaa= origin=" EX},
	};
	struct nds_table *t = fixture();

	(void)state;
	expect_all(t, c, sizeof(c) / sizeof(*c));
	nds_table_unref(t);
}

static void
test_alt_host_search_cname_targets_itself(void **state)
{
	struct nds_table *t = fixture();

	(void)state;
	expect(t,
	    "svc-with-alt.ns1.svc.clusterset.local.ns1.svc.cluster.local.",
	    "cname=svc-with-alt.ns1.svc.clusterset.local. a=15.15.15.15 "
	    "aaaa= origin=" ALT);
	nds_table_unref(t);
}

/* SPEC §2 worked example: proxy in default, reviews in bookinfo. */
static void
test_worked_example_proxy_in_default(void **state)
{
#define RV "reviews.bookinfo.svc.cluster.local"
	static const struct lookup_case c[] = {
	    {RV ".", "a=10.0.0.9 aaaa= origin=" RV},
	    {"reviews.bookinfo.", "a=10.0.0.9 aaaa= origin=" RV},
	    {"reviews.bookinfo.svc.", "a=10.0.0.9 aaaa= origin=" RV},
	    {RV ".default.svc.cluster.local.",
	        "cname=" RV ". a=10.0.0.9 aaaa= origin=" RV},
	    {"reviews.bookinfo.default.svc.cluster.local.",
	        "cname=" RV ". a=10.0.0.9 aaaa= origin=" RV},
	    {"reviews.bookinfo.svc.default.svc.cluster.local.",
	        "cname=" RV ". a=10.0.0.9 aaaa= origin=" RV},
	    {"reviews.", "ENOENT"},
	    {"reviews.bookinfo.svc.cluster.", "ENOENT"},
	};
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, RV, "Kubernetes", "reviews", "bookinfo", LIST("10.0.0.9"),
	    NOALT);
	t = build(nt, "default", "default.svc.cluster.local",
	    "default.svc.cluster.local");
	expect_all(t, c, sizeof(c) / sizeof(*c));
	assert_int_equal(nds_table_names(t), 6);
	nds_table_unref(t);
}

static void
test_worked_example_proxy_in_bookinfo(void **state)
{
	static const struct lookup_case c[] = {
	    {"reviews.", "a=10.0.0.9 aaaa= origin=" RV},
	    {RV ".", "a=10.0.0.9 aaaa= origin=" RV},
	    {"reviews.bookinfo.bookinfo.svc.cluster.local.",
	        "cname=" RV ". a=10.0.0.9 aaaa= origin=" RV},
	    {"reviews.bookinfo.svc.bookinfo.svc.cluster.local.",
	        "cname=" RV ". a=10.0.0.9 aaaa= origin=" RV},
	    {RV ".bookinfo.svc.cluster.local.", "ENOENT"},
	};
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, RV, "Kubernetes", "reviews", "bookinfo", LIST("10.0.0.9"),
	    NOALT);
	t = build(nt, "bookinfo", "bookinfo.svc.cluster.local",
	    "bookinfo.svc.cluster.local.");
	expect_all(t, c, sizeof(c) / sizeof(*c));
	/* FQDN, reviews.bookinfo., reviews., reviews.bookinfo.svc., and
	 * two CNAMEs: neither reviews. nor the FQDN gets one. */
	assert_int_equal(nds_table_names(t), 6);
	nds_table_unref(t);
#undef RV
}

static void
test_service_entry_gets_search_cname_to_itself(void **state)
{
	static const struct lookup_case c[] = {
	    {"api.example.com.", "a=203.0.113.1 aaaa= origin=api.example.com"},
	    {"api.example.com.default.svc.cluster.local.",
	        "cname=api.example.com. a=203.0.113.1 aaaa= "
	        "origin=api.example.com"},
	    {"x.example.com.", "a=203.0.113.2 aaaa= origin=*.example.com"},
	    {"x.example.com.default.svc.cluster.local.",
	        "cname=x.example.com. a=203.0.113.2 aaaa= "
	        "origin=*.example.com"},
	    {"a.b.example.com.default.svc.cluster.local.",
	        "cname=a.b.example.com. a=203.0.113.2 aaaa= "
	        "origin=*.example.com"},
	};
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "api.example.com", "External", NULL, NULL, LIST("203.0.113.1"),
	    NOALT);
	add(nt, "*.example.com", "External", NULL, NULL, LIST("203.0.113.2"),
	    NOALT);
	t = build(nt, "default", "default.svc.cluster.local",
	    "default.svc.cluster.local");
	expect_all(t, c, sizeof(c) / sizeof(*c));
	nds_table_unref(t);
}

static void
test_per_pod_headless_names(void **state)
{
#define POD "mysql-0.mysql.ns.svc.cluster.local"
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, POD, "Kubernetes", "mysql-0.mysql", "ns", LIST("10.1.0.5"),
	    NOALT);
	add(nt, "mysql.ns.svc.cluster.local", "Kubernetes", "mysql", "ns",
	    LIST("10.1.0.5", "10.1.0.6", "10.1.0.7"), NOALT);
	t = build(nt, "ns", "ns.svc.cluster.local", "ns.svc.cluster.local");
	expect(t, POD ".", "a=10.1.0.5 aaaa= origin=" POD);
	expect(t, "mysql-0.mysql.ns.", "a=10.1.0.5 aaaa= origin=" POD);
	expect(t, "mysql-0.mysql.ns.svc.", "a=10.1.0.5 aaaa= origin=" POD);
	expect(t, "mysql-0.mysql.", "a=10.1.0.5 aaaa= origin=" POD);
	expect(t, "mysql.",
	    "a=10.1.0.5,10.1.0.6,10.1.0.7 aaaa= "
	    "origin=mysql.ns.svc.cluster.local");
	nds_table_unref(t);

	nt = nametable();
	add(nt, POD, "Kubernetes", "mysql-0.mysql", "ns", LIST("10.1.0.5"),
	    NOALT);
	t = build(nt, "other", "other.svc.cluster.local",
	    "other.svc.cluster.local");
	expect(t, "mysql-0.mysql.ns.", "a=10.1.0.5 aaaa= origin=" POD);
	expect(t, "mysql-0.mysql.", "ENOENT");
	expect(t, "mysql-0.mysql.ns.other.svc.cluster.local.",
	    "cname=" POD ". a=10.1.0.5 aaaa= origin=" POD);
	nds_table_unref(t);
#undef POD
}

static void
test_domain_suffix_respects_label_boundary(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "a.bsvc.cluster.local", "Kubernetes", "a", "bsvc",
	    LIST("10.0.0.1"), NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "a.bsvc.cluster.local.",
	    "a=10.0.0.1 aaaa= origin=a.bsvc.cluster.local");
	expect(t, "a.bsvc.", "ENOENT");
	expect(t, "a.bsvc.svc.", "ENOENT");
	/* FQDN and its search CNAME only. */
	assert_int_equal(nds_table_names(t), 2);
	nds_table_unref(t);
}

static void
test_short_forms_need_shortname_and_namespace(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "a.ns1.svc.cluster.local", "Kubernetes", "", "ns1",
	    LIST("10.0.0.1"), LIST("a.alt.example"));
	add(nt, "b.ns1.svc.cluster.local", "Kubernetes", "b", NULL,
	    LIST("10.0.0.2"), NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "a.ns1.svc.cluster.local.",
	    "a=10.0.0.1 aaaa= origin=a.ns1.svc.cluster.local");
	expect(t, "a.alt.example.",
	    "a=10.0.0.1 aaaa= origin=a.ns1.svc.cluster.local");
	expect(t, ".ns1.", "ENOENT");
	expect(t, "ns1.", "ENOENT");
	expect(t, "b.", "ENOENT");
	expect(t, "b..", "ENOENT");
	expect(t, "b..svc.", "ENOENT");
	/* a: FQDN, alt + its CNAME; b: FQDN. */
	assert_int_equal(nds_table_names(t), 4);
	nds_table_unref(t);
}

static void
test_empty_namespace_gives_fqdns_only(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	fixture_add(nt);
	t = build(nt, "", "svc.cluster.local", "svc.cluster.local");
	expect(t, PP ".", "a=9.9.9.9 aaaa= origin=" PP);
	expect(t, "productpage.ns1.", "ENOENT");
	expect(t, "productpage.", "ENOENT");
	expect(t, "productpage.ns1.svc.", "ENOENT");
	/* Alt hosts are fully qualified: kept. */
	expect(t, "svc-with-alt.ns1.svc.clusterset.local.",
	    "a=15.15.15.15 aaaa= origin=" ALT);
	nds_table_unref(t);

	/* The default domain with an empty namespace. */
	nt = nametable();
	fixture_add(nt);
	t = build(nt, "", ".svc.cluster.local", NULL);
	expect(t, "svc-with-alt.ns1.svc.clusterset.local.",
	    "a=15.15.15.15 aaaa= origin=" ALT);
	expect(t, "svc-with-alt.", "ENOENT");
	nds_table_unref(t);

	nt = nametable();
	fixture_add(nt);
	t = build(nt, NULL, NULL, NULL);
	expect(t, PP ".", "a=9.9.9.9 aaaa= origin=" PP);
	expect(t, "productpage.ns1.", "ENOENT");
	expect(t, "www.google.com.", "a=1.1.1.1 aaaa= origin=www.google.com");
	expect(t, "www.google.com.ns1.svc.cluster.local.", "ENOENT");
	/* No domain: one name per entry, not even the alt host. */
	assert_int_equal(nds_table_names(t), 12);
	nds_table_unref(t);
}

static void
test_domain_not_starting_with_namespace_is_used_as_is(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "web.shop.corp.example", "Kubernetes", "web", "shop",
	    LIST("10.0.0.1"), NOALT);
	t = build(nt, "ns1", "corp.example", "");
	expect(t, "web.shop.", "a=10.0.0.1 aaaa= origin=web.shop.corp.example");
	expect(t, "web.shop.corp.",
	    "a=10.0.0.1 aaaa= origin=web.shop.corp.example");
	assert_int_equal(nds_table_names(t), 3);
	nds_table_unref(t);
}

static void
test_own_namespace_short_name_cname_targets_fqdn(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	/* The key is not name.ns.<domain>: name.<search0> is no own name. */
	add(nt, "foo.other.svc.cluster.local", "Kubernetes", "foo", "ns1",
	    LIST("10.0.0.1"), NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "foo.",
	    "a=10.0.0.1 aaaa= origin=foo.other.svc.cluster.local");
	expect(t, "foo.ns1.svc.cluster.local.",
	    "cname=foo.other.svc.cluster.local. a=10.0.0.1 aaaa= "
	    "origin=foo.other.svc.cluster.local");
	nds_table_unref(t);
}

static void
test_kubernetes_beats_external_in_either_order(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	/* "a.ns1." sorts before the Kubernetes key, "zz.ns1." after. */
	add(nt, "a.ns1", "External", NULL, NULL, LIST("192.0.2.1"), NOALT);
	add(nt, "a.ns1.svc.cluster.local", "Kubernetes", "a", "ns1",
	    LIST("10.0.0.1"), NOALT);
	add(nt, "zz.ns1", "External", NULL, NULL, LIST("192.0.2.2"), NOALT);
	add(nt, "zz.ns1.svc.cluster.local", "Kubernetes", "zz", "ns1",
	    LIST("10.0.0.2"), LIST("zz.ns1"));
	add(nt, "b.example", "External", NULL, NULL, LIST("192.0.2.3"), NOALT);
	add(nt, "aa.ns1.svc.cluster.local", "Kubernetes", "aa", "ns1",
	    LIST("10.0.0.3"), LIST("b.example"));
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "a.ns1.", "a=10.0.0.1 aaaa= origin=a.ns1.svc.cluster.local");
	expect(t, "zz.ns1.",
	    "a=10.0.0.2 aaaa= origin=zz.ns1.svc.cluster.local");
	expect(t, "b.example.",
	    "a=10.0.0.3 aaaa= origin=aa.ns1.svc.cluster.local");
	nds_table_unref(t);
}

static void
test_external_duplicates_append_ips_per_family(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "svc.example", "External", NULL, NULL,
	    LIST("192.0.2.1", "2001:db8::1", "192.0.2.2"), NOALT);
	add(nt, "svc.example.", "Mock", NULL, NULL,
	    LIST("2001:db8::2", "192.0.2.3"), NOALT);
	add(nt, "other.example", "External", NULL, NULL, LIST("192.0.2.9"),
	    NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "svc.example.",
	    "a=192.0.2.1,192.0.2.2,192.0.2.3 aaaa=2001:db8::1,2001:db8::2 "
	    "origin=svc.example");
	expect(t, "svc.example.ns1.svc.cluster.local.",
	    "cname=svc.example. a=192.0.2.1,192.0.2.2,192.0.2.3 "
	    "aaaa=2001:db8::1,2001:db8::2 origin=svc.example");
	expect(t, "other.example.", "a=192.0.2.9 aaaa= origin=other.example");
	assert_int_equal(nds_table_names(t), 4);
	nds_table_unref(t);
}

static void
test_later_kubernetes_key_replaces(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "b.ns1.svc.cluster.local", "Kubernetes", "b", "ns1",
	    LIST("10.0.0.2"), LIST("shared.example"));
	add(nt, "a.ns1.svc.cluster.local", "Kubernetes", "a", "ns1",
	    LIST("10.0.0.1"), LIST("shared.example"));
	add(nt, "c.ns1.svc.cluster.local", "Kubernetes", "c", "ns1",
	    LIST("10.0.0.3"), LIST("b.ns1.svc.cluster.local"));
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "shared.example.",
	    "a=10.0.0.2 aaaa= origin=b.ns1.svc.cluster.local");
	expect(t, "b.ns1.svc.cluster.local.",
	    "a=10.0.0.3 aaaa= origin=c.ns1.svc.cluster.local");
	/* b's short forms still name b's FQDN, which now answers for c. */
	expect(t, "b.ns1.ns1.svc.cluster.local.",
	    "cname=b.ns1.svc.cluster.local. a=10.0.0.3 aaaa= "
	    "origin=c.ns1.svc.cluster.local");
	expect(t, "b.", "a=10.0.0.2 aaaa= origin=b.ns1.svc.cluster.local");
	nds_table_unref(t);
}

/*
 * Short forms of a canonical FQDN are derived at lookup, not stored: where
 * another entry stores the same name (an alt host), the precedence is
 * that of the full expansion, in both key orders (D13, D18).
 */
static void
test_derived_short_forms_keep_precedence(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "m.ns1.svc.cluster.local", "Kubernetes", "m", "ns1",
	    LIST("10.0.0.1"), NOALT);
	/* Sorted before m: m's short form wins. */
	add(nt, "a.ns2.svc.cluster.local", "Kubernetes", "a", "ns2",
	    LIST("10.0.0.2"), LIST("m.ns1"));
	/* Sorted after m: its alt host replaces m's short form. */
	add(nt, "z.ns2.svc.cluster.local", "Kubernetes", "z", "ns2",
	    LIST("10.0.0.3"), LIST("m.ns1.svc"));
	/* Not Kubernetes: never beats m's short form (D5). */
	add(nt, "m", "External", NULL, NULL, LIST("10.0.0.4"), NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "m.ns1.", "a=10.0.0.1 aaaa= origin=m.ns1.svc.cluster.local");
	expect(t, "m.ns1.ns1.svc.cluster.local.",
	    "cname=m.ns1.svc.cluster.local. a=10.0.0.1 aaaa= "
	    "origin=m.ns1.svc.cluster.local");
	expect(t, "m.ns1.svc.",
	    "a=10.0.0.3 aaaa= origin=z.ns2.svc.cluster.local");
	expect(t, "m.ns1.svc.ns1.svc.cluster.local.",
	    "cname=m.ns1.svc. a=10.0.0.3 aaaa= "
	    "origin=z.ns2.svc.cluster.local");
	expect(t, "m.", "a=10.0.0.1 aaaa= origin=m.ns1.svc.cluster.local");
	/* The FQDN already ends with search[0]: no CNAME (D9). */
	expect(t, "m.ns1.svc.cluster.local.ns1.svc.cluster.local.", "ENOENT");
	/* "m." + search[0] is m's FQDN, an address name: no CNAME (D14). */
	expect(t, "m.ns1.svc.cluster.local.",
	    "a=10.0.0.1 aaaa= origin=m.ns1.svc.cluster.local");
	assert_int_equal(nds_table_names(t), 18);
	nds_table_unref(t);
}

/* A namespace longer than two names: no short forms, no overflow. */
static void
test_long_namespace_is_harmless(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;
	char ns[600];

	(void)state;
	memset(ns, 'n', sizeof(ns) - 1);
	ns[sizeof(ns) - 1] = '\0';
	add(nt, "a.b.svc.cluster.local", "Kubernetes", "a", "b",
	    LIST("10.0.0.1"), NOALT);
	t = build(nt, ns, "svc.cluster.local", "svc.cluster.local");
	expect(t, "a.b.", "a=10.0.0.1 aaaa= origin=a.b.svc.cluster.local");
	expect(t, "a.b.svc.", "a=10.0.0.1 aaaa= origin=a.b.svc.cluster.local");
	expect(t, "a.", "ENOENT");
	nds_table_unref(t);
}

static void
test_address_name_never_becomes_cname(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	/* CNAME source sorts first, the address name comes later. */
	add(nt, "a", "External", NULL, NULL, LIST("192.0.2.1"), NOALT);
	add(nt, "a.ns1.svc.cluster.local", "External", NULL, NULL,
	    LIST("192.0.2.2"), NOALT);
	/* Address name first (an alt host), CNAME source later. */
	add(nt, "aaa.ns1.svc.cluster.local", "Kubernetes", "aaa", "ns1",
	    LIST("10.0.0.1"), LIST("zzz.ns1.svc.cluster.local"));
	add(nt, "zzz", "External", NULL, NULL, LIST("192.0.2.3"), NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "a.ns1.svc.cluster.local.",
	    "a=192.0.2.2 aaaa= origin=a.ns1.svc.cluster.local");
	expect(t, "zzz.ns1.svc.cluster.local.",
	    "a=10.0.0.1 aaaa= origin=aaa.ns1.svc.cluster.local");
	expect(t, "zzz.", "a=192.0.2.3 aaaa= origin=zzz");
	nds_table_unref(t);
}

static void
test_cname_collision_later_key_replaces(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	/* Both make x.foo.ns1.svc.cluster.local. a CNAME; the Kubernetes
	 * key sorts later, so its target (its FQDN, D18) stays. */
	add(nt, "x.foo", "External", NULL, NULL, LIST("192.0.2.1"), NOALT);
	add(nt, "x.foo.svc.cluster.local", "Kubernetes", "x", "foo",
	    LIST("10.0.0.1"), NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "x.foo.", "a=10.0.0.1 aaaa= origin=x.foo.svc.cluster.local");
	expect(t, "x.foo.ns1.svc.cluster.local.",
	    "cname=x.foo.svc.cluster.local. a=10.0.0.1 aaaa= "
	    "origin=x.foo.svc.cluster.local");
	nds_table_unref(t);
}

static void
test_invalid_ips_are_dropped(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "mixed.example", "External", NULL, NULL,
	    LIST("192.0.2.0/24", "01.2.3.4", "fe80::1%eth0", "bogus", "",
	        " 192.0.2.5", "192.0.2.5", "::ffff:1.2.3.4", "192.0.2.5",
	        "1.2.3", "2001:db8::1"),
	    NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "");
	expect(t, "mixed.example.",
	    "a=192.0.2.5,192.0.2.5 aaaa=::ffff:1.2.3.4,2001:db8::1 "
	    "origin=mixed.example");
	nds_table_unref(t);
}

/* One entry as nds_nametable_foreach() hands it back, as text. */
static int
entry_text(const char *key, const struct nds_nameinfo *in, void *arg)
{
	char *out = arg;
	size_t o = strlen(out), i;

	o += (size_t)snprintf(out + o, 1024 - o,
	    "%s reg=%s sn=%s ns=%s ips=", key, in->registry, in->shortname,
	    in->ns);
	for (i = 0; i < in->nips; i++)
		o += (size_t)snprintf(out + o, 1024 - o, "%s[%s]",
		    i > 0 ? "," : "", in->ips[i]);
	o += (size_t)snprintf(out + o, 1024 - o, " alt=");
	for (i = 0; i < in->nalt; i++)
		o += (size_t)snprintf(out + o, 1024 - o, "%s[%s]",
		    i > 0 ? "," : "", in->alt_hosts[i]);
	snprintf(out + o, 1024 - o, "\n");
	return 0;
}

/*
 * The NameTable keeps addresses in binary form and leaves out a shortname
 * that is the key's first label, yet hands back exactly what was added:
 * every other spelling of an address, and anything that is not one, as
 * text; a dotted shortname or one that differs from the key as given.
 */
static void
test_nametable_hands_back_what_was_added(void **state)
{
	struct nds_nametable *nt = nametable();
	char got[1024] = "", one[1024] = "";
	uint8_t *pb;
	size_t pblen;
	struct nds_nametable *back;
	char again[1024] = "";
	const char *key;
	size_t klen;

	(void)state;
	add(nt, "web.ns1.svc.cluster.local", "Kubernetes", "web", "ns1",
	    LIST("10.0.0.1", "2001:db8::1", "2001:DB8:0::1", "01.2.3.4", "",
	        "::ffff:1.2.3.4", "x"),
	    LIST("web.alt", ""));
	add(nt, "mysql-0.mysql.ns1.svc.cluster.local", "Kubernetes",
	    "mysql-0.mysql", "ns1", LIST("10.0.0.2"), NOALT);
	add(nt, "Web.ns2.svc.cluster.local", "Kubernetes", "web", "ns2",
	    LIST("10.0.0.3"), NOALT);
	add(nt, "nodot", "External", "nodot", NULL, NOALT, NOALT);
	add(nt, "other.example", "External", "o", "weird-ns", LIST("::1"),
	    NOALT);
	assert_int_equal(nds_nametable_foreach(nt, entry_text, got), 0);
	assert_string_equal(got,
	    "web.ns1.svc.cluster.local reg=Kubernetes sn=web ns=ns1 "
	    "ips=[10.0.0.1],[2001:db8::1],[2001:DB8:0::1],[01.2.3.4],[],"
	    "[::ffff:1.2.3.4],[x] alt=[web.alt],[]\n"
	    "mysql-0.mysql.ns1.svc.cluster.local reg=Kubernetes "
	    "sn=mysql-0.mysql ns=ns1 ips=[10.0.0.2] alt=\n"
	    "Web.ns2.svc.cluster.local reg=Kubernetes sn=web ns=ns2 "
	    "ips=[10.0.0.3] alt=\n"
	    "nodot reg=External sn=nodot ns= ips= alt=\n"
	    "other.example reg=External sn=o ns=weird-ns ips=[::1] alt=\n");
	/* One entry by index; its key stays put. */
	assert_non_null(key = nds_nametable_key(nt, 4, &klen));
	assert_int_equal(klen, strlen("other.example"));
	assert_memory_equal(key, "other.example", klen);
	assert_null(nds_nametable_key(nt, 5, &klen));
	assert_int_equal(nds_nametable_get(nt, 4, entry_text, one), 0);
	assert_string_equal(one,
	    "other.example reg=External sn=o ns=weird-ns ips=[::1] alt=\n");
	assert_int_equal(nds_nametable_get(nt, 5, entry_text, one), -EINVAL);
	/* The protobuf encoding carries the same text. */
	assert_int_equal(nds_pb_build(nt, &pb, &pblen), 0);
	assert_int_equal(nds_pb_parse(pb, pblen, &back, NULL, 0), 0);
	assert_int_equal(nds_nametable_foreach(back, entry_text, again), 0);
	assert_int_equal(strlen(again), strlen(got));
	free(pb);
	nds_nametable_destroy(back);
	nds_nametable_destroy(nt);
}

/* The other spelling of an IPv6 address still answers. */
static void
test_any_spelling_of_an_address_answers(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "v6.example", "External", NULL, NULL,
	    LIST("2001:DB8:0::1", "2001:db8::2"), NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "");
	expect(t, "v6.example.",
	    "a= aaaa=2001:db8::1,2001:db8::2 origin=v6.example");
	nds_table_unref(t);
}

static void
test_entry_without_valid_ip_is_skipped(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "bad.ns1.svc.cluster.local", "Kubernetes", "bad", "ns1",
	    LIST("not-an-ip", "10.0.0.0/8"), LIST("bad.alt"));
	add(nt, "none.example", "External", NULL, NULL, NULL, NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "bad.ns1.svc.cluster.local.", "ENOENT");
	expect(t, "bad.", "ENOENT");
	expect(t, "bad.alt.", "ENOENT");
	expect(t, "none.example.", "ENOENT");
	expect(t, "none.example.ns1.svc.cluster.local.", "ENOENT");
	assert_int_equal(nds_table_entries(t), 2);
	assert_int_equal(nds_table_names(t), 0);
	nds_table_unref(t);
}

static void
test_kubernetes_key_with_trailing_dot_names_nothing(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "dot.ns1.svc.cluster.local.", "Kubernetes", "dot", "ns1",
	    LIST("10.0.0.1"), LIST("dot.alt"));
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "dot.ns1.svc.cluster.local.", "ENOENT");
	expect(t, "dot.ns1.svc.cluster.local..", "ENOENT");
	expect(t, "dot.", "ENOENT");
	expect(t, "dot.alt.", "ENOENT");
	assert_int_equal(nds_table_names(t), 0);
	nds_table_unref(t);
}

static void
test_external_key_with_trailing_dot_gets_no_extra_dot(void **state)
{
	struct nds_table *t = fixture();

	(void)state;
	expect(t, "example.localhost.",
	    "a=3.3.3.3 aaaa= origin=example.localhost.");
	expect(t, "example.localhost.ns1.svc.cluster.local.",
	    "cname=example.localhost. a=3.3.3.3 aaaa= "
	    "origin=example.localhost.");
	nds_table_unref(t);
}

static void
test_external_ignores_alt_hosts_and_short_forms(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "se.ns1.svc.cluster.local", "External", "se", "ns1",
	    LIST("192.0.2.1"), LIST("se.alt"));
	add(nt, "k.ns1.svc.cluster.local", "kubernetes", "k", "ns1",
	    LIST("192.0.2.2"), NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	expect(t, "se.", "ENOENT");
	expect(t, "se.ns1.", "ENOENT");
	expect(t, "se.alt.", "ENOENT");
	expect(t, "k.", "ENOENT"); /* only "Kubernetes" exactly counts */
	assert_int_equal(nds_table_names(t), 2);
	nds_table_unref(t);
}

static void
test_wildcard_does_not_match_apex(void **state)
{
	struct nds_table *t = fixture();

	(void)state;
	expect(t, "wildcard.", "ENOENT");
	expect(t, "b.wildcard.", "a=10.10.10.10 aaaa= origin=*.wildcard");
	expect(t, "*.wildcard.", "a=10.10.10.10 aaaa= origin=*.wildcard");
	expect(t, "x.y.z.wildcard.", "a=10.10.10.10 aaaa= origin=*.wildcard");
	expect(t, "x.a.b.wildcard.", "a=11.11.11.11 aaaa= origin=*.b.wildcard");
	expect(t, "svc.mesh.company.net.", "ENOENT");
	nds_table_unref(t);
}

static void
test_root_wildcard_is_never_probed(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "*", "External", NULL, NULL, LIST("192.0.2.1"), NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", NULL);
	expect(t, "foo.", "ENOENT");
	expect(t, "foo.bar.", "ENOENT");
	expect(t, "*.", "a=192.0.2.1 aaaa= origin=*");
	nds_table_unref(t);
}

static void
test_wildcard_probe_may_hit_cname_owner(void **state)
{
	struct nds_table *t = fixture();

	(void)state;
	/* "*.b.wildcard.ns1..." is a CNAME owner, found by a probe. */
	expect(t, "x.b.wildcard.ns1.svc.cluster.local.",
	    "cname=x.b.wildcard. a=11.11.11.11 aaaa= origin=*.b.wildcard");
	/* Exact hit on the CNAME owner itself. */
	expect(t, "*.wildcard.ns1.svc.cluster.local.",
	    "cname=*.wildcard. a=10.10.10.10 aaaa= origin=*.wildcard");
	/* Deeper names: the concrete target keeps every label. */
	expect(t, "p.q.wildcard.ns1.svc.cluster.local.",
	    "cname=p.q.wildcard. a=10.10.10.10 aaaa= origin=*.wildcard");
	nds_table_unref(t);
}

static void
test_concrete_target_points_into_query(void **state)
{
	static const char q[] = "foo.wildcard.ns1.svc.cluster.local.XYZ";
	struct nds_table *t = fixture();
	struct nds_answer a;

	(void)state;
	assert_int_equal(nds_table_lookup(t, q, sizeof(q) - 4, &a), 0);
	assert_ptr_equal(a.target, q);
	assert_int_equal(a.target_len, strlen("foo.wildcard."));
	nds_table_unref(t);
}

static void
test_keys_and_names_are_lower_cased(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "WWW.Example.COM", "External", NULL, NULL, LIST("192.0.2.1"),
	    NOALT);
	add(nt, "Web.NS1.svc.cluster.local", "Kubernetes", "Web", "ns1",
	    LIST("10.0.0.1"), LIST("Web.Alt.Example"));
	t = build(nt, "ns1", "NS1.Svc.Cluster.Local", "NS1.svc.cluster.LOCAL.");
	expect(t, "www.example.com.",
	    "a=192.0.2.1 aaaa= origin=WWW.Example.COM");
	expect(t, "www.example.com.ns1.svc.cluster.local.",
	    "cname=www.example.com. a=192.0.2.1 aaaa= "
	    "origin=WWW.Example.COM");
	expect(t, "web.", "a=10.0.0.1 aaaa= origin=Web.NS1.svc.cluster.local");
	expect(t, "web.ns1.svc.",
	    "a=10.0.0.1 aaaa= "
	    "origin=Web.NS1.svc.cluster.local");
	expect(t, "web.alt.example.",
	    "a=10.0.0.1 aaaa= origin=Web.NS1.svc.cluster.local");
	expect(t, "WWW.Example.COM.", "ENOENT");
	nds_table_unref(t);
}

static void
test_duplicate_key_last_wins(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;

	(void)state;
	add(nt, "dup.example", "External", NULL, NULL, LIST("192.0.2.1"),
	    NOALT);
	add(nt, "dup.example", "External", NULL, NULL, LIST("192.0.2.2"),
	    NOALT);
	assert_int_equal(nds_nametable_count(nt), 1);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "");
	expect(t, "dup.example.", "a=192.0.2.2 aaaa= origin=dup.example");
	assert_int_equal(nds_table_entries(t), 1);
	nds_table_unref(t);
}

static void
test_nametable_rejects_empty_key(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_nameinfo in = {0};

	(void)state;
	assert_int_equal(nds_nametable_add(nt, "", &in), -EINVAL);
	assert_int_equal(nds_nametable_add(nt, NULL, &in), -EINVAL);
	assert_int_equal(nds_nametable_add(nt, "k", NULL), 0);
	assert_int_equal(nds_nametable_count(nt), 1);
	nds_nametable_destroy(nt);
	nds_nametable_destroy(NULL);
}

static void
test_many_entries_grow_the_indexes(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;
	char key[64], q[128], want[128];
	int i;

	(void)state;
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "s%d.n%d.svc.cluster.local", i,
		    i % 7);
		snprintf(q, sizeof(q), "s%d", i);
		snprintf(want, sizeof(want), "n%d", i % 7);
		add(nt, key, "Kubernetes", q, want, LIST("10.0.0.1"), NOALT);
	}
	assert_int_equal(nds_nametable_count(nt), 5000);
	t = build(nt, "n0", "n0.svc.cluster.local", "n0.svc.cluster.local");
	for (i = 0; i < 5000; i += 7) {
		snprintf(q, sizeof(q), "s%d.n%d.svc.", i, i % 7);
		snprintf(want, sizeof(want),
		    "a=10.0.0.1 aaaa= origin=s%d.n%d.svc.cluster.local", i,
		    i % 7);
		expect(t, q, want);
	}
	nds_table_unref(t);
}

static void
test_empty_table_knows_nothing(void **state)
{
	struct nds_table *t = build(nametable(), "ns1", "ns1.svc.cluster.local",
	    "ns1.svc.cluster.local");

	(void)state;
	expect(t, "anything.", "ENOENT");
	expect(t, ".", "ENOENT");
	assert_int_equal(nds_table_entries(t), 0);
	assert_int_equal(nds_table_names(t), 0);
	nds_table_unref(t);
}

static void
test_lookup_bounds(void **state)
{
	struct nds_table *t = fixture();
	struct nds_answer a;
	char big[600];

	(void)state;
	memset(big, 'a', sizeof(big));
	big[sizeof(big) - 1] = '.';
	assert_int_equal(nds_table_lookup(t, big, sizeof(big), &a), -ENOENT);
	assert_int_equal(nds_table_lookup(t, big, 0, &a), -ENOENT);
	assert_int_equal(nds_table_lookup(t, NULL, 3, &a), -EINVAL);
	assert_int_equal(nds_table_lookup(NULL, "a.", 2, &a), -EINVAL);
	/* qname needs no NUL: only qlen bytes count. */
	assert_int_equal(nds_table_lookup(t, "productpage.XYZ", 12, &a), 0);
	assert_null(a.target);
	nds_table_unref(t);
}

static void
test_long_names_are_not_generated(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_table *t;
	char key[300], want[400];

	(void)state;
	/* 240 + ".ns1.svc.cluster.local": the FQDN is over 255 bytes. */
	memset(key, 'a', 240);
	snprintf(key + 240, sizeof(key) - 240, ".ns1.svc.cluster.local");
	add(nt, key, "Kubernetes", "s", "ns1", LIST("10.0.0.1"), NOALT);
	t = build(nt, "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local");
	/* Short forms exist; their CNAMEs need the FQDN, so none. */
	snprintf(want, sizeof(want), "a=10.0.0.1 aaaa= origin=%s", key);
	expect(t, "s.ns1.", want);
	expect(t, "s.", want);
	expect(t, "s.ns1.ns1.svc.cluster.local.", "ENOENT");
	assert_int_equal(nds_table_names(t), 3);
	nds_table_unref(t);
}

static void
test_build_rejects_missing_arguments(void **state)
{
	struct nds_build_opts o = {0};
	struct nds_table *t = (struct nds_table *)&o;
	char err[128] = "";

	(void)state;
	assert_int_equal(nds_table_build(nametable(), NULL, &t, err,
	                     sizeof(err)),
	    -EINVAL);
	assert_null(t);
	assert_true(strlen(err) > 0);
	assert_int_equal(nds_table_build(NULL, &o, &t, NULL, 0), -EINVAL);
}

/* The SPEC §8 fixture's NameTable. */
static struct nds_nametable *
fixture_nametable(void)
{
	struct nds_nametable *nt = nametable();

	fixture_add(nt);
	return nt;
}

/*
 * Builds make()'s table with allocation k failed, for k = 0, 1, ...,
 * until a build succeeds: in steps of budget units, or with
 * nds_table_build() if budget is 0.  Every failure must say "out of
 * memory" and hand out nothing (ASan checks that it leaks nothing).
 * Returns the table; *tries: the failed builds.
 */
/* mem[0..len) full of garbage, as a used message buffer is. */
static void *
garbage(size_t len)
{
	void *mem = malloc(len > 0 ? len : 1);

	assert_non_null(mem);
	memset(mem, 0xa5, len);
	return mem;
}

static struct nds_table *
build_failing_each_allocation(struct nds_nametable *(*make)(void),
    size_t budget, bool scratch, long *tries)
{
	const struct nds_build_opts o = ns1_opts;
	struct nds_table_builder *bd;
	struct nds_table *t;
	char err[128];
	long k;
	int rc;

	for (k = 0;; k++) {
		struct nds_nametable *nt = make();

		bd = NULL;
		t = NULL;
		alloc_fail_at = k;
		if (budget == 0) {
			rc = nds_table_build(nt, &o, &t, err, sizeof(err));
		} else {
			rc = nds_table_builder_create(nt, &o, &bd, err,
			    sizeof(err));
			if (rc == 0 && scratch)
				nds_table_builder_scratch(bd,
				    garbage(scr_need(bd->n)), scr_need(bd->n));
			while (rc == 0 &&
			       (rc = nds_table_builder_step(bd, budget, &t, err,
			            sizeof(err))) == 1)
				rc = 0;
		}
		alloc_fail_at = -1;
		nds_table_builder_free(bd);
		if (rc == 0)
			break;
		assert_int_equal(rc, -ENOMEM);
		assert_null(t);
		assert_non_null(strstr(err, "out of memory"));
	}
	*tries = k;
	return t;
}

static void
test_build_survives_every_allocation_failure(void **state)
{
	struct nds_table *t;
	long k;

	(void)state;
	t = build_failing_each_allocation(fixture_nametable, 0, false, &k);
	/* The build allocates each structure once, from a counting pass:
	 * about ten allocations, every one of them failed above. */
	assert_true(k > 5);
	expect(t, "productpage.", "a=9.9.9.9 aaaa= origin=" PP);
	nds_table_unref(t);
}

static void
test_nametable_add_survives_allocation_failure(void **state)
{
	struct nds_nametable *nt = nametable();
	struct nds_nameinfo in = {0};
	char key[32];
	int i, failed = 0;

	(void)state;
	for (i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		alloc_fail_at = i % 3;
		if (nds_nametable_add(nt, key, &in) == -ENOMEM)
			failed++;
		alloc_fail_at = -1;
	}
	assert_true(failed > 0);
	assert_int_equal(nds_nametable_count(nt), 200 - failed);
	nds_nametable_destroy(nt);
}

/* Entry e's key, NUL ended, in buf (48 bytes). */
static const char *
key_of(const struct nds_nametable *nt, const struct nt_entry *e, char *buf)
{
	size_t len;
	const char *k = ent_key(nt, e, &len);

	memcpy(buf, k, len);
	buf[len] = '\0';
	return buf;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * The builder's sort of got[0..n) (PH_KEYS to PH_UNKEY), with the merges
 * run budget keys at a time, branching on each comparison (runs) or not.
 */
static void
sort_entries(const struct nds_nametable *nt, struct nt_entry **got, size_t n,
    size_t budget, bool runs)
{
	struct sort_key *k = malloc(2 * n * sizeof(*k));
	struct merge m;
	size_t i, steps = 0;

	assert_non_null(k);
	for (i = 0; i < n; i++)
		sort_key_of(&k[i], nt, got[i]);
	for (i = 0; i < n; i += 16)
		sort_run(k, i, n, nt);
	merge_init(&m, k, n, runs);
	while (!merge_some(&m, budget, nt))
		steps++;
	/* Small budgets stop and resume inside merges. */
	if (budget < n / 4)
		assert_true(steps > n / budget / 2);
	for (i = 0; i < n; i++)
		got[i] = sort_key_entry(&k[i], nt);
	free(k);
}

/*
 * The sort orders keys exactly as strcmp() does: shared prefixes
 * shorter than, equal to and longer than its 12 in-array bytes, bytes
 * over 0x7f, keys that are prefixes of others.  (Its blocks hold "key."
 * and a NUL; a dot sorts after '-', so the blocks' strcmp() order is
 * not the keys'.)
 */
static void
test_sort_matches_strcmp(void **state)
{
	enum { N = 3000 };
	static const char *const stems[] = {"", "svc-", "abcdefghijk",
	    "abcdefghijkl", "abcdefghijklm", "abcdefghijklmno",
	    "abcdefghijklmnop", "abcdefghijklmnopq", "a.b.c.d.e.f.g.h.i.j",
	    "svc.", "svc-."};
	static char keys[N][48];
	struct nt_entry *got[N];
	struct nds_nametable *nt = nametable();
	static const size_t budgets[] = {1, 5, 16, 1000, SIZE_MAX};
	char kg[48];
	uint32_t r = 12345;
	size_t i, j, len, n, b;

	(void)state;
	for (i = 0; i < N; i++) {
		const char *stem = stems[i % (sizeof(stems) / sizeof(*stems))];

		r = r * 1103515245u + 12345u;
		len = (r >> 16) % 12;
		snprintf(keys[i], sizeof(keys[i]), "%s", stem);
		for (j = strlen(keys[i]); len-- > 0 && j < sizeof(keys[i]) - 1;
		     j++) {
			r = r * 1103515245u + 12345u;
			keys[i][j] = (char)(r >> 24 & 3 ? 'a' + (r >> 16) % 3
			                                : 0x80 + (r >> 16) % 4);
		}
		keys[i][j] = '\0';
		if (keys[i][0] != '\0')
			assert_int_equal(nds_nametable_add(nt, keys[i], NULL),
			    0);
	}
	n = nds_nametable_count(nt);
	assert_true(n > N / 2);
	for (i = 0; i < n; i++) {
		got[i] = &nt->ents[i];
		key_of(nt, got[i], keys[i]);
	}
	qsort(keys, n, sizeof(keys[0]), str_cmp);
	for (b = 0; b < sizeof(budgets) / sizeof(*budgets); b++) {
		for (i = 0; i < n; i++)
			got[i] = &nt->ents[i];
		sort_entries(nt, got, n, budgets[b], b % 2 == 0);
		for (i = 0; i < n; i++)
			assert_string_equal(key_of(nt, got[i], kg), keys[i]);
	}
	nds_nametable_destroy(nt);
}

/* A growing string: listings of a few thousand records stay linear
 * (ASan's realloc() always copies). */
struct text {
	char *p;
	size_t len, cap;
};

/* Appends one record to the struct text arg. */
static int
record_line(const struct nds_record *r, void *arg)
{
	struct text *t = arg;
	int n;

	n = snprintf(NULL, 0, "%s %s %u %s %s\n", r->name, r->type, r->ttl,
	    r->data, r->origin);
	if (t->len + (size_t)n + 1 > t->cap) {
		t->cap = (t->len + (size_t)n + 1) * 2;
		assert_non_null(t->p = realloc(t->p, t->cap));
	}
	snprintf(t->p + t->len, (size_t)n + 1, "%s %s %u %s %s\n", r->name,
	    r->type, r->ttl, r->data, r->origin);
	t->len += (size_t)n;
	return 0;
}

static char *
listing(const struct nds_table *t)
{
	struct text buf = {NULL, 0, 0};

	assert_int_equal(nds_table_foreach_record(t, NULL, record_line, &buf),
	    0);
	assert_non_null(buf.p);
	return buf.p;
}

/*
 * A table with every kind of collision: Kubernetes services in three
 * namespaces whose short forms meet, External hosts that equal those
 * short forms, alt hosts, wildcards, headless names, and keys added in
 * a scrambled order (sorted == false) or in key order (true).
 */
static struct nds_nametable *
mixed_nametable(bool sorted)
{
	static const char *const nss[] = {"ns1", "ns2", "default"};
	struct nds_nametable *nt = nametable();
	char key[96], sn[32], ip[32], alt[96];
	size_t i, j;

	for (j = 0; j < 240; j++) {
		/* In key order: "a%03zu" sorts with its number. */
		i = sorted ? j : (j * 97) % 240;
		snprintf(sn, sizeof(sn), "s%03zu", i % 80);
		snprintf(ip, sizeof(ip), "10.0.%zu.%zu", i / 200, i % 200 + 1);
		switch (i % 6) {
		case 0:
		case 1:
		case 2:
			snprintf(key, sizeof(key),
			    "s%03zu.%s.svc.cluster.local", i % 80, nss[i % 3]);
			snprintf(alt, sizeof(alt),
			    "s%03zu.%s.svc.clusterset.local", i % 80,
			    nss[i % 3]);
			add(nt, key, "Kubernetes", sn, nss[i % 3], LIST(ip),
			    i % 4 == 0 ? LIST(alt) : NOALT);
			break;
		case 3:
			snprintf(key, sizeof(key), "s%03zu.%s", i % 80,
			    nss[i % 3]);
			add(nt, key, "External", NULL, NULL,
			    LIST(ip, "2001:db8::1"), NOALT);
			break;
		case 4:
			snprintf(key, sizeof(key), "*.w%03zu.example", i % 80);
			add(nt, key, "External", NULL, NULL, LIST(ip), NOALT);
			break;
		case 5:
			snprintf(key, sizeof(key), "s%03zu", i % 80);
			add(nt, key, "External", NULL, NULL, LIST(ip), NOALT);
			break;
		}
	}
	fixture_add(nt);
	return nt;
}

/*
 * The builder in steps of any size gives the table nds_table_build()
 * gives, record for record, whether the keys need sorting or not; small
 * budgets take many steps.
 */
static void
test_builder_steps_give_the_same_table(void **state)
{
	static const size_t budgets[] = {1, 2, 3, 17, 256, SIZE_MAX};
	const struct nds_build_opts o = ns1_opts;
	struct nds_table_builder *bd;
	struct nds_table *whole, *t, *again;
	char err[128], *want, *got;
	size_t b, steps;
	int sorted, rc;

	(void)state;
	for (sorted = 0; sorted < 2; sorted++) {
		whole = build(mixed_nametable(sorted), o.namespace, o.domain,
		    o.search0);
		want = listing(whole);
		assert_true(nds_table_names(whole) > 500);
		for (b = 0; b < sizeof(budgets) / sizeof(*budgets); b++) {
			assert_int_equal(
			    nds_table_builder_create(mixed_nametable(sorted),
			        &o, &bd, err, sizeof(err)),
			    0);
			steps = 0;
			while ((rc = nds_table_builder_step(bd, budgets[b], &t,
			            err, sizeof(err))) == 1) {
				assert_null(t);
				steps++;
			}
			assert_int_equal(rc, 0);
			assert_non_null(t);
			/* Done is done: the builder hands nothing more. */
			assert_int_equal(nds_table_builder_step(bd, 1, &again,
			                     err, sizeof(err)),
			    -EINVAL);
			assert_null(again);
			nds_table_builder_free(bd);
			if (budgets[b] == 1)
				assert_true(steps > 1000);
			if (budgets[b] == SIZE_MAX)
				assert_int_equal(steps, 0);
			got = listing(t);
			assert_string_equal(got, want);
			assert_int_equal(nds_table_names(t),
			    nds_table_names(whole));
			assert_int_equal(nds_table_entries(t),
			    nds_table_entries(whole));
			free(got);
			nds_table_unref(t);
		}
		free(want);
		nds_table_unref(whole);
	}
}

static struct nds_nametable *
mixed_scrambled(void)
{
	return mixed_nametable(false);
}

/* A build that fails at any step frees all it holds (ASan's leak check)
 * and says why; the builder is freed half done as well. */
/*
 * 3,000 entries, so that the scratch spans many pages and the pages
 * given back fall between the arrays: canonical Kubernetes entries (some
 * with an alt host), others whose shortname is not their key's (stored
 * short forms, search CNAMEs, stamps), External ones with both families.
 */
static struct nds_nametable *
big_nametable(bool sorted)
{
	struct nds_nametable *nt = nametable();
	char key[96], sn[32], ns[16], ip[32], alt[96];
	size_t i, j, n = 3000;

	for (j = 0; j < n; j++) {
		i = sorted ? j : (j * 97) % n; /* 97 is prime to n */
		snprintf(ns, sizeof(ns), "ns%zu", i % 3 + 1);
		snprintf(ip, sizeof(ip), "10.%zu.%zu.1", i / 250, i % 250);
		if (i % 5 == 4) {
			snprintf(key, sizeof(key), "e%04zu.example.com", i);
			add(nt, key, "External", NULL, NULL,
			    LIST(ip, "2001:db8::5"), NOALT);
			continue;
		}
		snprintf(key, sizeof(key), "s%04zu.%s.svc.cluster.local", i,
		    ns);
		snprintf(sn, sizeof(sn), i % 11 == 0 ? "x%04zu" : "s%04zu", i);
		snprintf(alt, sizeof(alt), "s%04zu.%s.svc.clusterset.local", i,
		    ns);
		add(nt, key, "Kubernetes", sn, ns, LIST(ip),
		    i % 7 == 0 ? LIST(alt) : NOALT);
	}
	return nt;
}

/*
 * A scratch buffer (nds_table_builder_scratch()) changes nothing but
 * where the working arrays live: too small, exactly big enough or
 * bigger, handed over in time or too late, stepped or whole, a table
 * small or spanning many pages.  The builder frees it in every case
 * (ASan/LSan would see a leak).
 */
static void
test_builder_scratch_gives_the_same_table(void **state)
{
	static const size_t budgets[] = {1, 17, SIZE_MAX};
	struct nds_nametable *(*const make[])(bool) = {
	    mixed_nametable, big_nametable};
	const struct nds_build_opts o = ns1_opts;
	struct nds_table_builder *bd;
	struct nds_table *whole, *t;
	char err[128], *want, *got;
	size_t b, v, m, n, sizes[5];
	int sorted, rc;

	(void)state;
	for (m = 0; m < 2; m++)
		for (sorted = 0; sorted < 2; sorted++) {
			whole = build(make[m](sorted), o.namespace, o.domain,
			    o.search0);
			want = listing(whole);
			n = nds_table_entries(whole);
			sizes[0] = 0;
			sizes[1] = scr_need(n) - 1;
			sizes[2] = scr_need(n);
			sizes[3] = scr_need(n) + 3 * 4096 + 5;
			sizes[4] = scr_need(n); /* after a step */
			for (b = 0; b < sizeof(budgets) / sizeof(*budgets); b++)
				for (v = 0; v < 5; v++) {
					if (m == 1 && budgets[b] == 1)
						continue; /* 10^4 steps */
					assert_int_equal(
					    nds_table_builder_create(
					        make[m](sorted), &o, &bd, err,
					        sizeof(err)),
					    0);
					if (v == 4)
						assert_int_equal(
						    nds_table_builder_step(bd,
						        1, &t, err,
						        sizeof(err)),
						    1);
					nds_table_builder_scratch(bd,
					    garbage(sizes[v]), sizes[v]);
					/* Used if big enough and in time. */
					assert_true((bd->scr != NULL) ==
					            (v == 2 || v == 3));
					while ((rc = nds_table_builder_step(bd,
					            budgets[b], &t, err,
					            sizeof(err))) == 1)
						;
					assert_int_equal(rc, 0);
					assert_null(bd->scr); /* freed */
					nds_table_builder_free(bd);
					got = listing(t);
					assert_string_equal(got, want);
					free(got);
					nds_table_unref(t);
				}
			free(want);
			nds_table_unref(whole);
		}
	/* Abandoned with its scratch, and no builder at all: no leak. */
	assert_int_equal(nds_table_builder_create(mixed_nametable(false), &o,
	                     &bd, err, sizeof(err)),
	    0);
	nds_table_builder_scratch(bd, garbage(scr_need(bd->n)),
	    scr_need(bd->n));
	assert_non_null(bd->scr);
	assert_int_equal(nds_table_builder_step(bd, 100, &t, err, sizeof(err)),
	    1);
	nds_table_builder_free(bd);
	nds_table_builder_scratch(NULL, garbage(16), 16);
}

static void
test_builder_fails_cleanly_at_every_step(void **state)
{
	const struct nds_build_opts o = ns1_opts;
	struct nds_table_builder *bd;
	struct nds_table *t;
	char err[128];
	long k;
	int half;

	(void)state;
	t = build_failing_each_allocation(mixed_scrambled, 7, false, &k);
	assert_true(k > 5);
	expect(t, "productpage.", "a=9.9.9.9 aaaa= origin=" PP);
	nds_table_unref(t);
	/* With a scratch buffer, fewer allocations, the same care. */
	t = build_failing_each_allocation(mixed_scrambled, 7, true, &k);
	assert_true(k > 3);
	expect(t, "productpage.", "a=9.9.9.9 aaaa= origin=" PP);
	nds_table_unref(t);
	/* Abandoned half way: nothing leaks. */
	for (half = 1; half < 400; half *= 3) {
		assert_int_equal(
		    nds_table_builder_create(mixed_nametable(false), &o, &bd,
		        err, sizeof(err)),
		    0);
		for (k = 0; k < half; k++)
			if (nds_table_builder_step(bd, 5, &t, err,
			        sizeof(err)) != 1)
				break;
		nds_table_builder_free(bd);
		if (k < half) /* done before: the table is ours */
			nds_table_unref(t);
	}
}

/*
 * gcc sees the free() inside nds_table_unref() (table.c is included
 * above) but not that the reference count makes it conditional.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wuse-after-free"
static void
test_references_keep_the_table(void **state)
{
	struct nds_table *t = fixture();

	(void)state;
	assert_ptr_equal(nds_table_ref(t), t);
	nds_table_unref(t);
	expect(t, "productpage.", "a=9.9.9.9 aaaa= origin=" PP);
	nds_table_unref(t);
	nds_table_unref(NULL);
}
#pragma GCC diagnostic pop

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec8_local_answers),
	    cmocka_unit_test(test_spec8_forwarded_names_are_unknown),
	    cmocka_unit_test(test_fixture_counts_entries_and_names),
	    cmocka_unit_test(test_builder_steps_give_the_same_table),
	    cmocka_unit_test(test_builder_fails_cleanly_at_every_step),
	    cmocka_unit_test(test_builder_scratch_gives_the_same_table),
	    cmocka_unit_test(test_search_cname_of_short_form_targets_fqdn),
	    cmocka_unit_test(test_alt_host_search_cname_targets_itself),
	    cmocka_unit_test(test_worked_example_proxy_in_default),
	    cmocka_unit_test(test_worked_example_proxy_in_bookinfo),
	    cmocka_unit_test(test_service_entry_gets_search_cname_to_itself),
	    cmocka_unit_test(test_per_pod_headless_names),
	    cmocka_unit_test(test_domain_suffix_respects_label_boundary),
	    cmocka_unit_test(test_short_forms_need_shortname_and_namespace),
	    cmocka_unit_test(test_empty_namespace_gives_fqdns_only),
	    cmocka_unit_test(
	        test_domain_not_starting_with_namespace_is_used_as_is),
	    cmocka_unit_test(test_own_namespace_short_name_cname_targets_fqdn),
	    cmocka_unit_test(test_kubernetes_beats_external_in_either_order),
	    cmocka_unit_test(test_external_duplicates_append_ips_per_family),
	    cmocka_unit_test(test_later_kubernetes_key_replaces),
	    cmocka_unit_test(test_derived_short_forms_keep_precedence),
	    cmocka_unit_test(test_long_namespace_is_harmless),
	    cmocka_unit_test(test_address_name_never_becomes_cname),
	    cmocka_unit_test(test_cname_collision_later_key_replaces),
	    cmocka_unit_test(test_invalid_ips_are_dropped),
	    cmocka_unit_test(test_entry_without_valid_ip_is_skipped),
	    cmocka_unit_test(
	        test_kubernetes_key_with_trailing_dot_names_nothing),
	    cmocka_unit_test(
	        test_external_key_with_trailing_dot_gets_no_extra_dot),
	    cmocka_unit_test(test_external_ignores_alt_hosts_and_short_forms),
	    cmocka_unit_test(test_wildcard_does_not_match_apex),
	    cmocka_unit_test(test_root_wildcard_is_never_probed),
	    cmocka_unit_test(test_wildcard_probe_may_hit_cname_owner),
	    cmocka_unit_test(test_concrete_target_points_into_query),
	    cmocka_unit_test(test_keys_and_names_are_lower_cased),
	    cmocka_unit_test(test_duplicate_key_last_wins),
	    cmocka_unit_test(test_nametable_rejects_empty_key),
	    cmocka_unit_test(test_nametable_hands_back_what_was_added),
	    cmocka_unit_test(test_any_spelling_of_an_address_answers),
	    cmocka_unit_test(test_many_entries_grow_the_indexes),
	    cmocka_unit_test(test_empty_table_knows_nothing),
	    cmocka_unit_test(test_lookup_bounds),
	    cmocka_unit_test(test_long_names_are_not_generated),
	    cmocka_unit_test(test_build_rejects_missing_arguments),
	    cmocka_unit_test(test_build_survives_every_allocation_failure),
	    cmocka_unit_test(test_nametable_add_survives_allocation_failure),
	    cmocka_unit_test(test_references_keep_the_table),
	    cmocka_unit_test(test_sort_matches_strcmp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
