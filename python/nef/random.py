"""Random tensors with numpy.random's signatures (``nef.random.randn(2, 3)``,
``nef.random.normal(0, 1, size=(2, 3))``), lazy and counter-based: the same (shape, seed,
parameters) always give the same values, on every backend. Each function also takes the
keyword-only ``seed=`` (the values' identity) and ``dtype=`` (float32 by default: numpy's is
float64). Without a seed, each call takes the next seed of a global sequence that
``nef.random.seed(n)`` makes reproducible. ``size=None`` gives a rank-0 tensor (numpy returns a
Python float there).
"""

from __future__ import annotations

import builtins
import os
import threading
from typing import Any

import numpy as np

from . import _nef
from .dtypes import as_dtype, float32, float64, int64
from .errors import NEFShapeError, NEFTypeError, NEFValidationError
from .tensor import Tensor, _check_int, _float_arg, _index_arg, _shape_arg, wrap

_lock = threading.Lock()
_state = {"base": int.from_bytes(os.urandom(8), "little"), "counter": 0}
_MASK = (1 << 64) - 1

__all__ = ["seed", "normal", "uniform", "standard_normal", "random", "random_sample", "rand",
           "randn", "randint"]


def seed(seed: Any = None) -> None:
    """Makes the seeds of later seedless calls reproducible (numpy.random.seed); None takes a
    fresh seed from the OS."""
    with _lock:
        if seed is None:
            _state["base"] = int.from_bytes(os.urandom(8), "little")
        else:
            _state["base"] = _index_arg(seed, "seed", "random.seed") & _MASK
        _state["counter"] = 0


