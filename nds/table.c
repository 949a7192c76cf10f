/*
 * table.c: the NameTable collection and the compiled lookup table
 * (SPEC §1-§3).  No protobuf, no libevent, no JSON, no wire format.
 *
 * Layout of a compiled table (sized for 100k services, ~600k names):
 *
 *   arena  the kept NameTable's area: its blocks, each starting with
 *          the entry's key and a dot, which is the stored FQDN of a
 *          lower-case key, then the stored names no block holds
 *          ("foo.ns.", no NUL).  A short form that is a prefix of its
 *          entry's FQDN shares its bytes; origins are block offsets;
 *   recs   one 24-byte record per stored name: its address set, the
 *          target of its search CNAME and, for a canonical Kubernetes
 *          FQDN, the set of its derived short forms;
 *   slots  open addressing over recs (record index + 1 and a hash tag,
 *          0 = free), load <= 3/4, linear probing; sized once, from a
 *          counting pass;
 *   sets   one address set per entry (its v4 and v6 lists, stored once
 *          in the v4/v6 pools, and its key); merged sets only on
 *          non-Kubernetes collisions.
 *
 * A 100k-service table: ~41 bytes of block and 20 of entry, 24 of record,
 * 5 of slots, 20 of set and 4 of address per service, ~12 MB in all.
 *
 * Only about one name in six is stored.  Search CNAMEs (name + search[0]
 * + ".") are derived: a lookup that misses strips search[0] and finds the
 * address name, whose record names the target.  The short forms of a
 * canonical Kubernetes FQDN ("name.ns.<pd>." with name and ns single
 * lower-case labels) are derived too: "name.ns.", "name." and
 * "name.ns.<part0>." are completed to the FQDN.  Where a stored name is
 * also a derived one, build_claims() settles the precedence as if every
 * name had been stored, and build_shadows() applies D14; lookups try
 * stored names first, then derived ones, so the answers and listings are
 * those of the full expansion.
 *
 * Names are hashed from right to left (FNV-1a over the reversed bytes), so
 * one pass over a query yields the hash of every suffix and the wildcard
 * probes cost no rehashing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nds/nds.h"
#include "nds/nds_impl.h"

#define NAME_LEN_MAX 255 /* longest generated name, trailing dot included */
#define NONE UINT32_MAX  /* no record */
#define FNV_INIT 2166136261u
#define FNV_PRIME 16777619u

/* One NameTable entry: offsets into the NameTable's area. */
struct nt_entry {
	uint32_t off;  /* its block, see nt_view() */
	uint32_t reg;  /* registry (0: "") */
	uint32_t ns;   /* namespace (0: "") */
	uint32_t nips; /* address records */
	uint32_t nalt; /* alt hosts */
};

#define NT_INTERN 32 /* cached registry and namespace strings */

struct nds_nametable {
	struct nt_entry *ents; /* n entries in insertion order */
	size_t n;
	size_t cap;       /* of ents and hashes */
	uint32_t *hashes; /* hash_rev() of each key, until nt_unindex() */
	uint32_t *idx;    /* open addressing, until nt_unindex(): a slot
	                   * like a record slot (SLOT_IDX), 0 = free */
	size_t nslots;    /* power of two, or 0 */
	char *area;       /* the blocks (byte 0 is a NUL: ""), then the
	                   * compiled table's own names; see area_grow() */
	size_t used;      /* bytes of area used */
	size_t mapped;    /* bytes of area mapped */
	uint32_t intern[NT_INTERN]; /* earlier registries, namespaces */
	const char *pf_key; /* the key nds_nametable_prefetch() hashed */
	uint32_t pf_hash;   /* its hash */
};

/*
 * The short forms of a canonical Kubernetes FQDN "name.ns.<pd>." (see
 * entry_canonical()) are not stored either: form 0 is "name.ns.", form 1
 * "name." (own namespace only), form 2 "name.ns.<part0>.", each a prefix
 * of the FQDN.  A lookup that misses appends the rest of the FQDN and
 * finds the FQDN's record, whose own field holds the entry's set.
 */
enum {
	NFORMS = 3, /* short forms derived from a canonical FQDN */
};

enum {
	REC_K8S = 1,    /* address record of a Kubernetes entry */
	REC_FORM1 = 2,  /* own: form 1 exists (the namespace is ours) */
	REC_EX = 4,     /* << form: that form has a record of its own */
	REC_SHADOW = 32 /* << form: its search CNAME is an address name */
};

struct nds_rec {
	uint32_t hash;  /* hash_rev() of the name */
	uint32_t name;  /* arena offset of the name (no NUL) */
	uint32_t data;  /* address set */
	uint32_t cn;    /* target record of name + search[0] + ".", or NONE */
	uint32_t own;   /* set of the last canonical entry with this FQDN, for
	                 * its short forms; NONE = none */
	uint8_t len;    /* bytes at name */
	uint8_t flags;  /* REC_* */
	uint16_t spare; /* padding */
};

struct nds_addrset {
	uint32_t v4;     /* first address in the v4 pool */
	uint32_t n4;     /* number of IPv4 addresses */
	uint32_t v6;     /* first address in the v6 pool */
	uint32_t n6;     /* number of IPv6 addresses */
	uint32_t origin; /* the NameTable key: its block in the arena */
};

struct nds_table {
	unsigned refs;                /* holders; freed at 0 */
	uint32_t ttl;                 /* TTL of synthesized records */
	size_t entries;               /* NameTable keys */
	size_t names;                 /* generated names, CNAMEs included */
	const char *arena;            /* src's area: its blocks, then the
	                               * names no block holds */
	struct nds_rec *recs;         /* address names */
	size_t nrecs, rcap;           /* records used, allocated */
	uint32_t *slots;              /* hash index: record + 1, 0 = free */
	size_t nslots;                /* any size; load <= 3/4 */
	struct nds_addrset *sets;     /* address sets */
	size_t nsets, scap;           /* sets used, allocated */
	uint8_t *v4;                  /* IPv4 pool, 4 bytes per address */
	size_t n4, cap4;              /* addresses used, allocated */
	uint8_t *v6;                  /* IPv6 pool, 16 bytes per address */
	size_t n6, cap6;              /* addresses used, allocated */
	char s0dot[NAME_LEN_MAX + 1]; /* search[0] + ".", lower-case */
	size_t s0len;                 /* strlen(s0dot); 0 = no search CNAMEs */
	size_t s0dots;                /* dots in s0dot */
	bool derive;                  /* some record has short forms (own) */
	char pdt[NAME_LEN_MAX + 2];   /* proxyDomain + "." (form 0, 2 tail) */
	size_t pdtlen;                /* strlen(pdt) */
	uint32_t hpdt;                /* hash_rev() of pdt */
	char nst[2 * NAME_LEN_MAX + 3]; /* ns + "." + pdt (form 1 tail) */
	size_t nstlen;                  /* strlen(nst), 0 = no form 1 */
	uint32_t hnst;                  /* hash_rev() of nst */
	char part0[NAME_LEN_MAX + 1];   /* first label of proxyDomain */
	size_t p0len;                   /* strlen(part0) */
	struct nds_nametable *src; /* what it was built from (/debug/ndsz) */
};

void
nds_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static inline char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* FNV-1a over s[len-1] .. s[0], continuing from h. */
static inline uint32_t
hash_rev(uint32_t h, const char *s, size_t len)
{
	while (len > 0)
		h = (h ^ (uint8_t)s[--len]) * FNV_PRIME;
	return h;
}

/* Mixes FNV's weak bits (murmur3's finalizer). */
static inline uint32_t
hash_mix(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Maps a mixed hash onto [0, nslots) by multiplication (its high bits;
 * any size, no power of two needed). */
static inline size_t
mix_slot(uint32_t m, size_t nslots)
{
	return (size_t)(((uint64_t)m * nslots) >> 32);
}

/*
 * A record slot holds the record + 1 in its low 24 bits and 8 low bits of
 * the mixed hash above, so that a probe past another name rarely touches
 * that name's record (a cache miss each, ~8 of them to insert a name at
 * a load of 3/4).  A table holds at most SLOT_IDX - 1 records, and a
 * NameTable as many keys (its index works the same way).
 */
#define SLOT_IDX 0x00ffffffu

static inline uint32_t
slot_tag(uint32_t m)
{
	return (m & 0xffu) << 24;
}

/* Grows *p to hold need elements of size elem (doubling). */
static int
grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap != 0 ? *cap : 16;
	void *np;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / elem)
			return -ENOMEM;
		ncap *= 2;
	}
	if ((np = realloc(*p, ncap * elem)) == NULL)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

/* ---- NameTable --------------------------------------------------------- */

/*
 * Every byte of a NameTable lives in one area, addressed by offset; the
 * table compiled from it appends the names it cannot share and keeps the
 * whole (see nds_table_build()).  The area is a private anonymous mapping
 * grown with mremap(): no copy, no moment with two areas, and the pages
 * not yet written take no memory.  One block per entry:
 *
 *   key ".", NUL, flags, [shortname NUL], [registry NUL], [namespace NUL],
 *   nips address records, nalt alt hosts (each NUL ended)
 *
 * The dot after the key makes the block's first bytes the entry's FQDN
 * as the compiled table stores it, lower case (see name_shared()).  An
 * address record is a family byte and the address (4: 4 bytes, 6: 16
 * bytes) when the text is the address's inet_ntop() form, as it almost
 * always is; anything else (another spelling, not an address) keeps its
 * text (0, text, NUL), so listings show what was pushed.  The shortname
 * is left out when it is the key's first label, as Kubernetes names are;
 * registries and namespaces repeat (a few distinct values over 100k
 * entries), so a small cache hands out an earlier copy.  A 100k-service
 * table costs ~41 bytes of block and 20 of entry per service.
 */
#define AREA_MAX ((size_t)UINT32_MAX) /* offsets are 32 bits */

enum {
	NT_SN = 1,     /* the shortname is in the block */
	NT_REG = 2,    /* the registry is in the block */
	NT_NS = 4,     /* the namespace is in the block */
	NT_K8S = 8,    /* the registry is "Kubernetes" */
	NT_LOWER = 16, /* the key has no upper case */
	NT_SHAPE = 32, /* the key starts, in any case, with shortname "."
	                * namespace ".", canonical labels (entry_canonical()) */
};

enum {
	IP_TEXT = 0, /* text, NUL ended */
	IP_V4 = 4,   /* 4 bytes, network order */
	IP_V6 = 6,   /* 16 bytes */
};

static size_t
page_up(size_t n)
{
	size_t pg = 4096;

	return n > SIZE_MAX - pg ? SIZE_MAX : (n + pg - 1) & ~(pg - 1);
}

/*
 * Under AddressSanitizer the area is plain heap, whose bounds ASan checks
 * (it knows nothing of a mapping's); the copies realloc() makes then cost
 * nothing that matters.
 */
#if defined(__SANITIZE_ADDRESS__)
#define AREA_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AREA_HEAP 1
#endif
#endif

static void *
area_map(void *old, size_t oldsize, size_t size)
{
	void *p;

#ifdef AREA_HEAP
	(void)oldsize;
	p = realloc(old, size);
	return p != NULL ? p : MAP_FAILED;
#else
	if (old == NULL)
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	else
		p = mremap(old, oldsize, size,
		    size > oldsize ? MREMAP_MAYMOVE : 0);
	return p;
#endif
}

static void
area_unmap(void *p, size_t size)
{
#ifdef AREA_HEAP
	(void)size;
	free(p);
#else
	if (p != NULL)
		munmap(p, size);
#endif
}

/* Room for need bytes in all (doubling); the area may move. */
static int
area_grow(struct nds_nametable *nt, size_t need)
{
	size_t size = nt->mapped != 0 ? nt->mapped : 64u * 1024;
	void *p;

	if (need <= nt->mapped)
		return 0;
	if (need > AREA_MAX)
		return -ENOMEM;
	while (size < need)
		size = size > SIZE_MAX / 2 ? need : size * 2;
	size = page_up(size);
	if ((p = area_map(nt->area, nt->mapped, size)) == MAP_FAILED)
		return -ENOMEM;
	nt->area = p;
	nt->mapped = size;
	if (nt->used == 0) {
		nt->area[0] = '\0'; /* offset 0: "" */
		nt->used = 1;
	}
	return 0;
}

/* Gives back the pages past the bytes used (shrinking never moves). */
static void
area_trim(struct nds_nametable *nt)
{
	size_t size = page_up(nt->used);
	void *p;

	if (nt->area != NULL && size < nt->mapped &&
	    (p = area_map(nt->area, nt->mapped, size)) != MAP_FAILED) {
		nt->area = p;
		nt->mapped = size;
	}
}

