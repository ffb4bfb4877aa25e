// What a LoadedGraph holds (internal to the API and the importers that make one). A graph file
// is one static graph; an imported model whose shapes depend on its run-time inputs (unbound
// symbolic dims, inputs whose values shape the graph) is a DeferredGraph that specializes itself
// per distinct binding. Importers (onnx/) implement DeferredGraph; the API never names them.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "nef/tensor.h"
#include "runtime/plan.h"

namespace nef {

class DeferredGraph;

struct LoadedGraphImpl {
  ir::Graph graph;  // static graphs; for a deferred one only the input/output names
  std::vector<std::pair<Shape, DType>> input_types;  // -1 for dims bound at run time
  std::vector<std::vector<std::string>> dim_names;   // symbolic name per input dim ("" if none)
  mutable std::mutex mu;
  mutable std::shared_ptr<const runtime::Plan> plan;  // compiled on first run
  mutable std::string plan_devices;  // compiler::device_key() the plan was compiled for
  std::shared_ptr<const runtime::Plan> embedded;  // verified embedded plan, if any
  std::shared_ptr<DeferredGraph> deferred;        // set: the graph depends on the inputs
};

class DeferredGraph {
 public:
  virtual ~DeferredGraph() = default;
  // The static graph for these inputs (cached per binding by the implementation). Throws
  // ValidationError for missing inputs, ShapeError for inconsistent dims, UnsupportedError.
  virtual std::shared_ptr<LoadedGraphImpl> specialize(
      const std::map<std::string, Array>& inputs) = 0;
  // The most recent specialization (to describe a plan), or ValidationError "[what] ..." saying
  // what the graph still depends on.
  virtual std::shared_ptr<LoadedGraphImpl> last(const char* what) = 0;
  // Throws the error that explains why this graph cannot be written as a static .nef.
  [[noreturn]] virtual void cannot_save() = 0;
};

// Fills impl.input_types and impl.dim_names from a static graph's input nodes.
void index_input_types(LoadedGraphImpl& impl);

}  // namespace nef
