#include "backends/cstyle/render.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "nef/error.h"

namespace nef::backend::cstyle {

const Dialect kOpenCL = {
    "opencl",
    "__kernel void",
    "__global",
    "__local",
    "barrier(CLK_LOCAL_MEM_FENCE)",
    "((long)get_global_id(0))",
    "((int)get_local_id(0))",
    "((long)get_group_id(0))",
    "#ifdef cl_khr_fp64\n#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n#endif\n",
    "long",
    "uchar",
    "char",
    "inline",
};

const Dialect kCuda = {
    "cuda",
    "extern \"C\" __global__ void",
    "",
    "__shared__",
    "__syncthreads()",
    "((long long)blockIdx.x * blockDim.x + threadIdx.x)",
    "((int)threadIdx.x)",
    "((long long)blockIdx.x)",
    "#include <cuda_fp16.h>\n",
    "long long",
    "unsigned char",
    "signed char",
    "__device__ inline",
};

std::string storage_type(DType t, const Dialect& d) {
  switch (t) {
    case DType::Float32:
      return "float";
    case DType::Float64:
      return "double";
    case DType::Int32:
      return "int";
    case DType::Int64:
      return d.i64;
    case DType::Int8:
      return d.i8;
    case DType::UInt8:
    case DType::Bool:
      return d.u8;
    case DType::Float16:
    case DType::BFloat16:
    case DType::Int16:
    case DType::UInt16:
    case DType::UInt32:
    case DType::UInt64:
    case DType::Float8E4M3FN:
    case DType::Float8E4M3FNUZ:
    case DType::Float8E5M2:
    case DType::Float8E5M2FNUZ:
      break;
  }
  throw UnsupportedError(str("[", d.name, "] no C type for ", dtype_name(t), " in this dialect"));
}

const char* compute_type(DType compute) { return compute == DType::Float64 ? "double" : "float"; }

std::string literal(double v, DType compute) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  if (s == "inf") s = "INFINITY";
  if (s == "-inf") s = "(-INFINITY)";
  if (compute != DType::Float64 && s.find("INFINITY") == std::string::npos) s += "f";
  return s;
}

std::string load_as_compute(const std::string& expr, DType t, DType compute, const Dialect&) {
  if (t == compute) return expr;
  return str("((", compute_type(compute), ")(", expr, "))");
}

std::string store_from_compute(const std::string& expr, DType t, const Dialect& d) {
  if (t == DType::Bool) return str("((", d.u8, ")((", expr, ") != 0))");
  return str("((", storage_type(t, d), ")(", expr, "))");
}

std::string math_helpers(const Dialect& d, DType compute) {
  const char* T = compute_type(compute);
  const std::string f = d.inline_fn;
  std::ostringstream s;
  // numpy's mod: the result takes the divisor's sign; an exact zero is a zero of that sign.
  s << f << " " << T << " nef_mod(" << T << " a, " << T << " b) {\n"
    << "  " << T << " r = fmod(a, b);\n"
    << "  if (r != 0) { if ((r < 0) != (b < 0)) r += b; } else { r = copysign((" << T
    << ")0, b); }\n  return r;\n}\n";
  s << f << " " << T << " nef_clip(" << T << " x, " << T << " lo, " << T << " hi) {\n"
    << "  " << T << " m = (x > lo || x != x) ? x : lo;\n"
    << "  return (m < hi || m != m) ? m : hi;\n}\n";
  s << f << " " << T << " nef_gelu(" << T << " x) { return (" << T << ")0.5 * x * ((" << T
    << ")1 + erf(x * " << literal(0.70710678118654752440, compute) << ")); }\n";
  s << f << " " << T << " nef_gelu_tanh(" << T << " x) { return (" << T << ")0.5 * x * ((" << T
    << ")1 + tanh(" << literal(0.79788456080286535588, compute) << " * (x + "
    << literal(0.044715, compute) << " * x * x * x))); }\n";
  return s.str();
}

std::string math_helpers_overloaded(const Dialect& d, DType compute,
                                    const std::vector<int>& widths) {
  const char* S = compute_type(compute);
  std::ostringstream s;
  for (int w : widths) {
    const std::string T = w == 1 ? std::string(S) : str(S, w);
    const std::string f = str(d.inline_fn, " __attribute__((overloadable)) ", T);
    const std::string one = str("(", T, ")1");
    // numpy's mod without branches (lane-wise selects): see math_helpers.
    s << f << " nef_mod(" << T << " a, " << T << " b) {\n"
      << "  " << T << " r = fmod(a, b);\n"
      << "  r = (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;\n"
      << "  return r == 0 ? copysign((" << T << ")0, b) : r;\n}\n";
    s << f << " nef_clip(" << T << " x, " << T << " lo, " << T << " hi) {\n"
      << "  " << T << " m = (x > lo || x != x) ? x : lo;\n"
      << "  return (m < hi || m != m) ? m : hi;\n}\n";
    s << f << " nef_gelu(" << T << " x) { return (" << T << ")0.5 * x * (" << one << " + erf(x * ("
      << T << ")" << literal(0.70710678118654752440, compute) << ")); }\n";
    s << f << " nef_gelu_tanh(" << T << " x) { return (" << T << ")0.5 * x * (" << one
      << " + tanh((" << T << ")" << literal(0.79788456080286535588, compute) << " * (x + (" << T
      << ")" << literal(0.044715, compute) << " * x * x * x))); }\n";
  }
  return s.str();
}

