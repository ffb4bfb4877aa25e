#!/usr/bin/env python3
"""NEF vs numpy and ONNX Runtime, side by side in one run, against this machine's measured limits.

    .venv/bin/python bench/bench_ops.py            # `make bench`: every row, 1 and 2 threads
    .venv/bin/python bench/bench_ops.py --repeats 9 --threads 1,2 --no-write
    .venv/bin/python bench/bench_ops.py --repeats 3 --threads 1 --no-write --rows attention,conv

Steps: build and run bench/roofline.cpp (STREAM copy/triad, FP32 FMA peak at each thread
count), then one worker subprocess per thread count that times NEF and its peer alternately in
the same process on the same inputs (the convolutions: each engine in a process of its own, see
below), then (only where OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE
is set) one more subprocess per thread count timing numpy's float32 matmuls with both variables
unset: that is the only place the variables are changed, and only in that subprocess's
environment.

Rows (--rows selects them; `--help` lists the ids): the fused chain, a + b, softmax and
layernorm (numpy); matmul 256/512/1024/2048/4096 float32 (numpy/OpenBLAS; 4096 with at most 5
repeats after one untimed call); matmul with bfloat16 inputs (NEF bfloat16 tensors from
ml_dtypes arrays, bfloat16 output; peer: numpy's float32 matmul of the same values); causal
attention 1 x 12 heads x 64 at seq 128/512/2048 (nef.attention vs numpy's straightforward
q@k^T*scale + causal mask, softmax, @v); the MLP; the MLP while a spinning process started by
the worker keeps one core busy (at N > 1 threads NEF also at 1 thread in the same process, for
the "2 threads never slower than 1" goal); convolutions at mobile-CNN shapes on one-node ONNX
models built with onnx.helper (NEF through nef.from_onnx vs ONNX Runtime with
intra_op_num_threads = the thread count); recurrent layers (LSTM/GRU, one-node ONNX models vs
ONNX Runtime, checked against tests/python/rnn_reference.py); and the per-op overhead of a tiny
op.

Each NEF sample is the whole lazy path a user pays: build the nodes, execute, materialize
(.numpy(), which views NEF's memory); for the convolutions Graph.run against
InferenceSession.run. Inputs are NEF tensors wrapping the same numpy arrays (nef.from_numpy,
zero-copy), made once outside the timed region from a generator seeded per row. Every row is
checked before it is timed (NEF against numpy float64 or numpy float32, ORT against float64;
the check's calls double as warm-up), then timed after two warm-up calls, except the "cold"
row: the first NEF call of the process. A sample of one call follows an untimed call of the same
engine, so that each engine is timed with its threads awake (see side_by_side).
The convolution rows run each engine in its own engine-server process (--engine-server, started
by the worker for each row; one imports only nef, the other only onnxruntime), which builds the
same model and inputs from the row's seed, checks its engine against the float64 reference and
then answers the worker's requests for warm-up calls and samples. The worker asks the two
servers for samples alternately (order flipped every repeat), idling the settle time before
each, so only one engine runs at a time and neither engine's thread pool (ORT's intra-op threads
spin after each run), allocator, page cache or kernel caches share a process with the other's:
in one process NEF's 1x1 32->192 samples took 578/695 us at 1/2 threads against 365/200 us in a
process of its own. --baseline DIR adds a third engine server there, another NEF build (DIR
holds its nef package, e.g. a copy of the venv's from before a change), timed in turn with the
other two, and a table of NEF against it.
Thread counts: NEF through nef.config(threads=N) (read back into the report); numpy/OpenBLAS
through OPENBLAS_NUM_THREADS and OMP_NUM_THREADS in the worker's environment (threadpoolctl is
not installed); ONNX Runtime through its session options.
Results: a markdown table printed and written into bench/RESULTS.md (newest run first), with
`uptime` at start and end; runs with fewer than 7 repeats are for checking and are refused
unless --no-write is given.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import gc
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
import zlib
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


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(map(str, loadavg()))


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


def side_by_side(fns: dict, repeats: int, target_s: float = 0.02, warmup: int = 2,
                 settle_s: float = 0.0, pre: dict | None = None) -> dict:
    """Times each engine alternately (order flipped every repeat) after `warmup` untimed calls
    each. settle_s: idle time before each sample, so that one engine's spinning workers do
    not run into the other's sample (ONNX Runtime's spin for ~30 ms after a run). pre: per
    engine, a call made before each of its samples, untimed (e.g. nef.config(threads=1)).
    A sample of one call (k == 1) follows an untimed call of the same engine, made after the
    settle time: every engine is timed with its own threads awake, as in a steady stream of
    calls. Without it the sample after the idle time measures how fast this VM wakes an idle
    vCPU (up to ~2 ms here, paid by whichever engine blocked its workers), not the op; that
    cost is measured on its own by bench_cold_start.py."""
    names = list(fns)
    pre = pre or {}
    nop = lambda: None  # noqa: E731
    for name in names:
        pre.get(name, nop)()
        for _ in range(warmup):
            r = fns[name]()
            del r
    ks = {}
    for name in names:
        pre.get(name, nop)()
        ks[name] = _calls_per_sample(fns[name], target_s)
    samples = {name: [] for name in names}
    for rep in range(repeats):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            pre.get(name, nop)()
            if settle_s:
                time.sleep(settle_s)
            if ks[name] == 1:
                r = fns[name]()
                del r
            samples[name].append(_sample(fns[name], ks[name]))
    return {name: dict(_stats(samples[name]), calls_per_sample=ks[name]) for name in names}


def serve_engine(rid: str, engine: str, threads: int) -> None:
    """Engine server (--engine-server): builds one engine's case for row `rid` and answers the
    worker over stdin/stdout, one JSON line each way. First line out: {"check": ...} (the
    check's calls double as warm-up). Then "warm N" -> N untimed calls; "calibrate T" -> the
    calls per sample that last about T seconds; "sample K" -> {"s": seconds per call} (K == 1:
    after one untimed call, as side_by_side does); "done" -> exits."""
    import numpy as np
    # The protocol owns the real stdout; anything an engine prints goes to stderr.
    chan = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    nef_engine = engine in ("nef", BASELINE_ENGINE)
    if nef_engine:
        import nef
        nef.config(threads=threads)
    row = ROW_BY_ID[rid]
    case = row.setup(np.random.default_rng(_row_seed(rid)), threads,
                     "nef" if nef_engine else engine)
    fn = case["fn"]
    hello = {"check": case["check"]()}
    if nef_engine:
        hello["threads"] = nef.config()["threads"]
    chan.write(json.dumps(hello) + "\n")
    chan.flush()
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "warm":
            for _ in range(int(arg)):
                r = fn()
                del r
            reply = {}
        elif cmd == "calibrate":
            reply = {"k": _calls_per_sample(fn, float(arg))}
        elif cmd == "sample":
            k = int(arg)
            if k == 1:
                r = fn()
                del r
            reply = {"s": _sample(fn, k)}
        else:
            return
        chan.write(json.dumps(reply) + "\n")
        chan.flush()


class EngineServer:
    """The worker's end of serve_engine: one engine of one row in its own process."""

    def __init__(self, rid: str, engine: str, threads: int) -> None:
        env = dict(os.environ)
        if engine == BASELINE_ENGINE:  # the other NEF build, first on the module path
            env["PYTHONPATH"] = env["NEF_BENCH_BASELINE"] + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--engine-server", engine,
               "--rows", rid, "--threads", str(threads)]
        self.engine = engine
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=env)

    def read(self) -> dict:
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit(f"bench engine server {self.engine} died (exit {self.p.wait()})")
        return json.loads(line)

    def ask(self, cmd: str) -> dict:
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.read()

    def close(self) -> None:
        self.p.stdin.write("done\n")
        self.p.stdin.close()
        self.p.wait(timeout=60)


