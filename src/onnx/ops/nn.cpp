// ONNX neural-network converters: MatMul, Gemm, Softmax/LogSoftmax, the normalizations
// (LayerNormalization, BatchNormalization, InstanceNormalization), Conv/ConvTranspose, the pools,
// Pad and Resize. ONNX's geometry conveniences (auto_pad, output_shape, Resize's sizes/scales/
// axes/aspect policy) are resolved here into the explicit attributes NEF's ops take.
#include <algorithm>
#include <cmath>

#include "onnx/converter.h"
#include "onnx/ops/conv_geometry.h"

namespace nef::onnx_import {
namespace {

using Ints = std::vector<int64_t>;

ir::Attrs attrs(std::initializer_list<std::pair<const char*, ir::AttrValue>> kv) {
  ir::Attrs a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

std::string ints_str(const Ints& v) { return shape_str(Shape(v.begin(), v.end())); }

int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// A shape of rank `rank` that is 1 everywhere except `n` on axis 1 (per-channel broadcast).
Shape channel_shape(int64_t n, int64_t rank) {
  Shape s(size_t(rank), 1);
  s[1] = n;
  return s;
}

// ---- linear algebra and softmax ----------------------------------------------------------------

std::vector<Tensor> matmul(NodeCtx& ctx) { return {nef::matmul(ctx.input(0), ctx.input(1))}; }

// Y = alpha * A' @ B' + beta * C, C broadcast to Y's shape (never the other way). C is optional
// from revision 11; revision 6 broadcasts C only with broadcast=1 (else C has Y's shape).
std::vector<Tensor> gemm(NodeCtx& ctx) {
  Tensor a = ctx.input(0), b = ctx.input(1);
  if (a.rank() != 2 || b.rank() != 2)
    ctx.fail(str("A ", shape_str(a.shape()), " and B ", shape_str(b.shape()), " must be 2-D"));
  const double alpha = ctx.attr_float("alpha", 1.0), beta = ctx.attr_float("beta", 1.0);
  if (ctx.attr_int("transA", 0)) a = nef::transpose(a);
  if (ctx.attr_int("transB", 0)) b = nef::transpose(b);
  Tensor y = nef::matmul(a, b);
  const DType dt = y.dtype();
  if (alpha != 1.0) y = y * nef::scalar(alpha, dt);
  const bool c_broadcast = ctx.version() >= 7 || ctx.attr_int("broadcast", 0) != 0;
  if (ctx.version() < 11 && !ctx.has_input(2)) ctx.fail("input 2 (C) is required before opset 11");
  if (ctx.has_input(2) && !c_broadcast && ctx.input(2).shape() != y.shape())
    ctx.fail(str("C ", shape_str(ctx.input(2).shape()), " must have the output's shape ",
                 shape_str(y.shape()), " when broadcast = 0"));
  if (ctx.has_input(2) && beta != 0.0) {
    Tensor c = ctx.input(2);
    if (beta != 1.0) c = c * nef::scalar(beta, dt);
    Shape out = y.shape();
    if (broadcast_shapes(c.shape(), out, "Gemm") != out)
      ctx.fail(
          str("C ", shape_str(c.shape()), " does not broadcast to the output ", shape_str(out)));
    y = y + c;
  }
  return {y};
}

// Softmax, LogSoftmax and Hardmax before revision 13 coerce the input to 2-D, [prod(dims before
// axis), prod(dims from axis)], and normalize each row of that (axis defaults to 1); from 13
// they normalize along one axis (default -1). `row_op(x2, axis)` computes either form.
template <typename F>
std::vector<Tensor> row_normalize(NodeCtx& ctx, F row_op) {
  Tensor x = ctx.input(0);
  const int64_t rank = x.rank();
  if (ctx.version() >= 13) return {row_op(x, norm_axis(ctx, ctx.attr_int("axis", -1), rank))};
  int64_t axis = ctx.attr_int("axis", 1);
  if (axis < -rank || axis >= rank)
    throw ShapeError(
        str(ctx.where(), ": axis ", axis, " out of range for input ", shape_str(x.shape())));
  if (axis < 0) axis += rank;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < rank; ++d) (d < axis ? outer : inner) *= x.shape()[d];
  if (axis == rank - 1 && rank > 0) return {row_op(x, axis)};  // already rows
  return {nef::reshape(row_op(nef::reshape(x, {outer, inner}), 1), x.shape())};
}

std::vector<Tensor> softmax(NodeCtx& ctx) {
  return row_normalize(ctx, [](const Tensor& x, int64_t axis) { return nef::softmax(x, axis); });
}

std::vector<Tensor> log_softmax(NodeCtx& ctx) {
  return row_normalize(ctx,
                       [](const Tensor& x, int64_t axis) { return nef::log_softmax(x, axis); });
}

// Hardmax: 1 at the first maximum along the axis, 0 elsewhere (argmax compared with a range).
std::vector<Tensor> hardmax(NodeCtx& ctx) {
  if (!is_floating(ctx.input(0).dtype()))
    ctx.fail(str("input must be a float tensor, got ", dtype_name(ctx.input(0).dtype())));
  return row_normalize(ctx, [](const Tensor& x, int64_t axis) {
    const int64_t n = x.shape()[axis];
    if (x.numel() == 0) return nef::zeros(x.shape(), x.dtype());
    Shape along(size_t(x.rank()), 1);
    along[size_t(axis)] = n;
    Tensor pos = nef::arange(0, double(n), 1, DType::Int64).reshape(along);
    return nef::cast(nef::equal(pos, nef::argmax(x, axis, true)), x.dtype());
  });
}

// ---- normalizations ----------------------------------------------------------------------------

// Y through NEF's layernorm; Mean and InvStdDev (shape X.shape[:axis] + 1s) only when wanted,
// composed in the stash type.
std::vector<Tensor> layer_norm(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  const int64_t rank = x.rank();
  const int64_t axis = norm_axis(ctx, ctx.attr_int("axis", -1), rank);
  const double eps = ctx.attr_float("epsilon", 1e-5);
  const int64_t stash = ctx.attr_int("stash_type", 1);
  std::optional<DType> st = dtype_from_onnx(int(stash));
  if (!st || !is_floating(*st)) ctx.unsupported(str("stash_type ", stash));
  Tensor bias = ctx.has_input(2) ? ctx.input(2) : Tensor{};
  std::vector<Tensor> out = {nef::layernorm(x, ctx.input(1), bias, eps, axis)};
  if (ctx.output_wanted(1) || ctx.output_wanted(2)) {
    Ints axes;
    for (int64_t d = axis; d < rank; ++d) axes.push_back(d);
    Tensor xs = x.dtype() == *st ? x : nef::cast(x, *st);
    Tensor mean = nef::mean(xs, axes, true);
    Tensor centered = xs - mean;
    Tensor var = nef::mean(centered * centered, axes, true);
    out.push_back(mean);
    out.push_back(nef::rsqrt(var + nef::scalar(eps, *st)));
  }
  return out;
}

// Inference BatchNormalization: y = (x - mean) * (scale / sqrt(var + eps)) + B per channel
// (axis 1). Half types compute in float32 and round once.
// Revisions 7 and 9 have no training_mode (extra outputs mean training); revision 7's spatial=0
// gives every activation its own statistics: the parameters are (C, D1, ..., Dn).
std::vector<Tensor> batch_norm(NodeCtx& ctx) {
  if (ctx.version() >= 14 && ctx.attr_int("training_mode", 0) != 0)
    ctx.unsupported("training_mode = 1");
  const bool spatial = ctx.version() >= 9 || ctx.attr_int("spatial", 1) != 0;
  ctx.ignore_attr("momentum");  // only updates running statistics in training
  for (size_t i = 1; i < 5; ++i)
    if (ctx.output_wanted(i)) ctx.unsupported(str("output ", i, " (training only)"));
  Tensor x = ctx.input(0);
  const int64_t rank = x.rank();
  if (rank < 2) ctx.fail(str("input must be (N, C, ...), got ", shape_str(x.shape())));
  const int64_t c = x.shape()[1];
  const double eps = ctx.attr_float("epsilon", 1e-5);
  const DType xt = x.dtype();
  if (!is_floating(xt)) ctx.fail(str("input must be a float tensor, got ", dtype_name(xt)));
  const DType ct = (xt == DType::Float64) ? DType::Float64 : DType::Float32;
  std::vector<Tensor> p;
  const Shape per(x.shape().begin() + 1, x.shape().end());  // spatial = 0: (C, D1, ..., Dn)
  for (size_t i = 1; i < 5; ++i) {
    Tensor t = ctx.input(i);
    if (spatial ? (t.rank() != 1 || t.shape()[0] != c) : t.shape() != per)
      ctx.fail(str("input ", i, " ", shape_str(t.shape()), " must be ",
                   spatial ? str("(C,) with C = ", c) : shape_str(per), " for X ",
                   shape_str(x.shape())));
    p.push_back(t.dtype() == ct ? t : nef::cast(t, ct));
  }
  Tensor factor = p[0] * nef::rsqrt(p[3] + nef::scalar(eps, ct));  // scale / sqrt(var + eps)
  Tensor shift = p[1] - p[2] * factor;                             // B - mean * factor
  Shape cs = channel_shape(c, rank);
  if (!spatial) {
    cs.assign(x.shape().begin(), x.shape().end());
    cs[0] = 1;
  }
  Tensor xc = xt == ct ? x : nef::cast(x, ct);
  Tensor y = xc * factor.reshape(cs) + shift.reshape(cs);
  return {xt == ct ? y : nef::cast(y, xt)};
}

// InstanceNormalization = layernorm over the spatial dims (axis 2..), then per-channel affine.
std::vector<Tensor> instance_norm(NodeCtx& ctx) {
  Tensor x = ctx.input(0), scale = ctx.input(1), b = ctx.input(2);
  const int64_t rank = x.rank();
  if (rank < 3) ctx.fail(str("input must be (N, C, D1, ...), got ", shape_str(x.shape())));
  const int64_t c = x.shape()[1];
  for (const Tensor& t : {scale, b})
    if (t.rank() != 1 || t.shape()[0] != c)
      ctx.fail(str("scale and B must be (C,) with C = ", c, ", got ", shape_str(t.shape())));
  const double eps = ctx.attr_float("epsilon", 1e-5);
  Tensor y = nef::layernorm(x, {}, {}, eps, 2);
  Shape cs = channel_shape(c, rank);
  return {y * scale.reshape(cs) + b.reshape(cs)};
}

// GroupNormalization: the channels split into num_groups groups, each (with the spatial dims)
// normalized by its own mean and variance (a layernorm over [N, G, C/G * spatial]), then an
// affine with scale and bias per group (revision 18) or per channel (21). Revision 21's
// stash_type 1 (statistics in float32 at least) is what NEF's layernorm does; others are
// refused.
std::vector<Tensor> group_norm(NodeCtx& ctx) {
  Tensor x = ctx.input(0), scale = ctx.input(1), b = ctx.input(2);
  const int64_t rank = x.rank();
  if (rank < 2) ctx.fail(str("input must be (N, C, ...), got ", shape_str(x.shape())));
  if (!is_floating(x.dtype()))
    ctx.fail(str("input must be a float tensor, got ", dtype_name(x.dtype())));
  const int64_t c = x.shape()[1], g = ctx.attr_int("num_groups");
  if (g < 1 || c % g != 0)
    ctx.fail(str("num_groups ", g, " must divide the channels (", c, ") of input ",
                 shape_str(x.shape())));
  const bool per_channel = ctx.version() >= 21;
  if (per_channel && ctx.attr_int("stash_type", 1) != 1)
    ctx.unsupported(str("stash_type ", ctx.attr_int("stash_type", 1)));
  const int64_t n_affine = per_channel ? c : g;
  for (const Tensor& t : {scale, b})
    if (t.rank() != 1 || t.shape()[0] != n_affine || t.dtype() != x.dtype())
      ctx.fail(str("scale and bias must be (", per_channel ? "C" : "num_groups", ",) = (", n_affine,
                   ",) of the input's type, got ", shape_str(t.shape()), " ",
                   dtype_name(t.dtype())));
  const double eps = ctx.attr_float("epsilon", 1e-5);
  const int64_t n = x.shape()[0];
  const int64_t per_group = n == 0 || g == 0 ? 0 : x.numel() / (n * g);
  Tensor y = nef::layernorm(nef::reshape(x, {n, g, per_group}), {}, {}, eps, 2);
  if (!per_channel) {
    y = y * scale.reshape({1, g, 1}) + b.reshape({1, g, 1});
    return {nef::reshape(y, x.shape())};
  }
  Shape cs = channel_shape(c, rank);
  return {nef::reshape(y, x.shape()) * scale.reshape(cs) + b.reshape(cs)};
}

// ---- convolution and pooling geometry ----------------------------------------------------------

}  // namespace

// Shared with ops/quant.cpp (ConvInteger, QLinearConv): ops/conv_geometry.h.
constexpr int64_t kMaxGeometry = int64_t(1) << 31;

static Ints geometry_ints(const NodeCtx& ctx, const char* name, size_t n, int64_t fill) {
  Ints v = ctx.attr_ints(name, Ints(n, fill));
  if (v.size() != n) ctx.fail(str(name, " ", ints_str(v), " needs ", n, " values"));
  return v;
}

// Explicit pads, or the ones auto_pad implies: SAME_* pads so that out = ceil(in / stride), the
// odd extra pad at the end (UPPER) or the beginning (LOWER); VALID pads nothing.
Ints resolve_pads(const NodeCtx& ctx, const Shape& x, const Geometry& g) {
  const size_t n = g.kernel.size();
  const std::string auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") return geometry_ints(ctx, "pads", 2 * n, 0);
  ctx.ignore_attr("pads");  // auto_pad wins
  Ints pads(2 * n, 0);
  if (auto_pad == "VALID") return pads;
  if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    ctx.fail(str("unknown auto_pad '", auto_pad, "'"));
  for (size_t i = 0; i < n; ++i) {
    const int64_t in = x[i + 2], s = g.strides[i];
    const int64_t out = (in + s - 1) / s;
    const int64_t span = (g.kernel[i] - 1) * g.dilations[i] + 1;
    const int64_t total = std::max<int64_t>(0, (out - 1) * s + span - in);
    const int64_t small = total / 2, big = total - small;
    pads[i] = auto_pad == "SAME_UPPER" ? small : big;
    pads[i + n] = auto_pad == "SAME_UPPER" ? big : small;
  }
  return pads;
}

// Kernel from the weight (Conv) or the kernel_shape attribute (pools); strides and dilations.
Geometry read_geometry(const NodeCtx& ctx, const Tensor& x, const Tensor* w) {
  if (x.rank() < 3) ctx.fail(str("input must be (N, C, D1, ...), got ", shape_str(x.shape())));
  const size_t n = size_t(x.rank() - 2);
  Geometry g;
  if (w) {
    if (w->rank() != x.rank())
      ctx.fail(str("weight ", shape_str(w->shape()), " must have the rank of input ",
                   shape_str(x.shape())));
    g.kernel.assign(w->shape().begin() + 2, w->shape().end());
    if (ctx.has_attr("kernel_shape") && ctx.attr_ints("kernel_shape") != g.kernel)
      ctx.fail(str("kernel_shape ", ints_str(ctx.attr_ints("kernel_shape")),
                   " differs from the weight ", shape_str(w->shape())));
  } else {
    g.kernel = geometry_ints(ctx, "kernel_shape", n, 0);
  }
  g.strides = geometry_ints(ctx, "strides", n, 1);
  g.dilations = geometry_ints(ctx, "dilations", n, 1);
  // Bounded so that the pad arithmetic here cannot overflow (NEF's ops check their own limits).
  for (size_t i = 0; i < n; ++i)
    for (int64_t v : {g.kernel[i], g.strides[i], g.dilations[i]})
      if (v < 1 || v > kMaxGeometry)
        ctx.fail(str("kernel ", ints_str(g.kernel), ", strides ", ints_str(g.strides),
                     " and dilations ", ints_str(g.dilations), " must be in [1, 2^31]"));
  return g;
}

namespace {

std::vector<Tensor> conv(NodeCtx& ctx) {
  Tensor x = ctx.input(0), w = ctx.input(1);
  Geometry g = read_geometry(ctx, x, &w);
  g.pads = resolve_pads(ctx, x.shape(), g);
  std::vector<Tensor> in = {x, w};
  if (ctx.has_input(2)) in.push_back(ctx.input(2));
  return {nef::op("conv", in,
                  attrs({{"strides", g.strides},
                         {"pads", g.pads},
                         {"dilations", g.dilations},
                         {"groups", ctx.attr_int("group", 1)}}))};
}

// ConvTranspose pads: explicit, or derived from the wanted output shape (output_shape, or
// in * stride for SAME_*). Negative pads (an output larger than the full transposed conv) are
// run as zero pads, then the result is extended with zeros by `pad` and the bias added after,
// so the extension holds the bias as the spec's formula implies.
std::vector<Tensor> conv_transpose(NodeCtx& ctx) {
  Tensor x = ctx.input(0), w = ctx.input(1);
  Geometry g = read_geometry(ctx, x, &w);
  const size_t n = g.kernel.size();
  Ints out_pad = geometry_ints(ctx, "output_padding", n, 0);
  for (int64_t v : out_pad)
    if (v < 0 || v > kMaxGeometry)
      ctx.fail(str("output_padding ", ints_str(out_pad), " must be in [0, 2^31]"));
  const std::string auto_pad = ctx.attr_string("auto_pad", "NOTSET");
  Ints want;
  if (ctx.has_attr("output_shape")) {
    want = ctx.attr_ints("output_shape");
    if (want.size() == n + 2) want.erase(want.begin(), want.begin() + 2);
    if (want.size() != n)
      ctx.fail(str("output_shape ", ints_str(want), " needs ", n, " spatial values"));
    for (int64_t v : want)
      if (v < 0 || v > kMaxElements)
        ctx.fail(str("output_shape ", ints_str(want), " must be in [0, 2^48]"));
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (size_t i = 0; i < n; ++i) want.push_back(x.shape()[i + 2] * g.strides[i]);
  }
  if (want.empty()) {
    if (auto_pad == "NOTSET") {
      g.pads = geometry_ints(ctx, "pads", 2 * n, 0);
    } else if (auto_pad == "VALID") {
      ctx.ignore_attr("pads");
      g.pads.assign(2 * n, 0);
    } else {
      ctx.fail(str("unknown auto_pad '", auto_pad, "'"));
    }
  } else {
    ctx.ignore_attr("pads");  // output_shape / auto_pad win
    g.pads.assign(2 * n, 0);
    for (size_t i = 0; i < n; ++i) {
      // In 128 bits: stride (<= 2^31) times an extent (<= 2^48) may pass int64.
      const __int128 wide = __int128(g.strides[i]) * (x.shape()[i + 2] - 1) + out_pad[i] +
                            __int128(g.kernel[i] - 1) * g.dilations[i] + 1;
      if (wide > kMaxElements)
        ctx.fail(str("the full output of input ", shape_str(x.shape()), " with strides ",
                     ints_str(g.strides), " is too large"));
      const int64_t full = int64_t(wide);
      const int64_t total = full - want[i];
      const int64_t half = floor_div(total, 2);
      const int64_t begin = auto_pad == "SAME_UPPER" ? half : total - half;
      g.pads[i] = begin;
      g.pads[i + n] = total - begin;
    }
  }
  // Output extension for negative pads: 2 + n dims, begins then ends (N and C untouched).
  Ints extend(2 * (n + 2), 0);
  bool extended = false;
  for (size_t i = 0; i < n; ++i)
    for (size_t side = 0; side < 2; ++side) {
      int64_t& p = g.pads[i + side * n];
      if (p >= 0) continue;
      extend[i + 2 + side * (n + 2)] = -p;
      p = 0;
      extended = true;
    }
  std::vector<Tensor> in = {x, w};
  if (ctx.has_input(2) && !extended) in.push_back(ctx.input(2));
  Tensor y = nef::op("conv_transpose", in,
                     attrs({{"strides", g.strides},
                            {"pads", g.pads},
                            {"dilations", g.dilations},
                            {"groups", ctx.attr_int("group", 1)},
                            {"output_padding", out_pad}}));
  if (!extended) return {y};
  y = nef::op("pad", {y},
              attrs({{"pads", extend}, {"mode", std::string("constant")}, {"value", 0.0}}));
  if (ctx.has_input(2)) {
    Tensor b = ctx.input(2);
    if (b.rank() != 1 || b.shape()[0] != y.shape()[1])
      ctx.fail(str("bias ", shape_str(b.shape()), " must be (M,) with M = ", y.shape()[1]));
    y = y + b.reshape(channel_shape(y.shape()[1], y.rank()));
  }
  return {y};
}

// MaxPool's Indices output, composed: every window's taps are gathered (taps in the padding
// masked to the lowest value), argmax picks the first maximum, and a constant table maps
// (output position, tap) to the input index in storage order (row- or column-major spatial
// dims, plus (n * C + c) * prod(spatial)). A window with no valid tap gives -1, as ONNX's
// reference does.
Tensor max_pool_indices(const NodeCtx& ctx, const Tensor& x, const Shape& y_shape,
                        const Geometry& g, bool column_major) {
  const size_t n = g.kernel.size();
  const Shape sp(x.shape().begin() + 2, x.shape().end());
  const Shape out_sp(y_shape.begin() + 2, y_shape.end());
  const int64_t nc = x.shape()[0] * x.shape()[1], s = numel(sp), p = numel(out_sp);
  const int64_t k = numel(Shape(g.kernel.begin(), g.kernel.end()));
  if (nc == 0 || s == 0 || p == 0) return nef::full(y_shape, -1, DType::Int64);
  if (double(p) * double(k) > double(kMaxElements))
    ctx.unsupported("Indices for a window table this large");
  // Row-major strides for the tap table, storage-order strides for the output index.
  Strides row = contiguous_strides(sp), store(n, 1);
  for (size_t i = 0; i < n; ++i)
    store[i] = column_major ? (i == 0 ? 1 : store[i - 1] * sp[i - 1]) : row[i];
  std::vector<int64_t> tap(size_t(p * k)), where_stored(size_t(p * k));
  std::vector<uint8_t> valid(size_t(p * k)), any(size_t(p), 0);
  std::vector<int64_t> o(n, 0), t(n, 0);
  for (int64_t pi = 0; pi < p; ++pi) {
    int64_t rem = pi;
    for (size_t i = n; i-- > 0;) o[i] = rem % out_sp[i], rem /= out_sp[i];
    for (int64_t ki = 0; ki < k; ++ki) {
      rem = ki;
      for (size_t i = n; i-- > 0;) t[i] = rem % g.kernel[i], rem /= g.kernel[i];
      bool ok = true;
      int64_t lin = 0, st = 0;
      for (size_t i = 0; i < n; ++i) {
        int64_t pos = o[i] * g.strides[i] - g.pads[i] + t[i] * g.dilations[i];
        if (pos < 0 || pos >= sp[i]) ok = false;
        lin += pos * row[i];
        st += pos * store[i];
      }
      const size_t at = size_t(pi * k + ki);
      tap[at] = ok ? lin : 0;
      where_stored[at] = ok ? st : 0;
      valid[at] = ok;
      any[size_t(pi)] |= uint8_t(ok);
    }
  }
  const DType i64 = DType::Int64;
  Tensor vals = nef::gather(nef::reshape(x, {nc, s}), nef::tensor<int64_t>(tap, {p * k}), 1)
                    .reshape({nc, p, k});
  const int bits = int(8 * dtype_size(x.dtype()));
  const double lowest = is_floating(x.dtype())  ? -INFINITY
                        : !is_signed(x.dtype()) ? 0.0
                                                : -std::ldexp(1.0, bits - 1);
  Tensor valid_t = nef::cast(nef::tensor<uint8_t>(valid, {p, k}), DType::Bool);
  vals = nef::where(valid_t, vals, nef::scalar(lowest, x.dtype()));
  Tensor best = nef::argmax(vals, 2);  // [nc, p]
  Tensor offsets = nef::arange(0, double(p * k), double(k), i64).reshape({1, p});
  Tensor idx = nef::gather(nef::tensor<int64_t>(where_stored, {p * k}), best + offsets, 0);
  idx = idx + nef::arange(0, double(nc * s), double(s), i64).reshape({nc, 1});
  Tensor any_t = nef::cast(nef::tensor<uint8_t>(any, {1, p}), DType::Bool);
  idx = nef::where(any_t, idx, nef::scalar(-1, i64));
  return idx.reshape(y_shape);
}

std::vector<Tensor> max_pool(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  const bool column_major = ctx.attr_int("storage_order", 0) != 0;  // only affects Indices
  Geometry g = read_geometry(ctx, x, nullptr);
  g.pads = resolve_pads(ctx, x.shape(), g);
  Tensor y = nef::op("max_pool", {x},
                     attrs({{"kernel", g.kernel},
                            {"strides", g.strides},
                            {"pads", g.pads},
                            {"dilations", g.dilations},
                            {"ceil_mode", ctx.attr_int("ceil_mode", 0) != 0}}));
  if (!ctx.output_wanted(1)) return {y};
  return {y, max_pool_indices(ctx, x, y.shape(), g, column_major)};
}

std::vector<Tensor> avg_pool(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  Geometry g = read_geometry(ctx, x, nullptr);
  g.pads = resolve_pads(ctx, x.shape(), g);
  return {nef::op("avg_pool", {x},
                  attrs({{"kernel", g.kernel},
                         {"strides", g.strides},
                         {"pads", g.pads},
                         {"dilations", g.dilations},
                         {"ceil_mode", ctx.attr_int("ceil_mode", 0) != 0},
                         {"count_include_pad", ctx.attr_int("count_include_pad", 0) != 0}}))};
}

// LpPool: (sum over each window of |x|^p)^(1/p), the padding contributing 0: an average pool
// of |x|^p that counts the padding (every window then holds prod(kernel) cells) times that
// count. Revision 18 adds ceil_mode, whose last windows may overhang the padded input and count
// fewer cells: refused. Revision 1's float p is refused (the table starts at 2).
std::vector<Tensor> lp_pool(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (!is_floating(x.dtype()))
    ctx.fail(str("input must be a float tensor, got ", dtype_name(x.dtype())));
  const int64_t p = ctx.attr_int("p", 2);
  if (p < 1 || p > 64) ctx.fail(str("p must be in [1, 64], got ", p));
  if (ctx.version() >= 18 && ctx.attr_int("ceil_mode", 0) != 0)
    ctx.unsupported("ceil_mode = 1 (windows past the padded input)");
  Geometry g = read_geometry(ctx, x, nullptr);
  g.pads = resolve_pads(ctx, x.shape(), g);
  double cells = 1;
  for (int64_t k : g.kernel) cells *= double(k);
  Tensor a = nef::abs(x);
  Tensor powed = p == 1 ? a : p == 2 ? a * a : nef::pow(a, scalar_like(double(p), x.dtype()));
  Tensor avg = nef::op("avg_pool", {powed},
                       attrs({{"kernel", g.kernel},
                              {"strides", g.strides},
                              {"pads", g.pads},
                              {"dilations", g.dilations},
                              {"ceil_mode", false},
                              {"count_include_pad", true}}));
  Tensor sum = avg * scalar_like(cells, x.dtype());
  if (p == 1) return {sum};
  if (p == 2) return {nef::sqrt(sum)};
  return {nef::pow(sum, scalar_like(1.0 / double(p), x.dtype()))};
}

// MaxUnpool: X's values written at their flat Indices (MaxPool's second output) into zeros of
// the shape the pool came from, (in - 1) * stride + kernel - pads per spatial dim, as a
// scatter_nd (a repeated index keeps the last value; an index outside the shape is a
// ValidationError at run time); a larger output_shape input zero-extends that at the end of
// each dim, as onnx's reference does.
std::vector<Tensor> max_unpool(NodeCtx& ctx) {
  Tensor x = ctx.input(0), idx = ctx.input(1);
  const int64_t rank = x.rank();
  if (rank < 3) ctx.fail(str("input must be (N, C, D1, ...), got ", shape_str(x.shape())));
  if (idx.shape() != x.shape() || idx.dtype() != DType::Int64)
    ctx.fail(str("indices ", shape_str(idx.shape()), " ", dtype_name(idx.dtype()),
                 " must be int64 of the input's shape ", shape_str(x.shape())));
  const size_t n = size_t(rank - 2);
  const Ints kernel = ctx.attr_ints("kernel_shape");
  if (kernel.size() != n) ctx.fail(str("kernel_shape ", ints_str(kernel), " needs ", n, " values"));
  const Ints strides = geometry_ints(ctx, "strides", n, 1);
  const Ints pads = geometry_ints(ctx, "pads", 2 * n, 0);
  Shape inferred = {x.shape()[0], x.shape()[1]};
  for (size_t i = 0; i < n; ++i) {
    if (kernel[i] < 1 || strides[i] < 1 || kernel[i] > kMaxGeometry || strides[i] > kMaxGeometry)
      ctx.fail(str("kernel_shape ", ints_str(kernel), " and strides ", ints_str(strides),
                   " must be in [1, 2^31]"));
    const __int128 d =
        __int128(x.shape()[i + 2] - 1) * strides[i] + kernel[i] - pads[i] - pads[i + n];
    if (d < 0 || d > kMaxElements)
      ctx.fail(str("the unpooled dim ", i, " of input ", shape_str(x.shape()), " would be ",
                   int64_t(d)));
    inferred.push_back(int64_t(d));
  }
  Shape out = inferred;
  if (ctx.has_input(2)) {
    const Ints os = ctx.static_ints(2);
    if (os.size() != size_t(rank))
      ctx.fail(str("output_shape ", ints_str(os), " needs ", rank, " values"));
    for (size_t i = 0; i < size_t(rank); ++i)
      if (os[i] < inferred[i] || (i < 2 && os[i] != inferred[i]) || os[i] > kMaxElements)
        ctx.fail(str("output_shape ", ints_str(os), " must keep N and C and not be smaller than ",
                     shape_str(inferred)));
    out = Shape(os.begin(), os.end());
  }
  const int64_t total = numel(inferred), count = x.numel();
  Tensor y = nef::scatter_nd(nef::zeros({total}, x.dtype()), nef::reshape(idx, {count, 1}),
                             nef::reshape(x, {count}), "none");
  y = nef::reshape(y, inferred);
  if (out == inferred) return {y};
  Ints ext(size_t(2 * rank), 0);
  for (size_t i = 0; i < size_t(rank); ++i) ext[i + size_t(rank)] = out[i] - inferred[i];
  return {nef::op("pad", {y},
                  attrs({{"pads", ext}, {"mode", std::string("constant")}, {"value", 0.0}}))};
}

// AffineGrid: for each batch item the (D,) H, W positions of a normalized base grid
// (linspace(-1, 1) with align_corners, else pixel centers (2i + 1) / n - 1; x along W first)
// transformed by theta [N, 2, 3] (or [N, 3, 4]): grid = theta @ [x, y, (z,) 1], as one matmul
// against a constant base, giving [N, H, W, 2] (or [N, D, H, W, 3]).
std::vector<Tensor> affine_grid(NodeCtx& ctx) {
  Tensor theta = ctx.input(0);
  const Ints size = ctx.static_ints(1);
  if (size.size() != 4 && size.size() != 5)
    ctx.fail(str("size ", ints_str(size), " must be (N, C, H, W) or (N, C, D, H, W)"));
  const size_t r = size.size() - 2;
  if (!is_floating(theta.dtype()) || theta.rank() != 3 || theta.shape()[0] != size[0] ||
      theta.shape()[1] != int64_t(r) || theta.shape()[2] != int64_t(r + 1))
    ctx.fail(str("theta ", shape_str(theta.shape()), " ", dtype_name(theta.dtype()),
                 " must be a float (N, ", r, ", ", r + 1, ") with N = ", size[0]));
  double points = 1;
  for (size_t i = 2; i < size.size(); ++i) {
    if (size[i] < 0) ctx.fail(str("size ", ints_str(size), " has a negative dim"));
    points *= double(size[i]);
  }
  if (points * double(r + 1) > double(kMaxElements))
    ctx.fail(str("size ", ints_str(size), " is too large"));
  const bool align = ctx.attr_int("align_corners", 0) != 0;
  // Per spatial dim (in size's order): the base coordinates, as onnx's reference computes them
  // (start + i * step).
  std::vector<std::vector<double>> coord(r);
  for (size_t d = 0; d < r; ++d) {
    const int64_t len = size[d + 2];
    const double step = align ? 2.0 / double(len - 1) : 2.0 / double(len);
    const double start = align ? -1.0 : -1.0 + step / 2;
    for (int64_t i = 0; i < len; ++i)
      coord[d].push_back(len == 1 && align ? -1.0 : start + double(i) * step);
  }
  const auto p = int64_t(points);
  std::vector<double> base(size_t(p) * (r + 1));  // [r + 1, P]: x, y, (z,) 1
  for (int64_t q = 0; q < p; ++q) {
    int64_t rem = q;
    for (size_t d = r; d-- > 0;) {
      const int64_t len = size[d + 2];
      // component r - 1 - d holds spatial dim d (x is the last spatial dim)
      base[(r - 1 - d) * size_t(p) + size_t(q)] = coord[d][size_t(rem % len)];
      rem /= len;
    }
    base[r * size_t(p) + size_t(q)] = 1.0;
  }
  Tensor b = nef::cast(nef::tensor<double>(base, {int64_t(r + 1), p}), theta.dtype());
  Tensor g = nef::matmul(theta, b);  // [N, r, P]
  Shape out = {size[0]};
  out.insert(out.end(), size.begin() + 2, size.end());
  out.push_back(int64_t(r));
  return {nef::reshape(nef::transpose(g, {0, 2, 1}), out)};
}

// Col2Im: the columns of an im2col, data [N, C * prod(block), L], summed back into images
// [N, C, *image_shape]. A constant table maps each (block offset, column) to its image position
// (one past the image where it falls in the padding); a scatter_elements with add over
// [N * C, positions + 1] accumulates in the reference's order (block offsets outer), and the
// extra slot is sliced off.
std::vector<Tensor> col2im(NodeCtx& ctx) {
  Tensor data = ctx.input(0);
  const Ints image = ctx.static_ints(1), block = ctx.static_ints(2);
  const size_t n = image.size();
  if (data.rank() != 3 || n == 0 || block.size() != n)
    ctx.fail(str("input ", shape_str(data.shape()), " must be (N, C * prod(block), L) and ",
                 "image_shape ", ints_str(image), " and block_shape ", ints_str(block),
                 " one value per spatial dim"));
  const Ints dil = geometry_ints(ctx, "dilations", n, 1);
  const Ints str_ = geometry_ints(ctx, "strides", n, 1);
  const Ints pads = geometry_ints(ctx, "pads", 2 * n, 0);
  double kd = 1, pd = 1, ld = 1;
  Ints cols(n);
  for (size_t i = 0; i < n; ++i) {
    if (image[i] < 1 || block[i] < 1 || dil[i] < 1 || str_[i] < 1 || pads[i] < 0 ||
        pads[i + n] < 0 || image[i] > kMaxGeometry || block[i] > kMaxGeometry ||
        dil[i] > kMaxGeometry || str_[i] > kMaxGeometry || pads[i] > kMaxGeometry ||
        pads[i + n] > kMaxGeometry)
      ctx.fail(str("image_shape ", ints_str(image), ", block_shape ", ints_str(block),
                   ", dilations, strides (>= 1) and pads (>= 0) must be at most 2^31"));
    const int64_t span = dil[i] * (block[i] - 1) + 1;
    cols[i] = (image[i] + pads[i] + pads[i + n] - span) / str_[i] + 1;
    if (image[i] + pads[i] + pads[i + n] < span)
      ctx.fail(str("block ", ints_str(block), " does not fit the padded image ", ints_str(image)));
    kd *= double(block[i]), pd *= double(image[i]), ld *= double(cols[i]);
  }
  if (kd * ld > double(int64_t(1) << 26) || pd > double(kMaxElements))
    ctx.fail(str("image_shape ", ints_str(image), " with block_shape ", ints_str(block),
                 " is too large"));
  const auto k = int64_t(kd), l = int64_t(ld), p = int64_t(pd);
  const int64_t nn = data.shape()[0], ck = data.shape()[1];
  if (ck % k != 0 || data.shape()[2] != l)
    ctx.fail(str("input ", shape_str(data.shape()), " must be (N, C * ", k, ", ", l,
                 ") for image_shape ", ints_str(image), " and block_shape ", ints_str(block)));
  const int64_t c = ck / k;
  std::vector<int64_t> table(size_t(k * l));
  Ints off(n), col(n);
  for (int64_t kk = 0; kk < k; ++kk) {
    int64_t rem = kk;
    for (size_t i = n; i-- > 0;) off[i] = rem % block[i], rem /= block[i];
    for (int64_t ll = 0; ll < l; ++ll) {
      rem = ll;
      for (size_t i = n; i-- > 0;) col[i] = rem % cols[i], rem /= cols[i];
      int64_t pos = 0;
      bool inside = true;
      for (size_t i = 0; i < n; ++i) {
        const int64_t at = col[i] * str_[i] - pads[i] + off[i] * dil[i];
        inside = inside && at >= 0 && at < image[i];
        pos = pos * image[i] + at;
      }
      table[size_t(kk * l + ll)] = inside ? pos : p;
    }
  }
  const int64_t rows = nn * c;
  Tensor idx = nef::broadcast_to(nef::tensor<int64_t>(table, {1, k * l}), {rows, k * l});
  Tensor y = nef::scatter_elements(nef::zeros({rows, p + 1}, data.dtype()), idx,
                                   nef::reshape(data, {rows, k * l}), 1, "add");
  Shape out = {nn, c};
  out.insert(out.end(), image.begin(), image.end());
  return {nef::reshape(nef::slice(y, {0, 0}, {rows, p}, {1, 1}), out)};
}

// Det: NEF's det (LU with partial pivoting in double) of each [M, M] matrix.
std::vector<Tensor> det(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (!is_floating(x.dtype()))
    ctx.fail(str("input must be a float tensor, got ", dtype_name(x.dtype())));
  if (x.rank() < 2 || x.shape()[size_t(x.rank() - 1)] != x.shape()[size_t(x.rank() - 2)])
    ctx.fail(str("input must be square matrices [..., M, M], got ", shape_str(x.shape())));
  return {nef::op("det", {x})};
}

Ints spatial_axes(const NodeCtx& ctx, const Tensor& x) {
  if (x.rank() < 3) ctx.fail(str("input must be (N, C, D1, ...), got ", shape_str(x.shape())));
  Ints axes;
  for (int64_t d = 2; d < x.rank(); ++d) axes.push_back(d);
  return axes;
}

std::vector<Tensor> global_avg_pool(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  return {nef::mean(x, spatial_axes(ctx, x), true)};
}

std::vector<Tensor> global_max_pool(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  return {nef::max(x, spatial_axes(ctx, x), true)};
}

// ---- Pad and Resize ----------------------------------------------------------------------------

// Pads for the listed axes (opset 18 `axes` input) expand to the full-rank begins-then-ends form.
std::vector<Tensor> pad(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  const int64_t rank = x.rank();
  const std::string mode = ctx.attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge" && mode != "wrap")
    ctx.fail(str("unknown mode '", mode, "'"));
  // Before revision 11 pads and the constant value are attributes.
  const bool attrs_form = ctx.version() < 11;
  if (attrs_form && ctx.num_inputs() != 1)
    ctx.fail(str("expects 1 input before opset 11 (pads is an attribute), got ", ctx.num_inputs()));
  Ints given = attrs_form ? ctx.attr_ints("pads") : ctx.static_ints(1);
  Ints pads(size_t(2 * rank), 0);
  if (!attrs_form && ctx.has_input(3)) {
    Ints axes = ctx.static_ints(3);
    if (given.size() != 2 * axes.size())
      ctx.fail(str("pads ", ints_str(given), " need 2 values per axis of ", ints_str(axes)));
    const int64_t na = int64_t(axes.size());
    std::vector<bool> seen(size_t(rank), false);
    for (int64_t i = 0; i < na; ++i) {
      int64_t a = norm_axis(ctx, axes[size_t(i)], rank);
      if (seen[size_t(a)]) ctx.fail(str("repeated axis in ", ints_str(axes)));
      seen[size_t(a)] = true;
      pads[size_t(a)] = given[size_t(i)];
      pads[size_t(a + rank)] = given[size_t(i + na)];
    }
  } else {
    if (int64_t(given.size()) != 2 * rank)
      ctx.fail(str("pads ", ints_str(given), " need 2 values per dim of ", shape_str(x.shape())));
    pads = given;
  }
  double value = attrs_form ? ctx.attr_float("value", 0.0) : 0.0;
  if (!attrs_form && ctx.has_input(2)) {
    std::vector<double> v = ctx.static_floats(2);
    if (v.size() > 1) ctx.fail("constant_value must be a scalar");
    if (!v.empty()) value = v[0];
  }
  return {nef::op("pad", {x}, attrs({{"pads", pads}, {"mode", mode}, {"value", value}}))};
}

// An optional float/int input that may also be given as an empty tensor (common in exported
// models: Resize with an empty `scales` next to `sizes`).
std::vector<double> optional_floats(const NodeCtx& ctx, size_t i) {
  if (!ctx.has_input(i)) return {};
  return ctx.static_floats(i);
}

// Resize: NEF's resize takes the full output shape and the full-rank scales used by the
// coordinate transform; they are derived here from whichever of scales/sizes the node gives,
// with `axes` and keep_aspect_ratio_policy applied as the ONNX spec says.
// Upsample (7, 9) and Resize-10: out = floor(in * scale) per dim, nearest or (multi)linear over
// every dim, with the asymmetric transform and nearest rounding down (what onnx's version
// converter writes when it turns them into Resize-11). Scales are an attribute in Upsample-7.
std::vector<Tensor> resize_v10(NodeCtx& ctx, bool upsample) {
  Tensor x = ctx.input(0);
  const Shape& in = x.shape();
  const int64_t rank = x.rank();
  const bool attr_scales = upsample && ctx.version() < 9;
  if (ctx.num_inputs() != (attr_scales ? 1u : 2u))
    ctx.fail(str("expects ", attr_scales ? 1 : 2, " input(s), got ", ctx.num_inputs()));
  std::vector<double> scales = attr_scales ? ctx.attr_floats("scales") : ctx.static_floats(1);
  std::string mode = ctx.attr_string("mode", "nearest");
  if (mode == "bilinear" && upsample) mode = "linear";  // Upsample-1's spelling
  if (mode != "nearest" && mode != "linear")
    ctx.fail(str("mode must be \"nearest\" or \"linear\", got \"", mode, "\""));
  if (int64_t(scales.size()) != rank)
    ctx.fail(
        str("scales need one value per dim of input ", shape_str(in), ", got ", scales.size()));
  Ints sizes;
  for (int64_t d = 0; d < rank; ++d) {
    const double sc = scales[size_t(d)];
    if (!(sc > 0)) ctx.fail(str("scales must be > 0, got ", sc));
    if (upsample && sc < 1) ctx.fail(str("Upsample scales must be >= 1, got ", sc));
    const double out = std::floor(double(in[size_t(d)]) * sc);
    if (out > double(kMaxElements)) ctx.fail(str("scale ", sc, " is too large"));
    sizes.push_back(int64_t(out));
  }
  std::vector<double> roi(size_t(2 * rank), 0.0);
  std::fill(roi.begin() + rank, roi.end(), 1.0);
  return {nef::op("resize", {x},
                  attrs({{"sizes", sizes},
                         {"scales", scales},
                         {"mode", mode},
                         {"coordinate_transformation_mode", std::string("asymmetric")},
                         {"nearest_mode", std::string("floor")},
                         {"cubic_coeff_a", -0.75},
                         {"exclude_outside", false},
                         {"extrapolation_value", 0.0},
                         {"roi", roi}}))};
}

std::vector<Tensor> upsample(NodeCtx& ctx) { return resize_v10(ctx, true); }

// Revision 11 adds roi/sizes and the coordinate modes (scales and roi are required inputs that
// may be empty; tf_half_pixel_for_nn exists only in 11); 13 makes roi and scales optional; 18
// adds axes, antialias and keep_aspect_ratio_policy.
std::vector<Tensor> resize(NodeCtx& ctx) {
  if (ctx.version() < 11) return resize_v10(ctx, false);
  Tensor x = ctx.input(0);
  const Shape& in = x.shape();
  const int64_t rank = x.rank();
  const bool v18 = ctx.version() >= 18;
  if (v18 && ctx.attr_int("antialias", 0) != 0) ctx.unsupported("antialias = 1");
  const std::string ctm = ctx.attr_string("coordinate_transformation_mode", "half_pixel");
  if (ctm == "tf_half_pixel_for_nn" && ctx.version() != 11)
    ctx.fail("coordinate_transformation_mode tf_half_pixel_for_nn exists only in opset 11 and 12");
  Ints axes;
  if (v18 && ctx.has_attr("axes")) {
    for (int64_t a : ctx.attr_ints("axes")) {
      int64_t n = norm_axis(ctx, a, rank);
      if (std::find(axes.begin(), axes.end(), n) != axes.end())
        ctx.fail(str("repeated axis in ", ints_str(ctx.attr_ints("axes"))));
      axes.push_back(n);
    }
  } else {
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  const size_t na = axes.size();
  const std::string policy =
      v18 ? ctx.attr_string("keep_aspect_ratio_policy", "stretch") : std::string("stretch");
  if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller")
    ctx.fail(str("unknown keep_aspect_ratio_policy '", policy, "'"));

  std::vector<double> roi_in = optional_floats(ctx, 1);
  std::vector<double> scales_in = optional_floats(ctx, 2);
  Ints sizes_in;
  if (ctx.has_input(3)) sizes_in = ctx.static_ints(3);
  if (!scales_in.empty() && !sizes_in.empty()) ctx.fail("give either scales or sizes, not both");
  if (scales_in.empty() && sizes_in.empty()) ctx.fail("needs scales or sizes");

  Ints sizes(in.begin(), in.end());
  std::vector<double> scales(size_t(rank), 1.0);
  if (!sizes_in.empty()) {
    if (sizes_in.size() != na)
      ctx.fail(str("sizes ", ints_str(sizes_in), " need one value per resized axis (", na, ")"));
    for (size_t i = 0; i < na; ++i) {
      if (sizes_in[i] < 0 || sizes_in[i] > kMaxElements)
        ctx.fail(str("sizes ", ints_str(sizes_in), " must be in [0, 2^48]"));
      const int64_t a = axes[i];
      sizes[size_t(a)] = sizes_in[i];
      scales[size_t(a)] = in[size_t(a)] == 0 ? 1.0 : double(sizes_in[i]) / double(in[size_t(a)]);
    }
    if (policy != "stretch") {
      double s = scales[size_t(axes[0])];
      for (int64_t a : axes)
        s = policy == "not_larger" ? std::min(s, scales[size_t(a)])
                                   : std::max(s, scales[size_t(a)]);
      for (int64_t a : axes) {
        scales[size_t(a)] = s;
        const double out = s * double(in[size_t(a)]) + 0.5;  // round half up
        if (out > double(kMaxElements)) ctx.fail(str("sizes ", ints_str(sizes_in), " too large"));
        sizes[size_t(a)] = int64_t(out);
      }
    }
  } else {
    if (scales_in.size() != na)
      ctx.fail(str("scales need one value per resized axis (", na, "), got ", scales_in.size()));
    for (size_t i = 0; i < na; ++i) {
      if (!(scales_in[i] > 0)) ctx.fail(str("scales must be > 0, got ", scales_in[i]));
      const int64_t a = axes[i];
      scales[size_t(a)] = scales_in[i];
      double out = std::floor(double(in[size_t(a)]) * scales_in[i]);
      if (out > double(kMaxElements)) ctx.fail(str("scale ", scales_in[i], " is too large"));
      sizes[size_t(a)] = int64_t(out);
    }
  }

  std::vector<double> roi(size_t(2 * rank), 0.0);
  std::fill(roi.begin() + rank, roi.end(), 1.0);
  if (!roi_in.empty()) {
    if (roi_in.size() != 2 * na)
      ctx.fail(str("roi needs 2 values per resized axis (", na, "), got ", roi_in.size()));
    for (size_t i = 0; i < na; ++i) {
      roi[size_t(axes[i])] = roi_in[i];
      roi[size_t(axes[i] + rank)] = roi_in[i + na];
    }
  }
  return {nef::op("resize", {x},
                  attrs({{"sizes", sizes},
                         {"scales", scales},
                         {"mode", ctx.attr_string("mode", "nearest")},
                         {"coordinate_transformation_mode", ctm},
                         {"nearest_mode", ctx.attr_string("nearest_mode", "round_prefer_floor")},
                         {"cubic_coeff_a", ctx.attr_float("cubic_coeff_a", -0.75)},
                         {"exclude_outside", ctx.attr_int("exclude_outside", 0) != 0},
                         {"extrapolation_value", ctx.attr_float("extrapolation_value", 0.0)},
                         {"roi", roi}}))};
}

// ---- GridSample ---------------------------------------------------------------------------

// GridSample: NEF's grid_sample. Revision 16 takes 4-D inputs and spells the modes bilinear and
// bicubic; 20 takes any number of spatial dims and spells them linear and cubic. X of an
// integer type (which ONNX allows) is refused; a grid of another float type is cast to X's.
std::vector<Tensor> grid_sample(NodeCtx& ctx) {
  Tensor x = ctx.input(0), grid = ctx.input(1);
  if (!is_floating(grid.dtype()))
    ctx.fail(str("grid must be a float tensor, got ", dtype_name(grid.dtype())));
  if (!is_floating(x.dtype()))
    ctx.unsupported(str("input X of type ", dtype_name(x.dtype()), " (float types only)"));
  const bool v16 = ctx.version() < 20;
  if (v16 && x.rank() != 4)
    ctx.fail(str("input X must be 4-D before opset 20, got ", shape_str(x.shape())));
  std::string mode = ctx.attr_string("mode", v16 ? "bilinear" : "linear");
  if (v16 && (mode == "bilinear" || mode == "bicubic")) mode = mode.substr(2);
  else if (v16 ? mode != "nearest" : (mode != "linear" && mode != "cubic" && mode != "nearest"))
    ctx.fail(str("mode must be ", v16 ? "bilinear, nearest or bicubic" : "linear, nearest or cubic",
                 ", got \"", mode, "\""));
  const std::string padding = ctx.attr_string("padding_mode", "zeros");
  if (padding != "zeros" && padding != "border" && padding != "reflection")
    ctx.fail(str("padding_mode must be zeros, border or reflection, got \"", padding, "\""));
  const bool align = ctx.attr_int("align_corners", 0) != 0;
  if (grid.dtype() != x.dtype()) grid = nef::cast(grid, x.dtype());
  return {nef::op("grid_sample", {x, grid},
                  attrs({{"mode", mode}, {"padding_mode", padding}, {"align_corners", align}}))};
}

// ---- DeformConv ---------------------------------------------------------------------------

// DeformConv (2-D, as onnx's reference defines it): NEF's deform_im2col samples the columns
// [N, C*kh*kw, oh*ow] at the offset positions (times the mask), then each group is one batched
// matmul with its weights [oc/g, C/g*kh*kw], plus the bias.
std::vector<Tensor> deform_conv(NodeCtx& ctx) {
  Tensor x = ctx.input(0), w = ctx.input(1), off = ctx.input(2);
  if (x.rank() != 4 || w.rank() != 4)
    ctx.unsupported(str("inputs other than 2-D images: X ", shape_str(x.shape()), ", W ",
                        shape_str(w.shape())));
  Geometry g = read_geometry(ctx, x, &w);
  g.pads = geometry_ints(ctx, "pads", 4, 0);
  const int64_t groups = ctx.attr_int("group", 1);
  const Shape xs = x.shape(), ws = w.shape();
  const int64_t n = xs[0], c = xs[1], oc = ws[0];
  if (groups < 1 || c % groups != 0 || oc % groups != 0 || ws[1] * groups != c)
    ctx.fail(str("group ", groups, " does not fit X ", shape_str(xs), " and W ", shape_str(ws),
                 " (W must be [oc, C/group, kh, kw] with group dividing oc)"));
  std::vector<Tensor> in = {x, off};
  if (ctx.has_input(4)) in.push_back(ctx.input(4));
  Tensor cols = nef::op("deform_im2col", in,
                        attrs({{"kernel_shape", g.kernel},
                               {"strides", g.strides},
                               {"pads", g.pads},
                               {"dilations", g.dilations},
                               {"offset_group", ctx.attr_int("offset_group", 1)}}));
  const int64_t kk = g.kernel[0] * g.kernel[1], l = cols.shape()[2];
  const Shape& os = off.shape();
  Tensor wg = reshape(w, {groups, oc / groups, c / groups * kk});
  Tensor y = matmul(wg, reshape(cols, {n, groups, c / groups * kk, l}));  // [N, g, oc/g, L]
  y = reshape(y, {n, oc, os[2], os[3]});
  if (ctx.has_input(3)) {
    Tensor b = ctx.input(3);
    if (b.shape() != Shape{oc}) ctx.fail(str("B must be [", oc, "], got ", shape_str(b.shape())));
    y = y + reshape(b, channel_shape(oc, 4));
  }
  return {y};
}

// ---- RoiAlign -----------------------------------------------------------------------------

// RoiAlign: NEF's roi_align. Revision 10 has no coordinate_transformation_mode and behaves as
// "output_half_pixel" (no half-pixel shift); 16 adds the attribute with "half_pixel" default.
std::vector<Tensor> roi_align(NodeCtx& ctx) {
  Tensor x = ctx.input(0), rois = ctx.input(1), idx = ctx.input(2);
  if (!is_floating(x.dtype()))
    ctx.fail(str("X must be a float tensor, got ", dtype_name(x.dtype())));
  if (!is_floating(rois.dtype()))
    ctx.fail(str("rois must be a float tensor, got ", dtype_name(rois.dtype())));
  if (rois.dtype() != x.dtype()) rois = nef::cast(rois, x.dtype());
  const std::string coord = ctx.version() < 16
                                ? std::string("output_half_pixel")
                                : ctx.attr_string("coordinate_transformation_mode", "half_pixel");
  const std::string mode = ctx.attr_string("mode", "avg");
  if (mode != "avg" && mode != "max") ctx.fail(str("mode must be avg or max, got \"", mode, "\""));
  if (coord != "half_pixel" && coord != "output_half_pixel")
    ctx.fail(str("coordinate_transformation_mode must be half_pixel or output_half_pixel, got \"",
                 coord, "\""));
  return {nef::op("roi_align", {x, rois, idx},
                  attrs({{"mode", mode},
                         {"coordinate_transformation_mode", coord},
                         {"output_height", ctx.attr_int("output_height", 1)},
                         {"output_width", ctx.attr_int("output_width", 1)},
                         {"sampling_ratio", ctx.attr_int("sampling_ratio", 0)},
                         {"spatial_scale", ctx.attr_float("spatial_scale", 1.0)}}))};
}

// ---- LRN, MeanVarianceNormalization, LpNormalization, Einsum -------------------------------

// LRN: y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta, the window being
// [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to the channels. The window sums are an
// average pool (padding counted, so sum = average * size) over (N, 1, C, rest).
std::vector<Tensor> lrn(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (x.rank() < 2) ctx.fail(str("input must be (N, C, ...), got ", shape_str(x.shape())));
  if (!is_floating(x.dtype()))
    ctx.fail(str("input must be a float tensor, got ", dtype_name(x.dtype())));
  const double alpha = ctx.attr_float("alpha", 1e-4), beta = ctx.attr_float("beta", 0.75);
  const double bias = ctx.attr_float("bias", 1.0);
  const int64_t size = ctx.attr_int("size");
  if (size < 1 || size > kMaxGeometry) ctx.fail(str("size must be >= 1, got ", size));
  const Shape& s = x.shape();
  const int64_t n = s[0], c = s[1],
                rest = x.numel() == 0 ? 0 : numel(Shape(s.begin() + 2, s.end()));
  const DType dt = x.dtype();
  Tensor sq = nef::reshape(x * x, {n, 1, c, rest});
  Tensor avg = nef::op("avg_pool", {sq},
                       attrs({{"kernel", Ints{size, 1}},
                              {"strides", Ints{1, 1}},
                              {"pads", Ints{(size - 1) / 2, 0, size / 2, 0}},
                              {"dilations", Ints{1, 1}},
                              {"ceil_mode", false},
                              {"count_include_pad", true}}));
  Tensor denom =
      nef::pow(avg * nef::scalar(alpha, dt) + nef::scalar(bias, dt), nef::scalar(beta, dt));
  return {x / nef::reshape(denom, s)};
}

// (x - mean) / (std + 1e-9) over `axes` (default N, H, W), as ONNX's function body, with the
// variance computed from centered values (the body's E[x^2] - E[x]^2 cancels badly).
std::vector<Tensor> mean_variance_norm(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (!is_floating(x.dtype()))
    ctx.fail(str("input must be a float tensor, got ", dtype_name(x.dtype())));
  Ints axes;
  for (int64_t a : ctx.attr_ints("axes", Ints{0, 2, 3}))
    axes.push_back(norm_axis(ctx, a, x.rank()));
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    ctx.fail(str("repeated axis in ", ints_str(ctx.attr_ints("axes", Ints{0, 2, 3}))));
  Tensor d = x - nef::mean(x, axes, true);
  Tensor sd = nef::sqrt(nef::mean(d * d, axes, true));
  return {d / (sd + nef::scalar(1e-9, x.dtype()))};
}

// x / ||x||_p along `axis` (p = 1 or 2); a zero norm gives 0, as ONNX's reference does.
std::vector<Tensor> lp_normalization(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (!is_floating(x.dtype()))
    ctx.fail(str("input must be a float tensor, got ", dtype_name(x.dtype())));
  const int64_t axis = norm_axis(ctx, ctx.attr_int("axis", -1), x.rank());
  const int64_t p = ctx.attr_int("p", 2);
  if (p != 1 && p != 2) ctx.fail(str("p must be 1 or 2, got ", p));
  Tensor norm = p == 1 ? nef::sum(nef::abs(x), Ints{axis}, true)
                       : nef::sqrt(nef::sum(x * x, Ints{axis}, true));
  Tensor zero = nef::scalar(0, x.dtype());
  return {nef::where(nef::equal(norm, zero), zero, x / norm)};
}

// Einsum: NEF's einsum (diagonals, early sums, pairwise matmul contractions); ONNX requires one
// numeric dtype for all operands.
std::vector<Tensor> einsum(NodeCtx& ctx) {
  std::vector<Tensor> xs;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    xs.push_back(ctx.input(i));
    if (xs.back().dtype() == DType::Bool) ctx.fail("inputs must be numeric, got bool");
    if (xs.back().dtype() != xs[0].dtype())
      ctx.fail(str("inputs must have one dtype, got ", dtype_name(xs[0].dtype()), " and ",
                   dtype_name(xs.back().dtype())));
  }
  if (xs.empty()) ctx.fail("needs at least one input");
  return {nef::einsum(ctx.attr_string("equation"), xs)};
}

}  // namespace

void register_nn(ConverterTable& t) {
  // Revisions (converter.h); the last number is the oldest one converted.
  t["MatMul"] = {matmul, {1, 9, 13}, 1};
  t["Det"] = {det, {11, 22}, 11};
  t["Gemm"] = {gemm, {1, 6, 7, 9, 11, 13}, 6};  // 6: broadcast flag; 11: C optional
  t["Softmax"] = {softmax, {1, 11, 13}, 1};     // 2-D coercion before 13
  t["LogSoftmax"] = {log_softmax, {1, 11, 13}, 1};
  t["Hardmax"] = {hardmax, {1, 11, 13}, 1};
  t["LayerNormalization"] = {layer_norm, {17}, 17};
  t["BatchNormalization"] = {batch_norm, {1, 6, 7, 9, 14, 15}, 7};  // 6: is_test; 7: spatial
  t["InstanceNormalization"] = {instance_norm, {1, 6, 22}, 6};
  t["GroupNormalization"] = {group_norm, {18, 21}, 18};  // 21: scale and bias per channel
  t["LRN"] = {lrn, {1, 13}, 1};
  t["MeanVarianceNormalization"] = {mean_variance_norm, {9, 13}, 9};
  t["LpNormalization"] = {lp_normalization, {1, 22}, 1};
  t["Conv"] = {conv, {1, 11, 22}, 1};
  t["ConvTranspose"] = {conv_transpose, {1, 11, 22}, 1};
  t["MaxPool"] = {max_pool, {1, 8, 10, 11, 12, 22}, 1};      // Indices from 8, ceil_mode from 10
  t["AveragePool"] = {avg_pool, {1, 7, 10, 11, 19, 22}, 1};  // count_include_pad from 7
  t["LpPool"] = {lp_pool, {1, 2, 11, 18, 22}, 2};  // 2: integer p; 18: ceil_mode, dilations
  t["MaxUnpool"] = {max_unpool, {9, 11, 22}, 9};
  t["AffineGrid"] = {affine_grid, {20}, 20};
  t["Col2Im"] = {col2im, {18}, 18};
  t["GlobalAveragePool"] = {global_avg_pool, {1, 22}, 1};
  t["GlobalMaxPool"] = {global_max_pool, {1, 22}, 1};
  t["Pad"] = {pad, {1, 2, 11, 13, 18, 19, 21, 23, 24, 25}, 2};  // attributes before 11
  t["Resize"] = {resize, {10, 11, 13, 18, 19}, 10};
  t["Upsample"] = {upsample, {1, 7, 9, 10}, 7};  // 10 deprecates it unchanged
  t["Einsum"] = {einsum, {12}, 12};
  t["GridSample"] = {grid_sample, {16, 20, 22}, 16};
  t["RoiAlign"] = {roi_align, {10, 16, 22}, 10};
  t["DeformConv"] = {deform_conv, {19, 22}, 19};
}

}  // namespace nef::onnx_import
