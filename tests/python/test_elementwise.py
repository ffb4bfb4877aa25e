"""Elementwise ops against numpy float64 references, over dtypes, shapes and broadcasting."""

import math

import numpy as np
import pytest
from conftest import ALL, FLOATS, INTS, SHAPES, assert_close, cases, f64, np_dtype, random_array

import nef

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x):
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name -> (reference on float64, (low, high) input range, output kind)
#   output kind "same": dtype kept (bool input rejected); "float": to_floating; "bool".
UNARY = {
    "neg": (lambda x: -x, (-5, 5), "same"),
    "abs": (np.abs, (-5, 5), "same"),
    "sign": (np.sign, (-5, 5), "same"),
    "relu": (lambda x: np.maximum(x, 0), (-5, 5), "same"),
    "floor": (np.floor, (-5, 5), "same"),
    "ceil": (np.ceil, (-5, 5), "same"),
    "round": (np.round, (-5, 5), "same"),
    "exp": (np.exp, (-4, 4), "float"),
    "log": (np.log, (0.05, 20), "float"),
    "sqrt": (np.sqrt, (0, 20), "float"),
    "rsqrt": (lambda x: 1 / np.sqrt(x), (0.1, 20), "float"),
    "reciprocal": (lambda x: 1 / x, (0.2, 5), "float"),
    "tanh": (np.tanh, (-4, 4), "float"),
    "sigmoid": (_sigmoid, (-6, 6), "float"),
    "silu": (lambda x: x * _sigmoid(x), (-6, 6), "float"),
    "erf": (_erf, (-3, 3), "float"),
    "sin": (np.sin, (-4, 4), "float"),
    "cos": (np.cos, (-4, 4), "float"),
    "gelu": (_gelu, (-4, 4), "float"),
    "logical_not": (lambda x: x == 0, (-2, 2), "bool"),
}


def _unary_out_dtype(kind, dtype):
    if kind == "bool":
        return "bool"
    if kind == "float":
        return dtype if dtype in FLOATS else "float32"
    return dtype


@pytest.mark.parametrize("name,dtype,shape,seed", cases(sorted(UNARY), ALL, SHAPES, prefix="un"))
def test_unary(name, dtype, shape, seed):
    ref, (lo, hi), kind = UNARY[name]
    rng = np.random.default_rng(seed)
    if dtype.startswith("uint"):
        lo = max(lo, 0)
    x = random_array(rng, shape, dtype, lo, hi)
    fn = getattr(nef, name)
    if kind == "same" and dtype == "bool":
        with pytest.raises(nef.NEFTypeError):
            fn(nef.tensor(x))
        return
    out = fn(nef.tensor(x))
    want_dtype = _unary_out_dtype(kind, dtype)
    assert str(out.dtype) == want_dtype and out.shape == shape
    if kind == "bool":
        np.testing.assert_array_equal(out.numpy(), ref(f64(x)))
    elif want_dtype in INTS:
        # uint8 negation wraps modulo 256, as in numpy.
        np.testing.assert_array_equal(out.numpy(), ref(x.astype(np.int64)).astype(want_dtype))
    else:
        with np.errstate(divide="ignore"):  # log/rsqrt/reciprocal of a False input
            expected = ref(f64(x))
        assert_close(out, expected, want_dtype, scale=4)


@pytest.mark.parametrize("dtype,shape,seed", cases(FLOATS, [(7,), (3, 129)], prefix="gelu"))
def test_gelu_tanh(dtype, shape, seed):
    x = random_array(np.random.default_rng(seed), shape, dtype, -4, 4)
    out = nef.gelu(nef.tensor(x), approximate="tanh")
    assert_close(out, _gelu_tanh(f64(x)), dtype, scale=4)
    with pytest.raises(nef.NEFValidationError):
        nef.gelu(nef.tensor(x), approximate="fast")


def test_special_values():
    x = nef.tensor(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], np.float32))
    np.testing.assert_array_equal(nef.abs(x).numpy(), np.abs(x.numpy()))
    np.testing.assert_array_equal(nef.exp(x).numpy()[:3], np.array([np.nan, np.inf, 0]))
    np.testing.assert_array_equal(nef.maximum(x, 1.0).numpy()[:3], [np.nan, np.inf, 1.0])
    np.testing.assert_array_equal(nef.round(nef.tensor([0.5, 1.5, 2.5, -0.5])).numpy(),
                                  np.array([0, 2, 2, -0.0], np.float32))