static int
size_add(size_t *acc, size_t n)
{
	if (n > SIZE_MAX - *acc)
		return -ENOMEM;
	*acc += n;
	return 0;
}

static char *
put_str(char *p, const char *s)
{
	size_t len = strlen(s) + 1;

	memcpy(p, s, len);
	return p + len;
}

/* An earlier copy of s from the cache (0: ""), or NONE. */
static uint32_t
nt_intern_get(const struct nds_nametable *nt, const char *s, size_t *slot)
{
	uint32_t c;

	size_t len;

	if (s[0] == '\0')
		return 0;
	/* Cheap: a miss only stores another copy. */
	len = strlen(s);
	*slot = (len * 7 + (uint8_t)s[0] * 31 + (uint8_t)s[len - 1] +
	            (uint8_t)s[len / 2]) %
	        NT_INTERN;
	c = nt->intern[*slot];
	return c != 0 && strcmp(nt->area + c, s) == 0 ? c : NONE;
}

/*
 * The address record of ip text s into rec (17 bytes): its length, or 0
 * when the text is kept.  inet_pton() is strict (no CIDR, zone or leading
 * zeros), so an IPv4 address it takes is in inet_ntop() form already; an
 * IPv6 one has many spellings and is checked.
 */
static size_t
ip_pack(const char *s, uint8_t *rec)
{
	char text[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET, s, rec + 1) == 1) {
		rec[0] = IP_V4;
		return 5;
	}
	if (inet_pton(AF_INET6, s, rec + 1) == 1 &&
	    inet_ntop(AF_INET6, rec + 1, text, sizeof(text)) != NULL &&
	    strcmp(text, s) == 0) {
		rec[0] = IP_V6;
		return 17;
	}
	return 0;
}

/* A label of a canonical entry: no dot, no upper case, no '*'. */
static bool
canon_label(const char *s, size_t len, bool star)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '.' || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] == '*' && !star))
			return false;
	return len > 0;
}

/* Whether a[0..len) is b[0..len) in some case (b lower-case). */
static bool
lower_eq(const char *a, const char *b, size_t len)
{
	size_t i;

	if (memcmp(a, b, len) == 0)
		return true;
	for (i = 0; i < len; i++)
		if (lower(a[i]) != b[i])
			return false;
	return true;
}

/*
 * What the compile needs to know of a key, worked out once while its
 * block is written (NT_K8S, NT_LOWER, NT_SHAPE).
 */
static uint8_t
key_shape(const char *key, size_t klen, const char *sn, const char *ns,
    const char *reg)
{
	size_t sl = strlen(sn), nl = strlen(ns), i;
	uint8_t f = strcmp(reg, "Kubernetes") == 0 ? NT_K8S : 0;

	for (i = 0; i < klen && !(key[i] >= 'A' && key[i] <= 'Z'); i++)
		;
	f |= i == klen ? NT_LOWER : 0;
	if (canon_label(sn, sl, false) && canon_label(ns, nl, true) &&
	    klen > sl + 1 + nl + 1 && key[sl] == '.' &&
	    key[sl + 1 + nl] == '.' && lower_eq(key, sn, sl) &&
	    lower_eq(key + sl + 1, ns, nl))
		f |= NT_SHAPE;
	return f;
}

/* Whether shortname sn is the first label of key (and can be left out). */
static bool
sn_implied(const char *key, const char *sn)
{
	size_t sl = strlen(sn);

	return strchr(sn, '.') == NULL && strncmp(key, sn, sl) == 0 &&
	       (key[sl] == '.' || key[sl] == '\0');
}

static int
strv_check(const char *const *v, size_t n)
{
	if (n > 0 && v == NULL)
		return -EINVAL;
	return n > UINT32_MAX ? -ENOMEM : 0;
}

/* Copies key and info into a new block; *e is the new entry. */
static int
nt_entry_new(struct nds_nametable *nt, const char *key,
    const struct nds_nameinfo *in, struct nt_entry *e)
{
	const char *sn = in->shortname != NULL ? in->shortname : "";
	const char *regs = in->registry != NULL ? in->registry : "";
	const char *nss = in->ns != NULL ? in->ns : "";
	size_t size = 0, i, n, rslot = 0, nslot = 0, klen = strlen(key);
	uint32_t reg = nt_intern_get(nt, regs, &rslot);
	uint32_t ns = nt_intern_get(nt, nss, &nslot);
	uint8_t flags = 0, rec[17];
	char *start, *p;
	int rc;

	if ((rc = strv_check(in->ips, in->nips)) != 0 ||
	    (rc = strv_check(in->alt_hosts, in->nalt)) != 0)
		return rc;
	flags |= sn_implied(key, sn) ? 0 : NT_SN;
	flags |= reg == NONE ? NT_REG : 0;
	flags |= ns == NONE ? NT_NS : 0;
	flags |= key_shape(key, klen, sn, nss, regs);
	if (size_add(&size, klen + 3) != 0 ||
	    ((flags & NT_SN) && size_add(&size, strlen(sn) + 1) != 0) ||
	    ((flags & NT_REG) && size_add(&size, strlen(regs) + 1) != 0) ||
	    ((flags & NT_NS) && size_add(&size, strlen(nss) + 1) != 0))
		return -ENOMEM;
	/* An address takes 17 bytes at most, or its text: bound, then give
	 * back what the records did not use. */
	for (i = 0; i < in->nips; i++) {
		n = strlen(in->ips[i] != NULL ? in->ips[i] : "") + 2;
		if (size_add(&size, n > 17 ? n : 17) != 0)
			return -ENOMEM;
	}
	for (i = 0; i < in->nalt; i++)
		if (size_add(&size,
		        strlen(in->alt_hosts[i] != NULL ? in->alt_hosts[i]
		                                        : "") +
		            1) != 0)
			return -ENOMEM;
	if (size > AREA_MAX || (rc = area_grow(nt, nt->used + size)) != 0)
		return -ENOMEM;
	start = p = nt->area + nt->used;
	e->off = (uint32_t)nt->used;
	memcpy(p, key, klen);
	p += klen;
	*p++ = '.';
	*p++ = '\0';
	*p++ = (char)flags;
	if (flags & NT_SN)
		p = put_str(p, sn);
	if (flags & NT_REG) {
		reg = nt->intern[rslot] = (uint32_t)(p - nt->area);
		p = put_str(p, regs);
	}
	if (flags & NT_NS) {
		ns = nt->intern[nslot] = (uint32_t)(p - nt->area);
		p = put_str(p, nss);
	}
	e->reg = reg;
	e->ns = ns;
	for (i = 0; i < in->nips; i++) {
		const char *ip = in->ips[i] != NULL ? in->ips[i] : "";

		if ((n = ip_pack(ip, rec)) != 0) {
			memcpy(p, rec, n);
			p += n;
		} else {
			*p++ = IP_TEXT;
			p = put_str(p, ip);
		}
	}
	for (i = 0; i < in->nalt; i++)
		p = put_str(p,
		    in->alt_hosts[i] != NULL ? in->alt_hosts[i] : "");
	e->nips = (uint32_t)in->nips;
	e->nalt = (uint32_t)in->nalt;
	nt->used += (size_t)(p - start);
	return 0;
}

/* Where the parts of an entry's block are. */
struct nt_view {
	const char *key;    /* klen bytes, then "." and a NUL */
	size_t klen;        /* bytes of the key */
	const char *sn;     /* shortname, sl bytes (not NUL ended if implied) */
	size_t sl;          /* bytes of the shortname */
	const char *reg;    /* registry, NUL ended */
	const char *ns;     /* namespace, NUL ended */
	const uint8_t *ips; /* the first address record */
	uint8_t flags;      /* NT_* */
};

static void
nt_view(const struct nds_nametable *nt, const struct nt_entry *e,
    struct nt_view *v)
{
	const char *p, *dot;
	uint8_t flags;

	v->key = nt->area + e->off;
	v->klen = strlen(v->key) - 1;
	p = v->key + v->klen + 2;
	v->flags = flags = (uint8_t)*p++;
	if (flags & NT_SN) {
		v->sn = p;
		v->sl = strlen(p);
		p += v->sl + 1;
	} else {
		dot = memchr(v->key, '.', v->klen);
		v->sn = v->key;
		v->sl = dot != NULL ? (size_t)(dot - v->key) : v->klen;
	}
	if (flags & NT_REG)
		p += strlen(p) + 1;
	if (flags & NT_NS)
		p += strlen(p) + 1;
	v->reg = nt->area + e->reg;
	v->ns = nt->area + e->ns;
	v->ips = (const uint8_t *)p;
}

/* The address record at p: its family byte, the address or text in
 * *data, and where the next record starts. */
static const uint8_t *
ip_next(const uint8_t *p, uint8_t *fam, const void **data)
{
	*fam = p[0];
	*data = p + 1;
	if (*fam == IP_V4)
		return p + 5;
	if (*fam == IP_V6)
		return p + 17;
	return p + 1 + strlen((const char *)p + 1) + 1;
}

/* The first alt host of e (after its address records). */
static const char *
nt_alts(const struct nt_entry *e, const struct nt_view *v)
{
	const uint8_t *p = v->ips;
	const void *data;
	uint8_t fam;
	uint32_t i;

	for (i = 0; i < e->nips; i++)
		p = ip_next(p, &fam, &data);
	return (const char *)p;
}

int
nds_nametable_create(struct nds_nametable **out)
{
	if ((*out = calloc(1, sizeof(**out))) == NULL)
		return -ENOMEM;
	return 0;
}

/* Scratch space for the NameInfo views handed out: pointers, then text. */
struct nt_scratch {
	char *buf;
	size_t cap;
};

/* Entry e as nds_nametable_add() took it, its key and text in sc. */
static int
nt_info(const struct nds_nametable *nt, const struct nt_entry *e,
    struct nt_scratch *sc, const char **key, struct nds_nameinfo *in)
{
	size_t nptr = (size_t)e->nips + e->nalt, need, i;
	const uint8_t *p;
	const void *data;
	struct nt_view v;
	const char **ptrs;
	char *text, *np;
	uint8_t fam;

	nt_view(nt, e, &v);
	if (nptr > (SIZE_MAX - v.sl - v.klen - 2) /
	               (sizeof(char *) + INET6_ADDRSTRLEN))
		return -ENOMEM;
	need = nptr * sizeof(char *) + (size_t)e->nips * INET6_ADDRSTRLEN +
	       v.sl + 1 + v.klen + 1;
	if (need > sc->cap) {
		if ((np = realloc(sc->buf, need)) == NULL)
			return -ENOMEM;
		sc->buf = np;
		sc->cap = need;
	}
	ptrs = (const char **)(void *)sc->buf;
	text = sc->buf + nptr * sizeof(char *);
	memcpy(text, v.key, v.klen);
	text[v.klen] = '\0';
	*key = text;
	text += v.klen + 1;
	memcpy(text, v.sn, v.sl);
	text[v.sl] = '\0';
	in->shortname = text;
	text += v.sl + 1;
	for (i = 0, p = v.ips; i < e->nips; i++) {
		p = ip_next(p, &fam, &data);
		if (fam == IP_TEXT) {
			ptrs[i] = data;
			continue;
		}
		/* Cannot fail: the buffer fits any address. */
		if (inet_ntop(fam == IP_V4 ? AF_INET : AF_INET6, data, text,
		        INET6_ADDRSTRLEN) == NULL)
			return -EINVAL;
		ptrs[i] = text;
		text += strlen(text) + 1;
	}
	for (i = 0; i < e->nalt; i++) {
		ptrs[e->nips + i] = (const char *)p;
		p += strlen((const char *)p) + 1;
	}
	in->ips = ptrs;
	in->nips = e->nips;
	in->alt_hosts = ptrs + e->nips;
	in->nalt = e->nalt;
	in->registry = v.reg;
	in->ns = v.ns;
	return 0;
}

/* Whether entry i's key is key[0..klen). */
static bool
nt_key_eq(const struct nds_nametable *nt, size_t i, const char *key,
    size_t klen)
{
	const char *k = nt->area + nt->ents[i].off;

	return memcmp(k, key, klen) == 0 && k[klen] == '.' &&
	       k[klen + 1] == '\0';
}

/* Slot of key in nt->idx: its entry, or the free slot where it goes.
 * The tag in the slot spares a visit to most other keys on the way. */
