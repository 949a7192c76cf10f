/*
 * wire.c: the DNS message codec (RFC 1035, RFC 6891), see wire.h.
 *
 * Pure: bytes in, bytes out.  Reading goes through rsv_name_parse() and
 * rr_read(), which check every offset against the packet length before
 * touching a byte; header counts are only loop bounds, and each iteration
 * consumes at least one byte, so no count can make us loop past the data.
 * Writing goes through a scratch copy of the writer that replaces the real
 * one only when the whole record fitted, which makes every append atomic.
 */
#include "resolver/wire.h"

#include <errno.h>
#include <string.h>

/* Bound on compression pointers followed while reading one name.  Each hop
 * must go strictly backwards, so loops are impossible anyway; this only
 * bounds the work (a name has at most 127 labels, miekg allows 126 hops). */
#define WIRE_HOPS_MAX 127
#define WIRE_PTR_MAX 0x3fff /* largest offset a pointer can hold */
#define RR_FIXED_LEN 10     /* type, class, ttl, rdlength */
/* Label comparisons one name may spend looking for a compression target.
 * A normal name needs a few hundred; crafted ones (long runs of equal
 * labels against a table of their suffixes) could need ~500k, for every
 * RR of a 64 KiB reply.  Past the budget the rest of the name is written
 * out in full: compression is an optimisation, the output stays valid. */
#define WIRE_COMP_WORK 4096

/* One field of an rdata layout: opaque bytes or a domain name. */
enum part_kind {
	PART_BYTES,    /* len opaque bytes */
	PART_NAME,     /* a name, compressed on output (RFC 1035 types) */
	PART_NAME_RAW, /* a name, never compressed on output (RFC 2782) */
};

struct part {
	uint8_t kind;     /* enum part_kind */
	const uint8_t *p; /* PART_BYTES: the bytes; names: wire form */
	size_t plen;      /* bytes at p */
};

/* The rdata of one RR, split into parts when its type holds names. */
struct rdata {
	int nparts;                     /* parts used */
	struct part part[3];            /* in wire order */
	uint8_t names[2][RSV_NAME_MAX]; /* storage for decompressed names */
};

/* An RR read from a packet; rdata is borrowed from the packet. */
struct rr {
	uint8_t owner[RSV_NAME_MAX]; /* uncompressed, case kept */
	size_t olen;                 /* bytes in owner */
	uint16_t type;
	uint16_t rclass;
	uint32_t ttl;
	const uint8_t *rdata; /* raw rdata in the packet */
	uint16_t rdlen;       /* its length */
	struct rdata rd;      /* decoded parts (one opaque part if no names) */
};

/* rdata layouts of the types whose rdata holds names. */
struct layout {
	uint16_t type;
	uint8_t nparts;
	struct {
		uint8_t kind;
		uint8_t len;
	} f[3];
};

static const struct layout layouts[] = {
    {RSV_TYPE_NS, 1, {{PART_NAME, 0}}},
    {3 /* MD */, 1, {{PART_NAME, 0}}},
    {4 /* MF */, 1, {{PART_NAME, 0}}},
    {RSV_TYPE_CNAME, 1, {{PART_NAME, 0}}},
    {RSV_TYPE_SOA, 3, {{PART_NAME, 0}, {PART_NAME, 0}, {PART_BYTES, 20}}},
    {7 /* MB */, 1, {{PART_NAME, 0}}},
    {8 /* MG */, 1, {{PART_NAME, 0}}},
    {9 /* MR */, 1, {{PART_NAME, 0}}},
    {RSV_TYPE_PTR, 1, {{PART_NAME, 0}}},
    {14 /* MINFO */, 2, {{PART_NAME, 0}, {PART_NAME, 0}}},
    {RSV_TYPE_MX, 2, {{PART_BYTES, 2}, {PART_NAME, 0}}},
    {RSV_TYPE_SRV, 2, {{PART_BYTES, 6}, {PART_NAME_RAW, 0}}},
};

static const struct layout *
layout_find(uint16_t type)
{
	size_t i;

	for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].type == type)
			return &layouts[i];
	return NULL;
}

