// Binary elementwise kernels: arithmetic, comparisons, logical ops, with numpy broadcasting.
// Both operands are first brought to one compute dtype (the output dtype for arithmetic, the
// promoted input dtype for comparisons, bool for logical ops), so each op instantiates one loop
// per dtype instead of one per dtype pair. Integer math wraps and never traps (x % 0 = 0,
// INT_MIN % -1 = 0, x // 0 = 0, INT_MIN // -1 = INT_MIN; x / 0 cannot happen: div is float).
#include <cmath>
#include <type_traits>

#include "backends/cpu/kernels/elementwise.h"
#include "backends/cpu/kernels/strided_iter.h"
#include "common/dispatch.h"
#include "common/simd.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace {

template <typename C>
inline constexpr bool kIsInt = std::is_integral_v<C> && !std::is_same_v<C, bool>;
template <typename T>
inline constexpr bool kIsBool = std::is_same_v<T, bool>;
template <typename T>
inline constexpr bool kFloatStorage =
    std::is_floating_point_v<T> || std::is_same_v<T, float16_t> || std::is_same_v<T, bfloat16_t>;

// Which dtype the operands are converted to before the loop.
enum class Operand { Out, Promoted, Bool };

// Ops: apply(C, C) on the compute type; kOperand picks the operand dtype; kBoolOut whether the
// result is bool; ok<T> which operand storage types are valid (inference rejects the others).
struct ArithBase {
  static constexpr Operand kOperand = Operand::Out;
  static constexpr bool kBoolOut = false;
  template <typename T>
  static constexpr bool ok = true;
};

struct Add : ArithBase {
  template <typename C>
  static C apply(C a, C b) {
    if constexpr (kIsBool<C>) return a || b;
    else if constexpr (kIsInt<C>) return C(wrap_t<C>(a) + wrap_t<C>(b));
    else return a + b;
  }
};
struct Sub : ArithBase {
  template <typename T>
  static constexpr bool ok = !kIsBool<T>;
  template <typename C>
  static C apply(C a, C b) {
    if constexpr (kIsInt<C>) return C(wrap_t<C>(a) - wrap_t<C>(b));
    else return a - b;
  }
};
struct Mul : ArithBase {
  template <typename C>
  static C apply(C a, C b) {
    if constexpr (kIsBool<C>) return a && b;
    else if constexpr (kIsInt<C>) return C(wrap_t<C>(a) * wrap_t<C>(b));
    else return a * b;
  }
};
struct Div : ArithBase {
  template <typename T>
  static constexpr bool ok = kFloatStorage<T>;
  template <typename C>
  static C apply(C a, C b) {
    return a / b;
  }
};
// numpy maximum/minimum: a NaN in either operand wins.
struct Maximum : ArithBase {
  template <typename C>
  static C apply(C a, C b) {
    return (a > b || a != a) ? a : b;
  }
};
struct Minimum : ArithBase {
  template <typename C>
  static C apply(C a, C b) {
    return (a < b || a != a) ? a : b;
  }
};
// numpy remainder: the result takes the divisor's sign.
struct Mod : ArithBase {
  template <typename T>
  static constexpr bool ok = !kIsBool<T>;
  template <typename C>
  static C apply(C a, C b) {
    if constexpr (std::is_floating_point_v<C>) {
      C r = std::fmod(a, b);
      if (r != C(0)) {
        if ((r < C(0)) != (b < C(0))) r += b;
      } else {
        r = std::copysign(C(0), b);
      }
      return r;
    } else {
      if (b == C(0)) return C(0);
      if constexpr (std::is_signed_v<C>) {
        if (b == C(-1)) return C(0);  // INT_MIN % -1 traps in hardware
      }
      C r = C(a % b);
      if (r != C(0) && ((r < C(0)) != (b < C(0)))) r = C(r + b);
      return r;
    }
  }
};
// numpy floor_divide: the quotient rounded toward -inf. Integers give numpy's results without
// trapping: x // 0 = 0 and INT_MIN // -1 = INT_MIN (wraps). Floats follow numpy's divmod: the
// quotient comes from (a - fmod(a, b)) / b, so 1.0 // 0.1 is 9.0 (the remainder is 0.0999...),
// x // 0 is a / 0 (+-inf or NaN) and a zero quotient carries the sign of a / b.
struct FloorDivide : ArithBase {
  template <typename T>
  static constexpr bool ok = !kIsBool<T>;
  template <typename C>
  static C apply(C a, C b) {
    if constexpr (std::is_floating_point_v<C>) {
      if (b == C(0)) return a / b;
      C m = std::fmod(a, b);
      C d = (a - m) / b;
      if (m != C(0) && ((b < C(0)) != (m < C(0)))) d -= C(1);
      if (d == C(0)) return std::copysign(C(0), a / b);
      C f = std::floor(d);
      if (d - f > C(0.5)) f += C(1);
      return f;
    } else {
      if (b == C(0)) return C(0);
      if constexpr (std::is_signed_v<C>) {
        using U = wrap_t<C>;
        if (b == C(-1)) return C(U(0) - U(a));  // INT_MIN / -1 traps in hardware
      }
      C q = C(a / b);
      if (C(a % b) != C(0) && ((a < C(0)) != (b < C(0)))) q = C(q - C(1));
      return q;
    }
  }
};
struct Pow : ArithBase {
  template <typename T>
  static constexpr bool ok = !kIsBool<T>;
  template <typename C>
  static C apply(C a, C b) {
    if constexpr (std::is_floating_point_v<C>) {
      return std::pow(a, b);
    } else {
      if constexpr (std::is_signed_v<C>) {
        if (b < C(0)) return a == C(1) ? C(1) : a == C(-1) ? ((b & 1) ? C(-1) : C(1)) : C(0);
      }
      // Repeated squaring in unsigned arithmetic: wraps like numpy instead of overflowing.
      using U = wrap_t<C>;
      U result = 1, base = U(a), e = U(b);
      while (e) {
        if (e & 1u) result = U(result * base);
        base = U(base * base);
        e >>= 1;
      }
      return C(result);
    }
  }
};

