// Elementwise ops (unary, binary, compare, logical, where, clip, cast): registry inference and the
// CPU kernels against float64 references written here, over all dtypes, rank 0, zero-size dims,
// odd sizes, broadcasting and non-contiguous (transposed, reversed, step-2) inputs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "test_util.h"

namespace nef::test {
namespace {

using ir::Attrs;
using ir::TensorType;

const std::vector<DType> kAllDTypes = {
    DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int8,
    DType::UInt8,   DType::Int16,   DType::UInt16,   DType::Int32,   DType::UInt32,
    DType::Int64,   DType::UInt64,  DType::Bool};
const std::vector<DType> kFloatDTypes = {DType::Float32, DType::Float16, DType::BFloat16,
                                         DType::Float64};
const std::vector<DType> kNumericDTypes = {
    DType::Float32, DType::Float16, DType::BFloat16, DType::Float64, DType::Int8,  DType::UInt8,
    DType::Int16,   DType::UInt16,  DType::Int32,    DType::UInt32,  DType::Int64, DType::UInt64};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Tol {
  double rtol, atol;
};

// Tolerance for a result stored in `d`: the output rounding dominates for half types.
Tol tol_for(DType d, bool transcendental) {
  switch (d) {
    case DType::Float64:
      return {1e-12, 1e-12};
    case DType::Float32:
      return transcendental ? Tol{1e-5, 1e-6} : Tol{1e-6, 1e-7};
    case DType::Float16:
      return {1e-3, 1e-3};
    case DType::BFloat16:
      return {1e-2, 1e-2};
    default:
      return {0, 0};
  }
}

// Wraps an exact integer result into dtype `d` like the hardware (two's complement).
double wrap_to(double v, DType d) {
  if (std::isnan(v) || std::isinf(v)) return v;
  auto i = static_cast<int64_t>(v);
  switch (d) {
    case DType::Int8:
      return double(static_cast<int8_t>(i));
    case DType::UInt8:
      return double(static_cast<uint8_t>(i));
    case DType::Int16:
      return double(static_cast<int16_t>(i));
    case DType::UInt16:
      return double(static_cast<uint16_t>(i));
    case DType::Int32:
      return double(static_cast<int32_t>(i));
    case DType::UInt32:
      return double(static_cast<uint32_t>(i));
    case DType::Int64:
      return double(i);
    case DType::UInt64:
      return double(static_cast<uint64_t>(i));
    case DType::Bool:
      return v != 0 ? 1.0 : 0.0;
    default:
      return v;
  }
}

bool close(double got, double want, Tol t) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= t.atol + t.rtol * std::fabs(want);
}

void expect_values(const Array& got, const std::vector<double>& want, Tol tol) {
  ASSERT_EQ(got.numel(), int64_t(want.size()));
  std::vector<double> g = to_doubles(got);
  int bad = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!close(g[i], want[i], tol) && ++bad <= 5)
      ADD_FAILURE() << "element " << i << ": got " << g[i] << ", want " << want[i];
  }
  EXPECT_EQ(bad, 0) << "mismatching elements";
}

// Value of an input (row-major values `v` of shape `in`) at flat index `flat` of the broadcast
// output shape `out` (numpy rules; written independently of the kernels' stride code).
double bvalue(const std::vector<double>& v, const Shape& in, const Shape& out, int64_t flat) {
  int64_t idx = 0, mul = 1;
  int k = int(in.size()) - 1;
  for (int d = int(out.size()) - 1; d >= 0; --d, --k) {
    int64_t i = flat % out[d];
    flat /= out[d];
    if (k >= 0) {
      if (in[k] != 1) idx += i * mul;
      mul *= in[k];
    }
  }
  return v[idx];
}

Shape bshape(const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape s(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    s[i] = da == 1 ? db : da;
  }
  return s;
}

// Random input in [lo, hi] that is valid for the dtype (uint8 never gets negatives, ints get
// whole numbers). `int_valued` makes float inputs whole numbers too (comparisons need ties).
Array gen(const Shape& shape, DType d, std::mt19937_64& rng, double lo, double hi,
          bool int_valued = false) {
  // Keep integer ranges inside the dtype (double -> narrow int conversion must stay defined).
  if (d == DType::UInt8) lo = std::clamp(lo, 0.0, 255.0), hi = std::clamp(hi, 0.0, 255.0);
  if (d == DType::Int8) lo = std::clamp(lo, -128.0, 127.0), hi = std::clamp(hi, -128.0, 127.0);
  if (is_integer(d) && !is_signed(d)) lo = std::max(lo, 0.0), hi = std::max(hi, 0.0);
  if (!is_floating(d) || !int_valued) return random_array(shape, d, rng, lo, hi);
  Array a = Array::empty(shape, d);
  nef::dispatch_dtype(d, [&]<typename T>() {
    for (int64_t i = 0; i < a.numel(); ++i) {
      double v = double(std::uniform_int_distribution<int64_t>(int64_t(lo), int64_t(hi))(rng));
      a.data_as<T>()[i] = nef::store_as<T>(nef::compute_t<T>(v));
    }
  });
  return a;
}

// Views over fresh storage: a transposed 2-D array, a reversed 1-D array (negative stride) and
// every other element of a longer 1-D array (stride 2).
Array transposed_view(const Array& a) {
  Array v = a;
  std::swap(v.shape[0], v.shape[1]);
  std::swap(v.strides[0], v.strides[1]);
  return v;
}
Array reversed_view(const Array& a) {
  Array v = a;
  v.offset = a.offset + (a.shape[0] - 1) * a.strides[0];
  v.strides[0] = -a.strides[0];
  return v;
}
Array step2_view(const Array& a) {
  Array v = a;
  v.shape[0] = (a.shape[0] + 1) / 2;
  v.strides[0] = 2 * a.strides[0];
  return v;
}

