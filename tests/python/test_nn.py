"""matmul, softmax, norms and attention against numpy float64 references."""

import math

import numpy as np
import pytest
from conftest import FLOATS, assert_close, cases, f64, random_array

import nef

MATMUL_SHAPES = [((7,), (7,)), ((3, 5), (5,)), ((5,), (5, 4)), ((1, 1), (1, 1)),
                 ((3, 37), (37, 129)), ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 6)),
                 ((0, 3), (3, 4)), ((3, 0), (0, 4)), ((7, 129), (129, 1))]


@pytest.mark.parametrize("dtype,shapes,seed", cases(FLOATS + ["int32", "int64"], MATMUL_SHAPES,
                                                    prefix="mm"))
def test_matmul(dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, shapes[0], dtype, -2, 2)
    b = random_array(rng, shapes[1], dtype, -2, 2)
    out = nef.matmul(nef.tensor(a), nef.tensor(b))
    ref = np.matmul(f64(a), f64(b))
    assert out.shape == ref.shape and str(out.dtype) == dtype
    k = shapes[0][-1]
    if dtype in FLOATS:
        assert_close(out, ref, dtype, scale=max(2.0, math.sqrt(k)))
    else:
        np.testing.assert_array_equal(out.numpy(), np.matmul(a, b))
    assert_close(nef.tensor(a) @ nef.tensor(b), ref, dtype, scale=max(2.0, math.sqrt(k)))


@pytest.mark.parametrize("dtype,seed", cases(["int8", "uint8", "int16", "uint16", "uint32",
                                              "uint64"], prefix="mmwrap"))
def test_integer_matmul_wraps_like_numpy(dtype, seed):
    # Full-range operands: products and sums wrap in the dtype, as numpy's integer matmul does.
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, (2, 5, 13), dtype=dtype, endpoint=True)
    b = rng.integers(info.min, info.max, (13, 7), dtype=dtype, endpoint=True)
    out = nef.matmul(nef.tensor(a), nef.tensor(b))
    assert out.dtype == dtype
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out.numpy(), np.matmul(a, b))


@pytest.mark.parametrize("threads", [1, 2])
def test_matmul_tile_shapes(threads):
    # Row counts that pick either AVX-512 tile (8 or 14 rows) or fall on the A-block edge
    # (blocks of 192 / 196 rows), K across the 256-deep panels, ragged N, epilogue bias.
    rng = np.random.default_rng(11)
    nef.config(threads=threads)
    try:
        for m in (8, 9, 16, 23, 33, 197, 400):
            for k, n in ((1, 33), (300, 65), (17, 1)):
                a = rng.standard_normal((m, k)).astype(np.float32)
                b = rng.standard_normal((k, n)).astype(np.float32)
                bias = rng.standard_normal(n).astype(np.float32)
                ref = f64(a) @ f64(b)
                got = nef.matmul(nef.tensor(a), nef.tensor(b)).numpy()
                np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * math.sqrt(k))
                got = (nef.matmul(nef.tensor(a), nef.tensor(b)) + nef.tensor(bias)).numpy()
                np.testing.assert_allclose(got, ref + f64(bias), rtol=1e-4,
                                           atol=1e-4 * math.sqrt(k))
    finally:
        nef.config(threads=0)


def test_matmul_errors():
    with pytest.raises(nef.NEFShapeError, match=r"\[matmul\]"):
        nef.matmul(nef.zeros((2, 3)), nef.zeros((4, 5)))
    with pytest.raises(nef.NEFTypeError):
        nef.matmul(nef.tensor([[True]]), nef.tensor([[False]]))


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


SM_CASES = [((7,), -1), ((3, 129), -1), ((3, 129), 0), ((4, 7, 37), 1), ((1,), 0), ((2, 1), -1)]


