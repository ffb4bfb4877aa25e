// conv and conv_transpose against float64 references written here as plain loops over output
// (conv) or input (conv_transpose, a scatter) positions: 1-3 spatial dims, strides, dilations,
// asymmetric pads, groups (depthwise too: the direct-loop path), 1x1 (no im2col), chunked
// column buffers, strided inputs, every float dtype, zero-size dims, inference and errors.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "common/session.h"
#include "test_util.h"

namespace nef::test {
namespace {

using Ints = std::vector<int64_t>;

struct Conv {
  Shape x, w;
  Ints strides, pads, dilations;  // empty: attribute left to its default
  int64_t groups = 1;
  bool bias = false;
  Ints output_padding;  // conv_transpose only
};

ir::Attrs attrs_of(const Conv& c, bool transpose) {
  ir::Attrs a;
  if (!c.strides.empty()) a.set("strides", c.strides);
  if (!c.pads.empty()) a.set("pads", c.pads);
  if (!c.dilations.empty()) a.set("dilations", c.dilations);
  if (c.groups != 1) a.set("groups", c.groups);
  if (transpose && !c.output_padding.empty()) a.set("output_padding", c.output_padding);
  return a;
}

// Geometry padded to 3 spatial dims, read back from the canonical attributes.
struct RefGeom {
  int64_t k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1}, pb[3] = {0, 0, 0};
  int64_t x[3] = {1, 1, 1}, o[3] = {1, 1, 1};
};
RefGeom ref_geom(const Shape& xs, const Shape& ws, const Shape& os, const ir::Attrs& a) {
  RefGeom g;
  int nsp = int(xs.size()) - 2, lead = 3 - nsp;
  for (int i = 0; i < nsp; ++i) {
    g.k[lead + i] = ws[2 + i];
    g.s[lead + i] = a.get_ints("strides")[i];
    g.d[lead + i] = a.get_ints("dilations")[i];
    g.pb[lead + i] = a.get_ints("pads")[i];
    g.x[lead + i] = xs[2 + i];
    g.o[lead + i] = os[2 + i];
  }
  return g;
}

// out[n, m, o] = b[m] + sum_{c, t} w[m, c, t] x[n, g*Cg + c, o*s - pb + t*d]; also sum |terms|.
void ref_conv(const Array& x, const Array& w, const Array* b, const Shape& os, const ir::Attrs& a,
              std::vector<double>& val, std::vector<double>& mag) {
  RefGeom g = ref_geom(x.shape, w.shape, os, a);
  std::vector<double> vx = to_doubles(x), vw = to_doubles(w);
  std::vector<double> vb = b ? to_doubles(*b) : std::vector<double>(os[1], 0.0);
  int64_t N = x.shape[0], C = x.shape[1], M = os[1], G = a.get_int("groups");
  int64_t Cg = C / G, Mg = M / G;
  val.assign(numel(os), 0.0);
  mag.assign(numel(os), 0.0);
  int64_t oi = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oz = 0; oz < g.o[0]; ++oz)
        for (int64_t oy = 0; oy < g.o[1]; ++oy)
          for (int64_t ox = 0; ox < g.o[2]; ++ox, ++oi) {
            double s = vb[m], am = std::abs(vb[m]);
            for (int64_t c = 0; c < Cg; ++c)
              for (int64_t kz = 0; kz < g.k[0]; ++kz)
                for (int64_t ky = 0; ky < g.k[1]; ++ky)
                  for (int64_t kx = 0; kx < g.k[2]; ++kx) {
                    int64_t iz = oz * g.s[0] - g.pb[0] + kz * g.d[0];
                    int64_t iy = oy * g.s[1] - g.pb[1] + ky * g.d[1];
                    int64_t ix = ox * g.s[2] - g.pb[2] + kx * g.d[2];
                    if (iz < 0 || iz >= g.x[0] || iy < 0 || iy >= g.x[1] || ix < 0 || ix >= g.x[2])
                      continue;
                    int64_t ch = (m / Mg) * Cg + c;
                    double xv = vx[(((n * C + ch) * g.x[0] + iz) * g.x[1] + iy) * g.x[2] + ix];
                    double wv = vw[(((m * Cg + c) * g.k[0] + kz) * g.k[1] + ky) * g.k[2] + kx];
                    s += xv * wv;
                    am += std::abs(xv * wv);
                  }
            val[oi] = s;
            mag[oi] = am;
          }
}

