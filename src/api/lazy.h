// Lazy API nodes: what nef::Tensor points to. An op call creates one node with its inferred
// type; execution turns the reachable, unmaterialized part of the DAG into an ir::Graph.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "nef/tensor.h"

namespace nef::runtime {
struct Plan;
}

namespace nef::detail {

struct LazyNode {
  // --- The walk's fields (42 bytes): everything a plan-cache walk reads for an op node, so that
  // a node costs it one cache line or two, not three (node, control block, the inputs' heap
  // array: a 10K-node walk is bound by cache misses). `value` and `type` are read only for
  // nodes without inputs. ---
  const ir::OpDef* op = nullptr;
  // attrs.identity(), kept here so that the walk does not touch the attributes' body (one miss
  // per node). Set with `attrs` by make_node; neither changes afterwards.
  const void* attrs_id = nullptr;
  // The first inputs' addresses (owned through `inputs`) and the input count: the walk reads
  // them here instead of from the inputs' separate heap array (a second, dependent miss).
  static constexpr uint32_t kInline = 2;
  LazyNode* in_fast[kInline] = {};
  uint32_t n_in = 0;  // == inputs.size()
  // How many op nodes hold this one as an input (with multiplicity) and have not dropped it
  // (materialized or freed). A node with users <= 1 is reached once by a single-target walk,
  // which then skips the visited-set lookup for it. Atomic: nodes such as weights are shared
  // by graphs built on several threads.
  std::atomic<uint32_t> users{0};
  bool literal = false;  // a literal constant (scalars): stays a constant in graphs
  bool hinted = false;   // == !device_hint.empty(); set through set_device_hint
  // --- end of the walk's fields ---

  // Empty once materialized: a value stands for its history, which nothing walks again (and
  // which is freed with it, rather than kept alive by every result). Read freely; written only
  // through set_inputs / take_inputs, which keep in_fast, n_in and the inputs' `users` in step.
  std::vector<std::shared_ptr<LazyNode>> inputs;
  std::string device_hint;  // written through set_device_hint
  // Interned (ir::Attrs::interned): nodes alive at the same time with equal attributes share
  // one body, so the plan-cache key compares attributes by identity.
  ir::Attrs attrs;
  // Set once materialized (or at creation for data tensors), on the device that computed it;
  // Tensor::array() brings it to the host (and keeps it there) when the user reads it.
  std::optional<Array> value;
  ir::TensorType type;

  void set_inputs(std::vector<std::shared_ptr<LazyNode>> in);
  // Drops the inputs (the node no longer uses them) and returns them.
  std::vector<std::shared_ptr<LazyNode>> take_inputs();
  void set_device_hint(std::string hint) {
    device_hint = std::move(hint);
    hinted = !device_hint.empty();
  }

  LazyNode() = default;
  LazyNode(const LazyNode&) = delete;
  LazyNode& operator=(const LazyNode&) = delete;
  // Iterative: dropping the last handle of a 1M-node chain must not overflow the stack.
  ~LazyNode();
};

// The calling thread's DeviceScope hint ("" outside any scope), given to every new node.
const std::string& default_device_hint();
void set_default_device_hint(std::string hint);

// Creates a node, checking arity/attributes and inferring its type (throws at creation).
std::shared_ptr<LazyNode> make_node(const std::string& op,
                                    std::vector<std::shared_ptr<LazyNode>> in, ir::Attrs attrs);

// The graph that computes `targets`. Only the targets are materialized: intermediates are free
// to be fused away (evaluate several tensors together to keep them all). For execution,
// materialized nodes become bound inputs (literals stay constants) and unmaterialized placeholders
// are an error; for serialization, data becomes constants and placeholders become named inputs.
// Execute-mode inputs are named argN (node.name, input_names); their attributes carry the type
// and an empty name.
enum class BuildMode { Execute, Serialize };
struct BuiltGraph {
  ir::Graph graph;
  std::vector<Array> bindings;          // Execute mode: values for graph inputs
  std::vector<LazyNode*> output_nodes;  // lazy node of each graph output
};
BuiltGraph build_graph(const std::vector<LazyNode*>& targets, BuildMode mode,
                       const std::vector<std::string>& output_names = {});

// The compiled plan for `targets` (Execute mode) and its bindings. Keyed straight from the lazy
// DAG (a 128-bit hash from one walk, verified exactly against the cached entry's canonical
// form), so a repeated evaluate of the same code on new values builds no ir::Graph; on a miss
// it builds one and compiles it with compile_built.
struct LazyPlan {
  std::shared_ptr<const runtime::Plan> plan;
  // The value of each graph input, in binding order: the bound lazy nodes' own arrays (not
  // copies: an Array copy allocates its shape and strides, and the run copies them anyway), so
  // valid while the targets are held and those nodes are not re-assigned.
  std::vector<const Array*> bindings;
  std::vector<LazyNode*> output_nodes;
};
LazyPlan plan_for(const std::vector<LazyNode*>& targets);

// Compiles a graph build_graph made in Execute mode as plan_for does on a miss: the lazy plan
// cache keeps the plan (the graph-level plan cache is not consulted), and validation checks the
// structure without re-running inference (make_node inferred every node already).
std::shared_ptr<const runtime::Plan> compile_built(ir::Graph g);

}  // namespace nef::detail
