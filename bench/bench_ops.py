#!/usr/bin/env python3
"""NEF vs numpy, side by side in one run, against this machine's measured limits.

    .venv/bin/python bench/bench_ops.py            # what `make bench` runs
    .venv/bin/python bench/bench_ops.py --repeats 9 --threads 1,2 --no-write

Steps: build and run bench/roofline.cpp (STREAM copy/triad, FP32 FMA peak at each thread
count), then one worker subprocess per thread count that times NEF and numpy alternately in
the same process on the same inputs, then (only where OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE
is set) one more subprocess per thread count timing numpy's matmul with both variables unset:
that is the only place the variables are changed, and only in that subprocess's environment.

Each NEF sample is the whole lazy path a user pays: build the nodes, execute, materialize
(.numpy(), which views NEF's memory). Inputs are NEF tensors wrapping the same numpy arrays
(nef.from_numpy, zero-copy), made once outside the timed region. Caches are warm (two
warm-up calls) except for the "cold" row, the first NEF call of the process.
Thread counts: NEF through nef.config(threads=N); numpy/OpenBLAS through OPENBLAS_NUM_THREADS
and OMP_NUM_THREADS in the worker's environment (threadpoolctl is not installed).
Results: a markdown table printed and written into bench/RESULTS.md (newest run first).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOFLINE_SRC = ROOT / "bench" / "roofline.cpp"
ROOFLINE_BIN = ROOT / "build" / "bench" / "roofline"
RESULTS = ROOT / "bench" / "RESULTS.md"
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SEED = 20261124
RUN_MARKER = "<!-- runs below, newest first; bench/bench_ops.py inserts a section per run -->"
KEEP_RUNS = 6


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---- machine facts ---------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " avx512f" in f.read()
    except OSError:
        return False


def loadavg() -> tuple:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return (float("nan"),) * 3


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20).stdout.strip()
        return (rev or "unknown") + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def openblas_info() -> dict:
    """numpy's OpenBLAS as loaded in this process: kernel set in use, threads, build config."""
    info = {}
    lib_path = None
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if "openblas" in line.lower() and ".so" in line:
                    lib_path = line.split()[-1]
                    break
    except OSError:
        pass
    if lib_path is None:
        return info
    try:
        lib = ctypes.CDLL(lib_path)
    except OSError:
        return info
    for prefix in ("scipy_openblas_", "openblas_"):
        for suffix in ("64_", "", "_64"):
            try:
                corename = getattr(lib, f"{prefix}get_corename{suffix}")
                config = getattr(lib, f"{prefix}get_config{suffix}")
                nthreads = getattr(lib, f"{prefix}get_num_threads{suffix}")
            except AttributeError:
                continue
            corename.restype = ctypes.c_char_p
            config.restype = ctypes.c_char_p
            nthreads.restype = ctypes.c_int
            info["core"] = corename().decode()
            info["config"] = config().decode().strip()
            info["threads"] = nthreads()
            return info
    return info


# ---- roofline --------------------------------------------------------------------------------

def build_roofline() -> None:
    if ROOFLINE_BIN.exists() and ROOFLINE_BIN.stat().st_mtime >= ROOFLINE_SRC.stat().st_mtime:
        return
    ROOFLINE_BIN.parent.mkdir(parents=True, exist_ok=True)
    cmd = [os.environ.get("CXX", "g++"), "-std=c++20", "-O3", "-march=native", "-fopenmp",
           "-o", str(ROOFLINE_BIN),
           str(ROOFLINE_SRC)]
    log("building roofline: " + " ".join(cmd))
    subprocess.run(cmd, check=True)


def run_roofline(threads: list, mb: int) -> dict:
    build_roofline()
    cmd = [str(ROOFLINE_BIN), "--threads", ",".join(map(str, threads)), "--mb", str(mb)]
    log("measuring roofline: " + " ".join(cmd))
    env = dict(os.environ)
    env["OMP_PROC_BIND"] = env.get("OMP_PROC_BIND", "false")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)


# ---- timing ----------------------------------------------------------------------------------

def _stats(per_call: list) -> dict:
    q1, _, q3 = statistics.quantiles(per_call, n=4, method="inclusive")
    return {"median": statistics.median(per_call), "min": min(per_call), "max": max(per_call),
            "q1": q1, "q3": q3, "n": len(per_call), "samples": per_call}


