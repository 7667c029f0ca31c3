/* A hardened zip reader for .npz and PyTorch archives. The central directory is the truth, as
 * for zipfile and PyTorch's reader; everything it claims is checked against the bytes. */
#ifndef PP_ZIP_H
#define PP_ZIP_H

#include "container.h"

typedef struct pp_zip_entry {
    const char *name; /* borrowed from the central directory, not NUL-terminated */
    size_t namelen;
    uint64_t local_offset; /* offset of the local header within the archive bytes */
    uint64_t data_offset;  /* offset of the member data, proven inside the archive */
    uint64_t csize, usize;
    uint16_t method; /* 0 stored, 8 deflate (anything else is refused at open) */
    uint16_t flags;
    uint32_t crc;
} pp_zip_entry;

typedef struct pp_zip {
    const uint8_t *data; /* the archive bytes */
    size_t len;
    uint64_t base;   /* file offset of data[0], or PP_NO_OFFSET */
    const char *where;
    pp_zip_entry *e; /* in central-directory order */
    size_t n;
    uint64_t start; /* offset of the first local header (prepended data before it = polyglot) */
} pp_zip;

/* Parses and validates the archive; malformations and limits go to the context (and return
 * that code), findings (data before the archive, bad CRCs later) as findings. */
pp_err pp_zip_open(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                   const char *where, pp_zip *z);
void pp_zip_close(pp_zip *z);
/* Exact name match, or NULL. */
const pp_zip_entry *pp_zip_find(const pp_zip *z, const char *name, size_t namelen);
/* The member's bytes: borrowed from the archive when stored, else inflated into a buffer the
 * context keeps. A CRC mismatch is a finding ("zip-crc-mismatch"), not a reason to skip the
 * member (PyTorch ignores CRCs). *file_offset is the absolute offset of stored data, else
 * PP_NO_OFFSET. */
pp_err pp_zip_read(pp_scan_ctx *c, const pp_zip *z, const pp_zip_entry *e, const uint8_t **p,
                   size_t *n, uint64_t *file_offset);

#endif
