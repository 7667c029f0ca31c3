# label: sign
"""Signatures: `pickleproof keygen|sign|verify` against Debian's minisign 0.11, in both directions.

Interop: our signatures pass `minisign -V` (and `-V -H`, which in 0.11 means "require a prehashed
signature"); minisign's keys (encrypted and not) and signatures work with us. Tampering: one flipped
byte in the file, the signature, the trusted comment, the global signature or the key; a wrong key;
a relabelled legacy signature; manifests with added, removed, renamed or changed files, escaping
paths and symlinks. Bad input: malformed key and signature files give a clear error and exit 2 (a
key, an argument) or a signature verdict, exit 1 (a signature), never a crash.

minisign reads passwords from stdin when it is not a terminal, so its prompts are driven with
`input=`. Encrypted keys made with minisign's defaults cost ~4 s and 1 GiB of scrypt: made once.
"""

import base64
import hashlib
import os
import shutil
import subprocess

import pytest

PICKLEPROOF = os.environ.get("PICKLEPROOF")
MINISIGN = shutil.which("minisign") or "/usr/bin/minisign"

needs_cli = pytest.mark.skipif(not PICKLEPROOF, reason="PICKLEPROOF is not set")
needs_minisign = pytest.mark.skipif(not os.path.exists(MINISIGN), reason="no minisign")
pytestmark = [needs_cli]


def pp(*args, input=None, env=None, new_session=False, cwd=None):
    e = dict(os.environ)
    e.pop("PICKLEPROOF_PASSWORD", None)
    e.update(env or {})
    r = subprocess.run([PICKLEPROOF, *map(str, args)], input=input, capture_output=True,
                       env=e, timeout=120, start_new_session=new_session, cwd=cwd)
    assert r.returncode in (0, 1, 2), (r.returncode, r.stderr)  # never a crash
    # sanitizer reports exit 1 too: look for them, so a crash never passes as "rejected"
    assert b"AddressSanitizer" not in r.stderr and b"runtime error" not in r.stderr, r.stderr
    return r


def ms(*args, input=b""):
    return subprocess.run([MINISIGN, *map(str, args)], input=input, capture_output=True,
                          timeout=120)


def b64line(path, n):
    """Decoded bytes of line n (0-based) of a key or signature file."""
    return base64.b64decode(open(path, "rb").read().split(b"\n")[n])


def set_b64line(path, n, raw):
    lines = open(path, "rb").read().split(b"\n")
    lines[n] = base64.b64encode(raw)
    open(path, "wb").write(b"\n".join(lines))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    r = pp("keygen", "-W", "-p", d / "our.pub", "-s", d / "our.key")
    assert r.returncode == 0, r.stderr
    r = pp("keygen", "-W", "-p", d / "other.pub", "-s", d / "other.key")
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture()
def signed(tmp_path, keys):
    f = tmp_path / "model.pkl"
    f.write_bytes(os.urandom(100_000))
    r = pp("sign", "-s", keys / "our.key", f)
    assert r.returncode == 0, r.stderr
    return f


def verify(f, pub, *extra):
    return pp("verify", "-p", pub, *extra, f)


# ---- formats and interop --------------------------------------------------------------------


def test_key_and_signature_formats(keys, signed):
    pub = open(keys / "our.pub", "rb").read().split(b"\n")
    assert pub[0].startswith(b"untrusted comment: minisign public key ")
    assert pub[1].startswith(b"RW") and len(pub[1]) == 56 and pub[2:] == [b""]
    raw = base64.b64decode(pub[1])
    keyid = "%016X" % int.from_bytes(raw[2:10], "little")
    assert pub[0].endswith(keyid.encode())
    sec = b64line(keys / "our.key", 1)
    assert len(sec) == 158 and sec[:6] == b"Ed\0\0B2"
    lines = open(str(signed) + ".minisig", "rb").read().split(b"\n")
    assert len(lines) == 5 and lines[4] == b""
    assert lines[0].startswith(b"untrusted comment: ")
    s = base64.b64decode(lines[1])
    assert len(s) == 74 and s[:2] == b"ED" and s[2:10] == raw[2:10]
    tc = lines[2].decode()
    assert tc.startswith("trusted comment: timestamp:")
    fields = tc[len("trusted comment: "):].split("\t")
    assert fields[1:] == ["file:model.pkl", "hashed", "purpose:pickleproof-file/v1",
                          "size:100000"]
    assert len(base64.b64decode(lines[3])) == 64
    # the signed message is BLAKE2b-512 of the file (checked with libsodium via minisign below)
    r = verify(signed, keys / "our.pub")
    assert r.returncode == 0, r.stderr
    assert keyid in r.stdout.decode() and "purpose:pickleproof-file/v1" in r.stdout.decode()


