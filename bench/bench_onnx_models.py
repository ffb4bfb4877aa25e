"""Real published ONNX models (the ones the tests use, installed by `make venv`): NEF
(`nef.from_onnx`) vs ONNX Runtime on the same file and inputs, at 1 and 2 threads, each engine
and thread count in its own process: median latency of warm runs, the ratio, and the process's
peak RSS; for a model where NEF is slower, the three kernels (ops) that take most of NEF's time.

    .venv/bin/python bench/bench_onnx_models.py [--threads 1 2] [--repeat 15] [--models det,ocr]
        [--ops]

--ops adds, per model and thread count, the full per-op split of both engines' kernel time:
NEF's profile summed by kernel op, ONNX Runtime's own profiler (SessionOptions.enable_profiling)
summed by node type (medians over the repeats; ORT's NCHWc reorders are its own rows).

Quote only runs at `uptime` load < 1.5."""
import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = "--child" in sys.argv
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))
sys.path.insert(0, HERE)
from bench_llm import vm_hwm_mb  # noqa: E402  (peak RSS, as the LLM benchmark reads it)


def package_file(pkg, *parts):
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], *parts)


def model_det():
    from test_ddddocr_det import scene
    return package_file("ddddocr", "common_det.onnx"), {"images": scene(1)}


def model_ocr():
    from test_ddddocr_ocr import text_line
    return package_file("ddddocr", "common.onnx"), {"input1": text_line("3A7K8X", 1)}


def model_ocr_int8():
    from test_ddddocr_ocr import text_line
    return package_file("ddddocr", "common_old.onnx"), {"input1": text_line("3A7K8X", 1)}


def model_vad():
    from test_silero_vad import audio, frames, zero_state
    h, c = zero_state()
    return (package_file("faster_whisper", "assets", "silero_vad_v6.onnx"),
            {"input": frames(audio(2.0, 1)), "h": h, "c": c})


def model_minilm():
    """Built once by the parent (nef.models.minilm writes it from the real weights); the
    children only read the file."""
    path = os.path.join(tempfile.gettempdir(), f"nef_bench_minilm_{os.getppid() if CHILD else os.getpid()}.onnx")
    if not CHILD:
        from nef.models import minilm
        minilm.MiniLM().build_onnx(path)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 20000, size=(1, 128)).astype(np.int64)
    return path, {"input_ids": ids, "attention_mask": np.ones_like(ids)}


MODELS = {  # name: (what it is, inputs)
    "det": ("ddddocr common_det: YOLOX-style conv detector, 1x3x416x416", model_det),
    "ocr": ("ddddocr common: CNN + BiLSTM(512) OCR, 64x296 line", model_ocr),
    "ocr_int8": ("ddddocr common_old: int8 (dynamic quantization) CNN + LSTM OCR", model_ocr_int8),
    "vad": ("Silero VAD v6 (faster-whisper): 2 s of audio as 62 chunks", model_vad),
    "minilm": ("MiniLM-L6 (all-MiniLM-L6-v2 weights): 1 x 128 tokens", model_minilm),
}


def child(args):
    path, feed = MODELS[args.model][1]()
    threads = args.threads[0]
    res = {}
    if args.engine == "nef":
        import nef
        nef.config(threads=threads)
        res["threads"] = nef.config()["threads"]
        g = nef.from_onnx(path)
        run = lambda: g.run(feed)
    else:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        res["threads"] = threads
        run = lambda: s.run(None, feed)
    # numpy's OpenBLAS threads spin for ~0.1 s after the inputs were made: let them sleep
    # before the engine's runs (they took a core from the first runs on these 2 cores).
    time.sleep(0.3)
    # Warm runs for at least half a second (NEF's first runs of a process were 2x slower than
    # later ones for about 10 runs of Silero VAD: caches and pools filling), at least 3.
    t_end, warm = time.perf_counter() + 0.5, 0
    while warm < 3 or time.perf_counter() < t_end:
        run()
        warm += 1
    ts = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        run()
        ts.append(time.perf_counter() - t0)
    res["ms"] = statistics.median(ts) * 1e3
    res["peak_rss_mb"] = vm_hwm_mb()
    if args.engine == "nef":
        from nef.graph import profile_summary
        rows = profile_summary(g.profile(feed, repeat=max(3, args.repeat if args.ops else 3)))
        res["top"] = [(r["op"], round(r["seconds"] * 1e3, 2)) for r in rows[:3]]
        res["ops"] = [(r["op"], r["seconds"] * 1e3) for r in rows]
    elif args.ops:
        res["ops"] = ort_op_split(path, feed, threads, args.repeat)
    print(json.dumps(res))


