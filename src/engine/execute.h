// Execution with the failure ladder: the one entry point the APIs run plans through. A run that
// fails on a device climbs, in order:
//   out of memory  -> evict cached device memory and retry -> split the failing op along its
//                     batch dimension and retry -> run the rest on the host;
//   compile failure -> (at compile time: the compiler reroutes the node to the host);
//   device failure in the middle of a graph -> keep every finished result, recompile the rest
//                     without that device and finish it elsewhere.
// Every outcome equals a host-only run. User errors (wrong input shapes or dtypes), failures on
// the host itself and cancellation are not device faults: they are rethrown as they are.
#pragma once

#include <memory>
#include <vector>

#include "nef/array.h"
#include "runtime/plan.h"

namespace nef::engine {

// Runs `plan` on `bindings` and returns the graph outputs (device arrays stay where they were
// computed; nef::to_host brings them over).
std::vector<Array> execute(std::shared_ptr<const runtime::Plan> plan, std::vector<Array> bindings);

// The graph that finishes a failed run: nodes whose value is in `done` (by node; null = not
// available) become inputs bound to those values (moved to the host), transfers are dropped and
// devices cleared. `bindings` gains the new inputs' values. With `split_node` >= 0, that node is
// computed in two halves along dimension 0 (when its op allows) and concatenated.
ir::Graph remainder(const runtime::Plan& plan, const std::vector<const Array*>& done,
                    std::vector<Array>& bindings, int split_node = -1);

// Whether node `v` of `g` can be computed in halves along dimension 0 (rows are independent).
bool splittable(const ir::Graph& g, int v);

}  // namespace nef::engine
