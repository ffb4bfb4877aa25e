"""Shared helpers: seeded inputs per dtype, float64 references, tolerances per dtype.

Every random case carries its seed in the test id (``...-s1234``) so a failure can be replayed.
"""

import math
import os
import zlib

# Results must not depend on where the cost model would place work on this machine: the suites
# run on the CPU unless the caller chooses (NEF_DEVICES=opencl pytest ... runs them on OpenCL);
# tests of placement and other devices set their devices themselves.
os.environ.setdefault("NEF_DEVICES", "cpu")
# Every plan the suites compile is checked: memory plan and concurrent groups (NEF_VERIFY_PLANS).
os.environ.setdefault("NEF_VERIFY_PLANS", "1")

import ml_dtypes
import numpy as np
import pytest

import nef

FLOATS = ["float32", "float16", "bfloat16", "float64"]
INTS = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
ALL = FLOATS + INTS + ["bool"]

# Shapes exercised by elementwise tests: rank 0, zero-size dims, size 1 and odd sizes.
SHAPES = [(), (0,), (1,), (7,), (37,), (3, 129), (2, 0, 5), (4, 7, 1)]

# (rtol, atol) for results stored in each dtype, compared with float64 math. Half types compute
# in float32 and round once, so half an ulp of the stored type dominates.
TOL = {
    "float64": (1e-12, 1e-12),
    "float32": (2e-6, 1e-6),
    "float16": (2e-3, 1e-3),
    "bfloat16": (1.6e-2, 1e-2),
}


def np_dtype(name):
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def seed_of(*parts) -> int:
    """A stable seed derived from the case's description."""
    return zlib.crc32("|".join(map(str, parts)).encode()) % 100000


def cases(*axes, prefix=""):
    """Cartesian product of parameter lists as pytest params whose ids end in the seed."""
    import itertools
    out = []
    for combo in itertools.product(*axes):
        s = seed_of(prefix, *combo)
        cid = "-".join(str(c).replace(" ", "") for c in combo) + f"-s{s}"
        out.append(pytest.param(*combo, s, id=cid))
    return out


def random_array(rng, shape, dtype, low=-3.0, high=3.0):
    """Random values of `dtype` (already rounded to it)."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INTS:
        info = np.iinfo(dtype)
        lo = max(math.ceil(low), int(info.min))
        hi = min(math.floor(high), int(info.max))
        return rng.integers(lo, hi + 1, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(np_dtype(dtype))


def f64(a):
    return np.asarray(a).astype(np.float64)


def tol(dtype, scale=1.0):
    rtol, atol = TOL.get(str(dtype), (0, 0))
    return rtol * scale, atol * scale


def assert_close(actual, expected, dtype=None, scale=1.0, check_dtype=True):
    """Compares an NEF result (Tensor or array) with a float64 reference."""
    if isinstance(actual, nef.Tensor):
        dt = str(actual.dtype)
        arr = actual.numpy()
    else:
        arr = np.asarray(actual)
        dt = arr.dtype.name
    if check_dtype and dtype is not None:
        assert dt == str(dtype), f"dtype {dt}, expected {dtype}"
    expected = np.asarray(expected)
    assert arr.shape == expected.shape, f"shape {arr.shape}, expected {expected.shape}"
    if dt in TOL:
        rtol, atol = tol(dt, scale)
        np.testing.assert_allclose(f64(arr), f64(expected), rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(arr, expected.astype(arr.dtype) if dt != "bool" else expected)


@pytest.fixture
def fresh_stats():
    nef.reset_stats()
    return nef.stats
