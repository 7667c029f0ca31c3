/* Canonical JSON of a graph (tests/python/CANONICAL.md). Dicts and sets are written with
 * CPython's duplicate rules applied, since the VM keeps every inserted pair. */
#include "dump.h"

#include "arena.h"
#include "err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct ptrmap {
    const void **keys;
    uint32_t *vals;
    size_t cap, len;
} ptrmap;

typedef struct dumper {
    pp_buf *out;
    ptrmap ids; /* mutable container -> id */
    uint32_t next_id;
    uint64_t depth_limit;
    size_t max_output;
    pp_error *err;
    bool failed;
} dumper;

static uint64_t mixp(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

static bool ptrmap_get(const ptrmap *m, const void *k, uint32_t *v)
{
    if (!m->cap)
        return false;
    size_t j = (size_t)mixp(k) & (m->cap - 1);
    while (m->keys[j]) {
        if (m->keys[j] == k) {
            *v = m->vals[j];
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}

static bool ptrmap_put(ptrmap *m, const void *k, uint32_t v)
{
    if ((m->len + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        const void **nk = pp_calloc(nc, sizeof *nk);
        uint32_t *nv = pp_calloc(nc, sizeof *nv);
        if (!nk || !nv) {
            pp_free(nk);
            pp_free(nv);
            return false;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i])
                continue;
            size_t j = (size_t)mixp(m->keys[i]) & (nc - 1);
            while (nk[j])
                j = (j + 1) & (nc - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        pp_free(m->keys);
        pp_free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = nc;
    }
    size_t j = (size_t)mixp(k) & (m->cap - 1);
    while (m->keys[j])
        j = (j + 1) & (m->cap - 1);
    m->keys[j] = k;
    m->vals[j] = v;
    m->len++;
    return true;
}

/* A JSON string of UTF-8 text as Python's json.dumps writes it (ASCII only, \u escapes, lone
 * surrogates from surrogatepass decoding as \udXXX). */
static void json_pystr(pp_buf *b, const uint8_t *s, size_t n)
{
    pp_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            size_t j = i;
            while (j < n && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\')
                j++;
            pp_buf_put(b, s + i, j - i);
            i = j;
            continue;
        }
        uint32_t cp = c;
        size_t len = 1;
        if (c >= 0xf0 && i + 3 < n) {
            len = 4;
            cp = ((c & 0x07u) << 18) | ((s[i + 1] & 0x3fu) << 12) | ((s[i + 2] & 0x3fu) << 6) |
                 (s[i + 3] & 0x3fu);
        } else if (c >= 0xe0 && i + 2 < n) {
            len = 3;
            cp = ((c & 0x0fu) << 12) | ((s[i + 1] & 0x3fu) << 6) | (s[i + 2] & 0x3fu);
        } else if (c >= 0xc0 && i + 1 < n) {
            len = 2;
            cp = ((c & 0x1fu) << 6) | (s[i + 1] & 0x3fu);
        }
        i += len;
        switch (cp) {
        case '"': pp_buf_puts(b, "\\\""); continue;
        case '\\': pp_buf_puts(b, "\\\\"); continue;
        case '\n': pp_buf_puts(b, "\\n"); continue;
        case '\r': pp_buf_puts(b, "\\r"); continue;
        case '\t': pp_buf_puts(b, "\\t"); continue;
        case '\b': pp_buf_puts(b, "\\b"); continue;
        case '\f': pp_buf_puts(b, "\\f"); continue;
        default: break;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            pp_buf_printf(b, "\\u%04x\\u%04x", 0xd800u + (cp >> 10), 0xdc00u + (cp & 0x3ffu));
        } else {
            pp_buf_printf(b, "\\u%04x", cp);
        }
    }
    pp_buf_putc(b, '"');
}

/* Python's hex(): "0x1f", "-0x1f", "0x0". */
static void put_int(pp_buf *b, const pp_val *v)
{
    if (v->kind != PP_V_BIGINT) {
        int64_t i = v->u.i;
        uint64_t mag = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        pp_buf_printf(b, "{\"int\":\"%s0x%llx\"}", i < 0 ? "-" : "", (unsigned long long)mag);
        return;
    }
    const uint8_t *p = v->u.s.p;
    size_t n = v->u.s.n;
    bool neg = p[n - 1] & 0x80;
    uint8_t tmp[256];
    uint8_t *mag = n <= sizeof tmp ? tmp : pp_malloc(n);
    if (!mag) {
        b->failed = true;
        return;
    }
    unsigned carry = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned x = neg ? (unsigned)(uint8_t)~p[i] + carry : p[i];
        mag[i] = (uint8_t)x;
        carry = neg ? x >> 8 : 0;
    }
    size_t top = n;
    while (top > 1 && mag[top - 1] == 0)
        top--;
    pp_buf_printf(b, "{\"int\":\"%s0x%x", neg ? "-" : "", mag[top - 1]);
    for (size_t i = top - 1; i-- > 0;)
        pp_buf_printf(b, "%02x", mag[i]);
    pp_buf_puts(b, "\"}");
    if (mag != tmp)
        pp_free(mag);
}

/* ---- hashing consistent with pp_val_equal, for deduplicating dict keys and set elements ---- */

static uint64_t hmix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t val_hash(const pp_val *v, unsigned depth)
{
    switch (v->kind) {
    case PP_V_NONE: return 1;
    case PP_V_BOOL:
    case PP_V_INT: return (uint64_t)v->u.i * 0x9e3779b97f4a7c15ull;
    case PP_V_FLOAT: {
        double f = v->u.f;
        if (isfinite(f) && f == floor(f) && f >= -9223372036854775808.0 &&
            f < 9223372036854775808.0)
            return (uint64_t)(int64_t)f * 0x9e3779b97f4a7c15ull;
        if (isfinite(f) && f == floor(f))
            return 7; /* may equal a big int */
        uint64_t bits;
        memcpy(&bits, &f, sizeof bits);
        return bits;
    }
    case PP_V_BIGINT: return 7;
    case PP_V_STR:
    case PP_V_BYTES: {
        uint64_t h = v->kind;
        for (size_t i = 0; i < v->u.s.n; i++)
            h = (h ^ v->u.s.p[i]) * 0x100000001b3ull;
        return h;
    }
    default: break;
    }
    const pp_node *n = v->u.node;
    if (depth == 0)
        return 3;
    if (n->kind == PP_N_TUPLE) {
        uint64_t h = 5;
        for (size_t i = 0; i < n->u.seq.n; i++)
            h = hmix(h, val_hash(&n->u.seq.v[i], depth - 1));
        return h;
    }
    if (n->kind == PP_N_FROZENSET)
        return 11; /* order-independent; collisions are resolved by equality */
    return mixp(n);
}

/* Indices (into the pair/element array) that survive CPython's duplicate rules: for each
 * distinct key its first occurrence, with `last[i]` the index whose value wins. */
typedef struct dedup {
    size_t *first; /* surviving indices in order */
    size_t *last;  /* per surviving entry, the last equal index */
    size_t n;
} dedup;

static bool do_dedup(const pp_val *items, size_t count, size_t stride, unsigned depth, dedup *d,
                     bool *ambiguous)
{
    memset(d, 0, sizeof *d);
    if (!count)
        return true;
    size_t cap = 16;
    while (cap < count * 2)
        cap *= 2;
    size_t *slots = pp_malloc(cap * sizeof *slots);
    d->first = pp_malloc(count * sizeof *d->first);
    d->last = pp_malloc(count * sizeof *d->last);
    if (!slots || !d->first || !d->last) {
        pp_free(slots);
        pp_free(d->first);
        pp_free(d->last);
        return false;
    }
    for (size_t i = 0; i < cap; i++)
        slots[i] = SIZE_MAX;
    for (size_t i = 0; i < count; i++) {
        const pp_val *k = &items[i * stride];
        size_t j = (size_t)val_hash(k, depth) & (cap - 1);
        for (;;) {
            if (slots[j] == SIZE_MAX) {
                slots[j] = d->n;
                d->first[d->n] = i;
                d->last[d->n] = i;
                d->n++;
                break;
            }
            int eq = pp_val_equal(&items[d->first[slots[j]] * stride], k, depth);
            if (eq < 0)
                *ambiguous = true;
            if (eq == 1) {
                d->last[slots[j]] = i;
                break;
            }
            j = (j + 1) & (cap - 1);
        }
    }
    pp_free(slots);
    return true;
}

static void dedup_free(dedup *d)
{
    pp_free(d->first);
    pp_free(d->last);
}

/* ---- values ------------------------------------------------------------------------------- */

static void put_val(dumper *d, const pp_val *v, uint64_t depth);

static void fail_depth(dumper *d)
{
    if (!d->failed)
        pp_fail_limit(d->err, PP_LIMIT_NESTING, 0, -1, d->depth_limit);
    d->failed = true;
}

static void put_items(dumper *d, const pp_val *items, size_t n, uint64_t depth)
{
    pp_buf_putc(d->out, '[');
    for (size_t i = 0; i < n && !d->failed; i++) {
        if (i)
            pp_buf_putc(d->out, ',');
        put_val(d, &items[i], depth);
    }
    pp_buf_putc(d->out, ']');
}

/* Lists, dicts, sets, bytearrays have identity: an id the first time, a ref after. */
static bool put_ref(dumper *d, const pp_node *n)
{
    uint32_t id;
    if (ptrmap_get(&d->ids, n, &id)) {
        pp_buf_printf(d->out, "{\"ref\":%u}", id);
        return true;
    }
    if (!ptrmap_put(&d->ids, n, d->next_id++))
        d->out->failed = true;
    return false;
}

static void put_set_items(dumper *d, const pp_node *n, uint64_t depth)
{
    dedup dd;
    bool amb = false;
    if (!do_dedup(n->u.seq.v, n->u.seq.n, 1, (unsigned)(depth > 64 ? 64 : depth), &dd, &amb)) {
        d->out->failed = true;
        return;
    }
    pp_buf_putc(d->out, '[');
    for (size_t i = 0; i < dd.n && !d->failed; i++) {
        if (i)
            pp_buf_putc(d->out, ',');
        put_val(d, &n->u.seq.v[dd.first[i]], depth);
    }
    pp_buf_putc(d->out, ']');
    dedup_free(&dd);
}

static void put_node_val(dumper *d, const pp_node *n, uint64_t depth)
{
    pp_buf *b = d->out;
    uint32_t id;
    switch (n->kind) {
    case PP_N_TUPLE:
        pp_buf_puts(b, "{\"tuple\":");
        put_items(d, n->u.seq.v, n->u.seq.n, depth);
        pp_buf_putc(b, '}');
        return;
    case PP_N_FROZENSET:
        pp_buf_puts(b, "{\"frozenset\":");
        put_set_items(d, n, depth);
        pp_buf_putc(b, '}');
        return;
    case PP_N_LIST:
        if (put_ref(d, n))
            return;
        ptrmap_get(&d->ids, n, &id);
        pp_buf_puts(b, "{\"list\":");
        put_items(d, n->u.seq.v, n->u.seq.n, depth);
        pp_buf_printf(b, ",\"id\":%u}", id);
        return;
    case PP_N_SET:
        if (put_ref(d, n))
            return;
        ptrmap_get(&d->ids, n, &id);
        pp_buf_puts(b, "{\"set\":");
        put_set_items(d, n, depth);
        pp_buf_printf(b, ",\"id\":%u}", id);
        return;
    case PP_N_DICT: {
        if (put_ref(d, n))
            return;
        ptrmap_get(&d->ids, n, &id);
        dedup dd;
        bool amb = false;
        if (!do_dedup(n->u.seq.v, n->u.seq.n / 2, 2, (unsigned)(depth > 64 ? 64 : depth), &dd,
                      &amb)) {
            b->failed = true;
            return;
        }
        pp_buf_puts(b, "{\"dict\":[");
        for (size_t i = 0; i < dd.n && !d->failed; i++) {
            if (i)
                pp_buf_putc(b, ',');
            pp_buf_putc(b, '[');
            put_val(d, &n->u.seq.v[2 * dd.first[i]], depth);
            pp_buf_putc(b, ',');
            put_val(d, &n->u.seq.v[2 * dd.last[i] + 1], depth);
            pp_buf_putc(b, ']');
        }
        pp_buf_printf(b, "],\"id\":%u}", id);
        dedup_free(&dd);
        return;
    }
    case PP_N_BYTEARRAY:
        if (put_ref(d, n))
            return;
        ptrmap_get(&d->ids, n, &id);
        pp_buf_puts(b, "{\"bytearray\":\"");
        pp_buf_hex(b, n->u.bytes.p, n->u.bytes.n);
        pp_buf_printf(b, "\",\"id\":%u}", id);
        return;
    case PP_N_MEMORYVIEW: {
        pp_buf_puts(b, "{\"memoryview\":");
        pp_val inner = pp_val_node(n->u.view);
        put_val(d, &inner, depth);
        pp_buf_putc(b, '}');
        return;
    }
    case PP_N_ARRAY:
        pp_buf_printf(b, "{\"array\":%llu}", (unsigned long long)n->u.array.region);
        return;
    default:
        pp_buf_printf(b, "{\"node\":%u}", n->id);
        return;
    }
}

static void put_val(dumper *d, const pp_val *v, uint64_t depth)
{
    pp_buf *b = d->out;
    if (d->failed)
        return;
    if (depth == 0) {
        fail_depth(d);
        return;
    }
    /* hostile: shared immutable tuples are written in full at every use, so a memo/DUP bomb
     * would expand exponentially; the output is bounded like the graph it renders */
    if (b->n > d->max_output) {
        if (!d->failed)
            pp_fail_limit(d->err, PP_LIMIT_GRAPH_MEMORY, 0, -1, d->max_output);
        d->failed = true;
        return;
    }
    switch (v->kind) {
    case PP_V_NONE: pp_buf_puts(b, "null"); return;
    case PP_V_BOOL: pp_buf_puts(b, v->u.i ? "true" : "false"); return;
    case PP_V_INT:
    case PP_V_BIGINT: put_int(b, v); return;
    case PP_V_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &v->u.f, sizeof bits);
        pp_buf_printf(b, "{\"float\":\"%016llx\"}", (unsigned long long)bits);
        return;
    }
    case PP_V_STR:
        pp_buf_puts(b, "{\"str\":\"");
        pp_buf_hex(b, v->u.s.p, v->u.s.n);
        pp_buf_puts(b, "\"}");
        return;
    case PP_V_BYTES:
        pp_buf_puts(b, "{\"bytes\":\"");
        pp_buf_hex(b, v->u.s.p, v->u.s.n);
        pp_buf_puts(b, "\"}");
        return;
    default: put_node_val(d, v->u.node, depth - 1); return;
    }
}

