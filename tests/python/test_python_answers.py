"""No silent wrong answers from the Python API (issue 11): Python ints that do not fit a dtype,
printing tensors that depend on placeholders, Graph.run's conversions, nef.config, stack's
errors, ragged data. numpy 2 is the reference for what an integer may become."""

import io
import logging
import operator

import numpy as np
import pytest
from conftest import INTS

import nef

# ---- Python ints that do not fit the dtype ---------------------------------------------------

INFO = {t: np.iinfo(t) for t in INTS}


def numpy_raises_overflow(fn) -> bool:
    try:
        fn()
    except OverflowError:
        return True
    except (ValueError, ZeroDivisionError):  # int ** negative int: numpy's own refusal
        pass
    return False


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "mod", "floordiv", "pow", "maximum"])
def test_arithmetic_with_out_of_range_int_raises_like_numpy(dtype, op):
    fns = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "mod": operator.mod,
           "floordiv": operator.floordiv, "pow": operator.pow,
           "maximum": lambda a, b: nef.maximum(a, b) if isinstance(a, nef.Tensor)
           else np.maximum(a, b)}
    fn = fns[op]
    info = INFO[dtype]
    a = np.array([1, 2], dtype)
    t = nef.tensor(a)
    for v in (int(info.max) + 1, int(info.min) - 1, 2**40, -(2**40), 2**63, 2**70):
        if not numpy_raises_overflow(lambda: fn(a, v)):
            continue
        with pytest.raises(nef.NEFOverflowError) as e:
            fn(t, v)
        assert isinstance(e.value, OverflowError) and isinstance(e.value, nef.NEFError)
        assert str(v) in str(e.value) and dtype in str(e.value)
    # In range: the exact numpy answer, in the tensor's dtype.
    for v in (int(info.max) // 3, int(info.min) // 3 if info.min < 0 else 3):
        if op in ("pow", "mod", "floordiv") and v <= 0:
            continue
        if op == "pow":
            v = 2
        got = fn(t, v)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.numpy(), fn(a, v))


def test_the_issue_examples():
    with pytest.raises(OverflowError):
        nef.tensor([1], dtype="int32") + 2**40
    with pytest.raises(nef.NEFOverflowError):
        nef.tensor([1], dtype="int8") + 1000
    # Ints beyond int64 that fit uint64 take uint64, as in numpy; beyond that they overflow.
    assert nef.tensor([2**63]).dtype == nef.uint64 and nef.tensor([2**63]).tolist() == [2**63]
    assert nef.full((2,), 2**64 - 1).dtype == np.full(2, 2**64 - 1).dtype
    assert nef.full((2,), 2**64 - 1).tolist() == [2**64 - 1] * 2
    with pytest.raises(nef.NEFOverflowError, match="uint64"):
        nef.tensor([2**63], dtype="int64")
    with pytest.raises(nef.NEFOverflowError):
        nef.full((2,), 2**64)
    # Where numpy keeps the value (a float dtype), so does NEF.
    assert nef.tensor([2**63], dtype=nef.float64).tolist() == [2.0**63]
    assert nef.full((2,), 2**63, dtype=nef.float64).tolist() == [2.0**63] * 2


@pytest.mark.parametrize("data,dtype", [
    ([300], "uint8"), ([-1], "uint8"), ([128], "int8"), ([2**31], "int32"), ([2**63], "int64"),
    ([2**64], None), ([-(2**63) - 1], None), ([2**63, -1], None), ([2**64], "uint64"),
    ([-1], "uint64"), ([65536], "uint16"), ([2**32], "uint32"), ([-32769], "int16"),
    ([[1, 2], [3, 2**70]], None),
])
def test_tensor_from_python_ints_out_of_range(data, dtype):
    with pytest.raises(nef.NEFOverflowError):
        nef.tensor(data, dtype=dtype)


