/* Unit tests for resolver/resolvconf.c (SPEC §4 "resolv.conf"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "resolver/resolvconf.h"

static struct rsv_resolvconf *
parse(const char *text)
{
	struct rsv_resolvconf *rc = NULL;

	assert_int_equal(rsv_resolvconf_parse(text, strlen(text), &rc), 0);
	assert_non_null(rc);
	return rc;
}

static void
test_every_nameserver_is_kept_in_file_order(void **state)
{
	struct rsv_resolvconf *rc =
	    parse("nameserver 10.96.0.10\nnameserver 10.0.0.2\n"
	          "nameserver 10.0.0.3\nnameserver 2001:db8::1\n"
	          "nameserver 10.0.0.5\n");

	(void)state;
	assert_int_equal(rc->nservers, 5); /* not glibc's three */
	assert_string_equal(rc->servers[0].text, "10.96.0.10");
	assert_int_equal(rc->servers[0].family, AF_INET);
	assert_int_equal(rc->servers[0].port, 53);
	assert_string_equal(rc->servers[3].text, "2001:db8::1");
	assert_int_equal(rc->servers[3].family, AF_INET6);
	assert_string_equal(rc->servers[4].text, "10.0.0.5");
	assert_int_equal(rc->nskipped, 0);
	rsv_resolvconf_free(rc);
}

static void
test_search_line_gives_the_list(void **state)
{
	struct rsv_resolvconf *rc = parse("search ns1.svc.cluster.local "
	                                  "svc.cluster.local\tcluster.local\n"
	                                  "options ndots:5\n");

	(void)state;
	assert_int_equal(rc->nsearch, 3);
	assert_string_equal(rc->search[0], "ns1.svc.cluster.local");
	assert_string_equal(rc->search[1], "svc.cluster.local");
	assert_string_equal(rc->search[2], "cluster.local");
	rsv_resolvconf_free(rc);
}

static void
test_last_search_or_domain_line_wins(void **state)
{
	struct rsv_resolvconf *rc = parse("search a.example b.example\n"
	                                  "domain c.example\n");

	(void)state;
	assert_int_equal(rc->nsearch, 1);
	assert_string_equal(rc->search[0], "c.example");
	rsv_resolvconf_free(rc);
	rc = parse("domain c.example\nsearch x.example y.example\n");
	assert_int_equal(rc->nsearch, 2);
	assert_string_equal(rc->search[0], "x.example");
	rsv_resolvconf_free(rc);
}

static void
test_one_trailing_dot_is_ignored(void **state)
{
	struct rsv_resolvconf *rc = parse("search ns1.svc.cluster.local. b.\n");

	(void)state;
	assert_string_equal(rc->search[0], "ns1.svc.cluster.local");
	assert_string_equal(rc->search[1], "b");
	rsv_resolvconf_free(rc);
}

static void
test_comments_are_ignored(void **state)
{
	struct rsv_resolvconf *rc =
	    parse("# nameserver 1.1.1.1\n; nameserver 2.2.2.2\n"
	          "nameserver 10.0.0.1 # trailing comment\n"
	          "search a.example ;b.example\n");

	(void)state;
	assert_int_equal(rc->nservers, 1);
	assert_string_equal(rc->servers[0].text, "10.0.0.1");
	assert_int_equal(rc->nsearch, 1);
	rsv_resolvconf_free(rc);
}

static void
test_unparsable_nameserver_is_skipped_with_a_warning(void **state)
{
	struct rsv_resolvconf *rc = parse("nameserver kube-dns\n"
	                                  "nameserver 10.0.0.300\n"
	                                  "nameserver 10.0.0.1\n");

	(void)state;
	assert_int_equal(rc->nservers, 1);
	assert_int_equal(rc->nskipped, 2);
	assert_non_null(strstr(rc->warning, "kube-dns"));
	rsv_resolvconf_free(rc);
}

static void
test_scoped_ipv6_is_marked(void **state)
{
	struct rsv_resolvconf *rc = parse("nameserver fe80::1%lo\n");

	(void)state;
	assert_int_equal(rc->nservers, 1);
	assert_int_equal(rc->servers[0].scoped, 1);
	assert_string_equal(rc->servers[0].text, "fe80::1");
	rsv_resolvconf_free(rc);
}

static void
test_empty_and_binary_input_parse(void **state)
{
	static const char junk[] = "\0\0nameserver\0 1.2.3.4\n\xff\xfe search";
	struct rsv_resolvconf *rc = NULL;

	(void)state;
	rc = parse("");
	assert_int_equal(rc->nservers, 0);
	assert_int_equal(rc->nsearch, 0);
	rsv_resolvconf_free(rc);
	assert_int_equal(rsv_resolvconf_parse(junk, sizeof(junk) - 1, &rc), 0);
	rsv_resolvconf_free(rc);
	rc = parse("nameserver\nsearch\n   \n\n");
	assert_int_equal(rc->nservers, 0);
	assert_int_equal(rc->nsearch, 0);
	rsv_resolvconf_free(rc);
}

static void
test_no_newline_at_end_of_file(void **state)
{
	struct rsv_resolvconf *rc = parse("nameserver 10.0.0.1");

	(void)state;
	assert_int_equal(rc->nservers, 1);
	rsv_resolvconf_free(rc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_nameserver_is_kept_in_file_order),
	    cmocka_unit_test(test_search_line_gives_the_list),
	    cmocka_unit_test(test_last_search_or_domain_line_wins),
	    cmocka_unit_test(test_one_trailing_dot_is_ignored),
	    cmocka_unit_test(test_comments_are_ignored),
	    cmocka_unit_test(
	        test_unparsable_nameserver_is_skipped_with_a_warning),
	    cmocka_unit_test(test_scoped_ipv6_is_marked),
	    cmocka_unit_test(test_empty_and_binary_input_parse),
	    cmocka_unit_test(test_no_newline_at_end_of_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
