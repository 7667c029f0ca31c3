# label: load
"""Every hostile file of the scanner tests, through pickleproof.load (a path) and loads (bytes):
UnsafePickleError carrying the scanner's verdict, and nothing executed.

Two witnesses that nothing ran:
  * canary payloads: pickles that, under pickle.loads, create a file (os.system touch, subprocess,
    exec/eval of code, getattr chains, dotted globals, BUILD __setstate__ injection, nested
    pickle.loads, numpy's runstring, timeit ...). A control run in a child interpreter proves
    each payload really creates its canary under pickle.loads; under pickleproof it never
    appears -- raw, inside joblib (plain and compressed), .npy/.npz object arrays, PyTorch
    zip members and scikit-learn estimators.
  * an audit hook (PEP 578) records process-spawning, code-compiling and file-writing events
    while pickleproof runs, so even the scanner tests' byte-level cases (whose payloads are
    'id' or 'echo pwned') prove nothing ran.
The byte-level cases are the generators of test_malicious.py (its cases(), bad inputs,
resource-exhaustion inputs), tests/data/bad/ and the container tests' hostile layouts; files the
CLI calls safe load without error and equal pickle.loads."""
import glob
import io
import json
import os
import pickle
import subprocess
import sys
import threading
import warnings
import zipfile

import pytest

np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")

import pickleproof as pp  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_malicious as tm  # noqa: E402  (generators only; their tests are not collected here)

PICKLEPROOF = os.environ.get("PICKLEPROOF")
SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
PY = sys.executable

# ---------------------------------------------------------------------------------------------
# The audit witness.

WATCHED = ("os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
           "os.forkpty", "exec", "compile", "ctypes.", "socket.", "os.remove", "os.rename",
           "os.mkdir", "os.chmod", "os.truncate", "shutil.", "builtins.input", "code.")
_watch = threading.local()


def _hook(event, args):
    log = getattr(_watch, "log", None)
    if log is None:
        return
    if event in ("exec", "compile") and _module_file(args):
        return  # a module's own code, run by an import (e.g. an encodings module)
    if event.startswith(WATCHED):
        log.append((event, repr(args)[:200]))
    elif event == "open" and len(args) > 1 and isinstance(args[1], str) and set(args[1]) & set("wax+"):
        log.append((event, repr(args)[:200]))


def _module_file(args):
    where = getattr(args[0], "co_filename", None) if args else None
    if where is None and len(args) > 1:
        where = args[1]
    return isinstance(where, str) and os.path.isfile(where)


sys.addaudithook(_hook)


def watched(call):
    """(result or exception, events seen) of call() on this thread."""
    _watch.log = []
    try:
        try:
            out = call()
        except Exception as e:  # returned for the caller to judge
            out = e
        return out, list(_watch.log)
    finally:
        _watch.log = None


def refused(call, verdicts=("unsafe",)):
    """call() must raise UnsafePickleError with one of `verdicts`, and trigger no watched event."""
    out, events = watched(call)
    assert not events, "events during a refused load: %s" % events
    assert isinstance(out, pp.UnsafePickleError), "expected UnsafePickleError, got %r" % (out,)
    assert isinstance(out, pickle.UnpicklingError)
    assert out.verdict in verdicts, (out.verdict, verdicts, str(out))
    assert out.report is not None and out.report.verdict == out.verdict
    return out


def test_audit_witness_sees_execution(tmp_path):
    """The witness is live: pickle.loads of a payload shows up (compile via eval)."""
    data = pickle.dumps(Reducer(eval, ("1 + 1",)))
    out, events = watched(lambda: pickle.loads(data))
    assert out == 2 and any(e == "compile" for e, _ in events)
    out, events = watched(lambda: pp.loads(pickle.dumps({"a": [1, 2]})))
    assert out == {"a": [1, 2]} and not events


# ---------------------------------------------------------------------------------------------
# Canary payloads.


class Reducer:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def g(module, name):
    return tm.glob(module, name)


