// ONNX elementwise ops: arithmetic, math functions, activations, comparisons, logic, Cast, Clip,
// Where and the variadic Sum/Mean/Max/Min. ONNX never promotes (operands share one dtype and the
// result keeps it), so where a NEF op would promote or produce a float (integer Div, Pow with a
// differently typed exponent), the result is cast back to the ONNX type.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "onnx/converter.h"

namespace nef::onnx_import {
namespace {

using Tensors = std::vector<Tensor>;
using Unary = Tensor (*)(const Tensor&);
using Binary = Tensor (*)(const Tensor&, const Tensor&);

constexpr double kInf = std::numeric_limits<double>::infinity();

// A typed constant with x's dtype (ONNX attributes such as alpha are applied in the input type).
Tensor like(double v, const Tensor& x) { return scalar_like(v, x.dtype()); }

// Type constraints of the ONNX schemas. A model that breaks them is invalid (the checker would
// reject it), and NEF would otherwise quietly compute something else (exp of an int -> float32).
enum class Types { Float, Numeric, Bool, Any };

void check_type(const NodeCtx& ctx, const Tensor& x, Types want) {
  DType t = x.dtype();
  bool ok = want == Types::Any     ? true
            : want == Types::Float ? is_floating(t)
            : want == Types::Bool  ? t == DType::Bool
                                   : t != DType::Bool;
  if (ok) return;
  const char* what = want == Types::Float  ? "a float"
                     : want == Types::Bool ? "a bool"
                                           : "a numeric";
  ctx.fail(str("input must be ", what, " tensor, got ", dtype_name(t), " ", shape_str(x.shape())));
}

// All inputs of an ONNX op bound to one type parameter must share the dtype.
void check_same(const NodeCtx& ctx, const std::vector<Tensor>& xs) {
  for (size_t i = 1; i < xs.size(); ++i)
    if (xs[i].dtype() != xs[0].dtype())
      ctx.fail(str("inputs must have one dtype, got ", dtype_name(xs[0].dtype()), " ",
                   shape_str(xs[0].shape()), " and ", dtype_name(xs[i].dtype()), " ",
                   shape_str(xs[i].shape())));
}

Tensor input_of(const NodeCtx& ctx, size_t i, Types want) {
  Tensor x = ctx.input(i);
  check_type(ctx, x, want);
  return x;
}

std::vector<Tensor> inputs_of(const NodeCtx& ctx, Types want, size_t min_count) {
  if (ctx.num_inputs() < min_count)
    ctx.fail(str("expects at least ", min_count, " inputs, got ", ctx.num_inputs()));
  std::vector<Tensor> xs;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) xs.push_back(input_of(ctx, i, want));
  check_same(ctx, xs);
  return xs;
}

Tensor cast_to(const Tensor& x, DType t) { return x.dtype() == t ? x : nef::cast(x, t); }

// ---- arithmetic --------------------------------------------------------------------------------

Converter binary(Binary fn, Types want) {
  return [fn, want](NodeCtx& ctx) -> Tensors {
    auto xs = inputs_of(ctx, want, 2);
    if (xs.size() != 2) ctx.fail(str("expects 2 inputs, got ", xs.size()));
    return {fn(xs[0], xs[1])};
  };
}

// Integer Div truncates toward zero (C semantics), exactly for every width (a float64 quotient
// would round int64/uint64 beyond 2^53): numpy's floor division, plus one where the signs
// differ and the division is inexact. Unsigned floor and truncation agree.
Tensors div_op(NodeCtx& ctx) {
  auto xs = inputs_of(ctx, Types::Numeric, 2);
  const Tensor &a = xs[0], &b = xs[1];
  if (is_floating(a.dtype())) return {nef::div(a, b)};
  Tensor q = nef::op("floor_divide", {a, b});
  if (!is_signed(a.dtype())) return {q};
  Tensor inexact = nef::not_equal(nef::mod(a, b), like(0, a));
  Tensor signs_differ = nef::not_equal(nef::less(a, like(0, a)), nef::less(b, like(0, b)));
  return {nef::add(q, nef::cast(nef::logical_and(inexact, signs_differ), a.dtype()))};
}

// Pow's exponent may have another numeric type; the result has the base's type (numpy computes
// power in the promoted type, then the reference casts back; so does this).
Tensors pow_op(NodeCtx& ctx) {
  if (ctx.num_inputs() != 2) ctx.fail(str("expects 2 inputs, got ", ctx.num_inputs()));
  Tensor x = input_of(ctx, 0, Types::Numeric);
  Tensor y = input_of(ctx, 1, Types::Numeric);
  return {cast_to(nef::pow(x, y), x.dtype())};
}

// fmod=0: numpy remainder (sign of the divisor), integers only per the spec. fmod=1: C fmod
// (sign of the dividend) = sign(a) * (|a| mod |b|), exact for floats since the remainder of
// non-negative operands needs no adjustment.
Tensors mod_op(NodeCtx& ctx) {
  auto xs = inputs_of(ctx, Types::Numeric, 2);
  if (xs.size() != 2) ctx.fail(str("expects 2 inputs, got ", xs.size()));
  int64_t fmod = ctx.attr_int("fmod", 0);
  if (fmod != 0 && fmod != 1) ctx.fail(str("fmod must be 0 or 1, got ", fmod));
  const Tensor &a = xs[0], &b = xs[1];
  if (fmod == 0) {
    if (is_floating(a.dtype())) ctx.fail("fmod must be 1 for floating-point inputs");
    return {nef::mod(a, b)};
  }
  if (!is_signed(a.dtype())) return {nef::mod(a, b)};  // unsigned: both rules agree
  return {nef::mul(nef::sign(a), nef::mod(nef::abs(a), nef::abs(b)))};
}

// Sum, Mean, Max, Min: one or more inputs, multidirectional broadcasting, folded pairwise.
Converter variadic(Binary fn, Types want, bool mean) {
  return [fn, want, mean](NodeCtx& ctx) -> Tensors {
    auto xs = inputs_of(ctx, want, 1);
    Tensor acc = xs[0];
    for (size_t i = 1; i < xs.size(); ++i) acc = fn(acc, xs[i]);
    if (mean && xs.size() > 1) acc = nef::div(acc, like(double(xs.size()), acc));
    return {acc};
  };
}

// ---- unary math and activations -----------------------------------------------------------------

Converter unary(Unary fn, Types want) {
  return [fn, want](NodeCtx& ctx) -> Tensors { return {fn(input_of(ctx, 0, want))}; };
}

// The activations below all take one float tensor; `f(ctx, x)` reads the attributes it uses.
template <typename F>
Converter activation(F f) {
  return [f](NodeCtx& ctx) -> Tensors { return {f(ctx, input_of(ctx, 0, Types::Float))}; };
}

// The reference selects with `x > 0`, so NaN takes the "negative" branch, which keeps NaN.
Tensor positive_or(const Tensor& x, const Tensor& neg) {
  return nef::where(nef::greater(x, like(0, x)), x, neg);
}

// log(1 + exp(x)) without overflow: max(x, 0) + log(1 + exp(-|x|)).
Tensor softplus(const Tensor& x) {
  return nef::add(nef::relu(x), nef::log(nef::add(like(1, x), nef::exp(nef::neg(nef::abs(x))))));
}

Tensors prelu_op(NodeCtx& ctx) {
  Tensor x = input_of(ctx, 0, Types::Numeric);
  Tensor slope = input_of(ctx, 1, Types::Numeric);
  check_same(ctx, {x, slope});
  Tensor y = positive_or(x, nef::mul(x, slope));
  // slope broadcasts to X only (unidirectional): it may not grow the output.
  if (y.shape() != x.shape())
    ctx.fail(
        str("slope ", shape_str(slope.shape()), " does not broadcast to X ", shape_str(x.shape())));
  return {y};
}

Tensors gelu_op(NodeCtx& ctx) {
  Tensor x = input_of(ctx, 0, Types::Float);
  std::string approx = ctx.attr_string("approximate", "none");
  if (approx != "none" && approx != "tanh")
    ctx.fail(str("approximate must be \"none\" or \"tanh\", got \"", approx, "\""));
  return {nef::gelu(x, approx)};
}

// ---- comparisons and logic ------------------------------------------------------------------

Tensors not_op(NodeCtx& ctx) { return {nef::logical_not(input_of(ctx, 0, Types::Bool))}; }

Tensors isnan_op(NodeCtx& ctx) {
  Tensor x = input_of(ctx, 0, Types::Float);
  return {nef::not_equal(x, x)};
}

Tensors isinf_op(NodeCtx& ctx) {
  Tensor x = input_of(ctx, 0, Types::Float);
  bool neg = ctx.attr_int("detect_negative", 1) != 0;
  bool pos = ctx.attr_int("detect_positive", 1) != 0;
  if (pos && neg) return {nef::equal(nef::abs(x), like(kInf, x))};
  if (pos) return {nef::equal(x, like(kInf, x))};
  if (neg) return {nef::equal(x, like(-kInf, x))};
  return {nef::full(x.shape(), 0, DType::Bool)};
}

Tensors where_op(NodeCtx& ctx) {
  if (ctx.num_inputs() != 3) ctx.fail(str("expects 3 inputs, got ", ctx.num_inputs()));
  Tensor c = input_of(ctx, 0, Types::Bool);
  Tensor a = ctx.input(1), b = ctx.input(2);
  check_same(ctx, {a, b});
  return {nef::where(c, a, b)};
}

// ---- Cast, Clip, Identity -----------------------------------------------------------------

// saturate changes float8 targets only; round_mode only float8e8m0, which NEF does not have: it
// is read (so that it is accepted) and validated.
Tensor cast_with_modes(const NodeCtx& ctx, const Tensor& x, DType t) {
  const int64_t saturate = ctx.attr_int("saturate", 1);
  if (saturate != 0 && saturate != 1) ctx.fail(str("saturate must be 0 or 1, got ", saturate));
  if (ctx.has_attr("round_mode")) {
    std::string m = ctx.attr_string("round_mode");
    if (m != "up" && m != "down" && m != "nearest")
      ctx.fail(str("round_mode must be \"up\", \"down\" or \"nearest\", got \"", m, "\""));
  }
  if (x.dtype() == t) return x;
  ir::Attrs attrs;
  attrs.set("dtype", std::string(dtype_name(t)));
  attrs.set("saturate", saturate == 1);
  return nef::op("cast", {x}, std::move(attrs));
}

Tensors cast_op(NodeCtx& ctx) {
  int to = static_cast<int>(ctx.attr_int("to"));
  std::optional<DType> t = dtype_from_onnx(to);
  if (!t) ctx.unsupported(str("cast to ", onnx_type_name(to)));
  return {cast_with_modes(ctx, ctx.input(0), *t)};
}

// BitCast-26: same bytes, another type of the same width (little-endian, as NEF stores).
Tensors bitcast_op(NodeCtx& ctx) {
  int to = static_cast<int>(ctx.attr_int("to"));
  std::optional<DType> t = dtype_from_onnx(to);
  if (!t) ctx.unsupported(str("bitcast to ", onnx_type_name(to)));
  Tensor x = ctx.input(0);
  if (dtype_size(*t) != dtype_size(x.dtype()))
    ctx.fail(str("'to' ", onnx_type_name(to), " is ", dtype_size(*t) * 8,
                 " bits wide but the input ", dtype_name(x.dtype()), " ", shape_str(x.shape()),
                 " is ", dtype_size(x.dtype()) * 8, ": BitCast needs equal widths"));
  if (*t == x.dtype()) return {x};
  ir::Attrs attrs;
  attrs.set("dtype", std::string(dtype_name(*t)));
  return {nef::op("bitcast", {x}, std::move(attrs))};
}

Tensors castlike_op(NodeCtx& ctx) {
  return {cast_with_modes(ctx, ctx.input(0), ctx.input(1).dtype())};
}

// min and max are optional (absent or ""); each must be a scalar of X's type per the spec, but
// any broadcastable shape is accepted since numpy's clip accepts it. min > max gives max.
// Before revision 11 they are float attributes whose defaults are float32's lowest and max.
Tensors clip_op(NodeCtx& ctx) {
  Tensor x = input_of(ctx, 0, Types::Numeric);
  if (ctx.version() < 11) {
    if (ctx.num_inputs() != 1)
      ctx.fail(str("expects 1 input before opset 11, got ", ctx.num_inputs()));
    if (!is_floating(x.dtype()))
      ctx.fail(str("input must be a float tensor before opset 12, got ", dtype_name(x.dtype())));
    const double big = std::numeric_limits<float>::max();
    Tensor lo = like(ctx.attr_float("min", -big), x), hi = like(ctx.attr_float("max", big), x);
    return {nef::minimum(nef::maximum(x, lo), hi)};
  }
  bool has_lo = ctx.has_input(1), has_hi = ctx.has_input(2);
  std::vector<Tensor> all{x};
  if (has_lo) all.push_back(ctx.input(1));
  if (has_hi) all.push_back(ctx.input(2));
  check_same(ctx, all);
  Tensor y = x;
  if (has_lo && has_hi) y = nef::clip(x, ctx.input(1), ctx.input(2));
  else if (has_lo) y = nef::maximum(x, ctx.input(1));
  else if (has_hi) y = nef::minimum(x, ctx.input(2));
  if (y.shape() != x.shape())
    ctx.fail(str("min/max do not broadcast to input ", shape_str(x.shape())));
  return {y};
}

Tensors identity_op(NodeCtx& ctx) { return {ctx.input(0)}; }

// ---- bitwise -------------------------------------------------------------------------------

Tensor int_input(const NodeCtx& ctx, size_t i) {
  Tensor x = ctx.input(i);
  if (!is_integer(x.dtype()))
    ctx.fail(str("input ", i, " must be an integer tensor, got ", dtype_name(x.dtype()), " ",
                 shape_str(x.shape())));
  return x;
}

Converter bitwise(Binary fn) {
  return [fn](NodeCtx& ctx) -> Tensors {
    if (ctx.num_inputs() != 2) ctx.fail(str("expects 2 inputs, got ", ctx.num_inputs()));
    Tensor a = int_input(ctx, 0), b = int_input(ctx, 1);
    check_same(ctx, {a, b});
    return {fn(a, b)};
  };
}

Tensors bitwise_not_op(NodeCtx& ctx) { return {nef::bitwise_not(int_input(ctx, 0))}; }

// BitShift is defined on unsigned integers only.
Tensors bitshift_op(NodeCtx& ctx) {
  if (ctx.num_inputs() != 2) ctx.fail(str("expects 2 inputs, got ", ctx.num_inputs()));
  Tensor a = int_input(ctx, 0), b = int_input(ctx, 1);
  check_same(ctx, {a, b});
  if (is_signed(a.dtype()))
    ctx.fail(str("inputs must be unsigned integers, got ", dtype_name(a.dtype())));
  std::string dir = ctx.attr_string("direction");
  if (dir == "LEFT") return {nef::left_shift(a, b)};
  if (dir == "RIGHT") return {nef::right_shift(a, b)};
  ctx.fail(str("direction must be \"LEFT\" or \"RIGHT\", got \"", dir, "\""));
}

// Shrink: x + bias below -lambd, x - bias above lambd, 0 between (any numeric type; the
// attributes are applied in x's type, as the reference casts them).
Tensors shrink_op(NodeCtx& ctx) {
  Tensor x = input_of(ctx, 0, Types::Numeric);
  double lambd = ctx.attr_float("lambd", 0.5), bias = ctx.attr_float("bias", 0.0);
  Tensor lo = nef::add(x, like(bias, x)), hi = nef::sub(x, like(bias, x));
  return {nef::where(nef::less(x, like(-lambd, x)), lo,
                     nef::where(nef::greater(x, like(lambd, x)), hi, like(0, x)))};
}

}  // namespace

