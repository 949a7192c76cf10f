/*
 * listen.c: the DNS listeners (SPEC §3 "Listeners", D1, D10).
 *
 * UDP: one socket per address; up to UDP_BATCH datagrams per wakeup, read
 * by one recvmmsg(), each whole (65535 bytes, D1).  Replies produced while
 * the batch is served (table and cache hits, errors) go out together by
 * sendmmsg() at the end of the wakeup; replies that come later (forwarding)
 * go at once.  A reply leaves from the address its query arrived on
 * (pktinfo on wildcard binds), as conntrack needs.
 *
 * TCP: 2-byte framing (RFC 1035 §4.2.2); every complete frame in the input
 * is served, so pipelined queries work; 128 queries per connection, then
 * close; 8 s idle; at most 1024 connections; accept() pauses for a second
 * when the process is out of descriptors.  Output is bounded: reading
 * pauses while a client leaves more than TCP_OUT_MAX bytes unread.
 *
 * Each query's reply context (struct udp_req, or the tcp_conn with its
 * inflight count) lives until the resolver's callback has run, so a reply
 * that comes later (forwarding) finds its client.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/agent.h"
#include "resolver/resolver.h"

#define UDP_BATCH 32    /* datagrams per wakeup (libuv reads 32) */
#define UDP_SLOT 65536  /* one datagram, read whole (D1) */
#define UDP_HEAD 512    /* its first bytes: all of most queries */
#define UDP_ARENA 65536 /* replies of one batch, copied */
#define UDP_KEEP 4096   /* arena bytes kept resident */
/*
 * Receive queue of a UDP listener.  The loop stops reading while a pushed
 * table compiles (tens of ms for 100k services); the kernel default
 * (rmem_default, ~208 KiB = ~270 queries) would drop a 20k q/s load after
 * ~13 ms.  The kernel caps the request at net.core.rmem_max and charges
 * only what is queued.
 */
#define UDP_RCVBUF (4 * 1024 * 1024)
#define UDP_MAP (UDP_BATCH * (UDP_SLOT + UDP_HEAD) + UDP_ARENA)
#define UDP_REQ_MAX 8192          /* reply contexts alive at once */
#define TCP_FRAME_MAX (2 + 65535) /* length prefix + largest message */
#define TCP_OUT_MAX (64 * 1024)   /* unread reply bytes before we pause */
#define ACCEPT_PAUSE_SEC 1        /* back-off when out of descriptors */
#define LOG_NAME_MAX 1024         /* a query name as dotted text */

struct agent_listeners;

struct udp_listener {
	struct agent_listeners *owner;
	struct event *ev; /* EV_READ | EV_PERSIST */
	int fd;
	int family;
	int wildcard; /* bound to any-address: use pktinfo */
};

/* One UDP query awaiting its reply. */
struct udp_req {
	struct udp_listener *ul;      /* socket the query came in on */
	struct sockaddr_storage peer; /* client */
	socklen_t peerlen;
	int has_pi; /* pi holds the local address */
	union {
		struct in_pktinfo v4;
		struct in6_pktinfo v6;
	} pi;
	struct udp_req *next_free; /* free list link */
};

/* Room for one pktinfo control message (and whatever else comes). */
union udp_cbuf {
	char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + 64];
	struct cmsghdr align;
};

/*
 * One wakeup's worth of UDP: the datagrams read by one recvmmsg(), and
 * the replies produced while serving them, sent by sendmmsg() at the end.
 * Buffers are one anonymous mapping, touched only as far as datagrams and
 * replies reach.  A datagram is scattered: its first UDP_HEAD bytes into
 * heads (32 x 512 bytes: four pages hold a whole batch of usual queries),
 * the rest into its 64 KiB slot, just after room for the head, which is
 * copied there when the datagram is longer.  udp_trim() gives back the
 * pages that an unusually large datagram or reply touched.
 */