# ---- binary ---------------------------------------------------------------------------------

ARITH = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "maximum": np.maximum,
    "minimum": np.minimum,
}
COMPARE = {
    "equal": np.equal,
    "not_equal": np.not_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
}
BROADCAST = [((), ()), ((7,), ()), ((), (37,)), ((1,), (37,)), ((3, 129), (3, 129)),
             ((3, 1), (1, 129)), ((2, 0, 5), (5,)), ((4, 7, 1), (7, 37)), ((0,), (1,))]


def _pair(rng, sa, sb, dtype, lo=-20, hi=20):
    return random_array(rng, sa, dtype, lo, hi), random_array(rng, sb, dtype, lo, hi)


@pytest.mark.parametrize("name,dtype,shapes,seed", cases(sorted(ARITH), ALL, BROADCAST, prefix="ar"))
def test_arith(name, dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    # Ranges where no integer result overflows (wrap-around is not part of the contract).
    lo, hi = {"int8": (-9, 9), "uint8": (0, 15)}.get(dtype, (-20, 20))
    a, b = _pair(rng, *shapes, dtype, lo, hi)
    if dtype.startswith("uint") and name == "sub":
        a = random_array(rng, shapes[0], dtype, 16, 40)
    if dtype == "bool" and name == "sub":
        with pytest.raises(nef.NEFTypeError):
            nef.sub(nef.tensor(a), nef.tensor(b))
        return
    out = getattr(nef, name)(nef.tensor(a), nef.tensor(b))
    expected_shape = np.broadcast_shapes(a.shape, b.shape)
    assert out.shape == expected_shape and str(out.dtype) == dtype
    if dtype in FLOATS:
        assert_close(out, ARITH[name](f64(a), f64(b)), dtype)
    else:
        np.testing.assert_array_equal(out.numpy(), ARITH[name](a, b))


@pytest.mark.parametrize("dtype,shapes,seed", cases(FLOATS + INTS, BROADCAST, prefix="div"))
def test_div(dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, shapes[0], dtype, 0 if dtype.startswith("uint") else -20, 20)
    b = random_array(rng, shapes[1], dtype, 1, 9)
    out = nef.div(nef.tensor(a), nef.tensor(b))
    want = dtype if dtype in FLOATS else "float32"  # int / int gives float32 (numpy: float64)
    assert_close(out, f64(a) / f64(b), want)
    assert_close(nef.tensor(a) / nef.tensor(b), f64(a) / f64(b), want)


@pytest.mark.parametrize("dtype,shapes,seed", cases(FLOATS + INTS, BROADCAST, prefix="mod"))
def test_mod(dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, shapes[0], dtype, 0 if dtype.startswith("uint") else -20, 20)
    b = random_array(rng, shapes[1], dtype, 1, 7)
    if not dtype.startswith("uint"):
        b = b * np.where(rng.random(b.shape) < 0.5, -1, 1).astype(b.dtype)
    out = nef.mod(nef.tensor(a), nef.tensor(b))
    if dtype in FLOATS:
        assert_close(out, np.mod(f64(a), f64(b)), dtype, scale=8)
    else:
        np.testing.assert_array_equal(out.numpy(), np.mod(a, b))


def test_int_mod_by_zero_is_zero():
    out = nef.tensor([5, -3, 0]) % nef.tensor([0, 0, 0])
    np.testing.assert_array_equal(out.numpy(), [0, 0, 0])


@pytest.mark.parametrize("dtype,shapes,seed", cases(FLOATS + ["int32", "int64"], BROADCAST[:6],
                                                    prefix="pow"))
def test_pow(dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    if dtype in FLOATS:
        a = random_array(rng, shapes[0], dtype, 0.1, 3)
        b = random_array(rng, shapes[1], dtype, -2, 2)
        assert_close(nef.pow(nef.tensor(a), nef.tensor(b)), f64(a) ** f64(b), dtype, scale=4)
    else:
        a = random_array(rng, shapes[0], dtype, -4, 4)
        b = random_array(rng, shapes[1], dtype, 0, 5)
        np.testing.assert_array_equal((nef.tensor(a) ** nef.tensor(b)).numpy(), a ** b)


def test_int_pow_negative_exponent(tmp_path):
    """The pow op's integer semantics (docs/ops.md, as ONNX): a negative exponent gives 0
    unless the base is 1 or -1. Python refuses exponents known to be negative when the node is
    made (numpy does too; tests/python/test_python_answers.py); a graph input is not known."""
    base = nef.tensor([2, 1, -1, -1, 3], dtype=nef.int64)
    e = nef.placeholder("e", (5,), nef.int64)
    (base ** e).build(tmp_path / "pow.nef")
    out = nef.load(tmp_path / "pow.nef").run(e=np.array([-1, -3, -3, -2, 0], np.int64))
    np.testing.assert_array_equal(out["output"], [0, 1, -1, 1, 1])


@pytest.mark.parametrize("name,dtype,shapes,seed", cases(sorted(COMPARE), ALL, BROADCAST[:8],
                                                         prefix="cmp"))
def test_compare(name, dtype, shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = _pair(rng, *shapes, dtype, 0, 3)  # small range: many ties
    out = getattr(nef, name)(nef.tensor(a), nef.tensor(b))
    assert str(out.dtype) == "bool"
    np.testing.assert_array_equal(out.numpy(), COMPARE[name](a, b))


@pytest.mark.parametrize("name,dtype,seed", cases(["logical_and", "logical_or"], ALL, prefix="lg"))
def test_logical(name, dtype, seed):
    rng = np.random.default_rng(seed)
    a, b = _pair(rng, (4, 7, 1), (7, 37), dtype, 0, 2)
    out = getattr(nef, name)(nef.tensor(a), nef.tensor(b))
    assert str(out.dtype) == "bool"
    np.testing.assert_array_equal(out.numpy(), getattr(np, name)(a, b))


PROMOTE_PAIRS = [(a, b) for i, a in enumerate(ALL) for b in ALL[i:]]


def _np_result_type(da, db):
    """numpy's (and ml_dtypes') result type, or None where they have none (float16 with
    bfloat16, bfloat16 with ints wider than 8 bits)."""
    try:
        return np.result_type(np_dtype(da), np_dtype(db)).name
    except TypeError:
        return None


@pytest.mark.parametrize("pair,seed", cases(PROMOTE_PAIRS, prefix="pr"))
def test_promotion_matches_numpy(pair, seed):
    da, db = pair
    rng = np.random.default_rng(seed)
    a = random_array(rng, (3, 5), da, 0, 5)
    b = random_array(rng, (5,), db, 0, 5)
    out = nef.tensor(a) + nef.tensor(b)
    want = _np_result_type(da, db)
    if want is None:
        # NEF's documented choice: the narrowest float holding both (float32, or float64 for
        # 32/64-bit ints).
        wide = any(d in ("int32", "uint32", "int64", "uint64") for d in (da, db))
        want = "float64" if wide else "float32"
    assert str(out.dtype) == want
    assert str((nef.tensor(b) + nef.tensor(a)).dtype) == want
    assert_close(out, (a | b) if want == "bool" else f64(a) + f64(b), want)


def test_mixed_sign_promotion_values():
    # int8 + uint8 -> int16 and uint64 + int64 -> float64, with the values numpy gives.
    out = nef.tensor(np.array([-3], np.int8)) + nef.tensor(np.array([200], np.uint8))
    assert out.dtype == nef.int16 and out.tolist() == [197]
    big = np.array([2**64 - 1, 5], np.uint64)
    neg = np.array([-1, -7], np.int64)
    out = nef.tensor(big) + nef.tensor(neg)
    assert out.dtype == nef.float64
    np.testing.assert_array_equal(out.numpy(), big + neg)
    assert (nef.tensor([np.float16(1)]) + nef.tensor(np.ones(1, "bfloat16"))).dtype == nef.float32


# ---- where, clip, cast ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype,seed", cases(ALL, prefix="where"))
def test_where(dtype, seed):
    rng = np.random.default_rng(seed)
    cond = rng.random((4, 1, 37)) < 0.5
    a = random_array(rng, (7, 37), dtype, 0, 9)
    b = random_array(rng, (4, 7, 1), dtype, 0, 9)
    out = nef.where(nef.tensor(cond), nef.tensor(a), nef.tensor(b))
    assert str(out.dtype) == dtype
    np.testing.assert_array_equal(f64(out.numpy()), f64(np.where(cond, a, b)))


def test_where_scalars_and_nonbool_condition():
    x = nef.tensor([[1.5, -2.0], [0.0, 3.0]])
    out = nef.where(x > 0, x, 0.0)
    np.testing.assert_array_equal(out.numpy(), np.array([[1.5, 0], [0, 3]], np.float32))
    assert out.dtype == nef.float32
    out2 = nef.where(nef.tensor([0, 2, 0]), 1, 2)
    assert out2.tolist() == [2, 1, 2]


@pytest.mark.parametrize("dtype,seed", cases(FLOATS + INTS, prefix="clip"))
def test_clip(dtype, seed):
    rng = np.random.default_rng(seed)
    x = random_array(rng, (3, 129), dtype, 0 if dtype.startswith("uint") else -50, 50)
    t = nef.tensor(x)
    assert_close(nef.clip(t, 5, 20), np.clip(f64(x), 5, 20), dtype)
    assert_close(nef.clip(t, None, 20), np.minimum(f64(x), 20), dtype)
    assert_close(nef.clip(t, 5, None), np.maximum(f64(x), 5), dtype)
    assert_close(t.clip(5, 20), np.clip(f64(x), 5, 20), dtype)
    lo = random_array(rng, (129,), dtype, 0, 10)
    hi = random_array(rng, (3, 1), dtype, 20, 40)
    assert_close(nef.clip(t, nef.tensor(lo), nef.tensor(hi)), np.clip(f64(x), f64(lo), f64(hi)),
                 dtype)


@pytest.mark.parametrize("src,dst,seed", cases(ALL, ALL, prefix="cast"))
def test_cast(src, dst, seed):
    rng = np.random.default_rng(seed)
    # Values inside every target's range: casts that overflow are unspecified.
    x = random_array(rng, (37,), src, 0, 100)
    if src in FLOATS:
        x = (x * np.where(rng.random(37) < 0.3, 0, 1)).astype(x.dtype)  # zeros for ->bool
    out = nef.cast(nef.tensor(x), dst)
    assert str(out.dtype) == dst
    want = x.astype(np_dtype(dst))
    if dst in ("float16", "bfloat16") and (src in INTS or src in ("float64", "float32")):
        assert_close(out, f64(x), dst)  # via float32: may round differently than numpy's path
    else:
        np.testing.assert_array_equal(f64(out.numpy()), f64(want))
    assert nef.tensor(x).astype(dst).dtype == dst


FULL_RANGE_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                     "floor_divide": np.floor_divide, "mod": np.mod, "maximum": np.maximum,
                     "minimum": np.minimum, "bitwise_and": np.bitwise_and,
                     "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor,
                     "less": np.less, "greater_equal": np.greater_equal, "equal": np.equal}


def _full_range(rng, shape, dtype):
    """Values over the dtype's whole range, with its extremes, 0, 1 and -1 mixed in."""
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    special = np.array([info.min, info.max, 0, 1, info.max - 1] + ([-1] if info.min < 0 else []),
                       dtype=dtype)
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, 12)] = rng.choice(special, 12)
    return x


