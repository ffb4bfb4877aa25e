// Small composable helpers for rewrite passes (simplify, patterns): op tests, scalar constants,
// commutative operand matching, product flattening, use counts and type-checked replacement.
// Patterns are written as plain functions over these, so a new pattern is a few lines.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "nef/error.h"

namespace nef::passes::match {

// The single value of a constant with one element, or of a `full` node; nullopt otherwise.
std::optional<double> scalar_value(const ir::Graph& g, int i);
// True when node i is a scalar constant equal to v within a relative 1e-6 (exact for v == 0).
bool is_scalar(const ir::Graph& g, int i, double v, double rel = 1e-6);

// Same value: the same node, or two nodes computing the same op on the same values (what CSE
// would merge), so a pattern still matches when the user wrote `x - mean(x)` twice.
bool same_value(const ir::Graph& g, int a, int b, int depth = 4);

// The single reduction axis list of a keepdims reduction `op` at i (empty if not that).
std::vector<int64_t> keepdims_axes(const ir::Graph& g, int i, std::string_view op);

// Use counts (references by nodes plus graph outputs) kept current across in-place rewrites.
class Ctx {
 public:
  explicit Ctx(ir::Graph& g);
  ir::Graph& g;

  const ir::Node& node(int i) const { return g.nodes[i]; }
  int in(int i, size_t k) const {
    NEF_CHECK(k < g.nodes[i].inputs.size(), "pattern reads input ", k, " of ", g.nodes[i].op->name);
    return g.nodes[i].inputs[k];
  }
  bool is(int i, std::string_view op) const { return g.nodes[i].is(op); }
  // An intermediate of a pattern: op `op` and no user besides the pattern (`uses` of them).
  bool inner(int i, std::string_view op, int uses = 1) const {
    return g.nodes[i].is(op) && uses_[i] == uses;
  }
  int uses(int i) const { return uses_[i]; }

  // For binary node i: the operand order (a, b) such that pred(a) holds, trying both orders.
  template <class Pred>
  std::optional<std::pair<int, int>> commute(int i, Pred pred) const {
    const auto& ins = g.nodes[i].inputs;
    if (ins.size() != 2) return std::nullopt;
    if (pred(ins[0])) return std::pair{ins[0], ins[1]};
    if (pred(ins[1])) return std::pair{ins[1], ins[0]};
    return std::nullopt;
  }
  // Operand order (s, x) of binary node i where s is a scalar constant ~= v.
  std::optional<int> other_than_scalar(int i, double v) const;

  // Factors of a product rooted at mul node i, descending into single-use inner muls.
  std::vector<int> factors(int i) const;

  // Replaces node i in place by `op(inputs){attrs}` if inference succeeds and gives exactly the
  // type node i had (so users and outputs stay valid); inputs must precede i.
  bool replace(int i, const std::string& op, std::vector<int> inputs, ir::Attrs attrs = {});

 private:
  void release(int i);  // a reference to i went away; cascades into nodes that became dead
  std::vector<int> uses_;
};

}  // namespace nef::passes::match

namespace nef::passes::match {

// True when every node of `interior` (a pattern's intermediates, root excluded) is used only
// by nodes of the pattern (interior plus root): rewriting then leaves no dangling user.
bool closed(const Ctx& c, int root, std::vector<int> interior);

// Pattern functions: each tries to rewrite the subgraph rooted at `root` in place into one
// fused op and returns true if it did. Listed in patterns.cpp.
bool softmax_pattern(Ctx& c, int root);
bool log_softmax_pattern(Ctx& c, int root);
bool layernorm_pattern(Ctx& c, int root);
bool rmsnorm_pattern(Ctx& c, int root);
bool gelu_pattern(Ctx& c, int root);
bool silu_pattern(Ctx& c, int root);
bool attention_pattern(Ctx& c, int root);  // patterns_attention.cpp

}  // namespace nef::passes::match
