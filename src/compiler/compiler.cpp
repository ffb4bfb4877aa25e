#include "compiler/compiler.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>

#include "backends/registry.h"
#include "common/faults.h"
#include "common/host_memory.h"
#include "common/log.h"
#include "common/session.h"
#include "compiler/concurrency.h"
#include "compiler/kernel_cache.h"
#include "compiler/memory_plan.h"
#include "ir/views.h"
#include "nef/error.h"
#include "planner/planner.h"
#include "runtime/arena_pool.h"

namespace nef::compiler {
using nef::str;
using runtime::Plan;
using runtime::Step;
using runtime::StepKind;
namespace {

// Constants up to this size are keyed by value (scalar literals recreated on every call must
// hit the cache); larger ones by storage identity.
constexpr size_t kKeyByValueBytes = 64;
constexpr size_t kPlanCacheCapacity = 256;

struct PlanCache {
  std::mutex mu;
  std::list<std::pair<std::string, std::shared_ptr<const Plan>>> lru;  // front = newest
  std::unordered_map<std::string, decltype(lru)::iterator> index;
};
PlanCache& plan_cache() {
  static PlanCache* c = new PlanCache();
  return *c;
}

struct Hash128 {
  uint64_t h0, h1;
  bool operator==(const Hash128& o) const { return h0 == o.h0 && h1 == o.h1; }
};
struct Hash128Hash {
  size_t operator()(const Hash128& h) const {
    return size_t(h.h0 ^ (h.h1 * 0x9e3779b97f4a7c15ull));
  }
};
struct FrontCache {
  std::mutex mu;
  std::list<std::pair<Hash128, FrontEntry>> lru;  // front = newest
  std::unordered_map<Hash128, decltype(lru)::iterator, Hash128Hash> index;
};
FrontCache& front_cache() {
  static FrontCache* c = new FrontCache();
  return *c;
}

void append_constant(std::string& k, const Array& a) {
  size_t bytes = a.nbytes();
  if (bytes <= kKeyByValueBytes && a.on_host()) {
    Array c = a.contiguous();
    static const char* hex = "0123456789abcdef";
    const auto* p = static_cast<const unsigned char*>(c.data());
    k += "v:";
    for (size_t i = 0; i < bytes; ++i) {
      k += hex[p[i] >> 4];
      k += hex[p[i] & 15];
    }
  } else {
    k += str("s:", a.storage ? a.storage->id() : 0, "+", a.offset, "/");
    for (int64_t s : a.strides) k += str(s, ",");
  }
}

// Passes see the host for constant folding and the placed devices for fusion.
class Context final : public passes::PassContext {
 public:
  explicit Context(std::vector<backend::DevicePtr> devices) : devices_(std::move(devices)) {}

  std::optional<Array> evaluate(const ir::Node& n, const ir::Graph& g,
                                const std::vector<Array>& inputs) const override {
    for (const Array& a : inputs)
      if (!a.on_host()) return std::nullopt;
    if (n.op->has(ir::kView)) {
      std::optional<Array> v = ir::apply_view(n, inputs[0]);
      if (!v) v = ir::apply_view(n, inputs[0].contiguous());
      return v;
    }
    const backend::DevicePtr& host = backend::host_device();
    if (!host->supports(n, g)) return std::nullopt;
    auto kernel = host->compile(n, g);
    Array out = Array::empty(n.type.shape, n.type.dtype), workspace;
    if (int64_t ws = kernel->workspace_bytes(); ws > 0)
      workspace = Array::empty({ws}, DType::UInt8);
    backend::QueuePtr q = host->acquire_queue();
    backend::KernelArgs args{inputs, out, n.attrs, n, workspace};
    kernel->enqueue(args, *q, {})->wait();
    return out;
  }

  bool supports(const ir::Node& n, const ir::Graph& g) const override {
    if (n.device < 0 || devices_.empty()) return backend::host_device()->supports(n, g);
    return devices_.at(n.device)->supports(n, g);
  }