def side_by_side_apart(servers: dict, repeats: int, target_s: float = 0.02, warmup: int = 2,
                       settle_s: float = 0.0) -> dict:
    """side_by_side with each engine in its own process (EngineServer): the same warm-up,
    calls per sample, alternating order (flipped every repeat) and settle time before each
    sample, asked of the servers in turn, so that only one engine runs at a time. Neither
    engine's thread pool, allocator or caches live in the other's process."""
    names = list(servers)
    for name in names:
        servers[name].ask(f"warm {warmup}")
    ks = {name: servers[name].ask(f"calibrate {target_s}")["k"] for name in names}
    samples = {name: [] for name in names}
    for rep in range(repeats):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            if settle_s:
                time.sleep(settle_s)
            samples[name].append(servers[name].ask(f"sample {ks[name]}")["s"])
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


# ---- rows ------------------------------------------------------------------------------------
#
# Each row: an id (what --rows selects), a label, the kind of limit it is held against ("bw":
# compulsory bytes moved / STREAM triad; "flop": FLOPs / FP32 FMA peak; "overhead": none), that
# amount, the peer's name and a setup(rng, threads) returning a Case. Inputs come from a
# generator seeded by (SEED, crc32(row id)), so a row's inputs do not depend on --rows.

class Row:
    def __init__(self, rid, label, kind, amount, peer, setup, **opts):
        self.id, self.label, self.kind, self.amount = rid, label, kind, amount
        self.peer, self.setup = peer, setup
        self.warmup = opts.get("warmup", 2)          # untimed calls per engine before timing
        self.max_repeats = opts.get("max_repeats")   # cap on --repeats (the 4096 matmul)
        self.settle_s = opts.get("settle_s", 0.0)    # idle time before switching engine
        # Engines that each run in their own server process (setup(rng, threads, engine)),
        # timed by side_by_side_apart; None: both engines in the worker, by side_by_side.
        self.apart = opts.get("apart")


def _f32(rng, *shape, scale=1.0):
    import numpy as np
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)


def _setup_chain(rng, threads):
    import nef
    import numpy as np
    n = 16 * 1024 * 1024
    a, b, c, d = (_f32(rng, n) for _ in range(4))
    A, B, C, D = (nef.from_numpy(v) for v in (a, b, c, d))
    nef_fn = lambda: (nef.tanh(A * B + C) * D - nef.exp(-A)).numpy()  # noqa: E731
    np_fn = lambda: np.tanh(a * b + c) * d - np.exp(-a)  # noqa: E731
    return {"fns": {"nef": nef_fn, "numpy": np_fn},
            "check": lambda: check_close(nef_fn(), np_fn(), 1e-3, 1e-3)}


def _setup_add(rng, threads):
    import nef
    a, b = _f32(rng, 16 * 1024 * 1024), _f32(rng, 16 * 1024 * 1024)
    A, B = nef.from_numpy(a), nef.from_numpy(b)
    return {"fns": {"nef": lambda: (A + B).numpy(), "numpy": lambda: a + b},
            "check": lambda: check_close((A + B).numpy(), a + b, 0, 0)}


