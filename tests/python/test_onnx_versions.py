"""ONNX opsets 7 to 12 (and the op revisions of older opsets that did not change since): the
converter table's revisions against onnx.defs, each op revision converted with the semantics
ONNX gave it (axes/split/pads/starts as attributes, 2-D coercion of Softmax, Clip's attribute
bounds, Upsample and Resize-10, TopK's k attribute, Gemm's broadcast flag, BatchNormalization's
spatial flag, ...), checked against ONNX's reference evaluator or numpy in float64, and the
graph-input dims that mean "unknown" (a negative dim_value, the dim_param '?')."""

import os
import sys
from collections import defaultdict

import numpy as np
import pytest

import nef

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_node_util import check, make_model, rand, run_node  # noqa: E402


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


RNG = np.random.default_rng(712)


# ---- the revision table ------------------------------------------------------------------------

def onnx_revisions():
    out = defaultdict(list)
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain in ("", "ai.onnx"):
            out[s.name].append(s.since_version)
    return {k: sorted(v) for k, v in out.items()}


def test_revision_table_matches_onnx():
    revs = onnx_revisions()
    table = nef._nef._onnx_converters()
    assert nef._nef._onnx_newest_opset() == onnx.defs.onnx_opset_version()
    for op, (since, oldest) in table.items():
        assert op in revs, f"{op} is not a default-domain ONNX op"
        assert list(since) == revs[op], f"{op}: NEF lists revisions {since}, onnx {revs[op]}"
        assert oldest in since


def test_every_opset_imports():
    """A model of every opset from 1 to the newest imports when its ops exist then (Relu from
    revision 6, so opset 6 on), and an op's revision decides its form."""
    for opset in range(6, onnx.defs.onnx_opset_version() + 1):
        x = rand(RNG, (2, 3))
        check(run_node("Relu", [x], opset=opset), np.maximum(x, 0))
    x = np.array([[True, False]])
    check(run_node("Not", [x], opset=1), ~x)


def test_old_revisions_are_refused_clearly():
    x = rand(RNG, (2, 3))
    with pytest.raises(nef.NEFUnsupportedError,
                       match=r"Relu node 'n' \(opset 5\): NEF implements Relu from its opset-6 "
                             r"revision; opset 5 uses its opset-1 revision"):
        run_node("Relu", [x], opset=5)
    with pytest.raises(nef.NEFUnsupportedError, match="Add from its opset-7 revision"):
        run_node("Add", [x, x], opset=6)


def test_op_before_it_exists_and_future_opset():
    with pytest.raises(nef.NEFFormatError,
                       match=r"op 'Range' does not exist in opset 10 \(ONNX defines it from "
                             r"opset 11\)"):
        run_node("Range", [np.array(0, np.int64), np.array(5, np.int64), np.array(1, np.int64)],
                 opset=10, static=(0, 1, 2))
    newest = onnx.defs.onnx_opset_version()
    m, feed, _ = make_model("Relu", [rand(RNG, (2,))], opset=newest + 1)
    with pytest.raises(nef.NEFUnsupportedError, match=f"opset {newest + 1} is newer than"):
        nef.from_onnx(m)


# ---- attribute forms before 13 -------------------------------------------------------------------

def test_squeeze_unsqueeze_axes_attribute():
    x = rand(RNG, (2, 1, 3, 1))
    for opset in (7, 11, 12):
        both("Squeeze", [x], {"axes": [1, 3]}, opset=opset)
        both("Squeeze", [x], opset=opset)
        both("Unsqueeze", [rand(RNG, (2, 3))], {"axes": [0, 3]}, opset=opset)
    both("Unsqueeze", [rand(RNG, (2, 3))], {"axes": [-1]}, opset=11)
    with pytest.raises(nef.NEFFormatError, match="attribute 'axes' is required"):
        run_node("Unsqueeze", [x], opset=11)
    with pytest.raises(nef.NEFFormatError, match="expects 1 input before opset 13"):
        run_node("Squeeze", [x, np.array([1], np.int64)], opset=12, static=(1,))


def test_split_attribute():
    x = rand(RNG, (7, 4))
    for opset in (2, 11, 12):
        both("Split", [x], {"axis": 0, "split": [2, 5]}, opset=opset, n_out=2)
        both("Split", [rand(RNG, (6, 4))], {"axis": 0}, opset=opset, n_out=3)


