#!/usr/bin/python3
"""Generate policies/torch.policy from the installed PyTorch (Debian's /usr/bin/python3).

    tools/gen_torch_policy.py                 write policies/torch.policy
    tools/gen_torch_policy.py --out FILE      write FILE instead
    tools/gen_torch_policy.py --check         regenerate to a temporary file and compare it,
                                              byte for byte, with the committed policy
    tools/gen_torch_policy.py --samples DIR   also keep every file it saved in DIR (to scan)

How: torch.save (zip and legacy formats) writes real objects - state_dicts of many nn modules,
tensors of every dtype, strided and offset views, sparse COO/CSR tensors, meta tensors,
nn.Parameter, OrderedDict, torch.Size, dtypes and layouts as values - and torch.load reads each
file back through a recording pure-Python unpickler (our own files, so loading them is fine)
that notes every global find_class resolves and what the stream does with it: REDUCE (with the
shapes of its arguments), NEWOBJ, BUILD, or only a reference.

What may appear is bounded by torch.load(weights_only=True)'s own allowlist
(torch/_weights_only_unpickler.py, read from the installed torch): a recorded global outside it
fails generation, and nothing outside it is emitted. Within it, calls are allowed only through
the reviewed rules in CALLS below (argument patterns, each helper's source read: none imports
by name, opens files or runs code it is given); REDUCE of anything without a rule fails
generation. Whole modules (torch.save(model)) are refused on purpose, as weights_only refuses
them. Deterministic: sorted output, no timestamps, the torch version only in the header.
"""

import collections
import inspect
import io
import os
import pickle
import sys
import tempfile
import textwrap
import types
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import policy_output  # noqa: E402  (beside this script)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY = os.path.join(ROOT, "policies", "torch.policy")
DEFAULT = os.path.join(ROOT, "policies", "default.policy")

# ---------------------------------------------------------------------------------------------
# Samples: (name, factory). Factories run with a fixed seed.


def modules():
    import torch.nn as nn
    return [
        ("linear", lambda: nn.Linear(4, 3)),
        ("linear-nobias", lambda: nn.Linear(4, 3, bias=False)),
        ("bilinear", lambda: nn.Bilinear(2, 3, 4)),
        ("conv1d", lambda: nn.Conv1d(2, 3, 3)),
        ("conv2d", lambda: nn.Conv2d(2, 4, 3)),
        ("conv3d", lambda: nn.Conv3d(1, 2, 2)),
        ("convtranspose2d", lambda: nn.ConvTranspose2d(2, 3, 3)),
        ("batchnorm1d", lambda: nn.BatchNorm1d(3)),
        ("batchnorm2d", lambda: nn.BatchNorm2d(3)),
        ("layernorm", lambda: nn.LayerNorm(5)),
        ("groupnorm", lambda: nn.GroupNorm(2, 4)),
        ("instancenorm", lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True)),
        ("embedding", lambda: nn.Embedding(10, 3)),
        ("embeddingbag", lambda: nn.EmbeddingBag(10, 3)),
        ("rnn", lambda: nn.RNN(3, 4)),
        ("lstm", lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True)),
        ("gru", lambda: nn.GRU(3, 4)),
        ("mha", lambda: nn.MultiheadAttention(8, 2)),
        ("transformer", lambda: nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)),
        ("prelu", lambda: nn.PReLU()),
        ("sequential", lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(),
                                             nn.Flatten(), nn.Linear(8, 2))),
    ]


DTYPES = ["float64", "float32", "float16", "bfloat16", "complex64", "complex128", "int64",
          "int32", "int16", "int8", "uint8", "bool"]