def _setup_softmax(rng, threads):
    import nef
    import numpy as np
    x = _f32(rng, 4096, 4096, scale=3.0)
    X = nef.from_numpy(x)

    def softmax_np():
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def ref64():
        x64 = x.astype(np.float64)
        e = np.exp(x64 - x64.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    nef_fn = lambda: nef.softmax(X, -1).numpy()  # noqa: E731
    return {"fns": {"nef": nef_fn, "numpy": softmax_np},
            "check": lambda: check_close(nef_fn(), ref64(), 1e-3, 1e-8)}


def _setup_layernorm(rng, threads):
    import nef
    import numpy as np
    k = 4096
    x = _f32(rng, 4096, k, scale=3.0)
    g, beta = _f32(rng, k) + np.float32(1), _f32(rng, k)
    X, G, Bt = nef.from_numpy(x), nef.from_numpy(g), nef.from_numpy(beta)
    eps = 1e-5

    def layernorm(v, gg, bb, e):
        mu = v.mean(axis=-1, keepdims=True)
        vc = v - mu
        var = (vc * vc).mean(axis=-1, keepdims=True)
        return vc / np.sqrt(var + e) * gg + bb

    nef_fn = lambda: nef.layernorm(X, G, Bt, eps=eps).numpy()  # noqa: E731
    ref = lambda: layernorm(x.astype(np.float64), g, beta, eps)  # noqa: E731
    return {"fns": {"nef": nef_fn,
                    "numpy": lambda: layernorm(x, g, beta, np.float32(eps))},
            "check": lambda: check_close(nef_fn(), ref(), 1e-3, 1e-3)}


def _setup_matmul(n):
    def setup(rng, threads):
        import nef
        a, b = _f32(rng, n, n), _f32(rng, n, n)
        A, B = nef.from_numpy(a), nef.from_numpy(b)
        nef_fn = lambda: nef.matmul(A, B).numpy()  # noqa: E731
        # Reference: numpy's float32 product (OpenBLAS, an independent GEMM); float64 at 4096
        # would cost seconds per worker for no sharper verdict at this tolerance.
        return {"fns": {"nef": nef_fn, "numpy": lambda: a @ b},
                "check": lambda: check_close(nef_fn(), a @ b, 1e-3, 1e-3 * math.sqrt(n))}
    return setup


def _setup_matmul_bf16(n):
    def setup(rng, threads):
        import ml_dtypes
        import nef
        import numpy as np
        a = _f32(rng, n, n).astype(ml_dtypes.bfloat16)
        b = _f32(rng, n, n).astype(ml_dtypes.bfloat16)
        A, B = nef.from_numpy(a), nef.from_numpy(b)
        a32, b32 = a.astype(np.float32), b.astype(np.float32)   # the same values, exactly
        nef_fn = lambda: nef.matmul(A, B).numpy()  # noqa: E731

        def check():
            got = nef_fn()
            if got.dtype != ml_dtypes.bfloat16:
                return {"ok": False, "detail": f"output dtype {got.dtype}, expected bfloat16"}
            # float32 accumulation, then one bfloat16 rounding of the output (2^-8 relative).
            return check_close(got.astype(np.float32),
                               a32.astype(np.float64) @ b32.astype(np.float64),
                               8e-3, 1e-3 * math.sqrt(n))
        return {"fns": {"nef": nef_fn, "numpy": lambda: a32 @ b32}, "check": check}
    return setup


def _mlp_case(rng):
    import nef
    import numpy as np
    x = _f32(rng, 256, 1024)
    w1, b1 = _f32(rng, 1024, 4096, scale=1 / 32), _f32(rng, 4096, scale=0.1)
    w2, b2 = _f32(rng, 4096, 1024, scale=1 / 64), _f32(rng, 1024, scale=0.1)
    X, W1, B1, W2, B2 = (nef.from_numpy(v) for v in (x, w1, b1, w2, b2))
    c0 = np.float32(math.sqrt(2 / math.pi))

    # numpy's gelu uses h*h*h (h**3 would go through powf and be much slower: the fair peer
    # is the fast spelling).
    def mlp_np():
        h = x @ w1 + b1
        inner = c0 * (h + np.float32(0.044715) * h * h * h)
        h = np.float32(0.5) * h * (np.float32(1) + np.tanh(inner))
        return h @ w2 + b2

    mlp_nef = lambda: (nef.gelu(X @ W1 + B1, approximate="tanh") @ W2 + B2).numpy()  # noqa: E731
    return {"fns": {"nef": mlp_nef, "numpy": mlp_np},
            "check": lambda: check_close(mlp_nef(), mlp_np(), 1e-3, 1e-3)}


def _setup_mlp(rng, threads):
    return _mlp_case(rng)


class BusyCore:
    """Keeps one core busy: a spinning Python process, started here and killed on exit."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        time.sleep(0.3)  # let it start and reach its loop
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        return False


def _setup_mlp_busy(rng, threads):
    """The MLP while a spinning process keeps one core busy; at N > 1 threads NEF also runs
    at 1 thread in the same process, alternated with the others under the same spinner
    (nef.config switched before each sample, untimed), for the 2-thread vs 1-thread goal."""
    import nef
    case = _mlp_case(rng)
    case["context"] = BusyCore
    if threads > 1:
        case["fns"]["nef_1t"] = case["fns"]["nef"]
        case["pre"] = {"nef": lambda: nef.config(threads=threads),
                       "numpy": lambda: nef.config(threads=threads),
                       "nef_1t": lambda: nef.config(threads=1)}
    return case


def _setup_attention(seq, heads=12, dim=64):
    def setup(rng, threads):
        import nef
        import numpy as np
        q, k, v = (_f32(rng, 1, heads, seq, dim) for _ in range(3))
        Q, K, V = (nef.from_numpy(t) for t in (q, k, v))
        scale = np.float32(1 / math.sqrt(dim))
        mask_add = np.triu(np.full((seq, seq), -np.inf, dtype=np.float32), 1)  # made once

        def attention_np():
            s = q @ k.transpose(0, 1, 3, 2)
            s *= scale
            s += mask_add
            s -= s.max(axis=-1, keepdims=True)
            np.exp(s, out=s)
            s /= s.sum(axis=-1, keepdims=True)
            return s @ v

        def ref64():
            q64, k64, v64 = (t.astype(np.float64) for t in (q, k, v))
            s = q64 @ k64.transpose(0, 1, 3, 2) / math.sqrt(dim) + mask_add
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            return (s / s.sum(axis=-1, keepdims=True)) @ v64

        nef_fn = lambda: nef.attention(Q, K, V, causal=True).numpy()  # noqa: E731
        return {"fns": {"nef": nef_fn, "numpy": attention_np},
                "check": lambda: check_close(nef_fn(), ref64(), 1e-3, 1e-4),
                "peer_check": lambda: check_close(attention_np(), ref64(), 1e-3, 1e-4)}
    return setup


# Convolutions at the shapes of mobile CNNs (MobileNet-style blocks, an OCR detector's
# backbone): name, in channels, out channels, input map (square), kernel, stride, groups.
CONVS = [
    ("conv-3x3-s1-16x160", 16, 16, 160, 3, 1, 1),
    ("conv-3x3-s2-32x160", 32, 64, 160, 3, 2, 1),
    ("conv-3x3-s1-128x40", 128, 128, 40, 3, 1, 1),
    ("conv-dw3x3-s1-96x80", 96, 96, 80, 3, 1, 96),
    ("conv-dw3x3-s2-144x80", 144, 144, 80, 3, 2, 144),
    ("conv-1x1-32to192x80", 32, 192, 80, 1, 1, 1),
    ("conv-1x1-256to256x20", 256, 256, 20, 1, 1, 1),
]


def _conv_geometry(cin, cout, hw, k, stride, groups):
    pad = k // 2
    out = (hw + 2 * pad - k) // stride + 1
    flops = 2 * cout * (cin // groups) * k * k * out * out
    nbytes = 4 * (cin * hw * hw + cout * out * out + cout * (cin // groups) * k * k + cout)
    return pad, out, flops, nbytes


def _conv_ref64(x, w, b, stride, pad, groups):
    """Direct float64 convolution (independent of both engines)."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view
    kh, kw = w.shape[2:]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    w64 = w.astype(np.float64)
    if groups == 1:
        y = np.tensordot(win, w64, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    else:  # depthwise: one input channel per output channel
        y = np.einsum("nchwij,cij->nchw", win, w64[:, 0])
    return y + b.astype(np.float64)[None, :, None, None]


def _conv_engine(cin, cout, hw, k, stride, groups):
    """setup(rng, threads, engine) for one conv row, building only `engine` ("nef" or "ORT"):
    each runs in its own engine server process (see serve_engine), which imports only that
    engine. Both build the same model and inputs from the row's seeded generator."""
    def setup(rng, threads, engine):
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper
        pad, out, _, _ = _conv_geometry(cin, cout, hw, k, stride, groups)
        x = _f32(rng, 1, cin, hw, hw)
        w = _f32(rng, cout, cin // groups, k, k, scale=1 / math.sqrt(cin // groups * k * k))
        b = _f32(rng, cout, scale=0.1)
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k],
                                strides=[stride, stride], pads=[pad] * 4, group=groups)
        graph = helper.make_graph(
            [node], "conv",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, out, out])],
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        onnx.checker.check_model(model)
        blob = model.SerializeToString()
        if engine == "nef":
            import nef
            g = nef.from_onnx(blob)
            fn = lambda: g.run({"x": x})["y"]  # noqa: E731
        else:
            import onnxruntime as ort
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            sess = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])
            fn = lambda: sess.run(["y"], {"x": x})[0]  # noqa: E731
        ref = _conv_ref64(x, w, b, stride, pad, groups)
        return {"fn": fn, "check": lambda: check_close(np.asarray(fn()), ref, 1e-3, 1e-3)}
    return setup


