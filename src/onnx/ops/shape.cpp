// ONNX layout and shape converters: Reshape, Transpose, Squeeze/Unsqueeze, Concat, Split, Slice,
// Gather, GatherElements, Shape, Size, Constant, ConstantOfShape, Expand, Flatten, Range, Trilu,
// Tile, Dropout. Shapes are static (the importer specializes every graph), so shape arithmetic
// happens here in C++ and only data movement becomes NEF ops.
#include <algorithm>
#include <cmath>
#include <limits>

#include "onnx/converter.h"

namespace nef::onnx_import {
namespace {

using Ints = std::vector<int64_t>;

std::string ints_str(const Ints& v) { return shape_str(Shape(v.begin(), v.end())); }

// Axes from an attribute/input, normalized against `rank`; repeats are a bad model.
Ints norm_axes(const NodeCtx& ctx, const Ints& axes, int64_t rank) {
  Ints out;
  for (int64_t a : axes) out.push_back(norm_axis(ctx, a, rank));
  Ints sorted = out;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    ctx.fail(str("repeated axis in ", ints_str(axes)));
  return out;
}

// ---- Reshape: 0 copies the input dim (unless allowzero), -1 is inferred by NEF's reshape.
std::vector<Tensor> reshape(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  Ints shape = ctx.static_ints(1);
  bool allowzero = ctx.attr_int("allowzero", 0) != 0;
  if (!allowzero) {
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] != 0) continue;
      if (int64_t(i) >= x.rank())
        ctx.fail(str("shape ", ints_str(shape), " copies dim ", i, " of input ",
                     shape_str(x.shape()), " which has no such dim"));
      shape[i] = x.shape()[i];
    }
  }
  return {nef::reshape(x, Shape(shape.begin(), shape.end()))};
}

std::vector<Tensor> transpose(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (!ctx.has_attr("perm")) return {nef::transpose(x)};
  return {nef::transpose(x, ctx.attr_ints("perm"))};
}

std::vector<Tensor> squeeze(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (!ctx.has_input(1)) return {nef::squeeze(x)};
  return {nef::squeeze(x, norm_axes(ctx, ctx.static_ints(1), x.rank()))};
}

std::vector<Tensor> unsqueeze(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  Ints axes = ctx.static_ints(1);
  return {nef::expand_dims(x, norm_axes(ctx, axes, x.rank() + int64_t(axes.size())))};
}

std::vector<Tensor> concat(NodeCtx& ctx) {
  std::vector<Tensor> xs;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) xs.push_back(ctx.input(i));
  if (xs.empty()) ctx.fail("needs at least one input");
  int64_t axis = norm_axis(ctx, ctx.attr_int("axis"), xs[0].rank());
  return {nef::concat(xs, axis)};
}

// Split sizes come from the `split` input, else from num_outputs (attribute from opset 18, the
// node's output count before): equal chunks of ceil(dim / n), the last one smaller.
std::vector<Tensor> split(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  int64_t axis = norm_axis(ctx, ctx.attr_int("axis", 0), x.rank());
  int64_t dim = x.shape()[axis];
  Ints sizes;
  if (ctx.has_input(1)) {
    sizes = ctx.static_ints(1);
    if (ctx.has_attr("num_outputs")) ctx.fail("give either the split input or num_outputs");
    if (sizes.size() != ctx.num_outputs())
      ctx.fail(str("split ", ints_str(sizes), " has ", sizes.size(), " sizes for ",
                   ctx.num_outputs(), " outputs"));
  } else {
    int64_t n = int64_t(ctx.num_outputs());
    if (ctx.opset() >= 18 && ctx.has_attr("num_outputs")) {
      n = ctx.attr_int("num_outputs");
      if (n != int64_t(ctx.num_outputs()))
        ctx.fail(str("num_outputs ", n, " differs from the node's ", ctx.num_outputs(),
                     " outputs"));
    }
    if (n < 1) ctx.fail("needs at least one output");
    int64_t chunk = dim % n == 0 ? dim / n : dim / n + 1;
    sizes.assign(size_t(n), chunk);
    sizes.back() = dim - chunk * (n - 1);
    if (sizes.back() < 0)
      ctx.fail(str("cannot split axis ", axis, " of ", shape_str(x.shape()), " into ", n,
                   " chunks of ", chunk));
  }
  return nef::split(x, sizes, axis);
}

