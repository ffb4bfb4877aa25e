#include "runtime/run.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <utility>

#include "backends/concurrent.h"
#include "common/faults.h"
#include "common/session.h"
#include "ir/ops/fused_program.h"
#include "ir/views.h"
#include "nef/error.h"
#include "runtime/arena_pool.h"

namespace nef::runtime {
namespace {
using Clock = std::chrono::steady_clock;

thread_local bool profiling_on = false;
thread_local RunProfile profile;

// A contiguous value at a planned byte offset of an arena (64-byte aligned: a whole element index).
Array at_offset(const std::shared_ptr<Storage>& arena, int64_t byte_offset, const Shape& shape,
                DType dtype) {
  Array a;
  a.storage = arena;
  a.dtype = dtype;
  a.offset = byte_offset / int64_t(dtype_size(dtype));
  a.shape = shape;
  a.strides = contiguous_strides(shape);
  return a;
}

Array fresh(backend::Device& dev, const Shape& shape, DType dtype) {
  int64_t n = checked_numel(shape, "allocate");
  size_t bytes = size_t(n) * dtype_size(dtype);
  Array a = at_offset(dev.allocate(bytes), 0, shape, dtype);
  counters().bytes_allocated += int64_t(bytes);
  return a;
}

}  // namespace

std::string copy_name(const Plan& plan, const Step& step) {
  const ir::Node& n = plan.graph.nodes[step.node];
  return str("copy ", plan.device_of(n.inputs[0]).id(), " -> ", plan.device_of(step.node).id());
}

int64_t PlanState::evict() {
  std::lock_guard<std::mutex> lock(mu);
  int64_t freed = 0;
  for (auto& r : resident)
    if (r) freed += int64_t(r->nbytes());
  for (auto& r : resident) r.reset();
  return freed;
}

struct Run::Impl {
  // Per node: its value, the event that completes it, its kernel operands and workspace. One
  // vector of these (and one of the per-device state) instead of one vector per field: a run of
  // a small graph is dominated by its allocations (a + b on 4 floats made 45 per run).
  struct NodeState {
    Array value;
    backend::EventPtr event;
    std::vector<Array> inputs;
    Array workspace;
  };
  struct DeviceState {
    backend::QueuePtr queue;  // acquired on first use
    std::shared_ptr<Storage> arena;
  };
  std::vector<Array> bindings;
  std::vector<DeviceState> devices;       // by device index
  std::vector<NodeState> nodes;           // by node
  std::vector<backend::KernelArgs> args;  // reserved for every step: stable addresses
  // The concurrent group being submitted (Step::group_first..group_last): its members so far,
  // what they wait for and their device. Handed over at the last member, or earlier when a step
  // in between needs a member's data.
  std::vector<backend::ConcurrentLaunch> group;
  std::vector<backend::EventPtr> group_waits;
  int group_device = -1;
  // Profiling: per submitted step, (step, host time before and after its submission).
  bool profiling = false;
  struct Timing {
    int step;
    double submitted, returned;
  };
  std::vector<Timing> times;
  double start = 0;

