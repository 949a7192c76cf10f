/*
 * conn.c: the NDS client's connection to the control plane (SPEC §5) and
 * the only file of nds/ with sockets and timers.  It dials (TCP, then TLS
 * with ALPN h2 unless plaintext), runs an nds_h2 session over the
 * bufferevent, cuts the stream into gRPC messages (grpc.c) and lets ads.c
 * judge each response; the verdict becomes a table handed up plus an ACK,
 * or a NACK.
 *
 * Any failure (dial, TLS, HTTP/2, a closed stream, a missed keepalive)
 * tears the connection down and schedules the next attempt with capped
 * exponential back-off and jitter.  The live table belongs to the caller,
 * so an outage never clears it.
 *
 * Nothing is torn down inside nghttp2's callbacks: they set c->broken and
 * the read path finishes the job once nds_h2_recv() has returned.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nds/nds.h"
#include "nds/nds_impl.h"
#include "nds/xds_impl.h"

#define H2_WINDOW (16u * 1024 * 1024) /* SPEC §5: stream and connection */
#define TOKEN_MAX (64u * 1024)
/*
 * A push's compile runs in slices of about NDS_SLICE_US, in steps of
 * NDS_SLICE_UNITS builder units (~0.1 ms for a 100k table), with the
 * loop serving queries between slices: the longest the compile keeps
 * them waiting.
 */
#define NDS_SLICE_US 1000
#define NDS_SLICE_UNITS 1024
#define ISTIOD_NAME "istiod.istio-system.svc"

struct nds_client {
	struct event_base *base;
	struct nds_client_cbs cbs;
	void *arg;

	/* configuration, copied */
	char host[256];      /* host part of addr, no brackets */
	char authority[300]; /* "host:port" as given */
	uint16_t port;
	struct sockaddr_storage ss; /* when host is an IP literal */
	socklen_t sslen;            /* 0 when host is a name */
	int plaintext;
	char *root_cert, *token_path;
	char *verify_name; /* SNI and certificate name; NULL = the IP */
	char *cluster_id;
	char **hdr_names, **hdr_vals;
	size_t nhdrs;
	struct nds_xds_node node; /* strings owned by strs */
	struct nds_build_opts build;
	int keep_bytes; /* hand on_table the NameTable bytes */
	uint32_t keepalive_ms, ping_timeout_ms, dial_timeout_ms;
	uint32_t backoff_min_ms, backoff_max_ms;
	char **strs; /* every copied string, freed at destroy */
	size_t nstrs;

	/* timers */
	struct event *retry, *dial, *keepalive, *ping_timeout;
	struct evdns_base *dns;       /* created on the first host name */
	struct nds_build_stats stats; /* of the last table handed up */

	/* The push being compiled, a slice at a time between reads. */
	struct nds_table_builder *bd; /* NULL: none */
	struct nds_ads_result pend;   /* its verdict-to-be, nonce, bytes */
	uint8_t *pend_msg;            /* the message pend.pb points into */
	unsigned pend_conn;           /* conn_seq it came on */
	struct nds_build_stats pst;   /* its figures so far */
	struct timespec pend_t0;      /* its last byte */
	struct event *slice;          /* runs the next slice */
	unsigned conn_seq;            /* connections closed so far */

	/* the current connection */
	struct bufferevent *bev;
	struct nds_h2 *h2;
	struct nds_grpc_rx rx;
	struct nds_ads_skim skim;
	int skimming;               /* an oversized response is being skimmed */
	struct nds_ads_early early; /* the response arriving, decoded */
	int early_on;               /* early is in use */
	uint64_t early_acc;         /* time early has taken so far */
	int connected;              /* the server's SETTINGS arrived */
	int broken;                 /* tear down after the current callback */
	char why[512];              /* why it broke */
	unsigned attempt;     /* failed attempts since the last response */
	char token_note[160]; /* token state, for the connect event */
};

static void client_connect(struct nds_client *c);

/* ---- configuration ---------------------------------------------------- */

