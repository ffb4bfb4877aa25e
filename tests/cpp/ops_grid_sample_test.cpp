// grid_sample: inference and its errors, and the CPU kernel on hand-computed points (every
// padding mode at the border), the identity grid (every mode reproduces the input) and strided
// inputs (a transposed view gives the same numbers as a contiguous copy).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "test_util.h"

namespace nef {
namespace {

using test::element;
using test::random_array;
using test::run_kernel;

ir::Attrs gs_attrs(const std::string& mode, const std::string& padding, bool align) {
  ir::Attrs a;
  a.set("mode", mode);
  a.set("padding_mode", padding);
  a.set("align_corners", align);
  return a;
}

Array doubles(const std::vector<double>& v, const Shape& s) {
  Array a = Array::empty(s, DType::Float64);
  for (size_t i = 0; i < v.size(); ++i) a.data_as<double>()[i] = v[i];
  return a;
}

TEST(GridSample, HandComputedPointsAndPadding) {
  // x = [[1, 2], [3, 4]]; grid points (x, y): the center, the top-left corner (-1, -1) and a
  // point past the right edge (1.5, 0).
  Array x = doubles({1, 2, 3, 4}, {1, 1, 2, 2});
  Array g = doubles({0, 0, -1, -1, 1.5, 0}, {1, 1, 3, 2});
  struct Case {
    const char* mode;
    const char* padding;
    bool align;
    double want[3];
  };
  // align 0: coordinates are g + 0.5 here, the borders -0.5 and 1.5: the center (0.5, 0.5), the
  // corner (-0.5, -0.5) (on the border: not moved, half its taps outside), (2, 0.5) outside.
  // align 1: coordinates (g + 1) / 2, borders 0 and 1: (0.5, 0.5), (0, 0), (1.25, 0.5).
  const Case cases[] = {
      {"linear", "zeros", false, {2.5, 0.25, 0}},    // taps at column 2 and 3 read 0
      {"linear", "border", false, {2.5, 1, 3}},      // 2 clamps to 1: the column (2 + 4) / 2
      {"linear", "reflection", false, {2.5, 1, 3}},  // 2 reflects about 1.5 to 1; tap -1 to 0
      {"linear", "zeros", true, {2.5, 1, 2.25}},     // 0.75 * column 1 + 0.25 * 0
      {"linear", "border", true, {2.5, 1, 3}},
      {"linear", "reflection", true, {2.5, 1, 2.75}},  // 1.25 reflects to 0.75: .25 * 2 + .75 * 3
      {"nearest", "zeros", false, {1, 1, 0}},   // rint(0.5) = 0, rint(-0.5) = 0; x = 2 is out
      {"nearest", "border", false, {1, 1, 2}},  // x = 2 clamps to 1, y = rint(0.5) = 0
  };
  for (const Case& c : cases) {
    Array out = run_kernel("grid_sample", {x, g}, gs_attrs(c.mode, c.padding, c.align));
    ASSERT_EQ(out.shape, (Shape{1, 1, 1, 3}));
    for (int i = 0; i < 3; ++i)
      EXPECT_NEAR(element(out, i), c.want[i], 1e-12)
          << c.mode << " " << c.padding << " " << c.align << " point " << i;
  }
}

TEST(GridSample, IdentityGridAndStridedInput) {
  std::mt19937_64 rng(31);
  const int64_t h = 5, w = 7;
  Array x = random_array({2, 3, h, w}, DType::Float32, rng);
  Array g = Array::empty({2, h, w, 2}, DType::Float32);
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j) {
        float* p = g.data_as<float>() + ((n * h + i) * w + j) * 2;
        p[0] = float(-1 + 2.0 * double(j) / double(w - 1));
        p[1] = float(-1 + 2.0 * double(i) / double(h - 1));
      }
  // A transposed view of the same values: [N, C, h, w] with the last two strides swapped.
  Array t = Array::empty({2, 3, w, h}, DType::Float32);
  for (int64_t b = 0; b < 6; ++b)
    for (int64_t i = 0; i < h; ++i)
      for (int64_t j = 0; j < w; ++j)
        t.data_as<float>()[(b * w + j) * h + i] = x.data_as<float>()[(b * h + i) * w + j];
  Array xv = t;
  xv.shape = x.shape;
  xv.strides = {3 * w * h, w * h, 1, h};
  for (const char* mode : {"nearest", "linear", "cubic"})
    for (const char* padding : {"zeros", "border", "reflection"}) {
      Array out = run_kernel("grid_sample", {x, g}, gs_attrs(mode, padding, true));
      Array outv = run_kernel("grid_sample", {xv, g}, gs_attrs(mode, padding, true));
      ASSERT_EQ(out.shape, x.shape);
      for (int64_t i = 0; i < x.numel(); ++i) {
        EXPECT_NEAR(element(out, i), element(x, i), 1e-5) << mode << padding << i;
        EXPECT_EQ(element(outv, i), element(out, i)) << mode << padding << i;
      }
    }
}

TEST(GridSample, InferenceErrors) {
  std::mt19937_64 rng(32);
  Array x = random_array({1, 2, 3, 4}, DType::Float32, rng);
  Array g = random_array({1, 5, 6, 2}, DType::Float32, rng);
  EXPECT_EQ(run_kernel("grid_sample", {x, g}, gs_attrs("linear", "zeros", false)).shape,
            (Shape{1, 2, 5, 6}));
  Array g3 = random_array({1, 5, 6, 3}, DType::Float32, rng);
  EXPECT_THROW(run_kernel("grid_sample", {x, g3}, gs_attrs("linear", "zeros", false)), ShapeError);
  Array gb = random_array({2, 5, 6, 2}, DType::Float32, rng);
  EXPECT_THROW(run_kernel("grid_sample", {x, gb}, gs_attrs("linear", "zeros", false)), ShapeError);
  Array gd = random_array({1, 5, 6, 2}, DType::Float64, rng);
  EXPECT_THROW(run_kernel("grid_sample", {x, gd}, gs_attrs("linear", "zeros", false)), TypeError);
  Array xi = random_array({1, 2, 3, 4}, DType::Int32, rng);
  Array gi = random_array({1, 5, 6, 2}, DType::Int32, rng);
  EXPECT_THROW(run_kernel("grid_sample", {xi, gi}, gs_attrs("linear", "zeros", false)), TypeError);
  Array x1 = random_array({2, 3}, DType::Float32, rng);
  EXPECT_THROW(run_kernel("grid_sample", {x1, g}, gs_attrs("linear", "zeros", false)), ShapeError);
  EXPECT_THROW(run_kernel("grid_sample", {x, g}, gs_attrs("bilinear", "zeros", false)),
               ValidationError);
  EXPECT_THROW(run_kernel("grid_sample", {x, g}, gs_attrs("linear", "wrap", false)),
               ValidationError);
}

}  // namespace
}  // namespace nef
