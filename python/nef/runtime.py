"""Runtime statistics and configuration."""

from __future__ import annotations

import contextlib
import json
from typing import Iterator

import numbers

from . import _nef
from .errors import NEFTypeError, NEFValidationError

_config = {"threads": None, "devices": None}
# More CPU kernel threads than this is a mistake, not a setting (each is an OpenMP thread).
MAX_THREADS = 1024


def stats() -> dict:
    """Counters since start or the last reset_stats(): graphs_executed, nodes_executed,
    kernel_cache_hits/misses, plan_cache_hits/misses, ..."""
    return dict(_nef.stats())


def reset_stats() -> None:
    """Zeroes the counters nef.stats() reports."""
    _nef.reset_stats()


def config(threads: int | None = None, devices=None) -> dict:
    """Sets runtime options and returns the current ones. threads: CPU kernel threads, an int
    from 0 (all cores) to MAX_THREADS (1024). devices: names the planner may use: device ids
    ("cpu", "opencl:0"), backends ("opencl") or kinds ("gpu"); they win over the NEF_DEVICES
    environment variable; an empty list clears the override. The CPU always remains the fallback
    for ops no enabled device supports."""
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
            raise NEFTypeError(f"[config] threads must be an integer (0 = all cores), got "
                               f"{type(threads).__name__} {threads!r}")
        n = int(threads)
        if not 0 <= n <= MAX_THREADS:
            raise NEFValidationError(f"[config] threads must be between 0 (all cores) and "
                                     f"{MAX_THREADS}, got {n}")
    if devices is not None:
        if isinstance(devices, str):
            names = [devices]
        else:
            try:
                names = list(devices)
            except TypeError:
                raise NEFTypeError("[config] devices must be a name or a list of names, got "
                                   f"{type(devices).__name__}") from None
            if not all(isinstance(d, str) for d in names):
                raise NEFTypeError(f"[config] devices must be names (str), got {names!r}")
    if threads is not None:
        _nef.set_num_threads(n)
        _config["threads"] = n
    if devices is not None:
        _nef.set_devices(names)  # NEFDeviceError for unknown names; [] clears the override
        _config["devices"] = names or None
    return {"threads": _nef.num_threads(), "devices": _config["devices"]}


@contextlib.contextmanager
def device(name: str) -> Iterator[None]:
    """``with nef.device("opencl"):`` gives every op created inside the block a placement hint
    (see :meth:`Tensor.prefer`). Blocks nest; the hint applies on the calling thread."""
    _nef.push_device_scope(str(name))
    try:
        yield
    finally:
        _nef.pop_device_scope()


def devices() -> dict:
    """The hardware NEF detected (CPU model, cores, caches, SIMD features, memory, devices)
    and which devices the planner may use ("enabled"), as `nef devices --json` prints it."""
    return json.loads(_nef.devices_json())
