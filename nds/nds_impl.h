/*
 * nds_impl.h: helpers shared by the files of nds/ (not part of nds.h).
 */
#ifndef DNSPROXY_NDS_IMPL_H
#define DNSPROXY_NDS_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* Formats a reason into the caller's err buffer; NULL/0 buffers are fine. */
void nds_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Reads a whole file of at most max bytes into *buf (malloc'd, with a NUL
 * after the len bytes).  0, -errno, -EISDIR or -EFBIG.
 */
int nds_file_read(const char *path, size_t max, char **buf, size_t *len);

/*
 * Sizes nt for n keys in all (a decoder that counted them), so that
 * nds_nametable_add() neither grows the entry array nor rehashes until
 * then.  0 or -ENOMEM; nt is unchanged on failure.
 */
struct nds_nametable;
int nds_nametable_reserve(struct nds_nametable *nt, size_t n);

/*
 * A decoder that has an entry's key before the rest of it: hashes key and
 * starts loading its index slot, so that the nds_nametable_add() of that
 * entry, with the same key pointer and bytes, finds it in cache (~20% of
 * a 100k-service decode waited on that slot).  The next add() takes the
 * hash if its key is that pointer; any add() forgets it.
 */
void nds_nametable_prefetch(struct nds_nametable *nt, const char *key);

/*
 * Decoding an input that comes in pieces, e.g. a file read through a
 * window (nds_pb_parse() is one feed of the whole input):
 *
 *	nds_pb_stream_create(size, &s);
 *	nds_pb_stream_feed(s, buf, len, eof, &used, err, errlen);  repeated
 *	nt = nds_pb_stream_finish(s);	after the feed with eof, if it was 0
 *	nds_pb_stream_destroy(s);
 *
 * size is the whole input's size if known, else 0 (it only sizes the
 * table).  A feed decodes the complete top-level fields at buf[0..len) and
 * sets *used to the bytes it took; the caller passes buf[*used..len) again
 * in front of the next bytes.  A field that may go on past len is left
 * for the next feed, so a caller whose buffer holds no complete field
 * must grow it.  eof says that buf ends the input: everything is
 * decoded or it is an error.  Results and messages are those of
 * nds_pb_parse() on the whole input, byte offsets counted from its start.
 * create: 0 or -ENOMEM; feed: 0, -ENOMEM or -EINVAL (reason in err), and
 * no more feeds after an error; finish hands the table over to the
 * caller; destroy is NULL-safe.
 */
struct nds_pb_stream;
int nds_pb_stream_create(size_t size, struct nds_pb_stream **out);
int nds_pb_stream_feed(struct nds_pb_stream *s, const uint8_t *buf, size_t len,
    int eof, size_t *used, char *err, size_t errlen);
struct nds_nametable *nds_pb_stream_finish(struct nds_pb_stream *s);
void nds_pb_stream_destroy(struct nds_pb_stream *s);

/*
 * The same for the JSON form: a feed takes the complete tokens and
 * members of the usual shape, {"table": {host: {...}, ...}, ...}, one
 * entry's tree at a time.  A feed returns 0 (more, or done after eof) or
 * -1: the input is not of the usual shape or not valid, and only
 * nds_json_parse() of the whole input says what it is (the stream gives
 * no message; no more feeds after it).  A table from the stream is the
 * one nds_json_parse() gives.  create: 0 or -ENOMEM.
 */
struct nds_json_stream;
int nds_json_stream_create(struct nds_json_stream **out);

/*
 * nds_json_parse() without the stream: the whole document's jansson tree,
 * which takes every shape and says what is wrong.  What the stream takes
 * (its own scanner reads the usual entries, jansson the rest) it must
 * give alike: fuzz_json checks that.
 */
int nds_json_parse_tree(const char *buf, size_t len, struct nds_nametable **out,
    char *err, size_t errlen);
int nds_json_stream_feed(struct nds_json_stream *s, const char *buf, size_t len,
    int eof, size_t *used);
struct nds_nametable *nds_json_stream_finish(struct nds_json_stream *s);
void nds_json_stream_destroy(struct nds_json_stream *s);

#endif
