"""The ONNX converters added for real exports (TopK, CumSum/CumProd, GatherND, ScatterND,
ScatterElements/Scatter, OneHot, Einsum, the trigonometric and hyperbolic functions, LRN,
DepthToSpace/SpaceToDepth, MeanVarianceNormalization, LpNormalization, Hardmax, Shrink, Swish,
EyeLike, ReverseSequence and the bitwise ops): the cases ONNX's node tests leave out (ties and
NaN in TopK, repeated scatter indices, negative and out-of-range one-hot indices, strided
layouts, every dtype...), against numpy in float64 or ONNX's reference evaluator, and the
structured errors of malformed nodes."""

import os
import sys

import numpy as np
import pytest

import nef

onnx = pytest.importorskip("onnx")
from onnx import TensorProto  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_node_util import check, make_model, rand, run_node  # noqa: E402

RNG = np.random.default_rng(1010)


def ref_node(op, inputs, attrs=None, opset=18, static=(), n_out=1):
    m, feed, outs = make_model(op, inputs, attrs, opset, static, n_out)
    res = ReferenceEvaluator(m).run(None, feed)
    return res if n_out > 1 else res[0]


def both(op, inputs, attrs=None, opset=18, static=(), n_out=1, rtol=1e-5, atol=1e-6):
    got = run_node(op, inputs, attrs, opset, static, n_out)
    want = ref_node(op, inputs, attrs, opset, static, n_out)
    if n_out == 1:
        got, want = [got], [want]
    for g, w in zip(got, want):
        check(g, w, rtol=rtol, atol=atol)


def i64(*v):
    """i64(4) and i64(0, 1) are 1-d; i64([[1], [3]]) is the nested list as given."""
    return np.array(v[0] if len(v) == 1 and isinstance(v[0], list) else v, np.int64)


# ---- elementwise -------------------------------------------------------------------------------

@pytest.mark.parametrize("op,fn,lo,hi", [("Tan", np.tan, -1.4, 1.4), ("Asin", np.arcsin, -1, 1),
                                         ("Acos", np.arccos, -1, 1), ("Atan", np.arctan, -9, 9),
                                         ("Sinh", np.sinh, -5, 5), ("Cosh", np.cosh, -5, 5),
                                         ("Asinh", np.arcsinh, -9, 9),
                                         ("Acosh", np.arccosh, 1, 9),
                                         ("Atanh", np.arctanh, -0.99, 0.99)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_trig(op, fn, lo, hi, dtype):
    x = rand(RNG, (3, 17), dtype, lo, hi)
    tol = 2e-3 if dtype == "float16" else 1e-5
    check(run_node(op, [x], opset=9), fn(x.astype(np.float64)).astype(dtype), rtol=tol, atol=tol)
    with pytest.raises(nef.NEFFormatError, match=f"{op} node 'n'.*must be a float tensor"):
        run_node(op, [np.arange(3, dtype=np.int32)], opset=13)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
                                   "uint64"])
def test_bitwise(dtype):
    info = np.iinfo(dtype)
    a = RNG.integers(info.min, info.max, (3, 5), dtype=dtype, endpoint=True)
    b = RNG.integers(info.min, info.max, (5,), dtype=dtype, endpoint=True)
    check(run_node("BitwiseAnd", [a, b]), a & b)
    check(run_node("BitwiseOr", [a, b]), a | b)
    check(run_node("BitwiseXor", [a, b]), a ^ b)
    check(run_node("BitwiseNot", [a]), ~a)
    with pytest.raises(nef.NEFFormatError, match="BitwiseAnd node 'n'.*inputs must have one dtype"):
        run_node("BitwiseAnd", [a, b.astype(np.int64 if dtype != "int64" else np.int32)])


def test_bitwise_and_bitshift_errors():
    f = np.ones(3, np.float32)
    with pytest.raises(nef.NEFFormatError, match="must be an integer tensor"):
        run_node("BitwiseOr", [f, f])
    with pytest.raises(nef.NEFFormatError, match="must be an integer tensor"):
        run_node("BitwiseNot", [np.array([True])])
    u = np.array([1, 2, 255], np.uint8)
    check(run_node("BitShift", [u, np.array([1, 7, 1], np.uint8)], {"direction": "LEFT"}, opset=11),
          np.array([2, 0, 254], np.uint8))
    check(run_node("BitShift", [u, np.array([1, 1, 9], np.uint8)], {"direction": "RIGHT"},
                   opset=11), np.array([0, 1, 0], np.uint8))
    with pytest.raises(nef.NEFFormatError, match="direction must be"):
        run_node("BitShift", [u, u], {"direction": "UP"}, opset=11)
    with pytest.raises(nef.NEFFormatError, match="attribute 'direction' is required"):
        run_node("BitShift", [u, u], opset=11)
    i = np.array([1, 2], np.int32)
    with pytest.raises(nef.NEFFormatError, match="unsigned"):
        run_node("BitShift", [i, i], {"direction": "LEFT"}, opset=11)
    for dt in (np.uint16, np.uint32, np.uint64):  # full-width values, shifts past the width
        info = np.iinfo(dt)
        v = RNG.integers(0, info.max, (9,), dtype=dt, endpoint=True)
        k = RNG.integers(0, info.bits + 2, (9,)).astype(dt)
        check(run_node("BitShift", [v, k], {"direction": "LEFT"}, opset=11), np.left_shift(v, k))
        check(run_node("BitShift", [v, k], {"direction": "RIGHT"}, opset=11), np.right_shift(v, k))


def test_shrink_swish():
    x = rand(RNG, (4, 6), lo=-3, hi=3)
    both("Shrink", [x], {"lambd": 1.2, "bias": 0.4}, opset=9)
    xi = np.arange(-5, 6, dtype=np.int32)
    both("Shrink", [xi], {"lambd": 2.0, "bias": 1.0}, opset=9)
    check(run_node("Swish", [x], {"alpha": 0.7}, opset=24),
          (x * (1 / (1 + np.exp(-0.7 * x.astype(np.float64))))).astype(np.float32), rtol=1e-5)


