"""Runtime statistics and configuration."""

from __future__ import annotations

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
    cores). devices: accepted and stored for device selection (the CPU is used for now)."""
    if threads is not None:
        _nef.set_num_threads(int(threads))
        _config["threads"] = int(threads)
    if devices is not None:
        _config["devices"] = list(devices) if not isinstance(devices, str) else [devices]
    return {"threads": _nef.num_threads(), "devices": _config["devices"]}
