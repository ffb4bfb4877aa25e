// Batch-norm folding into a preceding convolution (inference). With f and s float constants that
// broadcast only along the conv output's channel axis 1 (shapes (M, 1, ..., 1), (1, M, 1, ..., 1),
// scalar...):
//   mul(conv(x, W[, b]), f) or mul(f, conv(...))  ->  conv(x, W', b')  W'[m] = W[m]*f[m], b' = b*f
//   add(conv(x, W[, b]), s) or add(s, conv(...))  ->  conv(x, W, b + s)   (no b: s)
//   sub(conv(x, W[, b]), s)                        ->  conv(x, W, b - s)
// so conv -> BatchNormalization, which the ONNX importer writes as x * factor + shift, becomes one
// conv. The conv has no other user and is not a graph output; W (for mul), b, f and s are finite
// constants of the conv's dtype; an absent bias stays absent under mul. Folded values are
// computed in double and rounded once to the dtype (fold_util.h).
//
// NOTE: this changes rounding: conv(x, W*f) rounds differently from conv(x, W)*f, and adding
// b + s once differently from adding b, then s. As for fold_matmul_scale, the optimizer issue
// explicitly allows this for batch-norm folding in inference (pass.h's "rounding of the same
// ops" rule is relaxed for these two passes only).
//
// The graph is rebuilt in order (fold_util.h): the folded constants come right before the conv
// that replaces the mul/add/sub; the old conv and constants die and dce removes them.
#include <optional>
#include <string>
#include <vector>

#include "common/session.h"
#include "passes/fold_util.h"
#include "passes/pass.h"

