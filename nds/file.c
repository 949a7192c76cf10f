/*
 * file.c: reads a table file (SPEC §10.1).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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

int
nds_file_load(const char *path, struct nds_nametable **out, char *err,
    size_t errlen)
{
	char detail[256];
	char *buf = NULL;
	size_t len = 0, i;
	int rc;

	*out = NULL;
	if ((rc = nds_file_read(path, NDS_FILE_MAX, &buf, &len)) != 0) {
		if (rc == -EFBIG)
			nds_errf(err, errlen, "%s: larger than %u bytes", path,
			    NDS_FILE_MAX);
		else
			nds_errf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	/* The format is told by the first non-space byte (SPEC §10.1). */
	for (i = 0;
	     i < len && strchr(" \t\r\n", buf[i]) != NULL && buf[i] != '\0';
	     i++)
		;
	if (i == len) {
		if ((rc = nds_nametable_create(out)) != 0)
			nds_errf(err, errlen, "%s: out of memory", path);
	} else if (buf[i] == '{') {
		detail[0] = '\0';
		rc = nds_json_parse(buf, len, out, detail, sizeof(detail));
		/* "\n{" also starts a protobuf table whose first entry is
		 * 123 (0x7b) bytes long: try that before giving up. */
		if (rc != 0 && i == 1 && buf[0] == '\n' &&
		    nds_pb_parse((const uint8_t *)buf, len, out, NULL, 0) == 0)
			rc = 0;
		else if (rc != 0)
			nds_errf(err, errlen, "%s: %s", path, detail);
	} else {
		detail[0] = '\0';
		if ((rc = nds_pb_parse((const uint8_t *)buf, len, out, detail,
		         sizeof(detail))) != 0)
			nds_errf(err, errlen, "%s: protobuf: %s", path, detail);
	}
	free(buf);
	return rc;
}
