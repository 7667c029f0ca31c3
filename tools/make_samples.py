#!/usr/bin/python3
"""Writes the small sample files under samples/ (committed; rerun to regenerate).

Safe samples come from the real picklers; malicious ones are assembled byte by byte so that
nothing here ever builds a callable that would run."""
import collections
import datetime
import decimal
import os
import pickle
import sys

import numpy as np

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples")


def write(name, data):
    with open(os.path.join(here, name), "wb") as f:
        f.write(data)


rng = np.random.default_rng(0)
model = {
    "weights": rng.standard_normal((4, 3)).astype(np.float32),
    "bias": np.arange(3, dtype=np.float64),
    "labels": np.array([1, 0, 1], dtype=np.int64),
    "meta": collections.OrderedDict(name="tiny", created=datetime.date(2026, 1, 1)),
    "lr": decimal.Decimal("0.001"),
}
write("safe_numpy_dict.pkl", pickle.dumps(model, protocol=4))
write("safe_numpy_dict_p2.pkl", pickle.dumps(model, protocol=2))

# cposix\nsystem\n (S'echo pwned'\n tR.  -- os.system("echo pwned") at protocol 0
write("malicious_os_system.pkl", b"cposix\nsystem\n(S'echo pwned'\ntR.")
# Protocol 2 with the Python-2 module name that _compat_pickle renames to builtins.eval
write("malicious_builtin_eval_p2.pkl",
      b"\x80\x02c__builtin__\neval\nq\x00X\x0e\x00\x00\x00print('pwned')q\x01\x85q\x02Rq\x03.")
# Protocol 4 dotted attribute path: pathlib + "os.system" resolves to os.system
write("malicious_dotted_p4.pkl",
      b"\x80\x04\x8c\x07pathlib\x94\x8c\tos.system\x94\x93\x94\x8c\necho pwned\x94\x85\x94R\x94.")
