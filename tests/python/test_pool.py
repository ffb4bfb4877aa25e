"""max_pool and avg_pool against a float64 numpy reference written here (every window gathered
with index arrays and masked), and against onnx's ReferenceEvaluator where its pooling code is
known to follow the ONNX rules (see _onnx_agrees)."""

import numpy as np
import pytest
from conftest import FLOATS, INTS, assert_close, cases, f64, random_array

import nef

onnx = pytest.importorskip("onnx")
from onnx import helper as oh  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402


def _out_len(n, k, s, pb, pe, d, ceil_mode):
    span = n + pb + pe - d * (k - 1) - 1
    o = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= n + pb:
        o -= 1
    return o


def ref_pool(x, kind, kernel, strides, pads, dilations, ceil_mode=False, count_include_pad=False):
    """float64 pooling of x [N, C, *sp]: windows gathered per dim, masked by the input bounds."""
    x = f64(x)
    nsp = x.ndim - 2
    pos, inside, padded, outs = [], [], [], []
    for i in range(nsp):
        n, k, s, d = x.shape[2 + i], kernel[i], strides[i], dilations[i]
        pb, pe = pads[i], pads[nsp + i]
        o = _out_len(n, k, s, pb, pe, d, ceil_mode)
        p = np.arange(o)[:, None] * s - pb + np.arange(k)[None, :] * d  # [o, k]
        pos.append(np.clip(p, 0, n - 1))
        inside.append((p >= 0) & (p < n))
        padded.append(p < n + pe)
        outs.append(o)
    # Broadcast to [N, C, o0, k0, o1, k1, ...].
    mask = np.ones([1, 1] + [v for o, k in zip(outs, kernel) for v in (o, k)], bool)
    cnt = np.ones_like(mask, dtype=np.float64)
    gather = []
    for i in range(nsp):
        shape = [1] * (2 * nsp)
        shape[2 * i], shape[2 * i + 1] = outs[i], kernel[i]
        gather.append(pos[i].reshape(shape))
        mask = mask & inside[i].reshape([1, 1] + shape)
        cnt = cnt * (padded[i] if count_include_pad else inside[i]).reshape([1, 1] + shape)
    vals = x[(slice(None), slice(None)) + tuple(gather)]
    kaxes = tuple(3 + 2 * i for i in range(nsp))
    if kind == "max":
        return np.where(mask, vals, -np.inf).max(axis=kaxes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mask, vals, 0).sum(axis=kaxes) / cnt.sum(axis=kaxes)


# (shape, kernel, strides, pads, dilations, ceil_mode)
GEOMS = [
    ((2, 3, 13), [3], [1], [0, 0], [1], False),
    ((1, 2, 12), [4], [3], [1, 2], [1], True),
    ((2, 1, 11), [2], [2], [0, 1], [3], True),
    ((1, 3, 9, 8), [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], False),
    ((2, 2, 10, 7), [2, 3], [2, 1], [0, 1, 1, 0], [1, 2], True),
    ((1, 2, 7, 9), [3, 2], [3, 2], [1, 0, 2, 1], [2, 1], True),
    ((1, 1, 5, 5), [5, 5], [1, 1], [2, 2, 2, 2], [1, 1], False),
    ((1, 2, 5, 6, 7), [2, 3, 2], [2, 1, 3], [1, 0, 1, 0, 1, 1], [1, 2, 1], False),
    ((2, 1, 6, 5, 4), [3, 2, 2], [2, 2, 2], [1, 1, 0, 1, 1, 1], [1, 1, 1], True),
    ((2, 2, 5), [2], [2], [0, 3], [1], True),  # ceil_mode drops a window of end padding
    ((1, 2, 5, 6), [2, 3], [2, 3], [0, 1, 3, 2], [1, 1], True),
    ((1, 1, 1, 1), [1, 1], [1, 1], [0, 0, 0, 0], [1, 1], False),
    ((0, 3, 4, 4), [2, 2], [2, 2], [0, 0, 0, 0], [1, 1], False),
]