/*
 * Reading.
 */

int
rsv_name_parse(const uint8_t *pkt, size_t len, size_t *off, uint8_t *out,
    size_t *outlen)
{
	size_t pos = *off, start = *off, end = 0, n = 0;
	unsigned hops = 0;
	uint8_t c;

	for (;;) {
		if (pos >= len)
			return -EINVAL;
		c = pkt[pos];
		if ((c & 0xc0) == 0xc0) {
			size_t ptr;

			if (pos + 1 >= len || ++hops > WIRE_HOPS_MAX)
				return -EINVAL;
			ptr = (size_t)(c & 0x3f) << 8 | pkt[pos + 1];
			/* Strictly before the sequence being read: each hop
			 * lowers start, so no pointer can lead back here. */
			if (ptr >= start)
				return -EINVAL;
			if (end == 0)
				end = pos + 2;
			start = pos = ptr;
			continue;
		}
		if (c & 0xc0) /* 0x40 extended, 0x80 reserved */
			return -EINVAL;
		if (n + 1 + c > RSV_NAME_MAX || pos + 1 + c > len)
			return -EINVAL;
		memcpy(out + n, pkt + pos, (size_t)c + 1);
		n += (size_t)c + 1;
		pos += (size_t)c + 1;
		if (c == 0)
			break;
	}
	*off = end != 0 ? end : pos;
	*outlen = n;
	return 0;
}

/* Checks an uncompressed wire name: labels <= 63, root last, <= 255. */
static int
name_check(const uint8_t *name, size_t nlen)
{
	size_t pos = 0;

	if (name == NULL || nlen == 0 || nlen > RSV_NAME_MAX)
		return -EINVAL;
	while (pos < nlen && name[pos] != 0) {
		if (name[pos] > RSV_LABEL_MAX)
			return -EINVAL;
		pos += (size_t)name[pos] + 1;
	}
	return pos == nlen - 1 ? 0 : -EINVAL;
}

/* Splits the rdata of rr into parts, decompressing names. */
static int
rdata_read(const uint8_t *pkt, size_t len, size_t rdoff, struct rr *rr)
{
	const struct layout *lo = layout_find(rr->type);
	size_t off = rdoff, end = rdoff + rr->rdlen;
	int i, nnames = 0;

	if (lo == NULL) {
		rr->rd.nparts = 1;
		rr->rd.part[0].kind = PART_BYTES;
		rr->rd.part[0].p = rr->rdata;
		rr->rd.part[0].plen = rr->rdlen;
		return 0;
	}
	rr->rd.nparts = lo->nparts;
	for (i = 0; i < lo->nparts; i++) {
		struct part *pt = &rr->rd.part[i];

		pt->kind = lo->f[i].kind;
		if (pt->kind == PART_BYTES) {
			if (end - off < lo->f[i].len)
				return -EINVAL;
			pt->p = pkt + off;
			pt->plen = lo->f[i].len;
			off += lo->f[i].len;
			continue;
		}
		/* The name's own bytes must lie inside the rdata; its
		 * pointers may reach anywhere earlier in the packet. */
		if (rsv_name_parse(pkt, end, &off, rr->rd.names[nnames],
		        &pt->plen) != 0)
			return -EINVAL;
		pt->p = rr->rd.names[nnames++];
	}
	return off == end ? 0 : -EINVAL;
}

/* Reads the RR at *off (owner, fixed fields, rdata) and moves past it. */
static int
rr_read(const uint8_t *pkt, size_t len, size_t *off, struct rr *rr)
{
	size_t pos = *off;

	if (rsv_name_parse(pkt, len, &pos, rr->owner, &rr->olen) != 0)
		return -EINVAL;
	if (len - pos < RR_FIXED_LEN)
		return -EINVAL;
	rr->type = rsv_get16(pkt + pos);
	rr->rclass = rsv_get16(pkt + pos + 2);
	rr->ttl = rsv_get32(pkt + pos + 4);
	rr->rdlen = rsv_get16(pkt + pos + 8);
	pos += RR_FIXED_LEN;
	if (len - pos < rr->rdlen)
		return -EINVAL;
	rr->rdata = pkt + pos;
	if (rdata_read(pkt, len, pos, rr) != 0)
		return -EINVAL;
	*off = pos + rr->rdlen;
	return 0;
}

