"""Runtime statistics and configuration."""

from __future__ import annotations

import contextlib
import json

from . import _nef

_config = {"threads": None, "devices": None}


def stats() -> dict:
    """Counters since start or the last reset_stats(): graphs_executed, nodes_executed,
    kernel_cache_hits/misses, plan_cache_hits/misses, ..."""
    return dict(_nef.stats())


def reset_stats() -> None:
    _nef.reset_stats()


def config(threads=None, devices=None) -> dict:
    """Sets runtime options and returns the current ones. threads: CPU kernel threads (0 = all
    cores). devices: names the planner may use: device ids ("cpu", "opencl:0"), backends
    ("opencl") or kinds ("gpu"); they win over the NEF_DEVICES environment variable; an empty
    list clears the override. The CPU always remains the fallback for ops no enabled device
    supports."""
    if threads is not None:
        _nef.set_num_threads(int(threads))
        _config["threads"] = int(threads)
    if devices is not None:
        names = [devices] if isinstance(devices, str) else [str(d) for d in devices]
        _nef.set_devices(names)  # NEFDeviceError for unknown names; [] clears the override
        _config["devices"] = names or None
    return {"threads": _nef.num_threads(), "devices": _config["devices"]}


@contextlib.contextmanager
def device(name: str):
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
