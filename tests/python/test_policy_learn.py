# label: cli
"""`pickleproof policy learn`: the smallest policy that makes trusted samples scan safe.

Samples are made at test time by their real producers: scikit-learn models through joblib.dump
(compress 0 and 3) and pickle, torch.save state_dicts (zip and legacy), numpy .npy/.npz and
pickled arrays, and pickles of classes from a module written to a temporary directory on
PYTHONPATH (NEWOBJ, REDUCE with state, list subclasses, nested classes, protocols 1-5).

For every learned policy: each sample scans `safe` with it (round trip); taking out any one
entry makes some sample `unsafe` again (minimal); every entry carries a `# seen in` comment.
Dangerous globals are refused (exit 1, nothing on stdout) unless --allow-dangerous, which emits
them under a WARNING. Malformed samples and usage errors exit 2 with nothing on stdout.
"""

import os
import pickle
import subprocess
import sys
import textwrap

import pytest

PICKLEPROOF = os.environ.get("PICKLEPROOF")
SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
SLOW = 6 if SANITIZED else 1

pytestmark = pytest.mark.skipif(not PICKLEPROOF, reason="PICKLEPROOF is not set")

MODULE = textwrap.dedent('''
    import collections

    class Plain:
        def __init__(self):
            self.a = 1
            self.b = [1.5, "x"]

        class Inner:
            def __init__(self):
                self.z = 3

    class Reduced:
        def __init__(self, x):
            self.x = x

        def __reduce__(self):
            return (Reduced, (self.x,), {"y": 2})

    class Items(list):
        pass

    class Mapping(dict):
        pass

    class Slotted:
        __slots__ = ("p", "q")

        def __init__(self):
            self.p = 1
            self.q = 2

    class Hostile:
        def __reduce__(self):
            import os
            return (os.system, ("true",))

    class Evaluating:
        def __reduce__(self):
            return (eval, ("1+1",))

    class Dunder:
        def __reduce__(self):
            return (Plain, (), {"__class__": 1})
''')


def run(args, env=None, check_rc=None):
    p = subprocess.run([PICKLEPROOF] + [str(a) for a in args], capture_output=True,
                       timeout=120 * SLOW, env=env)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode in (0, 1, 2), "exit %d (crash?)\n%s" % (p.returncode, err[-3000:])
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-3000:]
    if check_rc is not None:
        assert p.returncode == check_rc, (p.returncode, err[-3000:], p.stdout[-3000:])
    return p.returncode, p.stdout.decode("utf-8"), err


def learn(files, *opts, rc=0):
    code, out, err = run(["policy", "learn"] + list(opts) + list(files), check_rc=rc)
    if rc:
        assert out == "", out
    return out, err


def entries(text):
    return [l for l in text.splitlines() if l.split(" ", 1)[0] in ("reference", "call", "construct")]


def scan_all(policy_path, files):
    code, out, err = run(["scan", "--policy", policy_path] + list(files))
    return code


def check_learned(tmp_path, files, text, name="learned"):
    """Round trip, minimality and comments of one learned policy."""
    pol = tmp_path / (name + ".policy")
    pol.write_text(text)
    assert scan_all(str(pol), files) == 0, text
    lines = text.splitlines()
    ents = entries(text)
    for e in ents:
        # every entry sits under the comment saying where it was seen (possibly after a sibling
        # line of the same global, or a WARNING)
        i = lines.index(e)
        j = i - 1
        while j >= 0 and (lines[j].split(" ", 1)[0] in ("call", "construct", "reference")
                          or lines[j].startswith("# WARNING")):
            j -= 1
        assert lines[j].startswith("# seen in "), (e, lines[j])
        assert " at offset " in lines[j] and "(" in lines[j], lines[j]
    for e in ents:
        cut = tmp_path / (name + "-cut.policy")
        cut.write_text("\n".join(l for l in lines if l != e) + "\n")
        assert scan_all(str(cut), files) == 1, "entry %r is not needed:\n%s" % (e, text)
    return ents


