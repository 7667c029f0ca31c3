#include "materialize.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* How CPython's unpickler would have built the graph, in the order it would have: every effect
 * (call, construction, BUILD, method call on an object, persistent id) runs in stream order;
 * lists, dicts and sets are made when first needed and filled with the items that exist by then,
 * the rest as soon as they exist (as the APPENDS/SETITEMS that follow would). Globals are imported
 * when first used, through importlib. */

#define OP_INST 0x69 /* 'i' */
#define OP_OBJ 0x6f  /* 'o' */

enum { NF_QUEUED = 1, NF_WRAPPER = 2 };

typedef struct mz {
    const pp_load_view *v;
    const pp_mz_options *o;
    const pp_graph *g;
    size_t nnodes;
    PyObject **obj;  /* by node id: what it became */
    size_t *filled;  /* by node id: items (dict: pairs) put into the container so far */
    uint8_t *flags;  /* by node id */
    pp_node **queue; /* containers made but not yet complete */
    size_t nq, qcap;
    size_t nstreams;
    const pp_event ***sev; /* events of each stream, in order */
    size_t *nsev;
    uint8_t *sstate; /* 0 not run, 1 running, 2 done */
    size_t **sord;   /* the global ordinal of each of those events */
    uint64_t now;    /* ordinal of the event being replayed; UINT64_MAX once all have been */
    bool joblib;
    PyObject *np_empty, *np_frombuffer, *np_dtype, *importlib;
    PyObject *storages; /* PyTorch storages by key */
    PyObject *floats;   /* float objects by identity tag: one NaN memoized is one object */
    struct strslot *strs; /* str/bytes objects by where their value is: memo GETs share one */
    size_t nstrs, strcap;
    PyObject *ndarray, *npdtype; /* numpy.ndarray and numpy.dtype once numpy is loaded */
} mz;

static PyObject *get(mz *m, const pp_val *v);

/* A str or bytes value is immediate in the graph, but each opcode's payload is one object in
 * CPython, shared by every memo GET: values with the same bytes at the same address are one. */
typedef struct strslot {
    const uint8_t *p;
    size_t n;
    uint8_t kind;
    PyObject *o;
} strslot;

static size_t str_hash(const uint8_t *p, size_t n, uint8_t kind, size_t cap)
{
    uint64_t h = ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15u) ^ (n * 31u) ^ kind;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static PyObject *str_value(mz *m, const pp_val *v)
{
    const uint8_t *p = v->u.s.p;
    size_t n = v->u.s.n;
    if (m->nstrs * 2 >= m->strcap) {
        size_t nc = m->strcap ? m->strcap * 2 : 256;
        strslot *ns = PyMem_Calloc(nc, sizeof *ns);
        if (!ns) return PyErr_NoMemory();
        for (size_t i = 0; i < m->strcap; i++) {
            if (!m->strs[i].o) continue;
            size_t j = str_hash(m->strs[i].p, m->strs[i].n, m->strs[i].kind, nc);
            while (ns[j].o) j = (j + 1) & (nc - 1);
            ns[j] = m->strs[i];
        }
        PyMem_Free(m->strs);
        m->strs = ns;
        m->strcap = nc;
    }
    size_t j = str_hash(p, n, v->kind, m->strcap);
    for (; m->strs[j].o; j = (j + 1) & (m->strcap - 1))
        if (m->strs[j].p == p && m->strs[j].n == n && m->strs[j].kind == v->kind)
            return Py_NewRef(m->strs[j].o);
    PyObject *o = v->kind == PP_V_STR
                      ? PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "surrogatepass")
                      : PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
    if (!o) return NULL;
    m->strs[j] = (strslot){.p = p, .n = n, .kind = v->kind, .o = Py_NewRef(o)};
    m->nstrs++;
    return o;
}

/* attribute names, interned once (under the GIL) */
static PyObject *s_setstate, *s_dict, *s_getinitargs, *s_new, *s_extend;

static int names_init(void)
{
    if (s_extend) return 0;
    s_setstate = PyUnicode_InternFromString("__setstate__");
    s_dict = PyUnicode_InternFromString("__dict__");
    s_getinitargs = PyUnicode_InternFromString("__getinitargs__");
    s_new = PyUnicode_InternFromString("__new__");
    s_extend = PyUnicode_InternFromString("extend");
    return s_setstate && s_dict && s_getinitargs && s_new && s_extend ? 0 : -1;
}
static int run_stream(mz *m, size_t k);

static PyObject *unpickling_error(void)
{
    PyObject *pickle = PyImport_ImportModule("pickle");
    if (!pickle) return NULL;
    PyObject *e = PyObject_GetAttrString(pickle, "UnpicklingError");
    Py_DECREF(pickle);
    return e;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    PyObject *e = unpickling_error();
    PyErr_SetString(e ? e : PyExc_RuntimeError, msg);
    Py_XDECREF(e);
}

/* ---- globals ------------------------------------------------------------------------------- */

