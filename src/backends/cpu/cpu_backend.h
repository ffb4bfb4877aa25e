// The CPU backend: one device ("cpu"), kernels from the kernel table, host memory, an inline
// queue (cpu_queue.h), the thread pool (thread_pool.h) inside kernels.
#pragma once

#include <memory>

#include "backends/backend.h"

namespace nef::backend::cpu {

std::shared_ptr<Backend> make_cpu_backend();

}  // namespace nef::backend::cpu
