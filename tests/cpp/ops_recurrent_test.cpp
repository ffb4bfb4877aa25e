// lstm / gru / rnn: the CPU kernels against a step-by-step reference written here in double
// (one batch row at a time, ONNX's equations with the default activations and clip), over
// directions, ragged sequence lengths, peepholes, both GRU reset modes, strided inputs and
// both kernel paths (row dot products, and the GEMM from 8 batch rows); the attributes'
// canonical form; and the structured errors of malformed nodes.
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

double sigm(double v) { return 1.0 / (1.0 + std::exp(-v)); }

struct Case {
  std::string op = "lstm";
  int64_t S = 5, B = 3, I = 4, H = 6, D = 1;
  std::string direction = "forward";
  bool peepholes = false, lbr = false;
  double clip = 0;
  std::vector<int32_t> lens;  // empty: none given
};

int64_t gates(const std::string& op) { return op == "lstm" ? 4 : op == "gru" ? 3 : 1; }

// Inputs in the op's order: x, w, r, b, h0, (c0), [lens], [p].
std::vector<Array> make_inputs(const Case& c, DType t, std::mt19937_64& rng) {
  const int64_t G = gates(c.op);
  std::vector<Array> in{random_array({c.S, c.B, c.I}, t, rng, -1, 1),
                        random_array({c.D, G * c.H, c.I}, t, rng, -0.6, 0.6),
                        random_array({c.D, G * c.H, c.H}, t, rng, -0.6, 0.6),
                        random_array({c.D, 2 * G * c.H}, t, rng, -0.5, 0.5),
                        random_array({c.D, c.B, c.H}, t, rng, -0.5, 0.5)};
  if (c.op == "lstm") in.push_back(random_array({c.D, c.B, c.H}, t, rng, -0.5, 0.5));
  if (!c.lens.empty() || c.peepholes) {
    Array l = Array::empty({c.B}, DType::Int32);
    for (int64_t b = 0; b < c.B; ++b)
      l.data_as<int32_t>()[b] = c.lens.empty() ? int32_t(c.S) : c.lens[size_t(b)];
    in.push_back(l);
  }
  if (c.peepholes) in.push_back(random_array({c.D, 3 * c.H}, t, rng, -0.5, 0.5));
  return in;
}

ir::Attrs attrs_of(const Case& c) {
  ir::Attrs a;
  a.set("direction", c.direction);
  if (c.clip > 0) a.set("clip", c.clip);
  if (c.op == "gru") a.set("linear_before_reset", c.lbr);
  return a;
}

