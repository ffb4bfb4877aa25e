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
// A following add of a shifted bias is left alone: fuse_matmul_epilogue picks it up.
//
// Rewrite in place, keeping the topological order: the matmul node (single user, not an
// output) becomes the constant W', and the mul/div node becomes matmul(x, W'); x precedes both.
#include <cmath>
#include <cstring>
#include <vector>

#include "common/float16.h"
#include "nef/error.h"
#include "passes/pass.h"
#include "runtime/stats.h"

namespace nef::passes {
namespace {

// Element i of a contiguous float array as a double.
double load(const Array& a, int64_t i) {
  switch (a.dtype) {
    case DType::Float16: return to_float(a.data_as<float16_t>()[i]);
    case DType::BFloat16: return to_float(a.data_as<bfloat16_t>()[i]);
    case DType::Float32: return a.data_as<float>()[i];
    case DType::Float64: return a.data_as<double>()[i];
    default: return 0;
  }
}

// Rounds d once to a 16-bit float: the float round trip can double-round, so the nearest of the
// three neighbouring encodings is picked by exact distance (ties to the even encoding).
template <class H, class ToH>
H round16(double d, ToH to_h) {
  H h = to_h(static_cast<float>(d));
  if (!std::isfinite(d)) return h;
  H best = h;
  double best_err = std::abs(double(to_float(h)) - d);
  for (int delta : {-1, 1}) {
    H c{uint16_t(h.bits + delta)};
    double v = to_float(c);
    if (!std::isfinite(v) || (std::signbit(v) != std::signbit(double(to_float(h))) && v != 0))
      continue;
    double err = std::abs(v - d);
    if (err < best_err || (err == best_err && (c.bits & 1) == 0)) best = c, best_err = err;
  }
  return best;
}

void store(Array& a, int64_t i, double d) {
  switch (a.dtype) {
    case DType::Float16: a.data_as<float16_t>()[i] = round16<float16_t>(d, to_float16); break;
    case DType::BFloat16: a.data_as<bfloat16_t>()[i] = round16<bfloat16_t>(d, to_bfloat16); break;
    case DType::Float32: a.data_as<float>()[i] = static_cast<float>(d); break;
    case DType::Float64: a.data_as<double>()[i] = d; break;
    default: break;
  }
}

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

}  // namespace

void fold_matmul_scale(ir::Graph& g) {
  const int n = static_cast<int>(g.nodes.size());
  // Uses by live nodes and outputs (earlier passes leave dead nodes for the final dce).
  std::vector<int> uses(n, 0);
  std::vector<bool> live = ir::live_nodes(g), is_output(n, false);
  for (int o : g.outputs) is_output[o] = true;
  for (int i = 0; i < n; ++i)
    if (live[i])
      for (int in : g.nodes[i].inputs) uses[in]++;
  for (int o : g.outputs) uses[o]++;

  for (int i = 0; i < n; ++i) {
    ir::Node& root = g.nodes[i];
    if (!live[i] || root.inputs.size() != 2) continue;
    const bool is_mul = root.is("mul"), is_div = root.is("div");
    if (!is_mul && !is_div) continue;
    for (int k = 0; k < (is_mul ? 2 : 1); ++k) {
      const int m = root.inputs[k], si = root.inputs[1 - k];
      const ir::Node& mm = g.nodes[m];
      if (!mm.is("matmul") || mm.inputs.size() != 2 || uses[m] != 1 || is_output[m]) continue;
      if (!mm.attrs.values().empty()) continue;  // plain numpy matmul only
      const int wi = mm.inputs[1], x = mm.inputs[0];
      const ir::Node& w = g.nodes[wi];
      const DType t = mm.type.dtype;
      if (!w.is("constant") || !w.constant || w.type.shape.size() != 2 || w.type.dtype != t ||
          !is_floating(t))
        continue;
      const ir::Node& s = g.nodes[si];
      const int64_t rows = w.type.shape[0], cols = w.type.shape[1];
      if (!column_scale(s, t, cols)) continue;
      if (size_t(rows * cols) * dtype_size(t) > kMaxFoldedBytes) continue;
      const Array wa = w.constant->contiguous(), sa = s.constant->contiguous();
      const int64_t sn = sa.numel();
      // Finite scales only ((x@W)*inf and x@(W*inf) disagree on NaNs); exact ones for div.
      bool ok = true;
      for (int64_t j = 0; j < sn && ok; ++j)
        ok = is_div ? is_pow2(load(sa, j)) : std::isfinite(load(sa, j));
      if (!ok) continue;
      // The result must have exactly the mul's type, so users and outputs stay valid.
      ir::Node fused;
      fused.op = &ir::get_op("matmul");
      fused.inputs = {x, m};
      fused.name = root.name;
      fused.device_hint = root.device_hint;
      try {
        fused.type = ir::check_and_infer(*fused.op, {g.nodes[x].type, w.type}, fused.attrs);
      } catch (const Error&) {
        continue;
      }
      if (!(fused.type == root.type) || fused.type.weak != root.type.weak) continue;

      Array folded = Array::empty(w.type.shape, t);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) {
          const double sv = load(sa, sn == 1 ? 0 : c);
          const double wv = load(wa, r * cols + c);
          store(folded, r * cols + c, is_div ? wv / sv : wv * sv);
        }
      ir::Node cn;
      cn.op = &ir::get_op("constant");
      cn.attrs.set("shape", std::vector<int64_t>(w.type.shape.begin(), w.type.shape.end()));
      cn.attrs.set("dtype", std::string(dtype_name(t)));
      cn.type = w.type;
      cn.type.weak = false;
      cn.device_hint = mm.device_hint;
      cn.constant = std::move(folded);
      // W and s lose a user; they may die (dce removes them).
      uses[wi]--;
      uses[si]--;
      g.nodes[m] = std::move(cn);
      uses[m] = 1;
      g.nodes[i] = std::move(fused);
      runtime::stats().nodes_folded++;
      break;
    }
  }
}

}  // namespace nef::passes
