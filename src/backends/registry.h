// The devices of this process: every registered backend probed once (the CPU first), and which
// of them the planner may use. Selection: the calling thread's PlacementScope, else the session's
// override (nef.config(devices=...)), else NEF_DEVICES (read on every call), else every device.
// Names match a device id ("opencl:0"), then a backend ("opencl": all its devices), then a kind
// ("gpu"); "auto" means all. A known name that matches no device here (an OpenCL machine without
// its driver) is dropped with a warning, an unknown one is a DeviceError. The CPU is always usable
// as the fallback for what no enabled device supports; listing it ("cpu") makes it a first-class
// choice.
//
// Thread-safety: every function may be called from any thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "devices/cpu_info.h"

namespace nef::backend {

struct DeviceReport {
  devices::CpuInfo cpu;
  devices::MemoryInfo memory;
  std::vector<DevicePtr> devices;  // the CPU first, then each backend's in registration order
  // Backends that found no device: (backend, why).
  std::vector<std::pair<std::string, std::string>> problems;
};

// Probes once per process (first call); later calls return the same report.
const DeviceReport& detect();
// detect()'s devices when it has run in this process, else the host alone (without probing).
std::vector<DevicePtr> probed_devices();
// The device with this id, or null.
DevicePtr find_device(const std::string& id);
// The host CPU device.
const DevicePtr& host_device();

// Resolves names (see above) against `report`; `source` names the origin in messages. Returns
// device ids in report order, without duplicates; empty when nothing but the fallback remains.
std::vector<std::string> resolve_devices(const std::vector<std::string>& names,
                                         const DeviceReport& report, const std::string& source);
// Splits "cpu, opencl:0" at commas and resolves it.
std::vector<std::string> parse_device_list(const std::string& spec, const DeviceReport& report,
                                           const std::string& source = "NEF_DEVICES");

// The current session's override (validated at once); an empty list clears it.
void set_device_override(const std::vector<std::string>& names);
void clear_device_override();

// Restricts the planner to `names` on the calling thread while it lives (the innermost scope
// wins), over the session's override and NEF_DEVICES: for work that only some devices can run
// (an LLM's quantized kernels exist on the CPU alone). Names resolve as above, at construction;
// a list of only "cpu" probes no other backend, so their drivers are not loaded.
class PlacementScope {
 public:
  explicit PlacementScope(const std::vector<std::string>& names);
  ~PlacementScope();
  PlacementScope(const PlacementScope&) = delete;
  PlacementScope& operator=(const PlacementScope&) = delete;

 private:
  const std::vector<std::string>* previous_;
  std::vector<std::string> ids_;
};

// The ids the planner may place work on (see above); the CPU is added when nothing else remains.
std::vector<std::string> enabled_device_ids();

// What the planner receives: the enabled devices, then the CPU as fallback-only when it is not
// enabled itself (fallback_only[i] = true).
struct PlacementDevices {
  std::vector<DevicePtr> devices;
  std::vector<bool> fallback_only;
};
PlacementDevices placement_devices();

// JSON {"nef_version", "cpu", "memory", "devices": [...], "problems": [...], "enabled": [...]}
// (pretty-printed) and the multi-line text of `nef devices`.
std::string to_json(const DeviceReport& report);
std::string to_text(const DeviceReport& report);

}  // namespace nef::backend
