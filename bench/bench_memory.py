"""Planned peak memory vs the naive sum of intermediates, for an MLP and a transformer encoder
block, as the compiled plan reports it (Graph.memory). No timing: the numbers are exact.

    .venv/bin/python bench/bench_memory.py
"""
import os
import sys
import tempfile

import numpy as np

import nef


def mlp(batch=256, d=1024, hidden=4096):
    rng = np.random.default_rng(0)
    x = nef.placeholder("x", (batch, d), nef.float32)
    w1 = nef.tensor(rng.standard_normal((d, hidden), np.float32) * 0.02)
    w2 = nef.tensor(rng.standard_normal((hidden, d), np.float32) * 0.02)
    b1 = nef.tensor(np.zeros(hidden, np.float32))
    b2 = nef.tensor(np.zeros(d, np.float32))
    h = nef.gelu(x @ w1 + b1, approximate="tanh")
    return h @ w2 + b2


def encoder_block(seq=128, d=384, heads=6, hidden=1536):
    rng = np.random.default_rng(1)
    w = lambda *s: nef.tensor(rng.standard_normal(s, np.float32) * 0.02)  # noqa: E731
    x = nef.placeholder("x", (seq, d), nef.float32)
    hd = d // heads
    q = (x @ w(d, d) + w(d)).reshape(seq, heads, hd).transpose(1, 0, 2)
    k = (x @ w(d, d) + w(d)).reshape(seq, heads, hd).transpose(1, 0, 2)
    v = (x @ w(d, d) + w(d)).reshape(seq, heads, hd).transpose(1, 0, 2)
    a = nef.softmax(q @ k.transpose(0, 2, 1) * (1.0 / np.sqrt(hd)), dim=-1) @ v
    a = a.transpose(1, 0, 2).reshape(seq, d) @ w(d, d) + w(d)
    x = nef.layernorm(x + a, w(d), w(d))
    f = nef.gelu(x @ w(d, hidden) + w(hidden)) @ w(hidden, d) + w(d)
    return nef.layernorm(x + f, w(d), w(d))


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("MLP 256x1024 -> 4096 (gelu tanh) -> 1024", mlp),
                           ("transformer encoder block, seq 128, d 384, 6 heads, ffn 1536",
                            encoder_block)):
            path = os.path.join(tmp, "g.nef")
            make().build(path)
            g = nef.load(path)
            m = g.memory
            kernels = len(g.plan()["kernels"])
            rows.append((name, kernels, m["planned_peak_bytes"], m["naive_bytes"]))
    print("| graph | kernels | planned peak | naive sum | peak / naive |")
    print("|---|---|---|---|---|")
    for name, k, peak, naive in rows:
        print(f"| {name} | {k} | {peak / 2**20:.2f} MiB | {naive / 2**20:.2f} MiB | "
              f"{peak / naive:.0%} |")


if __name__ == "__main__":
    sys.exit(main())
