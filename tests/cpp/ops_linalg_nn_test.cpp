// matmul, softmax, log_softmax, layernorm, rmsnorm and attention against float64 references
// written here: numpy matmul shapes (1-D, broadcast batches), every valid dtype, odd sizes,
// strided (transposed) inputs, masks and causal attention, and the error paths.
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

double rtol_for(DType t) {
  switch (t) {
    case DType::Float16:
      return 2e-3;
    case DType::BFloat16:
      return 1.6e-2;
    case DType::Float32:
      return 3e-6;
    case DType::Float64:
      return 1e-12;
    default:
      return 0;
  }
}

// Swaps the last two dims by strides (no copy): a transposed view.
Array t_view(const Array& a) {
  Array v = a;
  int r = a.rank();
  std::swap(v.shape[r - 1], v.shape[r - 2]);
  std::swap(v.strides[r - 1], v.strides[r - 2]);
  return v;
}

// numpy matmul in double: also returns sum |a_ik b_kj| per output as an error scale.
struct MatmulRef {
  Shape shape;
  std::vector<double> val, mag;
};
MatmulRef ref_matmul(const Array& a, const Array& b) {
  Shape sa = a.shape, sb = b.shape;
  bool a1 = sa.size() == 1, b1 = sb.size() == 1;
  if (a1) sa.insert(sa.begin(), 1);
  if (b1) sb.push_back(1);
  int64_t M = sa[sa.size() - 2], K = sa.back(), N = sb.back();
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  Shape batch(std::max(ba.size(), bb.size()), 1);
  for (size_t i = 0; i < batch.size(); ++i) {
    int64_t da = i + ba.size() >= batch.size() ? ba[i + ba.size() - batch.size()] : 1;
    int64_t db = i + bb.size() >= batch.size() ? bb[i + bb.size() - batch.size()] : 1;
    batch[i] = std::max(da, db);
    if (da == 0 || db == 0) batch[i] = 0;
  }
  std::vector<double> va = to_doubles(a), vb = to_doubles(b);
  MatmulRef r;
  r.shape = batch;
  if (!a1) r.shape.push_back(M);
  if (!b1) r.shape.push_back(N);
  int64_t nb = numel(batch);
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t rem = bi, oa = 0, ob = 0, ma = 1, mb = 1;
    for (int d = int(batch.size()) - 1; d >= 0; --d) {
      int64_t idx = rem % batch[d];
      rem /= batch[d];
      int da = d - int(batch.size() - ba.size()), db = d - int(batch.size() - bb.size());
      if (da >= 0) {
        oa += (ba[da] == 1 ? 0 : idx) * ma;
        ma *= ba[da];
      }
      if (db >= 0) {
        ob += (bb[db] == 1 ? 0 : idx) * mb;
        mb *= bb[db];
      }
    }
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0, m = 0;
        for (int64_t k = 0; k < K; ++k) {
          double p = va[oa * M * K + i * K + k] * vb[ob * K * N + k * N + j];
          s += p;
          m += std::abs(p);
        }
        r.val.push_back(s);
        r.mag.push_back(m);
      }
  }
  return r;
}

void check_matmul(const Array& a, const Array& b, const std::string& what) {
  Array out = run_kernel("matmul", {a, b});
  MatmulRef r = ref_matmul(a, b);
  ASSERT_EQ(out.shape, r.shape) << what;
  EXPECT_EQ(out.dtype, promote_types(a.dtype, b.dtype)) << what;
  std::vector<double> got = to_doubles(out);
  double rtol = rtol_for(out.dtype);
  if (!is_floating(out.dtype))  // integer matmul wraps like numpy's
    for (double& e : r.val)
      e = nef::dispatch_dtype(out.dtype, [&]<typename T>() -> double {
        if constexpr (std::is_integral_v<T>) return double(static_cast<T>(int64_t(e)));
        else return e;
      });
  for (size_t i = 0; i < got.size(); ++i) {
    if (rtol == 0) {
      ASSERT_EQ(got[i], r.val[i]) << what << " at " << i;
    } else {
      // Half outputs round once: relative to the value; accumulation error scales with |a||b|.
      double tol = rtol * std::abs(r.val[i]) + std::min(rtol, 1e-5) * r.mag[i] + 1e-300;
      ASSERT_NEAR(got[i], r.val[i], tol) << what << " at " << i;
    }
  }
}

