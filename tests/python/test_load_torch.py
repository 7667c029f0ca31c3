# label: load
"""pickleproof.load(policy="torch") against torch.load(weights_only=True).

State dicts of common layers, tensors of every dtype torch.save writes, views with offsets and
strides, several tensors on one storage and nn.Parameter: the same keys in the same order, the
same dtype, shape, stride, storage offset, values and requires_grad, and storage sharing kept (a
write through one tensor shows in the other, as after torch.load). A whole pickled nn.Module is
refused by the torch policy. The legacy (non-zip) format loads the same way."""
import collections
import os
import pickle
import warnings

import pytest

torch = pytest.importorskip("torch")

import pickleproof as pp  # noqa: E402

DTYPES = [torch.float16, torch.float32, torch.float64, torch.bfloat16, torch.int8, torch.int16,
          torch.int32, torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128]


def save(obj, path, legacy=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(obj, str(path), _use_new_zipfile_serialization=not legacy)
    return path


def reference(path):
    return torch.load(str(path), weights_only=True)


def check_tensor(got, want, where):
    assert type(got) is type(want), where
    assert got.dtype == want.dtype, where
    assert got.shape == want.shape, where
    assert got.stride() == want.stride(), where
    assert got.storage_offset() == want.storage_offset(), where
    assert got.requires_grad == want.requires_grad, where
    assert got.is_contiguous() == want.is_contiguous(), where
    assert raw(got) == raw(want), where
    assert storage(got).nbytes() == storage(want).nbytes(), where


def raw(t):
    """The element bytes in logical order: exact, NaN and -0.0 included."""
    t = t.detach().reshape(-1).contiguous()
    if t.is_complex():
        t = torch.view_as_real(t).reshape(-1)
    return bytes(t.view(torch.uint8).tolist()) if t.dtype != torch.uint8 else bytes(t.tolist())


def storage(t):
    # torch >= 2 spells it untyped_storage(); Debian's 1.13 only has storage()
    return t.untyped_storage() if hasattr(t, "untyped_storage") else t.storage()


def check_same(got, want, where="root"):
    """Recursive equality with torch.load's structure: containers, order, tensors."""
    assert type(got) is type(want), (where, type(got), type(want))
    if isinstance(want, torch.Tensor):
        check_tensor(got, want, where)
    elif isinstance(want, dict):
        assert list(got) == list(want), where
        for k in want:
            check_same(got[k], want[k], "%s[%r]" % (where, k))
        if hasattr(want, "_metadata"):
            assert getattr(got, "_metadata", None) == want._metadata, where
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            check_same(g, w, "%s[%d]" % (where, i))
    else:
        assert got == want, where


def storage_groups(obj):
    """Partition of the tensors (by key path) into groups sharing one storage."""
    flat = {}

    def walk(o, p):
        if isinstance(o, torch.Tensor):
            flat[p] = o
        elif isinstance(o, dict):
            for k, v in o.items():
                walk(v, p + (k,))
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, p + (i,))
    walk(obj, ())
    groups = collections.defaultdict(set)
    for p, t in flat.items():
        groups[storage(t).data_ptr()].add(p)
    return sorted(sorted(map(str, g)) for g in groups.values())


def tensors():
    out = collections.OrderedDict()
    for dt in DTYPES:
        base = torch.arange(24).reshape(4, 6)
        t = (base % 3 == 0) if dt == torch.bool else (base - 7).to(dt)
        name = str(dt).split(".")[1]
        out[name] = t
        out[name + "_view"] = t[1:, 2:5]
        out[name + "_T"] = t.t()
        out[name + "_step"] = t[:, ::2]
        out[name + "_scalar"] = t[2, 3]
    shared = torch.arange(10, dtype=torch.float32)
    out["shared_a"], out["shared_b"], out["shared_c"] = shared, shared[3:7], shared.view(2, 5)
    out["empty"] = torch.zeros(0, 3)
    out["nan_inf"] = torch.tensor([float("nan"), float("inf"), -0.0])
    out["big_int"] = torch.tensor([2**62, -(2**63)], dtype=torch.int64)
    return out


def models():
    torch.manual_seed(0)
    nn = torch.nn
    return {
        "linear": nn.Linear(4, 3),
        "conv2d": nn.Conv2d(2, 4, 3),
        "batchnorm": nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.BatchNorm1d(3)),
        "lstm": nn.LSTM(4, 5, num_layers=2, bidirectional=True),
        "embedding": nn.Embedding(10, 4, padding_idx=0),
        "layernorm": nn.LayerNorm([3, 4]),
        "transformer-encoder": nn.TransformerEncoderLayer(8, 2, dim_feedforward=16),
        "transformer-decoder": nn.TransformerDecoderLayer(8, 2, dim_feedforward=16),
        "seq": nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2), nn.GRU(2, 3)),
    }


@pytest.fixture
def trained_bn():
    """A BatchNorm whose num_batches_tracked (int64) and running stats have moved."""
    torch.manual_seed(1)
    bn = torch.nn.BatchNorm1d(3)
    for _ in range(3):
        bn(torch.randn(8, 3))
    return bn