// The scatter definition: out[n, g*Mg + m, i*s - pb + t*d] += x[n, g*Cg + c, i] w[g*Cg + c, m, t].
void ref_conv_transpose(const Array& x, const Array& w, const Array* b, const Shape& os,
                        const ir::Attrs& a, std::vector<double>& val, std::vector<double>& mag) {
  RefGeom g = ref_geom(x.shape, w.shape, os, a);
  std::vector<double> vx = to_doubles(x), vw = to_doubles(w);
  int64_t N = x.shape[0], C = x.shape[1], M = os[1], G = a.get_int("groups");
  int64_t Cg = C / G, Mg = M / G, P = g.o[0] * g.o[1] * g.o[2];
  val.assign(numel(os), 0.0);
  mag.assign(numel(os), 0.0);
  if (b) {
    std::vector<double> vb = to_doubles(*b);
    for (int64_t i = 0; i < numel(os); ++i) {
      val[i] = vb[(i / P) % M];
      mag[i] = std::abs(val[i]);
    }
  }
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ch = 0; ch < C; ++ch)
      for (int64_t iz = 0; iz < g.x[0]; ++iz)
        for (int64_t iy = 0; iy < g.x[1]; ++iy)
          for (int64_t ix = 0; ix < g.x[2]; ++ix) {
            double xv = vx[(((n * C + ch) * g.x[0] + iz) * g.x[1] + iy) * g.x[2] + ix];
            for (int64_t m = 0; m < Mg; ++m)
              for (int64_t kz = 0; kz < g.k[0]; ++kz)
                for (int64_t ky = 0; ky < g.k[1]; ++ky)
                  for (int64_t kx = 0; kx < g.k[2]; ++kx) {
                    int64_t oz = iz * g.s[0] - g.pb[0] + kz * g.d[0];
                    int64_t oy = iy * g.s[1] - g.pb[1] + ky * g.d[1];
                    int64_t ox = ix * g.s[2] - g.pb[2] + kx * g.d[2];
                    if (oz < 0 || oz >= g.o[0] || oy < 0 || oy >= g.o[1] || ox < 0 || ox >= g.o[2])
                      continue;
                    double wv = vw[(((ch * Mg + m) * g.k[0] + kz) * g.k[1] + ky) * g.k[2] + kx];
                    int64_t oc = (ch / Cg) * Mg + m;
                    int64_t o = (((n * M + oc) * g.o[0] + oz) * g.o[1] + oy) * g.o[2] + ox;
                    val[o] += xv * wv;
                    mag[o] += std::abs(xv * wv);
                  }
          }
}

double rtol_for(DType t) {
  switch (t) {
    case DType::Float16:
      return 2e-3;
    case DType::BFloat16:
      return 1.6e-2;
    case DType::Float32:
      return 3e-6;
    default:
      return 1e-12;
  }
}

