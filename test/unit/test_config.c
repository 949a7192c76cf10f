/* Unit tests for agent/config.c: flags, environment, defaults (SPEC §0.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "agent/agent.h"

/* A fake environment: NULL-terminated name/value pairs. */
static const char *const *fake_env;

static const char *
env_lookup(const char *name)
{
	const char *const *p;

	for (p = fake_env; p != NULL && p[0] != NULL; p += 2)
		if (strcmp(p[0], name) == 0)
			return p[1];
	return NULL;
}

static int
parse(struct agent_config *cfg, const char *const *env, char *err,
    size_t errlen, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = (char *)"dnsproxy";
	va_start(ap, errlen);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	fake_env = env;
	return agent_config_parse(argc, argv, env_lookup, cfg, err, errlen);
}

static struct agent_config cfg;
static char err[256];

static void
test_defaults_listen_on_both_loopbacks(void **state)
{
	(void)state;
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), NULL), 0);
	assert_int_equal(cfg.mode, AGENT_RUN);
	assert_int_equal(cfg.nlisten, 2);
	assert_string_equal(cfg.listen[0].text, "127.0.0.1:15053");
	assert_int_equal(cfg.listen[0].optional, 0);
	assert_string_equal(cfg.listen[1].text, "[::1]:15053");
	assert_int_equal(cfg.listen[1].optional, 1);
	assert_string_equal(cfg.resolv_conf, "/etc/resolv.conf");
	assert_int_equal(cfg.ttl, 30);
	assert_null(cfg.table_path);
	assert_null(cfg.ns);
	assert_null(cfg.domain);
}

static void
test_listen_flag_repeats_and_replaces_defaults(void **state)
{
	(void)state;
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--listen",
	                     "127.0.0.2:5300", "--listen=[::1]:5301", NULL),
	    0);
	assert_int_equal(cfg.nlisten, 2);
	assert_string_equal(cfg.listen[0].text, "127.0.0.2:5300");
	assert_string_equal(cfg.listen[1].text, "[::1]:5301");
	assert_int_equal(cfg.listen[1].optional, 0);
}

static void
test_localhost_means_both_families(void **state)
{
	(void)state;
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--listen",
	                     "localhost:5300", NULL),
	    0);
	assert_int_equal(cfg.nlisten, 2);
	assert_string_equal(cfg.listen[0].text, "127.0.0.1:5300");
	assert_string_equal(cfg.listen[1].text, "[::1]:5300");
	assert_int_equal(cfg.listen[1].optional, 1);
}

static void
test_bad_listen_values_are_usage_errors(void **state)
{
	static const char *const bad[] = {"127.0.0.1", "127.0.0.1:0",
	    "127.0.0.1:65536", "127.0.0.1:x", "::1:53", "[::1]53", "[]:53",
	    "300.0.0.1:53", ":53", "[127.0.0.1]:53", "example.com:53",
	    "127.0.0.1:-1", "127.0.0.1: 53"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--listen",
		                     bad[i], NULL),
		    -EINVAL);
		assert_non_null(strstr(err, "--listen"));
		assert_non_null(strstr(err, bad[i]));
	}
}

static void
test_dns_proxy_addr_is_a_comma_list(void **state)
{
	static const char *const env[] = {
	    "DNS_PROXY_ADDR", "127.0.0.3:5400, localhost:5401", NULL};

	(void)state;
	assert_int_equal(parse(&cfg, env, err, sizeof(err), NULL), 0);
	assert_int_equal(cfg.nlisten, 3);
	assert_string_equal(cfg.listen[0].text, "127.0.0.3:5400");
	assert_string_equal(cfg.listen[2].text, "[::1]:5401");
}

static void
test_listen_flag_wins_over_env(void **state)
{
	static const char *const env[] = {
	    "DNS_PROXY_ADDR", "127.0.0.3:5400", NULL};

	(void)state;
	assert_int_equal(parse(&cfg, env, err, sizeof(err), "--listen",
	                     "127.0.0.4:5500", NULL),
	    0);
	assert_int_equal(cfg.nlisten, 1);
	assert_string_equal(cfg.listen[0].text, "127.0.0.4:5500");
}

static void
test_bad_env_address_names_the_variable(void **state)
{
	static const char *const env[] = {"DNS_PROXY_ADDR", "nonsense", NULL};

	(void)state;
	assert_int_equal(parse(&cfg, env, err, sizeof(err), NULL), -EINVAL);
	assert_non_null(strstr(err, "DNS_PROXY_ADDR"));
}

