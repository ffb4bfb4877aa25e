// Quantized ops. Block-quantized (formats of common/quant.h; a quantized [N, K] matrix is a
// uint8 array [N, row_bytes(format, K)]): qmatmul (x @ W^T, the weights stay quantized) and
// qgather (embedding rows, dequantized). Integer (ONNX's affine 8-bit quantization):
// matmul_integer and conv_integer, exact int32 results of (a - a_zp) x (b - b_zp), and
// matmul_dynamic_int8 / conv_dynamic_int8 (float activations quantized at run time, per row /
// per tensor). See docs/ops.md, docs/llm.md and docs/onnx.md.
#include "common/quant.h"

#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "ir/ops/conv_attrs.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

// The format and K of a quantized [N, K] weight of type w; throws naming the op.
std::pair<quant::Format, int64_t> quantized_matrix(const char* op, const TensorType& w,
                                                   const Attrs& attrs,
                                                   const std::vector<TensorType>& in) {
  const std::string& name = attrs.get_string("format");
  auto f = quant::format_from_name(name);
  if (!f)
    throw ValidationError(
        str("[", op, "] unknown format \"", name, "\" (q4_0, q4_1, q8_0, q4_k, q5_k, q6_k)"));
  if (w.dtype != DType::UInt8 || w.shape.size() != 2)
    throw TypeError(
        str("[", op, "] the quantized matrix must be uint8 [N, row_bytes]: ", types_str(in)));
  const quant::FormatInfo& fi = quant::info(*f);
  if (w.shape[1] % fi.block_bytes != 0)
    throw ShapeError(str("[", op, "] rows of ", w.shape[1], " bytes are not whole ", fi.name,
                         " blocks of ", fi.block_bytes, " bytes: ", types_str(in)));
  return {*f, w.shape[1] / fi.block_bytes * fi.block_elems};
}

// qmatmul: x [..., K] (float), w uint8 [N, row_bytes(format, K)] -> [..., N] float32.
TensorType infer_qmatmul(const OpDef&, const std::vector<TensorType>& in, Attrs& attrs) {
  const auto [f, K] = quantized_matrix("qmatmul", in[1], attrs, in);
  (void)f;
  if (!is_floating(in[0].dtype)) throw TypeError(str("[qmatmul] x must be float: ", types_str(in)));
  if (in[0].shape.empty() || in[0].shape.back() != K)
    throw ShapeError(str("[qmatmul] x [..., ", K, "] expected for a ", attrs.get_string("format"),
                         " matrix of ", in[1].shape[0], " x ", K, ": ", types_str(in)));
  Shape out = in[0].shape;
  out.back() = in[1].shape[0];
  return {out, DType::Float32};
}

Cost cost_qmatmul(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const double K = double(in[0].shape.back());
  const double bytes =
      double(numel(in[1].shape)) + double(numel(in[0].shape)) * 4 + double(numel(out.shape)) * 4;
  return {2.0 * double(numel(out.shape)) * K, bytes};
}

// qgather: w uint8 [N, row_bytes(format, K)], ids int [...] -> [..., K] float32 (rows ids of
// the dequantized matrix; negative ids count from the end, out of range fails at run time).
TensorType infer_qgather(const OpDef&, const std::vector<TensorType>& in, Attrs& attrs) {
  const auto [f, K] = quantized_matrix("qgather", in[0], attrs, in);
  (void)f;
  if (!is_integer(in[1].dtype))
    throw TypeError(str("[qgather] ids must be integers: ", types_str(in)));
  Shape out = in[1].shape;
  out.push_back(K);
  checked_numel(out, "qgather");
  return {out, DType::Float32};
}

Cost cost_qgather(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const double rows = double(numel(in[1].shape));
  return {double(numel(out.shape)) * 2,
          rows * double(in[0].shape[1]) + double(numel(out.shape)) * 4};
}

bool is_int8ish(DType t) { return t == DType::Int8 || t == DType::UInt8; }

// A zero point of `of`'s dtype with one value, or `per` values along one axis (a 1-D [per]).
void check_zero_point(const char* op, const char* what, const TensorType& zp, const TensorType& of,
                      int64_t per, const char* per_what, const std::vector<TensorType>& in) {
  if (zp.dtype != of.dtype)
    throw TypeError(str("[", op, "] ", what, " must have its operand's dtype ",
                        dtype_name(of.dtype), ": ", types_str(in)));
  if (numel(zp.shape) == 1 && zp.shape.size() <= 1) return;
  if (zp.shape.size() != 1 || zp.shape[0] != per)
    throw ShapeError(str("[", op, "] ", what, " must be a scalar or hold one value per ", per_what,
                         " (", per, "): ", types_str(in)));
}