// Input layouts every op is run on: (shape to generate, view to apply).
struct Layout {
  const char* name;
  Shape gen_shape;
  std::function<Array(const Array&)> view;
};
std::vector<Layout> unary_layouts(DType d) {
  auto id = [](const Array& a) { return a; };
  std::vector<Layout> l = {
      {"rank0", {}, id},
      {"zero", {0}, id},
      {"zero3d", {2, 0, 3}, id},
      {"37", {37}, id},
      {"1031", {1031}, id},
      {"3x37", {3, 37}, id},
      {"transposed", {5, 7}, transposed_view},
      {"reversed", {37}, reversed_view},
      {"step2", {75}, step2_view},
  };
  // Enough elements for several parallel chunks, on a couple of dtypes to keep the test fast.
  if (d == DType::Float32 || d == DType::Int32) l.push_back({"70001", {70001}, id});
  return l;
}

std::string trace(const char* op, DType d, const std::string& layout, uint64_t seed) {
  return str(op, " ", dtype_name(d), " ", layout, " seed=", seed);
}

// ------------------------------------------------------------------------------------------
// Unary
// ------------------------------------------------------------------------------------------
enum class OutKind { Same, Float, Bool };

struct UnaryCase {
  const char* name;
  std::function<double(double)> ref;
  double lo, hi;
  OutKind out;
  bool transcendental;
  Attrs attrs = {};
};

