"""Resource bombs, shared by tests/python/test_bombs.py and bench/bench_bombs.py.

Each bomb is (name, build(dir) -> path, extra CLI options, expected verdict, and the limit name
(verdict limit) or error name (verdict malformed) its scan must give). The options are empty where
the default limits stop the bomb; where the defaults rightly accept the file (10,000 zip entries
are a real npz, 64 MiB is a small model), the option names the budget a stricter deployment sets.
A length of 2^63 is malformed, not a limit: the bytes it claims are not in the file, and that is
proven before any budget or allocation is looked at (a length the file does hold trips
payload-bytes). Files are generated on demand, in memory-friendly chunks."""
import io
import os
import struct
import zipfile
import zlib

N = 10**6


def u64(v):
    return struct.pack("<Q", v)


def laughs(levels):
    """x0 = None; x(i+1) = (x(i), x(i)), memoized: 3 bytes per level, 2^levels expanded."""
    return b"N" + b"2\x86\x94" * levels


def _write(d, name, data):
    p = os.path.join(d, name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def _zip(members, compress=zipfile.ZIP_STORED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compress) as z:
        for name, data in members:
            z.writestr(name, data)
    return b.getvalue()


def _zeros_deflate(nbytes, wbits):
    co = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = bytes(1 << 20)
    parts = [co.compress(chunk) for _ in range(nbytes >> 20)]
    parts.append(co.flush())
    return b"".join(parts)


def zip_bomb(d):
    """An npz member of 64 MiB of zeros, deflated (~62 KiB): ratio ~1030 against 1000."""
    raw = _zeros_deflate(64 << 20, -15)
    size = 64 << 20
    crc = 0
    chunk = bytes(1 << 20)
    for _ in range(64):
        crc = zlib.crc32(chunk, crc)
    name = b"a.npy"
    lh = (b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 8, 0, 0, crc, len(raw), size, len(name), 0)
          + name)
    cd = (b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 20, 20, 0, 8, 0, 0, crc, len(raw), size,
                                      len(name), 0, 0, 0, 0, 0, 0) + name)
    eocd = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(cd), len(lh) + len(raw), 0)
    return _write(d, "zipbomb.npz", lh + raw + cd + eocd)


def gzip_bomb(d):
    """A joblib file gzip-compressed: a pickle prefix, then 128 MiB of zeros (~125 KiB)."""
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [co.compress(b"\x80\x02]q\x00(K\x01K\x02e")]
    chunk = bytes(1 << 20)
    parts += [co.compress(chunk) for _ in range(128)]
    parts.append(co.flush())
    return _write(d, "gzbomb.joblib", b"".join(parts))


def zip_entries(d):
    """10,000 small members: a real npz, refused where zip-entries is 1000."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for i in range(10000):
            z.writestr("m%05d.pkl" % i, b"N.")
    return _write(d, "entries.zip", b.getvalue())


def zip_nested(d):
    """An archive in an archive, 12 deep (archive-depth is 4)."""
    inner = _zip([("x.pkl", b"N.")])
    for _ in range(12):
        inner = _zip([("inner.zip", inner)])
    return _write(d, "nested.zip", inner)


def npz_object_nested(d):
    """npz in npz in npz: object-array pickles hold... archives in archives (archive-depth)."""
    inner = _zip([("a.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, "
                  b"'shape': (1,), }" + b" " * 51 + b"\n\x80\x02N.")])
    for _ in range(8):
        inner = _zip([("b.npz", inner)], zipfile.ZIP_DEFLATED)
    return _write(d, "nested.npz", inner)


BOMBS = [
    ("laughs-dict-key", lambda d: _write(d, "k.pkl", b"\x80\x04}" + laughs(60) + b"Ns."), [],
     "limit", "hash-work"),
    ("laughs-set", lambda d: _write(d, "s.pkl", b"\x80\x04\x8f(" + laughs(60) + b"\x90."), [],
     "limit", "hash-work"),
    ("laughs-frozenset", lambda d: _write(d, "f.pkl", b"\x80\x04(" + laughs(60) + b"\x91."), [],
     "limit", "hash-work"),
    # one 2^21-element key, used 100,000 times: each use hashes it again
    ("laughs-key-reused", lambda d: _write(d, "k5.pkl", b"\x80\x04" + laughs(20) + b"0}(" +
                                           b"h\x13N" * 100000 + b"u."), [], "limit", "hash-work"),
    ("marks-1e6", lambda d: _write(d, "m.pkl", b"(" * N + b"N."), [], "limit", "marks"),
    ("mark-lists-1e6", lambda d: _write(d, "ml.pkl", b"(" * N + b"l" * N + b"."), [], "limit",
     "marks"),
    ("nested-lists-1e6", lambda d: _write(d, "nl.pkl", b"\x80\x02" + b"]" * N + b"a" * (N - 1) + b"."),
     [], "limit", "nesting-depth"),
    ("binbytes8-2^63", lambda d: _write(d, "b8.pkl", b"\x80\x04\x8e" + u64(2**63) + b"x."), [],
     "malformed", "truncated"),
    ("binbytes8-8M", lambda d: _write(d, "b8m.pkl", b"\x80\x04\x8e" + u64(8 << 20) + bytes(8 << 20) + b"."),
     ["--limit", "payload-bytes=1M"], "limit", "payload-bytes"),
    ("zip-bomb", zip_bomb, [], "limit", "inflate-ratio"),
    ("gzip-bomb", gzip_bomb, ["--limit", "inflated-bytes=64M"], "limit", "inflated-bytes"),
    ("zip-10k-entries", zip_entries, ["--limit", "zip-entries=1000"], "limit", "zip-entries"),
    ("zip-in-zip-12", zip_nested, [], "limit", "archive-depth"),
    ("npz-in-npz-8", npz_object_nested, [], "limit", "archive-depth"),
]