// The packed result [S + k, D, B, H] in double, row by row.
std::vector<double> reference(const Case& c, const std::vector<Array>& in) {
  const int64_t S = c.S, B = c.B, I = c.I, H = c.H, D = c.D, G = gates(c.op);
  const bool lstm = c.op == "lstm", gru = c.op == "gru";
  const int64_t k = lstm ? 2 : 1;
  std::vector<double> out(size_t((S + k) * D * B * H), 0.0);
  auto at = [&](int64_t t, int64_t d, int64_t b, int64_t u) -> double& {
    return out[size_t(((t * D + d) * B + b) * H + u)];
  };
  auto cl = [&](double v) { return c.clip > 0 ? std::min(std::max(v, -c.clip), c.clip) : v; };
  const Array &x = in[0], &w = in[1], &r = in[2], &bias = in[3], &h0 = in[4];
  auto e3 = [](const Array& a, int64_t i, int64_t j, int64_t l) {
    return element(a, (i * a.shape[1] + j) * a.shape[2] + l);
  };
  auto e2 = [](const Array& a, int64_t i, int64_t j) { return element(a, i * a.shape[1] + j); };
  for (int64_t d = 0; d < D; ++d) {
    const bool rev = c.direction == "reverse" || d == 1;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<double> h(static_cast<size_t>(H)), cs(static_cast<size_t>(H), 0.0);
      for (int64_t u = 0; u < H; ++u) {
        h[size_t(u)] = e3(h0, d, b, u);
        if (lstm) cs[size_t(u)] = e3(in[5], d, b, u);
      }
      const int64_t L = c.lens.empty() ? S : c.lens[size_t(b)];
      for (int64_t s = 0; s < L; ++s) {
        const int64_t t = rev ? L - 1 - s : s;
        // xw[j] = x W^T + Wb, hr[j] = h R^T + Rb per gate row j.
        std::vector<double> xw(static_cast<size_t>(G * H)), hr(static_cast<size_t>(G * H));
        for (int64_t j = 0; j < G * H; ++j) {
          double a = e2(bias, d, j), q = e2(bias, d, G * H + j);
          for (int64_t i = 0; i < I; ++i) a += e3(x, t, b, i) * e3(w, d, j, i);
          for (int64_t i = 0; i < H; ++i) q += h[size_t(i)] * e3(r, d, j, i);
          xw[size_t(j)] = a, hr[size_t(j)] = q;
        }
        std::vector<double> hn(static_cast<size_t>(H));
        if (lstm) {
          for (int64_t u = 0; u < H; ++u) {
            const double p_i = c.peepholes ? e2(in[7], d, u) : 0;
            const double p_o = c.peepholes ? e2(in[7], d, H + u) : 0;
            const double p_f = c.peepholes ? e2(in[7], d, 2 * H + u) : 0;
            const double cp = cs[size_t(u)];
            const double ig = sigm(cl(xw[size_t(u)] + hr[size_t(u)] + p_i * cp));
            const double fg = sigm(cl(xw[size_t(2 * H + u)] + hr[size_t(2 * H + u)] + p_f * cp));
            const double cg = std::tanh(cl(xw[size_t(3 * H + u)] + hr[size_t(3 * H + u)]));
            const double cn = fg * cp + ig * cg;
            const double og = sigm(cl(xw[size_t(H + u)] + hr[size_t(H + u)] + p_o * cn));
            cs[size_t(u)] = cn;
            hn[size_t(u)] = og * std::tanh(cn);
          }
        } else if (gru) {
          std::vector<double> z(static_cast<size_t>(H)), rg(static_cast<size_t>(H)),
              rh(static_cast<size_t>(H));
          for (int64_t u = 0; u < H; ++u) {
            z[size_t(u)] = sigm(cl(xw[size_t(u)] + hr[size_t(u)]));
            rg[size_t(u)] = sigm(cl(xw[size_t(H + u)] + hr[size_t(H + u)]));
            rh[size_t(u)] = rg[size_t(u)] * h[size_t(u)];
          }
          for (int64_t u = 0; u < H; ++u) {
            const int64_t j = 2 * H + u;
            double pre;
            if (c.lbr) {
              pre = xw[size_t(j)] + rg[size_t(u)] * hr[size_t(j)];
            } else {  // (r (.) h) Rh^T + Rbh
              double q = e2(bias, d, G * H + j);
              for (int64_t i = 0; i < H; ++i) q += rh[size_t(i)] * e3(r, d, j, i);
              pre = xw[size_t(j)] + q;
            }
            const double ht = std::tanh(cl(pre));
            hn[size_t(u)] = (1 - z[size_t(u)]) * ht + z[size_t(u)] * h[size_t(u)];
          }
        } else {
          for (int64_t u = 0; u < H; ++u)
            hn[size_t(u)] = std::tanh(cl(xw[size_t(u)] + hr[size_t(u)]));
        }
        h = hn;
        for (int64_t u = 0; u < H; ++u) at(t, d, b, u) = h[size_t(u)];
      }
      if (L > 0)
        for (int64_t u = 0; u < H; ++u) {
          at(S, d, b, u) = h[size_t(u)];
          if (lstm) at(S + 1, d, b, u) = cs[size_t(u)];
        }
    }
  }
  return out;
}

