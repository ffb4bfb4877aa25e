// Hardware detection: the host CPU (model, cores, caches, the SIMD features the OS lets us use)
// and memory. The bottom of the stack: the CPU backend describes its device from it, and the
// device report (backends/registry.h) prints it. Every probe degrades to "unknown"/0.
//
// Thread-safety: every function here may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nef::devices {

struct CpuFeatures {
  // x86-64 (usable: CPUID bit set and the OS saves the register state, checked with xgetbv).
  bool sse4_2 = false, avx = false, avx2 = false, fma = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512_vnni = false;
  bool avx512_bf16 = false, avx_vnni = false;
  bool amx = false;  // AMX tiles with bf16 or int8 (OS tile state enabled in XCR0)
  // AArch64 (getauxval HWCAP/HWCAP2).
  bool neon = false, sve = false, sve2 = false, dotprod = false, bf16 = false;
};

// (name, value) for every feature above, in declaration order: the one list printers use.
std::vector<std::pair<std::string, bool>> feature_list(const CpuFeatures& f);

struct CpuInfo {
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", "ARM", ... or "unknown"
  std::string model;   // brand string, trimmed, or "unknown"
  std::string arch;    // uname machine: "x86_64", "aarch64", ...
  int physical_cores = 1;
  int logical_cores = 1;
  // Per-core view of each cache level in bytes; 0 when unknown or absent.
  int64_t l1d_bytes = 0, l2_bytes = 0, l3_bytes = 0;
  CpuFeatures features;
};

struct MemoryInfo {
  int64_t total_bytes = 0;
  int64_t available_bytes = 0;  // at detection time
};

// Fresh probes, uncached.
CpuInfo detect_cpu();
MemoryInfo detect_memory();

// The library version: NEF_VERSION_STRING of the generated nef/version.h (from the VERSION file).
const char* library_version();

}  // namespace nef::devices
