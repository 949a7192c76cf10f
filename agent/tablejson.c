/*
 * tablejson.c: the table as JSON for /debug/table, --dump-table and
 * /debug/ndsz (SPEC §6).
 *
 * The text is written straight into one growing buffer rather than built
 * as a jansson tree: a 100k-service table has ~700k records, and a tree of
 * them would cost several hundred bytes each.  Strings are escaped here,
 * and bytes that are not UTF-8 (a protobuf table's keys are not checked)
 * become U+FFFD, so the output always parses.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "nds/nds.h"

/* An output buffer; once an allocation fails it stays failed. */
struct jbuf {
	char *p;    /* len bytes of text, NUL kept after them */
	size_t len; /* bytes written */
	size_t cap; /* bytes allocated */
	int oom;    /* an allocation failed: the text is incomplete */
};

/* Room for n more bytes and the NUL after them. */
static int
jb_reserve(struct jbuf *b, size_t n)
{
	size_t need = b->len + n + 1, ncap = b->cap != 0 ? b->cap : 4096;
	char *np;

	/* Both below SIZE_MAX / 8: need and its doubling cannot wrap. */
	if (b->oom || n > SIZE_MAX / 8 || b->len > SIZE_MAX / 8) {
		b->oom = 1;
		return -ENOMEM;
	}
	if (need <= b->cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if ((np = realloc(b->p, ncap)) == NULL) {
		b->oom = 1;
		return -ENOMEM;
	}
	b->p = np;
	b->cap = ncap;
	return 0;
}

static void
jb_put(struct jbuf *b, const char *s, size_t n)
{
	if (jb_reserve(b, n) != 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
jb_lit(struct jbuf *b, const char *s)
{
	jb_put(b, s, strlen(s));
}

static void
jb_uint(struct jbuf *b, unsigned long long v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", v);

	if (n > 0 && (size_t)n < sizeof(num))
		jb_put(b, num, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629), or 0. */
static size_t
utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL */
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* A JSON string: quotes, escapes, U+FFFD for bytes that are not UTF-8. */
static void
jb_str(struct jbuf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	char esc[8];
	size_t run, n;

	jb_put(b, "\"", 1);
	while (*s != '\0') {
		for (run = 0; s[run] >= 0x20 && s[run] < 0x80 &&
		              s[run] != '"' && s[run] != '\\';
		     run++)
			;
		jb_put(b, (const char *)s, run);
		s += run;
		if (*s == '\0')
			break;
		if (*s >= 0x80) {
			if ((n = utf8_len(s)) == 0) {
				jb_lit(b, "\\ufffd");
				n = 1;
			} else
				jb_put(b, (const char *)s, n);
			s += n;
			continue;
		}
		if (*s == '"' || *s == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*s;
			jb_put(b, esc, 2);
		} else {
			snprintf(esc, sizeof(esc), "\\u%04x", *s);
			jb_put(b, esc, 6);
		}
		s++;
	}
	jb_put(b, "\"", 1);
}

/* Hands the text over, or frees it and returns NULL after a failure. */
static char *
jb_finish(struct jbuf *b)
{
	char *p;

	if (b->oom || b->p == NULL) {
		free(b->p);
		return NULL;
	}
	/* The estimate's slack back; failing to shrink is harmless. */
	if (b->cap - b->len > 65536 && (p = realloc(b->p, b->len + 1)) != NULL)
		b->p = p;
	return b->p;
}

/* ---- /debug/table ------------------------------------------------------ */

static int
table_record(const struct nds_record *r, void *arg)
{
	struct jbuf *b = arg;

	if (b->oom)
		return -ENOMEM;
	jb_lit(b, b->p[b->len - 1] == '[' ? "\n{\"name\":" : ",\n{\"name\":");
	jb_str(b, r->name);
	jb_lit(b, ",\"type\":");
	jb_str(b, r->type);
	jb_lit(b, ",\"ttl\":");
	jb_uint(b, r->ttl);
	jb_lit(b, ",\"data\":");
	jb_str(b, r->data);
	jb_lit(b, ",\"origin\":");
	jb_str(b, r->origin);
	jb_lit(b, "}");
	return b->oom ? -ENOMEM : 0;
}

char *
agent_table_json(const struct nds_table *t, const struct agent_table_meta *m,
    const char *filter)
{
	struct jbuf b = {0};
	char when[32];
	struct tm tm;

	jb_lit(&b, "{\"version\":");
	jb_str(&b, m != NULL && m->version != NULL ? m->version : "");
	jb_lit(&b, ",\"updated\":");
	if (m != NULL && m->updated != 0 &&
	    gmtime_r(&m->updated, &tm) != NULL &&
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) != 0)
		jb_str(&b, when);
	else
		jb_lit(&b, "null");
	jb_lit(&b, ",\"entries\":");
	jb_uint(&b, m != NULL ? m->entries : 0);
	jb_lit(&b, ",\"records\":[");
	/* ~150 bytes a record: one allocation instead of a dozen. */
	if (t != NULL && filter == NULL)
		jb_reserve(&b, nds_table_names(t) * 160);
	if (t != NULL && !b.oom &&
	    nds_table_foreach_record(t, filter, table_record, &b) != 0)
		b.oom = 1;
	jb_lit(&b, b.p != NULL && b.p[b.len - 1] == '[' ? "]}\n" : "\n]}\n");
	return jb_finish(&b);
}

/* ---- /debug/ndsz ------------------------------------------------------- */

/* One NameTable entry: its key (owned by the table) and index. */
struct ndsz_ent {
	const char *key; /* klen bytes, not NUL ended */
	size_t klen;
	size_t idx;
};

/* State of the merge of the NameTable keys and the generated names. */
struct ndsz {
	struct jbuf b;
	const struct nds_nametable *nt; /* the table's NameTable */
	struct ndsz_ent *ents;          /* NameTable entries, sorted by key */
	size_t n, next;                 /* entries; the next one to write */
	size_t cap;                     /* entries allocated */
	char name[256]; /* generated name being written, or "" */
	int skip;       /* it is also a key: the key's entry wins */
};

/* strcmp() order of entry e's key and name (NUL ended). */
static int
ndsz_keycmp(const struct ndsz_ent *e, const char *name, size_t nlen)
{
	int c = memcmp(e->key, name, e->klen < nlen ? e->klen : nlen);

	return c != 0 ? c : (e->klen > nlen) - (e->klen < nlen);
}

static int
ndsz_cmp(const void *a, const void *b)
{
	const struct ndsz_ent *y = b;

	return ndsz_keycmp(a, y->key, y->klen);
}

static void
ndsz_strv(struct jbuf *b, const char *field, const char *const *v, size_t n)
{
	size_t i;

	jb_lit(b, field);
	for (i = 0; i < n; i++) {
		jb_lit(b, i == 0 ? "[" : ",");
		jb_str(b, v[i]);
	}
	jb_lit(b, "]");
}

/* A member name: "\n" before each, "," between. */
static void
ndsz_key(struct ndsz *z, const char *key)
{
	if (z->b.oom)
		return;
	jb_lit(&z->b, z->b.p[z->b.len - 1] == '{' ? "\n" : ",\n");
	jb_str(&z->b, key);
	jb_lit(&z->b, ":{");
}

/* One NameTable entry in the proto3 JSON mapping: empty fields left out
 * (an nds_nametable_get() callback). */
static int
ndsz_entry(const char *key, const struct nds_nameinfo *in, void *arg)
{
	struct ndsz *z = arg;
	struct jbuf *b = &z->b;
	size_t start;

	ndsz_key(z, key);
	start = b->len;
	if (in->nips > 0)
		ndsz_strv(b, "\"ips\":", in->ips, in->nips);
	if (in->registry[0] != '\0') {
		jb_lit(b, b->len > start ? ",\"registry\":" : "\"registry\":");
		jb_str(b, in->registry);
	}
	if (in->shortname[0] != '\0') {
		jb_lit(b,
		    b->len > start ? ",\"shortname\":" : "\"shortname\":");
		jb_str(b, in->shortname);
	}
	if (in->ns[0] != '\0') {
		jb_lit(b,
		    b->len > start ? ",\"namespace\":" : "\"namespace\":");
		jb_str(b, in->ns);
	}
	if (in->nalt > 0)
		ndsz_strv(b,
		    b->len > start ? ",\"altHosts\":" : "\"altHosts\":",
		    in->alt_hosts, in->nalt);
	jb_lit(b, "}");
	return b->oom ? -ENOMEM : 0;
}

/* Closes the generated entry being written, if any. */
static void
ndsz_end_name(struct ndsz *z)
{
	if (z->name[0] != '\0' && !z->skip)
		jb_lit(&z->b, "],\"registry\":\"Kubernetes\"}");
	z->name[0] = '\0';
}

/* Writes the NameTable entries ordered before key (all for NULL). */
static void
ndsz_keys_before(struct ndsz *z, const char *key)
{
	for (; z->next < z->n && (key == NULL || ndsz_keycmp(&z->ents[z->next],
	                                             key, strlen(key)) < 0);
	     z->next++)
		if (nds_nametable_get(z->nt, z->ents[z->next].idx, ndsz_entry,
		        z) != 0)
			z->b.oom = 1;
}

/*
 * A record in name order: each address name not already a key becomes
 * an entry of its own ({"ips": v4 then v6, "registry": "Kubernetes"}), as
 * Istio's agent adds its alternate hosts; CNAMEs are not listed.
 */
static int
ndsz_record(const struct nds_record *r, void *arg)
{
	struct ndsz *z = arg;
	int n;

	if (strcmp(r->type, "CNAME") == 0)
		return 0;
	if (strcmp(r->name, z->name) != 0) {
		ndsz_end_name(z);
		ndsz_keys_before(z, r->name);
		n = snprintf(z->name, sizeof(z->name), "%s", r->name);
		if (n < 0 || (size_t)n >= sizeof(z->name))
			return -ENAMETOOLONG; /* broken invariant */
		z->skip = z->next < z->n && ndsz_keycmp(&z->ents[z->next],
		                                r->name, strlen(r->name)) == 0;
		if (z->skip)
			return z->b.oom ? -ENOMEM : 0;
		ndsz_key(z, r->name);
		jb_lit(&z->b, "\"ips\":[");
	} else if (!z->skip)
		jb_lit(&z->b, ",");
	if (!z->skip)
		jb_str(&z->b, r->data);
	return z->b.oom ? -ENOMEM : 0;
}

char *
agent_ndsz_json(const struct nds_table *t)
{
	const struct nds_nametable *nt = nds_table_source(t);
	struct ndsz z;
	int rc = 0;

	memset(&z, 0, sizeof(z));
	z.nt = nt;
	z.cap = nds_nametable_count(nt);
	if (z.cap > 0 && (z.ents = calloc(z.cap, sizeof(*z.ents))) == NULL)
		return NULL;
	for (; z.n < z.cap; z.n++) {
		z.ents[z.n].key = nds_nametable_key(nt, z.n, &z.ents[z.n].klen);
		z.ents[z.n].idx = z.n;
	}
	if (z.n > 0)
		qsort(z.ents, z.n, sizeof(*z.ents), ndsz_cmp);
	jb_lit(&z.b, "{\"table\":{");
	if (t != NULL)
		rc = nds_table_foreach_record(t, NULL, ndsz_record, &z);
	ndsz_end_name(&z);
	ndsz_keys_before(&z, NULL);
	if (rc != 0)
		z.b.oom = 1;
	else if (z.b.p != NULL && z.b.p[z.b.len - 1] == '{') {
		/* proto3 JSON leaves an empty map out. */
		z.b.len = 0;
		jb_lit(&z.b, "{}\n");
	} else
		jb_lit(&z.b, "\n}}\n");
	free(z.ents);
	return jb_finish(&z.b);
}
