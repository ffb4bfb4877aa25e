"""conv and conv_transpose (ONNX semantics) against float64 numpy references: 1-D/2-D/3-D,
strides, dilations, asymmetric pads, groups (depthwise too), bias or none, zero-size dims,
float32/float64/float16/bfloat16, strided inputs, composition with other ops, and errors."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_close, f64, random_array, seed_of

import nef


def _geometry(nsp, strides, pads, dilations):
    return (list(strides or [1] * nsp), list(pads or [0] * (2 * nsp)),
            list(dilations or [1] * nsp))


def ref_conv(x, w, b=None, strides=None, pads=None, dilations=None, groups=1):
    """Sum over kernel taps of a strided window of the zero-padded input (einsum per group)."""
    x, w = f64(x), f64(w)
    nsp = x.ndim - 2
    s, p, d = _geometry(nsp, strides, pads, dilations)
    n, c = x.shape[:2]
    m, k = w.shape[0], w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p[i], p[i + nsp]) for i in range(nsp)])
    out_sp = [(xp.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(nsp)]
    out = np.zeros((n, m, *out_sp))
    if b is not None:
        out += f64(b).reshape((1, m) + (1,) * nsp)
    if min(out_sp) == 0:
        return out
    cg, mg = c // groups, m // groups
    for g in range(groups):
        xg, wg = xp[:, g * cg:(g + 1) * cg], w[g * mg:(g + 1) * mg]
        for tap in np.ndindex(*k):
            win = tuple(slice(tap[i] * d[i], tap[i] * d[i] + s[i] * (out_sp[i] - 1) + 1, s[i])
                        for i in range(nsp))
            out[:, g * mg:(g + 1) * mg] += np.einsum("nc...,mc->nm...", xg[(..., *win)],
                                                     wg[(..., *tap)])
    return out


def ref_conv_transpose(x, w, b=None, strides=None, pads=None, dilations=None, groups=1,
                       output_padding=None):
    """The scatter definition: x[n, c, i] * w[c, m, t] lands at i*s + t*d of an uncropped
    output, which is then cropped by the pads."""
    x, w = f64(x), f64(w)
    nsp = x.ndim - 2
    s, p, d = _geometry(nsp, strides, pads, dilations)
    op = list(output_padding or [0] * nsp)
    n, c = x.shape[:2]
    mg, k = w.shape[1], w.shape[2:]
    m = mg * groups
    full = [s[i] * (x.shape[2 + i] - 1) + op[i] + d[i] * (k[i] - 1) + 1 for i in range(nsp)]
    out_sp = [full[i] - p[i] - p[i + nsp] for i in range(nsp)]
    buf = np.zeros((n, m, *[max(f, 0) for f in full]))
    cg = c // groups
    if min(x.shape[2:]) > 0:
        for g in range(groups):
            xg, wg = x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg]
            for tap in np.ndindex(*k):
                win = tuple(slice(tap[i] * d[i], tap[i] * d[i] + s[i] * (x.shape[2 + i] - 1) + 1,
                                  s[i]) for i in range(nsp))
                buf[(slice(None), slice(g * mg, (g + 1) * mg), *win)] += np.einsum(
                    "nc...,cm->nm...", xg, wg[(..., *tap)])
    out = buf[(..., *[slice(p[i], p[i] + out_sp[i]) for i in range(nsp)])]
    if b is not None:
        out = out + f64(b).reshape((1, m) + (1,) * nsp)
    return out


# (x shape, w shape, strides, pads, dilations, groups, bias)
CONV_CASES = [
    ((2, 3, 11), (5, 3, 3), None, None, None, 1, True),
    ((1, 4, 17), (6, 2, 4), [2], [1, 2], [2], 2, False),
    ((3, 2, 8), (8, 2, 1), None, None, None, 1, True),
    ((2, 3, 9, 10), (8, 3, 3, 3), None, [1, 1, 1, 1], None, 1, True),
    ((1, 6, 13, 7), (12, 3, 3, 2), [2, 1], [0, 1, 2, 0], [1, 2], 2, True),
    ((2, 16, 7, 5), (24, 16, 1, 1), None, None, None, 1, True),
    ((1, 8, 9, 9), (10, 8, 1, 1), [2, 2], None, None, 1, False),
    ((1, 3, 20, 19), (6, 3, 5, 5), [1, 2], [3, 4, 0, 1], [2, 2], 1, True),
    ((2, 8, 11, 12), (8, 1, 3, 3), None, [1, 1, 1, 1], None, 8, True),   # depthwise
    ((1, 4, 9, 9), (8, 1, 3, 3), [2, 2], [1, 0, 0, 1], None, 4, False),  # depthwise x2
    ((1, 7, 6, 5), (1, 7, 3, 3), None, None, [2, 1], 1, True),
    ((1, 2, 2, 2), (6, 2, 4, 4), None, [1, 1, 1, 1], None, 1, True),
    ((1, 2, 5, 6, 7), (6, 2, 3, 3, 3), [1, 2, 1], [1] * 6, None, 1, True),
    ((2, 4, 4, 5, 6), (4, 2, 2, 3, 1), [2, 1, 2], [0, 1, 0, 1, 2, 0], [2, 1, 1], 2, True),
    # Row-tiled direct conv (float32, unit width stride, 8-32 channels per group): several
    # 32-column tiles, a ragged 8-channel block, height stride, dilation, asymmetric pads.
    ((2, 5, 9, 40), (16, 5, 3, 3), [2, 1], [1, 2, 0, 1], [2, 1], 1, True),
    ((1, 6, 7, 35), (18, 3, 3, 5), None, [1, 2, 1, 2], [1, 3], 2, True),
    ((1, 4, 70), (32, 4, 3), None, [1, 1], None, 1, False),
    # Batches of images with few output positions: the images share one GEMM (wide layout),
    # 1-D and 2-D, strides, pointwise P = 1, and a batch split into two column chunks.
    ((13, 20, 9), (40, 20, 3), [2], [1, 1], None, 1, True),
    ((7, 24, 3, 4), (33, 24, 3, 3), None, [1, 1, 1, 1], None, 1, False),
    ((9, 16, 1), (20, 16, 1), None, None, None, 1, True),
    ((30, 1024, 60), (8, 1024, 3), None, [1, 1], None, 1, True),
    ((0, 3, 5, 5), (4, 3, 3, 3), None, [1, 1, 1, 1], None, 1, True),    # N = 0
    ((2, 0, 5), (6, 0, 3), None, None, None, 1, True),                  # C = 0: bias
    ((2, 0, 5), (2, 0, 3), None, None, None, 1, False),                 # C = 0: zeros
    ((1, 1, 2), (1, 1, 3), None, None, None, 1, True),                  # output extent 0
    ((1, 2, 0), (5, 2, 3), None, [2, 2], None, 1, True),                # empty input, padded
]

# (x shape, w shape, strides, pads, dilations, groups, bias, output_padding)
CONVT_CASES = [
    ((2, 3, 7), (3, 4, 3), [2], [1, 0], None, 1, True, [1]),
    ((1, 5, 9), (5, 2, 1), None, None, None, 1, False, None),
    ((1, 4, 5, 6), (4, 3, 3, 3), [2, 3], [1, 0, 2, 1], [1, 2], 1, True, [1, 0]),
    ((2, 6, 4, 5), (6, 2, 2, 3), [2, 2], None, None, 3, True, None),
    ((1, 4, 6, 6), (4, 1, 4, 4), [2, 2], [1, 1, 1, 1], None, 4, False, None),  # depthwise
    ((1, 3, 5, 4), (3, 7, 3, 3), None, [1, 1, 1, 1], None, 1, True, None),
    ((1, 2, 3, 4, 3), (2, 3, 2, 2, 3), [2, 1, 2], [0, 1, 1, 1, 0, 0], None, 1, True, [1, 0, 0]),
    ((1, 2, 3), (2, 2, 3), [1], None, [3], 1, True, [2]),  # output_padding < dilation
    ((0, 2, 3, 3), (2, 3, 3, 3), None, None, None, 1, True, None),  # N = 0
    ((1, 0, 4), (0, 3, 2), None, None, None, 1, True, None),        # C = 0: bias
    ((1, 2, 0), (2, 3, 3), None, None, None, 1, True, None),        # empty input
]


def _params(cases, dtypes, prefix):
    out = []
    for i, case in enumerate(cases):
        for dt in dtypes:
            s = seed_of(prefix, i, dt)
            out.append(pytest.param(case, dt, s, id=f"{prefix}{i}-{dt}-s{s}"))
    return out


def _scale(w, groups_in):
    """Tolerance scale: accumulation error grows with the number of taps per output."""
    taps = groups_in * math.prod(w.shape[2:])
    return max(2.0, math.sqrt(max(taps, 1)))


@pytest.mark.parametrize("case,dtype,seed",
                         _params(CONV_CASES, ["float32", "float64", "float16"], "conv") +
                         _params(CONV_CASES[3:5], ["bfloat16"], "conv_bf"))
def test_conv(case, dtype, seed):
    xs, ws, strides, pads, dil, groups, has_bias = case
    rng = np.random.default_rng(seed)
    x = random_array(rng, xs, dtype, -1, 1)
    w = random_array(rng, ws, dtype, -1, 1)
    b = random_array(rng, (ws[0],), dtype, -1, 1) if has_bias else None
    out = nef.conv(nef.tensor(x), nef.tensor(w), None if b is None else nef.tensor(b),
                   strides=strides, pads=pads, dilations=dil, groups=groups)
    ref = ref_conv(x, w, b, strides, pads, dil, groups)
    assert out.shape == ref.shape
    assert_close(out, ref, dtype, scale=_scale(w, ws[1]))


@pytest.mark.parametrize("case,dtype,seed",
                         _params(CONVT_CASES, ["float32", "float64", "float16"], "convt") +
                         _params(CONVT_CASES[2:4], ["bfloat16"], "convt_bf"))
def test_conv_transpose(case, dtype, seed):
    xs, ws, strides, pads, dil, groups, has_bias, op = case
    rng = np.random.default_rng(seed)
    x = random_array(rng, xs, dtype, -1, 1)
    w = random_array(rng, ws, dtype, -1, 1)
    b = random_array(rng, (ws[1] * groups,), dtype, -1, 1) if has_bias else None
    out = nef.conv_transpose(nef.tensor(x), nef.tensor(w), None if b is None else nef.tensor(b),
                             strides=strides, pads=pads, dilations=dil, groups=groups,
                             output_padding=op)
    ref = ref_conv_transpose(x, w, b, strides, pads, dil, groups, op)
    assert out.shape == ref.shape
    assert_close(out, ref, dtype, scale=_scale(w, ws[1]))


# float32 2-D convs on conv_implicit.h's kernels: (x shape, w shape, strides, pads, dilations,
# groups, bias). Implicit GEMM: ragged channel tiles, strides 1/2/3, asymmetric pads, dilation,
# groups, batches, 1x1 (strided: through phase planes), two K blocks, 1-D, rows sharing their
# pads (right pad <= left pad) and not (pads wider than the kernel); then depthwise: strides,
# pads, dilation, 5x5, 1x1, 1-D.
IMPLICIT_CASES = [
    ((2, 5, 13, 11), (9, 5, 3, 3), None, [1, 1, 1, 1], None, 1, True),
    ((1, 7, 17, 19), (13, 7, 3, 3), [2, 2], [1, 0, 2, 1], None, 1, False),
    ((1, 6, 15, 23), (10, 3, 3, 2), [2, 1], [0, 1, 2, 0], [2, 3], 2, True),
    ((3, 33, 9, 8), (40, 33, 1, 1), None, None, None, 1, True),
    ((1, 16, 12, 13), (24, 16, 1, 1), [2, 2], None, None, 1, True),
    ((1, 30, 14, 15), (17, 30, 3, 3), None, [1, 1, 1, 1], None, 1, True),
    ((2, 12, 50), (16, 12, 5), [3], [2, 1], [2], 1, False),
    ((1, 4, 23, 21), (8, 4, 5, 5), [3, 3], [2, 2, 1, 0], None, 1, True),
    ((1, 24, 40, 40), (36, 24, 3, 3), None, [1, 1, 1, 1], None, 1, True),
    ((2, 9, 11, 12), (12, 9, 3, 4), [2, 1], [0, 2, 1, 1], None, 1, True),   # rows share pads
    ((1, 9, 6, 7), (10, 9, 1, 1), None, [2, 2, 2, 2], None, 1, True),      # pads beyond 1x1
    ((1, 8, 10, 9), (16, 4, 3, 3), None, [1, 3, 1, 2], [1, 2], 2, False),
    # Weights read in place (over 32K floats), a ragged packed tile, several K blocks, groups.
    ((1, 96, 7, 9), (45, 96, 3, 3), None, [1, 1, 1, 1], None, 1, True),
    ((2, 192, 6, 7), (80, 96, 3, 3), [2, 1], [1, 0, 1, 1], None, 2, True),
    ((2, 13, 17, 19), (13, 1, 3, 3), None, [1, 1, 1, 1], None, 13, True),
    ((1, 10, 20, 21), (10, 1, 3, 3), [2, 2], [0, 1, 1, 0], None, 10, False),
    ((1, 6, 9, 30), (6, 1, 5, 5), [1, 2], [2, 2, 2, 2], [2, 1], 6, True),
    ((1, 5, 7, 7), (5, 1, 1, 1), None, None, None, 5, True),
    ((2, 8, 33), (8, 1, 3), [2], [1, 1], None, 8, True),
    ((1, 96, 20, 20), (96, 1, 3, 3), None, [1, 1, 1, 1], None, 96, True),
    ((2, 6, 8, 11), (6, 1, 5, 3), None, [2, 2, 2, 1], None, 6, True),
    # Depthwise 3 wide, width stride 2, left pad 1: straight from the input rows (dw_s2k3): a
    # row of whole vectors with the last block overlapping, odd widths (a zero-padded tail), a
    # 5-tall kernel with height dilation and height stride 1, wide right pads (columns past the
    # image, at a block start too), long rows, rows shorter than a vector.
    ((1, 6, 80, 80), (6, 1, 3, 3), [2, 2], [1, 1, 1, 1], None, 6, True),
    ((1, 5, 37, 81), (5, 1, 3, 3), [2, 2], [1, 1, 1, 1], None, 5, False),
    ((2, 4, 9, 13), (4, 1, 5, 3), [1, 2], [2, 1, 2, 1], [2, 1], 4, True),
    ((1, 3, 12, 70), (3, 1, 3, 3), [2, 2], [1, 1, 0, 3], None, 3, True),
    ((1, 7, 8, 5), (7, 1, 3, 3), [2, 2], [1, 1, 1, 7], None, 7, True),
    ((1, 9, 8, 19), (9, 1, 3, 3), [2, 2], [0, 1, 3, 12], None, 9, False),
    ((1, 4, 33, 200), (4, 1, 3, 3), [2, 2], [1, 1, 1, 1], None, 4, True),
    ((3, 11, 7, 3), (11, 1, 3, 3), [3, 2], [2, 1, 2, 1], None, 11, True),
    # Depthwise 3 wide, width stride 1, pads 1 and 1: straight from the input rows (dw_s1k3):
    # rows of whole vectors, one vector, a vector and a bit (the last block overlapping), rows
    # under a vector (1, 2, 5 and 13 columns: a padded copy), a 5-tall dilated kernel with
    # height stride 2 and uneven height pads, a batch.
    ((1, 5, 9, 80), (5, 1, 3, 3), None, [1, 1, 1, 1], None, 5, True),
    ((2, 3, 7, 16), (3, 1, 3, 3), None, [1, 1, 1, 1], None, 3, False),
    ((1, 4, 6, 33), (4, 1, 3, 3), None, [1, 1, 1, 1], None, 4, True),
    ((1, 6, 4, 1), (6, 1, 3, 3), None, [1, 1, 1, 1], None, 6, True),
    ((1, 6, 5, 2), (6, 1, 3, 3), None, [0, 1, 2, 1], None, 6, False),
    ((1, 7, 6, 5), (7, 1, 3, 3), None, [1, 1, 1, 1], None, 7, True),
    ((1, 7, 11, 13), (7, 1, 5, 3), [2, 1], [3, 1, 1, 1], [2, 1], 7, True),
    # Many bands of output rows (each filled and computed by one item): tall images, a batch,
    # dilation and a halo of several plane rows, stride 3, a band's ragged last sliver, groups.
    ((3, 7, 67, 9), (11, 7, 3, 3), None, [1, 1, 1, 1], None, 1, True),
    ((1, 5, 90, 31), (9, 5, 5, 3), [1, 1], [4, 1, 4, 1], [2, 1], 1, False),
    ((2, 6, 71, 40), (12, 3, 3, 3), [3, 2], [1, 2, 0, 1], None, 2, True),
    ((1, 40, 129, 7), (24, 40, 3, 3), [2, 1], [1, 1, 1, 1], None, 1, True),
    ((1, 3, 200, 2), (10, 3, 7, 1), None, [3, 0, 3, 0], None, 1, False),
    # One band (a 1-D conv, one image): its slivers split between items.
    ((1, 16, 1501), (32, 16, 5), None, [2, 2], None, 1, True),
    ((1, 12, 2, 777), (20, 6, 2, 3), [1, 2], [0, 1, 1, 1], [1, 3], 2, False),
    # 1x1 stride 1: conv_pointwise (tiles straight into the output; a ragged channel tile and a
    # ragged last sliver through its scratch; several K blocks; panels, and at 2 threads the
    # channel tiles split when panels are few), or the GEMM for few positions.
    ((1, 20, 13, 11), (37, 20, 1, 1), None, None, None, 1, True),
    ((2, 12, 9, 9), (32, 6, 1, 1), None, None, None, 2, False),
    ((1, 300, 12, 12), (21, 300, 1, 1), None, None, None, 1, True),
    ((1, 64, 20, 20), (72, 64, 1, 1), None, None, None, 1, True),
    ((2, 5, 37, 29), (9, 5, 1, 1), None, None, None, 1, False),
    ((1, 40, 8, 96), (96, 20, 1, 1), None, None, None, 2, True),
    ((1, 24, 8, 10), (40, 24, 1, 1), None, None, None, 1, True),   # a last sliver of 2 vectors
    ((2, 7, 113), (10, 7, 1), None, None, None, 1, False),         # 1-D
    ((3, 16, 5, 5), (24, 16, 1, 1), None, None, None, 1, True),
    ((0, 8, 9, 9), (16, 8, 1, 1), None, None, None, 1, True),
    # 1x1 with at most 4 channels per group: one ragged channel tile through the scratch.
    ((1, 96, 13, 13), (4, 96, 1, 1), None, None, None, 1, True),   # a detector head
    ((2, 17, 9, 11), (1, 17, 1, 1), None, None, None, 1, False),
    ((1, 30, 10, 10), (6, 10, 1, 1), None, None, None, 3, True),   # groups of 2 channels
    ((1, 9, 8, 8), (3, 9, 1, 1), None, None, None, 1, True),       # 64 positions
]


def _implicit_inputs(i, case):
    xs, ws, _, _, _, _, has_bias = case
    rng = np.random.default_rng(seed_of("implicit", i))
    x = random_array(rng, xs, "float32", -1, 1)
    w = random_array(rng, ws, "float32", -1, 1)
    b = random_array(rng, (ws[0],), "float32", -1, 1) if has_bias else None
    return x, w, b


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("i", range(len(IMPLICIT_CASES)))
def test_conv_implicit_and_depthwise(i, threads):
    xs, ws, strides, pads, dil, groups, _ = case = IMPLICIT_CASES[i]
    x, w, b = _implicit_inputs(i, case)
    previous = nef.config()["threads"]
    nef.config(threads=threads)
    try:
        out = nef.conv(x, w, b, strides=strides, pads=pads, dilations=dil, groups=groups).numpy()
    finally:
        nef.config(threads=previous)
    assert_close(out, ref_conv(x, w, b, strides, pads, dil, groups), "float32",
                 scale=_scale(w, ws[1]))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("ws,pads", [((70, 0, 1, 1), None), ((20, 0, 3, 3), [1, 1, 1, 1])])
@pytest.mark.parametrize("has_bias", [True, False])
def test_conv_no_input_channels(ws, pads, has_bias, threads):
    """Zero input channels: the output is the bias (or zeros) on every kernel path."""
    rng = np.random.default_rng(seed_of("no-channels", ws[0], has_bias))
    x = np.zeros((2, 0, 11, 9), np.float32)
    w = np.zeros(ws, np.float32)
    b = random_array(rng, (ws[0],), "float32", -1, 1) if has_bias else None
    previous = nef.config()["threads"]
    nef.config(threads=threads)
    try:
        out = nef.conv(x, w, b, pads=pads).numpy()
    finally:
        nef.config(threads=previous)
    assert_close(out, ref_conv(x, w, b, None, pads), "float32")


@pytest.mark.parametrize("target", ["avx2", "generic"])
def test_conv_implicit_instruction_set_variants(target, tmp_path):
    """Each forced instruction-set variant of the conv loops (NEF_CPU_TARGET), at 2 threads,
    against the float64 reference."""
    code = (
        "import sys, numpy as np, nef\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "import test_conv as t\n"
        "nef.config(threads=2)\n"
        "outs = {}\n"
        "for i, c in enumerate(t.IMPLICIT_CASES):\n"
        "    x, w, b = t._implicit_inputs(i, c)\n"
        "    outs[str(i)] = nef.conv(x, w, b, strides=c[2], pads=c[3], dilations=c[4],\n"
        "                            groups=c[5]).numpy()\n"
        "np.savez(sys.argv[1], **outs)\n")
    env = dict(os.environ, NEF_CPU_TARGET=target)
    path = tmp_path / "out.npz"
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, "-c", code, str(path), here], check=True, env=env, cwd=here)
    got = np.load(path)
    for i, case in enumerate(IMPLICIT_CASES):
        _, ws, strides, pads, dil, groups, _ = case
        x, w, b = _implicit_inputs(i, case)
        assert_close(got[str(i)], ref_conv(x, w, b, strides, pads, dil, groups), "float32",
                     scale=_scale(w, ws[1]))


# conv_implicit's weights packed once per plan (a constant weight) against packed per call (the
# weight a graph input): both against float64, at 1 and 2 threads, with and without a bias.
PREPARED_CASES = [
    ((1, 19, 23, 29), (45, 19, 3, 3), [2, 2], [1, 1, 1, 1], None, 1),   # ragged packed tile
    ((2, 40, 12, 10), (24, 40, 3, 3), None, [1, 1, 1, 1], None, 1),     # weights over 32K floats
    ((1, 24, 11, 13), (36, 12, 3, 3), [1, 2], [0, 1, 2, 1], [2, 1], 2),  # groups, dilation
    ((1, 300, 9, 8), (20, 300, 3, 3), None, [1, 1, 1, 1], None, 1),     # several K blocks
    ((1, 33, 9, 16), (26, 33, 1, 1), None, None, None, 1),              # conv_pointwise
    ((1, 24, 12, 12), (36, 12, 1, 1), None, None, None, 2),             # pointwise, groups
    ((1, 40, 9, 16), (3, 40, 1, 1), None, None, None, 1),               # pointwise, 3 channels
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("has_bias", [True, False])
@pytest.mark.parametrize("i", range(len(PREPARED_CASES)))
def test_conv_weight_constant_or_graph_input(i, has_bias, threads, tmp_path):
    _check_constant_and_input(i, has_bias, threads, tmp_path)


@pytest.mark.parametrize("target", ["avx2", "generic"])
def test_conv_weight_constant_or_graph_input_instruction_sets(target, tmp_path):
    """The same under each forced instruction-set variant (the packing follows its tile)."""
    code = (
        "import sys, pathlib\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "import test_conv as t\n"
        "for i in range(len(t.PREPARED_CASES)):\n"
        "    t._check_constant_and_input(i, i % 2 == 0, 2, pathlib.Path(sys.argv[1]))\n")
    env = dict(os.environ, NEF_CPU_TARGET=target)
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, "-c", code, str(tmp_path), here], check=True, env=env,
                   cwd=here)


def _check_constant_and_input(i, has_bias, threads, tmp_path):
    xs, ws, strides, pads, dil, groups = PREPARED_CASES[i]
    rng = np.random.default_rng(seed_of("prepared", i, has_bias))
    x = random_array(rng, xs, "float32", -1, 1)
    w = random_array(rng, ws, "float32", -1, 1)
    b = random_array(rng, (ws[0],), "float32", -1, 1) if has_bias else None
    want = ref_conv(x, w, b, strides, pads, dil, groups)
    previous = nef.config()["threads"]
    nef.config(threads=threads)
    try:
        xp = nef.placeholder("x", xs, "float32")
        wp = nef.placeholder("w", ws, "float32")
        bt = None if b is None else nef.tensor(b)
        conv = dict(strides=strides, pads=pads, dilations=dil, groups=groups)
        nef.build(tmp_path / "const.nef", {"y": nef.conv(xp, nef.tensor(w), bt, **conv)})
        nef.build(tmp_path / "input.nef", {"y": nef.conv(xp, wp, bt, **conv)})
        const, inp = nef.load(tmp_path / "const.nef"), nef.load(tmp_path / "input.nef")
        for _ in range(2):  # a second run reuses the plan and its packed weights
            assert_close(const.run({"x": x})["y"], want, "float32", scale=_scale(w, ws[1]))
            assert_close(inp.run({"x": x, "w": w})["y"], want, "float32", scale=_scale(w, ws[1]))
        # Another weight through the same plan: packed per call, never the first one's packing.
        w2 = random_array(rng, ws, "float32", -1, 1)
        assert_close(inp.run({"x": x, "w": w2})["y"], ref_conv(x, w2, b, strides, pads, dil, groups),
                     "float32", scale=_scale(w2, ws[1]))
    finally:
        nef.config(threads=previous)


def test_large_chunked():
    # Column buffers over the kernel's budget: chunked over positions, and over images.
    rng = np.random.default_rng(seed_of("large"))
    x = random_array(rng, (1, 32, 130, 130), "float32", -1, 1)
    w = random_array(rng, (8, 32, 3, 3), "float32", -1, 1)
    b = random_array(rng, (8,), "float32", -1, 1)
    assert_close(nef.conv(x, w, b, pads=[1, 1, 1, 1]), ref_conv(x, w, b, pads=[1, 1, 1, 1]),
                 "float32", scale=20)
    x = random_array(rng, (9, 16, 100, 100), "float32", -1, 1)
    w = random_array(rng, (8, 16, 3, 3), "float32", -1, 1)
    assert_close(nef.conv(x, w, strides=[1, 2]), ref_conv(x, w, strides=[1, 2]), "float32",
                 scale=20)
    x = random_array(rng, (1, 8, 120, 120), "float32", -1, 1)
    w = random_array(rng, (8, 32, 4, 4), "float32", -1, 1)
    assert_close(nef.conv_transpose(x, w, strides=[2, 2], pads=[1, 1, 1, 1]),
                 ref_conv_transpose(x, w, strides=[2, 2], pads=[1, 1, 1, 1]), "float32",
                 scale=20)


def test_strided_input_and_graph():
    # A transposed (non-contiguous) input, then conv inside a graph with other ops that the
    # optimizer fuses around it; numpy operands become constants.
    rng = np.random.default_rng(seed_of("graph"))
    xt = random_array(rng, (2, 6, 11, 9), "float32", -1, 1)
    w = random_array(rng, (10, 3, 3, 3), "float32", -1, 1)
    b = random_array(rng, (10,), "float32", -1, 1)
    x = nef.transpose(nef.tensor(xt), (0, 1, 3, 2))
    y = nef.relu(nef.conv(x, w, b, pads=[1, 0, 1, 2], groups=2) * 2.0 + 1.0)
    ref = np.maximum(ref_conv(xt.transpose(0, 1, 3, 2), w, b, pads=[1, 0, 1, 2], groups=2)
                     * 2.0 + 1.0, 0)
    assert_close(y, ref, "float32", scale=6)
    wt = random_array(rng, (10, 4, 2, 2), "float32", -1, 1)
    z = nef.conv_transpose(nef.conv(x, w, b, pads=[1, 0, 1, 2], groups=2), wt, strides=[2, 2])
    assert_close(z, ref_conv_transpose(ref_conv(xt.transpose(0, 1, 3, 2), w, b,
                                                pads=[1, 0, 1, 2], groups=2),
                                       wt, strides=[2, 2]), "float32", scale=20)


def test_placeholder_rerun():
    # The same compiled plan with fresh inputs: no state leaks between runs.
    rng = np.random.default_rng(seed_of("rerun"))
    w = random_array(rng, (6, 3, 3, 3), "float64", -1, 1)
    for _ in range(2):
        x = random_array(rng, (2, 3, 8, 7), "float64", -1, 1)
        assert_close(nef.conv(x, w, strides=[2, 1], pads=[1, 1, 0, 0]),
                     ref_conv(x, w, strides=[2, 1], pads=[1, 1, 0, 0]), "float64")


def _t(shape, dtype="float32"):
    return nef.tensor(np.ones(shape, dtype=dtype))


def test_errors():
    with pytest.raises(nef.NEFShapeError, match=r"^\[conv\].*\(2, 3\)"):
        nef.conv(_t((2, 3)), _t((4, 3)))
    with pytest.raises(nef.NEFShapeError, match=r"\[conv\] weight"):
        nef.conv(_t((1, 3, 5)), _t((4, 3, 3, 3)))
    with pytest.raises(nef.NEFShapeError, match=r"input \(1, 3, 5\) and weight \(4, 2, 3\)"):
        nef.conv(_t((1, 3, 5)), _t((4, 2, 3)))
    with pytest.raises(nef.NEFShapeError, match=r"groups=2"):
        nef.conv(_t((1, 4, 5)), _t((3, 2, 3)), groups=2)
    with pytest.raises(nef.NEFShapeError, match=r"bias \(3,\)"):
        nef.conv(_t((1, 3, 5)), _t((4, 3, 3)), _t((3,)))
    with pytest.raises(nef.NEFShapeError, match=r"does not fit"):
        nef.conv(_t((1, 3, 2)), _t((4, 3, 4)))
    with pytest.raises(nef.NEFTypeError, match=r"share a dtype"):
        nef.conv(_t((1, 3, 5)), _t((4, 3, 3), "float64"))
    with pytest.raises(nef.NEFTypeError, match=r"float"):
        nef.conv(_t((1, 3, 5), "int32"), _t((4, 3, 3), "int32"))
    with pytest.raises(nef.NEFValidationError, match=r"strides"):
        nef.conv(_t((1, 3, 5)), _t((4, 3, 3)), strides=[1, 1])
    with pytest.raises(nef.NEFValidationError, match=r"strides"):
        nef.conv(_t((1, 3, 5)), _t((4, 3, 3)), strides=[0])
    with pytest.raises(nef.NEFValidationError, match=r"pads"):
        nef.conv(_t((1, 3, 5)), _t((4, 3, 3)), pads=[-1, 0])
    with pytest.raises(nef.NEFValidationError, match=r"dilations"):
        nef.conv(_t((1, 3, 5)), _t((4, 3, 3)), dilations=[0])
    with pytest.raises(nef.NEFValidationError, match=r"groups"):
        nef.conv(_t((1, 3, 5)), _t((4, 3, 3)), groups=0)
    with pytest.raises(nef.NEFShapeError, match=r"^\[conv_transpose\].*weight.shape\[0\] == C"):
        nef.conv_transpose(_t((1, 3, 5)), _t((4, 2, 3)))
    with pytest.raises(nef.NEFShapeError, match=r"must have 4 values"):
        nef.conv_transpose(_t((1, 4, 5)), _t((4, 2, 3)), _t((2,)), groups=2)
    with pytest.raises(nef.NEFShapeError, match=r"pads \[3, 2\]"):
        nef.conv_transpose(_t((1, 4, 2)), _t((4, 2, 3)), pads=[3, 2])
    with pytest.raises(nef.NEFValidationError, match=r"output_padding"):
        nef.conv_transpose(_t((1, 4, 5)), _t((4, 2, 3)), strides=[2], output_padding=[2])
    # output_padding below the dilation is enough.
    assert nef.conv_transpose(_t((1, 4, 5)), _t((4, 2, 3)), strides=[2], dilations=[3],
                              output_padding=[2]).shape == (1, 2, 17)


def test_graph_file_roundtrip(tmp_path):
    # Canonical attributes survive a .nef file; the loaded graph runs on new inputs.
    rng = np.random.default_rng(seed_of("file"))
    w = random_array(rng, (4, 6, 3, 2), "float32", -1, 1)
    b = random_array(rng, (6,), "float32", -1, 1)
    x = nef.placeholder("x", (2, 4, 7, 6))
    y = nef.conv_transpose(x, w, b, strides=[2, 1], pads=[1, 0, 0, 1], output_padding=[1, 0])
    nef.build(tmp_path / "convt.nef", y)
    g = nef.load(tmp_path / "convt.nef")
    xv = random_array(rng, (2, 4, 7, 6), "float32", -1, 1)
    out = g.run({"x": xv})["output"]
    ref = ref_conv_transpose(xv, w, b, strides=[2, 1], pads=[1, 0, 0, 1], output_padding=[1, 0])
    assert_close(out, ref, "float32", scale=4)


# ---- conv_epilogue: a conv with bias and its activation chain in one kernel -----------------

@pytest.fixture
def on_cpu():
    """The CPU backend's fusion (other devices, e.g. NEF_DEVICES=opencl, keep the ops apart)."""
    nef.config(devices="cpu")
    yield
    nef.config(devices=[])

