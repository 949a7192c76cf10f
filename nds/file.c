/*
 * file.c: reads a table file (SPEC §10.1).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nds/nds.h"
#include "nds/nds_impl.h"

#define READ_CHUNK (64u * 1024)

/* Reads fd whole, at most max bytes; size is a hint (fstat) or 0. */
static int
fd_read_all(int fd, size_t size, size_t max, char **out, size_t *outlen)
{
	size_t len = 0, cap = size < max ? size + 1 : max + 1;
	char *buf, *p;
	ssize_t n;
	int rc = 0;

	if ((buf = malloc(cap > 0 ? cap : 1)) == NULL)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			/* Grown one byte past max, to see a file too large. */
			if (len > max) {
				rc = -EFBIG;
				break;
			}
			cap = cap * 2 + READ_CHUNK;
			if (cap > max + 1)
				cap = max + 1;
			if ((p = realloc(buf, cap)) == NULL) {
				rc = -ENOMEM;
				break;
			}
			buf = p;
		}
		if ((n = read(fd, buf + len, cap - len)) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (rc == 0 && len > max)
		rc = -EFBIG;
	if (rc == 0 && len == cap) { /* room for the terminating NUL */
		if ((p = realloc(buf, len + 1)) == NULL)
			rc = -ENOMEM;
		else
			buf = p;
	}
	if (rc != 0) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

int
nds_file_read(const char *path, size_t max, char **buf, size_t *len)
{
	struct stat st;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(fd, &st) != 0)
		rc = -errno;
	else if (S_ISDIR(st.st_mode))
		rc = -EISDIR;
	else if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max)
		rc = -EFBIG;
	else
		rc = fd_read_all(fd,
		    S_ISREG(st.st_mode) ? (size_t)st.st_size : 0, max, buf,
		    len);
	close(fd);
	return rc;
}

/*
 * A table file is read through a window, so that loading a large table
 * holds the table plus WINDOW bytes, not the table plus the whole file.
 * The window grows only for a single entry larger than it.  Files are
 * read, never mapped: a mapped file cut short by a writer kills the
 * process with SIGBUS.
 */
#define WINDOW (256u * 1024)
#define WINDOW_MIN 4096u

/* A file read through a window: buf[start..len) is not parsed yet. */
struct win {
	int fd;
	char *buf;
	size_t start;  /* bytes of buf the parser took */
	size_t len;    /* bytes in buf */
	size_t cap;    /* bytes allocated */
	size_t total;  /* bytes read from the file */
	bool eof;      /* the last read saw the end of the file */
	bool seekable; /* a regular file, which can be read again */
	bool keep;     /* never drop the taken bytes: buf holds the file */
	int err;       /* 0, or what stopped the reading (-errno, -EFBIG) */
};