@needs_minisign
def test_minisign_verifies_ours(keys, signed):
    for extra in ([], ["-H"]):
        r = ms("-V", *extra, "-p", keys / "our.pub", "-m", signed)
        assert r.returncode == 0, r.stderr
        assert b"Signature and comment signature verified" in r.stdout
    pk = open(keys / "our.pub").read().split("\n")[1]
    assert ms("-V", "-P", pk, "-m", signed).returncode == 0


@needs_minisign
def test_we_verify_minisign_unencrypted_keys(tmp_path):
    r = ms("-G", "-W", "-p", tmp_path / "m.pub", "-s", tmp_path / "m.key")
    assert r.returncode == 0, r.stderr
    f = tmp_path / "data.bin"
    f.write_bytes(b"x" * 5000)
    assert ms("-S", "-W", "-s", tmp_path / "m.key", "-m", f).returncode == 0
    r = verify(f, tmp_path / "m.pub")
    assert r.returncode == 0, r.stderr
    assert b"file:data.bin\thashed" in r.stdout
    # -P with the base64 string
    pk = open(tmp_path / "m.pub").read().split("\n")[1]
    assert pp("verify", "-P", pk, f).returncode == 0
    # and we sign with minisign's unencrypted key (zero checksum and salt): minisign verifies
    g = tmp_path / "g.bin"
    g.write_bytes(b"y" * 77)
    r = pp("sign", "-s", tmp_path / "m.key", g)
    assert r.returncode == 0, r.stderr
    assert ms("-V", "-H", "-p", tmp_path / "m.pub", "-m", g).returncode == 0


@needs_minisign
def test_encrypted_keys_both_ways(tmp_path):
    # ours (cheap scrypt limits, stored in the key) -> minisign signs with it
    env = {"PICKLEPROOF_PASSWORD": "correct horse"}
    r = pp("keygen", "--kdf", "interactive", "-p", tmp_path / "o.pub", "-s", tmp_path / "o.key",
           env=env)
    assert r.returncode == 0, r.stderr
    sec = b64line(tmp_path / "o.key", 1)
    assert sec[:6] == b"EdScB2"
    f = tmp_path / "data.bin"
    f.write_bytes(os.urandom(3000))
    r = ms("-S", "-s", tmp_path / "o.key", "-m", f, input=b"correct horse\n")
    assert r.returncode == 0, r.stderr
    assert verify(f, tmp_path / "o.pub").returncode == 0
    # the password from an fd, and a wrong one
    rfd, wfd = os.pipe()
    os.write(wfd, b"correct horse\n")
    os.close(wfd)
    r = subprocess.run([PICKLEPROOF, "sign", "-s", tmp_path / "o.key", "--password-fd",
                        str(rfd), "-x", tmp_path / "fd.sig", f], pass_fds=(rfd,),
                       capture_output=True, timeout=60)
    os.close(rfd)
    assert r.returncode == 0, r.stderr
    assert ms("-V", "-H", "-p", tmp_path / "o.pub", "-x", tmp_path / "fd.sig", "-m",
              f).returncode == 0
    r = pp("sign", "-s", tmp_path / "o.key", "--password-fd", "0", f, input=b"wrong\n")
    assert r.returncode == 2 and b"wrong password" in r.stderr
    # no password source and no terminal: a clear error, not a hang
    r = pp("sign", "-s", tmp_path / "o.key", f, new_session=True, input=b"")
    assert r.returncode == 2 and b"PICKLEPROOF_PASSWORD" in r.stderr


