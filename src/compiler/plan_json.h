// Machine-readable form of a compiled plan (`nef inspect --plan --json`, Python `g.plan()`).
#pragma once

#include <string>
#include <vector>

#include "compiler/plan.h"

namespace nef::compiler {

// JSON object text:
//   {"kernels": [{"step", "node", "op", "kernel", "device", "shape", "dtype", "name",
//                 "inputs", "nodes", "program"?, "placement_reason"}...],
//    "memory": {"enabled", "planned_peak_bytes", "naive_bytes", "inplace_count",
//               "arenas": [{"device", "bytes"}], "values": [{"node", "op", "offset", "bytes",
//               "live_begin", "live_end", "inplace_of"?, "view_of"?}]},
//    "num_nodes", "num_kernels"}
// "nodes" lists the ops a kernel covers in execution order: the instructions of a
// fused_elementwise program, "matmul" then the epilogue program's instructions for
// matmul_epilogue, else the node's own op. Node ids are those of the optimized graph.
std::string describe_json(const Plan& plan, int indent = -1);

// The ops one kernel covers (the "nodes" list above); also what runtime profiles report.
std::vector<std::string> covered_ops(const ir::Graph& g, const ir::Node& n);

// Text of the same content: kernels in execution order, what each covers, then describe_memory.
std::string describe_kernels_text(const Plan& plan);

}  // namespace nef::compiler
