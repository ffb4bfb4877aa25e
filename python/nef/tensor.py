"""The lazy Tensor: a handle to a node of NEF's graph. Every operation adds a node; values are
computed only on .execute()/.eval(), .numpy(), printing, item()/bool()/float() and np.asarray().
A tensor that depends on a placeholder has no value: it prints symbolically and can be built
into a .nef graph.
"""

from __future__ import annotations

import builtins
import operator
from typing import Any, Iterator, Sequence

import numpy as np

from . import _nef
from .dtypes import DType, as_dtype, bfloat16, bool_, float32, int64
from .errors import (NEFIndexError, NEFOverflowError, NEFShapeError, NEFTypeError,
                     NEFUnsupportedError, NEFValidationError)

_SUPPORTED_NP = {"float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "uint16",
                 "int32", "uint32", "int64", "uint64", "bool", "float8_e4m3fn", "float8_e4m3fnuz",
                 "float8_e5m2", "float8_e5m2fnuz"}
# Weak Python ints beyond this are not exact as doubles; they become strong scalars of the
# dtype they take.
_EXACT_INT = 2**53
_INT_RANGE = {t: (int(np.iinfo(t).min), int(np.iinfo(t).max))
              for t in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")}
_COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}


# ---- Python ints: numpy 2's overflow rules --------------------------------------------------

def _int_overflow(value: int, dtype: DType, op: str, where: str = "") -> NEFOverflowError:
    hint = ""
    if value > _INT_RANGE["int64"][1] and dtype.name == "int64":
        hint = (" (pass dtype=nef.uint64 for values up to 2**64-1, or dtype=nef.float64 for an "
                "approximate value)" if value <= _INT_RANGE["uint64"][1] else
                " (pass dtype=nef.float64 for an approximate value)")
    return NEFOverflowError(f"[{op}] Python integer {value}{where} out of bounds for "
                            f"{dtype.name}{hint}")


def _check_int(value: int, dtype: DType, op: str, where: str = "") -> None:
    lo, hi = _INT_RANGE[dtype.name]
    if not lo <= value <= hi:
        raise _int_overflow(value, dtype, op, where)


def _first_big_int(data) -> int | None:
    """The first Python int in nested lists/tuples outside int64, or None."""
    lo, hi = _INT_RANGE["int64"]
    stack = [data]
    while stack:
        d = stack.pop()
        if isinstance(d, (list, tuple)):
            stack.extend(reversed(d))
        elif isinstance(d, int) and not isinstance(d, bool) and not lo <= d <= hi:
            return d
    return None


# ---- conversions ----------------------------------------------------------------------------

def _native_supported():
    out = set()
    for n in _SUPPORTED_NP:
        try:
            out.add(np.dtype(n))
        except TypeError:  # bfloat16 without ml_dtypes
            pass
    return frozenset(out)


# The supported dtypes in native byte order, as dtype objects: a set lookup, where dtype.name
# (computed in Python by numpy) cost microseconds on every run.
_NATIVE_SUPPORTED = _native_supported()


def _prepare_numpy(arr: np.ndarray) -> np.ndarray:
    """Makes a numpy array acceptable to the core: supported dtype, native byte order."""
    dt = arr.dtype
    if dt in _NATIVE_SUPPORTED:
        return arr
    if dt.name not in _SUPPORTED_NP:
        raise NEFTypeError(f"numpy dtype {dt} is not supported by NEF (supported: "
                           + ", ".join(sorted(_SUPPORTED_NP)) + ")")
    if not dt.isnative:
        return arr.astype(dt.newbyteorder("="))
    return arr


def _node_from_numpy(arr: np.ndarray):
    return _nef.from_numpy(_prepare_numpy(arr))


def _asarray(data, dtype=None, op: str = "tensor") -> np.ndarray:
    """np.asarray with NEF's errors: ragged data is a NEFShapeError, a Python int that does not
    fit `dtype` a NEFOverflowError (numpy 2 raises OverflowError there too)."""
    try:
        return np.asarray(data, dtype=dtype)
    except OverflowError:
        big = _first_big_int(data)
        if dtype is not None and np.dtype(dtype).kind in "iu":
            want = as_dtype(dtype)
            bad = big if big is not None else _first_out_of(data, want)
            if bad is not None:
                raise _int_overflow(bad, want, op) from None
        raise NEFOverflowError(f"[{op}] a Python integer does not fit "
                               f"{np.dtype(dtype) if dtype is not None else 'int64'}") from None
    except ValueError as e:
        if "inhomogeneous" in str(e) or "with a sequence" in str(e):
            raise NEFShapeError(f"[{op}] nested sequences of different lengths (ragged data) "
                                f"cannot make a tensor: {e}") from None
        raise NEFValidationError(f"[{op}] cannot make a tensor from this data: {e}") from None
    except TypeError as e:
        raise NEFTypeError(f"[{op}] cannot make a tensor from {type(data).__name__}: {e}") \
            from None