static PyObject *resolve(mz *m, const pp_node *n)
{
    if (!m->importlib && !(m->importlib = PyImport_ImportModule("importlib"))) return NULL;
    PyObject *obj = PyObject_CallMethod(m->importlib, "import_module", "s#", n->u.glob.module,
                                        (Py_ssize_t)n->u.glob.modlen);
    if (!obj) return NULL;
    /* a dotted name (protocol >= 4) is an attribute path, as find_class walks it */
    const char *p = n->u.glob.name, *end = p + n->u.glob.namelen;
    while (obj) {
        const char *dot = (n->flags & PP_NF_DOTTED) ? memchr(p, '.', (size_t)(end - p)) : NULL;
        const char *stop = dot ? dot : end;
        PyObject *name = PyUnicode_DecodeUTF8(p, stop - p, "surrogatepass");
        PyObject *next = name ? PyObject_GetAttr(obj, name) : NULL;
        Py_XDECREF(name);
        Py_DECREF(obj);
        obj = next;
        if (!dot) break;
        p = dot + 1;
    }
    return obj;
}

static bool glob_is(const pp_val *v, const char *module, const char *name)
{
    if (!(v->kind == PP_V_NODE && v->u.node->kind == PP_N_GLOBAL)) return false;
    const pp_node *n = v->u.node;
    return n->u.glob.modlen == strlen(module) && n->u.glob.namelen == strlen(name) &&
           memcmp(n->u.glob.module, module, n->u.glob.modlen) == 0 &&
           memcmp(n->u.glob.name, name, n->u.glob.namelen) == 0;
}

/* ---- containers ---------------------------------------------------------------------------- */

static int enqueue(mz *m, pp_node *n)
{
    if (m->nq == m->qcap) {
        size_t nc = m->qcap ? m->qcap * 2 : 64;
        pp_node **q = PyMem_Realloc(m->queue, nc * sizeof *q);
        if (!q) {
            PyErr_NoMemory();
            return -1;
        }
        m->queue = q;
        m->qcap = nc;
    }
    m->queue[m->nq++] = n;
    m->flags[n->serial] |= NF_QUEUED;
    return 0;
}

/* The stream of a joblib object array. */
static size_t array_stream(const mz *m, const pp_node *n)
{
    const pp_scan_state *st = m->v->st;
    for (size_t k = 0; k < st->nstreams; k++)
        if (st->streams[k].start == n->u.array.start && strstr(st->names[k], "!array@")) return k;
    return SIZE_MAX;
}

/* Whether v can be had now without running anything out of its turn. */
static bool ready(const mz *m, const pp_val *v, unsigned depth)
{
    if (v->kind != PP_V_NODE || m->now == UINT64_MAX) return true; /* at the end all exist */
    const pp_node *n = v->u.node;
    if (m->obj[n->serial]) return true;
    switch (n->kind) {
    case PP_N_CALL:
    case PP_N_NEW:
    case PP_N_PERSID:
    case PP_N_EXT:
        return false;
    case PP_N_ARRAY:
        if (n->u.array.region == UINT64_MAX) {
            size_t k = array_stream(m, n);
            return k != SIZE_MAX && m->sstate[k] != 1; /* not from inside its own pickle */
        }
        return true;
    case PP_N_TUPLE:
    case PP_N_FROZENSET:
        if (depth > 64) return false; /* decided at the end, when everything exists */
        for (size_t i = 0; i < n->u.seq.n; i++)
            if (!ready(m, &n->u.seq.v[i], depth + 1)) return false;
        return true;
    default:
        return true;
    }
}

/* How many values the container held when the event being replayed happened. */
static size_t held(const mz *m, const pp_node *n)
{
    if (m->now == UINT64_MAX) return n->u.seq.n;
    for (const pp_fill *f = n->u.seq.fills; f; f = f->prev)
        if (f->events <= m->now) return f->n <= n->u.seq.n ? f->n : n->u.seq.n;
    return 0;
}

/* Puts into a queued container the items it held by now: 1 complete, 0 not yet, -1 error. */
static int fill(mz *m, pp_node *n)
{
    PyObject *c = m->obj[n->serial];
    size_t *at = &m->filled[n->serial];
    size_t upto = held(m, n);
    if (n->kind == PP_N_DICT) {
        for (; *at < upto / 2; ++*at) {
            const pp_val *k = &n->u.seq.v[2 * *at], *val = &n->u.seq.v[2 * *at + 1];
            if (!ready(m, k, 0) || !ready(m, val, 0)) return 0;
            PyObject *kk = get(m, k);
            PyObject *vv = kk ? get(m, val) : NULL;
            int rc = vv ? PyDict_SetItem(c, kk, vv) : -1;
            Py_XDECREF(kk);
            Py_XDECREF(vv);
            if (rc) return -1;
        }
        return *at == n->u.seq.n / 2;
    }
    for (; *at < upto; ++*at) {
        const pp_val *item = &n->u.seq.v[*at];
        if (!ready(m, item, 0)) return 0;
        PyObject *x = get(m, item);
        if (!x) return -1;
        int rc = n->kind == PP_N_LIST ? PyList_Append(c, x) : PySet_Add(c, x);
        Py_DECREF(x);
        if (rc) return -1;
    }
    return *at == n->u.seq.n;
}

/* Completes what can be completed; `all` at the end, when nothing may stay incomplete. */
static int flush(mz *m, bool all)
{
    bool progress = true;
    while (m->nq && progress) {
        progress = false;
        for (size_t i = 0; i < m->nq;) {
            int rc = fill(m, m->queue[i]);
            if (rc < 0) return -1;
            if (rc == 1) {
                m->flags[m->queue[i]->serial] &= (uint8_t)~NF_QUEUED;
                m->queue[i] = m->queue[--m->nq];
                progress = true;
            } else {
                i++;
            }
        }
    }
    if (all && m->nq) {
        fail("the pickle uses an object it never makes");
        return -1;
    }
    return 0;
}

