/* pickleproof._native: the library behind the pickleproof package. Scans and loads run without
 * the GIL (the sandbox helper is spawned with posix_spawn, never fork, so any number of threads
 * may load at once); materialization takes it back. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "load.h"
#include "pickleproof.h"
#include "sandbox.h"

#include "materialize.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- the map arrays are views of ------------------------------------------------------------ */

/* Owns a read-only mapping and exports it as a read-only buffer; numpy arrays made over it keep
 * it alive, and the last one to go unmaps it. */
typedef struct {
    PyObject_HEAD void *p;
    size_t n;
} MapObject;

static void map_dealloc(MapObject *self)
{
    if (self->p) munmap(self->p, self->n);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int map_getbuffer(MapObject *self, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)self, self->p, (Py_ssize_t)self->n, 1, flags);
}

static PyBufferProcs map_as_buffer = {.bf_getbuffer = (getbufferproc)map_getbuffer};

static PyTypeObject MapType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pickleproof._native.Map",
    .tp_basicsize = sizeof(MapObject),
    .tp_dealloc = (destructor)map_dealloc,
    .tp_as_buffer = &map_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A read-only mapping of verified bytes that arrays are views of.",
};

/* ---- options -------------------------------------------------------------------------------- */

typedef struct opts {
    pp_policy *policy;
    pp_keyring *keys;
    pp_scan_options o;
} opts;

static void opts_free(opts *x)
{
    pp_policy_free(x->policy);
    pp_keyring_free(x->keys);
}

static int value_error(const char *what, const pp_error *e)
{
    PyErr_Format(PyExc_ValueError, "%s: %s", what, e && e->msg[0] ? e->msg : "invalid");
    return -1;
}

/* policies: sequence of str; limits: sequence of "NAME=VALUE"; keys: sequence of paths */
static int opts_build(opts *x, PyObject *policies, PyObject *limits, const char *sandbox,
                      PyObject *keys, int require, const char *signature)
{
    memset(x, 0, sizeof *x);
    pp_error err;
    pp_error_clear(&err);
    if (pp_policy_new(&x->policy) || pp_keyring_new(&x->keys)) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *seq = PySequence_Fast(policies, "policy must be a sequence of names or paths");
    if (!seq) return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        const char *s = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
        if (!s || pp_policy_add(x->policy, s, &err)) {
            Py_DECREF(seq);
            return s ? value_error("policy", &err) : -1;
        }
    }
    Py_DECREF(seq);
    pp_scan_options_init(&x->o, x->policy);
    if (!(seq = PySequence_Fast(limits, "limits must be a sequence"))) return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        const char *s = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
        if (!s || pp_limits_set(&x->o.limits, s)) {
            if (s) PyErr_Format(PyExc_ValueError, "bad limit %s", s);
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    if (!(seq = PySequence_Fast(keys, "key must be a sequence of paths"))) return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        const char *s = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i));
        if (!s || pp_keyring_add_file(x->keys, s, &err)) {
            Py_DECREF(seq);
            return s ? value_error("key", &err) : -1;
        }
    }
    Py_DECREF(seq);
    x->o.keys = x->keys;
    x->o.require_signature = require != 0;
    x->o.signature_path = signature;
    if (!strcmp(sandbox, "require"))
        x->o.sandbox = PP_SANDBOX_REQUIRE;
    else if (!strcmp(sandbox, "auto"))
        x->o.sandbox = PP_SANDBOX_AUTO;
    else if (!strcmp(sandbox, "process"))
        x->o.sandbox = PP_SANDBOX_PROCESS;
    else if (!strcmp(sandbox, "off"))
        x->o.sandbox = PP_SANDBOX_OFF;
    else {
        PyErr_Format(PyExc_ValueError, "sandbox must be require, auto, process or off, not %s",
                     sandbox);
        return -1;
    }
    return 0;
}

/* The report as the CLI's JSON (the Python side parses it into a Report). */
static PyObject *report_json(const pp_report *r)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return PyErr_NoMemory();
    pp_err e = pp_report_write_json(r, f);
    fclose(f);
    PyObject *s = e ? PyErr_NoMemory() : PyUnicode_DecodeUTF8(buf, (Py_ssize_t)n, "replace");
    free(buf);
    return s;
}

static PyObject *pp_error_to_py(pp_err e)
{
    if (e == PP_E_NOMEM) return PyErr_NoMemory();
    PyErr_Format(PyExc_RuntimeError, "pickleproof: %s", pp_errname(e));
    return NULL;
}

/* ---- scan ----------------------------------------------------------------------------------- */

static PyObject *native_scan(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"path", "data",   "policies",          "limits", "sandbox",
                            "keys", "require_signature", "signature", NULL};
    PyObject *path = Py_None, *policies, *limits, *keys;
    Py_buffer data = {0};
    const char *sandbox, *signature = NULL;
    int require = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oz*OOsOpz", names, &path, &data, &policies,
                                     &limits, &sandbox, &keys, &require, &signature))
        return NULL;
    PyObject *pathb = NULL, *out = NULL;
    opts x;
    if (opts_build(&x, policies, limits, sandbox, keys, require, signature)) goto done;
    if (path != Py_None && !PyUnicode_FSConverter(path, &pathb)) goto done;
    pp_report *r = NULL;
    pp_err e;
    Py_BEGIN_ALLOW_THREADS;
    if (pathb) {
        e = pp_scan_file(PyBytes_AS_STRING(pathb), &x.o, &r);
    } else if (x.o.sandbox == PP_SANDBOX_OFF) {
        e = pp_scan_buffer(data.buf, (size_t)data.len, &x.o, &r);
    } else {
        e = pp_sandbox_scan(data.buf, (size_t)data.len, &x.o, &r);
    }
    Py_END_ALLOW_THREADS;
    if (e) {
        pp_error_to_py(e);
        goto done;
    }
    out = report_json(r);
    pp_report_free(r);
