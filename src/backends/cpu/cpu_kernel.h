// CPU kernels run synchronously on host memory; CpuKernel adapts them to the queue contract.
#pragma once

#include <string>

#include "backends/backend.h"

namespace nef::backend::cpu {

class CpuKernel : public Kernel {
 public:
  // Records num_threads() now: constructors size per-thread workspace with it, and every run
  // pins num_threads() to it (KernelThreadsScope), so a thread count changed meanwhile (by
  // another thread's nef.config) cannot index past the workspace.
  CpuKernel();
  int threads() const { return threads_; }
  // Runs the kernel now, on the calling thread (intra-op threads inside).
  virtual void run(const KernelArgs& args) const = 0;
  // Submits run(args) to the CpuQueue `queue`.
  EventPtr enqueue(const KernelArgs& args, Queue& queue, Waits waits) const final;

 private:
  int threads_;
};

// Runs a kernel of `device`-independent callers (constant folding, tests) at once on the host:
// allocates its workspace, runs it, rethrows its error.
void run_now(const CpuKernel& kernel, const std::vector<Array>& inputs, Array& out,
             const ir::Node& node);

}  // namespace nef::backend::cpu
