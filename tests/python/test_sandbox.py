# label: sandbox
"""The seccomp sandbox (issue 4), end to end through real helper processes.

- every forbidden action the test hook makes the child attempt after confinement (open, execve,
  socket, ptrace, mprotect/mmap with PROT_EXEC, a write to an fd not its own, i386 and x32 system
  calls) kills it and is reported as `sandbox-violation`;
- a memory bomb (the hook, and a real pickle under a small budget) gives `limit` sandbox-memory, a
  busy loop `limit` cpu-seconds or deadline-ms;
- garbage, oversized or lying output from the child is rejected or re-judged by the parent;
- the whole corpus gives identical reports (verdicts, findings, globals, errors) with the sandbox
  at every level and off.

Until the CLI has --sandbox this drives `pp_sandbox_selftest`, built beside the CLI, which calls
the same library entry (pp_sandbox_scan) and prints one JSON report per line.
"""

import glob
import json
import os
import pickle
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("PICKLEPROOF", os.path.join(ROOT, "build", "pickleproof"))
SELFTEST = os.path.join(os.path.dirname(CLI), "pp_sandbox_selftest")
SANITIZE = os.environ.get("PP_SANITIZE", "0").lower() in ("1", "on", "true", "yes")
SECCOMP = "seccomp-relaxed" if SANITIZE else "seccomp"
SAMPLE = os.path.join(ROOT, "samples", "malicious_os_system.pkl")


def scan(files, level="require", limits=(), hook=None, env_extra=None):
    env = dict(os.environ)
    env.pop("PICKLEPROOF_SANDBOX_TEST", None)
    if hook:
        env["PICKLEPROOF_SANDBOX_TEST"] = hook
    env.update(env_extra or {})
    cmd = [SELFTEST, "--sandbox=" + level] + ["--limit=" + l for l in limits] + list(files)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def one(**kw):
    (r,) = scan([SAMPLE], **kw)
    return r


def test_probe_finds_seccomp():
    p = subprocess.run([SELFTEST, "--probe"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "seccomp", p.stdout


@pytest.mark.parametrize(
    "hook", ["open", "execve", "socket", "ptrace", "mprotect_exec", "mmap_exec", "write_fd",
             "i386", "x32"])
def test_forbidden_action_is_killed(hook):
    r = one(hook=hook)
    assert r["verdict"] == "error", r
    assert r["error"]["name"] == "sandbox-violation", r
    assert r["findings"][0]["rule"] == "sandbox-violation"
    assert "SANDBOX VIOLATION" in r["error"]["message"]
    assert r["sandbox"] == SECCOMP


def test_process_level_reports_itself():
    r = one(level="process")
    assert r["sandbox"] == "process" and r["verdict"] == "unsafe"


def test_garbage_output_rejected():
    r = one(hook="garbage")
    assert r["verdict"] == "error" and r["error"]["name"] == "sandbox-error", r
    assert "rejected" in r["error"]["message"]


def test_oversized_output_rejected():
    r = one(hook="huge")
    assert r["verdict"] == "error" and r["error"]["name"] == "sandbox-error", r
    assert "more than" in r["error"]["message"]


def test_lying_child_is_rejudged():
    # the child claims "safe" and downgrades every finding; the parent re-checks the globals
    r = one(hook="lie")
    assert r["verdict"] == "unsafe", r
    assert any(f["rule"] == "sandbox-policy-mismatch" for f in r["findings"]), r


@pytest.mark.skipif(SANITIZE, reason="no RLIMIT_AS under sanitizers")
def test_memory_bomb_hook_is_a_memory_limit():
    r = one(hook="membomb", limits=["sandbox-memory=64M"])
    assert r["verdict"] == "limit" and r["error"]["limit"] == "sandbox-memory", r


@pytest.mark.skipif(SANITIZE, reason="no RLIMIT_AS under sanitizers")
def test_big_graph_under_small_budget_is_a_memory_limit(tmp_path):
    f = tmp_path / "big.pkl"
    f.write_bytes(pickle.dumps([tuple(range(5)) for _ in range(300000)], protocol=4))
    (ok,) = scan([str(f)])
    assert ok["verdict"] == "safe", ok
    (r,) = scan([str(f)], limits=["sandbox-memory=8M"])
    assert r["verdict"] == "limit" and r["error"]["limit"] == "sandbox-memory", r


def test_busy_loop_hits_cpu_limit():
    r = one(hook="spin", limits=["cpu-seconds=1", "deadline-ms=20000"])
    assert r["verdict"] == "limit" and r["error"]["limit"] == "cpu-seconds", r


def test_busy_loop_hits_deadline():
    r = one(hook="spin", limits=["deadline-ms=300"])
    assert r["verdict"] == "limit" and r["error"]["limit"] == "deadline-ms", r


def test_require_fails_closed_without_helper(tmp_path):
    r = one(env_extra={"PICKLEPROOF_SANDBOX_HELPER": str(tmp_path / "missing")})
    assert r["verdict"] == "error" and r["error"]["name"] == "sandbox-error", r
    assert "unavailable" in r["error"]["message"]


def corpus():
    pats = ["samples/*.pkl", "tests/data/bad/*.pkl", "fuzz/corpus/vm/*"]
    return sorted(f for p in pats for f in glob.glob(os.path.join(ROOT, p)))


@pytest.mark.parametrize("level", ["require", "auto", "process"])
def test_corpus_identical_with_and_without_sandbox(level):
    files = corpus()
    assert len(files) > 20
    off = scan(files, level="off")
    on = scan(files, level=level)
    assert len(off) == len(on) == len(files)
    want = SECCOMP if level != "process" else "process"
    for a, b in zip(off, on):
        assert a.pop("sandbox") == "off"
        assert b.pop("sandbox") == want
        assert a == b, a["path"]


def test_container_files_identical(tmp_path):
    # real producers where installed (numpy, joblib); skipped pieces are covered by the corpus
    np = pytest.importorskip("numpy")
    files = []
    np.save(tmp_path / "a.npy", np.arange(1000.0))
    np.savez_compressed(tmp_path / "b.npz", x=np.arange(100), y=np.ones((3, 3)))
    files += [str(tmp_path / "a.npy"), str(tmp_path / "b.npz")]
    try:
        import joblib

        joblib.dump({"a": np.arange(100.0)}, tmp_path / "c.joblib")
        joblib.dump({"a": np.arange(100.0)}, tmp_path / "d.joblib.gz", compress=3)
        files += [str(tmp_path / "c.joblib"), str(tmp_path / "d.joblib.gz")]
    except ImportError:
        pass
    off = scan(files, level="off")
    on = scan(files)
    for a, b in zip(off, on):
        a.pop("sandbox")
        b.pop("sandbox")
        assert a == b, a["path"]


DENY = os.path.join(os.path.dirname(CLI), "pp_deny_seccomp")


def scan_denied(level):
    # an outer filter refuses seccomp(): libseccomp still reports support, only a real probe
    # child can tell
    p = subprocess.run([DENY, SELFTEST, "--sandbox=" + level, SAMPLE], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_require_fails_closed_when_seccomp_is_refused():
    r = scan_denied("require")
    assert r["verdict"] == "error" and r["error"]["name"] == "sandbox-error", r
    assert "seccomp() or no-new-privs refused" in r["error"]["message"], r


def test_auto_degrades_to_process_when_seccomp_is_refused():
    r = scan_denied("auto")
    assert r["sandbox"] == "process" and r["verdict"] == "unsafe", r
