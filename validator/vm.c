/* The restricted pickle VM. Semantics follow CPython 3.11's Modules/_pickle.c (flavour C) and
 * Lib/pickle.py's _Unpickler (flavour Py); where they differ, vm->fl picks. Frames follow the
 * pure-Python rules in both flavours: older C unpicklers ignored frame boundaries, which let a
 * stream disassemble one way and execute another. */
#include "vm.h"

#include "compat.h"
#include "cursor.h"
#include "err.h"
#include "textarg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct memo_slot {
    uint64_t key;
    pp_val val; /* kind 0xff = empty */
} memo_slot;

#define SLOT_EMPTY 0xffu

typedef struct pp_vm_io {
    pp_graph *g;
    const pp_vm_options *opt;
    const pp_limits *lim;
    pp_error *err;
    pp_cursor c;
    pp_flavor fl;
    int proto;
    int max_proto;
    /* framing: while in_frame, reads must end at or before frame_end (a cursor position) */
    bool in_frame;
    size_t frame_end;
    /* object stack and mark stack with its fence */
    pp_val *stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    size_t fence;
    /* memo: dense for the indices picklers emit (0, 1, 2...), hashed for anything else */
    pp_val *dense;
    size_t dense_cap;
    memo_slot *sparse;
    size_t sparse_cap, sparse_len;
    size_t memo_len;
    /* current opcode */
    int op;
    uint64_t op_off;
    uint64_t ops;
    uint64_t hash_work; /* tuple elements hashed so far (limit hash-work) */
    pp_node *empty_tuple;
    bool stopped;
    pp_val root;
} vm;

typedef pp_err (*op_fn)(vm *v);

#define PP_MAX_GLOBAL_NAME 1024

/* ---- errors ------------------------------------------------------------------------------- */

static const char *opname(const vm *v)
{
    const char *n = pp_vm_opname(v->op);
    return n ? n : "?";
}

#define FAIL(v, code, ...) pp_fail((v)->err, (code), (v)->op_off, (v)->op, __VA_ARGS__)

static pp_err truncated(vm *v)
{
    return FAIL(v, PP_E_TRUNCATED, "pickle data was truncated in %s at offset %llu", opname(v),
                (unsigned long long)v->op_off);
}

static pp_err nomem(vm *v)
{
    return FAIL(v, PP_E_NOMEM, "out of memory in %s at offset %llu", opname(v),
                (unsigned long long)v->op_off);
}

static pp_err limit(vm *v, pp_limit_id id)
{
    return pp_fail_limit(v->err, id, v->op_off, v->op, v->lim->v[id]);
}

/* Allocation from the arena: NULL means either the graph-memory cap or malloc failure. */
static void *galloc(vm *v, size_t n)
{
    void *p = pp_arena_zalloc(&v->g->arena, n);
    if (!p) {
        if (pp_arena_over_cap(&v->g->arena, n + 4096))
            pp_fail_limit(v->err, PP_LIMIT_GRAPH_MEMORY, v->op_off, v->op,
                          v->lim->v[PP_LIMIT_GRAPH_MEMORY]);
        else
            FAIL(v, PP_E_NOMEM, "out of memory in %s", opname(v));
    }
    return p;
}

/* ---- reads (framing rules of pickle._Unframer) --------------------------------------------- */

/* Before a read of n bytes: inside a frame the read must be satisfied by the frame alone, except
 * that an exactly exhausted frame hands over to the file (pickle._Unframer.read). */
static pp_err frame_read(vm *v, size_t n)
{
    if (v->in_frame) {
        size_t left = v->frame_end - v->c.pos;
        if (left == 0) {
            if (n != 0)
                v->in_frame = false;
        } else if (n > left) {
            /* hostile: an argument straddling the frame end */
            return FAIL(v, PP_E_FRAME, "%s argument crosses the end of its frame at offset %llu",
                        opname(v), (unsigned long long)(v->c.base + v->frame_end));
        }
    }
    if (n > pp_cursor_left(&v->c))
        return truncated(v);
    return PP_OK;
}

static pp_err rd(vm *v, size_t n, const uint8_t **out)
{
    pp_err e = frame_read(v, n);
    if (e)
        return e;
    pp_cursor_take(&v->c, n, out);
    return PP_OK;
}

static pp_err rd_le(vm *v, size_t n, uint64_t *out)
{
    pp_err e = frame_read(v, n);
    if (e)
        return e;
    pp_cursor_le(&v->c, n, out);
    return PP_OK;
}

/* A text line without its '\n'. */
static pp_err rd_line(vm *v, const uint8_t **s, size_t *n)
{
    if (v->in_frame) {
        size_t left = v->frame_end - v->c.pos;
        if (left == 0) {
            v->in_frame = false;
        } else {
            const uint8_t *p = v->c.p + v->c.pos;
            if (!memchr(p, '\n', left))
                return FAIL(v, PP_E_FRAME, "%s line crosses the end of its frame at offset %llu",
                            opname(v), (unsigned long long)(v->c.base + v->frame_end));
        }
    }
    if (!pp_cursor_line(&v->c, s, n))
        return truncated(v);
    return PP_OK;
}

/* Text opcodes in C need at least one character before the newline (bad_readline). */
static pp_err rd_line1(vm *v, const uint8_t **s, size_t *n)
{
    pp_err e = rd_line(v, s, n);
    if (e)
        return e;
    if (*n == 0 && v->fl == PP_FLAVOR_C)
        return truncated(v);
    return PP_OK;
}

/* ---- stack -------------------------------------------------------------------------------- */

static pp_err underflow(vm *v)
{
    if (v->nmarks)
        return FAIL(v, PP_E_MARK, "unexpected MARK found by %s at offset %llu", opname(v),
                    (unsigned long long)v->op_off);
    return FAIL(v, PP_E_UNDERFLOW, "unpickling stack underflow in %s at offset %llu", opname(v),
                (unsigned long long)v->op_off);
}

static pp_err push(vm *v, pp_val x)
{
    if (v->sp == v->scap) {
        if (v->sp >= v->lim->v[PP_LIMIT_STACK])
            return limit(v, PP_LIMIT_STACK);
        size_t nc = v->scap ? v->scap * 2 : 256;
        pp_val *ns = pp_realloc(v->stack, nc * sizeof *ns);
        if (!ns)
            return nomem(v);
        v->stack = ns;
        v->scap = nc;
    }
    v->stack[v->sp++] = x;
    return PP_OK;
}

static pp_err pop(vm *v, pp_val *out)
{
    if (v->sp <= v->fence)
        return underflow(v);
    *out = v->stack[--v->sp];
    return PP_OK;
}

static pp_err top(vm *v, pp_val **out)
{
    if (v->sp <= v->fence)
        return underflow(v);
    *out = &v->stack[v->sp - 1];
    return PP_OK;
}

/* Pops the most recent MARK; the items are stack[*m .. sp). */
static pp_err marker(vm *v, size_t *m)
{
    if (!v->nmarks)
        return FAIL(v, PP_E_MARK, "could not find MARK for %s at offset %llu", opname(v),
                    (unsigned long long)v->op_off);
    *m = v->marks[--v->nmarks];
    v->fence = v->nmarks ? v->marks[v->nmarks - 1] : 0;
    return PP_OK;
}

/* ---- graph construction ------------------------------------------------------------------- */

static pp_node *new_node(vm *v, pp_nkind kind)
{
    pp_node *n = galloc(v, sizeof *n);
    if (!n)
        return NULL;
    n->kind = (uint8_t)kind;
    n->opcode = (uint8_t)v->op;
    n->offset = v->op_off;
    if (kind == PP_N_LIST || kind == PP_N_DICT || kind == PP_N_SET || kind == PP_N_BYTEARRAY)
        n->flags = PP_NF_UNHASHABLE;
    if (kind >= PP_N_GLOBAL)
        n->id = v->g->next_id++;
    n->serial = v->g->nnodes++;
    return n;
}

static pp_event *emit(vm *v, pp_evkind kind, pp_node *node)
{
    pp_event *e = galloc(v, sizeof *e);
    if (!e)
        return NULL;
    e->kind = (uint8_t)kind;
    e->opcode = (uint8_t)v->op;
    e->stream = v->opt->stream_index;
    e->offset = v->op_off;
    e->node = node;
    pp_graph *g = v->g;
    if (g->events_tail)
        g->events_tail->next = e;
    else
        g->events = e;
    g->events_tail = e;
    g->nevents++;
    return e;
}

/* Effects (BUILD, mutations) are also chained on their target node. */
static pp_event *effect(vm *v, pp_evkind kind, pp_node *target, pp_val a, pp_val b)
{
    pp_event *e = emit(v, kind, target);
    if (!e)
        return NULL;
    e->a = a;
    e->b = b;
    if (target->effects_tail)
        target->effects_tail->next_on_node = e;
    else
        target->effects = e;
    target->effects_tail = e;
    return e;
}

