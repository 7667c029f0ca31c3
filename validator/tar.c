/* PyTorch's legacy tar format (torch <= 0.3 wrote it; torch 1.13's _legacy_load still tries it
 * first for real files at offset 0), formats.md §4.5: a tar with members
 *   storages  pickle(n), then n x (pickle((key, location, storage_type)) + int64 numel + bytes),
 *             then pickle([(target, root, offset, numel), ...]) views
 *   tensors   pickle(n), then n x (pickle((key, storage_id, type)) + <i ndim + 4 bytes +
 *             ndim x <q sizes + ndim x <q strides + <q storage_offset)
 *   pickle    the object; persistent ids are keys into the two tables above
 * Headers are parsed with every field proven, and every pickle in the file is judged. The
 * tables the object's persistent ids point into are not modelled, so a tar checkpoint is never
 * "safe": it ends with an `unsupported` error after its pickles were scanned. */
#include "cursor.h"
#include "torch.h"

#include <stdio.h>
#include <string.h>

#define BLOCK 512u

/* An octal field: optional leading spaces, digits, then NUL or space padding (tarfile.nti). */
static bool octal(const uint8_t *f, size_t n, uint64_t *v)
{
    size_t i = 0;
    uint64_t x = 0;
    while (i < n && f[i] == ' ')
        i++;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
        if (x > (UINT64_MAX >> 3)) return false;
        x = (x << 3) | (uint64_t)(f[i] - '0');
    }
    for (; i < n; i++)
        if (f[i] != 0 && f[i] != ' ') return false;
    *v = x; /* an empty field is 0, as int(s.strip() or "0", 8) */
    return true;
}