double erf_ref(double x) { return std::erf(x); }
double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<UnaryCase> unary_cases() {
  Attrs gelu_tanh;
  gelu_tanh.set("approximate", std::string("tanh"));
  const double pi = 3.14159265358979323846;
  return {
      {"neg", [](double x) { return -x; }, -20, 20, OutKind::Same, false},
      {"abs", [](double x) { return std::fabs(x); }, -20, 20, OutKind::Same, false},
      {"sign", [](double x) { return x > 0   ? 1.0
                                     : x < 0 ? -1.0
                                             : 0.0; }, -3, 3, OutKind::Same,
       false},
      {"relu", [](double x) { return x > 0 ? x : 0.0; }, -20, 20, OutKind::Same, false},
      {"floor", [](double x) { return std::floor(x); }, -5, 5, OutKind::Same, false},
      {"ceil", [](double x) { return std::ceil(x); }, -5, 5, OutKind::Same, false},
      // Half to even, written without nearbyint: nearest, ties to the even neighbour.
      {"round",
       [](double x) {
         double f = std::floor(x), d = x - f;
         if (d > 0.5) return f + 1;
         if (d < 0.5) return f;
         return std::fmod(f, 2.0) == 0 ? f : f + 1;
       },
       -5, 5, OutKind::Same, false},
      {"exp", [](double x) { return std::exp(x); }, -3, 3, OutKind::Float, true},
      {"log", [](double x) { return std::log(x); }, 0.1, 5, OutKind::Float, true},
      {"sqrt", [](double x) { return std::sqrt(x); }, 0, 5, OutKind::Float, true},
      {"rsqrt", [](double x) { return 1 / std::sqrt(x); }, 0.1, 5, OutKind::Float, true},
      {"reciprocal", [](double x) { return 1 / x; }, 0.5, 3, OutKind::Float, true},
      {"tanh", [](double x) { return std::tanh(x); }, -3, 3, OutKind::Float, true},
      {"sigmoid", sigmoid_ref, -6, 6, OutKind::Float, true},
      {"silu", [](double x) { return x * sigmoid_ref(x); }, -6, 6, OutKind::Float, true},
      {"erf", erf_ref, -3, 3, OutKind::Float, true},
      {"sin", [](double x) { return std::sin(x); }, -4, 4, OutKind::Float, true},
      {"cos", [](double x) { return std::cos(x); }, -4, 4, OutKind::Float, true},
      {"gelu", [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, -4, 4,
       OutKind::Float, true},
      {"gelu",
       [pi](double x) {
         return 0.5 * x * (1 + std::tanh(std::sqrt(2 / pi) * (x + 0.044715 * x * x * x)));
       },
       -4, 4, OutKind::Float, true, gelu_tanh},
      {"logical_not", [](double x) { return x == 0 ? 1.0 : 0.0; }, -2, 2, OutKind::Bool, false},
  };
}

TEST(ElementwiseUnary, AllOpsDTypesLayouts) {
  uint64_t seed = 1000;
  int runs = 0;
  for (const UnaryCase& c : unary_cases()) {
    for (DType d : kAllDTypes) {
      bool valid = !(c.out == OutKind::Same && d == DType::Bool);
      if (!valid) continue;
      DType out_dtype = c.out == OutKind::Same   ? d
                        : c.out == OutKind::Bool ? DType::Bool
                                                 : to_floating(d);
      // Ops like round are only interesting on fractions; floats get a continuous range.
      bool int_valued = c.out == OutKind::Bool;  // logical_not needs exact zeros
      for (const Layout& l : unary_layouts(d)) {
        ++seed;
        SCOPED_TRACE(trace(c.name, d, l.name, seed));
        std::mt19937_64 rng(seed);
        Array x = l.view(gen(l.gen_shape, d, rng, c.lo, c.hi, int_valued));
        Array out = run_kernel(c.name, {x}, c.attrs);
        ASSERT_EQ(out.shape, x.shape);
        ASSERT_EQ(out.dtype, out_dtype);
        std::vector<double> xv = to_doubles(x), want(xv.size());
        for (size_t i = 0; i < xv.size(); ++i) {
          double r = c.ref(xv[i]);
          want[i] = is_floating(out_dtype) ? r : wrap_to(r, out_dtype);
        }
        expect_values(out, want, tol_for(out_dtype, c.transcendental));
        ++runs;
      }
    }
  }
  EXPECT_GT(runs, 1000);
}

TEST(ElementwiseUnary, EdgeValues) {
  auto f64 = [](std::vector<double> v) {
    Array a = Array::empty({int64_t(v.size())}, DType::Float64);
    for (size_t i = 0; i < v.size(); ++i) a.data_as<double>()[i] = v[i];
    return a;
  };
  // round: half to even.
  expect_values(run_kernel("round", {f64({0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999})}),
                {0, 2, 2, -0.0, -2, -2, 2}, {0, 0});
  // sign of NaN is NaN; relu, maximum-like ops propagate NaN.
  std::vector<double> s = to_doubles(run_kernel("sign", {f64({kNaN, -0.0, 3, -kInf})}));
  EXPECT_TRUE(std::isnan(s[0]));
  EXPECT_EQ(s[1], 0);
  EXPECT_EQ(s[2], 1);
  EXPECT_EQ(s[3], -1);
  EXPECT_TRUE(std::isnan(to_doubles(run_kernel("relu", {f64({kNaN})}))[0]));
  // Large negative inputs must not produce NaN through exp overflow.
  expect_values(run_kernel("sigmoid", {f64({-800, 800})}), {0, 1}, {0, 1e-300});
  expect_values(run_kernel("silu", {f64({-800, 800})}), {0, 800}, {0, 1e-300});
  // neg/abs of INT_MIN wrap like numpy instead of being undefined behaviour.
  Array i32 = Array::empty({3}, DType::Int32);
  i32.data_as<int32_t>()[0] = std::numeric_limits<int32_t>::min();
  i32.data_as<int32_t>()[1] = -5;
  i32.data_as<int32_t>()[2] = 7;
  expect_values(run_kernel("neg", {i32}), {-2147483648.0, 5, -7}, {0, 0});
  expect_values(run_kernel("abs", {i32}), {-2147483648.0, 5, 7}, {0, 0});
  // uint8 neg wraps.
  Array u8 = Array::empty({2}, DType::UInt8);
  u8.data_as<uint8_t>()[0] = 3;
  u8.data_as<uint8_t>()[1] = 0;
  expect_values(run_kernel("neg", {u8}), {253, 0}, {0, 0});
}

// ------------------------------------------------------------------------------------------
// Binary
// ------------------------------------------------------------------------------------------
enum class BinKind { Promote, Div, Bool };

double int_pow(double a, double b) {
  if (b < 0) return a == 1 ? 1 : a == -1 ? (std::fmod(-b, 2.0) == 1 ? -1 : 1) : 0;
  double r = 1;
  for (int i = 0; i < int(b); ++i) r *= a;
  return r;
}

struct BinaryCase {
  const char* name;
  // Reference on exact input values; `d` is the dtype the op computes in (promoted).
  std::function<double(double, double, DType)> ref;
  double alo, ahi, blo, bhi;
  BinKind kind;
  bool bool_ok;
  bool int_valued = false;  // whole-number float inputs (comparisons need ties)
  bool transcendental = false;
};

std::vector<BinaryCase> binary_cases() {
  auto nan_max = [](double a, double b, DType) {
    return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b);
  };
  auto nan_min = [](double a, double b, DType) {
    return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b);
  };
  auto b2 = [](bool v) { return v ? 1.0 : 0.0; };
  return {
      {"add", [=](double a, double b, DType d) { return d == DType::Bool ? b2(a || b) : a + b; },
       -100, 100, -100, 100, BinKind::Promote, true},
      {"sub", [](double a, double b, DType) { return a - b; }, -100, 100, -100, 100,
       BinKind::Promote, false},
      {"mul", [=](double a, double b, DType d) { return d == DType::Bool ? b2(a && b) : a * b; },
       -30, 30, -30, 30, BinKind::Promote, true},
      {"div", [](double a, double b, DType) { return a / b; }, -4, 4, 0.5, 3, BinKind::Div, true},
      {"maximum", nan_max, -50, 50, -50, 50, BinKind::Promote, true},
      {"minimum", nan_min, -50, 50, -50, 50, BinKind::Promote, true},
      {"mod",
       [](double a, double b, DType d) {
         if (!is_floating(d)) {
           if (b == 0) return 0.0;
           auto ia = int64_t(a), ib = int64_t(b);
           return double(((ia % ib) + ib) % ib);
         }
         return a - std::floor(a / b) * b;
       },
       -20, 20, -6, 6, BinKind::Promote, false},
      {"floor_divide",
       [](double a, double b, DType d) {
         if (b == 0) return is_floating(d) ? a / b : 0.0;
         return std::floor(a / b);
       },
       -20, 20, -6, 6, BinKind::Promote, false},
      {"pow",
       [](double a, double b, DType d) { return is_floating(d) ? std::pow(a, b) : int_pow(a, b); },
       0.2, 3, -2, 5, BinKind::Promote, false, false, true},
      {"equal", [=](double a, double b, DType) { return b2(a == b); }, -3, 3, -3, 3, BinKind::Bool,
       true, true},
      {"not_equal", [=](double a, double b, DType) { return b2(a != b); }, -3, 3, -3, 3,
       BinKind::Bool, true, true},
      {"less", [=](double a, double b, DType) { return b2(a < b); }, -3, 3, -3, 3, BinKind::Bool,
       true, true},
      {"less_equal", [=](double a, double b, DType) { return b2(a <= b); }, -3, 3, -3, 3,
       BinKind::Bool, true, true},
      {"greater", [=](double a, double b, DType) { return b2(a > b); }, -3, 3, -3, 3, BinKind::Bool,
       true, true},
      {"greater_equal", [=](double a, double b, DType) { return b2(a >= b); }, -3, 3, -3, 3,
       BinKind::Bool, true, true},
      {"logical_and", [=](double a, double b, DType) { return b2(a != 0 && b != 0); }, -1, 1, -1, 1,
       BinKind::Bool, true, true},
      {"logical_or", [=](double a, double b, DType) { return b2(a != 0 || b != 0); }, -1, 1, -1, 1,
       BinKind::Bool, true, true},
  };
}

