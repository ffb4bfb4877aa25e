"""ONNX elementwise and reduction converters (src/onnx/ops/elementwise.cpp, reduction.cpp): the
edge semantics ONNX's node tests leave out, against numpy float64 references: integer Div and
Mod, Pow with mixed types, NaN through Max/Min/Clip, Cast corners, empty reductions, both axes
forms, select_last_index, and the structured errors of bad nodes."""

import os
import sys

import numpy as np
import pytest

import nef

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_node_util import ONNX_TYPE, check, make_model, rand, run_node  # noqa: E402,F401


# ---- arithmetic ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "int16", "uint16", "uint32",
                                   "uint64"])
def test_integer_div_truncates_toward_zero(dtype):
    rng = np.random.default_rng(1)
    lo = 0 if dtype.startswith("u") else -100
    a = rand(rng, (5, 7), dtype, lo, 100)
    b = rand(rng, (7,), dtype, lo, 9)
    b[b == 0] = 3
    want = np.array([[int(x / y) if (x >= 0) == (y >= 0) else -(abs(int(x)) // abs(int(y)))
                      for x, y in zip(row, b)] for row in a.astype(np.int64)], dtype=dtype)
    check(run_node("Div", [a, b]), want)


@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32", "uint32"])
def test_integer_div_is_exact_over_the_full_range(dtype):
    # Beyond 2^53 a float64 quotient would round: the result must be the exact C quotient.
    rng = np.random.default_rng(11)
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, (4, 33), dtype=dtype, endpoint=True)
    b = rng.integers(info.min, info.max, (33,), dtype=dtype, endpoint=True) >> (info.bits // 2)
    b[b == 0] = 7
    b[:3] = np.array([1, 3, 2 if info.min == 0 else -3], dtype)
    want = np.array([[int(x) // int(y) if (x >= 0) == (y >= 0) else -(abs(int(x)) // abs(int(y)))
                      for x, y in zip(row, b)] for row in a], dtype=object).astype(dtype)
    check(run_node("Div", [a, b]), want)


def test_float_div_and_zero_size():
    rng = np.random.default_rng(2)
    a, b = rand(rng, (3, 5), "float32"), rand(rng, (5,), "float32", 1, 3)
    check(run_node("Div", [a, b]), a.astype(np.float64) / b, "float32")
    z = np.zeros((0, 5), np.float32)
    check(run_node("Add", [z, b]), z)


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "float32", "float64", "int16"])
def test_mod_both_rules(dtype):
    rng = np.random.default_rng(3)
    a = rand(rng, (4, 9), dtype, -50, 50)
    b = rand(rng, (9,), dtype, -7, 7)
    b[b == 0] = -4
    if np.dtype(dtype).kind == "f":
        with pytest.raises(nef.NEFFormatError, match="fmod must be 1"):
            run_node("Mod", [a, b])
    else:
        check(run_node("Mod", [a, b]), np.mod(a, b))  # numpy: sign of the divisor
    check(run_node("Mod", [a, b], {"fmod": 1}), np.fmod(a.astype(np.float64), b).astype(dtype))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "uint32", "uint64"])
def test_mod_unsigned_rules_agree(dtype):
    rng = np.random.default_rng(13)
    info = np.iinfo(dtype)
    a = rng.integers(0, info.max, (4, 9), dtype=dtype, endpoint=True)
    b = rng.integers(1, 200, (9,)).astype(dtype)
    check(run_node("Mod", [a, b]), np.mod(a, b))
    check(run_node("Mod", [a, b], {"fmod": 1}), np.mod(a, b))


def test_mod_integer_by_zero_is_zero():
    a = np.array([5, -5, 0], np.int32)
    b = np.array([0, 0, 0], np.int32)
    check(run_node("Mod", [a, b]), np.zeros(3, np.int32))
    check(run_node("Mod", [a, b], {"fmod": 1}), np.zeros(3, np.int32))


@pytest.mark.parametrize("xt,yt", [("float32", "int64"), ("float32", "int32"),
                                   ("int32", "float32"), ("int64", "int64"),
                                   ("float64", "float32"), ("float16", "float16")])
def test_pow_keeps_base_type(xt, yt):
    rng = np.random.default_rng(4)
    x = rand(rng, (3, 4), xt, 1, 4)
    y = rand(rng, (4,), yt, 0, 3)
    want = np.power(x.astype(np.float64), y.astype(np.float64))
    got = run_node("Pow", [x, y])
    if np.dtype(xt).kind == "i":
        check(got, np.trunc(want).astype(xt))
    else:
        check(got, want, xt, rtol=2e-3 if xt == "float16" else 1e-5)