// Slice bounds are made canonical here (ONNX clamps differently from Python): for a positive
// step start/end clamp to [0, n]; for a negative one start clamps to [0, n-1] and end to
// [-1, n-1], where -1 is NEF's "before index 0".
std::vector<Tensor> slice(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  const int64_t rank = x.rank();
  Ints starts = ctx.static_ints(1), ends = ctx.static_ints(2);
  if (starts.size() != ends.size())
    ctx.fail(str("starts ", ints_str(starts), " and ends ", ints_str(ends), " differ in length"));
  Ints axes, steps(starts.size(), 1);
  if (ctx.has_input(3)) {
    axes = norm_axes(ctx, ctx.static_ints(3), rank);
  } else {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
  }
  if (ctx.has_input(4)) steps = ctx.static_ints(4);
  if (axes.size() != starts.size() || steps.size() != starts.size())
    ctx.fail(str("starts, ends, axes and steps need the same length, got ", starts.size(), ", ",
                 ends.size(), ", ", axes.size(), ", ", steps.size()));
  Ints b(size_t(rank), 0), e(x.shape().begin(), x.shape().end()), s(size_t(rank), 1);
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t a = axes[i];
    if (a >= rank) ctx.fail(str("axis ", a, " out of range for input ", shape_str(x.shape())));
    const int64_t n = x.shape()[a], step = steps[i];
    if (step == 0) ctx.fail("slice step cannot be 0");
    int64_t st = starts[i], en = ends[i];
    if (st < 0) st = st < -n ? -n - 1 : st + n;  // saturating: st may be INT64_MIN
    if (en < 0) en = en < -n ? -n - 1 : en + n;
    if (step > 0) {
      st = std::clamp<int64_t>(st, 0, n);
      en = std::clamp<int64_t>(en, 0, n);
    } else {
      st = std::clamp<int64_t>(st, 0, std::max<int64_t>(n - 1, 0));
      en = std::clamp<int64_t>(en, -1, n - 1);
      if (n == 0) st = -1;  // nothing to take
    }
    b[a] = st;
    e[a] = en;
    s[a] = step;
  }
  return {nef::slice(x, b, e, s)};
}

std::vector<Tensor> gather(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  int64_t axis = norm_axis(ctx, ctx.attr_int("axis", 0), x.rank());
  return {nef::gather(x, ctx.input(1), axis)};
}

// GatherElements as a flat gather: linear index = wrapped index * stride(axis) + the other
// coordinates (aranges broadcast along their dims) * their strides.
std::vector<Tensor> gather_elements(NodeCtx& ctx) {
  Tensor x = ctx.input(0), idx = ctx.input(1);
  const int64_t rank = x.rank();
  if (rank == 0) ctx.fail("data must have rank >= 1");
  if (idx.rank() != rank)
    ctx.fail(str("indices ", shape_str(idx.shape()), " must have the rank of data ",
                 shape_str(x.shape())));
  if (idx.dtype() != DType::Int32 && idx.dtype() != DType::Int64)
    ctx.fail(str("indices must be int32 or int64, got ", dtype_name(idx.dtype())));
  int64_t axis = norm_axis(ctx, ctx.attr_int("axis", 0), rank);
  Strides strides = contiguous_strides(x.shape());
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis && idx.shape()[d] > x.shape()[d])
      ctx.fail(str("indices ", shape_str(idx.shape()), " exceed data ", shape_str(x.shape()),
                   " on dim ", d));
  const DType i64 = DType::Int64;
  Tensor n = nef::scalar(double(x.shape()[axis]), i64);
  Tensor ix = nef::cast(idx, i64);
  ix = nef::where(nef::less(ix, nef::scalar(0, i64)), ix + n, ix);
  Tensor lin = strides[axis] == 1 ? ix : ix * nef::scalar(double(strides[axis]), i64);
  for (int64_t d = 0; d < rank; ++d) {
    if (d == axis || idx.shape()[d] == 1) continue;
    Shape along(size_t(rank), 1);
    along[d] = idx.shape()[d];
    Tensor coord = nef::arange(0, double(idx.shape()[d]), 1, i64).reshape(along);
    lin = lin + coord * nef::scalar(double(strides[d]), i64);
  }
  // An index outside [-n, n) must not land on another row's element: send it past the end so
  // that gather reports it at run time.
  Tensor bad = nef::logical_or(nef::less(ix, nef::scalar(0, i64)), nef::greater_equal(ix, n));
  lin = nef::where(bad, nef::scalar(double(x.numel()), i64), lin);
  Tensor flat = nef::reshape(x, {x.numel()});
  return {nef::gather(flat, lin, 0)};
}

