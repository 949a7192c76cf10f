/*
 * nds: the mesh name table (SPEC §1-§2).
 *
 * A NameTable (hostname -> IPs, registry, shortname, namespace, alt hosts)
 * arrives as JSON (a file) or, later, as protobuf over xDS.  It is collected
 * into a struct nds_nametable, then compiled into an immutable, refcounted
 * struct nds_table holding every generated name of SPEC §2, which keeps
 * the NameTable and shares its bytes (a 100k-service table takes ~12 MB
 * in all).  Lookups are pure and allocate nothing.
 *
 * Usual sequence:
 *
 *	char err[256];
 *	struct nds_nametable *nt;
 *	struct nds_table *t;
 *	struct nds_build_opts o = { .namespace = "ns1",
 *	    .domain = "ns1.svc.cluster.local",
 *	    .search0 = "ns1.svc.cluster.local", .ttl = 30 };
 *
 *	nds_file_load("table.json", &nt, err, sizeof(err));
 *	nds_table_build(nt, &o, &t, err, sizeof(err));	(takes nt)
 *	nds_table_lookup(t, "productpage.", 12, &ans);
 *	nds_table_unref(t);
 *
 * The module does no DNS wire format, no I/O except nds_file_load(), never
 * logs and keeps no globals.  Errors are negative errno values; a readable
 * reason goes into the caller's err buffer when one is passed.
 */
#ifndef DNSPROXY_NDS_H
#define DNSPROXY_NDS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct nds_nametable;
struct nds_table;

/* Largest table file accepted by nds_file_load() (bytes). */
#define NDS_FILE_MAX (256u * 1024 * 1024)

/*
 * One NameInfo (SPEC §1) as handed to nds_nametable_add().  Every pointer is
 * borrowed for the duration of the call; the table copies what it keeps.
 * NULL strings mean "" (the proto3 default).
 */
struct nds_nameinfo {
	const char *const *ips;       /* textual IPv4/IPv6, may be invalid */
	size_t nips;                  /* number of ips */
	const char *registry;         /* "Kubernetes", "External", ... */
	const char *shortname;        /* k8s service name */
	const char *ns;               /* k8s namespace */
	const char *const *alt_hosts; /* deprecated extra names */
	size_t nalt;                  /* number of alt_hosts */
};

/* An empty NameTable; *out is owned by the caller. 0 or -ENOMEM. */
int nds_nametable_create(struct nds_nametable **out);

/*
 * Adds or replaces (the last one wins, as protobuf maps do) the entry for
 * key.  0, -EINVAL (NULL/empty key) or -ENOMEM.
 */
int nds_nametable_add(struct nds_nametable *nt, const char *key,
    const struct nds_nameinfo *info);

/* Number of distinct keys. */
size_t nds_nametable_count(const struct nds_nametable *nt);

/* NULL-safe. */
void nds_nametable_destroy(struct nds_nametable *nt);

/*
 * Calls fn once per key, in insertion order (a replaced key keeps its first
 * place), with the entry as nds_nametable_add() took it: no NULL strings,
 * nips ips and nalt alt_hosts (an address comes back in inet_ntop() form
 * when it was pushed so, which is how it is stored; any other text comes
 * back as it was).  The key stays valid until nt is changed or destroyed
 * (see nds_nametable_key()); info and what it points to only for the
 * call.  A nonzero return from fn stops the walk and is returned; else 0
 * or -ENOMEM.
 */
int nds_nametable_foreach(const struct nds_nametable *nt,
    int (*fn)(const char *key, const struct nds_nameinfo *info, void *arg),
    void *arg);

/* The key of entry i (insertion order, i < count): *len bytes, not NUL
 * ended, valid until nt is changed or destroyed; NULL if there is none. */
const char *nds_nametable_key(const struct nds_nametable *nt, size_t i,
    size_t *len);

/* fn for entry i alone, as nds_nametable_foreach() calls it: fn's return,
 * -EINVAL (no such entry) or -ENOMEM. */
int nds_nametable_get(const struct nds_nametable *nt, size_t i,
    int (*fn)(const char *key, const struct nds_nameinfo *info, void *arg),
    void *arg);

/*
 * Parses a NameTable in the proto3 JSON mapping (SPEC §1): {"table": {host:
 * {"ips": [..], "registry": .., "shortname": .., "namespace": ..,
 * "altHosts"|"alt_hosts": [..]}}}.  Unknown keys are ignored, null and
 * missing fields take their defaults, a missing "table" is an empty table.
 * A value of the wrong type rejects the whole input with -EINVAL and a
 * message naming the entry and field in err.  Pure.
 */
int nds_json_parse(const char *buf, size_t len, struct nds_nametable **out,
    char *err, size_t errlen);

