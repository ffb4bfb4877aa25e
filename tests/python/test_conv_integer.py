"""conv_integer (ONNX ConvInteger) against an int64 numpy convolution: fresh random geometries
(odd channel counts, strides 1 and 2, asymmetric pads, dilations, groups, depthwise, 1-D, int8 and
uint8 operands, scalar and per-channel zero points, empty batches) on every instruction-set
variant (NEF_CPU_TARGET: AVX-512 VNNI and AVX-VNNI byte words, AVX2 and portable int16 pairs)
with 1 and 2 threads; the weights packed once per plan (Kernel::prepare) and the per-run packing
agree; bad operands give structured errors. The implicit conv (kernels/conv_integer.h) runs 1-D
and 2-D convs with several output channels per group, the im2col GEMM the rest: both are covered."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nef

HERE = os.path.dirname(os.path.abspath(__file__))


def conv_ref(x, w, zx, zw, strides, pads, dil, group):
    """int64 cross-correlation of (x - zx) and (w - zw); padding is 0 after the subtraction."""
    nsp = x.ndim - 2
    X = x.astype(np.int64) - np.int64(zx)
    zw = np.asarray(zw, np.int64)
    W = w.astype(np.int64) - (zw.reshape((-1,) + (1,) * (w.ndim - 1)) if zw.ndim else zw)
    X = np.pad(X, [(0, 0), (0, 0)] + [(pads[i], pads[i + nsp]) for i in range(nsp)])
    N = x.shape[0]
    M, Cg = w.shape[:2]
    ks = w.shape[2:]
    osz = [(X.shape[2 + i] - dil[i] * (ks[i] - 1) - 1) // strides[i] + 1 for i in range(nsp)]
    Y = np.zeros((N, M, *osz), np.int64)
    Mg = M // group
    for g in range(group):
        Xg, Wg = X[:, g * Cg:(g + 1) * Cg], W[g * Mg:(g + 1) * Mg]
        for k in np.ndindex(*ks):
            sl = tuple(slice(k[i] * dil[i], k[i] * dil[i] + strides[i] * (osz[i] - 1) + 1,
                             strides[i]) for i in range(nsp))
            Y[:, g * Mg:(g + 1) * Mg] += np.einsum("nc...,mc->nm...", Xg[(slice(None),) * 2 + sl],
                                                   Wg[(slice(None),) * 2 + k])
    return Y


def q8(rng, shape, dt):
    lo, hi = (-128, 128) if dt == "int8" else (0, 256)
    return rng.integers(lo, hi, size=shape).astype(dt)


def random_case(rng):
    """A random conv geometry whose output is not empty (the batch may be)."""
    while True:
        nsp = 1 if rng.random() < 0.2 else 2
        kind = rng.choice(["dense", "dense", "dense", "grouped", "depthwise"])
        g = 1
        cg = int(rng.integers(1, 40))
        mg = int(rng.integers(2, 30))
        if kind == "grouped":
            g = int(rng.integers(2, 5))
            cg, mg = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        elif kind == "depthwise":
            g, cg = int(rng.integers(3, 40)), 1
            mg = int(rng.choice([1, 1, 2]))
        ks = [int(rng.choice([1, 1, 2, 3, 3, 5])) for _ in range(nsp)]
        st = [int(rng.choice([1, 1, 2, 3])) for _ in range(nsp)]
        dl = [int(rng.choice([1, 1, 1, 2])) for _ in range(nsp)]
        pd = [int(rng.integers(0, 3)) for _ in range(2 * nsp)]
        sp = [int(rng.integers(1, 30)) for _ in range(nsp)]
        osz = [(sp[i] + pd[i] + pd[i + nsp] - dl[i] * (ks[i] - 1) - 1) // st[i] + 1
               for i in range(nsp)]
        if min(osz) < 1:
            continue
        n = int(rng.choice([0, 1, 1, 1, 2]))
        dts = [("uint8", "int8"), ("uint8", "int8"), ("int8", "int8"), ("uint8", "uint8"),
               ("int8", "uint8")][int(rng.integers(0, 5))]
        return (n, g * cg, g * mg, g, sp, ks, st, pd, dl, dts)


def run_case(rng, case):
    n, c, m, g, sp, ks, st, pd, dl, dts = case
    x, w = q8(rng, (n, c, *sp), dts[0]), q8(rng, (m, c // g, *ks), dts[1])
    zp = rng.random()
    if zp < 0.25:  # no zero points
        got = nef.conv_integer(x, w, strides=st, pads=pd, dilations=dl, groups=g).numpy()
        zx, zw = 0, 0
    else:
        zx = q8(rng, (), dts[0])
        zw = q8(rng, (m,) if zp < 0.6 else (), dts[1])
        if zp > 0.85:  # the common quantized form: weights symmetric
            zw = np.zeros((m,), dts[1])
        got = nef.conv_integer(x, w, zx, zw, strides=st, pads=pd, dilations=dl,
                               groups=g).numpy()
    want = conv_ref(x, w, zx, zw, st, pd, dl, g)
    assert got.dtype == np.int32 and got.shape == want.shape, (case, got.shape, want.shape)
    assert (got == want.astype(np.int32)).all(), (case, np.abs(got - want).max())


def dynamic_ref(x, w, ws, b, st, pd, dl, g, activation=""):
    """conv_dynamic_int8 in numpy: the quantization in float32 as the op specifies it, the
    integer conv in int64, the rescale in float64."""
    x = x.astype(np.float32)
    hi, lo = np.float32(max(x.max(initial=0), 0)), np.float32(min(x.min(initial=0), 0))
    s = np.float32(max(hi - lo, np.finfo(np.float32).tiny)) / np.float32(255)
    z = np.rint(-lo / s)
    q = np.clip(np.rint(x / s) + z, 0, 255).astype(np.uint8)
    acc = conv_ref(q, w, int(z), 0, st, pd, dl, g).astype(np.float64)
    scale = (s * ws.astype(np.float32)).astype(np.float64)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = acc * scale.reshape(shape) + (0 if b is None else b.astype(np.float64).reshape(shape))
    if activation == "relu":
        return np.maximum(y, 0)
    return y / (1 + np.exp(-y)) if activation == "silu" else y


def run_dynamic_case(rng, case):
    n, c, m, g, sp, ks, st, pd, dl, _ = case
    x = (rng.standard_normal((n, c, *sp)) * rng.uniform(0.1, 10) + rng.uniform(-1, 1))
    x = x.astype(np.float32)
    if rng.random() < 0.2:
        x = np.abs(x)  # no negatives: zero point 0
    w = rng.integers(-127, 128, (m, c // g, *ks)).astype(np.int8)
    ws = rng.uniform(1e-3, 1e-2, m).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32) if rng.random() < 0.7 else None
    act = ["", "relu", "silu"][int(rng.integers(0, 3))]
    got = nef.conv_dynamic_int8(x, w, ws, b, strides=st, pads=pd, dilations=dl, groups=g,
                                activation=act).numpy()
    want = dynamic_ref(x, w, ws, b, st, pd, dl, g, act)
    assert got.dtype == np.float32 and got.shape == want.shape, (case, got.shape, want.shape)
    tol = 1e-5 * (np.abs(want).max(initial=0) + 1)
    assert np.abs(got - want).max(initial=0) <= tol, (case, np.abs(got - want).max())


VARIANT_CODE = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import nef
from test_conv_integer import random_case, run_case, run_dynamic_case
nef.config(devices=["cpu"], threads=int(sys.argv[3]))
rng = np.random.default_rng(int(sys.argv[2]))
for _ in range(int(sys.argv[4])):
    run_case(rng, random_case(rng))
    run_dynamic_case(rng, random_case(rng))
print("ok")
"""


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("target", ["", "avx2vnni", "avx2", "generic"])
def test_random_geometries_every_variant(target, threads):
    seed = int(np.random.default_rng().integers(0, 2**31))
    env = dict(os.environ)
    env.pop("NEF_CPU_TARGET", None)
    if target:
        env["NEF_CPU_TARGET"] = target
    r = subprocess.run([sys.executable, "-c", VARIANT_CODE, HERE, str(seed), str(threads), "60"],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout, f"seed {seed}: {r.stderr[-3000:]}"


@pytest.mark.parametrize("case", [
    # 3x3 with odd channels and asymmetric pads; stride 2 and dilation; a 1-D conv; 1x1 (the
    # planes are the input as it lies); grouped with 3 channels per group; depthwise x2.
    (1, 35, 19, 1, [13, 17], [3, 3], [1, 1], [1, 0, 2, 1], [1, 1], ("uint8", "int8")),
    (2, 9, 33, 1, [21, 16], [3, 3], [2, 2], [1, 1, 1, 1], [2, 1], ("int8", "int8")),
    (1, 13, 7, 1, [50], [5], [2], [2, 1], [1], ("uint8", "uint8")),
    (1, 64, 70, 1, [9, 11], [1, 1], [1, 1], [0, 0, 0, 0], [1, 1], ("uint8", "int8")),
    (1, 12, 20, 4, [10, 10], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], ("int8", "uint8")),
    (1, 10, 20, 10, [12, 9], [3, 3], [1, 2], [1, 1, 1, 1], [1, 1], ("uint8", "int8")),
    (0, 8, 16, 1, [5, 5], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], ("uint8", "int8")),
])
def test_fixed_geometries(case):
    run_case(np.random.default_rng(), case)


