/*
 * random.c: getrandom() bytes, 256 at a time, as uniform numbers.
 */
#include "resolver/random.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void
random_kernel(void *buf, size_t len, void *arg)
{
	uint8_t *p = buf;
	ssize_t n;

	(void)arg;
	while (len > 0) {
		n = getrandom(p, len, 0);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EINTR) {
			/* glibc's source: it aborts if the kernel has none */
			arc4random_buf(p, len);
			return;
		}
	}
}

void
rsv_random_init(struct rsv_random *r)
{
	memset(r, 0, sizeof(*r));
	r->fill = random_kernel;
}

static uint32_t
random_word(struct rsv_random *r)
{
	uint32_t w;

	if (r->left == 0) {
		r->fill(r->words, sizeof(r->words), r->fill_arg);
		r->left = RSV_RANDOM_WORDS;
		r->refills++;
	}
	w = r->words[--r->left];
	r->words[r->left] = 0; /* a used word is not left lying about */
	return w;
}

uint32_t
rsv_random_uniform(struct rsv_random *r, uint32_t bound)
{
	uint32_t w, min;

	if (bound < 2)
		return 0;
	/* 2^32 mod bound: words below it would favour the low values. */
	min = (uint32_t)(0u - bound) % bound;
	do
		w = random_word(r);
	while (w < min);
	return w % bound;
}
