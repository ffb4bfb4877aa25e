// Convolution op family: conv and conv_transpose with ONNX Conv / ConvTranspose semantics,
// channels-first, 1 to 3 spatial dims, and deform_im2col (the sampling of ONNX DeformConv).
// Inference fills every geometry attribute with its full explicit list, so kernels and the plan
// cache see one canonical form. See docs/ops.md.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "ir/ops/conv_attrs.h"
#include "ir/ops/fused_program.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

std::string ints_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// Reads an ints attribute of length `len` whose values are >= `min`, or fills it with `fill`.
std::vector<int64_t> geometry_attr(const OpDef& op, Attrs& attrs, const char* name, size_t len,
                                   int64_t fill, int64_t min) {
  if (!attrs.has(name)) {
    std::vector<int64_t> v(len, fill);
    attrs.set(name, v);
    return v;
  }
  const std::vector<int64_t>& v = attrs.get_ints(name);
  if (v.size() != len)
    throw ValidationError(
        str("[", op.name, "] ", name, " must have ", len, " values, got ", ints_str(v)));
  // The upper bound (the largest dim) keeps the kernels' index arithmetic far from overflow.
  for (int64_t e : v)
    if (e < min || e > kMaxElements)
      throw ValidationError(
          str("[", op.name, "] ", name, " must be in [", min, ", 2^48], got ", ints_str(v)));
  return v;
}

// Checks shared by conv and conv_transpose; returns the number of spatial dims.
size_t check_operands(const OpDef& op, const std::vector<TensorType>& in) {
  const Shape& x = in[0].shape;
  const Shape& w = in[1].shape;
  if (x.size() < 3 || x.size() > 5)
    throw ShapeError(str("[", op.name,
                         "] input must be (N, C, spatial...) with 1 to 3 spatial "
                         "dims, got ",
                         shape_str(x)));
  if (w.size() != x.size())
    throw ShapeError(str("[", op.name, "] weight ", shape_str(w), " must have the rank of input ",
                         shape_str(x)));
  for (size_t d = 2; d < w.size(); ++d)
    if (w[d] < 1)
      throw ShapeError(str("[", op.name, "] kernel dims must be >= 1: weight ", shape_str(w)));
  DType t = in[0].dtype;
  if (!is_floating(t))
    throw TypeError(str("[", op.name, "] expects float inputs, got ", types_str(in)));
  for (const TensorType& i : in)
    if (i.dtype != t)
      throw TypeError(
          str("[", op.name, "] input, weight and bias must share a dtype, got ", types_str(in)));
  if (in.size() == 3 && in[2].shape.size() != 1)
    throw ShapeError(str("[", op.name, "] bias must be 1-D, got ", types_str(in)));
  return x.size() - 2;
}

int64_t groups_attr(const OpDef& op, const Attrs& attrs) {
  int64_t g = attrs.get_int("groups");
  if (g < 1) throw ValidationError(str("[", op.name, "] groups must be >= 1, got ", g));
  return g;
}

