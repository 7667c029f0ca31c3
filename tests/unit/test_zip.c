/* The zip reader's structure checks on archives written here byte by byte: each case starts from
 * a valid archive and breaks one thing (names, flags, methods, sizes, offsets, end records,
 * zip64 records), then every truncation and every single-bit flip of small archives must end in
 * a verdict that is never "safe" for a broken archive, without a crash (run under ASan too). */
#include "pickleproof.h"
#include "tap.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- a tiny zip writer ----------------------------------------------------------------------- */

typedef struct zbuf {
    uint8_t *p;
    size_t n, cap;
} zbuf;

static void put(zbuf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t nc = (b->n + n) * 2 + 64;
        uint8_t *np = realloc(b->p, nc);
        if (!np) abort();
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u16(zbuf *b, uint32_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}
static void u32(zbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void u64(zbuf *b, uint64_t v)
{
    u32(b, (uint32_t)v);
    u32(b, (uint32_t)(v >> 32));
}
static void set16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void set32(uint8_t *p, uint32_t v)
{
    set16(p, v & 0xffff);
    set16(p + 2, v >> 16);
}

typedef struct member {
    const char *name;
    const uint8_t *data;
    size_t len;
    uint32_t flags;  /* central and local */
    uint32_t method; /* 0 stored, 8 deflate (the data are compressed here) */
} member;

typedef struct zopts {
    bool zip64;        /* zip64 end record + locator */
    size_t prefix_len; /* bytes before the archive */
    const uint8_t *prefix;
    bool absolute;   /* offsets count the prefix (zip -A) */
    bool descriptor; /* flag bit 3, zero sizes in local headers, descriptors after data */
} zopts;

typedef struct built {
    zbuf b;
    size_t local[8], central[8], data[8];
    size_t cd, eocd;
} built;

static void build(built *out, const member *m, size_t n, const zopts *o)
{
    memset(out, 0, sizeof *out);
    zbuf *b = &out->b;
    if (o && o->prefix_len) put(b, o->prefix, o->prefix_len);
    size_t shift = (o && o->prefix_len && !o->absolute) ? o->prefix_len : 0;
    bool dd = o && o->descriptor;
    uLong crcs[8];
    uint8_t *payload[8];
    size_t plen[8];
    for (size_t i = 0; i < n; i++) {
        crcs[i] = crc32(0, m[i].data, (uInt)m[i].len);
        if (m[i].method == 8) {
            z_stream zs;
            memset(&zs, 0, sizeof zs);
            deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
            size_t cap = deflateBound(&zs, (uLong)m[i].len) + 16;
            payload[i] = malloc(cap);
            zs.next_in = (Bytef *)m[i].data;
            zs.avail_in = (uInt)m[i].len;
            zs.next_out = payload[i];
            zs.avail_out = (uInt)cap;
            deflate(&zs, Z_FINISH);
            plen[i] = zs.total_out;
            deflateEnd(&zs);
        } else {
            payload[i] = malloc(m[i].len + 1);
            memcpy(payload[i], m[i].data, m[i].len);
            plen[i] = m[i].len;
        }
        uint32_t fl = m[i].flags | (dd ? 8u : 0u);
        out->local[i] = b->n;
        u32(b, 0x04034b50);
        u16(b, 20);
        u16(b, fl);
        u16(b, m[i].method);
        u16(b, 0);
        u16(b, 0);
        u32(b, dd ? 0 : (uint32_t)crcs[i]);
        u32(b, dd ? 0 : (uint32_t)plen[i]);
        u32(b, dd ? 0 : (uint32_t)m[i].len);
        u16(b, (uint32_t)strlen(m[i].name));
        u16(b, 0);
        put(b, m[i].name, strlen(m[i].name));
        out->data[i] = b->n;
        put(b, payload[i], plen[i]);
        if (dd) {
            u32(b, 0x08074b50);
            u32(b, (uint32_t)crcs[i]);
            u32(b, (uint32_t)plen[i]);
            u32(b, (uint32_t)m[i].len);
        }
    }
    out->cd = b->n;
    for (size_t i = 0; i < n; i++) {
        out->central[i] = b->n;
        u32(b, 0x02014b50);
        u16(b, 20);
        u16(b, 20);
        u16(b, m[i].flags | (dd ? 8u : 0u));
        u16(b, m[i].method);
        u16(b, 0);
        u16(b, 0);
        u32(b, (uint32_t)crcs[i]);
        u32(b, (uint32_t)plen[i]);
        u32(b, (uint32_t)m[i].len);
        u16(b, (uint32_t)strlen(m[i].name));
        u16(b, 0);
        u16(b, 0);
        u16(b, 0);
        u16(b, 0);
        u32(b, 0);
        u32(b, (uint32_t)(out->local[i] - shift));
        put(b, m[i].name, strlen(m[i].name));
        free(payload[i]);
    }
    size_t cdsize = b->n - out->cd;
    if (o && o->zip64) {
        size_t rec = b->n;
        u32(b, 0x06064b50);
        u64(b, 44);
        u16(b, 45);
        u16(b, 45);
        u32(b, 0);
        u32(b, 0);
        u64(b, n);
        u64(b, n);
        u64(b, cdsize);
        u64(b, out->cd - shift);
        u32(b, 0x07064b50);
        u32(b, 0);
        u64(b, rec - shift);
        u32(b, 1);
    }
    out->eocd = b->n;
    u32(b, 0x06054b50);
    u16(b, 0);
    u16(b, 0);
    u16(b, (uint32_t)n);
    u16(b, (uint32_t)n);
    u32(b, (uint32_t)cdsize);
    u32(b, (uint32_t)(out->cd - shift));
    u16(b, 0);
}

/* ---- scanning -------------------------------------------------------------------------------- */

static pp_policy *policy;
static unsigned long nscans;

static pp_report *scan_lim(const uint8_t *d, size_t n, pp_limit_id lim, uint64_t v)
{
    pp_scan_options o;
    pp_scan_options_init(&o, policy);
    o.path = "t.zip";
    if ((int)lim >= 0) o.limits.v[lim] = v;
    pp_report *r = NULL;
    nscans++;
    if (pp_scan_buffer(d, n, &o, &r) != PP_OK) abort();
    return r;
}

static pp_report *scan(const uint8_t *d, size_t n)
{
    return scan_lim(d, n, (pp_limit_id)-1, 0);
}

static bool has_rule(const pp_report *r, const char *rule)
{
    for (size_t i = 0; i < r->nfindings; i++)
        if (strcmp(r->findings[i].rule, rule) == 0) return true;
    return false;
}

static bool has_stream(const pp_report *r, const char *rule, const char *stream)
{
    for (size_t i = 0; i < r->nfindings; i++)
        if (strcmp(r->findings[i].rule, rule) == 0 && r->findings[i].stream &&
            strcmp(r->findings[i].stream, stream) == 0)
            return true;
    return false;
}

/* Expect a malformed archive whose message mentions `what`. */
static void expect_bad(const uint8_t *d, size_t n, pp_err code, const char *what, const char *tag)
{
    pp_report *r = scan(d, n);
    CHECKF(r->verdict == PP_VERDICT_MALFORMED, "%s: malformed (verdict %d, %s)", tag,
           (int)r->verdict, r->error.msg);
    CHECKF(r->error.code == code, "%s: error %s, got %s (%s)", tag, pp_errname(code),
           pp_errname(r->error.code), r->error.msg);
    CHECKF(strstr(r->error.msg, what) != NULL, "%s: message '%s' mentions '%s'", tag, r->error.msg,
           what);
    CHECKF(r->narrays == 0, "%s: no arrays", tag);
    pp_report_free(r);
}

/* protocol-2 pickles: a dict, and os.system('id') */
static const uint8_t BENIGN[] = "\x80\x02\x7d\x71\x00\x58\x01\x00\x00\x00\x61\x71\x01\x4b\x01"
                                "\x73\x2e";
static const uint8_t EVIL[] = "\x80\x02\x63\x70\x6f\x73\x69\x78\x0a\x73\x79\x73\x74\x65\x6d\x0a"
                              "\x71\x00\x58\x02\x00\x00\x00\x69\x64\x71\x01\x85\x71\x02\x52\x71"
                              "\x03\x2e";
#define BN (sizeof BENIGN - 1)
#define EN (sizeof EVIL - 1)

/* an .npy of three little-endian int16 */
static uint8_t npy[128 + 6];
static void make_npy(void)
{
    const char *h = "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }";
    memset(npy, ' ', sizeof npy);
    memcpy(npy, "\x93NUMPY\x01\x00\x76\x00", 10);
    memcpy(npy + 10, h, strlen(h));
    npy[127] = '\n';
    memcpy(npy + 128, "\x01\x00\x02\x00\x03\x00", 6);
}

static void test_valid(void)
{
    member m[2] = {{"a.pkl", BENIGN, BN, 0, 0}, {"dir/b.pkl", BENIGN, BN, 0, 8}};
    zopts variants[] = {
        {0}, {.zip64 = true}, {.descriptor = true}, {.zip64 = true, .descriptor = true}};
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        built z;
        build(&z, m, 2, &variants[v]);
        pp_report *r = scan(z.b.p, z.b.n);
        CHECKF(r->verdict == PP_VERDICT_SAFE, "variant %zu safe (%s)", v, r->error.msg);
        CHECKF(r->container && strcmp(r->container, "zip") == 0, "variant %zu is a zip", v);
        CHECKF(r->nstreams == 2, "variant %zu: both members scanned", v);
        pp_report_free(r);
        free(z.b.p);
    }
    /* npz: the region's file offset is inside the stored member */
    member n[2] = {{"x.npy", npy, sizeof npy, 0, 0}, {"y.npy", npy, sizeof npy, 0, 8}};
    built z;
    build(&z, n, 2, NULL);
    pp_report *r = scan(z.b.p, z.b.n);
    CHECK(r->verdict == PP_VERDICT_SAFE);
    CHECK(r->container && strcmp(r->container, "npz") == 0);
    CHECK(r->narrays == 2);
    if (r->narrays == 2) {
        CHECK(strcmp(r->arrays[0].where, "t.zip!x.npy") == 0);
        CHECK(r->arrays[0].file_offset == z.data[0] + 128);
        CHECK(r->arrays[0].nbytes == 6 &&
              memcmp(z.b.p + r->arrays[0].file_offset, "\x01\x00\x02\x00\x03\x00", 6) == 0);
        CHECK(r->arrays[1].file_offset == PP_NO_OFFSET && r->arrays[1].offset == 128);
        CHECK(strcmp(r->arrays[1].dtype, "<i2") == 0 && r->arrays[1].ndim == 1 &&
              r->arrays[1].shape[0] == 3);
    }
    pp_report_free(r);
    free(z.b.p);
    /* the empty archive */
    build(&z, NULL, 0, NULL);
    r = scan(z.b.p, z.b.n);
    CHECK(r->verdict == PP_VERDICT_SAFE && z.b.n == 22);
    pp_report_free(r);
    free(z.b.p);
}

static void test_payload_and_crc(void)
{
    member m[2] = {{"a.pkl", BENIGN, BN, 0, 0}, {"readme.txt", EVIL, EN, 0, 0}};
    built z;
    build(&z, m, 2, NULL);
    pp_report *r = scan(z.b.p, z.b.n);
    CHECK(r->verdict == PP_VERDICT_UNSAFE);
    CHECK(has_stream(r, "global-not-allowed", "t.zip!readme.txt"));
    CHECK(!has_rule(r, "zip-crc-mismatch"));
    pp_report_free(r);
    /* the data change, the CRCs do not: reported, and the member is still scanned */
    z.b.p[z.data[1] + EN - 10] = 'X'; /* 'id' -> 'iX' */
    r = scan(z.b.p, z.b.n);
    CHECK(r->verdict == PP_VERDICT_UNSAFE);
    CHECK(has_stream(r, "zip-crc-mismatch", "t.zip!readme.txt"));
    CHECK(has_stream(r, "global-not-allowed", "t.zip!readme.txt"));
    pp_report_free(r);
    free(z.b.p);
}

/* A deflated member cut short: an error, and the pickle in its good prefix is still judged (a
 * streaming reader handed those bytes to pickle.load before it noticed). */
static void test_truncated_deflate(void)
{
    static uint8_t body[6000];
    memcpy(body, EVIL, EN);
    uint32_t x = 12345;
    for (size_t i = EN; i < sizeof body; i++) {
        x = x * 1103515245u + 12345u;
        body[i] = (uint8_t)(x >> 16);
    }
    member m[1] = {{"obj.pkl", body, sizeof body, 0, 8}};
    built z;
    build(&z, m, 1, NULL);
    uint32_t csize = (uint32_t)(z.cd - z.data[0]);
    /* move the central directory and end record down over the second half of the data */
    size_t keep = csize / 2, cut = csize - keep;
    memmove(z.b.p + z.data[0] + keep, z.b.p + z.cd, z.b.n - z.cd);
    z.b.n -= cut;
    z.cd -= cut;
    z.eocd -= cut;
    set32(z.b.p + z.cd + 20, (uint32_t)keep);
    set32(z.b.p + z.local[0] + 18, (uint32_t)keep);
    set32(z.b.p + z.eocd + 16, (uint32_t)z.cd);
    pp_report *r = scan(z.b.p, z.b.n);
    CHECKF(r->verdict == PP_VERDICT_UNSAFE, "truncated deflate: verdict %d (%s)", (int)r->verdict,
           r->error.msg);
    CHECK(has_stream(r, "global-not-allowed", "t.zip!obj.pkl"));
    CHECK(r->error.code == PP_E_TRUNCATED || r->error.code == PP_E_BAD_VALUE);
    CHECK(strstr(r->error.stream, "obj.pkl") != NULL);
    pp_report_free(r);
    free(z.b.p);
}

static void test_names(void)
{
    built z;
    member dup[2] = {{"a.pkl", EVIL, EN, 0, 0}, {"a.pkl", BENIGN, BN, 0, 0}};
    build(&z, dup, 2, NULL);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "duplicate", "duplicate names");
    free(z.b.p);
    member dupcase[2] = {{"arc/data.pkl", EVIL, EN, 0, 0}, {"ARC/Data.PKL", BENIGN, BN, 0, 0}};
    build(&z, dupcase, 2, NULL);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "duplicate", "duplicate names but for case");
    free(z.b.p);
    /* cp437 0x82 is U+00E9, which is UTF-8 C3 A9: the same name to zipfile */
    member dupenc[2] = {{"\x82.pkl", EVIL, EN, 0, 0}, {"\xc3\xa9.pkl", BENIGN, BN, 0x800, 0}};
    build(&z, dupenc, 2, NULL);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "duplicate", "duplicate names after decoding");
    free(z.b.p);
    /* the same bytes under both encodings are different names to zipfile, the same to miniz */
    member dupraw[2] = {{"\xc3\xa9.pkl", EVIL, EN, 0, 0}, {"\xc3\xa9.pkl", BENIGN, BN, 0x800, 0}};
    build(&z, dupraw, 2, NULL);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "duplicate", "duplicate raw names");
    free(z.b.p);
    member badutf[1] = {{"\xc3(.pkl", BENIGN, BN, 0x800, 0}};
    build(&z, badutf, 1, NULL);
    expect_bad(z.b.p, z.b.n, PP_E_DECODE, "UTF-8", "invalid UTF-8 name");
    free(z.b.p);
    member one[1] = {{"data.pkl", EVIL, EN, 0, 0}};
    build(&z, one, 1, NULL);
    z.b.p[z.central[0] + 46 + 4] = 0; /* NUL in the central name */
    z.b.p[z.local[0] + 30 + 4] = 0;
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "NUL", "NUL in name");
    free(z.b.p);
    build(&z, one, 1, NULL);
    memcpy(z.b.p + z.local[0] + 30, "datap.kl", 8);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "name differs", "local/central name");
    free(z.b.p);
}

