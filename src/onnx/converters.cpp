// The converter table (one registration call per family file) and the helpers converters share.
#include <algorithm>

#include "api/lazy.h"
#include "common/dispatch.h"
#include "onnx/converter.h"

namespace nef::onnx_import {

const ConverterTable& converters() {
  static const ConverterTable table = [] {
    ConverterTable t;
    register_elementwise(t);
    register_reduction(t);
    register_shape(t);
    register_nn(t);
    register_transformer(t);
    register_indexing(t);
    register_loss(t);
    register_signal(t);
    register_recurrent(t);
    register_dynamic(t);
    register_control_flow(t);
    register_quant(t);
    for (const auto& [name, e] : t)
      NEF_CHECK(!e.since.empty() && std::is_sorted(e.since.begin(), e.since.end()) &&
                    std::find(e.since.begin(), e.since.end(), e.min_since) != e.since.end() &&
                    e.since.back() <= kNewestOpset,
                "[onnx] converter table entry for ", name, " is malformed");
    return t;
  }();
  return table;
}

// TensorProto.DataType numbers are fixed by the ONNX schema.
namespace {
struct OnnxType {
  int code;
  const char* name;
  std::optional<DType> dtype;
};
constexpr OnnxType kTypes[] = {
    {0, "UNDEFINED", std::nullopt},
    {1, "FLOAT", DType::Float32},
    {2, "UINT8", DType::UInt8},
    {3, "INT8", DType::Int8},
    {4, "UINT16", DType::UInt16},
    {5, "INT16", DType::Int16},
    {6, "INT32", DType::Int32},
    {7, "INT64", DType::Int64},
    {8, "STRING", std::nullopt},
    {9, "BOOL", DType::Bool},
    {10, "FLOAT16", DType::Float16},
    {11, "DOUBLE", DType::Float64},
    {12, "UINT32", DType::UInt32},
    {13, "UINT64", DType::UInt64},
    {14, "COMPLEX64", std::nullopt},
    {15, "COMPLEX128", std::nullopt},
    {16, "BFLOAT16", DType::BFloat16},
    {17, "FLOAT8E4M3FN", DType::Float8E4M3FN},
    {18, "FLOAT8E4M3FNUZ", DType::Float8E4M3FNUZ},
    {19, "FLOAT8E5M2", DType::Float8E5M2},
    {20, "FLOAT8E5M2FNUZ", DType::Float8E5M2FNUZ},
    {21, "UINT4", std::nullopt},
    {22, "INT4", std::nullopt},
    {23, "FLOAT4E2M1", std::nullopt},
    {24, "FLOAT8E8M0", std::nullopt},
    {25, "UINT2", std::nullopt},
    {26, "INT2", std::nullopt},
};
}  // namespace

std::optional<DType> dtype_from_onnx(int onnx_type) {
  for (const auto& t : kTypes)
    if (t.code == onnx_type) return t.dtype;
  return std::nullopt;
}

int dtype_to_onnx(DType dt) {
  for (const auto& t : kTypes)
    if (t.dtype && *t.dtype == dt) return t.code;
  return 0;
}

const char* onnx_type_name(int onnx_type) {
  for (const auto& t : kTypes)
    if (t.code == onnx_type) return t.name;
  return "unknown";
}

int op_revision(const ConverterEntry& e, int opset) {
  int v = 0;
  for (int s : e.since)
    if (s <= opset) v = s;
  return v;
}

Tensor scalar_like(double value, DType dtype) { return nef::scalar(value, dtype); }

int64_t norm_axis(const NodeCtx& ctx, int64_t axis, int64_t rank) {
  // Strict (a rank-0 tensor has no axis): converters index shapes with the result.
  if (axis < -rank || axis >= rank)
    throw ShapeError(str(ctx.where(), ": axis ", axis, " out of range for rank ", rank));
  return axis < 0 ? axis + rank : axis;
}

}  // namespace nef::onnx_import
