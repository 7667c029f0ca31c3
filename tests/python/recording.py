"""Recording CPython unpicklers: the reference side of the differential test.

`record(data, flavor)` runs CPython 3.11's own unpickler over `data` -- the C `_pickle.Unpickler`
(flavor "c", what pickle.load/loads use) or the pure-Python `pickle._Unpickler` (flavor "py", what
joblib uses) -- with a `find_class` that imports nothing and returns *stand-ins*. Calls, NEWOBJs,
BUILDs and container mutations on stand-ins are recorded as graph nodes, never made. The result is
the canonical document of tests/python/CANONICAL.md, directly comparable with
`pickleproof dump --json --flavor c|py`.

Design (each point checked against /usr/lib/python3.11/pickle.py and Modules/_pickle.c 3.11):

* The C unpickler keeps `proto` private, and `_compat_pickle` renames / dotted-name resolution
  depend on it. We learn both from the base class's own find_class: `_compat_pickle.IMPORT_MAPPING`
  (the very dict the C module holds) maps PROBE -> PROBE_MAPPED, and two fake modules under those
  names record attribute requests. Which module answers tells whether renames apply (proto < 3 and
  fix_imports); whether 'a' then 'b' or 'a.b' was requested tells whether names are attribute
  paths (proto >= 4). The renames are then applied exactly as find_class does.
* A name resolves (the stand-in model: every module and attribute exists) unless CPython's own
  structure makes it fail whatever is installed: empty module name (ValueError); proto < 4 and a
  '.' in the name, or an empty name (getattr would fail); proto >= 4 and a '<locals>' or empty
  path component. A failing lookup is still listed in "lookups" (find_class was called) but makes
  no node.
* Stand-ins are *types* (metaclass _Meta) so C NEWOBJ (`cls->tp_new`, type required) accepts them,
  and every call/new result is again a fresh stand-in type. _Meta defines __call__ (call node),
  __setstate__ (build effect), append/extend/__setitem__/add (effects); the common base defines
  __new__ (new node). Nothing defines __getinitargs__/__getattr__ (INST/OBJ with empty arguments
  call cls.__new__(cls) only when __getinitargs__ is absent), and object has no __setstate__ in
  3.11. The same (module, name) gives the same stand-in object.
* The C unpickler reads through a file object whose first read() hands over the whole input, so
  the C code switches to its in-memory mode: that reproduces `pickle.loads(bytes)` exactly (a
  BytesIO would not: the C file mode drops the rest of a frame when a read straddles its end).
* The Py unpickler's BYTEARRAY8 zero-fills `bytearray(n)` before reading: a length longer than the
  whole input is raised as an error up front (CPython would fail anyway: `buf[:] = read(n)`
  shortens the array and the next opcode read hits EOF), so hostile lengths cannot exhaust memory.
* Errors: any exception before STOP gives {"ok": false, ...} with the lookups and nodes made so
  far. RecursionError/MemoryError (and documents too deep or too big to write) raise SkipCase:
  the answer would depend on this process's limits, not on CPython's semantics.
"""

import _compat_pickle
import io
import math
import pickle
import re
import struct
import sys
import types
import warnings

__all__ = ["record", "record_both", "SkipCase", "normalize", "canonical_json"]

PROBE = "__pp_probe__"
PROBE_MAPPED = "__pp_probe_mapped__"

MAX_DEPTH = 600  # serialization nesting (the VM has its own nesting-depth limit)
MAX_VALUES = 200_000  # serialization size (memo/DUP "billion laughs" of shared tuples)


class SkipCase(Exception):
    """The case cannot be judged here (recursion, memory, document size)."""


# ---------------------------------------------------------------------------------------------
# The probe: learns from the base find_class whether renames apply and whether names are paths.

_probe_log = []


class _ProbeAttr:
    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        _probe_log.append(attr)
        return self