struct BinLayout {
  const char* name;
  Shape a_shape, b_shape;
  std::function<Array(const Array&)> a_view, b_view;
};
std::vector<BinLayout> binary_layouts(DType d) {
  auto id = [](const Array& a) { return a; };
  std::vector<BinLayout> l = {
      {"rank0", {}, {}, id, id},
      {"zero", {0}, {0}, id, id},
      {"zero_bcast", {2, 0, 3}, {3}, id, id},
      {"37", {37}, {37}, id, id},
      {"1031", {1031}, {1031}, id, id},
      {"tensor_scalar", {37}, {}, id, id},
      {"scalar_tensor", {}, {1031}, id, id},
      {"bcast_3x1x5_4x1", {3, 1, 5}, {4, 1}, id, id},
      {"bcast_4x1_1x6", {4, 1}, {1, 6}, id, id},
      {"transposed_row", {5, 7}, {5}, transposed_view, id},
      {"reversed_step2", {37}, {73}, reversed_view, step2_view},
      {"transposed_both", {6, 4}, {6, 4}, transposed_view, transposed_view},
  };
  if (d == DType::Float32 || d == DType::Int32) {
    l.push_back({"70001", {70001}, {70001}, id, id});
    l.push_back({"bcast_big", {300, 1}, {257}, id, id});
  }
  return l;
}

TEST(ElementwiseBinary, AllOpsDTypesLayouts) {
  uint64_t seed = 5000;
  int runs = 0;
  for (const BinaryCase& c : binary_cases()) {
    for (DType d : kAllDTypes) {
      if (d == DType::Bool && !c.bool_ok) continue;
      DType out_dtype = c.kind == BinKind::Bool  ? DType::Bool
                        : c.kind == BinKind::Div ? to_floating(d)
                                                 : d;
      for (const BinLayout& l : binary_layouts(d)) {
        ++seed;
        SCOPED_TRACE(trace(c.name, d, l.name, seed));
        std::mt19937_64 rng(seed);
        // Integer pow needs small non-negative-ish bases to stay exact; div on ints keeps b > 0.
        double alo = c.alo, ahi = c.ahi, blo = c.blo, bhi = c.bhi;
        if (!is_floating(d) && std::string(c.name) == "pow") alo = -3, ahi = 3, blo = -2, bhi = 5;
        if (!is_floating(d) && std::string(c.name) == "div") blo = 1;
        Array a = l.a_view(gen(l.a_shape, d, rng, alo, ahi, c.int_valued));
        Array b = l.b_view(gen(l.b_shape, d, rng, blo, bhi, c.int_valued));
        Array out = run_kernel(c.name, {a, b});
        Shape os = bshape(a.shape, b.shape);
        ASSERT_EQ(out.shape, os);
        ASSERT_EQ(out.dtype, out_dtype);
        std::vector<double> av = to_doubles(a), bv = to_doubles(b), want(numel(os));
        for (int64_t i = 0; i < numel(os); ++i) {
          double r = c.ref(bvalue(av, a.shape, os, i), bvalue(bv, b.shape, os, i), d);
          want[i] = is_floating(out_dtype) ? r : wrap_to(r, out_dtype);
        }
        expect_values(out, want, tol_for(out_dtype, c.transcendental));
        ++runs;
      }
    }
  }
  EXPECT_GT(runs, 1000);
}

// Operands of different dtypes: promotion, then the same math.
TEST(ElementwiseBinary, MixedDTypes) {
  struct Pair {
    DType a, b, out;
  };
  std::vector<Pair> pairs = {{DType::Int8, DType::UInt8, DType::Int16},
                             {DType::UInt16, DType::Int8, DType::Int32},
                             {DType::UInt32, DType::Int32, DType::Int64},
                             {DType::UInt64, DType::Int64, DType::Float64},
                             {DType::Int16, DType::Float16, DType::Float32},
                             {DType::Int32, DType::Float32, DType::Float64},
                             {DType::Float16, DType::BFloat16, DType::Float32},
                             {DType::Bool, DType::Int8, DType::Int8},
                             {DType::UInt8, DType::Float16, DType::Float16},
                             {DType::Float32, DType::Float64, DType::Float64}};
  uint64_t seed = 9000;
  for (const Pair& p : pairs) {
    for (const char* op : {"add", "mul", "less", "div"}) {
      ++seed;
      SCOPED_TRACE(str(op, " ", dtype_name(p.a), "+", dtype_name(p.b), " seed=", seed));
      std::mt19937_64 rng(seed);
      Array a = gen({3, 1, 5}, p.a, rng, -5, 5, true);
      Array b = gen({4, 1}, p.b, rng, 1, 5, true);
      Array out = run_kernel(op, {a, b});
      std::string o = op;
      DType want_dtype = o == "less" ? DType::Bool : o == "div" ? to_floating(p.out) : p.out;
      ASSERT_EQ(out.dtype, want_dtype);
      Shape os{3, 4, 5};
      std::vector<double> av = to_doubles(a), bv = to_doubles(b), want(60);
      for (int64_t i = 0; i < 60; ++i) {
        double x = bvalue(av, a.shape, os, i), y = bvalue(bv, b.shape, os, i);
        want[i] = o == "add" ? x + y : o == "mul" ? x * y : o == "less" ? double(x < y) : x / y;
      }
      expect_values(out, want, tol_for(want_dtype, false));
    }
  }
}

Array make_i32(std::vector<int64_t> v) {
  Array a = Array::empty({int64_t(v.size())}, DType::Int32);
  for (size_t i = 0; i < v.size(); ++i) a.data_as<int32_t>()[i] = int32_t(v[i]);
  return a;
}
Array make_f32(std::vector<double> v) {
  Array a = Array::empty({int64_t(v.size())}, DType::Float32);
  for (size_t i = 0; i < v.size(); ++i) a.data_as<float>()[i] = float(v[i]);
  return a;
}

