#!/usr/bin/env python3
"""int8 convs against float32 ones, 1 thread, CPU time (issue 13, `nef quantize --int8`).

    .venv/bin/python bench/bench_conv_int8.py [--repeats 15] [--threads 1]

    .venv/bin/python bench/bench_conv_int8.py --ddddocr [--repeats 15]

    .venv/bin/python bench/bench_conv_int8.py --targets avx2,avx2vnni,avx512 [--shapes ...]

Per shape (bench/bench_ops.py's conv rows and a few more): the float conv (conv + bias, one-node
graph), the conv_integer kernel alone (uint8 activations, int8 weights, zero weight zero point),
and the graph `Graph.quantize()` makes of the float one (conv_dynamic_int8: the activation
quantized at run time, the int8 conv, rescale and bias) where it rewrites the conv. --ddddocr:
ddddocr's detector (tests/python/test_ddddocr_det.py) in float32 NEF, quantized NEF and ONNX
Runtime float32, with the int8 model's error against the float one. Variants run interleaved (one
call of each per round), medians of process CPU time per call; `uptime` before and after.
--targets: the int8 kernels' instruction-set variants against each other (NEF_CPU_TARGET is fixed
per process: one worker process per target, called in turn every round), on the shapes and on
matmul_dynamic_int8 at MiniLM's FFN shape (128 x 384 -> 1536).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np

import nef

SHAPES = [  # name, cin, cout, hw, k, stride, groups
    ("3x3-s1-16x160", 16, 16, 160, 3, 1, 1),
    ("3x3-s2-32to64x160", 32, 64, 160, 3, 2, 1),
    ("3x3-s1-128x40", 128, 128, 40, 3, 1, 1),
    ("dw3x3-s1-96x80", 96, 96, 80, 3, 1, 96),
    ("1x1-32to192x80", 32, 192, 80, 1, 1, 1),
    ("1x1-256x20", 256, 256, 20, 1, 1, 1),
    ("3x3-s2-3to16x160-stem", 3, 16, 160, 3, 2, 1),
    ("3x3-s1-32x80", 32, 32, 80, 3, 1, 1),
    ("3x3-s1-64x40", 64, 64, 40, 3, 1, 1),
    ("1x1-16to32x160", 16, 32, 160, 1, 1, 1),
    ("1x1-32to32x160", 32, 32, 160, 1, 1, 1),
    ("1x1-64to64x80", 64, 64, 80, 1, 1, 1),
    ("1x1-128to64x40", 128, 64, 40, 1, 1, 1),
    ("1x1-64to128x40", 64, 128, 40, 1, 1, 1),
    ("1x1-256x40", 256, 256, 40, 1, 1, 1),
    ("1x1-512to128x20", 512, 128, 20, 1, 1, 1),
    ("1x1-128to256x20", 128, 256, 20, 1, 1, 1),
    ("1x1-192x40", 192, 192, 40, 1, 1, 1),
    ("1x1-384to96x20", 384, 96, 20, 1, 1, 1),
]


def graphs(tmp, cin, cout, hw, k, stride, groups, rng):
    pad = k // 2
    w = (rng.standard_normal((cout, cin // groups, k, k)) * 0.1).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    x = nef.placeholder("x", (1, cin, hw, hw), nef.float32)
    y = nef.conv(x, nef.tensor(w), nef.tensor(b), strides=[stride] * 2, pads=[pad] * 4,
                 groups=groups)
    nef.build(os.path.join(tmp, "f.nef"), {"y": y})
    gf = nef.load(os.path.join(tmp, "f.nef"))
    gq = gf.quantize()
    xq = nef.placeholder("x", (1, cin, hw, hw), nef.uint8)
    wq = rng.integers(-127, 128, w.shape).astype(np.int8)
    yi = nef.conv_integer(xq, nef.tensor(wq), nef.tensor(np.array(9, np.uint8)),
                          nef.tensor(np.zeros(cout, np.int8)), strides=[stride] * 2,
                          pads=[pad] * 4, groups=groups)
    nef.build(os.path.join(tmp, "i.nef"), {"y": yi})
    gi = nef.load(os.path.join(tmp, "i.nef"))
    yd = nef.conv_dynamic_int8(x, nef.tensor(wq), nef.tensor(np.full(cout, 1e-3, np.float32)),
                               nef.tensor(b), strides=[stride] * 2, pads=[pad] * 4,
                               groups=groups)
    nef.build(os.path.join(tmp, "d.nef"), {"y": yd})
    gd = nef.load(os.path.join(tmp, "d.nef"))
    xv = rng.standard_normal((1, cin, hw, hw)).astype(np.float32)
    xb = rng.integers(0, 256, (1, cin, hw, hw)).astype(np.uint8)
    out = {"float": lambda: gf.run(x=xv), "conv_integer": lambda: gi.run(x=xb),
           "dynamic_int8": lambda: gd.run(x=xv)}
    return out, bool(gq.quantize_report["convs_quantized"])


MATMULS = [("mm-128x384to1536", 128, 384, 1536), ("mm-128x1536to384", 128, 1536, 384)]


def worker(shapes):
    """One NEF_CPU_TARGET's process for --targets: builds every case, then per line i on stdin
    runs case i's int8 graphs once each and prints their process CPU times (ms)."""
    import json
    import sys
    rng = np.random.default_rng(1)
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, *geo in SHAPES:
            if not shapes or any(s in name for s in shapes.split(",")):
                fns, _ = graphs(tmp, *geo, rng)
                cases.append({k: fns[k] for k in ("conv_integer", "dynamic_int8")})
        for name, m, k, n in MATMULS:
            x = rng.standard_normal((m, k)).astype(np.float32)
            w = rng.integers(-127, 128, (k, n)).astype(np.int8)
            xp = nef.placeholder("x", (m, k), nef.float32)
            y = nef.matmul_dynamic_int8(xp, nef.tensor(w), nef.tensor(np.full(n, 1e-3, np.float32)))
            nef.build(os.path.join(tmp, f"{name}.nef"), {"y": y})
            g = nef.load(os.path.join(tmp, f"{name}.nef"))
            cases.append({"matmul_dynamic_int8": (lambda g=g, x=x: g.run(x=x))})
        for c in cases:
            for f in c.values():
                f(), f()
        print("ready", flush=True)
        for line in sys.stdin:
            out = {}
            for k, f in cases[int(line)].items():
                t0 = time.process_time()
                f()
                out[k] = (time.process_time() - t0) * 1e3
            print(json.dumps(out), flush=True)