TEST(OpsMatmul, ShapesAndDtypes) {
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {
      {{37}, {37}},          {{37}, {37, 5}},           {{4, 37}, {37}},
      {{1, 1}, {1, 1}},      {{2, 1, 3, 4}, {5, 4, 6}}, {{3, 7}, {7, 129}},
      {{129, 33}, {33, 37}}, {{5, 0}, {0, 3}},          {{0, 4}, {4, 3}},
      {{2, 3, 4}, {4}},      {{4}, {2, 4, 3}},          {{17, 300}, {300, 31}}};
  uint64_t seed = 100;
  for (DType t : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int8,
                  DType::UInt8, DType::Int32, DType::Int64}) {
    for (const Case& c : cases) {
      std::mt19937_64 rng(++seed);
      SCOPED_TRACE(
          str("seed ", seed, " ", dtype_name(t), " ", shape_str(c.a), " @ ", shape_str(c.b)));
      // Integer ranges keep int8 dot products in range (numpy would wrap; so do we, untested).
      double lo = t == DType::UInt8 ? 0 : (t == DType::Int8 ? -1 : -2);
      double hi = t == DType::UInt8 ? 1 : (t == DType::Int8 ? 1 : 2);
      Array a = random_array(c.a, t, rng, lo, hi);
      Array b = random_array(c.b, t, rng, lo, hi);
      check_matmul(a, b, "");
    }
  }
}

TEST(OpsMatmul, LargeBlockedFloat) {
  // Sizes that cross the cache blocks (K > 256, N > one panel, ragged edges) and run threaded.
  uint64_t seed = 200;
  for (DType t : {DType::Float32, DType::Float64}) {
    for (Shape sa : {Shape{64, 1031}, Shape{300, 257}, Shape{1, 513}, Shape{3, 129, 257}}) {
      std::mt19937_64 rng(++seed);
      SCOPED_TRACE(str("seed ", seed, " ", dtype_name(t), " ", shape_str(sa)));
      Shape sb = {sa.back(), sa[0] == 64 ? 3100 : 200};  // 3100 > one B panel (3072)
      if (sa.size() == 3) sb = {sa.back(), 37};
      if (sa[0] == 1) sb = {sa.back(), 1031};
      Array a = random_array(sa, t, rng);
      Array b = random_array(sb, t, rng);
      check_matmul(a, b, "");
    }
  }
}

TEST(OpsMatmul, StridedAndMixed) {
  uint64_t seed = 300;
  for (DType t : {DType::Float32, DType::Float64, DType::Float16, DType::Int32}) {
    std::mt19937_64 rng(++seed);
    SCOPED_TRACE(str("seed ", seed, " ", dtype_name(t)));
    Array a = random_array({37, 45}, t, rng);   // used as (45, 37)
    Array b = random_array({129, 37}, t, rng);  // used as (37, 129)
    check_matmul(t_view(a), t_view(b), "both transposed");
    Array a2 = random_array({45, 37}, t, rng);
    check_matmul(a2, t_view(b), "b transposed");
    // Reversed rows (negative stride) and a broadcast (stride 0) batch.
    Array rev = a2;
    rev.offset += (rev.shape[0] - 1) * rev.strides[0];
    rev.strides[0] = -rev.strides[0];
    check_matmul(rev, t_view(b), "reversed rows");
    Array bb = random_array({1, 37, 6}, t, rng);
    bb.shape = {4, 37, 6};
    bb.strides[0] = 0;
    check_matmul(a2, bb, "broadcast batch view");
  }
  std::mt19937_64 rng(399);
  SCOPED_TRACE("seed 399 mixed");
  check_matmul(random_array({5, 7}, DType::Float32, rng), random_array({7, 3}, DType::Int32, rng),
               "f32 @ i32");
  check_matmul(random_array({5, 7}, DType::Int8, rng, -1, 1),
               random_array({7, 3}, DType::UInt8, rng, 0, 1), "i8 @ u8");
}

