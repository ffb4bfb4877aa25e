// fold_conv_scale: conv(x, W[, b]) * f + s -> conv(x, W*f, b*f + s) for per-channel constants
// (inference batch-norm folding). Checked by structure (the folding passes alone, then dce) and
// numerically against the unoptimized graph (the whole pipeline vs run_passes=false).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ir/graph.h"
#include "passes/pass.h"
#include "passes_fold_util.h"
#include "test_util.h"

namespace nef {
namespace {

using test::count;
using test::first;
using test::FoldGraph;
using test::positive;
using test::rnd;

// Folding moves a rounding: per element, a few float32 ulps of terms of size |x|*|W|*|f|.
constexpr double kRtol = 1e-5, kAtol = 5e-5;

ir::Attrs geometry(std::vector<int64_t> strides, std::vector<int64_t> pads,
                   std::vector<int64_t> dilations, int64_t groups) {
  ir::Attrs a;
  a.set("strides", std::move(strides));
  a.set("pads", std::move(pads));
  a.set("dilations", std::move(dilations));
  a.set("groups", groups);
  return a;
}

// conv(x, W[, b]) on a fresh graph: x is an input, W and b constants.
struct ConvCase {
  FoldGraph fg;
  int x, w, b = -1, conv;
  Array wa, ba;
};

ConvCase make_conv(std::mt19937_64& rng, const Shape& xs, const Shape& ws, bool bias,
                   ir::Attrs attrs = {}, DType t = DType::Float32) {
  ConvCase c;
  c.x = c.fg.input(rnd(rng, xs, t));
  c.wa = rnd(rng, ws, t);
  c.w = c.fg.constant(c.wa);
  std::vector<int> ins = {c.x, c.w};
  if (bias) {
    c.ba = rnd(rng, {ws[0]}, t);
    c.b = c.fg.constant(c.ba);
    ins.push_back(c.b);
  }
  c.conv = c.fg.op("conv", ins, std::move(attrs));
  return c;
}

// The one conv left, whose weight and bias (if any) are constants and whose input is x.
const ir::Node& only_conv(const ir::Graph& g) {
  EXPECT_EQ(count(g, "conv"), 1) << ir::to_text(g);
  EXPECT_EQ(count(g, "mul") + count(g, "add") + count(g, "sub"), 0) << ir::to_text(g);
  const ir::Node& c = first(g, "conv");
  EXPECT_TRUE(g.nodes[c.inputs[0]].is("input")) << ir::to_text(g);
  for (size_t k = 1; k < c.inputs.size(); ++k)
    EXPECT_TRUE(g.nodes[c.inputs[k]].is("constant")) << ir::to_text(g);
  EXPECT_EQ(&g.nodes[g.outputs[0]], &c) << ir::to_text(g);
  return c;
}

TEST(PassFoldConv, MulThenAddBecomesOneConv) {
  NEF_SEEDED_RNG(rng, 201);
  const int64_t m = 5;
  // Factor shapes (M,1,1) as the ONNX importer writes them, (1,M,1,1), scalar, (1,), (1,1,1,1);
  // with and without a bias; both operand orders of mul and add.
  for (Shape fs : {Shape{m, 1, 1}, Shape{1, m, 1, 1}, Shape{}, Shape{1}, Shape{1, 1, 1, 1}}) {
    for (bool bias : {true, false}) {
      for (bool swap : {false, true}) {
        SCOPED_TRACE(::testing::Message()
                     << "factor " << shape_str(fs) << " bias " << bias << " swap " << swap);
        ConvCase c = make_conv(rng, {2, 3, 7, 6}, {m, 3, 3, 2}, bias,
                               geometry({1, 2}, {1, 0, 1, 1}, {1, 1}, 1));
        FoldGraph& fg = c.fg;
        Array fa = positive(rng, fs), sa = rnd(rng, {m, 1, 1});
        int f = fg.constant(fa), s = fg.constant(sa);
        int y = fg.op("mul", swap ? std::vector<int>{f, c.conv} : std::vector<int>{c.conv, f});
        fg.output(fg.op("add", swap ? std::vector<int>{s, y} : std::vector<int>{y, s}));
        ir::Graph g = fg.folded();
        const ir::Node& cv = only_conv(g);
        ASSERT_EQ(cv.inputs.size(), 3u) << ir::to_text(g);
        EXPECT_EQ(cv.attrs, fg.g.nodes[c.conv].attrs);
        EXPECT_EQ(cv.type, fg.g.nodes[fg.g.outputs[0]].type);
        // W'[o] = W[o] * f[o] rounded once; b' = (b * f) + s, each rounded once.
        std::vector<double> w2 = test::to_doubles(*g.nodes[cv.inputs[1]].constant),
                            b2 = test::to_doubles(*g.nodes[cv.inputs[2]].constant),
                            w = test::to_doubles(c.wa), f1 = test::to_doubles(fa),
                            s1 = test::to_doubles(sa);
        const size_t per = w.size() / m;
        for (size_t o = 0; o < size_t(m); ++o) {
          const double fo = f1[f1.size() == 1 ? 0 : o];
          for (size_t e = 0; e < per; ++e)
            EXPECT_EQ(w2[o * per + e], double(float(w[o * per + e] * fo)));
          const double bf = bias ? double(float(test::to_doubles(c.ba)[o] * fo)) : 0.0;
          EXPECT_EQ(b2[o], double(float(bf + s1[o])));
        }
        fg.expect_same_numbers(kRtol, kAtol);
      }
    }
  }
}

TEST(PassFoldConv, MulAloneKeepsAnAbsentBiasAbsent) {
  NEF_SEEDED_RNG(rng, 202);
  for (bool bias : {false, true}) {
    ConvCase c = make_conv(rng, {1, 4, 9}, {6, 4, 3}, bias);
    c.fg.output(c.fg.op("mul", {c.conv, c.fg.constant(positive(rng, {6, 1}))}));
    ir::Graph g = c.fg.folded();
    EXPECT_EQ(only_conv(g).inputs.size(), bias ? 3u : 2u) << ir::to_text(g);
    c.fg.expect_same_numbers(kRtol, kAtol);
  }
}

TEST(PassFoldConv, SubtractedShiftFoldsIntoTheBias) {
  NEF_SEEDED_RNG(rng, 203);
  for (bool bias : {false, true}) {
    ConvCase c = make_conv(rng, {2, 3, 5, 5}, {4, 3, 1, 1}, bias);
    c.fg.output(c.fg.op("sub", {c.conv, c.fg.constant(rnd(rng, {1, 4, 1, 1}))}));
    ir::Graph g = c.fg.folded();
    EXPECT_EQ(only_conv(g).inputs.size(), 3u);
    c.fg.expect_same_numbers(kRtol, kAtol);
  }
  // s - conv is a negated conv: it stays.
  ConvCase c = make_conv(rng, {2, 3, 5, 5}, {4, 3, 1, 1}, true);
  c.fg.output(c.fg.op("sub", {c.fg.constant(rnd(rng, {4, 1, 1})), c.conv}));
  EXPECT_EQ(count(c.fg.folded(), "sub"), 1);
  c.fg.expect_same_numbers();
}

TEST(PassFoldConv, GeometriesRanksGroupsAndDtypes) {
  NEF_SEEDED_RNG(rng, 204);
  struct Case {
    Shape x, w;
    ir::Attrs attrs;
    DType t;
    double rtol, atol;
  };
  const Case cases[] = {
      // 1-D, strided and dilated.
      {{3, 4, 17}, {6, 4, 3}, geometry({2}, {1, 2}, {2}, 1), DType::Float32, kRtol, kAtol},
      // 3-D.
      {{1, 2, 4, 5, 3},
       {3, 2, 2, 3, 1},
       geometry({1, 1, 1}, {0, 1, 0, 1, 0, 0}, {1, 1, 1}, 1),
       DType::Float32,
       kRtol,
       kAtol},
      // Grouped and depthwise.
      {{2, 6, 6, 5},
       {4, 3, 3, 3},
       geometry({1, 1}, {1, 1, 1, 1}, {1, 1}, 2),
       DType::Float32,
       kRtol,
       kAtol},
      {{2, 6, 6, 5},
       {6, 1, 3, 3},
       geometry({1, 1}, {1, 1, 1, 1}, {1, 1}, 6),
       DType::Float32,
       kRtol,
       kAtol},
      // Zero batch; a single output channel.
      {{0, 3, 5, 5}, {5, 3, 3, 3}, {}, DType::Float32, kRtol, kAtol},
      {{2, 3, 5, 5}, {1, 3, 3, 3}, {}, DType::Float32, kRtol, kAtol},
      {{2, 3, 6, 7}, {5, 3, 3, 2}, {}, DType::Float64, 1e-12, 1e-12},
      {{2, 3, 6, 7}, {5, 3, 3, 2}, {}, DType::Float16, 1e-2, 2e-2},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(::testing::Message()
                 << shape_str(k.x) << " * " << shape_str(k.w) << " " << dtype_name(k.t));
    const int64_t m = k.w[0];
    Shape cs(k.x.size() - 1, 1);
    cs[0] = m;  // (M, 1, ..., 1)
    ConvCase c = make_conv(rng, k.x, k.w, true, k.attrs, k.t);
    int y = c.fg.op("mul", {c.conv, c.fg.constant(positive(rng, cs, k.t))});
    c.fg.output(c.fg.op("add", {y, c.fg.constant(rnd(rng, cs, k.t))}));
    ir::Graph g = c.fg.folded();
    only_conv(g);
    c.fg.expect_same_numbers(k.rtol, k.atol);
  }
}

TEST(PassFoldConv, AddFoldsWithANonConstantWeight) {
  NEF_SEEDED_RNG(rng, 205);
  FoldGraph fg;
  int x = fg.input(rnd(rng, {2, 3, 5, 4})), w = fg.input(rnd(rng, {4, 3, 2, 2}));
  int conv = fg.op("conv", {x, w});
  fg.output(fg.op("add", {conv, fg.constant(rnd(rng, {4, 1, 1}))}));
  ir::Graph g = fg.folded();
  EXPECT_EQ(count(g, "add"), 0) << ir::to_text(g);
  ASSERT_EQ(count(g, "conv"), 1);
  const ir::Node& cv = first(g, "conv");
  ASSERT_EQ(cv.inputs.size(), 3u);
  EXPECT_TRUE(g.nodes[cv.inputs[1]].is("input"));
  EXPECT_TRUE(g.nodes[cv.inputs[2]].is("constant"));
  fg.expect_same_numbers(kRtol, kAtol);
}

TEST(PassFoldConv, NearMissesStay) {
  NEF_SEEDED_RNG(rng, 206);
  const Shape xs = {2, 3, 6, 5}, ws = {4, 3, 3, 3};  // output (2, 4, 4, 3)
  // The factor broadcasts along something other than the channel axis alone: a spatial axis,
  // channels and a spatial axis, the batch axis, or it would grow the result's rank.
  for (Shape fs :
       {Shape{1, 1, 4, 1}, Shape{4, 4, 1}, Shape{3}, Shape{2, 1, 1, 1}, Shape{1, 1, 4, 1, 1}}) {
    for (const char* op : {"mul", "add"}) {
      SCOPED_TRACE(::testing::Message() << op << " by " << shape_str(fs));
      ConvCase c = make_conv(rng, xs, ws, true);
      c.fg.output(c.fg.op(op, {c.conv, c.fg.constant(positive(rng, fs))}));
      EXPECT_EQ(count(c.fg.folded(), op), 1);
      c.fg.expect_same_numbers();
    }
  }
  {  // W is not a constant: the mul stays.
    FoldGraph fg;
    int x = fg.input(rnd(rng, xs)), w = fg.input(rnd(rng, ws));
    fg.output(fg.op("mul", {fg.op("conv", {x, w}), fg.constant(positive(rng, {4, 1, 1}))}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // The bias is not a constant: neither folds.
    for (const char* op : {"mul", "add"}) {
      FoldGraph fg;
      int x = fg.input(rnd(rng, xs)), b = fg.input(rnd(rng, {4}));
      int conv = fg.op("conv", {x, fg.constant(rnd(rng, ws)), b});
      fg.output(fg.op(op, {conv, fg.constant(positive(rng, {4, 1, 1}))}));
      EXPECT_EQ(count(fg.folded(), op), 1) << op;
      fg.expect_same_numbers();
    }
  }
  {  // The conv has a second user.
    for (const char* op : {"mul", "add"}) {
      ConvCase c = make_conv(rng, xs, ws, true);
      int y = c.fg.op(op, {c.conv, c.fg.constant(positive(rng, {4, 1, 1}))});
      c.fg.output(c.fg.op("sub", {y, c.conv}));
      EXPECT_EQ(count(c.fg.folded(), op), 1) << op;
      c.fg.expect_same_numbers();
    }
  }
  {  // The conv is a graph output.
    for (const char* op : {"mul", "add"}) {
      ConvCase c = make_conv(rng, xs, ws, false);
      c.fg.output(c.fg.op(op, {c.conv, c.fg.constant(positive(rng, {4, 1, 1}))}));
      c.fg.output(c.conv);
      EXPECT_EQ(count(c.fg.folded(), op), 1) << op;
      c.fg.expect_same_numbers();
    }
  }
  {  // Integer factor (float32 * int8 stays float32) and a float64 one (promotes).
    for (DType t : {DType::Int8, DType::Int32, DType::Float64}) {
      ConvCase c = make_conv(rng, xs, ws, true);
      c.fg.output(c.fg.op("mul", {c.conv, c.fg.constant(rnd(rng, {4, 1, 1}, t, 1, 4))}));
      EXPECT_EQ(count(c.fg.folded(), "mul"), 1) << dtype_name(t);
      c.fg.expect_same_numbers();
    }
  }
  {  // A non-finite factor or shift.
    for (const char* op : {"mul", "add"}) {
      ConvCase c = make_conv(rng, xs, ws, true);
      Array fa = positive(rng, {4, 1, 1});
      fa.data_as<float>()[1] = INFINITY;
      c.fg.output(c.fg.op(op, {c.conv, c.fg.constant(fa)}));
      EXPECT_EQ(count(c.fg.folded(), op), 1) << op;
      c.fg.expect_same_numbers();
    }
  }
  {  // conv_transpose is not folded (its weight is (C, M/groups, ...)).
    FoldGraph fg;
    int x = fg.input(rnd(rng, {1, 3, 4, 4}));
    int ct = fg.op("conv_transpose", {x, fg.constant(rnd(rng, {3, 2, 2, 2}))});
    fg.output(fg.op("mul", {ct, fg.constant(positive(rng, {2, 1, 1}))}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // W' over kMaxFoldedBytes: 1024 x 1025 x 1 float32 is just over 4 MiB.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {1, 1025, 2}));
    int conv = fg.op("conv", {x, fg.constant(rnd(rng, {1024, 1025, 1}))});
    fg.output(fg.op("mul", {conv, fg.constant(positive(rng, {1024, 1}))}));
    static_assert(size_t{1024} * 1025 * 4 > passes::kMaxFoldedBytes);
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
  }
}

TEST(PassFoldConv, BatchNormChainsAndPipeline) {
  NEF_SEEDED_RNG(rng, 207);
  // conv -> BN -> conv -> BN with a relu between: both BNs fold, each into its own conv.
  FoldGraph fg;
  int x = fg.input(rnd(rng, {2, 3, 8, 8}));
  int c1 = fg.op("conv", {x, fg.constant(rnd(rng, {4, 3, 3, 3})), fg.constant(rnd(rng, {4}))},
                 geometry({1, 1}, {1, 1, 1, 1}, {1, 1}, 1));
  int y1 = fg.op("add", {fg.op("mul", {c1, fg.constant(positive(rng, {4, 1, 1}))}),
                         fg.constant(rnd(rng, {4, 1, 1}))});
  int r = fg.op("relu", {y1});
  int c2 = fg.op("conv", {r, fg.constant(rnd(rng, {5, 4, 3, 3}))});
  fg.output(fg.op("add", {fg.op("mul", {c2, fg.constant(positive(rng, {5, 1, 1}))}),
                          fg.constant(rnd(rng, {5, 1, 1}))}));
  ir::Graph g = fg.folded();
  EXPECT_EQ(count(g, "conv"), 2) << ir::to_text(g);
  EXPECT_EQ(count(g, "mul") + count(g, "add"), 0) << ir::to_text(g);
  // The whole pipeline: nothing but the two convs is left to run, the relu as the first one's
  // epilogue.
  auto plan = compiler::compile(fg.g);
  int convs = 0, epilogues = 0;
  for (const ir::Node& n : plan->graph.nodes) {
    convs += n.is("conv") || n.is("conv_epilogue");
    if (n.is("conv_epilogue")) {
      ++epilogues;
      EXPECT_EQ(n.attrs.get_string("program"), "r0=relu(i0)");
    }
    EXPECT_TRUE(n.is("conv") || n.is("conv_epilogue") || n.is("input") || n.is("constant"))
        << ir::to_text(plan->graph);
  }
  EXPECT_EQ(convs, 2);
  EXPECT_EQ(epilogues, 1);
  fg.expect_same_numbers(kRtol, 1e-4);
}

}  // namespace
}  // namespace nef