static size_t
nt_slot(const struct nds_nametable *nt, const char *key, size_t klen,
    uint32_t hash)
{
	uint32_t m = hash_mix(hash), tag = slot_tag(m), v, i;
	size_t s = mix_slot(m, nt->nslots);

	while ((v = nt->idx[s]) != 0) {
		i = (v & SLOT_IDX) - 1;
		if ((v & ~SLOT_IDX) == tag && nt->hashes[i] == hash &&
		    nt_key_eq(nt, i, key, klen))
			break;
		s = (s + 1) & (nt->nslots - 1);
	}
	return s;
}

/* A new index with room for want + 1 keys. */
static int
nt_rehash(struct nds_nametable *nt, size_t want)
{
	size_t nslots = nt->nslots != 0 ? nt->nslots * 2 : 64, i, s;
	uint32_t *idx, m;

	while (nslots < SIZE_MAX / 20 && (want + 1) * 10 > nslots * 7)
		nslots *= 2;
	if (nslots > SIZE_MAX / 2 / sizeof(*idx) || nt->n >= SLOT_IDX - 1)
		return -ENOMEM;
	if ((idx = calloc(nslots, sizeof(*idx))) == NULL)
		return -ENOMEM;
	/* Keys are distinct: each goes to the first free slot. */
	for (i = 0; i < nt->n; i++) {
		m = hash_mix(nt->hashes[i]);
		for (s = mix_slot(m, nslots); idx[s] != 0;
		     s = (s + 1) & (nslots - 1))
			;
		idx[s] = slot_tag(m) | (uint32_t)(i + 1);
	}
	free(nt->idx);
	nt->idx = idx;
	nt->nslots = nslots;
	return 0;
}

/* Sizes nt for n keys in all: entries and index allocated once. */
int
nds_nametable_reserve(struct nds_nametable *nt, size_t n)
{
	void *p;

	if (n >= SLOT_IDX - 1 || n > SIZE_MAX / 2 / sizeof(*nt->ents))
		return -ENOMEM;
	if (n > nt->cap) {
		if ((p = realloc(nt->ents, n * sizeof(*nt->ents))) == NULL)
			return -ENOMEM;
		nt->ents = p;
		if ((p = realloc(nt->hashes, n * sizeof(*nt->hashes))) == NULL)
			return -ENOMEM; /* ents is larger than cap: harmless */
		nt->hashes = p;
		nt->cap = n;
	}
	return (n + 1) * 10 > nt->nslots * 7 ? nt_rehash(nt, n) : 0;
}

void
nds_nametable_prefetch(struct nds_nametable *nt, const char *key)
{
	nt->pf_key = key;
	nt->pf_hash = hash_rev(FNV_INIT, key, strlen(key));
	if (nt->nslots > 0)
		__builtin_prefetch(
		    &nt->idx[mix_slot(hash_mix(nt->pf_hash), nt->nslots)]);
}

int
nds_nametable_add(struct nds_nametable *nt, const char *key,
    const struct nds_nameinfo *info)
{
	static const struct nds_nameinfo empty;
	struct nt_entry e;
	uint32_t hash;
	size_t s, klen;
	int rc;

	if (nt == NULL || key == NULL || key[0] == '\0')
		return -EINVAL;
	/* A kept table's NameTable takes nothing more (nt_unindex()). */
	if (nt->n > 0 && nt->idx == NULL)
		return -EINVAL;
	if ((rc = nt_entry_new(nt, key, info != NULL ? info : &empty, &e)) != 0)
		return rc;
	/* A failure here leaves the copy unused in the area. */
	if (((nt->n + 1) * 10 > nt->nslots * 7 &&
	        (rc = nt_rehash(nt, nt->n)) != 0) ||
	    (nt->n == nt->cap && (rc = nds_nametable_reserve(nt,
	                              nt->cap != 0 ? nt->cap * 2 : 16)) != 0))
		return rc;
	klen = strlen(key);
	hash = key == nt->pf_key ? nt->pf_hash : hash_rev(FNV_INIT, key, klen);
	nt->pf_key = NULL;
	s = nt_slot(nt, key, klen, hash);
	if (nt->idx[s] != 0) {
		/* Duplicate key: the last one wins, as in protobuf maps. */
		nt->ents[(nt->idx[s] & SLOT_IDX) - 1] = e;
		return 0;
	}
	nt->ents[nt->n] = e;
	nt->hashes[nt->n] = hash;
	nt->idx[s] = slot_tag(hash_mix(hash)) | (uint32_t)++nt->n;
	return 0;
}

size_t
nds_nametable_count(const struct nds_nametable *nt)
{
	return nt != NULL ? nt->n : 0;
}

int
nds_nametable_foreach(const struct nds_nametable *nt,
    int (*fn)(const char *key, const struct nds_nameinfo *info, void *arg),
    void *arg)
{
	struct nt_scratch sc = {NULL, 0};
	struct nds_nameinfo in;
	const char *key;
	size_t i;
	int rc = 0;

	for (i = 0; nt != NULL && i < nt->n && rc == 0; i++)
		if ((rc = nt_info(nt, &nt->ents[i], &sc, &key, &in)) == 0)
			rc = fn(key, &in, arg);
	free(sc.buf);
	return rc;
}

const char *
nds_nametable_key(const struct nds_nametable *nt, size_t i, size_t *len)
{
	const char *k;

	if (nt == NULL || i >= nt->n)
		return NULL;
	k = nt->area + nt->ents[i].off;
	*len = strlen(k) - 1;
	return k;
}

int
nds_nametable_get(const struct nds_nametable *nt, size_t i,
    int (*fn)(const char *key, const struct nds_nameinfo *info, void *arg),
    void *arg)
{
	struct nt_scratch sc = {NULL, 0};
	struct nds_nameinfo in;
	const char *key;
	int rc;

	if (nt == NULL || i >= nt->n)
		return -EINVAL;
	if ((rc = nt_info(nt, &nt->ents[i], &sc, &key, &in)) == 0)
		rc = fn(key, &in, arg);
	free(sc.buf);
	return rc;
}

void
nds_nametable_destroy(struct nds_nametable *nt)
{
	if (nt == NULL)
		return;
	area_unmap(nt->area, nt->mapped);
	free(nt->ents);
	free(nt->hashes);
	free(nt->idx);
	free(nt);
}

/* ---- compiled table: records and the hash index ------------------------ */

/* Order of a1[0..l1) + a2[0..l2) and b1[0..m1) + b2[0..m2), bytewise. */
static int
cat_cmp(const char *a1, size_t l1, const char *a2, size_t l2, const char *b1,
    size_t m1, const char *b2, size_t m2)
{
	while (l1 + l2 > 0 && m1 + m2 > 0) {
		size_t n;
		int c;

		if (l1 == 0) {
			a1 = a2;
			l1 = l2;
			l2 = 0;
		}
		if (m1 == 0) {
			b1 = b2;
			m1 = m2;
			m2 = 0;
		}
		n = l1 < m1 ? l1 : m1;
		if ((c = memcmp(a1, b1, n)) != 0)
			return c;
		a1 += n;
		b1 += n;
		l1 -= n;
		m1 -= n;
	}
	return (l1 + l2 > 0) - (m1 + m2 > 0);
}

/* Whether the record name a[0..l) equals p[0..plen) + s[0..slen). */
static inline bool
name_eq(const char *a, size_t l, const char *p, size_t plen, const char *s,
    size_t slen)
{
	return l == plen + slen && memcmp(a, p, plen) == 0 &&
	       memcmp(a + plen, s, slen) == 0;
}

/* Address record of the name p + s (hash = its name hash), or NONE and
 * *hole = the free slot that ended the search. */
static inline uint32_t
rec_probe(const struct nds_table *t, uint32_t hash, const char *p, size_t plen,
    const char *s, size_t slen, size_t *hole)
{
	uint32_t m = hash_mix(hash), tag = slot_tag(m), v;
	size_t i;

	if (t->nslots == 0)
		return NONE;
	for (i = mix_slot(m, t->nslots); (v = t->slots[i]) != 0;
	     i = i + 1 < t->nslots ? i + 1 : 0) {
		const struct nds_rec *r;

		if ((v & ~SLOT_IDX) != tag)
			continue;
		r = &t->recs[(v & SLOT_IDX) - 1];
		if (r->hash == hash &&
		    name_eq(t->arena + r->name, r->len, p, plen, s, slen))
			return (v & SLOT_IDX) - 1;
	}
	*hole = i;
	return NONE;
}

/* Address record of the name p + s (hash = its name hash), or NONE. */
static uint32_t
rec_find(const struct nds_table *t, uint32_t hash, const char *p, size_t plen,
    const char *s, size_t slen)
{
	size_t hole;

	return rec_probe(t, hash, p, plen, s, slen, &hole);
}

/* Appends a new record, indexed at the free slot rec_probe() found for
 * its name (build_alloc() sized both). */
static int
rec_new(struct nds_table *t, const struct nds_rec *r, size_t slot,
    uint32_t *out)
{
	if (t->nrecs >= t->rcap || slot >= t->nslots || t->slots[slot] != 0)
		return -EOVERFLOW; /* broken invariant: the count was exact */
	t->recs[t->nrecs] = *r;
	*out = (uint32_t)t->nrecs++;
	t->slots[slot] = slot_tag(hash_mix(r->hash)) | (*out + 1);
	return 0;
}

/* Copies len bytes into the arena; *off is where they went. */
static int
arena_put(struct nds_table *t, const char *s, size_t len, uint32_t *off)
{
	struct nds_nametable *nt = t->src;

	if (len > nt->mapped - nt->used)
		return -EOVERFLOW; /* broken invariant: the count was exact */
	memcpy(nt->area + nt->used, s, len);
	*off = (uint32_t)nt->used;
	nt->used += len;
	return 0;
}

/* ---- compiled table: address sets -------------------------------------- */

/* Appends count addresses of sz bytes (from src, or copied from *pool at
 * index from when src is NULL) to a pool. */
static int
pool_put(uint8_t **pool, size_t *n, size_t *cap, size_t sz, const uint8_t *src,
    size_t from, size_t count)
{
	int rc;

	if (count > UINT32_MAX - 1 - *n)
		return -ENOMEM;
	if ((rc = grow((void **)pool, cap, *n + count, sz)) != 0)
		return rc;
	if (count > 0)
		memcpy(*pool + *n * sz, src != NULL ? src : *pool + from * sz,
		    count * sz);
	*n += count;
	return 0;
}

static int
set_new(struct nds_table *t, const struct nds_addrset *s, uint32_t *out)
{
	int rc;

	if (t->nsets >= UINT32_MAX - 1)
		return -ENOMEM;
	if ((rc = grow((void **)&t->sets, &t->scap, t->nsets + 1,
	         sizeof(*t->sets))) != 0)
		return rc;
	t->sets[t->nsets] = *s;
	*out = (uint32_t)t->nsets++;
	return 0;
}

/*
 * The address of the record at *p (advanced past it): *fam IP_V4 or
 * IP_V6, or IP_TEXT when it is no valid address.  Another spelling of an
 * IPv6 address still counts, and is parsed into a.
 */
static const uint8_t *
ip_addr(const uint8_t **p, uint8_t *fam, uint8_t a[16])
{
	const void *data;

	*p = ip_next(*p, fam, &data);
	if (*fam == IP_V4 || *fam == IP_V6)
		return data;
	if (inet_pton(AF_INET6, data, a) == 1) {
		*fam = IP_V6;
		return a;
	}
	return NULL;
}

/*
 * The address set of entry e: its valid IPs in NameInfo order, split by
 * family (SPEC §2.1).  *out = NONE when no IP is valid.  The origin is
 * filled in by entry_apply().
 */
static int
entry_set(struct nds_table *t, const struct nt_entry *e,
    const struct nt_view *v, uint32_t *out)
{
	struct nds_addrset s = {.v4 = (uint32_t)t->n4, .v6 = (uint32_t)t->n6};
	const uint8_t *p = v->ips, *ip;
	uint8_t a[16], fam;
	size_t i;
	int rc = 0;

	*out = NONE;
	for (i = 0; i < e->nips && rc == 0; i++) {
		if ((ip = ip_addr(&p, &fam, a)) == NULL)
			continue;
		if (fam == IP_V4)
			rc = pool_put(&t->v4, &t->n4, &t->cap4, 4, ip, 0, 1);
		else
			rc = pool_put(&t->v6, &t->n6, &t->cap6, 16, ip, 0, 1);
	}
	if (rc != 0)
		return rc;
	s.n4 = (uint32_t)(t->n4 - s.v4);
	s.n6 = (uint32_t)(t->n6 - s.v6);
	if (s.n4 == 0 && s.n6 == 0)
		return 0;
	return set_new(t, &s, out);
}