@needs_minisign
def test_minisign_encrypted_key_default_limits(tmp_path):
    # minisign's SENSITIVE scrypt (1 GiB): generated once, decrypted once by us
    r = ms("-G", "-p", tmp_path / "m.pub", "-s", tmp_path / "m.key", input=b"pw1\npw1\n")
    assert r.returncode == 0, r.stderr
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights" * 1000)
    r = pp("sign", "-s", tmp_path / "m.key", f, env={"PICKLEPROOF_PASSWORD": "pw1"})
    assert r.returncode == 0, r.stderr
    assert ms("-V", "-H", "-p", tmp_path / "m.pub", "-m", f).returncode == 0


@needs_minisign
def test_legacy_signatures(tmp_path, keys):
    r = ms("-G", "-W", "-p", tmp_path / "m.pub", "-s", tmp_path / "m.key")
    f = tmp_path / "data.bin"
    f.write_bytes(b"legacy" * 100)
    assert ms("-S", "-l", "-W", "-s", tmp_path / "m.key", "-m", f).returncode == 0
    r = verify(f, tmp_path / "m.pub")
    assert r.returncode == 1 and b"legacy" in r.stderr
    r = verify(f, tmp_path / "m.pub", "--allow-legacy")
    assert r.returncode == 0, r.stderr
    assert b"legacy" in r.stdout


@needs_minisign
def test_relabelled_legacy_forgery(tmp_path):
    """A prehashed signature relabelled "Ed" verifies, under minisign -V, a 64-byte file holding
    the digest. We refuse it by default; with --allow-legacy our size: field still catches it."""
    ms("-G", "-W", "-p", tmp_path / "m.pub", "-s", tmp_path / "m.key")
    f = tmp_path / "data.bin"
    f.write_bytes(os.urandom(10_000))
    assert ms("-S", "-W", "-s", tmp_path / "m.key", "-m", f).returncode == 0
    forged = tmp_path / "forged"
    forged.mkdir()
    g = forged / "data.bin"
    g.write_bytes(hashlib.blake2b(f.read_bytes()).digest())
    sig = forged / "data.bin.minisig"
    shutil.copy(str(f) + ".minisig", sig)
    raw = b64line(sig, 1)
    assert raw[:2] == b"ED"
    set_b64line(sig, 1, b"Ed" + raw[2:])
    assert ms("-V", "-p", tmp_path / "m.pub", "-m", g).returncode == 0  # minisign is fooled
    assert ms("-V", "-H", "-p", tmp_path / "m.pub", "-m", g).returncode != 0
    r = verify(g, tmp_path / "m.pub")
    assert r.returncode == 1 and b"legacy" in r.stderr
    # the same forgery of one of our signatures: refused even with --allow-legacy (size:)
    ours_key = tmp_path / "o.key"
    pp("keygen", "-W", "-p", tmp_path / "o.pub", "-s", ours_key)
    assert pp("sign", "-s", ours_key, f).returncode == 0
    shutil.copy(str(f) + ".minisig", sig)
    raw = b64line(sig, 1)
    set_b64line(sig, 1, b"Ed" + raw[2:])
    r = verify(g, tmp_path / "o.pub", "--allow-legacy")
    assert r.returncode == 1 and b"size" in r.stderr


# ---- tampering ------------------------------------------------------------------------------


def test_flip_file_byte(signed, keys):
    b = bytearray(signed.read_bytes())
    b[5000] ^= 1
    signed.write_bytes(bytes(b))
    r = verify(signed, keys / "our.pub")
    assert r.returncode == 1 and b"bad-signature" in r.stderr


def test_flip_signature_bytes(signed, keys):
    sig = str(signed) + ".minisig"
    orig = open(sig, "rb").read()
    raw = b64line(sig, 1)
    for i in (0, 2, 10, 40, 73):  # algorithm, key id, signature bytes
        b = bytearray(raw)
        b[i] ^= 1
        set_b64line(sig, 1, bytes(b))
        r = verify(signed, keys / "our.pub")
        assert r.returncode == 1, (i, r.stderr)
        open(sig, "wb").write(orig)
    g = bytearray(b64line(sig, 3))
    g[7] ^= 0x80
    set_b64line(sig, 3, bytes(g))
    r = verify(signed, keys / "our.pub")
    assert r.returncode == 1 and b"trusted comment signature" in r.stderr


