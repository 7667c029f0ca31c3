# label: containers
""".npy, .npz and the hardened zip reader through `pickleproof scan --format json`.

Real files come from numpy itself at test time (np.save / np.savez / np.savez_compressed), and
every reported array region is compared with what np.load returns: the bytes at the reported
file offset (or at the offset inside the inflated member) must be the array's bytes. Hostile
archives are built with zipfile and then patched byte by byte: duplicate names, a local header
naming another member, a bad CRC hiding a payload, a pickle/zip polyglot, encryption and method
flags, truncation at every length, lying sizes, 10k entries, nesting past archive-depth.
"""

import io
import json
import os
import pickle
import struct
import subprocess
import time
import warnings
import zipfile
import zlib

import numpy as np
import pytest

PICKLEPROOF = os.environ.get("PICKLEPROOF")
SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
SLOW = 6 if SANITIZED else 1

pytestmark = pytest.mark.skipif(not PICKLEPROOF, reason="PICKLEPROOF is not set")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


EVIL = pickle.dumps(Evil(), protocol=2)
BENIGN = pickle.dumps({"a": [1, 2.5, "x"]}, protocol=2)


def scan(path, *extra):
    p = subprocess.run([PICKLEPROOF, "scan", "--format", "json", *extra, str(path)],
                       capture_output=True, timeout=120 * SLOW)
    assert p.returncode in (0, 1, 2), p.stderr
    doc = json.loads(p.stdout)
    f = doc["files"][0]
    expect_rc = 0 if f["verdict"] == "safe" else (2 if f["verdict"] == "error" else 1)
    assert p.returncode == expect_rc, (p.returncode, f)
    return f


def rules(f):
    return [x["rule"] for x in f["findings"]]


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def zip_bytes(members, compression=zipfile.ZIP_STORED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return b.getvalue()


def npy_bytes(arr, **kw):
    b = io.BytesIO()
    np.save(b, arr, **kw)
    return b.getvalue()


def check_region(data, region, arr):
    """The region's bytes in `data` (the file, or an inflated member) are the array's bytes."""
    order = "F" if (arr.flags.f_contiguous and not arr.flags.c_contiguous) else "C"
    assert region["order"] == order
    assert region["shape"] == list(arr.shape)
    assert region["nbytes"] == arr.nbytes
    if arr.dtype.names is None:
        assert region["dtype"] == arr.dtype.str
    else:
        assert region["dtype"] == "|V%d" % arr.dtype.itemsize
    off = region["file_offset"] if region["file_offset"] is not None else region["offset"]
    got = data[off:off + region["nbytes"]]
    assert got == arr.tobytes(order="A" if order == "F" else "C")


# ---------------------------------------------------------------------------------------------
# .npy from numpy.

DTYPES = [
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.longdouble, np.complex64, np.complex128,
    np.clongdouble, ">f4", ">i8", "<u2", "S5", "U3", "V8", "M8[ns]", "m8[s]", "M8[D]",
    "M8", [("a", "<i4"), ("b", ">f8", (2,))],
    [("x", [("p", "u1"), ("q", "<f4", (3,))]), ("y", "S2")],
    np.dtype({"names": ["a", "b"], "formats": ["u1", "<f8"], "offsets": [0, 8],
              "itemsize": 24}),
    np.dtype([("a", "u1"), ("b", "<i8")], align=True),
]


def sample(dtype, shape, order="C"):
    dt = np.dtype(dtype)
    n = int(np.prod(shape)) if shape else 1
    raw = (np.arange(n * dt.itemsize) * 7 % 251).astype(np.uint8).tobytes()
    a = np.frombuffer(raw, dtype=dt) if dt.itemsize else np.zeros(n, dt)
    return np.asarray(a.reshape(shape), order=order) if shape else a.reshape(())


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(np.dtype(d)))
@pytest.mark.parametrize("shape,order", [((3,), "C"), ((2, 3), "C"), ((2, 3, 4), "F"),
                                          ((), "C"), ((0,), "C"), ((3, 0, 2), "F")])
def test_npy_real(tmp_path, dtype, shape, order):
    arr = sample(dtype, shape, order)
    p = tmp_path / "a.npy"
    np.save(p, arr)
    f = scan(p)
    assert f["verdict"] == "safe", f
    assert f["container"] == "npy"
    (r,) = f["arrays"]
    assert r["where"] == str(p)
    loaded = np.load(p)
    assert loaded.dtype == arr.dtype and loaded.shape == arr.shape
    check_region(p.read_bytes(), r, loaded)
    assert r["offset"] == r["file_offset"]


