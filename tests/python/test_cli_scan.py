# label: cli
"""`pickleproof scan` as people and CI jobs use it: directory walks, content detection, globs,
links, stdin, parallel workers with a deterministic order, every verdict's exit code, usage
errors, the four output formats (json/jsonl checked against docs/schema/report.schema.json,
SARIF against the official SARIF 2.1.0 schema), and pickleproof.toml."""
import copy
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import zlib

import jsonschema
import numpy as np
import pytest

CLI = os.environ.get("PICKLEPROOF")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SAMPLES = os.path.join(ROOT, "samples")
pytestmark = pytest.mark.skipif(not CLI, reason="PICKLEPROOF not set (run under ctest)")

with open(os.path.join(ROOT, "docs", "schema", "report.schema.json")) as _f:
    REPORT_SCHEMA = json.load(_f)
# The OASIS SARIF 2.1.0 schema (errata 01, the one GitHub code scanning links to), vendored from
# oasis-tcs/sarif-spec sarif-2.1/schema/sarif-schema-2.1.0.json at commit e0583813.
with open(os.path.join(ROOT, "tests", "data", "sarif-schema-2.1.0.json")) as _f:
    SARIF_SCHEMA = json.load(_f)
FILE_SCHEMA = {"$ref": "#/definitions/file", "definitions": REPORT_SCHEMA["definitions"]}


def run(*args, cwd=None, env=None, stdin=None):
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.pop("PICKLEPROOF_SANDBOX", None)
    if env:
        e.update(env)
    return subprocess.run([CLI, *args], capture_output=True, timeout=300, cwd=cwd, env=e,
                          input=stdin)


def scan(*args, **kw):
    return run("scan", "--no-config", *args, **kw)


def doc(r):
    d = json.loads(r.stdout)
    jsonschema.validate(d, REPORT_SCHEMA)
    return d


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


SAFE = pickle.dumps({"w": [1.0, 2.0], "name": "m"}, protocol=4)
EVIL = pickle.dumps(Evil(), protocol=2)


@pytest.fixture
def tree(tmp_path):
    """models/ with safe and unsafe files in nested directories, a pickle with a misleading
    name, text files, a symlink, and the joblib/npy kinds."""
    import joblib
    m = tmp_path / "models"
    (m / "sub" / "deeper").mkdir(parents=True)
    (m / "a_safe.pkl").write_bytes(SAFE)
    (m / "sub" / "b_evil.pkl").write_bytes(EVIL)
    (m / "sub" / "deeper" / "notes.txt").write_bytes(EVIL)  # a pickle whatever its name
    (m / "README.md").write_text("# models\nuntrusted notes\n")
    (m / "sub" / "config.json").write_text('{"lr": 0.1}\n')
    (m / "sub" / "model.minisig").write_text("untrusted comment: signature\n")
    np.save(m / "c_arr.npy", np.arange(6.0))
    joblib.dump({"coef": np.ones(3)}, m / "d_est.joblib", compress=3)
    (m / "empty.pkl").write_bytes(b"")
    os.symlink(m / "sub" / "b_evil.pkl", m / "link_to_evil.pkl")
    return tmp_path


# ---- walking ----------------------------------------------------------------------------------

def test_directory_walk_sorted_content_detected(tree):
    r = scan("--format", "json", str(tree / "models"))
    d = doc(r)
    paths = [os.path.relpath(f["path"], tree) for f in d["files"]]
    assert paths == ["models/a_safe.pkl", "models/c_arr.npy", "models/d_est.joblib",
                     "models/sub/b_evil.pkl", "models/sub/deeper/notes.txt"], paths
    verdicts = {os.path.basename(f["path"]): f["verdict"] for f in d["files"]}
    assert verdicts["notes.txt"] == "unsafe" and verdicts["b_evil.pkl"] == "unsafe"
    assert verdicts["a_safe.pkl"] == verdicts["c_arr.npy"] == verdicts["d_est.joblib"] == "safe"
    s = d["summary"]
    # README.md, config.json, model.minisig and the empty file are no model files; the link
    # is not followed
    assert s["files"] == 5 and s["safe"] == 3 and s["unsafe"] == 2 and s["skipped"] == 4, s
    assert s["bytes"] == sum(f["bytes"] for f in d["files"])
    assert r.returncode == 1


