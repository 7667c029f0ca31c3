# label: install
"""`cmake --install` of the build tree under test, used the way people outside the project use it.

The build directory is the one holding the CLI under test ($PICKLEPROOF); it is installed into a
temporary prefix once per module. Then:
- the tree has the library (static; shared when PP_SHARED), header, pkg-config file, CMake
  package, CLI, sandbox helper (not on PATH), policies and man page, and the .pc file names the
  libraries the build actually linked;
- tests/install/consumer.c, a program written only against <pickleproof.h>, is built against the
  tree with pkg-config (shared, and fully static with --static) and with a tiny CMake project
  using find_package(pickleproof CONFIG), and scans a safe and a malicious pickle made here, from
  memory and by path through the installed sandbox helper;
- the installed CLI scans under the seccomp sandbox with the installed helper, still does when
  the whole tree is moved, and fails closed when the helper is gone;
- `man -l` renders the installed page.

Under the sanitizer build (PP_SANITIZE=1) the consumer is compiled with the same sanitizers and
the fully static variant is skipped (ASan has no static runtime).
"""

import os
import pickle
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.environ.get("PICKLEPROOF", os.path.join(ROOT, "build", "pickleproof"))
BUILD = os.path.dirname(os.path.abspath(CLI))
SANITIZE = os.environ.get("PP_SANITIZE", "0").lower() in ("1", "on", "true", "yes")
SAN_FLAGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if SANITIZE else []
CONSUMER = os.path.join(ROOT, "tests", "install")


def run(cmd, ok=True, **kw):
    kw.setdefault("timeout", 300)
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if ok:
        assert p.returncode == 0, f"{cmd}\nexit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def cache_value(name):
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.rstrip("\n").split("=", 1)[1]
    return None


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICKLEPROOF")}
    env.update(extra)
    return env


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    assert os.path.exists(os.path.join(BUILD, "CMakeCache.txt")), BUILD
    p = tmp_path_factory.mktemp("prefix")
    run(["cmake", "--install", BUILD, "--prefix", str(p)])
    return p


@pytest.fixture(scope="module")
def pickles(tmp_path_factory):
    d = tmp_path_factory.mktemp("pickles")
    safe, evil = d / "safe.pkl", d / "evil.pkl"
    safe.write_bytes(pickle.dumps({"weights": [0.5, 1.5], "name": "model", "epochs": 3}, 4))
    evil.write_bytes(pickle.dumps(Evil(), 2))
    return str(safe), str(evil)


def shared_built():
    return cache_value("PP_SHARED") in ("ON", "TRUE", "1")


def header_version(prefix):
    text = (prefix / "include" / "pickleproof.h").read_text()
    return re.search(r'#define PP_VERSION "([^"]+)"', text).group(1)


def test_tree_layout(prefix):
    want = ["include/pickleproof.h", "lib/libpickleproof.a", "lib/pkgconfig/pickleproof.pc",
            "lib/cmake/pickleproof/pickleproofConfig.cmake",
            "lib/cmake/pickleproof/pickleproofConfigVersion.cmake",
            "lib/cmake/pickleproof/pickleproofTargets.cmake", "bin/pickleproof",
            "libexec/pickleproof/pickleproof-sandbox", "share/man/man1/pickleproof.1"]
    if shared_built():
        want.append("lib/libpickleproof.so")
    for rel in want:
        assert (prefix / rel).exists(), rel
    assert os.access(prefix / "bin" / "pickleproof", os.X_OK)
    # the helper is spawned by the library, never run by people: not on PATH
    assert not (prefix / "bin" / "pickleproof-sandbox").exists()
    installed = sorted(p.name for p in (prefix / "share" / "pickleproof" / "policies").iterdir())
    source = sorted(n for n in os.listdir(os.path.join(ROOT, "policies")) if n.endswith(".policy"))
    assert installed == source and "default.policy" in installed


