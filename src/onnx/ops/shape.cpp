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
  bool allowzero = ctx.version() >= 14 && ctx.attr_int("allowzero", 0) != 0;
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

// Axes are an attribute before revision 13 (optional for Squeeze, required for Unsqueeze), an
// input from 13.
std::optional<Ints> axes_of(const NodeCtx& ctx, bool required) {
  if (ctx.version() < 13) {
    if (ctx.num_inputs() != 1)
      ctx.fail(str("expects 1 input before opset 13 (axes is an attribute), got ",
                   ctx.num_inputs()));
    if (!required && !ctx.has_attr("axes")) return std::nullopt;
    return ctx.attr_ints("axes");
  }
  if (!ctx.has_input(1)) {
    if (required) ctx.fail("input 1 (axes) is required");
    return std::nullopt;
  }
  return ctx.static_ints(1);
}

std::vector<Tensor> squeeze(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  std::optional<Ints> axes = axes_of(ctx, false);
  if (!axes) return {nef::squeeze(x)};
  return {nef::squeeze(x, norm_axes(ctx, *axes, x.rank()))};
}

std::vector<Tensor> unsqueeze(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  Ints axes = *axes_of(ctx, true);
  return {nef::expand_dims(x, norm_axes(ctx, axes, x.rank() + int64_t(axes.size())))};
}

std::vector<Tensor> concat(NodeCtx& ctx) {
  std::vector<Tensor> xs;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) xs.push_back(ctx.input(i));
  if (xs.empty()) ctx.fail("needs at least one input");
  int64_t axis = norm_axis(ctx, ctx.attr_int("axis"), xs[0].rank());
  return {nef::concat(xs, axis)};
}

