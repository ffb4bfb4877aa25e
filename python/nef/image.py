"""Pooling, padding, resizing and grid sampling (docs/ops.md is the contract). They follow
ONNX's MaxPool, AveragePool, Pad, Resize and GridSample: pools are channels-first (x is
[N, C, *spatial], 1 to 3 spatial dims) and pad lists are ONNX-ordered (all begins, then all
ends). All of them are lazy.
"""

from __future__ import annotations

import builtins
import math

from .errors import NEFTypeError
from .ops import _op, _tensor
from .tensor import Tensor, _float_arg, _index_arg


def _rank(x) -> int:
    return len(x.shape) if isinstance(x, Tensor) else _tensor(x).ndim


def _ints(v, what: str, op: str) -> list:
    if not isinstance(v, (list, tuple)):
        raise NEFTypeError(f"[{op}] {what} must be a list of ints, got {type(v).__name__}")
    return [_index_arg(e, what, op) for e in v]


def _per_dim(v, n, what: str = "kernel", op: str = "pool"):
    """An int or a sequence of n ints -> a list of n ints (None stays None)."""
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        return _ints(v, what, op)
    return [_index_arg(v, what, op)] * n


def _pool_pads(pads, n, op: str = "pool"):
    """int -> the same on every side; n values -> symmetric; 2n values -> begins then ends."""
    if pads is None:
        return None
    if isinstance(pads, (list, tuple)):
        p = _ints(pads, "pads", op)
        return p + p if len(p) == n else p
    return [_index_arg(pads, "pads", op)] * (2 * n)


def _pool(name, x, kernel, strides, pads, dilations, ceil_mode, **extra) -> Tensor:
    n = builtins.max(_rank(x) - 2, 1)
    return _op(name, [x], kernel=_per_dim(kernel, n, "kernel", name),
               strides=_per_dim(strides, n, "strides", name), pads=_pool_pads(pads, n, name),
               dilations=_per_dim(dilations, n, "dilations", name),
               ceil_mode=builtins.bool(ceil_mode),
               **extra)


def max_pool(x, kernel, strides=None, pads=None, dilations=None, ceil_mode: bool = False) -> Tensor:
    """Max over windows of x [N, C, *spatial] (ONNX MaxPool). kernel/strides/dilations: an int
    or one per spatial dim; pads: an int, one per dim (both sides) or begins then ends.
    Padding never wins; floats and int8/uint8/int32/int64."""
    return _pool("max_pool", x, kernel, strides, pads, dilations, ceil_mode)


def avg_pool(x, kernel, strides=None, pads=None, dilations=None, ceil_mode: bool = False,
             count_include_pad: bool = False) -> Tensor:
    """Mean over windows of x [N, C, *spatial] (ONNX AveragePool); float types. The divisor is
    the number of input cells in the window, or with count_include_pad the cells inside the
    padded input."""
    return _pool("avg_pool", x, kernel, strides, pads, dilations, ceil_mode,
                 count_include_pad=builtins.bool(count_include_pad))


def pad(x, pads, mode: str = "constant", value: float = 0.0) -> Tensor:
    """ONNX Pad. pads: 2*rank ints (all begins, then all ends; negative crops) or numpy-style
    pairs [(begin, end), ...]. mode: constant (with value), reflect, edge or wrap."""
    if not isinstance(pads, (list, tuple)):
        raise NEFTypeError(f"[pad] pads must be a list, got {type(pads).__name__}")
    pads = list(pads)
    if pads and builtins.all(isinstance(p, (list, tuple)) for p in pads):
        if not builtins.all(len(p) == 2 for p in pads):
            raise NEFTypeError("[pad] numpy-style pads are (begin, end) pairs")
        pads = [p[0] for p in pads] + [p[1] for p in pads]
    return _op("pad", [x], pads=_ints(pads, "pads", "pad"), mode=mode,
               value=_float_arg(value, "value", "pad"))


def resize(x, sizes=None, scales=None, mode: str = "nearest",
           coordinate_transformation_mode: str = "half_pixel",
           nearest_mode: str = "round_prefer_floor", cubic_coeff_a: float = -0.75,
           exclude_outside: bool = False, extrapolation_value: float = 0.0,
           roi=None) -> Tensor:
    """ONNX Resize (no antialias). Give sizes (the output shape), scales (one per dim; the
    output is floor(dim * scale)), or both (the scales then drive the coordinate transform).
    mode: nearest, linear or cubic; roi (starts then ends) is used by tf_crop_and_resize."""
    if sizes is None:
        if scales is None:
            raise NEFTypeError("[resize] needs sizes or scales")
        shape = _tensor(x, "resize").shape
        sizes = [int(math.floor(d * _float_arg(s, "scales", "resize")))
                 for d, s in zip(shape, _list(scales, "scales"))]
    return _op("resize", [x], sizes=_ints(_list(sizes, "sizes"), "sizes", "resize"),
               scales=None if scales is None else
               [_float_arg(s, "scales", "resize") for s in _list(scales, "scales")], mode=mode,
               coordinate_transformation_mode=coordinate_transformation_mode,
               nearest_mode=nearest_mode, cubic_coeff_a=float(cubic_coeff_a),
               exclude_outside=builtins.bool(exclude_outside),
               extrapolation_value=_float_arg(extrapolation_value, "extrapolation_value", "resize"),
               roi=None if roi is None else
               [_float_arg(r, "roi", "resize") for r in _list(roi, "roi")])


def _list(v, what: str) -> list:
    if not isinstance(v, (list, tuple)):
        raise NEFTypeError(f"[resize] {what} must be a list, got {type(v).__name__}")
    return list(v)


def grid_sample(x, grid, mode: str = "linear", padding_mode: str = "zeros",
                align_corners: bool = False) -> Tensor:
    """ONNX GridSample (PyTorch's grid_sample): x [N, C, *spatial] sampled at grid
    [N, *out_spatial, r], whose last dim holds normalized coordinates in [-1, 1] (the first
    component indexes x's last spatial dim). mode: nearest, linear or cubic; padding_mode:
    zeros, border or reflection. Returns [N, C, *out_spatial]."""
    return _op("grid_sample", [x, grid], mode=mode, padding_mode=padding_mode,
               align_corners=builtins.bool(align_corners))


def roi_align(x, rois, batch_indices, output_height: int = 1, output_width: int = 1,
              sampling_ratio: int = 0, spatial_scale: float = 1.0, mode: str = "avg",
              coordinate_transformation_mode: str = "half_pixel") -> Tensor:
    """ONNX RoiAlign: x [N, C, H, W] pooled over regions rois [R, 4] (x1, y1, x2, y2, in units
    of 1 / spatial_scale pixels) of images batch_indices [R] -> [R, C, output_height,
    output_width]. Each bin samples a grid of sampling_ratio^2 bilinear points (0: adaptive,
    ceil(region size / bins) per axis); mode "avg" averages them, "max" takes the largest
    weighted corner (ONNX's rule). coordinate_transformation_mode "half_pixel" shifts the
    region by -0.5 pixel; "output_half_pixel" (RoiAlign-10) does not."""
    return _op("roi_align", [x, rois, batch_indices],
               output_height=_index_arg(output_height, "output_height", "roi_align"),
               output_width=_index_arg(output_width, "output_width", "roi_align"),
               sampling_ratio=_index_arg(sampling_ratio, "sampling_ratio", "roi_align"),
               spatial_scale=_float_arg(spatial_scale, "spatial_scale", "roi_align"), mode=str(mode),
               coordinate_transformation_mode=str(coordinate_transformation_mode))
