// Internal to the CPU backend: the float32 GEMM's macro-kernels written with intrinsics, one file
// per instruction set (gemm_f32_avx512.cpp, gemm_f32_avx2.cpp, each compiled for its target and
// chosen at run time). matmul.cpp's Goto driver packs the operands and calls them; float64 and
// CPUs without AVX2 keep its portable (compiler-vectorized) macro-kernel.
#pragma once

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

const GemmF32Isa* gemm_f32_avx512();  // nullptr when not compiled in
const GemmF32Isa* gemm_f32_avx2();    // nullptr when not compiled in

}  // namespace nef::backend::cpu
