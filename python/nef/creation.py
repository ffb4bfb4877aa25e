"""Creating tensors: from data (zero-copy for numpy), placeholders, constants, ranges."""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np

from . import _nef
from .dtypes import DType, as_dtype, bool_, float32, float64, int64, uint64
from .errors import NEFOverflowError, NEFTypeError, NEFUnsupportedError, NEFValidationError
from .tensor import (_EXACT_INT, Tensor, _check_int, _float_arg, _index_arg, _make_node,
                     _shape_arg, wrap)


def tensor(data: Any, dtype: Any = None) -> Tensor:
    """A tensor from a Python scalar, (nested) list, numpy array, Tensor or DLPack producer.

    Python float lists default to float32, int lists to int64, bool lists to bool. numpy arrays
    keep their dtype exactly and are shared zero-copy (mutating the array later changes the
    tensor's value) unless `dtype` asks for a conversion. A Python int that does not fit the
    dtype raises NEFOverflowError (also an OverflowError), as in numpy 2; ragged lists raise
    NEFShapeError.
    """
    return wrap(_make_node(data, dtype))


def asarray(data: Any, dtype: Any = None) -> Tensor:
    """Same as :func:`tensor` (numpy's name): numpy arrays are shared, not copied."""
    return wrap(_make_node(data, dtype))


def from_numpy(arr: Any) -> Tensor:
    """Wraps a numpy array without copying (the tensor keeps the array alive)."""
    return wrap(_make_node(arr, op="from_numpy"))


def placeholder(name: str, shape: Any, dtype: Any = float32) -> Tensor:
    """A named graph input, bound when a built graph runs (see nef.build / nef.load)."""
    return wrap(_nef.placeholder(str(name), _shape_arg(shape, "placeholder"),
                                 as_dtype(dtype).name))


def _value_dtype(value) -> DType:
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        # numpy's choice for non-negative ints beyond int64: uint64.
        return uint64 if 2**63 <= int(value) < 2**64 else int64
    return float32


def _constant(shape: list, value, dtype: DType, op: str):
    """A constant node: `value` cast to `dtype`, Python ints checked against it (numpy 2 raises
    OverflowError too) and kept exact beyond 2**53."""
    if isinstance(value, (Tensor, np.ndarray, list, tuple)):
        return _nef.op("broadcast_to", [_make_node(value, dtype, op)], {"shape": shape})
    if isinstance(value, complex):
        raise NEFTypeError(f"[{op}] NEF has no complex dtypes")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, int) and not isinstance(value, bool):
        if dtype.kind in "iu":
            _check_int(value, dtype, op)
            if abs(value) > _EXACT_INT:
                exact = _nef.from_numpy(np.asarray(value, dtype=dtype.np_dtype))
                return _nef.op("broadcast_to", [exact], {"shape": shape})
        elif dtype.kind == "f":
            try:
                value = float(value)
            except OverflowError:
                raise NEFOverflowError(f"[{op}] Python integer {value} is too large for "
                                       f"{dtype.name}") from None
    v = _float_arg(value, "value", op)
    if math.isnan(v) and dtype.kind in "iu":
        raise NEFValidationError(f"[{op}] cannot convert NaN to {dtype.name}")
    return _nef.full(shape, v, dtype.name)


def full(shape: Any, value: Any, dtype: Any = None) -> Tensor:
    """Every element = value; dtype defaults from the value (bool, int64, or float32). A Python
    int that does not fit the dtype raises NEFOverflowError (numpy 2 does too); like numpy, an
    int in [2**63, 2**64) without a dtype gives uint64."""
    t = as_dtype(dtype) if dtype is not None else _value_dtype(value)
    return wrap(_constant(_shape_arg(shape, "full"), value, t, "full"))


def zeros(shape: Any, dtype: Any = float32) -> Tensor:
    """A tensor of zeros (float32 unless dtype says otherwise)."""
    return wrap(_nef.full(_shape_arg(shape, "zeros"), 0.0, as_dtype(dtype).name))


def ones(shape: Any, dtype: Any = float32) -> Tensor:
    """A tensor of ones (float32 unless dtype says otherwise)."""
    return wrap(_nef.full(_shape_arg(shape, "ones"), 1.0, as_dtype(dtype).name))


def empty(shape: Any, dtype: Any = float32) -> Tensor:
    """numpy's empty: NEF has no uninitialized memory to offer, so these are zeros."""
    return zeros(shape, dtype)


def full_like(x: Any, value: Any, dtype: Any = None) -> Tensor:
    """Same shape as x, every element = value; dtype defaults to x's."""
    x = x if isinstance(x, Tensor) else tensor(x)
    return full(x.shape, value, dtype if dtype is not None else x.dtype)


