#include "runtime/executor.h"

#include <chrono>

#include "nef/error.h"
#include "runtime/stats.h"

namespace nef::runtime {
namespace {
thread_local bool profiling = false;
thread_local std::vector<StepTiming> profile;
}  // namespace

void set_profiling(bool on) { profiling = on; }
const std::vector<StepTiming>& last_profile() { return profile; }

std::vector<Array> execute(const compiler::Plan& plan, const std::vector<Array>& bindings) {
  const ir::Graph& g = plan.graph;
  if (static_cast<int>(bindings.size()) != g.num_bindings())
    throw ValidationError(str("[run] graph has ", g.num_bindings(), " inputs, got ",
                              bindings.size(), " values"));
  std::vector<Array> values(g.nodes.size());
  if (profiling) profile.clear();
  int64_t executed = 0;
  for (const compiler::Step& step : plan.steps) {
    const ir::Node& n = g.nodes[step.node];
    Array& out = values[step.node];
    if (n.is("input")) {
      const Array& b = bindings[n.binding];
      if (b.shape != n.type.shape)
        throw ShapeError(str("[input] '", g.input_names[n.binding], "' expects shape ",
                             shape_str(n.type.shape), ", got ", shape_str(b.shape)));
      if (b.dtype != n.type.dtype)
        throw TypeError(str("[input] '", g.input_names[n.binding], "' expects dtype ",
                            dtype_name(n.type.dtype), ", got ", dtype_name(b.dtype)));
      out = b;
      continue;
    }
    if (n.is("constant")) {
      out = *n.constant;
      continue;
    }
    std::vector<Array> inputs;
    inputs.reserve(n.inputs.size());
    for (int in : n.inputs) inputs.push_back(values[in]);
    const backend::Backend& be = *plan.backends[n.device];
    if (!n.op->has(ir::kView)) {
      out = be.allocate(n.type.shape, n.type.dtype);
      stats().bytes_allocated += static_cast<int64_t>(out.nbytes());
    }
    auto t0 = profiling ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    step.kernel->run(backend::KernelArgs{inputs, out, n.attrs, n});
    if (profiling) {
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                      .count();
      profile.push_back({step.node, ms});
    }
    NEF_CHECK(out.shape == n.type.shape && out.dtype == n.type.dtype, "[", n.op->name,
              "] kernel produced ", shape_str(out.shape), " ", dtype_name(out.dtype));
    ++executed;
    for (int r : step.release) values[r] = Array{};
  }
  stats().nodes_executed += executed;
  stats().graphs_executed++;
  std::vector<Array> outs;
  outs.reserve(g.outputs.size());
  for (int o : g.outputs) outs.push_back(values[o]);
  return outs;
}

}  // namespace nef::runtime
