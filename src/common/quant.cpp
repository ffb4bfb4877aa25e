// Scalar reference (de)quantizers for the block formats of quant.h.
// Every result must equal the gguf package's numpy code bit for bit, so each expression rounds
// to float32 step by step as numpy does: this file is compiled with -ffp-contract=off (no fused
// multiply-add), and the order of the operations below is part of the contract.
#include "common/quant.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "nef/error.h"

namespace nef::quant {
namespace {

constexpr FormatInfo kInfo[kNumFormats] = {
    {"q4_0", kQK, sizeof(block_q4_0), 2},    {"q4_1", kQK, sizeof(block_q4_1), 3},
    {"q8_0", kQK, sizeof(block_q8_0), 8},    {"q4_k", kQK_K, sizeof(block_q4_K), 12},
    {"q5_k", kQK_K, sizeof(block_q5_K), 13}, {"q6_k", kQK_K, sizeof(block_q6_K), 14},
};

float half(float16_t h) { return to_float(h); }

// Blocks are copied out of the row (memcpy) so rows at any alignment are read without UB.
template <typename Block>
Block load_block(const uint8_t* p) {
  Block b;
  std::memcpy(&b, p, sizeof b);
  return b;
}

void dequant_q4_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, src += sizeof(block_q4_0), y += kQK) {
    auto b = load_block<block_q4_0>(src);
    float d = half(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * float((b.qs[j] & 0x0f) - 8);
      y[j + kQK / 2] = d * float((b.qs[j] >> 4) - 8);
    }
  }
}

void dequant_q4_1(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, src += sizeof(block_q4_1), y += kQK) {
    auto b = load_block<block_q4_1>(src);
    float d = half(b.d), m = half(b.m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = d * float(b.qs[j] & 0x0f) + m;
      y[j + kQK / 2] = d * float(b.qs[j] >> 4) + m;
    }
  }
}

void dequant_q8_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, src += sizeof(block_q8_0), y += kQK) {
    auto b = load_block<block_q8_0>(src);
    float d = half(b.d);
    for (int j = 0; j < kQK; ++j) y[j] = float(b.qs[j]) * d;
  }
}

// q4_K and q5_K share the scale layout; `high` adds q5_K's fifth bit (nullptr for q4_K).
void dequant_k4(const float16_t d16, const float16_t dmin16, const uint8_t* scales,
                const uint8_t* qs, const uint8_t* qh, float* y) {
  float d = half(d16), dmin = half(dmin16);
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    scale_min_k4(s, scales, &sc, &m);
    float ds = d * float(sc), dm = dmin * float(m);
    const uint8_t* q = qs + 32 * (s / 2);
    int shift = 4 * (s % 2);
    for (int l = 0; l < 32; ++l) {
      int v = (q[l] >> shift) & 0x0f;
      if (qh) v |= ((qh[l] >> s) & 1) << 4;
      y[32 * s + l] = ds * float(v) - dm;
    }
  }
}

void dequant_q4_K(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, src += sizeof(block_q4_K), y += kQK_K) {
    auto b = load_block<block_q4_K>(src);
    dequant_k4(b.d, b.dmin, b.scales, b.qs, nullptr, y);
  }
}

void dequant_q5_K(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, src += sizeof(block_q5_K), y += kQK_K) {
    auto b = load_block<block_q5_K>(src);
    dequant_k4(b.d, b.dmin, b.scales, b.qs, b.qh, y);
  }
}

