/*
 * snapshot.c: the last accepted table on disk (SPEC §5, D7), written so
 * that a crash at any moment leaves either the old file or the new one:
 * a temporary file beside the target, fsync, rename, fsync of the
 * directory.  Loading is nds_file_load(): a snapshot is a protobuf table.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nds/nds.h"
#include "nds/nds_impl.h"

static int
write_all(int fd, const uint8_t *data, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, data, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes the rename itself durable; failure here is not worth an error. */
static void
sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd;

	if (copy == NULL)
		return;
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >=
	    0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

int
nds_snapshot_tmp(const char *path, long pid, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s.tmp.%ld", path, pid);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
nds_snapshot_write(const char *path, const uint8_t *data, size_t len, char *err,
    size_t errlen)
{
	char tmp[4096];
	int fd, rc;

	if (nds_snapshot_tmp(path, (long)getpid(), tmp, sizeof(tmp)) != 0) {
		nds_errf(err, errlen, "snapshot %s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		nds_errf(err, errlen, "snapshot %s: %s", tmp, strerror(-rc));
		return rc;
	}
	rc = write_all(fd, data, len);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		nds_errf(err, errlen, "snapshot %s: %s", path, strerror(-rc));
		unlink(tmp);
		return rc;
	}
	sync_dir(path);
	return 0;
}
