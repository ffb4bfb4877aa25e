// Internal to the CPU backend: the float32 GEMM's macro-kernels written with intrinsics, one file
// per instruction set (gemm_f32_avx512.cpp, gemm_f32_avx2.cpp, each compiled for its target and
// chosen at run time). matmul.cpp's Goto driver packs the operands and calls them; float64 and
// CPUs without AVX2 keep its portable (compiler-vectorized) macro-kernel.
#pragma once

#include <algorithm>
#include <cstdint>

namespace nef::backend::cpu {

// All MR x NR tiles of one packed A block against B slivers [s0, s1) of one packed panel:
//   c[i * ldc + j] (+)= sum_k ap[(i / MR) * MR * kc + k * MR + i % MR] * bp[(j / NR) * NR * kc +
//                                                                           k * NR + j % NR]
// for i < mc, s0 * NR <= j < min(s1 * NR, nc): A packed in MR-row slivers and B in NR-column
// slivers, each k-major and zero padded to whole slivers (matmul.cpp's pack_a / pack_b), `+=`
// when `accumulate`. Rows past mc and columns past nc are never written.
using GemmMacroF32 = void (*)(int64_t mc, int64_t nc, int64_t kc, int64_t s0, int64_t s1,
                              const float* ap, const float* bp, float* c, int64_t ldc,
                              bool accumulate);

// One instruction set's macro-kernels for the tile families matmul.cpp uses (null where the set
// has none of that shape).
struct GemmF32Isa {
  const char* name;
  GemmMacroF32 mr14_nr32 = nullptr;  // AVX-512: 14 rows x 2 vectors of 16
  GemmMacroF32 mr8_nr32 = nullptr;   // AVX-512: 8 rows (for row counts that 14 pads badly)
  GemmMacroF32 mr6_nr16 = nullptr;   // AVX2: 6 rows x 2 vectors of 8
};

// The GemmMacroF32 loop over an A block's row tiles, shared by the per-ISA files and compiled in
// each with its flags: `Tile::template run<MR, ROWS>(kc, a, b, c, ldc, accumulate, nr)` computes
// ROWS (<= MR) rows of an MR-row A sliver times one NR-column B sliver into c (nr <= NR
// columns). The last rows run a tile specialized for their count, so no padded row is computed.
template <int MR, class Tile, int R = 1>
inline void gemm_f32_edge_tile(int rows, int64_t kc, const float* a, const float* b, float* c,
                               int64_t ldc, bool accumulate, int nr) {
  if constexpr (R < MR) {
    if (rows == R) return Tile::template run<MR, R>(kc, a, b, c, ldc, accumulate, nr);
    return gemm_f32_edge_tile<MR, Tile, R + 1>(rows, kc, a, b, c, ldc, accumulate, nr);
  }
}

template <int MR, int NR, class Tile>
void gemm_f32_macro(int64_t mc, int64_t nc, int64_t kc, int64_t s0, int64_t s1, const float* ap,
                    const float* bp, float* c, int64_t ldc, bool accumulate) {
  const int64_t full = mc / MR;
  const int rem = int(mc % MR);
  for (int64_t s = s0; s < s1; ++s) {
    const int64_t j0 = s * NR;
    const int nr = int(std::min<int64_t>(NR, nc - j0));
    const float* b = bp + s * NR * kc;
    for (int64_t t = 0; t < full; ++t)
      Tile::template run<MR, MR>(kc, ap + t * MR * kc, b, c + t * MR * ldc + j0, ldc, accumulate,
                                 nr);
    if (rem)
      gemm_f32_edge_tile<MR, Tile>(rem, kc, ap + full * MR * kc, b, c + full * MR * ldc + j0, ldc,
                                   accumulate, nr);
  }
}

const GemmF32Isa* gemm_f32_avx512();  // nullptr when not compiled in
const GemmF32Isa* gemm_f32_avx2();    // nullptr when not compiled in

}  // namespace nef::backend::cpu