/* Appends n values to a container's sequence. */
static pp_err seq_add(vm *v, pp_node *c, const pp_val *items, size_t n)
{
    size_t need = c->u.seq.n + n;
    if (need < n)
        return nomem(v);
    if (need > c->u.seq.cap) {
        /* most containers are filled by one APPENDS/SETITEMS: size the first batch exactly */
        size_t nc = c->u.seq.cap ? c->u.seq.cap * 2 : need;
        while (nc < need)
            nc *= 2;
        if (nc > SIZE_MAX / sizeof(pp_val))
            return nomem(v);
        pp_val *nv = pp_arena_grow(&v->g->arena, c->u.seq.v, c->u.seq.cap * sizeof(pp_val),
                                   nc * sizeof(pp_val));
        if (!nv) {
            if (pp_arena_over_cap(&v->g->arena, nc * sizeof(pp_val)))
                return limit(v, PP_LIMIT_GRAPH_MEMORY);
            return FAIL(v, PP_E_NOMEM, "out of memory in %s", opname(v));
        }
        c->u.seq.v = nv;
        c->u.seq.cap = nc;
    }
    if (n)
        memcpy(c->u.seq.v + c->u.seq.n, items, n * sizeof(pp_val));
    c->u.seq.n = need;
    if (c->kind == PP_N_LIST || c->kind == PP_N_DICT || c->kind == PP_N_SET) {
        /* what the effects so far saw of it stays known (loading replays them in order) */
        pp_fill *f = c->u.seq.fills;
        if (f && f->events == v->g->nevents) {
            f->n = need;
        } else {
            if (!(f = galloc(v, sizeof *f)))
                return v->err->code;
            f->prev = c->u.seq.fills;
            f->events = v->g->nevents;
            f->n = need;
            c->u.seq.fills = f;
        }
    }
    return PP_OK;
}

static bool val_unhashable(const pp_val *x)
{
    return x->kind == PP_V_NODE && (x->u.node->flags & PP_NF_UNHASHABLE);
}

/* What hashing x costs CPython, in elements visited: a tuple's hash is recomputed from its
 * elements on every use, so a tuple of shared tuples costs its expanded size. */
static uint32_t hash_cost(const pp_val *x)
{
    if (x->kind == PP_V_NODE && x->u.node->kind == PP_N_TUPLE && x->u.node->hash_work)
        return x->u.node->hash_work;
    return 1;
}

/* A value used as a dict key or set element: CPython hashes it (TypeError if unhashable). */
static pp_err need_hashable(vm *v, const pp_val *x)
{
    /* hostile: a "billion laughs" of tuples as a key hangs the loader, not the scan */
    v->hash_work += hash_cost(x);
    if (v->hash_work > v->lim->v[PP_LIMIT_HASH_WORK])
        return limit(v, PP_LIMIT_HASH_WORK);
    if (val_unhashable(x))
        return FAIL(v, PP_E_BAD_VALUE, "unhashable %s used as a key or set element in %s",
                    x->u.node->kind == PP_N_TUPLE ? "tuple" : "container", opname(v));
    if (pp_val_is(x, PP_N_MEMORYVIEW))
        return FAIL(v, PP_E_UNSUPPORTED, "memoryview used as a key or set element in %s",
                    opname(v));
    return PP_OK;
}

static pp_err make_tuple(vm *v, const pp_val *items, size_t n, pp_val *out)
{
    if (n == 0) {
        /* CPython's empty tuple is a singleton; one node serves every EMPTY_TUPLE. */
        if (!v->empty_tuple) {
            v->empty_tuple = new_node(v, PP_N_TUPLE);
            if (!v->empty_tuple)
                return v->err->code;
        }
        *out = pp_val_node(v->empty_tuple);
        return PP_OK;
    }
    pp_node *t = new_node(v, PP_N_TUPLE);
    if (!t)
        return v->err->code;
    pp_val *copy = galloc(v, n * sizeof *copy);
    if (!copy)
        return v->err->code;
    memcpy(copy, items, n * sizeof *copy);
    t->u.seq.v = copy;
    t->u.seq.n = t->u.seq.cap = n;
    uint64_t work = 1;
    for (size_t i = 0; i < n; i++) {
        if (val_unhashable(&items[i]))
            t->flags |= PP_NF_UNHASHABLE;
        work += hash_cost(&items[i]);
    }
    t->hash_work = work > UINT32_MAX ? UINT32_MAX : (uint32_t)work;
    *out = pp_val_node(t);
    return PP_OK;
}

static pp_err make_container(vm *v, pp_nkind kind, pp_val *out)
{
    pp_node *n = new_node(v, kind);
    if (!n)
        return v->err->code;
    *out = pp_val_node(n);
    return PP_OK;
}

/* ---- globals ------------------------------------------------------------------------------ */

static uint64_t hash_bytes(const void *p, size_t n, uint64_t h)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t global_hash(const char *m, size_t ml, const char *n, size_t nl)
{
    uint64_t h = hash_bytes(m, ml, 0xcbf29ce484222325ull);
    h = hash_bytes("\0", 1, h);
    return hash_bytes(n, nl, h);
}

static pp_err globals_grow(vm *v)
{
    pp_graph *g = v->g;
    size_t nc = g->nglobals_slots ? g->nglobals_slots * 2 : 64;
    pp_node **nt = pp_calloc(nc, sizeof *nt);
    if (!nt)
        return nomem(v);
    for (size_t i = 0; i < g->nglobals_slots; i++) {
        pp_node *n = g->globals[i];
        if (!n)
            continue;
        uint64_t h = global_hash(n->u.glob.module, n->u.glob.modlen, n->u.glob.name,
                                 n->u.glob.namelen);
        size_t j = (size_t)h & (nc - 1);
        while (nt[j])
            j = (j + 1) & (nc - 1);
        nt[j] = n;
    }
    pp_free(g->globals);
    g->globals = nt;
    g->nglobals_slots = nc;
    return PP_OK;
}

/* find_class(module, name): renames when protocol < 3, attribute paths when protocol >= 4. The
 * lookup is an event even when it then fails: CPython imports the module before getattr fails. */
static pp_err find_class(vm *v, const uint8_t *mod, size_t modlen, const uint8_t *name,
                         size_t namelen, pp_val *out)
{
    /* hostile: every lookup hashes its names, so a huge memoised name reused by many
     * STACK_GLOBALs would make resolution quadratic; no importable name is this long */
    if (modlen > PP_MAX_GLOBAL_NAME || namelen > PP_MAX_GLOBAL_NAME)
        return FAIL(v, PP_E_UNSUPPORTED, "%s name of %zu bytes is longer than %d", opname(v),
                    modlen > namelen ? modlen : namelen, PP_MAX_GLOBAL_NAME);
    const char *m = (const char *)mod, *n = (const char *)name;
    size_t ml = modlen, nl = namelen;
    int renamed = 0;
    if (v->proto < 3)
        renamed = pp_compat_map(m, ml, n, nl, &m, &ml, &n, &nl);
    bool dotted = nl && memchr(n, '.', nl) != NULL;

    pp_graph *g = v->g;
    if (g->nglobals * 2 >= g->nglobals_slots) {
        pp_err e = globals_grow(v);
        if (e)
            return e;
    }
    uint64_t h = global_hash(m, ml, n, nl);
    size_t j = (size_t)h & (g->nglobals_slots - 1);
    pp_node *node;
    while ((node = g->globals[j]) != NULL) {
        if (node->u.glob.modlen == ml && node->u.glob.namelen == nl &&
            memcmp(node->u.glob.module, m, ml) == 0 && memcmp(node->u.glob.name, n, nl) == 0)
            break;
        j = (j + 1) & (g->nglobals_slots - 1);
    }
    if (!node) {
        if (ml > UINT32_MAX || nl > UINT32_MAX)
            return limit(v, PP_LIMIT_PAYLOAD);
        node = new_node(v, PP_N_GLOBAL);
        if (!node)
            return v->err->code;
        /* Names are copied: STACK_GLOBAL operands may live in memory the graph does not own. */
        char *cm = pp_arena_strndup(&g->arena, m, ml);
        char *cn = pp_arena_strndup(&g->arena, n, nl);
        char *rm = renamed ? pp_arena_strndup(&g->arena, (const char *)mod, modlen) : cm;
        char *rn = renamed ? pp_arena_strndup(&g->arena, (const char *)name, namelen) : cn;
        if (!cm || !cn || !rm || !rn)
            return nomem(v);
        node->u.glob.module = cm;
        node->u.glob.name = cn;
        node->u.glob.modlen = (uint32_t)ml;
        node->u.glob.namelen = (uint32_t)nl;
        node->u.glob.raw_module = rm;
        node->u.glob.raw_name = rn;
        if (renamed)
            node->flags |= PP_NF_RENAMED;
        if (dotted && v->proto >= 4)
            node->flags |= PP_NF_DOTTED;
        g->globals[j] = node;
        g->nglobals++;
    }
    pp_event *ev = emit(v, PP_EV_GLOBAL, node);
    if (!ev)
        return v->err->code;
    /* The names as written, for reports of renamed lookups. */
    ev->a.kind = PP_V_STR;
    ev->a.u.s.p = mod;
    ev->a.u.s.n = modlen;
    ev->b.kind = PP_V_STR;
    ev->b.u.s.p = name;
    ev->b.u.s.n = namelen;
    if (modlen == 0) /* find_class was called; the import then fails */
        return FAIL(v, PP_E_BAD_VALUE, "empty module name in %s", opname(v));
    if (nl == 0)
        return FAIL(v, PP_E_BAD_VALUE, "%s: empty attribute name in module '%.*s'", opname(v),
                    (int)(ml > 64 ? 64 : ml), m);
    if (dotted && v->proto < 4)
        return FAIL(v, PP_E_BAD_VALUE,
                    "%s name '%.*s' is an attribute path, which protocol %d cannot resolve",
                    opname(v), (int)(nl > 64 ? 64 : nl), n, v->proto);
    if (v->proto >= 4) {
        /* the getattr chain fails on '<locals>' and on empty components */
        size_t start = 0;
        for (size_t i = 0; i <= nl; i++) {
            if (i == nl || n[i] == '.') {
                size_t cl = i - start;
                if (cl == 0 || (cl == 8 && memcmp(n + start, "<locals>", 8) == 0))
                    return FAIL(v, PP_E_BAD_VALUE, "%s cannot resolve attribute path '%.*s'",
                                opname(v), (int)(nl > 64 ? 64 : nl), n);
                start = i + 1;
            }
        }
    }
    *out = pp_val_node(node);
    return PP_OK;
}

