// Array entry points of vmath.h: one Highway loop per function, compiled per SIMD target
// (foreach_target) and picked at run time; a ragged tail is one partial vector.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3  // SSE4 covers the pre-AVX machines; saves compile time
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backends/cpu/kernels/vmath.cpp"
#include <hwy/foreach_target.h>  // re-includes this file once per SIMD target

// Highway needs highway.h before its contrib headers: kept out of clang-format's include sort.
// clang-format off
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>
#include <hwy/cache_control.h>
// clang-format on

#include "backends/cpu/kernels/vmath-inl.h"
#include "common/float16.h"

HWY_BEFORE_NAMESPACE();
namespace nef::backend::cpu::vmath {
namespace HWY_NAMESPACE {

// The first `count` lanes of a vector at p (count < lanes): AVX2 and AVX-512 have fault-free
// masked loads and stores for 32/64-bit lanes; other targets copy through a stack buffer
// (Highway 1.0's MaskedLoad may read the whole vector there).
template <class D>
struct Partial {
  using T = hn::TFromD<D>;
  using V = hn::Vec<D>;
  D d;
  size_t count;
  // Lanes past count hold `fill`.
  V Load(const T* p, T fill) const {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    const auto m = hn::FirstN(d, count);
    return hn::IfThenElse(m, hn::MaskedLoad(m, d, p), hn::Set(d, fill));
#else
    HWY_ALIGN T buf[HWY_MAX_BYTES / sizeof(T)];
    for (size_t j = 0; j < hn::Lanes(d); ++j) buf[j] = fill;
    std::memcpy(buf, p, count * sizeof(T));
    return hn::Load(d, buf);
#endif
  }
  void Store(V v, T* p) const {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    hn::BlendedStore(v, hn::FirstN(d, count), d, p);
#else
    HWY_ALIGN T buf[HWY_MAX_BYTES / sizeof(T)];
    hn::Store(v, d, buf);
    std::memcpy(p, buf, count * sizeof(T));
#endif
  }
};

// y = f(d, x) over n elements.
template <class T, class F>
HWY_INLINE void MapArray(const T* x, T* y, size_t n, F f) {
  const hn::ScalableTag<T> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(d, hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    const Partial<decltype(d)> part{d, n - i};
    part.Store(f(d, part.Load(x + i, T(0))), y + i);
  }
}

void ErfArray(const float* x, float* y, size_t n) {
  MapArray(x, y, n, [](auto d, auto v) { return ErfF32(d, v); });
}
void GeluErfArray(const float* x, float* y, size_t n) {
  MapArray(x, y, n, [](auto d, auto v) { return GeluErfF32(d, v); });
}

// Max with NaN tracked separately (hn::Max does not propagate NaN on every target). Lanes at or
// past `valid` become -inf (keys a causal row cannot see) and stay out of the NaN check.
template <class T>
HWY_INLINE T ScaleAddMax(T* s, size_t n, size_t valid, T scale, const T* add) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  const V vs = hn::Set(d, scale);
  const V ninf = hn::Set(d, -std::numeric_limits<T>::infinity());
  V m = ninf;
  auto nan = hn::Lt(m, m);  // all false
  size_t i = 0;
  for (; i + N <= n; i += N) {
    V x = hn::Mul(hn::LoadU(d, s + i), vs);
    if (add) {
      if (i + N <= valid) x = hn::Add(x, hn::LoadU(d, add + i));
      else if (i < valid) x = hn::Add(x, Partial<decltype(d)>{d, valid - i}.Load(add + i, T(0)));
    }
    if (i + N > valid) x = hn::IfThenElse(hn::FirstN(d, valid > i ? valid - i : 0), x, ninf);
    hn::StoreU(x, d, s + i);
    nan = hn::Or(nan, hn::IsNaN(x));
    m = hn::Max(m, hn::IfThenElse(hn::IsNaN(x), ninf, x));
  }
  if (i < n) {
    const Partial<decltype(d)> part{d, n - i};
    const size_t live = valid > i ? std::min(valid - i, n - i) : 0;
    V x = hn::Mul(part.Load(s + i, T(0)), vs);
    if (add && live > 0) x = hn::Add(x, Partial<decltype(d)>{d, live}.Load(add + i, T(0)));
    x = hn::IfThenElse(hn::FirstN(d, live), x, ninf);  // padding and invisible lanes: -inf
    part.Store(x, s + i);
    nan = hn::Or(nan, hn::IsNaN(x));
    m = hn::Max(m, hn::IfThenElse(hn::IsNaN(x), ninf, x));
  }
  if (!hn::AllFalse(d, nan)) return std::numeric_limits<T>::quiet_NaN();
  return hn::GetLane(hn::MaxOfLanes(d, m));
}

// exp in the lanes' type: ExpNoNaN for float32 (vmath-inl.h), Highway's for float64. Callers
// here never pass NaN; kNonPositive: nor x > 0 (softmax's x - max).
template <bool kNonPositive = false, class D, class V>
HWY_INLINE V ExpT(D d, V x) {
  if constexpr (sizeof(hn::TFromD<D>) == 4) return ExpNoNaN<kNonPositive>(d, x);
  else return hn::Exp(d, x);
}

template <class T>
HWY_INLINE T ExpShiftSum(const T* x, T* s, size_t n, T mx) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  const V vm = hn::Set(d, mx);
  V sum0 = hn::Zero(d), sum1 = hn::Zero(d);
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {  // two independent chains per iteration
    V e0 = ExpT<true>(d, hn::Sub(hn::LoadU(d, x + i), vm));
    V e1 = ExpT<true>(d, hn::Sub(hn::LoadU(d, x + i + N), vm));
    hn::StoreU(e0, d, s + i);
    hn::StoreU(e1, d, s + i + N);
    sum0 = hn::Add(sum0, e0);
    sum1 = hn::Add(sum1, e1);
  }
  for (; i + N <= n; i += N) {
    V e = ExpT<true>(d, hn::Sub(hn::LoadU(d, x + i), vm));
    hn::StoreU(e, d, s + i);
    sum0 = hn::Add(sum0, e);
  }
  if (i < n) {  // padding lanes: exp(-inf) = 0
    const Partial<decltype(d)> part{d, n - i};
    V e = ExpT<true>(d, hn::Sub(part.Load(x + i, -std::numeric_limits<T>::infinity()), vm));
    part.Store(e, s + i);
    sum1 = hn::Add(sum1, e);
  }
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(sum0, sum1)));
}

