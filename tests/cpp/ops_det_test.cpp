// det: inference errors, and the CPU kernel against a cofactor-expansion reference written here
// in double (batched, strided), on singular and permutation matrices and the empty matrix.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "test_util.h"

namespace nef {
namespace {

using test::element;
using test::random_array;
using test::run_kernel;

// Laplace expansion along the first row (exact enough for the small sizes used here).
double cofactor_det(const std::vector<double>& a, int64_t m) {
  if (m == 0) return 1;
  if (m == 1) return a[0];
  double d = 0;
  for (int64_t c = 0; c < m; ++c) {
    std::vector<double> minor;
    for (int64_t i = 1; i < m; ++i)
      for (int64_t j = 0; j < m; ++j)
        if (j != c) minor.push_back(a[size_t(i * m + j)]);
    d += (c % 2 ? -1 : 1) * a[size_t(c)] * cofactor_det(minor, m - 1);
  }
  return d;
}

TEST(Det, BatchedAndStridedMatchCofactorExpansion) {
  std::mt19937_64 rng(41);
  for (int64_t m : {1, 2, 3, 5}) {
    Array x = random_array({2, 3, m, m}, DType::Float64, rng);
    Array out = run_kernel("det", {x});
    ASSERT_EQ(out.shape, (Shape{2, 3}));
    // The transposed view (each matrix transposed) has the same determinants.
    Array t = x;
    t.strides = {x.strides[0], x.strides[1], 1, m};
    Array outt = run_kernel("det", {t});
    for (int64_t b = 0; b < 6; ++b) {
      std::vector<double> a(size_t(m * m));
      for (int64_t i = 0; i < m * m; ++i) a[size_t(i)] = element(x, b * m * m + i);
      const double want = cofactor_det(a, m);
      EXPECT_NEAR(element(out, b), want, 1e-12 * std::max(1.0, std::abs(want))) << m;
      EXPECT_NEAR(element(outt, b), want, 1e-12 * std::max(1.0, std::abs(want))) << m;
    }
  }
}

TEST(Det, SingularPermutationAndEmpty) {
  Array s = Array::empty({3, 3}, DType::Float32);
  const float sv[9] = {1, 2, 3, 2, 4, 6, 0, 1, 1};  // row 1 = 2 * row 0
  std::copy(sv, sv + 9, s.data_as<float>());
  EXPECT_EQ(element(run_kernel("det", {s}), 0), 0);
  Array p = Array::empty({3, 3}, DType::Float32);
  const float pv[9] = {0, 1, 0, 0, 0, 1, 1, 0, 0};  // a cyclic permutation: +1
  std::copy(pv, pv + 9, p.data_as<float>());
  EXPECT_EQ(element(run_kernel("det", {p}), 0), 1);
  const float qv[9] = {0, 1, 0, 1, 0, 0, 0, 0, 1};  // one swap: -1
  std::copy(qv, qv + 9, p.data_as<float>());
  EXPECT_EQ(element(run_kernel("det", {p}), 0), -1);
  Array e = Array::empty({4, 0, 0}, DType::Float32);
  Array out = run_kernel("det", {e});
  ASSERT_EQ(out.shape, (Shape{4}));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(element(out, i), 1);
}

TEST(Det, InferenceErrors) {
  std::mt19937_64 rng(42);
  EXPECT_THROW(run_kernel("det", {random_array({2, 3}, DType::Float32, rng)}), ShapeError);
  EXPECT_THROW(run_kernel("det", {random_array({3}, DType::Float32, rng)}), ShapeError);
  EXPECT_THROW(run_kernel("det", {random_array({2, 2}, DType::Int32, rng)}), TypeError);
}

}  // namespace
}  // namespace nef
