"""Graph files: build a .nef from lazy tensors, load it back and run it on new inputs."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from . import _nef
from .dtypes import DType, as_dtype
from .errors import NEFError, NEFOverflowError, NEFTypeError, NEFValidationError
from .tensor import Tensor, _asarray, _big_python_int, _index_arg, _prepare_numpy, to_node

# Mantissa bits (with the implicit one) of NEF's float dtypes: ints up to 2**bits are exact.
_MANTISSA = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}
# Float dtypes each float dtype converts into without loss.
_WIDER_FLOAT = {"float16": {"float32", "float64"}, "bfloat16": {"float32", "float64"},
                "float32": {"float64"}, "float64": set()}
_KIND_RANK = {"b": 0, "i": 1, "u": 1, "f": 2}


def _lossless(src: np.dtype, dst: DType) -> bool:
    """Whether every value of numpy dtype `src` is exactly a value of `dst`."""
    name = src.name
    if name == dst.name:
        return True
    if src.kind == "b":
        return True
    if name in _WIDER_FLOAT:
        return dst.name in _WIDER_FLOAT[name]
    if src.kind in "iu":
        info = np.iinfo(src)
        if dst.kind in "iu":
            lo, hi = np.iinfo(dst.np_dtype).min, np.iinfo(dst.np_dtype).max
            return lo <= info.min and info.max <= hi
        if dst.kind == "f":
            return max(abs(int(info.min)), int(info.max)) <= 2 ** _MANTISSA[dst.name]
    return False


def _input_array(name: str, value, want: DType | None) -> np.ndarray:
    """A run input as a numpy array of the input's dtype, converting only without loss."""
    if isinstance(value, Tensor):
        value = value.numpy()
    if isinstance(value, (np.ndarray, np.generic)) or hasattr(value, "__array_interface__") \
            or hasattr(value, "__dlpack__"):
        if isinstance(value, np.ndarray) or hasattr(value, "__array_interface__") or \
                not hasattr(value, "__dlpack__"):
            arr = np.asarray(value)
        else:
            arr = np.from_dlpack(value)
        if want is None or arr.dtype == want.np_dtype:
            return _prepare_numpy(arr)
        if arr.dtype.kind in "OUSVcmM" and arr.dtype.name != "bfloat16":
            raise NEFTypeError(f"[run] input '{name}' expects {want.name}, got a numpy array "
                               f"of dtype {arr.dtype}")
        if not _lossless(arr.dtype, want):
            raise NEFTypeError(
                f"[run] input '{name}' expects {want.name}, got {arr.dtype.name}: converting "
                "could lose values, and run converts only without loss; convert it first "
                f"(e.g. x.astype(np.{want.name}))" + ("" if want.name != "bfloat16" else
                                                      " with ml_dtypes.bfloat16"))
        return arr.astype(want.np_dtype)
    # Python scalars and (nested) lists: weakly typed, as numpy treats Python scalars.
    data = _asarray(value, None, "run")
    kind = data.dtype.kind
    if want is None:
        return _prepare_numpy(data)
    big = _big_python_int(value, data)
    if kind not in _KIND_RANK and big is None:
        raise NEFTypeError(f"[run] input '{name}' expects {want.name}, got Python data of "
                           f"numpy dtype {data.dtype}")
    if big is not None:
        got = "int"  # Python ints beyond int64
    else:
        got = {"b": "bool", "i": "int", "u": "int", "f": "float"}[kind]
    if _KIND_RANK["i" if got == "int" else got[0]] > _KIND_RANK[want.kind]:
        raise NEFTypeError(f"[run] input '{name}' expects {want.name}, got Python {got}s: "
                           "converting would lose values (run converts only without loss)")
    if got == "int" and want.kind in "iu":
        try:
            return np.asarray(value, dtype=want.np_dtype)
        except OverflowError:
            raise NEFOverflowError(f"[run] input '{name}': a Python integer is out of bounds "
                                   f"for {want.name}") from None
    if want.name == "bfloat16":
        return np.asarray(value, dtype=np.float64).astype(want.np_dtype)
    return _asarray(value, want.np_dtype, "run")


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


