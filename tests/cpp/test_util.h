// Helpers for C++ op tests: run one op's CPU kernel directly (registry inference + kernel), and
// make random arrays. End-to-end tests go through nef::Tensor instead.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernel_table.h"
#include "common/dispatch.h"
#include "compiler/compiler.h"
#include "ir/graph.h"
#include "ir/op_registry.h"
#include "ir/views.h"
#include "nef/array.h"

namespace nef::test {

// The context passes run with outside the compiler: the host's kernels and capabilities.
inline const passes::PassContext& pass_ctx() {
  static const auto ctx = compiler::pass_context();
  return *ctx;
}

// Infers the output type, allocates it and runs the CPU kernel (view ops: their view, ir/views.h,
// on a contiguous copy when the input's strides cannot express it).
inline Array run_kernel(const std::string& op_name, const std::vector<Array>& inputs,
                        ir::Attrs attrs = {}) {
  const ir::OpDef& op = ir::get_op(op_name);
  std::vector<ir::TensorType> types;
  for (const Array& a : inputs) types.push_back({a.shape, a.dtype});
  ir::Node node;
  node.op = &op;
  node.type = ir::check_and_infer(op, types, attrs);
  node.attrs = attrs;
  if (op.has(ir::kView)) {
    std::optional<Array> v = ir::apply_view(node, inputs[0]);
    return v ? *v : *ir::apply_view(node, inputs[0].contiguous());
  }
  const auto* entry = backend::cpu::kernel_table().find(op_name);
  if (!entry) throw UnsupportedError("[" + op_name + "] no CPU kernel");
  Array out = Array::empty(node.type.shape, node.type.dtype);
  Array workspace;
  backend::KernelArgs args{inputs, out, node.attrs, node, workspace};
  entry->fn(args);
  return out;
}

// Random array of any dtype: floats uniform in [lo, hi), ints uniform in [lo, hi], bools 50/50.
inline Array random_array(const Shape& shape, DType dtype, std::mt19937_64& rng, double lo = -2,
                          double hi = 2) {
  Array a = Array::empty(shape, dtype);
  int64_t n = a.numel();
  nef::dispatch_dtype(dtype, [&]<typename T>() {
    T* p = a.data_as<T>();
    for (int64_t i = 0; i < n; ++i) {
      double v;
      if (is_floating(dtype)) {
        v = std::uniform_real_distribution<double>(lo, hi)(rng);
      } else if (dtype == DType::Bool) {
        v = double(rng() & 1);
      } else {
        v = double(std::uniform_int_distribution<int64_t>(int64_t(lo), int64_t(hi))(rng));
      }
      p[i] = nef::store_as<T>(nef::compute_t<T>(v));
    }
  });
  return a;
}

// Element i (row-major logical index) of any array, as double.
inline double element(const Array& a, int64_t flat) {
  int64_t off = 0;
  for (int d = a.rank() - 1; d >= 0; --d) {
    int64_t dim = a.shape[d];
    off += (flat % dim) * a.strides[d];
    flat /= dim;
  }
  return nef::dispatch_dtype(a.dtype, [&]<typename T>() -> double {
    return double(nef::load_as(static_cast<const T*>(a.storage->data())[a.offset + off]));
  });
}

inline std::vector<double> to_doubles(const Array& a) {
  std::vector<double> v(a.numel());
  for (int64_t i = 0; i < a.numel(); ++i) v[i] = element(a, i);
  return v;
}

}  // namespace nef::test
