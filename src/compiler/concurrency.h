// Inter-op parallelism: groups of consecutive, independent kernel steps that run at the same time
// on a device that can (backend/concurrent.h), so that small kernels, which gain little from
// their own threads, fill the cores together. Decided per plan, so results depend only on the
// plan (and its thread count), never on timing.
#pragma once

#include <vector>

#include "runtime/plan.h"

namespace nef::compiler {

// Reorders a placed, estimated graph's nodes (a topological order, remapped) so that small
// independent kernels that can run together sit next to each other: each such kernel is followed
// by the earliest ready ones of similar cost. Everything else keeps its order.
void order_for_concurrency(ir::Graph& g, const std::vector<backend::DevicePtr>& devices);

// Sets Step::group_first/group_last on a lowered plan (kernels compiled, costs estimated); call
// before plan_memory, which keeps every group's buffers apart. Members are kernel steps of one
// device, consecutive except for input, constant and view steps between them, none reading
// another's result, each predicted to take 2-100 us and within 4x of the others' cost.
void group_concurrent_steps(runtime::Plan& plan);

// Checks the groups: members are kernels of one device that can run them together, only input,
// constant and view steps lie between them, and none reads another's result (through views
// too). Throws nef::Error naming the first violation (verify_memory_plan calls it).
void verify_concurrent_groups(const runtime::Plan& plan);

// Removes the groups (every step runs alone); plan_memory must run again afterwards.
void clear_concurrent_groups(runtime::Plan& plan);

}  // namespace nef::compiler
