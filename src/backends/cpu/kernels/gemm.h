// Internal to the CPU backend: the float GEMM of matmul.cpp with a hook on finished output tiles,
// so fused kernels (matmul_epilogue) can post-process each tile while it is still in cache.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "backends/backend.h"
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
// chunk). `packed` (may be null): what prepack_matmul_b returned for this very b; it is read
// instead of packing B when it was packed from b's data, shape and strides for the tiles this
// call runs (NEF_CPU_TARGET is read per call), else B is packed per call as without it.
void matmul_float_with_hook(const Array& a, const Array& b, Array& out, const GemmTileHook& hook,
                            const Array& scratch, bool parallel = true,
                            const Prepared* packed = nullptr);

// Products with more rows than this (per matrix) keep packing B per call: there the packing is
// a small part of the product and a packed copy would only add memory.
inline constexpr int64_t kPrepackMaxRows = 1024;
// A constant 2-D B (any strides, float32/float64 of dtype `t`, on the host) packed once into the
// GEMM's panel layout for the tiles chosen now, for products with `rows` rows of A per matrix;
// null when it does not apply or would not pay (rows > kPrepackMaxRows). For Kernel::prepare:
// the plan keeps it and b alive, and b must not change.
std::shared_ptr<const Prepared> prepack_matmul_b(const Array& b, DType t, int64_t rows);
// The scratch bytes matmul_float_with_hook needs for a @ b in float32/float64 `t` (0 for other
// dtypes or empty products). Depends on the thread count when `parallel`.
int64_t matmul_scratch_bytes(const Shape& a, const Shape& b, DType t, bool parallel = true);

}  // namespace nef::backend::cpu