def test_flip_trusted_comment(signed, keys):
    sig = str(signed) + ".minisig"
    t = open(sig, "rb").read()
    t2 = t.replace(b"size:100000", b"size:100001")
    assert t2 != t
    open(sig, "wb").write(t2)
    r = verify(signed, keys / "our.pub")
    assert r.returncode == 1 and b"trusted comment signature" in r.stderr
    assert b"size:100001" not in r.stdout  # never shown unverified


def test_flip_key_bytes(signed, keys, tmp_path):
    pub = tmp_path / "k.pub"
    raw = b64line(keys / "our.pub", 1)
    for i, what in ((5, b"wrong key"), (20, b"verification failed")):
        shutil.copy(keys / "our.pub", pub)
        b = bytearray(raw)
        b[i] ^= 1
        set_b64line(pub, 1, bytes(b))
        r = verify(signed, pub)
        assert r.returncode == 1 and what in r.stderr, r.stderr


def test_wrong_key_prints_both_ids(signed, keys):
    r = verify(signed, keys / "other.pub")
    assert r.returncode == 1
    ids = []
    for k in ("our.pub", "other.pub"):
        raw = b64line(keys / k, 1)
        ids.append(b"%016X" % int.from_bytes(raw[2:10], "little"))
    assert ids[0] in r.stderr and ids[1] in r.stderr
    # a keyring with both keys accepts it
    assert pp("verify", "-p", keys / "other.pub", "-p", keys / "our.pub",
              signed).returncode == 0


def test_renamed_file_rejected(signed, keys, tmp_path):
    g = tmp_path / "renamed.pkl"
    shutil.copy(signed, g)
    shutil.copy(str(signed) + ".minisig", str(g) + ".minisig")
    r = verify(g, keys / "our.pub")
    assert r.returncode == 1 and b"model.pkl" in r.stderr


def test_unsigned(tmp_path, keys):
    f = tmp_path / "x.pkl"
    f.write_bytes(b"data")
    r = verify(f, keys / "our.pub")
    assert r.returncode == 1 and b"unsigned" in r.stderr


def test_empty_file(tmp_path, keys):
    f = tmp_path / "empty"
    f.write_bytes(b"")
    assert pp("sign", "-s", keys / "our.key", f).returncode == 0
    assert verify(f, keys / "our.pub").returncode == 0
    if os.path.exists(MINISIGN):
        assert ms("-V", "-p", keys / "our.pub", "-m", f).returncode == 0


# ---- malformed input ------------------------------------------------------------------------


def good_sig_text(signed):
    return open(str(signed) + ".minisig", "rb").read()


@pytest.mark.parametrize("mutate", [
    lambda t: b"",
    lambda t: t[:-1][:50],
    lambda t: t.replace(b"untrusted comment: ", b"untrusted-comment: ", 1),
    lambda t: t.replace(b"trusted comment: timestamp", b"trusted  comment: timestamp"),
    lambda t: b"untrusted comment: " + b"A" * 5000 + b"\n" + t.split(b"\n", 1)[1],
    lambda t: t.replace(b"hashed", b"hashed" + b"x" * 9000),
    lambda t: t.replace(b"hashed", b"has\x1bhed"),
    lambda t: t.split(b"\n")[0] + b"\n" + t.split(b"\n")[1][:-4] + b"\n" + b"\n".join(
        t.split(b"\n")[2:]),
    lambda t: t.split(b"\n")[0] + b"\n" + t.split(b"\n")[1].replace(b"=", b"A") + b"\n" +
    b"\n".join(t.split(b"\n")[2:]),
    lambda t: t.split(b"\n")[0] + b"\n" + b"!" + t.split(b"\n")[1][1:] + b"\n" + b"\n".join(
        t.split(b"\n")[2:]),
    lambda t: t + b"extra\n",
    lambda t: t + b"A" * (1 << 20),
    lambda t: b"\n".join(t.split(b"\n")[:3]) + b"\n",
    lambda t: t.replace(t.split(b"\n")[3], t.split(b"\n")[3][:-2]),
], ids=["empty", "truncated", "prefix1", "prefix3", "long-comment", "long-tc", "control-tc",
        "short-b64", "bad-padding", "bad-char", "trailing", "huge", "no-global",
        "short-global"])