/* Opens path for w; *size is its size, or 0 if it has none (a pipe). */
static int
win_open(struct win *w, const char *path, size_t *size)
{
	struct stat st;

	if ((w->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(w->fd, &st) != 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > NDS_FILE_MAX)
		return -EFBIG;
	w->seekable = S_ISREG(st.st_mode);
	*size = w->seekable ? (size_t)st.st_size : 0;
	w->cap = *size < WINDOW ? *size + 1 : WINDOW;
	if (w->cap < WINDOW_MIN)
		w->cap = WINDOW_MIN;
	if ((w->buf = malloc(w->cap)) == NULL)
		return -ENOMEM;
	return 0;
}

/*
 * Reads on into w until the window is full or the file ends.  The taken
 * bytes make room (unless keep); a full window doubles, to one byte past
 * NDS_FILE_MAX, to see a file too large.  0, or w->err: -errno, -EFBIG or
 * -ENOMEM.
 */
static int
win_more(struct win *w)
{
	size_t ncap;
	ssize_t n;
	char *p;

	if (w->start > 0 && !w->keep) {
		memmove(w->buf, w->buf + w->start, w->len - w->start);
		w->len -= w->start;
		w->start = 0;
	}
	if (w->len == w->cap) {
		ncap = w->cap < (NDS_FILE_MAX + 1) / 2 ? w->cap * 2
		                                       : NDS_FILE_MAX + 1;
		if (ncap <= w->cap)
			return w->err = -EFBIG;
		if ((p = realloc(w->buf, ncap)) == NULL)
			return w->err = -ENOMEM;
		w->buf = p;
		w->cap = ncap;
	}
	while (w->len < w->cap && !w->eof) {
		if ((n = read(w->fd, w->buf + w->len, w->cap - w->len)) < 0) {
			if (errno == EINTR)
				continue;
			return w->err = -errno;
		}
		w->eof = n == 0;
		w->len += (size_t)n;
		if ((w->total += (size_t)n) > NDS_FILE_MAX)
			return w->err = -EFBIG;
	}
	return 0;
}

/* Reads w to the end of the file, keeping nothing, for w->err. */
static void
win_drain(struct win *w)
{
	w->keep = false;
	while (!w->eof && w->err == 0) {
		w->start = w->len;
		(void)win_more(w);
	}
}

/* Reads the whole file into w->buf[0..len), again if need be. */
static int
win_whole(struct win *w, size_t size)
{
	char *p;

	if (!w->keep) {
		if (lseek(w->fd, 0, SEEK_SET) != 0)
			return w->err = -errno;
		w->start = w->len = w->total = 0;
		w->eof = false;
		w->keep = true;
		if (size >= w->cap) { /* one read, and one to see the end */
			if ((p = realloc(w->buf, size + 1)) == NULL)
				return w->err = -ENOMEM;
			w->buf = p;
			w->cap = size + 1;
		}
	}
	while (!w->eof && w->err == 0)
		(void)win_more(w);
	return w->err;
}

/*
 * Reads the first non-space byte of the file into w (SPEC §10.1); its
 * index into *at, or w->len for a blank file.  Takes nothing.
 */
static int
win_detect(struct win *w, size_t *at)
{
	size_t i = 0;

	for (;;) {
		while (i < w->len && strchr(" \t\r\n", w->buf[i]) != NULL &&
		       w->buf[i] != '\0')
			i++;
		if (i < w->len || w->eof)
			break;
		if (win_more(w) != 0)
			return w->err;
	}
	*at = i;
	return 0;
}

/*
 * Feeds the file to the stream (pb, or else js) through the window, up
 * to its end.  0, w->err, or the stream's error (pb: reason in detail).
 */
static int
win_feed(struct win *w, struct nds_pb_stream *pb, struct nds_json_stream *js,
    char *detail, size_t dlen)
{
	size_t used = 0;
	int rc;

	for (;;) {
		if (pb != NULL)
			rc = nds_pb_stream_feed(pb,
			    (const uint8_t *)w->buf + w->start,
			    w->len - w->start, w->eof, &used, detail, dlen);
		else
			rc = nds_json_stream_feed(js, w->buf + w->start,
			    w->len - w->start, w->eof, &used);
		if (rc != 0 || w->eof)
			return rc;
		w->start += used;
		if (win_more(w) != 0)
			return w->err;
	}
}

/* The I/O error rc, naming path. */
static int
io_err(const char *path, int rc, char *err, size_t errlen)
{
	if (rc == -EFBIG)
		nds_errf(err, errlen, "%s: larger than %u bytes", path,
		    NDS_FILE_MAX);
	else
		nds_errf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

static int
pb_load(struct win *w, size_t size, const char *path,
    struct nds_nametable **out, char *err, size_t errlen)
{
	struct nds_pb_stream *s = NULL;
	char detail[256] = "";
	int rc;

	if ((rc = nds_pb_stream_create(size, &s)) != 0) {
		nds_errf(err, errlen, "%s: protobuf: out of memory", path);
		return rc;
	}
	rc = win_feed(w, s, NULL, detail, sizeof(detail));
	if (rc == 0)
		*out = nds_pb_stream_finish(s);
	nds_pb_stream_destroy(s);
	/* A file that cannot be read to its end, or is too large, says so
	 * rather than what is wrong in its first part (as when files were
	 * read whole before parsing). */
	if (rc != 0 && w->err == 0)
		win_drain(w);
	if (w->err != 0)
		return io_err(path, w->err, err, errlen);
	if (rc != 0)
		nds_errf(err, errlen, "%s: protobuf: %s", path, detail);
	return rc;
}

/*
 * A JSON file is streamed; what the stream cannot take (anything but the
 * usual shape, or an error) is left to nds_json_parse() of the whole file,
 * for its result and its message.  So a file that cannot be read again (a
 * pipe) is kept whole as it is read.
 */
static int
json_load(struct win *w, size_t size, const char *path,
    struct nds_nametable **out, char *err, size_t errlen)
{
	struct nds_json_stream *s = NULL;
	char detail[256] = "";
	int rc;

	w->keep = !w->seekable;
	if ((rc = nds_json_stream_create(&s)) != 0) {
		nds_errf(err, errlen, "%s: out of memory", path);
		return rc;
	}
	rc = win_feed(w, NULL, s, NULL, 0);
	if (rc == 0)
		*out = nds_json_stream_finish(s);
	nds_json_stream_destroy(s);
	if (rc == 0)
		return 0;
	if (w->err != 0 || win_whole(w, size) != 0)
		return io_err(path, w->err, err, errlen);
	rc = nds_json_parse(w->buf, w->len, out, detail, sizeof(detail));
	/* "\n{" also starts a protobuf table whose first entry is 123
	 * (0x7b) bytes long: try that before giving up. */
	if (rc != 0 && w->len >= 2 && w->buf[0] == '\n' && w->buf[1] == '{' &&
	    nds_pb_parse((const uint8_t *)w->buf, w->len, out, NULL, 0) == 0)
		rc = 0;
	else if (rc != 0)
		nds_errf(err, errlen, "%s: %s", path, detail);
	return rc;
}

int
nds_file_load(const char *path, struct nds_nametable **out, char *err,
    size_t errlen)
{
	struct win w = {.fd = -1};
	size_t size = 0, i = 0;
	int rc;

	*out = NULL;
	if ((rc = win_open(&w, path, &size)) != 0 ||
	    (rc = win_detect(&w, &i)) != 0) {
		io_err(path, rc, err, errlen);
	} else if (i == w.len) {
		if ((rc = nds_nametable_create(out)) != 0)
			nds_errf(err, errlen, "%s: out of memory", path);
	} else if (w.buf[i] == '{') {
		rc = json_load(&w, size, path, out, err, errlen);
	} else {
		rc = pb_load(&w, size, path, out, err, errlen);
	}
	if (w.fd >= 0)
		close(w.fd);
	free(w.buf);
	return rc;
}
