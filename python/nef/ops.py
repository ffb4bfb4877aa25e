"""Every NEF op as a numpy-like function (docs/ops.md is the contract). All of them are lazy:
they add a node to the graph and return a Tensor; nothing runs until a value is needed.
"""

from __future__ import annotations

import builtins
import operator

from . import _nef
from .dtypes import as_dtype
from .errors import NEFShapeError, NEFValidationError
from .tensor import Tensor, _axis_list, _shape_arg, nodes_for, to_node, wrap


def _op(name, inputs, **attrs) -> Tensor:
    return wrap(_nef.op(name, nodes_for(*inputs), attrs))


# ---- elementwise ----------------------------------------------------------------------------

def _unary(name, doc):
    def fn(x) -> Tensor:
        return _op(name, [x])
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


neg = _unary("neg", "-x")
abs = _unary("abs", "|x|")
sign = _unary("sign", "-1, 0 or 1 (NaN stays NaN)")
relu = _unary("relu", "max(x, 0)")
floor = _unary("floor", "round toward -inf (identity on ints)")
ceil = _unary("ceil", "round toward +inf (identity on ints)")
round = _unary("round", "round half to even (identity on ints)")
exp = _unary("exp", "e**x (ints give float32)")
log = _unary("log", "natural log (ints give float32)")
sqrt = _unary("sqrt", "square root (ints give float32)")
rsqrt = _unary("rsqrt", "1/sqrt(x)")
reciprocal = _unary("reciprocal", "1/x")
tanh = _unary("tanh", "hyperbolic tangent")
sigmoid = _unary("sigmoid", "1/(1+exp(-x))")
silu = _unary("silu", "x*sigmoid(x)")
erf = _unary("erf", "error function")
sin = _unary("sin", "sine")
cos = _unary("cos", "cosine")
tan = _unary("tan", "tangent")
arcsin = _unary("asin", "inverse sine (NaN outside [-1, 1])")
arccos = _unary("acos", "inverse cosine (NaN outside [-1, 1])")
arctan = _unary("atan", "inverse tangent")
sinh = _unary("sinh", "hyperbolic sine")
cosh = _unary("cosh", "hyperbolic cosine")
arcsinh = _unary("asinh", "inverse hyperbolic sine")
arccosh = _unary("acosh", "inverse hyperbolic cosine (NaN below 1)")
arctanh = _unary("atanh", "inverse hyperbolic tangent (+-inf at +-1, NaN outside)")
asin, acos, atan, asinh, acosh, atanh = arcsin, arccos, arctan, arcsinh, arccosh, arctanh
bitwise_not = _unary("bitwise_not", "~x on integers, logical not on bool")
invert = bitwise_not
logical_not = _unary("logical_not", "x == 0, as bool")
negative = neg
absolute = abs


def gelu(x, approximate: str = "none") -> Tensor:
    """GELU; approximate='none' (erf form) or 'tanh'."""
    return _op("gelu", [x], approximate=approximate)


def _binary(name, doc):
    def fn(a, b) -> Tensor:
        return _op(name, [a, b])
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


add = _binary("add", "a + b (broadcasting, numpy promotion)")
sub = _binary("sub", "a - b")
mul = _binary("mul", "a * b")
div = _binary("div", "a / b, true division (int / int gives float32)")
pow = _binary("pow", "a ** b")
maximum = _binary("maximum", "elementwise max (NaN propagates)")
minimum = _binary("minimum", "elementwise min (NaN propagates)")
mod = _binary("mod", "a % b with the divisor's sign (numpy)")
equal = _binary("equal", "a == b")
not_equal = _binary("not_equal", "a != b")
less = _binary("less", "a < b")
less_equal = _binary("less_equal", "a <= b")
greater = _binary("greater", "a > b")
greater_equal = _binary("greater_equal", "a >= b")
logical_and = _binary("logical_and", "a and b (nonzero is true)")
logical_or = _binary("logical_or", "a or b (nonzero is true)")
matmul = _binary("matmul", "numpy matmul (1-D operands promoted; batch dims broadcast)")
bitwise_and = _binary("bitwise_and", "a & b (integers or bool)")
bitwise_or = _binary("bitwise_or", "a | b (integers or bool)")
bitwise_xor = _binary("bitwise_xor", "a ^ b (integers or bool)")
left_shift = _binary("left_shift", "a << b (integers; shifts >= the width or < 0 give 0)")
right_shift = _binary("right_shift",
                      "a >> b (integers, arithmetic for signed; shifts >= the width or < 0 give "
                      "0, or -1 for a negative a)")
