"""Every NEF op as a numpy-like function (docs/ops.md is the contract). All of them are lazy:
they add a node to the graph and return a Tensor; nothing runs until a value is needed.
"""

from __future__ import annotations

import builtins

from . import _nef
from .dtypes import as_dtype, float32, float64
from .errors import NEFShapeError, NEFTypeError, NEFValidationError
from .tensor import (Tensor, _axis_list, _binop, _float_arg, _index_arg, _seq_arg, _shape_arg,
                     check_integer_power, nodes_for, to_node, wrap)


def _op(name, inputs, **attrs) -> Tensor:
    return wrap(_nef.op(name, nodes_for(*inputs, op=name), attrs))


def _tensor(x, op: str = "op") -> Tensor:
    return x if isinstance(x, Tensor) else wrap(nodes_for(x, op=op)[0])


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


def _comparison(name, doc):
    def fn(a, b) -> Tensor:
        out = _binop(name, a, b) if isinstance(a, Tensor) or isinstance(b, Tensor) else None
        return out if isinstance(out, Tensor) else _op(name, [a, b])
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc + (" -> bool. A Python int outside the tensor's integer dtype compares "
                        "exactly, as in numpy 2.")
    return fn


add = _binary("add", "a + b (broadcasting, numpy promotion)")
sub = _binary("sub", "a - b")
mul = _binary("mul", "a * b")
div = _binary("div", "a / b, true division (int / int gives float32)")
def pow(a, b) -> Tensor:
    """a ** b. An integer result with a negative exponent known when the node is made (a Python
    int, numpy data, a computed tensor) raises NEFValidationError, as numpy does; a lazy
    integer exponent that turns out negative gives the truncated quotient (2 ** -1 == 0)."""
    out = _op("pow", [a, b])
    check_integer_power(out, b)
    return out


maximum = _binary("maximum", "elementwise max (NaN propagates)")
minimum = _binary("minimum", "elementwise min (NaN propagates)")
mod = _binary("mod", "a % b with the divisor's sign (numpy's remainder; integer x % 0 = 0)")
floor_divide = _binary("floor_divide", "a // b rounded toward -inf (numpy's floor_divide: "
                       "integers exact, integer x // 0 = 0; floats by numpy's divmod rule)")
equal = _comparison("equal", "a == b")
not_equal = _comparison("not_equal", "a != b")
less = _comparison("less", "a < b")
less_equal = _comparison("less_equal", "a <= b")
greater = _comparison("greater", "a > b")
greater_equal = _comparison("greater_equal", "a >= b")
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


def logical_xor(a, b) -> Tensor:
    """a xor b (nonzero is true) -> bool."""
    return not_equal(cast(a, "bool"), cast(b, "bool"))


def square(x) -> Tensor:
    """x * x (dtype kept)."""
    x = _tensor(x, "square")
    return x * x


def isnan(x) -> Tensor:
    """True where x is NaN (always False for ints and bools)."""
    x = _tensor(x, "isnan")
    if x.dtype.kind != "f":
        return _full_bool(x, False)
    return not_equal(x, x)


def isinf(x) -> Tensor:
    """True where x is +inf or -inf."""
    x = _tensor(x, "isinf")
    if x.dtype.kind != "f":
        return _full_bool(x, False)
    return equal(abs(x), float("inf"))


def isfinite(x) -> Tensor:
    """True where x is neither NaN nor infinite."""
    x = _tensor(x, "isfinite")
    if x.dtype.kind != "f":
        return _full_bool(x, True)
    return equal(x - x, 0.0)  # inf - inf and NaN - NaN are NaN


def _full_bool(x: Tensor, value: bool) -> Tensor:
    return wrap(_nef.full(list(x.shape), 1.0 if value else 0.0, "bool"))