def test_reductions_axes_attribute():
    x = rand(RNG, (3, 4, 5))
    for op in ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceProd", "ReduceL2",
               "ReduceLogSumExp"]:
        for opset in (1, 11, 12):
            got = run_node(op, [x], {"axes": [0, 2], "keepdims": 0}, opset=opset)
            m, feed, _ = make_model(op, [x], {"axes": [0, 2], "keepdims": 0}, opset=opset)
            check(got, ReferenceEvaluator(m).run(None, feed)[0], rtol=1e-5)
    with pytest.raises(nef.NEFFormatError, match=r"axes is an attribute \(before opset 13\)"):
        run_node("ReduceSum", [x, np.array([0], np.int64)], opset=12, static=(1,))
    # ArgMax's select_last_index exists from 12 only: before, the attribute is not read.
    ties = np.array([[1, 3, 3]], np.float32)
    check(run_node("ArgMax", [ties], {"axis": 1, "select_last_index": 1}, opset=12), [[2]])
    with pytest.raises(nef.NEFUnsupportedError, match="attribute 'select_last_index'"):
        run_node("ArgMax", [ties], {"axis": 1, "select_last_index": 1}, opset=11)


def test_slice_attributes():
    x = rand(RNG, (5, 6, 7))
    both("Slice", [x], {"starts": [1, -4], "ends": [4, 100], "axes": [0, 2]}, opset=9)
    both("Slice", [x], {"starts": [0, 1], "ends": [-1, 5]}, opset=1)
    both("Slice", [x, np.array([4], np.int64), np.array([0], np.int64), np.array([1], np.int64),
                   np.array([-1], np.int64)], opset=10, static=(1, 2, 3, 4))
    with pytest.raises(nef.NEFFormatError, match="attribute 'starts' is required"):
        run_node("Slice", [x], {"ends": [1]}, opset=9)


def test_pad_attributes():
    x = rand(RNG, (3, 4))
    for mode in ["constant", "reflect", "edge"]:
        both("Pad", [x], {"pads": [1, 2, 2, 1], "mode": mode, "value": 1.5}, opset=2)
    # a negative pad crops (onnx's reference evaluator refuses it: numpy here)
    check(run_node("Pad", [x], {"pads": [0, -1, 1, 0]}, opset=10),
          np.pad(x[:, 1:], ((0, 1), (0, 0))))
    with pytest.raises(nef.NEFFormatError, match="attribute 'pads' is required"):
        run_node("Pad", [x], opset=10)


def test_clip_attributes():
    x = np.array([-np.inf, -5, -1, 0, 2, 7, np.inf, np.nan], np.float32)
    both("Clip", [x], {"min": -2.0, "max": 3.0}, opset=6)
    both("Clip", [x], {"max": 3.0}, opset=6)
    got = run_node("Clip", [x], opset=6)  # the defaults are float32's lowest and max
    big = np.finfo(np.float32).max
    check(got, np.clip(x, -big, big))
    with pytest.raises(nef.NEFFormatError, match="expects 1 input before opset 11"):
        run_node("Clip", [x, np.float32(0)], opset=10, static=(1,))


def softmax_2d_ref(x, axis, log=False):
    """Softmax before opset 13: rows of the input flattened to 2-D at axis."""
    outer = int(np.prod(x.shape[:axis]))
    x2 = x.astype(np.float64).reshape(outer, -1)
    e = np.exp(x2 - x2.max(1, keepdims=True))
    y = e / e.sum(1, keepdims=True)
    return (np.log(y) if log else y).reshape(x.shape)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family_coerces_to_2d_before_13(op):
    x = rand(RNG, (2, 3, 4))
    for opset, axis in [(7, None), (11, 1), (12, 0), (11, -1), (11, 2), (11, -3)]:
        attrs = {} if axis is None else {"axis": axis}
        got = run_node(op, [x], attrs, opset=opset)
        a = 1 if axis is None else axis % 3
        if op == "Hardmax":
            x2 = x.reshape(int(np.prod(x.shape[:a])), -1)
            want = np.zeros_like(x2)
            want[np.arange(len(x2)), x2.argmax(1)] = 1
            want = want.reshape(x.shape)
        else:
            want = softmax_2d_ref(x, a, op == "LogSoftmax")
        check(got, want.astype(np.float32), rtol=1e-5)
    # from 13 along one axis (default -1)
    both(op, [x], {"axis": 1}, opset=13)
    both(op, [x], opset=13)


def test_gemm_revisions():
    a, b = rand(RNG, (3, 4)), rand(RNG, (4, 5))
    c_row = rand(RNG, (5,))
    both("Gemm", [a, b, c_row], {"alpha": 0.5, "beta": 2.0}, opset=7, static=(2,))
    both("Gemm", [a, b, rand(RNG, (3, 5))], {"transA": 0}, opset=6, static=(2,))
    both("Gemm", [a, b, c_row], {"broadcast": 1}, opset=6, static=(2,))
    with pytest.raises(nef.NEFFormatError, match="must have the output's shape"):
        run_node("Gemm", [a, b, c_row], opset=6, static=(2,))
    with pytest.raises(nef.NEFFormatError, match="C\\) is required before opset 11"):
        run_node("Gemm", [a, b], opset=9)
    both("Gemm", [a, b], opset=11)


