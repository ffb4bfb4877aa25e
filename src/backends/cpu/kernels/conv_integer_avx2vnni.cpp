// conv_integer.h's tile on AVX2 with AVX-VNNI (this file is compiled with -mavx2 -mavxvnni): the
// byte-word format of the AVX-512 VNNI tile in 256-bit vectors, 4 output channels x 24 positions
// of int32 accumulators (12 of the 16 registers); per k, three vectors of plane words (4 channel
// bytes x 8 positions, the unsigned operand) against a broadcast weight word (the signed one),
// one vpdpbusd each. The float passes of conv_dynamic_int8 are the AVX2 variant's.
#include <immintrin.h>

#include "backends/cpu/kernels/conv_integer.h"

#if defined(__AVX2__) && defined(__AVXVNNI__)
namespace nef::backend::cpu {
namespace {

constexpr int kMR = 4, kNV = 3, kNR = 8 * kNV;

__m256i load(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

void tile(int64_t kc, const int32_t* a, const int32_t* b, const int64_t* offs, int32_t* c,
          bool zero) {
  __m256i acc[kMR][kNV];
#pragma GCC unroll 4
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < kNV; ++v)
      acc[i][v] = zero ? _mm256_setzero_si256() : load(c + i * kNR + v * 8);
  for (int64_t k = 0; k < kc; ++k) {
    const int32_t* bk = b + offs[k];
    __m256i bv[kNV];
#pragma GCC unroll 3
    for (int v = 0; v < kNV; ++v) bv[v] = load(bk + v * 8);
#pragma GCC unroll 4
    for (int i = 0; i < kMR; ++i) {
      const __m256i w = _mm256_set1_epi32(a[k * kMR + i]);
#pragma GCC unroll 3
      for (int v = 0; v < kNV; ++v) acc[i][v] = _mm256_dpbusd_avx_epi32(acc[i][v], bv[v], w);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < kNV; ++v)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * kNR + v * 8), acc[i][v]);
}

}  // namespace

const ConvIntIsa* conv_int_avx2vnni() {
  const ConvIntIsa* avx2 = conv_int_avx2();
  if (!avx2) return nullptr;
  static const ConvIntIsa isa{"avx2vnni",     kMR,          kNR,          4, tile, avx2->range,
                              avx2->quantize, avx2->dw_row, avx2->rescale};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const ConvIntIsa* conv_int_avx2vnni() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
