// An optional device capability: running independent kernels of one run at the same time. The
// compiler groups consecutive independent kernel steps of such a device (compiler/concurrency.h)
// and the runtime hands each group over at once. Devices without it run one kernel at a time.
#pragma once

#include <memory>
#include <vector>

#include "backends/backend.h"

namespace nef::backend {

struct ConcurrentLaunch {
  const Kernel* kernel = nullptr;
  const KernelArgs* args = nullptr;  // outlives the launch (the run keeps it)
  std::shared_ptr<HostEvent> done;   // completed with this kernel's own outcome
};

class ConcurrentKernels {
 public:
  virtual ~ConcurrentKernels() = default;
  // How many kernels compiled now may run at the same time; 1 turns grouping off.
  virtual int max_concurrent_kernels() const = 0;
  // Whether enqueue_concurrent can run this kernel (one of this device's own kernels).
  virtual bool can_run_concurrently(const Kernel& kernel) const = 0;
  // Runs every launch on `queue` after `waits` and earlier work, all at the same time, each on
  // its own thread when threads are free (else one after another: the results are the same);
  // completes each launch's `done` with its kernel's error or success. Never throws.
  virtual void enqueue_concurrent(std::vector<ConcurrentLaunch> launches, Queue& queue,
                                  Waits waits) = 0;
};

}  // namespace nef::backend
