#!/usr/bin/env python3
"""Heterogeneous placement: CPU-only vs automatic (the default, and over all devices) vs all-OpenCL
on the same graphs, in one run.

    .venv/bin/python bench/bench_devices.py                 # MLP, transformer block, MiniLM
    .venv/bin/python bench/bench_devices.py --repeats 9 --record

For each workload (.nef files built with the Python API, run with Graph.run) and each device
configuration, a fresh worker subprocess (devices are chosen per process, through
nef.config(devices=...)) loads the file, runs it once (compiles; OpenCL builds programs or
reads them from the on-disk cache), then times --repeats runs; reported: the median and min, the
devices the plan used, the share of a run spent in transfers (the profile's copy steps), and
the cost model's prediction against the measurement (whole run and per kernel kind). Configs:
  cpu      nef.config(devices=["cpu"])            everything on the CPU
  auto     nef.config(devices=[])                 the default: CPU and devices with hardware of
                                                  their own (not an OpenCL device on the host's
                                                  cores, such as PoCL's)
  all      nef.config(devices=["all"])            the cost model chooses among every device
  opencl   nef.config(devices=["opencl"])         all OpenCL supports on OpenCL, the rest on CPU
The header records `uptime` before and after and the thread count NEF used (nef.config()).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
CONFIGS = {"cpu": ["cpu"], "auto": [], "all": ["all"], "opencl": ["opencl"]}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ---- workloads -----------------------------------------------------------------------------

def build_mlp(d: Path):
    import nef
    rng = np.random.default_rng(1)
    x = nef.placeholder("x", (256, 1024), nef.float32)
    w1 = nef.tensor(rng.standard_normal((1024, 4096)).astype(np.float32) * 0.02)
    b1 = nef.tensor(rng.standard_normal(4096).astype(np.float32) * 0.02)
    w2 = nef.tensor(rng.standard_normal((4096, 1024)).astype(np.float32) * 0.02)
    y = nef.gelu(x @ w1 + b1, approximate="tanh") @ w2
    nef.build(d / "mlp.nef", {"y": y})
    return d / "mlp.nef", {"x": rng.standard_normal((256, 1024)).astype(np.float32)}


def build_block(d: Path, S=128, D=384, H=6):
    """One pre-norm transformer encoder block (attention + GELU MLP), batch 1."""
    import nef
    rng = np.random.default_rng(2)
    p = lambda *s: nef.tensor(rng.standard_normal(s).astype(np.float32) * 0.05)  # noqa: E731
    x = nef.placeholder("x", (1, S, D), nef.float32)
    h = nef.layernorm(x, p(D), p(D))
    heads = lambda t: t.reshape((1, S, H, D // H)).transpose((0, 2, 1, 3))  # noqa: E731
    q, k, v = heads(h @ p(D, D)), heads(h @ p(D, D)), heads(h @ p(D, D))
    a = nef.attention(q, k, v).transpose((0, 2, 1, 3)).reshape((1, S, D))
    x2 = x + a @ p(D, D)
    y = x2 + nef.gelu(nef.layernorm(x2, p(D), p(D)) @ p(D, 4 * D) + p(4 * D)) @ p(4 * D, D)
    nef.build(d / "block.nef", {"y": y})
    return d / "block.nef", {"x": rng.standard_normal((1, S, D)).astype(np.float32)}


def build_minilm(d: Path, batch=1, seq=128):
    from nef.models import minilm
    m = minilm.load()
    ids, mask = m.tokenize(["A man is eating food."] * batch, seq=seq)
    m.build_nef(d / "minilm.nef", batch, seq)
    return d / "minilm.nef", {"input_ids": ids, "attention_mask": mask}


WORKLOADS = {"mlp": build_mlp, "block": build_block, "minilm": build_minilm}


# ---- worker --------------------------------------------------------------------------------

def worker(model: str, inputs: str, config: str, threads: int, repeats: int) -> None:
    import nef
    nef.config(threads=threads, devices=CONFIGS[config])
    feed = dict(np.load(inputs))
    g = nef.load(model)
    t0 = time.perf_counter()
    out = g.run(feed)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        g.run(feed)
        times.append(time.perf_counter() - t0)
    prof = g.profile(feed, repeat=max(3, repeats // 2), warmup=0)
    plan = g.plan()
    devices = sorted({k["device"] for k in plan["kernels"]})
    copies = sum(k["seconds"] for k in prof if k["op"] == "copy")
    by_op = {}
    for k in prof:
        e = by_op.setdefault((k["op"], k["device"]), [0, 0.0, 0.0])
        e[0] += 1
        e[1] += k["seconds"]
        e[2] += k["predicted_seconds"]
    np.save(inputs.replace(".npz", f".{config}.out.npy"), np.asarray(next(iter(out.values()))))
    print(json.dumps({
        "first": first, "times": times, "devices": devices,
        "kernels": sum(1 for k in plan["kernels"] if k["op"] != "copy"),
        "transfers": len(plan["transfers"]), "copy_s": copies, "run_s": prof.run_seconds,
        "kernel_s": prof.kernel_seconds, "predicted_s": prof.predicted_seconds,
        "by_op": [[op, dev, n, s, p] for (op, dev), (n, s, p) in by_op.items()],
        "threads": nef.config()["threads"]}), flush=True)


def run_worker(model, inputs, config, threads, repeats) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--model", str(model), "--inputs", str(inputs),
           "--config", config, "--threads", str(threads), "--repeats", str(repeats)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"{config} worker failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---- report ----------------------------------------------------------------------------------

def ms(s):
    return f"{s * 1e3:.2f} ms"


def render(meta, results, workloads) -> str:
    lines = [f"## {meta['date']} - devices: CPU-only vs automatic (default and all devices) vs all-OpenCL - "
             f"`{meta['command']}`", "",
             f"- Command: `{meta['command']}`",
             f"- Machine: {meta['cpu']}; OpenCL device: {meta['opencl']}; NEF at git {meta['git']}",
             f"- `uptime` at start: `{meta['uptime0']}`",
             f"- `uptime` at end: `{meta['uptime1']}`",
             f"- Threads NEF used (nef.config()): {meta['threads']}; repeats: {meta['repeats']} "
             "timed runs per configuration after one warm-up run", ""]
    if meta["max_load"] > 1.5:
        lines += [f"- **HIGH load (up to {meta['max_load']:.2f}): noisy, not a result**", ""]
    lines += ["| workload | config | median (min) | vs cpu | devices used | kernels | "
              "transfers | transfer share | predicted / measured | agrees with cpu |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for w in workloads:
        base = statistics.median(results[w]["cpu"]["times"])
        for c in CONFIGS:
            r = results[w][c]
            med = statistics.median(r["times"])
            share = r["copy_s"] / r["run_s"] if r["run_s"] > 0 else 0
            pred = r["predicted_s"] / r["kernel_s"] if r["kernel_s"] > 0 else 0
            lines.append(f"| {w} | {c} | {ms(med)} ({ms(min(r['times']))}) | {med / base:.2f}x | "
                         f"{', '.join(r['devices'])} | {r['kernels']} | {r['transfers']} | "
                         f"{share * 100:.1f}% | {pred:.2f} | {r['agree']} |")
    lines += ["", "Per kernel kind (profile medians): measured against the cost model's prediction.",
              "", "| workload | config | op | device | kernels | measured | predicted |",
              "|---|---|---|---|---|---|---|"]
    for w in workloads:
        for c in CONFIGS:
            for op, dev, n, s, p in sorted(results[w][c]["by_op"], key=lambda e: -e[3])[:6]:
                lines.append(f"| {w} | {c} | {op} | {dev} | {n} | {ms(s)} | {ms(p)} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--inputs")
    ap.add_argument("--config")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--workloads", default="mlp,block,minilm")
    ap.add_argument("--record", action="store_true", help="insert the section in bench/RESULTS.md")
    a = ap.parse_args()
    if a.worker:
        worker(a.model, a.inputs, a.config, a.threads, a.repeats)
        return
    import nef
    devs = nef.devices()
    opencl = [d for d in devs["devices"] if d["backend"] == "opencl"]
    if not opencl:
        sys.exit("no OpenCL device: nothing to compare")
    workloads = [w.strip() for w in a.workloads.split(",")]
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "command": "python bench/bench_devices.py " + " ".join(map(shlex.quote, sys.argv[1:])),
            "cpu": devs["cpu"]["model"], "opencl": opencl[0]["description"],
            "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                  capture_output=True, text=True).stdout.strip(),
            "uptime0": uptime(), "repeats": a.repeats}
    loads = [loadavg()]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w in workloads:
            d = Path(tmp) / w
            d.mkdir()
            model, feed = WORKLOADS[w](d)
            inputs = d / "inputs.npz"
            np.savez(inputs, **feed)
            results[w] = {}
            for c in CONFIGS:
                log(f"{w}: {c}")
                results[w][c] = run_worker(model, inputs, c, a.threads, a.repeats)
                loads.append(loadavg())
            ref = np.load(str(inputs).replace(".npz", ".cpu.out.npy"))
            for c in CONFIGS:
                got = np.load(str(inputs).replace(".npz", f".{c}.out.npy"))
                err = float(np.max(np.abs(got - ref) / (1 + np.abs(ref)))) if ref.size else 0.0
                results[w][c]["agree"] = f"{err:.1e}"
    meta["uptime1"] = uptime()
    meta["max_load"] = max(loads)
    meta["threads"] = sorted({r["threads"] for w in results.values() for r in w.values()})
    section = render(meta, results, workloads)
    print(section)
    if a.record:
        text = RESULTS.read_text()
        marker = "\n## "
        i = text.find(marker)
        RESULTS.write_text(text[:i + 1] + section + "\n" + text[i + 1:] if i >= 0 else text + section)
        log(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