TEST(ElementwiseBinary, IntegerEdgeCases) {
  const int64_t imin = std::numeric_limits<int32_t>::min();
  // numpy mod: divisor's sign, x % 0 = 0, INT_MIN % -1 = 0 (no trap).
  expect_values(run_kernel("mod", {make_i32({-7, 7, 7, -7, 5, imin, imin, 0}),
                                   make_i32({3, -3, 0, -3, 5, -1, 7, -4})}),
                {2, -2, 0, -1, 0, 0, double(((imin % 7) + 7) % 7), 0}, {0, 0});
  // numpy floor_divide: rounds toward -inf, x // 0 = 0, INT_MIN // -1 = INT_MIN (no trap).
  expect_values(run_kernel("floor_divide", {make_i32({-7, 7, 7, -7, 6, imin, imin, 0, -1}),
                                            make_i32({2, -2, 0, -2, 3, -1, 7, -4, 5})}),
                {-4, -4, 0, 3, 2, double(imin), double(imin / 7 - 1), 0, -1}, {0, 0});
  // Integer pow: negative exponents give 0 unless the base is +-1; overflow wraps.
  expect_values(run_kernel("pow", {make_i32({2, 1, -1, -1, 3, 0, 2, -2}),
                                   make_i32({-1, -5, -3, -4, 4, 0, 31, 3})}),
                {0, 1, -1, 1, 81, 1, -2147483648.0, -8}, {0, 0});
  // Signed overflow wraps instead of being undefined behaviour.
  expect_values(run_kernel("add", {make_i32({2147483647}), make_i32({1})}), {-2147483648.0},
                {0, 0});
  expect_values(run_kernel("mul", {make_i32({65536}), make_i32({65536})}), {0}, {0, 0});
  // int / int is true division in float32.
  Array q = run_kernel("div", {make_i32({7, -7, 1, 0}), make_i32({2, 2, 0, 0})});
  EXPECT_EQ(q.dtype, DType::Float32);
  std::vector<double> qv = to_doubles(q);
  EXPECT_EQ(qv[0], 3.5);
  EXPECT_EQ(qv[1], -3.5);
  EXPECT_EQ(qv[2], kInf);
  EXPECT_TRUE(std::isnan(qv[3]));
}

TEST(ElementwiseBinary, FloatEdgeCases) {
  // Float mod follows the divisor's sign.
  expect_values(run_kernel("mod", {make_f32({-7.5, 7.5, 6, -6}), make_f32({2, -2, 3, 3})}),
                {0.5, -0.5, 0, 0}, {0, 0});
  // Float floor_divide follows numpy's divmod: 1 // 0.1 is 9 (fmod(1, 0.1) = 0.0999...), a
  // quotient of zero keeps the sign of a / b, x // 0 is a / 0, infinities give NaN or -1.
  {
    std::vector<double> v =
        to_doubles(run_kernel("floor_divide", {make_f32({1, 0, -0.5, 1, -1, 0, kInf, -1, 1}),
                                               make_f32({0.1f, -1, 2, 0, 0, 0, 1, kInf, kInf})}));
    EXPECT_EQ(v[0], 9.0);
    EXPECT_EQ(v[1], 0.0);
    EXPECT_TRUE(std::signbit(v[1]));
    EXPECT_EQ(v[2], -1.0);
    EXPECT_EQ(v[3], kInf);
    EXPECT_EQ(v[4], -kInf);
    EXPECT_TRUE(std::isnan(v[5]));
    EXPECT_TRUE(std::isnan(v[6]));
    EXPECT_EQ(v[7], -1.0);
    EXPECT_EQ(v[8], 0.0);
    EXPECT_FALSE(std::signbit(v[8]));
  }
  // maximum/minimum propagate NaN from either side.
  for (const char* op : {"maximum", "minimum"}) {
    std::vector<double> v =
        to_doubles(run_kernel(op, {make_f32({kNaN, 1, kNaN}), make_f32({1, kNaN, kNaN})}));
    for (double x : v) EXPECT_TRUE(std::isnan(x)) << op;
  }
  // Comparisons with NaN: only not_equal is true.
  expect_values(run_kernel("equal", {make_f32({kNaN}), make_f32({kNaN})}), {0}, {0, 0});
  expect_values(run_kernel("not_equal", {make_f32({kNaN}), make_f32({kNaN})}), {1}, {0, 0});
  expect_values(run_kernel("less", {make_f32({kNaN}), make_f32({1})}), {0}, {0, 0});
}

// ------------------------------------------------------------------------------------------
// where, clip
// ------------------------------------------------------------------------------------------
TEST(ElementwiseSelect, WhereAllDTypes) {
  uint64_t seed = 12000;
  struct L {
    const char* name;
    Shape c, a, b;
  };
  std::vector<L> layouts = {{"rank0", {}, {}, {}},
                            {"1031", {1031}, {1031}, {1031}},
                            {"bcast", {3, 1, 5}, {4, 1}, {}},
                            {"bcast2", {4, 1}, {}, {3, 1, 5}},
                            {"zero", {0, 3}, {3}, {}}};
  for (DType d : kAllDTypes) {
    for (DType cd : {DType::Bool, DType::Float32, DType::Int8}) {
      for (const L& l : layouts) {
        ++seed;
        SCOPED_TRACE(
            str("where ", dtype_name(d), " cond ", dtype_name(cd), " ", l.name, " seed=", seed));
        std::mt19937_64 rng(seed);
        Array c = gen(l.c, cd, rng, -1, 1, true);
        Array a = gen(l.a, d, rng, -50, 50);
        Array b = gen(l.b, d, rng, -50, 50);
        Array out = run_kernel("where", {c, a, b});
        Shape os = bshape(bshape(l.c, l.a), l.b);
        ASSERT_EQ(out.shape, os);
        ASSERT_EQ(out.dtype, d);
        auto cv = to_doubles(c), av = to_doubles(a), bv = to_doubles(b);
        std::vector<double> want(numel(os));
        for (int64_t i = 0; i < numel(os); ++i)
          want[i] = bvalue(cv, l.c, os, i) != 0 ? bvalue(av, l.a, os, i) : bvalue(bv, l.b, os, i);
        expect_values(out, want, {0, 0});  // selection is exact
      }
    }
  }
  // Non-contiguous condition and values.
  std::mt19937_64 rng(12999);
  SCOPED_TRACE("where strided seed=12999");
  Array c = transposed_view(gen({5, 7}, DType::Bool, rng, 0, 1));
  Array a = transposed_view(gen({5, 7}, DType::Float32, rng, -1, 1));
  Array b = gen({5}, DType::Float32, rng, -1, 1);
  Array out = run_kernel("where", {c, a, b});
  auto cv = to_doubles(c), av = to_doubles(a), bv = to_doubles(b);
  std::vector<double> want(35);
  for (int64_t i = 0; i < 35; ++i) want[i] = cv[i] != 0 ? av[i] : bv[i % 5];
  expect_values(out, want, {0, 0});
}

