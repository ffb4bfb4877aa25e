"""build -> load -> run round trips with placeholders, on fresh inputs."""

import numpy as np
import pytest
from conftest import INTS, assert_close, cases, f64, random_array

import nef


def _mlp_ref(x, w1, b1, w2):
    h = np.maximum(x @ w1 + b1, 0)
    y = h @ w2
    e = np.exp(y - y.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True), h


@pytest.mark.parametrize("batch,seed", cases([1, 7, 37], prefix="mlp"))
def test_placeholder_round_trip(tmp_path, batch, seed):
    rng = np.random.default_rng(seed)
    w1 = random_array(rng, (16, 33), "float32", -0.5, 0.5)
    b1 = random_array(rng, (33,), "float32", -0.5, 0.5)
    w2 = random_array(rng, (33, 5), "float32", -0.5, 0.5)
    x = nef.placeholder("x", (batch, 16), nef.float32)
    h = nef.relu(x @ nef.tensor(w1) + nef.tensor(b1))
    probs = nef.softmax(h @ nef.tensor(w2))
    path = tmp_path / "mlp.nef"
    nef.build(path, {"probs": probs, "hidden": h})
    g = nef.load(path)
    assert g.inputs == ["x"]
    assert sorted(g.outputs) == ["hidden", "probs"]
    assert g.input_types["x"] == ((batch, 16), nef.float32)
    for trial in range(2):  # fresh inputs each run
        xin = random_array(rng, (batch, 16), "float32", -2, 2)
        out = g.run({"x": xin})
        ref_p, ref_h = _mlp_ref(f64(xin), f64(w1), f64(b1), f64(w2))
        assert_close(out["probs"], ref_p, "float32", scale=8)
        assert_close(out["hidden"], ref_h, "float32", scale=8)
    with pytest.raises(nef.NEFTypeError, match="'x'.*float32.*float64"):
        g.run(x=f64(xin))  # float64 -> float32 loses values: run converts only without loss
    out16 = g.run(x=xin.astype(np.float16))  # float16 -> float32 is exact
    ref16, _ = _mlp_ref(f64(xin.astype(np.float16)), f64(w1), f64(b1), f64(w2))
    assert_close(out16["probs"], ref16, "float32", scale=8)


def test_tensor_build_and_several_inputs(tmp_path):
    a = nef.placeholder("a", (3,), nef.int32)
    b = nef.placeholder("b", (2, 3), nef.int32)
    (a * b + 1).build(tmp_path / "ab.nef")
    g = nef.load(str(tmp_path / "ab.nef"))
    assert sorted(g.inputs) == ["a", "b"] and g.outputs == ["output"]
    out = g.run({"a": np.array([1, 2, 3], np.int32), "b": np.arange(6, dtype=np.int32)
                 .reshape(2, 3)})["output"]
    np.testing.assert_array_equal(out, np.array([1, 2, 3]) * np.arange(6).reshape(2, 3) + 1)
    assert out.dtype == np.int32


@pytest.mark.parametrize("dtype,seed", cases(INTS, prefix="nefint"))
def test_integer_dtypes_round_trip_through_nef_files(tmp_path, dtype, seed):
    # A constant and an input of each integer dtype survive build/load bit-exactly, and the
    # loaded graph wraps on overflow as numpy does.
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    c = rng.integers(info.min, info.max, (3, 5), dtype=dtype, endpoint=True)
    x = nef.placeholder("x", (3, 5), dtype)
    nef.build(tmp_path / "m.nef", {"y": x * nef.tensor(c) + nef.tensor(c), "c": nef.tensor(c)})
    g = nef.load(tmp_path / "m.nef")
    v = rng.integers(info.min, info.max, (3, 5), dtype=dtype, endpoint=True)
    out = g.run({"x": v})
    assert out["y"].dtype == np.dtype(dtype) and out["c"].dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out["c"], c)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(out["y"], v * c + c)


def test_run_errors(tmp_path):
    x = nef.placeholder("x", (2, 2), nef.float32)
    nef.build(tmp_path / "m.nef", {"y": x * 2})
    g = nef.load(tmp_path / "m.nef")
    with pytest.raises(nef.NEFValidationError):
        g.run({})
    with pytest.raises(nef.NEFShapeError):
        g.run({"x": np.zeros((3, 2), np.float32)})
    with pytest.raises(nef.NEFValidationError):
        g.run({"x": np.zeros((2, 2), np.float32), "zzz": np.zeros(1, np.float32)})


def test_placeholder_cannot_execute():
    x = nef.placeholder("x", (2,), nef.float32)
    with pytest.raises(nef.NEFError):
        (x + 1).numpy()


def test_load_garbage_is_format_error(tmp_path):
    p = tmp_path / "garbage.nef"
    p.write_bytes(b"\x00\x01not a nef file at all" * 10)
    with pytest.raises(nef.NEFFormatError):
        nef.load(p)
    empty = tmp_path / "empty.nef"
    empty.write_bytes(b"")
    with pytest.raises(nef.NEFFormatError):
        nef.load(empty)
    with pytest.raises(nef.NEFError):
        nef.load(tmp_path / "missing.nef")


def test_loaded_graph_rerun_hits_every_cache(tmp_path):
    """A loaded .nef run again on new values skips validation, passes, planning and kernel
    compilation: 100% plan and kernel cache hits."""
    rng = np.random.default_rng(7)
    x = nef.placeholder("x", (5, 8), nef.float32)
    w = nef.tensor(rng.standard_normal((8, 3)).astype(np.float32))
    y = nef.softmax(nef.tanh(x @ w + 1.0) * 2.0, dim=-1)
    path = str(tmp_path / "m.nef")
    y.build(path)
    g = nef.load(path)
    g.run({"x": rng.standard_normal((5, 8)).astype(np.float32)})
    nef.reset_stats()
    for _ in range(3):
        xv = rng.standard_normal((5, 8)).astype(np.float32)
        out = g.run({"x": xv})["output"]
        ref = np.tanh(xv.astype(np.float64) @ w.numpy().astype(np.float64) + 1.0) * 2.0
        ref = np.exp(ref - ref.max(-1, keepdims=True))
        ref /= ref.sum(-1, keepdims=True)
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    s = nef.stats()
    assert s["plan_cache_hits"] == 3 and s["plan_cache_misses"] == 0, s
    assert s["kernel_cache_misses"] == 0, s
    assert s["graphs_executed"] == 3, s