/* ---- memo --------------------------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static memo_slot *sparse_find(vm *v, uint64_t key)
{
    if (!v->sparse_cap)
        return NULL;
    size_t j = (size_t)mix(key) & (v->sparse_cap - 1);
    for (;;) {
        memo_slot *s = &v->sparse[j];
        if (s->val.kind == SLOT_EMPTY || s->key == key)
            return s;
        j = (j + 1) & (v->sparse_cap - 1);
    }
}

static pp_err sparse_grow(vm *v)
{
    size_t nc = v->sparse_cap ? v->sparse_cap * 2 : 64;
    memo_slot *ns = pp_malloc(nc * sizeof *ns);
    if (!ns)
        return nomem(v);
    for (size_t i = 0; i < nc; i++)
        ns[i].val.kind = SLOT_EMPTY;
    memo_slot *old = v->sparse;
    size_t oc = v->sparse_cap;
    v->sparse = ns;
    v->sparse_cap = nc;
    for (size_t i = 0; i < oc; i++) {
        if (old[i].val.kind == SLOT_EMPTY)
            continue;
        *sparse_find(v, old[i].key) = old[i];
    }
    pp_free(old);
    return PP_OK;
}

static pp_val *memo_get(vm *v, uint64_t idx)
{
    if (idx < v->dense_cap)
        return v->dense[idx].kind == SLOT_EMPTY ? NULL : &v->dense[idx];
    memo_slot *s = sparse_find(v, idx);
    return (s && s->val.kind != SLOT_EMPTY) ? &s->val : NULL;
}

static pp_err memo_put(vm *v, uint64_t idx, pp_val x)
{
    pp_val *cur = memo_get(v, idx);
    if (cur) {
        *cur = x;
        return PP_OK;
    }
    if (v->memo_len >= v->lim->v[PP_LIMIT_MEMO])
        return limit(v, PP_LIMIT_MEMO);
    /* Dense storage grows only while it stays at most about twice the entry count, so a hostile
     * index costs one sparse slot, not gigabytes (CPython's old memo was indexed this way). */
    if (idx >= v->dense_cap && idx < 2 * (uint64_t)v->memo_len + 1024) {
        size_t nc = v->dense_cap ? v->dense_cap : 1024;
        while (nc <= idx)
            nc *= 2;
        pp_val *nd = pp_realloc(v->dense, nc * sizeof *nd);
        if (!nd)
            return nomem(v);
        for (size_t i = v->dense_cap; i < nc; i++)
            nd[i].kind = SLOT_EMPTY;
        v->dense = nd;
        size_t oc = v->dense_cap;
        v->dense_cap = nc;
        /* move sparse entries that now fall in the dense range */
        for (size_t i = 0; i < v->sparse_cap; i++) {
            memo_slot *s = &v->sparse[i];
            if (s->val.kind != SLOT_EMPTY && s->key >= oc && s->key < nc) {
                v->dense[s->key] = s->val;
                s->val.kind = SLOT_EMPTY;
                v->sparse_len--;
                /* re-insert the rest of the cluster */
                size_t j = (i + 1) & (v->sparse_cap - 1);
                while (v->sparse[j].val.kind != SLOT_EMPTY) {
                    memo_slot t = v->sparse[j];
                    v->sparse[j].val.kind = SLOT_EMPTY;
                    *sparse_find(v, t.key) = t;
                    j = (j + 1) & (v->sparse_cap - 1);
                }
            }
        }
    }
    if (idx < v->dense_cap) {
        v->dense[idx] = x;
    } else {
        if ((v->sparse_len + 1) * 2 > v->sparse_cap) {
            pp_err e = sparse_grow(v);
            if (e)
                return e;
        }
        memo_slot *s = sparse_find(v, idx);
        s->key = idx;
        s->val = x;
        v->sparse_len++;
    }
    v->memo_len++;
    return PP_OK;
}

static pp_err do_put(vm *v, uint64_t idx)
{
    pp_val *t = NULL;
    pp_err e = top(v, &t);
    if (e)
        return e;
    return memo_put(v, idx, *t);
}

static pp_err do_get(vm *v, uint64_t idx)
{
    pp_val *x = memo_get(v, idx);
    if (!x)
        return FAIL(v, PP_E_MEMO, "memo value not found at index %llu in %s",
                    (unsigned long long)idx, opname(v));
    return push(v, *x);
}

/* ---- opcode handlers (named after pickletools) --------------------------------------------- */

static pp_err op_mark(vm *v)
{
    if (v->nmarks == v->mcap) {
        if (v->nmarks >= v->lim->v[PP_LIMIT_MARKS])
            return limit(v, PP_LIMIT_MARKS);
        size_t nc = v->mcap ? v->mcap * 2 : 64;
        size_t *nm = pp_realloc(v->marks, nc * sizeof *nm);
        if (!nm)
            return nomem(v);
        v->marks = nm;
        v->mcap = nc;
    }
    v->marks[v->nmarks++] = v->sp;
    v->fence = v->sp;
    return PP_OK;
}

static pp_err op_stop(vm *v)
{
    pp_err e = pop(v, &v->root);
    if (e)
        return e;
    v->stopped = true;
    return PP_OK;
}

static pp_err op_pop(vm *v)
{
    if (v->nmarks && v->marks[v->nmarks - 1] == v->sp) {
        v->nmarks--;
        v->fence = v->nmarks ? v->marks[v->nmarks - 1] : 0;
        return PP_OK;
    }
    pp_val x;
    return pop(v, &x);
}

static pp_err op_pop_mark(vm *v)
{
    size_t m = 0;
    pp_err e = marker(v, &m);
    if (e)
        return e;
    v->sp = m;
    return PP_OK;
}

static pp_err op_dup(vm *v)
{
    pp_val *t = NULL;
    pp_err e = top(v, &t);
    if (e)
        return e;
    return push(v, *t);
}

static pp_err push_int(vm *v, int64_t i)
{
    pp_val x = {0};
    x.kind = PP_V_INT;
    x.u.i = i;
    return push(v, x);
}

static pp_err push_bool(vm *v, bool b)
{
    pp_val x = {0};
    x.kind = PP_V_BOOL;
    x.u.i = b;
    return push(v, x);
}

static pp_err push_float(vm *v, double d)
{
    pp_val x = {0};
    x.kind = PP_V_FLOAT;
    x.u.f = d;
    /* NaN keys compare equal only to the same object (a memo GET of it) */
    x.tag = (uint32_t)v->op_off + 1u;
    return push(v, x);
}

static pp_err text_fail(vm *v, pp_err e, const char *what, const uint8_t *s, size_t n)
{
    if (e == PP_E_NOMEM)
        return nomem(v);
    if (e == PP_E_LIMIT)
        e = PP_E_BAD_ARG; /* CPython raises ValueError past int_max_str_digits */
    return FAIL(v, e, "%s: could not convert %s '%.*s' at offset %llu", opname(v), what,
                (int)(n > 40 ? 40 : n), (const char *)s, (unsigned long long)v->op_off);
}

static pp_err op_int(vm *v)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    pp_err e = rd_line1(v, &s, &n);
    if (e)
        return e;
    pp_val x;
    e = pp_text_int(&v->g->arena, v->fl, s, n, &x);
    if (e)
        return text_fail(v, e, "int", s, n);
    return push(v, x);
}

static pp_err op_long(vm *v)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    pp_err e = rd_line1(v, &s, &n);
    if (e)
        return e;
    pp_val x;
    e = pp_text_long_fl(&v->g->arena, v->fl, s, n, &x);
    if (e)
        return text_fail(v, e, "long", s, n);
    return push(v, x);
}

static pp_err op_float(vm *v)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    pp_err e = rd_line1(v, &s, &n);
    if (e)
        return e;
    double d = 0;
    e = pp_text_float(v->fl, s, n, &d);
    if (e)
        return text_fail(v, e, "float", s, n);
    return push_float(v, d);
}

static pp_err op_binint(vm *v)
{
    uint64_t x = 0;
    pp_err e = rd_le(v, 4, &x);
    if (e)
        return e;
    return push_int(v, (int64_t)(int32_t)(uint32_t)x);
}

static pp_err op_binint1(vm *v)
{
    uint64_t x = 0;
    pp_err e = rd_le(v, 1, &x);
    return e ? e : push_int(v, (int64_t)x);
}

static pp_err op_binint2(vm *v)
{
    uint64_t x = 0;
    pp_err e = rd_le(v, 2, &x);
    return e ? e : push_int(v, (int64_t)x);
}

