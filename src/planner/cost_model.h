// The cost model the planner places with: per (node, device) time from the op's FLOPs and bytes
// (the registry's cost estimate) and the device's measured characteristics, and per transfer the
// bytes over the link. Calibration measures each device once (a few short kernels and copies) and
// caches the profile on disk per machine, device, driver and NEF version.
#pragma once

#include <string>

#include "backends/backend.h"
#include "ir/graph.h"

namespace nef::planner {

struct DeviceProfile {
  double bandwidth_bytes = 1e10;  // device memory traffic (bytes read + written) per second
  double flops = 1e10;            // float32 FLOP/s on a large matmul
  double launch_seconds = 1e-6;   // fixed cost per kernel
  double to_host_bytes = 1e10;    // device -> host copy rate
  double from_host_bytes = 1e10;  // host -> device
  double transfer_seconds = 0;    // fixed cost per transfer
  bool measured = false;          // false: estimates from the device's facts
  std::string method;             // what measured `flops`: "matmul", or "tanh" without a GEMM
  std::string source;             // "measured", "cache <file>", "defaults"
};

// Predicted seconds of `n` on a device with profile `p`.
double node_seconds(const ir::Node& n, const ir::Graph& g, const DeviceProfile& p);
// Predicted seconds to move `bytes` from a device (profile `from`, host when `from_host`) to
// another (`to`, host when `to_host`).
double transfer_seconds(double bytes, const DeviceProfile& from, bool from_host,
                        const DeviceProfile& to, bool to_host);

// Defaults from the device's facts, without running anything.
DeviceProfile default_profile(const backend::Device& dev);
// The cached profile when one exists (no measurement), else the defaults: predictions for plans
// with a single device, where nothing needs choosing. The disk cache is read once per process
// (per device settings and cache location).
DeviceProfile known_profile(backend::Device& dev);
// The device's profile: from the disk cache when present and intact, else measured now (and
// cached). Thread-safe; measured at most once per device per process. NEF_CALIBRATION=off
// skips measuring (defaults).
const DeviceProfile& calibrated_profile(backend::Device& dev);

}  // namespace nef::planner