def zeros_like(x: Any, dtype: Any = None) -> Tensor:
    """Zeros with x's shape (and dtype unless given)."""
    x = x if isinstance(x, Tensor) else tensor(x)
    return zeros(x.shape, dtype if dtype is not None else x.dtype)


def ones_like(x: Any, dtype: Any = None) -> Tensor:
    """Ones with x's shape (and dtype unless given)."""
    x = x if isinstance(x, Tensor) else tensor(x)
    return ones(x.shape, dtype if dtype is not None else x.dtype)


def empty_like(x: Any, dtype: Any = None) -> Tensor:
    """Same as :func:`zeros_like` (see :func:`empty`)."""
    return zeros_like(x, dtype)


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Tensor:
    """numpy arange. dtype defaults to int64 if all arguments are ints, else float32."""
    if stop is None:
        start, stop = 0, start
    args = (start, stop, step)
    all_int = builtins.all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                           or hasattr(v, "__index__") for v in args)
    t = as_dtype(dtype) if dtype is not None else (int64 if all_int else float32)
    if all_int and t.kind in "iu" and builtins.any(abs(int(v)) > _EXACT_INT for v in args):
        # Beyond 2**53 a double cannot carry the values: numpy computes them exactly.
        for v in args:
            _check_int(int(v), int64, "arange")
        vals = np.arange(int(start), int(stop), int(step), dtype=np.int64).astype(t.np_dtype)
        return wrap(_nef.from_numpy(vals))
    if _float_arg(step, "step", "arange") == 0:
        raise NEFValidationError("[arange] step must not be zero")
    return wrap(_nef.arange(_float_arg(start, "start", "arange"),
                            _float_arg(stop, "stop", "arange"),
                            _float_arg(step, "step", "arange"), t.name))


def scalar(value: Any, dtype: Any = None) -> Tensor:
    """A rank-0 tensor of a concrete dtype (defaults as for full())."""
    t = as_dtype(dtype) if dtype is not None else _value_dtype(value)
    return wrap(_constant([], value, t, "scalar"))


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = float32) -> Tensor:
    """numpy.eye: an N x M tensor (M defaults to N) with ones on diagonal k (0 the main one,
    > 0 above it) and zeros elsewhere. Lazy; float32 unless dtype says otherwise."""
    n = _index_arg(N, "N", "eye")
    m = n if M is None else _index_arg(M, "M", "eye")
    if n < 0 or m < 0:
        raise NEFValidationError(f"[eye] N and M must be non-negative, got {n}, {m}")
    k = _index_arg(k, "k", "eye")
    rows = wrap(_nef.arange(0.0, float(n), 1.0, "int64")).reshape(n, 1)
    cols = wrap(_nef.arange(0.0, float(m), 1.0, "int64")).reshape(1, m)
    from .ops import cast, equal
    return cast(equal(cols - rows, k), dtype)


def identity(n: int, dtype: Any = float32) -> Tensor:
    """The n x n identity matrix (numpy.identity)."""
    return eye(n, dtype=dtype)


def linspace(start: float, stop: float, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: Any = None, axis: int = 0) -> Any:
    """numpy.linspace: `num` evenly spaced values from start to stop (stop included unless
    endpoint=False), computed in float64 as numpy does and then cast to dtype (float32 by
    default: numpy's is float64; integer dtypes take the floor, as numpy). With retstep, returns
    (tensor, step). start and stop are scalars (numpy also broadcasts arrays: not supported)."""
    if isinstance(start, (Tensor, np.ndarray, list, tuple)) or \
            isinstance(stop, (Tensor, np.ndarray, list, tuple)):
        if tensor(start).ndim or tensor(stop).ndim:
            raise NEFUnsupportedError("[linspace] start and stop must be scalars")
        start, stop = tensor(start).item(), tensor(stop).item()
    if _index_arg(axis, "axis", "linspace") not in (0, -1):
        raise NEFUnsupportedError("[linspace] axis applies to array start/stop, which are not "
                                  "supported")
    num = _index_arg(num, "num", "linspace")
    if num < 0:
        raise NEFValidationError(f"[linspace] num must be non-negative, got {num}")
    lo, hi = _float_arg(start, "start", "linspace"), _float_arg(stop, "stop", "linspace")
    t = as_dtype(dtype) if dtype is not None else float32
    div = (num - 1) if endpoint else num
    delta = hi - lo
    step = delta / div if div > 0 else math.nan
    idx = wrap(_nef.arange(0.0, float(num), 1.0, "float64"))
    from .ops import cast, floor, where
    y = idx * (step if div > 0 else 0.0) + lo
    if endpoint and num > 1:
        y = where(idx == float(num - 1), hi, y)
    if t.kind in "iu":
        y = floor(y)
    out = y if t is float64 else cast(y, t)
    return (out, step) if retstep else out
