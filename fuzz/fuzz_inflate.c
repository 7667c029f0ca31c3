/* pp_inflate on every decompression path: the first byte picks the kind (zlib, gzip, deflate,
 * bz2, xz, lzma-alone, lz4: byte % 7), the rest is its input. Seeds kind0..kind6 hold one valid
 * stream of each. Invariants:
 *   - output never passes the budget, consumed never passes the input, pp_inflate leaves no
 *     buffer on error, and the prefix variant agrees with it on success;
 *   - decompression is a stream: the first half of the bytes a good stream used decodes (with
 *     the prefix variant) to a prefix of the full output;
 *   - zlib, gzip and deflate output recompressed with zlib decodes back to the same bytes. */
#include "arena.h"
#include "fuzz_common.h"
#include "inflate.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* out compressed by zlib as kind k (zlib, gzip or raw deflate), then decoded by pp_inflate */
static void roundtrip(pp_zkind k, const uint8_t *out, size_t outn)
{
    int wbits = k == PP_Z_ZLIB ? 15 : k == PP_Z_GZIP ? 31 : -15;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return;
    uLong bound = deflateBound(&z, (uLong)outn) + 32;
    uint8_t *c = malloc(bound);
    check(c != NULL);
    z.next_in = (Bytef *)(uintptr_t)out;
    z.avail_in = (uInt)outn;
    z.next_out = c;
    z.avail_out = (uInt)bound;
    check(deflate(&z, Z_FINISH) == Z_STREAM_END);
    size_t cn = bound - z.avail_out;
    deflateEnd(&z);
    uint8_t *back = NULL;
    size_t backn = 0, used = 0;
    pp_limit_id lim;
    char why[128];
    check(pp_inflate(k, c, cn, (uint64_t)outn + 1, UINT64_MAX / 2, &back, &backn, &used, &lim, why,
                     sizeof why) == PP_OK);
    check(backn == outn && used == cn && (outn == 0 || memcmp(back, out, outn) == 0));
    pp_free(back);
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    pp_zkind k = (pp_zkind)(data[0] % 7);
    const uint8_t *src = data + 1;
    size_t n = size - 1;
    uint64_t max = 1u << 20;
    uint8_t *out = NULL, *out2 = NULL;
    size_t outn = 0, outn2 = 0, used = 0, used2 = 0;
    pp_limit_id lim;
    char why[128];
    pp_err e = pp_inflate(k, src, n, max, 200, &out, &outn, &used, &lim, why, sizeof why);
    check(e != PP_OK || (out != NULL && outn <= max && used <= n));
    check(e == PP_OK || out == NULL);
    pp_err e2 =
        pp_inflate_prefix(k, src, n, max, 200, &out2, &outn2, &used2, &lim, why, sizeof why);
    check(e2 == e);
    check(outn2 <= max && used2 <= n);
    if (e == PP_OK) check(outn2 == outn && used2 == used && memcmp(out, out2, outn) == 0);
    pp_free(out2);
    if (e == PP_OK && used > 1) {
        uint8_t *half = NULL;
        size_t halfn = 0, hu = 0;
        (void)pp_inflate_prefix(k, src, used / 2, max, UINT64_MAX / 2, &half, &halfn, &hu, &lim,
                                why, sizeof why);
        check(halfn <= outn && (halfn == 0 || memcmp(half, out, halfn) == 0));
        pp_free(half);
    }
    if (e == PP_OK && (k == PP_Z_ZLIB || k == PP_Z_GZIP || k == PP_Z_DEFLATE))
        roundtrip(k, out, outn);
    pp_free(out);
    return 0;
}