TEST(OpsMatmul, Errors) {
  std::mt19937_64 rng(1);
  try {
    run_kernel("matmul", {random_array({2, 3}, DType::Float32, rng),
                          random_array({4, 5}, DType::Float32, rng)});
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "[matmul] inner dimensions differ: (2, 3) @ (4, 5)");
  }
  EXPECT_THROW(run_kernel("matmul", {random_array({3}, DType::Float32, rng),
                                     random_array({4}, DType::Float32, rng)}),
               ShapeError);
  EXPECT_THROW(run_kernel("matmul", {random_array({2, 2, 3}, DType::Float32, rng),
                                     random_array({3, 3, 4}, DType::Float32, rng)}),
               ShapeError);
  EXPECT_THROW(run_kernel("matmul", {random_array({}, DType::Float32, rng),
                                     random_array({3}, DType::Float32, rng)}),
               ShapeError);
  EXPECT_THROW(run_kernel("matmul", {random_array({2, 3}, DType::Bool, rng),
                                     random_array({3, 2}, DType::Bool, rng)}),
               TypeError);
  ir::Attrs none;
  const ir::OpDef& mm = ir::get_op("matmul");
  ir::TensorType o =
      ir::check_and_infer(mm, {{{2, 3}, DType::Float32}, {{3, 4}, DType::Float32}}, none);
  ir::Cost c = ir::estimate_cost(mm, {{{2, 3}, DType::Float32}, {{3, 4}, DType::Float32}}, o, none);
  EXPECT_EQ(c.flops, 2.0 * 2 * 4 * 3);
}

// ---- softmax / log_softmax ------------------------------------------------------------------

std::vector<double> ref_softmax(const Array& x, int axis, bool log) {
  std::vector<double> v = to_doubles(x), out(v.size());
  if (x.rank() == 0) return {log ? 0.0 : 1.0};
  if (v.empty()) return out;
  int64_t n = x.shape[axis], inner = 1;
  for (int d = axis + 1; d < x.rank(); ++d) inner *= x.shape[d];
  int64_t outer = n == 0 ? 0 : int64_t(v.size()) / (n * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double m = -INFINITY, s = 0;
      for (int64_t j = 0; j < n; ++j) m = std::max(m, v[(o * n + j) * inner + i]);
      for (int64_t j = 0; j < n; ++j) s += std::exp(v[(o * n + j) * inner + i] - m);
      for (int64_t j = 0; j < n; ++j) {
        double e = v[(o * n + j) * inner + i] - m;
        out[(o * n + j) * inner + i] = log ? e - std::log(s) : std::exp(e) / s;
      }
    }
  return out;
}

void expect_all_near(const std::vector<double>& got, const std::vector<double>& ref, double rtol,
                     double atol, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], ref[i], atol + rtol * std::abs(ref[i])) << what << " at " << i;
}