def test_batchnorm_revisions():
    x = rand(RNG, (2, 3, 4, 5))
    p = [rand(RNG, (3,)), rand(RNG, (3,)), rand(RNG, (3,)), rand(RNG, (3,), lo=0.5, hi=2)]
    x64 = x.astype(np.float64)
    per_c = [a.astype(np.float64).reshape(1, 3, 1, 1) for a in p]
    want = (x64 - per_c[2]) / np.sqrt(per_c[3] + 1e-3) * per_c[0] + per_c[1]
    for opset in (7, 9, 14):  # (onnx's reference evaluator fails on revision 7: numpy here)
        got = run_node("BatchNormalization", [x] + p, {"epsilon": 1e-3}, opset=opset,
                       static=(1, 2, 3, 4))
        check(got, want.astype(np.float32), rtol=1e-4, atol=1e-5)
    both("BatchNormalization", [x] + p, {"epsilon": 1e-3}, opset=14, static=(1, 2, 3, 4),
         rtol=1e-4)
    # revision 7 with spatial = 0: statistics per activation, parameters (C, H, W)
    q = [rand(RNG, (3, 4, 5)), rand(RNG, (3, 4, 5)), rand(RNG, (3, 4, 5)),
         rand(RNG, (3, 4, 5), lo=0.5, hi=2)]
    got = run_node("BatchNormalization", [x] + q, {"spatial": 0}, opset=7, static=(1, 2, 3, 4))
    want = (x64 - q[2]) / np.sqrt(q[3].astype(np.float64) + 1e-5) * q[0] + q[1]
    check(got, want.astype(np.float32), rtol=1e-4, atol=1e-5)
    with pytest.raises(nef.NEFUnsupportedError, match="attribute 'spatial'"):
        run_node("BatchNormalization", [x] + p, {"spatial": 1}, opset=9, static=(1, 2, 3, 4))


def test_topk_revisions():
    x = rand(RNG, (3, 7))
    both("TopK", [x], {"k": 3}, opset=1, n_out=2)
    both("TopK", [x, np.array([2], np.int64)], {"axis": 0}, opset=10, static=(1,), n_out=2)
    both("TopK", [x, np.array([4], np.int64)], {"largest": 0}, opset=11, static=(1,), n_out=2)
    with pytest.raises(nef.NEFUnsupportedError, match="attribute 'largest'"):
        run_node("TopK", [x, np.array([2], np.int64)], {"largest": 0}, opset=10, static=(1,),
                 n_out=2)


def test_dropout_revisions():
    x = rand(RNG, (3, 4))
    y, mask = run_node("Dropout", [x], {"ratio": 0.3}, opset=7, n_out=2)
    check(y, x)
    check(mask, np.ones_like(x))  # the mask has the input's type before revision 10
    y, mask = run_node("Dropout", [x], {"ratio": 0.3}, opset=10, n_out=2)
    check(mask, np.ones(x.shape, bool))


def upsample_ref(x, scales, mode):
    """Upsample / Resize-10: out = floor(in * scale), asymmetric coordinates, nearest rounds
    down, linear interpolates every dim (clamped at the edge), in float64."""
    out = x.astype(np.float64)
    for d, s in enumerate(scales):
        n = out.shape[d]
        m = int(np.floor(n * s))
        src = np.arange(m) / s
        if mode == "nearest":
            out = np.take(out, np.minimum(np.floor(src).astype(int), n - 1), axis=d)
        else:
            lo = np.minimum(np.floor(src).astype(int), n - 1)
            hi = np.minimum(lo + 1, n - 1)
            w = (src - lo).reshape([-1 if i == d else 1 for i in range(out.ndim)])
            out = np.take(out, lo, axis=d) * (1 - w) + np.take(out, hi, axis=d) * w
    return out


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_and_resize10(mode):
    x = rand(RNG, (1, 2, 3, 4))
    scales = [1.0, 1.0, 2.0, 1.5]
    want = upsample_ref(x, scales, mode).astype(np.float32)
    check(run_node("Upsample", [x], {"mode": mode, "scales": scales}, opset=7), want, rtol=1e-5)
    sc = np.array(scales, np.float32)
    check(run_node("Upsample", [x, sc], {"mode": mode}, opset=9, static=(1,)), want, rtol=1e-5)
    check(run_node("Resize", [x, sc], {"mode": mode}, opset=10, static=(1,)), want, rtol=1e-5)
    down = np.array([1, 1, 0.5, 0.6], np.float32)
    check(run_node("Resize", [x, down], {"mode": mode}, opset=10, static=(1,)),
          upsample_ref(x, down, mode).astype(np.float32), rtol=1e-5)
    if mode == "nearest":  # integer scales repeat each element
        check(run_node("Upsample", [x], {"mode": "nearest", "scales": [1.0, 1.0, 2.0, 3.0]},
                       opset=7), x.repeat(2, axis=2).repeat(3, axis=3))
    with pytest.raises(nef.NEFFormatError, match="Upsample scales must be >= 1"):
        run_node("Upsample", [x], {"scales": [1.0, 1.0, 0.5, 1.0]}, opset=7)
    with pytest.raises(nef.NEFFormatError, match="one value per dim"):
        run_node("Upsample", [x], {"scales": [2.0, 2.0]}, opset=7)


