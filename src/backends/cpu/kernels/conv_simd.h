// Internal to the CPU backend: the vector loops of conv_implicit.cpp, compiled once per
// instruction set (conv_simd_avx512.cpp, conv_simd_avx2.cpp, conv_simd_generic.cpp, each built
// with its own target flags from conv_simd-inl.h) and chosen once at run time.
#pragma once

#include <cstdint>
#include <utility>

namespace nef::backend::cpu {

struct ConvSimdIsa {
  const char* name;
  int mr, nr;  // the register tile of `tile`: mr output channels x nr positions
  int vl;      // floats per vector
  // c[i * nr + j] += sum_{k < kc} a(i, k) * b[offs[k] + j] for i < mr, j < nr: one register
  // tile of the implicit GEMM (b: the input read at per-k offsets). a(i, k) = a[k * mr + i]
  // (packed weights) when lda is 0, else a[i * lda + k] (weight rows as they lie). `prefetch`:
  // also fetch b's next nr columns (the next tile's) into cache.
  void (*tile)(int64_t kc, const float* a, int64_t lda, const float* b, const int64_t* offs,
               float* c, bool prefetch);
  // c[i * ldc + j] = (bias ? bias[i] : c[i * ldc + j]) + sum_{k < kc} a[k * mr + i] * b[k * ldb +
  // j] for i < mr, j < nv * vl (nv in [1, nr / vl]): a 1x1 conv's register tile, b the input
  // channels as they lie, c the output rows (or a scratch tile); a packed as for `tile`.
  // `prefetch`: also fetch b's next nr columns of each row.
  void (*tile_rows)(int64_t kc, const float* a, const float* b, int64_t ldb, const float* bias,
                    float* c, int64_t ldc, int nv, bool prefetch);
  // dst[r * ldd + j] = bias + sum_{t < ntaps} w[t] * src[r * lds + offs[t] + j] for r < rows,
  // j < n: one depthwise channel's output rows (src is read up to a vector past n).
  void (*dw)(const float* src, int64_t lds, const int64_t* offs, const float* w, int64_t ntaps,
             float bias, float* dst, int64_t ldd, int64_t rows, int64_t n);
  // dst[r * ldd + j] = src[r * lds + j] for r < rows, j < n: tile rows into the output (short
  // runs, where a memcpy call per row would cost as much as the copy).
  void (*copy_rows)(const float* src, int64_t lds, int64_t rows, int64_t n, float* dst,
                    int64_t ldd);
  // even[j] = src[2 * j], odd[j] = src[2 * j + 1] for j < n: a stride-2 conv's phase rows.
  void (*split_pairs)(const float* src, int64_t n, float* even, float* odd);
  // dst[j] = bias + sum_{r < nrows, kx < 3} w[r * 3 + kx] * rows[r][2j - 1 + kx] for j < n
  // (columns outside [0, W) are zeros; rows[r] null: a zero row; nrows <= 8): one output row of
  // a depthwise conv, 3 wide, width stride 2, left pad 1, read straight from the input rows.
  void (*dw_s2k3)(const float* const* rows, int64_t nrows, const float* w, int64_t W, float bias,
                  float* dst, int64_t n);
  // dst[j] = bias + sum_{r < nrows, kx < 3} w[r * 3 + kx] * rows[r][j - 1 + kx] for j < W
  // (columns -1 and W are zeros; rows[r] null: a zero row; nrows <= 8): one output row of a
  // depthwise conv, 3 wide, width stride 1, pads 1 and 1, read straight from the input rows.
  void (*dw_s1k3)(const float* const* rows, int64_t nrows, const float* w, int64_t W, float bias,
                  float* dst);
};

const ConvSimdIsa& conv_simd_generic();
const ConvSimdIsa* conv_simd_avx2();    // nullptr when not compiled in
const ConvSimdIsa* conv_simd_avx512();  // nullptr when not compiled in
// The best the CPU runs; NEF_CPU_TARGET=avx2 or generic forces a lower one (as for qmatmul).
const ConvSimdIsa& conv_simd_best();

}  // namespace nef::backend::cpu