// Runs the op on random inputs of dtype t (x optionally given as a transposed view) and compares
// with the reference: half-ulp of the output type relative to the value, plus accumulation
// error relative to the sum of |terms|.
void check(const std::string& op, const Conv& c, DType t, uint64_t seed, bool strided_x = false) {
  SCOPED_TRACE(str(op, " seed ", seed, " ", dtype_name(t), " x ", shape_str(c.x), " w ",
                   shape_str(c.w), " groups ", c.groups, strided_x ? " strided x" : ""));
  std::mt19937_64 rng(seed);
  const bool transpose = op == "conv_transpose";
  Array x = random_array(c.x, t, rng, -1, 1);
  if (strided_x) {
    // The same logical values read through swapped last two dims of a transposed buffer.
    Shape ts = c.x;
    std::swap(ts[ts.size() - 1], ts[ts.size() - 2]);
    Array buf = random_array(ts, t, rng, -1, 1);
    x = buf;
    x.shape = c.x;
    std::swap(x.strides[x.rank() - 1], x.strides[x.rank() - 2]);
  }
  Array w = random_array(c.w, t, rng, -1, 1);
  int64_t m = transpose ? c.w[1] * c.groups : c.w[0];
  Array b = random_array({m}, t, rng, -1, 1);
  std::vector<Array> in = {x, w};
  if (c.bias) in.push_back(b);
  ir::Attrs a = attrs_of(c, transpose);
  Array out = run_kernel(op, in, a);
  ir::check_and_infer(ir::get_op(op), {{x.shape, t}, {w.shape, t}}, a);  // canonical attrs
  std::vector<double> val, mag;
  if (transpose) ref_conv_transpose(x, w, c.bias ? &b : nullptr, out.shape, a, val, mag);
  else ref_conv(x, w, c.bias ? &b : nullptr, out.shape, a, val, mag);
  ASSERT_EQ(out.dtype, t);
  std::vector<double> got = to_doubles(out);
  ASSERT_EQ(got.size(), val.size());
  double rtol = rtol_for(t);
  for (size_t i = 0; i < got.size(); ++i) {
    double tol = rtol * std::abs(val[i]) + std::min(rtol, 1e-5) * 4 * mag[i] + 1e-300;
    ASSERT_NEAR(got[i], val[i], tol) << "at " << i << " of " << shape_str(out.shape);
  }
}

TEST(OpsConv, MatchesReference) {
  const std::vector<Conv> cases = {
      // 1-D: default geometry, strides + asymmetric pads + dilation, groups.
      {{2, 3, 11}, {5, 3, 3}, {}, {}, {}, 1, true, {}},
      {{1, 4, 17}, {6, 2, 4}, {2}, {1, 2}, {2}, 2, false, {}},
      {{3, 2, 8}, {8, 2, 1}, {}, {}, {}, 1, true, {}},  // 1x1: no im2col
      // 2-D (float32: the implicit GEMM of conv_implicit.cpp; else im2col + GEMM), >= 5 output
      // channels per group, with and without groups; 1x1 stride 1: the GEMM on x in place.
      {{2, 3, 9, 10}, {8, 3, 3, 3}, {}, {1, 1, 1, 1}, {}, 1, true, {}},
      {{1, 6, 13, 7}, {12, 3, 3, 2}, {2, 1}, {0, 1, 2, 0}, {1, 2}, 2, true, {}},
      {{2, 16, 7, 5}, {24, 16, 1, 1}, {}, {}, {}, 1, true, {}},
      {{1, 8, 9, 9}, {10, 8, 1, 1}, {2, 2}, {}, {}, 1, false, {}},  // strided 1x1: im2col
      {{1, 3, 20, 19}, {6, 3, 5, 5}, {1, 2}, {3, 4, 0, 1}, {2, 2}, 1, true, {}},
      {{1, 5, 1, 1}, {7, 5, 1, 1}, {}, {}, {}, 1, true, {}},
      // float32: ragged 8-channel tiles, stride 3, dilation, asymmetric pads, two K blocks.
      {{2, 5, 17, 14}, {11, 5, 3, 3}, {3, 2}, {2, 0, 1, 2}, {1, 2}, 1, true, {}},
      {{1, 40, 9, 10}, {9, 40, 3, 3}, {}, {1, 1, 1, 1}, {}, 1, false, {}},
      // Depthwise (direct loops; float32: conv_implicit's depthwise kernel, stride 2 odd sizes).
      {{1, 7, 15, 13}, {7, 1, 3, 3}, {2, 2}, {1, 1, 0, 1}, {}, 7, true, {}},
      // Direct path: depthwise, depthwise with a multiplier and strides, one output channel.
      {{2, 8, 11, 12}, {8, 1, 3, 3}, {}, {1, 1, 1, 1}, {}, 8, true, {}},
      {{1, 4, 9, 9}, {8, 1, 3, 3}, {2, 2}, {1, 0, 0, 1}, {}, 4, false, {}},
      {{1, 7, 6, 5}, {1, 7, 3, 3}, {}, {}, {2, 1}, 1, true, {}},
      // 3-D.
      {{1, 2, 5, 6, 7}, {6, 2, 3, 3, 3}, {1, 2, 1}, {1, 1, 1, 1, 1, 1}, {}, 1, true, {}},
      {{2, 4, 4, 5, 6}, {4, 2, 2, 3, 1}, {2, 1, 2}, {0, 1, 0, 1, 2, 0}, {2, 1, 1}, 2, true, {}},
      // Kernel larger than the unpadded input; output of size 1 from padding alone.
      {{1, 2, 2, 2}, {6, 2, 4, 4}, {}, {1, 1, 1, 1}, {}, 1, true, {}},
  };
  uint64_t seed = 1000;
  for (const Conv& c : cases) {
    for (DType t : {DType::Float32, DType::Float64, DType::Float16}) check("conv", c, t, ++seed);
  }
  check("conv", cases[3], DType::BFloat16, ++seed);
  check("conv", cases[4], DType::Float32, ++seed, true);
  check("conv", cases[12], DType::Float32, ++seed, true);
  check("conv", cases[11], DType::Float32, ++seed, true);
}

