"""Creating tensors: from data (zero-copy for numpy), placeholders, constants, ranges."""

from __future__ import annotations

from . import _nef
from .dtypes import DType, as_dtype, bool_, float32, int64
from .tensor import Tensor, _make_node, _shape_arg, wrap


def tensor(data, dtype=None) -> Tensor:
    """A tensor from a Python scalar, (nested) list, numpy array or Tensor.

    Python float lists default to float32, int lists to int64, bool lists to bool. numpy arrays
    keep their dtype exactly and are shared zero-copy (mutating the array later changes the
    tensor's value) unless `dtype` asks for a conversion.
    """
    return wrap(_make_node(data, dtype))


asarray = tensor


def from_numpy(arr) -> Tensor:
    """Wraps a numpy array without copying (the tensor keeps the array alive)."""
    return wrap(_make_node(arr))


def placeholder(name: str, shape, dtype=float32) -> Tensor:
    """A named graph input, bound when a built graph runs (see nef.build / nef.load)."""
    return wrap(_nef.placeholder(str(name), _shape_arg(shape), as_dtype(dtype).name))


def _value_dtype(value) -> DType:
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    return float32


def full(shape, value, dtype=None) -> Tensor:
    """Every element = value; dtype defaults from the value (bool, int64, or float32)."""
    t = as_dtype(dtype) if dtype is not None else _value_dtype(value)
    return wrap(_nef.full(_shape_arg(shape), float(value), t.name))


def zeros(shape, dtype=float32) -> Tensor:
    return full(shape, 0.0, dtype)


def ones(shape, dtype=float32) -> Tensor:
    return full(shape, 1.0, dtype)


def full_like(x: Tensor, value, dtype=None) -> Tensor:
    return full(x.shape, value, dtype if dtype is not None else x.dtype)


def zeros_like(x: Tensor, dtype=None) -> Tensor:
    return full_like(x, 0.0, dtype)


def ones_like(x: Tensor, dtype=None) -> Tensor:
    return full_like(x, 1.0, dtype)


def arange(start, stop=None, step=1, dtype=None) -> Tensor:
    """numpy arange. dtype defaults to int64 if all arguments are ints, else float32."""
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        all_int = all(isinstance(v, int) or hasattr(v, "__index__") for v in (start, stop, step))
        dtype = int64 if all_int else float32
    return wrap(_nef.arange(float(start), float(stop), float(step), as_dtype(dtype).name))


def scalar(value, dtype=None) -> Tensor:
    """A rank-0 tensor of a concrete dtype (defaults as for full())."""
    t = as_dtype(dtype) if dtype is not None else _value_dtype(value)
    return wrap(_nef.scalar(float(value), t.name))
