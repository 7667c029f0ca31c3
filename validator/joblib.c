/* joblib files as joblib.load (1.2) reads them: the "ZF" zfile of joblib < 0.10, a compressed
 * stream chosen by its first bytes in joblib's order, or a pickle read by pickle._Unpickler whose
 * BUILD of a NumpyArrayWrapper reads the array bytes that follow straight from the file.
 *
 * Plain pickle or joblib? Both loaders read an uncompressed file, and the bytes do not say which
 * one will. A walk over the opcode arguments first proves most plain pickles cannot even name a
 * wrapper class (may_wrap); otherwise we read the stream the way joblib would, on a private graph.
 * If no BUILD made an array wrapper read anything, joblib and pickle.load consume the same opcodes
 * (they only differ in the flavour rules the VM models, where one of them fails), so the file is
 * scanned exactly as a plain pickle (pp_container_pickle, unchanged). If a wrapper read array
 * bytes, the file is scanned as joblib reads it, and also read privately as pickle.load would:
 * pickle.load takes the array bytes for opcodes, which for a real joblib file fail at once (the
 * padding length byte is no opcode). If that reading imports, calls or builds anything past the
 * first array, the two loaders disagree about code and the file is rejected (finding
 * "joblib-pickle-divergence"), so neither choice can hide a payload from the other loader.
 *
 * Object-dtype arrays are a second, complete pickle read with pickle.load (C flavour) from the
 * same file handle. The VM cannot start a stream from inside a hook (the scan context's stream
 * table would move under the running VM), so the hook finds the nested pickle's end with a private
 * run, consumes exactly those bytes, and the stream is scanned into the shared graph right after
 * the outer one, named "<where>!array@<offset>". */
#include "container.h"

#include "arena.h"
#include "cursor.h"
#include "inflate.h"

#include <stdio.h>
#include <string.h>

#define BUFSZ 160

typedef enum wkind { W_NONE = 0, W_NUMPY, W_ND, W_ZND } wkind;

typedef struct pending {
    size_t off, n;
} pending;

/* What the BUILD hook needs; probes run with c == NULL and change nothing outside their graph. */
typedef struct jl {
    pp_scan_ctx *c;
    const pp_limits *lim;
    const uint8_t *data;
    size_t len;
    uint64_t vbase;     /* VM offset of data[0] */
    uint64_t file_base; /* file offset of data[0], PP_NO_OFFSET when decoded */
    const char *where;
    bool zf;           /* ZipNumpyUnpickler: only NDArrayWrapper is special */
    unsigned wrappers; /* wrapper BUILDs seen */
    uint64_t first_payload;
    bool any_payload; /* a wrapper read bytes: first_payload is set */
    pending *pend;
    size_t npend, pcap;
    /* old-format side files named by NDArrayWrapper/ZNDArrayWrapper, scanned after the stream */
    struct side {
        const uint8_t *name;
        size_t n;
        int kind;
        uint64_t off;
    } *side;
    size_t nside, sidecap;
} jl;

static bool zf_length(const uint8_t *h, size_t n, uint64_t *out);

/* ---- graph helpers -------------------------------------------------------------------------- */

/* The full "module.qualname" of a global, so dotted spellings compare equal. */
static bool glob_full(const pp_val *v, char *buf, size_t n)
{
    if (!pp_val_is(v, PP_N_GLOBAL)) return false;
    const pp_node *g = v->u.node;
    int k = snprintf(buf, n, "%.*s.%.*s", (int)g->u.glob.modlen, g->u.glob.module,
                     (int)g->u.glob.namelen, g->u.glob.name);
    return k > 0 && (size_t)k < n;
}

static bool is_glob(const pp_val *v, const char *full)
{
    char b[BUFSZ];
    return glob_full(v, b, sizeof b) && strcmp(b, full) == 0;
}

static bool str_is(const pp_val *v, const char *s)
{
    size_t n = strlen(s);
    return v->kind == PP_V_STR && v->u.s.n == n && memcmp(v->u.s.p, s, n) == 0;
}

/* Which joblib wrapper class a global is; -1 for a name that looks like one but is no spelling
 * we model (refused rather than guessed). */
static int class_kind(const pp_val *v)
{
    char b[BUFSZ];
    if (!glob_full(v, b, sizeof b)) return W_NONE;
    if (strcmp(b, "joblib.numpy_pickle.NumpyArrayWrapper") == 0) return W_NUMPY;
    if (strcmp(b, "joblib.numpy_pickle.NDArrayWrapper") == 0 ||
        strcmp(b, "joblib.numpy_pickle_compat.NDArrayWrapper") == 0)
        return W_ND;
    if (strcmp(b, "joblib.numpy_pickle.ZNDArrayWrapper") == 0 ||
        strcmp(b, "joblib.numpy_pickle_compat.ZNDArrayWrapper") == 0)
        return W_ZND;
    if (strstr(b, "ArrayWrapper")) return -1;
    return W_NONE;
}

/* Is the BUILD target an instance of a wrapper class? Instances come from NEWOBJ (protocol 2+),
 * copyreg._reconstructor(cls, object, None) (protocols 0-1) or copyreg.__newobj__(_ex__); none
 * of them runs __init__, so every attribute comes from BUILD states. */
static int target_kind(const pp_node *t)
{
    if (t->kind == PP_N_NEW) return class_kind(&t->u.call.fn);
    if (t->kind != PP_N_CALL) return W_NONE;
    const pp_val *fn = &t->u.call.fn;
    if (class_kind(fn) != W_NONE)
        return -1; /* Wrapper(...) runs __init__: not what joblib writes */
    if ((is_glob(fn, "copyreg._reconstructor") || is_glob(fn, "copyreg.__newobj__") ||
         is_glob(fn, "copyreg.__newobj_ex__")) &&
        t->u.call.nargs >= 1)
        return class_kind(&t->u.call.args[0]);
    /* hostile: any other call handed a wrapper class might make an instance of it */
    for (size_t i = 0; i < t->u.call.nargs; i++)
        if (class_kind(&t->u.call.args[i]) != W_NONE) return -1;
    return W_NONE;
}