static void
test_namespace_from_env_and_domain_default(void **state)
{
	static const char *const env[] = {"POD_NAMESPACE", "ns1", NULL};

	(void)state;
	assert_int_equal(parse(&cfg, env, err, sizeof(err), NULL), 0);
	assert_string_equal(cfg.ns, "ns1");
	assert_string_equal(cfg.domain, "ns1.svc.cluster.local");
	assert_int_equal(parse(&cfg, env, err, sizeof(err), "--namespace",
	                     "bookinfo", "--domain", "bookinfo.svc.corp", NULL),
	    0);
	assert_string_equal(cfg.ns, "bookinfo");
	assert_string_equal(cfg.domain, "bookinfo.svc.corp");
}

static void
test_empty_namespace_means_none(void **state)
{
	static const char *const env[] = {"POD_NAMESPACE", "", NULL};

	(void)state;
	assert_int_equal(parse(&cfg, env, err, sizeof(err), NULL), 0);
	assert_null(cfg.ns);
	assert_null(cfg.domain);
}

static void
test_flags_are_read(void **state)
{
	(void)state;
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--table",
	                     "/t.json", "--resolv-conf", "/r.conf", "--ttl",
	                     "5", "--log-level", "debug", "--log-format",
	                     "json", NULL),
	    0);
	assert_string_equal(cfg.table_path, "/t.json");
	assert_string_equal(cfg.resolv_conf, "/r.conf");
	assert_int_equal(cfg.ttl, 5);
	assert_int_equal(cfg.log_level, LOG_LVL_DEBUG);
	assert_int_equal(cfg.log_format, LOG_FMT_JSON);
}

static void
test_bad_values_name_the_flag(void **state)
{
	static const char *const cases[][2] = {{"--ttl", "abc"},
	    {"--ttl", "-1"}, {"--ttl", "4294967296"}, {"--ttl", ""},
	    {"--log-level", "loud"}, {"--log-format", "xml"}};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(&cfg, NULL, err, sizeof(err),
		                     cases[i][0], cases[i][1], NULL),
		    -EINVAL);
		assert_non_null(strstr(err, cases[i][0]));
	}
}

static void
test_unknown_flag_and_missing_value_are_usage_errors(void **state)
{
	(void)state;
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--frobnicate",
	                     NULL),
	    -EINVAL);
	assert_non_null(strstr(err, "--frobnicate"));
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--table", NULL),
	    -EINVAL);
	assert_non_null(strstr(err, "--table"));
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "stray", NULL),
	    -EINVAL);
	assert_non_null(strstr(err, "stray"));
}

static void
test_help_and_version_modes(void **state)
{
	(void)state;
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--help", NULL),
	    0);
	assert_int_equal(cfg.mode, AGENT_HELP);
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--version", NULL),
	    0);
	assert_int_equal(cfg.mode, AGENT_VERSION);
}

static void
test_go_durations_round_up_to_milliseconds(void **state)
{
	static const struct {
		const char *in;
		uint32_t ms;
	} good[] = {{"2s", 2000}, {"500ms", 500}, {"1.5s", 1500},
	    {"1m30s", 90000}, {"250us", 1}, {"1500us", 2}, {"100ms", 100},
	    {"1h", 3600000}, {"0.1s", 100}};
	static const char *const bad[] = {"", "2", "s", "-1s", "0s", "2x",
	    "1.5", "2h", "ms", " 2s", "2s ", "1e3ms"};
	uint32_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(agent_parse_duration(good[i].in, &ms), 0);
		assert_int_equal(ms, good[i].ms);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(agent_parse_duration(bad[i], &ms), -EINVAL);
}

static void
test_upstreams_take_ip_literals_with_optional_port(void **state)
{
	(void)state;
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--upstream",
	                     "10.96.0.10", "--upstream", "127.0.0.1:5353",
	                     "--upstream", "[2001:db8::1]:54", "--upstream",
	                     "2001:db8::2", "--upstream", "[::1]", NULL),
	    0);
	assert_int_equal(cfg.nupstreams, 5);
	assert_int_equal(cfg.upstreams[0].family, AF_INET);
	assert_int_equal(cfg.upstreams[0].port, 53);
	assert_memory_equal(cfg.upstreams[0].addr, "\x0a\x60\x00\x0a", 4);
	assert_int_equal(cfg.upstreams[1].port, 5353);
	assert_int_equal(cfg.upstreams[2].family, AF_INET6);
	assert_int_equal(cfg.upstreams[2].port, 54);
	assert_int_equal(cfg.upstreams[3].family, AF_INET6);
	assert_int_equal(cfg.upstreams[3].port, 53);
	assert_int_equal(cfg.upstreams[4].port, 53);
}

