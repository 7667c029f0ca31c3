/* The result wire format (see wire.h). The encoder runs in the sandboxed child; the decoder runs
 * in the parent over bytes an exploited child may have chosen, so every read goes through the
 * cursor, every length is checked against a per-field bound before anything is allocated, and
 * every count is checked against the bytes left. */
#include "wire.h"

#include "arena.h"
#include "cursor.h"
#include "err.h"
#include "policy.h"
#include "report.h"
#include "vm.h"

#include <stdio.h>
#include <string.h>

/* Per-field bounds. A legitimate report never comes near them (names are capped by the VM and the
 * containers); a child that exceeds one is lying. */
#define MAX_RULE 64
#define MAX_SHORT 256       /* container, severity */
#define MAX_TEXT (1u << 16) /* finding streams and messages, array locations */
#define MAX_NAME (1u << 20) /* one half of a global */

/* ---- encoder (child) ---------------------------------------------------------------------- */

static void put_le(pp_buf *b, uint64_t v, unsigned n)
{
    uint8_t t[8];
    for (unsigned i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    pp_buf_put(b, t, n);
}

static void put_str(pp_buf *b, const char *s, size_t n)
{
    put_le(b, n, 4);
    pp_buf_put(b, s, n);
}

static void put_cstr(pp_buf *b, const char *s)
{
    put_str(b, s ? s : "", s ? strlen(s) : 0);
}

static int opcode_byte(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < 256; i++)
        if (pp_vm_opname(i) == name) return i;
    return -1;
}

void pp_wire_encode(pp_buf *b, pp_err scan_rc, const pp_report *r, const pp_wire_global *globals)
{
    size_t start = b->n;
    pp_buf_put(b, "PPSR", 4);
    put_le(b, PP_WIRE_VERSION, 2);
    put_le(b, 0, 2);
    put_le(b, 0, 4); /* body length, patched below */
    put_le(b, (uint32_t)scan_rc, 4);
    if (scan_rc == PP_OK && r) {
        put_le(b, (uint64_t)r->verdict, 1);
        put_cstr(b, r->container);
        put_le(b, r->nstreams, 8);
        put_le(b, r->bytes, 8);
        put_le(b, (uint32_t)r->error.code, 4);
        put_le(b, r->error.offset, 8);
        put_le(b, (uint32_t)r->error.opcode, 4);
        put_le(b, (uint32_t)r->error.limit, 4);
        put_cstr(b, r->error.stream);
        put_cstr(b, r->error.msg);
        put_le(b, r->nfindings, 4);
        for (size_t i = 0; i < r->nfindings; i++) {
            const pp_finding *f = &r->findings[i];
            put_cstr(b, f->rule);
            put_cstr(b, f->severity);
            put_le(b, f->global != NULL, 1);
            if (f->global) put_cstr(b, f->global);
            put_le(b, (uint32_t)opcode_byte(f->opcode), 4);
            put_le(b, f->offset, 8);
            put_le(b, f->stream != NULL, 1);
            if (f->stream) put_cstr(b, f->stream);
            put_cstr(b, f->message);
        }
        put_le(b, r->nglobals, 4);
        for (size_t i = 0; i < r->nglobals; i++) {
            put_str(b, globals[i].module, globals[i].modlen);
            put_str(b, globals[i].name, globals[i].namelen);
        }
        put_le(b, r->narrays, 4);
        for (size_t i = 0; i < r->narrays; i++) {
            const pp_array_region *a = &r->arrays[i];
            put_cstr(b, a->where);
            put_le(b, a->offset, 8);
            put_le(b, a->file_offset, 8);
            put_le(b, a->nbytes, 8);
            put_cstr(b, a->dtype);
            put_le(b, a->ndim, 4);
            for (uint32_t k = 0; k < a->ndim && k < PP_MAX_NDIM; k++)
                put_le(b, a->shape[k], 8);
            put_le(b, (uint8_t)a->order, 1);
        }
    }
    if (!pp_buf_ok(b)) return;
    size_t body = b->n - start - PP_WIRE_HEADER;
    if (body > PP_WIRE_MAX_FRAME - PP_WIRE_HEADER) {
        b->failed = true; /* the parent would refuse it: say so here, not there */
        return;
    }
    for (unsigned i = 0; i < 4; i++)
        b->p[start + 8 + i] = (char)(uint8_t)(body >> (8 * i));
}