/*
 * Decodes a NameTable in protobuf binary form (SPEC §1: map<string,
 * NameInfo> table = 1; NameInfo{ips = 1, registry = 2, shortname = 3,
 * namespace = 4, alt_hosts = 5}).  Unknown fields of wire types 0, 1, 2 and
 * 5 are skipped, as is a known field with an unexpected wire type; groups
 * (3, 4), field number 0 and bad varints are errors.  Duplicate keys: the
 * last one wins; a NameInfo given twice in one entry is merged, as
 * protobuf does.  A 0-byte input is an empty table.  Strings are not
 * checked for UTF-8; a NUL byte in any string and an empty or missing key
 * are rejected.  0, -ENOMEM, or -EINVAL with the reason and byte offset in
 * err (e.g. "NameInfo field 1: length 99999 beyond end at byte 1234").
 * Pure.
 */
int nds_pb_parse(const uint8_t *buf, size_t len, struct nds_nametable **out,
    char *err, size_t errlen);

/*
 * Encodes nt in protobuf binary form: entries in ascending key order
 * (bytewise), each with its key and NameInfo, NameInfo fields in tag order,
 * empty strings omitted (proto3 defaults), so the output is deterministic
 * and equals protobuf's deterministic serialization.  *out (malloc'd, never
 * NULL on success, *outlen may be 0) is owned by the caller.  0 or
 * -ENOMEM.  Pure.
 */
int nds_pb_build(const struct nds_nametable *nt, uint8_t **out, size_t *outlen);

/*
 * Reads a table file (SPEC §10.1: first non-space byte '{' = JSON, a 0-byte
 * or all-space file = empty table, anything else = protobuf binary, see
 * nds_pb_parse(); a file starting "\n{" that is not valid JSON is tried as
 * protobuf too, since 0x0a 0x7b is also a table whose first entry is 123
 * bytes long).  The file is read through a window (256 KiB, grown only
 * for an entry larger than that) and decoded entry by entry, so memory
 * holds the table, never the whole file; JSON of an unusual shape, or
 * with an error, is read again whole for nds_json_parse() (from a pipe,
 * which cannot be read twice, JSON is kept whole).  Errors: -errno from
 * open/read (err names the file), -EFBIG over NDS_FILE_MAX, -EINVAL
 * ("<path>: protobuf: <reason>" or the JSON reason after the path).
 */
int nds_file_load(const char *path, struct nds_nametable **out, char *err,
    size_t errlen);

/* What the expansion of SPEC §2 depends on. */
struct nds_build_opts {
	const char *namespace; /* proxy namespace; NULL/"" = FQDNs only */
	const char *domain;    /* proxy domain, e.g. "ns1.svc.cluster.local";
	                        * NULL/"" = no short forms */
	const char *search0;   /* first search domain, one trailing dot
	                        * ignored; NULL/"" = no search CNAMEs */
	uint32_t ttl;          /* TTL of synthesized records (D8), e.g. 30 */
};

/*
 * Compiles nt into a lookup table with every generated name (SPEC §2:
 * FQDN, name.ns., name.ns.svc., name. in the own namespace, alt hosts,
 * search[0] CNAMEs; collisions per D5, D13, D14; short forms per D15,
 * CNAME targets per D18).  Takes ownership of nt in every case (it is
 * freed on failure).  On success *out holds one reference.
 * 0, -ENOMEM, -EINVAL (err says why).  Pure.
 */
int nds_table_build(struct nds_nametable *nt, const struct nds_build_opts *o,
    struct nds_table **out, char *err, size_t errlen);

/*
 * The same compile in steps, for a caller that must not stop answering
 * for the whole of it (the xDS client runs it between reads).  create
 * takes nt as nds_table_build() does (freed on failure); each step does
 * about budget units of work (an entry, a record or a sort key each;
 * 100k services are ~10^6 units) and returns 1 while there is more, 0
 * with *out holding the table once it is done (the same table
 * nds_table_build() gives), or the error nds_table_build() would give,
 * with err saying why.  free is NULL-safe and releases all not handed
 * out.  Pure.
 */
struct nds_table_builder;
int nds_table_builder_create(struct nds_nametable *nt,
    const struct nds_build_opts *o, struct nds_table_builder **out, char *err,
    size_t errlen);
int nds_table_builder_step(struct nds_table_builder *bd, size_t budget,
    struct nds_table **out, char *err, size_t errlen);
void nds_table_builder_free(struct nds_table_builder *bd);

