// The compiled, executable form of a graph: the optimized and placed IR, one kernel per step
// and the buffer lifetimes. Plans are immutable and shared: the plan cache hands the same plan
// to every structurally identical graph.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "compiler/memory_plan.h"
#include "ir/graph.h"

namespace nef::compiler {

struct Step {
  int node = -1;                                   // index into graph.nodes
  std::shared_ptr<const backend::Kernel> kernel;  // null for input/constant nodes
  std::vector<int> release;                        // node values dead after this step
};

struct Plan {
  ir::Graph graph;  // after passes and placement
  std::vector<std::shared_ptr<backend::Backend>> backends;  // indexed by node.device
  std::vector<Step> steps;
  std::string key;  // structural key it was cached under
  std::vector<std::pair<std::string, std::string>> pass_dumps;  // (pass, IR text) if requested
  int kernels_compiled = 0;  // cache misses while compiling this plan
  MemoryPlan memory;         // arena offsets of the intermediates (compiler/memory_plan.h)
  // Arenas kept between runs of this plan; the plan is shared and const, the cache is not.
  std::shared_ptr<ArenaCache> arenas = std::make_shared<ArenaCache>();
};

struct CompileOptions {
  bool keep_pass_dumps = false;
  bool use_plan_cache = true;
  // false: skip the optimizer passes (tests compare optimized against unoptimized runs).
  bool run_passes = true;
  // false: no memory plan; the runtime allocates every value separately (reference runs).
  bool plan_memory = true;
};

// Validate -> passes -> planner -> kernel compiler, through the plan cache. The graph's input
// bindings are part of its signature (shape and dtype), not their values.
std::shared_ptr<const Plan> compile(ir::Graph g, const CompileOptions& opts = {});

// Kernels for every node of a validated, placed graph (through the kernel cache) and value
// lifetimes (steps and releases); moves `g` into plan.graph. plan.backends must be set.
void lower_placed_graph(Plan& plan, ir::Graph g);

// Canonical structural key of a graph (ops, attributes, shapes, dtypes, wiring, constants by
// value when small or by storage identity, device hints).
std::string structural_key(const ir::Graph& g);

// Human-readable plan: steps, kernels, devices and placement reasons, then the memory plan
// (describe_memory in compiler/memory_plan.h).
std::string describe(const Plan& plan);

// A second index into the plan cache for front ends that key graphs themselves without building
// an ir::Graph (the lazy API hashes its DAG). `signature` is the front end's exact canonical
// form, stored with the plan and compared by the caller on every hit, so a hash collision cannot
// hand out a wrong plan. Cleared with the plan cache; same capacity, LRU.
struct FrontEntry {
  std::shared_ptr<const void> signature;
  std::shared_ptr<const Plan> plan;
};
FrontEntry find_front_plan(uint64_t h0, uint64_t h1);  // null plan if absent
void store_front_plan(uint64_t h0, uint64_t h1, FrontEntry e);

void clear_caches();
size_t plan_cache_size();
size_t kernel_cache_size();

}  // namespace nef::compiler
