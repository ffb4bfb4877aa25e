"""NEF: a lazy computation-graph engine for AI inference.

    import nef
    a = nef.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=nef.float32)
    b = nef.tensor([[5.0, 6.0], [7.0, 8.0]], dtype=nef.float32)
    c = nef.matmul(a, b)   # a graph node; nothing ran
    c.execute()            # optimize -> plan -> compile -> run

See docs/python.md for the API and where NEF's defaults differ from numpy.
"""

from . import _nef
from . import random
from .conv import conv, conv_transpose
from .creation import (arange, asarray, from_numpy, full, full_like, ones, ones_like,
                       placeholder, scalar, tensor, zeros, zeros_like)
from .dtypes import (DType, as_dtype, bfloat16, bool_, finfo, float16, float32, float64, int8,
                     int32, int64, uint8)
from .errors import (NEFCancelledError, NEFCompileError, NEFDeviceError, NEFError, NEFFormatError,
                     NEFGraphCycleError, NEFOutOfMemoryError, NEFShapeError, NEFTypeError,
                     NEFUnsupportedError, NEFValidationError)
from .graph import Graph, build, evaluate, from_onnx, load, profile_summary
from .image import avg_pool, grid_sample, max_pool, pad, resize
from .ops import (abs, absolute, acos, acosh, add, amax, amin, arccos, arccosh, arcsin, arcsinh,
                  arctan, arctanh, argmax, argmin, asin, asinh, astype, atan, atanh, attention,
                  bitwise_and, bitwise_not, bitwise_or, bitwise_xor, broadcast_to, cast, ceil,
                  clip, concat, concatenate, cos, cosh, cumprod, cumsum, det, div, divide, einsum,
                  equal, erf, exp, expand_dims, floor, gather, gather_elements, gather_nd, gelu,
                  greater, greater_equal, invert, layernorm, left_shift, less, less_equal, log,
                  log_softmax, logical_and, logical_not, logical_or, matmul, max, maximum, mean,
                  min, minimum, mod, mul, multiply, neg, negative, not_equal, permute, pow,
                  power, prod, reciprocal, relu, remainder, reshape, right_shift, rmsnorm, round,
                  rsqrt, scatter_elements, scatter_nd, sigmoid, sign, silu, sin, sinh, slice,
                  softmax, split, sqrt, squeeze, stack, sub, subtract, sum, take,
                  take_along_axis, tan, tanh, topk, transpose, true_divide, where)
from .runtime import config, device, devices, reset_stats, stats
from .tensor import Tensor

bool = bool_  # noqa: A001  (nef.bool, like numpy's old alias; builtins are untouched elsewhere)
eval = evaluate  # noqa: A001
__version__ = _nef.__version__  # the VERSION file, compiled into the extension
