// max_pool, avg_pool, pad and resize: shape inference (defaults filled, ceil_mode rules), the
// error paths, pools against a float64 reference written here (per-tap bounds tests, unlike the
// kernel's precomputed tap ranges) over 1-3 spatial dims and strided inputs, and hand-computed
// pad and resize values. The Python suites cover the full mode matrix against numpy and onnx.
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "nef/error.h"
#include "nef/tensor.h"
#include "test_util.h"

namespace nef::test {
namespace {

using ir::Attrs;

Attrs pool_attrs(std::vector<int64_t> kernel, std::vector<int64_t> strides = {},
                 std::vector<int64_t> pads = {}, std::vector<int64_t> dil = {},
                 bool ceil_mode = false) {
  Attrs a;
  a.set("kernel", kernel);
  if (!strides.empty()) a.set("strides", strides);
  if (!pads.empty()) a.set("pads", pads);
  if (!dil.empty()) a.set("dilations", dil);
  a.set("ceil_mode", ceil_mode);
  return a;
}

ir::TensorType infer(const std::string& op, const Shape& s, DType t, Attrs& attrs) {
  return ir::check_and_infer(ir::get_op(op), {{s, t}}, attrs);
}

Array from_values(const Shape& s, const std::vector<double>& v, DType t = DType::Float32) {
  Array a = Array::empty(s, t);
  nef::dispatch_dtype(t, [&]<typename T>() {
    for (size_t i = 0; i < v.size(); ++i)
      a.data_as<T>()[i] = nef::store_as<T>(nef::compute_t<T>(v[i]));
  });
  return a;
}

// --- inference ----------------------------------------------------------------------------

TEST(PoolInfer, DefaultsAreFilledAndShapesFollowOnnx) {
  Attrs a = pool_attrs({3, 2});
  auto t = infer("max_pool", {2, 3, 7, 5}, DType::Float32, a);
  EXPECT_EQ(t.shape, (Shape{2, 3, 5, 4}));
  EXPECT_EQ(a.get_ints("strides"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(a.get_ints("pads"), (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(a.get_ints("dilations"), (std::vector<int64_t>{1, 1}));
  auto again = infer("max_pool", {2, 3, 7, 5}, DType::Float32, a);  // idempotent
  EXPECT_EQ(again.shape, t.shape);

  // (7 + 1 + 2 - 2*(3-1) - 1) / 2 + 1 = 3 (floor), ceil -> 4.
  Attrs f = pool_attrs({3}, {2}, {1, 2}, {2});
  EXPECT_EQ(infer("avg_pool", {1, 1, 7}, DType::Float32, f).shape, (Shape{1, 1, 3}));
  Attrs c = pool_attrs({3}, {2}, {1, 2}, {2}, true);
  EXPECT_EQ(infer("avg_pool", {1, 1, 7}, DType::Float32, c).shape, (Shape{1, 1, 4}));
  // With ceil_mode a last window starting in the end padding is dropped: in 3, pe 1 keeps
  // both windows ((2-1)*2 < 3); in 2, pe 2 drops the second ((2-1)*2 >= 2 + 0).
  Attrs d = pool_attrs({2}, {2}, {0, 1}, {}, true);
  EXPECT_EQ(infer("max_pool", {1, 1, 3}, DType::Float32, d).shape, (Shape{1, 1, 2}));
  Attrs e = pool_attrs({2}, {2}, {0, 2}, {}, true);
  EXPECT_EQ(infer("max_pool", {1, 1, 2}, DType::Float32, e).shape, (Shape{1, 1, 1}));
  // 3 spatial dims, zero-size N and C are fine.
  Attrs g = pool_attrs({2, 2, 2}, {2, 2, 2});
  EXPECT_EQ(infer("max_pool", {0, 0, 4, 5, 6}, DType::Int8, g).shape, (Shape{0, 0, 2, 2, 3}));
}

TEST(PoolInfer, Errors) {
  Attrs a = pool_attrs({2});
  EXPECT_THROW(infer("max_pool", {1, 4}, DType::Float32, a), ShapeError);
  Attrs a6 = pool_attrs({1, 1, 1, 1});
  EXPECT_THROW(infer("max_pool", {1, 1, 2, 2, 2, 2}, DType::Float32, a6), ShapeError);
  Attrs b = pool_attrs({2});
  EXPECT_THROW(infer("max_pool", {1, 1, 4}, DType::Bool, b), TypeError);
  Attrs c = pool_attrs({2});
  EXPECT_THROW(infer("avg_pool", {1, 1, 4}, DType::Int32, c), TypeError);
  Attrs d = pool_attrs({2, 2});  // kernel length != spatial dims
  EXPECT_THROW(infer("max_pool", {1, 1, 4}, DType::Float32, d), ValidationError);
  Attrs e = pool_attrs({0});
  EXPECT_THROW(infer("max_pool", {1, 1, 4}, DType::Float32, e), ValidationError);
  Attrs f = pool_attrs({2}, {0});
  EXPECT_THROW(infer("max_pool", {1, 1, 4}, DType::Float32, f), ValidationError);
  Attrs g = pool_attrs({2}, {}, {-1, 0});
  EXPECT_THROW(infer("max_pool", {1, 1, 4}, DType::Float32, g), ValidationError);
  Attrs h = pool_attrs({2}, {}, {0, 0, 0});
  EXPECT_THROW(infer("max_pool", {1, 1, 4}, DType::Float32, h), ValidationError);
  Attrs i = pool_attrs({3}, {}, {}, {2});  // dilated window 5 > 4
  try {
    infer("max_pool", {1, 1, 4}, DType::Float32, i);
    FAIL() << "no error";
  } catch (const ShapeError& err) {
    EXPECT_NE(std::string(err.what()).find("[max_pool]"), std::string::npos);
    EXPECT_NE(std::string(err.what()).find("(1, 1, 4)"), std::string::npos);
  }
  Attrs j;  // kernel is required
  EXPECT_THROW(infer("max_pool", {1, 1, 4}, DType::Float32, j), ValidationError);
  Attrs k = pool_attrs({int64_t{1} << 40});
  EXPECT_THROW(infer("max_pool", {1, 1, 4}, DType::Float32, k), ValidationError);
}

// --- pool numbers -------------------------------------------------------------------------

struct PoolCase {
  Shape shape;
  std::vector<int64_t> k, s, p, d;
  bool ceil = false, include_pad = false;
};

// Reference: for each output position, every tap tested against the input and padded bounds.
std::vector<double> ref_pool(const Array& x, const Shape& out, const PoolCase& c, bool is_max) {
  std::vector<double> xv = to_doubles(x);
  const int nsp = int(c.shape.size()) - 2;
  std::vector<double> r;
  Strides xs = contiguous_strides(c.shape);
  for (int64_t flat = 0; flat < numel(out); ++flat) {
    std::vector<int64_t> idx(out.size());
    int64_t rem = flat;
    for (int d = int(out.size()) - 1; d >= 0; --d) {
      idx[d] = rem % out[d];
      rem /= out[d];
    }
    int64_t taps = 1;
    for (int i = 0; i < nsp; ++i) taps *= c.k[i];
    double acc = is_max ? -INFINITY : 0;
    int64_t count = 0;
    for (int64_t t = 0; t < taps; ++t) {
      int64_t trem = t, off = idx[0] * xs[0] + idx[1] * xs[1];
      bool inside = true, in_padded = true;
      for (int i = nsp - 1; i >= 0; --i) {
        int64_t ti = trem % c.k[i];
        trem /= c.k[i];
        int64_t pos = idx[2 + i] * c.s[i] - c.p[i] + ti * c.d[i];
        if (pos < 0 || pos >= c.shape[2 + i]) inside = false;
        if (pos >= c.shape[2 + i] + c.p[nsp + i]) in_padded = false;
        off += pos * xs[2 + i];
      }
      if (c.include_pad ? in_padded : inside) ++count;
      if (!inside) continue;
      acc = is_max ? std::max(acc, xv[off]) : acc + xv[off];
    }
    r.push_back(is_max ? acc : acc / double(count));
  }
  return r;
}

TEST(PoolKernel, MatchesReference) {
  std::mt19937_64 rng(7);
  const std::vector<PoolCase> cases = {
      {{2, 3, 11}, {3}, {2}, {1, 0}, {1}},
      {{1, 2, 10}, {2}, {3}, {0, 2}, {2}, true},
      {{1, 2, 9, 7}, {3, 2}, {2, 1}, {1, 0, 1, 1}, {1, 2}},
      {{2, 1, 8, 9}, {3, 3}, {2, 2}, {1, 1, 1, 1}, {1, 1}, true, true},
      {{1, 3, 7, 6}, {2, 3}, {3, 2}, {0, 1, 2, 0}, {2, 1}, true, false},
      {{1, 2, 5, 6, 7}, {2, 3, 2}, {2, 1, 3}, {1, 0, 1, 0, 1, 1}, {1, 2, 1}},
      {{1, 1, 4, 5, 3}, {3, 2, 2}, {2, 2, 2}, {1, 1, 0, 1, 1, 1}, {1, 1, 1}, true, true},
  };
  for (const PoolCase& c : cases) {
    for (bool is_max : {true, false}) {
      for (DType t : {DType::Float32, DType::Float64, DType::Float16}) {
        Array x = random_array(c.shape, t, rng, -3, 3);
        Attrs a = pool_attrs(c.k, c.s, c.p, c.d, c.ceil);
        if (!is_max) a.set("count_include_pad", c.include_pad);
        Array y = run_kernel(is_max ? "max_pool" : "avg_pool", {x}, a);
        std::vector<double> want = ref_pool(x, y.shape, c, is_max), got = to_doubles(y);
        ASSERT_EQ(got.size(), want.size());
        double tol = t == DType::Float16 ? 2e-3 : t == DType::Float32 ? 1e-6 : 1e-12;
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i])))
              << (is_max ? "max" : "avg") << " " << shape_str(c.shape) << " " << dtype_name(t)
              << " at " << i;
      }
    }
  }
}

TEST(PoolKernel, IntegersStridedInputAndHandValues) {
  // 1-D max over [1, 5, 2, 8, 3] with k 2, s 2, ceil_mode: windows [1,5], [2,8], [3].
  Array x = from_values({1, 1, 5}, {1, 5, 2, 8, 3}, DType::Int8);
  Array y = run_kernel("max_pool", {x}, pool_attrs({2}, {2}, {}, {}, true));
  EXPECT_EQ(to_doubles(y), (std::vector<double>{5, 8, 3}));
  // avg with pads 1: [pad,1] [5,2] [8,3] -> 1, 3.5, 5.5; count_include_pad -> 0.5, 3.5, 5.5.
  Array xf = from_values({1, 1, 5}, {1, 5, 2, 8, 3});
  Attrs a = pool_attrs({2}, {2}, {1, 0});
  EXPECT_EQ(to_doubles(run_kernel("avg_pool", {xf}, a)), (std::vector<double>{1, 3.5, 5.5}));
  a.set("count_include_pad", true);
  EXPECT_EQ(to_doubles(run_kernel("avg_pool", {xf}, a)), (std::vector<double>{0.5, 3.5, 5.5}));
  // Negative ints: padding must not win (a 0 pad would).
  Array xn = from_values({1, 1, 3}, {-5, -7, -2}, DType::Int32);
  EXPECT_EQ(to_doubles(run_kernel("max_pool", {xn}, pool_attrs({2}, {1}, {1, 1}))),
            (std::vector<double>{-5, -5, -2, -2}));
  // A transposed (strided) input gives the same result as its contiguous copy.
  std::mt19937_64 rng(3);
  Array base = random_array({1, 2, 6, 5}, DType::Float32, rng);
  Array tv = base;
  std::swap(tv.shape[2], tv.shape[3]);
  std::swap(tv.strides[2], tv.strides[3]);
  Attrs b = pool_attrs({2, 3}, {1, 2}, {1, 0, 0, 1});
  EXPECT_EQ(to_doubles(run_kernel("max_pool", {tv}, b)),
            to_doubles(run_kernel("max_pool", {tv.contiguous()}, b)));
  // NaN propagates through max; a window of padding only is -inf (max) and NaN (avg).
  Array xq = from_values({1, 1, 3}, {1, NAN, 2});
  auto q = to_doubles(run_kernel("max_pool", {xq}, pool_attrs({2})));
  EXPECT_TRUE(std::isnan(q[0]) && std::isnan(q[1]));
  Array x1 = from_values({1, 1, 1}, {4});
  auto m = to_doubles(run_kernel("max_pool", {x1}, pool_attrs({1}, {1}, {2, 0})));
  EXPECT_EQ(m, (std::vector<double>{-INFINITY, -INFINITY, 4}));
  auto v = to_doubles(run_kernel("avg_pool", {x1}, pool_attrs({1}, {1}, {1, 0})));
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], 4);
}

