// Sorting and scans: topk (the indices of the k largest or smallest elements along an axis; the
// values are gather_elements of them, see api topk) and cumsum/cumprod (running sums/products
// along an axis, optionally exclusive and/or reversed). Numeric dtypes; bool is a TypeError.
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

// topk: indices (int64) of x sorted by value along `axis`, largest first (largest = true) or
// smallest first, equal values in index order, NaN above every number. sorted = false allows
// any order (NEF always sorts).
TensorType infer_topk(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  if (in[0].dtype == DType::Bool)
    throw TypeError(str("[topk] not supported for bool: ", types_str(in)));
  if (x.empty()) throw ShapeError(str("[topk] input must have rank >= 1: ", types_str(in)));
  int axis = normalize_axis(attrs.get_int("axis"), int(x.size()), "topk");
  const int64_t k = attrs.get_int("k");
  if (k < 0 || k > x[size_t(axis)])
    throw ShapeError(str("[topk] k = ", k, " must be in [0, ", x[size_t(axis)], "] (axis ", axis,
                         " of ", types_str(in), ")"));
  attrs.set("axis", int64_t{axis});
  Shape out = x;
  out[size_t(axis)] = k;
  return {out, DType::Int64};
}

// cumsum / cumprod keep the dtype (ints wrap, half types accumulate in float32).
TensorType infer_scan(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  if (in[0].dtype == DType::Bool)
    throw TypeError(str("[", op.name, "] not supported for bool: ", types_str(in)));
  if (x.empty())
    throw ShapeError(str("[", op.name, "] input must have rank >= 1: ", types_str(in)));
  int axis = normalize_axis(attrs.get_int("axis"), int(x.size()), op.name.c_str());
  attrs.set("axis", int64_t{axis});
  return {x, in[0].dtype};
}

// Sorting reads each row once and does about log2(n) comparisons per element.
Cost topk_cost(const std::vector<TensorType>& in, const TensorType& out, const Attrs& attrs) {
  const double n = double(numel(in[0].shape));
  const int64_t axis = attrs.get_int("axis");
  const double len =
      axis >= 0 && axis < int64_t(in[0].shape.size()) ? double(in[0].shape[size_t(axis)]) : 1.0;
  double lg = 1;
  for (double span = 2; span < len && lg < 62; span *= 2) ++lg;
  return {n * lg, n * double(dtype_size(in[0].dtype)) + double(numel(out.shape)) * 8};
}

}  // namespace

void register_sort_scan_ops(Registry& r) {
  r.add({.name = "topk",
         .min_inputs = 1,
         .max_inputs = 1,
         .attrs = {{"k", AttrType::Int, std::nullopt, true},
                   {"axis", AttrType::Int, int64_t{-1}},
                   {"largest", AttrType::Bool, true},
                   {"sorted", AttrType::Bool, true}},
         .infer = infer_topk,
         .traits = 0,
         .cost = topk_cost});
  for (const char* name : {"cumsum", "cumprod"})
    r.add({.name = name,
           .min_inputs = 1,
           .max_inputs = 1,
           .attrs = {{"axis", AttrType::Int, int64_t{0}},
                     {"exclusive", AttrType::Bool, false},
                     {"reverse", AttrType::Bool, false}},
           .infer = infer_scan,
           .traits = 0,
           .flops_per_element = 1});
}

}  // namespace nef::ir
