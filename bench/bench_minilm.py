#!/usr/bin/env python3
"""all-MiniLM-L6-v2 (real weights) on NEF vs ONNX Runtime: latency, peak memory, NEF's plan.

    .venv/bin/python bench/bench_minilm.py                        # batch 1 and 32 x seq 128
    .venv/bin/python bench/bench_minilm.py --repeats 9 --threads 1,2 --shapes 1x128,8x64
    .venv/bin/python bench/bench_minilm.py --record               # also write bench/RESULTS.md

Both engines get the same computation from the same float32 weights (nef.models.minilm): NEF a
.nef file built with the Python API, ONNX Runtime the ONNX model built from the same arrays,
with static [batch, seq] dims like the .nef (inputs input_ids + attention_mask int64, output the
L2-normalized mean-pooled embeddings [batch, 384] float32). NEF's graph uses its fused
`attention` op; the ONNX graph spells attention out (MatMul/Div/Add mask/Softmax/MatMul) and ORT
applies its own graph optimizations (ORT_ENABLE_ALL, the default). `nef-onnx` is NEF on that
very ONNX file, imported with nef.from_onnx (the graph ORT runs, through NEF's importer and
passes). `--variants` adds `nef-spelled`: NEF on the spelled-out graph built with the Python
API, op for op the ONNX one; and `nef-base`: the same .nef as `nef` run by another build of NEF,
the `nef` package found in `--baseline DIR` (e.g. `pip install --target DIR` of an older commit),
to compare two versions of NEF in one run. `nef-int8` / `ort-int8`: each engine's int8 weight
quantization of its own file (`nef quantize --int8`; ONNX Runtime's `quantize_dynamic`, per
channel), compared with each other; their agreement column is against float ORT.

Each engine runs in its own worker subprocess (so that its peak RSS, VmHWM, is its own and
neither engine's thread pool spins while the other runs); the parent interleaves single runs
(order flipped every repeat) so both see the same machine load; each timed run follows an
untimed one in the same worker, and the parent waits SETTLE_S (100 ms) before each sample so
that the previous engine's spinning threads (ONNX Runtime's spin after a run) are gone. Threads: NEF nef.config(threads=
n); ORT intra_op_num_threads=n, inter_op_num_threads=1, ORT_SEQUENTIAL. Inputs: real sentences,
tokenized and padded to seq. A run is what a user pays per call: NEF Graph.run(dict) -> numpy,
ORT InferenceSession.run -> numpy. Output: a markdown section on stdout; --record inserts it in
bench/RESULTS.md above the bench_ops runs (which that script prunes; these are kept).

Then NEF's per-kernel profile (Graph.profile) of each NEF engine at 1 thread per shape, in a
fresh worker after one warm-up run: the time per op kind (matmul, matmul_epilogue,
fused_elementwise, attention, layernorm, softmax, gather, ...), medians over --repeats.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
RUN_MARKER = "<!-- runs below, newest first; bench/bench_ops.py inserts a section per run -->"

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "Stock markets fell sharply on Tuesday after the central bank raised interest rates again.",
    "The new movie is awesome, and the soundtrack was even better than the reviews said.",
    "How do I bake sourdough bread at home without a dutch oven?",
    "Python is a programming language that lets you work quickly and integrate systems.",
    "The quick brown fox jumps over the lazy dog.",
    "It is raining.",
    "NEF is a lazy computation-graph engine for AI inference, written in C++20 with a "
    "Python API; it fuses elementwise chains into matmul epilogues and plans memory ahead.",
]


# ---- worker (one engine, one thread count) --------------------------------------------------


SETTLE_S = 0.1  # idle time before each sample (see the module docstring)

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def worker(engine: str, model: str, inputs: str, threads: int, no_spin: bool,
           dims: dict) -> None:
    """Serves the parent over stdin/stdout, one JSON line each way: "run" -> seconds of one
    run; "profile N" (NEF engines) -> Graph.profile over N runs; "done" -> memory figures,
    after writing the last output next to the inputs."""
    import numpy as np
    feed = dict(np.load(inputs))
    out = {"rss_after_import_kb": 0}
    g = None
    if engine.startswith("nef"):
        import nef
        nef.config(threads=threads)
        out["rss_after_import_kb"] = _status_kb("VmRSS")
        t0 = time.perf_counter()
        g = nef.from_onnx(model, dims=dims) if engine == "nef-onnx" else nef.load(model)
        out["load_s"] = time.perf_counter() - t0

        def run():
            return g.run(feed)["embeddings"]
    else:
        import onnxruntime as ort
        out["rss_after_import_kb"] = _status_kb("VmRSS")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if no_spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        t0 = time.perf_counter()
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        out["load_s"] = time.perf_counter() - t0

        def run():
            return sess.run(["embeddings"], feed)[0]
    t0 = time.perf_counter()
    y = run()
    out["first_run_s"] = time.perf_counter() - t0
    out["rss_after_first_run_kb"] = _status_kb("VmRSS")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "run":
            # An untimed run first: the timed one finds this engine's threads awake, as in a
            # steady stream of requests, instead of timing how fast the VM wakes the vCPUs that
            # idled while the other engine ran (bench/bench_cold_start.py measures that).
            y = run()
            t0 = time.perf_counter()
            y = run()
            dt = time.perf_counter() - t0
            print(json.dumps({"s": dt}), flush=True)
        elif cmd.startswith("profile ") and g is not None:
            p = g.profile(feed, repeat=int(cmd.split()[1]), warmup=0)  # warm: it ran above
            print(json.dumps({"kernels": list(p), "run_s": p.run_seconds}), flush=True)
        elif cmd == "done":
            np.save(inputs.replace(".npz", f".{engine}.out.npy"), np.asarray(y))
            out["vmhwm_kb"] = _status_kb("VmHWM")
            print(json.dumps(out), flush=True)
            return


BASELINE = {"dir": None}  # --baseline: the other NEF build nef-base runs


class Worker:
    def __init__(self, engine, model, inputs, threads, no_spin, dims=None) -> None:
        env = dict(os.environ)
        if no_spin and engine.startswith("nef"):
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        if engine == "nef-base":
            if not BASELINE["dir"]:
                raise SystemExit("nef-base needs --baseline DIR (a directory holding a nef package)")
            env["PYTHONPATH"] = BASELINE["dir"] + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, __file__, "--worker", engine, "--model", str(model),
               "--inputs", str(inputs), "--threads", str(threads)] + (["--no-spin"] if no_spin
                                                                      else [])
        if dims:
            cmd += ["--dims", json.dumps(dims)]
        self.engine = engine
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=env)
        self._read()  # ready: loaded and run once

    def _read(self) -> dict:
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.engine} worker died (exit {self.p.wait()})")
        return json.loads(line)

    def ask(self, cmd: str) -> dict:
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self._read()

    def finish(self) -> dict:
        r = self.ask("done")
        self.p.wait(timeout=60)
        return r


# ---- parent ---------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> float:
    return round(os.getloadavg()[0], 2)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()}"


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return rev + ("+uncommitted changes" if dirty else "")
    except OSError:
        return "unknown"


def fmt_t(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.2f} s"


def fmt_mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def prepare(shapes, variants, tmp: Path) -> dict:
    """Builds the model files and inputs per shape; returns {shape: {...}}."""
    import numpy as np

    from nef.models import minilm
    model = minilm.load()
    import nef
    files = {}
    for b, s in shapes:
        d = tmp / f"b{b}_s{s}"
        d.mkdir()
        sents = [SENTENCES[i % len(SENTENCES)] for i in range(b)]
        ids, mask = model.tokenize(sents, seq=s)
        inputs = d / "inputs.npz"
        np.savez(inputs, input_ids=ids, attention_mask=mask)
        entry = {"inputs": inputs, "models": {}}
        t0 = time.perf_counter()
        onnx_file = None
        for v in variants:
            if v in ("ort", "nef-onnx"):
                # One file for both: nef-onnx runs exactly the graph ORT runs.
                if onnx_file is None:
                    onnx_file = model.build_onnx(d / "minilm.onnx", batch=b, seq=s)
                entry["models"][v] = onnx_file
            elif v == "ort-int8":
                # ONNX Runtime's dynamic quantization of the same ONNX file: int8 weights per
                # output channel, activations quantized per tensor at run time.
                from onnxruntime.quantization import QuantType, quantize_dynamic
                if onnx_file is None:
                    onnx_file = model.build_onnx(d / "minilm.onnx", batch=b, seq=s)
                entry["models"][v] = d / "minilm_int8.onnx"
                quantize_dynamic(str(onnx_file), str(entry["models"][v]), per_channel=True,
                                 weight_type=QuantType.QInt8)
                continue
            elif v == "nef-int8":
                # `nef quantize --int8` of the .nef `nef` runs (Graph.quantize: Q8_0 weights per
                # 32 values of each output channel, activations per row and 32 values).
                if "nef" not in entry["models"]:
                    entry["models"]["nef"] = model.build_nef(d / "nef.nef", b, s)
                entry["models"][v] = d / "nef_int8.nef"
                nef.load(entry["models"]["nef"]).quantize("int8").build(entry["models"][v])
            elif v == "nef-base":
                # The very file `nef` runs, so only the engine differs.
                if "nef" not in entry["models"]:
                    entry["models"]["nef"] = model.build_nef(d / "nef.nef", b, s)
                entry["models"][v] = entry["models"]["nef"]
                continue
            else:
                entry["models"][v] = model.build_nef(d / f"{v}.nef", b, s,
                                                     fused_attention=(v == "nef"))
            if v.startswith("nef"):
                path = entry["models"][v]
                if v == "nef-onnx":
                    g = nef.from_onnx(path)
                    # The files here have fixed dims, so this is {}; a model with symbolic dims
                    # gets them bound at import, like the .nef files.
                    feed = {"input_ids": ids, "attention_mask": mask}
                    entry["dims"] = {dim: int(feed[name].shape[i])
                                     for name, (shape, _) in g.input_types.items()
                                     for i, dim in enumerate(shape) if isinstance(dim, str)}
                    g = nef.from_onnx(path, dims=entry["dims"])
                else:
                    g = nef.load(path)
                plan = g.plan()
                ops = {}
                for k in plan["kernels"]:
                    ops[k["op"]] = ops.get(k["op"], 0) + 1
                entry.setdefault("plans", {})[v] = {
                    "kernels": len(plan["kernels"]), "by_op": ops,
                    "planned_peak": plan["memory"]["planned_peak_bytes"],
                    "naive": plan["memory"]["naive_bytes"]}
            log(f"built models for batch {b} x seq {s} in {time.perf_counter() - t0:.1f} s")
        files[(b, s)] = entry
    return files


def prepare_apart(shapes, variants, tmp: Path) -> dict:
    """prepare() in a child process: the parent then maps none of the model files (a file
    mapped by two processes keeps its pages resident, which would count against a worker's
    peak RSS after NEF packs its weights and hands the file's pages back), and the files are
    synced to disk (dirty pages cannot be handed back either)."""
    spec = json.dumps({"shapes": shapes, "variants": variants, "tmp": str(tmp),
                       "baseline": BASELINE["dir"]})
    r = subprocess.run([sys.executable, __file__, "--prepare", spec], stdout=subprocess.PIPE,
                       text=True, check=True)
    files = {}
    for key, e in json.loads(r.stdout.strip().splitlines()[-1]).items():
        b, s = (int(v) for v in key.split("x"))
        e["inputs"] = Path(e["inputs"])
        files[(b, s)] = e
    return files


def prepare_child(spec: str) -> None:
    a = json.loads(spec)
    BASELINE["dir"] = a["baseline"]
    files = prepare([tuple(x) for x in a["shapes"]], a["variants"], Path(a["tmp"]))
    os.sync()
    out = {f"{b}x{s}": {**e, "inputs": str(e["inputs"]),
                        "models": {v: str(m) for v, m in e["models"].items()}}
           for (b, s), e in files.items()}
    print(json.dumps(out), flush=True)


def bench_one(entry, variants, threads, repeats, no_spin) -> dict:
    import numpy as np
    workers = {v: Worker(v, entry["models"][v], entry["inputs"], threads, no_spin,
                         entry.get("dims") if v == "nef-onnx" else None) for v in variants}
    samples = {v: [] for v in variants}
    load_start = loadavg()
    for rep in range(repeats):
        order = variants if rep % 2 == 0 else variants[::-1]
        for v in order:
            # ONNX Runtime's threads spin for tens of milliseconds after a run: let them stop
            # before another engine's sample (its untimed run then wakes its own threads).
            time.sleep(SETTLE_S)
            samples[v].append(workers[v].ask("run")["s"])
    info = {v: workers[v].finish() for v in variants}
    outs = {v: np.load(str(entry["inputs"]).replace(".npz", f".{v}.out.npy")) for v in variants}
    ref = outs["ort"] if "ort" in outs else next(iter(outs.values()))
    agree = {}
    for v, y in outs.items():
        y64, r64 = y.astype(np.float64), ref.astype(np.float64)
        cos = (y64 * r64).sum(1) / (np.linalg.norm(y64, axis=1) * np.linalg.norm(r64, axis=1))
        agree[v] = {"max_1_minus_cos": float(np.max(1 - cos)),
                    "max_abs": float(np.abs(y64 - r64).max())}
    return {"samples": samples, "info": info, "agree": agree, "load_start": load_start,
            "load_end": loadavg()}


def profile_all(files, shapes, variants, repeats, no_spin) -> dict:
    """{(engine, batch, seq): {"kernels": [...], "run_s": s}}: Graph.profile of each NEF engine
    at 1 thread, in a fresh worker per engine and shape (loaded and run once before)."""
    out = {}
    for (b, s) in shapes:
        e = files[(b, s)]
        for v in variants:
            if not v.startswith("nef"):
                continue
            log(f"profiling {v}, batch {b} x seq {s}, 1 thread ...")
            w = Worker(v, e["models"][v], e["inputs"], 1, no_spin,
                       e.get("dims") if v == "nef-onnx" else None)
            out[(v, b, s)] = w.ask(f"profile {repeats}")
            w.finish()
    return out


def fmt_ms(s: float) -> str:
    ms = s * 1e3
    return f"{ms:.3f} ms" if ms < 0.1 else f"{ms:.2f} ms" if ms < 100 else f"{ms:.0f} ms"


def render_profiles(profiles, repeats) -> list:
    """Markdown: one row per op kind, one column per (engine, shape)."""
    from nef.graph import profile_summary
    cols = list(profiles)
    summ = {c: {r["op"]: r for r in profile_summary(profiles[c]["kernels"])} for c in cols}
    ops = sorted({op for c in cols for op in summ[c]},
                 key=lambda op: (-sum(summ[c][op]["percent"] for c in cols if op in summ[c]), op))
    L = [f"NEF per-kernel profile (`Graph.profile`, 1 thread, median of {repeats} profiled runs "
         "per kernel in a fresh worker after one warm-up run): time per op kind, its share of "
         "the kernels' total and (kernels of that kind). A fused kernel counts under its own op "
         "(`matmul_epilogue` = a matmul with its bias/activation/residual epilogue, "
         "`fused_elementwise` = a fused elementwise chain); views (`reshape`, `transpose`, ...) "
         "are kernels that only set strides.", ""]
    L.append("| op kind | " + " | ".join(f"{v}, {b} x {s}" for v, b, s in cols) + " |")
    L.append("|---|" + "---|" * len(cols))
    for op in ops:
        cells = []
        for c in cols:
            r = summ[c].get(op)
            cells.append(f"{fmt_ms(r['seconds'])}, {r['percent']:.1f}% ({r['kernels']})" if r
                         else "-")
        L.append(f"| {op} | " + " | ".join(cells) + " |")
    totals = []
    for c in cols:
        ks = profiles[c]["kernels"]
        totals.append(f"{fmt_ms(sum(k['seconds'] for k in ks))}, 100% ({len(ks)})")
    L.append("| **kernels total** | " + " | ".join(totals) + " |")
    L.append("| whole execution | " + " | ".join(fmt_ms(profiles[c]["run_s"]) for c in cols)
             + " |")
    L.append("")
    L.append("Whole execution = the executor's run (median): the kernels plus input checks, "
             "output allocation and the step loop; `Graph.run`'s numpy conversions are outside "
             "it.")
    L.append("")
    return L


def peer(v: str, have) -> str | None:
    """The ONNX Runtime variant a NEF variant is compared with: int8 with int8."""
    want = "ort-int8" if v.endswith("-int8") else "ort"
    return want if want in have and v != want else None


def render(meta, files, results, variants, profiles=None) -> str:
    L = [f"## {meta['date']} - MiniLM-L6 (all-MiniLM-L6-v2) NEF vs ONNX Runtime - "
         f"`{meta['command']}`", ""]
    L.append(f"- Command: `{meta['command']}`")
    L.append(f"- Machine: {meta['cpu']}, {os.cpu_count()} logical cores; NEF at git "
             f"{meta['git']}; onnxruntime {meta['ort']}; numpy {meta['numpy']}")
    L.append(f"- `uptime` at start: `{meta['uptime_start']}`")
    L.append(f"- `uptime` at end: `{meta['uptime_end']}`")
    high = max(meta["load_max"], 0) > (os.cpu_count() or 1)
    if high:
        L.append(f"- **HIGH load (1-min load up to {meta['load_max']} on {os.cpu_count()} "
                 "cores): other processes competed for the cores; absolute times are "
                 "pessimistic and the ratios noisy, multi-thread ones most of all**")
    spin = ("off (OMP_WAIT_POLICY=PASSIVE, ORT allow_spinning=0)" if meta["no_spin"]
            else "engine defaults")
    L.append(f"- Repeats: {meta['repeats']} interleaved single runs per engine after one "
             f"warm-up run; spinning: {spin}")
    L.append("")
    other = [v for v in variants if peer(v, variants)]
    head = "| batch x seq | threads | " + " | ".join(
        f"{v} median (min-max)" for v in variants) + " | " + " | ".join(
        f"{v} / {peer(v, variants) or 'ort'}" for v in other) + " | " + " | ".join(
        f"{v} peak RSS" for v in variants) + " | load 1m |"
    L.append(head)
    L.append("|" + "---|" * (head.count("|") - 1))
    for (b, s, th), r in results.items():
        med = {v: statistics.median(r["samples"][v]) for v in variants}
        cells = [f"{b} x {s}", str(th)]
        cells += [f"{fmt_t(med[v])} ({fmt_t(min(r['samples'][v]))}-{fmt_t(max(r['samples'][v]))})"
                  for v in variants]
        cells += [f"**{med[v] / med[peer(v, med)]:.2f}**" if peer(v, med) else "-"
                  for v in other]
        cells += [fmt_mb(r["info"][v]["vmhwm_kb"]) for v in variants]
        cells.append(f"{r['load_start']}-{r['load_end']}")
        L.append("| " + " | ".join(cells) + " |")
    L.append("")
    L.append("Ratio = NEF median / ORT median (< 1: NEF faster). Peak RSS = VmHWM of the "
             "engine's worker process (Python + numpy + the engine + its model + inputs); "
             "ru_maxrss is not used: after fork+exec it still counts the parent's pages. NEF "
             "maps the .nef's constants, so only the embedding rows a run gathers are resident.")
    if "nef-onnx" in variants:
        L.append("")
        L.append("nef-onnx reads the .onnx with nef.from_onnx: its peak RSS includes the "
                 "import's transient copies of the weights (the file's bytes, the parsed "
                 "ModelProto, NEF's constants); its RSS after the first run is the steady state. "
                 "Its load time is the import (parse, convert, validate).")
    L.append("")
    L.append("Start-up and memory detail (per worker):")
    L.append("")
    L.append("| batch x seq | threads | engine | RSS after import | load / session | first run "
             "| RSS after first run | peak RSS | agreement with ort (1-cos, max abs) |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for (b, s, th), r in results.items():
        for v in variants:
            i, a = r["info"][v], r["agree"][v]
            L.append(f"| {b} x {s} | {th} | {v} | {fmt_mb(i['rss_after_import_kb'])} | "
                     f"{fmt_t(i['load_s'])} | {fmt_t(i['first_run_s'])} | "
                     f"{fmt_mb(i['rss_after_first_run_kb'])} | {fmt_mb(i['vmhwm_kb'])} | "
                     f"{a['max_1_minus_cos']:.1e}, "
                     f"{a['max_abs']:.1e} |")
    L.append("")
    if profiles:
        L += render_profiles(profiles, meta["repeats"])
    L.append("NEF's plans (`Graph.plan()`): kernels by op, planned arena:")
    L.append("")
    for (b, s), e in files.items():
        for v, p in e.get("plans", {}).items():
            ops = ", ".join(f"{k} {n}" for k, n in sorted(p["by_op"].items(), key=lambda x: -x[1]))
            L.append(f"- {v}, {b} x {s}: {p['kernels']} kernels ({ops}); planned arena "
                     f"{p['planned_peak'] / 2**20:.1f} MiB vs {p['naive'] / 2**20:.1f} MiB naive")
    L.append("")
    return "\n".join(L)


def record(section: str) -> None:
    """Inserts the section above bench_ops.py's run marker (that script keeps only its last
    runs below the marker; sections above it are left alone), after earlier MiniLM runs."""
    text = RESULTS.read_text() if RESULTS.exists() else "# NEF benchmark results\n\n"
    if RUN_MARKER in text:
        head, tail = text.split(RUN_MARKER, 1)
        text = head.rstrip("\n") + "\n\n" + section.strip("\n") + "\n\n" + RUN_MARKER + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section.strip("\n") + "\n"
    RESULTS.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--prepare", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    ap.add_argument("--dims", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    ap.add_argument("--shapes", default="1x128,32x128", help="BATCHxSEQ list")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", default="nef,nef-onnx,ort",
                    help="engines: nef (fused attention), nef-onnx (the ORT model's ONNX file "
                         "through nef.from_onnx), ort, nef-spelled (the ONNX graph's ops built "
                         "with the Python API), nef-base (nef's file on the NEF build in "
                         "--baseline), nef-int8 (nef's file after `nef quantize --int8`), "
                         "ort-int8 (ORT's quantize_dynamic of its file)")
    ap.add_argument("--baseline", help="directory holding another build's nef package "
                                       "(for the nef-base variant)")
    ap.add_argument("--no-spin", action="store_true",
                    help="OMP_WAIT_POLICY=PASSIVE for NEF, allow_spinning=0 for ORT (for loaded "
                         "machines)")
    ap.add_argument("--record", action="store_true", help="insert the section in RESULTS.md")
    args = ap.parse_args()
    if args.prepare:
        prepare_child(args.prepare)
        return
    if args.worker:
        worker(args.worker, args.model, args.inputs, int(args.threads), args.no_spin,
               json.loads(args.dims))
        return

    import numpy as np
    import onnxruntime as ort
    BASELINE["dir"] = os.path.abspath(args.baseline) if args.baseline else None
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    variants = [v.strip() for v in args.variants.split(",")]
    for v in variants:
        if v not in ("nef", "nef-onnx", "nef-spelled", "nef-base", "ort", "nef-int8", "ort-int8"):
            raise SystemExit(f"unknown variant {v!r}")
    command = ".venv/bin/python bench/bench_minilm.py" + "".join(
        " " + shlex.quote(a) for a in sys.argv[1:])
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "command": command,
            "cpu": cpu_model(), "git": git_rev(), "ort": ort.__version__,
            "numpy": np.__version__, "uptime_start": uptime(), "repeats": args.repeats,
            "no_spin": args.no_spin}
    log(f"uptime: {meta['uptime_start']}")
    t_start = time.perf_counter()
    results = {}
    loads = [loadavg()]
    with tempfile.TemporaryDirectory(prefix="bench_minilm_") as tmp:
        files = prepare_apart(shapes, variants, Path(tmp))
        for (b, s) in shapes:
            for th in threads:
                log(f"batch {b} x seq {s}, {th} thread(s) ...")
                r = bench_one(files[(b, s)], variants, th, args.repeats, args.no_spin)
                results[(b, s, th)] = r
                loads += [r["load_start"], r["load_end"]]
                log("  " + ", ".join(f"{v} {fmt_t(statistics.median(r['samples'][v]))}"
                                     for v in variants))
        profiles = profile_all(files, shapes, variants, args.repeats, args.no_spin)
    meta["uptime_end"] = uptime()
    meta["load_max"] = max(loads)
    section = render(meta, files, results, variants, profiles)
    section += f"\nTotal benchmark time: {time.perf_counter() - t_start:.0f} s.\n"
    print(section)
    if args.record:
        record(section)
        log(f"recorded in {os.path.relpath(RESULTS, ROOT)}")


if __name__ == "__main__":
    main()