static pp_err op_binfloat(vm *v)
{
    const uint8_t *p = NULL;
    pp_err e = rd(v, 8, &p);
    if (e)
        return e;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = (bits << 8) | p[i];
    double d = 0;
    memcpy(&d, &bits, sizeof d);
    return push_float(v, d);
}

/* Little-endian two's complement of n bytes: int64 when it fits, else a borrowed big int. */
static pp_err push_le_long(vm *v, const uint8_t *p, size_t n)
{
    if (n == 0)
        return push_int(v, 0);
    /* strip redundant sign-extension bytes */
    size_t m = n;
    bool neg = p[n - 1] & 0x80;
    while (m > 1 && p[m - 1] == (neg ? 0xff : 0x00) && ((p[m - 2] & 0x80) != 0) == neg)
        m--;
    if (m <= 8) {
        uint64_t u = 0;
        for (size_t i = 0; i < m; i++)
            u |= (uint64_t)p[i] << (8 * i);
        if (neg && m < 8)
            u |= ~(uint64_t)0 << (8 * m);
        int64_t i64 = 0;
        memcpy(&i64, &u, sizeof i64);
        return push_int(v, i64);
    }
    pp_val x = {0};
    x.kind = PP_V_BIGINT;
    x.u.s.p = p;
    x.u.s.n = m;
    return push(v, x);
}

static pp_err check_payload(vm *v, uint64_t n)
{
    if (n > pp_cursor_left(&v->c))
        return truncated(v);
    if (n > v->lim->v[PP_LIMIT_PAYLOAD])
        return limit(v, PP_LIMIT_PAYLOAD);
    return PP_OK;
}

static pp_err op_long1(vm *v)
{
    uint64_t n = 0;
    const uint8_t *p = NULL;
    pp_err e = rd_le(v, 1, &n);
    if (!e)
        e = rd(v, (size_t)n, &p);
    return e ? e : push_le_long(v, p, (size_t)n);
}

static pp_err op_long4(vm *v)
{
    uint64_t n = 0;
    const uint8_t *p = NULL;
    pp_err e = rd_le(v, 4, &n);
    if (e)
        return e;
    if ((int32_t)(uint32_t)n < 0)
        return FAIL(v, PP_E_BAD_VALUE, "LONG pickle has negative byte count at offset %llu",
                    (unsigned long long)v->op_off);
    if ((e = check_payload(v, n)) || (e = rd(v, (size_t)n, &p)))
        return e;
    return push_le_long(v, p, (size_t)n);
}

static pp_err push_str(vm *v, const uint8_t *p, size_t n)
{
    /* hostile: CPython decodes with surrogatepass; anything else is UnicodeDecodeError */
    if (!pp_utf8_valid(p, n, true))
        return FAIL(v, PP_E_DECODE, "%s payload at offset %llu is not valid UTF-8", opname(v),
                    (unsigned long long)v->op_off);
    pp_val x = {0};
    x.kind = PP_V_STR;
    x.u.s.p = p;
    x.u.s.n = n;
    return push(v, x);
}

static pp_err push_bytes(vm *v, const uint8_t *p, size_t n)
{
    pp_val x = {0};
    x.kind = PP_V_BYTES;
    x.u.s.p = p;
    x.u.s.n = n;
    return push(v, x);
}

/* Reads a length of `w` bytes then that many payload bytes. */
static pp_err counted(vm *v, size_t w, const uint8_t **p, uint64_t *n)
{
    pp_err e = rd_le(v, w, n);
    if (e)
        return e;
    if ((e = check_payload(v, *n)))
        return e;
    return rd(v, (size_t)*n, p);
}

static pp_err op_binunicode_n(vm *v, size_t w)
{
    const uint8_t *p = NULL;
    uint64_t n = 0;
    pp_err e = counted(v, w, &p, &n);
    return e ? e : push_str(v, p, (size_t)n);
}

static pp_err op_short_binunicode(vm *v)
{
    return op_binunicode_n(v, 1);
}
static pp_err op_binunicode(vm *v)
{
    return op_binunicode_n(v, 4);
}
static pp_err op_binunicode8(vm *v)
{
    return op_binunicode_n(v, 8);
}

static pp_err op_binbytes_n(vm *v, size_t w)
{
    const uint8_t *p = NULL;
    uint64_t n = 0;
    pp_err e = counted(v, w, &p, &n);
    return e ? e : push_bytes(v, p, (size_t)n);
}

static pp_err op_short_binbytes(vm *v)
{
    return op_binbytes_n(v, 1);
}
static pp_err op_binbytes(vm *v)
{
    return op_binbytes_n(v, 4);
}
static pp_err op_binbytes8(vm *v)
{
    return op_binbytes_n(v, 8);
}

static pp_err op_bytearray8(vm *v)
{
    const uint8_t *p = NULL;
    uint64_t n = 0;
    pp_err e = counted(v, 8, &p, &n);
    if (e)
        return e;
    pp_node *b = new_node(v, PP_N_BYTEARRAY);
    if (!b)
        return v->err->code;
    b->u.bytes.p = p;
    b->u.bytes.n = (size_t)n;
    return push(v, pp_val_node(b));
}

static pp_err push_py2str(vm *v, const uint8_t *p, size_t n)
{
    pp_val x;
    pp_err e = pp_decode_py2str(&v->g->arena, v->opt->encoding, p, n, &x);
    if (e == PP_E_NOMEM)
        return nomem(v);
    if (e)
        return FAIL(v, PP_E_DECODE, "%s payload at offset %llu cannot be decoded", opname(v),
                    (unsigned long long)v->op_off);
    return push(v, x);
}

static pp_err op_short_binstring(vm *v)
{
    const uint8_t *p = NULL;
    uint64_t n = 0;
    pp_err e = counted(v, 1, &p, &n);
    return e ? e : push_py2str(v, p, (size_t)n);
}

static pp_err op_binstring(vm *v)
{
    uint64_t n = 0;
    const uint8_t *p = NULL;
    pp_err e = rd_le(v, 4, &n);
    if (e)
        return e;
    /* C reads the length unsigned (so 0xffffffff is truncated); Py reads it signed */
    if (v->fl == PP_FLAVOR_PY && (int32_t)(uint32_t)n < 0)
        return FAIL(v, PP_E_BAD_VALUE, "BINSTRING pickle has negative byte count");
    if ((e = check_payload(v, n)) || (e = rd(v, (size_t)n, &p)))
        return e;
    return push_py2str(v, p, (size_t)n);
}

static pp_err op_string(vm *v)
{
    const uint8_t *s = NULL, *out = NULL;
    size_t n = 0, on = 0;
    pp_err e = rd_line1(v, &s, &n);
    if (e)
        return e;
    e = pp_text_string(&v->g->arena, s, n, &out, &on);
    if (e)
        return text_fail(v, e, "string", s, n);
    return push_py2str(v, out, on);
}

static pp_err op_unicode(vm *v)
{
    const uint8_t *s = NULL, *out = NULL;
    size_t n = 0, on = 0;
    pp_err e = rd_line(v, &s, &n);
    if (e)
        return e;
    e = pp_text_unicode(&v->g->arena, s, n, &out, &on);
    if (e)
        return text_fail(v, e, "unicode", s, n);
    pp_val x = {0};
    x.kind = PP_V_STR;
    x.u.s.p = out;
    x.u.s.n = on;
    return push(v, x);
}

static pp_err op_none(vm *v)
{
    return push(v, pp_val_none());
}
static pp_err op_newtrue(vm *v)
{
    return push_bool(v, true);
}
static pp_err op_newfalse(vm *v)
{
    return push_bool(v, false);
}

static pp_err op_empty_tuple(vm *v)
{
    pp_val t;
    pp_err e = make_tuple(v, NULL, 0, &t);
    return e ? e : push(v, t);
}

static pp_err op_tuple_n(vm *v, size_t n)
{
    /* C: the items must lie above the fence */
    if (v->sp - v->fence < n)
        return underflow(v);
    pp_val t;
    pp_err e = make_tuple(v, v->stack + v->sp - n, n, &t);
    if (e)
        return e;
    v->sp -= n;
    return push(v, t);
}

static pp_err op_tuple1(vm *v)
{
    return op_tuple_n(v, 1);
}
static pp_err op_tuple2(vm *v)
{
    return op_tuple_n(v, 2);
}
static pp_err op_tuple3(vm *v)
{
    return op_tuple_n(v, 3);
}

static pp_err op_tuple(vm *v)
{
    size_t m = 0;
    pp_err e = marker(v, &m);
    if (e)
        return e;
    pp_val t;
    if ((e = make_tuple(v, v->stack + m, v->sp - m, &t)))
        return e;
    v->sp = m;
    return push(v, t);
}

static pp_err op_empty_list(vm *v)
{
    pp_val x;
    pp_err e = make_container(v, PP_N_LIST, &x);
    return e ? e : push(v, x);
}
static pp_err op_empty_dict(vm *v)
{
    pp_val x;
    pp_err e = make_container(v, PP_N_DICT, &x);
    return e ? e : push(v, x);
}
static pp_err op_empty_set(vm *v)
{
    pp_val x;
    pp_err e = make_container(v, PP_N_SET, &x);
    return e ? e : push(v, x);
}

