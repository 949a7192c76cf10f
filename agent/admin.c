/*
 * admin.c: the admin HTTP surface on libevent's evhttp, in the DNS loop
 * (SPEC §6): Prometheus metrics, health, the table and the cache as JSON,
 * and the cache flush.
 *
 * Bounded so that an admin client can never stall DNS: it binds only the
 * configured address, takes GET only (and POST /cache/flush), caps header
 * and body sizes, times idle connections out, and caps open connections
 * (libevent 2.1 has no such limit of its own: see admin_new_conn()).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "nds/nds.h"
#include "resolver/resolver.h"

#define ADMIN_MAX_CONNS 64
#define ADMIN_MAX_HEADERS 8192
#define ADMIN_MAX_BODY 1024
#define ADMIN_TIMEOUT_SEC 5

struct admin_conn;

struct agent_admin {
	struct event_base *base;
	struct evhttp *http;
	const struct agent_state *st;
	TAILQ_HEAD(, admin_conn) conns; /* every connection evhttp has */
	unsigned nconns;                /* entries in conns */
	struct event *sweeper;          /* closes what evhttp let go */
};

/* ---- connection cap ---- */

/*
 * Every connection's bufferevent is made here and we keep one reference to
 * it.  evhttp's bufferevent_free() clears the callbacks and drops its own
 * reference; a sweep notices the cleared callbacks and drops ours, which
 * closes the socket.  Beyond the cap a connection is shut down as soon as
 * evhttp has set it up, and evhttp closes it.
 */
struct admin_conn {
	struct bufferevent *bev;
	TAILQ_ENTRY(admin_conn) entry;
};

static void
admin_sweep(struct agent_admin *ad)
{
	struct admin_conn *c, *next;

	for (c = TAILQ_FIRST(&ad->conns); c != NULL; c = next) {
		bufferevent_data_cb rd, wr;
		bufferevent_event_cb ev;
		void *arg;

		next = TAILQ_NEXT(c, entry);
		bufferevent_getcb(c->bev, &rd, &wr, &ev, &arg);
		if (rd != NULL || wr != NULL || ev != NULL)
			continue; /* evhttp still has it */
		TAILQ_REMOVE(&ad->conns, c, entry);
		ad->nconns--;
		bufferevent_decref(c->bev);
		free(c);
	}
}

static void
admin_on_sweep(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	admin_sweep(arg);
}

/* Runs right after evhttp set up a connection beyond the cap. */
static void
admin_refuse(evutil_socket_t fd, short what, void *arg)
{
	struct bufferevent *bev = arg;
	evutil_socket_t s = bufferevent_getfd(bev);

	(void)fd, (void)what;
	if (s >= 0)
		shutdown(s, SHUT_RDWR); /* evhttp sees EOF and lets go */
}

static struct bufferevent *
admin_new_conn(struct event_base *base, void *arg)
{
	struct agent_admin *ad = arg;
	struct timeval now = {0, 0};
	struct admin_conn *c;

	admin_sweep(ad);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL; /* evhttp makes a plain one */
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		free(c);
		return NULL;
	}
	bufferevent_incref(c->bev);
	TAILQ_INSERT_TAIL(&ad->conns, c, entry);
	if (++ad->nconns > ADMIN_MAX_CONNS)
		event_base_once(base, -1, EV_TIMEOUT, admin_refuse, c->bev,
		    &now);
	return c->bev;
}

/* ---- replies ---- */

static void
admin_reply(struct evhttp_request *req, int code, const char *reason,
    const char *ctype, struct evbuffer *body)
{
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", ctype);
	evhttp_send_reply(req, code, reason, body);
}

static void
admin_text(struct evhttp_request *req, int code, const char *reason,
    const char *text)
{
	struct evbuffer *b = evbuffer_new();

	if (b != NULL)
		evbuffer_add(b, text, strlen(text));
	admin_reply(req, code, reason, "text/plain; charset=utf-8", b);
	if (b != NULL)
		evbuffer_free(b);
}