static void test_flags_methods(void)
{
    static const uint32_t flags[] = {0x1, 0x20, 0x40, 0x2000};
    member one[1] = {{"data.pkl", EVIL, EN, 0, 0}};
    built z;
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        for (int where = 0; where < 3; where++) {
            build(&z, one, 1, NULL);
            if (where != 1) set16(z.b.p + z.central[0] + 8, flags[i]);
            if (where != 0) set16(z.b.p + z.local[0] + 6, flags[i]);
            pp_report *r = scan(z.b.p, z.b.n);
            bool local_only_cd_enc = flags[i] == 0x2000 && where == 1;
            CHECKF(local_only_cd_enc || r->verdict == PP_VERDICT_MALFORMED,
                   "flag %#x in %d refused (%s)", flags[i], where, r->error.msg);
            pp_report_free(r);
            free(z.b.p);
        }
    }
    static const uint32_t methods[] = {1, 6, 9, 12, 14, 93, 99, 0xffff};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        build(&z, one, 1, NULL);
        set16(z.b.p + z.central[0] + 10, methods[i]);
        set16(z.b.p + z.local[0] + 8, methods[i]);
        expect_bad(z.b.p, z.b.n, PP_E_UNSUPPORTED, "compression method", "method");
        free(z.b.p);
    }
    build(&z, one, 1, NULL);
    set16(z.b.p + z.local[0] + 8, 8); /* the local header claims deflate */
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "method differs", "local method");
    free(z.b.p);
    build(&z, one, 1, NULL);
    set32(z.b.p + z.local[0] + 14, 0x12345678); /* local CRC without a descriptor */
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "sizes or CRC differ", "local crc");
    free(z.b.p);
    build(&z, one, 1, NULL);
    set32(z.b.p + z.local[0] + 18, 3); /* local compressed size */
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "sizes or CRC differ", "local size");
    free(z.b.p);
    build(&z, one, 1, NULL);
    set16(z.b.p + z.central[0] + 6, 64); /* extract version 6.4 */
    expect_bad(z.b.p, z.b.n, PP_E_UNSUPPORTED, "newer zip version", "version");
    free(z.b.p);
}

