"""Creation, dtypes and defaults, operators and weak scalars, numpy interop, laziness, stats."""

import gc
import os

import ml_dtypes
import numpy as np
import pytest
from conftest import ALL, FLOATS, assert_close, cases, f64, np_dtype, random_array

import nef

# ---- dtypes and defaults --------------------------------------------------------------------


def test_dtype_objects():
    for name in ALL:
        t = nef.as_dtype(name)
        assert str(t) == name and t.name == name
        assert t == name and t == np_dtype(name)
    assert nef.bool is nef.bool_ and str(nef.bool_) == "bool"
    assert repr(nef.float32) == "nef.float32"
    assert nef.float32 != nef.float64 and nef.float32 != None  # noqa: E711
    with pytest.raises(nef.NEFTypeError):
        nef.as_dtype("complex64")


@pytest.mark.parametrize("data,dtype", [
    ([1.0, 2.0], "float32"), (2.5, "float32"), ([[1, 2], [3, 4]], "int64"), (7, "int64"),
    ([True, False], "bool"), (True, "bool"), ([1, 2.5], "float32"), ([], "float32"),
    ([[True, 2]], "int64"),
])
def test_python_data_defaults(data, dtype):
    t = nef.tensor(data)
    assert str(t.dtype) == dtype
    ref = np.asarray(data)
    assert t.shape == ref.shape
    np.testing.assert_array_equal(f64(t.numpy()), f64(ref))


@pytest.mark.parametrize("dtype,seed", cases(ALL, prefix="np"))
def test_numpy_keeps_dtype_and_is_zero_copy(dtype, seed):
    x = random_array(np.random.default_rng(seed), (3, 7), dtype, 0, 9)
    t = nef.tensor(x)
    assert str(t.dtype) == dtype and t.shape == (3, 7)
    out = t.numpy()
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, x)
    assert np.shares_memory(out, x)  # borrowed, not copied
    assert not out.flags.writeable


def test_numpy_strided_and_negative_strides():
    base = np.arange(60, dtype=np.float64).reshape(3, 4, 5)
    for view in (base[:, ::2, ::-1], base.T, base[::-1, 1, :], base[:, :, 2], base[..., ::-2]):
        t = nef.tensor(view)
        np.testing.assert_array_equal(t.numpy(), view)
        np.testing.assert_array_equal((t * 2).numpy(), view * 2)


def test_numpy_conversions():
    be = np.arange(6, dtype=">f4").reshape(2, 3)
    t = nef.tensor(be)
    assert t.dtype == nef.float32
    np.testing.assert_array_equal(t.numpy(), be.astype("<f4"))
    for dt in (np.int16, np.uint16, np.uint32, np.uint64):
        src = np.arange(3, dtype=dt)
        t = nef.tensor(src)
        assert t.dtype == np.dtype(dt) and t.numpy().dtype == np.dtype(dt)
        np.testing.assert_array_equal(t.numpy(), src)
    swapped = np.array([1, 2**40 + 3], ">u8")
    np.testing.assert_array_equal(nef.tensor(swapped).numpy(), swapped.astype("<u8"))
    with pytest.raises(nef.NEFTypeError):
        nef.tensor(np.array([1 + 2j]))
    with pytest.raises(TypeError):
        nef.tensor(np.array(["a"]))
    assert nef.tensor(np.float64(1.5)).dtype == nef.float64
    assert nef.tensor([1.0, 2.0], dtype=nef.float64).dtype == nef.float64
    assert nef.tensor(np.ones(3, np.float32), dtype="float16").dtype == nef.float16
    bf = np.array([1.5, -2.25], ml_dtypes.bfloat16)
    tb = nef.tensor(bf)
    assert tb.dtype == nef.bfloat16 and tb.numpy().dtype == bf.dtype
    assert tb.tolist() == [1.5, -2.25]


def test_numpy_owner_lifetime():
    x = np.arange(1000, dtype=np.float32)
    t = nef.tensor(x) * 2
    del x
    gc.collect()
    np.testing.assert_array_equal(t.numpy(), np.arange(1000, dtype=np.float32) * 2)
    out = t.numpy()
    del t
    gc.collect()
    assert out[999] == 1998  # the numpy result keeps NEF's storage alive


