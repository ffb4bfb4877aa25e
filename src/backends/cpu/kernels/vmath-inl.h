// Per-target vector math for the CPU kernels, in Highway's "-inl.h" form: include it after
// <hwy/highway.h> from a file that re-includes itself per target (hwy/foreach_target.h), and call
// the functions from that file's HWY_NAMESPACE. vmath.cpp exports dispatched array versions.
//
// Erf (float32): two branch-free pieces, blended per lane. Max error over all 2^32 floats
// against double std::erf: 1.17 ulp with FMA (AVX2, AVX-512), 1.50 ulp without (SSE4):
//   |x| <= 1:  erf(x) = x + x * P(x^2)                (P: degree 6, minimax for erf(x)/x - 1)
//   |x| >  1:  erf(x) = sign(x) * (1 - exp(S(t) - x^2)), t = min(|x|, 4) - 2.5
//              (S: degree 7, minimax for log(erfc(x) * exp(x^2)) weighted by erfc(x), so the
//              error is small against 1 - erfc; erfc(4) < ulp(1)/2, so 1 - ... rounds to 1
//              from |x| = 3.92 on and the clamp at 4 gives exactly +-1 up to infinity).
// NaN propagates (the small-|x| piece is taken for NaN lanes: x + x * P is NaN).
#if defined(NEF_BACKENDS_CPU_KERNELS_VMATH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef NEF_BACKENDS_CPU_KERNELS_VMATH_INL_H_
#undef NEF_BACKENDS_CPU_KERNELS_VMATH_INL_H_
#else
#define NEF_BACKENDS_CPU_KERNELS_VMATH_INL_H_
#endif

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include <cmath>

HWY_BEFORE_NAMESPACE();
namespace nef::backend::cpu::vmath {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D, class V = hn::Vec<D>>
HWY_INLINE V ErfF32(D d, V x) {
  static_assert(sizeof(hn::TFromD<D>) == 4, "ErfF32 is float32 only");
  const V ax = hn::Abs(x);
  // |x| <= 1: x + x * P(x^2).
  const V x2 = hn::Mul(x, x);
  V p = hn::Set(d, 7.889283734e-05f);
  p = hn::MulAdd(p, x2, hn::Set(d, -8.020894602e-04f));
  p = hn::MulAdd(p, x2, hn::Set(d, 5.189541727e-03f));
  p = hn::MulAdd(p, x2, hn::Set(d, -2.685444802e-02f));
  p = hn::MulAdd(p, x2, hn::Set(d, 1.128360033e-01f));
  p = hn::MulAdd(p, x2, hn::Set(d, -3.761262596e-01f));
  p = hn::MulAdd(p, x2, hn::Set(d, 1.283791661e-01f));
  const V small = hn::MulAdd(x, p, x);
  // |x| > 1: 1 - exp(S(t) - x^2), with |x| clamped to 4 (where the result is already 1).
  const V xc = hn::Min(ax, hn::Set(d, 4.0f));
  const V t = hn::Sub(xc, hn::Set(d, 2.5f));
  V s = hn::Set(d, -2.168685023e-05f);
  s = hn::MulAdd(s, t, hn::Set(d, 6.181649951e-05f));
  s = hn::MulAdd(s, t, hn::Set(d, -4.309152719e-04f));
  s = hn::MulAdd(s, t, hn::Set(d, 2.166522667e-03f));
  s = hn::MulAdd(s, t, hn::Set(d, -1.085349917e-02f));
  s = hn::MulAdd(s, t, hn::Set(d, 5.610816181e-02f));
  s = hn::MulAdd(s, t, hn::Set(d, -3.526806235e-01f));
  s = hn::MulAdd(s, t, hn::Set(d, -1.556815267e+00f));
  const V erfc = hn::Exp(d, hn::NegMulAdd(xc, xc, s));
  const V large = hn::CopySign(hn::Sub(hn::Set(d, 1.0f), erfc), x);
  return hn::IfThenElse(hn::Gt(ax, hn::Set(d, 1.0f)), large, small);
}

// 2^n * p for integral n (as float) in [-150, 128] and p in [0.7, 1.5]: one rounding, so
// results that overflow give inf and subnormal results round correctly. AVX-512 has it in one
// instruction (vscalefps); elsewhere 2^n is split in two normal factors 2^(n/2) * 2^(n - n/2).
template <class D, class V = hn::Vec<D>>
HWY_INLINE V Pow2Scale(D d, V p, V nf) {
  const hn::Rebind<int32_t, D> di;
  const auto n = hn::ConvertTo(di, nf);
  const auto n1 = hn::ShiftRight<1>(n);
  const auto bias = hn::Set(di, 127);
  const V s1 = hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(n1, bias)));
  const V s2 = hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(hn::Sub(n, n1), bias)));
  return hn::Mul(hn::Mul(p, s1), s2);
}
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
HWY_INLINE hn::Vec512<float> Pow2Scale(hn::Full512<float>, hn::Vec512<float> p,
                                       hn::Vec512<float> nf) {
  return hn::Vec512<float>{_mm512_scalef_ps(p.raw, nf.raw)};
}
#endif