/*
 * Hands bd len bytes at mem (malloc'd) for its working arrays: the sort
 * keys, the entry order and per-entry state, about 41 bytes per entry,
 * which otherwise take fresh pages.  Meant for a buffer whose pages are
 * there already and no longer needed, such as the message the NameTable
 * was decoded from.  bd owns mem from here in every case: it is freed
 * when the build ends or bd is freed, or at once when bd cannot use it
 * (a small table, too few bytes, a build already begun); the pages past
 * what the arrays need are given back at once.  Before the first step.
 */
void nds_table_builder_scratch(struct nds_table_builder *bd, void *mem,
    size_t len);

/* Reference counting; the table is freed when the last holder lets go. */
struct nds_table *nds_table_ref(struct nds_table *t);
void nds_table_unref(struct nds_table *t); /* NULL-safe */

uint32_t nds_table_ttl(const struct nds_table *t);
size_t nds_table_entries(const struct nds_table *t); /* NameTable keys */
size_t nds_table_names(const struct nds_table *t);   /* generated names */

/*
 * Result of a lookup.  Pointers point into the table (valid while the
 * caller holds a reference) or into the caller's qname buffer.
 */
struct nds_answer {
	const char *target; /* CNAME target and owner of the address
	                     * records; NULL = no CNAME, the query owns
	                     * them.  Lower-case, dotted, trailing dot. */
	size_t target_len;  /* strlen(target) */
	const uint8_t *v4;  /* n4 IPv4 addresses, 4 bytes each, NameInfo
	                     * order, network byte order */
	uint32_t n4;
	const uint8_t *v6; /* n6 IPv6 addresses, 16 bytes each */
	uint32_t n6;
	const char *origin; /* NameTable key the address records came from,
	                     * origin_len bytes (not NUL ended) */
	size_t origin_len;
};

/*
 * Looks up qname (lower-case, dotted, with the trailing dot, qlen bytes,
 * no NUL needed) per SPEC §3: exact match, then wildcards most specific
 * first (never the root "*."), then one CNAME hop; a wildcard CNAME target
 * is made concrete (D17: the query minus its search[0] suffix, pointing
 * into qname).  Returns 0 with *ans filled, or -ENOENT when the name is
 * not known (the caller forwards).  A known name may have n4 == n6 == 0.
 * Pure; allocates nothing.
 */
int nds_table_lookup(const struct nds_table *t, const char *qname, size_t qlen,
    struct nds_answer *ans);

/*
 * One record of the expanded table, as /debug/table and --dump-table show
 * it.  Every string is valid during the callback only.
 */
struct nds_record {
	const char *name;   /* lower-case, dotted, trailing dot */
	const char *type;   /* "A", "AAAA" or "CNAME" */
	uint32_t ttl;       /* nds_table_ttl() */
	const char *data;   /* address text (inet_ntop) or CNAME target */
	const char *origin; /* NameTable key the record came from (for a
	                     * CNAME: the key of its target's addresses) */
};

/*
 * Calls fn for every record of t, sorted by name (bytewise) then type (A <
 * AAAA < CNAME), one call per address, addresses in NameInfo order.
 * filter: NULL = every name; else only that name: exact (a wildcard name
 * matches only its literal "*." record), case-insensitive, trailing dot
 * optional; it is looked up, not searched.  A nonzero return from fn stops
 * the walk and is returned; else 0, -EINVAL (t or fn NULL) or -ENOMEM (the
 * sort index of an unfiltered walk: 4 bytes per name).  Pure.
 */
int nds_table_foreach_record(const struct nds_table *t, const char *filter,
    int (*fn)(const struct nds_record *r, void *arg), void *arg);

/*
 * The NameTable t was built from (nds_table_build() keeps it), for
 * /debug/ndsz.  Owned by t, read-only, valid while t is; never NULL for a
 * built table.  Walk it with nds_nametable_foreach().
 */
const struct nds_nametable *nds_table_source(const struct nds_table *t);

/* ---- snapshot (SPEC §5, D7) ------------------------------------------ */

/*
 * Writes data to path atomically: a temporary file beside it, fsync,
 * rename, fsync of the directory.  A reader sees the old file or the new
 * one, never a torn write.  0 or -errno (err names the file).
 */
int nds_snapshot_write(const char *path, const uint8_t *data, size_t len,
    char *err, size_t errlen);

/*
 * The temporary file nds_snapshot_write() uses for path in process pid,
 * into buf: for removing the file of a writer that was killed.  0 or
 * -ENAMETOOLONG.
 */
int nds_snapshot_tmp(const char *path, long pid, char *buf, size_t len);

/* ---- NDS over xDS (SPEC §5) ------------------------------------------ */

/* The type URL of NDS resources. */
#define NDS_TYPE_URL "type.googleapis.com/istio.networking.nds.v1.NameTable"
/* The gRPC method of ADS. */
#define NDS_ADS_PATH                                                           \
	"/envoy.service.discovery.v3.AggregatedDiscoveryService/"              \
	"StreamAggregatedResources"