def test_pkg_config_metadata(prefix):
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    ver = run(["pkg-config", "--modversion", "pickleproof"], env=env).stdout.strip()
    assert ver == header_version(prefix)
    cflags = run(["pkg-config", "--cflags", "pickleproof"], env=env).stdout.split()
    assert any(os.path.samefile(f[2:], prefix / "include") for f in cflags if f.startswith("-I"))
    libs = run(["pkg-config", "--libs", "--static", "pickleproof"], env=env).stdout.split()
    # what the library really links, from the build's own link interface
    want = {"-lpickleproof", "-lz", "-lsodium", "-lseccomp", "-lm"}
    for found, lib in (("LZMA_FOUND", "-llzma"), ("LZ4_FOUND", "-llz4")):
        if cache_value(found) == "1":
            want.add(lib)
    if cache_value("BZ2_LIB") not in (None, "", "BZ2_LIB-NOTFOUND"):
        want.add("-lbz2")
    assert want <= set(libs), (want, libs)
    # a plain (dynamic) link needs no private dependencies
    assert "-lseccomp" not in run(["pkg-config", "--libs", "pickleproof"], env=env).stdout


def consumer_runs(exe, pickles, env=None):
    """Runs a consumer on the safe and the malicious pickle; both scans must agree, by path under
    the installed sandbox helper."""
    safe, evil = pickles
    env = clean_env(**(env or {}))
    p = run([exe, "default", safe], env=env)
    line = p.stdout.split("\n")[0].split()
    assert line[1:5] == ["safe", "safe", line[3], "0"] and line[3].startswith("seccomp"), p.stdout
    p = run([exe, "default", evil, safe], ok=False, env=env)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    first = p.stdout.split("\n")[0].split()
    assert first[1:3] == ["unsafe", "unsafe"] and first[3].startswith("seccomp"), p.stdout
    assert "global-not-allowed posix.system" in p.stdout, p.stdout
    assert re.search(r"safe\.pkl safe safe seccomp\S* 0", p.stdout), p.stdout


def test_consumer_with_pkg_config_shared(prefix, pickles):
    if not shared_built():
        pytest.skip("configured with PP_SHARED=OFF: no shared library to link")
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "pickleproof"], env=env).stdout.split()
    exe = str(prefix / "bin" / "consumer_pc_shared")  # beside the CLI: finds the helper the same way
    run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", *SAN_FLAGS,
         os.path.join(CONSUMER, "consumer.c"), "-o", exe, *flags], env=env)
    needed = run(["readelf", "-d", exe]).stdout
    assert "libpickleproof.so.0" in needed
    consumer_runs(exe, pickles, env={"LD_LIBRARY_PATH": str(prefix / "lib")})


def test_consumer_with_pkg_config_static(prefix, pickles):
    if SANITIZE:
        pytest.skip("the sanitizer runtimes cannot be linked statically")
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "--static", "pickleproof"], env=env).stdout.split()
    exe = str(prefix / "bin" / "consumer_pc_static")
    run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-static",
         os.path.join(CONSUMER, "consumer.c"), "-o", exe, *flags], env=env)
    assert "NEEDED" not in run(["readelf", "-d", exe]).stdout
    consumer_runs(exe, pickles)


def test_consumer_with_find_package(prefix, pickles, tmp_path):
    build = tmp_path / "build"
    cfg = ["cmake", "-S", CONSUMER, "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}",
           f"-DPP_EXPECT_VERSION={header_version(prefix)}",
           f"-DCMAKE_RUNTIME_OUTPUT_DIRECTORY={prefix / 'bin'}",
           "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror " + " ".join(SAN_FLAGS)]
    run(cfg)
    run(["cmake", "--build", str(build), "-j2"])
    consumer_runs(str(prefix / "bin" / "consumer_static"), pickles)
    # the static library's dependencies come through the package, not the consumer's CMakeLists
    assert "libpickleproof.so" not in run(["readelf", "-d", str(prefix / "bin" / "consumer_static")]).stdout
    if shared_built():
        exe = str(prefix / "bin" / "consumer_shared")
        assert "libpickleproof.so.0" in run(["readelf", "-d", exe]).stdout
        consumer_runs(exe, pickles)  # the imported target's location is in its RUNPATH
    # the version file refuses another version
    bad = run(cfg[:4] + [str(tmp_path / "bad"), f"-DCMAKE_PREFIX_PATH={prefix}",
                         "-DPP_EXPECT_VERSION=99.0"], ok=False)
    assert bad.returncode != 0 and "pickleproof" in bad.stderr


