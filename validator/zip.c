/* A hardened zip reader. The central directory is the truth, as for Python's zipfile (numpy) and
 * PyTorch's miniz reader; every claim it makes is proven against the bytes before use, and
 * wherever those two readers (or a scanner walking local headers) could see different members,
 * the archive is refused: duplicate names (also ignoring ASCII case, as miniz compares them, and
 * after cp437 decoding, as zipfile compares them), local/central disagreements, overlaps,
 * encryption, methods other than stored and deflate, inconsistent end records. Offsets follow
 * zipfile's "concat" rule, so an archive appended to other bytes (a pickle/zip polyglot) is read
 * as zipfile reads it, and the bytes before it are reported and scanned as the pickle that
 * pickle.load would run. */
#include "zip.h"

#include "arena.h"
#include "cursor.h"
#include "inflate.h"
#include "textarg.h"
#include "torch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u

#define EOCD_SIZE 22u
#define EOCD64_SIZE 56u
#define LOC64_SIZE 20u
#define CENTRAL_SIZE 46u
#define LOCAL_SIZE 30u
#define MAX_COMMENT 65535u

#define FLAG_ENCRYPTED 0x0001u
#define FLAG_DESCRIPTOR 0x0008u
#define FLAG_PATCHED 0x0020u
#define FLAG_STRONG 0x0040u
#define FLAG_UTF8 0x0800u
#define FLAG_CD_ENCRYPTED 0x2000u

/* zipfile refuses extract versions above this (NotImplementedError). */
#define MAX_EXTRACT_VERSION 63u

static uint64_t at(const pp_zip *z, uint64_t pos)
{
    return z->base == PP_NO_OFFSET ? pos : z->base + pos;
}

/* The scan context, or a quiet probe that records nothing (is this really an archive?). */
typedef struct zr {
    pp_scan_ctx *c;
    bool quiet;
} zr;

/* Records a malformation of the archive (first error wins) and returns its code. */
static pp_err fail(const zr *c, const pp_zip *z, pp_err code, uint64_t pos, const char *fmt, ...)
    PP_PRINTF(5, 6);
static pp_err fail(const zr *c, const pp_zip *z, pp_err code, uint64_t pos, const char *fmt, ...)
{
    char msg[224];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->quiet) return code;
    pp_err rc = pp_ctx_error(c->c, code, at(z, pos), z->where, "%s", msg);
    return rc == PP_E_NOMEM ? PP_E_NOMEM : code;
}

/* Little-endian field readers over a span already proven to hold them. */
static uint32_t rd16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void member_where(const pp_zip *z, const pp_zip_entry *e, char *out, size_t cap)
{
    snprintf(out, cap, "%s!%.*s", z->where, (int)(e->namelen > 4096 ? 4096 : e->namelen), e->name);
}

/* ---- names ----------------------------------------------------------------------------------- */

static const uint16_t cp437_high[128] = {
    0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7, 0x00ea, 0x00eb, 0x00e8, 0x00ef,
    0x00ee, 0x00ec, 0x00c4, 0x00c5, 0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9,
    0x00ff, 0x00d6, 0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192, 0x00e1, 0x00ed, 0x00f3, 0x00fa,
    0x00f1, 0x00d1, 0x00aa, 0x00ba, 0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb,
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557,
    0x255d, 0x255c, 0x255b, 0x2510, 0x2514, 0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f,
    0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256c, 0x2567, 0x2568, 0x2564, 0x2565, 0x2559,
    0x2558, 0x2552, 0x2553, 0x256b, 0x256a, 0x2518, 0x250c, 0x2588, 0x2584, 0x258c, 0x2590, 0x2580,
    0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4, 0x03a6, 0x0398, 0x03a9, 0x03b4,
    0x221e, 0x03c6, 0x03b5, 0x2229, 0x2261, 0x00b1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00f7, 0x2248,
    0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0,
};

static bool has_high(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)s[i] >= 0x80) return true;
    return false;
}

/* The name as zipfile sees it (cp437 decoded unless flagged UTF-8), as UTF-8 into out, which has
 * room for 3 bytes per input byte. Returns the length. */
static size_t decoded_name(const pp_zip_entry *e, uint8_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < e->namelen; i++) {
        uint8_t b = (uint8_t)e->name[i];
        if (b < 0x80) {
            out[k++] = b;
            continue;
        }
        uint32_t cp = cp437_high[b - 0x80];
        if (cp < 0x800) {
            out[k++] = (uint8_t)(0xc0 | cp >> 6);
        } else {
            out[k++] = (uint8_t)(0xe0 | cp >> 12);
            out[k++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        }
        out[k++] = (uint8_t)(0x80 | (cp & 0x3f));
    }
    return k;
}

