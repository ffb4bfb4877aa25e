// Helpers for the weight-folding pass tests (fold_matmul_scale, fold_conv_scale): hand-built IR
// graphs (the lazy API makes constants only from scalars, and the folds need constant weights),
// the graph after the folding passes alone, and numbers of the whole pipeline against the
// unoptimized graph through passes_test_util.h.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "ir/graph.h"
#include "ir_builder.h"
#include "passes/pass.h"
#include "passes_test_util.h"
#include "test_util.h"

namespace nef::test {

// A GraphBuilder whose inputs carry values (the bindings the numeric checks run with).
struct FoldGraph : GraphBuilder {
  std::vector<Array> bindings;

  int input(const Array& value) {
    bindings.push_back(value);
    return GraphBuilder::input(str("in", g.num_bindings()), value.shape, value.dtype);
  }
  int op(const std::string& name, std::vector<int> inputs, ir::Attrs attrs = {}) {
    return add(name, std::move(inputs), std::move(attrs));
  }
  void output(int i) { GraphBuilder::output(i, str("out", g.outputs.size() + 1)); }

  // The graph after the folding passes (in pipeline order), then `then`, then dce, validated.
  ir::Graph folded(std::vector<passes::PassFn> then = {}) const {
    ir::Graph c = g;
    ir::validate(c);
    passes::fold_matmul_scale(c, test::pass_ctx());
    passes::fold_conv_scale(c, test::pass_ctx());
    for (auto pass : then) pass(c, test::pass_ctx());
    passes::dead_node_elimination(c, test::pass_ctx());
    ir::validate(c);
    return c;
  }
  // Whole pipeline vs no passes (expect_equivalent): |a - b| <= atol + rtol * |b|, same shapes
  // and dtypes.
  void expect_same_numbers(double rtol = 1e-5, double atol = 1e-6) const {
    Both b;
    compiler::CompileOptions without;
    without.run_passes = false;
    b.opt = compiler::compile(g);
    b.ref = compiler::compile(g, without);
    b.bindings = bindings;
    b.structure = folded();
    expect_equivalent(b, rtol, atol);
  }
};

inline int count(const ir::Graph& g, std::string_view op) {
  int k = 0;
  for (const ir::Node& n : g.nodes) k += n.is(op);
  return k;
}

inline const ir::Node& first(const ir::Graph& g, std::string_view op) {
  for (const ir::Node& n : g.nodes)
    if (n.is(op)) return n;
  ADD_FAILURE() << "no " << op << " in\n" << ir::to_text(g);
  return g.nodes.front();
}

inline Array rnd(std::mt19937_64& rng, const Shape& s, DType t = DType::Float32, double lo = -2,
                 double hi = 2) {
  return random_array(s, t, rng, lo, hi);
}

// Positive scales like a batch norm's gamma / sqrt(var + eps).
inline Array positive(std::mt19937_64& rng, const Shape& s, DType t = DType::Float32) {
  return rnd(rng, s, t, 0.25, 3);
}

}  // namespace nef::test
