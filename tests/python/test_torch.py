# label: containers
"""PyTorch checkpoints (zip, legacy stacked, legacy tar) through `pickleproof scan --format json`.

Real files come from torch.save itself at test time (Debian's torch 1.13): tensors of every dtype,
views with offsets and strides, shared storages, state_dicts, whole modules, in the zip format and
the legacy `_use_new_zipfile_serialization=False` format. Every reported array region is compared
with what torch.load returns: the bytes at the reported file offset must be the storage's bytes.

Hostile files are torch.save output with members replaced (zipfile rewrites the archive) or
pickles written by a Pickler whose persistent_id produces the storage ids we want, so each case
states exactly what changed. Where the loader's behaviour decides the answer (a case-insensitive
member lookup, a pickle inside a storage record), the test asks torch.load first.
"""

import collections
import io
import json
import os
import pickle
import pickletools
import struct
import subprocess
import tarfile
import warnings
import zipfile

import pytest

torch = pytest.importorskip("torch")

PICKLEPROOF = os.environ.get("PICKLEPROOF")
SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
SLOW = 6 if SANITIZED else 1

pytestmark = pytest.mark.skipif(not PICKLEPROOF, reason="PICKLEPROOF is not set")


# ---------------------------------------------------------------------------------------------
# Running the CLI.


def scan(path, *policies):
    """(exit code, file object) of `scan --format json --policy ... FILE`."""
    args = [PICKLEPROOF, "scan", "--format", "json"]
    for p in policies or ("torch",):
        args += ["--policy", str(p)]
    p = subprocess.run(args + [str(path)], capture_output=True, timeout=60 * SLOW)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode in (0, 1, 2), "exit %d (crash?)\n%s" % (p.returncode, err[-3000:])
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-3000:]
    doc = json.loads(p.stdout)
    assert len(doc["files"]) == 1
    fo = doc["files"][0]
    expect = {"safe": 0, "unsafe": 1, "malformed": 1, "limit": 1, "error": 2}[fo["verdict"]]
    assert p.returncode == expect, (p.returncode, fo)
    return p.returncode, fo


def show(fo):
    return json.dumps(fo, indent=1)[:6000]


def rules(fo):
    return [f["rule"] for f in fo["findings"]]


def finding(fo, rule, glob=None, stream=None):
    for f in fo["findings"]:
        if f["rule"] == rule and (glob is None or f["global"] == glob) and (
                stream is None or f["stream"] == stream):
            return f
    raise AssertionError("no %s finding (global %s, stream %s):\n%s" % (rule, glob, stream,
                                                                         show(fo)))


def assert_safe(fo):
    assert fo["verdict"] == "safe" and not fo["findings"] and fo["error"] is None, show(fo)


# ---------------------------------------------------------------------------------------------
# Real files and what the real loader returns.

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
          torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128]
NUMPY_DTYPE = {torch.float32: "<f4", torch.float64: "<f8", torch.float16: "<f2",
               torch.bfloat16: "bfloat16", torch.int64: "<i8", torch.int32: "<i4",
               torch.int16: "<i2", torch.int8: "|i1", torch.uint8: "|u1", torch.bool: "|b1",
               torch.complex64: "<c8", torch.complex128: "<c16"}


def tensors():
    out = {}
    for dt in DTYPES:
        base = torch.arange(24).reshape(4, 6)
        t = (base % 2 == 0) if dt == torch.bool else base.to(dt)
        name = str(dt).split(".")[1]
        out[name] = t
        out[name + "_view"] = t[1:, 2:5]           # offset and strides
        out[name + "_T"] = t.t()                   # transposed: strides (1, 6)
        out[name + "_scalar"] = t[2, 3]            # 0-d view with an offset
    shared = torch.arange(10, dtype=torch.float32)
    out["shared_a"], out["shared_b"] = shared, shared[3:7]   # one storage, two tensors
    out["empty"] = torch.zeros(0, 3)
    out["step"] = torch.arange(20.0)[::3]
    return out


