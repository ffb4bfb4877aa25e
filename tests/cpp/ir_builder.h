// A small hand-built IR graph builder for tests (types come from the registry's inference), for
// graphs the lazy API cannot make directly: constants of any size, named inputs and outputs.
#pragma once

#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op_registry.h"
#include "nef/array.h"

namespace nef::test {

struct GraphBuilder {
  ir::Graph g;

  int add(const std::string& op, std::vector<int> inputs, ir::Attrs attrs = {},
          const std::string& name = "") {
    ir::Node n;
    n.op = &ir::get_op(op);
    n.inputs = std::move(inputs);
    n.type = ir::check_and_infer(*n.op, g.input_types(n), attrs);
    n.attrs = std::move(attrs);
    n.name = name;
    g.nodes.push_back(std::move(n));
    return static_cast<int>(g.nodes.size()) - 1;
  }
  int input(const std::string& name, const Shape& shape, DType dt) {
    ir::Attrs a;
    a.set("name", name);
    a.set("shape", std::vector<int64_t>(shape.begin(), shape.end()));
    a.set("dtype", std::string(dtype_name(dt)));
    int i = add("input", {}, a, name);
    g.nodes[i].binding = g.num_bindings();
    g.input_names.push_back(name);
    return i;
  }
  int constant(const Array& value, const std::string& name = "", bool weak = false) {
    ir::Attrs a;
    a.set("shape", std::vector<int64_t>(value.shape.begin(), value.shape.end()));
    a.set("dtype", std::string(dtype_name(value.dtype)));
    int i = add("constant", {}, a, name);
    g.nodes[i].constant = value;
    g.nodes[i].type.weak = weak;
    return i;
  }
  void output(int node, const std::string& name) {
    g.outputs.push_back(node);
    g.output_names.push_back(name);
  }
};

}  // namespace nef::test