TEST(OpsConv, RandomFloat32Geometries) {
  // Fresh random 2-D geometries (seed printed on failure) on the float32 kernels: the implicit
  // GEMM over phase planes and the depthwise loop, strides 1-3, dilations, asymmetric pads,
  // groups, batches, kernels up to 5x5, ragged channel and position tiles.
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(str("geometry seed ", seed));
  std::mt19937_64 rng(seed);
  auto pick = [&](int64_t lo, int64_t hi) { return lo + int64_t(rng() % uint64_t(hi - lo + 1)); };
  for (int done = 0; done < 40;) {
    const bool depthwise = done % 3 == 0;
    const int64_t groups = depthwise ? pick(1, 9) : pick(1, 2);
    const int64_t cg = depthwise ? 1 : pick(1, 12), mg = depthwise ? 1 : pick(5, 40);
    const int64_t kh = pick(1, 5), kw = pick(1, 5), dh = pick(1, 2), dw = pick(1, 2);
    const Ints pads = {pick(0, 3), pick(0, 3), pick(0, 3), pick(0, 3)};
    const int64_t h = pick(1, 23), w = pick(1, 29);
    if (h + pads[0] + pads[2] < (kh - 1) * dh + 1 || w + pads[1] + pads[3] < (kw - 1) * dw + 1)
      continue;
    check("conv",
          {{pick(1, 2), groups * cg, h, w},
           {groups * mg, cg, kh, kw},
           {pick(1, 3), pick(1, 3)},
           pads,
           {dh, dw},
           groups,
           done % 2 == 0,
           {}},
          DType::Float32, seed + uint64_t(done));
    ++done;
  }
}

TEST(OpsConv, ImplicitBandsOfRows) {
  // float32 conv_implicit over many bands of output rows (each parallel item fills the plane
  // rows its band reads, halo included): tall images, a batch, dilation, stride 3, a 1-wide
  // image, a band's ragged last sliver, groups, one band split by its slivers (1-D, one image);
  // at 1 and 2 threads.
  const std::vector<Conv> cases = {
      {{3, 7, 67, 9}, {11, 7, 3, 3}, {}, {1, 1, 1, 1}, {}, 1, true, {}},
      {{1, 5, 90, 31}, {9, 5, 5, 3}, {}, {4, 1, 4, 1}, {2, 1}, 1, false, {}},
      {{2, 6, 71, 40}, {12, 3, 3, 3}, {3, 2}, {1, 2, 0, 1}, {}, 2, true, {}},
      {{1, 3, 200, 1}, {10, 3, 7, 1}, {}, {3, 0, 3, 0}, {}, 1, true, {}},
      {{1, 40, 129, 7}, {24, 40, 3, 3}, {2, 1}, {1, 1, 1, 1}, {}, 1, false, {}},
      {{1, 16, 1501}, {32, 16, 5}, {}, {2, 2}, {}, 1, true, {}},
  };
  uint64_t seed = 3000;
  const int old = current_session().threads();
  for (int threads : {1, 2}) {
    current_session().set_threads(threads);
    for (const Conv& c : cases) check("conv", c, DType::Float32, ++seed);
  }
  current_session().set_threads(old);
}

