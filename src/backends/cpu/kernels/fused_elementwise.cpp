// CPU kernel for fused_elementwise: a block interpreter for the node's program
// (ir/ops/fused_program.h). The program is parsed once per compiled kernel (a KernelTable
// factory); a run walks the output in blocks of kBlock elements (small enough that the block's
// registers stay in L1), and for each block runs every instruction as one tight SIMD loop over
// the block. Operands are loaded into block buffers in the compute type (broadcast, strided and
// converting loads through StridedIter), except contiguous inputs already in the compute type,
// which are read in place; the last instruction writes straight into the output when it can.
// Blocks are split across threads with parallel_for. Float32 outputs of vmath::kStreamBytes and
// more leave each block through streaming stores.
//
// SIMD through Highway with runtime dispatch (AVX-512, AVX2, SSE4, scalar). float32 exp and
// tanh are vmath-inl.h's ExpF32 / TanhF32 (every input, within 1 / 2 ulp); float64 and log use
// Highway's vector Exp/Expm1/Log (float64 tanh = expm1(2|x|) / (expm1(2|x|) + 2)), sigmoid/silu
// divide with a reciprocal-based float32 quotient (the divider would bound them); lanes outside
// the accurate range (overflow, subnormal results, zero/negative/inf/NaN logs) are recomputed
// with std:: functions, so results match the unfused kernels within a few ulp. float32 erf and
// exact-erf gelu use the vector erf of vmath-inl.h (as the unfused kernels do); sin, cos, pow,
// mod and float64 erf/gelu run the same std:: formulas as the unfused kernels, element by
// element. Each instruction's result is rounded to its own dtype (f16/bf16 in float, f32 in a
// float64 program), like the unfused ops.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "backends/cpu/kernels/strided_iter.h"
#include "backends/cpu/kernels/vmath.h"
#include "backends/cpu/parallel.h"
#include "common/dispatch.h"
#include "common/float16.h"
#include "ir/ops/fused_program.h"
#include "nef/error.h"

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3  // SSE4 covers the pre-AVX machines; saves compile time
#endif
// Highway needs foreach_target first, then highway.h, in this order.
// clang-format off
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/kernels/fused_elementwise.cpp"
#include <hwy/foreach_target.h>  // re-includes this file once per SIMD target

#include <hwy/highway.h>
#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>
#include <hwy/contrib/math/math-inl.h>

#include "backends/cpu/kernels/vmath-inl.h"  // ErfF32, GeluErfF32 (per target)
#include "backends/cpu/kernels/fused_exec.h"  // ExecInstr, kBlock (shared with matmul_epilogue)

// clang-format on
HWY_BEFORE_NAMESPACE();
namespace nef::backend::cpu::fused {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
// Note: hn::Ne is an ordered compare (NaN != NaN is false); numpy semantics need Not(Eq()).
using ir::FusedOp;

struct ExpOp {
  // Range where Highway's Exp gives normal, finite results (else overflow / subnormal / NaN).
  template <class T>
  static constexpr T lo() {
    return sizeof(T) == 4 ? T(-87.0) : T(-708.0);
  }
  template <class T>
  static constexpr T hi() {
    return sizeof(T) == 4 ? T(88.5) : T(709.0);
  }
  template <class T>
  static bool ok_scalar(T x) {
    return x >= lo<T>() && x <= hi<T>();
  }
  template <class T>
  static T scalar(T x) {
    return std::exp(x);
  }
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    using T = hn::TFromD<D>;
    if constexpr (sizeof(T) == 4) return vmath::HWY_NAMESPACE::ExpF32(d, x);  // every input
    auto ok = hn::And(hn::Ge(x, hn::Set(d, lo<T>())), hn::Le(x, hn::Set(d, hi<T>())));
    V r = hn::Exp(d, x);
    if (HWY_UNLIKELY(!hn::AllTrue(d, ok))) r = vmath::HWY_NAMESPACE::ScalarLanes<ExpOp>(d, x, r);
    return r;
  }
};

