// The graph that finishes a failed run, and batch splitting for the out-of-memory ladder.
#include <algorithm>
#include <optional>

#include "engine/execute.h"
#include "nef/error.h"

namespace nef::engine {
namespace {

// Per input of node v: whether it is sliced along dim 0 when v is computed in halves; nullopt when
// v's rows are not independent (or there is nothing to split).
std::optional<std::vector<bool>> split_plan(const ir::Graph& g, int v) {
  const ir::Node& n = g.nodes[v];
  const Shape& out = n.type.shape;
  if (out.empty() || out[0] < 2 || n.op->has(ir::kView) || n.op->has(ir::kSource)) return {};
  std::vector<ir::TensorType> in = g.input_types(n);
  auto rows = [&](size_t k) {  // input k spans the output's dim 0 (else it broadcasts over it)
    return in[k].shape.size() == out.size() && in[k].shape[0] == out[0];
  };
  std::vector<bool> slice(in.size(), false);
  const std::string& op = n.op->name;
  if (n.op->has(ir::kElementwise)) {
    for (size_t k = 0; k < in.size(); ++k) slice[k] = rows(k);
  } else if (op == "matmul" || op == "matmul_epilogue") {
    // A's rows (or batch) always; B only when it is batched like the output.
    if (in[0].shape.size() != out.size() || in[0].shape.size() < 2) return {};
    slice[0] = true;
    slice[1] = out.size() > 2 && rows(1);
    for (size_t k = 2; k < in.size(); ++k) slice[k] = rows(k);
  } else if (op == "softmax" || op == "log_softmax" || op == "layernorm" || op == "rmsnorm") {
    if (n.attrs.get_int("axis") == 0) return {};
    slice[0] = true;
  } else if (op == "attention") {
    // (batch, heads, seq, dim): batches are independent; a mask spans them or broadcasts.
    for (size_t k = 0; k < in.size(); ++k) slice[k] = rows(k);
    if (!slice[0] || !slice[1] || !slice[2]) return {};
  } else if (op == "conv" || op == "max_pool" || op == "avg_pool") {
    slice[0] = true;  // images are independent; weights and bias are shared
  } else {
    return {};
  }
  if (std::none_of(slice.begin(), slice.end(), [](bool b) { return b; })) return {};
  return slice;
}

int add_node(ir::Graph& g, const std::string& op, std::vector<int> inputs, ir::Attrs attrs) {
  ir::Node n;
  n.op = &ir::get_op(op);
  n.inputs = std::move(inputs);
  n.attrs = std::move(attrs);
  n.type = ir::check_and_infer(*n.op, g.input_types(n), n.attrs);
  g.nodes.push_back(std::move(n));
  return int(g.nodes.size()) - 1;
}

int slice0(ir::Graph& g, int x, int64_t begin, int64_t end) {
  const Shape& s = g.nodes[x].type.shape;
  std::vector<int64_t> starts(s.size(), 0), stops(s.begin(), s.end()), steps(s.size(), 1);
  starts[0] = begin;
  stops[0] = end;
  ir::Attrs a;
  a.set("starts", starts);
  a.set("stops", stops);
  a.set("steps", steps);
  return add_node(g, "slice", {x}, std::move(a));
}

// Emits node `n` (inputs already remapped) as two halves along dim 0 and their concatenation.
int emit_split(ir::Graph& g, const ir::Node& n, const std::vector<bool>& slice) {
  const int64_t rows = n.type.shape[0], half = rows / 2;
  int parts[2];
  for (int h = 0; h < 2; ++h) {
    int64_t b = h ? half : 0, e = h ? rows : half;
    std::vector<int> ins;
    for (size_t k = 0; k < n.inputs.size(); ++k)
      ins.push_back(slice[k] ? slice0(g, n.inputs[k], b, e) : n.inputs[k]);
    ir::Attrs attrs = n.attrs;
    if (n.is("fused_elementwise")) {  // its output shape is an attribute
      std::vector<int64_t> shape(n.type.shape.begin(), n.type.shape.end());
      shape[0] = e - b;
      attrs.set("shape", shape);
    }
    parts[h] = add_node(g, n.op->name, std::move(ins), std::move(attrs));
    g.nodes[parts[h]].device_hint = n.device_hint;
  }
  ir::Attrs cat;
  cat.set("axis", int64_t{0});
  int c = add_node(g, "concat", {parts[0], parts[1]}, std::move(cat));
  g.nodes[c].name = n.name;
  return c;
}

}  // namespace

bool splittable(const ir::Graph& g, int v) { return split_plan(g, v).has_value(); }

ir::Graph remainder(const runtime::Plan& plan, const std::vector<const Array*>& done,
                    std::vector<Array>& bindings, int split_node) {
  const ir::Graph& src = plan.graph;
  const int n = static_cast<int>(src.nodes.size());
  // What the outputs still need: walk back from them, stopping at finished values.
  std::vector<Array> host(n);
  std::vector<bool> finished(n, false), needed(n, false);
  for (int o : src.outputs) needed[o] = true;
  for (int v = n - 1; v >= 0; --v) {
    if (!needed[v]) continue;
    const ir::Node& node = src.nodes[v];
    if (done[v] && !node.is("input") && !node.is("constant")) {
      try {
        // A private copy: the failed run's arena goes back to its plan and may be reused.
        Array h = to_host(*done[v]);  // the failed device may not give it back: recompute then
        host[v] = Array::empty(h.shape, h.dtype);
        copy_strided(h, host[v]);
        finished[v] = true;
        continue;
      } catch (const Error&) {
      }
    }
    for (int in : node.inputs) needed[in] = true;
  }

  ir::Graph g;
  g.input_names = src.input_names;
  g.output_names = src.output_names;
  std::vector<int> remap(n, -1);
  std::optional<std::vector<bool>> split;
  if (split_node >= 0) split = split_plan(src, split_node);
  for (int v = 0; v < n; ++v) {
    const ir::Node& node = src.nodes[v];
    if (!needed[v] && !node.is("input")) continue;
    if (finished[v]) {
      ir::Node x;
      x.op = &ir::get_op("input");
      x.attrs.set("shape", std::vector<int64_t>(node.type.shape.begin(), node.type.shape.end()));
      x.attrs.set("dtype", std::string(dtype_name(node.type.dtype)));
      x.type = {node.type.shape, node.type.dtype};
      x.binding = g.num_bindings();
      // Named by its binding slot: unique even when a remainder of a remainder adds more.
      x.name = str("__finished_", x.binding);
      g.input_names.push_back(x.name);
      bindings.push_back(std::move(host[v]));
      g.nodes.push_back(std::move(x));
      remap[v] = int(g.nodes.size()) - 1;
      continue;
    }
    if (node.is("copy")) {  // transfers are re-planned for the new placement
      remap[v] = remap[node.inputs[0]];
      continue;
    }
    ir::Node copy = node;
    copy.device = -1;
    copy.placement_reason.clear();
    copy.predicted_seconds = 0;
    for (int& in : copy.inputs) in = remap[in];
    if (v == split_node && split) {
      remap[v] = emit_split(g, copy, *split);
      continue;
    }
    g.nodes.push_back(std::move(copy));
    remap[v] = int(g.nodes.size()) - 1;
  }
  for (int o : src.outputs) g.outputs.push_back(remap[o]);
  return g;
}

}  // namespace nef::engine
