/*
 * dump.c: dnsproxy --dump-table [NAME] (SPEC §6).  No server loop: it
 * blocks.
 *
 * Online it asks the running agent (GET /debug/table on --admin) over one
 * HTTP/1.1 connection; offline (--table FILE) it loads and builds the
 * table itself with the server's options and renders it through the same
 * JSON, so both print alike.  The answer is printed raw (--json) or as
 * aligned columns NAME TYPE TTL DATA ORIGIN after one '#' line.
 *
 * The answer is read strictly bounded: status line checked, headers up to
 * DUMP_HEAD_MAX, a body up to DUMP_BODY_MAX by Content-Length or until the
 * close; no chunked encoding.  It is walked one record at a time (jansson
 * decodes each value, this file only steps over the punctuation between
 * them), since a tree of a 100k-service table would take gigabytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "nds/nds.h"
#include "resolver/resolvconf.h"

#define DUMP_WAIT_MS 3000   /* no agent: connect + headers, and body stalls */
#define DUMP_BODY_MS 60000  /* the whole body, at most */
#define DUMP_HEAD_MAX 16384 /* status line and headers */
#define DUMP_BODY_MAX (256u << 20) /* a 100k-service table is ~90 MB */
#define DUMP_RESOLV_MAX (1u << 20) /* resolv.conf */
#define DUMP_NAME_MAX 255          /* longest DNS name, dot included */

#define DUMP_HINT                                                              \
	"start dnsproxy, or point --admin ADDR at its admin address, or "      \
	"use --table FILE to expand a file offline"

/* An HTTP answer. */
struct dump_http {
	int status;   /* e.g. 200 */
	char *buf;    /* head and body, NUL after them */
	size_t len;   /* bytes in buf */
	size_t cap;   /* bytes allocated */
	size_t body;  /* offset of the body in buf */
	size_t clen;  /* Content-Length, or SIZE_MAX = until the close */
	int64_t stop; /* ms deadline of the read in progress */
};