struct udp_batch {
	struct mmsghdr rmsg[UDP_BATCH];
	struct iovec riov[UDP_BATCH][2]; /* head, rest of the slot */
	struct udp_req *rreq[UDP_BATCH];
	union udp_cbuf rcbuf[UDP_BATCH];
	struct mmsghdr smsg[UDP_BATCH];
	struct iovec siov[UDP_BATCH];
	struct udp_req *sreq[UDP_BATCH]; /* put back once sent */
	union udp_cbuf scbuf[UDP_BATCH];
	unsigned nsend;      /* replies queued */
	size_t sused;        /* arena bytes they hold */
	int fd;              /* the socket being served */
	struct udp_req *cur; /* the query being served: its reply queues */
	uint8_t *slots;      /* UDP_BATCH x UDP_SLOT */
	uint8_t *arena;      /* UDP_ARENA bytes */
	uint8_t *heads;      /* UDP_BATCH x UDP_HEAD */
};

struct tcp_conn {
	struct agent_listeners *owner;
	struct bufferevent *bev; /* NULL once the socket is gone */
	TAILQ_ENTRY(tcp_conn) entry;
	unsigned queries;  /* frames read so far */
	unsigned inflight; /* queries whose reply has not come yet */
	int closing;       /* read no more; close once flushed */
	int paused;        /* reading paused for output back-pressure */
};
TAILQ_HEAD(tcp_conn_list, tcp_conn);

struct tcp_listener {
	struct agent_listeners *owner;
	struct evconnlistener *lev;
	struct event *resume; /* accept back-off timer */
	const char *text;     /* address, for logs */
};

struct agent_listeners {
	struct agent_server srv;
	struct udp_listener udp[AGENT_LISTEN_MAX];
	struct tcp_listener tcp[AGENT_LISTEN_MAX];
	size_t nudp, ntcp;
	struct tcp_conn_list conns;
	size_t nconns;
	size_t max_conns; /* D10 cap */
	struct udp_req *free_reqs;
	size_t nreqs;        /* reply contexts allocated */
	size_t udp_inflight; /* of which awaiting their reply */
	int stopping;
	struct agent_listen_stats stats;
	struct udp_batch batch; /* used within one udp_receive() */
};

/* "IP:port" / "[IPv6]:port" of a socket address, "-" when unknown. */
static void
listen_addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s4->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else
		snprintf(buf, len, "-");
}

/* ---- UDP ---- */

static struct udp_req *
udp_req_get(struct agent_listeners *l)
{
	struct udp_req *r = l->free_reqs;

	if (r != NULL)
		l->free_reqs = r->next_free;
	else if (l->nreqs < UDP_REQ_MAX && (r = malloc(sizeof(*r))) != NULL)
		l->nreqs++;
	else
		return NULL;
	l->udp_inflight++;
	return r;
}

static void
udp_req_put(struct agent_listeners *l, struct udp_req *r)
{
	l->udp_inflight--;
	r->next_free = l->free_reqs;
	l->free_reqs = r;
}

/*
 * Fills mh to send iov to r's client from the address its query came to
 * (a pktinfo control message in cbuf on wildcard binds).
 */
static void
udp_msg_fill(struct msghdr *mh, struct udp_req *r, struct iovec *iov,
    union udp_cbuf *cbuf)
{
	struct cmsghdr *c;

	memset(mh, 0, sizeof(*mh));
	mh->msg_name = &r->peer;
	mh->msg_namelen = r->peerlen;
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	if (!r->has_pi)
		return;
	memset(cbuf, 0, sizeof(*cbuf));
	mh->msg_control = cbuf;
	if (r->ul->family == AF_INET) {
		mh->msg_controllen = CMSG_SPACE(sizeof(r->pi.v4));
		c = CMSG_FIRSTHDR(mh);
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(r->pi.v4));
		r->pi.v4.ipi_ifindex = 0;
		memcpy(CMSG_DATA(c), &r->pi.v4, sizeof(r->pi.v4));
	} else {
		mh->msg_controllen = CMSG_SPACE(sizeof(r->pi.v6));
		c = CMSG_FIRSTHDR(mh);
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(r->pi.v6));
		memcpy(CMSG_DATA(c), &r->pi.v6, sizeof(r->pi.v6));
	}
}

/*
 * Sends the replies queued while a receive batch was served, with as few
 * sendmmsg() calls as the socket allows.  Write errors are ignored (SPEC
 * §3): a reply the kernel refuses is skipped, the rest still go, and
 * nothing ever blocks.
 */
