"""pad and resize against float64 references written here (pad: crop then np.pad; resize: one
1-D interpolation per axis from the ONNX formulas) and against onnx's ReferenceEvaluator, the
code the ONNX conformance data was generated with."""

import math

import numpy as np
import pytest
from conftest import FLOATS, INTS, assert_close, cases, f64, random_array

import nef

onnx = pytest.importorskip("onnx")
from onnx import helper as oh  # noqa: E402
from onnx import numpy_helper as onh  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402


def _onnx_run(op, inputs, **attrs):
    """One ONNX node over named numpy inputs (None = an omitted optional input)."""
    names = [n if v is not None else "" for n, v in inputs]
    node = oh.make_node(op, names, ["y"], **attrs)
    inits = [onh.from_array(v, n) for n, v in inputs[1:] if v is not None]
    x = inputs[0][1]
    tp = oh.np_dtype_to_tensor_dtype(x.dtype)
    graph = oh.make_graph([node], "g", [oh.make_tensor_value_info(inputs[0][0], tp, None)],
                          [oh.make_tensor_value_info("y", tp, None)], initializer=inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 22)])
    return ReferenceEvaluator(model).run(None, {inputs[0][0]: x})[0]


# --- pad ----------------------------------------------------------------------------------

def ref_pad(x, pads, mode, value=0.0):
    """Negative pads crop first, then np.pad extends what is left."""
    r = x.ndim
    crop = tuple(slice(max(-pads[i], 0), x.shape[i] - max(-pads[r + i], 0)) for i in range(r))
    widths = [(max(pads[i], 0), max(pads[r + i], 0)) for i in range(r)]
    kept = x[crop]
    if r == 0:
        return kept.copy()
    if mode == "constant":
        return np.pad(kept, widths, mode="constant", constant_values=value)
    return np.pad(kept, widths, mode=mode)


PAD_CASES = [
    ((7,), [2, 3]),
    ((7,), [-2, 3]),
    ((7,), [3, -1]),
    ((5, 6), [1, 0, 2, 4]),
    ((5, 6), [-1, 2, 3, -2]),
    ((3, 4, 5), [0, 2, 1, 2, 0, 3]),
    ((3, 4, 5), [1, -1, -2, -1, 2, 0]),
    ((2, 1, 3, 4), [0, 0, 1, 3, 1, 0, 2, 2]),
    ((4, 0), [1, 0, 2, 0]),  # the zero-size dim is not padded
    ((), []),
]
MODES = ["constant", "reflect", "edge", "wrap"]


def _pad_ok(shape, pads, mode):
    r = len(shape)
    for i in range(r):
        kept = shape[i] - max(-pads[i], 0) - max(-pads[r + i], 0)
        grow = max(pads[i], 0) + max(pads[r + i], 0)
        if mode != "constant" and grow and kept == 0:
            return False
        if mode == "reflect" and grow and (pads[i] >= kept or pads[r + i] >= kept):
            return False
    return True


@pytest.mark.parametrize("mode,case,seed", cases(MODES, PAD_CASES, prefix="pad"))
def test_pad_modes(mode, case, seed):
    shape, pads = case
    if not _pad_ok(shape, pads, mode):
        with pytest.raises(nef.NEFValidationError, match=r"\[pad\]"):
            nef.pad(nef.zeros(shape), pads, mode=mode)
        return
    rng = np.random.default_rng(seed)
    for dtype in ["float32", "bfloat16", "int8", "int64", "bool"]:
        x = random_array(rng, shape, dtype)
        out = nef.pad(nef.tensor(x), pads, mode=mode, value=2)
        want = ref_pad(x, pads, mode, np.array(2).astype(x.dtype))
        assert str(out.dtype) == dtype and out.shape == want.shape
        np.testing.assert_array_equal(out.numpy(), want)


@pytest.mark.parametrize("mode", MODES)
def test_pad_matches_onnx_reference(mode):
    x = np.random.default_rng(4).standard_normal((3, 4, 5)).astype(np.float32)
    pads = [1, 0, 2, 2, 3, 1]
    want = _onnx_run("Pad", [("x", x), ("pads", np.array(pads, np.int64)),
                             ("value", np.array(1.5, np.float32))], mode=mode)
    np.testing.assert_array_equal(nef.pad(nef.tensor(x), pads, mode=mode, value=1.5).numpy(), want)