def _calls_per_sample(fn, target_s: float) -> int:
    """Small ops are timed in loops so that one sample lasts about target_s."""
    t0 = time.perf_counter()
    r = fn()
    dt = time.perf_counter() - t0
    del r
    if dt <= 0:
        return 1000
    return max(1, min(2000, int(target_s / dt)))


def _sample(fn, k: int) -> float:
    if k == 1:
        t0 = time.perf_counter()
        r = fn()
        t1 = time.perf_counter()
        del r  # freeing the output is not part of the op, for either engine
        return t1 - t0
    t0 = time.perf_counter()
    for _ in range(k):
        r = fn()
    t1 = time.perf_counter()
    del r
    return (t1 - t0) / k


def side_by_side(fns: dict, repeats: int, target_s: float = 0.02) -> dict:
    """Times each engine alternately (order flipped every repeat) after two warm-up calls."""
    names = list(fns)
    for name in names:
        for _ in range(2):
            r = fns[name]()
            del r
    ks = {name: _calls_per_sample(fns[name], target_s) for name in names}
    samples = {name: [] for name in names}
    for rep in range(repeats):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(_sample(fns[name], ks[name]))
    return {name: dict(_stats(samples[name]), calls_per_sample=ks[name]) for name in names}


def check_close(got, want, rtol: float, atol: float) -> dict:
    import numpy as np
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return {"ok": False, "detail": f"shape {got.shape} vs numpy {want.shape}"}
    err = np.abs(got - want)
    bound = atol + rtol * np.abs(want)
    ok = bool(np.all(err <= bound)) and bool(np.all(np.isfinite(got)))
    return {"ok": ok, "max_abs_err": float(err.max()) if err.size else 0.0}


# ---- the worker: one process per thread count --------------------------------------------------

