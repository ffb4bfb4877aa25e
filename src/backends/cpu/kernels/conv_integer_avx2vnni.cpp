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

#include "backends/cpu/kernels/conv_integer_tile256-inl.h"

void tile(int64_t kc, const int32_t* a, const int32_t* b, const int64_t* offs, int32_t* c,
          bool zero) {
  tile256(kc, a, b, offs, c, zero, [](__m256i acc, __m256i plane, __m256i w) {
    return _mm256_dpbusd_avx_epi32(acc, plane, w);
  });
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