def test_variadic_broadcast_and_nan():
    rng = np.random.default_rng(5)
    a = rand(rng, (2, 1, 4), "float32")
    b = rand(rng, (3, 1), "float32")
    c = rand(rng, (4,), "float32")
    a[0, 0, 1] = np.nan
    f = [x.astype(np.float64) for x in (a, b, c)]
    check(run_node("Max", [a, b, c]), np.maximum(np.maximum(f[0], f[1]), f[2]), "float32")
    check(run_node("Min", [a, b, c]), np.minimum(np.minimum(f[0], f[1]), f[2]), "float32")
    check(run_node("Sum", [a, b, c]), f[0] + f[1] + f[2], "float32")
    check(run_node("Mean", [a, b, c]), (f[0] + f[1] + f[2]) / 3, "float32")
    check(run_node("Max", [c]), c)
    i = rand(rng, (5,), "int8", -100, 100)
    j = rand(rng, (5,), "int8", -100, 100)
    check(run_node("Max", [i, j]), np.maximum(i, j))


# ---- unary math and activations ------------------------------------------------------------------

def test_round_half_to_even_sign_and_floor():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49, np.nan, -0.0], np.float32)
    check(run_node("Round", [x]), np.round(x))
    check(run_node("Sign", [x]), np.sign(x))
    check(run_node("Floor", [x]), np.floor(x))
    i = np.array([-128, -3, 0, 5, 127], np.int8)
    check(run_node("Sign", [i]), np.sign(i))
    check(run_node("Abs", [np.array([-7, 0, 3], np.int64)]), np.array([7, 0, 3], np.int64))
    check(run_node("Neg", [i[1:]]), -i[1:])


def _ref_activation(op, x, attrs):
    a = attrs
    if op == "LeakyRelu":
        return np.where(x > 0, x, x * a.get("alpha", 0.01))
    if op == "Elu":
        return np.where(x > 0, x, a.get("alpha", 1.0) * (np.exp(x) - 1))
    if op == "Selu":
        al, ga = a.get("alpha", 1.6732632423543772), a.get("gamma", 1.0507009873554805)
        return ga * np.where(x > 0, x, al * (np.exp(x) - 1))
    if op == "Celu":
        al = a.get("alpha", 1.0)
        return np.maximum(0, x) + np.minimum(0, al * (np.exp(x / al) - 1))
    if op == "HardSigmoid":
        return np.clip(x * a.get("alpha", 0.2) + a.get("beta", 0.5), 0, 1)
    if op == "HardSwish":
        return x * np.clip(x / 6 + 0.5, 0, 1)
    if op == "Softplus":
        return np.logaddexp(0, x)
    if op == "Softsign":
        return x / (1 + np.abs(x))
    if op == "ThresholdedRelu":
        return np.where(x > a.get("alpha", 1.0), x, 0)
    if op == "Mish":
        return x * np.tanh(np.logaddexp(0, x))
    if op == "Gelu":
        import math
        if a.get("approximate", "none") == "tanh":
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    raise AssertionError(op)


@pytest.mark.parametrize("op,attrs", [
    ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.3}), ("Elu", {"alpha": 0.7}), ("Selu", {}),
    ("Celu", {"alpha": 2.0}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("HardSwish", {}),
    ("Softplus", {}), ("Softsign", {}), ("ThresholdedRelu", {"alpha": 0.5}), ("Mish", {}),
    ("Gelu", {}), ("Gelu", {"approximate": "tanh"})])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_activations(op, attrs, dtype):
    rng = np.random.default_rng(6)
    x = rand(rng, (3, 17), dtype, -6, 6)
    x[0, :3] = [0, -0.0, 40]  # Softplus/Mish of a large input stay finite (no exp overflow)
    opset = 20 if op == "Gelu" else 18
    want = _ref_activation(op, x.astype(np.float64), attrs)
    tol = 3e-3 if dtype == "float16" else 1e-5
    check(run_node(op, [x], attrs, opset=opset), want, dtype, rtol=tol, atol=tol)


