/*
 * grpc.c: gRPC message framing (pure).  A message on the wire is a 1-byte
 * compressed flag, a 4-byte big-endian length and the bytes.  DATA frames
 * cut messages anywhere, so the reader keeps its state between calls.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nds/nds_impl.h"
#include "nds/xds_impl.h"

void
nds_grpc_rx_init(struct nds_grpc_rx *rx, size_t max)
{
	memset(rx, 0, sizeof(*rx));
	rx->max = max;
}

void
nds_grpc_rx_fini(struct nds_grpc_rx *rx)
{
	free(rx->buf);
	rx->buf = NULL;
	rx->cap = 0;
}

void
nds_grpc_prefix(uint8_t out[NDS_GRPC_PREFIX], uint32_t len)
{
	out[0] = 0;
	out[1] = (uint8_t)(len >> 24);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 8);
	out[4] = (uint8_t)len;
}

uint8_t *
nds_grpc_rx_take(struct nds_grpc_rx *rx, size_t *cap)
{
	uint8_t *p = rx->buf;

	if (cap != NULL)
		*cap = rx->cap;
	rx->buf = NULL;
	rx->cap = 0;
	return p;
}

/* Makes room for want bytes of the message, growing geometrically, so
 * that an announced length is only paid for as its bytes arrive. */
static int
rx_reserve(struct nds_grpc_rx *rx, size_t want)
{
	size_t cap = rx->cap ? rx->cap : 4096;
	uint8_t *p;

	if (want <= rx->cap)
		return 0;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if (cap > rx->msg_len)
		cap = (size_t)rx->msg_len;
	if (cap < want)
		cap = want;
	if ((p = realloc(rx->buf, cap)) == NULL)
		return -ENOMEM;
	rx->buf = p;
	rx->cap = cap;
	return 0;
}

/* The message is complete: hand it up and get ready for the next one.
 * The buffer is kept for the next message unless it is large. */
static int
rx_finish(struct nds_grpc_rx *rx, nds_grpc_fn fn, void *arg)
{
	int rc;

	if (rx->oversize)
		rc = fn(NDS_GRPC_OVERSIZE_END, NULL, 0, rx->msg_len, arg);
	else
		rc = fn(NDS_GRPC_MESSAGE, rx->buf, (size_t)rx->msg_len,
		    rx->msg_len, arg);
	rx->in_msg = 0;
	rx->oversize = 0;
	rx->hdr_len = 0;
	rx->got = 0;
	if (rx->cap > 1024 * 1024) {
		free(rx->buf);
		rx->buf = NULL;
		rx->cap = 0;
	}
	return rc;
}

int
nds_grpc_rx_feed(struct nds_grpc_rx *rx, const uint8_t *data, size_t len,
    nds_grpc_fn fn, void *arg, char *err, size_t errlen)
{
	int rc;

	while (len > 0 || (rx->in_msg && rx->got == rx->msg_len)) {
		size_t n;

		if (!rx->in_msg) {
			n = NDS_GRPC_PREFIX - rx->hdr_len;
			if (n > len)
				n = len;
			memcpy(rx->hdr + rx->hdr_len, data, n);
			rx->hdr_len += n;
			data += n;
			len -= n;
			if (rx->hdr_len < NDS_GRPC_PREFIX)
				return 0;
			if (rx->hdr[0] != 0) {
				nds_errf(err, errlen,
				    "gRPC message with flag 0x%02x: "
				    "compression "
				    "was not negotiated",
				    rx->hdr[0]);
				return -EPROTO;
			}
			rx->msg_len = (uint64_t)rx->hdr[1] << 24 |
			              (uint64_t)rx->hdr[2] << 16 |
			              (uint64_t)rx->hdr[3] << 8 | rx->hdr[4];
			rx->got = 0;
			rx->in_msg = 1;
			rx->oversize = rx->msg_len > rx->max;
			continue;
		}
		if (rx->got == rx->msg_len) {
			if ((rc = rx_finish(rx, fn, arg)) != 0)
				return rc;
			continue;
		}
		n = (size_t)(rx->msg_len - rx->got);
		if (n > len)
			n = len;
		if (rx->oversize) {
			rc = fn(NDS_GRPC_OVERSIZE, data, n, rx->msg_len, arg);
			if (rc != 0)
				return rc;
		} else {
			if (rx_reserve(rx, (size_t)rx->got + n) != 0) {
				nds_errf(err, errlen,
				    "out of memory for a %llu-byte message",
				    (unsigned long long)rx->msg_len);
				return -ENOMEM;
			}
			memcpy(rx->buf + rx->got, data, n);
		}
		rx->got += n;
		data += n;
		len -= n;
		if (!rx->oversize && rx->got < rx->msg_len &&
		    (rc = fn(NDS_GRPC_PARTIAL, rx->buf, (size_t)rx->got,
		         rx->msg_len, arg)) != 0)
			return rc;
	}
	return 0;
}
