// The JSON and text forms of the device report (`nef devices [--json]`, nef.devices()).
#include <nlohmann/json.hpp>
#include <sstream>

#include "backends/registry.h"
#include "nef/error.h"

namespace nef::backend {
namespace {

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

bool enabled(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

std::string to_json(const DeviceReport& report) {
  using nlohmann::json;
  const devices::CpuInfo& c = report.cpu;
  json features = json::object();
  for (const auto& [name, on] : devices::feature_list(c.features)) features[name] = on;
  json cpu = {
      {"vendor", c.vendor},
      {"model", c.model},
      {"arch", c.arch},
      {"physical_cores", c.physical_cores},
      {"logical_cores", c.logical_cores},
      {"cache", {{"l1d_bytes", c.l1d_bytes}, {"l2_bytes", c.l2_bytes}, {"l3_bytes", c.l3_bytes}}},
      {"features", features}};
  std::vector<std::string> ids = enabled_device_ids();
  json devices = json::array();
  for (const DevicePtr& dp : report.devices) {
    const DeviceInfo& d = dp->info();
    json extra = json::object();
    for (const auto& [k, v] : d.extra) extra[k] = v;
    devices.push_back({{"name", d.id},
                       {"backend", d.backend},
                       {"kind", d.kind},
                       {"index", d.index},
                       {"device_name", d.name},
                       {"description", d.description},
                       {"vendor", d.vendor},
                       {"driver_version", d.driver_version},
                       {"api_version", d.api_version},
                       {"compute_units", d.compute_units},
                       {"memory_bytes", d.memory_bytes},
                       {"max_alloc_bytes", d.max_alloc_bytes},
                       {"host_unified", d.host_unified},
                       {"fp16", d.fp16},
                       {"fp64", d.fp64},
                       {"enabled", enabled(ids, d.id)},
                       {"extra", extra}});
  }
  json problems = json::array();
  for (const auto& [backend, why] : report.problems)
    problems.push_back({{"backend", backend}, {"reason", why}});
  json j = {{"nef_version", devices::library_version()},
            {"cpu", cpu},
            {"memory",
             {{"total_bytes", report.memory.total_bytes},
              {"available_bytes", report.memory.available_bytes}}},
            {"devices", devices},
            {"problems", problems},
            {"enabled", ids}};
  // Invalid UTF-8 in a brand or driver string must not make dump() throw.
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

std::string to_text(const DeviceReport& report) {
  const devices::CpuInfo& c = report.cpu;
  std::ostringstream os;
  os << "CPU:     " << c.model << " [" << c.vendor << ", " << c.arch << "]\n";
  os << "Cores:   " << c.physical_cores << " physical, " << c.logical_cores << " logical\n";
  os << "Caches:  L1d " << (c.l1d_bytes ? human_bytes(c.l1d_bytes) : "?") << ", L2 "
     << (c.l2_bytes ? human_bytes(c.l2_bytes) : "?") << ", L3 "
     << (c.l3_bytes ? human_bytes(c.l3_bytes) : "-") << "\n";
  std::string feats;
  for (const auto& [name, on] : devices::feature_list(c.features))
    if (on) feats += (feats.empty() ? "" : " ") + name;
  os << "SIMD:    " << (feats.empty() ? "(none detected)" : feats) << "\n";
  os << "Memory:  " << human_bytes(report.memory.total_bytes) << " total, "
     << human_bytes(report.memory.available_bytes) << " available\n";
  std::vector<std::string> ids = enabled_device_ids();
  os << "Devices:\n";
  for (const DevicePtr& dp : report.devices) {
    const DeviceInfo& d = dp->info();
    os << "  " << d.id << "  [" << d.kind << ", backend " << d.backend << "]  "
       << (enabled(ids, d.id) ? "enabled"
           : !dp->is_host() && d.kind == "cpu"
               ? "not enabled by default: it runs on the host's own cores (NEF_DEVICES=" + d.id +
                     " or all to use it)"
               : std::string("disabled"))
       << "\n    " << d.description << "\n";
    os << "    memory " << human_bytes(d.memory_bytes);
    if (d.compute_units) os << ", " << d.compute_units << " compute units";
    if (!d.api_version.empty()) os << ", " << d.api_version;
    if (d.backend != "cpu")
      os << ", fp16 " << (d.fp16 ? "yes" : "no") << ", fp64 " << (d.fp64 ? "yes" : "no");
    if (d.host_unified && d.backend != "cpu") os << ", shares host memory";
    os << "\n";
    for (const auto& [k, v] : d.extra) os << "    " << k << ": " << v << "\n";
  }
  for (const auto& [backend, why] : report.problems)
    os << "  (" << backend << ": no device: " << why << ")\n";
  return os.str();
}

}  // namespace nef::backend
