// Elementwise ops and fused_elementwise on OpenCL: every one is a fused program (a single op is a
// one-instruction program), rendered by the C-style renderer with the operands' strides baked in.
#include "backends/cstyle/render.h"
#include "backends/opencl/kernels.h"
#include "nef/error.h"

namespace nef::backend::opencl {
namespace {

std::string program_text(const ir::Node& n) {
  if (n.is("fused_elementwise")) return n.attrs.get_string("program");
  std::optional<ir::FusedOp> op = ir::fused_op_of(n);
  NEF_CHECK(op.has_value(), "[opencl] ", n.op->name, " is not a fused op");
  std::string args;
  for (size_t k = 0; k < n.inputs.size(); ++k) args += str(k ? "," : "", "i", k);
  return str("r0=", ir::fused_op_name(*op), "(", args, ")");
}

// The program a node runs, or nullopt when the renderer cannot express it on `d`.
std::optional<ir::FusedProgram> program_of(const ir::Node& n, const std::vector<ir::TensorType>& in,
                                           const DeviceInfo& d) {
  if (!n.is("fused_elementwise")) {
    std::optional<ir::FusedOp> op = ir::fused_op_of(n);
    if (!op || ir::fused_op_arity(*op) != int(n.inputs.size())) return std::nullopt;
    // Integers are converted to the float compute type, so only where that is exact enough:
    // the same rule the fusion pass applies (comparisons of integers stay on exact kernels).
    for (size_t k = 0; k < in.size(); ++k) {
      DType t = in[k].dtype;
      if (is_floating(t) || t == DType::Bool) continue;
      bool cond = *op == ir::FusedOp::Where && k == 0;
      bool logical = *op == ir::FusedOp::LogicalAnd || *op == ir::FusedOp::LogicalOr ||
                     *op == ir::FusedOp::LogicalNot;
      if (cond || logical) continue;
      if (ir::fused_op_is_compare(*op)) return std::nullopt;
      if (n.type.dtype != DType::Float32 && n.type.dtype != DType::Float64) return std::nullopt;
    }
  }
  try {
    ir::FusedProgram p = ir::parse_fused_program(program_text(n), in, n.type.dtype);
    if (p.compute == DType::Float64 && !d.fp64) return std::nullopt;
    for (const ir::FusedInstr& ins : p.code)
      if (ins.dtype != p.compute && ins.dtype != DType::Bool &&
          !(ins.dtype == DType::Float32 && p.compute == DType::Float64))
        return std::nullopt;
    return p;
  } catch (const Error&) {
    return std::nullopt;
  }
}

bool supports(const ir::Node& n, const ir::Graph& g, const DeviceInfo& d) {
  if (!storable(n.type.dtype, d) || !(is_floating(n.type.dtype) || n.type.dtype == DType::Bool))
    return false;
  std::vector<ir::TensorType> in = g.input_types(n);
  for (const auto& t : in)
    if (!storable(t.dtype, d)) return false;
  return program_of(n, in, d).has_value();
}

class ElementwiseKernel final : public OpenclKernel {
 public:
  ElementwiseKernel(OpenclDevice& dev, const ir::Node& n, std::vector<ir::TensorType> in,
                    ir::FusedProgram p)
      : OpenclKernel(dev, n, in,
                     str("opencl.", n.is("fused_elementwise") ? "fused_elementwise" : n.op->name,
                         ".", ir::fused_dtype_name(p.compute), "[", p.code.size(), " ops]")),
        prog_(std::move(p)) {}

 protected:
  Launch render(const std::vector<Strides>& strides) const override {
    const Shape& out = node_.type.shape;
    std::vector<cstyle::Operand> ops;
    for (size_t k = 0; k < in_.size(); ++k)
      ops.push_back({in_[k].dtype, broadcast_strides(in_[k].shape, strides[k], out)});
    Launch l;
    l.entry = "nef_elementwise";
    l.source =
        cstyle::render_elementwise(cstyle::kOpenCL, l.entry, prog_, node_.type.dtype, out, ops);
    l.global = size_t(numel(out));
    l.local = 256;
    return l;
  }

 private:
  ir::FusedProgram prog_;
};

std::shared_ptr<OpenclKernel> make(OpenclDevice& dev, const ir::Node& n, const ir::Graph& g) {
  std::vector<ir::TensorType> in = g.input_types(n);
  std::optional<ir::FusedProgram> p = program_of(n, in, dev.info());
  NEF_CHECK(p.has_value(), "[opencl] ", n.op->name, " is not supported");
  return std::make_shared<ElementwiseKernel>(dev, n, std::move(in), std::move(*p));
}

}  // namespace

const Family kElementwiseFamily = {supports, make};

}  // namespace nef::backend::opencl
