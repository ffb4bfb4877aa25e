// Device planner: assigns every node to a backend and records why. Honors a node's device hint
// when that backend is enabled and supports the node; otherwise takes the first enabled backend
// (in preference order) whose supports() accepts it. Transfer nodes at device boundaries come
// with the second backend.
#pragma once

#include <memory>
#include <vector>

#include "backends/backend.h"
#include "ir/graph.h"

namespace nef::planner {

// `backends` are the enabled backends in preference order. Throws UnsupportedError naming the
// op and shapes when no backend can run a node.
void assign_devices(ir::Graph& g, const std::vector<std::shared_ptr<backend::Backend>>& backends);

}  // namespace nef::planner