/* ---- decoder (parent) --------------------------------------------------------------------- */

typedef struct dec {
    pp_cursor c;
    pp_error *why;
} dec;

static pp_err bad(dec *d, const char *what)
{
    return pp_fail(d->why, PP_E_SANDBOX_ERROR, pp_cursor_offset(&d->c), -1,
                   "sandbox result rejected: %s at byte %zu", what, d->c.pos);
}

static bool get_u(dec *d, unsigned n, uint64_t *v)
{
    return pp_cursor_le(&d->c, n, v);
}

/* hostile: a string is a length the child chose; bound it before borrowing, refuse NULs so the
 * C string we make is the whole value. */
static pp_err get_str(dec *d, size_t max, const char *what, const uint8_t **s, size_t *n)
{
    uint64_t len;
    if (!get_u(d, 4, &len)) return bad(d, what);
    if (len > max) return bad(d, what);
    if (!pp_cursor_take(&d->c, len, s)) return bad(d, what);
    if (len && memchr(*s, 0, (size_t)len)) return bad(d, what);
    *n = (size_t)len;
    return PP_OK;
}

/* A NUL-terminated copy of a string field. */
static pp_err get_cstr(dec *d, size_t max, const char *what, char **out)
{
    const uint8_t *s;
    size_t n;
    pp_err rc = get_str(d, max, what, &s, &n);
    if (rc) return rc;
    char *c = pp_malloc(n + 1);
    if (!c) return PP_E_NOMEM;
    memcpy(c, s, n);
    c[n] = 0;
    *out = c;
    return PP_OK;
}

/* Copies a string field into a fixed array, which must hold it with its NUL. */
static pp_err get_fixed(dec *d, char *dst, size_t cap, const char *what)
{
    const uint8_t *s;
    size_t n;
    pp_err rc = get_str(d, cap - 1, what, &s, &n);
    if (rc) return rc;
    memcpy(dst, s, n);
    dst[n] = 0;
    return PP_OK;
}

static const char *const severities[] = {"critical", "high", "medium", "low", "info"};

/* hostile: an opcode is -1 or a byte (an error may name an invalid one). */
static bool opcode_ok(uint64_t v, int *op)
{
    int32_t o = (int32_t)(uint32_t)v;
    if (v > UINT32_MAX || o < -1 || o > 255) return false;
    *op = o;
    return true;
}

static pp_err dec_error(dec *d, pp_error *e)
{
    uint64_t code, off, op, lim;
    if (!get_u(d, 4, &code) || !get_u(d, 8, &off) || !get_u(d, 4, &op) || !get_u(d, 4, &lim))
        return bad(d, "truncated error");
    /* hostile: codes and limit ids index name tables */
    if (code >= PP_E__COUNT) return bad(d, "unknown error code");
    int32_t l = (int32_t)(uint32_t)lim;
    if (lim > UINT32_MAX || l < -1 || l >= PP_LIMIT__COUNT) return bad(d, "unknown limit id");
    if (code == PP_E_LIMIT && l < 0) return bad(d, "limit error without a limit");
    int o;
    if (!opcode_ok(op, &o)) return bad(d, "bad error opcode");
    pp_error_clear(e);
    e->code = (pp_err)code;
    e->offset = off;
    e->opcode = o;
    e->limit = l;
    pp_err rc = get_fixed(d, e->stream, sizeof e->stream, "error stream");
    if (!rc) rc = get_fixed(d, e->msg, sizeof e->msg, "error message");
    return rc;
}