@pytest.mark.parametrize("case", [
    # Depthwise (one input channel per group, the direct loop): odd channel counts, strides 1-3,
    # asymmetric pads, dilations, a channel multiplier of 2, 1-D, a 7x7 kernel, an empty batch,
    # pads wider than the kernel reads (rows and columns of the plane that no output reads).
    (1, 37, 37, 37, [19, 23], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], ("uint8", "int8")),
    (2, 13, 13, 13, [17, 16], [3, 3], [2, 2], [1, 0, 2, 1], [1, 1], ("int8", "int8")),
    (1, 5, 10, 5, [12, 31], [5, 3], [1, 3], [2, 2, 0, 1], [2, 1], ("uint8", "uint8")),
    (1, 11, 11, 11, [41], [5], [2], [2, 2], [2], ("int8", "uint8")),
    (1, 3, 3, 3, [20, 20], [7, 7], [1, 1], [3, 3, 3, 3], [1, 1], ("uint8", "int8")),
    (0, 9, 9, 9, [8, 8], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], ("uint8", "int8")),
    (1, 6, 6, 6, [4, 5], [3, 3], [1, 1], [4, 0, 3, 5], [1, 1], ("uint8", "int8")),
])
def test_depthwise_geometries(case):
    rng = np.random.default_rng()
    for _ in range(3):  # no zero points, scalar, per channel (random_case's mix)
        run_case(rng, case)
        run_dynamic_case(rng, case)


