/*
 * json.c: a NameTable in the proto3 JSON mapping (SPEC §1), parsed with
 * jansson into a struct nds_nametable.  Pure: no I/O, no logging.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nds/nds.h"
#include "nds/nds_impl.h"

#define KEY_SHOWN 80 /* bytes of an entry key quoted in a message */

/* A reusable array of borrowed strings (one entry's ips or alt hosts). */
struct strv {
	const char **v;
	size_t n;
	size_t cap;
};

/*
 * A key fit for a message: control characters, quotes and backslashes
 * become '?', and a long key is cut at a UTF-8 character boundary (the
 * text may end up in a NACK, whose protobuf string must be UTF-8).
 */
static void
key_show(char *dst, size_t dstlen, const char *key)
{
	size_t n = strlen(key), i;
	int cut = n > KEY_SHOWN;

	if (cut)
		for (n = KEY_SHOWN; n > 0 && ((uint8_t)key[n] & 0xc0) == 0x80;
		     n--)
			;
	if (n + 4 > dstlen)
		n = 0;
	for (i = 0; i < n; i++) {
		uint8_t c = (uint8_t)key[i];

		dst[i] = c < 0x20 || c == 0x7f || c == '"' || c == '\\'
		             ? '?'
		             : key[i];
	}
	memcpy(dst + i, cut ? "..." : "", cut ? 4 : 1);
}

/* The error text for a field of an entry, e.g. entry "a": "ips" must... */
static int
field_err(const char *key, const char *field, const char *what, char *err,
    size_t errlen)
{
	char shown[KEY_SHOWN + 4];

	key_show(shown, sizeof(shown), key);
	if (field != NULL)
		nds_errf(err, errlen, "entry \"%s\": \"%s\" %s", shown, field,
		    what);
	else
		nds_errf(err, errlen, "entry \"%s\": %s", shown, what);
	return -EINVAL;
}

/* A string field; null or missing = "". */
static int
get_str(const json_t *obj, const char *key, const char *field, const char **out,
    char *err, size_t errlen)
{
	const json_t *v = json_object_get(obj, field);

	*out = "";
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return field_err(key, field, "must be a string", err, errlen);
	*out = json_string_value(v);
	return 0;
}

/* A repeated string field; null or missing = empty. */
static int
get_strv(const json_t *v, const char *key, const char *field, struct strv *sv,
    char *err, size_t errlen)
{
	size_t i;

	sv->n = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		goto bad;
	if (json_array_size(v) > sv->cap) {
		const char **p =
		    realloc(sv->v, json_array_size(v) * sizeof(*p));

		if (p == NULL) {
			nds_errf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		sv->v = p;
		sv->cap = json_array_size(v);
	}
	for (i = 0; i < json_array_size(v); i++) {
		const json_t *s = json_array_get(v, i);

		if (!json_is_string(s))
			goto bad;
		sv->v[sv->n++] = json_string_value(s);
	}
	return 0;
bad:
	return field_err(key, field, "must be an array of strings", err,
	    errlen);
}

/* altHosts (proto3 JSON name) or alt_hosts (proto field name), not both. */
static int
get_alt(const json_t *obj, const char *key, struct strv *sv, char *err,
    size_t errlen)
{
	const json_t *camel = json_object_get(obj, "altHosts");
	const json_t *snake = json_object_get(obj, "alt_hosts");

	if (camel != NULL && !json_is_null(camel) && snake != NULL &&
	    !json_is_null(snake))
		return field_err(key, NULL,
		    "both \"altHosts\" and \"alt_hosts\" are given", err,
		    errlen);
	if (camel != NULL && !json_is_null(camel))
		return get_strv(camel, key, "altHosts", sv, err, errlen);
	return get_strv(snake, key, "alt_hosts", sv, err, errlen);
}

/* One "host": {NameInfo} member of "table"; null = an empty NameInfo. */
static int
entry_parse(struct nds_nametable *nt, const char *key, const json_t *v,
    struct strv *ips, struct strv *alt, char *err, size_t errlen)
{
	struct nds_nameinfo in = {0};
	int rc;

	if (key[0] == '\0')
		return field_err(key, NULL, "empty key", err, errlen);
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_object(v))
			return field_err(key, NULL, "must be an object", err,
			    errlen);
		if ((rc = get_strv(json_object_get(v, "ips"), key, "ips", ips,
		         err, errlen)) != 0 ||
		    (rc = get_str(v, key, "registry", &in.registry, err,
		         errlen)) != 0 ||
		    (rc = get_str(v, key, "shortname", &in.shortname, err,
		         errlen)) != 0 ||
		    (rc = get_str(v, key, "namespace", &in.ns, err, errlen)) !=
		        0 ||
		    (rc = get_alt(v, key, alt, err, errlen)) != 0)
			return rc;
		in.ips = ips->v;
		in.nips = ips->n;
		in.alt_hosts = alt->v;
		in.nalt = alt->n;
	}
	if ((rc = nds_nametable_add(nt, key, &in)) != 0)
		nds_errf(err, errlen, "out of memory");
	return rc;
}

