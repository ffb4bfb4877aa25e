// Dead-node elimination: drop nodes that no graph output depends on.
#include "common/session.h"
#include "passes/pass.h"

namespace nef::passes {

void dead_node_elimination(ir::Graph& g, const PassContext& ctx) {
  int removed = ir::remove_dead(g);
  nef::counters().nodes_eliminated += removed;
}

}  // namespace nef::passes
