// Reductions (sum, prod, mean, max, min, argmax, argmin) against float64 references written
// here: every dtype, rank 0, zero-size dims, odd sizes, strided/reversed/broadcast views.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace nef::test {
namespace {

const DType kAllTypes[] = {DType::Float32, DType::Float16, DType::BFloat16, DType::Float64,
                           DType::Int8,    DType::UInt8,   DType::Int16,    DType::UInt16,
                           DType::Int32,   DType::UInt32,  DType::Int64,    DType::UInt64,
                           DType::Bool};

bool is_unsigned(DType t) { return is_integer(t) && !is_signed(t); }

double rtol_for(DType t) {
  switch (t) {
    case DType::Float16:
      return 2e-3;
    case DType::BFloat16:
      return 1.6e-2;
    case DType::Float32:
      return 2e-6;
    default:
      return 1e-12;
  }
}

// Reference: reduces `v` (row-major values of `shape`) over `red` dims with `op`.
// Returns values in output order and, for arg ops, positions among the reduced dims.
std::vector<double> ref_reduce(const std::vector<double>& v, const Shape& shape,
                               const std::vector<bool>& red, const std::string& op) {
  int r = int(shape.size());
  int64_t out_n = 1, red_n = 1;
  for (int d = 0; d < r; ++d) (red[d] ? red_n : out_n) *= shape[d];
  std::vector<std::vector<double>> groups(out_n);
  std::vector<std::vector<int64_t>> pos(out_n);
  for (int64_t i = 0; i < int64_t(v.size()); ++i) {
    int64_t rem = i, o = 0, om = 1, p = 0, pm = 1;
    for (int d = r - 1; d >= 0; --d) {
      int64_t idx = rem % shape[d];
      rem /= shape[d];
      if (red[d]) p += idx * pm, pm *= shape[d];
      else o += idx * om, om *= shape[d];
    }
    groups[o].push_back(v[i]);
    pos[o].push_back(p);
  }
  std::vector<double> out(out_n);
  for (int64_t o = 0; o < out_n; ++o) {
    const auto& g = groups[o];
    double acc;
    if (op == "sum" || op == "mean") {
      acc = 0;
      for (double x : g) acc += x;
      if (op == "mean") acc /= double(g.size());
    } else if (op == "prod") {
      acc = 1;
      for (double x : g) acc *= x;
    } else {
      bool is_max = op == "max" || op == "argmax";
      size_t best = 0;
      for (size_t k = 1; k < g.size(); ++k) {
        if (std::isnan(g[best])) break;
        if (std::isnan(g[k]) || (is_max ? g[k] > g[best] : g[k] < g[best])) best = k;
      }
      acc = (op == "max" || op == "min") ? g[best] : double(pos[o][best]);
    }
    out[o] = acc;
  }
  return out;
}

Shape out_shape(const Shape& s, const std::vector<bool>& red, bool keepdims) {
  Shape o;
  for (size_t d = 0; d < s.size(); ++d)
    if (!red[d]) o.push_back(s[d]);
    else if (keepdims) o.push_back(1);
  return o;
}

DType expected_dtype(const std::string& op, DType t) {
  // numpy's accumulators: uint64 for unsigned ints, int64 for signed ints and bool.
  if (op == "sum" || op == "prod")
    return is_floating(t) ? t : is_unsigned(t) ? DType::UInt64 : DType::Int64;
  if (op == "mean") return to_floating(t);
  if (op == "argmax" || op == "argmin") return DType::Int64;
  return t;
}

void expect_close(const std::vector<double>& got, const std::vector<double>& ref, double rtol,
                  double atol, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(ref[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " at " << i;
      continue;
    }
    EXPECT_NEAR(got[i], ref[i], atol + rtol * std::abs(ref[i])) << what << " at " << i;
  }
}

// Values that make a test meaningful per op and dtype (products stay in range).
std::pair<double, double> range_for(const std::string& op, DType t) {
  // Products of ~3000 terms: keep them near 1 (float16 overflows at 65504) and ints in {-1,0,1}.
  if (op == "prod")
    return is_floating(t) ? std::pair{0.97, 1.03} : std::pair{is_unsigned(t) ? 0.0 : -1.0, 1.0};
  if (is_unsigned(t)) return {0, 3};
  return {-3, 3};
}

// Runs `op` on `x` (any view) and checks shape, dtype and values against the reference.
void check_reduce(const std::string& op, const Array& x,
                  const std::optional<std::vector<int64_t>>& axes, bool keepdims) {
  ir::Attrs attrs;
  std::vector<bool> red(x.rank(), !axes.has_value());
  if (axes) {
    attrs.set("axes", *axes);
    for (int64_t a : *axes) red[a < 0 ? a + x.rank() : a] = true;
  }
  attrs.set("keepdims", keepdims);
  std::string what = op + " " + dtype_name(x.dtype) + " " + shape_str(x.shape);
  Array out = run_kernel(op, {x}, attrs);
  EXPECT_EQ(out.shape, out_shape(x.shape, red, keepdims)) << what;
  EXPECT_EQ(out.dtype, expected_dtype(op, x.dtype)) << what;
  std::vector<double> ref = ref_reduce(to_doubles(x), x.shape, red, op);
  DType od = out.dtype;
  double rtol = rtol_for(od == DType::Int64 || od == DType::UInt64 ? x.dtype : od);
  if (!is_floating(od)) rtol = 0;
  // Sums of rounded-away terms: allow the output's rounding of the largest partial sum.
  double scale = 0;
  for (double v : to_doubles(x)) scale = std::max(scale, std::abs(v));
  double atol = is_floating(od) ? rtol * scale : 0;
  expect_close(to_doubles(out), ref, rtol, atol, what);
}

TEST(OpsReduction, AllOpsAllDtypesShapesAxes) {
  struct Case {
    Shape shape;
    std::optional<std::vector<int64_t>> axes;
  };
  const std::vector<Case> cases = {{{}, std::nullopt},
                                   {{37}, std::nullopt},
                                   {{37}, std::vector<int64_t>{0}},
                                   {{5, 129}, std::vector<int64_t>{-1}},
                                   {{5, 129}, std::vector<int64_t>{0}},
                                   {{3, 1, 7, 4}, std::vector<int64_t>{0, 2}},
                                   {{3, 1, 7, 4}, std::vector<int64_t>{3, 1}},
                                   {{2, 3, 4}, std::vector<int64_t>{}},
                                   {{1031, 3}, std::nullopt},
                                   {{4, 1031}, std::vector<int64_t>{1}},
                                   {{2, 5, 3}, std::vector<int64_t>{1}}};
  uint64_t seed = 1000;
  for (const char* op : {"sum", "prod", "mean", "max", "min"}) {
    for (DType t : kAllTypes) {
      for (const Case& c : cases) {
        for (bool keep : {false, true}) {
          std::mt19937_64 rng(++seed);
          SCOPED_TRACE(str("seed ", seed, " op ", op, " ", dtype_name(t), " ", shape_str(c.shape),
                           " keepdims ", keep));
          auto [lo, hi] = range_for(op, t);
          Array x = random_array(c.shape, t, rng, lo, hi);
          check_reduce(op, x, c.axes, keep);
        }
      }
    }
  }
}

TEST(OpsReduction, ArgMaxArgMinTiesAndAxes) {
  uint64_t seed = 2000;
  for (const char* op : {"argmax", "argmin"}) {
    for (DType t : kAllTypes) {
      for (Shape s : {Shape{}, Shape{37}, Shape{5, 129}, Shape{3, 7, 4}}) {
        std::vector<std::optional<int64_t>> axes = {std::nullopt};
        for (int a = -int(s.size()); a < int(s.size()); ++a) axes.push_back(a);
        for (auto axis : axes) {
          for (bool keep : {false, true}) {
            std::mt19937_64 rng(++seed);
            SCOPED_TRACE(str("seed ", seed, " ", op, " ", dtype_name(t), " ", shape_str(s)));
            // Small integer range: many ties, the first occurrence must win.
            Array x = random_array(s, t, rng, 0, 3);
            ir::Attrs attrs;
            std::vector<bool> red(s.size(), true);
            if (axis) {
              attrs.set("axis", *axis);
              std::fill(red.begin(), red.end(), false);
              red[*axis < 0 ? *axis + int(s.size()) : *axis] = true;
            }
            attrs.set("keepdims", keep);
            Array out = run_kernel(op, {x}, attrs);
            EXPECT_EQ(out.dtype, DType::Int64);
            EXPECT_EQ(out.shape, out_shape(s, red, keep));
            EXPECT_EQ(to_doubles(out), ref_reduce(to_doubles(x), s, red, op));
          }
        }
      }
    }
  }
}

TEST(OpsReduction, NaNPropagates) {
  for (DType t : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16}) {
    std::mt19937_64 rng(77);
    SCOPED_TRACE(str("seed 77 ", dtype_name(t)));
    Array x = random_array({4, 9}, t, rng);
    nef::dispatch_dtype(t, [&]<typename T>() {
      x.data_as<T>()[1 * 9 + 4] =
          nef::store_as<T>(nef::compute_t<T>(std::numeric_limits<double>::quiet_NaN()));
      x.data_as<T>()[1 * 9 + 6] =
          nef::store_as<T>(nef::compute_t<T>(std::numeric_limits<double>::quiet_NaN()));
    });
    ir::Attrs a;
    a.set("axes", std::vector<int64_t>{1});
    for (const char* op : {"max", "min", "sum", "mean"}) {
      auto v = to_doubles(run_kernel(op, {x}, a));
      EXPECT_TRUE(std::isnan(v[1])) << op;
      EXPECT_FALSE(std::isnan(v[0])) << op;
    }
    ir::Attrs b;
    b.set("axis", int64_t(1));
    EXPECT_EQ(to_doubles(run_kernel("argmax", {x}, b))[1], 4.0);
    EXPECT_EQ(to_doubles(run_kernel("argmin", {x}, b))[1], 4.0);
    EXPECT_EQ(to_doubles(run_kernel("argmax", {x}))[0], 13.0);  // flattened, first NaN
  }
}