static void
udp_flush(struct agent_listeners *l)
{
	struct udp_batch *b = &l->batch;
	unsigned i = 0;
	int n;

	while (i < b->nsend) {
		n = sendmmsg(b->fd, b->smsg + i, b->nsend - i,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			i += (unsigned)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else
			i++; /* the first message failed: drop it alone */
	}
	for (i = 0; i < b->nsend; i++)
		udp_req_put(l, b->sreq[i]);
	b->nsend = 0;
	b->sused = 0;
}

/* Queues a reply produced while its query is served (local answers). */
static void
udp_queue(struct agent_listeners *l, struct udp_req *r, const uint8_t *reply,
    size_t len)
{
	struct udp_batch *b = &l->batch;
	struct iovec *iov;

	if (b->nsend == UDP_BATCH || len > UDP_ARENA - b->sused)
		udp_flush(l);
	iov = &b->siov[b->nsend];
	iov->iov_base = b->arena + b->sused;
	iov->iov_len = len;
	memcpy(iov->iov_base, reply, len);
	b->sused += len;
	udp_msg_fill(&b->smsg[b->nsend].msg_hdr, r, iov, &b->scbuf[b->nsend]);
	b->sreq[b->nsend++] = r;
}

static void
udp_reply(const uint8_t *reply, size_t len, void *arg)
{
	struct udp_req *r = arg;
	struct udp_listener *ul = r->ul;
	struct agent_listeners *l = ul->owner;
	union udp_cbuf cbuf;
	struct iovec iov = {(void *)reply, len};
	struct msghdr mh;

	if (len == 0 || ul->fd < 0)
		goto out;
	if (r == l->batch.cur) { /* served within udp_receive() */
		l->batch.cur = NULL;
		udp_queue(l, r, reply, len);
		return;
	}
	/* A reply that came later (forwarding) goes at once. */
	udp_msg_fill(&mh, r, &iov, &cbuf);
	(void)sendmsg(ul->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
out:
	if (r == l->batch.cur)
		l->batch.cur = NULL;
	udp_req_put(l, r);
}

/* Points the receive batch at its buffers, once. */
static void
udp_batch_init(struct udp_batch *b)
{
	unsigned i;

	for (i = 0; i < UDP_BATCH; i++) {
		b->riov[i][0].iov_base = b->heads + (size_t)i * UDP_HEAD;
		b->riov[i][0].iov_len = UDP_HEAD;
		b->riov[i][1].iov_base =
		    b->slots + (size_t)i * UDP_SLOT + UDP_HEAD;
		b->riov[i][1].iov_len = UDP_SLOT - UDP_HEAD;
		b->rmsg[i].msg_hdr.msg_iov = b->riov[i];
		b->rmsg[i].msg_hdr.msg_iovlen = 2;
	}
}

/* Local address of a datagram from its pktinfo control message. */
static void
udp_take_pktinfo(struct udp_req *r, struct msghdr *mh)
{
	struct cmsghdr *c;

	r->has_pi = 0;
	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			memcpy(&r->pi.v4, CMSG_DATA(c), sizeof(r->pi.v4));
			r->has_pi = 1;
		} else if (c->cmsg_level == IPPROTO_IPV6 &&
		           c->cmsg_type == IPV6_PKTINFO) {
			memcpy(&r->pi.v6, CMSG_DATA(c), sizeof(r->pi.v6));
			r->has_pi = 1;
		}
	}
}

/*
 * Every reply context is busy (cannot happen below the forward cap):
 * drop a batch' worth of datagrams, or the event would spin.
 */
static void
udp_drop(struct agent_listeners *l, int fd)
{
	uint8_t byte;
	int i;

	for (i = 0; i < UDP_BATCH; i++) {
		if (recv(fd, &byte, 1, MSG_DONTWAIT | MSG_TRUNC) < 0)
			return;
		l->stats.udp_dropped++;
	}
}

/*
 * Gives back the pages past the first keep bytes of p (page-aligned) that
 * a large datagram or reply touched, so that one 64 KiB message does not
 * keep the batch buffers resident.
 */
static void
udp_trim(uint8_t *p, size_t used, size_t keep)
{
	if (used > keep)
		(void)madvise(p + keep, used - keep, MADV_DONTNEED);
}

/*
 * Reads up to UDP_BATCH datagrams with one recvmmsg(), serves each in
 * turn, and sends the replies produced meanwhile with sendmmsg().
 */