class _ProbeModule(types.ModuleType):
    def __getattr__(self, attr):
        if attr.startswith("__"):  # import machinery: __path__, __spec__ ...
            raise AttributeError(attr)
        _probe_log.append((self.__name__, attr))
        return _ProbeAttr()


def _install_probe():
    _compat_pickle.IMPORT_MAPPING[PROBE] = PROBE_MAPPED
    for name in (PROBE, PROBE_MAPPED):
        if not isinstance(sys.modules.get(name), _ProbeModule):
            sys.modules[name] = _ProbeModule(name)


_install_probe()


def _probe(base_find_class, unpickler):
    """Returns (renames_apply, dotted) for the unpickler's current protocol."""
    del _probe_log[:]
    base_find_class(unpickler, PROBE, "a.b")
    log = list(_probe_log)
    del _probe_log[:]
    if not log or not isinstance(log[0], tuple):
        raise AssertionError("probe: unexpected log %r" % (log,))
    modname, attr = log[0]
    renames = modname == PROBE_MAPPED
    if attr == "a" and log[1:] == ["b"]:
        dotted = True
    elif attr == "a.b" and len(log) == 1:
        dotted = False
    else:
        raise AssertionError("probe: unexpected log %r" % (log,))
    return renames, dotted


# ---------------------------------------------------------------------------------------------
# Stand-ins.

_current = None  # the Recorder running in this process (loads are not re-entrant here)


class _Meta(type):
    def __call__(cls, *args):
        return _current._make(cls, "call", args, None)

    def __setstate__(cls, state):
        _current._effect(cls, ("build", state))

    def append(cls, item):
        _current._effect(cls, ("append", item))

    def extend(cls, items):
        _current._effect(cls, ("extend", items))

    def __setitem__(cls, key, value):
        _current._effect(cls, ("setitem", key, value))

    def add(cls, item):
        _current._effect(cls, ("add", item))


class _StandIn(metaclass=type):
    def __new__(cls, /, *args, **kwargs):
        return _current._make(cls, "new", args, kwargs)


def _new_standin():
    return _Meta.__new__(_Meta, "standin", (_StandIn,), {})


class _Recorder:
    def __init__(self):
        self.lookups = []
        self.nodes = []  # [kind, payload..., effects]
        self.node_of = {}  # stand-in -> node index
        self.globals = {}  # (module, qualname) -> stand-in

    def _new_node(self, standin, node):
        self.node_of[standin] = len(self.nodes)
        self.nodes.append(node)
        return standin

    def _make(self, target, kind, args, kwargs):
        if target not in self.node_of:
            raise AssertionError("call on an unknown stand-in")
        s = _new_standin()
        if kind == "call":
            node = {"kind": "call", "fn": target, "args": args, "effects": []}
        else:
            node = {"kind": "new", "fn": target, "args": args,
                    "kwargs": list(kwargs.items()), "effects": []}
        return self._new_node(s, node)

    def _effect(self, target, eff):
        self.nodes[self.node_of[target]]["effects"].append(eff)

    def find_class(self, base_find_class, unpickler, module, name):
        renames, dotted = _probe(base_find_class, unpickler)
        if renames:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        self.lookups.append([module, name])
        if not module:
            raise ValueError("Empty module name")
        if dotted:
            parts = name.split(".")
            if "<locals>" in parts or "" in parts:
                raise AttributeError("Can't get attribute %r" % (name,))
        elif "." in name or not name:
            raise AttributeError("Can't get attribute %r" % (name,))
        key = (module, name)
        s = self.globals.get(key)
        if s is None:
            s = self._new_node(_new_standin(),
                               {"kind": "global", "name": [module, name], "effects": []})
            self.globals[key] = s
        return s


class _CUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return _current.find_class(pickle.Unpickler.find_class, self, module, name)