def s(text):
    return tm.binunicode(text)


def payloads(canary):
    """{name: pickle bytes} each creating `canary` under pickle.loads."""
    import operator
    import subprocess as sp_
    import timeit
    c = str(canary)
    touch = "touch " + c
    code = "open(%r, 'w').write('ran')" % c
    out = {}
    for proto in (0, 2, 4, 5):
        out["os.system-p%d" % proto] = pickle.dumps(Reducer(os.system, (touch,)), protocol=proto)
    out["subprocess.call"] = pickle.dumps(Reducer(sp_.call, (["touch", c],)), protocol=2)
    out["subprocess.check_output"] = pickle.dumps(Reducer(sp_.check_output, (["touch", c],)), protocol=4)
    out["os.popen"] = pickle.dumps([Reducer(os.popen, (touch,))], protocol=4)
    out["exec"] = pickle.dumps(Reducer(exec, (code,)), protocol=2)
    out["eval"] = pickle.dumps({"x": Reducer(eval, (code,))}, protocol=5)
    out["timeit"] = pickle.dumps(Reducer(timeit.timeit, (code, "pass", __import__("time").perf_counter, 1)), protocol=4)
    out["pickle.loads-nested"] = pickle.dumps(Reducer(pickle.loads, (out["exec"],)), protocol=4)
    out["numpy-runstring"] = (b"\x80\x04" + g("numpy.testing._private.utils", "runstring") +
                              s(code) + b"}\x86R.")
    # getattr(__import__('os'), 'system')('touch ...')
    out["getattr-import-chain"] = (b"\x80\x02" + g("builtins", "getattr") + g("builtins", "__import__") +
                                   s("os") + b"\x85R" + s("system") + b"\x86R" + s(touch) + b"\x85R.")
    # operator.methodcaller('system', touch)(os module from importlib)
    out["methodcaller"] = (b"\x80\x02" + g("operator", "methodcaller") + s("system") + s(touch) + b"\x86R" +
                           g("importlib", "import_module") + s("os") + b"\x85R\x85R.")
    out["attrgetter"] = (b"\x80\x02" + g("operator", "attrgetter") + s("system") + b"\x85R" +
                         g("builtins", "__import__") + s("os") + b"\x85R\x85R" + s(touch) + b"\x85R.")
    assert operator  # the two above spell operator's names by hand
    # dotted protocol-4 names reaching os.system through innocent modules
    for mod in ("pathlib", "shutil", "zipfile"):
        out["dotted-%s.os.system" % mod] = (b"\x80\x04" + tm.sbu(mod) + tm.sbu("os.system") + b"\x93" +
                                            s(touch) + b"\x85R.")
    # GLOBAL via INST and OBJ, protocol 0/1
    out["inst"] = b"(" + s(touch) + b"i" + b"os\nsystem\n."
    out["obj"] = b"(" + g("os", "system") + s(touch) + b"o."
    out["obj-popen"] = b"(" + g("subprocess", "Popen") + b"(" + s("touch") + s(c) + b"lo."
    # BUILD injection: an OrderedDict gets __setstate__ = os.system in its __dict__, then a
    # second BUILD calls it with the state
    out["build-setstate"] = (b"\x80\x02" + g("collections", "OrderedDict") + b")R}" + s("__setstate__") +
                             g("os", "system") + b"sb" + s(touch) + b"b.")
    # a legitimate-looking array with the payload behind it in the same stream
    out["after-array"] = pickle.dumps([np.arange(4.0), Reducer(os.system, (touch,))], protocol=5)
    # the renamed spelling Python 2 pickles use
    out["py2-rename"] = b"c__builtin__\neval\n(" + b"S" + repr(code).encode() + b"\ntR."
    # a second stream after a benign first one
    out["second-stream"] = pickle.dumps([1, 2]) + pickle.dumps(Reducer(os.system, (touch,)), protocol=2)
    return out