namespace nef::passes {
namespace {

// A float constant of dtype t that broadcasts only along axis 1 of a rank-`rank` result with m
// channels: every dim is 1 but the one aligned with axis 1, which is 1 or m.
bool channel_scale(const ir::Node& s, DType t, size_t rank, int64_t m) {
  if (!s.is("constant") || !s.constant || s.type.dtype != t) return false;
  const Shape& sh = s.type.shape;
  if (sh.size() > rank) return false;
  for (size_t j = 0; j < sh.size(); ++j) {
    const size_t axis = rank - sh.size() + j;
    if (sh[j] != 1 && !(axis == 1 && sh[j] == m)) return false;
  }
  return true;
}

// Channel c of a per-channel constant (a single value broadcasts).
double channel(const Array& s, int64_t c) { return fold::load(s, s.numel() == 1 ? 0 : c); }

// A conv that a rule may consume (single user, not an output) whose bias, if any, is a constant
// of its dtype. Copies what the rules need: emitting nodes may move the node list.
struct Conv {
  int x, w;
  std::optional<Array> bias;  // contiguous (M,)
  ir::Attrs attrs;
  DType t;
  int64_t m;
  size_t rank;
  std::string device_hint;
};

std::optional<Conv> foldable_conv(const fold::Rebuild& b, int c) {
  const ir::Node& cv = b.at(c);
  if (!cv.is("conv") || cv.inputs.size() < 2 || !b.single_use(c)) return std::nullopt;
  const DType t = cv.type.dtype;
  if (!is_floating(t)) return std::nullopt;
  Conv r{cv.inputs[0],     cv.inputs[1],         std::nullopt,  cv.attrs, t,
         cv.type.shape[1], cv.type.shape.size(), cv.device_hint};
  if (cv.inputs.size() == 3) {
    const ir::Node& bn = b.at(cv.inputs[2]);
    if (!bn.is("constant") || !bn.constant || bn.type.dtype != t) return std::nullopt;
    r.bias = bn.constant->contiguous();
  }
  return r;
}

// The per-channel constant operand `si` of a conv, contiguous, when it is finite.
std::optional<Array> channel_constant(const fold::Rebuild& b, int si, const Conv& cv) {
  const ir::Node& s = b.at(si);
  if (!channel_scale(s, cv.t, cv.rank, cv.m)) return std::nullopt;
  Array a = s.constant->contiguous();
  if (!fold::all_finite(a)) return std::nullopt;
  return a;
}

// mul(conv(x, W[, b]), f), either order -> conv(x, W * f, b * f).
int fold_scale(fold::Rebuild& b, const ir::Node& root) {
  for (int k = 0; k < 2; ++k) {
    std::optional<Conv> cv = foldable_conv(b, root.inputs[k]);
    if (!cv) continue;
    const ir::Node& w = b.at(cv->w);
    if (!w.is("constant") || !w.constant || w.type.dtype != cv->t) continue;
    const Shape wshape = w.type.shape;
    if (size_t(numel(wshape)) * dtype_size(cv->t) > kMaxFoldedBytes) continue;
    const Array wa = w.constant->contiguous();
    std::optional<Array> f = channel_constant(b, root.inputs[1 - k], *cv);
    if (!f) continue;
    // W is (M, C/groups, kernel...): output channel c owns one contiguous row of `per` taps.
    Array w2 = Array::empty(wshape, cv->t);
    const int64_t per = cv->m ? wa.numel() / cv->m : 0;
    for (int64_t c = 0; c < cv->m; ++c)
      for (int64_t e = 0; e < per; ++e)
        fold::store(w2, c * per + e, fold::load(wa, c * per + e) * channel(*f, c));
    const size_t before = b.nodes.size();
    std::vector<int> ins = {cv->x, b.constant(std::move(w2), cv->device_hint)};
    if (cv->bias) {
      Array b2 = Array::empty({cv->m}, cv->t);
      for (int64_t c = 0; c < cv->m; ++c)
        fold::store(b2, c, fold::load(*cv->bias, c) * channel(*f, c));
      ins.push_back(b.constant(std::move(b2), cv->device_hint));
    }
    int r = b.accept(before, b.emit("conv", std::move(ins), cv->attrs, root), root);
    if (r >= 0) return r;
  }
  return -1;
}

// add(conv(x, W[, b]), s), either order, or sub(conv(x, W[, b]), s) -> conv(x, W, b +- s).
int fold_shift(fold::Rebuild& b, const ir::Node& root) {
  const bool is_sub = root.is("sub");
  for (int k = 0; k < (is_sub ? 1 : 2); ++k) {
    std::optional<Conv> cv = foldable_conv(b, root.inputs[k]);
    if (!cv) continue;
    std::optional<Array> s = channel_constant(b, root.inputs[1 - k], *cv);
    if (!s) continue;
    Array b2 = Array::empty({cv->m}, cv->t);
    for (int64_t c = 0; c < cv->m; ++c) {
      const double bias = cv->bias ? fold::load(*cv->bias, c) : 0.0;
      fold::store(b2, c, is_sub ? bias - channel(*s, c) : bias + channel(*s, c));
    }
    const size_t before = b.nodes.size();
    const int bc = b.constant(std::move(b2), cv->device_hint);
    int r = b.accept(before, b.emit("conv", {cv->x, cv->w, bc}, cv->attrs, root), root);
    if (r >= 0) return r;
  }
  return -1;
}

}  // namespace

void fold_conv_scale(ir::Graph& g, const PassContext& ctx) {
  // Every rule folds a mul/add/sub of a conv.
  auto may_fire = [](const ir::Graph& g, const ir::Node& n) {
    if (n.inputs.size() != 2 || !(n.is("mul") || n.is("add") || n.is("sub"))) return false;
    return g.nodes[n.inputs[0]].is("conv") || g.nodes[n.inputs[1]].is("conv");
  };
  nef::counters().nodes_folded +=
      fold::rebuild(g, may_fire, [](fold::Rebuild& b, const ir::Node& n) {
        if (n.inputs.size() != 2) return -1;
        if (n.is("mul")) return fold_scale(b, n);
        if (n.is("add") || n.is("sub")) return fold_shift(b, n);
        return -1;
      });
}

}  // namespace nef::passes