/* Takes a malloc'd JSON string (NULL = out of memory). */
static void
admin_json(struct evhttp_request *req, int code, const char *reason, char *json)
{
	struct evbuffer *b;

	if (json == NULL) {
		admin_text(req, 500, "Internal Server Error",
		    "out of memory\n");
		return;
	}
	if ((b = evbuffer_new()) != NULL) {
		evbuffer_add(b, json, strlen(json));
		evbuffer_add(b, "\n", 1);
	}
	free(json);
	admin_reply(req, code, reason, "application/json", b);
	if (b != NULL)
		evbuffer_free(b);
}

/* ---- metrics (Prometheus text format 0.0.4) ---- */

static const char *const admin_rcodes[24] = {"NOERROR", "FORMERR", "SERVFAIL",
    "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET",
    "NOTAUTH", "NOTZONE", "DSOTYPENI", "RCODE12", "RCODE13", "RCODE14",
    "RCODE15", "BADVERS", "RCODE17", "RCODE18", "RCODE19", "RCODE20", "RCODE21",
    "RCODE22", "RCODE23"};
static const char *const admin_sources[RSV_SRC_COUNT] = {
    "local", "forwarded", "error"};

static void
admin_metric_head(struct evbuffer *b, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

static void
admin_counter(struct evbuffer *b, const char *name, const char *type,
    const char *help, uint64_t v)
{
	admin_metric_head(b, name, type, help);
	evbuffer_add_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void
admin_histogram(struct evbuffer *b, const char *name, const char *help,
    const double *bounds, size_t nb, const uint64_t *counts, double sum)
{
	uint64_t cum = 0;
	size_t i;

	admin_metric_head(b, name, "histogram", help);
	for (i = 0; i < nb; i++) {
		cum += counts[i];
		evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
		    bounds[i], (unsigned long long)cum);
	}
	cum += counts[nb];
	evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)cum);
	evbuffer_add_printf(b, "%s_sum %.9g\n%s_count %llu\n", name, sum, name,
	    (unsigned long long)cum);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void
