"""The idioms numpy users reach for first (issue 11): .all()/.any(), allclose/isclose, eye,
linspace, std/var, round, format, copy, pickling, integer // and %, nef.random with numpy's
signatures; and the API's hygiene: docstrings, type information, NEF errors only."""

import copy
import inspect
from fractions import Fraction
import pickle
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from conftest import ALL, FLOATS, INTS, assert_close, cases, f64, np_dtype, random_array

import nef

# ---- all / any ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,seed", cases(ALL, prefix="allany"))
def test_all_any_match_numpy(dtype, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, (3, 4, 5), dtype, -1, 1)
    if dtype in FLOATS:
        a[0, 0, 0] = np.nan  # NaN is nonzero
    t = nef.tensor(a)
    for axis in (None, 0, 1, -1, (0, 2)):
        for keepdims in (False, True):
            for name in ("all", "any"):
                got = getattr(t, name)(axis=axis, keepdims=keepdims)
                want = getattr(np, name)(a, axis=axis, keepdims=keepdims)
                assert got.dtype == nef.bool_
                np.testing.assert_array_equal(got.numpy(), want)
                np.testing.assert_array_equal(getattr(nef, name)(a, axis, keepdims).numpy(),
                                              want)
    e = nef.zeros((0, 3))
    assert e.all().item() is True and e.any().item() is False
    assert bool(nef.tensor([1, 2]).all()) and not nef.tensor([0, 0]).any()


# ---- isclose / allclose ---------------------------------------------------------------------

def test_isclose_allclose_match_numpy():
    inf, nan = np.inf, np.nan
    a = np.array([1.0, 1.0 + 1e-9, 1.0, inf, inf, -inf, nan, nan, 0.0, 1e-9, 1.0, 1.0])
    b = np.array([1.0, 1.0, 1.1, inf, -inf, -inf, nan, 1.0, 1e-9, 0.0, inf, 1.00001])
    for dt in ("float64", "float32"):
        x, y = a.astype(dt), b.astype(dt)
        for kw in ({}, {"equal_nan": True}, {"rtol": 0.2}, {"atol": 0.5, "rtol": 0}):
            got = nef.isclose(nef.tensor(x), nef.tensor(y), **kw)
            np.testing.assert_array_equal(got.numpy(), np.isclose(x, y, **kw), err_msg=str(kw))
            assert nef.allclose(x, y, **kw) == np.allclose(x, y, **kw)
    i, j = np.array([1, 5, 100]), np.array([1, 6, 101])
    np.testing.assert_array_equal(nef.isclose(i, j, rtol=0.01).numpy(),
                                  np.isclose(i, j, rtol=0.01))
    assert nef.allclose(nef.ones(3), 1.0) is True
    assert nef.allclose([1.0, 2.0], [1.0, 2.1]) is False


# ---- eye / identity / linspace --------------------------------------------------------------

@pytest.mark.parametrize("n,m,k", [(3, None, 0), (4, 6, 1), (5, 3, -2), (0, None, 0),
                                   (3, 3, 5), (1, 4, -1)])
def test_eye_matches_numpy(n, m, k):
    for dt in ("float32", "int32", "bool", "bfloat16"):
        got = nef.eye(n, m, k, dtype=dt)
        want = np.eye(n, m, k, dtype=np_dtype(dt))
        assert got.dtype == dt and got.shape == want.shape
        np.testing.assert_array_equal(f64(got.numpy()), f64(want))
    np.testing.assert_array_equal(nef.identity(4).numpy(), np.identity(4, np.float32))
    assert nef.eye(2).dtype == nef.float32


