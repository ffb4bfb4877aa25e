#include "runtime/executor.h"

#include <chrono>
#include <mutex>

#include "nef/error.h"
#include "runtime/stats.h"

namespace nef::runtime {
namespace {
thread_local bool profiling = false;
thread_local std::vector<StepTiming> profile;

// The arenas for one run: the plan's idle set when free, else a fresh one (another thread is
// running the same plan). Counted in bytes_allocated only when freshly allocated.
std::vector<Array> take_arenas(const compiler::Plan& plan) {
  std::vector<Array> arenas;
  {
    std::lock_guard<std::mutex> lock(plan.arenas->mu);
    arenas.swap(plan.arenas->idle);
  }
  if (!arenas.empty()) return arenas;
  arenas.resize(plan.backends.size());
  for (size_t d = 0; d < plan.backends.size(); ++d) {
    int64_t bytes = plan.memory.arena_bytes[d];
    if (bytes == 0) continue;
    arenas[d] = plan.backends[d]->allocate(Shape{bytes}, DType::UInt8);
    stats().bytes_allocated += bytes;
  }
  return arenas;
}

void return_arenas(const compiler::Plan& plan, std::vector<Array>& arenas) {
  std::lock_guard<std::mutex> lock(plan.arenas->mu);
  if (plan.arenas->idle.empty()) plan.arenas->idle.swap(arenas);
}

// A contiguous value at a planned byte offset (64-byte aligned, so a whole element index).
Array arena_value(const Array& arena, int64_t byte_offset, const ir::TensorType& t) {
  Array a;
  a.storage = arena.storage;
  a.dtype = t.dtype;
  a.offset = byte_offset / int64_t(dtype_size(t.dtype));
  a.shape = t.shape;
  a.strides = contiguous_strides(t.shape);
  return a;
}

}  // namespace

void set_profiling(bool on) { profiling = on; }
const std::vector<StepTiming>& last_profile() { return profile; }

std::vector<Array> execute(const compiler::Plan& plan, const std::vector<Array>& bindings) {
  const ir::Graph& g = plan.graph;
  if (static_cast<int>(bindings.size()) != g.num_bindings())
    throw ValidationError(str("[run] graph has ", g.num_bindings(), " inputs, got ",
                              bindings.size(), " values"));
  const compiler::MemoryPlan& mem = plan.memory;
  std::vector<Array> arenas;
  if (mem.enabled) arenas = take_arenas(plan);
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
    if (n.op->has(ir::kView)) {
      // the kernel sets `out` to a view of its input
    } else if (mem.enabled && mem.offset[step.node] >= 0) {
      out = arena_value(arenas[n.device], mem.offset[step.node], n.type);
    } else {
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
  if (mem.enabled) {
    // Outputs are never planned into the arena; the arena is reused by the next run.
    for (const Array& o : outs)
      for (const Array& a : arenas)
        NEF_CHECK(!a.storage || o.storage != a.storage, "[run] an output points into the arena");
    values.clear();
    return_arenas(plan, arenas);
  }
  return outs;
}

}  // namespace nef::runtime
