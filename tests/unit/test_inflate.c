/* pp_inflate: every kind round-trips, every truncation and bit flip of a good stream ends in a
 * clean error (never a crash or a "success" with wrong bytes), and both budgets trip with their
 * names. zlib/gzip/deflate inputs are made here with zlib; the others are small fixed vectors made
 * by Python's bz2/lzma modules and the lz4 tool. */
#include "arena.h"
#include "inflate.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char plain[] = "hello hello hello hello pickleproof\n"
                            "hello hello hello hello pickleproof\n"
                            "hello hello hello hello pickleproof\n";
#define PLAIN_N (sizeof plain - 1)

/* clang-format off */
static const uint8_t v_bz2[] = {0x42,0x5a,0x68,0x39,0x31,0x41,0x59,0x26,0x53,0x59,0x1f,0xcf,0x85,0x9f,0x00,0x00,0x13,0x51,0x80,0x00,0x10,0x40,0x00,0x0b,0x6c,0xd0,0x00,0x20,0x00,0x31,0x03,0x40,0xd0,0x11,0x50,0x1e,0xa3,0x46,0x5e,0x83,0x18,0x0f,0x5c,0x3a,0x76,0x85,0x3c,0x69,0xa0,0x60,0x0c,0x7c,0xc7,0x2c,0x7e,0x2e,0xe4,0x8a,0x70,0xa1,0x20,0x3f,0x9f,0x0b,0x3e};
static const uint8_t v_xz[] = {0xfd,0x37,0x7a,0x58,0x5a,0x00,0x00,0x04,0xe6,0xd6,0xb4,0x46,0x02,0x00,0x21,0x01,0x16,0x00,0x00,0x00,0x74,0x2f,0xe5,0xa3,0xe0,0x00,0x6b,0x00,0x1b,0x5d,0x00,0x34,0x19,0x49,0xee,0x8d,0xe9,0x56,0x0c,0x60,0xaf,0xeb,0x6f,0x08,0x64,0x5e,0xff,0x15,0x82,0xf8,0x76,0xa5,0x67,0x59,0x87,0xb2,0x00,0x00,0x00,0x00,0x67,0xdf,0x09,0x2f,0x71,0xf6,0x74,0xc9,0x00,0x01,0x37,0x6c,0x6c,0x38,0x85,0xf4,0x1f,0xb6,0xf3,0x7d,0x01,0x00,0x00,0x00,0x00,0x04,0x59,0x5a};
static const uint8_t v_lzma[] = {0x5d,0x00,0x00,0x80,0x00,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,0x00,0x34,0x19,0x49,0xee,0x8d,0xe9,0x56,0x0c,0x60,0xaf,0xeb,0x6f,0x08,0x64,0x5e,0xff,0x15,0x82,0xf8,0x76,0xa5,0x67,0x59,0xb9,0xc9,0x3f,0xff,0xff,0xe9,0xdc,0x00,0x00};
static const uint8_t v_lz4[] = {0x04,0x22,0x4d,0x18,0x64,0x40,0xa7,0x25,0x00,0x00,0x00,0x6e,0x68,0x65,0x6c,0x6c,0x6f,0x20,0x06,0x00,0xce,0x70,0x69,0x63,0x6b,0x6c,0x65,0x70,0x72,0x6f,0x6f,0x66,0x0a,0x1e,0x00,0x02,0x12,0x00,0x0f,0x24,0x00,0x18,0x50,0x72,0x6f,0x6f,0x66,0x0a,0x00,0x00,0x00,0x00,0x0a,0xe4,0xba,0x03};
/* clang-format on */

/* Compresses with zlib in the given framing (wbits 15 zlib, 31 gzip, -15 raw). */
static size_t zpack(const uint8_t *src, size_t n, int wbits, int level, uint8_t *dst, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    size_t out = z.total_out;
    deflateEnd(&z);
    return rc == Z_STREAM_END ? out : 0;
}

