# label: cli
"""docs/pickleproof.1: every command of its EXAMPLES section runs, in a temporary directory with
generated sample files, and exits as the page says; the page covers every subcommand, limit,
format and environment variable, and renders without groff warnings."""
import os
import pickle
import re
import shutil
import subprocess

import pytest

CLI = os.environ.get("PICKLEPROOF")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MAN = os.path.join(ROOT, "docs", "pickleproof.1")
pytestmark = pytest.mark.skipif(not CLI, reason="PICKLEPROOF not set (run under ctest)")


def page():
    with open(MAN) as f:
        return f.read()


def unroff(line):
    return line.replace("\\-", "-").replace("\\(en", "-")


def examples():
    text = page().split(".SH EXAMPLES", 1)[1].split("\n.SH ", 1)[0]
    lines = [unroff(x) for x in text.splitlines()]
    out = []
    for i, line in enumerate(lines):
        if line.startswith("$ "):
            m = re.fullmatch(r"exit status (\d+)", lines[i + 1])
            assert m, "no exit status after %r" % line
            out.append((line[2:], int(m.group(1))))
    return out


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture
def workdir(tmp_path):
    import joblib
    import numpy as np
    from sklearn.linear_model import LinearRegression
    (tmp_path / ".git").mkdir()  # no pickleproof.toml from above the test directory
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Evil(), protocol=2))
    models = tmp_path / "models"
    models.mkdir()
    (models / "a.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    (models / "b.pkl").write_bytes(pickle.dumps(Evil(), protocol=4))
    np.save(models / "c.npy", np.zeros(3))
    est = LinearRegression().fit(np.arange(6.0).reshape(3, 2), np.arange(3.0))
    joblib.dump(est, tmp_path / "estimator.joblib")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.abspath(CLI), bindir / "pickleproof")
    return tmp_path


def test_examples_run(workdir):
    ex = examples()
    assert len(ex) >= 10
    env = dict(os.environ)
    env["PATH"] = str(workdir / "bin") + os.pathsep + env["PATH"]
    env.pop("NO_COLOR", None)
    env.pop("PICKLEPROOF_SANDBOX", None)
    for cmd, want in ex:
        r = subprocess.run(["bash", "-c", cmd], cwd=workdir, env=env, capture_output=True,
                           timeout=300)
        assert r.returncode == want, (cmd, r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert (workdir / "results.sarif").stat().st_size > 0


def test_page_covers_the_cli():
    text = unroff(page())
    for cmd in ("scan", "explain", "dump", "keygen", "sign", "verify", "policy", "version", "help"):
        assert re.search(r'^\.(B|BI|BR) "?%s\b' % cmd, text, re.M), cmd
    for word in ("PICKLEPROOF_SANDBOX", "NO_COLOR", "pickleproof.toml", "EXIT STATUS",
                 "--format", "--jobs", "--include", "--exclude", "--follow-symlinks", "--config",
                 "--no-config", "--color", "jsonl", "sarif", "--require-signature"):
        assert word in text, word
    for verdict in ("safe", "unsafe", "malformed", "limit", "unsigned", "bad-signature", "error"):
        assert ".B %s\n" % verdict in text, verdict
    r = subprocess.run([CLI, "scan", "--help"], capture_output=True)
    help_limits = re.search(r"limits: (.*?)\nexit", r.stdout.decode(), re.S).group(1).split()
    for name in help_limits:
        assert ".BR %s ,\n" % name in text or ".BR %s .\n" % name in text, name


def test_page_renders_cleanly():
    if not shutil.which("groff"):
        pytest.skip("no groff")
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", MAN], capture_output=True)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
