package nef

// #include "gonef.h"
import "C"

import (
	"math"
	"sort"
	"unsafe"
)

// Attrs are an op's attributes by name (docs/ops.md lists each op's). Values may be Go ints of
// any size, float32/float64, bool, string, DType (passed as its name), or slices []int,
// []int64, []int32, []float64, []float32. Every value reaches NEF exactly, NaN and infinities
// included.
type Attrs map[string]any

// attr is one converted attribute.
type attr struct {
	name   string
	kind   byte // 'i' int, 'f' float, 'b' bool, 's' string, 'I' ints, 'F' floats
	i      int64
	f      float64
	b      bool
	s      string
	ints   []C.int64_t
	floats []C.double
}

func convertAttrs(op string, attrs Attrs) ([]attr, error) {
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]attr, 0, len(names))
	for _, k := range names {
		a := attr{name: k}
		switch v := attrs[k].(type) {
		case int:
			a.kind, a.i = 'i', int64(v)
		case int8:
			a.kind, a.i = 'i', int64(v)
		case int16:
			a.kind, a.i = 'i', int64(v)
		case int32:
			a.kind, a.i = 'i', int64(v)
		case int64:
			a.kind, a.i = 'i', v
		case uint8:
			a.kind, a.i = 'i', int64(v)
		case uint16:
			a.kind, a.i = 'i', int64(v)
		case uint32:
			a.kind, a.i = 'i', int64(v)
		case uint:
			if uint64(v) > math.MaxInt64 {
				return nil, errorf(CodeValidation, "[%s] attribute '%s' is out of the int64 range", op, k)
			}
			a.kind, a.i = 'i', int64(v)
		case uint64:
			if v > math.MaxInt64 {
				return nil, errorf(CodeValidation, "[%s] attribute '%s' is out of the int64 range", op, k)
			}
			a.kind, a.i = 'i', int64(v)
		case float32:
			a.kind, a.f = 'f', float64(v)
		case float64:
			a.kind, a.f = 'f', v
		case bool:
			a.kind, a.b = 'b', v
		case string:
			a.kind, a.s = 's', v
		case DType:
			if !v.valid() {
				return nil, errorf(CodeType, "[%s] attribute '%s' is an invalid dtype", op, k)
			}
			a.kind, a.s = 's', v.String()
		case []int:
			a.kind, a.ints = 'I', int64s(v)
		case []int64:
			a.kind = 'I'
			for _, x := range v {
				a.ints = append(a.ints, C.int64_t(x))
			}
		case []int32:
			a.kind = 'I'
			for _, x := range v {
				a.ints = append(a.ints, C.int64_t(x))
			}
		case []float64:
			a.kind = 'F'
			for _, x := range v {
				a.floats = append(a.floats, C.double(x))
			}
		case []float32:
			a.kind = 'F'
			for _, x := range v {
				a.floats = append(a.floats, C.double(x))
			}
		default:
			return nil, errorf(CodeValidation, "[%s] attribute '%s': unsupported Go type %T", op, k, v)
		}
		out = append(out, a)
	}
	return out, nil
}

// setAttrs fills a C attribute set (inside a call, on the locked thread).
func setAttrs(set *C.nef_attrs, attrs []attr) C.nef_status {
	for _, a := range attrs {
		name := C.CString(a.name)
		var st C.nef_status
		switch a.kind {
		case 'i':
			st = C.nef_attrs_set_int(set, name, C.int64_t(a.i))
		case 'f':
			st = C.nef_attrs_set_float(set, name, C.double(a.f))
		case 'b':
			v := C.int(0)
			if a.b {
				v = 1
			}
			st = C.nef_attrs_set_bool(set, name, v)
		case 's':
			s := C.CString(a.s)
			st = C.nef_attrs_set_string(set, name, s)
			C.free(unsafe.Pointer(s))
		case 'I':
			st = C.nef_attrs_set_ints(set, name, int64Ptr(a.ints), C.int(len(a.ints)))
		case 'F':
			var p *C.double
			if len(a.floats) > 0 {
				p = &a.floats[0]
			}
			st = C.nef_attrs_set_floats(set, name, p, C.int(len(a.floats)))
		}
		C.free(unsafe.Pointer(name))
		if st != C.NEF_OK {
			return st
		}
	}
	return C.NEF_OK
}

