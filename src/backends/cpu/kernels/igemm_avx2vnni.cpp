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

#include "backends/cpu/kernels/igemm_tile256-inl.h"

void tile(const int16_t* a, int64_t lda, int mr, const int16_t* panel, int64_t kp, int32_t* c,
          int64_t ldc, int nc) {
  with_tile_rows(mr, [&]<int MR>() {
    tile256_rows<MR, 2>(a, lda, panel, kp, c, ldc, nc, [](__m256i acc, __m256i x, __m256i b) {
      return _mm256_dpwssd_avx_epi32(acc, x, b);
    });
  });
}

void tile_q8(const uint8_t* a, int64_t lda, int mr, const int8_t* panel, int64_t kq, int32_t* c,
             int64_t ldc, int nc) {
  // Byte operands: two vpdpbusd per 4 k x 16 columns and row.
  with_tile_rows(mr, [&]<int MR>() {
    tile256_rows<MR, 4>(a, lda, panel, kq, c, ldc, nc, [](__m256i acc, __m256i q, __m256i b) {
      return _mm256_dpbusd_avx_epi32(acc, q, b);
    });
  });
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