admin_label(struct evbuffer *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static void
admin_metrics_istio(struct evbuffer *b, const struct rsv_stats *rs)
{
	admin_counter(b, "istio_agent_dns_requests_total", "counter",
	    "Total number of DNS requests.", rs->requests);
	admin_counter(b, "istio_agent_dns_upstream_requests_total", "counter",
	    "Total number of DNS requests forwarded to upstream.",
	    rs->forwarded);
	admin_counter(b, "istio_agent_dns_upstream_failures_total", "counter",
	    "Total number of DNS failures forwarding to upstream.",
	    rs->fwd_failures);
	admin_histogram(b, "istio_agent_dns_upstream_request_duration_seconds",
	    "Total time in seconds Istio takes to get DNS response from "
	    "upstream.",
	    rsv_fwd_bucket_bounds, RSV_FWD_BUCKETS, rs->fwd_duration,
	    rs->fwd_duration_sum);
}

static void
admin_metrics_queries(struct evbuffer *b, const struct rsv_stats *rs)
{
	static const char *const qt[3] = {"A", "AAAA", "other"};
	size_t s, rc, p;

	admin_metric_head(b, "dnsproxy_responses_total", "counter",
	    "DNS responses sent, by rcode and source.");
	for (s = 0; s < RSV_SRC_COUNT; s++)
		for (rc = 0; rc < 24; rc++)
			if (rs->responses[s][rc] > 0 || rc == 0)
				evbuffer_add_printf(b,
				    "dnsproxy_responses_total{rcode=\"%s\","
				    "source=\"%s\"} %llu\n",
				    admin_rcodes[rc], admin_sources[s],
				    (unsigned long long)rs->responses[s][rc]);
	admin_metric_head(b, "dnsproxy_queries_total", "counter",
	    "DNS queries reaching the handler, by protocol and qtype.");
	for (p = 0; p < 2; p++)
		for (s = 0; s < 3; s++)
			evbuffer_add_printf(b,
			    "dnsproxy_queries_total{protocol=\"%s\","
			    "qtype=\"%s\"} %llu\n",
			    p ? "tcp" : "udp", qt[s],
			    (unsigned long long)rs->queries[p][s]);
	admin_histogram(b, "dnsproxy_local_answer_duration_seconds",
	    "Time to answer a query from the table.", rsv_local_bucket_bounds,
	    RSV_LOCAL_BUCKETS, rs->local_duration, rs->local_duration_sum);
	admin_counter(b, "dnsproxy_malformed_queries_total", "counter",
	    "Queries dropped or answered FORMERR/NOTIMP/REFUSED/BADVERS.",
	    rs->malformed);
}

static void
admin_metrics_table(struct evbuffer *b, const struct agent_state *st)
{
	const struct nds_table *t = st->table;
	admin_counter(b, "dnsproxy_table_entries", "gauge",
	    "NameTable entries of the live table.",
	    t ? nds_table_entries(t) : 0);
	admin_counter(b, "dnsproxy_table_names", "gauge",
	    "Names generated from the live table.", t ? nds_table_names(t) : 0);
	admin_metric_head(b, "dnsproxy_table_version_info", "gauge",
	    "Version of the live table (always 1).");
	evbuffer_add_printf(b, "dnsproxy_table_version_info{version=\"");
	admin_label(b, st->table_version);
	evbuffer_add_printf(b, "\"} 1\n");
	admin_counter(b, "dnsproxy_table_last_update_timestamp_seconds",
	    "gauge", "When the live table was accepted (Unix time).",
	    (uint64_t)st->table_updated);
	admin_metric_head(b, "dnsproxy_table_build_seconds", "gauge",
	    "Time the live table took to decode and compile (an xDS push: "
	    "from its last byte, the compile in slices with queries "
	    "answered in between).");
	evbuffer_add_printf(b, "dnsproxy_table_build_seconds %.6f\n",
	    (double)st->table_build_us / 1e6);
	admin_metric_head(b, "dnsproxy_table_build_stall_seconds", "gauge",
	    "The longest the build of the live table kept queries waiting "
	    "in one go (a file or snapshot: all of it).");
	evbuffer_add_printf(b, "dnsproxy_table_build_stall_seconds %.6f\n",
	    (double)st->table_stall_us / 1e6);
}

static void
admin_metrics_xds(struct evbuffer *b, const struct agent_state *st)
{
	admin_counter(b, "dnsproxy_xds_pushes_total", "counter",
	    "NameTable pushes received.", st->xds_pushes);
	admin_counter(b, "dnsproxy_xds_acks_total", "counter",
	    "NameTable pushes accepted.", st->xds_acks);
	admin_counter(b, "dnsproxy_xds_nacks_total", "counter",
	    "NameTable pushes rejected.", st->xds_nacks);
	admin_counter(b, "dnsproxy_xds_reconnects_total", "counter",
	    "Connections to the control plane after the first.",
	    st->xds_reconnects);
	admin_counter(b, "dnsproxy_xds_connected", "gauge",
	    "1 while the control-plane stream is up.",
	    (uint64_t)st->xds_connected);
}

static void
admin_metrics_forwarding(struct evbuffer *b, const struct agent_state *st,
    const struct rsv_stats *rs)
{
	static const struct agent_listen_stats none;
	const struct agent_listen_stats *ls =
	    st->listeners ? agent_listeners_stats(st->listeners) : &none;
	const char *const *names;
	const uint64_t *fails;
	size_t i, n = rsv_upstreams(st->rsv, &names, &fails);

	admin_counter(b, "dnsproxy_forwards_inflight", "gauge",
	    "Forwarded queries waiting for an upstream.", rs->fwd_inflight);
	admin_counter(b, "dnsproxy_forwards_rejected_total", "counter",
	    "Queries answered SERVFAIL at the in-flight forward cap.",
	    rs->fwd_rejected);
	admin_metric_head(b, "dnsproxy_upstream_failures_total", "counter",
	    "Failed attempts per upstream server.");
	for (i = 0; i < n; i++) {
		evbuffer_add_printf(b,
		    "dnsproxy_upstream_failures_total{upstream=\"");
		admin_label(b, names[i]);
		evbuffer_add_printf(b, "\"} %llu\n",
		    (unsigned long long)fails[i]);
	}
	admin_counter(b, "dnsproxy_tcp_connections", "gauge",
	    "Open TCP client connections.", ls->tcp_open);
	admin_counter(b, "dnsproxy_tcp_connections_rejected_total", "counter",
	    "TCP connections closed at accept (cap reached).",
	    ls->tcp_rejected);
}

static void
admin_metrics_cache(struct evbuffer *b, const struct rsv_cache_stats *cs)
{
	admin_counter(b, "dnsproxy_cache_hits_total", "counter",
	    "Queries answered from a fresh cache entry.", cs->hits);
	admin_counter(b, "dnsproxy_cache_misses_total", "counter",
	    "Cacheable queries without a fresh cache entry.", cs->misses);
	admin_counter(b, "dnsproxy_cache_stale_served_total", "counter",
	    "Answers served from expired entries (RFC 8767).",
	    cs->stale_served);
	admin_counter(b, "dnsproxy_cache_prefetches_total", "counter",
	    "Cache entries refreshed before they expired.", cs->prefetches);
	admin_counter(b, "dnsproxy_cache_evictions_total", "counter",
	    "Cache entries dropped to make room.", cs->evictions);
	admin_counter(b, "dnsproxy_cache_entries", "gauge",
	    "Entries in the forwarded-answer cache.", cs->entries);
	admin_counter(b, "dnsproxy_cache_bytes", "gauge",
	    "Memory held by the forwarded-answer cache.", cs->bytes);
}

static void
admin_metrics(struct evhttp_request *req, struct agent_admin *ad)
{
	const struct agent_state *st = ad->st;
	const struct rsv_stats *rs = rsv_stats(st->rsv);
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		admin_text(req, 500, "Internal Server Error",
		    "out of memory\n");
		return;
	}
	admin_metrics_istio(b, rs);
	admin_metrics_queries(b, rs);
	admin_metrics_table(b, st);
	admin_metrics_xds(b, st);
	admin_metrics_forwarding(b, st, rs);
	admin_metrics_cache(b, &rs->cache);
	admin_metric_head(b, "dnsproxy_build_info", "gauge",
	    "dnsproxy build (always 1).");
	evbuffer_add_printf(b, "dnsproxy_build_info{version=\"%s\"} 1\n",
	    DNSPROXY_VERSION);
	admin_reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
	    b);
	evbuffer_free(b);
}