typedef struct name_key {
    const uint8_t *s;
    size_t n;
    size_t idx;
} name_key;

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* ASCII case folded, as miniz's filename comparison. */
static int key_cmp(const void *pa, const void *pb)
{
    const name_key *a = pa, *b = pb;
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        int x = lower(a->s[i]), y = lower(b->s[i]);
        if (x != y) return x < y ? -1 : 1;
    }
    return a->n < b->n ? -1 : a->n > b->n ? 1 : 0;
}

/* Sorted keys: the first adjacent equal pair, or SIZE_MAX. */
static size_t find_dup(name_key *k, size_t n)
{
    qsort(k, n, sizeof *k, key_cmp);
    for (size_t i = 1; i < n; i++)
        if (key_cmp(&k[i - 1], &k[i]) == 0)
            return k[i - 1].idx > k[i].idx ? k[i - 1].idx : k[i].idx;
    return SIZE_MAX;
}

/* hostile: two central entries naming the same member. zipfile resolves the last, miniz a binary
 * search over names compared without case; a scanner may read either. */
static pp_err check_duplicates(const zr *c, pp_zip *z, const uint64_t *cdpos)
{
    if (z->n < 2) return PP_OK;
    size_t total = 0;
    for (size_t i = 0; i < z->n; i++)
        total += z->e[i].namelen; /* bounded by the central directory's size */
    name_key *k = pp_malloc(z->n * sizeof *k);
    uint8_t *buf = pp_malloc(total * 3 + 1);
    if (!k || !buf) {
        pp_free(k);
        pp_free(buf);
        return PP_E_NOMEM;
    }
    for (size_t i = 0; i < z->n; i++)
        k[i] = (name_key){(const uint8_t *)z->e[i].name, z->e[i].namelen, i};
    size_t d = find_dup(k, z->n);
    if (d == SIZE_MAX) {
        size_t used = 0;
        for (size_t i = 0; i < z->n; i++) {
            const pp_zip_entry *e = &z->e[i];
            if ((e->flags & FLAG_UTF8) || !has_high(e->name, e->namelen)) {
                k[i] = (name_key){(const uint8_t *)e->name, e->namelen, i};
            } else {
                size_t m = decoded_name(e, buf + used);
                k[i] = (name_key){buf + used, m, i};
                used += m;
            }
        }
        d = find_dup(k, z->n);
    }
    pp_free(k);
    pp_free(buf);
    if (d == SIZE_MAX) return PP_OK;
    char nm[PP_MAX_WHERE];
    snprintf(nm, sizeof nm, "%.*s", (int)(z->e[d].namelen > 200 ? 200 : z->e[d].namelen),
             z->e[d].name);
    return fail(c, z, PP_E_BAD_VALUE, cdpos[d],
                "duplicate zip member name '%s' (loaders disagree on which copy they read)", nm);
}

/* ---- end records ----------------------------------------------------------------------------- */

typedef struct end_info {
    uint64_t eocd;    /* position of the classic end record */
    uint64_t end;     /* where the central directory must end (zip64 record or eocd) */
    uint64_t entries; /* total entries */
    uint64_t cd_size;
    uint64_t cd_off; /* as recorded (before concat) */
    bool zip64;
} end_info;

/* Finds and checks the end records as zipfile does (_EndRecData, _EndRecData64), refusing the
 * shapes where zipfile and miniz would read different directories. */
