"""Fixtures for the Go tests, written by NEF's Python API into OUT_DIR (run with the .venv python):

  mlp.nef + inputs        a graph with two named inputs (float32, int64) and three outputs, built
                          in Python; the expected outputs from numpy in float64 and from Python's
                          nef.load(...).run
  minilm.onnx + inputs    all-MiniLM-L6-v2 (the packaged weights, nothing downloaded) exported
                          with symbolic batch x sequence; outputs of Python's nef.from_onnx and of
                          ONNX Runtime, for two bindings of the dims
  minilm.nef              the same model built by nef.models.minilm.build_nef, with its output
  print/*.npy, print.json arrays and numpy's str() of each, for Array.String

usage: fixtures.py OUT_DIR
"""

import json
import sys
from pathlib import Path

import numpy as np

import nef

# The sentences of tests/python/test_minilm.py: padding inside the batch, a one-word sentence.
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome, and the soundtrack by the 1980s band was even better than "
    "I had hoped it would be after reading three reviews.",
    "Hello",
    "The stock market fell sharply on Tuesday.",
]


def mlp(out: Path, rng):
    w1 = rng.standard_normal((5, 7)).astype(np.float32)
    b1 = rng.standard_normal(7).astype(np.float32)
    w2 = rng.standard_normal((7, 4)).astype(np.float32)
    b2 = rng.standard_normal(4).astype(np.float32)
    x = nef.placeholder("x", (3, 5), nef.float32)
    idx = nef.placeholder("idx", (2,), nef.int64)
    hidden = nef.relu(x @ nef.tensor(w1) + nef.tensor(b1))
    probs = nef.softmax(hidden @ nef.tensor(w2) + nef.tensor(b2), dim=-1)
    picked = nef.gather(probs, idx, axis=0)
    nef.build(str(out / "mlp.nef"), {"probs": probs, "hidden": hidden, "picked": picked})

    xv = rng.standard_normal((3, 5)).astype(np.float32)
    iv = np.array([2, -3], np.int64)  # a negative index wraps
    np.save(out / "mlp_x.npy", xv)
    np.save(out / "mlp_idx.npy", iv)
    h64 = np.maximum(xv.astype(np.float64) @ w1 + b1, 0)
    z = h64 @ w2 + b2
    p64 = np.exp(z - z.max(1, keepdims=True))
    p64 /= p64.sum(1, keepdims=True)
    np.save(out / "mlp_probs_ref.npy", p64)
    np.save(out / "mlp_hidden_ref.npy", h64)
    got = nef.load(str(out / "mlp.nef")).run({"x": xv, "idx": iv})
    for name, v in got.items():
        np.save(out / f"mlp_{name}_py.npy", np.asarray(v))


def minilm(out: Path):
    from nef.models import minilm as m

    model = m.MiniLM()
    onnx_path = out / "minilm.onnx"
    model.build_onnx(onnx_path)  # symbolic batch x sequence
    g = nef.from_onnx(str(onnx_path))
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    for suffix, (ids, mask) in {"": model.tokenize(SENTENCES),
                                "1": model.tokenize(SENTENCES[1:2], seq=20)}.items():
        np.save(out / f"minilm_ids{suffix}.npy", ids)
        np.save(out / f"minilm_mask{suffix}.npy", mask)
        py = np.asarray(g.run({"input_ids": ids, "attention_mask": mask})["embeddings"])
        np.save(out / f"minilm_py_onnx{suffix}.npy", py)
        ort_out = sess.run(["embeddings"], {"input_ids": ids, "attention_mask": mask})[0]
        np.save(out / f"minilm_ort{suffix}.npy", ort_out)
    ids, mask = model.tokenize(SENTENCES)
    model.build_nef(out / "minilm.nef", batch=ids.shape[0], seq=ids.shape[1])
    py = nef.load(str(out / "minilm.nef")).run({"input_ids": ids, "attention_mask": mask})
    np.save(out / "minilm_py_nef.npy", np.asarray(py["embeddings"]))


def printing(out: Path, rng):
    d = out / "print"
    d.mkdir()
    arrays = [
        np.array([[19, 22], [43, 50]], np.float32),
        np.array([0.1, 0.25, -3], np.float32),
        np.array([1e-5, 1.5e-5, 1], np.float32),
        np.array([1e-5, 1.12345e-5], np.float32),
        np.array([np.nan, 1, -np.inf], np.float32),
        np.array([np.nan, 1e-9]),
        np.array([np.inf]),
        np.array([1e9, 2]),
        np.array([1e100, 1]),
        np.array([1e20, -1e-20]),
        np.array([0.0, -0.0]),
        np.array([0.1 + 0.2, 3.14159265358979]),
        np.array([123456789.0], np.float32),
        np.arange(30, dtype=np.float32) / 7,
        rng.standard_normal((4, 9)).astype(np.float32),
        rng.standard_normal((3, 2, 4)),
        np.ones((1100, 2), np.float32),
        np.arange(2000, dtype=np.int64),
        np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 7,
        np.array([-128, 0, 127], np.int8),
        np.array([0, 255], np.uint8),
        np.array([True, False]),
        np.array([[True, True]]),
        np.array([1 / 3, 2, 65504], np.float16),
        np.array([1 / 3, np.inf], np.float16),
        np.zeros((2, 0), np.float32),
        np.array(3.5, np.float32),
        np.array(19.0, np.float32),
        np.array(1e20),
        np.array(-0.0),
        np.array(1e-5),
        np.array(True),
        np.array(-7, np.int64),
        rng.standard_normal((2, 3, 2, 2)).astype(np.float32) * 1000,
        np.linspace(0, 1, 40).reshape(5, 8),
    ]
    # Rows whose printed width falls around the 75-column line limit, at depths 1 to 3.
    for width in range(1, 9):
        per_line = 75 // (width + 1)
        for n in range(per_line - 1, per_line + 3):
            row = np.full(n, 10 ** (width - 1), np.int64)
            arrays += [row, row.reshape(1, n), row.reshape(1, 1, n)]
    cases = []
    with np.errstate(over="ignore"):
        for i, a in enumerate(arrays):
            np.save(d / f"{i}.npy", a)
            cases.append({"file": f"{i}.npy", "str": str(a)})
    (out / "print.json").write_text(json.dumps(cases, indent=1))


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng()
    mlp(out, rng)
    printing(out, rng)
    minilm(out)


if __name__ == "__main__":
    main()