int
nds_xds_addr_parse(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *h = addr;
	size_t hlen;
	char *end;
	unsigned long p;

	if (addr == NULL || *addr == '\0')
		return -EINVAL;
	if (*addr == '[') {
		const char *rb = strchr(addr, ']');

		if (rb == NULL || rb[1] != ':')
			return -EINVAL;
		h = addr + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)))
			return -EINVAL; /* none, or a bare IPv6 */
		hlen = (size_t)(colon - addr);
	}
	if (hlen == 0 || hlen >= 254)
		return -EINVAL;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 ||
	    p == 0 || p > 65535)
		return -EINVAL;
	for (size_t i = 0; i < hlen; i++)
		if (h[i] <= ' ' || h[i] == '/' || h[i] == '[' || h[i] == ']')
			return -EINVAL;
	if (*addr == '[') {
		struct in6_addr a6;
		char tmp[64];

		if (hlen >= sizeof(tmp))
			return -EINVAL;
		memcpy(tmp, h, hlen);
		tmp[hlen] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return -EINVAL;
	}
	if (host != NULL) {
		if (hostlen <= hlen)
			return -EINVAL;
		memcpy(host, h, hlen);
		host[hlen] = '\0';
	}
	if (port != NULL)
		*port = (uint16_t)p;
	return 0;
}

/* Keeps a copy of s (NULL stays NULL); -ENOMEM sets *failed. */
static char *
client_strdup(struct nds_client *c, const char *s, int *failed)
{
	char **v, *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL ||
	    (v = realloc(c->strs, (c->nstrs + 1) * sizeof(*v))) == NULL) {
		free(d);
		*failed = 1;
		return NULL;
	}
	c->strs = v;
	c->strs[c->nstrs++] = d;
	return d;
}

static char **
client_strv(struct nds_client *c, const char *const *v, size_t n, int *failed)
{
	char **out;
	size_t i;

	if (n == 0)
		return NULL;
	if ((out = calloc(n, sizeof(*out))) == NULL) {
		*failed = 1;
		return NULL;
	}
	for (i = 0; i < n; i++)
		out[i] = client_strdup(c, v[i], failed);
	return out;
}

/*
 * The name the certificate must carry and the SNI (SPEC §5): --xds-sni;
 * else nothing for an IP literal (its IP SAN is verified); else the host,
 * with any host containing "localhost" mapped to istiod's service name.
 */
static const char *
client_verify_name(const struct nds_client_config *cfg, const char *host,
    int is_ip)
{
	if (cfg->sni != NULL && cfg->sni[0] != '\0')
		return cfg->sni;
	if (is_ip)
		return NULL;
	if (strstr(host, "localhost") != NULL)
		return ISTIOD_NAME;
	return host;
}

static int
client_parse_host(struct nds_client *c)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&c->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->ss;

	memset(&c->ss, 0, sizeof(c->ss));
	if (inet_pton(AF_INET, c->host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(c->port);
		c->sslen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, c->host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(c->port);
		c->sslen = sizeof(*s6);
	} else
		c->sslen = 0;
	return c->sslen != 0;
}

/* ---- teardown and back-off ------------------------------------------- */

static void
client_close(struct nds_client *c)
{
	c->conn_seq++; /* a push still compiling is ACKed on no other */
	nds_h2_destroy(c->h2);
	c->h2 = NULL;
	if (c->bev != NULL) {
		bufferevent_free(c->bev); /* frees the SSL and the socket */
		c->bev = NULL;
	}
	nds_grpc_rx_fini(&c->rx);
	c->skimming = 0;
	nds_ads_early_fini(&c->early);
	c->early_on = 0;
	c->broken = 0;
	evtimer_del(c->dial);
	evtimer_del(c->keepalive);
	evtimer_del(c->ping_timeout);
}

static void
ms_to_tv(uint32_t ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* Ends the current attempt and schedules the next one. */
static void
client_fail(struct nds_client *c, const char *why)
{
	struct timeval tv;
	uint32_t ms;
	char msg[64];

	client_close(c);
	c->connected = 0;
	c->cbs.on_event(NDS_EV_DISCONNECTED, why, c->arg);
	ms = nds_backoff_ms(c->attempt, c->backoff_min_ms, c->backoff_max_ms,
	    arc4random());
	if (c->attempt < 32)
		c->attempt++;
	nds_errf(msg, sizeof(msg), "in %u.%03us", ms / 1000, ms % 1000);
	c->cbs.on_event(NDS_EV_RETRY, msg, c->arg);
	ms_to_tv(ms, &tv);
	evtimer_add(c->retry, &tv);
}

static void
client_break(struct nds_client *c, const char *why)
{
	if (!c->broken)
		nds_errf(c->why, sizeof(c->why), "%s", why);
	c->broken = 1;
}

static void
client_on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	client_connect(arg);
}

