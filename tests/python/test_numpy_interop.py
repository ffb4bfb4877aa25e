"""numpy's protocols (__array_ufunc__, __array_function__), NEF dtypes as numpy dtypes, and
DLPack both ways (with numpy as the other side: PyTorch and JAX speak the same protocol)."""

import gc
import sys

import ml_dtypes
import numpy as np
import pytest
from conftest import ALL, FLOATS, assert_close, cases, f64, np_dtype, random_array

import nef

# ---- ufuncs ---------------------------------------------------------------------------------

UNARY = ["negative", "positive", "absolute", "fabs", "sign", "exp", "log", "sqrt", "sin", "cos",
         "tanh", "floor", "ceil", "rint", "square", "reciprocal", "isnan", "isinf", "isfinite"]
BINARY = ["add", "subtract", "multiply", "divide", "true_divide", "power", "remainder",
          "floor_divide", "maximum", "minimum", "equal", "not_equal", "less", "less_equal",
          "greater", "greater_equal"]


@pytest.mark.parametrize("name,seed", cases(UNARY, prefix="uf1"))
def test_unary_ufuncs_are_lazy_and_match_numpy(name, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, (3, 5), "float32", 0.1, 4)
    a[0, 0] = np.nan
    a[0, 1] = np.inf
    t = nef.tensor(a)
    uf = getattr(np, name)
    nef.reset_stats()
    got = uf(t)
    assert isinstance(got, nef.Tensor)
    assert got.is_materialized == (name == "positive")  # +t is t itself (tensors are immutable)
    assert nef.stats()["graphs_executed"] == 0
    with np.errstate(all="ignore"):
        want = uf(a)
    assert got.dtype == want.dtype
    if want.dtype == np.bool_:
        np.testing.assert_array_equal(got.numpy(), want)
    else:
        assert_close(got, f64(want), str(want.dtype), scale=4)


@pytest.mark.parametrize("name,dtype,seed", cases(BINARY, ["float32", "int32", "int64"],
                                                  prefix="uf2"))
def test_binary_ufuncs_with_arrays_and_scalars(name, dtype, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, (4, 6), dtype, -9, 9)
    b = random_array(rng, (6,), dtype, 1, 5)  # positive: integer power and division defined
    uf = getattr(np, name)
    ta = nef.tensor(a)
    for args, ref in [((ta, b), (a, b)), ((a, nef.tensor(b)), (a, b)), ((ta, 3), (a, 3)),
                      ((3, ta), (3, a)) if name not in ("power",) else ((ta, 2), (a, 2))]:
        got = uf(*args)
        assert isinstance(got, nef.Tensor), (name, args)
        with np.errstate(all="ignore"):
            want = uf(*ref)
        if name in ("divide", "true_divide") and dtype != "float32":
            assert got.dtype == nef.float32  # NEF's default float (numpy: float64)
            assert_close(got, f64(want), "float32")
            continue
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        if want.dtype.kind == "f":
            assert_close(got, f64(want), str(want.dtype), scale=4)
        else:
            np.testing.assert_array_equal(got.numpy(), want)


def test_operators_between_numpy_and_tensors_stay_lazy():
    a = np.array([1.0, 2.0], np.float32)
    t = nef.tensor([10.0, 20.0])
    for r in (a + t, a * t, a - t, a / t, a @ t, a ** t, a > t, np.float32(2) * t, t + a):
        assert isinstance(r, nef.Tensor)
    assert (a + t).tolist() == [11.0, 22.0]
    assert (a @ t).item() == 50.0


def test_ufunc_reduce_and_out():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = nef.tensor(a)
    for uf in (np.add, np.multiply, np.maximum, np.minimum):
        got = uf.reduce(t, axis=1)
        assert isinstance(got, nef.Tensor)
        np.testing.assert_allclose(got.numpy(), uf.reduce(a, axis=1))
    b = np.array([[True, False], [True, True]])
    np.testing.assert_array_equal(np.logical_and.reduce(nef.tensor(b)).numpy(),
                                  np.logical_and.reduce(b))
    out = np.empty((3, 4), np.float32)
    r = np.exp(t, out=out)
    assert r is out
    np.testing.assert_allclose(out, np.exp(a), rtol=1e-6)
    acc = np.zeros((3, 4), np.float32)
    acc += t  # in place into numpy's array
    np.testing.assert_array_equal(acc, a)
    with pytest.raises(nef.NEFTypeError):
        np.add(a, a, out=(t,))


