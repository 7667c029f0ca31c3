/* Decompressors behind one bounded interface. Output goes into a buffer that grows with what the
 * decoder actually produced (doubling, never sized from a header's claim) and stops one byte past
 * the budget, so a bomb costs at most the budget in memory and the time to produce it. */
#include "inflate.h"

#include "arena.h"
#include "err.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#ifdef PP_HAVE_BZ2
#include <bzlib.h>
#endif
#ifdef PP_HAVE_LZMA
#include <lzma.h>
#endif
#ifdef PP_HAVE_LZ4
#include <lz4frame.h>
#endif

/* liblzma allocates the dictionary a header asks for up front: cap what a header may claim.
 * Real xz presets use at most 64 MiB (-9), .lzma files the same. */
#define LZMA_MEMLIMIT ((uint64_t)512 << 20)
/* Decoder input is fed in chunks no larger than this (zlib/bz2 counters are 32-bit). */
#define CHUNK_IN ((size_t)1 << 30)
#define FIRST_OUT ((size_t)1 << 16)

const char *pp_zkind_name(pp_zkind k)
{
    switch (k) {
    case PP_Z_ZLIB:
        return "zlib";
    case PP_Z_GZIP:
        return "gzip";
    case PP_Z_DEFLATE:
        return "deflate";
    case PP_Z_BZ2:
        return "bz2";
    case PP_Z_XZ:
        return "xz";
    case PP_Z_LZMA_ALONE:
        return "lzma";
    case PP_Z_LZ4:
        return "lz4";
    }
    return "unknown";
}

bool pp_inflate_supported(pp_zkind k)
{
    switch (k) {
    case PP_Z_ZLIB:
    case PP_Z_GZIP:
    case PP_Z_DEFLATE:
        return true;
#ifdef PP_HAVE_BZ2
    case PP_Z_BZ2:
        return true;
#endif
#ifdef PP_HAVE_LZMA
    case PP_Z_XZ:
    case PP_Z_LZMA_ALONE:
        return true;
#endif
#ifdef PP_HAVE_LZ4
    case PP_Z_LZ4:
        return true;
#endif
    default:
        return false;
    }
}

/* The growing output and its budget. */
typedef struct sink {
    uint8_t *buf;
    size_t n, cap;
    uint64_t limit;    /* most bytes allowed */
    pp_limit_id which; /* the limit named when it trips */
    char *why;
    size_t whylen;
} sink;

/* Room for more output: false with PP_E_LIMIT or PP_E_NOMEM in *e. */
static bool room(sink *s, pp_err *e)
{
    if (s->n < s->cap) return true;
    /* hostile: one byte past the limit is enough to know it was passed */
    uint64_t hard = s->limit + 1 < s->limit ? s->limit : s->limit + 1;
    if (hard > SIZE_MAX) hard = SIZE_MAX;
    if ((uint64_t)s->cap >= hard) {
        *e = PP_E_LIMIT;
        return false;
    }
    uint64_t nc = s->cap ? (uint64_t)s->cap * 2 : FIRST_OUT;
    if (nc > hard) nc = hard;
    uint8_t *nb = pp_realloc(s->buf, (size_t)nc);
    if (!nb) {
        *e = PP_E_NOMEM;
        return false;
    }
    s->buf = nb;
    s->cap = (size_t)nc;
    return true;
}

/* Budget after the fact: the decoder may have filled the last byte of the room. */
static pp_err over(const sink *s)
{
    return (uint64_t)s->n > s->limit ? PP_E_LIMIT : PP_OK;
}

static pp_err why(sink *s, pp_err e, const char *fmt, ...) PP_PRINTF(3, 4);
static pp_err why(sink *s, pp_err e, const char *fmt, ...)
{
    if (s->why && s->whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->why, s->whylen, fmt, ap);
        va_end(ap);
    }
    return e;
}

/* ---- zlib, gzip, raw deflate: one stream ---------------------------------------------------- */

