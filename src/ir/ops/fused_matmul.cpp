// matmul_epilogue: a matmul whose elementwise epilogue (bias, activation, residual add...) runs on
// each output tile while it is still in cache (made by passes/fuse_epilogue). Inputs are
// a, b, then the epilogue's extra operands (each broadcastable to the matmul output); attribute
// `program` is a fused_elementwise program (ir/ops/fused_program.h) whose input i0 is the matmul
// result and i1.. the extra operands. a and b are both float32 or both float64; the output has
// the matmul's shape and dtype (the program's last instruction must produce that dtype).
#include <algorithm>

#include "ir/ops/fused_program.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

constexpr const char* kOp = "matmul_epilogue";

// The program's input types: the matmul result, then the extra operands.
std::vector<TensorType> program_inputs(const TensorType& mm, const std::vector<TensorType>& in) {
  std::vector<TensorType> p{mm};
  p.insert(p.end(), in.begin() + 2, in.end());
  return p;
}

TensorType infer_matmul_epilogue(const OpDef&, const std::vector<TensorType>& in, Attrs& attrs) {
  const TensorType& a = in[0];
  const TensorType& b = in[1];
  if (a.dtype != b.dtype || (a.dtype != DType::Float32 && a.dtype != DType::Float64))
    throw TypeError(
        str("[", kOp, "] a and b must both be float32 or both float64, got ", types_str({a, b})));
  // The matmul part follows matmul's own rules; its errors are re-labelled with this op.
  const OpDef& mm_op = get_op("matmul");
  Attrs none;
  TensorType mm;
  try {
    mm = mm_op.infer(mm_op, {a, b}, none);
  } catch (const ShapeError& e) {
    throw ShapeError(str("[", kOp, "] ", e.what()));
  }
  for (size_t k = 2; k < in.size(); ++k) {
    bool ok = in[k].shape.size() <= mm.shape.size();
    if (ok) {
      try {
        ok = broadcast_shapes(in[k].shape, mm.shape, kOp) == mm.shape;
      } catch (const ShapeError&) {
        ok = false;
      }
    }
    if (!ok)
      throw ShapeError(str("[", kOp, "] epilogue operand ", k - 2, " ", shape_str(in[k].shape),
                           " does not broadcast to the matmul output ", shape_str(mm.shape), " of ",
                           shape_str(a.shape), " @ ", shape_str(b.shape)));
    if (in[k].dtype != DType::Bool && !is_floating(in[k].dtype) && !is_integer(in[k].dtype))
      throw TypeError(str("[", kOp, "] unsupported epilogue operand dtype: ", types_str(in)));
  }
  try {
    parse_fused_program(attrs.get_string("program"), program_inputs(mm, in), mm.dtype);
  } catch (const ValidationError& e) {
    throw ValidationError(str("[", kOp, "] ", e.what()));
  }
  return mm;
}

Cost matmul_epilogue_cost(const std::vector<TensorType>& in, const TensorType& out,
                          const Attrs& attrs) {
  Cost c;
  const Shape& a = in[0].shape;
  double n = double(numel(out.shape));
  const std::string& p = attrs.get_string("program");
  c.flops = 2.0 * n * double(a.empty() ? 0 : a.back()) +
            n * double(1 + std::count(p.begin(), p.end(), ';'));
  c.bytes = n * double(dtype_size(out.dtype));
  for (const TensorType& t : in) c.bytes += double(numel(t.shape)) * double(dtype_size(t.dtype));
  return c;
}

}  // namespace

void register_fused_matmul_ops(Registry& r) {
  OpDef d;
  d.name = kOp;
  d.min_inputs = 2;
  d.max_inputs = 1 + kFusedMaxInputs;  // a, b and up to kFusedMaxInputs - 1 extra operands
  d.attrs = {{"program", AttrType::String, std::nullopt, true}};
  d.infer = infer_matmul_epilogue;
  // No kElementwise: the kernel writes the matmul result before reading the extra operands, so
  // the output must never share a buffer with an input (memory planning must not go in place).
  d.traits = 0;
  d.cost = matmul_epilogue_cost;
  r.add(std::move(d));
}

}  // namespace nef::ir