/* Reads a question entry: name, qtype, qclass. */
static int
question_read(const uint8_t *pkt, size_t len, size_t *off, uint8_t *name,
    size_t *nlen, uint16_t *qtype, uint16_t *qclass)
{
	size_t pos = *off;

	if (rsv_name_parse(pkt, len, &pos, name, nlen) != 0 || len - pos < 4)
		return -EINVAL;
	*qtype = rsv_get16(pkt + pos);
	*qclass = rsv_get16(pkt + pos + 2);
	*off = pos + 4;
	return 0;
}

static void
hdr_read(const uint8_t *pkt, struct rsv_hdr *h)
{
	h->id = rsv_get16(pkt);
	h->flags = rsv_get16(pkt + 2);
	h->qdcount = rsv_get16(pkt + 4);
	h->ancount = rsv_get16(pkt + 6);
	h->nscount = rsv_get16(pkt + 8);
	h->arcount = rsv_get16(pkt + 10);
}

/* Fills o from an OPT RR (RFC 6891 §6.1.3: the TTL holds ext_rcode,
 * version and flags). */
static void
opt_fill(const struct rr *rr, struct rsv_opt *o)
{
	o->present = 1;
	o->udp_size = rr->rclass;
	o->ext_rcode = (uint8_t)(rr->ttl >> 24);
	o->version = (uint8_t)(rr->ttl >> 16);
	o->flags = (uint16_t)rr->ttl;
	o->rdata = rr->rdata;
	o->rdlen = rr->rdlen;
}

/* EDNS options must tile the OPT rdata exactly (code, length, data). */
static int
opt_options_check(const uint8_t *p, size_t n)
{
	size_t pos = 0;

	while (pos < n) {
		if (n - pos < 4 || n - pos - 4 < rsv_get16(p + pos + 2))
			return -EINVAL;
		pos += 4 + (size_t)rsv_get16(p + pos + 2);
	}
	return 0;
}

/*
 * Checks one RR of section sec (1..3) of a message: an OPT only in the
 * additional section, owned by the root, at most once.  Fills opt.
 */
static int
rr_check_opt(const struct rr *rr, int sec, struct rsv_opt *opt)
{
	if (rr->type != RSV_TYPE_OPT)
		return 0;
	if (sec != 3 || rr->olen != 1 || opt->present)
		return -EINVAL;
	opt_fill(rr, opt);
	return 0;
}

/* Parses every RR after the question of a query; FORMERR on any fault. */
static enum rsv_parse
query_parse_rrs(const uint8_t *pkt, size_t len, size_t off, struct rsv_query *q)
{
	uint16_t counts[3] = {q->hdr.ancount, q->hdr.nscount, q->hdr.arcount};
	struct rr rr;
	int sec;
	uint16_t i;

	for (sec = 1; sec <= 3; sec++) {
		for (i = 0; i < counts[sec - 1]; i++) {
			if (rr_read(pkt, len, &off, &rr) != 0 ||
			    rr_check_opt(&rr, sec, &q->opt) != 0)
				return RSV_PARSE_FORMERR;
			if (rr.type == RSV_TYPE_OPT &&
			    opt_options_check(rr.rdata, rr.rdlen) != 0)
				return RSV_PARSE_FORMERR;
			q->has_tsig = sec == 3 && i + 1 == counts[2] &&
			              rr.type == RSV_TYPE_TSIG;
		}
	}
	if (off != len)
		return RSV_PARSE_FORMERR;
	if (q->opt.present && q->opt.version > 0)
		return RSV_PARSE_BADVERS;
	return RSV_PARSE_OK;
}

/*
 * A query rejected on its header alone still gets its first question
 * echoed in the error reply (SPEC §3), when there is one that reads.
 */
