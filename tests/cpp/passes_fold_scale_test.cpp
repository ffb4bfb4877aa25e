// fold_matmul_scale: (x@W)*s -> x@(W*s) for constant W and per-column constant s, and the
// indirect form (x@W - m)*s -> x@(W*s) + -(m*s) (inference batch-norm folding). Checked by
// structure (the folding passes alone, then dce) and numerically against the unoptimized graph
// (the whole pipeline vs run_passes=false).
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

#define FOLD_RNG(rng, seed) NEF_SEEDED_RNG(rng, seed)

TEST(PassFoldScale, PerColumnMulDisappearsIntoConstantWeight) {
  FOLD_RNG(rng, 101);
  // Scale shapes (N,), (1, N), scalar, (1,); both operand orders.
  for (Shape ss : {Shape{5}, Shape{1, 5}, Shape{}, Shape{1}}) {
    for (bool swap : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "scale shape " << shape_str(ss) << " swap " << swap);
      FoldGraph fg;
      int x = fg.input(rnd(rng, {7, 13}));
      int w = fg.constant(rnd(rng, {13, 5}));
      int s = fg.constant(positive(rng, ss));
      int mm = fg.op("matmul", {x, w});
      fg.output(swap ? fg.op("mul", {s, mm}) : fg.op("mul", {mm, s}));
      ir::Graph g = fg.folded();
      EXPECT_EQ(count(g, "mul"), 0) << ir::to_text(g);
      ASSERT_EQ(count(g, "matmul"), 1) << ir::to_text(g);
      const ir::Node& m = first(g, "matmul");
      EXPECT_TRUE(g.nodes[m.inputs[1]].is("constant"));
      EXPECT_TRUE(g.nodes[m.inputs[0]].is("input"));
      EXPECT_EQ(g.nodes[g.outputs[0]].type, fg.g.nodes[fg.g.outputs[0]].type);
      fg.expect_same_numbers();
    }
  }
}

TEST(PassFoldScale, FoldedWeightIsRoundedOnceFromDouble) {
  FOLD_RNG(rng, 102);
  FoldGraph fg;
  Array wa = rnd(rng, {3, 4}), sa = positive(rng, {4});
  int x = fg.input(rnd(rng, {2, 3}));
  fg.output(fg.op("mul", {fg.op("matmul", {x, fg.constant(wa)}), fg.constant(sa)}));
  ir::Graph g = fg.folded();
  const ir::Node& wn = g.nodes[first(g, "matmul").inputs[1]];
  ASSERT_TRUE(wn.constant.has_value());
  std::vector<double> w2 = test::to_doubles(*wn.constant), w = test::to_doubles(wa),
                      s = test::to_doubles(sa);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c)
      EXPECT_EQ(w2[r * 4 + c], double(float(w[r * 4 + c] * s[c])));
}

TEST(PassFoldScale, BatchedAndZeroSizeAndFloat64) {
  FOLD_RNG(rng, 103);
  struct Case { Shape x; int64_t k, n; DType t; };
  for (const Case& c : {Case{{2, 3, 9}, 9, 6, DType::Float32}, Case{{0, 9}, 9, 6, DType::Float32},
                        Case{{4, 0}, 0, 3, DType::Float32}, Case{{5, 11}, 11, 7, DType::Float64},
                        Case{{11}, 11, 7, DType::Float32}}) {
    SCOPED_TRACE(shape_str(c.x));
    FoldGraph fg;
    int x = fg.input(rnd(rng, c.x, c.t));
    int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {c.k, c.n}, c.t))});
    fg.output(fg.op("mul", {mm, fg.constant(positive(rng, {c.n}, c.t))}));
    ir::Graph g = fg.folded();
    EXPECT_EQ(count(g, "mul"), 0) << ir::to_text(g);
    fg.expect_same_numbers(c.t == DType::Float64 ? 1e-12 : 1e-5);
  }
}