/* ---- routes ---- */

static void
admin_table(struct evhttp_request *req, struct agent_admin *ad)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *query = evhttp_uri_get_query(uri);
	struct evkeyvalq params;
	struct agent_table_meta m;
	const char *name = NULL;

	TAILQ_INIT(&params);
	if (query != NULL && evhttp_parse_query_str(query, &params) == 0)
		name = evhttp_find_header(&params, "name");
	m.version = ad->st->table_version;
	m.updated = ad->st->table_updated;
	m.entries = ad->st->table ? nds_table_entries(ad->st->table) : 0;
	if (ad->st->table == NULL)
		admin_json(req, 404, "Not Found", strdup("{}"));
	else
		admin_json(req, 200, "OK",
		    agent_table_json(ad->st->table, &m, name));
	evhttp_clear_headers(&params);
}

/* A JSON string: quote, backslash and control bytes escaped. */
static void
admin_json_string(struct evbuffer *b, const char *v)
{
	evbuffer_add(b, "\"", 1);
	for (; *v != '\0'; v++) {
		unsigned char ch = (unsigned char)*v;

		if (ch == '"' || ch == '\\')
			evbuffer_add_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			evbuffer_add_printf(b, "\\u%04x", ch);
		else
			evbuffer_add(b, v, 1);
	}
	evbuffer_add(b, "\"", 1);
}

struct admin_cache_walk {
	struct evbuffer *b;
	size_t n;
};