static void
test_bad_upstreams_are_usage_errors(void **state)
{
	static const char *const bad[] = {"kube-dns", "10.0.0.1:0",
	    "10.0.0.1:x", "[2001:db8::1", "[2001:db8::1]x", "", "10.0.0.300",
	    "[10.0.0.1]:53:53"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&cfg, NULL, err, sizeof(err),
		                     "--upstream", bad[i], NULL),
		    -EINVAL);
		assert_non_null(strstr(err, "--upstream"));
	}
}

static void
test_forwarding_flags_and_env(void **state)
{
	static const char *const env[] = {"DNS_FORWARD_TIMEOUT", "300ms",
	    "DNS_FORWARD_PARALLEL", "true", NULL};
	static const char *const badenv[] = {
	    "DNS_FORWARD_TIMEOUT", "soon", NULL};

	(void)state;
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), NULL), 0);
	assert_int_equal(cfg.fwd_timeout_ms, 2000);
	assert_int_equal(cfg.fwd_attempts, 0);
	assert_int_equal(cfg.fwd_parallel, 0);
	assert_int_equal(cfg.max_forwards, 4096);
	assert_int_equal(parse(&cfg, env, err, sizeof(err), NULL), 0);
	assert_int_equal(cfg.fwd_timeout_ms, 300);
	assert_int_equal(cfg.fwd_parallel, 1);
	assert_int_equal(parse(&cfg, env, err, sizeof(err), "--forward-timeout",
	                     "1s", "--forward-attempts", "3", "--max-forwards",
	                     "10", NULL),
	    0);
	assert_int_equal(cfg.fwd_timeout_ms, 1000); /* the flag wins */
	assert_int_equal(cfg.fwd_attempts, 3);
	assert_int_equal(cfg.max_forwards, 10);
	assert_int_equal(parse(&cfg, badenv, err, sizeof(err), NULL), -EINVAL);
	assert_non_null(strstr(err, "DNS_FORWARD_TIMEOUT"));
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err),
	                     "--forward-attempts", "101", NULL),
	    -EINVAL);
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--max-forwards",
	                     "0", NULL),
	    -EINVAL);
}

static void
test_xds_flags_are_read_with_istio_defaults(void **state)
{
	static const char *const env[] = {"POD_NAMESPACE", "ns1", NULL};

	(void)state;
	assert_int_equal(parse(&cfg, env, err, sizeof(err), "--xds",
	                     "istiod.istio-system.svc:15012", "--snapshot",
	                     "/tmp/s.pb", "--forward-before-sync", NULL),
	    0);
	assert_string_equal(cfg.xds, "istiod.istio-system.svc:15012");
	assert_false(cfg.xds_plaintext);
	assert_string_equal(cfg.xds_root_cert,
	    "./var/run/secrets/istio/root-cert.pem");
	assert_string_equal(cfg.xds_token,
	    "./var/run/secrets/tokens/istio-token");
	assert_null(cfg.xds_sni);
	assert_string_equal(cfg.cluster_id, "Kubernetes");
	assert_string_equal(cfg.snapshot_path, "/tmp/s.pb");
	assert_true(cfg.forward_before_sync);
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--xds",
	                     "[::1]:15010", "--xds-plaintext", "--xds-sni",
	                     "x.example", "--xds-token", "t", "--xds-root-cert",
	                     "SYSTEM", "--node-id", "n", NULL),
	    0);
	assert_true(cfg.xds_plaintext);
	assert_string_equal(cfg.xds_sni, "x.example");
	assert_string_equal(cfg.xds_token, "t");
	assert_string_equal(cfg.xds_root_cert, "SYSTEM");
	assert_string_equal(cfg.node_id, "n");
}

static void
test_bad_xds_addresses_are_usage_errors(void **state)
{
	static const char *const bad[] = {"istiod", "istiod:", ":15012",
	    "istiod:0", "istiod:65536", "::1:15012", "[::1]15012", "[nothex]:1",
	    "a b:1"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--xds",
		                     bad[i], NULL),
		    -EINVAL);
		assert_non_null(strstr(err, "--xds"));
	}
}

