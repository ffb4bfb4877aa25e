#include <charconv>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>

#include "compiler/kernel_cache.h"
#include "nef/error.h"
#include "compiler/plan.h"
#include "passes/pass.h"
#include "planner/planner.h"
#include "runtime/stats.h"

namespace nef::compiler {
using nef::str;
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
  static PlanCache c;
  return c;
}

struct Hash128 {
  uint64_t h0, h1;
  bool operator==(const Hash128& o) const { return h0 == o.h0 && h1 == o.h1; }
};
struct Hash128Hash {
  size_t operator()(const Hash128& h) const { return size_t(h.h0 ^ (h.h1 * 0x9e3779b97f4a7c15ull)); }
};
struct FrontCache {
  std::mutex mu;
  std::list<std::pair<Hash128, FrontEntry>> lru;  // front = newest
  std::unordered_map<Hash128, decltype(lru)::iterator, Hash128Hash> index;
};
FrontCache& front_cache() {
  static FrontCache c;
  return c;
}

void append_constant(std::string& k, const Array& a) {
  size_t bytes = a.nbytes();
  if (bytes <= kKeyByValueBytes) {
    Array c = a.contiguous();
    static const char* hex = "0123456789abcdef";
    const auto* p = static_cast<const unsigned char*>(c.data());
    k += "v:";
    for (size_t i = 0; i < bytes; ++i) {
      k += hex[p[i] >> 4];
      k += hex[p[i] & 15];
    }
  } else {
    k += str("s:", a.storage->id(), "+", a.offset, "/");
    for (int64_t s : a.strides) k += str(s, ",");
  }
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

void lower_placed_graph(Plan& plan, ir::Graph g) {
  // Kernels, and for each value the last step that reads it (outputs are never released).
  std::vector<int> last_use(g.nodes.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int in : g.nodes[i].inputs) last_use[in] = static_cast<int>(i);
  std::vector<bool> is_output(g.nodes.size(), false);
  for (int o : g.outputs) is_output[o] = true;
  plan.steps.resize(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    Step& s = plan.steps[i];
    s.node = static_cast<int>(i);
    if (!n.is("input") && !n.is("constant")) {
      bool miss = false;
      s.kernel = get_kernel(*plan.backends[n.device], n, g, &miss);
      plan.kernels_compiled += miss;
    }
  }
  for (size_t v = 0; v < g.nodes.size(); ++v)
    if (!is_output[v] && last_use[v] >= 0) plan.steps[last_use[v]].release.push_back(int(v));
  plan.graph = std::move(g);
}

std::shared_ptr<const Plan> compile(ir::Graph g, const CompileOptions& opts) {
  std::string key;
  bool cacheable =
      opts.use_plan_cache && !opts.keep_pass_dumps && opts.run_passes && opts.plan_memory;
  auto backends = backend::enabled_backends();
  if (cacheable) {
    for (const auto& b : backends) key += b->name() + ",";
    key += structural_key(g);
    PlanCache& pc = plan_cache();
    std::lock_guard<std::mutex> lock(pc.mu);
    auto it = pc.index.find(key);
    if (it != pc.index.end()) {
      pc.lru.splice(pc.lru.begin(), pc.lru, it->second);
      runtime::stats().plan_cache_hits++;
      return it->second->second;
    }
  }
  runtime::stats().plan_cache_misses++;

  auto plan = std::make_shared<Plan>();
  ir::validate(g);
  if (opts.run_passes) passes::run_pipeline(g, opts.keep_pass_dumps ? &plan->pass_dumps : nullptr);
  plan->backends = std::move(backends);
  planner::assign_devices(g, plan->backends);

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
  int kernels = 0, inputs = 0, constants = 0;
  int64_t constant_bytes = 0;
  std::string body;
  for (const Step& st : plan.steps) {
    const ir::Node& n = g.nodes[st.node];
    if (n.is("constant")) {  // weights: summarized, not listed
      ++constants;
      constant_bytes += int64_t(numel(n.type.shape) * int64_t(dtype_size(n.type.dtype)));
      continue;
    }
    body += str("  [", st.node, "] ", n.op->name);
    if (!n.name.empty()) body += str(" '", n.name, "'");
    if (!n.is("input")) {
      body += "(";
      for (size_t k = 0; k < n.inputs.size(); ++k) body += str(k ? ", " : "", "%", n.inputs[k]);
      body += ")";
    }
    body += str(" -> ", shape_str(n.type.shape), " ", dtype_name(n.type.dtype));
    if (n.is("input")) {
      ++inputs;
    } else {
      ++kernels;
      if (n.device >= 0) body += str("  on ", plan.backends[n.device]->name());
      if (st.kernel) body += str("  kernel ", st.kernel->name());
      if (!n.placement_reason.empty()) body += str("  (", n.placement_reason, ")");
    }
    body += "\n";
  }
  std::string s = str("plan: ", kernels, " kernels, ", inputs, " inputs, ", constants,
                      " constants (", constant_bytes, " bytes)\n", body);
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

size_t plan_cache_size() {
  PlanCache& pc = plan_cache();
  std::lock_guard<std::mutex> lock(pc.mu);
  return pc.lru.size();
}
size_t kernel_cache_size() { return kernel_cache_entries(); }

}  // namespace nef::compiler
