// Elementwise op family: unary math, binary arithmetic, comparisons, logical ops, where, clip
// and cast. Shapes broadcast like numpy; dtypes follow docs/ops.md (promote_types, NEP 50 weak
// scalars via promote_weak, to_floating for ops that need a float).
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

// A dtype plus whether it is still a weak scalar: promotion of several operands folds these.
struct Promoted {
  DType dtype;
  bool weak;
};

// NEP 50: a weak scalar yields to a strong tensor's dtype; two of a kind use numpy's table.
Promoted promote_pair(Promoted a, Promoted b) {
  if (a.weak == b.weak) return {promote_types(a.dtype, b.dtype), a.weak};
  if (a.weak) return {promote_weak(b.dtype, a.dtype), false};
  return {promote_weak(a.dtype, b.dtype), false};
}

DType promote_inputs(const std::vector<TensorType>& in, size_t first = 0) {
  Promoted p{in[first].dtype, in[first].weak};
  for (size_t i = first + 1; i < in.size(); ++i) p = promote_pair(p, {in[i].dtype, in[i].weak});
  return p.dtype;
}

[[noreturn]] void bool_error(const OpDef& op, const std::vector<TensorType>& in) {
  throw TypeError(str("[", op.name, "] not supported for bool: ", types_str(in)));
}

// neg, abs, sign, relu, floor, ceil, round: same dtype, bool rejected.
TensorType infer_unary_same(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  if (in[0].dtype == DType::Bool) bool_error(op, in);
  return {in[0].shape, in[0].dtype};
}

// exp, log, tanh, ...: compute in a float.
TensorType infer_unary_float(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  return {in[0].shape, to_floating(in[0].dtype)};
}

TensorType infer_gelu(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const std::string& approx = attrs.get_string("approximate");
  if (approx != "none" && approx != "tanh")
    throw ValidationError(
        str("[gelu] approximate must be \"none\" or \"tanh\", got \"", approx, "\""));
  return infer_unary_float(op, in, attrs);
}

TensorType infer_to_bool_unary(const OpDef&, const std::vector<TensorType>& in, Attrs&) {
  return {in[0].shape, DType::Bool};
}

// add, mul, maximum, minimum: promote; on bool they act as or/and/or/and.
TensorType infer_binary_arith(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  Shape s = broadcast_all(op, in);
  return {s, promote_inputs(in)};
}

// sub, mod, floor_divide, pow: as above, but bool (after promotion) is a TypeError like numpy's
// sub.
TensorType infer_binary_nobool(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  Shape s = broadcast_all(op, in);
  DType t = promote_inputs(in);
  if (t == DType::Bool) bool_error(op, in);
  return {s, t};
}

// bitwise_and/or/xor/not: integers and bool (numpy); left_shift/right_shift: integers only.
TensorType infer_bitwise(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  Shape s = broadcast_all(op, in);
  DType t = promote_inputs(in);
  bool ok =
      t == DType::Bool ? (op.name != "left_shift" && op.name != "right_shift") : is_integer(t);
  if (!ok)
    throw TypeError(str("[", op.name, "] needs integer",
                        op.name.find("shift") == std::string::npos ? " or bool" : "",
                        " operands, got ", types_str(in)));
  return {s, t};
}

TensorType infer_div(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  Shape s = broadcast_all(op, in);
  return {s, to_floating(promote_inputs(in))};
}

// Comparisons and logical ops: broadcast, output bool.
TensorType infer_binary_bool(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  Shape s = broadcast_all(op, in);
  return {s, DType::Bool};
}

TensorType infer_where(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  Shape s = broadcast_all(op, in);
  return {s, promote_inputs(in, 1)};  // cond's dtype only selects
}

TensorType infer_clip(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  Shape s = broadcast_all(op, in);
  return {s, promote_inputs(in)};
}

TensorType infer_cast(const OpDef&, const std::vector<TensorType>& in, Attrs& attrs) {
  const std::string& name = attrs.get_string("dtype");
  auto t = dtype_from_name(name);
  if (!t) throw ValidationError(str("[cast] unknown dtype \"", name, "\""));
  return {in[0].shape, *t};
}