static pp_err read_end(const zr *c, const pp_zip *z, end_info *ei)
{
    const uint8_t *d = z->data;
    size_t n = z->len;
    memset(ei, 0, sizeof *ei);
    if (n < EOCD_SIZE) return fail(c, z, PP_E_TRUNCATED, n, "no end of central directory record");
    size_t pos = n - EOCD_SIZE;
    /* zipfile: the record at the very end with no comment first, else the last signature in the
     * last 64 KiB + 22 bytes */
    if (!(rd32(d + pos) == SIG_EOCD && rd16(d + pos + 20) == 0)) {
        size_t lo = n > MAX_COMMENT + EOCD_SIZE ? n - MAX_COMMENT - EOCD_SIZE : 0;
        bool found = false;
        for (size_t i = pos + 1; i-- > lo;) {
            if (rd32(d + i) == SIG_EOCD) {
                pos = i;
                found = true;
                break;
            }
        }
        if (!found) return fail(c, z, PP_E_TRUNCATED, n, "no end of central directory record");
    }
    const uint8_t *r = d + pos;
    uint32_t disk = rd16(r + 4), cd_disk = rd16(r + 6), n_disk = rd16(r + 8),
             n_total = rd16(r + 10), cd_size = rd32(r + 12), cd_off = rd32(r + 16),
             clen = rd16(r + 20);
    /* hostile: a comment length that does not reach the end leaves bytes another reader may
     * take for the real end record */
    if (clen != n - pos - EOCD_SIZE) {
        return fail(c, z, PP_E_BAD_VALUE, pos + 20,
                    "zip comment length %u, but %zu bytes follow the end record", clen,
                    n - pos - EOCD_SIZE);
    }
    ei->eocd = pos;
    ei->end = pos;
    ei->entries = n_total;
    ei->cd_size = cd_size;
    ei->cd_off = cd_off;

    if (pos >= LOC64_SIZE && rd32(d + pos - LOC64_SIZE) == SIG_LOC64) {
        const uint8_t *l = d + pos - LOC64_SIZE;
        uint64_t reloff = (uint64_t)rd32(l + 8) | (uint64_t)rd32(l + 12) << 32;
        if (rd32(l + 4) != 0 || rd32(l + 16) > 1)
            return fail(c, z, PP_E_UNSUPPORTED, pos - LOC64_SIZE,
                        "zip archive spans several disks");
        /* zipfile assumes the zip64 record sits right before the locator, miniz follows the
         * locator: insist both are the same record, with no extensible data */
        size_t rp = pos - LOC64_SIZE;
        if (rp < EOCD64_SIZE || rd32(d + rp - EOCD64_SIZE) != SIG_EOCD64)
            return fail(c, z, PP_E_BAD_VALUE, rp,
                        "zip64 locator without a zip64 end record before it");
        rp -= EOCD64_SIZE;
        const uint8_t *q = d + rp;
        pp_cursor cu;
        pp_cursor_init(&cu, q + 4, EOCD64_SIZE - 4, 0);
        uint64_t rsize = 0, vers = 0, disk64 = 0, cd_disk64 = 0, n_disk64 = 0, n_total64 = 0,
                 cd_size64 = 0, cd_off64 = 0;
        pp_cursor_le(&cu, 8, &rsize);
        pp_cursor_le(&cu, 4, &vers);
        pp_cursor_le(&cu, 4, &disk64);
        pp_cursor_le(&cu, 4, &cd_disk64);
        pp_cursor_le(&cu, 8, &n_disk64);
        pp_cursor_le(&cu, 8, &n_total64);
        pp_cursor_le(&cu, 8, &cd_size64);
        pp_cursor_le(&cu, 8, &cd_off64);
        if (rsize != EOCD64_SIZE - 12)
            return fail(c, z, PP_E_UNSUPPORTED, rp + 4, "zip64 end record with extensible data");
        if (disk64 != 0 || cd_disk64 != 0 || n_disk64 != n_total64)
            return fail(c, z, PP_E_UNSUPPORTED, rp, "zip archive spans several disks");
        /* hostile: the classic record must agree with the zip64 one or defer to it */
        if ((n_total != 0xffff && n_total != n_total64) ||
            (n_disk != 0xffff && n_disk != n_disk64) ||
            (cd_size != 0xffffffffu && cd_size != cd_size64) ||
            (cd_off != 0xffffffffu && cd_off != cd_off64) || (disk != 0 && disk != 0xffff) ||
            (cd_disk != 0 && cd_disk != 0xffff))
            return fail(c, z, PP_E_BAD_VALUE, pos,
                        "zip end record disagrees with the zip64 end record");
        if (cd_off64 > UINT64_MAX - cd_size64 || reloff != cd_off64 + cd_size64)
            return fail(c, z, PP_E_BAD_VALUE, pos - LOC64_SIZE + 8,
                        "zip64 locator does not point after the central directory");
        ei->end = rp;
        ei->entries = n_total64;
        ei->cd_size = cd_size64;
        ei->cd_off = cd_off64;
        ei->zip64 = true;
    } else if (disk != 0 || cd_disk != 0) {
        return fail(c, z, PP_E_UNSUPPORTED, pos, "zip archive spans several disks");
    } else if (n_disk != n_total) {
        return fail(c, z, PP_E_BAD_VALUE, pos + 8, "zip end record entry counts disagree");
    }
    return PP_OK;
}

/* ---- central directory ----------------------------------------------------------------------- */