def test_ufuncs_nef_lacks_compute_values_or_explain():
    a = np.array([0.5, 1.5], np.float32)
    t = nef.tensor(a)
    got = np.arctan2(t, t)  # no NEF op: computed by numpy on the values
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, np.arctan2(a, a))
    np.testing.assert_allclose(np.log1p(t), np.log1p(a))
    np.testing.assert_allclose(np.add.accumulate(t), np.add.accumulate(a))
    np.testing.assert_allclose(np.add(t, 1, where=np.array([True, False]), out=np.zeros(2)),
                               [1.5, 0])
    x = nef.placeholder("x", (2,))
    assert isinstance(np.exp(x), nef.Tensor)  # lazy ufuncs work on symbolic tensors
    with pytest.raises(nef.NEFUnsupportedError, match=r"numpy.arctan2.*placeholder 'x'"):
        np.arctan2(x, t)


# ---- __array_function__ ---------------------------------------------------------------------

def test_array_functions_are_lazy_and_match_numpy():
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((3, 4)).astype(np.float32)
    t, u = nef.tensor(a), nef.tensor(b)
    checks = [
        (lambda m, x, y: m.sum(x), 1e-5), (lambda m, x, y: m.sum(x, axis=0, keepdims=True), 1e-5),
        (lambda m, x, y: m.mean(x, axis=1), 1e-5), (lambda m, x, y: m.max(x, axis=0), 0),
        (lambda m, x, y: m.min(x), 0), (lambda m, x, y: m.amax(x, 1), 0),
        (lambda m, x, y: m.prod(x, axis=1), 1e-5), (lambda m, x, y: m.argmax(x, axis=1), 0),
        (lambda m, x, y: m.argmin(x), 0), (lambda m, x, y: m.std(x, axis=0), 1e-5),
        (lambda m, x, y: m.var(x, ddof=1), 1e-5), (lambda m, x, y: m.all(x > -5, axis=1), 0),
        (lambda m, x, y: m.any(x > 1), 0), (lambda m, x, y: m.where(x > 0, x, y), 0),
        (lambda m, x, y: m.where(x > 0, x, 0.0), 0),
        (lambda m, x, y: m.concatenate([x, y], axis=1), 0),
        (lambda m, x, y: m.concatenate([x, y], axis=None), 0),
        (lambda m, x, y: m.stack([x, y], axis=-1), 0), (lambda m, x, y: m.reshape(x, (4, 3)), 0),
        (lambda m, x, y: m.transpose(x), 0), (lambda m, x, y: m.clip(x, -0.5, 0.5), 0),
        (lambda m, x, y: m.squeeze(m.expand_dims(x, 0)), 0),
        (lambda m, x, y: m.broadcast_to(x[0], (2, 4)), 0),
        (lambda m, x, y: m.take(x, [2, 0], axis=1), 0), (lambda m, x, y: m.round(x, 2), 1e-6),
        (lambda m, x, y: m.isclose(x, y, atol=1.0), 0), (lambda m, x, y: m.dot(x, y.T), 1e-5),
        (lambda m, x, y: m.matmul(x, y.T), 1e-5), (lambda m, x, y: m.ravel(x), 0),
        (lambda m, x, y: m.zeros_like(x), 0), (lambda m, x, y: m.ones_like(x, dtype=m.int32), 0),
        (lambda m, x, y: m.full_like(x, 7), 0), (lambda m, x, y: m.copy(x), 0),
        (lambda m, x, y: m.split(x, 2, axis=1)[1], 0),
    ]
    for i, (fn, rtol) in enumerate(checks):
        nef.reset_stats()
        got = fn(np, t, u)
        assert isinstance(got, nef.Tensor), i
        if i != 34:  # copy() computes its snapshot at once
            assert nef.stats()["graphs_executed"] == 0, i
        want = fn(np, a, b)
        assert got.shape == np.shape(want), i
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64),
                                   np.asarray(want, dtype=np.float64), rtol=rtol, atol=1e-6,
                                   err_msg=str(i))
    assert np.shape(t) == (3, 4) and np.ndim(t) == 2 and np.size(t) == 12
    assert np.allclose(t, nef.tensor(a + 1e-9)) is True


