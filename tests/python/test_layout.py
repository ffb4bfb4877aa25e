"""Layout ops and indexing against numpy."""

import numpy as np
import pytest
from conftest import ALL, cases, f64, random_array

import nef


def _x(seed, shape=(4, 7, 37), dtype="float32"):
    return random_array(np.random.default_rng(seed), shape, dtype, -50, 50)


def _eq(t, ref):
    assert isinstance(t, nef.Tensor)
    assert t.shape == ref.shape, f"shape {t.shape} vs {ref.shape}"
    np.testing.assert_array_equal(f64(t.numpy()), f64(ref))


@pytest.mark.parametrize("dtype,seed", cases(ALL, prefix="layout"))
def test_layout_ops_all_dtypes(dtype, seed):
    x = _x(seed, (4, 7, 37), dtype) if not dtype.startswith("uint") else \
        random_array(np.random.default_rng(seed), (4, 7, 37), dtype, 0, 50)
    t = nef.tensor(x)
    _eq(nef.reshape(t, (28, 37)), x.reshape(28, 37))
    _eq(t.reshape(-1, 37), x.reshape(-1, 37))
    _eq(t.reshape(4 * 7 * 37), x.reshape(-1))
    _eq(nef.transpose(t), x.T)
    _eq(t.transpose(2, 0, 1), x.transpose(2, 0, 1))
    _eq(nef.permute(t, (1, 2, 0)), x.transpose(1, 2, 0))
    _eq(t.T, x.T)
    _eq(t.transpose(2, 0, 1).reshape(37, 28), x.transpose(2, 0, 1).reshape(37, 28))
    _eq(nef.concat([t, t[:2]], axis=0), np.concatenate([x, x[:2]], 0))
    _eq(nef.concat([t, t], axis=-1), np.concatenate([x, x], -1))
    # Stride-2 slices (a Focus layer's space-to-depth): odd and even lengths, every dtype.
    _eq(nef.concat([t[:, ::2, 0:36:2], t[:, 1::2, 1:37:2]], axis=1),
        np.concatenate([x[:, ::2, 0:36:2], x[:, 1::2, 1:37:2]], 1))
    _eq(nef.concat([t[..., ::2], t[..., 1::2], t[:, :, 3::2]], axis=-1),
        np.concatenate([x[..., ::2], x[..., 1::2], x[:, :, 3::2]], -1))
    _eq(nef.broadcast_to(t[:, :1], (2, 4, 5, 37)), np.broadcast_to(x[:, :1], (2, 4, 5, 37)))
    _eq(nef.expand_dims(t, 0), x[None])
    _eq(nef.expand_dims(t, (0, 4)), np.expand_dims(x, (0, 4)))
    _eq(nef.squeeze(t[:, :1]), x[:, :1].squeeze())
    _eq(nef.squeeze(t[:1, :1], axis=1), x[:1, :1].squeeze(1))
    _eq(nef.stack([t, t], axis=1), np.stack([x, x], 1))


@pytest.mark.parametrize("shape,sections,axis,seed",
                         cases([(12, 5)], [3, [2, 7], [0, 5, 20], [-3], [4, 2]], [0],
                               prefix="split") + cases([(3, 129)], [1, 3, [64]], [1, -1],
                                                       prefix="split"))
def test_split(shape, sections, axis, seed):
    x = _x(seed, shape)
    parts = nef.split(nef.tensor(x), sections, axis)
    ref = np.split(x, sections, axis)
    assert len(parts) == len(ref)
    for p, r in zip(parts, ref):
        _eq(p, r)


def test_split_unequal_raises():
    with pytest.raises(nef.NEFShapeError):
        nef.split(nef.zeros((7,)), 2)


@pytest.mark.parametrize("idx_dtype,axis,seed", cases(["int32", "int64"], [0, 1, -1, 2],
                                                      prefix="gather"))
