// The one interface every backend (cpu/, later opencl/, cuda/) implements. The planner asks
// supports(); the compiler asks compile() for an executable kernel per node; the runtime runs
// kernels on arrays the backend allocated. A backend never sees the lazy API.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "nef/array.h"

namespace nef::backend {

// What a kernel receives. Inputs may be arbitrary strided views (stride 0 = broadcast, negative
// = reversed). For ops without the kView trait `out` arrives allocated, contiguous, of the
// inferred shape and dtype; a kView op's kernel instead sets `out` to a view of inputs[0].
struct KernelArgs {
  const std::vector<Array>& inputs;
  Array& out;
  const ir::Attrs& attrs;
  const ir::Node& node;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(const KernelArgs& args) const = 0;
  // Human-readable kernel name for plans and profiles ("cpu.binary.add.f32").
  virtual std::string name() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu"
  // Whether this backend can run the node (op, dtypes, shapes, attributes).
  virtual bool supports(const ir::Node& node, const ir::Graph& graph) const = 0;
  // Builds an executable kernel; throws CompileError. Results are cached by the compiler.
  virtual std::shared_ptr<const Kernel> compile(const ir::Node& node,
                                                const ir::Graph& graph) const = 0;
  // Allocates a contiguous array in this backend's memory (throws OutOfMemoryError).
  virtual Array allocate(const Shape& shape, DType dtype) const = 0;
};

// Backends available in this process, in default preference order (cpu last as fallback).
const std::vector<std::shared_ptr<Backend>>& registered_backends();
std::shared_ptr<Backend> find_backend(const std::string& name);
// The registered backends with an enabled device (devices::enabled_devices), in preference
// order. Throws DeviceError when none is left.
std::vector<std::shared_ptr<Backend>> enabled_backends();

}  // namespace nef::backend
