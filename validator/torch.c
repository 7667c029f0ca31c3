/* PyTorch: the checks every torch container shares (storage classes, persistent ids, storage
 * regions, tensor rebuild calls) and the zip format. See torch.h for the contracts; the loader
 * behaviour reproduced here is torch 1.13's serialization.py (_load, UnpicklerWrapper,
 * persistent_load) and caffe2's PyTorchStreamReader (miniz). */
#include "torch.h"

#include "arena.h"
#include "err.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* torch/storage.py _dtype_to_storage_type_map (1.13), plus UntypedStorage (uint8). find_class
 * maps any global whose name is one of these to StorageType(name) without importing its module;
 * the policy still has to allow the spelling used. */
static const pp_torch_stype stypes[] = {
    {"DoubleStorage", 8, "<f8"},
    {"FloatStorage", 4, "<f4"},
    {"HalfStorage", 2, "<f2"},
    {"LongStorage", 8, "<i8"},
    {"IntStorage", 4, "<i4"},
    {"ShortStorage", 2, "<i2"},
    {"CharStorage", 1, "|i1"},
    {"ByteStorage", 1, "|u1"},
    {"BoolStorage", 1, "|b1"},
    {"BFloat16Storage", 2, "bfloat16"},
    {"ComplexDoubleStorage", 16, "<c16"},
    {"ComplexFloatStorage", 8, "<c8"},
    {"QInt8Storage", 1, "|i1"},
    {"QInt32Storage", 4, "<i4"},
    {"QUInt8Storage", 1, "|u1"},
    {"QUInt4x2Storage", 1, "|u1"},
    {"QUInt2x4Storage", 1, "|u1"},
    {"UntypedStorage", 1, "|u1"},
};

const pp_torch_stype *pp_torch_stype_of(const pp_policy *p, const pp_node *g)
{
    if (!g || g->kind != PP_N_GLOBAL) return NULL;
    const pp_torch_stype *st = NULL;
    for (size_t i = 0; i < sizeof stypes / sizeof stypes[0]; i++)
        if (strlen(stypes[i].name) == g->u.glob.namelen &&
            memcmp(stypes[i].name, g->u.glob.name, g->u.glob.namelen) == 0)
            st = &stypes[i];
    if (!st) return NULL;
    unsigned perm =
        pp_policy_lookup(p, g->u.glob.module, g->u.glob.modlen, g->u.glob.name, g->u.glob.namelen);
    return (perm & PP_PERM_REFERENCE) ? st : NULL;
}

/* ---- the checker ------------------------------------------------------------------------- */

typedef struct entry {
    uint8_t *key; /* owned copy */
    size_t keylen;
    /* the record (zip: data/<key>; legacy: its place in the storage list) */
    bool has_record;
    uint64_t nbytes, offset, file_offset;
    char *where;
    /* the storage the first persistent id of this key declared */
    bool declared;
    const pp_torch_stype *type;
    uint64_t numel;
    bool region_done;
} entry;

typedef struct span {
    pp_event *first; /* first event of the stream */
    size_t n;        /* events in it */
    char *name;
    bool persid; /* read with persistent_load */
} span;

typedef struct persid {
    const pp_event *ev;
    const pp_node *node;
    size_t entry; /* SIZE_MAX when the shape was refused */
    bool ok;
} persid;

struct pp_torch {
    pp_scan_ctx *c;
    bool legacy;
    entry *e;
    size_t ne, cape;
    size_t *hash; /* open addressing: index + 1, 0 empty */
    size_t hcap;
    span *s;
    size_t ns, caps;
    persid *p;
    size_t np, capp;
    bool declared;
    bool broken;   /* pp_torch_broken */
    pp_graph priv; /* values of small plain pickles (pp_torch_eval) */
    bool has_priv;
};

pp_err pp_torch_new(pp_scan_ctx *c, bool legacy, pp_torch **out)
{
    pp_torch *t = pp_calloc(1, sizeof *t);
    if (!t) return PP_E_NOMEM;
    t->c = c;
    t->legacy = legacy;
    *out = t;
    return PP_OK;
}

void pp_torch_free(pp_torch *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->ne; i++) {
        pp_free(t->e[i].key);
        pp_free(t->e[i].where);
    }
    for (size_t i = 0; i < t->ns; i++)
        pp_free(t->s[i].name);
    pp_free(t->e);
    pp_free(t->hash);
    pp_free(t->s);
    pp_free(t->p);
    if (t->has_priv) pp_graph_free(&t->priv);
    pp_free(t);
}

