/* Decompression for containers: every compressor joblib writes and zip's deflate, bounded by the
 * input's inflated-bytes budget and the inflate-ratio limit. zlib is required; bz2, xz/lzma and
 * lz4 are compiled in when their libraries were found (PP_HAVE_BZ2, PP_HAVE_LZMA, PP_HAVE_LZ4). */
#ifndef PP_INFLATE_H
#define PP_INFLATE_H

#include "pickleproof.h"

#include <stdbool.h>

typedef enum pp_zkind {
    PP_Z_ZLIB = 0, /* zlib stream (joblib 'zlib') */
    PP_Z_GZIP,     /* one gzip member; *consumed says where a next one starts */
    PP_Z_DEFLATE,  /* raw deflate (zip method 8) */
    PP_Z_BZ2,
    PP_Z_XZ,
    PP_Z_LZMA_ALONE, /* .lzma ("lzma" in joblib) */
    PP_Z_LZ4         /* lz4 frame */
} pp_zkind;

const char *pp_zkind_name(pp_zkind k); /* "zlib", "gzip", "deflate", "bz2", "xz", "lzma", "lz4" */
bool pp_inflate_supported(pp_zkind k);

/* Decompresses src[0..n) into a new pp_malloc'd buffer (*out, *outn). At most max_out bytes are
 * produced: more is PP_E_LIMIT with *limit = PP_LIMIT_INFLATED_BYTES; more than ratio x n bytes
 * is PP_E_LIMIT with PP_LIMIT_INFLATE_RATIO. Corrupt or truncated input is PP_E_TRUNCATED or
 * PP_E_BAD_VALUE with a reason in why. An unsupported kind is PP_E_UNSUPPORTED. *consumed
 * receives how many input bytes the stream used (NULL allowed). Memory grows with the output,
 * never allocated from a size the input claims; an xz/lzma header asking for more than 512 MiB
 * of dictionary is PP_E_UNSUPPORTED. On any error *out is NULL. Bytes after the end of the
 * stream are not an error (see pp_inflate_prefix for how many streams each kind reads). */
pp_err pp_inflate(pp_zkind kind, const uint8_t *src, size_t n, uint64_t max_out, uint64_t ratio,
                  uint8_t **out, size_t *outn, size_t *consumed, pp_limit_id *limit, char *why,
                  size_t whylen);

/* Like pp_inflate, but on PP_E_TRUNCATED, PP_E_BAD_VALUE and PP_E_LIMIT *out still holds the
 * bytes produced before the failure (*outn of them, at most the limit; the caller frees it;
 * NULL when nothing was produced). joblib's readers decompress as the unpickler reads, so a pickle
 * that ends inside the good prefix of a broken stream has already run: containers scan that
 * prefix. Bytes after the end of the (last) stream are not an error: *consumed tells where they
 * start. zlib, gzip and deflate read one stream (as joblib's BinaryZlibFile does: it never goes
 * past the first end of stream); bz2, xz/lzma and lz4 read further streams as Python's
 * bz2/lzma/lz4 file objects do, and stop without error at bytes that do not start one. */
pp_err pp_inflate_prefix(pp_zkind kind, const uint8_t *src, size_t n, uint64_t max_out,
                         uint64_t ratio, uint8_t **out, size_t *outn, size_t *consumed,
                         pp_limit_id *limit, char *why, size_t whylen);

#endif
