# label: cli
"""docs/ci/github-actions.yml, the example CI workflow, checked without GitHub:
- it parses, runs in Debian 12 on an Ubuntu runner, may upload SARIF, and every script or
  repository path its steps run exists; its CMake configure command works on this tree;
- its scan step, run by bash as the runner would (GITHUB_OUTPUT, `shell: bash`) with a stand-in
  CLI that exits 0, 1 or 2, records that status; the steps' `if:` conditions, evaluated for
  each status, upload SARIF for 0 and 1, upload the models only for 0, and fail the job
  otherwise;
- with the real CLI, once it writes SARIF for directories, the same step gives 0 for a
  directory of safe models and 1 when a malicious pickle is added, with a SARIF 2.1.0 log.
"""

import json
import os
import pickle
import re
import shlex
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("PICKLEPROOF", os.path.join(ROOT, "build", "pickleproof"))
WORKFLOW = os.path.join(ROOT, "docs", "ci", "github-actions.yml")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def load():
    with open(WORKFLOW) as f:
        wf = yaml.safe_load(f)
    (name, job), = wf["jobs"].items()
    return wf, job


def step(job, uses=None, sid=None):
    found = [s for s in job["steps"]
             if (uses and s.get("uses", "").split("@")[0] == uses) or (sid and s.get("id") == sid)]
    assert len(found) == 1, (uses, sid, found)
    return found[0]


def evaluate(expr, outputs):
    """The subset of GitHub's expression language the workflow uses: ||, &&, ==, != between a
    steps.<id>.outputs.<name> and a quoted literal, and the status functions (every earlier step
    succeeded here). Anything else fails the test, so the workflow stays within what is checked."""
    expr = expr.strip()
    if expr.startswith("${{") and expr.endswith("}}"):
        expr = expr[3:-2].strip()
    if "||" in expr:
        return any(evaluate(e, outputs) for e in expr.split("||"))
    if "&&" in expr:
        return all(evaluate(e, outputs) for e in expr.split("&&"))
    if expr in ("always()", "success()"):
        return True
    if expr in ("failure()", "cancelled()"):
        return False
    m = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)\s*(==|!=)\s*'([^']*)'", expr)
    assert m, f"expression outside the checked subset: {expr!r}"
    value = outputs.get(m.group(1), {}).get(m.group(2), "")
    return (value == m.group(4)) == (m.group(3) == "==")


def test_workflow_shape():
    wf, job = load()
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert "push" in triggers and "pull_request" in triggers
    assert wf["permissions"]["security-events"] == "write"
    assert job["runs-on"].startswith("ubuntu-") and job["container"] == "debian:12"
    assert job["defaults"]["run"]["shell"] == "bash"
    uses = [s["uses"].split("@")[0] for s in job["steps"] if "uses" in s]
    assert uses == ["actions/checkout", "github/codeql-action/upload-sarif",
                    "actions/upload-artifact"]
    for s in job["steps"]:
        assert "name" in s or "uses" in s
        if "uses" in s:
            assert re.fullmatch(r"[\w./-]+@v\d+", s["uses"]), s["uses"]


def test_scripts_and_paths_exist():
    _, job = load()
    runs = [s["run"] for s in job["steps"] if "run" in s]
    text = "\n".join(runs)
    scripts = re.findall(r"\bbash\s+(\S+)", text)
    assert "tools/deps.sh" in scripts
    for path in scripts:
        assert os.path.isfile(os.path.join(ROOT, path)), path
    # the build step's directory is where the scan step runs the CLI from
    build = re.search(r"cmake -S \. -B (\S+)", text).group(1)
    assert re.search(rf"cmake --build {re.escape(build)}\b", text)
    scan = step(job, sid="scan")["run"]
    assert f"{build}/{os.path.basename(CLI)} scan" in scan


def test_configure_command_works(tmp_path):
    _, job = load()
    text = "\n".join(s["run"] for s in job["steps"] if "run" in s)
    line = re.search(r"^cmake -S \. -B \S+.*$", text, re.M).group(0)
    args = shlex.split(line)
    args[args.index("-B") + 1] = str(tmp_path / "b")
    p = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "CMAKE_BUILD_TYPE:STRING=Release" in (tmp_path / "b" / "CMakeCache.txt").read_text()