  backend::Queue& queue(const Plan& p, int device) {
    backend::QueuePtr& q = devices[device].queue;
    if (!q) q = p.devices[device]->acquire_queue();
    return *q;
  }
};

Run::Run(std::shared_ptr<const Plan> plan, std::vector<Array> bindings)
    : plan_(std::move(plan)), impl_(std::make_unique<Impl>()) {
  const Plan& p = *plan_;
  const ir::Graph& g = p.graph;
  if (static_cast<int>(bindings.size()) != g.num_bindings())
    throw ValidationError(
        str("[run] graph has ", g.num_bindings(), " inputs, got ", bindings.size(), " values"));
  Impl& s = *impl_;
  s.profiling = profiling_on;
  if (s.profiling) s.start = backend::host_seconds();
  s.bindings = std::move(bindings);
  s.devices.resize(p.devices.size());
  s.nodes.resize(g.nodes.size());
  s.args.reserve(p.steps.size());
  // Idle arenas come from the shared pool; the others are allocated by the first step on their
  // device, so that an out-of-memory is a step's failure the failure ladder can handle.
  if (p.memory.enabled)
    for (size_t d = 0; d < p.devices.size(); ++d)
      if (p.memory.arena_bytes[d] > 0)
        s.devices[d].arena = take_arena(*p.devices[d], size_t(p.memory.arena_bytes[d]));
}

const std::vector<Array>& Run::bindings() const { return impl_->bindings; }

Run::~Run() {
  try {
    if (!waited_) wait();
  } catch (...) {
  }
  const Plan& p = *plan_;
  // Queues go back to their pools (each synchronizes first); then, with no value left pointing
  // into them, the arenas become idle.
  for (auto& d : impl_->devices) d.queue.reset();
  impl_->args.clear();
  for (auto& n : impl_->nodes) {  // the events stay: the profile below reads them
    n.value = Array();
    n.inputs.clear();
    n.workspace = Array();
  }
  for (size_t d = 0; d < impl_->devices.size(); ++d)
    give_back_arena(*p.devices[d], std::move(impl_->devices[d].arena));
  if (impl_->profiling) {
    try {
      RunProfile out;
      out.seconds = backend::host_seconds() - impl_->start;
      out.predicted_seconds = p.predicted_seconds;
      for (const auto& [step, submitted, returned] : impl_->times) {
        const Step& st = p.steps[step];
        const ir::Node& n = p.graph.nodes[st.node];
        KernelProfile k;
        k.step = step;
        k.node = st.node;
        k.op = n.op->name;
        k.ops = ir::covered_ops(p.graph, n);
        k.kernel = st.kind == StepKind::Copy ? copy_name(p, st) : st.kernel->name();
        k.device = p.device_of(st.node).id();
        k.shape = n.type.shape;
        k.dtype = n.type.dtype;
        const backend::EventPtr& ev = impl_->nodes[st.node].event;
        double dev = ev && ev->ready() ? ev->device_seconds() : -1;
        double done = ev && ev->ready() ? ev->completed_at() : -1;
        // Inline work ran during its submission; queued work ended when its event completed.
        k.seconds = dev >= 0 ? dev : returned - submitted;
        k.end = (done >= 0 ? done : returned) - impl_->start;
        k.start = std::max(submitted - impl_->start, k.end - k.seconds);
        k.predicted_seconds = st.predicted_seconds;
        out.kernels.push_back(std::move(k));
      }
      profile = std::move(out);
    } catch (...) {
      profile = RunProfile{};  // out of memory while describing: no profile rather than a crash
    }
  }
}

void Run::cancel() {
  cancelled_.store(true);
  pause_.store(true);
}

void Run::submit(int step_index) {
  const Plan& p = *plan_;
  const ir::Graph& g = p.graph;
  Impl& s = *impl_;
  const Step& step = p.steps[step_index];
  const int v = step.node;
  const ir::Node& n = g.nodes[v];
  const int dev_index = n.device;
  backend::Device& dev = *p.devices[dev_index];
  Impl::NodeState& ns = s.nodes[v];
  Array& out = ns.value;
  backend::EventPtr& done = ns.event;

  switch (step.kind) {
    case StepKind::Input: {
      const Array& b = s.bindings[n.binding];
      if (b.shape != n.type.shape)
        throw ShapeError(str("[input] '", g.input_names[n.binding], "' expects shape ",
                             shape_str(n.type.shape), ", got ", shape_str(b.shape)));
      if (b.dtype != n.type.dtype)
        throw TypeError(str("[input] '", g.input_names[n.binding], "' expects dtype ",
                            dtype_name(n.type.dtype), ", got ", dtype_name(b.dtype)));
      if (b.device() == dev.id() || b.numel() == 0) {
        out = b;
        done = backend::completed_event();
        return;
      }
      // Delivered elsewhere than planned: move it (the device that is not the host copies).
      out = fresh(dev, n.type.shape, n.type.dtype);
      int exec = dev_index;
      if (dev.is_host()) {
        exec = -1;
        for (size_t d = 0; d < p.devices.size(); ++d)
          if (p.devices[d]->id() == b.device()) exec = int(d);
        if (exec < 0)
          throw DeviceError(str("[input] '", g.input_names[n.binding], "' lives on device ",
                                b.device(), ", which this plan does not use"));
      }
      done = p.devices[exec]->copy(b, out, s.queue(p, exec), {});
      return;
    }
    case StepKind::Constant: {
      const Array& c = *n.constant;
      if (dev.is_host()) {
        out = c;
        done = backend::completed_event();
        return;
      }
      std::lock_guard<std::mutex> lock(p.state->mu);
      if (p.state->resident.size() != g.nodes.size()) p.state->resident.assign(g.nodes.size(), {});
      if (!p.state->resident[v]) {
        Array host = c.contiguous();
        Array d = fresh(dev, c.shape, c.dtype);
        if (host.nbytes()) d.storage->space()->write(*d.storage, 0, host.data(), host.nbytes());
        p.state->resident[v] = d;
      }
      out = *p.state->resident[v];
      done = backend::completed_event();
      return;
    }
    case StepKind::View: {
      const int in = n.inputs[0];
      const Impl::NodeState& src = s.nodes[in];
      if (std::optional<Array> view = ir::apply_view(n, src.value)) {
        out = std::move(*view);
        done = src.event;
        return;
      }
      // A reshape the input's strides cannot express: a contiguous copy on the device first (of
      // a group member's result: the group so far goes first, its event must be able to fire).
      launch_group();
      Array tmp = fresh(dev, src.value.shape, src.value.dtype);
      backend::EventPtr waits[] = {src.event};
      done = dev.copy(src.value, tmp, s.queue(p, dev_index), waits);
      out = *ir::apply_view(n, tmp);
      return;
    }
    case StepKind::Copy: {
      const int in = n.inputs[0];
      const int src_dev = g.nodes[in].device;
      const Array& src = s.nodes[in].value;
      const backend::EventPtr& src_done = s.nodes[in].event;
      backend::EventPtr waits[] = {src_done};
      counters().transfers++;
      // Devices that share host memory map instead of copying: no bytes move.
      if (dev.is_host()) {
        if (auto m = p.devices[src_dev]->map_to_host(src, s.queue(p, src_dev), waits)) {
          out = std::move(m->first);
          done = std::move(m->second);
          return;
        }
      } else if (src.on_host() && src_done->ready() && !src_done->failed()) {
        if (auto m = dev.map_from_host(src)) {
          out = std::move(*m);
          done = src_done;
          return;
        }
      }
      out = fresh(dev, n.type.shape, n.type.dtype);
      int exec = dev.is_host() ? src_dev : dev_index;
      done = p.devices[exec]->copy(src, out, s.queue(p, exec), waits);
      counters().bytes_transferred += int64_t(out.nbytes());
      return;
    }
    case StepKind::Kernel:
      break;
  }

  const MemoryPlan& mem = p.memory;
  std::shared_ptr<Storage>& arena = s.devices[dev_index].arena;
  if (mem.enabled && !arena && mem.arena_bytes[dev_index] > 0) {
    arena = dev.allocate(size_t(mem.arena_bytes[dev_index]));
    counters().bytes_allocated += mem.arena_bytes[dev_index];
  }
  if (faults::fire("oom", dev.id(), n.op->name))
    throw OutOfMemoryError(str("[", n.op->name, "] out of memory on ", dev.id(), " (injected)"));
  if (mem.enabled && mem.offset[v] >= 0)
    out = at_offset(arena, mem.offset[v], n.type.shape, n.type.dtype);
  else out = fresh(dev, n.type.shape, n.type.dtype);
  if (int64_t ws = step.kernel->workspace_bytes(); ws > 0) {
    if (mem.enabled && mem.workspace_offset[v] >= 0)
      ns.workspace = at_offset(arena, mem.workspace_offset[v], {ws}, DType::UInt8);
    else ns.workspace = fresh(dev, {ws}, DType::UInt8);
  }
  std::vector<Array>& ins = ns.inputs;
  ins.reserve(n.inputs.size());
  // The distinct pending events among the inputs (no allocation when every input is done, the
  // usual case on the host).
  std::vector<backend::EventPtr> waits;
  for (int in : n.inputs) {
    ins.push_back(s.nodes[in].value);
    const backend::EventPtr& e = s.nodes[in].event;
    if (e != backend::completed_event() && std::find(waits.begin(), waits.end(), e) == waits.end())
      waits.push_back(e);
  }
  s.args.push_back(backend::KernelArgs{ins, out, n.attrs, n, ns.workspace, step.prepared.get()});
  if (step.grouped()) {
    auto member = std::make_shared<backend::HostEvent>();
    s.group.push_back(backend::ConcurrentLaunch{step.kernel.get(), &s.args.back(), member});
    for (const backend::EventPtr& e : waits)
      if (std::find(s.group_waits.begin(), s.group_waits.end(), e) == s.group_waits.end())
        s.group_waits.push_back(e);
    s.group_device = dev_index;
    done = std::move(member);
    if (step_index == step.group_last) launch_group();
  } else {
    done = step.kernel->enqueue(s.args.back(), s.queue(p, dev_index), waits);
  }
  if (faults::fire("run", dev.id(), n.op->name)) {
    auto failed = std::make_shared<backend::HostEvent>();
    failed->complete(std::make_exception_ptr(
        DeviceError(str("[", n.op->name, "] device ", dev.id(), " failed (injected)"))));
    done = failed;
  }
}

void Run::launch_group() {
  Impl& s = *impl_;
  if (s.group.empty()) return;
  backend::Device& dev = *plan_->devices[s.group_device];
  auto* cap = dynamic_cast<backend::ConcurrentKernels*>(&dev);
  NEF_CHECK(cap, "[run] concurrent steps on ", dev.id(), ", which cannot run them");
  std::vector<backend::ConcurrentLaunch> launches = std::move(s.group);
  std::vector<backend::EventPtr> waits = std::move(s.group_waits);
  s.group.clear();
  s.group_waits.clear();
  cap->enqueue_concurrent(std::move(launches), s.queue(*plan_, s.group_device), waits);
}

bool Run::submit_step_safely(int step_index) {
  Impl& s = *impl_;
  double t0 = s.profiling ? backend::host_seconds() : 0;
  try {
    submit(step_index);
  } catch (...) {
    failure_ = StepFailure{step_index, plan_->graph.nodes[plan_->steps[step_index].node].device,
                           std::current_exception()};
    // Members submitted before it still run: their events must complete.
    try {
      launch_group();
    } catch (...) {
    }
    return false;
  }
  const Step& st = plan_->steps[step_index];
  if (s.profiling && (st.kind == StepKind::Kernel || st.kind == StepKind::Copy))
    s.times.push_back({step_index, t0, backend::host_seconds()});
  return true;
}

bool Run::advance() {
  const int total = static_cast<int>(plan_->steps.size());
  waited_ = false;
  while (next_ < total) {
    // A pause waits for the end of a concurrent group: its members are handed over together.
    if (pause_.load(std::memory_order_relaxed) && impl_->group.empty()) return false;
    if (failure_) return false;
    if (!submit_step_safely(next_)) return false;
    ++next_;
  }
  return true;
}

void Run::wait() {
  Impl& s = *impl_;
  launch_group();  // never left pending by advance(); kept for callers that stop early
  for (auto& d : s.devices)
    if (d.queue) d.queue->synchronize();
  waited_ = true;
  // The earliest failed step: a step whose input failed carries that error too, later in order.
  for (int st = 0; st < next_; ++st) {
    const backend::EventPtr& e = s.nodes[plan_->steps[st].node].event;
    if (e && e->failed()) {
      if (!failure_ || failure_->step > st) {
        std::exception_ptr err;
        try {
          e->wait();
        } catch (...) {
          err = std::current_exception();
        }
        failure_ = StepFailure{st, plan_->graph.nodes[plan_->steps[st].node].device, err};
      }
      break;
    }
  }
  if (!failure_ && next_ == int(plan_->steps.size())) {
    int64_t kernels = 0;
    for (const Step& st : plan_->steps) kernels += st.kind == StepKind::Kernel;
    counters().nodes_executed += kernels;
    counters().graphs_executed++;
  }
}

const Array* Run::value(int node) const {
  const Impl::NodeState& ns = impl_->nodes[node];
  if (!ns.event || !ns.event->ready() || ns.event->failed()) return nullptr;
  return &ns.value;
}

std::vector<Array> Run::outputs() const {
  NEF_CHECK(finished() && !failure_, "[run] outputs of an unfinished or failed run");
  std::vector<Array> outs;
  outs.reserve(plan_->graph.outputs.size());
  for (int o : plan_->graph.outputs) outs.push_back(impl_->nodes[o].value);
  return outs;
}

std::vector<Array> execute(std::shared_ptr<const Plan> plan, std::vector<Array> bindings) {
  Run run(std::move(plan), std::move(bindings));
  run.advance();
  run.wait();
  if (run.failure()) std::rethrow_exception(run.failure()->error);
  if (run.cancelled()) throw CancelledError("[run] cancelled");
  return run.outputs();
}

void set_profiling(bool on) { profiling_on = on; }
bool profiling() { return profiling_on; }
const RunProfile& last_profile() { return profile; }

}  // namespace nef::runtime
