"""Indexing, sorting, scans, einsum, the inverse/hyperbolic trigonometric functions and the
bitwise ops against numpy (float64 references), with strided views, empty tensors and every
malformed input giving a structured error."""

import numpy as np
import pytest
from conftest import FLOATS, assert_close, cases, f64, random_array

import nef

INT_TYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]


def rng(seed):
    return np.random.default_rng(seed)


# ---- trigonometric and hyperbolic functions ----------------------------------------------------

TRIG = [("tan", np.tan, -1.5, 1.5), ("arcsin", np.arcsin, -1, 1), ("arccos", np.arccos, -1, 1),
        ("arctan", np.arctan, -20, 20), ("sinh", np.sinh, -8, 8), ("cosh", np.cosh, -8, 8),
        ("arcsinh", np.arcsinh, -50, 50), ("arccosh", np.arccosh, 1, 50),
        ("arctanh", np.arctanh, -0.999, 0.999)]


@pytest.mark.parametrize("name,ref,lo,hi,dtype,seed",
                         [(*t, d, s) for t in TRIG for (d, s) in
                          [(d, i) for i, d in enumerate(FLOATS)]])
def test_trig(name, ref, lo, hi, dtype, seed):
    x = random_array(rng(seed), (5, 33), dtype, lo, hi)
    got = getattr(nef, name)(nef.tensor(x))
    assert_close(got, ref(f64(x)), dtype, scale=4)
    # strided view (a transpose) and a fused chain
    assert_close(getattr(nef, name)(nef.tensor(x).T), ref(f64(x)).T, dtype, scale=4)
    assert_close(getattr(nef, name)(nef.tensor(x)) * 2 + 1, ref(f64(x)) * 2 + 1, dtype, scale=8)


def test_trig_edges():
    x = np.array([-2, -1, 0, 1, 2, np.inf, -np.inf, np.nan], np.float32)
    with np.errstate(all="ignore"):
        for name in ["arcsin", "arccos", "arctanh", "arccosh", "tan", "sinh", "cosh", "arcsinh",
                     "arctan"]:
            assert_close(getattr(nef, name)(nef.tensor(x)), getattr(np, name)(f64(x)), "float32")
    # integer inputs compute in float32, like exp
    assert nef.sinh(nef.tensor(np.arange(3, dtype=np.int32))).dtype == nef.float32
    assert nef.tan(nef.zeros((0, 3))).shape == (0, 3)


# ---- bitwise -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,seed", cases(INT_TYPES, prefix="bitwise"))
def test_bitwise(dtype, seed):
    info = np.iinfo(dtype)
    a = rng(seed).integers(info.min, info.max, (4, 9), dtype=dtype, endpoint=True)
    b = rng(seed + 1).integers(info.min, info.max, (9,), dtype=dtype, endpoint=True)
    ta, tb = nef.tensor(a), nef.tensor(b)
    for name in ["bitwise_and", "bitwise_or", "bitwise_xor"]:
        got = getattr(nef, name)(ta, tb)
        assert got.dtype == nef.as_dtype(dtype)
        np.testing.assert_array_equal(got.numpy(), getattr(np, name)(a, b))
    np.testing.assert_array_equal(nef.bitwise_not(ta.T).numpy(), np.invert(a.T))
    bits = np.iinfo(dtype).bits
    s = rng(seed + 2).integers(0, bits, (4, 9)).astype(dtype)
    np.testing.assert_array_equal(nef.left_shift(ta, nef.tensor(s)).numpy(), np.left_shift(a, s))
    np.testing.assert_array_equal(nef.right_shift(ta, nef.tensor(s)).numpy(),
                                  np.right_shift(a, s))


