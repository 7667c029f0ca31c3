# label: differential
"""Differential test: pickleproof's VM against CPython 3.11's own unpicklers.

For every generated and mutated pickle (gen_pickles.py, >= 10,000 of each) the recording
unpicklers (recording.py) produce the canonical document of tests/python/CANONICAL.md for the C
(`pickle.Unpickler`) and pure-Python (`pickle._Unpickler`) flavours, and
`$PICKLEPROOF dump --json --flavor c|py FILE...` produces ours. Per flavour:

  agree                 CPython loads it and our document equals CPython's (set/frozenset order
                        normalized), lookups included;
  both-reject           CPython fails before STOP and so do we;
  conservative:<name>   CPython loads it, we reject with limit-exceeded or unsupported (our
                        lookups must be a prefix of CPython's);
  stricter:<name>       CPython loads it, we reject for a documented stricter rule: a FRAME
                        irregularity (frame-error; a FRAME longer than the input may also be
                        truncated), bytes after the first STOP (trailing-data, or an error located
                        in the later stream);
  MISMATCH:<kind>       anything else: fails the test; inputs and both documents are written to
                        $PP_DIFF_FAILDIR (default: <tmp>/pickleproof-differential-failures).

Without $PICKLEPROOF only the recorders are checked: the C recorder must equal the "c-emu"
recorder (the pure-Python unpickler with every known C divergence patched in), which proves that
every C/Py difference seen is one we know of. Knobs: PP_DIFF_SEED, PP_DIFF_BASE, PP_DIFF_MUTANTS,
PP_DIFF_BATCH, PP_DIFF_JOBS.
"""

import collections
import concurrent.futures
import json
import multiprocessing
import os
import pickletools
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import recording  # noqa: E402

PYTHON = "/usr/bin/python3"
SEED = int(os.environ.get("PP_DIFF_SEED", "0x9E3779B9"), 0)
N_BASE = int(os.environ.get("PP_DIFF_BASE", "11000"))
N_MUTANTS = int(os.environ.get("PP_DIFF_MUTANTS", "11000"))
BATCH = int(os.environ.get("PP_DIFF_BATCH", "300"))
JOBS = int(os.environ.get("PP_DIFF_JOBS", str(min(2, os.cpu_count() or 1))))
FAILDIR = os.environ.get("PP_DIFF_FAILDIR") or os.path.join(
    tempfile.gettempdir(), "pickleproof-differential-failures")
PICKLEPROOF = os.environ.get("PICKLEPROOF")
FLAVORS = ("c", "py")
# Extra modes for the streams that carry Python-2 str payloads (STRING, BINSTRING,
# SHORT_BINSTRING): the unpickler's encoding= argument, --encoding on our side.
ENCODINGS = {"latin1": "latin1", "bytes": "bytes", "utf-8": "utf-8"}
MODES = FLAVORS + tuple("%s/%s" % (fl, enc) for fl in FLAVORS for enc in ENCODINGS)
PY2STR = {"STRING", "BINSTRING", "SHORT_BINSTRING"}
CONSERVATIVE = {"limit-exceeded", "unsupported"}

# ---------------------------------------------------------------------------------------------
# A linear opcode walk (no interpretation, frames ignored, as the C unpickler reads memory).

_OPS = {op.code.encode("latin-1")[0]: op for op in pickletools.opcodes}


def walk(data):
    """Yields (name, start, end) for each opcode until STOP, an unknown byte or the end."""
    pos, n = 0, len(data)
    while pos < n:
        op = _OPS.get(data[pos])
        if op is None:
            return
        start, pos = pos, pos + 1
        a = op.arg
        if a is None:
            pass
        elif op.name in ("GLOBAL", "INST"):
            for _ in range(2):
                nl = data.find(b"\n", pos)
                if nl < 0:
                    return
                pos = nl + 1
        elif a.n == pickletools.UP_TO_NEWLINE:
            nl = data.find(b"\n", pos)
            if nl < 0:
                return
            pos = nl + 1
        elif a.n >= 0:
            pos += a.n
        else:
            width = {pickletools.TAKEN_FROM_ARGUMENT1: 1, pickletools.TAKEN_FROM_ARGUMENT4: 4,
                     pickletools.TAKEN_FROM_ARGUMENT4U: 4, pickletools.TAKEN_FROM_ARGUMENT8U: 8}[a.n]
            if pos + width > n:
                return
            ln = int.from_bytes(data[pos:pos + width], "little",
                                signed=a.n == pickletools.TAKEN_FROM_ARGUMENT4)
            pos += width + max(ln, 0)
        if pos > n:
            return
        yield op.name, start, pos
        if op.name == "STOP":
            return


