// Internal to the CPU backend: the float GEMM of matmul.cpp with a hook on finished output tiles,
// so fused kernels (matmul_epilogue) can post-process each tile while it is still in cache.
#pragma once

#include <cstdint>
#include <functional>

#include "nef/array.h"

namespace nef::backend::cpu {

// Called once per finished output tile, from the thread that computed it, right after its last
// K block: `rows` rows of `cols` elements starting at flat element `offset` of `out`, rows `ld`
// elements apart. Tiles never overlap and together cover `out` exactly once. Must be safe to call
// concurrently for different tiles.
using GemmTileHook = std::function<void(int64_t offset, int64_t rows, int64_t cols, int64_t ld)>;

// out (contiguous, the matmul output shape, dtype float32 or float64) = a @ b with numpy matmul
// semantics; a and b have out's dtype and any strides. Calls `hook` on every finished tile. Its
// packing panels come from `scratch` (bytes, at least matmul_scratch_bytes for these shapes and
// `parallel`); `parallel` false keeps it on the calling thread (callers already in a parallel
// chunk).
void matmul_float_with_hook(const Array& a, const Array& b, Array& out, const GemmTileHook& hook,
                            const Array& scratch, bool parallel = true);
// The scratch bytes matmul_float_with_hook needs for a @ b in float32/float64 `t` (0 for other
// dtypes or empty products). Depends on the thread count when `parallel`.
int64_t matmul_scratch_bytes(const Shape& a, const Shape& b, DType t, bool parallel = true);

}  // namespace nef::backend::cpu
