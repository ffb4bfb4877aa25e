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

#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

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

// Exact (erf) GELU: 0.5 * x * (1 + erf(x / sqrt(2))), the formula of the unfused kernel.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V GeluErfF32(D d, V x) {
  const V e = ErfF32(d, hn::Mul(x, hn::Set(d, 0.70710678118654752440f)));
  return hn::Mul(hn::Mul(hn::Set(d, 0.5f), x), hn::Add(hn::Set(d, 1.0f), e));
}

}  // namespace HWY_NAMESPACE
}  // namespace nef::backend::cpu::vmath
HWY_AFTER_NAMESPACE();

#endif  // NEF_BACKENDS_CPU_KERNELS_VMATH_INL_H_ toggle