def test_depthwise_strided_view_and_zero_points():
    rng = np.random.default_rng()
    x = q8(rng, (2, 25, 21, 15), "int8")
    w = q8(rng, (25, 1, 3, 3), "uint8")
    zx, zw = q8(rng, (), "int8"), q8(rng, (25,), "uint8")
    xv = nef.tensor(x)[:, :, 1::2, ::-1]
    got = nef.conv_integer(xv, w, zx, zw, strides=[1, 2], pads=[1, 1, 1, 1], groups=25).numpy()
    want = conv_ref(x[:, :, 1::2, ::-1], w, zx, zw, (1, 2), (1, 1, 1, 1), (1, 1), 25)
    np.testing.assert_array_equal(got, want)
    # Extremes: 255 - 0 against -128 - 127 at every tap of a 5x5 kernel, exact in int32.
    xe = np.full((1, 4, 9, 9), 255, np.uint8)
    we = np.full((4, 1, 5, 5), -128, np.int8)
    got = nef.conv_integer(xe, we, np.uint8(0), np.full(4, 127, np.int8), pads=[2, 2, 2, 2],
                           groups=4).numpy()
    np.testing.assert_array_equal(got, conv_ref(xe, we, 0, np.full(4, 127, np.int8), (1, 1),
                                                (2, 2, 2, 2), (1, 1), 4))


