"""One-node ONNX models for the converter tests (test_onnx_*.py)."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import nef

ONNX_TYPE = {np.dtype(k): v for k, v in {
    "float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "float64": TensorProto.DOUBLE,
    "int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "int32": TensorProto.INT32,
    "int64": TensorProto.INT64, "bool": TensorProto.BOOL, "int16": TensorProto.INT16,
    "uint16": TensorProto.UINT16, "uint32": TensorProto.UINT32,
    "uint64": TensorProto.UINT64}.items()}
try:  # the float8 types NEF stores, where ml_dtypes (numpy's float8) is installed
    import ml_dtypes
    ONNX_TYPE.update({np.dtype(ml_dtypes.float8_e4m3fn): TensorProto.FLOAT8E4M3FN,
                      np.dtype(ml_dtypes.float8_e4m3fnuz): TensorProto.FLOAT8E4M3FNUZ,
                      np.dtype(ml_dtypes.float8_e5m2): TensorProto.FLOAT8E5M2,
                      np.dtype(ml_dtypes.float8_e5m2fnuz): TensorProto.FLOAT8E5M2FNUZ})
except ImportError:
    pass


def make_model(op, inputs, attrs=None, opset=18, static=(), n_out=1):
    """One-node model: `inputs` are arrays (None = an absent optional input); indices listed in
    `static` become initializers (axes, ...), the others graph inputs. Returns (model, feed,
    output names)."""
    names, graph_inputs, inits, feed = [], [], [], {}
    for i, a in enumerate(inputs):
        if a is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        a = np.asarray(a)
        if i in static:
            inits.append(numpy_helper.from_array(a, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, ONNX_TYPE[a.dtype], a.shape))
            feed[name] = a
    outs = [f"out{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, name="n", **(attrs or {}))
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_empty_tensor_value_info(o) for o in outs],
                              initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m, feed, outs


def run_node(op, inputs, attrs=None, opset=18, static=(), n_out=1):
    """The node through nef.from_onnx: its output (or list of outputs when n_out > 1)."""
    m, feed, outs = make_model(op, inputs, attrs, opset, static, n_out)
    res = nef.from_onnx(m).run(feed)
    return [res[o] for o in outs] if n_out > 1 else res[outs[0]]


def rand(rng, shape, dtype="float32", lo=-3, hi=3):
    """Random values of `dtype` in [lo, hi] (ints clipped to the dtype, bools half true)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return rng.uniform(lo, hi, shape).astype(dt)
    if dt == np.bool_:
        return rng.random(shape) < 0.5
    lo = max(lo, np.iinfo(dt).min)
    return rng.integers(lo, hi + 1, shape).astype(dt)


def check(got, want, dtype=None, rtol=1e-5, atol=1e-6):
    want = np.asarray(want)
    dtype = np.dtype(dtype) if dtype is not None else want.dtype
    assert got.dtype == dtype and got.shape == want.shape, (got.dtype, got.shape, want.shape)
    if dtype.kind == "f":
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)