# ---- TopK -----------------------------------------------------------------------------------------

def test_topk_ties_nan_dtypes():
    x = np.array([[3, 1, 3, np.nan, 2, 3]], np.float32)
    for largest in [0, 1]:
        both("TopK", [x, i64(4)], {"largest": largest}, opset=11, static=(1,), n_out=2)
    xi = RNG.integers(0, 4, (5, 9)).astype(np.int32)
    both("TopK", [xi, i64(3)], {"axis": 0}, opset=11, static=(1,), n_out=2)
    both("TopK", [xi, i64(0)], opset=11, static=(1,), n_out=2)
    v, idx = run_node("TopK", [xi, i64(9)], {"sorted": 0}, opset=11, static=(1,), n_out=2)
    check(v, -np.sort(-xi, axis=1, kind="stable"))


def test_topk_errors():
    x = rand(RNG, (2, 5))
    with pytest.raises(nef.NEFShapeError, match=r"TopK node 'n'.*K = 6 must be in \[0, 5\]"):
        run_node("TopK", [x, i64(6)], opset=11, static=(1,), n_out=2)
    with pytest.raises(nef.NEFFormatError, match="K must hold one value"):
        run_node("TopK", [x, i64(1, 2)], opset=11, static=(1,), n_out=2)
    # K from a graph input: the graph is specialized on its value at each run.
    m, feed, outs = make_model("TopK", [x, i64(2)], opset=11, n_out=2)
    g = nef.from_onnx(m)
    for k in (2, 4):
        got = g.run({"in0": x, "in1": i64(k)})
        check(got[outs[0]], -np.sort(-x, axis=1)[:, :k])
    with pytest.raises(nef.NEFFormatError, match="must be numeric"):
        run_node("TopK", [np.array([True]), i64(1)], opset=11, static=(1,), n_out=2)


# ---- CumSum / CumProd ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "float16"])
def test_cumsum_cumprod(dtype):
    x = rand(RNG, (3, 4, 5), dtype, lo=-2, hi=2)
    for axis in [0, -1, 1]:
        for exclusive in [0, 1]:
            for reverse in [0, 1]:
                attrs = {"exclusive": exclusive, "reverse": reverse}
                both("CumSum", [x, np.array(axis, np.int32)], attrs, opset=14, static=(1,),
                     rtol=2e-3, atol=2e-3)
                both("CumProd", [x, np.array(axis, np.int64)], attrs, opset=26, static=(1,),
                     rtol=2e-3, atol=2e-3)


def test_cumsum_errors():
    x = rand(RNG, (3, 4))
    with pytest.raises(nef.NEFShapeError, match="axis 2 out of range"):
        run_node("CumSum", [x, np.array(2, np.int64)], opset=14, static=(1,))
    with pytest.raises(nef.NEFFormatError, match="axis must hold one value"):
        run_node("CumSum", [x, i64(0, 1)], opset=14, static=(1,))
    with pytest.raises(nef.NEFFormatError, match="must be an integer tensor"):
        run_node("CumSum", [x, np.array(0.0, np.float32)], opset=14, static=(1,))


# ---- GatherND, ScatterND, ScatterElements -------------------------------------------------------

def test_gather_nd():
    x = rand(RNG, (3, 4, 5))
    both("GatherND", [x, i64([0, 1], [2, -1])], opset=11)
    both("GatherND", [x, i64([[1], [3]], [[0], [2]], [[3], [3]])], {"batch_dims": 1}, opset=12)
    both("GatherND", [x.astype(np.int32), i64([[[0, 1, 2]]])], opset=13)
    with pytest.raises(nef.NEFValidationError, match=r"\[gather_nd\] index 3 out of range"):
        run_node("GatherND", [x, i64([3, 0])], opset=13)
    with pytest.raises(nef.NEFUnsupportedError, match="attribute 'batch_dims'"):
        run_node("GatherND", [x, i64([[1], [3], [0]])], {"batch_dims": 1}, opset=11)


def scatter_nd_ref(data, idx, upd, reduction):
    """In float64, the updates applied in index order (repeated indices accumulate)."""
    out = data.astype(np.float64).copy()
    for i in np.ndindex(idx.shape[:-1]):
        t = tuple(idx[i])
        u = upd[i].astype(np.float64)
        out[t] = {"none": u, "add": out[t] + u, "mul": out[t] * u,
                  "max": np.maximum(out[t], u), "min": np.minimum(out[t], u)}[reduction]
    return out.astype(data.dtype)


@pytest.mark.parametrize("reduction,opset", [("none", 11), ("add", 16), ("mul", 16), ("max", 18),
                                             ("min", 18)])
def test_scatter_nd(reduction, opset):
    data = rand(RNG, (4, 3, 2))
    idx = i64([[1], [3], [1], [0]])  # a repeated index accumulates in order
    upd = rand(RNG, (4, 3, 2))
    attrs = {} if reduction == "none" else {"reduction": reduction}
    if reduction == "none":
        idx = i64([[1], [3], [0]])
        upd = upd[:3]
    check(run_node("ScatterND", [data, idx, upd], attrs, opset=opset),
          scatter_nd_ref(data, idx, upd, reduction))
    idx2, upd2 = i64([0, 1], [3, 2]), rand(RNG, (2, 2))
    check(run_node("ScatterND", [data, idx2, upd2], attrs, opset=opset),
          scatter_nd_ref(data, idx2, upd2, reduction))
    if reduction in ("none", "add", "mul"):  # onnx's reference mis-indexes max and min
        both("ScatterND", [data, idx, upd], attrs, opset=opset)


