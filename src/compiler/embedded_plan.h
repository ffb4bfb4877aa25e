// Embedded plans (.nef compiler_cache "embedded"): the optimized, placed graph of a file stored
// next to its source graph so a deployed file skips passes and planning on load. The embedded
// graph is untrusted: the reader validates it like any graph, and it is used only when its
// integrity hash (source graph + compiled graph + NEF version + enabled devices) matches.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "format/nef_file.h"
#include "ir/graph.h"
#include "runtime/plan.h"

namespace nef::compiler {

// Hex of a 128-bit hash over the source graph's structure, the compiled graph (constants by
// content, fused programs included), its per-node device ids, the container version and the
// enabled devices. An integrity check against stale or corrupted plans, not a signature.
std::string embedded_key_hash(const ir::Graph& source, const ir::Graph& compiled,
                              const std::vector<std::string>& devices);

// Compiles `g` (through the plan cache) into the section a .nef file embeds.
format::EmbeddedPlanData make_embedded(const ir::Graph& g);

// Builds the executable plan from a verified embedded graph: devices from `devices` (ids of
// enabled devices), kernels through the kernel cache, memory plan recomputed. Checks that the
// compiled graph's bindings and outputs agree with `source` in count, shape and dtype. Throws
// ValidationError/UnsupportedError when it cannot be used. Counts stats().embedded_plans_used.
std::shared_ptr<const runtime::Plan> plan_from_embedded(const ir::Graph& source, ir::Graph compiled,
                                                        const std::vector<std::string>& devices);

}  // namespace nef::compiler