static pp_err op_list(vm *v)
{
    size_t m = 0;
    pp_err e = marker(v, &m);
    if (e)
        return e;
    pp_val x;
    if ((e = make_container(v, PP_N_LIST, &x)) ||
        (e = seq_add(v, x.u.node, v->stack + m, v->sp - m)))
        return e;
    v->sp = m;
    return push(v, x);
}

static pp_err op_dict(vm *v)
{
    size_t m = 0;
    pp_err e = marker(v, &m);
    if (e)
        return e;
    size_t k = v->sp - m;
    if (k % 2)
        return FAIL(v, PP_E_BAD_VALUE, "odd number of items for DICT at offset %llu",
                    (unsigned long long)v->op_off);
    for (size_t i = m; i < v->sp; i += 2)
        if ((e = need_hashable(v, &v->stack[i])))
            return e;
    pp_val x;
    if ((e = make_container(v, PP_N_DICT, &x)) || (e = seq_add(v, x.u.node, v->stack + m, k)))
        return e;
    v->sp = m;
    return push(v, x);
}

static pp_err op_frozenset(vm *v)
{
    size_t m = 0;
    pp_err e = marker(v, &m);
    if (e)
        return e;
    for (size_t i = m; i < v->sp; i++)
        if ((e = need_hashable(v, &v->stack[i])))
            return e;
    pp_val x;
    if ((e = make_container(v, PP_N_FROZENSET, &x)) ||
        (e = seq_add(v, x.u.node, v->stack + m, v->sp - m)))
        return e;
    x.u.node->flags &= (uint16_t)~PP_NF_UNHASHABLE;
    v->sp = m;
    return push(v, x);
}

/* A fresh list node holding items, for the argument of extend(). */
static pp_err fresh_list(vm *v, const pp_val *items, size_t n, pp_val *out)
{
    pp_err e = make_container(v, PP_N_LIST, out);
    return e ? e : seq_add(v, out->u.node, items, n);
}

static bool is_effect_target(const pp_val *t)
{
    if (t->kind != PP_V_NODE)
        return false;
    uint8_t k = t->u.node->kind;
    return k == PP_N_GLOBAL || k == PP_N_CALL || k == PP_N_NEW || k == PP_N_PERSID ||
           k == PP_N_EXT;
}

static const char *val_typename(const pp_val *x)
{
    switch (x->kind) {
    case PP_V_NONE: return "NoneType";
    case PP_V_BOOL: return "bool";
    case PP_V_INT:
    case PP_V_BIGINT: return "int";
    case PP_V_FLOAT: return "float";
    case PP_V_STR: return "str";
    case PP_V_BYTES: return "bytes";
    default: break;
    }
    switch (x->u.node->kind) {
    case PP_N_TUPLE: return "tuple";
    case PP_N_LIST: return "list";
    case PP_N_DICT: return "dict";
    case PP_N_SET: return "set";
    case PP_N_FROZENSET: return "frozenset";
    case PP_N_BYTEARRAY: return "bytearray";
    case PP_N_MEMORYVIEW: return "memoryview";
    default: return "object";
    }
}

/* APPEND/APPENDS: items stack[x..sp) go to the target at stack[x-1] (C do_append). */
static pp_err do_append(vm *v, size_t x, bool single)
{
    size_t len = v->sp;
    if (x > len || x <= v->fence)
        return underflow(v);
    pp_val *target = &v->stack[x - 1];
    size_t n = len - x;
    pp_err e;
    if (pp_val_is(target, PP_N_LIST)) {
        if ((e = seq_add(v, target->u.node, v->stack + x, n)))
            return e;
    } else if (is_effect_target(target)) {
        pp_node *t = target->u.node;
        if (v->fl == PP_FLAVOR_C) {
            /* C calls extend(list) when the target has extend (ours do); nothing when empty */
            if (n) {
                pp_val l;
                if ((e = fresh_list(v, v->stack + x, n, &l)))
                    return e;
                if (!effect(v, PP_EV_EXTEND, t, l, pp_val_none()))
                    return v->err->code;
            }
        } else if (single) {
            if (!effect(v, PP_EV_APPEND, t, v->stack[x], pp_val_none()))
                return v->err->code;
        } else {
            pp_val l;
            if ((e = fresh_list(v, v->stack + x, n, &l)))
                return e;
            if (!effect(v, PP_EV_EXTEND, t, l, pp_val_none()))
                return v->err->code;
        }
    } else if (n == 0 && v->fl == PP_FLAVOR_C) {
        /* C returns before looking at the target */
    } else if (pp_val_is(target, PP_N_BYTEARRAY)) {
        return FAIL(v, PP_E_UNSUPPORTED, "%s on a bytearray", opname(v));
    } else {
        return FAIL(v, PP_E_BAD_VALUE, "%s target is a %s, which has no append", opname(v),
                    val_typename(target));
    }
    v->sp = x;
    return PP_OK;
}

static pp_err op_append(vm *v)
{
    if (v->sp < 1)
        return underflow(v);
    return do_append(v, v->sp - 1, true);
}

static pp_err op_appends(vm *v)
{
    size_t m = 0;
    pp_err e = marker(v, &m);
    return e ? e : do_append(v, m, false);
}

/* SETITEM/SETITEMS: pairs stack[x..sp) into the target at stack[x-1] (C do_setitems). */
static pp_err do_setitems(vm *v, size_t x)
{
    size_t len = v->sp;
    if (x > len || x <= v->fence)
        return underflow(v);
    if (len == x)
        return PP_OK;
    if ((len - x) % 2)
        return FAIL(v, PP_E_BAD_VALUE, "odd number of items for SETITEMS at offset %llu",
                    (unsigned long long)v->op_off);
    pp_val *target = &v->stack[x - 1];
    pp_err e;
    if (pp_val_is(target, PP_N_DICT)) {
        for (size_t i = x; i < len; i += 2)
            if ((e = need_hashable(v, &v->stack[i])))
                return e;
        if ((e = seq_add(v, target->u.node, v->stack + x, len - x)))
            return e;
    } else if (is_effect_target(target)) {
        for (size_t i = x; i < len; i += 2)
            if (!effect(v, PP_EV_SETITEM, target->u.node, v->stack[i], v->stack[i + 1]))
                return v->err->code;
    } else if (pp_val_is(target, PP_N_LIST) || pp_val_is(target, PP_N_BYTEARRAY)) {
        return FAIL(v, PP_E_UNSUPPORTED, "%s item assignment on a %s", opname(v),
                    val_typename(target));
    } else {
        return FAIL(v, PP_E_BAD_VALUE, "%s target is a %s, which does not support item "
                    "assignment", opname(v), val_typename(target));
    }
    v->sp = x;
    return PP_OK;
}

static pp_err op_setitem(vm *v)
{
    if (v->sp < 2)
        return underflow(v);
    return do_setitems(v, v->sp - 2);
}

static pp_err op_setitems(vm *v)
{
    size_t m = 0;
    pp_err e = marker(v, &m);
    return e ? e : do_setitems(v, m);
}

static pp_err op_additems(vm *v)
{
    size_t m = 0;
    pp_err e = marker(v, &m);
    if (e)
        return e;
    size_t len = v->sp;
    if (m > len || m <= v->fence)
        return underflow(v);
    pp_val *target = &v->stack[m - 1];
    size_t n = len - m;
    if (pp_val_is(target, PP_N_SET)) {
        for (size_t i = m; i < len; i++)
            if ((e = need_hashable(v, &v->stack[i])))
                return e;
        if ((e = seq_add(v, target->u.node, v->stack + m, n)))
            return e;
    } else if (is_effect_target(target)) {
        for (size_t i = m; i < len; i++)
            if (!effect(v, PP_EV_ADD, target->u.node, v->stack[i], pp_val_none()))
                return v->err->code;
    } else if (n == 0 && v->fl == PP_FLAVOR_C) {
        /* C returns before looking at the target; Py looks up .add first */
    } else {
        return FAIL(v, PP_E_BAD_VALUE, "ADDITEMS target is a %s, which has no add",
                    val_typename(target));
    }
    v->sp = m;
    return PP_OK;
}

/* ---- globals and calls -------------------------------------------------------------------- */

static pp_err line_name(vm *v, bool ascii, const uint8_t **s, size_t *n)
{
    pp_err e = rd_line1(v, s, n);
    if (e)
        return e;
    bool ok = true;
    if (ascii) {
        for (size_t i = 0; i < *n && ok; i++)
            ok = (*s)[i] < 0x80;
    } else {
        ok = pp_utf8_valid(*s, *n, false);
    }
    if (!ok)
        return FAIL(v, PP_E_DECODE, "%s name at offset %llu is not valid %s", opname(v),
                    (unsigned long long)v->op_off, ascii ? "ASCII" : "UTF-8");
    return PP_OK;
}

static pp_err op_global(vm *v)
{
    const uint8_t *m = NULL, *n = NULL;
    size_t ml = 0, nl = 0;
    pp_err e;
    if ((e = line_name(v, false, &m, &ml)) || (e = line_name(v, false, &n, &nl)))
        return e;
    pp_val x;
    if ((e = find_class(v, m, ml, n, nl, &x)))
        return e;
    return push(v, x);
}

