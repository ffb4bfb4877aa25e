// NEF's OpenCL kernels. Every kernel is rendered as OpenCL C from the node it computes (through
// the C-style renderer for elementwise math, hand-written templates for GEMM, row ops and
// attention), with shapes and its inputs' strides baked in so index math folds. Arguments follow
// one convention: (out, out_off, in0, off0, in1, off1, ..., [ws, ws_off,] n, extra...), offsets
// in elements, n the output's element count. compile() renders the layout the planner expects
// (contiguous inputs); a launch whose inputs have other strides renders, builds and keeps that
// variant, so views never need a copy.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/opencl/opencl_device.h"

namespace nef::backend::opencl {

// One kernel argument after the fixed ones.
struct Arg {
  enum Kind { Mem, I64, F32, F64 } kind;
  cl_mem mem = nullptr;
  int64_t i = 0;
  double f = 0;
  static Arg i64(int64_t v) { return {I64, nullptr, v, 0}; }
  static Arg f32(double v) { return {F32, nullptr, 0, v}; }
};

// What a kernel renders for one layout of its inputs.
struct Launch {
  std::string source;
  std::string entry;
  size_t global = 0;  // work items (dimension 0)
  size_t local = 0;   // work-group size; 0: the driver's choice
  std::vector<Arg> extra;
};

// Enqueues `k` with `args` on `q` after `waits`; the returned event keeps `keep` alive.
EventPtr launch(OpenclQueue& q, ClKernel& k, const std::vector<Arg>& args, size_t global,
                size_t local, const WaitList& waits, std::vector<std::shared_ptr<void>> keep);

class OpenclKernel : public Kernel {
 public:
  OpenclKernel(OpenclDevice& dev, const ir::Node& node, std::vector<ir::TensorType> inputs,
               std::string name, int64_t workspace = 0);
  std::string name() const override { return name_; }
  int64_t workspace_bytes() const override { return workspace_; }
  EventPtr enqueue(const KernelArgs& args, Queue& queue, Waits waits) const final;
  // Renders and builds the contiguous layout now, so compile errors surface at compile time.
  void prepare() const;

 protected:
  // The launch for inputs with these strides (in elements, one per input dim).
  virtual Launch render(const std::vector<Strides>& strides) const = 0;
  OpenclDevice& dev_;
  ir::Node node_;  // op, attributes and output type (its input indices mean nothing here)
  std::vector<ir::TensorType> in_;

 private:
  const Launch& variant(const std::vector<Strides>& strides) const;
  std::string name_;
  int64_t workspace_;
  mutable std::mutex mu_;
  mutable std::map<std::vector<Strides>, Launch> variants_;
};

// A kernel family: which nodes it runs on a device, and the kernel for one.
struct Family {
  bool (*supports)(const ir::Node& n, const ir::Graph& g, const DeviceInfo& d);
  std::shared_ptr<OpenclKernel> (*make)(OpenclDevice& dev, const ir::Node& n, const ir::Graph& g);
};
// The family for `n`'s op, or null (kernels.cpp lists them).
const Family* family_for(const ir::Node& n);

// Storage types OpenCL kernels handle on `d` (float16/bfloat16: no; float64: with fp64).
bool storable(DType t, const DeviceInfo& d);

// Families (kernels_*.cpp).
extern const Family kElementwiseFamily;  // elementwise ops and fused_elementwise
extern const Family kMatmulFamily;       // matmul, matmul_epilogue
extern const Family kRowFamily;          // softmax, log_softmax, layernorm, rmsnorm
extern const Family kReductionFamily;    // sum, mean, prod, max, min, argmax, argmin
extern const Family kAttentionFamily;    // attention
extern const Family kQuantFamily;        // matmul_dynamic_int8

// Copies src (any strides, on the device) into dst (contiguous, on the device), bit for bit.
EventPtr strided_copy(OpenclDevice& dev, OpenclQueue& q, const Array& src, const Array& dst,
                      const WaitList& waits, std::vector<std::shared_ptr<void>> keep);

}  // namespace nef::backend::opencl