void expect_matches(const Case& c, const std::vector<Array>& in, double tol) {
  Array got = run_kernel(c.op, in, attrs_of(c));
  const std::vector<double> want = reference(c, in);
  ASSERT_EQ(got.numel(), int64_t(want.size()));
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(element(got, i), want[size_t(i)], tol * (1 + std::abs(want[size_t(i)])))
        << c.op << " " << c.direction << " element " << i;
}

TEST(Recurrent, EveryCellAndDirectionMatchesReference) {
  std::mt19937_64 rng(7);
  for (const char* op : {"lstm", "gru", "rnn"})
    for (const char* dir : {"forward", "reverse", "bidirectional"})
      for (DType t : {DType::Float64, DType::Float32}) {
        Case c;
        c.op = op, c.direction = dir, c.D = std::string(dir) == "bidirectional" ? 2 : 1;
        c.lens = {5, 2, 0};
        c.peepholes = c.op == "lstm";
        expect_matches(c, make_inputs(c, t, rng), t == DType::Float64 ? 1e-12 : 2e-5);
      }
}

TEST(Recurrent, GruResetModesClipAndNoLengths) {
  std::mt19937_64 rng(8);
  for (bool lbr : {false, true})
    for (double clip : {0.0, 0.4}) {
      Case c;
      c.op = "gru", c.lbr = lbr, c.clip = clip, c.D = 2, c.direction = "bidirectional";
      expect_matches(c, make_inputs(c, DType::Float64, rng), 1e-12);
    }
}

TEST(Recurrent, GemmPathForLargeBatchesAndOddHiddenSizes) {
  std::mt19937_64 rng(9);
  for (const char* op : {"lstm", "gru", "rnn"}) {
    Case c;
    c.op = op, c.S = 4, c.B = 11, c.I = 13, c.H = 19, c.D = 2, c.direction = "bidirectional";
    c.lens = {4, 3, 2, 1, 0, 4, 4, 1, 2, 3, 4};
    expect_matches(c, make_inputs(c, DType::Float32, rng), 2e-5);
  }
}

TEST(Recurrent, StridedXAndR) {
  std::mt19937_64 rng(10);
  Case c;
  c.op = "lstm", c.D = 2, c.direction = "bidirectional", c.peepholes = true;
  std::vector<Array> in = make_inputs(c, DType::Float64, rng);
  // x stored [B, S, I] (seen as [S, B, I]) and each R[d] stored transposed.
  std::vector<Array> strided = in;
  Array xb = Array::empty({c.B, c.S, c.I}, DType::Float64);
  for (int64_t t = 0; t < c.S; ++t)
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t i = 0; i < c.I; ++i)
        xb.data_as<double>()[(b * c.S + t) * c.I + i] = element(in[0], (t * c.B + b) * c.I + i);
  strided[0] = xb;
  strided[0].shape = {c.S, c.B, c.I};
  strided[0].strides = {c.I, c.S * c.I, 1};
  const int64_t GH = 4 * c.H;
  Array rt = Array::empty({c.D, c.H, GH}, DType::Float64);
  for (int64_t d = 0; d < c.D; ++d)
    for (int64_t j = 0; j < GH; ++j)
      for (int64_t k = 0; k < c.H; ++k)
        rt.data_as<double>()[(d * c.H + k) * GH + j] = element(in[2], (d * GH + j) * c.H + k);
  strided[2] = rt;
  strided[2].shape = {c.D, GH, c.H};
  strided[2].strides = {c.H * GH, 1, GH};
  Array want = run_kernel("lstm", in, attrs_of(c));
  Array got = run_kernel("lstm", strided, attrs_of(c));
  for (int64_t i = 0; i < want.numel(); ++i) ASSERT_NEAR(element(got, i), element(want, i), 1e-12);
}

