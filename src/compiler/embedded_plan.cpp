// Embedded plans: the integrity hash and the plan built from a verified embedded graph.
#include "compiler/embedded_plan.h"

#include <cstdlib>
#include <cstring>

#include "backends/registry.h"
#include "common/session.h"
#include "compiler/compiler.h"
#include "compiler/memory_plan.h"
#include "nef/error.h"

namespace nef::compiler {
namespace {

// Two independent 64-bit FNV-1a streams (different offset bases and primes), finalized with a
// splitmix step. Not cryptographic: it detects stale or corrupted plans; safety comes from the
// reader validating the embedded graph like any other graph.
struct Hasher {
  uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
  void add(const void* p, size_t n) {
    const auto* s = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) {
      a = (a ^ s[i]) * 0x100000001b3ull;
      b = (b ^ s[i]) * 0x00000100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
  }
  void add(const std::string& s) {
    uint64_t n = s.size();
    add(&n, sizeof n);  // length-prefixed so concatenations cannot collide
    add(s.data(), s.size());
  }
  static uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  std::string hex() const {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (uint64_t v : {mix(a), mix(b ^ a)})
      for (int sh = 60; sh >= 0; sh -= 4) out += d[(v >> sh) & 15];
    return out;
  }
};

// structural_key keys large constants by storage identity, which differs between processes;
// here every constant is keyed by its bytes instead, and names and bindings are included.
void add_graph(Hasher& h, const ir::Graph& g) {
  ir::Graph shallow = g;  // Arrays share storage: cheap
  for (ir::Node& n : shallow.nodes) n.constant.reset();
  h.add(structural_key(shallow));
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (!n.constant) continue;
    Array c = n.constant->contiguous();
    h.add(str("const", i, ":", shape_str(c.shape), dtype_name(c.dtype)));
    uint64_t nb = c.nbytes();
    h.add(&nb, sizeof nb);
    if (nb) h.add(c.data(), nb);
  }
  for (const auto& s : g.input_names) h.add(s);
  for (const auto& s : g.output_names) h.add(s);
}

}  // namespace

std::string embedded_key_hash(const ir::Graph& source, const ir::Graph& compiled,
                              const std::vector<std::string>& devices) {
  Hasher h;
  h.add(std::string("nef-embedded-plan-v1"));
  h.add(str("container:1"));
  for (const auto& id : backend::enabled_device_ids()) h.add("device:" + id);
  h.add(std::string("|source"));
  add_graph(h, source);
  h.add(std::string("|compiled"));
  add_graph(h, compiled);
  h.add(std::string("|devices"));
  for (const auto& d : devices) h.add(d);
  return h.hex();
}

format::EmbeddedPlanData make_embedded(const ir::Graph& g) {
  // The plan of the graph exactly as written: compile it (passes, placement) and store the result
  // with its devices and the integrity hash the loader recomputes.
  auto plan = compile(g);
  format::EmbeddedPlanData e;
  e.graph = plan->graph;
  for (ir::Node& n : e.graph.nodes) {
    e.devices.push_back(plan->devices.at(n.device)->id());
    n.device = -1;
  }
  e.key_hash = embedded_key_hash(g, e.graph, e.devices);
  return e;
}

std::shared_ptr<const runtime::Plan> plan_from_embedded(const ir::Graph& source, ir::Graph g,
                                                        const std::vector<std::string>& devices) {
  // The executor binds by slot and returns outputs by position: both graphs must agree there,
  // whatever the hash says.
  if (g.input_names != source.input_names)
    throw ValidationError("[embedded_plan] graph inputs differ from the source graph's");
  std::vector<const ir::Node*> src_bind(source.input_names.size(), nullptr);
  for (const ir::Node& n : source.nodes)
    if (n.is("input") && n.binding >= 0 && size_t(n.binding) < src_bind.size())
      src_bind[n.binding] = &n;
  for (const ir::Node& n : g.nodes) {
    if (!n.is("input")) continue;
    if (n.binding < 0 || size_t(n.binding) >= src_bind.size() || !src_bind[n.binding] ||
        src_bind[n.binding]->type.shape != n.type.shape ||
        src_bind[n.binding]->type.dtype != n.type.dtype)
      throw ValidationError(str("[embedded_plan] input binding ", n.binding, " ",
                                shape_str(n.type.shape), " ", dtype_name(n.type.dtype),
                                " does not match the source graph"));
  }
  if (g.outputs.size() != source.outputs.size())
    throw ValidationError(str("[embedded_plan] ", g.outputs.size(), " outputs but the source has ",
                              source.outputs.size()));
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    const ir::TensorType& a = g.nodes.at(g.outputs[k]).type;
    const ir::TensorType& b = source.nodes.at(source.outputs[k]).type;
    if (a.shape != b.shape || a.dtype != b.dtype)
      throw ValidationError(str("[embedded_plan] output ", k, " is ", shape_str(a.shape), " ",
                                dtype_name(a.dtype), " but the source gives ", shape_str(b.shape),
                                " ", dtype_name(b.dtype)));
  }
  if (devices.size() != g.nodes.size())
    throw ValidationError(
        str("[embedded_plan] ", devices.size(), " device names for ", g.nodes.size(), " nodes"));

  auto plan = std::make_shared<runtime::Plan>();
  plan->devices = backend::placement_devices().devices;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    ir::Node& n = g.nodes[i];
    n.device = -1;
    for (size_t d = 0; d < plan->devices.size(); ++d)
      if (plan->devices[d]->id() == devices[i]) n.device = int(d);
    if (n.device < 0)
      throw UnsupportedError(str("[embedded_plan] node ", i, " (", n.op->name,
                                 ") is placed on device '", devices[i], "' which is not enabled"));
    if (!plan->devices[n.device]->supports(n, g))
      throw UnsupportedError(str("[embedded_plan] device ", devices[i], " does not support node ",
                                 i, " (", n.op->name, ") ", shape_str(n.type.shape)));
    if (n.is("copy") && i > 0 && n.inputs.size() == 1 && n.inputs[0] >= 0 &&
        size_t(n.inputs[0]) < i && devices[n.inputs[0]] == devices[i])
      throw ValidationError(str("[embedded_plan] copy node ", i, " stays on ", devices[i]));
    n.placement_reason = "embedded plan";
  }
  // Every value read on another device must come through a copy node.
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (n.is("copy")) continue;
    for (int in : n.inputs)
      if (g.nodes[in].device != n.device)
        throw ValidationError(str("[embedded_plan] node ", i, " (", n.op->name, ") on ", devices[i],
                                  " reads node ", in, " on ", devices[in], " without a transfer"));
  }
  lower_placed_graph(*plan, std::move(g));
  plan_memory(*plan);
  const char* verify = std::getenv("NEF_VERIFY_PLANS");
  if (verify && std::strcmp(verify, "1") == 0) verify_memory_plan(*plan);
  nef::counters().embedded_plans_used++;
  return plan;
}

}  // namespace nef::compiler
