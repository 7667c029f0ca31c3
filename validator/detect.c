/* Container detection from content alone. The order follows the loaders: joblib tests "ZF" and
 * then its compressor prefixes before unpickling; PyTorch tests for a zip before falling back to
 * its legacy formats. A pickle at offset 0 with a zip directory at the end is a zip here, and the
 * zip container reports the polyglot and scans both. */
#include "container.h"

#include <string.h>

static bool has_prefix(const uint8_t *d, size_t n, const char *p, size_t pn)
{
    return n >= pn && memcmp(d, p, pn) == 0;
}

/* An end-of-central-directory record in the last 64 KiB + 22 bytes. */
static bool has_eocd(const uint8_t *d, size_t n)
{
    if (n < 22)
        return false;
    size_t lo = n > 65557 ? n - 65557 : 0;
    for (size_t i = n - 22 + 1; i-- > lo;)
        if (d[i] == 'P' && d[i + 1] == 'K' && d[i + 2] == 5 && d[i + 3] == 6)
            return true;
    return false;
}

/* PyTorch's legacy magic number 0x1950a86a20f9469cfc6c pickled at protocol 2 as LONG1. */
static const char torch_magic[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

pp_container_kind pp_detect(const uint8_t *d, size_t n)
{
    if (has_prefix(d, n, "PK\x03\x04", 4) || has_prefix(d, n, "PK\x05\x06", 4))
        return PP_CT_ZIP;
    if (has_prefix(d, n, "\x93NUMPY", 6))
        return PP_CT_NPY;
    if (has_prefix(d, n, torch_magic, sizeof torch_magic - 1))
        return PP_CT_TORCH_LEGACY;
    if (has_prefix(d, n, "ZF", 2))
        return PP_CT_JOBLIB_ZF;
    if (n >= 1 && (d[0] == 0x78 || has_prefix(d, n, "\x1f\x8b", 2) || has_prefix(d, n, "BZ", 2) ||
                   has_prefix(d, n, "\x5d\x00", 2) || has_prefix(d, n, "\xfd\x37\x7a\x58\x5a", 5) ||
                   has_prefix(d, n, "\x04\x22\x4d\x18", 4)))
        return PP_CT_COMPRESSED;
    if (n >= 263 && memcmp(d + 257, "ustar", 5) == 0)
        return PP_CT_TAR;
    if (has_eocd(d, n))
        return PP_CT_ZIP;
    return PP_CT_PICKLE;
}

const char *pp_container_kind_name(pp_container_kind k)
{
    switch (k) {
    case PP_CT_PICKLE: return "pickle";
    case PP_CT_JOBLIB: return "joblib";
    case PP_CT_COMPRESSED: return "compressed";
    case PP_CT_JOBLIB_ZF: return "joblib-zfile";
    case PP_CT_NPY: return "npy";
    case PP_CT_ZIP: return "zip";
    case PP_CT_TORCH_LEGACY: return "pytorch-legacy";
    case PP_CT_TAR: return "tar";
    default: return "unknown";
    }
}