def worker(threads: int, repeats: int, only_numpy_matmul: bool) -> dict:
    import numpy as np
    out = {"threads": threads, "load_start": loadavg(), "results": {}, "cold": {}}
    rng = np.random.default_rng(SEED)
    out["seed"] = SEED

    def f32(*shape, scale=1.0):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale))

    res = out["results"]

    if only_numpy_matmul:
        np.ones(4) @ np.ones(4)  # loads OpenBLAS
        out["openblas"] = openblas_info()
        for n in (256, 1024, 2048):
            a, b = f32(n, n), f32(n, n)
            log(f"  [{threads}T] numpy matmul n={n} (OPENBLAS vars unset)")
            res[f"matmul {n}"] = side_by_side({"numpy": lambda: a @ b}, repeats)
        out["load_end"] = loadavg()
        return out

    import nef
    nef.config(threads=threads)
    out["nef_threads"] = nef.config()["threads"]
    np.ones(4) @ np.ones(4)
    out["openblas"] = openblas_info()
    T = nef.from_numpy

    # 1. The fused chain first: its first NEF call is the process's first graph (cold caches).
    n = 16 * 1024 * 1024
    a, b, c, d = f32(n), f32(n), f32(n), f32(n)
    A, B, C, D = T(a), T(b), T(c), T(d)
    chain_nef = lambda: (nef.tanh(A * B + C) * D - nef.exp(-A)).numpy()  # noqa: E731
    chain_np = lambda: np.tanh(a * b + c) * d - np.exp(-a)  # noqa: E731
    log(f"  [{threads}T] fused chain (cold first call, then warm)")
    s0 = nef.stats()
    t0 = time.perf_counter()
    r = chain_nef()
    cold_nef = time.perf_counter() - t0
    s1 = nef.stats()
    t0 = time.perf_counter()
    r_np = chain_np()
    cold_np = time.perf_counter() - t0
    check = check_close(r, r_np, 1e-3, 1e-3)
    del r, r_np
    out["cold"]["chain"] = {
        "nef": cold_nef, "numpy": cold_np,
        "stats_delta": {k: s1[k] - s0.get(k, 0) for k in s1
                        if isinstance(s1[k], (int, float)) and s1[k] != s0.get(k, 0)}}
    res["chain"] = side_by_side({"nef": chain_nef, "numpy": chain_np}, repeats)
    res["chain"]["check"] = check
    del A, B, C, D, c, d

    # 2. a + b, new output.
    A, B = T(a), T(b)
    log(f"  [{threads}T] a+b 16M")
    res["add"] = side_by_side({"nef": lambda: (A + B).numpy(), "numpy": lambda: a + b}, repeats)
    res["add"]["check"] = check_close((A + B).numpy(), a + b, 0, 0)
    del A, B, a, b

    # 3. softmax and layernorm over the last axis of 4096 x 4096.
    m = k = 4096
    x = f32(m, k, scale=3.0)
    X = T(x)

    def softmax_np():
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    log(f"  [{threads}T] softmax 4096x4096")
    res["softmax"] = side_by_side({"nef": lambda: nef.softmax(X, -1).numpy(),
                                   "numpy": softmax_np}, repeats)
    res["softmax"]["check"] = check_close(nef.softmax(X, -1).numpy(), softmax_np(), 1e-3, 1e-8)

    g, beta = f32(k) + np.float32(1), f32(k)
    G, Bt = T(g), T(beta)
    eps = 1e-5

    def layernorm_np():
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=-1, keepdims=True)
        return xc / np.sqrt(var + np.float32(eps)) * g + beta

    log(f"  [{threads}T] layernorm 4096x4096")
    ln_nef = lambda: nef.layernorm(X, G, Bt, eps=eps).numpy()  # noqa: E731
    res["layernorm"] = side_by_side({"nef": ln_nef, "numpy": layernorm_np}, repeats)
    res["layernorm"]["check"] = check_close(ln_nef(), layernorm_np(), 1e-3, 1e-3)
    del X, x, G, Bt

    # 4. matmul float32.
    for n in (256, 1024, 2048):
        a, b = f32(n, n), f32(n, n)
        A, B = T(a), T(b)
        log(f"  [{threads}T] matmul n={n}")
        key = f"matmul {n}"
        res[key] = side_by_side({"nef": lambda: nef.matmul(A, B).numpy(),
                                 "numpy": lambda: a @ b}, repeats)
        res[key]["check"] = check_close(nef.matmul(A, B).numpy(), a @ b,
                                        1e-3, 1e-3 * math.sqrt(n))
        del A, B, a, b

    # 5. MLP 256x1024 -> 4096 (gelu, tanh form) -> 1024. numpy's gelu uses h*h*h (h**3 would go
    # through powf and be much slower: the fair peer is the fast spelling).
    x = f32(256, 1024)
    w1, b1 = f32(1024, 4096, scale=1 / 32), f32(4096, scale=0.1)
    w2, b2 = f32(4096, 1024, scale=1 / 64), f32(1024, scale=0.1)
    X, W1, B1, W2, B2 = T(x), T(w1), T(b1), T(w2), T(b2)
    c0 = np.float32(math.sqrt(2 / math.pi))

    def mlp_np():
        h = x @ w1 + b1
        inner = c0 * (h + np.float32(0.044715) * h * h * h)
        h = np.float32(0.5) * h * (np.float32(1) + np.tanh(inner))
        return h @ w2 + b2

    mlp_nef = lambda: (nef.gelu(X @ W1 + B1, approximate="tanh") @ W2 + B2).numpy()  # noqa: E731
    log(f"  [{threads}T] MLP")
    res["mlp"] = side_by_side({"nef": mlp_nef, "numpy": mlp_np}, repeats)
    res["mlp"]["check"] = check_close(mlp_nef(), mlp_np(), 1e-3, 1e-3)
    del X, W1, B1, W2, B2

    # 6. Per-op overhead: a + b on 4 elements (NEF: build + execute + materialize).
    a4, b4 = f32(4), f32(4)
    A4, B4 = T(a4), T(b4)
    log(f"  [{threads}T] tiny op")
    res["tiny"] = side_by_side({"nef": lambda: (A4 + B4).numpy(), "numpy": lambda: a4 + b4,
                                "nef_build_only": lambda: A4 + B4,
                                "nef_no_numpy": lambda: (A4 + B4).execute()},
                               repeats, target_s=0.02)
    res["tiny"]["check"] = check_close((A4 + B4).numpy(), a4 + b4, 0, 0)

    out["nef_stats"] = {k: v for k, v in nef.stats().items() if isinstance(v, (int, float))}
    out["load_end"] = loadavg()
    return out


