"""The path a user takes to NEF, end to end (`make test-wheel`, part of `make test`).

A fresh "builder" virtual environment holds only the wheel tools (scripts/requirements-wheel.txt)
and runs scripts/build_wheel.py: the sdist, then the wheel built from that sdist with build
isolation (so [build-system] requires must name everything the build takes from PyPI) in
build/wheel (kept between runs: only what changed recompiles), then `auditwheel repair`. A second
fresh virtual environment, which cannot see .venv or the source tree, installs the wheel; the
README quick start, an ONNX import, and the `nef` command run there, and every shared library
they load must be in the wheel or in the manylinux policy's short list of system libraries.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "VERSION").read_text().strip()
BUILD_DIR = Path(os.environ.get("NEF_WHEEL_BUILD_DIR", ROOT / "build" / "wheel"))

# Libraries a manylinux wheel may take from the system (glibc's and GCC's runtime; PEP 600 and
# auditwheel's policies). Anything else must be bundled in the wheel.
SYSTEM_LIBS = {
    "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "libutil.so.1",
    "libresolv.so.2", "libnsl.so.1", "libstdc++.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2",
    "linux-vdso.so.1",
}


def clean_env(venv: Path | None = None) -> dict:
    """The environment without anything that could reach .venv, the tree or other libraries."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "NEF_", "LD_", "CONDA"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
    return env


def run(cmd, *, log: Path | None = None, timeout=600, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("env", clean_env())
    cmd = [str(c) for c in cmd]
    if log is None:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
        assert r.returncode == 0, f"{cmd} -> {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
        return r
    with log.open("a") as f:  # long steps: the whole output goes to the log, its end to the failure
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True, timeout=timeout, **kw)
    assert r.returncode == 0, f"{cmd} -> {r.returncode}; see {log}:\n{log.read_text()[-6000:]}"
    return r