static void put_effects(dumper *d, const pp_node *n, uint64_t depth)
{
    pp_buf *b = d->out;
    pp_buf_puts(b, ",\"effects\":[");
    bool first = true;
    for (const pp_event *e = n->effects; e && !d->failed; e = e->next_on_node) {
        if (!first)
            pp_buf_putc(b, ',');
        first = false;
        switch (e->kind) {
        case PP_EV_BUILD:
            pp_buf_puts(b, "{\"op\":\"build\",\"state\":");
            put_val(d, &e->a, depth);
            break;
        case PP_EV_APPEND:
            pp_buf_puts(b, "{\"op\":\"append\",\"item\":");
            put_val(d, &e->a, depth);
            break;
        case PP_EV_EXTEND:
            pp_buf_puts(b, "{\"op\":\"extend\",\"items\":");
            put_val(d, &e->a, depth);
            break;
        case PP_EV_SETITEM:
            pp_buf_puts(b, "{\"op\":\"setitem\",\"key\":");
            put_val(d, &e->a, depth);
            pp_buf_puts(b, ",\"value\":");
            put_val(d, &e->b, depth);
            break;
        case PP_EV_ADD:
            pp_buf_puts(b, "{\"op\":\"add\",\"item\":");
            put_val(d, &e->a, depth);
            break;
        default: pp_buf_puts(b, "{\"op\":\"?\""); break;
        }
        pp_buf_putc(b, '}');
    }
    pp_buf_putc(b, ']');
}