def test_pad_value_cast_pairs_and_strided_input():
    x = np.arange(6, dtype=np.uint8).reshape(2, 3)
    out = nef.pad(nef.tensor(x), [(1, 0), (0, 2)], value=300.7)  # numpy-style pairs
    np.testing.assert_array_equal(out.numpy(), np.pad(x, [(1, 0), (0, 2)], constant_values=255))
    nan_pad = nef.pad(nef.tensor(np.ones(2, np.int32)), [1, 1], value=float("nan"))
    assert nan_pad.numpy().tolist() == [0, 1, 1, 0]
    f = np.random.default_rng(1).standard_normal((4, 5))
    t = nef.transpose(nef.tensor(f.T.copy()))  # a strided view inside the graph
    np.testing.assert_array_equal(nef.pad(t, [1, -1, 2, 1], mode="reflect").numpy(),
                                  ref_pad(f, [1, -1, 2, 1], "reflect"))


def test_pad_errors():
    x = nef.zeros((2, 3))
    with pytest.raises(nef.NEFValidationError, match=r"\[pad\] pads .* \(2, 3\)"):
        nef.pad(x, [1, 1])
    with pytest.raises(nef.NEFValidationError, match="mode"):
        nef.pad(x, [0, 0, 0, 0], mode="symmetric")
    with pytest.raises(nef.NEFValidationError, match=r"reflect.*\(2, 3\)"):
        nef.pad(x, [2, 0, 0, 0], mode="reflect")
    with pytest.raises(nef.NEFValidationError, match="size 0"):
        nef.pad(nef.zeros((0, 3)), [1, 0, 0, 0], mode="wrap")
    with pytest.raises(nef.NEFShapeError, match=r"\[pad\]"):
        nef.pad(x, [-2, 0, -1, 0])
    with pytest.raises(nef.NEFShapeError, match=r"\[pad\]"):
        nef.pad(x, [-3, 2, 0, 0])


# --- resize -------------------------------------------------------------------------------

def _keys(s, a):
    s = abs(s)
    if s <= 1:
        return (a + 2) * s ** 3 - (a + 3) * s ** 2 + 1
    if s < 2:
        return a * s ** 3 - 5 * a * s ** 2 + 8 * a * s - 4 * a
    return 0.0


def _source(ctm, y, scale, n_in, n_out, r0, r1):
    ow = scale * n_in
    if ctm == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if ctm == "pytorch_half_pixel":  # onnx.reference: -0.5 for a 1-long output
        return (y + 0.5) / scale - 0.5 if ow != 1 else -0.5
    if ctm == "align_corners":
        return 0.0 if ow == 1 else y * (n_in - 1) / (ow - 1)
    if ctm == "asymmetric":
        return y / scale
    if ctm == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / ow)
        return offset + (y + 0.5) / scale - 0.5
    assert ctm == "tf_crop_and_resize"
    # The spec's operation order: ties of nearest rounding depend on it.
    if ow == 1:
        return r0 * (n_in - 1) + (r1 - r0) * (n_in - 1) / 2
    return r0 * (n_in - 1) + y * (r1 - r0) * (n_in - 1) / (ow - 1)


def _taps(x, mode, nearest_mode, a):
    """Input indices and weights around source coordinate x."""
    if mode == "nearest":
        i = {"round_prefer_floor": math.ceil(x - 0.5), "round_prefer_ceil": math.floor(x + 0.5),
             "floor": math.floor(x), "ceil": math.ceil(x)}[nearest_mode]
        return [i], [1.0]
    i0 = math.floor(x)
    t = x - i0
    if mode == "linear":
        return [i0, i0 + 1], [1 - t, t]
    return [i0 - 1, i0, i0 + 1, i0 + 2], [_keys(1 + t, a), _keys(t, a), _keys(1 - t, a),
                                          _keys(2 - t, a)]


def ref_resize(x, sizes, scales=None, mode="nearest", ctm="half_pixel",
               nearest_mode="round_prefer_floor", a=-0.75, exclude=False, ev=0.0, roi=None):
    v = f64(x)
    r = v.ndim
    for axis in range(r):
        n_in, n_out = v.shape[axis], sizes[axis]
        scale = scales[axis] if scales is not None else n_out / n_in
        r0, r1 = (roi[axis], roi[r + axis]) if roi else (0.0, 1.0)
        if (math.isclose(scale, 1) and n_in == n_out
                and (ctm != "tf_crop_and_resize" or (r0 == 0 and math.isclose(r1, 1)))):
            continue
        src = np.moveaxis(v, axis, -1)
        res = np.empty(src.shape[:-1] + (n_out,))
        for y in range(n_out):
            xs = _source(ctm, y, scale, n_in, n_out, r0, r1)
            if ctm == "tf_crop_and_resize" and (xs < 0 or xs > n_in - 1):
                res[..., y] = ev
                continue
            idx, w = _taps(xs, mode, nearest_mode, a)
            w = np.array(w)
            if exclude:
                w = np.where([0 <= i < n_in for i in idx], w, 0.0)
                if w.sum() != 0:
                    w = w / w.sum()
            idx = np.clip(idx, 0, n_in - 1)
            res[..., y] = (src[..., idx] * w).sum(axis=-1)
        v = np.moveaxis(res, -1, axis)
    return v