def _first_out_of(data, want: DType) -> int | None:
    lo, hi = _INT_RANGE[want.name]
    stack = [data]
    while stack:
        d = stack.pop()
        if isinstance(d, (list, tuple)):
            stack.extend(reversed(d))
        elif isinstance(d, int) and not isinstance(d, bool) and not lo <= d <= hi:
            return d
    return None


def _contains_float64_array(data) -> bool:
    """True if a (nested) sequence holds float64 numpy arrays/scalars (kept float64 then)."""
    if isinstance(data, (np.ndarray, np.generic)):
        return data.dtype == np.float64
    if isinstance(data, (list, tuple)):
        return builtins.any(_contains_float64_array(d) for d in data)
    return False


def _big_python_int(data, arr: np.ndarray) -> int | None:
    """A Python int in `data` beyond int64, where numpy's inference shows there may be one
    (uint64, object, or float64 for ints that fit neither int64 nor uint64)."""
    kind = arr.dtype.kind
    if (kind == "u" and arr.dtype.itemsize == 8) or kind == "O":
        return _first_big_int(data)
    if kind == "f" and arr.size and not _contains_float64_array(data) and \
            float(np.max(np.abs(arr))) >= 2.0**63:
        return _first_big_int(data)
    return None


def _python_data_array(data, want: DType | None, op: str = "tensor") -> np.ndarray:
    """Python scalars and nested lists -> numpy, with NEF's defaults (Python floats float32,
    ints int64) and numpy 2's rules for Python ints that do not fit (NEFOverflowError)."""
    if want is not None and want is not bfloat16:
        arr = _asarray(data, want.np_dtype, op)
        return arr
    arr = _asarray(data, None, op)
    kind = arr.dtype.kind
    big = _big_python_int(data, arr)
    if big is not None:
        if want is not None:  # bfloat16: a float, approximate like numpy's float casts
            return _asarray(data, np.float64, op).astype(want.np_dtype)
        if arr.dtype == np.uint64:  # numpy's choice for non-negative ints beyond int64
            return arr
        raise _int_overflow(big, int64, op)
    if want is not None:
        return arr.astype(want.np_dtype)
    if arr.dtype == np.float64 and not _contains_float64_array(data):
        arr = arr.astype(np.float32)
    elif kind in "iu" and arr.dtype != np.int64 and not isinstance(data, np.ndarray):
        arr = arr.astype(np.int64)  # Python ints: int64 on every platform
    elif kind in "OUSVc" or kind == "M" or kind == "m":
        raise NEFTypeError(f"[{op}] cannot make an NEF tensor from data of numpy dtype "
                           f"{arr.dtype}")
    return arr


def _make_node(data, dtype=None, op: str = "tensor"):
    """Any array-like -> a core tensor node (zero-copy for numpy arrays of the wanted dtype)."""
    want = as_dtype(dtype) if dtype is not None else None
    if isinstance(data, Tensor):
        if want is None or want == data.dtype:
            return data._t
        return _nef.op("cast", [data._t], {"dtype": want.name})
    if isinstance(data, np.ndarray):
        arr = _prepare_numpy(data)
    elif isinstance(data, np.generic):
        arr = _prepare_numpy(np.asarray(data))
    elif hasattr(data, "__dlpack__") and not isinstance(data, (list, tuple)):
        from .interop import from_dlpack
        return _make_node(from_dlpack(data), dtype, op)
    else:
        return _node_from_numpy(_python_data_array(data, want, op))
    if want is not None and arr.dtype != want.np_dtype:
        arr = arr.astype(want.np_dtype)
    return _node_from_numpy(arr)


def _scalar_operand(x, against: DType | None, op: str):
    """A Python scalar operand as a weak literal (NEP 50: `t + 2.0` keeps t's dtype). `against`
    is the promoted dtype of the op's tensor operands: an int that does not fit the dtype it
    takes raises NEFOverflowError, as numpy 2 does."""
    if isinstance(x, bool):
        # bool is the weakest kind: a strong bool scalar promotes exactly like a weak one.
        return _nef.scalar(1.0 if x else 0.0, "bool")
    if isinstance(x, int):
        if against is not None and against.kind == "f":
            # Weak int and weak float promote alike with a float tensor; a float literal
            # carries values beyond int64 (rounded, as numpy's cast rounds).
            try:
                return _nef.weak_scalar(float(x), True)
            except OverflowError:
                raise NEFOverflowError(f"[{op}] Python integer {x} is too large for "
                                       f"{against.name}") from None
        target = against if against is not None and against.kind in "iu" else int64
        _check_int(x, target, op)
        if -_EXACT_INT <= x <= _EXACT_INT:
            return _nef.weak_scalar(float(x), False)
        # Exact, in the dtype the weak int would take (so promotion is unchanged).
        return _nef.from_numpy(np.asarray(x, dtype=target.np_dtype))
    if isinstance(x, float):
        return _nef.weak_scalar(x, True)
    return _nef.weak_scalar(float(x), True)


