#!/usr/bin/env python3
"""The `nef` command of the Python package (installed as bin/nef by cmake/python_package.cmake).

It replaces itself (exec) with the nef executable shipped inside the package, nef/_bin/nef, so
arguments, standard streams, exit status and signals are the executable's own. The package is
located with importlib's finder, which does not run nef/__init__.py (no numpy start-up), so the
command works wherever `import nef` does: a virtual environment, `pip install --user`,
`--target` with PYTHONPATH, a system-wide install.
"""

import importlib.util
import os
import sys


def main() -> int:
    try:
        spec = importlib.util.find_spec("nef")
    except (ImportError, ValueError):
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        exe = os.path.join(folder, "_bin", "nef")
        if os.path.isfile(exe) and os.access(exe, os.X_OK):
            os.execv(exe, ["nef", *sys.argv[1:]])
    where = ", ".join(spec.submodule_search_locations or []) if spec else "nowhere on sys.path"
    sys.stderr.write(f"nef: NEFError: the nef executable (nef/_bin/nef) is not in the nef package "
                     f"found by {sys.executable} ({where}); reinstall the package\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