/* ---- arrays -------------------------------------------------------------------------------- */

static PyObject *np_attr(PyObject **slot, const char *name)
{
    if (*slot) return *slot;
    PyObject *np = PyImport_ImportModule("numpy");
    if (!np) return NULL;
    *slot = PyObject_GetAttrString(np, name);
    Py_DECREF(np);
    return *slot;
}

/* An attribute of a joblib wrapper's BUILD state (the last one set wins), or None. */
static PyObject *wrapper_attr(mz *m, const pp_node *w, const char *name)
{
    const pp_val *found = NULL;
    size_t nl = strlen(name);
    for (const pp_event *ev = w ? w->effects : NULL; ev; ev = ev->next_on_node) {
        if (ev->kind != PP_EV_BUILD || ev->a.kind != PP_V_NODE || ev->a.u.node->kind != PP_N_DICT)
            continue;
        const pp_node *d = ev->a.u.node;
        for (size_t i = 0; i + 1 < d->u.seq.n; i += 2) {
            const pp_val *k = &d->u.seq.v[i];
            if (k->kind == PP_V_STR && k->u.s.n == nl && memcmp(k->u.s.p, name, nl) == 0)
                found = &d->u.seq.v[i + 1];
        }
    }
    if (found) return get(m, found);
    Py_RETURN_NONE;
}

/* The dtype the joblib wrapper carried (exact, with field names and metadata), else the one the
 * scanner wrote down. */
static PyObject *array_dtype(mz *m, const pp_node *arr, const pp_array_region *reg)
{
    if (arr->u.array.wrapper) {
        PyObject *dt = wrapper_attr(m, arr->u.array.wrapper, "dtype");
        if (dt != Py_None) return dt;
        Py_DECREF(dt);
    }
    if (!np_attr(&m->np_dtype, "dtype")) return NULL;
    return PyObject_CallFunction(m->np_dtype, "s", reg->dtype);
}

/* Copies region i's n bytes to dst: read from the file when it is a file a writer could shrink
 * (a short read is an error), else from memory. */