/* zipfile's _decodeExtra for the zip64 field: which values it replaces, in order. */
static pp_err zip64_extra(const zr *c, const pp_zip *z, const uint8_t *x, size_t xlen,
                          uint64_t xpos, pp_zip_entry *e, uint64_t *local)
{
    pp_cursor cu;
    pp_cursor_init(&cu, x, xlen, 0);
    while (pp_cursor_left(&cu) >= 4) {
        uint64_t tp = 0, ln = 0;
        const uint8_t *body;
        uint64_t fpos = cu.pos;
        pp_cursor_le(&cu, 2, &tp);
        pp_cursor_le(&cu, 2, &ln);
        /* hostile: an extra field running past its block */
        if (!pp_cursor_take(&cu, ln, &body))
            return fail(c, z, PP_E_TRUNCATED, xpos + fpos, "corrupt zip extra field");
        if (tp != 1) continue;
        pp_cursor f;
        pp_cursor_init(&f, body, (size_t)ln, 0);
        bool ok = true;
        if (e->usize == 0xffffffffu) ok = ok && pp_cursor_le(&f, 8, &e->usize);
        if (e->csize == 0xffffffffu) ok = ok && pp_cursor_le(&f, 8, &e->csize);
        if (*local == 0xffffffffu) ok = ok && pp_cursor_le(&f, 8, local);
        if (!ok) return fail(c, z, PP_E_TRUNCATED, xpos + fpos, "corrupt zip64 extra field");
    }
    return PP_OK;
}

static pp_err read_central(const zr *c, pp_zip *z, const end_info *ei, uint64_t start_dir,
                           uint64_t concat, uint64_t *cdpos, uint64_t *local)
{
    pp_cursor cu;
    pp_cursor_init(&cu, z->data + start_dir, (size_t)ei->cd_size, 0);
    size_t i = 0;
    while (pp_cursor_left(&cu) > 0) {
        uint64_t pos = start_dir + cu.pos;
        const uint8_t *h;
        if (!pp_cursor_take(&cu, CENTRAL_SIZE, &h))
            return fail(c, z, PP_E_TRUNCATED, pos, "truncated zip central directory");
        if (rd32(h) != SIG_CENTRAL)
            return fail(c, z, PP_E_BAD_VALUE, pos, "bad signature in zip central directory");
        /* hostile: more entries than the end record announced (checked before storing) */
        if (i >= ei->entries)
            return fail(c, z, PP_E_BAD_VALUE, pos,
                        "zip central directory holds more entries than its end record says");
        pp_zip_entry *e = &z->e[i];
        uint32_t need = rd16(h + 6), nlen = rd16(h + 28), xlen = rd16(h + 30), clen = rd16(h + 32);
        e->flags = (uint16_t)rd16(h + 8);
        e->method = (uint16_t)rd16(h + 10);
        e->crc = rd32(h + 16);
        e->csize = rd32(h + 20);
        e->usize = rd32(h + 24);
        uint64_t loff = rd32(h + 42);
        const uint8_t *name, *extra, *comment;
        if (!pp_cursor_take(&cu, nlen, &name) || !pp_cursor_take(&cu, xlen, &extra) ||
            !pp_cursor_take(&cu, clen, &comment))
            return fail(c, z, PP_E_TRUNCATED, pos,
                        "zip central directory entry runs past the directory");
        (void)comment;
        e->name = (const char *)name;
        e->namelen = nlen;
        cdpos[i] = pos;
        char nm[PP_MAX_WHERE];
        member_where(z, e, nm, sizeof nm);
        if (need > MAX_EXTRACT_VERSION)
            return fail(c, z, PP_E_UNSUPPORTED, pos + 6, "zip member %s needs a newer zip version",
                        nm);
        /* hostile: zipfile cuts names at NUL, miniz does not */
        if (memchr(name, 0, nlen))
            return fail(c, z, PP_E_BAD_VALUE, pos + CENTRAL_SIZE, "NUL byte in zip member name %s",
                        nm);
        if ((e->flags & FLAG_UTF8) && !pp_utf8_valid(name, nlen, false))
            return fail(c, z, PP_E_DECODE, pos + CENTRAL_SIZE,
                        "zip member name %s is flagged UTF-8 but is not", nm);
        /* hostile: zipfile refuses these; miniz reads stored data regardless */
        if (e->flags & (FLAG_ENCRYPTED | FLAG_STRONG | FLAG_CD_ENCRYPTED))
            return fail(c, z, PP_E_UNSUPPORTED, pos + 8, "encrypted zip member %s", nm);
        if (e->flags & FLAG_PATCHED)
            return fail(c, z, PP_E_UNSUPPORTED, pos + 8,
                        "zip member %s holds compressed patched data", nm);
        if (e->method != 0 && e->method != 8) {
            return fail(c, z, PP_E_UNSUPPORTED, pos + 10,
                        "unsupported compression method %u for zip member %s", e->method, nm);
        }
        pp_err rc = zip64_extra(c, z, extra, xlen, pos + CENTRAL_SIZE + nlen, e, &loff);
        if (rc) return rc;
        /* hostile: a local header offset that wraps when the prefix is added */
        if (loff > UINT64_MAX - concat)
            return fail(c, z, PP_E_BAD_VALUE, pos + 42, "zip member %s offset overflows", nm);
        local[i] = loff + concat;
        i++;
    }
    if (i != ei->entries)
        return fail(c, z, PP_E_BAD_VALUE, ei->eocd + 10,
                    "zip end record announces more entries than the central directory holds");
    return PP_OK;
}