static void
query_echo_question(const uint8_t *pkt, size_t len, struct rsv_query *q)
{
	size_t off = RSV_HDR_LEN;

	if (q->hdr.qdcount > 0 &&
	    question_read(pkt, len, &off, q->qname, &q->qname_len, &q->qtype,
	        &q->qclass) == 0)
		q->has_question = 1;
}

enum rsv_parse
rsv_query_parse(const uint8_t *pkt, size_t len, struct rsv_query *q)
{
	const struct rsv_hdr *h = &q->hdr;
	size_t off = RSV_HDR_LEN;

	memset(q, 0, sizeof(*q));
	if (pkt == NULL || len < RSV_HDR_LEN || (pkt[2] & 0x80))
		return RSV_PARSE_DROP;
	hdr_read(pkt, &q->hdr);
	if (RSV_OPCODE(h->flags) != RSV_OP_QUERY &&
	    RSV_OPCODE(h->flags) != RSV_OP_NOTIFY) {
		query_echo_question(pkt, len, q);
		return RSV_PARSE_NOTIMP;
	}
	if (h->qdcount != 1 || h->ancount > 1 || h->nscount > 1 ||
	    h->arcount > 2) {
		query_echo_question(pkt, len, q);
		return RSV_PARSE_FORMERR;
	}
	if (len == RSV_HDR_LEN)
		return RSV_PARSE_REFUSED;
	if (question_read(pkt, len, &off, q->qname, &q->qname_len, &q->qtype,
	        &q->qclass) != 0)
		return RSV_PARSE_FORMERR;
	q->has_question = 1;
	return query_parse_rrs(pkt, len, off, q);
}

/*
 * Text forms.
 */

int
rsv_name_to_text(const uint8_t *name, size_t nlen, int lower, char *out,
    size_t cap, size_t *outlen)
{
	size_t pos = 0, n = 0, i;

	if (name_check(name, nlen) != 0)
		return -EINVAL;
	if (nlen == 1) {
		if (cap < 2)
			return -ENOSPC;
		out[0] = '.';
		out[1] = '\0';
		*outlen = 1;
		return 0;
	}
	/* The text is one byte per wire byte, minus the root's length byte,
	 * plus the NUL: exactly nlen bytes. */
	if (cap < nlen)
		return -ENOSPC;
	while (name[pos] != 0) {
		for (i = 1; i <= name[pos]; i++) {
			uint8_t c = name[pos + i];

			if (c < 0x21 || c > 0x7e || c == '.' || c == '\\')
				return -EINVAL;
			if (lower && c >= 'A' && c <= 'Z')
				c = (uint8_t)(c - 'A' + 'a');
			out[n++] = (char)c;
		}
		out[n++] = '.';
		pos += (size_t)name[pos] + 1;
	}
	out[n] = '\0';
	*outlen = n;
	return 0;
}

int
rsv_name_from_text(const char *text, size_t tlen, uint8_t *out, size_t cap,
    size_t *outlen)
{
	size_t pos = 0, n = 0, lab;

	if (tlen > 0 && text[tlen - 1] == '.')
		tlen--;
	if (tlen > 0 && text[tlen - 1] == '.') /* "a.." */
		return -EINVAL;
	while (pos < tlen) {
		for (lab = 0; pos + lab < tlen && text[pos + lab] != '.'; lab++)
			;
		if (lab == 0 || lab > RSV_LABEL_MAX)
			return -EINVAL;
		if (n + 1 + lab + 1 > RSV_NAME_MAX)
			return -EINVAL;
		if (n + 1 + lab + 1 > cap)
			return -ENOSPC;
		out[n] = (uint8_t)lab;
		memcpy(out + n + 1, text + pos, lab);
		n += 1 + lab;
		pos += lab + 1; /* skip the dot; past tlen ends the loop */
	}
	if (n + 1 > cap)
		return -ENOSPC;
	out[n++] = 0;
	*outlen = n;
	return 0;
}

static uint8_t
ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

