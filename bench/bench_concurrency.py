"""Inter-op parallelism: the same plans with concurrent groups on and off (NEF_CONCURRENT_STEPS).

The setting is read once per process, so each side runs in its own worker process; the parent
asks them for samples alternately (100 ms apart, so neither side's threads are still busy when
the other's sample starts) and reports medians and the ratio off / on (> 1: grouping helps).

Cases: `branches-N`: B independent chains of `depth` N x N matmul + tanh steps, summed (the
shape grouping is for: kernels too small to split well across threads); the real models of
bench_onnx_models.py (--models), with its inputs.

    .venv/bin/python bench/bench_concurrency.py [--threads 2] [--repeats 15] [--models det,ocr]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORKER = r"""
import json, sys, time
import numpy as np
import nef
spec = json.loads(sys.argv[1])
nef.config(threads=spec["threads"])
rng = np.random.default_rng(0)
if spec["kind"] == "branches":
    n, depth, branches = spec["n"], spec["depth"], spec["branches"]
    xs = [nef.placeholder(f"x{b}", (n, n), "float32") for b in range(branches)]
    total = None
    for x in xs:
        y = x
        for _ in range(depth):
            if spec.get("op") == "softmax":  # row kernels: layernorm, then softmax
                y = nef.softmax(nef.layernorm(y, axis=-1) * 1.5, axis=-1)
            else:
                w = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)
                y = nef.tanh(nef.matmul(y, nef.tensor(w)))
        total = y if total is None else total + y
    path = spec["tmp"]
    nef.build(path, {"y": total})
    g = nef.load(path)
    feeds = {f"x{b}": rng.standard_normal((n, n)).astype(np.float32) for b in range(branches)}
else:
    sys.path.insert(0, spec["bench_dir"])
    import bench_onnx_models
    bench_onnx_models.CHILD = False  # this worker writes its own MiniLM file
    path, feeds = bench_onnx_models.MODELS[spec["model"]][1]()
    g = nef.from_onnx(path)
for _ in range(20):
    g.run(feeds)
groups = sum("concurrent" in k for k in g.plan()["kernels"])  # after a run: dims bound
t = time.perf_counter(); k = 0
while time.perf_counter() - t < 0.05:
    g.run(feeds); k += 1
print(json.dumps({"ready": True, "groups": groups, "calls": max(k, 1),
                  "threads": nef.config()["threads"]}), flush=True)
for line in sys.stdin:
    calls = int(line)
    t = time.perf_counter()
    for _ in range(calls):
        g.run(feeds)
    print(json.dumps({"s": (time.perf_counter() - t) / calls}), flush=True)
"""


def start(spec, on):
    env = dict(os.environ, NEF_CONCURRENT_STEPS="1" if on else "0")
    p = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(spec)], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    hello = json.loads(p.stdout.readline())
    return p, hello


def sample(p, calls):
    p.stdin.write(f"{calls}\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())["s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--models", default="det,ocr,vad,minilm",
                    help="models of bench_onnx_models.py ('' for none)")
    args = ap.parse_args()
    tmp = Path("/tmp") if Path("/tmp").is_dir() else Path(".")
    cases = []
    for op in ("matmul", "softmax"):
        for n in (32, 64, 128, 256):
            cases.append((f"branches-2x8 {op} {n}x{n}",
                          {"kind": "branches", "op": op, "n": n, "depth": 8, "branches": 2,
                           "tmp": str(tmp / f"nef_bench_conc_{os.getpid()}_{op}_{n}.nef")}))
    for name in filter(None, args.models.split(",")):
        cases.append((name, {"kind": "model", "model": name,
                             "bench_dir": str(Path(__file__).resolve().parent)}))
    print(f"# bench_concurrency, threads {args.threads}, load {os.getloadavg()[0]:.2f}")
    print("| case | NEF threads (read back on / off) | groups | on (us) | off (us) | off / on |")
    print("|---|---|---|---|---|---|")
    for label, spec in cases:
        spec["threads"] = args.threads
        on, h_on = start(spec, True)
        off, h_off = start(spec, False)
        calls = max(1, min(h_on["calls"], h_off["calls"]))
        t_on, t_off = [], []
        for _ in range(args.repeats):
            time.sleep(0.1)
            t_on.append(sample(on, calls))
            time.sleep(0.1)
            t_off.append(sample(off, calls))
        for p in (on, off):
            p.stdin.close()
            p.wait()
        m_on, m_off = statistics.median(t_on), statistics.median(t_off)
        print(f"| {label} | {h_on['threads']} / {h_off['threads']} | {h_on['groups']} | "
              f"{m_on * 1e6:.1f} | {m_off * 1e6:.1f} | "
              f"{m_off / m_on:.2f} |", flush=True)
        if spec.get("tmp"):
            Path(spec["tmp"]).unlink(missing_ok=True)
    print(f"# load after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