// sum(x - c) and sum((x - c)^2) in double, the float input promoted lane by lane (Rebind: a
// half-width vector of floats per vector of doubles), two independent chains per sum.
template <class T>
HWY_INLINE void SumsF64(const T* x, size_t n, double c, double* s1, double* s2) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<T, decltype(dd)> dt;
  using V = hn::Vec<decltype(dd)>;
  const size_t N = hn::Lanes(dd);
  const V vc = hn::Set(dd, c);
  V a0 = hn::Zero(dd), a1 = hn::Zero(dd), q0 = hn::Zero(dd), q1 = hn::Zero(dd);
  auto load = [&](size_t i) {
    if constexpr (std::is_same_v<T, double>) return hn::Sub(hn::LoadU(dd, x + i), vc);
    else return hn::Sub(hn::PromoteTo(dd, hn::LoadU(dt, x + i)), vc);
  };
  size_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    V v0 = load(i), v1 = load(i + N);
    a0 = hn::Add(a0, v0);
    a1 = hn::Add(a1, v1);
    q0 = hn::MulAdd(v0, v0, q0);
    q1 = hn::MulAdd(v1, v1, q1);
  }
  double t1 = hn::GetLane(hn::SumOfLanes(dd, hn::Add(a0, a1)));
  double t2 = hn::GetLane(hn::SumOfLanes(dd, hn::Add(q0, q1)));
  for (; i < n; ++i) {
    double v = double(x[i]) - c;
    t1 += v;
    t2 += v * v;
  }
  *s1 = t1;
  *s2 = t2;
}

void SumsF32(const float* x, size_t n, double c, double* s1, double* s2) {
  SumsF64(x, n, c, s1, s2);
}
void SumsF64Array(const double* x, size_t n, double c, double* s1, double* s2) {
  SumsF64(x, n, c, s1, s2);
}

float ScaleAddMaxF32(float* s, size_t n, size_t valid, float scale, const float* add) {
  return ScaleAddMax(s, n, valid, scale, add);
}
double ScaleAddMaxF64(double* s, size_t n, size_t valid, double scale, const double* add) {
  return ScaleAddMax(s, n, valid, scale, add);
}
// The max (kMax) or min of x[0, n), and in *nan whether one of them is NaN (the extreme is then
// unspecified). Four vector accumulators keep the compares' latency hidden.
template <bool kMax, class T>
HWY_INLINE T Extreme(const T* HWY_RESTRICT x, size_t n, bool* nan) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  const T start = kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  V a0 = hn::Set(d, start), a1 = a0, a2 = a0, a3 = a0;
  V bad = hn::Zero(d);  // lanes that met a NaN: all bits set
  auto step = [&](V& acc, V v) {
    acc = kMax ? hn::Max(acc, v) : hn::Min(acc, v);
    bad = hn::Or(bad, hn::VecFromMask(d, hn::IsNaN(v)));
  };
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    step(a0, hn::LoadU(d, x + i));
    step(a1, hn::LoadU(d, x + i + N));
    step(a2, hn::LoadU(d, x + i + 2 * N));
    step(a3, hn::LoadU(d, x + i + 3 * N));
  }
  for (; i + N <= n; i += N) step(a0, hn::LoadU(d, x + i));
  a0 = kMax ? hn::Max(hn::Max(a0, a1), hn::Max(a2, a3)) : hn::Min(hn::Min(a0, a1), hn::Min(a2, a3));
  T r = kMax ? hn::GetLane(hn::MaxOfLanes(d, a0)) : hn::GetLane(hn::MinOfLanes(d, a0));
  bool any = !hn::AllFalse(d, hn::MaskFromVec(bad));
  for (; i < n; ++i) {
    any |= x[i] != x[i];
    r = kMax ? (x[i] > r ? x[i] : r) : (x[i] < r ? x[i] : r);
  }
  *nan = any;
  return r;
}
float ExtremeF32(const float* x, size_t n, bool max, bool* nan) {
  return max ? Extreme<true>(x, n, nan) : Extreme<false>(x, n, nan);
}
double ExtremeF64(const double* x, size_t n, bool max, bool* nan) {
  return max ? Extreme<true>(x, n, nan) : Extreme<false>(x, n, nan);
}

