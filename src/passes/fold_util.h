// Shared by the weight-folding passes (fold_matmul_scale.cpp, fold_conv_scale.cpp): element
// access to float constants in double with one rounding back, constant nodes, and an ordered
// graph rebuild in which a rule may put new constants before the node it replaces.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/float16.h"
#include "ir/graph.h"
#include "nef/error.h"

namespace nef::passes::fold {

// Element i of a contiguous float array as a double.
inline double load(const Array& a, int64_t i) {
  switch (a.dtype) {
    case DType::Float16:
      return to_float(a.data_as<float16_t>()[i]);
    case DType::BFloat16:
      return to_float(a.data_as<bfloat16_t>()[i]);
    case DType::Float32:
      return a.data_as<float>()[i];
    case DType::Float64:
      return a.data_as<double>()[i];
    default:
      return 0;
  }
}

// Rounds d once to a 16-bit float: the float round trip can double-round, so the nearest of the
// three neighbouring encodings is picked by exact distance (ties to the even encoding).
template <class H, class ToH>
H round16(double d, ToH to_h) {
  H h = to_h(static_cast<float>(d));
  if (!std::isfinite(d)) return h;
  H best = h;
  double best_err = std::abs(double(to_float(h)) - d);
  for (int delta : {-1, 1}) {
    H c{uint16_t(h.bits + delta)};
    double v = to_float(c);
    if (!std::isfinite(v) || (std::signbit(v) != std::signbit(double(to_float(h))) && v != 0))
      continue;
    double err = std::abs(v - d);
    if (err < best_err || (err == best_err && (c.bits & 1) == 0)) best = c, best_err = err;
  }
  return best;
}

// Stores d into element i of a contiguous float array, rounded once to its dtype.
inline void store(Array& a, int64_t i, double d) {
  switch (a.dtype) {
    case DType::Float16:
      a.data_as<float16_t>()[i] = round16<float16_t>(d, to_float16);
      break;
    case DType::BFloat16:
      a.data_as<bfloat16_t>()[i] = round16<bfloat16_t>(d, to_bfloat16);
      break;
    case DType::Float32:
      a.data_as<float>()[i] = static_cast<float>(d);
      break;
    case DType::Float64:
      a.data_as<double>()[i] = d;
      break;
    default:
      break;
  }
}

// True when every element of the constant is finite: folding an inf or NaN scale into weights
// turns the NaN pattern of the result different ((x@W)*inf vs x@(W*inf)).
inline bool all_finite(const Array& contiguous) {
  for (int64_t j = 0; j < contiguous.numel(); ++j)
    if (!std::isfinite(load(contiguous, j))) return false;
  return true;
}

// A non-weak float constant node (a folded weight or bias).
inline ir::Node constant_node(Array value, const std::string& device_hint) {
  ir::Node cn;
  cn.op = &ir::get_op("constant");
  cn.attrs.set("shape", std::vector<int64_t>(value.shape.begin(), value.shape.end()));
  cn.attrs.set("dtype", std::string(dtype_name(value.dtype)));
  cn.type = {value.shape, value.dtype};
  cn.device_hint = device_hint;
  cn.constant = std::move(value);
  return cn;
}

// The graph being rebuilt in order. Each kept or new value knows the use count and output flag
// of the original node it stands for, so a rule can ask whether a value an earlier rule produced
// has a single user. Uses are counted over live nodes only (earlier passes leave dead ones).
struct Rebuild {
  std::vector<ir::Node> nodes;
  std::vector<int> uses;
  std::vector<bool> output;

  const ir::Node& at(int i) const { return nodes[i]; }
  // Read by exactly one live node (once) and not a graph output: a rule may consume it.
  bool single_use(int i) const { return uses[i] == 1 && !output[i]; }

  int push(ir::Node n) {
    nodes.push_back(std::move(n));
    uses.push_back(0);
    output.push_back(false);
    return static_cast<int>(nodes.size()) - 1;
  }
  int constant(Array value, const std::string& device_hint) {
    return push(constant_node(std::move(value), device_hint));
  }
  // Appends op(inputs){attrs} with the device hint of `like`, its type inferred; -1 when
  // inference rejects it.
  int emit(const std::string& op, std::vector<int> inputs, ir::Attrs attrs, const ir::Node& like) {
    ir::Node n;
    n.op = &ir::get_op(op);
    n.inputs = std::move(inputs);
    std::vector<ir::TensorType> types;
    for (int in : n.inputs) types.push_back(nodes[in].type);
    try {
      n.type = ir::check_and_infer(*n.op, types, attrs);
    } catch (const Error&) {
      return -1;
    }
    n.attrs = std::move(attrs);
    n.device_hint = like.device_hint;
    return push(std::move(n));
  }
  void truncate(size_t size) {
    nodes.resize(size);
    uses.resize(size);
    output.resize(size);
  }
  // r when it is a value of exactly root's type (weak flag included, so users and outputs stay
  // valid); else drops what the attempt appended since `before` and returns -1.
  int accept(size_t before, int r, const ir::Node& root) {
    if (r >= 0 && nodes[r].type == root.type && nodes[r].type.weak == root.type.weak) return r;
    truncate(before);
    return -1;
  }
};

// Rebuilds g in topological order: every live node, its inputs already remapped, goes through
// `rule(b, node)`, which returns the value replacing it (appended by the rule after any helper
// nodes it needs) or -1 to keep it. A replacement must have exactly the node's type (weak flag
// included), else the rule's nodes are dropped and the node is kept. Replaced nodes' operands
// stay behind for dce. Returns the number of replacements.
//
// `may_fire(g, node)` is a cheap necessary condition for the rule on the original graph: when no
// node meets it, nothing can be folded (the first replacement happens on an unchanged graph) and
// the graph is left as it is, without a rebuild.
template <class MayFire, class Rule>
int rebuild(ir::Graph& g, MayFire&& may_fire, Rule&& rule) {
  bool any = false;
  for (const ir::Node& node : g.nodes)
    if ((any = may_fire(static_cast<const ir::Graph&>(g), node))) break;
  if (!any) return 0;
  const int n = static_cast<int>(g.nodes.size());
  std::vector<bool> live = ir::live_nodes(g), is_output(n, false);
  std::vector<int> uses(n, 0), remap(n, -1);
  for (int o : g.outputs) is_output[o] = true;
  for (int i = 0; i < n; ++i)
    if (live[i])
      for (int in : g.nodes[i].inputs) uses[in]++;
  for (int o : g.outputs) uses[o]++;

  Rebuild b;
  b.nodes.reserve(g.nodes.size());
  int replaced = 0;
  for (int i = 0; i < n; ++i) {
    ir::Node node = std::move(g.nodes[i]);
    for (int& in : node.inputs) in = remap[in];
    int r = -1;
    if (live[i]) {
      const size_t before = b.nodes.size();
      r = rule(b, static_cast<const ir::Node&>(node));
      if (r >= 0 && (size_t(r) < before ||  // a rule only ever returns a node it appended
                     !(b.nodes[r].type == node.type && b.nodes[r].type.weak == node.type.weak)))
        r = -1;
      if (r < 0) b.truncate(before);
    }
    if (r >= 0) {
      b.nodes[r].name = node.name;
      ++replaced;
    } else {
      r = b.push(std::move(node));
    }
    remap[i] = r;
    b.uses[r] = uses[i];
    b.output[r] = is_output[i];
  }
  g.nodes = std::move(b.nodes);
  for (int& o : g.outputs) o = remap[o];
  return replaced;
}

}  // namespace nef::passes::fold
