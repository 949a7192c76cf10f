/*
 * h2.c: one HTTP/2 client session carrying the ADS stream, on nghttp2's
 * memory interface (nghttp2_session_mem_recv/mem_send): bytes in from
 * conn.c, bytes out through cbs->send.  No sockets, no clock.
 *
 * The request body never ends: the data provider returns
 * NGHTTP2_ERR_DEFERRED while nothing is queued, and nds_h2_send() resumes
 * it.  nghttp2 forbids sending from inside its own callbacks, so a message
 * queued while nds_h2_recv() runs goes out when that returns.
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nds/nds_impl.h"
#include "nds/xds_impl.h"

/* One queued message; the stream sends them in order. */
struct h2_msg {
	struct h2_msg *next;
	uint8_t *data;
	size_t len, off;
};

struct nds_h2 {
	nghttp2_session *s;
	struct nds_h2_cbs cbs;
	void *arg;
	uint32_t window;
	int32_t stream;             /* the ADS stream, or -1 */
	struct h2_msg *head, *tail; /* request bytes not yet sent */
	int in_recv;                /* inside nghttp2_session_mem_recv() */
	int ready;                  /* the server's SETTINGS arrived */
	int http_status;            /* :status */
	int grpc_status;            /* grpc-status, -1 until seen */
	char grpc_msg[256];         /* grpc-message */
	char goaway[200];           /* the server's GOAWAY, for the log */
	int failed;                 /* a callback failed; detail says why */
	char detail[256];
};

static ssize_t
h2_read_body(nghttp2_session *s, int32_t stream, uint8_t *buf, size_t len,
    uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct nds_h2 *h = arg;
	struct h2_msg *m = h->head;
	size_t n;

	(void)s, (void)stream, (void)src, (void)flags;
	if (m == NULL)
		return NGHTTP2_ERR_DEFERRED; /* keep the stream open */
	n = m->len - m->off;
	if (n > len)
		n = len;
	memcpy(buf, m->data + m->off, n);
	m->off += n;
	if (m->off == m->len) {
		h->head = m->next;
		if (h->head == NULL)
			h->tail = NULL;
		free(m->data);
		free(m);
	}
	return (ssize_t)n;
}

static int
h2_on_data(nghttp2_session *s, uint8_t flags, int32_t stream,
    const uint8_t *data, size_t len, void *arg)
{
	struct nds_h2 *h = arg;

	(void)s, (void)flags;
	if (stream != h->stream || h->failed)
		return 0;
	if (h->cbs.on_data(data, len, h->arg) != 0) {
		h->failed = 1;
		snprintf(h->detail, sizeof(h->detail),
		    "the ADS stream could not be processed");
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	return 0;
}

static int
hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* grpc-message is percent-encoded on the wire (gRPC PROTOCOL-HTTP2);
 * decode it, and keep only printable bytes for the log line. */
static void
h2_grpc_message(struct nds_h2 *h, const uint8_t *v, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len && n < sizeof(h->grpc_msg) - 1; i++) {
		int c = v[i];

		if (c == '%' && i + 2 < len && hexval(v[i + 1]) >= 0 &&
		    hexval(v[i + 2]) >= 0) {
			c = hexval(v[i + 1]) << 4 | hexval(v[i + 2]);
			i += 2;
		}
		h->grpc_msg[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	h->grpc_msg[n] = '\0';
}

static int
h2_on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
    size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
    void *arg)
{
	struct nds_h2 *h = arg;

	(void)s, (void)flags;
	if (f->hd.stream_id != h->stream)
		return 0;
	if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
		h->http_status = 0;
		for (size_t i = 0; i < valuelen && i < 3; i++)
			h->http_status = h->http_status * 10 + (value[i] - '0');
	} else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
		h->grpc_status = 0;
		for (size_t i = 0; i < valuelen && i < 4; i++) {
			if (value[i] < '0' || value[i] > '9')
				break;
			h->grpc_status = h->grpc_status * 10 + (value[i] - '0');
		}
	} else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0)
		h2_grpc_message(h, value, valuelen);
	return 0;
}