def test_tensor_from_python_ints_in_range_is_exact():
    big = [2**62 + 1, -(2**63), 2**63 - 1]
    t = nef.tensor(big)
    assert t.dtype == nef.int64 and t.tolist() == big
    assert nef.tensor([255], dtype="uint8").tolist() == [255]
    assert nef.tensor([-128, 127], dtype="int8").tolist() == [-128, 127]
    assert nef.tensor([1.5], dtype="int32").tolist() == [1]  # floats truncate, as numpy


@pytest.mark.parametrize("dtype", INTS)
def test_full_and_scalar_check_the_value(dtype):
    info = INFO[dtype]
    for v in (int(info.max) + 1, int(info.min) - 1):
        with pytest.raises(nef.NEFOverflowError):
            nef.full((2,), v, dtype=dtype)
        with pytest.raises(nef.NEFOverflowError):
            nef.scalar(v, dtype=dtype)
    assert nef.full((2,), int(info.max), dtype=dtype).tolist() == [int(info.max)] * 2
    assert nef.full((2,), int(info.min), dtype=dtype).tolist() == [int(info.min)] * 2


def test_full_and_arange_are_exact_beyond_2_53():
    v = 2**60 + 1  # not a double
    assert nef.full((3,), v).tolist() == [v] * 3
    assert nef.scalar(v).item() == v
    assert nef.arange(v, v + 3).tolist() == [v, v + 1, v + 2]
    x = nef.tensor([0, 1], dtype=nef.int64)
    assert (x + v).tolist() == [v, v + 1]
    assert (x == v).tolist() == [False, False]


@pytest.mark.parametrize("dtype", INTS + ["bool"])
@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparisons_with_out_of_range_ints_are_exact(dtype, op):
    fn = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
          ">": operator.gt, ">=": operator.ge}[op]
    a = np.array([0, 1, 1, 0], dtype)
    if dtype != "bool":
        a = np.array([INFO[dtype].min, 0, 1, INFO[dtype].max], dtype)
    t = nef.tensor(a)
    for v in (1000, -1000, 2**40, -(2**40), 2**63, -(2**63) - 1, 2**80):
        want = fn(a.astype(object), v).astype(bool)  # exact Python-int comparison
        got = fn(t, v)
        assert got.dtype == nef.bool_
        np.testing.assert_array_equal(got.numpy(), want, err_msg=f"{dtype} {op} {v}")
        got_r = fn(v, t)  # reflected
        np.testing.assert_array_equal(got_r.numpy(), fn(v, a.astype(object)).astype(bool))


def test_where_clip_and_functions_check_python_ints():
    t = nef.tensor([1, 2], dtype="int8")
    with pytest.raises(nef.NEFOverflowError):
        nef.where(t > 1, t, 1000)
    with pytest.raises(nef.NEFOverflowError):
        nef.add(t, 1000)
    with pytest.raises(nef.NEFOverflowError):
        nef.clip(t, 0, 1000)
    np.testing.assert_array_equal(nef.less(t, 1000).numpy(), [True, True])
    b = nef.tensor([True, False])
    with pytest.raises(nef.NEFOverflowError):
        b + 2**63  # bool with a Python int computes in int64
    assert (b + 2**62).tolist() == [2**62 + 1, 2**62]
    f = nef.tensor([1.0], dtype="float16")
    assert (f + 2**40).dtype == nef.float16  # weak int with a float tensor: numpy rounds
    assert (nef.tensor([1.0]) + 2**64).item() == pytest.approx(2.0**64)


# ---- printing tensors that depend on placeholders -------------------------------------------