static void
udp_receive(evutil_socket_t fd, short what, void *arg)
{
	struct udp_listener *ul = arg;
	struct agent_listeners *l = ul->owner;
	struct udp_batch *b = &l->batch;
	unsigned i, nreq;
	size_t big = 0;
	int got;

	(void)what;
	for (nreq = 0; nreq < UDP_BATCH; nreq++) {
		struct msghdr *mh = &b->rmsg[nreq].msg_hdr;
		struct udp_req *r;

		if ((r = udp_req_get(l)) == NULL)
			break;
		b->rreq[nreq] = r;
		mh->msg_name = &r->peer;
		mh->msg_namelen = sizeof(r->peer);
		mh->msg_control = ul->wildcard ? &b->rcbuf[nreq] : NULL;
		mh->msg_controllen = ul->wildcard ? sizeof(b->rcbuf[nreq]) : 0;
	}
	if (nreq == 0) {
		udp_drop(l, fd);
		return;
	}
	got = recvmmsg(fd, b->rmsg, nreq, MSG_DONTWAIT, NULL);
	if (got < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			l->stats.udp_recv_errors++;
		got = 0;
	}
	for (i = (unsigned)got; i < nreq; i++)
		udp_req_put(l, b->rreq[i]);
	b->fd = fd;
	for (i = 0; i < (unsigned)got; i++) {
		struct udp_req *r = b->rreq[i];
		struct msghdr *mh = &b->rmsg[i].msg_hdr;
		size_t n = b->rmsg[i].msg_len;
		uint8_t *pkt = b->riov[i][0].iov_base;
		uint8_t *slot = b->slots + (size_t)i * UDP_SLOT;

		if (n > UDP_HEAD) { /* make it contiguous in its slot */
			memcpy(slot, pkt, UDP_HEAD);
			pkt = slot;
		}
		r->ul = ul;
		r->peerlen = mh->msg_namelen;
		r->has_pi = 0;
		if (ul->wildcard)
			udp_take_pktinfo(r, mh);
		b->cur = r;
		rsv_query(l->srv.rsv, *l->srv.table, pkt, n, RSV_UDP, udp_reply,
		    r);
		b->cur = NULL;
		if (n > UDP_HEAD)
			udp_trim(slot, n, 0);
		if (b->sused > big)
			big = b->sused;
	}
	udp_flush(l);
	udp_trim(b->arena, big, UDP_KEEP);
}

/* ---- TCP ---- */

static void
tcp_free(struct tcp_conn *c)
{
	struct agent_listeners *l = c->owner;

	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
		TAILQ_REMOVE(&l->conns, c, entry);
		l->nconns--;
		l->stats.tcp_open = l->nconns;
	}
	/* A reply still owed finds c and frees it when it comes. */
	if (c->inflight == 0)
		free(c);
}

/*
 * Closes when nothing is owed: no query in flight, no unsent bytes.
 * Returns 1 when c is gone (the caller must not touch it again).
 */
static int
tcp_maybe_close(struct tcp_conn *c)
{
	if (c->closing && c->inflight == 0 && c->bev != NULL &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		tcp_free(c);
		return 1;
	}
	return 0;
}

static void
tcp_reply(const uint8_t *reply, size_t len, void *arg)
{
	struct tcp_conn *c = arg;
	uint8_t prefix[2];

	c->inflight--;
	if (c->bev == NULL) { /* the client went away meanwhile */
		if (c->inflight == 0)
			free(c);
		return;
	}
	if (len > 0) {
		prefix[0] = (uint8_t)(len >> 8);
		prefix[1] = (uint8_t)len;
		bufferevent_write(c->bev, prefix, 2);
		bufferevent_write(c->bev, reply, len);
	}
}

/*
 * Serves every complete frame in the input (pipelining).  Returns 1 when
 * the connection was closed and freed.
 */
