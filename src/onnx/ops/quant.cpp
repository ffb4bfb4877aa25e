// ONNX's affine 8-bit quantization: QuantizeLinear / DequantizeLinear (per tensor, per axis,
// blocked) and DynamicQuantizeLinear as compositions of elementwise NEF ops; MatMulInteger and
// ConvInteger as NEF's matmul_integer / conv_integer (exact int32 GEMMs on int8 kernels);
// QLinearMatMul / QLinearConv as those plus the requantization
//   y = saturate(round_half_even(acc * (s_a * s_b / s_y)) + zp_y),
// the multiplier formed in the scales' dtype and the product in float64, as ONNX's reference
// computes it. 8-bit integer types only; int16/uint16, 4-bit and float8 quantized types are
// refused naming the type.
#include <cmath>
#include <string>
#include <vector>

#include "onnx/converter.h"
#include "onnx/ops/conv_geometry.h"

namespace nef::onnx_import {
namespace {

using Ints = std::vector<int64_t>;

[[noreturn]] void shape_error(const NodeCtx& ctx, const std::string& what) {
  throw ShapeError(str(ctx.where(), ": ", what));
}
[[noreturn]] void type_error(const NodeCtx& ctx, const std::string& what) {
  throw TypeError(str(ctx.where(), ": ", what));
}

bool is_q8(DType t) { return t == DType::Int8 || t == DType::UInt8; }
bool is_float8(DType t) {
  return t == DType::Float8E4M3FN || t == DType::Float8E4M3FNUZ || t == DType::Float8E5M2 ||
         t == DType::Float8E5M2FNUZ;
}
// What QuantizeLinear / DequantizeLinear quantize to: 8- and 16-bit integers, float8.
bool is_qlinear(DType t) {
  return is_q8(t) || t == DType::Int16 || t == DType::UInt16 || is_float8(t);
}

// The saturation range of a quantized integer type.
std::pair<double, double> qrange(DType t) {
  switch (t) {
    case DType::Int8:
      return {-128.0, 127.0};
    case DType::Int16:
      return {-32768.0, 32767.0};
    case DType::UInt16:
      return {0.0, 65535.0};
    default:
      return {0.0, 255.0};
  }
}

// An ONNX data type code (output_dtype, precision attributes) as a NEF dtype; unsupported naming
// the type when NEF has none or it is not `allowed`.
DType dtype_attr(const NodeCtx& ctx, const char* attr, int64_t code, bool (*allowed)(DType)) {
  std::optional<DType> t = dtype_from_onnx(int(code));
  if (!t || !allowed(*t))
    ctx.unsupported(
        str(attr, " ", onnx_type_name(int(code)), " (not a type NEF quantizes to here)"));
  return *t;
}

void need_q8(const NodeCtx& ctx, const char* what, const Tensor& t) {
  if (!is_q8(t.dtype()))
    type_error(ctx, str(what, " must be int8 or uint8, got ", dtype_name(t.dtype())));
}
void need_float(const NodeCtx& ctx, const char* what, const Tensor& t) {
  if (!is_floating(t.dtype()))
    type_error(ctx, str(what, " must be a float tensor, got ", dtype_name(t.dtype())));
}

// A scale or zero point made broadcastable to x (ONNX's rules): one value -> a scalar; with
// block_size 0 a 1-D [x.shape[axis]] -> per axis; with block_size > 0 x's rank, dims equal to
// x's except ceil(x.shape[axis] / block_size) along axis -> each value repeated block_size times.
Tensor expand_param(const NodeCtx& ctx, const char* what, const Tensor& p, const Shape& x,
                    int64_t axis, int64_t block_size) {
  if (p.numel() == 1 && p.rank() <= 1) return nef::reshape(p, {});
  const int64_t rank = int64_t(x.size());
  axis = norm_axis(ctx, axis, rank);  // only now: a per-tensor scale needs no valid axis
  if (block_size == 0) {
    if (p.rank() != 1 || rank == 0 || p.shape()[0] != x[size_t(axis)])
      shape_error(ctx, str(what, " ", shape_str(p.shape()), " must be a scalar or 1-D with one ",
                           "value per index of axis ", axis, " of input ", shape_str(x)));
    Shape s(size_t(rank), 1);
    s[size_t(axis)] = x[size_t(axis)];
    return nef::reshape(p, s);
  }
  if (block_size < 0) ctx.fail(str("block_size must be >= 0, got ", block_size));
  const int64_t d = x[size_t(axis)], blocks = (d + block_size - 1) / block_size;
  bool ok = p.rank() == rank;
  for (int64_t i = 0; ok && i < rank; ++i)
    ok = p.shape()[size_t(i)] == (i == axis ? blocks : x[size_t(i)]);
  if (!ok)
    shape_error(ctx, str(what, " ", shape_str(p.shape()), " does not block input ", shape_str(x),
                         " by ", block_size, " along axis ", axis, " (expected ", blocks,
                         " blocks there and input's other dims)"));
  Shape wide = p.shape();
  wide.insert(wide.begin() + axis + 1, block_size);
  Shape merged = p.shape();
  merged[size_t(axis)] = blocks * block_size;
  Tensor r = nef::reshape(nef::broadcast_to(nef::expand_dims(p, {axis + 1}), wide), merged);
  if (blocks * block_size == d) return r;
  Ints starts(size_t(rank), 0), stops(merged.begin(), merged.end()), steps(size_t(rank), 1);
  stops[size_t(axis)] = d;
  return nef::slice(r, starts, stops, steps);
}

struct QuantParams {
  int64_t axis = 1, block_size = 0;
};

QuantParams read_params(const NodeCtx& ctx) {
  QuantParams q;
  if (ctx.version() >= 13) q.axis = ctx.attr_int("axis", 1);
  if (ctx.version() >= 21) q.block_size = ctx.attr_int("block_size", 0);
  return q;
}

// saturate(round(v) + zp) cast to `out`; v float, zp (broadcastable) or undefined.
Tensor requantize(const Tensor& v, const Tensor& zp, DType out, DType wide) {
  Tensor r = nef::cast(nef::round(v), wide);
  if (zp.defined()) r = r + nef::cast(zp, wide);
  const auto [lo, hi] = qrange(out);
  return nef::cast(nef::clip(r, nef::scalar(lo, wide), nef::scalar(hi, wide)), out);
}

std::vector<Tensor> quantize_linear(NodeCtx& ctx) {
  Tensor x = ctx.input(0), scale = ctx.input(1);
  if (!is_floating(x.dtype()) && x.dtype() != DType::Int32)
    type_error(ctx, str("x must be float or int32, got ", dtype_name(x.dtype())));
  need_float(ctx, "y_scale", scale);
  const QuantParams q = read_params(ctx);
  const int64_t saturate = ctx.version() >= 19 ? ctx.attr_int("saturate", 1) : 1;
  if (saturate != 0 && saturate != 1) ctx.fail(str("saturate must be 0 or 1, got ", saturate));
  std::optional<DType> out;
  if (ctx.version() >= 21 && ctx.has_attr("output_dtype"))
    out = dtype_attr(ctx, "output_dtype", ctx.attr_int("output_dtype"), is_qlinear);
  Tensor zp;
  if (ctx.has_input(2)) {
    zp = ctx.input(2);
    if (!is_qlinear(zp.dtype()))
      type_error(ctx, str("y_zero_point must be int8, uint8, int16, uint16 or float8, got ",
                          dtype_name(zp.dtype())));
    if (out && *out != zp.dtype())
      type_error(ctx, str("output_dtype ", dtype_name(*out), " differs from y_zero_point's ",
                          dtype_name(zp.dtype())));
    out = zp.dtype();
    zp = expand_param(ctx, "y_zero_point", zp, x.shape(), q.axis, q.block_size);
  }
  Tensor s = expand_param(ctx, "y_scale", scale, x.shape(), q.axis, q.block_size);
  if (ctx.version() >= 23 && ctx.has_attr("precision")) {
    const DType p = dtype_attr(ctx, "precision", ctx.attr_int("precision"),
                               [](DType t) { return is_floating(t); });
    x = nef::cast(x, p), s = nef::cast(s, p);
  } else if (!is_floating(x.dtype())) {
    x = nef::cast(x, DType::Float64), s = nef::cast(s, DType::Float64);  // numpy's int / float
  }
  Tensor v = x / s;
  const DType wide = v.dtype() == DType::Float64 ? DType::Float64 : DType::Float32;
  const DType to = out.value_or(DType::UInt8);
  if (is_float8(to)) {  // no integer rounding: x / s + zp rounded to the float8 type (Cast's rules)
    if (zp.defined()) v = v + nef::cast(zp, wide);
    ir::Attrs attrs;
    attrs.set("dtype", std::string(dtype_name(to)));
    attrs.set("saturate", saturate == 1);
    return {nef::op("cast", {v}, std::move(attrs))};
  }
  return {requantize(v, zp, to, wide)};
}

std::vector<Tensor> dequantize_linear(NodeCtx& ctx) {
  Tensor x = ctx.input(0), scale = ctx.input(1);
  if (!is_qlinear(x.dtype()) && x.dtype() != DType::Int32)
    type_error(ctx, str("x must be int8, uint8, int16, uint16, float8 or int32, got ",
                        dtype_name(x.dtype())));
  need_float(ctx, "x_scale", scale);
  const QuantParams q = read_params(ctx);
  DType out = scale.dtype();
  if (ctx.version() >= 23 && ctx.has_attr("output_dtype"))
    out = dtype_attr(ctx, "output_dtype", ctx.attr_int("output_dtype"),
                     [](DType t) { return is_floating(t); });
  Tensor dx = nef::cast(x, DType::Float32);
  if (ctx.has_input(2)) {
    Tensor zp = ctx.input(2);
    if (zp.dtype() != x.dtype())
      type_error(ctx, str("x_zero_point (", dtype_name(zp.dtype()), ") must have x's dtype ",
                          dtype_name(x.dtype())));
    dx = dx - nef::cast(expand_param(ctx, "x_zero_point", zp, x.shape(), q.axis, q.block_size),
                        DType::Float32);
  }
  Tensor s = expand_param(ctx, "x_scale", scale, x.shape(), q.axis, q.block_size);
  return {nef::cast(dx * nef::cast(s, DType::Float32), out)};
}

// uint8 with scale and zero point from the data's range (always including 0).
std::vector<Tensor> dynamic_quantize_linear(NodeCtx& ctx) {
  Tensor x = ctx.input(0);
  if (x.dtype() != DType::Float32)
    type_error(ctx, str("x must be float32, got ", dtype_name(x.dtype())));
  if (x.numel() == 0) shape_error(ctx, str("x ", shape_str(x.shape()), " is empty: no range"));
  const Tensor zero = nef::scalar(0, DType::Float32);
  Tensor hi = nef::maximum(zero, nef::max(x)), lo = nef::minimum(zero, nef::min(x));
  Tensor range = nef::where(nef::equal(hi, lo), nef::scalar(1, DType::Float32), hi - lo);
  Tensor scale = range / nef::scalar(255, DType::Float32);
  Tensor zp = nef::round(nef::clip(zero - lo / scale, zero, nef::scalar(255, DType::Float32)));
  Tensor y = nef::clip(nef::round(x / scale) + zp, zero, nef::scalar(255, DType::Float32));
  return {nef::cast(y, DType::UInt8), scale, nef::cast(zp, DType::UInt8)};
}

// A zero point for one operand of matmul_integer: a scalar, or per row of a ([M], or
// [..., M, 1] with unit batch dims) / per column of b ([N], or [..., 1, N]).
Tensor matmul_zero_point(const NodeCtx& ctx, const char* what, const Tensor& z, int64_t per,
                         bool rows) {
  if (z.numel() == 1) return nef::reshape(z, {});
  const Shape& s = z.shape();
  bool ok = !s.empty() && z.numel() == per;
  if (ok && s.size() >= 2) ok = rows ? s.back() == 1 && s[s.size() - 2] == per : s.back() == per;
  if (!ok)
    ctx.unsupported(str(what, " ", shape_str(s), ": a scalar or one value per ",
                        rows ? "row" : "column", " (", per, ") is supported, not per batch"));
  return nef::reshape(z, {per});
}

// matmul_integer with ONNX MatMul's rank rules (1-D operands get a unit dim, removed after).
Tensor matmul_integer(const NodeCtx& ctx, Tensor a, Tensor b, const Tensor& za, const Tensor& zb) {
  need_q8(ctx, "A", a);
  need_q8(ctx, "B", b);
  if (a.rank() == 0 || b.rank() == 0)
    shape_error(ctx, str("A ", shape_str(a.shape()), " and B ", shape_str(b.shape()),
                         " must have rank >= 1"));
  const bool a1 = a.rank() == 1, b1 = b.rank() == 1;
  if (a1) a = nef::expand_dims(a, {0});
  if (b1) b = nef::expand_dims(b, {1});
  std::vector<Tensor> in = {a, b};
  if (za.defined() || zb.defined()) {
    const int64_t M = a.shape()[size_t(a.rank() - 2)], N = b.shape().back();
    Tensor zap = za.defined() ? za : nef::scalar(0, a.dtype());
    Tensor zbp = zb.defined() ? zb : nef::scalar(0, b.dtype());
    if (zap.dtype() != a.dtype() || zbp.dtype() != b.dtype())
      type_error(ctx, str("zero points (", dtype_name(zap.dtype()), ", ", dtype_name(zbp.dtype()),
                          ") must have the dtypes of A and B (", dtype_name(a.dtype()), ", ",
                          dtype_name(b.dtype()), ")"));
    in.push_back(matmul_zero_point(ctx, "a_zero_point", zap, M, true));
    in.push_back(matmul_zero_point(ctx, "b_zero_point", zbp, N, false));
  }
  Tensor y = nef::op("matmul_integer", in);
  if (b1) y = nef::squeeze(y, std::vector<int64_t>{y.rank() - 1});
  if (a1) y = nef::squeeze(y, std::vector<int64_t>{y.rank() - (b1 ? 1 : 2)});
  return y;
}

Tensor optional_input(const NodeCtx& ctx, size_t i) {
  return ctx.has_input(i) ? ctx.input(i) : Tensor{};
}

std::vector<Tensor> matmul_integer_op(NodeCtx& ctx) {
  return {matmul_integer(ctx, ctx.input(0), ctx.input(1), optional_input(ctx, 2),
                         optional_input(ctx, 3))};
}

// conv_integer with Conv's geometry attributes; w_zp scalar or per output channel.
Tensor conv_integer(const NodeCtx& ctx, const Tensor& x, const Tensor& w, const Tensor& zx,
                    const Tensor& zw) {
  need_q8(ctx, "x", x);
  need_q8(ctx, "w", w);
  Geometry g = read_geometry(ctx, x, &w);
  g.pads = resolve_pads(ctx, x.shape(), g);
  std::vector<Tensor> in = {x, w};
  if (zx.defined() || zw.defined()) {
    Tensor zxp = zx.defined() ? zx : nef::scalar(0, x.dtype());
    Tensor zwp = zw.defined() ? zw : nef::scalar(0, w.dtype());
    if (zxp.numel() != 1)
      ctx.unsupported(str("x_zero_point ", shape_str(zxp.shape()), ": only a single value"));
    in.push_back(nef::reshape(zxp, {}));
    in.push_back(zwp.numel() == 1 ? nef::reshape(zwp, {}) : zwp);
  }
  ir::Attrs attrs;
  attrs.set("strides", g.strides);
  attrs.set("pads", g.pads);
  attrs.set("dilations", g.dilations);
  attrs.set("groups", ctx.attr_int("group", 1));
  return nef::op("conv_integer", in, std::move(attrs));
}

std::vector<Tensor> conv_integer_op(NodeCtx& ctx) {
  return {conv_integer(ctx, ctx.input(0), ctx.input(1), optional_input(ctx, 2),
                       optional_input(ctx, 3))};
}

// The requantization multiplier s_a * s_b / s_y in the scales' dtype (as ONNX's reference
// forms it), then acc * multiplier in float64, rounded, offset and saturated.
Tensor qlinear_output(const NodeCtx& ctx, const Tensor& acc, const Tensor& mult, const Tensor& zy,
                      DType out) {
  (void)ctx;
  Tensor v = nef::cast(acc, DType::Float64) * nef::cast(mult, DType::Float64);
  return requantize(v, zy, out, DType::Float64);
}

// A scale: a scalar, or 1-D with `per` values laid along dim `at` of a rank-`rank` result.
Tensor per_scale(const NodeCtx& ctx, const char* what, const Tensor& s, int64_t per, int64_t at,
                 int64_t rank) {
  need_float(ctx, what, s);
  if (s.numel() == 1) return nef::reshape(s, {});
  if (s.rank() != 1 || s.shape()[0] != per)
    shape_error(ctx,
                str(what, " ", shape_str(s.shape()), " must be a scalar or hold ", per, " values"));
  Shape shape(size_t(rank - at), 1);
  shape[0] = per;
  return nef::reshape(s, shape);
}

std::vector<Tensor> qlinear_matmul(NodeCtx& ctx) {
  Tensor a = ctx.input(0), b = ctx.input(3);
  need_q8(ctx, "a", a);
  need_q8(ctx, "b", b);
  Tensor za = optional_input(ctx, 2), zb = optional_input(ctx, 5), zy = optional_input(ctx, 7);
  Tensor acc = matmul_integer(ctx, a, b, za, zb);
  const int64_t M = a.rank() >= 2 ? a.shape()[size_t(a.rank() - 2)] : 1, N = b.shape().back();
  const int64_t r = acc.rank();
  Tensor sa = a.rank() >= 2 ? per_scale(ctx, "a_scale", ctx.input(1), M, r - 2, r)
                            : per_scale(ctx, "a_scale", ctx.input(1), 1, 0, 1);
  Tensor sb = per_scale(ctx, "b_scale", ctx.input(4), N, r - 1, r);
  Tensor sy = per_scale(ctx, "y_scale", ctx.input(6), 1, 0, 1);
  if (sa.dtype() != sb.dtype() || sa.dtype() != sy.dtype())
    type_error(ctx, "a_scale, b_scale and y_scale must share a dtype");
  if (zy.defined()) {
    need_q8(ctx, "y_zero_point", zy);
    if (zy.numel() != 1) shape_error(ctx, "y_zero_point must be a single value");
    zy = nef::reshape(zy, {});
  }
  return {qlinear_output(ctx, acc, sa * sb / sy, zy, zy.defined() ? zy.dtype() : a.dtype())};
}

std::vector<Tensor> qlinear_conv(NodeCtx& ctx) {
  Tensor x = ctx.input(0), w = ctx.input(3);
  need_q8(ctx, "x", x);
  need_q8(ctx, "w", w);
  Tensor acc = conv_integer(ctx, x, w, optional_input(ctx, 2), optional_input(ctx, 5));
  const int64_t M = w.rank() > 0 ? w.shape()[0] : 0, r = acc.rank();
  if (ctx.has_input(8)) {
    Tensor bias = ctx.input(8);
    if (bias.dtype() != DType::Int32)
      type_error(ctx, str("B must be int32, got ", dtype_name(bias.dtype())));
    if (bias.rank() != 1 || bias.shape()[0] != M)
      shape_error(ctx, str("B ", shape_str(bias.shape()), " must hold ", M, " values"));
    Shape s(size_t(r - 1), 1);
    s[0] = M;
    acc = acc + nef::reshape(bias, s);
  }
  Tensor sx = per_scale(ctx, "x_scale", ctx.input(1), 1, 0, 1);
  Tensor sw = per_scale(ctx, "w_scale", ctx.input(4), M, 1, r);
  Tensor sy = per_scale(ctx, "y_scale", ctx.input(6), 1, 0, 1);
  Tensor zy = optional_input(ctx, 7);
  if (zy.defined()) {
    need_q8(ctx, "y_zero_point", zy);
    if (zy.numel() != 1) shape_error(ctx, "y_zero_point must be a single value");
    zy = nef::reshape(zy, {});
  }
  return {qlinear_output(ctx, acc, sx * sw / sy, zy, zy.defined() ? zy.dtype() : x.dtype())};
}

}  // namespace

void register_quant(ConverterTable& t) {
  // Revisions (converter.h); the last number is the oldest one converted.
  t["QuantizeLinear"] = {quantize_linear, {10, 13, 19, 21, 23, 24, 25}, 10};
  t["DequantizeLinear"] = {dequantize_linear, {10, 13, 19, 21, 23, 24, 25}, 10};
  t["DynamicQuantizeLinear"] = {dynamic_quantize_linear, {11}, 11};
  t["MatMulInteger"] = {matmul_integer_op, {10}, 10};
  t["ConvInteger"] = {conv_integer_op, {10}, 10};
  t["QLinearMatMul"] = {qlinear_matmul, {10, 21}, 10};
  t["QLinearConv"] = {qlinear_conv, {10}, 10};
}

}  // namespace nef::onnx_import