int32_t QuantizeU8(const float* HWY_RESTRICT x, size_t n, float s, float z,
                   uint8_t* HWY_RESTRICT q) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<uint8_t, decltype(df)> du8;
  const size_t N = hn::Lanes(df);
  const auto vs = hn::Set(df, s), vz = hn::Set(df, z);
  const auto lo = hn::Zero(df), hi = hn::Set(df, 255.0f);
  auto sum = hn::Zero(di);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const auto c =
        hn::Min(hn::Max(hn::Add(hn::Round(hn::Div(hn::LoadU(df, x + i), vs)), vz), lo), hi);
    const auto ci = hn::ConvertTo(di, c);
    sum = hn::Add(sum, ci);
    hn::StoreU(hn::DemoteTo(du8, ci), du8, q + i);
  }
  int32_t total = hn::GetLane(hn::SumOfLanes(di, sum));
  for (; i < n; ++i) {
    const float c = std::min(std::max(std::nearbyint(x[i] / s) + z, 0.0f), 255.0f);
    q[i] = uint8_t(c);
    total += int32_t(c);
  }
  return total;
}

void ScaleInt32(const int32_t* acc, size_t n, float s, const float* HWY_RESTRICT ws,
                const float* HWY_RESTRICT bias, bool relu, float* y) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const size_t N = hn::Lanes(df);
  const auto vs = hn::Set(df, s), zero = hn::Zero(df);
  size_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(
        hn::Mul(hn::Mul(hn::ConvertTo(df, hn::LoadU(di, acc + i)), vs), hn::LoadU(df, ws + i)), df,
        y + i);
  for (; i < n; ++i) y[i] = float(acc[i]) * s * ws[i];
  if (!bias && !relu) return;
  // A second pass over the (cached) row: the product is rounded before the bias is added, as
  // the unfused ops do (in one expression the compiler may fuse them into one FMA).
  for (i = 0; i + N <= n; i += N) {
    auto v = hn::LoadU(df, y + i);
    if (bias) v = hn::Add(v, hn::LoadU(df, bias + i));
    if (relu) v = hn::IfThenElse(hn::Lt(v, zero), zero, v);
    hn::StoreU(v, df, y + i);
  }
  for (; i < n; ++i) {
    float v = y[i];
    if (bias) v += bias[i];
    y[i] = relu && v < 0.0f ? 0.0f : v;
  }
}

float ExpShiftSumF32(const float* x, float* s, size_t n, float m) {
  return ExpShiftSum(x, s, n, m);
}
double ExpShiftSumF64(double* s, size_t n, double m) { return ExpShiftSum(s, s, n, m); }

template <class T>
HWY_INLINE void TanhArr(const T* x, T* y, size_t n) {
  MapArray(x, y, n, [](auto d, auto v) {
    if constexpr (sizeof(T) == 4) return TanhF32(d, v);
    else return hn::Tanh(d, v);
  });
}

// 1 / (1 + exp(-x)); -x is clamped to where Highway's float64 Exp is valid (above, exp
// overflows to inf in either type and the result is 0 as it should be; -inf is outside it), NaN
// lanes pass through.
template <class T>
HWY_INLINE void SigmoidArr(const T* x, T* y, size_t n) {
  MapArray(x, y, n, [](auto d, auto v) {
    using V = decltype(v);
    const V one = hn::Set(d, T(1));
    const V lo = hn::Set(d, std::numeric_limits<T>::lowest());
    const V hi = hn::Set(d, T(sizeof(T) == 4 ? 104 : 706));
    const V e = ExpT(d, hn::Min(hn::Max(hn::Neg(v), lo), hi));
    const V r = hn::Div(one, hn::Add(one, e));
    return hn::IfThenElse(hn::IsNaN(v), v, r);
  });
}