 private:
  std::vector<backend::DevicePtr> devices_;
};

StepKind kind_of(const ir::Node& n) {
  if (n.is("input")) return StepKind::Input;
  if (n.is("constant")) return StepKind::Constant;
  if (n.is("copy")) return StepKind::Copy;
  if (n.op->has(ir::kView)) return StepKind::View;
  return StepKind::Kernel;
}

// A reshape that cannot view its input (a reshape of a transposed value): a copy into the planned
// contiguous output on the node's device, which then holds the reshaped value.
class ReshapeCopyKernel final : public backend::Kernel {
 public:
  explicit ReshapeCopyKernel(backend::Device& dev) : dev_(dev) {}
  std::string name() const override { return dev_.id() + ".reshape_copy"; }
  backend::EventPtr enqueue(const backend::KernelArgs& args, backend::Queue& queue,
                            backend::Waits waits) const override {
    const Array& src = args.inputs[0];
    Array dst = args.out;
    dst.shape = src.shape;
    dst.strides = contiguous_strides(src.shape);
    return dev_.copy(src, dst, queue, waits);
  }

 private:
  backend::Device& dev_;
};

// Strides of each value when the compiler can know them: kernel and copy results are contiguous,
// constants are what they are, views follow their input; bindings may be any view (unknown).
// Only for the values a reshape reads, directly or through other views (what lower_once asks).
std::vector<std::optional<Strides>> static_strides(const ir::Graph& g) {
  std::vector<std::optional<Strides>> s(g.nodes.size());
  std::vector<bool> needed(g.nodes.size(), false);
  for (size_t i = g.nodes.size(); i-- > 0;) {
    const ir::Node& n = g.nodes[i];
    if (n.op->has(ir::kView) && (needed[i] || n.is("reshape"))) {
      needed[i] = true;
      needed[n.inputs[0]] = true;
    }
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (!needed[i] || n.is("input")) continue;
    if (n.is("constant")) {
      if (n.constant) s[i] = n.constant->strides;
    } else if (n.op->has(ir::kView)) {
      const auto& in = s[n.inputs[0]];
      if (!in) continue;
      Array meta;  // metadata only: views never touch data
      meta.shape = g.nodes[n.inputs[0]].type.shape;
      meta.strides = *in;
      meta.dtype = g.nodes[n.inputs[0]].type.dtype;
      if (std::optional<Array> v = ir::apply_view(n, meta)) s[i] = v->strides;
    } else {
      s[i] = contiguous_strides(n.type.shape);
    }
  }
  return s;
}

// A node whose kernel could not be built on its device.
struct CompileFailure {
  int node;
  std::string message;
};

// Kernels for every step; the first node that fails to compile is reported, not thrown.
std::optional<CompileFailure> lower_once(Plan& plan, const ir::Graph& g) {
  plan.steps.assign(g.nodes.size(), Step{});
  plan.kernels_compiled = 0;
  plan.predicted_seconds = 0;
  std::vector<std::optional<Strides>> strides = static_strides(g);
  std::vector<DeviceKey> device_keys;
  for (const auto& d : plan.devices) device_keys.push_back(device_key_of(*d));
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    Step& s = plan.steps[i];
    s.node = static_cast<int>(i);
    s.kind = kind_of(n);
    s.predicted_seconds = n.predicted_seconds;
    plan.predicted_seconds += n.predicted_seconds;
    if (s.kind == StepKind::View && n.is("reshape") && strides[n.inputs[0]] && !strides[i]) {
      // Known not to be viewable: a planned copy instead of an allocation at run time.
      s.kind = StepKind::Kernel;
      s.kernel = std::make_shared<ReshapeCopyKernel>(*plan.devices[n.device]);
      continue;
    }
    if (s.kind != StepKind::Kernel) continue;
    bool miss = false;
    const backend::Device& dev = *plan.devices[n.device];
    if (faults::fire("compile", dev.id(), n.op->name))
      return CompileFailure{int(i),
                            str("[", n.op->name, "] compile failure on ", dev.id(), " (injected)")};
    try {
      s.kernel = get_kernel(dev, device_keys[n.device], n, g, &miss);
    } catch (const CompileError& e) {
      return CompileFailure{int(i), e.what()};
    }
    plan.kernels_compiled += miss;
  }
  return std::nullopt;
}

// Each kernel's data derived from the plan's constants (Kernel::prepare), kept with its step: the
// plan owns it, so plans sharing a cached kernel never see each other's constants. A borrowed
// constant (a .nef file's mapping, a caller's array) that all its readers now hold in prepared
// form is not read by runs: when it lies in a file mapping, its pages are reclaimed as soon as
// its last reader prepared (host_pageout), so that the packed copies do not add the weights' size
// to the resident memory.
void prepare_steps(Plan& plan) {
  const ir::Graph& g = plan.graph;
  std::vector<int> readers(g.nodes.size(), 0), replaced(g.nodes.size(), 0);
  for (const ir::Node& n : g.nodes)
    for (int in : n.inputs) ++readers[in];
  for (int o : g.outputs) readers[o] = -1;  // read by the caller
  std::vector<const Array*> constants;
  std::vector<Array> views;  // views of host constants (x @ W.T), as the run will make them
  for (Step& s : plan.steps) {
    if (s.kind != StepKind::Kernel || !s.kernel) continue;
    const ir::Node& n = g.nodes[s.node];
    constants.assign(n.inputs.size(), nullptr);
    views.assign(n.inputs.size(), Array());
    bool any = false;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const ir::Node& in = g.nodes[n.inputs[k]];
      if (in.is("constant") && in.constant && in.constant->on_host()) {
        constants[k] = &*in.constant;
        any = true;
        continue;
      }
      // A view of a host constant on the host (a transposed weight): the kernel prepares from
      // the view the run computes (ir::apply_view, the same offset and strides), so it need
      // not copy the weight into a transposed constant first.
      if (!in.op->has(ir::kView) || in.inputs.size() != 1) continue;
      const ir::Node& src = g.nodes[in.inputs[0]];
      if (!src.is("constant") || !src.constant || !src.constant->on_host() ||
          in.device != src.device)
        continue;
      if (std::optional<Array> v = ir::apply_view(in, *src.constant)) {
        views[k] = std::move(*v);
        constants[k] = &views[k];
        any = true;
      }
    }
    if (!any) continue;
    s.prepared = s.kernel->prepare(constants);
    for (size_t k = 0; k < n.inputs.size() && s.prepared; ++k) {
      const int in = n.inputs[k];
      // Only a constant read directly can be paged out (a view's source has other readers).
      if (!constants[k] || views[k].storage || !s.prepared->replaces(k) ||
          ++replaced[in] != readers[in])
        continue;
      const Array& c = *constants[k];
      if (c.storage && !c.storage->owns_host_memory()) host_pageout(c.data(), c.nbytes());
    }
  }
}