/* Largest DiscoveryResponse accepted (SPEC §5). */
#define NDS_GRPC_MAX_MSG (64u * 1024 * 1024)

/* The Node of the first request on each stream (envoy.config.core.v3). */
struct nds_xds_node {
	const char *id;               /* sidecar~ip~pod.ns~ns.svc.... */
	const char *cluster;          /* may be NULL */
	const char *const *meta_keys; /* metadata Struct, string values */
	const char *const *meta_vals;
	size_t nmeta;
	const char *user_agent_name;    /* may be NULL */
	const char *user_agent_version; /* may be NULL */
};

struct nds_client;

/* What the client reports; see struct nds_client_cbs. */
enum nds_event {
	NDS_EV_CONNECTING,   /* detail: the address */
	NDS_EV_CONNECTED,    /* HTTP/2 is up (the server's SETTINGS came)
	                      * and the ADS request sent; detail: address */
	NDS_EV_DISCONNECTED, /* detail: why (TLS, socket, gRPC status) */
	NDS_EV_RETRY,        /* next attempt; detail: "in 1.234s" */
	NDS_EV_ACK,          /* a table was accepted; detail: version */
	NDS_EV_NACK,         /* a push was rejected; detail: reason */
	NDS_EV_IGNORED       /* a response was ignored; detail: why */
};

struct nds_client_cbs {
	/*
	 * A push decoded and compiled: t is a new reference for the callee;
	 * pb/pblen are the NameTable bytes (for the snapshot), valid during
	 * the call; pb is NULL unless the config asked to keep them.  The ACK
	 * goes out after it returns, if the connection the push came on is
	 * still up (else the next connection's push is ACKed).  Pushes are
	 * handed up in the order they came.
	 */
	void (*on_table)(struct nds_table *t, const char *version,
	    const uint8_t *pb, size_t pblen, void *arg);
	/* Everything else worth a log line or a counter. */
	void (*on_event)(enum nds_event ev, const char *detail, void *arg);
};

struct nds_client_config {
	const char *addr;       /* "host:port", "IPv4:port", "[IPv6]:port" */
	int plaintext;          /* h2c with prior knowledge, no token */
	const char *root_cert;  /* PEM file, or "SYSTEM" */
	const char *token_path; /* Bearer token file, read per connect */
	const char *sni;        /* NULL = from addr (SPEC §5) */
	const char *cluster_id; /* "ClusterID" header, or NULL */
	const char *const *hdr_names; /* extra headers (XDS_HEADER_*) */
	const char *const *hdr_vals;
	size_t nhdrs;
	struct nds_xds_node node;
	struct nds_build_opts build; /* how pushed tables are compiled */
	int keep_bytes;              /* on_table gets the NameTable bytes
	                              * (else pb NULL: the ~8 MB message of
	                              * 100k services is freed before the
	                              * compile) */
	uint32_t keepalive_ms;       /* PING period; 0 = 30 s */
	uint32_t ping_timeout_ms;    /* 0 = 10 s */
	uint32_t dial_timeout_ms;    /* 0 = 5 s */
	uint32_t backoff_min_ms;     /* 0 = 1 s */
	uint32_t backoff_max_ms;     /* 0 = 30 s */
};

/*
 * Starts the client on base: it connects at once and keeps an ADS stream
 * open forever, reconnecting with back-off.  Every string of cfg is
 * copied.  0, or -EINVAL/-ENOMEM with err saying why (a bad address).
 */
int nds_client_create(struct event_base *base,
    const struct nds_client_config *cfg, const struct nds_client_cbs *cbs,
    void *arg, struct nds_client **out, char *err, size_t errlen);
void nds_client_destroy(struct nds_client *c); /* NULL-safe */

/*
 * What the last table handed up cost (valid inside on_table for that
 * table).  After the push's last byte, the rest of its decode runs at
 * once and its compile in slices, with queries answered in between.
 */
struct nds_build_stats {
	uint64_t work_us;  /* the rest of the decode and the compile, summed */
	uint64_t stall_us; /* the longest of those runs: the most a query
	                    * waited on them */
	uint64_t wall_us;  /* last byte to the table handed up */
	uint64_t early_us; /* decoding while the push arrived (0: it came in
	                    * one read) */
	unsigned slices;   /* runs the compile took */
};
void nds_client_build_stats(const struct nds_client *c,
    struct nds_build_stats *st);

/*
 * Checks an --xds address ("host:port", "[IPv6]:port"); 0 or -EINVAL.
 * host/port receive the parts when given.
 */
int nds_xds_addr_parse(const char *addr, char *host, size_t hostlen,
    uint16_t *port);

#endif