def stop_end(data):
    """Offset just past the first STOP of a successful load (None if not found)."""
    for name, _, end in walk(data):
        if name == "STOP":
            return end
    return None


def frame_facts(data):
    """(irregular, overrun): a FRAME that an opcode straddles, that starts inside another frame,
    or that claims more bytes than the input (overrun)."""
    irregular = overrun = False
    frame_end = None
    for name, start, end in walk(data):
        if frame_end is not None and start >= frame_end:
            frame_end = None
        if frame_end is not None and end > frame_end:
            irregular = True
        if name == "FRAME":
            if frame_end is not None and start < frame_end:
                irregular = True
            length = int.from_bytes(data[start + 1:start + 9], "little")
            frame_end = end + length
            if frame_end > len(data):
                overrun = irregular = True
    return irregular, overrun


# ---------------------------------------------------------------------------------------------
# Comparison.

def _renumber(value, ids):
    """Replaces mutable ids by their order of first appearance (for multi-stream documents)."""
    if isinstance(value, list):
        return [_renumber(v, ids) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("id", "ref") and isinstance(v, int):
                out[k] = ids.setdefault(v, len(ids))
            else:
                out[k] = _renumber(v, ids)
        return out
    return value


def _first_diff(a, b, path="$"):
    if type(a) is not type(b):
        return "%s: %s vs %s" % (path, _short(a), _short(b))
    if isinstance(a, dict):
        if set(a) != set(b):
            return "%s: %s vs %s" % (path, _short(a), _short(b))
        for k in sorted(a):
            d = _first_diff(a[k], b[k], "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_diff(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        if len(a) != len(b):
            return "%s: length %d vs %d" % (path, len(a), len(b))
        return None
    return None if a == b else "%s: %s vs %s" % (path, _short(a), _short(b))


def _short(v):
    s = json.dumps(v)
    return s if len(s) <= 160 else s[:157] + "..."


def _utf16(s):
    """JSON cannot tell two escaped lone surrogates ("\\ud83d\\ude00") from the astral character
    they pair into, so names from STACK_GLOBAL operands decoded with surrogatepass are compared
    after pairing surrogates on both sides."""
    if isinstance(s, str):
        return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return s


def _names(lookups):
    return [[_utf16(m), _utf16(n)] for m, n in lookups] if isinstance(lookups, list) else lookups


def _nodes_names(nodes):
    out = []
    for n in nodes if isinstance(nodes, list) else []:
        if isinstance(n, dict) and isinstance(n.get("global"), list):
            n = dict(n, **{"global": [_utf16(x) for x in n["global"]]})
        out.append(n)
    return out


def _is_prefix(a, b):
    return len(a) <= len(b) and b[:len(a)] == a


def compare(data, ref, ours, flavor):
    """(category, detail) for one flavour. ref: CPython's document, ours: the CLI's."""
    if not isinstance(ours, dict) or "ok" not in ours:
        return "MISMATCH:bad-output", "not a document: %s" % _short(ours)
    r_lookups = _names(ref["lookups"])
    o_lookups = _names(ours.get("lookups", []))
    name = ours.get("error")
    if not ref["ok"]:
        if ours["ok"]:
            return "MISMATCH:accepts-invalid", "CPython: %s: %s" % (ref["exception"], ref["message"])
        if o_lookups == r_lookups:
            return "both-reject", None
        if _is_prefix(o_lookups, r_lookups):
            if name in CONSERVATIVE or name == "frame-error":
                return "both-reject", None
            if flavor == "py" and name == "truncated":
                # pickle._Unpickler's readline() at EOF returns the partial line, [:-1] drops its
                # last character and find_class runs on what is left before the next read fails
                return "both-reject", None
        return "both-reject/lookups-differ", "CPython %s vs ours %s (%s)" % (
            _short(r_lookups), _short(o_lookups), name)
    end = stop_end(data)
    trailing = end is not None and end < len(data)
    if not ours["ok"]:
        if trailing and name == "trailing-data":
            return "stricter:trailing-data", None
        if trailing and isinstance(ours.get("offset"), int) and ours["offset"] >= end:
            # the first stream loaded; a later one (which CPython never reads) failed
            if not _is_prefix(r_lookups, o_lookups):
                return "MISMATCH:lookups", "first stream: CPython %s, ours %s" % (
                    _short(r_lookups), _short(o_lookups))
            return "stricter:later-stream-" + str(name), None
        if not _is_prefix(o_lookups, r_lookups):
            return "MISMATCH:lookups-not-prefix", "rejected (%s) after lookups CPython did not make: " \
                "ours %s, CPython %s" % (name, _short(o_lookups), _short(r_lookups))
        if name in CONSERVATIVE:
            return "conservative:" + name, None
        irregular, overrun = frame_facts(data)
        if name == "frame-error" and irregular:
            return "stricter:frame-error", None
        if name in ("truncated", "frame-error") and overrun:
            return "stricter:frame-overrun", None
        return "MISMATCH:rejects-valid", "%s at %s: %s" % (name, ours.get("offset"), ours.get("message"))
    # both loaded: the documents must be equal
    o_nodes = _nodes_names(ours.get("nodes", []))
    streams = ours.get("streams") or [{}]
    a = {"lookups": r_lookups, "nodes": _nodes_names(ref["nodes"]), "result": ref["streams"][0]["result"]}
    b = {"lookups": o_lookups, "nodes": o_nodes, "result": streams[0].get("result", "<absent>")}
    if len(streams) > 1 or trailing:  # later streams may add nodes/lookups: compare stream 0 only
        b["lookups"] = b["lookups"][:len(a["lookups"])]
        b["nodes"] = b["nodes"][:len(a["nodes"])]
        a = _renumber(a, {})
        b = _renumber(b, {})
    if a["lookups"] != b["lookups"]:
        missing = [x for x in a["lookups"] if x not in b["lookups"]]
        extra = [x for x in b["lookups"] if x not in a["lookups"]]
        return "MISMATCH:lookups", "CPython-only %s, ours-only %s; %s" % (
            _short(missing), _short(extra), _first_diff(a["lookups"], b["lookups"]))
    a, b = recording.normalize(a), recording.normalize(b)
    if a != b:
        return "MISMATCH:document", _first_diff(a, b)
    return "agree", None


# ---------------------------------------------------------------------------------------------
# Workers.

def _init_worker():
    sys.path.insert(0, HERE)
    recording.limit_memory()
    # CPython prints "SystemError: deallocated bytearray object has exported buffers" when a huge
    # BYTEARRAY8 fails to allocate in the C unpickler; keep the test output readable.
    sys.stderr = open(os.devnull, "w")


def _mode(mode):
    """("c", "ASCII") for "c", ("py", "bytes") for "py/bytes"."""
    fl, _, enc = mode.partition("/")
    return fl, ENCODINGS.get(enc, "ASCII")


def _judge_batch(job):
    """Runs the recorders on one batch and compares with the CLI's documents (if any)."""
    corpus, names, vm_files = job
    vm = {}
    for mode, path in (vm_files or {}).items():
        with open(path) as f:
            vm[mode] = json.load(f)
    out = []
    for name in names:
        with open(os.path.join(corpus, name), "rb") as f:
            data = f.read()
        docs = {}
        for fl in ("c", "py", "c-emu"):
            try:
                docs[fl] = recording.record(data, fl)
            except recording.SkipCase as e:
                docs[fl] = {"skip": str(e)}
        rec = {"name": name, "ok": {fl: docs[fl].get("ok") for fl in FLAVORS}}
        c, e = docs["c"], docs["c-emu"]
        if "skip" in c or "skip" in e:
            rec["selfcheck"] = "skip"
        else:
            keys = ("lookups", "nodes", "streams")
            same = (c["ok"] == e["ok"] and recording.normalize({k: c.get(k) for k in keys})
                    == recording.normalize({k: e.get(k) for k in keys}))
            rec["selfcheck"] = "same" if same else "DIFF"
            if not same:
                rec["selfcheck_detail"] = _first_diff(
                    {k: c.get(k) for k in ("ok",) + keys}, {k: e.get(k) for k in ("ok",) + keys})
        # the recorders against CPython itself, where nothing is looked up
        rec["realcheck"] = "n/a"
        for fl in FLAVORS:
            d = docs[fl]
            if "skip" in d or d["lookups"]:
                continue
            try:
                real = recording.real_load_document(data, fl)
            except recording.SkipCase:
                continue
            if real is None:
                continue
            same = real["ok"] == d["ok"] and (not d["ok"] or recording.normalize(real["streams"])
                                                == recording.normalize(d["streams"]))
            if not same:
                rec["realcheck"] = "DIFF"
                rec["realcheck_detail"] = "%s: real %s vs recorder %s" % (
                    fl, _short(real), _short({k: d.get(k) for k in ("ok", "exception", "streams")}))
                break
            rec["realcheck"] = "same"
        for mode in MODES:
            if mode not in vm or name not in vm[mode]:
                continue
            if mode in docs:
                ref = docs[mode]
            else:
                fl, enc = _mode(mode)
                try:
                    ref = recording.record(data, fl, enc)
                except recording.SkipCase as e:
                    ref = {"skip": str(e)}
            ours = vm[mode].get(name)
            if "skip" in ref:
                rec[mode] = ("skipped:" + ref["skip"], None)
            elif isinstance(ours, str):  # CRASH/HANG/SANITIZER found by the runner
                rec[mode] = ("MISMATCH:" + ours, vm[mode].get(name + ":detail"))
            else:
                cat, detail = compare(data, ref, ours, _mode(mode)[0])
                rec[mode] = (cat, detail)
                if cat.startswith("MISMATCH") or cat == "both-reject/lookups-differ":
                    rec[mode + ":docs"] = {"cpython": ref, "ours": ours}
        out.append(rec)
    return out


# ---------------------------------------------------------------------------------------------
# The CLI runner.

def _sanitizer_report(stderr):
    return ("AddressSanitizer" in stderr or "runtime error:" in stderr
            or "LeakSanitizer" in stderr or "UndefinedBehaviorSanitizer" in stderr)


def _run_cli(mode, paths, timeout):
    """[doc or "CRASH"/"HANG"/"SANITIZER"/"BAD-OUTPUT"], detail per file."""
    fl, _, enc = mode.partition("/")
    cmd = [PICKLEPROOF, "dump", "--json", "--flavor", fl] + (["--encoding", enc] if enc else []) + paths
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    err = p.stderr.decode("utf-8", "replace")
    if p.returncode == 2:
        raise RuntimeError("%s exited 2 (usage/operational error): %s" % (" ".join(cmd[:5]), err[-2000:]))
    if p.returncode < 0 or p.returncode > 2 or _sanitizer_report(err):
        return None, "exit %d: %s" % (p.returncode, err[-1500:])
    lines = p.stdout.decode("utf-8", "replace").split("\n")  # not splitlines(): U+2028 may occur
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(paths):
        return None, "%d lines for %d files" % (len(lines), len(paths))
    docs = []
    for line in lines:
        try:
            docs.append(json.loads(line))
        except ValueError:
            return None, "unparsable line: %s" % line[:200]
    return docs, None


def _cli_batch(job):
    corpus, names, mode, outpath = job
    paths = [os.path.join(corpus, n) for n in names]
    docs, why = _run_cli(mode, paths, timeout=max(60, len(paths) // 2))
    result = {}
    if docs is not None:
        result = dict(zip(names, docs))
    else:  # find the culprits one by one
        for n, p in zip(names, paths):
            try:
                d, why1 = _run_cli(mode, [p], timeout=20)
            except RuntimeError as e:
                d, why1 = None, str(e)
            if d is not None:
                result[n] = d[0]
            else:
                why1 = why1 or ""
                kind = ("HANG" if why1 == "timeout"
                        else "SANITIZER" if _sanitizer_report(why1)
                        else "BAD-OUTPUT" if "lines for" in why1 or "unparsable" in why1
                        else "CRASH")
                result[n] = kind
                result[n + ":detail"] = why1
    with open(outpath, "w") as f:
        json.dump(result, f)
    return outpath


# ---------------------------------------------------------------------------------------------
# The session: generate, run, judge (once for all tests in this file).

@pytest.fixture(scope="module")
def session(tmp_path_factory):
    t0 = time.time()
    tmp = str(tmp_path_factory.mktemp("differential"))
    if not os.environ.get("PP_DIFF_FAILDIR"):
        shutil.rmtree(FAILDIR, ignore_errors=True)
    corpus = os.path.join(tmp, "corpus")
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run([PYTHON, os.path.join(HERE, "gen_pickles.py"), corpus, "--seed", hex(SEED),
                    "--base", str(N_BASE), "--mutants", str(N_MUTANTS)],
                   check=True, env=env, capture_output=True)
    with open(os.path.join(corpus, "INDEX")) as f:
        names = [x for x in f.read().split("\n") if x]
    batches = [names[i:i + BATCH] for i in range(0, len(names), BATCH)]
    t_gen = time.time() - t0

    vm_files = [dict() for _ in batches]
    if PICKLEPROOF:
        if not (os.path.isfile(PICKLEPROOF) and os.access(PICKLEPROOF, os.X_OK)):
            pytest.fail("PICKLEPROOF=%s is not an executable" % PICKLEPROOF)
        jobs = []
        for i, b in enumerate(batches):
            py2 = []
            for n in b:
                with open(os.path.join(corpus, n), "rb") as f:
                    if any(op in PY2STR for op, _, _ in walk(f.read())):
                        py2.append(n)
            for mode in MODES:
                names_ = b if "/" not in mode else py2
                if not names_:
                    continue
                out = os.path.join(tmp, "vm-%s-%04d.json" % (mode.replace("/", "-"), i))
                vm_files[i][mode] = out
                jobs.append((corpus, names_, mode, out))
        with concurrent.futures.ThreadPoolExecutor(JOBS) as ex:
            list(ex.map(_cli_batch, jobs))
    t_cli = time.time() - t0 - t_gen

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(JOBS, initializer=_init_worker) as pool:
        results = []
        for part in pool.imap_unordered(_judge_batch, [(corpus, b, v) for b, v in zip(batches, vm_files)]):
            results.extend(part)
    results.sort(key=lambda r: r["name"])
    t_rec = time.time() - t0 - t_gen - t_cli
    return {"corpus": corpus, "results": results, "names": names,
            "times": (t_gen, t_cli, t_rec), "have_cli": bool(PICKLEPROOF)}


def _hex(data, limit=240):
    h = data.hex()
    return h if len(h) <= limit else h[:limit] + "...(%d bytes)" % len(data)


def _summary(session, flavor):
    counts = collections.Counter(r[flavor][0] for r in session["results"] if flavor in r)
    lines = ["flavor %s: %d cases" % (flavor, sum(counts.values()))]
    if not counts:
        lines.append("  (no cases)")
    for k, v in sorted(counts.items(), key=lambda kv: (kv[0].startswith("MISMATCH"), kv[0])):
        lines.append("  %-40s %6d" % (k, v))
    return counts, "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Tests.

def test_corpus(session, capsys):
    names = session["names"]
    base = [n for n in names if n.startswith("b")]
    mutants = [n for n in names if n.startswith("m")]
    assert len(base) >= min(10000, N_BASE) and len(mutants) >= min(10000, N_MUTANTS)
    seen = set()
    protos = set()
    for n in base:
        with open(os.path.join(session["corpus"], n), "rb") as f:
            data = f.read()
        for name, start, _ in walk(data):
            seen.add(name)
            if name == "PROTO":
                protos.add(data[start + 1])
    missing = {op.name for op in pickletools.opcodes} - seen
    assert not missing, "opcodes never generated: %s" % sorted(missing)
    assert {0, 1, 2, 3, 4, 5} <= protos | {0}
    t_gen, t_cli, t_rec = session["times"]
    ok = collections.Counter((fl, r["ok"][fl]) for r in session["results"] for fl in FLAVORS)
    with capsys.disabled():
        print("\n[differential] %d base + %d mutated cases (seed %#x); CPython loads: C %d, Py %d; "
              "generate %.1fs, CLI %.1fs, recorders+compare %.1fs"
              % (len(base), len(mutants), SEED, ok[("c", True)], ok[("py", True)], t_gen, t_cli, t_rec))


def test_recorders_selfcheck(session, capsys):
    """C recorder == c-emu recorder: every C/Py difference in the corpus is a known one."""
    res = session["results"]
    counts = collections.Counter(r["selfcheck"] for r in res)
    cpy = collections.Counter()
    for r in res:
        if r["ok"]["c"] is None or r["ok"]["py"] is None:
            cpy["skipped"] += 1
        else:
            cpy["C %s / Py %s" % ("ok" if r["ok"]["c"] else "err", "ok" if r["ok"]["py"] else "err")] += 1
    with capsys.disabled():
        print("\n[differential] recorder self-check: %s; C vs Py outcomes: %s"
              % (dict(counts), dict(cpy)))
    real = collections.Counter(r["realcheck"] for r in res)
    with capsys.disabled():
        print("[differential] recorders vs real pickle.loads/_loads (streams without globals): %s"
              % dict(real))
    bad = [r for r in res if r["selfcheck"] == "DIFF" or r["realcheck"] == "DIFF"]
    msg = []
    for r in bad[:5]:
        with open(os.path.join(session["corpus"], r["name"]), "rb") as f:
            msg.append("%s %s\n    %s" % (r["name"], _hex(f.read()),
                                           r.get("selfcheck_detail") or r.get("realcheck_detail")))
    if bad:
        pytest.fail("%d cases where the C unpickler differs from the C emulation (an unknown C/Py "
                    "difference) or a recorder from the real unpickler:\n%s" % (len(bad), "\n".join(msg)),
                    pytrace=False)
    assert counts["skip"] < len(res) // 50


@pytest.mark.parametrize("flavor", MODES)
def test_vm_matches_cpython(session, flavor, capsys):
    if not session["have_cli"]:
        pytest.skip("PICKLEPROOF is not set")
    counts, text = _summary(session, flavor)
    res = session["results"]
    bad = [r for r in res if flavor in r and r[flavor][0].startswith("MISMATCH")]
    warn = [r for r in res if flavor in r and r[flavor][0] == "both-reject/lookups-differ"]
    report = [text]
    if bad or warn:
        os.makedirs(FAILDIR, exist_ok=True)
        for r in bad + warn:
            shutil.copy(os.path.join(session["corpus"], r["name"]), os.path.join(FAILDIR, r["name"]))
            with open(os.path.join(FAILDIR, r["name"] + "." + flavor.replace("/", "-") + ".json"), "w") as f:
                json.dump({"category": r[flavor][0], "detail": r[flavor][1],
                           "documents": r.get(flavor + ":docs")}, f, indent=1)
        report.append("inputs and documents written to %s" % FAILDIR)
    for title, items in (("MISMATCH", bad), ("both-reject with different lookups (warning)", warn)):
        by_kind = collections.defaultdict(list)
        for r in items:
            by_kind[r[flavor][0]].append(r)
        for kind, rs in sorted(by_kind.items()):
            report.append("%s %s: %d, e.g." % (title, kind, len(rs)))
            for r in sorted(rs, key=lambda r: os.path.getsize(os.path.join(session["corpus"], r["name"])))[:4]:
                with open(os.path.join(session["corpus"], r["name"]), "rb") as f:
                    report.append("  %s %s\n      %s" % (r["name"], _hex(f.read()), r[flavor][1]))
    with capsys.disabled():
        print("\n[differential] " + "\n".join(report))
    if bad:
        pytest.fail("\n".join(report), pytrace=False)