@pytest.mark.parametrize("start,stop,num,endpoint", [
    (0, 1, 5, True), (0, 1, 5, False), (-3.5, 7.25, 50, True), (2, -2, 7, True),
    (1, 1, 4, True), (0, 10, 1, True), (0, 10, 1, False), (0, 10, 0, True),
    (1e-3, 1e3, 101, False),
])
def test_linspace_matches_numpy(start, stop, num, endpoint):
    want = np.linspace(start, stop, num, endpoint=endpoint)
    got = nef.linspace(start, stop, num, endpoint=endpoint, dtype=nef.float64)
    np.testing.assert_array_equal(got.numpy(), want)  # the same float64 arithmetic
    g32 = nef.linspace(start, stop, num, endpoint=endpoint)
    assert g32.dtype == nef.float32
    np.testing.assert_array_equal(g32.numpy(), want.astype(np.float32))
    gi = nef.linspace(start, stop, num, endpoint=endpoint, dtype=nef.int32)
    np.testing.assert_array_equal(gi.numpy(),
                                  np.linspace(start, stop, num, endpoint=endpoint,
                                              dtype=np.int32))
    t, step = nef.linspace(start, stop, num, endpoint=endpoint, retstep=True)
    _, want_step = np.linspace(start, stop, num, endpoint=endpoint, retstep=True)
    assert (np.isnan(step) and np.isnan(want_step)) or step == want_step
    with pytest.raises(nef.NEFValidationError):
        nef.linspace(0, 1, -1)


# ---- std / var ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,seed", cases(FLOATS + ["int32", "uint8", "bool"], prefix="var"))
def test_std_var_match_numpy(dtype, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, (4, 5, 6), dtype, -3, 5)
    t = nef.tensor(a)
    out = dtype if dtype in FLOATS else "float32"  # ints: NEF's default float
    for axis in (None, 0, (1, 2), -1):
        for ddof in (0, 1):
            for keepdims in (False, True):
                for name in ("var", "std"):
                    got = getattr(t, name)(axis=axis, ddof=ddof, keepdims=keepdims)
                    want = getattr(np, name)(f64(a), axis=axis, ddof=ddof, keepdims=keepdims)
                    assert got.dtype == out
                    assert_close(got, want, out, scale=8)
    one = nef.tensor([3.0])
    assert np.isnan(one.var(ddof=1).item()) or np.isinf(one.var(ddof=1).item())
    assert nef.var([1.0, 2.0, 3.0, 4.0]).item() == pytest.approx(1.25)


# ---- round ----------------------------------------------------------------------------------

def test_round_matches_numpy():
    rng = np.random.default_rng(3)
    for dt in ("float32", "float64", "float16"):
        a = (rng.standard_normal(200) * 100).astype(dt)
        a[:6] = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 1.25], dt)
        for d in (0, 1, 2, -1, -2):
            got = nef.round(nef.tensor(a), d)
            want = np.round(a, d)
            assert got.dtype == dt
            np.testing.assert_array_equal(got.numpy(), want, err_msg=f"{dt} {d}")
    for dt in ("int8", "int32", "int64", "uint8"):
        a = rng.integers(np.iinfo(dt).min // 2, np.iinfo(dt).max // 2, 300).astype(dt)
        a[:4] = np.array([15, 25, 5, 35], dt)
        if dt != "uint8":
            a[4:8] = np.array([-15, -25, -5, -35], dt)
        for d in (0, 2, -1, -2):
            got = nef.tensor(a).round(d)
            # numpy rounds int64 through float64 (inexact beyond 2**53); NEF is exact.
            f = 10 ** max(-d, 0)
            want = np.array([round(Fraction(int(v), f)) * f for v in a], dtype=dt) \
                if dt == "int64" else np.round(a, d)
            assert got.dtype == dt
            np.testing.assert_array_equal(got.numpy(), want, err_msg=f"{dt} {d}")


def test_builtin_round_and_format():
    t = nef.tensor([1.25, 2.5, -0.5])
    assert isinstance(round(t), nef.Tensor)
    assert round(t).tolist() == [1.0, 2.0, -0.0]
    assert round(t, 1).tolist() == np.round(np.array([1.25, 2.5, -0.5], np.float32), 1).tolist()
    s = nef.tensor(3.14159)
    assert f"{s:.2f}" == "3.14" and format(s, "8.3f") == "   3.142"
    assert f"{nef.tensor([[2.5]]):.1e}" == "2.5e+00"
    assert f"{nef.tensor(7):04d}" == "0007" and f"{nef.tensor(True)}" == "True"
    assert f"{nef.tensor(1.5) * 2:.1f}" == "3.0"
    assert f"{t}" == str(t)
    with pytest.raises(nef.NEFTypeError, match=r"\(3,\)"):
        f"{t:.2f}"


# ---- copy and pickling ----------------------------------------------------------------------

def test_copy_is_a_snapshot():
    a = np.arange(4, dtype=np.float32)
    t = nef.tensor(a)  # borrows a
    c = t.copy()
    c2, c3, c4 = copy.copy(t), copy.deepcopy(t), nef.copy(t)
    a[0] = 100
    assert t.numpy()[0] == 100  # shared, as documented
    for x in (c, c2, c3, c4):
        assert x.numpy()[0] == 0 and not np.shares_memory(x.numpy(), a)
    lazy = nef.tensor(a) * 2
    snap = lazy.copy()
    a[1] = 50
    assert snap.tolist()[1] == 2.0
    x = nef.placeholder("x", (2,))
    assert (x * 2).copy().placeholders == ["x"]


@pytest.mark.parametrize("dtype", ALL)
def test_pickle_round_trip(dtype):
    rng = np.random.default_rng(5)
    a = random_array(rng, (3, 4), dtype)
    for t in (nef.tensor(a), nef.tensor(a).T, nef.tensor(a)[::2, 1:], nef.tensor(a[0, 0])):
        u = pickle.loads(pickle.dumps(t))
        assert isinstance(u, nef.Tensor) and u.dtype == t.dtype and u.shape == t.shape
        np.testing.assert_array_equal(u.numpy(), t.numpy())
    computed = nef.tensor(a).astype("float32") + 1 if dtype != "bool" else ~nef.tensor(a)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(computed)).numpy(),
                                  computed.numpy())


