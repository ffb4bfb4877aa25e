// Source ops: nodes with no tensor inputs. `input` is bound at run time (placeholders and data
// tensors), `constant` carries its value in the node, the rest are computed by kernels.
#include <cmath>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

DType dtype_attr(const OpDef& op, const Attrs& attrs) {
  const std::string& name = attrs.get_string("dtype");
  auto t = dtype_from_name(name);
  if (!t) throw ValidationError(str("[", op.name, "] unknown dtype '", name, "'"));
  return *t;
}

Shape shape_attr(const OpDef& op, const Attrs& attrs) {
  const auto& s = attrs.get_ints("shape");
  Shape shape(s.begin(), s.end());
  checked_numel(shape, op.name.c_str());
  return shape;
}

TensorType infer_shaped(const OpDef& op, const std::vector<TensorType>&, Attrs& attrs) {
  return {shape_attr(op, attrs), dtype_attr(op, attrs)};
}

TensorType infer_random(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  TensorType t = infer_shaped(op, in, attrs);
  if (!is_floating(t.dtype))
    throw TypeError(str("[", op.name, "] dtype must be a float type, got ", dtype_name(t.dtype)));
  return t;
}

TensorType infer_arange(const OpDef& op, const std::vector<TensorType>&, Attrs& attrs) {
  double start = attrs.get_float("start"), stop = attrs.get_float("stop");
  double step = attrs.get_float("step");
  if (step == 0 || !std::isfinite(step) || !std::isfinite(start) || !std::isfinite(stop))
    throw ValidationError(str("[arange] invalid range start=", start, " stop=", stop,
                              " step=", step));
  double len = std::ceil((stop - start) / step);
  if (!(len > 0)) len = 0;
  if (len > double(kMaxElements)) throw ShapeError(str("[arange] too many elements: ", len));
  return {{static_cast<int64_t>(len)}, dtype_attr(op, attrs)};
}

}  // namespace

void register_source_ops(Registry& r) {
  r.add({.name = "input",
         .min_inputs = 0,
         .max_inputs = 0,
         .attrs = {{"name", AttrType::String, std::string()},
                   {"shape", AttrType::Ints, std::nullopt, true},
                   {"dtype", AttrType::String, std::nullopt, true}},
         .infer = infer_shaped,
         .traits = kSource | kNoFold});
  r.add({.name = "constant",
         .min_inputs = 0,
         .max_inputs = 0,
         .attrs = {{"shape", AttrType::Ints, std::nullopt, true},
                   {"dtype", AttrType::String, std::nullopt, true}},
         .infer = infer_shaped,
         .traits = kSource});
  r.add({.name = "full",
         .min_inputs = 0,
         .max_inputs = 0,
         .attrs = {{"shape", AttrType::Ints, std::nullopt, true},
                   {"dtype", AttrType::String, std::nullopt, true},
                   {"value", AttrType::Float, std::nullopt, true}},
         .infer = infer_shaped,
         .traits = kSource,
         .flops_per_element = 0});
  r.add({.name = "arange",
         .min_inputs = 0,
         .max_inputs = 0,
         .attrs = {{"start", AttrType::Float, 0.0},
                   {"stop", AttrType::Float, std::nullopt, true},
                   {"step", AttrType::Float, 1.0},
                   {"dtype", AttrType::String, std::string("float32")}},
         .infer = infer_arange,
         .traits = kSource,
         .flops_per_element = 1});
  r.add({.name = "random_uniform",
         .min_inputs = 0,
         .max_inputs = 0,
         .attrs = {{"shape", AttrType::Ints, std::nullopt, true},
                   {"dtype", AttrType::String, std::string("float32")},
                   {"seed", AttrType::Int, int64_t{0}},
                   {"low", AttrType::Float, 0.0},
                   {"high", AttrType::Float, 1.0}},
         .infer = infer_random,
         .traits = kSource | kRandom,
         .flops_per_element = 10});
  r.add({.name = "random_normal",
         .min_inputs = 0,
         .max_inputs = 0,
         .attrs = {{"shape", AttrType::Ints, std::nullopt, true},
                   {"dtype", AttrType::String, std::string("float32")},
                   {"seed", AttrType::Int, int64_t{0}},
                   {"mean", AttrType::Float, 0.0},
                   {"std", AttrType::Float, 1.0}},
         .infer = infer_random,
         .traits = kSource | kRandom,
         .flops_per_element = 30});
}

}  // namespace nef::ir
