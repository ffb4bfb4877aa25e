// Kernel cache: compiled kernels keyed by (op, attributes, input and output types, backend).
// Thread-safe. Hits and misses are counted in nef.stats().
#pragma once

#include <memory>
#include <string>

#include "backends/backend.h"

namespace nef::compiler {

std::shared_ptr<const backend::Kernel> get_kernel(const backend::Backend& be, const ir::Node& node,
                                                  const ir::Graph& g, bool* miss = nullptr);
std::string kernel_key(const backend::Backend& be, const ir::Node& node, const ir::Graph& g);
void clear_kernel_cache();
size_t kernel_cache_entries();

}  // namespace nef::compiler