def save(obj, path, legacy=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if legacy:
            torch.save(obj, str(path), _use_new_zipfile_serialization=False)
        else:
            torch.save(obj, str(path))
    return path


def storages(obj):
    """The distinct storages of every tensor in obj, as torch.load returns them: bytes, dtype."""
    seen = {}

    def walk(o):
        if isinstance(o, torch.nn.Module):
            walk(o.state_dict())
        elif isinstance(o, torch.Tensor):
            st = o.storage()
            seen[st.data_ptr()] = (bytes(st.untyped().tolist()), NUMPY_DTYPE[o.dtype],
                                   st.size())
        elif isinstance(o, dict):
            for v in o.values():
                walk(v)
        elif isinstance(o, (list, tuple)):
            for v in o:
                walk(v)
    walk(obj)
    return sorted(seen.values())


def check_regions(path, fo):
    data = open(path, "rb").read()
    loaded = torch.load(str(path))
    got = []
    for r in fo["arrays"]:
        assert r["file_offset"] is not None and r["order"] == "C", r
        fo_ = r["file_offset"]
        assert 0 <= fo_ and fo_ + r["nbytes"] <= len(data), r
        got.append((data[fo_:fo_ + r["nbytes"]], r["dtype"], r["shape"][0]))
    assert sorted(got) == storages(loaded), show(fo)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_tensors_of_every_dtype(tmp_path, legacy):
    path = save(tensors(), tmp_path / "t.pt", legacy)
    rc, fo = scan(path)
    assert_safe(fo)
    assert fo["container"] == ("pytorch/legacy" if legacy else "pytorch/zip")
    check_regions(path, fo)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_single_tensor_and_list(tmp_path, legacy):
    for i, obj in enumerate([torch.ones(3), [torch.ones(2), torch.zeros(2, dtype=torch.int64)],
                             (torch.tensor(7),), {"nested": {"x": torch.eye(3)}}]):
        path = save(obj, tmp_path / ("o%d.pt" % i), legacy)
        rc, fo = scan(path)
        assert_safe(fo)
        check_regions(path, fo)


def models():
    torch.manual_seed(0)
    return {
        "linear": torch.nn.Linear(4, 3),
        "conv": torch.nn.Conv2d(2, 4, 3),
        "seq": torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)),
        "bn": torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)),
    }


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("name", sorted(models()))
def test_state_dicts(tmp_path, legacy, name):
    path = save(models()[name].state_dict(), tmp_path / (name + ".pt"), legacy)
    rc, fo = scan(path)
    assert_safe(fo)
    check_regions(path, fo)
    assert "collections.OrderedDict" in fo["globals"]


def test_parameters(tmp_path):
    path = save({"w": torch.nn.Parameter(torch.ones(2, 2))}, tmp_path / "p.pt")
    rc, fo = scan(path)
    assert_safe(fo)
    assert "torch._utils._rebuild_parameter" in fo["globals"]


MODULE_POLICY = """policy mods
include torch
construct torch.nn.modules.container.Sequential
construct torch.nn.modules.linear.Linear
construct torch.nn.modules.activation.ReLU
"""


def test_whole_module_needs_its_classes(tmp_path):
    model = models()["seq"]
    path = save(model, tmp_path / "m.pt")
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe"
    for cls in ("torch.nn.modules.container.Sequential", "torch.nn.modules.linear.Linear",
                "torch.nn.modules.activation.ReLU"):
        finding(fo, "global-not-allowed", glob=cls, stream="%s!m/data.pkl" % path)
    pol = tmp_path / "mods.policy"
    pol.write_text(MODULE_POLICY)
    rc, fo = scan(path, "torch", pol)
    assert_safe(fo)
    check_regions(path, fo)


