/*
 * fwd.c: forwarding through c-ares (SPEC §4).  The only I/O of resolver/.
 *
 * One c-ares channel per (upstream server, transport): c-ares 1.18.1 can
 * neither pick a server per ares_send() nor switch UDP/TCP per query, and
 * we want to choose the order, fail over on SERVFAIL/REFUSED and forward
 * TCP clients over TCP.  Each channel is told one server, one try, our
 * timeout, no rotation, no search, no cache, and to hand every reply to
 * us (NOCHECKRESP) with TC untouched (IGNTC).
 *
 * The channels run on our event loop: the socket-state callback keeps one
 * event per c-ares socket, each event calls ares_process_fd() for its
 * channel, and one timer per channel is re-armed from ares_timeout() after
 * anything that may have moved the deadline.
 *
 * A forwarded query is one struct fwd_query that lives until its last
 * ares_send() callback has run (several at once in parallel mode).  The
 * client hears exactly once: the first good reply, or when every attempt
 * has failed, the last upstream reply if any, else SERVFAIL.  c-ares 1.18.1
 * matches replies by ID, and two clients may use the same ID, so every
 * forwarded query gets an ID unique among those in flight; the client's
 * is put back on the reply.
 */
#include "resolver/fwd.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FWD_ID_WORDS (65536 / 64)
/* Where c-ares 1.18.1 cuts UDP replies (see fwd_recvfrom()). */
#define FWD_UDP_CUT 512
/* A cut UDP reply relayed as header + question + TC=1. */
#define FWD_CUT_MAX (RSV_HDR_LEN + RSV_NAME_MAX + 4)

const double rsv_fwd_bucket_bounds[RSV_FWD_BUCKETS] = {
    0.001, 0.005, 0.01, 0.1, 1, 5};

struct fwd;

/* One socket c-ares asked us to watch. */
struct fwd_sock {
	struct fwd_chan *chan;
	ares_socket_t fd;
	struct event *ev; /* EV_READ and/or EV_WRITE, persistent */
	TAILQ_ENTRY(fwd_sock) entry;
};
TAILQ_HEAD(fwd_sock_list, fwd_sock);

/* One (server, transport) channel. */
struct fwd_chan {
	struct fwd *f;
	ares_channel channel;
	struct event *timer;        /* c-ares' next deadline */
	struct fwd_sock_list socks; /* sockets being watched */
	size_t server;              /* index into f->names */
};

struct fwd {
	struct event_base *base;
	const struct rsv_rng *rng;
	struct rsv_stats *stats;
	struct fwd_chan *chans; /* [server * 2 + transport] */
	size_t nservers;
	char (*names)[64];      /* "10.96.0.10:53", per server */
	const char **name_ptrs; /* the same, as an array of pointers */
	uint64_t *failures;     /* per server: failed attempts */
	unsigned timeout_ms;
	unsigned attempts; /* in total per query */
	unsigned max_forwards;
	int parallel;
	int destroying;             /* no new attempts: answer and go */
	rsv_log_fn log;             /* query log, or NULL */
	struct rsv_cache *cache;    /* borrowed; NULL: no cache */
	unsigned stale_timeout_ms;  /* wait before serving stale */
	struct fwd_query **flights; /* keyed exchanges, by key and transport */
	size_t flight_mask;         /* buckets - 1 */
	uint64_t ids[FWD_ID_WORDS]; /* outgoing IDs in flight (bitmap) */
	/* The last UDP datagram read, whole (see fwd_recvfrom()). */
	const struct fwd_chan *dgram_chan;
	size_t dgram_len;
	uint8_t dgram[RSV_MSG_MAX];
};

/* One ares_send(): the callback learns its query and server from it. */
struct fwd_attempt {
	struct fwd_query *fq;
	size_t server;
};

/* A client waiting for an exchange's reply. */
struct fwd_waiter {
	TAILQ_ENTRY(fwd_waiter) entry;
	rsv_reply_fn cb;
	void *arg;
	struct rsv_query q; /* its query: ID, question case, RD, size */
	enum rsv_transport tr;
	size_t limit;          /* its reply size limit */
	struct timespec start; /* when its query came */
	int embedded;          /* the exchange's own: not freed alone */
};
TAILQ_HEAD(fwd_waiters, fwd_waiter);

/*
 * One upstream exchange: the attempts for one query, and every client
 * waiting for its reply.  Keyed exchanges (the cache is on and the query
 * may use it) sit in the flight table, so that identical queries join
 * them instead of going upstream too, and put their reply in the cache.
 */