/* The attributes a wrapper has after its BUILDs: for each name, the last value set. */
typedef struct attrs {
    pp_val subclass, shape, order, dtype, align, filename;
    bool has_subclass, has_shape, has_order, has_dtype, has_align, has_filename;
} attrs;

static void take_dict(attrs *a, const pp_val *d)
{
    const pp_node *n = d->u.node;
    /* seq holds key, value, key, value... */
    for (size_t i = 0; i + 1 < n->u.seq.n; i += 2) {
        const pp_val *k = &n->u.seq.v[i], *v = &n->u.seq.v[i + 1];
        if (str_is(k, "subclass"))
            a->subclass = *v, a->has_subclass = true;
        else if (str_is(k, "shape"))
            a->shape = *v, a->has_shape = true;
        else if (str_is(k, "order"))
            a->order = *v, a->has_order = true;
        else if (str_is(k, "dtype"))
            a->dtype = *v, a->has_dtype = true;
        else if (str_is(k, "numpy_array_alignment_bytes"))
            a->align = *v, a->has_align = true;
        else if (str_is(k, "filename"))
            a->filename = *v, a->has_filename = true;
    }
}

/* Python's truthiness for the Py unpickler's `if state:` (only what matters here). */
static bool nonempty(const pp_val *v)
{
    if (v->kind == PP_V_NONE) return false;
    if (pp_val_is(v, PP_N_DICT) || pp_val_is(v, PP_N_TUPLE)) return v->u.node->u.seq.n != 0;
    return true;
}

/* Collects the attributes from every BUILD on the node so far (BUILDs accumulate in __dict__).
 * Returns a reason when a state is not one the Py unpickler would apply as plain attributes. */
static const char *collect(const pp_node *t, attrs *a)
{
    memset(a, 0, sizeof *a);
    for (const pp_event *e = t->effects; e; e = e->next_on_node) {
        if (e->kind != PP_EV_BUILD) return "a wrapper was mutated by something other than BUILD";
        pp_val st = e->a, slot = pp_val_none();
        if (pp_val_is(&st, PP_N_TUPLE) && st.u.node->u.seq.n == 2) {
            slot = st.u.node->u.seq.v[1];
            st = st.u.node->u.seq.v[0];
        }
        if (nonempty(&st)) {
            if (!pp_val_is(&st, PP_N_DICT)) return "a wrapper BUILD state is not a dict";
            take_dict(a, &st);
        }
        if (nonempty(&slot)) {
            if (!pp_val_is(&slot, PP_N_DICT)) return "a wrapper BUILD slot state is not a dict";
            take_dict(a, &slot);
        }
    }
    return NULL;
}

/* The value a slot state gives __class__, or NULL. setattr(obj, '__class__', C) changes what
 * joblib's isinstance() test sees after the BUILD. */
static const pp_val *sets_class(const pp_val *state)
{
    if (!pp_val_is(state, PP_N_TUPLE) || state->u.node->u.seq.n != 2) return NULL;
    const pp_val *slot = &state->u.node->u.seq.v[1];
    if (!pp_val_is(slot, PP_N_DICT)) return NULL;
    const pp_node *d = slot->u.node;
    const pp_val *v = NULL;
    for (size_t i = 0; i + 1 < d->u.seq.n; i += 2)
        if (str_is(&d->u.seq.v[i], "__class__")) v = &d->u.seq.v[i + 1];
    return v;
}

/* ---- numpy.dtype ----------------------------------------------------------------------------- */

typedef struct dtinfo {
    uint64_t itemsize;
    bool object;
    char str[32];
} dtinfo;

static bool int_of(const pp_val *v, int64_t *out)
{
    if (v->kind != PP_V_INT) return false;
    *out = v->u.i;
    return true;
}

/* A dtype exactly as numpy's dtype(obj, False, True).__setstate__(state) makes it, for the plain
 * (non-structured) dtypes joblib writes; anything else is refused with a reason. */
#define DTYPE_DEPTH 8
#define DTYPE_VISITS 4096

static const char *dtype_at(const pp_val *dv, dtinfo *d, unsigned depth, unsigned *visits);

/* Whether a sub-dtype (a field's or a subarray's) holds objects. */
static const char *sub_object(const pp_val *dv, bool *obj, unsigned depth, unsigned *visits)
{
    dtinfo sub;
    const char *why = dtype_at(dv, &sub, depth + 1, visits);
    if (why) return why;
    *obj = *obj || sub.object;
    return NULL;
}

/* Structured (names + fields) and subarray parts of a state: only whether they hold objects
 * matters, since the item size is the state's elsize. */
static const char *composite(const pp_val *s, bool *obj, unsigned depth, unsigned *visits)
{
    const char *why;
    if (s[2].kind != PP_V_NONE) {
        if (!pp_val_is(&s[2], PP_N_TUPLE) || s[2].u.node->u.seq.n != 2)
            return "a subarray dtype is not (dtype, shape)";
        if ((why = sub_object(&s[2].u.node->u.seq.v[0], obj, depth, visits))) return why;
    }
    if ((s[3].kind == PP_V_NONE) != (s[4].kind == PP_V_NONE))
        return "a dtype has names without fields or fields without names";
    if (s[4].kind == PP_V_NONE) return NULL;
    if (!pp_val_is(&s[3], PP_N_TUPLE) || !pp_val_is(&s[4], PP_N_DICT))
        return "a structured dtype's names are not a tuple or its fields not a dict";
    const pp_node *f = s[4].u.node;
    for (size_t i = 0; i + 1 < f->u.seq.n; i += 2) {
        const pp_val *v = &f->u.seq.v[i + 1];
        if (!pp_val_is(v, PP_N_TUPLE) || v->u.node->u.seq.n < 2 || v->u.node->u.seq.n > 3)
            return "a structured dtype field is not (dtype, offset[, title])";
        if ((why = sub_object(&v->u.node->u.seq.v[0], obj, depth, visits))) return why;
    }
    return NULL;
}

