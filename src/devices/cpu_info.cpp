// CPU and memory probes: CPUID/xgetbv on x86-64, getauxval on AArch64, sysfs and /proc for
// topology, caches and memory. Every probe degrades to "unknown"/0 instead of failing.
#include "devices/cpu_info.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "nef/version.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define NEF_X86 1
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#define NEF_AARCH64 1
#endif

namespace nef::devices {
namespace {

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

// First line of a small sysfs/proc file, trimmed; "" if unreadable.
std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  if (!f || !std::getline(f, line)) return "";
  return trim(line);
}

// sysfs cache sizes look like "48K", "2048K", "32M".
int64_t parse_size(const std::string& s) {
  if (s.empty()) return 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (v <= 0) return 0;
  switch (end ? *end : '\0') {
    case 'K':
    case 'k':
      return int64_t(v) << 10;
    case 'M':
    case 'm':
      return int64_t(v) << 20;
    case 'G':
    case 'g':
      return int64_t(v) << 30;
    default:
      return int64_t(v);
  }
}

void caches_from_sysfs(CpuInfo& info) {
  for (int i = 0; i < 16; ++i) {
    std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::string level = read_line(dir + "level");
    if (level.empty()) break;
    std::string type = read_line(dir + "type");
    int64_t size = parse_size(read_line(dir + "size"));
    if (level == "1" && type == "Data") info.l1d_bytes = size;
    if (level == "2" && type != "Instruction") info.l2_bytes = size;
    if (level == "3" && type != "Instruction") info.l3_bytes = size;
  }
}

void cores_from_sysfs(CpuInfo& info) {
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  info.logical_cores =
      online > 0 ? int(online) : int(std::max(1u, std::thread::hardware_concurrency()));
  // A physical core is a distinct (package, core) pair; SMT siblings share one.
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu = 0; cpu < 4096; ++cpu) {
    std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::string core = read_line(dir + "core_id");
    if (core.empty()) {
      if (cpu >= info.logical_cores) break;
      continue;  // offline CPUs have no topology directory
    }
    cores.insert({read_line(dir + "physical_package_id"), core});
  }
  info.physical_cores =
      cores.empty() ? info.logical_cores : std::min(int(cores.size()), info.logical_cores);
  info.physical_cores = std::max(1, info.physical_cores);
}

#ifdef NEF_X86
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub = 0) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

bool bit(unsigned v, int b) { return (v >> b) & 1u; }

uint64_t xgetbv0() {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

// Leaf 4 (Intel) and 0x8000001D (AMD) share a layout: one subleaf per cache until type 0.
bool caches_from_cpuid(unsigned leaf, CpuInfo& info) {
  bool any = false;
  for (unsigned sub = 0; sub < 16; ++sub) {
    Regs r = cpuid(leaf, sub);
    unsigned type = r.a & 0x1f;  // 1 data, 2 instruction, 3 unified
    if (type == 0) break;
    unsigned level = (r.a >> 5) & 0x7;
    int64_t ways = ((r.b >> 22) & 0x3ff) + 1;
    int64_t parts = ((r.b >> 12) & 0x3ff) + 1;
    int64_t line = (r.b & 0xfff) + 1;
    int64_t sets = int64_t(r.c) + 1;
    int64_t size = ways * parts * line * sets;
    any = true;
    if (level == 1 && type == 1) info.l1d_bytes = size;
    if (level == 2 && type != 2) info.l2_bytes = size;
    if (level == 3 && type != 2) info.l3_bytes = size;
  }
  return any;
}

void probe_x86(CpuInfo& info) {
  Regs r0 = cpuid(0);
  unsigned max_leaf = r0.a;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &r0.b, 4);
  std::memcpy(vendor + 4, &r0.d, 4);
  std::memcpy(vendor + 8, &r0.c, 4);
  info.vendor = trim(vendor);

  unsigned max_ext = cpuid(0x80000000u).a;
  if (max_ext >= 0x80000004u) {
    char brand[49] = {};
    for (unsigned i = 0; i < 3; ++i) {
      Regs r = cpuid(0x80000002u + i);
      std::memcpy(brand + 16 * i + 0, &r.a, 4);
      std::memcpy(brand + 16 * i + 4, &r.b, 4);
      std::memcpy(brand + 16 * i + 8, &r.c, 4);
      std::memcpy(brand + 16 * i + 12, &r.d, 4);
    }
    info.model = trim(brand);
  }

  CpuFeatures& f = info.features;
  if (max_leaf < 1) return;
  Regs r1 = cpuid(1);
  bool osxsave = bit(r1.c, 27);
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  // The OS must save XMM|YMM state for AVX, plus opmask|ZMM_Hi256|Hi16_ZMM for AVX-512 and
  // XTILECFG|XTILEDATA for AMX; otherwise the instructions fault even if CPUID lists them.
  bool os_avx = (xcr0 & 0x6) == 0x6;
  bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
  bool os_amx = (xcr0 & 0x60000) == 0x60000;

  f.sse4_2 = bit(r1.c, 20);
  f.avx = os_avx && bit(r1.c, 28);
  f.fma = f.avx && bit(r1.c, 12);
  if (max_leaf >= 7) {
    Regs r7 = cpuid(7, 0);
    f.avx2 = f.avx && bit(r7.b, 5);
    f.avx512f = os_avx512 && bit(r7.b, 16);
    f.avx512bw = f.avx512f && bit(r7.b, 30);
    f.avx512vl = f.avx512f && bit(r7.b, 31);
    f.avx512_vnni = f.avx512f && bit(r7.c, 11);
    f.amx = os_amx && bit(r7.d, 24) && (bit(r7.d, 22) || bit(r7.d, 25));
    if (r7.a >= 1) {
      Regs r71 = cpuid(7, 1);
      f.avx_vnni = f.avx2 && bit(r71.a, 4);
      f.avx512_bf16 = f.avx512f && bit(r71.a, 5);
    }
  }

  bool got = false;
  if (info.vendor == "GenuineIntel" && max_leaf >= 4) got = caches_from_cpuid(4, info);
  // AMD/Hygon: 0x8000001D needs the TopologyExtensions bit (0x80000001 ecx bit 22).
  if (!got && max_ext >= 0x8000001Du && bit(cpuid(0x80000001u).c, 22))
    got = caches_from_cpuid(0x8000001Du, info);
  if (!got) caches_from_sysfs(info);
}
#endif

