# label: containers
"""joblib files made at test time by the real joblib (Debian's python3-joblib 1.2), scanned with
`pickleproof scan --format json`.

Good files: every compressor and a few levels, many dtypes, C and Fortran order, 0-d and empty
arrays, object arrays, every pickle protocol, files meant for mmap_mode, small scikit-learn
models. Each must be safe under a policy that allows joblib's array wrapper (and the sklearn
classes), and every array region we report must hold exactly the bytes of the array joblib.load
returns: at file_offset in the file for uncompressed files, at offset in the decompressed stream
otherwise.

Bad files: a payload inside each compressor, after an array, inside an object array, an
old-format sibling file escaping the directory, truncation at every container boundary, shapes
that claim more bytes than exist, a gzip bomb.
"""

import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import resource
import shutil
import struct
import subprocess
import sys
import time
import zlib

import pytest

np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")

PICKLEPROOF = os.environ.get("PICKLEPROOF")
SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
SLOW = 6 if SANITIZED else 1

pytestmark = pytest.mark.skipif(not PICKLEPROOF, reason="PICKLEPROOF is not set")

POLICY = """include default
construct joblib.numpy_pickle.NumpyArrayWrapper
reference numpy.memmap
construct sklearn.linear_model._base.LinearRegression
construct sklearn.ensemble._forest.RandomForestClassifier
construct sklearn.tree._classes.DecisionTreeClassifier
call sklearn.tree._tree.Tree -> self
construct sklearn.tree._tree.Tree
"""

COMPRESSORS = ["zlib", "gzip", "bz2", "xz", "lzma"]
DECOMPRESS = {
    "zlib": zlib.decompress,
    "gzip": gzip.decompress,
    "bz2": bz2.decompress,
    "xz": lzma.decompress,
    "lzma": lzma.decompress,
}


class Evil:
    """Unpickling this would run a shell command (never loaded here)."""

    def __reduce__(self):
        return (os.system, ("true",))


@pytest.fixture
def policy(tmp_path):
    p = tmp_path / "joblib-test.policy"
    p.write_text(POLICY)
    return str(p)


def scan(path, policy=None, limits=()):
    cmd = [PICKLEPROOF, "scan", "--format", "json"]
    if policy:
        cmd += ["--policy", policy]
    for l in limits:
        cmd += ["--limit", l]
    t0 = time.monotonic()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(cmd + [str(path)], capture_output=True, timeout=120 * SLOW)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    dt = time.monotonic() - t0
    assert r.returncode in (0, 1, 2), r.stderr
    doc = json.loads(r.stdout)
    f = doc["files"][0]
    f["_rc"] = r.returncode
    f["_time"] = dt
    # CPU seconds of the scan: time budgets hold on a loaded machine too
    f["_cpu"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return f


def show(f):
    g = {k: v for k, v in f.items() if not k.startswith("_")}
    return "\n" + json.dumps(g, indent=1)[:4000]


def region_array(buf, reg):
    """The array a region describes, read from buf at its offset."""
    dt = np.dtype(reg["dtype"]) if not reg["dtype"].endswith("V56") else None
    off = reg["offset"] if buf is not None else None
    raw = buf[off : off + reg["nbytes"]]
    assert len(raw) == reg["nbytes"]
    return raw, dt


def expect_bytes(arr, reg):
    """The bytes joblib wrote for arr, in the region's byte order and memory order."""
    a = np.asarray(arr)
    if a.dtype.names is None and a.dtype.kind not in "OV":
        a = a.astype(np.dtype(reg["dtype"]), copy=False)
    return a.tobytes(order=reg["order"])


def check_regions(path, f, arrays, compressed=None):
    """Every reported region holds the bytes of the corresponding array, in order."""
    data = open(path, "rb").read()
    if compressed:
        stream = DECOMPRESS[compressed](data) if compressed != "lz4" else None
    else:
        stream = data
    regs = f["arrays"]
    assert len(regs) == len(arrays), "regions %d, arrays %d%s" % (len(regs), len(arrays), show(f))
    for reg, arr in zip(regs, arrays):
        a = np.asarray(arr)
        assert list(reg["shape"]) == list(a.shape), show(f)
        assert reg["nbytes"] == a.nbytes, show(f)
        if compressed:
            assert reg["file_offset"] is None, show(f)
            assert reg["where"].endswith("(%s)" % compressed), show(f)
            buf = stream
        else:
            assert reg["file_offset"] is not None, show(f)
            assert reg["file_offset"] == reg["offset"]
            assert reg["file_offset"] + reg["nbytes"] <= len(data)
            buf = data
        if buf is None:
            continue
        raw = buf[reg["offset"] : reg["offset"] + reg["nbytes"]]
        assert raw == expect_bytes(a, reg), "region bytes differ for %r%s" % (a.dtype, show(f))
        if a.dtype.names is None and a.dtype.kind not in "OV" and a.size:
            back = np.frombuffer(raw, dtype=np.dtype(reg["dtype"])).reshape(
                a.shape, order=reg["order"])
            assert np.array_equal(back, a, equal_nan=a.dtype.kind in "fc"), show(f)


def assert_safe(f):
    assert f["verdict"] == "safe" and f["_rc"] == 0, show(f)
    assert not f["findings"], show(f)


# ---------------------------------------------------------------------------------------------
# Good files.

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "longdouble", "complex64", "complex128", ">f4", ">i8",
          "datetime64[ns]", "timedelta64[s]", "datetime64[D]", "U5", "S3", "V4"]


