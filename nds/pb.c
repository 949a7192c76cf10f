/*
 * pb.c: a NameTable in protobuf binary form (SPEC §1), decoded and encoded
 * by hand.  The decoder walks the input with a bounds-checked varint and
 * length-delimited reader and builds no message tree: a 100k-service table
 * (~10 MB) costs one copy of each entry's strings into a reused scratch
 * buffer plus nds_nametable_add().  Pure: no I/O, no logging.
 *
 *   NameTable  1: entry (map<string, NameInfo>, repeated)
 *   entry      1: key   2: NameInfo
 *   NameInfo   1: ips (repeated)   2: registry   3: shortname
 *              4: namespace   5: alt_hosts (repeated)
 *
 * Every field above is length-delimited (wire type 2).  As in protobuf,
 * any other field, or one of these with another wire type, is skipped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nds/nds.h"
#include "nds/nds_impl.h"

enum {
	WT_VARINT = 0,
	WT_I64 = 1,
	WT_LEN = 2,
	WT_SGROUP = 3,
	WT_EGROUP = 4,
	WT_I32 = 5,
};

#define VARINT_MAX 10         /* bytes in the longest (64-bit) varint */
#define FIELD_MAX 0x1fffffffu /* largest protobuf field number */
#define TAG(field) ((uint8_t)((field) << 3 | WT_LEN)) /* fields 1..15 */

/* A growable array of borrowed strings (one entry's ips or alt hosts). */
struct strv {
	const char **v;
	size_t n;
	size_t cap;
};

/* Decoder state. */
struct pb_dec {
	const uint8_t *buf; /* the input in hand; positions count from here */
	size_t base;        /* input offset of buf[0], for messages */
	char *err;          /* caller's message buffer, may be NULL */
	size_t errlen;
	char *chars; /* NUL-terminated copies of the entry's strings */
	size_t clen; /* bytes of chars used */
	size_t ccap; /* bytes of chars allocated */
	struct strv ips;
	struct strv alt;
	const char *key; /* the entry's fields so far (the last one wins) */
	const char *registry;
	const char *shortname;
	const char *ns;
};