static void put_node_def(dumper *d, const pp_node *n, uint64_t depth)
{
    pp_buf *b = d->out;
    pp_buf_printf(b, "{\"id\":%u,", n->id);
    switch (n->kind) {
    case PP_N_GLOBAL:
        pp_buf_puts(b, "\"global\":[");
        json_pystr(b, (const uint8_t *)n->u.glob.module, n->u.glob.modlen);
        pp_buf_putc(b, ',');
        json_pystr(b, (const uint8_t *)n->u.glob.name, n->u.glob.namelen);
        pp_buf_putc(b, ']');
        break;
    case PP_N_CALL:
    case PP_N_NEW:
        pp_buf_puts(b, n->kind == PP_N_CALL ? "\"call\":" : "\"new\":");
        put_val(d, &n->u.call.fn, depth);
        pp_buf_puts(b, ",\"args\":");
        put_items(d, n->u.call.args, n->u.call.nargs, depth);
        if (n->kind == PP_N_NEW) {
            pp_buf_puts(b, ",\"kwargs\":[");
            for (size_t i = 0; i < n->u.call.nkw && !d->failed; i++) {
                if (i)
                    pp_buf_putc(b, ',');
                pp_buf_putc(b, '[');
                put_val(d, &n->u.call.kw[2 * i], depth);
                pp_buf_putc(b, ',');
                put_val(d, &n->u.call.kw[2 * i + 1], depth);
                pp_buf_putc(b, ']');
            }
            pp_buf_putc(b, ']');
        }
        break;
    case PP_N_PERSID:
        pp_buf_puts(b, "\"persid\":");
        put_val(d, &n->u.persid.pid, depth);
        break;
    case PP_N_EXT: pp_buf_printf(b, "\"ext\":%lld", (long long)n->u.ext.code); break;
    default: break;
    }
    put_effects(d, n, depth);
    pp_buf_putc(b, '}');
}