static int64_t
dump_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for ev on fd until the deadline: 0, -ETIMEDOUT or -errno. */
static int
dump_wait(int fd, short ev, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int64_t left;
	int n;

	for (;;) {
		if ((left = deadline - dump_now_ms()) <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* "IP:PORT", "[IPv6]:PORT" or "localhost:PORT" to a socket address. */
static int
dump_addr(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	struct agent_addr a;

	if (agent_parse_addr(text, &a) != 0)
		return -EINVAL;
	*ss = a.ss;
	*len = a.len;
	return 0;
}

/* A non-blocking connect finished by the deadline: fd, or -errno. */
static int
dump_connect(const struct sockaddr_storage *ss, socklen_t len, int64_t deadline)
{
	socklen_t elen = sizeof(int);
	int fd, rc, soerr = 0;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)ss, len) == 0)
		return fd;
	if (errno != EINPROGRESS) {
		rc = -errno;
		goto fail;
	}
	if ((rc = dump_wait(fd, POLLOUT, deadline)) != 0)
		goto fail;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &elen) != 0) {
		rc = -errno;
		goto fail;
	}
	if (soerr != 0) {
		rc = -soerr;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

static int
dump_send(int fd, const char *req, size_t len, int64_t deadline)
{
	ssize_t n;
	int rc;

	while (len > 0) {
		n = send(fd, req, len, MSG_NOSIGNAL);
		if (n > 0) {
			req += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			if ((rc = dump_wait(fd, POLLOUT, deadline)) != 0)
				return rc;
		} else
			return n < 0 ? -errno : -EPIPE;
	}
	return 0;
}

/* Reads what is there into h->buf, up to max bytes in all: bytes read,
 * 0 at the close, -ETIMEDOUT past h->stop, -errno. */
static ssize_t
dump_read(int fd, struct dump_http *h, size_t max)
{
	size_t want;
	ssize_t n;
	char *p;
	int rc;

	if (h->len + 1 >= h->cap) {
		size_t ncap = h->cap != 0 ? h->cap * 2 : 65536;

		if (ncap > max + 1)
			ncap = max + 1;
		if (ncap <= h->len + 1)
			return -EFBIG;
		if ((p = realloc(h->buf, ncap)) == NULL)
			return -ENOMEM;
		h->buf = p;
		h->cap = ncap;
	}
	want = h->cap - h->len - 1;
	for (;;) {
		n = recv(fd, h->buf + h->len, want, 0);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if ((rc = dump_wait(fd, POLLIN, h->stop)) != 0)
			return rc;
	}
	h->len += (size_t)n;
	h->buf[h->len] = '\0';
	return n;
}

/* Content-Length: digits only, at most DUMP_BODY_MAX. */
static int
dump_clen(const char *v, const char *end, size_t *out)
{
	size_t n = 0;

	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (v == end)
		return -EINVAL;
	for (; v < end; v++) {
		if (*v < '0' || *v > '9')
			return -EINVAL;
		n = n * 10 + (size_t)(*v - '0');
		if (n > DUMP_BODY_MAX)
			return -EFBIG;
	}
	if (*out != SIZE_MAX && *out != n)
		return -EINVAL; /* two different lengths */
	*out = n;
	return 0;
}

/*
 * Checks the head h->buf[0..h->body - 4) ("HTTP/1.x NNN reason" CRLF, then
 * headers): status, Content-Length; chunked bodies are refused.
 */
static int
dump_head(struct dump_http *h, const char **why)
{
	const char *p = h->buf, *end = h->buf + h->body - 2, *eol, *colon;
	int rc;

	if (strncmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
	    p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' ||
	    p[10] > '9' || p[11] < '0' || p[11] > '9' ||
	    (p[12] != ' ' && p[12] != '\r')) {
		*why = "not an HTTP/1.x status line";
		return -EPROTO;
	}
	h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	h->clen = SIZE_MAX;
	for (p = strstr(p, "\r\n") + 2; p < end; p = eol + 2) {
		eol = strstr(p, "\r\n"); /* the head ends in CRLF CRLF */
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL) {
			*why = "header line without a colon";
			return -EPROTO;
		}
		if (colon - p == 14 &&
		    strncasecmp(p, "Content-Length", 14) == 0 &&
		    (rc = dump_clen(colon + 1, eol, &h->clen)) != 0) {
			*why = rc == -EFBIG ? "answer too large"
			                    : "bad Content-Length";
			return rc;
		}
		if (colon - p == 17 &&
		    strncasecmp(p, "Transfer-Encoding", 17) == 0) {
			*why = "chunked transfer encoding is not supported";
			return -EPROTO;
		}
	}
	return 0;
}

/* Reads up to the end of the head (within the 3 s) and checks it. */
static int
dump_read_head(int fd, struct dump_http *h, const char **why)
{
	char *end;
	ssize_t n;

	while ((end = strstr(h->buf != NULL ? h->buf : "", "\r\n\r\n")) ==
	       NULL) {
		n = dump_read(fd, h, DUMP_HEAD_MAX);
		if (n == -EFBIG)
			*why = "headers too long";
		else if (n == 0)
			*why = "connection closed before the headers ended";
		if (n == 0 || n == -EFBIG)
			return -EPROTO;
		if (n < 0)
			return (int)n;
	}
	h->body = (size_t)(end - h->buf) + 4;
	return dump_head(h, why);
}

/*
 * The body: Content-Length bytes, or all until the close.  It must keep
 * flowing (DUMP_WAIT_MS at most between bytes) and end within
 * DUMP_BODY_MS.
 */
