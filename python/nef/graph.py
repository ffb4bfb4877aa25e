"""Graph files: build a .nef from lazy tensors, load it back and run it on new inputs."""

from __future__ import annotations

import json
import os

import numpy as np

from . import _nef
from .dtypes import as_dtype
from .tensor import Tensor, _prepare_numpy, to_node


def build(path, outputs, embed_plan=False) -> None:
    """Writes a .nef file computing `outputs`: a dict {name: tensor}, a single tensor (output
    named "output") or a list of tensors (named "output0", "output1", ...). Placeholders become
    the graph's named inputs; data tensors become constants. `embed_plan=True` also stores the
    compiled plan in the file so loading it skips the optimizer (docs/format.md)."""
    if isinstance(outputs, Tensor):
        pairs = [("output", outputs)]
    elif isinstance(outputs, dict):
        pairs = list(outputs.items())
    else:
        pairs = [(f"output{i}", t) for i, t in enumerate(outputs)]
    _nef.build(os.fspath(path), [(str(k), to_node(v)) for k, v in pairs], bool(embed_plan))


def evaluate(*tensors) -> None:
    """Executes several tensors as one graph (shared subgraphs run once)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    _nef.evaluate([t._t for t in tensors])


class Graph:
    """A loaded, validated .nef graph. ``g.run({"x": array})`` returns ``{name: numpy array}``."""

    def __init__(self, loaded) -> None:
        self._g = loaded

    @property
    def inputs(self) -> list:
        return list(self._g.inputs)

    @property
    def outputs(self) -> list:
        return list(self._g.outputs)

    @property
    def input_types(self) -> dict:
        """{name: (shape, dtype)} of the graph's inputs. In an imported model, a symbolic dim
        that is still unbound is its name (a str, e.g. ``("batch", 128)``)."""
        out = {}
        for n, (shape, dt), names in zip(self._g.inputs, self._g.input_types,
                                         self._g.input_dim_names):
            shape = tuple(names[i] if d < 0 else d for i, d in enumerate(shape))
            out[n] = (shape, as_dtype(dt))
        return out

    def build(self, path, embed_plan=False) -> None:
        """Writes the graph as a .nef file (an imported model's symbolic dims must be bound:
        ``nef.from_onnx(path, dims={"batch": 1})``)."""
        self._g.save(os.fspath(path), bool(embed_plan))

    def run(self, inputs=None, **kwargs) -> dict:
        """Runs with named inputs (dict and/or keywords). Lists and scalars are converted to the
        input's dtype; numpy arrays of another dtype of the same kind are cast (float64 ->
        float32), other mismatches raise NEFTypeError."""
        return dict(self._g.run(self._feed(inputs, kwargs)))

    __call__ = run

    def profile(self, inputs=None, repeat=1, warmup=1, **kwargs) -> "Profile":
        """Runs the graph ``warmup`` times unprofiled (the first run compiles and touches the
        memory), then ``repeat`` times with every kernel timed. Returns a :class:`Profile`: a
        list with one dict per step that runs in execution order (the kernels of :meth:`plan`:
        kernels and transfers between devices, op ``copy``; views are metadata and run nothing):
        ``step``, ``node``, ``op`` (the kernel's op: ``matmul_epilogue``,
        ``fused_elementwise``, ``attention``, ...), ``ops`` (the ops it covers, as ``plan()``'s
        ``nodes``), ``kernel``, ``device``, ``shape``, ``dtype``, ``seconds`` (median over the
        repeats), ``min_seconds`` and ``predicted_seconds`` (the placement cost model's
        estimate). ``Profile.summary()`` aggregates by op; ``run_seconds`` is the median of
        whole executions (kernels plus input checks and output allocation) and
        ``predicted_seconds`` the cost model's estimate of one.
        Inputs as for :meth:`run`."""
        repeat, warmup = int(repeat), int(warmup)
        if repeat < 1 or warmup < 0:
            raise ValueError(f"profile: repeat {repeat} must be >= 1 and warmup {warmup} >= 0")
        feed = self._feed(inputs, kwargs)
        for _ in range(warmup):
            self._g.run(feed)
        runs = [self._g.run_profiled(feed)[1] for _ in range(repeat)]
        first = runs[0]["kernels"]
        for r in runs[1:]:
            # One plan per input binding, so every run has the same kernels; a mismatch would
            # mean the plan changed between runs and medians per position would be wrong.
            if [(k["step"], k["kernel"]) for k in r["kernels"]] != \
                    [(k["step"], k["kernel"]) for k in first]:
                raise RuntimeError("profile: the plan changed between repeats")
        out = Profile()
        for i, k in enumerate(first):
            times = [r["kernels"][i]["seconds"] for r in runs]
            e = dict(k)
            e["shape"] = tuple(e["shape"])
            e["seconds"] = float(np.median(times))
            e["min_seconds"] = float(min(times))
            out.append(e)
        out.repeat = repeat
        out.run_seconds = float(np.median([r["seconds"] for r in runs]))
        out.predicted_seconds = float(runs[0]["predicted_seconds"])
        return out

    def _feed(self, inputs, kwargs) -> dict:
        feed = dict(inputs or {})
        feed.update(kwargs)
        types = self.input_types
        arrays = {}
        for name, value in feed.items():
            if isinstance(value, Tensor):
                value = value.numpy()
            want = types[name][1].np_dtype if name in types else None
            if isinstance(value, np.ndarray):
                arr = _prepare_numpy(value)
                if want is not None and arr.dtype != want and \
                        np.can_cast(arr.dtype, want, casting="same_kind"):
                    arr = arr.astype(want)
            else:
                arr = np.asarray(value, dtype=want)
            arrays[str(name)] = arr
        return arrays

    def plan(self) -> dict:
        """The compiled plan (compiling it if needed, through the plan cache) as a dict, the
        same as ``nef inspect FILE --plan --json``: ``"kernels"`` in execution order, each with
        ``op``, ``kernel``, ``device``, ``shape``, ``dtype`` and ``nodes`` (the ops it covers: a
        fused_elementwise kernel lists its program's ops, other kernels their own op), and
        ``"memory"`` (``planned_peak_bytes``, ``naive_bytes``, ``arenas``, per-value
        ``values`` with offsets and lifetimes)."""
        return json.loads(self._g.describe_plan_json())

    @property
    def memory(self) -> dict:
        """{"planned_peak_bytes", "naive_bytes"}: the arena bytes the memory plan needs for the
        intermediates, against the sum of their sizes without reuse."""
        m = self.plan()["memory"]
        return {"planned_peak_bytes": int(m["planned_peak_bytes"]),
                "naive_bytes": int(m["naive_bytes"])}

    def describe_memory(self) -> str:
        """The memory plan as text (what ``nef inspect FILE --memory`` prints)."""
        return self._g.describe_memory()

    def __repr__(self) -> str:
        return f"nef.Graph(inputs={self.inputs}, outputs={self.outputs})"


class Profile(list):
    """Per-kernel timings from :meth:`Graph.profile` (a list of dicts, execution order), with
    ``repeat``, ``run_seconds``, ``predicted_seconds`` and :meth:`summary`."""

    repeat = 0
    run_seconds = 0.0
    predicted_seconds = 0.0

    @property
    def kernel_seconds(self) -> float:
        """Sum of the kernels' median times."""
        return float(sum(k["seconds"] for k in self))

    def summary(self) -> list:
        """Time per op kind: see :func:`profile_summary`."""
        return profile_summary(self)


def profile_summary(profile) -> list:
    """Aggregates a profile (a list of kernel dicts with ``op`` and ``seconds``, such as
    :meth:`Graph.profile` returns) by the kernels' op: a list of ``{"op", "kernels",
    "seconds", "percent"}``, slowest first, where ``percent`` is the share of the summed
    kernel time (the shares add up to 100; all 0 when no kernel took measurable time)."""
    by_op = {}
    for k in profile:
        e = by_op.setdefault(k["op"], {"op": k["op"], "kernels": 0, "seconds": 0.0})
        e["kernels"] += 1
        e["seconds"] += float(k["seconds"])
    total = sum(e["seconds"] for e in by_op.values())
    rows = sorted(by_op.values(), key=lambda e: (-e["seconds"], e["op"]))
    for e in rows:
        e["percent"] = 100.0 * e["seconds"] / total if total > 0 else 0.0
    return rows


def load(path) -> Graph:
    """Loads and fully re-validates a .nef file (NEFFormatError if malformed)."""
    return Graph(_nef.LoadedGraph.load(os.fspath(path)))


def from_onnx(model, dims=None) -> Graph:
    """Imports an ONNX model (default domain, opsets 7 to 27): a path, the model's bytes, or an
    ``onnx.ModelProto``. Returns the same graph object as :func:`load`.

    ``dims`` binds symbolic input dims, e.g. ``{"batch": 1, "sequence": 128}``; dims left
    unbound are bound by each ``run`` from its inputs' shapes (a mismatch between inputs is a
    NEFShapeError). Unsupported ops, attributes or dtypes raise NEFUnsupportedError naming the
    op, the node and the opset; malformed files raise NEFFormatError. External data files are
    read relative to the model's path."""
    dims = {str(k): int(v) for k, v in (dims or {}).items()}
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    if isinstance(model, (bytes, bytearray, memoryview)):
        return Graph(_nef.LoadedGraph.from_onnx_bytes(bytes(model), dims))
    return Graph(_nef.LoadedGraph.from_onnx(os.fspath(model), dims))