struct fwd_query {
	struct fwd *f;
	struct fwd_waiters waiters; /* in arrival order; may be empty */
	struct fwd_waiter first;    /* the client who started it */
	struct rsv_query q;         /* the question sent, for the cut reply */
	enum rsv_transport tr;
	uint8_t *msg; /* the query sent, with our ID */
	size_t len;
	uint16_t out_id;
	unsigned sent;    /* attempts started */
	unsigned pending; /* ares_send() callbacks still to come */
	unsigned holds;   /* fwd_next() frames using fq (see there) */
	int done;         /* the reply is known */
	uint8_t *last;    /* last upstream failure reply (SERVFAIL,
	                   * REFUSED), relayed if nothing better */
	size_t lastlen;
	struct timespec start;
	uint32_t *order; /* server order for this query */
	int keyed;       /* in the flight table under key */
	struct rsv_cache_key key;
	struct fwd_query *hnext;   /* flight table chain */
	struct event *stale_timer; /* serve-stale deadline, or NULL */
	int stale_fired;           /* its waiters got the stale answer */
	struct fwd_attempt att[];  /* one per attempt */
};

/* ---- IDs ---- */

static int
fwd_id_busy(const struct fwd *f, uint16_t id)
{
	return (f->ids[id / 64] >> (id % 64)) & 1;
}

static void
fwd_id_set(struct fwd *f, uint16_t id, int busy)
{
	if (busy)
		f->ids[id / 64] |= (uint64_t)1 << (id % 64);
	else
		f->ids[id / 64] &= ~((uint64_t)1 << (id % 64));
}

/* An ID no query in flight uses; there are far fewer than 65536. */
static uint16_t
fwd_id_take(struct fwd *f)
{
	uint16_t id = (uint16_t)f->rng->fn(65536, f->rng->arg);

	while (fwd_id_busy(f, id))
		id++;
	fwd_id_set(f, id, 1);
	return id;
}

/* ---- loop integration ---- */

static void fwd_timer_rearm(struct fwd_chan *ch);

static void
fwd_on_fd(evutil_socket_t fd, short what, void *arg)
{
	struct fwd_sock *s = arg;
	struct fwd_chan *ch = s->chan; /* s may be freed below */

	ares_process_fd(ch->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	fwd_timer_rearm(ch); /* a retry may have moved the deadline */
}

static void
fwd_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fwd_chan *ch = arg;

	(void)fd, (void)what;
	ares_process_fd(ch->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	fwd_timer_rearm(ch);
}

static void
fwd_timer_rearm(struct fwd_chan *ch)
{
	struct timeval tv, *tvp;

	if (ch->channel == NULL)
		return;
	tvp = ares_timeout(ch->channel, NULL, &tv);
	if (tvp != NULL)
		evtimer_add(ch->timer, tvp);
	else
		evtimer_del(ch->timer);
}

/* c-ares opens, changes or closes a socket. */
static void
fwd_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct fwd_chan *ch = data;
	struct fwd_sock *s;
	short what =
	    (short)((readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));

	TAILQ_FOREACH(s, &ch->socks, entry)
		if (s->fd == fd)
			break;
	if (s != NULL) {
		event_free(s->ev);
		s->ev = NULL;
		if (what == 0) {
			TAILQ_REMOVE(&ch->socks, s, entry);
			free(s);
			return;
		}
	} else {
		if (what == 0 || (s = calloc(1, sizeof(*s))) == NULL)
			return; /* on ENOMEM c-ares times the query out */
		s->chan = ch;
		s->fd = fd;
		TAILQ_INSERT_TAIL(&ch->socks, s, entry);
	}
	s->ev = event_new(ch->f->base, fd, (short)(what | EV_PERSIST),
	    fwd_on_fd, s);
	if (s->ev != NULL)
		event_add(s->ev, NULL);
}

/* ---- whole UDP replies ----
 *
 * c-ares 1.18.1 reads a UDP reply into a 4097-byte buffer and then cuts it
 * to 512 bytes unless ARES_FLAG_EDNS is set; and that flag arms its
 * fallback for servers without EDNS, which cuts 11 bytes off a query
 * after a FORMERR without OPT and resends it (fatal for our raw messages).
 * So the flag stays off, and our own recvfrom keeps the whole datagram
 * (up to 65535 bytes, D3) beside the part c-ares sees.  c-ares handles a
 * datagram right after reading it, so the ares_send() callback can take
 * the whole reply from here when it matches what c-ares handed over.
 */

static ares_socket_t
fwd_socket(int domain, int type, int protocol, void *arg)
{
	(void)arg;
	/* c-ares leaves socket options to us once it has our functions. */
	return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}

static int
fwd_close(ares_socket_t s, void *arg)
{
	(void)arg;
	return close(s);
}

static int
fwd_connect(ares_socket_t s, const struct sockaddr *sa, ares_socklen_t len,
    void *arg)
{
	(void)arg;
	return connect(s, sa, len);
}

static ares_ssize_t
fwd_sendv(ares_socket_t s, const struct iovec *iov, int n, void *arg)
{
	(void)arg;
	return writev(s, iov, n);
}

static ares_ssize_t
fwd_recvfrom(ares_socket_t s, void *buf, size_t len, int flags,
    struct sockaddr *from, ares_socklen_t *fromlen, void *arg)
{
	struct fwd_chan *ch = arg;
	struct fwd *f = ch->f;
	ssize_t n;