PAYLOAD_NAMES = sorted(payloads("/x"))


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    """Proof the payloads are live: pickle.loads in a child creates each canary."""
    d = tmp_path_factory.mktemp("control")
    made = {}
    for name, data in payloads(d / "CANARY").items():
        sub = d / name
        sub.mkdir()
        data = payloads(sub / "CANARY")[name]
        (sub / "p.pkl").write_bytes(data)
        made[name] = sub
    script = ("import pickle, sys, glob, time, os\n"
              "for p in sys.argv[1:]:\n"
              "    try:\n"
              "        f = open(os.path.join(p, 'p.pkl'), 'rb')\n"
              "        while f.peek(1):  # every stream, as a reader calling load() again would\n"
              "            r = pickle.load(f)\n"
              "            for x in (r if isinstance(r, list) else [r]):\n"
              "                getattr(x, 'wait', getattr(x, 'read', lambda: None))()\n"
              "    except Exception as e:\n"
              "        print(p, e, file=sys.stderr)\n")
    subprocess.run([PY, "-c", script] + [str(p) for p in made.values()], capture_output=True,
                   timeout=120, cwd=str(d))
    return {n: (p / "CANARY").exists() for n, p in made.items()}


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_payload_is_live(control, name):
    assert control[name], "%s did not create its canary under pickle.loads" % name


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
@pytest.mark.parametrize("policy", ["default", "sklearn", "torch"])
def test_canary_raw(tmp_path, name, policy):
    canary = tmp_path / "CANARY"
    data = payloads(canary)[name]
    path = tmp_path / "p.pkl"
    path.write_bytes(data)
    refused(lambda: pp.load(path, policy=policy))
    refused(lambda: pp.loads(data, policy=policy))
    refused(lambda: pp.load(path, policy=policy, mmap_mode="r"))
    refused(lambda: pp.load(io.BytesIO(data), policy=policy))
    assert not canary.exists()


CONTAINER_PAYLOADS = ["os.system-p4", "exec", "getattr-import-chain", "build-setstate", "obj-popen"]


def _evil_obj(canary, name):
    """An object whose pickle is payloads()[name] (inserted as raw pickle bytes)."""
    data = payloads(canary)[name]

    class Raw:
        def __reduce__(self):
            return (pickle.loads, (data,))
    return data, Raw()


