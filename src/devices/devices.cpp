// The device report (cached), device selection (override > NEF_DEVICES > all available) and
// its JSON/text forms.
#include "devices/devices.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "nef/error.h"
#include "nef/version.h"

namespace nef::devices {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// The widest vector ISA, for one-line descriptions.
std::string best_simd(const CpuFeatures& f) {
  if (f.amx) return "AMX, AVX-512";
  if (f.avx512f) return "AVX-512";
  if (f.avx2) return "AVX2";
  if (f.avx) return "AVX";
  if (f.sse4_2) return "SSE4.2";
  if (f.sve2) return "SVE2";
  if (f.sve) return "SVE";
  if (f.neon) return "NEON";
  return "scalar";
}

std::string human_bytes(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  std::ostringstream os;
  os.precision(u == 0 ? 0 : 1);
  os << std::fixed << v << " " << units[u];
  return os.str();
}

DeviceReport probe_all() {
  DeviceReport r;
  r.cpu = detect_cpu();
  r.memory = detect_memory();
  DeviceInfo cpu;
  cpu.name = "cpu";
  cpu.kind = "cpu";
  cpu.backend = "cpu";
  cpu.description = str(r.cpu.model, " (", r.cpu.physical_cores, " cores, ", r.cpu.logical_cores,
                        " threads, ", best_simd(r.cpu.features), ")");
  cpu.memory_bytes = r.memory.total_bytes;
  cpu.available = true;
  cpu.reason = "host CPU, always available";
  r.devices.push_back(cpu);
  // GPU probes (CUDA, OpenCL) append here when those backends exist.
  return r;
}

std::string known_names(const DeviceReport& report) {
  std::string s;
  for (const DeviceInfo& d : report.devices) s += (s.empty() ? "" : ", ") + d.name;
  return s;
}

std::mutex g_override_mutex;
std::optional<std::vector<std::string>> g_override;  // resolved names

}  // namespace

std::vector<std::pair<std::string, bool>> feature_list(const CpuFeatures& f) {
  return {{"sse4_2", f.sse4_2},       {"avx", f.avx},
          {"avx2", f.avx2},           {"fma", f.fma},
          {"avx512f", f.avx512f},     {"avx512bw", f.avx512bw},
          {"avx512vl", f.avx512vl},   {"avx512_vnni", f.avx512_vnni},
          {"avx512_bf16", f.avx512_bf16}, {"avx_vnni", f.avx_vnni},
          {"amx", f.amx},             {"neon", f.neon},
          {"sve", f.sve},             {"sve2", f.sve2},
          {"dotprod", f.dotprod},     {"bf16", f.bf16}};
}

const DeviceReport& detect() {
  // A function-local static is initialized once even with concurrent first calls.
  static const DeviceReport report = probe_all();
  return report;
}

std::vector<std::string> resolve_devices(const std::vector<std::string>& names,
                                         const DeviceReport& report, const std::string& source) {
  std::vector<bool> chosen(report.devices.size(), false);
  bool any_name = false;
  for (const std::string& raw : names) {
    std::string name = lower(trim(raw));
    if (name.empty()) continue;
    any_name = true;
    if (name == "auto") {
      for (size_t i = 0; i < report.devices.size(); ++i) chosen[i] = true;
      continue;
    }
    bool matched = false;
    for (size_t i = 0; i < report.devices.size(); ++i) {
      if (lower(report.devices[i].name) == name) chosen[i] = matched = true;
    }
    if (!matched) {  // a kind names every device of that kind ("gpu")
      for (size_t i = 0; i < report.devices.size(); ++i) {
        if (lower(report.devices[i].kind) == name) chosen[i] = matched = true;
      }
    }
    if (!matched) {
      throw DeviceError(str("[devices] unknown device '", trim(raw), "' in ", source,
                            "; known devices: ", known_names(report), " (or a kind: cpu, gpu, ",
                            "or auto)"));
    }
  }
  if (!any_name) std::fill(chosen.begin(), chosen.end(), true);
  std::vector<std::string> out;
  std::string unavailable;
  for (size_t i = 0; i < report.devices.size(); ++i) {
    if (!chosen[i]) continue;
    const DeviceInfo& d = report.devices[i];
    if (d.available) {
      out.push_back(d.name);
    } else {
      unavailable += str(unavailable.empty() ? "" : "; ", d.name, ": ", d.reason);
    }
  }
  if (out.empty()) {
    throw DeviceError(str("[devices] no available device in ", source,
                          unavailable.empty() ? "" : " (" + unavailable + ")",
                          "; known devices: ", known_names(report)));
  }
  return out;
}

