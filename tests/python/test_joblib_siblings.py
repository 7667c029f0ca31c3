# label: containers
"""joblib's old multi-file format (joblib < 0.10): the pickle names side files that joblib's
compatibility reader loads (np.load with allow_pickle=True, or zfiles of raw bytes). The files
here are written the way joblib 0.9 wrote them and checked with the real joblib.load first."""
import io
import json
import os
import pickle
import subprocess
import zlib

import joblib
import joblib.numpy_pickle_compat as compat
import numpy as np
import pytest

CLI = os.environ.get("PICKLEPROOF")
pytestmark = pytest.mark.skipif(not CLI, reason="PICKLEPROOF not set (run under ctest)")


def scan(path, *extra):
    # side files are read by the parser, which the seccomp sandbox forbids: scan in-process
    r = subprocess.run([CLI, "scan", "--format", "json", "--sandbox=off", *extra, str(path)],
                       capture_output=True, timeout=120)
    return r.returncode, json.loads(r.stdout)["files"][0]


def old_pickle(obj):
    """Protocol 2 names the wrapper classes by text; joblib 0.9 wrote them as joblib.numpy_pickle."""
    data = pickle.dumps(obj, protocol=2)
    return data.replace(b"joblib.numpy_pickle_compat\n", b"joblib.numpy_pickle\n")


def nd_wrapper(filename):
    w = object.__new__(compat.NDArrayWrapper)
    w.__dict__.update(filename=filename, subclass=np.ndarray, allow_mmap=True)
    return w


def zfile(data):
    return b"ZF" + hex(len(data)).encode().ljust(19) + zlib.compress(data)


def test_npy_sibling_safe(tmp_path):
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "m.pkl_01.npy", arr)
    (tmp_path / "m.pkl").write_bytes(old_pickle({"w": nd_wrapper("m.pkl_01.npy"), "n": 3}))
    got = joblib.load(tmp_path / "m.pkl")
    assert np.array_equal(got["w"], arr)
    rc, f = scan(tmp_path / "m.pkl")
    assert rc == 0 and f["verdict"] == "safe", f
    regions = [a for a in f["arrays"] if a["where"].endswith("m.pkl_01.npy")]
    assert len(regions) == 1 and regions[0]["nbytes"] == arr.nbytes and regions[0]["shape"] == [3, 4]


