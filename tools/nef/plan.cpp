// `nef run --plan`: the compiled plan of the loaded graph (steps in execution order, kernels,
// devices and why each node went there), with the enabled devices.
#include <sstream>

#include "backends/registry.h"
#include "cli.h"

namespace nef::cli {

std::string describe_plan(const std::string& path, const LoadedGraph& graph) {
  std::ostringstream os;
  os << "plan for " << path << " (enabled devices:";
  for (const std::string& d : backend::enabled_device_ids()) os << " " << d;
  os << ")\n" << graph.describe_plan();
  return os.str();
}

}  // namespace nef::cli
