"""ONNX layout and neural-network converters (src/onnx/ops/shape.cpp, nn.cpp): the edge semantics
ONNX's node tests leave out (Slice clamping with extreme bounds, uneven Split, GatherElements on
sub-shapes, Trilu with far diagonals, zero-size dims, Gemm's C broadcast, LayerNormalization's
statistics, auto_pad/output_shape geometry, MaxPool's Indices, Pad/Resize with `axes`), checked
against numpy float64 or ONNX's reference evaluator, and the structured errors of bad nodes."""

import os
import sys

import numpy as np
import pytest

import nef

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_node_util import ONNX_TYPE, check, make_model, rand, run_node  # noqa: E402,F401


def ref_node(op, inputs, attrs=None, opset=18, static=(), n_out=1):
    """The same node through ONNX's reference evaluator (an independent implementation)."""
    m, feed, outs = make_model(op, inputs, attrs, opset, static, n_out)
    res = ReferenceEvaluator(m).run(None, feed)
    return res if n_out > 1 else res[0]


def i64(*v):
    return np.array(v, np.int64)


# ---- Slice -------------------------------------------------------------------------------------

def onnx_slice_ref(x, starts, ends, axes, steps):
    """ONNX's clamping rules written out (they differ from Python's for negative steps)."""
    idx = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        n = x.shape[a]
        s = s + n if s < 0 else s
        e = e + n if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), n), min(max(e, 0), n)
            idx[a] = range(s, e, st)
        else:
            s, e = min(max(s, 0), n - 1), min(max(e, -1), n - 1)
            idx[a] = range(s, e, st)
    out = x
    for a, r in enumerate(idx):
        if isinstance(r, range):
            out = np.take(out, np.array(list(r), np.int64), axis=a)
    return out


BIG = np.iinfo(np.int64).max
SMALL = np.iinfo(np.int64).min


@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([0, 1], [BIG, -1], [0, 1], [1, 2]),
    ([-1], [SMALL], [1], [-1]),              # x[:, ::-1] through INT64_MIN
    ([BIG], [SMALL], [0], [-2]),
    ([-100], [100], [-1], [3]),
    ([2, 5], [-100, -100], [0, 1], [-1, -2]),
    ([3], [1], [0], [1]),                    # empty
    ([0], [1], [2], [-1]),                   # start 0, negative step: one element
])
def test_slice_clamping(starts, ends, axes, steps):
    rng = np.random.default_rng(10)
    x = rand(rng, (4, 7, 3))
    got = run_node("Slice", [x, i64(*starts), i64(*ends), i64(*axes), i64(*steps)],
                   static=(1, 2, 3, 4))
    check(got, onnx_slice_ref(x, starts, ends, [a % 3 for a in axes], steps))


def test_slice_zero_size_dim_negative_step():
    x = np.zeros((0, 3), np.float32)
    got = run_node("Slice", [x, i64(-1), i64(SMALL), i64(0), i64(-1)], static=(1, 2, 3, 4))
    check(got, x)


def test_slice_errors():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(nef.NEFFormatError, match="step cannot be 0"):
        run_node("Slice", [x, i64(0), i64(2), i64(0), i64(0)], static=(1, 2, 3, 4))
    with pytest.raises(nef.NEFFormatError, match="repeated axis"):
        run_node("Slice", [x, i64(0, 0), i64(2, 2), i64(1, -1)], static=(1, 2, 3))
    with pytest.raises(nef.NEFShapeError, match="out of range"):
        run_node("Slice", [x, i64(0), i64(2), i64(2)], static=(1, 2, 3))


# ---- Reshape, Split, Gather, Tile, Trilu, Range, Expand, Flatten ---------------------------------

def test_reshape_zero_copies_unless_allowzero():
    rng = np.random.default_rng(11)
    x = rand(rng, (2, 3, 4))
    check(run_node("Reshape", [x, i64(0, -1)], static=(1,)), x.reshape(2, 12))
    z = np.zeros((0, 3), np.float32)
    check(run_node("Reshape", [z, i64(3, 0)], {"allowzero": 1}, static=(1,)), z.reshape(3, 0))
    with pytest.raises(nef.NEFFormatError, match="copies dim 3"):
        run_node("Reshape", [x, i64(2, 3, 4, 0)], static=(1,))


