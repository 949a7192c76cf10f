/*
 * table.c: the NameTable collection and the compiled lookup table
 * (SPEC §1-§3).  No protobuf, no libevent, no JSON, no wire format.
 *
 * Layout of a compiled table (sized for 100k services, ~600k names):
 *
 *   arena  one byte array holding every address name ("foo.ns.", no NUL)
 *          (origins point at the keys in the kept NameTable).  A
 *          short form that is a prefix of its entry's FQDN ("foo.ns." of
 *          "foo.ns.svc.cluster.local.") shares the FQDN's bytes;
 *   recs   one 20-byte record per address name: its address set and the
 *          target of its search CNAME.  Search CNAMEs (name + search[0] +
 *          ".", half of all names) are not stored: a lookup that misses
 *          strips search[0] and finds the address name instead;
 *   slots  open addressing over recs (record index + 1, 0 = free), load
 *          <= 3/4, linear probing; sized once, from a counting pass;
 *   sets   one address set per entry (its v4 and v6 lists, stored once
 *          in the v4/v6 pools, and its key); merged sets only on
 *          non-Kubernetes collisions.
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

#include "nds/nds.h"
#include "nds/nds_impl.h"

#define NAME_LEN_MAX 255 /* longest generated name, trailing dot included */
#define NONE UINT32_MAX  /* no record */
#define FNV_INIT 2166136261u
#define FNV_PRIME 16777619u

/* One NameTable entry; its strings live in the NameTable's chunks. */
struct nt_entry {
	const char *key;
	const char *registry; /* shared with other entries */
	const char *shortname;
	const char *ns;   /* shared with other entries */
	const char **ips; /* nips ips, then nalt alt hosts */
	uint32_t nips;
	uint32_t nalt;
	uint32_t hash; /* hash_rev() of the key */
};

#define NT_INTERN 32 /* cached registry and namespace strings */

struct nt_chunk;

struct nds_nametable {
	struct nt_entry *ents; /* n entries in insertion order */
	size_t n;
	size_t cap;
	uint32_t *idx;           /* open addressing: ents index + 1, 0 = free */
	size_t nslots;           /* power of two, or 0 */
	struct nt_chunk *chunks; /* strings; the current one first */
	char *cur;               /* free space in the current one */
	size_t left;             /* bytes at cur */
	const char *intern[NT_INTERN]; /* earlier registries, namespaces */
};

enum {
	REC_K8S = 1, /* address record of a Kubernetes entry */
};

struct nds_rec {
	uint32_t hash;  /* hash_rev() of the name */
	uint32_t name;  /* arena offset of the name (no NUL) */
	uint32_t data;  /* address set */
	uint32_t cn;    /* target record of name + search[0] + ".", or NONE */
	uint8_t len;    /* bytes at name */
	uint8_t flags;  /* REC_* */
	uint16_t spare; /* padding */
};

struct nds_addrset {
	uint32_t v4;        /* first address in the v4 pool */
	uint32_t n4;        /* number of IPv4 addresses */
	uint32_t v6;        /* first address in the v6 pool */
	uint32_t n6;        /* number of IPv6 addresses */
	const char *origin; /* the NameTable key (in the kept NameTable) */
};

