"""Reductions against numpy float64 references."""

import warnings

import numpy as np
import pytest
from conftest import ALL, FLOATS, INTS, TOL, cases, f64, random_array

import nef

# (shape, axis) pairs: all axes, single, negative, tuples, zero-size extents kept elsewhere.
AXES = [((7,), None), ((), None), ((3, 129), None), ((3, 129), 0), ((3, 129), -1),
        ((4, 7, 37), (0, 2)), ((4, 7, 37), 1), ((2, 0, 5), 2), ((2, 0, 5), (0, 1)),
        ((1, 1, 1), (0, 1, 2)), ((5, 1, 6), (2, 0))]


def _sum_dtype(dtype):
    # numpy's accumulators: unsigned ints sum in uint64, signed ints and bool in int64.
    if dtype in FLOATS:
        return dtype
    return "uint64" if dtype.startswith("uint") else "int64"


@pytest.mark.parametrize("name,dtype,sa,keepdims,seed",
                         cases(["sum", "mean", "prod", "max", "min"], ALL, AXES, [False, True],
                               prefix="red"))
def test_reduce(name, dtype, sa, keepdims, seed):
    shape, axis = sa
    rng = np.random.default_rng(seed)
    if name == "prod":
        if dtype in FLOATS:
            x = random_array(rng, shape, dtype, 0.5, 1.5)
        elif dtype.startswith("uint") or dtype == "bool":
            x = random_array(rng, shape, dtype, 0, 1)
        else:  # +-1 only: products of many ints overflow otherwise
            x = (rng.integers(0, 2, size=shape) * 2 - 1).astype(dtype)
    else:
        x = random_array(rng, shape, dtype, 0 if dtype.startswith("uint") else -20, 20)
    t = nef.tensor(x)
    empty_extent = x.size == 0 and (axis is None or any(
        shape[a] == 0 for a in ((axis,) if isinstance(axis, int) else axis)))
    if name in ("max", "min") and empty_extent:
        with pytest.raises(nef.NEFShapeError):
            getattr(nef, name)(t, axis=axis, keepdims=keepdims)
        return
    out = getattr(nef, name)(t, axis=axis, keepdims=keepdims)
    method = getattr(t, name)(axis, keepdims)
    ref_fn = {"sum": np.sum, "mean": np.mean, "prod": np.prod, "max": np.max, "min": np.min}[name]
    ax = axis if not isinstance(axis, list) else tuple(axis)
    if name in ("max", "min"):
        want_dtype = dtype
        ref = ref_fn(x, axis=ax, keepdims=keepdims)
    elif name == "mean":
        want_dtype = dtype if dtype in FLOATS else "float32"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # mean of an empty extent is NaN
            ref = np.mean(f64(x), axis=ax, keepdims=keepdims)
    else:
        want_dtype = _sum_dtype(dtype)
        ref = ref_fn(f64(x) if dtype in FLOATS else x.astype(np.int64), axis=ax,
                     keepdims=keepdims)
    assert str(out.dtype) == want_dtype
    assert out.shape == np.shape(ref)
    if want_dtype in FLOATS:
        # Accumulation error grows with the reduced extent: bound it by eps * count * max|x|
        # (float32 accumulation for half types), plus rounding of the stored result.
        count = x.size // max(1, out.size) if out.size else 1
        eps = 2.3e-16 if dtype == "float64" else 1.2e-7
        maxabs = float(np.max(np.abs(f64(x)))) if x.size else 0.0
        acc = eps * count * maxabs * 4
        if name == "mean":
            acc /= max(1, count)
        if name == "prod":
            acc = eps * count * 4 * np.max(np.abs(ref)) if np.size(ref) else 0
        rtol, atol = TOL[want_dtype]
        for got in (out, method):
            assert str(got.dtype) == want_dtype
            np.testing.assert_allclose(f64(got.numpy()), f64(ref), rtol=2 * rtol,
                                       atol=atol + acc, equal_nan=True)
    else:
        np.testing.assert_array_equal(out.numpy(), np.asarray(ref).astype(want_dtype))


@pytest.mark.parametrize("name,dtype,sa,keepdims,seed",
                         cases(["argmax", "argmin"], FLOATS + INTS + ["bool"],
                               [((7,), None), ((3, 129), None), ((3, 129), 0), ((3, 129), -1),
                                ((4, 7, 37), 1), ((1,), 0), ((5, 1, 6), None)],
                               [False, True], prefix="arg"))
def test_argreduce(name, dtype, sa, keepdims, seed):
    shape, axis = sa
    rng = np.random.default_rng(seed)
    x = random_array(rng, shape, dtype, 0, 5)  # small range: ties test "first occurrence"
    out = getattr(nef, name)(nef.tensor(x), axis=axis, keepdims=keepdims)
    ref = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    assert str(out.dtype) == "int64"
    assert out.shape == np.shape(ref)
    np.testing.assert_array_equal(out.numpy(), ref)


def test_argmax_nan_and_empty():
    x = nef.tensor([1.0, np.nan, 5.0, np.nan])
    assert nef.argmax(x).item() == 1
    assert nef.argmin(x).item() == 1
    with pytest.raises(nef.NEFShapeError):
        nef.argmax(nef.zeros((0, 3)))
    with pytest.raises(nef.NEFShapeError):
        nef.argmax(nef.zeros((3, 4)), axis=2)


def test_reduction_axis_errors():
    x = nef.zeros((3, 4))
    with pytest.raises(nef.NEFShapeError, match=r"\[sum\]"):
        nef.sum(x, axis=2)
    with pytest.raises(nef.NEFShapeError):
        nef.mean(x, axis=-3)


def test_max_nan_propagates():
    x = nef.tensor(np.array([[1.0, np.nan], [2.0, 3.0]], np.float32))
    out = nef.max(x, axis=1).numpy()
    assert np.isnan(out[0]) and out[1] == 3.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [15, 16, 17, 63, 64, 65, 129, 1000, 4097])
def test_max_min_long_rows_vectorized(dtype, n):
    """Contiguous rows of 16+ values take the vectorized max/min: NaN anywhere (first lane,
    a vector boundary, the scalar tail) propagates, infinities and signed zeros as numpy."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((6, n)).astype(dtype)
    x[1, 0] = np.nan
    x[2, min(n - 1, 16)] = np.nan
    x[3, n - 1] = np.nan
    x[4, n // 2] = np.inf
    x[4, n // 3] = -np.inf
    x[5] = 0.0
    x[5, n // 2] = -0.0
    for axis in (-1, None):
        for f, g in ((nef.max, np.max), (nef.min, np.min)):
            got = f(nef.tensor(x), axis=axis).numpy()
            np.testing.assert_array_equal(got, g(x, axis=axis))
            assert got.dtype == dtype
    # A row without NaN after rows with: each row independent.
    clean = x[[0, 4]]
    np.testing.assert_array_equal(nef.max(nef.tensor(clean), axis=1, keepdims=True).numpy(),
                                  clean.max(1, keepdims=True))
