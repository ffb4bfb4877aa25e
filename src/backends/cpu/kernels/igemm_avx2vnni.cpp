// The integer GEMM's micro-tiles on AVX2 with AVX-VNNI (this file is compiled with -mavx2
// -mavxvnni): the 256-bit VEX dot products of CPUs with AVX-VNNI but no AVX-512 (Alder Lake and
// later, Zen 5 clients). A panel row of 16 columns x 4 bytes (x 2 int16) is two vectors; each
// A quad (pair) is broadcast and multiply-accumulated by one vpdpbusd (vpdpwssd) per vector,
// up to 6 rows x 16 columns of int32 accumulators (12 of the 16 registers); exact.
#include <immintrin.h>

#include <cstring>

#include "backends/cpu/kernels/igemm.h"

#if defined(__AVX2__) && defined(__AVXVNNI__)
namespace nef::backend::cpu {
namespace {

__m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

template <int MR>
void store_rows(__m256i (&acc)[MR][2], int32_t* c, int64_t ldc, int nc) {
  for (int r = 0; r < MR; ++r) {
    int32_t* cr = c + r * ldc;
    if (nc == kIgemmNR) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(cr), acc[r][0]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(cr + 8), acc[r][1]);
    } else {
      alignas(32) int32_t buf[kIgemmNR];
      _mm256_store_si256(reinterpret_cast<__m256i*>(buf), acc[r][0]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(buf + 8), acc[r][1]);
      std::memcpy(cr, buf, size_t(nc) * 4);
    }
  }
}

template <int MR>
void tile_rows(const int16_t* a, int64_t lda, const int16_t* panel, int64_t kp, int32_t* c,
               int64_t ldc, int nc) {
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t k = 0; k < kp; k += 2) {
    const __m256i b0 = load(panel + k * kIgemmNR), b1 = load(panel + k * kIgemmNR + 16);
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * lda + k, 4);
      const __m256i x = _mm256_set1_epi32(pair);
      acc[r][0] = _mm256_dpwssd_avx_epi32(acc[r][0], x, b0);
      acc[r][1] = _mm256_dpwssd_avx_epi32(acc[r][1], x, b1);
    }
  }
  store_rows<MR>(acc, c, ldc, nc);
}

void tile(const int16_t* a, int64_t lda, int mr, const int16_t* panel, int64_t kp, int32_t* c,
          int64_t ldc, int nc) {
  with_tile_rows(mr, [&]<int MR>() { tile_rows<MR>(a, lda, panel, kp, c, ldc, nc); });
}

// Byte operands: two vpdpbusd per 4 k x 16 columns and row.
template <int MR>
void tile_q8_rows(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t kq, int32_t* c,
                  int64_t ldc, int nc) {
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t k = 0; k < kq; k += 4) {
    const __m256i b0 = load(panel + k * kIgemmNR), b1 = load(panel + k * kIgemmNR + 32);
    for (int r = 0; r < MR; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * lda + k, 4);
      const __m256i q = _mm256_set1_epi32(quad);
      acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], q, b0);
      acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], q, b1);
    }
  }
  store_rows<MR>(acc, c, ldc, nc);
}

void tile_q8(const uint8_t* a, int64_t lda, int mr, const int8_t* panel, int64_t kq, int32_t* c,
             int64_t ldc, int nc) {
  with_tile_rows(mr, [&]<int MR>() { tile_q8_rows<MR>(a, lda, panel, kq, c, ldc, nc); });
}

}  // namespace

// No two-panel tile: 16 registers hold one panel's 12 accumulators, which already cover
// vpdpbusd's latency on two ports.
const IgemmIsa* igemm_avx2vnni() {
  static const IgemmIsa isa{"avx2vnni", tile, tile_q8, nullptr};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const IgemmIsa* igemm_avx2vnni() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
