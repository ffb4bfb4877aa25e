#include "ir/op_registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "nef/error.h"

namespace nef::ir {

void Registry::add(OpDef def) {
  if (find(def.name)) {
    std::fprintf(stderr, "nef: op '%s' registered twice\n", def.name.c_str());
    std::abort();
  }
  defs_.push_back(std::make_unique<OpDef>(std::move(def)));
  ordered_.push_back(defs_.back().get());
  by_name_.emplace(defs_.back()->name, defs_.back().get());
}

const OpDef* Registry::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

namespace {
const Registry& registry() {
  static const Registry r = [] {
    Registry reg;
    register_source_ops(reg);
    register_elementwise_ops(reg);
    register_reduction_ops(reg);
    register_linalg_nn_ops(reg);
    register_layout_ops(reg);
    register_fused_ops(reg);
    register_fused_matmul_ops(reg);
    register_pool_ops(reg);
    register_image_ops(reg);
    register_conv_ops(reg);
    register_indexing_ops(reg);
    register_sort_scan_ops(reg);
    register_decoder_ops(reg);
    register_quant_ops(reg);
    register_recurrent_ops(reg);
    register_dynamic_ops(reg);
    return reg;
  }();
  return r;
}
}  // namespace

const OpDef* find_op(std::string_view name) { return registry().find(name); }

const OpDef& get_op(std::string_view name) {
  const OpDef* d = find_op(name);
  if (!d) throw UnsupportedError(str("[", name, "] unknown op"));
  return *d;
}

const std::vector<const OpDef*>& all_ops() { return registry().all(); }

TensorType check_and_infer(const OpDef& op, const std::vector<TensorType>& inputs, Attrs& attrs) {
  int n = static_cast<int>(inputs.size());
  if (n < op.min_inputs || (op.max_inputs >= 0 && n > op.max_inputs)) {
    std::string want = op.max_inputs < 0                ? str("at least ", op.min_inputs)
                       : op.min_inputs == op.max_inputs ? std::to_string(op.min_inputs)
                                                        : str(op.min_inputs, " to ", op.max_inputs);
    throw ValidationError(str("[", op.name, "] expects ", want, " inputs, got ", n));
  }
  for (const auto& [name, value] : attrs.values()) {
    // Named copy of the binding: clang 14 (the fuzz build) cannot capture structured bindings.
    const std::string& key = name;
    auto spec = std::find_if(op.attrs.begin(), op.attrs.end(),
                             [&](const AttrSpec& s) { return s.name == key; });
    if (spec == op.attrs.end())
      throw ValidationError(str("[", op.name, "] unknown attribute '", name, "'"));
    AttrType t = attr_type_of(value);
    bool ok = t == spec->type || (spec->type == AttrType::Float && t == AttrType::Int) ||
              (spec->type == AttrType::Floats && t == AttrType::Ints);
    if (!ok)
      throw ValidationError(str("[", op.name, "] attribute '", name, "' must be ",
                                attr_type_name(spec->type), ", got ", attr_type_name(t)));
  }
  for (const AttrSpec& s : op.attrs) {
    if (const AttrValue* v = attrs.find(s.name)) {
      // Normalize int-given-as-float forms so canonical text is stable.
      if (s.type == AttrType::Float && attr_type_of(*v) == AttrType::Int)
        attrs.set(s.name, double(std::get<int64_t>(*v)));
      else if (s.type == AttrType::Floats && attr_type_of(*v) == AttrType::Ints) {
        const auto& iv = std::get<std::vector<int64_t>>(*v);
        attrs.set(s.name, std::vector<double>(iv.begin(), iv.end()));
      }
      continue;
    }
    if (s.default_value) attrs.set(s.name, *s.default_value);
    else if (s.required)
      throw ValidationError(str("[", op.name, "] missing required attribute '", s.name, "'"));
  }
  for (const TensorType& t : inputs) checked_numel(t.shape, op.name.c_str());
  TensorType out = op.infer(op, inputs, attrs);
  checked_numel(out.shape, op.name.c_str());
  out.weak = false;
  return out;
}

Cost estimate_cost(const OpDef& op, const std::vector<TensorType>& inputs, const TensorType& out,
                   const Attrs& attrs) {
  if (op.cost) return op.cost(inputs, out, attrs);
  Cost c;
  double on = double(numel(out.shape));
  c.flops = op.flops_per_element * on;
  c.bytes = on * double(dtype_size(out.dtype));
  for (const TensorType& t : inputs)
    c.bytes += double(numel(t.shape)) * double(dtype_size(t.dtype));
  return c;
}

Shape broadcast_all(const OpDef& op, const std::vector<TensorType>& inputs) {
  Shape s = inputs.empty() ? Shape{} : inputs[0].shape;
  for (size_t i = 1; i < inputs.size(); ++i) {
    try {
      s = broadcast_shapes(s, inputs[i].shape, op.name.c_str());
    } catch (const ShapeError&) {
      throw ShapeError(
          str("[", op.name, "] shapes ", types_str(inputs), " cannot be broadcast together"));
    }
  }
  return s;
}

std::string types_str(const std::vector<TensorType>& inputs) {
  std::string s;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i) s += ", ";
    s += shape_str(inputs[i].shape);
    s += ' ';
    s += dtype_name(inputs[i].dtype);
  }
  return s;
}

}  // namespace nef::ir