def sample(dt, shape=(3, 4)):
    n = int(np.prod(shape))
    dt = np.dtype(dt)
    if dt.kind == "U":
        return np.array(["ab%d" % i for i in range(n)], dtype=dt).reshape(shape)
    if dt.kind == "S":
        return np.array([b"x%d" % i for i in range(n)], dtype=dt).reshape(shape)
    if dt.kind == "V":
        return np.frombuffer(bytes(range(n * dt.itemsize)), dtype=dt).reshape(shape)
    if dt.kind in "Mm":
        return np.arange(n).astype(dt).reshape(shape)
    return (np.arange(n) * 3 % 7).astype(dt).reshape(shape)


@pytest.mark.parametrize("dt", DTYPES)
def test_dtypes(tmp_path, policy, dt):
    arrays = [sample(dt), np.asfortranarray(sample(dt)), sample(dt, (2, 0, 3)), sample(dt, ())]
    p = tmp_path / "m.joblib"
    joblib.dump(arrays, p)
    f = scan(p, policy)
    assert_safe(f)
    assert f["container"] == "joblib"
    loaded = joblib.load(p)
    check_regions(p, f, loaded)
    assert [r["order"] for r in f["arrays"]] == ["C", "F", "C", "C"]
    for r, a in zip(f["arrays"], arrays):
        assert np.dtype(r["dtype"]) == a.dtype, (r["dtype"], a.dtype)


def test_structured_and_matrix(tmp_path, policy):
    st = np.zeros(4, dtype=[("a", "<i4"), ("b", ">f8", (2,)), ("c", "S2")])
    st["a"] = [1, 2, 3, 4]
    arrays = [st, np.arange(6.0).reshape(2, 3)[:, ::2].copy()]
    p = tmp_path / "s.joblib"
    joblib.dump(arrays, p)
    f = scan(p, policy)
    assert_safe(f)
    check_regions(p, f, joblib.load(p))


@pytest.mark.parametrize("proto", [0, 1, 2, 3, 4, 5])
def test_protocols(tmp_path, policy, proto):
    obj = {"a": np.arange(10, dtype=np.int16), "b": [np.ones((2, 2)), "text", 3.5]}
    p = tmp_path / ("p%d.joblib" % proto)
    joblib.dump(obj, p, protocol=proto)
    f = scan(p, policy)
    assert_safe(f)
    loaded = joblib.load(p)
    check_regions(p, f, [loaded["a"], loaded["b"][0]])


