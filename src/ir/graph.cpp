#include "ir/graph.h"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <unordered_set>

#include "nef/error.h"

namespace nef::ir {

std::vector<TensorType> Graph::input_types(const Node& n) const {
  std::vector<TensorType> t;
  t.reserve(n.inputs.size());
  for (int i : n.inputs) t.push_back(nodes[i].type);
  return t;
}

void Graph::input_types(const Node& n, std::vector<TensorType>& out) const {
  out.resize(n.inputs.size());
  for (size_t k = 0; k < n.inputs.size(); ++k) out[k] = nodes[n.inputs[k]].type;
}

namespace {
std::string node_label(const Graph& g, size_t i) {
  const Node& n = g.nodes[i];
  std::string s = str("node ", i, " (", n.op ? n.op->name : "?");
  if (!n.name.empty()) s += str(" '", n.name, "'");
  return s + ")";
}
}  // namespace

void validate(Graph& g, bool reinfer) {
  std::vector<bool> bound(g.input_names.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (!n.op) throw ValidationError(str("node ", i, " has no op"));
    for (int in : n.inputs)
      if (in < 0 || static_cast<size_t>(in) >= i)
        throw ValidationError(
            str(node_label(g, i), " refers to node ", in, " which does not precede it"));
    if (n.is("input")) {
      if (n.binding < 0 || static_cast<size_t>(n.binding) >= bound.size() || bound[n.binding])
        throw ValidationError(str(node_label(g, i), " has invalid input binding ", n.binding));
      bound[n.binding] = true;
    } else if (n.binding != -1) {
      throw ValidationError(str(node_label(g, i), " is not an input but has a binding"));
    }
    if (n.is("constant")) {
      if (!n.constant) throw ValidationError(str(node_label(g, i), " has no value"));
      const Array& c = *n.constant;
      if (c.shape != n.type.shape || c.dtype != n.type.dtype)
        throw ValidationError(str(node_label(g, i), " value ", shape_str(c.shape), " ",
                                  dtype_name(c.dtype), " does not match its type"));
    } else if (n.constant) {
      throw ValidationError(str(node_label(g, i), " is not a constant but carries a value"));
    }
    if (!reinfer) continue;
    // In place (inference only fills defaults and canonicalizes, idempotently).
    TensorType t = check_and_infer(*n.op, g.input_types(n), n.attrs);
    if (!(t == n.type))
      throw ValidationError(str(node_label(g, i), " declares ", shape_str(n.type.shape), " ",
                                dtype_name(n.type.dtype), " but inference gives ",
                                shape_str(t.shape), " ", dtype_name(t.dtype)));
  }
  for (size_t b = 0; b < bound.size(); ++b)
    if (!bound[b]) throw ValidationError(str("graph input '", g.input_names[b], "' has no node"));
  if (g.outputs.size() != g.output_names.size())
    throw ValidationError("graph outputs and output names differ in length");
  // Inputs and outputs are addressed by name: a repeated name would silently bind or drop one.
  for (const auto* names : {&g.input_names, &g.output_names}) {
    std::unordered_set<std::string_view> seen;
    seen.reserve(names->size());
    for (const std::string& nm : *names)
      if (!seen.insert(nm).second)
        throw ValidationError(str("graph ", names == &g.input_names ? "input" : "output", " name '",
                                  nm, "' appears twice"));
  }
  for (int o : g.outputs)
    if (o < 0 || static_cast<size_t>(o) >= g.nodes.size())
      throw ValidationError(str("graph output refers to missing node ", o));
}

std::vector<int> topo_order(const std::vector<std::vector<int>>& inputs_of) {
  // Iterative DFS with colors so deep graphs cannot overflow the stack.
  size_t n = inputs_of.size();
  std::vector<uint8_t> color(n, 0);  // 0 new, 1 on stack, 2 done
  std::vector<int> order;
  order.reserve(n);
  std::vector<std::pair<int, size_t>> stack;
  for (size_t root = 0; root < n; ++root) {
    if (color[root]) continue;
    stack.push_back({int(root), 0});
    color[root] = 1;
    while (!stack.empty()) {
      auto& [v, next] = stack.back();
      if (next < inputs_of[v].size()) {
        int u = inputs_of[v][next++];
        if (u < 0 || static_cast<size_t>(u) >= n)
          throw ValidationError(str("node ", v, " refers to missing node ", u));
        if (color[u] == 1) throw GraphCycleError(str("graph has a cycle through node ", u));
        if (color[u] == 0) {
          color[u] = 1;
          stack.push_back({u, 0});
        }
      } else {
        color[v] = 2;
        order.push_back(v);
        stack.pop_back();
      }
    }
  }
  return order;
}

std::vector<bool> live_nodes(const Graph& g) {
  std::vector<bool> live(g.nodes.size(), false);
  for (int o : g.outputs) live[o] = true;
  for (size_t i = g.nodes.size(); i-- > 0;)
    if (live[i])
      for (int in : g.nodes[i].inputs) live[in] = true;
  return live;
}

int remove_dead(Graph& g) {
  std::vector<bool> live = live_nodes(g);
  // Graph inputs stay even if unused: the binding slots are part of the graph's signature.
  size_t n_live = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].is("input")) live[i] = true;
    n_live += live[i];
  }
  if (n_live == g.nodes.size()) return 0;  // nothing dead: no need to move every node
  // Compacted in place: live nodes move down over the dead ones, in order.
  std::vector<int> remap(g.nodes.size(), -1);
  size_t kept = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!live[i]) continue;
    remap[i] = static_cast<int>(kept);
    if (kept != i) g.nodes[kept] = std::move(g.nodes[i]);
    for (int& in : g.nodes[kept].inputs) in = remap[in];
    ++kept;
  }
  int removed = static_cast<int>(g.nodes.size() - kept);
  g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(kept), g.nodes.end());
  for (int& o : g.outputs) o = remap[o];
  return removed;
}

std::string to_text(const Graph& g) {
  std::string s;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    s += str("%", i, " = ", n.op->name, "(");
    for (size_t k = 0; k < n.inputs.size(); ++k) s += str(k ? ", " : "", "%", n.inputs[k]);
    s += ")";
    std::string a = n.attrs.canonical();
    if (!a.empty()) s += " {" + a + "}";
    s += str(" : ", shape_str(n.type.shape), " ", dtype_name(n.type.dtype));
    if (n.binding >= 0) s += str(" bind=", n.binding);
    if (n.device >= 0) s += str(" @", n.device);
    s += "\n";
  }
  s += "outputs:";
  for (size_t k = 0; k < g.outputs.size(); ++k)
    s += str(" %", g.outputs[k], "=", g.output_names[k]);
  return s + "\n";
}

}  // namespace nef::ir
