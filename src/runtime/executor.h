// Runs a compiled plan: binds inputs, places intermediates at their planned offsets in one arena
// per device (reused across runs of the plan), allocates graph outputs and unplanned values on
// each step's backend, runs kernels in order. Returns the graph outputs in order; they never
// point into an arena. Thread-safe: concurrent runs of one plan use separate arenas.
#pragma once

#include <vector>

#include "compiler/plan.h"
#include "nef/array.h"

namespace nef::runtime {

// `bindings` must match the graph's input types (checked: ShapeError/TypeError naming the input).
std::vector<Array> execute(const compiler::Plan& plan, const std::vector<Array>& bindings);

// Per-step wall times of the last execute() on this thread (for --timing); empty if disabled.
struct StepTiming {
  int node;
  double ms;
};
void set_profiling(bool on);
const std::vector<StepTiming>& last_profile();

}  // namespace nef::runtime
