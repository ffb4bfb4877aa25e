"""rope and cached_attention against float64 numpy references written from their definitions."""
import numpy as np
import pytest

import nef


def rope_ref(x, pos, base=10000.0, dims=0, mode="half", pos_scale=1.0):
    x = np.asarray(x, np.float64)
    d = x.shape[-1]
    dims = dims or d
    half = dims // 2
    inv = base ** (-2.0 * np.arange(half) / dims)
    ang = (np.asarray(pos, np.float64) * pos_scale)[:, None] * inv[None, :]  # [T, half]
    c, s = np.cos(ang), np.sin(ang)
    out = x.copy()
    if mode == "half":
        i0, i1 = np.arange(half), np.arange(half) + half
    else:
        i0, i1 = 2 * np.arange(half), 2 * np.arange(half) + 1
    a, b = x[..., i0], x[..., i1]
    out[..., i0] = a * c - b * s
    out[..., i1] = a * s + b * c
    return out


def attention_ref(q, k, v, scale=None):
    """Causal (bottom-right aligned) attention in float64; k, v broadcast over q's batch."""
    q, k, v = (np.asarray(t, np.float64) for t in (q, k, v))
    T, L = q.shape[-2], k.shape[-2]
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    visible = np.arange(L)[None, :] <= np.arange(T)[:, None] + (L - T)
    s = np.where(visible, s, -np.inf)
    s -= s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    return p @ v


@pytest.mark.parametrize("mode", ["half", "interleaved"])
@pytest.mark.parametrize("shape,dims", [((3, 5, 64), 0), ((2, 4, 7, 10), 6), ((1, 1, 2), 2),
                                        ((4, 0, 8), 0)])
def test_rope_matches_reference(mode, shape, dims):
    rng = np.random.default_rng()
    x = rng.standard_normal(shape).astype(np.float32)
    pos = rng.integers(0, 9000, size=shape[-2]).astype(np.int32)
    got = nef.rope(x, pos, base=100000.0, dims=dims, mode=mode).numpy()
    want = rope_ref(x, pos, base=100000.0, dims=dims, mode=mode)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_rope_strided_input_and_float64_and_scale():
    rng = np.random.default_rng()
    x = rng.standard_normal((6, 5, 3, 16))  # [T, H, ..., D] viewed as [H, ..., T, D] below
    xv = np.transpose(x, (1, 2, 0, 3))
    pos = np.arange(10, 16, dtype=np.int64)
    got = nef.rope(nef.asarray(x).transpose((1, 2, 0, 3)), pos, pos_scale=0.25).numpy()
    np.testing.assert_allclose(got, rope_ref(xv, pos, pos_scale=0.25), rtol=1e-12, atol=1e-12)


