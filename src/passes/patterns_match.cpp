#include "passes/patterns_match.h"

#include <algorithm>
#include <cmath>

#include "common/dispatch.h"
#include "nef/error.h"

namespace nef::passes::match {

std::optional<double> scalar_value(const ir::Graph& g, int i) {
  const ir::Node& n = g.nodes[i];
  if (n.is("full")) {
    double v = n.attrs.get_float("value");
    // full casts its value to the dtype; only report values that survive the cast unchanged.
    if (!is_floating(n.type.dtype) && v != std::trunc(v)) return std::nullopt;
    return v;
  }
  if (!n.is("constant") || !n.constant || n.constant->numel() != 1) return std::nullopt;
  const Array& a = *n.constant;
  return nef::dispatch_dtype(
      a.dtype, [&]<typename T>() -> double { return double(nef::load_as(*a.data_as<T>())); });
}

bool is_scalar(const ir::Graph& g, int i, double v, double rel) {
  std::optional<double> s = scalar_value(g, i);
  if (!s) return false;
  if (v == 0) return *s == 0;
  return std::abs(*s - v) <= rel * std::abs(v);
}

bool same_value(const ir::Graph& g, int a, int b, int depth) {
  if (a == b) return true;
  const ir::Node& x = g.nodes[a];
  const ir::Node& y = g.nodes[b];
  if (depth <= 0 || x.op != y.op || x.is("input") || !(x.type == y.type)) return false;
  if (x.is("constant")) {
    std::optional<double> vx = scalar_value(g, a), vy = scalar_value(g, b);
    if (vx && vy) return *vx == *vy;
    const Array &p = *x.constant, &q = *y.constant;
    return p.storage == q.storage && p.offset == q.offset && p.strides == q.strides;
  }
  if (!(x.attrs == y.attrs) || x.inputs.size() != y.inputs.size()) return false;
  for (size_t k = 0; k < x.inputs.size(); ++k)
    if (!same_value(g, x.inputs[k], y.inputs[k], depth - 1)) return false;
  return true;
}

std::vector<int64_t> keepdims_axes(const ir::Graph& g, int i, std::string_view op) {
  const ir::Node& n = g.nodes[i];
  if (!n.is(op) || !n.attrs.get_bool("keepdims")) return {};
  if (const auto* axes = n.attrs.opt_ints("axes")) return *axes;
  // Absent axes means every axis.
  std::vector<int64_t> all;
  for (size_t d = 0; d < g.nodes[n.inputs[0]].type.shape.size(); ++d) all.push_back(int64_t(d));
  return all;
}

Ctx::Ctx(ir::Graph& graph) : g(graph), uses_(graph.nodes.size(), 0) {
  // Only live users count: a dead copy left by an earlier pass must not block a match.
  for (int o : g.outputs) uses_[o]++;
  for (size_t i = g.nodes.size(); i-- > 0;)
    if (uses_[i] > 0)
      for (int in : g.nodes[i].inputs) uses_[in]++;
}

std::optional<int> Ctx::other_than_scalar(int i, double v) const {
  auto p = commute(i, [&](int s) { return is_scalar(g, s, v); });
  if (!p) return std::nullopt;
  return p->second;
}

std::vector<int> Ctx::factors(int i) const {
  std::vector<int> out, stack{i};
  while (!stack.empty()) {
    int k = stack.back();
    stack.pop_back();
    if (k == i || inner(k, "mul")) {
      // Right operand pushed first so factors come out left to right.
      for (auto it = g.nodes[k].inputs.rbegin(); it != g.nodes[k].inputs.rend(); ++it)
        stack.push_back(*it);
    } else {
      out.push_back(k);
    }
  }
  return out;
}

bool Ctx::replace(int i, const std::string& op_name, std::vector<int> inputs, ir::Attrs attrs) {
  ir::Node& old = g.nodes[i];
  const ir::OpDef& op = ir::get_op(op_name);
  std::vector<ir::TensorType> types;
  for (int in : inputs) {
    if (in < 0 || in >= i) return false;
    types.push_back(g.nodes[in].type);
  }
  ir::TensorType t;
  try {
    t = ir::check_and_infer(op, types, attrs);
  } catch (const Error&) {
    return false;  // e.g. a weight that does not broadcast to the normalized shape
  }
  if (!(t == old.type) || t.weak != old.type.weak) return false;
  ir::Node n;
  n.op = &op;
  n.attrs = std::move(attrs);
  n.inputs = std::move(inputs);
  n.type = old.type;
  n.name = old.name;
  n.device_hint = old.device_hint;
  for (int in : n.inputs) uses_[in]++;
  std::vector<int> dropped = std::move(old.inputs);
  old = std::move(n);
  for (int in : dropped) release(in);
  return true;
}

void Ctx::release(int i) {
  std::vector<int> stack{i};
  while (!stack.empty()) {
    int k = stack.back();
    stack.pop_back();
    if (--uses_[k] == 0)
      for (int in : g.nodes[k].inputs) stack.push_back(in);
  }
}

}  // namespace nef::passes::match

namespace nef::passes::match {

bool closed(const Ctx& c, int root, std::vector<int> interior) {
  std::sort(interior.begin(), interior.end());
  interior.erase(std::unique(interior.begin(), interior.end()), interior.end());
  auto inside = [&](int k) { return std::binary_search(interior.begin(), interior.end(), k); };
  std::vector<int> refs(interior.size(), 0);
  auto count_refs = [&](int from) {
    for (int in : c.node(from).inputs)
      if (inside(in))
        refs[std::lower_bound(interior.begin(), interior.end(), in) - interior.begin()]++;
  };
  count_refs(root);
  for (int k : interior) count_refs(k);
  for (size_t j = 0; j < interior.size(); ++j)
    if (interior[j] == root || refs[j] != c.uses(interior[j])) return false;
  return true;
}

}  // namespace nef::passes::match
