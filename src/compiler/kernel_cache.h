// Kernel cache: compiled kernels keyed by (device, device settings, op, attributes, input and
// output types). Thread-safe, bounded (least recently used entries go first). Hits and misses
// are counted in the session's stats.
#pragma once

#include <memory>
#include <string>

#include "backends/backend.h"

namespace nef::compiler {

// Throws CompileError (from the device) when the node cannot be compiled there.
std::shared_ptr<const backend::Kernel> get_kernel(const backend::Device& dev, const ir::Node& node,
                                                  const ir::Graph& g, bool* miss = nullptr);
std::string kernel_key(const backend::Device& dev, const ir::Node& node, const ir::Graph& g);
void clear_kernel_cache();
size_t kernel_cache_entries();

inline constexpr size_t kKernelCacheCapacity = 4096;

}  // namespace nef::compiler