static pp_err run(pp_zkind k, const uint8_t *src, size_t n, uint64_t max, uint64_t ratio,
                  uint8_t **out, size_t *outn, size_t *used, pp_limit_id *lim)
{
    char why[128];
    return pp_inflate(k, src, n, max, ratio, out, outn, used, lim, why, sizeof why);
}

/* Round trip, then every truncation and every single-bit flip: never a crash; a truncation is
 * never success with fewer bytes than the whole output (that would hide a cut stream). */
static void exercise(pp_zkind k, const uint8_t *src, size_t n, bool checksummed)
{
    const char *name = pp_zkind_name(k);
    if (!pp_inflate_supported(k)) {
        uint8_t *o = NULL;
        size_t on = 0;
        CHECKF(run(k, src, n, 1 << 20, 1000, &o, &on, NULL, NULL) == PP_E_UNSUPPORTED,
               "%s unsupported", name);
        return;
    }
    uint8_t *o = NULL;
    size_t on = 0, used = 0;
    pp_err e = run(k, src, n, 1 << 20, 1000, &o, &on, &used, NULL);
    CHECKF(e == PP_OK && on == PLAIN_N && o && memcmp(o, plain, PLAIN_N) == 0 && used == n,
           "%s round trip (e=%d on=%zu used=%zu n=%zu)", name, (int)e, on, used, n);
    pp_free(o);
    for (size_t cut = 0; cut < n; cut++) {
        o = NULL;
        e = run(k, src, cut, 1 << 20, 1000, &o, &on, &used, NULL);
        CHECKF(e != PP_OK || (on == PLAIN_N && memcmp(o, plain, on) == 0),
               "%s cut at %zu gives %d with %zu bytes", name, cut, (int)e, on);
        CHECKF(e == PP_OK || o == NULL, "%s cut at %zu: no buffer on error", name, cut);
        pp_free(o);
    }
    uint8_t *m = malloc(n);
    int wrong = 0;
    for (size_t i = 0; i < n * 8; i++) {
        memcpy(m, src, n);
        m[i / 8] ^= (uint8_t)(1u << (i % 8));
        o = NULL;
        e = run(k, m, n, 1 << 20, 1000, &o, &on, &used, NULL);
        if (e == PP_OK && checksummed && (on != PLAIN_N || memcmp(o, plain, on) != 0)) wrong++;
        pp_free(o);
    }
    free(m);
    CHECKF(wrong == 0, "%s: %d bit flips decoded to wrong bytes without error", name, wrong);
}

static void limits(void)
{
    size_t big = 4 << 20;
    uint8_t *zeros = calloc(1, big);
    uint8_t *z = malloc(big);
    size_t zn = zpack(zeros, big, 31, 9, z, big);
    CHECK(zn > 0 && zn < 8192);
    uint8_t *o = NULL;
    size_t on = 0;
    pp_limit_id lim = PP_LIMIT__COUNT;
    pp_err e = run(PP_Z_GZIP, z, zn, 1 << 20, 100000, &o, &on, NULL, &lim);
    CHECKF(e == PP_E_LIMIT && lim == PP_LIMIT_INFLATED_BYTES && !o, "inflated-bytes (e=%d)",
           (int)e);
    lim = PP_LIMIT__COUNT;
    e = run(PP_Z_GZIP, z, zn, 1 << 30, 100, &o, &on, NULL, &lim);
    CHECKF(e == PP_E_LIMIT && lim == PP_LIMIT_INFLATE_RATIO && !o, "inflate-ratio (e=%d)", (int)e);
    e = run(PP_Z_GZIP, z, zn, big, 100000, &o, &on, NULL, &lim);
    CHECKF(e == PP_OK && on == big, "exactly at the budget is fine (e=%d)", (int)e);
    pp_free(o);
    e = run(PP_Z_GZIP, z, zn, big - 1, 100000, &o, &on, NULL, &lim);
    CHECKF(e == PP_E_LIMIT, "one byte over the budget");
    /* the prefix variant keeps what the budget allowed */
    char why[128];
    e = pp_inflate_prefix(PP_Z_GZIP, z, zn, 1000, 100000, &o, &on, NULL, &lim, why, sizeof why);
    CHECKF(e == PP_E_LIMIT && o && on == 1000, "prefix kept on limit (on=%zu)", on);
    pp_free(o);
    e = pp_inflate_prefix(PP_Z_GZIP, z, zn / 2, 1 << 30, 100000, &o, &on, NULL, &lim, why,
                          sizeof why);
    CHECKF(e == PP_E_TRUNCATED && o && on > 0 && on < big, "prefix kept on truncation: %s", why);
    pp_free(o);
    free(zeros);
    free(z);
}

