// NEF_CPU_TARGET's one parser (backends/cpu/kernels/cpu_target.h): every name is a ceiling, the
// integer kernels' variant never exceeds it or what the CPU runs, and an unknown name is ignored.
#include "backends/cpu/kernels/cpu_target.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace nef::test {
namespace {

using backend::cpu::CpuTarget;

// Sets NEF_CPU_TARGET for one scope (nullopt unsets it), restoring the old value after.
class ScopedTarget {
 public:
  explicit ScopedTarget(std::optional<std::string> v) {
    if (const char* old = std::getenv("NEF_CPU_TARGET")) old_ = old;
    if (v) setenv("NEF_CPU_TARGET", v->c_str(), 1);
    else unsetenv("NEF_CPU_TARGET");
  }
  ~ScopedTarget() {
    if (old_) setenv("NEF_CPU_TARGET", old_->c_str(), 1);
    else unsetenv("NEF_CPU_TARGET");
  }

 private:
  std::optional<std::string> old_;
};

bool runs(CpuTarget t) {
  const auto& c = backend::cpu::cpu_isa();
  switch (t) {
    case CpuTarget::kAvx512:
      return c.avx512_vnni;
    case CpuTarget::kAvx2Vnni:
      return c.avx_vnni;
    case CpuTarget::kAvx2:
      return c.avx2;
    case CpuTarget::kGeneric:
      break;
  }
  return true;
}

TEST(CpuTarget, NamesAreCeilings) {
  for (CpuTarget t :
       {CpuTarget::kGeneric, CpuTarget::kAvx2, CpuTarget::kAvx2Vnni, CpuTarget::kAvx512}) {
    ScopedTarget s(std::string(backend::cpu::cpu_target_name(t)));
    EXPECT_EQ(backend::cpu::cpu_target_ceiling(), t);
    const CpuTarget got = backend::cpu::int8_cpu_target();
    EXPECT_LE(int(got), int(t));
    EXPECT_TRUE(runs(got)) << backend::cpu::int8_target_name(got);
    // The highest one the CPU runs under the ceiling: nothing between got and t is skipped.
    for (int above = int(got) + 1; above <= int(t); ++above)
      EXPECT_FALSE(runs(CpuTarget(above))) << backend::cpu::cpu_target_name(CpuTarget(above));
  }
}

TEST(CpuTarget, UnsetOrUnknownIsNoCeiling) {
  {
    ScopedTarget s(std::nullopt);
    EXPECT_EQ(backend::cpu::cpu_target_ceiling(), CpuTarget::kAvx512);
  }
  {
    ScopedTarget s(std::string("sse9"));  // warned once, ignored
    EXPECT_EQ(backend::cpu::cpu_target_ceiling(), CpuTarget::kAvx512);
    EXPECT_EQ(backend::cpu::cpu_target_ceiling(), CpuTarget::kAvx512);
  }
  EXPECT_STREQ(backend::cpu::int8_target_name(CpuTarget::kAvx512), "avx512vnni");
  EXPECT_STREQ(backend::cpu::int8_target_name(CpuTarget::kAvx2Vnni), "avx2vnni");
}

}  // namespace
}  // namespace nef::test
