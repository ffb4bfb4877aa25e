"""numpy's protocols and DLPack.

``__array_ufunc__`` and ``__array_function__`` keep numpy code lazy where NEF has the op:
``np.exp(t)``, ``np.add(t, 1)``, ``np.sum(t, axis=0)``, ``np.where(c, t, 0)``,
``np.concatenate([t, u])`` return NEF tensors. Anything else (a ufunc or function NEF does not
have, an argument NEF does not take) computes the tensors and lets numpy do it on their values,
returning numpy's result; a tensor that depends on a placeholder has no value, so that is a
NEFUnsupportedError naming the function.

DLPack (``__dlpack__``, ``__dlpack_device__``, :func:`from_dlpack`) exchanges memory with
numpy, PyTorch, JAX and any array-API library without copies. NEF exports host memory: a value
an OpenCL device computed is read to the host first (DLPack cannot hand out NEF's OpenCL
buffers), so ``__dlpack_device__`` is always the CPU. Imports must be host memory too.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from . import _nef
from .errors import (NEFBufferError, NEFDeviceError, NEFError, NEFTypeError,
                     NEFUnsupportedError, NEFValidationError)
from .tensor import Tensor, _describe_pending, pending_placeholders, wrap

_DL_CPU = 1


class _Fallback(Exception):
    """A handler cannot do this call lazily: numpy does it on the values."""


# ---- DLPack ---------------------------------------------------------------------------------

def dlpack_export(t: Tensor, stream, max_version, dl_device, copy):
    if stream is not None:
        raise NEFBufferError(f"[dlpack] NEF exports host memory, which takes no stream; got "
                             f"stream={stream!r}")
    if dl_device is not None and tuple(dl_device) != (_DL_CPU, 0):
        raise NEFBufferError(f"[dlpack] NEF exports to the CPU (DLPack device (1, 0)) only; "
                             f"dl_device={tuple(dl_device)!r} was asked for")
    names = pending_placeholders(t)
    if names:
        raise NEFValidationError(f"[dlpack] the tensor has no value: it depends on "
                                 f"{_describe_pending(names)}")
    if copy is False and t.device not in ("", "cpu"):
        raise NEFBufferError(f"[dlpack] the value lives on {t.device}: exporting it needs a "
                             "copy to the host, but copy=False was given")
    versioned = max_version is not None and int(tuple(max_version)[0]) >= 1
    return _nef.dlpack_export(t._t, versioned, builtins.bool(copy))


def from_dlpack(x: Any, *, device: Any = None, copy: bool | None = None) -> Tensor:
    """A tensor sharing the memory of any DLPack producer (a numpy array, a PyTorch or JAX
    CPU tensor, or a capsule), without copying; the tensor keeps the producer's data alive.
    Host memory only: a tensor on a GPU raises NEFDeviceError (copy it to the CPU first).
    ``copy=True`` takes a copy of the values instead. dtypes NEF lacks (complex, float8, ...)
    raise NEFTypeError."""
    if device not in (None, "cpu"):
        raise NEFDeviceError(f"[from_dlpack] NEF imports to the CPU; device={device!r}")
    if isinstance(x, Tensor):
        return x.copy() if copy else x
    if type(x).__name__ == "PyCapsule":
        capsule = x
    else:
        if not hasattr(x, "__dlpack__"):
            raise NEFTypeError(f"[from_dlpack] {type(x).__name__} does not support DLPack "
                               "(no __dlpack__ method)")
        if hasattr(x, "__dlpack_device__"):
            dev = tuple(int(v) for v in x.__dlpack_device__())
            if dev[0] != _DL_CPU:
                # Ask for host memory: producers that can move it will (DLPack 2023.12).
                try:
                    capsule = x.__dlpack__(max_version=(1, 0), dl_device=(_DL_CPU, 0), copy=copy)
                except (TypeError, BufferError, ValueError, NotImplementedError):
                    raise NEFDeviceError(
                        f"[from_dlpack] the array lives on DLPack device {dev}; NEF imports "
                        "host (CPU) memory only: copy it to the CPU first (PyTorch: x.cpu(), "
                        "JAX: jax.device_get(x))") from None
                return wrap(_nef.dlpack_import(capsule))
        kwargs = {"max_version": (1, 0)}
        if copy is not None:
            kwargs["copy"] = copy
        try:
            capsule = x.__dlpack__(**kwargs)
        except TypeError:
            capsule = x.__dlpack__()  # producers older than DLPack 1.0 take no keywords
    t = wrap(_nef.dlpack_import(capsule))
    return t.copy() if copy else t


# ---- numpy protocols ------------------------------------------------------------------------

def _pending_of(values) -> list:
    names = []
    for v in values:
        if isinstance(v, Tensor):
            for n in pending_placeholders(v):
                if n not in names:
                    names.append(n)
        elif isinstance(v, (list, tuple)):
            for n in _pending_of(v):
                if n not in names:
                    names.append(n)
        elif isinstance(v, dict):
            for n in _pending_of(list(v.values())):
                if n not in names:
                    names.append(n)
    return names


def _materialize(v):
    if isinstance(v, Tensor):
        return v.numpy()
    if isinstance(v, list):
        return [_materialize(e) for e in v]
    if isinstance(v, tuple):
        return tuple(_materialize(e) for e in v)
    if isinstance(v, dict):
        return {k: _materialize(e) for k, e in v.items()}
    return v


def _on_values(name: str, fn, args, kwargs):
    """Runs a numpy callable on the tensors' values (numpy's result, numpy's rules)."""
    names = _pending_of(list(args) + list(kwargs.values()))
    if names:
        raise NEFUnsupportedError(
            f"[numpy] {name} has no lazy NEF equivalent for these arguments and needs values, "
            f"but the tensors depend on {_describe_pending(names)}")
    out = kwargs.get("out")
    if isinstance(out, Tensor) or (isinstance(out, tuple) and
                                   builtins.any(isinstance(o, Tensor) for o in out)):
        raise NEFTypeError(f"[numpy] {name}: out= cannot be a tensor (NEF tensors are "
                           "immutable); pass a numpy array")
    return fn(*_materialize(args), **_materialize(kwargs))