def test_shift_out_of_range_and_bool():
    a = np.array([5, -5, 1, -1], np.int32)
    big = np.array([32, 40, 33, 100], np.int32)
    np.testing.assert_array_equal(nef.left_shift(nef.tensor(a), nef.tensor(big)).numpy(), 0)
    np.testing.assert_array_equal(nef.right_shift(nef.tensor(a), nef.tensor(big)).numpy(),
                                  [0, -1, 0, -1])
    neg = np.array([-1, -1, -3, -3], np.int32)
    np.testing.assert_array_equal(nef.left_shift(nef.tensor(a), nef.tensor(neg)).numpy(), 0)
    u = np.array([255, 1], np.uint8)
    np.testing.assert_array_equal(
        nef.right_shift(nef.tensor(u), nef.tensor(np.array([8, 7], np.uint8))).numpy(), [0, 0])
    t, f = nef.tensor(np.array([True, False])), nef.tensor(np.array([True, True]))
    np.testing.assert_array_equal(nef.bitwise_and(t, f).numpy(), [True, False])
    np.testing.assert_array_equal(nef.bitwise_not(t).numpy(), [False, True])


def test_bitwise_errors():
    x = nef.tensor(np.ones(3, np.float32))
    i = nef.tensor(np.ones(3, np.int32))
    for fn in [nef.bitwise_and, nef.bitwise_or, nef.bitwise_xor, nef.left_shift]:
        with pytest.raises(nef.NEFTypeError, match=r"\[(bitwise_|left_)"):
            fn(x, i)
    with pytest.raises(nef.NEFTypeError, match="left_shift"):
        nef.left_shift(nef.tensor(np.array([True])), nef.tensor(np.array([True])))
    with pytest.raises(nef.NEFTypeError, match="bitwise_not"):
        nef.bitwise_not(x)
    with pytest.raises(nef.NEFShapeError):
        nef.bitwise_and(i, nef.tensor(np.ones(4, np.int32)))


# ---- take_along_axis / gather_nd / scatters ----------------------------------------------------

@pytest.mark.parametrize("dtype,axis,seed", cases(["float32", "int64", "float16", "bool", "int8",
                                                   "int16", "uint16", "uint32", "uint64"],
                                                  [0, 1, -1], prefix="tae"))
def test_take_along_axis(dtype, axis, seed):
    r = rng(seed)
    x = random_array(r, (5, 6, 7), dtype, -9, 9)
    shape = list(x.shape)
    shape[axis] = 4
    shape[(axis + 1) % 3] -= 2  # smaller than x off the axis
    idx = r.integers(-x.shape[axis], x.shape[axis], shape)
    got = nef.take_along_axis(nef.tensor(x), nef.tensor(idx), axis)
    np.testing.assert_array_equal(got.numpy(), np.take_along_axis(
        x[tuple(slice(0, s) if d != axis % 3 else slice(None) for d, s in enumerate(shape))],
        idx % x.shape[axis], axis))
    # strided input and int32 indices
    xt = np.ascontiguousarray(x.transpose(2, 1, 0))
    i32 = (idx % x.shape[axis]).astype(np.int32).transpose(2, 1, 0)
    ax = 2 - axis % 3
    sub = xt[tuple(slice(0, s) if d != ax else slice(None) for d, s in enumerate(i32.shape))]
    got = nef.take_along_axis(nef.tensor(x).transpose(2, 1, 0), nef.tensor(i32), ax)
    np.testing.assert_array_equal(got.numpy(), np.take_along_axis(sub, i32, ax))


def test_take_along_axis_errors():
    x = nef.zeros((3, 4))
    with pytest.raises(nef.NEFValidationError, match=r"\[gather_elements\] index 4 out of range"):
        nef.take_along_axis(x, nef.tensor(np.array([[4]])), 1).numpy()
    with pytest.raises(nef.NEFValidationError, match="out of range"):
        nef.take_along_axis(x, nef.tensor(np.array([[-5]])), 1).numpy()
    with pytest.raises(nef.NEFShapeError, match="rank of data"):
        nef.take_along_axis(x, nef.tensor(np.array([1])), 1)
    with pytest.raises(nef.NEFShapeError, match="exceed data on dim 0"):
        nef.take_along_axis(x, nef.tensor(np.zeros((4, 1), np.int64)), 1)
    with pytest.raises(nef.NEFTypeError, match="int32 or int64"):
        nef.take_along_axis(x, nef.tensor(np.zeros((1, 1), np.float32)), 1)
    with pytest.raises(nef.NEFShapeError):
        nef.take_along_axis(x, nef.tensor(np.zeros((1, 1), np.int64)), 2)
    empty = nef.take_along_axis(x, nef.tensor(np.zeros((3, 0), np.int64)), 1)
    assert empty.numpy().shape == (3, 0)


