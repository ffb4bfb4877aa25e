// Spelled-out attention, as ONNX exporters write it: matmul(softmax(S, -1), V) with
// S = matmul(Q, transpose(K)) [* c | / c] [+ mask], becomes the fused `attention` op. The op gets
// empty_rows = "nan" so a row whose scores are all -inf stays NaN, as softmax makes it.
#include <cmath>
#include <utility>
#include <vector>

#include "passes/patterns_match.h"

namespace nef::passes::match {

namespace {

// All operands share one float32/float64 dtype: the fused op then rounds as the spelled form
// (mixed dtypes would move the promotion point; half types compute their softmax differently).
bool same_float_dtype(const Ctx& c, std::initializer_list<int> nodes, DType dt) {
  if (dt != DType::Float32 && dt != DType::Float64) return false;
  for (int i : nodes)
    if (c.node(i).type.dtype != dt) return false;
  return true;
}

// The scores with an optional scalar scale peeled off: returns (matmul node, scale).
std::optional<std::pair<int, double>> scaled_scores(const Ctx& c, int s) {
  if (c.inner(s, "matmul")) return std::pair{s, 1.0};
  bool mul = c.inner(s, "mul");
  if (!mul && !c.inner(s, "div")) return std::nullopt;
  for (int k = 0; k < (mul ? 2 : 1); ++k) {
    int m = c.in(s, k), f = c.in(s, 1 - k);
    std::optional<double> v = scalar_value(c.g, f);
    // The scalar must not broadcast the scores up (a [1,1,1,1,1] constant adds a dim).
    if (!v || !c.inner(m, "matmul") || c.node(f).type.shape.size() > c.node(m).type.shape.size())
      continue;
    double scale = mul ? *v : 1.0 / *v;
    if (!std::isfinite(scale)) return std::nullopt;
    return std::pair{m, scale};
  }
  return std::nullopt;
}

// True when node i depends on a run-time input, so constant folding never evaluates it.
bool runtime_value(const ir::Graph& g, int i) {
  std::vector<int> stack{i};
  std::vector<bool> seen(g.nodes.size(), false);
  while (!stack.empty()) {
    int k = stack.back();
    stack.pop_back();
    if (seen[k]) continue;
    seen[k] = true;
    if (g.nodes[k].op->has(ir::kNoFold)) return true;
    for (int in : g.nodes[k].inputs) stack.push_back(in);
  }
  return false;
}

}  // namespace

bool attention_pattern(Ctx& c, int r) {
  if (!c.is(r, "matmul")) return false;
  int p = c.in(r, 0), v = c.in(r, 1);
  if (!c.inner(p, "softmax")) return false;
  const size_t rank = c.node(p).type.shape.size();
  int64_t axis = c.node(p).attrs.get_int("axis");
  if (rank < 2 || (axis != -1 && axis != int64_t(rank) - 1)) return false;

  // scores [+ mask], either operand order of the add.
  int s = c.in(p, 0), mask = -1;
  std::optional<std::pair<int, double>> sc = scaled_scores(c, s);
  if (!sc && c.inner(s, "add")) {
    for (int k = 0; k < 2 && !sc; ++k) {
      sc = scaled_scores(c, c.in(s, k));
      if (sc) mask = c.in(s, 1 - k);
    }
  }
  if (!sc) return false;
  int qk = sc->first, q = c.in(qk, 0), kt = c.in(qk, 1);
  if (!c.inner(kt, "transpose")) return false;
  int x = c.in(kt, 0);
  if (c.node(q).type.shape.size() < 2 || c.node(kt).type.shape.size() < 2 ||
      c.node(v).type.shape.size() < 2)
    return false;
  DType dt = c.node(r).type.dtype;
  if (!same_float_dtype(c, {q, x, v, s, p, qk}, dt)) return false;
  if (mask >= 0 && !same_float_dtype(c, {mask}, dt)) return false;

  // K = transpose(x) with the last two entries of the perm swapped; x itself when that is the
  // identity, else the transpose node is rewritten in place (its only user, S, dies with it).
  std::vector<int64_t> perm = c.node(kt).attrs.get_ints("perm");
  const size_t n = perm.size();
  std::swap(perm[n - 1], perm[n - 2]);
  bool identity = true;
  for (size_t d = 0; d < n; ++d) identity = identity && perm[d] == int64_t(d);

  ir::Attrs a;
  a.set("scale", sc->second);
  a.set("empty_rows", std::string("nan"));
  std::vector<int> ins{q, identity ? x : kt, v};
  if (mask >= 0) ins.push_back(mask);
  if (identity) return c.replace(r, "attention", ins, a);
  // The rewired transpose changes type under the dead S = matmul(Q, Kt), which constant
  // folding would evaluate (dead nodes included) if Kt were constant: only rewire run-time keys.
  if (!runtime_value(c.g, x)) return false;

  ir::Node saved = c.g.nodes[kt];
  ir::Node& t = c.g.nodes[kt];
  t.attrs.set("perm", perm);
  try {
    t.type = ir::check_and_infer(*t.op, {c.node(x).type}, t.attrs);
  } catch (const Error&) {
    t = std::move(saved);
    return false;
  }
  if (c.replace(r, "attention", ins, a)) return true;
  c.g.nodes[kt] = std::move(saved);  // S still reads the transpose: restore it
  return false;
}

}  // namespace nef::passes::match
