// Unary elementwise kernels. Ops that keep the dtype (neg, abs, ...) run on the input's type;
// float ops (exp, tanh, gelu, ...) first bring the input to the output's float dtype (int -> f32)
// and compute in float (f16/bf16/f32) or double (f64). Integer math wraps like numpy, never UB.
// erf, exact gelu, exp, tanh and sigmoid in float run the vectorized vmath.h functions (libm is
// scalar).
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "backends/cpu/kernels/elementwise.h"
#include "backends/cpu/kernels/strided_iter.h"
#include "backends/cpu/kernels/vmath.h"
#include "common/dispatch.h"
#include "common/simd.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

template <typename C>
inline constexpr bool kIsInt = std::is_integral_v<C> && !std::is_same_v<C, bool>;

// Ops: apply(C) -> C on the compute type; `ok<T>` says which storage types the op accepts.
struct Neg {
  template <typename T>
  static constexpr bool ok = !std::is_same_v<T, bool>;
  template <typename C>
  static C apply(C x) {
    if constexpr (kIsInt<C>) return C(wrap_t<C>(0) - wrap_t<C>(x));
    else return -x;
  }
};
struct Abs {
  template <typename T>
  static constexpr bool ok = !std::is_same_v<T, bool>;
  template <typename C>
  static C apply(C x) {
    if constexpr (std::is_unsigned_v<C>) return x;
    else if constexpr (kIsInt<C>) return x < 0 ? Neg::apply(x) : x;  // INT_MIN stays INT_MIN
    else return std::fabs(x);
  }
};
struct Sign {
  template <typename T>
  static constexpr bool ok = !std::is_same_v<T, bool>;
  template <typename C>
  static C apply(C x) {
    if constexpr (std::is_floating_point_v<C>)
      return x > 0 ? C(1) : x < 0 ? C(-1) : x;  // NaN, 0 kept
    else return C((x > 0) - (x < 0));
  }
};
struct Relu {
  template <typename T>
  static constexpr bool ok = !std::is_same_v<T, bool>;
  template <typename C>
  static C apply(C x) {
    return x < C(0) ? C(0) : x;
  }  // NaN propagates
};
struct Floor {
  template <typename T>
  static constexpr bool ok = !std::is_same_v<T, bool>;
  template <typename C>
  static C apply(C x) {
    if constexpr (std::is_floating_point_v<C>) return std::floor(x);
    else return x;
  }
};
struct Ceil {
  template <typename T>
  static constexpr bool ok = !std::is_same_v<T, bool>;
  template <typename C>
  static C apply(C x) {
    if constexpr (std::is_floating_point_v<C>) return std::ceil(x);
    else return x;
  }
};
struct Round {
  template <typename T>
  static constexpr bool ok = !std::is_same_v<T, bool>;
  template <typename C>
  static C apply(C x) {
    if constexpr (std::is_floating_point_v<C>) return std::nearbyint(x);  // half to even
    else return x;
  }
};

// Float-only ops (inputs were converted to the float output dtype).
template <typename T>
inline constexpr bool kFloatStorage =
    std::is_floating_point_v<T> || std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>;
#define NEF_FLOAT_OP(Name, expr)                 \
  struct Name {                                  \
    template <typename T>                        \
    static constexpr bool ok = kFloatStorage<T>; \
    template <typename C>                        \
    static C apply(C x) {                        \
      return expr;                               \
    }                                            \
  };
