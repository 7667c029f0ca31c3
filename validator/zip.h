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
 * that code), findings (data before the archive, bad CRCs later) as findings.
 *
 * The end record is found as zipfile finds it (at the very end, else the last signature in the
 * last 64 KiB + 22 bytes; its comment must reach the end exactly); a zip64 locator must point at
 * a zip64 end record right before it, and the classic record must agree with it or hold the
 * 0xffff/0xffffffff placeholders. Offsets follow zipfile's "concat" rule, so an archive appended
 * to other bytes is read as zipfile reads it; z->start is then > 0 and a "polyglot" (the bytes
 * look like a pickle, severity high) or "zip-data-before-archive" (medium) finding is recorded.
 * Refused (PP_E_BAD_VALUE unless noted): entry counts that disagree with the directory, more
 * entries than the zip-entries limit (PP_E_LIMIT, checked before anything is allocated),
 * several disks, zip64 extensible data, extract versions above 6.3 (PP_E_UNSUPPORTED), names
 * with NUL, names flagged UTF-8 that are not (PP_E_DECODE), duplicate names -- also equal but
 * for ASCII case (miniz) or after cp437 decoding (zipfile) --, encryption or patch flags in
 * either header and methods other than 0 and 8 (PP_E_UNSUPPORTED), local headers whose name,
 * method, or (without a data descriptor) CRC and sizes differ from the central directory,
 * members outside the bytes before the central directory (PP_E_TRUNCATED), overlapping
 * members. On success every entry's data_offset + csize is proven inside the archive. */
pp_err pp_zip_open(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                   const char *where, pp_zip *z);
void pp_zip_close(pp_zip *z);
/* Exact (byte, case-sensitive) name match, or NULL. Names equal but for ASCII case were refused
 * at open, so a case-insensitive lookup (miniz's) would find the same entry or none. */
const pp_zip_entry *pp_zip_find(const pp_zip *z, const char *name, size_t namelen);
/* The member's bytes: borrowed from the archive when stored, else inflated into a buffer the
 * context keeps. A CRC mismatch is a finding ("zip-crc-mismatch", severity medium), not a reason
 * to skip the member (PyTorch ignores CRCs). *file_offset is the absolute offset of stored data,
 * else PP_NO_OFFSET. The CRC check reads every byte of the member: do not call this for large
 * array payloads that the scan skips (use e->data_offset and e->csize of a stored entry).
 * Deflate: the declared size is charged to inflated-bytes before inflating; inflate-ratio applies;
 * output that differs from the declared size is PP_E_BAD_VALUE. A stored member whose two sizes
 * differ is PP_E_BAD_VALUE. Errors are recorded in the context and returned. */
pp_err pp_zip_read(pp_scan_ctx *c, const pp_zip *z, const pp_zip_entry *e, const uint8_t **p,
                   size_t *n, uint64_t *file_offset);

#endif