// Output extents are computed in 128 bits: attributes may come from a file, so huge strides or
// pads must give a ShapeError, not a signed overflow.
using Wide = __int128;
Wide floor_div(Wide a, Wide b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t checked_extent(const OpDef& op, Wide o, const Shape& x, const Shape& w) {
  if (o > Wide(INT64_MAX))
    throw ShapeError(str("[", op.name, "] output extent overflows for input ", shape_str(x),
                         " and weight ", shape_str(w)));
  return int64_t(o);
}

TensorType infer_conv(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const size_t nsp = check_operands(op, in);
  const Shape& x = in[0].shape;
  const Shape& w = in[1].shape;
  auto strides = geometry_attr(op, attrs, "strides", nsp, 1, 1);
  auto pads = geometry_attr(op, attrs, "pads", 2 * nsp, 0, 0);
  auto dilations = geometry_attr(op, attrs, "dilations", nsp, 1, 1);
  const int64_t g = groups_attr(op, attrs);
  const int64_t c = x[1], m = w[0];
  if (c % g != 0 || m % g != 0 || w[1] * g != c)
    throw ShapeError(str("[conv] with groups=", g, " input ", shape_str(x), " and weight ",
                         shape_str(w),
                         " need C % groups == 0, M % groups == 0 and "
                         "weight.shape[1] * groups == C"));
  if (in.size() == 3 && in[2].shape[0] != m)
    throw ShapeError(str("[conv] bias ", shape_str(in[2].shape), " must have ", m,
                         " values (weight ", shape_str(w), ")"));
  Shape out = {x[0], m};
  for (size_t i = 0; i < nsp; ++i) {
    Wide span = Wide(dilations[i]) * (w[i + 2] - 1) + 1;
    Wide o = floor_div(Wide(x[i + 2]) + pads[i] + pads[i + nsp] - span, strides[i]) + 1;
    if (o < 0)
      throw ShapeError(str("[conv] kernel ", shape_str(w), " with dilations ", ints_str(dilations),
                           " does not fit input ", shape_str(x), " padded by ", ints_str(pads)));
    out.push_back(checked_extent(op, o, x, w));
  }
  checked_numel(out, "conv");
  return {out, in[0].dtype};
}

TensorType infer_conv_transpose(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const size_t nsp = check_operands(op, in);
  const Shape& x = in[0].shape;
  const Shape& w = in[1].shape;
  auto strides = geometry_attr(op, attrs, "strides", nsp, 1, 1);
  auto pads = geometry_attr(op, attrs, "pads", 2 * nsp, 0, 0);
  auto dilations = geometry_attr(op, attrs, "dilations", nsp, 1, 1);
  auto out_pad = geometry_attr(op, attrs, "output_padding", nsp, 0, 0);
  const int64_t g = groups_attr(op, attrs);
  for (size_t i = 0; i < nsp; ++i)
    if (out_pad[i] >= strides[i] && out_pad[i] >= dilations[i])
      throw ValidationError(str("[conv_transpose] output_padding ", ints_str(out_pad),
                                " must be smaller than the stride ", ints_str(strides),
                                " or the dilation ", ints_str(dilations), " in each dim"));
  const int64_t c = x[1];
  if (w[0] != c || c % g != 0)
    throw ShapeError(str("[conv_transpose] with groups=", g, " input ", shape_str(x),
                         " and weight ", shape_str(w),
                         " need weight.shape[0] == C and "
                         "C % groups == 0"));
  const int64_t m = w[1] * g;
  if (in.size() == 3 && in[2].shape[0] != m)
    throw ShapeError(str("[conv_transpose] bias ", shape_str(in[2].shape), " must have ", m,
                         " values (weight ", shape_str(w), ", groups=", g, ")"));
  Shape out = {x[0], m};
  for (size_t i = 0; i < nsp; ++i) {
    Wide o = Wide(strides[i]) * (x[i + 2] - 1) + out_pad[i] + Wide(dilations[i]) * (w[i + 2] - 1) +
             1 - pads[i] - pads[i + nsp];
    if (o < 0)
      throw ShapeError(str("[conv_transpose] pads ", ints_str(pads), " exceed the output of input ",
                           shape_str(x), " with weight ", shape_str(w)));
    out.push_back(checked_extent(op, o, x, w));
  }
  checked_numel(out, "conv_transpose");
  return {out, in[0].dtype};
}

double kernel_size(const Shape& w) {
  double k = 1;
  for (size_t d = 2; d < w.size(); ++d) k *= double(w[d]);
  return k;
}

double io_bytes(const std::vector<TensorType>& in, const TensorType& out) {
  double bytes = double(numel(out.shape)) * dtype_size(out.dtype);
  for (const TensorType& t : in) bytes += double(numel(t.shape)) * dtype_size(t.dtype);
  return bytes;
}

// Each output element is a dot product over C/groups * prod(kernel) taps.
Cost cost_conv(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const Shape& w = in[1].shape;
  double flops = 2.0 * double(numel(out.shape)) * double(w[1]) * kernel_size(w);
  return {flops, io_bytes(in, out)};
}

// Each input element is scattered to M/groups * prod(kernel) outputs.
Cost cost_conv_transpose(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const Shape& w = in[1].shape;
  double flops = 2.0 * double(numel(in[0].shape)) * double(w[1]) * kernel_size(w);
  return {flops, io_bytes(in, out)};
}

// deform_im2col: the sampling half of a deformable convolution (ONNX DeformConv, 2-D). x
// [N, C, H, W], offset [N, G*2*kh*kw, oh, ow] (per offset group G and kernel tap: dy, dx),
// optional mask [N, G*kh*kw, oh, ow] -> columns [N, C*kh*kw, oh*ow]: row (c, i, j), column
// (y, x) holds x[c] bilinearly sampled at (y*sh - ph + i*dh + dy, x*sw - pw + j*dw + dx)
// (taps outside x read 0) times the mask, so the convolution is one matmul with the weight.
TensorType infer_deform_im2col(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape &x = in[0].shape, &off = in[1].shape;
  const DType t = in[0].dtype;
  if (!is_floating(t))
    throw TypeError(str("[deform_im2col] expects float inputs, got ", types_str(in)));
  for (const TensorType& i : in)
    if (i.dtype != t)
      throw TypeError(
          str("[deform_im2col] x, offset and mask must share a dtype, got ", types_str(in)));
  if (x.size() != 4 || off.size() != 4)
    throw ShapeError(
        str("[deform_im2col] x and offset must be 4-D (N, C, H, W), got ", types_str(in)));
  if (!attrs.has("kernel_shape"))
    throw ValidationError("[deform_im2col] needs kernel_shape [kh, kw]");
  const auto k = geometry_attr(op, attrs, "kernel_shape", 2, 1, 1);
  const auto strides = geometry_attr(op, attrs, "strides", 2, 1, 1);
  const auto pads = geometry_attr(op, attrs, "pads", 4, 0, 0);
  const auto dil = geometry_attr(op, attrs, "dilations", 2, 1, 1);
  const int64_t g = attrs.get_int("offset_group");
  if (g < 1 || x[1] % g != 0)
    throw ValidationError(str("[deform_im2col] offset_group ", g, " must be >= 1 and divide the ",
                              x[1], " channels of x ", shape_str(x)));
  int64_t o[2];
  for (int d = 0; d < 2; ++d) {
    const int64_t span = (k[d] - 1) * dil[d] + 1;
    const int64_t avail = x[2 + d] + pads[d] + pads[d + 2] - span;
    o[d] = avail < 0 ? 0 : avail / strides[d] + 1;
  }
  if (off != Shape{x[0], g * 2 * k[0] * k[1], o[0], o[1]})
    throw ShapeError(str("[deform_im2col] offset must be [N, offset_group*2*kh*kw, oh, ow] = ",
                         shape_str(Shape{x[0], g * 2 * k[0] * k[1], o[0], o[1]}), ": ",
                         types_str(in)));
  if (in.size() == 3 && in[2].shape != Shape{x[0], g * k[0] * k[1], o[0], o[1]})
    throw ShapeError(str("[deform_im2col] mask must be [N, offset_group*kh*kw, oh, ow] = ",
                         shape_str(Shape{x[0], g * k[0] * k[1], o[0], o[1]}), ": ", types_str(in)));
  Shape out = {x[0], x[1] * k[0] * k[1], o[0] * o[1]};
  checked_numel(out, "deform_im2col");
  return {out, t};
}

// Four taps and their weights per output element.
Cost cost_deform_im2col(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  return {double(numel(out.shape)) * 12,
          io_bytes(in, out) + double(numel(out.shape)) * 3 * double(dtype_size(out.dtype))};
}

// conv_epilogue: a float conv with bias whose elementwise epilogue (an activation: relu, silu,
// clip...) runs on each finished block of output rows while they are in cache (made by
// passes/fuse_epilogue). Inputs x, w, b, then the epilogue's extra operands, each a single value
// (a clip bound); attribute `program` is a fused_elementwise program (ir/ops/fused_program.h)
// whose input i0 is the conv result and i1.. the extras. x, w, b share one float32/float64
// dtype; the output has the conv's shape and dtype.
TensorType infer_conv_epilogue(const OpDef& op, const std::vector<TensorType>& in, Attrs& attrs) {
  const DType t = in[0].dtype;
  if (t != DType::Float32 && t != DType::Float64)
    throw TypeError(str("[conv_epilogue] x must be float32 or float64: ", types_str(in)));
  if (in[1].dtype != t || in[2].dtype != t)
    throw TypeError(str("[conv_epilogue] x, w and b must share a dtype: ", types_str(in)));
  const TensorType out = infer_conv(op, {in[0], in[1], in[2]}, attrs);
  std::vector<TensorType> prog_in{out};
  for (size_t k = 3; k < in.size(); ++k) {
    if (numel(in[k].shape) != 1)
      throw ShapeError(str("[conv_epilogue] epilogue operand ", k - 3, " ", shape_str(in[k].shape),
                           " must be a single value (conv output ", shape_str(out.shape), ")"));
    if (in[k].dtype != DType::Bool && !is_floating(in[k].dtype) && !is_integer(in[k].dtype))
      throw TypeError(str("[conv_epilogue] unsupported epilogue operand dtype: ", types_str(in)));
    prog_in.push_back(in[k]);
  }
  try {
    parse_fused_program(attrs.get_string("program"), prog_in, out.dtype);
  } catch (const ValidationError& e) {
    throw ValidationError(str("[conv_epilogue] ", e.what()));
  }
  return out;
}

Cost cost_conv_epilogue(const std::vector<TensorType>& in, const TensorType& out,
                        const Attrs& attrs) {
  Cost c = cost_conv({in[0], in[1], in[2]}, out, attrs);
  const std::string& p = attrs.get_string("program");
  c.flops += double(numel(out.shape)) * double(1 + std::count(p.begin(), p.end(), ';'));
  return c;
}

OpDef make(const char* name, InferFn infer, CostFn cost) {
  OpDef d;
  d.name = name;
  d.min_inputs = 2;
  d.max_inputs = 3;
  d.infer = infer;
  d.cost = cost;
  add_conv_geometry_attrs(d);
  return d;
}

}  // namespace

void register_conv_ops(Registry& r) {
  r.add(make("conv", infer_conv, cost_conv));
  OpDef ce = make("conv_epilogue", infer_conv_epilogue, cost_conv_epilogue);
  ce.min_inputs = 3;
  ce.max_inputs = 2 + kFusedMaxInputs;  // x, w, b and up to kFusedMaxInputs - 1 extras
  ce.attrs.push_back({"program", AttrType::String, std::nullopt, true});
  r.add(std::move(ce));  // no traits: the output never shares a buffer with an input
  OpDef ct = make("conv_transpose", infer_conv_transpose, cost_conv_transpose);
  ct.attrs.push_back({"output_padding", AttrType::Ints, std::nullopt, false});
  r.add(std::move(ct));
  OpDef dc = make("deform_im2col", infer_deform_im2col, cost_deform_im2col);
  dc.attrs.pop_back();  // no groups: those belong to the matmul with the weight
  dc.attrs.push_back({"kernel_shape", AttrType::Ints, std::nullopt, false});
  dc.attrs.push_back({"offset_group", AttrType::Int, AttrValue(int64_t(1)), false});
  r.add(std::move(dc));
}

}  // namespace nef::ir