TEST(OpsReduction, StridedViews) {
  uint64_t seed = 3000;
  for (DType t : {DType::Float32, DType::Int32, DType::Float16, DType::Float64}) {
    std::mt19937_64 rng(++seed);
    SCOPED_TRACE(str("seed ", seed, " ", dtype_name(t)));
    Array base = random_array({37, 129}, t, rng);
    Array tr = base;  // transpose by strides
    std::swap(tr.shape[0], tr.shape[1]);
    std::swap(tr.strides[0], tr.strides[1]);
    Array rev = base;  // reversed along dim 1
    rev.offset += (rev.shape[1] - 1) * rev.strides[1];
    rev.strides[1] = -rev.strides[1];
    Array row = random_array({1, 129}, t, rng);  // broadcast to (37, 129) by a stride of 0
    Array bc = row;
    bc.shape = {37, 129};
    bc.strides = {0, 1};
    for (const Array* v : {&tr, &rev, &bc}) {
      for (auto axes :
           {std::optional<std::vector<int64_t>>{}, std::optional(std::vector<int64_t>{0}),
            std::optional(std::vector<int64_t>{1})}) {
        for (const char* op : {"sum", "mean", "max", "min"}) check_reduce(op, *v, axes, false);
      }
      for (int64_t ax : {0, 1}) {
        ir::Attrs a;
        a.set("axis", ax);
        std::vector<bool> red = {ax == 0, ax == 1};
        EXPECT_EQ(to_doubles(run_kernel("argmax", {*v}, a)),
                  ref_reduce(to_doubles(*v), v->shape, red, "argmax"));
      }
    }
  }
}