@pytest.mark.parametrize("comp", COMPRESSORS)
@pytest.mark.parametrize("level", [1, 3, 9])
def test_compressors(tmp_path, policy, comp, level):
    arrays = [np.arange(1000, dtype=np.float64), np.asfortranarray(sample("int32", (5, 7))),
              np.array([1, "two", None], dtype=object)]
    p = tmp_path / ("m.joblib." + comp)
    joblib.dump(arrays, p, compress=(comp, level))
    f = scan(p, policy)
    assert_safe(f)
    assert f["container"] == "joblib/" + comp
    check_regions(p, f, joblib.load(p)[:2], compressed=comp)


def test_compress_int_is_zlib(tmp_path, policy):
    p = tmp_path / "m.pkl"
    joblib.dump([np.arange(50)], p, compress=3)
    f = scan(p, policy)
    assert_safe(f)
    assert f["container"] == "joblib/zlib"


def test_lz4(tmp_path, policy):
    """python3-lz4 is not installed, so joblib cannot write lz4 here; joblib's lz4 file is the
    same byte stream in an lz4 frame, which the lz4 tool makes."""
    if not shutil.which("lz4"):
        pytest.skip("no lz4 tool")
    raw = tmp_path / "m.joblib"
    arrays = [np.arange(300, dtype=np.float32), np.ones((4, 4), dtype=np.int64)]
    joblib.dump(arrays, raw)
    p = tmp_path / "m.joblib.lz4"
    subprocess.run(["lz4", "-q", "-f", str(raw), str(p)], check=True)
    f = scan(p, policy)
    assert_safe(f)
    assert f["container"] == "joblib/lz4"
    fr = scan(raw, policy)
    assert [(r["offset"], r["nbytes"], r["dtype"]) for r in f["arrays"]] == \
        [(r["offset"], r["nbytes"], r["dtype"]) for r in fr["arrays"]]


def test_object_arrays(tmp_path, policy):
    obj = [np.array([1, "x", None, 2.5], dtype=object), np.arange(3),
           np.array([[1, 2], [3, 4]], dtype=object)]
    p = tmp_path / "o.joblib"
    joblib.dump(obj, p)
    f = scan(p, policy)
    assert_safe(f)
    assert f["streams"] >= 3
    check_regions(p, f, [joblib.load(p)[1]])


def test_mmap_aligned(tmp_path, policy):
    arrays = [np.arange(17, dtype=np.int8), np.arange(33, dtype=np.float64).reshape(3, 11),
              np.asfortranarray(np.arange(12, dtype=np.complex64).reshape(3, 4))]
    p = tmp_path / "mm.joblib"
    joblib.dump(arrays, p)
    f = scan(p, policy)
    assert_safe(f)
    mm = joblib.load(p, mmap_mode="r")
    for r, a in zip(f["arrays"], mm):
        assert isinstance(a, np.memmap)
        assert r["file_offset"] == a.offset, (r, a.offset)
        assert r["file_offset"] % 16 == 0
    check_regions(p, f, mm)


def test_subclasses(tmp_path, policy):
    """A memmap is written with subclass numpy.memmap, a matrix with numpy.matrix."""
    src = tmp_path / "src.joblib"
    joblib.dump(np.arange(7.0), src)
    m = joblib.load(src, mmap_mode="r")
    assert isinstance(m, np.memmap)
    p = tmp_path / "sub.joblib"
    joblib.dump([m, np.matrix([[1, 2], [3, 4]])], p)
    f = scan(p, policy)
    assert_safe(f)
    check_regions(p, f, joblib.load(p))


def test_plain_values(tmp_path, policy):
    """No array: the file is a plain pickle to both loaders and scanned as one."""
    p = tmp_path / "v.joblib"
    joblib.dump({"a": [1, 2, 3], "b": "x"}, p)
    f = scan(p, policy)
    assert_safe(f)
    assert f["container"] == "pickle"


