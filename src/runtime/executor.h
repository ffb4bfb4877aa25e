// Runs a compiled plan: binds inputs, places intermediates at their planned offsets in one arena
// per device (reused across runs of the plan), allocates graph outputs and unplanned values on
// each step's backend, runs kernels in order. Returns the graph outputs in order; they never
// point into an arena. Thread-safe: concurrent runs of one plan use separate arenas.
#pragma once

#include <vector>

#include "compiler/plan.h"
#include "nef/array.h"
#include "nef/tensor.h"

namespace nef::runtime {

// `bindings` must match the graph's input types (checked: ShapeError/TypeError naming the input).
std::vector<Array> execute(const compiler::Plan& plan, const std::vector<Array>& bindings);

// Per-kernel wall times of execute() on this thread (nef::set_profiling, `nef run --profile`).
// Off, a run reads the flag once and pays one branch per kernel; on, it times each kernel call
// and describes the kernels when the run ends, outside the timed calls.
void set_profiling(bool on);
bool profiling();
const RunProfile& last_profile();

}  // namespace nef::runtime
