// ONNX converters for ops whose output shape depends on values: NonZero, Compress, Unique,
// NonMaxSuppression (TopK with a run-time K is in indexing.cpp). Each is NEF's value-shaped op
// (ir/ops/dynamic.cpp) plus layout and gathers: over data known at import the extent is
// computed then; over graph inputs the node stays unresolved and the graph runs in segments
// (engine/segments.h), also from a .nef file.
#include <cstdint>
#include <string>
#include <vector>

#include "onnx/converter.h"

namespace nef::onnx_import {
namespace {

using Tensors = std::vector<Tensor>;

// Column `c` of a [u, k] int64 table as a [u] vector (u may be known only at run time).
Tensor column(const Tensor& t, int64_t c) {
  return nef::squeeze(nef::slice(t, {0, c}, {INT64_MAX, c + 1}, {1, 1}), std::vector<int64_t>{1});
}

// NonZero: [rank, n] int64 indices of the nonzero elements, in C order.
Tensors nonzero(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (x.rank() == 0) ctx.unsupported("a 0-d input (numpy no longer defines nonzero of a scalar)");
  return {nef::op("nonzero", {x})};
}

// Compress: the slices (or, without an axis, the elements) of X whose condition is true; a
// condition shorter than the axis drops the rest.
Tensors compress(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  Tensor c = ctx.input(1);
  if (c.dtype() != DType::Bool)
    ctx.fail(str("condition must be bool, got ", dtype_name(c.dtype())));
  if (c.rank() != 1) ctx.fail(str("condition must be 1-d, got ", shape_str(c.shape())));
  Tensor idx = nef::squeeze(nef::op("nonzero", {c}), std::vector<int64_t>{0});
  if (!ctx.has_attr("axis")) {
    if (c.shape()[0] > x.numel())
      ctx.fail(str("condition ", shape_str(c.shape()), " is longer than the input's ", x.numel(),
                   " elements"));
    return {nef::gather(nef::reshape(x, {-1}), idx, 0)};
  }
  if (x.rank() == 0) ctx.fail("input must have rank >= 1 with an axis");
  const int64_t axis = norm_axis(ctx, ctx.attr_int("axis"), x.rank());
  if (c.shape()[0] > x.shape()[size_t(axis)])
    ctx.fail(str("condition ", shape_str(c.shape()), " is longer than axis ", axis, " of ",
                 shape_str(x.shape())));
  return {nef::gather(x, idx, axis)};
}

// Unique: Y, the first index of each, the inverse indices and the counts; over the flattened
// input without an axis. sorted = 0 keeps the order of first occurrence.
Tensors unique(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  const bool sorted = ctx.attr_int("sorted", 1) != 0;
  int64_t axis = 0;
  if (ctx.has_attr("axis")) {
    if (x.rank() == 0) ctx.fail("input must have rank >= 1 with an axis");
    axis = norm_axis(ctx, ctx.attr_int("axis"), x.rank());
  } else {
    x = nef::reshape(x, {-1});
  }
  ir::Attrs a;
  a.set("axis", axis);
  a.set("sorted", sorted);
  Tensor packed = nef::op("unique", {x}, a);
  Tensor first = column(packed, 0);
  return {nef::gather(x, first, axis), first, nef::op("unique_inverse", {x}, a), column(packed, 1)};
}

// NonMaxSuppression: the optional scalar inputs shape the result and are read at import.
Tensors nms(NodeCtx& ctx) {
  Tensor boxes = ctx.input(0), scores = ctx.input(1);
  if (boxes.dtype() != DType::Float32 || scores.dtype() != DType::Float32)
    ctx.unsupported(str("boxes and scores of type ", dtype_name(boxes.dtype()), "/",
                        dtype_name(scores.dtype()), " (NEF implements float32)"));
  auto one = [&](size_t i, const char* what) {
    std::vector<double> v = ctx.static_floats(i);
    if (v.size() != 1) ctx.fail(str(what, " must hold one value, got ", v.size()));
    return v[0];
  };
  ir::Attrs a;
  a.set("center_point_box", ctx.attr_int("center_point_box", 0));
  if (ctx.has_input(2)) {
    std::vector<int64_t> v = ctx.static_ints(2);
    if (v.size() != 1) ctx.fail(str("max_output_boxes_per_class must hold one value"));
    a.set("max_output", v[0]);
  }
  if (ctx.has_input(3)) a.set("iou_threshold", one(3, "iou_threshold"));
  if (ctx.has_input(4)) {
    a.set("score_threshold", one(4, "score_threshold"));
    a.set("has_score_threshold", true);
  }
  return {nef::op("non_max_suppression", {boxes, scores}, a)};
}

}  // namespace

void register_dynamic(ConverterTable& t) {
  // Revisions (converter.h); the last number is the oldest one converted.
  t["NonZero"] = {nonzero, {9, 13}, 9};
  t["Compress"] = {compress, {9, 11}, 9};
  t["Unique"] = {unique, {11}, 11};
  t["NonMaxSuppression"] = {nms, {10, 11}, 10};
}

}  // namespace nef::onnx_import