TEST(OpsSoftmax, AxesDtypesViews) {
  uint64_t seed = 400;
  for (const char* op : {"softmax", "log_softmax"}) {
    bool log = std::string(op) == "log_softmax";
    for (DType t :
         {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int32}) {
      for (Shape s :
           {Shape{}, Shape{37}, Shape{5, 129}, Shape{3, 4, 5}, Shape{2, 0, 3}, Shape{1031}}) {
        for (int axis = -int(std::max<size_t>(s.size(), 1));
             axis < int(std::max<size_t>(s.size(), 1)); ++axis) {
          std::mt19937_64 rng(++seed);
          SCOPED_TRACE(
              str("seed ", seed, " ", op, " ", dtype_name(t), " ", shape_str(s), " axis ", axis));
          Array x = random_array(s, t, rng, -8, 8);
          ir::Attrs a;
          a.set("axis", int64_t(axis));
          Array out = run_kernel(op, {x}, a);
          EXPECT_EQ(out.dtype, to_floating(t));
          EXPECT_EQ(out.shape, s);
          int ax = s.empty() ? 0 : (axis < 0 ? axis + int(s.size()) : axis);
          double rtol = std::max(rtol_for(out.dtype), 1e-6);
          expect_all_near(to_doubles(out), ref_softmax(x, ax, log), rtol, log ? rtol * 8 : 1e-7,
                          "");
        }
      }
    }
  }
  std::mt19937_64 rng(499);
  SCOPED_TRACE("seed 499 transposed");
  Array x = t_view(random_array({37, 5}, DType::Float32, rng, -5, 5));  // (5, 37) view
  for (int axis : {0, 1}) {
    ir::Attrs a;
    a.set("axis", int64_t(axis));
    expect_all_near(to_doubles(run_kernel("softmax", {x}, a)), ref_softmax(x, axis, false), 1e-6,
                    1e-7, "transposed");
  }
  ir::Attrs bad;
  bad.set("axis", int64_t(2));
  EXPECT_THROW(run_kernel("softmax", {x}, bad), ShapeError);
  // Large magnitudes must not overflow (max subtraction).
  Array big = Array::empty({3}, DType::Float32);
  big.data_as<float>()[0] = 1000, big.data_as<float>()[1] = 1001, big.data_as<float>()[2] = -1000;
  auto p = to_doubles(run_kernel("softmax", {big}));
  EXPECT_NEAR(p[0], 1 / (1 + std::exp(1.0)), 1e-6);
  EXPECT_NEAR(p[1], 1 / (1 + std::exp(-1.0)), 1e-6);
}

// ---- layernorm / rmsnorm --------------------------------------------------------------------

std::vector<double> ref_norm(const Array& x, int axis, const Array* w, const Array* b, double eps,
                             bool rms) {
  std::vector<double> v = to_doubles(x), out(v.size());
  Shape row(x.shape.begin() + axis, x.shape.end());
  int64_t n = numel(row);
  auto bcast = [&](const Array* a, double dflt) {
    std::vector<double> r(n, dflt);
    if (!a) return r;
    std::vector<double> av = to_doubles(*a);
    for (int64_t i = 0; i < n; ++i) {
      int64_t rem = i, off = 0, mul = 1;
      for (int d = int(row.size()) - 1, da = a->rank() - 1; d >= 0; --d, --da) {
        int64_t idx = rem % row[d];
        rem /= row[d];
        if (da >= 0) {
          off += (a->shape[da] == 1 ? 0 : idx) * mul;
          mul *= a->shape[da];
        }
      }
      r[i] = av[off];
    }
    return r;
  };
  std::vector<double> wv = bcast(w, 1.0), bv = bcast(b, 0.0);
  for (int64_t r0 = 0; r0 + n <= int64_t(v.size()) && n > 0; r0 += n) {
    double mean = 0, var = 0;
    if (!rms) {
      for (int64_t j = 0; j < n; ++j) mean += v[r0 + j];
      mean /= double(n);
    }
    for (int64_t j = 0; j < n; ++j) var += (v[r0 + j] - mean) * (v[r0 + j] - mean);
    var /= double(n);
    for (int64_t j = 0; j < n; ++j)
      out[r0 + j] = (v[r0 + j] - mean) / std::sqrt(var + eps) * wv[j] + bv[j];
  }
  return out;
}

