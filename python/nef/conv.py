"""Convolutions with ONNX Conv / ConvTranspose semantics (channels-first, 1 to 3 spatial dims).
Geometry arguments left as None take their defaults (strides and dilations 1, pads and
output_padding 0); pads lists all begins then all ends, like ONNX.
"""

from __future__ import annotations

import operator

from . import _nef
from .errors import NEFValidationError
from .tensor import Tensor, nodes_for, wrap


def _ints(v):
    return None if v is None else [operator.index(e) for e in v]


def _conv_op(name, x, w, bias, attrs) -> Tensor:
    inputs = nodes_for(x, w) if bias is None else nodes_for(x, w, bias)
    return wrap(_nef.op(name, inputs, attrs))


def conv(x, w, bias=None, strides=None, pads=None, dilations=None, groups: int = 1) -> Tensor:
    """x [N, C, *spatial], w [M, C/groups, *kernel], bias [M] -> [N, M, *out] with
    out_i = floor((in_i + pad_begin_i + pad_end_i - dilation_i*(k_i-1) - 1)/stride_i) + 1."""
    return _conv_op("conv", x, w, bias,
                    {"strides": _ints(strides), "pads": _ints(pads),
                     "dilations": _ints(dilations), "groups": operator.index(groups)})


def conv_transpose(x, w, bias=None, strides=None, pads=None, dilations=None, groups: int = 1,
                   output_padding=None) -> Tensor:
    """x [N, C, *spatial], w [C, M/groups, *kernel], bias [M] -> [N, M, *out] with
    out_i = stride_i*(in_i-1) + output_padding_i + dilation_i*(k_i-1) + 1
            - pad_begin_i - pad_end_i; output_padding_i must be below stride_i or dilation_i."""
    return _conv_op("conv_transpose", x, w, bias,
                    {"strides": _ints(strides), "pads": _ints(pads),
                     "dilations": _ints(dilations), "groups": operator.index(groups),
                     "output_padding": _ints(output_padding)})


def conv_integer(x, w, x_zero_point=None, w_zero_point=None, strides=None, pads=None,
                 dilations=None, groups: int = 1) -> Tensor:
    """ONNX ConvInteger: x and w int8/uint8 (as conv's x [N, C, *spatial], w [M, C/groups,
    *kernel]), x_zero_point one value, w_zero_point one or [M] (both or neither) -> the exact
    int32 convolution of (x - x_zero_point) and (w - w_zero_point); padding contributes 0."""
    zps = () if x_zero_point is None and w_zero_point is None else (x_zero_point, w_zero_point)
    if len(zps) and any(z is None for z in zps):
        raise NEFValidationError("[conv_integer] give both zero points or neither")
    return wrap(_nef.op("conv_integer", nodes_for(x, w, *zps),
                        {"strides": _ints(strides), "pads": _ints(pads),
                         "dilations": _ints(dilations), "groups": operator.index(groups)}))


def conv_dynamic_int8(x, w, w_scale, bias=None, strides=None, pads=None, dilations=None,
                      groups: int = 1, activation: str = "") -> Tensor:
    """A float32 conv whose weights are int8 per output channel: x float32 [N, C, *spatial] (1 or
    2 spatial dims), w int8 [M, C/groups, *kernel], w_scale float32 [M], bias float32 [M] ->
    float32, conv's geometry. x is quantized at run time per tensor to uint8 over its range
    widened to hold 0 (ONNX DynamicQuantizeLinear: s = max(hi - lo, FLT_MIN) / 255, z =
    round(-lo / s), q = clamp(round(x / s) + z, 0, 255)); y = float(conv_integer(q, w, z, 0)) *
    (s * w_scale[m]) + bias[m] with the integer conv exact, then `activation` ("", "relu" or
    "silu"). An x holding NaN or an infinity gives NaN everywhere. What `Graph.quantize()` makes
    of a float conv (and the relu / silu after it)."""
    inputs = nodes_for(x, w, w_scale) if bias is None else nodes_for(x, w, w_scale, bias)
    return wrap(_nef.op("conv_dynamic_int8", inputs,
                        {"strides": _ints(strides), "pads": _ints(pads),
                         "dilations": _ints(dilations), "groups": operator.index(groups),
                         "activation": str(activation)}))