def run_scan_step(tmp_path, cli_script=None, cli_link=None):
    """Runs the scan step's script the way the runner does, in a workspace whose build directory
    holds `cli_script` (a stand-in) or a link to the real CLI. Returns the step outputs."""
    _, job = load()
    scan = step(job, sid="scan")
    build = re.search(r"cmake -S \. -B (\S+)", "\n".join(
        s["run"] for s in job["steps"] if "run" in s)).group(1)
    ws = tmp_path
    (ws / build).mkdir(exist_ok=True)
    exe = ws / build / os.path.basename(CLI)
    if exe.exists() or exe.is_symlink():
        exe.unlink()
    if cli_script:
        exe.write_text(cli_script)
        exe.chmod(0o755)
    else:
        os.symlink(cli_link, exe)
    out = ws / "github_output"
    out.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKLEPROOF")}
    env["GITHUB_OUTPUT"] = str(out)
    # `shell: bash` runs `bash --noprofile --norc -eo pipefail {0}`
    script = ws / "step.sh"
    script.write_text(scan["run"])
    p = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=ws,
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr  # the step itself always succeeds
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    return {"scan": outputs}


@pytest.mark.parametrize("status", [0, 1, 2])
def test_gating_on_exit_status(tmp_path, status):
    _, job = load()
    stub = ("#!/bin/sh\n"
            f"printf '%s\\n' \"$@\" > \"$(dirname \"$0\")/args\"\n"
            "echo '{\"version\": \"2.1.0\", \"runs\": []}'\n"
            f"exit {status}\n")
    outputs = run_scan_step(tmp_path, cli_script=stub)
    code = list(outputs["scan"].values())
    assert code == [str(status)], outputs
    args = (tmp_path / "build" / "args").read_text().split()
    sarif = step(job, uses="github/codeql-action/upload-sarif")
    artifact = step(job, uses="actions/upload-artifact")
    assert args[:3] == ["scan", "--format", "sarif"]
    assert artifact["with"]["path"].rstrip("/") in [a.rstrip("/") for a in args[3:]]
    written = tmp_path / sarif["with"]["sarif_file"]
    assert json.loads(written.read_text())["version"] == "2.1.0"

    ran = {s.get("name", s.get("uses")): evaluate(s.get("if", "success()"), outputs)
           for s in job["steps"]}
    assert ran[sarif["name"]] == (status in (0, 1))
    assert ran[artifact["name"]] == (status == 0)
    fail = [s for s in job["steps"] if "exit 1" in s.get("run", "")]
    assert len(fail) == 1 and ran[fail[0]["name"]] == (status != 0)
    # the failing step really fails
    env = dict(os.environ, CODE=str(status))
    p = subprocess.run(["bash", "-eo", "pipefail", "-c", fail[0]["run"]], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 1 and f"status {status}" in p.stdout


def cli_writes_sarif():
    p = subprocess.run([CLI, "scan", "--help"], capture_output=True, text=True)
    return "sarif" in p.stdout + p.stderr


@pytest.mark.skipif(not cli_writes_sarif(), reason="this CLI has no --format sarif yet")
def test_real_scan_step(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "a.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, 4))
    (models / "b.pkl").write_bytes(pickle.dumps([1, 2, 3], 2))
    outputs = run_scan_step(tmp_path, cli_link=os.path.abspath(CLI))
    assert outputs["scan"]["exit-code"] == "0", outputs
    log = json.loads((tmp_path / "results.sarif").read_text())
    assert log["version"] == "2.1.0"
    (models / "evil.pkl").write_bytes(pickle.dumps(Evil(), 2))
    outputs = run_scan_step(tmp_path, cli_link=os.path.abspath(CLI))
    assert outputs["scan"]["exit-code"] == "1", outputs
    log = json.loads((tmp_path / "results.sarif").read_text())
    assert "posix.system" in json.dumps(log["runs"][0]["results"])
