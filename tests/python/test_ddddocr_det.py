"""A real published object detector: ddddocr's common_det.onnx (a YOLOX-style CNN: Focus/CSP
blocks of Conv, BatchNormalization folded by the exporter, SiLU, Resize, Concat, and a decoding
head over 3549 anchors; opset 11, input [1, 3, 416, 416]), installed by `make venv` with
--no-deps (only the model file is used).

Inputs are synthetic scenes of what the detector looks for (ddddocr uses it to find the
characters of click captchas): four dark 5x7-font characters at 48 x 56 px on a light noisy
background. NEF's raw head output [1, 3549, 6] (per anchor: box offsets and log sizes,
objectness, class score; values up to ~2) is compared with ONNX Runtime's within rtol 1e-4 and
atol 1e-4 x the largest value after 80+ convolutions, through nef.from_onnx and through
`nef import` + `nef run`; the anchors a user keeps (score above 0.1) are the same."""

import importlib.util
import os

import numpy as np
import pytest

import nef
from real_model_cli import find_cli, import_and_run
from test_ddddocr_ocr import GLYPHS

ort = pytest.importorskip("onnxruntime")
_spec = importlib.util.find_spec("ddddocr")
if _spec is None or not _spec.submodule_search_locations:
    pytest.skip("ddddocr (the packaged detector) is not installed", allow_module_level=True)
MODEL = os.path.join(list(_spec.submodule_search_locations)[0], "common_det.onnx")

RTOL, ATOL = 1e-4, 1e-4


def scene(seed: int) -> np.ndarray:
    """[1, 3, 416, 416] in [0, 255] as ddddocr feeds it (RGB planes, no normalization)."""
    rng = np.random.default_rng(seed)
    img = np.full((416, 416, 3), 230.0) + 10 * rng.standard_normal((416, 416, 3))
    chars = sorted(GLYPHS)
    for _ in range(4):
        glyph = np.array([[c == "1" for c in row] for row in GLYPHS[rng.choice(chars)]])
        block = np.kron(glyph, np.ones((8, 8), bool))
        y, x = rng.integers(0, 416 - block.shape[0]), rng.integers(0, 416 - block.shape[1])
        region = img[y:y + block.shape[0], x:x + block.shape[1]]
        region[block] = rng.uniform(0, 120, 3)
    return np.clip(img, 0, 255).astype(np.float32).transpose(2, 0, 1)[None].copy()


def kept(out, threshold=0.1, margin=1e-3):
    """Anchors scored clearly above / below the threshold (objectness x class score)."""
    score = out[0, :, 4] * out[0, :, 5]
    return set(np.flatnonzero(score > threshold + margin)), set(np.flatnonzero(score > threshold - margin))


@pytest.fixture(scope="module")
def engines():
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return nef.from_onnx(MODEL), ort.InferenceSession(MODEL, so,
                                                      providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("seed", [1, 2])
def test_matches_onnxruntime(engines, seed):
    g, sess = engines
    x = scene(seed)
    (name,) = g.outputs
    got = g.run({"images": x})[name]
    want = sess.run(None, {"images": x})[0]
    assert got.shape == want.shape == (1, 3549, 6) and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * np.abs(want).max())
    # The detections a user keeps are the same anchors (up to scores at the threshold).
    sure, maybe = kept(want)
    got_sure, got_maybe = kept(got)
    assert len(sure) >= 3  # the characters are found
    assert sure <= got_maybe and got_sure <= maybe


@pytest.mark.skipif(find_cli() is None, reason="the nef executable was not found (NEF_CLI)")
def test_nef_import_and_run_cli(engines, tmp_path):
    _, sess = engines
    x = scene(3)
    want = sess.run(None, {"images": x})[0]
    out = import_and_run(MODEL, {"images": x}, tmp_path)
    (got,) = out.values()
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * np.abs(want).max())


def test_wrong_input_shape_is_a_structured_error(engines):
    g, _ = engines
    with pytest.raises(nef.NEFError) as e:
        g.run({"images": np.zeros((1, 3, 416, 415), np.float32)})
    assert "images" in str(e.value)