static bool creates_node(const pp_event *e)
{
    return e->kind == PP_EV_GLOBAL || e->kind == PP_EV_CALL || e->kind == PP_EV_NEW ||
           e->kind == PP_EV_PERSID || e->kind == PP_EV_EXT;
}

pp_err pp_dump_json(const pp_graph *g, const pp_stream_result *streams, size_t nstreams,
                    uint64_t depth_limit, pp_buf *out, pp_error *err)
{
    dumper d;
    memset(&d, 0, sizeof d);
    d.out = out;
    d.depth_limit = depth_limit;
    d.max_output = PP_DUMP_MAX_OUTPUT;
    d.err = err;
    pp_error scratch;
    pp_error_clear(&scratch);
    if (!d.err)
        d.err = &scratch;
    bool ok = err ? err->code == PP_OK : true;
    pp_error vm_err = err ? *err : scratch;

    pp_buf_printf(out, "{\"ok\":%s", ok ? "true" : "false");
    if (!ok) {
        pp_buf_printf(out, ",\"error\":\"%s\",\"offset\":%llu,\"message\":",
                      pp_errname(vm_err.code), (unsigned long long)vm_err.offset);
        pp_buf_json_str(out, vm_err.msg, strlen(vm_err.msg));
        /* a later depth failure must not replace the VM's error */
        pp_error_clear(&scratch);
        d.err = &scratch;
    }
    pp_buf_puts(out, ",\"lookups\":[");
    bool first = true;
    for (const pp_event *e = g->events; e; e = e->next) {
        if (e->kind != PP_EV_GLOBAL)
            continue;
        if (!first)
            pp_buf_putc(out, ',');
        first = false;
        const pp_node *n = e->node;
        pp_buf_putc(out, '[');
        json_pystr(out, (const uint8_t *)n->u.glob.module, n->u.glob.modlen);
        pp_buf_putc(out, ',');
        json_pystr(out, (const uint8_t *)n->u.glob.name, n->u.glob.namelen);
        pp_buf_putc(out, ']');
    }
    pp_buf_puts(out, "],\"nodes\":[");
    uint32_t expect = 0;
    for (const pp_event *e = g->events; e && !d.failed; e = e->next) {
        if (!creates_node(e) || e->node->id != expect)
            continue;
        if (expect)
            pp_buf_putc(out, ',');
        expect++;
        put_node_def(&d, e->node, depth_limit);
    }
    pp_buf_puts(out, "],\"streams\":[");
    for (size_t i = 0; i < nstreams && !d.failed; i++) {
        if (i)
            pp_buf_putc(out, ',');
        pp_buf_puts(out, "{\"result\":");
        if (streams[i].stopped)
            put_val(&d, &streams[i].root, depth_limit);
        else
            pp_buf_puts(out, "null");
        pp_buf_putc(out, '}');
    }
    pp_buf_puts(out, "]}");
    pp_free(d.ids.keys);
    pp_free(d.ids.vals);
    if (d.failed) {
        if (err && ok)
            *err = *d.err;
        return PP_E_LIMIT;
    }
    if (!pp_buf_ok(out))
        return PP_E_NOMEM;
    return PP_OK;
}