def test_gather_take(idx_dtype, axis, seed):
    rng = np.random.default_rng(seed)
    x = _x(seed)
    n = x.shape[axis]
    idx = rng.integers(-n, n, size=(3, 5)).astype(idx_dtype)
    _eq(nef.gather(nef.tensor(x), nef.tensor(idx), axis), np.take(x, idx, axis))
    _eq(nef.take(nef.tensor(x), nef.tensor(idx[0]), axis), np.take(x, idx[0], axis))
    flat = rng.integers(0, x.size, size=(9,))
    _eq(nef.take(nef.tensor(x), nef.tensor(flat)), np.take(x, flat))


def test_gather_out_of_range_raises_at_run_time():
    g = nef.gather(nef.tensor([1.0, 2.0]), nef.tensor([0, 5]))
    with pytest.raises(nef.NEFValidationError):
        g.numpy()


def test_layout_errors():
    t = nef.zeros((2, 3))
    with pytest.raises(nef.NEFShapeError, match=r"\[reshape\]"):
        t.reshape(4, 2)
    with pytest.raises(nef.NEFShapeError):
        nef.broadcast_to(t, (3, 3))
    with pytest.raises(nef.NEFShapeError):
        nef.squeeze(t, 0)
    with pytest.raises(nef.NEFShapeError):
        nef.concat([t, nef.zeros((2, 4))], axis=0)
    with pytest.raises((nef.NEFShapeError, nef.NEFValidationError)):
        t.transpose(0, 0)


# ---- indexing -------------------------------------------------------------------------------

INDEX_EXPRS = [
    "[0]", "[-1]", "[3]", "[1, 2]", "[1, 2, 3]", "[-4, -7, -37]", "[:]", "[...]", "[1:3]",
    "[::2]", "[::-1]", "[1:-1:3]", "[-2:]", "[:, 2]", "[:, ::-2, 5:0:-2]", "[..., 0]",
    "[..., ::-3]", "[None]", "[:, None, 1]", "[None, ..., None]", "[2, ..., None, 4]",
    "[10:20]", "[3:1]", "[:, :, 36:]", "[0, 0, ::-1]", "[1:2, 3:4, 5:6]", "[-100:100]",
    "[:, -1:-8:-1]", "[0][1][2]", "[1:][::-1][0]", "[:, [0, 2, 6]]", "[[3, 0]]",
    "[..., [-1, 0]]", "[1, [0, 2], :]", "[:, [1, 2], 0]", "[[1, 2], :, 0]",
]


@pytest.mark.parametrize("expr,seed", cases(INDEX_EXPRS, prefix="idx"))
def test_indexing(expr, seed):
    x = _x(seed)
    t = nef.tensor(x)
    got = eval("t" + expr)
    ref = eval("x" + expr)
    _eq(got, np.asarray(ref))


def test_indexing_builds_nodes_not_copies():
    t = nef.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert t[1].op == "squeeze"
    assert t[:, ::2].op == "slice"
    assert t[None].op == "expand_dims"
    assert not t[1].is_materialized


def test_indexing_errors():
    t = nef.zeros((2, 3))
    with pytest.raises(IndexError):
        t[2]
    with pytest.raises(IndexError):
        t[0, -4]
    with pytest.raises(IndexError):
        t[0, 0, 0]
    with pytest.raises(IndexError):
        t[..., ...]
    with pytest.raises(IndexError):
        t["a"]
    with pytest.raises(IndexError):
        t[0.5]
    with pytest.raises(TypeError):
        t[0] = 1.0


def test_index_rank0_and_zero_size():
    s = nef.tensor(3.5)
    _eq(s[...], np.asarray(np.float32(3.5)))
    _eq(s[None], np.array([3.5], np.float32))
    z = nef.zeros((2, 0, 5))
    _eq(z[1], np.zeros((0, 5), np.float32))
    _eq(z[:, :, 1:3], np.zeros((2, 0, 2), np.float32))
    with pytest.raises(IndexError):
        z[:, 0]


def test_iteration_and_len():
    x = np.arange(6, dtype=np.int64).reshape(3, 2)
    t = nef.tensor(x)
    assert len(t) == 3
    rows = [r.tolist() for r in t]
    assert rows == x.tolist()
    with pytest.raises(TypeError):
        len(nef.tensor(1.0))