static int copy_region(mz *m, size_t i, void *dst, size_t n)
{
    const pp_array_region *reg = &m->v->r->arrays[i];
    if (m->v->fd < 0 || reg->file_offset == PP_NO_OFFSET) {
        memcpy(dst, m->v->region[i], n);
        return 0;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t got = pread(m->v->fd, (char *)dst + done, n - done,
                            (off_t)(reg->file_offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            fail("array %zu: cannot read its bytes from the file: %s", i,
                 got < 0 ? strerror(errno) : "the file shrank while it was loaded");
            return -1;
        }
        done += (size_t)got;
    }
    return 0;
}

/* An array over region i: a view of the load's map when there is one and the bytes are in it,
 * else a copy the array owns (as joblib reads it into numpy.empty). */
static PyObject *make_array(mz *m, size_t i, PyObject *dtype)
{
    const pp_array_region *reg = &m->v->r->arrays[i];
    const uint8_t *bytes = m->v->region[i];
    if (!bytes) {
        fail("the bytes of array %zu (%s) are not available to load", i, reg->where);
        return NULL;
    }
    PyObject *hasobj = PyObject_GetAttrString(dtype, "hasobject");
    PyObject *isz = PyObject_GetAttrString(dtype, "itemsize");
    int objects = hasobj ? PyObject_IsTrue(hasobj) : -1;
    long long itemsize = isz ? PyLong_AsLongLong(isz) : -1;
    Py_XDECREF(hasobj);
    Py_XDECREF(isz);
    if (objects < 0 || itemsize < 0) return NULL;
    uint64_t count = 1;
    for (uint32_t d = 0; d < reg->ndim; d++) count *= reg->shape[d];
    /* the region was proven as dtype x shape bytes; a dtype that says otherwise, or one holding
     * pointers, must never meet them */
    if (objects || (itemsize && reg->nbytes / (uint64_t)itemsize != count) ||
        (uint64_t)itemsize * count != reg->nbytes) {
        fail("array %zu: its dtype does not describe its %llu bytes", i,
             (unsigned long long)reg->nbytes);
        return NULL;
    }
    PyObject *flat;
    const uint8_t *lo = m->v->map_lo, *hi = m->v->map_hi;
    bool in_map = m->o->map && bytes >= lo && bytes <= hi && reg->nbytes <= (size_t)(hi - bytes);
    if (in_map && reg->nbytes) {
        if (!np_attr(&m->np_frombuffer, "frombuffer")) return NULL;
        flat = PyObject_CallFunction(m->np_frombuffer, "OOKn", m->o->map, dtype,
                                     (unsigned long long)count, (Py_ssize_t)(bytes - lo));
    } else {
        if (!np_attr(&m->np_empty, "empty")) return NULL;
        flat = PyObject_CallFunction(m->np_empty, "KO", (unsigned long long)count, dtype);
        if (flat && reg->nbytes) {
            Py_buffer b;
            if (PyObject_GetBuffer(flat, &b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) != 0) {
                Py_DECREF(flat);
                return NULL;
            }
            if ((uint64_t)b.len != reg->nbytes) {
                PyBuffer_Release(&b);
                Py_DECREF(flat);
                fail("array %zu: numpy allocated %zd bytes for %llu", i, b.len,
                     (unsigned long long)reg->nbytes);
                return NULL;
            }
            int rc = copy_region(m, i, b.buf, (size_t)reg->nbytes);
            PyBuffer_Release(&b);
            if (rc) {
                Py_DECREF(flat);
                return NULL;
            }
        }
        /* an empty array of a map is read-only like the others */
        if (flat && in_map) {
            PyObject *r = PyObject_CallMethod(flat, "setflags", "(O)", Py_False);
            if (!r) Py_CLEAR(flat);
            Py_XDECREF(r);
        }
    }
    if (!flat) return NULL;
    PyObject *shape = PyTuple_New(reg->ndim);
    if (!shape) {
        Py_DECREF(flat);
        return NULL;
    }
    /* joblib: Fortran order is the reversed shape, transposed */
    bool f = reg->order == 'F';
    for (uint32_t d = 0; d < reg->ndim; d++)
        PyTuple_SET_ITEM(shape, d,
                         PyLong_FromUnsignedLongLong(reg->shape[f ? reg->ndim - 1 - d : d]));
    PyObject *meth = PyUnicode_FromString("reshape");
    PyObject *out = meth ? PyObject_CallMethodOneArg(flat, meth, shape) : NULL;
    Py_XDECREF(meth);
    Py_DECREF(shape);
    Py_DECREF(flat);
    if (out && f) {
        PyObject *t = PyObject_CallMethod(out, "transpose", NULL);
        Py_DECREF(out);
        out = t;
    }
    return out;
}

static PyObject *array_node(mz *m, const pp_node *n)
{
    if (n->u.array.region == UINT64_MAX) {
        /* an object array: the pickle joblib reads with pickle.load right there */
        size_t k = array_stream(m, n);
        if (k == SIZE_MAX) {
            fail("an object array's pickle was not found");
            return NULL;
        }
        if (run_stream(m, k)) return NULL;
        return get(m, &m->v->st->streams[k].root);
    }
    if (n->u.array.region >= m->v->r->narrays) {
        fail("array region %llu does not exist", (unsigned long long)n->u.array.region);
        return NULL;
    }
    size_t i = (size_t)n->u.array.region;
    PyObject *dtype = array_dtype(m, n, &m->v->r->arrays[i]);
    if (!dtype) return NULL;
    PyObject *a = make_array(m, i, dtype);
    Py_DECREF(dtype);
    if (a && n->u.array.wrapper) {
        /* what NumpyArrayWrapper.read does next: native byte order, the array subclass */
        PyObject *subclass = wrapper_attr(m, n->u.array.wrapper, "subclass");
        PyObject *mod = subclass ? PyImport_ImportModule("pickleproof._arrays") : NULL;
        PyObject *r = mod ? PyObject_CallMethod(mod, "joblib_array", "OO", a, subclass) : NULL;
        Py_XDECREF(mod);
        Py_XDECREF(subclass);
        Py_DECREF(a);
        a = r;
    }
    return a;
}

/* ---- persistent ids (PyTorch) -------------------------------------------------------------- */

static PyObject *persistent_load(mz *m, PyObject *pid)
{
    if (!m->o->torch_storage) {
        fail("a persistent id outside a PyTorch file");
        return NULL;
    }
    /* zip: ('storage', type, key, location, numel); legacy: (..., numel, view_metadata) */
    if (!PyTuple_Check(pid) || (PyTuple_GET_SIZE(pid) != 5 && PyTuple_GET_SIZE(pid) != 6)) {
        fail("a persistent id that is not a PyTorch storage");
        return NULL;
    }
    if (PyTuple_GET_SIZE(pid) == 6 && PyTuple_GET_ITEM(pid, 5) != Py_None) {
        /* a legacy view: a slice of its root storage, one object per view key */
        PyObject *root = PyTuple_GetSlice(pid, 0, 5), *base = NULL, *view = NULL;
        PyObject *vkey = root ? Py_BuildValue("(sO)", "view", PyTuple_GET_ITEM(pid, 5)) : NULL;
        if (vkey && m->storages && (view = PyDict_GetItemWithError(m->storages, vkey)))
            Py_INCREF(view);
        else if (vkey && !PyErr_Occurred() && (base = persistent_load(m, root))) {
            PyObject *mod = PyImport_ImportModule("pickleproof._torch");
            view = mod ? PyObject_CallMethod(mod, "view", "OO", base, PyTuple_GET_ITEM(pid, 5))
                       : NULL;
            Py_XDECREF(mod);
            if (view && PyDict_SetItem(m->storages, vkey, view)) Py_CLEAR(view);
        }
        Py_XDECREF(root);
        Py_XDECREF(base);
        Py_XDECREF(vkey);
        return view;
    }
    PyObject *key = PyTuple_GET_ITEM(pid, 2);
    if (!PyUnicode_Check(key)) {
        fail("a PyTorch storage key that is not a str");
        return NULL;
    }
    if (!m->storages && !(m->storages = PyDict_New())) return NULL;
    PyObject *have = PyDict_GetItemWithError(m->storages, key);
    if (have) return Py_NewRef(have);
    if (PyErr_Occurred()) return NULL;
    Py_ssize_t kn;
    const char *k = PyUnicode_AsUTF8AndSize(key, &kn);
    if (!k) return NULL;
    const pp_scan_state *st = m->v->st;
    size_t i = SIZE_MAX;
    for (size_t j = 0; j < m->v->r->narrays && j < st->region_cap; j++)
        if (st->region_keys[j] && strlen(st->region_keys[j]) == (size_t)kn &&
            memcmp(st->region_keys[j], k, (size_t)kn) == 0) {
            i = j;
            break;
        }
    if (i == SIZE_MAX || !m->v->region[i]) {
        fail("PyTorch storage %s: its bytes are not available to load", k);
        return NULL;
    }
    /* a copy the storage owns: tensors are writable, whatever the file is */
    PyObject *ba = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)m->v->r->arrays[i].nbytes);
    if (!ba) return NULL;
    if (copy_region(m, i, PyByteArray_AS_STRING(ba), (size_t)m->v->r->arrays[i].nbytes)) {
        Py_DECREF(ba);
        return NULL;
    }
    PyObject *s = PyObject_CallFunctionObjArgs(m->o->torch_storage, PyTuple_GET_ITEM(pid, 1), ba,
                                               NULL);
    Py_DECREF(ba);
    if (s && PyDict_SetItem(m->storages, key, s)) Py_CLEAR(s);
    return s;
}

