/* PyTorch's legacy tar format (torch <= 0.3 wrote it; torch 1.13's _legacy_load still tries it
 * first for real files at offset 0), formats.md §4.5: a tar with members
 *   storages  pickle(n), then n x (pickle((key, location, storage_type)) + int64 numel + bytes),
 *             then pickle([(target, root, offset, numel), ...]) views
 *   tensors   pickle(n), then n x (pickle((key, storage_id, type)) + <i ndim + 4 bytes +
 *             ndim x <q sizes + ndim x <q strides + <q storage_offset)
 *   pickle    the object; persistent ids are keys into the two tables above
 * Headers are parsed with every field proven and every pickle judged; the storage, view and tensor
 * tables are modelled as torch's legacy_load builds them (storages sized, views and tensors kept
 * inside their storages), and the object's persistent ids must name one of their keys. */
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

/* What torch's legacy_load builds before the object pickle: deserialized_objects, keyed by the
 * int keys of storages, storage views and tensors. Persistent ids of the object pickle must name
 * one of them (or be a tuple, whose first element torch returns as is). */
typedef struct tkey {
    int64_t key;
    uint64_t numel; /* elements, for storages and views; 0 for tensors */
    bool storage;
} tkey;

typedef struct tables {
    tkey *k;
    size_t n, cap;
} tables;

static tkey *find_key(const tables *tb, int64_t key)
{
    for (size_t i = 0; i < tb->n; i++)
        if (tb->k[i].key == key)
            return &tb->k[i];
    return NULL;
}

static pp_err add_key(tables *tb, int64_t key, uint64_t numel, bool storage)
{
    if (tb->n == tb->cap) {
        size_t nc = tb->cap ? tb->cap * 2 : 16;
        tkey *nk = pp_realloc(tb->k, nc * sizeof *nk);
        if (!nk) return PP_E_NOMEM;
        tb->k = nk;
        tb->cap = nc;
    }
    tb->k[tb->n++] = (tkey){key, numel, storage};
    return PP_OK;
}

/* the policy hook: torch's persistent_load for the tar format */
static bool tar_persid(void *ctx, const pp_event *ev)
{
    const tables *tb = ctx;
    const pp_val *pid = &ev->node->u.persid.pid;
    if (pp_val_is(pid, PP_N_TUPLE)) return pid->u.node->u.seq.n >= 1;
    return pid->kind == PP_V_INT && find_key(tb, pid->u.i) != NULL;
}

static pp_err fail(pp_scan_ctx *c, pp_err code, uint64_t off, const char *where, const char *msg)
{
    return pp_ctx_error(c, code, off, where, "%s", msg) == PP_E_NOMEM ? PP_E_NOMEM : PP_OK;
}