// Split sizes come from the `split` input (an attribute before opset 13), else from num_outputs
// (attribute from opset 18, the node's output count before): equal chunks of ceil(dim / n), the
// last one smaller.
std::vector<Tensor> split(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  int64_t axis = norm_axis(ctx, ctx.attr_int("axis", 0), x.rank());
  int64_t dim = x.shape()[axis];
  Ints sizes;
  const bool given = ctx.version() < 13 ? ctx.has_attr("split") : ctx.has_input(1);
  if (ctx.version() < 13 && ctx.num_inputs() != 1)
    ctx.fail(str("expects 1 input before opset 13 (split is an attribute), got ", ctx.num_inputs()));
  if (given) {
    sizes = ctx.version() < 13 ? ctx.attr_ints("split") : ctx.static_ints(1);
    if (ctx.version() >= 18 && ctx.has_attr("num_outputs"))
      ctx.fail("give either the split input or num_outputs");
    if (sizes.size() != ctx.num_outputs())
      ctx.fail(str("split ", ints_str(sizes), " has ", sizes.size(), " sizes for ",
                   ctx.num_outputs(), " outputs"));
  } else {
    int64_t n = int64_t(ctx.num_outputs());
    if (ctx.version() >= 18 && ctx.has_attr("num_outputs")) {
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
// Before revision 10, starts/ends/axes are attributes and there are no steps.
std::vector<Tensor> slice(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  const int64_t rank = x.rank();
  const bool attrs = ctx.version() < 10;
  if (attrs && ctx.num_inputs() != 1)
    ctx.fail(str("expects 1 input before opset 10 (starts, ends and axes are attributes), got ",
                 ctx.num_inputs()));
  Ints starts = attrs ? ctx.attr_ints("starts") : ctx.static_ints(1);
  Ints ends = attrs ? ctx.attr_ints("ends") : ctx.static_ints(2);
  if (starts.size() != ends.size())
    ctx.fail(str("starts ", ints_str(starts), " and ends ", ints_str(ends), " differ in length"));
  Ints axes, steps(starts.size(), 1);
  if (attrs ? ctx.has_attr("axes") : ctx.has_input(3)) {
    axes = norm_axes(ctx, attrs ? ctx.attr_ints("axes") : ctx.static_ints(3), rank);
  } else {
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
  }
  if (!attrs && ctx.has_input(4)) steps = ctx.static_ints(4);
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

// GatherElements is NEF's gather_elements (numpy's take_along_axis, negative indices wrapped;
// an index out of range is a ValidationError at run time).
std::vector<Tensor> gather_elements(NodeCtx& ctx) {
  Tensor x = ctx.input(0), idx = ctx.input(1);
  const int64_t rank = x.rank();
  if (rank == 0) ctx.fail("data must have rank >= 1");
  // Indices that do not fit the data make a malformed model (FormatError), as ONNX's checker
  // says; the values are checked when the kernel runs.
  if (idx.rank() != rank)
    ctx.fail(str("indices ", shape_str(idx.shape()), " must have the rank of data ",
                 shape_str(x.shape())));
  int64_t axis = norm_axis(ctx, ctx.attr_int("axis", 0), rank);
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis && idx.shape()[size_t(d)] > x.shape()[size_t(d)])
      ctx.fail(str("indices ", shape_str(idx.shape()), " exceed data ", shape_str(x.shape()),
                   " on dim ", d));
  return {nef::gather_elements(x, idx, axis)};
}

std::vector<Tensor> shape_op(NodeCtx& ctx) {
  const Shape& s = ctx.input(0).shape();
  const int64_t r = int64_t(s.size());
  auto clampi = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  // start/end from revision 15.
  const bool ranged = ctx.version() >= 15;
  int64_t start = ranged ? clampi(ctx.attr_int("start", 0)) : 0;
  int64_t end = ranged && ctx.has_attr("end") ? clampi(ctx.attr_int("end")) : r;
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
  // Revision 27's stash_type picks float32 (1) or the half type itself for accumulation; NEF
  // computes every element in double and rounds once, which matches float32 stashing.
  if (ctx.version() >= 27) {
    const int64_t stash = ctx.attr_int("stash_type", 1);
    if (stash != 1 && (dt == DType::Float16 || dt == DType::BFloat16))
      ctx.unsupported(str("stash_type ", stash, " (accumulation in the half type)"));
  }
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
// only training case that is deterministic). Before revision 12 the ratio is an attribute that
// only training reads and there is no training input; the mask is bool from revision 10 and of
// the input's type before.
std::vector<Tensor> dropout(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (ctx.version() < 12) {
    if (ctx.num_inputs() != 1)
      ctx.fail(str("expects 1 input before opset 12, got ", ctx.num_inputs()));
    ctx.ignore_attr("ratio");
    std::vector<Tensor> out = {x};
    if (ctx.output_wanted(1))
      out.push_back(nef::full(x.shape(), 1, ctx.version() >= 10 ? DType::Bool : x.dtype()));
    return out;
  }
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

// DepthToSpace / SpaceToDepth: a reshape, a transpose and a reshape (one copy, what a
// dedicated kernel would do). DCR (the default, and the only mode before opset 11) takes the
// block offsets from the outer part of the channel, CRD from the inner part.
Tensor nchw_input(const NodeCtx& ctx, int64_t& block) {
  Tensor x = ctx.input(0);
  if (x.rank() != 4) ctx.fail(str("input must be 4-D (N, C, H, W), got ", shape_str(x.shape())));
  block = ctx.attr_int("blocksize");
  if (block < 1 || block > (int64_t(1) << 20)) ctx.fail(str("blocksize must be >= 1, got ", block));
  return x;
}

// CenterCropPad: each listed axis cropped or zero-padded to its new length around the center
// (an odd difference puts the extra element at the end): a slice, then a constant pad.
std::vector<Tensor> center_crop_pad(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  const int64_t rank = x.rank();
  const std::vector<int64_t> shape = ctx.static_ints(1);
  Ints axes;
  if (ctx.has_attr("axes")) {
    for (int64_t a : ctx.attr_ints("axes")) axes.push_back(norm_axis(ctx, a, rank));
  } else {
    for (int64_t a = 0; a < rank; ++a) axes.push_back(a);
  }
  if (shape.size() != axes.size())
    ctx.fail(str("shape has ", shape.size(), " values for ", axes.size(), " axes of input ",
                 shape_str(x.shape())));
  std::vector<bool> seen(size_t(rank), false);
  Ints starts(size_t(rank), 0), stops(x.shape().begin(), x.shape().end()), steps(size_t(rank), 1);
  Ints pads(size_t(2 * rank), 0);
  bool crop = false, pad = false;
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t a = size_t(axes[i]);
    if (seen[a]) ctx.fail(str("axis ", axes[i], " is listed twice"));
    seen[a] = true;
    const int64_t dim = x.shape()[a], want = shape[i];
    if (want < 0 || want > kMaxElements)
      ctx.fail(str("shape value ", want, " for axis ", axes[i], " must be in [0, 2^48]"));
    if (want < dim) {
      starts[a] = (dim - want) / 2;
      stops[a] = starts[a] + want;
      crop = true;
    } else if (want > dim) {
      pads[a] = (want - dim) / 2;
      pads[a + size_t(rank)] = want - dim - pads[a];
      pad = true;
    }
  }
  if (crop) x = nef::slice(x, starts, stops, steps);
  if (pad) {
    ir::Attrs a;
    a.set("pads", pads);
    a.set("mode", std::string("constant"));
    a.set("value", 0.0);
    x = nef::op("pad", {x}, a);
  }
  return {x};
}

std::vector<Tensor> depth_to_space(NodeCtx& ctx) {
  int64_t b = 0;
  Tensor x = nchw_input(ctx, b);
  const std::string mode = ctx.version() >= 11 ? ctx.attr_string("mode", "DCR") : "DCR";
  if (mode != "DCR" && mode != "CRD") ctx.fail(str("mode must be \"DCR\" or \"CRD\", got \"", mode, "\""));
  const Shape& s = x.shape();
  const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
  if (c % (b * b) != 0)
    throw ShapeError(str(ctx.where(), ": channels of input ", shape_str(s),
                         " are not a multiple of blocksize^2 = ", b * b));
  const int64_t oc = c / (b * b);
  Tensor y = mode == "DCR"
                 ? nef::transpose(nef::reshape(x, {n, b, b, oc, h, w}), {0, 3, 4, 1, 5, 2})
                 : nef::transpose(nef::reshape(x, {n, oc, b, b, h, w}), {0, 1, 4, 2, 5, 3});
  return {nef::reshape(y, {n, oc, h * b, w * b})};
}

std::vector<Tensor> space_to_depth(NodeCtx& ctx) {
  int64_t b = 0;
  Tensor x = nchw_input(ctx, b);
  const Shape& s = x.shape();
  const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
  if (h % b != 0 || w % b != 0)
    throw ShapeError(str(ctx.where(), ": height and width of input ", shape_str(s),
                         " are not multiples of blocksize ", b));
  Tensor y = nef::transpose(nef::reshape(x, {n, c, h / b, b, w / b, b}), {0, 3, 5, 1, 2, 4});
  return {nef::reshape(y, {n, c * b * b, h / b, w / b})};
}

}  // namespace

void register_shape(ConverterTable& t) {
  // Revisions (converter.h); the last number is the oldest one converted. Later revisions that
  // only add dtypes share the converter.
  const std::vector<int> v25 = {19, 21, 23, 24, 25};  // dtype-only revisions of newer opsets
  auto with = [](std::vector<int> a, const std::vector<int>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  t["Reshape"] = {reshape, with({1, 5, 13, 14}, v25), 5};  // 1: shape attribute; 14: allowzero
  t["Transpose"] = {transpose, with({1, 13}, {21, 23, 24, 25}), 1};
  t["Squeeze"] = {squeeze, with({1, 11, 13}, {21, 23, 24, 25}), 1};      // axes input from 13
  t["Unsqueeze"] = {unsqueeze, with({1, 11, 13}, {21, 23, 24, 25}), 1};  // axes input from 13
  t["Concat"] = {concat, {1, 4, 11, 13}, 4};  // 1: axis optional (default 1)
  t["Split"] = {split, {1, 2, 11, 13, 18}, 2};  // 1: split as input or attribute; 13: input
  t["Slice"] = {slice, {1, 10, 11, 13}, 1};     // attributes before 10, steps from 10
  t["Gather"] = {gather, {1, 11, 13}, 1};
  t["GatherElements"] = {gather_elements, {11, 13}, 11};
  t["Shape"] = {shape_op, with({1, 13, 15}, v25), 1};  // start/end from 15
  t["Size"] = {size_op, with({1, 13}, v25), 1};
  t["Constant"] = {constant, with({1, 9, 11, 12, 13}, v25), 1};
  t["ConstantOfShape"] = {constant_of_shape, {9, 20, 21, 23, 24, 25}, 9};
  t["Expand"] = {expand, {8, 13}, 8};
  t["Flatten"] = {flatten, with({1, 9, 11, 13, 21}, {23, 24, 25}), 1};
  t["Range"] = {range, {11, 27}, 11};
  t["Trilu"] = {trilu, {14}, 14};
  t["Tile"] = {tile, {1, 6, 13}, 6};  // 1: tiles and axis inputs
  t["Dropout"] = {dropout, {1, 6, 7, 10, 12, 13, 22}, 7};  // 6: is_test
  t["DepthToSpace"] = {depth_to_space, {1, 11, 13}, 1};  // mode from 11
  t["SpaceToDepth"] = {space_to_depth, {1, 13}, 1};
  t["CenterCropPad"] = {center_crop_pad, {18}, 18};
}

}  // namespace nef::onnx_import