/* ---- local headers --------------------------------------------------------------------------- */

static pp_err read_local(const zr *c, pp_zip *z, pp_zip_entry *e, uint64_t lo, uint64_t limit)
{
    char nm[PP_MAX_WHERE];
    member_where(z, e, nm, sizeof nm);
    /* hostile: the local header must lie before the central directory */
    if (lo > limit || LOCAL_SIZE > limit - lo)
        return fail(c, z, PP_E_TRUNCATED, lo, "zip local header of %s is past the archive", nm);
    const uint8_t *h = z->data + lo;
    if (rd32(h) != SIG_LOCAL)
        return fail(c, z, PP_E_BAD_VALUE, lo, "bad zip local header signature for %s", nm);
    uint32_t flags = rd16(h + 6), method = rd16(h + 8), crc = rd32(h + 14), csize = rd32(h + 18),
             usize = rd32(h + 22), nlen = rd16(h + 26), xlen = rd16(h + 28);
    uint64_t left = limit - lo - LOCAL_SIZE;
    if ((uint64_t)nlen + xlen > left)
        return fail(c, z, PP_E_TRUNCATED, lo + 26, "zip local header of %s runs past the archive",
                    nm);
    /* hostile: the name a local-header walker sees must be the member's name */
    if (nlen != e->namelen || memcmp(h + LOCAL_SIZE, e->name, nlen) != 0 ||
        (((flags ^ e->flags) & FLAG_UTF8) && has_high(e->name, e->namelen)))
        return fail(c, z, PP_E_BAD_VALUE, lo + LOCAL_SIZE,
                    "zip local header name differs from the central directory for %s", nm);
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG | FLAG_PATCHED))
        return fail(c, z, PP_E_UNSUPPORTED, lo + 6, "encrypted zip member %s (local header)", nm);
    if (method != e->method)
        return fail(c, z, PP_E_BAD_VALUE, lo + 8,
                    "zip local header method differs from the central directory for %s", nm);
    /* Sizes and CRC are taken from the central directory, as zipfile and miniz do. Without a
     * data descriptor the local copies are written with the data; a disagreement means the
     * archive was edited to show local-header walkers something else. */
    if (!((flags | e->flags) & FLAG_DESCRIPTOR)) {
        if (crc != e->crc || (csize != 0xffffffffu && csize != e->csize) ||
            (usize != 0xffffffffu && usize != e->usize))
            return fail(c, z, PP_E_BAD_VALUE, lo + 14,
                        "zip local header sizes or CRC differ from the central directory for %s",
                        nm);
    }
    e->local_offset = lo;
    e->data_offset = lo + LOCAL_SIZE + nlen + xlen;
    /* hostile: the data must end before the central directory */
    if (e->csize > limit - e->data_offset)
        return fail(c, z, PP_E_TRUNCATED, e->data_offset,
                    "zip member %s data runs past the archive", nm);
    return PP_OK;
}

typedef struct span {
    uint64_t lo, end;
    size_t idx;
} span;

static int span_cmp(const void *pa, const void *pb)
{
    const span *a = pa, *b = pb;
    return a->lo < b->lo ? -1 : a->lo > b->lo ? 1 : 0;
}

/* ---- the API --------------------------------------------------------------------------------- */