struct nds_table {
	unsigned refs;                /* holders; freed at 0 */
	uint32_t ttl;                 /* TTL of synthesized records */
	size_t entries;               /* NameTable keys */
	size_t names;                 /* generated names, CNAMEs included */
	char *arena;                  /* names and keys (keys NUL ended) */
	size_t alen, acap;            /* bytes used, allocated */
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
	struct nds_nametable *src;    /* what it was built from (/debug/ndsz) */
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

/* Mixes FNV's weak bits (murmur3's finalizer), then maps the hash onto
 * [0, nslots) by multiplication (any size, no power of two needed). */
static inline size_t
hash_slot(uint32_t h, size_t nslots)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return (size_t)(((uint64_t)h * nslots) >> 32);
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
 * Entries live in one array (nt->ents) and their strings in chunks that
 * never move, so the pointers nds_nametable_foreach() hands out stay
 * valid.  One block per entry: its ips and alt hosts pointer array, then
 * the strings.  Registries and namespaces repeat (a few distinct values
 * over 100k entries): a small cache hands out an earlier copy instead.
 */
#define NT_CHUNK (64u * 1024) /* bytes per string chunk */

struct nt_chunk {
	struct nt_chunk *next;
	char data[];
};

/* Rounds n up to a multiple of the pointer size; SIZE_MAX on overflow. */
static size_t
align_ptr(size_t n)
{
	size_t a = sizeof(void *);

	return n > SIZE_MAX - (a - 1) ? SIZE_MAX : (n + a - 1) & ~(a - 1);
}

/* size bytes, pointer aligned, from the chunks; NULL = out of memory. */
static void *
nt_alloc(struct nds_nametable *nt, size_t size)
{
	struct nt_chunk *c;
	size_t csize;
	void *p;

	if ((size = align_ptr(size)) == SIZE_MAX ||
	    size > SIZE_MAX - sizeof(*c))
		return NULL;
	if (size <= nt->left) {
		p = nt->cur;
		nt->cur += size;
		nt->left -= size;
		return p;
	}
	/* A large block gets a chunk of its own; the current one goes on. */
	csize = size > NT_CHUNK / 4 ? size : NT_CHUNK;
	if ((c = malloc(sizeof(*c) + csize)) == NULL)
		return NULL;
	if (csize == size && nt->chunks != NULL) {
		c->next = nt->chunks->next;
		nt->chunks->next = c;
		return c->data;
	}
	c->next = nt->chunks;
	nt->chunks = c;
	nt->cur = c->data + size;
	nt->left = csize - size;
	return c->data;
}

static int
size_add(size_t *acc, size_t n)
{
	if (n > SIZE_MAX - *acc)
		return -ENOMEM;
	*acc += n;
	return 0;
}

static const char *
pack_str(char **cur, const char *s)
{
	size_t len = strlen(s != NULL ? s : "") + 1;
	char *p = *cur;

	memcpy(p, s != NULL ? s : "", len);
	*cur += len;
	return p;
}

static int
strv_size(size_t *acc, const char *const *v, size_t n)
{
	size_t i;

	if (n > 0 && v == NULL)
		return -EINVAL;
	if (n > UINT32_MAX || size_add(acc, n * sizeof(char *)) != 0)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (size_add(acc, strlen(v[i] != NULL ? v[i] : "") + 1) != 0)
			return -ENOMEM;
	return 0;
}

/* An earlier copy of s from the cache, or NULL. */
static const char *
nt_intern_get(const struct nds_nametable *nt, const char *s, size_t *slot)
{
	const char *c;

	s = s != NULL ? s : "";
	if (s[0] == '\0')
		return "";
	*slot = hash_rev(FNV_INIT, s, strlen(s)) % NT_INTERN;
	c = nt->intern[*slot];
	return c != NULL && strcmp(c, s) == 0 ? c : NULL;
}

/* Copies key and info into the chunks; *e is the new entry. */
static int
nt_entry_new(struct nds_nametable *nt, const char *key,
    const struct nds_nameinfo *in, struct nt_entry *e)
{
	size_t size = 0, i, rslot = 0, nslot = 0;
	const char *reg = nt_intern_get(nt, in->registry, &rslot);
	const char *ns = nt_intern_get(nt, in->ns, &nslot);
	const char **strs;
	char *cur;
	int rc;

	if ((rc = strv_size(&size, in->ips, in->nips)) != 0 ||
	    (rc = strv_size(&size, in->alt_hosts, in->nalt)) != 0)
		return rc;
	if (size_add(&size, strlen(key) + 1) != 0 ||
	    size_add(&size, strlen(in->shortname ? in->shortname : "") + 1) ||
	    (reg == NULL && size_add(&size, strlen(in->registry) + 1)) ||
	    (ns == NULL && size_add(&size, strlen(in->ns) + 1)))
		return -ENOMEM;
	if ((strs = nt_alloc(nt, size)) == NULL)
		return -ENOMEM;
	cur = (char *)(strs + in->nips + in->nalt);
	e->key = pack_str(&cur, key);
	e->shortname = pack_str(&cur, in->shortname);
	if (reg == NULL)
		reg = nt->intern[rslot] = pack_str(&cur, in->registry);
	if (ns == NULL)
		ns = nt->intern[nslot] = pack_str(&cur, in->ns);
	e->registry = reg;
	e->ns = ns;
	for (i = 0; i < in->nips; i++)
		strs[i] = pack_str(&cur, in->ips[i]);
	for (i = 0; i < in->nalt; i++)
		strs[in->nips + i] = pack_str(&cur, in->alt_hosts[i]);
	e->ips = strs;
	e->nips = (uint32_t)in->nips;
	e->nalt = (uint32_t)in->nalt;
	e->hash = hash_rev(FNV_INIT, e->key, strlen(e->key));
	return 0;
}

int
nds_nametable_create(struct nds_nametable **out)
{
	if ((*out = calloc(1, sizeof(**out))) == NULL)
		return -ENOMEM;
	return 0;
}

/* Slot of key in nt->idx: its entry, or the free slot where it goes. */
static size_t
nt_slot(const struct nds_nametable *nt, const char *key, uint32_t hash)
{
	size_t s = hash_slot(hash, nt->nslots);

	while (nt->idx[s] != 0) {
		const struct nt_entry *e = &nt->ents[nt->idx[s] - 1];

		if (e->hash == hash && strcmp(e->key, key) == 0)
			break;
		s = (s + 1) & (nt->nslots - 1);
	}
	return s;
}

static int
nt_rehash(struct nds_nametable *nt)
{
	size_t nslots = nt->nslots != 0 ? nt->nslots * 2 : 64, i;
	uint32_t *idx;

	/* A kept table's NameTable has no index (nt_keep()). */
	while (nslots < SIZE_MAX / 20 && (nt->n + 1) * 10 > nslots * 7)
		nslots *= 2;
	if (nslots > SIZE_MAX / 2 / sizeof(*idx) || nt->n >= UINT32_MAX - 1)
		return -ENOMEM;
	if ((idx = calloc(nslots, sizeof(*idx))) == NULL)
		return -ENOMEM;
	free(nt->idx);
	nt->idx = idx;
	nt->nslots = nslots;
	for (i = 0; i < nt->n; i++)
		idx[nt_slot(nt, nt->ents[i].key, nt->ents[i].hash)] =
		    (uint32_t)i + 1;
	return 0;
}

int
nds_nametable_add(struct nds_nametable *nt, const char *key,
    const struct nds_nameinfo *info)
{
	static const struct nds_nameinfo empty;
	struct nt_entry e;
	size_t s;
	int rc;

	if (nt == NULL || key == NULL || key[0] == '\0')
		return -EINVAL;
	if ((rc = nt_entry_new(nt, key, info != NULL ? info : &empty, &e)) != 0)
		return rc;
	/* A failure here leaves the copy unused in its chunk. */
	if (((nt->n + 1) * 10 > nt->nslots * 7 && (rc = nt_rehash(nt)) != 0) ||
	    (rc = grow((void **)&nt->ents, &nt->cap, nt->n + 1,
	         sizeof(*nt->ents))) != 0)
		return rc;
	s = nt_slot(nt, key, e.hash);
	if (nt->idx[s] != 0) {
		/* Duplicate key: the last one wins, as in protobuf maps. */
		nt->ents[nt->idx[s] - 1] = e;
		return 0;
	}
	nt->ents[nt->n] = e;
	nt->idx[s] = (uint32_t)++nt->n;
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
	size_t i;
	int rc;

	for (i = 0; nt != NULL && i < nt->n; i++) {
		const struct nt_entry *e = &nt->ents[i];
		struct nds_nameinfo in = {.ips = e->ips,
		    .nips = e->nips,
		    .registry = e->registry,
		    .shortname = e->shortname,
		    .ns = e->ns,
		    .alt_hosts = e->ips + e->nips,
		    .nalt = e->nalt};

		if ((rc = fn(e->key, &in, arg)) != 0)
			return rc;
	}
	return 0;
}

void
nds_nametable_destroy(struct nds_nametable *nt)
{
	struct nt_chunk *c;

	if (nt == NULL)
		return;
	while ((c = nt->chunks) != NULL) {
		nt->chunks = c->next;
		free(c);
	}
	free(nt->ents);
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

/* Address record of the name p + s (hash = its name hash), or NONE. */
static uint32_t
rec_find(const struct nds_table *t, uint32_t hash, const char *p, size_t plen,
    const char *s, size_t slen)
{
	size_t i;

	if (t->nslots == 0)
		return NONE;
	for (i = hash_slot(hash, t->nslots); t->slots[i] != 0;
	     i = i + 1 < t->nslots ? i + 1 : 0) {
		const struct nds_rec *r = &t->recs[t->slots[i] - 1];

		if (r->hash == hash &&
		    name_eq(t->arena + r->name, r->len, p, plen, s, slen))
			return t->slots[i] - 1;
	}
	return NONE;
}

/* Appends a new record and indexes it (build_alloc() sized both). */
static int
rec_new(struct nds_table *t, const struct nds_rec *r, uint32_t *out)
{
	size_t i;

	if (t->nrecs >= t->rcap)
		return -EOVERFLOW; /* broken invariant: the count was exact */
	t->recs[t->nrecs] = *r;
	*out = (uint32_t)t->nrecs++;
	for (i = hash_slot(r->hash, t->nslots); t->slots[i] != 0;
	     i = i + 1 < t->nslots ? i + 1 : 0)
		;
	t->slots[i] = *out + 1;
	return 0;
}

/* Copies len bytes into the arena; *off is where they went. */
static int
arena_put(struct nds_table *t, const char *s, size_t len, uint32_t *off)
{
	if (len > t->acap - t->alen)
		return -EOVERFLOW; /* broken invariant: the count was exact */
	memcpy(t->arena + t->alen, s, len);
	*off = (uint32_t)t->alen;
	t->alen += len;
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
 * The address set of entry e: its valid IPs in NameInfo order, split by
 * family (SPEC §2.1).  *out = NONE when no IP is valid.  The origin is
 * filled in by entry_apply(), once the arena exists.
 */
static int
entry_set(struct nds_table *t, const struct nt_entry *e, uint32_t *out)
{
	struct nds_addrset s = {.v4 = (uint32_t)t->n4, .v6 = (uint32_t)t->n6};
	uint8_t a[16];
	size_t i;
	int rc = 0;

	*out = NONE;
	for (i = 0; i < e->nips && rc == 0; i++) {
		/* inet_pton is strict: no CIDR, zone, or leading zeros. */
		if (inet_pton(AF_INET, e->ips[i], a) == 1)
			rc = pool_put(&t->v4, &t->n4, &t->cap4, 4, a, 0, 1);
		else if (inet_pton(AF_INET6, e->ips[i], a) == 1)
			rc = pool_put(&t->v6, &t->n6, &t->cap6, 16, a, 0, 1);
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
	size_t emitted;               /* names the entries emit (counted) */
	size_t abytes;                /* arena bytes they need (counted) */
	uint32_t *stamp;              /* per record: entry + 1 that set its
	                               * search CNAME */
	uint32_t cur;                 /* entry being applied (sorted index) */
	uint32_t set;                 /* its address set */
	bool k8s;                     /* it is a Kubernetes entry */
	uint32_t fqdn;                /* record of its "key.", or NONE */
	char fqbuf[NAME_LEN_MAX + 1]; /* counting: its "key." */
	size_t fqlen;                 /* counting: bytes in fqbuf, 0 = none */
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
	size_t i;

	if (suflen > slen || suflen == 0)
		return false;
	for (i = 0; i < suflen; i++)
		if (lower(s[slen - suflen + i]) != suf[i])
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
	struct part p[3] = {{e->shortname, strlen(e->shortname)},
	    {e->ns, strlen(e->ns)}, {b->part0, strlen(b->part0)}};
	size_t i;
	int rc = 0;

	if (b->ns[0] != '\0' && p[0].len > 0 && p[1].len > 0) {
		if ((rc = emit(b, fn, NAME_SHORT, p, 2)) != 0 ||
		    (strcmp(e->ns, b->ns) == 0 &&
		        (rc = emit(b, fn, NAME_SHORT, p, 1)) != 0) ||
		    (rc = emit(b, fn, NAME_SHORT, p, 3)) != 0)
			return rc;
	}
	for (i = 0; i < e->nalt && rc == 0; i++) {
		struct part a = {
		    e->ips[e->nips + i], strlen(e->ips[e->nips + i])};

		/* "" would name the root and "x." gives "x..": not names. */
		if (a.len > 0 && a.s[a.len - 1] != '.')
			rc = emit(b, fn, NAME_ALT, &a, 1);
	}
	return rc;
}

/* Calls fn for every address name of entry e (SPEC §2.2, §2.3). */
static int
entry_names(struct build *b, const struct nt_entry *e, name_fn fn)
{
	struct part key = {e->key, strlen(e->key)};
	int rc;

	if (!b->k8s) {
		/* No extra dot when the key already has one. */
		key.len -= key.s[key.len - 1] == '.';
		return emit(b, fn, NAME_FQDN, &key, 1);
	}
	if ((rc = emit(b, fn, NAME_FQDN, &key, 1)) != 0)
		return rc;
	/* Other clusters' domains get only their FQDN (D12: by label). */
	if (b->pdlen == 0 || !ends_with_label(key.s, key.len, b->pd, b->pdlen))
		return 0;
	return entry_k8s_names(b, e, fn);
}

/*
 * Counting pass: a name and the arena bytes it may need.  A short form
 * that is a prefix of the entry's "key." (the usual "name.ns." of
 * "name.ns.svc.cluster.local") shares its bytes.
 */
static int
count_name(struct build *b, const char *name, size_t len, enum name_kind kind)
{
	b->emitted++;
	if (kind == NAME_FQDN) {
		memcpy(b->fqbuf, name, len);
		b->fqlen = len;
	} else if (len <= b->fqlen && memcmp(b->fqbuf, name, len) == 0) {
		return 0;
	}
	if (len > SIZE_MAX - b->abytes)
		return -ENOMEM;
	b->abytes += len;
	return 0;
}

/*
 * An address name, in sorted key order.  D5: Kubernetes beats
 * non-Kubernetes in either order, non-Kubernetes duplicates append their
 * IPs per family; D13: between Kubernetes entries the later key replaces.
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
	    .flags = b->k8s ? REC_K8S : 0};
	const struct nds_rec *fq;
	int rc;

	if ((i = rec_find(t, hash, name, len, "", 0)) == NONE) {
		fq = b->fqdn != NONE ? &t->recs[b->fqdn] : NULL;
		if (kind != NAME_FQDN && fq != NULL && len <= fq->len &&
		    memcmp(t->arena + fq->name, name, len) == 0)
			r.name = fq->name;
		else if ((rc = arena_put(t, name, len, &r.name)) != 0)
			return rc;
		if ((rc = rec_new(t, &r, &i)) != 0)
			return rc;
	} else if (b->k8s) {
		t->recs[i].data = b->set;
		t->recs[i].flags |= REC_K8S;
	} else if (!(t->recs[i].flags & REC_K8S) && t->recs[i].data != b->set) {
		if ((rc = set_merge(t, t->recs[i].data, b->set, &set)) != 0)
			return rc;
		t->recs[i].data = set;
	}
	if (kind == NAME_FQDN)
		b->fqdn = i;
	if (t->s0len == 0 || len + t->s0len > NAME_LEN_MAX ||
	    ends_with_label(name, len, t->s0dot, t->s0len))
		return 0;
	if ((target = kind == NAME_SHORT ? b->fqdn : i) == NONE ||
	    b->stamp[i] == b->cur + 1)
		return 0;
	t->recs[i].cn = target;
	b->stamp[i] = b->cur + 1;
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
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct nt_entry *x = *(const struct nt_entry *const *)a;
	const struct nt_entry *y = *(const struct nt_entry *const *)b;

	return strcmp(x->key, y->key);
}

/*
 * Counting pass for one entry: its address set (*set = NONE if it names
 * nothing), and the names and arena bytes it adds.
 */
static int
entry_count(struct build *b, const struct nt_entry *e, uint32_t *set)
{
	size_t klen = strlen(e->key);
	int rc;

	*set = NONE;
	b->k8s = strcmp(e->registry, "Kubernetes") == 0;
	/* An Istio quirk, kept: a Kubernetes key with a dot names nothing. */
	if (b->k8s && e->key[klen - 1] == '.')
		return 0;
	/* No valid IP: skipped, queries for its names are forwarded. */
	if ((rc = entry_set(b->t, e, set)) != 0 || *set == NONE)
		return rc;
	b->fqlen = 0;
	return entry_names(b, e, count_name);
}

/* Record, slot and arena space for what entry_count() counted. */
static int
build_alloc(struct build *b)
{
	struct nds_table *t = b->t;

	/* Slots at a load of at most 3/4; records fit in 31 bits. */
	if (b->emitted >= (UINT32_MAX >> 1) / 4 * 3 ||
	    b->abytes >= UINT32_MAX - 1)
		return -ENOMEM;
	t->nslots = b->emitted + b->emitted / 3 + 1;
	t->rcap = b->emitted;
	t->acap = b->abytes;
	if ((t->slots = calloc(t->nslots, sizeof(*t->slots))) == NULL ||
	    (t->recs = malloc((t->rcap > 0 ? t->rcap : 1) *
	                      sizeof(*t->recs))) == NULL ||
	    (t->arena = malloc(t->acap > 0 ? t->acap : 1)) == NULL ||
	    (t->s0len > 0 && (b->stamp = calloc(t->rcap > 0 ? t->rcap : 1,
	                          sizeof(*b->stamp))) == NULL))
		return -ENOMEM;
	return 0;
}

/* Applies one entry (with a set) to the table. */
static int
entry_apply(struct build *b, const struct nt_entry *e, uint32_t cur,
    uint32_t set)
{
	b->t->sets[set].origin = e->key;
	b->cur = cur;
	b->set = set;
	b->k8s = strcmp(e->registry, "Kubernetes") == 0;
	b->fqdn = NONE;
	return entry_names(b, e, add_addr);
}

/*
 * D14: a search CNAME is dropped where an address name is spelled the
 * same way; then the count of generated names.
 */
static void
build_cnames(struct nds_table *t)
{
	size_t i, n = 0, hl;
	uint32_t j;

	for (i = 0; i < t->nrecs && t->s0len > 0; i++) {
		const struct nds_rec *r = &t->recs[i];
		const char *name = t->arena + r->name;

		if (r->len <= t->s0len ||
		    !ends_with_label(name, r->len, t->s0dot, t->s0len))
			continue;
		hl = r->len - t->s0len;
		j = rec_find(t, hash_rev(FNV_INIT, name, hl), name, hl, "", 0);
		if (j != NONE)
			t->recs[j].cn = NONE;
	}
	for (i = 0; i < t->nrecs; i++)
		n += t->recs[i].cn != NONE;
	t->names = t->nrecs + n;
}

/* Counting pass, allocation, then the names, over the entries sorted by
 * key (D5). */
static int
build_passes(struct build *b, struct nt_entry **order, size_t n)
{
	uint32_t *sets;
	size_t i;
	int rc = 0;

	if ((sets = malloc(n * sizeof(*sets))) == NULL)
		return -ENOMEM;
	for (i = 1; i < n && strcmp(order[i - 1]->key, order[i]->key) < 0; i++)
		;
	if (i < n)
		qsort(order, n, sizeof(*order), entry_cmp);
	for (i = 0; i < n && rc == 0; i++)
		rc = entry_count(b, order[i], &sets[i]);
	if (rc == 0)
		rc = build_alloc(b);
	for (i = 0; i < n && rc == 0; i++)
		if (sets[i] != NONE)
			rc = entry_apply(b, order[i], (uint32_t)i, sets[i]);
	if (rc == 0)
		build_cnames(b->t);
	free(sets);
	return rc;
}

static void
table_free(struct nds_table *t)
{
	if (t == NULL)
		return;
	free(t->arena);
	free(t->recs);
	free(t->slots);
	free(t->sets);
	free(t->v4);
	free(t->v6);
	nds_nametable_destroy(t->src);
	free(t);
}

/*
 * The NameTable stays with the table for /debug/ndsz, read-only: its key
 * index is only needed to add keys (nds_nametable_add() rebuilds it), so
 * it goes, and so does the slack of the entry array.
 */
static void
nt_keep(struct nds_nametable *nt)
{
	void *p;

	free(nt->idx);
	nt->idx = NULL;
	nt->nslots = 0;
	if (nt->n > 0 && nt->n < nt->cap &&
	    (p = realloc(nt->ents, nt->n * sizeof(*nt->ents))) != NULL) {
		nt->ents = p;
		nt->cap = nt->n;
	}
}

/* Gives back what the counts over-estimated; failure is harmless. */
static void
table_shrink(struct nds_table *t)
{
	void *p;

	if (t->alen > 0 && t->alen < t->acap &&
	    (p = realloc(t->arena, t->alen)) != NULL)
		t->arena = p;
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

int
nds_table_build(struct nds_nametable *nt, const struct nds_build_opts *o,
    struct nds_table **out, char *err, size_t errlen)
{
	struct nt_entry **order = NULL;
	struct build b;
	int rc = -ENOMEM;
	size_t i;

	memset(&b, 0, sizeof(b));
	if (out != NULL)
		*out = NULL;
	if (nt == NULL || o == NULL || out == NULL) {
		nds_errf(err, errlen, "table build: missing argument");
		rc = -EINVAL;
		goto out;
	}
	if ((b.t = calloc(1, sizeof(*b.t))) == NULL)
		goto fail;
	b.t->refs = 1;
	b.t->ttl = o->ttl;
	b.t->entries = nt->n;
	build_opts(&b, o);
	if (nt->n > 0) {
		if ((order = malloc(nt->n * sizeof(*order))) == NULL)
			goto fail;
		for (i = 0; i < nt->n; i++)
			order[i] = &nt->ents[i];
		/* One set per entry at most, before any merge. */
		if ((b.t->sets = malloc(nt->n * sizeof(*b.t->sets))) == NULL)
			goto fail;
		b.t->scap = nt->n;
		if ((rc = build_passes(&b, order, nt->n)) != 0)
			goto fail;
	}
	table_shrink(b.t);
	nt_keep(nt);
	b.t->src = nt;
	nt = NULL;
	*out = b.t;
	b.t = NULL;
	rc = 0;
	goto out;
fail:
	nds_errf(err, errlen, "table build: %s",
	    rc == -ENOMEM ? "out of memory or too many names" : strerror(-rc));
out:
	table_free(b.t);
	free(b.stamp);
	free(order);
	nds_nametable_destroy(nt);
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

/* Fills ans from record i reached by qname, or from its search CNAME. */
static void
answer_fill(const struct nds_table *t, uint32_t i, bool cname,
    const char *qname, size_t qlen, struct nds_answer *ans)
{
	const struct nds_rec *r = &t->recs[i];
	const struct nds_addrset *s;
	size_t s0 = t->s0len;

	memset(ans, 0, sizeof(*ans));
	if (cname) {
		r = &t->recs[r->cn];
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
	s = &t->sets[r->data];
	ans->v4 = s->n4 > 0 ? t->v4 + (size_t)s->v4 * 4 : NULL;
	ans->n4 = s->n4;
	ans->v6 = s->n6 > 0 ? t->v6 + (size_t)s->v6 * 16 : NULL;
	ans->n6 = s->n6;
	ans->origin = s->origin;
}

/*
 * The record that answers the name p + s: an address name (hash: its
 * hash), or else, when the name is h + search[0] + "." (cut: where h
 * ends in p + s, chash: the hash of h; cut = 0 when it cannot be), the
 * address name h whose search CNAME it is (*cname set).
 */
static uint32_t
name_find(const struct nds_table *t, uint32_t hash, const char *p, size_t plen,
    const char *s, size_t slen, size_t cut, uint32_t chash, bool *cname)
{
	uint32_t i = rec_find(t, hash, p, plen, s, slen);

	*cname = false;
	if (i != NONE || cut == 0)
		return i;
	i = cut <= plen ? rec_find(t, chash, p, cut, "", 0)
	                : rec_find(t, chash, p, plen, s, cut - plen);
	if (i == NONE || t->recs[i].cn == NONE)
		return NONE;
	*cname = true;
	return i;
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
	bool cname = false;

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
	i = name_find(t, h, qname, qlen, "", 0, cut, hc, &cname);
	/*
	 * The most specific wildcard (longest suffix) was found last.  A
	 * wildcard's search CNAME needs the suffix to hold all of search[0]
	 * (a shorter one leaves "*" before it, which is not a name).
	 */
	for (k = n; i == NONE && k-- > 0;)
		i = name_find(t, probe[k], "*.", 2, qname + at[k], qlen - at[k],
		    cut >= at[k] ? 2 + cut - at[k] : 0, cprobe[k], &cname);
	if (i == NONE)
		return -ENOENT;
	answer_fill(t, i, cname, qname, qlen, ans);
	return 0;
}

/* ---- listing (/debug/table, --dump-table, /debug/ndsz) ----------------- */

const struct nds_nametable *
nds_table_source(const struct nds_table *t)
{
	return t != NULL ? t->src : NULL;
}

/*
 * A listed name: record x >> 1, its search CNAME if x & 1.  qsort_r()
 * orders them by whole name.
 */
static int
rec_cmp(const void *a, const void *b, void *arg)
{
	const struct nds_table *t = arg;
	uint32_t xa = *(const uint32_t *)a, xb = *(const uint32_t *)b;
	const struct nds_rec *x = &t->recs[xa >> 1];
	const struct nds_rec *y = &t->recs[xb >> 1];

	return cat_cmp(t->arena + x->name, x->len, t->s0dot,
	    (xa & 1) ? t->s0len : 0, t->arena + y->name, y->len, t->s0dot,
	    (xb & 1) ? t->s0len : 0);
}

/* The whole name into buf (NAME_LEN_MAX + 1 bytes, NUL added). */
static void
rec_name(const struct nds_table *t, const struct nds_rec *r, bool cname,
    char *buf)
{
	size_t sl = cname ? t->s0len : 0;

	/* add_addr() keeps len + s0len <= NAME_LEN_MAX for a CNAME. */
	memcpy(buf, t->arena + r->name, r->len);
	memcpy(buf + r->len, t->s0dot, sl);
	buf[r->len + sl] = '\0';
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

/* fn for every record of a name: A, then AAAA, or its CNAME. */
static int
rec_emit(const struct nds_table *t, uint32_t i, bool cname,
    int (*fn)(const struct nds_record *r, void *arg), void *arg)
{
	const struct nds_rec *r = &t->recs[i];
	char name[NAME_LEN_MAX + 1], data[NAME_LEN_MAX + 1];
	struct nds_record out = {.name = name, .ttl = t->ttl};
	const struct nds_addrset *s;
	int rc;

	rec_name(t, r, cname, name);
	if (cname) {
		r = &t->recs[r->cn];
		rec_name(t, r, false, data);
		out.type = "CNAME";
		out.data = data;
		out.origin = t->sets[r->data].origin;
		return fn(&out, arg);
	}
	s = &t->sets[r->data];
	out.origin = s->origin;
	if ((rc = rec_addrs(&out, data, AF_INET, t->v4 + (size_t)s->v4 * 4,
	         s->n4, fn, arg)) != 0)
		return rc;
	return rec_addrs(&out, data, AF_INET6, t->v6 + (size_t)s->v6 * 16,
	    s->n6, fn, arg);
}

/* The records of one name, looked up: lower-cased, trailing dot added. */
static int
rec_filter(const struct nds_table *t, const char *filter,
    int (*fn)(const struct nds_record *r, void *arg), void *arg)
{
	char q[NAME_LEN_MAX + 1];
	size_t len = strlen(filter), i, cut;
	bool cname;
	uint32_t r;

	len -= len > 0 && filter[len - 1] == '.';
	if (len == 0 || len + 1 > NAME_LEN_MAX)
		return 0;
	for (i = 0; i < len; i++)
		q[i] = lower(filter[i]);
	q[len++] = '.';
	cut = s0_cut(t, q, len);
	r = name_find(t, hash_rev(FNV_INIT, q, len), q, len, "", 0, cut,
	    hash_rev(FNV_INIT, q, cut), &cname);
	return r != NONE ? rec_emit(t, r, cname, fn, arg) : 0;
}

int
nds_table_foreach_record(const struct nds_table *t, const char *filter,
    int (*fn)(const struct nds_record *r, void *arg), void *arg)
{
	uint32_t *order;
	size_t i, n = 0;
	int rc = 0;

	if (t == NULL || fn == NULL)
		return -EINVAL;
	if (filter != NULL)
		return rec_filter(t, filter, fn, arg);
	if (t->names == 0)
		return 0;
	/* Names are unique, so sorting one index of them sorts the records;
	 * the search CNAMEs' names are composed on the fly. */
	if ((order = malloc(t->names * sizeof(*order))) == NULL)
		return -ENOMEM;
	for (i = 0; i < t->nrecs; i++) {
		order[n++] = (uint32_t)i << 1;
		if (t->recs[i].cn != NONE)
			order[n++] = (uint32_t)i << 1 | 1;
	}
	qsort_r(order, n, sizeof(*order), rec_cmp, (void *)t);
	for (i = 0; i < n && rc == 0; i++)
		rc = rec_emit(t, order[i] >> 1, order[i] & 1, fn, arg);
	free(order);
	return rc;
}