def samples():
    import torch
    torch.manual_seed(0)
    out = []
    for name, make in modules():
        m = make()
        out.append(("sd-" + name, m.state_dict()))
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    tensors = {}
    for dt in DTYPES:
        d = getattr(torch, dt)
        tensors[dt] = (base % 2 == 0) if dt == "bool" else base.to(d)
    out.append(("dtypes", tensors))
    views = {"t": base.t(), "step": base[:, ::2], "offset": base[1:, 2:], "row": base[2],
             "expand": torch.ones(3, 1).expand(3, 4), "scalar": torch.tensor(3.5),
             "empty": torch.empty(0, 3), "shared": [base, base[1]]}
    out.append(("views", views))
    out.append(("sparse-coo", {"s": torch.eye(3).to_sparse()}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out.append(("sparse-csr", {"s": torch.eye(3).to_sparse_csr()}))
    out.append(("meta", {"m": torch.empty(2, 3, device="meta")}))
    out.append(("parameters", {"p": torch.nn.Parameter(torch.ones(2, 2)),
                               "frozen": torch.nn.Parameter(torch.zeros(3), requires_grad=False)}))
    od = collections.OrderedDict([("a", torch.ones(1)), ("b", 2)])
    out.append(("values", {"od": od, "size": torch.Size([2, 3]), "dtype": torch.float32,
                           "dtypes": [torch.int64, torch.float16, torch.complex64],
                           "layout": torch.strided, "epoch": 3, "lr": 0.1, "name": "x"}))
    out.append(("checkpoint", {"model": modules()[0][1]().state_dict(), "step": 10,
                               "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}}))
    return out


def write_all(outdir):
    import torch
    paths = []
    for name, obj in samples():
        for legacy in (False, True):
            p = os.path.join(outdir, "%s%s.pt" % (name, "-legacy" if legacy else ""))
            if legacy and name in ("sparse-csr", "meta"):
                continue  # the legacy writer refuses them
            torch.save(obj, p, _use_new_zipfile_serialization=not legacy)
            paths.append(p)
    return paths


# ---------------------------------------------------------------------------------------------
# Recording unpickler: torch.load(pickle_module=...) subclasses our Unpickler.


def shape(v, rec):
    g = rec.names.get(id(v))
    if g is not None:
        return "@" + g
    r = rec.results.get(id(v))
    if r is not None:
        return "result(%s)" % r
    if isinstance(v, tuple):
        return "(" + ", ".join(shape(x, rec) for x in v) + ("," if len(v) == 1 else "") + ")"
    return type(v).__name__


class Recorder:
    def __init__(self):
        self.uses = {}     # name -> {"reference", "construct"}
        self.calls = {}    # name -> set of argument shapes
        self.built = set() # names whose call results were given BUILD state
        self.names = {}
        self.results = {}
        self.keep = []

    def module(self):
        rec = self

        class R(pickle._Unpickler):
            def find_class(self, module, name):
                obj = super().find_class(module, name)
                key = "%s.%s" % (module, name) if "." not in name else "%s:%s" % (module, name)
                rec.names[id(obj)] = key
                rec.keep.append(obj)
                rec.uses.setdefault(key, set()).add("reference")
                return obj

            dispatch = dict(pickle._Unpickler.dispatch)

            def load_reduce(self):
                args, fn = self.stack[-1], self.stack[-2]
                g = rec.names.get(id(fn))
                if g:
                    rec.calls.setdefault(g, set()).add(shape(args, rec))
                pickle._Unpickler.load_reduce(self)
                if g:
                    rec.results[id(self.stack[-1])] = g
                    rec.keep.append(self.stack[-1])

            def load_newobj(self):
                cls = self.stack[-2]
                g = rec.names.get(id(cls))
                if g:
                    rec.uses[g].add("construct")
                pickle._Unpickler.load_newobj(self)

            def load_build(self):
                g = rec.results.get(id(self.stack[-2])) or rec.names.get(id(type(self.stack[-2])))
                rec.built.add(g or type(self.stack[-2]).__name__)
                pickle._Unpickler.load_build(self)

            dispatch[pickle.REDUCE[0]] = load_reduce
            dispatch[pickle.NEWOBJ[0]] = load_newobj
            dispatch[pickle.BUILD[0]] = load_build

        m = types.ModuleType("pickle")
        m.__dict__.update({k: v for k, v in vars(pickle).items() if not k.startswith("__")})
        m.Unpickler = R
        m.load = lambda f, **kw: R(f, **kw).load()
        return m

    def load(self, path):
        # torch 1.13's load replaces any pickle_module it is given by the pickle module it
        # imported, so the recording module stands in for that one while the file loads
        import torch.serialization as ts
        saved = ts.pickle
        ts.pickle = self.module()
        try:
            return ts.load(path)
        finally:
            ts.pickle = saved


def weights_only_allowlist():
    from torch import _weights_only_unpickler as w
    return set(w._get_allowed_globals())


def default_names():
    names = set()
    with open(DEFAULT) as f:
        for line in f:
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 2 and parts[0] in ("reference", "call", "construct"):
                names.add(parts[1])
    return names


# ---------------------------------------------------------------------------------------------
# The reviewed rules. Each called global needs one; each was read in the installed torch.

# A tensor made by one of the rebuild helpers: their call lines say `-> self`, which tags the
# result as an "instance" of the helper. No helper is construct-allowed, so the tag never permits
# BUILD state or mutation; it only lets another helper require "a tensor rebuilt here".
TENSOR = ("instance(torch._utils._rebuild_tensor_v2) | instance(torch._utils._rebuild_tensor) | "
          "instance(torch._utils._rebuild_meta_tensor_no_storage)")
HOOKS = "instance(collections.OrderedDict)"


def dtype_pattern(dtypes):
    return " | ".join("@" + d for d in sorted(dtypes))


def layout_names():
    import torch
    return sorted(str(v) for v in vars(torch).values() if isinstance(v, torch.layout))


def calls(dtypes):
    """{global: (comment lines, rule text)}. Rules use only what the helper's source needs."""
    import torch
    v2 = inspect.signature(torch._utils._rebuild_tensor_v2).parameters
    v2args = "(any, int, (*int), (*int), bool, %s)" % HOOKS
    if "metadata" in v2:
        v2args += " | (any, int, (*int), (*int), bool, %s, dict)" % HOOKS
    return {
        "torch._utils._rebuild_tensor_v2": ([
            "_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,",
            "backward_hooks): torch.tensor([]).set_(storage, offset, size, stride), then two plain",
            "attribute stores. storage is a persistent id the container checks (its class, key and",
            "size, and every view against it); backward_hooks is the empty OrderedDict torch.save",
            "writes (the container refuses a non-empty one: hooks run on backward).",
        ], v2args + " -> self"),
        "torch._utils._rebuild_tensor": ([
            "_rebuild_tensor(storage, storage_offset, size, stride): the pre-1.0 spelling,",
            "still admitted by weights_only; the same set_() without the attribute stores.",
        ], "(any, int, (*int), (*int)) -> self"),
        "torch._utils._rebuild_parameter": ([
            "_rebuild_parameter(data, requires_grad, backward_hooks): nn.Parameter(data,",
            "requires_grad) of a tensor rebuilt above, then the empty hooks dict.",
        ], "(%s, bool, %s)" % (TENSOR, HOOKS)),
        "torch._utils._rebuild_sparse_tensor": ([
            "_rebuild_sparse_tensor(layout, (indices, values, size)): compares layout with",
            "torch.sparse_coo and calls torch._sparse_coo_tensor_unsafe; torch.load validates the",
            "indices before it returns. Both tensors rebuilt above, size a torch.Size.",
        ], "(instance(torch.serialization._get_layout), (%s, %s, instance(torch.Size)))"
           % (TENSOR, TENSOR)),
        "torch._utils._rebuild_sparse_csr_tensor": ([
            "_rebuild_sparse_csr_tensor(layout, (crow_indices, col_indices, values, size)):",
            "the same for torch.sparse_csr (torch._sparse_csr_tensor_unsafe, validated by",
            "torch.load).",
        ], "(instance(torch.serialization._get_layout), (%s, %s, %s, instance(torch.Size)))"
           % (TENSOR, TENSOR, TENSOR)),
        "torch._utils._rebuild_meta_tensor_no_storage": ([
            "_rebuild_meta_tensor_no_storage(dtype, size, stride, requires_grad):",
            "torch.empty_strided on the meta device (no memory). dtype pinned to the dtypes below.",
        ], "(%s, (*int), (*int), bool) -> self" % dtype_pattern(dtypes)),
        "torch.serialization._get_layout": ([
            "_get_layout(name): a lookup in a dict of torch's own layout objects (torch.strided,",
            "torch.sparse_coo, ...) built from torch's namespace; the name is pinned to those.",
            "`-> self` only tags the result for the sparse rebuild helpers.",
        ], "(%s) -> self" % " | ".join('"%s"' % n for n in layout_names())),
        "torch.Size": ([
            "torch.Size((2, 3)): a tuple subclass of ints.",
        ], "((*int),) -> self"),
    }


# Globals weights_only admits that this policy leaves out, and why. None is written by torch.save.
LEFT_OUT = {
    "torch.Tensor": "REDUCE torch.Tensor(*args) and BUILD set_(*state) on it: legacy forms "
                    "torch.save no longer writes",
    "torch.nn.parameter.Parameter": "NEWOBJ Parameter(*args) then BUILD __setstate__, which "
                                    "can set _backward_hooks (run on backward); torch.save "
                                    "writes _rebuild_parameter instead",
}


# Written by torch.save but refused by this torch's weights_only, so refused here too. If a newer
# torch admits one, generation fails until it is classified with a reviewed rule.
NOT_ADMITTED = {
    "torch.device": "torch.save writes torch.device('cpu') as REDUCE torch.device('cpu'); "
                    "weights_only refuses it in this torch",
}


# ---------------------------------------------------------------------------------------------


def collect(samples_dir=None):
    rec = Recorder()
    with tempfile.TemporaryDirectory() as tmp:
        outdir = samples_dir or tmp
        os.makedirs(outdir, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            paths = write_all(outdir)
            for p in paths:
                rec.load(p)
    return paths, rec


def render(paths, rec):
    import torch
    allowed = weights_only_allowlist()
    dflt = default_names()
    problems = []
    for g in sorted(rec.uses):
        if g not in allowed and g not in dflt:
            problems.append("%s: recorded, but torch.load(weights_only=True) does not admit it" % g)
    for g in sorted(rec.built):
        if g != "collections.OrderedDict":
            problems.append("%s: BUILD on it; no reviewed rule" % g)
    for g in sorted(k for k, u in rec.uses.items() if "construct" in u):
        if g not in dflt:
            problems.append("%s: NEWOBJ of it; no reviewed rule" % g)

    dtypes = sorted(g for g in allowed if isinstance(eval_global(g), torch.dtype))
    rules = calls(dtypes)
    for g, shapes in sorted(rec.calls.items()):
        if g in dflt:
            continue
        if g not in rules:
            problems.append("%s called with %s: no reviewed rule" % (g, sorted(shapes)))
    for g in rules:
        if g not in allowed:
            problems.append("%s: has a rule, but weights_only does not admit it" % g)

    storages = sorted(g for g in allowed if g.endswith("Storage"))
    tensor_classes = sorted(g for g in allowed if g.endswith("Tensor") and g != "torch.Tensor")
    covered = set(rules) | set(storages) | set(tensor_classes) | set(dtypes) | set(LEFT_OUT) | dflt
    for g in sorted(NOT_ADMITTED):
        if g in allowed:
            problems.append("%s: now admitted by weights_only; give it a reviewed rule" % g)
    for g in sorted(allowed - covered):
        problems.append("%s: admitted by weights_only, not classified here" % g)
    seen_calls = {g for g in rec.calls}

    out = []
    w = out.append
    w("# pickleproof built-in policy \"torch\": tensors, parameters and state_dicts as torch.save")
    w("# writes them (zip and legacy formats), on top of \"default\".")
    w("#")
    w("# GENERATED by tools/gen_torch_policy.py from PyTorch %s: do not edit by hand." % torch.__version__.split("+")[0])
    w("# Regenerate with Debian's Python:   /usr/bin/python3 tools/gen_torch_policy.py")
    w("# Check it is current:               /usr/bin/python3 tools/gen_torch_policy.py --check")
    w("#")
    w("# How: %d files written by torch.save (state_dicts of %d kinds of nn module, tensors of" % (len(paths), len(modules())))
    w("# every dtype, views, sparse COO/CSR and meta tensors, parameters, OrderedDict, torch.Size,")
    w("# dtypes and layouts as values) were read back through a recording unpickler. Nothing here")
    w("# goes beyond torch.load(weights_only=True)'s own allowlist (torch/_weights_only_unpickler.py):")
    w("# every global below is on it, and every call has an argument pattern reviewed against the")
    w("# helper's source. Nothing here imports by name, opens files, or runs code it is given.")
    w("#")
    w("# Whole modules (torch.save(model)) pickle their classes (torch.nn.modules.linear.Linear, ...)")
    w("# and are refused here on purpose, as weights_only refuses them: list the classes you trust in")
    w("# a policy of your own (`pickleproof policy learn` writes one from trusted files).")
    w("#")
    w("# Persistent ids (storages) are not allowed by any line here: the PyTorch containers accept")
    w("# exactly ('storage', <storage class below>, key, location, numel) when the key's bytes exist,")
    w("# and check every _rebuild_tensor_v2 view against its storage (validator/torch.h).")
    w("#")
    w("# Admitted by weights_only but left out on purpose:")
    for g, why in sorted(LEFT_OUT.items()):
        for i, l in enumerate(textwrap.wrap("%s: %s" % (g, why), 92)):
            w("#   " + ("  " if i else "") + l)
    w("# Written by torch.save but refused by this torch's weights_only, so refused here too:")
    for g, why in sorted(NOT_ADMITTED.items()):
        for i, l in enumerate(textwrap.wrap("%s: %s" % (g, why), 92)):
            w("#   " + ("  " if i else "") + l)
    w("")
    w("policy torch")
    w("include default")
    w("")
    w("# ---- rebuild helpers and values built by REDUCE -----------------------------------------------")
    for g in sorted(rules):
        comment, pat = rules[g]
        for c in comment:
            w("# " + c)
        if g not in seen_calls:
            w("# (admitted by weights_only; not written by this torch.save)")
        w("call %s %s" % (g, pat))
    w("")
    w("# ---- storage classes -----------------------------------------------------------------------")
    w("# Values inside storage persistent ids, never called: torch.load maps a storage class to its")
    w("# dtype. torch.cuda.* in files saved from CUDA tensors.")
    for g in storages:
        w("reference %s" % g)
    w("")
    w("# ---- tensor type classes -----------------------------------------------------------------")
    w("# The legacy tar format (torch <= 0.3) names each tensor's type class in its tensors table;")
    w("# only looked up, never called.")
    for g in tensor_classes:
        w("reference %s" % g)
    w("")
    w("# ---- dtypes ---------------------------------------------------------------------------------")
    w("# torch.float32 pickles as GLOBAL torch float32: inert values. Exactly the dtypes weights_only")
    w("# admits in this torch (tensors of other dtypes are fine: their dtype is the storage class).")
    for g in dtypes:
        w("reference %s" % g)
    return "\n".join(out) + "\n", problems


def eval_global(g):
    import importlib
    mod, _, name = g.rpartition(".")
    try:
        return getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError):
        return None


def generate(samples):
    paths, rec = collect(samples)
    text, problems = render(paths, rec)
    return text, problems, "%d files" % len(paths)


def main():
    return policy_output.run("gen_torch_policy", __doc__, POLICY, generate)


if __name__ == "__main__":
    sys.exit(main())
