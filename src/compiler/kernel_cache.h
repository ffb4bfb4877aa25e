// Kernel cache: compiled kernels keyed by (device, device settings, op, attributes, input and
// output types), compared exactly (a hash finds the candidates). Thread-safe, bounded (least
// recently used entries go first). Hits and misses are counted in the session's stats.
#pragma once

#include <memory>
#include <string>

#include "backends/backend.h"

namespace nef::compiler {

// A device's part of the key, computed once per plan rather than per node (config_key() formats
// a string).
struct DeviceKey {
  std::string id, config;
  uint64_t hash;
};
DeviceKey device_key_of(const backend::Device& dev);

// Throws CompileError (from the device) when the node cannot be compiled there. `dk` is
// device_key_of(dev).
std::shared_ptr<const backend::Kernel> get_kernel(const backend::Device& dev, const DeviceKey& dk,
                                                  const ir::Node& node, const ir::Graph& g,
                                                  bool* miss = nullptr);
void clear_kernel_cache();
size_t kernel_cache_entries();

inline constexpr size_t kKernelCacheCapacity = 4096;

}  // namespace nef::compiler