def _into_out(result: Tensor, out):
    """Writes a lazy result into numpy's out= array (computing it)."""
    target = out[0] if isinstance(out, tuple) else out
    if isinstance(target, Tensor):
        raise NEFTypeError("[numpy] out= cannot be a tensor (NEF tensors are immutable)")
    np.copyto(target, result.numpy(), casting="same_kind")
    return target


def _ops():
    from . import ops
    return ops


# ufunc name -> lazy implementation, for ufunc(...) calls (method "__call__").
def _ufunc_table() -> dict:
    o = _ops()

    def rint(x):
        return o.round(x)

    def positive(x):
        return x if isinstance(x, Tensor) else o._tensor(x, "positive")

    def logical_not(x):
        return o.logical_not(x)

    def invert(x):
        x = o._tensor(x, "invert")
        if x.dtype.kind != "b":
            raise _Fallback
        return o.logical_not(x)

    def reciprocal(x):
        x = o._tensor(x, "reciprocal")
        if x.dtype.kind != "f":
            raise _Fallback  # numpy's integer reciprocal is integer division
        return o.reciprocal(x)

    def bitwise(fn):
        def f(a, b):
            if builtins.any(isinstance(v, Tensor) and v.dtype.kind != "b" for v in (a, b)):
                raise _Fallback
            return fn(a, b)
        return f

    return {
        "add": o.add, "subtract": o.sub, "multiply": o.mul, "divide": o.div,
        "true_divide": o.div, "power": o.pow, "remainder": o.mod,
        "floor_divide": o.floor_divide, "maximum": o.maximum, "minimum": o.minimum,
        "equal": o.equal, "not_equal": o.not_equal, "less": o.less, "less_equal": o.less_equal,
        "greater": o.greater, "greater_equal": o.greater_equal, "logical_and": o.logical_and,
        "logical_or": o.logical_or, "logical_xor": o.logical_xor, "logical_not": logical_not,
        "matmul": o.matmul, "negative": o.neg, "positive": positive, "absolute": o.abs,
        "fabs": o.abs, "sign": o.sign, "exp": o.exp, "log": o.log, "sqrt": o.sqrt,
        "sin": o.sin, "cos": o.cos, "tanh": o.tanh, "floor": o.floor, "ceil": o.ceil,
        "rint": rint, "square": o.square, "reciprocal": reciprocal, "isnan": o.isnan,
        "isinf": o.isinf, "isfinite": o.isfinite, "invert": invert,
        "bitwise_and": bitwise(o.logical_and), "bitwise_or": bitwise(o.logical_or),
        "bitwise_xor": bitwise(o.logical_xor),
    }


_UFUNCS: dict = {}
# ufunc.reduce -> the reduction it is.
_REDUCE = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
           "logical_and": "all", "logical_or": "any"}


def _cast_inputs(inputs, dtype):
    o = _ops()
    return [o.cast(v, dtype) if isinstance(v, (Tensor, np.ndarray, list, tuple)) else v
            for v in inputs]