static void
admin_cache_entry(const struct rsv_cache_info *e, void *arg)
{
	struct admin_cache_walk *w = arg;
	const char *type = rsv_type_name(e->qtype);
	static const char *const rcodes[] = {
	    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN"};

	evbuffer_add_printf(w->b, "%s\n  {\"name\":", w->n++ ? "," : "");
	admin_json_string(w->b, e->name);
	if (type != NULL)
		evbuffer_add_printf(w->b, ",\"type\":\"%s\"", type);
	else
		evbuffer_add_printf(w->b, ",\"type\":\"TYPE%u\"", e->qtype);
	if (e->qclass != 1)
		evbuffer_add_printf(w->b, ",\"class\":%u", e->qclass);
	evbuffer_add_printf(w->b,
	    ",\"rcode\":\"%s\",\"ttl\":%lld,\"stale\":%s,\"size\":%zu,"
	    "\"do\":%s,\"cd\":%s}",
	    e->rcode >= 0 && e->rcode < 4 ? rcodes[e->rcode] : "other",
	    (long long)(e->ttl > 0 ? e->ttl : 0), e->ttl > 0 ? "false" : "true",
	    e->size, e->dnssec_ok ? "true" : "false",
	    e->checking_disabled ? "true" : "false");
}

/* GET /debug/cache: the entries, most recently used first. */
static void
admin_cache(struct evhttp_request *req, struct agent_admin *ad)
{
	const struct rsv_cache_stats *cs = &rsv_stats(ad->st->rsv)->cache;
	struct admin_cache_walk w = {evbuffer_new(), 0};

	if (w.b == NULL) {
		admin_text(req, 500, "Internal Server Error",
		    "out of memory\n");
		return;
	}
	evbuffer_add_printf(w.b,
	    "{\"entries\":%llu,\"bytes\":%llu,"
	    "\"records\":[",
	    (unsigned long long)cs->entries, (unsigned long long)cs->bytes);
	rsv_cache_list(ad->st->rsv, admin_cache_entry, &w);
	evbuffer_add_printf(w.b, "%s]}\n", w.n ? "\n" : "");
	admin_reply(req, 200, "OK", "application/json", w.b);
	evbuffer_free(w.b);
}

/* 405 with the one method the path takes. */
static void
admin_not_allowed(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    allow);
	admin_text(req, 405, "Method Not Allowed", "method not allowed\n");
}

static void
admin_route(struct evhttp_request *req, void *arg)
{
	struct agent_admin *ad = arg;
	const char *path =
	    evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	int post = evhttp_request_get_command(req) == EVHTTP_REQ_POST;

	if (path == NULL)
		path = "/";
	/* GET and POST get here (evhttp answers other methods 501 itself);
	 * POST only for /cache/flush. */
	if (strcmp(path, "/cache/flush") == 0) {
		if (!post) {
			admin_not_allowed(req, "POST");
			return;
		}
		rsv_cache_clear(ad->st->rsv);
		admin_text(req, 200, "OK", "cache flushed\n");
		return;
	}
	if (post)
		admin_not_allowed(req, "GET");
	else if (strcmp(path, "/stats/prometheus") == 0 ||
	         strcmp(path, "/metrics") == 0)
		admin_metrics(req, ad);
	else if (strcmp(path, "/healthz/live") == 0)
		admin_text(req, 200, "OK", "live\n");
	else if (strcmp(path, "/healthz/ready") == 0 && ad->st->table != NULL)
		admin_text(req, 200, "OK", "ready\n");
	else if (strcmp(path, "/healthz/ready") == 0)
		admin_text(req, 503, "Service Unavailable",
		    "istio DNS capture is turned ON and DNS lookup table is "
		    "not "
		    "ready yet\n");
	else if (strcmp(path, "/debug/ndsz") == 0 && ad->st->table == NULL)
		admin_json(req, 404, "Not Found", strdup("{}"));
	else if (strcmp(path, "/debug/ndsz") == 0)
		admin_json(req, 200, "OK", agent_ndsz_json(ad->st->table));
	else if (strcmp(path, "/debug/table") == 0)
		admin_table(req, ad);
	else if (strcmp(path, "/debug/cache") == 0)
		admin_cache(req, ad);
	else
		admin_text(req, 404, "Not Found",
		    "endpoints: /stats/prometheus /metrics /healthz/ready "
		    "/healthz/live /debug/ndsz /debug/table[?name=N] "
		    "/debug/cache, POST /cache/flush\n");
}

