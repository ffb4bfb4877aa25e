#!/usr/bin/env bash
# Developer build in its own folder (so that several people can build at once without sharing
# build/release or reinstalling .venv): C++ targets, the CLI and the Python extension, plus
# DIR/pyroot, a package folder to put on PYTHONPATH. NEF_CMAKE_ARGS adds CMake options.
#   scripts/dev-build.sh build-mine [ninja targets...]
#   PYTHONPATH=build-mine/pyroot .venv/bin/python -m pytest tests/python/test_nn.py
set -euo pipefail
dir=${1:?usage: scripts/dev-build.sh BUILD_DIR [targets...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ ! -f "$dir/build.ninja" ]]; then
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNEF_BUILD_PYTHON=ON \
    -DNEF_BUILD_TESTS=ON -DPython_EXECUTABLE="$root/.venv/bin/python" ${NEF_CMAKE_ARGS:-} >/dev/null
fi
ninja -C "$dir" "$@"
mkdir -p "$dir/pyroot/nef"
for f in "$root"/python/nef/*.py; do ln -sf "$f" "$dir/pyroot/nef/"; done
for d in "$root"/python/nef/*/; do ln -sfn "${d%/}" "$dir/pyroot/nef/$(basename "$d")"; done
for f in "$dir"/_nef*.so; do [[ -e "$f" ]] && ln -sf "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$dir/pyroot/nef/"; done
exit 0
