#include "backends/backend.h"
#include "backends/cpu/cpu_backend.h"

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

}  // namespace nef::backend
