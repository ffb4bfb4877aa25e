// cpu_target.h: NEF_CPU_TARGET parsed in one place, the CPU probed once.
#include "backends/cpu/kernels/cpu_target.h"

#include <hwy/targets.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>

#include "common/log.h"
#include "nef/error.h"

namespace nef::backend::cpu {

const char* cpu_target_name(CpuTarget t) {
  switch (t) {
    case CpuTarget::kGeneric:
      return "generic";
    case CpuTarget::kAvx2:
      return "avx2";
    case CpuTarget::kAvx2Vnni:
      return "avx2vnni";
    case CpuTarget::kAvx512:
      break;
  }
  return "avx512";
}

const char* int8_target_name(CpuTarget t) {
  return t == CpuTarget::kAvx512 ? "avx512vnni" : cpu_target_name(t);
}

CpuTarget cpu_target_ceiling() {
  const char* env = std::getenv("NEF_CPU_TARGET");
  if (!env || !*env) return CpuTarget::kAvx512;
  const std::string want = std::string(env).substr(0, 32);
  for (CpuTarget t :
       {CpuTarget::kGeneric, CpuTarget::kAvx2, CpuTarget::kAvx2Vnni, CpuTarget::kAvx512})
    if (want == cpu_target_name(t)) return t;
  // Matmuls read the ceiling per call: one warning per unknown value, not one per call.
  static std::mutex mu;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(mu);
  if (warned.insert(want).second)
    warn(str("NEF_CPU_TARGET=", want, " is not one of avx512, avx2vnni, avx2, generic: ignored"));
  return CpuTarget::kAvx512;
}

void apply_cpu_target_to_highway() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Highway numbers its targets best first: the bits below a target are the better ones.
    int64_t disabled = 0;
    switch (cpu_target_ceiling()) {
      case CpuTarget::kAvx512:
        break;
      case CpuTarget::kAvx2Vnni:
      case CpuTarget::kAvx2:
        disabled = HWY_AVX2 - 1;
        break;
      case CpuTarget::kGeneric:
        disabled = (HWY_AVX2 << 1) - 1;
        break;
    }
    if (disabled) hwy::DisableTargets(disabled);
  });
}

const char* highway_target_name() {
  const int64_t targets = hwy::SupportedTargets() & HWY_TARGETS;
  return hwy::TargetName(targets ? targets & -targets : HWY_STATIC_TARGET);
}

const CpuIsa& cpu_isa() {
  static const CpuIsa isa = [] {
    CpuIsa c;
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    c.avx_vnni = c.avx2 && __builtin_cpu_supports("avxvnni");
    c.avx512 = c.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl");
    c.avx512_vnni = c.avx512 && __builtin_cpu_supports("avx512vnni");
#endif
    return c;
  }();
  return isa;
}

CpuTarget int8_cpu_target() {
  const CpuTarget ceiling = cpu_target_ceiling();
  const CpuIsa& c = cpu_isa();
  if (ceiling >= CpuTarget::kAvx512 && c.avx512_vnni) return CpuTarget::kAvx512;
  if (ceiling >= CpuTarget::kAvx2Vnni && c.avx_vnni) return CpuTarget::kAvx2Vnni;
  if (ceiling >= CpuTarget::kAvx2 && c.avx2) return CpuTarget::kAvx2;
  return CpuTarget::kGeneric;
}

}  // namespace nef::backend::cpu
