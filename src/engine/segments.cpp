// Running a graph with unresolved value-shaped nodes segment by segment (engine/segments.h).
#include "engine/segments.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <string>

#include "compiler/compiler.h"
#include "engine/execute.h"
#include "nef/error.h"

namespace nef::engine {

bool unresolved(const ir::Node& n) {
  // cond_select (an If with a run-time condition) is no kValueShaped op: its type is known and
  // its kernel can choose at run time, but resolving it first skips the branch not taken.
  if (!n.op || (!n.op->has(ir::kValueShaped) && n.op->name != "cond_select")) return false;
  const ir::AttrValue* e = n.attrs.find("extent");
  return !e || std::get<int64_t>(*e) < 0;
}

bool has_unresolved(const ir::Graph& g) {
  for (const ir::Node& n : g.nodes)
    if (unresolved(n)) return true;
  return false;
}

namespace {

ir::Node input_node(const std::string& name, const ir::TensorType& type, int binding) {
  ir::Node n;
  n.op = &ir::get_op("input");
  n.type = type;
  n.type.weak = false;
  n.name = name;
  n.binding = binding;
  n.attrs.set("name", name);
  n.attrs.set("shape", std::vector<int64_t>(type.shape.begin(), type.shape.end()));
  n.attrs.set("dtype", std::string(dtype_name(type.dtype)));
  return n;
}

}  // namespace

std::vector<Array> run_segmented(const ir::Graph& g, std::vector<Array> bindings) {
  ir::Graph cur = g;
  std::vector<std::optional<Array>> result(g.outputs.size());
  std::vector<size_t> out_pos(g.outputs.size());  // cur.outputs[k] is result[out_pos[k]]
  std::iota(out_pos.begin(), out_pos.end(), size_t{0});
  for (int seg = 0;; ++seg) {
    const size_t n = cur.nodes.size();
    std::vector<bool> dyn(n, false);
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
      dyn[i] = unresolved(cur.nodes[i]);
      for (int in : cur.nodes[i].inputs) dyn[i] = dyn[i] || dyn[size_t(in)];
      any = any || dyn[i];
    }
    if (!any) {
      std::vector<Array> outs;
      if (!cur.outputs.empty()) outs = execute(compiler::compile(std::move(cur)), bindings);
      for (size_t k = 0; k < outs.size(); ++k) result[out_pos[k]] = std::move(outs[k]);
      break;
    }
    // Segment: the ready extents (their companions read the op's first max_inputs inputs) and
    // only what they need; everything else waits for the next segment, where it may be dead
    // (an If's branch not taken) or fuse with what follows.
    ir::Graph s = cur;
    s.outputs.clear();
    s.output_names.clear();
    std::vector<int> ready;  // node indices in cur
    std::vector<bool> in_s(n, false);
    std::vector<int> stack;
    for (size_t i = 0; i < n; ++i) {
      const ir::Node& node = cur.nodes[i];
      if (!unresolved(node)) continue;
      bool is_ready = true;
      for (int in : node.inputs) is_ready = is_ready && !dyn[size_t(in)];
      if (!is_ready) continue;
      ir::Node e;
      e.op = &ir::get_op(node.op->name + "_extent");
      e.attrs = node.attrs;
      const size_t arity = std::min(node.inputs.size(), size_t(e.op->max_inputs));
      e.inputs.assign(node.inputs.begin(), node.inputs.begin() + long(arity));
      e.device_hint = node.device_hint;
      e.type = {{}, DType::Int64};
      stack.insert(stack.end(), e.inputs.begin(), e.inputs.end());
      s.nodes.push_back(std::move(e));
      s.outputs.push_back(int(s.nodes.size() - 1));
      s.output_names.push_back(str("extent.", i));
      ready.push_back(int(i));
    }
    while (!stack.empty()) {
      const int v = stack.back();
      stack.pop_back();
      if (in_s[size_t(v)]) continue;
      in_s[size_t(v)] = true;
      stack.insert(stack.end(), cur.nodes[size_t(v)].inputs.begin(),
                   cur.nodes[size_t(v)].inputs.end());
    }
    // Values of the segment the rest reads: they become bound inputs of the next segment
    // (constants and graph inputs are kept as they are).
    std::vector<bool> used_later(n, false);
    for (size_t i = 0; i < n; ++i)
      if (!in_s[i])
        for (int in : cur.nodes[i].inputs) used_later[size_t(in)] = true;
    std::vector<int> cut;
    for (size_t i = 0; i < n; ++i) {
      const ir::Node& node = cur.nodes[i];
      if (in_s[i] && used_later[i] && !node.is("constant") && !node.is("input")) {
        cut.push_back(int(i));
        s.outputs.push_back(int(i));
        s.output_names.push_back(str("cut.", i));
      }
    }
    std::vector<size_t> static_outs;  // positions in cur.outputs computed by this segment
    for (size_t k = 0; k < cur.outputs.size(); ++k)
      if (in_s[size_t(cur.outputs[k])]) {
        static_outs.push_back(k);
        s.outputs.push_back(cur.outputs[k]);
        s.output_names.push_back(str("out.", k));
      }
    ir::remove_dead(s);
    std::vector<Array> outs = execute(compiler::compile(std::move(s)), bindings);

    // The rest, over kept constants/inputs and the cut values as new inputs.
    ir::Graph r;
    r.input_names = cur.input_names;
    std::vector<int> remap(n, -1);
    size_t at = ready.size();
    for (size_t i = 0; i < n; ++i) {
      const ir::Node& node = cur.nodes[i];
      const bool keep_as_is =
          !in_s[i] || node.is("input") || (node.is("constant") && used_later[i]);
      if (keep_as_is) {
        r.nodes.push_back(node);
        for (int& in : r.nodes.back().inputs) in = remap[size_t(in)];
      } else if (used_later[i]) {
        const int binding = int(r.input_names.size());
        r.input_names.push_back(str("segment", seg, ".", i));
        r.nodes.push_back(input_node(r.input_names.back(), node.type, binding));
        bindings.push_back(std::move(outs[at++]));
      } else {
        continue;
      }
      r.nodes.back().device = -1;
      remap[i] = int(r.nodes.size() - 1);
    }
    for (size_t j = 0; j < ready.size(); ++j) {
      const Array e = to_host(outs[j]);
      ir::Node& node = r.nodes[size_t(remap[size_t(ready[j])])];
      const int64_t extent = *e.data_as<int64_t>();
      node.attrs.set("extent", extent);
      // A branch choice: only the chosen input stays live (the other branch is dead code).
      if (node.is("cond_select"))
        node.inputs = {node.inputs[0], node.inputs[extent ? 1 : 2], node.inputs[extent ? 1 : 2]};
    }
    for (size_t j = 0; j < static_outs.size(); ++j)
      result[out_pos[static_outs[j]]] = std::move(outs[at + j]);
    // Types follow the concrete extents (a disagreement is the user's ShapeError).
    for (ir::Node& node : r.nodes)
      node.type = ir::check_and_infer(*node.op, r.input_types(node), node.attrs);
    std::vector<size_t> pos;
    for (size_t k = 0; k < cur.outputs.size(); ++k)
      if (!in_s[size_t(cur.outputs[k])]) {
        r.outputs.push_back(remap[size_t(cur.outputs[k])]);
        r.output_names.push_back(cur.output_names[k]);
        pos.push_back(out_pos[k]);
      }
    out_pos = std::move(pos);
    cur = std::move(r);
    ir::remove_dead(cur);
  }
  std::vector<Array> out;
  out.reserve(result.size());
  for (auto& a : result) out.push_back(std::move(*a));
  return out;
}

}  // namespace nef::engine
