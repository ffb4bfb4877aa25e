// Hardware detection: what this process can compute on. The CPU (model, cores, caches, SIMD
// features the OS lets us use) and memory are probed once; GPU probes (CUDA, OpenCL) append
// DeviceInfo entries later without changing this interface.
//
// Which devices the planner may use ("enabled") is all available devices, unless narrowed by
// a programmatic override (nef.config(devices=[...])) or else the NEF_DEVICES environment
// variable ("cpu", "cpu,cuda:0"). Bad names raise DeviceError naming the known devices.
//
// Thread-safety: every function here may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
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

// One compute device. GPUs will appear as kind "gpu" with backend "cuda"/"opencl" and a name
// like "cuda:0"; a probed but unusable device stays listed with available = false and a reason.
struct DeviceInfo {
  std::string name;         // unique, what NEF_DEVICES and nef.config(devices=...) name: "cpu"
  std::string kind;         // "cpu" | "gpu" | "npu"
  std::string backend;      // backend that drives it: "cpu", later "cuda", "opencl"
  int index = 0;            // ordinal among devices of the same backend
  std::string description;  // human-readable one-liner
  int64_t memory_bytes = 0;
  bool available = false;
  std::string reason;       // why available or not ("driver not found", ...)
};

struct DeviceReport {
  CpuInfo cpu;
  MemoryInfo memory;
  std::vector<DeviceInfo> devices;  // the CPU always first
};

// Probes once per process (first call); later calls return the same report.
const DeviceReport& detect();

// Fresh probes, uncached (tests, and `available_bytes` that changes over time).
CpuInfo detect_cpu();
MemoryInfo detect_memory();

// Resolves a comma-separated device list against a report: names are trimmed and matched
// case-insensitively against device names, then kinds ("gpu" = every GPU); "auto" or an empty
// list means all available devices. Unavailable devices are dropped; an unknown name, or a list
// that leaves no available device, throws DeviceError. `source` names where the list came from
// in messages ("NEF_DEVICES"). Returns device names in report order, without duplicates.
std::vector<std::string> resolve_devices(const std::vector<std::string>& names,
                                         const DeviceReport& report, const std::string& source);
// Splits "cpu, cuda:0" at commas (empty items dropped) and resolves it as above.
std::vector<std::string> parse_device_list(const std::string& spec, const DeviceReport& report,
                                           const std::string& source = "NEF_DEVICES");

// Programmatic override (wins over NEF_DEVICES); validated at once (DeviceError); an empty
// vector clears it.
void set_device_override(std::vector<std::string> names);
void clear_device_override();

// The devices the planner may use: the override, else NEF_DEVICES (read on every call), else
// all available devices. Throws DeviceError for a bad NEF_DEVICES.
std::vector<std::string> enabled_devices();

// JSON object {"cpu": {...}, "memory": {...}, "devices": [...], "enabled": [...]}; "enabled"
// comes from enabled_devices() (so a bad NEF_DEVICES throws here too). Pretty-printed.
std::string to_json(const DeviceReport& report);
// Human-readable multi-line form for `nef devices`.
std::string to_text(const DeviceReport& report);

// The library version, NEF_VERSION_STRING of the generated nef/version.h (from the VERSION file);
// here until a public nef::version() exists.
const char* library_version();

}  // namespace nef::devices