TEST(OpsNorm, LayerNormAndRmsNorm) {
  struct Case {
    Shape x;
    int axis;
    std::optional<Shape> w, b;
  };
  const std::vector<Case> cases = {
      {{4, 37}, -1, Shape{37}, Shape{37}},   {{4, 37}, -1, std::nullopt, std::nullopt},
      {{2, 3, 5}, 1, Shape{3, 5}, Shape{5}}, {{2, 3, 5}, 1, Shape{5}, std::nullopt},
      {{1031}, 0, Shape{1}, Shape{1031}},    {{3, 0, 4}, -1, Shape{4}, Shape{4}},
      {{}, -1, std::nullopt, std::nullopt},  {{7, 129}, 0, std::nullopt, std::nullopt}};
  uint64_t seed = 500;
  for (const char* op : {"layernorm", "rmsnorm"}) {
    bool rms = std::string(op) == "rmsnorm";
    for (DType t :
         {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16, DType::Int32}) {
      for (const Case& c : cases) {
        std::mt19937_64 rng(++seed);
        SCOPED_TRACE(str("seed ", seed, " ", op, " ", dtype_name(t), " ", shape_str(c.x)));
        Array x = random_array(c.x, t, rng, -3, 5);
        std::vector<Array> ins = {x};
        std::optional<Array> w, b;
        if (c.w) w = random_array(*c.w, t == DType::Int32 ? DType::Float32 : t, rng);
        if (c.b && !rms) b = random_array(*c.b, t == DType::Int32 ? DType::Float32 : t, rng);
        if (w) ins.push_back(*w);
        if (b) {
          if (!w) continue;
          ins.push_back(*b);
        }
        ir::Attrs a;
        a.set("axis", int64_t(c.axis));
        Array out = run_kernel(op, ins, a);
        EXPECT_EQ(out.shape, c.x);
        EXPECT_EQ(out.dtype, to_floating(t));
        int ax = c.x.empty() ? 0 : (c.axis < 0 ? c.axis + int(c.x.size()) : c.axis);
        double eps = rms ? 1e-6 : 1e-5;
        double rtol = std::max(rtol_for(out.dtype), 2e-6);
        expect_all_near(to_doubles(out),
                        ref_norm(x, ax, w ? &*w : nullptr, b ? &*b : nullptr, eps, rms), rtol,
                        rtol * 4, "");
      }
    }
  }
  std::mt19937_64 rng(599);
  SCOPED_TRACE("seed 599 errors and views");
  Array x = random_array({4, 37}, DType::Float32, rng);
  EXPECT_THROW(run_kernel("layernorm", {x, random_array({4}, DType::Float32, rng)}), ShapeError);
  ir::Attrs bad;
  bad.set("axis", int64_t(5));
  EXPECT_THROW(run_kernel("rmsnorm", {x}, bad), ShapeError);
  Array xt = t_view(random_array({37, 4}, DType::Float32, rng));  // (4, 37) strided
  Array w = random_array({37}, DType::Float32, rng);
  expect_all_near(to_doubles(run_kernel("rmsnorm", {xt, w})),
                  ref_norm(xt, 1, &w, nullptr, 1e-6, true), 2e-6, 1e-6, "strided rmsnorm");
}

// ---- attention ------------------------------------------------------------------------------

