/*
 * xds_impl.h: the layers of the NDS client inside nds/ (not part of
 * nds.h).  Each layer reports upward by callback; only conn.c touches
 * sockets, timers and files:
 *
 *	conn.c   socket, TLS, timers, back-off; owns the layers below
 *	h2.c     one nghttp2 client session carrying the ADS stream (no I/O)
 *	grpc.c   gRPC length-prefixed messages (pure)
 *	ads.c    DiscoveryRequest/Response, ACK/NACK decisions (pure)
 */
#ifndef DNSPROXY_NDS_XDS_IMPL_H
#define DNSPROXY_NDS_XDS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "nds/nds.h"

/* ---- grpc.c ---------------------------------------------------------- */

/* The 5-byte prefix of a gRPC message: flag 0 and a big-endian length. */
#define NDS_GRPC_PREFIX 5

/* What nds_grpc_rx_feed() reports. */
enum nds_grpc_part {
	NDS_GRPC_MESSAGE,      /* a whole message: data, len */
	NDS_GRPC_OVERSIZE,     /* part of a message over the limit: data,
	                        * len, never kept; total = its full length */
	NDS_GRPC_OVERSIZE_END, /* the oversized message has been skipped */
	NDS_GRPC_PARTIAL       /* a message being kept has grown and is not
	                        * whole yet: data = its first len bytes
	                        * (the buffer may move as it grows; len <
	                        * total); NDS_GRPC_MESSAGE follows */
};

/*
 * Called once per message (after a PARTIAL per feed that added to it but
 * did not complete it), or per chunk of an oversized one.  The bytes are
 * valid during the call only.  A nonzero return stops the feed and is
 * returned by nds_grpc_rx_feed().
 */
typedef int (*nds_grpc_fn)(enum nds_grpc_part part, const uint8_t *data,
    size_t len, uint64_t total, void *arg);

/* Reassembles messages from the bytes of one stream. */
struct nds_grpc_rx {
	uint8_t hdr[NDS_GRPC_PREFIX]; /* prefix being read */
	size_t hdr_len;               /* bytes of hdr filled */
	uint64_t msg_len;             /* length of the current message */
	uint64_t got;                 /* bytes of it seen so far */
	uint8_t *buf;                 /* the message (not when oversized) */
	size_t cap;                   /* bytes allocated at buf */
	size_t max;                   /* largest message kept */
	int in_msg;                   /* the prefix is complete */
	int oversize;                 /* skipping the current message */
};

void nds_grpc_rx_init(struct nds_grpc_rx *rx, size_t max);
void nds_grpc_rx_fini(struct nds_grpc_rx *rx);
/* Inside an NDS_GRPC_MESSAGE callback: the message's buffer, which the
 * caller now owns (free()), and its size in *cap (if cap is not NULL);
 * the reader starts a new one. */
uint8_t *nds_grpc_rx_take(struct nds_grpc_rx *rx, size_t *cap);

/*
 * Feeds len bytes of the stream.  Messages grow their buffer as bytes
 * arrive (a huge announced length costs nothing until it is sent).
 * 0; -EPROTO for a compressed message (none is negotiated; err says so);
 * -ENOMEM; or fn's nonzero return.  After an error rx is unusable until
 * nds_grpc_rx_fini() and nds_grpc_rx_init().
 */
int nds_grpc_rx_feed(struct nds_grpc_rx *rx, const uint8_t *data, size_t len,
    nds_grpc_fn fn, void *arg, char *err, size_t errlen);

/* Writes the prefix for a message of len bytes (flag 0, uncompressed). */
void nds_grpc_prefix(uint8_t out[NDS_GRPC_PREFIX], uint32_t len);

/* ---- ads.c ----------------------------------------------------------- */

/*
 * Builds a DiscoveryRequest for NDS with its gRPC prefix in front, ready to
 * send.  node: only on the first request of a stream (NULL otherwise).
 * version, nonce: NULL for the first request.  error: NULL for an ACK,
 * else the NACK reason (error_detail code 13).  *out is malloc'd.
 * 0 or -ENOMEM.
 */