static pp_err run_zlib(sink *s, pp_zkind kind, const uint8_t *src, size_t n, size_t *consumed)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    int wbits = kind == PP_Z_ZLIB ? 15 : kind == PP_Z_GZIP ? 16 + 15 : -15;
    if (inflateInit2(&z, wbits) != Z_OK) return PP_E_NOMEM;
    const char *name = pp_zkind_name(kind);
    size_t fed = 0;
    pp_err e = PP_OK;
    for (;;) {
        if (!room(s, &e)) break;
        if (z.avail_in == 0 && fed < n) {
            size_t k = n - fed < CHUNK_IN ? n - fed : CHUNK_IN;
            z.next_in = (Bytef *)(uintptr_t)(src + fed);
            z.avail_in = (uInt)k;
            fed += k;
        }
        size_t avail = s->cap - s->n;
        if (avail > UINT_MAX) avail = UINT_MAX;
        z.next_out = s->buf + s->n;
        z.avail_out = (uInt)avail;
        int rc = inflate(&z, Z_NO_FLUSH);
        s->n += avail - z.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && z.avail_out == 0) continue; /* needs more room */
        if (rc == Z_BUF_ERROR && z.avail_in == 0 && fed == n) {
            /* hostile: the input ends before the end-of-stream marker */
            e = why(s, PP_E_TRUNCATED, "%s stream truncated after %llu input bytes", name,
                    (unsigned long long)n);
            break;
        }
        if (rc == Z_MEM_ERROR) {
            e = PP_E_NOMEM;
            break;
        }
        /* hostile: corrupt data, bad header or check value, preset dictionary */
        e = PP_E_BAD_VALUE;
        if (s->why && s->whylen)
            snprintf(s->why, s->whylen, "corrupt %s stream at input byte %llu: %s", name,
                     (unsigned long long)(fed - z.avail_in), z.msg ? z.msg : "bad data");
        break;
    }
    if (consumed) *consumed = fed - z.avail_in;
    inflateEnd(&z);
    if (e == PP_OK) e = over(s);
    return e;
}

/* ---- bz2, xz/lzma, lz4: further streams as Python's file objects read them ------------------ */

/* One stream from src[0..n): PP_OK at its end, with *used bytes read. */
typedef pp_err (*stream_fn)(sink *s, const uint8_t *src, size_t n, size_t *used);

#ifdef PP_HAVE_BZ2
static pp_err one_bz2(sink *s, const uint8_t *src, size_t n, size_t *used)
{
    bz_stream z;
    memset(&z, 0, sizeof z);
    if (BZ2_bzDecompressInit(&z, 0, 0) != BZ_OK) return PP_E_NOMEM;
    size_t fed = 0;
    pp_err e = PP_OK;
    for (;;) {
        if (!room(s, &e)) break;
        if (z.avail_in == 0 && fed < n) {
            size_t k = n - fed < CHUNK_IN ? n - fed : CHUNK_IN;
            z.next_in = (char *)(uintptr_t)(src + fed);
            z.avail_in = (unsigned)k;
            fed += k;
        }
        size_t avail = s->cap - s->n;
        if (avail > UINT_MAX) avail = UINT_MAX;
        z.next_out = (char *)(s->buf + s->n);
        z.avail_out = (unsigned)avail;
        int rc = BZ2_bzDecompress(&z);
        size_t got = avail - z.avail_out;
        s->n += got;
        if (rc == BZ_STREAM_END) break;
        if (rc == BZ_OK) {
            if (z.avail_in == 0 && fed == n && z.avail_out > 0) {
                /* hostile: the input ends before the end-of-stream marker */
                e = why(s, PP_E_TRUNCATED, "%s stream truncated after %llu input bytes", "bz2",
                        (unsigned long long)n);
                break;
            }
            continue;
        }
        if (rc == BZ_MEM_ERROR) {
            e = PP_E_NOMEM;
            break;
        }
        e = why(s, PP_E_BAD_VALUE, "corrupt %s stream (error %d)", "bz2", rc);
        break;
    }
    *used = fed - z.avail_in;
    BZ2_bzDecompressEnd(&z);
    return e;
}
#endif

