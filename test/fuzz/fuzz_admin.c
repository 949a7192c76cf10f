/*
 * fuzz_admin.c: the admin HTTP server of agent/admin.c (evhttp, our
 * limits, our routes) fed a client's byte stream.  Every input gets a
 * fresh server on a listening Unix socket (agent_admin_open_fd()) in one
 * event loop shared by all inputs, with a real resolver (cache on, no
 * upstream) and the SPEC §8-like table of fuzz_answer.c.  A client
 * connects, writes the input (all at once or in chunks, one loop turn per
 * chunk), shuts its write side, and reads whatever comes back until EOF or
 * until a few loop turns pass without progress; then the server is freed
 * (so the run leaks nothing, LSan checks it).
 *
 * Input: byte 0: bit 0 runs without a table (503 and 404 paths), bits 1-7
 * the chunk size (0: all at once); the rest is the client's side of the
 * connection.  Seeds: make_admin_corpus.py.
 *
 * Aborts when a reply does not start with an HTTP status line.
 */
#include <errno.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/agent.h"
#include "nds/nds.h"
#include "resolver/resolver.h"
#include "test/fuzz/fuzz_table.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define F_NOTABLE 0x01
#define IDLE_TURNS 4     /* loop turns without progress before we stop */
#define MAX_TURNS 100000 /* a bound on one run, never reached by design */

static struct event_base *base;
static struct rsv *rsv;
static struct nds_table *table;
static struct agent_state st;
static struct sockaddr_un sun;
static socklen_t sunlen;
static int lfd = -1;

static void
setup(void)
{
	struct nds_build_opts o = {
	    "ns1", "ns1.svc.cluster.local", "ns1.svc.cluster.local", 30};
	struct rsv_config cfg = {0};
	struct nds_nametable *nt;
	char err[256];

	if ((base = event_base_new()) == NULL)
		abort();
	cfg.cache_entries = 100;
	cfg.cache_bytes = 1 << 20;
	cfg.cache_max_ttl = 300;
	if (rsv_create(base, &cfg, &rsv, err, sizeof(err)) != 0)
		abort();
	nt = fuzz_table_sample();
	fuzz_table_add(nt, "quote\"back\\slash.example", "External", NULL, NULL,
	    "3.3.3.3", NULL);
	if (nds_table_build(nt, &o, &table, err, sizeof(err)) != 0)
		abort();
	st.rsv = rsv;
	st.table_loads = 1;
	st.table_updated = 1764158400; /* fixed: replies do not vary */
	snprintf(st.table_version, sizeof(st.table_version), "fuzz\"1\\\n");

	/* An abstract Unix socket, one per process. */
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
	    "dnsproxy-fuzz-admin-%ld", (long)getpid());
	sunlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
	                     strlen(sun.sun_path + 1));
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sun, sunlen) != 0 ||
	    listen(lfd, 16) != 0)
		abort();
}

/* The first bytes of a reply, when there is one. */
static void
check_reply(const uint8_t *buf, size_t n)
{
	static const char head[] = "HTTP/"; /* evhttp echoes the version */
	size_t k = n < sizeof(head) - 1 ? n : sizeof(head) - 1;

	if (memcmp(buf, head, k) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_admin *ad;
	uint8_t buf[65536], first[8];
	size_t off = 0, chunk, nfirst = 0;
	unsigned idle = 0, turns = 0;
	int fd, c = -1, wdone = 0;
	ssize_t r;

	if (base == NULL)
		setup();
	if (size < 1)
		return 0;
	st.table = data[0] & F_NOTABLE ? NULL : table;
	chunk = data[0] >> 1;
	data++, size--;
	if (chunk == 0)
		chunk = size;

	if ((fd = dup(lfd)) < 0 || agent_admin_open_fd(base, fd, &st, &ad) != 0)
		abort();
	if ((c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0 ||
	    connect(c, (struct sockaddr *)&sun, sunlen) != 0)
		abort();
	/*
	 * evhttp drops pipelined requests once it sees EOF, so the write side
	 * is shut only when the server has gone idle on the whole input.
	 */
	while (turns++ < MAX_TURNS) {
		int progress = 0;

		if (off < size) {
			size_t n = size - off < chunk ? size - off : chunk;

			if ((r = write(c, data + off, n)) > 0) {
				off += (size_t)r;
				progress = 1;
			} else if (r < 0 && errno != EAGAIN)
				off = size; /* the server hung up */
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		while ((r = read(c, buf, sizeof(buf))) > 0) {
			if (nfirst < sizeof(first)) {
				size_t k = sizeof(first) - nfirst;

				k = (size_t)r < k ? (size_t)r : k;
				memcpy(first + nfirst, buf, k);
				nfirst += k;
			}
			progress = 1;
		}
		if (r == 0 || (r < 0 && errno != EAGAIN))
			break; /* EOF or reset: the server is done */
		idle = progress ? 0 : idle + 1;
		if (idle == IDLE_TURNS && !wdone) {
			shutdown(c, SHUT_WR);
			wdone = 1;
			idle = 0;
		} else if (idle == IDLE_TURNS)
			break;
	}
	check_reply(first, nfirst);
	agent_admin_close(ad);
	close(c);
	/* Runs the finalizers of the freed bufferevents. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	return 0;
}
