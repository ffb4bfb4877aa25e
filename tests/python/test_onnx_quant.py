"""ONNX's quantized ops through nef.from_onnx against numpy references written here from the
ONNX specification (int64 for the integer products, float32 / float64 where ONNX computes in
them), ONNX Runtime as a second peer for the QLinear ops, each instruction-set variant of the
integer GEMM (NEF_CPU_TARGET), and bad inputs as structured errors."""

import os
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto

import nef

sys.path.insert(0, os.path.dirname(__file__))
from onnx_node_util import make_model, run_node  # noqa: E402

ort = pytest.importorskip("onnxruntime")

RANGE = {np.dtype("int8"): (-128, 127), np.dtype("uint8"): (0, 255),
         np.dtype("int16"): (-32768, 32767), np.dtype("uint16"): (0, 65535)}


def q8(rng, shape, dtype):
    lo, hi = RANGE[np.dtype(dtype)]
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def expand(p, shape, axis, block):
    """A scale / zero point broadcast to `shape` (one value, per axis, or blocked)."""
    p = np.asarray(p)
    if p.size == 1:
        return p.reshape(())
    if not block:
        s = [1] * len(shape)
        s[axis] = p.size
        return p.reshape(s)
    return np.repeat(p, block, axis=axis).take(range(shape[axis]), axis=axis)


def quantize_ref(x, scale, zp, axis=1, block=0, out=np.uint8):
    with np.errstate(over="ignore"):  # float16 overflows to inf, which saturates
        v = x / expand(scale, x.shape, axis, block)  # in x's float type, as ONNX divides
    q = np.rint(v).astype(np.float64)
    if zp is not None:
        q += expand(zp, x.shape, axis, block).astype(np.float64)
    lo, hi = RANGE[np.dtype(out)]
    return np.clip(q, lo, hi).astype(out)


def dequantize_ref(x, scale, zp, axis=1, block=0):
    d = x.astype(np.float32)
    if zp is not None:
        d = d - expand(zp, x.shape, axis, block).astype(np.float32)
    return (d * expand(scale, x.shape, axis, block).astype(np.float32)).astype(scale.dtype)


# ---- QuantizeLinear / DequantizeLinear --------------------------------------------------------

