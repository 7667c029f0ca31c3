# label: containers
"""PyTorch's legacy tar format (torch <= 0.3), written here as that torch wrote it and checked with
the real torch.load first: storages, views and tensors tables, then the object pickle whose
persistent ids name their keys."""
import io
import json
import os
import pickle
import struct
import subprocess
import tarfile

import pytest

torch = pytest.importorskip("torch")
CLI = os.environ.get("PICKLEPROOF")
pytestmark = pytest.mark.skipif(not CLI, reason="PICKLEPROOF not set (run under ctest)")


class Key:
    def __init__(self, k):
        self.k = k


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class P(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.k if isinstance(obj, Key) else None


def dumps(o):
    return pickle.dumps(o, protocol=2)


def legacy_tar(obj, storages, views=(), tensors=()):
    st = io.BytesIO()
    st.write(dumps(len(storages)))
    for key, loc, stype, numel, data in storages:
        st.write(dumps((key, loc, stype)))
        st.write(struct.pack("<q", numel) + data)
    st.write(dumps(list(views)))
    te = io.BytesIO()
    te.write(dumps(len(tensors)))
    for key, sid, ttype, sizes, strides, off in tensors:
        te.write(dumps((key, sid, ttype)))
        te.write(struct.pack("<i", len(sizes)) + b"\0\0\0\0")
        te.write(struct.pack("<%dq" % len(sizes), *sizes) + struct.pack("<%dq" % len(strides), *strides))
        te.write(struct.pack("<q", off))
    pk = io.BytesIO()
    P(pk, protocol=2).dump(obj)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in (("sys_info", dumps({"protocol_version": 1001})),
                           ("pickle", pk.getvalue()), ("tensors", te.getvalue()),
                           ("storages", st.getvalue())):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
    return out.getvalue()


DATA = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
STORAGES = [(1, "cpu", torch.FloatStorage, 6, DATA)]
TENSORS = [(10, 1, torch.FloatTensor, [2, 3], [3, 1], 0), (11, 1, torch.FloatTensor, [2], [1], 4)]


def scan(path):
    r = subprocess.run([CLI, "scan", "--policy", "torch", "--format", "json", str(path)],
                       capture_output=True, timeout=120)
    return r.returncode, json.loads(r.stdout)["files"][0]


def write(tmp_path, **kw):
    args = dict(obj={"w": Key(10), "b": Key(11)}, storages=STORAGES, views=(), tensors=TENSORS)
    args.update(kw)
    p = tmp_path / "m.pt"
    p.write_bytes(legacy_tar(**args))
    return p


def test_legacy_tar_is_read_and_safe(tmp_path):
    p = write(tmp_path)
    got = torch.load(p)
    assert got["w"].tolist() == [[1, 2, 3], [4, 5, 6]] and got["b"].tolist() == [5, 6]
    rc, f = scan(p)
    assert rc == 0 and f["verdict"] == "safe" and f["container"] == "pytorch/tar", f
    (a,) = f["arrays"]
    assert a["nbytes"] == len(DATA) and a["dtype"] == "<f4" and a["shape"] == [6]
    raw = p.read_bytes()
    assert raw[a["file_offset"]:a["file_offset"] + a["nbytes"]] == DATA


def test_views(tmp_path):
    p = write(tmp_path, views=[(2, 1, 2, 3)],
              tensors=[(10, 2, torch.FloatTensor, [3], [1], 0)], obj=Key(10))
    assert torch.load(p).tolist() == [3, 4, 5]
    rc, f = scan(p)
    assert rc == 0 and f["verdict"] == "safe", f
    p = write(tmp_path, views=[(2, 1, 4, 3)], tensors=[], obj=None)  # past the storage
    rc, f = scan(p)
    assert rc == 1 and f["verdict"] == "malformed"


def test_payload_in_the_object(tmp_path):
    rc, f = scan(write(tmp_path, obj={"w": Key(10), "x": Evil()}))
    assert rc == 1 and f["verdict"] == "unsafe"
    assert any(x["global"] == "posix.system" for x in f["findings"])


def test_payload_in_a_table_pickle(tmp_path):
    rc, f = scan(write(tmp_path, storages=[((1, Evil()), "cpu", torch.FloatStorage, 6, DATA)]))
    assert rc == 1 and f["verdict"] != "safe"
    assert any(x["global"] == "posix.system" for x in f["findings"])


def test_unknown_persistent_id(tmp_path):
    rc, f = scan(write(tmp_path, obj={"w": Key(99)}))
    assert rc == 1 and any(x["rule"] == "persistent-id" for x in f["findings"])


def test_tensor_outside_its_storage(tmp_path):
    rc, f = scan(write(tmp_path, tensors=[(10, 1, torch.FloatTensor, [2, 3], [3, 1], 1)]))
    assert rc == 1 and f["verdict"] == "malformed"
    rc, f = scan(write(tmp_path, tensors=[(10, 7, torch.FloatTensor, [1], [1], 0)]))
    assert rc == 1 and f["verdict"] == "malformed"


def test_storage_larger_than_its_bytes(tmp_path):
    rc, f = scan(write(tmp_path, storages=[(1, "cpu", torch.FloatStorage, 60, DATA)]))
    assert rc == 1 and f["verdict"] == "malformed"
