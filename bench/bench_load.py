#!/usr/bin/python3
"""pickleproof.load against the libraries' own loaders, measured side by side in one run.

1. a small model (StandardScaler + LogisticRegression pipeline);
2. a 300-tree RandomForestClassifier (object-heavy: thousands of small arrays and objects);
3. ~1 GiB of float64 arrays (--mb), loaded as copies and with mmap_mode="r".

Each file is written with the real joblib (uncompressed) and with pickle (protocol 5); the
times are the best of N runs of: joblib.load, pickle.load, pickleproof.load (sandboxed, the
default) and pickleproof.load(sandbox="off") (what the sandbox costs). The ratios are
pickleproof.load / joblib.load; targets from the issue: <= 1.3x for object-heavy models,
<= 1.1x joblib.load(mmap_mode="r") for array-heavy files.

usage: /usr/bin/python3 bench/bench_load.py [--python-dir build/python] [--mb 1024] [--dir DIR]
                                            [--trees 300] [--repeat 5]
"""
import argparse
import gc
import os
import pickle
import shutil
import sys
import tempfile
import time
import warnings


def best_of(n, fn):
    best = float("inf")
    for _ in range(n):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        del out
    return best


def pickle_load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def row(label, t, ref):
    print("  %-44s %9.4f s  %6.2fx" % (label, t, t / ref))


def compare(title, jpath, ppath, policy, n, joblib, pp, mmap=False):
    """Prints one table; returns (pickleproof.load / joblib.load) for the joblib file."""
    print("%s  (joblib %.1f MiB, pickle %.1f MiB, best of %d)"
          % (title, os.path.getsize(jpath) / 2**20, os.path.getsize(ppath) / 2**20, n))
    # warm the page cache and every import on both sides
    joblib.load(jpath)
    pp.load(jpath, policy=policy)
    t_j = best_of(n, lambda: joblib.load(jpath))
    t_p = best_of(n, lambda: pickle_load(ppath))
    t_pp = best_of(n, lambda: pp.load(jpath, policy=policy))
    t_off = best_of(n, lambda: pp.load(jpath, policy=policy, sandbox="off"))
    t_ppp = best_of(n, lambda: pp.load(ppath, policy=policy))
    t_scan = best_of(n, lambda: pp.scan(jpath, policy=policy))
    print("  %-44s %9s    %6s" % ("", "time", "/ joblib.load"))
    row("joblib.load", t_j, t_j)
    row("pickle.load (protocol-5 file)", t_p, t_j)
    row("pickleproof.load (joblib file)", t_pp, t_j)
    row("pickleproof.load sandbox=off (joblib file)", t_off, t_j)
    row("pickleproof.load (protocol-5 file)", t_ppp, t_j)
    row("pickleproof.scan only (joblib file)", t_scan, t_j)
    print("  pickleproof.load / pickle.load (same pickle file): %.2fx" % (t_ppp / t_p))
    print("  sandbox cost: %.4f s per load" % (t_pp - t_off))
    ratio = t_pp / t_j
    if mmap:
        joblib.load(jpath, mmap_mode="r")
        t_jm = best_of(n, lambda: joblib.load(jpath, mmap_mode="r"))
        t_pm = best_of(n, lambda: pp.load(jpath, policy=policy, mmap_mode="r"))
        t_pmo = best_of(n, lambda: pp.load(jpath, policy=policy, mmap_mode="r", sandbox="off"))
        print("  mmap_mode='r':")
        row("joblib.load(mmap_mode='r')", t_jm, t_jm)
        row("pickleproof.load(mmap_mode='r')", t_pm, t_jm)
        row("pickleproof.load(mmap_mode='r', sandbox=off)", t_pmo, t_jm)
        return ratio, t_pm / t_jm
    return ratio, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python-dir", default="build/python", help="where the built package is")
    ap.add_argument("--mb", type=int, default=1024, help="MiB of float arrays for case 3")
    ap.add_argument("--trees", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5, help="best of N for the big cases")
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.python_dir))
    import joblib
    import numpy as np
    import pickleproof as pp
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d = tempfile.mkdtemp(prefix="bench-load-", dir=a.dir)
    try:
        rng = np.random.RandomState(0)
        X = rng.normal(size=(2000, 10))
        y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int)
        out = []

        def files(name, obj):
            jp, pk = os.path.join(d, name + ".joblib"), os.path.join(d, name + ".pkl")
            joblib.dump(obj, jp)
            with open(pk, "wb") as f:
                pickle.dump(obj, f, protocol=5)
            return jp, pk

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            small = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
            forest = RandomForestClassifier(n_estimators=a.trees, max_depth=12,
                                            random_state=0, n_jobs=1).fit(X, y)
        jp, pk = files("small", small)
        out.append(("small model", compare("1. small model (scaler + logistic regression)",
                                           jp, pk, "sklearn", 50, joblib, pp)[0], 1.3))
        nodes = sum(t.tree_.node_count for t in forest.estimators_)
        jp, pk = files("forest", forest)
        out.append(("%d-tree forest" % a.trees,
                    compare("2. RandomForestClassifier, %d trees, %d nodes" % (a.trees, nodes),
                            jp, pk, "sklearn", a.repeat, joblib, pp)[0], 1.3))
        for p in (jp, pk):
            os.unlink(p)

        n = 16
        per = a.mb * (1 << 20) // n // 8
        arrays = {"w%02d" % i: (rng.standard_normal(per) if i % 2 else np.arange(per, dtype="<f8"))
                  for i in range(n)}
        jp, pk = files("arrays", arrays)
        del arrays
        copy, mapped = compare("3. %d float64 arrays, %d MiB" % (n, a.mb), jp, pk, "default",
                               a.repeat, joblib, pp, mmap=True)
        out.append(("arrays, copy", copy, None))
        out.append(("arrays, mmap_mode='r' (vs joblib mmap)", mapped, 1.1))
        print("summary: pickleproof.load / joblib.load")
        for name, ratio, target in out:
            verdict = "" if target is None else ("  target <= %.1fx: %s" % (
                target, "met" if ratio <= target else "MISSED"))
            print("  %-40s %6.2fx%s" % (name, ratio, verdict))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