@pytest.mark.parametrize("dim,n,want", [(7, 3, [3, 3, 1]), (6, 4, [2, 2, 2, 0]), (5, 1, [5])])
def test_split_num_outputs_uneven(dim, n, want):
    x = np.arange(dim * 2, dtype=np.float32).reshape(2, dim)
    got = run_node("Split", [x], {"axis": -1, "num_outputs": n}, n_out=n)
    got = got if n > 1 else [got]
    bounds = np.cumsum([0] + want)
    for g, b, e in zip(got, bounds[:-1], bounds[1:]):
        check(g, x[:, b:e])


def test_split_sizes_with_zero_and_bad_count():
    x = np.arange(10, dtype=np.int32)
    a, b, c = run_node("Split", [x, i64(4, 0, 6)], static=(1,), n_out=3)
    check(a, x[:4]), check(b, x[4:4]), check(c, x[4:])
    with pytest.raises(nef.NEFFormatError, match="has 2 sizes for 3 outputs"):
        run_node("Split", [x, i64(4, 6)], static=(1,), n_out=3)
    with pytest.raises(nef.NEFFormatError, match="cannot split"):
        run_node("Split", [np.arange(5, dtype=np.int32)], {"num_outputs": 4}, n_out=4)


def test_gather_scalar_and_negative_indices():
    rng = np.random.default_rng(12)
    x = rand(rng, (5, 4, 3))
    check(run_node("Gather", [x, np.array(-2, np.int64)], {"axis": 1}), x[:, -2])
    idx = np.array([[0, -1], [4, -5]], np.int32)
    check(run_node("Gather", [x, idx]), np.take(x, idx % 5, axis=0))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements_subshape_negative(axis):
    rng = np.random.default_rng(13)
    x = rand(rng, (4, 5, 6))
    ishape = [3, 2, 4]
    n = x.shape[axis]
    idx = rng.integers(-n, n, ishape).astype(np.int64)
    sub = x[tuple(slice(None) if d == axis % 3 else slice(0, ishape[d]) for d in range(3))]
    want = np.take_along_axis(sub, idx % n, axis=axis)
    check(run_node("GatherElements", [x, idx], {"axis": axis}), want)


def test_gather_elements_errors():
    x = np.ones((3, 4), np.float32)
    # 4 is out of range on axis 1 even though flat index 4 exists: a run-time error, not row 1
    with pytest.raises(nef.NEFValidationError, match="out of range"):
        run_node("GatherElements", [x, np.array([[4], [0], [0]], np.int64)], {"axis": 1})
    with pytest.raises(nef.NEFValidationError, match="out of range"):
        run_node("GatherElements", [x, np.array([[-5]], np.int64)], {"axis": 1})
    with pytest.raises(nef.NEFFormatError, match="rank"):
        run_node("GatherElements", [x, np.zeros((3,), np.int64)])
    with pytest.raises(nef.NEFFormatError, match="exceed"):
        run_node("GatherElements", [x, np.zeros((3, 5), np.int64)])


@pytest.mark.parametrize("reps", [(2, 1, 3), (0, 2, 1), (1, 1, 1)])
def test_tile(reps):
    rng = np.random.default_rng(14)
    x = rand(rng, (2, 3, 1), "int64", -9, 9)
    check(run_node("Tile", [x, i64(*reps)], static=(1,)), np.tile(x, reps))
    with pytest.raises(nef.NEFFormatError, match="one value per dim"):
        run_node("Tile", [x, i64(2, 2)], static=(1,))


@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [0, 2, -3, 100, -100, BIG, SMALL])
def test_trilu(upper, k):
    rng = np.random.default_rng(15)
    x = rand(rng, (2, 4, 6), "int32", -9, 9)
    kk = int(np.clip(k, -10, 10))
    want = np.triu(x, kk) if upper else np.tril(x, kk)
    check(run_node("Trilu", [x, np.array(k, np.int64)], {"upper": upper}, static=(1,)), want)