static pp_err zip_open(const zr *c, const uint8_t *data, size_t len, uint64_t base,
                       const char *where, pp_zip *z)
{
    memset(z, 0, sizeof *z);
    z->data = data;
    z->len = len;
    z->base = base;
    z->where = where;
    end_info ei;
    pp_err rc = read_end(c, z, &ei);
    if (rc) return rc;
    /* zipfile's concat: the archive may follow other bytes, its offsets relative to itself */
    if (ei.cd_size > ei.end || ei.cd_off > ei.end - ei.cd_size)
        return fail(c, z, PP_E_TRUNCATED, ei.eocd + 12,
                    "zip central directory is not before its end record");
    uint64_t start_dir = ei.end - ei.cd_size;
    uint64_t concat = start_dir - ei.cd_off;
    /* hostile: a file that starts with a zip header is read by torch (miniz) with the offsets
     * as they are, by zipfile shifted by concat: two different archives */
    if (concat > 0 && len >= 4 && rd32(data) == SIG_LOCAL)
        return fail(c, z, PP_E_BAD_VALUE, ei.eocd + 16,
                    "zip offsets are shifted by %llu bytes although the file starts with a zip "
                    "header (readers disagree on where the archive starts)",
                    (unsigned long long)concat);
    if (ei.entries > pp_ctx_options(c->c)->limits.v[PP_LIMIT_ZIP_ENTRIES]) {
        if (c->quiet) return PP_E_LIMIT;
        pp_err lr = pp_ctx_limit(c->c, PP_LIMIT_ZIP_ENTRIES, at(z, ei.eocd + 10), where);
        return lr == PP_E_NOMEM ? lr : PP_E_LIMIT;
    }
    /* hostile: an entry count the directory cannot hold (before allocating for it) */
    if (ei.entries > ei.cd_size / CENTRAL_SIZE)
        return fail(c, z, PP_E_BAD_VALUE, ei.eocd + 10,
                    "zip end record announces more entries than the central directory holds");
    size_t n = (size_t)ei.entries;
    size_t cnt = n ? n : 1;
    z->e = pp_calloc(cnt, sizeof *z->e);
    uint64_t *cdpos = pp_malloc(cnt * sizeof *cdpos);
    uint64_t *local = pp_malloc(cnt * sizeof *local);
    span *sp = pp_malloc(cnt * sizeof *sp);
    if (!z->e || !cdpos || !local || !sp) {
        rc = PP_E_NOMEM;
        goto out;
    }
    z->n = n;
    rc = read_central(c, z, &ei, start_dir, concat, cdpos, local);
    if (!rc) rc = check_duplicates(c, z, cdpos);
    for (size_t i = 0; !rc && i < n; i++)
        rc = read_local(c, z, &z->e[i], local[i], start_dir);
    if (rc) goto out;
    /* hostile: members sharing bytes (zip bombs, or one name showing another's data) */
    for (size_t i = 0; i < n; i++)
        sp[i] = (span){z->e[i].local_offset, z->e[i].data_offset + z->e[i].csize, i};
    qsort(sp, n, sizeof *sp, span_cmp);
    for (size_t i = 1; i < n; i++) {
        if (sp[i].lo < sp[i - 1].end) {
            char nm[PP_MAX_WHERE];
            member_where(z, &z->e[sp[i].idx], nm, sizeof nm);
            rc = fail(c, z, PP_E_BAD_VALUE, sp[i].lo, "zip member %s overlaps another member", nm);
            goto out;
        }
    }
    z->start = n ? sp[0].lo : start_dir;
    if (z->start > 0 && !c->quiet) {
        /* What pickle.load, joblib and torch's legacy loader read: the bytes at offset 0. */
        bool pickle_like = data[0] == 0x80 || data[z->start - 1] == '.';
        rc = pickle_like ? pp_ctx_finding(c->c, "polyglot", "high", at(z, 0), where,
                                          "%llu bytes before the zip archive look like a "
                                          "pickle: pickle loaders run them, zip readers skip them",
                                          (unsigned long long)z->start)
                         : pp_ctx_finding(c->c, "zip-data-before-archive", "medium", at(z, 0),
                                          where, "%llu bytes before the zip archive",
                                          (unsigned long long)z->start);
    }
out:
    pp_free(cdpos);
    pp_free(local);
    pp_free(sp);
    if (rc) {
        pp_free(z->e);
        z->e = NULL;
        z->n = 0;
    }
    return rc;
}

pp_err pp_zip_open(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                   const char *where, pp_zip *z)
{
    zr r = {c, false};
    return zip_open(&r, data, len, base, where, z);
}

void pp_zip_close(pp_zip *z)
{
    pp_free(z->e);
    z->e = NULL;
    z->n = 0;
}

const pp_zip_entry *pp_zip_find(const pp_zip *z, const char *name, size_t namelen)
{
    for (size_t i = 0; i < z->n; i++)
        if (z->e[i].namelen == namelen && memcmp(z->e[i].name, name, namelen) == 0) return &z->e[i];
    return NULL;
}

static uint32_t crc_of(const uint8_t *p, size_t n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)crc;
}

/* PyTorch ignores CRCs and zipfile checks them only at the end of a read, after a pickle already
 * ran: a mismatch is reported and the member is still scanned. */