NEF_FLOAT_OP(Exp, std::exp(x))
NEF_FLOAT_OP(Log, std::log(x))
NEF_FLOAT_OP(Sqrt, std::sqrt(x))
NEF_FLOAT_OP(Rsqrt, C(1) / std::sqrt(x))
NEF_FLOAT_OP(Reciprocal, C(1) / x)
NEF_FLOAT_OP(Tanh, std::tanh(x))
NEF_FLOAT_OP(Sigmoid, C(1) / (C(1) + std::exp(-x)))
NEF_FLOAT_OP(Silu, x / (C(1) + std::exp(-x)))
NEF_FLOAT_OP(Erf, std::erf(x))
NEF_FLOAT_OP(Sin, std::sin(x))
NEF_FLOAT_OP(Cos, std::cos(x))
NEF_FLOAT_OP(Tan, std::tan(x))
NEF_FLOAT_OP(Asin, std::asin(x))
NEF_FLOAT_OP(Acos, std::acos(x))
NEF_FLOAT_OP(Atan, std::atan(x))
NEF_FLOAT_OP(Sinh, std::sinh(x))
NEF_FLOAT_OP(Cosh, std::cosh(x))
NEF_FLOAT_OP(Asinh, std::asinh(x))
NEF_FLOAT_OP(Acosh, std::acosh(x))
NEF_FLOAT_OP(Atanh, std::atanh(x))
NEF_FLOAT_OP(GeluErf, C(0.5) * x * (C(1) + std::erf(x * C(0.70710678118654752440))))
NEF_FLOAT_OP(GeluTanh,
             C(0.5) * x *
                 (C(1) + std::tanh(C(0.79788456080286535588) * (x + C(0.044715) * x * x * x))))
#undef NEF_FLOAT_OP

// Ops with a vectorized float32 array version (vmath.h), used when the compute type is float.
// (A separate bool: GCC with -fsanitize rejects `pointer != nullptr` in `if constexpr`.)
template <typename Op>
inline constexpr bool kHasVecF32 = false;
template <typename Op>
inline constexpr void (*kVecF32)(const float*, float*, size_t) = nullptr;
template <>
inline constexpr bool kHasVecF32<Erf> = true;
template <>
inline constexpr void (*kVecF32<Erf>)(const float*, float*, size_t) = vmath::erf;
template <>
inline constexpr bool kHasVecF32<GeluErf> = true;
template <>
inline constexpr void (*kVecF32<GeluErf>)(const float*, float*, size_t) = vmath::gelu_erf;
template <>
inline constexpr bool kHasVecF32<Exp> = true;
template <>
inline constexpr void (*kVecF32<Exp>)(const float*, float*, size_t) = vmath::exp;
template <>
inline constexpr bool kHasVecF32<Tanh> = true;
template <>
inline constexpr void (*kVecF32<Tanh>)(const float*, float*, size_t) = vmath::tanh;
template <>
inline constexpr bool kHasVecF32<Sigmoid> = true;
template <>
inline constexpr void (*kVecF32<Sigmoid>)(const float*, float*, size_t) = vmath::sigmoid;
template <>
inline constexpr bool kHasVecF32<Log> = true;
template <>
inline constexpr void (*kVecF32<Log>)(const float*, float*, size_t) = vmath::log;
template <>
inline constexpr bool kHasVecF32<Silu> = true;
template <>
inline constexpr void (*kVecF32<Silu>)(const float*, float*, size_t) = vmath::silu;
template <>
inline constexpr bool kHasVecF32<GeluTanh> = true;
template <>
inline constexpr void (*kVecF32<GeluTanh>)(const float*, float*, size_t) = vmath::gelu_tanh;

template <typename Op, typename T, typename O>
NEF_SIMD_CLONES void unary_row(const T* x, int64_t sx, O* o, int64_t so, int64_t n) {
  if (so == 1 && sx == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = store_as<O>(Op::apply(load_as(x[i])));
  } else if (so == 1 && sx == 0) {
    O v = store_as<O>(Op::apply(load_as(x[0])));
    for (int64_t i = 0; i < n; ++i) o[i] = v;
  } else {
    for (int64_t i = 0; i < n; ++i) o[i * so] = store_as<O>(Op::apply(load_as(x[i * sx])));
  }
}

// A row through a vmath array function: in place for contiguous float32, else in chunks
// converted to float through a stack buffer.
template <typename T>
void vec_row(void (*f)(const float*, float*, size_t), const T* x, int64_t sx, T* o, int64_t so,
             int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    if (sx == 1 && so == 1) return f(x, o, size_t(n));
  }
  constexpr int64_t kChunk = 256;
  float buf[kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t m = std::min(kChunk, n - i0);
    for (int64_t i = 0; i < m; ++i) buf[i] = load_as(x[(i0 + i) * sx]);
    f(buf, buf, size_t(m));
    for (int64_t i = 0; i < m; ++i) o[(i0 + i) * so] = store_as<T>(buf[i]);
  }
}