static int
dump_read_body(int fd, struct dump_http *h, const char **why)
{
	int64_t start = dump_now_ms(), last = DUMP_BODY_MS + start;
	size_t max = h->body + (h->clen != SIZE_MAX ? h->clen : DUMP_BODY_MAX);
	ssize_t n;

	while (h->clen == SIZE_MAX || h->len - h->body < h->clen) {
		h->stop = dump_now_ms() + DUMP_WAIT_MS;
		if (h->stop > last)
			h->stop = last;
		if ((n = dump_read(fd, h, max)) == 0 && h->clen == SIZE_MAX)
			break;
		if (n == 0)
			*why = "connection closed before the whole body";
		else if (n == -EFBIG)
			*why = "answer too large";
		if (n == 0 || n == -EFBIG)
			return -EPROTO;
		if (n < 0)
			return (int)n;
	}
	if (h->len - h->body >
	    (h->clen != SIZE_MAX ? h->clen : DUMP_BODY_MAX)) {
		*why = "more bytes than Content-Length";
		return -EPROTO;
	}
	return 0;
}

/* path = /debug/table[?name=NAME], NAME percent-encoded. */
static int
dump_path(const char *filter, char *path, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = (size_t)snprintf(path, size, "/debug/table%s",
	    filter != NULL ? "?name=" : "");
	const unsigned char *s = (const unsigned char *)filter;

	for (; s != NULL && *s != '\0'; s++) {
		if (n + 4 > size)
			return -ENAMETOOLONG;
		if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ||
		    *s == '_' || *s == '~')
			path[n++] = (char)*s;
		else {
			path[n++] = '%';
			path[n++] = hex[*s >> 4];
			path[n++] = hex[*s & 15];
		}
	}
	path[n] = '\0';
	return 0;
}

static void
dump_no_agent(const char *addr, int rc)
{
	fprintf(stderr,
	    "dnsproxy: no agent answered on %s (%s); " DUMP_HINT "\n", addr,
	    rc == -ETIMEDOUT      ? "no answer within 3 s"
	    : rc == -ECONNREFUSED ? "connection refused"
	                          : strerror(-rc));
}

/* Prints s with control bytes as '?' (it came from the network). */
static void
dump_puts_safe(FILE *f, const char *s, size_t max)
{
	size_t i;

	for (i = 0; i < max && s[i] != '\0'; i++)
		fputc((unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i],
		    f);
}

/*
 * GET /debug/table from the agent at addr.  On success *body (malloc'd,
 * NUL-terminated) and *blen; else the error was printed.  Exit code.
 */
static int
dump_fetch(const char *addr, const char *filter, char **body, size_t *blen)
{
	struct dump_http h = {0};
	struct sockaddr_storage ss;
	char path[3 * DUMP_NAME_MAX + 32], req[4 * DUMP_NAME_MAX + 256];
	const char *why = NULL;
	socklen_t sslen;
	int fd, rc, n, code = 1;

	if (dump_addr(addr, &ss, &sslen) != 0) {
		fprintf(stderr,
		    "dnsproxy: --admin %s: expected IP:PORT, [IPv6]:PORT "
		    "or localhost:PORT\n",
		    addr);
		return 2;
	}
	n = snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: dnsproxy/%s\r\n"
	    "Accept: application/json\r\nConnection: close\r\n\r\n",
	    dump_path(filter, path, sizeof(path)) == 0 ? path : "/", addr,
	    DNSPROXY_VERSION);
	if (n < 0 || (size_t)n >= sizeof(req))
		return 2; /* the caller checked NAME's length */
	/* No agent, or one that does not answer: 3 s in all. */
	h.stop = dump_now_ms() + DUMP_WAIT_MS;
	if ((fd = dump_connect(&ss, sslen, h.stop)) < 0) {
		dump_no_agent(addr, fd);
		return 1;
	}
	if ((rc = dump_send(fd, req, (size_t)n, h.stop)) != 0 ||
	    (rc = dump_read_head(fd, &h, &why)) != 0) {
		if (why == NULL && rc != -ENOMEM) {
			dump_no_agent(addr, rc);
			goto out;
		}
		goto bad;
	}
	if ((rc = dump_read_body(fd, &h, &why)) != 0)
		goto bad;
	if (h.status != 200) {
		fprintf(stderr,
		    "dnsproxy: the agent on %s answered HTTP %d to "
		    "GET %s: ",
		    addr, h.status, path);
		dump_puts_safe(stderr, h.buf + h.body, 200);
		fputc('\n', stderr);
		goto out;
	}
	*blen = h.len - h.body;
	memmove(h.buf, h.buf + h.body, *blen + 1);
	*body = h.buf;
	h.buf = NULL;
	code = 0;
	goto out;