// a / b for float32 without the divider (its throughput, ~10 cycles per AVX-512 vector, bounds
// tanh/sigmoid otherwise): reciprocal estimate, one Newton step, then one correction of the
// quotient, within ~1 ulp. Only for b in [1, 2^100] and finite a; callers guarantee that or
// take the exact division (float64 always divides).
template <class D, class V>
HWY_INLINE V QuotientInRange(D d, V a, V b) {
  if constexpr (sizeof(hn::TFromD<D>) == 4) {
    const V one = hn::Set(d, 1.0f);
    V r = hn::ApproximateReciprocal(b);
    r = hn::MulAdd(r, hn::NegMulAdd(b, r, one), r);
    V q = hn::Mul(a, r);
    return hn::MulAdd(r, hn::NegMulAdd(b, q, a), q);
  } else {
    return hn::Div(a, b);
  }
}

// a / b: the fast quotient when every lane is in its range, else the exact division.
template <class D, class V>
HWY_INLINE V QuotientChecked(D d, V a, V b) {
  using T = hn::TFromD<D>;
  if constexpr (sizeof(T) == 4) {
    auto ok = hn::And(hn::And(hn::Ge(b, hn::Set(d, T(1))), hn::Le(b, hn::Set(d, T(1e30)))),
                      hn::Le(hn::Abs(a), hn::Set(d, T(1e30))));
    if (HWY_LIKELY(hn::AllTrue(d, ok))) return QuotientInRange(d, a, b);
  }
  return hn::Div(a, b);
}

// tanh(x) = sign(x) * expm1(2|x|) / (expm1(2|x|) + 2), and +-1 beyond the point where that
// rounds to 1 (|x| is clamped first so the quotient's operands stay in range).
struct TanhOp {
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    using T = hn::TFromD<D>;
    if constexpr (sizeof(T) == 4) return vmath::HWY_NAMESPACE::TanhF32(d, x);
    const V limit = hn::Set(d, sizeof(T) == 4 ? T(9.1) : T(19.1));
    const V ax = hn::Min(hn::Abs(x), limit);
    const V y = hn::Expm1(d, hn::Add(ax, ax));
    V z = QuotientInRange(d, y, hn::Add(y, hn::Set(d, T(2))));
    z = hn::IfThenElse(hn::Ge(ax, limit), hn::Set(d, T(1)), z);
    z = hn::CopySign(z, x);
    return hn::IfThenElse(hn::IsNaN(x), x, z);
  }
};

// 1 + exp(-x), shared by sigmoid and silu (same formula as the unfused kernels).
template <class D, class V>
HWY_INLINE V OnePlusExpNeg(D d, V x) {
  return hn::Add(hn::Set(d, hn::TFromD<D>(1)), ExpOp()(d, hn::Neg(x)));
}

// Walks a Prefetch plan one 64-byte line per step (a no-op once done or without a plan).
struct PrefetchCursor {
  const char* const* ranges = nullptr;
  int left = 0;  // ranges not finished
  const char* p = nullptr;
  const char* end = nullptr;
  explicit PrefetchCursor(const Prefetch* pf) {
    if (pf && pf->count > 0 && pf->bytes > 0) {
      ranges = pf->ranges;
      left = pf->count;
      p = ranges[0];
      end = p + pf->bytes;
    }
  }
  HWY_INLINE void Step(size_t bytes) {
    if (left == 0) return;
    hwy::Prefetch(p);
    p += 64;
    if (p >= end) {
      if (--left == 0) return;
      ++ranges;
      p = ranges[0];
      end = p + bytes;
    }
  }
};

template <class D, class F, class Cursor>
HWY_INLINE void Map1(D d, const hn::TFromD<D>* a, hn::TFromD<D>* o, size_t n, F f, Cursor& pc,
                     size_t pb) {
  const size_t N = hn::Lanes(d);
  for (size_t i = 0; i < n; i += N) {
    pc.Step(pb);
    hn::StoreU(f(d, hn::LoadU(d, a + i)), d, o + i);
  }
}
template <class D, class F, class Cursor>
HWY_INLINE void Map2(D d, const hn::TFromD<D>* a, const hn::TFromD<D>* b, hn::TFromD<D>* o,
                     size_t n, F f, Cursor& pc, size_t pb) {
  const size_t N = hn::Lanes(d);
  for (size_t i = 0; i < n; i += N) {
    pc.Step(pb);
    hn::StoreU(f(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, o + i);
  }
}
template <class D, class F, class Cursor>
HWY_INLINE void Map3(D d, const hn::TFromD<D>* a, const hn::TFromD<D>* b, const hn::TFromD<D>* c,
                     hn::TFromD<D>* o, size_t n, F f, Cursor& pc, size_t pb) {
  const size_t N = hn::Lanes(d);
  for (size_t i = 0; i < n; i += N) {
    pc.Step(pb);
    hn::StoreU(f(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i), hn::LoadU(d, c + i)), d, o + i);
  }
}

