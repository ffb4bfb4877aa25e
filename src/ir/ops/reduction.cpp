// Reduction op family: sum, mean, max, min, prod (attr `axes`, absent = all) and argmax, argmin
// (attr `axis`, absent = flattened). Inference canonicalizes axes to sorted, unique,
// non-negative values so that kernels and structural hashes see one spelling.
#include <algorithm>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

// Sorted unique non-negative axes; absent means every axis (kept absent so that an explicit
// empty list, which reduces nothing, stays distinguishable).
std::vector<int64_t> canonical_axes(const OpDef& op, const TensorType& x, Attrs& attrs) {
  const int rank = static_cast<int>(x.shape.size());
  const std::vector<int64_t>* given = attrs.opt_ints("axes");
  std::vector<int64_t> axes;
  if (!given) {
    for (int d = 0; d < rank; ++d) axes.push_back(d);
    return axes;
  }
  for (int64_t a : *given) {
    if (a < -rank || a >= rank)
      throw ShapeError(str("[", op.name, "] axis ", a, " out of range for rank ", rank, " (input ",
                           shape_str(x.shape), ")"));
    axes.push_back(normalize_axis(a, rank, op.name.c_str()));
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    throw ShapeError(str("[", op.name, "] duplicate axis in axes for input ", shape_str(x.shape)));
  attrs.set("axes", axes);
  return axes;
}

Shape reduced_shape(const Shape& s, const std::vector<int64_t>& axes, bool keepdims) {
  Shape out;
  size_t k = 0;
  for (size_t d = 0; d < s.size(); ++d) {
    bool reduced = k < axes.size() && axes[k] == int64_t(d);
    if (reduced) ++k;
    if (!reduced) out.push_back(s[d]);
    else if (keepdims) out.push_back(1);
  }
  return out;
}

int64_t reduced_extent(const Shape& s, const std::vector<int64_t>& axes) {
  int64_t n = 1;
  for (int64_t a : axes) n *= s[a];
  return n;
}

// sum, prod: ints widen to numpy's default accumulator (int64 for signed ints and bool, uint64
// for unsigned ints); floats stay.
TensorType infer_sum_prod(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  auto axes = canonical_axes(op, in[0], attrs);
  DType t = in[0].dtype;
  if (!is_floating(t)) t = is_integer(t) && !is_signed(t) ? DType::UInt64 : DType::Int64;
  return {reduced_shape(in[0].shape, axes, attrs.get_bool("keepdims")), t};
}

TensorType infer_mean(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  auto axes = canonical_axes(op, in[0], attrs);
  return {reduced_shape(in[0].shape, axes, attrs.get_bool("keepdims")), to_floating(in[0].dtype)};
}

// max, min: no identity, so an empty reduced extent is rejected at creation.
TensorType infer_max_min(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  auto axes = canonical_axes(op, in[0], attrs);
  if (reduced_extent(in[0].shape, axes) == 0)
    throw ShapeError(
        str("[", op.name, "] zero-size reduction has no identity: input ", shape_str(in[0].shape)));
  return {reduced_shape(in[0].shape, axes, attrs.get_bool("keepdims")), in[0].dtype};
}

TensorType infer_arg(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& s = in[0].shape;
  const int rank = static_cast<int>(s.size());
  bool keepdims = attrs.get_bool("keepdims");
  std::optional<int64_t> axis = attrs.opt_int("axis");
  if (!axis) {
    if (numel(s) == 0)
      throw ShapeError(
          str("[", op.name, "] attempt to take ", op.name, " of an empty tensor ", shape_str(s)));
    return {keepdims ? Shape(s.size(), 1) : Shape{}, DType::Int64};
  }
  if (*axis < -rank || *axis >= rank)
    throw ShapeError(str("[", op.name, "] axis ", *axis, " out of range for rank ", rank,
                         " (input ", shape_str(s), ")"));
  int a = normalize_axis(*axis, rank, op.name.c_str());
  attrs.set("axis", int64_t(a));
  if (s[a] == 0)
    throw ShapeError(str("[", op.name, "] zero-size axis ", a, " in input ", shape_str(s)));
  return {reduced_shape(s, {a}, keepdims), DType::Int64};
}

OpDef make(const char* name, InferFn infer, bool single_axis) {
  OpDef d;
  d.name = name;
  d.min_inputs = 1;
  d.max_inputs = 1;
  if (single_axis) d.attrs.push_back({"axis", AttrType::Int, std::nullopt, false});
  else d.attrs.push_back({"axes", AttrType::Ints, std::nullopt, false});
  d.attrs.push_back({"keepdims", AttrType::Bool, AttrValue(false), false});
  d.infer = infer;
  d.traits = kReduction;
  d.flops_per_element = 1;
  return d;
}

}  // namespace

void register_reduction_ops(Registry& r) {
  r.add(make("sum", infer_sum_prod, false));
  r.add(make("prod", infer_sum_prod, false));
  r.add(make("mean", infer_mean, false));
  r.add(make("max", infer_max_min, false));
  r.add(make("min", infer_max_min, false));
  r.add(make("argmax", infer_arg, true));
  r.add(make("argmin", infer_arg, true));
}

}  // namespace nef::ir
