"""float32 erf and exact gelu run a vectorized erf (max 1.17 ulp over all floats with FMA, 1.50
without) in the unary kernel, the fused elementwise interpreter and the matmul epilogue: checked
against math.erf in float64 over the whole range, special values, strided / broadcast / half-type
inputs (converted in chunks), and lengths around the chunk and vector sizes."""

import math

import numpy as np
import pytest
from conftest import assert_close, f64, random_array

import nef

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x):
    x = f64(x)
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _ulps(got, want):
    """|got - want| in float32 ulps at want (subnormal spacing below the smallest normal)."""
    want = f64(want)
    e = np.floor(np.log2(np.maximum(np.abs(want), np.finfo(np.float32).tiny)))
    return np.abs(f64(got) - want) / np.exp2(e - 23)


def test_erf_float32_within_two_ulp():
    x = np.concatenate([np.linspace(-10, 10, 400_001, dtype=np.float32),
                        np.float32([0.0, -0.0, 1e-38, -1e-38, 1e-45, 1e-20, 0.999999, 1.0,
                                    1.0000001, 3.9192059, 3.92, 4.0, 1e30, -1e30])])
    got = nef.erf(nef.tensor(x)).numpy()
    assert got.dtype == np.float32
    assert _ulps(got, _erf(f64(x))).max() <= 2.0
    assert np.signbit(got[400_002]) and got[400_002] == 0  # erf(-0) = -0


def test_erf_special_values():
    x = np.float32([np.nan, np.inf, -np.inf, 5.0, -5.0, 0.0])
    for out in (nef.erf(nef.tensor(x)).numpy(), nef.gelu(nef.tensor(x)).numpy()):
        assert np.isnan(out[0])
    e = nef.erf(nef.tensor(x)).numpy()
    np.testing.assert_array_equal(e[1:], [1, -1, 1, -1, 0])
    g = nef.gelu(nef.tensor(x)).numpy()
    assert g[1] == np.inf and g[5] == 0
    assert_close(g[3:5], _gelu(x[3:5]), "float32")


@pytest.mark.parametrize("n", [1, 15, 16, 17, 255, 256, 257, 1000])
def test_lengths_around_vector_and_chunk_sizes(n):
    rng = np.random.default_rng(n)
    x = rng.uniform(-5, 5, n).astype(np.float32)
    assert_close(nef.erf(nef.tensor(x)), _erf(f64(x)), "float32")
    assert_close(nef.gelu(nef.tensor(x)), _gelu(x), "float32", scale=2)
    # float16 rows take the converting chunked path
    h = x.astype(np.float16)
    assert_close(nef.gelu(nef.tensor(h)), _gelu(h), "float16")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_strided_and_broadcast_inputs(dtype):
    rng = np.random.default_rng(4)
    x = random_array(rng, (300, 37), dtype, -4, 4)
    t = nef.transpose(nef.tensor(x))                                  # column stride 37
    assert_close(nef.erf(t), _erf(f64(x).T), dtype)
    r = nef.slice(nef.tensor(x), [299, 0], [-1, 37], [-1, 1])         # reversed rows
    assert_close(nef.gelu(r), _gelu(x[::-1]), dtype, scale=2)
    row = random_array(rng, (1, 700), dtype, -4, 4)
    b = nef.broadcast_to(nef.tensor(row), (3, 700))                   # stride-0 rows
    assert_close(nef.gelu(b), _gelu(np.broadcast_to(f64(row), (3, 700))), dtype, scale=2)


def test_fused_and_epilogue_paths_agree_with_reference():
    rng = np.random.default_rng(8)
    x = rng.uniform(-3, 3, (64, 130)).astype(np.float32)
    w = (rng.standard_normal((130, 96)) / 11).astype(np.float32)
    bias = rng.uniform(-1, 1, 96).astype(np.float32)
    # an elementwise chain (fused_elementwise) with erf and gelu inside it
    fused = nef.gelu(nef.tensor(x) * 0.5) + nef.erf(nef.tensor(x) - 1.0)
    assert_close(fused, _gelu(f64(x) * 0.5) + _erf(f64(x) - 1.0), "float32", scale=4)
    # matmul + bias + gelu (matmul_epilogue)
    h = nef.gelu(nef.matmul(nef.tensor(x), nef.tensor(w)) + nef.tensor(bias))
    assert_close(h, _gelu(f64(x) @ f64(w) + f64(bias)), "float32", scale=16)
