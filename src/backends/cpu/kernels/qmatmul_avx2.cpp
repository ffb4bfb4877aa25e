// qmatmul on AVX2 + FMA (this file is compiled with -mavx2 -mfma): bytes widened to 16 bits and
// multiplied pairwise (vpmaddwd); exact, since codes <= 255 and |q| <= 127.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernels/qmatmul.h"

#if defined(__AVX2__) && defined(__FMA__)
namespace nef::backend::cpu {
namespace {

struct Dot {
  struct W {
    __m256i lo, hi;  // codes 0-15 and 16-31 as int16
  };
  using Acc = __m256;
  static W load(const uint8_t* codes) {
    return {_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes))),
            _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + 16)))};
  }
  static W nibbles(const uint8_t* qs, uint8_t*) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i mask = _mm_set1_epi8(0x0f);
    return {_mm256_cvtepu8_epi16(_mm_and_si128(v, mask)),
            _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(v, 4), mask))};
  }
  static W bytes(const uint8_t* qs, uint8_t*) {  // q + 128, as int16
    const __m256i off = _mm256_set1_epi16(128);
    return {
        _mm256_add_epi16(
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs))), off),
        _mm256_add_epi16(
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16))), off)};
  }
  static float half(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
  }
  static Acc chunk1(Acc acc, const W& w, const int8_t* q, float s) {
    const __m256i xl = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    const __m256i xh =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16)));
    const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(w.lo, xl), _mm256_madd_epi16(w.hi, xh));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s), acc);
  }
  static Acc zero() { return _mm256_setzero_ps(); }
  static Acc add(Acc a, Acc b) { return _mm256_add_ps(a, b); }
  static Acc chunk(Acc acc, const W& w, const int8_t* q, float slo, float shi) {
    const __m256i xl = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
    const __m256i xh =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16)));
    acc =
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(w.lo, xl)), _mm256_set1_ps(slo), acc);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(w.hi, xh)), _mm256_set1_ps(shi),
                           acc);
  }
  static float sum(Acc acc) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

#include "backends/cpu/kernels/qmatmul-inl.h"

}  // namespace

const QGemmIsa* qgemm_avx2() {
  static const QGemmIsa isa{"avx2", quantize_row_impl, rows_impl, dequantize_row_impl};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const QGemmIsa* qgemm_avx2() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
