/* .npy as numpy.lib.format reads it: magic, version (1.0, 2.0, 3.0), a little-endian header
 * length (2 bytes in 1.0, 4 after), then the header: the repr of a dict with exactly the keys
 * 'descr', 'fortran_order' and 'shape', which numpy hands to ast.literal_eval. We never evaluate
 * it: an exact grammar accepts what numpy writes (plus whitespace variants and Python 2's 'L'
 * suffix, which _filter_header strips in 1.0/2.0) and refuses the rest as unsupported, so that
 * what we conclude about the dtype (above all: does it hold objects?) is what numpy concludes.
 * The data follow the header at once (numpy pads the header to 64 bytes, older writers to 16; the
 * reader does not care). Object dtypes store a pickle there, read with pickle.load. */
#include "container.h"
#include "textarg.h"

#include "cursor.h"

#include <stdio.h>
#include <string.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* Structured dtypes nest; the grammar recurses one level per nesting. */
#define MAX_DESCR_DEPTH 32

typedef struct hdr {
    const uint8_t *s;
    size_t n, pos;
    bool py2_long; /* 1.0/2.0 headers: accept '3L' as _filter_header does */
    uint64_t base; /* offset of s[0] for messages, or PP_NO_OFFSET */
    pp_err code;   /* why parsing stopped */
    const char *why;
    size_t at;
} hdr;

typedef struct dtype_info {
    uint64_t itemsize;
    bool hasobject;
    char str[32]; /* numpy dtype string for the region */
} dtype_info;

static bool stop(hdr *h, pp_err code, const char *why)
{
    if (h->code == PP_OK) {
        h->code = code;
        h->why = why;
        h->at = h->pos;
    }
    return false;
}

static void ws(hdr *h)
{
    while (h->pos < h->n && (h->s[h->pos] == ' ' || h->s[h->pos] == '\t' || h->s[h->pos] == '\n' ||
                             h->s[h->pos] == '\r'))
        h->pos++;
}

static bool peek(hdr *h, uint8_t ch)
{
    ws(h);
    return h->pos < h->n && h->s[h->pos] == ch;
}

static bool expect(hdr *h, uint8_t ch)
{
    if (!peek(h, ch)) return stop(h, PP_E_UNSUPPORTED, "unexpected character in npy header");
    h->pos++;
    return true;
}

/* A plain quoted string: no prefixes, no escapes, no implicit concatenation (anything else that
 * literal_eval accepts is refused as unsupported). */
static bool str(hdr *h, const uint8_t **s, size_t *n)
{
    ws(h);
    if (h->pos >= h->n || (h->s[h->pos] != '\'' && h->s[h->pos] != '"'))
        return stop(h, PP_E_UNSUPPORTED, "expected a string in npy header");
    uint8_t q = h->s[h->pos++];
    size_t start = h->pos;
    while (h->pos < h->n && h->s[h->pos] != q) {
        uint8_t ch = h->s[h->pos];
        if (ch == '\\' || ch == '\n' || ch == '\r' || ch == 0)
            return stop(h, PP_E_UNSUPPORTED, "escape or line break in an npy header string");
        h->pos++;
    }
    if (h->pos >= h->n) return stop(h, PP_E_BAD_VALUE, "unterminated string in npy header");
    *s = h->s + start;
    *n = h->pos - start;
    h->pos++;
    ws(h);
    if (h->pos < h->n && (h->s[h->pos] == '\'' || h->s[h->pos] == '"'))
        return stop(h, PP_E_UNSUPPORTED, "concatenated strings in npy header");
    return true;
}

/* A non-negative decimal integer that fits numpy's intp. */
static bool uint(hdr *h, uint64_t *v)
{
    ws(h);
    size_t start = h->pos;
    uint64_t x = 0;
    while (h->pos < h->n && h->s[h->pos] >= '0' && h->s[h->pos] <= '9') {
        unsigned d = (unsigned)(h->s[h->pos] - '0');
        /* hostile: a dimension past intp (numpy refuses it; we must not wrap) */
        if (x > ((uint64_t)INT64_MAX - d) / 10)
            return stop(h, PP_E_UNSUPPORTED, "integer too large in npy header");
        x = x * 10 + d;
        h->pos++;
    }
    if (h->pos == start)
        return stop(h, PP_E_UNSUPPORTED, "expected a non-negative integer in npy header");
    if (h->s[start] == '0' && h->pos - start > 1)
        return stop(h, PP_E_BAD_VALUE, "leading zero in an npy header integer");
    if (h->py2_long && h->pos < h->n && h->s[h->pos] == 'L') h->pos++;
    if (h->pos < h->n && ((h->s[h->pos] >= 'a' && h->s[h->pos] <= 'z') ||
                          (h->s[h->pos] >= 'A' && h->s[h->pos] <= 'Z') || h->s[h->pos] == '_' ||
                          h->s[h->pos] == '.'))
        return stop(h, PP_E_UNSUPPORTED, "unsupported number form in npy header");
    *v = x;
    return true;
}