static bool checksum_ok(const uint8_t *h)
{
    uint64_t want;
    if (!octal(h + 148, 8, &want)) return false;
    uint64_t u = 0;
    int64_t s = 0;
    for (size_t i = 0; i < BLOCK; i++) {
        uint8_t b = (i >= 148 && i < 156) ? ' ' : h[i];
        u += b;
        s += (int8_t)b;
    }
    /* tarfile accepts the unsigned and the signed sum */
    return want == u || (int64_t)want == s;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

typedef struct member {
    char name[256];
    uint64_t off, size;
} member;

static pp_err fail(pp_scan_ctx *c, pp_err code, uint64_t off, const char *where, const char *msg)
{
    return pp_ctx_error(c, code, off, where, "%s", msg) == PP_E_NOMEM ? PP_E_NOMEM : PP_OK;
}

/* The storages member: each table pickle judged, raw storage bytes skipped (sizes proven). */
static pp_err walk_storages(pp_scan_ctx *c, pp_torch *t, const uint8_t *p, size_t n, uint64_t base,
                            const char *where, bool tensors)
{
    char name[PP_MAX_WHERE];
    size_t pos = 0, end = 0;
    snprintf(name, sizeof name, "%.200s(count)", where);
    pp_err rc = pp_torch_stream(t, p, n, base, name, false, true, &end);
    if (rc) return rc == PP_E_NOMEM ? rc : PP_OK;
    pp_val v;
    if ((rc = pp_torch_eval(t, p, n, base, &v))) return rc == PP_E_NOMEM ? rc : PP_OK;
    if (v.kind != PP_V_INT || v.u.i < 0)
        return fail(c, PP_E_BAD_VALUE, base, name, "the count is not an int >= 0");
    pos = end;
    int64_t count = v.u.i;
    for (int64_t i = 0; i < count; i++) {
        snprintf(name, sizeof name, "%.200s(%lld)", where, (long long)i);
        end = 0;
        rc = pp_torch_stream(t, p + pos, n - pos, base + pos, name, false, true, &end);
        if (rc) return rc == PP_E_NOMEM ? rc : PP_OK;
        if ((rc = pp_torch_eval(t, p + pos, n - pos, base + pos, &v)))
            return rc == PP_E_NOMEM ? rc : PP_OK;
        uint64_t at = base + pos;
        pos += end;
        pp_cursor cur;
        pp_cursor_init(&cur, p, n, base);
        cur.pos = pos;
        if (!pp_val_is(&v, PP_N_TUPLE) || v.u.node->u.seq.n != 3)
            return fail(c, PP_E_BAD_VALUE, at, name, "a table entry is not a 3-tuple");
        const uint8_t *skip;
        if (!tensors) {
            /* (key, location, storage_type) + int64 numel + numel x element size */
            const pp_val *ty = &v.u.node->u.seq.v[2];
            const pp_torch_stype *st =
                ty->kind == PP_V_NODE ? pp_torch_stype_of(pp_ctx_options(c)->policy, ty->u.node)
                                      : NULL;
            uint64_t numel;
            if (!st)
                return fail(c, PP_E_UNSUPPORTED, at, name,
                            "storage type is not a storage class the policy allows");
            /* hostile: the count is a claim; prove count x size bytes exist */
            if (!pp_cursor_le(&cur, 8, &numel) || numel > UINT64_MAX / st->elsize ||
                !pp_cursor_take(&cur, numel * st->elsize, &skip))
                return fail(c, PP_E_TRUNCATED, pp_cursor_offset(&cur), name,
                            "storage bytes run past the end of the member");
        } else {
            /* (key, storage_id, type) + <i ndim + 4 bytes + 16 x ndim + 8 */
            uint64_t nd;
            if (!pp_cursor_le(&cur, 4, &nd) || nd > 64 || !pp_cursor_take(&cur, 4, &skip) ||
                !pp_cursor_take(&cur, nd * 16 + 8, &skip))
                return fail(c, PP_E_TRUNCATED, pp_cursor_offset(&cur), name,
                            "tensor header runs past the end of the member (or ndim > 64)");
        }
        pos = cur.pos;
    }
    if (!tensors) {
        snprintf(name, sizeof name, "%.200s(views)", where);
        rc = pp_torch_stream(t, p + pos, n - pos, base + pos, name, false, true, &end);
        if (rc) return rc == PP_E_NOMEM ? rc : PP_OK;
    }
    return PP_OK;
}

static pp_err tar_body(pp_scan_ctx *c, pp_torch *t, const uint8_t *data, size_t len, uint64_t base,
                       const char *where)
{
    uint64_t b0 = base == PP_NO_OFFSET ? 0 : base;
    member m[3];
    bool have[3] = {false, false, false};
    static const char *const names[3] = {"storages", "tensors", "pickle"};
    char w[PP_MAX_WHERE];
    size_t pos = 0, count = 0;
    pp_err rc;
    for (;;) {
        /* hostile: a header must be whole; the data it claims must exist */
        if (len - pos < BLOCK)
            return fail(c, PP_E_TRUNCATED, b0 + pos, where, "tar header past the end");
        const uint8_t *h = data + pos;
        if (all_zero(h, BLOCK)) break; /* end of archive (tarfile stops at the first zero block) */
        if (!checksum_ok(h))
            return fail(c, PP_E_BAD_VALUE, b0 + pos, where, "tar header checksum mismatch");
        uint64_t size;
        if (h[124] & 0x80) return fail(c, PP_E_UNSUPPORTED, b0 + pos, where, "base-256 tar sizes");
        if (!octal(h + 124, 12, &size))
            return fail(c, PP_E_BAD_VALUE, b0 + pos, where, "tar size is not octal");
        uint8_t type = h[156];
        size_t nl = strnlen((const char *)h, 100);
        size_t pl = memcmp(h + 257, "ustar", 5) == 0 ? strnlen((const char *)h + 345, 155) : 0;
        char nm[260];
        if (pl)
            snprintf(nm, sizeof nm, "%.*s/%.*s", (int)pl, (const char *)h + 345, (int)nl,
                     (const char *)h);
        else
            snprintf(nm, sizeof nm, "%.*s", (int)nl, (const char *)h);
        snprintf(w, sizeof w, "%.180s!%.70s", where, nm);
        pos += BLOCK;
        if (size > len - pos)
            return fail(c, PP_E_TRUNCATED, b0 + pos, w, "tar member data past the end");
        if (type == 'x' || type == 'g' || type == 'L' || type == 'K' || type == '1' || type == '2')
            /* pax/GNU headers rename or resize the next member; links alias another */
            return fail(c, PP_E_UNSUPPORTED, b0 + pos - BLOCK, w,
                        "pax, GNU long-name and link members are not supported");
        if (type == '0' || type == 0 || type == '7') {
            if (++count > pp_ctx_options(c)->limits.v[PP_LIMIT_ZIP_ENTRIES])
                return pp_ctx_limit(c, PP_LIMIT_ZIP_ENTRIES, b0 + pos, where) == PP_E_NOMEM
                           ? PP_E_NOMEM
                           : PP_OK;
            int k = -1;
            for (int i = 0; i < 3; i++)
                if (strcmp(nm, names[i]) == 0) k = i;
            if (k >= 0) {
                if (have[k]) /* tarfile's getmember returns the last one: refuse the ambiguity */
                    return fail(c, PP_E_BAD_VALUE, b0 + pos - BLOCK, w, "the member appears twice");
                have[k] = true;
                snprintf(m[k].name, sizeof m[k].name, "%s", w);
                m[k].off = pos;
                m[k].size = size;
            } else if (size) {
                rc = pp_ctx_finding(c, "torch-extra-pickle", "info", b0 + pos, w,
                                    "member is not part of the PyTorch tar format; scanned");
                if (rc) return rc;
                if ((rc = pp_ctx_scan_any(c, data + pos, (size_t)size,
                                          base == PP_NO_OFFSET ? PP_NO_OFFSET : base + pos, w)) ==
                    PP_E_NOMEM)
                    return rc;
            }
        }
        uint64_t padded = (size + BLOCK - 1) / BLOCK * BLOCK;
        pos += (size_t)(padded > len - pos ? len - pos : padded);
    }
    for (int k = 0; k < 3; k++) {
        if (!have[k]) continue;
        const uint8_t *p = data + m[k].off;
        size_t n = (size_t)m[k].size;
        uint64_t mb = b0 + m[k].off;
        if (k == 2) {
            rc = pp_torch_stream(t, p, n, mb, m[k].name, true, false, NULL);
            if (rc == PP_E_NOMEM) return rc;
        } else if ((rc = walk_storages(c, t, p, n, mb, m[k].name, k == 1))) {
            return rc;
        }
    }
    if (!have[0] || !have[1] || !have[2])
        return fail(c, PP_E_BAD_VALUE, b0, where,
                    "not a PyTorch tar checkpoint (storages, tensors and pickle members)");
    return fail(c, PP_E_UNSUPPORTED, b0, where,
                "legacy tar checkpoints are scanned but not validated: the storage and tensor "
                "tables their persistent ids name are not modelled");
}

pp_err pp_container_tar(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                        const char *where)
{
    pp_ctx_set_container(c, "pytorch/tar");
    pp_torch *t = NULL;
    if (pp_torch_new(c, false, &t)) return PP_E_NOMEM;
    pp_err rc = tar_body(c, t, data, len, base, where);
    pp_torch_free(t);
    return rc;
}