def test_sklearn_models(tmp_path, policy):
    sk = pytest.importorskip("sklearn")
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LinearRegression

    rs = np.random.RandomState(0)
    X = rs.rand(40, 3)
    y = (X[:, 0] > 0.5).astype(int)
    models = {"lr": LinearRegression().fit(X, y),
              "rf": RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)}
    for name, m in models.items():
        for comp in (0, 3):
            p = tmp_path / ("%s-%d.joblib" % (name, comp))
            joblib.dump(m, p, compress=comp)
            f = scan(p, policy)
            assert_safe(f)
            assert f["arrays"], show(f)
            if not comp:
                data = p.read_bytes()
                for r in f["arrays"]:
                    assert r["file_offset"] + r["nbytes"] <= len(data)
        # without the sklearn lines the model is rejected, naming the class
        f = scan(tmp_path / ("%s-0.joblib" % name))
        assert f["verdict"] == "unsafe"


# ---------------------------------------------------------------------------------------------
# Malicious files.


def has_rule(f, rule, glob=None, stream=None):
    for x in f["findings"]:
        if x["rule"] == rule and (glob is None or x.get("global") == glob) and \
                (stream is None or stream(x["stream"])):
            return x
    return None


@pytest.mark.parametrize("comp", COMPRESSORS + [None])
def test_payload_in_compressor(tmp_path, policy, comp):
    p = tmp_path / "evil.joblib"
    joblib.dump([np.arange(5.0), Evil()], p, compress=(comp, 3) if comp else 0)
    f = scan(p, policy)
    assert f["verdict"] == "unsafe" and f["_rc"] == 1, show(f)
    want = str(p) + ("(%s)" % comp if comp else "")
    x = has_rule(f, "global-not-allowed", "posix.system", lambda s: s == want)
    assert x, show(f)
    # the payload comes after the array region
    assert x["offset"] > f["arrays"][0]["offset"] + f["arrays"][0]["nbytes"] - 1, show(f)


def test_payload_after_array_plain_pickle(tmp_path, policy):
    """gzip.compress(pickle.dumps(...)) is what joblib reads too."""
    p = tmp_path / "g.joblib"
    p.write_bytes(gzip.compress(pickle.dumps(Evil())))
    f = scan(p, policy)
    assert f["verdict"] == "unsafe", show(f)
    assert f["container"] == "joblib/gzip"


def test_payload_in_object_array(tmp_path, policy):
    p = tmp_path / "oa.joblib"
    joblib.dump([np.arange(3), np.array([1, Evil()], dtype=object), "tail"], p)
    f = scan(p, policy)
    assert f["verdict"] == "unsafe", show(f)
    x = has_rule(f, "global-not-allowed", "posix.system", lambda s: "!array@" in s)
    assert x, show(f)
    assert x["stream"].startswith(str(p) + "!array@")


def test_payload_hidden_in_array_bytes_for_pickle_load(tmp_path, policy):
    """Array bytes that pickle.load would run as opcodes (no padding, as joblib < 1.2 wrote):
    the two loaders disagree about code, so the file is rejected."""
    payload = b"cos\nsystem\n(S'true'\ntR."
    arr = np.frombuffer(payload, dtype=np.uint8)
    w = joblib.numpy_pickle.NumpyArrayWrapper(np.ndarray, arr.shape, "C", arr.dtype,
                                              allow_mmap=True, numpy_array_alignment_bytes=None)
    body = pickle.dumps(w, protocol=2)
    assert body.endswith(b"b.")
    data = body[:-1] + payload + b"."
    p = tmp_path / "div.joblib"
    p.write_bytes(data)
    f = scan(p, policy)
    assert f["verdict"] == "unsafe", show(f)
    assert has_rule(f, "joblib-pickle-divergence"), show(f)


