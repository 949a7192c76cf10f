/*
 * wire: the DNS message codec (RFC 1035, RFC 6891).  Private to resolver/
 * (and its tests and fuzz targets).
 *
 * Bytes in, bytes out: no I/O, no globals, no clock, no logging, no
 * allocation.  Every read goes through bounds checks; counts in headers are
 * never trusted before the bytes are there.
 *
 *	struct rsv_query q;
 *	switch (rsv_query_parse(pkt, len, &q)) { ... }	   pre-handler rules
 *
 *	struct rsv_writer w;
 *	rsv_writer_init(&w, out, sizeof(out), limit);
 *	rsv_writer_question(&w, q.qname, q.qname_len, q.qtype, q.qclass);
 *	rsv_writer_rr(&w, owner, olen, RSV_TYPE_A, RSV_CLASS_IN, 30, ip, 4);
 *	rsv_writer_finish(&w, &hdr);	  header (counts filled in) at offset 0
 */
#ifndef DNSPROXY_RESOLVER_WIRE_H
#define DNSPROXY_RESOLVER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define RSV_HDR_LEN 12
#define RSV_NAME_MAX 255 /* wire form, root label included */
#define RSV_LABEL_MAX 63
#define RSV_MSG_MAX 65535   /* largest message: UDP or one TCP frame */
#define RSV_TEXT_MAX 1024   /* dotted text form, with room for \DDD escapes */
#define RSV_OPT_LEN 11      /* an OPT RR without options */
#define RSV_EDNS_LOCAL 1232 /* payload size we advertise (D2) */
#define RSV_COMP_MAX 64     /* compression targets remembered per message */

/* Header flags (the 16-bit word after the ID). */
#define RSV_F_QR 0x8000
#define RSV_F_AA 0x0400
#define RSV_F_TC 0x0200
#define RSV_F_RD 0x0100
#define RSV_F_RA 0x0080
#define RSV_F_AD 0x0020
#define RSV_F_CD 0x0010
#define RSV_OPCODE(f) (((f) >> 11) & 0xf)
#define RSV_RCODE(f) ((f)&0xf)
#define RSV_EDNS_DO 0x8000 /* in the OPT TTL's flag half */

enum rsv_opcode { RSV_OP_QUERY = 0, RSV_OP_NOTIFY = 4 };

enum rsv_rcode {
	RSV_NOERROR = 0,
	RSV_FORMERR = 1,
	RSV_SERVFAIL = 2,
	RSV_NXDOMAIN = 3,
	RSV_NOTIMP = 4,
	RSV_REFUSED = 5,
	RSV_BADVERS = 16 /* extended: upper 8 bits go into the OPT */
};

enum rsv_type {
	RSV_TYPE_A = 1,
	RSV_TYPE_NS = 2,
	RSV_TYPE_CNAME = 5,
	RSV_TYPE_SOA = 6,
	RSV_TYPE_PTR = 12,
	RSV_TYPE_MX = 15,
	RSV_TYPE_TXT = 16,
	RSV_TYPE_AAAA = 28,
	RSV_TYPE_SRV = 33,
	RSV_TYPE_OPT = 41,
	RSV_TYPE_TSIG = 250,
	RSV_TYPE_ANY = 255
};

#define RSV_CLASS_IN 1

static inline uint16_t
rsv_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t
rsv_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void
rsv_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
rsv_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

struct rsv_hdr {
	uint16_t id;      /* query ID */
	uint16_t flags;   /* QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode */
	uint16_t qdcount; /* questions */
	uint16_t ancount; /* answer RRs */
	uint16_t nscount; /* authority RRs */
	uint16_t arcount; /* additional RRs */
};

/* The EDNS0 OPT pseudo-RR of a message (RFC 6891 §6.1.2). */
struct rsv_opt {
	int present;          /* 1 when the additional section had an OPT */
	uint16_t udp_size;    /* its CLASS: requestor's UDP payload size */
	uint8_t ext_rcode;    /* upper 8 bits of the extended rcode */
	uint8_t version;      /* EDNS version */
	uint16_t flags;       /* DO and Z bits */
	const uint8_t *rdata; /* options, borrowed from the parsed packet */
	uint16_t rdlen;       /* bytes of options */
};