static const char *dtype_of(const pp_val *dv, dtinfo *d)
{
    unsigned visits = 0;
    return dtype_at(dv, d, 0, &visits);
}

static const char *dtype_at(const pp_val *dv, dtinfo *d, unsigned depth, unsigned *visits)
{
    memset(d, 0, sizeof *d);
    /* hostile: shared sub-dtypes nested deeply would make the walk exponential */
    if (depth > DTYPE_DEPTH || ++*visits > DTYPE_VISITS) return "the dtype is nested too deeply";
    if (!(pp_val_is(dv, PP_N_CALL) || pp_val_is(dv, PP_N_NEW)))
        return "the dtype is not a numpy.dtype(...) object";
    const pp_node *n = dv->u.node;
    if (!is_glob(&n->u.call.fn, "numpy.dtype") || n->u.call.nargs < 1 || n->u.call.nargs > 3 ||
        (n->kind == PP_N_NEW && n->u.call.nkw != 0))
        return "the dtype is not a numpy.dtype(...) object";
    const pp_val *obj = &n->u.call.args[0];
    bool record = is_glob(obj, "numpy.record"); /* record dtypes: void, size from the state */
    if (!record && (obj->kind != PP_V_STR || obj->u.s.n < 2 || obj->u.s.n > 12))
        return "the dtype's type code is not a short string";
    char kind = record ? 'V' : (char)obj->u.s.p[0];
    uint64_t num = 0;
    for (size_t i = 1; !record && i < obj->u.s.n; i++) {
        uint8_t ch = obj->u.s.p[i];
        if (ch < '0' || ch > '9') return "the dtype's type code is not a letter and a number";
        num = num * 10 + (uint64_t)(ch - '0');
    }
    uint64_t size;
    bool flexible = false;
    switch (kind) {
    case 'b':
        size = num == 1 ? 1 : 0;
        break;
    case 'i':
    case 'u':
        size = num == 1 || num == 2 || num == 4 || num == 8 ? num : 0;
        break;
    case 'f':
        size = num == 2 || num == 4 || num == 8 || num == 16 ? num : 0;
        break;
    case 'c':
        size = num == 8 || num == 16 || num == 32 ? num : 0;
        break;
    case 'M':
    case 'm':
        size = num == 8 ? 8 : 0;
        break;
    case 'O':
        size = num == 8 ? 8 : 0;
        d->object = true;
        break;
    case 'S':
    case 'V':
        size = num;
        flexible = true;
        break;
    case 'U':
        if (num > UINT64_MAX / 4) return "the dtype's size overflows";
        size = num * 4;
        flexible = true;
        break;
    default:
        return "the dtype's kind is not one joblib writes";
    }
    if (size == 0 && !flexible) return "the dtype's size does not exist for its kind";
    char endian =
        (kind == 'b' || kind == 'O' || kind == 'S' || kind == 'V' || size == 1) ? '|' : '<';
    char unit[24] = "";
    /* the last BUILD wins: numpy's __setstate__ replaces everything it sets */
    const pp_val *state = NULL;
    for (const pp_event *e = n->effects; e; e = e->next_on_node) {
        if (e->kind != PP_EV_BUILD) return "the dtype was mutated";
        state = &e->a;
    }
    if (state) {
        if (!pp_val_is(state, PP_N_TUPLE)) return "the dtype state is not a tuple";
        const pp_node *t = state->u.node;
        int64_t version, elsize, align, flags;
        if (t->u.seq.n != 8 && t->u.seq.n != 9)
            return "the dtype state is not numpy's 8- or 9-tuple";
        const pp_val *s = t->u.seq.v;
        if (!int_of(&s[0], &version) || version != (t->u.seq.n == 9 ? 4 : 3))
            return "the dtype state version is not 3 or 4";
        if (!(str_is(&s[1], "<") || str_is(&s[1], ">") || str_is(&s[1], "|") || str_is(&s[1], "=")))
            return "the dtype byte order is not one of < > | =";
        endian = (char)s[1].u.s.p[0];
        if (endian == '=') endian = '<';
        bool inner = false;
        const char *why = composite(s, &inner, depth, visits);
        if (why) return why;
        if (inner && kind != 'V') return "a non-void dtype has fields";
        d->object = d->object || inner;
        if (!int_of(&s[5], &elsize) || !int_of(&s[6], &align) || !int_of(&s[7], &flags))
            return "the dtype state has non-integer sizes";
        if (flexible && elsize >= 0) {
            if (kind == 'U' && elsize % 4 != 0)
                return "the unicode dtype size is not a multiple of 4";
            size = (uint64_t)elsize;
        } else if (elsize != -1) {
            return "the dtype state sets a size for a fixed-size type";
        }
        /* NPY_ITEM_REFCOUNT: numpy would treat the items as objects */
        if ((flags & 1) != (d->object ? 1 : 0))
            return "the dtype's object flag disagrees with its kind";
        if (t->u.seq.n == 9 && (kind == 'M' || kind == 'm')) {
            const pp_val *md = &s[8];
            if (pp_val_is(md, PP_N_TUPLE) && md->u.node->u.seq.n == 2 &&
                pp_val_is(&md->u.node->u.seq.v[1], PP_N_TUPLE) &&
                md->u.node->u.seq.v[1].u.node->u.seq.n == 4) {
                const pp_val *u = md->u.node->u.seq.v[1].u.node->u.seq.v;
                int64_t mult;
                if (u[0].kind == PP_V_BYTES && u[0].u.s.n > 0 && u[0].u.s.n < 8 &&
                    int_of(&u[1], &mult) && mult > 0 && mult < 100000) {
                    if (mult == 1)
                        snprintf(unit, sizeof unit, "[%.*s]", (int)u[0].u.s.n, u[0].u.s.p);
                    else
                        snprintf(unit, sizeof unit, "[%lld%.*s]", (long long)mult, (int)u[0].u.s.n,
                                 u[0].u.s.p);
                }
            }
        }
    }
    if (flexible && size == 0) return "zero-size flexible dtype (joblib divides by the item size)";
    d->itemsize = size;
    snprintf(d->str, sizeof d->str, "%c%c%llu%s", endian, kind,
             (unsigned long long)(kind == 'U' ? size / 4 : size), unit);
    return NULL;
}

