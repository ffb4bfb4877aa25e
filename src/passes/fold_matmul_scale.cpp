// Scale folding into constant matmul weights (inference batch-norm folding, as NEF graphs write
// it today: per-channel constants after a matmul):
//   mul(matmul(x, W), s) or mul(s, matmul(x, W))  ->  matmul(x, W')   with W' = W * s
//   div(matmul(x, W), s)                           ->  matmul(x, W')   with W' = W / s
// W is a rank-2 (K, N) float constant of the matmul's output dtype, s a constant of that dtype
// broadcasting only along the last dim ((N,), (1, N), scalar...), the matmul has no other user.
// W' is computed now in double and rounded once to W's dtype.
//
// NOTE: the mul form changes rounding: x@(W*s) rounds differently from (x@W)*s. The optimizer
// issue explicitly allows this for batch-norm folding in inference (pass.h's "rounding of the
// same ops" rule is relaxed for this pass only). The div form is only folded when every element
// of s is a power of two, where W/s is exact (barring subnormals), so results match closely.
// A following add of a shifted bias is left alone: fuse_epilogue picks it up.
//
// Indirect form (inference batch norm written as (x@W - mean) * scale): with per-column constants
//   mul(sub(matmul(x, W), m), s)  ->  add(matmul(x, W * s), -(m * s))
//   mul(add(matmul(x, W), c), s)  ->  add(matmul(x, W * s), c * s)
// (the mul and the add in either operand order)
// when the matmul and the sub/add have no other user; fuse_epilogue then takes the add.
// Same rounding note as the mul form; m*s and c*s are also computed in double, rounded once.
//
// The graph is rebuilt in order (fold_util.h): the new constants are placed right before the
// matmul that replaces the mul/div; the old matmul, W and the scales die and dce removes them.
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "common/session.h"
#include "nef/error.h"
#include "passes/fold_util.h"
#include "passes/pass.h"