void ExpArray(const float* x, float* y, size_t n) {
  MapArray(x, y, n, [](auto d, auto v) { return ExpF32(d, v); });
}
void LogArray(const float* x, float* y, size_t n) {
  MapArray(x, y, n, [](auto d, auto v) { return LogOp()(d, v); });
}
// x / (1 + exp(-x)), the unfused formula (exp(-x) overflows to inf below about -88: -0).
void SiluArray(const float* x, float* y, size_t n) {
  MapArray(x, y, n, [](auto d, auto v) {
    return hn::Div(v, hn::Add(hn::Set(d, 1.0f), ExpF32(d, hn::Neg(v))));
  });
}
void GeluTanhArray(const float* x, float* y, size_t n) {
  MapArray(x, y, n, [](auto d, auto v) { return GeluTanhF32(d, v); });
}
void TanhArrF32(const float* x, float* y, size_t n) { TanhArr(x, y, n); }
void TanhF64(const double* x, double* y, size_t n) { TanhArr(x, y, n); }
void SigmoidF32(const float* x, float* y, size_t n) { SigmoidArr(x, y, n); }
void SigmoidF64(const double* x, double* y, size_t n) { SigmoidArr(x, y, n); }

// Four rows at a time (eight accumulators with two vectors), so each x load serves four rows
// and the reductions of different rows overlap.
template <class T, bool kTwo>
HWY_INLINE void DotRows(const T* a, size_t lda, size_t rows, size_t n, const T* x0, const T* x1,
                        T* y0, T* y1) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  const size_t full = n / N * N;
  const Partial<decltype(d)> part{d, n - full};
  auto sum = [&](V v) { return hn::GetLane(hn::SumOfLanes(d, v)); };
  size_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    const T* r0 = a + i * lda;
    const T* r1 = r0 + lda;
    const T* r2 = r1 + lda;
    const T* r3 = r2 + lda;
    V s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    V t0 = hn::Zero(d), t1 = hn::Zero(d), t2 = hn::Zero(d), t3 = hn::Zero(d);
    auto step = [&](V v0, V v1, V w0, V w1, V w2, V w3) {
      s0 = hn::MulAdd(w0, v0, s0);
      s1 = hn::MulAdd(w1, v0, s1);
      s2 = hn::MulAdd(w2, v0, s2);
      s3 = hn::MulAdd(w3, v0, s3);
      if constexpr (kTwo) {
        t0 = hn::MulAdd(w0, v1, t0);
        t1 = hn::MulAdd(w1, v1, t1);
        t2 = hn::MulAdd(w2, v1, t2);
        t3 = hn::MulAdd(w3, v1, t3);
      }
    };
    for (size_t k = 0; k < full; k += N)
      step(hn::LoadU(d, x0 + k), kTwo ? hn::LoadU(d, x1 + k) : hn::Zero(d), hn::LoadU(d, r0 + k),
           hn::LoadU(d, r1 + k), hn::LoadU(d, r2 + k), hn::LoadU(d, r3 + k));
    if (full < n)
      step(part.Load(x0 + full, T(0)), kTwo ? part.Load(x1 + full, T(0)) : hn::Zero(d),
           part.Load(r0 + full, T(0)), part.Load(r1 + full, T(0)), part.Load(r2 + full, T(0)),
           part.Load(r3 + full, T(0)));
    y0[i] = sum(s0), y0[i + 1] = sum(s1), y0[i + 2] = sum(s2), y0[i + 3] = sum(s3);
    if constexpr (kTwo)
      y1[i] = sum(t0), y1[i + 1] = sum(t1), y1[i + 2] = sum(t2), y1[i + 3] = sum(t3);
  }
  for (; i < rows; ++i) {
    const T* r = a + i * lda;
    V s = hn::Zero(d), t = hn::Zero(d);
    for (size_t k = 0; k < full; k += N) {
      const V w = hn::LoadU(d, r + k);
      s = hn::MulAdd(w, hn::LoadU(d, x0 + k), s);
      if constexpr (kTwo) t = hn::MulAdd(w, hn::LoadU(d, x1 + k), t);
    }
    if (full < n) {
      const V w = part.Load(r + full, T(0));
      s = hn::MulAdd(w, part.Load(x0 + full, T(0)), s);
      if constexpr (kTwo) t = hn::MulAdd(w, part.Load(x1 + full, T(0)), t);
    }
    y0[i] = sum(s);
    if constexpr (kTwo) y1[i] = sum(t);
  }
}