/* ---- the BUILD hook ------------------------------------------------------------------------- */

static pp_err add_pending(jl *j, size_t off, size_t n)
{
    if (j->npend == j->pcap) {
        size_t nc = j->pcap ? j->pcap * 2 : 4;
        pending *np = pp_realloc(j->pend, nc * sizeof *np);
        if (!np) return PP_E_NOMEM;
        j->pend = np;
        j->pcap = nc;
    }
    j->pend[j->npend].off = off;
    j->pend[j->npend].n = n;
    j->npend++;
    return PP_OK;
}

/* A sibling file named by an old-format wrapper: joblib opens dirname(main)/filename and loads it
 * with allow_pickle=True. A memory-buffer scan cannot open it, so it is never "safe". */
static pp_err sibling(jl *j, pp_vm_io *io, const attrs *a, int kind)
{
    if (!a->has_filename || a->filename.kind != PP_V_STR)
        return pp_vm_io_fail(io, PP_E_BAD_VALUE, "%s without a str filename",
                             kind == W_ND ? "NDArrayWrapper" : "ZNDArrayWrapper");
    const uint8_t *p = a->filename.u.s.p;
    size_t n = a->filename.u.s.n;
    int shown = (int)(n > 100 ? 100 : n);
    bool plain = n > 0 && !memchr(p, '/', n) && !memchr(p, 0, n) && !(n == 1 && p[0] == '.') &&
                 !(n == 2 && p[0] == '.' && p[1] == '.');
    if (!j->c) return PP_OK;
    uint64_t off = pp_vm_io_offset(io);
    if (!plain) {
        /* hostile: os.path.join(dirname, name) with '/' or '..' reaches outside the directory */
        if (pp_ctx_finding(j->c, "joblib-sibling-escape", "critical", off, j->where,
                           "old-format joblib array file '%.*s' is outside the pickle's directory",
                           shown, p) == PP_E_NOMEM)
            return PP_E_NOMEM;
        return PP_OK;
    }
    if (pp_ctx_finding(j->c, "joblib-sibling-file", "info", off, j->where,
                       "old-format joblib array file '%.*s' is loaded with allow_pickle=True; "
                       "it is scanned too",
                       shown, p) == PP_E_NOMEM)
        return PP_E_NOMEM;
    /* Scanned after the stream: a hook must not start streams while the VM runs. */
    if (j->nside == j->sidecap) {
        size_t nc = j->sidecap ? j->sidecap * 2 : 4;
        struct side *ns = pp_realloc(j->side, nc * sizeof *ns);
        if (!ns) return PP_E_NOMEM;
        j->side = ns;
        j->sidecap = nc;
    }
    j->side[j->nside++] = (struct side){p, n, kind, off};
    return PP_OK;
}

/* The side files, as joblib's compatibility readers load them: NDArrayWrapper through np.load
 * with allow_pickle=True (so an .npy, an .npz or a pickle: detection decides the same way), and
 * ZNDArrayWrapper as a zfile of raw array bytes (data only, never unpickled). */
static pp_err scan_side(jl *j)
{
    for (size_t i = 0; i < j->nside; i++) {
        const struct side *sd = &j->side[i];
        char name[256], where[PP_MAX_WHERE];
        size_t nn = sd->n < sizeof name ? sd->n : sizeof name - 1;
        memcpy(name, sd->name, nn);
        name[nn] = 0;
        if (snprintf(where, sizeof where, "%s!%s", j->where, name) >= (int)sizeof where)
            where[sizeof where - 1] = 0; /* a long path: the report shows its start */
        const uint8_t *d = NULL;
        size_t len = 0;
        pp_err e = pp_ctx_open_sibling(j->c, name, where, &d, &len);
        if (e == PP_E_NOMEM) return e;
        if (e) continue; /* recorded: missing, not a plain file, or no directory to look in */
        if (sd->kind == W_ND) {
            if (pp_ctx_scan_any(j->c, d, len, PP_NO_OFFSET, where) == PP_E_NOMEM) return PP_E_NOMEM;
            continue;
        }
        uint64_t claim = 0;
        if (len < 21 || d[0] != 'Z' || d[1] != 'F' || !zf_length(d + 2, 19, &claim)) {
            if (pp_ctx_error(j->c, PP_E_BAD_VALUE, 0, where,
                             "array file '%s' is not a joblib zfile", name) == PP_E_NOMEM)
                return PP_E_NOMEM;
            continue;
        }
        size_t skip = len > 21 && d[21] == ' ' ? 22 : 21;
        const pp_limits *lim = j->lim;
        uint8_t *out = NULL;
        size_t outn = 0;
        pp_limit_id which = PP_LIMIT_INFLATED_BYTES;
        char why[160];
        e = pp_inflate(PP_Z_ZLIB, d + skip, len - skip, lim->v[PP_LIMIT_INFLATED_BYTES],
                       lim->v[PP_LIMIT_INFLATE_RATIO], &out, &outn, NULL, &which, why, sizeof why);
        if (e == PP_E_NOMEM) return e;
        if (e == PP_E_LIMIT) {
            if (pp_ctx_limit(j->c, which, 0, where) == PP_E_NOMEM) return PP_E_NOMEM;
            continue;
        }
        if (e || outn != claim) {
            pp_free(out);
            if (pp_ctx_error(j->c, e ? e : PP_E_BAD_VALUE, 0, where,
                             "array file '%s': %s", name,
                             e ? why : "length differs from its zfile header") == PP_E_NOMEM)
                return PP_E_NOMEM;
            continue;
        }
        if (pp_ctx_inflated(j->c, outn, where) == PP_E_LIMIT) {
            pp_free(out);
            continue;
        }
        pp_array_region r;
        memset(&r, 0, sizeof r);
        r.where = where;
        r.file_offset = PP_NO_OFFSET;
        r.nbytes = outn;
        r.order = 'C';
        pp_free(out); /* raw data: located and measured, never parsed */
        if (pp_ctx_region(j->c, &r, NULL) == PP_E_NOMEM) return PP_E_NOMEM;
    }
    return PP_OK;
}

