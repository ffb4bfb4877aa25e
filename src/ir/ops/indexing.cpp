// Indexing op family: gather_elements (numpy's take_along_axis), gather_nd, scatter_elements and
// scatter_nd (ONNX's GatherElements/GatherND/ScatterElements/ScatterND). Indices are int32 or
// int64; a negative index counts from the end; an index out of range is a ValidationError when
// the kernel runs (values are not known at creation). Inference checks ranks and extents.
#include <algorithm>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

void check_index_dtype(const OpDef& op, const std::vector<TensorType>& in, size_t i) {
  if (in[i].dtype != DType::Int32 && in[i].dtype != DType::Int64)
    throw TypeError(str("[", op.name, "] indices must be int32 or int64, got ", types_str(in)));
}

// Reductions a scatter applies where indices repeat (and onto data): "none" replaces.
void check_reduction(const OpDef& op, const Attrs& attrs, const std::vector<TensorType>& in) {
  const std::string& r = attrs.get_string("reduction");
  if (r != "none" && r != "add" && r != "mul" && r != "max" && r != "min")
    throw ValidationError(
        str("[", op.name, "] reduction must be none, add, mul, max or min, got \"", r, "\""));
  if (r != "none" && in[0].dtype == DType::Bool && (r == "add" || r == "mul"))
    throw TypeError(
        str("[", op.name, "] reduction ", r, " is not defined for bool: ", types_str(in)));
}

// gather_elements / scatter_elements: indices of data's rank, no larger than data off `axis`.
int check_elements(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  const Shape& idx = in[1].shape;
  check_index_dtype(op, in, 1);
  if (x.empty()) throw ShapeError(str("[", op.name, "] data must have rank >= 1: ", types_str(in)));
  if (idx.size() != x.size())
    throw ShapeError(str("[", op.name, "] indices must have the rank of data: ", types_str(in)));
  int axis = normalize_axis(attrs.get_int("axis"), int(x.size()), op.name.c_str());
  for (size_t d = 0; d < x.size(); ++d)
    if (int(d) != axis && idx[d] > x[d])
      throw ShapeError(str("[", op.name, "] indices exceed data on dim ", d, ": ", types_str(in)));
  if (x[size_t(axis)] == 0 && numel(idx) > 0)
    throw ShapeError(
        str("[", op.name, "] cannot index the empty axis ", axis, ": ", types_str(in)));
  attrs.set("axis", int64_t{axis});
  return axis;
}

TensorType infer_gather_elements(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  check_elements(op, in, attrs);
  return {in[1].shape, in[0].dtype};
}

TensorType infer_scatter_elements(const OpDef& op, const std::vector<TensorType>& in,
                                  Attrs& attrs) {
  check_elements(op, in, attrs);
  check_reduction(op, attrs, in);
  if (in[2].shape != in[1].shape)
    throw ShapeError(
        str("[", op.name, "] updates must have the shape of indices: ", types_str(in)));
  if (in[2].dtype != in[0].dtype)
    throw TypeError(str("[", op.name, "] updates must have data's dtype: ", types_str(in)));
  return {in[0].shape, in[0].dtype};
}

// gather_nd / scatter_nd: indices (..., k) address k leading dims of data after batch_dims b;
// data.shape[:b] == indices.shape[:b].
struct NdShape {
  int64_t b, k;
};
NdShape check_nd(const OpDef& op, const std::vector<TensorType>& in, int64_t b) {
  const Shape& x = in[0].shape;
  const Shape& idx = in[1].shape;
  check_index_dtype(op, in, 1);
  if (x.empty() || idx.empty())
    throw ShapeError(str("[", op.name, "] data and indices must have rank >= 1: ", types_str(in)));
  const int64_t q = int64_t(idx.size()), r = int64_t(x.size());
  if (b < 0 || b >= std::min(q, r))
    throw ValidationError(str("[", op.name, "] batch_dims ", b,
                              " must be in [0, min(rank) - 1] for ", types_str(in)));
  const int64_t k = idx.back();
  if (k < 1 || b + k > r)
    throw ShapeError(str("[", op.name, "] the last dim of indices (", k,
                         ") must be in [1, rank(data) - batch_dims]: ", types_str(in)));
  for (int64_t d = 0; d < b; ++d)
    if (x[size_t(d)] != idx[size_t(d)])
      throw ShapeError(str("[", op.name, "] batch dim ", d,
                           " differs between data and indices: ", types_str(in)));
  return {b, k};
}

TensorType infer_gather_nd(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  NdShape nd = check_nd(op, in, attrs.get_int("batch_dims"));
  const Shape& x = in[0].shape;
  const Shape& idx = in[1].shape;
  Shape out(idx.begin(), idx.end() - 1);
  out.insert(out.end(), x.begin() + nd.b + nd.k, x.end());
  if (out.size() > size_t(kMaxRank))
    throw ShapeError(str("[", op.name, "] result rank ", out.size(), " exceeds ", kMaxRank, ": ",
                         types_str(in)));
  checked_numel(out, op.name.c_str());
  return {out, in[0].dtype};
}

TensorType infer_scatter_nd(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  NdShape nd = check_nd(op, in, 0);
  check_reduction(op, attrs, in);
  const Shape& x = in[0].shape;
  const Shape& idx = in[1].shape;
  Shape want(idx.begin(), idx.end() - 1);
  want.insert(want.end(), x.begin() + nd.k, x.end());
  if (in[2].shape != want)
    throw ShapeError(str("[", op.name, "] updates must have shape ", shape_str(want),
                         " (indices.shape[:-1] + data.shape[k:]): ", types_str(in)));
  if (in[2].dtype != in[0].dtype)
    throw TypeError(str("[", op.name, "] updates must have data's dtype: ", types_str(in)));
  return {x, in[0].dtype};
}

// Bytes: what is read and written (a scatter copies data once, then writes the updates).
Cost indexing_cost(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  double b = 2.0 * double(numel(out.shape)) * double(dtype_size(out.dtype));
  for (size_t i = 1; i < in.size(); ++i)
    b += double(numel(in[i].shape)) * double(dtype_size(in[i].dtype));
  return {0, b};
}

}  // namespace

void register_indexing_ops(Registry& r) {
  const AttrValue none = std::string("none");
  r.add({.name = "gather_elements",
         .min_inputs = 2,
         .max_inputs = 2,
         .attrs = {{"axis", AttrType::Int, int64_t{0}}},
         .infer = infer_gather_elements,
         .traits = 0,
         .cost = indexing_cost});
  r.add({.name = "gather_nd",
         .min_inputs = 2,
         .max_inputs = 2,
         .attrs = {{"batch_dims", AttrType::Int, int64_t{0}}},
         .infer = infer_gather_nd,
         .traits = 0,
         .cost = indexing_cost});
  r.add({.name = "scatter_elements",
         .min_inputs = 3,
         .max_inputs = 3,
         .attrs = {{"axis", AttrType::Int, int64_t{0}}, {"reduction", AttrType::String, none}},
         .infer = infer_scatter_elements,
         .traits = 0,
         .cost = indexing_cost});
  r.add({.name = "scatter_nd",
         .min_inputs = 3,
         .max_inputs = 3,
         .attrs = {{"reduction", AttrType::String, none}},
         .infer = infer_scatter_nd,
         .traits = 0,
         .cost = indexing_cost});
}

}  // namespace nef::ir