// matmul_integer: a [..., M, K] and b [..., K, N] int8/uint8 (batch dims broadcast), optional
// zero points a_zp (scalar or [M]) and b_zp (scalar or [N]) -> int32 [..., M, N].
TensorType infer_matmul_integer(const OpDef& op, const std::vector<TensorType>& in, Attrs&) {
  const TensorType &a = in[0], &b = in[1];
  if (!is_int8ish(a.dtype) || !is_int8ish(b.dtype))
    throw TypeError(str("[matmul_integer] a and b must be int8 or uint8: ", types_str(in)));
  if (a.shape.size() < 2 || b.shape.size() < 2)
    throw ShapeError(str("[matmul_integer] a and b need rank >= 2: ", types_str(in)));
  const int64_t M = a.shape[a.shape.size() - 2], K = a.shape.back();
  const int64_t N = b.shape.back();
  if (b.shape[b.shape.size() - 2] != K)
    throw ShapeError(str("[matmul_integer] inner dims differ: ", types_str(in)));
  if (in.size() == 3)
    throw ValidationError(str("[matmul_integer] give both zero points or none: ", types_str(in)));
  if (in.size() == 4) {
    check_zero_point("matmul_integer", "a_zero_point", in[2], a, M, "row of a", in);
    check_zero_point("matmul_integer", "b_zero_point", in[3], b, N, "column of b", in);
  }
  const Shape ab(a.shape.begin(), a.shape.end() - 2), bb(b.shape.begin(), b.shape.end() - 2);
  Shape out = broadcast_all(op, {{ab, a.dtype}, {bb, b.dtype}});
  out.push_back(M);
  out.push_back(N);
  checked_numel(out, "matmul_integer");
  return {out, DType::Int32};
}

Cost cost_matmul_integer(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const double K = double(in[0].shape.back());
  return {2.0 * double(numel(out.shape)) * K,
          double(numel(in[0].shape) + numel(in[1].shape)) + 4.0 * double(numel(out.shape))};
}

// The dynamic int8 ops' operands: x float32, w int8, w_scale and the optional bias float32.
void check_dynamic_int8_types(const char* op, const std::vector<TensorType>& in) {
  if (in[0].dtype != DType::Float32 || in[1].dtype != DType::Int8 ||
      in[2].dtype != DType::Float32 || (in.size() == 4 && in[3].dtype != DType::Float32))
    throw TypeError(
        str("[", op, "] x float32, w int8, w_scale and bias float32 expected: ", types_str(in)));
}

// w_scale and bias hold one value per output channel (`per`); attribute `activation` is "",
// "relu" or the op's other one.
void check_dynamic_int8_channels(const char* op, const std::vector<TensorType>& in, int64_t per,
                                 const Attrs& attrs, const char* other) {
  for (size_t i = 2; i < in.size(); ++i)
    if (in[i].shape != Shape{per})
      throw ShapeError(
          str("[", op, "] ", i == 2 ? "w_scale" : "bias", " must be [", per, "]: ", types_str(in)));
  const std::string& act = attrs.get_string("activation");
  if (!act.empty() && act != "relu" && act != other)
    throw ValidationError(
        str("[", op, "] activation must be \"\", \"relu\" or \"", other, "\", got \"", act, "\""));
}

// matmul_dynamic_int8: x float32 [..., K] times a per-column quantized w int8 [K, N] with its
// float32 scales w_scale [N] and an optional float32 bias [N] -> float32 [..., N]. Each row of x
// is quantized at run time to uint8 over its range widened to hold 0 (ONNX
// DynamicQuantizeLinear, per row): s = max(hi - lo, FLT_MIN) / 255, z = round(-lo / s),
// q = clamp(round(x / s) + z, 0, 255); y = float((q - z) @ w) * s * w_scale (+ bias), the
// integer product exact, then attribute `activation` ("" none, "relu", "gelu": exact, erf). A
// row holding NaN or an infinity gives a row of NaN.
TensorType infer_matmul_dynamic_int8(const OpDef&, const std::vector<TensorType>& in,
                                     Attrs& attrs) {
  const TensorType &x = in[0], &w = in[1];
  check_dynamic_int8_types("matmul_dynamic_int8", in);
  if (x.shape.empty() || w.shape.size() != 2 || w.shape[0] != x.shape.back())
    throw ShapeError(
        str("[matmul_dynamic_int8] x [..., K] and w [K, N] expected: ", types_str(in)));
  const int64_t N = w.shape[1];
  check_dynamic_int8_channels("matmul_dynamic_int8", in, N, attrs, "gelu");
  Shape out = x.shape;
  out.back() = N;
  checked_numel(out, "matmul_dynamic_int8");
  return {out, DType::Float32};
}

Cost cost_matmul_dynamic_int8(const std::vector<TensorType>& in, const TensorType& out,
                              const Attrs&) {
  const double K = double(in[0].shape.back());
  return {2.0 * double(numel(out.shape)) * K, 4.0 * double(numel(in[0].shape)) +
                                                  double(numel(in[1].shape)) +
                                                  4.0 * double(numel(out.shape))};
}

