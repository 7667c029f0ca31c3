# label: containers
"""The generated built-in `torch` policy against the files its generator writes, and hostile ones.

tools/gen_torch_policy.py --samples DIR keeps every file torch.save wrote for it (state_dicts of
21 kinds of module, tensors of every dtype, views, sparse COO/CSR and meta tensors, parameters,
values); each must scan `safe` under `--policy torch`. Every global the policy names must be on
torch.load(weights_only=True)'s allowlist, and every call line must pin its arguments. Hostile
variants must be `unsafe` with the rule that catches them: a whole module saved with
torch.save (global-not-allowed on its class), an os.system __reduce__ inside a state_dict
(global-not-allowed), and allowed helpers given a class or value their pattern refuses
(argument-not-allowed). Finally `--check` regenerates the policy and compares it byte for byte.
"""

import collections
import json
import os
import pickle
import re
import subprocess
import sys
import zipfile

import pytest

torch = pytest.importorskip("torch")

PICKLEPROOF = os.environ.get("PICKLEPROOF")
SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
SLOW = 6 if SANITIZED else 1
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEN = os.path.join(ROOT, "tools", "gen_torch_policy.py")
POLICY = os.path.join(ROOT, "policies", "torch.policy")

pytestmark = pytest.mark.skipif(not PICKLEPROOF, reason="PICKLEPROOF is not set")


def scan(paths, policy="torch"):
    p = subprocess.run([PICKLEPROOF, "scan", "--format", "json", "--policy", policy] +
                       [str(x) for x in paths], capture_output=True, timeout=120 * SLOW)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode in (0, 1, 2), "exit %d (crash?)\n%s" % (p.returncode, err[-3000:])
    assert "Sanitizer" not in err and "runtime error:" not in err, err[-3000:]
    return json.loads(p.stdout)["files"]


