#include "backends/registry.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <sstream>

#include "backends/cpu/cpu_backend.h"
#ifdef NEF_HAVE_OPENCL
#include "backends/opencl/opencl_backend.h"
#endif
#include "common/cache_dir.h"
#include "common/log.h"
#include "common/session.h"
#include "nef/error.h"

namespace nef::backend {
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

// Backends compiled into this binary, in report order (the CPU first).
std::vector<std::shared_ptr<Backend>> registered_backends() {
  std::vector<std::shared_ptr<Backend>> b = {cpu::make_cpu_backend()};
#ifdef NEF_HAVE_OPENCL
  b.push_back(opencl::make_opencl_backend());
#endif
  return b;
}

// Names that select devices even when none of that kind is present here.
bool known_selector(const std::string& name) {
  static const char* backends[] = {"cpu", "opencl", "cuda"};
  static const char* kinds[] = {"gpu", "accelerator"};
  for (const char* b : backends) {
    std::string s = b;
    if (name == s) return true;
    if (name.rfind(s + ":", 0) == 0) {  // "opencl:3"
      std::string idx = name.substr(s.size() + 1);
      return !idx.empty() && std::all_of(idx.begin(), idx.end(), ::isdigit);
    }
  }
  for (const char* k : kinds)
    if (name == k) return true;
  return false;
}

// The CPU alone, without probing other backends (what a CPU-only selection needs).
DevicePtr probe_host() {
  std::string unused;
  std::vector<DevicePtr> d = cpu::make_cpu_backend()->probe(unused);
  NEF_CHECK(d.size() == 1 && d[0]->is_host(), "the CPU backend must yield the host device");
  return d[0];
}

std::atomic<bool> probed{false};  // detect() has run in this process

// The drivers' fingerprint: every non-host backend's (Backend::fingerprint), or nullopt when one
// of them cannot tell without probing.
std::optional<std::string> drivers_fingerprint() {
  std::string fp = str("nef-devices-v1|", devices::library_version(), "\n");
  for (const auto& b : registered_backends()) {
    if (b->name() == "cpu") continue;
    std::optional<std::string> f = b->fingerprint();
    if (!f) return std::nullopt;
    fp += b->name() + ":\n" + *f;
  }
  return fp;
}

// The cache file of the device kinds a probe found under fingerprint `fp`: its hash on the first
// line, then one non-host device kind per line.
std::optional<std::string> kinds_path(const std::string& fp) {
  std::optional<std::string> dir = cache_dir("devices");
  if (!dir) return std::nullopt;
  return *dir + "/" + hash_hex(fp) + ".txt";
}

std::optional<std::vector<std::string>> cached_kinds(const std::string& fp) {
  std::optional<std::string> path = kinds_path(fp);
  std::optional<std::string> text = path ? read_file(*path, 1 << 16) : std::nullopt;
  if (!text) return std::nullopt;
  std::istringstream is(*text);
  std::string line;
  if (!std::getline(is, line) || line != hash_hex(fp)) return std::nullopt;  // untrusted
  std::vector<std::string> kinds;
  while (std::getline(is, line))
    if (!line.empty()) kinds.push_back(line);
  return kinds;
}

void store_kinds(const std::string& fp, const DeviceReport& r) {
  std::optional<std::string> path = kinds_path(fp);
  if (!path) return;
  std::string text = hash_hex(fp) + "\n";
  for (const DevicePtr& d : r.devices)
    if (!d->is_host()) text += lower(d->info().kind) + "\n";
  write_file_atomic(*path, text);
}

DeviceReport probe_all() {
  // Taken before probing, so that a driver installed meanwhile is not recorded as absent.
  const std::optional<std::string> fp = drivers_fingerprint();
  DeviceReport r;
  r.cpu = devices::detect_cpu();
  r.memory = devices::detect_memory();
  r.devices.push_back(host_device());
  for (const auto& b : registered_backends()) {
    if (b->name() == "cpu") continue;
    std::string problem;
    std::vector<DevicePtr> found = b->probe(problem);
    if (found.empty()) {
      if (problem.empty()) problem = "no device found";
      debug_log(str("backend ", b->name(), " disabled: ", problem));
      r.problems.emplace_back(b->name(), problem);
    }
    for (DevicePtr& d : found) {
      debug_log(str("device ", d->id(), ": ", d->info().description));
      r.devices.push_back(std::move(d));
    }
  }
  if (fp) store_kinds(*fp, r);
  return r;
}

// Whether a device list names only the host ("cpu", any case and spacing): then no other
// backend needs probing, which spares loading their drivers (an OpenCL ICD pulls in LLVM).
bool host_only(const std::vector<std::string>& names) {
  bool any = false;
  for (const std::string& n : names) {
    std::string t = lower(trim(n));
    if (t.empty()) continue;
    if (t != "cpu") return false;
    any = true;
  }
  return any;
}

std::vector<std::string> split(const std::string& spec) {
  std::vector<std::string> items;
  std::string item;
  std::istringstream is(spec);
  while (std::getline(is, item, ',')) items.push_back(item);
  return items;
}

std::string known_names(const DeviceReport& report) {
  std::string s;
  for (const DevicePtr& d : report.devices) s += (s.empty() ? "" : ", ") + d->id();
  return s;
}

}  // namespace