/* A tuple of integers: (), (n,), (n, m[,]) -- a parenthesised lone integer is not a tuple. */
static bool int_tuple(hdr *h, uint64_t *dims, uint32_t *ndim)
{
    if (!expect(h, '(')) return false;
    *ndim = 0;
    if (peek(h, ')')) {
        h->pos++;
        return true;
    }
    for (;;) {
        if (*ndim >= PP_MAX_NDIM)
            return stop(h, PP_E_UNSUPPORTED, "more than 32 dimensions in npy header");
        if (!uint(h, &dims[*ndim])) return false;
        (*ndim)++;
        if (peek(h, ')')) {
            if (*ndim == 1) return stop(h, PP_E_BAD_VALUE, "npy shape is not a tuple");
            h->pos++;
            return true;
        }
        if (!expect(h, ',')) return false;
        if (peek(h, ')')) {
            h->pos++;
            return true;
        }
    }
}

static bool mul(uint64_t *acc, uint64_t v)
{
    if (v && *acc > (uint64_t)INT64_MAX / v) return false;
    *acc *= v;
    return true;
}

static bool is_digit(uint8_t ch)
{
    return ch >= '0' && ch <= '9';
}

/* A dtype string as dtype.str writes it: [<>|=]kind size, 'O', or M8/m8 with a unit. */
static bool typestr(hdr *h, const uint8_t *s, size_t n, dtype_info *dt)
{
    size_t i = 0;
    if (n > 0 && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) i++;
    if (i >= n) return stop(h, PP_E_UNSUPPORTED, "unsupported npy dtype");
    uint8_t kind = s[i++];
    uint64_t size = 0;
    size_t dstart = i;
    while (i < n && is_digit(s[i])) {
        /* hostile: itemsizes beyond numpy's int */
        if (size > 0x7fffffff / 10) return stop(h, PP_E_UNSUPPORTED, "npy dtype size too large");
        size = size * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    bool has_size = i > dstart;
    if (has_size && s[dstart] == '0' && i - dstart > 1)
        return stop(h, PP_E_UNSUPPORTED, "unsupported npy dtype");
    bool ok;
    dt->hasobject = false;
    switch (kind) {
    case 'b':
        ok = size == 1;
        break;
    case 'i':
    case 'u':
        ok = size == 1 || size == 2 || size == 4 || size == 8;
        break;
    case 'f':
        ok = size == 2 || size == 4 || size == 8 || size == 12 || size == 16;
        break;
    case 'c':
        ok = size == 8 || size == 16 || size == 24 || size == 32;
        break;
    case 'S':
    case 'V':
        ok = has_size;
        break;
    case 'U':
        ok = has_size;
        size *= 4; /* characters of UCS-4 */
        break;
    case 'O':
        ok = !has_size || size == 8;
        size = 8;
        dt->hasobject = true;
        break;
    case 'M':
    case 'm':
        ok = size == 8;
        if (ok && i < n) {
            /* [unit] or [Nunit] */
            static const char *const units[] = {"Y",  "M",  "W",  "D",  "h",  "m", "s",
                                                "ms", "us", "ns", "ps", "fs", "as"};
            if (s[i] != '[' || s[n - 1] != ']')
                return stop(h, PP_E_UNSUPPORTED, "unsupported npy datetime unit");
            size_t u = i + 1;
            while (u < n - 1 && is_digit(s[u]))
                u++;
            size_t ulen = n - 1 - u;
            bool known = false;
            for (size_t k = 0; k < sizeof units / sizeof *units; k++)
                if (strlen(units[k]) == ulen && memcmp(units[k], s + u, ulen) == 0) known = true;
            if (!known) return stop(h, PP_E_UNSUPPORTED, "unsupported npy datetime unit");
            i = n;
        }
        break;
    default:
        ok = false;
    }
    if (!ok || i != n) return stop(h, PP_E_UNSUPPORTED, "unsupported npy dtype");
    dt->itemsize = size;
    snprintf(dt->str, sizeof dt->str, "%.*s", (int)n, (const char *)s);
    if (n >= sizeof dt->str) return stop(h, PP_E_UNSUPPORTED, "npy dtype string too long");
    return true;
}

static bool descr(hdr *h, dtype_info *dt, unsigned depth);

/* One field of a structured descr: (name, descr[, shape]), name being a string or a
 * (title, name) pair. */
static bool field(hdr *h, dtype_info *dt, unsigned depth)
{
    const uint8_t *s;
    size_t n;
    if (!expect(h, '(')) return false;
    if (peek(h, '(')) {
        h->pos++;
        if (!str(h, &s, &n) || !expect(h, ',') || !str(h, &s, &n)) return false;
        if (peek(h, ',')) h->pos++;
        if (!expect(h, ')')) return false;
    } else if (!str(h, &s, &n)) {
        return false;
    }
    if (!expect(h, ',')) return false;
    if (!descr(h, dt, depth + 1)) return false;
    if (peek(h, ',')) {
        h->pos++;
        if (peek(h, '(')) {
            uint64_t dims[PP_MAX_NDIM];
            uint32_t nd;
            if (!int_tuple(h, dims, &nd)) return false;
            for (uint32_t k = 0; k < nd; k++)
                if (!mul(&dt->itemsize, dims[k]))
                    return stop(h, PP_E_UNSUPPORTED, "npy field too large");
            if (peek(h, ',')) h->pos++;
        }
    }
    return expect(h, ')');
}

/* A dtype string, or a list of fields (structured dtype, possibly nested). */
static bool descr(hdr *h, dtype_info *dt, unsigned depth)
{
    if (depth > MAX_DESCR_DEPTH) return stop(h, PP_E_UNSUPPORTED, "npy dtype nested too deeply");
    if (!peek(h, '[')) {
        const uint8_t *s;
        size_t n;
        return str(h, &s, &n) && typestr(h, s, n, dt);
    }
    h->pos++;
    dt->itemsize = 0;
    dt->hasobject = false;
    while (!peek(h, ']')) {
        dtype_info f;
        if (!field(h, &f, depth)) return false;
        /* hostile: field sizes adding past what numpy can index */
        if (f.itemsize > (uint64_t)INT64_MAX - dt->itemsize)
            return stop(h, PP_E_UNSUPPORTED, "npy structured dtype too large");
        dt->itemsize += f.itemsize;
        dt->hasobject |= f.hasobject;
        if (peek(h, ']')) break;
        if (!expect(h, ',')) return false;
    }
    h->pos++;
    snprintf(dt->str, sizeof dt->str, "|V%llu", (unsigned long long)dt->itemsize);
    return true;
}

typedef struct npy_header {
    dtype_info dt;
    bool fortran;
    uint64_t dims[PP_MAX_NDIM];
    uint32_t ndim;
} npy_header;

static bool parse_header(hdr *h, npy_header *out)
{
    unsigned seen = 0; /* bit 0 descr, 1 fortran_order, 2 shape */
    while (h->pos < h->n && h->s[h->pos] == ' ')
        h->pos++;
    if (!expect(h, '{')) return false;
    while (!peek(h, '}')) {
        const uint8_t *k;
        size_t kn;
        if (!str(h, &k, &kn) || !expect(h, ':')) return false;
        unsigned bit;
        if (kn == 5 && memcmp(k, "descr", 5) == 0)
            bit = 1;
        else if (kn == 13 && memcmp(k, "fortran_order", 13) == 0)
            bit = 2;
        else if (kn == 5 && memcmp(k, "shape", 5) == 0)
            bit = 4;
        else
            return stop(h, PP_E_BAD_VALUE, "npy header has a key numpy does not accept");
        /* literal_eval keeps the last of duplicate keys; refuse rather than guess */
        if (seen & bit) return stop(h, PP_E_UNSUPPORTED, "duplicate key in npy header");
        seen |= bit;
        if (bit == 1) {
            if (!descr(h, &out->dt, 0)) return false;
        } else if (bit == 2) {
            ws(h);
            if (h->n - h->pos >= 4 && memcmp(h->s + h->pos, "True", 4) == 0) {
                out->fortran = true;
                h->pos += 4;
            } else if (h->n - h->pos >= 5 && memcmp(h->s + h->pos, "False", 5) == 0) {
                out->fortran = false;
                h->pos += 5;
            } else {
                return stop(h, PP_E_BAD_VALUE, "npy fortran_order is not a bool");
            }
        } else if (!int_tuple(h, out->dims, &out->ndim)) {
            return false;
        }
        if (peek(h, '}')) break;
        if (!expect(h, ',')) return false;
    }
    h->pos++;
    ws(h);
    if (h->pos != h->n)
        return stop(h, PP_E_UNSUPPORTED, "unexpected bytes after the npy header dict");
    if (seen != 7)
        return stop(h, PP_E_BAD_VALUE, "npy header lacks one of descr, fortran_order, shape");
    return true;
}

static uint64_t at(uint64_t base, uint64_t pos)
{
    return base == PP_NO_OFFSET ? pos : base + pos;
}

static pp_err npy_error(pp_scan_ctx *c, pp_err code, uint64_t base, uint64_t pos, const char *where,
                        const char *what)
{
    return pp_ctx_error(c, code, at(base, pos), where, "%s", what) == PP_E_NOMEM ? PP_E_NOMEM
                                                                                 : PP_OK;
}

pp_err pp_container_npy(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                        const char *where)
{
    pp_ctx_set_container(c, "npy");
    pp_cursor cu;
    pp_cursor_init(&cu, data, len, 0);
    const uint8_t *magic;
    uint8_t major = 0, minor = 0;
    if (!pp_cursor_take(&cu, NPY_MAGIC_LEN, &magic) || memcmp(magic, NPY_MAGIC, 6) != 0 ||
        !pp_cursor_u8(&cu, &major) || !pp_cursor_u8(&cu, &minor))
        return npy_error(c, PP_E_TRUNCATED, base, len, where, "truncated npy magic");
    if (minor != 0 || major < 1 || major > 3) {
        char msg[64];
        snprintf(msg, sizeof msg, "npy format version %u.%u is not one numpy reads", major, minor);
        return npy_error(c, PP_E_BAD_VALUE, base, 6, where, msg);
    }
    uint64_t hlen = 0;
    if (!pp_cursor_le(&cu, major == 1 ? 2 : 4, &hlen))
        return npy_error(c, PP_E_TRUNCATED, base, len, where, "truncated npy header length");
    const uint8_t *hs;
    /* hostile: a header length past the end */
    if (!pp_cursor_take(&cu, hlen, &hs))
        return npy_error(c, PP_E_TRUNCATED, base, cu.pos, where,
                         "npy header runs past the end of the data");
    size_t hstart = cu.pos - (size_t)hlen;
    if (major == 3 && !pp_utf8_valid(hs, (size_t)hlen, false)) /* numpy decodes 3.0 headers as strict UTF-8 */
        return npy_error(c, PP_E_DECODE, base, hstart, where, "npy 3.0 header is not UTF-8");
    hdr h = {.s = hs, .n = (size_t)hlen, .py2_long = major < 3, .base = base};
    npy_header nh;
    memset(&nh, 0, sizeof nh);
    if (!parse_header(&h, &nh)) return npy_error(c, h.code, base, hstart + h.at, where, h.why);

    size_t off = cu.pos; /* the data start right after the header */
    if (nh.dt.hasobject) {
        /* numpy: pickle.load(fp) on the rest, one pickle, bytes after it ignored */
        char nm[PP_MAX_WHERE];
        snprintf(nm, sizeof nm, "%s!pickle", where);
        pp_stream_opts so = {
            .flavor = PP_FLAVOR_C, .encoding = pp_ctx_options(c)->encoding, .single = true};
        pp_err rc = pp_ctx_stream(c, data + off, len - off, at(base, off), nm, &so, NULL);
        return rc == PP_E_NOMEM ? rc : PP_OK;
    }
    uint64_t nbytes = nh.dt.itemsize;
    for (uint32_t k = 0; k < nh.ndim; k++)
        if (!mul(&nbytes, nh.dims[k]))
            return npy_error(c, PP_E_BAD_VALUE, base, hstart, where, "npy array size overflows");
    /* hostile: the array must be inside the bytes */
    if (nbytes > len - off) {
        char msg[128];
        snprintf(msg, sizeof msg, "npy array needs %llu bytes, %llu remain",
                 (unsigned long long)nbytes, (unsigned long long)(len - off));
        return npy_error(c, PP_E_TRUNCATED, base, len, where, msg);
    }
    pp_array_region r;
    memset(&r, 0, sizeof r);
    r.where = (char *)where;
    r.offset = off;
    r.file_offset = at(base, off);
    if (base == PP_NO_OFFSET) r.file_offset = PP_NO_OFFSET;
    r.nbytes = nbytes;
    memcpy(r.dtype, nh.dt.str, sizeof r.dtype);
    r.ndim = nh.ndim;
    memcpy(r.shape, nh.dims, sizeof r.shape);
    r.order = nh.fortran ? 'F' : 'C';
    return pp_ctx_region_ex(c, &r, data + off, NULL, 0, NULL) == PP_E_NOMEM ? PP_E_NOMEM : PP_OK;
}