static int
table_parse(struct nds_nametable *nt, const json_t *root, char *err,
    size_t errlen)
{
	struct strv ips = {0}, alt = {0};
	const json_t *table = json_object_get(root, "table");
	const json_t *v;
	const char *key;
	int rc = 0;

	if (table == NULL || json_is_null(table))
		return 0;
	if (!json_is_object(table)) {
		nds_errf(err, errlen, "\"table\" must be an object");
		return -EINVAL;
	}
	/* jansson keeps the last of duplicate keys, as protobuf maps do. */
	json_object_foreach((json_t *)table, key, v)
	{
		if ((rc = entry_parse(nt, key, v, &ips, &alt, err, errlen)) !=
		    0)
			break;
	}
	free(ips.v);
	free(alt.v);
	return rc;
}

/* ---- streaming: one entry's tree at a time ------------------------------ */

/*
 * The usual shape, {"table": {host: {...}, ...}, ...}, is parsed with one
 * entry's tree at a time instead of the whole document's (a 100k-entry
 * file makes a ~100 MB tree), and from bytes that come in pieces (a file
 * read through a window).  Anything unusual (an error, "table" twice, deep
 * nesting) fails the stream and the whole tree is parsed instead, which
 * gives the same result and the same messages as before.
 */
#define STREAM_DEPTH 1000 /* deeper input goes the whole-tree way */

/* Where the stream is in the usual shape. */
enum js_state {
	JS_OPEN,        /* before the top-level '{' */
	JS_TOP_FIRST,   /* after it: a member or '}' */
	JS_TOP_MEMBER,  /* a member name, ':' and (but for "table") value */
	JS_TOP_NEXT,    /* after a member: ',' or '}' */
	JS_TABLE,       /* the value of "table": null or '{' */
	JS_ENTRY_FIRST, /* after the '{' of "table": an entry or '}' */
	JS_ENTRY,       /* an entry: host, ':' and NameInfo */
	JS_ENTRY_NEXT,  /* after an entry: ',' or '}' */
	JS_END,         /* after the top-level '}': nothing but space */
};

/* js_step() results besides 0 (a step taken). */
#define STEP_BAD (-1) /* not the usual shape: parse the whole tree */
#define STEP_MORE 1   /* the next step may need bytes past those in hand */
#define STEP_DONE 2   /* the end of the input, after the top-level '}' */

struct nds_json_stream {
	struct nds_nametable *nt; /* the entries so far */
	struct strv ips;          /* scratch for entry_parse() */
	struct strv alt;
	char *chars; /* scratch for entry_fast(): NUL-ended copies */
	size_t ccap;
	enum js_state st;
	bool table; /* "table" was seen */
};

/* Whether the brackets of buf nest no deeper than max (strings skipped). */
static bool
depth_ok(const char *buf, size_t len, size_t max)
{
	size_t depth = 0, i;
	bool str = false;

	for (i = 0; i < len; i++) {
		char c = buf[i];

		if (str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				str = false;
		} else if (c == '"') {
			str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return false;
		} else if (c == '}' || c == ']') {
			depth -= depth > 0;
		}
	}
	return true;
}

static size_t
skip_ws(const char *buf, size_t len, size_t pos)
{
	while (pos < len && (buf[pos] == ' ' || buf[pos] == '\t' ||
	                        buf[pos] == '\n' || buf[pos] == '\r'))
		pos++;
	return pos;
}

