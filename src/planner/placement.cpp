// Placement: list scheduling over the cost model. Nodes are visited in topological order; each
// compute node goes to the target where it would finish first given when its inputs are ready
// there (transfers included) and when that target is free, so independent branches spread over
// devices while chains stay where their data is. Hints and fallback-only targets narrow the
// candidates first; a node no candidate supports is an UnsupportedError.
#include <algorithm>
#include <cctype>

#include "backends/memory_limit.h"
#include "backends/registry.h"
#include "nef/error.h"
#include "planner/planner.h"

namespace nef::planner {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The targets a hint names: by device id, else by backend, else by kind (as NEF_DEVICES
// resolves names), so "cpu" is the host even when an OpenCL device is a CPU too.
std::vector<int> hinted(const std::string& hint, const std::vector<Target>& t) {
  std::string h = lower(hint);
  std::vector<int> out;
  for (int pass = 0; pass < 3 && out.empty(); ++pass)
    for (size_t i = 0; i < t.size(); ++i) {
      const backend::DeviceInfo& d = t[i].device->info();
      bool m = pass == 0   ? h == lower(d.id)
               : pass == 1 ? h == lower(d.backend)
                           : !t[i].device->is_host() && h == lower(d.kind);
      if (m) out.push_back(int(i));
    }
  return out;
}

int host_target(const std::vector<Target>& t) {
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i].device->is_host()) return int(i);
  return 0;
}

double value_bytes(const ir::Node& n) {
  return double(numel(n.type.shape)) * double(dtype_size(n.type.dtype));
}

std::string ms(double s) { return str(int64_t(s * 1e6) / 1000.0, " ms"); }

}  // namespace

std::vector<Target> targets() {
  backend::PlacementDevices pd = backend::placement_devices();
  int choices = 0;
  for (bool f : pd.fallback_only) choices += !f;
  std::vector<Target> out;
  for (size_t i = 0; i < pd.devices.size(); ++i) {
    Target t;
    t.device = pd.devices[i];
    t.fallback_only = pd.fallback_only[i];
    // Profiles matter only when the cost model chooses between devices.
    t.profile = choices > 1 ? calibrated_profile(*t.device) : known_profile(*t.device);
    if (!t.device->is_host()) {
      int64_t limit = backend::memory_limit(t.device->id(), t.device->info().backend);
      int64_t mem = t.device->info().memory_bytes;
      t.memory_budget = limit >= 0 && (mem <= 0 || limit < mem) ? limit : mem;
    }
    out.push_back(std::move(t));
  }
  return out;
}