subtract, multiply, divide, true_divide, power, remainder = sub, mul, div, div, pow, mod


def where(cond, a, b) -> Tensor:
    """cond ? a : b elementwise, broadcasting all three; dtype promote(a, b)."""
    na, nb = nodes_for(a, b)
    return wrap(_nef.op("where", [to_node(cond), na, nb], {}))


def clip(x, lo=None, hi=None) -> Tensor:
    """min(max(x, lo), hi). A missing bound means none on that side (maximum/minimum only)."""
    if lo is None and hi is None:
        return x if isinstance(x, Tensor) else Tensor(x)
    if lo is None:
        return minimum(x, hi)
    if hi is None:
        return maximum(x, lo)
    return _op("clip", [x, lo, hi])


def cast(x, dtype) -> Tensor:
    """numpy astype: float->int truncates toward zero, ->bool is != 0."""
    return wrap(_nef.op("cast", [to_node(x)], {"dtype": as_dtype(dtype).name}))


astype = cast


# ---- reductions -----------------------------------------------------------------------------

def _reduction(name, doc):
    def fn(x, axis=None, keepdims: bool = False) -> Tensor:
        return _op(name, [x], axes=_axis_list(axis), keepdims=builtins.bool(keepdims))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc + " over axis (None = all; int or tuple), optionally keeping dims."
    return fn


sum = _reduction("sum", "Sum (bool/narrow ints accumulate in int64)")
mean = _reduction("mean", "Mean (ints give float32)")
max = _reduction("max", "Maximum")
min = _reduction("min", "Minimum")
prod = _reduction("prod", "Product")
amax, amin = max, min


def argmax(x, axis=None, keepdims: bool = False) -> Tensor:
    """Index of the first maximum (int64); axis None = over the flattened tensor."""
    a = None if axis is None else operator.index(axis)
    return _op("argmax", [x], axis=a, keepdims=builtins.bool(keepdims))


def argmin(x, axis=None, keepdims: bool = False) -> Tensor:
    """Index of the first minimum (int64); axis None = over the flattened tensor."""
    a = None if axis is None else operator.index(axis)
    return _op("argmin", [x], axis=a, keepdims=builtins.bool(keepdims))


# ---- neural ---------------------------------------------------------------------------------

def _axis_arg(dim, axis):
    return operator.index(axis if axis is not None else dim)


def softmax(x, dim: int = -1, axis=None) -> Tensor:
    """Softmax along dim (alias axis=); ints give float32."""
    return _op("softmax", [x], axis=_axis_arg(dim, axis))


def log_softmax(x, dim: int = -1, axis=None) -> Tensor:
    return _op("log_softmax", [x], axis=_axis_arg(dim, axis))


def _opt(t):
    return None if t is None else to_node(t)


def layernorm(x, weight=None, bias=None, eps: float = 1e-5, axis: int = -1) -> Tensor:
    """Normalizes over dims axis..end (biased variance), then * weight + bias."""
    b = _opt(bias)
    w = _opt(weight)
    if w is None and b is not None:
        # The core takes a bias only with a weight; a weight of ones is exact.
        w = _nef.full(list(b.shape), 1.0, b.dtype)
    return wrap(_nef.layernorm(nodes_for(x)[0], w, b, builtins.float(eps), operator.index(axis)))