@pytest.mark.parametrize("name,dtype,seed", cases(sorted(FULL_RANGE_BINARY), INTS, prefix="wrap"))
def test_integer_ops_over_the_full_range(name, dtype, seed):
    # Overflow wraps, x // 0 and x % 0 are 0, INT_MIN // -1 wraps: numpy's answers, exactly.
    rng = np.random.default_rng(seed)
    a, b = _full_range(rng, (5, 41), dtype), _full_range(rng, (41,), dtype)
    b[rng.integers(0, 41, 3)] = 0
    with np.errstate(all="ignore"):
        want = FULL_RANGE_BINARY[name](a, b)
    out = getattr(nef, name)(nef.tensor(a), nef.tensor(b))
    assert out.dtype == want.dtype
    np.testing.assert_array_equal(out.numpy(), want)


@pytest.mark.parametrize("dtype,seed", cases(INTS, prefix="wrapun"))
def test_integer_unary_and_shifts_over_the_full_range(dtype, seed):
    rng = np.random.default_rng(seed)
    x = _full_range(rng, (3, 53), dtype)
    t = nef.tensor(x)
    with np.errstate(all="ignore"):
        for fn, ref in ((nef.neg, np.negative), (nef.abs, np.abs), (nef.sign, np.sign),
                        (nef.bitwise_not, np.invert)):
            np.testing.assert_array_equal(fn(t).numpy(), ref(x), err_msg=fn.__name__)
        bits = np.iinfo(dtype).bits
        s = rng.integers(0, bits + 3, (53,)).astype(dtype)  # some past the width: 0 / sign
        np.testing.assert_array_equal(nef.left_shift(t, nef.tensor(s)).numpy(),
                                      np.left_shift(x, s))
        np.testing.assert_array_equal(nef.right_shift(t, nef.tensor(s)).numpy(),
                                      np.right_shift(x, s))
    for other in INTS:
        np.testing.assert_array_equal(t.astype(other).numpy(), x.astype(other),
                                      err_msg=f"{dtype} -> {other}")
    np.testing.assert_array_equal(t.astype("float64").numpy(), x.astype(np.float64))