@pytest.mark.parametrize("reduction,opset", [("none", 11), ("add", 16), ("mul", 16), ("max", 18),
                                             ("min", 18)])
def test_scatter_elements(reduction, opset):
    data = rand(RNG, (3, 5))
    idx = i64([[0, -1, 4, 4], [2, 2, 0, 1]])
    upd = rand(RNG, (2, 4))
    attrs = {"axis": 1}
    if reduction != "none":
        attrs["reduction"] = reduction
    both("ScatterElements", [data, idx, upd], attrs, opset=opset)
    both("ScatterElements", [data, idx[:, :3] % 3, upd[:, :3]], {"axis": 0}, opset=opset)


def test_scatter_versions_and_errors():
    data = rand(RNG, (3, 5))
    idx = i64([[0, 1]])
    upd = rand(RNG, (1, 2))
    # Scatter (deprecated) is ScatterElements-11 under its first name.
    check(run_node("Scatter", [data, idx, upd], {"axis": 1}, opset=10),
          ref_node("ScatterElements", [data, idx, upd], {"axis": 1}, opset=11))
    with pytest.raises(nef.NEFFormatError, match="reduction \"max\" is not defined in opset 16"):
        run_node("ScatterElements", [data, idx, upd], {"reduction": "max"}, opset=16)
    with pytest.raises(nef.NEFUnsupportedError, match="attribute 'reduction'"):
        run_node("ScatterND", [data, i64([0]), rand(RNG, (5,))], {"reduction": "add"}, opset=13)
    with pytest.raises(nef.NEFShapeError, match=r"\[scatter_elements\] updates must have"):
        run_node("ScatterElements", [data, idx, rand(RNG, (1, 3))], opset=13)
    with pytest.raises(nef.NEFValidationError, match=r"\[scatter_nd\] index 3 out of range"):
        run_node("ScatterND", [data, i64([3]), rand(RNG, (5,))], opset=13)


# ---- OneHot, EyeLike, ReverseSequence ---------------------------------------------------------------

def onehot_ref(idx, depth, values, axis):
    idx = np.asarray(idx).astype(np.int64)
    idx = np.where(idx < 0, idx + depth, idx)
    hot = np.expand_dims(idx, axis) == np.arange(depth).reshape(
        [-1 if d == axis % (idx.ndim + 1) else 1 for d in range(idx.ndim + 1)])
    return np.where(hot, values[1], values[0]).astype(values.dtype)


def test_one_hot():
    idx = i64([[0, 2, -1], [5, -4, 1]])  # 5 and -4 are outside [-3, 3): rows of off values
    values = np.array([-1, 7], np.float32)
    for axis in [-1, 0, 1, -3]:
        got = run_node("OneHot", [idx, np.array(3, np.int64), values], {"axis": axis}, opset=11,
                       static=(1, 2))
        check(got, onehot_ref(idx, 3, values, axis))
    fidx = np.array([0.0, 1.7, 2.2], np.float32)  # float indices truncate
    got = run_node("OneHot", [fidx, np.array([3.0], np.float32), np.array([0, 1], np.int32)],
                   opset=9, static=(1, 2))
    check(got, onehot_ref([0, 1, 2], 3, np.array([0, 1], np.int32), -1))
    with pytest.raises(nef.NEFFormatError, match="values must hold"):
        run_node("OneHot", [idx, np.array(3, np.int64), np.zeros(3, np.float32)], opset=11,
                 static=(1, 2))
    with pytest.raises(nef.NEFFormatError, match="depth must be a positive count"):
        run_node("OneHot", [idx, np.array(0, np.int64), values], opset=11, static=(1, 2))
    with pytest.raises(nef.NEFShapeError, match="axis 3 out of range"):
        run_node("OneHot", [idx, np.array(3, np.int64), values], {"axis": 3}, opset=11,
                 static=(1, 2))


def test_eye_like():
    x = rand(RNG, (4, 6))
    for k in [0, 2, -3, 9]:
        both("EyeLike", [x], {"k": k}, opset=9)
    both("EyeLike", [x], {"dtype": onnx.TensorProto.INT32}, opset=9)
    with pytest.raises(nef.NEFFormatError, match="must be 2-D"):
        run_node("EyeLike", [rand(RNG, (2, 2, 2))], opset=9)


def test_reverse_sequence():
    x = rand(RNG, (5, 3, 2))
    lens = i64(5, 1, 3)
    both("ReverseSequence", [x, lens], {"time_axis": 0, "batch_axis": 1}, opset=10)
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))
    both("ReverseSequence", [xt, lens], {"time_axis": 1, "batch_axis": 0}, opset=10)
    with pytest.raises(nef.NEFFormatError, match=r"sequence_lens \(2,\) must be \(3,\)"):
        run_node("ReverseSequence", [x, i64(1, 2)], opset=10)
    with pytest.raises(nef.NEFFormatError, match="time_axis and batch_axis"):
        run_node("ReverseSequence", [x, lens], {"time_axis": 2}, opset=10)


# ---- normalizations, space/depth, einsum ------------------------------------------------------------