done:
    opts_free(&x);
    Py_XDECREF(pathb);
    if (data.obj) PyBuffer_Release(&data);
    return out;
}

/* ---- load ----------------------------------------------------------------------------------- */

typedef struct loadcb {
    bool want_map;
    PyObject *torch_storage;
    PyObject *result;
    bool map_made;
} loadcb;

static pp_err on_load(void *arg, const pp_load_view *v)
{
    loadcb *c = arg;
    PyGILState_STATE g = PyGILState_Ensure();
    pp_mz_options mo = {.map = NULL, .torch_storage = c->torch_storage};
    if (c->want_map && v->map_lo && v->map_hi > v->map_lo) {
        MapObject *m = PyObject_New(MapObject, &MapType);
        if (m) {
            /* pp_load_file hands this mapping over once the callback ran: it is the Map's now */
            m->p = (void *)(uintptr_t)v->map_lo;
            m->n = (size_t)(v->map_hi - v->map_lo);
            c->map_made = true;
        }
        mo.map = (PyObject *)m;
    }
    if (!c->want_map || mo.map || !v->map_lo) c->result = pp_materialize(v, &mo);
    Py_XDECREF(mo.map);
    pp_err rc = c->result ? PP_OK : PP_E_INTERNAL;
    PyGILState_Release(g);
    return rc;
}

static PyObject *native_load(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *names[] = {"path",    "data", "policies",          "limits",    "sandbox",
                            "keys",    "require_signature", "signature", "mmap",
                            "torch_storage", NULL};
    PyObject *path = Py_None, *policies, *limits, *keys, *torch_storage = Py_None;
    Py_buffer data = {0};
    const char *sandbox, *signature = NULL;
    int require = 0, mmap_arrays = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Oz*OOsOpzpO", names, &path, &data, &policies,
                                     &limits, &sandbox, &keys, &require, &signature, &mmap_arrays,
                                     &torch_storage))
        return NULL;
    PyObject *pathb = NULL, *out = NULL;
    opts x;
    loadcb c = {.want_map = mmap_arrays != 0 && path != Py_None,
                .torch_storage = torch_storage == Py_None ? NULL : torch_storage};
    if (opts_build(&x, policies, limits, sandbox, keys, require, signature)) goto done;
    if (path != Py_None && !PyUnicode_FSConverter(path, &pathb)) goto done;
    pp_report *r = NULL;
    pp_load_map map = {0};
    pp_err e;
    Py_BEGIN_ALLOW_THREADS;
    if (pathb)
        e = pp_load_file(PyBytes_AS_STRING(pathb), &x.o, c.want_map, on_load, &c, &map, &r);
    else
        e = pp_load_buffer(data.buf, (size_t)data.len, &x.o, on_load, &c, &r);
    Py_END_ALLOW_THREADS;
    if (map.p && !c.map_made) munmap(map.p, map.n);
    if (e == PP_E_INTERNAL && c.result == NULL && PyErr_Occurred()) {
        pp_report_free(r);
        goto done; /* the materialization's own exception */
    }
    if (e) {
        pp_report_free(r);
        pp_error_to_py(e);
        goto done;
    }
    PyObject *rep = report_json(r);
    pp_report_free(r);
    if (!rep) goto done;
    out = Py_BuildValue("(NO)", rep, c.result ? c.result : Py_None);
done:
    Py_XDECREF(c.result);
    opts_free(&x);
    Py_XDECREF(pathb);
    if (data.obj) PyBuffer_Release(&data);
    return out;
}

static PyObject *native_set_helper(PyObject *self, PyObject *arg)
{
    (void)self;
    PyObject *b = NULL;
    if (arg != Py_None && !PyUnicode_FSConverter(arg, &b)) return NULL;
    pp_err e = pp_sandbox_set_helper_path(b ? PyBytes_AS_STRING(b) : NULL);
    Py_XDECREF(b);
    if (e) return pp_error_to_py(e);
    Py_RETURN_NONE;
}

static PyObject *native_builtin_policies(PyObject *self, PyObject *noargs)
{
    (void)self;
    (void)noargs;
    PyObject *l = PyList_New(0);
    for (const char *const *n = pp_policy_builtin_names(); l && *n; n++) {
        PyObject *s = PyUnicode_FromString(*n);
        if (!s || PyList_Append(l, s)) Py_CLEAR(l);
        Py_XDECREF(s);
    }
    return l;
}

static PyObject *native_policy_text(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    const char *t = pp_policy_builtin_text(name);
    if (!t) {
        PyErr_Format(PyExc_KeyError, "no built-in policy %s", name);
        return NULL;
    }
    return PyUnicode_FromString(t);
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))native_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(path, data, policies, limits, sandbox, keys, require_signature, signature) -> json"},
    {"load", (PyCFunction)(void (*)(void))native_load, METH_VARARGS | METH_KEYWORDS,
     "load(path, data, policies, limits, sandbox, keys, require_signature, signature, mmap, "
     "torch_storage) -> (json, object or None)"},
    {"set_helper", native_set_helper, METH_O, "Sets the sandbox helper executable."},
    {"builtin_policies", native_builtin_policies, METH_NOARGS, "Names of the built-in policies."},
    {"policy_text", native_policy_text, METH_O, "The text of a built-in policy."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "pickleproof._native", "The pickleproof library.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void);
PyMODINIT_FUNC PyInit__native(void)
{
    if (PyType_Ready(&MapType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddStringConstant(m, "version", PP_VERSION)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
