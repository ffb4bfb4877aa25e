// Internal to the CPU elementwise kernels: the per-file registration hooks that
// register_elementwise_kernels (elementwise_kernels.cpp) calls, and the shared dtype conversion.
#pragma once

#include "backends/cpu/kernel_table.h"
#include "nef/array.h"

namespace nef::backend::cpu {

void register_unary_kernels(KernelTable& t);
void register_binary_kernels(KernelTable& t);
void register_select_kernels(KernelTable& t);  // where, clip
void register_cast_kernels(KernelTable& t);

// `x` itself when it already has dtype `t`, else `x` converted to `t` with cast's semantics (same
// shape, contiguous) in `holder`, which is returned. Used to bring mixed-dtype operands to the
// compute dtype; the operands that need it are usually small (weak scalars), so a copy is cheaper
// than per-pair kernels. No copy of x's Array in the common case (a tiny op's run is its copies).
const Array& cast_array(const Array& x, DType t, Array& holder);

// Writes cast(src) into dst (same shape; dst may have any strides). saturate: how values out of
// a float8 target's range convert (ONNX Cast's attribute; no effect on other targets).
void cast_into(const Array& src, const Array& dst, bool saturate = true);

}  // namespace nef::backend::cpu