TEST(OpsConv, ChunkedColumnBuffers) {
  // Over the 4M-element column budget: positions chunked (32 * 9 * 130 * 130 elements, and
  // 32 * 16 * 91 * 91 for conv_transpose), and images in chunks of 2 and 1 (24 * 9 * 88 * 88).
  check("conv", {{1, 32, 130, 130}, {5, 32, 3, 3}, {}, {1, 1, 1, 1}, {}, 1, true, {}},
        DType::Float32, 2001);
  check("conv", {{3, 24, 90, 90}, {5, 24, 3, 3}, {}, {}, {}, 1, true, {}}, DType::Float32, 2002);
  check("conv_transpose", {{1, 2, 91, 91}, {2, 32, 4, 4}, {2, 2}, {1, 1, 1, 1}, {}, 1, true, {}},
        DType::Float32, 2003);
}

TEST(OpsConvTranspose, MatchesReference) {
  const std::vector<Conv> cases = {
      {{2, 3, 7}, {3, 4, 3}, {2}, {1, 0}, {}, 1, true, {1}},
      {{1, 5, 9}, {5, 2, 1}, {}, {}, {}, 1, false, {}},
      {{1, 4, 5, 6}, {4, 3, 3, 3}, {2, 3}, {1, 0, 2, 1}, {1, 2}, 1, true, {1, 0}},
      {{2, 6, 4, 5}, {6, 2, 2, 3}, {2, 2}, {}, {}, 3, true, {}},
      {{1, 4, 6, 6}, {4, 1, 4, 4}, {2, 2}, {1, 1, 1, 1}, {}, 4, false, {}},
      {{1, 3, 5, 4}, {3, 7, 3, 3}, {}, {1, 1, 1, 1}, {}, 1, true, {}},
      {{1, 2, 3, 4, 3}, {2, 3, 2, 2, 3}, {2, 1, 2}, {0, 1, 1, 1, 0, 0}, {}, 1, true, {1, 0, 0}},
      {{1, 2, 3}, {2, 2, 3}, {1}, {}, {3}, 1, true, {2}},  // output_padding < dilation
  };
  uint64_t seed = 3000;
  for (const Conv& c : cases) {
    for (DType t : {DType::Float32, DType::Float64, DType::Float16})
      check("conv_transpose", c, t, ++seed);
  }
  check("conv_transpose", cases[2], DType::BFloat16, ++seed);
  check("conv_transpose", cases[3], DType::Float64, ++seed, true);
}

TEST(OpsConv, ZeroSizes) {
  std::mt19937_64 rng(4000);
  // N = 0: empty output of the right shape.
  Array out = run_kernel("conv", {random_array({0, 3, 5, 5}, DType::Float32, rng),
                                  random_array({4, 3, 3, 3}, DType::Float32, rng)});
  EXPECT_EQ(out.shape, (Shape{0, 4, 3, 3}));
  // C = 0: the bias (or zeros) everywhere, on both paths and for conv_transpose.
  for (int64_t m : {2, 6}) {
    Array b = random_array({m}, DType::Float32, rng);
    out = run_kernel("conv", {random_array({2, 0, 5}, DType::Float32, rng),
                              random_array({m, 0, 3}, DType::Float32, rng), b});
    ASSERT_EQ(out.shape, (Shape{2, m, 3}));
    for (int64_t i = 0; i < out.numel(); ++i) ASSERT_EQ(element(out, i), element(b, i / 3 % m));
  }
  Array b = random_array({3}, DType::Float64, rng);
  out = run_kernel("conv_transpose", {random_array({1, 0, 4}, DType::Float64, rng),
                                      random_array({0, 3, 2}, DType::Float64, rng), b});
  ASSERT_EQ(out.shape, (Shape{1, 3, 5}));
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_EQ(element(out, i), element(b, i / 5));
  // An output extent of 0 from the formula is allowed; so is an empty input padded to a value.
  out = run_kernel("conv", {random_array({1, 1, 2}, DType::Float32, rng),
                            random_array({1, 1, 3}, DType::Float32, rng)});
  EXPECT_EQ(out.shape, (Shape{1, 1, 0}));
  ir::Attrs pads;
  pads.set("pads", Ints{2, 2});
  Array b5 = random_array({5}, DType::Float32, rng);
  out = run_kernel("conv",
                   {random_array({1, 2, 0}, DType::Float32, rng),
                    random_array({5, 2, 3}, DType::Float32, rng), b5},
                   pads);
  ASSERT_EQ(out.shape, (Shape{1, 5, 2}));
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_EQ(element(out, i), element(b5, i / 2));
  out = run_kernel("conv_transpose", {random_array({1, 2, 0}, DType::Float32, rng),
                                      random_array({2, 3, 3}, DType::Float32, rng)});
  ASSERT_EQ(out.shape, (Shape{1, 3, 2}));
  for (int64_t i = 0; i < out.numel(); ++i) ASSERT_EQ(element(out, i), 0.0);
}

