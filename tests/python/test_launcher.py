"""tools/nef/launcher.py, installed as the `nef` command: it finds nef/_bin/nef through importlib
without importing the package and execs it with the same arguments; without that executable it
fails with one structured line, never a traceback.

Each case runs the launcher under `python -S` (no site-packages, so the installed nef is not seen)
with PYTHONPATH pointing at a fake package in tmp_path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "tools" / "nef" / "launcher.py"


def launch(*args: str, pythonpath: Path | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-S", str(LAUNCHER), *args], capture_output=True,
                          text=True, env=env, cwd=pythonpath or ROOT / "tests", timeout=60)


def fake_package(root: Path, exe_body: str | None, *, executable: bool = True) -> Path:
    pkg = root / "nef"
    pkg.mkdir(parents=True)
    # Importing the package would fail loudly: the launcher must only locate it.
    (pkg / "__init__.py").write_text("raise RuntimeError('the launcher imported nef')\n")
    if exe_body is not None:
        (pkg / "_bin").mkdir()
        exe = pkg / "_bin" / "nef"
        exe.write_text(exe_body)
        exe.chmod(0o755 if executable else 0o644)
    return root


def test_execs_the_packaged_executable_with_arguments_and_status(tmp_path):
    root = fake_package(tmp_path, "#!/bin/sh\n"
                        "printf '[%s]' \"$0\" \"$@\"\n"
                        "echo to-stderr >&2\n"
                        "exit 7\n")
    r = launch("run", "a b.nef", "--input", "x=é.npy", "", pythonpath=root)
    assert r.returncode == 7
    argv0, *rest = re.findall(r"\[([^]]*)\]", r.stdout)
    assert Path(argv0).resolve() == (root / "nef/_bin/nef").resolve()
    assert rest == ["run", "a b.nef", "--input", "x=é.npy", ""]
    assert r.stderr == "to-stderr\n"


def test_missing_package_is_one_error_line(tmp_path):
    r = launch("--version", pythonpath=tmp_path)  # an empty folder: no nef anywhere
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1
    assert r.stderr.startswith("nef: NEFError: the nef executable (nef/_bin/nef) is not in")
    assert "nowhere on sys.path" in r.stderr and "Traceback" not in r.stderr


def test_package_without_executable_is_one_error_line(tmp_path):
    root = fake_package(tmp_path, None)
    r = launch("--version", pythonpath=root)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and str(root / "nef") in r.stderr
    assert "reinstall the package" in r.stderr and "Traceback" not in r.stderr


def test_non_executable_file_is_not_run(tmp_path):
    root = fake_package(tmp_path, "#!/bin/sh\necho ran\n", executable=False)
    r = launch("--version", pythonpath=root)
    assert r.returncode == 1 and "ran" not in r.stdout
    assert r.stderr.startswith("nef: NEFError:")