def _epilogue_graph(tmp_path, xs, ws, act, strides=None, pads=None, groups=1, dtype="float32"):
    x = nef.placeholder("x", xs, dtype)
    rng = np.random.default_rng(seed_of("epi", len(xs), xs[1], ws[0]))
    w = random_array(rng, ws, dtype, -0.5, 0.5)
    b = random_array(rng, (ws[0],), dtype, -0.5, 0.5)
    y = act(nef.conv(x, nef.tensor(w), nef.tensor(b), strides=strides, pads=pads, groups=groups))
    path = tmp_path / "g.nef"
    nef.build(path, {"y": y})
    return nef.load(path), w, b


ACTS = {
    "relu": (lambda t: nef.relu(t), lambda r: np.maximum(r, 0)),
    "silu": (lambda t: t * nef.sigmoid(t), lambda r: r / (1 + np.exp(-r))),
    "clip": (lambda t: nef.clip(t, 0.0, 0.4), lambda r: np.clip(r, 0.0, 0.4)),
    "tanh_scale": (lambda t: nef.tanh(t) * 2.0 - 0.5, lambda r: np.tanh(r) * 2 - 0.5),
}


# Each conv path: the implicit GEMM (several panels of output rows, 1x1 with a ragged tile),
# the wide GEMM, the direct loop (<= 4 output channels), depthwise (stride 2 and 1, read from the
# input rows), pointwise float64 (GEMM), a ragged size for the epilogue's padded tail,
# conv_pointwise (one panel, several).
@pytest.mark.parametrize("xs,ws,strides,pads,groups,dtype", [
    ((1, 8, 21, 19), (40, 8, 3, 3), None, [1, 1, 1, 1], 1, "float32"),
    ((6, 12, 7), (48, 12, 3), [2], [1, 1], 1, "float32"),
    ((1, 6, 9, 35), (16, 6, 3, 3), None, [1, 1, 1, 1], 1, "float32"),
    ((2, 3, 11, 13), (3, 3, 3, 3), None, None, 1, "float32"),
    ((1, 16, 9, 7), (40, 16, 1, 1), None, None, 1, "float64"),
    ((1, 8, 8, 8), (8, 2, 3, 3), None, [1, 1, 1, 1], 4, "float32"),
    ((2, 10, 30, 29), (20, 10, 3, 3), None, [1, 1, 1, 1], 1, "float32"),
    ((1, 16, 9, 7), (40, 16, 1, 1), None, None, 1, "float32"),
    ((1, 12, 10, 11), (12, 1, 3, 3), [2, 2], [1, 1, 1, 1], 12, "float32"),
    ((1, 9, 12, 21), (9, 1, 3, 3), None, [1, 1, 1, 1], 9, "float32"),  # depthwise stride 1
    ((1, 16, 11, 13), (40, 16, 1, 1), None, None, 1, "float32"),
    ((1, 8, 30, 31), (20, 8, 1, 1), None, None, 1, "float32"),
    ((1, 24, 13, 11), (4, 24, 1, 1), None, None, 1, "float32"),  # pointwise, 4 channels
])
@pytest.mark.parametrize("act", sorted(ACTS))
def test_conv_epilogue_fuses_and_matches(on_cpu, tmp_path, xs, ws, strides, pads, groups, dtype, act):
    lazy, ref_act = ACTS[act]
    g, w, b = _epilogue_graph(tmp_path, xs, ws, lazy, strides, pads, groups, dtype)
    ops = [k["op"] for k in g.plan()["kernels"] if k["op"] not in ("input", "constant")]
    assert ops == ["conv_epilogue"], ops
    x = random_array(np.random.default_rng(seed_of("epi-x", act, xs[0])), xs, dtype, -1, 1)
    got = g.run({"x": x})["y"]
    want = ref_act(ref_conv(x, w, b, strides, pads, None, groups))
    assert got.dtype == np.dtype(dtype)
    assert_close(got, want, dtype, scale=_scale(w, ws[1]))