class _PyUnpickler(pickle._Unpickler):
    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module, name):
        return _current.find_class(pickle._Unpickler.find_class, self, module, name)

    def _pp_load_bytearray8(self):
        n, = struct.unpack("<Q", self.read(8))
        if n > sys.maxsize:
            raise pickle.UnpicklingError("BYTEARRAY8 exceeds system's maximum size")
        if n > self._pp_input_len:
            raise pickle.UnpicklingError("BYTEARRAY8 longer than the input (pp guard)")
        b = bytearray(n)
        self.readinto(b)
        self.append(b)

    dispatch[pickle.BYTEARRAY8[0]] = _pp_load_bytearray8


class _CEmuUnpickler(_PyUnpickler):
    """The pure-Python unpickler with each known C divergence (formats.md 1.12 and the ones this
    test found) patched in, C style. Used only as a self-check: where its document differs from
    the real C unpickler's, a C/Py difference is missing from the list below."""

    dispatch = dict(_PyUnpickler.dispatch)

    def _line(self, minlen=2):
        line = self.readline()
        if len(line) < minlen:
            raise pickle.UnpicklingError("pickle data was truncated")
        return line

    def load(self):
        raw = self._pp_file.readline

        def readline():  # C (in memory): a line without '\n' before the end is truncated
            line = raw()
            if not line.endswith(b"\n"):
                raise pickle.UnpicklingError("pickle data was truncated")
            return line

        self._file_readline = readline
        return super().load()

    # FRAME: C 3.11 in memory only checks that the frame's bytes exist, then ignores it.
    def load_frame(self):
        n, = struct.unpack("<Q", self.read(8))
        if n > sys.maxsize:
            raise OverflowError("FRAME length exceeds system's maximum")
        if n > self._pp_input_len - self._pp_file.tell():
            raise pickle.UnpicklingError("pickle data was truncated")

    # Text numbers: C strings end at the first NUL; INT uses strtol(base 0) first.
    def load_int(self):
        line = self._line()
        s = line.split(b"\0", 1)[0]
        x, end, ok = _c_strtol(s)
        if ok and (end == len(s) or s[end:end + 1] == b"\n"):
            self.append(bool(x) if len(line) == 3 and x in (0, 1) else x)
            return
        try:
            self.append(int(s, 0))
        except ValueError:
            raise ValueError("could not convert string to int") from None

    def load_long(self):
        line = self._line()
        s = line[:-1]
        if s.endswith(b"L"):
            s = s[:-1]
        self.append(int(s.split(b"\0", 1)[0], 0))

    def load_float(self):
        s = self._line()[:-1].split(b"\0", 1)[0]
        if not _C_FLOAT.fullmatch(s):
            raise ValueError("could not convert string to float")
        v = float(s)
        if math.isinf(v) and not _C_INF.fullmatch(s):
            raise OverflowError("value too large to convert to float")
        self.append(v)

    def load_get(self):
        i = int(self._line().split(b"\0", 1)[0], 10)
        if not -2**63 <= i < 2**63:
            raise OverflowError("Python int too large to convert to C ssize_t")
        try:
            self.append(self.memo[i])
        except KeyError:
            raise pickle.UnpicklingError("Memo value not found at index %d" % i) from None

    def load_put(self):
        line = self._line()
        value = self.stack[-1]
        i = int(line.split(b"\0", 1)[0], 10)
        if i >= 2**63:
            raise OverflowError("Python int too large to convert to C ssize_t")
        if i < 0:
            raise ValueError("negative PUT argument")
        self.memo[i] = value

    # GLOBAL/INST: each line needs >= 1 character; INST takes its MARK first.
    def load_global(self):
        module = self._line()[:-1].decode("utf-8")
        name = self._line()[:-1].decode("utf-8")
        self.append(self.find_class(module, name))

    def load_inst(self):
        args = self.pop_mark()
        module = self._line()[:-1].decode("ascii")
        name = self._line()[:-1].decode("ascii")
        klass = self.find_class(module, name)
        self._instantiate(klass, args)

    # REDUCE/NEWOBJ/NEWOBJ_EX: C type checks.
    def load_reduce(self):
        stack = self.stack
        args = stack.pop()
        func = stack.pop()
        if type(args) is not tuple:
            raise TypeError("argument list must be a tuple")
        stack.append(func(*args))

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        if not isinstance(cls, type) or type(args) is not tuple:
            raise pickle.UnpicklingError("NEWOBJ class/args check")
        self.append(cls.__new__(cls, *args))

    def load_newobj_ex(self):
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        if not isinstance(cls, type) or type(args) is not tuple or type(kwargs) is not dict:
            raise pickle.UnpicklingError("NEWOBJ_EX class/args/kwargs check")
        self.append(cls.__new__(cls, *args, **kwargs))

    # BUILD: C checks `is not None` and requires dicts.
    def load_build(self):
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        setstate = getattr(inst, "__setstate__", None)
        if setstate is not None:
            setstate(state)
            return
        missing = object()  # C: a slot state that is present but None is still checked
        slotstate = missing
        if type(state) is tuple and len(state) == 2:
            state, slotstate = state
        if state is not None:
            if not isinstance(state, dict):
                raise pickle.UnpicklingError("state is not a dictionary")
            d = inst.__dict__
            for k, v in state.items():
                d[k] = v
        if slotstate is not missing:
            if not isinstance(slotstate, dict):
                raise pickle.UnpicklingError("slot state is not a dictionary")
            for k, v in slotstate.items():
                setattr(inst, k, v)

    # APPEND/APPENDS/ADDITEMS: C prefers extend([x]), skips empty batches before any lookup.
    def load_append(self):
        value = self.stack.pop()
        target = self.stack[-1]
        if type(target) is list:
            target.append(value)
            return
        extend = getattr(target, "extend", None)
        if extend is not None:
            extend([value])
        else:
            target.append(value)

    def load_appends(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if not items:
            return
        if type(target) is list:
            target.extend(items)
            return
        extend = getattr(target, "extend", None)
        if extend is not None:
            extend(items)
        else:
            append = target.append
            for x in items:
                append(x)

    def load_additems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if not items:
            return
        if isinstance(target, set):
            target.update(items)
        else:
            add = target.add
            for x in items:
                add(x)

    # SETITEMS: C rejects an odd count before setting anything.
    def load_setitems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if len(items) % 2:
            raise pickle.UnpicklingError("odd number of items for SETITEMS")
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]