def test_trilu_bad_rank():
    with pytest.raises(nef.NEFFormatError, match="rank >= 2"):
        run_node("Trilu", [np.ones(3, np.float32)])


@pytest.mark.parametrize("start,limit,delta,dtype", [
    (10, 2, -3, "int64"), (0, 0, 1, "int32"), (1.5, -2.25, -0.5, "float32"),
    (-3, 7, 2, "float64"), (5, 1, 1, "int32")])
def test_range(start, limit, delta, dtype):
    args = [np.array(v, dtype) for v in (start, limit, delta)]
    check(run_node("Range", args, static=(0, 1, 2)), np.arange(*args).astype(dtype))


def test_expand_is_bidirectional():
    rng = np.random.default_rng(16)
    x = rand(rng, (3, 1, 5))
    check(run_node("Expand", [x, i64(2, 1, 4, 1)], static=(1,)),
          x * np.ones((2, 1, 4, 1), np.float32))
    with pytest.raises(nef.NEFShapeError):
        run_node("Expand", [x, i64(4, 3)], static=(1,))


@pytest.mark.parametrize("axis", [0, 2, 3, -3])
def test_flatten(axis):
    x = np.zeros((2, 0, 3), np.float32)
    a = axis if axis >= 0 else axis + 3
    check(run_node("Flatten", [x], {"axis": axis}),
          x.reshape(int(np.prod(x.shape[:a])), int(np.prod(x.shape[a:]))))


def test_shape_size_constants():
    x = np.zeros((2, 0, 3, 4), np.float32)
    check(run_node("Shape", [x], {"start": -10, "end": 3}), i64(2, 0, 3))
    check(run_node("Shape", [x], {"start": 3, "end": 1}), np.zeros(0, np.int64))
    check(run_node("Size", [x]), np.array(0, np.int64))
    big = np.array([2**60 + 1], np.int64)
    got = run_node("ConstantOfShape", [i64(2, 3)],
                   {"value": numpy_helper.from_array(big, "v")}, static=(0,))
    check(got, np.full((2, 3), 2**60 + 1, np.int64))
    check(run_node("ConstantOfShape", [np.zeros(0, np.int64)], static=(0,)),
          np.array(0, np.float32))
    check(run_node("Constant", [], {"value_ints": [3, -1]}), i64(3, -1))
    check(run_node("Constant", [], {"value_float": 2.5}), np.array(2.5, np.float32))
    with pytest.raises(nef.NEFUnsupportedError, match="value_string"):
        run_node("Constant", [], {"value_string": "hi"})


def test_dropout_inference_and_zero_ratio_training():
    rng = np.random.default_rng(17)
    x = rand(rng, (3, 4))
    y, mask = run_node("Dropout", [x, np.array(0.3, np.float32)], static=(1,), n_out=2)
    check(y, x), check(mask, np.ones((3, 4), bool))
    y, mask = run_node("Dropout", [x, np.array(0.0, np.float32), np.array(True)],
                       static=(1, 2), n_out=2)
    check(y, x), check(mask, np.ones((3, 4), bool))
    with pytest.raises(nef.NEFUnsupportedError, match="training_mode"):
        run_node("Dropout", [x, np.array(0.5, np.float32), np.array(True)], static=(1, 2))


def test_unsqueeze_squeeze_errors():
    x = np.ones((3, 1), np.float32)
    with pytest.raises(nef.NEFFormatError, match="repeated axis"):
        run_node("Unsqueeze", [x, i64(0, -4)], static=(1,))
    with pytest.raises(nef.NEFShapeError):
        run_node("Squeeze", [x, i64(0)], static=(1,))
    check(run_node("Unsqueeze", [x, i64(-1, 0)], static=(1,)), x.reshape(1, 3, 1, 1))


# ---- Gemm, norms -------------------------------------------------------------------------------

