// The integer GEMM's micro-tiles on AVX-512 VNNI (this file is compiled with -mavx512f
// -mavx512bw -mavx512vnni): a panel row of 16 columns x 2 int16 (or x 4 bytes) is one vector;
// each A pair (quad) is broadcast and multiply-accumulated into int32 lanes by one vpdpwssd
// (vpdpbusd); exact, neither saturates.
#include <immintrin.h>

#include <cstring>

#include "backends/cpu/kernels/igemm.h"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
namespace nef::backend::cpu {
namespace {

template <int MR>
void tile_rows(const int16_t* a, int64_t lda, const int16_t* panel, int64_t kp, int32_t* c,
               int64_t ldc, int nc) {
  __m512i acc[MR];
  for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_si512();
  for (int64_t k = 0; k < kp; k += 2) {
    const __m512i b = _mm512_loadu_si512(panel + k * kIgemmNR);
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * lda + k, 4);
      acc[r] = _mm512_dpwssd_epi32(acc[r], _mm512_set1_epi32(pair), b);
    }
  }
  const __mmask16 mask = __mmask16((1u << nc) - 1);
  for (int r = 0; r < MR; ++r) _mm512_mask_storeu_epi32(c + r * ldc, mask, acc[r]);
}

void tile(const int16_t* a, int64_t lda, int mr, const int16_t* panel, int64_t kp, int32_t* c,
          int64_t ldc, int nc) {
  with_tile_rows(mr, [&]<int MR>() { tile_rows<MR>(a, lda, panel, kp, c, ldc, nc); });
}

// Byte operands: one vpdpbusd per 4 k x 16 columns and row.
template <int MR>
void tile_q8_rows(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t kq, int32_t* c,
                  int64_t ldc, int nc) {
  __m512i acc[MR];
  for (int r = 0; r < MR; ++r) acc[r] = _mm512_setzero_si512();
  for (int64_t k = 0; k < kq; k += 4) {
    const __m512i b = _mm512_loadu_si512(panel + k * kIgemmNR);
    for (int r = 0; r < MR; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * lda + k, 4);
      acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_set1_epi32(quad), b);
    }
  }
  const __mmask16 mask = __mmask16((1u << nc) - 1);
  for (int r = 0; r < MR; ++r) _mm512_mask_storeu_epi32(c + r * ldc, mask, acc[r]);
}

void tile_q8(const uint8_t* a, int64_t lda, int mr, const int8_t* panel, int64_t kq, int32_t* c,
             int64_t ldc, int nc) {
  with_tile_rows(mr, [&]<int MR>() { tile_q8_rows<MR>(a, lda, panel, kq, c, ldc, nc); });
}

// Two panels: 2 x MR accumulators (12 at MR = 6), enough to cover vpdpbusd's latency on two
// ports; the row's quad is broadcast once for both.
template <int MR>
void tile_q8_pair_rows(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t kq, int32_t* c,
                       int64_t ldc, int nc2) {
  const int8_t* panel2 = panel + kq * kIgemmNR;
  __m512i acc0[MR], acc1[MR];
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_setzero_si512();
  for (int64_t k = 0; k < kq; k += 4) {
    const __m512i b0 = _mm512_loadu_si512(panel + k * kIgemmNR);
    const __m512i b1 = _mm512_loadu_si512(panel2 + k * kIgemmNR);
    for (int r = 0; r < MR; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * lda + k, 4);
      const __m512i q = _mm512_set1_epi32(quad);
      acc0[r] = _mm512_dpbusd_epi32(acc0[r], q, b0);
      acc1[r] = _mm512_dpbusd_epi32(acc1[r], q, b1);
    }
  }
  const __mmask16 mask = __mmask16((1u << nc2) - 1);
  for (int r = 0; r < MR; ++r) {
    _mm512_storeu_si512(c + r * ldc, acc0[r]);
    _mm512_mask_storeu_epi32(c + r * ldc + kIgemmNR, mask, acc1[r]);
  }
}

void tile_q8_pair(const uint8_t* a, int64_t lda, int mr, const int8_t* panel, int64_t kq,
                  int32_t* c, int64_t ldc, int nc2) {
  with_tile_rows(mr, [&]<int MR>() { tile_q8_pair_rows<MR>(a, lda, panel, kq, c, ldc, nc2); });
}

}  // namespace

const IgemmIsa* igemm_avx512() {
  static const IgemmIsa isa{"avx512vnni", tile, tile_q8, tile_q8_pair};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const IgemmIsa* igemm_avx512() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