static int dec_err(struct pb_dec *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Formats the reason into the caller's buffer; returns -EINVAL. */
static int
dec_err(struct pb_dec *d, const char *fmt, ...)
{
	va_list ap;

	if (d->err != NULL && d->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(d->err, d->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int
dec_oom(struct pb_dec *d)
{
	dec_err(d, "out of memory");
	return -ENOMEM;
}

/* ---- reader ------------------------------------------------------------ */

/* A varint at buf[*pos..end); *pos moves past it. */
static int
rd_varint(struct pb_dec *d, size_t *pos, size_t end, uint64_t *out)
{
	size_t at = *pos, i;
	uint64_t v = 0;
	uint8_t b;

	/* One byte (tags of fields 1..15, short lengths) is the common case. */
	if (at < end && d->buf[at] < 0x80) {
		*out = d->buf[at];
		*pos = at + 1;
		return 0;
	}
	for (i = 0; i < VARINT_MAX; i++) {
		if (end - at <= i)
			return dec_err(d, "truncated varint at byte %zu",
			    d->base + at);
		b = d->buf[at + i];
		if (i == VARINT_MAX - 1 && (b & 0x80) != 0)
			return dec_err(d,
			    "varint longer than %d bytes at byte %zu",
			    VARINT_MAX, d->base + at);
		if (i == VARINT_MAX - 1 && b > 1)
			return dec_err(d,
			    "varint overflows 64 bits at byte %zu",
			    d->base + at);
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0)
			break;
	}
	*pos = at + i + 1;
	*out = v;
	return 0;
}

/* A field tag of message msg: field number 1..FIELD_MAX, no groups. */
static int
rd_tag(struct pb_dec *d, const char *msg, size_t *pos, size_t end,
    uint32_t *field, unsigned *wt)
{
	size_t at = *pos;
	uint64_t v = 0;
	int rc;

	/* One-byte tags (fields 1..15) are the common case. */
	if ((rc = rd_varint(d, pos, end, &v)) != 0)
		return rc;
	if ((v >> 3) > FIELD_MAX)
		return dec_err(d,
		    "%s: field number %" PRIu64 " too large at byte %zu", msg,
		    v >> 3, d->base + at);
	if ((v >> 3) == 0)
		return dec_err(d, "%s: field number 0 at byte %zu", msg,
		    d->base + at);
	*field = (uint32_t)(v >> 3);
	*wt = (unsigned)(v & 7);
	if (*wt == WT_SGROUP || *wt == WT_EGROUP)
		return dec_err(d,
		    "%s field %" PRIu32
		    ": group (wire type %u) not supported at byte %zu",
		    msg, *field, *wt, d->base + at);
	if (*wt > WT_I32)
		return dec_err(d,
		    "%s field %" PRIu32 ": invalid wire type %u at byte %zu",
		    msg, *field, *wt, d->base + at);
	return 0;
}

/* The length of a length-delimited field, checked against the bytes left. */
static int
rd_len(struct pb_dec *d, const char *msg, uint32_t field, size_t *pos,
    size_t end, size_t *len)
{
	size_t at = *pos;
	uint64_t v = 0;
	int rc;

	if ((rc = rd_varint(d, pos, end, &v)) != 0)
		return rc;
	if (v > end - *pos)
		return dec_err(d,
		    "%s field %" PRIu32 ": length %" PRIu64
		    " beyond end at byte %zu",
		    msg, field, v, d->base + at);
	*len = (size_t)v;
	return 0;
}

/* Skips the value of a field nobody asked for. */
static int
rd_skip(struct pb_dec *d, const char *msg, uint32_t field, unsigned wt,
    size_t *pos, size_t end)
{
	size_t at = *pos, len = 0;
	uint64_t v = 0;
	int rc;

	switch (wt) {
	case WT_VARINT:
		return rd_varint(d, pos, end, &v);
	case WT_I64:
	case WT_I32:
		len = wt == WT_I64 ? 8 : 4;
		if (end - at < len)
			return dec_err(d,
			    "%s field %" PRIu32
			    ": truncated fixed%zu at byte %zu",
			    msg, field, len * 8, d->base + at);
		*pos = at + len;
		return 0;
	default: /* WT_LEN: rd_tag() let no other wire type through */
		if ((rc = rd_len(d, msg, field, pos, end, &len)) != 0)
			return rc;
		*pos += len;
		return 0;
	}
}

/* ---- decoder ----------------------------------------------------------- */

/*
 * Copies the string buf[pos..pos+len) into the entry's scratch space.
 * entry_parse() sized it to the entry, which always suffices: a string of
 * n bytes takes at least n + 2 bytes on the wire and n + 1 here.
 */
static int
str_take(struct pb_dec *d, const char *msg, uint32_t field, size_t pos,
    size_t len, const char **out)
{
	const uint8_t *nul = memchr(d->buf + pos, '\0', len);
	char *s;

	if (nul != NULL)
		return dec_err(d,
		    "%s field %" PRIu32 ": NUL in string at byte %zu", msg,
		    field, d->base + (size_t)(nul - d->buf));
	if (len + 1 > d->ccap - d->clen)
		return dec_err(d,
		    "%s field %" PRIu32
		    ": internal error: scratch space at byte %zu",
		    msg, field, d->base + pos);
	s = d->chars + d->clen;
	memcpy(s, d->buf + pos, len);
	s[len] = '\0';
	d->clen += len + 1;
	*out = s;
	return 0;
}

static int
strv_push(struct strv *sv, const char *s)
{
	const char **v;
	size_t ncap;

	if (sv->n == sv->cap) {
		ncap = sv->cap != 0 ? sv->cap * 2 : 16;
		if (ncap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		if ((v = realloc(sv->v, ncap * sizeof(*v))) == NULL)
			return -ENOMEM;
		sv->v = v;
		sv->cap = ncap;
	}
	sv->v[sv->n++] = s;
	return 0;
}

/* A NameInfo at buf[pos..end), merged into the entry's fields. */
static int
info_parse(struct pb_dec *d, size_t pos, size_t end)
{
	static const char msg[] = "NameInfo";
	const char *s;
	uint32_t field = 0;
	unsigned wt = 0;
	size_t len = 0;
	int rc;

	while (pos < end) {
		if ((rc = rd_tag(d, msg, &pos, end, &field, &wt)) != 0)
			return rc;
		if (wt != WT_LEN || field > 5) {
			if ((rc = rd_skip(d, msg, field, wt, &pos, end)) != 0)
				return rc;
			continue;
		}
		if ((rc = rd_len(d, msg, field, &pos, end, &len)) != 0 ||
		    (rc = str_take(d, msg, field, pos, len, &s)) != 0)
			return rc;
		pos += len;
		switch (field) {
		case 1:
			rc = strv_push(&d->ips, s);
			break;
		case 2:
			d->registry = s;
			break;
		case 3:
			d->shortname = s;
			break;
		case 4:
			d->ns = s;
			break;
		default:
			rc = strv_push(&d->alt, s);
			break;
		}
		if (rc != 0)
			return dec_oom(d);
	}
	return 0;
}

/* One map entry at buf[pos..end), added to nt. */
static int
entry_parse(struct pb_dec *d, struct nds_nametable *nt, size_t pos, size_t end)
{
	static const char msg[] = "table entry";
	struct nds_nameinfo in = {0};
	size_t at = pos, len = 0, ncap;
	uint32_t field = 0;
	unsigned wt = 0;
	int rc;

	if (end - pos > d->ccap) {
		/* Doubling, so growing entries cost no more than the input. */
		ncap = d->ccap < SIZE_MAX / 2 && d->ccap * 2 > end - pos
		           ? d->ccap * 2
		           : end - pos;
		free(d->chars);
		d->ccap = 0;
		if ((d->chars = malloc(ncap)) == NULL)
			return dec_oom(d);
		d->ccap = ncap;
	}
	d->clen = 0;
	d->ips.n = d->alt.n = 0;
	d->key = d->registry = d->shortname = d->ns = NULL;
	while (pos < end) {
		if ((rc = rd_tag(d, msg, &pos, end, &field, &wt)) != 0)
			return rc;
		if (wt != WT_LEN || (field != 1 && field != 2)) {
			if ((rc = rd_skip(d, msg, field, wt, &pos, end)) != 0)
				return rc;
			continue;
		}
		if ((rc = rd_len(d, msg, field, &pos, end, &len)) != 0)
			return rc;
		if (field == 1 &&
		    (rc = str_take(d, msg, field, pos, len, &d->key)) == 0)
			nds_nametable_prefetch(nt, d->key);
		else if (field != 1)
			rc = info_parse(d, pos, pos + len);
		if (rc != 0)
			return rc;
		pos += len;
	}
	if (d->key == NULL || d->key[0] == '\0')
		return dec_err(d, "%s at byte %zu: empty key", msg,
		    d->base + at);
	in.ips = d->ips.v;
	in.nips = d->ips.n;
	in.registry = d->registry;
	in.shortname = d->shortname;
	in.ns = d->ns;
	in.alt_hosts = d->alt.v;
	in.nalt = d->alt.n;
	if ((rc = nds_nametable_add(nt, d->key, &in)) != 0)
		return dec_oom(d);
	return 0;
}

/* The number of table entries at the top level of buf[0..len) (at most
 * max), counted without a word: the decoder reports what is wrong when it
 * gets there. */
static size_t
entries_count(const uint8_t *buf, size_t len, size_t max)
{
	struct pb_dec d = {.buf = buf};
	size_t pos = 0, n = 0, elen = 0;
	uint32_t field = 0;
	unsigned wt = 0;

	while (pos < len && n < max) {
		if (rd_tag(&d, "", &pos, len, &field, &wt) != 0)
			break;
		if (field != 1 || wt != WT_LEN) {
			if (rd_skip(&d, "", field, wt, &pos, len) != 0)
				break;
			continue;
		}
		if (rd_len(&d, "", field, &pos, len, &elen) != 0)
			break;
		pos += elen;
		n++;
	}
	return n;
}

/* A decode in progress: the input comes in pieces (nds_pb_stream_feed()). */
struct nds_pb_stream {
	struct pb_dec d;
	struct nds_nametable *nt;
	size_t size;  /* the whole input's size if known, else 0 */
	int reserved; /* the table was sized from the first piece */
};

/*
 * A hint, capped so that a flood of tiny entries reserves no more than
 * the input's size; without it the table grows as it goes.  The count of
 * a first piece short of the whole input is scaled up to the input's size
 * (a guess: entries tend to be alike), with 1/8 to spare: a guess short
 * by a single entry would double the entries and rehash the index when
 * the last bytes come (~3 ms for 100k keys, with queries waiting), and
 * the spare entries are given back once the table is built.
 */
static void
table_reserve(struct nds_pb_stream *s, const uint8_t *buf, size_t len, int eof)
{
	uint64_t n = entries_count(buf, len, len / 64);

	if (!eof && len > 0 && s->size > len) {
		n = n * s->size / len;
		n += n / 8;
		if (n > s->size / 64)
			n = s->size / 64;
	}
	(void)nds_nametable_reserve(s->nt, (size_t)n);
	s->reserved = 1;
}

/*
 * One top-level field at buf[*pos..end): a table entry is added to the
 * table, anything else skipped, and *pos moves past it.  Unless eof (end
 * is the end of the input), a field that may go on past end is left for
 * later: 1, *pos unchanged.
 */
static int
top_parse(struct pb_dec *d, struct nds_nametable *nt, size_t *pos, size_t end,
    int eof)
{
	static const char msg[] = "NameTable";
	size_t p = *pos, q, elen = 0;
	uint32_t field = 0;
	unsigned wt = 0;
	uint64_t v = 0;
	int rc;

	/* A tag and a varint or length take at most 2 * VARINT_MAX bytes:
	 * with that many in hand, what is wrong with them stays wrong. */
	if (!eof && end - p < 2 * VARINT_MAX)
		return 1;
	if ((rc = rd_tag(d, msg, &p, end, &field, &wt)) != 0)
		return rc;
	if (!eof && wt == WT_LEN) {
		q = p;
		if ((rc = rd_varint(d, &q, end, &v)) != 0)
			return rc;
		if (v > end - q)
			return 1;
	}
	if (field != 1 || wt != WT_LEN) {
		rc = rd_skip(d, msg, field, wt, &p, end);
	} else if ((rc = rd_len(d, msg, field, &p, end, &elen)) == 0 &&
	           (rc = entry_parse(d, nt, p, p + elen)) == 0) {
		p += elen;
	}
	if (rc == 0)
		*pos = p;
	return rc;
}

int
nds_pb_stream_create(size_t size, struct nds_pb_stream **out)
{
	struct nds_pb_stream *s;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	if (nds_nametable_create(&s->nt) != 0) {
		free(s);
		return -ENOMEM;
	}
	s->size = size;
	*out = s;
	return 0;
}

int
nds_pb_stream_feed(struct nds_pb_stream *s, const uint8_t *buf, size_t len,
    int eof, size_t *used, char *err, size_t errlen)
{
	size_t pos = 0;
	int rc = 0;

	s->d.buf = buf;
	s->d.err = err;
	s->d.errlen = errlen;
	if (!s->reserved)
		table_reserve(s, buf, len, eof);
	while (pos < len && (rc = top_parse(&s->d, s->nt, &pos, len, eof)) == 0)
		;
	s->d.base += pos;
	*used = pos;
	return rc < 0 ? rc : 0;
}

struct nds_nametable *
nds_pb_stream_finish(struct nds_pb_stream *s)
{
	struct nds_nametable *nt = s->nt;

	s->nt = NULL;
	return nt;
}

void
nds_pb_stream_destroy(struct nds_pb_stream *s)
{
	if (s == NULL)
		return;
	nds_nametable_destroy(s->nt);
	free(s->d.chars);
	free(s->d.ips.v);
	free(s->d.alt.v);
	free(s);
}

int
nds_pb_parse(const uint8_t *buf, size_t len, struct nds_nametable **out,
    char *err, size_t errlen)
{
	struct nds_pb_stream *s = NULL;
	size_t used = 0;
	int rc;

	*out = NULL;
	if (buf == NULL && len > 0) {
		nds_errf(err, errlen, "no input");
		return -EINVAL;
	}
	if ((rc = nds_pb_stream_create(len, &s)) != 0) {
		nds_errf(err, errlen, "out of memory");
		return rc;
	}
	if ((rc = nds_pb_stream_feed(s, buf, len, 1, &used, err, errlen)) == 0)
		*out = nds_pb_stream_finish(s);
	nds_pb_stream_destroy(s);
	return rc;
}

/* ---- encoder ----------------------------------------------------------- */

/* One entry to encode: its key and index; entries are sorted by key. */
struct pb_ent {
	const char *key; /* klen bytes, not NUL ended */
	size_t klen;
	size_t idx;  /* in the NameTable */
	size_t vlen; /* encoded NameInfo bytes */
};

/* Bytewise, as strcmp() orders the keys. */
static int
ent_cmp(const void *a, const void *b)
{
	const struct pb_ent *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);

	return c != 0 ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static size_t
varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* *acc += a length-delimited field of n bytes (one-byte tag). */
static int
len_add(size_t *acc, size_t n)
{
	size_t f = 1 + varint_len(n);

	if (n > SIZE_MAX - f || n + f > SIZE_MAX - *acc)
		return -ENOMEM;
	*acc += n + f;
	return 0;
}

/* *acc += a string field; an empty one is omitted unless repeated. */
static int
str_add(size_t *acc, const char *s, int repeated)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return n == 0 && !repeated ? 0 : len_add(acc, n);
}

static int
info_size(const struct nds_nameinfo *in, size_t *out)
{
	size_t acc = 0, i;

	for (i = 0; i < in->nips; i++)
		if (str_add(&acc, in->ips[i], 1) != 0)
			return -ENOMEM;
	if (str_add(&acc, in->registry, 0) != 0 ||
	    str_add(&acc, in->shortname, 0) != 0 ||
	    str_add(&acc, in->ns, 0) != 0)
		return -ENOMEM;
	for (i = 0; i < in->nalt; i++)
		if (str_add(&acc, in->alt_hosts[i], 1) != 0)
			return -ENOMEM;
	*out = acc;
	return 0;
}

static uint8_t *
put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *
put_str(uint8_t *p, uint8_t tag, const char *s, int repeated)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 && !repeated)
		return p;
	*p++ = tag;
	p = put_varint(p, n);
	memcpy(p, s != NULL ? s : "", n);
	return p + n;
}

/* The entry being sized or written (nds_nametable_get() callbacks). */
struct pb_enc {
	struct pb_ent *e;
	size_t *total; /* sizing: the output so far */
	uint8_t *p;    /* writing: where the entry goes */
};

static int
ent_size(const char *key, const struct nds_nameinfo *in, void *arg)
{
	struct pb_enc *x = arg;
	size_t elen = 0;

	if (info_size(in, &x->e->vlen) != 0 || str_add(&elen, key, 1) != 0 ||
	    len_add(&elen, x->e->vlen) != 0 || len_add(x->total, elen) != 0)
		return -ENOMEM;
	return 0;
}

static int
ent_put(const char *key, const struct nds_nameinfo *in, void *arg)
{
	struct pb_enc *x = arg;
	uint8_t *p = x->p;
	size_t i, elen = 0;

	(void)str_add(&elen, key, 1);
	(void)len_add(&elen, x->e->vlen);
	*p++ = TAG(1);
	p = put_varint(p, elen);
	p = put_str(p, TAG(1), key, 1);
	*p++ = TAG(2);
	p = put_varint(p, x->e->vlen);
	for (i = 0; i < in->nips; i++)
		p = put_str(p, TAG(1), in->ips[i], 1);
	p = put_str(p, TAG(2), in->registry, 0);
	p = put_str(p, TAG(3), in->shortname, 0);
	p = put_str(p, TAG(4), in->ns, 0);
	for (i = 0; i < in->nalt; i++)
		p = put_str(p, TAG(5), in->alt_hosts[i], 1);
	x->p = p;
	return 0;
}

int
nds_pb_build(const struct nds_nametable *nt, uint8_t **out, size_t *outlen)
{
	size_t n = nds_nametable_count(nt), total = 0, i;
	struct pb_ent *v = NULL;
	struct pb_enc x = {NULL, &total, NULL};
	uint8_t *buf = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	*outlen = 0;
	if (n > SIZE_MAX / sizeof(*v) ||
	    (v = malloc((n != 0 ? n : 1) * sizeof(*v))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		v[i].key = nds_nametable_key(nt, i, &v[i].klen);
		v[i].idx = i;
	}
	qsort(v, n, sizeof(*v), ent_cmp);
	for (i = 0; i < n; i++) {
		x.e = &v[i];
		if ((rc = nds_nametable_get(nt, v[i].idx, ent_size, &x)) != 0)
			goto out;
	}
	rc = -ENOMEM;
	if ((buf = malloc(total != 0 ? total : 1)) == NULL)
		goto out;
	x.p = buf;
	for (i = 0; i < n; i++) {
		x.e = &v[i];
		if ((rc = nds_nametable_get(nt, v[i].idx, ent_put, &x)) != 0)
			goto out;
	}
	if ((size_t)(x.p - buf) != total) {
		rc = -EINVAL; /* a size pass bug; never hand out bad bytes */
		goto out;
	}
	*out = buf;
	*outlen = total;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	free(v);
	return rc;
}
