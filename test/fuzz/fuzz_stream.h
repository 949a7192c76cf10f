/*
 * fuzz_stream.h: feeds an input to an nds stream decoder (nds_impl.h) in
 * pieces whose sizes come from the input itself, as nds_file_load() does
 * through its window: what a feed leaves unused is passed again in front
 * of the next bytes, and the bytes in hand grow when a feed takes none.
 * For fuzz_pb.c and fuzz_json.c, which compare the result with the
 * decoder's one-piece run.
 */
#ifndef DNSPROXY_FUZZ_STREAM_H
#define DNSPROXY_FUZZ_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* One feed: 0 to go on, anything else stops (returned by fuzz_pieces). */
typedef int (*fuzz_feed_fn)(void *s, const uint8_t *buf, size_t len, int eof,
    size_t *used);

static inline int
fuzz_pieces(const uint8_t *data, size_t size, void *s, fuzz_feed_fn feed)
{
	uint32_t r = (uint32_t)size * 2654435761u + 1;
	size_t pos = 0, end = 0, used;
	int rc;

	for (;;) {
		r = r * 1103515245u + 12345u;
		/* 1..64 bytes more, now and then a larger gulp. */
		end += (r >> 16) % 8 == 0 ? (r >> 8) % 4096 + 1
		                          : (r >> 16) % 64 + 1;
		if (end > size)
			end = size;
		used = 0;
		if ((rc = feed(s, data + pos, end - pos, end == size, &used)) !=
		    0)
			return rc;
		if (used > end - pos)
			__builtin_trap(); /* took more than it was given */
		pos += used;
		if (end == size)
			return 0;
	}
}

#endif
