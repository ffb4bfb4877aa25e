// common/quant: the format table, row sizes, and the reference (de)quantizers on blocks packed
// here from chosen codes and scales (exact in float32, so the expected values are exact). The
// bit-for-bit comparison with the gguf package is in tests/python/test_gguf.py.
#include "common/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "common/float16.h"
#include "nef/error.h"

namespace nef {
namespace {

using quant::Format;

TEST(Quant, FormatTable) {
  struct Row {
    Format f;
    const char* name;
    int64_t elems, bytes;
    uint32_t ggml;
  };
  const Row rows[] = {{Format::Q4_0, "q4_0", 32, 18, 2},    {Format::Q4_1, "q4_1", 32, 20, 3},
                      {Format::Q8_0, "q8_0", 32, 34, 8},    {Format::Q4_K, "q4_k", 256, 144, 12},
                      {Format::Q5_K, "q5_k", 256, 176, 13}, {Format::Q6_K, "q6_k", 256, 210, 14}};
  for (const Row& r : rows) {
    const quant::FormatInfo& fi = quant::info(r.f);
    EXPECT_STREQ(fi.name, r.name);
    EXPECT_EQ(fi.block_elems, r.elems);
    EXPECT_EQ(fi.block_bytes, r.bytes);
    EXPECT_EQ(fi.ggml_type, r.ggml);
    EXPECT_EQ(quant::format_from_name(r.name), r.f);
    std::string upper = r.name;
    for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(quant::format_from_name(upper), r.f);
    EXPECT_EQ(quant::format_from_ggml(r.ggml), r.f);
    EXPECT_EQ(quant::row_bytes(r.f, 3 * r.elems), 3 * r.bytes);
    EXPECT_EQ(quant::row_bytes(r.f, 0), 0);
  }
  EXPECT_FALSE(quant::format_from_name("q5_0"));
  EXPECT_FALSE(quant::format_from_name("q4_0 "));
  EXPECT_FALSE(quant::format_from_ggml(0));
  EXPECT_FALSE(quant::format_from_ggml(6));
}

TEST(Quant, RowBytesRejectsPartialBlocks) {
  try {
    quant::row_bytes(Format::Q4_K, 300);
    ADD_FAILURE() << "no error";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("q4_k"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("300"), std::string::npos) << e.what();
  }
  EXPECT_THROW(quant::row_bytes(Format::Q8_0, -32), ShapeError);
  std::vector<float> y(40);
  std::vector<uint8_t> b(100);
  EXPECT_THROW(quant::dequantize_row(Format::Q8_0, b.data(), y.data(), 40), ShapeError);
  EXPECT_THROW(quant::quantize_row(Format::Q4_0, y.data(), b.data(), 40), ShapeError);
}

template <typename T>
void store(std::vector<uint8_t>& out, const T& block) {
  const auto* p = reinterpret_cast<const uint8_t*>(&block);
  out.insert(out.end(), p, p + sizeof(T));
}

// Powers of two as fp16 scales keep every product exact in float32.
float16_t pow2_half(std::mt19937& rng, int lo, int hi) {
  int e = std::uniform_int_distribution<int>(lo, hi)(rng);
  float v = std::ldexp(1.0f, e) * (rng() % 2 ? -1.0f : 1.0f);
  return to_float16(v);
}

TEST(Quant, DequantizeQ4_0Q4_1Q8_0FromChosenCodes) {
  std::mt19937 rng(7);
  std::printf("seed 7\n");
  for (int nb : {1, 3}) {
    std::vector<uint8_t> b40, b41, b80;
    std::vector<float> e40, e41, e80;
    for (int i = 0; i < nb; ++i) {
      quant::block_q4_0 a;
      quant::block_q4_1 c;
      quant::block_q8_0 q;
      a.d = c.d = q.d = pow2_half(rng, -6, 2);
      c.m = pow2_half(rng, -6, 2);
      int codes[32];
      for (int& x : codes) x = int(rng() % 16);
      for (int j = 0; j < 16; ++j) a.qs[j] = c.qs[j] = uint8_t(codes[j] | (codes[j + 16] << 4));
      for (int j = 0; j < 32; ++j) {
        q.qs[j] = int8_t(int(rng() % 256) - 128);
        e40.push_back(float(double(to_float(a.d)) * (codes[j] - 8)));
        e41.push_back(float(double(to_float(c.d)) * codes[j] + double(to_float(c.m))));
        e80.push_back(float(double(to_float(q.d)) * q.qs[j]));
      }
      store(b40, a);
      store(b41, c);
      store(b80, q);
    }
    std::vector<float> y(32 * nb);
    quant::dequantize_row(Format::Q4_0, b40.data(), y.data(), 32 * nb);
    EXPECT_EQ(y, e40);
    quant::dequantize_row(Format::Q4_1, b41.data(), y.data(), 32 * nb);
    EXPECT_EQ(y, e41);
    quant::dequantize_row(Format::Q8_0, b80.data(), y.data(), 32 * nb);
    EXPECT_EQ(y, e80);
  }
}

// K-quants packed the way ggml's quantizers lay out their loops (a different shape of code from
// the element-wise unpacking under test).
void pack_k4_scales(const int sc[8], const int m[8], uint8_t out[12]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = uint8_t((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = uint8_t((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = uint8_t((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

TEST(Quant, DequantizeKQuantsFromChosenCodes) {
  std::mt19937 rng(11);
  std::printf("seed 11\n");
  for (int trial = 0; trial < 20; ++trial) {
    int sc[8], mn[8], q[256];
    for (int s = 0; s < 8; ++s) {
      sc[s] = int(rng() % 64);
      mn[s] = int(rng() % 64);
    }
    for (int& x : q) x = int(rng() % 32);  // 5 bits; q4_K uses the low 4
    quant::block_q4_K b4;
    quant::block_q5_K b5;
    b4.d = b5.d = pow2_half(rng, -5, -1);
    b4.dmin = b5.dmin = pow2_half(rng, -5, -1);
    pack_k4_scales(sc, mn, b4.scales);
    std::memcpy(b5.scales, b4.scales, 12);
    std::memset(b5.qh, 0, sizeof b5.qh);
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) {
        b4.qs[32 * j + l] = b5.qs[32 * j + l] =
            uint8_t((q[64 * j + l] & 15) | ((q[64 * j + 32 + l] & 15) << 4));
      }
    for (int e = 0; e < 256; ++e) b5.qh[e % 32] |= uint8_t((q[e] >> 4) << (e / 32));
    float d = to_float(b4.d), dmin = to_float(b4.dmin);
    std::vector<float> y(256);
    quant::dequantize_row(Format::Q4_K, reinterpret_cast<uint8_t*>(&b4), y.data(), 256);
    for (int e = 0; e < 256; ++e) {
      int s = e / 32;
      ASSERT_EQ(y[e], float(double(d) * sc[s] * (q[e] & 15) - double(dmin) * mn[s])) << e;
    }
    quant::dequantize_row(Format::Q5_K, reinterpret_cast<uint8_t*>(&b5), y.data(), 256);
    for (int e = 0; e < 256; ++e) {
      int s = e / 32;
      ASSERT_EQ(y[e], float(double(d) * sc[s] * q[e] - double(dmin) * mn[s])) << e;
    }

    // q6_K: 6-bit codes, 16 signed scales.
    int q6[256];
    for (int& x : q6) x = int(rng() % 64);
    quant::block_q6_K b6;
    for (int s = 0; s < 16; ++s) b6.scales[s] = int8_t(int(rng() % 256) - 128);
    b6.d = pow2_half(rng, -6, -2);
    for (int n = 0; n < 256; n += 128)
      for (int l = 0; l < 32; ++l) {
        int a = q6[n + l], b = q6[n + l + 32], c = q6[n + l + 64], e = q6[n + l + 96];
        b6.ql[n / 2 + l] = uint8_t((a & 15) | ((c & 15) << 4));
        b6.ql[n / 2 + l + 32] = uint8_t((b & 15) | ((e & 15) << 4));
        b6.qh[n / 4 + l] = uint8_t((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
      }
    quant::dequantize_row(Format::Q6_K, reinterpret_cast<uint8_t*>(&b6), y.data(), 256);
    for (int e = 0; e < 256; ++e)
      ASSERT_EQ(y[e], float(double(to_float(b6.d)) * b6.scales[e / 16] * (q6[e] - 32))) << e;
  }
}

TEST(Quant, RowsAtAnyAlignment) {
  std::mt19937 rng(3);
  std::vector<uint8_t> buf(1 + 2 * 210);
  for (auto& x : buf) x = uint8_t(rng());
  for (int b = 0; b < 2; ++b) {  // finite scales
    uint16_t h = to_float16(0.125f).bits;
    std::memcpy(buf.data() + 1 + b * 210 + 208, &h, 2);
  }
  std::vector<uint8_t> aligned(buf.begin() + 1, buf.end());
  std::vector<float> y1(512), y2(512);
  quant::dequantize_row(Format::Q6_K, buf.data() + 1, y1.data(), 512);
  quant::dequantize_row(Format::Q6_K, aligned.data(), y2.data(), 512);
  EXPECT_EQ(y1, y2);
}

// Round to nearest: each value comes back within half a step of its block's scale (plus the
// scale's own fp16 rounding over the code range; q4_0's capped extreme within a step).
TEST(Quant, QuantizeThenDequantizeIsWithinHalfAStep) {
  std::mt19937 rng(5);
  std::printf("seed 5\n");
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int k = 32 * 7;
  std::vector<float> x(k), y(k);
  for (int i = 0; i < k; ++i) x[i] = nd(rng) * (1.0f + float(i / 32));
  for (Format f : {Format::Q4_0, Format::Q4_1, Format::Q8_0}) {
    SCOPED_TRACE(quant::info(f).name);
    std::vector<uint8_t> q(size_t(quant::row_bytes(f, k)));
    quant::quantize_row(f, x.data(), q.data(), k);
    quant::dequantize_row(f, q.data(), y.data(), k);
    const int64_t bb = quant::info(f).block_bytes;
    for (int b = 0; b < k / 32; ++b) {
      float16_t dh;
      std::memcpy(&dh, q.data() + b * bb, 2);
      double d = std::fabs(to_float(dh));
      double span = f == Format::Q8_0 ? 127 : 16;
      // q4_0 maps the largest magnitude to -8; the opposite extreme (+8) is capped at code 7.
      double steps = f == Format::Q4_0 ? 1.0 : 0.5;
      for (int j = 0; j < 32; ++j) {
        int i = 32 * b + j;
        EXPECT_LE(std::fabs(double(x[i]) - y[i]), steps * d + span * d * 1e-3 + 1e-6)
            << "element " << i;
      }
    }
  }
  // All-zero blocks give zero scales and exact zeros.
  std::vector<float> z(64, 0.0f), zy(64, 1.0f);
  std::vector<uint8_t> zq(40);
  quant::quantize_row(Format::Q4_1, z.data(), zq.data(), 64);
  quant::dequantize_row(Format::Q4_1, zq.data(), zy.data(), 64);
  for (float v : zy) EXPECT_EQ(v, 0.0f);
}

TEST(Quant, QuantizeRejects) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> q(256);
  EXPECT_THROW(quant::quantize_row(Format::Q6_K, x.data(), q.data(), 256), UnsupportedError);
  x[40] = std::nanf("");
  EXPECT_THROW(quant::quantize_row(Format::Q8_0, x.data(), q.data(), 64), ValidationError);
  x[40] = INFINITY;
  EXPECT_THROW(quant::quantize_row(Format::Q4_0, x.data(), q.data(), 64), ValidationError);
}

}  // namespace
}  // namespace nef