void place(ir::Graph& g, const std::vector<Target>& targets) {
  NEF_CHECK(!targets.empty(), "[planner] no target");
  const int n = static_cast<int>(g.nodes.size());
  const int host = host_target(targets);
  const int nt = static_cast<int>(targets.size());
  constexpr int kDeferred = -2;  // constants: placed with their readers by insert_transfers
  std::vector<double> finish(n, 0.0), avail(nt, 0.0);
  std::vector<double> constant_bytes(nt, 0.0);
  std::vector<int> users(n, 0);
  for (const ir::Node& node : g.nodes)
    for (int in : node.inputs) ++users[in];
  // A fusable elementwise op whose only-used producer (a matmul of its shape, or another
  // fusable elementwise op) sits on device t will be fused into it there (the device pipeline):
  // on t it costs nothing but the producer's memory traffic it saves.
  auto fuses_on = [&](const ir::Node& node, int t) {
    if (!node.op->has(ir::kFusable) || !node.op->has(ir::kElementwise)) return false;
    for (int in : node.inputs) {
      const ir::Node& p = g.nodes[in];
      if (p.device != t || users[in] != 1) continue;
      if ((p.op->has(ir::kFusable) && p.op->has(ir::kElementwise)) ||
          (p.is("matmul") && p.type == node.type))
        return true;
    }
    return false;
  };

  // Reused across nodes (no allocation per node once they have grown).
  std::vector<int> supported, cand, fits;
  std::string why, over, alternatives;
  for (int v = 0; v < n; ++v) {
    ir::Node& node = g.nodes[v];
    node.predicted_seconds = 0;
    if (node.is("constant")) {
      node.device = kDeferred;
      node.placement_reason = "constant: on the device that reads it";
      continue;
    }
    if (node.is("input")) {
      node.device = host;
      node.placement_reason = "input: delivered in host memory";
      if (!node.device_hint.empty())
        for (int t : hinted(node.device_hint, targets)) {
          node.device = t;
          node.placement_reason = str("input: resident on ", targets[t].device->id());
          break;
        }
      continue;
    }
    if (node.op->has(ir::kView)) {
      int in = node.inputs[0];
      node.device = g.nodes[in].device == kDeferred ? host : g.nodes[in].device;
      node.placement_reason = "view: where its input lives";
      finish[v] = finish[in];
      continue;
    }

    // Candidates: supported; hinted targets when the hint is usable; fallback-only targets only
    // when nothing else supports the node.
    supported.clear();
    for (int t = 0; t < nt; ++t)
      if (targets[t].device->supports(node, g)) supported.push_back(t);
    if (supported.empty())
      throw UnsupportedError(str("[", node.op->name, "] no enabled device supports ",
                                 ir::types_str(g.input_types(node)), " -> ",
                                 shape_str(node.type.shape), " ", dtype_name(node.type.dtype)));
    cand.clear();
    why.clear();
    if (!node.device_hint.empty()) {
      for (int t : hinted(node.device_hint, targets))
        if (std::find(supported.begin(), supported.end(), t) != supported.end()) cand.push_back(t);
      if (!cand.empty()) why = str("device hint '", node.device_hint, "'");
      else why = str("hint '", node.device_hint, "' unavailable; ");
    }
    if (cand.empty()) {
      for (int t : supported)
        if (!targets[t].fallback_only) cand.push_back(t);
      if (cand.empty()) {
        cand = supported;
        std::string others;
        for (int t = 0; t < nt; ++t)
          if (!targets[t].fallback_only)
            others += str(others.empty() ? "" : ", ", targets[t].device->id());
        why += str("fallback: ", others.empty() ? std::string("no other device") : others,
                   " cannot run it");
      }
    }
    // Memory budget: what the node reads and writes, plus the constants already placed there.
    double io = value_bytes(node);
    for (int in : node.inputs) io += value_bytes(g.nodes[in]);
    fits.clear();
    over.clear();
    for (int t : cand) {
      if (targets[t].memory_budget < 0 ||
          constant_bytes[t] + io <= double(targets[t].memory_budget))
        fits.push_back(t);
      else over += str(over.empty() ? "" : ", ", targets[t].device->id());
    }
    if (fits.empty()) fits.push_back(host);
    if (!over.empty()) why += str(why.empty() ? "" : "; ", "over the memory budget of ", over);

    int best = -1;
    double best_finish = 0, best_local = -1, best_exec = 0;
    alternatives.clear();
    for (int t : fits) {
      const Target& tg = targets[t];
      double ready = 0, local = 0;
      for (int in : node.inputs) {
        const ir::Node& src = g.nodes[in];
        if (src.device == kDeferred || src.device == t) {
          ready = std::max(ready, finish[in]);
          local += value_bytes(src);
          continue;
        }
        const Target& from = targets[src.device];
        ready = std::max(ready, finish[in] + transfer_seconds(value_bytes(src), from.profile,
                                                              from.device->is_host(), tg.profile,
                                                              tg.device->is_host()));
      }
      // With a single target nothing is chosen: the estimate is left to estimate(), which
      // runs after fusion anyway, rather than computed twice.
      const bool fused = nt > 1 && fuses_on(node, t);
      double exec = fused || nt == 1 ? 0.0 : node_seconds(node, g, tg.profile);
      double fin = fused ? ready : std::max(ready, avail[t]) + exec;
      if (fits.size() > 1)
        alternatives += str(alternatives.empty() ? "" : ", ", tg.device->id(), " ", ms(fin));
      bool better = best < 0 || fin < best_finish * (1 - 1e-9) ||
                    (fin <= best_finish * (1 + 1e-9) && local > best_local);
      if (better) {
        best = t;
        best_finish = fin;
        best_local = local;
        best_exec = exec;
      }
    }
    node.device = best;
    node.predicted_seconds = best_exec;
    finish[v] = best_finish;
    avail[best] = best_finish;
    for (int in : node.inputs)
      if (g.nodes[in].is("constant")) constant_bytes[best] += value_bytes(g.nodes[in]);
    if (fits.size() > 1)
      why += str(why.empty() ? "" : "; ", "earliest finish (", alternatives, ")");
    // The usual reasons are literals: held by address, not copied per node.
    if (!why.empty()) node.placement_reason = why;
    else if (supported.size() == 1) node.placement_reason = "the only device that supports it";
    else node.placement_reason = "the only candidate";
  }
  // A constant takes the device of its first reader (insert_transfers clones it for the others);
  // one read nowhere (a graph output) stays on the host.
  std::vector<bool> settled(n, false);
  std::vector<ir::Note> read_on(nt);  // one text per target, shared by its constants
  for (int v = 0; v < n; ++v)
    for (int in : g.nodes[v].inputs)
      if (g.nodes[in].device == kDeferred && !settled[in]) {
        settled[in] = true;
        const int t = g.nodes[v].device;
        g.nodes[in].device = t;
        if (read_on[t].empty())
          read_on[t] = str("constant: on ", targets[t].device->id(), ", where it is read");
        g.nodes[in].placement_reason = read_on[t];
      }
  for (ir::Node& node : g.nodes)
    if (node.device == kDeferred) node.device = host;
  insert_transfers(g, targets);
}

void estimate(ir::Graph& g, const std::vector<Target>& targets) {
  for (ir::Node& n : g.nodes)
    if (!n.is("copy") && n.device >= 0 && size_t(n.device) < targets.size())
      n.predicted_seconds = node_seconds(n, g, targets[n.device].profile);
}

void reroute(ir::Graph& g, int v, int to, const std::vector<Target>& targets,
             const std::string& reason) {
  ir::Node& node = g.nodes.at(v);
  node.device = to;
  node.placement_reason = reason;
  node.predicted_seconds = node_seconds(node, g, targets[to].profile);
  remove_transfers(g);
  insert_transfers(g, targets);
}

}  // namespace nef::planner
