// The body of a `fused_elementwise` node: a straight-line program over registers, stored as the
// node's `program` attribute in a small canonical text form, e.g.
//   "r0=mul(i0,i1);r1=add(r0,i2);r2=tanh(r1);r3=mul(r2,i3);r4=neg(i0);r5=exp(r4);r6=sub(r3,r5)"
// iK is the node's K-th input (broadcast to the output shape), rK the K-th instruction's result;
// the last register is the output. An instruction's dtype is the node's `dtype` attribute unless
// annotated ("r3:f16=cast(r2)"): annotations are f16, bf16, f32, f64, bool. Ops are registry op
// names with the same semantics (gelu with approximate="tanh" is spelled gelu_tanh; cast's target
// is the instruction's dtype). Registers only refer to earlier ones, so a program has no cycles.
// The text is user data when it comes from a .nef file: the parser is bounded and strict.
// Backend-neutral: a CPU interpreter runs it; a C renderer can print it for OpenCL/CUDA.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/op_registry.h"

namespace nef::ir {

enum class FusedOp : uint8_t {
  // unary, dtype kept
  Neg,
  Abs,
  Sign,
  Relu,
  Floor,
  Ceil,
  Round,
  // unary float math
  Exp,
  Log,
  Sqrt,
  Rsqrt,
  Reciprocal,
  Tanh,
  Sigmoid,
  Silu,
  Erf,
  Sin,
  Cos,
  Gelu,
  GeluTanh,
  Tan,
  Asin,
  Acos,
  Atan,
  Sinh,
  Cosh,
  Asinh,
  Acosh,
  Atanh,
  // binary arithmetic
  Add,
  Sub,
  Mul,
  Div,
  Maximum,
  Minimum,
  Mod,
  Pow,
  // comparisons and logic (bool results)
  Equal,
  NotEqual,
  Less,
  LessEqual,
  Greater,
  GreaterEqual,
  LogicalAnd,
  LogicalOr,
  LogicalNot,
  // selection and conversion
  Where,
  Clip,
  Cast,
  kCount
};

const char* fused_op_name(FusedOp op);
std::optional<FusedOp> fused_op_from_name(std::string_view name);
// The fused instruction a graph node becomes (gelu picks its variant from `approximate`).
struct Node;
std::optional<FusedOp> fused_op_of(const Node& n);
int fused_op_arity(FusedOp op);
bool fused_op_is_bool(FusedOp op);  // comparisons and logic: the result is bool
bool fused_op_is_compare(FusedOp op);

// Operand: a register (>= 0) or an input (-1 - k for input k).
struct FusedInstr {
  FusedOp op = FusedOp::Add;
  DType dtype = DType::Float32;
  int nargs = 0;
  int args[3] = {0, 0, 0};
};

struct FusedProgram {
  std::vector<FusedInstr> code;
  int num_inputs = 0;
  // Registers are computed in float32 (for f16/bf16/f32 values) or float64; each instruction's
  // result is rounded to its own dtype, so the program rounds like the unfused ops.
  DType compute = DType::Float32;
};

// Bounds of what a program may describe (the pass fuses far less than this).
inline constexpr size_t kFusedMaxProgramChars = 1 << 16;
inline constexpr int kFusedMaxInstrs = 1024;
inline constexpr int kFusedMaxInputs = 64;

// Parses and checks `text` against the node's input types and output dtype: grammar, op names,
// arity, register/input references, per-op dtypes, every input used, last dtype == out_dtype.
// Throws ValidationError starting with "[fused_elementwise]".
FusedProgram parse_fused_program(std::string_view text, const std::vector<TensorType>& inputs,
                                 DType out_dtype);

// Canonical text of `p` (annotations only where an instruction's dtype differs from out_dtype).
std::string print_fused_program(const FusedProgram& p, DType out_dtype);

// Short dtype names used in annotations ("f32"); nullopt for dtypes a program cannot hold.
const char* fused_dtype_name(DType t);

// The ops one node computes, in order: the instructions of a fused_elementwise program, "matmul"
// then the epilogue program's for matmul_epilogue, else the node's own op (plans and profiles).
struct Graph;
std::vector<std::string> covered_ops(const Graph& g, const Node& n);

}  // namespace nef::ir