namespace {

using ir::FusedOp;

// The C expression of one instruction over operands a, b, c (compute type T).
std::string op_expr(FusedOp op, const std::string& a, const std::string& b, const std::string& c,
                    const char* T) {
  std::string one = str("(", T, ")1"), zero = str("(", T, ")0");
  auto cond = [&](const std::string& e) { return str("((", e, ") ? ", one, " : ", zero, ")"); };
  switch (op) {
    case FusedOp::Neg:
      return str("(-", a, ")");
    case FusedOp::Abs:
      return str("fabs(", a, ")");
    case FusedOp::Sign:
      return str("(", a, " > 0 ? ", one, " : (", a, " < 0 ? -", one, " : ", a, "))");
    case FusedOp::Relu:
      return str("(", a, " < 0 ? ", zero, " : ", a, ")");
    case FusedOp::Floor:
      return str("floor(", a, ")");
    case FusedOp::Ceil:
      return str("ceil(", a, ")");
    case FusedOp::Round:
      return str("rint(", a, ")");  // half to even, like numpy
    case FusedOp::Exp:
      return str("exp(", a, ")");
    case FusedOp::Log:
      return str("log(", a, ")");
    case FusedOp::Sqrt:
      return str("sqrt(", a, ")");
    case FusedOp::Rsqrt:
      return str("(", one, " / sqrt(", a, "))");
    case FusedOp::Reciprocal:
      return str("(", one, " / ", a, ")");
    case FusedOp::Tanh:
      return str("tanh(", a, ")");
    case FusedOp::Sigmoid:
      return str("(", one, " / (", one, " + exp(-", a, ")))");
    case FusedOp::Silu:
      return str("(", a, " / (", one, " + exp(-", a, ")))");
    case FusedOp::Erf:
      return str("erf(", a, ")");
    case FusedOp::Sin:
      return str("sin(", a, ")");
    case FusedOp::Cos:
      return str("cos(", a, ")");
    case FusedOp::Tan:
      return str("tan(", a, ")");
    case FusedOp::Asin:
      return str("asin(", a, ")");
    case FusedOp::Acos:
      return str("acos(", a, ")");
    case FusedOp::Atan:
      return str("atan(", a, ")");
    case FusedOp::Sinh:
      return str("sinh(", a, ")");
    case FusedOp::Cosh:
      return str("cosh(", a, ")");
    case FusedOp::Asinh:
      return str("asinh(", a, ")");
    case FusedOp::Acosh:
      return str("acosh(", a, ")");
    case FusedOp::Atanh:
      return str("atanh(", a, ")");
    case FusedOp::Gelu:
      return str("nef_gelu(", a, ")");
    case FusedOp::GeluTanh:
      return str("nef_gelu_tanh(", a, ")");
    case FusedOp::Add:
      return str("(", a, " + ", b, ")");
    case FusedOp::Sub:
      return str("(", a, " - ", b, ")");
    case FusedOp::Mul:
      return str("(", a, " * ", b, ")");
    case FusedOp::Div:
      return str("(", a, " / ", b, ")");
    case FusedOp::Maximum:
      return str("((", a, " > ", b, " || ", a, " != ", a, ") ? ", a, " : ", b, ")");
    case FusedOp::Minimum:
      return str("((", a, " < ", b, " || ", a, " != ", a, ") ? ", a, " : ", b, ")");
    case FusedOp::Mod:
      return str("nef_mod(", a, ", ", b, ")");
    case FusedOp::Pow:
      return str("pow(", a, ", ", b, ")");
    case FusedOp::Equal:
      return cond(str(a, " == ", b));
    case FusedOp::NotEqual:
      return cond(str(a, " != ", b));
    case FusedOp::Less:
      return cond(str(a, " < ", b));
    case FusedOp::LessEqual:
      return cond(str(a, " <= ", b));
    case FusedOp::Greater:
      return cond(str(a, " > ", b));
    case FusedOp::GreaterEqual:
      return cond(str(a, " >= ", b));
    case FusedOp::LogicalAnd:
      return cond(str(a, " != 0 && ", b, " != 0"));
    case FusedOp::LogicalOr:
      return cond(str(a, " != 0 || ", b, " != 0"));
    case FusedOp::LogicalNot:
      return cond(str(a, " == 0"));
    case FusedOp::Where:
      return str("(", a, " != 0 ? ", b, " : ", c, ")");
    case FusedOp::Clip:
      return str("nef_clip(", a, ", ", b, ", ", c, ")");
    case FusedOp::Cast:
      return a;  // the instruction's rounding converts; bool handled below
    case FusedOp::kCount:
      break;
  }
  throw UnsupportedError("[render] unknown fused op");
}

}  // namespace