/* A new set: a's addresses then b's, per family; a's origin (D5). */
static int
set_merge(struct nds_table *t, uint32_t a, uint32_t b, uint32_t *out)
{
	struct nds_addrset x = t->sets[a], y = t->sets[b];
	struct nds_addrset m = {.v4 = (uint32_t)t->n4,
	    .n4 = x.n4 + y.n4,
	    .v6 = (uint32_t)t->n6,
	    .n6 = x.n6 + y.n6,
	    .origin = x.origin};
	int rc;

	if ((rc = pool_put(&t->v4, &t->n4, &t->cap4, 4, NULL, x.v4, x.n4)) ||
	    (rc = pool_put(&t->v4, &t->n4, &t->cap4, 4, NULL, y.v4, y.n4)) ||
	    (rc = pool_put(&t->v6, &t->n6, &t->cap6, 16, NULL, x.v6, x.n6)) ||
	    (rc = pool_put(&t->v6, &t->n6, &t->cap6, 16, NULL, y.v6, y.n6)))
		return rc;
	return set_new(t, &m, out);
}

/* ---- build: expansion of SPEC §2 --------------------------------------- */

struct build {
	struct nds_table *t;          /* the table being built */
	const char *ns;               /* proxy namespace, "" = FQDNs only */
	char pd[NAME_LEN_MAX + 1];    /* proxyDomain, lower-case, "" = none */
	size_t pdlen;                 /* strlen(pd) */
	char part0[NAME_LEN_MAX + 1]; /* first label of pd ("svc") */
	size_t emitted;               /* names the entries emit, at most */
	size_t abytes;                /* arena bytes they need, at most */
	size_t n4, n6;                /* valid addresses, per family */
	uint32_t *stamp;              /* per record: set + 1 of the entry
	                               * that set its search CNAME */
	uint8_t *stamp_room;          /* scratch for stamp, or NULL */
	size_t stamp_max;             /* its bytes */
	struct nt_view v;             /* the entry's block */
	uint32_t off;                 /* its arena offset */
	uint32_t set;                 /* the entry's address set */
	bool k8s;                     /* it is a Kubernetes entry */
	bool canon;                   /* its short forms are derived */
	bool form1;                   /* it has form 1 (own namespace) */
	uint32_t fqdn;                /* record of its "key.", or NONE */
};

enum name_kind {
	NAME_FQDN,  /* key + "." */
	NAME_SHORT, /* name.ns., name., name.ns.svc. (Kubernetes) */
	NAME_ALT,   /* alt_hosts[i] + "." (Kubernetes) */
};

struct part {
	const char *s;
	size_t len;
};

typedef int (*name_fn)(struct build *b, const char *name, size_t len,
    enum name_kind kind);

/* Whether s (any case) ends with suf (lower-case) at a label boundary. */
static bool
ends_with_label(const char *s, size_t slen, const char *suf, size_t suflen)
{
	if (suflen > slen || suflen == 0 ||
	    !lower_eq(s + slen - suflen, suf, suflen))
		return false;
	return slen == suflen || s[slen - suflen - 1] == '.';
}

/* Calls fn with lower(p[0]) "." lower(p[1]) "." ...; skips long names. */
static int
emit(struct build *b, name_fn fn, enum name_kind kind, const struct part *p,
    size_t n)
{
	char buf[NAME_LEN_MAX + 1];
	size_t len = 0, i, j;

	for (i = 0; i < n; i++) {
		/* Longer than a DNS name: it can never be asked for. */
		if (p[i].len + 1 > NAME_LEN_MAX - len)
			return 0;
		for (j = 0; j < p[i].len; j++)
			buf[len++] = lower(p[i].s[j]);
		buf[len++] = '.';
	}
	buf[len] = '\0';
	return fn(b, buf, len, kind);
}

/* Kubernetes short forms and alt hosts (SPEC §2.3, D12, D15, §10.1). */
static int
entry_k8s_names(struct build *b, const struct nt_entry *e, name_fn fn)
{
	const struct nt_view *v = &b->v;
	struct part p[3];
	const char *alt;
	size_t i;
	int rc = 0;

	/* A canonical entry's short forms are derived from its FQDN. */
	p[0] = (struct part){v->sn, v->sl};
	p[1] = (struct part){v->ns, b->canon ? 0 : strlen(v->ns)};
	p[2] = (struct part){b->part0, b->canon ? 0 : strlen(b->part0)};
	if (!b->canon && b->ns[0] != '\0' && p[0].len > 0 && p[1].len > 0) {
		if ((rc = emit(b, fn, NAME_SHORT, p, 2)) != 0 ||
		    (strcmp(v->ns, b->ns) == 0 &&
		        (rc = emit(b, fn, NAME_SHORT, p, 1)) != 0) ||
		    (rc = emit(b, fn, NAME_SHORT, p, 3)) != 0)
			return rc;
	}
	alt = e->nalt > 0 ? nt_alts(e, v) : NULL;
	for (i = 0; i < e->nalt && rc == 0; i++) {
		struct part a = {alt, strlen(alt)};

		alt += a.len + 1;
		/* "" would name the root and "x." gives "x..": not names. */
		if (a.len > 0 && a.s[a.len - 1] != '.')
			rc = emit(b, fn, NAME_ALT, &a, 1);
	}
	return rc;
}

/* Calls fn for every stored address name of entry e (SPEC §2.2, §2.3). */
static int
entry_names(struct build *b, const struct nt_entry *e, name_fn fn)
{
	struct part key = {b->v.key, b->v.klen};
	int rc;

	/* No extra dot when the key already has one (not Kubernetes). */
	if (!b->k8s)
		key.len -= key.s[key.len - 1] == '.';
	/* A lower-case key is its name already: "key." starts its block. */
	if (!(b->v.flags & NT_LOWER))
		rc = emit(b, fn, NAME_FQDN, &key, 1);
	else if (key.len + 1 > NAME_LEN_MAX)
		rc = 0; /* as emit() */
	else
		rc = fn(b, key.s, key.len + 1, NAME_FQDN);
	if (rc != 0 || !b->k8s)
		return rc;
	/* Other clusters' domains get only their FQDN (D12: by label). */
	if (!b->canon && (b->pdlen == 0 ||
	                     !ends_with_label(key.s, key.len, b->pd, b->pdlen)))
		return 0;
	return entry_k8s_names(b, e, fn);
}

/*
 * Whether the short forms of Kubernetes entry e (with a set, key without
 * a trailing dot) can be derived from its FQDN: the key is, in any case,
 * shortname "." namespace "." proxyDomain, both single lower-case labels
 * and the shortname no wildcard, so that the FQDN alone tells them apart
 * (any two such entries with one FQDN emit the same short forms) and a
 * wildcard probe never needs a derived name.
 */
static bool
entry_canonical(const struct build *b)
{
	size_t kl = b->v.klen, off;

	if (!(b->v.flags & NT_SHAPE) || b->pdlen == 0 || b->ns[0] == '\0')
		return false;
	off = b->v.sl + 1 + strlen(b->v.ns) + 1;
	return kl + 1 <= NAME_LEN_MAX && kl == off + b->pdlen &&
	       lower_eq(b->v.key + off, b->pd, b->pdlen);
}

/*
 * Whether the FQDN name of the entry is the start of its block: the key
 * was lower case, so "key." is there already (see nt_entry_new()).
 */
static inline bool
fqdn_shared(const struct build *b, const char *name, size_t len)
{
	return len <= b->v.klen + 1 && memcmp(b->v.key, name, len) == 0;
}

/*
 * A stored address name, in sorted key order.  D5: Kubernetes beats
 * non-Kubernetes in either order, non-Kubernetes duplicates append their
 * IPs per family; D13: between Kubernetes entries the later key replaces.
 * (Sets are made in sorted key order, so between entries the later key
 * has the larger set.)
 *
 * It also picks the target of the name's search CNAME, name + search[0]
 * + "." (SPEC §2.5, D9), which is never stored: lookups derive it, and
 * only when no address name is spelled that way (D14).  None when the
 * name already ends with search[0].  D18: a Kubernetes short form's
 * CNAME names the service FQDN, others name themselves.  Within an entry
 * the first CNAME of a name stays (short forms come before alt hosts);
 * between entries the later key replaces, as D13 does for addresses.
 */
static int
add_addr(struct build *b, const char *name, size_t len, enum name_kind kind)
{
	struct nds_table *t = b->t;
	uint32_t hash = hash_rev(FNV_INIT, name, len), i, set, target;
	struct nds_rec r = {.hash = hash,
	    .len = (uint8_t)len,
	    .data = b->set,
	    .cn = NONE,
	    .own = NONE,
	    .flags = b->k8s ? REC_K8S : 0};
	const struct nds_rec *fq;
	size_t slot = 0;
	int rc;

	if ((i = rec_probe(t, hash, name, len, "", 0, &slot)) == NONE) {
		fq = b->fqdn != NONE ? &t->recs[b->fqdn] : NULL;
		if (kind != NAME_FQDN && fq != NULL && len <= fq->len &&
		    memcmp(t->arena + fq->name, name, len) == 0)
			r.name = fq->name;
		else if (kind == NAME_FQDN && fqdn_shared(b, name, len))
			r.name = b->off;
		else if ((rc = arena_put(t, name, len, &r.name)) != 0)
			return rc;
		if ((rc = rec_new(t, &r, slot, &i)) != 0)
			return rc;
	} else if (b->k8s) {
		t->recs[i].data = b->set;
		t->recs[i].flags |= REC_K8S;
	} else if (!(t->recs[i].flags & REC_K8S) && t->recs[i].data != b->set) {
		if ((rc = set_merge(t, t->recs[i].data, b->set, &set)) != 0)
			return rc;
		t->recs[i].data = set;
	}
	if (kind == NAME_FQDN) {
		b->fqdn = i;
		if (b->canon) {
			t->recs[i].own = b->set;
			t->recs[i].flags |= b->form1 ? REC_FORM1 : 0;
			t->derive = true;
		}
	}
	if (t->s0len == 0 || len + t->s0len > NAME_LEN_MAX ||
	    ends_with_label(name, len, t->s0dot, t->s0len))
		return 0;
	if ((target = kind == NAME_SHORT ? b->fqdn : i) == NONE ||
	    b->stamp[i] == b->set + 1)
		return 0;
	t->recs[i].cn = target;
	b->stamp[i] = b->set + 1;
	return 0;
}

/* proxyDomain, parts[0] and search[0] + "." from the options (SPEC §2). */
static void
build_opts(struct build *b, const struct nds_build_opts *o)
{
	struct nds_table *t = b->t;
	const char *d = o->domain != NULL ? o->domain : "";
	const char *s0 = o->search0 != NULL ? o->search0 : "";
	size_t dlen = strlen(d), slen = strlen(s0), nslen, i;

	b->ns = o->namespace != NULL ? o->namespace : "";
	nslen = strlen(b->ns);
	dlen -= dlen > 0 && d[dlen - 1] == '.';
	for (; dlen > 0 && d[0] == '.'; dlen--)
		d++; /* ".svc.cluster.local" from an empty namespace */
	/* "ns1.svc.cluster.local" in namespace ns1 -> "svc.cluster.local" */
	if (nslen > 0 && dlen >= nslen && (dlen == nslen || d[nslen] == '.')) {
		for (i = 0; i < nslen && lower(d[i]) == lower(b->ns[i]); i++)
			;
		if (i == nslen) {
			d += nslen + (dlen > nslen);
			dlen -= nslen + (dlen > nslen);
		}
	}
	if (dlen <= NAME_LEN_MAX) {
		for (i = 0; i < dlen; i++)
			b->pd[i] = lower(d[i]);
		b->pdlen = dlen;
		for (i = 0; i < dlen && d[i] != '.'; i++)
			b->part0[i] = b->pd[i];
	}
	/* One trailing dot of search[0] is ignored (istio#30564). */
	slen -= slen > 0 && s0[slen - 1] == '.';
	if (slen > 0 && slen < NAME_LEN_MAX) {
		for (i = 0; i < slen; i++)
			t->s0dot[i] = lower(s0[i]);
		t->s0dot[slen] = '.';
		t->s0len = slen + 1;
	}
	for (i = 0; i < t->s0len; i++)
		t->s0dots += t->s0dot[i] == '.';
	/* The tails that turn a short form into its FQDN. */
	if (b->pdlen > 0) {
		memcpy(t->pdt, b->pd, b->pdlen);
		t->pdt[b->pdlen] = '.';
		t->pdtlen = b->pdlen + 1;
		t->hpdt = hash_rev(FNV_INIT, t->pdt, t->pdtlen);
		t->p0len = strlen(b->part0);
		memcpy(t->part0, b->part0, t->p0len);
	}
	if (b->pdlen > 0 && nslen <= NAME_LEN_MAX &&
	    canon_label(b->ns, nslen, true)) {
		memcpy(t->nst, b->ns, nslen);
		t->nst[nslen] = '.';
		memcpy(t->nst + nslen + 1, t->pdt, t->pdtlen);
		t->nstlen = nslen + 1 + t->pdtlen;
		t->hnst = hash_rev(FNV_INIT, t->nst, t->nstlen);
	}
}

