#include "compiler/plan_json.h"

#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "compiler/memory_plan.h"
#include "ir/ops/fused_program.h"
#include "nef/error.h"

namespace nef::compiler {
namespace {

using nlohmann::json;
using runtime::Plan;
using runtime::Step;
using runtime::StepKind;

std::string program_of(const ir::Node& n) {
  const ir::AttrValue* v = n.attrs.find("program");
  if (!v) return {};
  const auto* text = std::get_if<std::string>(v);
  return text ? *text : std::string();
}

// Fused kernels carry a fused_elementwise program (ir/ops/fused_program.h): fused_elementwise
// over its inputs, matmul_epilogue over the matmul result (i0) and its extra operands.
bool has_program(const ir::Node& n) { return n.is("fused_elementwise") || n.is("matmul_epilogue"); }

}  // namespace

namespace {

std::string device_name(const Plan& p, int device) {
  if (device < 0 || size_t(device) >= p.devices.size()) return "none";
  return p.devices[device]->id();
}

json plan_to_json(const Plan& p) {
  const ir::Graph& g = p.graph;
  json kernels = json::array(), transfers = json::array();
  int step_index = 0;
  for (const Step& st : p.steps) {
    int index = step_index++;
    const ir::Node& n = g.nodes[st.node];
    if (st.kind == StepKind::Copy)
      transfers.push_back(
          {{"step", index},
           {"node", st.node},
           {"from", device_name(p, g.nodes[n.inputs[0]].device)},
           {"to", device_name(p, n.device)},
           {"bytes", int64_t(numel(n.type.shape)) * int64_t(dtype_size(n.type.dtype))},
           {"predicted_seconds", st.predicted_seconds}});
    else if (!st.kernel) continue;  // inputs, constants and views: nothing runs
    json k;
    k["step"] = index;
    k["node"] = st.node;
    k["op"] = n.op->name;
    k["kernel"] = st.kernel ? st.kernel->name() : runtime::copy_name(p, st);
    k["device"] = device_name(p, n.device);
    k["shape"] = std::vector<int64_t>(n.type.shape.begin(), n.type.shape.end());
    k["dtype"] = dtype_name(n.type.dtype);
    k["name"] = n.name;
    k["inputs"] = n.inputs;
    k["nodes"] = ir::covered_ops(g, n);
    if (has_program(n)) k["program"] = program_of(n);
    k["placement_reason"] = n.placement_reason.str();
    k["predicted_seconds"] = st.predicted_seconds;
    if (int64_t ws = st.kernel ? st.kernel->workspace_bytes() : 0) k["workspace_bytes"] = ws;
    if (st.grouped()) k["concurrent"] = {st.group_first, st.group_last};
    kernels.push_back(std::move(k));
  }

  const runtime::MemoryPlan& m = p.memory;
  json mem;
  mem["enabled"] = m.enabled;
  mem["planned_peak_bytes"] = m.planned_peak_bytes;
  mem["naive_bytes"] = m.naive_bytes;
  mem["inplace_count"] = m.inplace_count;
  json arenas = json::array();
  for (size_t d = 0; d < m.arena_bytes.size(); ++d)
    arenas.push_back({{"device", device_name(p, int(d))}, {"bytes", m.arena_bytes[d]}});
  mem["arenas"] = std::move(arenas);
  json values = json::array();
  if (m.enabled) {
    for (const Step& st : p.steps) {
      int v = st.node;
      if (size_t(v) >= m.offset.size()) continue;
      const ir::Node& n = g.nodes[v];
      if (m.offset[v] >= 0) {
        json e{{"node", v},
               {"op", n.op->name},
               {"device", device_name(p, n.device)},
               {"offset", m.offset[v]},
               {"bytes", m.bytes[v]},
               {"live_begin", m.live_begin[v]},
               {"live_end", m.live_end[v]}};
        if (m.inplace_of[v] >= 0) e["inplace_of"] = m.inplace_of[v];
        values.push_back(std::move(e));
      } else if (m.alias_of[v] >= 0 && m.offset[m.alias_of[v]] >= 0) {
        values.push_back({{"node", v}, {"op", n.op->name}, {"view_of", m.alias_of[v]}});
      }
    }
  }
  mem["values"] = std::move(values);

  json out;
  json devices = json::array();
  for (const auto& d : p.devices) devices.push_back(d->id());
  out["devices"] = std::move(devices);
  out["predicted_seconds"] = p.predicted_seconds;
  out["num_nodes"] = g.nodes.size();
  out["num_kernels"] = kernels.size();
  out["kernels"] = std::move(kernels);
  out["transfers"] = std::move(transfers);
  out["memory"] = std::move(mem);
  return out;
}

}  // namespace

std::string describe_json(const Plan& plan, int indent) { return plan_to_json(plan).dump(indent); }

std::string describe_kernels_text(const Plan& p) {
  const ir::Graph& g = p.graph;
  int kernels = 0;
  for (const Step& st : p.steps) kernels += st.kernel != nullptr || st.kind == StepKind::Copy;
  std::string s = str("kernels: ", kernels, " (of ", g.nodes.size(),
                      " nodes after optimization), in execution order\n");
  for (const Step& st : p.steps) {
    const ir::Node& n = g.nodes[st.node];
    if (st.kind == StepKind::Copy) {
      s += str("  [", st.node, "] copy [", n.inputs[0], "] ",
               device_name(p, g.nodes[n.inputs[0]].device), " -> ", device_name(p, n.device), "  ",
               shape_str(n.type.shape), " ", dtype_name(n.type.dtype), "  est ",
               int64_t(st.predicted_seconds * 1e9) / 1000.0, " us\n");
      continue;
    }
    if (!st.kernel) continue;
    s += str("  [", st.node, "] ", n.op->name);
    if (!n.name.empty()) s += str(" '", n.name, "'");
    s += str(" -> ", shape_str(n.type.shape), " ", dtype_name(n.type.dtype), "  on ",
             device_name(p, n.device), "  kernel ", st.kernel->name(), "  est ",
             int64_t(st.predicted_seconds * 1e9) / 1000.0, " us");
    if (!n.placement_reason.empty()) s += str("  (", n.placement_reason, ")");
    s += "\n";
    std::string ins;
    for (int in : n.inputs) ins += str(ins.empty() ? "" : ", ", "[", in, "]");
    s += str("      inputs: ", ins.empty() ? std::string("-") : ins, "\n");
    if (has_program(n)) {
      std::string ops;
      for (const std::string& o : ir::covered_ops(g, n)) ops += str(ops.empty() ? "" : " ", o);
      s += str("      covers ", ops, "\n      program ", program_of(n), "\n");
    }
  }
  return s + describe_memory(p);
}

}  // namespace nef::compiler