def test_whole_module_legacy_is_refused(tmp_path):
    # the legacy writer pickles module classes as ('module', cls, file, source) persistent ids:
    # persistent_load hands the class back, outside any policy
    path = save(models()["seq"], tmp_path / "m.pt", legacy=True)
    pol = tmp_path / "mods.policy"
    pol.write_text(MODULE_POLICY)
    rc, fo = scan(path, "torch", pol)
    assert fo["verdict"] == "unsafe"
    finding(fo, "torch-storage-invalid")
    finding(fo, "persistent-id")


# ---------------------------------------------------------------------------------------------
# Hostile zips: torch.save output with members replaced.


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


EVIL = pickle.dumps(Evil(), protocol=2)


def members(path):
    with zipfile.ZipFile(str(path)) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def write_zip(path, items, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(str(path), "w", method) as z:
        for name, data in items:
            z.writestr(name, data)
    return path


def sample(tmp_path, legacy=False):
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    return save({"t": t, "v": t[:, 1]}, tmp_path / "s.pt", legacy)


def replace(items, name, data):
    return [(n, data if n == name else d) for n, d in items]


def test_payload_in_data_pkl(tmp_path):
    items = replace(members(sample(tmp_path)), "s/data.pkl", EVIL)
    path = write_zip(tmp_path / "evil.pt", items)
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe" and fo["container"] == "pytorch/zip"
    finding(fo, "global-not-allowed", glob="posix.system", stream="%s!s/data.pkl" % path)


def test_payload_after_stop_in_data_pkl(tmp_path):
    # torch.load reads one pickle from data.pkl; what follows is scanned and reported anyway
    items = members(sample(tmp_path))
    body = dict(items)["s/data.pkl"] + EVIL
    path = write_zip(tmp_path / "evil.pt", replace(items, "s/data.pkl", body))
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe"
    finding(fo, "global-not-allowed", glob="posix.system", stream="%s!s/data.pkl#1" % path)


def test_payload_under_unusual_prefix(tmp_path):
    items = [("..weird prefix/" + n.split("/", 1)[1], d) for n, d in members(sample(tmp_path))]
    items = replace(items, "..weird prefix/data.pkl", EVIL)
    path = write_zip(tmp_path / "evil.pt", items)
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe"
    finding(fo, "global-not-allowed", glob="posix.system",
            stream="%s!..weird prefix/data.pkl" % path)


def test_data_pkl_lookup_ignores_case(tmp_path):
    # torch's reader (miniz) finds "s/DATA.PKL" for "s/data.pkl": ask torch, then us
    items = [(n.replace("data.pkl", "DATA.PKL"), d) for n, d in members(sample(tmp_path))]
    path = write_zip(tmp_path / "case.pt", items)
    assert set(torch.load(str(path))) == {"t", "v"}
    rc, fo = scan(path)
    assert_safe(fo)
    evil = write_zip(tmp_path / "evil.pt", replace(items, "s/DATA.PKL", EVIL))
    rc, fo = scan(evil)
    finding(fo, "global-not-allowed", glob="posix.system", stream="%s!s/DATA.PKL" % evil)


def test_case_twins_are_ambiguous(tmp_path):
    # miniz's lookup ignores case: "s/data.pkl" and "s/Data.pkl" are one name to torch, and
    # which copy it reads depends on its sort. Refused (the zip reader already refuses names
    # equal but for case; torch.c refuses them too when it gets such an archive).
    items = members(sample(tmp_path)) + [("s/Data.pkl", EVIL)]
    path = write_zip(tmp_path / "twins.pt", items)
    rc, fo = scan(path)
    assert fo["verdict"] in ("unsafe", "malformed"), show(fo)
    assert fo["error"]["name"] == "bad-value", show(fo)
    assert "case" in fo["error"]["message"] or "duplicate" in fo["error"]["message"], show(fo)


def test_payload_in_extra_member(tmp_path):
    # a member torch.load never reads, scanned anyway (another tool may): A1
    items = members(sample(tmp_path)) + [("s/extra.txt", EVIL)]
    path = write_zip(tmp_path / "evil.pt", items)
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe"
    finding(fo, "torch-extra-pickle")
    finding(fo, "global-not-allowed", glob="posix.system", stream="%s!s/extra.txt" % path)


def test_pickle_inside_a_storage_record_is_data(tmp_path):
    # torch.load reads data/<key> as raw bytes: a pickle in it never runs. Ask torch, then us.
    marker = tmp_path / "MARK"
    payload = b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len("touch %s" % marker)) + \
        ("touch %s" % marker).encode() + b"\x85R."
    items = replace(members(sample(tmp_path)), "s/data/0", payload)
    path = write_zip(tmp_path / "data0.pt", items)
    torch.load(str(path))
    assert not marker.exists()
    rc, fo = scan(path)
    assert_safe(fo)
    assert len(fo["arrays"]) == 1 and fo["arrays"][0]["nbytes"] == 24