std::vector<std::string> parse_device_list(const std::string& spec, const DeviceReport& report,
                                           const std::string& source) {
  std::vector<std::string> items;
  std::string item;
  std::istringstream is(spec);
  while (std::getline(is, item, ',')) items.push_back(item);
  return resolve_devices(items, report, source);
}

void set_device_override(std::vector<std::string> names) {
  bool empty = std::all_of(names.begin(), names.end(),
                           [](const std::string& s) { return trim(s).empty(); });
  if (empty) {
    clear_device_override();
    return;
  }
  std::vector<std::string> resolved = resolve_devices(names, detect(), "the device override");
  std::lock_guard<std::mutex> lock(g_override_mutex);
  g_override = std::move(resolved);
}

void clear_device_override() {
  std::lock_guard<std::mutex> lock(g_override_mutex);
  g_override.reset();
}

std::vector<std::string> enabled_devices() {
  {
    std::lock_guard<std::mutex> lock(g_override_mutex);
    if (g_override) return *g_override;
  }
  const DeviceReport& report = detect();
  const char* env = std::getenv("NEF_DEVICES");
  if (env && !trim(env).empty()) return parse_device_list(env, report, "NEF_DEVICES");
  return resolve_devices({}, report, "the device list");
}

std::string to_json(const DeviceReport& report) {
  using nlohmann::json;
  const CpuInfo& c = report.cpu;
  json features = json::object();
  for (const auto& [name, on] : feature_list(c.features)) features[name] = on;
  json cpu = {{"vendor", c.vendor},
              {"model", c.model},
              {"arch", c.arch},
              {"physical_cores", c.physical_cores},
              {"logical_cores", c.logical_cores},
              {"cache", {{"l1d_bytes", c.l1d_bytes},
                         {"l2_bytes", c.l2_bytes},
                         {"l3_bytes", c.l3_bytes}}},
              {"features", features}};
  json devices = json::array();
  for (const DeviceInfo& d : report.devices) {
    devices.push_back({{"name", d.name},
                       {"kind", d.kind},
                       {"backend", d.backend},
                       {"index", d.index},
                       {"description", d.description},
                       {"memory_bytes", d.memory_bytes},
                       {"available", d.available},
                       {"reason", d.reason}});
  }
  json j = {{"nef_version", library_version()},
            {"cpu", cpu},
            {"memory", {{"total_bytes", report.memory.total_bytes},
                        {"available_bytes", report.memory.available_bytes}}},
            {"devices", devices},
            {"enabled", enabled_devices()}};
  // Invalid UTF-8 in a brand string must not make dump() throw.
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

std::string to_text(const DeviceReport& report) {
  const CpuInfo& c = report.cpu;
  std::ostringstream os;
  os << "CPU:     " << c.model << " [" << c.vendor << ", " << c.arch << "]\n";
  os << "Cores:   " << c.physical_cores << " physical, " << c.logical_cores << " logical\n";
  os << "Caches:  L1d " << (c.l1d_bytes ? human_bytes(c.l1d_bytes) : "?") << ", L2 "
     << (c.l2_bytes ? human_bytes(c.l2_bytes) : "?") << ", L3 "
     << (c.l3_bytes ? human_bytes(c.l3_bytes) : "-") << "\n";
  std::string feats;
  for (const auto& [name, on] : feature_list(c.features)) {
    if (on) feats += (feats.empty() ? "" : " ") + name;
  }
  os << "SIMD:    " << (feats.empty() ? "(none detected)" : feats) << "\n";
  os << "Memory:  " << human_bytes(report.memory.total_bytes) << " total, "
     << human_bytes(report.memory.available_bytes) << " available\n";
  std::vector<std::string> enabled = enabled_devices();
  os << "Devices:\n";
  for (const DeviceInfo& d : report.devices) {
    bool on = std::find(enabled.begin(), enabled.end(), d.name) != enabled.end();
    os << "  " << d.name << "  [" << d.kind << ", backend " << d.backend << "]  "
       << (d.available ? (on ? "available, enabled" : "available, disabled") : "unavailable")
       << "\n    " << d.description << "\n    " << d.reason << "\n";
  }
  return os.str();
}

const char* library_version() { return NEF_VERSION_STRING; }

}  // namespace nef::devices