pp_err pp_torch_eval(pp_torch *t, const uint8_t *data, size_t len, uint64_t base, pp_val *root)
{
    const pp_scan_options *o = pp_ctx_options(t->c);
    *root = pp_val_none();
    if (!t->has_priv) {
        pp_graph_init(&t->priv, o->limits.v[PP_LIMIT_GRAPH_MEMORY]);
        t->has_priv = true;
    }
    pp_vm_options vo = {.flavor = PP_FLAVOR_C,
                        .encoding = PP_ENC_UTF8,
                        .limits = &o->limits,
                        .stream_name = "value"};
    pp_stream_result res;
    pp_error e;
    pp_error_clear(&e);
    pp_err rc = pp_vm_run(&t->priv, data, len, base == PP_NO_OFFSET ? 0 : base, &vo, &res, &e);
    if (rc == PP_OK) *root = res.root;
    return rc;
}

static uint64_t hash_key(const uint8_t *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ k[i]) * 1099511628211ull;
    return h;
}

/* Finds the entry of key; creates it when `create`. Returns SIZE_MAX when absent (or on
 * allocation failure, with *nomem set). */
static size_t lookup(pp_torch *t, const uint8_t *k, size_t n, bool create, bool *nomem)
{
    if (t->hcap) {
        size_t i = (size_t)(hash_key(k, n) & (t->hcap - 1));
        for (;;) {
            size_t s = t->hash[i];
            if (!s) break;
            entry *e = &t->e[s - 1];
            if (e->keylen == n && memcmp(e->key, k, n) == 0) return s - 1;
            i = (i + 1) & (t->hcap - 1);
        }
    }
    if (!create) return SIZE_MAX;
    /* grow the table at half load, the entries array when full */
    if ((t->ne + 1) * 2 > t->hcap) {
        size_t nc = t->hcap ? t->hcap * 2 : 64;
        size_t *nh = pp_calloc(nc, sizeof *nh);
        if (!nh) goto oom;
        for (size_t j = 0; j < t->ne; j++) {
            size_t i = (size_t)(hash_key(t->e[j].key, t->e[j].keylen) & (nc - 1));
            while (nh[i])
                i = (i + 1) & (nc - 1);
            nh[i] = j + 1;
        }
        pp_free(t->hash);
        t->hash = nh;
        t->hcap = nc;
    }
    if (t->ne == t->cape) {
        size_t nc = t->cape ? t->cape * 2 : 16;
        entry *ne = pp_realloc(t->e, nc * sizeof *ne);
        if (!ne) goto oom;
        t->e = ne;
        t->cape = nc;
    }
    entry *e = &t->e[t->ne];
    memset(e, 0, sizeof *e);
    e->key = pp_malloc(n ? n : 1);
    if (!e->key) goto oom;
    memcpy(e->key, k, n);
    e->keylen = n;
    size_t i = (size_t)(hash_key(k, n) & (t->hcap - 1));
    while (t->hash[i])
        i = (i + 1) & (t->hcap - 1);
    t->hash[i] = t->ne + 1;
    return t->ne++;
oom:
    *nomem = true;
    return SIZE_MAX;
}

pp_err pp_torch_stream(pp_torch *t, const uint8_t *data, size_t len, uint64_t base,
                       const char *name, bool persid_ids, bool single, size_t *end_out)
{
    pp_graph *g = pp_ctx_graph(t->c);
    pp_event *tail = g->events_tail;
    size_t before = g->nevents;
    pp_stream_opts so = {.flavor = PP_FLAVOR_C,
                         .encoding = PP_ENC_UTF8, /* torch.load's pickle_load_args default */
                         .persistent_ids = persid_ids,
                         .single = single};
    pp_err rc = pp_ctx_stream(t->c, data, len, base, name, &so, end_out);
    if (rc == PP_E_NOMEM) return rc;
    /* tensor calls are checked in every stream, persistent ids in those that have them */
    if (g->nevents > before) {
        if (t->ns == t->caps) {
            size_t nc = t->caps ? t->caps * 2 : 4;
            span *ns = pp_realloc(t->s, nc * sizeof *ns);
            if (!ns) return PP_E_NOMEM;
            t->s = ns;
            t->caps = nc;
        }
        span *s = &t->s[t->ns];
        s->first = tail ? tail->next : g->events;
        s->n = g->nevents - before;
        s->persid = persid_ids;
        s->name = pp_strdup(name);
        if (!s->name) return PP_E_NOMEM;
        t->ns++;
    }
    return rc;
}

pp_err pp_torch_add_record(pp_torch *t, const uint8_t *key, size_t keylen, uint64_t nbytes,
                           uint64_t offset, uint64_t file_offset, const char *where)
{
    bool nomem = false;
    size_t i = lookup(t, key, keylen, true, &nomem);
    if (nomem) return PP_E_NOMEM;
    entry *e = &t->e[i];
    if (e->has_record) return PP_E_BAD_VALUE; /* a key with two records: the caller reports it */
    e->has_record = true;
    e->nbytes = nbytes;
    e->offset = offset;
    e->file_offset = file_offset;
    pp_free(e->where);
    e->where = pp_strdup(where);
    return e->where ? PP_OK : PP_E_NOMEM;
}