F8 = ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz"]


@pytest.mark.parametrize("f8,seed", cases(F8, prefix="f8"))
def test_float8_casts_match_ml_dtypes(f8, seed):
    # Decoding: every bit pattern, as ml_dtypes reads it (NaN where it has NaN).
    codes = np.arange(256, dtype=np.uint8).view(np_dtype(f8))
    t = nef.tensor(codes)
    assert t.dtype == f8 and t.numpy().dtype == np.dtype(np_dtype(f8))
    np.testing.assert_array_equal(t.numpy().view(np.uint8), np.arange(256, dtype=np.uint8))
    for dst in ("float32", "float64", "float16"):
        np.testing.assert_array_equal(nef.cast(t, dst).numpy(), codes.astype(dst))
    # Encoding: random floats over the whole range (and past it), ties, specials; round to
    # nearest even as ml_dtypes does. saturate=False is ml_dtypes' own overflow rule; the
    # default saturates (ONNX Cast), which is clipping to the largest finite value first.
    rng = np.random.default_rng(seed)
    fmax = float(ml_dtypes_finfo(f8).max)
    x = (rng.standard_normal(4000) * np.exp2(rng.integers(-30, 20, 4000))).astype(np.float32)
    grid = codes.astype(np.float32)
    grid = grid[np.isfinite(grid)]
    mids = ((np.sort(grid)[1:] + np.sort(grid)[:-1]) / 2).astype(np.float32)  # exact ties
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, fmax, -fmax, fmax * 1.07,
                        -fmax * 1.07, 1e30, -1e30], np.float32)
    x = np.concatenate([x, mids, special])
    for src in ("float32", "float16"):
        with np.errstate(all="ignore"):
            xs = x.astype(src)  # float16: the largest values overflow to inf, as intended
            want_raw = xs.astype(np_dtype(f8))
            want_sat = np.clip(xs.astype(np.float32), -fmax, fmax).astype(np_dtype(f8))
        got_raw = nef.cast(nef.tensor(xs), f8, saturate=False).numpy()
        got_sat = nef.cast(nef.tensor(xs), f8).numpy()
        for got, want in ((got_raw, want_raw), (got_sat, want_sat)):
            g, w = got.astype(np.float64), want.astype(np.float64)
            same = (g == w) | (np.isnan(g) & np.isnan(w))
            assert same.all(), (src, xs[~same][:5], g[~same][:5], w[~same][:5])
    # Views, concat and take move the bytes; arithmetic refuses the storage-only type.
    b = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(t.reshape(16, 16).T.numpy().view(np.uint8),
                                  b.reshape(16, 16).T)
    np.testing.assert_array_equal(nef.concatenate([t[::-3], t]).numpy().view(np.uint8),
                                  np.concatenate([b[::-3], b]))
    np.testing.assert_array_equal(nef.take(t, nef.tensor([3, 0, 255])).numpy().view(np.uint8),
                                  b[[3, 0, 255]])
    with pytest.raises(nef.NEFTypeError, match=f8):
        t + t
    with pytest.raises(nef.NEFTypeError, match=f8):
        nef.exp(t)


def ml_dtypes_finfo(name):
    import ml_dtypes
    return ml_dtypes.finfo(np_dtype(name))


def test_cast_float_to_int_truncates():
    x = nef.tensor([-2.7, -0.5, 0.5, 2.7, 100.9])
    assert x.astype(nef.int32).tolist() == [-2, 0, 0, 2, 100]
    assert x.astype("bool").tolist() == [True, True, True, True, True]
    assert nef.tensor([0.0, -0.0, 1e-30]).astype(nef.bool_).tolist() == [False, False, True]
