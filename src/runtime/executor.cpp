#include "runtime/executor.h"

#include <chrono>
#include <mutex>
#include <optional>
#include <utility>

#include "compiler/plan_json.h"
#include "nef/error.h"
#include "runtime/stats.h"

namespace nef::runtime {
namespace {
using Clock = std::chrono::steady_clock;

thread_local bool profiling_on = false;
thread_local RunProfile profile;

// Collects (step, seconds) during a run and fills the thread's profile when the run ends, by
// return or by an exception, so describing the kernels is not part of any timed call.
class ProfileScope {
 public:
  explicit ProfileScope(const compiler::Plan& plan) : plan_(plan) {
    times_.reserve(plan.steps.size());
  }
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;
  void add(int step, double seconds) { times_.emplace_back(step, seconds); }
  ~ProfileScope() {
    double total = std::chrono::duration<double>(Clock::now() - start_).count();
    try {
      RunProfile p;
      p.seconds = total;
      p.kernels.reserve(times_.size());
      for (const auto& [step, seconds] : times_) {
        const compiler::Step& st = plan_.steps[step];
        const ir::Node& n = plan_.graph.nodes[st.node];
        KernelProfile k;
        k.step = step;
        k.node = st.node;
        k.op = n.op->name;
        k.ops = compiler::covered_ops(plan_.graph, n);
        k.kernel = st.kernel->name();
        k.device = plan_.backends[n.device]->name();
        k.shape = n.type.shape;
        k.dtype = n.type.dtype;
        k.seconds = seconds;
        p.kernels.push_back(std::move(k));
      }
      profile = std::move(p);
    } catch (...) {
      profile = RunProfile{};  // out of memory while describing: no profile rather than a crash
    }
  }

 private:
  const compiler::Plan& plan_;
  std::vector<std::pair<int, double>> times_;
  Clock::time_point start_ = Clock::now();
};

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

void set_profiling(bool on) { profiling_on = on; }
bool profiling() { return profiling_on; }
const RunProfile& last_profile() { return profile; }

std::vector<Array> execute(const compiler::Plan& plan, const std::vector<Array>& bindings) {
  const ir::Graph& g = plan.graph;
  if (static_cast<int>(bindings.size()) != g.num_bindings())
    throw ValidationError(str("[run] graph has ", g.num_bindings(), " inputs, got ",
                              bindings.size(), " values"));
  std::optional<ProfileScope> prof;
  if (profiling_on) prof.emplace(plan);
  const compiler::MemoryPlan& mem = plan.memory;
  std::vector<Array> arenas;
  if (mem.enabled) arenas = take_arenas(plan);
  std::vector<Array> values(g.nodes.size());
  int64_t executed = 0;
  for (size_t step_index = 0; step_index < plan.steps.size(); ++step_index) {
    const compiler::Step& step = plan.steps[step_index];
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
    if (prof) {
      Clock::time_point t0 = Clock::now();
      step.kernel->run(backend::KernelArgs{inputs, out, n.attrs, n});
      prof->add(int(step_index), std::chrono::duration<double>(Clock::now() - t0).count());
    } else {
      step.kernel->run(backend::KernelArgs{inputs, out, n.attrs, n});
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