def _ids(g):
    return f"{g[0]}k{g[1]}s{g[2]}p{g[3]}d{g[4]}{'c' if g[5] else ''}".replace(" ", "")


@pytest.mark.parametrize("dtype,geom,seed", cases(FLOATS + INTS, GEOMS, prefix="maxpool"))
def test_max_pool(dtype, geom, seed):
    shape, k, s, p, d, ceil_mode = geom
    x = random_array(np.random.default_rng(seed), shape, dtype, -50, 50)
    out = nef.max_pool(nef.tensor(x), k, strides=s, pads=p, dilations=d, ceil_mode=ceil_mode)
    ref = ref_pool(x, "max", k, s, p, d, ceil_mode)
    assert str(out.dtype) == dtype
    # Max picks an element: exact in every dtype.
    np.testing.assert_array_equal(f64(out.numpy()), ref)


# Windows of more than four taps in 1-D and 2-D run separably (column maxima per input row, then
# the rows'): SPP's stride-1 "same" windows, dilations, strides, ceil_mode, windows reaching past
# the image on every side, odd widths.
SEPARABLE_GEOMS = [
    ((1, 3, 13, 13), [13, 13], [1, 1], [6, 6, 6, 6], [1, 1], False),
    ((2, 2, 13, 11), [9, 9], [1, 1], [4, 4, 4, 4], [1, 1], False),
    ((1, 2, 19, 23), [5, 5], [1, 1], [2, 2, 2, 2], [1, 1], False),
    ((1, 2, 17, 21), [3, 5], [2, 3], [1, 2, 0, 1], [2, 1], True),
    ((1, 1, 6, 7), [7, 7], [1, 1], [6, 6, 6, 6], [1, 1], False),
    ((2, 3, 37), [7], [1], [3, 3], [1], False),
    ((1, 2, 29), [5], [2], [1, 4], [2], True),
]


@pytest.mark.parametrize("dtype,geom,seed",
                         cases(FLOATS + INTS, SEPARABLE_GEOMS, prefix="maxpool_sep"))
