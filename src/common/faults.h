// Fault injection, so that every rung of the failure ladder is exercised by tests on real
// devices: armed from NEF_FAULTS (read once) or set() (tests), as ';'-separated entries
//   <kind>:<device>[:<op>[:<times>]]
// kind: "oom" (the step's allocation on that device fails), "compile" (its kernel fails to
// compile there), "run" (it fails on the device after submission). device: an id ("opencl:0")
// or a backend ("opencl"); op: a registry op name or "*" (default); times: how many hits fire
// (default 1). Checks are cheap when nothing is armed (one relaxed atomic load).
#pragma once

#include <string>
#include <string_view>

namespace nef::faults {

// Replaces the armed faults ("" clears); ValidationError on a malformed spec.
void set(const std::string& spec);
// True, consuming one hit, when a fault of `kind` is armed for (device, op).
bool fire(std::string_view kind, std::string_view device, std::string_view op);

}  // namespace nef::faults
