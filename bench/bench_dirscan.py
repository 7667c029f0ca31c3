#!/usr/bin/python3
"""Files per second for a directory of small model files, measured side by side in one run:
`pickleproof scan -j1`, `pickleproof scan -j$(nproc)` (one sandboxed helper per file either
way) and a pickletools-based scan of the same files in one Python process (pickletools.genops
over each file's pickle stream, the way Python scanners look for GLOBAL/STACK_GLOBAL/REDUCE).
Prints the ratios; target: all cores >= 1.8x one worker on 2 cores.

usage: /usr/bin/python3 bench/bench_dirscan.py [--pickleproof build/pickleproof] [--files 10000]
"""
import argparse
import io
import json
import os
import pickle
import pickletools
import subprocess
import tempfile
import time
import zlib

import joblib
import numpy as np


def make_files(d, n):
    """A third each: raw pickles (protocols 2-5), joblib files (some compressed) and .npy."""
    rng = np.random.default_rng(1)
    for i in range(n):
        sub = os.path.join(d, "m%02d" % (i % 50))
        os.makedirs(sub, exist_ok=True)
        kind = i % 3
        if kind == 0:
            obj = {"id": i, "name": "layer%d" % i, "w": [float(j) for j in range(i % 16)],
                   "shape": (i % 7, 3), "ok": True}
            with open(os.path.join(sub, "f%05d.pkl" % i), "wb") as f:
                pickle.dump(obj, f, protocol=2 + i % 4)
        elif kind == 1:
            obj = {"coef": rng.standard_normal(8 + i % 8), "bias": float(i)}
            joblib.dump(obj, os.path.join(sub, "f%05d.joblib" % i), compress=3 if i % 2 else 0)
        else:
            np.save(os.path.join(sub, "f%05d.npy" % i), rng.standard_normal((4, 1 + i % 5)))


def pickletools_scan(paths):
    """What a Python scanner does per file: find the pickle stream, walk its opcodes, collect
    globals. joblib's zlib files are inflated first; .npy headers are skipped (no pickle). Like
    picklescan, it stops at the first byte genops cannot read (less work than a full scan)."""
    nglobals = 0
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        if data[:6] == b"\x93NUMPY":
            continue
        if data[:1] == b"\x78":
            data = zlib.decompress(data)
        try:
            for op, _arg, _pos in pickletools.genops(io.BytesIO(data)):
                if op.name in ("GLOBAL", "STACK_GLOBAL", "INST"):
                    nglobals += 1
        except ValueError:
            pass  # joblib's raw array bytes sit inside the stream: genops stops there
    return nglobals


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pickleproof", default="build/pickleproof")
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    ncpu = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as d:
        t = timed(lambda: make_files(d, a.files))
        paths = sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs)
        print("%d files (%d bytes on average) written in %.1f s" %
              (len(paths), sum(os.path.getsize(p) for p in paths) // len(paths), t))

        def scan(jobs):
            r = subprocess.run([a.pickleproof, "scan", "--no-config", "-q", "--format", "json",
                                "-j", str(jobs), d], stdout=subprocess.PIPE)
            s = json.loads(r.stdout)["summary"]
            assert s["files"] == len(paths) and s["safe"] == len(paths), s

        scan(ncpu)  # warm the page cache
        res = {}
        for name, fn in (("scan -j1", lambda: scan(1)),
                         ("scan -j%d" % ncpu, lambda: scan(ncpu)),
                         ("pickletools", lambda: pickletools_scan(paths))):
            res[name] = min(timed(fn) for _ in range(a.runs))
    n = len(paths)
    print("%-14s %10s %10s" % ("scanner", "seconds", "files/s"))
    for name, s in res.items():
        print("%-14s %10.2f %10.0f" % (name, s, n / s))
    one, all_, pt = res["scan -j1"], res["scan -j%d" % ncpu], res["pickletools"]
    print("speed-up with %d workers: %.2fx (target >= 1.8x on 2 cores)" % (ncpu, one / all_))
    print("scan -j%d vs pickletools: %.2fx the files per second" % (ncpu, pt / all_))
    print("scan -j1 vs pickletools: %.2fx the files per second" % (pt / one))


if __name__ == "__main__":
    main()