static int
tcp_process(struct tcp_conn *c)
{
	struct agent_listeners *l = c->owner;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);
	uint8_t hdr[2], *msg;
	size_t flen;

	while (!c->closing) {
		if (evbuffer_get_length(out) > TCP_OUT_MAX) {
			/* The client is not reading: stop reading it. */
			bufferevent_disable(c->bev, EV_READ);
			c->paused = 1;
			return 0;
		}
		if (evbuffer_copyout(in, hdr, 2) != 2)
			break;
		flen = (size_t)hdr[0] << 8 | hdr[1];
		if (evbuffer_get_length(in) < 2 + flen)
			break;
		if ((msg = evbuffer_pullup(in, (ev_ssize_t)(2 + flen))) ==
		    NULL) {
			c->closing = 1; /* out of memory: give up on it */
			break;
		}
		c->inflight++;
		c->queries++;
		rsv_query(l->srv.rsv, *l->srv.table, msg + 2, flen, RSV_TCP,
		    tcp_reply, c);
		evbuffer_drain(in, 2 + flen);
		if (c->queries >= AGENT_TCP_MAX_QUERIES || l->stopping)
			c->closing = 1;
	}
	if (c->closing)
		bufferevent_disable(c->bev, EV_READ);
	return tcp_maybe_close(c);
}

static void
tcp_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)tcp_process(arg);
}

static void
tcp_write(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *c = arg;

	(void)bev;
	if (c->paused && !c->closing) {
		c->paused = 0;
		bufferevent_enable(c->bev, EV_READ);
		(void)tcp_process(c); /* frames may wait in the input */
		return;
	}
	(void)tcp_maybe_close(c);
}

static void
tcp_event(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_EOF) {
		/* Half-close: answer what was sent, then close. */
		if (tcp_process(c))
			return;
		c->closing = 1;
		bufferevent_disable(c->bev, EV_READ);
		(void)tcp_maybe_close(c);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) &&
	    c->inflight > 0) {
		/* Idle only counts when nothing is owed. */
		bufferevent_enable(c->bev, EV_READ);
		return;
	}
	tcp_free(c); /* error, idle timeout, or a client that never reads */
}

static void
tcp_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct tcp_listener *tl = arg;
	struct agent_listeners *l = tl->owner;
	struct timeval idle = {AGENT_TCP_IDLE_SEC, 0};
	struct tcp_conn *c;

	(void)lev, (void)sa, (void)salen;
	if (l->nconns >= l->max_conns || l->stopping ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		l->stats.tcp_rejected++;
		close(fd);
		return;
	}
	c->owner = l;
	c->bev = bufferevent_socket_new(l->srv.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		l->stats.tcp_rejected++;
		close(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&l->conns, c, entry);
	l->nconns++;
	l->stats.tcp_open = l->nconns;
	bufferevent_setcb(c->bev, tcp_read, tcp_write, tcp_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, TCP_FRAME_MAX);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
tcp_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_listener *tl = arg;

	(void)fd, (void)what;
	if (!tl->owner->stopping)
		evconnlistener_enable(tl->lev);
}

static void
tcp_accept_error(struct evconnlistener *lev, void *arg)
{
	struct tcp_listener *tl = arg;
	struct timeval pause = {ACCEPT_PAUSE_SEC, 0};
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		/* Out of descriptors: stop accepting for a while rather
		 * than spin on a listener that stays readable. */
		log_warn("tcp %s: accept: %s; pausing %d s", tl->text,
		    strerror(err), ACCEPT_PAUSE_SEC);
		evconnlistener_disable(lev);
		evtimer_add(tl->resume, &pause);
		return;
	}
	log_debug("tcp %s: accept: %s", tl->text, strerror(err));
}

/* ---- query log (--log-queries) ---- */

/* Who sent the query behind a reply's arg. */
static void
listen_client(const struct rsv_reply_info *info, void *arg, char *buf,
    size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (info->tr == RSV_UDP) {
		const struct udp_req *r = arg;

		memcpy(&ss, &r->peer, sizeof(ss));
	} else {
		const struct tcp_conn *c = arg;

		if (c->bev == NULL || getpeername(bufferevent_getfd(c->bev),
		                          (struct sockaddr *)&ss, &sl) != 0)
			ss.ss_family = AF_UNSPEC;
	}
	listen_addr_text(&ss, buf, len);
}