static void
test_root_cert_from_xds_root_ca_unless_the_flag_is_given(void **state)
{
	static const char *const env[] = {"XDS_ROOT_CA", "SYSTEM", NULL};

	(void)state;
	assert_int_equal(parse(&cfg, env, err, sizeof(err), NULL), 0);
	assert_string_equal(cfg.xds_root_cert, "SYSTEM");
	assert_int_equal(parse(&cfg, env, err, sizeof(err), "--xds-root-cert",
	                     "/ca.pem", NULL),
	    0);
	assert_string_equal(cfg.xds_root_cert, "/ca.pem");
}

static void
test_cluster_id_flag_wins_over_env(void **state)
{
	static const char *const env[] = {"CLUSTER_ID", "c-env", NULL};

	(void)state;
	assert_int_equal(parse(&cfg, env, err, sizeof(err), NULL), 0);
	assert_string_equal(cfg.cluster_id, "c-env");
	assert_int_equal(parse(&cfg, env, err, sizeof(err), "--cluster-id",
	                     "c-flag", NULL),
	    0);
	assert_string_equal(cfg.cluster_id, "c-flag");
	assert_int_equal(parse(&cfg, env, err, sizeof(err), "--cluster-id", "",
	                     NULL),
	    -EINVAL);
}

/* Value of metadata key k, or NULL. */
static const char *
meta(const struct agent_xds_env *x, const char *k)
{
	for (size_t i = 0; i < x->nmeta; i++)
		if (strcmp(x->meta_keys[i], k) == 0)
			return x->meta_vals[i];
	return NULL;
}

static void
test_node_metadata_from_istio_meta_and_defaults(void **state)
{
	static char *envp[] = {"ISTIO_META_NETWORK=net1",
	    "ISTIO_META_DNS_AUTO_ALLOCATE=true", "ISTIO_META_=skipped",
	    "INSTANCE_IP=10.0.0.5", "POD_NAME=app-1", "PATH=/bin",
	    "XDS_HEADER_X-Tenant=blue", NULL};
	static struct agent_xds_env x;
	static const char *const env[] = {"POD_NAMESPACE", "ns1", NULL};

	(void)state;
	assert_int_equal(parse(&cfg, env, err, sizeof(err), NULL), 0);
	assert_int_equal(agent_xds_env_build(&cfg, envp, &x, err, sizeof(err)),
	    0);
	assert_string_equal(meta(&x, "NETWORK"), "net1");
	assert_string_equal(meta(&x, "DNS_AUTO_ALLOCATE"), "true");
	assert_string_equal(meta(&x, "DNS_CAPTURE"), "true");
	assert_string_equal(meta(&x, "NAMESPACE"), "ns1");
	assert_string_equal(meta(&x, "CLUSTER_ID"), "Kubernetes");
	assert_string_equal(meta(&x, "INSTANCE_IPS"), "10.0.0.5");
	assert_null(meta(&x, ""));
	assert_null(meta(&x, "PATH"));
	assert_int_equal(x.nmeta, 6);
	assert_string_equal(x.node_id,
	    "sidecar~10.0.0.5~app-1.ns1~ns1.svc.cluster.local");
	assert_int_equal(x.nhdrs, 1);
	assert_string_equal(x.hdr_names[0], "x-tenant");
	assert_string_equal(x.hdr_vals[0], "blue");
}

static void
test_istio_meta_overrides_defaults_but_not_cluster_id(void **state)
{
	static char *envp[] = {"ISTIO_META_DNS_CAPTURE=false",
	    "ISTIO_META_CLUSTER_ID=from-meta", "INSTANCE_IPS=10.0.0.5,fd00::5",
	    "INSTANCE_IP=10.0.0.5", NULL};
	static struct agent_xds_env x;

	(void)state;
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--cluster-id",
	                     "east", "--node-id", "router~1~2~3", NULL),
	    0);
	assert_int_equal(agent_xds_env_build(&cfg, envp, &x, err, sizeof(err)),
	    0);
	assert_string_equal(meta(&x, "DNS_CAPTURE"), "false");
	assert_string_equal(meta(&x, "CLUSTER_ID"), "east");
	assert_string_equal(meta(&x, "INSTANCE_IPS"), "10.0.0.5,fd00::5");
	assert_string_equal(meta(&x, "NAMESPACE"), "");
	assert_string_equal(x.node_id, "router~1~2~3");
}