/* Result of rsv_query_parse(): the pre-handler rules of SPEC §3. */
enum rsv_parse {
	RSV_PARSE_OK = 0,  /* a valid query; q fully filled in */
	RSV_PARSE_DROP,    /* < 12 bytes or QR=1: send nothing */
	RSV_PARSE_NOTIMP,  /* opcode not QUERY/NOTIFY: NOTIMP, opcode echoed */
	RSV_PARSE_FORMERR, /* bad counts or unparsable body: FORMERR */
	RSV_PARSE_REFUSED, /* QDCOUNT=1 but nothing after the header */
	RSV_PARSE_BADVERS  /* OPT with version > 0: BADVERS (D11) */
};

/* A parsed query.  Valid fields depend on the parse result (see below). */
struct rsv_query {
	struct rsv_hdr hdr;          /* always valid unless DROP */
	int has_question;            /* qname/qtype/qclass valid */
	uint8_t qname[RSV_NAME_MAX]; /* uncompressed wire form, in the
	                              * client's case */
	size_t qname_len;            /* bytes in qname, root label incl. */
	uint16_t qtype;
	uint16_t qclass;
	struct rsv_opt opt; /* the query's OPT, if any */
	int has_tsig;       /* a TSIG RR is last in additional */
};

/*
 * Applies the pre-handler rules of SPEC §3 in miekg's order and parses the
 * whole message (question, every RR, compression pointers).  Checks, in
 * order: length < 12 or QR=1 -> DROP; opcode not 0/4 -> NOTIMP; QDCOUNT != 1,
 * ANCOUNT > 1, NSCOUNT > 1 or ARCOUNT > 2 -> FORMERR; QDCOUNT = 1 and no
 * byte after the header -> REFUSED; any malformed name or RR, trailing
 * bytes, or a second OPT -> FORMERR; OPT version > 0 -> BADVERS.
 * hdr is filled for every result but DROP; has_question says whether the
 * (first) question could be read, also for NOTIMP and the count rules
 * (an error reply echoes it then).
 */
enum rsv_parse rsv_query_parse(const uint8_t *pkt, size_t len,
    struct rsv_query *q);

/*
 * Reads the possibly compressed name at *off of pkt into out (uncompressed
 * wire form, at most RSV_NAME_MAX bytes, case kept) and moves *off past the
 * name's bytes in pkt.  Rejects labels > 63, names > 255, reserved label
 * types (0x40, 0x80), pointers out of the packet, and any pointer that does
 * not point strictly backwards of the label that holds it (so loops are
 * impossible).  0 or -EINVAL.
 */
int rsv_name_parse(const uint8_t *pkt, size_t len, size_t *off, uint8_t *out,
    size_t *outlen);

/*
 * Wire name -> dotted text with the trailing dot ("." for the root),
 * NUL-terminated.  When lower is set, ASCII A-Z are lower-cased.  Returns
 * -EINVAL if a label holds '.', '\\' or a byte outside 0x21..0x7e (no
 * table name can match it), -ENOSPC if cap is too small, else 0 with
 * *outlen = strlen(out).
 */
int rsv_name_to_text(const uint8_t *name, size_t nlen, int lower, char *out,
    size_t cap, size_t *outlen);

/*
 * Dotted text (trailing dot optional, "." or "" = root) -> wire form.
 * No escapes are interpreted.  0, or -EINVAL for an empty label, a label
 * > 63 or a name > 255 bytes, or -ENOSPC when cap is too small.
 */
int rsv_name_from_text(const char *text, size_t tlen, uint8_t *out, size_t cap,
    size_t *outlen);

/* Case-insensitive (ASCII) comparison of two wire names; 1 when equal. */
int rsv_name_equal(const uint8_t *a, size_t alen, const uint8_t *b,
    size_t blen);