enum {
	CLS_K8S = 1,   /* a Kubernetes entry */
	CLS_CANON = 2, /* its short forms are derived */
	CLS_FORM1 = 4, /* it has form 1 (own namespace) */
	CLS_NONE = 8,  /* it names nothing */
};

/* The per-entry build state of e with set. */
static void
entry_begin(struct build *b, uint32_t set, uint8_t cls)
{
	b->set = set;
	b->k8s = cls & CLS_K8S;
	b->canon = cls & CLS_CANON;
	b->form1 = cls & CLS_FORM1;
	b->fqdn = NONE;
}

/* What kind of entry b->v is (CLS_*): worked out once, in the counting
 * pass, and kept for the second. */
static uint8_t
entry_class(const struct build *b)
{
	uint8_t cls = 0;

	if (b->v.flags & NT_K8S) {
		cls |= CLS_K8S;
		if (entry_canonical(b)) {
			cls |= CLS_CANON;
			if (strcmp(b->v.ns, b->ns) == 0)
				cls |= CLS_FORM1;
		}
	}
	return cls;
}

/*
 * At most the names entry_names() makes of entry e, and the arena bytes
 * they need, without making them: its FQDN, the three short forms of a
 * Kubernetes entry that is not canonical, its alt hosts.  A canonical
 * entry (almost every one) emits exactly its FQDN and alt hosts.  The
 * slack of an estimate above the count is given back by
 * table_shrink() and area_trim().
 */
static int
entry_bound(struct build *b, const struct nt_entry *e)
{
	size_t names = 1, bytes = b->v.klen + 1, i, len;
	const char *alt;

	if (b->k8s &&
	    (b->canon || (b->pdlen > 0 && ends_with_label(b->v.key, b->v.klen,
	                                      b->pd, b->pdlen)))) {
		if (!b->canon) {
			names += 3;
			bytes += 3 * (b->v.sl + strlen(b->v.ns) +
			                 strlen(b->part0) + 3);
		}
		alt = e->nalt > 0 ? nt_alts(e, &b->v) : NULL;
		for (i = 0; i < e->nalt; i++) {
			len = strlen(alt);
			alt += len + 1;
			names++;
			bytes += len + 1;
		}
	}
	if (names > SIZE_MAX - b->emitted || bytes > SIZE_MAX - b->abytes)
		return -ENOMEM;
	b->emitted += names;
	b->abytes += bytes;
	return 0;
}

/*
 * Counting pass for one entry, in any order: its class (CLS_NONE if it
 * names nothing), and the addresses, names and arena bytes it adds.
 */
static int
entry_count(struct build *b, const struct nt_entry *e, uint8_t *cls)
{
	const uint8_t *p;
	uint8_t a[16], fam;
	size_t n4 = 0, n6 = 0, i;

	*cls = CLS_NONE;
	nt_view(b->t->src, e, &b->v);
	/* An Istio quirk, kept: a Kubernetes key with a dot names nothing. */
	if ((b->v.flags & NT_K8S) && b->v.key[b->v.klen - 1] == '.')
		return 0;
	for (i = 0, p = b->v.ips; i < e->nips; i++)
		if (ip_addr(&p, &fam, a) != NULL) {
			n4 += fam == IP_V4;
			n6 += fam == IP_V6;
		}
	/* No valid IP: skipped, queries for its names are forwarded. */
	if (n4 + n6 == 0)
		return 0;
	b->n4 += n4;
	b->n6 += n6;
	*cls = entry_class(b);
	entry_begin(b, NONE, *cls);
	return entry_bound(b, e);
}

/* Zeroed stamps for n records: in the builder's scratch if there is
 * room (build_scratch()), else on the heap. */
static size_t
stamp_bytes(size_t recs)
{
	return (recs > 0 ? recs : 1) * sizeof(uint32_t);
}

static uint32_t *
stamp_alloc(struct build *b, size_t n)
{
	if (b->stamp_room != NULL && n <= b->stamp_max / sizeof(uint32_t)) {
		memset(b->stamp_room, 0, stamp_bytes(n));
		return (uint32_t *)(void *)b->stamp_room;
	}
	return calloc(1, stamp_bytes(n));
}

/* Record, slot and arena space for what entry_count() counted. */
static int
build_alloc(struct build *b)
{
	struct nds_table *t = b->t;

	/* Slots at a load of at most 3/4; a slot holds 24 bits of record. */
	if (b->emitted >= SLOT_IDX - 1 || b->abytes >= UINT32_MAX - 1)
		return -ENOMEM;
	t->nslots = b->emitted + b->emitted / 3 + 1;
	t->rcap = b->emitted;
	/* The names go after the blocks; the area moves no more. */
	if (area_grow(t->src, t->src->used + b->abytes) != 0)
		return -ENOMEM;
	t->arena = t->src->area;
	if ((t->slots = calloc(t->nslots, sizeof(*t->slots))) == NULL ||
	    (t->recs = malloc((t->rcap > 0 ? t->rcap : 1) *
	                      sizeof(*t->recs))) == NULL ||
	    (t->s0len > 0 && (b->stamp = stamp_alloc(b, t->rcap)) == NULL))
		return -ENOMEM;
	/* The pools as the entries fill them; merges grow them further. */
	if (b->n4 > SIZE_MAX / 4 || b->n6 > SIZE_MAX / 16 ||
	    (b->n4 > 0 && (t->v4 = malloc(b->n4 * 4)) == NULL) ||
	    (b->n6 > 0 && (t->v6 = malloc(b->n6 * 16)) == NULL))
		return -ENOMEM;
	t->cap4 = b->n4;
	t->cap6 = b->n6;
	return 0;
}

/* Applies one entry that names something to the table, in key order. */
static int
entry_apply(struct build *b, const struct nt_entry *e, uint8_t cls)
{
	uint32_t set;
	int rc;

	nt_view(b->t->src, e, &b->v);
	b->off = e->off;
	if ((rc = entry_set(b->t, e, &b->v, &set)) != 0)
		return rc;
	if (set == NONE)
		return -EOVERFLOW; /* broken invariant: the count found one */
	b->t->sets[set].origin = e->off;
	entry_begin(b, set, cls);
	return entry_names(b, e, add_addr);
}

/* ---- derived short forms ----------------------------------------------- */

/* Length of short form f of the canonical FQDN of record r. */
static size_t
form_len(const struct nds_table *t, const struct nds_rec *r, unsigned f)
{
	const char *dot;

	if (f == 1) {
		dot = memchr(t->arena + r->name, '.', r->len);
		return dot != NULL ? (size_t)(dot - (t->arena + r->name)) + 1
		                   : 0;
	}
	return r->len - t->pdtlen + (f == 2 ? t->p0len + 1 : 0);
}

/* Whether record r has short form f. */
static inline bool
form_has(const struct nds_rec *r, unsigned f)
{
	return r->own != NONE && (f != 1 || (r->flags & REC_FORM1));
}

/*
 * The canonical FQDN record whose short form f is q (ndots: the dots of
 * q but its last), or NONE.  The FQDN's own field tells the forms apart:
 * a canonical FQDN is name.ns.<pd>. in exactly one way.
 */
static uint32_t
form_find(const struct nds_table *t, const char *q, size_t qlen, size_t ndots,
    unsigned *f)
{
	uint32_t r = NONE;
	size_t xl;

	if (!t->derive)
		return NONE;
	switch (ndots) {
	case 0: /* "name." + ns + "." + pd + "." */
		if (t->nstlen == 0)
			return NONE;
		*f = 1;
		r = rec_find(t, hash_rev(t->hnst, q, qlen), q, qlen, t->nst,
		    t->nstlen);
		break;
	case 1: /* "name.ns." + pd + "." */
		*f = 0;
		r = rec_find(t, hash_rev(t->hpdt, q, qlen), q, qlen, t->pdt,
		    t->pdtlen);
		break;
	case 2: /* "name.ns.<part0>." -> "name.ns." + pd + "." */
		if (qlen < t->p0len + 2 || q[qlen - t->p0len - 2] != '.' ||
		    memcmp(q + qlen - t->p0len - 1, t->part0, t->p0len) != 0)
			return NONE;
		*f = 2;
		xl = qlen - t->p0len - 1;
		r = rec_find(t, hash_rev(t->hpdt, q, xl), q, xl, t->pdt,
		    t->pdtlen);
		break;
	default:
		return NONE;
	}
	return r != NONE && form_has(&t->recs[r], *f) ? r : NONE;
}

static size_t
dots(const char *s, size_t len)
{
	size_t n = 0, i;

	for (i = 0; i < len; i++)
		n += s[i] == '.';
	return n;
}

/*
 * A stored name that is also a derived short form of canonical entry C
 * (record R's own): the precedence of add_addr() between C, which comes
 * in sorted order with every other emitter, and the stored emitters.  C
 * is Kubernetes (D5); between Kubernetes entries the later key wins
 * (D13), as it does for the CNAME, whose target is C's FQDN (D18; C's
 * short forms come before its alt hosts).
 */
static void
claim_rec(struct build *b, size_t i)
{
	struct nds_table *t = b->t;
	struct nds_rec *r = &t->recs[i];
	const char *name = t->arena + r->name;
	unsigned f = 0;
	uint32_t R, c;

	R = form_find(t, name, r->len, dots(name, r->len) - 1, &f);
	if (R == NONE)
		return;
	c = t->recs[R].own;
	if (!(r->flags & REC_K8S) || r->data < c) {
		r->data = c;
		r->flags |= REC_K8S;
	}
	if (t->s0len > 0 && r->len + t->s0len <= NAME_LEN_MAX &&
	    !ends_with_label(name, r->len, t->s0dot, t->s0len) &&
	    (b->stamp[i] == 0 || b->stamp[i] - 1 <= c))
		r->cn = R;
	t->recs[R].flags |= (uint8_t)(REC_EX << f);
}

/* D14: h + search[0] + "." is an address name, so h has no CNAME. */
static void
shadow(struct nds_table *t, const char *h, size_t hlen)
{
	uint32_t j = rec_find(t, hash_rev(FNV_INIT, h, hlen), h, hlen, "", 0);
	unsigned f = 0;

	if (j != NONE) {
		t->recs[j].cn = NONE;
		return;
	}
	if ((j = form_find(t, h, hlen, dots(h, hlen) - 1, &f)) != NONE)
		t->recs[j].flags |= (uint8_t)(REC_SHADOW << f);
}

/* Whether short form f (n bytes) of record r has a search CNAME. */
static bool
form_cname(const struct nds_table *t, const struct nds_rec *r, unsigned f,
    size_t n)
{
	return t->s0len > 0 && !(r->flags & (REC_SHADOW << f)) &&
	       n + t->s0len <= NAME_LEN_MAX &&
	       !ends_with_label(t->arena + r->name, n, t->s0dot, t->s0len);
}

/* D14 for record i: the names its stored and derived names shadow. */
static void
shadow_rec(struct nds_table *t, size_t i)
{
	const struct nds_rec *r = &t->recs[i];
	const char *name = t->arena + r->name;
	unsigned f;
	size_t n;

	if (r->len > t->s0len &&
	    ends_with_label(name, r->len, t->s0dot, t->s0len))
		shadow(t, name, r->len - t->s0len);
	for (f = 0; f < NFORMS && r->own != NONE; f++) {
		if (!form_has(r, f) || (r->flags & (REC_EX << f)))
			continue;
		n = form_len(t, r, f);
		if (n > t->s0len &&
		    ends_with_label(name, n, t->s0dot, t->s0len))
			shadow(t, name, n - t->s0len);
	}
}

/*
 * The generated names of record i, as listing keys (i << 3 | kind; kind
 * 0: the record's name, 1: its search CNAME, 2 + f: its short form f,
 * 5 + f: that form's search CNAME) at out[n..] if out is not NULL;
 * returns n plus their count.
 */
