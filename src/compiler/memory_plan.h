// Planned memory: every intermediate of a plan gets a byte offset in one arena per device, from
// liveness over the execution order (best-fit heap simulation, 64-byte aligned). Views alias
// their base buffer; an elementwise op may take over an input that dies at it (in place).
// Inputs, constants, graph outputs and anything a graph output aliases stay out of the arena:
// outputs are handed to the user and must survive the next run of the same plan.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nef/array.h"

namespace nef::compiler {

struct Plan;

inline constexpr int64_t kArenaAlignment = 64;

struct MemoryPlan {
  bool enabled = false;  // false: the runtime allocates every value separately
  // Per node (indexed like graph.nodes):
  std::vector<int64_t> offset;  // byte offset in its device's arena; -1 = not in the arena
  std::vector<int64_t> bytes;   // the value's size in bytes (0 for views)
  std::vector<int> alias_of;    // view nodes: the node whose buffer they view (the root); else -1
  std::vector<int> inplace_of;  // elementwise nodes written over this input's buffer; else -1
  std::vector<int> live_begin;  // step that produces the buffer (views: -1)
  std::vector<int> live_end;    // last step that reads it or any view of it
  // Per device (indexed like plan.backends): arena size in bytes.
  std::vector<int64_t> arena_bytes;
  int64_t planned_peak_bytes = 0;  // sum of the arenas
  int64_t naive_bytes = 0;         // sum of the sizes of all intermediates placed in arenas
  int inplace_count = 0;
};

// Arenas of one plan kept between runs (one idle set at most). A run takes the idle set or, when
// another thread holds it, allocates a fresh one; it puts its set back at the end.
struct ArenaCache {
  std::mutex mu;
  std::vector<Array> idle;  // one byte array per device; empty when taken
};

// Whether node's kernel tolerates `out` being exactly one of its inputs (same pointer, same
// strides): kElementwise ops on the CPU, whose kernels read element i before storing out[i]
// and never convert an operand that already has the output's dtype. Kernels of new elementwise
// ops (fused_elementwise included) must keep that property.
bool inplace_safe(const Plan& plan, int node);

// Fills plan.memory from plan.graph, plan.steps and the node devices.
void plan_memory(Plan& plan);

// Checks plan.memory against an independent recomputation of the lifetimes: alignment, arena
// bounds, nothing forbidden in the arena and no two simultaneously live buffers overlapping
// (except an in-place handover). Throws nef::Error (internal check) naming the first violation.
void verify_memory_plan(const Plan& plan);

// Text section "memory: ..." listing each arena value's offset, size and lifetime (used by
// describe() and `nef inspect --memory`).
std::string describe_memory(const Plan& plan);

}  // namespace nef::compiler