// exp(x) in float32 over the whole float range, NaN lanes excepted (the caller's job: see
// ExpF32): x clamped to [-104, 89] (exp is 0 / inf beyond), n = round(x / ln 2),
// r = x - n ln 2 in two parts (|r| <= 0.35), exp(r) = 1 + r + r^2 P(r) (P: degree 4, fitted
// for relative error 4e-9), times 2^n with one rounding. Max error measured over every float:
// see ExpF32.
// kClamp = false: the caller guarantees x in [-104, 89] (two instructions fewer).
template <bool kClamp = true, class D, class V = hn::Vec<D>>
HWY_INLINE V ExpCore(D d, V x) {
  static_assert(sizeof(hn::TFromD<D>) == 4, "ExpF32 is float32 only");
  V xc = x;
  if constexpr (kClamp) xc = hn::Min(hn::Max(x, hn::Set(d, -104.0f)), hn::Set(d, 89.0f));
  const V nf = hn::Round(hn::Mul(xc, hn::Set(d, 1.44269504088896341f)));
  V r = hn::NegMulAdd(nf, hn::Set(d, 0.693115234375f), xc);  // 12-bit head: nf * head exact
  r = hn::NegMulAdd(nf, hn::Set(d, 3.19461832987e-05f), r);
  V q = hn::Set(d, 0.0013752969680354f);
  q = hn::MulAdd(q, r, hn::Set(d, 0.00836891308426857f));
  q = hn::MulAdd(q, r, hn::Set(d, 0.04166950657963753f));
  q = hn::MulAdd(q, r, hn::Set(d, 0.166665181517601f));
  q = hn::MulAdd(q, r, hn::Set(d, 0.49999988079071045f));
  const V p = hn::Add(hn::MulAdd(hn::Mul(r, r), q, r), hn::Set(d, 1.0f));
  return Pow2Scale(d, p, nf);
}

// ExpCore for every non-NaN input. Results under FLT_MIN (x < -87.33: subnormal or 0) cost x86
// a microcode assist per vector (~100 cycles): causal attention's masked -inf scores met one in
// most vectors of every row (1x12x128x64 took 1.3 ms instead of 0.7). So the lanes are computed
// with x clamped to the normal range, and only vectors with a tiny lane take the full path for
// those lanes: the same bits, below -104 (where exp rounds to 0) without arithmetic.
// kNonPositive: the caller guarantees x <= 0 or NaN (softmax's x - max, tanh's -2|x|), so the
// upper clamp goes too; the lanes get the same bits either way (the clamps that remain are the
// only ones that can change a value).
template <bool kNonPositive = false, class D, class V = hn::Vec<D>>
HWY_INLINE V ExpNoNaN(D d, V x) {
  const V lo = hn::Set(d, -87.33f), zero_below = hn::Set(d, -104.0f);
  V xl = hn::Max(x, lo);
  if constexpr (!kNonPositive) xl = hn::Min(xl, hn::Set(d, 89.0f));
  V r = ExpCore<false>(d, xl);
  const auto tiny = hn::Lt(x, lo);
  if (HWY_UNLIKELY(!hn::AllFalse(d, tiny))) {
    const auto sub = hn::And(tiny, hn::Ge(x, zero_below));
    if (!hn::AllFalse(d, sub))
      r = hn::IfThenElse(sub, ExpCore<false>(d, hn::IfThenElse(sub, x, lo)), r);
    r = hn::IfThenElse(hn::Lt(x, zero_below), hn::Zero(d), r);
  }
  return r;
}

// exp(x), float32, every input: at most 1.01 ulp from the exact value, measured on AVX-512 over
// every 7th float bit pattern (613M values; subnormal results in units of the subnormal
// spacing); vmath_test's 1.3M samples on each target: 0.97 (AVX-512, AVX2), 0.95 (SSE4,
// scalar), held to 1.5. -inf -> 0, +inf -> inf, overflow -> inf, NaN propagates.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V ExpF32(D d, V x) {
  return hn::IfThenElse(hn::IsNaN(x), x, ExpNoNaN(d, x));
}

// 1 / b for b in [1, 2]: AVX-512's 14-bit estimate and one Newton step (about 2^-27 relative),
// the exact division elsewhere (the 12-bit estimate of AVX2/SSE4 would need two steps).
template <class D, class V = hn::Vec<D>>
HWY_INLINE V ReciprocalOneTwo(D d, V b) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  const V r = hn::ApproximateReciprocal(b);
  return hn::MulAdd(r, hn::NegMulAdd(b, r, hn::Set(d, 1.0f)), r);