/* ---- setup ---- */

int
agent_admin_check_addr(const char *addr)
{
	struct agent_addr a;

	return strcmp(addr, "off") == 0 ? 0 : agent_parse_addr(addr, &a);
}

/* The IP literal and port evhttp binds for a parsed address. */
static void
admin_host_port(const struct agent_addr *a, char *host, size_t hlen,
    uint16_t *port)
{
	if (a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)&a->ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, (socklen_t)hlen);
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const void *)&a->ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, (socklen_t)hlen);
		*port = ntohs(s4->sin_port);
	}
}

/* The server without a socket: evhttp with our limits and routes. */
static int
admin_create(struct event_base *base, const struct agent_state *st,
    struct agent_admin **out)
{
	struct timeval sweep = {1, 0};
	struct agent_admin *ad;

	*out = NULL;
	if ((ad = calloc(1, sizeof(*ad))) == NULL)
		return -ENOMEM;
	ad->base = base;
	ad->st = st;
	TAILQ_INIT(&ad->conns);
	if ((ad->http = evhttp_new(base)) == NULL ||
	    (ad->sweeper = event_new(base, -1, EV_PERSIST, admin_on_sweep,
	         ad)) == NULL ||
	    event_add(ad->sweeper, &sweep) != 0) {
		agent_admin_close(ad);
		return -ENOMEM;
	}
	evhttp_set_allowed_methods(ad->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_max_headers_size(ad->http, ADMIN_MAX_HEADERS);
	evhttp_set_max_body_size(ad->http, ADMIN_MAX_BODY);
	evhttp_set_timeout(ad->http, ADMIN_TIMEOUT_SEC);
	evhttp_set_bevcb(ad->http, admin_new_conn, ad);
	evhttp_set_gencb(ad->http, admin_route, ad);
	*out = ad;
	return 0;
}

int
agent_admin_open(struct event_base *base, const char *addr,
    const struct agent_state *st, struct agent_admin **out, char *err,
    size_t errlen)
{
	struct agent_admin *ad;
	struct agent_addr a;
	char host[INET6_ADDRSTRLEN];
	uint16_t port;

	*out = NULL;
	if (addr == NULL || strcmp(addr, "off") == 0)
		return 0;
	if (agent_parse_addr(addr, &a) != 0) {
		snprintf(err, errlen, "--admin %s: expected IP:PORT", addr);
		return -EINVAL;
	}
	admin_host_port(&a, host, sizeof(host), &port);
	if (admin_create(base, st, &ad) != 0) {
		snprintf(err, errlen, "admin: out of memory");
		return -ENOMEM;
	}
	if (evhttp_bind_socket(ad->http, host, port) != 0) {
		snprintf(err, errlen, "cannot listen on admin address %s: %s",
		    addr, strerror(errno));
		agent_admin_close(ad);
		return -EADDRINUSE;
	}
	*out = ad;
	return 0;
}

int
agent_admin_open_fd(struct event_base *base, int fd,
    const struct agent_state *st, struct agent_admin **out)
{
	struct agent_admin *ad;
	struct evconnlistener *lev;
	int rc;

	*out = NULL;
	if ((rc = admin_create(base, st, &ad)) != 0) {
		close(fd);
		return rc;
	}
	/* Backlog 0: fd listens already.  From here on lev owns fd. */
	if ((lev = evconnlistener_new(base, NULL, NULL,
	         LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_CLOSE_ON_FREE, 0, fd)) == NULL)
		close(fd);
	else if (evhttp_bind_listener(ad->http, lev) == NULL)
		evconnlistener_free(lev);
	else {
		*out = ad;
		return 0;
	}
	agent_admin_close(ad);
	return -ENOMEM;
}

void
agent_admin_close(struct agent_admin *ad)
{
	if (ad == NULL)
		return;
	if (ad->http != NULL)
		evhttp_free(ad->http); /* frees its connections */
	admin_sweep(ad);
	if (ad->sweeper != NULL)
		event_free(ad->sweeper);
	free(ad);
}