int
rsv_name_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t i;

	/* Label length bytes are <= 63, below 'A', so folding every byte
	 * only folds label contents. */
	if (alen != blen)
		return 0;
	for (i = 0; i < alen; i++)
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return 0;
	return 1;
}

/*
 * Writing.
 */

void
rsv_writer_init(struct rsv_writer *w, uint8_t *buf, size_t cap, size_t limit)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	w->limit = limit;
	w->len = RSV_HDR_LEN;
}

void
rsv_writer_set_limit(struct rsv_writer *w, size_t limit)
{
	w->limit = limit;
}

void
rsv_writer_section(struct rsv_writer *w, int section)
{
	if (section > w->section && section <= 3)
		w->section = section;
}

static size_t
wr_end(const struct rsv_writer *w)
{
	return w->limit < w->cap ? w->limit : w->cap;
}

static int
wr_bytes(struct rsv_writer *t, const void *p, size_t n)
{
	if (t->len > wr_end(t) || wr_end(t) - t->len < n)
		return -ENOSPC;
	if (n > 0)
		memcpy(t->buf + t->len, p, n);
	t->len += n;
	return 0;
}

static int
wr_u16(struct rsv_writer *t, uint16_t v)
{
	uint8_t b[2];

	rsv_put16(b, v);
	return wr_bytes(t, b, 2);
}

/*
 * Whether the name written at offset o of t->buf (following our own
 * pointers) is byte for byte the uncompressed name s.  Exact bytes, not
 * case-folded: a pointer must never change the case of what it replaces.
 */
static int
comp_match(const struct rsv_writer *t, size_t o, const uint8_t *s, size_t slen,
    unsigned *work)
{
	size_t i = 0;
	unsigned hops = 0;
	uint8_t c;

	for (;;) {
		if (o >= t->len || i >= slen || *work == 0)
			return 0;
		(*work)--;
		c = t->buf[o];
		if ((c & 0xc0) == 0xc0) {
			if (o + 1 >= t->len || ++hops > WIRE_HOPS_MAX)
				return 0;
			o = (size_t)(c & 0x3f) << 8 | t->buf[o + 1];
			continue;
		}
		if (c != s[i])
			return 0;
		if (c == 0)
			return 1;
		if (o + 1 + c > t->len || i + 1 + c > slen ||
		    memcmp(t->buf + o + 1, s + i + 1, c) != 0)
			return 0;
		o += (size_t)c + 1;
		i += (size_t)c + 1;
	}
}

/* Offset of an earlier name equal to s, or -1. */
static long
comp_find(const struct rsv_writer *t, const uint8_t *s, size_t slen,
    unsigned *work)
{
	uint16_t i;

	for (i = 0; i<t->ncomp && * work> 0; i++)
		if (comp_match(t, t->comp[i], s, slen, work))
			return t->comp[i];
	return -1;
}

/*
 * Writes the (checked) name, replacing its longest suffix already in the
 * message by a pointer when compress is set, and remembers the offsets of
 * the labels it wrote out in full.
 */
static int
wr_name(struct rsv_writer *t, const uint8_t *name, size_t nlen, int compress)
{
	size_t p = 0, base = t->len, i;
	unsigned work = WIRE_COMP_WORK;
	long ptr = -1;
	uint8_t b[2];

	for (p = 0; name[p] != 0; p += (size_t)name[p] + 1)
		if (compress &&
		    (ptr = comp_find(t, name + p, nlen - p, &work)) >= 0)
			break;
	if (wr_bytes(t, name, p) != 0)
		return -ENOSPC;
	if (ptr >= 0) {
		rsv_put16(b, (uint16_t)(0xc000 | ptr));
		if (wr_bytes(t, b, 2) != 0)
			return -ENOSPC;
	} else if (wr_bytes(t, name + p, 1) != 0) {
		return -ENOSPC;
	}
	if (!compress)
		return 0;
	for (i = 0; i < p; i += (size_t)name[i] + 1)
		if (base + i <= WIRE_PTR_MAX && t->ncomp < RSV_COMP_MAX)
			t->comp[t->ncomp++] = (uint16_t)(base + i);
	return 0;
}