for _name in ("frame", "int", "long", "float", "get", "put", "global", "inst", "reduce", "newobj",
              "newobj_ex", "build", "append", "appends", "additems", "setitems"):
    _CEmuUnpickler.dispatch[getattr(pickle, _name.upper())[0]] = getattr(_CEmuUnpickler,
                                                                        "load_" + _name)
del _name

_C_FLOAT = re.compile(rb"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:inf|infinity|nan))")
_C_INF = re.compile(rb"[+-]?(?i:inf|infinity)")


def _c_strtol(s):
    """glibc strtol(s, &end, 0) on a 64-bit long: (value, end index, ok); ok is False when
    errno would be set (overflow). No digits: end is 0."""
    i, n = 0, len(s)
    while i < n and s[i] in b" \t\n\v\f\r":
        i += 1
    neg = False
    if i < n and s[i] in b"+-":
        neg = s[i] == 0x2D
        i += 1
    base = 10
    if s[i:i + 2] in (b"0x", b"0X") and i + 2 < n and s[i + 2] in b"0123456789abcdefABCDEF":
        base = 16
        i += 2
    elif s[i:i + 1] == b"0":
        base = 8
    digits = b"0123456789abcdef"[:base]
    start, v = i, 0
    while i < n and s[i:i + 1].lower() in [bytes([c]) for c in digits]:
        v = v * base + int(s[i:i + 1], 16)
        i += 1
    if i == start:
        return 0, 0, True
    v = -v if neg else v
    return v, i, -2**63 <= v < 2**63


