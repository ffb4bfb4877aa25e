// Source op kernels: full, arange, random_uniform, random_normal. Values are checked against
// formulas written here; random ops for determinism, thread-count independence, ranges and
// moments.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "backends/cpu/parallel.h"
#include "common/session.h"
#include "test_util.h"

namespace nef {
namespace {

using test::element;
using test::run_kernel;
using test::to_doubles;
using Ints = std::vector<int64_t>;

const DType kAllDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64,
                            DType::Int8,    DType::UInt8,   DType::Int16,    DType::UInt16,
                            DType::Int32,   DType::UInt32,  DType::Int64,    DType::UInt64,
                            DType::Bool};
const DType kFloatDTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64};

Array full(const Shape& s, DType dt, double v) {
  ir::Attrs a;
  a.set("shape", Ints(s.begin(), s.end()));
  a.set("dtype", std::string(dtype_name(dt)));
  a.set("value", v);
  return run_kernel("full", {}, a);
}

Array arange(double start, double stop, double step, DType dt) {
  ir::Attrs a;
  a.set("start", start);
  a.set("stop", stop);
  a.set("step", step);
  a.set("dtype", std::string(dtype_name(dt)));
  return run_kernel("arange", {}, a);
}

Array uniform(const Shape& s, DType dt, int64_t seed, double low, double high) {
  ir::Attrs a;
  a.set("shape", Ints(s.begin(), s.end()));
  a.set("dtype", std::string(dtype_name(dt)));
  a.set("seed", seed);
  a.set("low", low);
  a.set("high", high);
  return run_kernel("random_uniform", {}, a);
}

Array normal(const Shape& s, DType dt, int64_t seed, double mean, double sd) {
  ir::Attrs a;
  a.set("shape", Ints(s.begin(), s.end()));
  a.set("dtype", std::string(dtype_name(dt)));
  a.set("seed", seed);
  a.set("mean", mean);
  a.set("std", sd);
  return run_kernel("random_normal", {}, a);
}

// The value `v` should have after a round trip through dtype `dt` (for exactly representable
// test values this is v itself; for floats we round through float32 where the type is narrower).
double as_dtype(double v, DType dt) {
  switch (dt) {
    case DType::Bool:
      return v != 0 ? 1 : 0;
    case DType::Float32:
      return double(float(v));
    case DType::Float64:
      return v;
    case DType::Float16:
      return double(to_float(to_float16(float(v))));
    case DType::BFloat16:
      return double(to_float(to_bfloat16(float(v))));
    default:
      return std::trunc(v);
  }
}

TEST(SourceFull, AllDTypes) {
  for (DType dt : kAllDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    for (double v : {2.75, 0.0, -3.0}) {
      if (is_integer(dt) && !is_signed(dt) && v < 0) continue;
      Array a = full({3, 5}, dt, v);
      ASSERT_EQ(a.shape, (Shape{3, 5}));
      ASSERT_EQ(a.dtype, dt);
      for (double e : to_doubles(a)) EXPECT_EQ(e, as_dtype(v, dt));
    }
    EXPECT_EQ(full({}, dt, 1).numel(), 1);
    EXPECT_EQ(element(full({}, dt, 1), 0), 1.0);
    EXPECT_EQ(full({4, 0}, dt, 1).numel(), 0);
  }
  Array big = full({1000, 1001}, DType::Int32, 7);  // parallel path
  for (int64_t i = 0; i < big.numel(); i += 997) ASSERT_EQ(big.data_as<int32_t>()[i], 7);
  Array nan = full({2}, DType::Float32, std::nan(""));
  EXPECT_TRUE(std::isnan(element(nan, 1)));
  // Out-of-range values saturate for integers instead of being undefined behaviour.
  EXPECT_EQ(element(full({1}, DType::Int8, 1000), 0), 127);
  EXPECT_EQ(element(full({1}, DType::Int32, std::nan("")), 0), 0);
}

TEST(SourceArange, LengthsAndValuesMatchFormula) {
  struct Case {
    double start, stop, step;
  };
  const Case cases[] = {{0, 10, 1},       {0, 1, 0.1},   {5, -3, -1.5},    {1, 0, 1},
                        {-2.5, 2.5, 0.7}, {0, 10, 3},    {3, 3, 1},        {10, 0, -0.25},
                        {0.5, 0.6, 1},    {-1, -10, -2}, {0, 1e5 + 0.5, 1}};
  for (const Case& c : cases) {
    SCOPED_TRACE(str("arange(", c.start, ", ", c.stop, ", ", c.step, ")"));
    const double lenf = std::ceil((c.stop - c.start) / c.step);
    const int64_t len = lenf > 0 ? int64_t(lenf) : 0;
    for (DType dt : {DType::Float64, DType::Float32, DType::Int64, DType::Int32}) {
      Array a = arange(c.start, c.stop, c.step, dt);
      ASSERT_EQ(a.shape, (Shape{len}));
      ASSERT_EQ(a.dtype, dt);
      for (int64_t i = 0; i < len; i += 1 + len / 50)
        ASSERT_EQ(element(a, i), as_dtype(c.start + double(i) * c.step, dt)) << "i=" << i;
    }
  }
  Array h = arange(0, 8, 0.5, DType::Float16);
  EXPECT_EQ(to_doubles(h).back(), 7.5);
  Array b = arange(0, 3, 1, DType::Bool);
  EXPECT_EQ(to_doubles(b), (std::vector<double>{0, 1, 1}));
  Array u = arange(250, 256, 1, DType::UInt8);
  EXPECT_EQ(to_doubles(u), (std::vector<double>{250, 251, 252, 253, 254, 255}));
}

