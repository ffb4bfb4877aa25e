#include <unordered_map>
#include <unordered_set>

#include "api/lazy.h"
#include "nef/error.h"

namespace nef::detail {

LazyNode::~LazyNode() {
  std::vector<std::shared_ptr<LazyNode>> stack = std::move(inputs);
  while (!stack.empty()) {
    std::shared_ptr<LazyNode> n = std::move(stack.back());
    stack.pop_back();
    if (n && n.use_count() == 1) {
      for (auto& c : n->inputs) stack.push_back(std::move(c));
      n->inputs.clear();
    }
  }
}

std::shared_ptr<LazyNode> make_node(const std::string& op_name,
                                    std::vector<std::shared_ptr<LazyNode>> in, ir::Attrs attrs) {
  const ir::OpDef& op = ir::get_op(op_name);
  std::vector<ir::TensorType> types;
  types.reserve(in.size());
  for (const auto& n : in) {
    if (!n) throw ValidationError(str("[", op_name, "] got an undefined tensor"));
    types.push_back(n->type);
  }
  auto node = std::make_shared<LazyNode>();
  node->type = ir::check_and_infer(op, types, attrs);
  node->op = &op;
  node->attrs = std::move(attrs);
  node->inputs = std::move(in);
  return node;
}

BuiltGraph build_graph(const std::vector<LazyNode*>& targets, BuildMode mode,
                       const std::vector<std::string>& output_names) {
  BuiltGraph out;
  ir::Graph& g = out.graph;
  std::unordered_map<const LazyNode*, int> index;
  std::unordered_set<std::string> placeholder_names;

  auto set_type_attrs = [](ir::Node& node, const ir::TensorType& t) {
    node.attrs.set("shape", std::vector<int64_t>(t.shape.begin(), t.shape.end()));
    node.attrs.set("dtype", std::string(dtype_name(t.dtype)));
  };

  // Iterative post-order DFS (deep chains must not overflow the stack); inputs in order so the
  // node order, and so the plan-cache key, is deterministic.
  std::vector<std::pair<LazyNode*, size_t>> stack;
  for (LazyNode* t : targets) {
    if (index.count(t)) continue;
    stack.push_back({t, 0});
    while (!stack.empty()) {
      auto& [n, next] = stack.back();
      bool leaf = n->value.has_value() || n->op->name == "input";
      if (!leaf && next < n->inputs.size()) {
        LazyNode* child = n->inputs[next++].get();
        if (!index.count(child)) stack.push_back({child, 0});
        continue;
      }
      LazyNode* cur = n;
      stack.pop_back();
      if (index.count(cur)) continue;
      ir::Node node;
      node.type = cur->type;
      node.device_hint = cur->device_hint;
      bool as_constant = cur->value && (cur->literal || mode == BuildMode::Serialize);
      if (as_constant) {
        node.op = &ir::get_op("constant");
        set_type_attrs(node, cur->type);
        node.constant = *cur->value;
      } else if (cur->value || cur->op->name == "input") {
        if (!cur->value && mode == BuildMode::Execute)
          throw ValidationError(str("[input] placeholder '", cur->attrs.get_string("name"), "' ",
                                    shape_str(cur->type.shape),
                                    " has no value: build the graph and run it with inputs "
                                    "(t.build(path); nef.load(path).run({...}))"));
        node.op = &ir::get_op("input");
        node.binding = g.num_bindings();
        std::string nm;
        if (mode == BuildMode::Serialize) {
          nm = cur->attrs.get_string("name");
          if (nm.empty()) nm = str("input_", node.binding);
          if (!placeholder_names.insert(nm).second)
            throw ValidationError(str("[build] two placeholders are named '", nm, "'"));
        } else {
          nm = str("arg", node.binding);
          out.bindings.push_back(*cur->value);
        }
        node.name = nm;
        node.attrs.set("name", nm);
        set_type_attrs(node, cur->type);
        g.input_names.push_back(nm);
      } else {
        node.op = cur->op;
        node.attrs = cur->attrs;
        for (const auto& in : cur->inputs) {
          node.inputs.push_back(index.at(in.get()));
        }
      }
      index[cur] = static_cast<int>(g.nodes.size());
      g.nodes.push_back(std::move(node));
    }
  }

  for (size_t i = 0; i < targets.size(); ++i) {
    int idx = index.at(targets[i]);
    g.outputs.push_back(idx);
    g.output_names.push_back(i < output_names.size() ? output_names[i] : str("out", i));
    out.output_nodes.push_back(targets[i]);
  }
  return out;
}

}  // namespace nef::detail