TEST(Recurrent, CanonicalAttributes) {
  const ir::OpDef& op = ir::get_op("lstm");
  std::vector<ir::TensorType> types{{{2, 1, 3}, DType::Float32}, {{2, 8, 3}, DType::Float32},
                                    {{2, 8, 2}, DType::Float32}, {{2, 16}, DType::Float32},
                                    {{2, 1, 2}, DType::Float32}, {{2, 1, 2}, DType::Float32}};
  ir::Attrs a;
  a.set("direction", std::string("bidirectional"));
  a.set("activations", std::string("HardSigmoid, Tanh,LeakyRelu"));
  ir::TensorType out = ir::check_and_infer(op, types, a);
  EXPECT_EQ(out.shape, (Shape{4, 2, 1, 2}));
  EXPECT_EQ(a.get_string("activations"), "hardsigmoid,tanh,leakyrelu,hardsigmoid,tanh,leakyrelu");
  EXPECT_EQ(a.get_floats("activation_alpha"), (std::vector<double>{0.2, 0, 0.01, 0.2, 0, 0.01}));
  EXPECT_EQ(a.get_floats("activation_beta"), (std::vector<double>{0.5, 0, 0, 0.5, 0, 0}));
  ir::Attrs again = a;
  ir::check_and_infer(op, types, again);
  EXPECT_EQ(again, a);  // idempotent
}

TEST(Recurrent, MalformedNodesAreStructuredErrors) {
  auto infer = [](const std::string& name, std::vector<ir::TensorType> t, ir::Attrs a = {}) {
    ir::check_and_infer(ir::get_op(name), t, a);
  };
  const DType f = DType::Float32;
  std::vector<ir::TensorType> ok{
      {{3, 2, 4}, f}, {{1, 5, 4}, f}, {{1, 5, 5}, f}, {{1, 10}, f}, {{1, 2, 5}, f}};
  EXPECT_NO_THROW(infer("rnn", ok));
  auto with = [&](size_t i, ir::TensorType t) {
    auto v = ok;
    v[i] = t;
    return v;
  };
  EXPECT_THROW(infer("rnn", with(0, {{3, 2}, f})), ShapeError);
  EXPECT_THROW(infer("rnn", with(1, {{1, 5, 3}, f})), ShapeError);
  EXPECT_THROW(infer("rnn", with(3, {{1, 5}, f})), ShapeError);
  EXPECT_THROW(infer("rnn", with(4, {{2, 2, 5}, f})), ShapeError);
  EXPECT_THROW(infer("rnn", with(1, {{1, 5, 4}, DType::Float64})), TypeError);
  EXPECT_THROW(infer("gru", ok), ShapeError);  // 5 rows are not 3 gates of 5
  auto lens = ok;
  lens.push_back({{2}, DType::Float32});
  EXPECT_THROW(infer("rnn", lens), TypeError);
  lens.back() = {{3}, DType::Int32};
  EXPECT_THROW(infer("rnn", lens), ShapeError);
  ir::Attrs bad;
  bad.set("direction", std::string("both"));
  EXPECT_THROW(infer("rnn", ok, bad), ValidationError);
  ir::Attrs acts;
  acts.set("activations", std::string("gelu"));
  EXPECT_THROW(infer("rnn", ok, acts), ValidationError);
  ir::Attrs lbr;
  lbr.set("linear_before_reset", true);
  EXPECT_THROW(infer("rnn", ok, lbr), ValidationError);  // a gru attribute
  try {
    infer("rnn", with(2, {{1, 5, 6}, f}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[rnn] r must be (1, 6, 6)"), std::string::npos)
        << e.what();
  }
  // Sequence lengths outside [0, S] are found when the kernel runs.
  std::mt19937_64 rng(11);
  Case c;
  c.op = "rnn", c.lens = {1, 6, 2};
  EXPECT_THROW(run_kernel("rnn", make_inputs(c, f, rng), attrs_of(c)), ValidationError);
}

}  // namespace
}  // namespace nef