@pytest.fixture(scope="module")
def mod(tmp_path_factory):
    d = tmp_path_factory.mktemp("mod")
    (d / "learnmod.py").write_text(MODULE)
    sys.path.insert(0, str(d))
    import learnmod
    yield learnmod
    sys.path.remove(str(d))
    sys.modules.pop("learnmod", None)


def custom_objects(m):
    return {"plain": m.Plain(), "inner": m.Plain.Inner(), "reduced": m.Reduced(5),
            "items": m.Items([1, 2]), "mapping": m.Mapping(k=1), "slotted": m.Slotted()}


# ---------------------------------------------------------------------------------------------


def test_custom_classes_every_protocol(tmp_path, mod):
    files = []
    objs = custom_objects(mod)
    for proto in (1, 2, 3, 4, 5):
        o = dict(objs)
        if proto < 2:
            del o["slotted"]  # slots without __getstate__ need protocol 2
        if proto < 4:
            del o["inner"]  # protocols < 4 reach nested classes through getattr on a call result
        f = tmp_path / ("custom%d.pkl" % proto)
        f.write_bytes(pickle.dumps(o, protocol=proto))
        files.append(f)
    text, _ = learn(files)
    assert text.startswith("# ") and "\npolicy learned\ninclude default\n" in text
    assert "# ---- learnmod ----" in text
    ents = check_learned(tmp_path, files, text)
    assert "construct learnmod.Plain" in ents
    assert "construct learnmod:Plain.Inner" in ents  # the dotted qualname needs ':'
    assert "call learnmod.Reduced -> self" in ents and "construct learnmod.Reduced" in ents
    assert "construct learnmod.Items" in ents and "construct learnmod.Slotted" in ents
    # nothing the default policy already allows is repeated
    assert not any("copyreg" in e or "builtins" in e or "collections" in e for e in ents), ents
    assert ", and " in text and " more" in text


def test_no_include_default_and_name(tmp_path, mod):
    import collections
    f = tmp_path / "od.pkl"
    f.write_bytes(pickle.dumps({"od": collections.OrderedDict(a=1), "p": mod.Plain()}, protocol=1))
    text, _ = learn([f], "--no-include-default", "--name", "team-1")
    assert "\npolicy team-1\n" in text and "include default" not in text
    ents = check_learned(tmp_path, [f], text, "team")
    # protocol 1 builds plain objects with copyreg._reconstructor: learned with its class pinned
    assert any(e.startswith("call copyreg._reconstructor (class") for e in ents), ents
    assert "call collections.OrderedDict -> self" in ents


def test_sklearn_models(tmp_path):
    np = pytest.importorskip("numpy")
    joblib = pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeRegressor
    rng = np.random.RandomState(0)
    X, y = rng.rand(30, 4), np.arange(30) % 2
    models = {
        "pipe": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        "tree": DecisionTreeRegressor(max_depth=3).fit(X, X[:, 0]),
        "forest": RandomForestClassifier(n_estimators=3, random_state=rng).fit(X, y),
    }
    files = []
    for name, m in models.items():
        for c in (0, 3):
            f = tmp_path / ("%s-%d.joblib" % (name, c))
            joblib.dump(m, f, compress=c)
            files.append(f)
        f = tmp_path / ("%s.pkl" % name)
        f.write_bytes(pickle.dumps(m, protocol=5 if name == "tree" else 4))
        files.append(f)
    text, _ = learn(files)
    ents = check_learned(tmp_path, files, text)
    assert "call sklearn.tree._tree.Tree -> self" in ents and "construct sklearn.tree._tree.Tree" in ents
    assert "construct sklearn.pipeline.Pipeline" in ents
    # on top of the sklearn built-in nothing is left to learn
    text2, _ = learn(files, "--include", "sklearn")
    assert entries(text2) == [] and "include default\ninclude sklearn\n" in text2


