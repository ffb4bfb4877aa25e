"""Builds a small transformer-style MLP block as a .nef file, plus an input for it.

    python examples/build_mlp.py out/mlp.nef out/x.npy
    nef run out/mlp.nef --input x=out/x.npy --plan --timing

The graph: layernorm -> linear (64 -> 256) -> gelu(tanh) -> linear (256 -> 64) -> residual add
-> softmax over the features. Weights are constants inside the file; `x` is a placeholder.
"""
import sys

import numpy as np

import nef


def main(model_path: str, input_path: str) -> None:
    rng = np.random.default_rng(0)
    d, hidden, batch = 64, 256, 8
    w1 = (rng.standard_normal((d, hidden)) / np.sqrt(d)).astype(np.float32)
    b1 = np.zeros(hidden, np.float32) + 0.01
    w2 = (rng.standard_normal((hidden, d)) / np.sqrt(hidden)).astype(np.float32)
    b2 = np.zeros(d, np.float32) - 0.01
    gamma = np.ones(d, np.float32)
    beta = np.zeros(d, np.float32)

    x = nef.placeholder("x", (batch, d), nef.float32)
    h = nef.layernorm(x, nef.tensor(gamma), nef.tensor(beta), eps=1e-5)
    h = nef.gelu(h @ nef.tensor(w1) + nef.tensor(b1), approximate="tanh")
    y = x + (h @ nef.tensor(w2) + nef.tensor(b2))
    probs = nef.softmax(y, dim=-1)
    probs.build(model_path)

    xv = rng.standard_normal((batch, d)).astype(np.float32)
    np.save(input_path, xv)

    # Check the file against numpy right away, so the demo proves the numbers too.
    g = nef.load(model_path)
    got = g.run({"x": xv})["output"]
    x64 = xv.astype(np.float64)
    mu = x64.mean(-1, keepdims=True)
    var = x64.var(-1, keepdims=True)
    hn = (x64 - mu) / np.sqrt(var + 1e-5) * gamma + beta
    a = hn @ w1 + b1
    a = 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a * a * a)))
    yy = x64 + a @ w2 + b2
    e = np.exp(yy - yy.max(-1, keepdims=True))
    ref = e / e.sum(-1, keepdims=True)
    err = float(np.abs(got - ref).max())
    print(f"built {model_path}: inputs {g.inputs}, outputs {g.outputs}; max |nef - numpy64| = {err:.2e}")
    if err > 1e-5:
        raise SystemExit("mismatch against the numpy reference")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: build_mlp.py MODEL.nef INPUT.npy")
    main(sys.argv[1], sys.argv[2])
