// conv_integer.h's tile on AVX-512 VNNI (this file is compiled with -mavx512f -mavx512bw
// -mavx512vnni): 8 output channels x 48 positions of int32 accumulators (24 of the 32
// registers); per k, three vectors of plane words (4 channel bytes x 16 positions, the unsigned
// operand) against a broadcast weight word (the signed one), one vpdpbusd each.
#include <immintrin.h>

#include "backends/cpu/kernels/conv_integer.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
// GCC 12 flags the intrinsics' own _mm512_undefined_* placeholders (-Wall -O3): not this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace nef::backend::cpu {
namespace {

constexpr int kMR = 8, kNV = 3, kNR = 16 * kNV;

void tile(int64_t kc, const int32_t* a, const int32_t* b, const int64_t* offs, int32_t* c,
          bool zero) {
  __m512i acc[kMR][kNV];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < kNV; ++v)
      acc[i][v] = zero ? _mm512_setzero_si512() : _mm512_loadu_si512(c + i * kNR + v * 16);
  for (int64_t k = 0; k < kc; ++k) {
    const int32_t* bk = b + offs[k];
    __m512i bv[kNV];
#pragma GCC unroll 3
    for (int v = 0; v < kNV; ++v) bv[v] = _mm512_loadu_si512(bk + v * 16);
#pragma GCC unroll 8
    for (int i = 0; i < kMR; ++i) {
      const __m512i w = _mm512_set1_epi32(a[k * kMR + i]);
#pragma GCC unroll 3
      for (int v = 0; v < kNV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], bv[v], w);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < kMR; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < kNV; ++v) _mm512_storeu_si512(c + i * kNR + v * 16, acc[i][v]);
}

// min / max per lane (a NaN lane is caught by x - x below, not by these).
void range(const float* x, int64_t n, float& lo, float& hi, bool& finite) {
  __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), bad = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 v = _mm512_loadu_ps(x + j);
    vlo = _mm512_min_ps(vlo, v);
    vhi = _mm512_max_ps(vhi, v);
    bad = _mm512_add_ps(bad, _mm512_sub_ps(v, v));  // NaN for NaN or an infinity, else 0
  }
  if (j < n) {
    const __mmask16 m = __mmask16((1u << (n - j)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + j);  // zeros past n: inside any [lo, hi] with 0
    vlo = _mm512_min_ps(vlo, v);
    vhi = _mm512_max_ps(vhi, v);
    bad = _mm512_add_ps(bad, _mm512_sub_ps(v, v));
  }
  lo = _mm512_reduce_min_ps(vlo);
  hi = _mm512_reduce_max_ps(vhi);
  finite = finite && _mm512_cmp_ps_mask(bad, bad, _CMP_UNORD_Q) == 0;
}

void quantize(const float* x, int64_t n, float s, float z, uint8_t* d) {
  const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(z), top = _mm512_set1_ps(255.0f);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
    const __m512 q = _mm512_roundscale_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(m, x + j), vs),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(q, vz), zero), top);
    _mm512_mask_cvtusepi32_storeu_epi8(d + j, m, _mm512_cvtps_epu32(c));
  }
}

#define NEF_DW_VBYTES 64
#include "backends/cpu/kernels/conv_integer_rows-inl.h"
#undef NEF_DW_VBYTES

}  // namespace

const ConvIntIsa* conv_int_avx512() {
  static const ConvIntIsa isa{"avx512vnni", kMR, kNR, 4, tile, range, quantize, dw_row, rescale};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const ConvIntIsa* conv_int_avx512() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
