// The compiler: validate -> device-independent passes -> placement (planner) -> per-device
// fusion -> kernels (through the kernel cache) -> memory plan, all behind the plan cache. A node
// whose kernel fails to compile on a device is rerouted to the host (logged) and the plan goes on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "passes/pass.h"
#include "runtime/plan.h"

namespace nef::compiler {

struct CompileOptions {
  bool keep_pass_dumps = false;
  bool use_plan_cache = true;
  // false: skip the optimizer passes (tests compare optimized against unoptimized runs).
  bool run_passes = true;
  // false: no memory plan; the runtime allocates every value separately (reference runs).
  bool plan_memory = true;
  // false: the caller vouches that node types and attributes are as inference gives them (graphs
  // the lazy API built), so validation checks the structure only (ir::validate).
  bool reinfer = true;
  // Devices (ids) the plan must not use, besides the disabled ones: the failure ladder's retry.
  std::vector<std::string> exclude_devices;
};

// Compiles through the plan cache. The graph's input bindings are part of its signature (shape,
// dtype and residence), not their values.
std::shared_ptr<const runtime::Plan> compile(ir::Graph g, const CompileOptions& opts = {});

// Kernels for every node of a validated, placed graph (through the kernel cache), rerouting to
// the host any node whose kernel fails to compile elsewhere; fills plan.graph and plan.steps,
// with each kernel's data prepared from the plan's constants (Kernel::prepare, Step::prepared)
// and independent small kernels grouped to run together (compiler/concurrency.h).
// plan.devices must be set (node.device indexes it).
void lower_placed_graph(runtime::Plan& plan, ir::Graph g);

// Canonical structural key of a graph (ops, attributes, shapes, dtypes, wiring, constants by
// value when small or by storage identity, device hints).
std::string structural_key(const ir::Graph& g);

// The context passes run with: constant folding on the host's kernels, fusion capabilities from
// the placed devices (`devices` indexes node.device; empty before placement: the host's answers).
std::unique_ptr<passes::PassContext> pass_context(std::vector<backend::DevicePtr> devices = {});

// Human-readable plan: steps, kernels, devices, placement reasons and predicted times, then the
// memory plan (describe_memory in compiler/memory_plan.h).
std::string describe(const runtime::Plan& plan);

// A second index into the plan cache for front ends that key graphs themselves without building
// an ir::Graph (the lazy API hashes its DAG). `signature` is the front end's exact canonical
// form, stored with the plan and compared by the caller on every hit, so a hash collision cannot
// hand out a wrong plan. Cleared with the plan cache; same capacity, LRU.
struct FrontEntry {
  std::shared_ptr<const void> signature;
  std::shared_ptr<const runtime::Plan> plan;
};
FrontEntry find_front_plan(uint64_t h0, uint64_t h1);  // null plan if absent
void store_front_plan(uint64_t h0, uint64_t h1, FrontEntry e);
// What every plan-cache key starts with: the enabled devices and their settings, so a plan made
// for other devices (or another CPU thread count) is never handed out.
std::string device_key();

void clear_caches();
// Drops cached device memory (idle arenas, uploaded constants of cached plans; device pools):
// the out-of-memory ladder's first rung. Returns the bytes released.
int64_t evict_device_memory();
size_t plan_cache_size();
size_t kernel_cache_size();

}  // namespace nef::compiler