int host_index(const std::vector<backend::DevicePtr>& devices) {
  for (size_t i = 0; i < devices.size(); ++i)
    if (devices[i]->is_host()) return int(i);
  return -1;
}

}  // namespace

std::string structural_key(const ir::Graph& g) {
  std::string k;
  k.reserve(g.nodes.size() * 48);
  char buf[24];
  auto num = [&](int64_t v) {  // no temporary string per number
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    k.append(buf, r.ptr);
  };
  for (const ir::Node& n : g.nodes) {
    k += n.op->name;
    k += '(';
    for (int in : n.inputs) {
      num(in);
      k += ',';
    }
    k += "){";
    if (!n.attrs.values().empty()) k += n.attrs.canonical();
    k += "}:(";
    for (int64_t d : n.type.shape) {
      num(d);
      k += ',';
    }
    k += ')';
    k += dtype_name(n.type.dtype);
    if (n.binding >= 0) {
      k += '#';
      num(n.binding);
    }
    if (n.type.weak) k += 'w';
    // Length-prefixed: a hint is untrusted text and must not be able to forge key structure.
    if (!n.device_hint.empty()) k += str("@", n.device_hint.size(), ":", n.device_hint);
    if (n.constant) append_constant(k, *n.constant);
    k += ';';
  }
  k += "out:";
  for (int o : g.outputs) k += std::to_string(o) + ",";
  return k;
}

std::unique_ptr<passes::PassContext> pass_context(std::vector<backend::DevicePtr> devices) {
  return std::make_unique<Context>(std::move(devices));
}