TEST(ElementwiseSelect, ClipAllDTypes) {
  uint64_t seed = 15000;
  for (DType d : kAllDTypes) {
    for (int variant = 0; variant < 4; ++variant) {
      ++seed;
      SCOPED_TRACE(str("clip ", dtype_name(d), " variant ", variant, " seed=", seed));
      std::mt19937_64 rng(seed);
      Shape xs = variant == 0   ? Shape{1031}
                 : variant == 1 ? Shape{3, 1, 5}
                 : variant == 2 ? Shape{}
                                : Shape{0, 4};
      Shape ls = variant == 1 ? Shape{4, 1} : Shape{};
      Shape hs = variant == 1 ? Shape{5} : Shape{};
      Array x = gen(xs, d, rng, -40, 40);
      Array lo = gen(ls, d, rng, -20, -5);
      Array hi = gen(hs, d, rng, 5, 20);
      Array out = run_kernel("clip", {x, lo, hi});
      Shape os = bshape(bshape(xs, ls), hs);
      ASSERT_EQ(out.shape, os);
      ASSERT_EQ(out.dtype, d);
      auto xv = to_doubles(x), lv = to_doubles(lo), hv = to_doubles(hi);
      std::vector<double> want(numel(os));
      for (int64_t i = 0; i < numel(os); ++i)
        want[i] =
            std::min(std::max(bvalue(xv, xs, os, i), bvalue(lv, ls, os, i)), bvalue(hv, hs, os, i));
      expect_values(out, want, {0, 0});
    }
  }
  // NaN propagates; non-contiguous x.
  expect_values(run_kernel("clip", {make_f32({kNaN, -5, 5, 0.5}), make_f32({-1}), make_f32({1})}),
                {kNaN, -1, 1, 0.5}, {0, 0});
  Array x = reversed_view(make_f32({1, 2, 3, 4, 5}));
  expect_values(run_kernel("clip", {x, make_f32({2}), make_f32({4})}), {4, 4, 3, 2, 2}, {0, 0});
}

// ------------------------------------------------------------------------------------------
// cast
// ------------------------------------------------------------------------------------------
// numpy astype, with saturation for float -> int (NaN -> 0).
double cast_ref(double v, DType from, DType to) {
  if (to == DType::Bool) return v != 0 || std::isnan(v) ? 1 : 0;
  if (is_floating(to)) return v;
  if (is_floating(from)) {
    if (std::isnan(v)) return 0;
    double t = std::trunc(v);
    // The integer range of `to` as doubles (int64/uint64 maxima round up to 2^63 / 2^64).
    const int bits = int(dtype_size(to)) * 8;
    const double lo = is_signed(to) ? -std::ldexp(1.0, bits - 1) : 0.0;
    const double hi = std::ldexp(1.0, is_signed(to) ? bits - 1 : bits) - 1.0;
    return std::min(std::max(t, lo), hi);
  }
  return wrap_to(v, to);
}

TEST(ElementwiseCast, AllPairs) {
  uint64_t seed = 20000;
  int runs = 0;
  for (DType from : kAllDTypes) {
    for (DType to : kAllDTypes) {
      for (const Layout& l : unary_layouts(DType::Float64)) {
        ++seed;
        SCOPED_TRACE(
            str("cast ", dtype_name(from), "->", dtype_name(to), " ", l.name, " seed=", seed));
        std::mt19937_64 rng(seed);
        Array x = l.view(gen(l.gen_shape, from, rng, -300, 300));
        Attrs attrs;
        attrs.set("dtype", std::string(dtype_name(to)));
        Array out = run_kernel("cast", {x}, attrs);
        ASSERT_EQ(out.dtype, to);
        ASSERT_EQ(out.shape, x.shape);
        auto xv = to_doubles(x);
        std::vector<double> want(xv.size());
        for (size_t i = 0; i < xv.size(); ++i) want[i] = cast_ref(xv[i], from, to);
        expect_values(out, want, tol_for(to, false));
        ++runs;
      }
    }
  }
  EXPECT_EQ(runs, int(kAllDTypes.size() * kAllDTypes.size()) * 9);
}

