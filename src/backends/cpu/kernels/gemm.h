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
// semantics; a and b have out's dtype and any strides. Calls `hook` on every finished tile.
void matmul_float_with_hook(const Array& a, const Array& b, Array& out, const GemmTileHook& hook);

}  // namespace nef::backend::cpu
