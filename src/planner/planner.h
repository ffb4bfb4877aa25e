// Device planner: a pass over the optimized graph that assigns every node a device, records why
// and the predicted time, and inserts explicit transfers (op "copy") where a value crosses a
// device boundary. Placement minimizes the estimated finish time of the whole graph (list
// scheduling over a cost model from each device's measured profile, transfers included), within
// capabilities (Device::supports), per-device memory budgets and hints (a node's device_hint:
// "opencl", "opencl:0", "gpu", "cpu"). Fallback-only targets (the CPU when NEF_DEVICES names
// other devices) take only what no other target supports.
#pragma once

#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/graph.h"
#include "planner/cost_model.h"

namespace nef::planner {

struct Target {
  backend::DevicePtr device;
  bool fallback_only = false;
  DeviceProfile profile;
  int64_t memory_budget = -1;  // bytes this plan may place there; -1 unlimited
};

// The enabled devices (backend registry) with their profiles and budgets. Calibrates a device
// the first time a real choice between devices needs its profile.
std::vector<Target> targets();

// Assigns node.device (an index into `targets`), placement_reason and predicted_seconds for every
// node (with a single target, where nothing is chosen, predicted_seconds is left 0 for
// estimate()), then inserts transfers. Throws UnsupportedError naming the op and shapes when no
// target supports a node.
void place(ir::Graph& g, const std::vector<Target>& targets);

// Re-estimates predicted_seconds of every node on its device, after fusion made new nodes
// (transfers keep their estimate).
void estimate(ir::Graph& g, const std::vector<Target>& targets);

// Moves node `v` to target `to` after placement (a compile failure reroutes a node to the host):
// drops the transfers, re-inserts them for the new assignment and re-validates the order.
void reroute(ir::Graph& g, int v, int to, const std::vector<Target>& targets,
             const std::string& reason);

// Transfers for the current assignment: a "copy" node on the consumer's device wherever a value
// is read on another device (one per value and destination), constants cloned onto the devices
// that read them instead (uploaded once per plan). Keeps the topological order; remaps outputs.
void insert_transfers(ir::Graph& g, const std::vector<Target>& targets);
// Undoes insert_transfers' copies (users read the copied value directly again).
void remove_transfers(ir::Graph& g);

}  // namespace nef::planner
