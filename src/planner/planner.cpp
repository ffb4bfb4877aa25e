#include "planner/planner.h"

#include "nef/error.h"

namespace nef::planner {

void assign_devices(ir::Graph& g,
                    const std::vector<std::shared_ptr<backend::Backend>>& backends) {
  for (ir::Node& n : g.nodes) {
    n.device = -1;
    if (!n.device_hint.empty()) {
      for (size_t b = 0; b < backends.size(); ++b) {
        if (backends[b]->name() == n.device_hint && backends[b]->supports(n, g)) {
          n.device = static_cast<int>(b);
          n.placement_reason = "device hint";
          break;
        }
      }
    }
    if (n.device >= 0) continue;
    for (size_t b = 0; b < backends.size(); ++b) {
      if (backends[b]->supports(n, g)) {
        n.device = static_cast<int>(b);
        n.placement_reason = n.device_hint.empty()
                                 ? "first backend that supports it"
                                 : str("hint '", n.device_hint, "' unavailable; fallback");
        break;
      }
    }
    if (n.device < 0)
      throw UnsupportedError(str("[", n.op->name, "] no enabled backend supports ",
                                 ir::types_str(g.input_types(n)), " -> ",
                                 shape_str(n.type.shape), " ", dtype_name(n.type.dtype)));
  }
}

}  // namespace nef::planner