/* The nested pickle of an object array: find where pickle.load stops, privately. */
static pp_err nested(jl *j, pp_vm_io *io, size_t pos)
{
    pp_graph g;
    pp_err e = pp_graph_init(&g, j->lim->v[PP_LIMIT_GRAPH_MEMORY]);
    if (e) return e;
    pp_vm_options vo = {
        .flavor = PP_FLAVOR_C, .encoding = PP_ENC_ASCII, .limits = j->lim, .stream_name = "probe"};
    pp_stream_result r;
    pp_error err;
    pp_error_clear(&err);
    e = pp_vm_run(&g, j->data + pos, j->len - pos, j->vbase + pos, &vo, &r, &err);
    pp_graph_free(&g);
    if (e == PP_E_NOMEM) return e;
    if (e != PP_OK) {
        /* scanned for real after the outer stream, where it fails the same way */
        if (add_pending(j, pos, j->len - pos)) return PP_E_NOMEM;
        return pp_vm_io_fail(io, e, "the object array's pickle at offset %llu fails: %s",
                             (unsigned long long)(j->vbase + pos), err.msg);
    }
    size_t n = (size_t)(r.end - (j->vbase + pos));
    const uint8_t *p;
    if ((e = pp_vm_io_take(io, n, &p))) return e;
    return add_pending(j, pos, n);
}

static pp_err after_build(void *ctx, pp_vm_io *io, pp_node *target, pp_val state)
{
    jl *j = ctx;
    /* refusals below count as wrappers, so the file is read the joblib way and the refusal is
     * reported, rather than falling back to the plain reading */
    const pp_val *cls = sets_class(&state);
    /* hostile: a wrapper turned into something else, or anything turned into a class that might
     * be a wrapper, would make joblib read (or not read) array bytes where the graph says not */
    if (cls &&
        (target_kind(target) != W_NONE ||
         (cls->kind == PP_V_NODE && !(pp_val_is(cls, PP_N_GLOBAL) && class_kind(cls) == W_NONE)))) {
        j->wrappers++;
        return pp_vm_io_fail(io, PP_E_UNSUPPORTED, "BUILD sets __class__ through a slot state");
    }
    int kind = target_kind(target);
    if (kind == W_NONE || (j->zf && kind == W_NUMPY)) return PP_OK;
    if (kind < 0) {
        j->wrappers++;
        return pp_vm_io_fail(io, PP_E_UNSUPPORTED,
                             "a joblib array wrapper made in a way joblib does not write");
    }
    attrs a;
    const char *why = collect(target, &a);
    if (why) return pp_vm_io_fail(io, PP_E_UNSUPPORTED, "%s", why);
    j->wrappers++;
    if (kind == W_ND || kind == W_ZND) return sibling(j, io, &a, kind);

    /* NumpyArrayWrapper.read: the attributes joblib uses, each proven */
    if (!a.has_subclass ||
        !(is_glob(&a.subclass, "numpy.ndarray") || is_glob(&a.subclass, "numpy.memmap") ||
          is_glob(&a.subclass, "numpy.matrix")))
        return pp_vm_io_fail(io, PP_E_UNSUPPORTED,
                             "array wrapper subclass is not numpy.ndarray, memmap or matrix");
    char order;
    if (a.has_order && str_is(&a.order, "C"))
        order = 'C';
    else if (a.has_order && str_is(&a.order, "F"))
        order = 'F';
    else
        return pp_vm_io_fail(io, PP_E_UNSUPPORTED, "array wrapper order is not 'C' or 'F'");
    if (!a.has_dtype) return pp_vm_io_fail(io, PP_E_BAD_VALUE, "array wrapper without a dtype");
    dtinfo dt;
    if ((why = dtype_of(&a.dtype, &dt)))
        return pp_vm_io_fail(io, PP_E_UNSUPPORTED, "array wrapper dtype: %s", why);
    if (!a.has_shape || !(pp_val_is(&a.shape, PP_N_TUPLE) || pp_val_is(&a.shape, PP_N_LIST)))
        return pp_vm_io_fail(io, PP_E_UNSUPPORTED, "array wrapper shape is not a tuple");
    const pp_node *sh = a.shape.u.node;
    if (sh->u.seq.n > PP_MAX_NDIM)
        return pp_vm_io_fail(io, PP_E_UNSUPPORTED, "array wrapper has %zu dimensions", sh->u.seq.n);
    pp_array_region reg;
    memset(&reg, 0, sizeof reg);
    uint64_t count = 1;
    for (size_t i = 0; i < sh->u.seq.n; i++) {
        int64_t d;
        /* hostile: negative or overflowing dimensions (joblib's int64 product would wrap) */
        if (!int_of(&sh->u.seq.v[i], &d) || d < 0)
            return pp_vm_io_fail(io, PP_E_BAD_VALUE, "array dimension %zu is not an int >= 0", i);
        if (d != 0 && count > UINT64_MAX / (uint64_t)d)
            return pp_vm_io_fail(io, PP_E_BAD_VALUE, "array shape overflows");
        count *= (uint64_t)d;
        reg.shape[i] = (uint64_t)d;
    }
    reg.ndim = (uint32_t)sh->u.seq.n;
    uint64_t pos = pp_vm_io_offset(io) - j->vbase;
    pp_node *arr = pp_vm_io_new_node(io, PP_N_ARRAY);
    if (!arr) return pp_vm_io_fail(io, PP_E_NOMEM, "out of memory");
    arr->u.array.region = UINT64_MAX;
    arr->u.array.start = j->vbase + pos; /* an object array: its pickle's stream starts here */
    arr->u.array.wrapper = target;
    pp_err e;
    const uint8_t *p;
    if (dt.object) {
        /* no padding: a complete pickle, read by pickle.load from the same handle */
        if ((e = nested(j, io, (size_t)pos))) return e;
        return pp_vm_io_replace_top(io, pp_val_node(arr));
    }
    /* pickle.load reading this file would meet these bytes as opcodes (an object array's pickle
     * it would read as the pickle it is, which is scanned as such) */
    if (!j->any_payload) {
        j->any_payload = true;
        j->first_payload = j->vbase + pos;
    }
    if (a.has_align && a.align.kind != PP_V_NONE) {
        /* one length byte, then that many bytes joblib skips without looking */
        if ((e = pp_vm_io_take(io, 1, &p))) return e;
        uint8_t pad = p[0];
        if (pad && (e = pp_vm_io_take(io, pad, &p))) return e;
    }
    /* hostile: dtype x shape is a claim; proven against the bytes by pp_vm_io_take */
    if (count > UINT64_MAX / dt.itemsize)
        return pp_vm_io_fail(io, PP_E_BAD_VALUE, "array size overflows");
    uint64_t nbytes = count * dt.itemsize;
    uint64_t start = pp_vm_io_offset(io) - j->vbase;
    if ((e = pp_vm_io_take(io, nbytes, &p))) return e;
    if (j->c) {
        reg.where = (char *)(uintptr_t)j->where;
        reg.offset = start;
        reg.file_offset = j->file_base == PP_NO_OFFSET ? PP_NO_OFFSET : j->file_base + start;
        reg.nbytes = nbytes;
        snprintf(reg.dtype, sizeof reg.dtype, "%s", dt.str);
        reg.order = order;
        if (pp_ctx_region_ex(j->c, &reg, p, NULL, 0, &arr->u.array.region))
            return pp_vm_io_fail(io, PP_E_NOMEM, "out of memory");
    }
    return pp_vm_io_replace_top(io, pp_val_node(arr));
}