	/*
	 * from == NULL: c-ares reads a TCP stream, which a UDP channel opens
	 * itself for a query over 512 bytes.  Read exactly what it asks for,
	 * or the rest of the stream is lost.
	 */
	if (from == NULL)
		return recv(s, buf, len, flags);
	n = recvfrom(s, f->dgram, sizeof(f->dgram), flags, from, fromlen);

	if (n < 0) {
		f->dgram_len = 0;
		return n; /* errno as recvfrom left it */
	}
	f->dgram_chan = ch;
	f->dgram_len = (size_t)n;
	if ((size_t)n > len)
		n = (ssize_t)len;
	memcpy(buf, f->dgram, (size_t)n);
	return n;
}

static const struct ares_socket_functions fwd_sock_funcs = {
    fwd_socket, fwd_close, fwd_connect, fwd_recvfrom, fwd_sendv};

/* The whole datagram behind the (possibly cut) reply c-ares handed over. */
static uint8_t *
fwd_whole_reply(struct fwd *f, const struct fwd_chan *ch, uint8_t *abuf,
    size_t *alen)
{
	if (f->dgram_chan != ch || f->dgram_len <= *alen ||
	    memcmp(f->dgram, abuf, *alen) != 0)
		return abuf;
	*alen = f->dgram_len;
	f->dgram_len = 0;
	return f->dgram;
}

/* ---- channels ---- */