def round(x, decimals: int = 0) -> Tensor:
    """Rounds half to even to `decimals` places, as numpy.round: floats compute
    rint(x * 10**d) / 10**d in their own dtype (rint(x / 10**-d) * 10**-d for d < 0); ints are
    unchanged for d >= 0 and round to multiples of 10**-d (half to even, exactly) for d < 0."""
    x = _tensor(x, "round")
    d = _index_arg(decimals, "decimals", "round")
    if x.dtype.kind == "b":
        raise NEFTypeError("[round] not supported for bool tensors")
    if builtins.abs(d) > 400:  # beyond any float's exponent range
        raise NEFValidationError(f"[round] decimals {d} is out of range (-400..400)")
    if x.dtype.kind == "f":
        if d == 0:
            return _op("round", [x])
        if d > 0:
            f = 10.0 ** d
            return _op("round", [x * f]) / f
        f = 10.0 ** -d
        return _op("round", [x / f]) * f
    if d >= 0:
        return x
    f = 10 ** -d
    if f > 2**62:
        return cast(_full_bool(x, False), x.dtype)
    w = cast(x, "int64")
    q = floor_divide(w, f)
    r = w - q * f
    up = logical_or(greater(r * 2, f), logical_and(equal(r * 2, f), equal(mod(q, 2), 1)))
    return cast((q + cast(up, "int64")) * f, x.dtype)


def where(cond, a, b) -> Tensor:
    """cond ? a : b elementwise, broadcasting all three; dtype promote(a, b)."""
    na, nb = nodes_for(a, b, op="where")
    return wrap(_nef.op("where", [to_node(cond, "where"), na, nb], {}))


def clip(x, lo=None, hi=None) -> Tensor:
    """min(max(x, lo), hi). A missing bound means none on that side (maximum/minimum only)."""
    if lo is None and hi is None:
        return x if isinstance(x, Tensor) else Tensor(x)
    if lo is None:
        return minimum(x, hi)
    if hi is None:
        return maximum(x, lo)
    return _op("clip", [x, lo, hi])


def cast(x, dtype, saturate: bool = True) -> Tensor:
    """numpy astype: float->int truncates toward zero, ->bool is != 0. To a float8 type, values
    round to nearest even and, as ONNX's Cast, out-of-range values and infinities saturate to the
    largest finite value (saturate=False: inf for float8_e5m2, NaN for the others)."""
    attrs = {"dtype": as_dtype(dtype).name}
    if not saturate:
        attrs["saturate"] = False
    return wrap(_nef.op("cast", [to_node(x)], attrs))


astype = cast


# ---- reductions -----------------------------------------------------------------------------

def _reduction(name, doc):
    def fn(x, axis=None, keepdims: bool = False) -> Tensor:
        return _op(name, [x], axes=_axis_list(axis), keepdims=builtins.bool(keepdims))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc + " over axis (None = all; int or tuple), optionally keeping dims."
    return fn


def _reduction_dims(x: Tensor, axis) -> int:
    """How many elements each reduced value covers."""
    rank = x.ndim
    axes = range(rank) if axis is None else _axis_list(axis)
    n = 1
    for a in axes:
        if not -rank <= a < builtins.max(rank, 1):
            raise NEFShapeError(f"axis {a} out of range for rank {rank}")
        n *= x.shape[a % rank] if rank else 1
    return n


sum = _reduction("sum", "Sum (bool/narrow ints accumulate in int64)")
mean = _reduction("mean", "Mean (ints give float32)")
max = _reduction("max", "Maximum")
min = _reduction("min", "Minimum")
prod = _reduction("prod", "Product")
amax, amin = max, min


def all(x, axis=None, keepdims: bool = False) -> Tensor:
    """True where every element along axis is nonzero (NaN counts as nonzero); bool, True for
    an empty reduction, as numpy.all."""
    x = _tensor(x, "all")
    zeros = sum(logical_not(x), axis, keepdims)
    return equal(zeros, 0)


def any(x, axis=None, keepdims: bool = False) -> Tensor:
    """True where some element along axis is nonzero (NaN counts as nonzero); bool, False for
    an empty reduction, as numpy.any."""
    x = _tensor(x, "any")
    return greater(sum(cast(x, "bool"), axis, keepdims), 0)


