// Decoder-only language model ops: rope (rotary position embedding), cached_attention
// (causal attention over a key/value cache plus this step's new rows) and linear_attention (the
// recurrent state of linear-attention layers). Positions and the cache
// length are run-time inputs, not shapes, so one compiled plan serves every decoding position.
// See docs/ops.md and docs/llm.md.
#include <cmath>
#include <string>
#include <vector>

#include "ir/op_registry.h"
#include "nef/error.h"

namespace nef::ir {
namespace {

bool is_int(DType t) { return t == DType::Int32 || t == DType::Int64; }

// rope: x [..., T, D] (float), pos [T] (int32/int64, absolute positions) -> x's shape and dtype.
// The first `dims` channels of each row rotate by angle pos * base^(-2i/dims) per pair i; the
// rest pass through. mode "interleaved": pairs (2i, 2i+1) (GPT-J, Llama GGUF); "half": pairs
// (i, i + dims/2) (GPT-NeoX, Hugging Face Llama).
TensorType infer_rope(const OpDef&, const std::vector<TensorType>& in, Attrs& attrs) {
  const Shape& x = in[0].shape;
  if (!is_floating(in[0].dtype)) throw TypeError(str("[rope] x must be float: ", types_str(in)));
  if (!is_int(in[1].dtype)) throw TypeError(str("[rope] pos must be int32/int64: ", types_str(in)));
  if (x.size() < 2) throw ShapeError(str("[rope] x needs rank >= 2 [..., T, D]: ", types_str(in)));
  const int64_t T = x[x.size() - 2], D = x.back();
  if (in[1].shape != Shape{T})
    throw ShapeError(str("[rope] pos must be [T] = [", T, "] for x ", shape_str(x), ", got ",
                         shape_str(in[1].shape)));
  int64_t dims = attrs.get_int("dims");
  if (dims == 0) dims = D;
  if (dims < 0 || dims > D || dims % 2 != 0)
    throw ValidationError(str("[rope] dims must be even and in [0, D = ", D, "], got ", dims,
                              " (x ", shape_str(x), ")"));
  attrs.set("dims", dims);
  const double base = attrs.get_float("base");
  if (!(base > 0) || !std::isfinite(base))
    throw ValidationError(str("[rope] base must be a finite positive number, got ", base));
  const std::string& mode = attrs.get_string("mode");
  if (mode != "interleaved" && mode != "half")
    throw ValidationError(
        str("[rope] mode must be \"interleaved\" or \"half\", got \"", mode, "\""));
  const double scale = attrs.get_float("pos_scale");
  if (!(scale > 0) || !std::isfinite(scale))
    throw ValidationError(str("[rope] pos_scale must be a finite positive number, got ", scale));
  return in[0];
}

// cached_attention: q [B..., T, D], k_cache [B'..., C, D], v_cache [B'..., C, Dv], k_new
// [B'..., T, D], v_new [B'..., T, Dv], start (int scalar) -> [B..., T, Dv]. The keys of query
// row t are cache rows [0, start) followed by new rows [0, t]: causal attention for T tokens at
// positions start..start+T-1 whose earlier keys live in the cache. The cache's batch dims
// broadcast to q's (grouped-query attention: q [Hkv, G, T, D] with k [Hkv, 1, C, D]). Rows of
// the cache at and past `start` are never read; start > C fails at run time.
TensorType infer_cached_attention(const OpDef&, const std::vector<TensorType>& in, Attrs& attrs) {
  for (int i = 0; i < 5; ++i) {
    if (!is_floating(in[i].dtype))
      throw TypeError(str("[cached_attention] q, k_cache, v_cache, k_new, v_new must be float: ",
                          types_str(in)));
    if (in[i].shape.size() < 2)
      throw ShapeError(
          str("[cached_attention] q, caches and new rows need rank >= 2: ", types_str(in)));
  }
  if (!is_int(in[5].dtype) || !in[5].shape.empty())
    throw TypeError(str("[cached_attention] start must be an int32/int64 scalar: ", types_str(in)));
  const Shape &q = in[0].shape, &kc = in[1].shape, &vc = in[2].shape, &kn = in[3].shape,
              &vn = in[4].shape;
  const size_t r = q.size();
  const int64_t T = q[r - 2], D = q[r - 1];
  const int64_t C = kc[kc.size() - 2], Dv = vc.back();
  const Shape batch(q.begin(), q.end() - 2);
  auto fail = [&](const char* what) {
    throw ShapeError(str("[cached_attention] ", what, ": ", types_str(in)));
  };
  if (kc.back() != D || kn.back() != D) fail("k_cache and k_new need q's head dim");
  if (vn.back() != Dv) fail("v_cache and v_new head dims differ");
  if (vc[vc.size() - 2] != C) fail("k_cache and v_cache lengths differ");
  if (kn[kn.size() - 2] != T || vn[vn.size() - 2] != T) fail("k_new and v_new need q's T rows");
  for (size_t i = 1; i < 5; ++i) {
    const Shape& s = in[i].shape;
    Shape b(s.begin(), s.end() - 2);
    if (b.size() > batch.size() || broadcast_shapes(b, batch, "cached_attention") != batch)
      fail("cache/new batch dims must broadcast to q's");
  }
  if (attrs.has("scale") && !std::isfinite(attrs.get_float("scale")))
    throw ValidationError(
        str("[cached_attention] scale must be finite, got ", attrs.get_float("scale")));
  Shape out = batch;
  out.push_back(T);
  out.push_back(Dv);
  checked_numel(out, "cached_attention");
  return {out, to_floating(in[0].dtype)};
}

// Cost at a full cache (the plan does not know `start`): every query row sees C + T keys.
Cost cost_cached_attention(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const Shape& q = in[0].shape;
  const Shape& kc = in[1].shape;
  const double rows = double(numel(out.shape)) / std::max<double>(1.0, double(out.shape.back()));
  const double keys = double(kc[kc.size() - 2]) + double(q[q.size() - 2]);
  const double flops = rows * keys * (2 * double(q.back()) + 2 * double(out.shape.back()) + 5);
  double bytes = 0;
  for (const TensorType& t : in) bytes += double(numel(t.shape)) * double(dtype_size(t.dtype));
  bytes += double(numel(out.shape)) * double(dtype_size(out.dtype));
  return {flops, bytes};
}

// linear_attention: the recurrent state update of linear-attention layers (ONNX LinearAttention;
// Mamba-2/DeltaNet-style). q [B, Hq, T, dk], k [B, Hkv, T, dk], v [B, Hkv, T, dv], state
// [B, Hkv, dk, dv], then by update_rule: decay [B, Hkv, T, dk or 1] (gated, gated_delta: state
// *= exp(decay)), beta [B, Hkv, T, 1] (delta, gated_delta: v <- beta (v - state^T k)). Per step
// state += k v^T and query head h reads o = scale * q^T state of key/value head h / (Hq / Hkv).
// One output packs both results: [B, Hkv, G*T + dk, dv] (G = Hq / Hkv): rows g*T + t hold query
// head hkv*G + g at step t; rows G*T.. the final state. All inputs share one float dtype.
TensorType infer_linear_attention(const OpDef&, const std::vector<TensorType>& in, Attrs& attrs) {
  const std::string& rule = attrs.get_string("update_rule");
  const bool gated = rule == "gated" || rule == "gated_delta";
  const bool delta = rule == "delta" || rule == "gated_delta";
  if (rule != "linear" && !gated && !delta)
    throw ValidationError(
        str("[linear_attention] update_rule must be linear, gated, delta or "
            "gated_delta, got \"",
            rule, "\""));
  const size_t want = 4 + size_t(gated) + size_t(delta);
  if (in.size() != want)
    throw ValidationError(str("[linear_attention] update_rule ", rule, " takes ", want,
                              " inputs (q, k, v, state", gated ? ", decay" : "",
                              delta ? ", beta" : "", "), got ", in.size()));
  for (const TensorType& t : in) {
    if (!is_floating(t.dtype) || t.dtype != in[0].dtype)
      throw TypeError(str("[linear_attention] inputs must share one float dtype: ", types_str(in)));
    if (t.shape.size() != 4)
      throw ShapeError(str("[linear_attention] inputs must be 4-D: ", types_str(in)));
  }
  const Shape &q = in[0].shape, &k = in[1].shape, &v = in[2].shape, &st = in[3].shape;
  const int64_t B = q[0], Hq = q[1], T = q[2], dk = q[3], Hkv = k[1], dv = v[3];
  auto fail = [&](const char* what) {
    throw ShapeError(str("[linear_attention] ", what, ": ", types_str(in)));
  };
  if (k != Shape{B, Hkv, T, dk}) fail("k must be [B, Hkv, T, dk] for q [B, Hq, T, dk]");
  if (v != Shape{B, Hkv, T, dv}) fail("v must be [B, Hkv, T, dv]");
  if (Hkv <= 0 || Hq % Hkv != 0) fail("Hq must be a positive multiple of Hkv");
  if (st != Shape{B, Hkv, dk, dv}) fail("state must be [B, Hkv, dk, dv]");
  if (gated) {
    const Shape& d = in[4].shape;
    if (d != Shape{B, Hkv, T, dk} && d != Shape{B, Hkv, T, 1})
      fail("decay must be [B, Hkv, T, dk] or [B, Hkv, T, 1]");
  }
  if (delta && in.back().shape != Shape{B, Hkv, T, 1}) fail("beta must be [B, Hkv, T, 1]");
  if (attrs.has("scale") && !std::isfinite(attrs.get_float("scale")))
    throw ValidationError(
        str("[linear_attention] scale must be finite, got ", attrs.get_float("scale")));
  Shape out = {B, Hkv, (Hq / Hkv) * T + dk, dv};
  checked_numel(out, "linear_attention");
  return {out, in[0].dtype};
}

// Per step and key/value head: decay dk*dv, delta 2*dk*dv, update 2*dk*dv, reads 2*G*dk*dv.
Cost cost_linear_attention(const std::vector<TensorType>& in, const TensorType& out, const Attrs&) {
  const Shape& q = in[0].shape;
  const Shape& v = in[2].shape;
  const double steps = double(q[0]) * double(in[1].shape[1]) * double(q[2]);
  const double g = double(q[1]) / std::max<double>(1.0, double(in[1].shape[1]));
  const double flops = steps * double(q[3]) * double(v[3]) * (5 + 2 * g);
  double bytes = 0;
  for (const TensorType& t : in) bytes += double(numel(t.shape)) * double(dtype_size(t.dtype));
  bytes += double(numel(out.shape)) * double(dtype_size(out.dtype));
  return {flops, bytes};
}

}  // namespace

void register_decoder_ops(Registry& r) {
  OpDef rope;
  rope.name = "rope";
  rope.min_inputs = rope.max_inputs = 2;
  rope.infer = infer_rope;
  rope.flops_per_element = 4;
  rope.attrs.push_back({"base", AttrType::Float, AttrValue(10000.0), false});
  rope.attrs.push_back({"dims", AttrType::Int, AttrValue(int64_t(0)), false});  // 0: all of D
  rope.attrs.push_back({"mode", AttrType::String, AttrValue(std::string("half")), false});
  rope.attrs.push_back({"pos_scale", AttrType::Float, AttrValue(1.0), false});  // linear scaling
  r.add(std::move(rope));

  OpDef att;
  att.name = "cached_attention";
  att.min_inputs = att.max_inputs = 6;
  att.infer = infer_cached_attention;
  att.cost = cost_cached_attention;
  att.attrs.push_back({"scale", AttrType::Float, std::nullopt, false});  // default 1/sqrt(D)
  r.add(std::move(att));

  OpDef la;
  la.name = "linear_attention";
  la.min_inputs = 4;
  la.max_inputs = 6;
  la.infer = infer_linear_attention;
  la.cost = cost_linear_attention;
  la.attrs.push_back(
      {"update_rule", AttrType::String, AttrValue(std::string("gated_delta")), false});
  la.attrs.push_back({"scale", AttrType::Float, std::nullopt, false});  // default 1/sqrt(dk)
  r.add(std::move(la));
}

}  // namespace nef::ir