# Recurrent layers on one-node ONNX models: name, op, direction, S, B, I, H. A voice-activity
# detector's per-chunk call (one step, state in and out), a long sequence, an OCR recognizer's
# bidirectional LSTM, a batched GRU (the per-step GEMM path).
RECURRENT = [
    ("lstm-step-128", "LSTM", "forward", 1, 1, 128, 128),
    ("lstm-seq512-128", "LSTM", "forward", 512, 1, 128, 128),
    ("lstm-bidir-64x512", "LSTM", "bidirectional", 64, 1, 512, 512),
    ("gru-b32-100x256", "GRU", "forward", 100, 32, 64, 256),
]


def _recurrent_flops(op, direction, S, B, I, H):
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    return (2 if direction == "bidirectional" else 1) * S * B * gates * H * (2 * I + 2 * H)


def _setup_recurrent(op, direction, S, B, I, H):
    def setup(rng, threads):
        import nef
        import numpy as np
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
        sys.path.insert(0, str(ROOT / "tests" / "python"))
        import rnn_reference
        D = 2 if direction == "bidirectional" else 1
        G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
        x = _f32(rng, S, B, I)
        h0 = _f32(rng, D, B, H, scale=0.5)
        w, r = (_f32(rng, D, G * H, n, scale=1 / math.sqrt(n)) for n in (I, H))
        b = _f32(rng, D, 2 * G * H, scale=0.1)
        ins = ["x", "w", "r", "b", "", "h0"]
        vis = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [S, B, I]),
               helper.make_tensor_value_info("h0", TensorProto.FLOAT, [D, B, H])]
        feed = {"x": x, "h0": h0}
        if op == "LSTM":
            ins.append("c0")
            vis.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, [D, B, H]))
            feed["c0"] = _f32(rng, D, B, H, scale=0.5)
        outs = ["y", "yh"] + (["yc"] if op == "LSTM" else [])
        node = helper.make_node(op, ins, outs, hidden_size=H, direction=direction)
        graph = helper.make_graph(
            [node], "rnn", vis, [helper.make_empty_tensor_value_info(o) for o in outs],
            [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (r, "r"), (b, "b"))])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
        blob = model.SerializeToString()
        g = nef.from_onnx(blob)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        sess = ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])
        nef_fn = lambda: g.run(feed)["y"]  # noqa: E731
        ort_fn = lambda: sess.run(["y"], feed)[0]  # noqa: E731
        ref = rnn_reference.run(op.lower(), x, w, r, b, h0, feed.get("c0"),
                                direction=direction)[0]
        return {"fns": {"nef": nef_fn, "ORT": ort_fn},
                "check": lambda: check_close(nef_fn(), ref, 1e-3, 1e-4),
                "peer_check": lambda: check_close(ort_fn(), ref, 1e-3, 1e-4)}
    return setup


def _setup_tiny(rng, threads):
    import nef
    a4, b4 = _f32(rng, 4), _f32(rng, 4)
    A4, B4 = nef.from_numpy(a4), nef.from_numpy(b4)
    return {"fns": {"nef": lambda: (A4 + B4).numpy(), "numpy": lambda: a4 + b4,
                    "nef_build_only": lambda: A4 + B4,
                    "nef_no_numpy": lambda: (A4 + B4).execute()},
            "check": lambda: check_close((A4 + B4).numpy(), a4 + b4, 0, 0)}


def _conv_label(cin, cout, hw, k, stride, groups):
    _, out, _, _ = _conv_geometry(cin, cout, hw, k, stride, groups)
    kind = "depthwise 3x3" if groups > 1 else ("pointwise 1x1" if k == 1 else f"{k}x{k}")
    ch = f"{cin} ch" if groups > 1 else f"{cin}->{cout} ch"
    return f"conv {kind} s{stride}, {ch}, {hw}x{hw} -> {out}x{out}"