def var(x, axis=None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Variance: mean(|x - mean(x)|**2) * n / (n - ddof) over axis (None = all), as numpy.var.
    Ints and bools give float32 (numpy: float64); float16/bfloat16 compute in float32 and
    round once. n - ddof <= 0 gives inf or NaN, as in numpy."""
    x = _tensor(x, "var")
    ddof = _index_arg(ddof, "ddof", "var")
    out_dtype = x.dtype if x.dtype.kind == "f" else float32
    work = x if x.dtype in (float32, float64) else cast(x, float32)
    n = _reduction_dims(x, axis)
    m = mean(work, axis, keepdims=True)
    d = work - m
    v = sum(d * d, axis, keepdims) / float(builtins.max(n - ddof, 0))
    return v if v.dtype == out_dtype else cast(v, out_dtype)


def std(x, axis=None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Standard deviation: sqrt(var(x, axis, ddof)); see :func:`var` for dtypes."""
    v = var(x, axis, ddof=ddof, keepdims=keepdims)
    out = sqrt(v if v.dtype in (float32, float64) else cast(v, float32))
    return out if out.dtype == v.dtype else cast(out, v.dtype)


def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """numpy.isclose: |a - b| <= atol + rtol * |b| where b is finite, or a == b (equal
    infinities); NaNs are close to each other only with equal_nan. Computed in the promoted
    float dtype (ints and bools in float64, as numpy). Lazy; returns bool."""
    ta, tb = _tensor(a, "isclose"), _tensor(b, "isclose")
    dt = as_dtype(_nef.promote_types(ta.dtype.name, tb.dtype.name))
    if dt.kind != "f":
        dt = float64
    ta, tb = cast(ta, dt), cast(tb, dt)
    close = logical_and(less_equal(abs(ta - tb), atol + rtol * abs(tb)), isfinite(tb))
    close = logical_or(close, equal(ta, tb))
    if equal_nan:
        close = logical_or(close, logical_and(isnan(ta), isnan(tb)))
    return close


def allclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """True if every element of :func:`isclose` is true (executes; a Python bool)."""
    return builtins.bool(all(isclose(a, b, rtol, atol, equal_nan)).item())


def copy(x) -> Tensor:
    """A tensor with its own copy of x's value, computed now (see Tensor.copy)."""
    return _tensor(x, "copy").copy()


def argmax(x, axis=None, keepdims: bool = False) -> Tensor:
    """Index of the first maximum (int64); axis None = over the flattened tensor."""
    a = None if axis is None else _index_arg(axis, "axis", "argmax")
    return _op("argmax", [x], axis=a, keepdims=builtins.bool(keepdims))


def argmin(x, axis=None, keepdims: bool = False) -> Tensor:
    """Index of the first minimum (int64); axis None = over the flattened tensor."""
    a = None if axis is None else _index_arg(axis, "axis", "argmin")
    return _op("argmin", [x], axis=a, keepdims=builtins.bool(keepdims))


# ---- neural ---------------------------------------------------------------------------------

def _axis_arg(dim, axis):
    return _index_arg(axis if axis is not None else dim, "axis", "softmax")


def softmax(x, dim: int = -1, axis=None) -> Tensor:
    """Softmax along dim (alias axis=); ints give float32."""
    return _op("softmax", [x], axis=_axis_arg(dim, axis))


def log_softmax(x, dim: int = -1, axis=None) -> Tensor:
    """log(softmax(x)) along dim (alias axis=), computed stably; ints give float32."""
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
    return wrap(_nef.layernorm(nodes_for(x, op="layernorm")[0], w, b,
                               _float_arg(eps, "eps", "layernorm"),
                               _index_arg(axis, "axis", "layernorm")))


def rmsnorm(x, weight=None, eps: float = 1e-6, axis: int = -1) -> Tensor:
    """x / sqrt(mean(x**2 over axis..end) + eps) * weight."""
    return wrap(_nef.rmsnorm(nodes_for(x, op="rmsnorm")[0], _opt(weight),
                             _float_arg(eps, "eps", "rmsnorm"),
                             _index_arg(axis, "axis", "rmsnorm")))


def attention(q, k, v, mask=None, scale=None, causal: bool = False) -> Tensor:
    """softmax(q @ k^T * scale + mask) @ v; scale defaults to 1/sqrt(D); mask bool (True =
    attend) or additive float; causal keeps key j for query i iff j <= i + Lk - Lq."""
    return wrap(_nef.attention(to_node(q, "attention"), to_node(k, "attention"),
                               to_node(v, "attention"), _opt(mask),
                               None if scale is None else _float_arg(scale, "scale", "attention"),
                               builtins.bool(causal)))


def rope(x, pos, base: float = 10000.0, dims: int = 0, mode: str = "half",
         pos_scale: float = 1.0) -> Tensor:
    """Rotary position embedding of x [..., T, D] at positions pos [T] (int): the first `dims`
    channels (0 = all) rotate pairwise by pos * pos_scale * base**(-2i/dims); mode "half" pairs
    (i, i + dims/2) (GPT-NeoX, Hugging Face Llama), "interleaved" pairs (2i, 2i + 1) (GPT-J,
    GGUF Llama)."""
    return _op("rope", [x, pos], base=_float_arg(base, "base", "rope"),
               dims=_index_arg(dims, "dims", "rope"), mode=str(mode),
               pos_scale=_float_arg(pos_scale, "pos_scale", "rope"))


def cached_attention(q, k_cache, v_cache, k_new, v_new, start, scale=None) -> Tensor:
    """Causal attention of T new query rows q [..., T, D] at positions start..start+T-1 over the
    cache rows [0, start) of k_cache/v_cache [..., C, D] followed by k_new/v_new [..., T, D]
    (the cache's leading dims broadcast to q's: grouped-query attention). `start` is an int
    scalar tensor read at run time, so one compiled plan serves every position."""
    attrs = {} if scale is None else {"scale": _float_arg(scale, "scale", "cached_attention")}
    return _op("cached_attention", [q, k_cache, v_cache, k_new, v_new, start], **attrs)


def linear_attention(q, k, v, state, decay=None, beta=None, update_rule: str = "linear",
                     scale=None) -> tuple[Tensor, Tensor]:
    """The recurrence of linear-attention layers (ONNX LinearAttention). q [B, Hq, T, dk],
    k [B, Hkv, T, dk], v [B, Hkv, T, dv], state [B, Hkv, dk, dv]; decay [B, Hkv, T, dk or 1]
    for the gated rules (state *= exp(decay) per step), beta [B, Hkv, T, 1] for the delta rules
    (v <- beta * (v - state^T k)). Per step state += k v^T and query head h reads
    scale * q^T state of key/value head h // (Hq // Hkv). Returns (out [B, Hq, T, dv], the final
    state)."""
    inputs = [q, k, v, state] + [t for t in (decay, beta) if t is not None]
    attrs = {"update_rule": str(update_rule)}
    if scale is not None:
        attrs["scale"] = _float_arg(scale, "scale", "linear_attention")
    packed = _op("linear_attention", inputs, **attrs)  # [B, Hkv, G*T + dk, dv]
    b, hkv, rows, dv = packed.shape
    _, hq, t, dk = _tensor(q).shape
    out = packed[:, :, : rows - dk, :].reshape((b, hq, t, dv))
    return out, packed[:, :, rows - dk:, :]


def qmatmul(x, w, format: str) -> Tensor:
    """x [..., K] @ W^T for a block-quantized W [N, K] stored as uint8 [N, row_bytes] in
    `format` (q4_0, q4_1, q8_0, q4_k, q5_k, q6_k: GGUF's layouts) -> [..., N] float32. The
    weights stay quantized; activations are quantized per 32 to int8 on the fly (docs/llm.md)."""
    return _op("qmatmul", [x, w], format=str(format))


def matmul_integer(a, b, a_zero_point=None, b_zero_point=None) -> Tensor:
    """ONNX MatMulInteger: a [..., M, K] @ b [..., K, N], both int8/uint8 (batch dims
    broadcast), minus zero points of their operand's dtype (a_zero_point one value or [M],
    b_zero_point one value or [N]; both or neither) -> exact int32 [..., M, N]."""
    zps = () if a_zero_point is None and b_zero_point is None else (a_zero_point, b_zero_point)
    if len(zps) and builtins.any(z is None for z in zps):
        raise NEFValidationError("[matmul_integer] give both zero points or neither")
    return _op("matmul_integer", [a, b, *zps])


def matmul_dynamic_int8(x, w, w_scale, bias=None) -> Tensor:
    """x float32 [..., K] @ (w int8 [K, N] * w_scale float32 [N]) (+ bias float32 [N]) ->
    float32 [..., N], each row of x quantized at run time to uint8 over its range (widened to
    hold 0) and multiplied exactly in integers: what `Graph.quantize("int8")` emits. A row with
    NaN or an infinity gives a row of NaN."""
    return _op("matmul_dynamic_int8", [x, w, w_scale] + ([] if bias is None else [bias]))


def qgather(w, ids, format: str) -> Tensor:
    """Rows `ids` of a block-quantized matrix W [N, K] (uint8 [N, row_bytes] in `format`),
    dequantized: [..., K] float32 (token embeddings)."""
    return _op("qgather", [w, ids], format=str(format))


# ---- layout ---------------------------------------------------------------------------------

def reshape(x, shape) -> Tensor:
    """numpy reshape (row-major; one -1 allowed). A view when x is contiguous."""
    return _op("reshape", [x], shape=_shape_arg(shape))


def transpose(x, axes=None) -> Tensor:
    """Permutes dims (None = reverse them)."""
    perm = None if axes is None else [_index_arg(a, "axis", "transpose")
                                      for a in _seq_arg(axes, "axes", "transpose")]
    return _op("transpose", [x], perm=perm)


def permute(x, *axes) -> Tensor:
    """transpose with the axes as arguments (PyTorch's permute)."""
    if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
        axes = tuple(axes[0])
    return transpose(x, axes)


def slice(x, starts, stops, steps=None) -> Tensor:
    """Raw slice node: per-dim start/stop/step already normalized like slice.indices()."""
    starts = _seq_arg(starts, "starts", "slice")
    stops = _seq_arg(stops, "stops", "slice")
    steps = [1] * len(starts) if steps is None else _seq_arg(steps, "steps", "slice")
    return _op("slice", [x], starts=starts, stops=stops, steps=steps)


def broadcast_to(x, shape) -> Tensor:
    """A broadcast view of x with `shape` (numpy broadcasting rules)."""
    return _op("broadcast_to", [x], shape=_shape_arg(shape))


def expand_dims(x, axis) -> Tensor:
    """Inserts size-1 dims at the given output positions (int or tuple)."""
    return _op("expand_dims", [x], axes=_axis_list(axis))


def squeeze(x, axis=None) -> Tensor:
    """Removes size-1 dims (all of them, or the listed ones: a listed dim != 1 is an error)."""
    return _op("squeeze", [x], axes=_axis_list(axis))


def concat(xs, axis: int = 0) -> Tensor:
    """Joins tensors along an existing axis (dtype: promotion of all)."""
    xs = _seq_arg(xs, "the tensors", "concat")
    if not xs:
        raise NEFValidationError("[concat] needs at least one tensor")
    return wrap(_nef.op("concat", nodes_for(*xs, op="concat"),
                        {"axis": _index_arg(axis, "axis", "concat")}))


concatenate = concat


def stack(xs, axis: int = 0) -> Tensor:
    """Joins tensors of one shape along a new axis (dtype: promotion of all)."""
    xs = [_tensor(x, "stack") for x in _seq_arg(xs, "the tensors", "stack")]
    if not xs:
        raise NEFValidationError("[stack] needs at least one tensor")
    shape = xs[0].shape
    for x in xs[1:]:
        if x.shape != shape:
            raise NEFShapeError("[stack] all tensors must have the same shape, got "
                                + ", ".join(str(t.shape) for t in xs))
    rank = len(shape) + 1
    ax = _index_arg(axis, "axis", "stack")
    if not -rank <= ax < rank:
        raise NEFShapeError(f"[stack] axis {ax} out of range for stacking tensors of shape "
                            f"{shape} (valid: {-rank}..{rank - 1})")
    return concat([expand_dims(x, ax) for x in xs], ax)


def split(x, indices_or_sections, axis: int = 0) -> list:
    """numpy.split: an int N gives N equal sections (NEFShapeError if the axis does not divide);
    a list gives the split *indices* (x[:i0], x[i0:i1], ..., x[ik:]). Each part is a slice view."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    shape = x.shape
    rank = len(shape)
    ax = _index_arg(axis, "axis", "split")
    if not -rank <= ax < rank:
        raise NEFShapeError(f"[split] axis {ax} out of range for rank {rank}")
    ax %= rank
    n = shape[ax]
    if isinstance(indices_or_sections, (list, tuple)):
        bounds = [_index_arg(i, "a split index", "split") for i in indices_or_sections]
    else:
        sections = _index_arg(indices_or_sections, "sections", "split")
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
    return wrap(_nef.op("gather", [to_node(x, "gather"), to_node(indices, "gather")],
                        {"axis": _index_arg(axis, "axis", "gather")}))


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
                        {"axis": _index_arg(axis, "axis", "take_along_axis")}))


gather_elements = take_along_axis


def gather_nd(x, indices, batch_dims: int = 0) -> Tensor:
    """The slices of x addressed by the last dim of indices (ONNX GatherND): out shape
    indices.shape[:-1] + x.shape[batch_dims + indices.shape[-1]:]."""
    return wrap(_nef.op("gather_nd", [to_node(x), to_node(indices)],
                        {"batch_dims": _index_arg(batch_dims, "batch_dims", "gather_nd")}))


def scatter_elements(data, indices, updates, axis: int = 0, reduction: str = "none") -> Tensor:
    """A copy of data with updates written along axis at indices (numpy.put_along_axis), or
    combined with reduction 'add', 'mul', 'max' or 'min'; repeated indices apply in order."""
    return wrap(_nef.op("scatter_elements", [to_node(data), to_node(indices), to_node(updates)],
                        {"axis": _index_arg(axis, "axis", "scatter_elements"),
                         "reduction": reduction}))


def scatter_nd(data, indices, updates, reduction: str = "none") -> Tensor:
    """A copy of data with the slices addressed by the index tuples (last dim of indices)
    replaced by updates, or combined with reduction 'add', 'mul', 'max' or 'min'."""
    return wrap(_nef.op("scatter_nd", [to_node(data), to_node(indices), to_node(updates)],
                        {"reduction": reduction}))


def topk(x, k: int, axis: int = -1, largest: bool = True) -> tuple[Tensor, Tensor]:
    """(values, indices): the k largest (or smallest) elements along axis, sorted, equal values
    in index order, NaN above every number; indices are int64."""
    v, i = _nef.topk(to_node(x), _index_arg(k, "k", "topk"), _index_arg(axis, "axis", "topk"),
                     builtins.bool(largest))
    return wrap(v), wrap(i)


def det(x) -> Tensor:
    """numpy.linalg.det: the determinant of each square matrix of x [..., M, M] (float), by LU
    with partial pivoting in double; returns [...]."""
    return _op("det", [x])


def cumsum(x, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """Running sum along axis, in x's dtype (unlike numpy, narrow ints do not widen);
    exclusive leaves out the element itself, reverse runs from the end."""
    return _op("cumsum", [x], axis=_index_arg(axis, "axis", "cumsum"),
               exclusive=builtins.bool(exclusive),
               reverse=builtins.bool(reverse))


def cumprod(x, axis: int = 0, exclusive: bool = False, reverse: bool = False) -> Tensor:
    """Running product along axis, in x's dtype; exclusive/reverse as for cumsum."""
    return _op("cumprod", [x], axis=_index_arg(axis, "axis", "cumprod"),
               exclusive=builtins.bool(exclusive),
               reverse=builtins.bool(reverse))


def einsum(equation: str, *operands) -> Tensor:
    """numpy.einsum (explicit or implicit output, '...' broadcasting, repeated labels for
    diagonals); contractions run as batched matmuls. The result keeps the operands' dtype."""
    if not isinstance(equation, str):
        raise NEFTypeError(f"[einsum] the equation must be a str, got {type(equation).__name__}")
    return wrap(_nef.einsum(equation, nodes_for(*operands)))