ir::TensorType infer(const std::string& op, const std::vector<ir::TensorType>& in, ir::Attrs& a) {
  return ir::check_and_infer(ir::get_op(op), in, a);
}

TEST(OpsConv, InferenceCanonicalAttrsAndCost) {
  const DType f = DType::Float32;
  ir::Attrs a;
  a.set("groups", int64_t(2));
  a.set("strides", Ints{2, 1});
  ir::TensorType o = infer("conv", {{{2, 4, 9, 8}, f}, {{6, 2, 3, 3}, f}}, a);
  EXPECT_EQ(o.shape, (Shape{2, 6, 4, 6}));
  EXPECT_EQ(a.get_ints("strides"), (Ints{2, 1}));
  EXPECT_EQ(a.get_ints("pads"), (Ints{0, 0, 0, 0}));
  EXPECT_EQ(a.get_ints("dilations"), (Ints{1, 1}));
  ir::Attrs again = a;
  EXPECT_EQ(infer("conv", {{{2, 4, 9, 8}, f}, {{6, 2, 3, 3}, f}}, again).shape, o.shape);
  EXPECT_EQ(again, a);  // idempotent
  ir::Cost c = ir::estimate_cost(ir::get_op("conv"), {{{2, 4, 9, 8}, f}, {{6, 2, 3, 3}, f}}, o, a);
  EXPECT_EQ(c.flops, 2.0 * (2 * 6 * 4 * 6) * 2 * 9);

  ir::Attrs t;
  t.set("strides", Ints{2});
  t.set("pads", Ints{1, 2});
  t.set("output_padding", Ints{1});
  o = infer("conv_transpose", {{{1, 3, 5}, f}, {{3, 4, 3}, f}, {{4}, f}}, t);
  EXPECT_EQ(o.shape, (Shape{1, 4, 2 * 4 + 1 + 3 - 3}));
  EXPECT_EQ(t.get_ints("dilations"), (Ints{1}));
  EXPECT_EQ(t.get_int("groups"), 1);
  c = ir::estimate_cost(ir::get_op("conv_transpose"), {{{1, 3, 5}, f}, {{3, 4, 3}, f}, {{4}, f}}, o,
                        t);
  EXPECT_EQ(c.flops, 2.0 * 15 * 4 * 3);
}

template <typename E>
void expect_error(const std::string& op, const std::vector<ir::TensorType>& in, ir::Attrs a,
                  const std::string& needle) {
  try {
    ir::check_and_infer(ir::get_op(op), in, a);
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const E& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind("[" + op + "]", 0), 0u) << e.what();
  }
}

ir::Attrs one(const std::string& k, ir::AttrValue v) {
  ir::Attrs a;
  a.set(k, std::move(v));
  return a;
}

