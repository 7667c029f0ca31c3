#!/usr/bin/python3
"""Long differential campaigns: tests/python/test_differential.py (our VM against CPython's C and
pure-Python unpicklers, through the recording unpicklers) run round after round with fresh seeds.

    /usr/bin/python3 fuzz/differential.py --cli build/pickleproof [--seed N] [--count K]
                                          [--time SECONDS] [--base B] [--mutants M] [--out DIR]

Round i uses seed N+i, B generated and M mutated pickles (gen_pickles.py). A round that finds a
MISMATCH keeps its inputs and both documents under DIR/seed-<hex>/ and the campaign goes on; the
exit code is 1 if any round failed. Each round runs one recorder process and one CLI at a time
(PP_DIFF_JOBS=1): the machine is shared. A mismatch is reproduced with the same seed:
    PP_DIFF_SEED=<hex> PICKLEPROOF=build/pickleproof /usr/bin/python3 -m pytest \
        tests/python/test_differential.py
and, once fixed, its input is added to gen_pickles.py's hand cases so every CI run replays it.
"""
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST = os.path.join(ROOT, "tests", "python", "test_differential.py")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "pickleproof"))
    ap.add_argument("--seed", type=lambda s: int(s, 0), default=int(time.time()))
    ap.add_argument("--count", type=int, default=0, help="rounds (0: until --time)")
    ap.add_argument("--time", type=float, default=0, help="seconds (0: until --count)")
    ap.add_argument("--base", type=int, default=2000)
    ap.add_argument("--mutants", type=int, default=8000)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "differential"))
    a = ap.parse_args()
    if not a.count and not a.time:
        a.count = 1
    t0 = time.time()
    failed, rounds, cases = [], 0, 0
    while (not a.count or rounds < a.count) and (not a.time or time.time() - t0 < a.time):
        seed = a.seed + rounds
        faildir = os.path.join(a.out, "seed-%#x" % seed)
        env = dict(os.environ, PICKLEPROOF=os.path.abspath(a.cli), PP_DIFF_SEED=hex(seed),
                   PP_DIFF_BASE=str(a.base), PP_DIFF_MUTANTS=str(a.mutants),
                   PP_DIFF_JOBS=str(a.jobs), PP_DIFF_FAILDIR=faildir, PYTHONHASHSEED="0")
        t1 = time.time()
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "-x", TEST], env=env, capture_output=True, text=True, cwd=ROOT)
        out = p.stdout + p.stderr
        m = re.search(r"\[differential\] (\d+) base \+ (\d+) mutated", out)
        n = int(m.group(1)) + int(m.group(2)) if m else 0
        cases += n
        rounds += 1
        verdict = "ok" if p.returncode == 0 else "MISMATCH (see %s)" % faildir
        print("round %d seed %#x: %d cases, %.0fs, %s" % (rounds, seed, n, time.time() - t1, verdict),
              flush=True)
        if p.returncode != 0:
            failed.append(seed)
            os.makedirs(faildir, exist_ok=True)
            with open(os.path.join(faildir, "pytest.log"), "w") as f:
                f.write(out)
    print("%d rounds, %d cases (each in both flavours), %.0fs, %d failed%s"
          % (rounds, cases, time.time() - t0, len(failed),
             (": seeds " + " ".join("%#x" % s for s in failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