def test_follow_symlinks(tree):
    d = doc(scan("--format", "json", "--follow-symlinks", str(tree / "models")))
    names = [os.path.basename(f["path"]) for f in d["files"]]
    assert "link_to_evil.pkl" in names


def test_named_files_are_always_scanned(tree):
    # a file named on the command line is scanned even when it looks like text
    r = scan("--format", "json", str(tree / "models" / "README.md"))
    f = doc(r)["files"][0]
    assert f["verdict"] == "malformed" and r.returncode == 1


def test_include_exclude(tree):
    m = str(tree / "models")
    d = doc(scan("--format", "json", "--include", "*.pkl", m))
    assert [os.path.basename(f["path"]) for f in d["files"]] == ["a_safe.pkl", "b_evil.pkl"]
    d = doc(scan("--format", "json", "--exclude", "sub", m))
    assert all("/sub/" not in f["path"] for f in d["files"]) and len(d["files"]) == 3
    d = doc(scan("--format", "json", "--exclude", "sub/deeper/*", "--exclude", "*.npy", m))
    names = [os.path.basename(f["path"]) for f in d["files"]]
    assert names == ["a_safe.pkl", "d_est.joblib", "b_evil.pkl"], names


def test_empty_directory_is_not_an_error(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "notes.md").write_text("# nothing here\n")
    r = scan(str(tmp_path / "e"))
    assert r.returncode == 0 and r.stdout == b""
    assert b"0 files" in r.stderr and b"1 skipped" in r.stderr


def test_missing_path_is_exit_2_and_others_still_scanned(tree):
    r = scan("--format", "json", str(tree / "nope"), str(tree / "models" / "a_safe.pkl"))
    assert r.returncode == 2
    assert b"nope: No such file or directory" in r.stderr
    files = doc(r)["files"]
    assert [f["verdict"] for f in files] == ["error", "safe"]
    assert files[0]["error"]["name"] == "io-error"


def test_stdin():
    r = scan("--format", "json", "-", stdin=EVIL)
    f = doc(r)["files"][0]
    assert f["path"] == "-" and f["verdict"] == "unsafe" and r.returncode == 1
    assert scan("-", "-", stdin=SAFE).returncode == 2