# (shape, sizes, scales or None, roi for tf_crop_and_resize)
RESIZE_CASES = [
    ((2, 3, 5, 7), (2, 3, 9, 4), None, [0, 0, 0.2, -0.1, 1, 1, 0.9, 1.2]),
    ((1, 2, 6, 4), (1, 2, 10, 7), [1, 1, 1.75, 1.75], [0, 0, -0.3, 0.1, 1, 1, 0.8, 0.75]),
    ((1, 2, 7, 8), (1, 2, 4, 3), [1, 1, 0.625, 0.4375], [0, 0, 0.1, 0.0, 1, 1, 1.0, 0.6]),
    ((9,), (13,), None, [0.3, 1.1]),
    ((2, 4, 3, 5), (2, 5, 6, 2), None, [0, 0.1, -0.2, 0.3, 1, 0.9, 1.0, 0.7]),
    ((3, 1, 4), (3, 1, 1), None, [0, 0, 0.25, 1, 1, 0.5]),
]
CTMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize",
        "half_pixel_symmetric"]
# (mode, nearest_mode, cubic_coeff_a, exclude_outside)
KINDS = [("nearest", nm, -0.75, False)
         for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]]
KINDS += [("nearest", "floor", -0.75, True), ("linear", "round_prefer_floor", -0.75, False),
          ("cubic", "round_prefer_floor", -0.75, False),
          ("cubic", "round_prefer_floor", -0.5, True)]


def _resize_args(case, ctm, kind):
    shape, sizes, scales, roi = case
    mode, nm, a, excl = kind
    return dict(mode=mode, coordinate_transformation_mode=ctm, nearest_mode=nm, cubic_coeff_a=a,
                exclude_outside=excl, extrapolation_value=-3.0,
                roi=roi if ctm == "tf_crop_and_resize" else None)


@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: f"{k[0]}-{k[1]}-{k[2]}-{k[3]}")
@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: f"{c[0]}to{c[1]}".replace(" ", ""))
def test_resize_modes(case, kind, ctm):
    shape, sizes, scales, roi = case
    x = np.random.default_rng(len(shape) * 100 + sizes[-1]).standard_normal(shape)
    args = _resize_args(case, ctm, kind)
    out = nef.resize(nef.tensor(x), sizes=sizes, scales=scales, **args)
    want = ref_resize(x, sizes, scales, kind[0], ctm, kind[1], kind[2], kind[3], -3.0,
                      args["roi"])
    assert_close(out, want, "float64", scale=10)
    # onnx.reference takes either sizes or scales (float32, exact here), and roi as a float64
    # input. Its float attributes become np.float32, so cubic_coeff_a makes its cubic weights
    # float32-accurate: compare those at float32 precision.
    sc = None if scales is None else np.array(scales, np.float32)
    sz = None if scales is not None else np.array(sizes, np.int64)
    ro = None if args["roi"] is None else np.array(args["roi"], np.float64)
    onnx_out = _onnx_run("Resize", [("x", x), ("roi", ro), ("scales", sc), ("sizes", sz)],
                         mode=kind[0], coordinate_transformation_mode=ctm, nearest_mode=kind[1],
                         cubic_coeff_a=kind[2], exclude_outside=int(kind[3]),
                         extrapolation_value=-3.0)
    tol = 1e-5 if kind[0] == "cubic" else 1e-11
    np.testing.assert_allclose(out.numpy(), onnx_out, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype,mode,seed", cases(FLOATS + INTS + ["bool"],
                                                  ["nearest", "linear", "cubic"],
                                                  prefix="resize-dt"))
def test_resize_dtypes(dtype, mode, seed):
    x = random_array(np.random.default_rng(seed), (2, 3, 5, 6), dtype)
    sizes = (2, 3, 8, 4)
    if mode != "nearest" and dtype not in FLOATS:
        with pytest.raises(nef.NEFTypeError, match=r"\[resize\]"):
            nef.resize(nef.tensor(x), sizes=sizes, mode=mode)
        return
    out = nef.resize(nef.tensor(x), sizes=sizes, mode=mode)
    want = ref_resize(x, sizes, mode=mode)
    assert str(out.dtype) == dtype
    if mode == "nearest":
        np.testing.assert_array_equal(out.numpy(), want.astype(x.dtype))
    else:
        assert_close(out, want, dtype, scale=8)


