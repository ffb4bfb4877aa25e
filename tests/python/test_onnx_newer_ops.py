"""The newer ONNX ops (RotaryEmbedding, CausalConvWithState, LinearAttention, TensorScatter, DFT,
STFT, MelWeightMatrix, RoiAlign) and the NEF ops under them (linear_attention, roi_align): fresh
random inputs of odd sizes against float64 numpy references written here from the ONNX
definitions, strided and empty inputs, and the structured errors of malformed nodes."""

import os
import sys

import numpy as np
import pytest

import nef

onnx = pytest.importorskip("onnx")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_node_util import check, rand, run_node  # noqa: E402

RNG = np.random.default_rng(2027)


# ---- references (float64) ----------------------------------------------------------------------

def linear_attention_ref(q, k, v, state, decay=None, beta=None, scale=None):
    """q [B, Hq, T, dk], k [B, Hkv, T, dk], v [B, Hkv, T, dv], state [B, Hkv, dk, dv]."""
    q, k, v, s = (a.astype(np.float64) for a in (q, k, v, state))
    B, Hq, T, dk = q.shape
    Hkv = k.shape[1]
    G = Hq // Hkv
    scale = 1 / np.sqrt(dk) if scale is None else scale
    out = np.zeros((B, Hq, T, v.shape[3]))
    s = s.copy()
    for t in range(T):
        if decay is not None:
            s = s * np.exp(decay[:, :, t, :].astype(np.float64))[..., None]
        u = v[:, :, t, :]
        if beta is not None:
            u = beta[:, :, t, :].astype(np.float64) * (u - np.einsum("bhdm,bhd->bhm", s, k[:, :, t]))
        s = s + k[:, :, t, :, None] * u[:, :, None, :]
        for h in range(Hq):
            out[:, h, t] = scale * np.einsum("bd,bdm->bm", q[:, h, t], s[:, h // G])
    return out, s


def roi_align_ref(x, rois, bidx, oh, ow, ratio, scale, mode, half_pixel):
    x = x.astype(np.float64)
    R, C, H, W = len(rois), x.shape[1], x.shape[2], x.shape[3]
    out = np.zeros((R, C, oh, ow))
    off = 0.5 if half_pixel else 0.0
    for r in range(R):
        x0, y0, x1, y1 = (float(c) * scale - off for c in rois[r])
        rw, rh = x1 - x0, y1 - y0
        if not half_pixel:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        gh = ratio if ratio > 0 else int(np.ceil(rh / oh))
        gw = ratio if ratio > 0 else int(np.ceil(rw / ow))
        img = x[bidx[r]]
        for ph in range(oh):
            for pw in range(ow):
                vals = []
                for iy in range(gh):
                    for ix in range(gw):
                        y = y0 + ph * bh + (iy + 0.5) * bh / gh
                        xx = x0 + pw * bw + (ix + 0.5) * bw / gw
                        if y < -1 or y > H or xx < -1 or xx > W:
                            vals.append(np.zeros((4, C)))
                            continue
                        y, xx = max(y, 0.0), max(xx, 0.0)
                        ya, xa = int(y), int(xx)
                        yb, xb = ya + 1, xa + 1
                        if ya >= H - 1:
                            ya = yb = H - 1
                            y = float(ya)
                        if xa >= W - 1:
                            xa = xb = W - 1
                            xx = float(xa)
                        ly, lx = y - ya, xx - xa
                        vals.append(np.stack([(1 - ly) * (1 - lx) * img[:, ya, xa],
                                              (1 - ly) * lx * img[:, ya, xb],
                                              ly * (1 - lx) * img[:, yb, xa],
                                              ly * lx * img[:, yb, xb]]))
                if not vals:
                    continue
                v = np.stack(vals)  # [samples, 4, C]
                out[r, :, ph, pw] = (v.sum(axis=(0, 1)) / max(gh * gw, 1) if mode == "avg"
                                     else v.max(axis=(0, 1)))
    return out


def rotary_ref(x, cos, sin, pos, interleaved, rot, num_heads):
    x = x.astype(np.float64)
    shape = x.shape
    x4 = x.transpose(0, 2, 1, 3) if x.ndim == 4 else x.reshape(shape[0], shape[1], num_heads, -1)
    D = x4.shape[3]
    rot = rot or D
    if pos is not None:
        cos, sin = cos[pos], sin[pos]
    c, s = cos[:, :, None, :].astype(np.float64), sin[:, :, None, :].astype(np.float64)
    xr = x4[..., :rot]
    x1, x2 = (xr[..., 0::2], xr[..., 1::2]) if interleaved else (xr[..., :rot // 2], xr[..., rot // 2:])
    re, im = c * x1 - s * x2, s * x1 + c * x2
    y = x4.copy()
    if interleaved:
        y[..., 0:rot:2], y[..., 1:rot:2] = re, im
    else:
        y[..., :rot // 2], y[..., rot // 2:rot] = re, im
    return y.transpose(0, 2, 1, 3) if x.ndim == 4 else y.reshape(shape)


# ---- NEF ops -----------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
@pytest.mark.parametrize("dims", [(2, 3, 3, 5, 7, 3), (1, 4, 2, 1, 3, 6), (3, 2, 2, 9, 1, 1)])
def test_linear_attention_op(rule, dims):
    B, Hq, Hkv, T, dk, dv = dims
    q = rand(RNG, (B, Hq, T, dk), "float32", -1, 1)
    k = rand(RNG, (B, Hkv, T, dk), "float32", -1, 1)
    v = rand(RNG, (B, Hkv, T, dv), "float32", -1, 1)
    s = rand(RNG, (B, Hkv, dk, dv), "float32", -1, 1)
    decay = rand(RNG, (B, Hkv, T, 1 if T % 2 else dk), "float32", -1, 0) if "gated" in rule else None
    beta = rand(RNG, (B, Hkv, T, 1), "float32", 0, 1) if "delta" in rule else None
    out, st = nef.linear_attention(q, k, v, s, decay, beta, update_rule=rule, scale=0.7)
    want_o, want_s = linear_attention_ref(q, k, v, s, decay, beta, scale=0.7)
    check(out.numpy(), want_o.astype(np.float32), rtol=1e-4, atol=1e-5)
    check(st.numpy(), want_s.astype(np.float32), rtol=1e-4, atol=1e-5)


def test_linear_attention_strided_float64_and_empty():
    # Transposed (strided) q/k/v views, float64, default scale.
    q = rand(RNG, (2, 5, 3, 4), "float64", -1, 1).transpose(0, 2, 1, 3)  # [2, 3, 5, 4]
    k = rand(RNG, (2, 5, 3, 4), "float64", -1, 1).transpose(0, 2, 1, 3)
    v = rand(RNG, (2, 5, 3, 6), "float64", -1, 1).transpose(0, 2, 1, 3)
    s = rand(RNG, (2, 3, 4, 6), "float64", -1, 1)
    beta = rand(RNG, (2, 3, 5, 1), "float64", 0, 1)
    out, st = nef.linear_attention(nef.asarray(q), nef.asarray(k), nef.asarray(v), s, None, beta,
                                   update_rule="delta")
    want_o, want_s = linear_attention_ref(q, k, v, s, beta=beta)
    check(out.numpy(), want_o, rtol=1e-10, atol=1e-12)
    check(st.numpy(), want_s, rtol=1e-10, atol=1e-12)
    # T = 0: no steps, the state passes through.
    z = np.zeros((1, 2, 0, 3), np.float32)
    s0 = rand(RNG, (1, 2, 3, 4), "float32")
    out, st = nef.linear_attention(z, z, np.zeros((1, 2, 0, 4), np.float32), s0)
    assert out.numpy().shape == (1, 2, 0, 4)
    check(st.numpy(), s0)


def test_linear_attention_errors():
    q = np.zeros((1, 2, 3, 4), np.float32)
    kv = np.zeros((1, 2, 3, 4), np.float32)
    s = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(nef.NEFValidationError, match=r"\[linear_attention\] update_rule"):
        nef.linear_attention(q, kv, kv, s, update_rule="bogus")
    with pytest.raises(nef.NEFValidationError, match="takes 5 inputs"):
        nef.linear_attention(q, kv, kv, s, update_rule="gated")
    with pytest.raises(nef.NEFShapeError, match="state must be"):
        nef.linear_attention(q, kv, kv, np.zeros((1, 2, 4, 5), np.float32))
    with pytest.raises(nef.NEFShapeError, match="multiple of Hkv"):
        nef.linear_attention(q, np.zeros((1, 3, 3, 4), np.float32),
                             np.zeros((1, 3, 3, 4), np.float32), np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(nef.NEFTypeError, match="one float dtype"):
        nef.linear_attention(q, kv, kv, s.astype(np.float64))


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("half_pixel", [True, False])
@pytest.mark.parametrize("ratio", [0, 2])
def test_roi_align_op(mode, half_pixel, ratio):
    x = rand(RNG, (2, 3, 11, 7), "float32")
    rois = np.array([[0.5, 1.0, 5.5, 9.0], [-2.0, -1.0, 3.0, 2.0], [1.0, 1.0, 1.2, 1.1],
                     [3.0, 4.0, 20.0, 30.0], [6.0, 2.0, 2.0, 6.0]], np.float32)
    bidx = np.array([1, 0, 1, 0, 1], np.int64)
    got = nef.roi_align(x, rois, bidx, output_height=3, output_width=2, sampling_ratio=ratio,
                        spatial_scale=0.75, mode=mode,
                        coordinate_transformation_mode="half_pixel" if half_pixel
                        else "output_half_pixel").numpy()
    want = roi_align_ref(x, rois, bidx, 3, 2, ratio, 0.75, mode, half_pixel)
    check(got, want.astype(np.float32), rtol=1e-5, atol=1e-5)


def test_roi_align_strided_empty_and_errors():
    x = rand(RNG, (1, 5, 9, 4), "float64").transpose(0, 1, 3, 2)  # [1, 5, 4, 9] strided
    rois = np.array([[0.0, 0.0, 6.0, 3.0], [2.0, 1.0, 8.0, 3.5]])
    bidx = np.array([0, 0], np.int32)
    got = nef.roi_align(nef.asarray(x), rois, bidx, output_height=2, output_width=3).numpy()
    check(got, roi_align_ref(x, rois, bidx, 2, 3, 0, 1.0, "avg", True), rtol=1e-12, atol=1e-12)
    empty = nef.roi_align(x, np.zeros((0, 4)), np.zeros(0, np.int64), output_height=2).numpy()
    assert empty.shape == (0, 5, 2, 1)
    with pytest.raises(nef.NEFValidationError, match="batch index 3"):
        nef.roi_align(x, rois, np.array([0, 3], np.int64)).numpy()
    with pytest.raises(nef.NEFShapeError, match=r"\[roi_align\]"):
        nef.roi_align(x, rois[:, :3], bidx)
    with pytest.raises(nef.NEFTypeError, match="batch_indices"):
        nef.roi_align(x, rois, bidx.astype(np.float64))
    with pytest.raises(nef.NEFValidationError, match="mode"):
        nef.roi_align(x, rois, bidx, mode="median")
    with pytest.raises(nef.NEFValidationError, match="output_height"):
        nef.roi_align(x, rois, bidx, output_height=0)
    # hostile regions fail before any work instead of hanging
    with pytest.raises(nef.NEFValidationError, match="not finite or beyond"):
        nef.roi_align(x, np.array([[0, 0, np.nan, 1.0]]), bidx[:1]).numpy()
    with pytest.raises(nef.NEFValidationError, match="samples per bin"):
        nef.roi_align(x, np.array([[0, 0, 1e7, 1e7]]), bidx[:1]).numpy()
    with pytest.raises(nef.NEFValidationError, match="samples per bin"):
        nef.roi_align(x, rois, bidx, sampling_ratio=2**40).numpy()


# ---- ONNX converters ---------------------------------------------------------------------------

@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rank,rot,with_pos", [(4, 0, True), (4, 6, False), (3, 4, True),
                                               (3, 0, False)])
def test_rotary_embedding(interleaved, rank, rot, with_pos):
    B, S, H, D = 2, 5, 3, 10
    x = rand(RNG, (B, H, S, D) if rank == 4 else (B, S, H * D), "float32")
    half = (rot or D) // 2
    pos = RNG.integers(0, 13, (B, S)).astype(np.int64) if with_pos else None
    cshape = (13, half) if with_pos else (B, S, half)
    ang = rand(RNG, cshape, "float64", -4, 4)
    cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
    attrs = {"interleaved": interleaved, "rotary_embedding_dim": rot}
    if rank == 3:
        attrs["num_heads"] = H
    got = run_node("RotaryEmbedding", [x, cos, sin, pos], attrs, opset=23)
    want = rotary_ref(x, cos, sin, pos, interleaved, rot, H)
    check(got, want.astype(np.float32), rtol=1e-5, atol=1e-5)


def test_rotary_embedding_errors():
    x = np.zeros((1, 2, 3, 8), np.float32)
    c = np.zeros((4, 4), np.float32)
    with pytest.raises(nef.NEFFormatError, match="RotaryEmbedding node 'n'.*rotary_embedding_dim 5"):
        run_node("RotaryEmbedding", [x, c, c, np.zeros((1, 3), np.int64)],
                 {"rotary_embedding_dim": 5}, opset=23)
    with pytest.raises(nef.NEFFormatError, match="caches must be"):
        run_node("RotaryEmbedding", [x, c[:, :3], c[:, :3], np.zeros((1, 3), np.int64)], opset=23)
    with pytest.raises(nef.NEFFormatError, match="needs num_heads"):
        run_node("RotaryEmbedding", [np.zeros((1, 3, 8), np.float32), c, c,
                                     np.zeros((1, 3), np.int64)], opset=23)


def causal_conv_ref(x, w, b, past, act):
    K = w.shape[2]
    x = x.astype(np.float64)
    pad = np.zeros(x.shape[:2] + (K - 1,)) if past is None else past.astype(np.float64)
    p = np.concatenate([pad, x], axis=2)
    L = x.shape[2]
    y = np.stack([(p[:, :, t:t + K] * w[None, :, 0, :]).sum(-1) for t in range(L)], axis=-1) \
        if L else np.zeros(x.shape)
    if b is not None:
        y = y + b[None, :, None]
    if act != "none":
        y = y / (1 + np.exp(-y))
    return y, p[:, :, p.shape[2] - (K - 1):]


@pytest.mark.parametrize("K,L,past,bias,act", [(4, 7, True, True, "silu"), (3, 1, False, False,
                                                                            "none"),
                                               (1, 5, True, False, "swish"),
                                               (5, 2, True, True, "none"), (2, 0, True, False,
                                                                            "silu")])
def test_causal_conv_with_state(K, L, past, bias, act):
    B, C = 2, 5
    x = rand(RNG, (B, C, L), "float32")
    w = rand(RNG, (C, 1, K), "float32")
    b = rand(RNG, (C,), "float32") if bias else None
    ps = rand(RNG, (B, C, K - 1), "float32") if past else None
    y, st = run_node("CausalConvWithState", [x, w, b, ps], {"activation": act}, opset=27, n_out=2)
    wy, wst = causal_conv_ref(x, w, b, ps, act)
    check(y, wy.astype(np.float32), rtol=1e-5, atol=1e-5)
    check(st, wst.astype(np.float32))


def test_causal_conv_with_state_errors():
    x = np.zeros((1, 3, 4), np.float32)
    with pytest.raises(nef.NEFFormatError, match="weight must be"):
        run_node("CausalConvWithState", [x, np.zeros((2, 1, 3), np.float32)], opset=27, n_out=2)
    with pytest.raises(nef.NEFFormatError, match="past_state must be"):
        run_node("CausalConvWithState", [x, np.zeros((3, 1, 3), np.float32), None,
                                         np.zeros((1, 3, 3), np.float32)], opset=27, n_out=2)
    with pytest.raises(nef.NEFFormatError, match="activation"):
        run_node("CausalConvWithState", [x, np.zeros((3, 1, 3), np.float32)],
                 {"activation": "gelu"}, opset=27, n_out=2)


def to_heads(x, h):
    B, T, HD = x.shape
    return x.reshape(B, T, h, HD // h).transpose(0, 2, 1, 3)


@pytest.mark.parametrize("rule", ["linear", "gated", "delta", "gated_delta"])
def test_linear_attention_onnx(rule):
    B, T, Hq, Hkv, dk, dv = 2, 5, 6, 3, 3, 4
    q = rand(RNG, (B, T, Hq * dk), "float32", -1, 1)
    k = rand(RNG, (B, T, Hkv * dk), "float32", -1, 1)
    v = rand(RNG, (B, T, Hkv * dv), "float32", -1, 1)
    s = rand(RNG, (B, Hkv, dk, dv), "float32", -1, 1)
    decay = rand(RNG, (B, T, Hkv * dk), "float32", -1, 0) if "gated" in rule else None
    beta = rand(RNG, (B, T, 1), "float32", 0, 1) if "delta" in rule else None
    y, st = run_node("LinearAttention", [q, k, v, s, decay, beta],
                     {"q_num_heads": Hq, "kv_num_heads": Hkv, "update_rule": rule}, opset=27,
                     n_out=2)
    d4 = to_heads(decay, Hkv) if decay is not None else None
    b4 = np.broadcast_to(beta.transpose(0, 2, 1)[..., None], (B, Hkv, T, 1)) if beta is not None \
        else None
    wo, ws = linear_attention_ref(to_heads(q, Hq), to_heads(k, Hkv), to_heads(v, Hkv), s, d4, b4)
    check(y, wo.transpose(0, 2, 1, 3).reshape(B, T, Hq * dv).astype(np.float32), rtol=1e-4,
          atol=1e-5)
    check(st, ws.astype(np.float32), rtol=1e-4, atol=1e-5)


def test_linear_attention_onnx_errors():
    q = np.zeros((1, 2, 8), np.float32)
    with pytest.raises(nef.NEFFormatError, match="needs decay input"):
        run_node("LinearAttention", [q, q, q], {"q_num_heads": 2, "kv_num_heads": 2,
                                                "update_rule": "gated"}, opset=27, n_out=2)
    with pytest.raises(nef.NEFFormatError, match="positive multiple"):
        run_node("LinearAttention", [q, q, q], {"q_num_heads": 2, "kv_num_heads": 3,
                                                "update_rule": "linear"}, opset=27, n_out=2)


@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("axis", [-2, 1, 2])
def test_tensor_scatter(mode, axis):
    past = rand(RNG, (3, 7, 5, 2), "float32")
    ax = axis % 4
    ushape = list(past.shape)
    ushape[ax] = 3
    upd = rand(RNG, tuple(ushape), "float32")
    M = past.shape[ax]
    idx = np.array([0, M - 3, M - 1 if mode == "circular" else 1], np.int64)
    got = run_node("TensorScatter", [past, upd, idx], {"mode": mode, "axis": axis}, opset=24)
    want = past.copy()
    for b in range(3):
        for s in range(3):
            pos = idx[b] + s
            if mode == "circular":
                pos %= M
            dst = [b, slice(None), slice(None), slice(None)]
            src = [b, slice(None), slice(None), slice(None)]
            dst[ax], src[ax] = pos, s
            want[tuple(dst)] = upd[tuple(src)]
    check(got, want)
    # no write_indices: rows written at 0; an empty update leaves the cache as it is
    check(run_node("TensorScatter", [past, upd], {"axis": axis}, opset=24),
          np.concatenate([upd, np.take(past, range(3, M), axis=ax)], axis=ax))
    ushape[ax] = 0
    check(run_node("TensorScatter", [past, np.zeros(ushape, np.float32)], {"axis": axis},
                   opset=24), past)


@pytest.mark.parametrize("dtype", ["bool", "int32", "float16"])
def test_tensor_scatter_dtypes(dtype):
    past = rand(RNG, (2, 6, 3), dtype)
    upd = rand(RNG, (2, 2, 3), dtype)
    got = run_node("TensorScatter", [past, upd, np.array([4, 1], np.int64)],
                   {"axis": 1, "mode": "circular"}, opset=24)
    want = past.copy()
    want[0, [4, 5]] = upd[0]
    want[1, [1, 2]] = upd[1]
    check(got, want)
    check(run_node("TensorScatter", [past, upd[:, :0]], {"axis": 1}, opset=24), past)


def test_tensor_scatter_errors():
    past = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(nef.NEFFormatError, match="may not be longer"):
        run_node("TensorScatter", [past, np.zeros((2, 5, 3), np.float32)], {"axis": 1}, opset=24)
    with pytest.raises(nef.NEFFormatError, match="batch axis"):
        run_node("TensorScatter", [past, past], {"axis": 0}, opset=24)
    with pytest.raises(nef.NEFFormatError, match="mode"):
        run_node("TensorScatter", [past, past], {"mode": "ring"}, opset=24)


@pytest.mark.parametrize("n,axis,inverse,onesided,complex_in", [
    (None, 1, 0, 0, False), (7, 2, 0, 1, False), (12, 1, 1, 0, True), (None, -2, 1, 1, True),
    (9, 1, 1, 1, True), (5, 2, 0, 0, True), (3, 1, 0, 1, True)])
def test_dft(n, axis, inverse, onesided, complex_in):
    x = rand(RNG, (2, 11, 6, 2 if complex_in else 1), "float32")
    c = x[..., 0].astype(np.float64) + (1j * x[..., 1] if complex_in else 0)
    ax = axis % 4
    if inverse and onesided:
        want = np.fft.irfft(c, n=n, axis=ax)[..., None]
    else:
        want = (np.fft.ifft if inverse else np.fft.fft)(c, n=n, axis=ax)
        if onesided:
            want = np.take(want, range(want.shape[ax] // 2 + 1), axis=ax)
        want = np.stack([want.real, want.imag], axis=-1)
    inputs = [x, None if n is None else np.array(n, np.int64), np.array(axis, np.int64)]
    got = run_node("DFT", inputs, {"inverse": inverse, "onesided": onesided}, opset=20,
                   static=(1, 2))
    check(got, want.astype(np.float32), rtol=1e-5, atol=1e-5)
    if axis > 0:  # revision 17: axis is an attribute
        got = run_node("DFT", inputs[:2], {"inverse": inverse, "onesided": onesided, "axis": axis},
                       opset=19, static=(1,))
        check(got, want.astype(np.float32), rtol=1e-5, atol=1e-5)


def test_dft_errors():
    x = np.zeros((2, 4, 1), np.float32)
    with pytest.raises(nef.NEFFormatError, match="not the last"):
        run_node("DFT", [x, None, np.array(2, np.int64)], opset=20, static=(2,))
    with pytest.raises(nef.NEFFormatError, match="dft_length 0"):
        run_node("DFT", [x, np.array(0, np.int64)], opset=20, static=(1,))
    with pytest.raises(nef.NEFFormatError, match="dft_length 5000 must be in"):
        run_node("DFT", [x, np.array(5000, np.int64)], opset=20, static=(1,))
    with pytest.raises(nef.NEFFormatError, match=r"\[..., 1\] \(real\)"):
        run_node("DFT", [np.zeros((2, 4, 3), np.float32)], opset=20)


@pytest.mark.parametrize("L,step,length,window,onesided", [(37, 4, 9, True, 1), (20, 3, None,
                                                                                  True, 0),
                                                           (16, 5, 6, False, 1), (9, 1, 9, False,
                                                                                 0)])
def test_stft(L, step, length, window, onesided):
    x = rand(RNG, (2, L, 1), "float32")
    wlen = length if length is not None else 7
    w = rand(RNG, (wlen,), "float32", 0, 1) if window else None
    fl = wlen if (window or length is not None) else L
    frames = 1 + (L - fl) // step
    wv = w.astype(np.float64) if w is not None else np.ones(fl)
    seg = np.stack([x[:, f * step:f * step + fl, 0].astype(np.float64) * wv
                    for f in range(frames)], axis=1)
    want = np.fft.rfft(seg, axis=-1) if onesided else np.fft.fft(seg, axis=-1)
    want = np.stack([want.real, want.imag], axis=-1)
    got = run_node("STFT", [x, np.array(step, np.int64), w,
                            None if length is None else np.array(length, np.int64)],
                   {"onesided": onesided}, opset=17, static=(1, 3))
    check(got, want.astype(np.float32), rtol=1e-5, atol=1e-4)


def mel_ref(mels, n, rate, lo, hi):
    bins = n // 2 + 1
    lo_m, hi_m = 2595 * np.log10(1 + lo / 700), 2595 * np.log10(1 + hi / 700)
    f = np.arange(mels + 2) * ((hi_m - lo_m) / (mels + 2)) + lo_m
    f = (((n + 1) * (700 * (10 ** (f / 2595) - 1))) // rate).astype(int)
    out = np.zeros((bins, mels))
    for i in range(mels):
        a, c, h = f[i], f[i + 1], f[i + 2]
        if c == a:
            out[c, i] = 1
        else:
            out[a:c + 1, i] = (np.arange(a, c + 1) - a) / (c - a)
        if h > c:
            out[c:h, i] = (h - np.arange(c, h)) / (h - c)
    return out


@pytest.mark.parametrize("mels,n,rate,lo,hi,dtype", [(8, 64, 16000, 0.0, 8000.0, 1),
                                                     (13, 101, 22050, 30.0, 9000.0, 11),
                                                     (5, 33, 8000, 100.0, 3900.0, 10)])
def test_mel_weight_matrix(mels, n, rate, lo, hi, dtype):
    np_dt = {1: np.float32, 11: np.float64, 10: np.float16}[dtype]
    got = run_node("MelWeightMatrix", [np.array(mels, np.int64), np.array(n, np.int64),
                                       np.array(rate, np.int64), np.array(lo, np.float32),
                                       np.array(hi, np.float32)], {"output_datatype": dtype},
                   opset=17, static=(0, 1, 2, 3, 4))
    check(got, mel_ref(mels, n, rate, lo, hi).astype(np_dt), rtol=1e-3, atol=1e-6)


def test_mel_weight_matrix_errors():
    with pytest.raises(nef.NEFFormatError, match="larger than 2"):
        run_node("MelWeightMatrix", [np.array(60000, np.int64), np.array(4096, np.int64),
                                     np.array(16000, np.int64), np.array(0, np.float32),
                                     np.array(8000, np.float32)], opset=17,
                 static=(0, 1, 2, 3, 4))
    with pytest.raises(nef.NEFFormatError, match="maps past"):
        run_node("MelWeightMatrix", [np.array(8, np.int64), np.array(64, np.int64),
                                     np.array(16000, np.int64), np.array(0, np.float32),
                                     np.array(15000, np.float32)], opset=17,
                 static=(0, 1, 2, 3, 4))


@pytest.mark.parametrize("opset,mode", [(10, "avg"), (16, "max"), (22, "avg")])
def test_roi_align_onnx(opset, mode):
    x = rand(RNG, (2, 4, 9, 10), "float32")
    rois = np.array([[1.0, 2.0, 7.5, 8.0], [0.0, 0.0, 9.0, 9.0], [4.0, 3.0, 5.0, 3.5]], np.float32)
    bidx = np.array([1, 0, 1], np.int64)
    got = run_node("RoiAlign", [x, rois, bidx], {"output_height": 3, "output_width": 4,
                                                 "sampling_ratio": 2, "spatial_scale": 0.9,
                                                 "mode": mode}, opset=opset)
    want = roi_align_ref(x, rois, bidx, 3, 4, 2, 0.9, mode, opset >= 16)
    check(got, want.astype(np.float32), rtol=1e-5, atol=1e-5)


def deform_conv_ref(x, w, off, b, mask, strides, pads, dil, group, og):
    x, w, off = (a.astype(np.float64) for a in (x, w, off))
    N, C, H, W = x.shape
    oc, _, kh, kw = w.shape
    oh, ow = off.shape[2:]
    off = off.reshape(N, og, kh, kw, 2, oh, ow)
    mask = np.ones((N, og, kh, kw, oh, ow)) if mask is None else \
        mask.astype(np.float64).reshape(N, og, kh, kw, oh, ow)

    def sample(img, y, xx):
        y0, x0 = int(np.floor(y)), int(np.floor(xx))
        v = 0.0
        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
            for xc, wx in ((x0, 1 - (xx - x0)), (x0 + 1, xx - x0)):
                if 0 <= yy < H and 0 <= xc < W:
                    v += wy * wx * img[yy, xc]
        return v

    cols = np.zeros((N, C, kh, kw, oh, ow))
    for n in range(N):
        for c in range(C):
            g = c // (C // og)
            for i in range(kh):
                for j in range(kw):
                    for yo in range(oh):
                        for xo in range(ow):
                            y = yo * strides[0] - pads[0] + i * dil[0] + off[n, g, i, j, 0, yo, xo]
                            xx = xo * strides[1] - pads[1] + j * dil[1] + off[n, g, i, j, 1, yo, xo]
                            cols[n, c, i, j, yo, xo] = sample(x[n, c], y, xx) * \
                                mask[n, g, i, j, yo, xo]
    out = np.zeros((N, oc, oh, ow))
    cpg, opg = C // group, oc // group
    for o in range(oc):
        gi = o // opg
        out[:, o] = np.einsum("ncijyx,cij->nyx", cols[:, gi * cpg:(gi + 1) * cpg], w[o])
    return out + (0 if b is None else b.astype(np.float64)[None, :, None, None])


@pytest.mark.parametrize("group,og,strides,pads,dil,with_mask,with_bias", [
    (1, 1, (1, 1), (0, 0, 0, 0), (1, 1), False, False),
    (2, 2, (2, 1), (1, 0, 2, 1), (1, 2), True, True),
    (1, 3, (1, 2), (1, 1, 1, 1), (2, 1), True, False),
])
def test_deform_conv(group, og, strides, pads, dil, with_mask, with_bias):
    N, C, H, W, oc, kh, kw = 2, 6, 7, 9, 4, 3, 2
    x = rand(RNG, (N, C, H, W), "float32")
    w = rand(RNG, (oc, C // group, kh, kw), "float32")
    oh = (H + pads[0] + pads[2] - ((kh - 1) * dil[0] + 1)) // strides[0] + 1
    ow = (W + pads[1] + pads[3] - ((kw - 1) * dil[1] + 1)) // strides[1] + 1
    off = rand(RNG, (N, og * 2 * kh * kw, oh, ow), "float32", -2.5, 2.5)
    mask = rand(RNG, (N, og * kh * kw, oh, ow), "float32", 0, 1) if with_mask else None
    b = rand(RNG, (oc,), "float32") if with_bias else None
    got = run_node("DeformConv", [x, w, off, b, mask],
                   {"group": group, "offset_group": og, "strides": list(strides),
                    "pads": list(pads), "dilations": list(dil), "kernel_shape": [kh, kw]},
                   opset=22)
    want = deform_conv_ref(x, w, off, b, mask, strides, pads, dil, group, og)
    check(got, want.astype(np.float32), rtol=1e-4, atol=1e-4)


def test_deform_im2col_strided_empty_and_errors():
    # The NEF op itself on a strided float64 x: columns against the reference's sampling.
    x = rand(RNG, (1, 2, 6, 5), "float64").transpose(0, 1, 3, 2)  # [1, 2, 5, 6]
    off = rand(RNG, (1, 2 * 4, 4, 5), "float64", -1.5, 1.5)
    cols = nef.ops._op("deform_im2col", [nef.asarray(x), off], kernel_shape=[2, 2]).numpy()
    w = np.eye(8).reshape(8, 2, 2, 2)  # one output channel per column row
    want = deform_conv_ref(x, w, off, None, None, (1, 1), (0, 0, 0, 0), (1, 1), 1, 1)
    check(cols, want.reshape(1, 8, 20), rtol=1e-12, atol=1e-12)
    empty = nef.ops._op("deform_im2col", [np.zeros((0, 2, 5, 6)), np.zeros((0, 8, 4, 5))],
                        kernel_shape=[2, 2]).numpy()
    assert empty.shape == (0, 8, 20)
    with pytest.raises(nef.NEFShapeError, match=r"\[deform_im2col\] offset must be"):
        nef.ops._op("deform_im2col", [x, off[:, :, :3]], kernel_shape=[2, 2])
    with pytest.raises(nef.NEFValidationError, match="offset_group 3"):
        nef.ops._op("deform_im2col", [x, off], kernel_shape=[2, 2], offset_group=3)
    with pytest.raises(nef.NEFValidationError, match="kernel_shape"):
        nef.ops._op("deform_im2col", [x, off])
    with pytest.raises(nef.NEFFormatError, match="DeformConv node 'n'.*group 4"):
        run_node("DeformConv", [np.zeros((1, 2, 5, 5), np.float32),
                                np.zeros((4, 2, 3, 3), np.float32),
                                np.zeros((1, 18, 3, 3), np.float32)], {"group": 4}, opset=22)