def lrn_ref(x, size, alpha, beta, bias):
    x = x.astype(np.float64)
    c = x.shape[1]
    sq = np.zeros_like(x)
    for i in range(c):
        lo, hi = max(0, i - (size - 1) // 2), min(c - 1, i + size // 2)
        sq[:, i] = (x[:, lo:hi + 1] ** 2).sum(1)
    return x / (bias + alpha / size * sq) ** beta


@pytest.mark.parametrize("size,shape", [(3, (2, 5, 4, 3)), (4, (1, 6, 5)), (1, (2, 3, 2, 2)),
                                        (5, (2, 3))])
def test_lrn(size, shape):
    x = rand(RNG, shape)
    attrs = {"size": size, "alpha": 2e-3, "beta": 0.6, "bias": 1.5}
    check(run_node("LRN", [x], attrs, opset=13), lrn_ref(x, size, 2e-3, 0.6, 1.5).astype(np.float32),
          rtol=1e-5)
    check(run_node("LRN", [x], {"size": size}, opset=1),
          lrn_ref(x, size, 1e-4, 0.75, 1.0).astype(np.float32), rtol=1e-5)
    with pytest.raises(nef.NEFFormatError, match="attribute 'size' is required"):
        run_node("LRN", [x])


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_space(mode):
    x = rand(RNG, (2, 12, 3, 5))
    both("DepthToSpace", [x], {"blocksize": 2, "mode": mode}, opset=13)
    both("SpaceToDepth", [rand(RNG, (2, 3, 6, 4))], {"blocksize": 2}, opset=13)
    with pytest.raises(nef.NEFShapeError, match="not a multiple of blocksize"):
        run_node("DepthToSpace", [rand(RNG, (1, 6, 2, 2))], {"blocksize": 2}, opset=13)
    with pytest.raises(nef.NEFShapeError, match="not multiples of blocksize 2"):
        run_node("SpaceToDepth", [rand(RNG, (1, 3, 5, 4))], {"blocksize": 2}, opset=13)
    with pytest.raises(nef.NEFFormatError, match="must be 4-D"):
        run_node("DepthToSpace", [rand(RNG, (4, 4))], {"blocksize": 2}, opset=13)
    with pytest.raises(nef.NEFFormatError, match="blocksize must be >= 1"):
        run_node("SpaceToDepth", [x], {"blocksize": 0}, opset=13)
    # Before revision 11 there is no mode: DCR.
    check(run_node("DepthToSpace", [x], {"blocksize": 2}, opset=9),
          ref_node("DepthToSpace", [x], {"blocksize": 2, "mode": "DCR"}, opset=13))


def test_mvn_lp_normalization():
    x = rand(RNG, (2, 3, 4, 5))
    both("MeanVarianceNormalization", [x], opset=13, rtol=1e-4, atol=1e-5)
    both("MeanVarianceNormalization", [x], {"axes": [1, 3]}, opset=9, rtol=1e-4, atol=1e-5)
    y = np.abs(rand(RNG, (3, 4)))
    y[1] = 0  # a zero norm gives 0
    for p in [1, 2]:
        for axis in [0, -1]:
            both("LpNormalization", [y], {"p": p, "axis": axis}, opset=1)
    with pytest.raises(nef.NEFFormatError, match="p must be 1 or 2"):
        run_node("LpNormalization", [y], {"p": 3}, opset=1)


@pytest.mark.parametrize("eq,shapes", [("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
                                       ("ii->i", [(3, 3)]), ("...ii->...i", [(2, 3, 3)]),
                                       ("i,i", [(4,), (4,)]), ("ij->", [(2, 3)]),
                                       ("abc,cd->abd", [(2, 3, 4), (4, 5)])])
def test_einsum(eq, shapes):
    xs = [rand(RNG, s, "float64") for s in shapes]
    both("Einsum", xs, {"equation": eq}, opset=12, rtol=1e-10, atol=1e-10)
    with pytest.raises(nef.NEFFormatError, match="inputs must have one dtype"):
        run_node("Einsum", [xs[0], xs[0].astype(np.float32)], {"equation": "ij,ij->ij"}, opset=12)
    with pytest.raises(nef.NEFValidationError, match=r"Einsum node 'n'.*\[einsum\]"):
        run_node("Einsum", xs[:1], {"equation": "i+j"}, opset=12)


# ---- GridSample ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample(mode, padding, align):
    # Grid values beyond [-1, 1] exercise the padding modes; 1-, 2- and 3-D spatial inputs.
    for xs, gs in [((2, 3, 5, 6), (2, 4, 7, 2)), ((1, 2, 3, 4, 5), (1, 2, 3, 2, 3)),
                   ((2, 2, 7), (2, 5, 1))]:
        x = rand(RNG, xs)
        grid = rand(RNG, gs, lo=-1.4, hi=1.4)
        attrs = {"mode": mode, "padding_mode": padding, "align_corners": align}
        both("GridSample", [x, grid], attrs, opset=20, rtol=1e-4, atol=1e-5)
    # revision 16: 4-D, modes spelled bilinear/bicubic
    old = {"linear": "bilinear", "cubic": "bicubic", "nearest": "nearest"}[mode]
    x, grid = rand(RNG, (1, 2, 4, 5)), rand(RNG, (1, 3, 3, 2), lo=-1.2, hi=1.2)
    check(run_node("GridSample", [x, grid], {"mode": old, "padding_mode": padding,
                                             "align_corners": align}, opset=16),
          ref_node("GridSample", [x, grid], {"mode": mode, "padding_mode": padding,
                                             "align_corners": align}, opset=20),
          rtol=1e-4, atol=1e-5)


def test_grid_sample_dtypes_and_api():
    x = rand(RNG, (2, 3, 4, 5), "float64")
    grid = rand(RNG, (2, 6, 2, 2), "float64", lo=-1, hi=1)
    both("GridSample", [x, grid], opset=22)
    # a float32 grid for a float16 input is cast to the input's type
    x16 = x.astype(np.float16)
    got = run_node("GridSample", [x16, grid.astype(np.float32)], opset=22)
    want = ref_node("GridSample", [x16.astype(np.float32), grid.astype(np.float16)
                                   .astype(np.float32)], opset=22)
    check(got, want.astype(np.float16), rtol=2e-3, atol=2e-3)
    # nef.grid_sample on a strided (transposed) view (onnx's reference holds coordinates in
    # float32 even for float64 inputs, hence the tolerance)
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2))
    got = nef.grid_sample(nef.tensor(xt).transpose(0, 1, 3, 2), nef.tensor(grid),
                          mode="cubic", padding_mode="reflection", align_corners=True)
    check(got.numpy(), ref_node("GridSample", [x, grid], {"mode": "cubic",
                                                          "padding_mode": "reflection",
                                                          "align_corners": 1}, opset=20),
          rtol=1e-5, atol=1e-6)
    # identity grid with align_corners reproduces the input in every mode
    h, w = 4, 5
    gy, gx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    ident = np.stack([gx, gy], -1)[None].repeat(2, 0)
    for mode in ["nearest", "linear", "cubic"]:
        check(nef.grid_sample(nef.tensor(x), nef.tensor(ident), mode=mode,
                              align_corners=True).numpy(), x, rtol=1e-9, atol=1e-9)
    # empty output positions
    assert run_node("GridSample", [rand(RNG, (1, 2, 3, 3)), np.zeros((1, 0, 4, 2), np.float32)],
                    opset=20).shape == (1, 2, 0, 4)