def ort_op_split(path, feed, threads, repeat):
    """ONNX Runtime's profiler: per node, the median of its kernel times over `repeat` runs
    (after warm runs), summed by node type, slowest first (ms)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.gettempdir(), f"nef_bench_ort_{os.getpid()}")
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    for _ in range(3 + repeat):
        s.run(None, feed)
    prof = s.end_profiling()
    with open(prof) as f:
        events = json.load(f)
    os.remove(prof)
    per_node = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node.setdefault(e["name"], []).append(e)
    by_type = {}
    for es in per_node.values():
        op = es[0]["args"].get("op_name", "?")
        by_type[op] = by_type.get(op, 0.0) + statistics.median(x["dur"] for x in es[-repeat:]) / 1e3
    return sorted(by_type.items(), key=lambda kv: -kv[1])


def run_child(model, engine, threads, repeat, ops=False):
    env = dict(os.environ)
    if engine == "ort":  # the peer as users run it
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    out = subprocess.run([sys.executable, __file__, "--child", "--model", model, "--engine",
                          engine, "--threads", str(threads), "--repeat", str(repeat)] +
                         (["--ops"] if ops else []),
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--engine")
    ap.add_argument("--ops", action="store_true",
                    help="also print each engine's kernel time split by op (see the docstring)")
    args = ap.parse_args()
    if args.child:
        return child(args)
    print(f"# real ONNX models; load {os.getloadavg()[0]:.2f}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| model | threads (NEF read back) | NEF ms | ONNX Runtime ms | NEF / ORT | "
          "peak RSS MB NEF / ORT | NEF's top ops (ms) |")
    print("|---|---|---|---|---|---|---|")
    splits = []
    for name in args.models.split(","):
        what = MODELS[name][0]
        if name == "minilm":
            model_minilm()
        for t in args.threads:
            a = run_child(name, "nef", t, args.repeat, args.ops)
            b = run_child(name, "ort", t, args.repeat, args.ops)
            if args.ops and "ops" in a and "ops" in b:
                splits.append((name, t, a["ops"], b["ops"]))
            if "error" in a or "error" in b:
                print(f"| {what} | {t} | {a.get('error', '')} | {b.get('error', '')} | | | |")
                continue
            top = ", ".join(f"{op} {ms}" for op, ms in a["top"]) if a["ms"] > b["ms"] else ""
            print(f"| {what} | {t} ({a['threads']}) | {a['ms']:.2f} | {b['ms']:.2f} | "
                  f"{a['ms'] / b['ms']:.2f} | {a['peak_rss_mb']:.0f} / {b['peak_rss_mb']:.0f} | "
                  f"{top} |", flush=True)
    print(f"# load at the end {os.getloadavg()[0]:.2f}")
    for name, t, nef_ops, ort_ops in splits:
        print(f"\n{name}, {t} thread(s): kernel ms by op (NEF profile | ONNX Runtime profiler)")
        print("| NEF op | ms | ORT node type | ms |\n|---|---|---|---|")
        for i in range(max(len(nef_ops), len(ort_ops))):
            n = nef_ops[i] if i < len(nef_ops) else ("", None)
            o = ort_ops[i] if i < len(ort_ops) else ("", None)
            fmt = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731
            print(f"| {n[0]} | {fmt(n[1])} | {o[0]} | {fmt(o[1])} |")
        print(f"| total | {sum(v for _, v in nef_ops):.2f} | total | "
              f"{sum(v for _, v in ort_ops):.2f} |")
    if "minilm" in args.models.split(","):
        os.remove(os.path.join(
            tempfile.gettempdir(), f"nef_bench_minilm_{os.getpid()}.onnx"))


if __name__ == "__main__":
    main()