#ifdef PP_HAVE_LZMA
static pp_err one_lzma(sink *s, const uint8_t *src, size_t n, size_t *used)
{
    lzma_stream z = LZMA_STREAM_INIT;
    /* Python's LZMAFile reads with FORMAT_AUTO: each stream may be .xz or .lzma */
    if (lzma_auto_decoder(&z, LZMA_MEMLIMIT, 0) != LZMA_OK) return PP_E_NOMEM;
    z.next_in = src;
    z.avail_in = n;
    pp_err e = PP_OK;
    for (;;) {
        if (!room(s, &e)) break;
        size_t avail = s->cap - s->n;
        z.next_out = s->buf + s->n;
        z.avail_out = avail;
        lzma_ret rc = lzma_code(&z, LZMA_FINISH);
        s->n += avail - z.avail_out;
        if (rc == LZMA_STREAM_END) break;
        if (rc == LZMA_OK) continue;
        if (rc == LZMA_BUF_ERROR && z.avail_out == 0) continue;
        if (rc == LZMA_BUF_ERROR) {
            /* hostile: the input ends before the end of the stream */
            e = why(s, PP_E_TRUNCATED, "%s stream truncated after %llu input bytes", "xz/lzma",
                    (unsigned long long)n);
            break;
        }
        if (rc == LZMA_MEM_ERROR) {
            e = PP_E_NOMEM;
            break;
        }
        if (rc == LZMA_MEMLIMIT_ERROR) {
            /* hostile: a header claiming a huge dictionary */
            e = why(s, PP_E_UNSUPPORTED, "%s stream needs more than %llu bytes of dictionary",
                    "xz/lzma", (unsigned long long)LZMA_MEMLIMIT);
            break;
        }
        e = why(s, PP_E_BAD_VALUE, "corrupt %s stream (liblzma error %llu)", "xz/lzma",
                (unsigned long long)rc);
        break;
    }
    *used = n - z.avail_in;
    lzma_end(&z);
    return e;
}
#endif

#ifdef PP_HAVE_LZ4
static pp_err one_lz4(sink *s, const uint8_t *src, size_t n, size_t *used)
{
    LZ4F_dctx *d = NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) return PP_E_NOMEM;
    size_t pos = 0;
    pp_err e = PP_OK;
    for (;;) {
        if (!room(s, &e)) break;
        size_t roomsz = s->cap - s->n, dst = roomsz, in = n - pos;
        size_t hint = LZ4F_decompress(d, s->buf + s->n, &dst, src + pos, &in, NULL);
        s->n += dst;
        pos += in;
        if (LZ4F_isError(hint)) {
            /* hostile: corrupt block, bad checksum, bad header */
            e = PP_E_BAD_VALUE;
            if (s->why && s->whylen)
                snprintf(s->why, s->whylen, "corrupt lz4 frame: %s", LZ4F_getErrorName(hint));
            break;
        }
        if (hint == 0) break; /* end of frame */
        if (pos == n && dst < roomsz) {
            /* hostile: the input ends inside the frame */
            e = why(s, PP_E_TRUNCATED, "%s frame truncated after %llu input bytes", "lz4",
                    (unsigned long long)n);
            break;
        }
    }
    *used = pos;
    LZ4F_freeDecompressionContext(d);
    return e;
}
#endif

#if defined(PP_HAVE_BZ2) || defined(PP_HAVE_LZMA) || defined(PP_HAVE_LZ4)
static pp_err run_streams(sink *s, stream_fn one, const uint8_t *src, size_t n, size_t *consumed)
{
    size_t pos = 0;
    pp_err e = PP_OK;
    for (unsigned k = 0;; k++) {
        size_t used = 0, before = s->n;
        e = one(s, src + pos, n - pos, &used);
        if (e != PP_OK && k > 0 && s->n == before && e != PP_E_LIMIT && e != PP_E_NOMEM &&
            e != PP_E_TRUNCATED) {
            /* Python: "Trailing data isn't a valid compressed stream; ignore it." */
            if (s->why && s->whylen) s->why[0] = 0;
            e = PP_OK;
            break;
        }
        pos += used;
        if (e != PP_OK || pos >= n || used == 0) break;
    }
    if (consumed) *consumed = pos;
    if (e == PP_OK) e = over(s);
    return e;
}