def gather_nd_ref(x, idx, b):
    """ONNX GatherND written out in float64."""
    bshape = idx.shape[:b]
    out = []
    for bi in np.ndindex(*bshape) if b else [()]:
        xi, ii = x[bi], idx[bi]
        for t in ii.reshape(-1, idx.shape[-1]):
            out.append(xi[tuple(t)])
    k = idx.shape[-1]
    return np.array(out).reshape(idx.shape[:-1] + x.shape[b + k:])


@pytest.mark.parametrize("case,seed", cases(
    [((4, 5, 6), (3, 2), 0), ((4, 5, 6), (2, 3, 3), 0), ((4, 5, 6), (4, 1), 1),
     ((4, 5, 6), (4, 7, 2), 1), ((2, 3, 4, 5), (2, 3, 1), 2), ((6,), (5, 1), 0)], prefix="gnd"))
def test_gather_nd(case, seed):
    xshape, ishape, b = case
    r = rng(seed)
    x = r.standard_normal(xshape).astype(np.float32)
    k = ishape[-1]
    idx = np.stack([r.integers(-xshape[b + j], xshape[b + j], ishape[:-1]) for j in range(k)], -1)
    got = nef.gather_nd(nef.tensor(x), nef.tensor(idx), b)
    want = gather_nd_ref(x, idx, b)
    np.testing.assert_array_equal(got.numpy(), want)
    # a strided data view
    xt = nef.tensor(np.ascontiguousarray(np.swapaxes(x, -1, -2))).transpose(
        *range(len(xshape) - 2), len(xshape) - 1, len(xshape) - 2) if len(xshape) > 1 else None
    if xt is not None:
        np.testing.assert_array_equal(nef.gather_nd(xt, nef.tensor(idx), b).numpy(), want)


def test_gather_nd_errors():
    x = nef.zeros((4, 5))
    with pytest.raises(nef.NEFShapeError, match=r"\[gather_nd\] the last dim of indices"):
        nef.gather_nd(x, nef.tensor(np.zeros((2, 3), np.int64)))
    with pytest.raises(nef.NEFValidationError, match="batch_dims"):
        nef.gather_nd(x, nef.tensor(np.zeros((4, 1), np.int64)), 2)
    with pytest.raises(nef.NEFShapeError, match="batch dim 0"):
        nef.gather_nd(x, nef.tensor(np.zeros((3, 1), np.int64)), 1)
    with pytest.raises(nef.NEFValidationError, match="index 5 out of range"):
        nef.gather_nd(x, nef.tensor(np.array([[0, 5]]))).numpy()


def scatter_ref(data, idx, upd, axis, reduction):
    out = data.astype(np.float64).copy()
    for pos in np.ndindex(*idx.shape):
        tgt = list(pos)
        tgt[axis] = idx[pos] % data.shape[axis]
        tgt = tuple(tgt)
        u = float(upd[pos])
        out[tgt] = {"none": u, "add": out[tgt] + u, "mul": out[tgt] * u,
                    "max": max(out[tgt], u), "min": min(out[tgt], u)}[reduction]
    return out


@pytest.mark.parametrize("reduction,axis,seed", cases(["none", "add", "mul", "max", "min"],
                                                      [0, 1, -1], prefix="scel"))