def test_strided_operand_views():
    rng = np.random.default_rng()
    x = q8(rng, (2, 11, 19, 14), "uint8")
    wt = q8(rng, (3, 3, 11, 24), "int8")  # w [24, 11, 3, 3] as a transposed view
    zw = q8(rng, (24,), "int8")
    got = nef.conv_integer(nef.tensor(x)[:, :, ::2, 1:], nef.tensor(wt).transpose([3, 2, 0, 1]),
                           np.array(17, np.uint8), zw, pads=[1, 1, 1, 1]).numpy()
    want = conv_ref(x[:, :, ::2, 1:], wt.transpose(3, 2, 0, 1), 17, zw, (1, 1), (1, 1, 1, 1),
                    (1, 1), 1)
    np.testing.assert_array_equal(got, want)


def counts():
    s = nef.stats()
    return s["gemm_prepacked"], s["gemm_prepack_fallbacks"]


@pytest.mark.parametrize("target", [None, "avx2vnni", "avx2", "generic"])
@pytest.mark.parametrize("zero_points", [False, True])
def test_weights_packed_once_per_plan(tmp_path, target, zero_points):
    # The plan's constant weights (and constant weight zero point) packed when it is built, in
    # the format of the instruction set it runs (fixed when the process starts: a subprocess).
    code = f"""
import sys, numpy as np
sys.path.insert(0, {HERE!r})
import nef
from test_conv_integer import conv_ref, q8
nef.config(devices=["cpu"])
rng = np.random.default_rng()
w = q8(rng, (40, 21, 3, 3), "int8")
zx, zw = np.uint8(rng.integers(0, 256)), q8(rng, (40,), "int8")
x = nef.placeholder("x", (1, 21, 15, 18), nef.uint8)
y = nef.conv_integer(x, nef.tensor(w), *((nef.tensor(np.array(zx)), nef.tensor(zw))
                                           if {zero_points} else ()), pads=[1, 1, 1, 1])
y.build(sys.argv[1])
g = nef.load(sys.argv[1])
for _ in range(2):
    xv = q8(rng, (1, 21, 15, 18), "uint8")
    s0 = nef.stats()["gemm_prepacked"]
    got = np.asarray(g.run(x=xv)["output"])
    assert nef.stats()["gemm_prepacked"] == s0 + 1
    want = conv_ref(xv, w, zx, zw, (1, 1), (1, 1, 1, 1), (1, 1), 1) if {zero_points} else \\
        conv_ref(xv, w, 0, 0, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    assert (got == want).all()
print("ok")
"""
    env = dict(os.environ)
    env.pop("NEF_CPU_TARGET", None)
    if target:
        env["NEF_CPU_TARGET"] = target
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "c.nef")], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]


@pytest.mark.parametrize("target", [None, "avx512", "avx2vnni", "avx2", "generic", "sse9"])
def test_device_report_names_the_int8_variant(target):
    # The CPU device lists the integer kernels' variant: the best this CPU's features allow
    # under NEF_CPU_TARGET (a ceiling; an unknown name is ignored with a warning).
    code = ("import json, nef\n"
            "d = nef.devices()\n"
            "cpu = [x for x in d['devices'] if x['name'] == 'cpu'][0]\n"
            "print(json.dumps([d['cpu']['features'], cpu['extra']['int8_kernels']]))\n")
    env = dict(os.environ)
    env.pop("NEF_CPU_TARGET", None)
    if target:
        env["NEF_CPU_TARGET"] = target
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    feats, got = json.loads(r.stdout.strip().splitlines()[-1])
    order = ["generic", "avx2", "avx2vnni", "avx512"]
    ceiling = order.index(target) if target in order else 3
    runs = {"generic": True, "avx2": feats["avx2"] and feats["fma"],
            "avx2vnni": feats["avx2"] and feats["avx_vnni"],
            "avx512": feats["avx512bw"] and feats["avx512vl"] and feats["avx512_vnni"]}
    want = [t for t in order[:ceiling + 1] if runs[t]][-1]
    assert got == ("avx512vnni" if want == "avx512" else want)
    if target == "sse9":
        assert "NEF_CPU_TARGET=sse9" in r.stderr