def test_prelu_broadcasts_slope_to_x_only():
    rng = np.random.default_rng(7)
    x = rand(rng, (2, 3, 4), "float32")
    s = rand(rng, (3, 1), "float32", 0, 1)
    check(run_node("PRelu", [x, s]), np.where(x > 0, x, x * s.astype(np.float64)), "float32")
    with pytest.raises(nef.NEFFormatError, match="does not broadcast"):
        run_node("PRelu", [x[0, 0], s])


def test_gelu_needs_opset_20():
    # Gelu does not exist before opset 20: a malformed model, not a missing feature.
    with pytest.raises(nef.NEFFormatError, match=r"does not exist in opset 18 \(ONNX defines it "
                                                 r"from opset 20\)"):
        run_node("Gelu", [np.ones(3, np.float32)], opset=18)


# ---- comparisons, logic, where, isnan/isinf ---------------------------------------------------------

def test_compare_logic_where():
    rng = np.random.default_rng(8)
    a, b = rand(rng, (3, 4), "int32", -2, 2), rand(rng, (4,), "int32", -2, 2)
    for op, fn in [("Equal", np.equal), ("Less", np.less), ("LessOrEqual", np.less_equal),
                   ("Greater", np.greater), ("GreaterOrEqual", np.greater_equal)]:
        check(run_node(op, [a, b]), fn(a, b))
    p, q = rand(rng, (2, 1, 3), "bool"), rand(rng, (4, 1), "bool")
    check(run_node("And", [p, q]), p & q)
    check(run_node("Or", [p, q]), p | q)
    check(run_node("Xor", [p, q]), p ^ q)
    check(run_node("Not", [p]), ~p)
    x, y = rand(rng, (4, 1), "float64"), rand(rng, (3,), "float64")
    check(run_node("Where", [p[0], x, y]), np.where(p[0], x, y))


@pytest.mark.parametrize("neg,pos", [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_isinf_isnan(neg, pos):
    x = np.array([np.inf, -np.inf, np.nan, 0, -1.5, 3e38], np.float32)
    want = (np.isposinf(x) & bool(pos)) | (np.isneginf(x) & bool(neg))
    check(run_node("IsInf", [x], {"detect_negative": neg, "detect_positive": pos}), want)
    check(run_node("IsNaN", [x.astype(np.float16)]), np.isnan(x.astype(np.float16)))


# ---- Cast, Clip ----------------------------------------------------------------------------------

def test_cast_corners():
    x = np.array([0.0, -0.0, np.nan, 2.7, -2.7, 1e-30], np.float32)
    check(run_node("Cast", [x], {"to": TensorProto.BOOL}), x != 0)
    y = np.array([2.7, -2.7, 100.9, -100.9], np.float64)
    check(run_node("Cast", [y], {"to": TensorProto.INT8}), np.trunc(y).astype(np.int8))
    i = np.array([1, -70000, 2 ** 40], np.int64)
    check(run_node("Cast", [i], {"to": TensorProto.FLOAT16}), i.astype(np.float16))
    check(run_node("Cast", [np.array([True, False])], {"to": TensorProto.FLOAT}),
          np.array([1, 0], np.float32))
    check(run_node("Cast", [x], {"to": TensorProto.FLOAT, "saturate": 0}, opset=19), x)
    check(run_node("CastLike", [y, np.zeros(1, np.int32)]), np.trunc(y).astype(np.int32))
    with pytest.raises(nef.NEFUnsupportedError, match="STRING"):
        run_node("Cast", [x], {"to": TensorProto.STRING})
    with pytest.raises(nef.NEFUnsupportedError, match="FLOAT8E8M0"):
        run_node("Cast", [x], {"to": TensorProto.FLOAT8E8M0}, opset=24)


@pytest.mark.parametrize("dtype", ["float32", "int8", "int64", "uint8"])
def test_clip_optional_bounds(dtype):
    rng = np.random.default_rng(9)
    x = rand(rng, (4, 5), dtype, 0 if dtype == "uint8" else -50, 50)
    lo, hi = np.array(-3 if dtype != "uint8" else 3, dtype), np.array(20, dtype)
    check(run_node("Clip", [x, lo, hi]), np.clip(x, lo, hi))
    check(run_node("Clip", [x, lo]), np.maximum(x, lo))
    check(run_node("Clip", [x, None, hi]), np.minimum(x, hi))
    check(run_node("Clip", [x]), x)
    check(run_node("Clip", [x, hi, lo]), np.full_like(x, lo))  # min > max gives max


def test_clip_nan_passes_through():
    x = np.array([np.nan, -5, 5], np.float32)
    check(run_node("Clip", [x, np.float32(-1), np.float32(1)]), np.array([np.nan, -1, 1]),
          "float32")


# ---- reductions --------------------------------------------------------------------------------

REDUCE_REFS = {
    "ReduceSum": lambda x, ax, k: np.sum(x, axis=ax, keepdims=k),
    "ReduceMean": lambda x, ax, k: np.mean(x, axis=ax, keepdims=k),
    "ReduceMax": lambda x, ax, k: np.max(x, axis=ax, keepdims=k),
    "ReduceMin": lambda x, ax, k: np.min(x, axis=ax, keepdims=k),
    "ReduceProd": lambda x, ax, k: np.prod(x, axis=ax, keepdims=k),
    "ReduceL1": lambda x, ax, k: np.sum(np.abs(x), axis=ax, keepdims=k),
    "ReduceL2": lambda x, ax, k: np.sqrt(np.sum(x * x, axis=ax, keepdims=k)),
    "ReduceSumSquare": lambda x, ax, k: np.sum(x * x, axis=ax, keepdims=k),
    "ReduceLogSum": lambda x, ax, k: np.log(np.sum(x, axis=ax, keepdims=k)),
    "ReduceLogSumExp": lambda x, ax, k: np.log(np.sum(np.exp(x), axis=ax, keepdims=k)),
}


def reduce_node(op, x, axes, keepdims, opset, **attrs):
    attrs = dict(attrs, keepdims=keepdims)
    axes_as_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    if axes is None:
        return run_node(op, [x], attrs, opset=opset)
    if axes_as_input:
        return run_node(op, [x, np.array(axes, np.int64)], attrs, opset=opset, static=(1,))
    return run_node(op, [x], dict(attrs, axes=list(axes)), opset=opset)


@pytest.mark.parametrize("op", list(REDUCE_REFS))
@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("axes,keepdims", [(None, 1), ((1,), 0), ((-1, 0), 1), ((0, 2), 0)])
def test_reduce_float(op, opset, axes, keepdims):
    rng = np.random.default_rng(10)
    x = rand(rng, (3, 5, 7), "float32", 0.1, 2)
    want = REDUCE_REFS[op](x.astype(np.float64), None if axes is None else tuple(axes),
                           bool(keepdims))
    check(reduce_node(op, x, axes, keepdims, opset), want, "float32", rtol=1e-4)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                                "ReduceSumSquare", "ReduceMean"])