def test_scatter_elements(reduction, axis, seed):
    r = rng(seed)
    data = r.integers(-5, 5, (4, 5, 6)).astype(np.float32)
    shape = [3, 4, 5]
    shape[axis] = 7  # more updates than the axis: repeated indices
    idx = r.integers(-data.shape[axis], data.shape[axis], shape)
    upd = r.integers(-3, 4, shape).astype(np.float32)
    got = nef.scatter_elements(nef.tensor(data), nef.tensor(idx), nef.tensor(upd), axis, reduction)
    assert_close(got, scatter_ref(data, idx, upd, axis % 3, reduction), "float32")


def test_scatter_elements_ints_and_strides():
    data = np.arange(12, dtype=np.int32).reshape(3, 4)
    idx = np.array([[1, 0, 2, 2]])
    upd = np.array([[100, 200, 300, 400]], np.int32)
    got = nef.scatter_elements(nef.tensor(data).T.T, nef.tensor(idx), nef.tensor(upd), 0)
    want = data.copy()
    np.put_along_axis(want, idx, upd, 0)
    np.testing.assert_array_equal(got.numpy(), want)
    with pytest.raises(nef.NEFTypeError, match="updates must have data's dtype"):
        nef.scatter_elements(nef.tensor(data), nef.tensor(idx), nef.tensor(upd.astype(np.int64)))
    with pytest.raises(nef.NEFShapeError, match="updates must have the shape of indices"):
        nef.scatter_elements(nef.tensor(data), nef.tensor(idx), nef.tensor(upd[:, :2]))
    with pytest.raises(nef.NEFValidationError, match="reduction must be"):
        nef.scatter_elements(nef.tensor(data), nef.tensor(idx), nef.tensor(upd), 0, "sum")
    with pytest.raises(nef.NEFValidationError, match=r"\[scatter_elements\] index 3"):
        nef.scatter_elements(nef.tensor(data), nef.tensor(idx + 2), nef.tensor(upd)).numpy()
    b = nef.tensor(np.zeros((2, 2), bool))
    with pytest.raises(nef.NEFTypeError, match="not defined for bool"):
        nef.scatter_elements(b, nef.tensor(np.zeros((1, 1), np.int64)),
                             nef.tensor(np.ones((1, 1), bool)), 0, "add")


def scatter_nd_ref(data, idx, upd, reduction):
    out = data.astype(np.float64).copy()
    k = idx.shape[-1]
    u = upd.reshape((-1,) + data.shape[k:])
    for n, t in enumerate(idx.reshape(-1, k)):
        t = tuple(int(v) % data.shape[j] for j, v in enumerate(t))
        out[t] = {"none": u[n], "add": out[t] + u[n], "mul": out[t] * u[n],
                  "max": np.maximum(out[t], u[n]), "min": np.minimum(out[t], u[n])}[reduction]
    return out


@pytest.mark.parametrize("reduction,k,seed", cases(["none", "add", "mul", "max", "min"], [1, 2, 3],
                                                   prefix="scnd"))
def test_scatter_nd(reduction, k, seed):
    r = rng(seed)
    data = r.integers(-5, 5, (4, 3, 5)).astype(np.float64)
    idx = np.stack([r.integers(-data.shape[j], data.shape[j], (6,)) for j in range(k)], -1)
    upd = r.integers(-3, 4, (6,) + data.shape[k:]).astype(np.float64)
    got = nef.scatter_nd(nef.tensor(data), nef.tensor(idx), nef.tensor(upd), reduction)
    assert_close(got, scatter_nd_ref(data, idx, upd, reduction), "float64")