void dequant_q6_K(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, src += sizeof(block_q6_K), y += kQK_K) {
    auto b = load_block<block_q6_K>(src);
    float d = half(b.d);
    for (int e = 0; e < kQK_K; ++e) {
      int h = e / 128, r = e % 128;
      int lo = (b.ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0f;
      int hi = (b.qh[32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
      float ds = d * float(b.scales[e / 16]);
      y[e] = ds * float((lo | (hi << 4)) - 32);
    }
  }
}

// Packs 32 4-bit codes: byte j = code j | code j + 16 << 4.
void pack_nibbles(const uint8_t* codes, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = uint8_t(codes[j] | (codes[j + kQK / 2] << 4));
}

// float -> 4-bit code as ggml's reference does: truncate toward zero (the +0.5 / +8.5 bias
// before it makes that a rounding), then cap at 15.
// NaN (0 * inf when a scale under/overflows) gives 0 rather than an undefined conversion.
uint8_t nibble_code(float v) {
  if (!(v >= 0.0f)) return 0;
  return v >= 15.0f ? 15 : uint8_t(std::trunc(v));
}

void quant_q4_0(const float* x, uint8_t* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK, dst += sizeof(block_q4_0)) {
    // The value of largest magnitude (the first one on ties) maps to -8.
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    float d = max / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t codes[kQK];
    for (int j = 0; j < kQK; ++j) codes[j] = nibble_code(x[j] * id + 8.5f);
    block_q4_0 b;
    b.d = to_float16(d);
    pack_nibbles(codes, b.qs);
    std::memcpy(dst, &b, sizeof b);
  }
}

void quant_q4_1(const float* x, uint8_t* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK, dst += sizeof(block_q4_1)) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < kQK; ++j) {
      lo = std::min(lo, x[j]);
      hi = std::max(hi, x[j]);
    }
    float d = (hi - lo) / 15.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t codes[kQK];
    for (int j = 0; j < kQK; ++j) codes[j] = nibble_code((x[j] - lo) * id + 0.5f);
    block_q4_1 b;
    b.d = to_float16(d);
    b.m = to_float16(lo);
    pack_nibbles(codes, b.qs);
    std::memcpy(dst, &b, sizeof b);
  }
}

void quant_q8_0(const float* x, uint8_t* dst, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK, dst += sizeof(block_q8_0)) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    block_q8_0 b;
    b.d = to_float16(d);
    // std::round: halves away from zero, as ggml's roundf.
    for (int j = 0; j < kQK; ++j) {
      float v = std::round(x[j] * id);
      b.qs[j] = v == v ? int8_t(std::clamp(v, -127.0f, 127.0f)) : 0;  // NaN: see nibble_code
    }
    std::memcpy(dst, &b, sizeof b);
  }
}

}  // namespace

const FormatInfo& info(Format f) {
  auto i = static_cast<size_t>(f);
  if (i >= size_t(kNumFormats)) throw ValidationError(str("[quant] invalid format id ", i));
  return kInfo[i];
}

std::optional<Format> format_from_name(std::string_view name) {
  for (int i = 0; i < kNumFormats; ++i) {
    std::string_view n = kInfo[i].name;
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return a == std::tolower(static_cast<unsigned char>(b));
        }))
      return Format(i);
  }
  return std::nullopt;
}

std::optional<Format> format_from_ggml(uint32_t ggml_type) {
  for (int i = 0; i < kNumFormats; ++i)
    if (kInfo[i].ggml_type == ggml_type) return Format(i);
  return std::nullopt;
}

int64_t row_bytes(Format f, int64_t k) {
  const FormatInfo& fi = info(f);
  if (k < 0 || k % fi.block_elems != 0)
    throw ShapeError(str("[", fi.name, "] row length ", k, " is not a multiple of the block size ",
                         fi.block_elems));
  return k / fi.block_elems * fi.block_bytes;
}

void dequantize_row(Format f, const uint8_t* src, float* dst, int64_t k) {
  int64_t nb = row_bytes(f, k) / info(f).block_bytes;
  switch (f) {
    case Format::Q4_0:
      return dequant_q4_0(src, dst, nb);
    case Format::Q4_1:
      return dequant_q4_1(src, dst, nb);
    case Format::Q8_0:
      return dequant_q8_0(src, dst, nb);
    case Format::Q4_K:
      return dequant_q4_K(src, dst, nb);
    case Format::Q5_K:
      return dequant_q5_K(src, dst, nb);
    case Format::Q6_K:
      return dequant_q6_K(src, dst, nb);
  }
}

void quantize_row(Format f, const float* src, uint8_t* dst, int64_t k) {
  if (f != Format::Q4_0 && f != Format::Q4_1 && f != Format::Q8_0)
    throw UnsupportedError(str("[quantize] no quantizer for ", info(f).name,
                               " (only q4_0, q4_1 and q8_0 can be written)"));
  int64_t nb = row_bytes(f, k) / info(f).block_bytes;
  for (int64_t j = 0; j < k; ++j)
    if (!std::isfinite(src[j]))
      throw ValidationError(str("[quantize] ", info(f).name, ": element ", j, " of the row is ",
                                src[j], " (only finite values can be quantized)"));
  switch (f) {
    case Format::Q4_0:
      return quant_q4_0(src, dst, nb);
    case Format::Q4_1:
      return quant_q4_1(src, dst, nb);
    case Format::Q8_0:
      return quant_q8_0(src, dst, nb);
    default:
      NEF_CHECK(false, "quantizer checked above");
  }
}

}  // namespace nef::quant
