# label: sign
"""Signatures wired into scan: verified before parsing, over the bytes that are parsed."""
import json
import os
import shutil
import subprocess

import pytest

CLI = os.environ.get("PICKLEPROOF")
HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "..", "..", "samples")
pytestmark = pytest.mark.skipif(not CLI, reason="PICKLEPROOF not set (run under ctest)")


def run(*args, env=None):
    return subprocess.run([CLI, *args], capture_output=True, timeout=120, env=env)


def scan_json(*args):
    r = run("scan", "--format", "json", *args)
    return r.returncode, json.loads(r.stdout)["files"][0]


@pytest.fixture
def signed(tmp_path):
    assert run("keygen", "-W", "-p", str(tmp_path / "k.pub"), "-s", str(tmp_path / "k.key")).returncode == 0
    assert run("keygen", "-W", "-p", str(tmp_path / "other.pub"), "-s", str(tmp_path / "other.key")).returncode == 0
    m = tmp_path / "model.pkl"
    shutil.copy(os.path.join(SAMPLES, "safe_numpy_dict.pkl"), m)
    evil = tmp_path / "evil.pkl"
    shutil.copy(os.path.join(SAMPLES, "malicious_os_system.pkl"), evil)
    for f in (m, evil):
        assert run("sign", "-s", str(tmp_path / "k.key"), str(f)).returncode == 0
    return tmp_path


def test_valid_signature_then_scan(signed):
    rc, f = scan_json("--key", str(signed / "k.pub"), str(signed / "model.pkl"))
    assert rc == 0 and f["verdict"] == "safe"
    assert f["signature"]["status"] == "valid"
    assert len(f["signature"]["key_id"]) == 16
    assert "file:model.pkl" in f["signature"]["trusted_comment"]


def test_signed_but_malicious_is_still_unsafe(signed):
    rc, f = scan_json("--key", str(signed / "k.pub"), str(signed / "evil.pkl"))
    assert rc == 1 and f["verdict"] == "unsafe" and f["signature"]["status"] == "valid"


def test_tampered_file_is_not_parsed(signed):
    m = signed / "model.pkl"
    data = bytearray(m.read_bytes())
    data[-2] ^= 1
    m.write_bytes(bytes(data))
    rc, f = scan_json("--key", str(signed / "k.pub"), str(m))
    assert rc == 1 and f["verdict"] == "bad-signature"
    assert f["streams"] == 0 and f["globals"] == []  # nothing was parsed


def test_tampered_signature_and_wrong_key(signed):
    sig = signed / "model.pkl.minisig"
    lines = sig.read_bytes().split(b"\n")
    lines[1] = lines[1][:-2] + (b"A" if lines[1][-2:-1] != b"A" else b"B") + lines[1][-1:]
    sig.write_bytes(b"\n".join(lines))
    rc, f = scan_json("--key", str(signed / "k.pub"), str(signed / "model.pkl"))
    assert rc == 1 and f["verdict"] == "bad-signature"
    rc, f = scan_json("--key", str(signed / "other.pub"), str(signed / "evil.pkl"))
    assert rc == 1 and f["verdict"] == "bad-signature"
    assert "key" in f["signature"]["reason"].lower()


def test_missing_signature(signed):
    (signed / "model.pkl.minisig").unlink()
    rc, f = scan_json("--key", str(signed / "k.pub"), "--require-signature", str(signed / "model.pkl"))
    assert rc == 1 and f["verdict"] == "unsigned"
    rc, f = scan_json("--key", str(signed / "k.pub"), str(signed / "model.pkl"))
    assert rc == 0 and f["verdict"] == "safe" and f["signature"]["status"] == "unsigned"


def test_explicit_signature_path_and_keyring(signed):
    ring = signed / "ring.keys"
    pubs = [(signed / n).read_text().splitlines()[1] for n in ("other.pub", "k.pub")]
    ring.write_text("# team keys\n" + "\n".join(pubs) + "\n")
    moved = signed / "elsewhere.minisig"
    (signed / "model.pkl.minisig").rename(moved)
    rc, f = scan_json("--key", str(ring), "--signature", str(moved), str(signed / "model.pkl"))
    assert rc == 0 and f["signature"]["status"] == "valid"


def test_bad_key_file_is_usage_error(signed):
    bad = signed / "bad.pub"
    bad.write_text("untrusted comment: x\nnot base64!\n")
    r = run("scan", "--key", str(bad), str(signed / "model.pkl"))
    assert r.returncode == 2 and b"bad.pub" in r.stderr


def test_explain_checks_the_signature_first(signed):
    m = signed / "model.pkl"
    r = run("explain", "--key", str(signed / "k.pub"), str(m))
    assert r.returncode == 0 and b"signature: valid" in r.stdout and b"_reconstruct" in r.stdout
    data = bytearray(m.read_bytes())
    data[-2] ^= 1
    m.write_bytes(bytes(data))
    r = run("explain", "--key", str(signed / "k.pub"), str(m))
    assert r.returncode == 1 and b"BAD-SIGNATURE" in r.stdout and b"_reconstruct" not in r.stdout


def test_fifo_signature_does_not_hang(signed):
    (signed / "model.pkl.minisig").unlink()
    os.mkfifo(signed / "model.pkl.minisig")
    r = subprocess.run([CLI, "scan", "--key", str(signed / "k.pub"), str(signed / "model.pkl")],
                       capture_output=True, timeout=20)
    assert r.returncode == 2 and b"not a regular file" in r.stderr + r.stdout


def test_duplicate_keys_are_one_key(signed):
    k = str(signed / "k.pub")
    rc, f = scan_json("--key", k, "--key", k, str(signed / "model.pkl"))
    assert rc == 0 and f["signature"]["status"] == "valid"


def test_usage_errors(signed):
    assert run("scan", "--require-signature", str(signed / "model.pkl")).returncode == 2
    assert run("scan", "--key", str(signed / "k.pub"), "--signature", "x.minisig",
               str(signed / "model.pkl"), str(signed / "evil.pkl")).returncode == 2
    assert run("dump", "--json", "--key", str(signed / "k.pub"),
               str(signed / "model.pkl")).returncode == 2


def test_closed_stdin_does_not_alias_a_file(signed):
    r = subprocess.run([CLI, "scan", "--format", "json", str(signed / "evil.pkl"), "-"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    files = json.loads(r.stdout)["files"]
    assert files[0]["verdict"] == "unsafe" and files[1]["path"] == "-"
    assert files[1]["verdict"] != "unsafe"  # empty stdin, not evil.pkl's bytes
    r = subprocess.run(f'exec 0<&-; "{CLI}" scan --format json "{signed / "evil.pkl"}" -',
                       shell=True, capture_output=True, timeout=60)
    files = json.loads(r.stdout)["files"]
    assert files[1]["verdict"] != "unsafe"