def test_scatter_nd_errors():
    data = nef.zeros((4, 3))
    with pytest.raises(nef.NEFShapeError, match=r"\[scatter_nd\] updates must have shape \(2, 3\)"):
        nef.scatter_nd(data, nef.tensor(np.zeros((2, 1), np.int64)), nef.zeros((2, 4)))
    with pytest.raises(nef.NEFShapeError, match="last dim of indices"):
        nef.scatter_nd(data, nef.tensor(np.zeros((2, 3), np.int64)), nef.zeros((2,)))
    with pytest.raises(nef.NEFValidationError, match="index 4 out of range"):
        nef.scatter_nd(data, nef.tensor(np.array([[4]])), nef.zeros((1, 3))).numpy()


# ---- topk ----------------------------------------------------------------------------------------

def topk_ref(x, k, axis, largest):
    """Stable sort on (value, index) with NaN above every number, as ONNX's reference."""
    x = np.moveaxis(f64(x), axis, -1)
    n = x.shape[-1]
    key = np.where(np.isnan(x), np.inf, x)
    nan = np.isnan(x)
    order = []
    for row, rn in zip(key.reshape(-1, n), nan.reshape(-1, n)):
        items = list(range(n))
        if largest:
            items.sort(key=lambda i: (-int(rn[i]), -row[i], i))
        else:
            items.sort(key=lambda i: (int(rn[i]), row[i], i))
        order.append(items[:k])
    idx = np.array(order, np.int64).reshape(x.shape[:-1] + (k,))
    vals = np.take_along_axis(x, idx, -1)
    return np.moveaxis(vals, -1, axis), np.moveaxis(idx, -1, axis)


@pytest.mark.parametrize("dtype,largest,axis,seed", cases(["float32", "float16", "int32", "uint8",
                                                           "float64", "int16", "uint16",
                                                           "uint32", "uint64"], [True, False],
                                                          [0, -1],
                                                          prefix="topk"))
def test_topk(dtype, largest, axis, seed):
    r = rng(seed)
    x = random_array(r, (6, 33), dtype, 0, 9)  # few distinct values: many ties
    for k in [0, 1, 5, x.shape[axis]]:
        v, i = nef.topk(nef.tensor(x), k, axis, largest)
        wv, wi = topk_ref(x, k, axis, largest)
        np.testing.assert_array_equal(i.numpy(), wi)
        assert v.dtype == nef.as_dtype(dtype)
        np.testing.assert_array_equal(f64(v.numpy()), wv)


def test_topk_nan_and_strides():
    x = np.array([[1, np.nan, 3, -np.inf, np.nan, 3]], np.float32)
    for largest in [True, False]:
        v, i = nef.topk(nef.tensor(x), 6, -1, largest)
        wv, wi = topk_ref(x, 6, -1, largest)
        np.testing.assert_array_equal(i.numpy(), wi)
    y = np.random.default_rng(3).standard_normal((7, 5)).astype(np.float32)
    v, i = nef.topk(nef.tensor(y).T, 3, 0)  # the axis is strided in the view
    wv, wi = topk_ref(y.T, 3, 0, True)
    np.testing.assert_array_equal(i.numpy(), wi)
    np.testing.assert_array_equal(v.numpy(), wv.astype(np.float32))


def test_topk_errors():
    with pytest.raises(nef.NEFShapeError, match=r"\[topk\] k = 4 must be in \[0, 3\]"):
        nef.topk(nef.zeros((2, 3)), 4)
    with pytest.raises(nef.NEFShapeError, match="k = -1"):
        nef.topk(nef.zeros((2, 3)), -1)
    with pytest.raises(nef.NEFTypeError, match="bool"):
        nef.topk(nef.tensor(np.array([True, False])), 1)
    with pytest.raises(nef.NEFShapeError, match="rank >= 1"):
        nef.topk(nef.scalar(1.0), 1)


# ---- cumsum / cumprod ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,axis,exclusive,reverse,seed", cases(
    ["float32", "float64", "int32", "int64", "float16", "int16", "uint16", "uint32", "uint64"],
    [0, 1, -1], [False, True], [False, True], prefix="cumsum"))