/* ---- streams --------------------------------------------------------------------------------- */

static void jl_init(jl *j, pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                    const char *where, bool zf)
{
    memset(j, 0, sizeof *j);
    j->c = c;
    j->lim = &pp_ctx_options(c)->limits;
    j->data = data;
    j->len = len;
    j->vbase = base == PP_NO_OFFSET ? 0 : base;
    j->file_base = base;
    j->where = where;
    j->zf = zf;
}

/* A private run over a fresh graph: how joblib (hooks) or pickle.load (no hooks) reads data.
 * *after receives whether the run made any event at or past `mark`. */
static pp_err probe(jl *j, pp_flavor fl, bool hooks, uint64_t mark, bool *after)
{
    pp_graph g;
    pp_err e = pp_graph_init(&g, j->lim->v[PP_LIMIT_GRAPH_MEMORY]);
    if (e) return e;
    pp_scan_ctx *saved = j->c;
    j->c = NULL;
    pp_vm_hooks h = {.ctx = j, .after_build = after_build};
    pp_vm_options vo = {.flavor = fl,
                        .encoding = PP_ENC_ASCII,
                        .limits = j->lim,
                        .stream_name = "probe",
                        .hooks = hooks ? &h : NULL};
    pp_stream_result r;
    pp_error err;
    pp_error_clear(&err);
    e = pp_vm_run(&g, j->data, j->len, j->vbase, &vo, &r, &err);
    if (after) {
        *after = false;
        for (const pp_event *ev = g.events; ev; ev = ev->next)
            if (ev->offset >= mark) *after = true;
    }
    pp_graph_free(&g);
    j->c = saved;
    j->npend = 0;
    return e == PP_E_NOMEM ? e : PP_OK;
}

static pp_err scan_nested(jl *j)
{
    pp_stream_opts so = {.flavor = PP_FLAVOR_C, .encoding = PP_ENC_ASCII, .single = true};
    for (size_t i = 0; i < j->npend; i++) {
        char nm[PP_MAX_WHERE];
        snprintf(nm, sizeof nm, "%s!array@%llu", j->where,
                 (unsigned long long)(j->vbase + j->pend[i].off));
        uint64_t b = j->file_base == PP_NO_OFFSET ? PP_NO_OFFSET : j->file_base + j->pend[i].off;
        if (b == PP_NO_OFFSET) b = j->vbase + j->pend[i].off; /* offsets in the decoded stream */
        if (pp_ctx_stream(j->c, j->data + j->pend[i].off, j->pend[i].n, b, nm, &so, NULL) ==
            PP_E_NOMEM)
            return PP_E_NOMEM;
    }
    return PP_OK;
}

/* The joblib reading of data[0..len) into the shared graph, then its object arrays, then what
 * follows the pickle (joblib never reads it; other loaders might). */
