"""NEF: a lazy computation-graph engine for AI inference.

    import nef
    a = nef.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=nef.float32)
    b = nef.tensor([[5.0, 6.0], [7.0, 8.0]], dtype=nef.float32)
    c = nef.matmul(a, b)   # a graph node; nothing ran
    c.execute()            # optimize -> plan -> compile -> run

See docs/python.md for the API and where NEF's defaults differ from numpy.
"""

from . import _nef
from . import gguf, llm, random
from .conv import conv, conv_dynamic_int8, conv_integer, conv_transpose
from .ops import matmul_dynamic_int8, matmul_integer
from .creation import (arange, asarray, empty, empty_like, eye, from_numpy, full, full_like,
                       identity, linspace, ones, ones_like, placeholder, scalar, tensor, zeros,
                       zeros_like)
from .dtypes import (DType, as_dtype, bfloat16, bool_, finfo, float8_e4m3fn, float8_e4m3fnuz,
                     float8_e5m2, float8_e5m2fnuz, float16, float32, float64, int8, int16, int32,
                     int64, uint8, uint16, uint32, uint64)
from .errors import (NEFBufferError, NEFCancelledError, NEFCompileError, NEFDeviceError, NEFError,
                     NEFFormatError, NEFGraphCycleError, NEFImportError, NEFIndexError,
                     NEFOutOfMemoryError, NEFOverflowError, NEFShapeError, NEFTypeError,
                     NEFUnsupportedError, NEFValidationError)
from .graph import Graph, Profile, build, evaluate, from_onnx, load, profile_summary
from .image import avg_pool, grid_sample, max_pool, pad, resize, roi_align
from .interop import from_dlpack
from .ops import (abs, absolute, acos, acosh, add, all, allclose, amax, amin, any, arccos, arccosh,
                  arcsin, arcsinh, arctan, arctanh, argmax, argmin, asin, asinh, astype, atan,
                  atanh, attention, bitwise_and, bitwise_not, bitwise_or, bitwise_xor,
                  broadcast_to, cached_attention, cast, ceil, clip, concat, concatenate, copy,
                  cos, cosh, cumprod, cumsum, det, div, divide, einsum, equal, erf, exp, expand_dims, floor,
                  floor_divide, gather, gather_elements, gather_nd, gelu, greater, greater_equal,
                  invert, isclose, isfinite, isinf, isnan, layernorm, left_shift, less, less_equal,
                  linear_attention,
                  log, log_softmax, logical_and, logical_not, logical_or, logical_xor, matmul, max,
                  maximum, mean, min, minimum, mod, mul, multiply, neg, negative, not_equal,
                  permute, pow, power, prod, qgather, qmatmul, reciprocal, relu, remainder,
                  reshape, right_shift,
                  rmsnorm, rope, round, rsqrt, scatter_elements, scatter_nd, sigmoid, sign, silu,
                  sin, sinh, slice, softmax, split, sqrt, square, squeeze, stack, std, sub, subtract,
                  sum, take, take_along_axis, tan, tanh, topk, transpose, true_divide, var, where)
from .recurrent import gru, lstm, rnn
from .dynamic import non_max_suppression, nonzero, unique
from .runtime import MAX_THREADS, config, device, devices, reset_stats, stats
from .tensor import Tensor

bool = bool_  # noqa: A001  (nef.bool, like numpy's old alias; builtins are untouched elsewhere)
eval = evaluate  # noqa: A001
__version__: str = _nef.__version__  # the VERSION file, compiled into the extension

__all__ = [
    # tensors and creation
    "Tensor", "tensor", "asarray", "from_numpy", "from_dlpack", "placeholder", "scalar", "full",
    "zeros", "ones", "empty", "full_like", "zeros_like", "ones_like", "empty_like", "arange",
    "linspace", "eye", "identity", "random", "gguf", "llm",
    # dtypes
    "DType", "as_dtype", "finfo", "float32", "float16", "bfloat16", "float64", "int8", "uint8",
    "int16", "uint16", "int32", "uint32", "int64", "uint64", "bool_", "bool", "float8_e4m3fn",
    "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
    # elementwise
    "neg", "negative", "abs", "absolute", "sign", "relu", "floor", "ceil", "round", "exp", "log",
    "sqrt", "rsqrt", "reciprocal", "tanh", "sigmoid", "silu", "erf", "sin", "cos", "gelu",
    "tan", "sinh", "cosh", "asin", "acos", "atan", "asinh", "acosh", "atanh", "arcsin", "arccos",
    "arctan", "arcsinh", "arccosh", "arctanh", "bitwise_and", "bitwise_or", "bitwise_xor",
    "bitwise_not", "invert", "left_shift", "right_shift",
    "square", "isnan", "isinf", "isfinite", "logical_not", "add", "sub", "subtract", "mul",
    "multiply", "div", "divide", "true_divide", "pow", "power", "mod", "remainder",
    "floor_divide", "maximum", "minimum", "equal", "not_equal", "less", "less_equal", "greater",
    "greater_equal", "logical_and", "logical_or", "logical_xor", "where", "clip", "cast",
    "astype", "isclose", "allclose", "copy",
    # reductions
    "sum", "mean", "max", "min", "amax", "amin", "prod", "argmax", "argmin", "all", "any", "std",
    "var", "cumsum", "cumprod", "topk",
    # neural, layout, images
    "matmul", "softmax", "log_softmax", "layernorm", "rmsnorm", "attention", "cached_attention",
    "rope", "qmatmul", "qgather", "conv", "linear_attention", "roi_align",
    "matmul_integer", "conv_integer", "matmul_dynamic_int8", "conv_dynamic_int8",
    "conv_transpose", "max_pool", "avg_pool", "pad", "resize", "reshape", "transpose",
    "permute", "slice", "concat", "concatenate", "stack", "split", "broadcast_to", "expand_dims",
    "squeeze", "gather", "take", "gather_elements", "gather_nd", "take_along_axis",
    "scatter_elements", "scatter_nd", "einsum", "det", "grid_sample", "lstm", "gru", "rnn",
    # graphs, execution, runtime
    "evaluate", "eval", "build", "load", "from_onnx", "Graph", "Profile", "profile_summary",
    "config", "device", "devices", "stats", "reset_stats", "MAX_THREADS",
    # errors
    "NEFError", "NEFShapeError", "NEFTypeError", "NEFValidationError", "NEFFormatError",
    "NEFGraphCycleError", "NEFUnsupportedError", "NEFOutOfMemoryError", "NEFDeviceError",
    "NEFCompileError", "NEFCancelledError", "NEFOverflowError", "NEFIndexError", "NEFBufferError",
    "NEFImportError",
    # value-dependent shapes
    "nonzero", "unique", "non_max_suppression",
]