def test_cumsum_cumprod(dtype, axis, exclusive, reverse, seed):
    r = rng(seed)
    x = random_array(r, (4, 5, 3), dtype, -3, 3)
    for name, npfn, ident in [("cumsum", np.cumsum, 0), ("cumprod", np.cumprod, 1)]:
        xs = np.flip(x, axis) if reverse else x
        want = npfn(f64(xs), axis=axis)
        if exclusive:
            want = np.concatenate([np.full_like(np.take(want, [0], axis), ident),
                                   np.delete(want, -1, axis)], axis)
        if reverse:
            want = np.flip(want, axis)
        got = getattr(nef, name)(nef.tensor(x), axis, exclusive, reverse)
        assert_close(got, want, dtype, scale=20)


def test_cumsum_strided_wraps_and_errors():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert_close(nef.cumsum(nef.tensor(x).T, 0), np.cumsum(f64(x.T), 0), "float32")
    big = np.array([127, 1, 1], np.int8)  # int8 keeps its dtype and wraps
    np.testing.assert_array_equal(nef.cumsum(nef.tensor(big)).numpy(), [127, -128, -127])
    assert nef.cumsum(nef.zeros((0, 3)), 0).shape == (0, 3)
    with pytest.raises(nef.NEFTypeError, match=r"\[cumsum\] not supported for bool"):
        nef.cumsum(nef.tensor(np.array([True])))
    with pytest.raises(nef.NEFShapeError):
        nef.cumprod(nef.zeros((2, 2)), 2)


# ---- einsum ----------------------------------------------------------------------------------------

EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("bii->bi", [(3, 5, 5)]),
    ("...ii->...i", [(2, 3, 4, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("i,i", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 4), (2, 3, 6, 4)]),
    ("abc,cd,de->abe", [(2, 3, 4), (4, 5), (5, 2)]),
    ("ijk,ikl->j", [(2, 3, 4), (2, 4, 5)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 2)]),
    ("BbA,Aa->Bba", [(2, 3, 4), (4, 5)]),
    ("i...,i...->...", [(3, 4, 2), (3, 1, 2)]),
    ("ab,ab,ab->", [(2, 3), (2, 3), (2, 3)]),
    (" ij , jk -> ki ", [(2, 3), (3, 4)]),
    ("ij,jk->ik", [(0, 4), (4, 5)]),
]


@pytest.mark.parametrize("case,seed", cases(EINSUM, prefix="einsum"))
def test_einsum(case, seed):
    eq, shapes = case
    r = rng(seed)
    xs = [r.standard_normal(s).astype(np.float32) for s in shapes]
    got = nef.einsum(eq, *[nef.tensor(x) for x in xs])
    want = np.einsum(eq.replace(" ", ""), *[f64(x) for x in xs])
    assert_close(got, want, "float32", scale=10)


def test_einsum_ints_keep_dtype_and_errors():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    got = nef.einsum("ij->", nef.tensor(a))
    assert got.dtype == nef.int32 and got.numpy() == 15
    np.testing.assert_array_equal(nef.einsum("ij,kj->ik", nef.tensor(a), nef.tensor(a)).numpy(),
                                  a @ a.T)
    x = nef.zeros((2, 3))
    for eq, what in [("ij,jk", "2 input terms for 1 operands"), ("i$->i", "unexpected character"),
                     ("ij->k", "'k' is in no input term"), ("ij->ii", "appears twice"),
                     ("i......->i", "appears twice")]:
        with pytest.raises(nef.NEFValidationError, match=r"\[einsum\].*" + what):
            nef.einsum(eq, x)
    with pytest.raises(nef.NEFShapeError, match="has 3 labels"):
        nef.einsum("ijk", x)
    with pytest.raises(nef.NEFShapeError, match="label 'j' has size 3 and 2"):
        nef.einsum("ij,jk", x, nef.zeros((2, 2)))
    with pytest.raises(nef.NEFShapeError, match="do not broadcast"):
        nef.einsum("...i,...i", nef.zeros((2, 3)), nef.zeros((4, 3)))
