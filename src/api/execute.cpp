// Execution of lazy tensors and the Tensor accessors that trigger it.
#include "api/lazy.h"
#include "backends/cpu/dispatch.h"
#include "backends/cpu/parallel.h"
#include "compiler/plan.h"
#include "devices/devices.h"
#include "runtime/executor.h"
#include "runtime/stats.h"

namespace nef {

using detail::LazyNode;

void evaluate(const std::vector<Tensor>& tensors) {
  std::vector<LazyNode*> targets;
  for (const Tensor& t : tensors) {
    if (!t.defined()) throw ValidationError("[execute] undefined tensor");
    if (!t.node()->value) targets.push_back(t.node().get());
  }
  if (targets.empty()) return;
  // Through the lazy plan cache: a repeated evaluate of the same code builds no ir::Graph.
  detail::LazyPlan lp = detail::plan_for(targets);
  std::vector<Array> outs = runtime::execute(*lp.plan, lp.bindings);
  for (size_t i = 0; i < outs.size(); ++i) lp.output_nodes[i]->value = std::move(outs[i]);
}

const Shape& Tensor::shape() const { return node_->type.shape; }
DType Tensor::dtype() const { return node_->type.dtype; }
const std::string& Tensor::op() const { return node_->op->name; }
bool Tensor::is_materialized() const { return node_->value.has_value(); }

Tensor& Tensor::execute() {
  evaluate({*this});
  return *this;
}

const Array& Tensor::array() {
  execute();
  return *node_->value;
}

template <typename T>
std::vector<T> Tensor::to_vector() {
  const Array& a = array();
  Array c = a.contiguous();
  std::vector<T> v(static_cast<size_t>(c.numel()));
  backend::cpu::dispatch_dtype(c.dtype, [&]<typename S>() {
    const S* p = c.data_as<S>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(backend::cpu::load_as(p[i]));
  });
  return v;
}
template std::vector<float> Tensor::to_vector<float>();
template std::vector<double> Tensor::to_vector<double>();
template std::vector<int32_t> Tensor::to_vector<int32_t>();
template std::vector<int64_t> Tensor::to_vector<int64_t>();
template std::vector<uint8_t> Tensor::to_vector<uint8_t>();
template std::vector<int8_t> Tensor::to_vector<int8_t>();

double Tensor::item() {
  if (numel() != 1)
    throw ShapeError(str("[item] only single-element tensors convert to a scalar, got shape ",
                         shape_str(shape())));
  return to_vector<double>()[0];
}

std::map<std::string, int64_t> stats() { return runtime::stats_snapshot(); }
void reset_stats() { runtime::reset_stats(); }
void set_devices(const std::vector<std::string>& names) {
  if (names.empty()) devices::clear_device_override();
  else devices::set_device_override(names);
}
void set_num_threads(int n) { backend::cpu::set_num_threads(n); }
int num_threads() { return backend::cpu::num_threads(); }

}  // namespace nef
