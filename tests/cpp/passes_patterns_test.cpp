// Pattern recognition pass: hand-written numpy-style softmax, log_softmax, layernorm, rmsnorm,
// gelu and silu become one fused op (structure), computing what the unoptimized graph computes
// (numerics); near misses (other axes, shared intermediates, wrong constants) stay as written.
#include <gtest/gtest.h>

#include <cmath>

#include "passes_test_util.h"

namespace nef {
namespace {

using test::Both;
using test::expect_equivalent;
using test::lit;
using test::rand_tensor;

constexpr double kRtol = 1e-5, kAtol = 2e-6;
std::vector<int64_t> ax(std::initializer_list<int64_t> a) { return a; }

// Each helper returns only the result. (A held intermediate no longer blocks a pattern: only
// tensors evaluated together become graph outputs.)
Tensor hand_softmax(const Tensor& x, int64_t axis, bool shift) {
  Tensor z = shift ? x - max(x, ax({axis}), true) : x;
  Tensor e = exp(z);
  return e / sum(e, ax({axis}), true);
}

Tensor hand_log_softmax(const Tensor& x, int64_t axis) {
  Tensor z = x - max(x, ax({axis}), true);
  return z - log(sum(exp(z), ax({axis}), true));
}

enum class Var { MulSelf, Pow2, Rsqrt };
Tensor hand_layernorm(const Tensor& x, std::vector<int64_t> axes, double eps, Var var,
                      const Tensor& w = {}, const Tensor& b = {}) {
  Tensor d = x - mean(x, axes, true);
  Tensor v = mean(var == Var::Pow2 ? pow(d, lit(2.0)) : d * d, axes, true);
  Tensor n = var == Var::Rsqrt ? d * rsqrt(v + eps) : d / sqrt(v + eps);
  if (w.defined()) n = n * w;
  if (b.defined()) n = n + b;
  return n;
}

Tensor hand_rmsnorm(const Tensor& x, double eps, bool rsq, const Tensor& w = {}) {
  Tensor ms = mean(x * x, ax({-1}), true) + eps;
  Tensor n = rsq ? x * rsqrt(ms) : x / sqrt(ms);
  return w.defined() ? w * n : n;
}

// ---- softmax / log_softmax ---------------------------------------------------------------------

TEST(PassPatterns, SoftmaxWithAndWithoutMaxShift) {
  NEF_SEEDED_RNG(rng, 301);
  struct Case {
    Shape s;
    int64_t axis;
  };
  for (Case c : {Case{{4, 7}, -1}, Case{{4, 7}, 0}, Case{{2, 3, 5}, 1}, Case{{3, 1}, 1},
                 Case{{0, 5}, -1}, Case{{9}, 0}}) {
    for (bool shift : {true, false}) {
      SCOPED_TRACE(::testing::Message() << shape_str(c.s) << " axis " << c.axis << " " << shift);
      Tensor x = rand_tensor(rng, c.s, DType::Float32, -4, 4);
      Both b = NEF_BOTH(hand_softmax(x, c.axis, shift));
      EXPECT_EQ(b.count("softmax"), 1) << b.text();
      EXPECT_EQ(b.graph().nodes.size(), 2u) << b.text();  // input, softmax
      int64_t want = c.axis < 0 ? c.axis + int64_t(c.s.size()) : c.axis;
      EXPECT_EQ(b.first("softmax").attrs.get_int("axis"), want);
      expect_equivalent(b, kRtol, kAtol);
    }
  }
}

TEST(PassPatterns, SoftmaxInsideALargerGraph) {
  NEF_SEEDED_RNG(rng, 302);
  Tensor x = rand_tensor(rng, {5, 6}), w = rand_tensor(rng, {6, 3});
  Both b = NEF_BOTH(hand_softmax(matmul(x, w), -1, true) + 1.0);
  EXPECT_EQ(b.count("softmax"), 1) << b.text();
  EXPECT_EQ(b.count("exp"), 0) << b.text();
  EXPECT_EQ(b.count("matmul"), 1) << b.text();
  expect_equivalent(b, kRtol, kAtol);
}

TEST(PassPatterns, SoftmaxNearMissesStay) {
  NEF_SEEDED_RNG(rng, 303);
  Tensor x = rand_tensor(rng, {4, 6}), y = rand_tensor(rng, {4, 6});
  // Sum over two axes; numerator and denominator of different tensors.
  Tensor two_axes = [&] {
    Tensor e = exp(x);
    return e / sum(e, ax({0, 1}), true);
  }();
  Tensor other = exp(x) / sum(exp(y), ax({1}), true);
  Both b = NEF_BOTH(two_axes, other);
  EXPECT_EQ(b.count("softmax"), 0) << b.text();
  expect_equivalent(b, kRtol, kAtol);
  // An intermediate that is also a graph output has a second user: not fused. One that is only
  // held by a variable is fused.
  Tensor e = exp(x - max(x, ax({1}), true));
  Both held = NEF_BOTH(e / sum(e, ax({1}), true), e);
  EXPECT_EQ(held.count("softmax"), 0) << held.text();
  Both only_held = NEF_BOTH(e / sum(e, ax({1}), true));
  EXPECT_EQ(only_held.count("softmax"), 1) << only_held.text();
  expect_equivalent(held, kRtol, kAtol);
  e = Tensor();
  // The denominator also used by another output.
  Both shared = test::compile_outputs([&] {
    Tensor ex = exp(x);
    Tensor s = sum(ex, ax({1}), true);
    return std::vector<Tensor>{ex / s, s * 2.0};
  });
  EXPECT_EQ(shared.count("softmax"), 0) << shared.text();
  expect_equivalent(shared, kRtol, kAtol);
}

TEST(PassPatterns, LogSoftmax) {
  NEF_SEEDED_RNG(rng, 304);
  Tensor x = rand_tensor(rng, {3, 8}, DType::Float32, -5, 5);
  Both b = NEF_BOTH(hand_log_softmax(x, -1), hand_log_softmax(x, 0));
  EXPECT_EQ(b.count("log_softmax"), 2) << b.text();
  EXPECT_EQ(b.count("exp"), 0) << b.text();
  expect_equivalent(b, kRtol, kAtol);
}

// ---- layernorm / rmsnorm -----------------------------------------------------------------------

TEST(PassPatterns, LayernormVariants) {
  NEF_SEEDED_RNG(rng, 401);
  Tensor x = rand_tensor(rng, {5, 12}, DType::Float32, -3, 3);
  Tensor w = rand_tensor(rng, {12}), bias = rand_tensor(rng, {12});
  for (Var v : {Var::MulSelf, Var::Pow2, Var::Rsqrt}) {
    SCOPED_TRACE(int(v));
    Both b = NEF_BOTH(hand_layernorm(x, ax({-1}), 1e-5, v, w, bias),
                      hand_layernorm(x, ax({1}), 1e-3, v, w), hand_layernorm(x, ax({-1}), 0.25, v));
    EXPECT_EQ(b.count("layernorm"), 3) << b.text();
    EXPECT_EQ(b.count("mean"), 0) << b.text();
    EXPECT_EQ(b.count("mul") + b.count("add") + b.count("div"), 0) << b.text();
    const ir::Graph& g = b.graph();
    EXPECT_EQ(g.nodes[g.outputs[0]].inputs.size(), 3u);
    EXPECT_EQ(g.nodes[g.outputs[1]].inputs.size(), 2u);
    EXPECT_DOUBLE_EQ(g.nodes[g.outputs[0]].attrs.get_float("eps"), 1e-5);
    EXPECT_DOUBLE_EQ(g.nodes[g.outputs[1]].attrs.get_float("eps"), 1e-3);
    EXPECT_EQ(g.nodes[g.outputs[1]].attrs.get_int("axis"), 1);
    expect_equivalent(b, kRtol, 1e-5);
  }
}

TEST(PassPatterns, LayernormOverTrailingAxesAndDuplicatedCentering) {
  NEF_SEEDED_RNG(rng, 402);
  Tensor x = rand_tensor(rng, {2, 3, 4});
  Tensor w = rand_tensor(rng, {3, 4});
  Both b = NEF_BOTH(hand_layernorm(x, ax({1, 2}), 1e-5, Var::MulSelf, w));
  EXPECT_EQ(b.count("layernorm"), 1) << b.text();
  EXPECT_EQ(b.first("layernorm").attrs.get_int("axis"), 1);
  expect_equivalent(b, kRtol, 1e-5);
  // `x - mean(x)` written out three times (as numpy code often does).
  auto centered = [&] { return x - mean(x, ax({-1}), true); };
  Tensor y = centered() / sqrt(mean(centered() * centered(), ax({-1}), true) + 1e-5);
  Both dup = NEF_BOTH(y);
  EXPECT_EQ(dup.count("layernorm"), 1) << dup.text();
  EXPECT_EQ(dup.count("sub"), 0) << dup.text();
  expect_equivalent(dup, kRtol, 1e-5);
}

TEST(PassPatterns, LayernormNearMissesStay) {
  NEF_SEEDED_RNG(rng, 403);
  Tensor x = rand_tensor(rng, {4, 5});
  // Normalizing over a leading axis is not a layernorm (it normalizes axis..end).
  Both lead = NEF_BOTH(hand_layernorm(x, ax({0}), 1e-5, Var::MulSelf));
  EXPECT_EQ(lead.count("layernorm") + lead.count("rmsnorm"), 0) << lead.text();
  expect_equivalent(lead, kRtol, 1e-5);
  // Mean and variance over different axes.
  Tensor d = x - mean(x, ax({1}), true);
  Tensor mixed = d / sqrt(mean(d * d, ax({0}), true) + 1e-5);
  d = Tensor();
  Both mix = NEF_BOTH(mixed);
  EXPECT_EQ(mix.count("layernorm"), 0) << mix.text();
  expect_equivalent(mix, kRtol, 1e-5);
  // A weight that does not broadcast to the normalized dims: normalization fused, mul kept.
  Tensor w = rand_tensor(rng, {4, 1});
  Both wt = NEF_BOTH(hand_layernorm(x, ax({-1}), 1e-5, Var::MulSelf, w));
  EXPECT_EQ(wt.count("layernorm"), 1) << wt.text();
  EXPECT_EQ(wt.count("mul"), 1) << wt.text();
  EXPECT_EQ(wt.first("layernorm").inputs.size(), 1u);
  expect_equivalent(wt, kRtol, 1e-5);
  // A negative "eps" is not an eps.
  Both neg = NEF_BOTH(hand_layernorm(x, ax({-1}), -1e-3, Var::MulSelf));
  EXPECT_EQ(neg.count("layernorm"), 0) << neg.text();
}

TEST(PassPatterns, NormalizationByInputsOrConstantsIsNotANorm) {
  // Batch norm's form, (x - m) / sqrt(v + eps) with m and v given (not means of x), and a
  // division by sqrt of a constant once made the matcher read an input of a source node.
  NEF_SEEDED_RNG(rng, 405);
  Tensor x = rand_tensor(rng, {2, 3, 4});
  Tensor m = rand_tensor(rng, {3, 1});
  Tensor v = rand_tensor(rng, {3, 1}, DType::Float32, 0.5, 2);
  Both bn = NEF_BOTH((x - m) / sqrt(v + 1e-5));
  EXPECT_EQ(bn.count("layernorm") + bn.count("rmsnorm"), 0) << bn.text();
  expect_equivalent(bn, kRtol, 1e-5);
  Both c = NEF_BOTH(x / sqrt(lit(2.0)));
  EXPECT_EQ(c.count("rmsnorm"), 0) << c.text();
  expect_equivalent(c, kRtol, 1e-5);
}

TEST(PassPatterns, Rmsnorm) {
  NEF_SEEDED_RNG(rng, 404);
  Tensor x = rand_tensor(rng, {3, 16});
  Tensor w = rand_tensor(rng, {16});
  Both b = NEF_BOTH(hand_rmsnorm(x, 1e-6, false, w), hand_rmsnorm(x, 1e-5, true));
  EXPECT_EQ(b.count("rmsnorm"), 2) << b.text();
  EXPECT_EQ(b.count("mean") + b.count("mul"), 0) << b.text();
  const ir::Graph& g = b.graph();
  EXPECT_EQ(g.nodes[g.outputs[0]].inputs.size(), 2u);
  EXPECT_DOUBLE_EQ(g.nodes[g.outputs[1]].attrs.get_float("eps"), 1e-5);
  expect_equivalent(b, kRtol, 1e-5);
  // The mean square also an output: not fused.
  Tensor ms = mean(x * x, ax({-1}), true);
  Both held = NEF_BOTH(x / sqrt(ms + 1e-6), ms);
  EXPECT_EQ(held.count("rmsnorm"), 0) << held.text();
  expect_equivalent(held, kRtol, 1e-5);
}

// ---- gelu / silu -------------------------------------------------------------------------------

TEST(PassPatterns, GeluErfOrderings) {
  NEF_SEEDED_RNG(rng, 501);
  Tensor x = rand_tensor(rng, {6, 7}, DType::Float32, -4, 4);
  auto t = [&] { return lit(1.0) + erf(x / std::sqrt(2.0)); };
  Both b = NEF_BOTH(lit(0.5) * x * t(), x * 0.5 * t(), x * t() * 0.5,
                    (x * (lit(1.0) + erf(x * 0.70710678))) / 2.0, lit(0.5) * (t() * x));
  EXPECT_EQ(b.count("gelu"), 1) << b.text();  // five spellings, one node after cse
  EXPECT_EQ(b.first("gelu").attrs.get_string("approximate"), "none");
  EXPECT_EQ(b.count("erf"), 0) << b.text();
  expect_equivalent(b, kRtol, kAtol);
}

TEST(PassPatterns, GeluTanh) {
  NEF_SEEDED_RNG(rng, 502);
  Tensor x = rand_tensor(rng, {5, 9}, DType::Float32, -4, 4);
  double c = std::sqrt(2.0 / M_PI);
  Tensor a = lit(0.5) * x * (lit(1.0) + tanh(lit(c) * (x + lit(0.044715) * pow(x, lit(3.0)))));
  Tensor b3 = x * 0.5 * (lit(1.0) + tanh((x + x * x * x * 0.044715) * 0.7978845608));
  Both b = NEF_BOTH(a, b3 + 1.0);
  EXPECT_EQ(b.count("gelu"), 1) << b.text();
  EXPECT_EQ(b.first("gelu").attrs.get_string("approximate"), "tanh");
  EXPECT_EQ(b.count("tanh") + b.count("pow"), 0) << b.text();
  expect_equivalent(b, kRtol, kAtol);
}

TEST(PassPatterns, GeluNearMissesStay) {
  NEF_SEEDED_RNG(rng, 503);
  Tensor x = rand_tensor(rng, {8});
  Tensor y = rand_tensor(rng, {8});
  Both b = NEF_BOTH(
      lit(0.6) * x * (lit(1.0) + erf(x / std::sqrt(2.0))), lit(0.5) * x * (lit(1.0) + erf(x / 1.5)),
      lit(0.5) * x * (lit(1.0) + erf(y / std::sqrt(2.0))),
      lit(0.5) * x * (lit(1.0) + tanh(lit(0.7978845608) * (x + lit(0.045) * x * x * x))));
  EXPECT_EQ(b.count("gelu"), 0) << b.text();
  expect_equivalent(b, kRtol, kAtol);
  // erf(...) used twice: the pattern's intermediate has another user.
  Both shared = test::compile_outputs([&] {
    Tensor e = erf(x / std::sqrt(2.0));
    return std::vector<Tensor>{lit(0.5) * x * (lit(1.0) + e), e + 3.0};
  });
  EXPECT_EQ(shared.count("gelu"), 0) << shared.text();
  expect_equivalent(shared, kRtol, kAtol);
}

TEST(PassPatterns, Silu) {
  NEF_SEEDED_RNG(rng, 601);
  Tensor x = rand_tensor(rng, {4, 5}, DType::Float32, -6, 6);
  Tensor x2 = rand_tensor(rng, {3});
  Both b = NEF_BOTH(x * sigmoid(x), x2 / (lit(1.0) + exp(-x2)), sigmoid(x2) * x2 * 2.0);
  EXPECT_EQ(b.count("silu"), 2) << b.text();  // x2's two spellings merge
  EXPECT_EQ(b.count("sigmoid") + b.count("exp"), 0) << b.text();
  expect_equivalent(b, kRtol, kAtol);
  Both miss = NEF_BOTH(x * sigmoid(x + 1.0), x2 / (lit(2.0) + exp(-x2)));
  EXPECT_EQ(miss.count("silu"), 0) << miss.text();
  expect_equivalent(miss, kRtol, kAtol);
}

}  // namespace
}  // namespace nef