@pytest.mark.parametrize("cshape", [None, (), (1,), (5,), (3, 1), (3, 5)])
def test_gemm_c_broadcast(cshape):
    rng = np.random.default_rng(20)
    a, b = rand(rng, (4, 3)), rand(rng, (5, 4))
    c = None if cshape is None else rand(rng, cshape)
    attrs = {"transA": 1, "transB": 1, "alpha": 0.5, "beta": -2.0}
    want = 0.5 * a.T.astype(np.float64) @ b.T
    if c is not None:
        want = want - 2.0 * c
    check(run_node("Gemm", [a, b, c], attrs), want, "float32", rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("static", [(1, 2), (2,), (1,)])
@pytest.mark.parametrize("m,k,n", [(1, 7, 5), (38, 67, 131), (3, 1, 2)])
def test_gemm_transposed_weight(dtype, static, m, k, n):
    """transB with B an initializer (a transposed view of a constant, packed once per plan) or a
    graph input (a transposed view): the same values, against numpy float64, at odd sizes."""
    rng = np.random.default_rng(m * 1000 + k + n)
    a, b, c = rand(rng, (m, k), dtype), rand(rng, (n, k), dtype), rand(rng, (n,), dtype)
    want = a.astype(np.float64) @ b.astype(np.float64).T + c
    tol = 1e-5 if dtype == "float32" else 1e-12
    got = run_node("Gemm", [a, b, c], {"transB": 1}, static=static)
    check(got, want, dtype, rtol=tol, atol=tol * k)
    # Twice through one graph (the plan cache): the same result.
    g = nef.from_onnx(make_model("Gemm", [a, b, c], {"transB": 1}, static=static)[0])
    feed = {f"in{i}": v for i, v in enumerate((a, b, c)) if i not in static}
    check(g.run(feed)["out0"], want, dtype, rtol=tol, atol=tol * k)
    check(g.run(feed)["out0"], want, dtype, rtol=tol, atol=tol * k)


def test_gemm_transposed_constant_weight_is_prepacked():
    """A Gemm's constant B with transB is packed once per plan, like an untransposed one: the
    compiler hands the transposed view of the constant to the kernel's prepare (no transposed
    copy is made; before, the view was packed on every run). B is above constant folding's 4 MB
    bound, which would otherwise fold the transpose."""
    rng = np.random.default_rng(23)
    a, b, c = rand(rng, (4, 1027)), rand(rng, (1030, 1027)), rand(rng, (1030,))
    g = nef.from_onnx(make_model("Gemm", [a, b, c], {"transB": 1}, static=(1, 2))[0])
    g.run({"in0": a})
    before = nef.stats()["gemm_prepacked"]
    out = g.run({"in0": a})["out0"]
    assert nef.stats()["gemm_prepacked"] > before
    check(out, a.astype(np.float64) @ b.T.astype(np.float64) + c, "float32", rtol=1e-5, atol=1e-3)


def test_gemm_rejects_growing_c():
    with pytest.raises(nef.NEFFormatError, match="does not broadcast"):
        run_node("Gemm", [np.ones((3, 4), np.float32), np.ones((4, 1), np.float32),
                          np.ones((3, 2), np.float32)])


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_layer_norm_with_stats(axis):
    rng = np.random.default_rng(21)
    x = rand(rng, (2, 3, 5))
    a = axis % 3
    w, b = rand(rng, x.shape[a:]), rand(rng, x.shape[a:])
    y, mean, inv = run_node("LayerNormalization", [x, w, b], {"axis": axis, "epsilon": 1e-3},
                            n_out=3)
    xf = x.astype(np.float64)
    axes = tuple(range(a, 3))
    mu = xf.mean(axis=axes, keepdims=True)
    r = 1 / np.sqrt(((xf - mu) ** 2).mean(axis=axes, keepdims=True) + 1e-3)
    check(y, (xf - mu) * r * w + b, "float32", atol=1e-5)
    check(mean, mu, "float32", atol=1e-6)
    check(inv, r, "float32", rtol=1e-4)


@pytest.mark.parametrize("shape,dtype", [((4, 3), "float32"), ((2, 3, 2, 2, 3), "float32"),
                                         ((2, 3, 5), "float16"), ((2, 3, 4), "float64")])
def test_batch_norm_inference(shape, dtype):
    rng = np.random.default_rng(22)
    x = rand(rng, shape, dtype)
    s, b, m = (rand(rng, (3,), dtype) for _ in range(3))
    v = rand(rng, (3,), dtype, 0.1, 2)
    cs = (1, 3) + (1,) * (len(shape) - 2)
    f = [t.astype(np.float64) for t in (x, s, b, m, v)]
    want = (f[0] - f[3].reshape(cs)) / np.sqrt(f[4].reshape(cs) + 1e-5) * f[1].reshape(cs) + \
        f[2].reshape(cs)
    tol = 3e-3 if dtype == "float16" else 1e-5
    check(run_node("BatchNormalization", [x, s, b, m, v]), want, dtype, rtol=tol, atol=tol)
    with pytest.raises(nef.NEFUnsupportedError, match="training_mode"):
        run_node("BatchNormalization", [x, s, b, m, v], {"training_mode": 1})


def test_instance_norm_3d():
    rng = np.random.default_rng(23)
    x = rand(rng, (2, 3, 7))
    s, b = rand(rng, (3,)), rand(rng, (3,))
    xf = x.astype(np.float64)
    mu = xf.mean(axis=2, keepdims=True)
    want = (xf - mu) / np.sqrt(xf.var(axis=2, keepdims=True) + 1e-5) * s[:, None] + b[:, None]
    check(run_node("InstanceNormalization", [x, s, b]), want, "float32", atol=1e-5)


# ---- Conv, pools: geometry against ONNX's reference ---------------------------------------------

def same_pads(auto_pad, size, kernel, strides, dilations):
    """The pads ONNX's auto_pad implies (spec formula: out = ceil(in / stride))."""
    if auto_pad == "VALID":
        return [0] * (2 * len(size))
    begins, ends = [], []
    for n, k, s, d in zip(size, kernel, strides, dilations):
        total = max(0, (-(-n // s) - 1) * s + (k - 1) * d + 1 - n)
        small, big = total // 2, total - total // 2
        begins.append(small if auto_pad == "SAME_UPPER" else big)
        ends.append(big if auto_pad == "SAME_UPPER" else small)
    return begins + ends


def conv2d_ref(x, w, b, strides, pads, dil, group):
    """Direct 2-D convolution in float64 (window sums by strided slicing)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, c, h, wd = xp.shape
    m, cg, kh, kw = w.shape
    oh = (h - (kh - 1) * dil[0] - 1) // strides[0] + 1
    ow = (wd - (kw - 1) * dil[1] - 1) // strides[1] + 1
    out = np.zeros((n, m, oh, ow))
    mg = m // group
    for g in range(group):
        xs = xp[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                win = xs[:, :, i * dil[0]:i * dil[0] + (oh - 1) * strides[0] + 1:strides[0],
                         j * dil[1]:j * dil[1] + (ow - 1) * strides[1] + 1:strides[1]]
                out[:, g * mg:(g + 1) * mg] += np.einsum("nchw,mc->nmhw", win,
                                                         w[g * mg:(g + 1) * mg, :, i, j])
    return out + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("attrs", [
    {"auto_pad": "SAME_LOWER", "strides": [2, 3]},
    {"auto_pad": "SAME_UPPER", "strides": [2, 2], "dilations": [2, 1]},
    {"auto_pad": "VALID", "strides": [1, 2]},
    {"pads": [1, 0, 2, 1], "group": 2},
])
def test_conv_geometry(attrs):
    rng = np.random.default_rng(30)
    x = rand(rng, (2, 4, 7, 8))
    group = attrs.get("group", 1)
    w = rand(rng, (6, 4 // group, 3, 2))
    bias = rand(rng, (6,))
    strides, dil = attrs.get("strides", [1, 1]), attrs.get("dilations", [1, 1])
    pads = attrs.get("pads") or same_pads(attrs["auto_pad"], x.shape[2:], w.shape[2:], strides,
                                          dil)
    want = conv2d_ref(x, w, bias, strides, pads, dil, group)
    if attrs.get("auto_pad", "").startswith("SAME"):
        assert want.shape[2:] == tuple(-(-n // s) for n, s in zip(x.shape[2:], strides))
    check(run_node("Conv", [x, w, bias], attrs), want, "float32", rtol=1e-4, atol=1e-4)


def conv_transpose2d_ref(x, w, b, strides, pads, out_pad):
    """Scatter form in float64; negative pads extend the output with zeros (+ bias)."""
    n, c, h, wd = x.shape
    _, m, kh, kw = w.shape
    fh, fw = strides[0] * (h - 1) + kh + out_pad[0], strides[1] * (wd - 1) + kw + out_pad[1]
    full = np.zeros((n, m, fh, fw))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * strides[0]:i * strides[0] + kh, j * strides[1]:j * strides[1] + kw] += \
                np.einsum("nc,cmhw->nmhw", x[:, :, i, j].astype(np.float64), w.astype(np.float64))
    ext = np.pad(full, ((0, 0), (0, 0), (max(-pads[0], 0), max(-pads[2], 0)),
                        (max(-pads[1], 0), max(-pads[3], 0))))
    pb = [max(p, 0) for p in pads]
    out = ext[:, :, pb[0]:ext.shape[2] - pb[2], pb[1]:ext.shape[3] - pb[3]]
    return out + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("attrs,pads", [
    ({"strides": [2, 3], "output_shape": [9, 12]}, [-1, 0, -1, 0]),  # output beyond both ends
    ({"strides": [2, 3], "output_shape": [8, 11]}, [0, 1, -1, 0]),
    ({"strides": [2, 2], "auto_pad": "SAME_LOWER"}, [1, 1, 0, 0]),
    ({"strides": [2, 2], "auto_pad": "SAME_UPPER"}, [0, 0, 1, 1]),
    ({"strides": [3, 2], "pads": [1, 0, 2, 1], "output_padding": [2, 1]}, [1, 0, 2, 1]),
])
def test_conv_transpose_geometry(attrs, pads):
    rng = np.random.default_rng(31)
    x = rand(rng, (1, 2, 3, 4))
    w = rand(rng, (2, 3, 3, 3))
    b = rand(rng, (3,))
    want = conv_transpose2d_ref(x, w, b, attrs["strides"], pads,
                                attrs.get("output_padding", [0, 0]))
    if "output_shape" in attrs:
        assert want.shape[2:] == tuple(attrs["output_shape"])
    check(run_node("ConvTranspose", [x, w, b], attrs), want, "float32", rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float32", "int8"])
@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1]},
    {"kernel_shape": [2, 2], "strides": [2, 2], "storage_order": 1, "ceil_mode": 1},
    {"kernel_shape": [2, 3], "dilations": [2, 1], "auto_pad": "SAME_UPPER"},
])
def test_max_pool_indices(attrs, dtype):
    rng = np.random.default_rng(32)
    x = rand(rng, (2, 3, 5, 7), dtype, -100, 100)
    y, idx = run_node("MaxPool", [x], attrs, n_out=2)
    ry, ridx = ref_node("MaxPool", [x], attrs, n_out=2)
    check(y, ry)
    check(idx, ridx)


def test_max_pool_indices_3d():
    rng = np.random.default_rng(33)
    x = rand(rng, (1, 2, 4, 5, 3))
    attrs = {"kernel_shape": [2, 3, 2], "strides": [1, 2, 1], "pads": [0, 1, 1, 1, 1, 0]}
    y, idx = run_node("MaxPool", [x], attrs, n_out=2)
    ry, ridx = ref_node("MaxPool", [x], attrs, n_out=2)
    check(y, ry), check(idx, ridx)


def test_avg_pool_same_lower_and_global_pools():
    rng = np.random.default_rng(34)
    x = rand(rng, (2, 3, 6, 5))
    attrs = {"kernel_shape": [3, 2], "strides": [2, 2], "auto_pad": "SAME_LOWER"}
    check(run_node("AveragePool", [x], attrs), ref_node("AveragePool", [x], attrs),
          rtol=1e-5, atol=1e-6)
    x3 = rand(rng, (2, 3, 4, 1, 5))
    check(run_node("GlobalAveragePool", [x3]),
          x3.astype(np.float64).mean(axis=(2, 3, 4), keepdims=True), "float32")
    check(run_node("GlobalMaxPool", [x3]), x3.max(axis=(2, 3, 4), keepdims=True))


def test_pool_errors():
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(nef.NEFFormatError, match="kernel_shape"):
        run_node("MaxPool", [x], {"kernel_shape": [2]})
    with pytest.raises(nef.NEFFormatError, match="auto_pad"):
        run_node("AveragePool", [x], {"kernel_shape": [2, 2], "auto_pad": "SAME"})
    with pytest.raises(nef.NEFFormatError, match="differs from the weight"):
        run_node("Conv", [x, np.ones((1, 1, 3, 3), np.float32)], {"kernel_shape": [2, 2]})


# ---- Pad, Resize ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_axes_and_crop(mode):
    rng = np.random.default_rng(40)
    x = rand(rng, (3, 4, 5))
    # axis 2: pad 2 before, 1 after; axis 0: crop 1 before, pad 1 after (crop first, as ORT)
    args = [x, i64(2, -1, 1, 1), np.array(1.5, np.float32), i64(-1, 0)]
    got = run_node("Pad", args, {"mode": mode}, opset=19, static=(1, 2, 3))
    kw = {"constant_values": 1.5} if mode == "constant" else {}
    check(got, np.pad(x[1:], ((0, 1), (0, 0), (2, 1)), mode=mode, **kw))


def test_pad_errors():
    x = np.ones((2, 2), np.float32)
    with pytest.raises(nef.NEFFormatError, match="2 values per"):
        run_node("Pad", [x, i64(1, 1)], static=(1,))
    with pytest.raises(nef.NEFFormatError, match="mode"):
        run_node("Pad", [x, i64(1, 1, 1, 1)], {"mode": "mirror"}, static=(1,))


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
def test_resize_sizes_axes_policy(policy):
    rng = np.random.default_rng(41)
    x = rand(rng, (1, 2, 5, 7))
    attrs = {"axes": [3, 2], "keep_aspect_ratio_policy": policy, "mode": "linear"}
    args = [x, None, None, i64(10, 8)]
    got = run_node("Resize", args, attrs, opset=19, static=(3,))
    check(got, ref_node("Resize", args, attrs, opset=19, static=(3,)), rtol=1e-4, atol=1e-5)


def test_resize_scales_axes_and_empty_scales():
    rng = np.random.default_rng(42)
    x = rand(rng, (1, 2, 4, 6))
    attrs = {"axes": [-1], "mode": "nearest", "nearest_mode": "floor"}
    args = [x, None, np.array([0.7], np.float32)]
    ref_attrs = dict(attrs, axes=[3])  # the reference evaluator mishandles negative axes
    check(run_node("Resize", args, attrs, opset=19, static=(2,)),
          ref_node("Resize", args, ref_attrs, opset=19, static=(2,)))
    # opset-13 style: an empty scales tensor next to sizes
    args = [x, np.zeros(0, np.float32), np.zeros(0, np.float32), i64(1, 2, 7, 3)]
    attrs = {"mode": "cubic"}
    check(run_node("Resize", args, attrs, opset=13, static=(1, 2, 3)),
          ref_node("Resize", args, attrs, opset=13, static=(1, 2, 3)), rtol=1e-4, atol=1e-5)


def test_resize_errors():
    x = np.ones((1, 1, 2, 2), np.float32)
    with pytest.raises(nef.NEFFormatError, match="either scales or sizes"):
        run_node("Resize", [x, None, np.ones(4, np.float32), i64(1, 1, 2, 2)], static=(2, 3))
    with pytest.raises(nef.NEFUnsupportedError, match="antialias"):
        run_node("Resize", [x, None, np.ones(4, np.float32)], {"antialias": 1}, opset=19,
                 static=(2,))