// Op adds a node of any registered op (docs/ops.md) by name, with its inputs in order and its
// attributes. The typed functions of this package are shorthands for it. Errors (an unknown op
// is an *UnsupportedError; bad shapes, dtypes and attributes as the op defines) are carried by
// the returned node, as is the first error of the inputs.
func Op(name string, inputs []*Node, attrs Attrs) *Node {
	conv, err := convertAttrs(name, attrs)
	if err != nil {
		// an input's error comes first: it happened earlier
		for i, in := range inputs {
			if ierr := in.check(name, i); ierr != nil {
				return failed(ierr)
			}
		}
		return failed(err)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var n *Node
	err = withNodes(name, inputs, func(hs []*C.nef_tensor) error {
		var out *C.nef_tensor
		err := call(func() C.nef_status {
			var hp **C.nef_tensor
			if len(hs) > 0 {
				hp = &hs[0]
			}
			if len(conv) == 0 {
				return C.nef_op_attrs(cname, hp, C.int(len(hs)), nil, &out)
			}
			var set *C.nef_attrs
			if st := C.nef_attrs_new(&set); st != C.NEF_OK {
				return st
			}
			defer C.nef_attrs_free(set)
			if st := setAttrs(set, conv); st != C.NEF_OK {
				return st
			}
			return C.nef_op_attrs(cname, hp, C.int(len(hs)), set, &out)
		})
		if err != nil {
			return err
		}
		shape, dt, err := describe(out)
		if err != nil {
			C.nef_tensor_free(out) // under lazyMu already
			return err
		}
		n = newNode(out, name, shape, dt, false)
		return nil
	})
	if err != nil {
		return failed(err)
	}
	return n
}

func op1(name string, x *Node) *Node              { return Op(name, []*Node{x}, nil) }
func op2(name string, a, b *Node) *Node           { return Op(name, []*Node{a, b}, nil) }
func opAttrs(name string, x *Node, a Attrs) *Node { return Op(name, []*Node{x}, a) }

// ---- creation --------------------------------------------------------------------------------

// Full makes a node of the given shape with every element value (cast to dtype). It is
// computed when executed, not stored.
func Full(shape []int, value float64, dtype DType) *Node {
	return Op("full", nil, Attrs{"shape": shapeAttr(shape), "dtype": dtype, "value": value})
}

// Zeros is Full(shape, 0, dtype).
func Zeros(shape []int, dtype DType) *Node { return Full(shape, 0, dtype) }

// Ones is Full(shape, 1, dtype).
func Ones(shape []int, dtype DType) *Node { return Full(shape, 1, dtype) }

// Scalar is a rank-0 node of the given dtype.
func Scalar(value float64, dtype DType) *Node { return Full([]int{}, value, dtype) }

// Arange is numpy's arange: start, start+step, ... below stop (above it for a negative step).
func Arange(start, stop, step float64, dtype DType) *Node {
	return Op("arange", nil, Attrs{"start": start, "stop": stop, "step": step, "dtype": dtype})
}

// RandomUniform samples uniformly in [low, high): element i depends only on (seed, i), so the
// same arguments give the same values every time, on every backend. dtype must be a float type.
func RandomUniform(shape []int, seed int64, low, high float64, dtype DType) *Node {
	return Op("random_uniform", nil, Attrs{"shape": shapeAttr(shape), "dtype": dtype, "seed": seed,
		"low": low, "high": high})
}

// RandomNormal samples a normal distribution, counter-based like RandomUniform.
func RandomNormal(shape []int, seed int64, mean, std float64, dtype DType) *Node {
	return Op("random_normal", nil, Attrs{"shape": shapeAttr(shape), "dtype": dtype, "seed": seed,
		"mean": mean, "std": std})
}

// shapeAttr keeps an empty shape an empty list (a nil []int is one too).
func shapeAttr(shape []int) []int {
	if shape == nil {
		return []int{}
	}
	return shape
}

// ---- elementwise -----------------------------------------------------------------------------
// Unary ops keep the dtype (Neg ... Round) or compute in a float type (Exp ... Gelu: ints give
// float32). Binary ops broadcast as numpy does and promote dtypes by numpy's table.

func Neg(x *Node) *Node        { return op1("neg", x) }
func Abs(x *Node) *Node        { return op1("abs", x) }
func Sign(x *Node) *Node       { return op1("sign", x) }
func Relu(x *Node) *Node       { return op1("relu", x) }
func Floor(x *Node) *Node      { return op1("floor", x) }
func Ceil(x *Node) *Node       { return op1("ceil", x) }
func Round(x *Node) *Node      { return op1("round", x) } // half to even
func Exp(x *Node) *Node        { return op1("exp", x) }
func Log(x *Node) *Node        { return op1("log", x) }
func Sqrt(x *Node) *Node       { return op1("sqrt", x) }
func Rsqrt(x *Node) *Node      { return op1("rsqrt", x) }
func Reciprocal(x *Node) *Node { return op1("reciprocal", x) }
func Tanh(x *Node) *Node       { return op1("tanh", x) }
func Sigmoid(x *Node) *Node    { return op1("sigmoid", x) }
func Silu(x *Node) *Node       { return op1("silu", x) }
func Erf(x *Node) *Node        { return op1("erf", x) }
func Sin(x *Node) *Node        { return op1("sin", x) }
func Cos(x *Node) *Node        { return op1("cos", x) }
func Tan(x *Node) *Node        { return op1("tan", x) }
func Asin(x *Node) *Node       { return op1("asin", x) } // NaN outside [-1, 1]
func Acos(x *Node) *Node       { return op1("acos", x) } // NaN outside [-1, 1]
func Atan(x *Node) *Node       { return op1("atan", x) }
func Sinh(x *Node) *Node       { return op1("sinh", x) }
func Cosh(x *Node) *Node       { return op1("cosh", x) }
func Asinh(x *Node) *Node      { return op1("asinh", x) }
func Acosh(x *Node) *Node      { return op1("acosh", x) } // NaN below 1
func Atanh(x *Node) *Node      { return op1("atanh", x) } // NaN outside [-1, 1]
func LogicalNot(x *Node) *Node { return op1("logical_not", x) }

// Gelu is x * 0.5 * (1 + erf(x / sqrt 2)).
func Gelu(x *Node) *Node { return opAttrs("gelu", x, Attrs{"approximate": "none"}) }

// GeluTanh is gelu's tanh approximation.
func GeluTanh(x *Node) *Node { return opAttrs("gelu", x, Attrs{"approximate": "tanh"}) }

func Add(a, b *Node) *Node          { return op2("add", a, b) }
func Sub(a, b *Node) *Node          { return op2("sub", a, b) }
func Mul(a, b *Node) *Node          { return op2("mul", a, b) }
func Div(a, b *Node) *Node          { return op2("div", a, b) } // true division: a float result
func Pow(a, b *Node) *Node          { return op2("pow", a, b) }
func Maximum(a, b *Node) *Node      { return op2("maximum", a, b) }
func Minimum(a, b *Node) *Node      { return op2("minimum", a, b) }
func Mod(a, b *Node) *Node          { return op2("mod", a, b) } // numpy's: the divisor's sign
func Equal(a, b *Node) *Node        { return op2("equal", a, b) }
func NotEqual(a, b *Node) *Node     { return op2("not_equal", a, b) }
func Less(a, b *Node) *Node         { return op2("less", a, b) }
func LessEqual(a, b *Node) *Node    { return op2("less_equal", a, b) }
func Greater(a, b *Node) *Node      { return op2("greater", a, b) }
func GreaterEqual(a, b *Node) *Node { return op2("greater_equal", a, b) }
func LogicalAnd(a, b *Node) *Node   { return op2("logical_and", a, b) }
func LogicalOr(a, b *Node) *Node    { return op2("logical_or", a, b) }

// MatMul is numpy's matmul: 1-D operands are promoted and the added dim removed, batch dims
// broadcast.
func MatMul(a, b *Node) *Node { return op2("matmul", a, b) }

// Where picks a where cond is true (nonzero), else b; the three broadcast.
func Where(cond, a, b *Node) *Node { return Op("where", []*Node{cond, a, b}, nil) }

// Clip limits x to [lo, hi]; a nil bound means no bound on that side.
func Clip(x, lo, hi *Node) *Node {
	switch {
	case lo != nil && hi != nil:
		return Op("clip", []*Node{x, lo, hi}, nil)
	case lo != nil:
		return Maximum(x, lo)
	case hi != nil:
		return Minimum(x, hi)
	}
	return Op("reshape", []*Node{x}, Attrs{"shape": x.Shape()})
}

// Cast converts to dtype as numpy's astype does (floats to ints truncate toward zero).
func Cast(x *Node, dtype DType) *Node { return opAttrs("cast", x, Attrs{"dtype": dtype}) }

// ---- reductions ------------------------------------------------------------------------------

// Reduce applies a reduction ("sum", "mean", "max", "min", "prod") over axes (none: all
// axes), keeping the reduced dims as size 1 if keepdims.
func Reduce(op string, x *Node, axes []int, keepdims bool) *Node {
	a := Attrs{"keepdims": keepdims}
	if len(axes) > 0 {
		a["axes"] = axes
	}
	return opAttrs(op, x, a)
}

// Sum over the given axes (all if none). Sums of bools and narrow ints are int64.
func Sum(x *Node, axes ...int) *Node { return Reduce("sum", x, axes, false) }

// Mean over the given axes (all if none), in a float type.
func Mean(x *Node, axes ...int) *Node { return Reduce("mean", x, axes, false) }

// Max over the given axes (all if none).
func Max(x *Node, axes ...int) *Node { return Reduce("max", x, axes, false) }

// Min over the given axes (all if none).
func Min(x *Node, axes ...int) *Node { return Reduce("min", x, axes, false) }

// Prod over the given axes (all if none).
func Prod(x *Node, axes ...int) *Node { return Reduce("prod", x, axes, false) }

// ArgMax is the int64 index of the largest element along axis (the first one on ties).
func ArgMax(x *Node, axis int) *Node { return opAttrs("argmax", x, Attrs{"axis": axis}) }

// ArgMin is the int64 index of the smallest element along axis.
func ArgMin(x *Node, axis int) *Node { return opAttrs("argmin", x, Attrs{"axis": axis}) }

// ---- neural ----------------------------------------------------------------------------------

// Softmax along axis (-1: the last).
func Softmax(x *Node, axis int) *Node { return opAttrs("softmax", x, Attrs{"axis": axis}) }

// LogSoftmax along axis.
func LogSoftmax(x *Node, axis int) *Node { return opAttrs("log_softmax", x, Attrs{"axis": axis}) }

// LayerNorm normalizes over the last axis (biased variance) and applies weight and bias, which
// may be nil (a bias needs a weight).
func LayerNorm(x, weight, bias *Node, eps float64) *Node {
	if weight == nil && bias != nil {
		return failed(errorf(CodeValidation, "[layernorm] a bias without a weight is not supported; pass ones"))
	}
	in := []*Node{x}
	if weight != nil {
		in = append(in, weight)
	}
	if bias != nil {
		in = append(in, bias)
	}
	return Op("layernorm", in, Attrs{"eps": eps, "axis": -1})
}

// RMSNorm is x / sqrt(mean(x^2) + eps) * weight over the last axis; weight may be nil.
func RMSNorm(x, weight *Node, eps float64) *Node {
	in := []*Node{x}
	if weight != nil {
		in = append(in, weight)
	}
	return Op("rmsnorm", in, Attrs{"eps": eps, "axis": -1})
}

// Attention is softmax(q @ k^T * scale + mask) @ v with scale 1/sqrt(D): q [..., Lq, D],
// k [..., Lk, D], v [..., Lk, Dv]. mask may be nil, bool (true = attend) or float (added to the
// scores); causal keeps key j for query i iff j <= i + Lk - Lq.
func Attention(q, k, v, mask *Node, causal bool) *Node {
	return attention(q, k, v, mask, Attrs{"causal": causal})
}

// ScaledAttention is Attention with an explicit scale.
func ScaledAttention(q, k, v, mask *Node, scale float64, causal bool) *Node {
	return attention(q, k, v, mask, Attrs{"causal": causal, "scale": scale})
}

func attention(q, k, v, mask *Node, a Attrs) *Node {
	in := []*Node{q, k, v}
	if mask != nil {
		in = append(in, mask)
	}
	return Op("attention", in, a)
}

// ---- layout ----------------------------------------------------------------------------------
// Reshape (of contiguous data), Transpose, Slice, BroadcastTo, ExpandDims and Squeeze are views:
// they never copy.

// Reshape to shape (one dim may be -1).
func Reshape(x *Node, shape ...int) *Node {
	return opAttrs("reshape", x, Attrs{"shape": shapeAttr(shape)})
}

// Transpose permutes the dims (no perm: reversed).
func Transpose(x *Node, perm ...int) *Node {
	if len(perm) == 0 {
		return op1("transpose", x)
	}
	return opAttrs("transpose", x, Attrs{"perm": perm})
}

// Slice takes starts[i]:stops[i]:steps[i] along each dim, with Python's slice semantics
// (negative bounds count from the end, then clamp).
func Slice(x *Node, starts, stops, steps []int) *Node {
	return opAttrs("slice", x, Attrs{"starts": shapeAttr(starts), "stops": shapeAttr(stops),
		"steps": shapeAttr(steps)})
}

// Concat joins nodes along axis; dtypes promote.
func Concat(axis int, xs ...*Node) *Node { return Op("concat", xs, Attrs{"axis": axis}) }

// Stack joins nodes along a new axis.
func Stack(axis int, xs ...*Node) *Node {
	parts := make([]*Node, len(xs))
	for i, x := range xs {
		if x.check("stack", i) != nil {
			parts[i] = x // Concat reports it
			continue
		}
		a := axis
		if a < 0 {
			a += len(x.shape) + 1
		}
		parts[i] = ExpandDims(x, a)
	}
	return Concat(axis, parts...)
}

// Split cuts x along axis into parts of the given sizes (they must sum to the dim); each part
// is a view. If the split is invalid every part carries the error (one part if sizes is empty).
func Split(x *Node, sizes []int, axis int) []*Node {
	parts := make([]*Node, len(sizes))
	fail := func(err error) []*Node {
		if len(parts) == 0 {
			return []*Node{failed(err)}
		}
		for i := range parts {
			parts[i] = failed(err)
		}
		return parts
	}
	if err := x.check("split", 0); err != nil {
		return fail(err)
	}
	rank := len(x.shape)
	ax := axis
	if ax < 0 {
		ax += rank
	}
	if ax < 0 || ax >= rank {
		return fail(errorf(CodeShape, "[split] axis %d is out of range for shape %v", axis, x.shape))
	}
	total := 0
	for _, s := range sizes {
		if s < 0 {
			return fail(errorf(CodeShape, "[split] negative section size %d", s))
		}
		total += s
	}
	if total != x.shape[ax] {
		return fail(errorf(CodeShape, "[split] sizes sum to %d but axis %d of %v has %d", total, ax,
			x.shape, x.shape[ax]))
	}
	at := 0
	for i, s := range sizes {
		starts, stops, steps := make([]int, rank), append([]int{}, x.shape...), make([]int, rank)
		for d := range steps {
			steps[d] = 1
		}
		starts[ax], stops[ax] = at, at+s
		parts[i] = Slice(x, starts, stops, steps)
		at += s
	}
	return parts
}

// BroadcastTo is numpy's broadcast_to.
func BroadcastTo(x *Node, shape ...int) *Node {
	return opAttrs("broadcast_to", x, Attrs{"shape": shapeAttr(shape)})
}

// ExpandDims inserts size-1 dims at the given positions of the output.
func ExpandDims(x *Node, axes ...int) *Node {
	return opAttrs("expand_dims", x, Attrs{"axes": shapeAttr(axes)})
}

// Squeeze removes the given size-1 dims (all size-1 dims if none).
func Squeeze(x *Node, axes ...int) *Node {
	if len(axes) == 0 {
		return op1("squeeze", x)
	}
	return opAttrs("squeeze", x, Attrs{"axes": axes})
}

// Gather is numpy's take along axis: int32/int64 indices, negative ones wrap; an index out of
// range is a *ValidationError when the node executes.
func Gather(x, indices *Node, axis int) *Node {
	return Op("gather", []*Node{x, indices}, Attrs{"axis": axis})
}