def test_payload_in_legacy_object(tmp_path):
    path = save(Evil(), tmp_path / "evil.pt", legacy=True)
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe" and fo["container"] == "pytorch/legacy"
    finding(fo, "global-not-allowed", glob="posix.system", stream="%s(object)" % path)


def legacy_parts(path):
    """The five pickles of a legacy file and the raw storage bytes after them."""
    data = open(str(path), "rb").read()
    parts, pos = [], 0
    for _ in range(5):
        for op, arg, at in pickletools.genops(data[pos:]):
            if op.name == "STOP":
                break
        parts.append(data[pos:pos + at + 1])
        pos += at + 1
    return parts, data[pos:]


@pytest.mark.parametrize("which,stream", [(2, "sys_info"), (4, "storage_keys")])
def test_payload_in_other_legacy_pickles(tmp_path, which, stream):
    parts, raw = legacy_parts(sample(tmp_path, legacy=True))
    parts[which] = EVIL if which == 2 else (
        b"\x80\x02" + b"cposix\nsystem\n(X\x04\x00\x00\x00echotRh\x00" + b"0]X\x01\x00\x00\x000a.")
    path = tmp_path / "evil.pt"
    path.write_bytes(b"".join(parts) + raw)
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe", show(fo)
    finding(fo, "global-not-allowed", glob="posix.system", stream="%s(%s)" % (path, stream))


def test_magic_made_by_reduce(tmp_path):
    # A4: the magic number computed by a call; not the literal, so scanned as stacked pickles
    class Magic:
        def __reduce__(self):
            return (eval, ("0x1950A86A20F9469CFC6C",))
    data = b"".join(pickle.dumps(o, 2) for o in (Magic(), 1001, {}, [], Evil(), None))
    path = tmp_path / "magic.pt"
    path.write_bytes(data)
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe"
    finding(fo, "global-not-allowed", glob="builtins.eval")
    finding(fo, "global-not-allowed", glob="posix.system")


@pytest.mark.parametrize("name", ["model.pt", "model.bin", "model.pth"])
def test_raw_pickle_named_like_a_checkpoint(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(Evil(), protocol=4))
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe" and fo["container"] == "pickle"
    finding(fo, "global-not-allowed", glob="posix.system")


def test_torchscript_archive(tmp_path):
    path = tmp_path / "ts.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe"
    finding(fo, "torchscript")


# ---------------------------------------------------------------------------------------------
# Storage ids and tensor views that lie.


class PID:
    def __init__(self, pid):
        self.pid = pid


class Tensor:
    def __init__(self, *args, fn=None):
        self.args = args
        self.fn = fn or torch._utils._rebuild_tensor_v2

    def __reduce__(self):
        return (self.fn, self.args)


class Writer(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, PID) else None


def dumps(obj):
    f = io.BytesIO()
    Writer(f, protocol=2).dump(obj)
    return f.getvalue()


def storage(key="0", numel=6, cls=None, legacy=False):
    pid = ("storage", cls or torch.FloatStorage, key, "cpu", numel)
    return PID(pid + (None,) if legacy else pid)