@pytest.mark.parametrize("dtype", ["int32", "int64", "int8"])
def test_reduce_int_keeps_dtype(op, dtype):
    rng = np.random.default_rng(11)
    x = rand(rng, (4, 6), dtype, -3, 3)
    want = REDUCE_REFS[op](x.astype(np.float64), (1,), False)
    want = np.trunc(want).astype(np.int64).astype(dtype)  # wraps like the ONNX type
    check(reduce_node(op, x, (1,), 0, 18), want)


@pytest.mark.parametrize("op,value", [
    ("ReduceSum", 0), ("ReduceProd", 1), ("ReduceMax", -np.inf), ("ReduceMin", np.inf),
    ("ReduceL1", 0), ("ReduceL2", 0), ("ReduceSumSquare", 0), ("ReduceLogSum", -np.inf),
    ("ReduceLogSumExp", -np.inf)])
def test_reduce_empty_extent_is_identity(op, value):
    x = np.zeros((2, 0, 4), np.float32)
    check(reduce_node(op, x, (1,), 1, 18), np.full((2, 1, 4), value, np.float32))
    check(reduce_node(op, x, (0, 2), 0, 18), np.zeros((0,), np.float32))


def test_reduce_max_min_empty_int_and_bool():
    x = np.zeros((3, 0), np.int32)
    check(reduce_node("ReduceMax", x, (1,), 0, 18), np.full(3, np.iinfo(np.int32).min, np.int32))
    check(reduce_node("ReduceMin", x, (1,), 0, 18), np.full(3, np.iinfo(np.int32).max, np.int32))
    b = np.array([[True, False], [False, False]])
    check(reduce_node("ReduceMax", b, (1,), 0, 20), np.array([True, False]))
    check(reduce_node("ReduceMin", b, (1,), 0, 20), np.array([False, False]))


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceSumSquare", "ReduceLogSumExp"])
def test_reduce_noop_with_empty_axes(op):
    rng = np.random.default_rng(12)
    x = rand(rng, (2, 3), "float32", 0.5, 2)
    want = REDUCE_REFS[op](x.astype(np.float64), (), True)  # reduction over no axis
    got = run_node(op, [x, np.zeros(0, np.int64)], {"noop_with_empty_axes": 1}, static=(1,))
    check(got, want, "float32")
    got = run_node(op, [x], {"noop_with_empty_axes": 1})  # axes absent: also no reduction
    check(got, want, "float32")
    got = run_node(op, [x, np.zeros(0, np.int64)], {"keepdims": 0}, static=(1,))
    check(got, REDUCE_REFS[op](x.astype(np.float64), None, False), "float32")