static pp_err check_crc(pp_scan_ctx *c, const pp_zip *z, const pp_zip_entry *e, const uint8_t *p,
                        size_t n)
{
    uint32_t crc = crc_of(p, n);
    if (crc == e->crc) return PP_OK;
    char nm[PP_MAX_WHERE];
    member_where(z, e, nm, sizeof nm);
    return pp_ctx_finding(c, "zip-crc-mismatch", "medium", at(z, e->local_offset), nm,
                          "zip member CRC is %08x, the central directory says %08x", crc, e->crc);
}

/* The member's bytes. With `prefix`, a deflated member that is corrupt, truncated or longer than
 * its declared size is still an error, but the bytes zipfile's streaming reader would have handed
 * to pickle.load before failing (the good prefix, cut at the declared size) are returned for
 * scanning: a pickle in them has already run when the reader notices. */
static pp_err zip_read(pp_scan_ctx *c, const pp_zip *z, const pp_zip_entry *e, const uint8_t **p,
                       size_t *n, uint64_t *file_offset, bool prefix, bool stored_crc)
{
    char nm[PP_MAX_WHERE];
    member_where(z, e, nm, sizeof nm);
    *p = NULL;
    *n = 0;
    *file_offset = PP_NO_OFFSET;
    const uint8_t *src = z->data + e->data_offset; /* proven inside at open */
    size_t csize = (size_t)e->csize;
    pp_err rc;
    if (e->method == 0) {
        /* hostile: a stored member whose two sizes disagree */
        if (e->usize != e->csize) {
            rc = pp_ctx_error(c, PP_E_BAD_VALUE, at(z, e->local_offset), nm,
                              "stored zip member sizes differ (%llu vs %llu)",
                              (unsigned long long)e->csize, (unsigned long long)e->usize);
            return rc == PP_E_NOMEM ? rc : PP_E_BAD_VALUE;
        }
        *p = src;
        *n = csize;
        *file_offset = at(z, e->data_offset);
    } else {
        const pp_limits *lim = &pp_ctx_options(c)->limits;
        /* the claimed size is reserved from the input's budget before any output exists */
        rc = pp_ctx_inflated(c, e->usize, nm);
        if (rc) return rc;
        uint8_t *out = NULL;
        size_t outn = 0;
        pp_limit_id which = PP_LIMIT_INFLATED_BYTES;
        char why[128] = "";
        /* one byte more than claimed, so that a lying size is seen rather than cut */
        uint64_t max_out = e->usize < UINT64_MAX ? e->usize + 1 : e->usize;
        uint64_t ratio = lim->v[PP_LIMIT_INFLATE_RATIO];
        rc = prefix ? pp_inflate_prefix(PP_Z_DEFLATE, src, csize, max_out, ratio, &out, &outn, NULL,
                                        &which, why, sizeof why)
                    : pp_inflate(PP_Z_DEFLATE, src, csize, max_out, ratio, &out, &outn, NULL,
                                 &which, why, sizeof why);
        if (rc == PP_E_NOMEM) {
            pp_free(out);
            return rc;
        }
        if (rc == PP_E_LIMIT && which == PP_LIMIT_INFLATE_RATIO) {
            pp_free(out);
            return pp_ctx_limit(c, PP_LIMIT_INFLATE_RATIO, at(z, e->data_offset), nm);
        }
        if (rc == PP_OK && outn != e->usize)
            rc = PP_E_LIMIT; /* reported below as a size mismatch */
        if (rc) {
            pp_err code = rc == PP_E_LIMIT ? PP_E_BAD_VALUE : rc;
            pp_err er =
                rc == PP_E_LIMIT
                    ? pp_ctx_error(c, code, at(z, e->data_offset), nm,
                                   "deflated zip member does not inflate to its size %llu",
                                   (unsigned long long)e->usize)
                    : pp_ctx_error(c, code, at(z, e->data_offset), nm,
                                   "cannot inflate zip member: %s", why[0] ? why : "corrupt");
            if (er == PP_E_NOMEM || !prefix || !out || outn == 0) {
                pp_free(out);
                return er == PP_E_NOMEM ? er : code;
            }
            if (outn > e->usize) outn = (size_t)e->usize; /* zipfile stops at the declared size */
            if ((rc = pp_ctx_keep(c, out))) return rc;
            *p = out;
            *n = outn;
            return PP_OK; /* the error is recorded; no CRC to compare on a broken member */
        }
        if (outn && (rc = pp_ctx_keep(c, out))) return rc;
        if (!outn) pp_free(out);
        *p = outn ? out : (const uint8_t *)"";
        *n = outn;
    }
    if (e->method == 0 && !stored_crc)
        return PP_OK; /* the caller checks it once it knows whether the bytes matter */
    return check_crc(c, z, e, *p, *n);
}

