// The ops under ONNX's newer operators: linear_attention against a float64 loop written from
// its definition (every update rule, grouped heads, a strided view), roi_align on hand-computed
// bins, deform_im2col with zero and whole-pixel offsets against plain im2col, and their errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace nef {
namespace {

using test::element;
using test::random_array;
using test::run_kernel;

// The definition, in double: returns the packed [B, Hkv, G*T + dk, dv] layout.
std::vector<double> linear_attention_ref(const Array& q, const Array& k, const Array& v,
                                         const Array& s0, const Array* decay, const Array* beta,
                                         double scale) {
  const int64_t B = q.shape[0], Hq = q.shape[1], T = q.shape[2], dk = q.shape[3];
  const int64_t Hkv = k.shape[1], dv = v.shape[3], G = Hq / Hkv, rows = G * T + dk;
  auto at = [](const Array& a, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    return element(a, ((i0 * a.shape[1] + i1) * a.shape[2] + i2) * a.shape[3] + i3);
  };
  std::vector<double> out(size_t(B * Hkv * rows * dv));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hkv; ++h) {
      std::vector<double> S(size_t(dk * dv));
      for (int64_t i = 0; i < dk; ++i)
        for (int64_t m = 0; m < dv; ++m) S[size_t(i * dv + m)] = at(s0, b, h, i, m);
      for (int64_t t = 0; t < T; ++t) {
        if (decay)
          for (int64_t i = 0; i < dk; ++i)
            for (int64_t m = 0; m < dv; ++m)
              S[size_t(i * dv + m)] *= std::exp(at(*decay, b, h, t, decay->shape[3] == 1 ? 0 : i));
        std::vector<double> u(static_cast<size_t>(dv));
        for (int64_t m = 0; m < dv; ++m) {
          u[size_t(m)] = at(v, b, h, t, m);
          if (beta) {
            double r = 0;
            for (int64_t i = 0; i < dk; ++i) r += S[size_t(i * dv + m)] * at(k, b, h, t, i);
            u[size_t(m)] = at(*beta, b, h, t, 0) * (u[size_t(m)] - r);
          }
        }
        for (int64_t i = 0; i < dk; ++i)
          for (int64_t m = 0; m < dv; ++m)
            S[size_t(i * dv + m)] += at(k, b, h, t, i) * u[size_t(m)];
        for (int64_t g = 0; g < G; ++g)
          for (int64_t m = 0; m < dv; ++m) {
            double o = 0;
            for (int64_t i = 0; i < dk; ++i) o += at(q, b, h * G + g, t, i) * S[size_t(i * dv + m)];
            out[size_t(((b * Hkv + h) * rows + g * T + t) * dv + m)] = scale * o;
          }
      }
      for (int64_t i = 0; i < dk * dv; ++i)
        out[size_t(((b * Hkv + h) * rows + G * T) * dv + i)] = S[size_t(i)];
    }
  return out;
}

TEST(LinearAttention, EveryRuleAgainstTheDefinition) {
  std::mt19937_64 rng(41);
  const int64_t B = 2, Hq = 6, Hkv = 3, T = 5, dk = 3, dv = 4;
  for (const std::string rule : {"linear", "gated", "delta", "gated_delta"}) {
    const bool gated = rule.find("gated") != std::string::npos;
    const bool delta = rule.find("delta") != std::string::npos;
    Array q = random_array({B, Hq, T, dk}, DType::Float64, rng, -1, 1);
    Array k = random_array({B, Hkv, T, dk}, DType::Float64, rng, -1, 1);
    Array v = random_array({B, Hkv, T, dv}, DType::Float64, rng, -1, 1);
    Array s = random_array({B, Hkv, dk, dv}, DType::Float64, rng, -1, 1);
    Array decay = random_array({B, Hkv, T, gated && delta ? 1 : dk}, DType::Float64, rng, -1, 0);
    Array beta = random_array({B, Hkv, T, 1}, DType::Float64, rng, 0, 1);
    std::vector<Array> in = {q, k, v, s};
    if (gated) in.push_back(decay);
    if (delta) in.push_back(beta);
    ir::Attrs a;
    a.set("update_rule", rule);
    Array out = run_kernel("linear_attention", in, a);
    ASSERT_EQ(out.shape, (Shape{B, Hkv, 2 * T + dk, dv}));
    const auto want = linear_attention_ref(q, k, v, s, gated ? &decay : nullptr,
                                           delta ? &beta : nullptr, 1 / std::sqrt(double(dk)));
    for (int64_t i = 0; i < out.numel(); ++i)
      ASSERT_NEAR(element(out, i), want[size_t(i)], 1e-12 * (1 + std::abs(want[size_t(i)])))
          << rule << " element " << i;
  }
}

TEST(LinearAttention, StridedQueryMatchesContiguous) {
  std::mt19937_64 rng(42);
  // q as a [1, 2, 3, 4] view of a [1, 3, 2, 4] array (dims 1 and 2 swapped).
  Array base = random_array({1, 3, 2, 4}, DType::Float32, rng);
  Array q = base;
  q.shape = {1, 2, 3, 4};
  q.strides = {base.strides[0], base.strides[2], base.strides[1], base.strides[3]};
  Array k = random_array({1, 2, 3, 4}, DType::Float32, rng);
  Array v = random_array({1, 2, 3, 5}, DType::Float32, rng);
  Array s = random_array({1, 2, 4, 5}, DType::Float32, rng);
  ir::Attrs a;
  a.set("update_rule", std::string("linear"));
  a.set("scale", 0.5);
  Array got = run_kernel("linear_attention", {q, k, v, s}, a);
  Array want = run_kernel("linear_attention", {q.contiguous(), k, v, s}, a);
  for (int64_t i = 0; i < got.numel(); ++i) ASSERT_EQ(element(got, i), element(want, i)) << i;
}