/* The name of the stream an event belongs to (streams are few: linear). */
static const char *span_name(const pp_torch *t, const pp_event *ev)
{
    for (size_t i = 0; i < t->ns; i++)
        if (t->s[i].first && t->s[i].first->stream <= ev->stream &&
            (i + 1 == t->ns || !t->s[i + 1].first || t->s[i + 1].first->stream > ev->stream))
            return t->s[i].name;
    return t->ns ? t->s[0].name : "pickle";
}

/* "persistent id <what>: <why>" */
static pp_err refuse(pp_torch *t, const pp_event *ev, const char *what, const char *why)
{
    return pp_report_add_finding(pp_ctx_report(t->c), "torch-storage-invalid", "critical", NULL,
                                 ev->opcode, ev->offset, span_name(t, ev), "persistent id %s: %s",
                                 what, why);
}

static bool is_str(const pp_val *v)
{
    return v->kind == PP_V_STR;
}

/* One persistent id: its shape, and the storage it declares (first one of a key wins). */
static pp_err declare_one(pp_torch *t, const pp_event *ev)
{
    const pp_node *n = ev->node;
    persid pr = {.ev = ev, .node = n, .entry = SIZE_MAX};
    const char *why = NULL;
    const pp_val *pid = &n->u.persid.pid;
    size_t want = t->legacy ? 6 : 5;
    if (t->legacy && pp_val_is(pid, PP_N_TUPLE) && pid->u.node->u.seq.n == 4 &&
        is_str(&pid->u.node->u.seq.v[0]) && pid->u.node->u.seq.v[0].u.s.n == 6 &&
        memcmp(pid->u.node->u.seq.v[0].u.s.p, "module", 6) == 0) {
        /* the legacy writer's nn.Module class ids: persistent_load returns the class (and may
         * compare its source, writing a .patch file), so the class escapes the policy */
        pp_err rc = refuse(t, ev, "('module', class, source_file, source)",
                           "module classes loaded through persistent_load are not supported; "
                           "save a state_dict instead");
        if (rc) return rc;
        goto add;
    }
    if (!pp_val_is(pid, PP_N_TUPLE) || pid->u.node->u.seq.n != want) {
        why = t->legacy ? "not a 6-tuple ('storage', type, key, location, numel, None)"
                        : "not a 5-tuple ('storage', type, key, location, numel)";
        goto bad;
    }
    const pp_val *it = pid->u.node->u.seq.v;
    if (!is_str(&it[0]) || it[0].u.s.n != 7 || memcmp(it[0].u.s.p, "storage", 7) != 0) {
        why = "does not start with the str 'storage'";
        goto bad;
    }
    const pp_torch_stype *st = NULL;
    if (it[1].kind == PP_V_NODE) st = pp_torch_stype_of(pp_ctx_options(t->c)->policy, it[1].u.node);
    if (!st || (t->legacy && strcmp(st->name, "UntypedStorage") == 0)) {
        why = "does not name a storage class the policy allows";
        goto bad;
    }
    if (!is_str(&it[2]) || !is_str(&it[3]) || it[3].u.s.n > 64) {
        why = "key and location must be str";
        goto bad;
    }
    if (it[4].kind != PP_V_INT || it[4].u.i < 0) {
        why = "numel must be an int >= 0";
        goto bad;
    }
    if (t->legacy && it[5].kind != PP_V_NONE) {
        /* storage views: never written by torch >= 1.0's legacy writer; not modelled */
        why = "storage views (view_metadata) are not supported";
        goto bad;
    }
    bool nomem = false;
    size_t i = lookup(t, it[2].u.s.p, it[2].u.s.n, true, &nomem);
    if (nomem) return PP_E_NOMEM;
    entry *e = &t->e[i];
    uint64_t numel = (uint64_t)it[4].u.i;
    if (!e->declared) {
        e->declared = true;
        e->type = st;
        e->numel = numel;
    } else if (e->type != st || e->numel != numel) {
        /* hostile: torch returns the first storage of a key whatever a later id claims */
        why = "disagrees with the first persistent id of its key";
        goto bad;
    }
    pr.entry = i;
    goto add;
bad:;
    char key[64] = "without a str key";
    if (pp_val_is(pid, PP_N_TUPLE) && pid->u.node->u.seq.n >= 3 &&
        is_str(&pid->u.node->u.seq.v[0]) && pid->u.node->u.seq.v[0].u.s.n == 7 &&
        memcmp(pid->u.node->u.seq.v[0].u.s.p, "storage", 7) == 0 &&
        is_str(&pid->u.node->u.seq.v[2])) {
        const pp_val *k = &pid->u.node->u.seq.v[2];
        snprintf(key, sizeof key, "of key '%.*s'", (int)(k->u.s.n > 40 ? 40 : k->u.s.n),
                 (const char *)k->u.s.p);
    }
    pp_err rc = refuse(t, ev, key, why);
    if (rc) return rc;
add:
    if (t->np == t->capp) {
        size_t nc = t->capp ? t->capp * 2 : 16;
        persid *np = pp_realloc(t->p, nc * sizeof *np);
        if (!np) return PP_E_NOMEM;
        t->p = np;
        t->capp = nc;
    }
    t->p[t->np++] = pr;
    return PP_OK;
}