void DotRowsF32(const float* a, size_t lda, size_t rows, size_t n, const float* x0, const float* x1,
                float* y0, float* y1) {
  if (x1) DotRows<float, true>(a, lda, rows, n, x0, x1, y0, y1);
  else DotRows<float, false>(a, lda, rows, n, x0, x1, y0, y1);
}
void DotRowsF64(const double* a, size_t lda, size_t rows, size_t n, const double* x0,
                const double* x1, double* y0, double* y1) {
  if (x1) DotRows<double, true>(a, lda, rows, n, x0, x1, y0, y1);
  else DotRows<double, false>(a, lda, rows, n, x0, x1, y0, y1);
}

// Rows of IEEE half-precision values (bits), promoted to float32 as they are loaded.
HWY_INLINE hn::Vec<hn::ScalableTag<float>> LoadHalf(const uint16_t* p) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}

void DotRowsHalf(const uint16_t* a, size_t lda, size_t rows, size_t n, const float* x, float* y) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d), full = n / N * N;
  auto tail = [&](const uint16_t* r) {
    float t = 0;
    for (size_t k = full; k < n; ++k) t += x[k] * nef::to_float(nef::float16_t{r[k]});
    return t;
  };
  size_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    const uint16_t* r0 = a + i * lda;
    const uint16_t *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
    V s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    for (size_t k = 0; k < full; k += N) {
      const V v = hn::LoadU(d, x + k);
      s0 = hn::MulAdd(LoadHalf(r0 + k), v, s0);
      s1 = hn::MulAdd(LoadHalf(r1 + k), v, s1);
      s2 = hn::MulAdd(LoadHalf(r2 + k), v, s2);
      s3 = hn::MulAdd(LoadHalf(r3 + k), v, s3);
    }
    y[i] = hn::GetLane(hn::SumOfLanes(d, s0)) + tail(r0);
    y[i + 1] = hn::GetLane(hn::SumOfLanes(d, s1)) + tail(r1);
    y[i + 2] = hn::GetLane(hn::SumOfLanes(d, s2)) + tail(r2);
    y[i + 3] = hn::GetLane(hn::SumOfLanes(d, s3)) + tail(r3);
  }
  for (; i < rows; ++i) {
    const uint16_t* r = a + i * lda;
    V s0 = hn::Zero(d);
    for (size_t k = 0; k < full; k += N) s0 = hn::MulAdd(LoadHalf(r + k), hn::LoadU(d, x + k), s0);
    y[i] = hn::GetLane(hn::SumOfLanes(d, s0)) + tail(r);
  }
}

void WeightedRowsHalf(const float* p, const uint16_t* v, size_t ldv, size_t rows, size_t n,
                      float* y) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  size_t c = 0;
  // Four vectors of the output at a time stay in registers over all the rows.
  for (; c + 4 * N <= n; c += 4 * N) {
    V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
    for (size_t j = 0; j < rows; ++j) {
      if (p[j] == 0.0f) continue;
      const V pj = hn::Set(d, p[j]);
      const uint16_t* r = v + j * ldv + c;
      a0 = hn::MulAdd(pj, LoadHalf(r), a0);
      a1 = hn::MulAdd(pj, LoadHalf(r + N), a1);
      a2 = hn::MulAdd(pj, LoadHalf(r + 2 * N), a2);
      a3 = hn::MulAdd(pj, LoadHalf(r + 3 * N), a3);
    }
    hn::StoreU(a0, d, y + c);
    hn::StoreU(a1, d, y + c + N);
    hn::StoreU(a2, d, y + c + 2 * N);
    hn::StoreU(a3, d, y + c + 3 * N);
  }
  for (; c + N <= n; c += N) {
    V a0 = hn::Zero(d);
    for (size_t j = 0; j < rows; ++j)
      if (p[j] != 0.0f) a0 = hn::MulAdd(hn::Set(d, p[j]), LoadHalf(v + j * ldv + c), a0);
    hn::StoreU(a0, d, y + c);
  }
  for (; c < n; ++c) {
    float t = 0;
    for (size_t j = 0; j < rows; ++j)
      if (p[j] != 0.0f) t += p[j] * nef::to_float(nef::float16_t{v[j * ldv + c]});
    y[c] = t;
  }
}

