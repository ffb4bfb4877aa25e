"""Large float32 outputs (32 MiB and more) of softmax, log_softmax, layernorm, rmsnorm and fused
elementwise chains leave their kernels through streaming stores (vmath::stream_copy): the results
against numpy float64 at 1 and 2 threads, row lengths that put rows off the 64-byte grid, and
the same bits on a second run. Plus the vectorized float32 exp / tanh / sigmoid of the unary
kernels over the whole float range (a wide sweep, the overflow / underflow edges, inf, NaN)."""

import numpy as np
import pytest

import nef

# 2049 x 4099 float32 = 33.6 MB, above the 32 MiB streaming threshold; 4099 * 4 bytes is not a
# multiple of 64, so most rows start off the vector grid.
ROWS, COLS = 2049, 4099


@pytest.fixture(params=[1, 2], ids=["1t", "2t"])
def threads(request):
    old = nef.config()["threads"]
    nef.config(threads=request.param)
    yield request.param
    nef.config(threads=old)


def _x(seed, shape=(ROWS, COLS), scale=3.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)
            + np.float32(rng.uniform(-2, 2)))


def _same_twice(fn):
    a, b = fn(), fn()
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), "not deterministic"
    return a


@pytest.mark.parametrize("log", [False, True])
def test_softmax_streamed(threads, log):
    x = _x(10 + threads)
    X = nef.from_numpy(x)
    op = nef.log_softmax if log else nef.softmax
    got = _same_twice(lambda: op(X, -1).numpy())
    x64 = x.astype(np.float64)
    z = x64 - x64.max(axis=-1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=-1, keepdims=True))
    want = z - lse if log else np.exp(z - lse)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=2e-5 if not log else 0, atol=1e-7 if not log else 2e-5)


@pytest.mark.parametrize("rms", [False, True])
def test_norm_streamed(threads, rms):
    x = _x(20 + threads)
    rng = np.random.default_rng(5)
    g = rng.standard_normal(COLS, dtype=np.float32) + np.float32(1)
    b = rng.standard_normal(COLS, dtype=np.float32)
    X, G, B = nef.from_numpy(x), nef.from_numpy(g), nef.from_numpy(b)
    x64 = x.astype(np.float64)
    if rms:
        got = _same_twice(lambda: nef.rmsnorm(X, G, eps=1e-6).numpy())
        want = x64 / np.sqrt((x64 * x64).mean(axis=-1, keepdims=True) + 1e-6) * g
    else:
        got = _same_twice(lambda: nef.layernorm(X, G, B, eps=1e-5).numpy())
        mu = x64.mean(axis=-1, keepdims=True)
        var = ((x64 - mu) ** 2).mean(axis=-1, keepdims=True)
        want = (x64 - mu) / np.sqrt(var + 1e-5) * g + b
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_fused_chain_streamed(threads):
    n = ROWS * COLS
    a, b, c, d = (_x(30 + k, (n,), 1.5) for k in range(4))
    A, B, C, D = (nef.from_numpy(v) for v in (a, b, c, d))
    got = _same_twice(lambda: (nef.tanh(A * B + C) * D - nef.exp(-A)).numpy())
    a64, b64, c64, d64 = (v.astype(np.float64) for v in (a, b, c, d))
    t = np.tanh((a * b + c).astype(np.float64))  # the float32 a * b + c the kernel rounds to
    want = t * d64 - np.exp(-a64)
    # Each term within a few float32 ulps of its own size (the subtraction may cancel).
    scale = np.abs(t * d64) + np.exp(-a64)
    assert np.all(np.abs(got - want) <= 4e-7 * scale + 1e-30)
    # A strided (every other element) and broadcast view through the same large-output path.
    S = nef.from_numpy(np.ascontiguousarray(np.stack([a, b], axis=1)))[:, 0]
    row = nef.from_numpy(c[:COLS].copy())
    got2 = (nef.tanh(S.reshape((ROWS, COLS)) * row) + nef.exp(-S.reshape((ROWS, COLS)))).numpy()
    t2 = np.tanh((a.reshape(ROWS, COLS) * c[:COLS]).astype(np.float64))
    e2 = np.exp(-a64.reshape(ROWS, COLS))
    assert np.all(np.abs(got2 - (t2 + e2)) <= 4e-7 * (np.abs(t2) + e2))


def _ulp_err(got, want):
    want = want.astype(np.float64)
    _, e = np.frexp(np.abs(want))
    ulp = np.ldexp(1.0, np.maximum(e - 1, -126) - 23)
    return np.abs(got.astype(np.float64) - want) / ulp