def test_parallel_results_are_in_walk_order(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(120):
        (d / ("f%03d.pkl" % i)).write_bytes(EVIL if i % 7 == 0 else SAFE)
    outs = []
    for jobs in ("1", "2", "8"):
        r = scan("--format", "jsonl", "-j", jobs, str(d))
        assert r.returncode == 1
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        outs.append([(x["path"], x["verdict"]) for x in lines])
    assert outs[0] == outs[1] == outs[2]
    assert [p for p, _ in outs[0]] == sorted(str(d / ("f%03d.pkl" % i)) for i in range(120))


def test_joblib_side_files_in_a_directory_scan(tmp_path):
    """Old multi-file joblib: the sandbox's parent still reads the side files for the child."""
    import joblib.numpy_pickle_compat as compat
    w = object.__new__(compat.NDArrayWrapper)
    w.__dict__.update(filename="m.pkl_01.npy", subclass=np.ndarray, allow_mmap=True)
    np.save(tmp_path / "m.pkl_01.npy", np.arange(4.0))
    data = pickle.dumps({"w": w}, protocol=2).replace(b"joblib.numpy_pickle_compat\n",
                                                      b"joblib.numpy_pickle\n")
    (tmp_path / "m.pkl").write_bytes(data)
    d = doc(scan("--format", "json", "--policy", "default", str(tmp_path)))
    by = {os.path.basename(f["path"]): f for f in d["files"]}
    assert by["m.pkl"]["verdict"] == "safe", by["m.pkl"]
    assert any(a["where"].endswith("m.pkl_01.npy") for a in by["m.pkl"]["arrays"])
    assert by["m.pkl_01.npy"]["verdict"] == "safe"


# ---- exit codes per verdict -------------------------------------------------------------------

@pytest.fixture
def keys(tmp_path):
    assert run("keygen", "-W", "-p", str(tmp_path / "k.pub"), "-s", str(tmp_path / "k.key")).returncode == 0
    return tmp_path


def test_exit_code_per_verdict(tmp_path, keys):
    safe = tmp_path / "safe.pkl"
    safe.write_bytes(SAFE)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(EVIL)
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(SAFE[:-3])
    signed = tmp_path / "signed.pkl"
    signed.write_bytes(SAFE)
    assert run("sign", "-W", "-s", str(keys / "k.key"), str(signed)).returncode == 0
    signed.write_bytes(SAFE.replace(b"m", b"n"))  # tampered after signing
    pub = str(keys / "k.pub")
    cases = [
        ("safe", 0, [str(safe)], {}),
        ("unsafe", 1, [str(evil)], {}),
        ("malformed", 1, [str(bad)], {}),
        ("limit", 1, ["--limit", "opcodes=3", str(safe)], {}),
        ("unsigned", 1, ["--key", pub, "--require-signature", str(safe)], {}),
        ("bad-signature", 1, ["--key", pub, str(signed)], {}),
        ("error", 2, [str(safe)], {"PICKLEPROOF_SANDBOX_HELPER": "/nonexistent/helper"}),
    ]
    for verdict, code, args, env in cases:
        r = scan("--format", "json", *args, env=env)
        assert r.returncode == code, (verdict, r.stderr)
        assert doc(r)["files"][0]["verdict"] == verdict, (verdict, r.stdout)
    # the worst file decides
    assert scan(str(safe), str(evil)).returncode == 1
    assert scan(str(safe)).returncode == 0


@pytest.mark.parametrize("args", [
    ["--format", "xml"], ["--jobs", "0"], ["-j", "x"], ["--color", "sometimes"],
    ["--limit", "nonsense=1"], ["--sandbox", "maybe"], ["--bogus"], [],
    ["--require-signature"], ["--config", "a", "--no-config"],
])
def test_usage_errors(args):
    r = run("scan", *args, os.path.join(SAMPLES, "safe_numpy_dict.pkl") if args else "--quiet")
    assert r.returncode == 2, (args, r.stderr)
    assert r.stdout == b"" and b"pickleproof" in r.stderr


# ---- formats ----------------------------------------------------------------------------------

def test_text_grouped_by_file_and_color(tree):
    m = str(tree / "models")
    r = scan(m)
    out = r.stdout.decode()
    assert "\x1b[" not in out  # not a terminal
    blocks = re.findall(r"^(\S.*?): ([A-Z-]+) \(", out, re.M)
    assert [os.path.basename(p) for p, _ in blocks] == ["a_safe.pkl", "c_arr.npy", "d_est.joblib",
                                                        "b_evil.pkl", "notes.txt"]
    assert "global-not-allowed" in out and "posix.system" in out
    assert b"5 files: 3 safe, 2 unsafe" in r.stderr
    assert "\x1b[" in scan("--color", "always", m).stdout.decode()
    assert "\x1b[" not in scan("--color", "never", m).stdout.decode()
    assert scan("-q", m).stderr == b""


def test_no_color_on_a_terminal(tmp_path):
    """Color on a TTY unless NO_COLOR is set (script(1) gives the command a terminal)."""
    if not shutil.which("script"):
        pytest.skip("no script(1)")
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(EVIL)
    cmd = "%s scan --no-config %s" % (CLI, evil)
    def tty(env):
        e = dict(os.environ)
        e.pop("NO_COLOR", None)
        e.update(env)
        return subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                              env=e, timeout=120).stdout
    assert b"\x1b[" in tty({})
    assert b"\x1b[" not in tty({"NO_COLOR": "1"})