def test_symbolic_repr_str_format_logging():
    x = nef.placeholder("x", (2, 3))
    y = (x * 2).sum(axis=0)
    nef.reset_stats()
    for text in (repr(y), str(y), f"{y}", "%s" % y, "{}".format(y)):
        assert "placeholder 'x'" in text and "(3,)" in text and "float32" in text
        assert "sum" in text
    assert "<placeholder 'x'>" in repr(x) and "(2, 3)" in repr(x)
    stream = io.StringIO()
    log = logging.getLogger("nef-test-symbolic")
    handler = logging.StreamHandler(stream)
    log.addHandler(handler)
    try:
        log.warning("value: %s %r", y, y)
    finally:
        log.removeHandler(handler)
    assert stream.getvalue().count("placeholder 'x'") == 2
    assert nef.stats()["graphs_executed"] == 0  # printing a symbolic tensor runs nothing
    z = nef.placeholder("z", (3,), nef.int32)
    both = nef.concat([y, z.astype(nef.float32)])
    assert "placeholders 'x', 'z'" in repr(both)
    assert y.placeholders == ["x"] and sorted(both.placeholders) == ["x", "z"]
    with pytest.raises(nef.NEFValidationError, match="placeholder 'x'"):
        f"{y:.2f}"
    with pytest.raises(nef.NEFValidationError):
        y.numpy()


def test_concrete_tensors_still_print_their_values():
    t = nef.tensor([1.5, 2.5]) * 2
    assert repr(t) == "tensor([3., 5.], dtype=float32)"
    assert str(t) == "[3. 5.]"
    assert t.placeholders == []


# ---- Graph.run: lossless conversions only, ONNX Runtime's forms, writable outputs ------------

@pytest.fixture
def graphs(tmp_path):
    out = {}
    for dt in ("float32", "int64", "float64", "int32", "bfloat16", "uint8"):
        x = nef.placeholder("x", (3,), dt)
        (x * 1).build(tmp_path / f"{dt}.nef")
        out[dt] = nef.load(tmp_path / f"{dt}.nef")
    a = nef.placeholder("a", (2,), nef.float32)
    b = nef.placeholder("b", (2,), nef.float32)
    nef.build(tmp_path / "two.nef", {"sum": a + b, "diff": a - b})
    out["two"] = nef.load(tmp_path / "two.nef")
    return out


LOSSY = [("float32", np.float64), ("float32", np.int64), ("float32", np.int32),
         ("int64", np.float32), ("int64", np.uint64), ("int32", np.int64), ("uint8", np.int8),
         ("bfloat16", np.float16), ("int64", np.float64), ("float64", np.int64)]
LOSSLESS = [("float32", np.float16), ("float32", np.int8), ("float32", np.uint8),
            ("float32", np.int16), ("float64", np.float32), ("float64", np.int32),
            ("int64", np.int32), ("int64", np.uint32), ("int32", np.int8), ("int32", np.uint8),
            ("int64", np.bool_), ("float32", np.bool_), ("bfloat16", np.int8)]


@pytest.mark.parametrize("want,src", LOSSY)
def test_run_refuses_lossy_arrays(graphs, want, src):
    with pytest.raises(nef.NEFTypeError) as e:
        graphs[want].run({"x": np.ones(3, src)})
    msg = str(e.value)
    assert "'x'" in msg and want in msg and np.dtype(src).name in msg


@pytest.mark.parametrize("want,src", LOSSLESS)
def test_run_converts_lossless_arrays(graphs, want, src):
    v = np.array([1, 0, 1], src)
    out = graphs[want].run({"x": v})["output"]
    assert out.dtype.name == want
    np.testing.assert_array_equal(out.astype(np.float64), v.astype(np.float64))


def test_run_python_data_is_weak_and_checked(graphs):
    with pytest.raises(nef.NEFTypeError, match="'x'.*int64"):
        graphs["int64"].run({"x": [1.7, 2, 3]})  # the issue's example: used to give [1, 2, 3]
    with pytest.raises(nef.NEFTypeError):
        graphs["int32"].run({"x": [1.0, 2.0, 3.0]})
    with pytest.raises(nef.NEFOverflowError):
        graphs["uint8"].run({"x": [1, 2, 300]})
    with pytest.raises(nef.NEFOverflowError):
        graphs["int64"].run({"x": [1, 2, 2**63]})
    assert graphs["int64"].run({"x": [1, 2, 3]})["output"].tolist() == [1, 2, 3]
    assert graphs["float32"].run({"x": [1, 2.5, True]})["output"].tolist() == [1, 2.5, 1]
    assert graphs["int32"].run({"x": [True, False, True]})["output"].tolist() == [1, 0, 1]
    t = nef.tensor(np.array([1, 2, 3], np.float64))
    with pytest.raises(nef.NEFTypeError):
        graphs["float32"].run({"x": t})  # a tensor is as strongly typed as its dtype
    assert graphs["float64"].run({"x": t})["output"].tolist() == [1, 2, 3]


