// The compiled, executable form of a graph: the optimized and placed IR, one step per node, the
// devices it runs on and the planned memory. Plans are immutable and shared (the plan cache hands
// the same plan to every structurally identical graph); what runs keep between runs
// (device-resident constants) lives in `state`, behind its own lock; idle arenas are shared by
// all plans (runtime/arena_pool.h).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/graph.h"

namespace nef::runtime {

inline constexpr int64_t kArenaAlignment = 64;

enum class StepKind : uint8_t {
  Input,     // a binding, delivered on the node's device
  Constant,  // a constant, uploaded once to the node's device when that is not the host
  View,      // metadata over the input's storage (ir/views.h); no kernel
  Kernel,    // a compiled kernel on the node's device
  Copy,      // a transfer between devices (op "copy"; the node's device is the destination)
};

struct Step {
  int node = -1;  // index into graph.nodes
  StepKind kind = StepKind::Kernel;
  std::shared_ptr<const backend::Kernel> kernel;  // Kernel steps only
  double predicted_seconds = 0;                   // the cost model's estimate (Kernel, Copy)
  // Kernel::prepare's data for this plan's constants (packed GEMM weights), or null.
  std::shared_ptr<const backend::Prepared> prepared;
  // A concurrent group (compiler/concurrency.h): independent kernel steps of one device that run
  // at the same time, handed over when its last member is submitted. Members' first and last
  // step indexes; -1 for a step that runs alone.
  int group_first = -1, group_last = -1;
  bool grouped() const { return group_first >= 0; }
};

// Planned memory: every intermediate gets a byte offset in one arena per device, from liveness
// over the execution order (each device's queue runs its steps in that order; a concurrent
// group's members are one slot: what any of them reads or writes is live for the whole group).
// Views alias their base; an in-place-safe kernel may take over an input that dies at it; each
// kernel's workspace lives in the arena for its step only. Inputs, constants, graph outputs (and
// what they alias) and transfer buffers (copies' sources and results, touched by two queues) stay
// out: they are allocated per run, so no arena byte is ever shared between two devices' queues.
struct MemoryPlan {
  bool enabled = false;  // false: the runtime allocates every value and workspace separately
  // Per node (indexed like graph.nodes):
  std::vector<int64_t> offset;  // byte offset in its device's arena; -1 = not in the arena
  std::vector<int64_t> bytes;   // the value's size in bytes (0 for views)
  std::vector<int> alias_of;    // view nodes: the node whose buffer they view (the root); else -1
  std::vector<int> inplace_of;  // nodes written over this input's buffer; else -1
  std::vector<int> live_begin;  // step that produces the buffer (views: -1)
  std::vector<int> live_end;    // last step that reads it or any view of it
  std::vector<int64_t> workspace_offset;  // kernel workspace in the arena; -1 = none
  std::vector<int64_t> workspace_bytes;
  // Per device (indexed like plan.devices): arena size in bytes.
  std::vector<int64_t> arena_bytes;
  int64_t planned_peak_bytes = 0;  // sum of the arenas
  int64_t naive_bytes = 0;         // sum of the sizes of all values and workspaces in arenas
  int inplace_count = 0;
};

// What runs of one plan keep between runs: constants placed on a device other than the host,
// uploaded by the first run.
struct PlanState {
  std::mutex mu;
  std::vector<std::optional<Array>> resident;  // by node: uploaded constants
  // Drops the uploaded constants (out-of-memory ladder); returns bytes freed.
  int64_t evict();
};

struct Plan {
  ir::Graph graph;                          // after passes, placement and fusion
  std::vector<backend::DevicePtr> devices;  // node.device indexes this
  std::vector<Step> steps;                  // one per node, in node order
  std::string key;                          // structural key it was cached under
  std::vector<std::pair<std::string, std::string>> pass_dumps;  // (pass, IR text) if requested
  int kernels_compiled = 0;  // kernel-cache misses while compiling this plan
  MemoryPlan memory;
  double predicted_seconds = 0;  // the cost model's estimate of one run
  std::shared_ptr<PlanState> state = std::make_shared<PlanState>();

  const backend::Device& device_of(int node) const { return *devices[graph.nodes[node].device]; }
};

// "copy cpu -> opencl:0": how plans and profiles name a transfer step.
std::string copy_name(const Plan& plan, const Step& step);

}  // namespace nef::runtime
