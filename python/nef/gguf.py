"""GGUF files (ggml's model container, versions 2 and 3): metadata and tensors, read through mmap.

    import nef
    f = nef.gguf.open("model.gguf")
    f.metadata["general.architecture"]        # 'llama'
    info = f.tensors["token_embd.weight"]     # .type 'q4_1', .shape (49152, 576) (numpy order)
    w = f.numpy("token_embd.weight")          # float32, dequantized
    b = f.raw("token_embd.weight")            # uint8 bytes as stored, zero-copy
    t = f.tensor("token_embd.weight")         # nef.Tensor over the mapping, zero-copy

Shapes are numpy order (GGUF's ne reversed). Quantized tensors are uint8 arrays of shape
``shape[:-1] + (bytes per row,)``. Every malformed file raises :class:`nef.NEFFormatError`.
See docs/gguf.md.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np

from . import _nef
from .tensor import Tensor, wrap

__all__ = ["open", "parse", "quantize", "dequantize", "GGUFFile", "TensorInfo"]


class TensorInfo:
    """One tensor's entry: ``name``, ``type`` ('f32', 'q4_k', ...), ``ggml_type`` (the id),
    ``shape`` (numpy order), ``offset`` (from the start of the data section), ``nbytes`` and
    ``supported`` (False for types NEF does not read: listed, but only ``raw`` works)."""

    __slots__ = ("name", "type", "ggml_type", "shape", "offset", "nbytes", "supported")

    def __init__(self, name: str, type: str, ggml_type: int, shape: tuple, offset: int,
                 nbytes: int, supported: bool) -> None:
        self.name = name
        self.type = type
        self.ggml_type = ggml_type
        self.shape = shape
        self.offset = offset
        self.nbytes = nbytes
        self.supported = supported

    def __repr__(self) -> str:
        return (f"TensorInfo({self.name!r}, type={self.type!r}, shape={self.shape}, "
                f"offset={self.offset}, nbytes={self.nbytes})")


class GGUFFile:
    """An open GGUF file. The mapping stays alive while the file object or any array or tensor
    taken from it lives."""

    def __init__(self, f: _nef.GgufFile, path: str | None = None) -> None:
        self._f = f
        self.path = path
        self._metadata: dict[str, Any] | None = None
        self.tensors: dict[str, TensorInfo] = {
            t[0]: TensorInfo(*t) for t in f.tensor_infos()
        }

    @property
    def version(self) -> int:
        """The GGUF version (2 or 3)."""
        return self._f.version

    @property
    def alignment(self) -> int:
        """``general.alignment`` (32 when the file does not set it)."""
        return self._f.alignment

    @property
    def data_offset(self) -> int:
        """The file offset where the tensor data section starts."""
        return self._f.data_offset

    @property
    def metadata(self) -> dict[str, Any]:
        """Every key/value in file order: ints, floats, bools, strs, and lists for arrays."""
        if self._metadata is None:
            self._metadata = self._f.metadata()
        return self._metadata

    def value_type(self, key: str) -> tuple[str, str | None]:
        """The stored type of a key: ('uint32', None), ('array', 'string'), ..."""
        return self._f.value_type(key)

    def raw(self, name: str) -> Any:
        """The tensor's bytes as a read-only uint8 numpy view (any type, no copy), shaped
        ``shape[:-1] + (bytes per row,)``."""
        return self._f.raw(name)

    def numpy(self, name: str) -> Any:
        """The tensor's values: float32 (converted, or dequantized for quantized types) for
        float and quantized types; a read-only zero-copy view for integer types."""
        info = self._info(name)
        if info.type in ("i8", "i16", "i32", "i64"):
            return self._f.view(name)
        return self._f.dequantize(name)

    def tensor(self, name: str) -> Tensor:
        """A :class:`nef.Tensor` over the file's bytes (no copy): the tensor's dtype and shape for
        plain types, uint8 ``shape[:-1] + (bytes per row,)`` for quantized ones."""
        return wrap(self._f.tensor(name))

    def _info(self, name: str) -> TensorInfo:
        info = self.tensors.get(name)
        if info is None:
            self._f.raw(name)  # raises NEFFormatError naming the tensor
        return info

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __repr__(self) -> str:
        where = f"{self.path!r}, " if self.path else ""
        return (f"GGUFFile({where}version={self.version}, {len(self._f.keys)} keys, "
                f"{len(self.tensors)} tensors)")


def open(path: str | os.PathLike) -> GGUFFile:  # noqa: A001  (nef.gguf.open, like io.open)
    """Opens and validates a GGUF file (mmap; tensor data is not read until used)."""
    p = os.fspath(path)
    return GGUFFile(_nef.GgufFile.open(p), p)


def parse(data: bytes) -> GGUFFile:
    """A GGUF image from memory (copied once); for tests and in-memory files."""
    return GGUFFile(_nef.GgufFile.parse(bytes(data)))


def quantize(x: Any, type: str) -> Any:  # noqa: A002
    """Quantizes the last axis of a float array (converted to float32) into ``type`` blocks
    ('q4_0', 'q4_1' or 'q8_0'; round to nearest as ggml's reference quantizers): uint8 of shape
    ``x.shape[:-1] + (bytes per row,)``, the layout of a GGUF tensor."""
    a = np.asarray(x)
    if a.dtype.kind == "f":
        a = np.ascontiguousarray(a, dtype=np.float32)
    return _nef.quantize(a, str(type))


def dequantize(raw: Any, type: str) -> Any:  # noqa: A002
    """float32 values of uint8 blocks of ``type`` ('q4_0', ..., 'q6_k') along the last axis."""
    return _nef.dequantize(np.asarray(raw), str(type))