static void test_sizes_offsets(void)
{
    member two[2] = {{"a.pkl", BENIGN, BN, 0, 0}, {"b.pkl", BENIGN, BN, 0, 0}};
    built z;
    /* a size reaching into the next member: overlap (local sizes made to agree) */
    build(&z, two, 2, NULL);
    uint32_t big = (uint32_t)(z.local[1] - z.data[0] + 4);
    set32(z.b.p + z.central[0] + 20, big);
    set32(z.b.p + z.central[0] + 24, big);
    set32(z.b.p + z.local[0] + 18, big);
    set32(z.b.p + z.local[0] + 22, big);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "overlaps", "overlap");
    free(z.b.p);
    /* both central entries at one local header */
    build(&z, two, 2, NULL);
    set32(z.b.p + z.central[1] + 42, (uint32_t)z.local[0]);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "name differs", "shared local header");
    free(z.b.p);
    /* data past the central directory */
    build(&z, two, 2, NULL);
    set32(z.b.p + z.central[1] + 20, 0x7fffffff);
    set32(z.b.p + z.central[1] + 24, 0x7fffffff);
    set32(z.b.p + z.local[1] + 18, 0x7fffffff);
    set32(z.b.p + z.local[1] + 22, 0x7fffffff);
    expect_bad(z.b.p, z.b.n, PP_E_TRUNCATED, "past the archive", "data past end");
    free(z.b.p);
    build(&z, two, 2, NULL);
    set32(z.b.p + z.central[1] + 42, 0xfffffff0u);
    expect_bad(z.b.p, z.b.n, PP_E_TRUNCATED, "past the archive", "local header past end");
    free(z.b.p);
    /* stored sizes that disagree */
    build(&z, two, 2, NULL);
    set32(z.b.p + z.central[0] + 24, (uint32_t)BN + 1);
    set32(z.b.p + z.local[0] + 22, (uint32_t)BN + 1);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "sizes differ", "stored sizes");
    free(z.b.p);
    /* end record counts */
    build(&z, two, 2, NULL);
    set16(z.b.p + z.eocd + 8, 3);
    set16(z.b.p + z.eocd + 10, 3);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "more entries", "count too high");
    free(z.b.p);
    build(&z, two, 2, NULL);
    set16(z.b.p + z.eocd + 8, 1);
    set16(z.b.p + z.eocd + 10, 1);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "more entries", "count too low");
    free(z.b.p);
    build(&z, two, 2, NULL);
    set16(z.b.p + z.eocd + 8, 1);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "counts disagree", "disk count");
    free(z.b.p);
    build(&z, two, 2, NULL);
    set16(z.b.p + z.eocd + 4, 1);
    expect_bad(z.b.p, z.b.n, PP_E_UNSUPPORTED, "disks", "multi-disk");
    free(z.b.p);
    build(&z, two, 2, NULL);
    set32(z.b.p + z.eocd + 12, 0xffff);
    expect_bad(z.b.p, z.b.n, PP_E_TRUNCATED, "central directory", "cd size");
    free(z.b.p);
    build(&z, two, 2, NULL);
    set16(z.b.p + z.eocd + 20, 7);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "comment length", "comment");
    free(z.b.p);
    build(&z, two, 2, NULL);
    set32(z.b.p + z.central[1], 0x02014b51);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "bad signature", "central signature");
    free(z.b.p);
    build(&z, two, 2, NULL);
    z.b.p[z.local[1]] = 'Q';
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "local header signature", "local signature");
    free(z.b.p);
}