def test_resize11_tf_half_pixel_for_nn():
    x = rand(RNG, (1, 1, 4, 4))
    scales = np.array([1, 1, 0.6, 1.7], np.float32)
    got = run_node("Resize", [x, np.zeros(0, np.float32), scales],
                   {"mode": "nearest", "coordinate_transformation_mode": "tf_half_pixel_for_nn",
                    "nearest_mode": "floor"}, opset=11, static=(1, 2))
    out = x.astype(np.float64)
    for d in (2, 3):
        n = out.shape[d]
        m = int(np.floor(n * scales[d]))
        src = np.floor((np.arange(m) + 0.5) / scales[d]).astype(int)
        out = np.take(out, np.clip(src, 0, n - 1), axis=d)
    check(got, out.astype(np.float32))
    with pytest.raises(nef.NEFFormatError, match="only in opset 11"):
        run_node("Resize", [x, np.zeros(0, np.float32), scales],
                 {"coordinate_transformation_mode": "tf_half_pixel_for_nn"}, opset=13,
                 static=(1, 2))


def test_shape_start_end_from_15():
    x = rand(RNG, (2, 3, 4))
    check(run_node("Shape", [x], {"start": 1}, opset=15), np.array([3, 4]))
    with pytest.raises(nef.NEFUnsupportedError, match="attribute 'start'"):
        run_node("Shape", [x], {"start": 1}, opset=13)


def test_old_binary_and_variadic():
    a, b = rand(RNG, (3, 4)), rand(RNG, (4,))
    for opset in (7, 9, 12):
        both("Add", [a, b], opset=opset)
        both("Pow", [np.abs(a) + 0.5, b], opset=opset)
        both("Max", [a, b, a * 2], opset=opset)
        both("And", [a > 0, b > 0], opset=opset)
    both("Sum", [a, a], opset=6)
    both("Mean", [a, a * 3], opset=6)


# ---- unknown input dims ----------------------------------------------------------------------

def conv_model(dims):
    """x [1, 3, h, w] with the given dim entries (ints, -1 or names) -> Conv 3x3 -> Relu."""
    w = RNG.standard_normal((2, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)],
                          initializer=[numpy_helper.from_array(w, "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)])
    m.ir_version = 6
    return m, w


def conv_ref(x, w):
    n, c, h, wd = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd))
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,mc->nmhw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return np.maximum(out, 0)


@pytest.mark.parametrize("dims", [[1, 3, -1, -1], [1, 3, "?", "?"], [-1, 3, "?", -1],
                                  ["?", 3, "h", "?"]])
def test_unknown_dims_are_free(dims, tmp_path):
    m, w = conv_model(dims)
    assert m.graph.input[0].type.tensor_type.shape.dim[2].dim_value == -1 or \
        m.graph.input[0].type.tensor_type.shape.dim[2].dim_param in ("?", "h")
    onnx.checker.check_model(m)
    g = nef.from_onnx(m)
    for h, wd in [(48, 192), (5, 7), (8, 8)]:
        x = RNG.standard_normal((1, 3, h, wd)).astype(np.float32)
        y = g.run({"x": x})["y"]
        np.testing.assert_allclose(y, conv_ref(x, w), rtol=1e-4, atol=1e-4)
    # `nef import` binds them by their per-axis names
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    fixed = nef.from_onnx(str(path), dims={"x:2": 6, "x:3": 10} if dims[2] != "h" else
                          {"h": 6, "x:3": 10})
    x = RNG.standard_normal((1, 3, 6, 10)).astype(np.float32)
    np.testing.assert_allclose(fixed.run({"x": x})["y"], conv_ref(x, w), rtol=1e-4, atol=1e-4)


def test_named_dims_stay_shared():
    m, _ = conv_model([1, 3, "s", "s"])
    g = nef.from_onnx(m)
    with pytest.raises(nef.NEFShapeError, match="dim 's' is 4"):
        g.run({"x": np.zeros((1, 3, 4, 5), np.float32)})