static int
h2_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *arg)
{
	struct nds_h2 *h = arg;

	(void)s;
	if (f->hd.type == NGHTTP2_SETTINGS &&
	    !(f->hd.flags & NGHTTP2_FLAG_ACK) && !h->ready) {
		h->ready = 1;
		if (h->cbs.on_ready != NULL)
			h->cbs.on_ready(h->arg);
	} else if (f->hd.type == NGHTTP2_PING &&
	           (f->hd.flags & NGHTTP2_FLAG_ACK)) {
		if (h->cbs.on_ping_ack != NULL)
			h->cbs.on_ping_ack(h->arg);
	} else if (f->hd.type == NGHTTP2_GOAWAY) {
		size_t n = f->goaway.opaque_data_len;

		if (n > 120)
			n = 120;
		nds_errf(h->goaway, sizeof(h->goaway),
		    "GOAWAY %s, last stream %d%s%.*s%s",
		    nghttp2_http2_strerror(f->goaway.error_code),
		    f->goaway.last_stream_id, n ? " \"" : "", (int)n,
		    n ? (const char *)f->goaway.opaque_data : "",
		    n ? "\"" : "");
		for (char *p = h->goaway; *p; p++)
			if (*p < 0x20 || *p >= 0x7f)
				*p = '?';
	} else if ((f->hd.type == NGHTTP2_HEADERS ||
	               f->hd.type == NGHTTP2_DATA) &&
	           f->hd.stream_id == h->stream &&
	           (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		/*
		 * The server ended its side.  nghttp2 closes the stream only
		 * when ours ends too, and our request body never does: reset
		 * it (as grpc-go's client does), so the close callback runs
		 * and the client reconnects.  RFC 9113 makes the server's
		 * own RST_STREAM optional.
		 */
		nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, h->stream,
		    NGHTTP2_NO_ERROR);
	}
	return 0;
}

const char *
nds_h2_goaway(const struct nds_h2 *h)
{
	return h->goaway[0] ? h->goaway : NULL;
}

static int
h2_on_close(nghttp2_session *s, int32_t stream, uint32_t error, void *arg)
{
	struct nds_h2 *h = arg;

	(void)s;
	if (stream != h->stream)
		return 0;
	h->stream = -1;
	h->cbs.on_close(h->http_status, h->grpc_status, h->grpc_msg, error,
	    h->arg);
	return 0;
}

int
nds_h2_create(const struct nds_h2_cbs *cbs, void *arg, uint32_t window,
    struct nds_h2 **out)
{
	nghttp2_session_callbacks *cb;
	struct nds_h2 *h;
	int rc;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -ENOMEM;
	h->cbs = *cbs;
	h->arg = arg;
	h->window = window;
	h->stream = -1;
	h->grpc_status = -1;
	if (nghttp2_session_callbacks_new(&cb) != 0) {
		free(h);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    h2_on_data);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, h2_on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2_on_close);
	rc = nghttp2_session_client_new(&h->s, cb, h);
	nghttp2_session_callbacks_del(cb);
	if (rc != 0) {
		free(h);
		return -ENOMEM;
	}
	*out = h;
	return 0;
}

void
nds_h2_destroy(struct nds_h2 *h)
{
	struct h2_msg *m;

	if (h == NULL)
		return;
	while ((m = h->head) != NULL) {
		h->head = m->next;
		free(m->data);
		free(m);
	}
	nghttp2_session_del(h->s);
	free(h);
}

/* Writes everything the session owes the peer. */
static int
h2_flush(struct nds_h2 *h)
{
	const uint8_t *data;
	ssize_t n;
	int rc;

	if (h->in_recv)
		return 0;
	while ((n = nghttp2_session_mem_send(h->s, &data)) > 0)
		if ((rc = h->cbs.send(data, (size_t)n, h->arg)) != 0)
			return rc;
	return n < 0 ? -EPROTO : 0;
}