static pp_err op_stack_global(vm *v)
{
    pp_val name, mod;
    pp_err e;
    if ((e = pop(v, &name)) || (e = pop(v, &mod)))
        return e;
    if (name.kind != PP_V_STR || mod.kind != PP_V_STR)
        return FAIL(v, PP_E_BAD_VALUE, "STACK_GLOBAL requires str (got %s and %s)",
                    val_typename(&mod), val_typename(&name));
    pp_val x;
    if ((e = find_class(v, mod.u.s.p, mod.u.s.n, name.u.s.p, name.u.s.n, &x)))
        return e;
    return push(v, x);
}

static bool is_callable(const pp_val *x)
{
    return is_effect_target(x);
}

/* Positional arguments from a REDUCE/NEWOBJ operand: a tuple, or in the Py flavour any list
 * (f(*args)). Items are snapshotted: the call happened with the items of that moment. */
static pp_err call_args(vm *v, const pp_val *a, bool py_lenient, const char *what,
                        pp_val **items, size_t *n)
{
    if (pp_val_is(a, PP_N_TUPLE)) {
        *items = a->u.node->u.seq.v;
        *n = a->u.node->u.seq.n;
        return PP_OK;
    }
    if (py_lenient && pp_val_is(a, PP_N_LIST)) {
        size_t k = a->u.node->u.seq.n;
        pp_val *c = k ? galloc(v, k * sizeof *c) : NULL;
        if (k && !c)
            return v->err->code;
        if (k)
            memcpy(c, a->u.node->u.seq.v, k * sizeof *c);
        *items = c;
        *n = k;
        return PP_OK;
    }
    if (py_lenient && (a->kind == PP_V_STR || a->kind == PP_V_BYTES || a->kind == PP_V_NODE))
        return FAIL(v, PP_E_UNSUPPORTED, "%s arguments given as a %s", what, val_typename(a));
    return FAIL(v, PP_E_BAD_VALUE, "%s args argument must be a tuple, not %s", what,
                val_typename(a));
}

static pp_err make_call(vm *v, pp_val fn, pp_val *args, size_t nargs)
{
    pp_node *c = new_node(v, PP_N_CALL);
    if (!c)
        return v->err->code;
    c->u.call.fn = fn;
    c->u.call.args = args;
    c->u.call.nargs = nargs;
    if (!emit(v, PP_EV_CALL, c))
        return v->err->code;
    return push(v, pp_val_node(c));
}

static pp_err make_new(vm *v, pp_val cls, pp_val *args, size_t nargs, pp_val *kw, size_t nkw)
{
    pp_node *c = new_node(v, PP_N_NEW);
    if (!c)
        return v->err->code;
    c->u.call.fn = cls;
    c->u.call.args = args;
    c->u.call.nargs = nargs;
    c->u.call.kw = kw;
    c->u.call.nkw = nkw;
    if (!emit(v, PP_EV_NEW, c))
        return v->err->code;
    return push(v, pp_val_node(c));
}

static pp_err op_reduce(vm *v)
{
    pp_val args, fn;
    pp_err e;
    if ((e = pop(v, &args)) || (e = pop(v, &fn)))
        return e;
    if (!is_callable(&fn))
        return FAIL(v, PP_E_BAD_VALUE, "REDUCE callable is a %s, which is not callable",
                    val_typename(&fn));
    pp_val *items = NULL;
    size_t n = 0;
    if ((e = call_args(v, &args, v->fl == PP_FLAVOR_PY, "REDUCE", &items, &n)))
        return e;
    return make_call(v, fn, items, n);
}

/* instantiate(cls, args) of INST and OBJ: cls.__new__(cls) for no args (our stand-ins are
 * types without __getinitargs__), else cls(*args). */
static pp_err instantiate(vm *v, pp_val cls, const pp_val *items, size_t n)
{
    if (!is_callable(&cls))
        return FAIL(v, PP_E_BAD_VALUE, "%s class is a %s, which is not callable", opname(v),
                    val_typename(&cls));
    pp_val *copy = NULL;
    if (n) {
        copy = galloc(v, n * sizeof *copy);
        if (!copy)
            return v->err->code;
        memcpy(copy, items, n * sizeof *copy);
        return make_call(v, cls, copy, n);
    }
    return make_new(v, cls, NULL, 0, NULL, 0);
}

static pp_err op_inst(vm *v)
{
    const uint8_t *m = NULL, *n = NULL;
    size_t ml, nl, mark = 0;
    pp_err e;
    /* C takes the MARK before reading the names; Py looks the class up first */
    if (v->fl == PP_FLAVOR_C && (e = marker(v, &mark)))
        return e;
    if ((e = line_name(v, true, &m, &ml)) || (e = line_name(v, true, &n, &nl)))
        return e;
    pp_val cls;
    if ((e = find_class(v, m, ml, n, nl, &cls)))
        return e;
    if (v->fl == PP_FLAVOR_PY && (e = marker(v, &mark)))
        return e;
    size_t k = v->sp - mark;
    if ((e = instantiate(v, cls, v->stack + mark, k)))
        return e;
    /* instantiate pushed the result; move it down over the arguments */
    pp_val r = v->stack[v->sp - 1];
    v->sp = mark;
    return push(v, r);
}

static pp_err op_obj(vm *v)
{
    size_t m = 0;
    pp_err e = marker(v, &m);
    if (e)
        return e;
    if (v->sp - m < 1)
        return underflow(v);
    pp_val cls = v->stack[m];
    if ((e = instantiate(v, cls, v->stack + m + 1, v->sp - m - 1)))
        return e;
    pp_val r = v->stack[v->sp - 1];
    v->sp = m;
    return push(v, r);
}

static pp_err newobj(vm *v, bool ex)
{
    pp_val kwargs = pp_val_none(), args, cls;
    pp_err e;
    if (ex && (e = pop(v, &kwargs)))
        return e;
    if ((e = pop(v, &args)) || (e = pop(v, &cls)))
        return e;
    const char *what = ex ? "NEWOBJ_EX" : "NEWOBJ";
    if (!is_callable(&cls))
        return FAIL(v, PP_E_BAD_VALUE, "%s class argument must be a type, not %s", what,
                    val_typename(&cls));
    pp_val *items = NULL;
    size_t n = 0;
    if ((e = call_args(v, &args, v->fl == PP_FLAVOR_PY, what, &items, &n)))
        return e;
    pp_val *kw = NULL;
    size_t nkw = 0;
    if (ex) {
        if (!pp_val_is(&kwargs, PP_N_DICT))
            return FAIL(v, PP_E_BAD_VALUE, "NEWOBJ_EX kwargs argument must be a dict, not %s",
                        val_typename(&kwargs));
        /* **kwargs: keys must be str; a repeated key keeps its first position, last value */
        pp_node *d = kwargs.u.node;
        size_t pairs = d->u.seq.n / 2;
        kw = pairs ? galloc(v, pairs * 2 * sizeof *kw) : NULL;
        if (pairs && !kw)
            return v->err->code;
        for (size_t i = 0; i < pairs; i++) {
            const pp_val *k = &d->u.seq.v[2 * i];
            if (k->kind != PP_V_STR)
                return FAIL(v, PP_E_BAD_VALUE, "NEWOBJ_EX keywords must be strings, not %s",
                            val_typename(k));
            size_t j = 0;
            while (j < nkw && !(kw[2 * j].u.s.n == k->u.s.n &&
                                memcmp(kw[2 * j].u.s.p, k->u.s.p, k->u.s.n) == 0))
                j++;
            if (j == nkw) {
                kw[2 * j] = *k;
                nkw++;
            }
            kw[2 * j + 1] = d->u.seq.v[2 * i + 1];
        }
    }
    return make_new(v, cls, items, n, kw, nkw);
}

static pp_err op_newobj(vm *v)
{
    return newobj(v, false);
}
static pp_err op_newobj_ex(vm *v)
{
    return newobj(v, true);
}

/* Python truthiness of a value, for the Py flavour's `if state:`. */
static bool truthy(const pp_val *x)
{
    switch (x->kind) {
    case PP_V_NONE: return false;
    case PP_V_BOOL:
    case PP_V_INT: return x->u.i != 0;
    case PP_V_BIGINT: return true;
    case PP_V_FLOAT: return x->u.f != 0.0;
    case PP_V_STR:
    case PP_V_BYTES: return x->u.s.n != 0;
    default: break;
    }
    const pp_node *n = x->u.node;
    switch (n->kind) {
    case PP_N_TUPLE:
    case PP_N_LIST:
    case PP_N_DICT:
    case PP_N_SET:
    case PP_N_FROZENSET: return n->u.seq.n != 0;
    case PP_N_BYTEARRAY: return n->u.bytes.n != 0;
    case PP_N_MEMORYVIEW: return n->u.view->u.bytes.n != 0;
    default: return true;
    }
}