def test_npy_versions(tmp_path):
    # 2.0: a header over 64 KiB; 3.0: a field name that latin-1 cannot encode
    wide = np.zeros(2, dtype=[("f%d" % i, "<i2") for i in range(4000)])
    uni = np.zeros(3, dtype=[("\u03c0", "<f8"), ("b", "u1")])
    for arr, major in ((wide, 2), (uni, 3), (np.arange(5.0), 1)):
        p = tmp_path / ("v%d.npy" % major)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.save(p, arr)
        data = p.read_bytes()
        assert data[6] == major
        f = scan(p)
        assert f["verdict"] == "safe", f
        check_region(data, f["arrays"][0], np.load(p, max_header_size=1 << 20))


def test_npy_big_shape_small_data(tmp_path):
    # a shape whose product is huge on one axis and zero on another: no bytes, no overflow
    for shape in ((0, 2 ** 40), (2 ** 20, 0, 2 ** 20), (1,) * 32):
        arr = np.zeros(shape, dtype="<f8") if 0 in shape else np.ones(shape, dtype="u1")
        p = tmp_path / "big.npy"
        np.save(p, arr)
        f = scan(p)
        assert f["verdict"] == "safe", f
        (r,) = f["arrays"]
        assert r["shape"] == list(shape) and r["nbytes"] == arr.nbytes
        check_region(p.read_bytes(), r, np.load(p))


def test_npy_old_alignment_and_py2_long(tmp_path):
    # numpy < 1.14 padded headers to 16 bytes; Python 2 wrote 3L. Data follow the header.
    for header, arr in ((b"{'descr': '<i4', 'fortran_order': False, 'shape': (3L, 2L), }",
                         np.arange(6, dtype="<i4").reshape(3, 2)),
                        (b"{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }",
                         np.asfortranarray(np.arange(4.0).reshape(2, 2)))):
        pad = (-(10 + len(header) + 1)) % 16
        h = header + b" " * pad + b"\n"
        data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + arr.tobytes(order="A")
        p = write(tmp_path, "old.npy", data)
        assert (np.load(p) == arr).all()
        f = scan(p)
        assert f["verdict"] == "safe", f
        check_region(data, f["arrays"][0], np.load(p))
        assert f["arrays"][0]["offset"] % 16 == 0


def npy_with_header(header, body=b"", major=1):
    h = header + b"\n"
    lenf = struct.pack("<H", len(h)) if major == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([major, 0]) + lenf + h + body


@pytest.mark.parametrize("header,error", [
    (b"{'descr': '<f8', 'fortran_order': False}", "bad-value"),
    (b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}", "bad-value"),
    (b"{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}", "bad-value"),
    (b"{'descr': '<f8', 'fortran_order': False, 'shape': (2)}", "bad-value"),
    (b"{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}", "unsupported"),
    (b"{'descr': '<f8', 'descr': '|O', 'fortran_order': False, 'shape': (2,)}", "unsupported"),
    (b"{'descr': '<f' '8', 'fortran_order': False, 'shape': (2,)}", "unsupported"),
    (b"{'descr': '\\x3cf8', 'fortran_order': False, 'shape': (2,)}", "unsupported"),
    (b"{'descr': 'float64', 'fortran_order': False, 'shape': (2,)}", "unsupported"),
    (b"{'descr': '<f8', 'fortran_order': False, 'shape': (0x2,)}", "unsupported"),
    (b"__import__('os').system('id')", "unsupported"),
    (b"{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999)}",
     "bad-value"),
    (b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000)}", "truncated"),
    (b"{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4)}",
     "bad-value"),
])
def test_npy_bad_headers(tmp_path, header, error):
    f = scan(write(tmp_path, "bad.npy", npy_with_header(header, b"\0" * 16)))
    assert f["verdict"] == "malformed", f
    assert f["error"]["name"] == error, f
    assert f["arrays"] == []


def test_npy_lying_shape_and_truncation(tmp_path):
    data = npy_bytes(np.arange(10.0))
    for n in range(len(data)):
        f = scan(write(tmp_path, "t.npy", data[:n]))
        assert f["verdict"] != "safe", (n, f)
        assert f["arrays"] == []
    big = npy_with_header(b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000)}",
                          b"\0" * 64)
    f = scan(write(tmp_path, "big.npy", big))
    assert f["verdict"] == "malformed" and f["error"]["name"] == "truncated"
    bad_version = bytearray(data)
    bad_version[6] = 4
    assert scan(write(tmp_path, "v4.npy", bytes(bad_version)))["verdict"] == "malformed"