def tensor(st, offset=0, size=(2, 3), stride=(3, 1), hooks=None):
    return Tensor(st, offset, size, stride, False,
                  collections.OrderedDict() if hooks is None else hooks)


def with_data_pkl(tmp_path, obj, name="x.pt"):
    items = replace(members(sample(tmp_path)), "s/data.pkl", dumps(obj))
    return write_zip(tmp_path / name, items)


def test_crafted_tensor_is_safe(tmp_path):
    # the crafting itself is right: a faithful tensor passes, and torch loads it
    path = with_data_pkl(tmp_path, {"t": tensor(storage())})
    assert torch.load(str(path))["t"].shape == (2, 3)
    rc, fo = scan(path)
    assert_safe(fo)


FS = "<torch.FloatStorage>"  # replaced by the class when the id is pickled


@pytest.mark.parametrize("pid", [
    ("storage", "FloatStorage", "0", "cpu", 6),            # class as a str
    ("storage", None, "0", "cpu", 6),
    ("storage", "0", "cpu", 6),                             # 4-tuple
    ("storage", FS, "0", "cpu", 6, None),                   # 6-tuple in a zip
    ("storagx", FS, "0", "cpu", 6),
    (b"storage", FS, "0", "cpu", 6),
    "0",
    ("storage", FS, 0, "cpu", 6),                           # int key
    ("storage", FS, "0", "cpu", -1),
    ("storage", FS, "0", "cpu", True),
    ("storage", FS, "0", "cpu", 7),                         # 28 bytes > 24
    ("storage", FS, "9", "cpu", 1),                         # no data/9
    ("storage", FS, "0", "cpu", 2 ** 62),                   # numel x 4 overflows
    ("storage", FS, "0", "cpu", 2 ** 64),                   # not an int64
], ids=lambda p: repr(p)[:40])
def test_bad_persistent_ids(tmp_path, pid):
    if isinstance(pid, tuple):
        pid = tuple(torch.FloatStorage if x == FS else x for x in pid)
    path = with_data_pkl(tmp_path, {"t": PID(pid)})
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe", show(fo)
    finding(fo, "persistent-id")
    finding(fo, "torch-storage-invalid")
    assert not fo["arrays"]


def test_storage_class_not_in_policy(tmp_path):
    path = with_data_pkl(tmp_path, {"t": PID(("storage", collections.OrderedDict, "0", "cpu", 6))})
    rc, fo = scan(path)
    finding(fo, "persistent-id")


def test_second_id_of_a_key_must_agree(tmp_path):
    # torch returns the first storage of a key whatever later ids claim
    path = with_data_pkl(tmp_path, [tensor(storage(numel=2), size=(2,), stride=(1,)),
                                    tensor(storage(numel=6))])
    rc, fo = scan(path)
    finding(fo, "torch-storage-invalid")


@pytest.mark.parametrize("offset,size,stride,rule", [
    (1, (2, 3), (3, 1), "tensor-out-of-bounds"),       # last element 6 of 6
    (6, (1,), (1,), "tensor-out-of-bounds"),
    (0, (2, 3), (4, 1), "tensor-out-of-bounds"),
    (0, (3,), (2 ** 62,), "tensor-out-of-bounds"),     # overflows 64 bits
    (2 ** 63 - 1, (2,), (1,), "tensor-out-of-bounds"),
    (7, (0,), (1,), "tensor-out-of-bounds"),           # empty, but past the end
    (-1, (2,), (1,), "tensor-bad-metadata"),
    (0, (2, 3), (3,), "tensor-bad-metadata"),          # length mismatch
    (0, (2, -3), (3, 1), "tensor-bad-metadata"),
    (0, (2, 3), (3, -1), "tensor-bad-metadata"),
    (0, (2, 3), (3, 2 ** 64), "tensor-bad-metadata"),  # not an int64
])
def test_tensor_views_out_of_bounds(tmp_path, offset, size, stride, rule):
    path = with_data_pkl(tmp_path, {"t": tensor(storage(), offset, size, stride)})
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe", show(fo)
    f = finding(fo, rule, glob="torch._utils._rebuild_tensor_v2")
    assert f["opcode"] == "REDUCE"