// R rows x G gates x one 64-byte panel row of accumulators, the panel's vectors loaded once
// per k and broadcast x values reused across gates: no reductions.
template <class T, int G, int R>
HWY_INLINE void PanelRows(size_t K, const T* HWY_RESTRICT panel, const T* const* x, T* const* y,
                          size_t ys, size_t nj) {
  const hn::ScalableTag<T> d;
  using V = hn::Vec<decltype(d)>;
  constexpr size_t N = hn::MaxLanes(d);
  constexpr size_t JB = 64 / sizeof(T);
  constexpr size_t NV = JB / N;
  V acc[R][G][NV];
  const T* xr[R];
  for (int r = 0; r < R; ++r) {
    xr[r] = x[r];
    for (int g = 0; g < G; ++g)
      for (size_t v = 0; v < NV; ++v) acc[r][g][v] = hn::Zero(d);
  }
  for (size_t k = 0; k < K; ++k) {
    const T* p = panel + k * G * JB;
    V xv[R];
    for (int r = 0; r < R; ++r) xv[r] = hn::Set(d, xr[r][k]);
    for (int g = 0; g < G; ++g)
      for (size_t v = 0; v < NV; ++v) {
        const V pv = hn::LoadU(d, p + g * JB + v * N);
        for (int r = 0; r < R; ++r) acc[r][g][v] = hn::MulAdd(xv[r], pv, acc[r][g][v]);
      }
  }
  HWY_ALIGN T tile[JB];
  for (int r = 0; r < R; ++r)
    for (int g = 0; g < G; ++g) {
      T* out = y[r] + g * ys;
      if (nj == JB) {
        for (size_t v = 0; v < NV; ++v) hn::StoreU(acc[r][g][v], d, out + v * N);
      } else {
        for (size_t v = 0; v < NV; ++v) hn::Store(acc[r][g][v], d, tile + v * N);
        for (size_t j = 0; j < nj; ++j) out[j] = tile[j];
      }
    }
}

// Rows per pass: about eight accumulator vectors (AVX-512: 2 rows of 4 gates; AVX2: 1).
template <class T, int G>
HWY_INLINE void PanelProductG(size_t K, const T* panel, const T* const* x, T* const* y,
                              size_t nrows, size_t ys, size_t nj) {
  const hn::ScalableTag<T> d;
  constexpr size_t NV = 64 / sizeof(T) / hn::MaxLanes(d);
  constexpr size_t kRows = std::min<size_t>(4, std::max<size_t>(1, 8 / (G * NV)));
  size_t r = 0;
  for (; r + kRows <= nrows; r += kRows)
    PanelRows<T, G, int(kRows)>(K, panel, x + r, y + r, ys, nj);
  for (; r < nrows; ++r) PanelRows<T, G, 1>(K, panel, x + r, y + r, ys, nj);
}

template <class T>
HWY_INLINE void PanelProduct(const T* panel, size_t K, size_t G, const T* const* x, T* const* y,
                             size_t nrows, size_t ys, size_t nj) {
  switch (G) {
    case 1:
      return PanelProductG<T, 1>(K, panel, x, y, nrows, ys, nj);
    case 2:
      return PanelProductG<T, 2>(K, panel, x, y, nrows, ys, nj);
    case 3:
      return PanelProductG<T, 3>(K, panel, x, y, nrows, ys, nj);
    default:
      return PanelProductG<T, 4>(K, panel, x, y, nrows, ys, nj);
  }
}

// dst = src * scale (scale = 1: a copy) with streaming stores, then a store fence.
void StreamScale(const float* src, float scale, float* dst, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i < n && reinterpret_cast<uintptr_t>(dst + i) % (N * sizeof(float)) != 0; ++i)
    dst[i] = src[i] * scale;
  const auto vs = hn::Set(d, scale);
  for (; i + 4 * N <= n; i += 4 * N) {  // a 64-byte line per store on AVX-512
    const auto v0 = hn::Mul(hn::LoadU(d, src + i), vs);
    const auto v1 = hn::Mul(hn::LoadU(d, src + i + N), vs);
    const auto v2 = hn::Mul(hn::LoadU(d, src + i + 2 * N), vs);
    const auto v3 = hn::Mul(hn::LoadU(d, src + i + 3 * N), vs);
    hn::Stream(v0, d, dst + i);
    hn::Stream(v1, d, dst + i + N);
    hn::Stream(v2, d, dst + i + 2 * N);
    hn::Stream(v3, d, dst + i + 3 * N);
  }
  for (; i < n; ++i) dst[i] = src[i] * scale;
  hwy::FlushStream();
}