TEST(OpsConv, Errors) {
  const DType f = DType::Float32;
  using SE = ShapeError;
  using VE = ValidationError;
  using TE = TypeError;
  expect_error<SE>("conv", {{{2, 3}, f}, {{4, 3}, f}}, {}, "(2, 3)");
  expect_error<SE>("conv", {{{1, 1, 2, 2, 2, 2}, f}, {{1, 1, 1, 1, 1, 1}, f}}, {}, "spatial");
  expect_error<SE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3, 3}, f}}, {}, "rank");
  expect_error<SE>("conv", {{{1, 3, 5}, f}, {{4, 2, 3}, f}}, {},
                   "input (1, 3, 5) and weight (4, 2, 3)");
  expect_error<SE>("conv", {{{1, 4, 5}, f}, {{3, 2, 3}, f}}, one("groups", int64_t(2)), "groups=2");
  expect_error<SE>("conv", {{{1, 3, 5}, f}, {{3, 1, 3}, f}}, one("groups", int64_t(2)), "groups=2");
  expect_error<SE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}, {{3}, f}}, {}, "bias (3,)");
  expect_error<SE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}, {{4, 1}, f}}, {}, "bias");
  expect_error<SE>("conv", {{{1, 3, 5}, f}, {{4, 3, 0}, f}}, {}, "kernel dims");
  expect_error<SE>("conv", {{{1, 3, 2}, f}, {{4, 3, 4}, f}}, {}, "does not fit");
  expect_error<TE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, DType::Float64}}, {}, "share a dtype");
  expect_error<TE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}, {{4}, DType::Float16}}, {},
                   "share a dtype");
  expect_error<TE>("conv", {{{1, 3, 5}, DType::Int32}, {{4, 3, 3}, DType::Int32}}, {}, "float");
  expect_error<VE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}}, one("strides", Ints{1, 1}),
                   "strides must have 1 values");
  expect_error<VE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}}, one("strides", Ints{0}),
                   "strides must be in [1");
  expect_error<VE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}}, one("pads", Ints{1}), "pads");
  expect_error<VE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}}, one("pads", Ints{-1, 0}), "pads");
  expect_error<VE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}}, one("dilations", Ints{0}),
                   "dilations");
  expect_error<VE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}}, one("groups", int64_t(0)),
                   "groups must be >= 1");
  expect_error<VE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}}, one("strides", Ints{int64_t(1) << 60}),
                   "strides");
  expect_error<VE>("conv", {{{1, 3, 5}, f}, {{4, 3, 3}, f}}, one("output_padding", Ints{0}),
                   "unknown attribute");
  expect_error<VE>("conv", {{{1, 3, 5}, f}}, {}, "expects 2 to 3 inputs");

  expect_error<SE>("conv_transpose", {{{1, 3, 5}, f}, {{4, 2, 3}, f}}, {}, "weight.shape[0] == C");
  expect_error<SE>("conv_transpose", {{{1, 4, 5}, f}, {{4, 2, 3}, f}}, one("groups", int64_t(3)),
                   "groups=3");
  expect_error<SE>("conv_transpose", {{{1, 4, 5}, f}, {{4, 2, 3}, f}, {{2}, f}},
                   one("groups", int64_t(2)), "must have 4 values");
  expect_error<SE>("conv_transpose", {{{1, 4, 2}, f}, {{4, 2, 3}, f}}, one("pads", Ints{3, 2}),
                   "pads [3, 2]");
  expect_error<VE>("conv_transpose", {{{1, 4, 5}, f}, {{4, 2, 3}, f}},
                   one("output_padding", Ints{1}), "output_padding [1]");
  ir::Attrs op2;
  op2.set("output_padding", Ints{2});
  op2.set("strides", Ints{2});
  expect_error<VE>("conv_transpose", {{{1, 4, 5}, f}, {{4, 2, 3}, f}}, op2, "smaller than");
  op2.set("dilations", Ints{3});  // output_padding < dilation is enough
  EXPECT_EQ(infer("conv_transpose", {{{1, 4, 5}, f}, {{4, 2, 3}, f}}, op2).shape,
            (Shape{1, 2, 2 * 4 + 2 + 3 * 2 + 1}));
}

}  // namespace
}  // namespace nef::test
