#!/usr/bin/python3
"""joblib files, measured side by side in one run:

1. a ~1 GiB uncompressed joblib of float64 arrays: `pickleproof scan` against `joblib.load` of the
   same file (the scan skips the array bytes, so it should take < 1% of the load);
2. a zlib-compressed joblib (default ~256 MiB before compression): the scan against plain
   decompression of the same file (zlib.decompress), i.e. how close the scan runs to the
   decompressor's own speed.

Both files are written to a temporary directory (or --dir) with the real joblib, then removed.

usage: /usr/bin/python3 bench/bench_joblib.py [--pickleproof build/pickleproof] [--mb 1024]
                                              [--zmb 256] [--dir DIR]
"""
import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
import zlib

import joblib
import numpy as np

POLICY = "include default\nconstruct joblib.numpy_pickle.NumpyArrayWrapper\n"


def best_of(n, fn):
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def child_cpu(n, fn):
    """Best CPU time (user + sys) of a child process over n runs."""
    best = float("inf")
    for _ in range(n):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        fn()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return best


def own_cpu(n, fn):
    best = float("inf")
    for _ in range(n):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def scan(cli, policy, path, sandbox="off"):
    r = subprocess.run([cli, "scan", "--sandbox=" + sandbox, "--policy", policy, str(path)],
                       capture_output=True)
    if r.returncode != 0:
        raise SystemExit("scan of %s did not say safe:\n%s%s" % (path, r.stdout.decode(),
                                                                 r.stderr.decode()))


def arrays(total_mb, n=16):
    per = total_mb * (1 << 20) // n // 8
    rng = np.random.default_rng(0)
    return {"w%02d" % i: rng.standard_normal(per) if i % 2 else np.arange(per, dtype=np.float64)
            for i in range(n)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pickleproof", default="build/pickleproof")
    ap.add_argument("--mb", type=int, default=1024, help="uncompressed file size in MiB")
    ap.add_argument("--zmb", type=int, default=256, help="data in the compressed file, MiB")
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="bench-joblib-", dir=a.dir)
    try:
        policy = os.path.join(d, "bench.policy")
        with open(policy, "w") as f:
            f.write(POLICY)

        raw = os.path.join(d, "big.joblib")
        joblib.dump(arrays(a.mb), raw)
        size = os.path.getsize(raw)
        # warm the page cache for both readers
        joblib.load(raw)
        t_load = best_of(3, lambda: joblib.load(raw))
        t_scan = best_of(5, lambda: scan(a.pickleproof, policy, raw))
        c_load = own_cpu(3, lambda: joblib.load(raw))
        c_scan = child_cpu(5, lambda: scan(a.pickleproof, policy, raw))
        t_sbx = best_of(3, lambda: scan(a.pickleproof, policy, raw, "require"))
        print("uncompressed joblib: %.1f MiB" % (size / 2**20))
        print("  joblib.load      %8.3f s" % t_load)
        print("  pickleproof scan %8.3f s  (in-process, --sandbox=off)" % t_scan)
        print("  sandboxed scan   %8.3f s  (--sandbox=require: the helper maps the same file,"
              " %.4fx of load)" % (t_sbx, t_sbx / t_load))
        print("  scan / load      %8.4f  (%.3f%%; target < 1%%)" % (t_scan / t_load,
                                                                     100 * t_scan / t_load))
        print("  CPU time: load %.3f s, scan %.4f s, scan / load %.4f (%.3f%%)"
              % (c_load, c_scan, c_scan / c_load, 100 * c_scan / c_load))
        # the fixed cost of one CLI run (exec, policy parsing), for reading the ratio
        tiny = os.path.join(d, "tiny.joblib")
        joblib.dump(np.arange(4.0), tiny)
        t_tiny = best_of(5, lambda: scan(a.pickleproof, policy, tiny))
        print("  (scan of a %d-byte joblib: %.3f s, the CLI's fixed cost)"
              % (os.path.getsize(tiny), t_tiny))
        os.unlink(raw)

        comp = os.path.join(d, "big.joblib.z")
        joblib.dump(arrays(a.zmb), comp, compress=("zlib", 3))
        csize = os.path.getsize(comp)
        with open(comp, "rb") as f:
            blob = f.read()
        t_dec = best_of(3, lambda: zlib.decompress(blob))
        t_zscan = best_of(3, lambda: scan(a.pickleproof, policy, comp))
        t_zload = best_of(1, lambda: joblib.load(comp))
        print("zlib joblib: %.1f MiB compressed, %d MiB of arrays" % (csize / 2**20, a.zmb))
        print("  zlib.decompress  %8.3f s" % t_dec)
        print("  pickleproof scan %8.3f s" % t_zscan)
        print("  joblib.load      %8.3f s" % t_zload)
        print("  scan / decompress %7.3f" % (t_zscan / t_dec))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
