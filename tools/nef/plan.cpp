// `nef run --plan`: until the planner exposes its own description of a loaded graph, list the
// validated graph's nodes in execution order with the device each runs on (the CPU, the only
// backend so far) and why.
#include <sstream>

#include "cli.h"
#include "devices/devices.h"
#include "format/nef_file.h"

namespace nef::cli {

std::string describe_plan(const std::string& path, const LoadedGraph& graph) {
  (void)graph;  // the planner's placement will come from here once it is exposed
  ir::Graph g = format::read_nef(path);
  std::vector<std::string> enabled = devices::enabled_devices();
  std::ostringstream os;
  os << "plan for " << path << " (" << g.nodes.size() << " nodes; enabled devices:";
  for (const std::string& d : enabled) os << " " << d;
  os << ")\n";
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    os << "  %" << i << " = " << n.op->name << "(";
    for (size_t k = 0; k < n.inputs.size(); ++k) os << (k ? ", " : "") << "%" << n.inputs[k];
    os << ") -> " << shape_str(n.type.shape) << " " << dtype_name(n.type.dtype);
    if (!n.name.empty()) os << " '" << n.name << "'";
    std::string reason = n.placement_reason.empty() ? "cpu is the only backend" : n.placement_reason;
    if (!n.device_hint.empty()) reason += ", hint '" + n.device_hint + "' noted";
    os << "  on cpu (" << reason << ")\n";
  }
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    os << "  output '" << g.output_names[k] << "' = %" << g.outputs[k] << "\n";
  }
  return os.str();
}

}  // namespace nef::cli
