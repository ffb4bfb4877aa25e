// Graphs with value-shaped nodes (ir::kValueShaped: nonzero, unique, non_max_suppression,
// topk_k) whose extent is not known yet ("unresolved": attribute extent = -1), and cond_select
// nodes (an If with a run-time condition) whose branch is not chosen yet. Such a graph runs in
// segments, each one an ordinary static graph compiled through the plan cache:
//   1. each ready unresolved node (no unresolved node before it) gets its "<op>_extent"
//      companion, which reads the node's first max_inputs inputs; the companions and exactly
//      what they need run as one graph, whose outputs are the extents, the values later nodes
//      read ("cut" values) and the graph outputs already computed;
//   2. the rest becomes a graph over the cut values (new bound inputs; constants and the
//      original inputs are kept), with the extents set (a cond_select keeps only its chosen
//      input, so the other branch is dead code) and every node's type re-inferred;
//   3. repeat until nothing is unresolved; the last segment runs as today.
// Segments are keyed by structure and concrete shapes like any graph, so repeated runs whose
// extents repeat hit the plan cache. compiler::compile refuses unresolved value-shaped nodes
// (cond_select it compiles: its kernel then picks the branch from the condition's value).
#pragma once

#include <vector>

#include "ir/graph.h"
#include "nef/array.h"

namespace nef::engine {

// Whether node n is value-shaped (or a cond_select) with its extent still unknown.
bool unresolved(const ir::Node& n);
bool has_unresolved(const ir::Graph& g);

// Runs `g` on `bindings` (one per g.input_names) and returns its outputs in g.outputs order.
// Errors: whatever compiling and running a segment throws; a node after a value-shaped one
// whose shapes no longer agree once the extent is known is a ShapeError naming that node.
std::vector<Array> run_segmented(const ir::Graph& g, std::vector<Array> bindings);

}  // namespace nef::engine