MLP_FLOPS = 2 * 2 * 256 * 1024 * 4096
MATMUL_F32 = (256, 512, 1024, 2048, 4096)
MATMUL_BF16 = (1024, 2048)
ATTENTION_SEQ = (128, 512, 2048)
# --baseline DIR: the engine name of the other NEF build (a directory holding a nef package,
# e.g. a copy of the venv's before a change), timed in turn with the others on the conv rows.
BASELINE_ENGINE = "nef-baseline"
ORT_SETTLE_S = 0.05  # ORT's idle workers spin ~30 ms after a run: let them stop before NEF runs
# OpenBLAS's idle threads spin for 2^28 cycles (~0.1 s) after a call: with 2 threads they took a
# core from NEF's next sample (NEF's 2-thread 1024^3 matmul: 13.6 ms right after a numpy call,
# 9.6 ms with OPENBLAS_THREAD_TIMEOUT=4). Idle this long before each sample at > 1 thread.
NUMPY_SETTLE_S = 0.15


def _rows() -> list:
    rows = [
        Row("chain", "tanh(a*b+c)*d - exp(-a), 16M f32", "bw", 5 * 4 * 16 * 2**20, "numpy",
            _setup_chain),
        Row("add", "a+b, 16M f32, new output", "bw", 3 * 4 * 16 * 2**20, "numpy", _setup_add),
        Row("softmax", "softmax, last axis, 4096x4096", "bw", 2 * 4 * 4096 * 4096, "numpy",
            _setup_softmax),
        Row("layernorm", "layernorm, last axis, 4096x4096", "bw", 2 * 4 * 4096 * 4096, "numpy",
            _setup_layernorm),
    ]
    for n in MATMUL_F32:
        big = n >= 4096
        rows.append(Row(f"matmul-{n}", f"matmul {n}^3 f32", "flop", 2 * n**3, "numpy",
                        _setup_matmul(n), warmup=0 if big else 2,
                        max_repeats=5 if big else None))
    for n in MATMUL_BF16:
        rows.append(Row(f"matmul-bf16-{n}", f"matmul {n}^3, bfloat16 inputs and output",
                        "flop", 2 * n**3, "numpy f32 on the same values",
                        _setup_matmul_bf16(n)))
    for s in ATTENTION_SEQ:
        rows.append(Row(f"attention-{s}", f"causal attention 1x12x{s}x64", "flop",
                        2 * 12 * 64 * s * (s + 1), "numpy (straightforward)",
                        _setup_attention(s)))
    rows.append(Row("mlp", "MLP 256x1024 -> 4096 gelu-tanh -> 1024", "flop", MLP_FLOPS, "numpy",
                    _setup_mlp))
    rows.append(Row("busy", "MLP as above, one core kept busy by another process", "flop",
                    MLP_FLOPS, "numpy", _setup_mlp_busy))
    for name, cin, cout, hw, k, stride, groups in CONVS:
        _, _, flops, nbytes = _conv_geometry(cin, cout, hw, k, stride, groups)
        dw = groups > 1
        rows.append(Row(name, _conv_label(cin, cout, hw, k, stride, groups),
                        "bw" if dw else "flop", nbytes if dw else flops, "ORT",
                        _conv_engine(cin, cout, hw, k, stride, groups), settle_s=ORT_SETTLE_S,
                        apart=("nef", "ORT")))
    for name, op, direction, S, B, I, H in RECURRENT:
        label = f"{op} {direction[:5]} S={S} B={B} I={I} H={H}"
        rows.append(Row(name, label, "flop", _recurrent_flops(op, direction, S, B, I, H), "ORT",
                        _setup_recurrent(op, direction, S, B, I, H), settle_s=ORT_SETTLE_S))
    rows.append(Row("tiny", "tiny op: a+b on 4 elements", "overhead", 0, "numpy", _setup_tiny))
    return rows


ROWS = _rows()
ROW_BY_ID = {r.id: r for r in ROWS}


def select_rows(spec: str) -> list:
    """Comma list of row ids; a token also selects every row whose id starts with token + '-'
    (matmul: all matmuls, matmul-bf16, attention, conv, conv-dw3x3, ...). 'all': every row."""
    if not spec or spec.strip() == "all":
        return [r.id for r in ROWS]
    chosen = set()
    for tok in (t.strip() for t in spec.split(",")):
        if not tok:
            continue
        hits = [r.id for r in ROWS if r.id == tok or r.id.startswith(tok + "-")]
        if not hits:
            raise SystemExit(f"--rows: unknown row '{tok}'; rows: "
                             + ", ".join(r.id for r in ROWS))
        chosen.update(hits)
    return [r.id for r in ROWS if r.id in chosen]  # table order


# ---- the worker: one process per thread count --------------------------------------------------

def _row_seed(rid: str) -> list:
    return [SEED, zlib.crc32(rid.encode())]


