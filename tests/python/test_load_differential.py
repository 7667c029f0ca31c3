# label: load
"""Differential loading: every pickle of the differential corpus (gen_pickles.py: generated and
mutated, protocols 0-5, hand-made opcode programs) that pickleproof accepts under a policy
allowing the corpus's own classes must load into the same object graph as pickle.loads builds:
same types, values, sharing and cycles; and where pickle.loads raises, pickleproof.loads raises."""
import inspect
import warnings
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import pickleproof as pp

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_pickles  # noqa: E402  (the corpus classes must be importable for both loaders)

SANITIZE = os.environ.get("PP_SANITIZE") in ("1", "ON", "TRUE", "true")
BASE, MUTANTS = (600, 600) if SANITIZE else (2500, 2500)
if os.environ.get("PP_LOAD_DIFF"):  # longer runs: PP_LOAD_DIFF=base,mutants,seed
    BASE, MUTANTS, SEED = (int(x, 0) for x in os.environ["PP_LOAD_DIFF"].split(","))
else:
    SEED = gen_pickles.DEFAULT_SEED


def corpus_policy(tmp_path):
    lines = ["policy corpus", "include default"]
    for name, obj in vars(gen_pickles).items():
        if inspect.isclass(obj) and obj.__module__ == "gen_pickles":
            lines.append("construct gen_pickles.%s" % name)
            lines.append("call gen_pickles.%s" % name)
    lines.append("call gen_pickles.module_function")
    lines.append("call gen_pickles._state_setter")
    path = tmp_path / "corpus.policy"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def same(a, b, seen=None):
    """Structural equality of two object graphs, sharing included (a bijection of ids)."""
    if seen is None:
        seen = {}
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (int, str, bytes, type(None), bool)) and not hasattr(a, "__dict__"):
        return a == b
    if id(a) in seen:
        return seen[id(a)] is b
    seen[id(a)] = b
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape or a.strides != b.strides:
            return False
        if a.dtype.hasobject:
            return all(same(x, y, seen) for x, y in zip(a.flat, b.flat))
        return a.tobytes() == b.tobytes()
    if isinstance(a, (np.generic, np.dtype)):
        return pickle.dumps(a) == pickle.dumps(b)
    if isinstance(a, (list, tuple)):
        if len(a) != len(b) or not all(same(x, y, seen) for x, y in zip(a, b)):
            return False
    elif isinstance(a, dict):
        if len(a) != len(b) or not all(same(ka, kb, seen) and same(a[ka], b[kb], seen)
                                       for ka, kb in zip(a, b)):
            return False
    elif isinstance(a, (set, frozenset)):
        if len(a) != len(b) or repr(sorted(map(repr, a))) != repr(sorted(map(repr, b))):
            return False
    elif isinstance(a, (bytearray, memoryview)):
        if bytes(a) != bytes(b):
            return False
    elif not hasattr(a, "__dict__") and not hasattr(type(a), "__slots__"):
        try:
            return a == b or repr(a) == repr(b)
        except Exception:
            return repr(a) == repr(b)
    if hasattr(a, "__dict__") and not same(vars(a), vars(b), seen):
        return False
    for slot in getattr(type(a), "__slots__", ()):
        if hasattr(a, slot) != hasattr(b, slot):
            return False
        if hasattr(a, slot) and not same(getattr(a, slot), getattr(b, slot), seen):
            return False
    return True


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_corpus_loads_like_pickle(tmp_path):
    corpus = tmp_path / "corpus"
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run([sys.executable, os.path.join(HERE, "gen_pickles.py"), str(corpus),
                    "--base", str(BASE), "--mutants", str(MUTANTS), "--seed", hex(SEED)],
                   check=True, env=env)
    policy = ["default", corpus_policy(tmp_path)]
    stats = {"accepted": 0, "equal": 0, "both-raise": 0, "rejected": 0, "refused-crash": 0,
             "cpython-out-of-memory": 0}
    mismatches, refused = [], []
    for name in sorted(os.listdir(corpus)):
        data = (corpus / name).read_bytes()
        rep = pp.scan(data, policy, sandbox="off")
        if rep.verdict != "safe":
            stats["rejected"] += 1
            continue
        stats["accepted"] += 1
        try:
            got, gerr = pp.loads(data, policy, sandbox="off"), None
        except pp.UnsafePickleError as e:
            mismatches.append((name, "rejected on load: %s" % e))
            continue
        except Exception as e:
            got, gerr = None, e
        if gerr and ("state holds" in str(gerr) or "state refused" in str(gerr)):
            # numpy's ndarray.__setstate__ would crash this very process on such a state:
            # pickleproof refuses it, pickle.loads is not asked
            stats["refused-crash"] += 1
            refused.append(name)
            continue
        try:
            want, werr = pickle.loads(data), None
        except MemoryError:
            stats["cpython-out-of-memory"] += 1  # the C unpickler's memo for a huge index
            continue
        except Exception as e:
            want, werr = None, e
        if werr or gerr:
            if werr and gerr:
                stats["both-raise"] += 1
            else:
                mismatches.append((name, "pickle: %r, pickleproof: %r" % (werr, gerr)))
            continue
        if same(got, want):
            stats["equal"] += 1
        else:
            mismatches.append((name, "differs: %r vs %r" % (got, want)))
    print(stats)
    # numpy-written states are never refused: only mutants are
    assert not [n for n in refused if n.startswith("b")], refused
    assert stats["accepted"] > BASE // 2
    for name, why in mismatches:
        print(name, why[:300])
    assert not mismatches, mismatches[:20]
