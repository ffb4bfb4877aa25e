"""NEF element types as objects whose str() is the name (``str(nef.float32) == "float32"``)."""

from __future__ import annotations

import builtins
from typing import Any

import ml_dtypes
import numpy as np

from .errors import NEFTypeError


class DType:
    """An NEF element type. Usable wherever numpy takes a dtype (``np.zeros(2,
    dtype=nef.float32)``, ``arr.astype(nef.bfloat16)``: its ``dtype`` attribute is the numpy
    dtype). Compares equal to its name and to the matching numpy dtype and type; its hash is
    the numpy dtype's, so NEF and numpy dtypes are interchangeable as dict keys and in sets."""

    __slots__ = ("name", "itemsize", "kind", "np_dtype")

    def __init__(self, name: str, itemsize: int, kind: str, np_dtype) -> None:
        self.name = name
        self.itemsize = itemsize
        self.kind = kind  # "f" float, "i" signed int, "u" unsigned int, "b" bool, "s" float8
        self.np_dtype = np.dtype(np_dtype)

    @property
    def dtype(self) -> np.dtype:
        """The numpy dtype (what numpy reads when a DType is passed as a dtype)."""
        return self.np_dtype

    @property
    def is_floating(self) -> bool:
        """True for float16, bfloat16, float32 and float64."""
        return self.kind == "f"

    @property
    def is_integer(self) -> bool:
        """True for the signed and unsigned integer types (not bool)."""
        return self.kind in ("i", "u")

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"nef.{self.name}"

    def __eq__(self, other) -> bool:
        if isinstance(other, DType):
            return other is self
        if other is None:  # np.dtype(None) would mean float64
            return False
        try:
            return as_dtype(other) is self
        except (TypeError, ValueError):
            return NotImplemented

    def __hash__(self) -> int:
        # The numpy dtype's hash: equal DTypes and numpy dtypes hash alike. (Like np.dtype
        # itself, a DType also equals its name, which hashes as a str.)
        return hash(self.np_dtype)

    def __reduce__(self):
        return (as_dtype, (self.name,))


float32 = DType("float32", 4, "f", np.float32)
float16 = DType("float16", 2, "f", np.float16)
bfloat16 = DType("bfloat16", 2, "f", ml_dtypes.bfloat16)
float64 = DType("float64", 8, "f", np.float64)
int8 = DType("int8", 1, "i", np.int8)
uint8 = DType("uint8", 1, "u", np.uint8)
int32 = DType("int32", 4, "i", np.int32)
int64 = DType("int64", 8, "i", np.int64)
bool_ = DType("bool", 1, "b", np.bool_)
int16 = DType("int16", 2, "i", np.int16)
uint16 = DType("uint16", 2, "u", np.uint16)
uint32 = DType("uint32", 4, "u", np.uint32)
uint64 = DType("uint64", 8, "u", np.uint64)
# Storage-only float8 types (ONNX's FLOAT8*): cast, bitcast and layout ops only.
float8_e4m3fn = DType("float8_e4m3fn", 1, "s", ml_dtypes.float8_e4m3fn)
float8_e4m3fnuz = DType("float8_e4m3fnuz", 1, "s", ml_dtypes.float8_e4m3fnuz)
float8_e5m2 = DType("float8_e5m2", 1, "s", ml_dtypes.float8_e5m2)
float8_e5m2fnuz = DType("float8_e5m2fnuz", 1, "s", ml_dtypes.float8_e5m2fnuz)

# In the core's numbering (nef::DType, nef_dtype in the C API).
ALL_DTYPES = (float32, float16, bfloat16, float64, int8, uint8, int32, int64, bool_, int16, uint16,
              uint32, uint64, float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz)
_BY_NAME = {t.name: t for t in ALL_DTYPES}
_BY_NAME["bool_"] = bool_
# Python's own types: NEF's defaults (float -> float32, as for float literals in lists).
_BY_PYTYPE = {builtins.float: float32, builtins.int: int64, builtins.bool: bool_}



def as_dtype(x) -> DType:
    """Converts a DType, a name ("float32"), a numpy dtype/type or a Python type to a DType."""
    if isinstance(x, DType):
        return x
    if isinstance(x, str):
        t = _BY_NAME.get(x)
        if t is None:
            raise NEFTypeError(f"unknown dtype '{x}'")
        return t
    if isinstance(x, type) and x in _BY_PYTYPE:
        return _BY_PYTYPE[x]
    try:
        npd = np.dtype(x)
    except (TypeError, ValueError):
        raise NEFTypeError(f"cannot interpret {x!r} as an NEF dtype") from None
    t = _BY_NAME.get(npd.name)
    if t is None:
        raise NEFTypeError(f"numpy dtype {npd} has no NEF equivalent")
    return t


def to_numpy_dtype(x) -> np.dtype:
    """The numpy dtype of anything :func:`as_dtype` takes."""
    return as_dtype(x).np_dtype


def finfo(dtype) -> Any:
    """numpy-style finfo/iinfo for an NEF dtype (bfloat16 through ml_dtypes)."""
    t = as_dtype(dtype)
    if t is bfloat16 or t.kind == "s":
        return ml_dtypes.finfo(t.np_dtype)
    if t.is_floating:
        return np.finfo(t.np_dtype)
    return np.iinfo(t.np_dtype)