static pp_err scan_joblib(jl *j, const char *name)
{
    pp_vm_hooks h = {.ctx = j, .after_build = after_build};
    pp_stream_opts so = {
        .flavor = PP_FLAVOR_PY, .encoding = PP_ENC_ASCII, .hooks = &h, .allow_trailing = true};
    size_t end = j->len;
    pp_err e = pp_ctx_stream(j->c, j->data, j->len, j->vbase, name, &so, &end);
    if (e == PP_E_NOMEM || scan_nested(j) == PP_E_NOMEM || scan_side(j) == PP_E_NOMEM)
        return PP_E_NOMEM;
    if (e == PP_OK && end < j->len) {
        char nm[PP_MAX_WHERE];
        snprintf(nm, sizeof nm, "%s#1", name);
        pp_stream_opts plain = {.flavor = PP_FLAVOR_C, .encoding = PP_ENC_ASCII};
        if (pp_ctx_stream(j->c, j->data + end, j->len - end, j->vbase + end, nm, &plain, NULL) ==
            PP_E_NOMEM)
            return PP_E_NOMEM;
    }
    return PP_OK;
}

static pp_err done(pp_err e)
{
    return e == PP_E_NOMEM ? e : PP_OK;
}

static bool has_text(const uint8_t *p, size_t n, bool escapes)
{
    static const char name[] = "ArrayWrapper";
    return memmem(p, n, name, sizeof name - 1) != NULL || (escapes && memchr(p, '\\', n));
}

/* Could the first pickle of data name a joblib wrapper class? A class is found by name, and
 * names reach find_class only as text the stream spells: GLOBAL/INST lines and str payloads,
 * where "ArrayWrapper" appears literally, unless a UNICODE or STRING argument builds it from
 * backslash escapes. This walk over opcode arguments (no graph, no allocation) lets plain pickles
 * skip the private joblib reading. Anything it cannot walk says "maybe". */
static bool may_wrap(const uint8_t *d, size_t n)
{
    pp_cursor c;
    pp_cursor_init(&c, d, n, 0);
    for (;;) {
        uint8_t op;
        if (!pp_cursor_u8(&c, &op)) return true;
        const pp_opdef *def = pp_vm_opdef(op);
        if (!def || !def->name) return true;
        if (op == '.') return false;
        const uint8_t *p;
        size_t ln;
        uint64_t len = 0;
        bool esc = op == 'S' || op == 'V';
        static const uint8_t fixed[] = {[PP_ARG_U1] = 1, [PP_ARG_U2] = 2, [PP_ARG_I4] = 4,
                                        [PP_ARG_U4] = 4, [PP_ARG_U8] = 8, [PP_ARG_F8] = 8};
        switch (def->argkind) {
        case PP_ARG_NONE:
            break;
        case PP_ARG_U1:
        case PP_ARG_U2:
        case PP_ARG_I4:
        case PP_ARG_U4:
        case PP_ARG_U8:
        case PP_ARG_F8:
            if (!pp_cursor_take(&c, fixed[def->argkind], &p)) return true;
            break;
        case PP_ARG_LINE2: /* module line, then name line */
            if (!pp_cursor_line(&c, &p, &ln) || has_text(p, ln, false) ||
                !pp_cursor_line(&c, &p, &ln) || has_text(p, ln, false))
                return true;
            break;
        case PP_ARG_LINE:
            if (!pp_cursor_line(&c, &p, &ln) || has_text(p, ln, esc)) return true;
            break;
        case PP_ARG_LEN1:
        case PP_ARG_LEN4:
        case PP_ARG_LEN8:
            if (!pp_cursor_le(&c,
                              def->argkind == PP_ARG_LEN1   ? 1
                              : def->argkind == PP_ARG_LEN4 ? 4
                                                            : 8,
                              &len) ||
                !pp_cursor_take(&c, len, &p))
                return true;
            /* bytes never name a class (STACK_GLOBAL takes str only), and they are where array
             * payloads sit: not searched */
            if (op != 'B' && op != 'C' && op != 0x8e && op != 0x96 && has_text(p, (size_t)len, false))
                return true;
            break;
        default:
            return true;
        }
    }
}

static pp_err raw(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base, const char *where)
{
    if (!may_wrap(data, len)) return pp_container_pickle(c, data, len, base, where);
    jl j;
    jl_init(&j, c, data, len, base, where, false);
    pp_err e = probe(&j, PP_FLAVOR_PY, true, 0, NULL);
    if (e == PP_OK && j.wrappers == 0) {
        pp_free(j.pend);
    pp_free(j.side);
        return pp_container_pickle(c, data, len, base, where);
    }
    uint64_t first = j.first_payload;
    bool array_read = j.any_payload;
    j.wrappers = 0;
    j.any_payload = false;
    if (e == PP_OK) {
        pp_ctx_set_container(c, "joblib");
        e = scan_joblib(&j, where);
    }
    if (e == PP_OK && array_read) {
        bool diverges = false;
        e = probe(&j, PP_FLAVOR_C, false, first, &diverges);
        if (e == PP_OK && diverges)
            e = pp_ctx_finding(c, "joblib-pickle-divergence", "high", first, where,
                               "pickle.load would read the array bytes at offset %llu as "
                               "opcodes that import, call or build objects",
                               (unsigned long long)first);
    }
    pp_free(j.pend);
    pp_free(j.side);
    return done(e);
}

/* ---- compressed files ------------------------------------------------------------------------ */