def run_worker(threads: int, repeats: int, unset_openblas: bool) -> dict:
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", str(threads),
           "--repeats", str(repeats)]
    if unset_openblas:
        for v in OPENBLAS_VARS:
            env.pop(v, None)
        cmd.append("--only-numpy-matmul")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench worker failed (exit {proc.returncode}): {' '.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- report ----------------------------------------------------------------------------------

WORKLOADS = [
    # key, label, kind, amount (bytes moved or flops)
    ("add", "a+b, 16M f32, new output", "bw", 3 * 4 * 16 * 2**20),
    ("chain", "tanh(a*b+c)*d - exp(-a), 16M f32", "bw", 5 * 4 * 16 * 2**20),
    ("softmax", "softmax, last axis, 4096x4096", "bw", 2 * 4 * 4096 * 4096),
    ("layernorm", "layernorm, last axis, 4096x4096", "bw", 2 * 4 * 4096 * 4096),
    ("matmul 256", "matmul 256^3 f32", "flop", 2 * 256**3),
    ("matmul 1024", "matmul 1024^3 f32", "flop", 2 * 1024**3),
    ("matmul 2048", "matmul 2048^3 f32", "flop", 2 * 2048**3),
    ("mlp", "MLP 256x1024 -> 4096 gelu-tanh -> 1024", "flop", 2 * 2 * 256 * 1024 * 4096),
    ("tiny", "tiny op: a+b on 4 elements", "overhead", 0),
]


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.2f} us" if s < 1e-5 else f"{s * 1e6:.1f} us"
    return f"{s * 1e3:.2f} ms" if s < 0.1 else f"{s * 1e3:.0f} ms"


def fmt_stat(st: dict) -> str:
    return f"{fmt_time(st['median'])} ({fmt_time(st['min'])}-{fmt_time(st['max'])})"


def pct_of_limit(kind: str, amount: float, seconds: float, roof: dict) -> str:
    if kind == "bw":
        gbs = amount / seconds / 1e9
        return f"{gbs:.1f} GB/s = {100 * gbs / roof['triad_gbs']:.0f}%"
    if kind == "flop":
        gf = amount / seconds / 1e9
        return f"{gf:.0f} GFLOP/s = {100 * gf / roof['fma_gflops']:.0f}%"
    return "-"


def verdict(nef_st: dict, np_st: dict) -> str:
    ratio = nef_st["median"] / np_st["median"]
    # Machines are noisy: a gap between the medians smaller than the wider interquartile range
    # of the two engines' repeats is not shown by this run. (Min-max ranges would let a single
    # preempted repeat hide any difference on a loaded machine.)
    spread = max(nef_st["q3"] - nef_st["q1"], np_st["q3"] - np_st["q1"])
    if abs(nef_st["median"] - np_st["median"]) <= spread:
        return "within noise"
    if ratio > 1:
        return f"**NEF {ratio:.2f}x slower**"
    return f"NEF {1 / ratio:.2f}x faster"