static nghttp2_nv
h2_nv(const char *name, const char *value)
{
	nghttp2_nv nv;

	nv.name = (uint8_t *)(uintptr_t)name;
	nv.value = (uint8_t *)(uintptr_t)value;
	nv.namelen = strlen(name);
	nv.valuelen = strlen(value);
	nv.flags = NGHTTP2_NV_FLAG_NONE;
	return nv;
}

#define H2_FIXED_HEADERS 7

int
nds_h2_open(struct nds_h2 *h, const char *scheme, const char *authority,
    const char *path, const struct nds_h2_header *extra, size_t nextra)
{
	nghttp2_settings_entry set[] = {
	    {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h->window},
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
	};
	nghttp2_data_provider body;
	nghttp2_nv *nva;
	size_t i, n = 0;
	int32_t id;

	if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, set,
	        sizeof(set) / sizeof(set[0])) != 0)
		return -ENOMEM;
	/* The connection window is not a setting: it grows by a
	 * WINDOW_UPDATE from its 65535-byte start. */
	if (nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0,
	        (int32_t)h->window) != 0)
		return -ENOMEM;
	if ((nva = calloc(H2_FIXED_HEADERS + nextra, sizeof(*nva))) == NULL)
		return -ENOMEM;
	nva[n++] = h2_nv(":method", "POST");
	nva[n++] = h2_nv(":scheme", scheme);
	nva[n++] = h2_nv(":authority", authority);
	nva[n++] = h2_nv(":path", path);
	nva[n++] = h2_nv("content-type", "application/grpc");
	nva[n++] = h2_nv("te", "trailers");
	nva[n++] = h2_nv("user-agent", "dnsproxy/" DNSPROXY_VERSION);
	for (i = 0; i < nextra; i++)
		nva[n++] = h2_nv(extra[i].name, extra[i].value);
	body.source.ptr = NULL;
	body.read_callback = h2_read_body;
	id = nghttp2_submit_request(h->s, NULL, nva, n, &body, h);
	free(nva);
	if (id < 0)
		return -ENOMEM;
	h->stream = id;
	return h2_flush(h);
}

int
nds_h2_send(struct nds_h2 *h, uint8_t *msg, size_t len)
{
	struct h2_msg *m;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		free(msg);
		return -ENOMEM;
	}
	m->data = msg;
	m->len = len;
	if (h->tail != NULL)
		h->tail->next = m;
	else
		h->head = m;
	h->tail = m;
	if (h->stream >= 0)
		nghttp2_session_resume_data(h->s, h->stream);
	return h2_flush(h);
}

int
nds_h2_recv(struct nds_h2 *h, const uint8_t *data, size_t len, char *detail,
    size_t detaillen)
{
	ssize_t n;
	int rc;

	h->in_recv = 1;
	n = nghttp2_session_mem_recv(h->s, data, len);
	h->in_recv = 0;
	if (h->failed) {
		nds_errf(detail, detaillen, "%s", h->detail);
		return -EPROTO;
	}
	if (n < 0) {
		nds_errf(detail, detaillen, "HTTP/2: %s",
		    nghttp2_strerror((int)n));
		return -EPROTO;
	}
	if ((rc = h2_flush(h)) != 0) {
		nds_errf(detail, detaillen, "HTTP/2 send: %s",
		    rc == -EPROTO ? "session error" : "write failed");
		return rc;
	}
	return 0;
}

int
nds_h2_ping(struct nds_h2 *h)
{
	if (nghttp2_submit_ping(h->s, NGHTTP2_FLAG_NONE, NULL) != 0)
		return -ENOMEM;
	return h2_flush(h);
}

int
nds_h2_alive(const struct nds_h2 *h)
{
	return nghttp2_session_want_read(h->s) ||
	       nghttp2_session_want_write(h->s);
}

const char *
nds_h2_strerror(uint32_t code)
{
	return nghttp2_http2_strerror(code);
}