static pp_err decoded(pp_scan_ctx *c, pp_zkind kind, const uint8_t *src, size_t n, uint64_t base,
                      size_t skip, const char *where, bool zf, uint64_t claim)
{
    uint64_t fb = base == PP_NO_OFFSET ? 0 : base; /* file offset of src[0], for errors */
    const pp_limits *lim = &pp_ctx_options(c)->limits;
    char name[PP_MAX_WHERE];
    snprintf(name, sizeof name, "%s(%s)", where, zf ? "zfile" : pp_zkind_name(kind));
    if (!pp_inflate_supported(kind)) {
        /* never "safe": the rule names the compressor for scripts, the error fails the file */
        if (pp_ctx_finding(c, "unsupported-compression", "medium", 0, where,
                           "%s decompression is not compiled in",
                           pp_zkind_name(kind)) == PP_E_NOMEM)
            return PP_E_NOMEM;
        return done(pp_ctx_error(c, PP_E_UNSUPPORTED, 0, where,
                                 "joblib file compressed with %s, which is not compiled in",
                                 pp_zkind_name(kind)));
    }
    uint8_t *out = NULL;
    size_t outn = 0, used = 0;
    pp_limit_id lid = PP_LIMIT_INFLATED_BYTES;
    char why[160];
    pp_err e = pp_inflate_prefix(kind, src + skip, n - skip, lim->v[PP_LIMIT_INFLATED_BYTES],
                                 lim->v[PP_LIMIT_INFLATE_RATIO], &out, &outn, &used, &lid, why,
                                 sizeof why);
    if (e == PP_E_NOMEM) return PP_E_NOMEM;
    if (out && pp_ctx_keep(c, out)) return PP_E_NOMEM;
    if (e == PP_E_LIMIT)
        pp_ctx_limit(c, lid, fb + skip, where);
    else if (e != PP_OK)
        pp_ctx_error(c, e, fb + skip + used, where, "%s", why);
    if (zf && e == PP_OK) {
        /* read_zfile: zlib.decompress needs the whole stream, then asserts the length */
        if (outn != claim) {
            pp_ctx_error(c, PP_E_BAD_VALUE, 0, where,
                         "zfile header says %llu bytes, the stream holds %zu",
                         (unsigned long long)claim, outn);
            return PP_OK;
        }
    }
    if (zf && e != PP_OK) return PP_OK; /* zlib.decompress fails before anything is unpickled */
    if (e == PP_OK && skip + used < n && !zf)
        if (pp_ctx_finding(c, "trailing-data", "medium", fb + skip + used, where,
                           "%zu bytes after the %s stream", n - skip - used,
                           pp_zkind_name(kind)) == PP_E_NOMEM)
            return PP_E_NOMEM;
    if (e == PP_OK && pp_ctx_inflated(c, outn, where) != PP_OK) return PP_OK;
    if (!out) return PP_OK;
    jl j;
    jl_init(&j, c, out, outn, PP_NO_OFFSET, name, zf);
    e = scan_joblib(&j, name);
    pp_free(j.pend);
    pp_free(j.side);
    return done(e);
}

/* hostile: the zfile length is hex text; Python's int(s, 16) also takes spaces around it, a sign,
 * a 0x prefix and underscores. We accept what write_zfile writes: "0x" hex digits, spaces. */
static bool zf_length(const uint8_t *h, size_t n, uint64_t *out)
{
    size_t i = 0;
    while (i < n && h[i] == ' ')
        i++;
    if (i + 2 > n || h[i] != '0' || (h[i + 1] != 'x' && h[i + 1] != 'X')) return false;
    i += 2;
    uint64_t v = 0;
    size_t digits = 0;
    for (; i < n && h[i] != ' '; i++, digits++) {
        uint8_t ch = h[i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            return false;
        if (v > (UINT64_MAX >> 4)) return false;
        v = (v << 4) | d;
    }
    while (i < n && h[i] == ' ')
        i++;
    if (i != n || digits == 0) return false;
    *out = v;
    return true;
}

static pp_err zfile(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                    const char *where)
{
    pp_ctx_set_container(c, "joblib/zfile");
    pp_cursor cur;
    pp_cursor_init(&cur, data, len, 0);
    const uint8_t *hdr;
    uint64_t claim = 0;
    /* "ZF" + hex(len) left-justified in 19 characters */
    if (!pp_cursor_take(&cur, 21, &hdr))
        return done(pp_ctx_error(c, PP_E_TRUNCATED, len, where,
                                 "zfile header needs 21 bytes, the file has %zu", len));
    if (!zf_length(hdr + 2, 19, &claim))
        return done(
            pp_ctx_error(c, PP_E_BAD_VALUE, 2, where, "zfile header length is not hexadecimal"));
    /* Python 2 / joblib <= 0.8.4 wrote one more space; zlib data never starts with one */
    uint8_t b;
    size_t skip = 21;
    if (pp_cursor_u8(&cur, &b) && b == ' ') skip = 22;
    return decoded(c, PP_Z_ZLIB, data, len, base, skip, where, true, claim);
}

static bool prefix(const uint8_t *d, size_t n, const char *p, size_t pn)
{
    return n >= pn && memcmp(d, p, pn) == 0;
}

pp_err pp_container_joblib(pp_scan_ctx *c, const uint8_t *data, size_t len, uint64_t base,
                           const char *where)
{
    pp_container_kind k = pp_detect(data, len);
    if (k == PP_CT_JOBLIB_ZF) return zfile(c, data, len, base, where);
    if (k != PP_CT_COMPRESSED) return raw(c, data, len, base, where);
    /* joblib's registration order: zlib, gzip, bz2, lzma, xz, lz4 */
    pp_zkind z;
    if (len >= 1 && data[0] == 0x78)
        z = PP_Z_ZLIB;
    else if (prefix(data, len, "\x1f\x8b", 2))
        z = PP_Z_GZIP;
    else if (prefix(data, len, "BZ", 2))
        z = PP_Z_BZ2;
    else if (prefix(data, len, "\x5d\x00", 2))
        z = PP_Z_LZMA_ALONE;
    else if (prefix(data, len, "\xfd\x37\x7a\x58\x5a", 5))
        z = PP_Z_XZ;
    else if (prefix(data, len, "\x04\x22\x4d\x18", 4))
        z = PP_Z_LZ4;
    else
        return raw(c, data, len, base, where);
    char desc[32];
    snprintf(desc, sizeof desc, "joblib/%s", pp_zkind_name(z));
    pp_ctx_set_container(c, desc);
    return decoded(c, z, data, len, base, 0, where, false, 0);
}