def render(meta: dict, roof: dict, runs: dict, unset_runs: dict) -> str:
    L = []
    L.append(f"## {meta['date']} - {meta['cpu']}, {meta['cores']} cores - `{meta['command']}`")
    L.append("")
    runs_py = meta["command"] != meta["py_command"]
    L.append(f"- Command: `{meta['command']}`"
             + (f" (runs `{meta['py_command']}`)" if runs_py else ""))
    L.append(f"- Machine: {meta['cpu']}, {meta['cores']} cores, {roof['isa']}; "
             f"NEF {meta['nef_version']} at git {meta['git']}; numpy {meta['numpy_version']}, "
             f"OpenBLAS `{meta['openblas'].get('config', '?')}`")
    ct = {v: os.environ.get(v, "<unset>") for v in OPENBLAS_VARS}
    cores = {t: runs[t]["openblas"].get("core", "?") for t in runs}
    L.append(f"- Peer: numpy in the same process, with this machine's "
             + ", ".join(f"{k}={v}" for k, v in ct.items())
             + f" (OpenBLAS kernels in use: {', '.join(sorted(set(cores.values())))})")
    # Our own run adds up to one unit of load per thread; before it starts, any load is others'.
    load_hi = (meta["load_start"][0] > meta["cores"]
               or meta["load_max"] > meta["cores"] + max(meta["threads"]))
    L.append(f"- Load average (1 min) at start / end: {meta['load_start'][0]} / "
             f"{meta['load_end'][0]} on {meta['cores']} cores"
             + (" -- **HIGH: other processes competed for the cores during this run; absolute "
                "numbers are pessimistic and noisy, and the ratios less reliable**"
                if load_hi else ""))
    L.append(f"- Medians of {meta['repeats']} repeats (min-max in brackets), engines alternated "
             "in one process; inputs: fixed seed " + str(SEED) + ". Ratio = NEF time / numpy "
             "time (> 1: NEF is slower). A gap between the two medians smaller than the wider "
             "interquartile range of the two engines' repeats is reported as noise.")
    L.append("- % of limit: bandwidth-bound ops as compulsory bytes moved (inputs read once, "
             "output written once) / STREAM triad; matmul and MLP as GFLOP/s / FP32 FMA peak; "
             "both at the same thread count, measured at the start of this run by "
             "bench/roofline.cpp.")
    L.append("")
    L.append("Roofline measured by `build/bench/roofline` "
             f"(3 arrays x {roof['array_mb']} MB; best of repeats):")
    L.append("")
    L.append("| threads | copy GB/s | triad GB/s | triad, non-temporal GB/s | FMA peak GFLOP/s "
             "(512-bit) | FMA 256-bit GFLOP/s |")
    L.append("|---|---|---|---|---|---|")
    for t, r in roof["threads"].items():
        L.append(f"| {t} | {r['copy_gbs']} | {r['triad_gbs']} | {r['triad_nt_gbs']} | "
                 f"{r['fma512_gflops'] or '-'} | {r['fma256_gflops']} |")
    rt = roof["threads"]
    if "1" in rt and "2" in rt and rt["2"]["fma_gflops"] < 1.5 * rt["1"]["fma_gflops"]:
        L.append("")
        L.append(f"**Warning:** the FMA peak at 2 threads ({rt['2']['fma_gflops']}) is not 1.5x "
                 f"the 1-thread one ({rt['1']['fma_gflops']}): the second core was busy with "
                 "other work, so the 2-thread rows below measure contention, not the engines.")
    L.append("")
    L.append("| workload | threads | NEF median (min-max) | numpy median (min-max) | NEF/numpy "
             "| NEF % of limit | numpy % of limit | verdict |")
    L.append("|---|---|---|---|---|---|---|---|")
    slower, failed = [], []
    for key, label, kind, amount in WORKLOADS:
        for t, run in runs.items():
            r = run["results"].get(key)
            if not r:
                continue
            rf = roof["threads"][str(t)]
            nst, pst = r["nef"], r["numpy"]
            ratio = nst["median"] / pst["median"]
            v = verdict(nst, pst)
            chk = r.get("check", {})
            if chk and not chk.get("ok", True):
                failed.append(f"{label} at {t} thread(s): {chk}")
                v += " (NEF result WRONG)"
            L.append(f"| {label} | {t} | {fmt_stat(nst)} | {fmt_stat(pst)} | {ratio:.2f} | "
                     f"{pct_of_limit(kind, amount, nst['median'], rf)} | "
                     f"{pct_of_limit(kind, amount, pst['median'], rf)} | {v} |")
            if v.startswith("**NEF"):
                slower.append(f"{label}, {t} thread(s): NEF {ratio:.2f}x slower "
                              f"({fmt_time(nst['median'])} vs {fmt_time(pst['median'])})")
    L.append("")
    for t, run in runs.items():
        tiny = run["results"].get("tiny", {})
        if tiny.get("nef_build_only") and tiny.get("nef_no_numpy"):
            L.append(f"- Tiny op, where NEF's time goes, {t} thread(s): graph build only "
                     f"(`A + B`) {fmt_stat(tiny['nef_build_only'])}; build + execute "
                     f"(`(A + B).execute()`) {fmt_stat(tiny['nef_no_numpy'])}; "
                     f"+ `.numpy()` {fmt_stat(tiny['nef'])} (the table's number).")
    L.append("")
    L.append("Cold first call (first NEF graph of the process: empty kernel and plan caches) "
             "vs the warm median, fused chain on 16M:")
    L.append("")
    L.append("| threads | NEF first call | NEF warm median | numpy first call "
             "| numpy warm median |")
    L.append("|---|---|---|---|---|")
    for t, run in runs.items():
        cold = run["cold"].get("chain")
        warm = run["results"].get("chain")
        if cold and warm:
            L.append(f"| {t} | {fmt_time(cold['nef'])} | {fmt_time(warm['nef']['median'])} | "
                     f"{fmt_time(cold['numpy'])} | {fmt_time(warm['numpy']['median'])} |")
    L.append("")
    if unset_runs:
        L.append("numpy matmul with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE **unset** (in that "
                 "subprocess's environment only; everything else above uses the machine's "
                 "setting):")
        L.append("")
        L.append("| n | threads | numpy, machine setting | numpy, vars unset (kernels) | NEF "
                 "| NEF / numpy-unset | numpy-unset % of FMA peak |")
        L.append("|---|---|---|---|---|---|---|")
        for n in (256, 1024, 2048):
            key = f"matmul {n}"
            for t, ur in unset_runs.items():
                u = ur["results"].get(key, {}).get("numpy")
                r = runs.get(t, {}).get("results", {}).get(key)
                if not u or not r:
                    continue
                rf = roof["threads"][str(t)]
                L.append(f"| {n} | {t} | {fmt_stat(r['numpy'])} | {fmt_stat(u)} "
                         f"({ur['openblas'].get('core', '?')}) | {fmt_stat(r['nef'])} | "
                         f"{r['nef']['median'] / u['median']:.2f} | "
                         f"{pct_of_limit('flop', 2 * n**3, u['median'], rf)} |")
        L.append("")
    else:
        L.append("OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are both unset in this environment, so "
                 "the \"numpy with the variables unset\" matmul variant is the default peer above "
                 "(not run twice).")
        L.append("")
    L.append("Where NEF is slower (automatic, from the table):")
    L.append("")
    if slower:
        L.extend(f"- {s}" for s in slower)
    else:
        L.append("- nowhere beyond noise")
    if failed:
        L.append("")
        L.append("NEF results that did NOT match numpy (tolerances in bench_ops.py):")
        L.extend(f"- {s}" for s in failed)
    L.append("")
    return "\n".join(L)