@pytest.mark.parametrize("dtype,sa,seed", cases(FLOATS, SM_CASES, prefix="sm"))
def test_softmax(dtype, sa, seed):
    shape, axis = sa
    x = random_array(np.random.default_rng(seed), shape, dtype, -10, 10)
    ref = _softmax(f64(x), axis)
    assert_close(nef.softmax(nef.tensor(x), dim=axis), ref, dtype, scale=4)
    assert_close(nef.softmax(nef.tensor(x), axis=axis), ref, dtype, scale=4)
    lsm = f64(x) - f64(x).max(axis=axis, keepdims=True)
    lsm = lsm - np.log(np.exp(lsm).sum(axis=axis, keepdims=True))
    assert_close(nef.log_softmax(nef.tensor(x), axis), lsm, dtype, scale=8)


def test_softmax_int_gives_float32_and_large_values():
    out = nef.softmax(nef.tensor([1, 2, 3]))
    assert out.dtype == nef.float32
    assert_close(out, _softmax(np.array([1.0, 2, 3]), -1), "float32")
    big = nef.softmax(nef.tensor([1000.0, 1000.0]))
    np.testing.assert_allclose(big.numpy(), [0.5, 0.5])
    with pytest.raises(nef.NEFShapeError):
        nef.softmax(nef.zeros((2, 3)), dim=2)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_rows_with_special_values_and_views(dtype):
    # The vectorized row path and its scalar fallback: NaN, +inf and all -inf rows next to
    # ordinary ones, rows longer than the vector width with ragged tails, and strided views.
    rng = np.random.default_rng(7)
    for n in (1, 15, 16, 17, 4099):
        x = rng.uniform(-30, 30, (6, n)).astype(dtype)
        x[1, n // 2] = np.nan
        x[2, n - 1] = np.inf
        x[3, :] = -np.inf
        x[4, 0] = -np.inf
        with np.errstate(invalid="ignore", over="ignore"):
            ref = _softmax(f64(x), -1)
            lsm = f64(x) - f64(x).max(axis=-1, keepdims=True)
            lsm = lsm - np.log(np.exp(lsm).sum(axis=-1, keepdims=True))
        got = nef.softmax(nef.tensor(x), -1).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, equal_nan=True)
        got = nef.log_softmax(nef.tensor(x), -1).numpy()
        np.testing.assert_allclose(got, lsm, rtol=1e-5, atol=1e-4, equal_nan=True)
    y = rng.uniform(-5, 5, (37, 70)).astype(dtype)
    t = nef.tensor(y).transpose(1, 0)  # rows strided in memory
    np.testing.assert_allclose(nef.softmax(t, -1).numpy(), _softmax(f64(y).T, -1), rtol=1e-5)
    np.testing.assert_allclose(nef.softmax(nef.tensor(y)[:, ::3], -1).numpy(),
                               _softmax(f64(y)[:, ::3], -1), rtol=1e-5)