def test_shared_library_exports_only_the_api(prefix):
    if not shared_built():
        pytest.skip("configured with PP_SHARED=OFF")
    syms = run(["nm", "-D", "--defined-only", str(prefix / "lib" / "libpickleproof.so")]).stdout
    exported = {l.split()[-1].split("@")[0] for l in syms.splitlines() if " T " in l}
    header = (prefix / "include" / "pickleproof.h").read_text()
    declared = set(re.findall(r"\b(pp_[a-z0-9_]+)\(", header))
    assert exported and exported <= declared, exported - declared
    assert {"pp_scan_buffer", "pp_scan_file", "pp_policy_new"} <= exported


def test_installed_cli_uses_installed_helper(prefix, pickles, tmp_path):
    safe, evil = pickles
    cli = str(prefix / "bin" / "pickleproof")
    p = run([cli, "scan", safe], env=clean_env(), cwd=tmp_path)
    assert re.search(r"SAFE .*sandbox seccomp", p.stdout), p.stdout
    p = run([cli, "scan", evil], ok=False, env=clean_env(), cwd=tmp_path)
    assert p.returncode == 1 and "posix.system" in p.stdout and "sandbox seccomp" in p.stdout

    # A moved tree still works: the CLI finds the helper relative to itself, not at a path
    # fixed when it was built (the build tree's helper is never used by an installed CLI).
    moved = tmp_path / "moved"
    shutil.copytree(prefix, moved, symlinks=True)
    cli = str(moved / "bin" / "pickleproof")
    p = run([cli, "scan", safe], env=clean_env(), cwd=tmp_path)
    assert "sandbox seccomp" in p.stdout, p.stdout
    # ... and without its helper it fails closed (the default level requires the sandbox)
    os.remove(moved / "libexec" / "pickleproof" / "pickleproof-sandbox")
    p = run([cli, "scan", safe], ok=False, env=clean_env(), cwd=tmp_path)
    assert p.returncode == 2 and "SAFE" not in p.stdout, (p.returncode, p.stdout, p.stderr)
    assert "sandbox" in p.stdout + p.stderr


def test_man_page_renders(prefix):
    page = prefix / "share" / "man" / "man1" / "pickleproof.1"
    p = run(["man", "-l", str(page)], env=dict(os.environ, MANPAGER="cat", PAGER="cat",
                                                 MANWIDTH="80"))
    assert "pickleproof" in p.stdout and "SYNOPSIS" in p.stdout


def test_python_package_from_the_installed_tree(prefix, pickles):
    """The pickleproof package installs under lib/python3.X/dist-packages with its extension and
    its own sandbox helper, and loads (sandboxed) from there, not from the build tree."""
    ver = "%d.%d" % sys.version_info[:2]
    site = prefix / "lib" / ("python" + ver) / "dist-packages"
    assert (site / "pickleproof" / "__init__.py").exists()
    assert os.access(site / "pickleproof" / "pickleproof-sandbox", os.X_OK)
    safe, evil = pickles
    code = ("import pickleproof, sys\n"
            "assert pickleproof.__file__.startswith(sys.argv[1]), pickleproof.__file__\n"
            "print(pickleproof.load(sys.argv[2]))\n"
            "try:\n    pickleproof.load(sys.argv[3])\nexcept pickleproof.UnsafePickleError as e:\n"
            "    print('refused', e.global_name, pickleproof.scan(sys.argv[2]).sandbox)\n")
    env = clean_env(PYTHONPATH=str(site))
    env.pop("LD_PRELOAD", None)
    if os.environ.get("PP_SANITIZE") in ("1", "ON", "TRUE", "true"):
        pytest.skip("the installed extension is instrumented; test_load covers it under ASan")
    p = run([sys.executable, "-c", code, str(site), safe, evil], env=env)
    assert "'weights': [0.5, 1.5]" in p.stdout
    assert "refused posix.system seccomp" in p.stdout, p.stdout