def test_grid_sample_errors():
    x, grid = rand(RNG, (1, 2, 4, 5)), rand(RNG, (1, 3, 3, 2))
    with pytest.raises(nef.NEFFormatError, match=r"GridSample node 'n' \(opset 16\).*4-D"):
        run_node("GridSample", [rand(RNG, (1, 2, 3, 4, 5)), rand(RNG, (1, 2, 2, 2, 3))], opset=16)
    with pytest.raises(nef.NEFFormatError, match="mode must be linear, nearest or cubic"):
        run_node("GridSample", [x, grid], {"mode": "bilinear"}, opset=20)
    with pytest.raises(nef.NEFFormatError, match="mode must be bilinear, nearest or bicubic"):
        run_node("GridSample", [x, grid], {"mode": "cubic"}, opset=16)
    with pytest.raises(nef.NEFFormatError, match="padding_mode must be"):
        run_node("GridSample", [x, grid], {"padding_mode": "wrap"}, opset=20)
    with pytest.raises(nef.NEFUnsupportedError, match="input X of type int32"):
        run_node("GridSample", [x.astype(np.int32), grid], opset=20)
    with pytest.raises(nef.NEFShapeError, match=r"\[grid_sample\] grid must be"):
        run_node("GridSample", [x, rand(RNG, (1, 3, 3, 3))], opset=20)
    with pytest.raises(nef.NEFShapeError, match=r"\[grid_sample\] grid must be"):
        run_node("GridSample", [x, rand(RNG, (2, 3, 3, 2))], opset=20)
    with pytest.raises(nef.NEFTypeError, match=r"\[grid_sample\]"):
        nef.grid_sample(nef.tensor(x), nef.tensor(grid.astype(np.float64)))
    with pytest.raises(nef.NEFValidationError, match="mode must be one of"):
        nef.grid_sample(nef.tensor(x), nef.tensor(grid), mode="bilinear")


# ---- NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss -------------------------------------------

@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 6), (2, 3, 4, 5)])
@pytest.mark.parametrize("weighted,ignore", [(False, None), (True, None), (False, 2), (True, -1)])
def test_losses(reduction, shape, weighted, ignore):
    n, c = shape[:2]
    x = rand(RNG, shape)
    target = RNG.integers(0, c, (n,) + shape[2:]).astype(np.int64)
    if ignore is not None:  # some positions ignored; -1 lies outside the classes
        target.flat[::3] = ignore
    weight = rand(RNG, (c,), lo=0.2, hi=2) if weighted else None
    attrs = {"reduction": reduction}
    if ignore is not None:
        attrs["ignore_index"] = ignore
    inputs = [x, target] + ([weight] if weighted else [])
    both("NegativeLogLikelihoodLoss", inputs, attrs, opset=13, rtol=1e-5, atol=1e-6)
    both("SoftmaxCrossEntropyLoss", inputs, attrs, opset=13, n_out=2, rtol=1e-5, atol=1e-6)
    # int32 targets, revision 12
    inputs[1] = target.astype(np.int32)
    both("SoftmaxCrossEntropyLoss", inputs, attrs, opset=12, rtol=1e-5, atol=1e-6)


def test_losses_float64_and_errors():
    x = rand(RNG, (4, 3, 2), "float64")
    t = RNG.integers(0, 3, (4, 2)).astype(np.int64)
    both("SoftmaxCrossEntropyLoss", [x, t], opset=22, rtol=1e-12, atol=1e-12)
    with pytest.raises(nef.NEFFormatError, match=r"target \(4, 3\) must be \(4, 2\)"):
        run_node("NegativeLogLikelihoodLoss", [x, np.zeros((4, 3), np.int64)], opset=13)
    with pytest.raises(nef.NEFFormatError, match="rank >= 2"):
        run_node("NegativeLogLikelihoodLoss", [rand(RNG, (3,)), np.zeros((), np.int64)], opset=13)
    with pytest.raises(nef.NEFFormatError, match="target must be int32 or int64"):
        run_node("NegativeLogLikelihoodLoss", [x, t.astype(np.float64)], opset=13)
    with pytest.raises(nef.NEFFormatError, match=r"weight \(2,\) float64 must be \(C,\) = \(3,\)"):
        run_node("NegativeLogLikelihoodLoss", [x, t, rand(RNG, (2,), "float64")], opset=13)
    with pytest.raises(nef.NEFFormatError, match="reduction must be none, sum or mean"):
        run_node("SoftmaxCrossEntropyLoss", [x, t], {"reduction": "max"}, opset=13)
    with pytest.raises(nef.NEFFormatError, match="scores must be a float tensor"):
        run_node("SoftmaxCrossEntropyLoss", [t[:, :1] * 0 + t, t[:, 0]], opset=13)
    # a target outside the classes (and not ignored) is a run-time error
    bad = t.copy()
    bad[0, 0] = 3
    with pytest.raises(nef.NEFValidationError, match="out of range"):
        run_node("NegativeLogLikelihoodLoss", [x, bad], opset=13)