/*
 * One JSON value at buf[*pos..len) whose brackets nest no deeper than
 * max; *pos moves past it.  Unless eof, a value or an error that reaches
 * len may be cut short there (a number, a literal, a string): STEP_MORE.
 * jansson reports a UTF-8 sequence cut short at its first byte, up to 3
 * bytes before the end, hence the slack.  Waiting for more bytes when in
 * doubt is safe: the value is taken whole once it is in hand, and what
 * stays bad is bad at the end of the input.
 */
#define CUT_SLACK 4
static int
value_take(const char *buf, size_t len, size_t *pos, bool eof, size_t max,
    json_t **out)
{
	size_t n = len - *pos;
	json_error_t je;
	json_t *v;
	int rc;

	v = json_loadb(buf + *pos, n, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK,
	    &je);
	if (v == NULL)
		return !eof && (json_error_code(&je) ==
		                       json_error_premature_end_of_input ||
		                   (size_t)je.position + CUT_SLACK > n)
		           ? STEP_MORE
		           : STEP_BAD;
	if ((!eof && (size_t)je.position >= n) || /* a number may go on */
	    !depth_ok(buf + *pos, (size_t)je.position, max)) {
		rc = !eof && (size_t)je.position >= n ? STEP_MORE : STEP_BAD;
		json_decref(v);
		return rc;
	}
	*pos += (size_t)je.position;
	*out = v;
	return 0;
}

/*
 * A member name, its colon and the space after them at buf[*pos..len)
 * (*pos is past space); the name into *out (a string value to
 * json_decref()).
 */
static int
name_take(const char *buf, size_t len, size_t *pos, bool eof, json_t **out)
{
	size_t p = *pos;
	json_t *k;
	int rc;

	if (buf[p] != '"')
		return STEP_BAD;
	if ((rc = value_take(buf, len, &p, eof, STREAM_DEPTH, &k)) != 0)
		return rc;
	p = skip_ws(buf, len, p);
	if (p >= len || buf[p] != ':') {
		json_decref(k);
		return p >= len && !eof ? STEP_MORE : STEP_BAD;
	}
	*pos = skip_ws(buf, len, p + 1);
	*out = k;
	return 0;
}

/* A top-level member; the value of "table" is left to the next steps. */
static int
top_member(struct nds_json_stream *s, const char *buf, size_t len, size_t *pos,
    bool eof)
{
	size_t p = *pos;
	json_t *k, *v;
	int rc;

	if ((rc = name_take(buf, len, &p, eof, &k)) != 0)
		return rc;
	if (strcmp(json_string_value(k), "table") == 0) {
		json_decref(k);
		if (s->table)
			return STEP_BAD;
		s->table = true;
		s->st = JS_TABLE;
		*pos = p;
		return 0;
	}
	json_decref(k);
	if ((rc = value_take(buf, len, &p, eof, STREAM_DEPTH - 1, &v)) != 0)
		return rc;
	json_decref(v);
	s->st = JS_TOP_NEXT;
	*pos = p;
	return 0;
}

/* ---- the usual entry, without jansson ---- */

/*
 * A string at buf[*p..len) with nothing to decode: printable ASCII, no
 * escape.  Its bytes are [*start, *start + *slen); *p moves past it.
 * false for anything else (jansson then reads the entry).
 */
static bool
fast_str(const char *buf, size_t len, size_t *p, size_t *start, size_t *slen)
{
	size_t i = *p;

	if (i >= len || buf[i] != '"')
		return false;
	*start = ++i;
	for (; i < len; i++) {
		uint8_t c = (uint8_t)buf[i];

		if (c == '"') {
			*slen = i - *start;
			*p = i + 1;
			return true;
		}
		if (c < 0x20 || c == '\\' || c >= 0x7f)
			return false;
	}
	return false;
}

/* A name and its colon, and the space after; name in [*start, +*slen). */
static bool
fast_name(const char *buf, size_t len, size_t *p, size_t *start, size_t *slen)
{
	if (!fast_str(buf, len, p, start, slen))
		return false;
	*p = skip_ws(buf, len, *p);
	if (*p >= len || buf[*p] != ':')
		return false;
	*p = skip_ws(buf, len, *p + 1);
	return true;
}