// numpy remainder (the result takes the divisor's sign), as in the unfused kernel.
template <class T>
T mod_scalar(T a, T b) {
  T r = std::fmod(a, b);
  if (r != T(0)) {
    if ((r < T(0)) != (b < T(0))) r += b;
  } else {
    r = std::copysign(T(0), b);
  }
  return r;
}

// Without a plan: the loops carry no prefetch step at all (small programs run in L1).
struct NoPrefetch {
  HWY_INLINE void Step(size_t) {}
};

template <class T, class Cursor>
void ExecWith(const ExecInstr* code, size_t ninstr, const T* const* inputs, T* const* slots, T* out,
              size_t n, Cursor& pc, size_t pb) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const V one = hn::Set(d, T(1));
  const V zero = hn::Zero(d);
  for (size_t k = 0; k < ninstr; ++k) {
    const ExecInstr& I = code[k];
    auto src = [&](int s) -> const T* { return s >= 0 ? slots[s] : inputs[-1 - s]; };
    const T* a = src(I.src[0]);
    const T* b = src(I.src[1]);
    const T* c = src(I.src[2]);
    T* o = I.dst >= 0 ? slots[I.dst] : out;
    switch (I.op) {
      case FusedOp::Neg:
        Map1(
            d, a, o, n, [](auto, V x) { return hn::Neg(x); }, pc, pb);
        break;
      case FusedOp::Abs:
        Map1(
            d, a, o, n, [](auto, V x) { return hn::Abs(x); }, pc, pb);
        break;
      case FusedOp::Sign:
        Map1(
            d, a, o, n,
            [&](auto, V x) {
              return hn::IfThenElse(hn::Gt(x, zero), one,
                                    hn::IfThenElse(hn::Lt(x, zero), hn::Neg(one), x));
            },
            pc, pb);
        break;
      case FusedOp::Relu:
        Map1(
            d, a, o, n, [&](auto, V x) { return hn::IfThenElse(hn::Lt(x, zero), zero, x); }, pc,
            pb);
        break;
      case FusedOp::Floor:
        Map1(
            d, a, o, n, [](auto, V x) { return hn::Floor(x); }, pc, pb);
        break;
      case FusedOp::Ceil:
        Map1(
            d, a, o, n, [](auto, V x) { return hn::Ceil(x); }, pc, pb);
        break;
      case FusedOp::Round:
        Map1(
            d, a, o, n, [](auto, V x) { return hn::Round(x); }, pc, pb);
        break;
      case FusedOp::Exp:
        Map1(d, a, o, n, ExpOp(), pc, pb);
        break;
      case FusedOp::Log:
        Map1(d, a, o, n, vmath::HWY_NAMESPACE::LogOp(), pc, pb);
        break;
      case FusedOp::Sqrt:
        Map1(
            d, a, o, n, [](auto, V x) { return hn::Sqrt(x); }, pc, pb);
        break;
      case FusedOp::Rsqrt:
        Map1(
            d, a, o, n, [&](auto, V x) { return hn::Div(one, hn::Sqrt(x)); }, pc, pb);
        break;
      case FusedOp::Reciprocal:
        Map1(
            d, a, o, n, [&](auto, V x) { return hn::Div(one, x); }, pc, pb);
        break;
      case FusedOp::Tanh:
        Map1(d, a, o, n, TanhOp(), pc, pb);
        break;
      case FusedOp::Sigmoid:
        Map1(
            d, a, o, n,
            [&](auto dd, V x) { return QuotientChecked(dd, one, OnePlusExpNeg(dd, x)); }, pc, pb);
        break;
      case FusedOp::Silu:
        Map1(
            d, a, o, n, [&](auto dd, V x) { return QuotientChecked(dd, x, OnePlusExpNeg(dd, x)); },
            pc, pb);
        break;
      case FusedOp::GeluTanh:
        Map1(
            d, a, o, n,
            [&](auto dd, V x) {
              // float32: the unfused kernel's function (the same operations, so the same bits).
              if constexpr (sizeof(T) == 4) return vmath::HWY_NAMESPACE::GeluTanhF32(dd, x);
              V cube = hn::Mul(hn::Mul(hn::Mul(hn::Set(dd, T(0.044715)), x), x), x);
              V t = TanhOp()(dd, hn::Mul(hn::Set(dd, T(0.79788456080286535588)), hn::Add(x, cube)));
              return hn::Mul(hn::Mul(hn::Set(dd, T(0.5)), x), hn::Add(one, t));
            },
            pc, pb);
        break;
      case FusedOp::Erf:
        if constexpr (sizeof(T) == 4)
          Map1(
              d, a, o, n, [](auto dd, V x) { return vmath::HWY_NAMESPACE::ErfF32(dd, x); }, pc, pb);
        else
          for (size_t i = 0; i < n; ++i) o[i] = std::erf(a[i]);
        break;
      case FusedOp::Sin:
        for (size_t i = 0; i < n; ++i) o[i] = std::sin(a[i]);
        break;
      case FusedOp::Cos:
        for (size_t i = 0; i < n; ++i) o[i] = std::cos(a[i]);
        break;
      case FusedOp::Tan:
        for (size_t i = 0; i < n; ++i) o[i] = std::tan(a[i]);
        break;
      case FusedOp::Asin:
        for (size_t i = 0; i < n; ++i) o[i] = std::asin(a[i]);
        break;
      case FusedOp::Acos:
        for (size_t i = 0; i < n; ++i) o[i] = std::acos(a[i]);
        break;
      case FusedOp::Atan:
        for (size_t i = 0; i < n; ++i) o[i] = std::atan(a[i]);
        break;
      case FusedOp::Sinh:
        for (size_t i = 0; i < n; ++i) o[i] = std::sinh(a[i]);
        break;
      case FusedOp::Cosh:
        for (size_t i = 0; i < n; ++i) o[i] = std::cosh(a[i]);
        break;
      case FusedOp::Asinh:
        for (size_t i = 0; i < n; ++i) o[i] = std::asinh(a[i]);
        break;
      case FusedOp::Acosh:
        for (size_t i = 0; i < n; ++i) o[i] = std::acosh(a[i]);
        break;
      case FusedOp::Atanh:
        for (size_t i = 0; i < n; ++i) o[i] = std::atanh(a[i]);
        break;
      case FusedOp::Gelu:
        if constexpr (sizeof(T) == 4) {
          Map1(
              d, a, o, n, [](auto dd, V x) { return vmath::HWY_NAMESPACE::GeluErfF32(dd, x); }, pc,
              pb);
        } else {
          for (size_t i = 0; i < n; ++i) {
            T x = a[i];
            o[i] = T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
          }
        }
        break;
      case FusedOp::Add:
        Map2(
            d, a, b, o, n, [](auto, V x, V y) { return hn::Add(x, y); }, pc, pb);
        break;
      case FusedOp::Sub:
        Map2(
            d, a, b, o, n, [](auto, V x, V y) { return hn::Sub(x, y); }, pc, pb);
        break;
      case FusedOp::Mul:
        Map2(
            d, a, b, o, n, [](auto, V x, V y) { return hn::Mul(x, y); }, pc, pb);
        break;
      case FusedOp::Div:
        Map2(
            d, a, b, o, n, [](auto, V x, V y) { return hn::Div(x, y); }, pc, pb);
        break;
      case FusedOp::Maximum:  // a NaN in either operand wins, like numpy
        Map2(
            d, a, b, o, n,
            [](auto, V x, V y) {
              return hn::IfThenElse(hn::Or(hn::Gt(x, y), hn::Not(hn::Eq(x, x))), x, y);
            },
            pc, pb);
        break;
      case FusedOp::Minimum:
        Map2(
            d, a, b, o, n,
            [](auto, V x, V y) {
              return hn::IfThenElse(hn::Or(hn::Lt(x, y), hn::Not(hn::Eq(x, x))), x, y);
            },
            pc, pb);
        break;
      case FusedOp::Mod:
        for (size_t i = 0; i < n; ++i) o[i] = mod_scalar(a[i], b[i]);
        break;
      case FusedOp::Pow:
        for (size_t i = 0; i < n; ++i) o[i] = std::pow(a[i], b[i]);
        break;
      case FusedOp::Equal:
        Map2(
            d, a, b, o, n, [&](auto, V x, V y) { return hn::IfThenElseZero(hn::Eq(x, y), one); },
            pc, pb);
        break;
      case FusedOp::NotEqual:
        Map2(
            d, a, b, o, n,
            [&](auto, V x, V y) { return hn::IfThenElseZero(hn::Not(hn::Eq(x, y)), one); }, pc, pb);
        break;
      case FusedOp::Less:
        Map2(
            d, a, b, o, n, [&](auto, V x, V y) { return hn::IfThenElseZero(hn::Lt(x, y), one); },
            pc, pb);
        break;
      case FusedOp::LessEqual:
        Map2(
            d, a, b, o, n, [&](auto, V x, V y) { return hn::IfThenElseZero(hn::Le(x, y), one); },
            pc, pb);
        break;
      case FusedOp::Greater:
        Map2(
            d, a, b, o, n, [&](auto, V x, V y) { return hn::IfThenElseZero(hn::Gt(x, y), one); },
            pc, pb);
        break;
      case FusedOp::GreaterEqual:
        Map2(
            d, a, b, o, n, [&](auto, V x, V y) { return hn::IfThenElseZero(hn::Ge(x, y), one); },
            pc, pb);
        break;
      case FusedOp::LogicalAnd:
        Map2(
            d, a, b, o, n,
            [&](auto, V x, V y) {
              return hn::IfThenElseZero(hn::And(hn::Not(hn::Eq(x, zero)), hn::Not(hn::Eq(y, zero))),
                                        one);
            },
            pc, pb);
        break;
      case FusedOp::LogicalOr:
        Map2(
            d, a, b, o, n,
            [&](auto, V x, V y) {
              return hn::IfThenElseZero(hn::Or(hn::Not(hn::Eq(x, zero)), hn::Not(hn::Eq(y, zero))),
                                        one);
            },
            pc, pb);
        break;
      case FusedOp::LogicalNot:
        Map1(
            d, a, o, n, [&](auto, V x) { return hn::IfThenElseZero(hn::Eq(x, zero), one); }, pc,
            pb);
        break;
      case FusedOp::Where:
        Map3(
            d, a, b, c, o, n,
            [&](auto, V m, V x, V y) { return hn::IfThenElse(hn::Not(hn::Eq(m, zero)), x, y); }, pc,
            pb);
        break;
      case FusedOp::Clip:
        Map3(
            d, a, b, c, o, n,
            [](auto, V x, V lo, V hi) {
              V m = hn::IfThenElse(hn::Or(hn::Gt(x, lo), hn::Not(hn::Eq(x, x))), x, lo);
              return hn::IfThenElse(hn::Or(hn::Lt(m, hi), hn::Not(hn::Eq(m, m))), m, hi);
            },
            pc, pb);
        break;
      case FusedOp::Cast:
        // To bool: != 0 (NaN -> true). To a float: a copy; the rounding below converts.
        if (I.to_bool)
          Map1(
              d, a, o, n,
              [&](auto, V x) { return hn::IfThenElseZero(hn::Not(hn::Eq(x, zero)), one); }, pc, pb);
        else if (o != a)
          Map1(
              d, a, o, n, [](auto, V x) { return x; }, pc, pb);
        break;
      case FusedOp::kCount:
        break;
    }
    switch (I.round) {
      case kRoundNone:
        break;
      case kRoundF32:
        for (size_t i = 0; i < n; ++i) o[i] = T(float(o[i]));
        break;
      case kRoundF16:
        for (size_t i = 0; i < n; ++i) o[i] = T(to_float(to_float16(float(o[i]))));
        break;
      case kRoundBF16:
        for (size_t i = 0; i < n; ++i) o[i] = T(to_float(to_bfloat16(float(o[i]))));
        break;
    }
  }
}