def ndwrapper_pickle(filename, cls="NDArrayWrapper"):
    w = getattr(joblib.numpy_pickle, cls).__new__(getattr(joblib.numpy_pickle, cls))
    w.__dict__.update({"filename": filename, "subclass": np.ndarray, "allow_mmap": True})
    return pickle.dumps({"w": w}, protocol=2)


@pytest.mark.parametrize("name", ["../evil.npy", "/etc/passwd", "a/b.npy", ".."])
def test_sibling_escape(tmp_path, name):
    p = tmp_path / "old.pkl"
    p.write_bytes(ndwrapper_pickle(name))
    f = scan(p)
    assert f["verdict"] == "unsafe", show(f)
    x = has_rule(f, "joblib-sibling-escape")
    assert x and name in x["message"], show(f)


def test_sibling_plain_not_safe(tmp_path):
    p = tmp_path / "old.pkl"
    p.write_bytes(ndwrapper_pickle("old.pkl_01.npy", "ZNDArrayWrapper"))
    f = scan(p)
    assert f["verdict"] != "safe", show(f)
    # the side file does not exist: the scan says which file it could not read
    assert f["error"] and f["error"]["name"] == "io-error", show(f)
    assert "old.pkl_01.npy" in f["error"]["message"]


def test_zfile(tmp_path, policy):
    from joblib.numpy_pickle_compat import write_zfile
    for obj, verdict in (({"a": [1, 2]}, "safe"), ([Evil()], "unsafe")):
        p = tmp_path / "z.pkl"
        with open(p, "wb") as fh:
            write_zfile(fh, pickle.dumps(obj, protocol=2))
        f = scan(p, policy)
        assert f["verdict"] == verdict, show(f)
        assert f["container"] == "joblib/zfile"
    # the sibling reference inside a zfile
    with open(p, "wb") as fh:
        write_zfile(fh, ndwrapper_pickle("../x.npy"))
    f = scan(p, policy)
    assert has_rule(f, "joblib-sibling-escape"), show(f)
    # the header claims another length
    data = bytearray(p.read_bytes())
    data[4] = ord("f") if data[4] != ord("f") else ord("e")
    p.write_bytes(bytes(data))
    f = scan(p, policy)
    assert f["verdict"] != "safe", show(f)


def boundaries(data, f):
    """Cut points at every container boundary of an uncompressed joblib file."""
    cuts = {1, 2, len(data) - 1}
    for r in f["arrays"]:
        o = r["file_offset"]
        cuts |= {o - 17, o - 2, o - 1, o, o + 1, o + r["nbytes"] // 2, o + r["nbytes"] - 1,
                 o + r["nbytes"]}
    return sorted(c for c in cuts if 0 < c < len(data))


def test_truncated(tmp_path, policy):
    p = tmp_path / "t.joblib"
    joblib.dump([np.arange(40.0), np.array([1, "x"], dtype=object), np.arange(9)], p)
    data = p.read_bytes()
    f = scan(p, policy)
    assert_safe(f)
    for cut in boundaries(data, f):
        q = tmp_path / ("cut%d" % cut)
        q.write_bytes(data[:cut])
        g = scan(q, policy)
        assert g["verdict"] in ("malformed",), "cut at %d%s" % (cut, show(g))
        assert g["_rc"] == 1
        q.unlink()
    # compressed, cut anywhere: never safe
    for comp in COMPRESSORS:
        p = tmp_path / ("t." + comp)
        joblib.dump([np.arange(400.0), "x" * 100], p, compress=(comp, 3))
        data = p.read_bytes()
        for cut in sorted({1, 2, 5, 12, len(data) // 3, len(data) // 2, len(data) - 5,
                           len(data) - 1}):
            q = tmp_path / "c"
            q.write_bytes(data[:cut])
            g = scan(q, policy)
            assert g["verdict"] != "safe", "%s cut at %d%s" % (comp, cut, show(g))


