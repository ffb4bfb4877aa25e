// The integer GEMM's micro-tile on AVX2 (this file is compiled with -mavx2): a panel row of 16
// columns x 2 int16 is two vectors; each A pair is broadcast and multiplied pairwise
// (vpmaddwd), up to 6 rows x 16 columns of int32 accumulators.
#include <immintrin.h>

#include <cstring>

#include "backends/cpu/kernels/igemm.h"

#if defined(__AVX2__)
namespace nef::backend::cpu {
namespace {

template <int MR>
void tile_rows(const int16_t* a, int64_t lda, const int16_t* panel, int64_t kp, int32_t* c,
               int64_t ldc, int nc) {
  __m256i acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  for (int64_t k = 0; k < kp; k += 2) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * kIgemmNR));
    const __m256i b1 =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * kIgemmNR + 16));
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * lda + k, 4);
      const __m256i x = _mm256_set1_epi32(pair);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(x, b0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(x, b1));
    }
  }
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

void tile(const int16_t* a, int64_t lda, int mr, const int16_t* panel, int64_t kp, int32_t* c,
          int64_t ldc, int nc) {
  with_tile_rows(mr, [&]<int MR>() { tile_rows<MR>(a, lda, panel, kp, c, ldc, nc); });
}

}  // namespace

const IgemmIsa* igemm_avx2() {
  static const IgemmIsa isa{"avx2", tile};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const IgemmIsa* igemm_avx2() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