struct CompareBase {
  static constexpr Operand kOperand = Operand::Promoted;
  static constexpr bool kBoolOut = true;
  template <typename T>
  static constexpr bool ok = true;
};
struct Equal : CompareBase {
  template <typename C>
  static bool apply(C a, C b) {
    return a == b;
  }
};
struct NotEqual : CompareBase {
  template <typename C>
  static bool apply(C a, C b) {
    return a != b;
  }
};
struct Less : CompareBase {
  template <typename C>
  static bool apply(C a, C b) {
    return a < b;
  }
};
struct LessEqual : CompareBase {
  template <typename C>
  static bool apply(C a, C b) {
    return a <= b;
  }
};
struct Greater : CompareBase {
  template <typename C>
  static bool apply(C a, C b) {
    return a > b;
  }
};
struct GreaterEqual : CompareBase {
  template <typename C>
  static bool apply(C a, C b) {
    return a >= b;
  }
};

struct LogicalBase {
  static constexpr Operand kOperand = Operand::Bool;
  static constexpr bool kBoolOut = true;
  template <typename T>
  static constexpr bool ok = kIsBool<T>;
};
struct LogicalAnd : LogicalBase {
  template <typename C>
  static bool apply(C a, C b) {
    return a && b;
  }
};
struct LogicalOr : LogicalBase {
  template <typename C>
  static bool apply(C a, C b) {
    return a || b;
  }
};

// Bitwise ops on integers (and bool for and/or/xor, like numpy). Shifts by a negative amount or
// by at least the width give 0, or -1 for a negative signed value shifted right (C++ leaves
// those undefined; numpy gives the same).
struct BitwiseBase : ArithBase {
  template <typename T>
  static constexpr bool ok = std::is_integral_v<T>;
};
struct BitwiseAnd : BitwiseBase {
  template <typename C>
  static C apply(C a, C b) {
    return C(a & b);
  }
};
struct BitwiseOr : BitwiseBase {
  template <typename C>
  static C apply(C a, C b) {
    return C(a | b);
  }
};
struct BitwiseXor : BitwiseBase {
  template <typename C>
  static C apply(C a, C b) {
    return C(a ^ b);
  }
};
template <typename C>
bool shift_out_of_range(C b) {
  if constexpr (std::is_signed_v<C>) {
    if (b < 0) return true;
  }
  return uint64_t(b) >= sizeof(C) * 8;
}
struct LeftShift : ArithBase {
  template <typename T>
  static constexpr bool ok = kIsInt<T>;
  template <typename C>
  static C apply(C a, C b) {
    if constexpr (kIsInt<C>) {
      if (shift_out_of_range(b)) return C(0);
      return C(wrap_t<C>(a) << b);
    } else {
      return a;
    }
  }
};
struct RightShift : ArithBase {
  template <typename T>
  static constexpr bool ok = kIsInt<T>;
  template <typename C>
  static C apply(C a, C b) {
    if constexpr (kIsInt<C>) {
      if (shift_out_of_range(b)) {
        if constexpr (std::is_signed_v<C>) return a < C(0) ? C(-1) : C(0);
        return C(0);
      }
      return C(a >> b);  // arithmetic for signed values (C++20)
    } else {
      return a;
    }
  }
};