def test_array_protocol():
    t = nef.tensor([[1.0, 2.0]])
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.shape == (1, 2)
    b = np.asarray(t, dtype=np.float64)
    assert b.dtype == np.float64
    c = np.array(t, copy=True)
    c[0, 0] = 9
    assert t.numpy()[0, 0] == 1.0


def test_creation_functions():
    np.testing.assert_array_equal(nef.zeros((2, 3)).numpy(), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(nef.ones(4, dtype=nef.int32).numpy(), np.ones(4, np.int32))
    f = nef.full((2, 2), 7)
    assert f.dtype == nef.int64 and f.tolist() == [[7, 7], [7, 7]]
    assert nef.full((2,), 1.5).dtype == nef.float32
    assert nef.full((), True).dtype == nef.bool_
    assert nef.zeros((0, 3)).shape == (0, 3)
    np.testing.assert_array_equal(nef.arange(5).numpy(), np.arange(5))
    assert nef.arange(5).dtype == nef.int64
    assert_close(nef.arange(0.5, 3, 0.25), np.arange(0.5, 3, 0.25), "float32")
    np.testing.assert_array_equal(nef.arange(10, 2, -3).numpy(), np.arange(10, 2, -3))
    assert nef.arange(3, 3).shape == (0,)
    assert nef.arange(5, dtype=nef.float16).dtype == nef.float16
    z = nef.zeros_like(nef.ones((2, 5), dtype=nef.int8))
    assert z.dtype == nef.int8 and z.shape == (2, 5)


def test_random_seeded():
    a = nef.random.normal(size=(1000,), seed=3)
    b = nef.random.normal(size=(1000,), seed=3)
    c = nef.random.normal(size=(1000,), seed=4)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    x = a.numpy()
    assert abs(x.mean()) < 0.15 and abs(x.std() - 1) < 0.1
    u = nef.random.uniform(2, 5, (1000,), seed=1, dtype=nef.float64).numpy()
    assert u.dtype == np.float64 and u.min() >= 2 and u.max() < 5
    n = nef.random.normal(10, 0.001, (2, 3), seed=0, dtype="bfloat16")
    assert n.dtype == nef.bfloat16 and abs(float(n.mean()) - 10) < 0.1
    nef.random.seed(5)
    s1 = nef.random.uniform(size=(4,)).numpy()
    nef.random.seed(5)
    s2 = nef.random.uniform(size=(4,)).numpy()
    np.testing.assert_array_equal(s1, s2)
    with pytest.raises(nef.NEFTypeError):
        nef.random.normal(size=(3,), seed=0, dtype=nef.int32)


# ---- operators ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,seed", cases(FLOATS + ["int32", "int64"], prefix="ops"))
def test_operators(dtype, seed):
    rng = np.random.default_rng(seed)
    a = random_array(rng, (3, 7), dtype, 1, 9)
    b = random_array(rng, (7,), dtype, 1, 9)
    ta, tb = nef.tensor(a), nef.tensor(b)
    A, B = f64(a), f64(b)
    exact = dtype not in FLOATS
    for got, ref in [(ta + tb, A + B), (ta - tb, A - B), (ta * tb, A * B), (-ta, -A),
                     (abs(-ta), A), (ta % tb, np.mod(A, B)), (ta ** 2, A ** 2)]:
        assert str(got.dtype) == dtype
        if exact:
            np.testing.assert_array_equal(f64(got.numpy()), ref)
        else:
            assert_close(got, ref, dtype, scale=4)
    assert_close(ta / tb, A / B, dtype if not exact else "float32")
    for got, ref in [(ta == tb, A == B), (ta != tb, A != B), (ta < tb, A < B),
                     (ta <= tb, A <= B), (ta > tb, A > B), (ta >= tb, A >= B)]:
        assert got.dtype == nef.bool_
        np.testing.assert_array_equal(got.numpy(), ref)
    m = random_array(rng, (7, 4), dtype, -2, 2)
    assert_close(ta @ nef.tensor(m), A @ f64(m), dtype, scale=8)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int32", "int8", "uint8"])
def test_weak_scalars_keep_dtype(dtype):
    x = nef.tensor(np.arange(1, 6).astype(np_dtype(dtype)))
    X = np.arange(1, 6, dtype=np.float64)
    for got, ref in [(x + 2, X + 2), (2 + x, 2 + X), (x * 3, X * 3), (3 * x, 3 * X),
                     (x - 1, X - 1), (10 - x, 10 - X), (x ** 2, X ** 2), (x % 3, X % 3),
                     (7 % x, 7 % X)]:
        assert str(got.dtype) == dtype, (dtype, got.dtype)
        np.testing.assert_allclose(f64(got.numpy()), ref, rtol=1e-2)
    f = x + 2.0
    want = dtype if dtype in FLOATS else "float32"  # a float scalar with ints gives float32
    assert str(f.dtype) == want
    assert str((2.0 * x).dtype) == want
    assert str((1.0 / x).dtype) == want
    assert str((x / 2).dtype) == want


def test_weak_scalar_values_and_comparisons():
    x = nef.tensor([1.0, 2.0, 3.0], dtype=nef.float16)
    assert (x > 1.5).tolist() == [False, True, True]
    assert (2 < x).tolist() == [False, False, True]
    assert (x == 2).tolist() == [False, True, False]
    assert (x + 2.5).tolist() == [3.5, 4.5, 5.5]
    assert (1 - x).tolist() == [0.0, -1.0, -2.0]
    b = nef.tensor([True, False])
    assert (b + 1).dtype == nef.int64
    assert (b & nef.tensor([True, True])).tolist() == [True, False]
    assert (b | False).tolist() == [True, False]
    assert (~b).tolist() == [False, True]
    assert (b ^ True).tolist() == [False, True]
    big = nef.tensor([0], dtype=nef.int64) + (2**60 + 1)
    assert big.tolist() == [2**60 + 1]


def test_numpy_operands_are_lazy():
    t = nef.tensor([1.0, 2.0])
    r = np.array([10.0, 20.0], np.float32) + t
    assert isinstance(r, nef.Tensor)
    assert r.tolist() == [11.0, 22.0]
    r2 = t * np.float32(3)
    assert isinstance(r2, nef.Tensor) and r2.tolist() == [3.0, 6.0]
    assert (t + [1, 1]).tolist() == [2.0, 3.0]


def test_floordiv_floats():
    x = nef.tensor([7.0, -7.0, 7.5])
    assert (x // 2).tolist() == [3.0, -4.0, 3.0]


def test_scalar_conversions_and_repr():
    s = nef.tensor([[2.5]])
    assert float(s) == 2.5 and int(s) == 2 and bool(s) is True and s.item() == 2.5
    assert isinstance(nef.tensor(3).item(), int)
    assert isinstance(nef.tensor(True).item(), bool)
    with pytest.raises(ValueError):
        bool(nef.tensor([1.0, 2.0]))
    with pytest.raises(ValueError):
        nef.tensor([1.0, 2.0]).item()
    t = nef.tensor([[1.0, 2.0], [3.0, 4.0]])
    r = repr(t)
    assert r.startswith("tensor([[1., 2.],") and r.endswith("dtype=float32)")
    assert str(t) == str(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    p = nef.placeholder("x", (2, 3))
    assert "placeholder" in repr(p)
    assert nef.tensor([1.5], dtype=nef.bfloat16).tolist() == [1.5]
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_tensor_metadata():
    t = nef.zeros((2, 0, 5), dtype=nef.int8)
    assert t.shape == (2, 0, 5) and t.ndim == 3 and t.size == 0 and t.dtype == nef.int8
    assert t.op == "full"
    s = nef.tensor(1.0)
    assert s.shape == () and s.ndim == 0 and s.size == 1
    assert nef.Tensor([1, 2]).dtype == nef.int64


# ---- laziness and stats ---------------------------------------------------------------------

def test_laziness_proved_by_stats():
    a = nef.tensor(np.ones((8, 8), np.float32))
    b = nef.tensor(np.full((8, 8), 2.0, np.float32))
    nef.reset_stats()
    before = nef.stats()
    c = nef.matmul(a, b)
    d = nef.softmax(c + 1.0)
    e = nef.layernorm(d * 2.0)
    f = e.sum(axis=0)
    after_build = nef.stats()
    assert after_build["graphs_executed"] == before["graphs_executed"]
    assert after_build["nodes_executed"] == before["nodes_executed"]
    assert not f.is_materialized
    out = f.numpy()
    ran = nef.stats()
    assert ran["graphs_executed"] > after_build["graphs_executed"]
    assert ran["nodes_executed"] > after_build["nodes_executed"]
    assert f.is_materialized
    out2 = f.numpy()
    again = nef.stats()
    assert again["graphs_executed"] == ran["graphs_executed"]
    assert again["nodes_executed"] == ran["nodes_executed"]
    np.testing.assert_array_equal(out, out2)


def test_execute_returns_self_and_plan_cache():
    x = nef.tensor(np.arange(6, dtype=np.float32))
    y = (x * 2 + 1)
    assert y.execute() is y and y.eval() is y and y.is_materialized
    nef.reset_stats()
    for _ in range(3):
        z = nef.exp(nef.tensor(np.arange(6, dtype=np.float32)) * 0.5)
        z.numpy()
    st = nef.stats()
    for key in ("graphs_executed", "nodes_executed", "kernel_cache_hits", "kernel_cache_misses",
                "plan_cache_hits", "plan_cache_misses"):
        assert key in st and isinstance(st[key], int)
    assert st["graphs_executed"] == 3
    assert st["plan_cache_hits"] + st["kernel_cache_hits"] >= 1  # warm runs reuse work


def test_evaluate_many():
    a = nef.tensor([1.0, 2.0])
    x, y = a * 2, a + 1
    nef.reset_stats()
    nef.evaluate([x, y])
    assert x.is_materialized and y.is_materialized
    assert nef.stats()["graphs_executed"] == 1
    assert x.tolist() == [2.0, 4.0] and y.tolist() == [2.0, 3.0]


def test_config_threads():
    cfg = nef.config(threads=1)
    assert cfg["threads"] == 1
    assert nef.matmul(nef.ones((33, 17)), nef.ones((17, 5))).numpy()[0, 0] == 17
    cfg = nef.config(threads=0, devices=["cpu"])
    assert cfg["threads"] >= 1 and cfg["devices"] == ["cpu"]
    assert nef.tensor([1.0, 2.0]).sum().item() == 3.0
    with pytest.raises(nef.NEFDeviceError):
        nef.config(devices=["no-such-device"])
    assert nef.config(devices=[])["devices"] is None


def test_num_threads_environment():
    # NEF_NUM_THREADS sizes the CPU pool (read back through nef.config); a bad value is a
    # structured error, not a silent default. Fresh interpreters: the variable is read per call.
    import subprocess
    import sys
    code = ("import nef, numpy as np; print(nef.config()['threads']); "
            "a = np.random.default_rng(1).random((67, 45)).astype(np.float32); "
            "np.testing.assert_allclose(nef.matmul(nef.tensor(a), nef.tensor(a.T)).numpy(), "
            "a.astype(np.float64) @ a.T, rtol=1e-5, atol=1e-5)")
    for n in ("1", "3"):
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "NEF_NUM_THREADS": n},
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == n
    bad = subprocess.run([sys.executable, "-c", "import nef; nef.config()"],
                         env={**os.environ, "NEF_NUM_THREADS": "many"}, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode != 0
    assert "NEFValidationError" in bad.stderr and "NEF_NUM_THREADS" in bad.stderr


def test_numpy_reference_released():
    import sys
    x = np.arange(10, dtype=np.float32)
    base = sys.getrefcount(x)
    t = nef.tensor(x)
    assert sys.getrefcount(x) == base + 1  # the borrowed storage holds the array
    y = (t + 1).numpy()
    del t, y
    gc.collect()
    assert sys.getrefcount(x) == base


def test_threads_execute_concurrently_without_deadlock():
    import threading
    errors = []

    def work(seed):
        try:
            rng = np.random.default_rng(seed)
            for _ in range(20):
                a = rng.standard_normal((17, 9)).astype(np.float32)
                r = nef.softmax(nef.tensor(a) @ nef.tensor(a.T)).numpy()
                np.testing.assert_allclose(r.sum(-1), 1, rtol=1e-5)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors and not any(th.is_alive() for th in threads)


def test_scalar_only_calls_get_default_dtypes():
    assert nef.exp(2.0).dtype == nef.float32 and nef.exp(2.0).shape == ()
    assert nef.add(1, 2).dtype == nef.int64 and nef.add(1, 2).item() == 3
    assert nef.add(1.0, 2).dtype == nef.float32