template <typename Op, typename T, typename O>
void run_unary(const Array& x, const Array& out) {
  auto it = make_elementwise_iter<2>(out, {&x});
  it.parallel_rows([&](const int64_t* off, int64_t n) {
    if constexpr (std::is_same_v<T, O> && std::is_same_v<compute_t<T>, float>) {
      if constexpr (kHasVecF32<Op>)
        return vec_row<T>(kVecF32<Op>, elem_ptr<const T>(x, off[1]), it.inner_stride(1),
                          elem_ptr<O>(out, off[0]), it.inner_stride(0), n);
    }
    unary_row<Op, T, O>(elem_ptr<const T>(x, off[1]), it.inner_stride(1), elem_ptr<O>(out, off[0]),
                        it.inner_stride(0), n);
  });
}

// Output dtype == compute dtype; the input is converted to it first when it differs (int -> f32).
template <typename Op>
void unary_kernel(const KernelArgs& args) {
  const Array& out = args.out;
  if (out.numel() == 0) return;
  Array x_cast;
  const Array& x = cast_array(args.inputs[0], out.dtype, x_cast);
  dispatch_dtype(out.dtype, [&]<typename T>() {
    if constexpr (Op::template ok<T>) {
      run_unary<Op, T, T>(x, out);
    } else {
      throw TypeError(str("[", args.node.op->name, "] not supported for ", dtype_name(out.dtype),
                          ": ", shape_str(out.shape)));
    }
  });
}

void gelu_kernel(const KernelArgs& args) {
  if (args.attrs.get_string("approximate") == "tanh") unary_kernel<GeluTanh>(args);
  else unary_kernel<GeluErf>(args);
}

struct LogicalNot {
  template <typename C>
  static bool apply(C x) {
    return x == C(0);
  }
};

// bitwise_not: ~x on integers, logical not on bool (numpy's invert).
struct BitwiseNot {
  template <typename T>
  static constexpr bool ok = std::is_integral_v<T>;
  template <typename C>
  static C apply(C x) {
    if constexpr (std::is_same_v<C, bool>) return !x;
    else return C(~x);
  }
};

void logical_not_kernel(const KernelArgs& args) {
  const Array& x = args.inputs[0];
  if (args.out.numel() == 0) return;
  dispatch_dtype(x.dtype, [&]<typename T>() { run_unary<LogicalNot, T, bool>(x, args.out); });
}

}  // namespace

void register_unary_kernels(KernelTable& t) {
  t.add("neg", unary_kernel<Neg>);
  t.add("abs", unary_kernel<Abs>);
  t.add("sign", unary_kernel<Sign>);
  t.add("relu", unary_kernel<Relu>);
  t.add("floor", unary_kernel<Floor>);
  t.add("ceil", unary_kernel<Ceil>);
  t.add("round", unary_kernel<Round>);
  t.add("exp", unary_kernel<Exp>);
  t.add("log", unary_kernel<Log>);
  t.add("sqrt", unary_kernel<Sqrt>);
  t.add("rsqrt", unary_kernel<Rsqrt>);
  t.add("reciprocal", unary_kernel<Reciprocal>);
  t.add("tanh", unary_kernel<Tanh>);
  t.add("sigmoid", unary_kernel<Sigmoid>);
  t.add("silu", unary_kernel<Silu>);
  t.add("erf", unary_kernel<Erf>);
  t.add("sin", unary_kernel<Sin>);
  t.add("cos", unary_kernel<Cos>);
  t.add("tan", unary_kernel<Tan>);
  t.add("asin", unary_kernel<Asin>);
  t.add("acos", unary_kernel<Acos>);
  t.add("atan", unary_kernel<Atan>);
  t.add("sinh", unary_kernel<Sinh>);
  t.add("cosh", unary_kernel<Cosh>);
  t.add("asinh", unary_kernel<Asinh>);
  t.add("acosh", unary_kernel<Acosh>);
  t.add("atanh", unary_kernel<Atanh>);
  t.add("bitwise_not", unary_kernel<BitwiseNot>);
  t.add("gelu", gelu_kernel);
  t.add("logical_not", logical_not_kernel);
}

}  // namespace nef::backend::cpu
