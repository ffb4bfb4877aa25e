"""attention against a float64 numpy reference where the CPU kernel's blocking shows: query rows
past one block, keys past one key block (the running max/sum across blocks), every mask kind,
causal with Lq != Lk, strided / broadcast / reversed inputs, half types, NaN rows, edge shapes."""

import math

import numpy as np
import pytest
from conftest import FLOATS, assert_close, cases, f64, random_array

import nef


def reference(q, k, v, mask=None, scale=None, causal=False):
    """softmax(scale * q k^T + mask) v in float64; a row with no attended key gives zeros."""
    q, k, v = f64(q), f64(k), f64(v)
    if scale is None:
        scale = 1 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    lq, lk = q.shape[-2], k.shape[-2]
    keep = np.ones(s.shape, bool)
    if mask is not None:
        if mask.dtype == bool:
            keep = keep & np.broadcast_to(mask, s.shape)
        else:
            s = s + f64(mask)
    if causal:
        keep = keep & (np.arange(lk)[None, :] <= np.arange(lq)[:, None] + lk - lq)
    s = np.where(keep, s, -np.inf)
    m = s.max(axis=-1, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    e = np.where(keep, np.exp(s - m), 0)
    den = e.sum(axis=-1, keepdims=True)
    p = np.divide(e, den, out=np.zeros_like(e), where=den > 0)
    return np.matmul(p, v)


def run(q, k, v, mask=None, **kw):
    t = (lambda a: a if isinstance(a, nef.Tensor) else nef.tensor(a))
    return nef.attention(t(q), t(k), t(v), mask=None if mask is None else t(mask), **kw)


# (batch dims, Lq, Lk, D, Dv): more query rows than one block (256), more keys than one key
# block (2048, so 2049 and 4500 take the running-max path), Lq != Lk both ways for causal, and
# blocks of at most 6 query rows (dot products instead of the GEMM: decode-like Lq = 1, and the
# 2-row remainder of 258 rows), with D and Dv off the vector width.
BLOCK_SHAPES = [((2,), 300, 37, 16, 8), ((1,), 5, 4500, 8, 3), ((2, 1), 7, 2049, 4, 5),
                ((1,), 40, 9, 6, 4), ((1,), 9, 40, 6, 4), ((1,), 270, 2100, 4, 3),
                ((3,), 1, 2500, 20, 17), ((2,), 3, 33, 16, 5), ((8,), 258, 40, 8, 8)]
MASKS = ["none", "bool", "float", "causal", "bool+causal"]


@pytest.mark.parametrize("dtype,shape,mask_kind,seed", cases(FLOATS, BLOCK_SHAPES, MASKS,
                                                             prefix="attblk"))
def test_blocks_and_masks(dtype, shape, mask_kind, seed):
    batch, lq, lk, d, dv = shape
    rng = np.random.default_rng(seed)
    q = random_array(rng, batch + (lq, d), dtype, -2, 2)
    k = random_array(rng, batch + (lk, d), dtype, -2, 2)
    v = random_array(rng, batch + (lk, dv), dtype, -1, 1)
    mask = None
    if "bool" in mask_kind:
        mask = rng.random((lq, lk)) < 0.6
        mask[0, :] = False          # a row that attends nothing: zeros
        mask[-1, :] = False
        mask[-1, -1] = True         # a row that sees only the last key (last key block)
    elif mask_kind == "float":
        mask = random_array(rng, (lq, lk), dtype, -4, 0)
        mask[1 % lq, : lk // 2] = -np.inf  # first half of the keys masked (first key block)
    causal = "causal" in mask_kind
    out = run(q, k, v, mask, causal=causal)
    assert str(out.dtype) == dtype
    assert_close(out, reference(q, k, v, mask, causal=causal), dtype, scale=16)


def test_running_max_rescales_earlier_blocks():
    # Scores grow along the keys, so every later key block raises the row max by a lot:
    # the sums and outputs of the earlier blocks must be rescaled (or vanish) correctly.
    rng = np.random.default_rng(11)
    lk = 6200
    q = np.ones((3, 1), np.float32)
    k = np.linspace(-30, 30, lk, dtype=np.float32)[:, None]
    v = rng.uniform(-1, 1, (lk, 4)).astype(np.float32)
    for scale in [0.01, 0.3, 3.0]:
        mask = np.zeros((3, lk), np.float32)
        mask[1, 3000:] = -np.inf    # row 1: only the first block(s) attended
        mask[2, :4100] = -np.inf    # row 2: only the last block attended
        out = run(q, k, v, mask, scale=scale)
        assert_close(out, reference(q, k, v, mask, scale=scale), "float32", scale=16)


@pytest.mark.parametrize("lq", [33, 2])  # the GEMM path and the few-rows path
def test_strided_broadcast_and_reversed_inputs(lq):
    rng = np.random.default_rng(5)
    b, h, lk, d, dv = 2, 3, 70, 16, 8
    q_blhd = rng.uniform(-1, 1, (b, lq, h, d)).astype(np.float32)
    k_hkd = rng.uniform(-1, 1, (1, h, lk, d)).astype(np.float32)
    v_bhdk = rng.uniform(-1, 1, (b, h, dv, lk)).astype(np.float32)
    pad = np.ones((b, 1, 1, lk), bool)
    pad[0, ..., 50:] = False
    q = nef.permute(nef.tensor(q_blhd), (0, 2, 1, 3))                  # strided rows
    k = nef.broadcast_to(nef.tensor(k_hkd), (b, h, lk, d))             # stride-0 batch
    v = nef.transpose(nef.tensor(v_bhdk), (0, 1, 3, 2))               # column-major rows
    m = nef.broadcast_to(nef.tensor(pad), (b, h, lq, lk))              # stride-0 query rows
    qr, kr, vr = q_blhd.transpose(0, 2, 1, 3), np.broadcast_to(k_hkd, (b, h, lk, d)), \
        v_bhdk.transpose(0, 1, 3, 2)
    assert_close(run(q, k, v, m), reference(qr, kr, vr, pad), "float32", scale=16)
    # Keys reversed (negative strides) with a per-query float mask broadcast over the keys.
    krev = nef.slice(k, [0, 0, lk - 1, 0], [b, h, -1, d], [1, 1, -1, 1])
    vrev = nef.slice(v, [0, 0, lk - 1, 0], [b, h, -1, dv], [1, 1, -1, 1])
    col = rng.uniform(-1, 0, (lq, 1)).astype(np.float32)
    want = reference(qr, kr[:, :, ::-1], vr[:, :, ::-1], col, causal=True)
    assert_close(run(q, krev, vrev, col, causal=True), want, "float32", scale=16)


@pytest.mark.parametrize("qt,mt", [("float16", "float32"), ("float32", "float16"),
                                   ("bfloat16", "float64"), ("float32", "float64"),
                                   ("float64", "float32")])
def test_mixed_dtypes(qt, mt):
    rng = np.random.default_rng(7)
    q = random_array(rng, (2, 19, 8), qt, -1, 1)
    k = random_array(rng, (2, 23, 8), "float32", -1, 1)
    v = random_array(rng, (2, 23, 5), qt, -1, 1)
    mask = random_array(rng, (19, 23), mt, -3, 0)
    out = run(q, k, v, mask)
    want_dtype = "float64" if qt == "float64" else "float32"  # promote(q, k, v)
    assert str(out.dtype) == want_dtype
    assert_close(out, reference(q, k, v, mask), want_dtype, scale=16)


def test_nan_row_and_fully_masked_rows():
    rng = np.random.default_rng(3)
    q = rng.uniform(-1, 1, (4, 8)).astype(np.float32)
    k = rng.uniform(-1, 1, (2500, 8)).astype(np.float32)
    v = rng.uniform(-1, 1, (2500, 3)).astype(np.float32)
    q[2, 5] = np.nan
    mask = np.ones((4, 2500), bool)
    mask[0] = False
    out = run(q, k, v, mask).numpy()
    assert np.all(out[0] == 0)
    assert np.all(np.isnan(out[2]))
    ok = [1, 3]
    assert_close(out[ok], reference(q, k, v, mask)[ok], "float32", scale=16)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_edge_shapes(dtype):
    rng = np.random.default_rng(9)
    q = random_array(rng, (2, 5, 4), dtype)
    # no keys: zeros
    out = run(q, np.zeros((2, 0, 4), dtype), np.zeros((2, 0, 3), dtype))
    assert out.shape == (2, 5, 3) and np.all(out.numpy() == 0)
    # no query rows / no value columns: empty outputs
    k = random_array(rng, (2, 6, 4), dtype)
    v = random_array(rng, (2, 6, 3), dtype)
    assert run(random_array(rng, (2, 0, 4), dtype), k, v).shape == (2, 0, 3)
    assert run(q, k, random_array(rng, (2, 6, 0), dtype)).shape == (2, 5, 0)
    # D = 0: every score is 0, so each row is the mean of v (causal: of the keys it sees)
    q0, k0 = np.zeros((3, 0), dtype), np.zeros((6, 0), dtype)
    v6 = random_array(rng, (6, 2), dtype)
    assert_close(run(q0, k0, v6), reference(q0, k0, v6), dtype, scale=16)
    assert_close(run(q0, k0, v6, causal=True), reference(q0, k0, v6, causal=True), dtype, scale=16)
    # size-1 everything
    one = random_array(rng, (1, 1), dtype)
    assert_close(run(one, one, one), f64(one), dtype)


def test_bad_inputs_are_structured_errors():
    q = nef.tensor(np.ones((3, 4), np.float32))
    k = nef.tensor(np.ones((5, 4), np.float32))
    v = nef.tensor(np.ones((5, 2), np.float32))
    with pytest.raises(nef.NEFShapeError):
        nef.attention(q, k, v, mask=nef.tensor(np.ones((4, 5), bool)))
    with pytest.raises(nef.NEFTypeError):
        nef.attention(q, k, v, mask=nef.tensor(np.ones((3, 5), np.int32)))
    with pytest.raises(nef.NEFShapeError):
        nef.attention(q, nef.tensor(np.ones((5, 3), np.float32)), v)
