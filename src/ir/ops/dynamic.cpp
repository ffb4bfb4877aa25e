// Ops whose output extent depends on input values (trait kValueShaped): nonzero, unique,
// non_max_suppression, topk_k. Each has an Int attribute "extent": -1 while unknown, when its
// output type uses an upper bound along the value-dependent dim (so a graph holding it still
// type-checks and serializes); the run-time segmenter (engine/segments.h) computes the extent
// with the op's "<name>_extent" companion (same inputs and attributes, an int64 scalar), sets it
// and re-infers the nodes after it. Kernels run only resolved nodes.
#include <algorithm>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

// The extent attribute: -1 or an extent within [0, bound].
int64_t extent_or(const OpDef& op, const Attrs& attrs, int64_t bound,
                  const std::vector<TensorType>& in) {
  const int64_t e = attrs.get_int("extent");
  if (e < -1 || e > bound)
    throw ShapeError(
        str("[", op.name, "] extent ", e, " outside [0, ", bound, "] for ", types_str(in)));
  return e < 0 ? bound : e;
}

bool is_extent_op(const OpDef& op) {
  return op.name.size() > 7 && op.name.compare(op.name.size() - 7, 7, "_extent") == 0;
}

TensorType scalar_or(const OpDef& op, TensorType out) {
  if (is_extent_op(op)) return {{}, DType::Int64};
  return out;
}

// nonzero: the indices of x's nonzero elements, one column per element in C order: [rank, n].
TensorType infer_nonzero(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  if (in[0].shape.empty())
    throw ShapeError(str("[", op.name, "] input must have rank >= 1: ", types_str(in)));
  const int64_t n = extent_or(op, attrs, numel(in[0].shape), in);
  return scalar_or(op, {{int64_t(in[0].shape.size()), n}, DType::Int64});
}

// unique: per distinct slice of x along `axis` (sorted by value, or in order of first
// occurrence), its first index and its count: [u, 2].
TensorType infer_unique(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  if (in[0].shape.empty())
    throw ShapeError(str("[", op.name, "] input must have rank >= 1: ", types_str(in)));
  const int axis = normalize_axis(attrs.get_int("axis"), int(in[0].shape.size()), op.name.c_str());
  attrs.set("axis", int64_t{axis});
  const int64_t n = in[0].shape[size_t(axis)];
  if (op.name == "unique_inverse") return {{n}, DType::Int64};
  return scalar_or(op, {{extent_or(op, attrs, n, in), 2}, DType::Int64});
}

// non_max_suppression: boxes [B, N, 4], scores [B, C, N] (float32) -> [selected, 3] rows of
// (batch, class, box), at most max_output per (batch, class).
TensorType infer_nms(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& b = in[0].shape;
  const Shape& s = in[1].shape;
  if (b.size() != 3 || b[2] != 4 || s.size() != 3 || s[0] != b[0] || s[2] != b[1])
    throw ShapeError(
        str("[", op.name, "] boxes must be [B, N, 4] and scores [B, C, N], got ", types_str(in)));
  if (in[0].dtype != DType::Float32 || in[1].dtype != DType::Float32)
    throw TypeError(str("[", op.name, "] boxes and scores must be float32, got ", types_str(in)));
  const int64_t cpb = attrs.get_int("center_point_box");
  if (cpb != 0 && cpb != 1)
    throw ValidationError(str("[", op.name, "] center_point_box must be 0 or 1, got ", cpb));
  const double iou = attrs.get_float("iou_threshold");
  if (!(iou >= 0 && iou <= 1))
    throw ValidationError(str("[", op.name, "] iou_threshold must be in [0, 1], got ", iou));
  const int64_t per_class = std::min(std::max<int64_t>(attrs.get_int("max_output"), 0), b[1]);
  return scalar_or(op, {{extent_or(op, attrs, b[0] * s[1] * per_class, in), 3}, DType::Int64});
}