TEST(PoolKernel, EndToEndThroughTheGraph) {
  std::mt19937_64 rng(11);
  Array x = random_array({2, 3, 9, 8}, DType::Float32, rng);
  Tensor t = from_array(x);
  Tensor y = op("avg_pool", {op("max_pool", {t}, pool_attrs({2, 2}, {1, 1}, {1, 1, 0, 0}))},
                pool_attrs({3, 3}, {2, 2}));
  Array direct = run_kernel("avg_pool",
                            {run_kernel("max_pool", {x}, pool_attrs({2, 2}, {1, 1}, {1, 1, 0, 0}))},
                            pool_attrs({3, 3}, {2, 2}));
  EXPECT_EQ(to_doubles(y.array()), to_doubles(direct));
}

// --- pad ----------------------------------------------------------------------------------

Attrs pad_attrs(std::vector<int64_t> pads, const std::string& mode = "constant", double value = 0) {
  Attrs a;
  a.set("pads", pads);
  a.set("mode", mode);
  a.set("value", value);
  return a;
}

TEST(Pad, ModesByHand) {
  Array x = from_values({4}, {1, 2, 3, 4});
  EXPECT_EQ(to_doubles(run_kernel("pad", {x}, pad_attrs({2, 1}, "constant", 9))),
            (std::vector<double>{9, 9, 1, 2, 3, 4, 9}));
  EXPECT_EQ(to_doubles(run_kernel("pad", {x}, pad_attrs({2, 3}, "reflect"))),
            (std::vector<double>{3, 2, 1, 2, 3, 4, 3, 2, 1}));
  EXPECT_EQ(to_doubles(run_kernel("pad", {x}, pad_attrs({2, 1}, "edge"))),
            (std::vector<double>{1, 1, 1, 2, 3, 4, 4}));
  EXPECT_EQ(to_doubles(run_kernel("pad", {x}, pad_attrs({5, 2}, "wrap"))),
            (std::vector<double>{4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2}));
  // Negative pads crop first, then the other side pads from the kept values.
  EXPECT_EQ(to_doubles(run_kernel("pad", {x}, pad_attrs({-1, 2}, "reflect"))),
            (std::vector<double>{2, 3, 4, 3, 2}));
  EXPECT_EQ(to_doubles(run_kernel("pad", {x}, pad_attrs({-1, 1}, "wrap"))),
            (std::vector<double>{2, 3, 4, 2}));
  EXPECT_EQ(to_doubles(run_kernel("pad", {x}, pad_attrs({-1, -2}))), (std::vector<double>{2}));
  // 2-D, ints, value cast to the dtype (truncated, saturated).
  Array xi = from_values({2, 2}, {1, 2, 3, 4}, DType::UInt8);
  EXPECT_EQ(to_doubles(run_kernel("pad", {xi}, pad_attrs({1, 0, 0, 1}, "constant", 300))),
            (std::vector<double>{255, 255, 255, 1, 2, 255, 3, 4, 255}));
  // Zero-size input, constant mode: all value.
  Array xe = Array::empty({0, 2}, DType::Float32);
  EXPECT_EQ(to_doubles(run_kernel("pad", {xe}, pad_attrs({1, 0, 0, 0}, "constant", 5))),
            (std::vector<double>{5, 5}));
  // Rank 0: pads empty, a copy.
  Array x0 = from_values({}, {7});
  EXPECT_EQ(to_doubles(run_kernel("pad", {x0}, pad_attrs({}))), (std::vector<double>{7}));
}