def test_npy_object_arrays(tmp_path):
    benign = np.array([1, "two", 3.0, None, (4, 5)], dtype=object)
    p = tmp_path / "obj.npy"
    np.save(p, benign, allow_pickle=True)
    f = scan(p)
    assert f["verdict"] == "safe", f
    assert f["arrays"] == []

    p = tmp_path / "evil.npy"
    np.save(p, np.array([Evil(), 1], dtype=object), allow_pickle=True)
    f = scan(p)
    assert f["verdict"] == "unsafe", f
    hit = [x for x in f["findings"] if x.get("global") == "posix.system"]
    assert hit and hit[0]["stream"] == str(p) + "!pickle", f
    # the offset points into the file, after the header
    assert hit[0]["offset"] > 64

    # a structured dtype holding an object field is pickled too
    p = tmp_path / "sobj.npy"
    arr = np.zeros(2, dtype=[("a", "<i4"), ("b", "O")])
    arr["b"][0] = Evil()
    np.save(p, arr, allow_pickle=True)
    f = scan(p)
    assert f["verdict"] == "unsafe" and "posix.system" in f["globals"], f


def test_raw_pickle_named_npy(tmp_path):
    f = scan(write(tmp_path, "model.npy", EVIL))
    assert f["verdict"] == "unsafe" and f["container"] == "pickle"
    assert "posix.system" in f["globals"]


# ---------------------------------------------------------------------------------------------
# .npz from numpy.

def npz_arrays():
    return {
        "a": np.arange(12.0).reshape(3, 4),
        "b": np.asfortranarray(np.arange(24, dtype=">i4").reshape(2, 3, 4)),
        "c": np.array(3.5),
        "d": np.zeros((0, 5), dtype="u1"),
        "e": np.array([b"xy", b"z"]),
        "f": np.zeros(3, dtype=[("p", "<f4"), ("q", "u1", (2,))]),
    }


def test_npz_stored(tmp_path):
    arrs = npz_arrays()
    p = tmp_path / "s.npz"
    np.savez(p, **arrs)
    f = scan(p)
    assert f["verdict"] == "safe", f
    assert f["container"] == "npz"
    data = p.read_bytes()
    got = {r["where"]: r for r in f["arrays"]}
    with np.load(p) as z:
        for k in arrs:
            r = got["%s!%s.npy" % (p, k)]
            assert r["file_offset"] is not None
            check_region(data, r, z[k])


def test_npz_positional_and_compressed(tmp_path):
    arrs = npz_arrays()
    p = tmp_path / "c.npz"
    np.savez_compressed(p, *arrs.values())
    f = scan(p)
    assert f["verdict"] == "safe", f
    assert f["container"] == "npz"
    zf = zipfile.ZipFile(p)
    got = {r["where"]: r for r in f["arrays"]}
    with np.load(p) as z:
        for i in range(len(arrs)):
            name = "arr_%d.npy" % i
            r = got["%s!%s" % (p, name)]
            assert r["file_offset"] is None
            check_region(zf.read(name), r, z["arr_%d" % i])


def test_npz_object_arrays(tmp_path):
    p = tmp_path / "o.npz"
    np.savez(p, good=np.arange(3), bad=np.array([Evil()], dtype=object))
    f = scan(p)
    assert f["verdict"] == "unsafe", f
    hit = [x for x in f["findings"] if x.get("global") == "posix.system"]
    assert hit[0]["stream"] == "%s!bad.npy!pickle" % p
    # in a stored member, the finding's offset is a file offset
    data = p.read_bytes()
    assert data[hit[0]["offset"]:hit[0]["offset"] + 1] in (b"c", b"\x93")

    p = tmp_path / "oc.npz"
    np.savez_compressed(p, bad=np.array([Evil()], dtype=object))
    f = scan(p)
    assert f["verdict"] == "unsafe", f
    assert any(x["stream"] == "%s!bad.npy!pickle" % p for x in f["findings"])

    p = tmp_path / "ob.npz"
    np.savez(p, fine=np.array([1, "a", None], dtype=object))
    f = scan(p)
    assert f["verdict"] == "safe", f