@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid"])
def test_unary_float32_whole_range(threads, name):
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, size=400_001, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([bits.view(np.float32), np.linspace(-110, 95, 300_001, dtype=np.float32),
                        np.array([0.0, -0.0, 88.72, 88.73, -87.4, -103.9, -104.5, 0.625,
                                  np.inf, -np.inf, np.nan], dtype=np.float32)])
    got = getattr(nef, name)(nef.from_numpy(x)).numpy()
    with np.errstate(all="ignore"):
        x64 = x.astype(np.float64)
        want = {"exp": np.exp, "tanh": np.tanh,
                "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[name](x64)
    nan = np.isnan(x)
    assert np.all(np.isnan(got[nan]))
    big = ~nan & (np.abs(want) > np.finfo(np.float32).max)
    assert np.all(np.isinf(got[big]))
    tiny = ~nan & (np.abs(want) < 1e-37) if name == "sigmoid" else np.zeros_like(nan)
    assert np.all(got[tiny] <= 1e-37)  # sigmoid: 0 where the exact value is a tiny subnormal
    ok = ~nan & ~big & ~tiny
    bound = {"exp": 1.5, "tanh": 2.5, "sigmoid": 4.0}[name]
    assert _ulp_err(got[ok], want[ok]).max() <= bound
    if name == "tanh":
        assert np.signbit(got[x == 0]).tolist() == np.signbit(x[x == 0]).tolist()


@pytest.mark.parametrize("name", ["log", "silu", "gelu_tanh"])
def test_unary_float32_whole_range_more(threads, name):
    """The vectorized unfused log, silu and tanh-GELU against float64 over the whole float range
    (random bit patterns, a dense sweep, zeros, subnormals, inf, NaN; odd length, strided)."""
    rng = np.random.default_rng(11)
    bits = rng.integers(0, 2**32, size=300_001, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([bits.view(np.float32), np.linspace(-110, 95, 200_001, dtype=np.float32),
                        np.array([0.0, -0.0, 1e-45, 1e-39, -1e-39, 1.0, -88.7, -89.0, 3e12,
                                  -3e12, 3.4e38, -3.4e38, np.inf, -np.inf, np.nan],
                                 dtype=np.float32)])
    fn = {"log": nef.log, "silu": nef.silu,
          "gelu_tanh": lambda t: nef.gelu(t, approximate="tanh")}[name]
    X = nef.from_numpy(np.stack([x, x[::-1]], axis=1))[:, 0]  # a strided view of x
    got = fn(X).numpy()
    with np.errstate(all="ignore"):
        v = x.astype(np.float64)
        want = {"log": np.log, "silu": lambda v: v / (1 + np.exp(-v)),
                "gelu_tanh": lambda v: 0.5 * v * (1 + np.tanh(0.7978845608028654 *
                                                               (v + 0.044715 * v ** 3)))}[name](v)
    want32 = want.astype(np.float32)  # where float64's value leaves the float range
    assert np.isnan(got).tolist() == np.isnan(want32).tolist()
    inf = np.isinf(want32)
    assert got[inf].tolist() == want32[inf].tolist()
    ok = np.isfinite(want32)
    err = np.abs(got[ok].astype(np.float64) - want[ok])
    _, e = np.frexp(np.abs(want[ok]))
    ulp = np.ldexp(1.0, np.maximum(e - 1, -126) - 23)
    if name == "log":
        assert (err / ulp).max() <= 4.0  # Highway's documented bound
    elif name == "silu":
        # exp(-x) overflows below about -88.7, where the exact value is under 1e-36.
        assert np.all(err <= 3.0 * ulp + 1e-36)
    else:
        # 1 + tanh(.) cancels for negative x, as in the formula itself: bounded by |x|.
        assert np.all(err <= 4.0 * ulp + 3e-7 * np.abs(v[ok]))


@pytest.mark.parametrize("affine", ["none", "weight", "bias", "rms"])
def test_norm_streamed_affine_modes_match_small_rows(threads, affine):
    """Each weight / bias combination through the streamed normalize (vmath::normalize with
    non-temporal stores and the next row prefetched): against numpy float64, and bit for bit the
    values the same rows get through the small, non-streamed path."""
    x = _x(40 + threads)
    rng = np.random.default_rng(6)
    g = nef.from_numpy(rng.standard_normal(COLS, dtype=np.float32) + np.float32(1))
    b = nef.from_numpy(rng.standard_normal(COLS, dtype=np.float32))
    x64 = x.astype(np.float64)
    if affine == "rms":
        fn = lambda t: nef.rmsnorm(t, None, eps=1e-6)  # noqa: E731
        want = x64 / np.sqrt((x64 * x64).mean(axis=-1, keepdims=True) + 1e-6)
    else:
        w = g if affine == "weight" else None
        bb = b if affine == "bias" else None
        fn = lambda t: nef.layernorm(t, w, bb, eps=1e-5)  # noqa: E731
        mu = x64.mean(axis=-1, keepdims=True)
        want = (x64 - mu) / np.sqrt(((x64 - mu) ** 2).mean(axis=-1, keepdims=True) + 1e-5)
        if w is not None:
            want = want * g.numpy().astype(np.float64)
        if bb is not None:
            want = want + b.numpy().astype(np.float64)
    got = _same_twice(lambda: fn(nef.from_numpy(x)).numpy())
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    for lo, hi in ((0, 3), (ROWS - 2, ROWS)):
        small = fn(nef.from_numpy(np.ascontiguousarray(x[lo:hi]))).numpy()
        assert np.array_equal(small.view(np.uint32), got[lo:hi].view(np.uint32))


def test_softmax_streamed_matches_small_rows(threads):
    """The streamed softmax (max over the input, exp into a buffer while the next row is
    fetched, scaling streamed out) gives the bits of the in-place path on the same rows."""
    x = _x(50 + threads)
    got = _same_twice(lambda: nef.softmax(nef.from_numpy(x), -1).numpy())
    for lo, hi in ((0, 2), (ROWS // 2, ROWS // 2 + 3), (ROWS - 1, ROWS)):
        small = nef.softmax(nef.from_numpy(np.ascontiguousarray(x[lo:hi])), -1).numpy()
        assert np.array_equal(small.view(np.uint32), got[lo:hi].view(np.uint32))


@pytest.mark.parametrize("shape", [(0, 7), (3, 0), (0,)])
def test_row_kernels_empty(shape):
    x = np.zeros(shape, dtype=np.float32)
    for fn in (lambda t: nef.softmax(t, -1), lambda t: nef.layernorm(t, None, None, eps=1e-5),
               lambda t: nef.rmsnorm(t, None, eps=1e-6)):
        got = fn(nef.from_numpy(x)).numpy()
        assert got.shape == shape and got.dtype == np.float32