def _next_seed() -> int:
    # splitmix64 of (base + counter): consecutive calls get unrelated streams.
    with _lock:
        _state["counter"] += 1
        z = (_state["base"] + _state["counter"] * 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _seed(s) -> int:
    return _next_seed() if s is None else _index_arg(s, "seed", "random") & _MASK


def _size(size, op: str) -> list:
    dims = [] if size is None else _shape_arg(size, op)
    if builtins.any(d < 0 for d in dims):
        raise NEFShapeError(f"[{op}] negative dimensions are not allowed: size {tuple(dims)}")
    return dims


def _check_scale(scale, op: str) -> None:
    """numpy.random.normal refuses a negative scale (NaN passes, as there). Checked where the
    values are known: numbers, numpy data, lists and computed tensors."""
    if isinstance(scale, Tensor):
        if not scale.is_materialized:
            return
        scale = scale.numpy()
    if isinstance(scale, (np.ndarray, np.generic, list, tuple)):
        arr = Tensor(scale).numpy()  # NEF's conversion errors for bad data
        if arr.dtype.name == "bfloat16":
            arr = arr.astype(np.float32)
        if arr.dtype.kind not in "fiub":
            return  # NEFTypeError from the op below
        if arr.size and builtins.bool((arr < 0).any()):
            raise NEFValidationError(f"[{op}] scale < 0 (a standard deviation is not negative)")
        return
    if _float_arg(scale, "scale", op) < 0:
        raise NEFValidationError(f"[{op}] scale < 0 (a standard deviation is not negative): "
                                 f"{scale!r}")


def _float_dtype(dtype, op: str):
    t = as_dtype(dtype)
    if t.kind != "f":
        raise NEFTypeError(f"[{op}] needs a float dtype, got {t.name}")
    return t


def _is_array(v) -> bool:
    return isinstance(v, (Tensor, np.ndarray, list, tuple))


def _with_params(base_fn, a, b, size, op: str, dtype, combine):
    """Samples of a standard distribution shaped `size` (or the broadcast of array parameters)
    moved to parameters a, b that may be arrays."""
    from .ops import add, broadcast_to, cast, mul
    ta = a if isinstance(a, Tensor) else Tensor(a, dtype)
    tb = b if isinstance(b, Tensor) else Tensor(b, dtype)
    shape = list(np.broadcast_shapes(ta.shape, tb.shape)) if size is None else _size(size, op)
    z = base_fn(shape)
    out = combine(z, cast(ta, dtype), cast(tb, dtype), add, mul)
    return broadcast_to(out, shape) if list(out.shape) != shape else out


def normal(loc: Any = 0.0, scale: Any = 1.0, size: Any = None, *, seed: Any = None,
           dtype: Any = float32) -> Tensor:
    """Normal samples with mean `loc` and standard deviation `scale` (numpy.random.normal);
    loc and scale may be arrays (broadcast with each other, or to `size`)."""
    t = _float_dtype(dtype, "random.normal")
    _check_scale(scale, "random.normal")
    s = _seed(seed)
    if _is_array(loc) or _is_array(scale):
        return _with_params(lambda sh: wrap(_nef.random_normal(sh, s, 0.0, 1.0, t.name)),
                            loc, scale, size, "random.normal", t,
                            lambda z, a, b, add, mul: add(mul(z, b), a))
    return wrap(_nef.random_normal(_size(size, "random.normal"), s,
                                   _float_arg(loc, "loc", "random.normal"),
                                   _float_arg(scale, "scale", "random.normal"), t.name))


def uniform(low: Any = 0.0, high: Any = 1.0, size: Any = None, *, seed: Any = None,
            dtype: Any = float32) -> Tensor:
    """Uniform samples in [low, high) (numpy.random.uniform); low and high may be arrays."""
    t = _float_dtype(dtype, "random.uniform")
    s = _seed(seed)
    if _is_array(low) or _is_array(high):
        return _with_params(lambda sh: wrap(_nef.random_uniform(sh, s, 0.0, 1.0, t.name)),
                            low, high, size, "random.uniform", t,
                            lambda z, a, b, add, mul: add(mul(z, b - a), a))
    return wrap(_nef.random_uniform(_size(size, "random.uniform"), s,
                                    _float_arg(low, "low", "random.uniform"),
                                    _float_arg(high, "high", "random.uniform"), t.name))


def standard_normal(size: Any = None, *, seed: Any = None, dtype: Any = float32) -> Tensor:
    """Normal(0, 1) samples shaped `size` (numpy.random.standard_normal)."""
    return normal(0.0, 1.0, size, seed=seed, dtype=dtype)


def random(size: Any = None, *, seed: Any = None, dtype: Any = float32) -> Tensor:
    """Uniform samples in [0, 1) shaped `size` (numpy.random.random)."""
    return uniform(0.0, 1.0, size, seed=seed, dtype=dtype)


random_sample = random


def rand(*dims: int, seed: Any = None, dtype: Any = float32) -> Tensor:
    """Uniform [0, 1) samples of shape `dims`: ``nef.random.rand(2, 3)`` (numpy.random.rand)."""
    return uniform(0.0, 1.0, _size([_index_arg(d, "a dim", "random.rand") for d in dims],
                                   "random.rand"), seed=seed, dtype=dtype)


def randn(*dims: int, seed: Any = None, dtype: Any = float32) -> Tensor:
    """Normal(0, 1) samples of shape `dims`: ``nef.random.randn(2, 3)`` (numpy.random.randn)."""
    return normal(0.0, 1.0, _size([_index_arg(d, "a dim", "random.randn") for d in dims],
                                   "random.randn"), seed=seed, dtype=dtype)


def randint(low: int, high: int | None = None, size: Any = None, dtype: Any = int64, *,
            seed: Any = None) -> Tensor:
    """Integers uniform in [low, high) (numpy.random.randint; one argument means [0, low)),
    int64 unless dtype says otherwise. The bounds must fit the dtype and span at most 2**53
    values (the samples come from float64 uniforms)."""
    lo = _index_arg(low, "low", "random.randint")
    if high is None:
        lo, hi = 0, lo
    else:
        hi = _index_arg(high, "high", "random.randint")
    t = as_dtype(dtype)
    if t.kind not in "iu":
        raise NEFTypeError(f"[random.randint] needs an integer dtype, got {t.name}")
    if hi <= lo:
        raise NEFValidationError(f"[random.randint] low >= high ({lo} >= {hi})")
    _check_int(lo, t, "random.randint")
    _check_int(hi - 1, t, "random.randint")
    if hi - lo > 2**53:
        raise NEFValidationError(f"[random.randint] the range [{lo}, {hi}) spans more than "
                                 "2**53 values")
    from .ops import cast, floor
    u = wrap(_nef.random_uniform(_size(size, "random.randint"), _seed(seed), 0.0,
                                 float(hi - lo), float64.name))
    # floor(u) < hi - lo; the min guards the last float64 rounding step below the top.
    k = cast(floor(u), "int64")
    k = k.clip(None, hi - lo - 1) + lo
    return cast(k, t)
