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

#define STREAM_DEPTH 1000 /* deeper input goes the whole-tree way */

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

/* One JSON value at buf[*pos..len); *pos moves past it.  NULL if bad. */
static json_t *
value_take(const char *buf, size_t len, size_t *pos)
{
	json_error_t je;
	json_t *v;

	v = json_loadb(buf + *pos, len - *pos,
	    JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &je);
	if (v != NULL)
		*pos += (size_t)je.position;
	return v;
}

/*
 * A member name and its colon at buf[*pos..len); the name into *out (a
 * string value to json_decref()).  -1 if not one.
 */
static int
name_take(const char *buf, size_t len, size_t *pos, json_t **out)
{
	*pos = skip_ws(buf, len, *pos);
	if (*pos >= len || buf[*pos] != '"' ||
	    (*out = value_take(buf, len, pos)) == NULL)
		return -1;
	*pos = skip_ws(buf, len, *pos);
	if (*pos >= len || buf[*pos] != ':') {
		json_decref(*out);
		return -1;
	}
	*pos = skip_ws(buf, len, *pos + 1);
	return 0;
}

/* After a member: ',' (more follow, 1) or '}' (the end, 0); -1 if bad. */
static int
member_next(const char *buf, size_t len, size_t *pos)
{
	*pos = skip_ws(buf, len, *pos);
	if (*pos < len && (buf[*pos] == ',' || buf[*pos] == '}'))
		return buf[(*pos)++] == ',';
	return -1;
}

/* The "table" object at buf[*pos..len), entry by entry. */
static int
table_stream(const char *buf, size_t len, size_t *pos, struct nds_nametable *nt)
{
	struct strv ips = {0}, alt = {0};
	json_t *k = NULL, *v;
	int more, rc = -1;

	if (*pos < len && buf[*pos] == 'n') { /* null: an empty table */
		if ((v = value_take(buf, len, pos)) == NULL)
			return -1;
		rc = json_is_null(v) ? 0 : -1;
		json_decref(v);
		return rc;
	}
	if (*pos >= len || buf[*pos] != '{')
		return -1;
	*pos = skip_ws(buf, len, *pos + 1);
	if (*pos < len && buf[*pos] == '}') {
		(*pos)++;
		return 0;
	}
	do {
		if (name_take(buf, len, pos, &k) != 0)
			goto out;
		v = value_take(buf, len, pos);
		more = v == NULL || !json_is_string(k) ||
		               entry_parse(nt, json_string_value(k), v, &ips,
		                   &alt, NULL, 0) != 0
		           ? -1
		           : member_next(buf, len, pos);
		json_decref(v);
		json_decref(k);
		if (more < 0)
			goto out;
	} while (more);
	rc = 0;
out:
	free(ips.v);
	free(alt.v);
	return rc;
}

/*
 * The usual shape, {"table": {host: {...}, ...}, ...}, parsed with one
 * entry's tree at a time instead of the whole document's (a 100k-entry
 * file makes a ~100 MB tree).  Anything unusual (an error, "table" twice,
 * deep nesting) returns -1 and the caller parses the whole tree, which
 * gives the same result and the same messages as before.
 */
static int
json_stream(const char *buf, size_t len, struct nds_nametable *nt)
{
	size_t pos = skip_ws(buf, len, 0);
	bool table = false;
	json_t *k, *v;
	int more;

	if (pos >= len || buf[pos] != '{' || !depth_ok(buf, len, STREAM_DEPTH))
		return -1;
	pos = skip_ws(buf, len, pos + 1);
	if (pos < len && buf[pos] == '}') {
		pos++;
		more = 0;
	} else {
		do {
			if (name_take(buf, len, &pos, &k) != 0)
				return -1;
			if (json_is_string(k) &&
			    strcmp(json_string_value(k), "table") == 0) {
				json_decref(k);
				if (table ||
				    table_stream(buf, len, &pos, nt) != 0)
					return -1;
				table = true;
			} else {
				json_decref(k);
				if ((v = value_take(buf, len, &pos)) == NULL)
					return -1;
				json_decref(v);
			}
			if ((more = member_next(buf, len, &pos)) < 0)
				return -1;
		} while (more);
	}
	return skip_ws(buf, len, pos) == len ? 0 : -1;
}

int
nds_json_parse(const char *buf, size_t len, struct nds_nametable **out,
    char *err, size_t errlen)
{
	struct nds_nametable *nt = NULL;
	json_error_t je;
	json_t *root;
	int rc;

	*out = NULL;
	if (nds_nametable_create(&nt) != 0) {
		nds_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (json_stream(buf, len, nt) == 0) {
		*out = nt;
		return 0;
	}
	nds_nametable_destroy(nt);
	nt = NULL;
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
