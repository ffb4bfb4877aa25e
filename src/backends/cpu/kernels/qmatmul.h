// Internal to the CPU backend: the block-quantized matrix products behind qmatmul, one
// implementation per instruction set (qmatmul_{avx512,avx2vnni,avx2,generic}.cpp share
// qmatmul-inl.h and differ only in the 32-element integer dot product), chosen at run time.
//
// Scheme (the one ggml-family engines use): activations are quantized per row to int8 chunks of
// 32 with a float scale (QChunk); every weight format is unpacked, one row at a time, to unsigned
// 8-bit codes with an affine map per 16 elements (value = a * code + b), so that
//   sum_j w_j x_j = sum_chunks dx * (a * sum_j code_j q_j + b * sum_j q_j)
// is an unsigned-by-signed byte dot product (VNNI vpdpbusd, or AVX2 madd) plus scalar terms.
// The weights are never dequantized to floats in memory.
#pragma once

#include <cstdint>

#include "common/quant.h"

namespace nef::backend::cpu {

// One activation chunk: 32 int8 values, x_j ~ d * q[j] (d a half-precision value); sl / sh =
// d * (sum of q[0..15] / q[16..31]) and s = d * (sum of all 32) for the affine terms.
struct alignas(16) QChunk {
  int8_t q[32];
  float d, sl, sh, s;
};
static_assert(sizeof(QChunk) == 48);

// A weight row unpacked: codes[K] and per 32-element chunk the scales a (lo/hi 16) and the
// offsets b (lo/hi 16). Scratch of unpacked_row_bytes(K) bytes.
int64_t unpacked_row_bytes(int64_t K);

struct QGemmArgs {
  quant::Format format;
  const uint8_t* w;  // N rows of row_bytes(format, K) bytes
  int64_t row_bytes = 0, K = 0;
  const QChunk* x;  // M rows of K / 32 chunks
  int64_t M = 0;
  float* out;  // out[m * ldo + n]
  int64_t ldo = 0;
};

// One activation row (decoding) against a 32-element format (Q4_0, Q4_1, Q8_0), x split into
// planes so that two consecutive blocks are one 64-byte load: q[K] int8 codes, and per block
// d[b] (its scale) and s[b] (d * sum of its codes), both padded with zeros to a multiple of 16
// blocks.
struct QGemvArgs {
  quant::Format format;
  const uint8_t* w;  // N rows of row_bytes bytes
  int64_t row_bytes = 0, K = 0;
  const int8_t* q;
  const float* d;
  const float* s;
  float* out;  // out[n]
};
// Blocks the padded d / s planes of QGemvArgs hold for K.
inline int64_t gemv_padded_blocks(int64_t K) { return (K / 32 + 15) / 16 * 16; }

// One instruction set's implementation.
struct QGemmIsa {
  const char* name;
  // Quantizes one row of K floats (K a multiple of 32) into K / 32 chunks.
  void (*quantize_row)(const float* x, int64_t K, QChunk* dst);
  // out[m, n] for every m and n in [n0, n1), with `scratch` of unpacked_row_bytes(K) bytes.
  void (*rows)(const QGemmArgs& a, int64_t n0, int64_t n1, uint8_t* scratch);
  // Dequantizes one row (any format) into K floats.
  void (*dequantize_row)(quant::Format f, const uint8_t* w, int64_t K, float* dst,
                         uint8_t* scratch);
  // out[n] for n in [n0, n1) with one activation row; nullptr where the set has no such path
  // (rows() serves M = 1 then).
  void (*gemv)(const QGemvArgs& a, int64_t n0, int64_t n1) = nullptr;
};

const QGemmIsa& qgemm_generic();
const QGemmIsa* qgemm_avx2();      // nullptr when not compiled in
const QGemmIsa* qgemm_avx2vnni();  // AVX2 + AVX-VNNI; nullptr when not compiled in
const QGemmIsa* qgemm_avx512();    // AVX-512 VNNI; nullptr when not compiled in
// The variant of int8_cpu_target() (cpu_target.h), chosen once.
const QGemmIsa& qgemm_best();

}  // namespace nef::backend::cpu
