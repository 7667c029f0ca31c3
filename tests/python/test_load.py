# label: load
"""pickleproof.load/loads/scan/untrusted_globals: objects equal to what pickle/joblib build, arrays
with the same dtype, shape, order and writeability, rejections as UnsafePickleError that run
nothing."""
import collections
import datetime
import decimal
import io
import os
import pickle
import threading

import joblib
import numpy as np
import pytest

import pickleproof as pp

PROTOCOLS = range(0, 6)


def values():
    rec = [1, "two"]
    rec.append(rec)
    shared = [1, 2]
    return {
        "scalars": [None, True, False, 0, -1, 2**31, -(2**63), 2**200, -(2**90), 1.5, float("inf"),
                    "", "héllo \ud800", b"", b"\x00\xff", bytearray(b"ab")],
        "containers": ([1, [2, [3]]], {"a": {"b": ()}}, {1, 2}, frozenset({3}), (1, (2,))),
        "shared": [shared, shared, (shared,)],
        "recursive": rec,
        "ordered": collections.OrderedDict(b=1, a=2),
        "counter": collections.Counter("abracadabra"),
        "deque": collections.deque([1, 2, 3], maxlen=5),
        "defaultdict": collections.defaultdict(list, {"k": [1]}),
        "datetime": [datetime.datetime(2024, 2, 29, 12, 0, 1, 5), datetime.date(1999, 12, 31),
                     datetime.timedelta(days=3, seconds=4), datetime.time(1, 2, 3)],
        "decimal": decimal.Decimal("3.14159"),
        "complex": complex(1, -2),
        "slice": slice(1, 10, 2),
        "range": range(3, 30, 3),
    }


def same(a, b):
    return pickle.dumps(a, protocol=4) == pickle.dumps(b, protocol=4) or repr(a) == repr(b)


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("name", sorted(values()))
def test_builtins_equal_pickle(name, proto):
    obj = values()[name]
    data = pickle.dumps(obj, protocol=proto)
    got = pp.loads(data)
    want = pickle.loads(data)
    assert same(got, want), (got, want)


def test_sharing_and_cycles_kept():
    v = values()
    got = pp.loads(pickle.dumps(v, protocol=4))
    assert got["shared"][0] is got["shared"][1] is got["shared"][2][0]
    assert got["recursive"][2] is got["recursive"]


DTYPES = ["b1", "i1", "u1", "<i2", ">i2", "<u4", "<i8", "<u8", "<f2", "<f4", ">f8", "<c8", "<c16",
          "<M8[ns]", "<m8[s]", "S5", "<U3", "V4"]


def sample(dt, shape=(3, 4)):
    n = int(np.prod(shape))
    raw = np.arange(n * 16, dtype=np.uint8).tobytes()
    return np.frombuffer(raw[: n * np.dtype(dt).itemsize], dtype=dt).reshape(shape).copy()


def check_array(got, want, writeable=True):
    assert type(got) is np.ndarray
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.flags.c_contiguous == want.flags.c_contiguous
    assert got.flags.f_contiguous == want.flags.f_contiguous
    assert got.flags.writeable == writeable
    assert got.tobytes() == want.tobytes() or np.array_equal(got, want, equal_nan=True)


@pytest.mark.parametrize("proto", [2, 4, 5])
@pytest.mark.parametrize("dt", DTYPES)
def test_numpy_arrays_by_pickle(dt, proto):
    for a in (sample(dt), np.asfortranarray(sample(dt)), sample(dt)[:, ::2]):
        data = pickle.dumps(a, protocol=proto)
        want = pickle.loads(data)
        check_array(pp.loads(data), want, want.flags.writeable)


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lz4", 3)])
@pytest.mark.parametrize("dt", DTYPES)
def test_numpy_arrays_by_joblib(tmp_path, dt, compress):
    path = tmp_path / "a.joblib"
    arrays = [sample(dt), np.asfortranarray(sample(dt)), sample(dt, (0, 3)), sample(dt, ())]
    try:
        joblib.dump({"arrays": arrays, "obj": np.array(["x", 1], dtype=object)}, path,
                    compress=compress)
    except (ValueError, ImportError) as e:  # a compressor joblib lacks here
        pytest.skip(str(e))
    want = joblib.load(path)
    got = pp.load(path)
    for g, w in zip(got["arrays"], want["arrays"]):
        check_array(g, w)
    assert list(got["obj"]) == ["x", 1] and got["obj"].dtype == object
    if compress == 0:
        mapped = pp.load(path, mmap_mode="r")
        wmap = joblib.load(path, mmap_mode="r")
        for g, w in zip(mapped["arrays"], wmap["arrays"]):
            assert g.dtype == w.dtype and g.shape == w.shape
            assert g.flags.f_contiguous == w.flags.f_contiguous
            assert g.flags.writeable == w.flags.writeable
            assert np.array_equal(np.asarray(g), np.asarray(w), equal_nan=g.dtype.kind in "fc")