namespace nef::passes {
namespace {

bool is_pow2(double v) {
  if (!std::isfinite(v) || v == 0) return false;
  int e;
  return std::abs(std::frexp(v, &e)) == 0.5;
}

// A constant scale of dtype t usable along the columns of a (K, n) weight: every dim but the
// last is 1 and the last is 1 or n.
bool column_scale(const ir::Node& s, DType t, int64_t n) {
  if (!s.is("constant") || !s.constant || s.type.dtype != t) return false;
  const Shape& sh = s.type.shape;
  for (size_t d = 0; d + 1 < sh.size(); ++d)
    if (sh[d] != 1) return false;
  return sh.empty() || sh.back() == 1 || sh.back() == n;
}

// A plain matmul x@W that a rule may consume (single user, not an output) with a rank-2 float
// constant W of its dtype, small enough to copy.
struct Weight {
  int x;
  Array w;  // contiguous (K, N)
  int64_t rows, cols;
  DType t;
  std::string device_hint;
};

std::optional<Weight> foldable_matmul(const fold::Rebuild& b, int m) {
  const ir::Node& mm = b.at(m);
  if (!mm.is("matmul") || mm.inputs.size() != 2 || !b.single_use(m)) return std::nullopt;
  if (!mm.attrs.values().empty()) return std::nullopt;  // plain numpy matmul only
  const ir::Node& w = b.at(mm.inputs[1]);
  const DType t = mm.type.dtype;
  if (!w.is("constant") || !w.constant || w.type.shape.size() != 2 || w.type.dtype != t ||
      !is_floating(t))
    return std::nullopt;
  const int64_t rows = w.type.shape[0], cols = w.type.shape[1];
  if (size_t(rows * cols) * dtype_size(t) > kMaxFoldedBytes) return std::nullopt;
  return Weight{mm.inputs[0], w.constant->contiguous(), rows, cols, t, mm.device_hint};
}

// Element j of a column scale of n columns (scalar-like scales broadcast).
double column(const Array& s, int64_t j) { return fold::load(s, s.numel() == 1 ? 0 : j); }

// W' = W * s (or W / s), computed in double and rounded once to W's dtype.
Array scale_columns(const Weight& w, const Array& s, bool divide) {
  Array folded = Array::empty({w.rows, w.cols}, w.t);
  for (int64_t r = 0; r < w.rows; ++r)
    for (int64_t c = 0; c < w.cols; ++c) {
      const double sv = column(s, c), wv = fold::load(w.w, r * w.cols + c);
      fold::store(folded, r * w.cols + c, divide ? wv / sv : wv * sv);
    }
  return folded;
}

// Appends W' and matmul(x, W'); returns the matmul or -1.
int emit_matmul(fold::Rebuild& b, const Weight& w, Array folded, const ir::Node& like) {
  const int wc = b.constant(std::move(folded), w.device_hint);
  return b.emit("matmul", {w.x, wc}, {}, like);
}

// mul(matmul(x, W), s), mul(s, matmul(x, W)), div(matmul(x, W), s) -> matmul(x, W').
int fold_direct(fold::Rebuild& b, const ir::Node& root) {
  const bool is_div = root.is("div");
  for (int k = 0; k < (is_div ? 1 : 2); ++k) {
    std::optional<Weight> w = foldable_matmul(b, root.inputs[k]);
    if (!w) continue;
    const ir::Node& s = b.at(root.inputs[1 - k]);
    if (!column_scale(s, w->t, w->cols)) continue;
    const Array sa = s.constant->contiguous();
    // Finite scales only ((x@W)*inf and x@(W*inf) disagree on NaNs); exact ones for div.
    bool ok = fold::all_finite(sa);
    for (int64_t j = 0; j < sa.numel() && ok && is_div; ++j) ok = is_pow2(fold::load(sa, j));
    if (!ok) continue;
    const size_t before = b.nodes.size();
    int r = b.accept(before, emit_matmul(b, *w, scale_columns(*w, sa, is_div), root), root);
    if (r >= 0) return r;
  }
  return -1;
}

// mul(sub(matmul(x, W), m), s) -> add(matmul(x, W*s), -(m*s)); mul(add(matmul(x, W), c), s) ->
// add(matmul(x, W*s), c*s); the mul and the add in either operand order.
int fold_indirect(fold::Rebuild& b, const ir::Node& root) {
  for (int k = 0; k < 2; ++k) {
    const int inner = root.inputs[k];
    const bool is_sub = b.at(inner).is("sub");
    // A copy: emitting nodes may move b.nodes.
    const std::vector<int> ops = b.at(inner).inputs;
    if ((!is_sub && !b.at(inner).is("add")) || ops.size() != 2 || !b.single_use(inner)) continue;
    for (int j = 0; j < (is_sub ? 1 : 2); ++j) {
      std::optional<Weight> w = foldable_matmul(b, ops[j]);
      if (!w) continue;
      const ir::Node& shift = b.at(ops[1 - j]);
      const ir::Node& s = b.at(root.inputs[1 - k]);
      if (!column_scale(shift, w->t, w->cols) || !column_scale(s, w->t, w->cols)) continue;
      const Array sa = s.constant->contiguous(), ca = shift.constant->contiguous();
      if (!fold::all_finite(sa) || !fold::all_finite(ca)) continue;
      // The new shift keeps the broadcast shape of both constants, so the add's result has the
      // mul's shape ((1, N) shifts of a vector product stay rank 2). shift and s are not read
      // once nodes are emitted (references into b.nodes).
      Shape cs;
      try {
        cs = broadcast_shapes(shift.type.shape, s.type.shape, "mul");
      } catch (const Error&) {
        continue;
      }
      Array c2 = Array::empty(cs, w->t);
      for (int64_t c = 0; c < c2.numel(); ++c) {
        const double v = column(ca, c) * column(sa, c);
        fold::store(c2, c, is_sub ? -v : v);
      }
      const size_t before = b.nodes.size();
      int mm = emit_matmul(b, *w, scale_columns(*w, sa, false), root);
      int r = -1;
      if (mm >= 0) r = b.emit("add", {mm, b.constant(std::move(c2), root.device_hint)}, {}, root);
      r = b.accept(before, r, root);
      if (r >= 0) return r;
    }
  }
  return -1;
}

}  // namespace

void fold_matmul_scale(ir::Graph& g, const PassContext& ctx) {
  // Every rule folds a mul/div of matmul(x, constant), directly or through an add/sub.
  auto may_fire = [](const ir::Graph& g, const ir::Node& n) {
    if (n.inputs.size() != 2 || !(n.is("mul") || n.is("div"))) return false;
    auto weighted = [&](int v) {
      const ir::Node& m = g.nodes[v];
      return m.is("matmul") && m.inputs.size() == 2 && g.nodes[m.inputs[1]].is("constant");
    };
    for (int in : n.inputs) {
      if (weighted(in)) return true;
      const ir::Node& s = g.nodes[in];
      if (s.is("add") || s.is("sub"))
        for (int v : s.inputs)
          if (weighted(v)) return true;
    }
    return false;
  };
  nef::counters().nodes_folded +=
      fold::rebuild(g, may_fire, [](fold::Rebuild& b, const ir::Node& n) {
        if (n.inputs.size() != 2 || (!n.is("mul") && !n.is("div"))) return -1;
        int r = fold_direct(b, n);
        if (r < 0 && n.is("mul")) r = fold_indirect(b, n);
        return r;
      });
}

}  // namespace nef::passes
