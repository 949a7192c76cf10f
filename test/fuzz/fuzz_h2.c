/*
 * fuzz_h2.c: the HTTP/2 client session of nds/h2.c fed what a server
 * might send.  It is driven as conn.c drives it: opened on the ADS path
 * with extra headers and the first request queued, the input handed to
 * nds_h2_recv() in chunks until it fails, DATA of the ADS stream run
 * through gRPC reassembly (so a compressed message fails the session from
 * inside a callback) with an ACK queued per message from inside
 * nds_h2_recv(); then one more message and a PING go out.
 *
 * Input: byte 0 is the chunk size (0: all at once); byte 1 flags: bit 0
 * opens the stream with nothing queued (the body is deferred until the
 * last message), bit 1 sends a PING before the input, bit 2 makes every
 * write fail from the first byte of input on; the rest is the server's
 * side of the connection (stream 1 is the ADS stream).  Seeds:
 * make_xds_corpus.py.
 *
 * Aborts when a callback breaks its contract: on_ready or on_close more
 * than once, DATA after on_close, a status out of range, a grpc-message
 * that is not printable, an empty write, a failure without a reason, or
 * a connection that does not start with the client preface.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nds/nds.h"
#include "nds/xds_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define F_DEFER 0x01  /* no first request */
#define F_PING 0x02   /* PING before the input */
#define F_BROKEN 0x04 /* writes fail once the input starts */

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* One run over one input. */
struct run {
	struct nds_h2 *h;
	struct nds_grpc_rx rx;
	int broken;                        /* writes fail */
	size_t sent;                       /* bytes written to the "socket" */
	uint8_t head[sizeof(preface) - 1]; /* the first of them */
	size_t data;                       /* DATA bytes of the ADS stream */
	unsigned messages;                 /* gRPC messages in them */
	unsigned ready;                    /* on_ready calls */
	unsigned closed;                   /* on_close calls */
	unsigned ping_acks;                /* on_ping_ack calls */
};

/* Queues the ACK conn.c would send; inside nds_h2_recv() it waits for
 * the flush on return. */
static void
send_ack(struct run *r)
{
	uint8_t *msg;
	size_t len;

	if (nds_ads_request_build(NULL, "v1", "n1", NULL, &msg, &len) == 0)
		(void)nds_h2_send(r->h, msg, len);
}

static int
h2_send(const uint8_t *data, size_t len, void *arg)
{
	struct run *r = arg;
	size_t n;

	if (data == NULL || len == 0)
		abort();
	if (r->broken)
		return -ENOMEM;
	if (r->sent < sizeof(r->head)) {
		n = sizeof(r->head) - r->sent;
		memcpy(r->head + r->sent, data, n < len ? n : len);
	}
	r->sent += len;
	return 0;
}

static int
grpc_message(enum nds_grpc_part part, const uint8_t *data, size_t len,
    uint64_t total, void *arg)
{
	struct run *r = arg;

	(void)data, (void)len, (void)total;
	if (part == NDS_GRPC_MESSAGE || part == NDS_GRPC_OVERSIZE_END) {
		r->messages++;
		send_ack(r);
	}
	return 0;
}

static int
h2_data(const uint8_t *data, size_t len, void *arg)
{
	struct run *r = arg;

	if (r->closed)
		abort();
	r->data += len;
	return nds_grpc_rx_feed(&r->rx, data, len, grpc_message, r, NULL, 0);
}

static void
h2_ready(void *arg)
{
	struct run *r = arg;

	if (r->ready++ > 0)
		abort();
}

static void
h2_ping_ack(void *arg)
{
	struct run *r = arg;

	r->ping_acks++;
}

static void
h2_close(int http_status, int grpc_status, const char *grpc_msg,
    uint32_t h2_error, void *arg)
{
	struct run *r = arg;
	size_t i;

	if (r->closed++ > 0)
		abort();
	/* nghttp2 lets only three digits through as :status, "002" too */
	if (http_status < 0 || http_status > 999)
		abort();
	if (grpc_status < -1 || grpc_status > 9999)
		abort();
	for (i = 0; grpc_msg[i] != '\0'; i++)
		if (i >= 255 || grpc_msg[i] < 0x20 || grpc_msg[i] > 0x7e)
			abort();
	if (nds_h2_strerror(h2_error) == NULL)
		abort();
}

/* The session as conn.c opens it; 0 or -errno. */
static int
open_session(struct run *r, unsigned flags)
{
	static const struct nds_h2_cbs cbs = {
	    .send = h2_send,
	    .on_data = h2_data,
	    .on_ready = h2_ready,
	    .on_ping_ack = h2_ping_ack,
	    .on_close = h2_close,
	};
	static const struct nds_h2_header extra[] = {
	    {"clusterid", "Kubernetes"},
	    {"authorization", "Bearer token"},
	};
	uint8_t *msg;
	size_t len;
	int rc;

	if ((rc = nds_h2_create(&cbs, r, 16u * 1024 * 1024, &r->h)) != 0)
		return rc;
	rc = nds_h2_open(r->h, "http", "istiod.istio-system.svc:15010",
	    NDS_ADS_PATH, extra, sizeof(extra) / sizeof(extra[0]));
	if (rc != 0)
		return rc;
	if (r->sent < sizeof(r->head) ||
	    memcmp(r->head, preface, sizeof(r->head)) != 0)
		abort();
	if (!(flags & F_DEFER)) {
		if ((rc = nds_ads_request_build(NULL, NULL, NULL, NULL, &msg,
		         &len)) != 0 ||
		    (rc = nds_h2_send(r->h, msg, len)) != 0)
			return rc;
	}
	if (flags & F_PING)
		rc = nds_h2_ping(r->h);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r;
	size_t chunk, n;
	unsigned flags;
	char detail[256];

	if (size < 2)
		return 0;
	memset(&r, 0, sizeof(r));
	chunk = data[0];
	flags = data[1];
	data += 2;
	size -= 2;
	nds_grpc_rx_init(&r.rx, 64 * 1024);
	if (open_session(&r, flags) != 0)
		goto out;
	r.broken = (flags & F_BROKEN) != 0;
	while (size > 0) {
		n = chunk == 0 || chunk > size ? size : chunk;
		detail[0] = '\0';
		if (nds_h2_recv(r.h, data, n, detail, sizeof(detail)) != 0) {
			if (detail[0] == '\0')
				abort();
			break; /* conn.c drops the connection */
		}
		data += n;
		size -= n;
	}
	/* every message came in DATA, behind its 5-byte prefix */
	if (r.closed > 1 || (uint64_t)r.messages * NDS_GRPC_PREFIX > r.data)
		abort();
	send_ack(&r);
	(void)nds_h2_ping(r.h);
	(void)nds_h2_alive(r.h);
out:
	nds_h2_destroy(r.h);
	nds_grpc_rx_fini(&r.rx);
	return 0;
}