/* One string's bytes kept for the entry: its offset in s->chars. */
static bool
fast_keep(struct nds_json_stream *s, size_t *clen, const char *b, size_t n,
    size_t *off)
{
	char *np;
	size_t cap;

	if (n + 1 > s->ccap - *clen) {
		cap =
		    s->ccap * 2 > *clen + n + 1 ? s->ccap * 2 : *clen + n + 64;
		if ((np = realloc(s->chars, cap)) == NULL)
			return false;
		s->chars = np;
		s->ccap = cap;
	}
	memcpy(s->chars + *clen, b, n);
	s->chars[*clen + n] = '\0';
	*off = *clen;
	*clen += n + 1;
	return true;
}

/* An array of strings: their offsets into sv->v (as numbers until the
 * copies stop moving). */
static bool
fast_strv(struct nds_json_stream *s, const char *buf, size_t len, size_t *p,
    size_t *clen, struct strv *sv)
{
	size_t start, n, off;
	const char **np;

	if (*p >= len || buf[*p] != '[')
		return false;
	*p = skip_ws(buf, len, *p + 1);
	if (*p < len && buf[*p] == ']') {
		(*p)++;
		return true;
	}
	for (;;) {
		if (!fast_str(buf, len, p, &start, &n) ||
		    !fast_keep(s, clen, buf + start, n, &off))
			return false;
		if (sv->n == sv->cap) {
			np = realloc(sv->v, (sv->cap * 2 + 4) * sizeof(*np));
			if (np == NULL)
				return false;
			sv->v = np;
			sv->cap = sv->cap * 2 + 4;
		}
		sv->v[sv->n++] = (const char *)(uintptr_t)off;
		*p = skip_ws(buf, len, *p);
		if (*p >= len)
			return false;
		if (buf[*p] == ']') {
			(*p)++;
			return true;
		}
		if (buf[*p] != ',')
			return false;
		*p = skip_ws(buf, len, *p + 1);
	}
}

enum {
	F_IPS = 1,
	F_REG = 2,
	F_SN = 4,
	F_NS = 8,
	F_CAMEL = 16,
	F_SNAKE = 32,
};

/* Which NameInfo field a member name is (0: another, left to jansson). */
static unsigned
fast_field(const char *n, size_t len)
{
	static const struct {
		const char *name;
		unsigned f;
	} fields[] = {{"ips", F_IPS}, {"registry", F_REG}, {"shortname", F_SN},
	    {"namespace", F_NS}, {"altHosts", F_CAMEL}, {"alt_hosts", F_SNAKE}};
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(*fields); i++)
		if (strlen(fields[i].name) == len &&
		    memcmp(fields[i].name, n, len) == 0)
			return fields[i].f;
	return 0;
}

/*
 * An entry of the usual form, read and added without jansson, which
 * costs most of a 100k-entry file's load: a non-empty key, and an object
 * of the NameInfo fields each at most once (ips and altHosts or
 * alt_hosts arrays of strings; registry, shortname, namespace strings),
 * every string plain ASCII.  1 when taken (*pos past it), 0 when anything
 * differs (nothing taken: jansson reads it as before), -1 out of memory.
 */
