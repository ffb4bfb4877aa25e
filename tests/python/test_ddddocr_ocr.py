"""A real published OCR recognizer with a bidirectional LSTM: ddddocr's common.onnx (a CNN over a
grayscale text line [1, 1, 64, W], then a BiLSTM of hidden size 512 and a per-column classifier
over 8210 characters, opset 12), installed by `make venv` with --no-deps (only the model file
is used; ddddocr itself is never imported).

The input is a text line drawn from a 5x7 bitmap font at the model's height (what ddddocr feeds:
grayscale / 255), with noise. NEF's logits are compared with ONNX Runtime's within rtol 1e-4 and
atol 2e-4 (logits up to ~20 after the LSTM and the classifier's 512 x 2 inputs), and the
greedy CTC read-out (argmax per column) must be the same where ONNX Runtime's best class leads
the runner-up by more than 1e-3."""

import importlib.util
import os

import numpy as np
import pytest

import nef
from real_model_cli import find_cli, import_and_run

ort = pytest.importorskip("onnxruntime")
_spec = importlib.util.find_spec("ddddocr")
if _spec is None or not _spec.submodule_search_locations:
    pytest.skip("ddddocr (the packaged OCR model) is not installed", allow_module_level=True)
MODEL = os.path.join(list(_spec.submodule_search_locations)[0], "common.onnx")

RTOL, ATOL = 1e-4, 2e-4

GLYPHS = {  # 5 x 7, one string per row
    "3": ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    "7": ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    "A": ["01110", "10001", "10001", "11111", "10001", "10001", "10001"],
    "K": ["10001", "10010", "10100", "11000", "10100", "10010", "10001"],
    "8": ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    "X": ["10001", "10001", "01010", "00100", "01010", "10001", "10001"],
}


def text_line(text: str, seed: int) -> np.ndarray:
    """[1, 1, 64, W]: dark glyphs on a light, noisy background, 8 px per font pixel."""
    rng = np.random.default_rng(seed)
    cell = 8
    width = (len(text) * 6 + 2) * cell
    img = np.full((64, width), 0.9)
    for i, ch in enumerate(text):
        g = np.array([[c == "1" for c in row] for row in GLYPHS[ch]], float)
        block = np.kron(g, np.ones((cell, cell)))
        y0, x0 = 4, (1 + 6 * i) * cell
        img[y0:y0 + block.shape[0], x0:x0 + block.shape[1]] -= 0.8 * block
    img += 0.05 * rng.standard_normal(img.shape)
    return np.clip(img, 0, 1).astype(np.float32)[None, None]


@pytest.fixture(scope="module")
def engines():
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3  # the model declares its output [1, -1]: ORT warns on every run
    return nef.from_onnx(MODEL), ort.InferenceSession(MODEL, so,
                                                      providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("text,seed", [("3A7K", 1), ("8X3", 2), ("K7A8X3", 3)])
def test_matches_onnxruntime(engines, text, seed):
    g, sess = engines
    x = text_line(text, seed)
    (name,) = g.outputs
    got = g.run({"input1": x})[name]
    want = sess.run(None, {"input1": x})[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    assert got.shape[1:] == (1, 8210)  # [columns, batch, classes]
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    top2 = np.sort(want[:, 0], axis=-1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-3
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(got[clear, 0].argmax(-1), want[clear, 0].argmax(-1))


@pytest.mark.skipif(find_cli() is None, reason="the nef executable was not found (NEF_CLI)")
def test_nef_import_and_run_cli(engines, tmp_path):
    """The symbolic image width bound at import (--dim image_width=...)."""
    _, sess = engines
    x = text_line("A8K", 4)
    want = sess.run(None, {"input1": x})[0]
    out = import_and_run(MODEL, {"input1": x}, tmp_path, dims={"image_width": x.shape[3]})
    (got,) = out.values()
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
