# label: cli
"""Golden bad inputs: tests/data/bad/NAME.pkl must give the verdict, error name and offset in
NAME.expect, and CPython must fail to load each one too (so rejecting it is not a false alarm)."""
import glob
import json
import os
import pickle
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BAD = os.path.join(HERE, "..", "data", "bad")
CLI = os.environ.get("PICKLEPROOF")
CASES = sorted(glob.glob(os.path.join(BAD, "*.pkl")))


@pytest.mark.skipif(not CLI, reason="PICKLEPROOF not set (run under ctest)")
@pytest.mark.parametrize("path", CASES, ids=[os.path.basename(p) for p in CASES])
def test_golden(path):
    verdict, err, off = open(path[:-4] + ".expect").read().split()
    r = subprocess.run([CLI, "scan", "--format", "json", path], capture_output=True, timeout=60)
    assert r.returncode == 1, r.stderr
    f = json.loads(r.stdout)["files"][0]
    assert f["verdict"] == verdict
    if err == "trailing-data":
        assert any(x["rule"] == "trailing-data" and x["offset"] == int(off) for x in f["findings"])
    else:
        assert f["error"]["name"] == err, f["error"]
        assert f["error"]["offset"] == int(off), f["error"]
    if err != "trailing-data":
        data = open(path, "rb").read()
        # CPython 3.11's C unpickler ignores frame boundaries; the pure-Python one enforces them
        loaders = (pickle._loads,) if err == "frame-error" else (pickle.loads, pickle._loads)
        for loads in loaders:
            with pytest.raises(Exception):
                loads(data)


def test_cases_exist():
    assert len(CASES) >= 20
