/*
 * nds_impl.h: helpers shared by the files of nds/ (not part of nds.h).
 */
#ifndef DNSPROXY_NDS_IMPL_H
#define DNSPROXY_NDS_IMPL_H

#include <stddef.h>

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

#endif
