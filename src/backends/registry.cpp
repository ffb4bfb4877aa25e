#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"
#include "devices/devices.h"
#include "nef/error.h"

namespace nef::backend {

const std::vector<std::shared_ptr<Backend>>& registered_backends() {
  // Preference order: accelerators first once they exist; the CPU is the fallback for all ops.
  static const std::vector<std::shared_ptr<Backend>> backends = {cpu::make_cpu_backend()};
  return backends;
}

std::shared_ptr<Backend> find_backend(const std::string& name) {
  for (const auto& b : registered_backends())
    if (b->name() == name) return b;
  return nullptr;
}



std::vector<std::shared_ptr<Backend>> enabled_backends() {
  // A backend is enabled when one of its devices is enabled (NEF_DEVICES / nef.config).
  std::vector<std::string> devices = devices::enabled_devices();
  const auto& report = devices::detect();
  std::vector<std::shared_ptr<Backend>> out;
  for (const auto& b : registered_backends()) {
    for (const auto& d : report.devices) {
      bool on = false;
      for (const auto& name : devices) on = on || name == d.name;
      if (on && d.backend == b->name()) {
        out.push_back(b);
        break;
      }
    }
  }
  if (out.empty()) throw DeviceError("[planner] no enabled device has a backend");
  return out;
}

}  // namespace nef::backend
