// The CPU's queue: work runs inline on the submitting thread whenever nothing is pending and its
// waits are complete (a CPU-only run pays no thread hand-off); otherwise it is deferred, in order,
// to the queue's worker thread, which blocks on the foreign events (an OpenCL kernel's) first.
// So a host thread that feeds several devices never blocks on one of them while it submits.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "backends/backend.h"

namespace nef::backend::cpu {

class CpuQueue final : public Queue {
 public:
  CpuQueue() = default;
  ~CpuQueue() override;
  CpuQueue(const CpuQueue&) = delete;
  CpuQueue& operator=(const CpuQueue&) = delete;

  // Runs `work` after `waits` and all earlier work. Errors (thrown by `work`, or carried by a
  // failed wait, in which case `work` does not run) complete the returned event.
  EventPtr submit(std::function<void()> work, Waits waits);
  void synchronize() override;

 private:
  struct Task {
    std::function<void()> work;
    std::vector<EventPtr> waits;
    std::shared_ptr<HostEvent> done;
  };
  // Waits, then runs `work`; `seconds` (optional) gets the time the work itself took.
  static std::exception_ptr run_task(const std::function<void()>& work, Waits waits,
                                     double* seconds);
  void worker_loop();

  std::mutex mu_;
  std::condition_variable cv_;       // tasks queued / stop
  std::condition_variable idle_cv_;  // queue drained
  std::deque<Task> tasks_;
  bool busy_ = false;  // the worker is running a task
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace nef::backend::cpu