// y = ((x - mean) * rstd) [* w] [+ b], every product and sum rounded on its own (the values of
// the plain scalar loop, on every target); streaming stores when `stream` (a misaligned head
// and the tail through masked stores), then a store fence.
void NormalizeF32(const float* x, float mean, float rstd, const float* HWY_RESTRICT w,
                  const float* HWY_RESTRICT b, float* y, size_t n, bool stream) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const size_t N = hn::Lanes(d);
  const V vm = hn::Set(d, mean), vr = hn::Set(d, rstd);
  auto f = [&](V v, V wv, V bv) {
    v = hn::Mul(hn::Sub(v, vm), vr);
    if (w) v = hn::Mul(v, wv);
    if (b) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
      // GCC contracts the intrinsics' product and sum into an FMA: the barrier keeps the
      // product rounded, as on the targets without FMA.
      asm("" : "+v"(v.raw));
#endif
      v = hn::Add(v, bv);
    }
    return v;
  };
  auto part = [&](size_t i, size_t count) {
    const Partial<decltype(d)> p{d, count};
    const V wv = w ? p.Load(w + i, 0.0f) : vm, bv = b ? p.Load(b + i, 0.0f) : vm;
    p.Store(f(p.Load(x + i, 0.0f), wv, bv), y + i);
  };
  size_t i = 0;
  if (stream) {
    const size_t mis = (reinterpret_cast<uintptr_t>(y) / sizeof(float)) % N;
    if (mis != 0 && (reinterpret_cast<uintptr_t>(y) % sizeof(float)) == 0) {
      i = std::min(n, N - mis);
      part(0, i);
    } else if (mis != 0) {
      stream = false;  // not even float-aligned: plain stores
    }
  }
  for (; i + N <= n; i += N) {
    const V v = f(hn::LoadU(d, x + i), w ? hn::LoadU(d, w + i) : vm, b ? hn::LoadU(d, b + i) : vm);
    if (stream) hn::Stream(v, d, y + i);
    else hn::StoreU(v, d, y + i);
  }
  if (i < n) part(i, n - i);
  if (stream) hwy::FlushStream();
}

void HalfToFloat(const uint16_t* x, float* y, size_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const size_t N = hn::Lanes(df);
  const auto* h = reinterpret_cast<const hwy::float16_t*>(x);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, h + i)), df, y + i);
  for (; i < n; ++i) y[i] = nef::to_float(nef::float16_t{x[i]});
}

void PanelProductF32(const float* panel, size_t K, size_t G, const float* const* x, float* const* y,
                     size_t nrows, size_t ys, size_t nj) {
  PanelProduct(panel, K, G, x, y, nrows, ys, nj);
}
void PanelProductF64(const double* panel, size_t K, size_t G, const double* const* x,
                     double* const* y, size_t nrows, size_t ys, size_t nj) {
  PanelProduct(panel, K, G, x, y, nrows, ys, nj);
}

}  // namespace HWY_NAMESPACE
}  // namespace nef::backend::cpu::vmath
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "backends/cpu/kernels/vmath.h"