TEST(ElementwiseCast, SaturationAndNaN) {
  Array f = Array::empty({8}, DType::Float64);
  double vals[] = {kNaN, kInf, -kInf, 1e20, -1e20, 9223372036854775808.0, -2.9, 2.9};
  for (int i = 0; i < 8; ++i) f.data_as<double>()[i] = vals[i];
  for (DType to : {DType::Int8, DType::UInt8, DType::Int16, DType::UInt16, DType::Int32,
                   DType::UInt32, DType::Int64, DType::UInt64, DType::Bool}) {
    SCOPED_TRACE(dtype_name(to));
    Attrs attrs;
    attrs.set("dtype", std::string(dtype_name(to)));
    Array out = run_kernel("cast", {f}, attrs);
    std::vector<double> want;
    for (double v : vals) want.push_back(cast_ref(v, DType::Float64, to));
    // int64 limits are not exact doubles: compare the stored integers directly.
    if (to == DType::Int64) {
      const int64_t* p = out.data_as<int64_t>();
      EXPECT_EQ(p[0], 0);
      EXPECT_EQ(p[1], std::numeric_limits<int64_t>::max());
      EXPECT_EQ(p[2], std::numeric_limits<int64_t>::min());
      EXPECT_EQ(p[5], std::numeric_limits<int64_t>::max());
      EXPECT_EQ(p[6], -2);
      EXPECT_EQ(p[7], 2);
    } else {
      expect_values(out, want, {0, 0});
    }
  }
  // Half-precision sources saturate the same way.
  std::mt19937_64 rng(20999);
  Array h = random_array({4}, DType::Float16, rng);
  h.data_as<float16_t>()[0] = to_float16(60000.f);
  h.data_as<float16_t>()[1] = to_float16(-60000.f);
  Attrs a8;
  a8.set("dtype", std::string("int8"));
  std::vector<double> hv = to_doubles(run_kernel("cast", {h}, a8));
  EXPECT_EQ(hv[0], 127);
  EXPECT_EQ(hv[1], -128);
}

// ------------------------------------------------------------------------------------------
// Inference: promotion, weak scalars, errors, traits
// ------------------------------------------------------------------------------------------
TensorType infer(const char* op, std::vector<TensorType> in, Attrs attrs = {}) {
  return ir::check_and_infer(ir::get_op(op), in, attrs);
}

TEST(ElementwiseInfer, WeakScalarPromotion) {
  TensorType i32{{3}, DType::Int32}, f16{{3}, DType::Float16}, i8{{3}, DType::Int8},
      bl{{3}, DType::Bool};
  TensorType wf64{{}, DType::Float64, true}, wf32{{}, DType::Float32, true},
      wi64{{}, DType::Int64, true};
  EXPECT_EQ(infer("add", {i32, wf64}).dtype, DType::Float32);
  EXPECT_EQ(infer("add", {wf32, i32}).dtype, DType::Float32);
  EXPECT_EQ(infer("mul", {f16, wf64}).dtype, DType::Float16);
  EXPECT_EQ(infer("add", {i8, wi64}).dtype, DType::Int8);
  EXPECT_EQ(infer("sub", {wi64, i8}).dtype, DType::Int8);
  EXPECT_EQ(infer("add", {bl, wi64}).dtype, DType::Int64);
  EXPECT_EQ(infer("maximum", {i8, wf64}).dtype, DType::Float32);
  // Without the weak flag numpy's table applies.
  EXPECT_EQ(infer("add", {i8, TensorType{{}, DType::Int64}}).dtype, DType::Int64);
  EXPECT_EQ(infer("add", {f16, TensorType{{}, DType::Float64}}).dtype, DType::Float64);
  // Two weak operands: the table.
  EXPECT_EQ(infer("add", {wi64, wf64}).dtype, DType::Float64);
  // div of a weak int with an int tensor is still float32; where/clip fold all value operands.
  EXPECT_EQ(infer("div", {i8, wi64}).dtype, DType::Float32);
  EXPECT_EQ(infer("where", {bl, i8, wi64}).dtype, DType::Int8);
  EXPECT_EQ(infer("where", {bl, f16, wf64}).dtype, DType::Float16);
  EXPECT_EQ(infer("clip", {i8, wi64, wi64}).dtype, DType::Int8);
  EXPECT_EQ(infer("clip", {i32, wf64, wi64}).dtype, DType::Float32);
}

TEST(ElementwiseInfer, WeakScalarKernelRun) {
  // int8 tensor + weak int64 scalar: int8 result, the scalar converted to int8 in the kernel.
  std::mt19937_64 rng(30000);
  SCOPED_TRACE("seed=30000");
  Array x = gen({37}, DType::Int8, rng, -50, 50);
  Array s = Array::empty({}, DType::Int64);
  s.data_as<int64_t>()[0] = 100;
  std::vector<TensorType> types = {{x.shape, x.dtype}, {s.shape, s.dtype, true}};
  Attrs attrs;
  ir::Node node;
  node.op = &ir::get_op("add");
  node.type = ir::check_and_infer(*node.op, types, attrs);
  ASSERT_EQ(node.type.dtype, DType::Int8);
  Array out = Array::empty(node.type.shape, node.type.dtype);
  std::vector<Array> ins = {x, s};
  Array workspace;
  backend::KernelArgs args{ins, out, node.attrs, node, workspace};
  backend::cpu::kernel_table().find("add")->fn(args);
  auto xv = to_doubles(x);
  std::vector<double> want;
  for (double v : xv) want.push_back(wrap_to(v + 100, DType::Int8));
  expect_values(out, want, {0, 0});
}

TEST(ElementwiseInfer, OutputDTypes) {
  TensorType i32{{2}, DType::Int32}, bf{{2}, DType::BFloat16}, f64{{2}, DType::Float64};
  EXPECT_EQ(infer("exp", {i32}).dtype, DType::Float32);
  EXPECT_EQ(infer("exp", {bf}).dtype, DType::BFloat16);
  EXPECT_EQ(infer("sqrt", {f64}).dtype, DType::Float64);
  EXPECT_EQ(infer("neg", {i32}).dtype, DType::Int32);
  EXPECT_EQ(infer("div", {i32, i32}).dtype, DType::Float32);
  EXPECT_EQ(infer("less", {i32, bf}).dtype, DType::Bool);
  EXPECT_EQ(infer("logical_not", {f64}).dtype, DType::Bool);
  EXPECT_EQ(
      infer("add", {TensorType{{3, 1, 5}, DType::Int8}, TensorType{{4, 1}, DType::UInt8}}).shape,
      (Shape{3, 4, 5}));
  Attrs a;
  a.set("dtype", std::string("bfloat16"));
  EXPECT_EQ(infer("cast", {i32}, a).dtype, DType::BFloat16);
  // gelu's default attribute is filled in.
  Attrs g;
  ir::check_and_infer(ir::get_op("gelu"), {f64}, g);
  EXPECT_EQ(g.get_string("approximate"), "none");
}