def array_ufunc(ufunc, method: str, inputs, kwargs):
    if not _UFUNCS:
        _UFUNCS.update(_ufunc_table())
    name = ufunc.__name__
    out = kwargs.pop("out", None)
    extra = {k: v for k, v in kwargs.items() if k not in ("casting", "order", "subok")}
    full_kwargs = dict(kwargs, **({"out": out} if out is not None else {}))
    try:
        if method == "__call__" and name in _UFUNCS:
            where = extra.pop("where", True)
            dtype = extra.pop("dtype", None)
            if where is not True or extra:
                raise _Fallback
            args = _cast_inputs(inputs, dtype) if dtype is not None else list(inputs)
            result = _UFUNCS[name](*args)
        elif method == "reduce" and name in _REDUCE:
            axis = extra.pop("axis", 0)
            keepdims = extra.pop("keepdims", False)
            dtype = extra.pop("dtype", None)
            if extra or len(inputs) != 1:
                raise _Fallback
            x = inputs[0] if dtype is None else _ops().cast(inputs[0], dtype)
            result = getattr(_ops(), _REDUCE[name])(x, axis, keepdims)
        else:
            raise _Fallback
    except _Fallback:
        return _on_values(f"numpy.{name}" + ("" if method == "__call__" else f".{method}"),
                          getattr(ufunc, method), inputs, full_kwargs)
    if out is not None:
        return _into_out(result, out)
    return result


# ---- __array_function__ ---------------------------------------------------------------------

_NO_VALUE = np._NoValue if hasattr(np, "_NoValue") else object()


def _no(kwargs, *names):
    """Raises _Fallback if a keyword NEF does not implement carries a real value."""
    for n in names:
        v = kwargs.get(n, _NO_VALUE)
        if v is not _NO_VALUE and v is not None and not (n == "where" and v is True):
            raise _Fallback


def _finish(result, kwargs):
    out = kwargs.get("out")
    return _into_out(result, out) if out is not None else result


def _reduction(name):
    def handler(a, axis=None, dtype=None, out=None, keepdims=False, **kw):
        _no(kw, "initial", "where")
        x = a if dtype is None else _ops().cast(a, dtype)
        return _finish(getattr(_ops(), name)(x, axis, builtins.bool(keepdims)), {"out": out})
    return handler


def _minmax(name):
    def handler(a, axis=None, out=None, keepdims=False, **kw):
        _no(kw, "initial", "where")
        return _finish(getattr(_ops(), name)(a, axis, builtins.bool(keepdims)), {"out": out})
    return handler


def _arg(name):
    def handler(a, axis=None, out=None, *, keepdims=False):
        return _finish(getattr(_ops(), name)(a, axis, builtins.bool(keepdims)), {"out": out})
    return handler


def _allany(name):
    def handler(a, axis=None, out=None, keepdims=False, **kw):
        _no(kw, "where")
        return _finish(getattr(_ops(), name)(a, axis, builtins.bool(keepdims)), {"out": out})
    return handler