def test_malformed_signature(signed, keys, mutate):
    t = good_sig_text(signed)
    open(str(signed) + ".minisig", "wb").write(mutate(t))
    r = verify(signed, keys / "our.pub")
    assert r.returncode == 1, r.stderr
    assert b"bad-signature" in r.stderr and b"model.pkl" in r.stderr


def test_wrong_algorithm_signature(signed, keys):
    sig = str(signed) + ".minisig"
    raw = b64line(sig, 1)
    set_b64line(sig, 1, b"XX" + raw[2:])
    r = verify(signed, keys / "our.pub")
    assert r.returncode == 1 and b"unsupported signature algorithm" in r.stderr


def test_crlf_signature_accepted(signed, keys):
    sig = str(signed) + ".minisig"
    t = good_sig_text(signed).replace(b"\n", b"\r\n")
    open(sig, "wb").write(t)
    assert verify(signed, keys / "our.pub").returncode == 0


@pytest.mark.parametrize("content,what", [
    (b"", b"empty"),
    (b"untrusted comment: x\nRWQ\n", b"56 base64"),
    (b"untrusted comment: x\n" + base64.b64encode(b"Ed" + b"\0" * 41) + b"\n", b"56 base64"),
    (b"untrusted comment: x\n" + base64.b64encode(b"XX" + b"\0" * 40) + b"\n", b"algorithm"),
    (b"untrusted comment: x\n" + b"!" * 56 + b"\n", b"base64"),
    (b"untrusted comment: " + b"x" * 3000 + b"\nRW\n", b"too long"),
    (b"x" * 100000, b"too large"),
    (b"untrusted comment: x\n" + base64.b64encode(b"Ed" + b"\0" * 40) + b"\nmore\n", b"after"),
])
def test_malformed_public_key(signed, tmp_path, content, what):
    k = tmp_path / "bad.pub"
    k.write_bytes(content)
    r = verify(signed, k)
    assert r.returncode == 2 and what in r.stderr and b"bad.pub" in r.stderr, r.stderr


def test_malformed_secret_key(tmp_path, keys):
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    good = open(keys / "our.key", "rb").read()
    raw = b64line(keys / "our.key", 1)
    cases = [
        b"",
        good.split(b"\n")[1],
        good.replace(b"untrusted comment:", b"comment:"),
        b"untrusted comment: x\n" + base64.b64encode(raw[:-3]) + b"\n",
        b"untrusted comment: x\n" + base64.b64encode(b"Ed\0\0XX" + raw[6:]) + b"\n",
        b"untrusted comment: x\n" + base64.b64encode(b"EdZZB2" + raw[6:]) + b"\n",
        b"untrusted comment: x\n" + base64.b64encode(raw[:100] + bytes([raw[100] ^ 1]) +
                                                     raw[101:]) + b"\n",
        b"x" * 1_000_000,
    ]
    for c in cases:
        k = tmp_path / "bad.key"
        k.write_bytes(c)
        r = pp("sign", "-s", k, f)
        assert r.returncode == 2 and b"bad.key" in r.stderr, (c[:40], r.stderr)
    assert not os.path.exists(str(f) + ".minisig")


def test_usage_errors(signed, keys):
    assert pp("verify", signed).returncode == 2  # no key
    assert pp("verify", "-p", keys / "our.pub").returncode == 2  # no file
    assert pp("verify", "-p", keys / "our.pub", "--bogus", signed).returncode == 2
    assert pp("sign", signed).returncode == 2  # no key
    assert pp("keygen", "-W", "-p", keys / "our.pub", "-s", keys / "our.key").returncode == 2
    assert pp("verify", "-p", keys / "nonexistent.pub", signed).returncode == 2
    r = pp("verify", "--help")
    assert r.returncode == 0 and b"usage" in r.stdout