def test_pickle_of_symbolic_tensor_explains():
    x = nef.placeholder("x", (2,))
    with pytest.raises(nef.NEFUnsupportedError, match="placeholder 'x'.*build"):
        pickle.dumps(x + 1)
    assert pickle.loads(pickle.dumps(nef.float32)) is nef.float32


# ---- integer // and % -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype,seed", cases(INTS, prefix="idiv"))
def test_integer_floordiv_and_mod_match_numpy(dtype, seed):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    a = rng.integers(info.min, int(info.max) + 1, 500, dtype=dtype)
    b = rng.integers(info.min, int(info.max) + 1, 500, dtype=dtype)
    b[:50] = rng.integers(-3 if info.min < 0 else 0, 4, 50).astype(dtype)  # small and 0
    a[:5] = np.array([info.min, info.max, 0, 1, info.max - 1], dtype)
    b[:5] = np.array([1, 1, 0, 0, 7], dtype)
    if info.min < 0:
        a[5], b[5] = info.min, -1  # numpy: wraps
        a[6:10] = np.array([-7, 7, -7, 7], dtype)
        b[6:10] = np.array([2, -2, -2, 2], dtype)
    ta, tb = nef.tensor(a), nef.tensor(b)
    with np.errstate(all="ignore"):
        for got, want in [(ta // tb, a // b), (ta % tb, a % b), (nef.floor_divide(a, b), a // b),
                          (ta // 3, a // 3), (100 // tb if info.max >= 100 else 1 // tb,
                                              (100 if info.max >= 100 else 1) // b)]:
            assert got.dtype == dtype
            np.testing.assert_array_equal(got.numpy(), want)
        q, r = divmod(ta, tb)
        np.testing.assert_array_equal(q.numpy(), a // b)
        np.testing.assert_array_equal(r.numpy(), a % b)


@pytest.mark.parametrize("dtype,seed", cases(FLOATS, prefix="fdiv"))
def test_float_floordiv_matches_numpy(dtype, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, (200,), dtype, -50, 50)
    b = random_array(rng, (200,), dtype, -4, 4)
    a[:6] = np.array([1.0, -1.0, 0.0, np.inf, 7.0, -0.0]).astype(np_dtype(dtype))
    b[:6] = np.array([0.1, np.inf, -1.0, 2.0, 0.0, 3.0]).astype(np_dtype(dtype))
    with np.errstate(all="ignore"):
        want = (a.astype(np.float32) // b.astype(np.float32)).astype(np_dtype(dtype)) \
            if dtype in ("float16", "bfloat16") else a // b
    got = nef.tensor(a) // nef.tensor(b)
    assert got.dtype == dtype
    np.testing.assert_array_equal(f64(got.numpy()), f64(want))
    assert (nef.tensor(1.0) // 0.1).item() == 9.0  # numpy's answer (floor(1 / 0.1) is 10)


# ---- nef.random with numpy's signatures -----------------------------------------------------

def test_random_numpy_signatures():
    assert nef.random.randn(2, 2).shape == (2, 2)  # the example
    assert nef.random.rand(3).shape == (3,) and nef.random.randn().shape == ()
    assert nef.random.random((2, 3)).shape == (2, 3)
    assert nef.random.random_sample(size=4).shape == (4,)
    assert nef.random.standard_normal((5,)).shape == (5,)
    n = nef.random.normal(10, 2, size=(20000,), seed=1).numpy()
    assert abs(n.mean() - 10) < 0.1 and abs(n.std() - 2) < 0.1
    u = nef.random.uniform(-1, 3, 20000, seed=2).numpy()
    assert u.min() >= -1 and u.max() < 3 and abs(u.mean() - 1) < 0.05
    assert nef.random.normal().shape == () and nef.random.uniform().dtype == nef.float32
    loc = np.array([0.0, 100.0])
    p = nef.random.normal(loc, 0.01, seed=3)
    assert p.shape == (2,) and abs(p.numpy()[1] - 100) < 1
    q = nef.random.uniform(np.zeros((3, 1)), np.array([1.0, 10.0]), seed=4)
    assert q.shape == (3, 2) and q.numpy()[:, 1].max() < 10 and q.numpy().min() >= 0
    r = nef.random.randint(5, size=10000, seed=5).numpy()
    assert r.dtype == np.int64 and r.min() == 0 and r.max() == 4
    r = nef.random.randint(-3, 3, (100, 100), dtype=nef.int8, seed=6).numpy()
    assert r.dtype == np.int8 and r.min() == -3 and r.max() == 2
    counts = np.bincount(r.ravel() + 3)
    assert counts.min() > 1500  # roughly uniform over the 6 values
    np.testing.assert_array_equal(nef.random.randn(3, seed=7).numpy(),
                                  nef.random.randn(3, seed=7).numpy())
    nef.random.seed(9)
    s1 = nef.random.rand(4).numpy()
    nef.random.seed(9)
    np.testing.assert_array_equal(s1, nef.random.rand(4).numpy())
    with pytest.raises(nef.NEFOverflowError):
        nef.random.randint(0, 300, 3, dtype=nef.uint8)
    with pytest.raises(nef.NEFValidationError):
        nef.random.randint(3, 3)
    with pytest.raises(nef.NEFTypeError):
        nef.random.rand(2.5)


# ---- hygiene: docstrings, types, errors -----------------------------------------------------

def _public_callables():
    for name in nef.__all__:
        obj = getattr(nef, name)
        if callable(obj) and not isinstance(obj, nef.DType):
            yield f"nef.{name}", obj
    for name in nef.random.__all__:
        yield f"nef.random.{name}", getattr(nef.random, name)
    for cls in (nef.Tensor, nef.Graph, nef.Profile, nef.DType):
        for name, member in vars(cls).items():
            if name.startswith("_") and name not in ("__init__",):
                continue
            if callable(member) or isinstance(member, property):
                yield f"{cls.__name__}.{name}", member


def test_every_public_function_has_a_docstring():
    missing = []
    for name, obj in _public_callables():
        if isinstance(obj, type) and issubclass(obj, BaseException):
            doc = obj.__doc__
        else:
            doc = getattr(obj, "__doc__", None)
        if not doc or not doc.strip() or (name.endswith("__init__") is False and
                                           doc == type(obj).__doc__ and
                                           not isinstance(obj, type)):
            missing.append(name)
    missing = [m for m in missing if not m.endswith(".__init__")]
    assert not missing, missing
    assert "zeros" in (nef.zeros.__doc__ or "").lower()


def test_type_information_ships_with_the_package():
    pkg = Path(nef.__file__).parent
    assert (pkg / "py.typed").is_file()
    stub = pkg / "_nef.pyi"
    assert stub.is_file()
    declared = {line.split("(")[0].split(":")[0].split()[1]
                for line in stub.read_text().splitlines()
                if line.startswith(("def ", "class "))}
    actual = {n for n in dir(nef._nef) if not n.startswith("__")}
    assert actual <= declared | {"Tensor", "LoadedGraph"} and declared >= actual, \
        sorted(actual - declared)
    for name, obj in _public_callables():
        if inspect.isfunction(obj) and not name.startswith(("Tensor.__", "Graph.__")):
            sig = inspect.signature(obj)
            assert sig.return_annotation is not inspect.Signature.empty, name


BAD_VALUES = ["x", None, object(), 1.5, -7, [[1, 2], [3]], {"a": 1}, (1, "b"), float("nan"),
              2**70, nef.float32]
SKIP = {"nef.build", "nef.load", "nef.from_onnx", "nef.config", "nef.device", "nef.devices",
        "nef.stats", "nef.reset_stats", "nef.Graph", "nef.Profile", "nef.profile_summary"}


def test_every_error_is_a_nef_error():
    """Calls every public function with bad arguments: whatever it raises is a NEFError."""
    t = nef.tensor([[1.0, 2.0], [3.0, 4.0]])
    escaped = []
    for name, fn in _public_callables():
        if name in SKIP or "." in name[4:] and not name.startswith("nef.random"):
            continue
        if isinstance(fn, type) and issubclass(fn, BaseException):
            continue
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            sig = None
        for bad in BAD_VALUES:
            for args in ((bad,), (t, bad), (bad, t), (t, t, bad)):
                if sig is not None:
                    try:
                        sig.bind(*args)
                    except TypeError:
                        continue  # Python's own arity check, not an argument NEF judges
                try:
                    r = fn(*args)
                    if isinstance(r, nef.Tensor):
                        r.numpy()
                except nef.NEFError:
                    pass
                except Exception as e:  # noqa: BLE001
                    escaped.append(f"{name}{tuple(type(a).__name__ for a in args)}: "
                                   f"{type(e).__name__}: {e}")
    assert not escaped, "\n".join(escaped[:40])


def test_operators_with_foreign_objects():
    t = nef.tensor([1.0])
    for bad in ("a", object(), None, b"x"):
        with pytest.raises(nef.NEFTypeError):
            t + bad
        with pytest.raises(nef.NEFTypeError):
            bad * t
        with pytest.raises(nef.NEFTypeError):
            t < bad
    assert (t == "a") is False and (t != None) is True  # noqa: E711  Python's fallback

    class Other:
        def __radd__(self, o):
            return "other"

    assert t + Other() == "other"  # a type with its own reflected operator gets its turn
    with pytest.raises(nef.NEFIndexError):
        t[5]
    with pytest.raises(IndexError):
        t[0, 0]
    with pytest.raises(nef.NEFTypeError):
        t[0] = 1
    with pytest.raises(nef.NEFTypeError):
        len(nef.tensor(1.0))
    with pytest.raises(nef.NEFShapeError):
        bool(nef.tensor([1, 2]))
    assert isinstance(nef.bfloat16.dtype, np.dtype) and nef.bfloat16.dtype == ml_dtypes.bfloat16


def test_random_refuses_what_numpy_refuses():
    """numpy.random.normal raises for a negative scale and negative sizes; NEF sampled with a
    negative standard deviation and named its internal op in the size error."""
    for scale in (-1.0, -1, np.array([1.0, -0.5]), [0.5, -2.0], nef.tensor([1.0, -1.0]),
                  nef.tensor([1.0, -1.0], dtype=nef.bfloat16)):
        with pytest.raises(ValueError):
            np.random.default_rng(0).normal(0.0, np.asarray(scale, np.float64))
        with pytest.raises(nef.NEFValidationError, match=r"\[random.normal\] scale < 0"):
            nef.random.normal(0.0, scale, seed=1)
    assert np.isnan(nef.random.normal(0.0, float("nan"), 2, seed=1).numpy()).all()
    assert nef.random.normal(0.0, 0.0, 3, seed=1).numpy().tolist() == [0.0, 0.0, 0.0]
    for make, name in ((lambda: nef.random.randn(2, -1), "random.randn"),
                       (lambda: nef.random.rand(-3), "random.rand"),
                       (lambda: nef.random.normal(size=(2, -2)), "random.normal"),
                       (lambda: nef.random.uniform(size=-1), "random.uniform"),
                       (lambda: nef.random.randint(3, size=(-1,)), "random.randint")):
        with pytest.raises(nef.NEFShapeError, match=rf"\[{name}\] negative dimensions"):
            make()