def test_max_pool_separable_windows(dtype, geom, seed):
    shape, k, s, p, d, ceil_mode = geom
    x = random_array(np.random.default_rng(seed), shape, dtype, -50, 50)
    out = nef.max_pool(nef.tensor(x), k, strides=s, pads=p, dilations=d, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(f64(out.numpy()), ref_pool(x, "max", k, s, p, d, ceil_mode))


def test_max_pool_separable_nan_plane_and_strided_input():
    """A NaN poisons exactly the windows that hold it (that plane takes the per-tap loop, the
    others the separable one), and a transposed input is read through its strides."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 13, 13)).astype(np.float32)
    x[1, 2, 4, 9] = np.nan
    args = dict(strides=[1, 1], pads=[2, 2, 2, 2])
    got = nef.max_pool(nef.tensor(x), [5, 5], **args).numpy()
    want = ref_pool(np.nan_to_num(x, nan=-np.inf), "max", [5, 5], [1, 1], [2] * 4, [1, 1])
    want[1, 2, 2:7, 7:12] = np.nan
    np.testing.assert_array_equal(got, want.astype(np.float32))
    t = nef.transpose(nef.tensor(x[:1, :2].transpose(0, 1, 3, 2).copy()), (0, 1, 3, 2))
    np.testing.assert_array_equal(nef.max_pool(t, [5, 5], **args).numpy(), want[:1, :2])


@pytest.mark.parametrize("dtype,geom,seed", cases(FLOATS, GEOMS, prefix="avgpool"))
def test_avg_pool(dtype, geom, seed):
    shape, k, s, p, d, ceil_mode = geom
    x = random_array(np.random.default_rng(seed), shape, dtype)
    for include in (False, True):
        out = nef.avg_pool(nef.tensor(x), k, strides=s, pads=p, dilations=d, ceil_mode=ceil_mode,
                           count_include_pad=include)
        assert_close(out, ref_pool(x, "avg", k, s, p, d, ceil_mode, include), dtype, scale=2)


def test_pool_argument_forms_and_strided_input():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 8, 9)).astype(np.float32)
    a = nef.max_pool(nef.tensor(x), 3, strides=2, pads=1)
    b = nef.max_pool(nef.tensor(x), [3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c = nef.max_pool(nef.tensor(x), (3, 3), strides=2, pads=(1, 1))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(a.numpy(), c.numpy())
    np.testing.assert_array_equal(a.numpy(), ref_pool(x, "max", [3, 3], [2, 2], [1] * 4, [1, 1]))
    # A transposed (strided) input as produced inside a graph.
    t = nef.transpose(nef.tensor(x.transpose(0, 1, 3, 2).copy()), (0, 1, 3, 2))
    assert_close(nef.avg_pool(t, [2, 3], strides=[1, 2]),
                 ref_pool(x, "avg", [2, 3], [1, 2], [0] * 4, [1, 1]), "float32")


def test_pool_nan_and_all_padding_windows():
    x = np.array([[[1.0, np.nan, 2.0, 3.0]]], np.float32)
    m = nef.max_pool(nef.tensor(x), 2).numpy()
    assert np.isnan(m[0, 0, :2]).all() and m[0, 0, 2] == 3
    # A window made of padding only: max -inf, avg (nothing counted) NaN, or 0 when counted.
    y = np.array([[[4.0]]], np.float32)
    assert nef.max_pool(nef.tensor(y), 1, pads=[2, 0]).numpy().ravel().tolist() == [
        -np.inf, -np.inf, 4.0]
    avg = nef.avg_pool(nef.tensor(y), 1, pads=[1, 0]).numpy().ravel()
    assert np.isnan(avg[0]) and avg[1] == 4
    assert nef.avg_pool(nef.tensor(y), 1, pads=[1, 0], count_include_pad=True).numpy().ravel(
    ).tolist() == [0.0, 4.0]


def test_pool_errors():
    x = nef.zeros((1, 2, 5, 5))
    with pytest.raises(nef.NEFShapeError, match=r"\[max_pool\].*\(1, 2\)"):
        nef.max_pool(nef.zeros((1, 2)), 2)
    with pytest.raises(nef.NEFShapeError, match=r"\[avg_pool\]"):
        nef.avg_pool(nef.zeros((1, 1, 2, 2, 2, 2)), 1)
    with pytest.raises(nef.NEFShapeError, match=r"\[max_pool\] window 7"):
        nef.max_pool(x, 4, dilations=2)
    with pytest.raises(nef.NEFTypeError):
        nef.avg_pool(nef.zeros((1, 1, 4), dtype=nef.int32), 2)
    with pytest.raises(nef.NEFTypeError):
        nef.max_pool(nef.zeros((1, 1, 4), dtype=nef.bool_), 2)
    with pytest.raises(nef.NEFValidationError, match="kernel"):
        nef.max_pool(x, [2, 2, 2])
    with pytest.raises(nef.NEFValidationError, match="strides"):
        nef.max_pool(x, 2, strides=0)
    with pytest.raises(nef.NEFValidationError, match="pads"):
        nef.max_pool(x, 2, pads=[-1, 0, 0, 0])
    with pytest.raises(nef.NEFValidationError, match="pads"):
        nef.max_pool(x, 2, pads=[1, 1, 1])
    with pytest.raises(nef.NEFValidationError, match="dilations"):
        nef.max_pool(x, 2, dilations=[1, 0])


# --- onnx.reference -----------------------------------------------------------------------

def _onnx_pool(op, x, **attrs):
    node = oh.make_node(op, ["x"], ["y"], **attrs)
    tp = oh.np_dtype_to_tensor_dtype(x.dtype)
    graph = oh.make_graph([node], "g", [oh.make_tensor_value_info("x", tp, None)],
                          [oh.make_tensor_value_info("y", tp, None)])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 22)])
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


def _onnx_agrees(op, geom):
    """Where onnx.reference's pooling code follows the ONNX rules: MaxPool only on its explicit
    loop path (a stride or dilation != 1; the other path pads 2-D only) and without windows of
    padding only (left 0 there); AveragePool unless ceil_mode overhangs by 2 or more (it then
    shifts the windows by half the overhang) or drops a window (it then indexes past its
    output)."""
    shape, k, s, p, d, ceil_mode = geom
    nsp = len(shape) - 2
    for i in range(nsp):
        n, pb, pe = shape[2 + i], p[i], p[nsp + i]
        o = _out_len(n, k[i], s[i], pb, pe, d[i], ceil_mode)
        pos = np.arange(o)[:, None] * s[i] - pb + np.arange(k[i])[None, :] * d[i]
        if op == "MaxPool" and not ((pos >= 0) & (pos < n)).any(axis=1).all():
            return False
        overhang = (o - 1) * s[i] + (k[i] - 1) * d[i] + 1 - (n + pb + pe)
        window = (k[i] - 1) * d[i] + 1
        if op == "AveragePool" and (overhang >= 2 or (n + pb + pe - window) // s[i] + 1 > o):
            return False
    if op == "MaxPool" and set(s) == {1} and set(d) == {1}:
        return False
    return shape[0] > 0


@pytest.mark.parametrize("geom", [g for g in GEOMS if _onnx_agrees("MaxPool", g)], ids=_ids)
def test_max_pool_matches_onnx_reference(geom):
    shape, k, s, p, d, ceil_mode = geom
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    want = _onnx_pool("MaxPool", x, kernel_shape=k, strides=s, pads=p, dilations=d,
                      ceil_mode=int(ceil_mode))
    got = nef.max_pool(nef.tensor(x), k, strides=s, pads=p, dilations=d, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("geom", [g for g in GEOMS if _onnx_agrees("AveragePool", g)], ids=_ids)
@pytest.mark.parametrize("include", [0, 1])
def test_avg_pool_matches_onnx_reference(geom, include):
    shape, k, s, p, d, ceil_mode = geom
    x = np.random.default_rng(2).standard_normal(shape)
    want = _onnx_pool("AveragePool", x, kernel_shape=k, strides=s, pads=p, dilations=d,
                      ceil_mode=int(ceil_mode), count_include_pad=include)
    got = nef.avg_pool(nef.tensor(x), k, strides=s, pads=p, dilations=d, ceil_mode=ceil_mode,
                       count_include_pad=bool(include))
    assert_close(got, want, "float64")



def test_large_inputs_split_across_threads(tmp_path):
    """Big enough that the kernels split work; also a .nef build/load round trip."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 8, 67, 61)).astype(np.float32)
    np.testing.assert_array_equal(
        nef.max_pool(nef.tensor(x), 3, strides=2, pads=1, ceil_mode=True).numpy(),
        ref_pool(x, "max", [3, 3], [2, 2], [1] * 4, [1, 1], True))
    assert_close(nef.avg_pool(nef.tensor(x), [2, 5], strides=[1, 2], pads=[1, 2, 0, 2],
                              dilations=[2, 1], count_include_pad=True),
                 ref_pool(x, "avg", [2, 5], [1, 2], [1, 2, 0, 2], [2, 1], False, True), "float32")
    p = nef.placeholder("x", x.shape, nef.float32)
    path = tmp_path / "pool.nef"
    nef.build(path, {"y": nef.avg_pool(nef.max_pool(p, 2, strides=2), 3, pads=1)})
    got = nef.load(path).run({"x": x})["y"]
    want = ref_pool(ref_pool(x, "max", [2, 2], [2, 2], [0] * 4, [1, 1]), "avg", [3, 3], [1, 1],
                    [1] * 4, [1, 1])
    assert_close(got, want, "float32")