pp_err pp_torch_declare(pp_torch *t)
{
    if (t->declared) return PP_OK;
    t->declared = true;
    for (size_t s = 0; s < t->ns; s++) {
        const pp_event *ev = t->s[s].first;
        for (size_t k = 0; t->s[s].persid && k < t->s[s].n && ev; k++, ev = ev->next)
            if (ev->kind == PP_EV_PERSID && ev->node && ev->node->kind == PP_N_PERSID) {
                pp_err rc = declare_one(t, ev);
                if (rc) return rc;
            }
    }
    return PP_OK;
}

bool pp_torch_declared(pp_torch *t, const uint8_t *key, size_t keylen, uint32_t *elsize,
                       uint64_t *numel, const pp_torch_stype **type)
{
    bool nomem = false;
    size_t i = lookup(t, key, keylen, false, &nomem);
    if (i == SIZE_MAX || !t->e[i].declared) return false;
    *elsize = t->e[i].type->elsize;
    *numel = t->e[i].numel;
    *type = t->e[i].type;
    return true;
}

void pp_torch_broken(pp_torch *t)
{
    t->broken = true;
}

/* ---- judgement: regions, tensors, the hook ------------------------------------------------ */

typedef struct hook {
    pp_policy_hooks h;
    const pp_event **ok; /* accepted PERSID events, sorted by address */
    size_t n;
} hook;

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return x < y ? -1 : x > y;
}

static bool hook_persid(void *ctx, const pp_event *ev)
{
    const hook *h = ctx;
    return h->n && bsearch(&ev, h->ok, h->n, sizeof *h->ok, cmp_ptr) != NULL;
}

static int cmp_persid_node(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const persid *)a)->node, y = (uintptr_t)((const persid *)b)->node;
    return x < y ? -1 : x > y;
}

static const persid *find_persid(const pp_torch *t, const pp_node *n)
{
    persid k = {.node = n};
    return t->np ? bsearch(&k, t->p, t->np, sizeof *t->p, cmp_persid_node) : NULL;
}

static bool global_is(const pp_val *v, const char *mod, const char *name)
{
    if (!pp_val_is(v, PP_N_GLOBAL)) return false;
    const pp_node *g = v->u.node;
    return g->u.glob.modlen == strlen(mod) &&
           memcmp(g->u.glob.module, mod, g->u.glob.modlen) == 0 &&
           g->u.glob.namelen == strlen(name) &&
           memcmp(g->u.glob.name, name, g->u.glob.namelen) == 0;
}

static pp_err tensor_finding(pp_torch *t, const pp_event *ev, const char *name, const char *rule,
                             const char *msg)
{
    return pp_report_add_finding(pp_ctx_report(t->c), rule, "critical", name, ev->opcode,
                                 ev->offset, span_name(t, ev), "%s", msg);
}