static void test_zip64(void)
{
    member two[2] = {{"a.pkl", BENIGN, BN, 0, 0}, {"b.pkl", BENIGN, BN, 0, 0}};
    zopts o = {.zip64 = true};
    built z;
    /* the classic record may defer to the zip64 one */
    build(&z, two, 2, &o);
    set16(z.b.p + z.eocd + 8, 0xffff);
    set16(z.b.p + z.eocd + 10, 0xffff);
    set32(z.b.p + z.eocd + 12, 0xffffffffu);
    set32(z.b.p + z.eocd + 16, 0xffffffffu);
    pp_report *r = scan(z.b.p, z.b.n);
    CHECKF(r->verdict == PP_VERDICT_SAFE, "zip64 sentinels (%s)", r->error.msg);
    pp_report_free(r);
    free(z.b.p);
    /* ... but not disagree with it */
    build(&z, two, 2, &o);
    set16(z.b.p + z.eocd + 8, 1);
    set16(z.b.p + z.eocd + 10, 1);
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "disagrees", "zip64 vs classic count");
    free(z.b.p);
    build(&z, two, 2, &o);
    size_t rec = z.eocd - 20 - 56;
    set32(z.b.p + z.eocd - 20 + 8, (uint32_t)rec - 1); /* locator points elsewhere */
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "locator", "zip64 locator");
    free(z.b.p);
    build(&z, two, 2, &o);
    z.b.p[rec] = 'X'; /* locator without record */
    expect_bad(z.b.p, z.b.n, PP_E_BAD_VALUE, "zip64", "zip64 record missing");
    free(z.b.p);
    build(&z, two, 2, &o);
    set32(z.b.p + rec + 4, 45); /* extensible data */
    expect_bad(z.b.p, z.b.n, PP_E_UNSUPPORTED, "extensible", "zip64 extensible");
    free(z.b.p);
    build(&z, two, 2, &o);
    set32(z.b.p + rec + 24, 3); /* zip64 entries on this disk */
    expect_bad(z.b.p, z.b.n, PP_E_UNSUPPORTED, "disks", "zip64 disk count");
    free(z.b.p);
}