template <class T>
void Exec(const ExecInstr* code, size_t ninstr, const T* const* inputs, T* const* slots, T* out,
          size_t n, const Prefetch* prefetch) {
  if (prefetch) {
    PrefetchCursor pc(prefetch);
    ExecWith(code, ninstr, inputs, slots, out, n, pc, prefetch->bytes);
  } else {
    NoPrefetch pc;
    ExecWith(code, ninstr, inputs, slots, out, n, pc, 0);
  }
}

void ExecF32(const ExecInstr* code, size_t ninstr, const float* const* inputs, float* const* slots,
             float* out, size_t n, const Prefetch* prefetch) {
  Exec<float>(code, ninstr, inputs, slots, out, n, prefetch);
}
void ExecF64(const ExecInstr* code, size_t ninstr, const double* const* inputs,
             double* const* slots, double* out, size_t n, const Prefetch* prefetch) {
  Exec<double>(code, ninstr, inputs, slots, out, n, prefetch);
}

}  // namespace HWY_NAMESPACE
}  // namespace nef::backend::cpu::fused
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace nef::backend::cpu {
namespace fused {
HWY_EXPORT(ExecF32);
HWY_EXPORT(ExecF64);

void exec(const ExecInstr* code, size_t ninstr, const float* const* inputs, float* const* slots,
          float* out, size_t n, const Prefetch* prefetch) {
  HWY_DYNAMIC_DISPATCH(ExecF32)(code, ninstr, inputs, slots, out, n, prefetch);
}
void exec(const ExecInstr* code, size_t ninstr, const double* const* inputs, double* const* slots,
          double* out, size_t n, const Prefetch* prefetch) {
  HWY_DYNAMIC_DISPATCH(ExecF64)(code, ninstr, inputs, slots, out, n, prefetch);
}

namespace {
Rounding rounding(DType t, DType compute) {
  switch (t) {
    case DType::Float16:
      return kRoundF16;
    case DType::BFloat16:
      return kRoundBF16;
    case DType::Float32:
      return compute == DType::Float64 ? kRoundF32 : kRoundNone;
    default:
      return kRoundNone;
  }
}
}  // namespace

// Register slots: an instruction's result takes a free slot (operands dying at it are freed
// first: an instruction may write over its own operand, the loops read before they store);
// the last instruction writes to the output pointer.
std::vector<ExecInstr> lower_program(const ir::FusedProgram& prog, int* num_slots) {
  const int n = static_cast<int>(prog.code.size());
  std::vector<ExecInstr> code;
  std::vector<int> last_use(n, -1), slot_of(n, -1);
  for (int k = 0; k < n; ++k)
    for (int a = 0; a < prog.code[k].nargs; ++a)
      if (prog.code[k].args[a] >= 0) last_use[prog.code[k].args[a]] = k;
  std::vector<int> free_slots;
  *num_slots = 0;
  for (int k = 0; k < n; ++k) {
    const ir::FusedInstr& in = prog.code[k];
    ExecInstr e{};
    e.op = in.op;
    for (int a = 0; a < 3; ++a) {
      int ref = a < in.nargs ? in.args[a] : in.args[0];
      e.src[a] = static_cast<int16_t>(ref >= 0 ? slot_of[ref] : ref);
    }
    for (int a = 0; a < in.nargs; ++a) {
      int ref = in.args[a];
      if (ref >= 0 && last_use[ref] == k && slot_of[ref] >= 0) {
        free_slots.push_back(slot_of[ref]);
        slot_of[ref] = -1;  // freed once even if read twice
      }
    }
    if (k == n - 1) {
      e.dst = -1;
    } else {
      int s;
      if (!free_slots.empty()) {
        s = free_slots.back();
        free_slots.pop_back();
      } else {
        s = (*num_slots)++;
      }
      slot_of[k] = s;
      e.dst = static_cast<int16_t>(s);
    }
    e.round = rounding(in.dtype, prog.compute);
    e.to_bool = in.op == ir::FusedOp::Cast && in.dtype == DType::Bool;
    code.push_back(e);
  }
  return code;
}
}  // namespace fused

namespace {
using fused::ExecInstr;
using fused::kBlock;
using fused::kPad;

// How an input is read for a block: in place, one value for the whole tensor, or rows.
enum class Access { Contiguous, Scalar, Strided };

class FusedKernel final : public CpuKernel {
 public:
  FusedKernel(const ir::Node& node, const std::vector<ir::TensorType>& in_types)
      : out_dtype_(node.type.dtype) {
    const std::string& text = node.attrs.get_string("program");
    prog_ = ir::parse_fused_program(text, in_types, out_dtype_);
    build();
    name_ = str("cpu.fused_elementwise.", ir::fused_dtype_name(prog_.compute), "[",
                prog_.code.size(), " ops]");
  }

  std::string name() const override { return name_; }
  // Each block loads every input before the last instruction stores `out`.
  bool inplace_safe() const override { return true; }

  void run(const KernelArgs& args) const override {
    if (args.inputs.size() != size_t(prog_.num_inputs))
      throw ValidationError(str("[fused_elementwise] expects ", prog_.num_inputs, " inputs, got ",
                                args.inputs.size()));
    if (args.out.numel() == 0) return;
    if (prog_.compute == DType::Float64) run_typed<double>(args);
    else run_typed<float>(args);
  }

 private:
  void build() { code_ = fused::lower_program(prog_, &num_slots_); }

  template <typename C>
  void run_typed(const KernelArgs& args) const {
    const Array& out = args.out;
    const int64_t total = out.numel();
    const int nin = prog_.num_inputs;
    const Strides out_strides = contiguous_strides(out.shape);
    std::vector<StridedIter<2>> iters;
    std::vector<Access> access;
    iters.reserve(nin);
    for (const Array& a : args.inputs) {
      iters.emplace_back(
          out.shape,
          std::array<Strides, 2>{out_strides, broadcast_strides(a.shape, a.strides, out.shape)});
      const StridedIter<2>& it = iters.back();
      Access acc = Access::Strided;
      if (it.ndim == 1 && it.inner_stride(1) == 1) acc = Access::Contiguous;
      else if (it.ndim == 1 && it.inner_stride(1) == 0) acc = Access::Scalar;
      access.push_back(acc);
    }
    const bool direct_out = out.dtype == prog_.compute;
    // Large float32 outputs: each block is computed in cache and streamed out (no read for
    // ownership, no eviction of the inputs), in blocks of 4 pages per input: the first
    // instructions wait on memory at each block's start (the hardware prefetcher stops at page
    // ends), 6% less time than 1-page blocks on the 16M chain (smaller data runs faster in
    // L1-sized blocks). Software prefetch of the next block's inputs in one burst, or in bursts
    // between the instructions, measured no faster; one line per vector step inside the loops
    // (fused::Prefetch) gains ~7%.
    const bool stream =
        std::is_same_v<C, float> && direct_out && size_t(total) * sizeof(C) >= vmath::kStreamBytes;
    const int64_t block = stream ? 4 * kBlock : kBlock;
    const int64_t nblocks = (total + block - 1) / block;
    parallel_for(
        nblocks, std::max<int64_t>(1, kElementwiseGrain / block), [&](int64_t b0, int64_t b1) {
          // Per-chunk scratch: register slots, one buffer per input, the output block.
          const size_t bufs = size_t(num_slots_ + nin + 1);
          auto scratch = hwy::AllocateAligned<C>(bufs * block);
          std::vector<C*> slots(num_slots_ + 1), in_buf(nin);
          std::vector<const C*> in_ptr(nin);
          for (int s = 0; s < num_slots_; ++s) slots[s] = scratch.get() + size_t(s) * block;
          for (int k = 0; k < nin; ++k) in_buf[k] = scratch.get() + size_t(num_slots_ + k) * block;
          C* out_buf = scratch.get() + size_t(num_slots_ + nin) * block;
          std::vector<const char*> pf_ranges(nin);
          for (int k = 0; k < nin; ++k)  // broadcast scalars: filled once per chunk
            if (access[k] == Access::Scalar) fill_scalar<C>(args.inputs[k], in_buf[k], block);
          for (int64_t blk = b0; blk < b1; ++blk) {
            const int64_t begin = blk * block;
            const int64_t len = std::min(block, total - begin);
            const int64_t padded = (len + kPad - 1) / kPad * kPad;
            const bool whole = len == padded;
            for (int k = 0; k < nin; ++k)
              in_ptr[k] = load_input<C>(args.inputs[k], iters[k], access[k], begin, len, padded,
                                        whole, in_buf[k]);
            C* dst = direct_out && whole && !stream ? static_cast<C*>(out.data()) + begin : out_buf;
            // Large outputs: the next block's inputs (those read in place) are fetched while
            // this block computes, one line per vector step of the interpreter's loops, so that
            // its first instructions wait less on memory (the 16M chain: ~7% less CPU time).
            fused::Prefetch plan;
            const int64_t next = begin + block;
            if (stream && next + block <= total) {
              int m = 0;
              for (int k = 0; k < nin; ++k)
                if (access[k] == Access::Contiguous && args.inputs[k].dtype == dtype_of<C>())
                  pf_ranges[m++] =
                      static_cast<const char*>(args.inputs[k].data()) + size_t(next) * sizeof(C);
              plan = {pf_ranges.data(), m, size_t(block) * sizeof(C)};
            }
            fused::exec(code_.data(), code_.size(), in_ptr.data(), slots.data(), dst,
                        size_t(padded), plan.count > 0 ? &plan : nullptr);
            if (dst != out_buf) continue;
            if constexpr (std::is_same_v<C, float>) {
              if (stream) {
                vmath::stream_copy(out_buf, static_cast<C*>(out.data()) + begin, size_t(len));
                continue;
              }
            }
            store_output<C>(out, out_buf, begin, len);
          }
        });
  }

  template <typename C>
  static void fill_scalar(const Array& a, C* buf, int64_t block) {
    C v = dispatch_dtype(a.dtype, [&]<typename T>() -> C {
      return static_cast<C>(load_as(*static_cast<const T*>(a.data())));
    });
    std::fill(buf, buf + block, v);
  }

  // The block [begin, begin + len) of input `a` in the compute type, zero-padded to `padded`.
  template <typename C>
  static const C* load_input(const Array& a, const StridedIter<2>& it, Access acc, int64_t begin,
                             int64_t len, int64_t padded, bool whole, C* buf) {
    if (acc == Access::Scalar) return buf;
    if (acc == Access::Contiguous && whole && a.dtype == dtype_of<C>())
      return static_cast<const C*>(a.data()) + begin;
    dispatch_dtype(a.dtype, [&]<typename T>() {
      const T* base = static_cast<const T*>(a.data());
      if (acc == Access::Contiguous) {
        const T* p = base + begin;
        for (int64_t i = 0; i < len; ++i) buf[i] = static_cast<C>(load_as(p[i]));
        return;
      }
      C* o = buf;
      it.for_each_row(begin, begin + len, [&](const int64_t* off, int64_t n) {
        const T* p = base + off[1];
        const int64_t s = it.inner_stride(1);
        if (s == 0) {
          C v = static_cast<C>(load_as(p[0]));
          for (int64_t i = 0; i < n; ++i) o[i] = v;
        } else {
          for (int64_t i = 0; i < n; ++i) o[i] = static_cast<C>(load_as(p[i * s]));
        }
        o += n;
      });
    });
    for (int64_t i = len; i < padded; ++i) buf[i] = C(0);
    return buf;
  }

  template <typename C>
  static void store_output(const Array& out, const C* buf, int64_t begin, int64_t len) {
    dispatch_dtype(out.dtype, [&]<typename O>() {
      O* o = static_cast<O*>(out.data()) + begin;
      for (int64_t i = 0; i < len; ++i) {
        if constexpr (std::is_same_v<O, bool>) o[i] = buf[i] != C(0);
        else if constexpr (std::is_same_v<O, float16_t> || std::is_same_v<O, bfloat16_t>)
          o[i] = store_as<O>(float(buf[i]));  // already rounded to O: exact
        else o[i] = static_cast<O>(buf[i]);
      }
    });
  }

  template <typename C>
  static constexpr DType dtype_of() {
    return std::is_same_v<C, double> ? DType::Float64 : DType::Float32;
  }

  ir::FusedProgram prog_;
  DType out_dtype_;
  std::vector<ExecInstr> code_;
  int num_slots_ = 0;
  std::string name_;
};

}  // namespace

void register_fused_kernels(KernelTable& t) { t.add_prepared<FusedKernel>("fused_elementwise"); }

}  // namespace nef::backend::cpu
#endif  // HWY_ONCE
