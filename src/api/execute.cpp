// Execution of lazy tensors and the Tensor accessors that trigger it.
#include "engine/execute.h"

#include "api/lazy.h"
#include "backends/cpu/parallel.h"
#include "backends/registry.h"
#include "common/dispatch.h"
#include "common/session.h"
#include "runtime/plan.h"

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
  // The one copy of the bound values (the run takes it over).
  std::vector<Array> bindings;
  bindings.reserve(lp.bindings.size());
  for (const Array* a : lp.bindings) bindings.push_back(*a);
  // Results stay where they were computed until they are read (Tensor::array).
  std::vector<Array> outs = engine::execute(lp.plan, std::move(bindings));
  for (size_t i = 0; i < outs.size(); ++i) {
    lp.output_nodes[i]->value = std::move(outs[i]);
    lp.output_nodes[i]->take_inputs();  // a value stands for its history (detail::LazyNode)
  }
}

const Shape& Tensor::shape() const { return node_->type.shape; }
DType Tensor::dtype() const { return node_->type.dtype; }
const std::string& Tensor::op() const { return node_->op->name; }
bool Tensor::is_materialized() const { return node_->value.has_value(); }

Tensor& Tensor::execute() {
  evaluate({*this});
  return *this;
}

const Array* Tensor::host_value() const {
  return node_->value && node_->value->on_host() ? &*node_->value : nullptr;
}

const Array& Tensor::array() {
  execute();
  // Pulled to the host once, when read; later graphs read the host copy.
  if (!node_->value->on_host()) node_->value = to_host(*node_->value);
  return *node_->value;
}

template <typename T>
std::vector<T> Tensor::to_vector() {
  const Array& a = array();
  Array c = a.contiguous();
  std::vector<T> v(static_cast<size_t>(c.numel()));
  dispatch_dtype(c.dtype, [&]<typename S>() {
    const S* p = c.data_as<S>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<T>(load_as(p[i]));
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

Tensor& Tensor::prefer(const std::string& device) {
  if (!defined()) throw ValidationError("[prefer] undefined tensor");
  node_->set_device_hint(device);
  return *this;
}
const std::string& Tensor::device_hint() const { return node_->device_hint; }
std::string Tensor::device() const { return node_->value ? node_->value->device() : std::string(); }

DeviceScope::DeviceScope(std::string device) : previous_(detail::default_device_hint()) {
  detail::set_default_device_hint(std::move(device));
}
DeviceScope::~DeviceScope() { detail::set_default_device_hint(std::move(previous_)); }

std::map<std::string, int64_t> stats() { return counters().snapshot(); }
void reset_stats() { counters().reset(); }
void set_devices(const std::vector<std::string>& names) {
  if (names.empty()) backend::clear_device_override();
  else backend::set_device_override(names);
}
PlacementScope::PlacementScope(const std::vector<std::string>& names)
    : impl_(std::make_unique<backend::PlacementScope>(names)) {}
PlacementScope::~PlacementScope() = default;
void set_num_threads(int n) { current_session().set_threads(n); }
int num_threads() { return backend::cpu::num_threads(); }

}  // namespace nef
