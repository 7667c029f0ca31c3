# label: load
"""pickleproof.load from 8 threads at once over a mix of joblib, pickle, .npz and PyTorch files,
safe and hostile: every safe file loads equal to its own loader's result, every hostile one
raises UnsafePickleError, and no canary appears (each thread's sandbox spawn and in-process parse
are independent)."""
import os
import pickle
import random
import threading

import pytest

np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")

import pickleproof as pp  # noqa: E402

SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
THREADS = 8
ROUNDS = 2 if SANITIZED else 4


class Touch:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, ("touch " + self.path,))


def _files(tmp_path, canary):
    """[(path, policy, mmap, expected object or None for "must raise")]."""
    out = []
    rng = np.random.RandomState(0)
    obj = {"w": rng.normal(size=(64, 8)), "b": np.arange(8, dtype="<i4"), "meta": ["x", 1, 2.5]}
    for comp in (0, 3):
        p = tmp_path / ("ok%d.joblib" % comp)
        joblib.dump(obj, p, compress=comp)
        out.append((p, "default", False, joblib.load(p)))
    out.append((tmp_path / "ok0.joblib", "default", True, joblib.load(tmp_path / "ok0.joblib")))
    for proto in (2, 5):
        p = tmp_path / ("ok%d.pkl" % proto)
        p.write_bytes(pickle.dumps(obj, protocol=proto))
        out.append((p, "default", False, pickle.loads(p.read_bytes())))
    p = tmp_path / "ok.npz"
    np.savez(p, a=obj["w"], b=obj["b"])
    out.append((p, "default", False, dict(np.load(p))))
    evil = Touch(canary)
    p = tmp_path / "evil.joblib"
    joblib.dump({"w": obj["w"], "x": evil}, p, compress=3)
    out.append((p, "default", False, None))
    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps([obj["b"], evil], protocol=4))
    out.append((p, "default", False, None))
    try:
        import sklearn.linear_model as lm
        X = rng.normal(size=(40, 3))
        est = lm.LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
        p = tmp_path / "est.joblib"
        joblib.dump(est, p)
        out.append((p, "sklearn", False, joblib.load(p)))
    except ImportError:
        pass
    try:
        import torch
    except ImportError:
        return out
    torch.manual_seed(0)
    sd = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)).state_dict()
    p = tmp_path / "sd.pt"
    torch.save(sd, str(p))
    out.append((p, "torch", False, torch.load(str(p), weights_only=True)))
    p = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(3), "x": evil}, str(p))
    out.append((p, "torch", False, None))
    p = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), str(p))
    out.append((p, "torch", False, None))
    return out


def _equal(got, want):
    if want is None:
        return False
    if type(got) is not type(want) and not (isinstance(want, dict) and isinstance(got, dict)):
        return False
    if isinstance(want, dict):
        return list(got) == list(want) and all(_equal(got[k], want[k]) for k in want)
    if isinstance(want, (list, tuple)):
        return len(got) == len(want) and all(_equal(a, b) for a, b in zip(got, want))
    if isinstance(want, np.ndarray):
        return got.dtype == want.dtype and got.shape == want.shape and got.tobytes() == want.tobytes()
    if type(want).__module__.startswith("torch"):
        import torch
        return (got.dtype == want.dtype and got.shape == want.shape and
                got.stride() == want.stride() and torch.equal(got, want))
    if type(want).__module__.startswith("sklearn"):
        return pickle.dumps(got, 4) == pickle.dumps(want, 4)
    return got == want


def test_eight_threads_mixed_files(tmp_path):
    canary = tmp_path / "CANARY"
    files = _files(tmp_path, canary)
    assert sum(w is None for *_, w in files) >= 2 and sum(w is not None for *_, w in files) >= 5
    barrier = threading.Barrier(THREADS)
    results = []
    lock = threading.Lock()

    def work(seed):
        order = list(range(len(files))) * ROUNDS
        random.Random(seed).shuffle(order)
        barrier.wait()
        for i in order:
            path, policy, mmap, want = files[i]
            try:
                got = pp.load(path, policy=policy, mmap_mode="r" if mmap else None)
                ok = _equal(got, want)
                what = "loaded"
            except pp.UnsafePickleError as e:
                ok = want is None and e.verdict == "unsafe"
                what = "refused %s" % e.rule
            except Exception as e:  # reported below with the file
                ok, what = False, "%s: %s" % (type(e).__name__, e)
            with lock:
                results.append((path.name, ok, what))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == THREADS * ROUNDS * len(files)
    bad = [r for r in results if not r[1]]
    assert not bad, bad[:10]
    assert not canary.exists()


def test_threads_loads_and_scan_mixed(tmp_path):
    """loads (bytes) and scan interleaved with load on the same files."""
    canary = tmp_path / "CANARY"
    good = pickle.dumps({"a": np.arange(100.0), "b": list(range(50))}, protocol=5)
    evil = pickle.dumps([1, Touch(canary)], protocol=2)
    out = []
    lock = threading.Lock()

    def work(k):
        for n in range(6):
            if (k + n) % 3 == 0:
                r = pp.scan(evil)
                res = (not r.safe) and r.verdict == "unsafe"
            elif (k + n) % 3 == 1:
                try:
                    pp.loads(evil)
                    res = False
                except pp.UnsafePickleError:
                    res = True
            else:
                got = pp.loads(good)
                res = np.array_equal(got["a"], np.arange(100.0)) and got["b"] == list(range(50))
            with lock:
                out.append(res)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == THREADS * 6 and all(out)
    assert not canary.exists()