TEST(LinearAttention, Errors) {
  auto t = [](Shape s) { return ir::TensorType{s, DType::Float32}; };
  const ir::OpDef& op = ir::get_op("linear_attention");
  auto infer = [&](std::vector<ir::TensorType> in, std::string rule) {
    ir::Attrs a;
    a.set("update_rule", rule);
    return ir::check_and_infer(op, in, a);
  };
  const auto q = t({1, 2, 3, 4}), kv = t({1, 2, 3, 4}), s = t({1, 2, 4, 4});
  EXPECT_THROW(infer({q, kv, kv, s}, "gated"), ValidationError);    // decay missing
  EXPECT_THROW(infer({q, kv, kv, s}, "sliding"), ValidationError);  // unknown rule
  EXPECT_THROW(infer({q, kv, kv, t({1, 2, 4, 3})}, "linear"), ShapeError);
  EXPECT_THROW(infer({q, kv, kv, s, t({1, 2, 3, 2})}, "gated"), ShapeError);  // decay dims
  EXPECT_THROW(infer({q, kv, kv, {{1, 2, 4, 4}, DType::Float64}}, "linear"), TypeError);
  EXPECT_EQ(infer({t({1, 4, 3, 4}), kv, kv, s}, "linear").shape, (Shape{1, 2, 10, 4}));
}

TEST(RoiAlign, HandComputedBins) {
  // x[y][x] = 4y + x is linear, so every bilinear sample equals 4y + x at its point.
  Array x = Array::empty({1, 1, 4, 4}, DType::Float32);
  for (int i = 0; i < 16; ++i) x.data_as<float>()[i] = float(i);
  Array rois = Array::empty({1, 4}, DType::Float32);
  const float box[4] = {0, 0, 2, 2};
  for (int i = 0; i < 4; ++i) rois.data_as<float>()[i] = box[i];
  Array idx = Array::empty({1}, DType::Int64);
  idx.data_as<int64_t>()[0] = 0;
  ir::Attrs a;
  a.set("coordinate_transformation_mode", std::string("output_half_pixel"));
  a.set("sampling_ratio", int64_t(2));
  // Samples at (0.5, 0.5), (0.5, 1.5), (1.5, 0.5), (1.5, 1.5): mean 4 * 1 + 1 = 5.
  EXPECT_FLOAT_EQ(element(run_kernel("roi_align", {x, rois, idx}, a), 0), 5.0f);
  // max: the largest weighted corner, at (1.5, 1.5): 0.25 * x[2][2] = 2.5.
  a.set("mode", std::string("max"));
  EXPECT_FLOAT_EQ(element(run_kernel("roi_align", {x, rois, idx}, a), 0), 2.5f);
  // half_pixel shifts the region by -0.5: samples at 0 and 1 per axis, mean 4 * 0.5 + 0.5.
  a.set("mode", std::string("avg"));
  a.set("coordinate_transformation_mode", std::string("half_pixel"));
  EXPECT_FLOAT_EQ(element(run_kernel("roi_align", {x, rois, idx}, a), 0), 2.5f);
  idx.data_as<int64_t>()[0] = 1;  // x has one image
  EXPECT_THROW(run_kernel("roi_align", {x, rois, idx}, a), ValidationError);
}

TEST(DeformIm2col, ZeroAndWholePixelOffsetsAreIm2col) {
  std::mt19937_64 rng(43);
  const int64_t C = 2, H = 4, W = 5, kh = 2, kw = 3, oh = H - kh + 1, ow = W - kw + 1;
  Array x = random_array({1, C, H, W}, DType::Float64, rng);
  for (const int shift : {0, 1}) {  // shift: every dx = shift (columns read x one to the right)
    Array off = Array::empty({1, 2 * kh * kw, oh, ow}, DType::Float64);
    for (int64_t c = 0; c < 2 * kh * kw; ++c)
      for (int64_t p = 0; p < oh * ow; ++p)
        off.data_as<double>()[c * oh * ow + p] = c % 2 ? shift : 0;
    ir::Attrs a;
    a.set("kernel_shape", std::vector<int64_t>{kh, kw});
    Array cols = run_kernel("deform_im2col", {x, off}, a);
    ASSERT_EQ(cols.shape, (Shape{1, C * kh * kw, oh * ow}));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j)
          for (int64_t y = 0; y < oh; ++y)
            for (int64_t xo = 0; xo < ow; ++xo) {
              const int64_t xs = xo + j + shift;
              const double want = xs < W ? element(x, (c * H + y + i) * W + xs) : 0.0;
              ASSERT_DOUBLE_EQ(element(cols, ((c * kh + i) * kw + j) * oh * ow + y * ow + xo),
                               want);
            }
  }
  ir::Attrs bad;
  bad.set("kernel_shape", std::vector<int64_t>{kh, kw});
  bad.set("offset_group", int64_t(3));  // does not divide C = 2
  Array off = Array::empty({1, 6 * kh * kw, oh, ow}, DType::Float64);
  EXPECT_THROW(run_kernel("deform_im2col", {x, off}, bad), ValidationError);
}

}  // namespace
}  // namespace nef