def rules(fo):
    return {(f["rule"], f["global"]) for f in fo["findings"]}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    d = tmp_path_factory.mktemp("torch-samples")
    p = subprocess.run([sys.executable, GEN, "--samples", str(d), "--out", str(d / "gen.policy")],
                       capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    with open(d / "gen.policy") as f, open(POLICY) as g:
        assert f.read() == g.read(), "policies/torch.policy is not what the generator writes"
    return sorted(d.glob("*.pt"))


def test_every_sample_is_safe(samples):
    assert len(samples) >= 40
    names = {p.name for p in samples}
    for n in ("sd-lstm.pt", "sd-transformer-legacy.pt", "dtypes.pt", "views-legacy.pt",
              "sparse-coo.pt", "sparse-csr.pt", "meta.pt", "parameters.pt", "values.pt"):
        assert n in names
    for fo in scan(samples):
        assert fo["verdict"] == "safe", json.dumps(fo, indent=1)[:3000]


def test_sparse_and_meta_need_their_helpers(samples):
    by = {p.name: p for p in samples}
    fos = scan([by["sparse-coo.pt"], by["meta.pt"]], "default")
    assert ("global-not-allowed", "torch._utils._rebuild_sparse_tensor") in rules(fos[0])
    assert ("global-not-allowed", "torch._utils._rebuild_meta_tensor_no_storage") in rules(fos[1])


def policy_lines():
    out = []
    with open(POLICY) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line.split(" ", 1)[0] in ("reference", "call", "construct"):
                out.append(line)
    return out


def test_policy_stays_inside_weights_only():
    from torch import _weights_only_unpickler as w
    allowed = set(w._get_allowed_globals())
    lines = policy_lines()
    assert lines
    for line in lines:
        kind, name = line.split()[:2]
        assert name in allowed, line
        if kind == "call":
            assert "(" in line, "a call without an argument pattern: " + line
        assert kind != "construct", line  # nothing here may be given BUILD state
    for name in ("torch.Tensor", "torch.nn.parameter.Parameter", "torch.device"):
        assert not any(l.split()[1] == name for l in lines), name


# ---------------------------------------------------------------------------------------------
# Hostile files.


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


class Call:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def with_data_pkl(tmp_path, obj, name):
    src = tmp_path / ("base-" + name)
    torch.save({"t": torch.ones(2)}, src)
    dst = tmp_path / name
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for i in zin.infolist():
            data = zin.read(i.filename)
            if i.filename.endswith("/data.pkl"):
                data = pickle.dumps(obj, protocol=2)
            zout.writestr(i.filename, data)
    return dst


def test_whole_module_is_refused(tmp_path):
    p = tmp_path / "model.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), p)
    (fo,) = scan([p])
    assert fo["verdict"] == "unsafe"
    assert ("global-not-allowed", "torch.nn.modules.linear.Linear") in rules(fo)
    assert ("global-not-allowed", "torch.nn.modules.container.Sequential") in rules(fo)


def test_device_is_refused_as_weights_only_refuses_it(tmp_path):
    from torch import _weights_only_unpickler as w
    if "torch.device" in w._get_allowed_globals():
        pytest.skip("this torch's weights_only admits torch.device")
    p = tmp_path / "dev.pt"
    torch.save({"d": torch.device("cpu"), "t": torch.ones(1)}, p)
    with pytest.raises(Exception):
        torch.load(p, weights_only=True)
    (fo,) = scan([p])
    assert ("global-not-allowed", "torch.device") in rules(fo)


def test_os_system_inside_a_state_dict(tmp_path):
    sd = torch.nn.Linear(2, 2).state_dict()
    sd["bias_hook"] = Evil()
    p = tmp_path / "evil.pt"
    torch.save(sd, p)
    (fo,) = scan([p])
    assert fo["verdict"] == "unsafe"
    assert ("global-not-allowed", "posix.system") in rules(fo)
    assert ("call-not-allowed", "posix.system") in rules(fo)


OD = collections.OrderedDict


@pytest.mark.parametrize("obj,helper", [
    # a class where a tensor belongs
    (Call(torch._utils._rebuild_parameter, OD, False, OD()), "torch._utils._rebuild_parameter"),
    # a layout name that is not one of torch's layouts
    (Call(torch.serialization._get_layout, "os.system"), "torch.serialization._get_layout"),
    # a class where a dtype belongs
    (Call(torch._utils._rebuild_meta_tensor_no_storage, OD, (2,), (1,), False),
     "torch._utils._rebuild_meta_tensor_no_storage"),
    # a str where the layout object belongs
    (Call(torch._utils._rebuild_sparse_tensor, "torch.sparse_coo", ()), "torch._utils._rebuild_sparse_tensor"),
    # torch.Size of something that is not a tuple of ints
    (Call(torch.Size, (OD,)), "torch.Size"),
], ids=["parameter-class", "layout-name", "meta-dtype", "sparse-layout", "size"])
def test_helper_with_forbidden_argument(tmp_path, obj, helper):
    p = with_data_pkl(tmp_path, {"x": obj}, "h.pt")
    (fo,) = scan([p])
    assert fo["verdict"] == "unsafe", json.dumps(fo, indent=1)[:3000]
    assert ("argument-not-allowed", helper) in rules(fo)


class Stateful:
    """REDUCE of a rebuild helper, then BUILD state or SETITEMS on the tensor it returns."""

    def __init__(self, state=None, items=None):
        self.state, self.items = state, items

    def __reduce__(self):
        args = (None, 0, (1,), (1,), False, OD())
        return (torch._utils._rebuild_tensor_v2, args, self.state, None,
                iter(self.items) if self.items else None)


@pytest.mark.parametrize("obj,rule", [
    (Stateful(state={"requires_grad": True}), "build-not-allowed"),
    (Stateful(items=[("k", 1)]), "mutation-not-allowed"),
], ids=["build", "setitems"])
def test_rebuilt_tensor_takes_no_state(tmp_path, obj, rule):
    # `-> self` tags a helper's result; the helper is not construct-allowed, so the tag never
    # lets BUILD or SETITEM reach a tensor
    p = with_data_pkl(tmp_path, {"x": obj}, "s.pt")
    (fo,) = scan([p])
    assert (rule, "torch._utils._rebuild_tensor_v2") in rules(fo), json.dumps(fo, indent=1)[:3000]


def test_check_mode_passes():
    p = subprocess.run([sys.executable, GEN, "--check"], capture_output=True, timeout=600)
    assert p.returncode == 0, (p.stdout.decode()[-3000:], p.stderr.decode()[-3000:])
    assert re.search(r"is current", p.stdout.decode())