def _is_pyscalar(x) -> bool:
    return isinstance(x, (bool, int, float))


def to_node(x, op: str = "op"):
    """Operand conversion for ops: Tensor, Python scalar (weak), numpy or sequence (strong)."""
    if isinstance(x, Tensor):
        return x._t
    if _is_pyscalar(x):
        return _scalar_operand(x, None, op)
    if isinstance(x, (np.ndarray, np.generic, list, tuple)):
        return _make_node(x, op=op)
    if isinstance(x, complex):
        raise NEFTypeError(f"[{op}] NEF has no complex dtypes")
    if hasattr(x, "__dlpack__"):
        return _make_node(x, op=op)
    raise NEFTypeError(f"[{op}] cannot use {type(x).__name__} as an NEF tensor")


_PROMOTED: dict = {}  # (dtype name, dtype name) -> promoted name: graph building is hot


def _promoted(nodes) -> DType | None:
    name = None
    for n in nodes:
        if name is None:
            name = n.dtype
            continue
        key = (name, n.dtype)
        got = _PROMOTED.get(key)
        if got is None:
            got = _PROMOTED[key] = _nef.promote_types(name, n.dtype)
        name = got
    return None if name is None else as_dtype(name)


def nodes_for(*xs, op: str = "op") -> list:
    """Converts op operands. Python scalars are weak and checked against the dtype of the
    tensor operands; if no operand is array-like, the first becomes a strong tensor so that
    the op has a concrete dtype (nef.add(1.0, 2) is float32, like nef.tensor(1.0) + 2)."""
    nodes = []
    scalars = False
    for x in xs:
        if isinstance(x, Tensor):
            nodes.append(x._t)
        elif isinstance(x, (bool, int, float)):
            nodes.append(None)
            scalars = True
        else:
            nodes.append(to_node(x, op))
    if not scalars:
        return nodes
    if builtins.all(n is None for n in nodes):
        nodes[0] = _make_node(xs[0], op=op)
    against = _promoted([n for n in nodes if n is not None])
    return [n if n is not None else _scalar_operand(x, against, op) for n, x in zip(nodes, xs)]


def wrap(node) -> "Tensor":
    t = Tensor.__new__(Tensor)
    t._t = node
    return t


def _index_arg(v, what: str, op: str) -> int:
    try:
        i = operator.index(v)
    except TypeError:
        raise NEFTypeError(f"[{op}] {what} must be an integer, got {type(v).__name__} "
                           f"{v!r}") from None
    if not _INT_RANGE["int64"][0] <= i <= _INT_RANGE["int64"][1]:
        raise NEFOverflowError(f"[{op}] {what} {i} does not fit int64")
    return i


def _seq_arg(v, what: str, op: str) -> list:
    """A list, tuple or other iterable (not a str) as a list; NEFTypeError otherwise."""
    if isinstance(v, (str, bytes, dict)) or v is None:
        raise NEFTypeError(f"[{op}] {what} must be a sequence, got {type(v).__name__}")
    if isinstance(v, Tensor):
        return [v[i] for i in range(len(v))] if v.ndim else [v]
    try:
        return list(v)
    except TypeError:
        raise NEFTypeError(f"[{op}] {what} must be a sequence, got {type(v).__name__}") \
            from None


def _float_arg(v, what: str, op: str) -> float:
    try:
        return builtins.float(v)
    except (TypeError, ValueError):
        raise NEFTypeError(f"[{op}] {what} must be a number, got {type(v).__name__} "
                           f"{v!r}") from None


def _axis_list(axis, op: str = "op"):
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return [_index_arg(a, "axis", op) for a in axis]
    return [_index_arg(axis, "axis", op)]


def _shape_arg(shape, op: str = "op") -> list:
    if isinstance(shape, (list, tuple)):
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = shape[0]
        return [_index_arg(d, "a shape dim", op) for d in shape]
    if isinstance(shape, Tensor):
        return [_index_arg(d, "a shape dim", op) for d in shape.tolist()]
    return [_index_arg(shape, "a shape dim", op)]


def pending_placeholders(t: "Tensor") -> list:
    """Names of the placeholders `t`'s value depends on ([] when it can be computed)."""
    return list(_nef.pending_placeholders(t._t))


def _describe_pending(names) -> str:
    quoted = ", ".join(repr(n) for n in names)
    return f"placeholder{'s' if len(names) > 1 else ''} {quoted}"


def _needs_value(t: "Tensor", what: str) -> None:
    names = pending_placeholders(t)
    if names:
        raise NEFValidationError(
            f"[{what}] the tensor has no value: it depends on {_describe_pending(names)} "
            "(build the graph and run it with inputs: t.build(path); nef.load(path).run({...}))")


# ---- the Tensor -----------------------------------------------------------------------------

