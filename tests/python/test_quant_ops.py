"""qmatmul and qgather against the gguf package's dequantization (an independent reader of the
same block formats), on every format and on each instruction-set variant (NEF_CPU_TARGET)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nef

gguf = pytest.importorskip("gguf")
T = gguf.GGMLQuantizationType
FORMATS = {"q4_0": T.Q4_0, "q4_1": T.Q4_1, "q8_0": T.Q8_0, "q4_k": T.Q4_K, "q5_k": T.Q5_K,
           "q6_k": T.Q6_K}
BLOCK = {"q4_0": (32, 18), "q4_1": (32, 20), "q8_0": (32, 34), "q4_k": (256, 144),
         "q5_k": (256, 176), "q6_k": (256, 210)}


def random_weights(fmt, n, k, rng):
    """uint8 [n, row_bytes]: gguf's quantizer where it has one, else random blocks whose fp16
    scales are set to small finite values (every other byte is a valid code)."""
    if fmt in ("q4_0", "q4_1", "q8_0"):
        return gguf.quants.quantize(rng.standard_normal((n, k)).astype(np.float32), FORMATS[fmt])
    elems, nbytes = BLOCK[fmt]
    w = rng.integers(0, 256, size=(n, k // elems, nbytes), dtype=np.uint8)
    scales = lambda size: (rng.uniform(0.002, 0.02, size)).astype(np.float16).view(np.uint8)
    if fmt == "q6_k":
        w[:, :, 208:210] = scales((n, k // elems)).reshape(n, k // elems, 2)
    else:  # d and dmin lead the block
        w[:, :, 0:4] = scales((n, k // elems, 2)).reshape(n, k // elems, 4)
    return w.reshape(n, -1)


def quantized_activations(x):
    """x as qmatmul sees it (ggml's Q8_1 rows): per 32 values, d = max|x| / 127,
    q = round-half-even(x * (1 / d)) in float32 arithmetic, and d kept as a half (docs/llm.md)."""
    xb = x.astype(np.float32).reshape(x.shape[0], -1, 32)
    d = (np.abs(xb).max(-1, keepdims=True) / np.float32(127)).astype(np.float32)
    inv = np.where(d > 0, np.float32(1) / np.where(d > 0, d, 1), 0).astype(np.float32)
    q = np.rint(xb * inv)
    d16 = d.astype(np.float16).astype(np.float64)
    return (q.astype(np.float64) * d16).reshape(x.shape)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("m,n", [(1, 37), (3, 64), (9, 5), (0, 4)])
def test_qmatmul_matches_dequantized_reference(fmt, m, n):
    rng = np.random.default_rng()
    k = 512 if BLOCK[fmt][0] == 256 else 96
    w = random_weights(fmt, n, k, rng)
    x = rng.standard_normal((m, k)).astype(np.float32)
    got = nef.qmatmul(x, w, fmt).numpy()
    wd = gguf.quants.dequantize(w, FORMATS[fmt]).astype(np.float64)
    assert got.shape == (m, n) and got.dtype == np.float32
    # Exact up to float rounding against the same int8 activations...
    want = quantized_activations(x) @ wd.T if m else np.zeros((0, n))
    scale = np.abs(quantized_activations(x)) @ np.abs(wd).T if m else 0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.max(scale, initial=1) + 1e-6)
    # ... and within the int8 activation error of the float product.
    if m:
        err = np.abs(got - x.astype(np.float64) @ wd.T).max()
        assert err <= 0.01 * np.abs(x).max() * np.abs(wd).sum(1).max()


def test_qmatmul_batched_strided_and_half_inputs():
    rng = np.random.default_rng()
    w = random_weights("q4_1", 24, 64, rng)
    wd = gguf.quants.dequantize(w, T.Q4_1).astype(np.float64)
    x = rng.standard_normal((2, 64, 5)).astype(np.float32)
    xt = np.swapaxes(x, 1, 2)  # [2, 5, 64] with a non-unit last stride
    got = nef.qmatmul(nef.asarray(x).transpose((0, 2, 1)), w, "q4_1").numpy()
    want = quantized_activations(xt.reshape(10, 64)).reshape(2, 5, 64) @ wd.T
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    got16 = nef.qmatmul(xt.astype(np.float16), w, "q4_1").numpy()
    want16 = quantized_activations(xt.astype(np.float16).astype(np.float32).reshape(10, 64))
    np.testing.assert_allclose(got16, want16.reshape(2, 5, 64) @ wd.T, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_qgather_equals_gguf_dequantize(fmt):
    rng = np.random.default_rng()
    k = 256 if BLOCK[fmt][0] == 256 else 64
    w = random_weights(fmt, 50, k, rng)
    ids = np.array([[3, 0, 49], [-1, 7, 7]], np.int32)
    got = nef.qgather(w, ids, fmt).numpy()
    wd = gguf.quants.dequantize(w, FORMATS[fmt])
    assert got.shape == (2, 3, k)
    np.testing.assert_allclose(got, wd[ids], rtol=1e-6, atol=1e-7)


def test_quant_ops_reject_bad_arguments():
    w = np.zeros((4, 40), np.uint8)  # q4_1: two blocks per row, K = 64
    x = np.zeros((2, 64), np.float32)
    cases = [
        (lambda: nef.qmatmul(x, w, "q3_k"), nef.NEFValidationError, "unknown format"),
        (lambda: nef.qmatmul(x, w, "q4_0"), nef.NEFShapeError, "whole q4_0 blocks"),
        (lambda: nef.qmatmul(np.zeros((2, 32), np.float32), w, "q4_1"), nef.NEFShapeError,
         r"x \[..., 64\]"),
        (lambda: nef.qmatmul(x, w.astype(np.int8), "q4_1"), nef.NEFTypeError, "uint8"),
        (lambda: nef.qmatmul(x.astype(np.int32), w, "q4_1"), nef.NEFTypeError, "float"),
        (lambda: nef.qgather(w, np.array([4]), "q4_1"), nef.NEFValidationError, "out of range"),
        (lambda: nef.qgather(w, np.array([-5]), "q4_1"), nef.NEFValidationError, "out of range"),
        (lambda: nef.qgather(w, np.array([1.0]), "q4_1"), nef.NEFTypeError, "integers"),
    ]
    for fn, err, msg in cases:
        with pytest.raises(err, match=msg):
            fn().numpy()


@pytest.mark.parametrize("target", ["avx2vnni", "avx2", "generic"])
def test_every_instruction_set_variant_gives_the_same_result(target, tmp_path):
    """The default variant (AVX-512 VNNI here) and a forced lower one agree up to float
    summation order (the integer dot products are exact in each)."""
    code = (
        "import numpy as np, nef, sys\n"
        "rng = np.random.default_rng(7)\n"
        "w = rng.integers(0, 256, size=(40, 3 * 210), dtype=np.uint8)\n"
        "w.reshape(40, 3, 210)[:, :, 208:210] = np.array([0.01], np.float16).view(np.uint8)\n"
        "x = rng.standard_normal((5, 768)).astype(np.float32)\n"
        "np.save(sys.argv[1], nef.qmatmul(x, w, 'q6_k').numpy())\n")
    outs = []
    for i, env_target in enumerate([None, target]):
        env = dict(os.environ)
        env.pop("NEF_CPU_TARGET", None)
        if env_target:
            env["NEF_CPU_TARGET"] = env_target
        path = tmp_path / f"out{i}.npy"
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=env)
        outs.append(np.load(path))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-5 * np.abs(outs[0]).max())


def test_qmatmul_propagates_nan_and_inf():
    rng = np.random.default_rng()
    w = random_weights("q4_1", 6, 64, rng)
    x = rng.standard_normal((3, 64)).astype(np.float32)
    x[0, 5] = np.nan
    x[1, 40] = np.inf
    for fmt, ww in (("q4_1", w), ("q6_k", random_weights("q6_k", 6, 256, rng))):
        xx = x if fmt == "q4_1" else np.tile(x, (1, 4))
        got = nef.qmatmul(xx, ww, fmt).numpy()
        assert np.isnan(got[0]).all() and np.isnan(got[1]).all()
        assert np.isfinite(got[2]).all()


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("m,n", [(32, 7), (37, 130), (300, 129)])
def test_qmatmul_many_rows_runs_on_float_panels(fmt, m, n):
    """From 32 activation rows on, weight panels are dequantized in cache and multiplied in
    float (no activation rounding): float32 accuracy against the dequantized weights."""
    rng = np.random.default_rng()
    k = 512 if BLOCK[fmt][0] == 256 else 96
    w = random_weights(fmt, n, k, rng)
    x = rng.standard_normal((m, k)).astype(np.float32)
    wd = gguf.quants.dequantize(w, FORMATS[fmt]).astype(np.float64)
    want = x.astype(np.float64) @ wd.T
    scale = np.abs(x).astype(np.float64) @ np.abs(wd).T
    got = nef.qmatmul(x, w, fmt).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale.max())
    xs = np.asfortranarray(x)  # strided input, and float16
    np.testing.assert_allclose(nef.qmatmul(xs, w, fmt).numpy(), want, rtol=0,
                               atol=1e-5 * scale.max())
    x16 = x.astype(np.float16)
    want16 = x16.astype(np.float64) @ wd.T
    np.testing.assert_allclose(nef.qmatmul(x16, w, fmt).numpy(), want16, rtol=0,
                               atol=1e-5 * scale.max())


GEMV_CODE = (
    "import numpy as np, nef, sys, gguf\n"
    "T = gguf.GGMLQuantizationType\n"
    "rng = np.random.default_rng(int(sys.argv[2]))\n"
    "nef.config(threads=int(sys.argv[3]))\n"
    "outs = {}\n"
    "for fmt, t in (('q4_0', T.Q4_0), ('q4_1', T.Q4_1), ('q8_0', T.Q8_0)):\n"
    "    for k in (32, 96, 544, 608, 1056, 1536):\n"
    "        w = gguf.quants.quantize(rng.standard_normal((131, k)).astype(np.float32), t)\n"
    "        x = rng.standard_normal((1, k)).astype(np.float32)\n"
    "        outs[f'{fmt}_{k}'] = nef.qmatmul(x, w, fmt).numpy()\n"
    "np.savez(sys.argv[1], **outs)\n")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("target", [None, "avx2vnni", "avx2", "generic"])
def test_qmatmul_one_row_every_variant(target, threads, tmp_path):
    """The decoding product (one activation row; AVX-512 has its own path for the 32-element
    formats) against float64 on block counts around its 16-block groups and 2-block pairs
    (1, 3, 17, 19, 33, 48 blocks), 131 weight rows, each variant and 1 and 2 threads."""
    env = dict(os.environ)
    env.pop("NEF_CPU_TARGET", None)
    if target:
        env["NEF_CPU_TARGET"] = target
    seed = int(np.random.default_rng().integers(1 << 30))
    path = tmp_path / "out.npz"
    subprocess.run([sys.executable, "-c", GEMV_CODE, str(path), str(seed), str(threads)],
                   check=True, env=env)
    got = np.load(path)
    rng = np.random.default_rng(seed)  # the same draws as the child's
    for fmt in ("q4_0", "q4_1", "q8_0"):
        for k in (32, 96, 544, 608, 1056, 1536):
            w = gguf.quants.quantize(rng.standard_normal((131, k)).astype(np.float32),
                                     FORMATS[fmt])
            x = rng.standard_normal((1, k)).astype(np.float32)
            wd = gguf.quants.dequantize(w, FORMATS[fmt]).astype(np.float64)
            xq = quantized_activations(x)
            want = xq @ wd.T
            scale = np.abs(xq) @ np.abs(wd).T
            np.testing.assert_allclose(got[f"{fmt}_{k}"], want, rtol=0,
                                       atol=1e-5 * scale.max() + 1e-6, err_msg=f"{fmt} K={k}")


def test_qmatmul_one_row_propagates_nan_and_inf():
    rng = np.random.default_rng()
    for fmt in ("q4_0", "q4_1", "q8_0"):
        w = random_weights(fmt, 9, 608, rng)
        for col in (3, 600):  # in a 16-block group, and in the row's last (odd) block
            for bad in (np.nan, np.inf):
                x = rng.standard_normal((1, 608)).astype(np.float32)
                x[0, col] = bad
                assert np.isnan(nef.qmatmul(x, w, fmt).numpy()).all(), (fmt, col, bad)