TEST(PassFoldScale, DivFoldsOnlyByPowersOfTwo) {
  FOLD_RNG(rng, 104);
  for (bool pow2 : {true, false}) {
    FoldGraph fg;
    Array sa = Array::empty({4}, DType::Float32);
    const float vals[2][4] = {{2, 0.5f, -4, 1}, {2, 3, 4, 1}};
    for (int i = 0; i < 4; ++i) sa.data_as<float>()[i] = vals[pow2 ? 0 : 1][i];
    int x = fg.input(rnd(rng, {6, 5}));
    int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {5, 4}))});
    fg.output(fg.op("div", {mm, fg.constant(sa)}));
    ir::Graph g = fg.folded();
    EXPECT_EQ(count(g, "div"), pow2 ? 0 : 1) << ir::to_text(g);
    fg.expect_same_numbers();
  }
  // s / (x@W) is not a scale of the columns.
  FoldGraph fg;
  int x = fg.input(rnd(rng, {6, 5}));
  int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {5, 4}))});
  Array two = Array::empty({}, DType::Float32);
  two.data_as<float>()[0] = 2;
  fg.output(fg.op("div", {fg.constant(two), mm}));
  EXPECT_EQ(count(fg.folded(), "div"), 1);
}

TEST(PassFoldScale, BatchNormExpressions) {
  FOLD_RNG(rng, 105);
  const int64_t k = 10, n = 6;
  Array w = rnd(rng, {k, n}), mean = rnd(rng, {n}), scale = positive(rng, {n}),
        beta = rnd(rng, {n});
  {  // (x@W)*scale + shifted bias: the mul folds, the add stays for the epilogue fusion.
    FoldGraph fg;
    Array shifted = Array::empty({n}, DType::Float32);
    for (int64_t c = 0; c < n; ++c)
      shifted.data_as<float>()[c] =
          float(beta.data_as<float>()[c] - double(mean.data_as<float>()[c]) * scale.data_as<float>()[c]);
    int x = fg.input(rnd(rng, {9, k}));
    int y = fg.op("mul", {fg.op("matmul", {x, fg.constant(w)}), fg.constant(scale)});
    fg.output(fg.op("add", {y, fg.constant(shifted)}));
    ir::Graph g = fg.folded();
    EXPECT_EQ(count(g, "mul"), 0) << ir::to_text(g);
    EXPECT_EQ(count(g, "add"), 1) << ir::to_text(g);
    fg.expect_same_numbers(1e-5, 1e-5);
  }
  {  // (x@W - mean)*scale + beta: the indirect form; both adds join the matmul's epilogue.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {9, k}));
    int c = fg.op("sub", {fg.op("matmul", {x, fg.constant(w)}), fg.constant(mean)});
    fg.output(fg.op("add", {fg.op("mul", {c, fg.constant(scale)}), fg.constant(beta)}));
    ir::Graph g = fg.folded();
    EXPECT_EQ(count(g, "mul") + count(g, "sub"), 0) << ir::to_text(g);
    EXPECT_EQ(count(g, "add"), 2) << ir::to_text(g);
    ir::Graph e = fg.folded({passes::fuse_epilogue});
    EXPECT_EQ(count(e, "matmul_epilogue"), 1) << ir::to_text(e);
    EXPECT_EQ(count(e, "add") + count(e, "matmul"), 0) << ir::to_text(e);
    fg.expect_same_numbers(1e-5, 1e-5);
  }
}

