// Per-kernel profiles of graph executions (the executor records them; this is the public face).
#include "nef/tensor.h"
#include "runtime/run.h"

namespace nef {

void set_profiling(bool on) { runtime::set_profiling(on); }
bool profiling() { return runtime::profiling(); }
RunProfile last_profile() { return runtime::last_profile(); }

std::map<std::string, Array> LoadedGraph::run_profiled(const std::map<std::string, Array>& inputs,
                                                       RunProfile& profile) const {
  // Restores the caller's setting however run() ends.
  struct Restore {
    bool was = runtime::profiling();
    ~Restore() { runtime::set_profiling(was); }
  } restore;
  runtime::set_profiling(true);
  std::map<std::string, Array> outs = run(inputs);
  // run() ends with the graph's own execution, after any specialization work it did.
  profile = runtime::last_profile();
  return outs;
}

}  // namespace nef