def _layernorm(x, w, b, eps, axis):
    axes = tuple(range(axis % x.ndim, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    if w is not None:
        y = y * w
    if b is not None:
        y = y + b
    return y


LN_CASES = [((7,), -1), ((3, 129), -1), ((4, 7, 37), -1), ((4, 7, 37), 1), ((2, 1), -1)]


@pytest.mark.parametrize("dtype,sa,affine,seed",
                         cases(FLOATS, LN_CASES, ["none", "weight", "both", "bias"], prefix="ln"))
def test_layernorm(dtype, sa, affine, seed):
    shape, axis = sa
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, -3, 3)
    norm_shape = shape[axis % len(shape):]
    w = random_array(rng, norm_shape, dtype, 0.5, 1.5) if affine in ("weight", "both") else None
    b = random_array(rng, norm_shape, dtype, -1, 1) if affine in ("both", "bias") else None
    out = nef.layernorm(nef.tensor(x), None if w is None else nef.tensor(w),
                        None if b is None else nef.tensor(b), eps=1e-5, axis=axis)
    ref = _layernorm(f64(x), None if w is None else f64(w), None if b is None else f64(b),
                     1e-5, axis)
    assert_close(out, ref, dtype, scale=16)


@pytest.mark.parametrize("dtype,sa,weighted,seed",
                         cases(FLOATS, LN_CASES, [False, True], prefix="rms"))
def test_rmsnorm(dtype, sa, weighted, seed):
    shape, axis = sa
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, -3, 3)
    axes = tuple(range(axis % len(shape), len(shape)))
    w = random_array(rng, shape[axis % len(shape):], dtype, 0.5, 1.5) if weighted else None
    out = nef.rmsnorm(nef.tensor(x), None if w is None else nef.tensor(w), eps=1e-6, axis=axis)
    ref = f64(x) / np.sqrt((f64(x) ** 2).mean(axis=axes, keepdims=True) + 1e-6)
    if w is not None:
        ref = ref * f64(w)
    assert_close(out, ref, dtype, scale=16)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_norm_rows_long_offset_and_ragged(dtype):
    # Rows around a large offset (the variance must not cancel), lengths around the vector width
    # and a long ragged row, through the vectorized statistics.
    rng = np.random.default_rng(3)
    for n in (1, 7, 8, 9, 33, 4099):
        x = (1e4 + rng.standard_normal((5, n))).astype(dtype)
        w = rng.uniform(0.5, 1.5, n).astype(dtype)
        b = rng.uniform(-1, 1, n).astype(dtype)
        got = nef.layernorm(nef.tensor(x), nef.tensor(w), nef.tensor(b), eps=1e-5).numpy()
        ref = _layernorm(f64(x), f64(w), f64(b), 1e-5, -1)
        tol = 2e-3 if dtype == "float32" else 1e-9  # float32 input: 1e4 + noise keeps ~3 digits
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
        got = nef.rmsnorm(nef.tensor(x), nef.tensor(w), eps=1e-6).numpy()
        ref = f64(x) / np.sqrt((f64(x) ** 2).mean(axis=-1, keepdims=True) + 1e-6) * f64(w)
        np.testing.assert_allclose(got, ref, rtol=1e-5 if dtype == "float32" else 1e-12)


def _attention(q, k, v, mask=None, scale=None, causal=False):
    d = q.shape[-1]
    scale = 1 / math.sqrt(d) if scale is None else scale
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    lq, lk = q.shape[-2], k.shape[-2]
    allowed = np.ones(s.shape, bool)
    if mask is not None:
        if mask.dtype == bool:
            allowed = allowed & np.broadcast_to(mask, s.shape)
        else:
            s = s + mask
    if causal:
        i = np.arange(lq)[:, None]
        j = np.arange(lk)[None, :]
        allowed = allowed & (j <= i + lk - lq)
    s = np.where(allowed, s, -np.inf)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.where(allowed, np.exp(s - m), 0)
    denom = e.sum(axis=-1, keepdims=True)
    p = np.divide(e, denom, out=np.zeros_like(e), where=denom > 0)
    return np.matmul(p, v)


ATT_SHAPES = [((5, 8), (5, 8), (5, 8)), ((2, 7, 16), (2, 9, 16), (2, 9, 4)),
              ((2, 3, 1, 8), (1, 3, 6, 8), (2, 3, 6, 5)), ((4, 8), (1, 8), (1, 3))]


@pytest.mark.parametrize("dtype,shapes,variant,seed",
                         cases(FLOATS, ATT_SHAPES, ["plain", "causal", "scale", "boolmask",
                                                     "floatmask"], prefix="att"))
def test_attention(dtype, shapes, variant, seed):
    rng = np.random.default_rng(seed)
    q, k, v = (random_array(rng, s, dtype, -1, 1) for s in shapes)
    lq, lk = shapes[0][-2], shapes[1][-2]
    mask = None
    kwargs = {}
    if variant == "causal":
        kwargs["causal"] = True
    elif variant == "scale":
        kwargs["scale"] = 0.3
    elif variant == "boolmask":
        mask = rng.random((lq, lk)) < 0.7
        mask[0, :] = False  # a fully masked row outputs zeros
    elif variant == "floatmask":
        mask = random_array(rng, (lq, lk), dtype, -2, 0)
    out = nef.attention(nef.tensor(q), nef.tensor(k), nef.tensor(v),
                        mask=None if mask is None else nef.tensor(mask), **kwargs)
    ref = _attention(f64(q), f64(k), f64(v), None if mask is None else
                     (mask if mask.dtype == bool else f64(mask)),
                     kwargs.get("scale"), kwargs.get("causal", False))
    assert out.shape == ref.shape
    assert_close(out, ref, dtype, scale=16)