# ---- manifests ------------------------------------------------------------------------------


@pytest.fixture()
def model_dir(tmp_path, keys):
    d = tmp_path / "model"
    (d / "shards").mkdir(parents=True)
    (d / "config.json").write_bytes(b"{}")
    (d / "shards" / "part-0.bin").write_bytes(os.urandom(5000))
    (d / "shards" / "part-1.bin").write_bytes(os.urandom(7000))
    (d / "model.pkl").write_bytes(b"\x80\x04N.")
    r = pp("sign", "-s", keys / "our.key", "--manifest", d)
    assert r.returncode == 0, r.stderr
    return d


def vman(d, keys, *extra):
    return pp("verify", "-p", keys / "our.pub", "--manifest", d, *extra)


def test_manifest_canonical_and_b2sum(model_dir, keys):
    text = (model_dir / "MANIFEST.pickleproof").read_text()
    lines = text.split("\n")
    assert lines[0] == "# pickleproof-manifest/v1 blake2b-512 directory" and lines[-1] == ""
    paths = [ln.split("  ", 1)[1] for ln in lines[1:-1] if not ln.startswith("#")]
    assert paths == sorted(paths) == ["config.json", "model.pkl", "shards/part-0.bin",
                                      "shards/part-1.bin"]
    for ln in lines[1:-1]:
        if not ln.startswith("#"):
            h, p = ln.split("  ", 1)
            assert h == hashlib.blake2b((model_dir / p).read_bytes()).hexdigest()
    if shutil.which("b2sum"):
        r = subprocess.run(["b2sum", "--strict", "-c", "MANIFEST.pickleproof"], cwd=model_dir,
                           capture_output=True)
        assert r.returncode == 0, r.stderr
    r = vman(model_dir, keys)
    assert r.returncode == 0, r.stderr
    assert b"4 files match" in r.stdout
    # the manifest's signature is a plain minisign signature too
    if os.path.exists(MINISIGN):
        assert ms("-V", "-H", "-p", keys / "our.pub", "-m",
                  model_dir / "MANIFEST.pickleproof").returncode == 0


@pytest.mark.parametrize("change,what", [
    (lambda d: (d / "extra.bin").write_bytes(b"x"), b"not listed"),
    (lambda d: (d / "shards" / "part-1.bin").unlink(), b"missing"),
    (lambda d: (d / "model.pkl").rename(d / "model2.pkl"), b"not listed"),
    (lambda d: (d / "config.json").write_bytes(b"[]"), b"changed"),
    (lambda d: (d / "config.json").write_bytes(b"{} "), b"size"),
    (lambda d: (d / "link").symlink_to("config.json"), b"symlink"),
    (lambda d: (shutil.move(str(d / "shards"), str(d.parent / "elsewhere")),
                (d / "shards").symlink_to(d.parent / "elsewhere")), b"symlink"),
    (lambda d: ((d / "model.pkl").unlink(), (d / "model.pkl").symlink_to("config.json")),
     b"symlink"),
    (lambda d: os.mkfifo(d / "fifo"), b"regular"),
])
def test_manifest_tampering(model_dir, keys, change, what):
    change(model_dir)
    r = vman(model_dir, keys)
    assert r.returncode == 1 and what in r.stderr, r.stderr


def test_manifest_signature_tampering(model_dir, keys):
    m = model_dir / "MANIFEST.pickleproof"
    t = m.read_bytes()
    m.write_bytes(t.replace(b"config.json", b"config.jsoN"))
    r = vman(model_dir, keys)
    assert r.returncode == 1 and b"bad-signature" in r.stderr
    m.write_bytes(t)
    (model_dir / "MANIFEST.pickleproof.minisig").unlink()
    r = vman(model_dir, keys)
    assert r.returncode == 1 and b"unsigned" in r.stderr
    # a file signature is not a manifest signature (purpose)
    assert pp("sign", "-s", keys / "our.key", m).returncode == 0
    r = vman(model_dir, keys)
    assert r.returncode == 1 and b"purpose" in r.stderr


