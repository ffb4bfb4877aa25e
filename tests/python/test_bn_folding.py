"""Inference batch-norm folding end to end (src/passes/fold_conv_scale.cpp, fold_matmul_scale.cpp):
an ONNX Conv -> BatchNormalization model through nef.from_onnx compiles to a single conv kernel
(the importer's x * factor + shift folds into the conv's weight and bias), and its results match
ONNX's reference evaluator and a float64 numpy reference within 1e-4 relative."""

import numpy as np
import pytest

import nef

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

ONNX_TYPE = {np.dtype("float32"): TensorProto.FLOAT, np.dtype("float64"): TensorProto.DOUBLE}


def conv_nd(x, w, b, strides, pads, dilations, groups):
    """Float64 cross-correlation with ONNX Conv semantics (N, C, *spatial), pads begin.. end..."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    nsp = x.ndim - 2
    x = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[i + nsp]) for i in range(nsp)])
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    k = w.shape[2:]
    out_sp = [(x.shape[2 + i] - dilations[i] * (k[i] - 1) - 1) // strides[i] + 1
              for i in range(nsp)]
    y = np.zeros((n, m, *out_sp))
    mg = m // groups
    for tap in np.ndindex(*k):
        # The input window this kernel tap reads for every output position.
        sl = tuple(slice(tap[i] * dilations[i],
                         tap[i] * dilations[i] + strides[i] * (out_sp[i] - 1) + 1, strides[i])
                   for i in range(nsp))
        for gi in range(groups):
            xs = x[(slice(None), slice(gi * cg, (gi + 1) * cg)) + sl]  # (N, C/g, *out)
            ws = w[(slice(gi * mg, (gi + 1) * mg), slice(None)) + tap]  # (M/g, C/g)
            y[:, gi * mg:(gi + 1) * mg] += np.einsum("nc...,mc->nm...", xs, ws)
    if b is not None:
        y += np.asarray(b, np.float64).reshape((1, m) + (1,) * nsp)
    return y


def batch_norm(y, scale, bias, mean, var, eps):
    shape = (1, -1) + (1,) * (y.ndim - 2)
    f = lambda a: np.asarray(a, np.float64).reshape(shape)  # noqa: E731
    return (y - f(mean)) / np.sqrt(f(var) + eps) * f(scale) + f(bias)


def conv_bn_model(rng, x_shape, m, kernel, dtype="float32", bias=True, strides=None, pads=None,
                  dilations=None, group=1, eps=1e-5, relu=False):
    dt = np.dtype(dtype)
    c = x_shape[1]
    nsp = len(x_shape) - 2
    w = rng.uniform(-1, 1, (m, c // group, *kernel)).astype(dt)
    params = {
        "W": w,
        "scale": rng.uniform(0.5, 2, m).astype(dt),
        "beta": rng.uniform(-1, 1, m).astype(dt),
        "mean": rng.uniform(-1, 1, m).astype(dt),
        "var": rng.uniform(0.25, 2, m).astype(dt),
    }
    if bias:
        params["B"] = rng.uniform(-1, 1, m).astype(dt)
    attrs = {"group": group}
    strides = strides or [1] * nsp
    pads = pads or [0] * (2 * nsp)
    dilations = dilations or [1] * nsp
    attrs.update(strides=strides, pads=pads, dilations=dilations)
    nodes = [helper.make_node("Conv", ["X", "W"] + (["B"] if bias else []), ["C"], **attrs),
             helper.make_node("BatchNormalization", ["C", "scale", "beta", "mean", "var"],
                              ["BN"], epsilon=eps)]
    out = "BN"
    if relu:
        nodes.append(helper.make_node("Relu", ["BN"], ["Y"]))
        out = "Y"
    graph = helper.make_graph(
        nodes, "conv_bn", [helper.make_tensor_value_info("X", ONNX_TYPE[dt], list(x_shape))],
        [helper.make_tensor_value_info(out, ONNX_TYPE[dt], None)],
        initializer=[numpy_helper.from_array(v, k) for k, v in params.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    x = rng.uniform(-2, 2, x_shape).astype(dt)
    want = batch_norm(conv_nd(x, w, params.get("B"), strides, pads, dilations, group),
                      params["scale"], params["beta"], params["mean"], params["var"], eps)
    if relu:
        want = np.maximum(want, 0)
    return model, x, out, want


def kernel_ops(g):
    return [k["op"] for k in g.plan()["kernels"] if k["op"] not in ("input", "constant")]


def check_close(got, want, rtol=1e-4):
    """Elementwise within rtol of the value, and within rtol of the output's scale where values
    cancel to near zero."""
    want = np.asarray(want, np.float64)
    scale = float(np.max(np.abs(want))) if want.size else 1.0
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=rtol * scale)


CASES = {
    "2d_bias": dict(x_shape=(2, 3, 9, 8), m=5, kernel=(3, 3), pads=[1, 1, 1, 1]),
    "2d_no_bias": dict(x_shape=(2, 3, 9, 8), m=5, kernel=(3, 2), bias=False),
    "2d_strided_dilated": dict(x_shape=(1, 4, 11, 10), m=6, kernel=(3, 3), strides=[2, 1],
                               dilations=[1, 2], pads=[0, 1, 2, 1]),
    "2d_grouped": dict(x_shape=(2, 6, 7, 7), m=4, kernel=(3, 3), group=2, pads=[1, 1, 1, 1]),
    "2d_depthwise": dict(x_shape=(2, 6, 7, 5), m=6, kernel=(3, 3), group=6, eps=1e-3),
    "1d": dict(x_shape=(3, 4, 13), m=7, kernel=(5,), pads=[2, 2]),
    "3d": dict(x_shape=(1, 2, 5, 4, 6), m=3, kernel=(2, 3, 3), pads=[0, 1, 1, 1, 0, 1]),
    "one_channel": dict(x_shape=(2, 3, 6, 6), m=1, kernel=(1, 1)),
    "float64": dict(x_shape=(2, 3, 8, 7), m=4, kernel=(3, 3), dtype="float64"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_conv_batchnorm_is_one_conv(name):
    rng = np.random.default_rng(sorted(CASES).index(name) + 7)
    model, x, out, want = conv_bn_model(rng, **CASES[name])
    g = nef.from_onnx(model)
    assert kernel_ops(g) == ["conv"], g.plan()["kernels"]
    got = g.run({"X": x})[out]
    assert got.dtype == x.dtype and got.shape == want.shape
    check_close(got, want)
    check_close(got, ReferenceEvaluator(model).run(None, {"X": x})[0])


def test_conv_batchnorm_relu_is_one_conv_with_its_epilogue():
    rng = np.random.default_rng(3)
    model, x, out, want = conv_bn_model(rng, (2, 3, 8, 8), 4, (3, 3), pads=[1, 1, 1, 1],
                                        relu=True)
    g = nef.from_onnx(model)
    assert kernel_ops(g) == ["conv_epilogue"], g.plan()["kernels"]
    got = g.run({"X": x})[out]
    check_close(got, want)
    check_close(got, ReferenceEvaluator(model).run(None, {"X": x})[0])


def test_matmul_batchnorm_is_one_matmul_with_epilogue():
    # (N, C) BatchNormalization after a MatMul: the scale folds into the weight and the shift
    # becomes the matmul's epilogue.
    rng = np.random.default_rng(5)
    k, m = 11, 6
    w = rng.uniform(-1, 1, (k, m)).astype(np.float32)
    p = {"scale": rng.uniform(0.5, 2, m), "beta": rng.uniform(-1, 1, m),
         "mean": rng.uniform(-1, 1, m), "var": rng.uniform(0.25, 2, m)}
    p = {n: v.astype(np.float32) for n, v in p.items()}
    nodes = [helper.make_node("MatMul", ["X", "W"], ["C"]),
             helper.make_node("BatchNormalization", ["C", "scale", "beta", "mean", "var"],
                              ["Y"])]
    graph = helper.make_graph(
        nodes, "mm_bn", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [7, k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "W")] +
                    [numpy_helper.from_array(v, n) for n, v in p.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    x = rng.uniform(-2, 2, (7, k)).astype(np.float32)
    g = nef.from_onnx(model)
    assert kernel_ops(g) == ["matmul_epilogue"], g.plan()["kernels"]
    got = g.run({"X": x})["Y"]
    want = batch_norm(x.astype(np.float64) @ w.astype(np.float64), p["scale"], p["beta"],
                      p["mean"], p["var"], 1e-5)
    check_close(got, want)
    check_close(got, ReferenceEvaluator(model).run(None, {"X": x})[0])


def test_zero_batch():
    rng = np.random.default_rng(9)
    model, x, out, want = conv_bn_model(rng, (0, 3, 5, 5), 4, (3, 3))
    g = nef.from_onnx(model)
    assert kernel_ops(g) == ["conv"], g.plan()["kernels"]
    got = g.run({"X": x})[out]
    assert got.shape == (0, 4, 3, 3) and got.dtype == np.float32