// ---- attention ---------------------------------------------------------------------------------
namespace nef {
namespace {

enum class Scale { None, MulLeft, MulRight, Div };
enum class Mask { None, Right, Left };

// matmul(softmax(q @ kt [* c | / c] [+ mask]), v), as ONNX exporters write attention.
Tensor spelled_attention(const Tensor& q, const Tensor& kt, const Tensor& v, Scale sc, double c,
                         Mask mk, const Tensor& mask, bool hand_sm = false) {
  Tensor s = matmul(q, kt);
  if (sc == Scale::MulLeft) s = lit(c) * s;
  if (sc == Scale::MulRight) s = s * lit(c);
  if (sc == Scale::Div) s = s / lit(c);
  if (mk == Mask::Right) s = s + mask;
  if (mk == Mask::Left) s = mask + s;
  return matmul(hand_sm ? hand_softmax(s, -1, true) : softmax(s, -1), v);
}

void expect_attention(const Both& b, double scale) {
  EXPECT_EQ(b.count("attention"), 1) << b.text();
  EXPECT_EQ(b.count("softmax") + b.count("exp") + b.count("matmul"), 0) << b.text();
  const ir::Node& a = b.first("attention");
  EXPECT_NEAR(a.attrs.get_float("scale"), scale, 1e-12 * std::abs(scale)) << b.text();
  EXPECT_EQ(a.attrs.get_string("empty_rows"), "nan");
}

TEST(PassPatterns, AttentionScalesMasksAndShapes) {
  NEF_SEEDED_RNG(rng, 321);
  struct Case {
    Shape batch;
    int64_t lq, lk, d, dv;
  };
  for (Case cs : {Case{{2, 3}, 5, 7, 4, 6}, Case{{}, 3, 9, 5, 2}, Case{{1}, 1, 1, 1, 1},
                  Case{{2}, 6, 6, 8, 3}, Case{{2}, 4, 0, 3, 5}, Case{{3}, 0, 4, 2, 2}}) {
    for (DType dt : {DType::Float32, DType::Float64}) {
      auto shp = [&](int64_t a, int64_t b) {
        Shape s = cs.batch;
        s.push_back(a);
        s.push_back(b);
        return s;
      };
      Tensor q = rand_tensor(rng, shp(cs.lq, cs.d), dt), k = rand_tensor(rng, shp(cs.lk, cs.d), dt);
      Tensor v = rand_tensor(rng, shp(cs.lk, cs.dv), dt);
      Shape ms = cs.batch.empty() ? Shape{cs.lk} : Shape{cs.batch[0]};
      if (!cs.batch.empty()) {
        for (size_t d = 1; d < cs.batch.size() + 1; ++d) ms.push_back(1);
        ms.push_back(cs.lk);
      }
      Tensor mask = rand_tensor(rng, ms, dt, -3, 1);
      std::vector<int64_t> swap;
      for (size_t d = 0; d < cs.batch.size() + 2; ++d) swap.push_back(int64_t(d));
      std::swap(swap[swap.size() - 1], swap[swap.size() - 2]);
      for (Scale sc : {Scale::None, Scale::MulLeft, Scale::MulRight, Scale::Div}) {
        for (Mask mk : {Mask::None, Mask::Right, Mask::Left}) {
          SCOPED_TRACE(::testing::Message() << shape_str(shp(cs.lq, cs.lk)) << " " << dtype_name(dt)
                                            << " scale " << int(sc) << " mask " << int(mk));
          const double c = 2.75;
          Both b = NEF_BOTH(spelled_attention(q, transpose(k, swap), v, sc, c, mk, mask));
          expect_attention(b, sc == Scale::None ? 1.0 : sc == Scale::Div ? 1 / c : c);
          expect_equivalent(b, kRtol, kAtol);
        }
      }
    }
  }
}

TEST(PassPatterns, AttentionOnnxKeyLayoutAndHandWrittenSoftmax) {
  NEF_SEEDED_RNG(rng, 322);
  // MiniLM's export: key [B, S, H, D] transposed by perm [0, 2, 3, 1] to [B, H, D, S]. The
  // transpose is rewritten in place to [0, 2, 1, 3] (the key as [B, H, S, D]).
  Tensor q = rand_tensor(rng, {2, 3, 5, 4}), kx = rand_tensor(rng, {2, 5, 3, 4});
  Tensor v = rand_tensor(rng, {2, 3, 5, 6}),
         mask = rand_tensor(rng, {2, 1, 1, 5}, DType::Float32, -3, 0);
  for (bool hand : {false, true}) {
    SCOPED_TRACE(hand ? "exp / sum softmax" : "softmax op");
    Both b = NEF_BOTH(spelled_attention(q, transpose(kx, {0, 2, 3, 1}), v, Scale::Div, 2.0,
                                        Mask::Right, mask, hand));
    expect_attention(b, 0.5);
    EXPECT_EQ(b.count("transpose"), 1) << b.text();
    EXPECT_EQ(b.first("transpose").attrs.get_ints("perm"), (std::vector<int64_t>{0, 2, 1, 3}));
    expect_equivalent(b, kRtol, kAtol);
  }
}

TEST(PassPatterns, AttentionRowsWithoutKeysStayNaN) {
  NEF_SEEDED_RNG(rng, 323);
  // Softmax of an all -inf row is NaN; the fused op keeps that (empty_rows = "nan"), while a row
  // with a few -inf keys matches exactly.
  Array m = test::random_array({4, 6}, DType::Float32, rng, -1, 1);
  float* md = m.data_as<float>();
  for (int j = 0; j < 6; ++j) md[1 * 6 + j] = -INFINITY;  // row 1: nothing attended
  md[2 * 6 + 0] = md[2 * 6 + 3] = -INFINITY;              // row 2: two keys masked
  Tensor mask = from_array(m);
  Tensor q = rand_tensor(rng, {2, 4, 3}), k = rand_tensor(rng, {2, 6, 3});
  Tensor v = rand_tensor(rng, {2, 6, 5});
  Both b = NEF_BOTH(
      spelled_attention(q, transpose(k, {0, 2, 1}), v, Scale::MulRight, 0.3, Mask::Right, mask));
  expect_attention(b, 0.3);
  std::vector<Array> got = runtime::execute(b.opt, b.bindings);
  std::vector<double> g = test::to_doubles(got[0]);
  EXPECT_TRUE(std::isnan(g[1 * 5])) << "row 1 should be NaN";
  EXPECT_FALSE(std::isnan(g[2 * 5])) << "row 2 is attended";
  expect_equivalent(b, kRtol, kAtol);
  // The attr takes "zero" (the default) or "nan" only.
  const ir::TensorType t{Shape{3, 4}, DType::Float32};
  std::vector<ir::TensorType> types{t, t, t};
  ir::Attrs bad;
  bad.set("empty_rows", std::string("none"));
  EXPECT_THROW(ir::check_and_infer(ir::get_op("attention"), types, bad), ValidationError);
  ir::Attrs dflt;
  ir::check_and_infer(ir::get_op("attention"), types, dflt);
  EXPECT_EQ(dflt.get_string("empty_rows"), "zero");
}

TEST(PassPatterns, AttentionNearMissesStay) {
  NEF_SEEDED_RNG(rng, 324);
  Tensor q = rand_tensor(rng, {2, 4, 3}), k = rand_tensor(rng, {2, 4, 3});
  Tensor v = rand_tensor(rng, {2, 4, 5}), kt_in = rand_tensor(rng, {2, 3, 4});
  Tensor vec = rand_tensor(rng, {4}), one = rand_tensor(rng, {1});
  auto kt = [&] { return transpose(k, {0, 2, 1}); };
  auto check = [&](const Both& b, const char* what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(b.count("attention"), 0) << b.text();
    expect_equivalent(b, kRtol, kAtol);
  };
  // Softmax over the query axis (square scores, so the shapes still work).
  check(NEF_BOTH(matmul(softmax(matmul(q, kt()) * 0.5, 1), v)), "softmax over axis 1");
  // Scores also a graph output; softmax also a graph output.
  check(test::compile_outputs([&] {
          Tensor s = matmul(q, kt());
          return std::vector<Tensor>{matmul(softmax(s * 0.5, -1), v), s};
        }),
        "scores used twice");
  check(test::compile_outputs([&] {
          Tensor p = softmax(matmul(q, kt()), -1);
          return std::vector<Tensor>{matmul(p, v), p};
        }),
        "probabilities used twice");
  // Scale not a scalar constant: a bound one-element tensor, a per-key vector.
  check(NEF_BOTH(matmul(softmax(matmul(q, kt()) * one, -1), v)), "bound scale");
  check(NEF_BOTH(matmul(softmax(matmul(q, kt()) * vec, -1), v)), "vector scale");
  // K given as [.., D, Lk] without a transpose; a mask of another dtype (promotes the scores).
  check(NEF_BOTH(matmul(softmax(matmul(q, kt_in), -1), v)), "untransposed key");
  Tensor m64 = rand_tensor(rng, {4, 4}, DType::Float64);
  check(NEF_BOTH(matmul(softmax(matmul(q, kt()) + m64, -1), v)), "float64 mask");
  // Mask added before the scale (the scale would apply to the mask too).
  Tensor m = rand_tensor(rng, {4, 4});
  check(NEF_BOTH(matmul(softmax((matmul(q, kt()) + m) * 0.5, -1), v)), "mask before scale");
}

TEST(PassPatterns, AttentionAnyKeyTransposeIsRewired) {
  NEF_SEEDED_RNG(rng, 325);
  // kt = transpose(x, p) over other axes is still some [.., D, Lk] tensor: K is transpose(x, p)
  // with the last two perm entries swapped, so it matches with the rewired transpose.
  Tensor q = rand_tensor(rng, {3, 2, 5}), x = rand_tensor(rng, {5, 3, 4});
  Tensor v = rand_tensor(rng, {3, 4, 2});
  Both b = NEF_BOTH(
      spelled_attention(q, transpose(x, {1, 0, 2}), v, Scale::None, 1, Mask::None, Tensor()));
  expect_attention(b, 1.0);
  EXPECT_EQ(b.first("transpose").attrs.get_ints("perm"), (std::vector<int64_t>{1, 2, 0}));
  expect_equivalent(b, kRtol, kAtol);
  // Constant query and keys: the dead scores matmul must not be left reading the rewired
  // transpose (constant folding evaluates dead nodes too).
  Tensor qc = full({3, 2, 5}, 0.25) * arange(0, 5, 1, DType::Float32);
  Tensor xc = full({5, 3, 4}, -0.5) * arange(0, 4, 1, DType::Float32);
  Both c = NEF_BOTH(
      spelled_attention(qc, transpose(xc, {1, 0, 2}), v, Scale::Div, 3, Mask::None, Tensor()));
  expect_equivalent(c, kRtol, kAtol);
}

}  // namespace
}  // namespace nef