static int
wr_count(struct rsv_writer *t)
{
	uint16_t *c;

	switch (t->section) {
	case 1:
		c = &t->hdr_counts.ancount;
		break;
	case 2:
		c = &t->hdr_counts.nscount;
		break;
	case 3:
		c = &t->hdr_counts.arcount;
		break;
	default:
		return -EINVAL;
	}
	if (*c == UINT16_MAX)
		return -ENOSPC;
	(*c)++;
	return 0;
}

/*
 * What an append may change, so that a failed one is undone: the bytes
 * past len are not the message, and comp only grows past ncomp, where it
 * is kept zero, so that the writer is restored byte for byte.  (Cheaper
 * than working on a copy of the whole writer, compression table included.)
 */
struct wr_mark {
	size_t len;
	struct rsv_hdr counts;
	uint16_t ncomp;
};

static void
wr_mark(const struct rsv_writer *w, struct wr_mark *m)
{
	m->len = w->len;
	m->counts = w->hdr_counts;
	m->ncomp = w->ncomp;
}

static int
wr_undo(struct rsv_writer *w, const struct wr_mark *m, int rc)
{
	if (w->ncomp > m->ncomp)
		memset(w->comp + m->ncomp, 0,
		    (w->ncomp - m->ncomp) * sizeof(w->comp[0]));
	w->len = m->len;
	w->hdr_counts = m->counts;
	w->ncomp = m->ncomp;
	return rc;
}

/*
 * Appends one RR whose rdata is given as parts, whole or not at all.
 */
static int
wr_rr(struct rsv_writer *w, const uint8_t *owner, size_t olen, uint16_t type,
    uint16_t rclass, uint32_t ttl, const struct part *parts, int nparts)
{
	struct wr_mark m;
	size_t rdstart;
	uint8_t fixed[RR_FIXED_LEN];
	int i, rc;

	if (name_check(owner, olen) != 0)
		return -EINVAL;
	wr_mark(w, &m);
	if ((rc = wr_count(w)) != 0)
		return wr_undo(w, &m, rc);
	rsv_put16(fixed, type);
	rsv_put16(fixed + 2, rclass);
	rsv_put32(fixed + 4, ttl);
	if (wr_name(w, owner, olen, 1) != 0 ||
	    wr_bytes(w, fixed, RR_FIXED_LEN) != 0)
		return wr_undo(w, &m, -ENOSPC);
	rdstart = w->len;
	for (i = 0; i < nparts; i++) {
		if (parts[i].kind == PART_BYTES)
			rc = wr_bytes(w, parts[i].p, parts[i].plen);
		else if (name_check(parts[i].p, parts[i].plen) != 0)
			rc = -EINVAL;
		else
			rc = wr_name(w, parts[i].p, parts[i].plen,
			    parts[i].kind == PART_NAME);
		if (rc != 0)
			return wr_undo(w, &m, rc);
	}
	if (w->len - rdstart > UINT16_MAX)
		return wr_undo(w, &m, -EINVAL);
	rsv_put16(w->buf + rdstart - 2, (uint16_t)(w->len - rdstart));
	return 0;
}

int
rsv_writer_question(struct rsv_writer *w, const uint8_t *name, size_t nlen,
    uint16_t qtype, uint16_t qclass)
{
	struct wr_mark m;

	if (w->section != 0 || name_check(name, nlen) != 0)
		return -EINVAL;
	if (w->hdr_counts.qdcount == UINT16_MAX)
		return -ENOSPC;
	wr_mark(w, &m);
	if (wr_name(w, name, nlen, 1) != 0 || wr_u16(w, qtype) != 0 ||
	    wr_u16(w, qclass) != 0)
		return wr_undo(w, &m, -ENOSPC);
	w->hdr_counts.qdcount++;
	return 0;
}

