// qmatmul on AVX2 with AVX-VNNI (this file is compiled with -mavx2 -mfma -mf16c -mavxvnni): the
// AVX-512 VNNI variant's 32-element dot product in its 256-bit VEX form, one vpdpbusd per 32
// codes x 32 activations, where the AVX2 variant widens to int16 and needs four instructions.
// Lanes 0-3 hold the first 16 elements, lanes 4-7 the last 16, so the two scales go in one
// vector. No separate one-row path: rows() reads the 32-element blocks directly there too.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernels/qmatmul.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__AVXVNNI__)
namespace nef::backend::cpu {
namespace {

struct Dot {
  using W = __m256i;
  using Acc = __m256;
  static W load(const uint8_t* codes) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));
  }
  static W nibbles(const uint8_t* qs, uint8_t*) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i mask = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), mask), _mm_and_si128(v, mask));
  }
  static W bytes(const uint8_t* qs, uint8_t*) {  // q + 128
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs)),
                            _mm256_set1_epi8(char(0x80)));
  }
  static float half(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
  }
  static __m256i dot(W w, const int8_t* q) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w, x);
  }
  static Acc chunk1(Acc acc, W w, const int8_t* q, float s) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot(w, q)), _mm256_set1_ps(s), acc);
  }
  static Acc zero() { return _mm256_setzero_ps(); }
  static Acc add(Acc a, Acc b) { return _mm256_add_ps(a, b); }
  static Acc chunk(Acc acc, W w, const int8_t* q, float slo, float shi) {
    const __m256 s = _mm256_set_m128(_mm_set1_ps(shi), _mm_set1_ps(slo));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot(w, q)), s, acc);
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

const QGemmIsa* qgemm_avx2vnni() {
  static const QGemmIsa isa{"avx2vnni", quantize_row_impl, rows_impl, dequantize_row_impl};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const QGemmIsa* qgemm_avx2vnni() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