/*
 * Message writer with name compression.  Names are compressed against the
 * names and suffixes already written, comparing bytes exactly (case
 * sensitive), so a lower-case owner is never replaced by a pointer to the
 * client's mixed-case question.  Every append is atomic: it returns
 * -ENOSPC and leaves the writer unchanged when the record would end past
 * the limit.  Appends return -EINVAL (writer unchanged) for a malformed
 * wire name, a question after rsv_writer_section(), or an RR before it.
 */
struct rsv_writer {
	uint8_t *buf; /* output buffer */
	size_t cap;   /* its size */
	size_t limit; /* appends may not end past min(limit, cap) */
	size_t len;   /* bytes written, header included */
	struct rsv_hdr hdr_counts; /* qd/an/ns/ar counted by the appends */
	int section;    /* 0 question, 1 answer, 2 authority, 3 additional */
	uint16_t ncomp; /* entries used in comp */
	uint16_t comp[RSV_COMP_MAX]; /* offsets of names/suffixes written */
};

/* Starts a message after room for the header.  limit: see above. */
void rsv_writer_init(struct rsv_writer *w, uint8_t *buf, size_t cap,
    size_t limit);

/* Changes the limit (e.g. raise it to re-append the OPT after truncation). */
void rsv_writer_set_limit(struct rsv_writer *w, size_t limit);

/* Appends the question; the name is written as given. */
int rsv_writer_question(struct rsv_writer *w, const uint8_t *name, size_t nlen,
    uint16_t qtype, uint16_t qclass);

/*
 * Moves to section 1 (answer), 2 (authority) or 3 (additional); sections
 * only move forward.  The RR appends count into the current section.
 */
void rsv_writer_section(struct rsv_writer *w, int section);

/* Appends one RR with opaque rdata (A, AAAA, TXT, ...). */
int rsv_writer_rr(struct rsv_writer *w, const uint8_t *owner, size_t olen,
    uint16_t type, uint16_t rclass, uint32_t ttl, const uint8_t *rdata,
    uint16_t rdlen);

/* Appends one RR whose rdata is a single name, compressed (CNAME, PTR). */
int rsv_writer_rr_name(struct rsv_writer *w, const uint8_t *owner, size_t olen,
    uint16_t type, uint16_t rclass, uint32_t ttl, const uint8_t *target,
    size_t tlen);

/* Appends an OPT RR (owner root) to the additional section. */
int rsv_writer_opt(struct rsv_writer *w, uint16_t udp_size, uint8_t ext_rcode,
    uint8_t version, uint16_t flags, const uint8_t *rdata, uint16_t rdlen);

/*
 * Writes the 12-byte header at offset 0: id and flags from h, the counts
 * from what was appended.  Returns the message length.
 */
size_t rsv_writer_finish(struct rsv_writer *w, const struct rsv_hdr *h);

/*
 * Size limit for a reply to q over UDP (SPEC §3): with an OPT, its size
 * floored at 512 and capped at 65535; without, 512.  TCP callers use
 * RSV_MSG_MAX.
 */
size_t rsv_udp_limit(const struct rsv_query *q);

/*
 * Validates a complete message (every question and RR, names, no trailing
 * bytes, one OPT at most, in the additional section).  0 or -EINVAL.
 */
int rsv_msg_check(const uint8_t *pkt, size_t len);

/*
 * Re-encodes the complete message pkt (a reply, e.g. relayed from an
 * upstream) into out, compressed, truncated per SPEC §3 to limit bytes:
 * the OPT set aside, answer then authority then additional RRs kept while
 * they fit, each section stopping at its first misfit, TC=1 if anything
 * was dropped (an existing TC stays), the OPT re-appended.  A message that
 * fits is copied as-is after validation.  Names inside the rdata of NS,
 * CNAME, PTR, MX, SOA, SRV (and the other RFC 1035 types) are decompressed
 * and recompressed; other rdata is copied opaquely.  A message with TSIG
 * is never truncated (-EMSGSIZE if it does not fit).
 * 0 with *outlen set, -EINVAL for a malformed message, -ENOSPC if cap is
 * too small for even the header and question.
 */
int rsv_msg_truncate(const uint8_t *pkt, size_t len, size_t limit, uint8_t *out,
    size_t cap, size_t *outlen);

#endif