void register_elementwise(ConverterTable& t) {
  using T = Types;
  // Revisions: the opsets in which ONNX changed each op (converter.h); the last number is the
  // oldest revision converted. Older revisions carry legacy attributes (consumed_inputs, the
  // per-op broadcast/axis flags of binary ops before opset 7) that NEF does not take.
  const std::vector<int> unary6 = {1, 6, 13};  // Sqrt, Exp, ...: consumed_inputs before 6
  const std::vector<int> arith = {1, 6, 7, 13, 14};
  t["Add"] = {binary(nef::add, T::Numeric), arith, 7};
  t["Sub"] = {binary(nef::sub, T::Numeric), arith, 7};
  t["Mul"] = {binary(nef::mul, T::Numeric), arith, 7};
  t["Div"] = {div_op, arith, 7};
  t["Pow"] = {pow_op, {1, 7, 12, 13, 15}, 7};
  t["Mod"] = {mod_op, {10, 13}, 10};
  // Revision 6 requires equal shapes, 8 broadcasts: broadcasting is the superset.
  t["Sum"] = {variadic(nef::add, T::Float, false), {1, 6, 8, 13}, 6};
  t["Mean"] = {variadic(nef::add, T::Float, true), {1, 6, 8, 13}, 6};
  t["Max"] = {variadic(nef::maximum, T::Numeric, false), {1, 6, 8, 12, 13}, 6};  // NaN wins
  t["Min"] = {variadic(nef::minimum, T::Numeric, false), {1, 6, 8, 12, 13}, 6};

  t["Sqrt"] = {unary(nef::sqrt, T::Float), unary6, 6};
  t["Reciprocal"] = {unary(nef::reciprocal, T::Float), unary6, 6};
  t["Neg"] = {unary(nef::neg, T::Numeric), unary6, 6};
  t["Abs"] = {unary(nef::abs, T::Numeric), unary6, 6};
  t["Sign"] = {unary(nef::sign, T::Numeric), {9, 13}, 9};
  t["Exp"] = {unary(nef::exp, T::Float), unary6, 6};
  t["Log"] = {unary(nef::log, T::Float), unary6, 6};
  t["Floor"] = {unary(nef::floor, T::Float), unary6, 6};
  t["Ceil"] = {unary(nef::ceil, T::Float), unary6, 6};
  t["Round"] = {unary(nef::round, T::Float), {11, 22}, 11};  // half to even, like ONNX
  t["Erf"] = {unary(nef::erf, T::Float), {9, 13}, 9};
  t["Tanh"] = {unary(nef::tanh, T::Float), unary6, 6};
  t["Sigmoid"] = {unary(nef::sigmoid, T::Float), unary6, 6};
  t["Relu"] = {unary(nef::relu, T::Numeric), {1, 6, 13, 14}, 6};  // 14 added integer types
  // Trigonometric and hyperbolic functions (float types).
  t["Sin"] = {unary(nef::sin, T::Float), {7, 22}, 7};
  t["Cos"] = {unary(nef::cos, T::Float), {7, 22}, 7};
  t["Tan"] = {unary(nef::tan, T::Float), {7, 22}, 7};
  t["Asin"] = {unary(nef::asin, T::Float), {7, 22}, 7};
  t["Acos"] = {unary(nef::acos, T::Float), {7, 22}, 7};
  t["Atan"] = {unary(nef::atan, T::Float), {7, 22}, 7};
  t["Sinh"] = {unary(nef::sinh, T::Float), {9, 22}, 9};
  t["Cosh"] = {unary(nef::cosh, T::Float), {9, 22}, 9};
  t["Asinh"] = {unary(nef::asinh, T::Float), {9, 22}, 9};
  t["Acosh"] = {unary(nef::acosh, T::Float), {9, 22}, 9};
  t["Atanh"] = {unary(nef::atanh, T::Float), {9, 22}, 9};

  t["LeakyRelu"] = {activation([](NodeCtx& ctx, const Tensor& x) {
                      double alpha = ctx.attr_float("alpha", 0.01);
                      return positive_or(x, nef::mul(x, like(alpha, x)));
                    }),
                    {1, 6, 16},
                    6};
  t["PRelu"] = {prelu_op, {1, 6, 7, 9, 16}, 7};  // 7: slope broadcasts unidirectionally
  t["Elu"] = {activation([](NodeCtx& ctx, const Tensor& x) {
                double alpha = ctx.attr_float("alpha", 1.0);
                return positive_or(x, nef::mul(like(alpha, x), nef::sub(nef::exp(x), like(1, x))));
              }),
              {1, 6, 22},
              6};
  t["Selu"] = {activation([](NodeCtx& ctx, const Tensor& x) {
                 double alpha = ctx.attr_float("alpha", 1.67326319217681884765625);
                 double gamma = ctx.attr_float("gamma", 1.05070102214813232421875);
                 Tensor neg = nef::sub(nef::mul(nef::exp(x), like(alpha, x)), like(alpha, x));
                 return nef::mul(positive_or(x, neg), like(gamma, x));
               }),
               {1, 6, 22},
               6};
  // max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
  t["Celu"] = {activation([](NodeCtx& ctx, const Tensor& x) {
                 double alpha = ctx.attr_float("alpha", 1.0);
                 if (alpha == 0) ctx.fail("alpha must be nonzero");
                 Tensor e = nef::sub(nef::exp(nef::div(x, like(alpha, x))), like(1, x));
                 return nef::add(nef::maximum(x, like(0, x)),
                                 nef::minimum(nef::mul(e, like(alpha, x)), like(0, x)));
               }),
               {12},
               12};
  t["Gelu"] = {gelu_op, {20}, 20};
  t["HardSigmoid"] = {activation([](NodeCtx& ctx, const Tensor& x) {
                        double alpha = ctx.attr_float("alpha", 0.2);
                        double beta = ctx.attr_float("beta", 0.5);
                        Tensor v = nef::add(nef::mul(x, like(alpha, x)), like(beta, x));
                        return nef::clip(v, like(0, x), like(1, x));
                      }),
                      {1, 6, 22},
                      6};
  t["HardSwish"] = {activation([](NodeCtx&, const Tensor& x) {
                      Tensor v = nef::add(nef::mul(x, like(1.0 / 6.0, x)), like(0.5, x));
                      return nef::mul(x, nef::clip(v, like(0, x), like(1, x)));
                    }),
                    {14, 22},
                    14};
  t["Softplus"] = {activation([](NodeCtx&, const Tensor& x) { return softplus(x); }), {1, 22}, 1};
  t["Softsign"] = {activation([](NodeCtx&, const Tensor& x) {
                     return nef::div(x, nef::add(like(1, x), nef::abs(x)));
                   }),
                   {1, 22},
                   1};
  t["ThresholdedRelu"] = {activation([](NodeCtx& ctx, const Tensor& x) {
                            double alpha = ctx.attr_float("alpha", 1.0);
                            return nef::where(nef::greater(x, like(alpha, x)), x, like(0, x));
                          }),
                          {10, 22},
                          10};
  t["Mish"] = {
      activation([](NodeCtx&, const Tensor& x) { return nef::mul(x, nef::tanh(softplus(x))); }),
      {18, 22},
      18};
  // x * sigmoid(alpha * x)
  t["Swish"] = {activation([](NodeCtx& ctx, const Tensor& x) {
                  double alpha = ctx.attr_float("alpha", 1.0);
                  return nef::mul(x, nef::sigmoid(nef::mul(x, like(alpha, x))));
                }),
                {24},
                24};
  t["Shrink"] = {shrink_op, {9}, 9};

  t["Equal"] = {binary(nef::equal, T::Any), {1, 7, 11, 13, 19}, 7};
  t["Less"] = {binary(nef::less, T::Numeric), {1, 7, 9, 13}, 7};
  t["LessOrEqual"] = {binary(nef::less_equal, T::Numeric), {12, 16}, 12};
  t["Greater"] = {binary(nef::greater, T::Numeric), {1, 7, 9, 13}, 7};
  t["GreaterOrEqual"] = {binary(nef::greater_equal, T::Numeric), {12, 16}, 12};
  t["Not"] = {not_op, {1}, 1};
  t["And"] = {binary(nef::logical_and, T::Bool), {1, 7}, 7};
  t["Or"] = {binary(nef::logical_or, T::Bool), {1, 7}, 7};
  t["Xor"] = {binary(nef::not_equal, T::Bool), {1, 7}, 7};
  t["Where"] = {where_op, {9, 16}, 9};
  t["IsNaN"] = {isnan_op, {9, 13, 20}, 9};
  t["IsInf"] = {isinf_op, {10, 20}, 10};

  t["BitwiseAnd"] = {bitwise(nef::bitwise_and), {18}, 18};
  t["BitwiseOr"] = {bitwise(nef::bitwise_or), {18}, 18};
  t["BitwiseXor"] = {bitwise(nef::bitwise_xor), {18}, 18};
  t["BitwiseNot"] = {bitwise_not_op, {18}, 18};
  t["BitShift"] = {bitshift_op, {11}, 11};

  // Cast-1 named its target type with a string.
  t["Cast"] = {cast_op, {1, 6, 9, 13, 19, 21, 23, 24, 25}, 6};
  t["CastLike"] = {castlike_op, {15, 19, 21, 23, 24, 25}, 15};
  t["BitCast"] = {bitcast_op, {26}, 26};
  t["Clip"] = {clip_op, {1, 6, 11, 12, 13}, 6};
  t["Identity"] = {identity_op, {1, 13, 14, 16, 19, 21, 23, 24, 25}, 1};
}

}  // namespace nef::onnx_import
