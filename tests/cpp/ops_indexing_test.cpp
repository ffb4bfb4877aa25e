// Indexing, sorting and scan ops (gather_elements, gather_nd, scatter_elements, scatter_nd, topk,
// cumsum, cumprod) and the bitwise/trigonometric elementwise additions: inference and its errors,
// and the CPU kernels against references written here in double (strided inputs included).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "test_util.h"

namespace nef {
namespace {

using test::element;
using test::random_array;
using test::run_kernel;
using Ints = std::vector<int64_t>;

std::mt19937_64 make_rng(uint64_t seed) {
  std::printf("[indexing test] seed %llu\n", static_cast<unsigned long long>(seed));
  return std::mt19937_64(seed);
}

Array ints(const Ints& v, const Shape& s) {
  Array a = Array::empty(s, DType::Int64);
  std::copy(v.begin(), v.end(), a.data_as<int64_t>());
  return a;
}

// A transposed (non-contiguous) view of a 2-D array holding the same logical values as `a`.
Array strided_copy_2d(const Array& a) {
  Array t = Array::empty({a.shape[1], a.shape[0]}, a.dtype);
  for (int64_t i = 0; i < a.shape[0]; ++i)
    for (int64_t j = 0; j < a.shape[1]; ++j)
      dispatch_dtype(a.dtype, [&]<typename T>() {
        t.data_as<T>()[j * a.shape[0] + i] = a.data_as<T>()[i * a.shape[1] + j];
      });
  Array v = t;
  v.shape = a.shape;
  v.strides = {1, a.shape[0]};
  return v;
}

ir::Attrs attrs(std::initializer_list<std::pair<const char*, ir::AttrValue>> kv) {
  ir::Attrs a;
  for (const auto& [k, v] : kv) a.set(k, v);
  return a;
}

TEST(Indexing, GatherElementsMatchesReferenceOnStridedInput) {
  auto rng = make_rng(11);
  Array x = random_array({5, 7}, DType::Float32, rng);
  Array xs = strided_copy_2d(x);
  Ints iv;
  for (int i = 0; i < 5 * 3; ++i) iv.push_back(int64_t(rng() % 14) - 7);  // [-7, 7)
  Array idx = ints(iv, {5, 3});
  Array out = run_kernel("gather_elements", {xs, idx}, attrs({{"axis", int64_t{1}}}));
  ASSERT_EQ(out.shape, (Shape{5, 3}));
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      int64_t k = iv[size_t(i * 3 + j)];
      k = k < 0 ? k + 7 : k;
      EXPECT_EQ(element(out, i * 3 + j), element(x, i * 7 + k));
    }
  EXPECT_THROW(run_kernel("gather_elements", {x, ints({7}, {1, 1})}, attrs({{"axis", int64_t{1}}})),
               ValidationError);
  EXPECT_THROW(run_kernel("gather_elements", {x, ints({0}, {1})}, {}), ShapeError);
}

TEST(Indexing, GatherNdWithBatchDims) {
  auto rng = make_rng(12);
  Array x = random_array({2, 3, 4}, DType::Float64, rng);
  // batch_dims 1: per batch, tuples (row) -> a row of 4.
  Array idx = ints({2, 0, 1, -1}, {2, 2, 1});
  Array out = run_kernel("gather_nd", {x, idx}, attrs({{"batch_dims", int64_t{1}}}));
  ASSERT_EQ(out.shape, (Shape{2, 2, 4}));
  const int64_t rows[2][2] = {{2, 0}, {1, 2}};
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 2; ++t)
      for (int c = 0; c < 4; ++c)
        EXPECT_EQ(element(out, (b * 2 + t) * 4 + c), element(x, (b * 3 + rows[b][t]) * 4 + c));
  ir::Attrs bad = attrs({{"batch_dims", int64_t{3}}});
  EXPECT_THROW(run_kernel("gather_nd", {x, idx}, bad), ValidationError);
}

TEST(Indexing, ScattersApplyInOrderWithReductions) {
  Array data = Array::empty({2, 3}, DType::Int32);
  std::iota(data.data_as<int32_t>(), data.data_as<int32_t>() + 6, 0);  // 0..5
  Array idx = ints({1, 1, 0}, {1, 3});
  Array upd = Array::empty({1, 3}, DType::Int32);
  int32_t* u = upd.data_as<int32_t>();
  u[0] = 10, u[1] = 20, u[2] = 30;
  // axis 0: out[idx[0][j]][j] += upd[0][j]: (1,0) += 10, (1,1) += 20, (0,2) += 30.
  Array out = run_kernel("scatter_elements", {data, idx, upd},
                         attrs({{"axis", int64_t{0}}, {"reduction", std::string("add")}}));
  std::vector<double> want = {0, 1, 32, 13, 24, 5};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(element(out, i), want[size_t(i)]);
  // scatter_nd: the same row twice with mul multiplies twice.
  Array rows = ints({1, 1}, {2, 1});
  Array updr = Array::empty({2, 3}, DType::Int32);
  std::fill(updr.data_as<int32_t>(), updr.data_as<int32_t>() + 6, 2);
  Array out2 =
      run_kernel("scatter_nd", {data, rows, updr}, attrs({{"reduction", std::string("mul")}}));
  std::vector<double> want2 = {0, 1, 2, 12, 16, 20};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(element(out2, i), want2[size_t(i)]);
  EXPECT_THROW(run_kernel("scatter_nd", {data, ints({2}, {1, 1}), updr}, {}), ShapeError);
  auto rng = make_rng(15);
  Array one_row = random_array({1, 3}, DType::Int32, rng);
  EXPECT_THROW(run_kernel("scatter_nd", {data, ints({2}, {1, 1}), one_row}, {}), ValidationError);
}