def test_array_functions_nef_lacks_compute_values_or_explain():
    a = np.array([[3.0, 1.0], [2.0, 4.0]], np.float32)
    t = nef.tensor(a)
    for fn in (np.cumsum, np.sort, np.linalg.norm, np.diff, np.median):
        got = fn(t)
        np.testing.assert_allclose(got, fn(a))
    np.testing.assert_array_equal(np.where(t > 2)[0], np.where(a > 2)[0])  # nonzero form
    np.testing.assert_allclose(np.sum(t, initial=10), np.sum(a, initial=10))
    x = nef.placeholder("x", (2, 2))
    with pytest.raises(nef.NEFUnsupportedError, match=r"numpy.cumsum.*placeholder 'x'"):
        np.cumsum(x)
    assert isinstance(np.sum(x, axis=0), nef.Tensor)


# ---- dtypes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALL)
def test_nef_dtypes_are_numpy_dtypes(name):
    d = nef.as_dtype(name)
    npd = np_dtype(name)
    assert np.dtype(d) == npd
    assert np.zeros(2, dtype=d).dtype == npd
    assert np.arange(3).astype(d).dtype == npd
    assert np.asarray([1, 0], dtype=d).dtype == npd
    assert d == npd and d == name
    assert hash(d) == hash(npd)  # consistent with == against numpy dtypes
    assert {npd: 1}[d] == 1 and {d: 1}[npd] == 1
    assert len({d, npd, nef.as_dtype(npd)}) == 1
    assert d.dtype == npd


def test_dtype_hash_is_consistent_across_all_dtypes():
    dts = [nef.as_dtype(n) for n in ALL]
    for x in dts:
        for y in dts:
            assert (x == y) == (x is y)
            if x == y:
                assert hash(x) == hash(y)
        assert x != None  # noqa: E711


# ---- DLPack ---------------------------------------------------------------------------------

NUMPY_DLPACK = [d for d in ALL if d != "bfloat16"]  # numpy has no bfloat16 DLPack type


@pytest.mark.parametrize("dtype,seed", cases(NUMPY_DLPACK, prefix="dl"))
def test_dlpack_numpy_to_nef_is_zero_copy(dtype, seed):
    rng = np.random.default_rng(seed)
    base = random_array(rng, (5, 6), dtype)
    for view in (base, base[1:, ::2], base.T, base[::-1], base[:, 3], base[2, 1:2]):
        t = nef.from_dlpack(view)
        assert t.dtype == dtype and t.shape == view.shape
        out = t.numpy()
        np.testing.assert_array_equal(out, view)
        if view.size:
            assert np.shares_memory(out, view)
        assert_close(t * 1, view, dtype) if dtype in FLOATS else \
            np.testing.assert_array_equal((t * 1).numpy(), view)


@pytest.mark.parametrize("dtype,seed", cases(NUMPY_DLPACK, prefix="dlo"))
def test_dlpack_nef_to_numpy_is_zero_copy(dtype, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, (4, 7), dtype)
    t = nef.tensor(a)
    assert t.__dlpack_device__() == (1, 0)
    for src in (t, t[1:, ::3], t.T, t[::-1, 2]):
        got = np.from_dlpack(src)
        np.testing.assert_array_equal(got, src.numpy())
        assert np.shares_memory(got, src.numpy())
        assert not got.flags.writeable  # NEF values are immutable
    computed = nef.exp(t.astype(nef.float32)) if dtype != "bool" else ~t
    got = np.from_dlpack(computed)
    np.testing.assert_array_equal(got, computed.numpy())
    assert np.shares_memory(got, computed.numpy())


def test_dlpack_copies_and_versions():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = nef.tensor(a) + 1
    c = np.from_dlpack(t, copy=True)
    assert c.flags.writeable and not np.shares_memory(c, t.numpy())
    c[0, 0] = 100
    assert t.numpy()[0, 0] == 1
    legacy = t.__dlpack__()  # no max_version: a pre-1.0 "dltensor" capsule
    assert "dltensor" in repr(legacy)
    t2 = nef.from_dlpack(legacy)
    assert np.shares_memory(t2.numpy(), t.numpy())
    with pytest.raises(nef.NEFValidationError, match="once"):
        nef.from_dlpack(legacy)  # consumed
    versioned = t.__dlpack__(max_version=(1, 0))
    assert "dltensor_versioned" in repr(versioned)
    np.testing.assert_array_equal(nef.from_dlpack(versioned).numpy(), a + 1)
    assert nef.from_dlpack(t) is t
    copied = nef.from_dlpack(a, copy=True)
    assert not np.shares_memory(copied.numpy(), a)