void
agent_on_reply(const struct rsv_reply_info *info, const uint8_t *reply,
    size_t len, void *arg)
{
	static const char *const keys[] = {
	    "client", "proto", "name", "type", "rcode", "source", "latency_ms"};
	static const char *const sources[] = {"local", "forwarded", "error"};
	static const char *const rcodes[] = {
	    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
	char client[INET6_ADDRSTRLEN + 8], name[LOG_NAME_MAX];
	char type[16], rc[16], lat[32];
	const char *vals[7];
	double secs;
	uint16_t qtype;
	int rcode, warn;

	warn = info->source == RSV_SRC_ERROR &&
	       (info->malformed ||
	           (len >= 4 && (reply[3] & 0xf) == 2)); /* SERVFAIL */
	if (!agent_log_queries() && !warn)
		return;
	secs = agent_log_queries() ? rsv_reply_seconds(info) : 0;
	listen_client(info, arg, client, sizeof(client));
	if (rsv_reply_describe(reply, len, name, sizeof(name), &qtype,
	        &rcode) != 0)
		snprintf(name, sizeof(name), "(unparsable)");
	if (rsv_type_name(qtype) != NULL)
		snprintf(type, sizeof(type), "%s", rsv_type_name(qtype));
	else
		snprintf(type, sizeof(type), "TYPE%u", qtype);
	if (rcode < 0)
		snprintf(rc, sizeof(rc), "dropped");
	else if ((size_t)rcode < sizeof(rcodes) / sizeof(rcodes[0]))
		snprintf(rc, sizeof(rc), "%s", rcodes[rcode]);
	else
		snprintf(rc, sizeof(rc), "RCODE%d", rcode);
	if (info->malformed)
		log_warn("rejected query from %s: %s", client, rc);
	else if (warn)
		log_warn(
		    "SERVFAIL for %s %s from %s: no table yet, no upstream "
		    "answered, or too many forwards in flight",
		    name[0] != '\0' ? name : "-", type, client);
	if (!agent_log_queries())
		return;
	snprintf(lat, sizeof(lat), "%.3f", secs * 1e3);
	vals[0] = client;
	vals[1] = info->tr == RSV_UDP ? "udp" : "tcp";
	vals[2] = name[0] != '\0' ? name : "-";
	vals[3] = type;
	vals[4] = rc;
	vals[5] = sources[info->source % 3];
	vals[6] = lat;
	agent_log_fields(LOG_LVL_INFO, "query", keys, vals, 7);
}

/* ---- sockets ---- */

static int
listen_socket(const struct agent_addr *a, int type, int *fdp)
{
	int fd, on = 1, family = a->ss.ss_family;

	fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 ||
	    (type == SOCK_STREAM && listen(fd, 1024) != 0)) {
		int err = -errno;

		close(fd);
		return err;
	}
	*fdp = fd;
	return 0;
}

static int
listen_is_wildcard(const struct agent_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)
	                                    ->sin6_addr);
}

static int
listen_udp(struct agent_listeners *l, const struct agent_addr *a)
{
	struct udp_listener *ul = &l->udp[l->nudp];
	int fd, on = 1, rcvbuf = UDP_RCVBUF, rc;

	if ((rc = listen_socket(a, SOCK_DGRAM, &fd)) != 0)
		return rc;
	/* Best effort: a smaller queue still works, it just drops sooner. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	ul->owner = l;
	ul->fd = fd;
	ul->family = a->ss.ss_family;
	ul->wildcard = listen_is_wildcard(a);
	if (ul->wildcard)
		setsockopt(fd,
		    ul->family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6,
		    ul->family == AF_INET ? IP_PKTINFO : IPV6_RECVPKTINFO, &on,
		    sizeof(on));
	ul->ev =
	    event_new(l->srv.base, fd, EV_READ | EV_PERSIST, udp_receive, ul);
	if (ul->ev == NULL || event_add(ul->ev, NULL) != 0) {
		event_free(ul->ev);
		close(fd);
		return -ENOMEM;
	}
	l->nudp++;
	return 0;
}

static int
listen_tcp(struct agent_listeners *l, const struct agent_addr *a)
{
	struct tcp_listener *tl = &l->tcp[l->ntcp];
	int fd, rc;

	if ((rc = listen_socket(a, SOCK_STREAM, &fd)) != 0)
		return rc;
	tl->owner = l;
	tl->text = a->text;
	tl->resume = evtimer_new(l->srv.base, tcp_accept_resume, tl);
	tl->lev = evconnlistener_new(l->srv.base, tcp_accept, tl,
	    LEV_OPT_CLOSE_ON_FREE, 0, fd); /* listening already, backlog 1024 */
	if (tl->resume == NULL || tl->lev == NULL) {
		if (tl->lev == NULL)
			close(fd);
		else
			evconnlistener_free(tl->lev);
		if (tl->resume != NULL)
			event_free(tl->resume);
		return -ENOMEM;
	}
	evconnlistener_set_error_cb(tl->lev, tcp_accept_error);
	l->ntcp++;
	return 0;
}

