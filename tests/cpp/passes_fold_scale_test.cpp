// fold_matmul_scale: (x@W)*s -> x@(W*s) for constant W and per-column constant s (inference
// batch-norm folding). Checked by structure (the pass alone, then dce) and numerically against
// the unoptimized graph (the whole pipeline vs run_passes=false).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "compiler/plan.h"
#include "ir/graph.h"
#include "passes/pass.h"
#include "runtime/executor.h"
#include "test_util.h"

namespace nef {
namespace {

// A hand-built IR graph: the lazy API makes constants only from scalars.
struct FoldGraph {
  ir::Graph g;
  std::vector<Array> bindings;

  int add(ir::Node n) {
    n.type = ir::check_and_infer(*n.op, g.input_types(n), n.attrs);
    g.nodes.push_back(std::move(n));
    return static_cast<int>(g.nodes.size()) - 1;
  }
  int input(const Array& value) {
    ir::Node n;
    n.op = &ir::get_op("input");
    n.attrs.set("name", str("in", g.num_bindings()));
    n.attrs.set("shape", std::vector<int64_t>(value.shape.begin(), value.shape.end()));
    n.attrs.set("dtype", std::string(dtype_name(value.dtype)));
    n.binding = g.num_bindings();
    g.input_names.push_back(str("in", n.binding));
    bindings.push_back(value);
    return add(std::move(n));
  }
  int constant(const Array& a) {
    ir::Node n;
    n.op = &ir::get_op("constant");
    n.attrs.set("shape", std::vector<int64_t>(a.shape.begin(), a.shape.end()));
    n.attrs.set("dtype", std::string(dtype_name(a.dtype)));
    n.constant = a;
    return add(std::move(n));
  }
  int op(const std::string& name, std::vector<int> inputs) {
    ir::Node n;
    n.op = &ir::get_op(name);
    n.inputs = std::move(inputs);
    return add(std::move(n));
  }
  void output(int i) {
    g.outputs.push_back(i);
    g.output_names.push_back(str("out", g.outputs.size()));
  }

  // The graph after this pass alone (then dce), validated.
  ir::Graph folded() const {
    ir::Graph c = g;
    ir::validate(c);
    passes::fold_matmul_scale(c);
    passes::dead_node_elimination(c);
    ir::validate(c);
    return c;
  }
  // Whole pipeline vs no passes: |a - b| <= atol + rtol * |b|, same shapes and dtypes.
  void expect_same_numbers(double rtol = 1e-5, double atol = 1e-6) const {
    compiler::CompileOptions without;
    without.run_passes = false;
    auto opt = compiler::compile(g);
    auto ref = compiler::compile(g, without);
    std::vector<Array> got = runtime::execute(*opt, bindings);
    std::vector<Array> want = runtime::execute(*ref, bindings);
    ASSERT_EQ(got.size(), want.size());
    for (size_t o = 0; o < got.size(); ++o) {
      ASSERT_EQ(got[o].shape, want[o].shape) << "output " << o;
      ASSERT_EQ(got[o].dtype, want[o].dtype) << "output " << o;
      std::vector<double> a = test::to_doubles(got[o]), b = test::to_doubles(want[o]);
      int bad = 0;
      for (size_t i = 0; i < a.size() && bad < 5; ++i)
        if (!(std::abs(a[i] - b[i]) <= atol + rtol * std::abs(b[i]))) {
          ++bad;
          ADD_FAILURE() << "output " << o << " element " << i << ": optimized " << a[i]
                        << " vs unoptimized " << b[i];
        }
    }
  }
};

int count(const ir::Graph& g, std::string_view op) {
  int k = 0;
  for (const ir::Node& n : g.nodes) k += n.is(op);
  return k;
}

const ir::Node& first(const ir::Graph& g, std::string_view op) {
  for (const ir::Node& n : g.nodes)
    if (n.is(op)) return n;
  ADD_FAILURE() << "no " << op << " in\n" << ir::to_text(g);
  return g.nodes.front();
}

Array rnd(std::mt19937_64& rng, const Shape& s, DType t = DType::Float32, double lo = -2,
          double hi = 2) {
  return test::random_array(s, t, rng, lo, hi);
}

// Positive scales like a batch norm's gamma / sqrt(var + eps).
Array positive(std::mt19937_64& rng, const Shape& s, DType t = DType::Float32) {
  return rnd(rng, s, t, 0.25, 3);
}

#define FOLD_RNG(rng, seed) \
  std::mt19937_64 rng(seed); \
  SCOPED_TRACE(::testing::Message() << "seed=" << (seed))

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
  {  // (x@W - mean)*scale + beta: not the direct form; it must still compute the same.
    FoldGraph fg;
    int x = fg.input(rnd(rng, {9, k}));
    int c = fg.op("sub", {fg.op("matmul", {x, fg.constant(w)}), fg.constant(mean)});
    fg.output(fg.op("add", {fg.op("mul", {c, fg.constant(scale)}), fg.constant(beta)}));
    fg.folded();
    fg.expect_same_numbers(1e-5, 1e-5);
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