def compare_targets(targets, shapes, repeats, threads):
    import json
    import sys
    names = [n for n, *_ in SHAPES if not shapes or any(s in n for s in shapes.split(","))]
    names += [n for n, *_ in MATMULS]
    procs = {}
    for t in targets:
        env = dict(os.environ, NEF_CPU_TARGET=t)
        procs[t] = subprocess.Popen([sys.executable, __file__, "--worker", "--shapes", shapes,
                                     "--threads", str(threads)], env=env, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
        assert procs[t].stdout.readline().strip() == "ready"
    for i, name in enumerate(names):
        times = {t: {} for t in targets}
        for _ in range(repeats):
            for t, p in procs.items():
                p.stdin.write(f"{i}\n")
                p.stdin.flush()
                for k, v in json.loads(p.stdout.readline()).items():
                    times[t].setdefault(k, []).append(v)
        for k in times[targets[0]]:
            cells = "  ".join(f"{t} {statistics.median(times[t][k]):7.3f}" for t in targets)
            print(f"{name:24s} {k:20s} ms: {cells}", flush=True)
    for p in procs.values():
        p.stdin.close()
        p.wait()


def ddddocr(repeats):
    import importlib.util
    import sys
    import onnxruntime as ort
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
    from test_ddddocr_det import kept, scene
    spec = importlib.util.find_spec("ddddocr")
    model = os.path.join(list(spec.submodule_search_locations)[0], "common_det.onnx")
    g = nef.from_onnx(model)
    q = g.quantize()
    print("quantize report:", q.quantize_report)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    (name,) = g.outputs
    for seed in range(1, 6):
        x = scene(seed)
        f, i8 = g.run({"images": x})[name], q.run({"images": x})[name]
        sf = f[0, :, 4] * f[0, :, 5]
        si = i8[0, :, 4] * i8[0, :, 5]
        kf, ki = set(np.flatnonzero(sf > 0.1)), set(np.flatnonzero(si > 0.1))
        top = np.flatnonzero(sf > 0.1)
        box = np.abs(i8[0, top, :4] - f[0, top, :4]).max() if len(top) else 0.0
        print(f"scene {seed}: max |int8 - float| / max|float| {np.abs(i8 - f).max() / np.abs(f).max():.4f}; "
              f"score max abs diff {np.abs(si - sf).max():.4f}; anchors > 0.1: float {len(kf)}, "
              f"int8 {len(ki)}, common {len(kf & ki)}; box max abs diff on them {box:.3f} (raw head units)")
    x = scene(1)
    fns = {"nef-float": lambda: g.run({"images": x}), "nef-int8": lambda: q.run({"images": x}),
           "ort-float": lambda: sess.run(None, {"images": x})}
    for f in fns.values():
        f(), f()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.process_time()
            f()
            times[k].append(time.process_time() - t0)
    print("ddddocr det 416x416, 1 thread, CPU ms per image: " + "  ".join(
        f"{k} {statistics.median(v) * 1e3:.1f}" for k, v in times.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--shapes", default="")
    ap.add_argument("--ddddocr", action="store_true")
    ap.add_argument("--targets", default="")
    ap.add_argument("--worker", action="store_true")
    a = ap.parse_args()
    nef.config(devices=["cpu"], threads=a.threads)
    if a.worker:
        return worker(a.shapes)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if a.targets:
        compare_targets(a.targets.split(","), a.shapes, a.repeats, a.threads)
        print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
        return
    if a.ddddocr:
        ddddocr(a.repeats)
        print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
        return
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        for name, *geo in SHAPES:
            if a.shapes and not any(s in name for s in a.shapes.split(",")):
                continue
            fns, rewritten = graphs(tmp, *geo, rng)
            for f in fns.values():
                f(), f()
            times = {k: [] for k in fns}
            for _ in range(a.repeats):
                for k, f in fns.items():
                    t0 = time.process_time()
                    f()
                    times[k].append(time.process_time() - t0)
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            cells = "  ".join(f"{k} {v:7.3f} ms" for k, v in med.items())
            print(f"{name:24s} {cells}  conv_integer/float "
                  f"{med['conv_integer'] / med['float']:.2f}  dynamic/float "
                  f"{med['dynamic_int8'] / med['float']:.2f}  quantize rewrites it: {rewritten}",
                  flush=True)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
