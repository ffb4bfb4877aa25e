// Block-quantized weight formats (the ggml/GGUF families NEF reads): their block layouts, a
// scalar reference dequantizer and round-to-nearest quantizers.
//
// Convention used everywhere in NEF: a quantized [N, K] weight is a uint8 array of shape
// [N, row_bytes(fmt, K)]; each row is K / block_elems consecutive blocks, each block holding
// block_elems consecutive elements of the row. This is GGUF's layout for a tensor with
// ne[0] = K, ne[1] = N, so GGUF tensor data is used as it lies in the file.
//
// The block layouts below are written from the GGUF format description: every scale `d`/`dmin`
// is an IEEE half; the reference dequantizer computes in float32 exactly as the format defines
// (and bit-for-bit as the `gguf` Python package's numpy dequantizer does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/float16.h"

namespace nef::quant {

enum class Format : uint8_t { Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K };
inline constexpr int kNumFormats = 6;

struct FormatInfo {
  const char* name;     // "q4_0", "q4_1", "q8_0", "q4_k", "q5_k", "q6_k"
  int64_t block_elems;  // elements per block: 32, or 256 for the K-quants
  int64_t block_bytes;  // bytes per block
  uint32_t ggml_type;   // the GGML type id GGUF files store (Q4_0 = 2, ..., Q6_K = 14)
};

const FormatInfo& info(Format f);
// Case-insensitive ("q4_K" and "Q4_K" both name Format::Q4_K); nullopt for anything else.
std::optional<Format> format_from_name(std::string_view name);
std::optional<Format> format_from_ggml(uint32_t ggml_type);

// Bytes of one row of k elements. Throws ShapeError naming the format if k is negative or not
// a multiple of block_elems.
int64_t row_bytes(Format f, int64_t k);

inline constexpr int kQK = 32;     // elements per block of the 32-element formats
inline constexpr int kQK_K = 256;  // elements per K-quant super-block
inline constexpr int kKScaleBytes = 12;

// value = d * (q - 8), q = 4-bit; byte j holds element j (low nibble) and element j + 16 (high).
struct block_q4_0 {
  float16_t d;
  uint8_t qs[kQK / 2];
};
// value = d * q + m, q = 4-bit, nibbles as q4_0.
struct block_q4_1 {
  float16_t d;
  float16_t m;
  uint8_t qs[kQK / 2];
};
// value = d * q, q = int8.
struct block_q8_0 {
  float16_t d;
  int8_t qs[kQK];
};
// Eight sub-blocks of 32: value = d * sc[s] * q - dmin * m[s], q = 4-bit, sc/m 6-bit (packed in
// `scales`, see scale_min_k4). Byte i of qs[32 * p .. 32 * p + 31] holds element i of sub-block
// 2p (low nibble) and of sub-block 2p + 1 (high nibble).
struct block_q4_K {
  float16_t d;
  float16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
// As q4_K with a fifth bit: bit s of qh[i] is bit 4 of element i of sub-block s.
struct block_q5_K {
  float16_t d;
  float16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
// Sixteen sub-blocks of 16: value = d * scales[e / 16] * (q - 32), q = 6-bit. For element
// e = 128 h + r (h = 0, 1): low 4 bits are nibble r / 64 of ql[64 h + r % 64], high 2 bits are
// bits 2 (r / 32) .. 2 (r / 32) + 1 of qh[32 h + r % 32].
struct block_q6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  float16_t d;
};

static_assert(sizeof(block_q4_0) == 18);
static_assert(sizeof(block_q4_1) == 20);
static_assert(sizeof(block_q8_0) == 34);
static_assert(sizeof(block_q4_K) == 144);
static_assert(sizeof(block_q5_K) == 176);
static_assert(sizeof(block_q6_K) == 210);
static_assert(offsetof(block_q6_K, d) == 208);

// Scale and min (6 bits each) of sub-block j (0..7) of a q4_K/q5_K block. Bytes 0-3 hold the
// scales of sub-blocks 0-3 in their low 6 bits, bytes 4-7 the mins; sub-blocks 4-7 keep their
// low 4 bits in bytes 8-11 (scale low nibble, min high nibble) and their top 2 bits in the top
// bits of bytes 0-3 (scales) and 4-7 (mins).
inline void scale_min_k4(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = uint8_t((scales[j + 4] & 0x0f) | ((scales[j - 4] >> 6) << 4));
    *m = uint8_t((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

// Scalar reference: k elements (a multiple of the block size; throws ShapeError otherwise) from
// row_bytes(f, k) bytes at src (any alignment) into dst.
void dequantize_row(Format f, const uint8_t* src, float* dst, int64_t k);

// Round-to-nearest quantization of k floats into row_bytes(f, k) bytes, bit-for-bit as ggml's
// reference quantizers (and the gguf package) do for Q4_0, Q4_1 and Q8_0. The K-quants have no
// quantizer here (they need ggml's search for scales): UnsupportedError naming the format.
// Non-finite inputs are a ValidationError (their codes would be meaningless).
void quantize_row(Format f, const float* src, uint8_t* dst, int64_t k);

}  // namespace nef::quant
