// A run of a compiled plan: an object that submits the plan's steps to per-device queues (the
// host thread never waits on a device while it submits), keeps every value until the run ends,
// and reports the first failure with the step it happened at. Between steps it checks for a pause
// or cancel request, so a run can stop at a step boundary and go on later from where it stopped
// (the daemon's preempt/resume); the values so far are what a resume needs.
//
// Thread-safety: one thread drives a run (advance/wait); request_pause/cancel may come from any
// thread. Concurrent runs of one plan are independent (separate arenas and queues).
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <vector>

#include "nef/array.h"
#include "nef/tensor.h"
#include "runtime/plan.h"

namespace nef::runtime {

struct StepFailure {
  int step = -1;    // index into plan.steps (= node index)
  int device = -1;  // index into plan.devices of the device it ran on
  std::exception_ptr error;
};

class Run {
 public:
  // `bindings` must match the graph's input types (checked at the input steps: ShapeError /
  // TypeError naming the input). Allocates the arenas (OutOfMemoryError) and acquires queues.
  Run(std::shared_ptr<const Plan> plan, std::vector<Array> bindings);
  ~Run();  // waits for submitted work (never throws)
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  // Submits steps until all are submitted (returns true), a pause or cancel request stops it
  // (false), or a step fails to submit (false; see failure()).
  bool advance();
  // Waits for everything submitted; then failure() is final for the submitted part.
  void wait();
  // Requests a stop at the next step boundary (from any thread).
  void request_pause() { pause_.store(true); }
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  // Clears a pause request; advance() then goes on from next_step().
  void resume() { pause_.store(false); }

  int next_step() const { return next_; }
  bool finished() const { return next_ == int(plan_->steps.size()) && waited_; }
  // The first failed step in step order (after wait()), or nullopt.
  const std::optional<StepFailure>& failure() const { return failure_; }
  // The value of node `node` when its step completed successfully (after wait()), else null.
  const Array* value(int node) const;
  // Graph outputs in order, where they were computed (device arrays stay on their device).
  // Requires a finished run without failure.
  std::vector<Array> outputs() const;
  const Plan& plan() const { return *plan_; }
  // The bindings it was given (the failure ladder retries with them).
  const std::vector<Array>& bindings() const;

 private:
  struct Impl;
  void submit(int step);
  // Hands the concurrent group submitted so far to its device (no-op when there is none).
  void launch_group();
  bool submit_step_safely(int step);

  std::shared_ptr<const Plan> plan_;
  std::unique_ptr<Impl> impl_;
  int next_ = 0;
  bool waited_ = false;
  std::atomic<bool> pause_{false}, cancelled_{false};
  std::optional<StepFailure> failure_;
};

// Runs a whole plan on this thread's queues and returns its outputs; rethrows the first failure.
// (engine/execute.h adds the failure ladder on top.)
std::vector<Array> execute(std::shared_ptr<const Plan> plan, std::vector<Array> bindings);

// Per-kernel times of runs on this thread (nef::set_profiling, `nef run --profile`). Off, a run
// reads the flag once; on, it times each step and describes the kernels when the run ends,
// outside the timed calls.
void set_profiling(bool on);
bool profiling();
const RunProfile& last_profile();

}  // namespace nef::runtime
