// The execution IR: a flat list of nodes in topological order, each producing one tensor.
// Built from lazy API nodes (api/), from a .nef file (format/) or later from ONNX; consumed by
// validation, passes, the planner and the compiler. Node indices are positions in `nodes`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/array.h"
#include "nef/attrs.h"

namespace nef::ir {

struct Node {
  const OpDef* op = nullptr;
  Attrs attrs;
  std::vector<int> inputs;  // indices of earlier nodes
  TensorType type;          // inferred output shape and dtype
  std::string name;         // tensor name (graph inputs/outputs, file tensor names); may be empty
  std::string device_hint;  // "", "cpu", "gpu", ... (a preference, not a command)
  // op "constant": the value. op "input": unset (bound at run time through `binding`).
  std::optional<Array> constant;
  int binding = -1;              // op "input": index into the run-time bindings
  int device = -1;               // index into the plan's devices, set by the planner
  std::string placement_reason;  // why the planner put it there
  double predicted_seconds = 0;  // the planner's cost-model estimate on that device

  bool is(std::string_view op_name) const { return op && op->name == op_name; }
};

struct Graph {
  std::vector<Node> nodes;
  std::vector<int> outputs;               // node indices, in output order
  std::vector<std::string> output_names;  // same length as outputs
  std::vector<std::string> input_names;   // one per binding slot, in binding order

  int num_bindings() const { return static_cast<int>(input_names.size()); }
  std::vector<TensorType> input_types(const Node& n) const;
  // The same into `out`, reusing its capacity (no allocation in a loop over nodes).
  void input_types(const Node& n, std::vector<TensorType>& out) const;
};

// Checks the structure (input indices earlier than their node, outputs in range, bindings
// consistent, constants matching their type) and, with `reinfer`, re-runs inference on every
// node, comparing with the recorded type. Without it the caller vouches that every node's type
// and attributes are what check_and_infer gives on its inputs (the lazy API infers each node
// when it is created). Throws ValidationError (or the inference's ShapeError/TypeError) naming
// the node.
void validate(Graph& g, bool reinfer = true);

// Reorders nodes topologically given arbitrary input references; throws GraphCycleError naming a
// node on the cycle. `inputs_of[i]` are node positions. Returns the new order (old indices).
std::vector<int> topo_order(const std::vector<std::vector<int>>& inputs_of);

// Which nodes some graph output depends on (outputs included). Passes use it to ignore the
// dead nodes earlier passes leave for the final dce.
std::vector<bool> live_nodes(const Graph& g);

// Removes nodes that no output depends on, keeping order; remaps indices. Returns removed count.
int remove_dead(Graph& g);

// Deterministic text form used in tests, dumps and cache keys (includes constant identity).
std::string to_text(const Graph& g);

}  // namespace nef::ir