/* The storages member: each table pickle judged, raw storage bytes skipped (sizes proven). */
static pp_err walk_storages(pp_scan_ctx *c, pp_torch *t, tables *tb, const uint8_t *p, size_t n,
                            uint64_t base, bool known, const char *where, bool tensors,
                            bool *stop)
{
    char name[PP_MAX_WHERE];
    size_t pos = 0, end = 0;
    snprintf(name, sizeof name, "%.200s(count)", where);
    pp_err rc = pp_torch_stream(t, p, n, base, name, false, true, &end);
    if (rc) return *stop = true, rc == PP_E_NOMEM ? rc : PP_OK;
    pp_val v;
    if ((rc = pp_torch_eval(t, p, n, base, &v))) return *stop = true, rc == PP_E_NOMEM ? rc : PP_OK;
    if (v.kind != PP_V_INT || v.u.i < 0)
        return *stop = true, fail(c, PP_E_BAD_VALUE, base, name, "the count is not an int >= 0");
    pos = end;
    int64_t count = v.u.i;
    for (int64_t i = 0; i < count; i++) {
        snprintf(name, sizeof name, "%.200s(%lld)", where, (long long)i);
        end = 0;
        rc = pp_torch_stream(t, p + pos, n - pos, base + pos, name, false, true, &end);
        if (rc) return *stop = true, rc == PP_E_NOMEM ? rc : PP_OK;
        if ((rc = pp_torch_eval(t, p + pos, n - pos, base + pos, &v)))
            return *stop = true, rc == PP_E_NOMEM ? rc : PP_OK;
        uint64_t at = base + pos;
        pos += end;
        pp_cursor cur;
        pp_cursor_init(&cur, p, n, base);
        cur.pos = pos;
        if (!pp_val_is(&v, PP_N_TUPLE) || v.u.node->u.seq.n != 3)
            return *stop = true, fail(c, PP_E_BAD_VALUE, at, name, "a table entry is not a 3-tuple");
        const pp_val *ent = v.u.node->u.seq.v;
        /* persistent_load looks keys up with int(saved_id): keys are ints */
        if (ent[0].kind != PP_V_INT || find_key(tb, ent[0].u.i))
            return *stop = true, fail(c, PP_E_BAD_VALUE, at, name, "a table key is not a new int");
        const uint8_t *skip;
        if (!tensors) {
            /* (key, location, storage_type) + int64 numel + numel x element size */
            const pp_val *ty = &v.u.node->u.seq.v[2];
            const pp_torch_stype *st =
                ty->kind == PP_V_NODE ? pp_torch_stype_of(pp_ctx_options(c)->policy, ty->u.node)
                                      : NULL;
            uint64_t numel;
            if (!st)
                return *stop = true, fail(c, PP_E_UNSUPPORTED, at, name,
                            "storage type is not a storage class the policy allows");
            /* hostile: the count is a claim; prove count x size bytes exist */
            if (!pp_cursor_le(&cur, 8, &numel) || numel > UINT64_MAX / st->elsize ||
                !pp_cursor_take(&cur, numel * st->elsize, &skip))
                return *stop = true, fail(c, PP_E_TRUNCATED, pp_cursor_offset(&cur), name,
                            "storage bytes run past the end of the member");
            if (add_key(tb, ent[0].u.i, numel, true)) return PP_E_NOMEM;
            pp_array_region r;
            memset(&r, 0, sizeof r);
            r.where = (char *)(uintptr_t)where; /* copied by pp_ctx_region */
            r.offset = (uint64_t)(skip - p);
            r.file_offset = known ? base + r.offset : PP_NO_OFFSET;
            r.nbytes = numel * st->elsize;
            snprintf(r.dtype, sizeof r.dtype, "%s", st->dtype ? st->dtype : "");
            r.ndim = 1;
            r.shape[0] = numel;
            r.order = 'C';
            if (pp_ctx_region(c, &r, NULL)) return PP_E_NOMEM;
        } else {
            /* (key, storage_id, type) + <i ndim + 4 bytes + 16 x ndim + 8 */
            uint64_t nd;
            if (!pp_cursor_le(&cur, 4, &nd) || nd > 64 || !pp_cursor_take(&cur, 4, &skip) ||
                !pp_cursor_take(&cur, nd * 16 + 8, &skip))
                return *stop = true, fail(c, PP_E_TRUNCATED, pp_cursor_offset(&cur), name,
                            "tensor header runs past the end of the member (or ndim > 64)");
            /* hostile: the view must stay inside its storage (set_ would read past it) */
            const tkey *sk = ent[1].kind == PP_V_INT ? find_key(tb, ent[1].u.i) : NULL;
            if (!sk || !sk->storage)
                return *stop = true, fail(c, PP_E_BAD_VALUE, at, name, "a tensor names no storage");
            pp_cursor hc;
            pp_cursor_init(&hc, skip, (size_t)(nd * 16 + 8), 0);
            uint64_t sizes[64], strides[64], off = 0, last = 0;
            bool empty = false, ok = true;
            for (uint64_t d = 0; d < nd; d++) pp_cursor_le(&hc, 8, &sizes[d]);
            for (uint64_t d = 0; d < nd; d++) pp_cursor_le(&hc, 8, &strides[d]);
            pp_cursor_le(&hc, 8, &off);
            if ((int64_t)off < 0) ok = false;
            for (uint64_t d = 0; d < nd && ok; d++) {
                if ((int64_t)sizes[d] < 0 || (int64_t)strides[d] < 0) ok = false;
                else if (sizes[d] == 0) empty = true;
            }
            last = off;
            for (uint64_t d = 0; d < nd && ok && !empty; d++) {
                uint64_t span = sizes[d] - 1;
                if (strides[d] && span > (UINT64_MAX - last) / strides[d]) ok = false;
                else last += span * strides[d];
            }
            if (!ok || (!empty && last >= sk->numel))
                return *stop = true, fail(c, PP_E_BAD_VALUE, at, name,
                            "a tensor's sizes, strides or offset reach outside its storage");
            if (add_key(tb, ent[0].u.i, 0, false)) return PP_E_NOMEM;
        }
        pos = cur.pos;
    }
    if (!tensors) {
        snprintf(name, sizeof name, "%.200s(views)", where);
        rc = pp_torch_stream(t, p + pos, n - pos, base + pos, name, false, true, &end);
        if (rc) return *stop = true, rc == PP_E_NOMEM ? rc : PP_OK;
        if ((rc = pp_torch_eval(t, p + pos, n - pos, base + pos, &v)))
            return *stop = true, rc == PP_E_NOMEM ? rc : PP_OK;
        /* [(target, root, offset, numel)]: a slice of a storage, inside it */
        if (!pp_val_is(&v, PP_N_LIST))
            return *stop = true, fail(c, PP_E_BAD_VALUE, base + pos, name, "the storage views are not a list");
        for (size_t i = 0; i < v.u.node->u.seq.n; i++) {
            const pp_val *e = &v.u.node->u.seq.v[i];
            const pp_val *f = pp_val_is(e, PP_N_TUPLE) && e->u.node->u.seq.n == 4
                                  ? e->u.node->u.seq.v
                                  : NULL;
            const tkey *root = f && f[1].kind == PP_V_INT ? find_key(tb, f[1].u.i) : NULL;
            if (!f || f[0].kind != PP_V_INT || f[2].kind != PP_V_INT || f[3].kind != PP_V_INT ||
                !root || !root->storage || f[2].u.i < 0 || f[3].u.i < 0 ||
                (uint64_t)f[2].u.i > root->numel ||
                (uint64_t)f[3].u.i > root->numel - (uint64_t)f[2].u.i || find_key(tb, f[0].u.i))
                return *stop = true, fail(c, PP_E_BAD_VALUE, base + pos, name,
                            "a storage view is malformed or reaches outside its storage");
            if (add_key(tb, f[0].u.i, (uint64_t)f[3].u.i, true)) return PP_E_NOMEM;
        }
    }
    return PP_OK;
}