def worker(threads: int, repeats: int, row_ids: list, only_numpy_matmul: bool) -> dict:
    import numpy as np
    out = {"threads": threads, "load_start": loadavg(), "results": {}, "cold": {},
           "seed": SEED}
    res = out["results"]

    if only_numpy_matmul:
        np.ones(4) @ np.ones(4)  # loads OpenBLAS
        out["openblas"] = openblas_info()
        for rid in row_ids:
            row = ROW_BY_ID[rid]
            if not rid.startswith("matmul-") or rid.startswith("matmul-bf16"):
                continue
            n = int(rid.split("-")[1])
            rng = np.random.default_rng(_row_seed(rid))
            a, b = _f32(rng, n, n), _f32(rng, n, n)
            log(f"  [{threads}T] numpy matmul n={n} (OPENBLAS vars unset)")
            reps = min(repeats, row.max_repeats or repeats)
            res[rid] = side_by_side({"numpy": lambda: a @ b}, reps, warmup=row.warmup)
            del a, b
        out["load_end"] = loadavg()
        return out

    import nef
    nef.config(threads=threads)
    out["nef_threads"] = nef.config()["threads"]
    np.ones(4) @ np.ones(4)
    out["openblas"] = openblas_info()
    try:
        import onnxruntime
        out["ort_version"] = onnxruntime.__version__
    except ImportError:
        out["ort_version"] = None

    for rid in row_ids:
        row = ROW_BY_ID[rid]
        log(f"  [{threads}T] {rid}: {row.label}")
        if row.apart:
            names = list(row.apart)
            if os.environ.get("NEF_BENCH_BASELINE"):
                names.append(BASELINE_ENGINE)
            servers = {name: EngineServer(rid, name, threads) for name in names}
            hello = {name: srv.read() for name, srv in servers.items()}
            settle = max(row.settle_s, NUMPY_SETTLE_S) if threads > 1 else row.settle_s
            r = side_by_side_apart(servers, min(repeats, row.max_repeats or repeats),
                                   warmup=row.warmup, settle_s=settle)
            for srv in servers.values():
                srv.close()
            nef_name, peer_name = row.apart
            r["check"] = hello[nef_name]["check"]
            r["peer_check"] = hello[peer_name]["check"]
            r["nef_threads_server"] = hello[nef_name].get("threads")
            if BASELINE_ENGINE in hello:
                r["baseline_check"] = hello[BASELINE_ENGINE]["check"]
            res[rid] = r
            if not r["check"].get("ok", True):
                log(f"  [{threads}T] {rid}: NEF result does NOT match the reference: "
                    f"{r['check']}")
            continue
        case = row.setup(np.random.default_rng(_row_seed(rid)), threads)
        fns = case["fns"]
        if rid == "chain" and not res:
            # The process's first NEF graph: empty kernel and plan caches.
            s0 = nef.stats()
            t0 = time.perf_counter()
            r = fns["nef"]()
            cold_nef = time.perf_counter() - t0
            s1 = nef.stats()
            t0 = time.perf_counter()
            r = fns["numpy"]()
            cold_np = time.perf_counter() - t0
            del r
            out["cold"]["chain"] = {
                "nef": cold_nef, "numpy": cold_np,
                "stats_delta": {k: s1[k] - s0.get(k, 0) for k in s1
                                if isinstance(s1[k], (int, float)) and s1[k] != s0.get(k, 0)}}
        # Checked first: the check's calls double as warm-up.
        check = case["check"]()
        peer_check = case["peer_check"]() if "peer_check" in case else None
        reps = min(repeats, row.max_repeats or repeats)
        ctx = case.get("context")
        pre = case.get("pre")
        if pre:
            read_back = {}
            for name, hook in pre.items():
                hook()
                read_back[name] = nef.config()["threads"]
        with ctx() if ctx is not None else contextlib.nullcontext():
            settle = row.settle_s
            if threads > 1:  # the peers' idle threads spin longer with more of them
                settle = max(settle, NUMPY_SETTLE_S)
            r = side_by_side(fns, reps, warmup=row.warmup, settle_s=settle, pre=pre)
        if pre:
            nef.config(threads=threads)
            r["nef_threads_read_back"] = read_back
        r["check"] = check
        if peer_check is not None:
            r["peer_check"] = peer_check
        res[rid] = r
        if not check.get("ok", True):
            log(f"  [{threads}T] {rid}: NEF result does NOT match the reference: {check}")
        del case, fns, r
        gc.collect()

    out["nef_stats"] = {k: v for k, v in nef.stats().items() if isinstance(v, (int, float))}
    out["load_end"] = loadavg()
    return out