const DeviceReport& detect() {
  static const DeviceReport* report = new DeviceReport(probe_all());  // never destroyed
  probed.store(true, std::memory_order_release);
  return *report;
}

std::vector<DevicePtr> probed_devices() {
  if (probed.load(std::memory_order_acquire)) return detect().devices;
  return {host_device()};
}

DevicePtr find_device(const std::string& id) {
  if (id == "cpu") return host_device();
  for (const DevicePtr& d : detect().devices)
    if (d->id() == id) return d;
  return nullptr;
}

const DevicePtr& host_device() {
  static const DevicePtr* host = new DevicePtr(probe_host());
  return *host;
}

// What "auto" (and an unset NEF_DEVICES) enables: the host and every device with hardware of
// its own. A non-host device of kind "cpu" (PoCL's OpenCL device) runs on the host's own
// cores, so it can only add transfers and compile time: on this 2-core machine a 16M-element
// fused chain placed there took 115 ms against 55 ms on the CPU backend. Name it to use it.
bool in_auto(const Device& d) { return d.is_host() || lower(d.info().kind) != "cpu"; }

namespace {

// "auto" without probing when an earlier process's probe under the same drivers' fingerprint
// found no device "auto" enables (only "cpu"-kind ones, or none): then the drivers stay unloaded.
// Decided once per process; otherwise the devices are probed and resolved as usual.
std::vector<std::string> auto_device_ids() {
  static const bool host_only_auto = [] {
    if (probed.load(std::memory_order_acquire)) return false;
    std::optional<std::string> fp = drivers_fingerprint();
    std::optional<std::vector<std::string>> kinds = fp ? cached_kinds(*fp) : std::nullopt;
    return kinds && std::all_of(kinds->begin(), kinds->end(),
                                [](const std::string& k) { return k == "cpu"; });
  }();
  if (host_only_auto) return {"cpu"};
  return resolve_devices({}, detect(), "the device list");
}

}  // namespace