void lower_placed_graph(Plan& plan, ir::Graph g) {
  order_for_concurrency(g, plan.devices);
  std::vector<planner::Target> targets;  // built on the first failure only
  for (int attempt = 0;; ++attempt) {
    std::optional<CompileFailure> f = lower_once(plan, g);
    if (!f) break;
    const ir::Node& n = g.nodes[f->node];
    const backend::Device& dev = *plan.devices[n.device];
    int host = host_index(plan.devices);
    if (dev.is_host() || host < 0 || attempt > int(g.nodes.size())) throw CompileError(f->message);
    // The ladder's compile rung: log it, run this node on the host instead, keep going.
    warn(str("kernel for [", n.op->name, "] failed to compile on ", dev.id(), " (", f->message,
             "); running it on ", plan.devices[host]->id()));
    counters().device_fallbacks++;
    if (targets.empty())
      for (const auto& d : plan.devices)
        targets.push_back({d, false, planner::default_profile(*d), -1});
    planner::reroute(g, f->node, host, targets, str("compile failed on ", dev.id(), ": rerouted"));
  }
  plan.graph = std::move(g);
  prepare_steps(plan);
  group_concurrent_steps(plan);
}

std::string device_key() {
  std::string k;
  for (const std::string& id : backend::enabled_device_ids()) {
    backend::DevicePtr d = backend::find_device(id);
    k += id;
    if (d) k += "/" + d->config_key();
    k += ",";
  }
  return k + "|";
}

std::shared_ptr<const Plan> compile(ir::Graph g, const CompileOptions& opts) {
  std::string key;
  bool cacheable = opts.use_plan_cache && !opts.keep_pass_dumps && opts.run_passes &&
                   opts.plan_memory && opts.exclude_devices.empty();
  if (cacheable) {
    key = device_key() + structural_key(g);
    PlanCache& pc = plan_cache();
    std::lock_guard<std::mutex> lock(pc.mu);
    auto it = pc.index.find(key);
    if (it != pc.index.end()) {
      pc.lru.splice(pc.lru.begin(), pc.lru, it->second);
      counters().plan_cache_hits++;
      return it->second->second;
    }
  }
  counters().plan_cache_misses++;

  auto plan = std::make_shared<Plan>();
  auto* dumps = opts.keep_pass_dumps ? &plan->pass_dumps : nullptr;
  // Value-shaped nodes with unknown extents run through engine::run_segmented, never as one plan.
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (const ir::Node& n = g.nodes[i]; n.op && n.op->has(ir::kValueShaped))
      if (const ir::AttrValue* e = n.attrs.find("extent"); !e || std::get<int64_t>(*e) < 0)
        throw ValidationError(str("[compile] node ", i, " (", n.op->name,
                                  ") has a value-dependent shape: the graph runs in segments "
                                  "(LoadedGraph::run), it has no single plan"));
  ir::validate(g, opts.reinfer);
  if (opts.run_passes) passes::run_passes(passes::pipeline(), g, *pass_context(), dumps);

  std::vector<planner::Target> targets = planner::targets();
  std::erase_if(targets, [&](const planner::Target& t) {
    return !t.device->is_host() &&
           std::find(opts.exclude_devices.begin(), opts.exclude_devices.end(), t.device->id()) !=
               opts.exclude_devices.end();
  });
  for (const auto& t : targets) plan->devices.push_back(t.device);
  planner::place(g, targets);
  if (opts.run_passes)
    passes::run_passes(passes::device_pipeline(), g, *pass_context(plan->devices), dumps);
  planner::estimate(g, targets);

  lower_placed_graph(*plan, std::move(g));
  plan->key = key;
  if (opts.plan_memory) {
    plan_memory(*plan);
    const char* verify = std::getenv("NEF_VERIFY_PLANS");
    if (verify && std::strcmp(verify, "1") == 0) verify_memory_plan(*plan);
  }
  if (cacheable) {
    PlanCache& pc = plan_cache();
    std::lock_guard<std::mutex> lock(pc.mu);
    if (!pc.index.count(key)) {
      pc.lru.emplace_front(key, plan);
      pc.index[key] = pc.lru.begin();
      if (pc.lru.size() > kPlanCacheCapacity) {
        pc.index.erase(pc.lru.back().first);
        pc.lru.pop_back();
      }
    }
  }
  return plan;
}