RenderedBody render_program(const Dialect&, const ir::FusedProgram& p,
                            const std::vector<std::string>& inputs, const std::string& name,
                            int width) {
  NEF_CHECK(int(inputs.size()) == p.num_inputs, "[render] program inputs");
  const std::string type =
      width == 1 ? std::string(compute_type(p.compute)) : str(compute_type(p.compute), width);
  const char* T = type.c_str();
  std::ostringstream code;
  std::string last;
  for (size_t k = 0; k < p.code.size(); ++k) {
    const ir::FusedInstr& ins = p.code[k];
    std::string args[3];
    for (int a = 0; a < ins.nargs; ++a) {
      int r = ins.args[a];
      args[a] = r >= 0 ? str(name, "_", r) : inputs[size_t(-1 - r)];
    }
    std::string e = op_expr(ins.op, args[0], args[1], args[2], T);
    if (ins.op == FusedOp::Cast && ins.dtype == DType::Bool)
      e = str("((", args[0], " != 0) ? (", T, ")1 : (", T, ")0)");
    // Round to the instruction's dtype, as the CPU interpreter does.
    if (ins.dtype == DType::Float32 && p.compute == DType::Float64)
      e = width == 1 ? str("((double)(float)(", e, "))")
                     : str("convert_double", width, "(convert_float", width, "(", e, "))");
    else if (ins.dtype != DType::Bool && ins.dtype != p.compute)
      throw UnsupportedError(str("[render] ", dtype_name(ins.dtype), " values in a ",
                                 dtype_name(p.compute), " program"));
    last = str(name, "_", k);
    code << "  const " << T << " " << last << " = " << e << ";\n";
  }
  return {code.str(), last};
}

std::string offset_expr(const Strides& strides, const Shape& shape, const std::string& index) {
  bool all_zero = true, contiguous = true;
  Strides want = contiguous_strides(shape);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    all_zero = all_zero && strides[d] == 0;
    contiguous = contiguous && strides[d] == want[d];
  }
  if (all_zero) return "0";
  if (contiguous) return index;
  std::string e;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1 || strides[d] == 0) continue;
    e += str(e.empty() ? "" : " + ", "c", d, " * ", strides[d], "L");
  }
  return "(" + e + ")";
}

std::string render_elementwise(const Dialect& d, const std::string& kernel_name,
                               const ir::FusedProgram& p, DType out_dtype, const Shape& out_shape,
                               const std::vector<Operand>& ins) {
  NEF_CHECK(int(ins.size()) == p.num_inputs, "[render] operands");
  const char* T = compute_type(p.compute);
  std::ostringstream s;
  s << d.preamble << math_helpers(d, p.compute);
  s << d.kernel << " " << kernel_name << "(" << d.global << " " << storage_type(out_dtype, d)
    << "* out, " << d.i64 << " out_off";
  for (size_t k = 0; k < ins.size(); ++k)
    s << ", " << d.global << " const " << storage_type(ins[k].dtype, d) << "* in" << k << ", "
      << d.i64 << " off" << k;
  s << ", " << d.i64 << " n) {\n";
  s << "  const " << d.i64 << " i = " << d.global_id << ";\n  if (i >= n) return;\n";
  // Coordinates only when some operand needs them.
  std::vector<std::string> offs;
  bool coords = false;
  for (const Operand& op : ins) {
    offs.push_back(offset_expr(op.strides, out_shape, "i"));
    coords = coords || offs.back().find('c') != std::string::npos;
  }
  if (coords) {
    s << "  " << d.i64 << " r_ = i;\n";
    for (size_t dd = out_shape.size(); dd-- > 0;) {
      if (dd == 0) {
        s << "  const " << d.i64 << " c0 = r_;\n";
      } else {
        s << "  const " << d.i64 << " c" << dd << " = r_ % " << out_shape[dd]
          << "L; r_ /= " << out_shape[dd] << "L;\n";
      }
    }
  }
  std::vector<std::string> vals;
  for (size_t k = 0; k < ins.size(); ++k) {
    std::string v = str("v", k);
    s << "  const " << T << " " << v << " = "
      << load_as_compute(str("in", k, "[off", k, " + ", offs[k], "]"), ins[k].dtype, p.compute, d)
      << ";\n";
    vals.push_back(v);
  }
  RenderedBody b = render_program(d, p, vals, "r");
  s << b.code;
  s << "  out[out_off + i] = " << store_from_compute(b.result, out_dtype, d) << ";\n}\n";
  return s.str();
}

}  // namespace nef::backend::cstyle
