// conv_simd.h's loops for AVX-512 (16 floats a vector): an 8 x 48 tile, 24 of the 32 registers.
// This file is compiled with its target flags (CMakeLists.txt) and used only where the CPU has
// them.
#include "backends/cpu/kernels/conv_simd.h"

#if defined(__AVX512F__) && defined(__FMA__)
namespace nef::backend::cpu {
namespace conv_avx512 {
#define NEF_CONV_VBYTES 64
#define NEF_CONV_MR 8
#define NEF_CONV_NV 3
#include "backends/cpu/kernels/conv_simd-inl.h"
#undef NEF_CONV_VBYTES
#undef NEF_CONV_MR
#undef NEF_CONV_NV
}  // namespace conv_avx512

const ConvSimdIsa* conv_simd_avx512() {
  using namespace conv_avx512;
  static const ConvSimdIsa isa{"avx512", kMR,       kNR,         kL,      tile,   tile_rows,
                               dw,       copy_rows, split_pairs, dw_s2k3, dw_s1k3};
  return &isa;
}
}  // namespace nef::backend::cpu
#else
namespace nef::backend::cpu {
const ConvSimdIsa* conv_simd_avx512() { return nullptr; }
}  // namespace nef::backend::cpu
#endif
