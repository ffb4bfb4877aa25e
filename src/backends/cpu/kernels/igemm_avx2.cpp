// The integer GEMM's micro-tile on AVX2 (this file is compiled with -mavx2): a panel row of 16
// columns x 2 int16 is two vectors; each A pair is broadcast and multiplied pairwise
// (vpmaddwd), up to 6 rows x 16 columns of int32 accumulators.
#include <immintrin.h>

#include <cstring>

#include "backends/cpu/kernels/igemm.h"

#if defined(__AVX2__)
namespace nef::backend::cpu {
namespace {

#include "backends/cpu/kernels/igemm_tile256-inl.h"

void tile(const int16_t* a, int64_t lda, int mr, const int16_t* panel, int64_t kp, int32_t* c,
          int64_t ldc, int nc) {
  with_tile_rows(mr, [&]<int MR>() {
    tile256_rows<MR, 2>(a, lda, panel, kp, c, ldc, nc, [](__m256i acc, __m256i x, __m256i b) {
      return _mm256_add_epi32(acc, _mm256_madd_epi16(x, b));
    });
  });
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
