# label: cli
"""Malicious and malformed pickles through `pickleproof scan --format json`.

Every case is assembled byte by byte at test time (nothing large is committed) and asserts the
verdict, the rule and the exact byte offset of the opcode responsible. Offsets come from the
assembler `P`, which records where each labelled opcode starts, so the expected numbers cannot
drift from the bytes. A failing assertion prints the case's `pickletools.dis` listing and the
JSON we got; `/usr/bin/python3 test_malicious.py` prints the listing of every case.

The bad-input half checks that no input crashes or hangs the scanner: every truncation of small
valid pickles, absurd length fields, odd counts, missing memo entries, mark underflows, a million
nested lists or MARKs, and memo/DUP "billion laughs" -- each must end in a clean verdict naming
the offset and reason (limit verdicts naming the limit), quickly and in linear memory.
"""

import collections
import datetime
import decimal
import fractions
import io
import json
import os
import pickle
import pickletools
import re
import struct
import subprocess
import sys
import time

import pytest

PICKLEPROOF = os.environ.get("PICKLEPROOF")
SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
SLOW = 6 if SANITIZED else 1  # time budgets stretch under ASan/UBSan

needs_cli = pytest.mark.skipif(not PICKLEPROOF, reason="PICKLEPROOF is not set")

# ---------------------------------------------------------------------------------------------
# Assembling.


class P:
    """A pickle under construction: P()(bytes, "label")(bytes)... ; .at[label] is the offset at
    which that piece starts; bytes(p) is the pickle."""

    def __init__(self):
        self.b = bytearray()
        self.at = {}

    def __call__(self, data, label=None):
        if label is not None:
            self.at[label] = len(self.b)
        self.b += data
        return self

    def __bytes__(self):
        return bytes(self.b)

    def __len__(self):
        return len(self.b)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def sbu(s):  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def binunicode(s):
    b = s.encode()
    return b"X" + u32(len(b)) + b


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def inst(module, name):
    return b"i" + module.encode() + b"\n" + name.encode() + b"\n"


def dis(data):
    out = io.StringIO()
    try:
        pickletools.dis(data, out=out)
    except Exception as e:  # malformed on purpose: show what parses
        out.write("  <dis stops: %s: %s>\n" % (type(e).__name__, e))
    text = out.getvalue()
    return text if len(text) < 6000 else text[:6000] + "  ...\n"


# ---------------------------------------------------------------------------------------------
# Running the CLI.


def run(args, timeout=60, **kw):
    return subprocess.run([PICKLEPROOF] + list(args), capture_output=True,
                          timeout=timeout * SLOW, **kw)


def scan(tmp_path, data, *opts, name="case.pkl", timeout=60):
    """(exit code, file object, stderr) of `scan --format json OPTS FILE`."""
    path = tmp_path / name
    path.write_bytes(bytes(data))
    p = run(["scan", "--format", "json", *opts, str(path)], timeout=timeout)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode in (0, 1, 2), "exit %d (crash?)\n%s" % (p.returncode, err[-3000:])
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-3000:]
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        raise AssertionError("not JSON (exit %d): %r\nstderr: %s" % (p.returncode, p.stdout[:2000], err))
    assert doc["tool"] == "pickleproof" and isinstance(doc["files"], list) and len(doc["files"]) == 1
    fo = doc["files"][0]
    assert fo["path"] == str(path)
    if not (fo["error"] and fo["error"]["limit"] == "input-bytes"):  # not read at all then
        assert fo["bytes"] == len(bytes(data)), fo
    return p.returncode, fo, err


def gname(g):
    return g.replace(":", ".") if isinstance(g, str) else g


def context(data, fo):
    return "\n--- input (%d bytes): %s\n%s--- got:\n%s" % (
        len(bytes(data)), bytes(data)[:400].hex(), dis(bytes(data)), json.dumps(fo, indent=1)[:6000])


def has_finding(fo, rule, offset=None, glob_=None, opcode=None):
    for f in fo["findings"]:
        if f["rule"] != rule:
            continue
        if offset is not None and f["offset"] != offset:
            continue
        if glob_ is not None and gname(f["global"]) != glob_:
            continue
        if opcode is not None and f["opcode"] != opcode:
            continue
        return True
    return False


def expect(rc, fo, data, verdict, findings=(), error=None, absent=()):
    """findings: (rule, offset, global-or-None, opcode-or-None); error: (names, offset)."""
    ctx = context(data, fo)
    assert fo["verdict"] == verdict, "verdict %s, expected %s%s" % (fo["verdict"], verdict, ctx)
    assert rc == (0 if verdict == "safe" else 1), "exit %d for verdict %s%s" % (rc, verdict, ctx)
    for rule, offset, g, op in findings:
        assert has_finding(fo, rule, offset, g, op), \
            "no finding %s at offset %s (global %s, opcode %s)%s" % (rule, offset, g, op, ctx)
        f = next(f for f in fo["findings"] if f["rule"] == rule and f["offset"] == offset)
        assert f["message"] and f["severity"] and f["stream"], ctx
    for rule in absent:
        assert not has_finding(fo, rule), "unexpected %s finding%s" % (rule, ctx)
    if error is None:
        assert fo["error"] is None, "unexpected error%s" % ctx
    else:
        names, offset = error
        names = (names,) if isinstance(names, str) else names
        e = fo["error"]
        assert e is not None, "no error reported, expected %s at %s%s" % (names, offset, ctx)
        assert e["name"] in names, "error %s, expected one of %s%s" % (e["name"], names, ctx)
        if offset is not None:
            assert e["offset"] == offset, "error at %s, expected %s%s" % (e["offset"], offset, ctx)
        assert e["message"], ctx


# ---------------------------------------------------------------------------------------------
# The malicious cases: (id, pickle, verdict, findings, error).

DANGEROUS = [("os", "system"), ("posix", "system"), ("subprocess", "Popen"), ("builtins", "eval"),
             ("builtins", "exec"), ("builtins", "__import__"), ("nt", "system"),
             ("_posixsubprocess", "fork_exec"), ("pickle", "loads"), ("runpy", "_run_code")]