def test_mmap_views_the_file_bytes(tmp_path):
    path = tmp_path / "big.joblib"
    a = np.arange(1 << 20, dtype="<f8")
    joblib.dump([a], path)
    got = pp.load(path, mmap_mode="r")[0]
    assert not got.flags.owndata and not got.flags.writeable
    with pytest.raises(ValueError):
        got[0] = 1
    del got  # the map goes with the last array


@pytest.mark.parametrize("dt", DTYPES)
def test_npy_and_npz(tmp_path, dt):
    a, f = sample(dt), np.asfortranarray(sample(dt))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "f.npy", f)
    check_array(pp.load(tmp_path / "a.npy"), np.load(tmp_path / "a.npy"))
    check_array(pp.load(tmp_path / "f.npy"), np.load(tmp_path / "f.npy"))
    check_array(pp.load(tmp_path / "a.npy", mmap_mode="r"), np.load(tmp_path / "a.npy"),
                writeable=False)
    for saver in (np.savez, np.savez_compressed):
        saver(tmp_path / "z.npz", first=a, second=f)
        got = pp.load(tmp_path / "z.npz")
        want = np.load(tmp_path / "z.npz")
        assert sorted(got) == sorted(want.files)
        for k in want.files:
            check_array(got[k], want[k])


def test_file_objects_and_pathlike(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"a": 1}))
    assert pp.load(path) == {"a": 1}
    assert pp.load(str(path)) == {"a": 1}
    with open(path, "rb") as f:
        assert pp.load(f) == {"a": 1}
    assert pp.load(io.BytesIO(pickle.dumps([1]))) == [1]


CANARY_CODE = "open({path!r}, 'w').write('ran')"


def malicious(canary):
    class Run:
        def __reduce__(self):
            return (exec, (CANARY_CODE.format(path=str(canary)),))

    class Sys:
        def __reduce__(self):
            return (os.system, ("touch " + str(canary),))

    return {"exec": pickle.dumps(Run()), "system": pickle.dumps([1, Sys()], protocol=2),
            "nested": pickle.dumps({"a": np.arange(3), "b": Run()}, protocol=5)}


@pytest.mark.parametrize("kind", ["exec", "system", "nested"])
def test_malicious_raises_and_runs_nothing(tmp_path, kind):
    canary = tmp_path / "canary"
    data = malicious(canary)[kind]
    path = tmp_path / "m.pkl"
    path.write_bytes(data)
    for call in (lambda: pp.loads(data), lambda: pp.load(path),
                 lambda: pp.load(path, mmap_mode="r")):
        with pytest.raises(pp.UnsafePickleError) as ei:
            call()
        e = ei.value
        assert isinstance(e, pickle.UnpicklingError)
        assert e.verdict == "unsafe"
        assert e.rule in ("global-not-allowed", "call-not-allowed")
        assert e.global_name in ("builtins.exec", "posix.system")
        assert getattr(e, "global") == e.global_name
        assert isinstance(e.offset, int) and 0 <= e.offset < len(data)
        assert e.report.verdict == "unsafe"
    assert not canary.exists()


def test_malformed_and_limits_raise(tmp_path):
    with pytest.raises(pp.UnsafePickleError) as ei:
        pp.loads(pickle.dumps([1, 2, 3])[:-3])
    assert ei.value.verdict == "malformed"
    with pytest.raises(pp.UnsafePickleError) as ei:
        pp.loads(pickle.dumps(list(range(100))), limits={"opcodes": 10})
    assert ei.value.verdict == "limit"
    with pytest.raises(OSError):
        pp.load(tmp_path / "missing.pkl")


def test_scan_report_and_untrusted_globals(tmp_path):
    canary = tmp_path / "canary"
    path = tmp_path / "m.pkl"
    path.write_bytes(malicious(canary)["system"])
    rep = pp.scan(path)
    assert rep.verdict == "unsafe" and not rep.safe and not rep
    assert "posix.system" in rep.globals
    assert rep.findings[0].rule == "global-not-allowed"
    assert rep.sandbox in ("seccomp", "seccomp-relaxed")
    assert '"verdict": "unsafe"' in rep.to_json() or '"verdict":"unsafe"' in rep.to_json()
    assert pp.untrusted_globals(path) == ["posix.system"]
    ok = tmp_path / "ok.pkl"
    ok.write_bytes(pickle.dumps({"x": np.arange(3)}))
    assert pp.scan(ok).safe and pp.untrusted_globals(ok) == []
    assert pp.scan(pickle.dumps([1])).safe


