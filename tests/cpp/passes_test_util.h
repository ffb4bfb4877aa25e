// Helpers for optimizer-pass tests: build the graph of some lazy tensors, compile it with and
// without the passes, inspect the optimized IR and compare both runs numerically.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "api/lazy.h"
#include "compiler/compiler.h"
#include "ir/graph.h"
#include "nef/tensor.h"
#include "passes/pass.h"
#include "runtime/run.h"
#include "test_util.h"

namespace nef::test {

// `opt` runs the whole pipeline (numbers are compared on it); `structure` runs only the passes
// under test, so structure checks do not depend on later passes such as elementwise fusion.
struct Both {
  std::shared_ptr<const runtime::Plan> opt, ref;
  std::vector<Array> bindings;
  ir::Graph structure;

  const ir::Graph& graph() const { return structure; }
  std::string text() const { return ir::to_text(structure); }
  int count(std::string_view op) const {
    int k = 0;
    for (const ir::Node& n : structure.nodes) k += n.is(op);
    return k;
  }
  // The first node of op `op` in the structure graph (fails the test if there is none).
  const ir::Node& first(std::string_view op) const {
    for (const ir::Node& n : structure.nodes)
      if (n.is(op)) return n;
    ADD_FAILURE() << "no " << op << " node in\n" << text();
    return structure.nodes.front();
  }
};

// The passes whose effect the structure checks look at, in pipeline order.
inline void run_tested_passes(ir::Graph& g) {
  ir::validate(g);
  for (auto pass : {passes::dead_node_elimination, passes::simplify, passes::recognize_patterns,
                    passes::common_subexpression_elimination, passes::constant_folding,
                    passes::dead_node_elimination})
    pass(g, pass_ctx());
}

// Compiles the graph computing `outs` (data tensors become bound inputs) with the passes
// (keeping the per-pass dumps) and without them.
inline Both compile_both(const std::vector<Tensor>& outs) {
  std::vector<detail::LazyNode*> targets;
  for (const Tensor& t : outs) targets.push_back(t.node().get());
  detail::BuiltGraph built = detail::build_graph(targets, detail::BuildMode::Execute);
  Both b;
  b.bindings = built.bindings;
  b.structure = built.graph;
  run_tested_passes(b.structure);
  compiler::CompileOptions with;
  with.keep_pass_dumps = true;
  b.opt = compiler::compile(built.graph, with);
  compiler::CompileOptions without;
  without.run_passes = false;
  b.ref = compiler::compile(std::move(built.graph), without);
  return b;
}

// Runs both plans and compares every output: same shape and dtype, |a - b| <= atol + rtol*|b|,
// NaN where the reference is NaN.
inline void expect_equivalent(const Both& b, double rtol = 1e-5, double atol = 1e-6) {
  std::vector<Array> got = runtime::execute(b.opt, b.bindings);
  std::vector<Array> want = runtime::execute(b.ref, b.bindings);
  ASSERT_EQ(got.size(), want.size());
  for (size_t o = 0; o < got.size(); ++o) {
    ASSERT_EQ(got[o].shape, want[o].shape) << "output " << o;
    ASSERT_EQ(got[o].dtype, want[o].dtype) << "output " << o;
    std::vector<double> g = to_doubles(got[o]), w = to_doubles(want[o]);
    int bad = 0;
    for (size_t i = 0; i < g.size() && bad < 5; ++i) {
      bool ok = std::isnan(w[i])
                    ? std::isnan(g[i])
                    : (g[i] == w[i] || std::abs(g[i] - w[i]) <= atol + rtol * std::abs(w[i]));
      if (!ok) {
        ++bad;
        ADD_FAILURE() << "output " << o << " element " << i << ": optimized " << g[i]
                      << " vs unoptimized " << w[i] << "\noptimized IR:\n"
                      << b.text();
      }
    }
  }
}

// A data tensor (a bound graph input) with uniform random values.
inline Tensor rand_tensor(std::mt19937_64& rng, const Shape& shape, DType dtype = DType::Float32,
                          double lo = -2, double hi = 2) {
  return from_array(random_array(shape, dtype, rng, lo, hi));
}

// A Python-style float literal (weak: keeps the other operand's dtype).
inline Tensor lit(double v) { return weak_scalar(v, true); }

// compile_both on tensors made inside a lambda: C++ temporaries of the expression (say the
// sigmoid in `x * sigmoid(x)`) die before the graph is built, so they are not held (a held
// intermediate becomes an extra graph output, a second user that blocks fusion).
template <class F>
Both compile_outputs(F make) {
  std::vector<Tensor> outs = make();
  return compile_both(outs);
}

// The IR text right after the first pass named `pass`.
inline std::string dump_after(const Both& b, const std::string& pass) {
  for (const auto& [name, text] : b.opt->pass_dumps)
    if (name == pass) return text;
  ADD_FAILURE() << "no dump for pass " << pass;
  return "";
}
inline int count_text(const std::string& text, const std::string& what) {
  int k = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++k;
  return k;
}

}  // namespace nef::test

// A seeded generator whose seed is printed with any failure in the scope.
#define NEF_SEEDED_RNG(rng, seed) \
  std::mt19937_64 rng(seed);      \
  SCOPED_TRACE(::testing::Message() << "seed=" << (seed))

#define NEF_BOTH(...) ::nef::test::compile_outputs([&] { return std::vector<Tensor>{__VA_ARGS__}; })