// topk_k: topk whose k is a run-time int64 scalar (or one-element) input; k must be in
// [0, dim] (a ShapeError at run time otherwise).
TensorType infer_topk_k(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  if (in[0].dtype == DType::Bool)
    throw TypeError(str("[", op.name, "] not supported for bool: ", types_str(in)));
  if (x.empty())
    throw ShapeError(str("[", op.name, "] input must have rank >= 1: ", types_str(in)));
  if (in[1].dtype != DType::Int64 || numel(in[1].shape) != 1 || in[1].shape.size() > 1)
    throw TypeError(
        str("[", op.name, "] k must be a one-element int64 tensor, got ", types_str(in)));
  const int axis = normalize_axis(attrs.get_int("axis"), int(x.size()), op.name.c_str());
  attrs.set("axis", int64_t{axis});
  Shape out = x;
  out[size_t(axis)] = extent_or(op, attrs, x[size_t(axis)], in);
  return scalar_or(op, {out, DType::Int64});
}

// cond_select: `a` when the one-element cond is nonzero, else `b` (an ONNX If with a run-time
// condition; a and b are the branches' values and must agree in type). extent: -1 until the
// segment runner has read cond (then 1: a, 0: b); the kernel also chooses by cond itself.
TensorType infer_cond_select(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  if (numel(in[0].shape) != 1)
    throw ShapeError(str("[", op.name, "] the condition must hold one element: ", types_str(in)));
  if (is_extent_op(op)) return {{}, DType::Int64};
  if (!(in[1] == in[2]))
    throw TypeError(str("[", op.name, "] both branches must have one type: ", types_str(in)));
  const int64_t e = attrs.get_int("extent");
  if (e < -1 || e > 1)
    throw ValidationError(str("[", op.name, "] extent must be -1, 0 or 1, got ", e));
  return in[1];
}

void add_pair(Registry& r, const std::string& name, int min_in, int max_in,
              std::vector<AttrSpec> attrs, InferFn infer) {
  attrs.push_back({"extent", AttrType::Int, int64_t{-1}});
  r.add({.name = name,
         .min_inputs = min_in,
         .max_inputs = max_in,
         .attrs = attrs,
         .infer = infer,
         .traits = kValueShaped,
         .flops_per_element = 1});
  // The companion computes the extent from the same inputs and attributes; never folded into
  // a constant ahead of the segment that needs it (it is cheap, and its input is not static).
  r.add({.name = name + "_extent",
         .min_inputs = min_in,
         .max_inputs = max_in,
         .attrs = attrs,
         .infer = infer,
         .traits = 0,
         .flops_per_element = 1});
}

}  // namespace

void register_dynamic_ops(Registry& r) {
  add_pair(r, "nonzero", 1, 1, {}, infer_nonzero);
  add_pair(r, "unique", 1, 1,
           {{"axis", AttrType::Int, int64_t{0}}, {"sorted", AttrType::Bool, true}}, infer_unique);
  r.add({.name = "unique_inverse",
         .min_inputs = 1,
         .max_inputs = 1,
         .attrs = {{"axis", AttrType::Int, int64_t{0}}, {"sorted", AttrType::Bool, true}},
         .infer = infer_unique,
         .flops_per_element = 1});
  add_pair(r, "non_max_suppression", 2, 2,
           {{"center_point_box", AttrType::Int, int64_t{0}},
            {"max_output", AttrType::Int, int64_t{0}},
            {"iou_threshold", AttrType::Float, 0.0},
            {"score_threshold", AttrType::Float, 0.0},
            {"has_score_threshold", AttrType::Bool, false}},
           infer_nms);
  r.add({.name = "cond_select",
         .min_inputs = 3,
         .max_inputs = 3,
         .attrs = {{"extent", AttrType::Int, int64_t{-1}}},
         .infer = infer_cond_select});
  r.add({.name = "cond_select_extent",
         .min_inputs = 1,
         .max_inputs = 1,
         .attrs = {{"extent", AttrType::Int, int64_t{-1}}},
         .infer = infer_cond_select});
  add_pair(r, "topk_k", 2, 2,
           {{"axis", AttrType::Int, int64_t{-1}},
            {"largest", AttrType::Bool, true},
            {"sorted", AttrType::Bool, true}},
           infer_topk_k);
}

}  // namespace nef::ir