static int
entry_fast(struct nds_json_stream *s, const char *buf, size_t len, size_t *pos)
{
	size_t p = *pos, clen = 0, start, n, key, off[3] = {0, 0, 0}, i;
	struct nds_nameinfo in = {0};
	unsigned seen = 0, f;
	struct strv *sv;

	s->ips.n = s->alt.n = 0;
	if (!fast_name(buf, len, &p, &start, &n) || n == 0 ||
	    !fast_keep(s, &clen, buf + start, n, &key))
		return 0;
	if (p >= len || buf[p] != '{')
		return 0;
	p = skip_ws(buf, len, p + 1);
	while (p < len && (seen != 0 || buf[p] != '}')) {
		if (!fast_name(buf, len, &p, &start, &n) ||
		    (f = fast_field(buf + start, n)) == 0 || (seen & f) ||
		    ((f | seen) & (F_CAMEL | F_SNAKE)) == (F_CAMEL | F_SNAKE))
			return 0;
		seen |= f;
		if (f & (F_IPS | F_CAMEL | F_SNAKE)) {
			sv = f == F_IPS ? &s->ips : &s->alt;
			if (!fast_strv(s, buf, len, &p, &clen, sv))
				return 0;
		} else {
			i = f == F_REG ? 0 : f == F_SN ? 1 : 2;
			if (!fast_str(buf, len, &p, &start, &n) ||
			    !fast_keep(s, &clen, buf + start, n, &off[i]))
				return 0;
		}
		p = skip_ws(buf, len, p);
		if (p < len && buf[p] == '}')
			break;
		if (p >= len || buf[p] != ',')
			return 0; /* cut, or not JSON: jansson says */
		p = skip_ws(buf, len, p + 1);
	}
	if (p >= len)
		return 0;
	/* The copies moved no more: offsets become pointers. */
	for (i = 0; i < s->ips.n; i++)
		s->ips.v[i] = s->chars + (uintptr_t)s->ips.v[i];
	for (i = 0; i < s->alt.n; i++)
		s->alt.v[i] = s->chars + (uintptr_t)s->alt.v[i];
	in.ips = s->ips.v;
	in.nips = s->ips.n;
	in.alt_hosts = s->alt.v;
	in.nalt = s->alt.n;
	in.registry = (seen & F_REG) ? s->chars + off[0] : "";
	in.shortname = (seen & F_SN) ? s->chars + off[1] : "";
	in.ns = (seen & F_NS) ? s->chars + off[2] : "";
	if (nds_nametable_add(s->nt, s->chars + key, &in) != 0)
		return -1;
	*pos = p + 1;
	return 1;
}

/* An entry of "table", added to the table. */
static int
entry_take(struct nds_json_stream *s, const char *buf, size_t len, size_t *pos,
    bool eof)
{
	size_t p = *pos;
	json_t *k, *v;
	int rc;

	if ((rc = entry_fast(s, buf, len, pos)) != 0) {
		if (rc < 0)
			return STEP_BAD;
		s->st = JS_ENTRY_NEXT;
		return 0;
	}

	if ((rc = name_take(buf, len, &p, eof, &k)) != 0)
		return rc;
	if ((rc = value_take(buf, len, &p, eof, STREAM_DEPTH - 2, &v)) == 0) {
		if (entry_parse(s->nt, json_string_value(k), v, &s->ips,
		        &s->alt, NULL, 0) != 0)
			rc = STEP_BAD;
		json_decref(v);
	}
	json_decref(k);
	if (rc == 0) {
		s->st = JS_ENTRY_NEXT;
		*pos = p;
	}
	return rc;
}

/* The value of "table": null (an empty table) or the '{' of one. */
static int
table_open(struct nds_json_stream *s, const char *buf, size_t len, size_t *pos,
    bool eof)
{
	json_t *v;
	bool null;
	int rc;

	if (buf[*pos] == '{') {
		(*pos)++;
		s->st = JS_ENTRY_FIRST;
		return 0;
	}
	if (buf[*pos] != 'n')
		return STEP_BAD;
	if ((rc = value_take(buf, len, pos, eof, STREAM_DEPTH, &v)) != 0)
		return rc;
	null = json_is_null(v);
	json_decref(v);
	s->st = JS_TOP_NEXT;
	return null ? 0 : STEP_BAD;
}

/* The punctuation want at buf[*pos] (c), which takes the stream to st. */
static int
punct_take(struct nds_json_stream *s, size_t *pos, char c, char want,
    enum js_state st)
{
	if (c != want)
		return STEP_BAD;
	(*pos)++;
	s->st = st;
	return 0;
}