// bitcast: the same bytes read as another dtype of the same size (ONNX BitCast).
TensorType infer_bitcast(const OpDef&, const std::vector<TensorType>& in, Attrs& attrs) {
  const std::string& name = attrs.get_string("dtype");
  auto t = dtype_from_name(name);
  if (!t) throw ValidationError(str("[bitcast] unknown dtype \"", name, "\""));
  if (dtype_size(*t) != dtype_size(in[0].dtype))
    throw TypeError(str("[bitcast] ", dtype_name(in[0].dtype), " ", shape_str(in[0].shape), " has ",
                        dtype_size(in[0].dtype), "-byte elements, ", name, " has ", dtype_size(*t),
                        ": bitcast needs the same size"));
  return {in[0].shape, *t};
}

constexpr uint32_t kEw = kElementwise | kFusable;

OpDef make(const char* name, int arity, InferFn infer, double flops) {
  OpDef d;
  d.name = name;
  d.min_inputs = d.max_inputs = arity;
  d.infer = infer;
  d.traits = kEw;
  d.flops_per_element = flops;
  return d;
}

}  // namespace

void register_elementwise_ops(Registry& r) {
  // Unary, dtype kept (bool rejected).
  for (const char* n : {"neg", "abs", "sign", "relu", "floor", "ceil", "round"})
    r.add(make(n, 1, infer_unary_same, 1));
  // Unary, float output. Costs are rough counts of a polynomial evaluation.
  struct F {
    const char* name;
    double flops;
  };
  for (F f : {F{"exp", 10},  F{"log", 10},     F{"sqrt", 4},   F{"rsqrt", 5},  F{"reciprocal", 1},
              F{"tanh", 15}, F{"sigmoid", 12}, F{"silu", 13},  F{"erf", 15},   F{"sin", 12},
              F{"cos", 12},  F{"tan", 20},     F{"asin", 20},  F{"acos", 20},  F{"atan", 20},
              F{"sinh", 15}, F{"cosh", 15},    F{"asinh", 20}, F{"acosh", 20}, F{"atanh", 20}})
    r.add(make(f.name, 1, infer_unary_float, f.flops));
  OpDef gelu = make("gelu", 1, infer_gelu, 20);
  gelu.attrs.push_back({"approximate", AttrType::String, AttrValue(std::string("none")), false});
  r.add(std::move(gelu));
  r.add(make("logical_not", 1, infer_to_bool_unary, 1));
  // Integer ops: elementwise but not fusable (fused programs compute in floats).
  for (const char* n : {"bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"}) {
    OpDef d = make(n, 2, infer_bitwise, 1);
    d.traits = kElementwise;
    r.add(std::move(d));
  }
  OpDef bnot = make("bitwise_not", 1, infer_bitwise, 1);
  bnot.traits = kElementwise;
  r.add(std::move(bnot));

  for (const char* n : {"add", "mul", "maximum", "minimum"})
    r.add(make(n, 2, infer_binary_arith, 1));
  r.add(make("sub", 2, infer_binary_nobool, 1));
  r.add(make("mod", 2, infer_binary_nobool, 4));
  // numpy floor_divide (Python's //). Elementwise but not fusable: fused programs and the
  // OpenCL renderer have no instruction for it, so it runs as its own CPU kernel.
  OpDef floor_divide = make("floor_divide", 2, infer_binary_nobool, 4);
  floor_divide.traits = kElementwise;
  r.add(std::move(floor_divide));
  r.add(make("pow", 2, infer_binary_nobool, 20));
  r.add(make("div", 2, infer_div, 1));
  for (const char* n : {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
                        "logical_and", "logical_or"})
    r.add(make(n, 2, infer_binary_bool, 1));

  r.add(make("where", 3, infer_where, 1));
  r.add(make("clip", 3, infer_clip, 2));
  OpDef cast = make("cast", 1, infer_cast, 1);
  cast.attrs.push_back({"dtype", AttrType::String, std::nullopt, true});
  // float8 targets only: out-of-range values saturate to the largest finite value (ONNX's default)
  // or become inf/NaN.
  cast.attrs.push_back({"saturate", AttrType::Bool, AttrValue(true), false});
  r.add(std::move(cast));
  OpDef bitcast = make("bitcast", 1, infer_bitcast, 0);
  bitcast.traits = kElementwise;  // not fusable: fused programs compute values, not bytes
  bitcast.attrs.push_back({"dtype", AttrType::String, std::nullopt, true});
  r.add(std::move(bitcast));
}

}  // namespace nef::ir
