"""Safe loading of Python model files.

    obj = pickleproof.load("model.joblib", policy="sklearn")
    rep = pickleproof.scan("model.pt", policy="torch")

Every file is judged first, in a seccomp sandbox, against an allowlist policy; signatures are
checked when a key is given; then the objects are built from the judged graph, calling only what
the policy allows. Anything else raises UnsafePickleError.
"""

import json
import os
import pickle

from . import _native

__all__ = ["load", "loads", "scan", "untrusted_globals", "Report", "Finding", "UnsafePickleError"]
__version__ = _native.version

_here = os.path.dirname(os.path.abspath(__file__))
_helper = os.path.join(_here, "pickleproof-sandbox")
if os.path.exists(_helper) and not os.environ.get("PICKLEPROOF_SANDBOX_HELPER"):
    _native.set_helper(_helper)

# Rules that say "this global (or its use) is not in the policy": what a policy would need.
_POLICY_RULES = ("global-not-allowed", "call-not-allowed", "construct-not-allowed",
                 "argument-not-allowed", "build-not-allowed", "mutation-not-allowed")


class Finding(dict):
    """One finding: rule, severity, global, opcode, offset, stream, message."""

    __getattr__ = dict.get

    def __repr__(self):
        return "Finding(%s)" % ", ".join("%s=%r" % kv for kv in self.items())


class Report:
    """The verdict on one file, as `pickleproof scan --format json` prints it."""

    def __init__(self, doc):
        self._doc = doc
        self.path = doc.get("path")
        self.verdict = doc.get("verdict")
        self.container = doc.get("container")
        self.findings = [Finding(f) for f in doc.get("findings", [])]
        self.globals = list(doc.get("globals", []))
        self.signature = doc.get("signature")
        self.sandbox = doc.get("sandbox")
        self.policy = list(doc.get("policy", []))
        self.arrays = list(doc.get("arrays", []))
        self.error = doc.get("error")

    @property
    def safe(self):
        return self.verdict == "safe"

    def to_dict(self):
        return json.loads(json.dumps(self._doc))

    def to_json(self, **kw):
        return json.dumps(self._doc, **kw)

    def __bool__(self):
        return self.safe

    def __repr__(self):
        return "<Report %s: %s, %d findings>" % (self.path, self.verdict, len(self.findings))


class UnsafePickleError(pickle.UnpicklingError):
    """The file was rejected: `verdict`, `rule`, `global_name` (also `getattr(e, "global")`),
    `offset`, `stream`, and the whole `report`."""

    def __init__(self, report):
        self.report = report
        self.verdict = report.verdict
        first = _deciding_finding(report)
        self.rule = first.get("rule") if first else report.verdict
        self.global_name = first.get("global") if first else None
        setattr(self, "global", self.global_name)
        self.offset = first.get("offset") if first else None
        self.stream = first.get("stream") if first else None
        msg = "%s: %s" % (report.path, report.verdict)
        if first:
            msg += ": %s" % first.get("rule")
            if self.global_name:
                msg += " %s" % self.global_name
            if self.offset is not None:
                msg += " at offset %s" % self.offset
            if first.get("message"):
                msg += " (%s)" % first.get("message")
        super().__init__(msg)


_SEVERITY = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def _deciding_finding(report):
    if not report.findings:
        return None
    return min(report.findings, key=lambda f: _SEVERITY.get(f.get("severity"), 5))


def _policies(policy):
    if policy is None:
        return ["default"]
    if isinstance(policy, (str, os.PathLike)):
        return [os.fspath(policy)]
    return [os.fspath(p) for p in policy]


def _keys(key):
    if key is None:
        return []
    if isinstance(key, (str, os.PathLike)):
        return [os.fspath(key)]
    return [os.fspath(k) for k in key]


def _limits(limits):
    if not limits:
        return []
    return ["%s=%s" % (k, v) for k, v in dict(limits).items()]


def _sandbox(sandbox):
    env = os.environ.get("PICKLEPROOF_SANDBOX")
    return sandbox or env or "require"


def _torch_storage(storage_type, data):
    from . import _torch
    return _torch.storage(storage_type, data)


def _raise_for(report):
    err = report.error or {}
    if report.verdict == "error" and err.get("name") == "io-error":
        msg = err.get("message", "cannot read")
        cls = FileNotFoundError if "No such file" in msg else OSError
        raise cls("%s: %s" % (report.path, msg))
    raise UnsafePickleError(report)


def scan(file, policy=None, *, key=None, require_signature=False, signature=None, limits=None,
         sandbox=None):
    """Judges a file (path) or bytes without loading anything; returns a Report."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        doc = _native.scan(None, bytes(file), _policies(policy), _limits(limits),
                           _sandbox(sandbox), [], False, None)
    else:
        doc = _native.scan(os.fspath(file), None, _policies(policy), _limits(limits),
                           _sandbox(sandbox), _keys(key), bool(require_signature),
                           os.fspath(signature) if signature else None)
    return Report(json.loads(doc))


def load(file, policy=None, *, key=None, require_signature=False, signature=None, mmap_mode=None,
         limits=None, sandbox=None):
    """Loads a pickle, joblib, .npy/.npz or PyTorch file the way its own loader would, calling
    only what `policy` allows. mmap_mode="r" gives read-only numpy arrays mapped over the
    verified bytes instead of copies. Raises UnsafePickleError on any rejection."""
    if mmap_mode not in (None, "r"):
        raise ValueError("mmap_mode must be None or 'r'")
    if hasattr(file, "read") and not isinstance(file, (str, bytes, os.PathLike)):
        if key is not None or require_signature:
            raise ValueError("signatures need a path (the signature sits beside the file)")
        return loads(file.read(), policy, limits=limits, sandbox=sandbox)
    doc, obj = _native.load(os.fspath(file), None, _policies(policy), _limits(limits),
                            _sandbox(sandbox), _keys(key), bool(require_signature),
                            os.fspath(signature) if signature else None, mmap_mode == "r",
                            _torch_storage)
    report = Report(json.loads(doc))
    if not report.safe:
        _raise_for(report)
    _after(report)
    return obj


def _after(report):
    if (report.container or "").startswith("pytorch"):
        from . import _torch
        _torch.after_load()


def loads(data, policy=None, *, limits=None, sandbox=None):
    """Loads bytes as pickle.loads would (or any container, detected from the content)."""
    doc, obj = _native.load(None, bytes(data), _policies(policy), _limits(limits),
                            _sandbox(sandbox), [], False, None, False, _torch_storage)
    report = Report(json.loads(doc))
    if not report.safe:
        _raise_for(report)
    _after(report)
    return obj


def untrusted_globals(file, policy=None, **kw):
    """The globals a file uses that `policy` does not allow, sorted: what a policy would have to
    add (review each before trusting it)."""
    rep = scan(file, policy, **kw)
    if rep.verdict not in ("safe", "unsafe"):
        _raise_for(rep)
    return sorted({f["global"] for f in rep.findings
                   if f.get("rule") in _POLICY_RULES and f.get("global")})