static void trailing(void)
{
    uint8_t buf[512];
    size_t n = zpack((const uint8_t *)plain, PLAIN_N, 15, 6, buf, sizeof buf);
    memcpy(buf + n, "garbage", 7);
    uint8_t *o = NULL;
    size_t on = 0, used = 0;
    CHECK(run(PP_Z_ZLIB, buf, n + 7, 1 << 20, 1000, &o, &on, &used, NULL) == PP_OK);
    CHECKF(used == n && on == PLAIN_N, "zlib stops at the end of its stream (used %zu)", used);
    pp_free(o);
    /* a second zlib stream is not read (joblib's BinaryZlibFile never reads past the first) */
    memcpy(buf + n, buf, n);
    CHECK(run(PP_Z_ZLIB, buf, 2 * n, 1 << 20, 1000, &o, &on, &used, NULL) == PP_OK);
    CHECK(used == n && on == PLAIN_N);
    pp_free(o);
    if (pp_inflate_supported(PP_Z_BZ2)) {
        /* bz2 reads further streams and ignores trailing bytes that start none */
        uint8_t b2[2 * sizeof v_bz2 + 3];
        memcpy(b2, v_bz2, sizeof v_bz2);
        memcpy(b2 + sizeof v_bz2, v_bz2, sizeof v_bz2);
        memcpy(b2 + 2 * sizeof v_bz2, "abc", 3);
        CHECK(run(PP_Z_BZ2, b2, sizeof b2, 1 << 20, 1000, &o, &on, &used, NULL) == PP_OK);
        CHECKF(on == 2 * PLAIN_N && used == 2 * sizeof v_bz2, "bz2 two streams (on=%zu)", on);
        pp_free(o);
    }
    /* an empty input is truncated, not an empty success */
    CHECK(run(PP_Z_ZLIB, buf, 0, 1 << 20, 1000, &o, &on, &used, NULL) == PP_E_TRUNCATED);
    CHECK(run(PP_Z_GZIP, (const uint8_t *)"\x1f\x8b\x09", 3, 1 << 20, 1000, &o, &on, &used, NULL) !=
          PP_OK);
}

int main(void)
{
    uint8_t buf[512];
    size_t n = zpack((const uint8_t *)plain, PLAIN_N, 15, 6, buf, sizeof buf);
    exercise(PP_Z_ZLIB, buf, n, true);
    n = zpack((const uint8_t *)plain, PLAIN_N, 31, 1, buf, sizeof buf);
    exercise(PP_Z_GZIP, buf, n, true);
    n = zpack((const uint8_t *)plain, PLAIN_N, -15, 9, buf, sizeof buf);
    exercise(PP_Z_DEFLATE, buf, n, false);
    exercise(PP_Z_BZ2, v_bz2, sizeof v_bz2, true);
    exercise(PP_Z_XZ, v_xz, sizeof v_xz, true);
    exercise(PP_Z_LZMA_ALONE, v_lzma, sizeof v_lzma, false);
    exercise(PP_Z_LZ4, v_lz4, sizeof v_lz4, true);
    CHECK(strcmp(pp_zkind_name(PP_Z_LZMA_ALONE), "lzma") == 0);
    limits();
    trailing();
    return tap_done();
}