std::vector<Tensor> shape_op(NodeCtx& ctx) {
  const Shape& s = ctx.input(0).shape();
  const int64_t r = int64_t(s.size());
  auto clampi = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  int64_t start = clampi(ctx.attr_int("start", 0));
  int64_t end = ctx.has_attr("end") ? clampi(ctx.attr_int("end")) : r;
  Ints dims;
  for (int64_t i = start; i < end; ++i) dims.push_back(s[size_t(i)]);
  int64_t len = int64_t(dims.size());
  return {nef::tensor<int64_t>(dims, {len})};
}

std::vector<Tensor> size_op(NodeCtx& ctx) {
  return {nef::tensor<int64_t>({ctx.input(0).numel()}, {})};
}

std::vector<Tensor> constant(NodeCtx& ctx) {
  for (const char* a : {"sparse_value", "value_string", "value_strings"})
    if (ctx.has_attr(a)) ctx.unsupported(str("attribute '", a, "'"));
  if (ctx.has_attr("value")) return {nef::from_array(ctx.attr_tensor("value"))};
  if (ctx.has_attr("value_float"))
    return {nef::tensor<float>({float(ctx.attr_float("value_float"))}, {})};
  if (ctx.has_attr("value_int")) return {nef::tensor<int64_t>({ctx.attr_int("value_int")}, {})};
  if (ctx.has_attr("value_floats")) {
    std::vector<double> v = ctx.attr_floats("value_floats");
    std::vector<float> f(v.begin(), v.end());
    return {nef::tensor<float>(f, {int64_t(f.size())})};
  }
  if (ctx.has_attr("value_ints")) {
    Ints v = ctx.attr_ints("value_ints");
    return {nef::tensor<int64_t>(v, {int64_t(v.size())})};
  }
  ctx.fail("needs one of the attributes value, value_float(s), value_int(s)");
}

Shape static_shape(const NodeCtx& ctx, size_t i) {
  Ints v = ctx.static_ints(i);
  for (int64_t d : v)
    if (d < 0) ctx.fail(str("shape ", ints_str(v), " has a negative dim"));
  return Shape(v.begin(), v.end());
}

// The value is broadcast from its one element (not passed as a double) so int64 stays exact.
std::vector<Tensor> constant_of_shape(NodeCtx& ctx) {
  Shape shape = static_shape(ctx, 0);
  Tensor v;
  if (ctx.has_attr("value")) {
    Array a = ctx.attr_tensor("value");
    if (a.numel() != 1)
      ctx.fail(str("value must hold one element, got shape ", shape_str(a.shape)));
    v = nef::reshape(nef::from_array(a), {});
  } else {
    v = nef::scalar(0, DType::Float32);
  }
  return {nef::broadcast_to(v, shape)};
}

// Expand broadcasts both ways: a 1 in `shape` keeps the input's dim.
std::vector<Tensor> expand(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  Shape want = static_shape(ctx, 1);
  Shape out = broadcast_shapes(x.shape(), want, "Expand");
  return {nef::broadcast_to(x, out)};
}

std::vector<Tensor> flatten(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  const int64_t r = x.rank();
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < -r || axis > r)
    ctx.fail(str("axis ", axis, " out of range for input ", shape_str(x.shape())));
  if (axis < 0) axis += r;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < r; ++d) (d < axis ? outer : inner) *= x.shape()[d];
  return {nef::reshape(x, {outer, inner})};
}

// Range needs its scalars at import time (the output length depends on them).
std::vector<Tensor> range(NodeCtx& ctx) {
  DType dt = ctx.input(0).dtype();
  for (size_t i = 0; i < 3; ++i) {
    if (ctx.input(i).numel() != 1)
      ctx.fail(str("input ", i, " must be a scalar, got ", shape_str(ctx.input(i).shape())));
    if (ctx.input(i).dtype() != dt) ctx.fail("start, limit and delta must share a dtype");
  }
  if (dt == DType::Bool || dt == DType::UInt8 || dt == DType::Int8)
    ctx.unsupported(str("dtype ", dtype_name(dt)));
  double start = ctx.static_floats(0)[0], limit = ctx.static_floats(1)[0];
  double delta = ctx.static_floats(2)[0];
  if (delta == 0) ctx.fail("delta cannot be 0");
  return {nef::arange(start, limit, delta, dt)};
}

