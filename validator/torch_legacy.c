/* PyTorch's legacy stacked format (torch.save(..., _use_new_zipfile_serialization=False), the
 * default before 1.6), read as torch 1.13's _legacy_load reads it (formats.md §4.4):
 *   pickle.load -> MAGIC_NUMBER, pickle.load -> PROTOCOL_VERSION (1001), pickle.load -> sys_info
 *   (ignored), UnpicklerWrapper(persistent_load) -> the object, pickle.load -> the storage keys,
 *   then for each key in that order: int64 little-endian numel + numel x element size bytes.
 * Every pickle is judged; the storages are located (never read) and their sizes proven. */
#include "cursor.h"
#include "torch.h"

#include <stdio.h>
#include <string.h>

/* MAGIC_NUMBER 0x1950a86a20f9469cfc6c, little-endian */
static const uint8_t magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static bool is_magic(const pp_val *v)
{
    if (v->kind != PP_V_BIGINT) return false;
    size_t n = v->u.s.n;
    const uint8_t *p = v->u.s.p;
    /* a non-minimal LONG spelling has redundant sign bytes; the value is what counts */
    while (n > 1 && p[n - 1] == 0 && !(p[n - 2] & 0x80))
        n--;
    return n == sizeof magic && memcmp(p, magic, n) == 0;
}

static pp_err fail(pp_scan_ctx *c, pp_err code, uint64_t off, const char *where, const char *msg)
{
    return pp_ctx_error(c, code, off, where, "%s", msg) == PP_E_NOMEM ? PP_E_NOMEM : PP_OK;
}

static pp_err legacy_body(pp_scan_ctx *c, pp_torch *t, const uint8_t *data, size_t len,
                          uint64_t base, const char *where, bool *complete)
{
    static const char *const parts[] = {"magic", "protocol", "sys_info", "object", "storage_keys"};
    uint64_t b0 = base == PP_NO_OFFSET ? 0 : base;
    size_t pos = 0;
    pp_val keys = pp_val_none();
    char name[PP_MAX_WHERE];
    for (size_t i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "%s(%s)", where, parts[i]);
        size_t end = 0;
        /* only the object pickle has persistent_load; the others are plain pickle.load */
        pp_err rc = pp_torch_stream(t, data + pos, len - pos, b0 + pos, name, i == 3, true, &end);
        if (rc == PP_E_NOMEM) return rc;
        if (rc != PP_OK) return PP_OK; /* recorded; torch.load stops here too */
        pp_val v;
        if (i != 2 && i != 3) {
            rc = pp_torch_eval(t, data + pos, len - pos, b0 + pos, &v);
            if (rc == PP_E_NOMEM) return rc;
            if (rc != PP_OK) return PP_OK;
            if (i == 0 && !is_magic(&v))
                return fail(c, PP_E_BAD_VALUE, b0 + pos, name,
                            "the first pickle is not PyTorch's magic number");
            if (i == 1 && !(v.kind == PP_V_INT && v.u.i == 1001))
                return fail(c, PP_E_BAD_VALUE, b0 + pos, name, "the protocol version is not 1001");
            if (i == 4) keys = v;
        }
        pos += end;
    }
    pp_err rc = pp_torch_declare(t);
    if (rc) return rc;
    snprintf(name, sizeof name, "%s(storage_keys)", where);
    if (!pp_val_is(&keys, PP_N_LIST))
        return fail(c, PP_E_BAD_VALUE, b0 + pos, name, "the storage keys are not a list");
    const pp_node *kl = keys.u.node;
    pp_cursor cur;
    pp_cursor_init(&cur, data, len, b0);
    cur.pos = pos;
    for (size_t i = 0; i < kl->u.seq.n; i++) {
        const pp_val *k = &kl->u.seq.v[i];
        if (k->kind != PP_V_STR)
            return fail(c, PP_E_BAD_VALUE, b0 + pos, name, "a storage key is not a str");
        uint32_t es;
        uint64_t numel, count;
        const pp_torch_stype *ty;
        char kw[96];
        snprintf(kw, sizeof kw, "'%.*s'", (int)(k->u.s.n > 40 ? 40 : k->u.s.n),
                 (const char *)k->u.s.p);
        if (!pp_torch_declared(t, k->u.s.p, k->u.s.n, &es, &numel, &ty)) {
            /* torch: assert key in deserialized_objects, after the object was loaded */
            pp_ctx_error(c, PP_E_BAD_VALUE, pp_cursor_offset(&cur), name,
                         "storage key %s has no persistent id in the object pickle", kw);
            return PP_OK;
        }
        uint64_t at = pp_cursor_offset(&cur);
        /* hostile: the count and the bytes must exist; count x size must not overflow */
        if (!pp_cursor_le(&cur, 8, &count)) {
            pp_ctx_error(c, PP_E_TRUNCATED, at, where, "storage %s: no element count", kw);
            return PP_OK;
        }
        if (count != numel) {
            pp_ctx_error(c, PP_E_BAD_VALUE, at, where,
                         "storage %s holds %llu elements, its persistent id says %llu", kw,
                         (unsigned long long)count, (unsigned long long)numel);
            return PP_OK;
        }
        const uint8_t *p;
        if (count > UINT64_MAX / es || !pp_cursor_take(&cur, count * es, &p)) {
            pp_ctx_error(c, PP_E_TRUNCATED, at + 8, where,
                         "storage %s: %llu elements of %u bytes run past the end", kw,
                         (unsigned long long)count, (unsigned)es);
            return PP_OK;
        }
        size_t off = (size_t)(p - data);
        rc = pp_torch_add_record(t, k->u.s.p, k->u.s.n, count * es, off,
                                 base == PP_NO_OFFSET ? PP_NO_OFFSET : base + off, where);
        if (rc == PP_E_BAD_VALUE) {
            pp_ctx_error(c, PP_E_BAD_VALUE, at, where, "storage %s is listed twice", kw);
            return PP_OK;
        }
        if (rc) return rc;
    }
    *complete = true;
    if (pp_cursor_left(&cur)) {
        /* torch.load stops after the last storage; nothing there is ever read */
        rc = pp_ctx_finding(c, "trailing-data", "medium", pp_cursor_offset(&cur), where,
                            "%zu bytes after the last storage", pp_cursor_left(&cur));
        if (rc) return rc;
    }
    return PP_OK;
}

pp_err pp_container_torch_legacy(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                                 const char *where)
{
    pp_ctx_set_container(c, "pytorch/legacy");
    pp_torch *t = NULL;
    if (pp_torch_new(c, true, &t)) return PP_E_NOMEM;
    bool complete = false;
    pp_err rc = legacy_body(c, t, data, len, base, where, &complete);
    /* judge what ran even when the file broke (it is refused as malformed then) */
    if (!complete) pp_torch_broken(t);
    if (rc == PP_OK) rc = pp_torch_finish(t);
    pp_torch_free(t);
    return rc;
}
