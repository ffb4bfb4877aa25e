// conv_simd.h's loops for AVX2 + FMA (8 floats a vector): a 4 x 24 tile, 12 of the 16 registers.
// This file is compiled with its target flags (CMakeLists.txt) and used only where the CPU has
// them.
#include "backends/cpu/kernels/conv_simd.h"

#if defined(__AVX2__) && defined(__FMA__)
namespace nef::backend::cpu {
namespace conv_avx2 {
#define NEF_CONV_VBYTES 32
#define NEF_CONV_MR 4
#define NEF_CONV_NV 3
#include "backends/cpu/kernels/conv_simd-inl.h"
#undef NEF_CONV_VBYTES
#undef NEF_CONV_MR
#undef NEF_CONV_NV
}  // namespace conv_avx2

const ConvSimdIsa* conv_simd_avx2() {
  using namespace conv_avx2;
  static const ConvSimdIsa isa{"avx2", kMR,       kNR,         kL,      tile,   tile_rows,
                               dw,     copy_rows, split_pairs, dw_s2k3, dw_s1k3};
  return &isa;
}
}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const ConvSimdIsa* conv_simd_avx2() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