#ifdef NEF_AARCH64
void probe_aarch64(CpuInfo& info) {
  // Bit numbers from the Linux arm64 uapi (asm/hwcap.h), spelled out so old headers work.
  unsigned long hw = getauxval(AT_HWCAP);
  unsigned long hw2 = getauxval(AT_HWCAP2);
  CpuFeatures& f = info.features;
  f.neon = (hw >> 1) & 1;      // HWCAP_ASIMD
  f.dotprod = (hw >> 20) & 1;  // HWCAP_ASIMDDP
  f.sve = (hw >> 22) & 1;      // HWCAP_SVE
  f.sve2 = (hw2 >> 1) & 1;     // HWCAP2_SVE2
  f.bf16 = (hw2 >> 14) & 1;    // HWCAP2_BF16
  caches_from_sysfs(info);
}
#endif

// Vendor/model from /proc/cpuinfo where CPUID is not available (ARM, RISC-V, ...).
void names_from_proc(CpuInfo& info) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (info.model.empty() &&
        (key == "model name" || key == "Hardware" || key == "Model" || key == "uarch"))
      info.model = value;
    if (info.vendor.empty() && (key == "vendor_id" || key == "CPU implementer")) {
      info.vendor = value == "0x41" ? "ARM" : value == "0x61" ? "Apple" : value;
    }
  }
}

}  // namespace

CpuInfo detect_cpu() {
  CpuInfo info;
  struct utsname u {};
  info.arch = uname(&u) == 0 ? u.machine : "unknown";
#if defined(NEF_X86)
  probe_x86(info);
#elif defined(NEF_AARCH64)
  probe_aarch64(info);
#else
  caches_from_sysfs(info);
#endif
  if (info.vendor.empty() || info.model.empty()) names_from_proc(info);
  if (info.vendor.empty()) info.vendor = "unknown";
  if (info.model.empty()) info.model = "unknown";
  cores_from_sysfs(info);
  return info;
}

MemoryInfo detect_memory() {
  MemoryInfo m;
  std::ifstream f("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream is(line);
    if (!(is >> key >> kb)) continue;
    if (key == "MemTotal:") m.total_bytes = kb * 1024;
    if (key == "MemAvailable:") m.available_bytes = kb * 1024;
  }
  long page = sysconf(_SC_PAGESIZE);
  if (m.total_bytes <= 0) {
    long pages = sysconf(_SC_PHYS_PAGES);
    if (pages > 0 && page > 0) m.total_bytes = int64_t(pages) * page;
  }
  if (m.available_bytes <= 0) {
    long pages = sysconf(_SC_AVPHYS_PAGES);
    if (pages > 0 && page > 0) m.available_bytes = int64_t(pages) * page;
  }
  return m;
}

std::vector<std::pair<std::string, bool>> feature_list(const CpuFeatures& f) {
  return {{"sse4_2", f.sse4_2},
          {"avx", f.avx},
          {"avx2", f.avx2},
          {"fma", f.fma},
          {"avx512f", f.avx512f},
          {"avx512bw", f.avx512bw},
          {"avx512vl", f.avx512vl},
          {"avx512_vnni", f.avx512_vnni},
          {"avx512_bf16", f.avx512_bf16},
          {"avx_vnni", f.avx_vnni},
          {"amx", f.amx},
          {"neon", f.neon},
          {"sve", f.sve},
          {"sve2", f.sve2},
          {"dotprod", f.dotprod},
          {"bf16", f.bf16}};
}

const char* library_version() { return NEF_VERSION_STRING; }

}  // namespace nef::devices
