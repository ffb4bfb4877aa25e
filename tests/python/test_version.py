"""One version number: the VERSION file, read by CMake (cmake/version.cmake -> nef/version.h: the C
API, `nef --version`, nef.__version__) and by scikit-build-core's regex provider (the wheel's
metadata). Every reader must agree, and a malformed VERSION must stop the build, not leak out.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.version import Version

import nef

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "VERSION").read_text().strip()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_version_file_is_pep440_normal_form():
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?", VERSION), VERSION
    assert str(Version(VERSION)) == VERSION  # what pip and the wheel's file name will show


def test_python_version_matches():
    assert nef.__version__ == VERSION
    assert nef._nef.__version__ == VERSION
    assert nef.devices()["nef_version"] == VERSION
    # The installed distribution's metadata (make build installs the package into this venv).
    assert importlib.metadata.version("nef") == VERSION


def test_cli_version_matches():
    cli = Path(sys.executable).parent / "nef"
    if not cli.exists():
        pytest.skip("the nef command is not installed next to this interpreter")
    r = subprocess.run([str(cli), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"nef {VERSION}\n" and r.stderr == ""


def test_wheel_metadata_reads_the_version_file():
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert "version" not in PYPROJECT["project"]
    meta = PYPROJECT["tool"]["scikit-build"]["metadata"]["version"]
    assert meta["provider"] == "scikit_build_core.metadata.regex" and meta["input"] == "VERSION"
    rx = re.compile(meta["regex"], re.MULTILINE)  # as scikit-build-core applies it
    assert rx.search((ROOT / "VERSION").read_text())["value"] == VERSION
    # Same acceptance as cmake/version.cmake: surrounding blank space is fine, a second word is not.
    assert rx.search("\n 1.2.3 \n")["value"] == "1.2.3"
    for bad in ("", "\n", "1.2.3\n4.5.6\n", "1.2.3 rc1"):
        assert rx.search(bad) is None, bad


def test_no_second_copy_of_the_version():
    """A version literal anywhere in the code would be a second source that can drift."""
    literal = re.compile(r"""["']""" + re.escape(VERSION) + r"""["']""")
    hits = []
    for folder in ("bindings", "cmake", "include", "python", "src", "tools"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".cpp", ".h", ".c", ".go", ".cmake", ".in"}:
                if literal.search(path.read_text(errors="replace")):
                    hits.append(str(path.relative_to(ROOT)))
    for name in ("CMakeLists.txt", "pyproject.toml"):
        if VERSION in (ROOT / name).read_text():
            hits.append(name)
    assert not hits, f"hard-coded version {VERSION} in {hits}; read it from VERSION instead"
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"project\(nef VERSION \$\{NEF_VERSION_NUMERIC\}", cmake)


def test_onnx_pin_is_the_same_for_build_and_tests():
    """The importer's schema (build) and the conformance tests must use one onnx release."""
    build_pins = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("onnx")]
    test_pins = [line.strip() for line in (ROOT / "scripts/requirements.txt").read_text().splitlines()
                 if re.match(r"onnx\s*[=<>!~]", line)]
    assert len(build_pins) == 1 and re.fullmatch(r"onnx==[\d.]+", build_pins[0]), build_pins
    assert test_pins == build_pins


# ---- cmake/version.cmake on good and malformed VERSION files -----------------------------------

CMAKE = shutil.which("cmake")


def configure(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    """A throwaway project that includes the real cmake/version.cmake, with VERSION = text."""
    (tmp_path / "cmake").mkdir()
    for f in ("version.cmake", "version.h.in"):
        shutil.copy(ROOT / "cmake" / f, tmp_path / "cmake" / f)
    (tmp_path / "VERSION").write_text(text)
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\n"
        "include(cmake/version.cmake)\n"
        "project(t VERSION ${NEF_VERSION_NUMERIC} LANGUAGES NONE)\n"
        'message(STATUS "project=${PROJECT_VERSION} full=${NEF_VERSION}")\n')
    return subprocess.run([CMAKE, "-S", str(tmp_path), "-B", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CMAKE is None, reason="cmake not found")
@pytest.mark.parametrize("text, full, numeric", [
    ("0.1.0\n", "0.1.0", (0, 1, 0)),
    ("10.20.30", "10.20.30", (10, 20, 30)),
    ("  1.2.3rc4\n\n", "1.2.3rc4", (1, 2, 3)),
    ("2.0.0a1.post2.dev3\n", "2.0.0a1.post2.dev3", (2, 0, 0)),
])
def test_version_cmake_accepts(tmp_path, text, full, numeric):
    r = configure(tmp_path, text)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"project={'.'.join(map(str, numeric))} full={full}" in r.stdout
    header = (tmp_path / "b/generated/nef/version.h").read_text()
    assert f'#define NEF_VERSION_STRING "{full}"' in header
    for part, value in zip(("MAJOR", "MINOR", "PATCH"), numeric):
        assert f"#define NEF_VERSION_{part} {value}\n" in header
    assert str(Version(full)) == full


@pytest.mark.skipif(CMAKE is None, reason="cmake not found")
@pytest.mark.parametrize("text", [
    "", "\n", "0.1", "1", "1.2.3.4", "v1.2.3", "01.2.3", "1.02.3", "1.2.3-rc1", "1.2.3rc",
    "1.2.3 rc1", "1.2.3\n4.5.6\n", "1.2.3+local", "1.2.3.post", "1.2.3.dev", "1.2.3RC1",
    "\u200b1.2.3",
])
def test_version_cmake_rejects_malformed(tmp_path, text):
    r = configure(tmp_path, text)
    assert r.returncode != 0
    assert "VERSION:" in r.stderr and "is not a version of the form MAJOR.MINOR.PATCH" in r.stderr
    assert not (tmp_path / "b/generated/nef/version.h").exists()
