// qmatmul on AVX2 with AVX-VNNI (this file is compiled with -mavx2 -mfma -mf16c -mavxvnni): the
// AVX-512 VNNI variant's 32-element dot product in its 256-bit VEX form, one vpdpbusd per 32
// codes x 32 activations, where the AVX2 variant widens to int16 and needs four instructions.
// Lanes 0-3 hold the first 16 elements, lanes 4-7 the last 16, so the two scales go in one
// vector. One activation row (decoding) has its own loop over QGemvArgs' planes (gemv).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/kernels/qmatmul.h"
#include "nef/error.h"

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

// The decoding product (one activation row, a 32-element format) over the planes of
// QGemvArgs: per block one vpdpbusd and one FMA, two blocks in flight on two accumulators, the
// weight rows prefetched ahead (they stream from L3 or DRAM once per token, as for the AVX-512
// gemv).
template <quant::Format F>
struct Gemv {
  using B = Blocks32<F>;
  static constexpr int64_t kAhead = 4096;  // bytes of weights prefetched ahead of the row

  static void rows(const QGemvArgs& a, int64_t n0, int64_t n1) {
    const int64_t nb = a.K / 32;
    alignas(32) uint8_t tmp[32];
    for (int64_t n = n0; n < n1; ++n) {
      const uint8_t* row = a.w + n * a.row_bytes;
      for (int64_t o = 0; o < a.row_bytes; o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(row + kAhead + o), _MM_HINT_T0);
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      float bsum0 = 0, bsum1 = 0;
      int64_t b = 0;
      for (; b + 2 <= nb; b += 2) {
        const uint8_t* k0 = row + b * B::kBytes;
        const uint8_t* k1 = k0 + B::kBytes;
        const float d0 = f16(k0), d1 = f16(k1);
        acc0 = Dot::chunk1(acc0, B::codes(k0, tmp), a.q + 32 * b, d0 * a.d[b]);
        acc1 = Dot::chunk1(acc1, B::codes(k1, tmp), a.q + 32 * (b + 1), d1 * a.d[b + 1]);
        bsum0 += B::offset(k0, d0) * a.s[b];
        bsum1 += B::offset(k1, d1) * a.s[b + 1];
      }
      if (b < nb) {
        const uint8_t* k0 = row + b * B::kBytes;
        const float d0 = f16(k0);
        acc0 = Dot::chunk1(acc0, B::codes(k0, tmp), a.q + 32 * b, d0 * a.d[b]);
        bsum0 += B::offset(k0, d0) * a.s[b];
      }
      a.out[n] = Dot::sum(_mm256_add_ps(acc0, acc1)) + (bsum0 + bsum1);
    }
  }
};

void gemv_impl(const QGemvArgs& a, int64_t n0, int64_t n1) {
  switch (a.format) {
    case quant::Format::Q4_0:
      return Gemv<quant::Format::Q4_0>::rows(a, n0, n1);
    case quant::Format::Q4_1:
      return Gemv<quant::Format::Q4_1>::rows(a, n0, n1);
    case quant::Format::Q8_0:
      return Gemv<quant::Format::Q8_0>::rows(a, n0, n1);
    default:
      NEF_CHECK(false, "qmatmul gemv takes 32-element formats");
  }
}

}  // namespace

const QGemmIsa* qgemm_avx2vnni() {
  static const QGemmIsa isa{"avx2vnni", quantize_row_impl, rows_impl, dequantize_row_impl,
                            gemv_impl};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const QGemmIsa* qgemm_avx2vnni() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
