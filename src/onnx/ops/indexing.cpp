// ONNX indexing, sorting and scan converters: TopK, CumSum, CumProd, GatherND, ScatterND,
// ScatterElements (and the deprecated Scatter), OneHot, ReverseSequence, EyeLike. Each is one
// NEF op (topk + gather_elements for TopK's values) or a short composition: OneHot and EyeLike
// are a comparison of index ranges, ReverseSequence a gather_elements with computed indices.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "onnx/converter.h"

namespace nef::onnx_import {
namespace {

using Tensors = std::vector<Tensor>;
using Ints = std::vector<int64_t>;

Tensor numeric_input(const NodeCtx& ctx, size_t i) {
  Tensor x = ctx.input(i);
  if (x.dtype() == DType::Bool)
    ctx.fail(str("input ", i, " must be numeric, got bool ", shape_str(x.shape())));
  return x;
}

// One integer from a static 0-d or one-element 1-d input (axis, K, depth).
int64_t static_scalar(const NodeCtx& ctx, size_t i, const char* what) {
  Ints v = ctx.static_ints(i);
  if (v.size() != 1) ctx.fail(str(what, " must hold one value, got ", v.size()));
  return v[0];
}

// TopK: k is an attribute in revision 1 and a one-element int64 input from 10; largest and
// sorted from 11 (NEF always returns sorted results, which `sorted = 0` permits).
Tensors topk(NodeCtx& ctx) {
  Tensor x = numeric_input(ctx, 0);
  if (x.rank() == 0) ctx.fail("input must have rank >= 1");
  const int64_t axis = norm_axis(ctx, ctx.attr_int("axis", -1), x.rank());
  int64_t k = 0;
  if (ctx.version() < 10) {
    if (ctx.num_inputs() != 1)
      ctx.fail(str("expects 1 input before opset 10, got ", ctx.num_inputs()));
    k = ctx.attr_int("k");
  }
  bool largest = true;
  if (ctx.version() >= 11) {
    largest = ctx.attr_int("largest", 1) != 0;
    ctx.attr_int("sorted", 1);
  }
  if (ctx.version() >= 10 && !ctx.input_is_static(1)) {
    // K known only at run time: the value-shaped topk_k (engine/segments.h).
    Tensor kt = ctx.input(1);
    if (kt.dtype() != DType::Int64 || kt.numel() != 1 || kt.rank() > 1)
      ctx.fail(str("K must be a one-element int64 tensor, got ", dtype_name(kt.dtype()), " ",
                   shape_str(kt.shape())));
    ir::Attrs a;
    a.set("axis", axis);
    a.set("largest", largest);
    Tensor indices = nef::op("topk_k", {x, kt}, a);
    return {nef::gather_elements(x, indices, axis), indices};
  }
  if (ctx.version() >= 10) k = static_scalar(ctx, 1, "K");
  const int64_t n = x.shape()[size_t(axis)];
  if (k < 0 || k > n)
    throw ShapeError(str(ctx.where(), ": K = ", k, " must be in [0, ", n, "] for axis ", axis,
                         " of input ", shape_str(x.shape())));
  auto [values, indices] = nef::topk(x, k, axis, largest);
  return {values, indices};
}

// CumSum / CumProd: the axis is a static 0-d (or one-element) int32/int64 input.
Converter scan(bool prod) {
  return [prod](NodeCtx& ctx) -> Tensors {
    Tensor x = numeric_input(ctx, 0);
    if (x.rank() == 0) ctx.fail("input must have rank >= 1");
    const int64_t axis = norm_axis(ctx, static_scalar(ctx, 1, "axis"), x.rank());
    const bool exclusive = ctx.attr_int("exclusive", 0) != 0;
    const bool reverse = ctx.attr_int("reverse", 0) != 0;
    return {prod ? nef::cumprod(x, axis, exclusive, reverse)
                 : nef::cumsum(x, axis, exclusive, reverse)};
  };
}

// GatherND: batch_dims from revision 12.
Tensors gather_nd(NodeCtx& ctx) {
  Tensor x = ctx.input(0), idx = ctx.input(1);
  const int64_t b = ctx.version() >= 12 ? ctx.attr_int("batch_dims", 0) : 0;
  return {nef::gather_nd(x, idx, b)};
}

// The scatter reductions: none until 16, add/mul from 16, max/min from 18.
std::string scatter_reduction(const NodeCtx& ctx) {
  if (ctx.version() < 16) return "none";
  std::string r = ctx.attr_string("reduction", "none");
  const bool ok = r == "none" || r == "add" || r == "mul" ||
                  (ctx.version() >= 18 && (r == "max" || r == "min"));
  if (!ok) ctx.fail(str("reduction \"", r, "\" is not defined in opset ", ctx.opset()));
  return r;
}

Tensors scatter_nd(NodeCtx& ctx) {
  return {nef::scatter_nd(ctx.input(0), ctx.input(1), ctx.input(2), scatter_reduction(ctx))};
}

Tensors scatter_elements(NodeCtx& ctx) {
  Tensor data = ctx.input(0);
  if (data.rank() == 0) ctx.fail("data must have rank >= 1");
  const int64_t axis = norm_axis(ctx, ctx.attr_int("axis", 0), data.rank());
  return {nef::scatter_elements(data, ctx.input(1), ctx.input(2), axis, scatter_reduction(ctx))};
}

// OneHot: out[..., d, ...] = on if d == index (negative indices count from depth) else off, the
// depth dim inserted at `axis`. Indices of any numeric type (floats truncate); an index outside
// [-depth, depth) gives a row of off values.
Tensors one_hot(NodeCtx& ctx) {
  Tensor idx = numeric_input(ctx, 0);
  std::vector<double> dv = ctx.static_floats(1);
  if (dv.size() != 1) ctx.fail(str("depth must hold one value, got ", dv.size()));
  if (!(dv[0] >= 1) || dv[0] > double(kMaxElements))
    ctx.fail(str("depth must be a positive count, got ", dv[0]));
  const int64_t depth = int64_t(dv[0]);
  Tensor values = ctx.input(2);
  if (values.numel() != 2)
    ctx.fail(str("values must hold [off, on], got shape ", shape_str(values.shape())));
  const int64_t rank = idx.rank() + 1;
  const int64_t axis = norm_axis(ctx, ctx.attr_int("axis", -1), rank);
  const DType i64 = DType::Int64;
  Tensor ix = idx.dtype() == i64 ? idx : nef::cast(idx, i64);
  Tensor d = nef::scalar(double(depth), i64);
  ix = nef::where(nef::less(ix, nef::scalar(0, i64)), ix + d, ix);
  Shape along(size_t(rank), 1);
  along[size_t(axis)] = depth;
  Tensor pos = nef::arange(0, double(depth), 1, i64).reshape(along);
  Tensor hit = nef::equal(nef::expand_dims(ix, {axis}), pos);
  Tensor flat = nef::reshape(values, {2});
  Tensor off = nef::reshape(nef::slice(flat, {0}, {1}, {1}), {});
  Tensor on = nef::reshape(nef::slice(flat, {1}, {2}, {1}), {});
  return {nef::where(hit, on, off)};
}

// ReverseSequence: along time_axis, the first sequence_lens[b] elements of batch b reversed,
// the rest kept: a gather_elements with index (t < len ? len - 1 - t : t).
Tensors reverse_sequence(NodeCtx& ctx) {
  Tensor x = ctx.input(0), lens = ctx.input(1);
  if (x.rank() < 2) ctx.fail(str("input must have rank >= 2, got ", shape_str(x.shape())));
  const int64_t t_axis = ctx.attr_int("time_axis", 0), b_axis = ctx.attr_int("batch_axis", 1);
  if (!((t_axis == 0 && b_axis == 1) || (t_axis == 1 && b_axis == 0)))
    ctx.fail(str("time_axis and batch_axis must be 0 and 1 (either way), got ", t_axis, " and ",
                 b_axis));
  const int64_t steps = x.shape()[size_t(t_axis)], batch = x.shape()[size_t(b_axis)];
  if (lens.rank() != 1 || lens.shape()[0] != batch)
    ctx.fail(str("sequence_lens ", shape_str(lens.shape()), " must be (", batch, ",) for input ",
                 shape_str(x.shape())));
  if (!is_integer(lens.dtype())) ctx.fail("sequence_lens must be an integer tensor");
  const DType i64 = DType::Int64;
  Shape t_shape(size_t(x.rank()), 1), b_shape(size_t(x.rank()), 1);
  t_shape[size_t(t_axis)] = steps;
  b_shape[size_t(b_axis)] = batch;
  Tensor t = nef::arange(0, double(steps), 1, i64).reshape(t_shape);
  Tensor len = nef::reshape(nef::cast(lens, i64), b_shape);
  len = nef::clip(len, nef::scalar(0, i64), nef::scalar(double(steps), i64));
  Tensor idx = nef::where(nef::less(t, len), len - nef::scalar(1, i64) - t, t);
  return {nef::gather_elements(x, nef::broadcast_to(idx, x.shape()), t_axis)};
}

// EyeLike: ones where column - row == k on a 2-D shape, in `dtype` (default the input's).
Tensors eye_like(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (x.rank() != 2) ctx.fail(str("input must be 2-D, got ", shape_str(x.shape())));
  DType dt = x.dtype();
  if (ctx.has_attr("dtype")) {
    const int code = int(ctx.attr_int("dtype"));
    std::optional<DType> t = dtype_from_onnx(code);
    if (!t) ctx.unsupported(str("dtype ", onnx_type_name(code)));
    dt = *t;
  }
  const int64_t k = ctx.attr_int("k", 0);
  const int64_t rows = x.shape()[0], cols = x.shape()[1];
  const DType i64 = DType::Int64;
  Tensor r = nef::arange(0, double(rows), 1, i64).reshape({rows, 1});
  Tensor c = nef::arange(0, double(cols), 1, i64).reshape({1, cols});
  Tensor on = nef::equal(c - r, nef::scalar(double(k), i64));
  return {dt == DType::Bool ? on : nef::cast(on, dt)};
}

// TensorScatter (24): a KV cache update. past_cache [B, ..., M (axis), ...] gets update
// [B, ..., S, ...] written at write_indices[b] (zeros when absent) along `axis` of batch row b;
// mode "circular" wraps positions modulo M. Composed as a gather: cache slot m of row b takes
// update row (m - write_indices[b]) (mod M), where that row exists, else keeps past_cache.
// Linear writes past M are dropped (ONNX leaves them undefined).
Tensors tensor_scatter(NodeCtx& ctx) {
  Tensor past = ctx.input(0), upd = ctx.input(1);
  const Shape ps = past.shape(), us = upd.shape();
  const int64_t r = past.rank();
  if (r < 2)
    ctx.fail(str("past_cache must have rank >= 2 [B, ..., max_seq, ...], got ", shape_str(ps)));
  if (upd.dtype() != past.dtype())
    ctx.fail(str("update ", dtype_name(upd.dtype()), " must have past_cache's dtype ",
                 dtype_name(past.dtype())));
  const int64_t axis = norm_axis(ctx, ctx.attr_int("axis", -2), r);
  if (axis == 0) ctx.fail("axis must not be the batch axis 0");
  const std::string mode = ctx.attr_string("mode", "linear");
  if (mode != "linear" && mode != "circular")
    ctx.fail(str("mode must be linear or circular, got '", mode, "'"));
  const int64_t M = ps[size_t(axis)], S = int64_t(us.size()) == r ? us[size_t(axis)] : -1;
  bool ok = int64_t(us.size()) == r && S <= M;
  for (int64_t d = 0; ok && d < r; ++d) ok = d == axis || us[size_t(d)] == ps[size_t(d)];
  if (!ok)
    ctx.fail(str("update ", shape_str(us), " must match past_cache ", shape_str(ps),
                 " except on axis ", axis, ", where it may not be longer"));
  const int64_t B = ps[0];
  Tensor idx = zeros({B}, DType::Int64);
  if (ctx.has_input(2)) {
    idx = ctx.input(2);
    if (idx.shape() != Shape{B} || (idx.dtype() != DType::Int64 && idx.dtype() != DType::Int32))
      ctx.fail(str("write_indices must be int64 [B] = [", B, "], got ", dtype_name(idx.dtype()),
                   " ", shape_str(idx.shape())));
    idx = cast(idx, DType::Int64);
  }
  if (S == 0 || numel(ps) == 0) return {past};  // nothing written (as Identity returns it)
  // rel[b, m]: the update row cache slot m takes, valid when in [0, S).
  Tensor rel = reshape(arange(0, double(M), 1, DType::Int64), {1, M}) - reshape(idx, {B, 1});
  if (mode == "circular") {
    const Tensor m = scalar_like(double(M), DType::Int64);
    rel = nef::mod(nef::mod(rel, m) + m, m);  // non-negative whatever mod's sign convention
  }
  Tensor valid = logical_and(greater_equal(rel, scalar_like(0, DType::Int64)),
                             less(rel, scalar_like(double(S), DType::Int64)));
  Tensor row = clip(rel, scalar_like(0, DType::Int64), scalar_like(double(S - 1), DType::Int64));
  Shape bshape(size_t(r), 1);  // [B, 1.., M, 1..]
  bshape[0] = B;
  bshape[size_t(axis)] = M;
  Tensor rows = broadcast_to(reshape(row, bshape), ps);
  return {where(reshape(valid, bshape), gather_elements(upd, rows, axis), past)};
}

}  // namespace

void register_indexing(ConverterTable& t) {
  // Revisions (converter.h); the last number is the oldest one converted.
  t["TopK"] = {topk, {1, 10, 11, 24}, 1};
  t["CumSum"] = {scan(false), {11, 14}, 11};
  t["CumProd"] = {scan(true), {26}, 26};
  t["GatherND"] = {gather_nd, {11, 12, 13}, 11};
  t["ScatterND"] = {scatter_nd, {11, 13, 16, 18}, 11};
  t["ScatterElements"] = {scatter_elements, {11, 13, 16, 18}, 11};
  t["Scatter"] = {scatter_elements, {9, 11}, 9};  // ScatterElements' deprecated first name
  t["OneHot"] = {one_hot, {9, 11}, 9};
  t["ReverseSequence"] = {reverse_sequence, {10}, 10};
  t["EyeLike"] = {eye_like, {9, 22}, 9};
  t["TensorScatter"] = {tensor_scatter, {24}, 24};
}

}  // namespace nef::onnx_import
