// Pattern recognition: hand-written numpy-style softmax, log_softmax, layernorm, rmsnorm, gelu,
// silu and attention become the fused registry ops. Nodes are visited from the last to the first
// so the outermost match wins (layernorm with weight and bias before its bare normalization); each
// rewrite replaces the root in place and leaves the dead intermediates to dce. A pattern only
// matches when its intermediates have no other user and its constants agree within 1e-6.
#include <algorithm>

#include "passes/pass.h"
#include "passes/patterns_match.h"

namespace nef::passes {
namespace match {

namespace {
ir::Attrs axis_attr(int64_t axis) {
  ir::Attrs a;
  a.set("axis", axis);
  return a;
}

// exp(z) / sum(exp(z), axis, keepdims): returns (z, axis) for the exp node e and sum node s.
std::optional<std::pair<int, int64_t>> exp_over_sum(const Ctx& c, int e, int s, int e_uses) {
  if (!c.inner(e, "exp", e_uses) || !c.inner(s, "sum") || c.in(s, 0) != e) return std::nullopt;
  std::vector<int64_t> axes = keepdims_axes(c.g, s, "sum");
  if (axes.size() != 1) return std::nullopt;
  return std::pair{c.in(e, 0), axes[0]};
}

// z = x - max(x, axis, keepdims) with single-use intermediates gives x (softmax and
// log_softmax are invariant to that shift); anything else is used as is.
int unshifted(const Ctx& c, int z, int64_t axis, int z_uses) {
  if (!c.inner(z, "sub", z_uses)) return z;
  int m = c.in(z, 1);
  if (!c.inner(m, "max") || keepdims_axes(c.g, m, "max") != std::vector<int64_t>{axis}) return z;
  if (!same_value(c.g, c.in(m, 0), c.in(z, 0))) return z;
  return c.in(z, 0);
}
}  // namespace

// exp(z) / sum(exp(z), axis, keepdims), z = x - max(x) or any x  ->  softmax(x, axis)
bool softmax_pattern(Ctx& c, int r) {
  if (!c.is(r, "div")) return false;
  auto m = exp_over_sum(c, c.in(r, 0), c.in(r, 1), 2);
  if (!m) return false;
  int x = unshifted(c, m->first, m->second, 1);
  return c.replace(r, "softmax", {x}, axis_attr(m->second));
}

// z - log(sum(exp(z), axis, keepdims)), z = x - max(x) or any x  ->  log_softmax(x, axis)
bool log_softmax_pattern(Ctx& c, int r) {
  if (!c.is(r, "sub")) return false;
  int z = c.in(r, 0), l = c.in(r, 1);
  if (!c.inner(l, "log") || !c.is(c.in(l, 0), "sum")) return false;
  auto m = exp_over_sum(c, c.in(c.in(l, 0), 0), c.in(l, 0), 1);
  if (!m || !same_value(c.g, m->first, z)) return false;
  int x = z;  // log_softmax(z) is always right; strip the max shift when it is there
  if (m->first == z) {
    x = unshifted(c, z, m->second, 2);  // one node feeding both the root and exp
  } else {
    int x1 = unshifted(c, z, m->second, 1), x2 = unshifted(c, m->first, m->second, 1);
    if (x1 != z && x2 != m->first && same_value(c.g, x1, x2)) x = x1;
  }
  return c.replace(r, "log_softmax", {x}, axis_attr(m->second));
}

// x * sigmoid(x) and x / (1 + exp(-x))  ->  silu(x)
bool silu_pattern(Ctx& c, int r) {
  if (c.is(r, "mul")) {
    for (int k = 0; k < 2; ++k) {
      int s = c.in(r, k), x = c.in(r, 1 - k);
      if (c.inner(s, "sigmoid") && same_value(c.g, c.in(s, 0), x)) return c.replace(r, "silu", {x});
    }
    return false;
  }
  if (!c.is(r, "div")) return false;
  int x = c.in(r, 0), d = c.in(r, 1);
  if (!c.inner(d, "add")) return false;
  std::optional<int> e = c.other_than_scalar(d, 1.0);
  if (!e || !c.inner(*e, "exp")) return false;
  int n = c.in(*e, 0);
  if (!c.inner(n, "neg") || !same_value(c.g, c.in(n, 0), x)) return false;
  return c.replace(r, "silu", {x});
}

}  // namespace match

void recognize_patterns(ir::Graph& g, const PassContext& ctx) {
  using Pattern = bool (*)(match::Ctx&, int);
  // Each pattern with the ops its root can have, so most nodes are skipped by a pointer compare.
  // Order matters only where two patterns share a root: layernorm before rmsnorm (a centered
  // rmsnorm is a layernorm), the norms before gelu/silu (all may end in a mul).
  struct Entry {
    Pattern fn;
    std::vector<const ir::OpDef*> roots;
  };
  static const std::vector<Entry> kPatterns = [] {
    auto ops = [](std::initializer_list<const char*> names) {
      std::vector<const ir::OpDef*> v;
      for (const char* n : names) v.push_back(&ir::get_op(n));
      return v;
    };
    return std::vector<Entry>{{match::layernorm_pattern, ops({"div", "mul", "add"})},
                              {match::rmsnorm_pattern, ops({"div", "mul"})},
                              {match::softmax_pattern, ops({"div"})},
                              {match::log_softmax_pattern, ops({"sub"})},
                              {match::gelu_pattern, ops({"mul", "div"})},
                              {match::silu_pattern, ops({"mul", "div"})},
                              {match::attention_pattern, ops({"matmul"})}};
  }();
  static const std::vector<const ir::OpDef*> kAnyRoot = [] {
    std::vector<const ir::OpDef*> all;
    for (const Entry& e : kPatterns)
      for (const ir::OpDef* op : e.roots)
        if (std::find(all.begin(), all.end(), op) == all.end()) all.push_back(op);
    return all;
  }();
  auto can_root = [](const std::vector<const ir::OpDef*>& roots, const ir::OpDef* op) {
    return std::find(roots.begin(), roots.end(), op) != roots.end();
  };
  match::Ctx c(g);
  // A second sweep when the first rewrote anything: a pattern built on a fused op (attention
  // on softmax) sits after that op in node order, so the first sweep visited it too early.
  for (int sweep = 0; sweep < 2; ++sweep) {
    bool changed = false;
    for (int i = static_cast<int>(g.nodes.size()) - 1; i >= 0; --i) {
      const ir::OpDef* op = g.nodes[i].op;
      if (c.uses(i) == 0 || !can_root(kAnyRoot, op)) continue;
      for (const Entry& p : kPatterns)
        if (can_root(p.roots, op) && p.fn(c, i)) {
          changed = true;
          break;
        }
    }
    if (!changed) break;
  }
}

}  // namespace nef::passes