static void
client_on_dial_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct nds_client *c = arg;
	char why[128];

	(void)fd, (void)what;
	nds_errf(why, sizeof(why), "connect to %s timed out after %u ms",
	    c->authority, c->dial_timeout_ms);
	client_fail(c, why);
}

static void
client_on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	struct nds_client *c = arg;
	struct timeval tv;

	(void)fd, (void)what;
	if (c->h2 == NULL || evtimer_pending(c->ping_timeout, NULL))
		return;
	if (nds_h2_ping(c->h2) != 0) {
		client_fail(c, "keepalive PING could not be sent");
		return;
	}
	ms_to_tv(c->ping_timeout_ms, &tv);
	evtimer_add(c->ping_timeout, &tv);
}

static void
client_on_ping_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct nds_client *c = arg;
	char why[128];

	(void)fd, (void)what;
	nds_errf(why, sizeof(why),
	    "keepalive PING not acknowledged within %u ms", c->ping_timeout_ms);
	client_fail(c, why);
}

/* ---- the ADS stream --------------------------------------------------- */

static int
client_send_request(struct nds_client *c, const struct nds_xds_node *node,
    const char *version, const char *nonce, const char *error)
{
	uint8_t *msg;
	size_t len;

	if (nds_ads_request_build(node, version, nonce, error, &msg, &len))
		return -ENOMEM;
	return nds_h2_send(c->h2, msg, len);
}

static void
client_nack(struct nds_client *c, const char *version, const char *nonce,
    const char *reason)
{
	c->cbs.on_event(NDS_EV_NACK, reason, c->arg);
	if (client_send_request(c, NULL, version, nonce, reason) != 0)
		client_break(c, "out of memory for a NACK");
}

static uint64_t
usec_between(const struct timespec *t0, const struct timespec *t1)
{
	return (uint64_t)(t1->tv_sec - t0->tv_sec) * 1000000u +
	       (uint64_t)((t1->tv_nsec - t0->tv_nsec) / 1000);
}

/* A response still arriving: decode what has come of its NameTable. */
static void
client_on_partial(struct nds_client *c, const uint8_t *msg, size_t got,
    uint64_t total)
{
	struct timespec t0, t1;

	if (!c->early_on) {
		nds_ads_early_init(&c->early);
		c->early_on = 1;
		c->early_acc = 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	nds_ads_early_feed(&c->early, msg, got, (size_t)total);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	c->early_acc += usec_between(&t0, &t1);
}

/* The push's verdict, once known: a table handed up and ACKed, or a
 * NACK, on the connection it came on if that is still up. */
static void
client_verdict(struct nds_client *c, struct nds_ads_result *res, unsigned conn)
{
	bool same = conn == c->conn_seq && c->h2 != NULL;

	switch (res->verdict) {
	case NDS_ADS_IGNORE:
		c->cbs.on_event(NDS_EV_IGNORED, res->reason, c->arg);
		break;
	case NDS_ADS_NACK:
		if (same)
			client_nack(c, res->version, res->nonce, res->reason);
		else
			c->cbs.on_event(NDS_EV_NACK, res->reason, c->arg);
		break;
	case NDS_ADS_ACK:
		c->cbs.on_table(res->table, res->version, res->pb, res->pblen,
		    c->arg);
		res->table = NULL; /* the callee's now */
		/* Its connection is gone: the next one's control plane
		 * pushes again, and that push is ACKed. */
		if (!same)
			break;
		c->cbs.on_event(NDS_EV_ACK, res->version, c->arg);
		if (client_send_request(c, NULL, res->version, res->nonce,
		        NULL) != 0)
			client_break(c, "out of memory for an ACK");
		break;
	}
}

/* Drops the push being compiled, if any. */
static void
client_pend_drop(struct nds_client *c)
{
	nds_table_builder_free(c->bd);
	c->bd = NULL;
	nds_ads_result_fini(&c->pend);
	free(c->pend_msg);
	c->pend_msg = NULL;
	if (c->slice != NULL)
		evtimer_del(c->slice);
}

/* The next slice, once the loop has looked at its sockets (a timer, as
 * event_active() would run it again before any of them). */
static void
client_compile_later(struct nds_client *c)
{
	struct timeval now = {0, 0};

	evtimer_add(c->slice, &now);
}

/*
 * One slice of the compile: steps until NDS_SLICE_US have passed (all
 * of it if !slice); then its verdict if it is done, else the next slice
 * after the loop has served what came meanwhile.
 */
static void
client_compile(struct nds_client *c, bool slice)
{
	struct timespec t0, t1;
	uint64_t us;
	char err[256];
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		rc = nds_table_builder_step(c->bd, NDS_SLICE_UNITS,
		    &c->pend.table, err, sizeof(err));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		us = usec_between(&t0, &t1);
	} while (rc == 1 && (!slice || us < NDS_SLICE_US));
	c->pst.work_us += us;
	c->pst.slices++;
	if (us > c->pst.stall_us)
		c->pst.stall_us = us;
	if (rc == 1) {
		client_compile_later(c);
		return;
	}
	nds_table_builder_free(c->bd);
	c->bd = NULL;
	if (rc != 0)
		nds_ads_result_compile_failed(&c->pend, err);
	c->pst.wall_us = usec_between(&c->pend_t0, &t1);
	c->stats = c->pst;
	client_verdict(c, &c->pend, c->pend_conn);
	client_pend_drop(c);
}