def rmsnorm(x, weight=None, eps: float = 1e-6, axis: int = -1) -> Tensor:
    """x / sqrt(mean(x**2 over axis..end) + eps) * weight."""
    return wrap(_nef.rmsnorm(nodes_for(x)[0], _opt(weight), builtins.float(eps),
                             operator.index(axis)))


def attention(q, k, v, mask=None, scale=None, causal: bool = False) -> Tensor:
    """softmax(q @ k^T * scale + mask) @ v; scale defaults to 1/sqrt(D); mask bool (True =
    attend) or additive float; causal keeps key j for query i iff j <= i + Lk - Lq."""
    return wrap(_nef.attention(to_node(q), to_node(k), to_node(v), _opt(mask),
                               None if scale is None else builtins.float(scale),
                               builtins.bool(causal)))


# ---- layout ---------------------------------------------------------------------------------

def reshape(x, shape) -> Tensor:
    """numpy reshape (row-major; one -1 allowed). A view when x is contiguous."""
    return _op("reshape", [x], shape=_shape_arg(shape))


def transpose(x, axes=None) -> Tensor:
    """Permutes dims (None = reverse them)."""
    perm = None if axes is None else [operator.index(a) for a in axes]
    return _op("transpose", [x], perm=perm)


def permute(x, *axes) -> Tensor:
    if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
        axes = tuple(axes[0])
    return transpose(x, axes)


def slice(x, starts, stops, steps=None) -> Tensor:
    """Raw slice node: per-dim start/stop/step already normalized like slice.indices()."""
    steps = [1] * len(starts) if steps is None else list(steps)
    return _op("slice", [x], starts=list(starts), stops=list(stops), steps=steps)


def broadcast_to(x, shape) -> Tensor:
    return _op("broadcast_to", [x], shape=_shape_arg(shape))


def expand_dims(x, axis) -> Tensor:
    """Inserts size-1 dims at the given output positions (int or tuple)."""
    return _op("expand_dims", [x], axes=_axis_list(axis))


def squeeze(x, axis=None) -> Tensor:
    """Removes size-1 dims (all of them, or the listed ones: a listed dim != 1 is an error)."""
    return _op("squeeze", [x], axes=_axis_list(axis))


def concat(xs, axis: int = 0) -> Tensor:
    """Joins tensors along an existing axis (dtype: promotion of all)."""
    xs = list(xs)
    if not xs:
        raise NEFValidationError("[concat] needs at least one tensor")
    return wrap(_nef.op("concat", nodes_for(*xs), {"axis": operator.index(axis)}))


concatenate = concat


def stack(xs, axis: int = 0) -> Tensor:
    """Joins tensors along a new axis."""
    xs = list(xs)
    if not xs:
        raise NEFValidationError("[stack] needs at least one tensor")
    return concat([expand_dims(x, axis) for x in xs], axis)


