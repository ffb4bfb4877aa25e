"""`nef import` + `nef run` of a real ONNX model, for the real-model tests: the model converted to
a .nef file (symbolic dims bound with --dim when given), run by the CLI on .npy inputs, and the
.npy outputs read back by output name."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def find_cli():
    env = os.environ.get("NEF_CLI")
    if env:
        return env
    cand = Path(sys.executable).parent / "nef"
    return str(cand) if cand.is_file() and os.access(cand, os.X_OK) else None


def import_and_run(model, feeds, tmp_path, dims=None):
    """{output name: array} from `nef import MODEL -o m.nef [--dim N=V]` then
    `nef run m.nef -i NAME=FILE.npy ... -o OUT`."""
    cli = find_cli()
    nef_file = tmp_path / "model.nef"
    cmd = [cli, "import", str(model), "-o", str(nef_file)]
    for k, v in (dims or {}).items():
        cmd += ["--dim", f"{k}={v}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    cmd = [cli, "run", str(nef_file), "-o", str(out)]
    for i, (name, value) in enumerate(feeds.items()):
        p = tmp_path / f"in{i}.npy"
        np.save(p, value)
        cmd += ["-i", f"{name}={p}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {p.stem: np.load(p) for p in out.glob("*.npy")}