// The hot loop: contiguous and scalar-broadcast rows are separate simple loops so that GCC
// vectorizes them; everything else takes the strided loop.
template <typename Op, typename T, typename O>
NEF_SIMD_CLONES void binary_row(const T* a, int64_t sa, const T* b, int64_t sb, O* o, int64_t so,
                                int64_t n) {
  if (so == 1) {
    if (sa == 1 && sb == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = store_as<O>(Op::apply(load_as(a[i]), load_as(b[i])));
      return;
    }
    if (sa == 1 && sb == 0) {
      auto bv = load_as(b[0]);
      for (int64_t i = 0; i < n; ++i) o[i] = store_as<O>(Op::apply(load_as(a[i]), bv));
      return;
    }
    if (sa == 0 && sb == 1) {
      auto av = load_as(a[0]);
      for (int64_t i = 0; i < n; ++i) o[i] = store_as<O>(Op::apply(av, load_as(b[i])));
      return;
    }
  }
  for (int64_t i = 0; i < n; ++i)
    o[i * so] = store_as<O>(Op::apply(load_as(a[i * sa]), load_as(b[i * sb])));
}

template <typename Op>
void binary_kernel(const KernelArgs& args) {
  const Array& out = args.out;
  if (out.numel() == 0) return;
  const Array& in0 = args.inputs[0];
  const Array& in1 = args.inputs[1];
  DType d = Op::kOperand == Operand::Out        ? out.dtype
            : Op::kOperand == Operand::Promoted ? promote_types(in0.dtype, in1.dtype)
                                                : DType::Bool;
  Array a_cast;
  const Array& a = cast_array(in0, d, a_cast);
  Array b_cast;
  const Array& b = cast_array(in1, d, b_cast);
  dispatch_dtype(d, [&]<typename T>() {
    using O = std::conditional_t<Op::kBoolOut, bool, T>;
    if constexpr (Op::template ok<T>) {
      auto it = make_elementwise_iter<3>(out, {&a, &b});
      it.parallel_rows([&](const int64_t* off, int64_t n) {
        binary_row<Op, T, O>(elem_ptr<const T>(a, off[1]), it.inner_stride(1),
                             elem_ptr<const T>(b, off[2]), it.inner_stride(2),
                             elem_ptr<O>(out, off[0]), it.inner_stride(0), n);
      });
    } else {
      throw TypeError(str("[", args.node.op->name, "] not supported for ", dtype_name(d), ": ",
                          shape_str(in0.shape), ", ", shape_str(in1.shape)));
    }
  });
}

}  // namespace

void register_binary_kernels(KernelTable& t) {
  t.add("add", binary_kernel<Add>);
  t.add("sub", binary_kernel<Sub>);
  t.add("mul", binary_kernel<Mul>);
  t.add("div", binary_kernel<Div>);
  t.add("pow", binary_kernel<Pow>);
  t.add("maximum", binary_kernel<Maximum>);
  t.add("minimum", binary_kernel<Minimum>);
  t.add("mod", binary_kernel<Mod>);
  t.add("floor_divide", binary_kernel<FloorDivide>);
  t.add("equal", binary_kernel<Equal>);
  t.add("not_equal", binary_kernel<NotEqual>);
  t.add("less", binary_kernel<Less>);
  t.add("less_equal", binary_kernel<LessEqual>);
  t.add("greater", binary_kernel<Greater>);
  t.add("greater_equal", binary_kernel<GreaterEqual>);
  t.add("logical_and", binary_kernel<LogicalAnd>);
  t.add("logical_or", binary_kernel<LogicalOr>);
  t.add("bitwise_and", binary_kernel<BitwiseAnd>);
  t.add("bitwise_or", binary_kernel<BitwiseOr>);
  t.add("bitwise_xor", binary_kernel<BitwiseXor>);
  t.add("left_shift", binary_kernel<LeftShift>);
  t.add("right_shift", binary_kernel<RightShift>);
}

}  // namespace nef::backend::cpu