def test_conv_epilogue_needs_bias_and_single_values(on_cpu, tmp_path):
    x = nef.placeholder("x", (1, 4, 6, 6), "float32")
    w = nef.tensor(np.ones((8, 4, 3, 3), np.float32))
    # No bias: the conv kernel's own output, the activation separate.
    path = tmp_path / "nobias.nef"
    nef.build(path, {"y": nef.relu(nef.conv(x, w))})
    ops = [k["op"] for k in nef.load(path).plan()["kernels"] if k["op"] not in ("input", "constant")]
    assert "conv_epilogue" not in ops
    # A per-channel operand is not a single value: not fused into the conv.
    b = nef.tensor(np.zeros(8, np.float32))
    scale = nef.tensor(np.arange(8, dtype=np.float32).reshape(1, 8, 1, 1))
    path = tmp_path / "chan.nef"
    nef.build(path, {"y": nef.conv(x, w, b) * scale})
    g = nef.load(path)
    ops = [k["op"] for k in g.plan()["kernels"] if k["op"] not in ("input", "constant")]
    assert "conv_epilogue" not in ops
    xv = np.random.default_rng(1).uniform(-1, 1, (1, 4, 6, 6)).astype(np.float32)
    want = ref_conv(xv, np.ones((8, 4, 3, 3)), np.zeros(8)) * np.arange(8).reshape(1, 8, 1, 1)
    np.testing.assert_allclose(g.run({"x": xv})["y"], want, rtol=1e-5, atol=1e-5)
