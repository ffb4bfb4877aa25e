// Memory planning for a lowered plan (runtime/plan.h: MemoryPlan says what is planned): liveness
// over the execution order, best-fit offsets in one arena per device, in-place handovers where a
// kernel allows it, each kernel's workspace for its own step.
#pragma once

#include <string>

#include "runtime/plan.h"

namespace nef::compiler {

// Fills plan.memory from plan.graph, plan.steps (kernels compiled) and the node devices.
void plan_memory(runtime::Plan& plan);

// Checks plan.memory against an independent recomputation of the lifetimes: alignment, arena
// bounds, nothing forbidden in the arena and no two simultaneously live buffers (workspaces
// included) overlapping, except an in-place handover; and the concurrent groups it relies on.
// Throws nef::Error naming the first violation.
void verify_memory_plan(const runtime::Plan& plan);

// Text section "memory: ..." listing each arena value's offset, size and lifetime (used by
// describe() and `nef inspect --memory`).
std::string describe_memory(const runtime::Plan& plan);

}  // namespace nef::compiler
