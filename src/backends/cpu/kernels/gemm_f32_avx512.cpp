// The float32 GEMM's macro-kernels on AVX-512 (this file is compiled with -mavx512f -mfma,
// gemm_f32.h): a 32-column B sliver row is two zmm vectors, each A element is broadcast straight
// from memory into the FMAs (vfmadd231ps with {1to16}), ROWS x 2 accumulators stay in registers
// for the whole K block. Row edges run a tile specialized for their row count (no padded rows
// computed), column edges store through masks.
#include <immintrin.h>

#include <algorithm>

#include "backends/cpu/kernels/gemm_f32.h"

#if defined(__AVX512F__) && defined(__FMA__)
namespace nef::backend::cpu {
namespace {

constexpr int kNR = 32;

// ROWS (<= MR) rows of an MR-row A sliver times one B sliver into c (nr <= kNR columns).
template <int MR, int ROWS>
[[gnu::always_inline]] inline void tile(int64_t kc, const float* __restrict a,
                                        const float* __restrict b, float* c, int64_t ldc,
                                        bool accumulate, int nr) {
  __m512 c0[ROWS], c1[ROWS];
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; ++i) c0[i] = c1[i] = _mm512_setzero_ps();
    // The C rows are read (or written) right after the K loop: start fetching them now.
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kNR - 1), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b + k * kNR);
    const __m512 b1 = _mm512_loadu_ps(b + k * kNR + 16);
    // The A sliver streams from L2: keep a few lines ahead of the loop.
    _mm_prefetch(reinterpret_cast<const char*>(a + (k + 12) * MR), _MM_HINT_T0);
#pragma GCC unroll 14
    for (int i = 0; i < ROWS; ++i) {
      const __m512 ai = _mm512_set1_ps(a[k * MR + i]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
  }
  const __mmask16 m0 = nr >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32  ? __mmask16(0xFFFF)
                       : nr > 16 ? __mmask16((1u << (nr - 16)) - 1)
                                 : __mmask16(0);
#pragma GCC unroll 14
  for (int i = 0; i < ROWS; ++i) {
    float* ci = c + i * ldc;
    if (accumulate) {
      c0[i] = _mm512_add_ps(c0[i], _mm512_maskz_loadu_ps(m0, ci));
      c1[i] = _mm512_add_ps(c1[i], _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, m0, c0[i]);
    _mm512_mask_storeu_ps(ci + 16, m1, c1[i]);
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

const GemmF32Isa* gemm_f32_avx512() {
  static const GemmF32Isa isa{"avx512", gemm_f32_macro<14, kNR, Tile>, gemm_f32_macro<8, kNR, Tile>,
                              nullptr};
  return &isa;
}

}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const GemmF32Isa* gemm_f32_avx512() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