/* One token, member or entry at buf[*pos..len); *pos moves past it. */
static int
js_step(struct nds_json_stream *s, const char *buf, size_t len, bool eof,
    size_t *pos)
{
	size_t p = *pos = skip_ws(buf, len, *pos);
	char c;

	if (p == len)
		return !eof              ? STEP_MORE
		       : s->st == JS_END ? STEP_DONE
		                         : STEP_BAD;
	c = buf[p];
	switch (s->st) {
	case JS_OPEN:
		return punct_take(s, pos, c, '{', JS_TOP_FIRST);
	case JS_TOP_FIRST:
		if (c == '}')
			return punct_take(s, pos, c, '}', JS_END);
		s->st = JS_TOP_MEMBER;
		return 0;
	case JS_TOP_MEMBER:
		return top_member(s, buf, len, pos, eof);
	case JS_TOP_NEXT:
		if (c == ',')
			return punct_take(s, pos, c, ',', JS_TOP_MEMBER);
		return punct_take(s, pos, c, '}', JS_END);
	case JS_TABLE:
		return table_open(s, buf, len, pos, eof);
	case JS_ENTRY_FIRST:
		if (c == '}')
			return punct_take(s, pos, c, '}', JS_TOP_NEXT);
		s->st = JS_ENTRY;
		return 0;
	case JS_ENTRY:
		return entry_take(s, buf, len, pos, eof);
	case JS_ENTRY_NEXT:
		if (c == ',')
			return punct_take(s, pos, c, ',', JS_ENTRY);
		return punct_take(s, pos, c, '}', JS_TOP_NEXT);
	default: /* JS_END: something after the document */
		return STEP_BAD;
	}
}

int
nds_json_stream_create(struct nds_json_stream **out)
{
	struct nds_json_stream *s;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	if (nds_nametable_create(&s->nt) != 0) {
		free(s);
		return -ENOMEM;
	}
	s->st = JS_OPEN;
	*out = s;
	return 0;
}

int
nds_json_stream_feed(struct nds_json_stream *s, const char *buf, size_t len,
    int eof, size_t *used)
{
	size_t pos = 0;
	int rc;

	/*
	 * A NUL byte is never JSON, but jansson drops one that follows a
	 * literal or a number, and then counts the position of the value
	 * one byte short, which would put the stream out of step: refuse it
	 * here, and the whole-document parse gives the message.
	 */
	*used = 0;
	if (memchr(buf, '\0', len) != NULL)
		return -1;
	while ((rc = js_step(s, buf, len, eof != 0, &pos)) == 0)
		;
	*used = pos;
	return rc == STEP_BAD ? -1 : 0;
}

struct nds_nametable *
nds_json_stream_finish(struct nds_json_stream *s)
{
	struct nds_nametable *nt = s->nt;

	s->nt = NULL;
	return nt;
}

void
nds_json_stream_destroy(struct nds_json_stream *s)
{
	if (s == NULL)
		return;
	nds_nametable_destroy(s->nt);
	free(s->ips.v);
	free(s->alt.v);
	free(s->chars);
	free(s);
}

int
nds_json_parse(const char *buf, size_t len, struct nds_nametable **out,
    char *err, size_t errlen)
{
	struct nds_json_stream *s = NULL;
	size_t used = 0;
	int rc;

	*out = NULL;
	if (nds_json_stream_create(&s) != 0) {
		nds_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = nds_json_stream_feed(s, buf, len, 1, &used);
	if (rc == 0)
		*out = nds_json_stream_finish(s);
	nds_json_stream_destroy(s);
	if (rc == 0)
		return 0;
	return nds_json_parse_tree(buf, len, out, err, errlen);
}

int
nds_json_parse_tree(const char *buf, size_t len, struct nds_nametable **out,
    char *err, size_t errlen)
{
	struct nds_nametable *nt = NULL;
	const char *nul;
	json_error_t je;
	json_t *root;
	int rc;

	*out = NULL;
	if ((nul = memchr(buf, '\0', len)) != NULL) {
		const char *p, *bol = buf;
		int line = 1;

		for (p = buf; p < nul; p++)
			if (*p == '\n') {
				line++;
				bol = p + 1;
			}
		nds_errf(err, errlen,
		    "JSON error at line %d, column %d: NUL byte", line,
		    (int)(nul - bol) + 1);
		return -EINVAL;
	}
	/* No JSON_DECODE_ANY: the top level must be an object or array. */
	if ((root = json_loadb(buf, len, 0, &je)) == NULL) {
		nds_errf(err, errlen, "JSON error at line %d, column %d: %s",
		    je.line, je.column, je.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		nds_errf(err, errlen, "JSON top level must be an object");
		rc = -EINVAL;
		goto out;
	}
	if ((rc = nds_nametable_create(&nt)) != 0) {
		nds_errf(err, errlen, "out of memory");
		goto out;
	}
	if ((rc = table_parse(nt, root, err, errlen)) != 0)
		goto out;
	*out = nt;
	nt = NULL;
out:
	nds_nametable_destroy(nt);
	json_decref(root);
	return rc;
}