class _WholeInput:
    """A file whose first read() returns everything: the C unpickler then runs in its in-memory
    mode, exactly as pickle.loads(bytes)."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    def read(self, n=-1):
        d, self.data = self.data, b""
        return d

    def readline(self):
        d, self.data = self.data, b""
        return d


# ---------------------------------------------------------------------------------------------
# Serialization (CANONICAL.md).

def _hexstr(s):
    return s.encode("utf-8", "surrogatepass").hex()


class _Writer:
    def __init__(self, rec):
        self.rec = rec
        self.ids = {}  # id(obj) -> k
        self.keep = []  # keep objects alive while their id() is a key
        self.count = 0

    def _mutable_id(self, obj):
        k = self.ids.get(id(obj))
        if k is not None:
            return k, False
        k = len(self.ids)
        self.ids[id(obj)] = k
        self.keep.append(obj)
        return k, True

    def value(self, v, depth=0):
        self.count += 1
        if self.count > MAX_VALUES:
            raise SkipCase("document too large")
        if depth > MAX_DEPTH:
            raise SkipCase("document too deep")
        t = type(v)
        if v is None or t is bool:
            return v
        if t is int:
            return {"int": hex(v)}
        if t is float:
            return {"float": struct.pack(">d", v).hex()}
        if t is str:
            return {"str": _hexstr(v)}
        if t is bytes:
            return {"bytes": v.hex()}
        if t is tuple:
            return {"tuple": [self.value(x, depth + 1) for x in v]}
        if t is frozenset:
            return {"frozenset": [self.value(x, depth + 1) for x in v]}
        if t is memoryview:
            if type(v.obj) is not bytearray or not v.readonly:
                raise AssertionError("unexpected memoryview over %r" % type(v.obj))
            return {"memoryview": self.value(v.obj, depth + 1)}
        if t is list or t is dict or t is set or t is bytearray:
            k, first = self._mutable_id(v)
            if not first:
                return {"ref": k}
            if t is list:
                return {"list": [self.value(x, depth + 1) for x in v], "id": k}
            if t is dict:
                return {"dict": [[self.value(a, depth + 1), self.value(b, depth + 1)]
                                 for a, b in v.items()], "id": k}
            if t is set:
                return {"set": [self.value(x, depth + 1) for x in v], "id": k}
            return {"bytearray": bytes(v).hex(), "id": k}
        if isinstance(v, _Meta):
            i = self.rec.node_of.get(v)
            if i is None:
                raise AssertionError("unknown stand-in in the graph")
            return {"node": i}
        raise AssertionError("unexpected object in the graph: %r" % (t,))

    def effect(self, eff):
        op = eff[0]
        if op == "build":
            return {"op": "build", "state": self.value(eff[1])}
        if op == "append":
            return {"op": "append", "item": self.value(eff[1])}
        if op == "extend":
            return {"op": "extend", "items": self.value(eff[1])}
        if op == "setitem":
            return {"op": "setitem", "key": self.value(eff[1]), "value": self.value(eff[2])}
        if op == "add":
            return {"op": "add", "item": self.value(eff[1])}
        raise AssertionError(op)

    def node(self, i, n):
        out = {"id": i}
        if n["kind"] == "global":
            out["global"] = list(n["name"])
        elif n["kind"] == "call":
            out["call"] = self.value(n["fn"])
            out["args"] = [self.value(a) for a in n["args"]]
        else:
            out["new"] = self.value(n["fn"])
            out["args"] = [self.value(a) for a in n["args"]]
            out["kwargs"] = [[self.value(k), self.value(v)] for k, v in n["kwargs"]]
        out["effects"] = [self.effect(e) for e in n["effects"]]
        return out


def _document(rec, ok, result=None, exc=None):
    w = _Writer(rec)
    doc = {"ok": ok, "lookups": [list(x) for x in rec.lookups]}
    doc["nodes"] = [w.node(i, n) for i, n in enumerate(rec.nodes)]
    if ok:
        doc["streams"] = [{"result": w.value(result)}]
    else:
        doc["error"] = "cpython"
        doc["exception"] = type(exc).__name__
        doc["message"] = str(exc)[:300]
    return doc


def record(data, flavor, encoding="ASCII"):
    """The canonical document for `data` as CPython's `flavor` ("c" or "py") unpickler reads it,
    constructed with `encoding` (how Python-2 str payloads are decoded: "ASCII", "latin1",
    "utf-8" or "bytes"). Raises SkipCase when the answer depends on this process's limits."""
    global _current
    if flavor not in ("c", "py", "c-emu"):
        raise ValueError(flavor)
    data = bytes(data)
    rec = _Recorder()
    prev, _current = _current, rec
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if flavor == "c":
                    u = _CUnpickler(_WholeInput(data), encoding=encoding)
                else:
                    f = io.BytesIO(data)
                    u = (_PyUnpickler if flavor == "py" else _CEmuUnpickler)(f, encoding=encoding)
                    u._pp_input_len = len(data)
                    u._pp_file = f
                result = u.load()
            except (RecursionError, MemoryError) as e:
                raise SkipCase(type(e).__name__) from None
            except AssertionError:
                raise
            except Exception as e:  # anything CPython raises before STOP
                try:
                    return _document(rec, False, exc=e)
                except RecursionError:
                    raise SkipCase("RecursionError") from None
            try:
                return _document(rec, True, result=result)
            except RecursionError:
                raise SkipCase("RecursionError") from None
    finally:
        _current = prev