/* ---- values -------------------------------------------------------------------------------- */

static PyObject *made(mz *m, const pp_node *n, PyObject *o)
{
    if (o) m->obj[n->serial] = Py_NewRef(o);
    return o;
}

static PyObject *tuple_of(mz *m, const pp_val *v, size_t n)
{
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t && i < n; i++) {
        PyObject *x = get(m, &v[i]);
        if (!x) Py_CLEAR(t);
        else PyTuple_SET_ITEM(t, (Py_ssize_t)i, x);
    }
    return t;
}

static PyObject *node(mz *m, pp_node *n)
{
    if (n->serial >= m->nnodes) {
        fail("graph node %u out of range", n->serial);
        return NULL;
    }
    if (m->obj[n->serial]) return Py_NewRef(m->obj[n->serial]);
    PyObject *o = NULL, *t;
    switch (n->kind) {
    case PP_N_TUPLE:
        o = tuple_of(m, n->u.seq.v, n->u.seq.n);
        break;
    case PP_N_FROZENSET:
        t = tuple_of(m, n->u.seq.v, n->u.seq.n);
        o = t ? PyFrozenSet_New(t) : NULL;
        Py_XDECREF(t);
        break;
    case PP_N_LIST:
    case PP_N_DICT:
    case PP_N_SET:
        o = n->kind == PP_N_LIST ? PyList_New(0) : n->kind == PP_N_DICT ? PyDict_New() : PySet_New(NULL);
        if (o && (!made(m, n, o) || enqueue(m, n))) Py_CLEAR(o);
        return o;
    case PP_N_BYTEARRAY:
        o = PyByteArray_FromStringAndSize((const char *)n->u.bytes.p, (Py_ssize_t)n->u.bytes.n);
        break;
    case PP_N_MEMORYVIEW: {
        /* READONLY_BUFFER: memoryview(obj).toreadonly() */
        PyObject *b = node(m, n->u.view);
        PyObject *mv = b ? PyMemoryView_FromObject(b) : NULL;
        Py_XDECREF(b);
        o = mv ? PyObject_CallMethod(mv, "toreadonly", NULL) : NULL;
        Py_XDECREF(mv);
        break;
    }
    case PP_N_GLOBAL:
        o = resolve(m, n);
        break;
    case PP_N_ARRAY:
        o = array_node(m, n);
        break;
    default:
        fail("an object is used before the opcode that makes it (offset %llu)",
             (unsigned long long)n->offset);
        return NULL;
    }
    return made(m, n, o);
}

static PyObject *get(mz *m, const pp_val *v)
{
    switch (v->kind) {
    case PP_V_NONE:
        Py_RETURN_NONE;
    case PP_V_BOOL:
        return PyBool_FromLong((long)v->u.i);
    case PP_V_INT:
        return PyLong_FromLongLong(v->u.i);
    case PP_V_BIGINT:
        return _PyLong_FromByteArray(v->u.s.p, v->u.s.n, 1, 1);
    case PP_V_FLOAT: {
        if (!v->tag) return PyFloat_FromDouble(v->u.f);
        if (!m->floats && !(m->floats = PyDict_New())) return NULL;
        PyObject *k = PyLong_FromUnsignedLong(v->tag);
        PyObject *f = k ? PyDict_GetItemWithError(m->floats, k) : NULL;
        if (f) {
            Py_DECREF(k);
            return Py_NewRef(f);
        }
        f = k && !PyErr_Occurred() ? PyFloat_FromDouble(v->u.f) : NULL;
        if (f && PyDict_SetItem(m->floats, k, f)) Py_CLEAR(f);
        Py_XDECREF(k);
        return f;
    }
    case PP_V_STR:
    case PP_V_BYTES:
        return str_value(m, v);
    case PP_V_NODE:
        return node(m, v->u.node);
    default:
        fail("a value of unknown kind %d", v->kind);
        return NULL;
    }
}

/* ---- effects ------------------------------------------------------------------------------- */

/* numpy's ndarray.__setstate__ trusts an object array's item list to be as long as the array:
 * a short one crashes the process. Such states are refused before numpy sees them. */