TEST(OpsReduction, LargeFloat32SumAccuracy) {
  for (uint64_t seed : {11u, 12u}) {
    std::mt19937_64 rng(seed);
    SCOPED_TRACE(str("seed ", seed));
    Array x = random_array({1000, 1000}, DType::Float32, rng, 0.0, 1.0);  // no cancellation
    std::vector<double> v = to_doubles(x);
    double ref = 0;
    for (double e : v) ref += e;
    double got = to_doubles(run_kernel("sum", {x}))[0];
    EXPECT_NEAR(got, ref, 1e-6 * ref);
    double mean = to_doubles(run_kernel("mean", {x}))[0];
    EXPECT_NEAR(mean, ref / 1e6, 1e-6 * ref / 1e6);
    // Column sums (reduce the outer axis) and row sums, parallel paths.
    for (int64_t ax : {0, 1}) {
      ir::Attrs a;
      a.set("axes", std::vector<int64_t>{ax});
      auto got_v = to_doubles(run_kernel("sum", {x}, a));
      auto ref_v = ref_reduce(v, x.shape, {ax == 0, ax == 1}, "sum");
      expect_close(got_v, ref_v, 1e-6, 0, "axis sum");
    }
  }
}

TEST(OpsReduction, ZeroSize) {
  std::mt19937_64 rng(5);
  Array x = random_array({2, 0, 3}, DType::Float32, rng);
  ir::Attrs a;
  a.set("axes", std::vector<int64_t>{1});
  Array s = run_kernel("sum", {x}, a);
  EXPECT_EQ(s.shape, (Shape{2, 3}));
  for (double v : to_doubles(s)) EXPECT_EQ(v, 0.0);
  for (double v : to_doubles(run_kernel("prod", {x}, a))) EXPECT_EQ(v, 1.0);
  for (double v : to_doubles(run_kernel("mean", {x}, a))) EXPECT_TRUE(std::isnan(v));
  Array xi = random_array({0, 4}, DType::Int32, rng);
  Array si = run_kernel("sum", {xi});
  EXPECT_EQ(si.dtype, DType::Int64);
  EXPECT_EQ(to_doubles(si), std::vector<double>{0.0});
  // max over a non-empty axis of an empty tensor is fine (empty result) ...
  ir::Attrs b;
  b.set("axes", std::vector<int64_t>{1});
  EXPECT_EQ(run_kernel("max", {xi}, b).shape, (Shape{0}));
  ir::Attrs c;
  c.set("axis", int64_t(1));
  EXPECT_EQ(run_kernel("argmax", {xi}, c).shape, (Shape{0}));
  // ... but an empty reduced extent has no identity.
  EXPECT_THROW(run_kernel("max", {x}, a), ShapeError);
  EXPECT_THROW(run_kernel("min", {xi}), ShapeError);
  EXPECT_THROW(run_kernel("argmax", {xi}), ShapeError);
  ir::Attrs d;
  d.set("axis", int64_t(0));
  EXPECT_THROW(run_kernel("argmin", {xi}, d), ShapeError);
}