TEST(SourceArange, Errors) {
  EXPECT_THROW(arange(0, 1, 0, DType::Float32), ValidationError);
  EXPECT_THROW(arange(0, std::nan(""), 1, DType::Float32), ValidationError);
}

TEST(SourceRandom, UniformRangeDeterminismAndSeeds) {
  const Shape s = {1000, 37};
  for (DType dt : kFloatDTypes) {
    SCOPED_TRACE(dtype_name(dt));
    Array a = uniform(s, dt, 42, -2, 3);
    Array b = uniform(s, dt, 42, -2, 3);
    Array c = uniform(s, dt, 43, -2, 3);
    std::vector<double> va = to_doubles(a), vb = to_doubles(b), vc = to_doubles(c);
    EXPECT_EQ(va, vb);
    int64_t same = 0;
    double sum = 0;
    for (size_t i = 0; i < va.size(); ++i) {
      ASSERT_GE(va[i], -2.0);
      ASSERT_LT(va[i], 3.0);
      same += va[i] == vc[i];
      sum += va[i];
    }
    EXPECT_LT(same, int64_t(va.size()) / 50);  // half types collide more often; still rare
    EXPECT_NEAR(sum / double(va.size()), 0.5, 0.05);
    // Narrow range where rounding to the dtype could reach `high`: must stay below it.
    for (double e : to_doubles(uniform({20000}, dt, 7, 0, 1))) {
      ASSERT_GE(e, 0.0);
      ASSERT_LT(e, 1.0);
    }
  }
  EXPECT_THROW(uniform({3}, DType::Int32, 1, 0, 1), TypeError);
}

TEST(SourceRandom, ElementDependsOnlyOnSeedAndIndex) {
  // Prefix property: element i is the same whatever the total size.
  std::vector<double> small = to_doubles(uniform({10}, DType::Float64, 5, 0, 1));
  std::vector<double> large = to_doubles(uniform({100000}, DType::Float64, 5, 0, 1));
  for (size_t i = 0; i < small.size(); ++i) EXPECT_EQ(small[i], large[i]);
  std::vector<double> ns = to_doubles(normal({10}, DType::Float64, 5, 0, 1));
  std::vector<double> nl = to_doubles(normal({2, 50000}, DType::Float64, 5, 0, 1));
  for (size_t i = 0; i < ns.size(); ++i) EXPECT_EQ(ns[i], nl[i]);
  // Thread count does not matter.
  int saved = backend::cpu::num_threads();
  nef::current_session().set_threads(1);
  std::vector<double> u1 = to_doubles(uniform({300001}, DType::Float32, 9, -1, 1));
  std::vector<double> n1 = to_doubles(normal({300001}, DType::Float32, 9, 0, 1));
  nef::current_session().set_threads(std::max(2, saved));
  std::vector<double> u2 = to_doubles(uniform({300001}, DType::Float32, 9, -1, 1));
  std::vector<double> n2 = to_doubles(normal({300001}, DType::Float32, 9, 0, 1));
  nef::current_session().set_threads(saved);
  EXPECT_EQ(u1, u2);
  EXPECT_EQ(n1, n2);
}

TEST(SourceRandom, UniformMomentsAndBuckets) {
  const int64_t n = 1000000;
  std::vector<double> v = to_doubles(uniform({n}, DType::Float64, 1234, 0, 1));
  double sum = 0, sq = 0;
  std::vector<int64_t> buckets(10, 0);
  for (double e : v) {
    sum += e;
    sq += e * e;
    ++buckets[size_t(e * 10)];
  }
  double mean = sum / n, var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.5, 0.002);  // sd of the mean ~ 0.00029
  EXPECT_NEAR(var, 1.0 / 12, 0.001);
  for (int64_t b : buckets) EXPECT_NEAR(double(b), n / 10.0, 1500.0);  // sd ~ 300
}

TEST(SourceRandom, NormalMoments) {
  const int64_t n = 1000000;
  const double mu = 1.5, sd = 2.0;
  for (DType dt : {DType::Float32, DType::Float64}) {
    SCOPED_TRACE(dtype_name(dt));
    std::vector<double> v = to_doubles(normal({n}, dt, 77, mu, sd));
    double sum = 0, sq = 0;
    int64_t within1 = 0;
    for (double e : v) {
      ASSERT_TRUE(std::isfinite(e));
      sum += e;
      within1 += std::fabs(e - mu) < sd;
    }
    double mean = sum / n;
    for (double e : v) sq += (e - mean) * (e - mean);
    double stdev = std::sqrt(sq / n);
    EXPECT_NEAR(mean, mu, 0.012);   // sd of the mean = 0.002
    EXPECT_NEAR(stdev, sd, 0.012);  // sd of the sd ~ 0.0014
    EXPECT_NEAR(double(within1) / n, 0.682689, 0.003);
  }
  // Different seeds differ; same seed repeats; half types work.
  EXPECT_NE(to_doubles(normal({64}, DType::Float32, 1, 0, 1)),
            to_doubles(normal({64}, DType::Float32, 2, 0, 1)));
  EXPECT_EQ(to_doubles(normal({64}, DType::BFloat16, 3, 0, 1)),
            to_doubles(normal({64}, DType::BFloat16, 3, 0, 1)));
  EXPECT_EQ(normal({0, 5}, DType::Float16, 3, 0, 1).numel(), 0);
  EXPECT_EQ(normal({}, DType::Float16, 3, 0, 1).numel(), 1);
  EXPECT_THROW(normal({3}, DType::Bool, 1, 0, 1), TypeError);
}

}  // namespace
}  // namespace nef
