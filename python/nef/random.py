"""Counter-based random tensors: the same (shape, seed, parameters) always give the same values,
on every backend. Without a seed, each call takes the next seed of a global sequence that
``nef.random.seed(n)`` makes reproducible."""

from __future__ import annotations

import os
import threading

from . import _nef
from .dtypes import as_dtype, float32
from .tensor import Tensor, _shape_arg, wrap

_lock = threading.Lock()
_state = {"base": int.from_bytes(os.urandom(8), "little"), "counter": 0}
_MASK = (1 << 64) - 1


def seed(n: int) -> None:
    """Makes the seeds of later seedless calls reproducible."""
    with _lock:
        _state["base"] = int(n) & _MASK
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
    return _next_seed() if s is None else int(s) & _MASK


def normal(shape, seed=None, mean: float = 0.0, std: float = 1.0, dtype=float32) -> Tensor:
    """Normal(mean, std) samples of a float dtype."""
    return wrap(_nef.random_normal(_shape_arg(shape), _seed(seed), float(mean), float(std),
                                   as_dtype(dtype).name))


def uniform(shape, seed=None, low: float = 0.0, high: float = 1.0, dtype=float32) -> Tensor:
    """Uniform [low, high) samples of a float dtype."""
    return wrap(_nef.random_uniform(_shape_arg(shape), _seed(seed), float(low), float(high),
                                    as_dtype(dtype).name))


randn = normal
rand = uniform