@pytest.mark.parametrize("name", sorted(models()))
def test_state_dicts(tmp_path, name):
    sd = models()[name].state_dict()
    path = save(sd, tmp_path / (name + ".pt"))
    want = reference(path)
    got = pp.load(path, policy="torch")
    check_same(got, want)
    assert storage_groups(got) == storage_groups(want)
    # the state dict goes straight back into a fresh module
    fresh = models()[name]
    fresh.load_state_dict(got)


def test_batchnorm_counter(tmp_path, trained_bn):
    path = save(trained_bn.state_dict(), tmp_path / "bn.pt")
    got = pp.load(path, policy="torch")
    check_same(got, reference(path))
    assert got["num_batches_tracked"].dtype == torch.int64 and int(got["num_batches_tracked"]) == 3


def test_every_dtype_views_and_sharing(tmp_path):
    t = tensors()
    path = save(t, tmp_path / "t.pt")
    want = reference(path)
    got = pp.load(path, policy="torch")
    check_same(got, want)
    assert storage_groups(got) == storage_groups(want)
    # each dtype's four views share the base's storage, as torch.load makes them
    for dt in DTYPES:
        n = str(dt).split(".")[1]
        ptr = storage(got[n]).data_ptr()
        for suffix in ("_view", "_T", "_step", "_scalar"):
            assert storage(got[n + suffix]).data_ptr() == ptr, n + suffix


def test_sharing_is_live(tmp_path):
    """A write through one tensor shows in every tensor on that storage."""
    path = save(tensors(), tmp_path / "t.pt")
    for obj in (pp.load(path, policy="torch"), reference(path)):
        obj["shared_a"][4] = 100.0
        assert obj["shared_b"][1].item() == 100.0
        assert obj["shared_c"][0, 4].item() == 100.0
        obj["float32_view"][0, 0] = 55.0
        assert obj["float32"][1, 2].item() == 55.0
        assert obj["float32_T"][2, 1].item() == 55.0


def test_single_tensor_list_tuple(tmp_path):
    for i, obj in enumerate([torch.arange(5.0), [torch.ones(2), torch.zeros(3, dtype=torch.int8)],
                             (torch.eye(3)[1:], {"nested": {"deep": [torch.tensor(7)]}}),
                             {"epoch": 3, "name": "run", "w": torch.ones(2)}]):
        path = save(obj, tmp_path / ("o%d.pt" % i))
        check_same(pp.load(path, policy="torch"), reference(path))


def test_parameters(tmp_path):
    torch.manual_seed(2)
    params = collections.OrderedDict(
        w=torch.nn.Parameter(torch.randn(3, 2)),
        frozen=torch.nn.Parameter(torch.randn(2), requires_grad=False),
        plain=torch.randn(2))
    path = save(params, tmp_path / "p.pt")
    want = reference(path)
    got = pp.load(path, policy="torch")
    check_same(got, want)
    assert isinstance(got["w"], torch.nn.Parameter) and got["w"].requires_grad
    assert isinstance(got["frozen"], torch.nn.Parameter) and not got["frozen"].requires_grad
    assert got["w"].is_leaf


def test_optimizer_checkpoint(tmp_path):
    torch.manual_seed(3)
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    m(torch.randn(4, 3)).sum().backward()
    opt.step()
    ck = {"model": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 1}
    path = save(ck, tmp_path / "ck.pt")
    # Debian's torch 1.13 weights_only unpickler lacks BINFLOAT (the lr): our own file, loaded
    # fully as the reference
    check_same(pp.load(path, policy="torch"), torch.load(str(path)))


def test_whole_module_is_refused(tmp_path):
    path = save(models()["seq"], tmp_path / "module.pt")
    with pytest.raises(pp.UnsafePickleError) as ei:
        pp.load(path, policy="torch")
    assert ei.value.verdict == "unsafe"
    assert ei.value.global_name and ei.value.global_name.startswith("torch.nn.modules")
    with pytest.raises(pp.UnsafePickleError):
        pp.loads(path.read_bytes(), policy="torch")


@pytest.mark.parametrize("what", ["tensor", "state_dict", "tensors", "module"])
def test_legacy_format(tmp_path, what):
    obj = {"tensor": torch.arange(6.0).reshape(2, 3), "state_dict": models()["linear"].state_dict(),
           "tensors": tensors(), "module": models()["linear"]}[what]
    path = save(obj, tmp_path / "legacy.pt", legacy=True)
    if what == "module":
        with pytest.raises(pp.UnsafePickleError) as ei:
            pp.load(path, policy="torch")
        assert ei.value.verdict == "unsafe"
        return
    check_same(pp.load(path, policy="torch"), reference(path))


def test_mmap_mode(tmp_path):
    path = save(tensors(), tmp_path / "t.pt")
    got = pp.load(path, policy="torch", mmap_mode="r")
    check_same(got, reference(path))
