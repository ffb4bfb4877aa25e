// Block-quantized ops (formats of common/quant.h; a quantized [N, K] matrix is a uint8 array
// [N, row_bytes(format, K)]): qmatmul (x @ W^T, the weights stay quantized) and qgather
// (embedding rows, dequantized). See docs/ops.md and docs/llm.md.
#include "common/quant.h"

#include <string>
#include <vector>

#include "ir/op_registry.h"
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

}  // namespace

void register_quant_ops(Registry& r) {
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
}

}  // namespace nef::ir
