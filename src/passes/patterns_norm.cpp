// layernorm and rmsnorm patterns (numpy style, normalizing over trailing axes):
//   layernorm: d = x - mean(x, A, keepdims); d / sqrt(mean(d*d | d**2, A, keepdims) + eps)
//   rmsnorm:   x / sqrt(mean(x*x | x**2, A, keepdims) + eps)
// with `* rsqrt(...)` in place of `/ sqrt(...)`, eps optional (0), then optionally `* w` and
// (layernorm, after a weight) `+ b`. A must be the trailing axes so that axis = rank - |A|.
#include "passes/patterns_match.h"

namespace nef::passes::match {
namespace {

struct Norm {
  int x = -1;
  int64_t axis = 0;
  double eps = 0;
  std::vector<int> interior;  // the pattern's intermediates below the root
};

// The base b of b*b (same value twice) or b**2.
std::optional<int> square_base(const Ctx& c, int sq) {
  if (c.is(sq, "mul") && same_value(c.g, c.in(sq, 0), c.in(sq, 1))) return c.in(sq, 0);
  if (c.is(sq, "pow") && is_scalar(c.g, c.in(sq, 1), 2.0, 0)) return c.in(sq, 0);
  return std::nullopt;
}

// Axis for trailing reduction axes A of a rank-`rank` tensor, or -1 if A is not trailing.
int64_t trailing_axis(const std::vector<int64_t>& axes, size_t rank) {
  if (axes.empty() || axes.size() > rank) return -1;
  int64_t first = int64_t(rank - axes.size());
  for (size_t k = 0; k < axes.size(); ++k)
    if (axes[k] != first + int64_t(k)) return -1;
  return first;
}

// The normalization at n: num / sqrt(v + eps) or num * rsqrt(v + eps), v = mean(sq(num)).
// `centered` asks for num = x - mean(x) (layernorm); otherwise num itself is x (rmsnorm).
std::optional<Norm> norm_core(const Ctx& c, int n, bool centered) {
  int num, den;
  if (c.is(n, "div") && c.is(c.in(n, 1), "sqrt")) {
    num = c.in(n, 0);
    den = c.in(n, 1);
  } else if (auto p = c.is(n, "mul") ? c.commute(n, [&](int k) { return c.is(k, "rsqrt"); })
                                     : std::nullopt) {
    den = p->first;
    num = p->second;
  } else {
    return std::nullopt;
  }
  Norm r;
  r.interior = {den};
  int v = c.in(den, 0);
  if (c.is(v, "add")) {
    auto p = c.commute(v, [&](int k) {
      auto s = scalar_value(c.g, k);
      return s && *s >= 0;
    });
    if (!p) return std::nullopt;
    r.eps = *scalar_value(c.g, p->first);
    r.interior.push_back(v);
    v = p->second;
  }
  std::vector<int64_t> axes = keepdims_axes(c.g, v, "mean");
  if (axes.empty()) return std::nullopt;  // v is not a mean (it may be a source: no inputs)
  int sq = c.in(v, 0);
  std::optional<int> base = square_base(c, sq);
  if (!base || !same_value(c.g, *base, num)) return std::nullopt;
  r.axis = trailing_axis(axes, c.node(num).type.shape.size());
  if (r.axis < 0) return std::nullopt;
  r.interior.insert(r.interior.end(), {v, sq});
  r.x = num;
  if (centered) {
    // Every copy of num (the numerator and the squared base) is x - mean(x, A).
    std::vector<int> copies = {num, c.in(sq, 0)};
    if (c.is(sq, "mul")) copies.push_back(c.in(sq, 1));
    for (int d : copies) {
      if (!c.is(d, "sub") || keepdims_axes(c.g, c.in(d, 1), "mean") != axes) return std::nullopt;
      if (!same_value(c.g, c.in(c.in(d, 1), 0), c.in(d, 0))) return std::nullopt;
      r.interior.insert(r.interior.end(), {d, c.in(d, 1)});
    }
    r.x = c.in(num, 0);
  }
  if (!closed(c, n, r.interior)) return std::nullopt;
  return r;
}

ir::Attrs norm_attrs(const Norm& m) {
  ir::Attrs a;
  a.set("axis", m.axis);
  a.set("eps", m.eps);
  return a;
}

// Root forms: core, core * w, (core * w) + b (bias only after a weight: inputs are positional).
bool norm_pattern(Ctx& c, int r, const char* op, bool centered, bool with_bias) {
  if (auto m = norm_core(c, r, centered)) return c.replace(r, op, {m->x}, norm_attrs(*m));
  auto weighted = [&](int k, int* w) -> std::optional<Norm> {
    if (!c.is(k, "mul")) return std::nullopt;
    for (int j = 0; j < 2; ++j) {
      int n = c.in(k, j);
      if (c.uses(n) != 1) continue;
      if (auto m = norm_core(c, n, centered)) {
        *w = c.in(k, 1 - j);
        return m;
      }
    }
    return std::nullopt;
  };
  int w = -1;
  if (auto m = weighted(r, &w)) return c.replace(r, op, {m->x, w}, norm_attrs(*m));
  if (!with_bias || !c.is(r, "add")) return false;
  for (int j = 0; j < 2; ++j) {
    int k = c.in(r, j);
    if (!c.inner(k, "mul")) continue;
    if (auto m = weighted(k, &w))
      if (c.replace(r, op, {m->x, w, c.in(r, 1 - j)}, norm_attrs(*m))) return true;
  }
  return false;
}

}  // namespace

bool layernorm_pattern(Ctx& c, int r) { return norm_pattern(c, r, "layernorm", true, true); }
bool rmsnorm_pattern(Ctx& c, int r) { return norm_pattern(c, r, "rmsnorm", false, false); }

}  // namespace nef::passes::match
