// Lazy API nodes: what nef::Tensor points to. An op call creates one node with its inferred
// type; execution turns the reachable, unmaterialized part of the DAG into an ir::Graph.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "nef/tensor.h"

namespace nef::detail {

struct LazyNode {
  const ir::OpDef* op = nullptr;
  ir::Attrs attrs;
  std::vector<std::shared_ptr<LazyNode>> inputs;
  ir::TensorType type;
  std::string device_hint;
  std::optional<Array> value;  // set once materialized (or at creation for data tensors)
  bool literal = false;        // a literal constant (scalars): stays a constant in graphs

  LazyNode() = default;
  LazyNode(const LazyNode&) = delete;
  LazyNode& operator=(const LazyNode&) = delete;
  // Iterative: dropping the last handle of a 1M-node chain must not overflow the stack.
  ~LazyNode();
};

// Creates a node, checking arity/attributes and inferring its type (throws at creation).
std::shared_ptr<LazyNode> make_node(const std::string& op, std::vector<std::shared_ptr<LazyNode>> in,
                                    ir::Attrs attrs);

// The graph that computes `targets`. Only the targets are materialized: intermediates are free
// to be fused away (evaluate several tensors together to keep them all). For execution, materialized nodes become bound inputs
// (literals stay constants) and unmaterialized placeholders are an error; for serialization,
// data becomes constants and placeholders become named inputs.
enum class BuildMode { Execute, Serialize };
struct BuiltGraph {
  ir::Graph graph;
  std::vector<Array> bindings;            // Execute mode: values for graph inputs
  std::vector<LazyNode*> output_nodes;    // lazy node of each graph output
};
BuiltGraph build_graph(const std::vector<LazyNode*>& targets, BuildMode mode,
                       const std::vector<std::string>& output_names = {});

}  // namespace nef::detail