def test_progress_bar_only_on_a_terminal(tmp_path):
    if not shutil.which("script"):
        pytest.skip("no script(1)")
    d = tmp_path / "many"
    d.mkdir()
    for i in range(60):
        (d / ("f%02d.pkl" % i)).write_bytes(SAFE)
    r = subprocess.run(["script", "-qec", "%s scan --no-config --format jsonl %s" % (CLI, d),
                        "/dev/null"], capture_output=True, timeout=120)
    assert b"\r[" in r.stdout and b"/60 files" in r.stdout
    assert b"60 files: " in r.stdout and b"60 safe" in r.stdout
    r = scan("--format", "jsonl", str(d))
    assert b"\r[" not in r.stderr and len(r.stdout.splitlines()) == 60
    r = subprocess.run(["script", "-qec", "%s scan -q --no-config %s" % (CLI, d), "/dev/null"],
                       capture_output=True, timeout=120)
    assert b"\r[" not in r.stdout


def test_json_and_jsonl_match_the_schema(tree):
    m = str(tree / "models")
    d = doc(scan("--format", "json", m))
    r = scan("--format", "jsonl", m)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    for x in lines:
        jsonschema.validate(x, FILE_SCHEMA)
    assert [x["path"] for x in lines] == [f["path"] for f in d["files"]]
    assert b"5 files" in r.stderr  # the summary goes to stderr for jsonl
    # the schema is strict enough to catch a broken object
    bad = copy.deepcopy(d)
    bad["files"][0]["verdict"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, REPORT_SCHEMA)
    bad = copy.deepcopy(d)
    del bad["summary"]["unsafe"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, REPORT_SCHEMA)


def test_output_file(tree, tmp_path):
    out = tmp_path / "res.json"
    r = scan("--format", "json", "-o", str(out), str(tree / "models"))
    assert r.returncode == 1 and r.stdout == b""
    jsonschema.validate(json.loads(out.read_text()), REPORT_SCHEMA)


def sarif(*args, **kw):
    r = scan("--format", "sarif", *args, **kw)
    s = json.loads(r.stdout)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(s)
    return r, s


