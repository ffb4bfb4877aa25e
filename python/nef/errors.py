"""NEF exception classes.

The native core raises these by error code (include/nef/error.h); each class subclasses the
builtin that Python code would expect (a shape mismatch is a ValueError, a bad dtype a TypeError).
"""


class NEFError(Exception):
    """Base class of every error NEF raises."""


class NEFGraphCycleError(NEFError):
    """The graph has a cycle (raised when a graph is constructed or loaded)."""


class NEFValidationError(NEFError, ValueError):
    """An attribute, graph or input binding is invalid."""


class NEFShapeError(NEFError, ValueError):
    """Shapes do not fit the op (message names the op, e.g. "[matmul] ...", and the shapes)."""


class NEFTypeError(NEFError, TypeError):
    """A dtype is not valid for the op."""


class NEFUnsupportedError(NEFError):
    """The op, dtype or feature is not supported (yet)."""


class NEFFormatError(NEFError):
    """A .nef (or other) file is malformed; the message says where."""


class NEFOutOfMemoryError(NEFError, MemoryError):
    """Memory could not be allocated."""


class NEFDeviceError(NEFError):
    """A device failed."""


class NEFCompileError(NEFError):
    """A kernel failed to compile."""


class NEFCancelledError(NEFError):
    """A run was cancelled before it finished."""


class NEFOverflowError(NEFError, OverflowError):
    """A Python int does not fit the dtype it must take (numpy 2 raises OverflowError too):
    ``nef.tensor([1], dtype="int8") + 1000``, ``nef.tensor([2**64])``."""


class NEFIndexError(NEFError, IndexError):
    """An index is out of range or not a valid index (``t[5]`` on a dim of size 3)."""


class NEFImportError(NEFUnsupportedError, ImportError):
    """An optional package a feature needs is not installed (the message says which)."""


class NEFBufferError(NEFError, BufferError):
    """A DLPack export cannot be made as asked (another device, ``copy=False`` when a copy is
    needed, a stream on the CPU)."""


__all__ = [
    "NEFError",
    "NEFGraphCycleError",
    "NEFValidationError",
    "NEFShapeError",
    "NEFTypeError",
    "NEFUnsupportedError",
    "NEFFormatError",
    "NEFOutOfMemoryError",
    "NEFDeviceError",
    "NEFCompileError",
    "NEFCancelledError",
    "NEFOverflowError",
    "NEFIndexError",
    "NEFBufferError",
    "NEFImportError",
]