bad:
	fprintf(stderr, "dnsproxy: bad answer from the agent on %s: %s\n", addr,
	    why != NULL ? why : strerror(-rc));
out:
	close(fd);
	free(h.buf);
	return code;
}

/* ---- the answer, walked one value at a time ---------------------------- */

/* The JSON text of /debug/table and its top-level members. */
struct dump_doc {
	const char *p;   /* the text (NUL-terminated) */
	size_t len, pos; /* its length; where the walk is */
	json_t *version; /* "version", "updated", "entries", or NULL */
	json_t *updated;
	json_t *entries;
};

/* One record's fields as text: NAME TYPE TTL DATA ORIGIN. */
struct dump_row {
	const char *f[5];
	char ttl[24];
};

typedef int (*dump_row_fn)(const struct dump_row *row, void *arg);

static void
dump_ws(struct dump_doc *d)
{
	while (d->pos < d->len &&
	       (d->p[d->pos] == ' ' || d->p[d->pos] == '\t' ||
	           d->p[d->pos] == '\r' || d->p[d->pos] == '\n'))
		d->pos++;
}

/* Steps over c (after white space): 1, or 0 when something else is next. */
static int
dump_punct(struct dump_doc *d, char c)
{
	dump_ws(d);
	if (d->pos < d->len && d->p[d->pos] == c) {
		d->pos++;
		return 1;
	}
	return 0;
}

/* The next JSON value (new reference), or NULL if there is none. */
static json_t *
dump_value(struct dump_doc *d)
{
	json_error_t e;
	json_t *v;

	dump_ws(d);
	v = json_loadb(d->p + d->pos, d->len - d->pos,
	    JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &e);
	if (v != NULL)
		d->pos += (size_t)e.position;
	return v;
}