static pp_err dec_finding(dec *d, pp_report *r)
{
    char rule[MAX_RULE + 1], sev[MAX_SHORT + 1];
    char *global = NULL, *stream = NULL, *msg = NULL;
    uint64_t has, op, off;
    int o = -1;
    pp_err rc = get_fixed(d, rule, sizeof rule, "finding rule");
    if (!rc) rc = get_fixed(d, sev, sizeof sev, "finding severity");
    if (rc) return rc;
    /* hostile: the verdict is derived from severities, so only the known ones pass */
    bool known = false;
    for (size_t i = 0; i < sizeof severities / sizeof severities[0]; i++)
        known |= strcmp(sev, severities[i]) == 0;
    if (!known || !rule[0]) return bad(d, "unknown finding severity or empty rule");
    if (!get_u(d, 1, &has) || has > 1) return bad(d, "finding global flag");
    if (has && (rc = get_cstr(d, MAX_NAME * 2 + 1, "finding global", &global))) goto out;
    if (!get_u(d, 4, &op) || !opcode_ok(op, &o) || !get_u(d, 8, &off)) {
        rc = bad(d, "finding opcode/offset");
        goto out;
    }
    if (!get_u(d, 1, &has) || has > 1) {
        rc = bad(d, "finding stream flag");
        goto out;
    }
    if (has && (rc = get_cstr(d, MAX_TEXT, "finding stream", &stream))) goto out;
    if ((rc = get_cstr(d, MAX_TEXT, "finding message", &msg))) goto out;
    rc = pp_report_add_finding(r, rule, sev, global, o, off, stream, "%s", msg);
out:
    pp_free(global);
    pp_free(stream);
    pp_free(msg);
    return rc;
}

static pp_err dec_global(dec *d, pp_report *r, const pp_policy *policy, pp_wire_result *res)
{
    const uint8_t *m, *q;
    size_t mn, qn;
    pp_err rc = get_str(d, MAX_NAME, "global module", &m, &mn);
    if (!rc) rc = get_str(d, MAX_NAME, "global qualname", &q, &qn);
    if (rc) return rc;
    if (!mn || !qn) return bad(d, "empty global");
    /* hostile: the child's "safe" is a claim; the policy decides again here. A global with no
     * permission at all can never be in a safe file. */
    if (policy && !pp_policy_lookup(policy, (const char *)m, mn, (const char *)q, qn)) {
        if (res->denied_globals++ == 0)
            snprintf(res->denied_first, sizeof res->denied_first, "%.*s.%.*s",
                     (int)(mn > 70 ? 70 : mn), (const char *)m, (int)(qn > 70 ? 70 : qn),
                     (const char *)q);
    }
    return pp_report_add_global(r, (const char *)m, mn, (const char *)q, qn);
}

static pp_err dec_array(dec *d, pp_report *r, uint64_t input_len)
{
    pp_array_region a;
    memset(&a, 0, sizeof a);
    uint64_t ndim, order;
    pp_err rc;
    const uint8_t *w;
    size_t wn;
    if ((rc = get_str(d, MAX_TEXT, "array location", &w, &wn))) return rc;
    if (!get_u(d, 8, &a.offset) || !get_u(d, 8, &a.file_offset) || !get_u(d, 8, &a.nbytes))
        return bad(d, "array extent");
    /* hostile: a region that claims file bytes must lie inside the input we hold */
    if (a.file_offset != PP_NO_OFFSET &&
        (a.file_offset > input_len || a.nbytes > input_len - a.file_offset))
        return bad(d, "array region outside the input");
    if ((rc = get_fixed(d, a.dtype, sizeof a.dtype, "array dtype"))) return rc;
    if (!get_u(d, 4, &ndim) || ndim > PP_MAX_NDIM) return bad(d, "array ndim");
    a.ndim = (uint32_t)ndim;
    for (uint32_t k = 0; k < a.ndim; k++)
        if (!get_u(d, 8, &a.shape[k])) return bad(d, "array shape");
    if (!get_u(d, 1, &order) || (order != 'C' && order != 'F')) return bad(d, "array order");
    a.order = (char)order;
    char *where = pp_malloc(wn + 1);
    if (!where) return PP_E_NOMEM;
    memcpy(where, w, wn);
    where[wn] = 0;
    /* append like the scanner does: grow at powers of two */
    if ((r->narrays & (r->narrays - 1)) == 0) {
        size_t nc = r->narrays ? r->narrays * 2 : 4;
        pp_array_region *na = pp_realloc(r->arrays, nc * sizeof *na);
        if (!na) {
            pp_free(where);
            return PP_E_NOMEM;
        }
        r->arrays = na;
    }
    a.where = where;
    r->arrays[r->narrays++] = a;
    return PP_OK;
}

