/* pp_inflate on every kind: the first byte picks the decompressor, the rest is its input.
 * Invariants: output never passes the budget, consumed never passes the input, pp_inflate leaves
 * no buffer on error, and the prefix variant agrees with it on success. */
#include "arena.h"
#include "inflate.h"

#include <stdlib.h>
#include <string.h>

static void check(int cond)
{
    if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    pp_free(out);
    pp_free(out2);
    return 0;
}
