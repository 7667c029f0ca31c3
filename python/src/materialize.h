/* Materialization: the judged graph of a load turned into the Python objects CPython's unpickler
 * would have built, calling only what the graph calls (every such call was judged by the policy,
 * by the sandbox and again by this process). */
#ifndef PP_MATERIALIZE_H
#define PP_MATERIALIZE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "load.h"

typedef struct pp_mz_options {
    PyObject *map;    /* an object exporting the load's map as a read-only buffer, or NULL */
    PyObject *torch_storage; /* callable(storage_type, bytearray) -> storage, or NULL */
} pp_mz_options;

/* Returns a new reference to the loaded object, or NULL with a Python exception set. Holds the
 * GIL. */
PyObject *pp_materialize(const pp_load_view *v, const pp_mz_options *o);

#endif
