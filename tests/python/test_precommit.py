# label: cli
"""The pre-commit hooks of .pre-commit-hooks.yaml, run by Debian's pre-commit in a throwaway git
repository, the way a project using them would.

The hook definitions are committed verbatim into a scratch "hooks" repository that the scratch
project's .pre-commit-config.yaml points at (pre-commit clones it locally: language `system` needs
no download), with the CLI under test on PATH as `pickleproof`. Then:
- a commit of a safe model passes; a commit adding a malicious pickle is refused (the hook exits
  1, pre-commit prints the finding, HEAD does not move); `pre-commit run` on it exits 1;
- files outside the name pattern never reach the hook, model files with compressor suffixes and
  any capitalisation do;
- `pickleproof-binary` scans a binary file whatever its name and skips text files.
"""

import os
import pickle
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("PICKLEPROOF", os.path.join(ROOT, "build", "pickleproof"))
HOOKS = os.path.join(ROOT, ".pre-commit-hooks.yaml")
PRE_COMMIT = shutil.which("pre-commit") or "/usr/bin/pre-commit"


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def run(cmd, env, cwd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    if ok:
        assert p.returncode == 0, f"{cmd}\nexit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture
def env(tmp_path):
    assert os.path.exists(PRE_COMMIT), "pre-commit is missing: bash tools/deps.sh installs it"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.abspath(CLI), bindir / "pickleproof")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Test\n\temail = test@example.invalid\n"
                         "[init]\n\tdefaultBranch = main\n")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PICKLEPROOF"))}
    e.update(PATH=f"{bindir}:/usr/bin:/bin", GIT_CONFIG_GLOBAL=str(gitconfig),
             GIT_CONFIG_NOSYSTEM="1", PRE_COMMIT_HOME=str(tmp_path / "cache"),
             PRE_COMMIT_COLOR="never", NO_COLOR="1", HOME=str(tmp_path))
    return e


@pytest.fixture
def hooks_repo(tmp_path, env):
    d = tmp_path / "hooks"
    d.mkdir()
    shutil.copy(HOOKS, d / ".pre-commit-hooks.yaml")
    run(["git", "init", "-q"], env, d)
    run(["git", "add", "."], env, d)
    run(["git", "commit", "-q", "-m", "hooks"], env, d)
    return d, run(["git", "rev-parse", "HEAD"], env, d).stdout.strip()


@pytest.fixture
def project(tmp_path, env, hooks_repo):
    repo, rev = hooks_repo
    d = tmp_path / "project"
    d.mkdir()
    run(["git", "init", "-q"], env, d)
    (d / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {repo}\n    rev: {rev}\n    hooks:\n      - id: pickleproof\n")
    run([PRE_COMMIT, "install"], env, d)
    return d


def head_count(env, d):
    return int(run(["git", "rev-list", "--count", "HEAD"], env, d).stdout)


def test_hook_definitions():
    hooks = {h["id"]: h for h in yaml.safe_load(open(HOOKS))}
    assert set(hooks) == {"pickleproof", "pickleproof-binary"}
    for h in hooks.values():
        assert h["language"] == "system" and h["entry"] == "pickleproof scan"
    pat = re.compile(hooks["pickleproof"]["files"])
    for name in ["m.pkl", "dir/m.PKL", "m.pickle", "m.joblib", "m.jbl", "m.joblib.xz", "m.pkl.gz",
                 "m.pt", "m.pth", "pytorch_model.bin", "m.ckpt", "a.npy", "a.npz", "m.sav",
                 "m.dat", "m.joblib.lz4", "m.dill"]:
        assert pat.search(name), name
    for name in ["README.md", "train.py", "pkl", "m.pkl.txt", "m.pt.orig", "image.png", "m.gz"]:
        assert not pat.search(name), name


def test_commit_blocked_by_malicious_pickle(env, project):
    safe = {"weights": [0.25, 0.5], "layers": 3}
    (project / "model.pkl").write_bytes(pickle.dumps(safe, 4))
    (project / "README.md").write_text("a model\n")
    run(["git", "add", "."], env, project)
    p = run(["git", "commit", "-m", "safe model"], env, project)
    assert re.search(r"pickleproof \(model files\)\.+Passed", p.stdout + p.stderr), p.stderr
    assert head_count(env, project) == 1

    # compressor suffix and capitals still match; raw pickle bytes in a ".PT" file
    (project / "weights.PT").write_bytes(pickle.dumps(Evil(), 2))
    run(["git", "add", "weights.PT"], env, project)
    p = run(["git", "commit", "-m", "evil"], env, project, ok=False)
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert re.search(r"pickleproof \(model files\)\.+Failed", out), out
    assert "exit code: 1" in out and "weights.PT" in out and "posix.system" in out, out
    assert head_count(env, project) == 1  # nothing committed

    p = run([PRE_COMMIT, "run", "--files", "weights.PT", "model.pkl"], env, project, ok=False)
    assert p.returncode == 1 and "posix.system" in p.stdout, p.stdout
    assert re.search(r"model\.pkl: SAFE", p.stdout), p.stdout


def test_only_model_names_reach_the_hook(env, project):
    # A malicious pickle under a name outside the pattern is not passed: that is what the
    # pickleproof-binary hook is for.
    (project / "notes.txt").write_text("text\n")
    (project / "blob.data").write_bytes(pickle.dumps(Evil(), 2))
    run(["git", "add", "."], env, project)
    p = run(["git", "commit", "-m", "no models"], env, project)
    assert re.search(r"pickleproof \(model files\)\.+\(no files to check\)Skipped",
                     p.stdout + p.stderr), p.stderr

    (project / "archive.joblib.gz").write_bytes(b"not a model at all")
    run(["git", "add", "."], env, project)
    p = run(["git", "commit", "-m", "bad"], env, project, ok=False)
    out = p.stdout + p.stderr  # git shows the hook's output on stderr
    assert p.returncode == 1 and "archive.joblib.gz: MALFORMED" in out, out


def test_binary_hook_scans_every_binary_file(env, project, hooks_repo):
    repo, rev = hooks_repo
    (project / "notes.txt").write_text("text\n")
    (project / "blob.data").write_bytes(pickle.dumps(Evil(), 2))
    (project / "ok.data").write_bytes(pickle.dumps([1, 2, 3], 2))
    run(["git", "add", "."], env, project)
    # try-repo: how pre-commit runs one hook of a hooks repository before adopting it
    p = run([PRE_COMMIT, "try-repo", str(repo), "pickleproof-binary", "--ref", rev,
             "--files", "notes.txt", "ok.data"], env, project)
    assert re.search(r"pickleproof \(every binary file\)\.+Passed", p.stdout), p.stdout
    p = run([PRE_COMMIT, "try-repo", str(repo), "pickleproof-binary", "--ref", rev, "--all-files",
             "--verbose"], env, project, ok=False)
    assert p.returncode == 1 and "blob.data" in p.stdout and "posix.system" in p.stdout, p.stdout
    assert "notes.txt" not in p.stdout.split("Failed", 1)[1], p.stdout