static size_t
rec_names(const struct nds_table *t, size_t i, uint32_t *out, size_t n)
{
	const struct nds_rec *r = &t->recs[i];
	unsigned f;

	if (out != NULL)
		out[n] = (uint32_t)i << 3;
	n++;
	if (r->cn != NONE) {
		if (out != NULL)
			out[n] = (uint32_t)i << 3 | 1;
		n++;
	}
	for (f = 0; f < NFORMS && r->own != NONE; f++) {
		if (!form_has(r, f) || (r->flags & (REC_EX << f)))
			continue;
		if (out != NULL)
			out[n] = (uint32_t)i << 3 | (2 + f);
		n++;
		if (!form_cname(t, r, f, form_len(t, r, f)))
			continue;
		if (out != NULL)
			out[n] = (uint32_t)i << 3 | (5 + f);
		n++;
	}
	return n;
}

/* Every generated name, as listing keys (rec_names()); returns the count. */
static size_t
names_list(const struct nds_table *t, uint32_t *out)
{
	size_t i, n = 0;

	for (i = 0; i < t->nrecs; i++)
		n = rec_names(t, i, out, n);
	return n;
}

/*
 * Sorting 100k keys with strcmp() through their pointers costs a cache
 * miss per comparison; most keys differ in their first 16 bytes, so those
 * are compared from the sort array itself (big-endian, zero after the NUL,
 * which keeps strcmp()'s unsigned order) and strcmp() only breaks ties.
 */
/*
 * 16 bytes, so that the merges move as little as they can; hi and lo
 * compare as one 128-bit number, whose low 32 bits (the index) only
 * matter when the 12 key bytes tie (sort_key_tie()).
 */
struct sort_key {
	uint64_t hi; /* key bytes 0-7 */
	uint64_t lo; /* key bytes 8-11, then the entry's index */
};

#define SORT_PREFIX 12 /* key bytes in hi and lo */

/* Key bytes off..off+n (n <= 8) as a big-endian number, 0 past len. */
static uint64_t
sort_word(const char *s, size_t len, size_t off, size_t n)
{
	uint64_t w = 0;
	size_t i;

	for (i = off; i < off + n; i++)
		w = w << 8 | (i < len ? (uint8_t)s[i] : 0);
	return w;
}

/* The key of entry e: its bytes, *len of them. */
static inline const char *
ent_key(const struct nds_nametable *nt, const struct nt_entry *e, size_t *len)
{
	const char *k = nt->area + e->off;

	*len = strlen(k) - 1;
	return k;
}

/* The sort key of entry e. */
static inline void
sort_key_of(struct sort_key *k, const struct nds_nametable *nt,
    const struct nt_entry *e)
{
	size_t len;
	const char *key = ent_key(nt, e, &len);

	k->hi = sort_word(key, len, 0, 8);
	k->lo = sort_word(key, len, 8, 4) << 32 | (uint32_t)(e - nt->ents);
}

/* The entry of sort key k. */
static inline struct nt_entry *
sort_key_entry(const struct sort_key *k, const struct nds_nametable *nt)
{
	return &nt->ents[(uint32_t)k->lo];
}

/* Whether x and y have the same 12 key bytes. */
static inline bool
sort_key_tie(const struct sort_key *x, const struct sort_key *y)
{
	return x->hi == y->hi && x->lo >> 32 == y->lo >> 32;
}

/* strcmp() order of a[0..al) and b[0..bl) (neither holds a NUL). */
static int
key_cmp_n(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	return c != 0 ? c : (al > bl) - (al < bl);
}

static int
sort_key_cmp(const void *a, const void *b, void *arg)
{
	const struct sort_key *x = a, *y = b;
	const char *kx, *ky;
	size_t lx, ly;

	if (!sort_key_tie(x, y))
		return x->hi != y->hi ? (x->hi < y->hi ? -1 : 1)
		                      : (x->lo < y->lo ? -1 : 1);
	if ((x->lo >> 32 & 0xff) == 0) /* both ended within the prefix */
		return 0;
	kx = ent_key(arg, sort_key_entry(x, arg), &lx);
	ky = ent_key(arg, sort_key_entry(y, arg), &ly);
	return key_cmp_n(kx + SORT_PREFIX, lx - SORT_PREFIX, ky + SORT_PREFIX,
	    ly - SORT_PREFIX);
}

static inline bool
sort_key_less(const struct sort_key *x, const struct sort_key *y,
    const struct nds_nametable *nt)
{
	if (!sort_key_tie(x, y))
		return x->hi != y->hi ? x->hi < y->hi : x->lo < y->lo;
	return sort_key_cmp(x, y, (void *)nt) < 0;
}

/*
 * Sorting k[0..n): insertion sort of runs of 16, then bottom-up merges
 * into room for n more.  qsort() calls its comparison through a pointer
 * and copies its elements byte-generically; this, with the first 12
 * bytes compared inline, takes a third of the time for 100k keys.  Keys
 * are distinct, so any correct sort gives the same order.  The merges
 * stop and resume anywhere (struct merge), so the builder can run them
 * in slices.
 */
static void
sort_run(struct sort_key *k, size_t lo, size_t n,
    const struct nds_nametable *nt)
{
	size_t hi = lo + 16 < n ? lo + 16 : n, i, j;
	struct sort_key x;

	for (i = lo + 1; i < hi; i++) {
		x = k[i];
		for (j = i; j > lo && sort_key_less(&x, &k[j - 1], nt); j--)
			k[j] = k[j - 1];
		k[j] = x;
	}
}

/* Where the merges stand: pass w merges runs [lo,mid) and [mid,hi) of
 * src into dst, read at i and j, written at o. */
struct merge {
	struct sort_key *k, *src, *dst;
	size_t n, w, lo, mid, hi, i, j, o;
	bool open; /* a pair is being merged */
	bool runs; /* the input came in long ordered runs */
};

static void
merge_init(struct merge *m, struct sort_key *k, size_t n, bool runs)
{
	memset(m, 0, sizeof(*m));
	m->runs = runs;
	m->k = m->src = k;
	m->dst = k + n;
	m->n = n;
	m->w = 16;
}

/* About budget keys more of the merges; true once k is sorted. */
static bool
merge_some(struct merge *m, size_t budget, const struct nds_nametable *nt)
{
	struct sort_key *src = m->src, *dst = m->dst, *t;
	size_t done = 0, i = m->i, j = m->j, o = m->o;

	while (m->w < m->n) {
		if (!m->open) {
			if (m->lo >= m->n) { /* the pass is done */
				t = m->src;
				m->src = src = m->dst;
				m->dst = dst = t;
				m->w *= 2;
				m->lo = 0;
				continue;
			}
			if (done >= budget)
				break;
			m->mid = m->lo + m->w < m->n ? m->lo + m->w : m->n;
			m->hi =
			    m->lo + 2 * m->w < m->n ? m->lo + 2 * m->w : m->n;
			i = m->lo;
			j = m->mid;
			o = m->lo;
			m->open = true;
		}
		if (m->runs) /* long runs in order: branches predict well */
			for (; i < m->mid && j < m->hi && done < budget; done++)
				dst[o++] = sort_key_less(&src[j], &src[i], nt)
				               ? src[j++]
				               : src[i++];
		for (; i < m->mid && j < m->hi && done < budget; done++) {
			/* Random order (a map's): a branch on it would miss
			 * half the time; a compare and a mask do not. */
			const struct sort_key *a = &src[i], *b = &src[j];
			unsigned __int128 ka =
			    (unsigned __int128)a->hi << 64 | a->lo;
			unsigned __int128 kb =
			    (unsigned __int128)b->hi << 64 | b->lo;
			uintptr_t tj = kb < ka;

			if (__builtin_expect(sort_key_tie(a, b), 0))
				tj = sort_key_cmp(b, a, (void *)nt) < 0;
			dst[o++] =
			    *(const struct sort_key *)((uintptr_t)a ^
			                               (((uintptr_t)a ^
			                                    (uintptr_t)b) &
			                                   (0 - tj)));
			j += tj;
			i += 1 - tj;
		}
		if (i < m->mid && j < m->hi)
			break; /* out of budget */
		memcpy(dst + o, src + i, (m->mid - i) * sizeof(*src));
		o += m->mid - i;
		memcpy(dst + o, src + j, (m->hi - j) * sizeof(*src));
		done += m->mid - i + m->hi - j;
		m->open = false;
		m->lo += 2 * m->w;
	}
	m->i = i;
	m->j = j;
	m->o = o;
	if (m->w < m->n)
		return false;
	if (m->src != m->k) /* the last pass wrote the upper half */
		memcpy(m->k, m->src, m->n * sizeof(*src));
	return true;
}

/*
 * Entries sorted by key sit anywhere in memory (a push's map order is
 * random): start loading the entry 16 ahead and its block 8 ahead, so
 * the apply pass does not wait on a cache miss per entry.
 */
static inline void
prefetch_entry(const struct nds_nametable *nt, struct nt_entry *const *order,
    size_t i, size_t n)
{
	if (i + 16 < n)
		__builtin_prefetch(order[i + 16]);
	if (i + 8 < n)
		__builtin_prefetch(nt->area + order[i + 8]->off);
}

static void
table_free(struct nds_table *t)
{
	if (t == NULL)
		return;
	free(t->recs);
	free(t->slots);
	free(t->sets);
	free(t->v4);
	free(t->v6);
	nds_nametable_destroy(t->src);
	free(t);
}

/*
 * The NameTable stays with the table for /debug/ndsz, read-only (nothing
 * is added to it again): its key index and key hashes are only needed to
 * add keys, so they go
 * before the build allocates (nt_unindex()), and the slack of the entry array
 * after (nt_keep()).
 */
static void
nt_unindex(struct nds_nametable *nt)
{
	free(nt->idx);
	nt->idx = NULL;
	nt->nslots = 0;
	free(nt->hashes);
	nt->hashes = NULL;
}

static void
nt_keep(struct nds_nametable *nt)
{
	void *p;

	if (nt->n > 0 && nt->n < nt->cap &&
	    (p = realloc(nt->ents, nt->n * sizeof(*nt->ents))) != NULL) {
		nt->ents = p;
		nt->cap = nt->n;
	}
	area_trim(nt);
}

/* Gives back what the counts over-estimated; failure is harmless. */
static void
table_shrink(struct nds_table *t)
{
	void *p;

	if (t->nrecs > 0 && t->nrecs < t->rcap &&
	    (p = realloc(t->recs, t->nrecs * sizeof(*t->recs))) != NULL)
		t->recs = p;
	if (t->nsets > 0 && t->nsets < t->scap &&
	    (p = realloc(t->sets, t->nsets * sizeof(*t->sets))) != NULL)
		t->sets = p;
	if (t->n4 > 0 && t->n4 < t->cap4 &&
	    (p = realloc(t->v4, t->n4 * 4)) != NULL)
		t->v4 = p;
	if (t->n6 > 0 && t->n6 < t->cap6 &&
	    (p = realloc(t->v6, t->n6 * 16)) != NULL)
		t->v6 = p;
}

/* ---- the builder: the compile in steps --------------------------------- */

/*
 * The phases of a build, each a loop that stops and resumes at bd->i:
 * the counting pass, in the order the entries are stored (which is the
 * order of their blocks, so it reads memory straight through), the
 * entries in key order (D5; a push's map order is random, so they are
 * sorted unless already in order), one allocation, the stored names in
 * key order, then what the derived names change.
 */
enum phase {
	PH_COUNT,   /* entry_count() */
	PH_ORDER,   /* order[] = every entry */
	PH_SORTED,  /* is order[] in key order already? */
	PH_KEYS,    /* the sort keys */
	PH_RUNS,    /* runs of 16 sorted */
	PH_MERGE,   /* the runs merged */
	PH_UNKEY,   /* order[] from the sorted keys */
	PH_ALLOC,   /* build_alloc() */
	PH_APPLY,   /* entry_apply() */
	PH_CLAIMS,  /* claim_rec() */
	PH_SHADOWS, /* shadow_rec() */
	PH_NAMES,   /* rec_names() */
	PH_FINISH,  /* the slack given back */
	PH_DONE,
};

/*
 * The builder's working arrays in a scratch buffer handed over with
 * nds_table_builder_scratch(): the class of each entry, then the order,
 * then the sort keys with their merge room, whose place the stamps take
 * once the keys are done.  Below SCR_MIN there is nothing to gain.
 */
#ifndef SCR_MIN
#define SCR_MIN (256u * 1024)
#endif