static void test_polyglot_and_limits(void)
{
    member one[1] = {{"x.pkl", BENIGN, BN, 0, 0}};
    for (int abs = 0; abs < 2; abs++) {
        zopts o = {.prefix = EVIL, .prefix_len = EN, .absolute = abs != 0};
        built z;
        build(&z, one, 1, &o);
        pp_report *r = scan(z.b.p, z.b.n);
        CHECKF(r->verdict == PP_VERDICT_UNSAFE, "polyglot %d unsafe", abs);
        CHECK(has_rule(r, "polyglot"));
        CHECK(has_stream(r, "global-not-allowed", "pickle"));
        CHECK(r->nstreams == 2); /* the member and the prefix */
        pp_report_free(r);
        free(z.b.p);
    }
    /* an archive appended to another: zipfile reads the second, miniz the offsets as written */
    {
        member a[1] = {{"data.pkl", BENIGN, BN, 0, 0}};
        built za, zb;
        build(&za, a, 1, NULL);
        member b[1] = {{"data.pkl", EVIL, EN, 0, 0}};
        zopts ob = {.prefix = za.b.p, .prefix_len = za.b.n};
        build(&zb, b, 1, &ob);
        expect_bad(zb.b.p, zb.b.n, PP_E_BAD_VALUE, "disagree on where", "zip after zip");
        free(za.b.p);
        free(zb.b.p);
    }
    /* junk before the archive: reported, and refused as the pickle it is not */
    zopts o = {.prefix = (const uint8_t *)"MZjunk", .prefix_len = 6};
    built z;
    build(&z, one, 1, &o);
    pp_report *r = scan(z.b.p, z.b.n);
    CHECK(has_rule(r, "zip-data-before-archive"));
    CHECK(r->verdict != PP_VERDICT_SAFE);
    pp_report_free(r);
    free(z.b.p);
    /* zip-entries */
    member three[3] = {
        {"a.pkl", BENIGN, BN, 0, 0}, {"b.pkl", BENIGN, BN, 0, 0}, {"c.pkl", BENIGN, BN, 0, 0}};
    build(&z, three, 3, NULL);
    r = scan_lim(z.b.p, z.b.n, PP_LIMIT_ZIP_ENTRIES, 2);
    CHECK(r->verdict == PP_VERDICT_LIMIT && r->error.limit == PP_LIMIT_ZIP_ENTRIES);
    pp_report_free(r);
    r = scan_lim(z.b.p, z.b.n, PP_LIMIT_ZIP_ENTRIES, 3);
    CHECK(r->verdict == PP_VERDICT_SAFE);
    pp_report_free(r);
    free(z.b.p);
    /* behind a pickle, an archive over the limit is still an archive; the pickle still counts */
    zopts pre = {.prefix = BENIGN, .prefix_len = BN};
    build(&z, three, 3, &pre);
    r = scan_lim(z.b.p, z.b.n, PP_LIMIT_ZIP_ENTRIES, 2);
    CHECK(r->verdict == PP_VERDICT_LIMIT && r->error.limit == PP_LIMIT_ZIP_ENTRIES);
    CHECK(r->nstreams == 1);
    pp_report_free(r);
    free(z.b.p);
    /* inflated-bytes and inflate-ratio on a deflated member */
    static uint8_t zeros[100000];
    zeros[0] = 0x80;
    zeros[1] = 2;
    member d[1] = {{"z.bin", zeros, sizeof zeros, 0, 8}};
    build(&z, d, 1, NULL);
    r = scan_lim(z.b.p, z.b.n, PP_LIMIT_INFLATED_BYTES, 1000);
    CHECK(r->verdict == PP_VERDICT_LIMIT && r->error.limit == PP_LIMIT_INFLATED_BYTES);
    pp_report_free(r);
    r = scan_lim(z.b.p, z.b.n, PP_LIMIT_INFLATE_RATIO, 5);
    CHECK(r->verdict == PP_VERDICT_LIMIT && r->error.limit == PP_LIMIT_INFLATE_RATIO);
    pp_report_free(r);
    free(z.b.p);
    /* archive-depth: a zip in a zip in a zip ... */
    member leaf[1] = {{"x.pkl", EVIL, EN, 0, 0}};
    build(&z, leaf, 1, NULL);
    for (int level = 0; level < 5; level++) {
        member up[1] = {{"in.zip", z.b.p, z.b.n, 0, 0}};
        built outer;
        build(&outer, up, 1, NULL);
        free(z.b.p);
        z = outer;
    }
    r = scan(z.b.p, z.b.n);
    CHECK(r->verdict == PP_VERDICT_LIMIT && r->error.limit == PP_LIMIT_ARCHIVE_DEPTH);
    pp_report_free(r);
    r = scan_lim(z.b.p, z.b.n, PP_LIMIT_ARCHIVE_DEPTH, 10);
    CHECK(r->verdict == PP_VERDICT_UNSAFE);
    CHECK(has_stream(r, "global-not-allowed", "t.zip!in.zip!in.zip!in.zip!in.zip!in.zip!x.pkl"));
    pp_report_free(r);
    free(z.b.p);
}