// conv_integer: ONNX ConvInteger. x [N, C, spatial...] and w [M, C / groups, kernel...] int8 or
// uint8, optional zero points x_zp (scalar) and w_zp (scalar or [M]) -> int32, with conv's
// geometry (attributes and output shape exactly as conv's; padding contributes zero).
TensorType infer_conv_integer(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  if (!is_int8ish(in[0].dtype) || !is_int8ish(in[1].dtype))
    throw TypeError(str("[conv_integer] x and w must be int8 or uint8: ", types_str(in)));
  if (in.size() == 3)
    throw ValidationError(str("[conv_integer] give both zero points or none: ", types_str(in)));
  if (in.size() == 4) {
    check_zero_point("conv_integer", "x_zero_point", in[2], in[0], 1, "tensor", in);
    const int64_t m = in[1].shape.empty() ? 0 : in[1].shape[0];
    check_zero_point("conv_integer", "w_zero_point", in[3], in[1], m, "output channel", in);
  }
  // The geometry is conv's: its inference on float stand-ins of the same shapes.
  const std::vector<TensorType> f = {{in[0].shape, DType::Float32}, {in[1].shape, DType::Float32}};
  TensorType t = get_op("conv").infer(op, f, attrs);
  t.dtype = DType::Int32;
  return t;
}

Cost cost_conv_integer(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  double per_out = 1;
  for (size_t d = 1; d < in[1].shape.size(); ++d) per_out *= double(in[1].shape[d]);
  return {2.0 * double(numel(out.shape)) * per_out,
          double(numel(in[0].shape) + numel(in[1].shape)) + 4.0 * double(numel(out.shape))};
}

// conv_dynamic_int8: x float32 [N, C, spatial] (1 or 2 spatial dims) convolved with a per-output-
// channel quantized w int8 [M, C / groups, kernel...] with its float32 scales w_scale [M] and an
// optional float32 bias [M] -> float32, conv's geometry. x is quantized at run time per tensor to
// uint8 over its range widened to hold 0 (ONNX DynamicQuantizeLinear): s = max(hi - lo,
// FLT_MIN) / 255, z = round(-lo / s), q = clamp(round(x / s) + z, 0, 255); y = float(
// conv_integer(q, w, z, 0)) * (s * w_scale[m]) + bias[m], the integer conv exact, then the
// attribute `activation` ("" none, "relu", "silu": y * sigmoid(y)). An x holding NaN or an
// infinity gives NaN everywhere.
TensorType infer_conv_dynamic_int8(const OpDef& op, const std::vector<TensorType>& in,
                                   Attrs& attrs) {
  const TensorType &x = in[0], &w = in[1];
  check_dynamic_int8_types("conv_dynamic_int8", in);
  if (x.shape.size() != 3 && x.shape.size() != 4)
    throw ShapeError(str("[conv_dynamic_int8] x must be [N, C, spatial] with 1 or 2 spatial dims: ",
                         types_str(in)));
  check_dynamic_int8_channels("conv_dynamic_int8", in, w.shape.empty() ? 0 : w.shape[0], attrs,
                              "silu");
  const std::vector<TensorType> f = {{x.shape, DType::Float32}, {w.shape, DType::Float32}};
  TensorType t = get_op("conv").infer(op, f, attrs);
  t.dtype = DType::Float32;
  return t;
}

}  // namespace

void register_quant_ops(Registry& r) {
  OpDef mi;
  mi.name = "matmul_integer";
  mi.min_inputs = 2;
  mi.max_inputs = 4;
  mi.infer = infer_matmul_integer;
  mi.cost = cost_matmul_integer;
  r.add(std::move(mi));

  OpDef md;
  md.name = "matmul_dynamic_int8";
  md.min_inputs = 3;
  md.max_inputs = 4;
  md.infer = infer_matmul_dynamic_int8;
  md.cost = cost_matmul_dynamic_int8;
  md.attrs.push_back({"activation", AttrType::String, AttrValue(std::string()), false});
  r.add(std::move(md));

  OpDef ci;
  ci.name = "conv_integer";
  ci.min_inputs = 2;
  ci.max_inputs = 4;
  ci.infer = infer_conv_integer;
  ci.cost = cost_conv_integer;
  add_conv_geometry_attrs(ci);
  r.add(std::move(ci));

  OpDef mm;
  mm.name = "qmatmul";
  mm.min_inputs = mm.max_inputs = 2;
  mm.infer = infer_qmatmul;
  mm.cost = cost_qmatmul;
  mm.attrs.push_back({"format", AttrType::String, std::nullopt, true});
  r.add(std::move(mm));

  OpDef g;
  g.name = "qgather";
  g.min_inputs = g.max_inputs = 2;
  g.infer = infer_qgather;
  g.cost = cost_qgather;
  g.attrs.push_back({"format", AttrType::String, std::nullopt, true});
  r.add(std::move(g));

  OpDef cd;
  cd.name = "conv_dynamic_int8";
  cd.min_inputs = 3;
  cd.max_inputs = 4;
  cd.infer = infer_conv_dynamic_int8;
  cd.cost = cost_conv_integer;
  add_conv_geometry_attrs(cd);
  cd.attrs.push_back({"activation", AttrType::String, AttrValue(std::string()), false});
  r.add(std::move(cd));
}

}  // namespace nef::ir