def evaluate(*tensors: Any) -> None:
    """Executes several tensors as one graph (shared subgraphs run once): ``nef.evaluate(a,
    b)`` or ``nef.evaluate([a, b])``."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    for t in tensors:
        if not isinstance(t, Tensor):
            raise NEFTypeError(f"[evaluate] expects tensors, got {type(t).__name__}")
    _nef.evaluate([t._t for t in tensors])


class Graph:
    """A loaded, validated .nef graph. ``g.run({"x": array})`` returns ``{name: numpy array}``."""

    def __init__(self, loaded) -> None:
        self._g = loaded

    @property
    def inputs(self) -> list:
        """The graph's input names, in the order they are declared."""
        return list(self._g.inputs)

    @property
    def outputs(self) -> list:
        """The graph's output names (the order of ONNX Runtime-style list results)."""
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

    def quantize(self, scheme: str = "int8") -> "Graph":
        """A copy whose matmuls by constant float matrices run on int8 weights: per-channel
        weights and per-row activations (quantized at run time) through an exact integer
        product with 32 or more activation rows, Q8_0 blocks through qmatmul with fewer
        (docs/llm.md, "INT8 for float models"); `quantize_report` on the result says
        how many were rewritten and the weight bytes before and after. `nef quantize` on the
        command line."""
        native, report = self._g.quantize(str(scheme))
        g = Graph(native)
        g.quantize_report = dict(report)
        return g

    def build(self, path, embed_plan=False) -> None:
        """Writes the graph as a .nef file (an imported model's symbolic dims must be bound:
        ``nef.from_onnx(path, dims={"batch": 1})``)."""
        self._g.save(os.fspath(path), bool(embed_plan))

    def run(self, *args, **kwargs) -> Any:
        """Runs the graph and returns its outputs as writable numpy arrays.

        Forms: ``g.run({"x": a})`` or ``g.run(x=a)`` -> ``{name: array}``; ``g.run(a)`` for a
        graph with one input -> the same dict; ONNX Runtime's ``g.run(None, {"x": a})`` -> a
        list of all outputs in ``g.outputs`` order, and ``g.run(["y"], {"x": a})`` -> the named
        outputs as a list.

        Inputs convert only without loss: a numpy array (or tensor) of the input's dtype is
        used as it is (zero-copy), one whose every value the input's dtype holds exactly
        (int32 -> int64, float16 -> float32, uint8 -> float32) is converted; Python scalars and
        lists take the input's dtype when their kind (bool < int < float) fits it and their
        ints its range. Anything else (float64 -> float32, int64 -> float32, 1.7 -> int64) is a
        NEFTypeError naming the input, its dtype and the expected one; wrong shapes raise
        NEFShapeError, missing or unknown names NEFValidationError."""
        names, feed = self._run_args(args, kwargs)
        out = dict(self._g.run(self._feed(feed)))
        if names is None:
            return out
        return [out[n] for n in names]

    __call__ = run

    def _run_args(self, args, kwargs):
        """(output names for a list result or None for a dict, the feeds) of a run call."""
        forms = ("g.run({name: array}), g.run(name=array), g.run(array) for a graph with one "
                 "input, or ONNX Runtime's g.run(None, {name: array})")
        if len(args) > 3:
            raise NEFValidationError(f"[run] too many arguments; the forms are {forms}")
        if len(args) == 3:
            if args[2] is not None:
                raise NEFValidationError("[run] the third argument is ONNX Runtime's "
                                         "run_options, which NEF does not have: pass None")
            args = args[:2]
        if len(args) == 2:
            names, feed = args
            if names is None:
                names = self.outputs
            else:
                if isinstance(names, str) or not isinstance(names, (list, tuple)) or \
                        not all(isinstance(n, str) for n in names):
                    raise NEFValidationError(
                        "[run] the first of two arguments is ONNX Runtime's output_names: None "
                        f"or a list of output names ({self.outputs}), got {names!r}")
                unknown = [n for n in names if n not in self.outputs]
                if unknown:
                    raise NEFValidationError(f"[run] unknown output name(s) {unknown}; the "
                                             f"graph's outputs are {self.outputs}")
                names = list(names)
            return names, self._feed_dict(feed, kwargs, forms)
        if len(args) == 1:
            return None, self._feed_dict(args[0], kwargs, forms)
        return None, dict(kwargs)

    def _feed_dict(self, feed, kwargs, forms) -> dict:
        if feed is None:
            out = {}
        elif isinstance(feed, dict):
            out = dict(feed)
        elif isinstance(feed, (list, tuple)) and feed and all(isinstance(v, str) for v in feed):
            raise NEFValidationError(f"[run] {feed!r} looks like ONNX Runtime's output names "
                                     f"without inputs: g.run({feed!r}, {{name: array}})")
        elif len(self.inputs) == 1:
            out = {self.inputs[0]: feed}
        else:
            raise NEFValidationError(
                f"[run] a single value needs a graph with one input; this one has "
                f"{len(self.inputs)} ({self.inputs}): pass {{name: array}}. Forms: {forms}")
        dup = set(out) & set(kwargs)
        if dup:
            raise NEFValidationError(f"[run] input(s) {sorted(dup)} given twice")
        out.update(kwargs)
        return out

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
        repeat = _index_arg(repeat, "repeat", "profile")
        warmup = _index_arg(warmup, "warmup", "profile")
        if repeat < 1 or warmup < 0:
            raise NEFValidationError(f"[profile] repeat {repeat} must be >= 1 and warmup "
                                     f"{warmup} >= 0")
        feed = self._feed(self._run_args((inputs,) if inputs is not None else (), kwargs)[1])
        for _ in range(warmup):
            self._g.run(feed)
        runs = [self._g.run_profiled(feed)[1] for _ in range(repeat)]
        first = runs[0]["kernels"]
        for r in runs[1:]:
            # One plan per input binding, so every run has the same kernels; a mismatch would
            # mean the plan changed between runs and medians per position would be wrong.
            if [(k["step"], k["kernel"]) for k in r["kernels"]] != \
                    [(k["step"], k["kernel"]) for k in first]:
                raise NEFError("[profile] the plan changed between repeats")
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

    def _feed(self, feed: dict) -> dict:
        # The inputs' dtypes, read once: a loaded graph never changes (rebuilding input_types
        # on every run was most of a small graph's run time).
        dtypes = self.__dict__.get("_dtypes")
        if dtypes is None:
            dtypes = {n: t[1] for n, t in self.input_types.items()}
            self._dtypes = dtypes
        arrays = {}
        for name, value in feed.items():
            name = str(name)
            arrays[name] = _input_array(name, value, dtypes.get(name))
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