// Reference: explicit scores, mask, causal rule, softmax; rows with no attended key are zero.
std::vector<double> ref_attention(const Array& q, const Array& k, const Array& v, const Array* mask,
                                  std::optional<double> scale, bool causal, Shape& out_shape) {
  auto bshape = [](const Shape& s) { return Shape(s.begin(), s.end() - 2); };
  Shape batch = broadcast_shapes(broadcast_shapes(bshape(q.shape), bshape(k.shape), "t"),
                                 bshape(v.shape), "t");
  int64_t Lq = q.shape[q.rank() - 2], D = q.shape.back(), Lk = k.shape[k.rank() - 2],
          Dv = v.shape.back();
  out_shape = batch;
  out_shape.push_back(Lq);
  out_shape.push_back(Dv);
  double sc = scale ? *scale : 1.0 / std::sqrt(double(D));
  // Element of `a` broadcast to batch + [r, c].
  auto at = [&](const Array& a, int64_t bi, int64_t r, int64_t c) {
    Shape full = batch;
    full.push_back(a.shape[a.rank() - 2]);
    full.push_back(a.shape.back());
    Strides st = broadcast_strides(a.shape, a.strides, full);
    int64_t off = r * st[batch.size()] + c * st[batch.size() + 1];
    for (int d = int(batch.size()) - 1; d >= 0; --d) {
      off += (bi % batch[d]) * st[d];
      bi /= batch[d];
    }
    return nef::dispatch_dtype(a.dtype, [&]<typename T>() -> double {
      return double(nef::load_as(static_cast<const T*>(a.data())[off]));
    });
  };
  auto at_mask = [&](int64_t bi, int64_t r, int64_t c) {
    Shape full = batch;
    full.push_back(Lq);
    full.push_back(Lk);
    Strides st = broadcast_strides(mask->shape, mask->strides, full);
    int64_t off = r * st[batch.size()] + c * st[batch.size() + 1];
    for (int d = int(batch.size()) - 1; d >= 0; --d) {
      off += (bi % batch[d]) * st[d];
      bi /= batch[d];
    }
    return nef::dispatch_dtype(mask->dtype, [&]<typename T>() -> double {
      return double(nef::load_as(static_cast<const T*>(mask->data())[off]));
    });
  };
  std::vector<double> out;
  for (int64_t bi = 0; bi < numel(batch); ++bi)
    for (int64_t i = 0; i < Lq; ++i) {
      std::vector<double> s(Lk);
      std::vector<bool> keep(Lk, true);
      for (int64_t j = 0; j < Lk; ++j) {
        double d = 0;
        for (int64_t e = 0; e < D; ++e) d += at(q, bi, i, e) * at(k, bi, j, e);
        s[j] = d * sc;
        if (mask) {
          double m = at_mask(bi, i, j);
          if (mask->dtype == DType::Bool) keep[j] = m != 0;
          else s[j] += m;
        }
        if (causal && j > i + Lk - Lq) keep[j] = false;
        if (s[j] == -INFINITY) keep[j] = false;
      }
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < Lk; ++j)
        if (keep[j]) mx = std::max(mx, s[j]);
      for (int64_t j = 0; j < Lk; ++j)
        if (keep[j]) sum += std::exp(s[j] - mx);
      for (int64_t e = 0; e < Dv; ++e) {
        double acc = 0;
        for (int64_t j = 0; j < Lk; ++j)
          if (keep[j]) acc += std::exp(s[j] - mx) / sum * at(v, bi, j, e);
        out.push_back(sum > 0 ? acc : 0.0);
      }
    }
  return out;
}

