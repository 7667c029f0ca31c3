#!/usr/bin/python3
"""Per-file cost of the sandbox on small files: one process scans N small pickles with the
sandbox off, at `process` (helper + rlimits) and at `require` (helper + rlimits + seccomp), best
of several runs; prints microseconds per file, the overhead per file and the ratio to the
unsandboxed scan. Target: overhead <= 1 ms per file.

usage: /usr/bin/python3 bench/bench_sandbox.py [--selftest build/pp_sandbox_selftest] [--files 300]
(pp_sandbox_selftest drives pp_sandbox_scan directly until the CLI has --sandbox.)
"""
import argparse
import collections
import os
import pickle
import subprocess
import tempfile
import time


def best_of(n, fn):
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--selftest", default="build/pp_sandbox_selftest")
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        files = []
        for i in range(a.files):
            obj = {"id": i, "name": "m%d" % i, "w": [float(j) for j in range(i % 20)],
                   "od": collections.OrderedDict(a=i), "t": (i, None, True)}
            p = os.path.join(d, "f%04d.pkl" % i)
            with open(p, "wb") as f:
                pickle.dump(obj, f, protocol=2 + i % 4)
            files.append(p)
        avg = sum(os.path.getsize(p) for p in files) / len(files)

        def run(level):
            out = subprocess.run([a.selftest, "--sandbox=" + level] + files, check=True,
                                 stdout=subprocess.PIPE).stdout
            assert out.count(b"\n") == len(files)

        run("require")  # warm the page cache and the probe path
        t = {lvl: best_of(a.runs, lambda lvl=lvl: run(lvl)) for lvl in ("off", "process", "require")}
    n = len(files)
    print("%d files, %.0f bytes on average, best of %d runs" % (n, avg, a.runs))
    print("%-8s %10s %14s %8s" % ("level", "us/file", "overhead us", "ratio"))
    for lvl in ("off", "process", "require"):
        us = t[lvl] / n * 1e6
        over = (t[lvl] - t["off"]) / n * 1e6
        print("%-8s %10.1f %14.1f %8.1f" % (lvl, us, over, t[lvl] / t["off"]))
    over = (t["require"] - t["off"]) / n * 1e3
    print("seccomp sandbox overhead: %.3f ms per file (target <= 1 ms): %s"
          % (over, "ok" if over <= 1.0 else "OVER"))


if __name__ == "__main__":
    main()
