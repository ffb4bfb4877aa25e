// Internal to the CPU backend: which instruction-set variant of its SIMD kernels may run. One
// home for the NEF_CPU_TARGET switch that every kernel family (float GEMM, float conv loops,
// integer GEMM, conv_integer, qmatmul) honours, and for the CPU features each variant needs.
//
// NEF_CPU_TARGET names a ceiling: "avx512", "avx2vnni", "avx2" or "generic"; a family runs the
// best variant it has at or below it that the CPU runs (tests force each one that way). Families
// without a 256-bit VNNI variant (the float kernels) treat "avx2vnni" as "avx2". Unset: no
// ceiling. Another value is warned about (once per value) and ignored.
#pragma once

namespace nef::backend::cpu {

// The variants, lowest first (the order is the ceiling's).
enum class CpuTarget { kGeneric = 0, kAvx2 = 1, kAvx2Vnni = 2, kAvx512 = 3 };

// "generic", "avx2", "avx2vnni", "avx512".
const char* cpu_target_name(CpuTarget t);

// NEF_CPU_TARGET's ceiling, read on every call (kAvx512 when unset or not a known name).
CpuTarget cpu_target_ceiling();

// The Highway-dispatched loops (vmath's transcendentals, the fused elementwise interpreter and
// the row kernels built on them) follow the same ceiling, applied once per process when the CPU
// device starts: avx2 / avx2vnni disable Highway's AVX-512 targets, generic its AVX2 ones too.
void apply_cpu_target_to_highway();
// The best Highway target those loops dispatch to now ("AVX3_ZEN4", "AVX2", "SSE4", ...).
const char* highway_target_name();

// What the CPU runs (probed once; the OS saving the registers included):
struct CpuIsa {
  bool avx2 = false;         // AVX2 + FMA + F16C
  bool avx_vnni = false;     // the VEX 256-bit byte / int16 dot products (with avx2)
  bool avx512 = false;       // AVX-512 F + BW + VL (with avx2)
  bool avx512_vnni = false;  // AVX-512 VNNI (with avx512)
};
const CpuIsa& cpu_isa();

// The integer kernels' variant (integer GEMM, conv_integer, qmatmul): the highest the CPU runs
// under the ceiling, kAvx512 meaning AVX-512 VNNI. Read on every call; the kernel families cache
// their choice once per process.
CpuTarget int8_cpu_target();

// The integer family's variant for int8_cpu_target(): that one, or the next one down that is
// compiled in (a null pointer: not compiled in), else the portable one.
template <typename Isa>
const Isa& pick_int8_variant(const Isa* avx512, const Isa* avx2vnni, const Isa* avx2,
                             const Isa& generic) {
  switch (int8_cpu_target()) {
    case CpuTarget::kAvx512:
      if (avx512) return *avx512;
      [[fallthrough]];
    case CpuTarget::kAvx2Vnni:
      if (avx2vnni) return *avx2vnni;
      [[fallthrough]];
    case CpuTarget::kAvx2:
      if (avx2) return *avx2;
      [[fallthrough]];
    case CpuTarget::kGeneric:
      break;
  }
  return generic;
}

// int8_cpu_target()'s name as the integer kernels spell it ("avx512vnni" for kAvx512).
const char* int8_target_name(CpuTarget t);

}  // namespace nef::backend::cpu