/* The view (offset, sizes, strides) of a _rebuild_tensor call must stay inside its storage. */
static pp_err check_tensor(pp_torch *t, const pp_event *ev, const char *gname, bool v2)
{
    const pp_node *n = ev->node;
    char m[256];
    size_t need = v2 ? 6 : 4;
    if (n->u.call.nargs < need || n->u.call.nargs > need + (v2 ? 1 : 0)) {
        snprintf(m, sizeof m, "%s takes %zu arguments, got %zu", gname, need, n->u.call.nargs);
        return tensor_finding(t, ev, gname, "tensor-bad-metadata", m);
    }
    const pp_val *a = n->u.call.args;
    const persid *pr = pp_val_is(&a[0], PP_N_PERSID) ? find_persid(t, a[0].u.node) : NULL;
    if (!pr || !pr->ok) {
        snprintf(m, sizeof m, "%s: the storage is not an accepted persistent id", gname);
        return tensor_finding(t, ev, gname, "tensor-bad-metadata", m);
    }
    uint64_t numel = t->e[pr->entry].numel;
    if (a[1].kind != PP_V_INT || a[1].u.i < 0 || !pp_val_is(&a[2], PP_N_TUPLE) ||
        !pp_val_is(&a[3], PP_N_TUPLE) || a[2].u.node->u.seq.n != a[3].u.node->u.seq.n ||
        a[2].u.node->u.seq.n > 64) {
        snprintf(m, sizeof m,
                 "%s: storage_offset must be an int >= 0 and size, stride tuples of equal "
                 "length (at most 64)",
                 gname);
        return tensor_finding(t, ev, gname, "tensor-bad-metadata", m);
    }
    uint64_t off = (uint64_t)a[1].u.i, last = off;
    bool empty = false, overflow = false;
    size_t nd = a[2].u.node->u.seq.n;
    for (size_t i = 0; i < nd; i++) {
        const pp_val *sz = &a[2].u.node->u.seq.v[i], *sd = &a[3].u.node->u.seq.v[i];
        if (sz->kind != PP_V_INT || sd->kind != PP_V_INT || sz->u.i < 0 || sd->u.i < 0) {
            snprintf(m, sizeof m, "%s: size and stride %zu must be ints >= 0", gname, i);
            return tensor_finding(t, ev, gname, "tensor-bad-metadata", m);
        }
        if (sz->u.i == 0) {
            empty = true;
            continue;
        }
        /* hostile: (size - 1) * stride and the sum may overflow 64 bits */
        uint64_t s1 = (uint64_t)sz->u.i - 1, st = (uint64_t)sd->u.i;
        if (st && s1 > UINT64_MAX / st) {
            overflow = true;
            continue;
        }
        uint64_t d = s1 * st;
        if (d > UINT64_MAX - last)
            overflow = true;
        else
            last += d;
    }
    if (empty ? off > numel : (overflow || last >= numel)) {
        if (overflow && !empty)
            snprintf(m, sizeof m, "%s: the view's extent overflows; the storage has %llu elements",
                     gname, (unsigned long long)numel);
        else
            snprintf(m, sizeof m,
                     "%s: the view reaches element %llu of a storage of %llu elements "
                     "(offset %llu)",
                     gname, (unsigned long long)last, (unsigned long long)numel,
                     (unsigned long long)off);
        pp_err rc = tensor_finding(t, ev, gname, "tensor-out-of-bounds", m);
        if (rc) return rc;
    }
    if (v2) {
        /* backward hooks run during backward(): torch.save writes an empty OrderedDict */
        const pp_val *h = &a[5];
        bool ok = pp_val_is(h, PP_N_CALL) && h->u.node->u.call.nargs == 0 &&
                  global_is(&h->u.node->u.call.fn, "collections", "OrderedDict") &&
                  h->u.node->effects == NULL;
        if (!ok) {
            snprintf(m, sizeof m, "%s: backward_hooks must be an empty OrderedDict()", gname);
            return tensor_finding(t, ev, gname, "tensor-backward-hooks", m);
        }
    }
    return PP_OK;
}

pp_err pp_torch_finish(pp_torch *t)
{
    pp_err rc = pp_torch_declare(t);
    if (rc) return rc;
    /* persistent ids: accepted when their storage exists with enough bytes */
    for (size_t i = 0; i < t->np; i++) {
        persid *pr = &t->p[i];
        if (pr->entry == SIZE_MAX) continue;
        entry *e = &t->e[pr->entry];
        char k[64];
        snprintf(k, sizeof k, "of key '%.*s'", (int)(e->keylen > 40 ? 40 : e->keylen),
                 (const char *)e->key);
        if (!e->has_record && t->broken) {
            /* the file is malformed already; the storage was simply never reached */
            pr->ok = true;
            continue;
        }
        if (!e->has_record) {
            rc = refuse(t, pr->ev, k,
                        t->legacy ? "the key is not in the storage list"
                                  : "no data/<key> record in the archive");
            if (rc) return rc;
            continue;
        }
        /* hostile: numel x element size overflows or exceeds the record (CVE-2026-24747) */
        uint64_t es = e->type->elsize;
        if (e->numel > UINT64_MAX / es || e->numel * es > e->nbytes) {
            char m[128];
            snprintf(m, sizeof m, "declares %llu elements of %u bytes, the record has %llu bytes",
                     (unsigned long long)e->numel, (unsigned)es, (unsigned long long)e->nbytes);
            rc = refuse(t, pr->ev, k, m);
            if (rc) return rc;
            continue;
        }
        pr->ok = true;
        if (!e->region_done) {
            e->region_done = true;
            pp_array_region r;
            memset(&r, 0, sizeof r);
            r.where = e->where;
            r.offset = e->offset;
            r.file_offset = e->file_offset;
            r.nbytes = e->numel * es;
            snprintf(r.dtype, sizeof r.dtype, "%s", e->type->dtype);
            r.ndim = 1;
            r.shape[0] = e->numel;
            r.order = 'C';
            if ((rc = pp_ctx_region_ex(t->c, &r, NULL, (const char *)e->key, e->keylen, NULL)))
                return rc;
        }
    }
    if (t->np) qsort(t->p, t->np, sizeof *t->p, cmp_persid_node);
    /* tensor rebuild calls */
    for (size_t s = 0; s < t->ns; s++) {
        const pp_event *ev = t->s[s].first;
        for (size_t k = 0; k < t->s[s].n && ev; k++, ev = ev->next) {
            if (ev->kind != PP_EV_CALL || !ev->node || ev->node->kind != PP_N_CALL) continue;
            const pp_val *fn = &ev->node->u.call.fn;
            if (global_is(fn, "torch._utils", "_rebuild_tensor_v2"))
                rc = check_tensor(t, ev, "torch._utils._rebuild_tensor_v2", true);
            else if (global_is(fn, "torch._utils", "_rebuild_tensor"))
                rc = check_tensor(t, ev, "torch._utils._rebuild_tensor", false);
            if (rc) return rc;
        }
    }
    /* the policy hook: kept by the scan, which judges after the containers return */
    hook *h = pp_calloc(1, sizeof *h);
    if (!h || (rc = pp_ctx_keep(t->c, h))) return PP_E_NOMEM;
    size_t nok = 0;
    for (size_t i = 0; i < t->np; i++)
        nok += t->p[i].ok;
    if (nok) {
        h->ok = pp_malloc(nok * sizeof *h->ok);
        if (!h->ok || (rc = pp_ctx_keep(t->c, (void *)h->ok))) return PP_E_NOMEM;
        for (size_t i = 0; i < t->np; i++)
            if (t->p[i].ok) h->ok[h->n++] = t->p[i].ev;
        qsort(h->ok, h->n, sizeof *h->ok, cmp_ptr);
    }
    h->h.persid_allowed = hook_persid;
    h->h.ctx = h;
    pp_ctx_set_policy_hooks(t->c, &h->h);
    return PP_OK;
}