def test_reduce_log_sum_exp_is_stable():
    x = np.array([[1000, 1000.5, 999], [-np.inf, -np.inf, -np.inf], [np.inf, 0, 1],
                  [-1000, -1001, -1002], [np.nan, 0, 1]], np.float32)
    want = [1000.5 + np.log(np.exp(-0.5) + 1 + np.exp(-1.5)), -np.inf, np.inf,
            -1000 + np.log(1 + np.exp(-1) + np.exp(-2)), np.nan]
    check(reduce_node("ReduceLogSumExp", x, (1,), 0, 18), np.array(want), "float32")


def test_reduce_errors():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(nef.NEFFormatError, match="duplicate axis"):
        reduce_node("ReduceSum", x, (1, -1), 1, 18)
    with pytest.raises(nef.NEFShapeError, match="out of range"):
        reduce_node("ReduceMax", x, (2,), 1, 18)
    try:  # axes from a graph input: specialized per value by the importer, or unsupported
        check(run_node("ReduceSum", [x, np.array([1], np.int64)]), np.full((2, 1), 3.0), "float32")
    except nef.NEFUnsupportedError as e:
        assert "ReduceSum node" in str(e)
    with pytest.raises(nef.NEFUnsupportedError, match="axes"):  # attribute form in opset 18
        run_node("ReduceMean", [x], {"axes": [1]}, opset=18)


# ---- ArgMax / ArgMin ---------------------------------------------------------------------------

def _arg_ref(x, axis, keepdims, last, is_max):
    fn = np.argmax if is_max else np.argmin
    if last:
        r = x.shape[axis] - 1 - fn(np.flip(x, axis), axis=axis)
    else:
        r = fn(x, axis=axis)
    return np.expand_dims(r, axis) if keepdims else r


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis,keepdims,last", [(0, 1, 0), (1, 0, 1), (-1, 1, 1), (2, 0, 0),
                                                (-3, 0, 1)])
def test_arg_reduce_ties_and_last_index(op, axis, keepdims, last):
    rng = np.random.default_rng(13)
    x = rng.integers(0, 3, (4, 5, 3)).astype(np.float32)  # many ties
    x[1, 2, 0] = np.nan
    got = run_node(op, [x], {"axis": axis, "keepdims": keepdims, "select_last_index": last})
    check(got, _arg_ref(x, axis, keepdims, last, op == "ArgMax").astype(np.int64))


def test_arg_reduce_errors():
    with pytest.raises(nef.NEFShapeError, match="zero-size"):
        run_node("ArgMax", [np.zeros((2, 0), np.float32)], {"axis": 1})
    with pytest.raises(nef.NEFShapeError, match="out of range"):
        run_node("ArgMin", [np.zeros((2, 3), np.float32)], {"axis": 2})


# ---- bad nodes -----------------------------------------------------------------------------------

def test_bad_nodes_are_structured_errors():
    f, i = np.ones((2, 3), np.float32), np.ones((2, 3), np.int32)
    with pytest.raises(nef.NEFFormatError, match="one dtype"):
        run_node("Add", [f, i])
    with pytest.raises(nef.NEFFormatError, match="float tensor"):
        run_node("Exp", [i])
    with pytest.raises(nef.NEFFormatError, match="bool tensor"):
        run_node("And", [i, i])
    with pytest.raises(nef.NEFShapeError):
        run_node("Mul", [f, np.ones((4,), np.float32)])
    with pytest.raises(nef.NEFUnsupportedError, match="'bogus'"):
        run_node("Relu", [f], {"bogus": 1})
    with pytest.raises(nef.NEFFormatError, match="approximate"):
        run_node("Gelu", [f], {"approximate": "erf"}, opset=20)