int
agent_listeners_open(const struct agent_server *srv,
    const struct agent_config *cfg, struct agent_listeners **out, char *err,
    size_t errlen)
{
	struct agent_listeners *l;
	size_t i;
	int rc = 0;

	*out = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return -ENOMEM;
	l->srv = *srv;
	l->max_conns = cfg->tcp_max_conns;
	l->batch.slots = mmap(NULL, UDP_MAP, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->batch.slots == MAP_FAILED) {
		free(l);
		return -ENOMEM;
	}
	l->batch.arena = l->batch.slots + UDP_BATCH * UDP_SLOT;
	l->batch.heads = l->batch.arena + UDP_ARENA;
	udp_batch_init(&l->batch);
	TAILQ_INIT(&l->conns);
	for (i = 0; i < cfg->nlisten; i++) {
		const struct agent_addr *a = &cfg->listen[i];
		const char *proto = "udp";

		if ((rc = listen_udp(l, a)) == 0) {
			proto = "tcp";
			rc = listen_tcp(l, a);
		}
		if (rc == 0) {
			log_info("listening on %s (udp, tcp)", a->text);
			continue;
		}
		if (a->optional &&
		    (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL ||
		        rc == -EPROTONOSUPPORT)) {
			/* Roll back the UDP half of this address. */
			if (strcmp(proto, "tcp") == 0) {
				l->nudp--;
				event_free(l->udp[l->nudp].ev);
				close(l->udp[l->nudp].fd);
			}
			log_warn("skipping %s: %s (no IPv6 on this host?)",
			    a->text, strerror(-rc));
			rc = 0;
			continue;
		}
		snprintf(err, errlen, "cannot listen on %s (%s): %s", a->text,
		    proto, strerror(-rc));
		goto fail;
	}
	if (l->nudp == 0) {
		snprintf(err, errlen, "no listen address could be opened");
		rc = -EADDRNOTAVAIL;
		goto fail;
	}
	*out = l;
	return 0;
fail:
	agent_listeners_close(l);
	return rc;
}

size_t
agent_listeners_stop(struct agent_listeners *l)
{
	struct tcp_conn *c, *next;
	size_t i;

	l->stopping = 1;
	/* Read no more; the sockets stay open for replies still owed. */
	for (i = 0; i < l->nudp; i++)
		event_del(l->udp[i].ev);
	for (i = 0; i < l->ntcp; i++) {
		evconnlistener_disable(l->tcp[i].lev);
		event_del(l->tcp[i].resume);
	}
	for (c = TAILQ_FIRST(&l->conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		c->closing = 1;
		bufferevent_disable(c->bev, EV_READ);
		(void)tcp_maybe_close(c);
	}
	return agent_listeners_busy(l);
}

size_t
agent_listeners_busy(const struct agent_listeners *l)
{
	return l->nconns + l->udp_inflight;
}

const struct agent_listen_stats *
agent_listeners_stats(const struct agent_listeners *l)
{
	return &l->stats;
}

void
agent_listeners_close(struct agent_listeners *l)
{
	struct udp_req *r;
	size_t i;

	if (l == NULL)
		return;
	while (!TAILQ_EMPTY(&l->conns))
		tcp_free(TAILQ_FIRST(&l->conns));
	for (i = 0; i < l->nudp; i++) {
		if (l->udp[i].ev != NULL)
			event_free(l->udp[i].ev);
		if (l->udp[i].fd >= 0)
			close(l->udp[i].fd);
	}
	for (i = 0; i < l->ntcp; i++) {
		evconnlistener_free(l->tcp[i].lev);
		event_free(l->tcp[i].resume);
	}
	while ((r = l->free_reqs) != NULL) {
		l->free_reqs = r->next_free;
		free(r);
	}
	munmap(l->batch.slots, UDP_MAP);
	free(l);
}