TEST(PassFoldScale, IndirectFormBecomesMatmulPlusShift) {
  FOLD_RNG(rng, 108);
  const int64_t k = 7, n = 5;
  // Shift and scale shapes (N,), (1, N), scalar; sub, add and swapped add; both mul orders.
  for (Shape cs : {Shape{n}, Shape{1, n}, Shape{}}) {
    for (Shape ss : {Shape{n}, Shape{}, Shape{1, n}}) {
      for (int form = 0; form < 3; ++form) {
        for (bool swap : {false, true}) {
          SCOPED_TRACE(::testing::Message() << "shift " << shape_str(cs) << " scale "
                                            << shape_str(ss) << " form " << form << " swap "
                                            << swap);
          FoldGraph fg;
          Array wa = rnd(rng, {k, n}), ca = rnd(rng, cs), sa = positive(rng, ss);
          int x = fg.input(rnd(rng, {3, 4, k}));
          int mm = fg.op("matmul", {x, fg.constant(wa)});
          int c = fg.constant(ca);
          int in = form == 0 ? fg.op("sub", {mm, c})
                             : fg.op("add", form == 1 ? std::vector<int>{mm, c}
                                                      : std::vector<int>{c, mm});
          int s = fg.constant(sa);
          fg.output(fg.op("mul", swap ? std::vector<int>{s, in} : std::vector<int>{in, s}));
          ir::Graph g = fg.folded();
          EXPECT_EQ(count(g, "mul") + count(g, "sub"), 0) << ir::to_text(g);
          ASSERT_EQ(count(g, "add"), 1) << ir::to_text(g);
          const ir::Node& add = g.nodes[g.outputs[0]];
          ASSERT_TRUE(add.is("add")) << ir::to_text(g);
          const ir::Node& m2 = g.nodes[add.inputs[0]];
          const ir::Node& c2 = g.nodes[add.inputs[1]];
          ASSERT_TRUE(m2.is("matmul") && c2.is("constant")) << ir::to_text(g);
          EXPECT_EQ(add.type, fg.g.nodes[fg.g.outputs[0]].type);
          // The new shift is -(m*s) (c*s for add), rounded once from double.
          std::vector<double> got = test::to_doubles(*c2.constant), cv = test::to_doubles(ca),
                              sv = test::to_doubles(sa);
          for (size_t j = 0; j < got.size(); ++j) {
            double v = cv[cv.size() == 1 ? 0 : j] * sv[sv.size() == 1 ? 0 : j];
            EXPECT_EQ(got[j], double(float(form == 0 ? -v : v))) << j;
          }
          ir::Graph e = fg.folded({passes::fuse_epilogue});
          EXPECT_EQ(count(e, "matmul_epilogue"), 1) << ir::to_text(e);
          fg.expect_same_numbers(1e-5, 1e-5);
        }
      }
    }
  }
}