// Trilu keeps x[..., i, j] where j - i >= k (upper) or j - i <= k (lower).
std::vector<Tensor> trilu(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (x.rank() < 2) ctx.fail(str("input must have rank >= 2, got ", shape_str(x.shape())));
  bool upper = ctx.attr_int("upper", 1) != 0;
  int64_t k = 0;
  if (ctx.has_input(1)) {
    Ints kv = ctx.static_ints(1);
    if (kv.size() != 1) ctx.fail("k must be a scalar");
    k = kv[0];
  }
  const int64_t n = x.shape()[x.rank() - 2], m = x.shape()[x.rank() - 1];
  k = std::clamp<int64_t>(k, -n - 1, m + 1);  // beyond these every element is kept or dropped
  const DType i64 = DType::Int64;
  Tensor rows = nef::arange(0, double(n), 1, i64).reshape({n, 1}) + nef::scalar(double(k), i64);
  Tensor cols = nef::arange(0, double(m), 1, i64).reshape({1, m});
  Tensor keep = upper ? nef::greater_equal(cols, rows) : nef::less_equal(cols, rows);
  return {nef::where(keep, x, nef::scalar(0, x.dtype()))};
}

// Tile one axis at a time: insert a dim before it, broadcast it to the repeat count, merge.
std::vector<Tensor> tile(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  Ints reps = ctx.static_ints(1);
  if (int64_t(reps.size()) != x.rank())
    ctx.fail(str("repeats ", ints_str(reps), " need one value per dim of ",
                 shape_str(x.shape())));
  for (size_t d = 0; d < reps.size(); ++d) {
    if (reps[d] < 0) ctx.fail(str("negative repeat in ", ints_str(reps)));
    if (reps[d] == 1) continue;
    Shape s = x.shape();
    if (reps[d] > kMaxElements || (s[d] > 0 && reps[d] > kMaxElements / s[d]))
      throw ShapeError(str(ctx.where(), ": repeats ", ints_str(reps), " make input ",
                           shape_str(x.shape()), " too large"));
    Shape wide = s;
    wide.insert(wide.begin() + int64_t(d), reps[d]);
    Tensor t = nef::broadcast_to(nef::expand_dims(x, {int64_t(d)}), wide);
    s[d] *= reps[d];
    x = nef::reshape(t, s);
  }
  return {x};
}

// Inference Dropout is the identity and its mask all true; so is training with ratio 0 (the
// only training case that is deterministic).
std::vector<Tensor> dropout(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  ctx.ignore_attr("seed");
  auto scalar_of = [&](size_t i) {
    return nef::from_array(ctx.static_input(i)).astype(DType::Float64).item();
  };
  if (ctx.has_input(2) && scalar_of(2) != 0) {
    double ratio = ctx.has_input(1) ? scalar_of(1) : 0.5;
    if (ratio != 0) ctx.unsupported("training_mode = true with a nonzero ratio (random)");
  }
  std::vector<Tensor> out = {x};
  if (ctx.output_wanted(1)) out.push_back(nef::full(x.shape(), 1, DType::Bool));
  return out;
}

}  // namespace

void register_shape(ConverterTable& t) {
  t["Reshape"] = {reshape, 13};
  t["Transpose"] = {transpose, 13};
  t["Squeeze"] = {squeeze, 13};
  t["Unsqueeze"] = {unsqueeze, 13};
  t["Concat"] = {concat, 13};
  t["Split"] = {split, 13};
  t["Slice"] = {slice, 13};
  t["Gather"] = {gather, 13};
  t["GatherElements"] = {gather_elements, 13};
  t["Shape"] = {shape_op, 13};
  t["Size"] = {size_op, 13};
  t["Constant"] = {constant, 13};
  t["ConstantOfShape"] = {constant_of_shape, 13};
  t["Expand"] = {expand, 13};
  t["Flatten"] = {flatten, 13};
  t["Range"] = {range, 13};
  t["Trilu"] = {trilu, 14};
  t["Tile"] = {tile, 13};
  t["Dropout"] = {dropout, 13};
}

}  // namespace nef::onnx_import