TEST(Pad, Errors) {
  auto bad = [](const Shape& s, std::vector<int64_t> pads, const std::string& mode) {
    Attrs a = pad_attrs(std::move(pads), mode);
    return infer("pad", s, DType::Float32, a);
  };
  EXPECT_THROW(bad({4}, {1}, "constant"), ValidationError);
  EXPECT_THROW(bad({4}, {1, 1}, "mirror"), ValidationError);
  EXPECT_THROW(bad({4}, {4, 0}, "reflect"), ValidationError);
  EXPECT_THROW(bad({4}, {-1, 3}, "reflect"), ValidationError);  // 3 kept
  EXPECT_NO_THROW(bad({4}, {3, 3}, "reflect"));
  EXPECT_THROW(bad({0, 3}, {1, 0, 0, 0}, "edge"), ValidationError);
  EXPECT_THROW(bad({0, 3}, {0, 0, 1, 0}, "wrap"), ValidationError);
  EXPECT_NO_THROW(bad({0, 3}, {0, 1, 0, 1}, "edge"));  // the zero-size dim is not padded
  EXPECT_THROW(bad({4}, {-3, -2}, "constant"), ShapeError);
  EXPECT_THROW(bad({4}, {-5, 2}, "constant"), ShapeError);  // crops more than the dim
  EXPECT_THROW(bad({4}, {int64_t{1} << 62, 0}, "constant"), ShapeError);
  try {
    bad({2, 3}, {0, 3, 0, 0}, "reflect");
    FAIL() << "no error";
  } catch (const ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("[pad]"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("(2, 3)"), std::string::npos);
  }
}