template <typename E>
void expect_throw_containing(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception containing " << needle;
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(ElementwiseInfer, Errors) {
  TensorType a{{2, 3}, DType::Float32}, b{{4}, DType::Float32}, bl{{2}, DType::Bool};
  expect_throw_containing<ShapeError>([&] { infer("add", {a, b}); }, "[add]");
  expect_throw_containing<ShapeError>([&] { infer("add", {a, b}); }, "(2, 3)");
  expect_throw_containing<ShapeError>([&] { infer("where", {bl, a, b}); }, "[where]");
  expect_throw_containing<TypeError>([&] { infer("sub", {bl, bl}); }, "[sub]");
  expect_throw_containing<TypeError>([&] { infer("neg", {bl}); }, "[neg]");
  expect_throw_containing<TypeError>([&] { infer("mod", {bl, bl}); }, "[mod]");
  EXPECT_NO_THROW(infer("sub", {bl, TensorType{{2}, DType::Int8}}));
  EXPECT_NO_THROW(infer("add", {bl, bl}));
  expect_throw_containing<ValidationError>([&] { infer("add", {a}); }, "[add]");
  expect_throw_containing<ValidationError>([&] { infer("neg", {a, a}); }, "[neg]");
  expect_throw_containing<ValidationError>([&] { infer("where", {bl, a}); }, "[where]");
  expect_throw_containing<ValidationError>([&] { infer("clip", {a}); }, "[clip]");
  Attrs bad;
  bad.set("approximate", std::string("fast"));
  expect_throw_containing<ValidationError>([&] { infer("gelu", {a}, bad); }, "[gelu]");
  Attrs wrong_type;
  wrong_type.set("approximate", int64_t(1));
  EXPECT_THROW(infer("gelu", {a}, wrong_type), ValidationError);
  expect_throw_containing<ValidationError>([&] { infer("cast", {a}); }, "[cast]");
  Attrs unknown;
  unknown.set("dtype", std::string("float128"));
  expect_throw_containing<ValidationError>([&] { infer("cast", {a}, unknown); }, "float128");
  // The same errors surface when going through the kernel helper.
  EXPECT_THROW(
      run_kernel("add", {Array::empty({2, 3}, DType::Float32), Array::empty({4}, DType::Float32)}),
      ShapeError);
}

TEST(ElementwiseInfer, TraitsAndCost) {
  for (const char* n :
       {"neg",        "abs",       "exp",  "log",        "sqrt",    "rsqrt",         "reciprocal",
        "tanh",       "sigmoid",   "relu", "gelu",       "silu",    "erf",           "sin",
        "cos",        "floor",     "ceil", "round",      "sign",    "logical_not",   "add",
        "sub",        "mul",       "div",  "pow",        "maximum", "minimum",       "mod",
        "equal",      "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
        "logical_or", "where",     "clip", "cast"}) {
    SCOPED_TRACE(n);
    const ir::OpDef* op = ir::find_op(n);
    ASSERT_NE(op, nullptr);
    EXPECT_TRUE(op->has(ir::kElementwise));
    EXPECT_TRUE(op->has(ir::kFusable));
    EXPECT_GT(op->flops_per_element, 0);
    EXPECT_NE(backend::cpu::kernel_table().find(n), nullptr);
  }
  EXPECT_GT(ir::get_op("exp").flops_per_element, ir::get_op("add").flops_per_element);
  // floor_divide is elementwise, but fused programs have no instruction for it.
  const ir::OpDef& fd = ir::get_op("floor_divide");
  EXPECT_TRUE(fd.has(ir::kElementwise));
  EXPECT_FALSE(fd.has(ir::kFusable));
  EXPECT_NE(backend::cpu::kernel_table().find("floor_divide"), nullptr);
}

// bitcast: the output's bytes are the input's, element by element, for every same-size pair
// and a reversed (strided) input; bool results are 0/1; other sizes are a TypeError.
TEST(ElementwiseBitcast, SameSizePairsAndErrors) {
  uint64_t seed = 21000;
  for (DType from : kAllDTypes) {
    for (DType to : kAllDTypes) {
      Attrs attrs;
      attrs.set("dtype", std::string(dtype_name(to)));
      if (dtype_size(from) != dtype_size(to)) {
        EXPECT_THROW(infer("bitcast", {TensorType{{3}, from}}, attrs), TypeError);
        continue;
      }
      ++seed;
      SCOPED_TRACE(str("bitcast ", dtype_name(from), "->", dtype_name(to), " seed=", seed));
      std::mt19937_64 rng(seed);
      // Any bytes for numbers (NaN patterns included); bools must hold 0/1.
      Array x = Array::empty({7}, from);
      auto* xb = static_cast<uint8_t*>(x.data());
      for (int64_t i = 0; i < int64_t(x.nbytes()); ++i)
        xb[i] = from == DType::Bool ? uint8_t(rng() & 1) : uint8_t(rng());
      x = reversed_view(x);
      Array out = run_kernel("bitcast", {x}, attrs);
      ASSERT_EQ(out.dtype, to);
      const size_t sz = dtype_size(to);
      for (int64_t i = 0; i < 7; ++i) {
        const auto* src = static_cast<const uint8_t*>(x.storage->data()) +
                          (x.offset + i * x.strides[0]) * int64_t(sz);
        const auto* dst = static_cast<const uint8_t*>(out.data()) + i * int64_t(sz);
        if (to == DType::Bool) EXPECT_EQ(dst[0], src[0] != 0 ? 1 : 0) << i;
        else EXPECT_EQ(std::memcmp(src, dst, sz), 0) << i;
      }
    }
  }
}

}  // namespace
}  // namespace nef::test