static size_t
scr_order_off(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

static size_t
scr_keys_off(size_t n)
{
	return scr_order_off(n) + n * sizeof(struct nt_entry *);
}

static size_t
scr_need(size_t n)
{
	return scr_keys_off(n) + 2 * n * sizeof(struct sort_key);
}

/* Gives the whole pages of p[0..len) back to the system (they read as
 * zeros if touched again); the rest of the buffer stays as it was. */
static void
scr_release(uint8_t *p, size_t len)
{
	uintptr_t a = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
	uintptr_t e = ((uintptr_t)p + len) & ~(uintptr_t)4095;

	if (e > a)
		(void)madvise((void *)a, e - a, MADV_DONTNEED);
}

struct nds_table_builder {
	struct build b;
	char *ns;                /* the namespace b.ns points to */
	struct nt_entry **order; /* the entries, in key order once sorted */
	size_t n;                /* entries */
	uint8_t *cls;            /* per stored entry: its class (CLS_*) */
	struct sort_key *k;      /* sort keys, and room for the merges */
	uint8_t *scr;            /* nds_table_builder_scratch()'s memory */
	size_t scr_len;          /* its bytes */
	struct merge m;
	size_t descents; /* keys before a smaller one, in arrival order */
	enum phase ph;
	bool begun; /* phase_begin() ran for ph */
	size_t i;   /* where the phase stands */
	int rc;     /* the error the build stopped at, or 0 */
};

/* Frees p unless it lives in the builder's scratch. */
static void
scr_put(const struct nds_table_builder *bd, void *p)
{
	if (bd->scr == NULL || (uint8_t *)p < bd->scr ||
	    (uint8_t *)p >= bd->scr + bd->scr_len)
		free(p);
}

void
nds_table_builder_free(struct nds_table_builder *bd)
{
	if (bd == NULL)
		return;
	table_free(bd->b.t);
	scr_put(bd, bd->b.stamp);
	scr_put(bd, bd->order);
	scr_put(bd, bd->cls);
	scr_put(bd, bd->k);
	free(bd->scr);
	free(bd->ns);
	free(bd);
}

void
nds_table_builder_scratch(struct nds_table_builder *bd, void *mem, size_t len)
{
	size_t need;

	if (bd == NULL || bd->scr != NULL || bd->ph != PH_COUNT || bd->begun ||
	    (need = scr_need(bd->n)) < SCR_MIN || len < need) {
		free(mem);
		return;
	}
	bd->scr = mem;
	bd->scr_len = len;
	scr_release(bd->scr + need, len - need);
}

int
nds_table_builder_create(struct nds_nametable *nt,
    const struct nds_build_opts *o, struct nds_table_builder **out, char *err,
    size_t errlen)
{
	struct nds_table_builder *bd = NULL;
	struct nds_build_opts own;
	const char *ns;
	size_t nslen;

	if (out != NULL)
		*out = NULL;
	if (nt == NULL || o == NULL || out == NULL) {
		nds_errf(err, errlen, "table build: missing argument");
		nds_nametable_destroy(nt);
		return -EINVAL;
	}
	ns = o->namespace != NULL ? o->namespace : "";
	nslen = strlen(ns) + 1;
	if ((bd = calloc(1, sizeof(*bd))) == NULL ||
	    (bd->b.t = calloc(1, sizeof(*bd->b.t))) == NULL ||
	    (bd->ns = malloc(nslen)) == NULL) {
		nds_errf(err, errlen, "table build: out of memory");
		nds_table_builder_free(bd);
		nds_nametable_destroy(nt);
		return -ENOMEM;
	}
	memcpy(bd->ns, ns, nslen);
	/* The table owns nt from here; its index goes first: the build has
	 * its own. */
	bd->b.t->src = nt;
	nt_unindex(nt);
	bd->b.t->refs = 1;
	bd->b.t->ttl = o->ttl;
	bd->b.t->entries = bd->n = nt->n;
	own = *o;
	own.namespace = bd->ns; /* the rest is copied by build_opts() */
	build_opts(&bd->b, &own);
	bd->ph = PH_COUNT;
	*out = bd;
	return 0;
}

/* Ends the current phase. */
static void
phase_next(struct nds_table_builder *bd, enum phase next)
{
	bd->ph = next;
	bd->begun = false;
	bd->i = 0;
}

/* What a phase needs before its first unit. */
static int
phase_begin(struct nds_table_builder *bd)
{
	size_t n = bd->n;

	switch (bd->ph) {
	case PH_COUNT:
		if (n == 0) {
			phase_next(bd, PH_FINISH);
			return 0;
		}
		if ((bd->cls = bd->scr != NULL ? bd->scr : malloc(n)) == NULL)
			return -ENOMEM;
		break;
	case PH_ORDER:
		/* One set per entry at most, before any merge. */
		if ((bd->order = bd->scr != NULL
		                     ? (void *)(bd->scr + scr_order_off(n))
		                     : malloc(n * sizeof(*bd->order))) ==
		        NULL ||
		    (bd->b.t->sets = malloc(n * sizeof(*bd->b.t->sets))) ==
		        NULL)
			return -ENOMEM;
		bd->b.t->scap = n;
		break;
	case PH_SORTED:
		bd->i = 1; /* order[0] has nothing before it */
		break;
	case PH_KEYS:
		if (n > SIZE_MAX / 2 / sizeof(*bd->k) ||
		    (bd->k = bd->scr != NULL
		                 ? (void *)(bd->scr + scr_keys_off(n))
		                 : malloc(2 * n * sizeof(*bd->k))) == NULL)
			return -ENOMEM;
		break;
	case PH_MERGE:
		merge_init(&bd->m, bd->k, n, bd->descents < n / 8);
		break;
	default:
		break;
	}
	return 0;
}

/*
 * Up to about *budget units of the current phase (an entry, a record or
 * a sort key each; an allocation is one), less what they used, and on to
 * the next phase when it ends.  0 or -errno.
 */
static int
phase_step(struct nds_table_builder *bd, size_t *budget)
{
	const struct nds_nametable *nt = bd->b.t->src;
	struct nds_table *t = bd->b.t;
	size_t n = bd->n, i = bd->i, all, end, l0, l1;
	const char *k0, *k1;
	int rc = 0;

	all = bd->ph >= PH_CLAIMS && bd->ph <= PH_NAMES ? t->nrecs : n;
	end = *budget < all - i ? i + *budget : all;
	switch (bd->ph) {
	case PH_COUNT:
		for (; i < end && rc == 0; i++)
			rc = entry_count(&bd->b, &nt->ents[i], &bd->cls[i]);
		break;
	case PH_ORDER:
		for (; i < end; i++)
			bd->order[i] = &t->src->ents[i];
		break;
	case PH_SORTED:
		for (; i < end; i++) {
			k0 = ent_key(nt, bd->order[i - 1], &l0);
			k1 = ent_key(nt, bd->order[i], &l1);
			if (key_cmp_n(k0, l0, k1, l1) >= 0)
				break;
		}
		*budget -= i - bd->i;
		if (i < end) /* out of order: sort */
			phase_next(bd, PH_KEYS);
		else if (i == n) /* in order already */
			phase_next(bd, PH_ALLOC);
		else
			bd->i = i;
		return 0;
	case PH_KEYS:
		for (; i < end; i++) {
			sort_key_of(&bd->k[i], nt, bd->order[i]);
			bd->descents +=
			    i > 0 && (bd->k[i].hi < bd->k[i - 1].hi ||
			                 (bd->k[i].hi == bd->k[i - 1].hi &&
			                     bd->k[i].lo < bd->k[i - 1].lo));
		}
		break;
	case PH_RUNS:
		for (; i < end; i += 16)
			sort_run(bd->k, i, n, nt);
		i = i < n ? i : n;
		break;
	case PH_MERGE:
		if (!merge_some(&bd->m, *budget, nt)) {
			*budget = 0;
			return 0;
		}
		*budget = *budget > n ? *budget - n : 0;
		phase_next(bd, PH_UNKEY);
		return 0;
	case PH_UNKEY:
		for (; i < end; i++)
			bd->order[i] = sort_key_entry(&bd->k[i], nt);
		if (i == n) {
			scr_put(bd, bd->k);
			bd->k = NULL;
		}
		break;
	case PH_ALLOC:
		if (bd->scr != NULL) { /* the keys are done: stamps there */
			bd->b.stamp_room = bd->scr + scr_keys_off(n);
			bd->b.stamp_max = scr_need(n) - scr_keys_off(n);
		}
		if ((rc = build_alloc(&bd->b)) == 0)
			phase_next(bd, PH_APPLY);
		if (rc == 0 && bd->scr != NULL) { /* the rest goes back */
			size_t used = (uint8_t *)bd->b.stamp == bd->b.stamp_room
			                  ? stamp_bytes(t->rcap)
			                  : 0;

			scr_release(bd->b.stamp_room + used,
			    bd->b.stamp_max - used);
		}
		*budget -= 1;
		return rc;
	case PH_APPLY:
		for (; i < end && rc == 0; i++) {
			uint8_t cls = bd->cls[bd->order[i] - nt->ents];

			prefetch_entry(nt, bd->order, i, n);
			if (!(cls & CLS_NONE))
				rc = entry_apply(&bd->b, bd->order[i], cls);
		}
		break;
	case PH_CLAIMS:
		for (; i < end && t->derive; i++) {
			if (i + 8 < end)
				__builtin_prefetch(t->arena +
				                   t->recs[i + 8].name);
			claim_rec(&bd->b, i);
		}
		i = t->derive ? i : all;
		break;
	case PH_SHADOWS:
		for (; i < end && t->s0len > 0; i++) {
			if (i + 8 < end)
				__builtin_prefetch(t->arena +
				                   t->recs[i + 8].name);
			shadow_rec(t, i);
		}
		i = t->s0len > 0 ? i : all;
		break;
	case PH_NAMES:
		for (; i < end; i++)
			t->names = rec_names(t, i, NULL, t->names);
		break;
	case PH_FINISH:
		scr_put(bd, bd->cls);
		bd->cls = NULL;
		scr_put(bd, bd->order);
		bd->order = NULL;
		scr_put(bd, bd->b.stamp);
		bd->b.stamp = NULL;
		free(bd->scr);
		bd->scr = NULL;
		table_shrink(t);
		nt_keep(t->src);
		t->arena = t->src->area; /* a heap area may move (AREA_HEAP) */
		phase_next(bd, PH_DONE);
		*budget -= 1;
		return 0;
	case PH_DONE:
		return 0;
	}
	if (rc != 0)
		return rc;
	*budget -= i - bd->i < *budget ? i - bd->i : *budget;
	bd->i = i;
	if (i >= all)
		phase_next(bd, bd->ph + 1);
	return 0;
}

int
nds_table_builder_step(struct nds_table_builder *bd, size_t budget,
    struct nds_table **out, char *err, size_t errlen)
{
	int rc = 0;

	if (out != NULL)
		*out = NULL;
	if (bd == NULL || out == NULL) {
		nds_errf(err, errlen, "table build: missing argument");
		return -EINVAL;
	}
	if (bd->ph == PH_DONE) {
		nds_errf(err, errlen, "table build: the table was handed out");
		return -EINVAL;
	}
	if (budget == 0)
		budget = 1;
	while (bd->rc == 0 && bd->ph != PH_DONE && budget > 0) {
		if (!bd->begun) {
			bd->begun = true;
			if ((rc = phase_begin(bd)) != 0)
				break;
		}
		if ((rc = phase_step(bd, &budget)) != 0)
			break;
	}
	if (rc != 0)
		bd->rc = rc;
	if (bd->rc != 0) {
		nds_errf(err, errlen, "table build: %s",
		    bd->rc == -ENOMEM ? "out of memory or too many names"
		                      : strerror(-bd->rc));
		return bd->rc;
	}
	if (bd->ph != PH_DONE)
		return 1;
	*out = bd->b.t;
	bd->b.t = NULL;
	return 0;
}

int
nds_table_build(struct nds_nametable *nt, const struct nds_build_opts *o,
    struct nds_table **out, char *err, size_t errlen)
{
	struct nds_table_builder *bd;
	int rc;

	if ((rc = nds_table_builder_create(nt, o, &bd, err, errlen)) != 0) {
		if (out != NULL)
			*out = NULL;
		return rc;
	}
	rc = nds_table_builder_step(bd, SIZE_MAX, out, err, errlen);
	nds_table_builder_free(bd);
	return rc;
}

struct nds_table *
nds_table_ref(struct nds_table *t)
{
	if (t != NULL)
		t->refs++;
	return t;
}

void
nds_table_unref(struct nds_table *t)
{
	if (t != NULL && --t->refs == 0)
		table_free(t);
}

uint32_t
nds_table_ttl(const struct nds_table *t)
{
	return t->ttl;
}

size_t
nds_table_entries(const struct nds_table *t)
{
	return t->entries;
}

size_t
nds_table_names(const struct nds_table *t)
{
	return t->names;
}

/* ---- lookup (SPEC §3 step 4) ------------------------------------------- */

/* What answers a name: an address set, or a CNAME to a record. */
struct hit {
	uint32_t set;    /* the addresses (of the target if a CNAME) */
	uint32_t target; /* CNAME target record, or NONE */
};

/* The address name q (hash: its hash, ndots: its dots but the last). */
static bool
addr_find(const struct nds_table *t, const char *q, size_t qlen, uint32_t hash,
    size_t ndots, struct hit *h)
{
	uint32_t i = rec_find(t, hash, q, qlen, "", 0);
	unsigned f = 0;

	h->target = NONE;
	if (i != NONE) {
		h->set = t->recs[i].data;
		return true;
	}
	if ((i = form_find(t, q, qlen, ndots, &f)) == NONE)
		return false;
	h->set = t->recs[i].own;
	return true;
}

/* The search CNAME whose owner is q[0..cut) + search[0] + "." (chash:
 * the hash of q[0..cut), ndots: its dots but the last). */
static bool
cname_find(const struct nds_table *t, const char *q, size_t cut, uint32_t chash,
    size_t ndots, struct hit *h)
{
	uint32_t i = rec_find(t, chash, q, cut, "", 0);
	unsigned f = 0;

	if (i != NONE) {
		if ((h->target = t->recs[i].cn) == NONE)
			return false;
	} else if ((i = form_find(t, q, cut, ndots, &f)) != NONE &&
	           !ends_with_label(q, cut, t->s0dot, t->s0len)) {
		h->target = i; /* a short form's CNAME names the FQDN (D18) */
	} else {
		return false;
	}
	h->set = t->recs[h->target].data;
	return true;
}

/* Fills ans from h, reached by qname. */
static void
answer_fill(const struct nds_table *t, const struct hit *h, const char *qname,
    size_t qlen, struct nds_answer *ans)
{
	const struct nds_addrset *s = &t->sets[h->set];
	size_t s0 = t->s0len;

	memset(ans, 0, sizeof(*ans));
	if (h->target != NONE) {
		const struct nds_rec *r = &t->recs[h->target];

		ans->target = t->arena + r->name;
		ans->target_len = r->len;
		/*
		 * D17: a wildcard target becomes the concrete name, the query
		 * minus its search[0] suffix (a CNAME owner always ends in
		 * one); the stored "*.x." name still owns the addresses.
		 */
		if (r->len >= 2 && ans->target[0] == '*' &&
		    ans->target[1] == '.' && qlen > s0 &&
		    qname[qlen - s0 - 1] == '.' &&
		    memcmp(qname + qlen - s0, t->s0dot, s0) == 0) {
			ans->target = qname;
			ans->target_len = qlen - s0;
		}
	}
	ans->v4 = s->n4 > 0 ? t->v4 + (size_t)s->v4 * 4 : NULL;
	ans->n4 = s->n4;
	ans->v6 = s->n6 > 0 ? t->v6 + (size_t)s->v6 * 16 : NULL;
	ans->n6 = s->n6;
	ans->origin = t->arena + s->origin;
	ans->origin_len = strlen(ans->origin) - 1;
}

/* Where the search[0] suffix starts in q, if h = q minus it can be an
 * address name (it ends with a dot); else 0. */
static inline size_t
s0_cut(const struct nds_table *t, const char *q, size_t qlen)
{
	size_t s0 = t->s0len;

	if (s0 == 0 || qlen <= s0 || q[qlen - s0 - 1] != '.' ||
	    memcmp(q + qlen - s0, t->s0dot, s0) != 0)
		return 0;
	return qlen - s0;
}

int
nds_table_lookup(const struct nds_table *t, const char *qname, size_t qlen,
    struct nds_answer *ans)
{
	uint32_t probe[NAME_LEN_MAX];  /* hash of "*." + qname[at[k]..] */
	uint32_t cprobe[NAME_LEN_MAX]; /* hash of "*." + qname[at[k]..cut) */
	uint8_t at[NAME_LEN_MAX];
	uint32_t h = FNV_INIT, hc = FNV_INIT, i;
	size_t n = 0, k, cut;
	struct hit hit;

	if (t == NULL || qname == NULL || ans == NULL)
		return -EINVAL;
	if (qlen == 0 || qlen > NAME_LEN_MAX)
		return -ENOENT;
	cut = s0_cut(t, qname, qlen);
	/*
	 * One pass from the right hashes every suffix, and every suffix
	 * minus search[0].  Each dot that is not the final one starts a
	 * probe; the root "*." never is one.
	 */
	for (k = qlen; k-- > 0;) {
		if (qname[k] == '.' && k + 1 < qlen) {
			probe[n] = (((h ^ '.') * FNV_PRIME) ^ '*') * FNV_PRIME;
			cprobe[n] =
			    (((hc ^ '.') * FNV_PRIME) ^ '*') * FNV_PRIME;
			at[n++] = (uint8_t)(k + 1);
		}
		h = (h ^ (uint8_t)qname[k]) * FNV_PRIME;
		if (k < cut)
			hc = (hc ^ (uint8_t)qname[k]) * FNV_PRIME;
	}
	if (addr_find(t, qname, qlen, h, n, &hit) ||
	    (cut > 0 && cname_find(t, qname, cut, hc, n - t->s0dots, &hit)))
		goto found;
	/*
	 * The most specific wildcard (longest suffix) was found last.  A
	 * wildcard's search CNAME needs the suffix to hold all of search[0]
	 * (a shorter one leaves "*" before it, which is not a name).  No
	 * derived short form starts with "*" (entry_canonical()).
	 */
	for (k = n; k-- > 0;) {
		i = rec_find(t, probe[k], "*.", 2, qname + at[k], qlen - at[k]);
		if (i != NONE) {
			hit.set = t->recs[i].data;
			hit.target = NONE;
			goto found;
		}
		if (cut < at[k])
			continue;
		i = rec_find(t, cprobe[k], "*.", 2, qname + at[k], cut - at[k]);
		if (i != NONE && (hit.target = t->recs[i].cn) != NONE) {
			hit.set = t->recs[hit.target].data;
			goto found;
		}
	}
	return -ENOENT;
found:
	answer_fill(t, &hit, qname, qlen, ans);
	return 0;
}

/* ---- listing (/debug/table, --dump-table, /debug/ndsz) ----------------- */

const struct nds_nametable *
nds_table_source(const struct nds_table *t)
{
	return t != NULL ? t->src : NULL;
}

/* The name of listing key x (see names_list()): bytes at the record's
 * name, how many, and whether search[0] + "." follows. */
static const char *
key_name(const struct nds_table *t, uint32_t x, size_t *len, bool *cname)
{
	const struct nds_rec *r = &t->recs[x >> 3];
	unsigned kind = x & 7;

	*cname = kind == 1 || kind >= 5;
	*len = kind < 2 ? r->len : form_len(t, r, (kind - 2) % NFORMS);
	return t->arena + r->name;
}

/* qsort_r() order of listing keys: by whole name. */
static int
key_cmp(const void *a, const void *b, void *arg)
{
	const struct nds_table *t = arg;
	size_t la, lb;
	bool ca, cb;
	const char *na = key_name(t, *(const uint32_t *)a, &la, &ca);
	const char *nb = key_name(t, *(const uint32_t *)b, &lb, &cb);

	return cat_cmp(na, la, t->s0dot, ca ? t->s0len : 0, nb, lb, t->s0dot,
	    cb ? t->s0len : 0);
}

/* fn for each of the n addresses of family af at pool, text into text. */
static int
rec_addrs(struct nds_record *out, char *text, int af, const uint8_t *pool,
    uint32_t n, int (*fn)(const struct nds_record *r, void *arg), void *arg)
{
	size_t sz = af == AF_INET ? 4 : 16;
	uint32_t k;
	int rc;

	out->type = af == AF_INET ? "A" : "AAAA";
	out->data = text;
	for (k = 0; k < n; k++) {
		if (inet_ntop(af, pool + k * sz, text, INET6_ADDRSTRLEN) ==
		    NULL)
			return -EINVAL; /* cannot happen: the buffer fits */
		if ((rc = fn(out, arg)) != 0)
			return rc;
	}
	return 0;
}

/* fn for every record of name (NUL terminated): A, then AAAA, or CNAME. */
static int
rec_emit(const struct nds_table *t, const char *name, const struct hit *h,
    int (*fn)(const struct nds_record *r, void *arg), void *arg)
{
	const struct nds_addrset *s = &t->sets[h->set];
	struct nds_record out = {.name = name, .ttl = t->ttl};
	char data[NAME_LEN_MAX + 1], obuf[NAME_LEN_MAX + 1], *origin = obuf;
	const char *key = t->arena + s->origin;
	size_t klen = strlen(key) - 1;
	int rc;

	/* The key is followed by a dot in its block: a copy without. */
	if (klen >= sizeof(obuf) && (origin = malloc(klen + 1)) == NULL)
		return -ENOMEM;
	memcpy(origin, key, klen);
	origin[klen] = '\0';
	out.origin = origin;
	if (h->target != NONE) {
		const struct nds_rec *r = &t->recs[h->target];

		memcpy(data, t->arena + r->name, r->len);
		data[r->len] = '\0';
		out.type = "CNAME";
		out.data = data;
		rc = fn(&out, arg);
	} else if ((rc = rec_addrs(&out, data, AF_INET,
	                s->n4 > 0 ? t->v4 + (size_t)s->v4 * 4 : NULL, s->n4, fn,
	                arg)) == 0) {
		/* (a table without IPv6 has no v6 pool: no offset to NULL) */
		rc = rec_addrs(&out, data, AF_INET6,
		    s->n6 > 0 ? t->v6 + (size_t)s->v6 * 16 : NULL, s->n6, fn,
		    arg);
	}
	if (origin != obuf)
		free(origin);
	return rc;
}

/* The records of one name, looked up: lower-cased, trailing dot added. */
static int
rec_filter(const struct nds_table *t, const char *filter,
    int (*fn)(const struct nds_record *r, void *arg), void *arg)
{
	char q[NAME_LEN_MAX + 1];
	size_t len = strlen(filter), i, cut, n;
	struct hit h;

	len -= len > 0 && filter[len - 1] == '.';
	if (len == 0 || len + 1 > NAME_LEN_MAX)
		return 0;
	for (i = 0; i < len; i++)
		q[i] = lower(filter[i]);
	q[len++] = '.';
	q[len] = '\0';
	cut = s0_cut(t, q, len);
	n = dots(q, len) - 1;
	if (addr_find(t, q, len, hash_rev(FNV_INIT, q, len), n, &h) ||
	    (cut > 0 && cname_find(t, q, cut, hash_rev(FNV_INIT, q, cut),
	                    n - t->s0dots, &h)))
		return rec_emit(t, q, &h, fn, arg);
	return 0;
}

int
nds_table_foreach_record(const struct nds_table *t, const char *filter,
    int (*fn)(const struct nds_record *r, void *arg), void *arg)
{
	char name[NAME_LEN_MAX + 1];
	uint32_t *order;
	size_t i, n, len;
	struct hit h;
	const char *p;
	bool cname;
	int rc = 0;

	if (t == NULL || fn == NULL)
		return -EINVAL;
	if (filter != NULL)
		return rec_filter(t, filter, fn, arg);
	if (t->names == 0)
		return 0;
	/* Names are unique, so sorting one index of them sorts the records;
	 * derived names are composed on the fly. */
	if ((order = malloc(t->names * sizeof(*order))) == NULL)
		return -ENOMEM;
	n = names_list(t, order);
	qsort_r(order, n, sizeof(*order), key_cmp, (void *)t);
	for (i = 0; i < n && rc == 0; i++) {
		const struct nds_rec *r = &t->recs[order[i] >> 3];
		unsigned kind = order[i] & 7;

		p = key_name(t, order[i], &len, &cname);
		memcpy(name, p, len);
		if (cname)
			memcpy(name + len, t->s0dot, t->s0len);
		name[len + (cname ? t->s0len : 0)] = '\0';
		h.set = r->data;
		h.target = NONE;
		if (kind == 1)
			h.target = r->cn;
		else if (kind >= 2 && kind < 5)
			h.set = r->own;
		else if (kind >= 5)
			h.target = order[i] >> 3;
		if (h.target != NONE)
			h.set = t->recs[h.target].data;
		rc = rec_emit(t, name, &h, fn, arg);
	}
	free(order);
	return rc;
}
