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
]