GNA, CNA = "global-not-allowed", "call-not-allowed"


def cases():
    out = []

    def case(cid, p, verdict, findings=(), error=None, opts=(), absent=()):
        out.append(pytest.param(bytes(p), verdict, list(findings), error, list(opts), list(absent), id=cid))

    for m, n in DANGEROUS:
        g = "%s.%s" % (m, n)
        # GLOBAL m n; MARK; STRING 'id'; TUPLE; REDUCE; STOP   (protocol 0)
        p = P()(glob(m, n), "g")(b"(S'id'\nt")(b"R", "call")(b".")
        case("global-reduce-" + g, p, "unsafe",
             [(GNA, 0, g, "GLOBAL"), (CNA, p.at["call"], g, "REDUCE")])
        # PROTO 4; SHORT_BINUNICODE m; SHORT_BINUNICODE n; STACK_GLOBAL; SHORT_BINUNICODE 'id'; TUPLE1; REDUCE
        p = P()(b"\x80\x04")(sbu(m))(sbu(n))(b"\x93", "g")(sbu("id"))(b"\x85")(b"R", "call")(b".")
        case("stack-global-" + g, p, "unsafe",
             [(GNA, p.at["g"], g, "STACK_GLOBAL"), (CNA, p.at["call"], g, "REDUCE")])
        # MARK; STRING 'id'; INST m n  (cls(*args))
        p = P()(b"(S'id'\n")(inst(m, n), "i")(b".")
        case("inst-" + g, p, "unsafe", [(GNA, p.at["i"], g, "INST"), (CNA, p.at["i"], g, "INST")])
        # MARK; GLOBAL m n; STRING 'id'; OBJ
        p = P()(b"(")(glob(m, n), "g")(b"S'id'\n")(b"o", "o")(b".")
        case("obj-" + g, p, "unsafe", [(GNA, p.at["g"], g, "GLOBAL"), (CNA, p.at["o"], g, "OBJ")])
        # the lookup alone imports the module: GLOBAL; POP; NONE; STOP
        p = P()(glob(m, n), "g")(b"0N.")
        case("lookup-only-" + g, p, "unsafe", [(GNA, 0, g, "GLOBAL")], absent=[CNA])

    # INST/OBJ without arguments: cls.__new__(cls) -> a construction, not a call
    p = P()(b"(")(inst("os", "_wrap_close"), "i")(b".")
    case("inst-noargs", p, "unsafe", [(GNA, 0 + 1, "os._wrap_close", "INST"),
                                      ("construct-not-allowed", 1, "os._wrap_close", "INST")])
    # getattr is allowed only as getattr(construct-allowed class, identifier)
    p = P()(glob("builtins", "getattr"))(glob("builtins", "list"))(sbu("__subclasses__"))(b"\x86")(b"R", "call")(b".")
    case("getattr-unconstrained", b"\x80\x02" + bytes(p), "unsafe",
         [("argument-not-allowed", p.at["call"] + 2, "builtins.getattr", "REDUCE")], absent=[GNA])
    p = P()(glob("builtins", "getattr"))(glob("os", "path"), "g")(sbu("join"))(b"\x86")(b"R", "call")(b".")
    case("getattr-module", b"\x80\x02" + bytes(p), "unsafe",
         [(GNA, p.at["g"] + 2, "os.path", "GLOBAL")])

    # -- _compat_pickle renames (protocol < 3 only)
    for proto in (None, 0, 1, 2):
        pre = b"" if proto is None else b"\x80" + bytes([proto])
        tag = "noproto" if proto is None else "p%d" % proto
        p = P()(pre)(glob("__builtin__", "eval"), "g")(b"(S'1'\nt")(b"R", "call")(b".")
        case("rename-builtin-eval-" + tag, p, "unsafe",
             [(GNA, p.at["g"], "builtins.eval", "GLOBAL"), (CNA, p.at["call"], "builtins.eval", "REDUCE")])
        p = P()(pre)(glob("commands", "getoutput"), "g")(b"(S'id'\nt")(b"R", "call")(b".")
        case("rename-commands-" + tag, p, "unsafe", [(GNA, p.at["g"], "subprocess.getoutput", "GLOBAL")])
        p = P()(pre)(glob("cPickle", "loads"), "g")(b"(S'x'\nt")(b"R", "call")(b".")
        case("rename-cpickle-" + tag, p, "unsafe", [(GNA, p.at["g"], "pickle.loads", "GLOBAL")])
        # and a rename that makes a pickle safe: __builtin__.set([]) is builtins.set([])
        p = P()(pre)(glob("__builtin__", "set"))(b"(]t")(b"R.")
        case("rename-builtin-set-" + tag, p, "safe")
    p = P()(b"\x80\x03")(glob("__builtin__", "eval"), "g")(b"(S'1'\nt")(b"R.")
    case("no-rename-p3", p, "unsafe", [(GNA, p.at["g"], "__builtin__.eval", "GLOBAL")])
    # PROTO switching: the rename follows the most recent PROTO
    p = P()(b"\x80\x03\x80\x02")(glob("__builtin__", "eval"), "g")(b"0N.")
    case("rename-after-proto-switch", p, "unsafe", [(GNA, p.at["g"], "builtins.eval", "GLOBAL")])

    # -- dotted names (protocol >= 4): attribute paths from an innocent module
    for m, n in [("pathlib", "os.system"), ("builtins", "eval.__call__"), ("shutil", "os.system"),
                 ("numpy", "core.multiarray._reconstruct.__globals__"), ("collections", "OrderedDict.__init__"),
                 ("torch", "serialization.os.system"), ("code", "InteractiveInterpreter.runsource")]:
        g = "%s.%s" % (m, n)
        p = P()(b"\x80\x04")(sbu(m))(sbu(n))(b"\x93", "g")(sbu("id"))(b"\x85")(b"R", "call")(b".")
        case("dotted-stack-global-" + g, p, "unsafe",
             [(GNA, p.at["g"], g, "STACK_GLOBAL"), (CNA, p.at["call"], g, "REDUCE")])
        p = P()(b"\x80\x04")(glob(m, n), "g")(b".")
        case("dotted-global-" + g, p, "unsafe", [(GNA, p.at["g"], g, "GLOBAL")])
    p = P()(b"\x80\x02\x80\x04")(glob("os", "path.join"), "g")(b".")
    case("dotted-after-proto-switch", p, "unsafe", [(GNA, p.at["g"], "os.path.join", "GLOBAL")])

    # -- STACK_GLOBAL operands through the memo, with decoys
    # UNICODE 'os'; PUT 2; POP; UNICODE 'system'; PUT 3; POP; ...decoys...; GET 2; GET 3; STACK_GLOBAL
    p = (P()(b"Vos\np2\n0Vsystem\np3\n0Vtorch\np0\n0VLongStorage\np1\n0g2\ng3\n")(b"\x93", "g")
         (b"(Vcat flag.txt\nt")(b"R", "call")(b"."))
    case("stack-global-memo-text", p, "unsafe",
         [(GNA, p.at["g"], "os.system", "STACK_GLOBAL"), (CNA, p.at["call"], "os.system", "REDUCE")])
    p = (P()(b"\x80\x04")(sbu("os"))(b"\x94")(sbu("system"))(b"\x94")(sbu("torch._utils"))(b"0")
         (sbu("_rebuild_tensor_v2"))(b"0")(b"\x93", "g")(b"."))
    case("stack-global-decoys", p, "unsafe", [(GNA, p.at["g"], "os.system", "STACK_GLOBAL")])
    p = (P()(b"\x80\x04")(sbu("os"))(b"q\x07")(b"0")(sbu("system"))(b"r\x00\x01\x00\x00")(b"0")
         (b"h\x07")(b"j\x00\x01\x00\x00")(b"\x93", "g")(b"."))
    case("stack-global-binput-binget", p, "unsafe", [(GNA, p.at["g"], "os.system", "STACK_GLOBAL")])
    # Python-2 str operands: STRING/BINSTRING/SHORT_BINSTRING decode to str (ASCII) -> accepted
    for tag, a, b in [("string", b"S'os'\n", b"S'system'\n"),
                      ("short-binstring", b"U\x02os", b"U\x06system"),
                      ("binstring", b"T\x02\x00\x00\x00os", b"T\x06\x00\x00\x00system")]:
        p = P()(a)(b)(b"\x93", "g")(b"S'ls'\n\x85")(b"R", "call")(b".")
        case("stack-global-" + tag, p, "unsafe",
             [(GNA, p.at["g"], "os.system", "STACK_GLOBAL"), (CNA, p.at["call"], "os.system", "REDUCE")])
    # bytes operands: "STACK_GLOBAL requires str"
    p = P()(b"\x80\x04C\x02osC\x06system")(b"\x93", "g")(b".")
    case("stack-global-bytes", p, "malformed", error=("bad-value", p.at["g"]), absent=[GNA])
    p = P()(b"\x80\x04K\x01")(sbu("system"))(b"\x93", "g")(b".")
    case("stack-global-int", p, "malformed", error=("bad-value", p.at["g"]), absent=[GNA])

    # -- NEWOBJ / NEWOBJ_EX on classes that may not be constructed
    p = P()(b"\x80\x02")(glob("os", "_wrap_close"), "g")(b")")(b"\x81", "new")(b".")
    case("newobj-dangerous", p, "unsafe", [(GNA, p.at["g"], "os._wrap_close", "GLOBAL"),
                                           ("construct-not-allowed", p.at["new"], "os._wrap_close", "NEWOBJ")])
    p = P()(b"\x80\x04")(sbu("os"))(sbu("_wrap_close"))(b"\x93", "g")(b")}")(b"\x92", "new")(b".")
    case("newobj-ex-dangerous", p, "unsafe",
         [(GNA, p.at["g"], "os._wrap_close", "STACK_GLOBAL"),
          ("construct-not-allowed", p.at["new"], "os._wrap_close", "NEWOBJ_EX")])
    p = P()(b"\x80\x02")(glob("builtins", "int"))(b")")(b"\x81", "new")(b".")
    case("newobj-reference-only", p, "unsafe",
         [("construct-not-allowed", p.at["new"], "builtins.int", "NEWOBJ")], absent=[GNA])
    p = P()(b"\x80\x02")(glob("collections", "OrderedDict"))(b")R")(b")")(b"\x81", "new")(b".")
    case("newobj-on-call-result", p, "unsafe", [("construct-not-allowed", p.at["new"], None, "NEWOBJ")])

    # -- BUILD on a class, a function, a module
    p = P()(b"\x80\x04")(sbu("collections"))(sbu("OrderedDict"))(b"\x93")(b"}")(sbu("x"))(sbu("y"))(b"s")(b"b", "b")(b".")
    case("build-on-class", p, "unsafe", [("build-not-allowed", p.at["b"], None, "BUILD")], absent=[GNA])
    p = P()(b"\x80\x02")(glob("builtins", "len"), "g")(b"}")(b"b", "b")(b".")
    case("build-on-function", p, "unsafe", [(GNA, p.at["g"], "builtins.len", "GLOBAL"),
                                            ("build-not-allowed", p.at["b"], None, "BUILD")])
    # picklescan sys_module_override: BUILD on the module torch._utils
    p = (P()(b"\x80\x04")(sbu("torch"))(sbu("_utils"))(b"\x93", "g")(b"}")(sbu("_rebuild_tensor"))(sbu("builtins"))
         (b"s")(b"b", "b")(b"."))
    case("build-on-module", p, "unsafe", [(GNA, p.at["g"], "torch._utils", "STACK_GLOBAL"),
                                          ("build-not-allowed", p.at["b"], None, "BUILD")])
    # modelscan #330: BUILD slot state on numpy.size, then numpy.size(numpy.size, 'eval')
    b10 = bytes.fromhex(
        "80049566000000000000008c056e756d70798c0473697a659394948c056e756d70798c0c5f5f6275696c7469"
        "6e735f5f93949468017d7d8c0573686170656803738662680168018c046576616c86528c1d5f5f696d706f72"
        "745f5f28226f7322292e73797374656d28226964222985522e")
    case("build-on-numpy-size", b10, "unsafe",
         [(GNA, 24, "numpy.size", "STACK_GLOBAL"), (GNA, 48, "numpy.__builtins__", "STACK_GLOBAL"),
          ("build-not-allowed", 66, None, "BUILD"), (CNA, 78, "numpy.size", "REDUCE"),
          (CNA, 111, None, "REDUCE")])

    # -- BUILD state with dunder keys on an allowed class
    # OrderedDict(); BUILD {'__setstate__': builtins.print}; BUILD 'x' (calls print('x'))
    p = (P()(b"\x80\x02")(glob("collections", "OrderedDict"))(b")R")(b"}")(binunicode("__setstate__"))
         (glob("builtins", "print"), "g")(b"s")(b"b", "b1")(binunicode("BUILD-SETSTATE"))(b"b", "b2")(b"."))
    case("build-dunder-setstate", p, "unsafe", [("dunder-state", p.at["b1"], "collections.OrderedDict", "BUILD"),
                                                (GNA, p.at["g"], "builtins.print", "GLOBAL")])
    p = (P()(b"\x80\x02")(glob("collections", "OrderedDict"))(b")R")(b"N}")(binunicode("__class__"))(b"K\x01s\x86")
         (b"b", "b")(b"."))
    case("build-dunder-slotstate", p, "unsafe", [("dunder-state", p.at["b"], "collections.OrderedDict", "BUILD")],
         absent=[GNA])
    p = (P()(b"\x80\x02")(glob("collections", "OrderedDict"))(b")R")(b"}")(binunicode("__reduce__"))(b"K\x01s")
         (b"b", "b")(b"."))
    case("build-dunder-reduce", p, "unsafe", [("dunder-state", p.at["b"], "collections.OrderedDict", "BUILD")])
    p = P()(b"\x80\x02")(glob("collections", "OrderedDict"))(b")R")(b"}")(binunicode("a"))(b"K\x01s")(b"b")(b".")
    case("build-plain-state-ok", p, "safe")

    # -- method-call injection: APPEND/SETITEM/ADDITEMS on a global or a call result
    p = P()(b"\x80\x02")(glob("builtins", "list"))(b"K\x01")(b"a", "m")(b".")
    case("append-on-global", p, "unsafe", [("mutation-not-allowed", p.at["m"], None, "APPEND")])
    p = P()(b"\x80\x02")(glob("builtins", "dict"))(b"(K\x01K\x02")(b"u", "m")(b".")
    case("setitems-on-global", p, "unsafe", [("mutation-not-allowed", p.at["m"], None, "SETITEMS")])
    p = P()(b"\x80\x04")(glob("builtins", "set"))(b"(K\x01")(b"\x90", "m")(b".")
    case("additems-on-global", p, "unsafe", [("mutation-not-allowed", p.at["m"], None, "ADDITEMS")])
    p = (P()(b"\x80\x02")(glob("_codecs", "encode"))(binunicode("a"))(binunicode("latin1"))(b"\x86R")
         (b"K\x00K\x01")(b"s", "m")(b"."))
    case("setitem-on-call-result", p, "unsafe", [("mutation-not-allowed", p.at["m"], None, "SETITEM")])
    p = P()(b"\x80\x02")(glob("collections", "OrderedDict"))(b")R")(b"K\x00K\x01s")(b".")
    case("setitem-on-ordereddict-ok", p, "safe")

    # -- extension codes and persistent ids
    for tag, op in [("ext1", b"\x82\x42"), ("ext2", b"\x83\x42\x01"), ("ext4", b"\x84\x42\x01\x00\x00")]:
        p = P()(b"\x80\x02")(op, "e")(b"(S'id'\nt")(b"R.")
        # CPython's registry is empty: the load fails there too (bad-value), after the lookup
        case(tag, p, "unsafe", [("extension-code", p.at["e"], None, tag.upper())],
             error=("bad-value", p.at["e"]))
    # a plain pickle.load has no persistent_load: CPython fails there (bad-value) as well
    case("persid", P()(b"P1\n", "p")(b"."), "unsafe", [("persistent-id", 0, None, "PERSID")],
         error=("bad-value", 0))
    p = P()(b"\x80\x02")(binunicode("storage"))(b"Q", "p")(b".")
    case("binpersid", p, "unsafe", [("persistent-id", p.at["p"], None, "BINPERSID")],
         error=("bad-value", p.at["p"]))

    # -- a call, then a malformed tail: the call is reported AND the malformation
    p = P()(glob("builtins", "exec"), "g")(b"(")(binunicode("code"))(b"t")(b"R", "call")(b"\xff", "bad")(b"\xfe")
    case("call-then-invalid-opcode", p, "unsafe",
         [(GNA, 0, "builtins.exec", "GLOBAL"), (CNA, p.at["call"], "builtins.exec", "REDUCE")],
         error=("invalid-opcode", p.at["bad"]))
    p = (P()(b"\x80\x04")(glob("os", "system"), "g")(b"Vecho pwned\n\x85")(b"R", "call")(b"0")(b"\x8c\x02os\x94")
         (b"h\x03", "bad")(b"h\x00\x93K\x42."))
    case("call-then-memo-missing", p, "unsafe",
         [(GNA, p.at["g"], "os.system", "GLOBAL"), (CNA, p.at["call"], "os.system", "REDUCE")],
         error=("memo-missing", p.at["bad"]))
    p = P()(glob("os", "system"), "g")(b"(S'id'\nt")(b"R", "call")
    case("call-then-eof", p, "unsafe", [(GNA, 0, "os.system", "GLOBAL"), (CNA, p.at["call"], "os.system", "REDUCE")],
         error=("truncated", len(p)))

    # -- several pickles in one file; trailing bytes
    first = pickle.dumps([1, 2], 2)
    p = P()(first)(b"\x80\x02")(glob("os", "system"), "g")(binunicode("id"))(b"\x85")(b"R", "call")(b".")
    case("second-stream-os-system", p, "unsafe",
         [(GNA, p.at["g"], "os.system", "GLOBAL"), (CNA, p.at["call"], "os.system", "REDUCE")])
    p = P()(b"\x80\x02cbuiltins\nlen\nq\x00")(b"c\xff\n", "bad")
    case("first-stream-invalid-utf8-global", p, "unsafe", [(GNA, 2, "builtins.len", "GLOBAL")],
         error=(("decode-error", "truncated"), None))
    p = P()(b"N.")(b"garbage\xff", "t")
    case("trailing-garbage", p, "malformed", [("trailing-data", p.at["t"], None, None)])
    p = P()(b"N.")(glob("os", "system"), "g")
    case("second-stream-truncated", p, "unsafe", [(GNA, p.at["g"], "os.system", "GLOBAL")],
         error=("truncated", len(p)))

    # -- FRAME rules (pure-Python unpickler's, which we apply to both flavours)
    hidden = glob("builtins", "print") + b"Vid\n\x85R"
    p = (P()(b"\x80\x05N")(b"\x95" + u64(2), "f")(b"B\x07\x01\x00\x00", "straddle")(b"\x00\x00")
         ((hidden + b"(").ljust(261, b"N"))(b"1."))
    case("frame-straddle", p, "malformed", error=("frame-error", None))
    body = sbu("abc") + b"\x94."
    p = P()(b"\x80\x04")(b"\x95" + u64(len(body) + 9))(b"\x95" + u64(len(body)), "inner")(body)
    case("frame-in-frame", p, "malformed", error=("frame-error", p.at["inner"]))
    p = P()(b"\x80\x04")(b"\x95" + u64(3))(sbu("abc"), "op")(b"\x94.")
    case("frame-argument-crosses-end", p, "malformed", error=("frame-error", p.at["op"]))
    return out