static pp_err op_build(vm *v)
{
    pp_val state;
    pp_err e = pop(v, &state);
    if (e)
        return e;
    pp_val *inst = NULL;
    if ((e = top(v, &inst)))
        return e;
    if (is_effect_target(inst)) {
        /* Stand-ins have __setstate__: the state is recorded as given. */
        pp_node *target = inst->u.node;
        if (!effect(v, PP_EV_BUILD, target, state, pp_val_none()))
            return v->err->code;
        const pp_vm_hooks *h = v->opt->hooks;
        if (h && h->after_build)
            return h->after_build(h->ctx, v, target, state);
        return PP_OK;
    }
    /* Built-in targets have no __setstate__ and no __dict__: only an empty state is a no-op. */
    pp_val st = state, slot = pp_val_none();
    bool has_slot = false;
    if (pp_val_is(&state, PP_N_TUPLE) && state.u.node->u.seq.n == 2) {
        st = state.u.node->u.seq.v[0];
        slot = state.u.node->u.seq.v[1];
        has_slot = true;
    }
    bool noop;
    if (v->fl == PP_FLAVOR_PY) {
        noop = !truthy(&st) && (!has_slot || !truthy(&slot));
    } else {
        /* C skips only a missing slot state: a None one is "not a dictionary" */
        noop = st.kind == PP_V_NONE &&
               (!has_slot || (pp_val_is(&slot, PP_N_DICT) && slot.u.node->u.seq.n == 0));
    }
    if (!noop)
        return FAIL(v, PP_E_BAD_VALUE, "BUILD state on a %s, which has no __dict__",
                    val_typename(inst));
    return PP_OK;
}

static pp_err persistent(vm *v, pp_val pid)
{
    pp_node *n = new_node(v, PP_N_PERSID);
    if (!n)
        return v->err->code;
    n->u.persid.pid = pid;
    if (!emit(v, PP_EV_PERSID, n))
        return v->err->code;
    if (!v->opt->persistent_ids)
        return FAIL(v, PP_E_BAD_VALUE,
                    "%s at offset %llu: a persistent id, but the loader has no persistent_load",
                    opname(v), (unsigned long long)v->op_off);
    return push(v, pp_val_node(n));
}

static pp_err op_persid(vm *v)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    pp_err e = rd_line(v, &s, &n);
    if (e)
        return e;
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x80)
            return FAIL(v, PP_E_DECODE, "persistent IDs in protocol 0 must be ASCII strings");
    pp_val pid = {0};
    pid.kind = PP_V_STR;
    pid.u.s.p = s;
    pid.u.s.n = n;
    return persistent(v, pid);
}

static pp_err op_binpersid(vm *v)
{
    pp_val pid;
    pp_err e = pop(v, &pid);
    return e ? e : persistent(v, pid);
}

static pp_err ext(vm *v, size_t w)
{
    uint64_t code = 0;
    pp_err e = rd_le(v, w, &code);
    if (e)
        return e;
    int64_t c = w == 4 ? (int64_t)(int32_t)(uint32_t)code : (int64_t)code;
    if (c <= 0)
        return FAIL(v, PP_E_BAD_VALUE, "EXT specifies code <= 0");
    pp_node *n = new_node(v, PP_N_EXT);
    if (!n)
        return v->err->code;
    n->u.ext.code = c;
    if (!emit(v, PP_EV_EXT, n))
        return v->err->code;
    /* copyreg's extension registry is empty unless the loading process filled it */
    return FAIL(v, PP_E_BAD_VALUE, "unregistered extension code %lld", (long long)c);
}

static pp_err op_ext1(vm *v)
{
    return ext(v, 1);
}
static pp_err op_ext2(vm *v)
{
    return ext(v, 2);
}
static pp_err op_ext4(vm *v)
{
    return ext(v, 4);
}

/* A memo index the Py flavour accepts but that does not fit int64 (its memo is a dict). */
static pp_err memo_index_fail(vm *v, pp_err e, const uint8_t *s, size_t n)
{
    if (e == PP_E_LIMIT)
        return FAIL(v, PP_E_UNSUPPORTED, "%s: memo index '%.*s' beyond 64 bits", opname(v),
                    (int)(n > 40 ? 40 : n), (const char *)s);
    return text_fail(v, e, "memo index", s, n);
}

static pp_err op_get(vm *v)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    pp_err e = rd_line1(v, &s, &n);
    if (e)
        return e;
    int64_t idx = 0;
    if ((e = pp_text_index_fl(v->fl, s, n, &idx)))
        return memo_index_fail(v, e, s, n);
    if (idx < 0)
        return FAIL(v, PP_E_MEMO, "memo value not found at index %lld", (long long)idx);
    return do_get(v, (uint64_t)idx);
}

static pp_err op_binget(vm *v)
{
    uint64_t i = 0;
    pp_err e = rd_le(v, 1, &i);
    return e ? e : do_get(v, i);
}

static pp_err op_long_binget(vm *v)
{
    uint64_t i = 0;
    pp_err e = rd_le(v, 4, &i);
    return e ? e : do_get(v, i);
}

static pp_err op_put(vm *v)
{
    const uint8_t *s = NULL;
    size_t n = 0;
    pp_err e = rd_line1(v, &s, &n);
    if (e)
        return e;
    pp_val *t = NULL;
    if ((e = top(v, &t)))
        return e;
    int64_t idx = 0;
    if ((e = pp_text_index_fl(v->fl, s, n, &idx)))
        return memo_index_fail(v, e, s, n);
    if (idx < 0)
        return FAIL(v, PP_E_BAD_VALUE, "negative PUT argument");
    return do_put(v, (uint64_t)idx);
}

static pp_err op_binput(vm *v)
{
    uint64_t i = 0;
    pp_err e = rd_le(v, 1, &i);
    return e ? e : do_put(v, i);
}

static pp_err op_long_binput(vm *v)
{
    uint64_t i = 0;
    pp_err e = rd_le(v, 4, &i);
    return e ? e : do_put(v, i);
}

static pp_err op_memoize(vm *v)
{
    return do_put(v, v->memo_len);
}

static pp_err op_proto(vm *v)
{
    uint64_t p = 0;
    pp_err e = rd_le(v, 1, &p);
    if (e)
        return e;
    if (p > 5)
        return FAIL(v, PP_E_PROTOCOL, "unsupported pickle protocol: %u", (unsigned)p);
    v->proto = (int)p;
    if (v->proto > v->max_proto)
        v->max_proto = v->proto;
    return PP_OK;
}

static pp_err op_frame(vm *v)
{
    uint64_t n = 0;
    pp_err e = rd_le(v, 8, &n);
    if (e)
        return e;
    if (v->in_frame && v->frame_end != v->c.pos)
        return FAIL(v, PP_E_FRAME, "beginning of a new frame before end of current frame");
    if (n > (uint64_t)INT64_MAX)
        return FAIL(v, PP_E_BAD_VALUE, "frame size > sys.maxsize: %llu", (unsigned long long)n);
    if (n > pp_cursor_left(&v->c))
        return truncated(v);
    v->in_frame = true;
    v->frame_end = v->c.pos + (size_t)n;
    return PP_OK;
}

static pp_err op_next_buffer(vm *v)
{
    return FAIL(v, PP_E_BAD_VALUE, "pickle stream refers to out-of-band data but no *buffers* "
                "argument was given");
}

static pp_err op_readonly_buffer(vm *v)
{
    pp_val *t = NULL;
    pp_err e = top(v, &t);
    if (e)
        return e;
    if (t->kind == PP_V_BYTES || pp_val_is(t, PP_N_MEMORYVIEW))
        return PP_OK; /* already read-only */
    if (!pp_val_is(t, PP_N_BYTEARRAY))
        return FAIL(v, PP_E_BAD_VALUE, "READONLY_BUFFER on a %s, which is not a buffer",
                    val_typename(t));
    pp_node *m = new_node(v, PP_N_MEMORYVIEW);
    if (!m)
        return v->err->code;
    m->u.view = t->u.node;
    *t = pp_val_node(m);
    return PP_OK;
}

/* ---- the hook interface ---------------------------------------------------------------- */

pp_err pp_vm_io_take(pp_vm_io *v, uint64_t n, const uint8_t **p)
{
    /* hostile: Py's unpickler would read these from the file after the frame, while opcodes
     * continued from inside it; no writer does that, so refuse rather than model it */
    if (v->in_frame && v->frame_end != v->c.pos)
        return FAIL(v, PP_E_UNSUPPORTED, "raw data read inside a frame at offset %llu",
                    (unsigned long long)pp_cursor_offset(&v->c));
    v->in_frame = false;
    pp_err e = check_payload(v, n);
    if (e)
        return e;
    pp_cursor_take(&v->c, n, p);
    return PP_OK;
}

uint64_t pp_vm_io_offset(const pp_vm_io *v)
{
    return pp_cursor_offset(&v->c);
}

int pp_vm_io_protocol(const pp_vm_io *v)
{
    return v->proto;
}

pp_graph *pp_vm_io_graph(pp_vm_io *v)
{
    return v->g;
}

pp_node *pp_vm_io_new_node(pp_vm_io *v, pp_nkind kind)
{
    return new_node(v, kind);
}

pp_err pp_vm_io_replace_top(pp_vm_io *v, pp_val x)
{
    pp_val *t = NULL;
    pp_err e = top(v, &t);
    if (e)
        return e;
    *t = x;
    return PP_OK;
}

