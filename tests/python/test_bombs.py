# label: malicious
"""Resource bombs (tests/python/bombs.py) through the CLI, each held to what the issue promises:
a `limit` verdict naming the limit (or, for a length the file cannot hold, `malformed` naming
the error), with the CLI process (and so its sandboxed parser) under RLIMIT_AS 256 MiB in the
normal build, and RLIMIT_CPU 10 s in every build as a hang guard (not a timing assertion;
bench/bench_bombs.py prints times and peak memory). test_malicious.py covers the same VM bombs
for speed and linear memory at a million elements; this file adds the hash bombs, the container
bombs and the memory cap."""
import json
import os
import resource
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bombs  # noqa: E402

PICKLEPROOF = os.environ.get("PICKLEPROOF")
SANITIZED = os.environ.get("PP_SANITIZE", "").lower() in ("1", "on", "true", "yes")
MEMORY = 256 << 20
CPU = 10

pytestmark = pytest.mark.skipif(not PICKLEPROOF, reason="PICKLEPROOF is not set")


def _limits():
    resource.setrlimit(resource.RLIMIT_CPU, (CPU, CPU))
    if not SANITIZED:  # ASan reserves terabytes of address space for its shadow
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


@pytest.mark.parametrize("name,build,opts,verdict,what", bombs.BOMBS, ids=[b[0] for b in bombs.BOMBS])
def test_bomb(tmp_path, name, build, opts, verdict, what):
    path = build(str(tmp_path))
    p = subprocess.run([PICKLEPROOF, "scan", "--format", "json", *opts, path],
                       capture_output=True, preexec_fn=_limits, timeout=120)
    assert p.returncode == 1, (p.returncode, p.stderr.decode(errors="replace")[-2000:])
    f = json.loads(p.stdout)["files"][0]
    ctx = json.dumps(f)[:2000]
    assert f["verdict"] == verdict, ctx
    if verdict == "limit":
        assert f["error"]["name"] == "limit-exceeded" and f["error"]["limit"] == what, ctx
    else:
        assert f["error"]["name"] == what, ctx
    assert f["sandbox"] in ("seccomp", "seccomp-relaxed"), ctx