def _ops_at(data):
    """{offset: opcode name} for what pickletools can parse (frames ignored, as C does)."""
    out, base = {}, 0
    while base < len(data):
        end = None
        try:
            for op, _, pos in pickletools.genops(data[base:]):
                out[base + pos] = op.name
                if op.name == "STOP":
                    end = base + pos + 1
        except Exception:
            pass
        if end is None:
            break
        base = end
    return out


@pytest.mark.parametrize("data,verdict,findings,error,opts,absent", cases())
def test_case_offsets_point_at_opcodes(data, verdict, findings, error, opts, absent):
    """Self-check of this file (no CLI needed): every expected finding offset is the start of an
    opcode of the expected kind."""
    ops = _ops_at(data)
    for rule, offset, g, op in findings:
        if rule == "trailing-data":
            continue
        assert offset in ops, "offset %d is not an opcode start:\n%s" % (offset, dis(data))
        if op is not None:
            assert ops[offset] == op, "offset %d is %s, not %s:\n%s" % (offset, ops[offset], op, dis(data))


def case_flavors():
    return ["c", "py"]


@needs_cli
@pytest.mark.parametrize("data,verdict,findings,error,opts,absent", cases())
@pytest.mark.parametrize("flavor", case_flavors())
def test_malicious(tmp_path, data, verdict, findings, error, opts, absent, flavor):
    rc, fo, _ = scan(tmp_path, data, "--flavor", flavor, *opts)
    expect(rc, fo, data, verdict, findings, error, absent)
    for f in fo["findings"]:
        assert 0 <= f["offset"] <= len(data), context(data, fo)