TEST(Sorting, TopkOrdersTiesByIndexAndNanFirst) {
  Array x = Array::empty({1, 6}, DType::Float32);
  float* p = x.data_as<float>();
  const float v[6] = {2, NAN, 5, 2, 5, -1};
  std::copy(v, v + 6, p);
  Array idx = run_kernel("topk", {x}, attrs({{"k", int64_t{4}}}));
  const int64_t want[4] = {1, 2, 4, 0};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(idx.data_as<int64_t>()[i], want[i]);
  Array small = run_kernel("topk", {x}, attrs({{"k", int64_t{3}}, {"largest", false}}));
  const int64_t want_small[3] = {5, 0, 3};
  for (int i = 0; i < 3; ++i) EXPECT_EQ(small.data_as<int64_t>()[i], want_small[i]);
  EXPECT_THROW(run_kernel("topk", {x}, attrs({{"k", int64_t{7}}})), ShapeError);
}

TEST(Scans, CumsumCumprodAllModesOnStridedInput) {
  auto rng = make_rng(13);
  Array x = random_array({4, 5}, DType::Float64, rng, -2, 2);
  Array xs = strided_copy_2d(x);
  for (bool prod : {false, true})
    for (int64_t axis : {0, 1})
      for (bool excl : {false, true})
        for (bool rev : {false, true}) {
          Array out = run_kernel(prod ? "cumprod" : "cumsum", {xs},
                                 attrs({{"axis", axis}, {"exclusive", excl}, {"reverse", rev}}));
          for (int64_t i = 0; i < 4; ++i)
            for (int64_t j = 0; j < 5; ++j) {
              double acc = prod ? 1 : 0;
              const int64_t n = axis == 0 ? 4 : 5, pos = axis == 0 ? i : j;
              for (int64_t t = 0; t < n; ++t) {
                const bool in = rev ? (excl ? t > pos : t >= pos) : (excl ? t < pos : t <= pos);
                if (!in) continue;
                const double v = element(x, axis == 0 ? t * 5 + j : i * 5 + t);
                acc = prod ? acc * v : acc + v;
              }
              EXPECT_NEAR(element(out, i * 5 + j), acc, 1e-12) << prod << axis << excl << rev;
            }
        }
  Array b = Array::empty({2}, DType::Bool);
  EXPECT_THROW(run_kernel("cumsum", {b}, {}), TypeError);
}

TEST(Elementwise, TrigAndBitwise) {
  auto rng = make_rng(14);
  Array x = random_array({33}, DType::Float64, rng, -0.99, 0.99);
  struct F {
    const char* op;
    double (*ref)(double);
  };
  for (F f : {F{"tan", std::tan}, F{"asin", std::asin}, F{"acos", std::acos}, F{"atan", std::atan},
              F{"sinh", std::sinh}, F{"cosh", std::cosh}, F{"asinh", std::asinh},
              F{"atanh", std::atanh}}) {
    Array out = run_kernel(f.op, {x});
    for (int i = 0; i < 33; ++i) EXPECT_DOUBLE_EQ(element(out, i), f.ref(element(x, i))) << f.op;
  }
  Array a = random_array({17}, DType::Int32, rng, -1000, 1000);
  Array s = random_array({17}, DType::Int32, rng, 0, 40);
  Array and_ = run_kernel("bitwise_and", {a, s});
  Array shl = run_kernel("left_shift", {a, s});
  Array shr = run_kernel("right_shift", {a, s});
  for (int i = 0; i < 17; ++i) {
    const int32_t av = a.data_as<int32_t>()[i], sv = s.data_as<int32_t>()[i];
    EXPECT_EQ(and_.data_as<int32_t>()[i], av & sv);
    EXPECT_EQ(shl.data_as<int32_t>()[i], sv >= 32 ? 0 : int32_t(uint32_t(av) << sv));
    EXPECT_EQ(shr.data_as<int32_t>()[i], sv >= 32 ? (av < 0 ? -1 : 0) : av >> sv);
  }
  EXPECT_THROW(run_kernel("bitwise_or", {x, x}), TypeError);
}

}  // namespace
}  // namespace nef