pp_err pp_vm_io_fail(pp_vm_io *v, pp_err code, const char *fmt, ...)
{
    if (v->err->code != PP_OK)
        return code;
    char msg[sizeof v->err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return FAIL(v, code, "%s", msg);
}

/* ---- the table ---------------------------------------------------------------------------- */

typedef struct opent {
    pp_opdef def;
    op_fn fn;
} opent;

#define OP(byte, nm, pr, ak, f) [byte] = {{nm, pr, ak}, f}

static const opent optab[256] = {
    OP('(', "MARK", 0, PP_ARG_NONE, op_mark),
    OP('.', "STOP", 0, PP_ARG_NONE, op_stop),
    OP('0', "POP", 0, PP_ARG_NONE, op_pop),
    OP('1', "POP_MARK", 1, PP_ARG_NONE, op_pop_mark),
    OP('2', "DUP", 0, PP_ARG_NONE, op_dup),
    OP('F', "FLOAT", 0, PP_ARG_LINE, op_float),
    OP('I', "INT", 0, PP_ARG_LINE, op_int),
    OP('J', "BININT", 1, PP_ARG_I4, op_binint),
    OP('K', "BININT1", 1, PP_ARG_U1, op_binint1),
    OP('L', "LONG", 0, PP_ARG_LINE, op_long),
    OP('M', "BININT2", 1, PP_ARG_U2, op_binint2),
    OP('N', "NONE", 0, PP_ARG_NONE, op_none),
    OP('P', "PERSID", 0, PP_ARG_LINE, op_persid),
    OP('Q', "BINPERSID", 1, PP_ARG_NONE, op_binpersid),
    OP('R', "REDUCE", 0, PP_ARG_NONE, op_reduce),
    OP('S', "STRING", 0, PP_ARG_LINE, op_string),
    OP('T', "BINSTRING", 1, PP_ARG_LEN4, op_binstring),
    OP('U', "SHORT_BINSTRING", 1, PP_ARG_LEN1, op_short_binstring),
    OP('V', "UNICODE", 0, PP_ARG_LINE, op_unicode),
    OP('X', "BINUNICODE", 1, PP_ARG_LEN4, op_binunicode),
    OP('a', "APPEND", 0, PP_ARG_NONE, op_append),
    OP('b', "BUILD", 0, PP_ARG_NONE, op_build),
    OP('c', "GLOBAL", 0, PP_ARG_LINE2, op_global),
    OP('d', "DICT", 0, PP_ARG_NONE, op_dict),
    OP('e', "APPENDS", 1, PP_ARG_NONE, op_appends),
    OP('g', "GET", 0, PP_ARG_LINE, op_get),
    OP('h', "BINGET", 1, PP_ARG_U1, op_binget),
    OP('i', "INST", 0, PP_ARG_LINE2, op_inst),
    OP('j', "LONG_BINGET", 1, PP_ARG_U4, op_long_binget),
    OP('l', "LIST", 0, PP_ARG_NONE, op_list),
    OP('o', "OBJ", 1, PP_ARG_NONE, op_obj),
    OP('p', "PUT", 0, PP_ARG_LINE, op_put),
    OP('q', "BINPUT", 1, PP_ARG_U1, op_binput),
    OP('r', "LONG_BINPUT", 1, PP_ARG_U4, op_long_binput),
    OP('s', "SETITEM", 0, PP_ARG_NONE, op_setitem),
    OP('t', "TUPLE", 0, PP_ARG_NONE, op_tuple),
    OP('u', "SETITEMS", 1, PP_ARG_NONE, op_setitems),
    OP('G', "BINFLOAT", 1, PP_ARG_F8, op_binfloat),
    OP(')', "EMPTY_TUPLE", 1, PP_ARG_NONE, op_empty_tuple),
    OP(']', "EMPTY_LIST", 1, PP_ARG_NONE, op_empty_list),
    OP('}', "EMPTY_DICT", 1, PP_ARG_NONE, op_empty_dict),
    OP(0x80, "PROTO", 2, PP_ARG_U1, op_proto),
    OP(0x81, "NEWOBJ", 2, PP_ARG_NONE, op_newobj),
    OP(0x82, "EXT1", 2, PP_ARG_U1, op_ext1),
    OP(0x83, "EXT2", 2, PP_ARG_U2, op_ext2),
    OP(0x84, "EXT4", 2, PP_ARG_I4, op_ext4),
    OP(0x85, "TUPLE1", 2, PP_ARG_NONE, op_tuple1),
    OP(0x86, "TUPLE2", 2, PP_ARG_NONE, op_tuple2),
    OP(0x87, "TUPLE3", 2, PP_ARG_NONE, op_tuple3),
    OP(0x88, "NEWTRUE", 2, PP_ARG_NONE, op_newtrue),
    OP(0x89, "NEWFALSE", 2, PP_ARG_NONE, op_newfalse),
    OP(0x8a, "LONG1", 2, PP_ARG_LEN1, op_long1),
    OP(0x8b, "LONG4", 2, PP_ARG_LEN4, op_long4),
    OP('B', "BINBYTES", 3, PP_ARG_LEN4, op_binbytes),
    OP('C', "SHORT_BINBYTES", 3, PP_ARG_LEN1, op_short_binbytes),
    OP(0x8c, "SHORT_BINUNICODE", 4, PP_ARG_LEN1, op_short_binunicode),
    OP(0x8d, "BINUNICODE8", 4, PP_ARG_LEN8, op_binunicode8),
    OP(0x8e, "BINBYTES8", 4, PP_ARG_LEN8, op_binbytes8),
    OP(0x8f, "EMPTY_SET", 4, PP_ARG_NONE, op_empty_set),
    OP(0x90, "ADDITEMS", 4, PP_ARG_NONE, op_additems),
    OP(0x91, "FROZENSET", 4, PP_ARG_NONE, op_frozenset),
    OP(0x92, "NEWOBJ_EX", 4, PP_ARG_NONE, op_newobj_ex),
    OP(0x93, "STACK_GLOBAL", 4, PP_ARG_NONE, op_stack_global),
    OP(0x94, "MEMOIZE", 4, PP_ARG_NONE, op_memoize),
    OP(0x95, "FRAME", 4, PP_ARG_U8, op_frame),
    OP(0x96, "BYTEARRAY8", 5, PP_ARG_LEN8, op_bytearray8),
    OP(0x97, "NEXT_BUFFER", 5, PP_ARG_NONE, op_next_buffer),
    OP(0x98, "READONLY_BUFFER", 5, PP_ARG_NONE, op_readonly_buffer),
};

const pp_opdef *pp_vm_opdef(uint8_t op)
{
    return optab[op].def.name ? &optab[op].def : NULL;
}

const char *pp_vm_opname(int op)
{
    if (op < 0 || op > 255)
        return NULL;
    return optab[op].def.name;
}

/* ---- graph lifetime and the loop ----------------------------------------------------------- */

pp_err pp_graph_init(pp_graph *g, uint64_t memory_cap)
{
    memset(g, 0, sizeof *g);
    pp_arena_init(&g->arena, memory_cap > SIZE_MAX ? SIZE_MAX : (size_t)memory_cap);
    return PP_OK;
}

void pp_graph_free(pp_graph *g)
{
    pp_arena_free(&g->arena);
    pp_free(g->globals);
    memset(g, 0, sizeof *g);
}

static pp_err bad_opcode(vm *v, uint8_t op)
{
    if (op >= 0x20 && op <= 0x7e && op != '\'' && op != '\\')
        return FAIL(v, PP_E_BAD_OPCODE, "invalid load key, '%c' at offset %llu", op,
                    (unsigned long long)v->op_off);
    return FAIL(v, PP_E_BAD_OPCODE, "invalid load key, '\\x%02x' at offset %llu", op,
                (unsigned long long)v->op_off);
}

pp_err pp_vm_run(pp_graph *g, const uint8_t *p, size_t len, uint64_t base,
                 const pp_vm_options *opt, pp_stream_result *out, pp_error *err)
{
    vm v;
    memset(&v, 0, sizeof v);
    v.g = g;
    v.opt = opt;
    v.lim = opt->limits;
    v.err = err;
    v.fl = opt->flavor;
    v.op = -1;
    v.max_proto = -1;
    pp_cursor_init(&v.c, p, len, base);
    memset(out, 0, sizeof *out);
    out->start = base;
    /* the stack exists from the start, so no handler ever offsets a null pointer */
    v.scap = 256;
    v.stack = pp_malloc(v.scap * sizeof *v.stack);
    if (!v.stack)
        return pp_fail(err, PP_E_NOMEM, base, -1, "out of memory starting the VM");

    pp_err e = PP_OK;
    uint64_t max_ops = v.lim->v[PP_LIMIT_OPCODES];
    while (!v.stopped) {
        v.op_off = pp_cursor_offset(&v.c);
        v.op = -1;
        if (!pp_cursor_left(&v.c)) {
            e = FAIL(&v, PP_E_TRUNCATED, "ran out of input at offset %llu before STOP",
                     (unsigned long long)v.op_off);
            break;
        }
        const uint8_t *opb = NULL;
        if ((e = rd(&v, 1, &opb)))
            break;
        v.op = *opb;
        if (++v.ops > max_ops) {
            e = limit(&v, PP_LIMIT_OPCODES);
            break;
        }
        op_fn fn = optab[*opb].fn;
        if (!fn) {
            e = bad_opcode(&v, *opb);
            break;
        }
        if ((e = fn(&v)))
            break;
    }
    out->root = v.root;
    out->stopped = v.stopped;
    out->end = pp_cursor_offset(&v.c);
    out->protocol = v.max_proto;
    out->opcodes = v.ops;
    if (e && err)
        pp_error_set_stream(err, opt->stream_name);
    pp_free(v.stack);
    pp_free(v.marks);
    pp_free(v.dense);
    pp_free(v.sparse);
    return e;
}