# ---------------------------------------------------------------------------------------------
# Real pickles the default policy must accept.


def safe_objects():
    objs = {
        "ordereddict": collections.OrderedDict([("a", 1), ("b", [2, 3])]),
        "datetime": datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
        "datetime-utc": datetime.datetime(2021, 5, 6, tzinfo=datetime.timezone.utc),
        "date-timedelta": [datetime.date(1999, 12, 31), datetime.timedelta(days=3, seconds=7)],
        "decimal": decimal.Decimal("-1.50E+3"),
        "fraction": fractions.Fraction(3, 7),
        "sets": [{1, 2, 3}, frozenset({"a", "b"}), set()],
        "bytes": [b"", b"abc\x00\xff", bytearray(b"xy")],
        "builtins": {"i": [0, -1, 2**70], "f": [1.5, float("inf")], "s": "h\u00e9\U0001f600", "t": (None, True)},
        "complex-range-slice": [complex(1, 2), range(1, 10, 2), slice(1, None, 2)],
        "defaultdict": collections.defaultdict(list, {"k": [1]}),
        "deque-counter": [collections.deque([1, 2], maxlen=5), collections.Counter("abca")],
    }
    try:
        import numpy as np
    except Exception:
        return objs
    objs["numpy-arrays"] = {"w": np.arange(12, dtype="<f4").reshape(3, 4), "b": np.zeros(3),
                            "i": np.array([1, 2], dtype=">i8"), "f": np.asfortranarray(np.ones((2, 3))),
                            "u": np.array(["ab", "c"]), "e": np.empty((0, 2)), "bool": np.array([True])}
    objs["numpy-object-array"] = np.array([1, "x", None], dtype=object)
    objs["numpy-dtypes"] = [np.dtype("f8"), np.dtype([("x", "<u2"), ("y", ">f4")]), np.dtype("M8[s]")]
    objs["numpy-scalars"] = [np.float64(1.5), np.int32(-7), np.bool_(True), np.uint8(200), np.complex64(1j)]
    objs["numpy-structured"] = np.zeros(2, dtype=[("a", "<i4"), ("b", "f8", (2,))])
    return objs