def test_dlpack_bfloat16_and_nef_to_nef():
    a = np.array([[1.5, -2.25], [3.0, 0.0]], ml_dtypes.bfloat16)
    t = nef.tensor(a)
    cap = t.__dlpack__(max_version=(1, 0))
    t2 = nef.from_dlpack(cap)
    assert t2.dtype == nef.bfloat16 and t2.tolist() == [[1.5, -2.25], [3.0, 0.0]]
    assert np.shares_memory(t2.numpy(), a)


def test_dlpack_keeps_the_producer_alive():
    a = np.arange(1000, dtype=np.float64)
    base = sys.getrefcount(a)
    t = nef.from_dlpack(a)
    assert sys.getrefcount(a) > base
    del a
    gc.collect()
    assert t.numpy()[999] == 999.0
    b = np.from_dlpack(nef.tensor(np.arange(5, dtype=np.int32)) * 2)
    gc.collect()
    assert b.tolist() == [0, 2, 4, 6, 8]  # the capsule keeps NEF's storage alive
    x = np.arange(10, dtype=np.float32)
    base = sys.getrefcount(x)
    t = nef.from_dlpack(x)
    del t
    gc.collect()
    assert sys.getrefcount(x) == base  # the producer's deleter ran


class _FakeDevice:
    """A DLPack producer whose data is on a CUDA device."""

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, **kw):
        raise BufferError("cannot move to the host")


class _Complex64Producer:
    def __init__(self):
        self.a = np.arange(4, dtype=np.complex64)

    def __dlpack__(self, **kw):
        return self.a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


def test_dlpack_errors():
    with pytest.raises(nef.NEFDeviceError, match=r"\(2, 0\)"):
        nef.from_dlpack(_FakeDevice())
    with pytest.raises(nef.NEFTypeError, match="complex64"):
        nef.from_dlpack(_Complex64Producer())
    with pytest.raises(nef.NEFTypeError, match="complex"):
        nef.from_dlpack(np.arange(3, dtype=np.complex128).__dlpack__())
    with pytest.raises(nef.NEFTypeError, match="DLPack"):
        nef.from_dlpack(object())
    t = nef.tensor([1.0])
    with pytest.raises(nef.NEFBufferError):
        t.__dlpack__(dl_device=(2, 0))
    with pytest.raises(BufferError):
        t.__dlpack__(stream=1)
    x = nef.placeholder("x", (2,))
    with pytest.raises(nef.NEFValidationError, match="placeholder 'x'"):
        np.from_dlpack(x * 2)


def test_no_leak_report_when_tensors_outlive_the_script():
    """A tensor sharing a numpy array that NEF produced (its base holds NEF memory), still a
    global at exit: the interpreter's teardown drops the array (no "nanobind: leaked" report),
    and a value computed from it is right before that."""
    import subprocess
    import sys
    code = ("import numpy as np, nef\n"
            "a = (nef.tensor(np.arange(6, dtype=np.float32)) * 2).numpy()\n"
            "T = nef.tensor(a)\n"
            "del a\n"
            "print((T + 1).numpy().tolist())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[1.0, 3.0, 5.0, 7.0, 9.0, 11.0]"
    assert "leaked" not in r.stderr, r.stderr


# ---- Tensor.numpy(): a read-only view through __array_struct__ ----------------------------


@pytest.mark.parametrize("dtype", ALL)
def test_numpy_views_every_dtype_and_layout(dtype):
    rng = np.random.default_rng(20261205)
    x = random_array(rng, (3, 5, 4), dtype)
    t = nef.from_numpy(x)
    cases_ = [(t, x), (t[:, ::-1, ::2], x[:, ::-1, ::2]),
              (t.transpose([2, 0, 1]), x.transpose(2, 0, 1)), (t[1:1], x[1:1]),
              (t[2, 3, 1], x[2, 3, 1])]
    for lazy, want in cases_:
        for value in (lazy, lazy.execute()):  # through the run, then the computed value
            got = value.numpy()
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
            assert not got.flags.writeable
            with pytest.raises(ValueError):
                got[...] = want


def test_numpy_view_keeps_nef_memory_alive_and_reads_are_independent():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = (nef.from_numpy(x) * 2).execute()
    a, b = t.numpy(), t.numpy()
    assert a.ctypes.data == b.ctypes.data  # both view the one computed value: no copy
    del t
    gc.collect()
    np.testing.assert_array_equal(a, x * 2)
    np.testing.assert_array_equal(np.asarray(b), x * 2)