static void
client_on_slice(evutil_socket_t fd, short what, void *arg)
{
	struct nds_client *c = arg;

	(void)fd, (void)what;
	if (c->bd == NULL)
		return;
	client_compile(c, true);
	if (c->broken) {
		char why[sizeof(c->why)];

		nds_errf(why, sizeof(why), "%s", c->why);
		client_fail(c, why);
	}
}

static void
client_on_response(struct nds_client *c, const uint8_t *msg, size_t len)
{
	struct nds_ads_result res;
	struct timespec t0, t1;
	char err[256];
	int rc;

	/* Pushes take effect in order: one still compiling finishes now. */
	if (c->bd != NULL)
		client_compile(c, false);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = nds_ads_response_decode(msg, len, c->early_on ? &c->early : NULL,
	    &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	memset(&c->pst, 0, sizeof(c->pst));
	c->pst.work_us = c->pst.stall_us = usec_between(&t0, &t1);
	c->pst.early_us = c->early_on ? c->early_acc : 0;
	nds_ads_early_fini(&c->early);
	c->early_on = 0;
	if (rc != 0) {
		client_break(c, "out of memory decoding a response");
		return;
	}
	c->attempt = 0;       /* the control plane talks to us */
	if (res.nt == NULL) { /* no compile: the verdict is known */
		client_verdict(c, &res, c->conn_seq);
		nds_ads_result_fini(&res);
		return;
	}
	/* The compile runs in slices. */
	if (nds_table_builder_create(res.nt, &c->build, &c->bd, err,
	        sizeof(err)) != 0) {
		res.nt = NULL; /* freed by the builder */
		nds_ads_result_compile_failed(&res, err);
		client_verdict(c, &res, c->conn_seq);
		nds_ads_result_fini(&res);
		return;
	}
	res.nt = NULL;
	/* The message stays for the snapshot's bytes. Otherwise its buffer,
	 * decoded and faulted in, is the compile's scratch (fresh pages for
	 * the sort would cost ~2 ms per 100k entries). */
	if (!c->keep_bytes) {
		size_t cap = 0;
		uint8_t *buf;

		free(res.pb_own);
		res.pb_own = NULL;
		res.pb = NULL; /* pblen still counts them, for a NACK */
		buf = nds_grpc_rx_take(&c->rx, &cap);
		nds_table_builder_scratch(c->bd, buf, cap);
	} else if (res.pb != NULL && res.pb_own == NULL) {
		c->pend_msg = nds_grpc_rx_take(&c->rx, NULL);
	}
	c->pend = res;
	c->pend_conn = c->conn_seq;
	c->pend_t0 = t0;
	client_compile_later(c);
}

static int
client_on_message(enum nds_grpc_part part, const uint8_t *data, size_t len,
    uint64_t total, void *arg)
{
	struct nds_client *c = arg;
	char reason[256];

	switch (part) {
	case NDS_GRPC_PARTIAL:
		client_on_partial(c, data, len, total);
		break;
	case NDS_GRPC_MESSAGE:
		client_on_response(c, data, len);
		break;
	case NDS_GRPC_OVERSIZE:
		if (!c->skimming) {
			nds_ads_skim_init(&c->skim);
			c->skimming = 1;
		}
		nds_ads_skim_feed(&c->skim, data, len);
		break;
	case NDS_GRPC_OVERSIZE_END:
		c->skimming = 0;
		c->attempt = 0;
		nds_errf(reason, sizeof(reason),
		    "DiscoveryResponse of %llu bytes exceeds the %u-byte "
		    "limit",
		    (unsigned long long)total, NDS_GRPC_MAX_MSG);
		if (c->skim.type_url[0] != '\0' &&
		    strcmp(c->skim.type_url, NDS_TYPE_URL) != 0) {
			c->cbs.on_event(NDS_EV_IGNORED, reason, c->arg);
			break;
		}
		client_nack(c, c->skim.version, c->skim.nonce, reason);
		break;
	}
	return c->broken ? -EPROTO : 0;
}

static int
client_h2_send(const uint8_t *data, size_t len, void *arg)
{
	struct nds_client *c = arg;

	return bufferevent_write(c->bev, data, len) == 0 ? 0 : -ENOMEM;
}

static int
client_h2_data(const uint8_t *data, size_t len, void *arg)
{
	struct nds_client *c = arg;
	char err[256];
	int rc;

	rc = nds_grpc_rx_feed(&c->rx, data, len, client_on_message, c, err,
	    sizeof(err));
	if (rc != 0 && !c->broken)
		client_break(c, rc == -ENOMEM ? "out of memory" : err);
	return rc;
}

static void
client_h2_ready(void *arg)
{
	struct nds_client *c = arg;
	struct timeval tv;

	evtimer_del(c->dial);
	c->connected = 1;
	ms_to_tv(c->keepalive_ms, &tv);
	evtimer_add(c->keepalive, &tv);
	c->cbs.on_event(NDS_EV_CONNECTED, c->authority, c->arg);
}

static void
client_h2_ping_ack(void *arg)
{
	struct nds_client *c = arg;

	evtimer_del(c->ping_timeout);
}

static void
client_h2_close(int http_status, int grpc_status, const char *grpc_msg,
    uint32_t h2_error, void *arg)
{
	struct nds_client *c = arg;
	char why[400];

	if (grpc_status >= 0)
		nds_errf(why, sizeof(why),
		    "ADS stream closed by %s: grpc-status %d%s%s", c->authority,
		    grpc_status, grpc_msg[0] ? ", grpc-message: " : "",
		    grpc_msg);
	else if (http_status != 0 && http_status != 200)
		nds_errf(why, sizeof(why),
		    "ADS stream refused by %s: HTTP status %d", c->authority,
		    http_status);
	else
		nds_errf(why, sizeof(why),
		    "ADS stream reset by %s (HTTP/2 error %s%s%s)",
		    c->authority, nds_h2_strerror(h2_error),
		    nds_h2_goaway(c->h2) ? ", after " : "",
		    nds_h2_goaway(c->h2) ? nds_h2_goaway(c->h2) : "");
	client_break(c, why);
}

/* ---- the transport ---------------------------------------------------- */

static void
client_read(struct bufferevent *bev, void *arg)
{
	struct nds_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v[8];
	char why[300];
	int i, n;

	while (c->h2 != NULL && evbuffer_get_length(in) > 0) {
		n = evbuffer_peek(in, -1, NULL, v, 8);
		if (n > 8)
			n = 8;
		for (i = 0; i < n; i++) {
			if (nds_h2_recv(c->h2, v[i].iov_base, v[i].iov_len, why,
			        sizeof(why)) != 0) {
				client_break(c, why);
				break;
			}
			evbuffer_drain(in, v[i].iov_len);
			if (c->broken)
				break;
		}
		if (c->broken)
			break;
	}
	if (c->h2 != NULL && !c->broken && !nds_h2_alive(c->h2)) {
		nds_errf(why, sizeof(why), "HTTP/2 session with %s ended (%s)",
		    c->authority,
		    nds_h2_goaway(c->h2) ? nds_h2_goaway(c->h2) : "GOAWAY");
		client_break(c, why);
	}
	if (c->broken) {
		nds_errf(why, sizeof(why), "%s", c->why);
		client_fail(c, why);
	}
}

/* The reason a TLS handshake failed, as specific as OpenSSL knows it. */
static void
client_tls_error(struct nds_client *c, struct bufferevent *bev, char *buf,
    size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long e, last = 0;
	long vr;
	char one[160];

	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		last = e;
	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		nds_errf(buf, len,
		    "TLS handshake with %s failed: certificate verify failed: "
		    "%s (expected %s%s)",
		    c->authority, X509_verify_cert_error_string(vr),
		    c->verify_name ? "name " : "IP ",
		    c->verify_name ? c->verify_name : c->host);
		return;
	}
	if (last != 0) {
		ERR_error_string_n(last, one, sizeof(one));
		nds_errf(buf, len, "TLS handshake with %s failed: %s",
		    c->authority, one);
		return;
	}
	nds_errf(buf, len, "TLS connection to %s failed: %s", c->authority,
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void
client_connected(struct nds_client *c)
{
	struct nds_h2_cbs cbs = {
	    .send = client_h2_send,
	    .on_data = client_h2_data,
	    .on_ready = client_h2_ready,
	    .on_ping_ack = client_h2_ping_ack,
	    .on_close = client_h2_close,
	};
	struct nds_h2_header hdr[40];
	char *token = NULL, bearer[TOKEN_MAX + 16];
	size_t n = 0, i;
	int rc;

	if (!c->plaintext) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		const unsigned char *proto = NULL;
		unsigned plen = 0;

		SSL_get0_alpn_selected(ssl, &proto, &plen);
		if (plen != 2 || memcmp(proto, "h2", 2) != 0) {
			char why[200];

			nds_errf(why, sizeof(why),
			    "%s did not negotiate HTTP/2 (ALPN h2) over TLS",
			    c->authority);
			client_fail(c, why);
			return;
		}
	}
	if (nds_h2_create(&cbs, c, H2_WINDOW, &c->h2) != 0) {
		client_fail(c, "out of memory for the HTTP/2 session");
		return;
	}
	nds_grpc_rx_init(&c->rx, NDS_GRPC_MAX_MSG);
	if (c->cluster_id != NULL && c->cluster_id[0] != '\0')
		hdr[n++] = (struct nds_h2_header){"clusterid", c->cluster_id};
	/* SPEC §5: the token travels over TLS only, re-read per stream. */
	if (!c->plaintext && c->token_path != NULL) {
		size_t tlen = 0;
		int trc =
		    nds_file_read(c->token_path, TOKEN_MAX, &token, &tlen);

		while (trc == 0 && tlen > 0 &&
		       (token[tlen - 1] == '\n' || token[tlen - 1] == '\r' ||
		           token[tlen - 1] == ' ' || token[tlen - 1] == '\t'))
			token[--tlen] = '\0';
		if (trc == 0 && tlen > 0 && strlen(token) == tlen) {
			nds_errf(bearer, sizeof(bearer), "Bearer %s", token);
			hdr[n++] =
			    (struct nds_h2_header){"authorization", bearer};
		}
	}
	for (i = 0; i < c->nhdrs && n < sizeof(hdr) / sizeof(hdr[0]); i++)
		hdr[n++] =
		    (struct nds_h2_header){c->hdr_names[i], c->hdr_vals[i]};
	rc = nds_h2_open(c->h2, c->plaintext ? "http" : "https", c->authority,
	    NDS_ADS_PATH, hdr, n);
	free(token);
	if (rc == 0)
		rc = client_send_request(c, &c->node, NULL, NULL, NULL);
	if (rc != 0)
		client_fail(c, "could not open the ADS stream");
}

static void
client_event(struct bufferevent *bev, short what, void *arg)
{
	struct nds_client *c = arg;
	char why[512];
	int dnserr;

	if (what & BEV_EVENT_CONNECTED) {
		client_connected(c);
		return;
	}
	if (!(what & (BEV_EVENT_ERROR | BEV_EVENT_EOF | BEV_EVENT_TIMEOUT)))
		return;
	if ((dnserr = bufferevent_socket_get_dns_error(bev)) != 0)
		nds_errf(why, sizeof(why), "cannot resolve %s: %s", c->host,
		    evutil_gai_strerror(dnserr));
	else if (what & BEV_EVENT_EOF)
		nds_errf(why, sizeof(why), "%s closed the connection%s",
		    c->authority,
		    c->h2 == NULL ? " before HTTP/2 started" : "");
	else if (!c->plaintext && c->h2 == NULL)
		client_tls_error(c, bev, why, sizeof(why));
	else
		nds_errf(why, sizeof(why), "connection to %s failed: %s",
		    c->authority,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	client_fail(c, why);
}

/* A TLS context per attempt, so a rotated root certificate is read. */
static SSL_CTX *
client_tls_ctx(struct nds_client *c, char *why, size_t len)
{
	static const unsigned char alpn[] = {2, 'h', '2'};
	SSL_CTX *ctx;
	int ok;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		nds_errf(why, len, "TLS: out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
	if (strcmp(c->root_cert, "SYSTEM") == 0)
		ok = SSL_CTX_set_default_verify_paths(ctx);
	else if (access(c->root_cert, R_OK) != 0) {
		nds_errf(why, len, "TLS root certificate %s: %s", c->root_cert,
		    strerror(errno));
		SSL_CTX_free(ctx);
		return NULL;
	} else
		ok = SSL_CTX_load_verify_locations(ctx, c->root_cert, NULL);
	if (ok != 1) {
		char e[160];

		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		nds_errf(why, len, "TLS root certificate %s: %s", c->root_cert,
		    e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static struct bufferevent *
client_tls_bev(struct nds_client *c, char *why, size_t len)
{
	struct bufferevent *bev;
	X509_VERIFY_PARAM *vp;
	SSL_CTX *ctx;
	SSL *ssl;
	int ok;

	if ((ctx = client_tls_ctx(c, why, len)) == NULL)
		return NULL;
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL holds its own reference */
	if (ssl == NULL) {
		nds_errf(why, len, "TLS: out of memory");
		return NULL;
	}
	vp = SSL_get0_param(ssl);
	if (c->verify_name != NULL)
		ok = SSL_set_tlsext_host_name(ssl, c->verify_name) == 1 &&
		     X509_VERIFY_PARAM_set1_host(vp, c->verify_name, 0) == 1;
	else
		ok = X509_VERIFY_PARAM_set1_ip_asc(vp, c->host) == 1;
	if (!ok) {
		nds_errf(why, len, "TLS: cannot verify against \"%s\"",
		    c->verify_name ? c->verify_name : c->host);
		SSL_free(ssl);
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(c->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		nds_errf(why, len, "TLS: out of memory");
	}
	return bev;
}

static void
client_connect(struct nds_client *c)
{
	struct timeval tv;
	char why[512], ev[400];
	int rc;

	nds_errf(ev, sizeof(ev), "%s (%s)", c->authority,
	    c->plaintext ? "plaintext h2c" : "TLS");
	c->cbs.on_event(NDS_EV_CONNECTING, ev, c->arg);
	ERR_clear_error();
	if (c->plaintext)
		c->bev =
		    bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
	else if ((c->bev = client_tls_bev(c, why, sizeof(why))) == NULL) {
		client_fail(c, why);
		return;
	}
	if (c->bev == NULL) {
		client_fail(c, "out of memory for a connection");
		return;
	}
	bufferevent_setcb(c->bev, client_read, NULL, client_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	ms_to_tv(c->dial_timeout_ms, &tv);
	evtimer_add(c->dial, &tv);
	if (c->sslen != 0)
		rc = bufferevent_socket_connect(c->bev,
		    (struct sockaddr *)&c->ss, (int)c->sslen);
	else {
		if (c->dns == NULL)
			c->dns = evdns_base_new(c->base,
			    EVDNS_BASE_INITIALIZE_NAMESERVERS |
			        EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (c->dns == NULL) {
			nds_errf(why, sizeof(why),
			    "cannot resolve %s: no usable resolv.conf",
			    c->host);
			client_fail(c, why);
			return;
		}
		rc = bufferevent_socket_connect_hostname(c->bev, c->dns,
		    AF_UNSPEC, c->host, c->port);
	}
	/* A failure may already have been reported through client_event,
	 * which tore the attempt down. */
	if (rc != 0 && c->bev != NULL) {
		nds_errf(why, sizeof(why), "connect to %s failed: %s",
		    c->authority,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		client_fail(c, why);
	}
}

/* ---- life cycle ------------------------------------------------------- */

int
nds_client_create(struct event_base *base, const struct nds_client_config *cfg,
    const struct nds_client_cbs *cbs, void *arg, struct nds_client **out,
    char *err, size_t errlen)
{
	struct nds_client *c;
	int failed = 0, is_ip;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	if (nds_xds_addr_parse(cfg->addr, c->host, sizeof(c->host), &c->port) !=
	    0) {
		nds_errf(err, errlen,
		    "--xds %s: want HOST:PORT, IPv4:PORT or [IPv6]:PORT",
		    cfg->addr ? cfg->addr : "(null)");
		free(c);
		return -EINVAL;
	}
	c->base = base;
	c->cbs = *cbs;
	c->arg = arg;
	nds_errf(c->authority, sizeof(c->authority), "%s", cfg->addr);
	is_ip = client_parse_host(c);
	c->plaintext = cfg->plaintext;
	c->root_cert =
	    client_strdup(c, cfg->root_cert ? cfg->root_cert : "", &failed);
	c->token_path = client_strdup(c, cfg->token_path, &failed);
	c->verify_name =
	    client_strdup(c, client_verify_name(cfg, c->host, is_ip), &failed);
	c->cluster_id = client_strdup(c, cfg->cluster_id, &failed);
	c->nhdrs = cfg->nhdrs;
	c->hdr_names = client_strv(c, cfg->hdr_names, cfg->nhdrs, &failed);
	c->hdr_vals = client_strv(c, cfg->hdr_vals, cfg->nhdrs, &failed);
	c->node.id = client_strdup(c, cfg->node.id, &failed);
	c->node.cluster = client_strdup(c, cfg->node.cluster, &failed);
	c->node.user_agent_name =
	    client_strdup(c, cfg->node.user_agent_name, &failed);
	c->node.user_agent_version =
	    client_strdup(c, cfg->node.user_agent_version, &failed);
	c->node.nmeta = cfg->node.nmeta;
	c->node.meta_keys = (const char *const *)client_strv(c,
	    cfg->node.meta_keys, cfg->node.nmeta, &failed);
	c->node.meta_vals = (const char *const *)client_strv(c,
	    cfg->node.meta_vals, cfg->node.nmeta, &failed);
	c->build.namespace = client_strdup(c, cfg->build.namespace, &failed);
	c->build.domain = client_strdup(c, cfg->build.domain, &failed);
	c->build.search0 = client_strdup(c, cfg->build.search0, &failed);
	c->build.ttl = cfg->build.ttl;
	c->keep_bytes = cfg->keep_bytes;
	c->keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : 30000;
	c->ping_timeout_ms =
	    cfg->ping_timeout_ms ? cfg->ping_timeout_ms : 10000;
	c->dial_timeout_ms = cfg->dial_timeout_ms ? cfg->dial_timeout_ms : 5000;
	c->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : 1000;
	c->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 30000;
	c->retry = evtimer_new(base, client_on_retry, c);
	c->dial = evtimer_new(base, client_on_dial_timeout, c);
	c->keepalive = event_new(base, -1, EV_PERSIST, client_on_keepalive, c);
	c->ping_timeout = evtimer_new(base, client_on_ping_timeout, c);
	c->slice = evtimer_new(base, client_on_slice, c);
	if (failed || c->retry == NULL || c->dial == NULL ||
	    c->keepalive == NULL || c->ping_timeout == NULL ||
	    c->slice == NULL) {
		nds_client_destroy(c);
		nds_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	*out = c;
	client_connect(c);
	return 0;
}

void
nds_client_build_stats(const struct nds_client *c, struct nds_build_stats *st)
{
	*st = c->stats;
}

void
nds_client_destroy(struct nds_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->dial != NULL && c->keepalive != NULL && c->ping_timeout != NULL)
		client_close(c);
	if (c->retry != NULL)
		event_free(c->retry);
	if (c->dial != NULL)
		event_free(c->dial);
	if (c->keepalive != NULL)
		event_free(c->keepalive);
	if (c->ping_timeout != NULL)
		event_free(c->ping_timeout);
	client_pend_drop(c);
	if (c->slice != NULL)
		event_free(c->slice);
	if (c->dns != NULL)
		evdns_base_free(c->dns, 1);
	for (i = 0; i < c->nstrs; i++)
		free(c->strs[i]);
	free(c->strs);
	free(c->hdr_names);
	free(c->hdr_vals);
	free((void *)(uintptr_t)c->node.meta_keys);
	free((void *)(uintptr_t)c->node.meta_vals);
	free(c);
}
