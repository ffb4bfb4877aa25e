"""The lazy Tensor: a handle to a node of NEF's graph. Every operation adds a node; values are
computed only on .execute()/.eval(), .numpy(), printing, item()/bool()/float() and np.asarray().
"""

from __future__ import annotations

import builtins
import operator

import numpy as np

from . import _nef
from .dtypes import _NP_CONVERT, DType, as_dtype, bfloat16, float32, int64
from .errors import NEFTypeError, NEFUnsupportedError

_SUPPORTED_NP = {"float32", "float16", "bfloat16", "float64", "int8", "uint8", "int32", "int64",
                 "bool"}
# Weak Python ints beyond this are not exact as doubles; they become strong int64 scalars.
_EXACT_INT = 2**53


# ---- conversions ----------------------------------------------------------------------------

def _prepare_numpy(arr: np.ndarray) -> np.ndarray:
    """Makes a numpy array acceptable to the core: supported dtype, native byte order."""
    dt = arr.dtype
    if dt.name not in _SUPPORTED_NP:
        native = dt.newbyteorder("=") if dt.byteorder not in ("=", "|") else dt
        if native in _NP_CONVERT:
            return arr.astype(_NP_CONVERT[native])
        raise NEFTypeError(f"numpy dtype {dt} is not supported by NEF (supported: "
                           + ", ".join(sorted(_SUPPORTED_NP)) + ")")
    if not dt.isnative:
        return arr.astype(dt.newbyteorder("="))
    return arr


def _node_from_numpy(arr: np.ndarray):
    return _nef.from_numpy(_prepare_numpy(arr))


def _infer_sequence_array(data) -> np.ndarray:
    """numpy's inference with NEF defaults: Python floats become float32."""
    arr = np.asarray(data)
    if arr.dtype == np.float64 and not _contains_float64_array(data):
        arr = arr.astype(np.float32)
    elif arr.dtype.kind in "iu" and arr.dtype != np.int64 and not isinstance(data, np.ndarray):
        arr = arr.astype(np.int64)  # Python ints: int64 on every platform
    elif arr.dtype.kind in "OUSV" or arr.dtype.kind == "c":
        raise NEFTypeError(f"cannot make an NEF tensor from data of numpy dtype {arr.dtype}")
    return arr


def _contains_float64_array(data) -> bool:
    """True if a (nested) sequence holds float64 numpy arrays/scalars (kept float64 then)."""
    if isinstance(data, (np.ndarray, np.generic)):
        return data.dtype == np.float64
    if isinstance(data, (list, tuple)):
        return builtins.any(_contains_float64_array(d) for d in data)
    return False


def _make_node(data, dtype=None):
    """Any array-like -> a core tensor node (zero-copy for numpy arrays of the wanted dtype)."""
    want = as_dtype(dtype) if dtype is not None else None
    if isinstance(data, Tensor):
        if want is None or want == data.dtype:
            return data._t
        return _nef.op("cast", [data._t], {"dtype": want.name})
    if isinstance(data, np.ndarray):
        arr = _prepare_numpy(data)
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    else:
        arr = _infer_sequence_array(data)
    if want is not None and arr.dtype != want.np_dtype:
        arr = arr.astype(want.np_dtype)
    return _node_from_numpy(arr)


def _scalar_node(x):
    """A Python scalar as a weak literal (NEP 50: `t + 2.0` keeps t's dtype)."""
    if isinstance(x, bool):
        # bool is the weakest kind: a strong bool scalar promotes exactly like a weak one.
        return _nef.scalar(1.0 if x else 0.0, "bool")
    if isinstance(x, int):
        if -_EXACT_INT <= x <= _EXACT_INT:
            return _nef.weak_scalar(float(x), False)
        return _nef.from_numpy(np.asarray(x, dtype=np.int64))
    return _nef.weak_scalar(float(x), True)


def _is_pyscalar(x) -> bool:
    return isinstance(x, (bool, int, float))


def to_node(x):
    """Operand conversion for ops: Tensor, Python scalar (weak), numpy or sequence (strong)."""
    if isinstance(x, Tensor):
        return x._t
    if _is_pyscalar(x):
        return _scalar_node(x)
    if isinstance(x, (np.ndarray, np.generic, list, tuple)):
        return _make_node(x)
    if isinstance(x, complex):
        raise NEFTypeError("NEF has no complex dtypes")
    raise TypeError(f"cannot use {type(x).__name__} as an NEF tensor")