/* ---- the zip format ---------------------------------------------------------------------- */

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

static int cmp_ci(const char *a, size_t an, const char *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    for (size_t i = 0; i < n; i++) {
        int x = lower((unsigned char)a[i]), y = lower((unsigned char)b[i]);
        if (x != y) return x < y ? -1 : 1;
    }
    return an < bn ? -1 : an > bn;
}

static bool eq_ci(const char *a, size_t an, const char *b)
{
    return cmp_ci(a, an, b, strlen(b)) == 0;
}

/* The last path component. */
static const char *base_name(const char *n, size_t len, size_t *blen)
{
    size_t i = len;
    while (i > 0 && n[i - 1] != '/')
        i--;
    *blen = len - i;
    return n + i;
}

bool pp_torch_zip_detect(const pp_zip *z)
{
    for (size_t i = 0; i < z->n; i++) {
        size_t bl;
        const char *b = base_name(z->e[i].name, z->e[i].namelen, &bl);
        if (bl < z->e[i].namelen && (eq_ci(b, bl, "data.pkl") || eq_ci(b, bl, "constants.pkl")))
            return true;
    }
    return false;
}

typedef struct sorted {
    const char *name;
    size_t len, i;
} sorted;

static int cmp_sorted(const void *a, const void *b)
{
    const sorted *x = a, *y = b;
    return cmp_ci(x->name, x->len, y->name, y->len);
}

typedef struct tz {
    pp_scan_ctx *c;
    const pp_zip *z;
    sorted *idx; /* entries sorted by lowercased name */
    const char *prefix;
    size_t plen; /* prefix length including the '/' */
    bool *known; /* entries that are records of the format */
} tz;