def test_resize_scales_only_identity_and_strided():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 4, 6)).astype(np.float32)
    out = nef.resize(nef.tensor(x), scales=[1, 1, 2.5, 0.5], mode="linear")
    assert out.shape == (1, 2, 10, 3)
    assert_close(out, ref_resize(x, (1, 2, 10, 3), [1, 1, 2.5, 0.5], "linear"), "float32", 4)
    same = nef.resize(nef.tensor(x), sizes=x.shape, mode="cubic")
    np.testing.assert_array_equal(same.numpy(), x)
    t = nef.transpose(nef.tensor(x.transpose(0, 1, 3, 2).copy()), (0, 1, 3, 2))
    assert_close(nef.resize(t, sizes=(1, 2, 7, 5), mode="cubic"),
                 ref_resize(x, (1, 2, 7, 5), mode="cubic"), "float32", 8)
    empty = nef.resize(nef.zeros((0, 3)), sizes=(0, 6), mode="linear")
    assert empty.shape == (0, 6)
    down = nef.resize(nef.tensor(x), sizes=(1, 2, 0, 2), mode="linear")
    assert down.shape == (1, 2, 0, 2)


def test_resize_int_extrapolation_rounds_and_saturates():
    x = np.array([10, 20, 30], np.uint8)
    out = nef.resize(nef.tensor(x), sizes=(4,), coordinate_transformation_mode="tf_crop_and_resize",
                     roi=[-0.5, 1.0], extrapolation_value=300.0)
    assert out.numpy().tolist()[0] == 255
    out = nef.resize(nef.tensor(x.astype(np.int32)), sizes=(4,),
                     coordinate_transformation_mode="tf_crop_and_resize", roi=[-0.5, 1.0],
                     extrapolation_value=-2.5)
    assert out.numpy().tolist()[0] == -2


def test_resize_errors():
    x = nef.zeros((2, 3))
    with pytest.raises(nef.NEFValidationError, match=r"\[resize\] sizes .*\(2, 3\)"):
        nef.resize(x, sizes=(4,))
    with pytest.raises(nef.NEFValidationError, match="mode"):
        nef.resize(x, sizes=(4, 4), mode="area")
    with pytest.raises(nef.NEFValidationError, match="coordinate_transformation_mode"):
        nef.resize(x, sizes=(4, 4), coordinate_transformation_mode="center")
    with pytest.raises(nef.NEFValidationError, match="nearest_mode"):
        nef.resize(x, sizes=(4, 4), nearest_mode="round")
    with pytest.raises(nef.NEFValidationError, match="scales"):
        nef.resize(x, sizes=(4, 4), scales=[2.0, -1.0])
    with pytest.raises(nef.NEFValidationError, match="roi"):
        nef.resize(x, sizes=(4, 4), roi=[0.0, 1.0])
    with pytest.raises(nef.NEFShapeError, match=r"\[resize\]"):
        nef.resize(x, sizes=(4, -4))
    with pytest.raises(nef.NEFShapeError, match=r"\[resize\].*size 0"):
        nef.resize(nef.zeros((0, 3)), sizes=(2, 3))
    with pytest.raises(nef.NEFShapeError, match=r"rank"):
        nef.resize(nef.tensor(np.float32(1)), sizes=())
    with pytest.raises(nef.NEFTypeError):
        nef.resize(nef.zeros((2, 3), dtype=nef.int32), sizes=(4, 4), mode="cubic")
    with pytest.raises(TypeError):
        nef.resize(x)


def test_large_inputs_split_across_threads(tmp_path):
    """Big enough that the kernels split work; also a .nef build/load round trip."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 4, 50, 60)).astype(np.float32)
    for mode in ["nearest", "linear", "cubic"]:
        out = nef.resize(nef.tensor(x), sizes=(2, 4, 101, 37), mode=mode)
        assert_close(out, ref_resize(x, (2, 4, 101, 37), mode=mode), "float32", scale=8)
    big = rng.standard_normal((4, 8, 100, 90)).astype(np.float32)
    np.testing.assert_array_equal(nef.pad(nef.tensor(big), [0, 1, 3, -2, 0, 2, 5, 7],
                                          mode="reflect").numpy(),
                                  ref_pad(big, [0, 1, 3, -2, 0, 2, 5, 7], "reflect"))
    p = nef.placeholder("x", x.shape, nef.float32)
    path = tmp_path / "img.nef"
    nef.build(path, {"y": nef.resize(nef.pad(p, [0, 0, 1, 1, 0, 0, 1, 1], mode="edge"),
                                     sizes=(2, 4, 26, 31), mode="linear")})
    got = nef.load(path).run({"x": x})["y"]
    want = ref_resize(ref_pad(x, [0, 0, 1, 1, 0, 0, 1, 1], "edge"), (2, 4, 26, 31), mode="linear")
    assert_close(got, want, "float32", scale=8)