def run_worker(threads: int, repeats: int, row_ids: list, unset_openblas: bool) -> dict:
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", str(threads),
           "--repeats", str(repeats), "--rows", ",".join(row_ids)]
    if unset_openblas:
        for v in OPENBLAS_VARS:
            env.pop(v, None)
        cmd.append("--only-numpy-matmul")
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench worker failed (exit {proc.returncode}): {' '.join(cmd)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- report ----------------------------------------------------------------------------------

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


def peer_key(r: dict) -> str:
    return next(k for k in r if k not in ("nef", "check", "peer_check")
                and not k.startswith("nef_") and isinstance(r[k], dict) and "median" in r[k])


def render(meta: dict, roof: dict, runs: dict, unset_runs: dict) -> str:
    L = []
    L.append(f"## {meta['date']} - {meta['cpu']}, {meta['cores']} cores - `{meta['command']}`")
    L.append("")
    runs_py = meta["command"] != meta["py_command"]
    L.append(f"- Command: `{meta['command']}`"
             + (f" (runs `{meta['py_command']}`)" if runs_py else ""))
    L.append(f"- Machine: {meta['cpu']}, {meta['cores']} cores, {roof['isa']}; "
             f"NEF {meta['nef_version']} at git {meta['git']}; numpy {meta['numpy_version']}, "
             f"OpenBLAS `{meta['openblas'].get('config', '?')}`; ONNX Runtime "
             f"{meta.get('ort_version') or 'not installed'}")
    L.append("- Threads: NEF " + ", ".join(
        f"{t} requested -> nef.config() reports {run.get('nef_threads', '?')}"
        for t, run in runs.items())
        + "; numpy/OpenBLAS through OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=threads; ONNX Runtime "
        "intra_op_num_threads=threads, inter_op_num_threads=1, sequential, spinning as default")
    ct = {v: os.environ.get(v, "<unset>") for v in OPENBLAS_VARS}
    cores = {t: runs[t]["openblas"].get("core", "?") for t in runs}
    L.append("- Peers: numpy in the same process, with this machine's "
             + ", ".join(f"{k}={v}" for k, v in ct.items())
             + f" (OpenBLAS kernels in use: {', '.join(sorted(set(cores.values())))}); the "
             "convolutions' peer is ONNX Runtime on the same one-node ONNX model (NEF runs it "
             "through nef.from_onnx: Graph.run vs InferenceSession.run, numpy in and out; "
             "each engine in a process of its own, the two asked for samples in turn), "
             f"with {ORT_SETTLE_S * 1e3:.0f} ms idle before each switch of engine so that ORT's "
             "spinning workers have stopped; at more than 1 thread, every row idles "
             f"{NUMPY_SETTLE_S * 1e3:.0f} ms before each sample so that OpenBLAS's and ORT's "
             "spinning threads have gone to sleep")
    # Our own run adds up to one unit of load per thread; before it starts, any load is others'.
    load_hi = (meta["load_start"][0] > meta["cores"]
               or meta["load_max"] > meta["cores"] + max(meta["threads"]))
    L.append(f"- `uptime` at start: `{meta['uptime_start']}`; at end: `{meta['uptime_end']}`"
             + (" -- **HIGH load: other processes competed for the cores during this run; "
                "absolute numbers are pessimistic and noisy, and the ratios less reliable**"
                if load_hi else ""))
    capped = [r.label for r in ROWS if r.max_repeats and r.max_repeats < meta["repeats"]
              and any(r.id in run["results"] for run in runs.values())]
    L.append(f"- Medians of {meta['repeats']} repeats (min-max in brackets"
             + (f"; {', '.join(capped)}: {min(r.max_repeats for r in ROWS if r.max_repeats)} "
                "repeats after one untimed call" if capped else "")
             + "), engines alternated in one process, order flipped every repeat; inputs: "
             f"fixed seed {SEED} per row. Ratio = NEF time / peer time (> 1: NEF is slower). A "
             "gap between the two medians smaller than the wider interquartile range of the two "
             "engines' repeats is reported as noise.")
    L.append("- % of limit: bandwidth-bound rows (elementwise, rows, depthwise conv) as "
             "compulsory bytes moved (inputs read once, output written once) / STREAM triad; "
             "matmul, MLP, attention and the other convs as FLOPs / FP32 FMA peak (attention: "
             "the causal half, 2*12*64*L*(L+1); bfloat16 matmul also against the FP32 peak); "
             "both at the same thread count, measured at the start of this run by "
             "bench/roofline.cpp.")
    if meta["rows"] != [r.id for r in ROWS]:
        L.append(f"- Rows selected: {', '.join(meta['rows'])}")
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
    L.append("| workload | threads | peer | NEF median (min-max) | peer median (min-max) "
             "| NEF/peer | NEF % of limit | peer % of limit | verdict |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    slower, failed = [], []
    for row in ROWS:
        for t, run in runs.items():
            r = run["results"].get(row.id)
            if not r:
                continue
            rf = roof["threads"][str(t)]
            pk = peer_key(r)
            nst, pst = r["nef"], r[pk]
            ratio = nst["median"] / pst["median"]
            v = verdict(nst, pst)
            chk = r.get("check", {})
            if chk and not chk.get("ok", True):
                failed.append(f"NEF, {row.label} at {t} thread(s): {chk}")
                v += " (NEF result WRONG)"
            pchk = r.get("peer_check")
            if pchk and not pchk.get("ok", True):
                failed.append(f"{pk}, {row.label} at {t} thread(s): {pchk}")
                v += f" ({pk} result off)"
            L.append(f"| {row.label} | {t} | {row.peer} | {fmt_stat(nst)} | {fmt_stat(pst)} | "
                     f"{ratio:.2f} | {pct_of_limit(row.kind, row.amount, nst['median'], rf)} | "
                     f"{pct_of_limit(row.kind, row.amount, pst['median'], rf)} | {v} |")
            if v.startswith("**NEF"):
                slower.append(f"{row.label}, {t} thread(s): NEF {ratio:.2f}x slower than "
                              f"{pk} ({fmt_time(nst['median'])} vs {fmt_time(pst['median'])})")
    L.append("")
    busy = {t: run["results"]["busy"] for t, run in runs.items() if "busy" in run["results"]}
    if busy:
        L.append("One core kept busy: a spinning process (`python -c 'while True: pass'`) "
                 "started by the worker before the busy row's warm-up and killed after its "
                 "repeats; the quiet MLP row is the same graph without it.")
        L.append("")
        L.append("| worker threads | NEF, one core busy | NEF at 1 thread, same process, one "
                 "core busy | NEF N threads / 1 thread | NEF, quiet (MLP row) | numpy, one core "
                 "busy | goal: N threads not slower than 1 |")
        L.append("|---|---|---|---|---|---|---|")
        for t, b in busy.items():
            quiet = runs[t]["results"].get("mlp", {}).get("nef")
            one = b.get("nef_1t")
            ratio = b["nef"]["median"] / one["median"] if one else None
            if one is None:
                goal = "-"
            elif ratio <= 1.0 or verdict(b["nef"], one) == "within noise":
                goal = "held" + (" (within noise)" if ratio > 1.0 else "")
            else:
                goal = f"**missed: {ratio:.2f}x slower**"
            L.append(f"| {t} | {fmt_stat(b['nef'])} | {fmt_stat(one) if one else '-'} | "
                     f"{f'{ratio:.2f}' if ratio else '-'} | "
                     f"{fmt_stat(quiet) if quiet else '-'} | {fmt_stat(b['numpy'])} | {goal} |")
        L.append("")
        for t, b in busy.items():
            rb = b.get("nef_threads_read_back")
            if rb:
                L.append(f"- Worker with {t} threads: nef.config() read back "
                         f"{rb.get('nef')} threads for the NEF column and {rb.get('nef_1t')} "
                         "for the 1-thread column (switched before each sample, untimed).")
        L.append("")
    for t, run in runs.items():
        tiny = run["results"].get("tiny", {})
        if tiny.get("nef_build_only") and tiny.get("nef_no_numpy"):
            L.append(f"- Tiny op, where NEF's time goes, {t} thread(s): graph build only "
                     f"(`A + B`) {fmt_stat(tiny['nef_build_only'])}; build + execute "
                     f"(`(A + B).execute()`) {fmt_stat(tiny['nef_no_numpy'])}; "
                     f"+ `.numpy()` {fmt_stat(tiny['nef'])} (the table's number).")
    L.append("")
    if any(run["cold"].get("chain") for run in runs.values()):
        L.append("Cold first call (first NEF graph of the process: empty kernel and plan "
                 "caches) vs the warm median, fused chain on 16M:")
        L.append("")
        L.append("| threads | NEF first call | NEF warm median | numpy first call "
                 "| numpy warm median |")
        L.append("|---|---|---|---|---|")
        for t, run in runs.items():
            cold = run["cold"].get("chain")
            warm = run["results"].get("chain")
            if cold and warm:
                L.append(f"| {t} | {fmt_time(cold['nef'])} | {fmt_time(warm['nef']['median'])}"
                         f" | {fmt_time(cold['numpy'])} | {fmt_time(warm['numpy']['median'])} |")
        L.append("")
    if unset_runs:
        L.append("numpy matmul with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE **unset** (in that "
                 "subprocess's environment only; everything else above uses the machine's "
                 "setting):")
        L.append("")
        L.append("| n | threads | numpy, machine setting | numpy, vars unset (kernels) | NEF "
                 "| NEF / numpy-unset | numpy-unset % of FMA peak |")
        L.append("|---|---|---|---|---|---|---|")
        for n in MATMUL_F32:
            key = f"matmul-{n}"
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
    elif not any(v in os.environ for v in OPENBLAS_VARS):
        L.append("OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are both unset in this environment, so "
                 "the \"numpy with the variables unset\" matmul variant is the default peer above "
                 "(not run twice).")
        L.append("")
    base_rows = [(t, rid, r) for t, run in runs.items() for rid, r in run["results"].items()
                 if BASELINE_ENGINE in r]
    if base_rows:
        L.append(f"NEF against the baseline build (--baseline {meta.get('baseline')}), timed "
                 "in turn with the engines above:")
        L.append("")
        L.append("| workload | threads | baseline NEF median (min-max) | NEF median (min-max) | "
                 "NEF/baseline |")
        L.append("|---|---|---|---|---|")
        for t, rid, r in base_rows:
            b = r[BASELINE_ENGINE]
            L.append(f"| {ROW_BY_ID[rid].label} | {t} | {fmt_stat(b)} | {fmt_stat(r['nef'])} | "
                     f"{r['nef']['median'] / b['median']:.2f} |")
        L.append("")
    L.append("Where NEF is slower (automatic, from the table):")
    L.append("")
    if slower:
        L.extend(f"- {s}" for s in slower)
    else:
        L.append("- nowhere beyond noise")
    L.append("")
    L.append("Correctness (every row, before timing: NEF against numpy float64 for softmax, "
             "layernorm, bfloat16 matmul, attention and the convolutions, against numpy float32 "
             "elsewhere; ONNX Runtime and numpy's attention checked against the same float64 "
             "reference): " + ("**FAILED**" if failed else "all rows passed") + ".")
    if failed:
        L.append("")
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
    ap.add_argument("--repeats", type=int, default=7,
                    help="timed repeats per engine (default 7; 3-6 for quick checks, which "
                         "are never written to RESULTS.md)")
    ap.add_argument("--rows", default="all",
                    help="comma list of rows to run; a name also selects the rows it prefixes "
                         "(matmul, matmul-bf16, attention, conv, conv-dw3x3, ...): "
                         + ", ".join(r.id for r in ROWS))
    ap.add_argument("--roofline-mb", type=int, default=512, help="MB per STREAM array (x3)")
    ap.add_argument("--command", default=None,
                    help="command line to record (default: this script's own command line)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--only-numpy-matmul", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine-server", help=argparse.SUPPRESS)
    ap.add_argument("--baseline", metavar="DIR",
                    help="a directory holding another build's nef package: the conv rows also "
                         "time it (in its own process, in turn with NEF and ORT)")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    repeats = args.repeats
    if repeats < 3:
        raise SystemExit("--repeats: at least 3 (medians and quartiles need them)")
    row_ids = select_rows(args.rows)

    if args.engine_server:
        serve_engine(row_ids[0], args.engine_server, threads[0])
        return
    if args.worker:
        print(json.dumps(worker(threads[0], repeats, row_ids, args.only_numpy_matmul)))
        return
    need = ["numpy", "nef"]
    if any(r.startswith(("conv-", "lstm-", "gru-")) for r in row_ids):
        need += ["onnx", "onnxruntime"]
    if any(r.startswith("matmul-bf16") for r in row_ids):
        need.append("ml_dtypes")
    for mod in need:
        try:
            __import__(mod)
        except ImportError as e:
            raise SystemExit(f"bench_ops: cannot import {mod} ({e}) with {sys.executable}; run "
                             "it with the project's environment (.venv/bin/python, as `make "
                             "bench` does)")
    if repeats < 7 and not args.no_write:
        raise SystemExit(f"--repeats {repeats}: runs recorded in RESULTS.md take at least 7 "
                         "repeats; add --no-write for a quick check")

    if args.baseline:
        if not (Path(args.baseline) / "nef" / "__init__.py").is_file():
            raise SystemExit(f"--baseline {args.baseline}: no nef package in that directory")
        os.environ["NEF_BENCH_BASELINE"] = str(Path(args.baseline).resolve())
    start = time.time()
    py_command = " ".join(shlex.quote(a) for a in
                          [os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(
                              str(ROOT)) else sys.executable,
                           os.path.relpath(Path(__file__).resolve(), ROOT)] + sys.argv[1:])
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": cpu_model(),
            "cores": cpu_count(), "command": args.command or py_command,
            "py_command": py_command, "repeats": repeats, "load_start": loadavg(),
            "git": git_rev(), "threads": threads, "rows": row_ids, "uptime_start": uptime(),
            "baseline": args.baseline}
    log(f"uptime at start: {meta['uptime_start']} ({meta['cores']} cores)")
    log("rows: " + ", ".join(row_ids))
    roof = run_roofline(threads, args.roofline_mb)
    runs, unset_runs = {}, {}
    for t in threads:
        log(f"worker: {t} thread(s)")
        runs[t] = run_worker(t, repeats, row_ids, False)
    if any(v in os.environ for v in OPENBLAS_VARS) and any(
            r.startswith("matmul-") and not r.startswith("matmul-bf16") for r in row_ids):
        for t in threads:
            log(f"worker: numpy matmul, {t} thread(s), OPENBLAS_CORETYPE/L2_SIZE unset")
            unset_runs[t] = run_worker(t, repeats, row_ids, True)
    import numpy as np
    import nef
    meta["numpy_version"] = np.__version__
    meta["nef_version"] = getattr(nef, "__version__", "?")
    meta["openblas"] = runs[threads[0]].get("openblas", {})
    meta["ort_version"] = runs[threads[0]].get("ort_version")
    meta["load_end"] = loadavg()
    meta["uptime_end"] = uptime()
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