def test_sarif_valid_and_shaped_for_code_scanning(tree, tmp_path):
    bad = tree / "models" / "trunc.pkl"
    bad.write_bytes(SAFE[:-3])
    r, s = sarif("models", cwd=str(tree))
    assert r.returncode == 1
    assert s["version"] == "2.1.0" and len(s["runs"]) == 1
    run_ = s["runs"][0]
    drv = run_["tool"]["driver"]
    assert drv["name"] == "pickleproof" and drv["version"] and drv["informationUri"]
    ids = [x["id"] for x in drv["rules"]]
    assert len(ids) == len(set(ids))
    for rule in drv["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"] and rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
        float(rule["properties"]["security-severity"])
    res = run_["results"]
    uris = {x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for x in res}
    assert uris == {"models/sub/b_evil.pkl", "models/sub/deeper/notes.txt", "models/trunc.pkl"}
    for x in res:
        assert x["ruleId"] in ids and ids[x["ruleIndex"]] == x["ruleId"]
        reg = x["locations"][0]["physicalLocation"]["region"]
        assert reg["startLine"] == 1 and "byteOffset" in reg
        assert re.fullmatch(r"[0-9a-f]{32}", x["partialFingerprints"]["pickleproof/v1"])
    evil = [x for x in res if x["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == "models/sub/b_evil.pkl"]
    g = [x for x in evil if x["ruleId"] == "global-not-allowed"][0]
    assert g["level"] == "error" and "posix.system" in g["message"]["text"]
    assert g["locations"][0]["physicalLocation"]["region"]["byteOffset"] == EVIL.index(b"c" + b"posix")
    # a verdict-level result for the malformed file
    assert [x["level"] for x in res if x["ruleId"] == "file-malformed"] == ["error"]
    # fingerprints are stable across runs and worker counts
    _, s2 = sarif("-j1", "models", cwd=str(tree))
    fp = lambda s_: sorted(x["partialFingerprints"]["pickleproof/v1"] for x in s_["runs"][0]["results"])
    assert fp(s) == fp(s2) and len(set(fp(s))) == len(fp(s))
    assert run_["invocations"][0]["exitCode"] == 1


def test_sarif_clean_run_and_hostile_names(tmp_path):
    weird = tmp_path / "we ird%\u00e9\x1b.pkl"
    weird.write_bytes(EVIL)
    r, s = sarif(str(weird))
    uri = s["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.startswith("file:///") and "we%20ird%25%C3%A9%1B.pkl" in uri
    r, s = sarif(os.path.join(SAMPLES, "safe_numpy_dict.pkl"))
    assert r.returncode == 0 and s["runs"][0]["results"] == []


def test_sarif_rules_cover_every_rule_the_library_emits():
    """Every finding rule named in the sources and every error name has a SARIF rule."""
    _, s = sarif(os.path.join(SAMPLES, "safe_numpy_dict.pkl"))
    ids = {x["id"] for x in s["runs"][0]["tool"]["driver"]["rules"]}
    found = set()
    sev = ("critical", "high", "medium", "low", "info")
    call = re.compile(r"\b(?:pp_ctx_finding|pp_report_add_finding|finding|tensor_finding)\(([^;]*)", re.S)
    for d in ("validator", "sandbox"):
        for name in os.listdir(os.path.join(ROOT, d)):
            if name.endswith(".c") and name != "report_sarif.c":
                text = open(os.path.join(ROOT, d, name)).read()
                for m in call.finditer(text):
                    # the rule literals come before the severity literal
                    for lit in re.findall(r'"([^"]*)"', m.group(1)):
                        if lit in sev:
                            break
                        if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", lit):
                            found.add(lit)
    errs = open(os.path.join(ROOT, "validator", "err.c")).read()
    found |= set(re.findall(r'\[PP_E_[A-Z_]+\] = "([a-z-]+)"', errs)) - {"ok"}
    found.add("side-file-needed")
    missing = found - ids
    assert not missing, missing
    assert {"global-not-allowed", "trailing-data", "unsigned", "limit-exceeded",
            "sandbox-violation"} <= found


# ---- pickleproof.toml -------------------------------------------------------------------------

def test_config_discovered_in_parents_and_overridden_by_flags(tree):
    proj = tree / "proj"
    (proj / "deep" / "er").mkdir(parents=True)
    (proj / ".git").mkdir()
    (proj / "m.pkl").write_bytes(EVIL)
    (proj / "team.policy").write_text("policy team\ncall posix.system\n")
    (proj / "pickleproof.toml").write_text(
        '# project settings\npolicies = ["default", "team.policy"]\nformat = "jsonl"\n'
        'exclude = ["*.txt"]\njobs = 2\n[limits]\nopcodes = "1K"\n')
    cwd = str(proj / "deep" / "er")
    r = run("scan", "../../m.pkl", cwd=cwd)
    f = json.loads(r.stdout)
    assert f["verdict"] == "safe" and f["policy"] == ["default", "team"], r.stderr
    assert r.returncode == 0
    # flags win: another format, another policy
    r = run("scan", "--format", "json", "--policy", "default", "../../m.pkl", cwd=cwd)
    assert r.returncode == 1 and doc(r)["files"][0]["verdict"] == "unsafe"
    assert run("scan", "--no-config", "../../m.pkl", cwd=cwd).returncode == 1
    # the limit from [limits] applies
    big = proj / "big.pkl"
    big.write_bytes(pickle.dumps(list(range(2000)), protocol=0))
    r = run("scan", "../../big.pkl", cwd=cwd)
    assert r.returncode == 1 and json.loads(r.stdout)["verdict"] == "limit"
    # a .git directory stops the search: a config above the checkout is not used
    (tree / "pickleproof.toml").write_text('format = "json"\n')
    (proj / "pickleproof.toml").unlink()
    r = run("scan", "../../m.pkl", cwd=cwd)
    assert r.stdout.startswith(b"../../m.pkl: UNSAFE"), r.stdout


def test_config_keys_are_relative_to_the_file(tmp_path, keys):
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / ".git").mkdir()
    shutil.copy(keys / "k.pub", proj / "team.pub")
    m = proj / "m.pkl"
    m.write_bytes(SAFE)
    (proj / "pickleproof.toml").write_text('keys = ["team.pub"]\nrequire-signature = true\n'
                                          'format = "json"\n')
    r = run("scan", "../m.pkl", cwd=str(proj / "sub"))
    assert r.returncode == 1 and doc(r)["files"][0]["verdict"] == "unsigned", r.stderr
    assert run("sign", "-W", "-s", str(keys / "k.key"), str(m)).returncode == 0
    r = run("scan", "../m.pkl", cwd=str(proj / "sub"))
    assert r.returncode == 0 and doc(r)["files"][0]["signature"]["status"] == "valid"


def test_config_explicit_and_errors(tmp_path):
    m = tmp_path / "m.pkl"
    m.write_bytes(SAFE)
    good = tmp_path / "c.toml"
    good.write_text("format = 'json'\nrequire-signature = false\ncolor = \"never\"\n"
                    "include = [\n  \"*.pkl\",  # models\n  \"*.joblib\",\n]\n")
    r = run("scan", "--config", str(good), str(m))
    assert r.returncode == 0 and doc(r)["files"][0]["verdict"] == "safe"
    bad_cases = {
        "polices = [\"default\"]\n": "1: unknown key \"polices\"",
        "jobs = \"4\"\n": "1: jobs must be an integer",
        "format = \"xml\"\n": "1: format: unknown value",
        "\n[limits]\nopcodes = -1\n": "3: limit opcodes: negative",
        "[limits]\nfoo = 3\n": "2: unknown limit",
        "[tool]\n": "1: unknown table",
        "jobs = 2\njobs = 3\n": "2: duplicate key",
        "exclude = [\"a\", 3]\n": "1: arrays hold strings only",
        "format = \"json\n": "1: unterminated string",
        "format = \"json\" extra\n": "1: unexpected 'e'",
        "policies = [\"default\"\n": "unterminated array",
        "jobs = 007\n": "1: leading zeros",
    }
    for text, msg in bad_cases.items():
        c = tmp_path / "bad.toml"
        c.write_text(text)
        r = run("scan", "--config", str(c), str(m))
        assert r.returncode == 2, text
        assert (str(c) + ":").encode() in r.stderr and msg.encode() in r.stderr, (text, r.stderr)
    assert run("scan", "--config", str(tmp_path / "none.toml"), str(m)).returncode == 2


# ---- the other subcommands --------------------------------------------------------------------

def test_explain_dump_policy_version(tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(EVIL)
    r = run("explain", "--no-config", "--sandbox=off", str(evil))
    assert r.returncode == 1 and b"system" in r.stdout
    assert run("explain", str(evil), str(evil)).returncode == 2
    r = run("dump", "--json", str(evil))
    assert r.returncode == 0 and json.loads(r.stdout.splitlines()[0])
    assert run("dump", str(evil)).returncode == 2
    assert run("dump", "--json", "--key", "x.pub", str(evil)).returncode == 2
    r = run("policy", "list")
    assert r.returncode == 0 and b"default" in r.stdout.split()
    assert run("policy", "show", "default").returncode == 0
    assert run("policy", "show", "nope").returncode == 2
    assert run("policy").returncode == 2
    assert run("version").stdout.startswith(b"pickleproof ")
    assert run("frobnicate").returncode == 2
    assert run().returncode == 2


def test_keygen_sign_verify(tmp_path, keys):
    m = tmp_path / "m.pkl"
    m.write_bytes(SAFE)
    assert run("sign", "-W", "-s", str(keys / "k.key"), str(m)).returncode == 0
    assert run("verify", "-p", str(keys / "k.pub"), str(m)).returncode == 0
    m.write_bytes(EVIL)
    assert run("verify", "-p", str(keys / "k.pub"), str(m)).returncode == 1
    assert run("verify", str(m)).returncode == 2


SUBCOMMANDS = ["scan", "explain", "dump", "keygen", "sign", "verify", "policy", "version", "help"]


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help_for_every_subcommand(cmd):
    for args in ([cmd, "--help"], [cmd, "-h"], ["help", cmd]):
        r = run(*args)
        assert r.returncode == 0, args
        out = r.stdout.decode()
        assert out.startswith("usage: pickleproof " + cmd) and "\nEXAMPLES\n" in out, args
        for line in out.split("\nEXAMPLES\n")[1].splitlines():
            assert line.startswith("  pickleproof ") or line.startswith("  cat "), line
    assert run("help").stdout.startswith(b"usage: pickleproof COMMAND")
    assert run("help", "nope").returncode == 2