def test_sibling_object_array_payload(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    np.save(tmp_path / "m.pkl_01.npy", np.array([Evil()], dtype=object), allow_pickle=True)
    (tmp_path / "m.pkl").write_bytes(old_pickle([nd_wrapper("m.pkl_01.npy")]))
    rc, f = scan(tmp_path / "m.pkl")
    assert rc == 1 and f["verdict"] == "unsafe"
    bad = [x for x in f["findings"] if x["rule"] == "global-not-allowed"]
    assert bad and "m.pkl_01.npy" in bad[0]["stream"] and bad[0]["global"] == "posix.system"


def test_sibling_that_is_a_pickle(tmp_path):
    # np.load(allow_pickle=True) unpickles anything that is neither .npy nor .npz
    (tmp_path / "m.pkl_01.npy").write_bytes(b"cposix\nsystem\n(S'echo pwned'\ntR.")
    (tmp_path / "m.pkl").write_bytes(old_pickle([nd_wrapper("m.pkl_01.npy")]))
    rc, f = scan(tmp_path / "m.pkl")
    assert rc == 1 and f["verdict"] == "unsafe"
    assert any(x["global"] == "posix.system" for x in f["findings"])


def test_missing_and_linked_siblings(tmp_path):
    (tmp_path / "m.pkl").write_bytes(old_pickle([nd_wrapper("m.pkl_01.npy")]))
    rc, f = scan(tmp_path / "m.pkl")
    # a side file that cannot be read is an operational error (exit 2), never "safe"
    assert rc == 2 and f["verdict"] == "error" and f["error"]["name"] == "io-error"
    assert "m.pkl_01.npy" in f["error"]["message"]
    np.save(tmp_path / "real.npy", np.zeros(3))
    os.symlink(tmp_path / "real.npy", tmp_path / "m.pkl_01.npy")
    rc, f = scan(tmp_path / "m.pkl")  # links are not followed
    assert rc == 2 and f["verdict"] == "error" and f["error"]["name"] == "io-error"


def test_escaping_name(tmp_path):
    (tmp_path / "m.pkl").write_bytes(old_pickle([nd_wrapper("../outside.npy")]))
    rc, f = scan(tmp_path / "m.pkl")
    assert rc == 1 and any(x["rule"] == "joblib-sibling-escape" for x in f["findings"])


def test_sandboxed_scan_reads_side_files(tmp_path):
    """The confined parser cannot open files: the parent reads the side files it names."""
    arr = np.arange(6, dtype=np.int16)
    np.save(tmp_path / "m.pkl_01.npy", arr)
    (tmp_path / "m.pkl").write_bytes(old_pickle([nd_wrapper("m.pkl_01.npy")]))
    r = subprocess.run([CLI, "scan", "--format", "json", str(tmp_path / "m.pkl")],
                       capture_output=True, timeout=120)
    f = json.loads(r.stdout)["files"][0]
    assert r.returncode == 0 and f["verdict"] == "safe" and f["sandbox"] != "off", f
    assert any(a["where"].endswith("m.pkl_01.npy") and a["nbytes"] == arr.nbytes
               for a in f["arrays"])
    # a payload in the side file is found inside the sandbox too
    (tmp_path / "m.pkl_01.npy").write_bytes(b"cposix\nsystem\n(S'echo pwned'\ntR.")
    r = subprocess.run([CLI, "scan", "--format", "json", str(tmp_path / "m.pkl")],
                       capture_output=True, timeout=120)
    f = json.loads(r.stdout)["files"][0]
    assert r.returncode == 1 and f["verdict"] == "unsafe"
    assert any(x["global"] == "posix.system" for x in f["findings"])
    # missing under the sandbox: refused, naming the file
    (tmp_path / "m.pkl_01.npy").unlink()
    r = subprocess.run([CLI, "scan", "--format", "json", str(tmp_path / "m.pkl")],
                       capture_output=True, timeout=120)
    f = json.loads(r.stdout)["files"][0]
    assert r.returncode == 2 and f["verdict"] == "error" and "m.pkl_01.npy" in f["error"]["message"]


def test_memory_buffer_scan_never_safe(tmp_path):
    np.save(tmp_path / "m.pkl_01.npy", np.zeros(3))
    data = old_pickle([nd_wrapper("m.pkl_01.npy")])
    r = subprocess.run([CLI, "scan", "--format", "json", "-"], input=data, capture_output=True,
                       timeout=60)
    f = json.loads(r.stdout)["files"][0]
    assert r.returncode == 1 and f["verdict"] != "safe"


def test_compressed_znd_sibling(tmp_path):
    arr = np.arange(10, dtype=np.int64)
    w = object.__new__(compat.ZNDArrayWrapper)
    w.__dict__.update(filename="m.pkl_01.npy.z",
                      state=(1, arr.shape, arr.dtype, False),
                      init_args=(np.ndarray, (0,), b"b"))
    (tmp_path / "m.pkl_01.npy.z").write_bytes(zfile(arr.tobytes()))
    (tmp_path / "m.pkl").write_bytes(zfile(old_pickle({"a": w})))
    got = joblib.load(tmp_path / "m.pkl")
    assert np.array_equal(got["a"], arr)
    rc, f = scan(tmp_path / "m.pkl")
    assert rc == 0 and f["verdict"] == "safe", f
    assert any(a["where"].endswith("m.pkl_01.npy.z") and a["nbytes"] == arr.nbytes
               for a in f["arrays"])
    (tmp_path / "m.pkl_01.npy.z").write_bytes(b"ZF" + b"0x50".ljust(19) + b"garbage")
    rc, f = scan(tmp_path / "m.pkl")
    assert rc == 1 and f["verdict"] == "malformed"


def test_signed_main_file_does_not_vouch_for_side_files(tmp_path):
    np.save(tmp_path / "m.pkl_01.npy", np.zeros(3))
    (tmp_path / "m.pkl").write_bytes(old_pickle([nd_wrapper("m.pkl_01.npy")]))
    assert subprocess.run([CLI, "keygen", "-W", "-p", str(tmp_path / "k.pub"), "-s",
                           str(tmp_path / "k.key")], capture_output=True).returncode == 0
    assert subprocess.run([CLI, "sign", "-s", str(tmp_path / "k.key"), str(tmp_path / "m.pkl")],
                          capture_output=True).returncode == 0
    for cmd in (["scan", "--format", "json", "--sandbox=off"], ["explain"]):
        r = subprocess.run([CLI, *cmd, "--key", str(tmp_path / "k.pub"), str(tmp_path / "m.pkl")],
                           capture_output=True, timeout=60)
        assert r.returncode == 1, (cmd, r.stdout)
        assert b"SAFE (" not in r.stdout