std::vector<std::string> resolve_devices(const std::vector<std::string>& names,
                                         const DeviceReport& report, const std::string& source) {
  const auto& devs = report.devices;
  std::vector<bool> chosen(devs.size(), false);
  bool any_name = false;
  for (const std::string& raw : names) {
    std::string name = lower(trim(raw));
    if (name.empty()) continue;
    any_name = true;
    if (name == "all") {
      std::fill(chosen.begin(), chosen.end(), true);
      continue;
    }
    if (name == "auto") {
      for (size_t i = 0; i < devs.size(); ++i) chosen[i] = chosen[i] || in_auto(*devs[i]);
      continue;
    }
    bool matched = false;
    for (size_t i = 0; i < devs.size(); ++i)
      if (lower(devs[i]->id()) == name) chosen[i] = matched = true;
    if (!matched)
      for (size_t i = 0; i < devs.size(); ++i)
        if (lower(devs[i]->info().backend) == name) chosen[i] = matched = true;
    if (!matched)
      for (size_t i = 0; i < devs.size(); ++i)
        if (!devs[i]->is_host() && lower(devs[i]->info().kind) == name) chosen[i] = matched = true;
    if (matched) continue;
    if (!known_selector(name))
      throw DeviceError(str("[devices] unknown device '", trim(raw), "' in ", source,
                            "; devices here: ", known_names(report),
                            " (or a backend: cpu, opencl, cuda; a kind: gpu; or auto)"));
    std::string why;
    for (const auto& [backend, problem] : report.problems)
      if (name.rfind(backend, 0) == 0) why = str(" (", backend, ": ", problem, ")");
    warn_once(str("device '", trim(raw), "' in ", source, " is not present here", why,
                  "; running on the remaining devices"));
  }
  if (!any_name)
    for (size_t i = 0; i < devs.size(); ++i) chosen[i] = in_auto(*devs[i]);
  std::vector<std::string> out;
  for (size_t i = 0; i < devs.size(); ++i)
    if (chosen[i]) out.push_back(devs[i]->id());
  return out;
}

std::vector<std::string> parse_device_list(const std::string& spec, const DeviceReport& report,
                                           const std::string& source) {
  return resolve_devices(split(spec), report, source);
}

void set_device_override(const std::vector<std::string>& names) {
  bool empty =
      std::all_of(names.begin(), names.end(), [](const std::string& s) { return trim(s).empty(); });
  if (empty) {
    clear_device_override();
    return;
  }
  if (host_only(names)) {
    current_session().set_devices(std::vector<std::string>{"cpu"});
    return;
  }
  current_session().set_devices(resolve_devices(names, detect(), "the device override"));
}

void clear_device_override() { current_session().set_devices(std::nullopt); }

namespace {
thread_local const std::vector<std::string>* scoped_ids = nullptr;
}  // namespace

PlacementScope::PlacementScope(const std::vector<std::string>& names) : previous_(scoped_ids) {
  ids_ = host_only(names) ? std::vector<std::string>{"cpu"}
                          : resolve_devices(names, detect(), "the placement scope");
  scoped_ids = &ids_;
}

PlacementScope::~PlacementScope() { scoped_ids = previous_; }

std::vector<std::string> enabled_device_ids() {
  std::vector<std::string> ids;
  if (scoped_ids) {
    ids = *scoped_ids;
  } else if (auto o = current_session().devices()) {
    ids = *o;
  } else {
    const char* env = std::getenv("NEF_DEVICES");
    if (env && host_only(split(env))) ids = {"cpu"};
    else if (env && !trim(env).empty() && lower(trim(env)) != "auto")
      ids = parse_device_list(env, detect(), "NEF_DEVICES");
    else ids = auto_device_ids();
  }
  if (ids.empty()) ids.push_back(host_device()->id());
  return ids;
}

PlacementDevices placement_devices() {
  std::vector<std::string> ids = enabled_device_ids();
  PlacementDevices p;
  if (ids == std::vector<std::string>{"cpu"}) {
    p.devices.push_back(host_device());
    p.fallback_only.push_back(false);
    return p;
  }
  bool host = false;
  for (const DevicePtr& d : detect().devices) {
    if (std::find(ids.begin(), ids.end(), d->id()) == ids.end()) continue;
    p.devices.push_back(d);
    p.fallback_only.push_back(false);
    host = host || d->is_host();
  }
  if (!host) {
    p.devices.push_back(host_device());
    p.fallback_only.push_back(true);
  }
  return p;
}

}  // namespace nef::backend