// --- resize -------------------------------------------------------------------------------

Attrs resize_attrs(std::vector<int64_t> sizes, const std::string& mode,
                   const std::string& ctm = "half_pixel") {
  Attrs a;
  a.set("sizes", sizes);
  a.set("mode", mode);
  a.set("coordinate_transformation_mode", ctm);
  return a;
}

TEST(Resize, ByHand) {
  Array x = from_values({1, 1, 2, 2}, {1, 2, 3, 4});
  // Nearest x2 with half_pixel/round_prefer_floor: each pixel repeated 2x2.
  EXPECT_EQ(to_doubles(run_kernel("resize", {x}, resize_attrs({1, 1, 4, 4}, "nearest"))),
            (std::vector<double>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}));
  // Linear 2 -> 3 with align_corners: midpoints.
  Array l = from_values({2}, {1, 3});
  EXPECT_EQ(to_doubles(run_kernel("resize", {l}, resize_attrs({3}, "linear", "align_corners"))),
            (std::vector<double>{1, 2, 3}));
  // Linear 2 -> 4 half_pixel: x = -0.25, 0.25, 0.75, 1.25 -> clamped edges.
  EXPECT_EQ(to_doubles(run_kernel("resize", {l}, resize_attrs({4}, "linear"))),
            (std::vector<double>{1, 1.5, 2.5, 3}));
  // Cubic at integer source coordinates reproduces the input (asymmetric, x2 down).
  Array c = from_values({6}, {1, -2, 5, 0, 3, 7});
  EXPECT_EQ(to_doubles(run_kernel("resize", {c}, resize_attrs({3}, "cubic", "asymmetric"))),
            (std::vector<double>{1, 5, 3}));
  // tf_crop_and_resize outside the roi gives the extrapolation value.
  Attrs t = resize_attrs({3}, "linear", "tf_crop_and_resize");
  t.set("roi", std::vector<double>{-1.0, 1.0});
  t.set("extrapolation_value", 9.0);
  EXPECT_EQ(to_doubles(run_kernel("resize", {l}, t)), (std::vector<double>{9, 1, 3}));
  // Ints with nearest; same size is a copy.
  Array xi = from_values({3}, {4, -1, 6}, DType::Int64);
  EXPECT_EQ(to_doubles(run_kernel("resize", {xi}, resize_attrs({3}, "nearest"))),
            (std::vector<double>{4, -1, 6}));
  EXPECT_EQ(to_doubles(run_kernel("resize", {xi}, resize_attrs({6}, "nearest"))),
            (std::vector<double>{4, 4, -1, -1, 6, 6}));
}