def test_bad_operands_give_structured_errors():
    rng = np.random.default_rng()
    x, w = q8(rng, (1, 6, 8, 8), "uint8"), q8(rng, (4, 6, 3, 3), "int8")
    with pytest.raises(nef.NEFTypeError, match=r"\[conv_integer\] x and w"):
        nef.conv_integer(x.astype(np.int32), w).numpy()
    with pytest.raises(nef.NEFValidationError, match="both zero points"):
        nef.conv_integer(x, w, np.uint8(3)).numpy()
    with pytest.raises(nef.NEFError):  # w_zero_point: one value or one per output channel
        nef.conv_integer(x, w, np.array(3, np.uint8), np.zeros(3, np.int8)).numpy()
    with pytest.raises(nef.NEFError):  # zero point of another dtype than its operand
        nef.conv_integer(x, w, np.array(3, np.int8), np.zeros(4, np.int8)).numpy()
    with pytest.raises(nef.NEFError):  # channels do not match the weight's
        nef.conv_integer(x, q8(rng, (4, 5, 3, 3), "int8")).numpy()
    with pytest.raises(nef.NEFError):  # groups do not divide the channels
        nef.conv_integer(x, q8(rng, (4, 2, 3, 3), "int8"), groups=4).numpy()
    with pytest.raises(nef.NEFShapeError):  # the kernel is larger than the padded input
        nef.conv_integer(x, q8(rng, (4, 6, 10, 3), "int8")).numpy()
    with pytest.raises(nef.NEFError):  # rank of w differs from x's
        nef.conv_integer(x, q8(rng, (4, 6, 3), "int8")).numpy()
    with pytest.raises(nef.NEFError):  # a zero stride
        nef.conv_integer(x, w, strides=[0, 1]).numpy()


# ---- conv_dynamic_int8 ------------------------------------------------------------------------

@pytest.mark.parametrize("case", [
    (1, 35, 19, 1, [13, 17], [3, 3], [1, 1], [1, 0, 2, 1], [1, 1], None),
    (2, 9, 33, 1, [21, 16], [3, 3], [2, 2], [1, 1, 1, 1], [2, 1], None),
    (1, 13, 7, 1, [50], [5], [2], [2, 1], [1], None),
    (1, 10, 10, 10, [12, 9], [3, 3], [1, 2], [1, 1, 1, 1], [1, 1], None),  # depthwise
    (0, 8, 16, 1, [5, 5], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1], None),
])
def test_conv_dynamic_int8_matches_reference(case):
    run_dynamic_case(np.random.default_rng(), case)