int nds_ads_request_build(const struct nds_xds_node *node, const char *version,
    const char *nonce, const char *error, uint8_t **out, size_t *outlen);

enum nds_ads_verdict {
	NDS_ADS_IGNORE, /* nothing to send (empty push, other type URL) */
	NDS_ADS_ACK,    /* table built: swap it in, then ACK */
	NDS_ADS_NACK    /* send a NACK with reason; keep the old table */
};

/* What a DiscoveryResponse means; nds_ads_result_fini() frees it. */
struct nds_ads_result {
	enum nds_ads_verdict verdict;
	char *version;            /* version_info, "" when absent (never NULL
	                           * after a decoded response) */
	char *nonce;              /* nonce, "" when absent */
	struct nds_table *table;  /* ACK: one reference, for the caller */
	struct nds_nametable *nt; /* ACK from nds_ads_response_decode():
	                           * the NameTable, still to compile */
	const uint8_t *pb;        /* ACK: the NameTable bytes (for the
	                           * snapshot), in the message (valid while
	                           * it is) or in pb_own; NULL if 0 bytes */
	size_t pblen;
	uint8_t *pb_own;  /* malloc'd copy pb points to, or NULL */
	char reason[512]; /* NACK: the error_detail message; IGNORE:
	                   * why (for the log) */
};

/*
 * The NameTable of a large response, decoded while the response arrives:
 * fed the message so far after each read (NDS_GRPC_PARTIAL), it finds the
 * first resource's value and decodes what has come of it, at least
 * NDS_EARLY_STEP bytes at a time (a 100k-service table: 8 MB, ~130 steps
 * of ~0.2 ms), so that once the last byte is in only
 * the rest of the decode and the compile keep the loop from queries.
 * Best effort: anything unusual (a field it cannot read yet or at all, a
 * decode error) gives it up, and nds_ads_response_process() decodes the
 * whole value as before.  The table it gives is the one nds_pb_parse()
 * gives for the same bytes.
 */
#define NDS_EARLY_STEP (64 * 1024)
struct nds_pb_stream;
struct nds_ads_early {
	struct nds_pb_stream *pb; /* the value's decoder, once started */
	size_t pos;               /* next field to read (top level, then
	                           * inside the resource) */
	size_t rend;              /* end of the first resource; 0 before */
	size_t vstart, vlen;      /* the value's bytes; vstart 0 before */
	size_t done;              /* bytes of it decoded */
	size_t step;              /* fewest bytes worth a decode: init
	                           * sets NDS_EARLY_STEP (tests: less) */
	int dead;                 /* given up */
	int whole;                /* all of it decoded */
};
void nds_ads_early_init(struct nds_ads_early *e);
/* msg: the message's first got of total bytes (got == total: all). */
void nds_ads_early_feed(struct nds_ads_early *e, const uint8_t *msg, size_t got,
    size_t total);
void nds_ads_early_fini(struct nds_ads_early *e);

/*
 * Decodes one DiscoveryResponse (SPEC §5): another type URL or no
 * resources: IGNORE; resources[0] must be a NameTable that decodes and
 * compiles with o, else NACK.  Pure.  Always fills res (0), except
 * -ENOMEM when even the result cannot be allocated.  early: NULL, or what
 * was fed the message as it arrived; it is given the rest, and its table
 * is taken if it decoded the very bytes the NameTable is read from.
 */
int nds_ads_response_process(const uint8_t *msg, size_t len,
    const struct nds_build_opts *o, struct nds_ads_early *early,
    struct nds_ads_result *res);
/*
 * nds_ads_response_process() but for the compile: an ACK holds res->nt,
 * which the caller compiles (nds_table_builder_*(), in steps between
 * reads) before it ACKs, or hands to nds_ads_result_compile_failed().
 */
int nds_ads_response_decode(const uint8_t *msg, size_t len,
    struct nds_ads_early *early, struct nds_ads_result *res);
/* The compile of res's NameTable failed with err: res becomes its NACK
 * (the reason nds_ads_response_process() gives), its bytes dropped. */
void nds_ads_result_compile_failed(struct nds_ads_result *res, const char *err);
void nds_ads_result_fini(struct nds_ads_result *res);