pp_err pp_wire_decode(const uint8_t *p, size_t n, uint64_t input_len, const pp_policy *policy,
                      pp_report *r, pp_wire_result *res, pp_error *why)
{
    dec D = {.why = why};
    dec *d = &D;
    memset(res, 0, sizeof *res);
    res->claimed_verdict = -1;
    pp_cursor_init(&d->c, p, n, 0);
    const uint8_t *magic;
    uint64_t ver, flags, body, v;
    if (!pp_cursor_take(&d->c, 4, &magic) || memcmp(magic, "PPSR", 4) != 0)
        return bad(d, "bad magic");
    if (!get_u(d, 2, &ver) || ver != PP_WIRE_VERSION || !get_u(d, 2, &flags) || flags != 0)
        return bad(d, "unsupported version or flags");
    /* hostile: the frame is exactly its declared length, no more, no less */
    if (!get_u(d, 4, &body) || body != pp_cursor_left(&d->c))
        return bad(d, "frame length does not match the bytes received");
    if (!get_u(d, 4, &v) || v >= PP_E__COUNT) return bad(d, "scan result code");
    res->scan_rc = (pp_err)v;
    if (res->scan_rc != PP_OK)
        return pp_cursor_left(&d->c) ? bad(d, "bytes after a failed scan") : PP_OK;
    pp_err rc;
    if (!get_u(d, 1, &v) || v > PP_VERDICT_ERROR) return bad(d, "verdict");
    res->claimed_verdict = (int)v;
    char container[MAX_SHORT + 1];
    if ((rc = get_fixed(d, container, sizeof container, "container"))) return rc;
    if ((rc = pp_report_set_container(r, container))) return rc;
    uint64_t nstreams, bytes;
    if (!get_u(d, 8, &nstreams) || !get_u(d, 8, &bytes)) return bad(d, "stream count");
    /* hostile: the child scanned the bytes we gave it, not some other number of them */
    if (bytes != input_len) return bad(d, "input size differs from what was sent");
    r->nstreams = (size_t)nstreams;
    if ((rc = dec_error(d, &r->error))) return rc;
    uint64_t count;
    /* hostile: every element takes at least 4 bytes, so a count above left/4 is a lie; checking
     * it first keeps a short frame from making us loop or reserve for billions */
    if (!get_u(d, 4, &count) || count > pp_cursor_left(&d->c) / 4) return bad(d, "finding count");
    for (uint64_t i = 0; i < count; i++)
        if ((rc = dec_finding(d, r))) return rc;
    if (!get_u(d, 4, &count) || count > pp_cursor_left(&d->c) / 8) return bad(d, "global count");
    for (uint64_t i = 0; i < count; i++)
        if ((rc = dec_global(d, r, policy, res))) return rc;
    if (!get_u(d, 4, &count) || count > pp_cursor_left(&d->c) / 4) return bad(d, "array count");
    for (uint64_t i = 0; i < count; i++)
        if ((rc = dec_array(d, r, input_len))) return rc;
    if (pp_cursor_left(&d->c)) return bad(d, "trailing bytes");
    return PP_OK;
}