int
rsv_writer_rr(struct rsv_writer *w, const uint8_t *owner, size_t olen,
    uint16_t type, uint16_t rclass, uint32_t ttl, const uint8_t *rdata,
    uint16_t rdlen)
{
	struct part pt = {PART_BYTES, rdata, rdlen};

	return wr_rr(w, owner, olen, type, rclass, ttl, &pt, 1);
}

int
rsv_writer_rr_name(struct rsv_writer *w, const uint8_t *owner, size_t olen,
    uint16_t type, uint16_t rclass, uint32_t ttl, const uint8_t *target,
    size_t tlen)
{
	struct part pt = {PART_NAME, target, tlen};

	return wr_rr(w, owner, olen, type, rclass, ttl, &pt, 1);
}

int
rsv_writer_opt(struct rsv_writer *w, uint16_t udp_size, uint8_t ext_rcode,
    uint8_t version, uint16_t flags, const uint8_t *rdata, uint16_t rdlen)
{
	static const uint8_t root[1] = {0};
	struct part pt = {PART_BYTES, rdata, rdlen};
	int section = w->section, rc;
	uint32_t ttl;

	ttl = (uint32_t)ext_rcode << 24 | (uint32_t)version << 16 | flags;
	w->section = 3;
	rc = wr_rr(w, root, 1, RSV_TYPE_OPT, udp_size, ttl, &pt, 1);
	if (rc != 0)
		w->section = section;
	return rc;
}

size_t
rsv_writer_finish(struct rsv_writer *w, const struct rsv_hdr *h)
{
	if (w->cap < RSV_HDR_LEN)
		return 0;
	rsv_put16(w->buf, h->id);
	rsv_put16(w->buf + 2, h->flags);
	rsv_put16(w->buf + 4, w->hdr_counts.qdcount);
	rsv_put16(w->buf + 6, w->hdr_counts.ancount);
	rsv_put16(w->buf + 8, w->hdr_counts.nscount);
	rsv_put16(w->buf + 10, w->hdr_counts.arcount);
	return w->len;
}

size_t
rsv_udp_limit(const struct rsv_query *q)
{
	if (!q->opt.present || q->opt.udp_size < 512)
		return 512;
	return q->opt.udp_size; /* a uint16_t: at most 65535 */
}

/*
 * Truncation.
 */

/* What msg_scan() learnt about a whole message. */
struct msg_info {
	struct rsv_hdr hdr; /* as received */
	struct rsv_opt opt; /* the OPT, if any */
	int has_tsig;       /* a TSIG RR is last in additional */
};

/* Validates a complete message: every question and RR, no trailing bytes,
 * at most one OPT, in the additional section and owned by the root. */
static int
msg_scan(const uint8_t *pkt, size_t len, struct msg_info *mi)
{
	uint8_t name[RSV_NAME_MAX];
	uint16_t counts[3], qt, qc, i;
	size_t off = RSV_HDR_LEN, nlen;
	struct rr rr;
	int sec;

	memset(mi, 0, sizeof(*mi));
	if (len < RSV_HDR_LEN || len > RSV_MSG_MAX)
		return -EINVAL;
	hdr_read(pkt, &mi->hdr);
	for (i = 0; i < mi->hdr.qdcount; i++)
		if (question_read(pkt, len, &off, name, &nlen, &qt, &qc) != 0)
			return -EINVAL;
	counts[0] = mi->hdr.ancount;
	counts[1] = mi->hdr.nscount;
	counts[2] = mi->hdr.arcount;
	for (sec = 1; sec <= 3; sec++) {
		for (i = 0; i < counts[sec - 1]; i++) {
			if (rr_read(pkt, len, &off, &rr) != 0 ||
			    rr_check_opt(&rr, sec, &mi->opt) != 0)
				return -EINVAL;
			mi->has_tsig = sec == 3 && i + 1 == counts[2] &&
			               rr.type == RSV_TYPE_TSIG;
		}
	}
	return off == len ? 0 : -EINVAL;
}