def nodes_for(*xs):
    """Converts op operands; if none is array-like, the first becomes a strong tensor so that
    the op has a concrete dtype (nef.add(1.0, 2) is float32, like nef.tensor(1.0) + 2)."""
    if xs and builtins.all(_is_pyscalar(x) for x in xs):
        return [_make_node(xs[0])] + [to_node(x) for x in xs[1:]]
    return [to_node(x) for x in xs]


def wrap(node) -> "Tensor":
    t = Tensor.__new__(Tensor)
    t._t = node
    return t


def _axis_list(axis):
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return [operator.index(a) for a in axis]
    return [operator.index(axis)]


def _shape_arg(shape) -> list:
    if isinstance(shape, (list, tuple)):
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = shape[0]
        return [operator.index(d) for d in shape]
    return [operator.index(shape)]


# ---- the Tensor -----------------------------------------------------------------------------

class Tensor:
    """A lazy n-dimensional array. ``nef.Tensor(data, dtype)`` is the same as ``nef.tensor``."""

    __slots__ = ("_t", "__weakref__")
    # numpy defers to our reflected operators (ndarray + Tensor stays lazy) ...
    __array_ufunc__ = None
    __array_priority__ = 1000

    def __init__(self, data, dtype=None) -> None:
        self._t = _make_node(data, dtype)

    # -- metadata (no execution) --
    @property
    def shape(self) -> tuple:
        return self._t.shape

    @property
    def dtype(self) -> DType:
        return as_dtype(self._t.dtype)

    @property
    def ndim(self) -> int:
        return len(self._t.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self._t.shape:
            n *= d
        return n

    @property
    def op(self) -> str:
        """Name of the op that produces this tensor."""
        return self._t.op

    @property
    def is_materialized(self) -> bool:
        return self._t.is_materialized

    @property
    def T(self) -> "Tensor":
        return wrap(_nef.op("transpose", [self._t], {}))

    def __len__(self) -> int:
        if not self._t.shape:
            raise TypeError("len() of unsized tensor (rank 0)")
        return self._t.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # -- execution --
    def execute(self) -> "Tensor":
        """Runs the graph computing this tensor (optimize, plan, compile, run); returns self."""
        self._t.execute()
        return self

    def eval(self) -> "Tensor":
        return self.execute()

    def numpy(self) -> np.ndarray:
        """The value as a read-only numpy array viewing NEF's memory (executes if needed)."""
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
        Values stay where they were computed until read (``numpy()``, printing)."""
        return self._t.device

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            if copy is False:
                raise ValueError("converting the dtype needs a copy, but copy=False was given")
            return arr.astype(dtype)
        if copy:
            return arr.copy()
        return arr

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        v = self.numpy().reshape(-1)[0]
        kind = self.dtype.kind
        if kind == "f":
            return builtins.float(v)
        if kind == "b":
            return builtins.bool(v)
        return builtins.int(v)

    def tolist(self):
        arr = self.numpy()
        if self.dtype is bfloat16:
            arr = arr.astype(np.float32)
        return arr.tolist()

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError("the truth value of a tensor with more than one element (or none) "
                             f"is ambiguous (shape {self.shape})")
        return builtins.bool(self.item())

    def __float__(self) -> float:
        return builtins.float(self.item())

    def __int__(self) -> int:
        return builtins.int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu" or self.ndim != 0:
            raise TypeError("only rank-0 integer tensors can be used as an index")
        return builtins.int(self.item())

    def __repr__(self) -> str:
        if self.op == "input" and not self.is_materialized:
            return f"tensor(<placeholder>, shape={self.shape}, dtype={self.dtype})"
        arr = self.numpy()
        if self.dtype is bfloat16:
            arr = arr.astype(np.float32)
        body = np.array2string(arr, separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype})"

    def __str__(self) -> str:
        if self.op == "input" and not self.is_materialized:
            return repr(self)
        arr = self.numpy()
        if self.dtype is bfloat16:
            arr = arr.astype(np.float32)
        return str(arr)

    __hash__ = object.__hash__  # identity, as for other handles (== builds a node)

    def __setitem__(self, key, value):
        raise TypeError("NEF tensors are immutable; build a new tensor (e.g. nef.where)")

    def build(self, path, embed_plan=False) -> None:
        """Writes a .nef file computing this tensor; its output is named "output".
        `embed_plan=True` also stores the compiled plan (see nef.build)."""
        import os
        self._t.build(os.fspath(path), bool(embed_plan))

    # -- methods forwarding to ops --
    def reshape(self, *shape) -> "Tensor":
        return _ops.reshape(self, _shape_arg(shape))

    def transpose(self, *axes) -> "Tensor":
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        return _ops.transpose(self, axes if axes else None)

    def permute(self, *axes) -> "Tensor":
        return self.transpose(*axes)

    def flatten(self) -> "Tensor":
        return _ops.reshape(self, [-1])

    def astype(self, dtype) -> "Tensor":
        return _ops.cast(self, dtype)

    def squeeze(self, axis=None) -> "Tensor":
        return _ops.squeeze(self, axis)

    def expand_dims(self, axis) -> "Tensor":
        return _ops.expand_dims(self, axis)

    def broadcast_to(self, shape) -> "Tensor":
        return _ops.broadcast_to(self, shape)

    def sum(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.min(self, axis, keepdims)

    def prod(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.prod(self, axis, keepdims)

    def argmax(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims=False) -> "Tensor":
        return _ops.argmin(self, axis, keepdims)

    def clip(self, lo=None, hi=None) -> "Tensor":
        return _ops.clip(self, lo, hi)

    def abs(self) -> "Tensor":
        return _ops.abs(self)

    def exp(self) -> "Tensor":
        return _ops.exp(self)

    def log(self) -> "Tensor":
        return _ops.log(self)

    def sqrt(self) -> "Tensor":
        return _ops.sqrt(self)

    def softmax(self, dim=-1) -> "Tensor":
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
    def __matmul__(self, o): return _binop("matmul", self, o)
    def __rmatmul__(self, o): return _binop("matmul", o, self)
    def __floordiv__(self, o): return _floordiv(self, o)
    def __rfloordiv__(self, o): return _floordiv(o, self)
    def __eq__(self, o): return _binop("equal", self, o)
    def __ne__(self, o): return _binop("not_equal", self, o)
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


def _binop(name, a, b):
    try:
        nodes = [to_node(a), to_node(b)]
    except TypeError as e:
        if isinstance(e, NEFTypeError):
            raise
        return NotImplemented
    return wrap(_nef.op(name, nodes, {}))


def _logical(name, a, b):
    for x in (a, b):
        if isinstance(x, Tensor) and x.dtype.kind != "b":
            raise NEFUnsupportedError(f"[{name}] & | ^ need bool tensors (no bitwise ops on "
                                      f"{x.dtype}); use nef.logical_and / logical_or")
    return _binop(name, a, b)


def _floordiv(a, b):
    r = _binop("div", a, b)
    if r is NotImplemented:
        return r
    ta = a.dtype if isinstance(a, Tensor) else None
    tb = b.dtype if isinstance(b, Tensor) else None
    if (ta is not None and ta.kind != "f") and (tb is None or tb.kind != "f"):
        raise NEFUnsupportedError("[floor_divide] integer // is not supported yet (use nef.div "
                                  "and nef.floor on floats)")
    return wrap(_nef.op("floor", [r._t], {}))


# ---- indexing -------------------------------------------------------------------------------

def _index_array(k):
    node = to_node(k) if not isinstance(k, list) else _make_node(k)
    dt = node.dtype
    if dt == "bool":
        raise NEFUnsupportedError("[getitem] boolean mask indexing is not supported (its shape "
                                  "depends on the data); use nef.where")
    if dt not in ("int32", "int64", "int8", "uint8"):
        raise IndexError(f"arrays used as indices must be of integer type, got {dt}")
    if dt in ("int8", "uint8"):
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
                raise IndexError("only integers, slices (`:`), ellipsis (`...`), None and integer "
                                 f"arrays are valid indices, got {type(k).__name__}") from None
    shape = x.shape
    ndim = len(shape)
    if builtins.sum(1 for k in items if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = builtins.sum(1 for k in items if k is not None and k is not Ellipsis)
    if consumed > ndim:
        raise IndexError(f"too many indices for tensor: tensor is {ndim}-dimensional, but "
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
                raise IndexError(f"index {k} is out of bounds for axis {dim} with size {d}")
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