/* Every truncation and every bit flip: a verdict, never a crash; truncations never "safe". */
static void test_mutations(void)
{
    member m[2] = {{"a.npy", npy, sizeof npy, 0, 0}, {"b.npy", npy, sizeof npy, 0, 8}};
    zopts variants[] = {{0}, {.zip64 = true, .descriptor = true}};
    for (size_t v = 0; v < 2; v++) {
        built z;
        build(&z, m, 2, &variants[v]);
        int unsafe_cut = 0;
        for (size_t n = 0; n < z.b.n; n++) {
            pp_report *r = scan(z.b.p, n);
            if (r->verdict == PP_VERDICT_SAFE) unsafe_cut++;
            pp_report_free(r);
        }
        CHECKF(unsafe_cut == 0, "variant %zu: no truncation is safe (%d were)", v, unsafe_cut);
        int bad = 0;
        for (size_t i = 0; i < z.b.n; i++) {
            for (int bit = 0; bit < 8; bit++) {
                z.b.p[i] ^= (uint8_t)(1u << bit);
                pp_report *r = scan(z.b.p, z.b.n);
                if (r->verdict > PP_VERDICT_ERROR) bad++;
                for (size_t k = 0; k < r->narrays; k++)
                    if (r->arrays[k].file_offset != PP_NO_OFFSET &&
                        (r->arrays[k].file_offset > z.b.n ||
                         r->arrays[k].nbytes > z.b.n - r->arrays[k].file_offset))
                        bad++;
                pp_report_free(r);
                z.b.p[i] ^= (uint8_t)(1u << bit);
            }
        }
        CHECKF(bad == 0, "variant %zu: bit flips give sane reports", v);
        free(z.b.p);
    }
}

int main(void)
{
    pp_error err;
    memset(&err, 0, sizeof err);
    if (pp_policy_new(&policy) || pp_policy_add_builtin(policy, "default", &err)) return 99;
    make_npy();
    test_valid();
    test_payload_and_crc();
    test_truncated_deflate();
    test_names();
    test_flags_methods();
    test_sizes_offsets();
    test_zip64();
    test_polyglot_and_limits();
    test_mutations();
    pp_policy_free(policy);
    printf("# %lu scans\n", nscans);
    return tap_done();
}