std::string describe(const Plan& plan) {
  const ir::Graph& g = plan.graph;
  int kernels = 0, inputs = 0, constants = 0, copies = 0;
  int64_t constant_bytes = 0;
  std::string body;
  for (const Step& st : plan.steps) {
    const ir::Node& n = g.nodes[st.node];
    if (st.kind == StepKind::Constant) {  // weights: summarized, not listed
      ++constants;
      constant_bytes += int64_t(numel(n.type.shape) * int64_t(dtype_size(n.type.dtype)));
      continue;
    }
    body += str("  [", st.node, "] ", n.op->name);
    if (!n.name.empty()) body += str(" '", n.name, "'");
    if (st.kind != StepKind::Input) {
      body += "(";
      for (size_t k = 0; k < n.inputs.size(); ++k) body += str(k ? ", " : "", "%", n.inputs[k]);
      body += ")";
    }
    body += str(" -> ", shape_str(n.type.shape), " ", dtype_name(n.type.dtype));
    if (st.kind == StepKind::Input) {
      ++inputs;
    } else {
      st.kind == StepKind::Copy ? ++copies : ++kernels;
      body += str("  on ", plan.devices[n.device]->id());
      if (st.kernel) body += str("  kernel ", st.kernel->name());
      if (st.kind == StepKind::Kernel || st.kind == StepKind::Copy)
        body += str("  est ", int64_t(st.predicted_seconds * 1e9) / 1000.0, " us");
      if (st.grouped()) body += str("  concurrent [", st.group_first, "..", st.group_last, "]");
      if (!n.placement_reason.empty()) body += str("  (", n.placement_reason, ")");
    }
    body += "\n";
  }
  std::string devs;
  for (const auto& d : plan.devices) devs += str(devs.empty() ? "" : ", ", d->id());
  std::string s = str("plan: ", kernels, " steps on ", devs, ", ", copies, " transfers, ", inputs,
                      " inputs, ", constants, " constants (", constant_bytes, " bytes); predicted ",
                      int64_t(plan.predicted_seconds * 1e9) / 1000.0, " us\n", body);
  return s + describe_memory(plan);
}

FrontEntry find_front_plan(uint64_t h0, uint64_t h1) {
  FrontCache& fc = front_cache();
  std::lock_guard<std::mutex> lock(fc.mu);
  auto it = fc.index.find({h0, h1});
  if (it == fc.index.end()) return {};
  fc.lru.splice(fc.lru.begin(), fc.lru, it->second);
  return it->second->second;
}

void store_front_plan(uint64_t h0, uint64_t h1, FrontEntry e) {
  FrontCache& fc = front_cache();
  std::lock_guard<std::mutex> lock(fc.mu);
  Hash128 k{h0, h1};
  auto it = fc.index.find(k);
  if (it != fc.index.end()) {  // a collision (verification failed): the newer graph wins
    it->second->second = std::move(e);
    fc.lru.splice(fc.lru.begin(), fc.lru, it->second);
    return;
  }
  fc.lru.emplace_front(k, std::move(e));
  fc.index[k] = fc.lru.begin();
  if (fc.lru.size() > kPlanCacheCapacity) {
    fc.index.erase(fc.lru.back().first);
    fc.lru.pop_back();
  }
}

void clear_caches() {
  {
    FrontCache& fc = front_cache();
    std::lock_guard<std::mutex> lock(fc.mu);
    fc.lru.clear();
    fc.index.clear();
  }
  {
    PlanCache& pc = plan_cache();
    std::lock_guard<std::mutex> lock(pc.mu);
    pc.lru.clear();
    pc.index.clear();
  }
  clear_kernel_cache();
}

int64_t evict_device_memory() {
  int64_t freed = 0;
  std::vector<std::shared_ptr<const Plan>> plans;
  {
    PlanCache& pc = plan_cache();
    std::lock_guard<std::mutex> lock(pc.mu);
    for (const auto& [k, p] : pc.lru) plans.push_back(p);
  }
  {
    FrontCache& fc = front_cache();
    std::lock_guard<std::mutex> lock(fc.mu);
    for (const auto& [k, e] : fc.lru) plans.push_back(e.plan);
  }
  for (const auto& p : plans) freed += p->state->evict();
  freed += runtime::evict_idle_arenas();
  for (const auto& d : backend::probed_devices()) freed += d->trim();
  counters().cache_evictions++;
  return freed;
}

size_t plan_cache_size() {
  PlanCache& pc = plan_cache();
  std::lock_guard<std::mutex> lock(pc.mu);
  return pc.lru.size();
}
size_t kernel_cache_size() { return kernel_cache_entries(); }

}  // namespace nef::compiler