def test_conv_dynamic_int8_same_bits_on_every_variant(tmp_path):
    # Exact int32 sums in every variant, the rescale without fused multiply-adds: the float
    # outputs agree bit for bit across NEF_CPU_TARGET (dense, depthwise, 1x1, with relu).
    code = """
import sys, numpy as np, nef
rng = np.random.default_rng(11)
outs = {}
for i, (c, m, g, k, act) in enumerate([(19, 24, 1, 3, ""), (21, 21, 21, 3, "relu"),
                                       (70, 33, 1, 1, ""), (8, 16, 8, 5, "relu")]):
    x = rng.standard_normal((2, c, 13, 17)).astype(np.float32)
    w = rng.integers(-127, 128, (m, c // g, k, k)).astype(np.int8)
    ws = rng.uniform(1e-3, 1e-2, m).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    outs[str(i)] = nef.conv_dynamic_int8(x, w, ws, b, pads=[k // 2] * 4, groups=g,
                                         activation=act).numpy()
np.savez(sys.argv[1], **outs)
"""
    res = []
    for target in ["", "avx2vnni", "avx2", "generic"]:
        env = dict(os.environ)
        env.pop("NEF_CPU_TARGET", None)
        if target:
            env["NEF_CPU_TARGET"] = target
        path = tmp_path / f"{target or 'best'}.npz"
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=env)
        res.append(np.load(path))
    for other in res[1:]:
        for k in res[0].files:
            np.testing.assert_array_equal(res[0][k], other[k], err_msg=k)


def test_conv_dynamic_int8_special_values():
    rng = np.random.default_rng()
    w = rng.integers(-127, 128, (6, 5, 3, 3)).astype(np.int8)
    ws = rng.uniform(1e-3, 1e-2, 6).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    x = rng.standard_normal((1, 5, 7, 8)).astype(np.float32)
    run = lambda v: nef.conv_dynamic_int8(v, w, ws, b, pads=[1, 1, 1, 1]).numpy()
    # Zeros: the scale is tiny but not 0, every code is the zero point: the bias alone.
    np.testing.assert_array_equal(run(np.zeros_like(x)), np.broadcast_to(b[None, :, None, None],
                                                                          (1, 6, 7, 8)))
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[0, 2, 3, 4] = bad
        assert np.isnan(run(y)).all()
    # No input channels: sums of nothing, the bias and the activation.
    got = nef.conv_dynamic_int8(np.zeros((1, 0, 5, 5), np.float32), np.zeros((6, 0, 3, 3), np.int8),
                                ws, b, pads=[1, 1, 1, 1], activation="relu").numpy()
    np.testing.assert_array_equal(got, np.broadcast_to(np.maximum(b, 0)[None, :, None, None],
                                                       (1, 6, 5, 5)))
    # A strided (transposed) input view.
    xt = rng.standard_normal((1, 8, 7, 5)).astype(np.float32)
    got = nef.conv_dynamic_int8(nef.tensor(xt).transpose([0, 3, 2, 1]), w, ws, b,
                                pads=[1, 1, 1, 1]).numpy()
    want = dynamic_ref(xt.transpose(0, 3, 2, 1), w, ws, b, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_conv_dynamic_int8_rejects_bad_operands():
    rng = np.random.default_rng()
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.integers(-127, 128, (3, 4, 3, 3)).astype(np.int8)
    ws = np.ones(3, np.float32)
    with pytest.raises(nef.NEFTypeError, match=r"\[conv_dynamic_int8\]"):
        nef.conv_dynamic_int8(x, w.astype(np.float32), ws).numpy()
    with pytest.raises(nef.NEFTypeError, match=r"\[conv_dynamic_int8\]"):
        nef.conv_dynamic_int8(x.astype(np.float64), w, ws).numpy()
    with pytest.raises(nef.NEFShapeError, match="w_scale must be"):
        nef.conv_dynamic_int8(x, w, np.ones(4, np.float32)).numpy()
    with pytest.raises(nef.NEFShapeError, match="bias must be"):
        nef.conv_dynamic_int8(x, w, ws, np.ones((3, 1), np.float32)).numpy()
    with pytest.raises(nef.NEFShapeError, match="1 or 2 spatial"):
        nef.conv_dynamic_int8(x[..., None], w[..., None], ws).numpy()
    with pytest.raises(nef.NEFError):  # channels of w do not match x's
        nef.conv_dynamic_int8(x, w[:, :3], ws).numpy()
    with pytest.raises(nef.NEFValidationError, match="activation must be"):
        nef.conv_dynamic_int8(x, w, ws, activation="tanh").numpy()
