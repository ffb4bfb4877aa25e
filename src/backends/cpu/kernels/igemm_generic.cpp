// The integer GEMM's micro-tile in portable C++ (igemm.h): the reference the SIMD variants are
// tested against, and what runs on CPUs without AVX2.
#include "backends/cpu/kernels/igemm.h"

namespace nef::backend::cpu {
namespace {

void tile(const int16_t* a, int64_t lda, int mr, const int16_t* panel, int64_t kp, int32_t* c,
          int64_t ldc, int nc) {
  for (int r = 0; r < mr; ++r) {
    int32_t acc[kIgemmNR] = {};
    const int16_t* ar = a + r * lda;
    for (int64_t k = 0; k < kp; k += 2) {
      const int16_t* p = panel + k * kIgemmNR;
      for (int j = 0; j < kIgemmNR; ++j)
        acc[j] += int32_t(ar[k]) * p[2 * j] + int32_t(ar[k + 1]) * p[2 * j + 1];
    }
    for (int j = 0; j < nc; ++j) c[r * ldc + j] = acc[j];
  }
}

}  // namespace

const IgemmIsa& igemm_generic() {
  static const IgemmIsa isa{"generic", tile};
  return isa;
}

}  // namespace nef::backend::cpu