namespace nef::backend::cpu::vmath {

HWY_EXPORT(ErfArray);
HWY_EXPORT(GeluErfArray);
HWY_EXPORT(ScaleAddMaxF32);
HWY_EXPORT(ScaleAddMaxF64);
HWY_EXPORT(ExpShiftSumF32);
HWY_EXPORT(ExpShiftSumF64);
HWY_EXPORT(SumsF32);
HWY_EXPORT(SumsF64Array);
HWY_EXPORT(ExpArray);
HWY_EXPORT(LogArray);
HWY_EXPORT(SiluArray);
HWY_EXPORT(GeluTanhArray);
HWY_EXPORT(TanhArrF32);
HWY_EXPORT(TanhF64);
HWY_EXPORT(SigmoidF32);
HWY_EXPORT(SigmoidF64);
HWY_EXPORT(DotRowsF32);
HWY_EXPORT(DotRowsF64);
HWY_EXPORT(PanelProductF32);
HWY_EXPORT(PanelProductF64);
HWY_EXPORT(HalfToFloat);
HWY_EXPORT(StreamScale);
HWY_EXPORT(NormalizeF32);
HWY_EXPORT(ExtremeF32);
HWY_EXPORT(ExtremeF64);
HWY_EXPORT(QuantizeU8);
HWY_EXPORT(ScaleInt32);
HWY_EXPORT(DotRowsHalf);
HWY_EXPORT(WeightedRowsHalf);

float extreme(const float* x, size_t n, bool max, bool* nan) {
  return HWY_DYNAMIC_DISPATCH(ExtremeF32)(x, n, max, nan);
}
double extreme(const double* x, size_t n, bool max, bool* nan) {
  return HWY_DYNAMIC_DISPATCH(ExtremeF64)(x, n, max, nan);
}

void dot_rows_half(const uint16_t* a, size_t lda, size_t rows, size_t n, const float* x, float* y) {
  HWY_DYNAMIC_DISPATCH(DotRowsHalf)(a, lda, rows, n, x, y);
}
void weighted_rows_half(const float* p, const uint16_t* v, size_t ldv, size_t rows, size_t n,
                        float* y) {
  HWY_DYNAMIC_DISPATCH(WeightedRowsHalf)(p, v, ldv, rows, n, y);
}

void scale_int32(const int32_t* acc, size_t n, float s, const float* ws, const float* bias,
                 bool relu, float* y) {
  HWY_DYNAMIC_DISPATCH(ScaleInt32)(acc, n, s, ws, bias, relu, y);
}

int32_t quantize_u8(const float* x, size_t n, float s, float z, uint8_t* q) {
  return HWY_DYNAMIC_DISPATCH(QuantizeU8)(x, n, s, z, q);
}

void stream_copy(const float* src, float* dst, size_t n) {
  HWY_DYNAMIC_DISPATCH(StreamScale)(src, 1.0f, dst, n);
}
void stream_scale(const float* src, float scale, float* dst, size_t n) {
  HWY_DYNAMIC_DISPATCH(StreamScale)(src, scale, dst, n);
}

void normalize(const float* x, float mean, float rstd, const float* w, const float* b, float* y,
               size_t n, bool stream) {
  HWY_DYNAMIC_DISPATCH(NormalizeF32)(x, mean, rstd, w, b, y, n, stream);
}
void half_to_float(const uint16_t* x, float* y, size_t n) {
  HWY_DYNAMIC_DISPATCH(HalfToFloat)(x, y, n);
}

void erf(const float* x, float* y, size_t n) { HWY_DYNAMIC_DISPATCH(ErfArray)(x, y, n); }
void gelu_erf(const float* x, float* y, size_t n) { HWY_DYNAMIC_DISPATCH(GeluErfArray)(x, y, n); }
float scale_add_max(float* s, size_t n, size_t valid, float scale, const float* add) {
  return HWY_DYNAMIC_DISPATCH(ScaleAddMaxF32)(s, n, std::min(valid, n), scale, add);
}
double scale_add_max(double* s, size_t n, size_t valid, double scale, const double* add) {
  return HWY_DYNAMIC_DISPATCH(ScaleAddMaxF64)(s, n, std::min(valid, n), scale, add);
}
float exp_shift_sum(float* s, size_t n, float m) {
  return HWY_DYNAMIC_DISPATCH(ExpShiftSumF32)(s, s, n, m);
}
float exp_shift_sum(const float* x, float* s, size_t n, float m) {
  return HWY_DYNAMIC_DISPATCH(ExpShiftSumF32)(x, s, n, m);
}
void sums(const float* x, size_t n, double c, double* s1, double* s2) {
  HWY_DYNAMIC_DISPATCH(SumsF32)(x, n, c, s1, s2);
}
void sums(const double* x, size_t n, double c, double* s1, double* s2) {
  HWY_DYNAMIC_DISPATCH(SumsF64Array)(x, n, c, s1, s2);
}
double exp_shift_sum(double* s, size_t n, double m) {
  return HWY_DYNAMIC_DISPATCH(ExpShiftSumF64)(s, n, m);
}
void exp(const float* x, float* y, size_t n) { HWY_DYNAMIC_DISPATCH(ExpArray)(x, y, n); }
void log(const float* x, float* y, size_t n) { HWY_DYNAMIC_DISPATCH(LogArray)(x, y, n); }
void silu(const float* x, float* y, size_t n) { HWY_DYNAMIC_DISPATCH(SiluArray)(x, y, n); }
void gelu_tanh(const float* x, float* y, size_t n) { HWY_DYNAMIC_DISPATCH(GeluTanhArray)(x, y, n); }
void tanh(const float* x, float* y, size_t n) { HWY_DYNAMIC_DISPATCH(TanhArrF32)(x, y, n); }
void tanh(const double* x, double* y, size_t n) { HWY_DYNAMIC_DISPATCH(TanhF64)(x, y, n); }
void sigmoid(const float* x, float* y, size_t n) { HWY_DYNAMIC_DISPATCH(SigmoidF32)(x, y, n); }
void sigmoid(const double* x, double* y, size_t n) { HWY_DYNAMIC_DISPATCH(SigmoidF64)(x, y, n); }
void dot_rows(const float* a, size_t lda, size_t rows, size_t n, const float* x0, const float* x1,
              float* y0, float* y1) {
  HWY_DYNAMIC_DISPATCH(DotRowsF32)(a, lda, rows, n, x0, x1, y0, y1);
}
void dot_rows(const double* a, size_t lda, size_t rows, size_t n, const double* x0,
              const double* x1, double* y0, double* y1) {
  HWY_DYNAMIC_DISPATCH(DotRowsF64)(a, lda, rows, n, x0, x1, y0, y1);
}
void panel_product(const float* panel, size_t k, size_t gates, const float* const* x,
                   float* const* y, size_t rows, size_t ys, size_t nj) {
  HWY_DYNAMIC_DISPATCH(PanelProductF32)(panel, k, gates, x, y, rows, ys, nj);
}
void panel_product(const double* panel, size_t k, size_t gates, const double* const* x,
                   double* const* y, size_t rows, size_t ys, size_t nj) {
  HWY_DYNAMIC_DISPATCH(PanelProductF64)(panel, k, gates, x, y, rows, ys, nj);
}

}  // namespace nef::backend::cpu::vmath
#endif  // HWY_ONCE
