// The C-style renderer: prints NEF's backend-neutral kernel descriptions as C source for device
// compilers (OpenCL C today, CUDA C next). What differs between the C dialects (qualifiers,
// thread indices, local memory, barriers, type names, the fp64 pragma) is one table row, so a new
// C-like backend adds a Dialect and reuses every renderer. The math of each fused op is written
// once here, with the CPU interpreter's semantics (NaN rules, numpy's mod, round half to even).
//
// Kernel source only ever comes from these renderers and the hand-written templates next to each
// backend: nothing outside NEF supplies code.
#pragma once

#include <string>
#include <vector>

#include "ir/ops/fused_program.h"
#include "nef/dtype.h"
#include "nef/shape.h"

namespace nef::backend::cstyle {

struct Dialect {
  const char* name;       // "opencl", "cuda"
  const char* kernel;     // what starts a kernel: "__kernel void"
  const char* global;     // address space of device buffers: "__global" (CUDA: "")
  const char* local;      // work-group shared memory: "__local" / "__shared__"
  const char* barrier;    // work-group barrier
  const char* global_id;  // flat index of this thread (dimension 0), as a long
  const char* local_id;   // index in the work group (dimension 0)
  const char* group_id;   // work-group index (dimension 0)
  const char* preamble;   // pragmas and includes every program starts with
  const char* i64;        // 64-bit signed integer type
  const char* u8;         // unsigned byte type (bool is stored as one)
  const char* i8;         // signed byte type
  const char* inline_fn;  // qualifier of helper functions: "inline" / "__device__ inline"
};

extern const Dialect kOpenCL;
extern const Dialect kCuda;

// The C type that stores `t` (bool as an unsigned byte). Throws UnsupportedError for types a C
// kernel cannot hold in this dialect (float16/bfloat16 on devices without them).
std::string storage_type(DType t, const Dialect& d);
// Helper functions fused code may call (nef_mod, nef_gelu, ...), for compute type f32 or f64.
std::string math_helpers(const Dialect& d, DType compute);
// The same helpers as overloads for each of `widths` (1 = scalar, else OpenCL vectors of that
// many lanes), for programs rendered at several widths in one source (OpenCL only: clang's
// overloadable attribute).
std::string math_helpers_overloaded(const Dialect& d, DType compute,
                                    const std::vector<int>& widths);

// Straight-line code computing a fused program's result from `inputs` (expressions already in
// the compute type, one per program input). Each instruction becomes a local `name_k`; the
// returned expression is the last one, in the compute type, rounded to the program's output
// dtype. Instruction results round to their own dtype, like the CPU interpreter.
struct RenderedBody {
  std::string code;
  std::string result;
};
// `width` > 1: every value is an OpenCL vector of that many lanes (inputs too), the math the
// same lane by lane (comparisons select per lane; OpenCL only).
RenderedBody render_program(const Dialect& d, const ir::FusedProgram& p,
                            const std::vector<std::string>& inputs, const std::string& name,
                            int width = 1);

// How an elementwise kernel reads one operand: its storage dtype and its strides in elements
// per output dimension (0 = broadcast).
struct Operand {
  DType dtype;
  Strides strides;
};

// An elementwise kernel over `out_shape` (contiguous output of `out_dtype`): one thread per
// output element, the program's inputs loaded from `ins` at their strides (baked in, so index
// math folds), offsets passed at launch. Signature:
//   kernel NAME(global OUT* out, long out_off, global const IN0* in0, long off0, ..., long n)
std::string render_elementwise(const Dialect& d, const std::string& kernel_name,
                               const ir::FusedProgram& p, DType out_dtype, const Shape& out_shape,
                               const std::vector<Operand>& ins);

// "x[i]" converted from storage type `t` to the compute type (float/double): bools and
// integers as numbers.
std::string load_as_compute(const std::string& expr, DType t, DType compute, const Dialect& d);
// A compute-type value converted for storing as `t` (bool: != 0).
std::string store_from_compute(const std::string& expr, DType t, const Dialect& d);
// The compute type's C name.
const char* compute_type(DType compute);
// C literal of a double in `compute` ("1.5f", "1.5").
std::string literal(double v, DType compute);
// Offset expression of a strided operand at flat output index `index` of `shape`, coordinates
// taken from the precomputed locals `c0..c{r-1}` when `strided`, else `index` itself.
std::string offset_expr(const Strides& strides, const Shape& shape, const std::string& index);

}  // namespace nef::backend::cstyle