static int
dump_row_of(const json_t *o, struct dump_row *row)
{
	static const char *const keys[5] = {
	    "name", "type", "ttl", "data", "origin"};
	const json_t *v;
	size_t i;

	for (i = 0; i < 5; i++) {
		v = json_object_get(o, keys[i]);
		if (i == 2) {
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				return -EPROTO;
			snprintf(row->ttl, sizeof(row->ttl),
			    "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			row->f[i] = row->ttl;
		} else if ((row->f[i] = json_string_value(v)) == NULL)
			return -EPROTO;
	}
	return 0;
}

/* "records": [ {..}, .. ], each record handed to fn. */
static int
dump_records(struct dump_doc *d, dump_row_fn fn, void *arg, size_t *n)
{
	struct dump_row row;
	json_t *o;
	int rc;

	if (!dump_punct(d, '['))
		return -EPROTO;
	if (dump_punct(d, ']'))
		return 0;
	do {
		if ((o = dump_value(d)) == NULL)
			return -EPROTO;
		rc = json_is_object(o) ? dump_row_of(o, &row) : -EPROTO;
		if (rc == 0) {
			(*n)++;
			rc = fn(&row, arg);
		}
		json_decref(o);
		if (rc != 0)
			return rc;
	} while (dump_punct(d, ','));
	return dump_punct(d, ']') ? 0 : -EPROTO;
}

/* Keeps the top-level members the '#' line shows; takes v. */
static void
dump_member(struct dump_doc *d, const char *key, json_t *v)
{
	json_t **slot = strcmp(key, "version") == 0   ? &d->version
	                : strcmp(key, "updated") == 0 ? &d->updated
	                : strcmp(key, "entries") == 0 ? &d->entries
	                                              : NULL;

	if (slot == NULL) {
		json_decref(v);
		return;
	}
	json_decref(*slot);
	*slot = v;
}

/* Walks the whole document: 0, -EPROTO (not the expected shape) or fn's
 * error.  *n counts the records. */
static int
dump_walk(struct dump_doc *d, dump_row_fn fn, void *arg, size_t *n)
{
	json_t *key = NULL, *v;
	int rc = -EPROTO;

	d->pos = 0;
	*n = 0;
	if (!dump_punct(d, '{'))
		goto out;
	if (dump_punct(d, '}'))
		goto end;
	do {
		if ((key = dump_value(d)) == NULL || !json_is_string(key) ||
		    !dump_punct(d, ':'))
			goto out;
		if (strcmp(json_string_value(key), "records") == 0) {
			if ((rc = dump_records(d, fn, arg, n)) != 0)
				goto out;
			rc = -EPROTO;
		} else if ((v = dump_value(d)) != NULL)
			dump_member(d, json_string_value(key), v);
		else
			goto out;
		json_decref(key);
		key = NULL;
	} while (dump_punct(d, ','));
	if (!dump_punct(d, '}'))
		goto out;
end:
	dump_ws(d);
	rc = d->pos == d->len ? 0 : -EPROTO;
out:
	json_decref(key);
	return rc;
}

/* ---- output ------------------------------------------------------------ */

static const char *const dump_titles[5] = {
    "NAME", "TYPE", "TTL", "DATA", "ORIGIN"};

static int
dump_count(const struct dump_row *row, void *arg)
{
	return 0;
}

static int
dump_width(const struct dump_row *row, void *arg)
{
	size_t *w = arg, i, n;

	for (i = 0; i < 4; i++)
		if ((n = strlen(row->f[i])) > w[i])
			w[i] = n;
	return 0;
}

/* One line of columns; control bytes shown as '?'. */
static void
dump_line(const char *const *f, const size_t *w)
{
	size_t i, n;

	for (i = 0; i < 5; i++) {
		dump_puts_safe(stdout, f[i], SIZE_MAX);
		if (i == 4)
			break;
		for (n = strlen(f[i]); n < w[i] + 2; n++)
			putchar(' ');
	}
	putchar('\n');
}

static int
dump_print(const struct dump_row *row, void *arg)
{
	dump_line(row->f, arg);
	return ferror(stdout) ? -EIO : 0;
}

/* "# table version V, updated T, N entries" */
static void
dump_header(const struct dump_doc *d)
{
	const char *v = json_string_value(d->version);
	const char *u = json_string_value(d->updated);

	fputs("# table version ", stdout);
	dump_puts_safe(stdout, v != NULL && *v != '\0' ? v : "-", 256);
	fputs(", updated ", stdout);
	dump_puts_safe(stdout, u != NULL ? u : "never", 64);
	printf(", %" JSON_INTEGER_FORMAT " entries\n",
	    json_is_integer(d->entries) ? json_integer_value(d->entries) : 0);
}

/* Prints the answer (raw with --json) of the agent at from; exit code. */
static int
dump_render(const struct agent_config *cfg, const char *from, const char *body,
    size_t len)
{
	struct dump_doc d = {.p = body, .len = len};
	size_t w[5] = {4, 4, 3, 4, 6}, n = 0;
	int rc, code = 1;

	/*
	 * The first walk checks the shape and measures the columns.  No NUL
	 * byte: jansson, reading one value of a longer text, drops one after
	 * a literal and then counts the position one byte short.
	 */
	if (memchr(body, '\0', len) != NULL ||
	    (rc = dump_walk(&d, cfg->json ? dump_count : dump_width, w, &n)) !=
	        0) {
		fprintf(stderr,
		    "dnsproxy: the answer of the agent on %s is not the "
		    "table JSON ({\"records\": [..]})\n",
		    from);
		goto out;
	}
	if (cfg->json) {
		fwrite(body, 1, len, stdout);
		if (len > 0 && body[len - 1] != '\n')
			putchar('\n');
	} else {
		dump_header(&d);
		dump_line(dump_titles, w);
		if (n > 0 && (rc = dump_walk(&d, dump_print, w, &n)) != 0)
			goto out;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "dnsproxy: writing the table: %s\n",
		    strerror(errno));
		goto out;
	}
	if (n == 0 && cfg->dump_filter != NULL)
		fprintf(stderr, "dnsproxy: no records for %s\n",
		    cfg->dump_filter);
	code = 0;
out:
	json_decref(d.version);
	json_decref(d.updated);
	json_decref(d.entries);
	return code;
}