@pytest.mark.parametrize("offset,size,stride", [
    (0, (2, 3), (3, 1)), (5, (1,), (1,)), (0, (6,), (1,)), (6, (0,), (1,)), (0, (), ()),
    (1, (2, 2), (0, 0)), (0, (3, 2), (1, 3)),
])
def test_tensor_views_in_bounds(tmp_path, offset, size, stride):
    path = with_data_pkl(tmp_path, {"t": tensor(storage(), offset, size, stride)})
    torch.load(str(path))
    rc, fo = scan(path)
    assert_safe(fo)


def test_tensor_storage_not_a_persistent_id(tmp_path):
    path = with_data_pkl(tmp_path, {"t": Tensor(b"abc", 0, (1,), (1,), False,
                                               collections.OrderedDict())})
    rc, fo = scan(path)
    finding(fo, "tensor-bad-metadata")


def test_backward_hooks_must_be_empty(tmp_path):
    hooks = collections.OrderedDict([(0, collections.OrderedDict)])
    path = with_data_pkl(tmp_path, {"t": tensor(storage(), hooks=hooks)})
    rc, fo = scan(path)
    finding(fo, "tensor-backward-hooks")


def test_setitem_on_a_tensor(tmp_path):
    # CVE-2026-24747: SETITEM on a rebuilt tensor (Tensor.__setitem__ writes through the view)
    body = dumps(tensor(storage()))
    assert body.endswith(b".")
    path = with_data_pkl(tmp_path, None)
    items = replace(members(path), "s/data.pkl", body[:-1] + b"K\x00K\x07s.")
    path = write_zip(tmp_path / "setitem.pt", items)
    rc, fo = scan(path)
    finding(fo, "mutation-not-allowed")


def test_missing_version_and_big_endian(tmp_path):
    items = [(n, d) for n, d in members(sample(tmp_path)) if n != "s/version"]
    rc, fo = scan(write_zip(tmp_path / "nover.pt", items))
    assert fo["verdict"] == "malformed" and "version" in fo["error"]["message"], show(fo)
    items = members(sample(tmp_path)) + [("s/byteorder", b"big")]
    rc, fo = scan(write_zip(tmp_path / "big.pt", items))
    assert fo["verdict"] == "malformed" and fo["error"]["name"] == "unsupported", show(fo)
    items = members(sample(tmp_path)) + [("s/byteorder", b"little")]
    rc, fo = scan(write_zip(tmp_path / "little.pt", items))
    assert_safe(fo)


@pytest.mark.parametrize("version,loads", [(b"1", True), (b"10", True), (b"3\n", True),
                                            (b"0\n", False), (b"11", False), (b"99", False)])
def test_version_record(tmp_path, version, loads):
    # torch 1.13 reads versions 1..10 (inline_container.cc); ask torch, then us
    path = write_zip(tmp_path / "v.pt", replace(members(sample(tmp_path)), "s/version", version))
    try:
        torch.load(str(path))
        loaded = True
    except RuntimeError:
        loaded = False
    assert loaded == loads
    rc, fo = scan(path)
    assert (fo["verdict"] == "safe") == loads, show(fo)


def test_entry_outside_the_prefix(tmp_path):
    items = members(sample(tmp_path)) + [("other/data.pkl", EVIL)]
    rc, fo = scan(write_zip(tmp_path / "two.pt", items))
    assert fo["verdict"] == "unsafe"
    finding(fo, "global-not-allowed", glob="posix.system")
    assert "prefix" in fo["error"]["message"], show(fo)


def test_deflated_storages(tmp_path):
    path = write_zip(tmp_path / "defl.pt", members(sample(tmp_path)), zipfile.ZIP_DEFLATED)
    torch.load(str(path))
    rc, fo = scan(path)
    assert_safe(fo)
    assert fo["arrays"] and all(r["file_offset"] is None for r in fo["arrays"]), show(fo)