TEST(OpsReduction, InferenceCanonicalizesAndRejects) {
  const ir::OpDef& sum = ir::get_op("sum");
  EXPECT_TRUE(sum.has(ir::kReduction));
  ir::Attrs a;
  a.set("axes", std::vector<int64_t>{-1, 0});
  ir::TensorType t = ir::check_and_infer(sum, {{{2, 3, 4}, DType::Int8}}, a);
  EXPECT_EQ(a.get_ints("axes"), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(t.shape, (Shape{3}));
  EXPECT_EQ(t.dtype, DType::Int64);
  ir::TensorType t2 = ir::check_and_infer(sum, {{{2, 3, 4}, DType::Int8}}, a);  // idempotent
  EXPECT_EQ(t2, t);
  EXPECT_FALSE(a.get_bool("keepdims"));
  for (DType u : {DType::UInt8, DType::UInt16, DType::UInt32, DType::UInt64})
    EXPECT_EQ(ir::check_and_infer(sum, {{{2, 3, 4}, u}}, a).dtype, DType::UInt64);
  EXPECT_EQ(ir::check_and_infer(sum, {{{2, 3, 4}, DType::Int16}}, a).dtype, DType::Int64);

  ir::Attrs dup;
  dup.set("axes", std::vector<int64_t>{1, -2});
  EXPECT_THROW(ir::check_and_infer(sum, {{{2, 3, 4}, DType::Float32}}, dup), ShapeError);
  ir::Attrs bad;
  bad.set("axes", std::vector<int64_t>{3});
  try {
    ir::check_and_infer(sum, {{{2, 3, 4}, DType::Float32}}, bad);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[sum]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(2, 3, 4)"), std::string::npos) << e.what();
  }
  ir::Attrs bad_axis;
  bad_axis.set("axis", int64_t(-3));
  EXPECT_THROW(ir::check_and_infer(ir::get_op("argmax"), {{{2, 3}, DType::Float32}}, bad_axis),
               ShapeError);
  ir::Attrs wrong_type;
  wrong_type.set("axes", int64_t(1));
  EXPECT_THROW(ir::check_and_infer(sum, {{{2, 3}, DType::Float32}}, wrong_type), Error);
  ir::Attrs none;
  EXPECT_EQ(ir::check_and_infer(ir::get_op("mean"), {{{2, 3}, DType::Int32}}, none).dtype,
            DType::Float32);
  EXPECT_EQ(ir::check_and_infer(ir::get_op("max"), {{{2, 3}, DType::UInt8}}, none).dtype,
            DType::UInt8);
}

}  // namespace
}  // namespace nef::test
