/*
 * resolvconf.c: the resolv.conf parser (SPEC §4).  Pure: text in,
 * struct out.  Read like glibc reads it, except that every nameserver is
 * kept (glibc stops at three) and unparsable ones are skipped (D16).
 */
#include "resolver/resolvconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RC_WORD_MAX 256 /* longer words are cut (hostnames are <= 253) */

/* A cursor over one line; words are separated by blanks. */
struct rc_line {
	const char *p;
	const char *end;
};

static int
rc_isblank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Next word into buf (NUL-terminated); 0 when there is none. */
static size_t
rc_word(struct rc_line *l, char *buf, size_t cap)
{
	size_t n = 0;

	while (l->p < l->end && rc_isblank(*l->p))
		l->p++;
	while (l->p < l->end && !rc_isblank(*l->p)) {
		if (n + 1 < cap)
			buf[n++] = *l->p;
		l->p++;
	}
	buf[n] = '\0';
	return n;
}

static void
rc_warn(struct rsv_resolvconf *rc, const char *word, const char *why)
{
	rc->nskipped++;
	if (rc->warning[0] == '\0')
		snprintf(rc->warning, sizeof(rc->warning),
		    "nameserver \"%.64s\" skipped: %s", word, why);
}

static int
rc_add_server(struct rsv_resolvconf *rc, char *word)
{
	struct rsv_nameserver ns, *grown;
	char *pct = strchr(word, '%');

	memset(&ns, 0, sizeof(ns));
	if (pct != NULL) {
		*pct = '\0';
		ns.scoped = 1;
		ns.scope_id = if_nametoindex(pct + 1);
		if (ns.scope_id == 0)
			ns.scope_id = (unsigned)strtoul(pct + 1, NULL, 10);
	}
	if (inet_pton(AF_INET, word, ns.addr) == 1 && !ns.scoped)
		ns.family = AF_INET;
	else if (inet_pton(AF_INET6, word, ns.addr) == 1)
		ns.family = AF_INET6;
	else {
		rc_warn(rc, word, "not an IP address");
		return 0;
	}
	ns.port = 53;
	snprintf(ns.text, sizeof(ns.text), "%.63s", word);
	grown = realloc(rc->servers, (rc->nservers + 1) * sizeof(*grown));
	if (grown == NULL)
		return -ENOMEM;
	rc->servers = grown;
	rc->servers[rc->nservers++] = ns;
	return 0;
}

static void
rc_clear_search(struct rsv_resolvconf *rc)
{
	size_t i;

	for (i = 0; i < rc->nsearch; i++)
		free(rc->search[i]);
	free(rc->search);
	rc->search = NULL;
	rc->nsearch = 0;
}

/* "search a b c" or "domain d": replaces the list (the last line wins). */
static int
rc_set_search(struct rsv_resolvconf *rc, struct rc_line *l, int single)
{
	char word[RC_WORD_MAX];
	size_t n;

	rc_clear_search(rc);
	while ((n = rc_word(l, word, sizeof(word))) > 0) {
		char **grown;

		/* One trailing dot is ignored (istio#30564). */
		if (n > 1 && word[n - 1] == '.')
			word[n - 1] = '\0';
		grown = realloc(rc->search, (rc->nsearch + 1) * sizeof(*grown));
		if (grown == NULL)
			return -ENOMEM;
		rc->search = grown;
		if ((rc->search[rc->nsearch] = strdup(word)) == NULL)
			return -ENOMEM;
		rc->nsearch++;
		if (single)
			break;
	}
	return 0;
}

static int
rc_parse_line(struct rsv_resolvconf *rc, const char *p, const char *end)
{
	struct rc_line l = {p, end};
	char key[RC_WORD_MAX], word[RC_WORD_MAX];
	const char *c;

	/* Comments: '#' or ';' at line start or after a blank. */
	for (c = p; c < end; c++)
		if ((*c == '#' || *c == ';') && (c == p || rc_isblank(c[-1]))) {
			l.end = c;
			break;
		}
	if (rc_word(&l, key, sizeof(key)) == 0)
		return 0;
	if (strcmp(key, "nameserver") == 0) {
		if (rc_word(&l, word, sizeof(word)) == 0)
			return 0;
		return rc_add_server(rc, word);
	}
	if (strcmp(key, "search") == 0)
		return rc_set_search(rc, &l, 0);
	if (strcmp(key, "domain") == 0)
		return rc_set_search(rc, &l, 1);
	return 0; /* options, sortlist, unknown: read and ignored */
}

int
rsv_resolvconf_parse(const char *text, size_t len, struct rsv_resolvconf **out)
{
	struct rsv_resolvconf *rc;
	const char *p = text, *end = text + len;
	int rc_err = 0;

	*out = NULL;
	if ((rc = calloc(1, sizeof(*rc))) == NULL)
		return -ENOMEM;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl != NULL ? nl : end;

		if ((rc_err = rc_parse_line(rc, p, eol)) != 0)
			goto fail;
		p = nl != NULL ? nl + 1 : end;
	}
	*out = rc;
	return 0;
fail:
	rsv_resolvconf_free(rc);
	return rc_err;
}

void
rsv_resolvconf_free(struct rsv_resolvconf *rc)
{
	if (rc == NULL)
		return;
	rc_clear_search(rc);
	free(rc->servers);
	free(rc);
}
