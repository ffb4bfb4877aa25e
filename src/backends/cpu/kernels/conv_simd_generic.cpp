// conv_simd.h's loops for the baseline instruction set (SSE2 on x86-64), and the run-time choice.
#include <cstdlib>
#include <string>

#include "backends/cpu/kernels/conv_simd.h"
#include "backends/cpu/kernels/cpu_target.h"
#include "common/log.h"
#include "nef/error.h"

namespace nef::backend::cpu {
namespace conv_generic {
#define NEF_CONV_VBYTES 16
#define NEF_CONV_MR 4
#define NEF_CONV_NV 3
#include "backends/cpu/kernels/conv_simd-inl.h"
#undef NEF_CONV_VBYTES
#undef NEF_CONV_MR
#undef NEF_CONV_NV
}  // namespace conv_generic

const ConvSimdIsa& conv_simd_generic() {
  using namespace conv_generic;
  static const ConvSimdIsa isa{"generic", kMR,       kNR,         kL,      tile,   tile_rows,
                               dw,        copy_rows, split_pairs, dw_s2k3, dw_s1k3};
  return isa;
}

namespace {
// The float loops have no VNNI variant: a ceiling of avx2vnni means AVX2 (cpu_target.h).
const ConvSimdIsa& choose() {
  const CpuTarget ceiling = cpu_target_ceiling();
  bool avx512 = false, avx2 = false;
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  avx512 = conv_simd_avx512() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  avx2 = conv_simd_avx2() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  if (avx512 && ceiling >= CpuTarget::kAvx512) return *conv_simd_avx512();
  if (avx2 && ceiling >= CpuTarget::kAvx2) return *conv_simd_avx2();
  return conv_simd_generic();
}
}  // namespace

const ConvSimdIsa& conv_simd_best() {
  static const ConvSimdIsa& isa = choose();
  return isa;
}

}  // namespace nef::backend::cpu