static int
fwd_chan_init(struct fwd *f, struct fwd_chan *ch, size_t server, int tcp,
    char *err, size_t errlen)
{
	struct ares_options o;
	int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	           ARES_OPT_SOCK_STATE_CB | ARES_OPT_NOROTATE |
	           ARES_OPT_EDNSPSZ;
	int rc;

	memset(&o, 0, sizeof(o));
	/* No ARES_FLAG_EDNS: see fwd_recvfrom(). */
	o.flags = (tcp ? ARES_FLAG_USEVC | ARES_FLAG_STAYOPEN : 0) |
	          ARES_FLAG_NOCHECKRESP | ARES_FLAG_IGNTC | ARES_FLAG_NOSEARCH |
	          ARES_FLAG_NOALIASES;
	o.timeout = (int)f->timeout_ms;
	o.tries = 1; /* we drive order and count */
	o.sock_state_cb = fwd_sock_state;
	o.sock_state_cb_data = ch;
#ifdef ARES_OPT_QUERY_CACHE
	mask |= ARES_OPT_QUERY_CACHE; /* >= 1.23 caches by default */
	o.qcache_max_ttl = 0;
#endif
#ifdef ARES_OPT_SERVER_FAILOVER
	mask |= ARES_OPT_SERVER_FAILOVER;
	o.server_failover_opts.retry_chance = 0;
	o.server_failover_opts.retry_delay = 0;
#endif
	ch->f = f;
	ch->server = server;
	TAILQ_INIT(&ch->socks);
	if ((ch->timer = evtimer_new(f->base, fwd_on_timer, ch)) == NULL)
		return -ENOMEM;
	if ((rc = ares_init_options(&ch->channel, &o, mask)) != ARES_SUCCESS) {
		ch->channel = NULL;
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		return -ENOMEM;
	}
	if (!tcp)
		ares_set_socket_functions(ch->channel, &fwd_sock_funcs, ch);
	if ((rc = ares_set_servers_ports_csv(ch->channel, f->names[server])) !=
	    ARES_SUCCESS) {
		snprintf(err, errlen, "upstream %s: %s", f->names[server],
		    ares_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

static void
fwd_chan_fini(struct fwd_chan *ch)
{
	struct fwd_sock *s;

	if (ch->channel != NULL) {
		/* Pending queries get ARES_EDESTRUCTION callbacks here. */
		ares_destroy(ch->channel);
		ch->channel = NULL;
	}
	while ((s = TAILQ_FIRST(&ch->socks)) != NULL) {
		TAILQ_REMOVE(&ch->socks, s, entry);
		if (s->ev != NULL)
			event_free(s->ev);
		free(s);
	}
	if (ch->timer != NULL)
		event_free(ch->timer);
	ch->timer = NULL;
}

static int
fwd_name(const struct rsv_upstream *u, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	int n;

	if (inet_ntop(u->family, u->addr, ip, sizeof(ip)) == NULL)
		return -EINVAL;
	n = snprintf(buf, len, u->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip,
	    u->port);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/* The flight table: a bucket per forward in flight, up to 64k. */
static int
fwd_flights_init(struct fwd *f)
{
	size_t n = 16;

	while (n < f->max_forwards && n < 65536)
		n *= 2;
	if ((f->flights = calloc(n, sizeof(*f->flights))) == NULL)
		return -ENOMEM;
	f->flight_mask = n - 1;
	return 0;
}

int
fwd_create(struct event_base *base, const struct rsv_config *cfg,
    const struct rsv_rng *rng, struct rsv_stats *stats, struct rsv_cache *cache,
    struct fwd **out, char *err, size_t errlen)
{
	size_t n = cfg->nupstreams, i;
	struct fwd *f;
	int rc = -ENOMEM;

	*out = NULL;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -ENOMEM;
	f->base = base;
	f->rng = rng;
	f->stats = stats;
	f->nservers = n;
	f->timeout_ms =
	    cfg->timeout_ms ? cfg->timeout_ms : RSV_TIMEOUT_MS_DEFAULT;
	f->attempts = cfg->attempts ? cfg->attempts : (unsigned)(2 * n);
	f->max_forwards =
	    cfg->max_forwards ? cfg->max_forwards : RSV_MAX_FORWARDS_DEFAULT;
	f->parallel = cfg->parallel;
	f->log = cfg->log_reply;
	f->cache = cache;
	f->stale_timeout_ms = cfg->stale_timeout_ms;
	if (cache != NULL && fwd_flights_init(f) != 0)
		goto fail;
	if (n > 0 && ((f->names = calloc(n, sizeof(*f->names))) == NULL ||
	                 (f->name_ptrs = calloc(n, sizeof(char *))) == NULL ||
	                 (f->failures = calloc(n, sizeof(uint64_t))) == NULL ||
	                 (f->chans = calloc(2 * n, sizeof(*f->chans))) == NULL))
		goto fail;
	for (i = 0; i < n; i++) {
		if ((rc = fwd_name(&cfg->upstreams[i], f->names[i],
		         sizeof(f->names[i]))) != 0) {
			snprintf(err, errlen, "upstream %zu: bad address", i);
			goto fail;
		}
		f->name_ptrs[i] = f->names[i];
	}
	for (i = 0; i < 2 * n; i++)
		if ((rc = fwd_chan_init(f, &f->chans[i], i / 2, (int)(i % 2),
		         err, errlen)) != 0)
			goto fail;
	*out = f;
	return 0;
fail:
	fwd_destroy(f);
	return rc;
}

/* ---- queries ---- */

static double
fwd_elapsed(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) +
	       (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static uint64_t
fwd_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return rsv_ms(&now);
}

static void
fwd_waiter_init(struct fwd_waiter *w, const struct rsv_query *q,
    enum rsv_transport tr, const struct timespec *t0, rsv_reply_fn cb,
    void *arg)
{
	w->cb = cb;
	w->arg = arg;
	w->q = *q;
	w->q.opt.rdata = NULL; /* points into the packet, which we don't keep */
	w->tr = tr;
	w->limit = tr == RSV_TCP ? RSV_MSG_MAX : rsv_udp_limit(q);
	w->start = *t0;
}

static void
fwd_waiter_free(struct fwd_waiter *w)
{
	if (!w->embedded)
		free(w);
}

/* ---- the flight table (keyed exchanges) ---- */

static size_t
fwd_flight_bucket(const struct fwd *f, const struct rsv_cache_key *k,
    enum rsv_transport tr)
{
	return (k->hash ^ (tr == RSV_TCP ? 0x9e3779b9u : 0)) & f->flight_mask;
}

static struct fwd_query *
fwd_flight_find(const struct fwd *f, const struct rsv_cache_key *k,
    enum rsv_transport tr)
{
	struct fwd_query *fq;

	for (fq = f->flights[fwd_flight_bucket(f, k, tr)]; fq != NULL;
	     fq = fq->hnext)
		if (fq->tr == tr && rsv_cache_key_equal(&fq->key, k))
			return fq;
	return NULL;
}

static void
fwd_flight_add(struct fwd_query *fq, const struct rsv_cache_key *k)
{
	struct fwd *f = fq->f;
	size_t b = fwd_flight_bucket(f, k, fq->tr);

	fq->key = *k;
	fq->keyed = 1;
	fq->hnext = f->flights[b];
	f->flights[b] = fq;
}

/* The reply is known: later queries start an exchange of their own. */
static void
fwd_flight_end(struct fwd_query *fq)
{
	struct fwd_query **pp;

	if (fq->stale_timer != NULL)
		evtimer_del(fq->stale_timer);
	if (!fq->keyed)
		return;
	pp = &fq->f->flights[fwd_flight_bucket(fq->f, &fq->key, fq->tr)];
	while (*pp != NULL && *pp != fq)
		pp = &(*pp)->hnext;
	if (*pp == fq)
		*pp = fq->hnext;
	fq->keyed = 0;
}

static void
fwd_query_free(struct fwd_query *fq)
{
	struct fwd_waiter *w;

	fwd_flight_end(fq);
	while ((w = TAILQ_FIRST(&fq->waiters)) != NULL) { /* none left */
		TAILQ_REMOVE(&fq->waiters, w, entry);
		fwd_waiter_free(w);
	}
	if (fq->stale_timer != NULL)
		event_free(fq->stale_timer);
	fwd_id_set(fq->f, fq->out_id, 0);
	fq->f->stats->fwd_inflight--;
	free(fq->msg);
	free(fq->last);
	free(fq);
}

/* ---- replies to clients ---- */

static void
fwd_deliver(struct fwd *f, const struct fwd_waiter *w, enum rsv_source src,
    const uint8_t *reply, size_t len)
{
	rsv_deliver(f->log, w->tr, src, 0, &w->start, w->cb, w->arg, reply,
	    len);
}

/* Our SERVFAIL to w's query (SPEC §4 "All fail"). */
static void
fwd_servfail(struct fwd *f, const struct fwd_waiter *w)
{
	uint8_t out[RSV_MSG_MAX];
	size_t olen = 0;

	if (rsv_answer_error(&w->q, RSV_SERVFAIL, 1, out, sizeof(out), &olen) !=
	    0)
		olen = 0;
	f->stats->responses[RSV_SRC_ERROR][RSV_SERVFAIL]++;
	fwd_deliver(f, w, RSV_SRC_ERROR, olen > 0 ? out : NULL, olen);
}

/*
 * An upstream reply relayed to w: its ID, truncated to its size (D3).
 * The reply was checked with the first client's ID; for another client
 * (coalesced, when the cache refused the reply) it is checked again.
 */
static void
fwd_relay(struct fwd *f, const struct fwd_waiter *w, const uint8_t *reply,
    size_t len)
{
	uint8_t out[RSV_MSG_MAX];
	size_t olen = 0;

	if (reply == NULL || rsv_msg_truncate(reply, len, w->limit, out,
	                         sizeof(out), &olen) != 0) {
		fwd_servfail(f, w);
		return;
	}
	if (rsv_get16(out) != w->q.hdr.id) {
		rsv_put16(out, w->q.hdr.id);
		if (rsv_msg_check(out, olen) != 0) {
			fwd_servfail(f, w);
			return;
		}
	}
	f->stats->responses[RSV_SRC_FORWARDED][RSV_RCODE(rsv_get16(out + 2))]++;
	fwd_deliver(f, w, RSV_SRC_FORWARDED, out, olen);
}

/* A reply made from a cache entry (fresh, just built, or stale). */
static void
fwd_answer_entry(struct fwd *f, const struct fwd_waiter *w,
    const struct rsv_cache_entry *e, uint64_t now, int stale)
{
	uint8_t out[RSV_MSG_MAX];
	size_t olen = 0;

	if (rsv_cache_render(e, &w->q, now, stale, w->limit, out, sizeof(out),
	        &olen) != 0) {
		fwd_servfail(f, w);
		return;
	}
	if (stale)
		f->stats->cache.stale_served++;
	f->stats->responses[RSV_SRC_FORWARDED][RSV_RCODE(rsv_get16(out + 2))]++;
	fwd_deliver(f, w, RSV_SRC_FORWARDED, out, olen);
}

/*
 * Every upstream failed: the waiters get the cached answer, stale if it
 * expired (RFC 8767), instead of a failure.  Returns 0 when there is no
 * usable entry.  A failed refresh marks the entry, so that later queries
 * get it at once while refreshes go on in the background.
 */
static int
fwd_serve_stale(struct fwd_query *fq, uint64_t now, int failed)
{
	struct fwd *f = fq->f;
	struct rsv_cache_entry *e = rsv_cache_peek(f->cache, &fq->key, now);
	struct fwd_waiter *w;
	int stale;

	if (e == NULL)
		return 0;
	stale = !rsv_cache_entry_fresh(e, now);
	if (stale && failed)
		rsv_cache_entry_set_failed(e);
	while ((w = TAILQ_FIRST(&fq->waiters)) != NULL) {
		TAILQ_REMOVE(&fq->waiters, w, entry);
		fwd_answer_entry(f, w, e, now, stale);
		fwd_waiter_free(w);
	}
	return 1;
}

/*
 * The exchange is over: reply (good or the last failure) or NULL.  The
 * client who started it gets the reply relayed as before; clients who
 * joined get the cache's copy of it (their ID and case, COOKIE taken
 * out), and a cacheable reply is stored.
 */
static void
fwd_finish(struct fwd_query *fq, const uint8_t *reply, size_t len, int good)
{
	struct fwd *f = fq->f;
	struct rsv_cache_entry *e = NULL;
	struct fwd_waiter *w;
	double secs = fwd_elapsed(&fq->start);
	uint64_t now = 0;
	int keyed = fq->keyed;
	size_t b;

	fq->done = 1;
	fwd_flight_end(fq); /* the next identical query goes upstream */
	for (b = 0; b < RSV_FWD_BUCKETS && secs > rsv_fwd_bucket_bounds[b]; b++)
		;
	f->stats->fwd_duration[b]++;
	f->stats->fwd_duration_sum += secs;
	if (!good)
		f->stats->fwd_failures++;
	if (keyed && !f->destroying) {
		now = fwd_now_ms();
		if (good && reply != NULL)
			(void)rsv_cache_entry_build(f->cache, &fq->key, reply,
			    len, now, &e);
		else if (fwd_serve_stale(fq, now, 1))
			return;
	}
	while ((w = TAILQ_FIRST(&fq->waiters)) != NULL) {
		TAILQ_REMOVE(&fq->waiters, w, entry);
		if (reply == NULL && f->destroying)
			fwd_deliver(f, w, RSV_SRC_ERROR, NULL, 0);
		else if (e != NULL && w != &fq->first)
			fwd_answer_entry(f, w, e, now, 0);
		else
			fwd_relay(f, w, reply, len);
		fwd_waiter_free(w);
	}
	if (e != NULL)
		rsv_cache_insert(f->cache, e);
}

/*
 * What an upstream reply is worth: 1 final (relay it), 0 a failure to
 * remember (SERVFAIL, REFUSED), -1 unusable.  A UDP reply cut at c-ares'
 * read limit becomes header + question + TC=1 in cut (D3).
 */
static int
fwd_judge(struct fwd_query *fq, int udp, uint8_t *abuf, size_t alen,
    uint8_t *cut, size_t *cutlen)
{
	unsigned rc;

	if (alen < RSV_HDR_LEN)
		return -1;
	rsv_put16(abuf, fq->q.hdr.id); /* the client's ID back */
	if (rsv_msg_check(abuf, alen) != 0) {
		struct rsv_writer w;
		struct rsv_hdr h;

		/* A reply c-ares cut at its 512-byte UDP limit that we could
		 * not find whole (cannot happen, see fwd_recvfrom()): the
		 * client gets TC=1 and retries over TCP. */
		if (!udp || alen != FWD_UDP_CUT)
			return -1; /* garbage: fail over */
		rsv_writer_init(&w, cut, FWD_CUT_MAX, FWD_CUT_MAX);
		if (rsv_writer_question(&w, fq->q.qname, fq->q.qname_len,
		        fq->q.qtype, fq->q.qclass) != 0)
			return -1;
		h.id = fq->q.hdr.id;
		h.flags = rsv_get16(abuf + 2) | RSV_F_TC;
		*cutlen = rsv_writer_finish(&w, &h);
		return 1;
	}
	*cutlen = 0;
	rc = RSV_RCODE(rsv_get16(abuf + 2));
	return (rc == RSV_SERVFAIL || rc == RSV_REFUSED) ? 0 : 1;
}

static void fwd_on_answer(void *arg, int status, int timeouts,
    unsigned char *abuf, int alen);

/* Starts attempt number fq->sent on its server. */
static void
fwd_send(struct fwd_query *fq)
{
	struct fwd *f = fq->f;
	size_t server = fq->order[fq->sent % f->nservers];
	struct fwd_chan *ch = &f->chans[server * 2 + (fq->tr == RSV_TCP)];

	struct fwd_attempt *at = &fq->att[fq->sent];

	at->fq = fq;
	at->server = server;
	fq->sent++;
	fq->pending++;
	/* The callback may run inside ares_send(); fq is ready for it. */
	ares_send(ch->channel, fq->msg, (int)fq->len, fwd_on_answer, at);
	fwd_timer_rearm(ch);
}

/* Frees fq once its reply is known, no callback is due and no
 * fwd_next() frame holds it. */
static void
fwd_release(struct fwd_query *fq)
{
	if (fq->done && fq->pending == 0 && fq->holds == 0)
		fwd_query_free(fq);
}

/*
 * Starts the next attempt(s) after a failure, or gives up; frees fq when
 * the exchange is over, so the caller must not touch fq afterwards.
 * ares_send() may run fwd_on_answer() before it returns (a send that fails
 * at once, e.g. ECONNREFUSED from an ICMP error queued on the socket), and
 * that may be this exchange's last attempt; fq->holds keeps fq allocated
 * until this frame, which still reads it, is done with it.
 */
static void
fwd_next(struct fwd_query *fq)
{
	struct fwd *f = fq->f;
	unsigned i, n;

	if (fq->done || fq->pending > 0)
		return;
	fq->holds++;
	if (f->destroying || fq->sent >= f->attempts)
		fwd_finish(fq, fq->last, fq->lastlen, 0);
	else {
		/* Sequential: one more server.  Parallel: one more round. */
		n = f->parallel ? (unsigned)f->nservers : 1;
		for (i = 0; i < n && fq->sent < f->attempts && !fq->done; i++)
			fwd_send(fq);
	}
	fq->holds--;
	fwd_release(fq);
}

static void
fwd_on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct fwd_attempt *at = arg;
	struct fwd_query *fq = at->fq;
	struct fwd *f = fq->f;
	uint8_t cut[FWD_CUT_MAX];
	size_t cutlen = 0;
	int verdict = -1;

	(void)timeouts;
	fq->pending--;
	if (!fq->done && status == ARES_SUCCESS && abuf != NULL && alen > 0) {
		size_t len = (size_t)alen;

		if (fq->tr == RSV_UDP)
			abuf = fwd_whole_reply(f,
			    &f->chans[at->server * 2 + RSV_UDP], abuf, &len);
		alen = (int)len;
		verdict =
		    fwd_judge(fq, fq->tr == RSV_UDP, abuf, len, cut, &cutlen);
	}
	if (!fq->done && verdict == 1) {
		if (cutlen > 0)
			fwd_finish(fq, cut, cutlen, 1);
		else
			fwd_finish(fq, abuf, (size_t)alen, 1);
	} else if (!fq->done && status != ARES_EDESTRUCTION) {
		f->failures[at->server]++;
		if (verdict == 0) { /* keep the last SERVFAIL/REFUSED */
			uint8_t *copy = malloc((size_t)alen);

			if (copy != NULL) {
				memcpy(copy, abuf, (size_t)alen);
				free(fq->last);
				fq->last = copy;
				fq->lastlen = (size_t)alen;
			}
		}
	}
	if (!fq->done)
		fwd_next(fq); /* may finish and free fq */
	else
		fwd_release(fq);
}

/*
 * A new exchange for the query pkt (parsed into q), not started, or NULL
 * (no server, no memory).  w, if any, is its first waiter.
 */
static struct fwd_query *
fwd_exchange_new(struct fwd *f, const struct rsv_query *q, const uint8_t *pkt,
    size_t len, enum rsv_transport tr, const struct timespec *t0,
    rsv_reply_fn cb, void *arg)
{
	struct fwd_query *fq;
	size_t i;

	if (f->nservers == 0 ||
	    (fq = calloc(1, sizeof(*fq) + f->attempts * sizeof(fq->att[0]) +
	                        f->nservers * sizeof(uint32_t))) == NULL)
		return NULL;
	if ((fq->msg = malloc(len)) == NULL) {
		free(fq);
		return NULL;
	}
	fq->f = f;
	TAILQ_INIT(&fq->waiters);
	if (cb != NULL) {
		fwd_waiter_init(&fq->first, q, tr, t0, cb, arg);
		fq->first.embedded = 1;
		TAILQ_INSERT_TAIL(&fq->waiters, &fq->first, entry);
	}
	fq->order = (uint32_t *)(void *)&fq->att[f->attempts];
	fq->q = *q;
	fq->q.opt.rdata = NULL; /* points into pkt, which we don't keep */
	fq->tr = tr;
	memcpy(fq->msg, pkt, len);
	fq->len = len;
	fq->out_id = fwd_id_take(f);
	rsv_put16(fq->msg, fq->out_id);
	for (i = 0; i < f->nservers; i++)
		fq->order[i] = (uint32_t)i;
	rsv_shuffle(fq->order, f->nservers, f->rng); /* random per query */
	if (t0 != NULL)
		fq->start = *t0;
	else
		clock_gettime(CLOCK_MONOTONIC, &fq->start);
	f->stats->fwd_inflight++;
	return fq;
}

/* SERVFAIL for a client whose query could not go upstream. */
static void
fwd_refuse(struct fwd *f, const struct rsv_query *q, enum rsv_transport tr,
    const struct timespec *t0, rsv_reply_fn cb, void *arg)
{
	struct fwd_waiter w;

	fwd_waiter_init(&w, q, tr, t0, cb, arg);
	fwd_servfail(f, &w);
}

void
fwd_query(struct fwd *f, const struct rsv_query *q, const uint8_t *pkt,
    size_t len, enum rsv_transport tr, const struct timespec *t0,
    rsv_reply_fn cb, void *arg)
{
	struct fwd_query *fq;

	f->stats->forwarded++;
	if (f->stats->fwd_inflight >= f->max_forwards) {
		f->stats->fwd_rejected++;
		fwd_refuse(f, q, tr, t0, cb, arg);
		return;
	}
	if ((fq = fwd_exchange_new(f, q, pkt, len, tr, t0, cb, arg)) == NULL) {
		f->stats->fwd_failures++;
		fwd_refuse(f, q, tr, t0, cb, arg);
		return;
	}
	fwd_next(fq); /* may finish and free fq */
}

void
fwd_refresh(struct fwd *f, const struct rsv_cache_key *k,
    const struct rsv_query *q, const uint8_t *pkt, size_t len,
    enum rsv_transport tr, int prefetch)
{
	struct fwd_query *fq;

	if (f->cache == NULL || fwd_flight_find(f, k, tr) != NULL ||
	    f->stats->fwd_inflight >= f->max_forwards)
		return; /* one at a time, and never past the cap */
	if ((fq = fwd_exchange_new(f, q, pkt, len, tr, NULL, NULL, NULL)) ==
	    NULL)
		return;
	f->stats->forwarded++;
	if (prefetch)
		f->stats->cache.prefetches++;
	fwd_flight_add(fq, k);
	fwd_next(fq);
}

/* The serve-stale deadline of an exchange: its waiters get the stale
 * answer; the exchange goes on and refreshes the cache. */
static void
fwd_on_stale(evutil_socket_t fd, short what, void *arg)
{
	struct fwd_query *fq = arg;

	(void)fd, (void)what;
	if (fq->done)
		return;
	/* An entry flushed or evicted meanwhile: keep waiting. */
	if (fwd_serve_stale(fq, fwd_now_ms(), 0) == 0)
		return;
	fq->stale_fired = 1;
}

/* Clients of fq wait at most --stale-answer-client-timeout from now. */
static void
fwd_arm_stale(struct fwd_query *fq)
{
	struct fwd *f = fq->f;
	struct timeval tv;

	if (fq->stale_timer != NULL || fq->stale_fired ||
	    (fq->stale_timer = evtimer_new(f->base, fwd_on_stale, fq)) == NULL)
		return;
	tv.tv_sec = f->stale_timeout_ms / 1000;
	tv.tv_usec = (f->stale_timeout_ms % 1000) * 1000;
	evtimer_add(fq->stale_timer, &tv);
}

/* The stale answer at once, and a refresh behind it. */
static int
fwd_stale_now(struct fwd *f, const struct rsv_cache_key *k,
    const struct fwd_query *fq, const struct rsv_query *q, const uint8_t *pkt,
    size_t len, enum rsv_transport tr, const struct timespec *t0,
    rsv_reply_fn cb, void *arg)
{
	uint64_t now = rsv_ms(t0);
	struct rsv_cache_entry *e = rsv_cache_peek(f->cache, k, now);
	struct fwd_waiter w;

	if (e == NULL || rsv_cache_entry_fresh(e, now))
		return 0;
	fwd_waiter_init(&w, q, tr, t0, cb, arg);
	fwd_answer_entry(f, &w, e, now, 1);
	if (fq == NULL)
		fwd_refresh(f, k, q, pkt, len, tr, 0);
	return 1;
}

void
fwd_query_cached(struct fwd *f, const struct rsv_cache_key *k,
    const struct rsv_query *q, const uint8_t *pkt, size_t len,
    enum rsv_transport tr, const struct timespec *t0, rsv_reply_fn cb,
    void *arg, int stale)
{
	struct fwd_query *fq = fwd_flight_find(f, k, tr);
	struct rsv_cache_entry *e = NULL;
	struct fwd_waiter *w;

	if (stale)
		e = rsv_cache_peek(f->cache, k, rsv_ms(t0));
	/* After a failed refresh, or once this exchange's clients got
	 * the stale answer, nobody waits for the upstreams again. */
	if (e != NULL &&
	    (rsv_cache_entry_failed(e) || f->stale_timeout_ms == 0 ||
	        (fq != NULL && fq->stale_fired)) &&
	    fwd_stale_now(f, k, fq, q, pkt, len, tr, t0, cb, arg))
		return;
	if (fq != NULL && (w = calloc(1, sizeof(*w))) != NULL) {
		fwd_waiter_init(w, q, tr, t0, cb, arg);
		TAILQ_INSERT_TAIL(&fq->waiters, w, entry);
		if (e != NULL) /* e.g. a prefetch that outlived the entry */
			fwd_arm_stale(fq);
		return; /* coalesced */
	}
	f->stats->forwarded++;
	if (f->stats->fwd_inflight >= f->max_forwards ||
	    (fq = fwd_exchange_new(f, q, pkt, len, tr, t0, cb, arg)) == NULL) {
		if (e != NULL &&
		    fwd_stale_now(f, k, NULL, q, pkt, len, tr, t0, cb, arg))
			return;
		if (f->stats->fwd_inflight >= f->max_forwards)
			f->stats->fwd_rejected++;
		else
			f->stats->fwd_failures++;
		fwd_refuse(f, q, tr, t0, cb, arg);
		return;
	}
	if (fwd_flight_find(f, k, tr) == NULL) /* else: a coalescing miss */
		fwd_flight_add(fq, k);
	if (e != NULL)
		fwd_arm_stale(fq);
	fwd_next(fq); /* may finish and free fq */
}

size_t
fwd_upstreams(const struct fwd *f, const char *const **names,
    const uint64_t **failures)
{
	*names = f->name_ptrs;
	*failures = f->failures;
	return f->nservers;
}

void
fwd_destroy(struct fwd *f)
{
	size_t i;

	if (f == NULL)
		return;
	f->destroying = 1;
	for (i = 0; f->chans != NULL && i < 2 * f->nservers; i++)
		fwd_chan_fini(&f->chans[i]);
	free(f->chans);
	free(f->names);
	free(f->name_ptrs);
	free(f->failures);
	free(f->flights);
	free(f);
}