class Tensor:
    """A lazy n-dimensional array. ``nef.Tensor(data, dtype)`` is the same as ``nef.tensor``.

    Operations add graph nodes; the value is computed when it is needed (``numpy()``, printing,
    ``item()``, ``np.asarray``) and kept. numpy functions and ufuncs on tensors stay lazy where
    NEF has the op (``np.exp(t)``, ``np.sum(t)``), and tensors exchange memory with numpy,
    PyTorch and JAX through DLPack.
    """

    __slots__ = ("_t", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, data: Any, dtype: Any = None) -> None:
        self._t = _make_node(data, dtype)

    # -- metadata (no execution) --
    @property
    def shape(self) -> tuple:
        """The dims, as a tuple of ints (known without executing)."""
        return self._t.shape

    @property
    def dtype(self) -> DType:
        """The element type (an :class:`nef.DType`, usable wherever numpy takes a dtype)."""
        return as_dtype(self._t.dtype)

    @property
    def ndim(self) -> int:
        """The number of dims."""
        return len(self._t.shape)

    @property
    def size(self) -> int:
        """The number of elements."""
        n = 1
        for d in self._t.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """size * itemsize: the bytes the value takes."""
        return self.size * self.dtype.itemsize

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return self.dtype.itemsize

    @property
    def op(self) -> str:
        """Name of the op that produces this tensor."""
        return self._t.op

    @property
    def is_materialized(self) -> bool:
        """True once the value has been computed (or for tensors made from data)."""
        return self._t.is_materialized

    @property
    def placeholders(self) -> list:
        """Names of the placeholders this tensor's value depends on ([] when it can be
        computed); such a tensor prints symbolically and is built with ``build``."""
        return pending_placeholders(self)

    @property
    def T(self) -> "Tensor":
        """The transpose (dims reversed), a view."""
        return wrap(_nef.op("transpose", [self._t], {}))

    def __len__(self) -> int:
        if not self._t.shape:
            raise NEFTypeError("len() of unsized tensor (rank 0)")
        return self._t.shape[0]

    def __iter__(self) -> Iterator["Tensor"]:
        if not self._t.shape:
            raise NEFTypeError("iteration over a rank-0 tensor")
        for i in range(len(self)):
            yield self[i]

    # -- execution --
    def execute(self) -> "Tensor":
        """Runs the graph computing this tensor (optimize, plan, compile, run); returns self."""
        self._t.execute()
        return self

    def eval(self) -> "Tensor":
        """Same as :meth:`execute`."""
        return self.execute()

    def numpy(self) -> np.ndarray:
        """The value as a read-only numpy array viewing NEF's memory (executes if needed; a
        value on another device is brought to the host first)."""
        return _nef.to_numpy(self._t)

    # -- placement --
    def prefer(self, device: str) -> "Tensor":
        """Asks the planner to compute this tensor on ``device`` (an id such as ``"opencl:0"``, a
        backend such as ``"opencl"``, or a kind such as ``"gpu"``); honored when such a device
        is enabled and supports the op, otherwise the plan says why. ``""`` removes the hint.
        Returns self. Placement is automatic without hints: they are for experiments and
        special cases (see also ``with nef.device(...)``)."""
        self._t.prefer(str(device))
        return self

    @property
    def device_hint(self) -> str:
        """The placement hint given with :meth:`prefer` or ``nef.device`` ("" for none)."""
        return self._t.device_hint

    @property
    def device(self) -> str:
        """Where the computed value lives ("cpu", "opencl:0"), or "" before it is computed.
        Values stay where they were computed until read (``numpy()``, printing, DLPack)."""
        return self._t.device

    # -- numpy and DLPack --
    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        arr = self.numpy()
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            if copy is False:
                raise NEFValidationError("[__array__] converting the dtype needs a copy, but "
                                         "copy=False was given")
            return arr.astype(dtype)
        if copy:
            return arr.copy()
        return arr

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .interop import array_ufunc
        return array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .interop import array_function
        return array_function(func, types, args, kwargs)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """DLPack export (the array API standard's protocol): a capsule viewing the value in
        host memory, computing it first. A value on another device (OpenCL) is brought to the
        host: DLPack has no way to hand out NEF's device buffers."""
        from .interop import dlpack_export
        return dlpack_export(self, stream, max_version, dl_device, copy)

    def __dlpack_device__(self) -> tuple:
        """(device type, id) of the data ``__dlpack__`` exports: always (1, 0), the CPU."""
        return (1, 0)

    # -- values --
    def item(self) -> Any:
        """The single element as a Python bool, int or float."""
        if self.size != 1:
            raise NEFShapeError(f"[item] needs a tensor with one element, got shape {self.shape}")
        v = self.numpy().reshape(-1)[0]
        kind = self.dtype.kind
        if kind == "f":
            return builtins.float(v)
        if kind == "b":
            return builtins.bool(v)
        return builtins.int(v)

    def tolist(self) -> Any:
        """The value as nested Python lists (a Python scalar for rank 0)."""
        arr = self.numpy()
        if self.dtype is bfloat16:
            arr = arr.astype(np.float32)
        return arr.tolist()

    def __bool__(self) -> bool:
        if self.size != 1:
            raise NEFShapeError("the truth value of a tensor with more than one element (or "
                                f"none) is ambiguous (shape {self.shape}): use .any() or .all()")
        return builtins.bool(self.item())

    def __float__(self) -> float:
        return builtins.float(self.item())

    def __int__(self) -> int:
        return builtins.int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu" or self.ndim != 0:
            raise NEFTypeError("only rank-0 integer tensors can be used as an index")
        return builtins.int(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    def __repr__(self) -> str:
        names = pending_placeholders(self)
        if names:
            return _symbolic_repr(self, names)
        arr = self.numpy()
        if self.dtype is bfloat16:
            arr = arr.astype(np.float32)
        body = np.array2string(arr, separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype})"

    def __str__(self) -> str:
        names = pending_placeholders(self)
        if names:
            return _symbolic_repr(self, names)
        arr = self.numpy()
        if self.dtype is bfloat16:
            arr = arr.astype(np.float32)
        return str(arr)

    def __format__(self, spec: str) -> str:
        if not spec:
            return str(self)
        _needs_value(self, "format")
        if self.size != 1:
            raise NEFTypeError(f"[format] format spec {spec!r} needs a single-element tensor, "
                               f"got shape {self.shape}; format the elements of t.tolist()")
        return format(self.item(), spec)

    __hash__ = object.__hash__  # identity, as for other handles (== builds a node)

    def __setitem__(self, key, value) -> None:
        raise NEFTypeError("NEF tensors are immutable; build a new tensor (e.g. nef.where)")

    # -- copies and pickling --
    def copy(self) -> "Tensor":
        """A tensor with its own copy of the value, computed now: later changes to numpy
        arrays this tensor borrows do not reach it. A tensor that depends on placeholders has
        no value yet and gives a new lazy node instead."""
        if pending_placeholders(self):
            return wrap(_nef.op("reshape", [self._t], {"shape": list(self.shape)}))
        return wrap(_nef.from_numpy(np.array(self.numpy(), copy=True)))

    def __copy__(self) -> "Tensor":
        return self.copy()

    def __deepcopy__(self, memo) -> "Tensor":
        return self.copy()

    def __reduce__(self):
        names = pending_placeholders(self)
        if names:
            raise NEFUnsupportedError(
                f"[pickle] cannot pickle a tensor that depends on {_describe_pending(names)}: "
                "pickles store values; save the graph with t.build(path) instead")
        return (_unpickle, (np.array(self.numpy(), copy=True),))

    def build(self, path, embed_plan: bool = False) -> None:
        """Writes a .nef file computing this tensor; its output is named "output".
        `embed_plan=True` also stores the compiled plan (see nef.build)."""
        import os
        self._t.build(os.fspath(path), builtins.bool(embed_plan))

    # -- methods forwarding to ops --
    def reshape(self, *shape) -> "Tensor":
        """numpy reshape: ``t.reshape(2, 3)`` or ``t.reshape((2, 3))``; one -1 allowed."""
        return _ops.reshape(self, _shape_arg(shape, "reshape"))

    def transpose(self, *axes) -> "Tensor":
        """Permutes dims: ``t.transpose(1, 0)``, ``t.transpose((1, 0))``; none reverses them."""
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        return _ops.transpose(self, axes if axes else None)

    def permute(self, *axes) -> "Tensor":
        """Same as :meth:`transpose` (PyTorch's name)."""
        return self.transpose(*axes)

    def flatten(self) -> "Tensor":
        """The elements as one dim (row-major)."""
        return _ops.reshape(self, [-1])

    def ravel(self) -> "Tensor":
        """Same as :meth:`flatten`."""
        return _ops.reshape(self, [-1])

    def astype(self, dtype) -> "Tensor":
        """Cast to `dtype` (numpy astype rules)."""
        return _ops.cast(self, dtype)

    def squeeze(self, axis=None) -> "Tensor":
        """Removes size-1 dims (all, or the given ones)."""
        return _ops.squeeze(self, axis)

    def expand_dims(self, axis) -> "Tensor":
        """Inserts size-1 dims at the given positions."""
        return _ops.expand_dims(self, axis)

    def broadcast_to(self, shape) -> "Tensor":
        """A broadcast view with `shape`."""
        return _ops.broadcast_to(self, shape)

    def sum(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Sum over axis (None = all); see nef.sum."""
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Mean over axis (None = all); see nef.mean."""
        return _ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Maximum over axis (None = all)."""
        return _ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Minimum over axis (None = all)."""
        return _ops.min(self, axis, keepdims)

    def prod(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Product over axis (None = all)."""
        return _ops.prod(self, axis, keepdims)

    def argmax(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Index of the first maximum (int64; axis None = flattened)."""
        return _ops.argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Index of the first minimum (int64; axis None = flattened)."""
        return _ops.argmin(self, axis, keepdims)

    def all(self, axis=None, keepdims: bool = False) -> "Tensor":
        """True where every element along axis is nonzero (bool; see nef.all)."""
        return _ops.all(self, axis, keepdims)

    def any(self, axis=None, keepdims: bool = False) -> "Tensor":
        """True where some element along axis is nonzero (bool; see nef.any)."""
        return _ops.any(self, axis, keepdims)

    def std(self, axis=None, ddof: int = 0, keepdims: bool = False) -> "Tensor":
        """Standard deviation (see nef.std)."""
        return _ops.std(self, axis, ddof=ddof, keepdims=keepdims)

    def var(self, axis=None, ddof: int = 0, keepdims: bool = False) -> "Tensor":
        """Variance (see nef.var)."""
        return _ops.var(self, axis, ddof=ddof, keepdims=keepdims)

    def round(self, decimals: int = 0) -> "Tensor":
        """Rounds half to even to `decimals` places (see nef.round)."""
        return _ops.round(self, decimals)

    def __round__(self, ndigits=None) -> "Tensor":
        return _ops.round(self, 0 if ndigits is None else ndigits)

    def clip(self, lo=None, hi=None) -> "Tensor":
        """min(max(self, lo), hi); a missing bound means none on that side."""
        return _ops.clip(self, lo, hi)

    def abs(self) -> "Tensor":
        """|self|."""
        return _ops.abs(self)

    def exp(self) -> "Tensor":
        """e**self (ints give float32)."""
        return _ops.exp(self)

    def log(self) -> "Tensor":
        """Natural log (ints give float32)."""
        return _ops.log(self)

    def sqrt(self) -> "Tensor":
        """Square root (ints give float32)."""
        return _ops.sqrt(self)

    def softmax(self, dim: int = -1) -> "Tensor":
        """Softmax along `dim`."""
        return _ops.softmax(self, dim)

    # -- operators --
    def __add__(self, o): return _binop("add", self, o)
    def __radd__(self, o): return _binop("add", o, self)
    def __sub__(self, o): return _binop("sub", self, o)
    def __rsub__(self, o): return _binop("sub", o, self)
    def __mul__(self, o): return _binop("mul", self, o)
    def __rmul__(self, o): return _binop("mul", o, self)
    def __truediv__(self, o): return _binop("div", self, o)
    def __rtruediv__(self, o): return _binop("div", o, self)
    def __pow__(self, o): return _binop("pow", self, o)
    def __rpow__(self, o): return _binop("pow", o, self)
    def __mod__(self, o): return _binop("mod", self, o)
    def __rmod__(self, o): return _binop("mod", o, self)
    def __floordiv__(self, o): return _binop("floor_divide", self, o)
    def __rfloordiv__(self, o): return _binop("floor_divide", o, self)
    def __divmod__(self, o): return (_binop("floor_divide", self, o), _binop("mod", self, o))
    def __rdivmod__(self, o): return (_binop("floor_divide", o, self), _binop("mod", o, self))
    def __matmul__(self, o): return _binop("matmul", self, o)
    def __rmatmul__(self, o): return _binop("matmul", o, self)
    def __eq__(self, o): return _binop("equal", self, o)  # type: ignore[override]
    def __ne__(self, o): return _binop("not_equal", self, o)  # type: ignore[override]
    def __lt__(self, o): return _binop("less", self, o)
    def __le__(self, o): return _binop("less_equal", self, o)
    def __gt__(self, o): return _binop("greater", self, o)
    def __ge__(self, o): return _binop("greater_equal", self, o)
    def __and__(self, o): return _logical("logical_and", self, o)
    def __rand__(self, o): return _logical("logical_and", o, self)
    def __or__(self, o): return _logical("logical_or", self, o)
    def __ror__(self, o): return _logical("logical_or", o, self)
    def __xor__(self, o): return _logical("not_equal", self, o)
    def __rxor__(self, o): return _logical("not_equal", o, self)

    def __neg__(self): return wrap(_nef.op("neg", [self._t], {}))
    def __pos__(self): return self
    def __abs__(self): return wrap(_nef.op("abs", [self._t], {}))

    def __invert__(self):
        if self.dtype.kind != "b":
            raise NEFUnsupportedError(f"[invert] bitwise not needs a bool tensor, got {self.dtype}")
        return wrap(_nef.op("logical_not", [self._t], {}))

    def __getitem__(self, key) -> "Tensor":
        return _getitem(self, key)


def _unpickle(arr: np.ndarray) -> Tensor:
    return wrap(_node_from_numpy(arr))


def _symbolic_repr(t: Tensor, names) -> str:
    if t.op == "input" and not t.is_materialized:
        return f"tensor(<placeholder {names[0]!r}>, shape={t.shape}, dtype={t.dtype})"
    return (f"tensor(<lazy {t.op}>, shape={t.shape}, dtype={t.dtype}, depends on "
            f"{_describe_pending(names)})")


# The reflected method Python tries on the right operand when the left one gives up.
_REFLECTED = {"add": "__radd__", "sub": "__rsub__", "mul": "__rmul__", "div": "__rtruediv__",
              "pow": "__rpow__", "mod": "__rmod__", "floor_divide": "__rfloordiv__",
              "matmul": "__rmatmul__", "less": "__gt__", "less_equal": "__ge__",
              "greater": "__lt__", "greater_equal": "__le__", "logical_and": "__rand__",
              "logical_or": "__ror__", "not_equal": "__rxor__"}


def _operand_error(name, a, b, e):
    """NotImplemented when the other operand's type has its own reflected operator (so that
    it runs); otherwise the error is NEF's, naming the op (t + "a", t + object())."""
    if isinstance(a, Tensor) and not isinstance(b, Tensor):
        method = getattr(type(b), _REFLECTED.get(name, ""), None)
        if method is not None and not isinstance(b, (str, bytes, list, tuple, np.ndarray,
                                                     np.generic, bool, int, float, complex)):
            if getattr(object, _REFLECTED.get(name, ""), None) is not method:
                return NotImplemented
    raise e


def _binop(name: str, a, b):
    if type(a) is Tensor and type(b) is Tensor and name != "pow":
        # Two tensors: nothing to convert or check here (the C++ op checks the operands).
        out = Tensor.__new__(Tensor)
        out._t = _nef.op(name, [a._t, b._t])
        return out
    if name in _COMPARISONS:
        out = _compare_big_int(name, a, b)
        if out is not None:
            return out
    try:
        nodes = nodes_for(a, b, op=name)
    except NEFTypeError as e:
        if name in ("equal", "not_equal") and not builtins.any(
                isinstance(x, (np.ndarray, np.generic, list, tuple)) for x in (a, b)):
            return NotImplemented  # t == "a": Python's fallback (identity) answers
        return _operand_error(name, a, b, e)
    out = wrap(_nef.op(name, nodes, {}))
    if name == "pow":
        check_integer_power(out, b)
    return out


def _has_negative(x) -> bool:
    """Whether a known exponent has a negative element: Python ints, numpy data, lists and
    computed tensors (a lazy tensor's values are not known before it runs)."""
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return x < 0
    if isinstance(x, Tensor):
        if not x.is_materialized or x.dtype.kind != "i":
            return False
        x = x.numpy()
    if isinstance(x, (np.ndarray, np.generic, list, tuple)):
        arr = np.asarray(x)
        return arr.dtype.kind == "i" and arr.size > 0 and builtins.bool((arr < 0).any())
    return False


def check_integer_power(result: "Tensor", exponent) -> None:
    """numpy refuses integers to negative integer powers (the answer is not an integer); so
    does NEF wherever the exponent is known when the node is made."""
    if result.dtype.kind in "iu" and _has_negative(exponent):
        raise NEFValidationError(
            f"[pow] integers to negative integer powers are not allowed (result dtype "
            f"{result.dtype}, as in numpy): make the base or the exponent a float")


_MIRROR = {"less": "greater", "less_equal": "greater_equal", "greater": "less",
           "greater_equal": "less_equal", "equal": "equal", "not_equal": "not_equal"}


def _compare_big_int(name: str, a, b):
    """numpy 2 compares integer arrays with Python ints outside their dtype exactly (uint8 <
    -1 is False everywhere) instead of raising: do the same, in int64 where the int fits it and
    as a constant where it fits no NEF integer type."""
    if isinstance(b, int) and not isinstance(b, bool) and isinstance(a, Tensor):
        t, v, op = a, b, name
    elif isinstance(a, int) and not isinstance(a, bool) and isinstance(b, Tensor):
        t, v, op = b, a, _MIRROR[name]
    else:
        return None
    kind = t.dtype.kind
    if kind == "f":
        return None
    dt = t.dtype if kind in "iu" else int64
    lo, hi = _INT_RANGE[dt.name]
    if lo <= v <= hi:
        return None
    i64lo, i64hi = _INT_RANGE["int64"]
    # Unsigned values lie wholly on one side of any int outside their range (and uint64 does
    # not fit int64): a constant answers.
    if i64lo <= v <= i64hi and kind != "u":
        wide = wrap(_nef.op("cast", [t._t], {"dtype": "int64"}))
        return _binop(op, wide, v)
    above = v > hi  # every element is below v
    value = {"less": above, "less_equal": above, "greater": not above,
             "greater_equal": not above, "equal": False, "not_equal": True}[op]
    return wrap(_nef.full(list(t.shape), 1.0 if value else 0.0, "bool"))


def _logical(name, a, b):
    for x in (a, b):
        if isinstance(x, Tensor) and x.dtype.kind != "b":
            raise NEFUnsupportedError(f"[{name}] & | ^ need bool tensors (no bitwise ops on "
                                      f"{x.dtype}); use nef.logical_and / logical_or")
    return _binop(name, a, b)


# ---- indexing -------------------------------------------------------------------------------

def _index_array(k):
    node = to_node(k) if not isinstance(k, list) else _make_node(k)
    dt = node.dtype
    if dt == "bool":
        raise NEFUnsupportedError("[getitem] boolean mask indexing is not supported (its shape "
                                  "depends on the data); use nef.where")
    if as_dtype(dt).kind not in "iu":
        raise NEFIndexError(f"arrays used as indices must be of integer type, got {dt}")
    if dt not in ("int32", "int64"):
        node = _nef.op("cast", [node], {"dtype": "int64"})
    return node


def _getitem(x: Tensor, key) -> Tensor:
    """numpy basic indexing (ints, slices with steps, None, Ellipsis) plus one integer-array
    index, lowered to slice / gather / squeeze / expand_dims nodes (views, not copies)."""
    if not isinstance(key, tuple):
        key = (key,)
    items = []
    for k in key:
        if k is None or k is Ellipsis or isinstance(k, builtins.slice):
            items.append(k)
        elif isinstance(k, (bool, np.bool_)):
            raise NEFUnsupportedError("[getitem] boolean scalar indices are not supported")
        elif isinstance(k, (Tensor, np.ndarray, list)):
            items.append(("array", _index_array(k)))
        else:
            try:
                items.append(operator.index(k))
            except TypeError:
                raise NEFIndexError("only integers, slices (`:`), ellipsis (`...`), None and "
                                    "integer arrays are valid indices, got "
                                    f"{type(k).__name__}") from None
    shape = x.shape
    ndim = len(shape)
    if builtins.sum(1 for k in items if k is Ellipsis) > 1:
        raise NEFIndexError("an index can only have a single ellipsis ('...')")
    consumed = builtins.sum(1 for k in items if k is not None and k is not Ellipsis)
    if consumed > ndim:
        raise NEFIndexError(f"too many indices for tensor: tensor is {ndim}-dimensional, but "
                         f"{consumed} were indexed")
    if Ellipsis in items:
        i = items.index(Ellipsis)
        items[i:i + 1] = [builtins.slice(None)] * (ndim - consumed)

    starts, stops, steps = [0] * ndim, list(shape), [1] * ndim
    int_dims, none_pos, adv = [], [], None
    adv_items = []  # item positions of ints and the array (numpy's "advanced" set)
    dim = out_pos = 0
    for pos, k in enumerate(items):
        if k is None:
            none_pos.append(out_pos)
            out_pos += 1
        elif isinstance(k, builtins.slice):
            starts[dim], stops[dim], steps[dim] = k.indices(shape[dim])
            dim += 1
            out_pos += 1
        elif isinstance(k, tuple):
            if adv is not None:
                raise NEFUnsupportedError("[getitem] only one integer-array index is supported")
            adv = (dim, k[1])
            adv_items.append(pos)
            dim += 1
            out_pos += 1
        else:
            d = shape[dim]
            if not -d <= k < d:
                raise NEFIndexError(f"index {k} is out of bounds for axis {dim} with size {d}")
            k = k + d if k < 0 else k
            starts[dim], stops[dim], steps[dim] = k, k + 1, 1
            int_dims.append(dim)
            adv_items.append(pos)
            dim += 1

    node = x._t
    if starts != [0] * ndim or stops != list(shape) or steps != [1] * ndim:
        node = _nef.op("slice", [node], {"starts": starts, "stops": stops, "steps": steps})
    if adv is None:
        if int_dims:
            node = _nef.op("squeeze", [node], {"axes": int_dims})
        if none_pos:
            node = _nef.op("expand_dims", [node], {"axes": none_pos})
        return wrap(node)

    if none_pos:
        raise NEFUnsupportedError("[getitem] None together with an integer-array index is not "
                                  "supported")
    adim, idx = adv
    node = _nef.op("gather", [node, idx], {"axis": adim})
    extra = len(idx.shape) - 1
    if int_dims:
        node = _nef.op("squeeze", [node],
                       {"axes": [d + extra if d > adim else d for d in int_dims]})
    # numpy puts the indexed dims first when ints/arrays are separated by a slice.
    if int_dims and adv_items != list(range(adv_items[0], adv_items[0] + len(adv_items))):
        first = builtins.sum(1 for d in range(adim) if d not in int_dims)
        rank = len(node.shape)
        k = len(idx.shape)
        moved = list(range(first, first + k))
        perm = moved + [i for i in range(rank) if i not in moved]
        node = _nef.op("transpose", [node], {"perm": perm})
    return wrap(node)


from . import ops as _ops  # noqa: E402  (ops imports Tensor from this module)