/* ---- offline: --table FILE --------------------------------------------- */

/* search[0] of the resolv.conf, as the server takes it; exit code. */
static int
dump_search0(const char *path, char *search0, size_t size)
{
	struct rsv_resolvconf *rc = NULL;
	const char *why = NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL)
		why = strerror(errno);
	else if ((text = malloc(DUMP_RESOLV_MAX + 1)) == NULL)
		why = "out of memory";
	else if ((len = fread(text, 1, DUMP_RESOLV_MAX + 1, f)) >
	         DUMP_RESOLV_MAX)
		why = "too large";
	else if (ferror(f))
		why = "read error";
	else if (rsv_resolvconf_parse(text, len, &rc) != 0)
		why = "out of memory";
	else if (rc->nsearch > 0)
		snprintf(search0, size, "%s", rc->search[0]);
	if (why != NULL)
		fprintf(stderr, "dnsproxy: cannot read resolv.conf %s: %s\n",
		    path, why);
	rsv_resolvconf_free(rc);
	free(text);
	if (f != NULL)
		fclose(f);
	return why != NULL ? 1 : 0;
}

/* Loads and builds --table as the server would; the JSON or exit code. */
static int
dump_offline(const struct agent_config *cfg, char **body, size_t *blen)
{
	struct nds_build_opts o = {
	    .namespace = cfg->ns, .domain = cfg->domain, .ttl = cfg->ttl};
	struct agent_table_meta m = {.version = ""};
	struct nds_nametable *nt;
	struct nds_table *t;
	char search0[256] = "", err[512];
	int code;

	if ((code = dump_search0(cfg->resolv_conf, search0, sizeof(search0))) !=
	    0)
		return code;
	o.search0 = search0;
	if (nds_file_load(cfg->table_path, &nt, err, sizeof(err)) != 0 ||
	    nds_table_build(nt, &o, &t, err, sizeof(err)) != 0) {
		fprintf(stderr, "dnsproxy: table %s\n", err);
		return 1;
	}
	m.entries = nds_table_entries(t);
	*body = agent_table_json(t, &m, cfg->dump_filter);
	nds_table_unref(t);
	if (*body == NULL) {
		fprintf(stderr, "dnsproxy: out of memory\n");
		return 1;
	}
	*blen = strlen(*body);
	return 0;
}

int
agent_dump(const struct agent_config *cfg)
{
	const char *admin =
	    cfg->admin != NULL ? cfg->admin : AGENT_ADMIN_DEFAULT;
	char *body = NULL;
	size_t len = 0;
	int code;

	if (cfg->dump_filter != NULL &&
	    strlen(cfg->dump_filter) > DUMP_NAME_MAX) {
		fprintf(stderr,
		    "dnsproxy: --dump-table %.40s...: longer than "
		    "a DNS name (%d bytes)\n",
		    cfg->dump_filter, DUMP_NAME_MAX);
		return 2;
	}
	if (cfg->table_path != NULL)
		code = dump_offline(cfg, &body, &len);
	else if (strcmp(admin, "off") == 0) {
		fprintf(stderr, "dnsproxy: --dump-table needs the agent's "
		                "admin address (--admin ADDR), or --table "
		                "FILE to expand a file offline\n");
		code = 2;
	} else
		code = dump_fetch(admin, cfg->dump_filter, &body, &len);
	if (code == 0)
		code = dump_render(cfg,
		    cfg->table_path != NULL ? cfg->table_path : admin, body,
		    len);
	free(body);
	return code;
}