pp_err pp_zip_read(pp_scan_ctx *c, const pp_zip *z, const pp_zip_entry *e, const uint8_t **p,
                   size_t *n, uint64_t *file_offset)
{
    return zip_read(c, z, e, p, n, file_offset, false, true);
}

/* ---- the container --------------------------------------------------------------------------- */

static bool ends_with(const pp_zip_entry *e, const char *suffix)
{
    size_t k = strlen(suffix);
    return e->namelen >= k && memcmp(e->name + e->namelen - k, suffix, k) == 0;
}

static bool looks_npz(const pp_zip *z)
{
    if (z->n == 0) return false;
    for (size_t i = 0; i < z->n; i++)
        if (!ends_with(&z->e[i], ".npy")) return false;
    return true;
}

/* Every member by content, one level deeper. Malformed members do not stop the others (their
 * findings still count); a tripped budget does. */
static pp_err scan_members(pp_scan_ctx *c, const pp_zip *z)
{
    for (size_t i = 0; i < z->n; i++) {
        const pp_zip_entry *e = &z->e[i];
        if (e->usize == 0 && e->csize == 0)
            continue; /* directories and empty files: nothing a loader could run */
        char nm[PP_MAX_WHERE];
        member_where(z, e, nm, sizeof nm);
        const uint8_t *p;
        size_t n;
        uint64_t fo;
        /* zipfile streams members to their loaders: a broken deflate stream's good prefix */
        pp_err rc = zip_read(c, z, e, &p, &n, &fo, true, false);
        if (rc == PP_E_NOMEM || rc == PP_E_LIMIT) return rc;
        if (rc) continue;
        size_t regions = pp_ctx_report(c)->narrays;
        rc = pp_ctx_scan_any(c, p, n, fo, nm);
        if (rc == PP_E_NOMEM || rc == PP_E_LIMIT) return rc;
        /* A stored .npy that held a plain array (one region, no pickle) is never interpreted: a
         * bad CRC there only makes np.load fail, so its payload is not read for the CRC. */
        bool plain_npy = pp_detect(p, n) == PP_CT_NPY && pp_ctx_report(c)->narrays == regions + 1;
        if (e->method == 0 && !plain_npy && (rc = check_crc(c, z, e, p, n))) return rc;
    }
    return PP_OK;
}

pp_err pp_container_zip(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                        const char *where)
{
    pp_zip z;
    bool zip_first = len >= 4 && data[0] == 'P' && data[1] == 'K' &&
                     ((data[2] == 3 && data[3] == 4) || (data[2] == 5 && data[3] == 6));
    pp_err rc;
    if (!zip_first) {
        /* Found by an end record near the end only. numpy, torch and joblib all read such a
         * file as a pickle; it is also an archive only if a zip reader can open it (a pickle may
         * well carry a zip's bytes in a BINBYTES near its end). */
        zr probe = {c, true};
        rc = zip_open(&probe, data, len, base, where, &z);
        pp_zip_close(&z);
        if (rc == PP_E_NOMEM) return rc;
        /* a readable archive over a budget is still an archive: its limit is the answer */
        if (rc && rc != PP_E_LIMIT)
            return pp_container_pickle(c, data, len, base, where) == PP_E_NOMEM ? PP_E_NOMEM
                                                                                : PP_OK;
    }
    rc = pp_zip_open(c, data, len, base, where, &z);
    if (rc == PP_E_NOMEM) return rc;
    if (rc) {
        pp_ctx_set_container(c, "zip");
        /* the bytes at offset 0 are what pickle loaders read, whatever the archive is worth */
        if (!zip_first && pp_container_pickle(c, data, len, base, where) == PP_E_NOMEM)
            return PP_E_NOMEM;
        return PP_OK;
    }
    if (pp_torch_zip_detect(&z)) {
        rc = pp_container_torch_zip(c, &z);
    } else {
        pp_ctx_set_container(c, looks_npz(&z) ? "npz" : "zip");
        rc = scan_members(c, &z);
    }
    if (rc == PP_E_NOMEM) {
        pp_zip_close(&z);
        return rc;
    }
    /* the polyglot's other face: what pickle.load reads at offset 0 */
    if (z.start > 0) rc = pp_container_pickle(c, data, (size_t)z.start, base, where);
    pp_zip_close(&z);
    return rc == PP_E_NOMEM ? rc : PP_OK;
}
