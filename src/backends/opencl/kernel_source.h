// Pieces the hand-written OpenCL kernel templates (kernels_matmul.cpp, kernels_rows.cpp,
// kernels_reduction.cpp, kernels_attention.cpp) share: exact literals, the fixed parameter list of
// kernels.h, and index math with shapes and strides baked in, so that the OpenCL compiler folds
// divisions by constants and drops broadcast dims.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "backends/backend.h"
#include "nef/dtype.h"
#include "nef/shape.h"

namespace nef::backend::opencl::source {

// The C type that stores `t` on the device ("float", "double", "uchar" for bool, ...).
std::string ctype(DType t);
// A literal of `v` in the compute type, rounded first to float for float32, so that the kernel
// sees exactly the value the CPU kernel computes with (C(v)).
std::string lit(double v, DType compute);
// The fixed leading parameters: "__global OUT* out, long out_off, __global const IN0* in0, long
// off0, ...", then "long n".
std::string params(DType out, const std::vector<DType>& ins);

// One operand of an index computation: the name of the offset variable to declare and its
// strides (elements) over the iterated dims (0 = broadcast).
struct Offset {
  std::string name;
  Strides strides;
};
// Dims with size-1 dims dropped and neighbours merged where every operand is contiguous across
// them (row-major order, and so flat positions, unchanged); strides per operand.
struct Merged {
  Shape shape;
  std::vector<Strides> strides;
};
Merged merge_dims(const Shape& dims, const std::vector<Strides>& strides);

// Code declaring `long name = ...` for every operand: its offset at flat row-major position
// `index` (an expression) of `dims`. Size-1 dims are dropped and dims that are contiguous for
// every operand merged, so a dense layout costs no division at all.
std::string offsets(const std::string& index, const Shape& dims, const std::vector<Offset>& ops,
                    const std::string& indent = "  ");

// A work-group size for `items` independent work items on `d`: groups small enough that every
// compute unit gets several (a device runs a group on one unit), at most 16.
size_t local_size(int64_t items, const DeviceInfo& d);

// The largest power of two <= min(n, cap) (at least 1).
int64_t pow2_at_most(int64_t n, int64_t cap);

// OpenCL vector types, for kernels that do their own SIMD (on CPU devices such as PoCL the
// compiler vectorizes an item's explicit vectors, rarely a loop over items). Width 1 is the
// scalar type itself, so one template covers every width.
// The widest vector of `t` worth using: 512 bits (16 floats, 8 doubles).
int max_width(DType t);
// "float16", "double8", "float" (w = 1).
std::string vtype(DType t, int w);
// A vector of p[0], p[s], ..., p[(w-1)*s] (vloadN when s == 1, element by element otherwise).
std::string vload(const std::string& p, int64_t s, int w, DType t);
// Stores vector `v` at p[0..w) (contiguous).
std::string vstore(const std::string& v, const std::string& p, int w);
// Helper functions "T nef_hsum<w>(TYPEw v)" (sum of the lanes, pairwise) for w = 2, 4, ... up to
// `w`, and nef_hsum1 (identity).
std::string hsum_helpers(DType t, int w);

}  // namespace nef::backend::opencl::source
