/* PyTorch's legacy formats (validator/torch_legacy.c, validator/tar.c) with the torch policy.
 * The first byte picks the format and the harness keeps the bytes in it, so mutations reach the
 * storage tables instead of falling back to a plain pickle:
 *   even: stacked pickles; the input gets the legacy magic number in front unless it has it
 *   odd:  tar; "ustar" is kept at 257 and every header checksum on tarfile's walk is rewritten
 * Invariants beyond fuzz_scan's: the container is named pytorch/..., and every storage region
 * of these uncompressed formats has a file offset. */
#include "container.h"
#include "fuzz_common.h"
#include "pickleproof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char magic[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
#define MAGIC (sizeof magic - 1)
#define BLOCK 512

static int octal_size(const uint8_t *f, uint64_t *v)
{
    size_t i = 0;
    uint64_t x = 0;
    while (i < 12 && f[i] == ' ')
        i++;
    for (; i < 12 && f[i] >= '0' && f[i] <= '7'; i++) {
        if (x > (UINT64_MAX >> 3)) return 0;
        x = (x << 3) | (uint64_t)(f[i] - '0');
    }
    *v = x;
    return 1;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

static void fix_tar(uint8_t *b, size_t n)
{
    if (n >= 263) memcpy(b + 257, "ustar", 5);
    size_t pos = 0;
    while (n - pos >= BLOCK) {
        uint8_t *h = b + pos;
        if (all_zero(h, BLOCK)) break;
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (size_t i = 0; i < BLOCK; i++)
            sum += h[i];
        char ck[9];
        snprintf(ck, sizeof ck, "%06o", sum & 0777777u);
        memcpy(h + 148, ck, 7); /* six digits, NUL, then the space already there */
        uint64_t size;
        if (!octal_size(h + 124, &size) || size > n) break;
        pos += BLOCK;
        uint64_t pad = (size + BLOCK - 1) / BLOCK * BLOCK;
        if (pad > n - pos) break;
        pos += (size_t)pad;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int tar = data[0] & 1;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    size_t extra = !tar && (n < MAGIC || memcmp(body, magic, MAGIC) != 0) ? MAGIC : 0;
    uint8_t *b = malloc(n + extra + 1);
    if (!b) return 0;
    memcpy(b, magic, extra);
    memcpy(b + extra, body, n);
    n += extra;
    if (tar) fix_tar(b, n);
    pp_report *r = fuzz_scan(b, n, fuzz_policy("torch"), tar ? "m.tar" : "m.pt");
    if (r) {
        pp_container_kind k = pp_detect(b, n);
        if (k == PP_CT_TAR || k == PP_CT_TORCH_LEGACY)
            check(r->container != NULL && strncmp(r->container, "pytorch", 7) == 0);
        for (size_t i = 0; i < r->narrays; i++)
            check(r->arrays[i].file_offset != PP_NO_OFFSET);
        pp_report_free(r);
    }
    free(b);
    return 0;
}