def test_data_descriptor_zip(tmp_path):
    # zipfile writing to an unseekable stream uses data descriptors (flag bit 3)
    class Unseekable(io.RawIOBase):
        def __init__(self):
            self.b = bytearray()

        def writable(self):
            return True

        def write(self, d):
            self.b += d
            return len(d)

    u = Unseekable()
    with zipfile.ZipFile(u, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("a.npy", "w") as w:
            w.write(npy_bytes(np.arange(7)))
        with z.open("b.npy", "w") as w:
            w.write(npy_bytes(np.arange(3.0)))
    data = bytes(u.b)
    assert struct.unpack_from("<H", data, 6)[0] & 8
    p = write(tmp_path, "dd.npz", data)
    with np.load(p) as z:
        assert (z["a"] == np.arange(7)).all()
    f = scan(p)
    assert f["verdict"] == "safe", f
    assert len(f["arrays"]) == 2


# ---------------------------------------------------------------------------------------------
# Hostile archives.

def test_generic_zip_members(tmp_path):
    # a pickle under any name in a plain zip is scanned (content wins); protocol 0 too
    p = write(tmp_path, "m.zip", zip_bytes([("notes.txt", b"cos\nsystem\n(S'id'\ntR."),
                                            ("dir/", b"")]))
    f = scan(p)
    assert f["verdict"] == "unsafe" and f["container"] == "zip", f
    assert any(x["stream"] == "%s!notes.txt" % p for x in f["findings"])
    p = write(tmp_path, "ok.zip", zip_bytes([("x.pkl", BENIGN)], zipfile.ZIP_DEFLATED))
    assert scan(p)["verdict"] == "safe"


def test_duplicate_names(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = zip_bytes([("a.npy", EVIL), ("a.npy", npy_bytes(np.arange(3)))])
    f = scan(write(tmp_path, "dup.npz", data))
    assert f["verdict"] != "safe", f
    assert f["error"]["name"] == "bad-value" and "duplicate" in f["error"]["message"], f
    # miniz compares names without case: also a duplicate
    data = zip_bytes([("arc/data.pkl", EVIL), ("arc/DATA.pkl", BENIGN)])
    f = scan(write(tmp_path, "dupcase.zip", data))
    assert f["verdict"] != "safe" and "duplicate" in f["error"]["message"], f


def test_local_central_name_mismatch(tmp_path):
    data = bytearray(zip_bytes([("data.pkl", EVIL)]))
    i = data.find(b"data.pkl")
    data[i:i + 8] = b"datap.kl"
    f = scan(write(tmp_path, "names.zip", bytes(data)))
    assert f["verdict"] == "malformed", f
    assert "name differs" in f["error"]["message"], f
    assert f["error"]["offset"] == i


def test_bad_crc_still_scanned(tmp_path):
    payload = pickle.dumps(Evil(), protocol=4)
    data = bytearray(zip_bytes([("data.pkl", BENIGN), ("x/model.bin", payload)]))
    i = data.find(b"echo pwned")
    data[i] = ord("E")  # the payload changes, its CRC does not
    p = write(tmp_path, "crc.zip", bytes(data))
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(p).read("x/model.bin")
    f = scan(p)
    assert f["verdict"] == "unsafe", f
    assert "zip-crc-mismatch" in rules(f)
    crc = [x for x in f["findings"] if x["rule"] == "zip-crc-mismatch"][0]
    assert crc["stream"] == "%s!x/model.bin" % p
    assert any(x.get("global") == "posix.system" and x["stream"] == "%s!x/model.bin" % p
               for x in f["findings"]), f


def test_polyglot(tmp_path):
    zipped = bytearray()
    b = io.BytesIO()
    np.savez(b, a=np.arange(3.0))
    zipped = b.getvalue()
    p = write(tmp_path, "poly.npz", EVIL + zipped)
    assert pickle.loads(p.read_bytes()) is not None or True  # pickle.load reads the prefix
    with np.load(io.BytesIO(zipped)) as z:
        assert (z["a"] == np.arange(3.0)).all()
    assert zipfile.ZipFile(p).namelist() == ["a.npy"]
    f = scan(p)
    assert f["verdict"] == "unsafe", f
    assert "polyglot" in rules(f)
    assert "posix.system" in f["globals"]
    # both faces scanned: the archive's array region is reported at its file offset
    (r,) = f["arrays"]
    assert r["file_offset"] > len(EVIL)
    check_region(p.read_bytes(), r, np.arange(3.0))
    # a benign pickle in front is still a polyglot (and rejected)
    f = scan(write(tmp_path, "poly2.zip", BENIGN + zipped))
    assert f["verdict"] == "unsafe" and "polyglot" in rules(f), f
    # the zip offsets may also be absolute (zip -A): same answer
    b = io.BytesIO()
    b.write(EVIL)
    with zipfile.ZipFile(b, "a") as z:
        z.writestr("a.npy", npy_bytes(np.arange(3.0)))
    f = scan(write(tmp_path, "poly3.zip", b.getvalue()))
    assert f["verdict"] == "unsafe" and "polyglot" in rules(f), f
    assert "posix.system" in f["globals"]


def patch_flags(data, value, local=True, central=True, field="flags"):
    data = bytearray(data)
    loff, coff = (6, 8) if field == "flags" else (8, 10)
    if local:
        i = 0
        while (i := data.find(b"PK\x03\x04", i)) >= 0:
            struct.pack_into("<H", data, i + loff, value)
            i += 4
    if central:
        i = 0
        while (i := data.find(b"PK\x01\x02", i)) >= 0:
            struct.pack_into("<H", data, i + coff, value)
            i += 4
    return bytes(data)


@pytest.mark.parametrize("flag", [0x1, 0x20, 0x40])
@pytest.mark.parametrize("where", ["both", "local", "central"])
def test_flag_bits(tmp_path, flag, where):
    data = patch_flags(zip_bytes([("data.pkl", EVIL)]), flag, where != "central",
                       where != "local")
    f = scan(write(tmp_path, "flag.zip", data))
    assert f["verdict"] == "malformed", f
    assert f["error"]["name"] in ("unsupported", "bad-value"), f


@pytest.mark.parametrize("method", [1, 9, 12, 14, 93, 99])
def test_unknown_method(tmp_path, method):
    data = patch_flags(zip_bytes([("data.pkl", EVIL)]), method, field="method")
    f = scan(write(tmp_path, "m.zip", data))
    assert f["verdict"] == "malformed" and f["error"]["name"] == "unsupported", f
    assert str(method) in f["error"]["message"]


def test_truncated_everywhere(tmp_path):
    b = io.BytesIO()
    np.savez(b, a=np.arange(4.0), o=np.array([1, None], dtype=object))
    data = b.getvalue()
    t0 = time.time()
    for n in range(0, len(data)):
        f = scan(write(tmp_path, "t.npz", data[:n]))
        assert f["verdict"] != "safe", (n, f)
    assert scan(write(tmp_path, "t.npz", data))["verdict"] == "safe"
    # and cut at the front (the archive then looks like a polyglot or junk)
    for n in (1, 30, 100, len(data) - 22):
        f = scan(write(tmp_path, "h.npz", data[n:]))
        assert f["verdict"] != "safe", (n, f)
    assert time.time() - t0 < 60 * SLOW


def test_lying_sizes(tmp_path):
    good = zip_bytes([("a.pkl", BENIGN), ("b.pkl", BENIGN)])
    cd = good.find(b"PK\x01\x02")
    cases = []
    for delta in (1, 1000, 0x7FFFFFFF):
        d = bytearray(good)  # central compressed size of the first member
        struct.pack_into("<I", d, cd + 20, len(BENIGN) + delta)
        cases.append(bytes(d))
    d = bytearray(good)  # local header offset past the end
    struct.pack_into("<I", d, cd + 42, 0x10000000)
    cases.append(bytes(d))
    d = bytearray(good)  # end record: central directory size too large
    e = good.rfind(b"PK\x05\x06")
    struct.pack_into("<I", d, e + 12, 0xFFFFF)
    cases.append(bytes(d))
    d = bytearray(good)  # end record: more entries than present
    struct.pack_into("<HH", d, e + 8, 3, 3)
    cases.append(bytes(d))
    d = bytearray(good)  # end record: fewer entries than present
    struct.pack_into("<HH", d, e + 8, 1, 1)
    cases.append(bytes(d))
    d = bytearray(good)  # comment length that does not reach the end
    struct.pack_into("<H", d, e + 20, 5)
    cases.append(bytes(d))
    # a deflated member whose uncompressed size lies
    dz = bytearray(zip_bytes([("a.pkl", BENIGN * 20)], zipfile.ZIP_DEFLATED))
    cdz = dz.find(b"PK\x01\x02")
    struct.pack_into("<I", dz, cdz + 24, 10)
    struct.pack_into("<I", dz, 22, 10)
    cases.append(bytes(dz))
    for i, data in enumerate(cases):
        f = scan(write(tmp_path, "lie%d.zip" % i, data))
        assert f["verdict"] == "malformed", (i, f)
        assert f["error"]["name"] in ("bad-value", "truncated"), (i, f)


def test_overlapping_members(tmp_path):
    # two central entries pointing at one local header: the second name cannot match it, and
    # a member whose size reaches into the next one overlaps
    good = bytearray(zip_bytes([("a.pkl", BENIGN), ("b.pkl", BENIGN)]))
    second = good.find(b"PK\x03\x04", 4)
    cd = good.find(b"PK\x01\x02")
    struct.pack_into("<I", good, 18, second)  # local csize too (else the local check fires)
    struct.pack_into("<I", good, 22, second)
    struct.pack_into("<I", good, cd + 20, second)
    struct.pack_into("<I", good, cd + 24, second)
    f = scan(write(tmp_path, "ov.zip", bytes(good)))
    assert f["verdict"] == "malformed" and "overlaps" in f["error"]["message"], f


def test_10k_entries(tmp_path):
    members = [("m%05d.npy" % i, npy_bytes(np.arange(2, dtype="u1"))) for i in range(10000)]
    p = write(tmp_path, "many.npz", zip_bytes(members))
    t0 = time.time()
    f = scan(p)
    assert time.time() - t0 < 20 * SLOW
    assert f["verdict"] == "safe", f["error"]
    assert len(f["arrays"]) == 10000
    f = scan(p, "--limit", "zip-entries=1000")
    assert f["verdict"] == "limit" and f["error"]["limit"] == "zip-entries", f


def test_nested_archives(tmp_path):
    inner = zip_bytes([("x.pkl", EVIL)])
    for _ in range(2):
        inner = zip_bytes([("inner.zip", inner)])
    f = scan(write(tmp_path, "n3.zip", inner))
    assert f["verdict"] == "unsafe", f
    assert any(x["stream"].endswith("n3.zip!inner.zip!inner.zip!x.pkl") for x in f["findings"])
    for _ in range(4):
        inner = zip_bytes([("inner.zip", inner)])
    f = scan(write(tmp_path, "n7.zip", inner))
    assert f["verdict"] == "limit" and f["error"]["limit"] == "archive-depth", f


def test_inflate_limits(tmp_path):
    p = tmp_path / "z.npz"
    np.savez_compressed(p, a=np.zeros(200000))
    f = scan(p, "--limit", "inflate-ratio=10")
    assert f["verdict"] == "limit" and f["error"]["limit"] == "inflate-ratio", f
    f = scan(p, "--limit", "inflated-bytes=100000")
    assert f["verdict"] == "limit" and f["error"]["limit"] == "inflated-bytes", f
    assert scan(p)["verdict"] == "safe"


def test_empty_and_comment(tmp_path):
    f = scan(write(tmp_path, "empty.zip", zip_bytes([])))
    assert f["verdict"] == "safe" and f["container"] == "zip", f
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("a.npy", npy_bytes(np.arange(3)))
        z.comment = b"PK\x05\x06 a comment with a fake signature"
    f = scan(write(tmp_path, "comment.npz", b.getvalue()))
    assert f["verdict"] == "malformed", f  # the last signature wins, as in zipfile: it lies


def test_pickle_carrying_zip_bytes(tmp_path):
    # a pickle holding a zip's bytes near its end is a pickle (every loader reads it as one)
    blob = zip_bytes([("x.pkl", EVIL)])
    data = pickle.dumps({"weights": [1.5, 2.5], "archive": blob}, protocol=2)
    assert data.rfind(b"PK\x05\x06") > len(data) - 100
    f = scan(write(tmp_path, "carry.pkl", data))
    assert f["verdict"] == "safe" and f["container"] == "pickle", f
    # a pickle followed by a broken archive: the pickle is judged, the tail is not a pickle
    bad = bytearray(blob)
    bad[-2] = 5  # comment length that does not reach the end
    f = scan(write(tmp_path, "tail.pkl", EVIL + bytes(bad)))
    assert f["verdict"] == "unsafe" and "posix.system" in f["globals"], f
    assert "polyglot" not in rules(f)