/*
 * Reads the top-level scalar fields of a DiscoveryResponse that is too
 * large to keep, chunk by chunk, skipping everything else, so that it can
 * still be NACKed with its nonce.
 */
struct nds_ads_skim {
	int state;          /* where in a field we are */
	int dead;           /* not protobuf: give up */
	uint64_t field;     /* current field number */
	uint64_t varint;    /* varint being read */
	int shift;          /* bits of varint read */
	uint64_t left;      /* bytes of the current field still to pass */
	char *want;         /* buffer being filled, or NULL */
	size_t want_len;    /* bytes in *want */
	char version[256];  /* version_info (cut at 255) */
	char nonce[256];    /* nonce */
	char type_url[256]; /* type_url */
};
void nds_ads_skim_init(struct nds_ads_skim *s);
/* Replaces every byte of s that is not part of valid UTF-8 with '?', so a
 * string cut at a byte count can go out as a proto3 string. */
void nds_utf8_sanitize(char *s);
void nds_ads_skim_feed(struct nds_ads_skim *s, const uint8_t *data, size_t len);

/* Back-off before reconnect attempt n (0 = the first): a random delay in
 * [d/2, d] where d = min(max_ms, min_ms << n); r is a random 32-bit
 * value.  Pure. */
uint32_t nds_backoff_ms(unsigned n, uint32_t min_ms, uint32_t max_ms,
    uint32_t r);

/* ---- h2.c ------------------------------------------------------------ */

struct nds_h2;

/* One extra request header (lower-case name). */
struct nds_h2_header {
	const char *name;
	const char *value;
};

struct nds_h2_cbs {
	/* Bytes to write to the peer; 0 or a negative errno. */
	int (*send)(const uint8_t *data, size_t len, void *arg);
	/* DATA of the ADS stream; a nonzero return fails the session. */
	int (*on_data)(const uint8_t *data, size_t len, void *arg);
	/* The server's first SETTINGS frame: the connection is up. */
	void (*on_ready)(void *arg);
	/* Our keepalive PING was acknowledged. */
	void (*on_ping_ack)(void *arg);
	/* The ADS stream ended: HTTP status (0 if none), grpc-status (-1 if
	 * none), grpc-message ("" if none), HTTP/2 error code. */
	void (*on_close)(int http_status, int grpc_status, const char *grpc_msg,
	    uint32_t h2_error, void *arg);
};

/*
 * A client session with 16 MiB stream and connection windows and push
 * disabled.  0, -ENOMEM.
 */
int nds_h2_create(const struct nds_h2_cbs *cbs, void *arg, uint32_t window,
    struct nds_h2 **out);
void nds_h2_destroy(struct nds_h2 *h); /* NULL-safe */

/* Opens the ADS stream (POST path, gRPC headers plus extra) and flushes
 * the connection preface.  0 or -errno. */
int nds_h2_open(struct nds_h2 *h, const char *scheme, const char *authority,
    const char *path, const struct nds_h2_header *extra, size_t nextra);

/* Queues one framed message on the stream and flushes it (unless called
 * from inside nds_h2_recv(), which flushes on return).  Takes msg.
 * 0 or -errno. */
int nds_h2_send(struct nds_h2 *h, uint8_t *msg, size_t len);

/* Feeds bytes from the peer, then flushes what the session owes.
 * 0 or a negative errno; detail says why on failure. */
int nds_h2_recv(struct nds_h2 *h, const uint8_t *data, size_t len, char *detail,
    size_t detaillen);

/* Sends a PING.  0 or -errno. */
int nds_h2_ping(struct nds_h2 *h);

/* Whether the session is still alive (wants to read or write). */
int nds_h2_alive(const struct nds_h2 *h);

/* The server's GOAWAY as text ("GOAWAY NO_ERROR, last stream 1 "bye""),
 * or NULL if none came. */
const char *nds_h2_goaway(const struct nds_h2 *h);

/* The name of an HTTP/2 error code ("PROTOCOL_ERROR", ...). */
const char *nds_h2_strerror(uint32_t code);

/* ---- snapshot.c ------------------------------------------------------ */
/* (public: nds_snapshot_write in nds.h) */

#endif