# ---- LpPool ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool(p):
    x = rand(RNG, (2, 3, 7, 6))
    for attrs in [{"kernel_shape": [3, 2]},
                  {"kernel_shape": [3, 3], "strides": [2, 1], "pads": [1, 0, 2, 1]},
                  {"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
                  {"kernel_shape": [2, 3], "dilations": [2, 1], "pads": [1, 1, 0, 1]}]:
        opset = 18 if "dilations" in attrs else 11
        both("LpPool", [x], dict(attrs, p=p), opset=opset, rtol=1e-4, atol=1e-5)
    x1 = rand(RNG, (1, 2, 9), "float64")
    both("LpPool", [x1], {"kernel_shape": [4], "strides": [3], "p": p}, opset=2, rtol=1e-10,
         atol=1e-12)


def test_lp_pool_errors():
    x = rand(RNG, (1, 2, 5, 5))
    with pytest.raises(nef.NEFUnsupportedError, match="ceil_mode = 1"):
        run_node("LpPool", [x], {"kernel_shape": [2, 2], "ceil_mode": 1}, opset=18)
    with pytest.raises(nef.NEFFormatError, match=r"p must be in \[1, 64\]"):
        run_node("LpPool", [x], {"kernel_shape": [2, 2], "p": 0}, opset=18)
    with pytest.raises(nef.NEFFormatError, match="must be a float tensor"):
        run_node("LpPool", [x.astype(np.int32)], {"kernel_shape": [2, 2]}, opset=18)
    with pytest.raises(nef.NEFUnsupportedError, match="LpPool from its opset-2 revision"):
        run_node("LpPool", [x], {"kernel_shape": [2, 2]}, opset=1)


# ---- window functions ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["HannWindow", "HammingWindow", "BlackmanWindow"])
def test_windows(op):
    T = onnx.TensorProto
    for size in [0, 1, 2, 7, 10]:
        for periodic in [0, 1]:
            for dt, tol in [(T.FLOAT, 1e-6), (T.DOUBLE, 1e-12), (T.FLOAT16, 1e-3)]:
                if size == 1 and periodic == 0:
                    continue  # 0 / 0: NaN in both, checked below
                attrs = {"periodic": periodic, "output_datatype": dt}
                both(op, [np.array(size, np.int64)], attrs, opset=17, static=(0,), rtol=tol,
                     atol=tol)
    got = run_node(op, [np.array(1, np.int32)], {"periodic": 0}, opset=17, static=(0,))
    assert got.shape == (1,) and np.isnan(got[0])
    # the size from a graph input: specialized on its value at each run
    m, feed, outs = make_model(op, [np.array(5, np.int64)], opset=17)
    g = nef.from_onnx(m)
    for size in (5, 8):
        check(g.run({"in0": np.array(size, np.int64)})[outs[0]],
              ref_node(op, [np.array(size, np.int64)], opset=17, static=(0,)))


def test_window_errors():
    with pytest.raises(nef.NEFFormatError, match="size must be a scalar"):
        run_node("HannWindow", [i64(4)], opset=17, static=(0,))
    with pytest.raises(nef.NEFFormatError, match=r"size must be in \[0, 2\^48\]"):
        run_node("HannWindow", [np.array(-1, np.int64)], opset=17, static=(0,))
    with pytest.raises(nef.NEFUnsupportedError, match="output_datatype COMPLEX64"):
        run_node("HannWindow", [np.array(3, np.int64)],
                 {"output_datatype": onnx.TensorProto.COMPLEX64}, opset=17, static=(0,))
    with pytest.raises(nef.NEFFormatError, match="does not exist in opset 16"):
        run_node("HannWindow", [np.array(3, np.int64)], opset=16, static=(0,))


# ---- CenterCropPad, GroupNormalization ----------------------------------------------------------

def center_crop_pad_ref(x, shape, axes):
    out = x
    for a, want in zip(axes, shape):
        dim = out.shape[a]
        if want < dim:
            s = (dim - want) // 2
            out = np.take(out, np.arange(s, s + want), axis=a)
        elif want > dim:
            pads = [(0, 0)] * out.ndim
            pads[a] = ((want - dim) // 2, want - dim - (want - dim) // 2)
            out = np.pad(out, pads)
    return out


def test_center_crop_pad():
    x = rand(RNG, (5, 6, 3))
    for shape, axes in [((3, 9, 3), None), ((4, 4), [0, 1]), ((7,), [-1]), ((2, 8), [2, 0]),
                        ((0, 6), [0, 1])]:
        attrs = {} if axes is None else {"axes": axes}
        ax = list(range(3)) if axes is None else [a % 3 for a in axes]
        check(run_node("CenterCropPad", [x, i64(*shape)], attrs, opset=18, static=(1,)),
              center_crop_pad_ref(x, shape, ax))
    xi = RNG.integers(0, 9, (4, 5)).astype(np.int32)
    check(run_node("CenterCropPad", [xi, i64(7, 2)], opset=18, static=(1,)),
          center_crop_pad_ref(xi, (7, 2), [0, 1]))
    with pytest.raises(nef.NEFFormatError, match="shape has 2 values for 3 axes"):
        run_node("CenterCropPad", [x, i64(1, 2)], opset=18, static=(1,))
    with pytest.raises(nef.NEFFormatError, match="axis 0 is listed twice"):
        run_node("CenterCropPad", [x, i64(1, 2)], {"axes": [0, -3]}, opset=18, static=(1,))
    with pytest.raises(nef.NEFShapeError, match="axis 3 out of range"):
        run_node("CenterCropPad", [x, i64(1)], {"axes": [3]}, opset=18, static=(1,))
    with pytest.raises(nef.NEFFormatError, match="shape value -1"):
        run_node("CenterCropPad", [x, i64(-1)], {"axes": [0]}, opset=18, static=(1,))


def group_norm_ref(x, g, scale, bias, eps, per_channel):
    n, c = x.shape[:2]
    xg = x.astype(np.float64).reshape(n, g, -1)
    y = (xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + eps)
    if not per_channel:
        y = y * scale.reshape(1, g, 1) + bias.reshape(1, g, 1)
        return y.reshape(x.shape)
    cs = (1, c) + (1,) * (x.ndim - 2)
    return y.reshape(x.shape) * scale.reshape(cs) + bias.reshape(cs)


@pytest.mark.parametrize("shape,g", [((2, 6, 3, 4), 3), ((3, 4), 2), ((1, 8, 5), 8), ((2, 4, 3), 1)])
def test_group_norm(shape, g):
    x = rand(RNG, shape)
    c = shape[1]
    for opset, n_aff in [(18, g), (21, c)]:
        scale, bias = rand(RNG, (n_aff,)), rand(RNG, (n_aff,))
        got = run_node("GroupNormalization", [x, scale, bias], {"num_groups": g, "epsilon": 1e-3},
                       opset=opset)
        check(got, group_norm_ref(x, g, scale, bias, 1e-3, opset >= 21).astype(np.float32),
              rtol=1e-4, atol=1e-5)
    both("GroupNormalization", [x, rand(RNG, (c,)), rand(RNG, (c,))], {"num_groups": g},
         opset=21, rtol=1e-4, atol=1e-5)


def test_group_norm_errors():
    x = rand(RNG, (2, 6, 3))
    s3 = rand(RNG, (3,))
    with pytest.raises(nef.NEFFormatError, match="num_groups 4 must divide the channels"):
        run_node("GroupNormalization", [x, s3, s3], {"num_groups": 4}, opset=18)
    with pytest.raises(nef.NEFFormatError, match=r"must be \(C,\) = \(6,\)"):
        run_node("GroupNormalization", [x, s3, s3], {"num_groups": 3}, opset=21)
    with pytest.raises(nef.NEFUnsupportedError, match="stash_type 0"):
        run_node("GroupNormalization", [x, rand(RNG, (6,)), rand(RNG, (6,))],
                 {"num_groups": 3, "stash_type": 0}, opset=21)


# ---- MaxUnpool, AffineGrid ------------------------------------------------------------------------

def test_max_unpool():
    x = rand(RNG, (2, 3, 6, 7))
    # pools whose unpooled shape is the input's (the indices address that shape)
    for attrs in [{"kernel_shape": [2, 3], "strides": [2, 2]},
                  {"kernel_shape": [3, 3], "strides": [3, 3], "pads": [0, 1, 0, 1]}]:
        vals, idx = ref_node("MaxPool", [x], attrs, opset=12, n_out=2)
        both("MaxUnpool", [vals, idx], attrs, opset=11)
        shape = list(ref_node("MaxUnpool", [vals, idx], attrs, opset=11).shape)
        bigger = np.array(shape[:2] + [shape[2] + 2, shape[3] + 1], np.int64)
        both("MaxUnpool", [vals, idx, bigger], attrs, opset=11, static=(2,))
    # a repeated index keeps the last value; 1-D, float64, revision 9
    v = np.array([[[1.0, 2.0, 3.0]]])
    check(run_node("MaxUnpool", [v, i64([[[1, 1, 4]]])], {"kernel_shape": [2], "strides": [2]},
                   opset=9), np.array([[[0, 2.0, 0, 0, 3.0, 0]]]))


def test_max_unpool_errors():
    v = rand(RNG, (1, 1, 3))
    a = {"kernel_shape": [2], "strides": [2]}
    with pytest.raises(nef.NEFValidationError, match="out of range"):
        run_node("MaxUnpool", [v, i64([[[0, 1, 6]]])], a, opset=11)
    with pytest.raises(nef.NEFFormatError, match="must be int64 of the input's shape"):
        run_node("MaxUnpool", [v, i64([[[0, 1]]])], a, opset=11)
    with pytest.raises(nef.NEFFormatError, match="not be smaller than"):
        run_node("MaxUnpool", [v, i64([[[0, 1, 2]]]), i64(1, 1, 5)], a, opset=11, static=(2,))
    with pytest.raises(nef.NEFFormatError, match="kernel_shape"):
        run_node("MaxUnpool", [v, i64([[[0, 1, 2]]])], {"kernel_shape": [2, 2]}, opset=11)


@pytest.mark.parametrize("align", [0, 1])
def test_affine_grid(align):
    for size in [(2, 3, 4, 5), (1, 1, 1, 6), (2, 2, 3, 4, 5)]:
        r = len(size) - 2
        theta = rand(RNG, (size[0], r, r + 1), lo=-1, hi=1)
        both("AffineGrid", [theta, i64(*size)], {"align_corners": align}, opset=20, static=(1,),
             rtol=1e-5, atol=1e-6)
    # with GridSample: an identity theta reproduces the input (align_corners 1)
    if align:
        x = rand(RNG, (2, 3, 4, 5))
        eye = np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (2, 1, 1))
        grid = run_node("AffineGrid", [eye, i64(2, 3, 4, 5)], {"align_corners": 1}, opset=20,
                        static=(1,))
        check(run_node("GridSample", [x, grid], {"align_corners": 1}, opset=20), x, rtol=1e-5,
              atol=1e-5)


def test_affine_grid_errors():
    theta = rand(RNG, (2, 2, 3))
    with pytest.raises(nef.NEFFormatError, match=r"must be a float \(N, 2, 3\) with N = 3"):
        run_node("AffineGrid", [theta, i64(3, 1, 4, 4)], opset=20, static=(1,))
    with pytest.raises(nef.NEFFormatError, match=r"must be \(N, C, H, W\)"):
        run_node("AffineGrid", [theta, i64(2, 1, 4)], opset=20, static=(1,))
    with pytest.raises(nef.NEFFormatError, match="negative dim"):
        run_node("AffineGrid", [theta, i64(2, 1, -4, 4)], opset=20, static=(1,))


# ---- Col2Im ---------------------------------------------------------------------------------------

def col2im_ref(data, image, block, dil, pads, strides):
    """Sums each column value into its image position, in float64 (positions in the padding
    dropped)."""
    n = len(image)
    k = int(np.prod(block))
    nb, ck, _ = data.shape
    c = ck // k
    cols = [(image[i] + pads[i] + pads[i + n] - (dil[i] * (block[i] - 1) + 1)) // strides[i] + 1
            for i in range(n)]
    out = np.zeros((nb, c) + tuple(image))
    d = data.astype(np.float64).reshape(nb, c, k, -1)
    for kk, off in enumerate(np.ndindex(*block)):
        for ll, col in enumerate(np.ndindex(*cols)):
            at = [col[i] * strides[i] - pads[i] + off[i] * dil[i] for i in range(n)]
            if all(0 <= at[i] < image[i] for i in range(n)):
                out[(slice(None), slice(None)) + tuple(at)] += d[:, :, kk, ll]
    return out


def test_col2im():
    for image, block, dil, pads, strides in [
            ((5, 6), (2, 3), (1, 1), (0, 0, 0, 0), (1, 1)),
            ((6, 7), (3, 2), (2, 1), (1, 0, 2, 1), (2, 3)),
            ((4, 3, 5), (2, 1, 2), (1, 1, 2), (0, 1, 0, 1, 0, 1), (1, 2, 1)),
            ((7,), (3,), (2,), (2, 1), (2,))]:
        n = len(image)
        cols = [(image[i] + pads[i] + pads[i + n] - (dil[i] * (block[i] - 1) + 1)) // strides[i]
                + 1 for i in range(n)]
        data = rand(RNG, (2, 3 * int(np.prod(block)), int(np.prod(cols))))
        attrs = {"dilations": list(dil), "pads": list(pads), "strides": list(strides)}
        got = run_node("Col2Im", [data, i64(*image), i64(*block)], attrs, opset=18,
                       static=(1, 2))
        check(got, col2im_ref(data, image, block, dil, pads, strides).astype(np.float32),
              rtol=1e-5, atol=1e-5)
    data = rand(RNG, (1, 4, 12))
    both("Col2Im", [data, i64(4, 5), i64(2, 2)], opset=18, static=(1, 2))
    with pytest.raises(nef.NEFFormatError, match=r"must be \(N, C \* 4, 12\)"):
        run_node("Col2Im", [rand(RNG, (1, 4, 11)), i64(4, 5), i64(2, 2)], opset=18,
                 static=(1, 2))
    with pytest.raises(nef.NEFFormatError, match="does not fit the padded image"):
        run_node("Col2Im", [data, i64(1, 5), i64(3, 2)], opset=18, static=(1, 2))
    with pytest.raises(nef.NEFFormatError, match="one value per spatial dim"):
        run_node("Col2Im", [data, i64(4, 5), i64(2)], opset=18, static=(1, 2))


# ---- Det ------------------------------------------------------------------------------------------

def test_det():
    for shape in [(3, 3), (2, 4, 4), (2, 1, 5, 5), (1, 1), (3, 0, 0)]:
        x = rand(RNG, shape, "float64")
        check(run_node("Det", [x], opset=11), np.linalg.det(x), rtol=1e-10, atol=1e-12)
        x32 = x.astype(np.float32)
        both("Det", [x32], opset=22, rtol=1e-4, atol=1e-5)
    sing = np.array([[1, 2, 3], [2, 4, 6], [0, 1, 1]], np.float32)
    check(run_node("Det", [sing], opset=11), np.float32(0))
    x = rand(RNG, (3, 4, 4))
    check(nef.det(nef.tensor(x).transpose(0, 2, 1)).numpy(), np.linalg.det(x.astype(np.float64))
          .astype(np.float32), rtol=1e-4, atol=1e-5)
    with pytest.raises(nef.NEFFormatError, match=r"square matrices \[..., M, M\]"):
        run_node("Det", [rand(RNG, (2, 3))], opset=11)
    with pytest.raises(nef.NEFFormatError, match="must be a float tensor"):
        run_node("Det", [np.eye(2, dtype=np.int32)], opset=11)


def test_bitcast_views_the_bytes_and_checks_widths():
    x = RNG.standard_normal((3, 5)).astype(np.float32)
    x[0, 0] = np.nan
    check(run_node("BitCast", [x], {"to": TensorProto.INT32}, opset=26), x.view(np.int32))
    u = RNG.integers(0, 2**64 - 1, (7,), dtype=np.uint64, endpoint=True)
    check(run_node("BitCast", [u], {"to": TensorProto.DOUBLE}, opset=26).view(np.uint64), u)
    h = RNG.integers(0, 65535, (4, 2), dtype=np.uint16, endpoint=True)
    check(run_node("BitCast", [h], {"to": TensorProto.INT16}, opset=26), h.view(np.int16))
    # Bytes other than 0/1 read as bool are normalized (kernels rely on 0/1 bools).
    b = np.array([0, 1, 2, 255], np.uint8)
    check(run_node("BitCast", [b], {"to": TensorProto.BOOL}, opset=26), b != 0)
    with pytest.raises(nef.NEFFormatError, match="BitCast.*bits wide"):
        run_node("BitCast", [x], {"to": TensorProto.INT16}, opset=26)
    f8 = run_node("BitCast", [b], {"to": TensorProto.FLOAT8E4M3FN}, opset=26)
    assert f8.dtype.name == "float8_e4m3fn"
    np.testing.assert_array_equal(f8.view(np.uint8), b)
    with pytest.raises(nef.NEFUnsupportedError, match="FLOAT8E8M0"):
        run_node("BitCast", [b], {"to": TensorProto.FLOAT8E8M0}, opset=26)