def test_rope_float16_and_bfloat16():
    rng = np.random.default_rng()
    x = rng.standard_normal((2, 9, 32)).astype(np.float32)
    pos = np.arange(9, dtype=np.int32) * 7
    want = rope_ref(x, pos)
    got16 = nef.rope(x.astype(np.float16), pos).numpy()
    assert got16.dtype == np.float16
    np.testing.assert_allclose(got16.astype(np.float64), want, rtol=3e-3, atol=3e-3)
    gotbf = nef.rope(nef.asarray(x).astype("bfloat16"), pos).numpy()
    np.testing.assert_allclose(gotbf.astype(np.float64), want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("bad", [
    dict(pos=np.arange(4)), dict(dims=3), dict(dims=80), dict(mode="neox"), dict(base=-1.0),
    dict(pos=np.arange(5, dtype=np.float32))])
def test_rope_rejects_bad_arguments(bad):
    x = np.zeros((2, 5, 64), np.float32)
    args = dict(pos=np.arange(5, dtype=np.int32), base=10000.0, dims=0, mode="half")
    args.update(bad)
    pos = args.pop("pos")
    with pytest.raises((nef.NEFShapeError, nef.NEFTypeError, nef.NEFValidationError)) as e:
        nef.rope(x, pos, **args).numpy()
    assert "[rope]" in str(e.value)


@pytest.mark.parametrize("start,T,C", [(0, 1, 8), (5, 1, 8), (7, 1, 8), (3, 4, 16), (0, 9, 9),
                                       (11, 5, 40), (2500, 3, 2600)])
def test_cached_attention_equals_full_causal_attention(start, T, C):
    rng = np.random.default_rng()
    hkv, g, d = 3, 3, 64
    kc = rng.standard_normal((hkv, 1, C, d)).astype(np.float32)
    vc = rng.standard_normal((hkv, 1, C, d)).astype(np.float32)
    kn = rng.standard_normal((hkv, 1, T, d)).astype(np.float32)
    vn = rng.standard_normal((hkv, 1, T, d)).astype(np.float32)
    q = rng.standard_normal((hkv, g, T, d)).astype(np.float32)
    # Rows at and past `start` must never be read: poison them.
    kc[:, :, start:] = np.nan
    vc[:, :, start:] = np.nan
    got = nef.cached_attention(q, kc, vc, kn, vn, np.array(start, np.int64)).numpy()
    k_all = np.concatenate([kc[:, :, :start], kn], axis=2)
    v_all = np.concatenate([vc[:, :, :start], vn], axis=2)
    want = attention_ref(q, k_all, v_all)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("start,T,C", [(0, 1, 8), (13, 1, 40), (37, 5, 64), (130, 17, 200)])
def test_cached_attention_float16_cache(start, T, C):
    """A float16 cache (nef.llm's default) with float32 queries: the cache rows are read as
    their float16 values (converted as they are loaded by the few-query path, converted blocks
    for more queries; ragged head sizes too)."""
    rng = np.random.default_rng()
    hkv, g = 2, 3
    for d in (64, 19, 40, 100):  # whole vectors, a scalar tail, both
        kc = rng.standard_normal((hkv, 1, C, d)).astype(np.float16)
        vc = rng.standard_normal((hkv, 1, C, d)).astype(np.float16)
        kn = rng.standard_normal((hkv, 1, T, d)).astype(np.float16)
        vn = rng.standard_normal((hkv, 1, T, d)).astype(np.float16)
        q = rng.standard_normal((hkv, g, T, d)).astype(np.float32)
        kc[:, :, start:] = np.nan
        vc[:, :, start:] = np.nan
        got = nef.cached_attention(q, kc, vc, kn, vn, np.array(start, np.int64)).numpy()
        assert got.dtype == np.float32
        k_all = np.concatenate([kc[:, :, :start], kn], axis=2).astype(np.float64)
        v_all = np.concatenate([vc[:, :, :start], vn], axis=2).astype(np.float64)
        want = attention_ref(q.astype(np.float64), k_all, v_all)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_cached_attention_one_plan_for_every_start(tmp_path):
    rng = np.random.default_rng()
    C, d = 32, 16
    kc = rng.standard_normal((2, C, d)).astype(np.float32)
    vc = rng.standard_normal((2, C, d)).astype(np.float32)
    kn = rng.standard_normal((2, 1, d)).astype(np.float32)
    vn = rng.standard_normal((2, 1, d)).astype(np.float32)
    q = rng.standard_normal((2, 1, d)).astype(np.float32)
    qp, kcp, vcp = (nef.placeholder(n, a.shape, "float32") for n, a in
                    (("q", q), ("kc", kc), ("vc", vc)))
    knp, vnp = nef.placeholder("kn", kn.shape, "float32"), nef.placeholder("vn", vn.shape, "float32")
    sp = nef.placeholder("start", (), "int64")
    nef.build(tmp_path / "att.nef", {"out": nef.cached_attention(qp, kcp, vcp, knp, vnp, sp,
                                                                 scale=0.3)})
    g = nef.load(tmp_path / "att.nef")
    g.run(q=q, kc=kc, vc=vc, kn=kn, vn=vn, start=np.array(0, np.int64))
    compiled = nef.stats()["kernel_cache_misses"], nef.stats()["plan_cache_misses"]
    for start in (0, 1, 17, 31, 32):
        got = g.run(q=q, kc=kc, vc=vc, kn=kn, vn=vn, start=np.array(start, np.int64))["out"]
        want = attention_ref(q, np.concatenate([kc[:, :start], kn], 1),
                             np.concatenate([vc[:, :start], vn], 1), scale=0.3)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert (nef.stats()["kernel_cache_misses"], nef.stats()["plan_cache_misses"]) == compiled
    with pytest.raises(nef.NEFValidationError, match="cached_attention.*start 33"):
        g.run(q=q, kc=kc, vc=vc, kn=kn, vn=vn, start=np.array(33, np.int64))
    with pytest.raises(nef.NEFValidationError, match="start -1"):
        g.run(q=q, kc=kc, vc=vc, kn=kn, vn=vn, start=np.array(-1, np.int64))


def test_cached_attention_rejects_bad_shapes():
    z = np.zeros
    q = z((3, 2, 8), np.float32)
    ok = dict(kc=z((3, 5, 8), np.float32), vc=z((3, 5, 8), np.float32),
              kn=z((3, 2, 8), np.float32), vn=z((3, 2, 8), np.float32), start=np.array(1))
    for key, bad in [("kc", z((3, 5, 7), np.float32)), ("vc", z((3, 4, 8), np.float32)),
                     ("kn", z((3, 3, 8), np.float32)), ("kn", z((2, 2, 8), np.float32)),
                     ("start", np.array([1])), ("start", np.array(1.0))]:
        a = dict(ok)
        a[key] = bad
        with pytest.raises((nef.NEFShapeError, nef.NEFTypeError)) as e:
            nef.cached_attention(q, a["kc"], a["vc"], a["kn"], a["vn"], a["start"]).numpy()
        assert "[cached_attention]" in str(e.value)