def make_venv(path: Path) -> Path:
    # The base interpreter, not this test's (.venv's): the new environment shares nothing with .venv.
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", path])
    cfg = (path / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("packaging")


@pytest.fixture(scope="module")
def built(work) -> dict:
    """Builds the sdist and the repaired wheel with fresh tools; returns their paths."""
    builder = make_venv(work / "builder")
    py = builder / "bin" / "python"
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    log = BUILD_DIR / "test-wheel.log"
    log.write_text("")
    run([py, "-m", "pip", "install", "-q", "-r", ROOT / "scripts/requirements-wheel.txt"],
        log=log, env=clean_env(builder))
    env = clean_env(builder)
    if "CMAKE_BUILD_PARALLEL_LEVEL" in os.environ:
        env["CMAKE_BUILD_PARALLEL_LEVEL"] = os.environ["CMAKE_BUILD_PARALLEL_LEVEL"]
    out = subprocess.run([str(py), str(ROOT / "scripts/build_wheel.py"), "--out", str(work / "dist"),
                          "--build-dir", str(BUILD_DIR)],
                         stdout=subprocess.PIPE, stderr=log.open("a"), text=True, env=env,
                         timeout=3600, cwd=work)
    assert out.returncode == 0, f"build_wheel.py failed; see {log}:\n{log.read_text()[-6000:]}"
    paths = [Path(p) for p in out.stdout.split()]
    sdist = [p for p in paths if p.name.endswith(".tar.gz")]
    wheel = [p for p in paths if p.suffix == ".whl"]
    assert len(sdist) == 1 and len(wheel) == 1, out.stdout
    return {"sdist": sdist[0], "wheel": wheel[0], "builder": builder}


@pytest.fixture(scope="module")
def venv(work, built) -> dict:
    """A fresh virtual environment with the wheel installed (and its dependencies from PyPI)."""
    v = make_venv(work / "venv")
    run([v / "bin/python", "-m", "pip", "install", "-q", built["wheel"]], env=clean_env(v))
    platlib = run([v / "bin/python", "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"],
                  env=clean_env(v)).stdout.strip()
    run_dir = work / "run"
    run_dir.mkdir()
    return {"root": v, "py": v / "bin/python", "nef": v / "bin/nef", "platlib": Path(platlib),
            "cwd": run_dir}


def in_venv(venv, *args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return run([*args], env=clean_env(venv["root"]), cwd=cwd or venv["cwd"], timeout=timeout)


def py_in_venv(venv, code: str, *, cwd=None) -> str:
    return in_venv(venv, venv["py"], "-c", textwrap.dedent(code), cwd=cwd).stdout


def is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def dynamic_section(path: Path) -> tuple[list[str], list[str]]:
    """(DT_NEEDED names, RUNPATH/RPATH entries) of an ELF file, from readelf."""
    out = run(["readelf", "-d", path]).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    paths = re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[([^\]]*)\]", out)
    return needed, [p for entry in paths for p in entry.split(":")]


# ---- the sdist ---------------------------------------------------------------------------------


def test_sdist_holds_the_tracked_sources_and_nothing_built(built):
    top = f"nef-{VERSION}"
    assert built["sdist"].name == f"{top}.tar.gz"
    with tarfile.open(built["sdist"]) as tar:
        names = {m.name for m in tar.getmembers() if m.isfile()}
        pkg_info = tar.extractfile(f"{top}/PKG-INFO").read().decode()
    assert all(n.startswith(top + "/") for n in names)
    files = {n[len(top) + 1:] for n in names}
    assert f"Version: {VERSION}\n" in pkg_info and "Name: nef\n" in pkg_info
    for prefix in ("build/", "build-", ".venv/", "out/", "dist/", ".git/"):
        assert not [f for f in files if f.startswith(prefix)], prefix
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip("not a git checkout: the sdist's file list cannot be compared")
    # (Files deleted in the working tree but not yet in git are not expected.)
    missing = sorted(f for f in set(tracked.stdout.split("\n")) - {""} - files
                     if (ROOT / f).is_file())
    assert not missing, f"git-tracked files missing from the sdist: {missing[:20]}"


# ---- the wheel ---------------------------------------------------------------------------------


def test_wheel_is_manylinux_with_one_version(built):
    wheel = built["wheel"]
    m = re.fullmatch(rf"nef-(?P<v>[^-]+)-(?P<py>cp\d+)-(?P=py)-(?P<plat>[\w.]+)\.whl", wheel.name)
    assert m, wheel.name
    assert m["v"] == VERSION
    assert f"cp{sys.version_info.major}{sys.version_info.minor}" == m["py"]
    plats = m["plat"].split(".")  # one tag, or several in auditwheel's compressed form
    assert all(re.fullmatch(rf"manylinux_2_\d+_{platform.machine()}", p) for p in plats), plats
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(f"nef-{VERSION}.dist-info/METADATA").decode()
        tags = re.findall(r"^Tag: (.+)$", z.read(f"nef-{VERSION}.dist-info/WHEEL").decode(), re.M)
        script = z.read(f"nef-{VERSION}.data/scripts/nef")
        names = z.namelist()
    assert f"\nVersion: {VERSION}\n" in meta and "\nRequires-Python: >=3.10\n" in meta
    assert sorted(tags) == sorted(f"{m['py']}-{m['py']}-{p}" for p in plats)
    # bin/nef is the Python launcher (pip rewrites "#!python"), the executable is in the package.
    assert script.startswith(b"#!python\n") and b"_bin" in script
    assert "nef/_bin/nef" in names
    assert any(re.fullmatch(r"nef/_nef\.cpython-\d+-.+\.so", n) for n in names)


def test_wheel_needs_no_library_outside_it_or_the_policy(built, work):
    """Every ELF file's DT_NEEDED is bundled (nef.libs/) or a manylinux system library."""
    unpacked = work / "unpacked"
    with zipfile.ZipFile(built["wheel"]) as z:
        z.extractall(unpacked)
    bundled = {p.name for p in (unpacked / "nef.libs").glob("*")}
    elves = [p for p in unpacked.rglob("*") if p.is_file() and is_elf(p)]
    assert {p.relative_to(unpacked).as_posix() for p in elves} >= {"nef/_bin/nef"}
    assert any(p.parent.name == "nef" and p.name.startswith("_nef.") for p in elves)
    for elf in elves:
        needed, rpath = dynamic_section(elf)
        outside = [n for n in needed if n not in bundled and n not in SYSTEM_LIBS]
        assert not outside, f"{elf.relative_to(unpacked)} needs {outside}, neither bundled nor system"
        if any(n in bundled for n in needed):
            # Found through a RUNPATH relative to the file itself, inside the wheel.
            assert rpath and all(p.startswith("$ORIGIN") for p in rpath), (elf, rpath)
            dirs = {(elf.parent / p.replace("$ORIGIN", ".")).resolve() for p in rpath}
            assert (unpacked / "nef.libs").resolve() in dirs, (elf, rpath)


# ---- the installed wheel in a fresh virtual environment ----------------------------------------


def test_fresh_venv_sees_only_the_wheel(venv):
    info = json.loads(py_in_venv(venv, """
        import importlib.metadata, json, sys, nef
        print(json.dumps({"file": nef.__file__, "path": sys.path, "prefix": sys.prefix,
                          "version": nef.__version__, "ext": nef._nef.__version__,
                          "dist": importlib.metadata.version("nef"),
                          "devices": nef.devices()["nef_version"]}))
        """))
    assert Path(info["file"]).is_relative_to(venv["platlib"])
    assert Path(info["prefix"]) == venv["root"]
    for entry in info["path"]:
        assert ".venv" not in Path(entry).parts and not Path(entry).is_relative_to(ROOT), entry
    assert info["version"] == info["ext"] == info["dist"] == info["devices"] == VERSION


def test_nef_command_version(venv):
    r = in_venv(venv, venv["nef"], "--version")
    assert r.stdout == f"nef {VERSION}\n" and r.stderr == ""
    # Through PATH, from another folder, as a user types it.
    r = in_venv(venv, "nef", "--help", cwd="/")
    assert "run" in r.stdout and "inspect" in r.stdout


def readme_quick_start() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python quick start"):]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "README: no python block under 'Python quick start'"
    return m.group(1)


def test_readme_quick_start_and_nef_run(venv):
    """The README's quick start verbatim, then the graph it saved through `nef run`."""
    cwd = venv["cwd"] / "quickstart"
    cwd.mkdir()
    check = """
import numpy as _np
_np.testing.assert_array_equal(c.numpy(), _np.array([[19, 22], [43, 50]], _np.float32))
_np.save("x.npy", _np.array([[0.5, -1.0], [2.0, 0.25]], _np.float32))
"""
    r = in_venv(venv, venv["py"], "-c", readme_quick_start() + check, cwd=cwd)
    assert r.stdout.startswith("[[19. 22.]\n [43. 50.]]\n"), r.stdout
    assert "{'output': array([[0.26894" in r.stdout
    assert (cwd / "model.nef").stat().st_size > 0
    in_venv(venv, "nef", "run", "model.nef", "--input", "x=x.npy", "--output", "out", cwd=cwd)
    x = np.load(cwd / "x.npy").astype(np.float64)
    logits = x @ np.array([[5.0, 6.0], [7.0, 8.0]])
    ref = np.exp(logits - logits.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    got = np.load(cwd / "out" / "output.npy")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-7)


@pytest.fixture(scope="module")
def onnx_model(work) -> tuple[Path, np.ndarray]:
    """relu(X @ W + B) with a symbolic batch dim, written by the onnx package (of .venv)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1234)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["XW"]),
         helper.make_node("Add", ["XW", "B"], ["S"]),
         helper.make_node("Relu", ["S"], ["Y"])],
        "affine_relu",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 5])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path = work / "affine_relu.onnx"
    onnx.save(model, path)
    return path, (w, b)


def test_onnx_import_from_the_wheel(venv, onnx_model):
    """The importer (protobuf-lite, bundled) from Python and from `nef import` + `nef run`."""
    path, (w, b) = onnx_model
    cwd = venv["cwd"] / "onnx"
    cwd.mkdir()
    x = np.random.default_rng(7).standard_normal((4, 5)).astype(np.float32)
    np.save(cwd / "x.npy", x)
    ref = np.maximum(x.astype(np.float64) @ w + b, 0)
    py_in_venv(venv, f"""
        import numpy as np, nef
        g = nef.from_onnx({str(path)!r}, dims={{"batch": 4}})
        np.save("py.npy", g.run({{"X": np.load("x.npy")}})["Y"])
        """, cwd=cwd)
    np.testing.assert_allclose(np.load(cwd / "py.npy"), ref, rtol=1e-5, atol=1e-6)
    in_venv(venv, "nef", "import", path, "-o", "m.nef", "--dim", "batch=4", cwd=cwd)
    in_venv(venv, "nef", "run", "m.nef", "--input", "X=x.npy", "--output", "out", cwd=cwd)
    np.testing.assert_allclose(np.load(cwd / "out" / "Y.npy"), ref, rtol=1e-5, atol=1e-6)
    # A malformed model is a structured error from the installed command too, not a crash.
    (cwd / "bad.onnx").write_bytes(path.read_bytes()[:40])
    r = subprocess.run([str(venv["nef"]), "import", "bad.onnx", "-o", "bad.nef"], cwd=cwd,
                       env=clean_env(venv["root"]), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("nef: NEFFormatError:"), r.stderr


# The dynamic loader's own account (LD_DEBUG=files) of what each file loaded and why: a library
# "needed by" a file of the wheel must be bundled or a system library; one a file of the wheel
# dlopen()s on purpose may also be a GPU driver's entry point, whose own dependencies are the
# driver's business. Libraries already loaded by someone else (Python, numpy) are not reported.
LOAD_RE = re.compile(r"file=(\S+) \[\d+\];\s+(needed by|dynamically loaded by) (\S+) \[\d+\]$")
DRIVER_RE = re.compile(r"lib(OpenCL|cuda|nvrtc|nvrtc-builtins)\.so(\.[\d.]+)?")


def loader_trace(venv, *cmd, cwd) -> Path:
    """Runs cmd in the venv under LD_DEBUG=files; returns the trace files' common prefix."""
    prefix = Path(cwd) / "ld-debug"
    env = clean_env(venv["root"])
    env.update(LD_DEBUG="files", LD_DEBUG_OUTPUT=str(prefix))
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"{cmd}: {r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return prefix


def wheel_loads(venv, prefix: Path, program: str | None = None) -> tuple[list[str], list[str]]:
    """(the loads caused by the wheel's files, those among them outside wheel/policy/drivers).
    `program`: the main program's name as the loader reports it (its argv[0]), if in the wheel."""
    roots = [(venv["platlib"] / d).resolve() for d in ("nef", "nef.libs")]
    bundled = {p.name for p in (venv["platlib"] / "nef.libs").glob("*")}

    def in_wheel(path: str) -> bool:
        return "/" in path and any(Path(path).resolve().is_relative_to(r) for r in roots)

    def caused_by_wheel(parent: str) -> bool:
        return in_wheel(parent) or parent == program

    seen, bad = [], []
    files = sorted(prefix.parent.glob(prefix.name + ".*"))
    assert files, "LD_DEBUG wrote nothing"
    for f in files:
        for line in f.read_text(errors="replace").splitlines():
            m = LOAD_RE.search(line.rstrip())
            if not m or not caused_by_wheel(m[3]):
                continue
            child, how, parent = m[1], m[2], m[3]
            name = Path(child).name
            seen.append(f"{name} <- {Path(parent).name}")
            if in_wheel(child) or ("/" not in child and name in bundled):
                continue
            if name in SYSTEM_LIBS or (how == "dynamically loaded by" and DRIVER_RE.fullmatch(name)):
                continue
            bad.append(f"{child} {how} {parent}")
    return seen, bad


def test_runtime_loads_only_bundled_or_system_libraries(venv, onnx_model):
    """Python: the quick start's kind of work, an ONNX import (protobuf-lite) and the LLM
    tokenizer (PCRE2, with Unicode properties: "éx" is one pre-token only if é is a letter)."""
    path, _ = onnx_model
    cwd = venv["cwd"] / "ld-python"
    cwd.mkdir()
    prefix = loader_trace(venv, venv["py"], "-c", textwrap.dedent(f"""
        import numpy as np, nef
        a = nef.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=nef.float32)
        (nef.softmax(a @ a, dim=-1) + 1).execute()
        nef.from_onnx({str(path)!r}, dims={{"batch": 2}}).run({{"X": np.ones((2, 5), np.float32)}})
        kept = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
        symbols = [chr(b) for b in kept] + [chr(256 + i) for i in range(256 - len(kept))]
        tok = nef.llm.Tokenizer(symbols + ["Ã©", "Ã©x"], ["Ã ©", "Ã© x"], pre="smollm")
        assert tok.encode("éx") == [len(symbols) + 1], tok.encode("éx")
        print(nef.devices()["enabled"])
        """), cwd=cwd)
    seen, bad = wheel_loads(venv, prefix)
    assert seen, "no library load was attributed to the wheel's files"
    assert not bad, f"loaded from outside the wheel and the manylinux policy: {bad}"


def test_cli_executable_resolves_only_bundled_or_system_libraries(venv, onnx_model):
    path, _ = onnx_model
    cwd = venv["cwd"] / "ld-cli"
    cwd.mkdir()
    prefix = loader_trace(venv, venv["nef"], "import", path, "-o", "m.nef", "--dim", "batch=1",
                          cwd=cwd)
    # The launcher execs nef/_bin/nef with argv[0] "nef", the name the loader reports.
    seen, bad = wheel_loads(venv, prefix, program="nef")
    assert any(s.endswith("<- nef") for s in seen), seen  # the executable's own dependencies
    assert not bad, f"loaded from outside the wheel and the manylinux policy: {bad}"
    exe = venv["platlib"] / "nef" / "_bin" / "nef"
    out = in_venv(venv, "ldd", exe).stdout
    assert "not found" not in out, out
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)(?: => (\S+))?", line)
        name, where = m.group(1), m.group(2)
        if where and Path(where).resolve().is_relative_to(venv["root"].resolve()):
            assert Path(where).parent.name == "nef.libs", line
        else:
            assert Path(name).name in SYSTEM_LIBS, f"{name} ({where}) is outside the wheel: {line}"