SAFE = safe_objects()


@needs_cli
@pytest.mark.parametrize("proto", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("what", sorted(SAFE))
def test_safe_real_pickles(tmp_path, what, proto):
    data = pickle.dumps(SAFE[what], protocol=proto)
    for flavor in ("c", "py"):
        rc, fo, _ = scan(tmp_path, data, "--flavor", flavor)
        expect(rc, fo, data, "safe")
        assert fo["streams"] == 1 and fo["container"] == "pickle", context(data, fo)


# ---------------------------------------------------------------------------------------------
# Bad input: no crash, clean verdicts with offsets.

SMALL = {
    "p0": pickle.dumps({"a": [1, 2.5, "x", b"y", (None, True)], "b": 2**70}, 0),
    "p2": pickle.dumps({"a": [1, 2.5, "x", b"y", (None, True)], "b": 2**70, "c": {1}}, 2),
    "p4": pickle.dumps({"a": [1, 2.5, "x", b"y", (None, True)], "b": 2**70, "c": {1}}, 4),
    "p5": pickle.dumps([bytearray(b"ab"), frozenset([1]), "\u20ac"], 5),
}


def _opcode_starts(data):
    return [pos for _, _, pos in pickletools.genops(data)]


@needs_cli
@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_truncation(tmp_path, name):
    """Each proper prefix of a valid pickle: malformed, error truncated, at the start of the
    opcode that was cut (or at the end of the input; a cut inside a frame may be reported at
    the FRAME, whose length is checked when it is read)."""
    full = SMALL[name]
    starts = _opcode_starts(full)
    frames = [pos for op, _, pos in pickletools.genops(full) if op.name == "FRAME"]
    paths = []
    for k in range(len(full)):
        path = tmp_path / ("cut%05d.pkl" % k)
        path.write_bytes(full[:k])
        paths.append(str(path))
    p = run(["scan", "--format", "json", *paths], timeout=120)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 1, "exit %d\n%s" % (p.returncode, err[-3000:])
    doc = json.loads(p.stdout)
    assert len(doc["files"]) == len(full)
    for k, fo in enumerate(doc["files"]):
        cut = full[:k]
        assert fo["path"] == paths[k]
        assert fo["verdict"] == "malformed", context(cut, fo)
        e = fo["error"]
        assert e and e["name"] == "truncated", context(cut, fo)
        op_start = max(s for s in starts if s <= k)
        allowed = {op_start, k} | {f for f in frames if f < k}
        assert e["offset"] in allowed, "offset %s not in %s%s" % (e["offset"], sorted(allowed), context(cut, fo))
        assert e["message"]


def bad_input_cases():
    out = []

    def case(cid, data, names, offset, verdicts=("malformed",)):
        out.append(pytest.param(bytes(data), names, offset, verdicts, id=cid))

    case("invalid-opcode", b"N\xff.", "invalid-opcode", 1)
    case("invalid-opcode-first", b"\x00", "invalid-opcode", 0)
    case("invalid-opcode-after-proto", b"\x80\x05\xb0", "invalid-opcode", 2)
    case("unsupported-protocol", b"\x80\x06N.", "unsupported-protocol", 0)
    for n in (2**63, 2**64 - 1):
        for op, nm in ((b"\x8d", "binunicode8"), (b"\x8e", "binbytes8"), (b"\x96", "bytearray8")):
            case("%s-len-%x" % (nm, n), b"\x80\x05" + op + u64(n) + b"ab.", ("truncated", "limit-exceeded"), 2,
                 ("malformed", "limit"))
    case("frame-len-2^64-1", b"\x80\x04\x95" + u64(2**64 - 1) + b"N.",
         ("truncated", "frame-error", "limit-exceeded", "bad-value"),
         2, ("malformed", "limit"))
    case("binunicode-len-ffffffff", b"X\xff\xff\xff\xffab.", ("truncated", "limit-exceeded"), 0, ("malformed", "limit"))
    case("long4-negative", b"\x80\x02\x8b\xff\xff\xff\xff.", ("bad-argument", "bad-value"), 2)
    case("long4-huge", b"\x80\x02\x8b\xff\xff\xff\x7f.", ("truncated", "limit-exceeded"), 2, ("malformed", "limit"))
    case("binstring-ffffffff", b"T\xff\xff\xff\xffabc.", ("truncated", "bad-argument"), 0)
    case("setitems-odd", b"}(K\x01u.", ("bad-value", "bad-argument", "mark-error"), 4)
    case("dict-odd", b"(K\x01d.", ("bad-value", "bad-argument", "mark-error"), 3)
    case("binget-missing", b"h\x05.", "memo-missing", 0)
    case("get-missing", b"N0g5\n.", "memo-missing", 2)
    case("long-binget-missing", b"N\x94j\x01\x00\x00\x00.", "memo-missing", 2)
    case("put-negative", b"Np-1\n.", ("bad-argument", "memo-missing", "bad-value"), 1)
    case("tuple1-across-mark", b"K\x01(\x85.", ("stack-underflow", "mark-error"), 3)
    case("tuple2-across-mark", b"K\x01K\x02(\x86.", ("stack-underflow", "mark-error"), 5)
    case("stop-on-mark", b"(.", ("stack-underflow", "mark-error"), 1)
    case("stop-empty", b".", "stack-underflow", 0)
    case("pop-empty", b"0.", ("stack-underflow", "mark-error"), 0)
    case("tuple-no-mark", b"K\x01t.", "mark-error", 2)
    case("appends-no-mark", b"]K\x01e.", "mark-error", 3)
    case("build-across-mark", b"](}b.", ("stack-underflow", "mark-error"), 3)
    case("reduce-args-not-tuple", b"cm\nf\n]R.", "bad-value", 6, ("malformed", "unsafe"))
    case("unhashable-key", b"(]K\x01d.", "bad-value", 4)
    case("global-invalid-utf8", b"cm\xff\nf\n.", "decode-error", 0)
    case("binunicode-invalid-utf8", b"X\x01\x00\x00\x00\xff.", "decode-error", 0)
    case("string-unquoted", b"Sabc\n.", ("bad-argument", "decode-error"), 0)
    case("string-non-ascii", b"S'\xc3\xa9'\n.", "decode-error", 0)
    case("int-garbage", b"I1x\n.", "bad-argument", 0)
    case("next-buffer", b"\x80\x05\x97.", ("bad-value", "unsupported"), 2)
    return out


@needs_cli
@pytest.mark.parametrize("data,names,offset,verdicts", bad_input_cases())
def test_bad_input(tmp_path, data, names, offset, verdicts):
    names = (names,) if isinstance(names, str) else names
    t0 = time.time()
    rc, fo, err = scan(tmp_path, data)
    assert time.time() - t0 < 5 * SLOW
    ctx = context(data, fo)
    assert fo["verdict"] in verdicts, ctx
    assert rc == 1, "exit %d%s" % (rc, ctx)
    e = fo["error"]
    assert e is not None and e["name"] in names, "expected %s%s" % (names, ctx)
    assert e["offset"] == offset, "error offset %s, expected %s%s" % (e["offset"], offset, ctx)
    assert e["message"] and e["stream"] == "pickle", ctx
    if fo["verdict"] == "limit":
        assert e["name"] == "limit-exceeded" and e["limit"], ctx


# ---------------------------------------------------------------------------------------------
# Resource exhaustion: clean, fast, linear.

LIMIT_NAMES = {"input-bytes", "opcodes", "stack-depth", "marks", "memo-entries", "nesting-depth",
               "payload-bytes", "graph-memory", "streams"}


def scan_measured(tmp_path, data, *opts, name="dos.pkl"):
    """(exit code, file object, seconds, max RSS in MiB) of one scan."""
    import threading
    path = tmp_path / name
    path.write_bytes(data)
    out_path, err_path = tmp_path / (name + ".out"), tmp_path / (name + ".err")
    t0 = time.time()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([PICKLEPROOF, "scan", "--format", "json", *opts, str(path)],
                                stdout=out, stderr=err)
        timer = threading.Timer(60 * SLOW, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    secs = time.time() - t0
    rss = usage.ru_maxrss / 1024.0
    errtext = err_path.read_text(errors="replace")
    assert proc.returncode in (0, 1), "exit %d after %.1fs: %s" % (proc.returncode, secs, errtext[-2000:])
    fo = json.loads(out_path.read_bytes())["files"][0]
    return proc.returncode, fo, secs, rss


N = 10**6
DOS = {
    # ']' * N then 'a' * (N-1): a list nested a million deep
    "nested-lists-append": b"\x80\x02" + b"]" * N + b"a" * (N - 1) + b".",
    # MARK-based nesting: '(' * N then 'l' * N
    "nested-lists-mark": b"(" * N + b"l" * N + b".",
    "nested-tuples-mark": b"(" * N + b"t" * N + b".",
    "nested-dicts-setitem": b"\x80\x02}" + b"K\x01}" * (N - 1) + b"s" * (N - 1) + b".",
    # a million MARKs, then None
    "million-marks": b"(" * N + b"N.",
    "million-items": b"(" + b"N" * N + b"l.",
    "million-memo": b"\x80\x04(" + b"N\x94" * N + b"l.",
}


@needs_cli
@pytest.mark.parametrize("name", sorted(DOS))
def test_deep_and_wide(tmp_path, name):
    data = DOS[name]
    rc, fo, secs, rss = scan_measured(tmp_path, data)
    ctx = "%s: %.1fs %.0f MiB %s" % (name, secs, rss, json.dumps(fo)[:3000])
    assert secs < 10 * SLOW, ctx
    assert fo["verdict"] in ("limit", "malformed", "safe"), ctx
    if fo["verdict"] == "limit":
        assert rc == 1 and fo["error"]["name"] == "limit-exceeded" and fo["error"]["limit"] in LIMIT_NAMES, ctx
        assert fo["error"]["message"], ctx
    elif fo["verdict"] == "malformed":
        assert rc == 1 and fo["error"], ctx
    else:
        assert rc == 0, ctx
    assert not fo["findings"] or fo["verdict"] != "safe", ctx


@needs_cli
@pytest.mark.parametrize("name", ["nested-lists-append", "million-marks", "nested-lists-mark"])
def test_default_limits_name_the_limit(tmp_path, name):
    """The brief's expectation for a million nested lists / MARKs: a limit verdict naming it."""
    rc, fo, secs, _ = scan_measured(tmp_path, DOS[name])
    assert fo["verdict"] in ("limit", "malformed"), json.dumps(fo)[:2000]
    assert rc == 1


@needs_cli
@pytest.mark.parametrize("limit,data,expected", [pytest.param(*x, id=x[0]) for x in [
    ("stack-depth=1000", b"(" + b"N" * 5000 + b"l.", "stack-depth"),
    ("marks=100", b"(" * 1000 + b"N.", "marks"),
    ("memo-entries=100", b"\x80\x04(" + b"N\x94" * 1000 + b"l.", "memo-entries"),
    ("opcodes=1000", b"(" + b"N" * 5000 + b"l.", "opcodes"),
    ("payload-bytes=100", b"\x80\x04\x8e" + u64(1000) + b"x" * 1000 + b".", "payload-bytes"),
    ("input-bytes=100", b"(" + b"N" * 500 + b"l.", "input-bytes"),
    ("nesting-depth=50", b"\x80\x02" + b"]" * 1000 + b"a" * 999 + b".", "nesting-depth"),
    ("streams=2", b"N." * 5, "streams"),
]])
def test_named_limits(tmp_path, limit, data, expected):
    rc, fo, _ = scan(tmp_path, data, "--limit", limit)
    ctx = context(data, fo)
    assert fo["verdict"] == "limit" and rc == 1, ctx
    assert fo["error"]["name"] == "limit-exceeded" and fo["error"]["limit"] == expected, ctx


def laughs(levels, seed=b"N", memo=True):
    body = seed
    for _ in range(levels):
        body += b"2\x86" + (b"\x94" if memo else b"")
    return b"\x80\x04" + body + b"."


def laughs_get(levels):
    """memo GET fan-out: x0 = []; x(i+1) = (x(i), x(i)) through BINGET/LONG_BINGET."""
    out = bytearray(b"\x80\x04]\x94")
    for i in range(levels):
        out += b"j" + u32(i) + b"j" + u32(i) + b"\x86\x94"
    return bytes(out + b".")


@needs_cli
@pytest.mark.parametrize("name,data", [pytest.param(*x, id=x[0]) for x in [
    ("dup-tuple2-memoize-60", laughs(60)),
    ("dup-tuple2-200", laughs(200, memo=False)),
    ("dup-list-60", laughs(60, seed=b"]")),
    ("memo-get-60", laughs_get(60)),
    ("memo-get-5000", laughs_get(5000)),
]])
def test_billion_laughs(tmp_path, name, data):
    rc, fo, secs, rss = scan_measured(tmp_path, data)
    ctx = "%s: %.2fs %.0f MiB %s" % (name, secs, rss, json.dumps(fo)[:3000])
    assert secs < 3 * SLOW, ctx
    assert rss < 200 * (4 if SANITIZED else 1), ctx
    assert fo["verdict"] in ("safe", "limit"), ctx
    assert rc == (0 if fo["verdict"] == "safe" else 1), ctx
    if fo["verdict"] == "limit":
        assert fo["error"]["limit"] in LIMIT_NAMES, ctx


# ---------------------------------------------------------------------------------------------
# CLI behaviour around the reports.


@needs_cli
def test_second_stream_is_named(tmp_path):
    """Findings in a pickle stacked after the first STOP name that stream (pickle#1)."""
    first = pickle.dumps({"a": 1}, 4)
    p = P()(first)(b"\x80\x02")(glob("posix", "system"), "g")(binunicode("id"))(b"\x85R.")
    rc, fo, _ = scan(tmp_path, bytes(p))
    assert rc == 1 and fo["verdict"] == "unsafe" and fo["streams"] == 2, context(bytes(p), fo)
    f = [f for f in fo["findings"] if f["rule"] == GNA]
    assert len(f) == 1 and f[0]["offset"] == p.at["g"] and f[0]["global"] == "posix.system"
    assert f[0]["stream"] != "pickle" and f[0]["stream"].endswith("1"), context(bytes(p), fo)


@needs_cli
def test_text_output_names_file_offset_reason(tmp_path):
    data = b"\x80\x02]K\x01h\x07."  # BINGET 7 at offset 5 was never PUT
    path = tmp_path / "memo.pkl"
    path.write_bytes(data)
    p = run(["scan", str(path)])
    text = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 1, text
    assert str(path) in text and "memo" in text.lower(), text
    assert re.search(r"\b5\b", text.replace(str(path), "")), "offset 5 not shown:\n" + text


@needs_cli
def test_json_error_object(tmp_path):
    data = b"\x80\x02]K\x01h\x07."
    rc, fo, _ = scan(tmp_path, data)
    e = fo["error"]
    assert rc == 1 and fo["verdict"] == "malformed"
    assert e["name"] == "memo-missing" and e["offset"] == 5 and e["opcode"] in ("BINGET", 0x68, "h")
    assert e["stream"] == "pickle" and "7" in e["message"]
    assert set(fo) >= {"path", "verdict", "container", "bytes", "streams", "findings", "globals", "error",
                       "signature", "sandbox", "policy"}
    assert set(e) >= {"name", "offset", "opcode", "limit", "stream", "message"}


@needs_cli
def test_globals_list_and_summary(tmp_path):
    p = P()(b"\x80\x02")(glob("collections", "OrderedDict"))(b")R")(glob("os", "system"))(b"0")(glob("__builtin__", "set"))(b"(]tR")(b"\x86.")
    data = bytes(p)
    path = tmp_path / "g.pkl"
    path.write_bytes(data)
    out = run(["scan", "--format", "json", str(path)])
    doc = json.loads(out.stdout)
    fo = doc["files"][0]
    assert [gname(g) for g in fo["globals"]] == ["collections.OrderedDict", "os.system", "builtins.set"], fo
    assert doc["summary"]["files"] == 1 and doc["summary"].get("unsafe") == 1, doc["summary"]
    assert out.returncode == 1


@needs_cli
def test_several_files_exit_code(tmp_path):
    safe = tmp_path / "safe.pkl"
    safe.write_bytes(pickle.dumps([1, 2], 2))
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"cos\nsystem\n.")
    p = run(["scan", "--format", "json", str(safe)])
    assert p.returncode == 0 and json.loads(p.stdout)["files"][0]["verdict"] == "safe"
    p = run(["scan", "--format", "json", str(safe), str(bad)])
    doc = json.loads(p.stdout)
    assert p.returncode == 1 and [f["verdict"] for f in doc["files"]] == ["safe", "unsafe"]
    assert [f["path"] for f in doc["files"]] == [str(safe), str(bad)]


@needs_cli
@pytest.mark.parametrize("args", [
    ["scan", "--limit", "bogus=1"],
    ["scan", "--limit", "opcodes=abc"],
    ["scan", "--format", "xml"],
    ["scan", "--policy", "/nonexistent/x.policy"],
    ["scan", "--flavor", "java"],
    ["frobnicate"],
])
def test_usage_errors_exit_2(tmp_path, args):
    f = tmp_path / "ok.pkl"
    f.write_bytes(b"N.")
    p = run(args + [str(f)])
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stderr, "a usage error says why on stderr"


@needs_cli
def test_missing_file_is_operational(tmp_path):
    p = run(["scan", "--format", "json", str(tmp_path / "nope.pkl")])
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    if p.stdout.strip():
        fo = json.loads(p.stdout)["files"][0]
        assert fo["verdict"] == "error" and fo["error"], fo


@needs_cli
def test_policy_option_allows(tmp_path):
    pol = tmp_path / "team.policy"
    pol.write_text("policy team\ncall os.getcwd ()\n")
    data = b"\x80\x02cos\ngetcwd\n)R."
    rc, fo, _ = scan(tmp_path, data)
    assert fo["verdict"] == "unsafe" and rc == 1
    rc, fo, _ = scan(tmp_path, data, "--policy", "default", "--policy", str(pol))
    assert fo["verdict"] == "safe" and rc == 0, json.dumps(fo)
    assert "team" in fo["policy"] and "default" in fo["policy"]


if __name__ == "__main__":  # print every malicious case with its disassembly
    for param in cases():
        data, verdict, findings = param.values[0], param.values[1], param.values[2]
        print("=" * 80)
        print("%s -> %s %s" % (param.id, verdict, findings))
        print(dis(data))
