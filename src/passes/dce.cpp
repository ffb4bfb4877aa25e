// Dead-node elimination: drop nodes that no graph output depends on.
#include "passes/pass.h"
#include "runtime/stats.h"

namespace nef::passes {

void dead_node_elimination(ir::Graph& g) {
  int removed = ir::remove_dead(g);
  runtime::stats().nodes_eliminated += removed;
}

}  // namespace nef::passes