/* Re-encodes the questions of a scanned message; they always go in. */
static int
trunc_questions(struct rsv_writer *w, const uint8_t *pkt, size_t len,
    size_t *off, uint16_t qdcount)
{
	uint8_t name[RSV_NAME_MAX];
	size_t nlen;
	uint16_t qt, qc, i;
	int rc;

	for (i = 0; i < qdcount; i++) {
		if (question_read(pkt, len, off, name, &nlen, &qt, &qc) != 0)
			return -EINVAL;
		if ((rc = rsv_writer_question(w, name, nlen, qt, qc)) != 0)
			return rc;
	}
	return 0;
}

/*
 * Re-encodes the RRs of the three sections while they fit (miekg
 * Truncate): the first misfit ends the copy, so no later RR, of this or
 * any later section, goes in (truncation only ever drops from the end,
 * RFC 2181 §9).  The OPT is skipped here.  Sets *dropped.
 */
static int
trunc_rrs(struct rsv_writer *w, const uint8_t *pkt, size_t len, size_t *off,
    const struct rsv_hdr *h, int *dropped)
{
	uint16_t counts[3] = {h->ancount, h->nscount, h->arcount}, i;
	struct rr rr;
	int sec, rc = 0, full = 0;

	for (sec = 1; sec <= 3; sec++) {
		rsv_writer_section(w, sec);
		for (i = 0; i < counts[sec - 1]; i++) {
			if (rr_read(pkt, len, off, &rr) != 0)
				return -EINVAL;
			if (rr.type == RSV_TYPE_OPT)
				continue;
			if (!full)
				rc = wr_rr(w, rr.owner, rr.olen, rr.type,
				    rr.rclass, rr.ttl, rr.rd.part,
				    rr.rd.nparts);
			if (full || rc == -ENOSPC) {
				full = 1;
				*dropped = 1;
			} else if (rc != 0) {
				return rc;
			}
		}
	}
	return 0;
}

/*
 * The compressing, truncating path of rsv_msg_truncate(): questions
 * (always, even past limit: the reply must echo them), then RRs within
 * limit - len(OPT), then the OPT within limit.
 */
static int
trunc_encode(const uint8_t *pkt, size_t len, const struct msg_info *mi,
    size_t limit, uint8_t *out, size_t cap, size_t *outlen)
{
	const struct rsv_opt *o = &mi->opt;
	size_t off = RSV_HDR_LEN, optlen = 0;
	struct rsv_writer w;
	struct rsv_hdr h = mi->hdr;
	int dropped = 0, rc;

	if (o->present)
		optlen = RSV_OPT_LEN + o->rdlen;
	rsv_writer_init(&w, out, cap, cap);
	if (cap < RSV_HDR_LEN)
		return -ENOSPC;
	if ((rc = trunc_questions(&w, pkt, len, &off, h.qdcount)) != 0)
		return rc;
	rsv_writer_set_limit(&w, limit > optlen ? limit - optlen : 0);
	if ((rc = trunc_rrs(&w, pkt, len, &off, &h, &dropped)) != 0)
		return rc;
	rsv_writer_set_limit(&w, limit);
	if (o->present && rsv_writer_opt(&w, o->udp_size, o->ext_rcode,
	                      o->version, o->flags, o->rdata, o->rdlen) != 0)
		dropped = 1;
	if (dropped)
		h.flags |= RSV_F_TC;
	*outlen = rsv_writer_finish(&w, &h);
	return 0;
}

int
rsv_msg_check(const uint8_t *pkt, size_t len)
{
	struct msg_info mi;

	return pkt == NULL ? -EINVAL : msg_scan(pkt, len, &mi);
}

int
rsv_msg_truncate(const uint8_t *pkt, size_t len, size_t limit, uint8_t *out,
    size_t cap, size_t *outlen)
{
	struct msg_info mi;

	if (pkt == NULL || msg_scan(pkt, len, &mi) != 0)
		return -EINVAL;
	if (len <= limit) {
		if (cap < len)
			return -ENOSPC;
		memcpy(out, pkt, len);
		*outlen = len;
		return 0;
	}
	if (mi.has_tsig)
		return -EMSGSIZE;
	return trunc_encode(pkt, len, &mi, limit, out, cap, outlen);
}
