/*
 * tmpfile.h: a scratch file per cmocka test (setup/teardown) for tests of
 * file loading.  Include after <cmocka.h>.
 *
 *	cmocka_unit_test_setup_teardown(test_x, tmp_setup, tmp_teardown)
 *	write_file(*state, bytes, len); ... load(((struct tmpdir
 **)*state)->path)
 */
#ifndef DNSPROXY_TEST_TMPFILE_H
#define DNSPROXY_TEST_TMPFILE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct tmpdir {
	char dir[64];  /* mkdtemp() directory */
	char path[96]; /* the one file inside it */
};

static int
tmp_setup(void **state)
{
	struct tmpdir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(d->dir, sizeof(d->dir), "/tmp/dnsproxy-test.XXXXXX");
	if (mkdtemp(d->dir) == NULL) {
		free(d);
		return -1;
	}
	snprintf(d->path, sizeof(d->path), "%s/table", d->dir);
	*state = d;
	return 0;
}

static int
tmp_teardown(void **state)
{
	struct tmpdir *d = *state;

	unlink(d->path);
	rmdir(d->dir);
	free(d);
	return 0;
}

static void
write_file(const struct tmpdir *d, const void *buf, size_t len)
{
	FILE *f = fopen(d->path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

#endif