# ---------------------------------------------------------------------------------------------
# Legacy files that lie.


def test_legacy_numel_mismatch_and_truncation(tmp_path):
    path = sample(tmp_path, legacy=True)
    parts, raw = legacy_parts(path)
    head = b"".join(parts)
    assert struct.unpack("<q", raw[:8])[0] == 6
    bad = tmp_path / "numel.pt"
    bad.write_bytes(head + struct.pack("<q", 7) + raw[8:])
    rc, fo = scan(bad)
    assert fo["verdict"] == "malformed" and "elements" in fo["error"]["message"], show(fo)
    for cut in range(len(head), len(head) + len(raw), 5):
        short = tmp_path / "short.pt"
        short.write_bytes((head + raw)[:cut])
        rc, fo = scan(short)
        assert fo["verdict"] == "malformed", (cut, show(fo))
    extra = tmp_path / "extra.pt"
    extra.write_bytes(head + raw + b"junk")
    rc, fo = scan(extra)
    assert fo["verdict"] == "malformed"
    finding(fo, "trailing-data")


def test_legacy_key_not_declared(tmp_path):
    parts, raw = legacy_parts(sample(tmp_path, legacy=True))
    keys = pickle.loads(parts[4])
    parts[4] = pickle.dumps(keys + ["999"], 2)
    path = tmp_path / "keys.pt"
    path.write_bytes(b"".join(parts) + raw)
    rc, fo = scan(path)
    assert fo["verdict"] == "malformed" and "999" in fo["error"]["message"], show(fo)


def test_legacy_id_without_storage(tmp_path):
    parts, raw = legacy_parts(sample(tmp_path, legacy=True))
    parts[4] = pickle.dumps([], 2)
    path = tmp_path / "nokeys.pt"
    path.write_bytes(b"".join(parts))
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe"
    finding(fo, "torch-storage-invalid")


# ---------------------------------------------------------------------------------------------
# Legacy tar: parsed and every pickle member scanned; the rest is refused as unsupported.


def write_tar(path, items):
    with tarfile.open(str(path), "w", format=tarfile.PAX_FORMAT) as t:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def test_tar_payload_found_and_never_safe(tmp_path):
    # empty tables: a storage count, the (empty) views list, a tensor count
    storages = pickle.dumps(0, 2) + pickle.dumps([], 2)
    path = write_tar(tmp_path / "old.tar", [("storages", storages),
                                            ("tensors", pickle.dumps(0, 2)),
                                            ("pickle", EVIL)])
    rc, fo = scan(path)
    assert fo["verdict"] == "unsafe" and fo["container"] == "pytorch/tar", show(fo)
    finding(fo, "global-not-allowed", glob="posix.system", stream="%s!pickle" % path)
    path = write_tar(tmp_path / "benign.tar", [("storages", storages),
                                               ("tensors", pickle.dumps(0, 2)),
                                               ("pickle", pickle.dumps({"a": 1}, 2))])
    rc, fo = scan(path)
    assert rc == 0 and fo["verdict"] == "safe", show(fo)  # tables modelled (test_torch_tar.py)
    # a storages member without its views list: torch.load fails before the object
    path = write_tar(tmp_path / "short.tar", [("storages", pickle.dumps(0, 2)),
                                              ("tensors", pickle.dumps(0, 2)),
                                              ("pickle", EVIL)])
    rc, fo = scan(path)
    assert fo["verdict"] == "malformed", show(fo)


def test_tar_truncated_headers(tmp_path):
    data = open(str(write_tar(tmp_path / "t.tar", [("pickle", EVIL)])), "rb").read()
    for cut in (300, 511, 512, 700, 1023, 1024, 1100):
        p = tmp_path / "cut.tar"
        p.write_bytes(data[:cut])
        rc, fo = scan(p)
        assert fo["verdict"] != "safe", (cut, show(fo))