def split(x, indices_or_sections, axis: int = 0) -> list:
    """numpy.split: an int N gives N equal sections (NEFShapeError if the axis does not divide);
    a list gives the split *indices* (x[:i0], x[i0:i1], ..., x[ik:]). Each part is a slice view."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    shape = x.shape
    rank = len(shape)
    ax = operator.index(axis)
    if not -rank <= ax < rank:
        raise NEFShapeError(f"[split] axis {ax} out of range for rank {rank}")
    ax %= rank
    n = shape[ax]
    if isinstance(indices_or_sections, (list, tuple)):
        bounds = [operator.index(i) for i in indices_or_sections]
    else:
        sections = operator.index(indices_or_sections)
        if sections <= 0 or n % sections != 0:
            raise NEFShapeError(f"[split] axis {ax} of shape {shape} does not divide into "
                                f"{sections} equal sections")
        bounds = [n // sections * i for i in range(1, sections)]
    edges = [None] + bounds + [None]
    parts = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        key = [builtins.slice(None)] * rank
        key[ax] = builtins.slice(lo, hi)
        starts, stops, steps = zip(*(k.indices(d) for k, d in zip(key, shape)))
        parts.append(wrap(_nef.op("slice", [x._t], {"starts": list(starts),
                                                    "stops": list(stops),
                                                    "steps": list(steps)})))
    return parts


def gather(x, indices, axis: int = 0) -> Tensor:
    """numpy take along one axis: out = x.shape[:axis] + indices.shape + x.shape[axis+1:]."""
    return wrap(_nef.op("gather", [to_node(x), to_node(indices)], {"axis": operator.index(axis)}))


def take(x, indices, axis=None) -> Tensor:
    """numpy.take (axis None = over the flattened tensor)."""
    if axis is None:
        x = reshape(x, [-1])
        axis = 0
    return gather(x, indices, axis)


# ---- indexing, sorting, scans ------------------------------------------------------------------

def take_along_axis(x, indices, axis: int) -> Tensor:
    """numpy.take_along_axis: out[..., i, ...] = x[..., indices[..., i, ...], ...] along axis
    (indices of x's rank, int32/int64, negative ones count from the end)."""
    return wrap(_nef.op("gather_elements", [to_node(x), to_node(indices)],
                        {"axis": operator.index(axis)}))


gather_elements = take_along_axis


def gather_nd(x, indices, batch_dims: int = 0) -> Tensor:
    """The slices of x addressed by the last dim of indices (ONNX GatherND): out shape
    indices.shape[:-1] + x.shape[batch_dims + indices.shape[-1]:]."""
    return wrap(_nef.op("gather_nd", [to_node(x), to_node(indices)],
                        {"batch_dims": operator.index(batch_dims)}))


def scatter_elements(data, indices, updates, axis: int = 0, reduction: str = "none") -> Tensor:
    """A copy of data with updates written along axis at indices (numpy.put_along_axis), or
    combined with reduction 'add', 'mul', 'max' or 'min'; repeated indices apply in order."""
    return wrap(_nef.op("scatter_elements", [to_node(data), to_node(indices), to_node(updates)],
                        {"axis": operator.index(axis), "reduction": reduction}))


def scatter_nd(data, indices, updates, reduction: str = "none") -> Tensor:
    """A copy of data with the slices addressed by the index tuples (last dim of indices)
    replaced by updates, or combined with reduction 'add', 'mul', 'max' or 'min'."""
    return wrap(_nef.op("scatter_nd", [to_node(data), to_node(indices), to_node(updates)],
                        {"reduction": reduction}))


def topk(x, k: int, axis: int = -1, largest: bool = True):
    """(values, indices): the k largest (or smallest) elements along axis, sorted, equal values
    in index order, NaN above every number; indices are int64."""
    v, i = _nef.topk(to_node(x), operator.index(k), operator.index(axis), builtins.bool(largest))
    return wrap(v), wrap(i)


def det(x) -> Tensor:
    """numpy.linalg.det: the determinant of each square matrix of x [..., M, M] (float), by LU
    with partial pivoting in double; returns [...]."""
    return _op("det", [x])


def cumsum(x, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """Running sum along axis, in x's dtype (unlike numpy, narrow ints do not widen);
    exclusive leaves out the element itself, reverse runs from the end."""
    return _op("cumsum", [x], axis=operator.index(axis), exclusive=builtins.bool(exclusive),
               reverse=builtins.bool(reverse))


def cumprod(x, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """Running product along axis, in x's dtype; exclusive/reverse as for cumsum."""
    return _op("cumprod", [x], axis=operator.index(axis), exclusive=builtins.bool(exclusive),
               reverse=builtins.bool(reverse))


def einsum(equation: str, *operands) -> Tensor:
    """numpy.einsum (explicit or implicit output, '...' broadcasting, repeated labels for
    diagonals); contractions run as batched matmuls. The result keeps the operands' dtype."""
    return wrap(_nef.einsum(equation, nodes_for(*operands)))
