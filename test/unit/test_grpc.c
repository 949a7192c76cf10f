/*
 * test_grpc.c: gRPC message framing (nds/grpc.c): messages cut anywhere
 * by DATA frames, several per frame, empty ones, the 64 MiB style limit
 * with its skip-and-continue path, compression refused, and allocation
 * failures.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test/unit/allocfail.h"
#define realloc counted_realloc
#include "nds/grpc.c"
#undef realloc

/* What the callback saw. */
struct seen {
	int messages;            /* NDS_GRPC_MESSAGE calls */
	size_t lens[16];         /* their lengths */
	uint8_t first[16];       /* their first byte (0 if empty) */
	uint64_t oversize_bytes; /* bytes passed as NDS_GRPC_OVERSIZE */
	uint64_t oversize_total; /* total given with them */
	int oversize_ends;       /* NDS_GRPC_OVERSIZE_END calls */
	int stop_after;          /* return 1 after this many messages */
	int partials;            /* NDS_GRPC_PARTIAL calls */
	size_t partial_len;      /* the last one's length (0 after a
	                          * message) */
};

static int
record(enum nds_grpc_part part, const uint8_t *data, size_t len, uint64_t total,
    void *arg)
{
	struct seen *s = arg;

	switch (part) {
	case NDS_GRPC_PARTIAL:
		/* the message so far: grown, not whole */
		assert_true(len > s->partial_len && len < total);
		s->partial_len = len;
		s->partials++;
		break;
	case NDS_GRPC_MESSAGE:
		assert_int_equal(len, total);
		s->partial_len = 0;
		if (s->messages < 16) {
			s->lens[s->messages] = len;
			s->first[s->messages] = len ? data[0] : 0;
		}
		s->messages++;
		if (s->stop_after && s->messages == s->stop_after)
			return 1;
		break;
	case NDS_GRPC_OVERSIZE:
		s->oversize_bytes += len;
		s->oversize_total = total;
		break;
	case NDS_GRPC_OVERSIZE_END:
		s->oversize_ends++;
		assert_int_equal(s->oversize_bytes, total);
		break;
	}
	return 0;
}

/* Appends one framed message of len bytes, all equal to fill. */
static size_t
frame(uint8_t *out, size_t len, uint8_t fill)
{
	nds_grpc_prefix(out, (uint32_t)len);
	memset(out + NDS_GRPC_PREFIX, fill, len);
	return NDS_GRPC_PREFIX + len;
}

static void
test_prefix_is_flag_zero_and_big_endian_length(void **state)
{
	uint8_t p[NDS_GRPC_PREFIX];

	(void)state;
	nds_grpc_prefix(p, 0x01020304);
	assert_int_equal(p[0], 0);
	assert_int_equal(p[1], 1);
	assert_int_equal(p[2], 2);
	assert_int_equal(p[3], 3);
	assert_int_equal(p[4], 4);
}

static void
test_message_in_one_chunk(void **state)
{
	struct nds_grpc_rx rx;
	struct seen s = {0};
	uint8_t buf[64];
	size_t n = frame(buf, 10, 'a');

	(void)state;
	nds_grpc_rx_init(&rx, 1024);
	assert_int_equal(nds_grpc_rx_feed(&rx, buf, n, record, &s, NULL, 0), 0);
	assert_int_equal(s.messages, 1);
	assert_int_equal(s.lens[0], 10);
	assert_int_equal(s.first[0], 'a');
	assert_int_equal(s.partials, 0); /* whole at once: no partial */
	nds_grpc_rx_fini(&rx);
}

static void
test_message_cut_into_single_bytes(void **state)
{
	struct nds_grpc_rx rx;
	struct seen s = {0};
	uint8_t buf[256];
	size_t n = frame(buf, 200, 'b'), i;

	(void)state;
	nds_grpc_rx_init(&rx, 1024);
	for (i = 0; i < n; i++) {
		assert_int_equal(s.messages, 0);
		assert_int_equal(nds_grpc_rx_feed(&rx, buf + i, 1, record, &s,
		                     NULL, 0),
		    0);
	}
	assert_int_equal(s.messages, 1);
	assert_int_equal(s.lens[0], 200);
	/* one partial per byte of the message but the last */
	assert_int_equal(s.partials, 199);
	nds_grpc_rx_fini(&rx);
}

static void
test_several_messages_and_an_empty_one_in_one_chunk(void **state)
{
	struct nds_grpc_rx rx;
	struct seen s = {0};
	uint8_t buf[256];
	size_t n = 0;

	(void)state;
	n += frame(buf + n, 3, 'x');
	n += frame(buf + n, 0, 0);
	n += frame(buf + n, 7, 'y');
	nds_grpc_rx_init(&rx, 1024);
	assert_int_equal(nds_grpc_rx_feed(&rx, buf, n, record, &s, NULL, 0), 0);
	assert_int_equal(s.messages, 3);
	assert_int_equal(s.lens[0], 3);
	assert_int_equal(s.lens[1], 0);
	assert_int_equal(s.lens[2], 7);
	assert_int_equal(s.first[2], 'y');
	nds_grpc_rx_fini(&rx);
}