/* The entry miniz finds for prefix + name (case-insensitive), or NULL. */
static const pp_zip_entry *find_rec(tz *x, const char *name, size_t nlen, size_t *which)
{
    char buf[1024];
    if (x->plen + nlen > sizeof buf) return NULL;
    memcpy(buf, x->prefix, x->plen);
    memcpy(buf + x->plen, name, nlen);
    size_t lo = 0, hi = x->z->n, bl = x->plen + nlen;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = cmp_ci(x->idx[mid].name, x->idx[mid].len, buf, bl);
        if (r == 0) {
            if (which) *which = x->idx[mid].i;
            return &x->z->e[x->idx[mid].i];
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void member_where(const tz *x, const pp_zip_entry *e, char *w, size_t cap)
{
    snprintf(w, cap, "%s!%.*s", x->z->where, (int)(e->namelen > 200 ? 200 : e->namelen), e->name);
}

static uint64_t zoff(const pp_zip *z, uint64_t off)
{
    return z->base == PP_NO_OFFSET ? off : z->base + off;
}

/* A small text record (version, byteorder): read and trimmed. PP_E_BAD_VALUE when it is too big
 * or unreadable (the reason is recorded by pp_zip_read), PP_E_NOMEM. */
static pp_err read_small(tz *x, const pp_zip_entry *e, const uint8_t **p, size_t *n)
{
    uint64_t fo;
    if (e->usize > 64) return PP_E_BAD_VALUE;
    pp_err rc = pp_zip_read(x->c, x->z, e, p, n, &fo);
    if (rc) return rc == PP_E_NOMEM ? rc : PP_E_BAD_VALUE;
    while (*n && ((*p)[*n - 1] == '\n' || (*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\r' ||
                  (*p)[*n - 1] == '\t'))
        (*n)--;
    return PP_OK;
}

static pp_err zip_body(tz *x, pp_torch *t)
{
    pp_scan_ctx *c = x->c;
    const pp_zip *z = x->z;
    char w[PP_MAX_WHERE];
    pp_err rc;
    /* the prefix: the first entry's name up to its first '/' (PyTorchStreamReader::init) */
    const pp_zip_entry *e0 = &z->e[0];
    const char *sl = memchr(e0->name, '/', e0->namelen);
    if (!sl) {
        member_where(x, e0, w, sizeof w);
        pp_ctx_error(c, PP_E_BAD_VALUE, zoff(z, e0->local_offset), w,
                     "the first entry is not in a directory; torch.load refuses the archive");
        return PP_OK;
    }
    x->prefix = e0->name;
    x->plen = (size_t)(sl - e0->name) + 1;
    /* every entry under the prefix (getAllRecords, run by torch.load before unpickling) */
    for (size_t i = 0; i < z->n; i++)
        if (z->e[i].namelen < x->plen || memcmp(z->e[i].name, x->prefix, x->plen) != 0) {
            member_where(x, &z->e[i], w, sizeof w);
            pp_ctx_error(c, PP_E_BAD_VALUE, zoff(z, z->e[i].local_offset), w,
                         "entry is not under the archive prefix '%.*s'", (int)x->plen, x->prefix);
            break;
        }
    /* names equal but for ASCII case are the same record to miniz's lookup */
    for (size_t i = 0; i + 1 < z->n; i++) {
        const pp_zip_entry *a = &z->e[x->idx[i].i], *b = &z->e[x->idx[i + 1].i];
        if (cmp_ci(a->name, a->namelen, b->name, b->namelen) == 0) {
            member_where(x, b, w, sizeof w);
            pp_ctx_error(c, PP_E_BAD_VALUE, zoff(z, b->local_offset), w,
                         "two entries differ only in case; torch's lookup cannot tell them "
                         "apart");
            break;
        }
    }
    /* TorchScript: torch.load dispatches to torch.jit.load, which compiles code/ */
    bool script = false;
    for (size_t i = 0; i < z->n && !script; i++) {
        size_t bl;
        const char *b = base_name(z->e[i].name, z->e[i].namelen, &bl);
        if (eq_ci(b, bl, "constants.pkl")) {
            script = true;
            member_where(x, &z->e[i], w, sizeof w);
            if ((rc = pp_ctx_finding(c, "torchscript", "critical", zoff(z, z->e[i].local_offset), w,
                                     "a TorchScript archive: torch.load runs torch.jit.load, "
                                     "which compiles and runs the archive's code")))
                return rc;
        }
    }
    /* its code/ holds TorchScript source, not pickles: refused above, not scanned */
    for (size_t i = 0; script && i < z->n; i++)
        if (z->e[i].namelen > x->plen + 5 && memcmp(z->e[i].name, x->prefix, x->plen) == 0 &&
            cmp_ci(z->e[i].name + x->plen, 5, "code/", 5) == 0)
            x->known[i] = true;
    /* version (torch >= 1.6: "version" or ".data/version"), a decimal in 1..10 */
    size_t wi;
    const pp_zip_entry *ve = find_rec(x, ".data/version", 13, &wi);
    if (ve) x->known[wi] = true;
    const pp_zip_entry *v2 = find_rec(x, "version", 7, &wi);
    if (v2) x->known[wi] = true;
    if (!ve) ve = v2;
    const uint8_t *p;
    size_t n;
    if (!ve) {
        pp_ctx_error(c, PP_E_BAD_VALUE, zoff(z, 0), z->where,
                     "no version record; torch.load refuses the archive");
    } else if ((rc = read_small(x, ve, &p, &n)) == PP_E_NOMEM) {
        return rc;
    } else if (rc || n == 0 || n > 2 || p[0] < '1' || p[0] > '9' ||
               (n == 2 && (p[0] != '1' || p[1] != '0'))) {
        member_where(x, ve, w, sizeof w);
        pp_ctx_error(c, PP_E_BAD_VALUE, zoff(z, ve->data_offset), w,
                     "the version record is not a number from 1 to 10");
    }
    const pp_zip_entry *bo = find_rec(x, "byteorder", 9, &wi);
    if (bo) {
        x->known[wi] = true;
        member_where(x, bo, w, sizeof w);
        if ((rc = read_small(x, bo, &p, &n)) == PP_E_NOMEM) return rc;
        if (rc ||
            !((n == 6 && memcmp(p, "little", 6) == 0) || (n == 3 && memcmp(p, "big", 3) == 0)))
            pp_ctx_error(c, PP_E_BAD_VALUE, zoff(z, bo->data_offset), w,
                         "byteorder is neither 'little' nor 'big'");
        else if (n == 3)
            pp_ctx_error(c, PP_E_UNSUPPORTED, zoff(z, bo->data_offset), w,
                         "big-endian storages are not supported");
    }
    static const char *const meta[] = {".data/serialization_id", ".format_version",
                                       ".storage_alignment"};
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++)
        if (find_rec(x, meta[i], strlen(meta[i]), &wi)) x->known[wi] = true;
    /* storage records data/<key>: located, never read (except deflated: size proven) */
    for (size_t i = 0; i < z->n; i++) {
        const pp_zip_entry *e = &z->e[i];
        if (e->namelen <= x->plen + 5 || cmp_ci(e->name + x->plen, 5, "data/", 5) != 0 ||
            memcmp(e->name, x->prefix, x->plen) != 0)
            continue;
        const char *key = e->name + x->plen + 5;
        size_t klen = e->namelen - x->plen - 5;
        if (memchr(key, '/', klen)) continue;
        x->known[i] = true;
        member_where(x, e, w, sizeof w);
        uint64_t nbytes = e->csize, fo = PP_NO_OFFSET;
        if (e->method == 0) {
            /* hostile: only csize bytes are proven inside the archive */
            if (e->usize != e->csize) {
                pp_ctx_error(c, PP_E_BAD_VALUE, zoff(z, e->local_offset), w,
                             "stored zip member sizes differ (%llu vs %llu)",
                             (unsigned long long)e->csize, (unsigned long long)e->usize);
                continue;
            }
            fo = zoff(z, e->data_offset);
        } else {
            size_t got;
            if ((rc = pp_zip_read(c, z, e, &p, &got, &fo)) != PP_OK) {
                if (rc == PP_E_NOMEM || rc == PP_E_LIMIT) return rc == PP_E_NOMEM ? rc : PP_OK;
                continue;
            }
            nbytes = got;
            fo = PP_NO_OFFSET;
        }
        /* hostile: the key from the pickle is compared exactly; miniz would also match it in
         * another case, which only matters for letters, and torch.save writes digits */
        rc = pp_torch_add_record(t, (const uint8_t *)key, klen, nbytes, 0, fo, w);
        if (rc == PP_E_NOMEM) return rc; /* PP_E_BAD_VALUE: a case twin, reported above */
    }
    /* data.pkl: the object */
    const pp_zip_entry *de = find_rec(x, "data.pkl", 8, &wi);
    if (de) {
        x->known[wi] = true;
        member_where(x, de, w, sizeof w);
        uint64_t fo;
        if ((rc = pp_zip_read(c, z, de, &p, &n, &fo)) == PP_E_NOMEM) return rc;
        if (rc == PP_OK) {
            /* torch reads one pickle; more after STOP are scanned and reported too */
            rc = pp_torch_stream(t, p, n, fo, w, true, false, NULL);
            if (rc == PP_E_NOMEM) return rc;
        }
    } else {
        pp_ctx_error(c, PP_E_BAD_VALUE, zoff(z, 0), z->where, "no %.*sdata.pkl record",
                     (int)x->plen, x->prefix);
    }
    /* everything else: other pickles (data.pkl in another directory, constants.pkl...) and
     * members of unknown purpose, scanned by content */
    for (size_t i = 0; i < z->n; i++) {
        const pp_zip_entry *e = &z->e[i];
        if (x->known[i] || (e->namelen && e->name[e->namelen - 1] == '/' && e->usize == 0))
            continue;
        member_where(x, e, w, sizeof w);
        if ((rc = pp_ctx_finding(c, "torch-extra-pickle", "info", zoff(z, e->local_offset), w,
                                 "member is not part of the PyTorch format; scanned as a pickle "
                                 "or nested container")))
            return rc;
        uint64_t fo;
        if ((rc = pp_zip_read(c, z, e, &p, &n, &fo)) != PP_OK) {
            if (rc == PP_E_NOMEM || rc == PP_E_LIMIT) return rc == PP_E_NOMEM ? rc : PP_OK;
            continue;
        }
        if ((rc = pp_ctx_scan_any(c, p, n, fo, w)) == PP_E_NOMEM) return rc;
    }
    return pp_torch_finish(t);
}

pp_err pp_container_torch_zip(pp_scan_ctx *c, const pp_zip *z)
{
    pp_ctx_set_container(c, "pytorch/zip");
    if (z->n == 0)
        return pp_ctx_error(c, PP_E_BAD_VALUE, zoff(z, 0), z->where,
                            "the archive has no entries") == PP_E_NOMEM
                   ? PP_E_NOMEM
                   : PP_OK;
    tz x = {.c = c, .z = z};
    pp_torch *t = NULL;
    pp_err rc = PP_E_NOMEM;
    x.idx = pp_malloc(z->n * sizeof *x.idx);
    x.known = pp_calloc(z->n, sizeof *x.known);
    if (!x.idx || !x.known || pp_torch_new(c, false, &t)) goto out;
    for (size_t i = 0; i < z->n; i++)
        x.idx[i] = (sorted){z->e[i].name, z->e[i].namelen, i};
    qsort(x.idx, z->n, sizeof *x.idx, cmp_sorted);
    rc = zip_body(&x, t);
out:
    pp_torch_free(t);
    pp_free(x.idx);
    pp_free(x.known);
    return rc;
}
