"""Graph.profile and profile_summary: one entry per kernel of the plan (fused kernels and views
included, described as Graph.plan() describes them), non-negative median times over repeats,
an op summary whose shares add up to 100, and the same on an imported ONNX model."""

from __future__ import annotations

import numpy as np
import pytest

import nef
from nef.graph import Profile, profile_summary

RNG = np.random.default_rng(20261207)


def fused_graph(tmp_path, batch=5):
    """softmax(tanh(x @ w + b) * 0.5 - exp(-(x @ w))) and its transpose: a matmul epilogue or a
    fused chain, a softmax and a view. Odd sizes."""
    w = RNG.standard_normal((7, 3)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32)
    x = nef.placeholder("x", (batch, 7), nef.float32)
    h = x @ nef.tensor(w)
    y = nef.softmax(nef.tanh(h + nef.tensor(b)) * 0.5 - nef.exp(-h), axis=-1)
    path = tmp_path / "fused.nef"
    nef.build(path, {"y": y, "yt": y.T})
    return nef.load(path), w, b


def reference(x, w, b):
    h = x.astype(np.float64) @ w
    z = np.tanh(h + b) * 0.5 - np.exp(-h)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def assert_matches_plan(prof, plan):
    kernels = plan["kernels"]
    assert len(prof) == len(kernels) and len(prof) > 0
    for p, k in zip(prof, kernels):
        assert (p["step"], p["node"], p["op"], p["kernel"], p["device"], p["dtype"]) == \
            (k["step"], k["node"], k["op"], k["kernel"], k["device"], k["dtype"])
        assert p["ops"] == k["nodes"]
        assert p["shape"] == tuple(k["shape"])
        assert 0 <= p["min_seconds"] <= p["seconds"] and np.isfinite(p["seconds"])


@pytest.mark.parametrize("repeat", [1, 4])
def test_profile_covers_every_kernel(tmp_path, repeat):
    g, w, b = fused_graph(tmp_path)
    x = RNG.standard_normal((5, 7)).astype(np.float32)
    prof = g.profile({"x": x}, repeat=repeat)
    assert isinstance(prof, Profile) and isinstance(prof, list)
    assert prof.repeat == repeat
    assert_matches_plan(prof, g.plan())
    assert any(len(k["ops"]) > 1 and k["op"] in ("fused_elementwise", "matmul_epilogue")
               for k in prof), [k["op"] for k in prof]
    # Views are metadata: they run no kernel, so they are neither in the plan nor the profile.
    assert not any(k["op"] == "transpose" for k in prof)
    assert prof.run_seconds > 0
    assert prof.kernel_seconds == pytest.approx(sum(k["seconds"] for k in prof))
    # Profiling changes nothing about the results.
    np.testing.assert_allclose(g.run(x=x)["y"], reference(x, w, b), rtol=2e-5, atol=1e-6)


def test_summary_shares_add_up(tmp_path):
    g, _, _ = fused_graph(tmp_path, batch=33)
    prof = g.profile(x=RNG.standard_normal((33, 7)).astype(np.float32), repeat=3, warmup=0)
    rows = prof.summary()
    assert rows == profile_summary(prof)
    assert sum(r["kernels"] for r in rows) == len(prof)
    assert {r["op"] for r in rows} == {k["op"] for k in prof}
    assert sum(r["seconds"] for r in rows) == pytest.approx(prof.kernel_seconds)
    if prof.kernel_seconds > 0:
        assert sum(r["percent"] for r in rows) == pytest.approx(100.0)
    assert [r["seconds"] for r in rows] == sorted((r["seconds"] for r in rows), reverse=True)


def test_profile_summary_by_hand():
    rows = profile_summary([{"op": "matmul", "seconds": 1.0}, {"op": "softmax", "seconds": 3.0},
                            {"op": "matmul", "seconds": 1.0}])
    assert rows == [{"op": "softmax", "kernels": 1, "seconds": 3.0, "percent": 60.0},
                    {"op": "matmul", "kernels": 2, "seconds": 2.0, "percent": 40.0}]
    assert profile_summary([]) == []
    zero = profile_summary([{"op": "reshape", "seconds": 0.0}])
    assert zero == [{"op": "reshape", "kernels": 1, "seconds": 0.0, "percent": 0.0}]


def test_profile_bad_arguments(tmp_path):
    g, _, _ = fused_graph(tmp_path)
    x = RNG.standard_normal((5, 7)).astype(np.float32)
    with pytest.raises(ValueError):
        g.profile({"x": x}, repeat=0)
    with pytest.raises(ValueError):
        g.profile({"x": x}, warmup=-1)
    with pytest.raises(nef.NEFShapeError):
        g.profile({"x": RNG.standard_normal((4, 7)).astype(np.float32)})
    with pytest.raises(nef.NEFValidationError):
        g.profile({})
    # A failed profile leaves plain runs unprofiled and working.
    assert g.run(x=x)["y"].shape == (5, 3)


def test_profile_lazy_graph_of_one_view(tmp_path):
    """A graph that is only a view runs no kernel: an empty profile, and the right result."""
    x = nef.placeholder("x", (3, 1, 4), nef.float32)
    nef.build(tmp_path / "v.nef", nef.squeeze(x, 1))
    g = nef.load(tmp_path / "v.nef")
    xv = RNG.standard_normal((3, 1, 4)).astype(np.float32)
    prof = g.profile(x=xv, repeat=2)
    assert_matches_plan(prof, g.plan()) if len(prof) else None
    assert len(prof) == 0 and g.plan()["kernels"] == []
    np.testing.assert_array_equal(g.run(x=xv)["output"], xv[:, 0, :])


def test_profile_onnx_model_with_unbound_dim():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper
    w = RNG.standard_normal((5, 3)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["mm"]),
             helper.make_node("Add", ["mm", "B"], ["pre"]),
             helper.make_node("Relu", ["pre"], ["act"]),
             helper.make_node("Softmax", ["act"], ["y"], axis=-1)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    g = nef.from_onnx(m)  # "batch" bound by the run
    x = RNG.standard_normal((9, 5)).astype(np.float32)
    prof = g.profile({"x": x}, repeat=2)
    assert_matches_plan(prof, g.plan())
    assert {k["op"] for k in prof} >= {"softmax"}
    assert sum(r["percent"] for r in prof.summary()) == pytest.approx(100.0) or \
        prof.kernel_seconds == 0