TEST(OpsAttention, MatchesReference) {
  struct Case {
    Shape q, k, v;
    std::optional<Shape> mask;
    DType mask_t;
    bool causal;
    std::optional<double> scale;
  };
  const std::vector<Case> cases = {
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, std::nullopt, DType::Bool, false, std::nullopt},
      {{2, 3, 5, 8}, {1, 3, 7, 8}, {3, 7, 6}, std::nullopt, DType::Bool, true, std::nullopt},
      {{5, 8}, {7, 8}, {7, 6}, Shape{5, 7}, DType::Bool, false, 0.3},
      {{2, 5, 8}, {2, 7, 8}, {2, 7, 6}, Shape{7}, DType::Float32, true, std::nullopt},
      {{1, 37, 16}, {1, 129, 16}, {1, 129, 9}, Shape{37, 129}, DType::Float32, false, std::nullopt},
      {{7, 4}, {5, 4}, {5, 3}, std::nullopt, DType::Bool, true, std::nullopt},  // Lq > Lk
      {{2, 0, 4}, {2, 5, 4}, {2, 5, 3}, std::nullopt, DType::Bool, false, std::nullopt},
      {{3, 4}, {0, 4}, {0, 3}, std::nullopt, DType::Bool, false, std::nullopt}};
  uint64_t seed = 600;
  for (DType t : {DType::Float32, DType::Float64, DType::Float16, DType::BFloat16}) {
    for (const Case& c : cases) {
      std::mt19937_64 rng(++seed);
      SCOPED_TRACE(str("seed ", seed, " ", dtype_name(t), " q", shape_str(c.q), " k",
                       shape_str(c.k), " v", shape_str(c.v), " causal ", c.causal));
      Array q = random_array(c.q, t, rng), k = random_array(c.k, t, rng),
            v = random_array(c.v, t, rng);
      std::vector<Array> ins = {q, k, v};
      std::optional<Array> mask;
      if (c.mask) {
        mask = random_array(*c.mask, c.mask_t, rng, -1, 1);
        ins.push_back(*mask);
      }
      ir::Attrs a;
      a.set("causal", c.causal);
      if (c.scale) a.set("scale", *c.scale);
      Array out = run_kernel("attention", ins, a);
      Shape ref_shape;
      std::vector<double> ref =
          ref_attention(q, k, v, mask ? &*mask : nullptr, c.scale, c.causal, ref_shape);
      EXPECT_EQ(out.shape, ref_shape);
      EXPECT_EQ(out.dtype, t);
      double rtol = std::max(rtol_for(t), 1e-5);
      expect_all_near(to_doubles(out), ref, rtol, rtol * 2, "");
    }
  }
}

TEST(OpsAttention, FullyMaskedRowsAndErrors) {
  std::mt19937_64 rng(700);
  SCOPED_TRACE("seed 700");
  Array q = random_array({3, 4}, DType::Float32, rng),
        k = random_array({5, 4}, DType::Float32, rng),
        v = random_array({5, 2}, DType::Float32, rng);
  Array mask = Array::empty({3, 5}, DType::Bool);
  for (int i = 0; i < 15; ++i) mask.data_as<bool>()[i] = i >= 5;  // row 0 attends nothing
  auto out = to_doubles(run_kernel("attention", {q, k, v, mask}));
  EXPECT_EQ(out[0], 0.0);
  EXPECT_EQ(out[1], 0.0);
  Array fmask = Array::empty({5}, DType::Float32);
  for (int i = 0; i < 5; ++i) fmask.data_as<float>()[i] = -INFINITY;
  for (double e : to_doubles(run_kernel("attention", {q, k, v, fmask}))) EXPECT_EQ(e, 0.0);
  // causal with Lq > Lk: the first Lq - Lk queries see no key.
  Array q7 = random_array({7, 4}, DType::Float32, rng);
  ir::Attrs c;
  c.set("causal", true);
  auto oc = to_doubles(run_kernel("attention", {q7, k, v}, c));
  for (int i = 0; i < 2 * 2; ++i) EXPECT_EQ(oc[i], 0.0);

  EXPECT_THROW(run_kernel("attention", {q, random_array({5, 3}, DType::Float32, rng), v}),
               ShapeError);
  EXPECT_THROW(run_kernel("attention", {q, k, random_array({4, 2}, DType::Float32, rng)}),
               ShapeError);
  EXPECT_THROW(run_kernel("attention", {q, k, v, random_array({4, 5}, DType::Bool, rng)}),
               ShapeError);
  EXPECT_THROW(run_kernel("attention", {q, k, v, random_array({3, 5}, DType::Int32, rng)}),
               TypeError);
  EXPECT_THROW(run_kernel("attention", {random_array({4}, DType::Float32, rng), k, v}), ShapeError);
  EXPECT_THROW(run_kernel("attention", {random_array({2, 3, 4}, DType::Float32, rng),
                                        random_array({3, 5, 4}, DType::Float32, rng),
                                        random_array({3, 5, 2}, DType::Float32, rng)}),
               ShapeError);
}

}  // namespace
}  // namespace nef::test
