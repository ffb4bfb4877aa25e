// The float32 GEMM's macro-kernel on AVX2 (this file is compiled with -mavx2 -mfma, gemm_f32.h):
// a 16-column B sliver row is two ymm vectors, each A element is broadcast from memory, 6 x 2
// accumulators stay in registers for the whole K block (15 of the 16 registers). Row edges run a
// tile specialized for their row count, column edges store through masks.
#include <immintrin.h>

#include <algorithm>

#include "backends/cpu/kernels/gemm_f32.h"

#if defined(__AVX2__) && defined(__FMA__)
namespace nef::backend::cpu {
namespace {

constexpr int kNR = 16;

// Lanes [0, n) of a store mask (n clamped to [0, 8]).
inline __m256i lanes(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

template <int MR, int ROWS>
[[gnu::always_inline]] inline void tile(int64_t kc, const float* __restrict a,
                                        const float* __restrict b, float* c, int64_t ldc,
                                        bool accumulate, int nr) {
  __m256 c0[ROWS], c1[ROWS];
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) c0[i] = c1[i] = _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i)
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b + k * kNR);
    const __m256 b1 = _mm256_loadu_ps(b + k * kNR + 8);
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + k * MR + i);
      c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
    }
  }
  if (nr == kNR) {
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i) {
      float* ci = c + i * ldc;
      if (accumulate) {
        c0[i] = _mm256_add_ps(c0[i], _mm256_loadu_ps(ci));
        c1[i] = _mm256_add_ps(c1[i], _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, c0[i]);
      _mm256_storeu_ps(ci + 8, c1[i]);
    }
    return;
  }
  const __m256i m0 = lanes(nr), m1 = lanes(nr - 8);
#pragma GCC unroll 6
  for (int i = 0; i < ROWS; ++i) {
    float* ci = c + i * ldc;
    if (accumulate) {
      c0[i] = _mm256_add_ps(c0[i], _mm256_maskload_ps(ci, m0));
      c1[i] = _mm256_add_ps(c1[i], _mm256_maskload_ps(ci + 8, m1));
    }
    _mm256_maskstore_ps(ci, m0, c0[i]);
    _mm256_maskstore_ps(ci + 8, m1, c1[i]);
  }
}

struct Tile {
  template <int MR, int ROWS>
  static void run(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                  bool accumulate, int nr) {
    tile<MR, ROWS>(kc, a, b, c, ldc, accumulate, nr);
  }
};

}  // namespace

const GemmF32Isa* gemm_f32_avx2() {
  static const GemmF32Isa isa{"avx2", nullptr, nullptr, gemm_f32_macro<6, kNR, Tile>};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const GemmF32Isa* gemm_f32_avx2() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