def test_cli_refuses_what_run_refuses(graphs, tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    cli = str(Path(sys.executable).parent / "nef")
    np.save(tmp_path / "x.npy", np.ones(3, np.int64))
    r = subprocess.run([cli, "run", str(tmp_path / "float32.nef"), "--input",
                        f"x={tmp_path / 'x.npy'}", "--output", str(tmp_path / "out")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "NEFTypeError" in r.stderr
    with pytest.raises(nef.NEFTypeError):
        graphs["float32"].run({"x": np.ones(3, np.int64)})


def test_run_accepts_onnx_runtime_forms(graphs):
    g = graphs["two"]
    a, b = np.array([1, 2], np.float32), np.array([3, 5], np.float32)
    out = g.run(None, {"a": a, "b": b})
    assert isinstance(out, list) and len(out) == 2
    by_name = dict(zip(g.outputs, out))
    np.testing.assert_array_equal(by_name["sum"], a + b)
    np.testing.assert_array_equal(by_name["diff"], a - b)
    (d,) = g.run(["diff"], {"a": a, "b": b})
    np.testing.assert_array_equal(d, a - b)
    assert g.run(["sum"], {"a": a, "b": b}, None)[0].tolist() == [4, 7]
    assert set(g.run({"a": a, "b": b})) == {"sum", "diff"}
    assert set(g(a=a, b=b)) == {"sum", "diff"}
    one = graphs["float32"]
    np.testing.assert_array_equal(one.run(np.ones(3, np.float32))["output"], np.ones(3))
    np.testing.assert_array_equal(one.run(None, np.ones(3, np.float32))[0], np.ones(3))
    np.testing.assert_array_equal(one.run([1, 2, 3])["output"], [1, 2, 3])


def test_run_explains_wrong_forms(graphs):
    g = graphs["two"]
    a = np.ones(2, np.float32)
    with pytest.raises(nef.NEFValidationError, match="one input"):
        g.run(a)
    with pytest.raises(nef.NEFValidationError, match="output"):
        g.run(["nope"], {"a": a, "b": a})
    with pytest.raises(nef.NEFValidationError, match="output names"):
        g.run(["sum"])
    with pytest.raises(nef.NEFValidationError, match="output_names"):
        g.run("sum", {"a": a, "b": a})
    with pytest.raises(nef.NEFValidationError, match="run_options"):
        g.run(None, {"a": a, "b": a}, object())
    with pytest.raises(nef.NEFValidationError, match="twice"):
        g.run({"a": a, "b": a}, a=a)


def test_run_outputs_are_writable_and_independent(graphs, tmp_path):
    g = graphs["two"]
    a = np.array([1, 2], np.float32)
    out = g.run({"a": a, "b": a})
    for arr in out.values():
        assert arr.flags.writeable
        arr[...] = 42
    again = g.run({"a": a, "b": a})
    assert again["sum"].tolist() == [2, 4] and again["diff"].tolist() == [0, 0]
    # Outputs that alias a constant or an input are copies: writing cannot reach them.
    x = nef.placeholder("x", (2,), nef.float32)
    c = nef.tensor(np.array([7, 8], np.float32))
    nef.build(tmp_path / "alias.nef", {"x": x.reshape(2), "c": c.reshape(2), "t": x.T})
    ga = nef.load(tmp_path / "alias.nef")
    xv = np.array([1, 2], np.float32)
    r = ga.run({"x": xv})
    for name, arr in r.items():
        assert arr.flags.writeable, name
        arr[...] = -1
    assert xv.tolist() == [1, 2]
    assert ga.run({"x": xv})["c"].tolist() == [7, 8]


# ---- nef.config, stack, ragged data ---------------------------------------------------------

@pytest.mark.parametrize("bad,cls", [(-1, nef.NEFValidationError),
                                     (10**6, nef.NEFValidationError),
                                     (getattr(nef, "MAX_THREADS", 1024) + 1,
                                      nef.NEFValidationError),
                                     (1.5, nef.NEFTypeError), (2.0, nef.NEFTypeError),
                                     ("4", nef.NEFTypeError), (True, nef.NEFTypeError)])
def test_config_rejects_bad_thread_counts(bad, cls):
    before = nef.config()["threads"]
    with pytest.raises(cls):
        nef.config(threads=bad)
    assert nef.config()["threads"] == before


def test_config_accepts_thread_counts():
    try:
        assert nef.config(threads=np.int64(2))["threads"] == 2
        assert nef.config(threads=1)["threads"] == 1
    finally:
        nef.config(threads=0)
    with pytest.raises(nef.NEFTypeError):
        nef.config(devices=[1])


def test_stack_names_itself_in_errors():
    t = nef.zeros((3,))
    with pytest.raises(nef.NEFShapeError, match=r"^\[stack\].*\(3,\).*\(\)"):
        nef.stack([t, t[0]])
    with pytest.raises(nef.NEFShapeError, match=r"^\[stack\] axis 5"):
        nef.stack([t, t], axis=5)
    assert nef.stack([t, t], axis=-1).shape == (3, 2)
    np.testing.assert_array_equal(nef.stack([[1, 2], [3, 4]], axis=1).numpy(),
                                  np.stack([[1, 2], [3, 4]], axis=1))


def test_ragged_lists_raise_a_nef_value_error():
    for bad in ([[1, 2], [3]], [[1.0], [2.0, 3.0]], [[[1]], [2]]):
        with pytest.raises(nef.NEFShapeError) as e:
            nef.tensor(bad)
        assert isinstance(e.value, ValueError) and "ragged" in str(e.value)
    with pytest.raises(nef.NEFError):
        nef.zeros(2) + [[1, 2], [3]]


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64"])
def test_integer_to_negative_power_raises_like_numpy(dtype):
    """numpy refuses integers to negative integer powers; NEF gave 2 ** -1 == 0 silently."""
    rng = np.random.default_rng()
    base = nef.tensor(rng.integers(1, 5, size=7).astype(dtype))
    negative = np.array([1, -1, 2, 0, 1, 1, 1], np.int8)
    with pytest.raises(ValueError):
        np.power(base.numpy(), negative)  # the reference refuses too
    for make in (lambda: base ** -1, lambda: nef.pow(base, -2), lambda: base ** negative,
                 lambda: np.power(base, -1), lambda: 2 ** nef.tensor(negative),
                 lambda: base ** nef.tensor(negative)):
        # uint8 ** -1: the Python int does not fit uint8 (numpy 2 raises OverflowError there).
        with pytest.raises((nef.NEFValidationError, nef.NEFOverflowError),
                           match=r"\[pow\].*(negative integer powers|out of bounds)"):
            make()
    # Non-negative integer exponents and any float operand are fine, and match numpy.
    exp = np.abs(negative)
    np.testing.assert_array_equal((base ** exp).numpy(), base.numpy() ** exp)
    np.testing.assert_allclose((base ** -1.0).numpy(), base.numpy().astype(np.float32) ** -1.0,
                               rtol=1e-6)
    # A lazy exponent's values are unknown when the node is made: no error then.
    e = nef.placeholder("e", (7,), nef.int64)
    assert (base ** e).dtype == nef.int64