def write_results(section: str) -> None:
    intro = ("# NEF benchmark results\n\n"
             "Written by `bench/bench_ops.py` (run it with `make bench`). Each run adds a section "
             "below, newest first; the last " + str(KEEP_RUNS) + " runs are kept. Hand-written "
             "notes go in a `### Notes` part inside a run's section and are kept with it.\n\n"
             + RUN_MARKER + "\n")
    text = RESULTS.read_text() if RESULTS.exists() else intro
    if RUN_MARKER not in text:
        text = text.rstrip("\n") + "\n\n" + RUN_MARKER + "\n"
    head, tail = text.split(RUN_MARKER, 1)
    runs = []
    for chunk in ("\n" + tail).split("\n## ")[1:]:
        runs.append("## " + chunk.strip("\n") + "\n")
    runs = [section.strip("\n") + "\n"] + runs
    RESULTS.write_text(head + RUN_MARKER + "\n\n" + "\n".join(runs[:KEEP_RUNS]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats per engine (>= 7)")
    ap.add_argument("--roofline-mb", type=int, default=512, help="MB per STREAM array (x3)")
    ap.add_argument("--command", default=None,
                    help="command line to record (default: this script's own command line)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--only-numpy-matmul", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    repeats = max(7, args.repeats)

    if args.worker:
        print(json.dumps(worker(threads[0], repeats, args.only_numpy_matmul)))
        return

    start = time.time()
    py_command = " ".join(shlex.quote(a) for a in
                          [os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(
                              str(ROOT)) else sys.executable,
                           os.path.relpath(Path(__file__).resolve(), ROOT)] + sys.argv[1:])
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": cpu_model(),
            "cores": cpu_count(), "command": args.command or py_command,
            "py_command": py_command, "repeats": repeats, "load_start": loadavg(),
            "git": git_rev(), "threads": threads}
    log(f"load average at start: {meta['load_start']} on {meta['cores']} cores")
    roof = run_roofline(threads, args.roofline_mb)
    runs, unset_runs = {}, {}
    for t in threads:
        log(f"worker: {t} thread(s)")
        runs[t] = run_worker(t, repeats, False)
    if any(v in os.environ for v in OPENBLAS_VARS):
        for t in threads:
            log(f"worker: numpy matmul, {t} thread(s), OPENBLAS_CORETYPE/L2_SIZE unset")
            unset_runs[t] = run_worker(t, repeats, True)
    import numpy as np
    import nef
    meta["numpy_version"] = np.__version__
    meta["nef_version"] = getattr(nef, "__version__", "?")
    meta["openblas"] = runs[threads[0]].get("openblas", {})
    meta["load_end"] = loadavg()
    meta["load_max"] = max([meta["load_start"][0], meta["load_end"][0]]
                           + [r["load_start"][0] for r in runs.values()]
                           + [r["load_end"][0] for r in runs.values()])
    raw = ROOT / "build" / "bench" / "last_run.json"
    raw.write_text(json.dumps({"meta": meta, "roofline": roof, "runs": runs,
                               "numpy_openblas_unset": unset_runs}, indent=1))
    log(f"raw samples: {os.path.relpath(raw, ROOT)}")
    section = render(meta, roof, runs, unset_runs)
    section += f"\nTotal benchmark time: {time.time() - start:.0f} s.\n"
    print(section)
    if not args.no_write:
        write_results(section)
        log(f"written to {os.path.relpath(RESULTS, ROOT)}")


if __name__ == "__main__":
    main()