@needs_minisign
@pytest.mark.parametrize("path", ["../escape", "/etc/passwd", "a/../b", "./a", "a//b", "a\\b"])
def test_signed_manifest_with_bad_path(tmp_path, path):
    """A manifest signed by a trusted key but with a path that escapes or is not canonical."""
    ms("-G", "-W", "-p", tmp_path / "m.pub", "-s", tmp_path / "m.key")
    d = tmp_path / "d"
    d.mkdir()
    m = d / "MANIFEST.pickleproof"
    m.write_bytes(b"# pickleproof-manifest/v1 blake2b-512 files\n# size 0\n" +
                  hashlib.blake2b(b"").hexdigest().encode() + b"  " + path.encode() + b"\n")
    assert ms("-S", "-W", "-s", tmp_path / "m.key", "-m", m).returncode == 0
    r = pp("verify", "-p", tmp_path / "m.pub", "--manifest", m)
    assert r.returncode == 1 and b"manifest rejected" in r.stderr, r.stderr


def test_manifest_of_files(tmp_path, keys):
    d = tmp_path / "m"
    d.mkdir()
    (d / "a.pkl").write_bytes(b"a")
    (d / "b.npy").write_bytes(b"b")
    (d / "unrelated").write_bytes(b"c")
    r = pp("sign", "-s", keys / "our.key", "--manifest", "--dir", d, "./b.npy", "a.pkl")
    assert r.returncode == 0, r.stderr
    assert b"files\n" in (d / "MANIFEST.pickleproof").read_bytes()
    assert vman(d / "MANIFEST.pickleproof", keys).returncode == 0
    (d / "b.npy").write_bytes(b"B")
    assert vman(d / "MANIFEST.pickleproof", keys).returncode == 1
    for bad in ("../x", "/etc/passwd"):
        r = pp("sign", "-s", keys / "our.key", "--manifest", "--dir", d, bad)
        assert r.returncode == 2 and b"escapes" in r.stderr or b"absolute" in r.stderr


def test_sign_manifest_refuses_symlinks(tmp_path, keys):
    d = tmp_path / "m"
    d.mkdir()
    (d / "a").write_bytes(b"a")
    (d / "l").symlink_to("a")
    r = pp("sign", "-s", keys / "our.key", "--manifest", d)
    assert r.returncode == 2 and b"symlink" in r.stderr


def test_password_prompt_on_tty(tmp_path):
    """keygen asks twice on /dev/tty with echo off; sign asks once."""
    import pty
    import select

    def run(args, answers):
        pid, fd = pty.fork()
        if pid == 0:
            os.environ.pop("PICKLEPROOF_PASSWORD", None)
            os.execv(PICKLEPROOF, [PICKLEPROOF, *map(str, args)])
        out = b""
        for prompt, answer in answers:
            while prompt not in out:
                r, _, _ = select.select([fd], [], [], 30)
                assert r, out
                out += os.read(fd, 1024)
            os.write(fd, answer)
        while True:
            try:
                r, _, _ = select.select([fd], [], [], 30)
                chunk = os.read(fd, 1024) if r else b""
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return os.waitstatus_to_exitcode(status), out

    rc, out = run(["keygen", "--kdf", "interactive", "-p", tmp_path / "t.pub", "-s",
                   tmp_path / "t.key"], [(b"Password: ", b"s3cret\n"),
                                         (b"Password (again): ", b"s3cret\n")])
    assert rc == 0, out
    assert b"s3cret" not in out  # echo was off
    f = tmp_path / "f"
    f.write_bytes(b"data")
    rc, out = run(["sign", "-s", tmp_path / "t.key", f], [(b"Password: ", b"s3cret\n")])
    assert rc == 0, out
    assert verify(f, tmp_path / "t.pub").returncode == 0
    rc, out = run(["keygen", "--kdf", "interactive", "-p", tmp_path / "u.pub", "-s",
                   tmp_path / "u.key"], [(b"Password: ", b"one\n"),
                                         (b"Password (again): ", b"two\n")])
    assert rc == 2 and b"do not match" in out
