// Helpers for the weight-folding pass tests (fold_matmul_scale, fold_conv_scale): hand-built IR
// graphs (the lazy API makes constants only from scalars, and the folds need constant weights),
// the graph after the folding passes alone, and numbers of the whole pipeline against the
// unoptimized graph through passes_test_util.h.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "compiler/plan.h"
#include "ir/graph.h"
#include "passes/pass.h"
#include "passes_test_util.h"
#include "test_util.h"

namespace nef::test {

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
  int op(const std::string& name, std::vector<int> inputs, ir::Attrs attrs = {}) {
    ir::Node n;
    n.op = &ir::get_op(name);
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    return add(std::move(n));
  }
  void output(int i) {
    g.outputs.push_back(i);
    g.output_names.push_back(str("out", g.outputs.size()));
  }

  // The graph after the folding passes (in pipeline order), then `then`, then dce, validated.
  ir::Graph folded(std::vector<void (*)(ir::Graph&)> then = {}) const {
    ir::Graph c = g;
    ir::validate(c);
    passes::fold_matmul_scale(c);
    passes::fold_conv_scale(c);
    for (auto pass : then) pass(c);
    passes::dead_node_elimination(c);
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
