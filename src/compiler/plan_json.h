// Machine-readable form of a compiled plan (`nef inspect --plan --json`, Python `g.plan()`).
#pragma once

#include <string>
#include <vector>

#include "runtime/plan.h"

namespace nef::compiler {

// JSON object text:
//   {"devices": [ids], "predicted_seconds",
//    "kernels": [{"step", "node", "op", "kernel", "device", "shape", "dtype", "name",
//                 "inputs", "nodes", "program"?, "placement_reason", "predicted_seconds",
//                 "workspace_bytes"?}...],   (every step that runs: kernels and transfers)
//    "transfers": [{"step", "node", "from", "to", "bytes", "predicted_seconds"}...],
//    "memory": {"enabled", "planned_peak_bytes", "naive_bytes", "inplace_count",
//               "arenas": [{"device", "bytes"}], "values": [{"node", "op", "offset", "bytes",
//               "live_begin", "live_end", "inplace_of"?, "view_of"?}]},
//    "num_nodes", "num_kernels"}
// "nodes" lists the ops a kernel covers in execution order: the instructions of a
// fused_elementwise program, "matmul" then the epilogue program's instructions for
// matmul_epilogue, else the node's own op. Node ids are those of the optimized graph.
std::string describe_json(const runtime::Plan& plan, int indent = -1);

// Text of the same content: kernels in execution order, what each covers, then describe_memory.
std::string describe_kernels_text(const runtime::Plan& plan);

}  // namespace nef::compiler