static void
test_cache_flags_defaults_and_values(void **state)
{
	static const char *const bad[][2] = {{"--cache-size", "-1"},
	    {"--cache-size", "1000001"}, {"--cache-size", "many"},
	    {"--cache-max-bytes", "100"}, {"--cache-max-bytes", "16M"},
	    {"--cache-max-ttl", "5m"}, {"--cache-max-negative-ttl", "-1"},
	    {"--cache-max-stale", "1"}, {"--cache-max-stale", "169h"},
	    {"--stale-answer-client-timeout", "2h"},
	    {"--stale-answer-client-timeout", "-1s"}};
	size_t i;

	(void)state;
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), NULL), 0);
	assert_int_equal(cfg.cache_size, 10000);
	assert_int_equal(cfg.cache_bytes, 16 * 1024 * 1024);
	assert_int_equal(cfg.cache_max_ttl, 300);
	assert_int_equal(cfg.cache_max_neg_ttl, 30);
	assert_int_equal(cfg.cache_max_stale, 3600);
	assert_int_equal(cfg.stale_timeout_ms, 1800);
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err), "--cache-size",
	                     "0", "--cache-max-bytes", "4096",
	                     "--cache-max-ttl", "60",
	                     "--cache-max-negative-ttl", "0",
	                     "--cache-max-stale", "1m30s",
	                     "--stale-answer-client-timeout", "0", NULL),
	    0);
	assert_int_equal(cfg.cache_size, 0);
	assert_int_equal(cfg.cache_bytes, 4096);
	assert_int_equal(cfg.cache_max_ttl, 60);
	assert_int_equal(cfg.cache_max_neg_ttl, 0);
	assert_int_equal(cfg.cache_max_stale, 90);
	assert_int_equal(cfg.stale_timeout_ms, 0);
	assert_int_equal(parse(&cfg, NULL, err, sizeof(err),
	                     "--cache-max-stale", "0",
	                     "--stale-answer-client-timeout", "250ms",
	                     "--cache-max-stale", "1500ms", NULL),
	    0);
	assert_int_equal(cfg.cache_max_stale, 2); /* rounded up */
	assert_int_equal(cfg.stale_timeout_ms, 250);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&cfg, NULL, err, sizeof(err), bad[i][0],
		                     bad[i][1], NULL),
		    -EINVAL);
		assert_non_null(strstr(err, bad[i][0]));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_listen_on_both_loopbacks),
	    cmocka_unit_test(test_listen_flag_repeats_and_replaces_defaults),
	    cmocka_unit_test(test_localhost_means_both_families),
	    cmocka_unit_test(test_bad_listen_values_are_usage_errors),
	    cmocka_unit_test(test_dns_proxy_addr_is_a_comma_list),
	    cmocka_unit_test(test_listen_flag_wins_over_env),
	    cmocka_unit_test(test_bad_env_address_names_the_variable),
	    cmocka_unit_test(test_namespace_from_env_and_domain_default),
	    cmocka_unit_test(test_empty_namespace_means_none),
	    cmocka_unit_test(test_flags_are_read),
	    cmocka_unit_test(test_bad_values_name_the_flag),
	    cmocka_unit_test(
	        test_unknown_flag_and_missing_value_are_usage_errors),
	    cmocka_unit_test(test_help_and_version_modes),
	    cmocka_unit_test(test_go_durations_round_up_to_milliseconds),
	    cmocka_unit_test(
	        test_upstreams_take_ip_literals_with_optional_port),
	    cmocka_unit_test(test_bad_upstreams_are_usage_errors),
	    cmocka_unit_test(test_forwarding_flags_and_env),
	    cmocka_unit_test(test_xds_flags_are_read_with_istio_defaults),
	    cmocka_unit_test(test_bad_xds_addresses_are_usage_errors),
	    cmocka_unit_test(
	        test_root_cert_from_xds_root_ca_unless_the_flag_is_given),
	    cmocka_unit_test(test_cluster_id_flag_wins_over_env),
	    cmocka_unit_test(test_node_metadata_from_istio_meta_and_defaults),
	    cmocka_unit_test(
	        test_istio_meta_overrides_defaults_but_not_cluster_id),
	    cmocka_unit_test(test_cache_flags_defaults_and_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