static int check_array_state(mz *m, PyObject *inst, PyObject *state)
{
    if (!m->ndarray) {
        PyObject *name = PyUnicode_FromString("numpy");
        PyObject *np = name ? PyImport_GetModule(name) : NULL;
        Py_XDECREF(name);
        if (!np) return PyErr_Occurred() ? -1 : 0; /* no numpy loaded: no ndarray to build */
        m->ndarray = PyObject_GetAttrString(np, "ndarray");
        m->npdtype = m->ndarray ? PyObject_GetAttrString(np, "dtype") : NULL;
        Py_DECREF(np);
        if (!m->ndarray || !m->npdtype) return -1;
    }
    int is = PyObject_IsInstance(inst, m->ndarray), isd = 0;
    if (is == 0) isd = PyObject_IsInstance(inst, m->npdtype);
    if (is < 0 || isd < 0) return -1;
    if (!is && !isd) return 0;
    PyObject *mod = PyImport_ImportModule("pickleproof._arrays");
    PyObject *r = mod ? PyObject_CallMethod(mod, is ? "check_state" : "check_dtype_state", "OO",
                                            inst, state)
                      : NULL;
    Py_XDECREF(mod);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* BUILD as _pickle.c's load_build does it. */
static int build(mz *m, PyObject *inst, PyObject *state)
{
    if (check_array_state(m, inst, state)) return -1;
    PyObject *setstate;
    if (_PyObject_LookupAttr(inst, s_setstate, &setstate) < 0) return -1;
    if (setstate) {
        PyObject *r = PyObject_CallOneArg(setstate, state);
        Py_DECREF(setstate);
        Py_XDECREF(r);
        return r ? 0 : -1;
    }
    PyObject *slotstate = NULL;
    if (PyTuple_Check(state) && PyTuple_GET_SIZE(state) == 2) {
        slotstate = PyTuple_GET_ITEM(state, 1);
        state = PyTuple_GET_ITEM(state, 0);
    }
    if (state != Py_None) {
        if (!PyDict_Check(state)) {
            fail("state is not a dictionary");
            return -1;
        }
        PyObject *dict = PyObject_GetAttr(inst, s_dict);
        if (!dict) return -1;
        Py_ssize_t i = 0;
        PyObject *k, *val;
        while (PyDict_Next(state, &i, &k, &val)) {
            Py_INCREF(k);
            if (PyUnicode_CheckExact(k)) PyUnicode_InternInPlace(&k);
            int rc = PyObject_SetItem(dict, k, val);
            Py_DECREF(k);
            if (rc) {
                Py_DECREF(dict);
                return -1;
            }
        }
        Py_DECREF(dict);
    }
    if (slotstate && slotstate != Py_None) {
        if (!PyDict_Check(slotstate)) {
            fail("slot state is not a dictionary");
            return -1;
        }
        Py_ssize_t i = 0;
        PyObject *k, *val;
        while (PyDict_Next(slotstate, &i, &k, &val))
            if (PyObject_SetAttr(inst, k, val)) return -1;
    }
    return 0;
}

static PyObject *call_event(mz *m, const pp_node *n)
{
    PyObject *fn = get(m, &n->u.call.fn);
    PyObject *args = fn ? tuple_of(m, n->u.call.args, n->u.call.nargs) : NULL;
    PyObject *r = NULL;
    if (args && flush(m, false) == 0) r = PyObject_Call(fn, args, NULL);
    Py_XDECREF(fn);
    Py_XDECREF(args);
    return r;
}

static PyObject *new_event(mz *m, const pp_node *n)
{
    PyObject *cls = get(m, &n->u.call.fn);
    PyObject *args = cls ? tuple_of(m, n->u.call.args, n->u.call.nargs) : NULL;
    PyObject *kw = args && n->u.call.nkw ? PyDict_New() : NULL;
    PyObject *r = NULL;
    if (!args || (n->u.call.nkw && !kw)) goto out;
    for (size_t i = 0; i < n->u.call.nkw; i++) {
        PyObject *k = get(m, &n->u.call.kw[2 * i]);
        PyObject *v = k ? get(m, &n->u.call.kw[2 * i + 1]) : NULL;
        int rc = v ? PyDict_SetItem(kw, k, v) : -1;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (rc) goto out;
    }
    if (flush(m, false)) goto out;
    if ((n->opcode == OP_INST || n->opcode == OP_OBJ) && n->u.call.nargs == 0) {
        /* _pickle.c's instantiate: __new__ alone unless the class asks for __getinitargs__ */
        PyObject *gia = NULL;
        if (PyType_Check(cls) && _PyObject_LookupAttr(cls, s_getinitargs, &gia) < 0)
            goto out;
        if (PyType_Check(cls) && !gia)
            r = PyObject_CallMethodOneArg(cls, s_new, cls);
        else
            r = PyObject_Call(cls, args, NULL);
        Py_XDECREF(gia);
        goto out;
    }
    if (!PyType_Check(cls)) {
        fail("NEWOBJ class argument isn't a type object");
        goto out;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    if (!tp->tp_new) {
        fail("NEWOBJ class argument has NULL tp_new");
        goto out;
    }
    r = tp->tp_new(tp, args, kw);
out:
    Py_XDECREF(cls);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    return r;
}

static int method_event(mz *m, const pp_event *ev)
{
    PyObject *o = node(m, ev->node);
    PyObject *a = o ? get(m, &ev->a) : NULL;
    PyObject *b = a && ev->kind == PP_EV_SETITEM ? get(m, &ev->b) : NULL;
    int rc = -1;
    if (!a || (ev->kind == PP_EV_SETITEM && !b) || flush(m, false)) goto out;
    PyObject *r = NULL;
    switch (ev->kind) {
    case PP_EV_BUILD:
        rc = build(m, o, a);
        goto out;
    case PP_EV_SETITEM:
        rc = PyObject_SetItem(o, a, b);
        goto out;
    case PP_EV_ADD:
        if (PySet_Check(o)) {
            rc = PySet_Add(o, a);
            goto out;
        }
        r = PyObject_CallMethod(o, "add", "O", a);
        break;
    case PP_EV_APPEND:
        r = PyObject_CallMethod(o, "append", "O", a);
        break;
    case PP_EV_EXTEND: {
        /* APPENDS on an object: extend() when it has one, else append() each item */
        PyObject *ext;
        if (_PyObject_LookupAttr(o, s_extend, &ext) < 0) goto out;
        if (ext) {
            r = PyObject_CallOneArg(ext, a);
            Py_DECREF(ext);
            break;
        }
        PyObject *it = PyObject_GetIter(a), *x;
        if (!it) goto out;
        while ((x = PyIter_Next(it))) {
            PyObject *rr = PyObject_CallMethod(o, "append", "O", x);
            Py_DECREF(x);
            if (!rr) break;
            Py_DECREF(rr);
        }
        Py_DECREF(it);
        rc = PyErr_Occurred() ? -1 : 0;
        goto out;
    }
    default:
        break;
    }
    rc = r ? 0 : -1;
    Py_XDECREF(r);
out:
    Py_XDECREF(o);
    Py_XDECREF(a);
    Py_XDECREF(b);
    return rc;
}

static bool is_wrapper_class(const pp_val *cls)
{
    static const char *const names[] = {"NumpyArrayWrapper", "NDArrayWrapper", "ZNDArrayWrapper"};
    for (size_t i = 0; i < 3; i++)
        if (glob_is(cls, "joblib.numpy_pickle", names[i]) ||
            glob_is(cls, "joblib.numpy_pickle_compat", names[i]) ||
            glob_is(cls, "sklearn.externals.joblib.numpy_pickle", names[i]))
            return true;
    return false;
}

static int run_event(mz *m, const pp_event *ev)
{
    pp_node *n = ev->node;
    PyObject *r;
    switch (ev->kind) {
    case PP_EV_GLOBAL:
        return 0; /* imported when first used */
    case PP_EV_CALL:
        if (m->obj[n->serial]) return 0;
        r = call_event(m, n);
        break;
    case PP_EV_NEW:
        if (m->obj[n->serial]) return 0;
        /* joblib's array wrappers stand for the arrays that replaced them */
        if (m->joblib && is_wrapper_class(&n->u.call.fn)) {
            m->flags[n->serial] |= NF_WRAPPER;
            return 0;
        }
        r = new_event(m, n);
        break;
    case PP_EV_PERSID: {
        if (m->obj[n->serial]) return 0;
        PyObject *pid = get(m, &n->u.persid.pid);
        if (!pid) return -1;
        r = flush(m, false) ? NULL : persistent_load(m, pid);
        Py_DECREF(pid);
        break;
    }
    case PP_EV_EXT:
        fail("extension codes cannot be loaded (offset %llu)", (unsigned long long)ev->offset);
        return -1;
    default:
        if (n && n->serial < m->nnodes && (m->flags[n->serial] & NF_WRAPPER)) return 0;
        return method_event(m, ev);
    }
    if (!r) return -1;
    m->obj[n->serial] = r;
    return 0;
}

static int run_stream(mz *m, size_t k)
{
    if (m->sstate[k] == 2) return 0;
    if (m->sstate[k] == 1) {
        fail("a pickle stream needs itself");
        return -1;
    }
    m->sstate[k] = 1;
    uint64_t saved = m->now;
    for (size_t i = 0; i < m->nsev[k]; i++) {
        m->now = m->sord[k][i];
        if (run_event(m, m->sev[k][i])) return -1;
    }
    /* a nested pickle (joblib's object arrays) is complete when pickle.load returns it */
    if (m->nsev[k] && saved != UINT64_MAX) {
        m->now = m->sord[k][m->nsev[k] - 1] + 1;
        if (flush(m, false)) return -1;
    }
    m->now = saved;
    m->sstate[k] = 2;
    return 0;
}

/* ---- the result of each container ---------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static PyObject *stream_result(mz *m, size_t k)
{
    if (run_stream(m, k)) return NULL;
    m->now = UINT64_MAX;
    PyObject *r = get(m, &m->v->st->streams[k].root);
    if (r && flush(m, true)) Py_CLEAR(r);
    return r;
}

/* An .npz: {name: array} in archive order, as numpy.load's NpzFile maps them. */
static PyObject *npz_result(mz *m)
{
    const pp_report *r = m->v->r;
    const pp_scan_state *st = m->v->st;
    PyObject *d = PyDict_New();
    size_t na = 0, ns = 0;
    while (d && (na < r->narrays || ns < st->nstreams)) {
        /* the next member: the smaller offset of the next region and the next stream */
        bool take_stream = na >= r->narrays ||
                           (ns < st->nstreams && st->streams[ns].start < r->arrays[na].file_offset);
        const char *where = take_stream ? st->names[ns] : r->arrays[na].where;
        const char *bang = strchr(where, '!');
        char name[PP_MAX_STREAM_NAME];
        snprintf(name, sizeof name, "%s", bang ? bang + 1 : where);
        char *tail = strstr(name, "!pickle");
        if (tail) *tail = 0;
        if (ends_with(name, ".npy")) name[strlen(name) - 4] = 0;
        PyObject *a;
        if (take_stream) {
            a = stream_result(m, ns++);
        } else {
            PyObject *dt = np_attr(&m->np_dtype, "dtype")
                               ? PyObject_CallFunction(m->np_dtype, "s", r->arrays[na].dtype)
                               : NULL;
            a = dt ? make_array(m, na, dt) : NULL;
            Py_XDECREF(dt);
            na++;
        }
        if (!a || PyDict_SetItemString(d, name, a)) Py_CLEAR(d);
        Py_XDECREF(a);
    }
    return d;
}

static PyObject *result(mz *m)
{
    const pp_report *r = m->v->r;
    const pp_scan_state *st = m->v->st;
    const char *ct = r->container ? r->container : "pickle";
    if (strncmp(ct, "pytorch/zip", 11) == 0 || strncmp(ct, "pytorch/legacy", 14) == 0) {
        const char *want = ct[8] == 'z' ? "data.pkl" : "(object)";
        for (size_t k = 0; k < st->nstreams; k++)
            if (ends_with(st->names[k], want)) return stream_result(m, k);
        fail("the PyTorch file has no %s pickle", want);
        return NULL;
    }
    if (strcmp(ct, "npy") == 0) {
        if (st->nstreams) return stream_result(m, 0);
        if (r->narrays != 1) {
            fail("the .npy file holds %zu arrays", r->narrays);
            return NULL;
        }
        PyObject *dt = np_attr(&m->np_dtype, "dtype")
                           ? PyObject_CallFunction(m->np_dtype, "s", r->arrays[0].dtype)
                           : NULL;
        PyObject *a = dt ? make_array(m, 0, dt) : NULL;
        Py_XDECREF(dt);
        return a;
    }
    if (strcmp(ct, "npz") == 0) return npz_result(m);
    if (strcmp(ct, "pickle") == 0 || strncmp(ct, "joblib", 6) == 0) {
        if (!st->nstreams) {
            fail("the file holds no pickle");
            return NULL;
        }
        return stream_result(m, 0);
    }
    fail("loading a '%s' container is not supported", ct);
    return NULL;
}

PyObject *pp_materialize(const pp_load_view *v, const pp_mz_options *o)
{
    mz m;
    memset(&m, 0, sizeof m);
    m.v = v;
    m.o = o;
    m.g = &v->st->graph;
    m.nnodes = m.g->nnodes;
    m.nstreams = v->st->nstreams;
    m.joblib = v->r->container && strncmp(v->r->container, "joblib", 6) == 0;
    PyObject *out = NULL;
    if (names_init()) return NULL;
    size_t nn = m.nnodes ? m.nnodes : 1, ns = m.nstreams ? m.nstreams : 1;
    m.obj = PyMem_Calloc(nn, sizeof *m.obj);
    m.filled = PyMem_Calloc(nn, sizeof *m.filled);
    m.flags = PyMem_Calloc(nn, 1);
    m.sev = PyMem_Calloc(ns, sizeof *m.sev);
    m.nsev = PyMem_Calloc(ns, sizeof *m.nsev);
    m.sstate = PyMem_Calloc(ns, 1);
    m.sord = PyMem_Calloc(ns, sizeof *m.sord);
    const pp_event **all = PyMem_Calloc(m.g->nevents ? m.g->nevents : 1, sizeof *all);
    size_t *ords = PyMem_Calloc(m.g->nevents ? m.g->nevents : 1, sizeof *ords);
    if (!m.obj || !m.filled || !m.flags || !m.sev || !m.nsev || !m.sstate || !m.sord || !all ||
        !ords) {
        PyErr_NoMemory();
        goto done;
    }
    /* each stream's events, in stream order: one array, sliced */
    size_t total = 0;
    for (const pp_event *ev = m.g->events; ev && total < m.g->nevents; ev = ev->next, total++)
        if (ev->stream < m.nstreams) m.nsev[ev->stream]++;
    size_t at = 0;
    for (size_t k = 0; k < m.nstreams; k++) {
        m.sev[k] = all + at;
        m.sord[k] = ords + at;
        at += m.nsev[k];
        m.nsev[k] = 0;
    }
    total = 0;
    for (const pp_event *ev = m.g->events; ev && total < m.g->nevents; ev = ev->next, total++)
        if (ev->stream < m.nstreams) {
            m.sord[ev->stream][m.nsev[ev->stream]] = total;
            m.sev[ev->stream][m.nsev[ev->stream]++] = ev;
        }
    out = result(&m);
done:
    for (size_t i = 0; m.obj && i < m.nnodes; i++) Py_XDECREF(m.obj[i]);
    PyMem_Free(m.obj);
    PyMem_Free(m.filled);
    PyMem_Free(m.flags);
    PyMem_Free(m.sev);
    PyMem_Free(m.nsev);
    PyMem_Free(m.sstate);
    PyMem_Free(all);
    PyMem_Free(ords);
    PyMem_Free(m.sord);
    PyMem_Free(m.queue);
    Py_XDECREF(m.np_empty);
    Py_XDECREF(m.np_frombuffer);
    Py_XDECREF(m.np_dtype);
    Py_XDECREF(m.importlib);
    Py_XDECREF(m.storages);
    Py_XDECREF(m.floats);
    for (size_t i = 0; i < m.strcap; i++) Py_XDECREF(m.strs[i].o);
    PyMem_Free(m.strs);
    Py_XDECREF(m.ndarray);
    Py_XDECREF(m.npdtype);
    return out;
}