@pytest.mark.parametrize("opset", [10, 13, 19, 21, 25])
@pytest.mark.parametrize("out", ["uint8", "int8"])
def test_quantize_per_tensor_rounds_half_to_even_and_saturates(opset, out):
    rng = np.random.default_rng()
    x = (rng.standard_normal((3, 37)) * 80).astype(np.float32)
    x[0, :8] = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 1e9, -1e9]  # ties at scale 1, saturation
    scale = np.array(1.0 if rng.random() < 0.5 else 0.37, np.float32)
    zp = np.array(rng.integers(*RANGE[np.dtype(out)]) // 2, out)
    got = run_node("QuantizeLinear", [x, scale, zp], opset=opset, static=(1, 2))
    np.testing.assert_array_equal(got, quantize_ref(x, scale, zp, out=out))
    if opset >= 13:  # without a zero point: uint8 from 0
        got = run_node("QuantizeLinear", [x, scale], opset=opset, static=(1,))
        np.testing.assert_array_equal(got, quantize_ref(x, scale, None, out=np.uint8))
    half = np.clip(x, -6e4, 6e4).astype(np.float16)
    if opset >= 19:  # float16 input and scale: the division in float16, as ONNX does
        s16 = scale.astype(np.float16)
        got = run_node("QuantizeLinear", [half, s16, zp], opset=opset, static=(1, 2))
        np.testing.assert_array_equal(got, quantize_ref(half, s16, zp, out=out))


@pytest.mark.parametrize("opset", [21, 25])
@pytest.mark.parametrize("out", ["int16", "uint16"])
def test_quantize_and_dequantize_16_bit(opset, out):
    """16-bit zero points (opset 21 on): the same rounding and saturation at 16-bit bounds."""
    rng = np.random.default_rng()
    x = (rng.standard_normal((4, 29)) * 3e4).astype(np.float32)
    x[0, :6] = [0.5, 1.5, -2.5, 1e9, -1e9, 70000.5]
    scale = np.array(rng.uniform(0.3, 2), np.float32)
    zp = np.array(rng.integers(*RANGE[np.dtype(out)]) // 3, out)
    got = run_node("QuantizeLinear", [x, scale, zp], opset=opset, static=(1, 2))
    assert got.dtype == np.dtype(out)
    np.testing.assert_array_equal(got, quantize_ref(x, scale, zp, out=out))
    lo, hi = RANGE[np.dtype(out)]
    xq = rng.integers(lo, hi + 1, (3, 11)).astype(out)
    got = run_node("DequantizeLinear", [xq, scale, zp], opset=opset)
    np.testing.assert_allclose(got, dequantize_ref(xq, scale, zp, axis=1), rtol=1e-6)


@pytest.mark.parametrize("f8", ["float8_e4m3fn", "float8_e5m2"])
def test_quantize_and_dequantize_float8(f8):
    """float8 outputs: x / scale rounded to the float8 type (nearest even), saturating to its
    largest finite value (saturate=1) or to inf/NaN (saturate=0), as ONNX's Cast."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    t = np.dtype(getattr(ml_dtypes, f8))
    rng = np.random.default_rng()
    x = (rng.standard_normal((3, 17)) * 100).astype(np.float32)
    x[0, :2] = [1e6, -1e6]
    scale = np.array(0.25, np.float32)
    zp = np.zeros((), t)
    fmax = float(ml_dtypes.finfo(t).max)
    got = run_node("QuantizeLinear", [x, scale, zp], opset=21, static=(1, 2))
    assert got.dtype == t
    want = np.clip(x / scale, -fmax, fmax).astype(t)
    np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))
    got = run_node("DequantizeLinear", [want, scale, zp], opset=21)
    np.testing.assert_array_equal(got, want.astype(np.float32) * scale)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dt", ["uint8", "int8"])
def test_quantize_and_dequantize_per_axis(axis, dt):
    rng = np.random.default_rng()
    x = (rng.standard_normal((5, 3, 7)) * 50).astype(np.float32)
    n = x.shape[axis]
    scale = rng.uniform(0.05, 2, n).astype(np.float32)
    zp = q8(rng, n, dt)
    got = run_node("QuantizeLinear", [x, scale, zp], {"axis": axis}, opset=13, static=(1, 2))
    np.testing.assert_array_equal(got, quantize_ref(x, scale, zp, axis=axis % 3, out=dt))
    xq = q8(rng, x.shape, dt)
    got = run_node("DequantizeLinear", [xq, scale, zp], {"axis": axis}, opset=13)
    np.testing.assert_allclose(got, dequantize_ref(xq, scale, zp, axis=axis % 3), rtol=1e-6)
    assert got.dtype == np.float32


@pytest.mark.parametrize("block", [1, 2, 3, 7])
@pytest.mark.parametrize("opset", [21, 25])
def test_blocked_quantization(block, opset):
    rng = np.random.default_rng()
    x = (rng.standard_normal((4, 10, 3)) * 20).astype(np.float32)
    nb = -(-10 // block)
    scale = rng.uniform(0.1, 1, (4, nb, 3)).astype(np.float32)
    zp = q8(rng, (4, nb, 3), "int8")
    attrs = {"axis": 1, "block_size": block}
    got = run_node("QuantizeLinear", [x, scale, zp], attrs, opset=opset, static=(1, 2))
    np.testing.assert_array_equal(got, quantize_ref(x, scale, zp, 1, block, np.int8))
    xq = q8(rng, x.shape, "int8")
    got = run_node("DequantizeLinear", [xq, scale, zp], attrs, opset=opset)
    np.testing.assert_allclose(got, dequantize_ref(xq, scale, zp, 1, block), rtol=1e-6)


def test_quantize_output_dtype_precision_and_dequantize_output_dtype():
    rng = np.random.default_rng()
    x = (rng.standard_normal((6, 5)) * 30).astype(np.float32)
    scale = np.array(0.3, np.float32)
    got = run_node("QuantizeLinear", [x, scale], {"output_dtype": TensorProto.INT8}, opset=21,
                   static=(1,))
    np.testing.assert_array_equal(got, quantize_ref(x, scale, None, out=np.int8))
    # precision: the division in float16 even for float32 operands
    got = run_node("QuantizeLinear", [x, scale], {"precision": TensorProto.FLOAT16}, opset=23,
                   static=(1,))
    want = quantize_ref(x.astype(np.float16), scale.astype(np.float16), None)
    np.testing.assert_array_equal(got, want)
    xq = q8(rng, (6, 5), "uint8")
    got = run_node("DequantizeLinear", [xq, scale, np.array(7, np.uint8)],
                   {"output_dtype": TensorProto.FLOAT16}, opset=23, static=(1, 2))
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, ((xq.astype(np.float32) - 7) * scale).astype(np.float16))


def test_dequantize_int32_and_float16_scale():
    rng = np.random.default_rng()
    x = rng.integers(-2**20, 2**20, (3, 9)).astype(np.int32)
    scale = np.array(0.001, np.float32)
    got = run_node("DequantizeLinear", [x, scale], opset=13, static=(1,))
    np.testing.assert_allclose(got, x.astype(np.float32) * scale, rtol=1e-7)
    xq = q8(rng, (3, 9), "int8")
    s16 = np.array(0.25, np.float16)
    got = run_node("DequantizeLinear", [xq, s16, np.array(-3, np.int8)], opset=19)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, ((xq.astype(np.float32) + 3) * 0.25).astype(np.float16))


# ---- DynamicQuantizeLinear -------------------------------------------------------------------

def dynamic_ref(x):
    hi = np.float32(max(0.0, x.max()))
    lo = np.float32(min(0.0, x.min()))
    scale = np.float32(1.0 if hi == lo else hi - lo) / np.float32(255)
    zp = np.rint(np.clip(np.float32(0) - lo / scale, 0, 255))
    y = np.clip(np.rint(x / scale) + zp, 0, 255)
    return y.astype(np.uint8), np.float32(scale), np.uint8(zp)


@pytest.mark.parametrize("kind", ["mixed", "positive", "negative", "zero", "one"])
def test_dynamic_quantize_linear(kind):
    rng = np.random.default_rng()
    shape = (1,) if kind == "one" else (3, 41)
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    x = {"positive": np.abs(x), "negative": -np.abs(x), "zero": np.zeros_like(x)}.get(kind, x)
    y, s, z = run_node("DynamicQuantizeLinear", [x], opset=11, n_out=3)
    wy, ws, wz = dynamic_ref(x)
    assert y.dtype == np.uint8 and z.dtype == np.uint8 and s.dtype == np.float32
    assert s.shape == () and z.shape == ()
    assert s == ws and z == wz
    np.testing.assert_array_equal(y, wy)


# ---- MatMulInteger / QLinearMatMul -----------------------------------------------------------

def matmul_ref(a, b, za, zb):
    """int64 (a - za) @ (b - zb) with per-row a zero points [M] and per-column b ones [N]."""
    A = a.astype(np.int64)
    B = b.astype(np.int64)
    if za is not None:
        A = A - (np.asarray(za, np.int64).reshape(-1, 1) if np.size(za) > 1 else np.int64(za))
    if zb is not None:
        B = B - np.asarray(zb, np.int64)
    return np.matmul(A, B)


SHAPES = [((1, 1), (1, 1)), ((1, 31), (31, 17)), ((7, 33), (33, 5)), ((13, 130), (130, 35)),
          ((2, 3, 5, 67), (3, 67, 9)), ((4, 1, 1, 3), (2, 3, 1)), ((9,), (9, 4)), ((6, 9), (9,)),
          ((0, 5), (5, 3)), ((3, 0), (0, 4)), ((3, 5), (5, 0)), ((2, 65, 300), (300, 48))]


@pytest.mark.parametrize("sa,sb", SHAPES)
@pytest.mark.parametrize("dts", [("uint8", "int8"), ("int8", "int8"), ("uint8", "uint8"),
                                 ("int8", "uint8")])
def test_matmul_integer(sa, sb, dts):
    rng = np.random.default_rng()
    a, b = q8(rng, sa, dts[0]), q8(rng, sb, dts[1])
    za = q8(rng, (), dts[0])
    zb = q8(rng, sb[-1] if len(sb) == 2 and rng.random() < 0.5 else (), dts[1])
    got = run_node("MatMulInteger", [a, b, za, zb], opset=10)
    want = matmul_ref(a, b, za, zb)
    assert got.dtype == np.int32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_matmul_integer_zero_points_optional_and_per_row():
    rng = np.random.default_rng()
    a, b = q8(rng, (6, 19), "uint8"), q8(rng, (19, 11), "int8")
    np.testing.assert_array_equal(run_node("MatMulInteger", [a, b], opset=10),
                                  matmul_ref(a, b, None, None))
    za = q8(rng, (6,), "uint8")
    np.testing.assert_array_equal(run_node("MatMulInteger", [a, b, za], opset=10),
                                  matmul_ref(a, b, za, None))
    zb = q8(rng, (11,), "int8")
    np.testing.assert_array_equal(run_node("MatMulInteger", [a, b, None, zb], opset=10),
                                  matmul_ref(a, b, None, zb))
    np.testing.assert_array_equal(run_node("MatMulInteger", [a, b, za.reshape(6, 1), zb],
                                           opset=10), matmul_ref(a, b, za, zb))


def qlinear_matmul_ref(a, sa, za, b, sb, zb, sy, zy):
    acc = matmul_ref(a, b, za, zb)
    sa_ = np.asarray(sa).reshape(-1, 1) if np.size(sa) > 1 else np.asarray(sa)
    mult = sa_ * np.asarray(sb) / np.asarray(sy)  # in the scales' dtype, as ONNX forms it
    d = acc.astype(np.float64) * mult.astype(np.float64) + np.float64(zy)
    lo, hi = RANGE[np.asarray(zy).dtype]
    return np.clip(np.rint(d), lo, hi).astype(np.asarray(zy).dtype)


@pytest.mark.parametrize("sa,sb", [((1, 31), (31, 17)), ((7, 33), (33, 5)),
                                   ((2, 3, 5, 67), (3, 67, 9)), ((40, 200), (200, 70))])
@pytest.mark.parametrize("dts", [("uint8", "int8", "uint8"), ("int8", "int8", "int8"),
                                 ("uint8", "uint8", "int8")])
@pytest.mark.parametrize("sdt", ["float32", "float16"])
def test_qlinear_matmul_against_reference_and_onnxruntime(sa, sb, dts, sdt):
    rng = np.random.default_rng()
    a, b = q8(rng, sa, dts[0]), q8(rng, sb, dts[1])
    za, zb, zy = q8(rng, (), dts[0]), q8(rng, (), dts[1]), q8(rng, (), dts[2])
    sa_, sb_ = np.array(rng.uniform(0.01, 0.1), sdt), np.array(rng.uniform(0.01, 0.1), sdt)
    sy = np.array(rng.uniform(0.5, 3) * float(sa_) * float(sb_) * np.sqrt(sa[-1]) * 40, sdt)
    ins = [a, sa_, za, b, sb_, zb, sy, zy]
    got = run_node("QLinearMatMul", ins, opset=21, static=(1, 2, 4, 5, 6, 7))
    want = qlinear_matmul_ref(a, sa_, za, b, sb_, zb, sy, zy)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    if sdt == "float32" and dts[1] == "int8" and len(sa) == 2:
        m, feed, outs = make_model("QLinearMatMul", ins, opset=10, static=(1, 2, 4, 5, 6, 7))
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        peer = sess.run(outs, feed)[0]
        # ONNX Runtime requantizes in float32: it may differ by one where float64 sits on a tie
        assert np.abs(peer.astype(np.int32) - got.astype(np.int32)).max() <= 1


# ---- ConvInteger / QLinearConv ---------------------------------------------------------------

def conv_ref(x, w, zx, zw, strides, pads, dil, group):
    """int64 direct convolution (cross-correlation), 1 to 3 spatial dims, padding with x_zp."""
    X = x.astype(np.int64) - np.int64(zx)
    W = w.astype(np.int64)
    W = W - (np.asarray(zw, np.int64).reshape((-1,) + (1,) * (w.ndim - 1)) if np.size(zw) > 1
             else np.int64(zw))
    nsp = x.ndim - 2
    X = np.pad(X, [(0, 0), (0, 0)] + [(pads[i], pads[i + nsp]) for i in range(nsp)])
    N, C = x.shape[:2]
    M, Cg = w.shape[:2]
    ks = w.shape[2:]
    out_sp = [(X.shape[2 + i] - (dil[i] * (ks[i] - 1) + 1)) // strides[i] + 1 for i in range(nsp)]
    Y = np.zeros((N, M, *out_sp), np.int64)
    Mg = M // group
    for g in range(group):
        Xg = X[:, g * Cg:(g + 1) * Cg]
        Wg = W[g * Mg:(g + 1) * Mg]
        for kidx in np.ndindex(*ks):
            sl = tuple(slice(kidx[i] * dil[i], kidx[i] * dil[i] + strides[i] * (out_sp[i] - 1) + 1,
                             strides[i]) for i in range(nsp))
            patch = Xg[(slice(None), slice(None)) + sl]  # N, Cg, out...
            Y[:, g * Mg:(g + 1) * Mg] += np.einsum("nc...,mc->nm...", patch,
                                                   Wg[(slice(None), slice(None)) + kidx])
    return Y


CONVS = [  # x shape, w shape, strides, pads, dilations, group
    ((1, 3, 9, 11), (5, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    ((2, 4, 10, 7), (6, 2, 3, 2), (2, 1), (0, 1, 2, 0), (1, 2), 2),
    ((1, 1, 13), (3, 1, 4), (3,), (2, 1), (2,), 1),
    ((1, 2, 5, 6, 4), (4, 2, 2, 3, 2), (1, 2, 1), (1, 0, 1, 0, 1, 0), (1, 1, 2), 1),
    ((1, 16, 23, 29), (8, 2, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 8),  # grouped, 2 per group
    ((1, 33, 17, 19), (70, 33, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # K odd, N > 64 rows
    ((1, 3, 2, 2), (2, 3, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # one short: empty output
    ((1, 3, 1, 1), (2, 3, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # does not fit: ShapeError
]


@pytest.mark.parametrize("xs,ws,st,pd,dl,g", CONVS)
@pytest.mark.parametrize("dts", [("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8")])
def test_conv_integer(xs, ws, st, pd, dl, g, dts):
    rng = np.random.default_rng()
    x, w = q8(rng, xs, dts[0]), q8(rng, ws, dts[1])
    zx = q8(rng, (), dts[0])
    zw = q8(rng, ws[0] if rng.random() < 0.5 else (), dts[1])
    attrs = {"strides": list(st), "pads": list(pd), "dilations": list(dl), "group": g}
    if min((xs[2 + i] + pd[i] + pd[i + len(st)] - dl[i] * (ws[2 + i] - 1) - 1) // st[i] + 1
           for i in range(len(st))) < 0:
        with pytest.raises(nef.NEFShapeError):
            run_node("ConvInteger", [x, w, zx, zw], attrs, opset=10, static=(1, 3))
        return
    got = run_node("ConvInteger", [x, w, zx, zw], attrs, opset=10, static=(1, 3))
    want = conv_ref(x, w, zx, zw, st, pd, dl, g)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)


def test_conv_integer_auto_pad_and_no_zero_points():
    rng = np.random.default_rng()
    x, w = q8(rng, (1, 3, 8, 9), "uint8"), q8(rng, (4, 3, 3, 3), "uint8")
    got = run_node("ConvInteger", [x, w], {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
                   opset=10, static=(1,))
    # SAME_UPPER with stride 2: out = ceil(in / 2); total pad = (out-1)*2 + 3 - in, extra at end
    pads = [((-(-n // 2)) - 1) * 2 + 3 - n for n in (8, 9)]
    p = [pads[0] // 2, pads[1] // 2, pads[0] - pads[0] // 2, pads[1] - pads[1] // 2]
    np.testing.assert_array_equal(got, conv_ref(x, w, 0, 0, (2, 2), p, (1, 1), 1))


def qlinear_conv_ref(x, sx, zx, w, sw, zw, sy, zy, bias, st, pd, dl, g):
    acc = conv_ref(x, w, zx, zw, st, pd, dl, g)
    if bias is not None:
        acc = acc + bias.astype(np.int64).reshape((-1,) + (1,) * (x.ndim - 2))
    sw_ = np.asarray(sw).reshape((-1,) + (1,) * (x.ndim - 2)) if np.size(sw) > 1 else sw
    mult = np.asarray(sx) * sw_ / np.asarray(sy)
    d = acc.astype(np.float64) * mult.astype(np.float64) + np.float64(zy)
    lo, hi = RANGE[np.asarray(zy).dtype]
    return np.clip(np.rint(d), lo, hi).astype(np.asarray(zy).dtype)


@pytest.mark.parametrize("xs,ws,st,pd,dl,g", CONVS[:5])
@pytest.mark.parametrize("per_channel", [False, True])
def test_qlinear_conv_against_reference_and_onnxruntime(xs, ws, st, pd, dl, g, per_channel):
    rng = np.random.default_rng()
    x, w = q8(rng, xs, "uint8"), q8(rng, ws, "int8")
    zx, zy = q8(rng, (), "uint8"), q8(rng, (), "uint8")
    zw = np.zeros(ws[0], np.int8) if per_channel else np.array(0, np.int8)
    sx = np.array(rng.uniform(0.01, 0.05), np.float32)
    sw = rng.uniform(0.01, 0.05, ws[0] if per_channel else ()).astype(np.float32)
    k = int(np.prod(ws[1:]))
    sy = np.array(float(sx) * 0.03 * np.sqrt(k) * 60, np.float32)
    bias = rng.integers(-5000, 5000, ws[0]).astype(np.int32)
    attrs = {"strides": list(st), "pads": list(pd), "dilations": list(dl), "group": g}
    ins = [x, sx, zx, w, sw, zw, sy, zy, bias]
    got = run_node("QLinearConv", ins, attrs, opset=10, static=(1, 2, 3, 4, 5, 6, 7, 8))
    want = qlinear_conv_ref(x, sx, zx, w, sw, zw, sy, zy, bias, st, pd, dl, g)
    np.testing.assert_array_equal(got, want)
    m, feed, outs = make_model("QLinearConv", ins, attrs, opset=10,
                               static=(1, 2, 3, 4, 5, 6, 7, 8))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    peer = sess.run(outs, feed)[0]
    assert np.abs(peer.astype(np.int32) - got.astype(np.int32)).max() <= 1


# ---- every instruction-set variant -----------------------------------------------------------

VARIANT_CODE = """
import sys, numpy as np
sys.path.insert(0, sys.argv[2])
from onnx_node_util import run_node
from test_onnx_quant import q8, matmul_ref, conv_ref
rng = np.random.default_rng(int(sys.argv[1]))
for (m, k, n) in [(1, 1, 1), (1, 37, 3), (5, 31, 17), (11, 129, 40), (70, 64, 33)]:
    for dts in [("uint8", "int8"), ("int8", "uint8")]:
        a, b = q8(rng, (m, k), dts[0]), q8(rng, (k, n), dts[1])
        za, zb = q8(rng, (), dts[0]), q8(rng, (n,), dts[1])
        got = run_node("MatMulInteger", [a, b, za, zb], opset=10)
        assert (got == matmul_ref(a, b, za, zb)).all(), (m, k, n, dts)
x, w = q8(rng, (1, 5, 12, 13), "uint8"), q8(rng, (7, 5, 3, 3), "int8")
zx, zw = q8(rng, (), "uint8"), q8(rng, (7,), "int8")
got = run_node("ConvInteger", [x, w, zx, zw], {"pads": [1, 0, 1, 2]}, opset=10)
assert (got == conv_ref(x, w, zx, zw, (1, 1), (1, 0, 1, 2), (1, 1), 1)).all()
print("ok")
"""


@pytest.mark.parametrize("target", ["", "avx2vnni", "avx2", "generic"])
def test_every_instruction_set_variant_is_exact(target):
    env = dict(os.environ)
    env.pop("NEF_CPU_TARGET", None)
    if target:
        env["NEF_CPU_TARGET"] = target
    seed = str(np.random.default_rng().integers(1 << 30))
    r = subprocess.run([sys.executable, "-c", VARIANT_CODE, seed, os.path.dirname(__file__)],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


# ---- bad inputs ------------------------------------------------------------------------------

def test_bad_inputs_are_structured_errors():
    rng = np.random.default_rng()
    x = rng.standard_normal((4, 6)).astype(np.float32)
    u = q8(rng, (4, 6), "uint8")
    s = np.array(0.1, np.float32)

    def q(ins, attrs=None, opset=21, op="QuantizeLinear", static=(1, 2)):
        return run_node(op, ins, attrs, opset=opset, static=static)

    with pytest.raises(nef.NEFShapeError, match=r"y_scale \(5,\).*axis 1"):
        q([x, np.ones(5, np.float32)])
    with pytest.raises(nef.NEFShapeError, match="y_zero_point"):
        q([x, np.ones(6, np.float32), np.zeros(4, np.uint8)])
    with pytest.raises(nef.NEFShapeError, match="block"):
        q([x, np.ones((4, 2), np.float32)], {"block_size": 2})
    with pytest.raises(nef.NEFTypeError, match="y_scale must be a float"):
        q([x, np.array(1, np.int32)])
    with pytest.raises(nef.NEFTypeError, match="x must be float or int32"):
        q([u, s])
    with pytest.raises(nef.NEFUnsupportedError, match="INT4"):
        q([x, s], {"output_dtype": TensorProto.INT4}, static=(1,))
    with pytest.raises(nef.NEFUnsupportedError, match="FLOAT4E2M1"):
        q([x, s], {"output_dtype": TensorProto.FLOAT4E2M1}, static=(1,))
    with pytest.raises(nef.NEFTypeError, match="output_dtype int8 differs"):
        q([x, s, np.array(3, np.uint8)], {"output_dtype": TensorProto.INT8})
    with pytest.raises(nef.NEFTypeError, match="x_zero_point"):
        q([u, s, np.array(3, np.int8)], op="DequantizeLinear")
    with pytest.raises(nef.NEFShapeError, match=r"x_scale \(3,\)"):
        q([u, np.ones(3, np.float32)], op="DequantizeLinear")
    with pytest.raises(nef.NEFTypeError, match="x must be int8, uint8, int16, uint16, float8 or int32"):
        q([x, s], op="DequantizeLinear")
    with pytest.raises(nef.NEFTypeError, match="float32"):
        run_node("DynamicQuantizeLinear", [x.astype(np.float64)], opset=11, n_out=3)
    with pytest.raises(nef.NEFShapeError, match="empty"):
        run_node("DynamicQuantizeLinear", [np.zeros((0, 3), np.float32)], opset=11, n_out=3)
    # MatMulInteger
    a, b = q8(rng, (3, 5), "uint8"), q8(rng, (5, 4), "int8")
    with pytest.raises(nef.NEFTypeError, match="A must be int8 or uint8"):
        run_node("MatMulInteger", [a.astype(np.int32), b], opset=10)
    with pytest.raises(nef.NEFShapeError, match="inner dims"):
        run_node("MatMulInteger", [a, q8(rng, (6, 4), "int8")], opset=10)
    with pytest.raises(nef.NEFTypeError, match="zero points"):
        run_node("MatMulInteger", [a, b, np.array(1, np.int8)], opset=10)
    with pytest.raises(nef.NEFUnsupportedError, match="a_zero_point"):
        run_node("MatMulInteger", [a, b, np.zeros(7, np.uint8)], opset=10)
    with pytest.raises(nef.NEFUnsupportedError, match="b_zero_point"):
        run_node("MatMulInteger", [q8(rng, (2, 3, 5), "uint8"), q8(rng, (2, 5, 4), "int8"), None,
                                   np.zeros((2, 1, 4), np.int8)], opset=10)
    # ConvInteger / QLinearConv / QLinearMatMul
    xc, wc = q8(rng, (1, 2, 5, 5), "uint8"), q8(rng, (3, 2, 3, 3), "int8")
    with pytest.raises(nef.NEFShapeError, match="w_zero_point"):
        run_node("ConvInteger", [xc, wc, np.array(0, np.uint8), np.zeros(2, np.int8)], opset=10)
    with pytest.raises(nef.NEFUnsupportedError, match="x_zero_point"):
        run_node("ConvInteger", [xc, wc, np.zeros(2, np.uint8)], opset=10)
    with pytest.raises(nef.NEFTypeError, match="x must be int8 or uint8"):
        run_node("ConvInteger", [xc.astype(np.float32), wc], opset=10)
    one = np.array(1.0, np.float32)
    z8 = np.array(0, np.uint8)
    with pytest.raises(nef.NEFTypeError, match="B must be int32"):
        run_node("QLinearConv", [xc, one, z8, wc, one, np.array(0, np.int8), one, z8,
                                 np.zeros(3, np.int64)], opset=10)
    with pytest.raises(nef.NEFShapeError, match=r"w_scale \(2,\)"):
        run_node("QLinearConv", [xc, one, z8, wc, np.ones(2, np.float32), np.array(0, np.int8),
                                 one, z8], opset=10)
    with pytest.raises(nef.NEFShapeError, match=r"b_scale \(3,\)"):
        run_node("QLinearMatMul", [a, one, z8, b, np.ones(3, np.float32), np.array(0, np.int8),
                                   one, z8], opset=10)


# ---- the NEF ops directly (strided operands) --------------------------------------------------

def test_nef_matmul_integer_and_conv_integer_on_strided_views():
    rng = np.random.default_rng()
    a = q8(rng, (5, 2, 35), "uint8")
    bt = q8(rng, (3, 19, 35), "int8")  # b as a transposed view [3, 35, 19]
    za, zb = np.array(9, np.uint8), q8(rng, (19,), "int8")
    got = nef.matmul_integer(nef.tensor(a).transpose([1, 0, 2])[:, None],
                             nef.tensor(bt).transpose([0, 2, 1]), za, zb).numpy()
    want = matmul_ref(a.transpose(1, 0, 2)[:, None], bt.transpose(0, 2, 1), za, zb)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(nef.matmul_integer(a[:, 0], bt[0].T).numpy(),
                                  matmul_ref(a[:, 0], bt[0].T, None, None))
    x = q8(rng, (1, 3, 11, 9), "int8")
    w = q8(rng, (4, 3, 2, 3), "int8")
    xs = nef.tensor(x)[:, :, ::2]  # every other row: a strided input
    zw = q8(rng, (4,), "int8")
    got = nef.conv_integer(xs, w, np.array(-3, np.int8), zw, strides=[1, 2],
                           pads=[1, 0, 0, 1]).numpy()
    np.testing.assert_array_equal(got, conv_ref(x[:, :, ::2], w, -3, zw, (1, 2), (1, 0, 0, 1),
                                                (1, 1), 1))
    with pytest.raises(nef.NEFValidationError, match="both zero points"):
        nef.matmul_integer(a[0], bt[0].T, za)
    with pytest.raises(nef.NEFTypeError, match=r"\[matmul_integer\] a and b must be int8"):
        nef.matmul_integer(a[0].astype(np.int32), bt[0].T).numpy()
    with pytest.raises(nef.NEFTypeError, match="b_zero_point must have"):
        nef.matmul_integer(a[0], bt[0].T, za, np.array(0, np.uint8)).numpy()
    with pytest.raises(nef.NEFShapeError, match="one value per column"):
        nef.matmul_integer(a[0], bt[0].T, za, np.zeros(3, np.int8)).numpy()
    with pytest.raises(nef.NEFTypeError, match=r"\[conv_integer\] x and w"):
        nef.conv_integer(x.astype(np.float32), w).numpy()
