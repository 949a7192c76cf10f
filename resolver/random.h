/*
 * random.h: the default random source of D6 (address shuffles, upstream
 * order) and of upstream query IDs.
 *
 * glibc 2.36's arc4random() is one getrandom() system call per number:
 * a forwarded query paid one for its ID, and a headless answer with n
 * addresses n - 1 for its shuffle.  This source takes the kernel's bytes
 * 256 at a time and hands them out as 32-bit words, each wiped once
 * used; a bound that does not divide 2^32 is met by rejection sampling,
 * so every value is equally likely.  The words are as unpredictable as
 * getrandom()'s; they live in the process' memory until used, which an
 * attacker who can read that memory has no need of.
 *
 * Not for a forked child that keeps running: it would hand out the
 * parent's next words (the snapshot writer draws none).
 */
#ifndef DNSPROXY_RESOLVER_RANDOM_H
#define DNSPROXY_RESOLVER_RANDOM_H

#include <stddef.h>
#include <stdint.h>

#define RSV_RANDOM_WORDS 64 /* 256 bytes: one getrandom() never short */

struct rsv_random {
	uint32_t words[RSV_RANDOM_WORDS];
	unsigned left;    /* words[0 .. left) not yet used */
	uint64_t refills; /* getrandom() calls so far */
	/* The kernel by default; tests put a fixed sequence here. */
	void (*fill)(void *buf, size_t len, void *arg);
	void *fill_arg;
};

/* An empty pool that fills itself from getrandom() on first use. */
void rsv_random_init(struct rsv_random *r);

/* Uniform on [0, bound); 0 when bound < 2. */
uint32_t rsv_random_uniform(struct rsv_random *r, uint32_t bound);

#endif