#endif

static pp_err inflate_any(pp_zkind kind, const uint8_t *src, size_t n, uint64_t max_out,
                          uint64_t ratio, bool keep, uint8_t **out, size_t *outn, size_t *consumed,
                          pp_limit_id *limit, char *whybuf, size_t whylen)
{
    *out = NULL;
    *outn = 0;
    if (consumed) *consumed = 0;
    if (whybuf && whylen) whybuf[0] = 0;
    sink s = {.why = whybuf, .whylen = whylen, .limit = max_out, .which = PP_LIMIT_INFLATED_BYTES};
    /* the ratio budget: ratio x n, saturating */
    uint64_t rcap = ratio != 0 && (uint64_t)n > UINT64_MAX / ratio ? UINT64_MAX : ratio * n;
    if (rcap < s.limit) {
        s.limit = rcap;
        s.which = PP_LIMIT_INFLATE_RATIO;
    }
    pp_err e;
    switch (kind) {
    case PP_Z_ZLIB:
    case PP_Z_GZIP:
    case PP_Z_DEFLATE:
        e = run_zlib(&s, kind, src, n, consumed);
        break;
#ifdef PP_HAVE_BZ2
    case PP_Z_BZ2:
        e = run_streams(&s, one_bz2, src, n, consumed);
        break;
#endif
#ifdef PP_HAVE_LZMA
    case PP_Z_XZ:
    case PP_Z_LZMA_ALONE:
        e = run_streams(&s, one_lzma, src, n, consumed);
        break;
#endif
#ifdef PP_HAVE_LZ4
    case PP_Z_LZ4:
        e = run_streams(&s, one_lz4, src, n, consumed);
        break;
#endif
    default:
        if (whybuf && whylen)
            snprintf(whybuf, whylen, "%s decompression is not compiled in", pp_zkind_name(kind));
        return PP_E_UNSUPPORTED;
    }
    if (e == PP_E_LIMIT) {
        if (limit) *limit = s.which;
        if (s.n > s.limit) s.n = (size_t)s.limit; /* keep only what the budget allowed */
        if (whybuf && whylen)
            snprintf(whybuf, whylen, "%s output passes %s (%llu bytes)", pp_zkind_name(kind),
                     s.which == PP_LIMIT_INFLATE_RATIO ? "inflate-ratio" : "inflated-bytes",
                     (unsigned long long)s.limit);
    }
    if (e != PP_OK && (!keep || e == PP_E_NOMEM || e == PP_E_UNSUPPORTED || s.n == 0)) {
        pp_free(s.buf);
        return e;
    }
    if (s.n == 0) {
        pp_free(s.buf);
        s.buf = pp_malloc(1); /* an empty output is still a buffer the caller frees */
        if (!s.buf) return PP_E_NOMEM;
    }
    *out = s.buf;
    *outn = s.n;
    return e;
}

pp_err pp_inflate(pp_zkind kind, const uint8_t *src, size_t n, uint64_t max_out, uint64_t ratio,
                  uint8_t **out, size_t *outn, size_t *consumed, pp_limit_id *limit, char *whybuf,
                  size_t whylen)
{
    return inflate_any(kind, src, n, max_out, ratio, false, out, outn, consumed, limit, whybuf,
                       whylen);
}

pp_err pp_inflate_prefix(pp_zkind kind, const uint8_t *src, size_t n, uint64_t max_out,
                         uint64_t ratio, uint8_t **out, size_t *outn, size_t *consumed,
                         pp_limit_id *limit, char *whybuf, size_t whylen)
{
    return inflate_any(kind, src, n, max_out, ratio, true, out, outn, consumed, limit, whybuf,
                       whylen);
}
