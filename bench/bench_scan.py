#!/usr/bin/python3
"""Scan time of a ~100 MB object-heavy pickle, measured side by side in one run against
pickle.loads of the same bytes and a pickletools.genops walk (what Python scanners do).

usage: /usr/bin/python3 bench/bench_scan.py [--pickleproof build/pickleproof] [--mb 100]
"""
import argparse
import os
import pickle
import pickletools
import random
import subprocess
import tempfile
import time


def make_objects(target_mb):
    rnd = random.Random(1)
    rows = []
    size = 0
    i = 0
    while size < target_mb * 1_000_000:
        chunk = []
        for _ in range(10000):
            chunk.append({
                "id": i,
                "name": "user%d" % i,
                "score": rnd.random() * 100,
                "tags": ["t%d" % rnd.randrange(50), "x" * rnd.randrange(1, 12)],
                "flags": (i % 2 == 0, None, i * 7919 % 1000003),
                "blob": bytes(rnd.randrange(256) for _ in range(8)),
            })
            i += 1
        rows.extend(chunk)
        size = len(pickle.dumps(rows[-10000:], protocol=4)) * (len(rows) // 10000)
    return rows


def best_of(n, fn):
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pickleproof", default=os.path.join(os.path.dirname(__file__), "..",
                                                         "build", "pickleproof"))
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sandbox", default="require", help="sandbox level for the scans")
    args = ap.parse_args()

    objs = make_objects(args.mb)
    for proto in (4, 2):
        data = pickle.dumps(objs, protocol=proto)
        with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as f:
            f.write(data)
            path = f.name
        try:
            def scan():
                r = subprocess.run([args.pickleproof, "scan", "--sandbox=" + args.sandbox,
                                    "--format", "json", path], stdout=subprocess.DEVNULL)
                if r.returncode != 0:
                    raise SystemExit("pickleproof rejected the benchmark file (exit %d)"
                                     % r.returncode)

            def loads():
                pickle.loads(data)

            def genops():
                for _ in pickletools.genops(data):
                    pass

            t_scan = best_of(args.runs, scan)
            t_loads = best_of(args.runs, loads)
            t_genops = best_of(1, genops)
            mb = len(data) / 1e6
            print("protocol %d, %.1f MB, %d objects (sandbox %s)" % (proto, mb, len(objs),
                                                                   args.sandbox))
            print("  pickleproof scan   %7.3f s  %7.1f MB/s" % (t_scan, mb / t_scan))
            print("  pickle.loads       %7.3f s  %7.1f MB/s  -> scan is %.2fx faster"
                  % (t_loads, mb / t_loads, t_loads / t_scan))
            print("  pickletools.genops %7.3f s  %7.1f MB/s  -> scan is %.2fx faster"
                  % (t_genops, mb / t_genops, t_genops / t_scan))
        finally:
            os.unlink(path)


if __name__ == "__main__":
    main()