def real_load_document(data, flavor):
    """The document of a *real* pickle.loads / pickle._loads of a stream that makes no lookups
    (so nothing is imported or called): checks the recorders against CPython itself. Returns
    None when the load looked something up after all."""
    if flavor not in ("c", "py"):
        raise ValueError(flavor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if flavor == "c":
                value = pickle.loads(data)
            else:
                u = _NoGlobalsPyUnpickler(io.BytesIO(data))
                u._pp_input_len = len(data)
                value = u.load()
        except _SawGlobal:
            return None
        except (RecursionError, MemoryError) as e:
            raise SkipCase(type(e).__name__) from None
        except Exception as e:
            return {"ok": False, "exception": type(e).__name__}
    try:
        return {"ok": True, "lookups": [], "nodes": [],
                "streams": [{"result": _Writer(_Recorder()).value(value)}]}
    except RecursionError:
        raise SkipCase("RecursionError") from None


class _SawGlobal(Exception):
    pass


class _NoGlobalsPyUnpickler(_PyUnpickler):
    def find_class(self, module, name):
        raise _SawGlobal()


def record_both(data):
    """{"c": doc-or-None, "py": doc-or-None}; None where the case was skipped."""
    out = {}
    for fl in ("c", "py"):
        try:
            out[fl] = record(data, fl)
        except SkipCase:
            out[fl] = None
    return out


def limit_memory(nbytes=2560 << 20):
    """Caps this process's address space. The C unpickler zero-fills a memo array sized by the
    largest PUT index (`r\\xff\\xff\\xff\\x0f` asks for 4 GiB) and allocates BINBYTES8/BYTEARRAY8
    payloads before reading them; under the cap those raise MemoryError and the case is skipped
    instead of swapping. Call it in worker processes only."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        nbytes = min(nbytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (nbytes, hard))


# ---------------------------------------------------------------------------------------------
# Comparison helpers shared by the tests.

def canonical_json(v):
    import json
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def normalize(doc):
    """Sorts set/frozenset elements (any order is allowed) recursively; returns a new object."""
    if isinstance(doc, list):
        return [normalize(x) for x in doc]
    if isinstance(doc, dict):
        out = {k: normalize(v) for k, v in doc.items()}
        for key in ("set", "frozenset"):
            if key in out and isinstance(out[key], list):
                out[key] = sorted(out[key], key=canonical_json)
        return out
    return doc


if __name__ == "__main__":  # record FILE... : print one document per line per flavour
    import json
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            data = f.read()
        for fl in ("c", "py"):
            try:
                d = record(data, fl)
            except SkipCase as e:
                d = {"skip": str(e)}
            print(fl, json.dumps(d))