def test_policy_files(tmp_path):
    import ipaddress
    addr = ipaddress.IPv4Address("10.1.2.3")
    data = pickle.dumps(addr)
    with pytest.raises(pp.UnsafePickleError) as ei:
        pp.loads(data)
    assert ei.value.global_name == "ipaddress.IPv4Address"
    pol = tmp_path / "team.policy"
    pol.write_text("policy team\ninclude default\ncall ipaddress.IPv4Address (int)\n")
    assert pp.loads(data, policy=["default", str(pol)]) == addr
    with pytest.raises(ValueError):
        pp.loads(data, policy=str(tmp_path / "nope.policy"))


def test_threads_load_at_once(tmp_path):
    path = tmp_path / "t.joblib"
    joblib.dump({"a": np.arange(1000.0), "b": list(range(100))}, path)
    want = joblib.load(path)
    errors, results = [], []

    def work():
        try:
            for _ in range(10):
                got = pp.load(path)
                results.append(np.array_equal(got["a"], want["a"]) and got["b"] == want["b"])
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 80 and all(results)


def test_signed_loads(tmp_path):
    import subprocess
    cli = os.environ["PICKLEPROOF"]

    def run(*args):
        return subprocess.run([cli, *map(str, args)], capture_output=True, text=True)

    assert run("keygen", "-W", "-p", tmp_path / "k.pub", "-s", tmp_path / "k.key").returncode == 0
    assert run("keygen", "-W", "-p", tmp_path / "o.pub", "-s", tmp_path / "o.key").returncode == 0
    path = tmp_path / "m.joblib"
    joblib.dump({"w": np.arange(10.0)}, path)
    assert run("sign", "-s", tmp_path / "k.key", path).returncode == 0
    for mm in (None, "r"):
        got = pp.load(path, key=tmp_path / "k.pub", require_signature=True, mmap_mode=mm)
        assert np.array_equal(got["w"], np.arange(10.0))
        assert got["w"].flags.writeable == (mm is None)
        with pytest.raises(pp.UnsafePickleError) as ei:
            pp.load(path, key=tmp_path / "o.pub", mmap_mode=mm)
        assert ei.value.verdict == "bad-signature"
    assert pp.scan(path, key=tmp_path / "k.pub").signature["status"] == "valid"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # an array byte: nothing a scan reads, but the signature covers it
    path.write_bytes(bytes(data))
    with pytest.raises(pp.UnsafePickleError) as ei:
        pp.load(path, key=tmp_path / "k.pub")
    assert ei.value.verdict == "bad-signature"
    bare = tmp_path / "bare.pkl"
    bare.write_bytes(pickle.dumps([1]))
    with pytest.raises(pp.UnsafePickleError) as ei:
        pp.load(bare, key=tmp_path / "k.pub", require_signature=True)
    assert ei.value.verdict == "unsigned"
    assert pp.load(bare, key=tmp_path / "k.pub") == [1]  # reported, not required


def test_torch_zip_and_legacy(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(12.0)
    sd = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)).state_dict()
    sd["view"] = base[2:5]
    sd["base"] = base
    sd["strided"] = base.view(3, 4)[:, 1]
    for zipped in (True, False):
        path = tmp_path / ("m%d.pt" % zipped)
        torch.save(sd, path, _use_new_zipfile_serialization=zipped)
        want = torch.load(path, weights_only=True)
        got = pp.load(path, policy="torch")
        assert list(got) == list(want)
        for k in want:
            assert got[k].dtype == want[k].dtype and got[k].stride() == want[k].stride()
            assert torch.equal(got[k], want[k])
        got["base"][3] = 99  # one storage, as torch.load makes it
        assert got["view"][1] == 99 and got["strided"][0] == 1


def test_deep_tuples():
    t = ()
    for i in range(200):
        t = (t, i)
    data = pickle.dumps([t, {"k": t}], protocol=4)  # filled at the end, past readiness's depth
    assert pp.loads(data) == pickle.loads(data)
    deep = b"\x80\x02)" + b"\x85" * 9000 + b"."  # as deep as the default nesting-depth allows
    got, n = pp.loads(deep), 0
    while got:
        got, n = got[0], n + 1
    assert n == 9000