static pp_err tar_body(pp_scan_ctx *c, pp_torch *t, tables *tb, const uint8_t *data, size_t len,
                       uint64_t base, const char *where, bool *complete)
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
    if (!have[0] || !have[1] || !have[2])
        return fail(c, PP_E_BAD_VALUE, b0, where,
                    "not a PyTorch tar checkpoint (storages, tensors and pickle members)");
    /* in torch's order: the tables the object's persistent ids name, then the object */
    for (int k = 0; k < 3; k++) {
        const uint8_t *p = data + m[k].off;
        size_t n = (size_t)m[k].size;
        uint64_t mb = b0 + m[k].off;
        if (k == 2) {
            rc = pp_torch_stream(t, p, n, mb, m[k].name, true, false, NULL);
            if (rc == PP_E_NOMEM) return rc;
            if (rc != PP_OK) return PP_OK; /* recorded */
        } else {
            bool stop = false;
            rc = walk_storages(c, t, tb, p, n, mb, base != PP_NO_OFFSET, m[k].name, k == 1, &stop);
            if (rc || stop)
                return rc; /* recorded; torch.load fails before it reaches the object */
        }
    }
    *complete = true;
    return PP_OK;
}

pp_err pp_container_tar(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                        const char *where)
{
    pp_ctx_set_container(c, "pytorch/tar");
    pp_torch *t = NULL;
    if (pp_torch_new(c, false, &t)) return PP_E_NOMEM;
    /* the tables outlive this call: the policy hook reads them when the graph is judged */
    tables *tb = pp_calloc(1, sizeof *tb);
    if (!tb || pp_ctx_keep(c, tb)) {
        pp_torch_free(t);
        return PP_E_NOMEM;
    }
    bool complete = false;
    pp_err rc = tar_body(c, t, tb, data, len, base, where, &complete);
    pp_torch_free(t);
    if (tb->k && pp_ctx_keep(c, tb->k)) return PP_E_NOMEM;
    if (rc == PP_OK && complete) {
        pp_policy_hooks h = {.persid_allowed = tar_persid, .ctx = tb};
        pp_ctx_set_policy_hooks(c, &h);
    }
    return rc;
}