#else
  return hn::Div(hn::Set(d, 1.0f), b);
#endif
}

// tanh(x), float32, every input: at most 2.0 ulp (1.998), measured as ExpF32's bound (the error
// is the rounding of 1 + e and of the quotient); the samples give 1.96 on every target, held
// to 2.5.
//   |x| <  0.625: x + x^3 Q(x^2)            (Q: degree 4, fitted, relative error 1e-8)
//   |x| >= 0.625: sign(x) (1 - e) / (1 + e), e = exp(-2|x|) (no cancellation: e <= 0.29),
//   which reaches exactly 1 by itself; NaN propagates, +-inf -> +-1, -0 -> -0.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V TanhF32(D d, V x) {
  const V one = hn::Set(d, 1.0f);
  const V ax = hn::Abs(x);
  const V x2 = hn::Mul(x, x);
  V q = hn::Set(d, -0.005692214239388704f);
  q = hn::MulAdd(q, x2, hn::Set(d, 0.02062651701271534f));
  q = hn::MulAdd(q, x2, hn::Set(d, -0.0537353977560997f));
  q = hn::MulAdd(q, x2, hn::Set(d, 0.13331381976604462f));
  q = hn::MulAdd(q, x2, hn::Set(d, -0.3333328068256378f));
  const V small = hn::MulAdd(hn::Mul(x, x2), q, x);
  const V e = ExpNoNaN<true>(d, hn::Mul(ax, hn::Set(d, -2.0f)));
  const V large = hn::Mul(hn::Sub(one, e), ReciprocalOneTwo(d, hn::Add(one, e)));
  // tanh is odd: the sign of x for both pieces (keeps -0 -> -0, which x + x^3 Q loses).
  const V t = hn::CopySign(hn::IfThenElse(hn::Lt(ax, hn::Set(d, 0.625f)), small, large), x);
  return hn::IfThenElse(hn::IsNaN(x), x, t);
}

// Exact (erf) GELU: 0.5 * x * (1 + erf(x / sqrt(2))), the formula of the unfused kernel.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V GeluErfF32(D d, V x) {
  const V e = ErfF32(d, hn::Mul(x, hn::Set(d, 0.70710678118654752440f)));
  return hn::Mul(hn::Mul(hn::Set(d, 0.5f), x), hn::Add(hn::Set(d, 1.0f), e));
}

// Recomputes the lanes of r whose x fails Op::ok_scalar with the scalar std:: function.
template <class Op, class D, class V>
HWY_NOINLINE V ScalarLanes(D d, V x, V r) {
  using T = hn::TFromD<D>;
  HWY_ALIGN T xs[HWY_MAX_BYTES / sizeof(T)];
  HWY_ALIGN T rs[HWY_MAX_BYTES / sizeof(T)];
  hn::Store(x, d, xs);
  hn::Store(r, d, rs);
  for (size_t i = 0; i < hn::Lanes(d); ++i)
    if (!Op::ok_scalar(xs[i])) rs[i] = Op::scalar(xs[i]);
  return hn::Load(d, rs);
}

struct LogOp {
  template <class T>
  static bool ok_scalar(T x) {
    return x > T(0) && x < T(INFINITY);
  }
  template <class T>
  static T scalar(T x) {
    return std::log(x);
  }
  template <class D, class V>
  HWY_INLINE V operator()(D d, V x) const {
    using T = hn::TFromD<D>;
    auto ok = hn::And(hn::Gt(x, hn::Zero(d)), hn::Lt(x, hn::Set(d, T(INFINITY))));
    V r = hn::Log(d, x);
    if (HWY_UNLIKELY(!hn::AllTrue(d, ok))) r = ScalarLanes<LogOp>(d, x, r);
    return r;
  }
};

// Tanh-approximated GELU, 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))), the formula
// of the unfused kernel, with TanhF32.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V GeluTanhF32(D d, V x) {
  const V cube = hn::Mul(hn::Mul(hn::Mul(hn::Set(d, 0.044715f), x), x), x);
  const V t = TanhF32(d, hn::Mul(hn::Set(d, 0.79788456080286535588f), hn::Add(x, cube)));
  return hn::Mul(hn::Mul(hn::Set(d, 0.5f), x), hn::Add(hn::Set(d, 1.0f), t));
}

}  // namespace HWY_NAMESPACE
}  // namespace nef::backend::cpu::vmath
HWY_AFTER_NAMESPACE();

#endif  // NEF_BACKENDS_CPU_KERNELS_VMATH_INL_H_ toggle
