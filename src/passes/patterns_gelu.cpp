// gelu patterns, in any association and operand order of the products:
//   none: 0.5 * x * (1 + erf(x / sqrt(2)))      (or x * 0.7071..., or (x * (1 + erf)) / 2)
//   tanh: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))   (x^3 as pow(x, 3) or x*x*x)
#include <cmath>

#include "passes/patterns_match.h"

namespace nef::passes::match {
namespace {

constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kTanhCubic = 0.044715;

// Removes the one factor equal to v from `f`; false if there is none.
bool take_scalar(const ir::Graph& g, std::vector<int>& f, double v) {
  for (size_t k = 0; k < f.size(); ++k)
    if (is_scalar(g, f[k], v)) {
      f.erase(f.begin() + k);
      return true;
    }
  return false;
}

// The factors of root r other than the 1/2: 0.5 * a * b, or (a * b) / 2.
std::optional<std::vector<int>> halved_product(const Ctx& c, int r) {
  std::vector<int> f;
  if (c.is(r, "mul")) {
    f = c.factors(r);
    if (!take_scalar(c.g, f, 0.5)) return std::nullopt;
  } else if (c.is(r, "div") && is_scalar(c.g, c.in(r, 1), 2.0) && c.inner(c.in(r, 0), "mul")) {
    f = c.factors(c.in(r, 0));
  } else {
    return std::nullopt;
  }
  if (f.size() != 2) return std::nullopt;
  return f;
}

// erf argument: x / sqrt(2) or x * (1/sqrt(2)).
bool erf_arg_of(const Ctx& c, int u, int x) {
  if (c.inner(u, "div")) return is_scalar(c.g, c.in(u, 1), kSqrt2) && same_value(c.g, c.in(u, 0), x);
  if (!c.inner(u, "mul")) return false;
  std::optional<int> y = c.other_than_scalar(u, 1 / kSqrt2);
  return y && same_value(c.g, *y, x);
}

// 0.044715 * x^3 with x^3 as pow(x, 3) or a product of three x.
bool cubic_term_of(const Ctx& c, int m, int x) {
  if (!c.inner(m, "mul")) return false;
  std::vector<int> f = c.factors(m);
  if (!take_scalar(c.g, f, kTanhCubic)) return false;
  if (f.size() == 1 && c.inner(f[0], "pow") && is_scalar(c.g, c.in(f[0], 1), 3.0, 0))
    return same_value(c.g, c.in(f[0], 0), x);
  if (f.size() != 3) return false;
  for (int k : f)
    if (!same_value(c.g, k, x)) return false;
  return true;
}

// tanh argument: sqrt(2/pi) * (x + 0.044715 * x^3).
bool tanh_arg_of(const Ctx& c, int v, int x) {
  if (!c.inner(v, "mul")) return false;
  std::vector<int> f = c.factors(v);
  if (!take_scalar(c.g, f, kSqrt2OverPi) || f.size() != 1 || !c.inner(f[0], "add")) return false;
  int w = f[0];
  for (int k = 0; k < 2; ++k)
    if (same_value(c.g, c.in(w, k), x) && cubic_term_of(c, c.in(w, 1 - k), x)) return true;
  return false;
}

// t = 1 + fn(arg) with arg checked by `arg_ok`.
template <class ArgOk>
bool one_plus(const Ctx& c, int t, const char* fn, ArgOk arg_ok) {
  if (!c.inner(t, "add")) return false;
  std::optional<int> e = c.other_than_scalar(t, 1.0);
  return e && c.inner(*e, fn) && arg_ok(c.in(*e, 0));
}

}  // namespace

bool gelu_pattern(Ctx& c, int r) {
  std::optional<std::vector<int>> f = halved_product(c, r);
  if (!f) return false;
  for (int k = 0; k < 2; ++k) {
    int x = (*f)[k], t = (*f)[1 - k];
    ir::Attrs a;
    if (one_plus(c, t, "erf", [&](int u) { return erf_arg_of(c, u, x); })) {
      a.set("approximate", std::string("none"));
    } else if (one_plus(c, t, "tanh", [&](int v) { return tanh_arg_of(c, v, x); })) {
      a.set("approximate", std::string("tanh"));
    } else {
      continue;
    }
    return c.replace(r, "gelu", {x}, a);
  }
  return false;
}

}  // namespace nef::passes::match