TEST(Resize, Errors) {
  auto bad = [](const Shape& s, DType t, Attrs a) { return infer("resize", s, t, a); };
  EXPECT_THROW(bad({2, 2}, DType::Float32, resize_attrs({4}, "nearest")), ValidationError);
  EXPECT_THROW(bad({2, 2}, DType::Float32, resize_attrs({4, 4}, "area")), ValidationError);
  EXPECT_THROW(bad({2, 2}, DType::Float32, resize_attrs({4, 4}, "linear", "corners")),
               ValidationError);
  EXPECT_THROW(bad({2, 2}, DType::Int32, resize_attrs({4, 4}, "linear")), TypeError);
  EXPECT_THROW(bad({2, 2}, DType::Float32, resize_attrs({4, -1}, "nearest")), ShapeError);
  EXPECT_THROW(bad({0, 2}, DType::Float32, resize_attrs({3, 2}, "nearest")), ShapeError);
  EXPECT_NO_THROW(bad({0, 2}, DType::Float32, resize_attrs({0, 5}, "nearest")));
  EXPECT_THROW(bad({}, DType::Float32, resize_attrs({}, "nearest")), ShapeError);
  Attrs s = resize_attrs({4, 4}, "nearest");
  s.set("scales", std::vector<double>{2.0, 0.0});
  EXPECT_THROW(bad({2, 2}, DType::Float32, s), ValidationError);
  Attrs s3 = resize_attrs({4, 4}, "nearest");
  s3.set("scales", std::vector<double>{2.0, 2.0, 2.0});
  EXPECT_THROW(bad({2, 2}, DType::Float32, s3), ValidationError);
  Attrs r = resize_attrs({4, 4}, "nearest", "tf_crop_and_resize");
  r.set("roi", std::vector<double>{0.0, 1.0});
  EXPECT_THROW(bad({2, 2}, DType::Float32, r), ValidationError);
  Attrs nm = resize_attrs({4, 4}, "nearest");
  nm.set("nearest_mode", std::string("round"));
  EXPECT_THROW(bad({2, 2}, DType::Float32, nm), ValidationError);
}

}  // namespace
}  // namespace nef::test