TEST(PassFoldScale, IndirectFormNearMissesStay) {
  FOLD_RNG(rng, 109);
  const int64_t k = 6, n = 4;
  auto build = [&](FoldGraph& fg, int x, int w, int c, bool sub, bool mean_first) {
    int mm = fg.op("matmul", {x, w});
    return fg.op(sub ? "sub" : "add", mean_first ? std::vector<int>{c, mm}
                                                 : std::vector<int>{mm, c});
  };
  {  // m - x@W is a negated product, not a shift of it.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {5, k}));
    int in = build(fg, x, fg.constant(rnd(rng, {k, n})), fg.constant(rnd(rng, {n})), true, true);
    fg.output(fg.op("mul", {in, fg.constant(positive(rng, {n}))}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // The sub has a second user.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {5, k}));
    int in = build(fg, x, fg.constant(rnd(rng, {k, n})), fg.constant(rnd(rng, {n})), true, false);
    fg.output(fg.op("mul", {in, fg.constant(positive(rng, {n}))}));
    fg.output(in);
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // The matmul has a second user.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {5, k}));
    int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {k, n}))});
    int in = fg.op("sub", {mm, fg.constant(rnd(rng, {n}))});
    fg.output(fg.op("add", {fg.op("mul", {in, fg.constant(positive(rng, {n}))}), mm}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // The shift varies along rows (M, 1), or the scale does.
    for (bool shift_rows : {true, false}) {
      FoldGraph fg;
      int x = fg.input(rnd(rng, {5, k}));
      int in = build(fg, x, fg.constant(rnd(rng, {k, n})),
                     fg.constant(rnd(rng, shift_rows ? Shape{5, 1} : Shape{n})), true, false);
      Shape ss = shift_rows ? Shape{n} : Shape{5, 1};
      fg.output(fg.op("mul", {in, fg.constant(positive(rng, ss))}));
      EXPECT_EQ(count(fg.folded(), "mul"), 1);
      fg.expect_same_numbers();
    }
  }
  {  // W is not a constant; the shift is not a constant.
    for (bool w_input : {true, false}) {
      FoldGraph fg;
      int x = fg.input(rnd(rng, {5, k}));
      int w = w_input ? fg.input(rnd(rng, {k, n})) : fg.constant(rnd(rng, {k, n}));
      int c = w_input ? fg.constant(rnd(rng, {n})) : fg.input(rnd(rng, {n}));
      fg.output(fg.op("mul", {build(fg, x, w, c, false, false), fg.constant(positive(rng, {n}))}));
      EXPECT_EQ(count(fg.folded(), "mul"), 1);
      fg.expect_same_numbers();
    }
  }
  {  // A non-finite scale.
    FoldGraph fg;
    Array sa = positive(rng, {n});
    sa.data_as<float>()[2] = INFINITY;
    int x = fg.input(rnd(rng, {5, k}));
    int in = build(fg, x, fg.constant(rnd(rng, {k, n})), fg.constant(rnd(rng, {n})), true, false);
    fg.output(fg.op("mul", {in, fg.constant(sa)}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // Integer dtype.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {5, k}, DType::Int32, -5, 5));
    int in = build(fg, x, fg.constant(rnd(rng, {k, n}, DType::Int32, -5, 5)),
                   fg.constant(rnd(rng, {n}, DType::Int32, -5, 5)), true, false);
    fg.output(fg.op("mul", {in, fg.constant(rnd(rng, {n}, DType::Int32, 1, 4))}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers(0, 0);
  }
}

TEST(PassFoldScale, NegativeCasesStay) {
  FOLD_RNG(rng, 106);
  {  // W is not a constant.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {4, 3})), w = fg.input(rnd(rng, {3, 5}));
    fg.output(fg.op("mul", {fg.op("matmul", {x, w}), fg.constant(positive(rng, {5}))}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // s varies along rows (M, 1).
    FoldGraph fg;
    int x = fg.input(rnd(rng, {4, 3}));
    int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {3, 5}))});
    fg.output(fg.op("mul", {mm, fg.constant(positive(rng, {4, 1}))}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // s would broadcast the result to a bigger shape: (N,) product times (1, N).
    FoldGraph fg;
    int x = fg.input(rnd(rng, {3}));
    int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {3, 5}))});
    fg.output(fg.op("mul", {mm, fg.constant(positive(rng, {1, 5}))}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // The matmul has a second user (a graph output).
    FoldGraph fg;
    int x = fg.input(rnd(rng, {4, 3}));
    int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {3, 5}))});
    fg.output(fg.op("mul", {mm, fg.constant(positive(rng, {5}))}));
    fg.output(mm);
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // A second user that is another node.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {4, 3}));
    int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {3, 5}))});
    int y = fg.op("mul", {mm, fg.constant(positive(rng, {5}))});
    fg.output(fg.op("add", {y, mm}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers();
  }
  {  // Integer dtype.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {4, 3}, DType::Int32, -5, 5));
    int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {3, 5}, DType::Int32, -5, 5))});
    fg.output(fg.op("mul", {mm, fg.constant(rnd(rng, {5}, DType::Int32, 1, 4))}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
    fg.expect_same_numbers(0, 0);
  }
  {  // Scale of another dtype (float64 scale promotes the product).
    FoldGraph fg;
    int x = fg.input(rnd(rng, {4, 3}));
    int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {3, 5}))});
    fg.output(fg.op("mul", {mm, fg.constant(positive(rng, {5}, DType::Float64))}));
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
  }
  {  // W' over kMaxFoldedBytes: 1024 x 1025 float32 is just over 4 MiB.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {2, 1024}));
    int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {1024, 1025}))});
    fg.output(fg.op("mul", {mm, fg.constant(positive(rng, {1025}))}));
    static_assert(size_t{1024} * 1025 * 4 > passes::kMaxFoldedBytes);
    EXPECT_EQ(count(fg.folded(), "mul"), 1);
  }
}

TEST(PassFoldScale, ChainedScalesFoldTwice) {
  FOLD_RNG(rng, 107);
  FoldGraph fg;
  int x = fg.input(rnd(rng, {5, 4}));
  int mm = fg.op("matmul", {x, fg.constant(rnd(rng, {4, 3}))});
  int y = fg.op("mul", {mm, fg.constant(positive(rng, {3}))});
  fg.output(fg.op("mul", {fg.constant(positive(rng, {1, 3})), y}));
  ir::Graph g = fg.folded();
  EXPECT_EQ(count(g, "mul"), 0) << ir::to_text(g);
  EXPECT_EQ(count(g, "matmul"), 1) << ir::to_text(g);
  fg.expect_same_numbers();
}

}  // namespace
}  // namespace nef