static void
test_compressed_message_is_a_protocol_error(void **state)
{
	struct nds_grpc_rx rx;
	struct seen s = {0};
	uint8_t buf[16];
	char err[128] = "";
	size_t n = frame(buf, 4, 'c');

	(void)state;
	buf[0] = 1;
	nds_grpc_rx_init(&rx, 1024);
	assert_int_equal(nds_grpc_rx_feed(&rx, buf, n, record, &s, err,
	                     sizeof(err)),
	    -EPROTO);
	assert_non_null(strstr(err, "compression"));
	assert_int_equal(s.messages, 0);
	nds_grpc_rx_fini(&rx);
}

static void
test_oversized_message_is_skipped_and_the_next_one_arrives(void **state)
{
	struct nds_grpc_rx rx;
	struct seen s = {0};
	uint8_t *buf = malloc(4096);
	size_t n = 0, i;

	(void)state;
	n += frame(buf + n, 3000, 'o');
	n += frame(buf + n, 5, 'k');
	nds_grpc_rx_init(&rx, 1000);
	for (i = 0; i < n; i += 97) {
		size_t k = n - i < 97 ? n - i : 97;

		assert_int_equal(nds_grpc_rx_feed(&rx, buf + i, k, record, &s,
		                     NULL, 0),
		    0);
	}
	assert_int_equal(s.oversize_ends, 1);
	assert_int_equal(s.oversize_bytes, 3000);
	assert_int_equal(s.oversize_total, 3000);
	assert_int_equal(s.messages, 1);
	assert_int_equal(s.lens[0], 5);
	assert_int_equal(s.first[0], 'k');
	/* nothing of the skipped message was kept */
	assert_true(rx.cap <= 1000);
	nds_grpc_rx_fini(&rx);
	free(buf);
}

static void
test_announced_length_costs_nothing_until_sent(void **state)
{
	struct nds_grpc_rx rx;
	struct seen s = {0};
	uint8_t p[NDS_GRPC_PREFIX + 10];

	(void)state;
	nds_grpc_prefix(p, 60u * 1024 * 1024);
	memset(p + NDS_GRPC_PREFIX, 'z', 10);
	nds_grpc_rx_init(&rx, NDS_GRPC_MAX_MSG);
	assert_int_equal(nds_grpc_rx_feed(&rx, p, sizeof(p), record, &s, NULL,
	                     0),
	    0);
	assert_int_equal(s.messages, 0);
	assert_true(rx.cap < 64 * 1024);
	nds_grpc_rx_fini(&rx);
}

static void
test_callback_return_stops_the_feed(void **state)
{
	struct nds_grpc_rx rx;
	struct seen s = {.stop_after = 1};
	uint8_t buf[64];
	size_t n = 0;

	(void)state;
	n += frame(buf + n, 2, 'a');
	n += frame(buf + n, 2, 'b');
	nds_grpc_rx_init(&rx, 1024);
	assert_int_equal(nds_grpc_rx_feed(&rx, buf, n, record, &s, NULL, 0), 1);
	assert_int_equal(s.messages, 1);
	nds_grpc_rx_fini(&rx);
}

static void
test_allocation_failure_is_enomem_without_leak(void **state)
{
	struct nds_grpc_rx rx;
	struct seen s = {0};
	uint8_t buf[64];
	char err[128] = "";
	size_t n = frame(buf, 20, 'm');

	(void)state;
	nds_grpc_rx_init(&rx, 1024);
	alloc_fail_at = 0;
	assert_int_equal(nds_grpc_rx_feed(&rx, buf, n, record, &s, err,
	                     sizeof(err)),
	    -ENOMEM);
	alloc_fail_at = -1;
	assert_non_null(strstr(err, "out of memory"));
	nds_grpc_rx_fini(&rx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_prefix_is_flag_zero_and_big_endian_length),
	    cmocka_unit_test(test_message_in_one_chunk),
	    cmocka_unit_test(test_message_cut_into_single_bytes),
	    cmocka_unit_test(
	        test_several_messages_and_an_empty_one_in_one_chunk),
	    cmocka_unit_test(test_compressed_message_is_a_protocol_error),
	    cmocka_unit_test(
	        test_oversized_message_is_skipped_and_the_next_one_arrives),
	    cmocka_unit_test(test_announced_length_costs_nothing_until_sent),
	    cmocka_unit_test(test_callback_return_stops_the_feed),
	    cmocka_unit_test(test_allocation_failure_is_enomem_without_leak),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