def containers(tmp_path, canary, name):
    """{label: path} hostile files of each container kind carrying payload `name`."""
    data = payloads(canary)[name]
    touch = Reducer(os.system, ("touch " + str(canary),))
    out = {}
    for comp in (0, 3, "gzip", "bz2", "xz"):
        p = tmp_path / ("j-%s.joblib" % (comp,))
        joblib.dump({"w": np.arange(5.0), "evil": touch, "tail": np.ones(3)}, p, compress=comp)
        out["joblib-%s" % (comp,)] = p
    p = tmp_path / "objarr.joblib"
    joblib.dump(np.array([1, touch], dtype=object), p)
    out["joblib-object-array"] = p
    # the raw payload appended after a joblib file
    p = tmp_path / "appended.joblib"
    joblib.dump([np.arange(3)], p)
    p.write_bytes(p.read_bytes() + data)
    out["joblib-appended"] = p
    p = tmp_path / "objarr.npy"
    np.save(p, np.array([touch, 2], dtype=object), allow_pickle=True)
    out["npy-object-array"] = p
    p = tmp_path / "m.npz"
    np.savez(p, ok=np.arange(3), bad=np.array([touch], dtype=object))
    out["npz-object-member"] = p
    p = tmp_path / "mc.npz"
    np.savez_compressed(p, bad=np.array([touch], dtype=object))
    out["npz-compressed-object"] = p
    p = tmp_path / "pkl-member.npz"
    p.write_bytes(tm_zip([("a.npy", _npy(np.arange(3))), ("evil.pkl", data)]))
    out["npz-pickle-member"] = p
    try:
        import torch  # noqa: F401
        import test_torch as tt
    except Exception:
        return out
    base = tt.sample(tmp_path)
    items = tt.members(base)
    dp = [n for n, _ in items if n.endswith("data.pkl")][0]
    out["torch-data.pkl"] = tt.write_zip(tmp_path / "e1.pt", tt.replace(items, dp, data))
    body = dict(items)[dp] + data
    out["torch-after-stop"] = tt.write_zip(tmp_path / "e2.pt", tt.replace(items, dp, body))
    out["torch-extra-member"] = tt.write_zip(tmp_path / "e3.pt", items + [("s/extra.pkl", data)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["torch-object"] = tt.save({"w": torch.ones(2), "x": touch}, tmp_path / "e4.pt")
        out["torch-legacy-object"] = tt.save(touch, tmp_path / "e5.pt", legacy=True)
    import test_torch_tar as ttar
    out["torch-legacy-tar"] = tmp_path / "e6.tar"
    out["torch-legacy-tar"].write_bytes(ttar.legacy_tar(touch, ttar.STORAGES))
    return out


def tm_zip(members):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for n, d in members:
            z.writestr(n, d)
    return b.getvalue()


def _npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


@pytest.mark.parametrize("name", CONTAINER_PAYLOADS)
def test_canary_in_containers(tmp_path, name):
    canary = tmp_path / "CANARY"
    files = containers(tmp_path, canary, name)
    assert len(files) >= 10
    for label, path in sorted(files.items()):
        for policy in ("default", "sklearn", "torch"):
            e = refused(lambda: pp.load(path, policy=policy))
            assert e.rule, label
        refused(lambda: pp.loads(path.read_bytes()))
        refused(lambda: pp.load(path, mmap_mode="r"))
    assert not canary.exists()


def test_canary_in_sklearn_estimator(tmp_path):
    sk = pytest.importorskip("sklearn.linear_model")
    canary = tmp_path / "CANARY"
    X = np.random.RandomState(0).normal(size=(30, 3))
    est = sk.LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    for name in CONTAINER_PAYLOADS:
        est.extra_ = Reducer(os.system, ("touch " + str(canary),))
        est.coef_ = est.coef_.copy()
        for fmt in ("joblib0", "joblib3", "p2", "p5"):
            path = tmp_path / (name + fmt)
            if fmt.startswith("joblib"):
                joblib.dump(est, path, compress=int(fmt[-1]))
            else:
                path.write_bytes(pickle.dumps(est, protocol=int(fmt[1:])))
            e = refused(lambda: pp.load(path, policy="sklearn"))
            assert e.global_name == "posix.system", str(e)
    assert not canary.exists()


# ---------------------------------------------------------------------------------------------
# The scanner tests' byte-level cases.

CASES = tm.cases()


@pytest.mark.parametrize("data,verdict,findings,error,opts,absent", CASES)
def test_core_cases(tmp_path, data, verdict, findings, error, opts, absent):
    path = tmp_path / "case.pkl"
    path.write_bytes(data)
    if verdict == "safe":
        want = pickle.loads(data)
        for call in (lambda: pp.load(path), lambda: pp.loads(data)):
            got, events = watched(call)
            assert not events and not isinstance(got, Exception), (got, events)
            assert pickle.dumps(got) == pickle.dumps(want)
        return
    e = refused(lambda: pp.load(path), (verdict,))
    refused(lambda: pp.loads(data), (verdict,))
    rules = [f[0] for f in findings]
    if rules:
        assert e.rule in rules or e.rule == verdict, (e.rule, rules)


@pytest.mark.parametrize("data,names,offset,verdicts", tm.bad_input_cases())
def test_bad_inputs(tmp_path, data, names, offset, verdicts):
    path = tmp_path / "bad.pkl"
    path.write_bytes(data)
    refused(lambda: pp.load(path), verdicts)
    e = refused(lambda: pp.loads(data), verdicts)
    err = e.report.error
    names = (names,) if isinstance(names, str) else names
    assert err and err["name"] in names and err["offset"] == offset, err


@pytest.mark.parametrize("data,names,offset,verdicts", tm.bad_input_cases())
def test_every_truncation_of_bad_inputs_is_clean(data, names, offset, verdicts):
    for cut in range(len(data)):
        out, events = watched(lambda: pp.loads(data[:cut]))
        assert not events
        assert isinstance(out, pp.UnsafePickleError), (cut, out)


GOLDEN = sorted(glob.glob(os.path.join(HERE, "..", "data", "bad", "*.pkl")))


@pytest.mark.parametrize("path", GOLDEN, ids=[os.path.basename(p) for p in GOLDEN])
def test_golden_bad_files(path):
    verdict, err, off = open(path[:-4] + ".expect").read().split()
    e = refused(lambda: pp.load(path), (verdict,))
    refused(lambda: pp.loads(open(path, "rb").read()), (verdict,))
    if err != "trailing-data":
        assert e.report.error["name"] == err


def test_golden_cases_exist():
    assert len(GOLDEN) >= 20


DOS = dict(tm.DOS)
DOS.update({"laughs-60": tm.laughs(60), "laughs-list-60": tm.laughs(60, seed=b"]"),
            "laughs-get-60": tm.laughs_get(60)})


@pytest.mark.parametrize("name", sorted(DOS))
def test_resource_exhaustion(tmp_path, name):
    """Million-deep nesting, a million marks, memo laughs: refused with a limit (or malformed)
    verdict, or, where the scanner calls the file safe, built like pickle.loads builds it."""
    data = DOS[name]
    rep = pp.scan(data)
    if rep.verdict == "safe":
        got = pp.loads(data)
        want = pickle.loads(data)
        assert type(got) is type(want) and len(got) == len(want)
        return
    assert rep.verdict in ("limit", "malformed"), rep.to_json()[:2000]
    refused(lambda: pp.loads(data), ("limit", "malformed"))


@pytest.mark.parametrize("limit,data,expected", [
    ("stack-depth=1000", b"(" + b"N" * 5000 + b"l.", "stack-depth"),
    ("marks=100", b"(" * 1000 + b"N.", "marks"),
    ("memo-entries=100", b"\x80\x04(" + b"N\x94" * 1000 + b"l.", "memo-entries"),
    ("opcodes=1000", b"(" + b"N" * 5000 + b"l.", "opcodes"),
    ("nesting-depth=50", b"\x80\x02" + b"]" * 1000 + b"a" * 999 + b".", "nesting-depth"),
    ("streams=2", b"N." * 5, "streams"),
])
def test_named_limits(limit, data, expected):
    k, v = limit.split("=")
    e = refused(lambda: pp.loads(data, limits={k: v}), ("limit",))
    assert e.report.error["limit"] == expected


# ---------------------------------------------------------------------------------------------
# Files the CLI calls safe load.


def cli_verdict(path, policy="default"):
    p = subprocess.run([PICKLEPROOF, "scan", "--format", "json", "--policy", policy, str(path)],
                       capture_output=True, timeout=120)
    assert p.returncode in (0, 1), p.stderr[-2000:]
    return json.loads(p.stdout)["files"][0]["verdict"]


@pytest.mark.skipif(not PICKLEPROOF, reason="PICKLEPROOF is not set")
@pytest.mark.parametrize("proto", [0, 2, 4, 5])
def test_cli_safe_files_load(tmp_path, proto):
    checked = 0
    for what, obj in sorted(tm.SAFE.items()):
        path = tmp_path / ("%s.pkl" % what)
        path.write_bytes(pickle.dumps(obj, protocol=proto))
        if cli_verdict(path) != "safe":
            with pytest.raises(pp.UnsafePickleError):
                pp.load(path)
            continue
        got, events = watched(lambda: pp.load(path))
        assert not events and not isinstance(got, Exception), (what, got)
        want = pickle.loads(path.read_bytes())
        assert repr(got) == repr(want) or pickle.dumps(got, 4) == pickle.dumps(want, 4), what
        checked += 1
    assert checked >= len(tm.SAFE) - 2
