#!/usr/bin/python3
"""Time and peak memory of the CLI on every resource bomb of tests/python/bombs.py, under the
caps tests/python/test_bombs.py enforces (RLIMIT_AS 256 MiB, RLIMIT_CPU 10 s). Prints, per bomb,
the file size, wall and CPU seconds (CLI plus its sandboxed parser), the peak RSS of the
largest process, and the verdict with the limit it names; next to it the same scan of a small
real pickle, so the bombs' cost reads as a multiple of process start-up.

usage: /usr/bin/python3 bench/bench_bombs.py [--pickleproof build/pickleproof] [--runs 3]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import bombs  # noqa: E402


def _limits():
    resource.setrlimit(resource.RLIMIT_CPU, (10, 10))
    resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))


def run(cli, path, opts):
    """(wall s, cpu s, max RSS MiB, file object) of one scan, children included."""
    t = time.perf_counter()
    proc = subprocess.Popen([cli, "scan", "--format", "json", *opts, path], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, preexec_fn=_limits)
    out = proc.stdout.read()
    _, _, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    # the sandboxed parser is a grandchild: RUSAGE_CHILDREN of this process covers the reaped tree
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024.0, json.loads(out)["files"][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pickleproof", default="build/pickleproof")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        small = os.path.join(d, "small.pkl")
        with open(small, "wb") as f:
            f.write(b"\x80\x04]\x94(K\x01K\x02e.")
        base = min(run(a.pickleproof, small, [])[0] for _ in range(a.runs))
        print("%-20s %10s %8s %8s %9s %7s  %s" % ("bomb", "bytes", "wall s", "cpu s", "RSS MiB",
                                                   "x small", "verdict"))
        print("%-20s %10d %8.3f %8s %9s %7s  %s" % ("(small pickle)", os.path.getsize(small), base,
                                                     "", "", "1.0", "safe"))
        for name, build, opts, _verdict, _what in bombs.BOMBS:
            path = build(d)
            best = None
            for _ in range(a.runs):
                r = run(a.pickleproof, path, opts)
                if best is None or r[0] < best[0]:
                    best = r
            wall, cpu, rss, fo = best
            err = fo.get("error") or {}
            what = err.get("limit") or err.get("name") or ""
            print("%-20s %10d %8.3f %8.3f %9.1f %7.1f  %s %s%s" % (
                name, os.path.getsize(path), wall, cpu, rss, wall / base, fo["verdict"], what,
                (" (" + " ".join(opts) + ")") if opts else ""), flush=True)
            os.unlink(path)


if __name__ == "__main__":
    main()
