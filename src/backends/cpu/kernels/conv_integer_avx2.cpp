// conv_integer.h's tile on AVX2 (this file is compiled with -mavx2): 4 output channels x 24
// positions of int32 accumulators (12 of the 16 registers); per k, three vectors of plane words
// (2 channels of x - x_zp as int16 x 8 positions) against a broadcast weight word (w - w_zp),
// one vpmaddwd each: the products are at most 255^2, so the sums are exact.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "backends/cpu/kernels/conv_integer.h"

#if defined(__AVX2__)
namespace nef::backend::cpu {
namespace {

#include "backends/cpu/kernels/conv_integer_tile256-inl.h"

void tile(int64_t kc, const int32_t* a, const int32_t* b, const int64_t* offs, int32_t* c,
          bool zero) {
  tile256(kc, a, b, offs, c, zero, [](__m256i acc, __m256i plane, __m256i w) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(plane, w));
  });
}

void range(const float* x, int64_t n, float& lo, float& hi, bool& finite) {
  __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), bad = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    vlo = _mm256_min_ps(vlo, v);
    vhi = _mm256_max_ps(vhi, v);
    bad = _mm256_add_ps(bad, _mm256_sub_ps(v, v));  // NaN for NaN or an infinity, else 0
  }
  alignas(32) float l[8], h[8], b[8];
  _mm256_store_ps(l, vlo);
  _mm256_store_ps(h, vhi);
  _mm256_store_ps(b, bad);
  float acc = 0.0f;
  for (int i = 0; i < 8; ++i) lo = std::min(lo, l[i]), hi = std::max(hi, h[i]), acc += b[i];
  for (; j < n; ++j) lo = std::min(lo, x[j]), hi = std::max(hi, x[j]), acc += x[j] - x[j];
  finite = finite && acc == 0.0f;
}

void quantize(const float* x, int64_t n, float s, float z, uint8_t* d) {
  const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z), top = _mm256_set1_ps(255.0f);
  const __m256 zero = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 q = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x + j), vs),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i c =
        _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(q, vz), zero), top));
    alignas(32) int32_t v[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(v), c);
    for (int i = 0; i < 8; ++i) d[j + i] = uint8_t(v[i]);
  }
  for (; j < n; ++j) {
    const float q = std::nearbyint(x[j] / s) + z;
    d[j] = uint8_t(int32_t(std::min(std::max(q, 0.0f), 255.0f)));
  }
}

#define NEF_DW_VBYTES 32
#include "backends/cpu/kernels/conv_integer_rows-inl.h"
#undef NEF_DW_VBYTES

}  // namespace

const ConvIntIsa* conv_int_avx2() {
  static const ConvIntIsa isa{"avx2", kMR, kNR, 2, tile, range, quantize, dw_row, rescale};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const ConvIntIsa* conv_int_avx2() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