def _moment(name):
    def handler(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        _no(kw, "where", "mean", "correction")
        x = a if dtype is None else _ops().cast(a, dtype)
        return _finish(getattr(_ops(), name)(x, axis, ddof=ddof, keepdims=builtins.bool(keepdims)),
                       {"out": out})
    return handler


def _where(condition, *xy):
    if len(xy) != 2:
        raise _Fallback  # np.where(cond) is nonzero(): its shape depends on the values
    return _ops().where(condition, xy[0], xy[1])


def _concatenate(arrays, axis=0, out=None, **kw):
    _no(kw, "dtype")
    o = _ops()
    arrays = list(arrays)
    if axis is None:
        arrays = [o.reshape(a, [-1]) for a in arrays]
        axis = 0
    return _finish(o.concat(arrays, axis), {"out": out})


def _stack(arrays, axis=0, out=None, **kw):
    _no(kw, "dtype")
    return _finish(_ops().stack(list(arrays), axis), {"out": out})


def _reshape(a, *args, **kw):
    shape = args[0] if args else kw.pop("shape", kw.pop("newshape", None))
    if kw.pop("order", "C") != "C" or kw.get("copy") is not None or shape is None:
        raise _Fallback
    return _ops().reshape(a, shape)


def _transpose(a, axes=None):
    return _ops().transpose(a, axes)


def _clip(a, a_min=_NO_VALUE, a_max=_NO_VALUE, out=None, **kw):
    lo = kw.pop("min", None) if a_min is _NO_VALUE else a_min
    hi = kw.pop("max", None) if a_max is _NO_VALUE else a_max
    if kw:
        raise _Fallback
    return _finish(_ops().clip(a, lo, hi), {"out": out})


def _take(a, indices, axis=None, out=None, mode="raise"):
    if mode != "raise":
        raise _Fallback
    return _finish(_ops().take(a, indices, axis), {"out": out})


def _round(a, decimals=0, out=None):
    return _finish(_ops().round(a, decimals), {"out": out})


def _isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _ops().isclose(a, b, rtol, atol, equal_nan)


def _allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return _ops().allclose(a, b, rtol, atol, equal_nan)


def _like(kind):
    def handler(a, *args, dtype=None, order="K", subok=True, shape=None, **kw):
        from . import creation
        if kw.get("device") not in (None, "cpu"):
            raise _Fallback
        x = a if isinstance(a, Tensor) else creation.tensor(a)
        sh = x.shape if shape is None else shape
        dt = x.dtype if dtype is None else dtype
        if kind == "full":
            fill = args[0] if args else kw["fill_value"]
            if len(args) > 1:
                dt = args[1]
            return creation.full(sh, fill, dt)
        if args:
            dt = args[0]
        return (creation.ones if kind == "ones" else creation.zeros)(sh, dt)
    return handler


def _dot(a, b, out=None):
    if np.ndim(a) > 2 or np.ndim(b) > 2 or np.ndim(a) == 0 or np.ndim(b) == 0:
        raise _Fallback  # numpy's dot differs from matmul there
    return _finish(_ops().matmul(a, b), {"out": out})


def _size(a, axis=None):
    shape = np.shape(a) if not isinstance(a, Tensor) else a.shape
    return int(np.prod(shape)) if axis is None else shape[axis]


def _astype(x, dtype, /, *, copy=True, **kw):
    return _ops().cast(x, dtype)


def _function_table() -> dict:
    o = _ops()
    table = {
        np.sum: _reduction("sum"), np.prod: _reduction("prod"), np.mean: _reduction("mean"),
        np.max: _minmax("max"), np.min: _minmax("min"), np.amax: _minmax("max"),
        np.amin: _minmax("min"), np.argmax: _arg("argmax"), np.argmin: _arg("argmin"),
        np.all: _allany("all"), np.any: _allany("any"), np.std: _moment("std"),
        np.var: _moment("var"), np.where: _where, np.concatenate: _concatenate,
        np.stack: _stack, np.reshape: _reshape, np.transpose: _transpose, np.clip: _clip,
        np.squeeze: lambda a, axis=None: o.squeeze(a, axis),
        np.expand_dims: lambda a, axis: o.expand_dims(a, axis),
        np.broadcast_to: lambda array, shape, subok=False: o.broadcast_to(array, shape),
        np.take: _take, np.split: lambda ary, ios, axis=0: o.split(ary, ios, axis),
        np.round: _round, np.around: _round, np.isclose: _isclose, np.allclose: _allclose,
        np.zeros_like: _like("zeros"), np.ones_like: _like("ones"),
        np.empty_like: _like("zeros"), np.full_like: _like("full"),
        np.copy: lambda a, order="K", subok=False: o.copy(a),
        np.shape: lambda a: a.shape if isinstance(a, Tensor) else np.shape(a),
        np.ndim: lambda a: a.ndim if isinstance(a, Tensor) else np.ndim(a),
        np.size: _size, np.dot: _dot, np.ravel: lambda a, order="C": o.reshape(a, [-1]),
        np.matmul: lambda a, b, **kw: o.matmul(a, b),
    }
    if hasattr(np, "astype"):
        table[np.astype] = _astype
    if hasattr(np, "concat"):
        table[np.concat] = _concatenate
    if hasattr(np, "permute_dims"):
        table[np.permute_dims] = _transpose
    return table


_FUNCTIONS: dict = {}


def array_function(func, types, args, kwargs):
    if not builtins.all(issubclass(t, (Tensor, np.ndarray)) for t in types):
        return NotImplemented
    if not _FUNCTIONS:
        _FUNCTIONS.update(_function_table())
    handler = _FUNCTIONS.get(func)
    if handler is not None:
        try:
            return handler(*args, **kwargs)
        except _Fallback:
            pass
        except TypeError as e:  # an argument numpy takes but the handler's signature does not
            if isinstance(e, NEFError) or "argument" not in str(e):
                raise
    name = f"numpy.{getattr(func, '__name__', func)}"
    return _on_values(name, func, args, kwargs)