def test_lying_shape(tmp_path, policy):
    p = tmp_path / "l.joblib"
    joblib.dump(np.arange(5.0), p, protocol=2)
    data = p.read_bytes()
    i = data.index(b"K\x05\x85")  # the shape (5,)
    for dim in (b"K\xff", b"K\x06"):
        q = tmp_path / "lie.joblib"
        q.write_bytes(data[:i] + dim + data[i + 2 :])
        f = scan(q, policy)
        assert f["verdict"] == "malformed", show(f)
        assert f["error"]["name"] == "truncated", show(f)
    # a shape whose byte count overflows 64 bits
    big = b"\x8a\x08" + struct.pack("<q", 2**62)
    q.write_bytes(data[:i] + big + b"K\x10\x86" + data[i + 3 :])
    f = scan(q, policy)
    assert f["verdict"] != "safe", show(f)


def test_gzip_bomb(tmp_path, policy):
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [co.compress(pickle.dumps([1, 2], protocol=2)[:-1])]
    for _ in range(128):
        parts.append(co.compress(chunk))
    parts.append(co.flush())
    p = tmp_path / "bomb.joblib"
    p.write_bytes(b"".join(parts))
    f = scan(p, policy)
    assert f["verdict"] == "limit", show(f)
    assert f["error"]["limit"] in ("inflated-bytes", "inflate-ratio"), show(f)
    assert f["_cpu"] < 2 * SLOW, f["_cpu"]
    assert f["_time"] < 20 * SLOW, f["_time"]
    f = scan(p, policy, limits=["inflated-bytes=8M"])
    assert f["verdict"] == "limit" and f["error"]["limit"] == "inflated-bytes", show(f)
    f = scan(p, policy, limits=["inflate-ratio=10"])
    assert f["verdict"] == "limit" and f["error"]["limit"] == "inflate-ratio", show(f)


def test_trailing_after_compressed(tmp_path, policy):
    p = tmp_path / "tr.joblib"
    joblib.dump([1, 2], p, compress=("zlib", 3))
    p.write_bytes(p.read_bytes() + b"\x80\x02cos\nsystem\n.")
    f = scan(p, policy)
    assert f["verdict"] != "safe", show(f)


def test_wrapper_built_twice(tmp_path, policy):
    """joblib reads again each time a (memoised) wrapper is given a BUILD: two regions."""
    arr = np.arange(4, dtype=np.int32)
    w = joblib.numpy_pickle.NumpyArrayWrapper(np.ndarray, arr.shape, "C", arr.dtype,
                                              allow_mmap=True, numpy_array_alignment_bytes=None)
    b = pickle.dumps(w, 2)
    assert b.endswith(b"b.") and b[45:47] == b"q\x01"  # the wrapper is memo 1
    data = b[:-1] + arr.tobytes() + b"h\x01}b" + (arr + 10).tobytes() + b"\x86."
    p = tmp_path / "twice.joblib"
    p.write_bytes(data)
    loaded = joblib.load(p)
    assert [list(a) for a in loaded] == [[0, 1, 2, 3], [10, 11, 12, 13]]
    f = scan(p, policy)
    assert_safe(f)
    check_regions(p, f, loaded)


def test_wrapper_made_by_call_refused(tmp_path, policy):
    """NumpyArrayWrapper(...) by REDUCE runs __init__ (default alignment 16): not what joblib
    writes, and not modelled, so never safe."""
    arr = np.arange(3, dtype=np.int8)
    b = pickle.dumps(joblib.numpy_pickle.NumpyArrayWrapper(np.ndarray, arr.shape, "C", arr.dtype),
                     2)
    i = b.index(b")\x81")  # EMPTY_TUPLE NEWOBJ -> EMPTY_TUPLE REDUCE
    data = b[:i] + b")R" + b[i + 2 : -1] + b"\x10" + b"\xff" * 16 + arr.tobytes() + b"."
    p = tmp_path / "call.joblib"
    p.write_bytes(data)
    f = scan(p, policy)
    assert f["verdict"] != "safe", show(f)