def test_torch_and_numpy(tmp_path):
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    files = []
    sd = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)).state_dict()
    f = tmp_path / "sd.pt"
    torch.save(sd, f)
    files.append(f)
    f = tmp_path / "legacy.pt"
    torch.save({"w": torch.arange(6.0).view(2, 3), "p": torch.nn.Parameter(torch.ones(2))}, f,
               _use_new_zipfile_serialization=False)
    files.append(f)
    text, _ = learn(files)
    ents = check_learned(tmp_path, files, text)
    assert "call torch._utils._rebuild_tensor_v2" in ents
    assert "call torch._utils._rebuild_parameter" in ents
    assert learn(files, "--include", "torch")[0].count("\ncall ") == 0

    nfiles = []
    f = tmp_path / "a.npy"
    np.save(f, np.arange(10.0))
    nfiles.append(f)
    f = tmp_path / "o.npy"
    np.save(f, np.array([1, "x", None], dtype=object), allow_pickle=True)
    nfiles.append(f)
    f = tmp_path / "z.npz"
    np.savez_compressed(f, a=np.ones(3), b=np.zeros((2, 2), dtype=np.int8))
    nfiles.append(f)
    f = tmp_path / "arr.pkl"
    f.write_bytes(pickle.dumps([np.ones((2, 3), dtype=np.float32), np.float64(2.5)], protocol=2))
    nfiles.append(f)
    text, _ = learn(nfiles)
    assert entries(text) == [], text  # numpy is the default policy's
    assert scan_all("default", nfiles) == 0


def test_dangerous_refused(tmp_path, mod):
    f = tmp_path / "evil.pkl"
    f.write_bytes(pickle.dumps({"ok": mod.Plain(), "bad": [mod.Hostile()]}, protocol=2))
    out, err = learn([f], rc=1)
    assert "evil.pkl" in err and "offset" in err and "system" in err and "denylist" in err
    text, err = learn([f], "--allow-dangerous")
    assert "# WARNING: DANGEROUS" in text and "WARNING" in err
    assert "call posix.system" in entries(text)
    check_learned(tmp_path, [f], text)
    g = tmp_path / "eval.pkl"
    g.write_bytes(pickle.dumps(mod.Evaluating(), protocol=4))
    out, err = learn([g], rc=1)
    assert "builtins.eval" in err


def test_unlearnable_and_errors(tmp_path, mod):
    # a BUILD that sets __class__: no entry can allow it
    f = tmp_path / "dunder.pkl"
    f.write_bytes(pickle.dumps(mod.Dunder(), protocol=2))
    out, err = learn([f], rc=1)
    assert "dunder.pkl" in err and "__class__" in err
    # a nested class at protocol < 4 is getattr(Plain, 'Inner') used as a class
    g = tmp_path / "nested.pkl"
    g.write_bytes(pickle.dumps(mod.Plain.Inner(), protocol=2))
    learn([g], rc=1)
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps(mod.Plain(), protocol=4))
    bad = tmp_path / "trunc.pkl"
    bad.write_bytes(good.read_bytes()[:-5])
    out, err = learn([good, bad], rc=2)
    assert "trunc.pkl" in err
    learn([tmp_path / "missing.pkl"], rc=2)
    learn([], rc=2)
    learn([good], "--bogus", rc=2)
    learn([good], "--name", "bad name", rc=2)
    learn([good], "--include", "no-such-policy", rc=2)


def test_comment_escaping(tmp_path, mod):
    f = tmp_path / "x\ninclude torch\n.pkl"
    f.write_bytes(pickle.dumps(mod.Plain(), protocol=4))
    text, _ = learn([f])
    assert "\ninclude torch" not in text and "\\x0a" in text
    check_learned(tmp_path, [f], text)


def test_show_and_list(tmp_path):
    code, out, _ = run(["policy", "list"], check_rc=0)
    names = out.split()
    assert {"default", "sklearn", "torch"} <= set(names)
    code, out, _ = run(["policy", "show", "default"], check_rc=0)
    assert "policy default" in out
    p = tmp_path / "t.policy"
    p.write_text("policy t\ninclude default\nconstruct a.B\n")
    code, out, _ = run(["policy", "show", p], check_rc=0)
    assert out == p.read_text()
    q = tmp_path / "bad.policy"
    q.write_text("frobnicate x\n")
    run(["policy", "show", q], check_rc=2)
    run(["policy", "show", "no-such-policy"], check_rc=2)
    run(["policy", "learn", "--help"], check_rc=0)
